//! Adoption: with no state file, objects already on the tenant are taken under management,
//! without a write when they match the specs.

use reqwest::Method;
use serde_json::json;

use crate::support::tenant::{
    Env, SHOP_DATA, SHOP_PURPOSE, change, copy_example, without_times, writes,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matching_objects_are_adopted_without_a_write_and_differing_ones_are_posted() {
    let env = Env::start().await;
    env.set_catalog(&super::catalog(&[])).await;
    copy_example(&env.specs);
    env.apply_in_process().await;
    let before = env.view().await;

    // The state is lost (or this is the first run against a tenant set up by hand), and one
    // policy was edited in the UI since.
    env.forget_state();
    env.tamper("policy", "mask-passport-constant", &json!({"name": "Edited in the UI"})).await;

    let plan = env.plan_json(&[]).await;
    for c in plan["changes"].as_array().unwrap() {
        let (kind, key) = (c["kind"].as_str().unwrap(), c["key"].as_str().unwrap());
        if kind == "license" {
            // A license listing never shows its key, so a key cannot be matched to a listed
            // license: it is posted again (Immuta answers the existing license).
            assert_eq!(c["action"], "create", "{c:#}");
            continue;
        }
        assert_eq!(c["action"], "adopt", "{kind} {key}: {c:#}");
        let differs = key == "mask-passport-constant";
        assert_eq!(c["write"], differs, "{kind} {key}: {c:#}");
    }
    let edited = change(&plan, "policy", "mask-passport-constant");
    assert!(edited["reason"].as_str().unwrap().contains("differs from the spec"), "{edited:#}");

    env.clear_requests().await;
    let run = env.apply(&[]).await.must_exit(0);
    assert!(run.stdout.contains("adopted"), "{}", run.stdout);
    let mut posted = writes(&env.requests().await);
    posted.sort();
    assert_eq!(posted, ["POST /admin/license", "POST /api/v2/policy"]);
    assert_eq!(env.managed().len(), 13, "every object is managed again");
    assert_eq!(env.view().await, before, "nothing duplicated, nothing lost");
    let policy = env.tenant().await["policies"]
        .as_object()
        .unwrap()
        .values()
        .find(|p| p["policyKey"] == "mask-passport-constant")
        .cloned()
        .unwrap();
    assert_eq!(policy["payload"]["name"], "Redact passport numbers", "the spec won");
    env.assert_converged().await;

    // Adopted data sources know their names: the next plan does not list them as unmanaged.
    let plan = env.plan_json(&[]).await;
    assert_eq!(plan["unmanaged"], json!([]), "{plan:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopting_over_extra_tables_or_subpurposes_needs_allow_destroy() {
    let env = Env::start().await;
    // Made by hand: a connection with three tables, a purpose with three subpurposes.
    env.by_hand(
        Method::POST,
        "/api/v2/data",
        Some(&json!({"connectionKey": "shop", "connection": {"handler": "Snowflake",
            "hostname": "shop.example.com", "port": 443, "database": "SHOP", "warehouse": "WH",
            "username": "svc", "password": "shop-password-1"},
            "options": {"tableTags": ["Dept.Sales"]},
            "owners": [{"type": "group", "name": "stewards"}, {"type": "user", "name": "maria@example.com"}],
            "sources": [{"tableName": "CUSTOMERS", "schema": "PUBLIC"},
                {"tableName": "ORDERS", "schema": "PUBLIC"}, {"tableName": "REFUNDS", "schema": "PUBLIC"}]})),
    )
    .await;
    env.by_hand(
        Method::POST,
        "/api/v2/purpose",
        Some(&json!({"name": "Analytics", "description": "Aggregate analysis.", "subpurposes": [
            {"name": "Analytics.Marketing"}, {"name": "Analytics.Product"}, {"name": "Analytics.Legacy"}]})),
    )
    .await;
    // The specs list two of the tables and two of the subpurposes.
    env.specs.write(
        "data/shop.yaml",
        &SHOP_DATA.replace("  - {tableName: REFUNDS, schema: PUBLIC}\n", ""),
    );
    env.specs.write("purposes/analytics.yaml", SHOP_PURPOSE);

    let plan = env.plan_json(&[]).await;
    let ds = change(&plan, "datasource", "shop");
    assert_eq!(
        (ds["action"].as_str(), ds["destructive"].as_bool()),
        (Some("adopt"), Some(true)),
        "{ds:#}"
    );
    assert_eq!(ds["effects"][0]["type"], "tables_removed");
    assert_eq!(ds["effects"][0]["tables"], json!(["public refunds"]));
    let purpose = change(&plan, "purpose", "Analytics");
    assert_eq!(purpose["destructive"], true, "{purpose:#}");
    assert_eq!(purpose["effects"][0]["names"], json!(["Analytics.Legacy"]));

    let before = without_times(&env.tenant().await);
    let run = env.apply(&[]).await.must_exit(1);
    assert!(run.stderr.contains("the plan destroys data or objects"), "{}", run.stderr);
    assert_eq!(without_times(&env.tenant().await), before, "nothing changed");

    env.apply(&["--allow-destroy"]).await.must_exit(0);
    let view = env.view().await;
    assert_eq!(view.active("shop"), ["public customers", "public orders"]);
    assert!(!view.purposes.contains("Analytics.Legacy"));
    env.assert_converged().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_without_tables_is_adopted_not_created() {
    let env = Env::start().await;
    // `all: true` on a host the catalog does not know: the connection exists with no tables,
    // so only the key probe can tell it is there.
    let spec = "connectionKey: empty\nconnection: {handler: PostgreSQL, hostname: pg.example.com, database: DB}\nsources:\n  - all: true\n";
    env.specs.write("empty.yaml", spec);
    env.apply_in_process().await;
    env.forget_state();
    let plan = env.plan_json(&[]).await;
    let c = change(&plan, "datasource", "empty");
    assert_eq!((c["action"].as_str(), c["write"].as_bool()), (Some("adopt"), Some(false)), "{c:#}");
    env.clear_requests().await;
    env.apply(&[]).await.must_exit(0);
    assert_eq!(writes(&env.requests().await), Vec::<String>::new());
    env.assert_converged().await;
}

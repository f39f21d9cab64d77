//! Deletes: a removed spec deletes its object (with consent), `prune: false` keeps it, mass
//! deletions need `--force`, and objects made by hand are listed and never touched.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::tenant::{
    Env, SHOP_POLICIES, change, hand_policy, policy_spec, remove_shop, without_times, write_shop,
    writes,
};

/// The first document of the `shop` policies (`mask-email`), without `subscribe-employees`.
fn only_mask_email() -> String {
    SHOP_POLICIES.split("---\n").next().unwrap().to_owned()
}

/// The `shop` policies, `subscribe-employees` marked `gitops: {prune: false}`.
fn never_prune_subscribe_employees() -> String {
    SHOP_POLICIES.replace(
        "policyKey: subscribe-employees\n",
        "policyKey: subscribe-employees\ngitops: {prune: false}\n",
    )
}

fn has(managed: &std::collections::BTreeSet<(String, String)>, kind: &str, key: &str) -> bool {
    managed.contains(&(kind.to_owned(), key.to_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_spec_deletes_its_object_only_with_allow_destroy() {
    let env = Env::shop_applied().await;
    env.specs.write("policies/policies.yaml", &only_mask_email());

    let plan = env.plan_json(&[]).await;
    let c = change(&plan, "policy", "subscribe-employees");
    assert_eq!(c["action"], "delete");
    assert_eq!(c["destructive"], true);
    assert!(c["live_id"].is_i64(), "{c:#}");
    let text = env.plan(&[]).await.stdout;
    assert!(
        text.contains("  - policy \"subscribe-employees\" will be deleted (destructive)"),
        "{text}"
    );

    let refusal =
        "refusing to apply: the plan destroys data or objects: policy \"subscribe-employees\"";
    env.apply_refused(&[], refusal).await;
    assert!(has(&env.managed(), "policy", "subscribe-employees"));

    env.clear_requests().await;
    env.apply(&["--allow-destroy"]).await.must_exit(0);
    let id = c["live_id"].as_i64().unwrap();
    assert_eq!(writes(&env.requests().await), [format!("DELETE /policy/global/{id}")]);
    let view = env.view().await;
    assert_eq!(view.policies.into_iter().collect::<Vec<_>>(), ["mask-email"]);
    assert!(!has(&env.managed(), "policy", "subscribe-employees"), "forgotten by the state");
    env.assert_converged().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_false_keeps_the_object_on_the_tenant_and_only_forgets_it() {
    let env = Env::shop().await;
    env.specs.write("policies/policies.yaml", &never_prune_subscribe_employees());
    env.apply_in_process().await;
    env.specs.write("policies/policies.yaml", &only_mask_email());

    let plan = env.plan_json(&[]).await;
    let c = change(&plan, "policy", "subscribe-employees");
    assert!(c["blocked"].as_str().unwrap_or_default().contains("prune: false"), "{c:#}");
    assert_eq!(c["destructive"], false);
    assert_eq!(c["write"], false);
    assert_eq!(plan["summary"]["blocked"], 1);
    let text = env.plan(&[]).await.stdout;
    assert!(text.contains("# kept: policy \"subscribe-employees\" will not be deleted"), "{text}");

    env.clear_requests().await;
    let run = env.apply(&[]).await.must_exit(0);
    assert!(run.stdout.contains("no longer managed"), "{}", run.stdout);
    assert_eq!(writes(&env.requests().await), Vec::<String>::new(), "nothing is deleted");
    assert!(env.view().await.policies.contains("subscribe-employees"), "kept on the tenant");
    assert!(!has(&env.managed(), "policy", "subscribe-employees"), "no longer managed");

    // Now it is like any object made by hand: listed, never touched.
    let plan = env.plan_json(&[]).await;
    assert!(
        plan["unmanaged"].as_array().unwrap().iter().any(|u| u["name"] == "subscribe-employees"),
        "{plan:#}"
    );
    env.apply(&["--allow-destroy", "--force"]).await.must_exit(0);
    assert!(env.view().await.policies.contains("subscribe-employees"));
    env.assert_converged().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_false_added_to_a_managed_object_protects_it_too() {
    let env = Env::shop_applied().await;
    env.specs.write("policies/policies.yaml", &never_prune_subscribe_employees());
    // The protection itself must reach the state, without a call to the tenant.
    env.plan(&["--detailed-exitcode"]).await.must_exit(2);
    let plan = env.plan_json(&[]).await;
    let c = change(&plan, "policy", "subscribe-employees");
    assert_eq!(c["action"], "update", "{plan:#}");
    assert_eq!(c["write"], false, "{c:#}");
    env.clear_requests().await;
    env.apply(&[]).await.must_exit(0);
    assert_eq!(writes(&env.requests().await), Vec::<String>::new());
    env.assert_converged().await;

    env.specs.write("policies/policies.yaml", &only_mask_email());
    let plan = env.plan_json(&[]).await;
    assert!(change(&plan, "policy", "subscribe-employees")["blocked"].is_string(), "{plan:#}");
    env.apply(&["--allow-destroy"]).await.must_exit(0);
    assert!(env.view().await.policies.contains("subscribe-employees"), "kept on the tenant");
    assert!(!has(&env.managed(), "policy", "subscribe-employees"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_every_managed_object_needs_force_even_with_allow_destroy() {
    let env = Env::shop_applied().await;
    remove_shop(&env.specs);
    let before = without_times(&env.tenant().await);
    // Five objects, seven with the connection's three data sources counted one by one.
    let refusal = "refusing to apply: the plan deletes every managed object (7 of 7)";
    env.apply_refused(&["--allow-destroy"], refusal).await.stderr_has("--force");
    assert_eq!(env.managed().len(), 5);

    // A mis-typed spec root fails closed instead of planning "delete everything".
    let missing = env.specs.path().join("no-such-dir").display().to_string();
    let run = env
        .run(&["apply", &missing, "--auto-approve", "--allow-destroy", "--force"])
        .await
        .must_exit(1);
    assert!(run.stderr.contains("does not exist"), "{}", run.stderr);
    assert!(run.stderr.contains("nothing was applied"), "{}", run.stderr);
    assert_eq!(without_times(&env.tenant().await), before, "nothing changed");

    env.apply(&["--allow-destroy", "--force"]).await.must_exit(0);
    let view = env.view().await;
    assert!(
        view.policies.is_empty() && view.purposes.is_empty() && view.projects.is_empty(),
        "{view:?}"
    );
    assert!(view.connections.is_empty() && view.data_sources.is_empty(), "{view:?}");
    assert_eq!(env.managed().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_more_than_a_quarter_needs_force() {
    let env = Env::with_policies(8).await;

    // 2 of 8 is 25%: not more than the threshold.
    env.specs.remove("policies/p1.yaml").remove("policies/p2.yaml");
    env.apply(&["--allow-destroy"]).await.must_exit(0);
    assert_eq!(env.view().await.policies.len(), 6);

    // 3 of 6 is 50%.
    env.specs.remove("policies/p3.yaml").remove("policies/p4.yaml").remove("policies/p5.yaml");
    let refusal = "refusing to apply: the plan deletes or disables 3 of 6 managed objects and data sources, more than 25%";
    env.apply_refused(&["--allow-destroy"], refusal).await;
    env.apply(&["--allow-destroy", "--force"]).await.must_exit(0);
    assert_eq!(env.view().await.policies.into_iter().collect::<Vec<_>>(), ["p6", "p7", "p8"]);
    env.assert_converged().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_made_by_hand_are_listed_as_unmanaged_and_never_touched() {
    let env = Env::start().await;
    env.by_hand(Method::POST, "/api/v2/policy", Some(&hand_policy("hand-policy"))).await;
    env.by_hand(Method::POST, "/api/v2/purpose", Some(&json!({"name": "Hand Purpose"}))).await;
    env.by_hand(
        Method::POST,
        "/api/v2/project",
        Some(&json!({"projectKey": "hand-project", "name": "Hand Project"})),
    )
    .await;
    env.by_hand(
        Method::POST,
        "/api/v2/data?wait=-1",
        Some(&json!({"connectionKey": "hand", "connection": {"handler": "PostgreSQL",
            "hostname": "pg.example.com", "database": "HAND"},
            "sources": [{"tableName": "T", "schema": "S"}]})),
    )
    .await;
    let hand_made = without_times(&env.tenant().await);
    write_shop(&env.specs);

    let plan = env.plan_json(&[]).await;
    let mut unmanaged: Vec<(String, String)> = plan["unmanaged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["kind"].as_str().unwrap().to_owned(), u["name"].as_str().unwrap().to_owned()))
        .collect();
    unmanaged.sort();
    let expected = [
        ("datasource", "s t"),
        ("policy", "hand-policy"),
        ("project", "hand-project"),
        ("purpose", "Hand Purpose"),
    ];
    assert_eq!(
        unmanaged,
        expected.iter().map(|(k, n)| ((*k).to_owned(), (*n).to_owned())).collect::<Vec<_>>()
    );
    let text = env.plan(&[]).await.stdout;
    assert!(text.contains("Unmanaged objects on the tenant"), "{text}");
    assert!(text.contains("policy \"hand-policy\""), "{text}");

    env.apply_in_process().await;
    remove_shop(&env.specs);
    env.apply(&["--allow-destroy", "--force"]).await.must_exit(0);
    let after = without_times(&env.tenant().await);
    for part in ["policies", "purposes", "projects", "connections", "dataSources"] {
        let strip_ids = |v: &Value| v[part].clone();
        assert_eq!(strip_ids(&after), strip_ids(&hand_made), "hand-made {part} are untouched");
    }
    assert!(env.managed().is_empty());
    env.assert_converged().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_the_tenant_refuses_is_not_applied_at_all() {
    let env = Env::shop().await;
    // K-Anonymization masking on a tenant that has not activated it: the dry run says 422.
    env.specs.write(
        "policies/kanon.yaml",
        &policy_spec("kanon")
            .replace("maskingConfig: {type: Hash}", "maskingConfig: {type: K-Anonymization}"),
    );
    let run = env.plan(&["--detailed-exitcode"]).await.must_exit(1);
    assert!(run.stdout.contains("(422)"), "{}", run.stdout);
    let run = env.apply(&["--allow-destroy", "--force"]).await.must_exit(1);
    assert!(
        run.stderr.contains("refusing to apply: the tenant refuses 1 object(s)"),
        "{}",
        run.stderr
    );
    assert_eq!(writes(&env.requests().await), Vec::<String>::new(), "not even the valid objects");
    assert!(env.managed().is_empty());
}

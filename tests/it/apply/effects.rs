//! Every implicit effect of Immuta's full-replace semantics: an edit, the plan that shows it
//! (JSON `effects[].type` and the text line), the refusal without `--allow-destroy` where it is
//! destructive (nothing changes), and a tenant that matches the plan after apply.

use serde_json::{Value, json};

use crate::support::tenant::{
    Env, change, data_source_records, edit, effect_types, project_payload, without_times,
};

/// Plans (JSON and text); asserts the effect types of `kind`/`key`, that the text shows
/// `line`, and whether the change is destructive. Answers the JSON plan.
async fn planned(
    env: &Env,
    kind: &str,
    key: &str,
    types: &[&str],
    line: &str,
    destructive: bool,
) -> Value {
    let plan = env.plan_json(&[]).await;
    assert_eq!(effect_types(&plan, kind, key), types, "{plan:#}");
    assert_eq!(change(&plan, kind, key)["destructive"], destructive, "{plan:#}");
    let text = env.plan(&["--detailed-exitcode"]).await.must_exit(2).stdout;
    assert!(text.contains(line), "the text plan shows `{line}`:\n{text}");
    plan
}

/// Apply without `--allow-destroy` is refused (exit 1) and the tenant is untouched.
async fn refused_without_consent(env: &Env, label: &str) {
    let state_before = env.state_file();
    let refusal = format!("refusing to apply: the plan destroys data or objects: {label}");
    env.apply_refused(&[], &refusal).await.stderr_has("--allow-destroy");
    assert_eq!(env.state_file(), state_before, "nor the state");
}

/// `(id, deleted, tableTags, owners)` of a data source by name.
fn record(state: &Value, name: &str) -> Value {
    let d = &data_source_records(state)[name];
    json!({"id": d["id"], "deleted": d["deleted"], "tableTags": d["tableTags"], "owners": d["owners"]})
}

fn ids(state: &Value) -> Vec<(String, u64)> {
    data_source_records(state)
        .into_iter()
        .map(|(n, d)| (n, d["id"].as_u64().unwrap_or_default()))
        .collect()
}

/// Everything but the data sources and connections is as it was.
fn others_unchanged(before: &Value, after: &Value) {
    for part in ["policies", "purposes", "projects", "licenses"] {
        assert_eq!(without_times(&before[part]), without_times(&after[part]), "{part} changed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_dropped_from_sources_disables_its_data_source() {
    let env = Env::shop_applied().await;
    edit(&env.specs, "data/shop.yaml", "  - {tableName: REFUNDS, schema: PUBLIC}\n", "");
    let plan = planned(
        &env,
        "datasource",
        "shop",
        &["tables_removed"],
        "! data sources of tables no longer listed are disabled: `PUBLIC.REFUNDS` (destructive)",
        true,
    )
    .await;
    let effect = &change(&plan, "datasource", "shop")["effects"][0];
    assert_eq!(effect["tables"], json!(["PUBLIC.REFUNDS"]));
    assert_eq!(effect["hard_delete"], false);
    assert_eq!(
        change(&plan, "datasource", "shop")["server"]["deleting"],
        json!(["public refunds"])
    );
    refused_without_consent(&env, "datasource \"shop\"").await;

    let before = env.tenant().await;
    env.apply(&["--allow-destroy"]).await.must_exit(0);
    let after = env.tenant().await;
    assert_eq!(ids(&after), ids(&before), "no data source was deleted or recreated");
    assert_eq!(record(&after, "public refunds")["deleted"], true, "REFUNDS is disabled");
    for name in ["public customers", "public orders"] {
        assert_eq!(record(&after, name), record(&before, name), "{name} is untouched");
    }
    others_unchanged(&before, &after);
    env.assert_converged().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_hard_delete_a_dropped_table_is_deleted() {
    let env = Env::shop_applied().await;
    edit(&env.specs, "data/shop.yaml", "  - {tableName: REFUNDS, schema: PUBLIC}\n", "");
    edit(&env.specs, "data/shop.yaml", "options:\n", "options:\n  hardDelete: true\n");
    let plan = planned(
        &env,
        "datasource",
        "shop",
        &["tables_removed"],
        "! data sources of tables no longer listed are DELETED (hardDelete): `PUBLIC.REFUNDS` (destructive)",
        true,
    )
    .await;
    assert_eq!(change(&plan, "datasource", "shop")["effects"][0]["hard_delete"], true);
    refused_without_consent(&env, "datasource \"shop\"").await;

    let before = env.tenant().await;
    env.apply(&["--allow-destroy"]).await.must_exit(0);
    let after = env.tenant().await;
    let mut expected = ids(&before);
    expected.retain(|(n, _)| n != "public refunds");
    assert_eq!(ids(&after), expected, "REFUNDS is gone for good; the others keep their ids");
    others_unchanged(&before, &after);
    env.assert_converged().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn narrowing_all_tables_to_a_list_shows_the_servers_names() {
    let env = Env::start().await;
    env.set_catalog(&super::catalog(&[("lake.example.com", "LAKE", "PUBLIC", &["A", "B", "C"])]))
        .await;
    env.specs.write(
        "lake.yaml",
        "connectionKey: lake\nconnection: {handler: PostgreSQL, hostname: lake.example.com, database: LAKE}\n\
         sources:\n  - all: true\n",
    );
    let plan = env.plan_json(&[]).await;
    assert!(
        plan["warnings"].as_array().unwrap().iter().any(|w| w["code"] == "schema-monitoring"),
        "{plan:#}"
    );
    env.apply(&[]).await.must_exit(0);
    assert_eq!(env.view().await.active("lake"), ["public a", "public b", "public c"]);

    edit(
        &env.specs,
        "lake.yaml",
        "  - all: true\n",
        "  - {tableName: A, schema: PUBLIC}\n  - {tableName: B, schema: PUBLIC}\n",
    );
    let plan = planned(
        &env,
        "datasource",
        "lake",
        &["tables_removed"],
        "data sources of tables no longer listed are disabled: `public c`",
        true,
    )
    .await;
    assert_eq!(change(&plan, "datasource", "lake")["effects"][0]["tables"], json!(["public c"]));
    refused_without_consent(&env, "datasource \"lake\"").await;
    env.apply(&["--allow-destroy"]).await.must_exit(0);
    let view = env.view().await;
    assert_eq!(view.active("lake"), ["public a", "public b"]);
    assert_eq!(view.data_sources["lake"].len(), 3, "C is disabled, not deleted");
    env.assert_converged().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_table_tags_replace_the_old_ones_on_every_data_source() {
    let env = Env::shop_applied().await;
    edit(
        &env.specs,
        "data/shop.yaml",
        "tableTags: [Dept.Sales]",
        "tableTags: [Dept.Finance, Confidential]",
    );
    let plan = planned(
        &env,
        "datasource",
        "shop",
        &["table_tags_replaced"],
        "! tableTags are replaced: removes `Dept.Sales` from and adds `Confidential`, `Dept.Finance` to every data source of the connection",
        false,
    )
    .await;
    let effect = &change(&plan, "datasource", "shop")["effects"][0];
    assert_eq!(effect["removed"], json!(["Dept.Sales"]));
    assert_eq!(effect["added"], json!(["Confidential", "Dept.Finance"]));

    let before = env.tenant().await;
    env.apply(&[]).await.must_exit(0);
    let after = env.tenant().await;
    assert_eq!(ids(&after), ids(&before));
    for name in ["public customers", "public orders", "public refunds"] {
        let mut expected = record(&before, name);
        expected["tableTags"] = json!(["Confidential", "Dept.Finance"]);
        assert_eq!(record(&after, name), expected, "{name}");
    }
    others_unchanged(&before, &after);
    env.assert_converged().await;
}

/// The emulator's user for a key (`apikey-user-` + 8 hex digits of its SHA-256).
fn caller(key: &str) -> String {
    use sha2::{Digest, Sha256};
    format!("apikey-user-{}", &hex::encode(Sha256::digest(key.as_bytes()))[..8])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_a_new_list_replaces_absent_keeps_and_empty_keeps_only_the_caller() {
    let env = Env::shop_applied().await;
    let owners_of = |state: &Value| -> Vec<Value> {
        ["public customers", "public orders", "public refunds"]
            .iter()
            .map(|n| record(state, n)["owners"].clone())
            .collect()
    };
    let stewards = json!({"type": "group", "name": "stewards"});
    let maria = json!({"type": "user", "name": "maria@example.com"});
    let auditors = json!({"type": "group", "name": "auditors"});
    assert_eq!(owners_of(&env.tenant().await), vec![json!([stewards, maria]); 3]);

    // A changed list: exactly the new list.
    edit(
        &env.specs,
        "data/shop.yaml",
        "  - {type: user, name: maria@example.com}\n",
        "  - {type: group, name: auditors}\n",
    );
    let plan = planned(
        &env,
        "datasource",
        "shop",
        &["owners_replaced"],
        "! owners are replaced on every data source: removes `user:maria@example.com`, adds `group:auditors`",
        false,
    )
    .await;
    let effect = &change(&plan, "datasource", "shop")["effects"][0];
    assert_eq!(effect["all_but_caller"], false);
    env.apply(&[]).await.must_exit(0);
    assert_eq!(owners_of(&env.tenant().await), vec![json!([stewards, auditors]); 3]);
    env.assert_converged().await;

    // Absent: owners are left alone (a field change, no effect).
    edit(
        &env.specs,
        "data/shop.yaml",
        "owners:\n  - {type: group, name: stewards}\n  - {type: group, name: auditors}\n",
        "",
    );
    let plan = env.plan_json(&[]).await;
    assert_eq!(change(&plan, "datasource", "shop")["action"], "update");
    assert_eq!(effect_types(&plan, "datasource", "shop"), Vec::<String>::new());
    env.apply(&[]).await.must_exit(0);
    assert_eq!(owners_of(&env.tenant().await), vec![json!([stewards, auditors]); 3]);
    env.assert_converged().await;

    // `[]`: every owner but the caller is removed.
    edit(&env.specs, "data/shop.yaml", "sources:\n", "owners: []\nsources:\n");
    let plan = planned(
        &env,
        "datasource",
        "shop",
        &["owners_replaced"],
        "! owners: [] removes every owner of every data source except the caller",
        false,
    )
    .await;
    assert_eq!(change(&plan, "datasource", "shop")["effects"][0]["all_but_caller"], true);
    env.apply(&[]).await.must_exit(0);
    let only_caller = json!([{"type": "user", "name": caller(&env.key)}]);
    assert_eq!(owners_of(&env.tenant().await), vec![only_caller; 3]);
    env.assert_converged().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_hostname_replaces_every_data_source_with_new_ids() {
    let env = Env::shop_applied().await;
    edit(&env.specs, "data/shop.yaml", "hostname: shop.example.com", "hostname: shop2.example.com");
    let plan = planned(
        &env,
        "datasource",
        "shop",
        &["data_sources_recreated"],
        "connection changed (`hostname`): every data source of the key is deleted and recreated with new ids: \
         `public customers`, `public orders`, `public refunds` (destructive)",
        true,
    )
    .await;
    let c = change(&plan, "datasource", "shop");
    assert_eq!(c["action"], "replace");
    assert_eq!(c["effects"][0]["fields"], json!(["hostname"]));
    assert_eq!(plan["summary"]["replace"], 1);
    refused_without_consent(&env, "datasource \"shop\"").await;

    let before = env.tenant().await;
    // Three of the seven managed objects and data sources are deleted and recreated: a mass
    // deletion too.
    env.apply_refused(&["--allow-destroy"], "deletes or disables 3 of 7").await;
    env.apply(&["--allow-destroy", "--force"]).await.must_exit(0);
    let after = env.tenant().await;
    let (old, new) = (ids(&before), ids(&after));
    let names = |v: &[(String, u64)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&new), names(&old), "the same data sources exist again");
    for ((name, old_id), (_, new_id)) in old.iter().zip(&new) {
        assert_ne!(old_id, new_id, "{name} was recreated with a new id");
    }
    assert_eq!(
        after["connections"]["shop"]["payload"]["connection"]["hostname"],
        "shop2.example.com"
    );
    others_unchanged(&before, &after);
    env.assert_converged().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subpurpose_no_longer_listed_is_deleted() {
    let env = Env::shop_applied().await;
    edit(&env.specs, "purposes/analytics.yaml", "  - name: Analytics.Product\n", "");
    let plan = planned(
        &env,
        "purpose",
        "Analytics",
        &["subpurposes_removed"],
        "! subpurposes no longer listed are deleted: `Analytics.Product` (destructive)",
        true,
    )
    .await;
    assert_eq!(
        change(&plan, "purpose", "Analytics")["effects"][0]["names"],
        json!(["Analytics.Product"])
    );
    refused_without_consent(&env, "purpose \"Analytics\"").await;

    let before = env.tenant().await;
    env.apply(&["--allow-destroy"]).await.must_exit(0);
    let view = env.view().await;
    assert_eq!(
        view.purposes.into_iter().collect::<Vec<_>>(),
        ["Analytics", "Analytics.Marketing"],
        "only the dropped subpurpose is gone"
    );
    let after = env.tenant().await;
    for part in ["policies", "projects", "dataSources", "connections"] {
        assert_eq!(without_times(&before[part]), without_times(&after[part]), "{part} changed");
    }
    env.assert_converged().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_sources_and_purposes_dropped_from_a_project_are_removed_from_it() {
    let env = Env::shop_applied().await;
    edit(
        &env.specs,
        "projects/insights.yaml",
        "purposes: [Analytics, Analytics.Marketing]\ndatasources: [public customers, public orders]",
        "purposes: [Analytics]\ndatasources: [public customers]",
    );
    let plan = planned(
        &env,
        "project",
        "insights",
        &["project_data_sources_removed", "project_purposes_removed"],
        "! data sources removed from the project: `public orders`",
        false,
    )
    .await;
    let text = env.plan(&[]).await.stdout;
    assert!(text.contains("! purposes removed from the project: `Analytics.Marketing`"), "{text}");
    assert_eq!(change(&plan, "project", "insights")["server"]["data_sources_removed"], 1);

    let before = env.tenant().await;
    env.apply(&[]).await.must_exit(0);
    let after = env.tenant().await;
    let project = project_payload(&after, "insights");
    assert_eq!(project["datasources"], json!(["public customers"]));
    assert_eq!(project["purposes"], json!(["Analytics"]));
    for part in ["policies", "purposes", "dataSources", "connections"] {
        assert_eq!(without_times(&before[part]), without_times(&after[part]), "{part} changed");
    }
    env.assert_converged().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_listed_for_the_first_time_replace_the_creator() {
    let env = Env::shop().await;
    let no_owners =
        "owners:\n  - {type: group, name: stewards}\n  - {type: user, name: maria@example.com}\n";
    edit(&env.specs, "data/shop.yaml", no_owners, "");
    env.apply_in_process().await;
    let creator = json!([{"type": "user", "name": caller(&env.key)}]);
    assert_eq!(record(&env.tenant().await, "public orders")["owners"], creator);

    edit(
        &env.specs,
        "data/shop.yaml",
        "sources:\n",
        "owners:\n  - {type: group, name: stewards}\nsources:\n",
    );
    let plan = planned(
        &env,
        "datasource",
        "shop",
        &["owners_replaced"],
        "! owners are replaced on every data source: adds `group:stewards`; owners not listed (such as the creator) are removed",
        false,
    )
    .await;
    assert_eq!(
        change(&plan, "datasource", "shop")["effects"][0]["added"],
        json!(["group:stewards"])
    );
    env.apply(&[]).await.must_exit(0);
    let stewards = json!([{"type": "group", "name": "stewards"}]);
    assert_eq!(
        record(&env.tenant().await, "public orders")["owners"],
        stewards,
        "the creator is no owner"
    );
    env.assert_converged().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_workspace_that_deletes_its_data_needs_consent() {
    let env = Env::shop().await;
    let with = "projectKey: ws\nname: Workspace\nworkspace:\n  type: databricks\n  config: {}\n";
    env.specs.write(
        "projects/ws.yaml",
        &format!("{with}gitops:\n  deleteDataSourcesOnWorkspaceDelete: true\n"),
    );
    env.apply_in_process().await;
    env.specs.write(
        "projects/ws.yaml",
        "projectKey: ws\nname: Workspace\ngitops:\n  deleteDataSourcesOnWorkspaceDelete: true\n",
    );
    let plan = planned(
        &env,
        "project",
        "ws",
        &["workspace_deleted"],
        "its data and data sources are DELETED",
        true,
    )
    .await;
    let effect = &change(&plan, "project", "ws")["effects"][0];
    assert_eq!(effect["deletes_data"], true);
    refused_without_consent(&env, "project \"ws\"").await;
    env.apply(&["--allow-destroy"]).await.must_exit(0);
    let posted = env
        .requests()
        .await
        .into_iter()
        .filter(|r| r["path"] == "/api/v2/project" && r["query"] != "dryRun=true")
        .map(|r| r["query"].as_str().unwrap_or_default().to_owned())
        .collect::<Vec<_>>();
    assert!(
        posted.iter().any(|q| q.contains("deleteDataSourcesOnWorkspaceDelete=true")),
        "{posted:?}"
    );
    env.assert_converged().await;

    // Without the parameter the workspace goes and its data stays: shown, not destructive.
    env.specs.write("projects/ws.yaml", with);
    env.apply_in_process().await;
    env.specs.write("projects/ws.yaml", "projectKey: ws\nname: Workspace\n");
    planned(&env, "project", "ws", &["workspace_deleted"], "its data is kept", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_certify_and_re_acknowledge_required_are_shown_as_what_they_cause() {
    let env = Env::shop_applied().await;
    edit(
        &env.specs,
        "policies/policies.yaml",
        "name: Hash e-mail\n",
        "name: Hash e-mails\ngitops: {reCertify: true}\n",
    );
    edit(
        &env.specs,
        "purposes/analytics.yaml",
        "description: Aggregate analysis.\n",
        "description: Aggregates.\ngitops: {reAcknowledgeRequired: true}\n",
    );
    let plan = env.plan_json(&[]).await;
    assert_eq!(effect_types(&plan, "policy", "mask-email"), ["recertification"]);
    assert_eq!(effect_types(&plan, "purpose", "Analytics"), ["re_acknowledgement"]);
    let ack = &change(&plan, "purpose", "Analytics")["effects"][0];
    assert_eq!(ack["purposes"], json!(["Analytics", "Analytics.Marketing", "Analytics.Product"]));
    assert_eq!(ack["destructive"], false);
    let text = env.plan(&[]).await.stdout;
    assert!(text.contains("the policy must be certified again on every data source"), "{text}");
    assert!(text.contains("must acknowledge the purpose statement again"), "{text}");
    // Not destructive: applied without consent.
    env.apply(&[]).await.must_exit(0);
    env.assert_converged().await;
}

//! `POST /api/v2/policy|project|purpose`: upserts, validation, references and the purpose
//! hierarchy.

use immuta_emulator::EmulatorConfig;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::emulator_config;
use super::{Tenant, data_payload, strings, tables};

fn masking_policy(key: &str, masking_type: &str) -> Value {
    json!({
        "policyKey": key,
        "name": format!("Mask {key}"),
        "type": "data",
        "actions": [{"rules": [{"type": "Masking", "config": {
            "fields": [{"type": "columnTags", "columnTag": "PII"}],
            "maskingConfig": {"type": masking_type}}}]}],
        "circumstances": [{"type": "columnTags", "columnTag": "PII"}],
    })
}

#[tokio::test]
async fn policies_upsert_by_key_with_stable_ids() {
    let t = Tenant::start().await;
    let policy = masking_policy("mask-pii", "Hash");

    let dry = t.post("/api/v2/policy?dryRun=true", &policy).await;
    assert_eq!(
        dry.body,
        json!({"dryRun": true, "creating": true, "updating": false, "policyId": null})
    );

    let created = t.post("/api/v2/policy", &policy).await;
    assert_eq!(created.status, StatusCode::OK);
    assert_eq!(created.body["creating"], true);
    assert_eq!(created.body["updating"], false);
    let id = created.body["policyId"].clone();
    assert!(id.is_u64());

    // Same content, keys in another order: nothing to do.
    let reordered = json!({
        "circumstances": policy["circumstances"],
        "actions": policy["actions"],
        "type": "data",
        "name": policy["name"],
        "policyKey": "mask-pii",
    });
    let same = t.post("/api/v2/policy", &reordered).await;
    assert_eq!(
        same.body,
        json!({"dryRun": false, "creating": false, "updating": false, "policyId": id})
    );

    let changed = masking_policy("mask-pii", "Constant");
    let dry_update = t.post("/api/v2/policy?dryRun=true", &changed).await;
    assert_eq!(dry_update.body["updating"], true);
    let update = t.post("/api/v2/policy", &changed).await;
    assert_eq!(
        update.body,
        json!({"dryRun": false, "creating": false, "updating": true, "policyId": id})
    );

    let listed = t.get("/policy/global").await;
    let items = listed.body.as_array().expect("a bare array");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["policyKey"], "mask-pii");
    assert_eq!(items[0]["id"], id);
    assert_eq!(items[0]["deleted"], false);
    assert_eq!(items[0]["actions"][0]["rules"][0]["config"]["maskingConfig"]["type"], "Constant");

    // Tampering in the UI makes the next identical post an update.
    t.control(Method::PATCH, "/objects/policy/mask-pii", Some(&json!({"staged": true}))).await;
    assert_eq!(t.post("/api/v2/policy", &changed).await.body["updating"], true);

    let gone = t.delete(&format!("/policy/global/{id}")).await;
    assert_eq!(gone.status, StatusCode::OK);
    assert_eq!(t.delete(&format!("/policy/global/{id}")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(t.post("/api/v2/policy", &changed).await.body["creating"], true);
}

#[tokio::test]
async fn policy_validation_names_the_field() {
    let t = Tenant::start().await;
    let subscription = json!({"policyKey": "s", "name": "S", "type": "subscription",
                              "actions": {"type": "anyone"}});
    assert_eq!(t.post("/api/v2/policy", &subscription).await.status, StatusCode::OK);

    let mut cases: Vec<(Value, &str)> = Vec::new();
    let mut without_key = subscription.clone();
    without_key.as_object_mut().unwrap().remove("policyKey");
    cases.push((without_key, "policyKey"));
    let mut without_name = subscription.clone();
    without_name.as_object_mut().unwrap().remove("name");
    cases.push((without_name, "name"));
    let mut without_actions = subscription.clone();
    without_actions.as_object_mut().unwrap().remove("actions");
    cases.push((without_actions, "actions"));
    cases.push((json!({"policyKey": "x", "name": "X", "actions": {}}), "type"));
    cases.push((json!({"policyKey": "x", "name": "X", "type": "row", "actions": []}), "type"));
    cases.push((
        json!({"policyKey": "x", "name": "X", "type": "subscription", "actions": []}),
        "actions must be an object",
    ));
    cases.push((
        json!({"policyKey": "x", "name": "X", "type": "data", "actions": {"rules": []}}),
        "actions must be an array",
    ));
    cases.push((
        json!({"policyKey": "x", "name": "X", "type": "data",
               "actions": [{"rules": [{"type": "Scramble"}]}]}),
        "actions[0].rules[0].type",
    ));
    cases.push((
        json!({"policyKey": "x", "name": "X", "type": "data",
               "actions": [{"rules": [{"type": "Masking", "config": {"maskingConfig": {}}}]}]}),
        "maskingConfig.type",
    ));
    for (payload, field) in cases {
        let answer = t.post("/api/v2/policy", &payload).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{field}: {:?}", answer.body);
        assert!(answer.message().contains(field), "{field}: {}", answer.message());
    }

    // Both documented spellings of the row-restriction rule types are accepted.
    for (i, rule) in [
        "Row Restriction By User Entitlements",
        "Row Restriction by User Entitlements",
        "Row Restriction by Custom Where Clause",
        "Row Restriction By Custom Where Clause",
    ]
    .iter()
    .enumerate()
    {
        let payload = json!({"policyKey": format!("r{i}"), "name": "R", "type": "data",
                             "actions": [{"rules": [{"type": rule, "config": {}}]}]});
        let answer = t.post("/api/v2/policy", &payload).await;
        assert_eq!(answer.status, StatusCode::OK, "{rule}: {:?}", answer.body);
    }
}

#[tokio::test]
async fn an_unquoted_yaml_null_masking_type_is_rejected_naming_the_field() {
    let t = Tenant::start().await;
    let yaml = "name: Conditional\npolicyKey: data mask otherwise\ntype: data\nactions:\n  - rules:\n      \
                - type: Masking\n        config:\n          fields:\n            - type: columnTags\n              \
                columnTag: Discovered.Country\n          maskingConfig:\n            type: Null\n";
    let answer = t.send_yaml("/api/v2/policy", yaml).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.message().contains("maskingConfig.type"), "{}", answer.message());

    let quoted = yaml.replace("type: Null", "type: \"Null\"");
    assert_eq!(t.send_yaml("/api/v2/policy", &quoted).await.status, StatusCode::OK);
}

#[tokio::test]
async fn k_anonymization_masking_needs_the_tenant_setting() {
    let t = Tenant::start().await;
    let policy = masking_policy("kanon", "K-Anonymization");
    let refused = t.post("/api/v2/policy", &policy).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.message().contains("K-Anonymization"), "{}", refused.message());
    let dry = t.post("/api/v2/policy?dryRun=true", &policy).await;
    assert_eq!(dry.status, StatusCode::UNPROCESSABLE_ENTITY, "a dry run refuses it too");

    t.control(Method::PUT, "/settings", Some(&json!({"kAnonymization": true}))).await;
    assert_eq!(t.post("/api/v2/policy", &policy).await.status, StatusCode::OK);

    let on =
        Tenant::start_with(EmulatorConfig { k_anonymization: true, ..emulator_config() }).await;
    assert_eq!(on.post("/api/v2/policy", &policy).await.status, StatusCode::OK);
}

#[tokio::test]
async fn projects_must_reference_existing_data_sources_and_purposes() {
    // Projects are posted once: no acknowledgement step.
    let t = Tenant::with_variants(&["acknowledgement=none"]).await;
    t.post_data(&data_payload("acme", "h", "d", Some(tables(&["A", "B"])))).await;
    assert_eq!(t.post("/api/v2/purpose", &json!({"name": "Fraud"})).await.status, StatusCode::OK);

    let unknown = json!({"projectKey": "p", "name": "P",
                         "datasources": ["public a", "public zzz"], "purposes": ["Fraud"]});
    let answer = t.post("/api/v2/project", &unknown).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.message().contains("datasources") && answer.message().contains("public zzz"));
    assert!(!answer.message().contains("\"public a\""), "{}", answer.message());

    let no_purpose = json!({"projectKey": "p", "name": "P", "purposes": ["Fraud", "Marketing"]});
    let answer = t.post("/api/v2/project", &no_purpose).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.message().contains("purposes") && answer.message().contains("Marketing"));

    // Disabled data sources cannot be added either.
    t.post_data(&data_payload("acme", "h", "d", Some(tables(&["A"])))).await;
    let disabled = json!({"projectKey": "p", "name": "P", "datasources": ["public b"]});
    let answer = t.post("/api/v2/project", &disabled).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.message().contains("public b"));

    let good = json!({"projectKey": "p", "name": "P", "datasources": ["public a"],
                      "purposes": ["Fraud"], "tags": ["Team.Risk"]});
    let created = t.post("/api/v2/project", &good).await;
    assert_eq!(created.status, StatusCode::OK);
    assert_eq!(created.body["numberOfDataSourcesAdded"], 1);
    // Objects, as real tenants answer them (Terraform had to learn it: TF@d6d4eaa, TF@e227eab).
    let detail = t.get(&format!("/project/{}", created.body["projectId"])).await;
    assert_eq!(detail.body["purposes"][0]["name"], "Fraud");
    assert!(detail.body["purposes"][0]["id"].is_u64());
    assert_eq!(detail.body["tags"], json!([{"name": "Team.Risk", "source": "curated"}]));
}

#[tokio::test]
async fn projects_upsert_by_key_and_report_membership_and_workspace_changes() {
    let t = Tenant::start().await;
    t.post_data(&data_payload("acme", "h", "d", Some(tables(&["A", "B", "C"])))).await;
    let v1 = json!({"projectKey": "analytics", "name": "Analytics",
                    "datasources": ["public a", "public b"]});
    let created = t.post("/api/v2/project", &v1).await;
    let id = created.body["projectId"].clone();
    assert_eq!(created.body["creating"], true);
    assert_eq!(created.body["numberOfDataSourcesAdded"], 2);

    let same = t.post("/api/v2/project", &v1).await;
    assert_eq!(
        same.body,
        json!({"dryRun": false, "creating": false, "updating": false,
               "numberOfDataSourcesAdded": 0, "numberOfDataSourcesRemoved": 0,
               "creatingWorkspace": false, "deletingWorkspace": false, "projectId": id})
    );

    let v2 = json!({"projectKey": "analytics", "name": "Analytics",
                    "datasources": ["public b", "public c"],
                    "workspace": {"type": "snowflake", "config": {"schema": "NATIVE"}}});
    let updated = t.post("/api/v2/project", &v2).await;
    assert_eq!(updated.body["updating"], true);
    assert_eq!(updated.body["numberOfDataSourcesAdded"], 1);
    assert_eq!(updated.body["numberOfDataSourcesRemoved"], 1);
    assert_eq!(updated.body["creatingWorkspace"], true);
    assert_eq!(updated.body["projectId"], id);
    let members = t.get(&format!("/project/{id}/dataSources")).await;
    let names: Vec<String> = members.body["dataSources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["public b", "public c"]);

    let dropped = t.post("/api/v2/project", &v1).await;
    assert_eq!(dropped.body["deletingWorkspace"], true);

    // Someone edits the project in the UI: the next identical post puts it back.
    let edit = json!({"description": "edited", "tags": ["UI.Tag"]});
    t.control(Method::PATCH, "/objects/project/analytics", Some(&edit)).await;
    assert_eq!(t.get("/tag").await.body[0]["name"], "UI.Tag");
    assert!(t.get("/tag").await.body[0]["id"].is_u64());
    assert_eq!(t.post("/api/v2/project", &v1).await.body["updating"], true);
    assert_eq!(t.post("/api/v2/project", &v1).await.body["updating"], false);

    let detail = t.get(&format!("/project/{id}")).await;
    assert_eq!(detail.body["projectKey"], "analytics");
    assert_eq!(detail.body["type"], "user");

    let missing = t.post("/api/v2/project", &json!({"projectKey": "x"})).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert!(missing.message().contains("name"));

    assert_eq!(t.delete("/api/v2/project/analytics").await.status, StatusCode::OK);
    assert_eq!(t.delete("/api/v2/project/analytics").await.status, StatusCode::NOT_FOUND);
    assert_eq!(t.get(&format!("/project/{id}")).await.status, StatusCode::NOT_FOUND);
}

fn hierarchy(children: Value) -> Value {
    json!({"name": "Research", "acknowledgement": "Root ack", "subpurposes": children})
}

#[tokio::test]
async fn purposes_build_their_hierarchy_and_reposting_without_a_subpurpose_removes_it() {
    // Read flat: every purpose a row.
    let t = Tenant::with_variants(&["purposes=flat"]).await;
    let full = hierarchy(json!([
        {"name": "Research.Clinical", "acknowledgement": "Clinical ack",
         "subpurposes": [{"name": "Research.Clinical.Trials"}]},
        {"name": "Research.Market"},
    ]));
    let created = t.post("/api/v2/purpose", &full).await;
    assert_eq!(created.status, StatusCode::OK, "{:?}", created.body);
    assert_eq!(created.body["creating"], true);
    let root_id = created.body["purposeId"].clone();

    let listed = t.get("/governance/purpose").await;
    assert_eq!(listed.body["count"], 4);
    let purposes = listed.body["purposes"].as_array().unwrap();
    let names: Vec<&str> = purposes.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["Research", "Research.Clinical", "Research.Clinical.Trials", "Research.Market"]
    );
    assert!(purposes.iter().all(|p| p["systemGenerated"] == false && p["deleted"] == false));
    let trials = &purposes[2];
    assert_eq!(trials["acknowledgement"], "Clinical ack", "inherited from the nearest ancestor");

    let same = t.post("/api/v2/purpose", &full).await;
    assert_eq!(
        same.body,
        json!({"dryRun": false, "creating": false, "updating": false, "purposeId": root_id})
    );

    // A UI edit of a subpurpose is undone by the next identical post.
    let edit = json!({"acknowledgement": "edited"});
    t.control(Method::PATCH, "/objects/purpose/Research.Market", Some(&edit)).await;
    assert_eq!(t.post("/api/v2/purpose", &full).await.body["updating"], true);
    assert_eq!(t.post("/api/v2/purpose", &full).await.body["updating"], false);

    let smaller = hierarchy(json!([{"name": "Research.Clinical"}]));
    let updated = t.post("/api/v2/purpose", &smaller).await;
    assert_eq!(updated.body["updating"], true);
    assert_eq!(updated.body["purposeId"], root_id);
    let names: Vec<String> = t.get("/governance/purpose").await.body["purposes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["Research", "Research.Clinical"]);

    let bad = hierarchy(json!([{"name": "Clinical"}]));
    let answer = t.post("/api/v2/purpose", &bad).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.message().contains("subpurposes[0].name"), "{}", answer.message());
    assert_eq!(
        t.post("/api/v2/purpose", &json!({"description": "x"})).await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn a_purpose_in_use_cannot_be_deleted_and_deletion_cascades() {
    let t = Tenant::with_variants(&["purposes=flat", "acknowledgement=none"]).await;
    let full = hierarchy(json!([{"name": "Research.Clinical"}, {"name": "Research.Market"}]));
    let root_id = t.post("/api/v2/purpose", &full).await.body["purposeId"].clone();
    let project = json!({"projectKey": "p", "name": "P", "purposes": ["Research.Market"]});
    assert_eq!(t.post("/api/v2/project", &project).await.status, StatusCode::OK);

    let refused = t.delete(&format!("/governance/purpose/{root_id}")).await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(refused.message().contains("Research.Market"), "{}", refused.message());
    let shrink = hierarchy(json!([{"name": "Research.Clinical"}]));
    assert_eq!(t.post("/api/v2/purpose", &shrink).await.status, StatusCode::CONFLICT);
    assert_eq!(t.get("/governance/purpose").await.body["count"], 3, "nothing deleted");

    assert_eq!(t.delete("/api/v2/project/p").await.status, StatusCode::OK);
    let deleted = t.delete(&format!("/governance/purpose/{root_id}")).await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(t.get("/governance/purpose").await.body["count"], 0, "subpurposes went too");
    assert_eq!(
        t.delete(&format!("/governance/purpose/{root_id}")).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_deleted_subpurpose_is_recreated_by_the_next_post() {
    let t = Tenant::with_variants(&["purposes=flat"]).await;
    let full = hierarchy(json!([{"name": "Research.Clinical"}]));
    t.post("/api/v2/purpose", &full).await;
    let listed = t.get("/governance/purpose").await;
    let sub = listed.named("purposes", "Research.Clinical").unwrap();
    assert_eq!(strings(&listed.body["purposes"][0]["subpurposes"]), ["Research.Clinical"]);
    assert_eq!(
        t.delete(&format!("/governance/purpose/{}", sub["id"])).await.status,
        StatusCode::OK
    );
    assert_eq!(t.post("/api/v2/purpose", &full).await.body["updating"], true);
    assert_eq!(t.get("/governance/purpose").await.body["count"], 2);
}

/// What a client can read back about projects, purposes and tags, plus the whole store.
async fn tenant_view(t: &Tenant) -> Value {
    let projects = t.get("/project?size=100").await.body;
    let mut details = Vec::new();
    for p in projects["hits"].as_array().into_iter().flatten() {
        let detail = t.get(&format!("/project/{}", p["id"])).await.body;
        let members = t.get(&format!("/project/{}/dataSources", p["id"])).await.body;
        details.push(json!({"detail": detail, "dataSources": members}));
    }
    json!({
        "projects": projects,
        "details": details,
        "purposes": t.get("/governance/purpose").await.body,
        "tags": t.get("/tag").await.body,
        "store": t.state().await,
    })
}

#[tokio::test]
async fn dry_runs_of_projects_and_purposes_change_nothing() {
    // Projects are posted once: no acknowledgement step.
    let t = Tenant::with_variants(&["acknowledgement=none"]).await;
    t.post_data(&data_payload("acme", "h", "d", Some(tables(&["A", "B"])))).await;
    let empty = tenant_view(&t).await;

    // Dry-run creates: the answers say what would happen; nothing is stored.
    let purpose = hierarchy(json!([{"name": "Research.Clinical"}]));
    let dry = t.post("/api/v2/purpose?dryRun=true", &purpose).await;
    assert_eq!(
        dry.body,
        json!({"dryRun": true, "creating": true, "updating": false, "purposeId": null})
    );
    assert_eq!(tenant_view(&t).await, empty);
    let project = json!({"projectKey": "analytics", "name": "Analytics",
                         "datasources": ["public a"], "tags": ["Team.Risk"]});
    let dry = t.post("/api/v2/project?dryRun=true", &project).await;
    assert_eq!(dry.status, StatusCode::OK, "{:?}", dry.body);
    assert_eq!(dry.body["creating"], true);
    assert_eq!(dry.body["projectId"], Value::Null);
    assert_eq!(dry.body["numberOfDataSourcesAdded"], 1);
    assert_eq!(tenant_view(&t).await, empty);

    // Dry-run updates of real objects.
    t.post("/api/v2/purpose", &purpose).await;
    let project = json!({"projectKey": "analytics", "name": "Analytics",
                         "datasources": ["public a"], "purposes": ["Research.Clinical"]});
    let id = t.post("/api/v2/project", &project).await.body["projectId"].clone();
    let stored = tenant_view(&t).await;

    let changed = hierarchy(json!([{"name": "Research.Market"}]));
    let dry = t.post("/api/v2/purpose?dryRun=true", &changed).await;
    // Dropping `Research.Clinical` would be refused: the project uses it. A dry run says so.
    assert_eq!(dry.status, StatusCode::CONFLICT, "{:?}", dry.body);
    let acknowledged = json!({"name": "Research", "acknowledgement": "New",
        "subpurposes": [{"name": "Research.Clinical"}, {"name": "Research.Market"}]});
    let dry = t.post("/api/v2/purpose?dryRun=true", &acknowledged).await;
    assert_eq!(dry.body["updating"], true);
    let moved = json!({"projectKey": "analytics", "name": "Renamed", "datasources": ["public b"],
                       "workspace": {"type": "snowflake", "config": {"schema": "NATIVE"}}});
    let dry = t.post("/api/v2/project?dryRun=true", &moved).await;
    assert_eq!(
        dry.body,
        json!({"dryRun": true, "creating": false, "updating": true,
               "numberOfDataSourcesAdded": 1, "numberOfDataSourcesRemoved": 1,
               "creatingWorkspace": true, "deletingWorkspace": false, "projectId": id})
    );
    assert_eq!(tenant_view(&t).await, stored);

    // A dry-run delete answers what it would delete and keeps it; an unknown key is 404.
    let dry = t.delete("/api/v2/project/analytics?dryRun=true").await;
    assert_eq!(dry.status, StatusCode::OK);
    assert_eq!(
        dry.body,
        json!({"dryRun": true, "projectKey": "analytics", "projectId": id, "deleted": false})
    );
    assert_eq!(tenant_view(&t).await, stored);
    assert_eq!(t.delete("/api/v2/project/nope?dryRun=true").await.status, StatusCode::NOT_FOUND);
    assert_eq!(t.delete("/api/v2/project/analytics").await.body["deleted"], true);
    assert_eq!(t.get(&format!("/project/{id}")).await.status, StatusCode::NOT_FOUND);
}

/// A parameter with no emulated effect (see "Query parameters" in the emulator's docs) must be
/// accepted, change no answer, and be rejected (400 naming it) when it is not a boolean.
async fn accepted_without_effect(t: &Tenant, path: &str, param: &str, payload: &Value) {
    let plain = t.post(&format!("{path}?dryRun=true"), payload).await;
    let with = t.post(&format!("{path}?dryRun=true&{param}=true"), payload).await;
    assert_eq!(with.status, StatusCode::OK, "{param}: {:?}", with.body);
    assert_eq!(with.body, plain.body, "{param} changes the answer");
    let bad = t.post(&format!("{path}?{param}=maybe"), payload).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.message().contains(param), "{}", bad.message());
}

#[tokio::test]
async fn re_certify_is_accepted_and_changes_nothing_observable() {
    let t = Tenant::start().await;
    let mut policy = masking_policy("mask-pii", "Hash");
    policy["certification"] = json!({"label": "Certified", "text": "Reviewed"});
    t.post("/api/v2/policy", &policy).await;
    policy["certification"]["text"] = json!("Reviewed again");
    accepted_without_effect(&t, "/api/v2/policy", "reCertify", &policy).await;

    let updated = t.post("/api/v2/policy?reCertify=true", &policy).await;
    assert_eq!(updated.body["updating"], true);
    let listed = t.get("/policy/global").await;
    assert_eq!(listed.body[0]["certification"], policy["certification"]);
}

#[tokio::test]
async fn removing_a_workspace_with_delete_data_sources_keeps_the_projects_data_sources() {
    let t = Tenant::start().await;
    t.post_data(&data_payload("acme", "h", "d", Some(tables(&["A", "B"])))).await;
    let with_workspace = json!({"projectKey": "p", "name": "P", "datasources": ["public a"],
        "workspace": {"type": "databricks", "config": {"database": "native"}}});
    let id = t.post("/api/v2/project", &with_workspace).await.body["projectId"].clone();
    let without = json!({"projectKey": "p", "name": "P", "datasources": ["public a"]});
    accepted_without_effect(&t, "/api/v2/project", "deleteDataSourcesOnWorkspaceDelete", &without)
        .await;

    let removed = t.post("/api/v2/project?deleteDataSourcesOnWorkspaceDelete=true", &without).await;
    assert_eq!(removed.body["deletingWorkspace"], true);
    assert_eq!(removed.body["numberOfDataSourcesRemoved"], 0);
    // The emulator has no workspace data: registered data sources stay, members included.
    let names: Vec<Value> = t.data_sources().await.iter().map(|d| d["name"].clone()).collect();
    assert_eq!(names, [json!("public a"), json!("public b")]);
    let members = t.get(&format!("/project/{id}/dataSources")).await;
    assert_eq!(members.body["dataSources"][0]["name"], "public a");
    assert_eq!(t.get(&format!("/project/{id}")).await.body["workspace"], Value::Null);
}

#[tokio::test]
async fn re_acknowledge_required_makes_the_projects_using_a_restated_purpose_ask_again() {
    let t = Tenant::with_variants(&["purposes=flat", "acknowledgement=none"]).await;
    t.post("/api/v2/purpose", &hierarchy(json!([{"name": "Research.Clinical"}]))).await;
    let project = json!({"projectKey": "p", "name": "P", "purposes": ["Research.Clinical"]});
    let id = t.post("/api/v2/project", &project).await.body["projectId"].clone();
    let changed = json!({"name": "Research", "acknowledgement": "A new statement",
                         "subpurposes": [{"name": "Research.Clinical"}]});
    accepted_without_effect(&t, "/api/v2/purpose", "reAcknowledgeRequired", &changed).await;

    // Without the flag, a new statement asks nobody to acknowledge again.
    let quiet = json!({"name": "Research", "acknowledgement": "A quiet statement",
                       "subpurposes": [{"name": "Research.Clinical"}]});
    assert_eq!(t.post("/api/v2/purpose", &quiet).await.body["updating"], true);
    assert_eq!(t.get(&format!("/project/{id}")).await.body["acknowledgeRequired"], false);

    let updated = t.post("/api/v2/purpose?reAcknowledgeRequired=true", &changed).await;
    assert_eq!(updated.body["updating"], true);
    let purposes = t.get("/governance/purpose").await;
    assert_eq!(purposes.body["purposes"][1]["acknowledgement"], "A new statement");
    // Research.Clinical inherits the new statement: the project must acknowledge it again.
    let detail = t.get(&format!("/project/{id}")).await.body;
    assert_eq!(detail["acknowledgeRequired"], true, "{detail}");
    let acknowledged = t
        .post(
            &format!("/project/{id}/members/{}/acknowledge", detail["subscriptionId"]),
            &json!({}),
        )
        .await;
    assert_eq!(acknowledged.status, StatusCode::OK, "{:?}", acknowledged.body);
    assert_eq!(t.get(&format!("/project/{id}")).await.body["acknowledgeRequired"], false);
}

#[tokio::test]
async fn purpose_listings_nest_subpurposes_as_each_variant_says() {
    let full = hierarchy(json!([
        {"name": "Research.Clinical", "description": "Trials and more",
         "subpurposes": [{"name": "Research.Clinical.Trials"}]},
        {"name": "Research.Market"},
    ]));
    // Default: roots only, subpurposes nested as objects without ids (Terraform's shape).
    let t = Tenant::start().await;
    t.post("/api/v2/purpose", &full).await;
    let listed = t.get("/governance/purpose").await.body;
    assert_eq!(listed["count"], 1, "{listed:#}");
    let clinical = &listed["purposes"][0]["subpurposes"][0];
    assert_eq!(clinical["name"], "Research.Clinical");
    assert_eq!(clinical["description"], "Trials and more");
    assert_eq!(clinical["acknowledgement"], "Root ack");
    assert!(clinical.get("id").is_none(), "{clinical}");
    assert_eq!(clinical["subpurposes"][0]["name"], "Research.Clinical.Trials");
    // With ids.
    let t = Tenant::with_variants(&["purposes=nested-ids"]).await;
    t.post("/api/v2/purpose", &full).await;
    let listed = t.get("/governance/purpose").await.body;
    assert!(listed["purposes"][0]["subpurposes"][0]["id"].is_u64(), "{listed:#}");
    // Names (Swagger's Model21), every subpurpose below the root.
    let t = Tenant::with_variants(&["purposes=names"]).await;
    t.post("/api/v2/purpose", &full).await;
    let listed = t.get("/governance/purpose").await.body;
    assert_eq!(
        strings(&listed["purposes"][0]["subpurposes"]),
        ["Research.Clinical", "Research.Clinical.Trials", "Research.Market"]
    );
    // Terraform's by-id read with includeSubpurposes=true nests objects whatever the listing.
    let id = &listed["purposes"][0]["id"];
    let one = t.get(&format!("/governance/purpose/{id}?includeSubpurposes=true")).await.body;
    assert_eq!(one["subpurposes"][0]["name"], "Research.Clinical");
    assert!(one["subpurposes"][0].is_object());
}

#[tokio::test]
async fn a_project_is_refused_until_its_owner_acknowledges_its_purposes() {
    let t = Tenant::start().await;
    t.post("/api/v2/purpose", &hierarchy(json!([{"name": "Research.Clinical"}]))).await;
    let project = json!({"projectKey": "p", "name": "P", "purposes": ["Research"]});
    // A dry run does not ask (no source shows what it answers).
    assert_eq!(t.post("/api/v2/project?dryRun=true", &project).await.status, StatusCode::OK);

    // Create: refused, but the project exists without its purposes, which wait as staged.
    let refused = t.post("/api/v2/project", &project).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.message().starts_with("You must first acknowledge"), "{}", refused.message());
    let found = t.get("/project?searchText=P&nameOnly=true").await.body;
    assert_eq!(found["count"], 1, "{found:#}");
    let id = found["hits"][0]["id"].clone();
    let detail = t.get(&format!("/project/{id}")).await.body;
    assert_eq!(detail["purposes"], json!([]));
    assert_eq!(detail["stagedPurposes"], json!(["Research"]));
    assert_eq!(detail["acknowledgeRequired"], true);
    let sid = detail["subscriptionId"].clone();
    // A wrong membership is no acknowledgement.
    let wrong = t.post(&format!("/project/{id}/members/999/acknowledge"), &json!({})).await;
    assert_eq!(wrong.status, StatusCode::NOT_FOUND);
    let ack = t.post(&format!("/project/{id}/members/{sid}/acknowledge"), &json!({})).await;
    assert_eq!(ack.status, StatusCode::OK, "{:?}", ack.body);
    assert_eq!(ack.body["acknowledgeRequired"], false);
    let posted = t.post("/api/v2/project", &project).await;
    assert_eq!(posted.status, StatusCode::OK, "{:?}", posted.body);
    assert_eq!(
        (posted.body["creating"].clone(), posted.body["updating"].clone()),
        (json!(false), json!(true))
    );
    assert_eq!(posted.body["projectId"], id);

    // Update naming a purpose not acknowledged yet: refused, nothing changed, then the same.
    let more =
        json!({"projectKey": "p", "name": "P", "purposes": ["Research", "Research.Clinical"]});
    let refused = t.post("/api/v2/project", &more).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.message().contains("Research.Clinical"), "{}", refused.message());
    assert_eq!(t.get(&format!("/project/{id}")).await.body["purposes"][0]["name"], "Research");
    t.post(&format!("/project/{id}/members/{sid}/acknowledge"), &json!({"text": "I agree"})).await;
    assert_eq!(t.post("/api/v2/project", &more).await.status, StatusCode::OK);
    assert_eq!(t.post("/api/v2/project", &more).await.body["updating"], false);

    // And dry runs too, under `required-in-dry-runs`.
    let t = Tenant::with_variants(&["acknowledgement=required-in-dry-runs"]).await;
    t.post("/api/v2/purpose", &json!({"name": "Research"})).await;
    let dry = t.post("/api/v2/project?dryRun=true", &project).await;
    assert_eq!(dry.status, StatusCode::BAD_REQUEST);
    assert!(dry.message().contains("You must first acknowledge"));
    assert_eq!(t.get("/project").await.body["count"], 0, "a dry run creates nothing");
}

//! `POST /api/v2/data` and `DELETE /api/v2/data/{key}`: full-replace semantics, dryRun, names.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{Tenant, catalog, data_payload, strings, tables};

const HOST: &str = "acme.snowflakecomputing.com";

async fn tenant_with_catalog(schemas: &[(&str, &[&str])]) -> Tenant {
    let tenant = Tenant::start().await;
    tenant.set_catalog(&catalog(HOST, "ANALYTICS", schemas)).await;
    tenant
}

#[tokio::test]
async fn omitted_sources_register_every_catalog_table_and_an_identical_repost_changes_nothing() {
    let t =
        tenant_with_catalog(&[("PUBLIC", &["CUSTOMERS", "ORDERS"]), ("SALES", &["DEALS"])]).await;
    let payload = data_payload("acme", HOST, "ANALYTICS", None);

    let first = t.post_data(&payload).await;
    assert_eq!(first.names("creating"), ["public customers", "public orders", "sales deals"]);
    assert_eq!(first.body["detectionRunning"], true);
    assert_eq!(first.body["dryRun"], false);

    let again = t.post_data(&payload).await;
    assert_eq!(again.names("noChange"), ["public customers", "public orders", "sales deals"]);
    assert!(again.names("creating").is_empty() && again.names("updating").is_empty());
    assert!(again.names("deleting").is_empty());
    assert_eq!(again.body["tagsUpdated"], false);

    // `all: true` means the same, and `connection.schema` narrows it to one schema.
    let mut one_schema = data_payload("acme", HOST, "ANALYTICS", Some(json!([{"all": true}])));
    one_schema["connection"]["schema"] = json!("SALES");
    let narrowed = t.post_data(&one_schema).await;
    assert_eq!(narrowed.names("deleting"), ["public customers", "public orders"]);
    assert_eq!(narrowed.names("updating"), ["sales deals"], "connection settings changed");
}

#[tokio::test]
async fn dropped_tables_are_disabled_and_come_back_with_the_same_id_when_listed_again() {
    let t = tenant_with_catalog(&[("PUBLIC", &["CUSTOMERS", "ORDERS"])]).await;
    let both = data_payload("acme", HOST, "ANALYTICS", Some(tables(&["CUSTOMERS", "ORDERS"])));
    t.post_data(&both).await;
    let orders_id = t.data_source("public orders").await.expect("listed")["id"].clone();

    let only_customers = data_payload("acme", HOST, "ANALYTICS", Some(tables(&["CUSTOMERS"])));
    let dropped = t.post_data(&only_customers).await;
    assert_eq!(dropped.names("deleting"), ["public orders"]);
    assert_eq!(dropped.names("noChange"), ["public customers"]);
    assert_eq!(dropped.body["detectionRunning"], false);
    let disabled = t.data_source("public orders").await.expect("disabled sources stay listed");
    assert_eq!(disabled["deleted"], true);

    // Posting the same narrower payload again does not report the disabled table again.
    let quiet = t.post_data(&only_customers).await;
    assert!(quiet.names("deleting").is_empty());

    let restored = t.post_data(&both).await;
    assert_eq!(restored.names("updating"), ["public orders"]);
    let back = t.data_source("public orders").await.expect("listed");
    assert_eq!(back["deleted"], false);
    assert_eq!(back["id"], orders_id);
}

#[tokio::test]
async fn hard_delete_removes_dropped_tables_for_good() {
    let t = tenant_with_catalog(&[("PUBLIC", &["CUSTOMERS", "ORDERS"])]).await;
    t.post_data(&data_payload("acme", HOST, "ANALYTICS", Some(tables(&["CUSTOMERS", "ORDERS"]))))
        .await;
    let mut narrower = data_payload("acme", HOST, "ANALYTICS", Some(tables(&["CUSTOMERS"])));
    narrower["options"] = json!({"hardDelete": true});
    let answer = t.post_data(&narrower).await;
    assert_eq!(answer.names("deleting"), ["public orders"]);
    assert!(t.data_source("public orders").await.is_none());
}

#[tokio::test]
async fn table_tags_are_replaced_wholesale_on_every_source() {
    let t = tenant_with_catalog(&[("PUBLIC", &["CUSTOMERS", "ORDERS"])]).await;
    let mut payload = data_payload("acme", HOST, "ANALYTICS", None);
    payload["options"] = json!({"tableTags": ["Env.Prod", "Team.Data"]});
    let first = t.post_data(&payload).await;
    assert_eq!(first.body["tagsUpdated"], true);

    payload["options"] = json!({"tableTags": ["Env.Dev"]});
    let second = t.post_data(&payload).await;
    assert_eq!(second.names("updating"), ["public customers", "public orders"]);
    assert_eq!(second.body["tagsUpdated"], true);
    for name in ["public customers", "public orders"] {
        let detail = t.data_source_detail(name).await;
        let tags: Vec<&str> =
            detail["tags"].as_array().unwrap().iter().filter_map(|t| t["name"].as_str()).collect();
        assert_eq!(tags, ["Env.Dev"], "{name}");
    }
}

#[tokio::test]
async fn owners_absent_are_untouched_empty_leaves_only_the_caller_and_a_list_replaces() {
    let t = tenant_with_catalog(&[("PUBLIC", &["CUSTOMERS"])]).await;
    let owners_of = |detail: &Value| -> Vec<(String, String)> {
        detail["owners"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                (o["type"].as_str().unwrap().to_owned(), o["name"].as_str().unwrap().to_owned())
            })
            .collect()
    };
    let mut payload = data_payload("acme", HOST, "ANALYTICS", None);
    payload["owners"] = json!([{"type": "group", "name": "data-eng"}]);
    t.post_data(&payload).await;
    let group = vec![("group".to_owned(), "data-eng".to_owned())];
    assert_eq!(owners_of(&t.data_source_detail("public customers").await), group);

    payload.as_object_mut().unwrap().remove("owners");
    let absent = t.post_data(&payload).await;
    assert_eq!(absent.names("noChange"), ["public customers"]);
    assert_eq!(owners_of(&t.data_source_detail("public customers").await), group);

    payload["owners"] = json!([]);
    let emptied = t.post_data(&payload).await;
    assert_eq!(emptied.names("updating"), ["public customers"]);
    let caller = owners_of(&t.data_source_detail("public customers").await);
    assert_eq!(caller.len(), 1);
    assert_eq!(caller[0].0, "user");
    assert!(caller[0].1.starts_with("apikey-user-"), "{caller:?}");

    payload["owners"] = json!([{"type": "user", "name": "ann@example.com"}]);
    t.post_data(&payload).await;
    assert_eq!(
        owners_of(&t.data_source_detail("public customers").await),
        [("user".to_owned(), "ann@example.com".to_owned())]
    );
}

#[tokio::test]
async fn new_connection_information_recreates_every_data_source_with_new_ids() {
    let t = Tenant::start().await; // open catalog
    let mut payload = data_payload("acme", HOST, "ANALYTICS", Some(tables(&["CUSTOMERS"])));
    t.post_data(&payload).await;
    let old_id = t.data_source("public customers").await.unwrap()["id"].clone();

    payload["connection"]["port"] = json!(8443);
    let answer = t.post_data(&payload).await;
    assert_eq!(answer.names("deleting"), ["public customers"]);
    assert_eq!(answer.names("creating"), ["public customers"]);
    let listed = t.data_sources().await;
    assert_eq!(listed.len(), 1, "the old data source is gone: {listed:?}");
    assert_ne!(listed[0]["id"], old_id);
    assert_eq!(listed[0]["connectionString"], format!("svc@{HOST}:8443/ANALYTICS"));
}

#[tokio::test]
async fn a_credential_change_updates_in_place_and_keeps_ids() {
    let t = Tenant::start().await;
    let mut payload = data_payload("acme", HOST, "ANALYTICS", Some(tables(&["CUSTOMERS"])));
    t.post_data(&payload).await;
    let old_id = t.data_source("public customers").await.unwrap()["id"].clone();

    payload["connection"]["password"] = json!("pw-2");
    let answer = t.post_data(&payload).await;
    assert_eq!(answer.names("updating"), ["public customers"]);
    assert!(answer.names("creating").is_empty() && answer.names("deleting").is_empty());
    assert_eq!(t.data_source("public customers").await.unwrap()["id"], old_id);
}

#[tokio::test]
async fn the_same_host_and_database_under_another_key_is_rejected() {
    let t = Tenant::start().await;
    t.post_data(&data_payload("acme", HOST, "ANALYTICS", Some(tables(&["CUSTOMERS"])))).await;
    let mut other = data_payload("acme-2", HOST, "ANALYTICS", Some(tables(&["ORDERS"])));
    other["connection"]["hostname"] = json!(HOST.to_uppercase());
    let answer = t.post("/api/v2/data", &other).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.message(), "You may only define data sources for the same connection once.");
    assert_eq!(answer.body["statusCode"], 400);
    assert_eq!(answer.body["error"], "Bad Request");

    // Another database on the same host is another connection.
    let elsewhere = data_payload("acme-2", HOST, "RAW", Some(tables(&["ORDERS"])));
    t.post_data(&elsewhere).await;
}

#[tokio::test]
async fn dry_run_changes_nothing_and_answers_what_the_real_post_does() {
    let t = tenant_with_catalog(&[("PUBLIC", &["CUSTOMERS", "ORDERS", "ITEMS"])]).await;
    t.post_data(&data_payload("acme", HOST, "ANALYTICS", Some(tables(&["CUSTOMERS", "ORDERS"]))))
        .await;
    let mut next = data_payload("acme", HOST, "ANALYTICS", Some(tables(&["ORDERS", "ITEMS"])));
    next["options"] = json!({"tableTags": ["New.Tag"]});

    let before = t.state().await;
    let dry = t.post("/api/v2/data?dryRun=true", &next).await;
    assert_eq!(dry.status, StatusCode::OK);
    assert_eq!(dry.body["dryRun"], true);
    assert_eq!(t.state().await, before, "a dry run must not change the store");

    let real = t.post_data(&next).await;
    for field in ["creating", "updating", "deleting", "noChange", "detectionRunning", "tagsUpdated"]
    {
        assert_eq!(dry.body[field], real.body[field], "{field}");
    }
    assert_eq!(real.names("creating"), ["public items"]);
    assert_eq!(real.names("updating"), ["public orders"]);
    assert_eq!(real.names("deleting"), ["public customers"]);
}

#[tokio::test]
async fn explicit_tables_must_exist_in_a_configured_catalog() {
    let t = tenant_with_catalog(&[("PUBLIC", &["CUSTOMERS"])]).await;
    let payload = data_payload("acme", HOST, "ANALYTICS", Some(tables(&["CUSTOMERS", "NOPE"])));
    let answer = t.post("/api/v2/data", &payload).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.message().contains("sources[1]"), "{}", answer.message());
    assert!(answer.message().contains("PUBLIC.NOPE"), "{}", answer.message());
    assert!(t.data_sources().await.is_empty(), "nothing is created when the post fails");
}

#[tokio::test]
async fn an_open_catalog_accepts_explicit_tables_and_all_yields_none() {
    let t = Tenant::start().await;
    let all = t.post_data(&data_payload("acme", HOST, "ANALYTICS", None)).await;
    assert!(all.names("creating").is_empty());
    assert_eq!(all.body["detectionRunning"], true);
    let explicit =
        t.post_data(&data_payload("acme", HOST, "ANALYTICS", Some(tables(&["ANYTHING"])))).await;
    assert_eq!(explicit.names("creating"), ["public anything"]);
}

#[tokio::test]
async fn name_templates_set_names_and_placeholder_case_sets_value_case() {
    let t = tenant_with_catalog(&[("PUBLIC", &["CUSTOMER_ORDERS"])]).await;
    let mut payload = data_payload("acme", HOST, "ANALYTICS", None);
    payload["nameTemplate"] = json!({
        "dataSourceFormat": "Snowflake <Tablename>",
        "tableFormat": "<TABLENAME>",
        "schemaFormat": "sf_<schema>",
        "schemaProjectNameFormat": "<Database> <SCHEMA>",
    });
    let answer = t.post_data(&payload).await;
    assert_eq!(answer.names("creating"), ["Snowflake Customer_orders"]);
    let detail = t.data_source_detail("Snowflake Customer_orders").await;
    assert_eq!(detail["sqlTableName"], "CUSTOMER_ORDERS");
    assert_eq!(detail["sqlSchemaName"], "sf_public");
    let projects = t.get("/project").await;
    assert_eq!(projects.body["hits"][0]["name"], "Analytics PUBLIC");
    assert_eq!(projects.body["hits"][0]["type"], "schema");
    assert_eq!(projects.body["hits"][0]["projectKey"], Value::Null);

    // A source's own naming wins over the template.
    let renamed = data_payload(
        "acme",
        HOST,
        "ANALYTICS",
        Some(json!([{"tableName": "CUSTOMER_ORDERS", "schema": "PUBLIC",
                     "naming": {"datasource": "Orders"}}])),
    );
    let answer = t.post_data(&renamed).await;
    assert_eq!(answer.names("updating"), ["Orders"]);
}

#[tokio::test]
async fn query_sources_are_named_by_naming_datasource() {
    let t = Tenant::start().await;
    let payload = data_payload(
        "acme",
        HOST,
        "ANALYTICS",
        Some(json!([{"query": "select 1 as x", "naming":
            {"datasource": "One", "table": "one", "schema": "adhoc"}}])),
    );
    assert_eq!(t.post_data(&payload).await.names("creating"), ["One"]);
    let detail = t.data_source_detail("One").await;
    assert_eq!(detail["query"], "select 1 as x");
    assert_eq!(detail["remoteTable"], "one");

    let missing = data_payload("acme", HOST, "ANALYTICS", Some(json!([{"query": "select 1"}])));
    let answer = t.post("/api/v2/data", &missing).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.message().contains("sources[0].naming.datasource"), "{}", answer.message());
}

#[tokio::test]
async fn source_tags_descriptions_and_columns_land_on_the_data_source() {
    let t = tenant_with_catalog(&[("PUBLIC", &["CUSTOMERS"])]).await;
    let payload = data_payload(
        "acme",
        HOST,
        "ANALYTICS",
        Some(json!([{
            "tableName": "CUSTOMERS", "schema": "PUBLIC",
            "description": "Everyone who bought",
            "tags": {"table": ["PII"], "columns": [{"columnName": "EMAIL", "tags": ["PII.Email"]}]},
            "columnDescriptions": [{"columnName": "ID", "description": "surrogate key"}],
        }])),
    );
    let answer = t.post_data(&payload).await;
    assert_eq!(answer.body["tagsUpdated"], true);
    let detail = t.data_source_detail("public customers").await;
    assert_eq!(detail["description"], "Everyone who bought");
    assert_eq!(detail["tags"], json!([{"name": "PII", "source": "curated"}]));
    assert_eq!(detail["columns"][0]["description"], "surrogate key");
    assert_eq!(detail["columns"][1]["tags"], json!([{"name": "PII.Email", "source": "curated"}]));

    let mut bad = payload.clone();
    bad["sources"][0]["tags"]["columns"][0]["columnName"] = json!("NOPE");
    let answer = t.post("/api/v2/data", &bad).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.message().contains("sources[0].tags.columns[0].columnName"), "{answer:?}");
}

#[tokio::test]
async fn payload_errors_name_the_field() {
    let t = Tenant::start().await;
    let cases = [
        (json!({"connection": {"handler": "Snowflake", "hostname": "h"}}), "connectionKey"),
        (json!({"connectionKey": "k"}), "connection"),
        (
            json!({"connectionKey": "k", "connection": {"handler": "Snowflake"}}),
            "connection.hostname",
        ),
        (data_payload("k", "h", "d", Some(json!([{"tableName": "T"}]))), "sources[0].schema"),
        (data_payload("k", "h", "d", Some(json!([{"bogus": 1}]))), "sources[0]"),
        (data_payload("k", "h", "d", Some(tables(&["T", "T"]))), "duplicate tables"),
        (
            {
                let mut p = data_payload("k", "h", "d", None);
                p["owners"] = json!([{"type": "robot", "name": "r"}]);
                p
            },
            "owners[0].type",
        ),
        (
            {
                let mut p = data_payload("k", "h", "d", None);
                p["options"] = json!({"tableTags": "Env.Prod"});
                p
            },
            "options.tableTags",
        ),
    ];
    for (payload, field) in cases {
        let answer = t.post("/api/v2/data", &payload).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{field}: {:?}", answer.body);
        assert!(answer.message().contains(field), "{field}: {}", answer.message());
    }
    let not_json = t
        .http
        .post(t.url("/api/v2/data"))
        .header("Authorization", &t.key)
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
    let bad_flag = t.post("/api/v2/data?dryRun=maybe", &data_payload("k", "h", "d", None)).await;
    assert_eq!(bad_flag.status, StatusCode::BAD_REQUEST);
    assert!(bad_flag.message().contains("dryRun"));
}

#[tokio::test]
async fn yaml_bodies_are_accepted() {
    let t = tenant_with_catalog(&[("PUBLIC", &["CUSTOMERS"])]).await;
    let yaml = format!(
        "connectionKey: acme\nconnection:\n  handler: Snowflake\n  hostname: {HOST}\n  port: 443\n  \
         database: ANALYTICS\n  password: \"${{NOT_EXPANDED}}\"\nsources:\n  - all: true\n"
    );
    let answer = t.send_yaml("/api/v2/data", &yaml).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    assert_eq!(answer.names("creating"), ["public customers"]);
    // The same payload as JSON is an identical re-post.
    let json = data_payload("acme", HOST, "ANALYTICS", Some(json!([{"all": true}])));
    let mut json = json;
    json["connection"] = json!({"handler": "Snowflake", "hostname": HOST, "port": 443, "database": "ANALYTICS",
               "password": "${NOT_EXPANDED}"});
    assert_eq!(t.post_data(&json).await.names("noChange"), ["public customers"]);
}

#[tokio::test]
async fn delete_by_connection_key_removes_every_data_source() {
    let t = Tenant::start().await;
    let key = "team a/warehouse";
    t.post_data(&data_payload(key, HOST, "ANALYTICS", Some(tables(&["A", "B"])))).await;
    let path = "/api/v2/data/team%20a%2Fwarehouse";

    let before = t.state().await;
    let dry = t.call(Method::DELETE, &format!("{path}?dryRun=true"), None).await;
    assert_eq!(dry.status, StatusCode::OK);
    assert_eq!(dry.names("deleting"), ["public a", "public b"]);
    assert_eq!(t.state().await, before);

    let real = t.delete(path).await;
    assert_eq!(real.status, StatusCode::OK);
    assert_eq!(real.body["dryRun"], false);
    assert_eq!(real.names("deleting"), ["public a", "public b"]);
    assert!(t.data_sources().await.is_empty());
    assert_eq!(t.get("/project").await.body["count"], 0, "schema project removed with them");

    assert_eq!(t.delete(path).await.status, StatusCode::NOT_FOUND);
    let probe = t.call(Method::DELETE, &format!("{path}?dryRun=true"), None).await;
    assert_eq!(probe.status, StatusCode::NOT_FOUND, "the existence probe says gone");
}

#[tokio::test]
async fn v1_delete_disables_first_and_deletes_for_good_second() {
    let t = Tenant::start().await;
    t.post_data(&data_payload("acme", HOST, "ANALYTICS", Some(tables(&["A"])))).await;
    let id = t.data_source("public a").await.unwrap()["id"].clone();
    let path = format!("/dataSource/{id}");

    let first = t.delete(&path).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.body["hardDelete"], false);
    assert_eq!(t.data_source("public a").await.unwrap()["deleted"], true);

    let second = t.delete(&path).await;
    assert_eq!(second.body["hardDelete"], true);
    assert!(t.data_source("public a").await.is_none());
    assert_eq!(t.delete(&path).await.status, StatusCode::NOT_FOUND);
    assert_eq!(t.get(&path).await.status, StatusCode::NOT_FOUND);

    // The next identical post creates it again, with a new id.
    let again = t.post_data(&data_payload("acme", HOST, "ANALYTICS", Some(tables(&["A"])))).await;
    assert_eq!(again.names("creating"), ["public a"]);
}

#[tokio::test]
async fn deleting_a_schema_project_deletes_its_data_sources() {
    let t = tenant_with_catalog(&[("PUBLIC", &["A"]), ("SALES", &["B"])]).await;
    t.post_data(&data_payload("acme", HOST, "ANALYTICS", None)).await;
    let projects = t.get("/project").await;
    let sales = projects.named("hits", "sales").expect("one schema project per schema");
    let members = t.get(&format!("/project/{}/dataSources", sales["id"])).await;
    assert_eq!(members.body["dataSources"][0]["name"], "sales b");

    let deleted = t.delete(&format!("/project/{}", sales["id"])).await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(strings(&deleted.body["dataSourcesDeleted"]), ["sales b"]);
    assert!(t.data_source("sales b").await.is_none());
    assert!(t.data_source("public a").await.is_some());
}

#[tokio::test]
async fn tampering_is_reported_by_the_next_identical_post() {
    let t = tenant_with_catalog(&[("PUBLIC", &["A", "B"])]).await;
    let payload = data_payload("acme", HOST, "ANALYTICS", None);
    t.post_data(&payload).await;

    // A UI user edits one data source's description.
    let id = t.data_source("public a").await.unwrap()["id"].to_string();
    let patch = json!({"description": "edited in the UI"});
    t.control(Method::PATCH, &format!("/objects/datasource/{id}"), Some(&patch)).await;
    let answer = t.post_data(&payload).await;
    assert_eq!(answer.names("updating"), ["public a"]);
    assert_eq!(answer.names("noChange"), ["public b"]);
    assert_eq!(t.data_source_detail("public a").await["description"], Value::Null);

    // Someone changes the connection's stored payload: every source is updated.
    let patch = json!({"connection": {"warehouse": "OTHER_WH"}});
    t.control(Method::PATCH, "/objects/data/acme", Some(&patch)).await;
    assert_eq!(t.post_data(&payload).await.names("updating"), ["public a", "public b"]);

    // Someone deletes a data source out of band: the next post creates it again.
    t.control(Method::DELETE, &format!("/objects/datasource/{id}"), None).await;
    assert_eq!(t.post_data(&payload).await.names("creating"), ["public a"]);
}

#[tokio::test]
async fn wait_is_accepted_and_creation_is_done_before_the_answer_whatever_its_value() {
    let t = tenant_with_catalog(&[("PUBLIC", &["CUSTOMERS"])]).await;
    let payload = data_payload("acme", HOST, "ANALYTICS", None);
    let dry = t.post("/api/v2/data?dryRun=true", &payload).await;
    // `wait=-1` means "wait indefinitely" to Immuta; the emulator has nothing pending.
    let answer = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        t.post("/api/v2/data?wait=-1", &payload),
    )
    .await
    .expect("wait=-1 answers at once");
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.names("creating"), dry.names("creating"));
    assert_eq!(answer.names("creating"), ["public customers"]);
    assert!(t.data_source("public customers").await.is_some(), "listed before the answer");
    let again = t.post("/api/v2/data?wait=2.5", &payload).await;
    assert_eq!(again.names("noChange"), ["public customers"]);

    let bad = t.post("/api/v2/data?wait=soon", &payload).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.message().contains("wait"), "{}", bad.message());
}

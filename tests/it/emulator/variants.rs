//! The tenant variants (`EmulatorConfig::variants`, `--variant`, `PUT /_emulator/variants`):
//! each documented behaviour the emulator can play, seen over HTTP.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{Tenant, data_payload, tables};

/// Three projects, for listing them.
async fn three_projects(t: &Tenant) {
    for i in 1..=3 {
        let p = json!({"projectKey": format!("p{i}"), "name": format!("P{i}")});
        assert_eq!(t.post("/api/v2/project", &p).await.status, StatusCode::OK);
    }
}

/// The keys of a JSON object (`[]` for an array).
fn keys(v: &Value) -> Vec<String> {
    v.as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

#[tokio::test]
async fn listings_answer_in_each_envelope() {
    let cases: [(&str, &str, &[&str]); 7] = [
        ("envelope=documented", "/project", &["count", "facets", "hits"]),
        ("envelope=hits-count", "/project", &["count", "hits"]),
        ("envelope=hits", "/project", &["hits"]),
        ("envelope=projects", "/project", &["count", "projects"]),
        ("envelope=data-sources", "/dataSource", &["dataSources"]),
        ("envelope=results", "/governance/purpose", &["results"]),
        ("envelope=data", "/policy/global", &["data"]),
    ];
    for (variant, path, expected) in cases {
        let t = Tenant::with_variants(&[variant]).await;
        three_projects(&t).await;
        let mut got = keys(&t.get(path).await.body);
        got.sort();
        assert_eq!(got, expected, "{variant} {path}");
    }
    let t = Tenant::with_variants(&["envelope=array"]).await;
    three_projects(&t).await;
    assert_eq!(t.get("/project").await.body.as_array().map(Vec::len), Some(3));
    // The documented policy listing is a bare array, the purposes `{purposes, count}`.
    let t = Tenant::start().await;
    assert!(t.get("/policy/global").await.body.is_array());
    let mut got = keys(&t.get("/governance/purpose").await.body);
    got.sort();
    assert_eq!(got, ["count", "purposes"]);
}

#[tokio::test]
async fn paging_is_honoured_capped_or_ignored() {
    let policy = |i: usize| {
        json!({"policyKey": format!("k{i}"), "name": format!("Policy {i}"), "type": "subscription",
               "actions": {"type": "anyone"}})
    };
    let count = |body: &Value| body.as_array().map_or(0, Vec::len);
    for (variant, page, offset_page) in [
        ("paging=honoured", 2, 2),
        ("paging=capped", 2, 2),
        ("paging=ignored-by-policies", 60, 60),
        ("paging=ignored", 60, 60),
    ] {
        let t = Tenant::with_variants(&[variant]).await;
        for i in 0..60 {
            t.post("/api/v2/policy", &policy(i)).await;
        }
        assert_eq!(count(&t.get("/policy/global?size=2").await.body), page, "{variant}");
        assert_eq!(count(&t.get("/policy/global?size=2&offset=10").await.body), offset_page);
    }
    // A cap below `size`, and the count still told.
    let t = Tenant::with_variants(&["paging=capped"]).await;
    for i in 0..60 {
        t.post("/api/v2/policy", &policy(i)).await;
        t.post("/api/v2/project", &json!({"projectKey": format!("p{i}"), "name": format!("P{i}")}))
            .await;
    }
    assert_eq!(count(&t.get("/policy/global?size=200").await.body), 50);
    let projects = t.get("/project?size=200").await.body;
    assert_eq!(
        (projects["hits"].as_array().map(Vec::len), projects["count"].as_u64()),
        (Some(50), Some(60))
    );
    // Only the policies ignore paging in `ignored-by-policies`.
    let t = Tenant::with_variants(&["paging=ignored-by-policies"]).await;
    three_projects(&t).await;
    assert_eq!(t.get("/project?size=1").await.body["hits"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn tokens_only_tenants_refuse_the_key_with_401_or_500() {
    for (variant, refused) in [
        ("auth=tokens-only", StatusCode::UNAUTHORIZED),
        ("auth=tokens-only-500", StatusCode::INTERNAL_SERVER_ERROR),
    ] {
        let t = Tenant::with_variants(&[variant]).await;
        let bearer = format!("Bearer {}", t.key);
        assert_eq!(t.send(Method::GET, "/project", Some(&bearer), None).await.status, refused);
        assert_eq!(t.send(Method::GET, "/project", None, None).await.status, refused);
        let token = t
            .send(Method::POST, "/bim/apikey/authenticate", None, Some(&json!({"apikey": t.key})))
            .await;
        assert_eq!(token.status, StatusCode::OK, "{variant}: the exchange takes the key");
        let bearer = format!("Bearer {}", token.body["token"].as_str().unwrap());
        assert_eq!(
            t.send(Method::GET, "/project", Some(&bearer), None).await.status,
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn the_current_user_names_the_keys_permissions() {
    let config = immuta_emulator::EmulatorConfig {
        api_keys: vec!["gov=GOVERNANCE,CREATE_PROJECT".parse().unwrap()],
        ..super::emulator_config()
    };
    let t = Tenant::start_with(config).await;
    let me = t.get("/bim/rpc/user/current").await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["permissions"], json!(["GOVERNANCE", "CREATE_PROJECT"]));
    assert_eq!(me.body["projectId"], Value::Null);
    assert!(me.body["userid"].as_str().unwrap().starts_with("apikey-user-"));
}

#[tokio::test]
async fn a_connections_tenant_answers_its_connections_and_refuses_v2_data() {
    let t = Tenant::start().await;
    t.post_data(&data_payload("acme", "h", "d", Some(tables(&["A"])))).await;
    // Without connections the route does not exist.
    let missing = t.get("/data/connection/acme").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.message().contains("no route"), "{}", missing.message());

    t.control(
        Method::PUT,
        "/variants",
        Some(&json!({"variants": {"registration": "connections"}})),
    )
    .await;
    let found = t.get("/data/connection/acme").await;
    assert_eq!(found.status, StatusCode::OK, "{:?}", found.body);
    assert_eq!(found.body["connection"]["technology"], "Snowflake");
    assert!(found.body["connection"].get("password").is_none());
    assert_eq!(t.get("/data/connection/other").await.status, StatusCode::NOT_FOUND);
    let refused = t.post("/api/v2/data?dryRun=true", &data_payload("acme", "h", "d", None)).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.message().contains("deprecated"), "{}", refused.message());
}

#[tokio::test]
async fn a_skewed_clock_shows_in_the_date_header() {
    let date = |t: &Tenant| {
        let t = t.http.get(t.url("/project")).header("Authorization", format!("Bearer {}", t.key));
        async move {
            let answer = t.send().await.unwrap();
            let header = answer.headers()["date"].to_str().unwrap().to_owned();
            httpdate::parse_http_date(&header).unwrap()
        }
    };
    let now = std::time::SystemTime::now();
    let exact = date(&Tenant::start().await).await;
    let skewed = date(&Tenant::with_variants(&["clock=skewed"]).await).await;
    let ahead = |d: std::time::SystemTime| d.duration_since(now).unwrap_or_default().as_secs();
    assert!(ahead(exact) < 5, "{exact:?}");
    assert!((590..=610).contains(&ahead(skewed)), "{skewed:?}");
}

#[tokio::test]
async fn bigquery_needs_no_hostname_and_a_table_may_be_named_table() {
    let t = Tenant::start().await;
    let bigquery = json!({
        "connectionKey": "bq",
        "connection": {"handler": "Google BigQuery", "sid": "my-gcp-project", "database": "ds",
                       "userFiles": [{"keyName": "KeyFilePath", "content": "e30=", "userFilename": "k.json"}]},
        "sources": [{"table": "events", "schema": "ds"}],
    });
    let created = t.post("/api/v2/data", &bigquery).await;
    assert_eq!(created.status, StatusCode::OK, "{:?}", created.body);
    assert_eq!(created.names("creating"), ["ds events"]);
    let both = json!({"connectionKey": "x", "connection": {"handler": "Snowflake", "hostname": "h"},
                      "sources": [{"table": "A", "tableName": "A", "schema": "S"}]});
    let refused = t.post("/api/v2/data?dryRun=true", &both).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.message().contains("names its table twice"), "{}", refused.message());
    let no_sid = json!({"connectionKey": "bq2", "connection": {"handler": "BigQuery"}});
    let refused = t.post("/api/v2/data?dryRun=true", &no_sid).await;
    assert!(refused.message().contains("connection.sid"), "{}", refused.message());
}

#[tokio::test]
async fn the_variants_control_reads_and_replaces_them() {
    let t = Tenant::with_variants(&["paging=capped"]).await;
    let got = t.control(Method::GET, "/variants", None).await;
    assert_eq!(got["label"], "paging=capped");
    assert_eq!(got["variants"]["paging"], "capped");
    assert_eq!(got["variants"]["purposes"], "nested");
    let set = t
        .control(
            Method::PUT,
            "/variants",
            Some(&json!({"variants": {"purposes": "flat"}, "creationDelayMs": 5})),
        )
        .await;
    assert_eq!(set["label"], "purposes=flat", "the dimensions left out are the defaults");
    assert_eq!(set["creationDelayMs"], 5);
    let bad = t
        .send(
            Method::PUT,
            "/_emulator/variants",
            None,
            Some(&json!({"variants": {"paging": "often"}})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.message().contains("often"), "{}", bad.message());
}

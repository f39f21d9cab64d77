//! The `/_emulator/` controls: request log (with masking), faults, latency, reset, state.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{Tenant, catalog, data_payload, tables};

const CANARY: &str = "canary-7f3a9c";

/// A data payload carrying the canary in every kind of secret field.
fn secretive_payload() -> Value {
    let mut payload = data_payload("acme", "h", "d", Some(tables(&["A"])));
    payload["connection"]["password"] = json!(format!("{CANARY}-password"));
    payload["connection"]["clientSecret"] = json!(format!("{CANARY}-client-secret"));
    payload["connection"]["userFiles"] = json!([{"keyName": "PRIV_KEY_FILE", "userFilename": "key.p8", "content": format!("{CANARY}-file")}]);
    payload
}

#[tokio::test]
async fn the_request_log_records_calls_with_secrets_masked() {
    let t = Tenant::start().await;
    t.post_data(&secretive_payload()).await;
    t.post(
        "/admin/license",
        &json!({"licenseKey": format!("IMMUTA-TEST;seats=1;expires=2099-01-01;x={CANARY}")}),
    )
    .await;
    t.send(Method::POST, "/bim/apikey/authenticate", None, Some(&json!({"apikey": CANARY}))).await;
    t.get(&format!("/dataSource?apikey={CANARY}&size=5")).await;
    t.control(Method::GET, "/state", None).await;

    let log = t.control(Method::GET, "/requests", None).await;
    let text = log.to_string();
    assert!(!text.contains(CANARY), "a secret reached the request log: {text}");
    let entries = log.as_array().unwrap();
    assert_eq!(entries.len(), 4, "control calls are not logged: {text}");
    let data = &entries[0];
    assert_eq!(data["method"], "POST");
    assert_eq!(data["path"], "/api/v2/data");
    assert_eq!(data["status"], 200);
    assert_eq!(data["body"]["connection"]["password"], "***");
    assert_eq!(data["body"]["connection"]["clientSecret"], "***");
    assert_eq!(data["body"]["connection"]["userFiles"][0]["content"], "***");
    assert_eq!(data["body"]["connection"]["userFiles"][0]["keyName"], "PRIV_KEY_FILE");
    assert_eq!(data["body"]["connection"]["username"], "svc");
    assert_eq!(entries[1]["status"], 400, "the malformed license key was refused");
    assert_eq!(entries[2]["body"]["apikey"], "***");
    assert_eq!(entries[2]["status"], 401);
    assert_eq!(entries[3]["query"], "apikey=***&size=5");

    let state = t.state().await.to_string();
    assert!(!state.contains(CANARY), "a secret reached the store: {state}");
    assert!(state.contains("sha256:"), "secrets are stored as digests");

    t.control(Method::DELETE, "/requests", None).await;
    assert_eq!(t.control(Method::GET, "/requests", None).await, json!([]));
}

#[tokio::test]
async fn a_status_fault_fails_the_next_matching_requests_then_lets_them_through() {
    let t = Tenant::start().await;
    let policy = json!({"policyKey": "s", "name": "S", "type": "subscription",
                        "actions": {"type": "anyone"}});
    let rule = json!({"method": "POST", "pathPrefix": "/api/v2/policy", "count": 2, "status": 503});
    t.control(Method::POST, "/faults", Some(&rule)).await;

    assert_eq!(t.get("/policy/global").await.status, StatusCode::OK, "GET does not match");
    for _ in 0..2 {
        let failed = t.post("/api/v2/policy", &policy).await;
        assert_eq!(failed.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(failed.body["statusCode"], 503);
    }
    assert_eq!(t.get("/policy/global").await.body, json!([]), "failed posts changed nothing");
    assert_eq!(t.post("/api/v2/policy", &policy).await.status, StatusCode::OK);
    assert_eq!(t.control(Method::GET, "/faults", None).await["faults"], json!([]));
    let log = t.control(Method::GET, "/requests", None).await;
    let statuses: Vec<u64> =
        log.as_array().unwrap().iter().map(|e| e["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, [200, 503, 503, 200, 200]);
}

#[tokio::test]
async fn a_429_fault_carries_retry_after() {
    let t = Tenant::start().await;
    let rule = json!({"pathPrefix": "/dataSource", "status": 429, "retryAfter": "1"});
    t.control(Method::POST, "/faults", Some(&rule)).await;
    let limited = t.get("/dataSource").await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers.get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    assert_eq!(t.get("/dataSource").await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_drop_fault_closes_the_connection_without_an_answer() {
    let t = Tenant::start().await;
    t.control(Method::POST, "/faults", Some(&json!({"pathPrefix": "/api/v2/data", "drop": true})))
        .await;
    let payload = data_payload("acme", "h", "d", Some(tables(&["A"])));
    let result = t
        .http
        .post(t.url("/api/v2/data"))
        .header("Authorization", &t.key)
        .json(&payload)
        .send()
        .await;
    let error = result.expect_err("the client sees a connection error, not an answer");
    assert!(!error.is_status(), "{error:?}");
    assert!(t.data_sources().await.is_empty(), "the dropped request was not served");
    assert_eq!(t.post("/api/v2/data", &payload).await.status, StatusCode::OK);
    let log = t.control(Method::GET, "/requests", None).await;
    assert_eq!(log[0]["status"], 0, "dropped requests are logged with status 0");
}

#[tokio::test]
async fn delays_and_steady_latency_slow_requests_down() {
    let t = Tenant::start().await;
    t.control(Method::POST, "/faults", Some(&json!({"pathPrefix": "/project", "delayMs": 150})))
        .await;
    let started = Instant::now();
    assert_eq!(t.get("/project").await.status, StatusCode::OK, "a delay alone still answers");
    assert!(started.elapsed() >= Duration::from_millis(150));

    t.control(Method::PUT, "/latency", Some(&json!({"ms": 60}))).await;
    let started = Instant::now();
    t.get("/tag").await;
    assert!(started.elapsed() >= Duration::from_millis(60));
    let started = Instant::now();
    t.control(Method::GET, "/state", None).await;
    assert!(started.elapsed() < Duration::from_millis(60), "controls are not slowed");
    t.control(Method::PUT, "/latency", Some(&json!({"ms": 0}))).await;

    let bad = t.send(Method::POST, "/_emulator/faults", None, Some(&json!({"count": 1}))).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "a fault must do something");
}

#[tokio::test]
async fn reset_empties_the_tenant_but_keeps_the_catalog_unless_asked() {
    let t = Tenant::start().await;
    t.set_catalog(&catalog("h", "d", &[("PUBLIC", &["A"])])).await;
    t.post_data(&data_payload("acme", "h", "d", None)).await;
    t.post("/api/v2/purpose", &json!({"name": "Fraud"})).await;
    t.control(Method::POST, "/faults", Some(&json!({"status": 500, "count": 5}))).await;

    t.control(Method::POST, "/reset", None).await;
    let state = t.state().await;
    assert_eq!(state["dataSources"], json!({}));
    assert_eq!(state["purposes"], json!({}));
    assert_eq!(state["connections"], json!({}));
    assert_eq!(t.get("/dataSource").await.status, StatusCode::OK, "faults were cleared");
    let again = t.post_data(&data_payload("acme", "h", "d", None)).await;
    assert_eq!(again.names("creating"), ["public a"], "the catalog was kept");
    assert_eq!(t.data_sources().await[0]["id"], 1, "ids start over");

    t.control(Method::POST, "/reset", Some(&json!({"catalog": true}))).await;
    assert_eq!(t.control(Method::GET, "/catalog", None).await, json!({"connections": []}));
}

#[tokio::test]
async fn controls_reject_bad_input_and_unknown_objects() {
    let t = Tenant::start().await;
    let bad_catalog = t
        .send(
            Method::PUT,
            "/_emulator/catalog",
            None,
            Some(&json!({"connections": [{"schemas": {}}]})),
        )
        .await;
    assert_eq!(bad_catalog.status, StatusCode::BAD_REQUEST);
    let unknown_kind =
        t.send(Method::PATCH, "/_emulator/objects/widget/x", None, Some(&json!({}))).await;
    assert_eq!(unknown_kind.status, StatusCode::BAD_REQUEST);
    let missing = t.send(Method::DELETE, "/_emulator/objects/policy/nope", None, None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    t.post(
        "/api/v2/policy",
        &json!({"policyKey": "s", "name": "S", "type": "subscription",
                                      "actions": {"type": "anyone"}}),
    )
    .await;
    let rekey = t
        .send(Method::PATCH, "/_emulator/objects/policy/s", None, Some(&json!({"policyKey": "t"})))
        .await;
    assert_eq!(rekey.status, StatusCode::BAD_REQUEST);
    let bad_setting =
        t.send(Method::PUT, "/_emulator/settings", None, Some(&json!({"kAnon": true}))).await;
    assert_eq!(bad_setting.status, StatusCode::BAD_REQUEST);
    let no_route = t.get("/api/v3/nothing").await;
    assert_eq!(no_route.status, StatusCode::NOT_FOUND);
    assert_eq!(no_route.body["error"], "Not Found");
}

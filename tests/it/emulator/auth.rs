//! API keys, bearer tokens and permissions.

use std::time::Duration;

use immuta_emulator::{ADMIN_KEY, ApiKey, EmulatorConfig, Permission};
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::emulator_config;
use super::{Tenant, data_payload};

#[tokio::test]
async fn the_key_is_accepted_raw_or_as_a_bearer_and_anything_else_is_401() {
    let t = Tenant::start().await;
    let raw = t.send(Method::GET, "/dataSource", Some(ADMIN_KEY), None).await;
    assert_eq!(raw.status, StatusCode::OK);
    let bearer =
        t.send(Method::GET, "/dataSource", Some(&format!("Bearer {ADMIN_KEY}")), None).await;
    assert_eq!(bearer.status, StatusCode::OK);

    let missing = t.send(Method::GET, "/dataSource", None, None).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(missing.body["statusCode"], 401);
    let wrong = t.send(Method::POST, "/api/v2/data", Some("Bearer nope"), Some(&json!({}))).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(t.data_sources().await.is_empty());
}

#[tokio::test]
async fn tokens_from_authenticate_work_until_they_expire() {
    let t = Tenant::start().await;
    let from_body = t
        .send(Method::POST, "/bim/apikey/authenticate", None, Some(&json!({"apikey": ADMIN_KEY})))
        .await;
    assert_eq!(from_body.status, StatusCode::OK);
    let token = from_body.body["token"].as_str().expect("a token").to_owned();
    assert_ne!(token, ADMIN_KEY);

    let from_header = t.send(Method::POST, "/bim/apikey/authenticate", Some(ADMIN_KEY), None).await;
    assert!(from_header.body["token"].is_string());

    for auth in [format!("Bearer {token}"), token.clone()] {
        let answer = t.send(Method::GET, "/project", Some(&auth), None).await;
        assert_eq!(answer.status, StatusCode::OK, "{auth:?}");
    }

    t.control(Method::POST, "/expire-tokens", None).await;
    let expired = t.send(Method::GET, "/project", Some(&format!("Bearer {token}")), None).await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    assert!(expired.message().contains("expired"), "{}", expired.message());
    assert_eq!(t.send(Method::GET, "/project", Some(ADMIN_KEY), None).await.status, StatusCode::OK);

    let bad = t
        .send(Method::POST, "/bim/apikey/authenticate", None, Some(&json!({"apikey": "wrong"})))
        .await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_key_without_the_needed_permission_gets_403_naming_it() {
    let config = EmulatorConfig {
        api_keys: vec![
            ApiKey::with("data-only", [Permission::CreateDataSource]),
            ApiKey::with("governor", [Permission::Governance]),
            "nothing=".parse().expect("a key with no permissions"),
        ],
        ..emulator_config()
    };
    let t = Tenant::start_with(config).await;
    let policy = json!({"policyKey": "s", "name": "S", "type": "subscription",
                        "actions": {"type": "anyone"}});

    let checks = [
        ("data-only", Method::POST, "/api/v2/policy", Some(policy.clone()), "GOVERNANCE"),
        ("data-only", Method::POST, "/api/v2/purpose", Some(json!({"name": "P"})), "GOVERNANCE"),
        (
            "data-only",
            Method::POST,
            "/api/v2/project",
            Some(json!({"projectKey": "p", "name": "P"})),
            "CREATE_PROJECT",
        ),
        ("data-only", Method::GET, "/admin/license", None, "APPLICATION_ADMIN"),
        (
            "governor",
            Method::POST,
            "/api/v2/data",
            Some(data_payload("k", "h", "d", None)),
            "CREATE_DATA_SOURCE",
        ),
        ("governor", Method::DELETE, "/api/v2/data/k", None, "CREATE_DATA_SOURCE"),
        ("governor", Method::DELETE, "/dataSource/1", None, "CREATE_DATA_SOURCE"),
        ("data-only", Method::DELETE, "/policy/global/1", None, "GOVERNANCE"),
        ("data-only", Method::DELETE, "/governance/purpose/1", None, "GOVERNANCE"),
        ("governor", Method::DELETE, "/api/v2/project/p", None, "CREATE_PROJECT"),
    ];
    for (key, method, path, body, permission) in checks {
        let answer = t.send(method.clone(), path, Some(key), body.as_ref()).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{key} {method} {path}");
        assert!(answer.message().contains(permission), "{path}: {}", answer.message());
    }
    assert_eq!(
        t.send(Method::POST, "/api/v2/policy", Some("governor"), Some(&policy)).await.status,
        StatusCode::OK
    );

    // V1 listings need any valid key, even one without permissions.
    assert_eq!(
        t.send(Method::GET, "/dataSource", Some("nothing"), None).await.status,
        StatusCode::OK
    );
    // Once keys are configured, the built-in admin key is not accepted.
    assert_eq!(
        t.send(Method::GET, "/dataSource", Some(ADMIN_KEY), None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn tokens_expire_after_their_ttl() {
    let ttl = Duration::from_millis(300);
    let t = Tenant::start_with(EmulatorConfig { token_ttl: ttl, ..emulator_config() }).await;
    let token = t
        .send(Method::POST, "/bim/apikey/authenticate", None, Some(&json!({"apikey": ADMIN_KEY})))
        .await
        .body["token"]
        .as_str()
        .expect("a token")
        .to_owned();
    let bearer = format!("Bearer {token}");
    assert_eq!(t.send(Method::GET, "/project", Some(&bearer), None).await.status, StatusCode::OK);

    tokio::time::sleep(ttl + Duration::from_millis(100)).await;
    let expired = t.send(Method::GET, "/project", Some(&bearer), None).await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    assert!(expired.message().contains("expired"), "{}", expired.message());
    // The key itself does not expire, and a new token works again.
    assert_eq!(t.send(Method::GET, "/project", Some(ADMIN_KEY), None).await.status, StatusCode::OK);
    let fresh = t.send(Method::POST, "/bim/apikey/authenticate", Some(ADMIN_KEY), None).await;
    let fresh = format!("Bearer {}", fresh.body["token"].as_str().expect("a token"));
    assert_eq!(t.send(Method::GET, "/project", Some(&fresh), None).await.status, StatusCode::OK);
}

#[tokio::test]
async fn every_license_endpoint_needs_application_admin() {
    let everything_else =
        [Permission::CreateDataSource, Permission::Governance, Permission::CreateProject];
    let config = EmulatorConfig {
        api_keys: vec![ApiKey::admin("admin"), ApiKey::with("governor", everything_else)],
        ..emulator_config()
    };
    let t = Tenant::start_with(config).await;
    let key = json!({"licenseKey": "IMMUTA-TEST;seats=5;expires=2099-01-01"});
    let added = t.send(Method::POST, "/admin/license", Some("admin"), Some(&key)).await;
    assert_eq!(added.status, StatusCode::OK);
    let id = added.body["id"].clone();
    let before = t.send(Method::GET, "/admin/license", Some("admin"), None).await.body;

    let other = json!({"licensekey": "IMMUTA-TEST;seats=9;expires=2099-01-01"});
    let delete = format!("/admin/license/{id}");
    let checks = [
        (Method::POST, "/admin/license", Some(&other)),
        (Method::GET, "/admin/license", None),
        (Method::DELETE, delete.as_str(), None),
        (Method::GET, "/admin/license/licenseStatus", None),
        (Method::GET, "/admin/license/usage?offset=0&size=10", None),
    ];
    for (method, path, body) in checks {
        let answer = t.send(method.clone(), path, Some("governor"), body).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{method} {path}");
        assert!(answer.message().contains("APPLICATION_ADMIN"), "{path}: {}", answer.message());
    }
    // Nothing was added or deleted.
    assert_eq!(t.send(Method::GET, "/admin/license", Some("admin"), None).await.body, before);
}

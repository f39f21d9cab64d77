//! License admin endpoints with the emulator's test key format.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::Tenant;

const KEY: &str = "IMMUTA-TEST;seats=20;expires=2099-01-31;features=FPE";

#[tokio::test]
async fn a_license_key_is_added_once_and_never_listed() {
    let t = Tenant::start().await;
    let added = t.post("/admin/license", &json!({"licensekey": KEY})).await;
    assert_eq!(added.status, StatusCode::OK, "{:?}", added.body);
    assert_eq!(added.body["seats"], 20);
    assert_eq!(added.body["expires"], "2099-01-31T00:00:00.000Z");
    assert_eq!(added.body["expired"], false);
    assert_eq!(added.body["features"], json!({"FPE": {"enabled": true}}));
    assert!(added.body["uuid"].as_str().is_some_and(|u| u.len() == 36));
    let id = added.body["id"].clone();

    let again = t.post("/admin/license", &json!({"licenseKey": KEY})).await;
    assert_eq!(again.body["id"], id, "the same key answers the existing license");
    assert_eq!(again.body["uuid"], added.body["uuid"]);

    let listed = t.get("/admin/license").await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1);
    for text in [listed.body.to_string(), added.body.to_string(), t.state().await.to_string()] {
        assert!(!text.contains("IMMUTA-TEST"), "the key leaked: {text}");
    }

    assert_eq!(t.delete(&format!("/admin/license/{id}")).await.status, StatusCode::OK);
    assert_eq!(t.delete(&format!("/admin/license/{id}")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(t.get("/admin/license").await.body, json!([]));
}

#[tokio::test]
async fn malformed_keys_are_rejected_without_echoing_them() {
    let t = Tenant::start().await;
    for key in ["licensekey0123", "IMMUTA-TEST;seats=20", "IMMUTA-TEST;seats=x;expires=2027-01-31"]
    {
        let answer = t.post("/admin/license", &json!({"licenseKey": key})).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{key}");
        assert!(answer.message().contains("licenseKey"), "{}", answer.message());
        assert!(!answer.message().contains(key), "{}", answer.message());
    }
    let missing = t.post("/admin/license", &json!({})).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn status_and_usage_count_seats_and_users() {
    let t = Tenant::start().await;
    t.post(
        "/admin/license",
        &json!({"licenseKey": "IMMUTA-TEST;seats=2;expires=2099-01-01;hardSeats=true"}),
    )
    .await;
    t.post("/admin/license", &json!({"licenseKey": "IMMUTA-TEST;seats=50;expires=2001-01-01"}))
        .await;
    let users = json!([
        {"userType": "dataConsumer", "name": "Ann", "email": "ann@example.com"},
        {"userType": "dataConsumer", "name": "Bob", "email": "bob@example.com", "active": false},
        {"userType": "policyOwner", "name": "Cy", "email": "cy@example.com"},
    ]);
    t.control(Method::PUT, "/users", Some(&users)).await;

    let status = t.get("/admin/license/licenseStatus").await;
    assert_eq!(
        status.body,
        json!({"activeUserCount": 2, "licenseSeats": 2, "canAddUser": false, "hardSeats": 2}),
        "the expired license adds no seats"
    );

    let usage = t.get("/admin/license/usage").await;
    assert_eq!(usage.body["users"].as_array().unwrap().len(), 3);
    assert_eq!(usage.body["users"][0]["email"], "ann@example.com");
    assert_eq!(usage.body["users"][1]["active"], false);
    assert_eq!(
        usage.body["summary"]["dataConsumers"],
        json!({"totalCount": 2, "activeCount": 1, "inactiveCount": 1})
    );
    // Activity is tracked for data consumers only.
    assert_eq!(usage.body["summary"]["policyOwners"], json!({"totalCount": 1}));
    assert!(usage.body["users"][2].get("active").is_none());
    let paged = t.get("/admin/license/usage?offset=1&size=1").await;
    assert_eq!(paged.body["users"].as_array().unwrap().len(), 1);
    assert_eq!(paged.body["users"][0]["name"], "Bob");
}

#[tokio::test]
async fn the_key_field_and_the_answer_shapes_follow_the_variants() {
    // The docs' example body only.
    let t = Tenant::with_variants(&["license-key=lower"]).await;
    let key = "IMMUTA-TEST;seats=5;expires=2099-01-01";
    let camel = t.post("/admin/license", &json!({"licenseKey": key})).await;
    assert_eq!(camel.status, StatusCode::BAD_REQUEST);
    assert!(camel.message().contains("licensekey is required"), "{}", camel.message());
    assert_eq!(t.post("/admin/license", &json!({"licensekey": key})).await.status, StatusCode::OK);
    // The docs' parameter table only.
    let t = Tenant::with_variants(&["license-key=camel"]).await;
    assert_eq!(
        t.post("/admin/license", &json!({"licensekey": key})).await.status,
        StatusCode::BAD_REQUEST
    );
    let added = t.post("/admin/license", &json!({"licenseKey": key})).await;
    assert_eq!(added.status, StatusCode::OK);
    // A deleted license says whether it can be added again.
    let deleted = t.delete(&format!("/admin/license/{}", added.body["id"])).await;
    assert_eq!(deleted.body["hardDelete"], false);
    assert_eq!(deleted.body["deleted"], true);
    // The Swagger's shapes: no ids, "Unlimited" seats.
    let t = Tenant::with_variants(&["licenses=swagger"]).await;
    let added = t.post("/admin/license", &json!({"licenseKey": key})).await;
    assert!(added.body.get("id").is_none(), "{:?}", added.body);
    assert!(t.get("/admin/license").await.body[0].get("id").is_none());
    let status = t.get("/admin/license/licenseStatus").await.body;
    assert_eq!(
        (status["licenseSeats"].as_str(), status["hardSeats"].as_str()),
        (Some("Unlimited"), Some("Unlimited"))
    );
}

//! The two lists the emulator shares with the spec loader (secret fields, rule types) are the
//! loader's: the emulator crate has none of its own, so these tests check what every emulator
//! here is given and what the emulator does with each entry.

use immuta_gitops::spec::model::RULE_TYPES;
use immuta_gitops::spec::secrets::SECRET_FIELDS;
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::Tenant;
use super::emulator_config;

#[test]
fn the_test_kit_passes_the_loaders_lists() {
    let config = emulator_config();
    assert_eq!(config.secret_fields, SECRET_FIELDS);
    assert_eq!(config.rule_types, RULE_TYPES);
}

fn canary(field: &str) -> String {
    format!("canary-{field}-5e1d")
}

#[tokio::test]
async fn every_field_the_loader_treats_as_secret_is_masked_in_the_log_and_digested_in_the_store() {
    let t = Tenant::start().await;
    let mut connection: Map<String, Value> = serde_json::from_value(json!({
        "handler": "Snowflake", "hostname": "secrets.example.com", "port": 443, "database": "DB",
    }))
    .unwrap();
    for field in SECRET_FIELDS {
        connection.insert((*field).to_owned(), Value::String(canary(field)));
    }
    let payload = json!({"connectionKey": "secrets", "connection": connection,
                         "sources": [{"tableName": "T", "schema": "S"}]});
    t.post_data(&payload).await;

    let state = t.state().await;
    let stored = &state["connections"]["secrets"]["payload"]["connection"];
    let logged = t.control(Method::GET, "/requests", None).await;
    let logged = logged
        .as_array()
        .and_then(|requests| requests.iter().find(|r| r["path"] == "/api/v2/data"))
        .expect("the post is logged")["body"]["connection"]
        .clone();
    for field in SECRET_FIELDS {
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(canary(field))));
        assert_eq!(stored[field], Value::String(digest), "{field} in the store");
        assert_eq!(logged[field], "***", "{field} in the request log");
    }
    let everything = format!("{state}{logged}");
    assert!(!everything.contains("canary-"), "a secret in clear: {everything}");
}

#[tokio::test]
async fn every_rule_type_the_loader_accepts_is_accepted_and_no_other() {
    let t = Tenant::start().await;
    for (i, rule_type) in RULE_TYPES.iter().enumerate() {
        let config = if *rule_type == "Masking" {
            json!({"fields": [{"type": "columnTags", "columnTag": "PII"}],
                   "maskingConfig": {"type": "Hash"}})
        } else {
            json!({})
        };
        let payload = json!({"policyKey": format!("p{i}"), "name": "P", "type": "data",
                             "actions": [{"rules": [{"type": rule_type, "config": config}]}]});
        let answer = t.post("/api/v2/policy", &payload).await;
        assert_eq!(answer.status, StatusCode::OK, "{rule_type}: {:?}", answer.body);
    }
    let payload = json!({"policyKey": "other", "name": "P", "type": "data",
                         "actions": [{"rules": [{"type": "Scramble", "config": {}}]}]});
    let answer = t.post("/api/v2/policy", &payload).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{:?}", answer.body);
    assert!(answer.message().contains(&RULE_TYPES.join(", ")), "{}", answer.message());
}

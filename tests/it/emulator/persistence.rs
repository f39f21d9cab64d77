//! The data file: survives restarts, never holds a secret in clear, and fails loudly when corrupt.

use immuta_emulator::{Emulator, EmulatorConfig, Error};
use reqwest::StatusCode;
use serde_json::json;

use super::emulator_config;
use super::{Tenant, data_payload, tables};

const CANARY: &str = "canary-on-disk-51e0";

fn config(path: &std::path::Path) -> EmulatorConfig {
    EmulatorConfig { data_file: Some(path.to_owned()), ..emulator_config() }
}

#[tokio::test]
async fn the_tenant_survives_a_restart_with_the_same_data_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tenant.json");
    let mut payload = data_payload("acme", "h", "d", Some(tables(&["A", "B"])));
    payload["connection"]["password"] = json!(CANARY);

    let first = Tenant::start_with(config(&path)).await;
    first.post_data(&payload).await;
    let purpose = first.post("/api/v2/purpose", &json!({"name": "Fraud"})).await;
    first
        .post("/admin/license", &json!({"licenseKey": "IMMUTA-TEST;seats=5;expires=2099-01-01"}))
        .await;
    let on_disk = std::fs::read_to_string(&path).expect("written after each change");
    assert!(!on_disk.contains(CANARY), "the password reached the data file");
    assert!(!on_disk.contains("IMMUTA-TEST"), "the license key reached the data file");
    let before = first.state().await;
    first.handle.shutdown().await;

    let second = Tenant::start_with(config(&path)).await;
    assert_eq!(second.state().await, before);
    assert_eq!(second.post_data(&payload).await.names("noChange"), ["public a", "public b"]);
    let same = second.post("/api/v2/purpose", &json!({"name": "Fraud"})).await;
    assert_eq!(same.body["purposeId"], purpose.body["purposeId"]);
    assert_eq!(same.body["creating"], false);
    let next = second.post("/api/v2/purpose", &json!({"name": "Other"})).await;
    assert_eq!(next.body["purposeId"], 2, "ids continue after a restart");
    assert_eq!(second.get("/admin/license").await.body.as_array().unwrap().len(), 1);
    assert!(!std::fs::read_to_string(&path).unwrap().contains(CANARY));
}

#[tokio::test]
async fn a_missing_data_file_is_an_empty_tenant_and_a_corrupt_one_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("new.json");
    let fresh = Tenant::start_with(config(&missing)).await;
    assert_eq!(fresh.get("/dataSource").await.body["count"], 0);
    assert!(!missing.exists(), "nothing is written until something changes");
    fresh.post_data(&data_payload("acme", "h", "d", Some(tables(&["A"])))).await;
    assert!(missing.exists());

    let corrupt = dir.path().join("corrupt.json");
    std::fs::write(&corrupt, "{ this is not a store").unwrap();
    let error = Emulator::start_with(config(&corrupt)).await.expect_err("refuses to start");
    assert!(matches!(error, Error::CorruptDataFile { .. }), "{error:?}");
    assert!(error.to_string().contains("corrupt.json"), "{error}");
}

#[tokio::test]
async fn a_dry_run_does_not_touch_the_data_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tenant.json");
    let t = Tenant::start_with(config(&path)).await;
    t.post_data(&data_payload("acme", "h", "d", Some(tables(&["A"])))).await;
    let before = std::fs::read(&path).unwrap();
    let dry = t
        .post("/api/v2/data?dryRun=true", &data_payload("acme", "h", "d", Some(tables(&["B"]))))
        .await;
    assert_eq!(dry.status, StatusCode::OK);
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

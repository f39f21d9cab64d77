//! `immuta-gitops emulator`: the binary serves, announces its address, and never prints keys.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const KEY: &str = "cli-secret-key-0b7e";

#[tokio::test]
async fn the_subcommand_serves_a_tenant_that_lists_what_was_posted() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("catalog.yaml");
    std::fs::write(
        &catalog,
        "connections:\n  - hostname: warehouse.local\n    database: SHOP\n    schemas:\n      \
         PUBLIC:\n        CUSTOMERS: [{name: ID, dataType: integer}]\n        \
         ORDERS: [{name: ID, dataType: integer}]\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_immuta-gitops"))
        .args(["emulator", "--listen", "127.0.0.1:0", "--api-key"])
        .arg(format!("{KEY}=CREATE_DATA_SOURCE"))
        .arg("--catalog")
        .arg(&catalog)
        .arg("--data-file")
        .arg(dir.path().join("tenant.json"))
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut lines = BufReader::new(stderr).lines();
    let mut printed = Vec::new();
    let base = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await.expect("stderr is readable") {
            printed.push(line.clone());
            if let Some(url) = line.strip_prefix("immuta emulator listening on ") {
                return url.to_owned();
            }
        }
        panic!("the emulator exited without announcing its address: {printed:?}");
    })
    .await
    .expect("the address is announced promptly");
    assert!(base.starts_with("http://127.0.0.1:") && !base.ends_with(":0"), "{base}");

    let http = reqwest::Client::new();
    let payload = json!({
        "connectionKey": "shop",
        "connection": {"handler": "PostgreSQL", "hostname": "warehouse.local", "port": 5432,
                       "database": "SHOP", "username": "svc", "password": "pw"},
    });
    let posted: Value = http
        .post(format!("{base}/api/v2/data"))
        .header("Authorization", KEY)
        .json(&payload)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(posted["creating"], json!(["public customers", "public orders"]));

    let listed: Value = http
        .get(format!("{base}/dataSource"))
        .header("Authorization", format!("Bearer {KEY}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["count"], 2);
    assert_eq!(listed["hits"][1]["name"], "public orders");

    let forbidden = http
        .post(format!("{base}/api/v2/purpose"))
        .header("Authorization", KEY)
        .json(&json!({"name": "P"}))
        .send()
        .await
        .unwrap();
    assert_eq!(forbidden.status(), reqwest::StatusCode::FORBIDDEN);

    child.start_kill().expect("the emulator can be stopped");
    let _ = child.wait().await;
    while let Ok(Some(line)) = lines.next_line().await {
        printed.push(line);
    }
    assert!(printed.iter().all(|l| !l.contains(KEY)), "a key was printed: {printed:?}");
}

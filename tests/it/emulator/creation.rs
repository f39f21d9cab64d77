//! `POST /api/v2/data` creating data sources in the background (the default `creation`
//! variant): the answer comes at once (or after `wait` seconds), and the data sources exist,
//! for listings and projects, only after the creation delay.

use std::time::{Duration, Instant};

use immuta_emulator::EmulatorConfig;
use reqwest::StatusCode;
use serde_json::json;

use super::{Tenant, data_payload, emulator_config, tables};

async fn slow(delay_ms: u64, variants: &[&str]) -> Tenant {
    let variants =
        immuta_emulator::Variants::parse(variants.iter().copied()).expect("valid variants");
    Tenant::start_with(EmulatorConfig {
        creation_delay: Duration::from_millis(delay_ms),
        variants,
        ..emulator_config()
    })
    .await
}

fn listed(data_sources: &[serde_json::Value]) -> Vec<String> {
    data_sources.iter().filter_map(|d| d["name"].as_str().map(str::to_owned)).collect()
}

#[tokio::test]
async fn data_sources_appear_after_the_creation_delay_and_projects_wait_for_them() {
    let t = slow(400, &[]).await;
    let payload = data_payload("acme", "h", "d", Some(tables(&["A", "B"])));
    let started = Instant::now();
    let answer = t.post_data(&payload).await;
    assert!(started.elapsed() < Duration::from_millis(300), "answered at once");
    assert_eq!(answer.names("creating"), ["public a", "public b"]);
    assert!(listed(&t.data_sources().await).is_empty(), "not created yet");

    // A project naming them is refused until they exist (the race of issue 11).
    let project = json!({"projectKey": "p", "name": "P", "datasources": ["public a"]});
    let refused = t.post("/api/v2/project", &project).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.message().contains("public a"), "{}", refused.message());
    // The connection exists already: a dry run of the same post changes nothing, and the key
    // is found.
    let again = t.post("/api/v2/data?dryRun=true", &payload).await;
    assert_eq!(again.names("noChange"), ["public a", "public b"]);
    assert_eq!(t.delete("/api/v2/data/acme?dryRun=true").await.status, StatusCode::OK);

    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(listed(&t.data_sources().await), ["public a", "public b"]);
    assert_eq!(t.post("/api/v2/project", &project).await.status, StatusCode::OK);
}

#[tokio::test]
async fn wait_holds_the_answer_up_to_its_seconds_or_until_created() {
    let t = slow(600, &[]).await;
    // wait 0.2 s: answered after 0.2 s, still creating.
    let started = Instant::now();
    t.post("/api/v2/data?wait=0.2", &data_payload("a", "h1", "d", Some(tables(&["A"])))).await;
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(190) && took < Duration::from_millis(550), "{took:?}");
    assert!(listed(&t.data_sources().await).is_empty());
    // wait -1: until created.
    let started = Instant::now();
    t.post("/api/v2/data?wait=-1", &data_payload("b", "h2", "d", Some(tables(&["B"])))).await;
    assert!(started.elapsed() >= Duration::from_millis(590), "{:?}", started.elapsed());
    assert!(listed(&t.data_sources().await).contains(&"public b".to_owned()));
    // A post that creates nothing answers at once, whatever `wait`.
    let started = Instant::now();
    t.post("/api/v2/data?wait=-1", &data_payload("b", "h2", "d", Some(tables(&["B"])))).await;
    assert!(started.elapsed() < Duration::from_millis(300));
}

#[tokio::test]
async fn synchronous_creation_lists_every_data_source_before_the_answer() {
    let t = slow(5_000, &["creation=synchronous"]).await;
    t.post_data(&data_payload("acme", "h", "d", Some(tables(&["A"])))).await;
    assert_eq!(listed(&t.data_sources().await), ["public a"]);
}

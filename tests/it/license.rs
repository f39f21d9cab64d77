//! `license status` through the real binary: against the emulator with test license keys and
//! license users (seats, active users, expiry, and the warnings under 30 days and above 90% of
//! the seats), and against the embedded sandbox (its banner first).

use std::time::{Duration, SystemTime};

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::tenant::{BASE_ENV, Env};

/// Posts a test license key (`IMMUTA-TEST;seats=N;expires=DATE`); its id.
async fn add_license(env: &Env, seats: u32, expires: &str) -> i64 {
    let key = format!("IMMUTA-TEST;seats={seats};expires={expires}");
    let answer =
        env.by_hand(Method::POST, "/admin/license", Some(&json!({"licenseKey": key}))).await;
    answer["id"].as_i64().expect("a license id")
}

/// Replaces the tenant's users: `consumers` active data consumers, one active policy owner and
/// one inactive data consumer.
async fn set_users(env: &Env, consumers: usize) {
    let mut users: Vec<Value> = (0..consumers)
        .map(|i| json!({"userType": "dataConsumer", "name": format!("user{i}@example.com")}))
        .collect();
    users.push(json!({"userType": "policyOwner", "name": "owner@example.com"}));
    users.push(json!({"userType": "dataConsumer", "name": "gone@example.com", "active": false}));
    env.control(Method::PUT, "/users", Some(&Value::Array(users))).await;
}

/// `YYYY-MM-DD`, `days` from now (UTC).
fn date_in(days: u64) -> String {
    let at = SystemTime::now() + Duration::from_secs(days * 86_400);
    humantime::format_rfc3339(at).to_string()[..10].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn license_status_prints_seats_active_users_and_expiry() {
    let env = Env::start().await;
    let id = add_license(&env, 10, "2099-01-31").await;
    // 8 active data consumers and 1 policy owner: 9 of 10 seats, 90%, not above it.
    set_users(&env, 8).await;
    let run = env.run(&["license", "status"]).await.must_exit(0);
    let out = &run.stdout;
    assert!(out.starts_with(&format!("License status of {}\n", env.url())), "{out}");
    assert!(out.contains("  seats: 10, active users: 9 (90%)\n"), "{out}");
    assert!(out.contains(&format!("  license {id}: 10 seats, expires 2099-01-31 (")), "{out}");
    assert!(
        out.contains("  users: 9 data consumers (8 active, 1 inactive), 1 policy owners\n"),
        "{out}"
    );
    assert!(!run.text().contains("warning"), "nothing to warn about: {}", run.text());
    assert!(!run.text().contains("sandbox"), "{}", run.text());

    let report = env.run(&["license", "status", "--format", "json"]).await.must_exit(0).json();
    assert_eq!(report["seats"], 10);
    assert_eq!(report["active_users"], 9);
    assert_eq!(report["seats_used_percent"], 90);
    assert_eq!(report["licenses"][0]["expires"].as_str().map(|e| &e[..10]), Some("2099-01-31"));
    assert_eq!(report["warnings"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn license_status_warns_under_30_days_and_above_90_percent_of_seats() {
    let env = Env::start().await;
    let id = add_license(&env, 10, &date_in(10)).await;
    // 10 active data consumers and 1 policy owner: 11 of 10 seats.
    set_users(&env, 10).await;
    let run = env.run(&["license", "status"]).await.must_exit(0);
    let out = &run.stdout;
    assert!(out.contains("  seats: 10, active users: 11 (110%)\n"), "{out}");
    // Ten days from now, less the part of today already gone: 9 whole days (10 at midnight).
    assert!(
        out.contains(&format!("warning: license {id} expires in 9 days\n"))
            || out.contains(&format!("warning: license {id} expires in 10 days\n")),
        "{out}"
    );
    assert!(out.contains("warning: 11 of 10 licensed seats are used (110%)\n"), "{out}");

    let report = env.run(&["license", "status", "--format", "json"]).await.must_exit(0).json();
    let warnings = report["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 2, "{report:#}");
    let days = report["licenses"][0]["days_to_expiry"].as_i64().expect("days to expiry");
    assert!((9..=10).contains(&days), "{report:#}");
}

#[test]
fn license_status_against_the_sandbox_says_so_first() {
    let state = tempfile::tempdir().expect("temp dir");
    let out = crate::support::bin()
        .args(["license", "status", "--color", "never", "--state-dir"])
        .arg(state.path())
        .envs(BASE_ENV.iter().copied())
        .output()
        .expect("the binary runs");
    let text = crate::support::output_text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let first = stdout.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("Using the embedded sandbox tenant (no --url or IMMUTA_URL configured)"),
        "{stdout}"
    );
    assert!(first.contains(&state.path().join("sandbox").display().to_string()), "{first}");
    assert!(stdout.contains("License status of sandbox\n"), "{stdout}");
    assert!(stdout.contains("  seats: 0, active users: 0 (0%)\n"), "{stdout}");
    assert!(stdout.contains("warning: the tenant has no license\n"), "{stdout}");
}

//! Secret hygiene: every command and output format, with canary secrets in every secret-bearing
//! field, and a scan of everything the tool writes or serves.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use immuta_gitops::emulator::{ApiKey, Emulator, EmulatorConfig};
use serde_json::Value;

use crate::support::{SpecDir, output_text};

const API_KEY: &str = "canary-api-key-4a1f9c";
const WEBHOOK_SECRET: &str = "canary-webhook-secret-77e0b2";
const PASSWORD: &str = "canary-password-5d2e81";
const CLIENT_SECRET: &str = "canary-client-secret-0b9f3a";
const TOKEN: &str = "canary-token-c47d10";
const KEY_FILE: &str = "canary-key-file-e3a6b5";
const LITERAL: &str = "canary-literal-private-key-91fd02";
const LICENSE: &str = "IMMUTA-TEST;seats=10;expires=2031-03-04;softSeats=7";

const CANARIES: [&str; 8] =
    [API_KEY, WEBHOOK_SECRET, PASSWORD, CLIENT_SECRET, TOKEN, KEY_FILE, LITERAL, LICENSE];

fn assert_clean(what: &str, text: &str) {
    for canary in CANARIES {
        assert!(!text.contains(canary), "{canary} leaked in {what}:\n{text}");
    }
}

fn scan_dir(dir: &Path, found: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            scan_dir(&path, found);
        } else if let Ok(bytes) = std::fs::read(&path) {
            let text = String::from_utf8_lossy(&bytes);
            for canary in CANARIES {
                if text.contains(canary) {
                    found.push(format!("{canary} in {}", path.display()));
                }
            }
        }
    }
}

fn command(emulator: &str, state: &Path, secrets: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_immuta-gitops"));
    cmd.arg("--color")
        .arg("never")
        .env("IMMUTA_URL", emulator)
        .env("IMMUTA_API_KEY", API_KEY)
        .env("IMMUTA_GITOPS_STATE_DIR", state)
        .env("IMMUTA_GITOPS_SECRETS_DIR", secrets)
        .env("IMMUTA_GITOPS_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env("C_PW", PASSWORD)
        .env("C_CS", CLIENT_SECRET)
        .env("C_TOK", TOKEN)
        .env("C_LIC", LICENSE)
        .env("RUST_LOG", "debug")
        .env("NO_COLOR", "1");
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_command_output_file_log_or_endpoint_ever_shows_a_secret() {
    let config = EmulatorConfig {
        api_keys: vec![API_KEY.parse::<ApiKey>().unwrap()],
        ..EmulatorConfig::default()
    };
    let emulator = Emulator::start_with(config).await.unwrap();
    let url = emulator.base_url();
    let secrets = SpecDir::new();
    secrets.write("key.p8", KEY_FILE);
    let state = SpecDir::new();
    let specs = SpecDir::new();
    specs.write(
        "ds.yaml",
        &format!(
            "connectionKey: canary\nconnection:\n  handler: Snowflake\n  hostname: canary.example.com\n  \
             warehouse: W\n  database: D\n  password: ${{C_PW}}\n  clientSecret: ${{C_CS}}\n  token: ${{C_TOK}}\n  \
             privateKey: {LITERAL}\n  userFiles:\n    - keyName: PRIV_KEY_FILE\n      content: ${{file:key.p8}}\n\
             sources:\n  - tableName: T\n    schema: S\n"
        ),
    );
    specs.write("license.yaml", "licenseKey: ${C_LIC}\n");
    specs.write("purpose.yaml", "name: Canary purpose\n");
    let saved = state.path().join("plan.json");
    let spec_dir = specs.path().to_str().unwrap().to_owned();
    let runs: Vec<(&str, Vec<String>)> = vec![
        ("validate text", vec!["validate".into(), spec_dir.clone()]),
        (
            "validate json",
            vec!["validate".into(), spec_dir.clone(), "--format".into(), "json".into()],
        ),
        ("plan text", vec!["plan".into(), spec_dir.clone()]),
        ("plan json", vec!["plan".into(), spec_dir.clone(), "--format".into(), "json".into()]),
        (
            "plan markdown",
            vec!["plan".into(), spec_dir.clone(), "--format".into(), "markdown".into()],
        ),
        (
            "plan --out",
            vec!["plan".into(), spec_dir.clone(), "--out".into(), saved.display().to_string()],
        ),
        (
            "apply plan.json",
            vec!["apply".into(), saved.display().to_string(), "--auto-approve".into()],
        ),
        ("plan after apply", vec!["plan".into(), spec_dir.clone(), "--refresh".into()]),
        ("license status", vec!["license".into(), "status".into()]),
        (
            "license status json",
            vec!["license".into(), "status".into(), "--format".into(), "json".into()],
        ),
    ];
    for (what, args) in runs {
        let out = command(&url, state.path(), secrets.path()).args(&args).output().unwrap();
        let text = output_text(&out);
        assert_ne!(out.status.code(), Some(101), "{what} panicked:\n{text}");
        if what.starts_with("apply") {
            assert_eq!(out.status.code(), Some(0), "{what}:\n{text}");
        }
        assert_clean(what, &text);
    }

    // A changed secret is planned as `(sensitive, changed)`, never by value.
    let out = command(&url, state.path(), secrets.path())
        .args(["plan", &spec_dir, "--format", "json"])
        .env("C_PW", "canary-password-rotated-6c1e")
        .output()
        .unwrap();
    let text = output_text(&out);
    assert!(!text.contains("canary-password-rotated-6c1e"));
    assert!(text.contains("(sensitive, changed)"), "{text}");

    // The reconciler: logs (debug, JSON), /status, /metrics, a signed and a badly signed webhook.
    let mut child = command(&url, state.path(), secrets.path())
        .args([
            "--log-format",
            "json",
            "run",
            "--dir",
            &spec_dir,
            "--listen",
            "127.0.0.1:0",
            "--interval",
            "1h",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let log = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(url) = crate::support::serving_url(&line) {
                let _ = tx.send(url);
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let base = rx.recv_timeout(Duration::from_secs(30)).expect("the reconciler starts");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status: Value =
            http.get(format!("{base}/status")).send().await.unwrap().json().await.unwrap();
        if !status["history"].as_array().is_none_or(Vec::is_empty) {
            assert_eq!(status["ready"], true, "{status:#}");
            break;
        }
        assert!(Instant::now() < deadline, "no reconcile: {status:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let bad = http
        .post(format!("{base}/webhook"))
        .header("X-GitHub-Event", "push")
        .header("X-Hub-Signature-256", format!("sha256={}", "0".repeat(64)))
        .body(format!("{{\"ref\":\"refs/heads/main\",\"secret\":\"{WEBHOOK_SECRET}\"}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    assert_clean("webhook answer", &bad.text().await.unwrap());
    for path in ["/status", "/metrics", "/readyz", "/healthz"] {
        let body = http.get(format!("{base}{path}")).send().await.unwrap().text().await.unwrap();
        assert_clean(path, &body);
    }
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    assert_clean("reconciler logs (debug)", &log.join().unwrap());

    // Everything on disk: state, journal, lock, saved plan.
    let mut found = Vec::new();
    scan_dir(state.path(), &mut found);
    assert!(found.is_empty(), "{found:#?}");

    // The tenant's request log masks what it records.
    for path in ["/_emulator/requests", "/_emulator/state"] {
        let body = http.get(format!("{url}{path}")).send().await.unwrap().text().await.unwrap();
        assert_clean(path, &body);
    }
}

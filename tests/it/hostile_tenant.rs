//! A tenant (or whatever stands in front of it) that misbehaves, against the real binary: issue
//! 12's classes "Secrets" and "Writes that did not happen".
//!
//! Secrets: canaries in a spec secret, the API key, the password of `IMMUTA_URL`, the webhook
//! secret and the Git token; the emulator echoes the request in a 400 (JSON-escaped, URL-encoded,
//! base64, cut in the middle of a value, as JSON and as plain text) and the `Authorization`
//! header in a 403, on dry runs and on writes. No run of 8 characters of any canary, in any of
//! those encodings, may appear in stdout, stderr (debug logs, text and JSON), plans in every
//! format, saved plans, the state, `/status` or `/readyz`.
//!
//! Writes: a 302 to a login page, a 200 HTML page, an empty 200 and JSON of another shape never
//! count as a write (no "Apply complete", nothing recorded, dependents skipped, the next plan
//! still shows the change); such dry-run answers are "unknown", never "no change"; a lost answer
//! to a license post is recovered by the listing, so the license can be deleted later.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use immuta_emulator::ApiKey;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::tenant::Env;
use crate::support::{BIN, emulator_config, serving_url};

/// Quotes, backslashes, a slash, spaces, `+`, `%`, `&` and non-ASCII: every encoding differs.
const SPEC_SECRET: &str = "Qv\"7k\\Lz/ W+x%&é Hq4-jR8mT2";
const API_KEY: &str = "ak9Xw2Lq7Vn4Hc8Rt5Yb";
const URL_PASSWORD: &str = "Pw/3dK+9sM zQ7";
const WEBHOOK_SECRET: &str = "wh5Nc8Bv2Kx6Jq0Lm3";
const GIT_TOKEN: &str = "gt4Fd7Hs1Za9Xc6Vb2";

fn canaries() -> Vec<(&'static str, &'static str)> {
    vec![
        ("spec secret", SPEC_SECRET),
        ("API key", API_KEY),
        ("URL password", URL_PASSWORD),
        ("webhook secret", WEBHOOK_SECRET),
        ("Git token", GIT_TOKEN),
    ]
}

/// Form-urlencoding (`+` for spaces).
fn form(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b' ' => "+".to_owned(),
            b if b.is_ascii_alphanumeric() || b"-._*".contains(&b) => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// Every run of 8 characters of `value` in every encoding an echo may use.
fn runs(value: &str) -> Vec<String> {
    let json = serde_json::to_string(value).unwrap();
    let mut forms = vec![value.to_owned(), json[1..json.len() - 1].to_owned(), form(value)];
    let b64 = base64::engine::general_purpose::STANDARD;
    for shift in 0..3 {
        let mut padded = vec![0u8; shift];
        padded.extend_from_slice(value.as_bytes());
        let encoded = b64.encode(&padded);
        let skip = (shift * 8).div_ceil(6);
        let keep = (padded.len() * 8) / 6;
        forms.push(encoded[skip..keep].to_owned());
    }
    let mut out = Vec::new();
    for f in forms {
        let chars: Vec<char> = f.chars().collect();
        for w in chars.windows(8) {
            out.push(w.iter().collect());
        }
    }
    out
}

/// What the scans found.
#[derive(Default)]
struct Scan {
    found: Vec<String>,
    scanned: usize,
}

impl Scan {
    fn check(&mut self, what: &str, text: &str) {
        self.scanned += 1;
        for (label, value) in canaries() {
            if let Some(run) = runs(value).into_iter().find(|r| text.contains(r.as_str())) {
                let at = text.find(run.as_str()).unwrap_or(0);
                let from = text.floor_char_boundary(at.saturating_sub(60));
                let to = text.ceil_char_boundary((at + 80).min(text.len()));
                self.found.push(format!("{label} ({run:?}) in {what}: …{}…", &text[from..to]));
            }
        }
    }
}

/// The tenant with the canary API key, the URL with the canary password.
async fn start() -> (Env, String) {
    let mut config = emulator_config();
    config.api_keys = vec![ApiKey::admin(API_KEY)];
    let env = Env::start_with(config).await;
    let url = env.url().replacen("http://", &format!("http://gitops:{}@", form(URL_PASSWORD)), 1);
    env.specs
        .write(
            "data/vault.yaml",
            "connectionKey: vault\nconnection:\n  handler: Snowflake\n  hostname: vault.example.com\n  \
             port: 443\n  database: VAULT\n  warehouse: WH\n  username: svc\n  password: ${VAULT_PASSWORD}\n\
             sources:\n  - {tableName: LEDGER, schema: PUBLIC}\n",
        )
        .write("purposes/audit.yaml", "name: Audit\ndescription: Audits.\n");
    (env, url)
}

/// The binary with every canary in its environment, the URL from `IMMUTA_URL`, debug logs.
fn command(env: &Env, url: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(env.specs.path())
        .args(["--color", "never"])
        .args(args)
        .env("NO_COLOR", "1")
        .env("IMMUTA_URL", url)
        .env("IMMUTA_API_KEY", API_KEY)
        .env_remove("IMMUTA_ADMIN_API_KEY")
        .env("IMMUTA_GITOPS_STATE_DIR", env.state_dir())
        .env("IMMUTA_GITOPS_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env("IMMUTA_GITOPS_GIT_TOKEN", GIT_TOKEN)
        .env("IMMUTA_GITOPS_LISTEN", "127.0.0.1:0")
        .env("IMMUTA_GITOPS_RETRY_BASE_MS", "5")
        .env("VAULT_PASSWORD", SPEC_SECRET)
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null());
    cmd
}

/// Runs a command to its end: its exit code and everything it printed.
async fn run(cmd: Command) -> (i32, String) {
    let mut cmd = cmd;
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
    (out.status.code().unwrap_or(-1), crate::support::output_text(&out))
}

async fn misbehave(env: &Env, rule: Value) {
    env.control(Method::POST, "/misbehaviours", Some(&rule)).await;
}

async fn calm(env: &Env) {
    env.control(Method::DELETE, "/misbehaviours", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echoed_secrets_never_reach_any_output() {
    let (env, url) = start().await;
    let mut scan = Scan::default();
    let spec = env.specs.path().display().to_string();
    let saved = env.state_dir().join("plan.json").display().to_string();

    // Dry runs echoed every way: plans in every format and a saved plan.
    let echoes = [
        json!({"kind": "echo", "method": "POST", "dryRun": true, "count": 1000}),
        json!({"kind": "echo-text", "method": "POST", "dryRun": true, "count": 1000}),
        // Cut by the server in the middle of the password (the payload is longer than this).
        json!({"kind": "echo", "method": "POST", "dryRun": true, "count": 1000, "cutAt": 200}),
        json!({"kind": "echo-auth", "method": "POST", "dryRun": true, "count": 1000}),
    ];
    for rule in echoes {
        calm(&env).await;
        misbehave(&env, rule.clone()).await;
        for format in ["text", "json", "markdown"] {
            let (code, text) = run(command(&env, &url, &["plan", &spec, "--format", format])).await;
            assert!(code == 0 || code == 1, "{rule} {format}: {code}\n{text}");
            scan.check(&format!("plan --format {format} ({rule})"), &text);
            assert!(text.contains("(sensitive)") || rule["kind"] == "echo-auth", "{rule}: {text}");
        }
        let (_, text) = run(command(&env, &url, &["plan", &spec, "--out", &saved])).await;
        scan.check(&format!("plan --out ({rule})"), &text);
        if let Ok(file) = std::fs::read_to_string(&saved) {
            scan.check(&format!("the saved plan ({rule})"), &file);
        }
        let (_, text) =
            run(command(&env, &url, &["--log-format", "json", "plan", &spec, "--format", "json"]))
                .await;
        scan.check(&format!("plan, JSON logs ({rule})"), &text);
    }
    let logged = env.requests().await;
    assert!(logged.iter().any(|r| r["status"] == 400), "no echo was served");
    assert!(logged.iter().any(|r| r["status"] == 403), "no 403 was served");

    // Writes echoed: apply's output, its retries and the state.
    for rule in [
        json!({"kind": "echo", "dryRun": false, "method": "POST", "count": 1000}),
        json!({"kind": "echo-text", "dryRun": false, "method": "POST", "count": 1000, "cutAt": 230}),
        json!({"kind": "echo-auth", "dryRun": false, "method": "POST", "count": 1000}),
    ] {
        calm(&env).await;
        misbehave(&env, rule.clone()).await;
        let (code, text) = run(command(&env, &url, &["apply", &spec, "--auto-approve"])).await;
        assert_eq!(code, 1, "{rule}:\n{text}");
        assert!(!text.contains("Apply complete"), "{rule}:\n{text}");
        scan.check(&format!("apply ({rule})"), &text);
    }
    calm(&env).await;
    let (code, text) = run(command(&env, &url, &["apply", &spec, "--auto-approve"])).await;
    assert_eq!(code, 0, "{text}");
    scan.check("apply once the tenant behaves", &text);

    // The reconciler: a changed secret posted to a tenant that echoes it; /status and /readyz.
    misbehave(
        &env,
        json!({"kind": "echo", "method": "POST", "count": 1000, "pathPrefix": "/api/v2"}),
    )
    .await;
    let mut cmd = command(&env, &url, &["run", "--dir", &spec, "--interval", "1h"]);
    cmd.env("VAULT_PASSWORD", format!("{SPEC_SECRET}-rotated"));
    let output = tempfile::NamedTempFile::new().unwrap();
    let mut child =
        cmd.stdout(output.reopen().unwrap()).stderr(output.reopen().unwrap()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let base = loop {
        let file = std::fs::File::open(output.path()).unwrap();
        if let Some(url) =
            BufReader::new(file).lines().map_while(Result::ok).find_map(|l| serving_url(&l))
        {
            break url;
        }
        assert!(Instant::now() < deadline, "the reconciler never served");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let status = loop {
        let status: Value = match env.http.get(format!("{base}/status")).send().await {
            Ok(r) => r.json().await.unwrap_or(Value::Null),
            Err(_) => Value::Null,
        };
        if status["history"][0]["outcome"].is_string() {
            break status;
        }
        assert!(Instant::now() < deadline, "no reconcile: {status}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_ne!(status["history"][0]["outcome"], "applied", "{status:#}");
    for path in ["/status", "/readyz", "/metrics"] {
        let body =
            env.http.get(format!("{base}{path}")).send().await.unwrap().text().await.unwrap();
        scan.check(&format!("run: {path}"), &body);
    }
    let status_text = status.to_string();
    assert!(status_text.contains("invalid request"), "the echo reached /status: {status:#}");
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = tokio::task::spawn_blocking(move || child.wait()).await;
    scan.check("run: stdout and stderr", &std::fs::read_to_string(output.path()).unwrap());

    // Everything on disk: the state (which keeps the URL without its userinfo) and saved plans.
    for entry in std::fs::read_dir(env.state_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            scan.check(&path.display().to_string(), &text);
        }
    }
    let state = env.state_file();
    assert!(state.to_string().contains(&env.url()), "the state names the tenant: {state}");

    eprintln!("{} outputs scanned", scan.scanned);
    assert!(scan.found.is_empty(), "{} leaks:\n{}", scan.found.len(), scan.found.join("\n\n"));
    assert!(status_text.contains("(sensitive)"), "the echo in /status is redacted: {status:#}");
}

/// The specs of the write tests: a purpose, and a project that needs it.
fn write_pair(env: &Env) {
    env.specs
        .write("purposes/audit.yaml", "name: Audit\ndescription: Audits.\n")
        .write("projects/p.yaml", "projectKey: audits\nname: Audits\npurposes: [Audit]\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_answered_by_a_login_page_or_a_proxy_is_not_done() {
    for kind in ["redirect", "html", "empty", "shape"] {
        let env = Env::start().await;
        write_pair(&env);
        misbehave(
            &env,
            json!({"kind": kind, "method": "POST", "pathPrefix": "/api/v2/purpose", "dryRun": false}),
        )
        .await;
        let run = env.apply(&[]).await;
        let text = run.text();
        assert_eq!(run.code, 1, "{kind}:\n{text}");
        assert!(!text.contains("Apply complete"), "{kind}:\n{text}");
        assert!(text.contains("is not confirmed") || text.contains("redirect"), "{kind}:\n{text}");
        assert!(
            text.contains("1 failed, 1 skipped"),
            "the project waits for its purpose ({kind}):\n{text}"
        );
        assert!(env.managed().is_empty(), "{kind}: nothing is recorded: {:?}", env.managed());
        // The next plan still has both to do.
        let plan = env.plan(&["--detailed-exitcode"]).await;
        assert_eq!(plan.code, 2, "{kind}:\n{}", plan.text());
        assert!(!plan.stdout.contains("No changes"), "{kind}: {}", plan.stdout);
        env.apply(&[]).await.must_exit(0);
        env.assert_converged().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_dry_run_is_unknown_never_no_change() {
    let env = Env::start().await;
    write_pair(&env);
    env.apply_in_process().await;
    env.specs.write("purposes/audit.yaml", "name: Audit\ndescription: Audits, changed.\n");
    for kind in ["html", "empty", "shape"] {
        misbehave(&env, json!({"kind": kind, "dryRun": true, "count": 10})).await;
        let plan = env.plan_json(&[]).await;
        calm(&env).await;
        let purpose = crate::support::tenant::change(&plan, "purpose", "Audit");
        assert_eq!(purpose["server"]["type"], "unknown", "{kind}: {purpose:#}");
        let warned =
            plan["warnings"].as_array().unwrap().iter().any(|w| w["code"] == "dry-run-unknown");
        assert!(warned, "{kind}: {:#}", plan["warnings"]);
        misbehave(&env, json!({"kind": kind, "dryRun": true, "count": 10})).await;
        let text = env.plan(&[]).await.must_exit(0).stdout;
        calm(&env).await;
        assert!(!text.contains("reports no change"), "{kind}:\n{text}");
        assert!(text.contains("unknown"), "{kind}:\n{text}");
    }
    // A redirect on a dry run fails the plan, saying so.
    misbehave(&env, json!({"kind": "redirect", "dryRun": true, "count": 10})).await;
    let run = env.plan(&[]).await.must_exit(1);
    assert!(run.stderr.contains("redirect"), "{}", run.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_create_answer_is_recovered_by_the_listing_licenses_included() {
    let env = Env::start().await;
    env.specs
        .write("licenses/key.yaml", "licenseKey: IMMUTA-TEST;seats=40;expires=2031-01-02\n")
        .write("purposes/audit.yaml", "name: Audit\ndescription: Audits.\n");
    for path in ["/admin/license", "/api/v2/purpose"] {
        misbehave(
            &env,
            json!({"kind": "lose", "method": "POST", "pathPrefix": path, "dryRun": false}),
        )
        .await;
    }
    let run = env.apply(&[]).await;
    assert_eq!(run.code, 0, "{}", run.text());
    assert!(run.stderr.contains("its id is recorded"), "{}", run.text());
    let dropped: Vec<Value> = env
        .requests()
        .await
        .into_iter()
        .filter(|r| r["method"] == "POST" && r["status"] == 500)
        .collect();
    assert_eq!(dropped.len(), 2, "both answers were lost");
    let state = env.state_file();
    for kind in ["license", "purpose"] {
        let entry =
            state["objects"].as_array().unwrap().iter().find(|e| e["kind"] == kind).unwrap();
        assert!(entry["id"].is_i64(), "{kind} has its id: {entry:#}");
    }
    env.assert_converged().await;
    // Removed from the specs: deleted by the id the listing gave.
    std::fs::remove_file(env.specs.path().join("licenses/key.yaml")).unwrap();
    env.apply(&["--allow-destroy", "--force"]).await.must_exit(0);
    let licenses = env.by_hand(Method::GET, "/admin/license", None).await;
    let live: Vec<&Value> =
        licenses.as_array().unwrap().iter().filter(|l| l["deleted"] != true).collect();
    assert!(live.is_empty(), "the license is gone: {licenses:#}");
}

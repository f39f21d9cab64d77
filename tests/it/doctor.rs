//! `immuta-gitops doctor` against the emulator (its default tenant and several variants) and a
//! closed port: what it reports, its exit code, JSON, and that it never writes (the emulator's
//! request log holds `GET`s and the token exchange only).

use immuta_emulator::{ApiKey, EmulatorConfig};
use serde_json::Value;

use crate::support::emulator_config;
use crate::support::tenant::{Env, Run, writes};

/// `doctor [SPECS] extra...` against `env`.
async fn doctor(env: &Env, with_specs: bool, extra: &[&str]) -> Run {
    let specs = env.specs.path().display().to_string();
    let mut args = vec!["doctor"];
    if with_specs {
        args.push(&specs);
    }
    args.extend_from_slice(extra);
    env.run(&args).await
}

/// The line of check `name` in a text report.
fn line<'a>(run: &'a Run, name: &str) -> &'a str {
    run.stdout
        .lines()
        .find(|l| l.split_whitespace().collect::<Vec<_>>().join(" ").contains(&format!(" {name} ")))
        .unwrap_or_else(|| panic!("no `{name}` line:\n{}", run.stdout))
}

/// Every request of the log is a read, or the token exchange.
fn only_reads(log: &[Value]) {
    assert_eq!(writes(log), Vec::<String>::new(), "doctor writes nothing");
    for r in log {
        assert!(r["method"] == "GET" || r["path"] == "/bim/apikey/authenticate", "not a read: {r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_tenant_passes_and_nothing_is_written() {
    let env = Env::shop_applied().await;
    env.clear_requests().await;
    let run = doctor(&env, true, &[]).await.must_exit(0);
    assert!(
        run.stdout.starts_with(&format!("immuta-gitops doctor: {}\n", env.url())),
        "{}",
        run.stdout
    );
    for name in ["reachable", "clock", "auth", "permissions", "license admin", "connections"] {
        assert!(line(&run, name).trim_start().starts_with("ok "), "{name}: {}", run.stdout);
    }
    assert!(line(&run, "auth").contains("`Bearer <key>`, the raw key, an exchanged token"));
    assert!(line(&run, "listing /project").contains("{hits, count}, 2 in all"), "{}", run.stdout);
    assert!(line(&run, "listing /policy/global").contains("a bare array"));
    assert!(line(&run, "listing /governance/purpose").contains("subpurposes nested without ids"));
    assert!(line(&run, "connections").contains("none of the specs' 1 connection key(s)"));
    assert!(run.stdout.ends_with("Nothing blocks apply; 0 warning(s).\n"), "{}", run.stdout);
    only_reads(&env.requests().await);

    let report = doctor(&env, true, &["--format", "json"]).await.must_exit(0).json();
    assert_eq!(report["format_version"], 1);
    assert_eq!(report["ok"], true);
    let checks: Vec<&str> =
        report["checks"].as_array().unwrap().iter().map(|c| c["check"].as_str().unwrap()).collect();
    assert_eq!(
        checks,
        [
            "reachable",
            "clock",
            "auth",
            "permissions",
            "license admin",
            "listing /dataSource",
            "listing /project",
            "listing /governance/purpose",
            "listing /policy/global",
            "connections",
        ]
    );
    only_reads(&env.requests().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_missing_a_permission_the_specs_need_blocks_apply_with_a_fix() {
    let config = EmulatorConfig {
        api_keys: vec!["narrow=GOVERNANCE,CREATE_DATA_SOURCE".parse::<ApiKey>().unwrap()],
        ..emulator_config()
    };
    let env = Env::start_with(config).await;
    crate::support::tenant::write_shop(&env.specs);
    let run = doctor(&env, true, &[]).await.must_exit(1);
    let permissions = line(&run, "permissions");
    assert!(permissions.trim_start().starts_with("problem"), "{}", run.stdout);
    assert!(permissions.contains("lacks CREATE_PROJECT (project)"), "{permissions}");
    assert!(run.stdout.contains("fix: grant the permissions"), "{}", run.stdout);
    let license = line(&run, "license admin");
    assert!(license.trim_start().starts_with("warning"), "{license}");
    assert!(run.stdout.contains("IMMUTA_ADMIN_API_KEY"), "{}", run.stdout);
    assert!(run.stdout.contains("1 problem(s) block apply"), "{}", run.stdout);
    // Without specs, the same key is only warned about.
    doctor(&env, false, &[]).await.must_exit(0).stdout_has("for objects of these kinds");
    only_reads(&env.requests().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_variants_are_named_as_doctor_finds_them() {
    let env = Env::shop_applied().await;
    env.set_variants(&["auth=tokens-only-500", "purposes=names", "clock=skewed", "envelope=hits"])
        .await;
    env.clear_requests().await;
    let run = doctor(&env, true, &[]).await.must_exit(0);
    let auth = line(&run, "auth");
    assert!(auth.contains("taken as an exchanged token"), "{auth}");
    assert!(auth.contains("refused as `Bearer <key>` (500), the raw key (500)"), "{auth}");
    assert!(auth.contains("answers 500, not 401"), "{auth}");
    assert!(
        line(&run, "listing /governance/purpose")
            .contains("{hits} without a count; subpurposes nested as names")
    );
    let clock = line(&run, "clock");
    assert!(clock.trim_start().starts_with("warning") && clock.contains("ahead of"), "{clock}");
    assert!(run.stdout.contains("fix: synchronise the clocks"), "{}", run.stdout);
    only_reads(&env.requests().await);

    // A tenant that registers connections: the specs' connection cannot be applied.
    env.set_variants(&["registration=connections"]).await;
    let run = doctor(&env, true, &[]).await.must_exit(1);
    let connections = line(&run, "connections");
    assert!(connections.trim_start().starts_with("problem"), "{}", run.stdout);
    assert!(
        connections.contains("`shop` cannot be changed with POST /api/v2/data"),
        "{connections}"
    );
    only_reads(&env.requests().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_port_is_unreachable_and_blocks_apply() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let out = crate::support::bin()
        .args(["doctor", "--url", &url])
        .env("IMMUTA_API_KEY", "some-key")
        .output()
        .unwrap();
    let text = crate::support::output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("problem  reachable  cannot reach the Immuta tenant"), "{text}");
    assert!(text.contains("fix: check --url (or IMMUTA_URL)"), "{text}");
    assert!(!text.contains("some-key"), "the key is never printed: {text}");
    let out = crate::support::bin()
        .args(["doctor", "--url", &url, "--format", "json"])
        .env("IMMUTA_API_KEY", "some-key")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(report["ok"], false);
    assert_eq!(report["checks"][0]["status"], "problem");
    // Without a tenant URL there is nothing to check.
    let out = crate::support::bin().args(["doctor"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(crate::support::output_text(&out).contains("doctor checks a tenant: pass --url"));
}

//! `specs-example` end to end: first apply, clean re-plan, detailed exit codes, the sandbox
//! banner, and what a reconcile costs in writes.

use std::collections::BTreeSet;

use crate::support::tenant::{Env, copy_example, edit, writes};
use crate::support::{SpecDir, output_text};

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_applies_to_an_empty_tenant_and_then_plans_clean() {
    let env = Env::start().await;
    env.set_catalog(&super::catalog(&[])).await;
    copy_example(&env.specs);

    let run = env.apply(&[]).await.must_exit(0);
    assert!(run.stdout.contains("Apply complete: 13 done, 0 failed"), "{}", run.stdout);

    let view = env.view().await;
    assert_eq!(
        view.policies,
        set(&[
            "mask-email-hash",
            "mask-passport-constant",
            "mask-passport-us-conditional",
            "rows-orders-by-region",
            "subscribe-pii-approval",
            "subscribe-sales-employees",
        ])
    );
    assert_eq!(
        view.purposes,
        set(&[
            "Analytics",
            "Analytics.Marketing",
            "Analytics.Marketing.Campaigns",
            "Analytics.Product",
            "Fraud Investigation",
        ])
    );
    assert_eq!(view.projects, set(&["fraud-investigations", "marketing-analytics"]));
    assert_eq!(view.active("snowflake-sales"), ["sales customers", "sales orders"]);
    assert_eq!(
        view.active("databricks-analytics"),
        ["analytics events", "analytics sessions"],
        "`all: true` registered every table of the catalog"
    );
    assert_eq!(view.licenses, 1);
    assert_eq!(env.managed().len(), 13, "every object is in the state");

    let run = env.plan(&["--detailed-exitcode"]).await.must_exit(0);
    assert!(run.stdout.contains("No changes. The tenant matches the specs."), "{}", run.stdout);

    edit(&env.specs, "policies/row-level.yaml", "STATUS = 'CLOSED'", "STATUS = 'DONE'");
    let run = env.plan(&["--detailed-exitcode"]).await.must_exit(2);
    assert!(
        run.stdout.contains("~ policy \"rows-orders-by-region\" will be updated"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("Plan: 0 to create, 1 to update, 0 to delete"), "{}", run.stdout);
    // Without --detailed-exitcode a plan with changes is still a success.
    env.plan(&[]).await.must_exit(0);
}

#[test]
fn the_embedded_sandbox_says_so_first_and_converges() {
    let specs = SpecDir::new();
    copy_example(&specs);
    let state = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = crate::support::bin()
            .args(args)
            .arg(specs.path())
            .arg("--state-dir")
            .arg(state.path())
            .args(["--color", "never"])
            .envs(crate::support::tenant::BASE_ENV.iter().copied())
            .output()
            .expect("the binary runs");
        (out.status.code(), out)
    };
    const BANNER: &str = "Using the embedded sandbox tenant (no --url or IMMUTA_URL configured)";

    let (code, out) = run(&["apply", "--auto-approve"]);
    assert_eq!(code, Some(0), "{}", output_text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.lines().next().unwrap_or_default().starts_with(BANNER), "{stdout}");
    assert!(stdout.contains("Apply complete: 13 done"), "{stdout}");
    assert!(state.path().join("sandbox/state.json").is_file());
    assert!(state.path().join("sandbox/tenant.json").is_file(), "the sandbox tenant persists");

    let (code, out) = run(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, Some(0), "{}", output_text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.lines().next().unwrap_or_default().starts_with(BANNER), "{stdout}");
    assert!(stdout.contains("No changes."), "{stdout}");

    // With JSON on stdout, the banner goes first on stderr and stdout stays pure JSON.
    edit(&specs, "purposes/fraud-investigation.yaml", "payment fraud", "card fraud");
    let (code, out) = run(&["plan", "--detailed-exitcode", "--format", "json"]);
    assert_eq!(code, Some(2), "{}", output_text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.lines().next().unwrap_or_default().starts_with(BANNER), "{stderr}");
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(plan["tenant"], "sandbox");
    assert_eq!(plan["summary"]["update"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_no_op_reconcile_writes_nothing_and_one_edit_writes_once() {
    let env = Env::start().await;
    env.set_catalog(&super::catalog(&[])).await;
    copy_example(&env.specs);
    env.apply(&[]).await.must_exit(0);

    env.clear_requests().await;
    env.plan(&[]).await.must_exit(0);
    let run = env.apply(&[]).await.must_exit(0);
    assert!(run.stdout.contains("No changes."), "{}", run.stdout);
    let log = env.requests().await;
    assert_eq!(writes(&log), Vec::<String>::new(), "a no-op plan and apply write nothing");
    assert!(!log.is_empty(), "the tenant was read");

    edit(&env.specs, "policies/subscription.yaml", "Every employee can", "All employees can");
    env.clear_requests().await;
    env.apply(&[]).await.must_exit(0);
    assert_eq!(writes(&env.requests().await), ["POST /api/v2/policy"]);

    edit(&env.specs, "data-sources/snowflake-sales.yaml", "One row per customer", "A customer");
    env.clear_requests().await;
    env.apply(&["--wait", "30"]).await.must_exit(0);
    let log = env.requests().await;
    assert_eq!(writes(&log), ["POST /api/v2/data"]);
    let post = log
        .iter()
        .find(|r| {
            r["method"] == "POST" && r["path"] == "/api/v2/data" && r["query"] != "dryRun=true"
        })
        .unwrap();
    assert!(
        post["query"].as_str().unwrap_or_default().contains("wait=30"),
        "--wait reaches Immuta: {post}"
    );
    env.assert_converged().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_without_a_terminal_needs_auto_approve() {
    let env = Env::start().await;
    copy_example(&env.specs);
    let specs = env.specs.path().display().to_string();
    let run = env.run(&["apply", &specs]).await.must_exit(1);
    assert!(run.stderr.contains("stdin is not a terminal; pass --auto-approve"), "{}", run.stderr);
    assert_eq!(writes(&env.requests().await), Vec::<String>::new(), "nothing was applied");
    assert!(env.view().await.policies.is_empty());
}

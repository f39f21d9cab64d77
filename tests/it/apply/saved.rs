//! Saved plans: `plan --out FILE` then `apply FILE` carries out what was reviewed, and refuses
//! (exit 1, nothing changed) when the specs, the state or the tenant moved in between.

use reqwest::Method;
use serde_json::Value;

use crate::support::SpecDir;
use crate::support::tenant::{Env, edit, hand_policy, without_times, write_shop, writes};

struct Saved {
    env: Env,
    dir: tempfile::TempDir,
}

impl Saved {
    fn file(&self) -> String {
        self.dir.path().join("plan.json").display().to_string()
    }

    /// `apply FILE --auto-approve extra...`.
    async fn apply(&self, extra: &[&str]) -> crate::support::tenant::Run {
        let file = self.file();
        let mut args = vec!["apply", file.as_str(), "--auto-approve"];
        args.extend_from_slice(extra);
        self.env.run(&args).await
    }
}

/// The `shop` fixture applied, then one policy edited and the plan saved.
async fn saved(plan_args: &[&str]) -> Saved {
    let env = Env::start().await;
    saved_on(env, plan_args).await
}

async fn saved_on(env: Env, plan_args: &[&str]) -> Saved {
    write_shop(&env.specs);
    env.apply_in_process().await;
    edit(&env.specs, "policies/policies.yaml", "Employees subscribe", "Staff subscribe");
    let dir = tempfile::tempdir().unwrap();
    let saved = Saved { env, dir };
    let file = saved.file();
    let mut args = vec!["--out", file.as_str()];
    args.extend_from_slice(plan_args);
    let run = saved.env.plan(&args).await.must_exit(0);
    assert!(run.stdout.contains("1 to update"), "{}", run.stdout);
    let text = std::fs::read_to_string(saved.file()).expect("the plan is saved");
    let plan: Value = serde_json::from_str(&text).expect("saved as JSON");
    assert_eq!(plan["summary"]["update"], 1);
    saved
}

/// Applying the saved plan is refused as stale, naming `part`; nothing changes.
async fn refused_as_stale(s: &Saved, part: &str) {
    let tenant = without_times(&s.env.tenant().await);
    let state = s.env.state_file();
    s.env.clear_requests().await;
    let run = s.apply(&[]).await.must_exit(1);
    assert!(run.stderr.contains("the saved plan is stale"), "{}", run.text());
    for p in ["the specs", "the state", "the tenant"] {
        assert_eq!(run.stderr.contains(p), p == part, "names only {part}: {}", run.stderr);
    }
    assert_eq!(writes(&s.env.requests().await), Vec::<String>::new());
    assert_eq!(without_times(&s.env.tenant().await), tenant, "the tenant is untouched");
    assert_eq!(s.env.state_file(), state, "the state is untouched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_plan_is_applied() {
    let s = saved(&[]).await;
    s.env.clear_requests().await;
    let run = s.apply(&[]).await.must_exit(0);
    assert!(run.stdout.contains("Apply complete: 1 done"), "{}", run.stdout);
    assert_eq!(writes(&s.env.requests().await), ["POST /api/v2/policy"]);
    s.env.assert_converged().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_refreshed_plan_is_applied() {
    let s = saved(&["--refresh"]).await;
    let run = s.apply(&[]).await;
    assert_eq!(
        run.code,
        0,
        "a plan saved with --refresh is applied as it was made: {}",
        run.text()
    );
    s.env.assert_converged().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_plan_is_stale_once_the_specs_change() {
    let s = saved(&[]).await;
    edit(&s.env.specs, "purposes/analytics.yaml", "Aggregate analysis.", "Aggregates only.");
    refused_as_stale(&s, "the specs").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_plan_is_stale_once_another_apply_changed_the_state() {
    // A policy made by hand before the plan; after the plan, another checkout that has it in
    // its specs (and not yet the reviewed edit) adopts it: the state moves, the tenant does not.
    let env = Env::start().await;
    env.by_hand(Method::POST, "/api/v2/policy", Some(&hand_policy("extra"))).await;
    let s = saved_on(env, &[]).await;
    let extra = serde_json::to_string_pretty(&hand_policy("extra")).unwrap();
    let other = SpecDir::new();
    write_shop(&other);
    other.write("policies/extra.json", &extra);
    let root = other.path().display().to_string();
    s.env.clear_requests().await;
    let run = s.env.run(&["apply", &root, "--auto-approve"]).await.must_exit(0);
    assert!(run.stdout.contains("adopted"), "{}", run.stdout);
    assert_eq!(writes(&s.env.requests().await), Vec::<String>::new(), "only the state moved");
    refused_as_stale(&s, "the state").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_plan_is_stale_once_the_tenant_changes() {
    let s = saved(&[]).await;
    s.env.by_hand(Method::POST, "/api/v2/policy", Some(&hand_policy("made-in-the-ui"))).await;
    refused_as_stale(&s, "the tenant").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_plan_is_refused_on_another_tenant() {
    let s = saved(&[]).await;
    // Another tenant with the same objects (its own state directory, the same specs).
    let mut other = Env::start().await;
    other.specs = crate::support::SpecDir::new();
    write_shop(&other.specs);
    other.apply_in_process().await;
    let file = s.file();
    other.clear_requests().await;
    let run = other.run(&["apply", &file, "--auto-approve"]).await.must_exit(1);
    assert!(run.stderr.contains(&format!("was made for {}", s.env.url())), "{}", run.stderr);
    assert!(run.stderr.contains(&format!("not {}", other.url())), "{}", run.stderr);
    assert_eq!(writes(&other.requests().await), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_saved_inside_the_spec_root_is_not_read_as_a_spec() {
    let env = Env::shop().await;
    // `plan --out plan.json` from the spec root, as one would with Terraform.
    let file = env.specs.path().join("plan.json").display().to_string();
    env.plan(&["--out", &file]).await.must_exit(0);
    let run = env.run(&["apply", &file, "--auto-approve"]).await.must_exit(0);
    assert!(run.stdout.contains("Apply complete: 5 done"), "{}", run.text());
    env.assert_converged().await;
}

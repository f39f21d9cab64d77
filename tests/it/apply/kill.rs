//! A process killed in the middle of an apply: the state journal records every object done, so
//! the next run neither loses nor repeats work, and converges.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::support::tenant::{Env, actions, copy_example, writes};

const CANARY: &str = "canary-kill-4f1d9b";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_killed_midway_resumes_from_its_journal() {
    let mut env = Env::start().await;
    env.env.push(("SNOWFLAKE_PASSWORD".into(), CANARY.into()));
    env.set_catalog(&super::catalog(&[])).await;
    copy_example(&env.specs);
    env.set_latency(200).await;

    let mut child = env.spawn_apply(Stdio::null);
    // Kill it once a few objects are written (the license, then purposes...), while the rest
    // are still to come: every request takes 200 ms.
    env.wait_for_requests("the apply starts writing", |r| writes(r).len() >= 3).await;
    assert!(child.try_wait().unwrap().is_none(), "the apply is still running when killed");
    child.kill().unwrap();
    child.wait().unwrap();
    env.set_latency(0).await;

    // What the killed run recorded: a state file and a journal of the objects it finished.
    let journal_path = format!("{}.journal", env.state_path().display());
    let journal = std::fs::read_to_string(&journal_path).expect("the killed run left a journal");
    assert!(!journal.contains(CANARY), "no secret in the journal");
    let state_text = std::fs::read_to_string(env.state_path()).unwrap();
    assert!(!state_text.contains(CANARY), "no secret in the state");
    let lines: Vec<Value> = journal.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let recorded: BTreeSet<(String, String)> = lines
        .iter()
        .filter(|l| l["op"] == "upsert")
        .map(|l| {
            (
                l["entry"]["kind"].as_str().unwrap().into(),
                l["entry"]["key"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(!recorded.is_empty(), "at least one object was journaled: {journal}");
    assert!(recorded.len() < 13, "the run was cut short: {journal}");
    assert!(env.managed().is_empty(), "they are in the journal only, not yet in the state file");

    // The next plan resumes: what was recorded is done; the rest is created or adopted.
    let plan = env.plan_json(&[]).await;
    let pending: Vec<(String, String, String)> = actions(&plan);
    for (kind, key, action) in &pending {
        assert!(
            !recorded.contains(&(kind.clone(), key.clone())),
            "{kind} {key} ({action}) was done"
        );
        assert!(matches!(action.as_str(), "create" | "adopt"), "{kind} {key}: {action}");
    }
    assert_eq!(pending.len() + recorded.len(), 13, "{pending:?}");

    env.clear_requests().await;
    let run = env.apply(&[]).await.must_exit(0);
    assert!(run.stdout.contains("Apply complete"), "{}", run.stdout);
    // Writes that carried an object out (not a refusal, not a project's acknowledgement).
    let log = env.requests().await;
    let posted: Vec<&Value> = log
        .iter()
        .filter(|r| r["method"] != "GET" && r["query"] != "dryRun=true")
        .filter(|r| r["status"] == 200 && r["path"] != "/bim/apikey/authenticate")
        .filter(|r| !r["path"].as_str().unwrap_or_default().ends_with("/acknowledge"))
        .collect();
    assert!(posted.len() <= pending.len(), "only what was not done is posted: {posted:#?}");
    assert!(!std::path::Path::new(&journal_path).exists(), "the journal was folded into the state");
    assert_eq!(env.managed().len(), 13);

    let view = env.view().await;
    assert!(view.duplicates.is_empty(), "{:?}", view.duplicates);
    assert_eq!((view.policies.len(), view.purposes.len(), view.projects.len()), (6, 5, 2));
    assert_eq!(view.active("snowflake-sales"), ["sales customers", "sales orders"]);
    assert_eq!(view.active("databricks-analytics"), ["analytics events", "analytics sessions"]);
    assert_eq!(view.licenses, 1);
    env.assert_converged().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_apply_is_refused_while_one_runs() {
    let env = Env::shop().await;
    env.set_latency(200).await;
    let mut first = env.spawn_apply(Stdio::null);
    // The lock is taken before the tenant is read: once a request arrives, it is held.
    env.wait_for_requests("the first apply reads the tenant", |r| !r.is_empty()).await;
    let second = env.apply(&[]).await;
    let still_running = first.try_wait().unwrap().is_none();
    assert_eq!(second.code, 1, "{}", second.text());
    assert!(second.stderr.contains("is applying to"), "{}", second.stderr);
    assert!(second.stderr.contains(&format!("pid {}", first.id())), "{}", second.stderr);
    assert!(still_running, "the refusal came while the first apply ran");
    let status = tokio::task::spawn_blocking(move || first.wait().unwrap()).await.unwrap();
    assert!(status.success());
    env.set_latency(0).await;
    env.assert_converged().await;
    assert_eq!(env.managed().len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_apply_finishes_what_is_in_flight_and_resumes() {
    let env = Env::start().await;
    env.set_catalog(&super::catalog(&[])).await;
    copy_example(&env.specs);
    env.set_latency(200).await;
    let child = env.spawn_apply(Stdio::piped);
    env.wait_for_requests("the apply starts writing", |r| writes(r).len() >= 3).await;
    let interrupted = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(interrupted.success());
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()),
    )
    .await
    .expect("the apply stops promptly")
    .unwrap();
    let text = crate::support::output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("Interrupted: finishing the objects in flight"), "{text}");
    assert!(text.contains("skipped: the run was cancelled"), "{text}");
    assert!(text.contains("Apply incomplete"), "{text}");
    env.set_latency(0).await;

    // Everything it did is in the state file (the journal was folded in on the way out).
    let journal = format!("{}.journal", env.state_path().display());
    assert!(!std::path::Path::new(&journal).exists(), "the journal was compacted");
    let done = env.managed();
    assert!(!done.is_empty() && done.len() < 13, "{done:?}");
    let plan = env.plan_json(&[]).await;
    for (kind, key, action) in actions(&plan) {
        assert!(!done.contains(&(kind.clone(), key.clone())), "{kind} {key} ({action}) was done");
    }
    env.apply(&[]).await.must_exit(0);
    assert_eq!(env.managed().len(), 13);
    assert!(env.view().await.duplicates.is_empty());
    env.assert_converged().await;
}

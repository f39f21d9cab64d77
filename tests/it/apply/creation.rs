//! Data sources created in the background (`wait` 0, Immuta's default): an apply posts the
//! projects that name them only once they exist, within `--creation-timeout`, saying so; a post
//! with `wait` N gets an HTTP timeout longer than N, none below zero (but Ctrl-C still ends it);
//! and a write that outlasted its timeout is checked with a dry run, never re-sent blindly.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::tenant::{Env, SHOP_DATA, edit, writes};

/// The writes of `log` to `path` that are not dry runs.
fn real_posts(log: &[Value], path: &str) -> usize {
    writes(log).iter().filter(|w| *w == &format!("POST {path}")).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projects_wait_for_the_data_sources_they_name_and_the_wait_is_shown() {
    let env = Env::shop().await;
    env.set_creation_delay(1_500).await;
    let started = Instant::now();
    let run = env.apply(&[]).await.must_exit(0);
    assert!(started.elapsed() >= Duration::from_millis(1_400), "it waited");
    run.stderr_has("waiting up to 10m for Immuta to create the data sources the projects name:");
    run.stderr_has("`public customers`, `public orders`");
    run.stderr_has("the data sources exist (after ");
    assert!(run.stdout.contains("Apply complete"), "{}", run.stdout);
    // The project was posted only after its data sources were looked up and found.
    let log = env.requests().await;
    let lookups: Vec<usize> = (0..log.len())
        .filter(|&i| {
            log[i]["path"] == "/dataSource"
                && log[i]["query"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("searchText=public+customers")
        })
        .collect();
    assert!(lookups.len() >= 2, "looked up until found");
    let first_post = log
        .iter()
        .position(|r| r["path"] == "/api/v2/project" && r["query"] == "dryRun=false")
        .expect("the project is posted");
    assert!(first_post > *lookups.last().unwrap(), "posted after the data sources were found");
    assert!(real_posts(&log, "/api/v2/project") >= 1, "{:#?}", writes(&log));
    env.assert_converged().await;
    env.clear_requests().await;
    env.apply(&[]).await.must_exit(0);
    assert_eq!(
        writes(&env.requests().await),
        Vec::<String>::new(),
        "a second apply writes nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_whose_data_sources_take_too_long_is_skipped_then_applied_next_time() {
    let env = Env::shop().await;
    env.set_creation_delay(2_500).await;
    let run = env.apply(&["--creation-timeout", "400ms"]).await.must_exit(1);
    assert!(
        run.stdout.contains("project \"insights\" skipped: names data source(s) `public customers`, `public orders` that this apply wrote and that do not exist yet: Immuta had not created them after 400ms"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("raise --creation-timeout"), "{}", run.stdout);
    assert!(env.view().await.projects.is_empty(), "not posted");
    // Right away, the plan knows the data sources are still being created: not deleted
    // outside, and the project is not refused.
    let plan = env.plan_json(&[]).await;
    let connection = crate::support::tenant::change(&plan, "datasource", "shop");
    assert_eq!(connection["action"], "no_change", "{connection:#}");
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    env.apply(&[]).await.must_exit(0);
    env.assert_converged().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_with_wait_gets_a_longer_timeout_and_is_sent_once() {
    let env = Env::shop().await;
    env.specs.write("data/shop.yaml", &format!("{SHOP_DATA}gitops:\n  wait: 3\n"));
    env.set_creation_delay(1_200).await;
    // The post takes 1.2 s, the timeout is 500 ms: the post's own is 3 s longer.
    let run = env.apply(&["--timeout", "500ms"]).await.must_exit(0);
    assert!(!run.stderr.contains("waiting up to"), "Immuta waited itself: {}", run.stderr);
    let log = env.requests().await;
    let data: Vec<&Value> =
        log.iter().filter(|r| r["path"] == "/api/v2/data" && r["query"] != "dryRun=true").collect();
    assert_eq!(data.len(), 1, "{data:#?}");
    assert_eq!(data[0]["query"], "dryRun=false&wait=3");
    env.assert_converged().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_took_effect_after_its_timeout_is_not_sent_again() {
    let env = Env::shop_applied().await;
    edit(&env.specs, "data/shop.yaml", "[Dept.Sales]", "[Dept.Sales, Extra]");
    // The first real post is carried out, but its answer comes after the client gave up.
    env.fault(json!({"method": "POST", "pathPrefix": "/api/v2/data", "delayMs": 1, "count": 1}))
        .await;
    env.fault(json!({"method": "POST", "pathPrefix": "/api/v2/data", "afterMs": 1500})).await;
    env.clear_requests().await;
    let run = env.apply(&["--timeout", "500ms"]).await.must_exit(0);
    assert!(run.stdout.contains("Apply complete"), "{}", run.stdout);
    let log = env.requests().await;
    let data: Vec<String> = log
        .iter()
        .filter(|r| r["path"] == "/api/v2/data")
        .map(|r| r["query"].as_str().unwrap_or_default().to_owned())
        .collect();
    // Its dry run, the post (answered too late), the dry run that finds it done: no second post.
    assert_eq!(data, ["dryRun=true", "dryRun=false", "dryRun=true"], "{log:#?}");
    env.assert_converged().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_waiting_forever_has_no_timeout_but_ctrl_c_ends_it() {
    let env = Env::shop().await;
    env.specs.write("data/shop.yaml", &format!("{SHOP_DATA}gitops:\n  wait: -1\n"));
    env.set_creation_delay(60_000).await;
    let specs = env.specs.path().display().to_string();
    let child = env
        .command(&["apply", &specs, "--auto-approve", "--timeout", "1s"], &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    // The connection is stored when the post arrives; its answer is held while Immuta creates.
    tokio::time::timeout(Duration::from_secs(30), async {
        while !env.view().await.connections.contains("shop") {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the data post arrives");
    // Past the 1 s timeout of any other request: this post is still open.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let interrupted =
        std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    assert!(interrupted.expect("kill runs").success());
    let started = Instant::now();
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()),
    )
    .await
    .expect("Ctrl-C ends a post that waits forever")
    .unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    let text = crate::support::output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("interrupted while Immuta was creating the data sources (wait=-1)"),
        "{text}"
    );
    assert!(!env.managed().contains(&("datasource".into(), "shop".into())), "not recorded");
}

//! Project acknowledgement, as Terraform does it: a project post refused with "You must first
//! acknowledge" is answered by finding the project, acknowledging its purposes as its owner and
//! posting again, on create and on update; a dry run asking for it is no refusal.

use serde_json::Value;

use crate::support::tenant::{Env, edit};

/// `METHOD PATH?QUERY -> STATUS` of every request to a project route (listings of all projects
/// and dry runs left out; paging parameters dropped).
fn project_calls(log: &[Value]) -> Vec<String> {
    let unpaged = |q: &str| -> String {
        let kept: Vec<&str> = q
            .split('&')
            .filter(|kv| !kv.starts_with("size=") && !kv.starts_with("offset="))
            .collect();
        kept.join("&")
    };
    log.iter()
        .filter(|r| {
            r["path"].as_str().is_some_and(|p| p.starts_with("/project") || p == "/api/v2/project")
        })
        .filter(|r| r["query"] != "dryRun=true")
        .filter(|r| {
            !unpaged(r["query"].as_str().unwrap_or_default()).is_empty() || r["query"].is_null()
        })
        .map(|r| {
            let path = r["path"].as_str().unwrap_or_default();
            let query = r["query"].as_str().map(|q| format!("?{}", unpaged(q))).unwrap_or_default();
            format!("{} {path}{query} -> {}", r["method"].as_str().unwrap_or_default(), r["status"])
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_acknowledgement_runs_on_create_and_on_update() {
    let env = Env::shop().await;
    let run = env.apply(&[]).await.must_exit(0);
    assert!(run.stdout.contains("Apply complete"), "{}", run.stdout);
    let calls = project_calls(&env.requests().await);
    let tenant = env.tenant().await;
    let project = tenant["projects"]
        .as_object()
        .and_then(|m| m.values().find(|p| p["projectKey"] == "insights"))
        .expect("the project");
    let (id, sid) = (project["id"].clone(), project["subscriptionId"].clone());
    assert_eq!(
        calls,
        [
            "POST /api/v2/project?dryRun=false -> 400".to_owned(),
            "GET /project?searchText=Insights&nameOnly=true -> 200".to_owned(),
            format!("GET /project/{id} -> 200"),
            format!("POST /project/{id}/members/{sid}/acknowledge -> 200"),
            "POST /api/v2/project?dryRun=false -> 200".to_owned(),
            format!("GET /project/{id} -> 200"),
        ],
        "create: refused, found by name, acknowledged, posted again; then nothing left to acknowledge"
    );
    env.assert_converged().await;

    // An update naming one more purpose: the same dance, with the project's own id.
    env.clear_requests().await;
    edit(
        &env.specs,
        "projects/insights.yaml",
        "purposes: [Analytics, Analytics.Marketing]",
        "purposes: [Analytics, Analytics.Marketing, Analytics.Product]",
    );
    env.apply(&[]).await.must_exit(0);
    let calls = project_calls(&env.requests().await);
    assert_eq!(calls[0], "POST /api/v2/project?dryRun=false -> 400", "{calls:#?}");
    let acknowledged = format!("POST /project/{id}/members/{sid}/acknowledge -> 200");
    assert!(calls.contains(&acknowledged), "{calls:#?}");
    assert_eq!(calls.iter().filter(|c| c.ends_with("-> 400")).count(), 1, "{calls:#?}");
    env.assert_converged().await;

    // An update that names no new purpose is posted once, and acknowledges nothing.
    env.clear_requests().await;
    edit(&env.specs, "projects/insights.yaml", "name: Insights", "name: Insights\ndescription: x");
    env.apply(&[]).await.must_exit(0);
    assert_eq!(
        project_calls(&env.requests().await),
        [
            "POST /api/v2/project?dryRun=false -> 200".to_owned(),
            format!("GET /project/{id} -> 200")
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_asking_for_the_acknowledgement_does_not_refuse_the_plan() {
    let env = Env::shop().await;
    env.specs.remove("projects/insights.yaml");
    env.apply_in_process().await;
    env.specs.write("projects/insights.yaml", crate::support::tenant::SHOP_PROJECT);
    env.set_variants(&["acknowledgement=required-in-dry-runs"]).await;
    env.clear_requests().await;
    let plan = env.plan_json(&[]).await;
    assert_eq!(plan["summary"]["errors"], 0, "{plan:#}");
    let dry = env.requests().await;
    assert!(
        dry.iter().any(|r| r["path"] == "/api/v2/project" && r["status"] == 400),
        "the dry run asked for the acknowledgement"
    );
    crate::support::tenant::assert_actions(&plan, &[("project", "insights", "create")]);
    env.apply(&[]).await.must_exit(0);
    env.assert_converged().await;
}

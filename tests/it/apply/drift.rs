//! Drift: objects deleted or edited outside immuta-gitops, and what a plan reads to find them.

use serde_json::{Value, json};

use crate::support::tenant::{
    Env, assert_actions, change, data_source_records, dry_runs, edit, without_times, writes,
};

/// The tenant without timestamps and the tag registry (which remembers every tag ever used).
fn comparable(state: &Value) -> Value {
    let mut v = without_times(state);
    v["tags"] = Value::Null;
    v["ids"]["tag"] = Value::Null;
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_deleted_out_of_band_are_created_again() {
    let env = Env::shop_applied().await;
    let original = env.view().await;
    env.delete_out_of_band("policy", "mask-email").await;
    env.delete_out_of_band("data", "shop").await;
    env.delete_out_of_band("purpose", "Analytics").await;

    let plan = env.plan_json(&[]).await;
    let created = [("datasource", "shop"), ("policy", "mask-email"), ("purpose", "Analytics")];
    assert_actions(&plan, &created.map(|(kind, key)| (kind, key, "create")));
    let reason =
        change(&plan, "policy", "mask-email")["reason"].as_str().unwrap_or_default().to_owned();
    assert!(reason.contains("deleted outside immuta-gitops"), "{reason}");

    env.apply(&[]).await.must_exit(0);
    let view = env.view().await;
    assert_eq!(view.policies, original.policies);
    assert_eq!(view.purposes, original.purposes, "subpurposes too");
    assert_eq!(view.active("shop"), original.active("shop"));
    env.assert_converged().await;

    // The state follows the new ids: deleting the re-created policy hits the right one.
    let tenant = env.tenant().await;
    let policies = tenant["policies"].as_object().unwrap();
    let live_id = &policies.values().find(|p| p["policyKey"] == "mask-email").unwrap()["id"];
    let state = env.state_file();
    let entry =
        state["objects"].as_array().unwrap().iter().find(|e| e["key"] == "mask-email").unwrap();
    assert_eq!(&entry["id"], live_id);
    let only_second = crate::support::tenant::SHOP_POLICIES.split("---\n").nth(1).unwrap();
    env.specs.write("policies/policies.yaml", only_second);
    env.clear_requests().await;
    env.apply(&["--allow-destroy"]).await.must_exit(0);
    assert_eq!(writes(&env.requests().await), [format!("DELETE /policy/global/{live_id}")]);
    assert!(!env.view().await.policies.contains("mask-email"));
    env.assert_converged().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_object_is_found_by_default_and_restored() {
    let env = Env::shop_applied().await;
    let original = comparable(&env.tenant().await);
    let orders_id = data_source_records(&env.tenant().await)["public orders"]["id"].to_string();

    env.tamper("policy", "mask-email", &json!({"name": "Renamed in the UI"})).await;
    env.tamper("purpose", "Analytics", &json!({"description": "edited in the UI"})).await;
    env.tamper("project", "insights", &json!({"description": "edited in the UI"})).await;
    env.tamper("datasource", &orders_id, &json!({"tableTags": ["Added.In.UI"]})).await;

    // With --refresh=false, unchanged specs are not re-checked: the edits are invisible, and
    // the plan says so instead of claiming the tenant matches.
    let run = env.plan(&["--refresh=false", "--detailed-exitcode"]).await.must_exit(0);
    assert!(run.stdout.contains("changes made on the tenant by hand were not checked"));
    assert!(!run.stdout.contains("The tenant matches the specs"), "{}", run.stdout);

    // By default (Terraform's refresh) every object's dry run finds them.
    let run = env.plan(&["--detailed-exitcode"]).await.must_exit(2);
    assert!(run.stdout.contains("changed outside immuta-gitops"), "{}", run.stdout);
    let plan = env.plan_json(&[]).await;
    assert_eq!(plan["refreshed"], true);
    // Per object: what the tenant reported, and the field when a listing shows it.
    let reason =
        |kind, key| change(&plan, kind, key)["reason"].as_str().unwrap_or_default().to_owned();
    let policy = reason("policy", "mask-email");
    assert!(
        policy.contains("`name` differs: the tenant lists `Renamed in the UI`, the spec says"),
        "{policy}"
    );
    let shop = reason("datasource", "shop");
    assert!(shop.contains("would update data sources `public orders`"), "{shop}");
    let project = reason("project", "insights");
    assert!(
        project.contains("same `name`") && project.contains("compare it on the tenant"),
        "{project}"
    );
    let edited = [
        ("datasource", "shop"),
        ("policy", "mask-email"),
        ("project", "insights"),
        ("purpose", "Analytics"),
    ];
    assert_actions(&plan, &edited.map(|(kind, key)| (kind, key, "update")));
    assert_eq!(change(&plan, "datasource", "shop")["server"]["updating"], json!(["public orders"]));

    env.clear_requests().await;
    env.apply(&[]).await.must_exit(0);
    let mut posted = writes(&env.requests().await);
    posted.sort();
    assert_eq!(
        posted,
        [
            "POST /api/v2/data",
            "POST /api/v2/policy",
            "POST /api/v2/project",
            "POST /api/v2/purpose"
        ]
    );
    assert_eq!(comparable(&env.tenant().await), original, "every edit is undone, ids kept");
    let run = env.plan(&["--detailed-exitcode"]).await;
    assert_eq!(run.code, 0, "{}", run.text());
    assert!(run.stdout.contains("No changes. The tenant matches the specs."), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_refresh_only_changed_objects_are_dry_run() {
    let env = Env::shop_applied().await;

    env.clear_requests().await;
    env.plan(&["--refresh=false"]).await.must_exit(0);
    // No dry runs at all: managed connections are found in the `/dataSource` listing by the
    // data-source names the state recorded (a per-key existence probe is only needed for a
    // connection that produced no data sources).
    assert!(dry_runs(&env.requests().await).is_empty(), "{:?}", dry_runs(&env.requests().await));

    edit(&env.specs, "policies/policies.yaml", "Employees subscribe", "Staff subscribe");
    env.clear_requests().await;
    env.plan(&["-refresh=false"]).await.must_exit(0);
    let mut asked = dry_runs(&env.requests().await);
    asked.sort();
    assert_eq!(asked, ["POST /api/v2/policy"]);

    // The default refreshes: every object's dry run.
    env.clear_requests().await;
    env.plan(&[]).await.must_exit(0);
    let mut asked = dry_runs(&env.requests().await);
    asked.sort();
    assert_eq!(
        asked,
        [
            "POST /api/v2/data",
            "POST /api/v2/policy",
            "POST /api/v2/policy",
            "POST /api/v2/project",
            "POST /api/v2/purpose",
        ]
    );
}

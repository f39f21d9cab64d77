//! Repository settings (`immuta-gitops.yaml` at the spec root) change what `apply` refuses:
//! `allowDestroy: true` stands for `--allow-destroy`, and `maxDeletePercent` moves the
//! mass-deletion threshold both ways; a raise counts once the operator accepted it.

use crate::support::tenant::{Env, SHOP_POLICIES, writes};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_destroy_in_the_repository_settings_lets_apply_delete() {
    let env = Env::shop_applied().await;
    let first = SHOP_POLICIES.split("---\n").next().expect("two documents");
    env.specs.write("policies/policies.yaml", first);

    // An explicit `false` is the default: refused.
    env.specs.write("immuta-gitops.yaml", "allowDestroy: false\n");
    let refusal =
        "refusing to apply: the plan destroys data or objects: policy \"subscribe-employees\"";
    let run = env.apply_refused(&[], refusal).await;
    run.stderr_has("`allowDestroy: true` in immuta-gitops.yaml");

    // The setting alone is a raise the operator has not accepted: still refused, and the
    // plan says why.
    env.specs.write("immuta-gitops.yaml", "allowDestroy: true\n");
    env.apply_refused(&[], refusal).await;
    assert!(env.plan(&[]).await.stdout.contains("[settings-raised]"));
    // Accepted once with --allow-destroy (here by an apply that changes nothing else)...
    env.specs.write("policies/policies.yaml", SHOP_POLICIES);
    env.apply(&["--allow-destroy"]).await.must_exit(0);
    // ...the setting, and no flag: the same apply deletes the policy.
    env.specs.write("policies/policies.yaml", first);
    env.clear_requests().await;
    env.apply(&[]).await.must_exit(0);
    let deletes: Vec<String> =
        writes(&env.requests().await).into_iter().filter(|w| w.starts_with("DELETE")).collect();
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    assert!(deletes[0].starts_with("DELETE /policy/global/"), "{deletes:?}");
    let policies: Vec<String> = env.view().await.policies.into_iter().collect();
    assert_eq!(policies, ["mask-email"]);
    assert!(!env.managed().contains(&("policy".into(), "subscribe-employees".into())));
    env.assert_converged().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_delete_percent_in_the_repository_settings_moves_the_threshold() {
    let env = Env::with_policies(8).await;

    // 2 of 8 (25%) passes the default threshold; at 10% it is refused, even with --allow-destroy.
    env.specs.write("immuta-gitops.yaml", "maxDeletePercent: 10\n");
    env.specs.remove("policies/p1.yaml").remove("policies/p2.yaml");
    let refusal = "refusing to apply: the plan deletes or disables 2 of 8 managed objects and data sources, more than 10%";
    env.apply_refused(&["--allow-destroy"], refusal).await.stderr_has("maxDeletePercent");

    // 3 of 8 (37.5%) is refused by the default threshold; at 50% it goes through.
    env.specs.remove("policies/p3.yaml").remove("immuta-gitops.yaml");
    let refusal = "refusing to apply: the plan deletes or disables 3 of 8 managed objects and data sources, more than 25%";
    env.apply_refused(&["--allow-destroy"], refusal).await;
    env.specs.write("immuta-gitops.yaml", "maxDeletePercent: 50\n");
    env.apply(&["--allow-destroy"]).await.must_exit(0);
    let policies: Vec<String> = env.view().await.policies.into_iter().collect();
    assert_eq!(policies, ["p4", "p5", "p6", "p7", "p8"]);
    env.assert_converged().await;
}

//! Fault injection: every kind of failure the emulator can inject, crossed with every operation
//! (plan, apply create, apply update, apply delete). Each case checks the exit code and message,
//! that retryable failures are retried and others are not, that nothing is deleted that the plan
//! did not show, and that after the fault clears a re-run converges with nothing duplicated or
//! lost. Then: every V1 listing failing (plan and apply fail closed, writing nothing), and the
//! token exchange failing (retried like any request, or reported as what it is).

use std::collections::BTreeSet;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use immuta_emulator::{ADMIN_KEY, EmulatorConfig};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::emulator_config;
use crate::support::tenant::{Env, SHOP_DATA, SHOP_POLICIES, edit, writes};

/// The fault fixture: one purpose, one connection (three tables), two policies.
fn write_specs(env: &Env) {
    env.specs
        .write("purposes/analytics.yaml", "name: Analytics\ndescription: Aggregates.\n")
        .write("data/shop.yaml", SHOP_DATA)
        .write("policies/policies.yaml", SHOP_POLICIES);
}

/// What the tenant must hold once the operation has been carried out.
fn expected_policies(op: Op) -> BTreeSet<String> {
    let mut keys: BTreeSet<String> = ["mask-email", "subscribe-employees"].map(String::from).into();
    if op == Op::Delete {
        keys.remove("subscribe-employees");
    }
    keys
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// `plan` of an edited policy (the fault hits its dry run).
    Plan,
    /// `apply` to an empty tenant (the fault hits the write of a policy).
    Create,
    /// `apply` of an edited connection (the fault hits the write).
    Update,
    /// `apply --allow-destroy` of a removed policy (the fault hits the delete).
    Delete,
}

impl Op {
    const ALL: [Op; 4] = [Op::Plan, Op::Create, Op::Update, Op::Delete];

    /// How many of the targeted requests are in flight at once (two policies are created).
    fn parallel_targets(self) -> u64 {
        if self == Op::Create { 2 } else { 1 }
    }

    /// How many requests the fault's target sees when nothing fails (dry runs and writes).
    fn target_requests(self) -> usize {
        match self {
            Op::Plan | Op::Delete => 1,
            Op::Create => 4,
            Op::Update => 2,
        }
    }

    /// The requests the fault targets: method, path prefix, and how many matching requests
    /// pass before it (the dry runs that precede a write).
    fn target(self) -> (&'static str, &'static str, u64) {
        match self {
            Op::Plan => ("POST", "/api/v2/policy", 0),
            Op::Create => ("POST", "/api/v2/policy", 2),
            Op::Update => ("POST", "/api/v2/data", 1),
            Op::Delete => ("DELETE", "/policy/global/", 0),
        }
    }

    /// Prepares the tenant and the specs for the operation.
    async fn prepare(self, env: &Env) {
        write_specs(env);
        if self == Op::Create {
            return;
        }
        env.apply_in_process().await;
        match self {
            Op::Plan => edit(&env.specs, "policies/policies.yaml", "Hash e-mail", "Hash e-mails"),
            Op::Update => edit(&env.specs, "data/shop.yaml", "[Dept.Sales]", "[Dept.Sales, Extra]"),
            Op::Delete => {
                env.specs.write(
                    "policies/policies.yaml",
                    SHOP_POLICIES.split("---\n").next().expect("two documents"),
                );
            }
            Op::Create => {}
        }
    }

    /// The command of the operation (`extra` before the tenant flags).
    fn args(self, specs: &str) -> Vec<String> {
        let mut args: Vec<String> = match self {
            Op::Plan => vec!["plan".into(), specs.into(), "--detailed-exitcode".into()],
            _ => vec!["apply".into(), specs.into(), "--auto-approve".into()],
        };
        if self == Op::Delete {
            args.push("--allow-destroy".into());
        }
        // Only the changed object's requests, which the matrix counts exactly (a refresh would
        // dry-run the unchanged ones too).
        args.push("--refresh=false".into());
        args
    }

    /// The exit code of a run that succeeds.
    fn success_code(self) -> i32 {
        if self == Op::Plan { 2 } else { 0 }
    }
}

/// What a fault must lead to.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Retried; the operation succeeds.
    Retried,
    /// Not retried; the operation fails with exit 1 and a message holding this status.
    Fails(u16),
    /// Retried until the retries (5) are used up; then as `Fails`.
    GivesUp(u16),
}

struct Fault {
    name: &'static str,
    /// The rule (without method/path/count).
    rule: Value,
    count: u64,
    expect: Expect,
    /// Extra flags (`--timeout`).
    flags: &'static [&'static str],
}

fn faults() -> Vec<Fault> {
    vec![
        Fault {
            name: "429 with Retry-After",
            rule: json!({"status": 429, "retryAfter": "1"}),
            count: 1,
            expect: Expect::Retried,
            flags: &[],
        },
        Fault {
            name: "503 burst",
            rule: json!({"status": 503}),
            count: 3,
            expect: Expect::Retried,
            flags: &[],
        },
        Fault {
            name: "delay beyond --timeout",
            rule: json!({"delayMs": 1500}),
            count: 1,
            expect: Expect::Retried,
            flags: &["--timeout", "500ms"],
        },
        Fault {
            name: "dropped connection",
            rule: json!({"drop": true}),
            count: 1,
            expect: Expect::Retried,
            flags: &[],
        },
        Fault {
            name: "401 (expired credential)",
            rule: json!({"status": 401}),
            count: 1,
            expect: Expect::Retried,
            flags: &[],
        },
        Fault {
            name: "503 beyond the retries",
            rule: json!({"status": 503}),
            count: 6,
            expect: Expect::GivesUp(503),
            flags: &[],
        },
        Fault {
            name: "500",
            rule: json!({"status": 500}),
            count: 1,
            expect: Expect::Fails(500),
            flags: &[],
        },
        Fault {
            name: "403",
            rule: json!({"status": 403}),
            count: 1,
            expect: Expect::Fails(403),
            flags: &[],
        },
        Fault {
            name: "400",
            rule: json!({"status": 400}),
            count: 1,
            expect: Expect::Fails(400),
            flags: &[],
        },
    ]
}

/// The requests of the log that the fault targets.
fn targeted(log: &[Value], method: &str, prefix: &str) -> Vec<Value> {
    log.iter()
        .filter(|r| {
            r["method"] == method && r["path"].as_str().unwrap_or_default().starts_with(prefix)
        })
        .cloned()
        .collect()
}

/// One cell of the matrix.
async fn case(op: Op, fault: &Fault) {
    let env = Env::start().await;
    op.prepare(&env).await;
    let managed_before = env.managed();
    let (method, prefix, skip) = op.target();
    if skip > 0 {
        // Let the dry runs through (a delay-only rule is served normally).
        env.fault(json!({"method": method, "pathPrefix": prefix, "delayMs": 1, "count": skip}))
            .await;
    }
    let mut rule = fault.rule.clone();
    rule["method"] = json!(method);
    rule["pathPrefix"] = json!(prefix);
    let count = match fault.expect {
        // Every attempt of every targeted request fails.
        Expect::GivesUp(_) => fault.count * op.parallel_targets(),
        _ => fault.count,
    };
    rule["count"] = json!(count);
    env.fault(rule).await;
    env.clear_requests().await;

    let specs = env.specs.path().display().to_string();
    let mut args = op.args(&specs);
    args.extend(fault.flags.iter().map(|f| (*f).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = env.run(&args).await;
    let log = env.requests().await;
    let hits = targeted(&log, method, prefix);
    let statuses: Vec<u64> = hits.iter().map(|r| r["status"].as_u64().unwrap_or(999)).collect();

    match fault.expect {
        Expect::Retried => {
            assert_eq!(run.code, op.success_code(), "{}", run.text());
            assert!(
                statuses.last().is_some_and(|s| (200..300).contains(s)),
                "the last attempt succeeded: {statuses:?}"
            );
            if fault.flags.is_empty() {
                let faulted = usize::try_from(fault.count).unwrap();
                // A write that got no answer may have taken effect: it is not sent again before
                // a dry run of the same payload says it did not (one more request).
                let verified = fault.rule["drop"] == true && matches!(op, Op::Create | Op::Update);
                let attempts = op.target_requests() + faulted + usize::from(verified);
                assert_eq!(statuses.len(), attempts, "retried {faulted} time(s): {statuses:?}");
                if verified {
                    let dropped =
                        hits.iter().position(|r| r["status"] == 0).expect("a dropped write");
                    // The same object's next requests: its dry run, then the write again.
                    let same: Vec<&Value> = hits[dropped + 1..]
                        .iter()
                        .filter(|r| r["body"] == hits[dropped]["body"])
                        .collect();
                    assert_eq!(same[0]["query"], "dryRun=true", "verified first: {hits:#?}");
                    assert_eq!(same[1]["query"], hits[dropped]["query"], "then re-sent: {hits:#?}");
                }
            }
            if fault.rule["status"] == 401 {
                assert!(
                    log.iter()
                        .any(|r| r["path"] == "/bim/apikey/authenticate" && r["status"] == 200),
                    "the client exchanged its key for a token"
                );
            }
        }
        Expect::Fails(status) | Expect::GivesUp(status) => {
            assert_eq!(run.code, 1, "{}", run.text());
            let text = run.text();
            assert!(text.contains(&format!("({status})")), "names the status {status}: {text}");
            let named = match (op, status) {
                (Op::Plan, 400) => "policy \"mask-email\"".to_owned(),
                _ => format!("{method} {prefix}"),
            };
            assert!(text.contains(&named), "names {named}: {text}");
            // The writes after the dry runs run concurrently: the log holds them in the order
            // they finished, so the failed one is among them, not necessarily first.
            let skip = usize::try_from(skip).unwrap();
            assert!(
                statuses[skip..].contains(&u64::from(status)),
                "{status} after the dry runs: {statuses:?}"
            );
            let failed = statuses.iter().filter(|s| **s == u64::from(status)).count();
            if matches!(fault.expect, Expect::GivesUp(_)) {
                assert_eq!(
                    u64::try_from(failed).unwrap(),
                    count,
                    "1 + 5 retries each: {statuses:?}"
                );
            } else {
                assert_eq!(failed, 1, "never retried: {statuses:?}");
                assert!(statuses.len() <= op.target_requests(), "never retried: {statuses:?}");
            }
            if op == Op::Plan {
                assert_eq!(writes(&log), Vec::<String>::new(), "a failed plan writes nothing");
            }
        }
    }
    // No deletion the plan did not show (a retried delete is the same deletion).
    let deletes: BTreeSet<String> =
        writes(&log).into_iter().filter(|w| w.starts_with("DELETE")).collect();
    let allowed = if op == Op::Delete { 1 } else { 0 };
    assert!(
        deletes.len() <= allowed && deletes.iter().all(|d| d.starts_with("DELETE /policy/global/")),
        "unexpected deletes: {deletes:?}"
    );
    if !matches!(fault.expect, Expect::Retried) && op != Op::Create {
        // Nothing that failed is recorded as done.
        let still = env.managed();
        match op {
            Op::Delete => assert!(still.contains(&("policy".into(), "subscribe-employees".into()))),
            _ => assert_eq!(still, managed_before),
        }
    }

    // The fault has cleared: a re-run converges, nothing duplicated or lost.
    assert!(env.armed_faults().await.is_empty(), "every fault was consumed");
    let mut rerun: Vec<&str> = vec!["apply", &specs, "--auto-approve"];
    if op == Op::Delete {
        rerun.push("--allow-destroy");
    }
    env.run(&rerun).await.must_exit(0);
    env.assert_converged().await;
    let view = env.view().await;
    assert!(view.duplicates.is_empty(), "{:?}", view.duplicates);
    assert_eq!(view.policies, expected_policies(op));
    assert_eq!(view.purposes, BTreeSet::from(["Analytics".to_owned()]));
    assert_eq!(view.active("shop"), ["public customers", "public orders", "public refunds"]);
    assert_eq!(view.data_sources["shop"].len(), 3, "no data source disabled or duplicated");
    let managed: BTreeSet<String> =
        env.managed().into_iter().map(|(k, key)| format!("{k} {key}")).collect();
    let mut expected: BTreeSet<String> =
        expected_policies(op).into_iter().map(|k| format!("policy {k}")).collect();
    expected.insert("purpose Analytics".into());
    expected.insert("datasource shop".into());
    assert_eq!(managed, expected, "the state matches the tenant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_on_every_operation() {
    let cells: Vec<(Op, Fault)> =
        Op::ALL.into_iter().flat_map(|op| faults().into_iter().map(move |f| (op, f))).collect();
    // Each cell has its own emulator and state.
    run_cells(cells.into_iter().map(|(op, fault)| {
        let name = format!("{op:?} × {}", fault.name);
        (name, async move { case(op, &fault).await })
    }))
    .await;
}

/// Runs named cells four at a time (they mostly wait on I/O), each within two minutes, and
/// fails with every failing cell's message.
pub(crate) async fn run_cells<F: std::future::Future<Output = ()>>(
    cells: impl Iterator<Item = (String, F)>,
) {
    let cells: Vec<(String, F)> = cells.collect();
    let total = cells.len();
    let failures: Vec<String> = futures::stream::iter(cells)
        .map(|(name, cell)| async move {
            let cell = AssertUnwindSafe(cell).catch_unwind();
            match tokio::time::timeout(Duration::from_secs(120), cell).await {
                Ok(Ok(())) => None,
                Ok(Err(panic)) => Some(format!("{name}: {}", panic_message(&*panic))),
                Err(_) => Some(format!("{name}: did not finish")),
            }
        })
        .buffer_unordered(4)
        .filter_map(|f| async move { f })
        .collect()
        .await;
    assert!(
        failures.is_empty(),
        "{} of {total} cases failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "panicked".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_expired_mid_run_are_exchanged_again() {
    let env = Env::start().await;
    write_specs(&env);
    env.apply_in_process().await;
    edit(&env.specs, "policies/policies.yaml", "Hash e-mail", "Hash e-mails");
    // The first request is refused, so the client trades its key for a token; the policy's dry
    // run is held long enough for the test to expire every token while it waits.
    env.fault(json!({"status": 401})).await;
    env.fault(json!({"method": "POST", "pathPrefix": "/api/v2/policy", "delayMs": 1500})).await;
    env.clear_requests().await;
    let (run, ()) = tokio::join!(env.apply(&[]), async {
        tokio::time::timeout(Duration::from_secs(30), async {
            while !env.armed_faults().await.is_empty() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the dry run is reached");
        env.control(Method::POST, "/expire-tokens", None).await;
    });
    let log = env.requests().await;
    run.must_exit(0);
    let exchanges = log.iter().filter(|r| r["path"] == "/bim/apikey/authenticate").count();
    // A token after the injected 401, then new ones for every request refused once it expired
    // (requests sent with the key itself before the first exchange never expire, so how many
    // are refused depends on timing; every refusal must be followed by an exchange).
    assert!(exchanges >= 1, "the key was exchanged for a token: {log:#?}");
    let refused = log.iter().filter(|r| r["status"] == 401).count();
    assert_eq!(exchanges, refused, "one exchange per refused request: {log:#?}");
    // The held request may be the dry run or the write: a refused write attempt changes nothing.
    let accepted: Vec<Value> =
        log.iter().filter(|r| r["status"].as_u64().is_some_and(|s| s < 400)).cloned().collect();
    assert_eq!(writes(&accepted), ["POST /api/v2/policy"]);
    env.assert_converged().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_without_governance_is_refused_with_the_permission_named() {
    let mut env = Env::start_with(EmulatorConfig {
        api_keys: vec![ADMIN_KEY.parse().unwrap(), "limited=CREATE_DATA_SOURCE".parse().unwrap()],
        ..emulator_config()
    })
    .await;
    write_specs(&env);
    env.apply_in_process().await;
    env.key = "limited".into();

    // Data sources need only CREATE_DATA_SOURCE: an edit of the connection goes through
    // (without a refresh, whose dry runs of the policies would need GOVERNANCE too).
    edit(&env.specs, "data/shop.yaml", "[Dept.Sales]", "[Dept.Sales, Extra]");
    env.apply(&["--refresh=false"]).await.must_exit(0);

    // A policy edit is refused at plan time: nothing is written.
    edit(&env.specs, "policies/policies.yaml", "Hash e-mail", "Hash e-mails");
    env.clear_requests().await;
    let run = env.apply(&["--refresh=false"]).await.must_exit(1);
    assert!(run.stderr.contains("POST /api/v2/policy was refused (403)"), "{}", run.stderr);
    assert!(run.stderr.contains("GOVERNANCE"), "{}", run.stderr);
    assert_eq!(writes(&env.requests().await), Vec::<String>::new());
    edit(&env.specs, "policies/policies.yaml", "Hash e-mails", "Hash e-mail");

    // A delete is refused at apply time: the policy stays, on the tenant and in the state.
    env.specs.write("policies/policies.yaml", SHOP_POLICIES.split("---\n").next().unwrap());
    let run = env.apply(&["--allow-destroy", "--refresh=false"]).await.must_exit(1);
    assert!(run.stdout.contains("was refused (403)"), "{}", run.text());
    assert!(run.stdout.contains("DELETE /policy/global/"), "{}", run.stdout);
    assert!(env.view().await.policies.contains("subscribe-employees"));
    assert!(env.managed().contains(&("policy".into(), "subscribe-employees".into())));

    // With the right key, the same command finishes the job.
    env.key = ADMIN_KEY.into();
    env.apply(&["--allow-destroy"]).await.must_exit(0);
    env.assert_converged().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_tenant_fails_closed() {
    let env = Env::start().await;
    write_specs(&env);
    // A port nothing listens on (the emulator's own port, after it is stopped).
    let url = env.url();
    let specs = env.specs.path().display().to_string();
    let state_dir = env.state_dir().display().to_string();
    let Env(immuta_testkit::tenant::Env { emu, specs: _tree, .. }) = env;
    emu.shutdown().await;
    let out = tokio::task::spawn_blocking(move || {
        crate::support::bin()
            .args(["plan", &specs, "--url", &url, "--state-dir", &state_dir, "--color", "never"])
            .env("IMMUTA_API_KEY", ADMIN_KEY)
            .envs(crate::support::tenant::BASE_ENV.iter().copied())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = crate::support::output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("cannot reach the Immuta tenant"), "{text}");
    assert!(text.contains("nothing was planned"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_object_skips_its_dependents_but_not_its_siblings() {
    let env = Env::start().await;
    write_specs(&env);
    env.specs.write(
        "projects/insights.yaml",
        crate::support::tenant::SHOP_PROJECT
            .replace("purposes: [Analytics, Analytics.Marketing]", "purposes: [Analytics]")
            .as_str(),
    );
    // The purpose's dry run passes; its write fails for good.
    env.fault(json!({"method": "POST", "pathPrefix": "/api/v2/purpose", "delayMs": 1})).await;
    env.fault(json!({"method": "POST", "pathPrefix": "/api/v2/purpose", "status": 500})).await;
    let run = env.apply(&[]).await.must_exit(1);
    assert!(
        run.stdout.contains("purpose \"Analytics\" FAILED: POST /api/v2/purpose failed (500)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(
            "project \"insights\" skipped: depends on purpose \"Analytics\", which failed"
        ),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("Apply incomplete: 3 done, 1 failed, 1 skipped"), "{}", run.stdout);
    let view = env.view().await;
    assert_eq!(view.policies.len(), 2, "unrelated policies were applied");
    assert_eq!(view.active("shop").len(), 3, "the unrelated connection was applied");
    assert!(view.purposes.is_empty() && view.projects.is_empty());

    env.apply(&[]).await.must_exit(0);
    env.assert_converged().await;
    let view = env.view().await;
    assert_eq!(view.projects, BTreeSet::from(["insights".to_owned()]));
}

/// The V1 listings a plan reads, as the request log names them.
const LISTINGS: [&str; 4] = ["/dataSource", "/project", "/policy/global", "/governance/purpose"];

/// One listing-failure cell: `GET listing` answers `status` `count` times to a `plan` or an
/// `apply` of an edited policy. Both must fail closed: exit 1, the listing named, no write.
async fn listing_case(listing: &str, status: u16, count: u64, apply: bool) {
    let env = Env::start().await;
    write_specs(&env);
    env.apply_in_process().await;
    edit(&env.specs, "policies/policies.yaml", "Hash e-mail", "Hash e-mails");
    let before = crate::support::tenant::without_times(&env.tenant().await);
    env.fault(json!({"method": "GET", "pathPrefix": listing, "status": status, "count": count}))
        .await;
    env.clear_requests().await;
    let run = if apply { env.apply(&[]).await } else { env.plan(&["--detailed-exitcode"]).await };
    let text = run.text();
    assert_eq!(run.code, 1, "{text}");
    assert!(
        text.contains("cannot read the tenant; nothing was planned"),
        "says nothing was planned: {text}"
    );
    assert!(
        text.contains(&format!("GET {listing} failed ({status})")),
        "names the listing: {text}"
    );
    let log = env.requests().await;
    assert_eq!(writes(&log), Vec::<String>::new(), "nothing written");
    let attempts = log.iter().filter(|r| r["method"] == "GET" && r["path"] == listing).count();
    assert_eq!(u64::try_from(attempts).unwrap(), count, "retried only when spurious: {log:#?}");
    assert!(env.armed_faults().await.is_empty(), "every fault was consumed");
    assert_eq!(crate::support::tenant::without_times(&env.tenant().await), before);
    // Once the listing answers again, the same command goes through.
    if apply {
        env.apply(&[]).await.must_exit(0);
        env.assert_converged().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_listing_fails_plan_and_apply_closed() {
    // 500 once (never retried), and 503 on the first attempt and all five retries.
    let cells: Vec<(&str, u16, u64, bool)> = LISTINGS
        .into_iter()
        .flat_map(|l| [(l, 500, 1), (l, 503, 6)])
        .flat_map(|(l, s, c)| [(l, s, c, false), (l, s, c, true)])
        .collect();
    run_cells(cells.into_iter().map(|(listing, status, count, apply)| {
        let name =
            format!("{} × GET {listing} {status}×{count}", if apply { "apply" } else { "plan" });
        (name, listing_case(listing, status, count, apply))
    }))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_token_exchange_is_retried_or_reported_like_any_request() {
    let env = Env::start().await;
    write_specs(&env);
    // The first request is refused, so the key is exchanged; the exchange answers 503 twice.
    env.fault(json!({"status": 401})).await;
    env.fault(json!({"pathPrefix": "/bim/apikey/authenticate", "status": 503, "count": 2})).await;
    let run = env.plan(&["--detailed-exitcode"]).await.must_exit(2);
    assert!(run.stdout.contains("to create"), "{}", run.stdout);
    let log = env.requests().await;
    let exchanges: Vec<u64> = log
        .iter()
        .filter(|r| r["path"] == "/bim/apikey/authenticate")
        .map(|r| r["status"].as_u64().unwrap_or(999))
        .collect();
    assert_eq!(exchanges, [503, 503, 200]);

    // A server error on the exchange is a server error, not a refused key.
    env.fault(json!({"status": 401})).await;
    env.fault(json!({"pathPrefix": "/bim/apikey/authenticate", "status": 500})).await;
    let run = env.apply(&[]).await.must_exit(1);
    let text = run.text();
    assert!(text.contains("POST /bim/apikey/authenticate failed (500)"), "{text}");
    assert!(!text.contains("refused"), "{text}");
    assert_eq!(writes(&env.requests().await), Vec::<String>::new());
}

//! `specs-example` against every tenant variant the emulator plays (table-driven over
//! `Variants::each()`, so a variant added there is tested here): apply, converge, and a second
//! apply that writes nothing. And a tree of 260 policies read in a bounded number of requests
//! whatever the listings' envelope and paging.

use immuta_emulator::{EmulatorConfig, Registration, Variants};
use serde_json::Value;

use crate::faults::run_cells;
use crate::support::emulator_config;
use crate::support::tenant::{Env, copy_example, edit, policy_spec, writes};

/// The variants `specs-example` cannot converge against by design: a tenant that registers
/// connections refuses `POST /api/v2/data` (`doctor` reports it; see `tests/it/doctor.rs`).
fn converges(v: &Variants) -> bool {
    v.registration != Registration::Connections
}

async fn example_converges(label: String, variants: Variants) {
    let env = Env::start_with(EmulatorConfig { variants, ..emulator_config() }).await;
    env.set_catalog(&super::catalog(&[])).await;
    copy_example(&env.specs);
    if label == "license-key=lower" {
        // A tenant that reads `licensekey` only: the spec spells it so, and it is posted as written.
        edit(&env.specs, "license.yaml", "licenseKey:", "licensekey:");
    }
    let run = env.apply(&[]).await;
    assert_eq!(run.code, 0, "{label}: apply\n{}", run.text());
    assert!(run.stdout.contains("Apply complete: 13 done, 0 failed"), "{label}: {}", run.stdout);
    let plan = env.plan(&["--detailed-exitcode"]).await;
    assert_eq!(plan.code, 0, "{label}: the next plan is empty\n{}", plan.text());
    env.clear_requests().await;
    let again = env.apply(&[]).await;
    assert_eq!(again.code, 0, "{label}: second apply\n{}", again.text());
    assert_eq!(writes(&env.requests().await), Vec::<String>::new(), "{label}: writes nothing");
    let view = env.view().await;
    assert!(view.duplicates.is_empty(), "{label}: {:?}", view.duplicates);
    assert_eq!(
        (view.policies.len(), view.purposes.len(), view.projects.len()),
        (6, 5, 2),
        "{label}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_converges_against_every_variant() {
    let mut cells: Vec<(String, Variants)> = vec![("default".into(), Variants::default())];
    cells.extend(Variants::each().into_iter().filter(|(_, v)| converges(v)));
    assert!(cells.len() >= 20, "{} variants", cells.len());
    run_cells(cells.into_iter().map(|(label, v)| (label.clone(), example_converges(label, v))))
        .await;
}

/// The `GET` requests of a plan of 260 policies against `variants`, by path.
async fn policies_read(label: String, variants: Variants) {
    let env = Env::start_with(EmulatorConfig { variants, ..emulator_config() }).await;
    for i in 1..=260 {
        env.specs.write(&format!("policies/p{i}.yaml"), &policy_spec(&format!("p{i}")));
    }
    env.apply_in_process().await;
    env.clear_requests().await;
    let run = env.plan(&["--detailed-exitcode"]).await;
    assert_eq!(run.code, 0, "{label}: {}", run.text());
    let log = env.requests().await;
    let gets =
        |path: &str| log.iter().filter(|r| r["method"] == "GET" && r["path"] == path).count();
    let policies = gets("/policy/global");
    // At most 260 / 50 + 2 pages (a cap of 50 without a count, and the empty page that ends
    // it); at least one.
    assert!((1..=8).contains(&policies), "{label}: {policies} requests for /policy/global");
    let total = log.iter().filter(|r| r["method"] == "GET").count();
    assert!(
        total <= 24,
        "{label}: {total} GETs: {:#?}",
        log.iter().map(|r| &r["query"]).collect::<Vec<&Value>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tree_of_260_policies_reads_in_a_bounded_number_of_requests() {
    let mut cells: Vec<(String, Variants)> = vec![("default".into(), Variants::default())];
    cells.extend(
        Variants::each()
            .into_iter()
            .filter(|(label, _)| label.starts_with("envelope=") || label.starts_with("paging=")),
    );
    run_cells(cells.into_iter().map(|(label, v)| (label.clone(), policies_read(label, v)))).await;
}

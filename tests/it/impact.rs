//! Access impact end to end.
//!
//! - The scenario suite (`tests/fixtures/impact/`): each scenario is a pair of spec trees and
//!   the impact `plan --base` must report, planned offline through the pipeline.
//! - `specs-example` edited the way the pull requests would be, planned with
//!   `plan --base` through the real binary in text, JSON and Markdown: the impact comes first
//!   in each, and a dangling reference fails the plan.

use std::path::Path;

use immuta_gitops::pipeline::{self, Inputs, Specs};
use immuta_gitops::plan::Plan;
use immuta_gitops::snapshot::Snapshot;
use immuta_gitops::source::dir;
use immuta_gitops::spec::{self, LoadOptions};
use serde_json::Value;

use crate::support::git::GitFixture;
use crate::support::{bin, fixture, output_text, repo_root};

fn read(path: &Path) -> Snapshot {
    dir::read(path, &dir::ReadOptions { include: spec::is_snapshot_file, ..Default::default() })
        .expect("a spec tree")
}

/// The impact of `plan --base`, one line per finding and broken reference.
fn impact_lines(plan: &Plan) -> Vec<String> {
    let i = &plan.impact;
    i.findings
        .iter()
        .map(|f| {
            let mut line = format!(
                "{} {} {}: {}",
                f.direction.as_str(),
                f.confidence.as_str(),
                f.kind.as_str(),
                f.describe()
            );
            if let Some(c) = &f.caveat {
                line.push_str(&format!(" [{c}]"));
            }
            line
        })
        .chain(
            i.references
                .iter()
                .map(|r| format!("{} {}: {}", r.severity.as_str(), r.code, r.message)),
        )
        .collect()
}

/// Plans `after` against `before` offline, as `plan --base` does.
fn plan_offline(before: &Path, after: &Path) -> Plan {
    let (base, current) = (read(before), read(after));
    let inputs = Inputs {
        options: LoadOptions { offline: true, ..LoadOptions::default() },
        secrets_dir: "/nonexistent".into(),
    };
    let specs = Specs::load(&current, &inputs);
    pipeline::plan_offline(&specs, current, base, "base").expect("the specs plan").plan
}

#[test]
fn every_scenario_reports_its_expected_impact() {
    let root = fixture("impact");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .expect("the scenario suite")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 8, "{dirs:?}");
    let bless = std::env::var_os("IMPACT_BLESS").is_some();
    let mut failures = Vec::new();
    for dir in &dirs {
        let name = dir.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let plan = plan_offline(&dir.join("before"), &dir.join("after"));
        let got = impact_lines(&plan);
        let path = dir.join("expected.txt");
        let text = std::fs::read_to_string(&path).expect("expected.txt");
        let about: Vec<&str> = text.lines().filter(|l| l.starts_with('#')).collect();
        let expected: Vec<&str> =
            text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).collect();
        assert!(!about.is_empty(), "{name}: expected.txt opens with a `#` line saying what it is");
        if got.is_empty() {
            failures.push(format!("{name}: no impact at all"));
        }
        if bless {
            let mut out = about.join("\n");
            for l in &got {
                out.push('\n');
                out.push_str(l);
            }
            out.push('\n');
            std::fs::write(&path, out).expect("write expected.txt");
        } else if got != expected {
            failures.push(format!(
                "{name}:\n  expected:\n    {}\n  got:\n    {}",
                expected.join("\n    "),
                got.join("\n    ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// `specs-example` committed, then edited as a pull request: the passport tag removed from
/// `PASSPORT_NUMBER`, the `ORDERS` table dropped (which `fraud-investigations` still lists),
/// the PII subscription opened to anyone and group `auditors` excepted from the e-mail
/// masking.
fn example_repo() -> GitFixture {
    let repo = GitFixture::new();
    fn copy(repo: &GitFixture, from: &Path, rel: &str) {
        for entry in std::fs::read_dir(from).expect("specs-example") {
            let entry = entry.expect("an entry");
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = format!("{rel}/{name}");
            if entry.path().is_dir() {
                copy(repo, &entry.path(), &rel);
            } else {
                repo.write(&rel, std::fs::read(entry.path()).expect("readable"));
            }
        }
    }
    copy(&repo, &repo_root().join("specs-example"), "specs");
    repo.commit("base");
    let edit = |path: &str, from: &str, to: &str| {
        let file = repo.work().join("specs").join(path);
        let text = std::fs::read_to_string(&file).expect("example file");
        assert!(text.contains(from), "{path} has no {from:?}");
        repo.write(&format!("specs/{path}"), text.replacen(from, to, 1));
    };
    edit(
        "data-sources/snowflake-sales.yaml",
        "        - columnName: PASSPORT_NUMBER\n          tags: [Discovered.Passport]\n",
        "",
    );
    edit(
        "data-sources/snowflake-sales.yaml",
        "  - tableName: ORDERS\n    schema: PUBLIC\n    description: Orders, one row per order line.\n    tags:\n      columns:\n        - columnName: REGION\n          tags: [Sales.Region]\n",
        "",
    );
    edit(
        "policies/subscription.yaml",
        "  type: approval\n  approvals:\n    - specificApproverRequired: false\n      requiredPermission: OWNER\n",
        "  type: anyone\n",
    );
    edit(
        "policies/masking.yaml",
        "          purposes:\n            - Fraud Investigation\n",
        "          purposes:\n            - Fraud Investigation\n          groups:\n            - auditors\n",
    );
    repo.commit("a pull request");
    repo
}

#[test]
fn the_edited_example_plans_its_impact_first_in_every_format() {
    let repo = example_repo();
    let cwd = tempfile::tempdir().expect("temp dir");
    let specs = repo.work().join("specs").display().to_string();
    let run = |format: &str| {
        let out = bin()
            .current_dir(cwd.path())
            .args(["plan", "--base", "HEAD~1", specs.as_str(), "--format", format])
            .args(["--color", "never"])
            .output()
            .expect("the binary runs");
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), output_text(&out))
    };

    // Text: the section comes before the first per-object block; widening before narrowing.
    let (code, text, all) = run("text");
    assert_eq!(code, Some(1), "a dangling reference fails the plan: {all}");
    let section = text.find("Access impact (from the specs alone").expect(&text);
    let first_change =
        text.find("  ~ datasource \"snowflake-sales\" will be updated").expect(&text);
    assert!(section < first_change, "{text}");
    for line in [
        "    - column `sales customers.PASSPORT_NUMBER` is no longer masked (was: one of Constant (`mask-passport-constant`)",
        "      possible: the data source's tags or columns changed in Git",
        "    - exception widened in `mask-email-hash`: members of group `auditors` now see unmasked values of column `sales customers.EMAIL`",
        "    - subscription to data source `sales customers` widened: anyone may now subscribe (policy `subscribe-pii-approval`",
        "    - data source `sales orders` is disabled (dropped from `sources`): its Immuta protections stop applying",
        "    x project `fraud-investigations` lists data source `sales orders`, which this plan removes",
        "The plan leaves 1 reference dangling (see Access impact): `apply` refuses it.",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    let widening = text.find("  Widening (less protection, more access):").expect(&text);
    assert!(widening < first_change);
    assert!(text.contains("\nAccess: "), "{text}");

    // JSON: the documented arrays, the same findings.
    let (code, json, all) = run("json");
    assert_eq!(code, Some(1), "{all}");
    let plan: Value = serde_json::from_str(&json).expect("JSON");
    let impact = plan["impact"].as_array().expect("an impact array");
    let types: Vec<&str> = impact.iter().filter_map(|f| f["type"].as_str()).collect();
    for t in ["masking_removed", "exception_widened", "subscription_widened", "data_source_removed"]
    {
        assert!(types.contains(&t), "{t} missing from {types:?}");
    }
    assert!(impact.iter().all(|f| f["direction"] == "widening" || f["direction"] == "narrowing"));
    let removed = impact.iter().find(|f| f["type"] == "masking_removed").expect("masking_removed");
    assert_eq!(removed["confidence"], "possible");
    assert_eq!(removed["source"], "specs");
    assert_eq!(
        removed["subjects"][0],
        serde_json::json!({"type": "column", "data_source": "sales customers",
                           "column": "PASSPORT_NUMBER", "connection": "snowflake-sales",
                           "table": "PUBLIC.CUSTOMERS"})
    );
    assert_eq!(plan["impact_basis"]["offline"], true);
    assert_eq!(plan["summary"]["widening"].as_u64(), Some(impact.len() as u64));
    let broken = plan["broken_references"].as_array().expect("broken references");
    assert!(
        broken.iter().any(|r| r["severity"] == "error"
            && r["code"] == "project-data-source"
            && r["name"] == "sales orders"),
        "{broken:#?}"
    );

    // Markdown: the impact and the implicit effects open the comment, outside any <details>.
    let (code, md, all) = run("markdown");
    assert_eq!(code, Some(1), "{all}");
    let impact_at = md.find("#### Access impact").expect(&md);
    let effects_at = md.find("#### Implicit effects").expect(&md);
    let first_details = md.find("<details>").expect(&md);
    assert!(impact_at < first_details && effects_at < first_details, "{md}");
    assert!(md.contains("**🔴 Widening**"), "{md}");
    assert!(
        md.contains("- datasource `snowflake-sales`: ⚠️ **destructive:** data sources of tables no longer listed are disabled: `PUBLIC.ORDERS`"),
        "{md}"
    );
    assert!(
        md.contains(
            "⛔ **error:** project `fraud-investigations` lists data source `sales orders`"
        ),
        "{md}"
    );
}

#[test]
fn a_pull_request_that_fixes_its_reference_plans_clean_of_errors() {
    let repo = example_repo();
    let file = repo.work().join("specs/projects/fraud-investigations.yaml");
    let text = std::fs::read_to_string(&file).expect("project");
    repo.write("specs/projects/fraud-investigations.yaml", text.replace("  - sales orders\n", ""));
    repo.commit("drop the reference too");
    let specs = repo.work().join("specs").display().to_string();
    let out = bin()
        .args(["plan", "--base", "HEAD~2", specs.as_str(), "--color", "never"])
        .output()
        .expect("the binary runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    assert!(!text.contains("dangling"), "{text}");
    assert!(
        text.contains("    + members of project `fraud-investigations` no longer reach data source `sales orders`"),
        "{text}"
    );
}

/// Against a tenant, the table tags the tenant reports for managed data sources (a tag applied
/// outside Git, here by hand on `sales orders`) go into the impact, and the findings they
/// change say so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_applied_outside_git_come_from_the_tenant() {
    use crate::support::tenant::{Env, copy_example, edit};

    let env = Env::start().await;
    env.set_catalog(&crate::apply::catalog(&[])).await;
    copy_example(&env.specs);
    env.apply(&[]).await.must_exit(0);
    let view = env.view().await;
    let orders = view.data_sources["snowflake-sales"]
        .iter()
        .find(|d| d.name == "sales orders")
        .expect("sales orders is registered");
    // A catalog tags ORDERS as personal data; Git does not know.
    env.tamper(
        "datasource",
        &orders.id.to_string(),
        &serde_json::json!({"tags": ["Discovered.PII"]}),
    )
    .await;

    edit(
        &env.specs,
        "policies/subscription.yaml",
        "  type: approval\n  approvals:\n    - specificApproverRequired: false\n      requiredPermission: OWNER\n",
        "  type: anyone\n",
    );
    let plan = env.plan_json(&[]).await;
    let basis = &plan["impact_basis"];
    assert_eq!(basis["offline"], false, "{basis}");
    assert!(basis["tenant_tags_read"].as_u64().unwrap_or(0) >= 2, "{basis}");
    assert_eq!(basis["tenant_tagged"], 1, "{basis}");
    assert_eq!(basis["tenant_tags_unread"], 0, "{basis}");
    let widened: Vec<&Value> = plan["impact"]
        .as_array()
        .expect("impact")
        .iter()
        .filter(|f| f["type"] == "subscription_widened" && f["policy"] == "subscribe-pii-approval")
        .collect();
    let tenant =
        widened.iter().find(|f| f["source"] == "tenant").unwrap_or_else(|| panic!("{widened:#?}"));
    let names: Vec<&str> = tenant["subjects"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["data_source"].as_str())
        .collect();
    assert_eq!(names, ["sales orders"], "{tenant:#}");
    assert!(
        widened.iter().any(|f| f["source"] == "specs"
            && f["subjects"][0]["data_source"] == "sales customers"),
        "{widened:#?}"
    );

    let text = env.plan(&[]).await.must_exit(0).stdout;
    assert!(text.contains("with the table tags the tenant reports for"), "{text}");
    assert!(
        text.contains(
            "subscription to data source `sales orders` widened: anyone may now subscribe"
        ) && text.contains("[tenant tags]"),
        "{text}"
    );
}

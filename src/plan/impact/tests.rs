//! Unit tests of the impact model on `specs-example`, edited the ways a pull request would.
//! The scenario suite (pairs of spec trees and the impact each must report) is
//! `tests/fixtures/impact/`, run by `tests/it/impact.rs`.

use super::*;
use crate::snapshot::Snapshot;
use crate::spec::{self, LoadOptions};

const EXAMPLE: &[(&str, &str)] = &[
    (
        "data-sources/snowflake-sales.yaml",
        include_str!("../../../specs-example/data-sources/snowflake-sales.yaml"),
    ),
    (
        "data-sources/databricks-analytics.yaml",
        include_str!("../../../specs-example/data-sources/databricks-analytics.yaml"),
    ),
    ("policies/masking.yaml", include_str!("../../../specs-example/policies/masking.yaml")),
    ("policies/row-level.yaml", include_str!("../../../specs-example/policies/row-level.yaml")),
    (
        "policies/subscription.yaml",
        include_str!("../../../specs-example/policies/subscription.yaml"),
    ),
    (
        "projects/fraud-investigations.yaml",
        include_str!("../../../specs-example/projects/fraud-investigations.yaml"),
    ),
    (
        "projects/marketing-analytics.yaml",
        include_str!("../../../specs-example/projects/marketing-analytics.yaml"),
    ),
    ("purposes/analytics.yaml", include_str!("../../../specs-example/purposes/analytics.yaml")),
    (
        "purposes/fraud-investigation.yaml",
        include_str!("../../../specs-example/purposes/fraud-investigation.yaml"),
    ),
];

/// The canonical payloads of a tree (offline: placeholders as written).
fn load(files: &[(String, String)]) -> Vec<(Kind, String, Payload, String)> {
    let options = LoadOptions { offline: true, ..LoadOptions::default() };
    let (desired, diags) = spec::load(&Snapshot::from_texts(files.iter().cloned()), &options);
    assert!(diags.iter().all(|d| !d.is_error()), "{diags:#?}");
    desired
        .objects
        .iter()
        .map(|o| {
            let v = crate::plan::comparable(o, None, "salt").unwrap();
            let digest = crate::state::payload_digest(&v);
            (o.kind, o.key.clone(), Payload::from(v), digest)
        })
        .collect()
}

fn example() -> Vec<(String, String)> {
    EXAMPLE.iter().map(|(p, t)| ((*p).to_owned(), (*t).to_owned())).collect()
}

/// `example()` with `edit(path, from, to)` applied.
fn edited(edits: &[(&str, &str, &str)]) -> Vec<(String, String)> {
    let mut files = example();
    for (path, from, to) in edits {
        let f = files.iter_mut().find(|(p, _)| p == path).expect("a file of the example");
        assert!(f.1.contains(from), "{path} has no {from:?}");
        f.1 = f.1.replacen(from, to, 1);
    }
    files
}

fn sides(v: &[(Kind, String, Payload, String)]) -> Vec<Side<'_>> {
    v.iter()
        .map(|(kind, key, payload, digest)| Side { kind: *kind, key, payload, digest, names: &[] })
        .collect()
}

fn run(before: &[(String, String)], after: &[(String, String)]) -> Impact {
    let (b, a) = (load(before), load(after));
    impact(&Input { before: sides(&b), after: sides(&a), tenant: None })
}

fn lines(i: &Impact) -> Vec<String> {
    i.findings
        .iter()
        .map(|f| {
            format!(
                "{} {} {}: {}",
                f.direction.as_str(),
                f.confidence.as_str(),
                f.kind.as_str(),
                f.describe()
            )
        })
        .chain(
            i.references
                .iter()
                .map(|r| format!("{} {}: {}", r.severity.as_str(), r.code, r.message)),
        )
        .collect()
}

#[test]
fn nothing_changed_nothing_to_report() {
    let i = run(&example(), &example());
    assert!(i.is_empty(), "{:#?}", lines(&i));
}

/// The impact of `edits` to the example, as `direction confidence type: sentence` lines.
fn of(edits: &[(&str, &str, &str)]) -> Vec<String> {
    lines(&run(&example(), &edited(edits)))
}

#[track_caller]
fn has(got: &[String], prefix: &str) {
    assert!(got.iter().any(|l| l.starts_with(prefix)), "no line starts with {prefix:?}:\n{got:#?}");
}

#[test]
fn a_removed_passport_tag_unmasks_the_column_possibly() {
    let got = of(&[(
        "data-sources/snowflake-sales.yaml",
        "        - columnName: PASSPORT_NUMBER\n          tags: [Discovered.Passport]\n",
        "",
    )]);
    has(
        &got,
        "widening possible masking_removed: column `sales customers.PASSPORT_NUMBER` is no longer \
         masked (was: one of Constant (`mask-passport-constant`), Null where",
    );
    has(
        &got,
        "warning unmatched-tag: policy `mask-passport-constant` names tag `Discovered.Passport`",
    );
    assert_eq!(got.len(), 3, "{got:#?}");
}

#[test]
fn a_changed_circumstance_unmasks_certainly() {
    let got = of(&[(
        "policies/masking.yaml",
        "circumstances:\n  - type: columnTags\n    columnTag: Discovered.PII.Email",
        "circumstances:\n  - type: columnTags\n    columnTag: Discovered.PII.Phone",
    )]);
    has(
        &got,
        "widening certain masking_removed: column `sales customers.EMAIL` is no longer masked \
         (was: Hash, policy `mask-email-hash`)",
    );
}

#[test]
fn hash_to_the_identity_function_is_no_masking() {
    let got = of(&[(
        "policies/masking.yaml",
        "          maskingConfig:\n            type: Hash",
        "          maskingConfig:\n            type: Custom Function\n            sqlFunction: \"@column\"",
    )]);
    assert_eq!(
        got,
        ["widening certain masking_removed: column `sales customers.EMAIL` is no longer masked \
          (was: Hash, policy `mask-email-hash`)"]
    );
}

#[test]
fn a_weaker_type_among_tied_policies_is_possible_weakening() {
    let got = of(&[(
        "policies/masking.yaml",
        "            type: Constant\n            constant: REDACTED",
        "            type: Hash",
    )]);
    has(
        &got,
        "widening possible masking_weakened: masking of column `sales customers.PASSPORT_NUMBER` weakened to one of Hash",
    );
}

#[test]
fn a_removed_row_rule_and_a_subscription_opened_to_anyone() {
    let got = of(&[(
        "policies/row-level.yaml",
        "      - type: Row Restriction by Custom Where Clause\n        exceptions:\n          groups:\n            - sales-leadership\n        config:\n          predicate: \"STATUS = 'CLOSED'\"\n",
        "",
    )]);
    has(
        &got,
        "widening certain row_restriction_removed: 2 data sources (`sales customers`, `sales orders`) \
         lose their row restriction `rows-orders-by-region` (only rows where `STATUS = 'CLOSED'`)",
    );
    let got = of(&[(
        "policies/subscription.yaml",
        "  type: approval\n  approvals:\n    - specificApproverRequired: false\n      requiredPermission: OWNER\n",
        "  type: anyone\n",
    )]);
    // Two subscription policies apply to CUSTOMERS: how they merge is undocumented.
    has(
        &got,
        "widening possible subscription_widened: subscription to data source `sales customers` \
         widened: anyone may now subscribe (policy `subscribe-pii-approval`",
    );
}

#[test]
fn exceptions_added_name_who_sees_clear_values() {
    let got = of(&[(
        "policies/masking.yaml",
        "          groups:\n            - compliance",
        "          groups:\n            - compliance\n          purposes:\n            - Analytics.Marketing",
    )]);
    has(
        &got,
        "widening possible exception_widened: exception widened in `mask-passport-constant`: members \
         of projects acting under purpose `Analytics.Marketing` (project `marketing-analytics`) now \
         see unmasked values of column `sales customers.PASSPORT_NUMBER`",
    );
}

#[test]
fn a_dropped_table_a_project_lists_is_a_broken_reference() {
    let got = of(&[(
        "data-sources/snowflake-sales.yaml",
        "  - tableName: ORDERS\n    schema: PUBLIC\n    description: Orders, one row per order line.\n    tags:\n      columns:\n        - columnName: REGION\n          tags: [Sales.Region]\n",
        "",
    )]);
    has(
        &got,
        "widening possible data_source_removed: data source `sales orders` is disabled (dropped from \
         `sources`): its Immuta protections stop applying",
    );
    has(
        &got,
        "error project-data-source: project `fraud-investigations` lists data source `sales orders`, \
         which this plan removes",
    );
}

#[test]
fn un_staging_a_policy_is_every_effect_it_has() {
    let staged = edited(&[("policies/row-level.yaml", "staged: false", "staged: true")]);
    let got = lines(&run(&staged, &example()));
    has(
        &got,
        "narrowing certain row_restriction_added: data source `sales orders` gets the row \
         restriction `rows-orders-by-region`",
    );
    assert!(got.iter().all(|l| !l.starts_with("widening")), "{got:#?}");
}

#[test]
fn projects_gaining_purposes_and_openings() {
    let got = of(&[(
        "projects/marketing-analytics.yaml",
        "  - Analytics.Marketing.Campaigns",
        "  - Analytics.Marketing.Campaigns\n  - Fraud Investigation",
    )]);
    assert_eq!(
        got,
        ["widening certain purpose_exception_added: purpose exception added: members of project \
          `marketing-analytics` now act under purpose `Fraud Investigation`, which policies \
          `mask-email-hash` except from masking or row rules"]
    );
    let got = of(&[
        (
            "projects/fraud-investigations.yaml",
            "  type: approval\n  approvals:\n    - specificApproverRequired: true\n      requiredPermission: GOVERNANCE\n",
            "  type: anyone\n",
        ),
        ("projects/fraud-investigations.yaml", "allowMaskedJoins: false", "allowMaskedJoins: true"),
    ]);
    has(
        &got,
        "widening certain project_join_widened: more people may join project `fraud-investigations`: anyone may now join",
    );
    has(
        &got,
        "widening certain project_setting_widened: project `fraud-investigations`: members may join masked columns",
    );
}

#[test]
fn a_purpose_the_plan_deletes_breaks_the_projects_naming_it() {
    let got =
        of(&[("purposes/analytics.yaml", "      - name: Analytics.Marketing.Campaigns\n", "")]);
    assert_eq!(
        got,
        ["error project-purpose: project `marketing-analytics` names purpose \
          `Analytics.Marketing.Campaigns`, which this plan deletes: remove it from the project in \
          the same change"]
    );
}

#[test]
fn every_data_source_of_a_large_connection_is_listed_once() {
    let tables: String = (0..8).map(|i| format!("  - {{tableName: T{i}, schema: S}}\n")).collect();
    let ds = format!(
        "connectionKey: big\nconnection: {{handler: Snowflake, hostname: h, database: D, warehouse: W}}\n\
         options: {{tableTags: [Dept.X]}}\nsources:\n{tables}"
    );
    let policy = "policyKey: rows\nname: Rows\ntype: data\nactions:\n  - rules:\n      \
                  - type: Row Restriction by Custom Where Clause\n        config: {predicate: \"A = 1\"}\n\
                  circumstances:\n  - {type: tags, tag: Dept.X}\n";
    let before = vec![("ds.yaml".to_owned(), ds.clone()), ("p.yaml".to_owned(), policy.to_owned())];
    let after = vec![("ds.yaml".to_owned(), ds)];
    let i = run(&before, &after);
    assert_eq!(i.findings.len(), 1, "{:#?}", lines(&i));
    assert_eq!(
        i.findings[0].subjects,
        [Subject::Connection { connection: "big".into(), data_sources: 8 }]
    );
    assert_eq!(
        lines(&i),
        ["widening certain row_restriction_removed: every data source of connection `big` (8) \
          lose their row restriction `rows` (only rows where `A = 1`)"]
    );
}

//! Renderer tests: a realistic plan built from real specs through the loader and the planner,
//! pinned with insta snapshots, plus properties (colour, secrets, splitting, round trip).

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use serde_json::json;

use super::*;
use crate::plan::fixtures::{Env, SALT, load, targets};
use crate::plan::observed::{
    Inventory, LicenseStatus, LiveDataSource, LiveLicense, LivePolicy, LiveProject, LivePurpose,
};
use crate::plan::{Change, DryRun, ObjectId, Observed, Plan, PlanInput, Target, plan};
use crate::spec::{Desired, Kind, RepoSettings};
use crate::state::State;

fn env(pw: &'static str) -> Env {
    Env(HashMap::from([("PW", pw), ("LIC", "canary-license-key")]))
}

/// The state after applying `targets`, with the given ids and data-source names.
fn applied(targets: &[Target<'_>], ids: &[(&str, i64)], names: &[(&str, &[&str])]) -> State {
    let mut state = State::new("https://acme.immuta.com", SALT);
    for t in targets {
        let key = t.object.key.as_str();
        let id = ids.iter().find(|(k, _)| *k == key).map(|(_, i)| *i);
        let names = names
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, n)| n.iter().map(|s| s.to_string()).collect())
            .unwrap_or_default();
        state.upsert(t.entry(id, names, "r1", "2030-03-01T00:00:00Z"));
    }
    state
}

fn run(
    targets: &[Target<'_>],
    state: &State,
    observed: Option<&Observed>,
    base: Option<&str>,
) -> Plan {
    plan(&PlanInput {
        targets,
        state,
        observed,
        settings: &RepoSettings::default(),
        tenant: if observed.is_some() { "https://acme.immuta.com" } else { "offline" }.into(),
        revision: "4f1c2e9".into(),
        base: base.map(str::to_owned),
        refresh: false,
        now: SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000), // 2030-03-17
    })
}

const LICENSE: &str = "licenseKey: ${LIC}\n";
const PURPOSE_R: &str =
    "name: Research\nsubpurposes:\n  - name: Research.Clinical\n  - name: Research.Marketing\n";
const PURPOSE_OLD: &str = "name: Legacy Reporting\n";
const PURPOSE_KEEP: &str = "name: Audit\ngitops: {prune: false}\n";
const SALES: &str = "\
connectionKey: sales
connection:
  handler: Snowflake
  hostname: acme.snowflakecomputing.com
  warehouse: COMPUTE_WH
  database: SALES
  username: immuta_svc
  password: ${PW}
nameTemplate:
  dataSourceFormat: Sales <Tablename>
options:
  tableTags: [Sales]
sources:
  - schema: PUBLIC
    tableName: CUSTOMERS
    tags:
      columns:
        - {columnName: EMAIL, tags: [PII.Email]}
  - {schema: PUBLIC, tableName: ORDERS}
  - {schema: PUBLIC, tableName: REFUNDS}
";
const WAREHOUSE: &str = "\
connectionKey: warehouse
connection:
  handler: PostgreSQL
  hostname: pg-old.internal
  port: 5432
  database: dwh
  username: immuta
  password: ${PW}
sources:
  - {schema: public, tableName: orders}
";
const MASK_EMAIL: &str = "\
policyKey: mask-email
name: Mask email
type: data
actions:
  - rules:
      - type: Masking
        config:
          fields: [{type: columnTags, columnTag: PII.Email}]
          maskingConfig: {type: Hash}
";
const K_ANON: &str = "\
policyKey: k-anon-zip
name: K-anonymize zip codes
type: data
actions:
  - rules:
      - type: Masking
        config:
          fields: [{type: columnTags, columnTag: PII.ZipCode}]
          maskingConfig: {type: K-Anonymization}
";
const ADOPTED: &str = "\
policyKey: analysts-subscribe
name: Analysts may subscribe
type: subscription
actions:
  type: entitlements
  entitlements:
    operator: any
    groups: [Analysts]
  automaticSubscription: true
circumstances:
  - {type: tags, tag: Sales}
";
const PROJECT: &str = "\
projectKey: churn
name: Churn analysis
purposes: [Research.Clinical, Research.Marketing]
datasources: [Sales Customers, Sales Refunds]
";

/// Last applied (r1) and desired (r2) spec trees covering every action.
fn realistic_trees() -> (Desired, Desired) {
    let before = load(&[
        ("license.yaml", LICENSE),
        ("purposes/research.yaml", PURPOSE_R),
        ("purposes/legacy.yaml", PURPOSE_OLD),
        ("purposes/audit.yaml", PURPOSE_KEEP),
        ("data/sales.yaml", SALES),
        ("data/warehouse.yaml", WAREHOUSE),
        ("policies/mask-email.yaml", MASK_EMAIL),
        ("projects/churn.yaml", PROJECT),
    ]);
    let after = load(&[
        ("license.yaml", LICENSE),
        ("purposes/research.yaml", PURPOSE_R),
        (
            "data/sales.yaml",
            &SALES
                .replace("  - {schema: PUBLIC, tableName: REFUNDS}\n", "")
                .replace("tableTags: [Sales]", "tableTags: [Sales, Finance]"),
        ),
        ("data/warehouse.yaml", &WAREHOUSE.replace("pg-old.internal", "pg-new.internal")),
        (
            "policies/mask-email.yaml",
            &MASK_EMAIL.replace("Mask email", "Mask email addresses").replace(
                "      - type: Masking\n",
                "      - type: Masking\n        exceptions: {groups: [support]}\n",
            ),
        ),
        ("policies/k-anon-zip.yaml", K_ANON),
        ("policies/analysts-subscribe.yaml", ADOPTED),
        ("projects/churn.yaml", &PROJECT.replace(", Research.Marketing]", "]")),
    ]);
    (before, after)
}

fn realistic_observed() -> Observed {
    let policy = |id, key: &str| LivePolicy {
        id,
        policy_key: Some(key.into()),
        name: key.into(),
        system_generated: false,
    };
    let purpose =
        |id, name: &str| LivePurpose { id: Some(id), name: name.into(), system_generated: false };
    let ds = |id, name: &str| LiveDataSource { id, name: name.into(), deleted: false };
    let mut observed = Observed {
        inventory: Inventory {
            data_sources: vec![
                ds(41, "Sales Customers"),
                ds(42, "Sales Orders"),
                ds(43, "Sales Refunds"),
                ds(44, "Warehouse Orders"),
                ds(45, "Hand-made extract"),
            ],
            policies: vec![
                policy(11, "mask-email"),
                policy(12, "analysts-subscribe"),
                policy(13, "by-hand"),
                LivePolicy {
                    id: 14,
                    policy_key: None,
                    name: "New Column Added".into(),
                    system_generated: true,
                },
            ],
            projects: vec![LiveProject {
                id: 21,
                project_key: Some("churn".into()),
                name: "Churn analysis".into(),
                is_schema: false,
            }],
            purposes: vec![
                purpose(31, "Research"),
                purpose(32, "Research.Clinical"),
                purpose(33, "Research.Marketing"),
                purpose(34, "Legacy Reporting"),
                purpose(35, "Audit"),
            ],
            licenses: Some(vec![LiveLicense {
                id: Some(3),
                seats: Some(100),
                expires: Some("2030-03-29".into()),
            }]),
            license_status: Some(LicenseStatus { active_users: 95, seats: 100 }),
            data_keys: [("sales".to_owned(), true), ("warehouse".to_owned(), true)].into(),
            read_by_id: Vec::new(),
        },
        ..Observed::default()
    };
    let object = |creating, updating| DryRun::Object {
        creating,
        updating,
        data_sources_added: 0,
        data_sources_removed: 0,
        deleting_workspace: false,
    };
    let dry = &mut observed.dry_runs;
    dry.insert(
        ObjectId::new(Kind::DataSource, "sales"),
        DryRun::Data {
            creating: vec![],
            updating: vec!["Sales Customers".into(), "Sales Orders".into()],
            deleting: vec!["Sales Refunds".into()],
            no_change: vec![],
            detection_running: false,
            tags_updated: true,
        },
    );
    dry.insert(
        ObjectId::new(Kind::DataSource, "warehouse"),
        DryRun::Data {
            creating: vec!["Warehouse Orders".into()],
            updating: vec![],
            deleting: vec!["Warehouse Orders".into()],
            no_change: vec![],
            detection_running: false,
            tags_updated: false,
        },
    );
    dry.insert(ObjectId::new(Kind::Policy, "mask-email"), object(false, true));
    dry.insert(ObjectId::new(Kind::Policy, "analysts-subscribe"), object(false, true));
    dry.insert(
        ObjectId::new(Kind::Policy, "k-anon-zip"),
        DryRun::Rejected {
            status: 400,
            message: "K-Anonymization masking is not enabled on this tenant".into(),
        },
    );
    dry.insert(ObjectId::new(Kind::Project, "churn"), object(false, true));
    observed
}

/// A plan with every action, effects, warnings, an error and unmanaged objects. The password
/// changes between the two applies, through `${PW}`.
fn realistic_plan(old_pw: &'static str, new_pw: &'static str) -> Plan {
    let (before, after) = realistic_trees();
    let state = applied(
        &targets(&before, Some(&env(old_pw))),
        &[
            ("${LIC}", 3),
            ("Research", 31),
            ("Legacy Reporting", 34),
            ("Audit", 35),
            ("mask-email", 11),
            ("churn", 21),
        ],
        &[
            ("sales", &["Sales Customers", "Sales Orders", "Sales Refunds"]),
            ("warehouse", &["Warehouse Orders"]),
        ],
    );
    run(&targets(&after, Some(&env(new_pw))), &state, Some(&realistic_observed()), None)
}

fn sample() -> Plan {
    realistic_plan("canary-old-password", "canary-new-password")
}

#[test]
fn the_realistic_plan_covers_every_action() {
    let p = sample();
    let mut seen: Vec<(Action, bool)> =
        p.changes.iter().map(|c| (c.action, c.blocked.is_some())).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(
        seen,
        [
            (Action::Create, false),
            (Action::Update, false),
            (Action::Delete, false),
            (Action::Delete, true),
            (Action::Replace, false),
            (Action::Adopt, false),
            (Action::NoOp, false),
        ],
        "{:#?}",
        p.changes
    );
    let codes: Vec<&str> = p.warnings.iter().map(|w| w.code).collect();
    assert!(codes.contains(&"k-anonymization") && codes.contains(&"license-seats"), "{codes:?}");
    assert_eq!(p.errors.len(), 1);
    assert_eq!(p.unmanaged.len(), 2, "{:#?}", p.unmanaged);
    assert!(p.changes.iter().any(|c| c.fields.iter().any(|f| f.sensitive)));
}

#[test]
fn text_snapshot() {
    insta::assert_snapshot!("text", text(&sample(), &TextOptions { color: false }));
}

#[test]
fn json_snapshot() {
    insta::assert_snapshot!("json", json(&sample()));
}

#[test]
fn markdown_snapshot() {
    let parts = markdown(&sample(), GITHUB_COMMENT_LIMIT);
    assert_eq!(parts.len(), 1);
    insta::assert_snapshot!("markdown", parts[0]);
}

#[test]
fn color_is_ansi_only_when_asked_for() {
    let p = sample();
    let plain = text(&p, &TextOptions { color: false });
    let colored = text(&p, &TextOptions { color: true });
    assert!(!plain.contains('\u{1b}'), "{plain}");
    assert!(colored.contains("\u{1b}["), "{colored}");
    // Diff lines are coloured as a whole: red removals, green additions.
    assert!(colored.contains("\u{1b}[31m-"), "{colored}");
    assert!(colored.contains("\u{1b}[32m+"), "{colored}");
    // Same words, only escapes added.
    assert_eq!(strip_ansi(&colored), plain);
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn json_round_trips_through_read_saved() {
    let p = sample();
    let text = json(&p);
    assert!(text.ends_with("}\n"));
    let saved = read_saved(&text).unwrap();
    assert_eq!(saved.format_version, FORMAT_VERSION);
    assert_eq!(saved.fingerprint, p.fingerprint);
    assert_eq!(saved.tenant, p.tenant);
    assert_eq!(saved.revision, p.revision);
    assert_eq!(saved.base, p.base);
    let expected: Vec<(Kind, String, Action, bool)> = p
        .changes
        .iter()
        .map(|c| (c.id.kind, c.id.key.clone(), c.action, c.blocked.is_some()))
        .collect();
    let got: Vec<(Kind, String, Action, bool)> =
        saved.changes.into_iter().map(|c| (c.kind, c.key, c.action, c.blocked)).collect();
    assert_eq!(got, expected);
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let unchanged = doc["changes"].as_array().unwrap().iter();
    assert_eq!(unchanged.filter(|c| c["action"] == "no_change").count(), 2);
}

#[test]
fn read_saved_refuses_other_versions_and_non_plans() {
    let mut doc: serde_json::Value = serde_json::from_str(&json(&sample())).unwrap();
    doc["format_version"] = json!(2);
    let err = read_saved(&doc.to_string()).unwrap_err();
    assert!(
        matches!(err, SavedPlanError::UnsupportedVersion { found: 2, supported: 1 }),
        "{err:?}"
    );
    assert!(err.to_string().contains("format_version 2"), "{err}");

    assert!(matches!(read_saved("not json"), Err(SavedPlanError::Syntax(_))));
    assert!(matches!(read_saved("{\"changes\": []}"), Err(SavedPlanError::NotAPlan)));
    assert!(matches!(
        read_saved("{\"format_version\": 1, \"tenant\": \"t\"}"),
        Err(SavedPlanError::Malformed(_))
    ));
    doc["format_version"] = json!(1);
    doc["changes"][0]["action"] = json!("explode");
    assert!(matches!(
        read_saved(&doc.to_string()),
        Err(SavedPlanError::UnknownValue { field: "action", .. })
    ));
}

#[test]
fn a_canary_secret_never_appears_in_any_output() {
    let p = sample();
    let mut outputs = vec![text(&p, &TextOptions { color: false }), json(&p)];
    outputs.extend(markdown(&p, GITHUB_COMMENT_LIMIT));
    outputs.extend(markdown(&p, 1_500));
    for out in &outputs {
        assert!(!out.contains("canary"), "{out}");
        assert!(!out.contains("(sensitive:"), "{out}");
    }
    // The changed password is visible as a change, never as a value.
    assert!(outputs[0].contains("(sensitive, changed)"), "{}", outputs[0]);
}

#[test]
fn raw_digests_are_scrubbed_even_if_the_planner_let_one_through() {
    let mut p = sample();
    let raw = "(sensitive:0123abcd)";
    let c = &mut p.changes[0];
    c.reason = Some(format!("reason with {raw}"));
    c.after = Some(json!({"password": raw, "note": format!("text {raw} text")}).into());
    p.warnings[0].message = format!("warning {raw}");
    p.errors[0].message = format!("error {raw}");
    let mut outputs = vec![text(&p, &TextOptions { color: true }), json(&p)];
    outputs.extend(markdown(&p, GITHUB_COMMENT_LIMIT));
    for out in &outputs {
        assert!(!out.contains("0123abcd"), "{out}");
    }
    assert_eq!(scrub("a (sensitive:ff) b (sensitive:ee"), "a (sensitive) b (sensitive)");
    assert_eq!(scrub("(sensitive, changed)"), "(sensitive, changed)");
}

#[test]
fn an_unchanged_tenant_says_so() {
    let d = load(&[("policies/mask-email.yaml", MASK_EMAIL)]);
    let t = targets(&d, None);
    let state = applied(&t, &[], &[]);
    let p = run(&t, &state, None, Some("main"));
    let out = text(&p, &TextOptions { color: false });
    insta::assert_snapshot!("text_no_changes", out);
    let md = markdown(&p, GITHUB_COMMENT_LIMIT);
    // A plan claims only what it checked: against --base, nothing about the tenant.
    assert!(md[0].contains("No changes. The specs match the specs at main"), "{}", md[0]);
    assert!(md[0].contains("against `--base` `main`"), "{}", md[0]);
    assert!(!md[0].contains("The tenant matches"), "{}", md[0]);
    // Against a tenant: only a refreshed plan says the tenant matches; every format says
    // what was compared.
    let mut online = p.clone();
    online.base = None;
    online.tenant = "https://acme.immuta.com".into();
    for (refreshed, says) in [(true, "The tenant matches the specs."), (false, "--refresh=false")] {
        online.refreshed = refreshed;
        let text = text(&online, &TextOptions { color: false });
        let md = markdown(&online, GITHUB_COMMENT_LIMIT).join("");
        let doc: serde_json::Value = serde_json::from_str(&json(&online)).unwrap();
        assert!(text.contains(says) && md.contains(says), "{text}\n{md}");
        assert_eq!(doc["compared"], online.compared().as_str());
        assert!(text.contains(&online.compared()) && md.contains(&online.compared()), "{text}");
    }
}

fn many_policies(n: usize) -> Desired {
    let files: Vec<(String, String)> = (0..n)
        .map(|i| {
            (
                format!("policies/p{i:02}.yaml"),
                MASK_EMAIL
                    .replace("mask-email", &format!("mask-{i:02}"))
                    .replace("Mask email", &format!("Mask column {i:02}")),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = files.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    load(&refs)
}

/// Lines opening or closing a code fence.
fn fences(part: &str) -> usize {
    part.lines().filter(|l| l.trim_start().starts_with("```")).count()
}

#[test]
fn markdown_splits_at_object_boundaries_under_a_small_limit() {
    let d = many_policies(60);
    let p = run(&targets(&d, None), &State::new("t", SALT), None, None);
    assert_eq!(p.changes.len(), 60);
    let limit = 2_000;
    let parts = markdown(&p, limit);
    assert!(parts.len() > 1);
    let n = parts.len();
    for (i, part) in parts.iter().enumerate() {
        assert!(part.len() <= limit, "part {i} is {} bytes", part.len());
        assert!(fences(part).is_multiple_of(2), "unbalanced fence in part {i}:\n{part}");
        assert_eq!(part.matches("<details>").count(), part.matches("</details>").count(), "{part}");
        assert!(part.starts_with(&format!("### immuta-gitops plan (part {} of {n}):", i + 1)));
        assert!(!part.contains("diff truncated"), "{part}");
    }
    let all = parts.concat();
    for i in 0..60 {
        let summary = format!("<code>+ policy \"mask-{i:02}\"</code> will be created");
        assert_eq!(all.matches(&summary).count(), 1, "mask-{i:02}");
    }
    // Lists and the table continue in the next part with their heading repeated.
    let continued = |heading: &str| parts[1..].iter().filter(|p| p.contains(heading)).count();
    assert!(continued("| Action | Object | Notes |") >= 1, "{parts:#?}");
    assert!(continued("**Broken references**") >= 1, "{parts:#?}");
}

#[test]
fn one_huge_object_has_its_diff_truncated_with_a_note() {
    let mut ds = String::from(
        "connectionKey: huge\nconnection: {handler: Snowflake, hostname: h, warehouse: W, database: D}\nsources:\n",
    );
    for i in 0..5_000 {
        ds.push_str(&format!("  - {{schema: PUBLIC, tableName: TABLE_{i:05}}}\n"));
    }
    let d = load(&[("data/huge.yaml", &ds), ("policies/mask-email.yaml", MASK_EMAIL)]);
    let p = run(&targets(&d, None), &State::new("t", SALT), None, None);
    let limit = 20_000;
    let parts = markdown(&p, limit);
    assert!(parts.iter().all(|part| part.len() <= limit));
    assert!(parts.iter().all(|part| fences(part).is_multiple_of(2)));
    let all = parts.concat();
    assert!(
        all.contains("more lines; run `immuta-gitops plan` locally for the full diff"),
        "{all}"
    );
    assert!(all.contains("TABLE_00000"));
    assert!(!all.contains("TABLE_04999"));
    // The small object after it is whole.
    assert!(all.contains("Mask email"));
}

#[test]
fn every_part_stays_under_even_absurd_limits() {
    let p = sample();
    for limit in [0, 50, 300, 700, 1_000, 3_000] {
        for part in markdown(&p, limit) {
            assert!(part.len() <= limit, "{limit}: {}", part.len());
        }
    }
}

#[test]
fn text_shows_blocked_changes_dimmed_as_kept() {
    let p = sample();
    let out = text(&p, &TextOptions { color: true });
    let kept = out.lines().find(|l| l.contains("# kept: purpose \"Audit\"")).unwrap();
    assert!(kept.starts_with("\u{1b}[2m"), "{kept:?}");
}

#[test]
fn changes_render_in_plan_order() {
    let p = sample();
    let out = text(&p, &TextOptions { color: false });
    let positions: Vec<usize> = p
        .changes
        .iter()
        .filter(|c: &&Change| c.action != Action::NoOp)
        .map(|c| out.find(&c.id.to_string()).unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
}

const DOC: &str = include_str!("../../../docs/plan-json.md");

/// The JSON blocks of the format documentation.
fn doc_examples() -> Vec<serde_json::Value> {
    DOC.split("```json\n")
        .skip(1)
        .map(|b| serde_json::from_str(b.split("```").next().unwrap()).unwrap())
        .collect()
}

#[test]
fn the_documented_example_is_a_readable_saved_plan() {
    let examples = doc_examples();
    assert_eq!(examples.len(), 2);
    let saved = read_saved(&examples[0].to_string()).unwrap();
    assert_eq!(saved.changes.len(), 3);
    assert!(saved.changes[2].blocked);
}

#[test]
fn every_field_of_the_json_is_documented() {
    fn keys(v: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    out.insert(k.clone());
                    // Payload values are Immuta's fields, not ours.
                    if !matches!(k.as_str(), "before" | "after") {
                        keys(x, out);
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|x| keys(x, out)),
            _ => {}
        }
    }
    let mut all = std::collections::BTreeSet::new();
    keys(&serde_json::from_str(&json(&sample())).unwrap(), &mut all);
    for example in doc_examples() {
        keys(&example, &mut all);
    }
    let missing: Vec<&String> = all.iter().filter(|k| !DOC.contains(&format!("`{k}`"))).collect();
    assert!(missing.is_empty(), "undocumented fields: {missing:?}");
}

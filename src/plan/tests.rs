//! Planner tests: pure, no runtime.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use serde_json::json;

use super::fixtures::{Env, SALT, load, targets};
use super::observed::{Inventory, LicenseStatus, LiveLicense, LivePolicy};
use super::*;
use crate::spec::{Desired, RepoSettings};
use crate::state::State;

fn applied(targets: &[Target<'_>]) -> State {
    let mut state = State::new("t", SALT);
    for t in targets {
        state.upsert(t.entry(Some(1), vec![], "r1", "now"));
    }
    state
}

fn run(targets: &[Target<'_>], state: &State, observed: Option<&Observed>) -> Plan {
    plan(&PlanInput {
        targets,
        state,
        observed,
        settings: &RepoSettings::default(),
        tenant: "t".into(),
        revision: "r2".into(),
        base: None,
        refresh: false,
        now: SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000),
    })
}

/// A dry run's answer for a policy, purpose or project (no data sources added or removed).
fn object_dry_run(creating: bool, updating: bool) -> DryRun {
    DryRun::Object {
        creating,
        updating,
        data_sources_added: 0,
        data_sources_removed: 0,
        deleting_workspace: false,
    }
}

/// A policy as the tenant lists it.
fn live_policy(id: i64, key: Option<&str>, name: &str, system_generated: bool) -> LivePolicy {
    LivePolicy { id, policy_key: key.map(str::to_owned), name: name.into(), system_generated }
}

/// What a tenant shows that lists `policies` and nothing else.
fn listing_policies(policies: Vec<LivePolicy>) -> Observed {
    Observed { inventory: Inventory { policies, ..Inventory::default() }, ..Observed::default() }
}

/// The change of the object with natural key `key`.
fn change<'p>(p: &'p Plan, key: &str) -> &'p Change {
    p.changes.iter().find(|c| c.id.key == key).unwrap_or_else(|| panic!("no change of {key}"))
}

/// The plan of the spec `files` once the whole [`tree`] is applied (no tenant read).
fn after_tree(files: &[(&str, &str)]) -> Plan {
    let state = applied(&targets(&tree(), None));
    run(&targets(&load(files), None), &state, None)
}

fn actions(p: &Plan) -> Vec<(Action, &str)> {
    p.changes.iter().map(|c| (c.action, c.id.key.as_str())).collect()
}

const POLICY: &str = "policyKey: mask\nname: Mask\ntype: data\nactions:\n  - rules:\n      - type: Masking\n        config:\n          fields: [{type: anyTag}]\n          maskingConfig: {type: Hash}\n";
const PURPOSE: &str = "name: R\nsubpurposes:\n  - name: R.A\n  - name: R.B\n";
const PROJECT: &str = "projectKey: proj\nname: P\npurposes: [R.A]\n";
const DS: &str = "connectionKey: sales\nconnection:\n  handler: Snowflake\n  hostname: h\n  warehouse: w\n  database: D\n  password: ${PW}\nsources:\n  - {tableName: A, schema: S}\n  - {tableName: B, schema: S}\n";

fn tree() -> Desired {
    load(&[
        ("policy.yaml", POLICY),
        ("purpose.yaml", PURPOSE),
        ("project.yaml", PROJECT),
        ("ds.yaml", DS),
    ])
}

#[test]
fn an_empty_state_creates_everything_in_apply_order() {
    let d = tree();
    let t = targets(&d, None);
    let p = run(&t, &State::new("t", SALT), None);
    assert_eq!(
        actions(&p),
        [
            (Action::Create, "R"),
            (Action::Create, "sales"),
            (Action::Create, "mask"),
            (Action::Create, "proj")
        ]
    );
    assert_eq!(p.summary_line(), "4 to create, 0 to update, 0 to delete, 0 implicit effects");
    assert!(p.has_changes());
}

#[test]
fn after_apply_the_plan_is_empty() {
    let d = tree();
    let t = targets(&d, None);
    let p = run(&t, &applied(&t), None);
    assert!(!p.has_changes(), "{:#?}", p.changes);
    assert_eq!(p.summary().unchanged, 4);
}

#[test]
fn a_plan_without_changes_parses_no_payload_the_state_recorded() {
    let d = tree();
    let mut t = targets(&d, None);
    // The state as read from a file (payloads kept as text), shared by the targets whose
    // payload it recorded, as `pipeline::prepare` does.
    let mut state = applied(&t);
    for e in &mut state.objects {
        e.payload = crate::state::Payload::from_json(&e.payload.to_json()).unwrap();
    }
    for target in &mut t {
        let e = state.get(target.object.kind, &target.object.key).unwrap();
        assert_eq!(e.digest, target.digest);
        target.comparable = e.payload.clone();
    }
    let p = run(&t, &state, None);
    assert!(!p.has_changes(), "{:#?}", p.changes);
    assert!(state.objects.iter().all(|e| !e.payload.is_parsed()), "a payload was parsed");
    // A change reads what it is compared with (and what the access impact needs).
    let mut changed = targets(&d, None);
    changed.retain(|c| c.object.key != "mask");
    let p = run(&changed, &state, None);
    assert!(p.has_changes());
    let mask = state.get(Kind::Policy, "mask").unwrap();
    assert!(mask.payload.is_parsed());
    assert_eq!(
        p.changes.iter().find(|c| c.id.key == "mask").unwrap().before.as_ref(),
        Some(&mask.payload)
    );
}

#[test]
fn formatting_key_order_and_set_order_make_no_change() {
    let d = tree();
    let t = targets(&d, None);
    let state = applied(&t);
    let reordered = load(&[
        (
            "policy.yaml",
            "type: data\nname: Mask\npolicyKey: mask\nactions:\n- rules:\n  - config: {maskingConfig: {type: Hash}, fields: [{type: anyTag}]}\n    type: Masking\n",
        ),
        ("purpose.yaml", "subpurposes: [{name: R.B}, {name: R.A}]\nname: R\n"),
        ("project.yaml", PROJECT),
        ("ds.yaml", DS),
    ]);
    let p = run(&targets(&reordered, None), &state, None);
    assert!(!p.has_changes(), "{:#?}", p.changes);
}

#[test]
fn a_changed_field_is_an_update_with_the_field() {
    let p = after_tree(&[("policy.yaml", &POLICY.replace("name: Mask", "name: Mask all"))]);
    let update = change(&p, "mask");
    assert_eq!(update.action, Action::Update);
    assert_eq!(update.fields.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(), ["name"]);
    // The other three specs are gone: deletes, last, in reverse kind order.
    let deletes: Vec<_> =
        p.changes.iter().filter(|c| c.action == Action::Delete).map(|c| c.id.kind).collect();
    assert_eq!(deletes, [Kind::Project, Kind::DataSource, Kind::Purpose]);
}

#[test]
fn a_changed_secret_is_shown_as_sensitive_never_as_its_value() {
    let d = tree();
    let env1 = Env(HashMap::from([("PW", "canary-one")]));
    let env2 = Env(HashMap::from([("PW", "canary-two")]));
    let state = applied(&targets(&d, Some(&env1)));
    let same = run(&targets(&d, Some(&env1)), &state, None);
    assert!(!same.has_changes());
    let p = run(&targets(&d, Some(&env2)), &state, None);
    let c = change(&p, "sales");
    assert_eq!(c.action, Action::Update);
    assert_eq!(c.fields.len(), 1);
    assert!(c.fields[0].sensitive);
    assert_eq!(c.fields[0].after, Some(json!("(sensitive, changed)")));
    let dump = format!("{p:?}{state:?}");
    assert!(!dump.contains("canary"), "{dump}");
}

#[test]
fn dropping_a_table_is_a_destructive_implicit_effect() {
    let p = after_tree(&[("ds.yaml", &DS.replace("  - {tableName: B, schema: S}\n", ""))]);
    let c = change(&p, "sales");
    assert_eq!(
        c.effects,
        vec![Effect::TablesRemoved { tables: vec!["S.B".into()], hard_delete: false }]
    );
    assert!(c.is_destructive());
}

#[test]
fn a_new_hostname_replaces_the_connection() {
    let p = after_tree(&[("ds.yaml", &DS.replace("hostname: h", "hostname: h2"))]);
    let c = change(&p, "sales");
    assert_eq!(c.action, Action::Replace);
    assert!(c.is_destructive());
}

#[test]
fn prune_false_blocks_the_delete_and_is_not_destructive() {
    let d = load(&[("p.yaml", "name: Keep\ngitops: {prune: false}\n")]);
    let state = applied(&targets(&d, None));
    let p = run(&[], &state, None);
    assert_eq!(p.changes.len(), 1);
    assert!(p.changes[0].blocked.is_some());
    assert!(!p.changes[0].write);
    assert!(!p.changes[0].is_destructive());
    let safety = Safety { allow_destroy: false, force: false, max_delete_percent: 25 };
    assert!(refusals(&p, &state, &safety).is_empty());
}

#[test]
fn deleting_everything_or_too_much_is_refused_without_force() {
    let d = tree();
    let state = applied(&targets(&d, None));
    let p = run(&[], &state, None);
    let strict = Safety { allow_destroy: true, force: false, max_delete_percent: 25 };
    let r = refusals(&p, &state, &strict);
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(r[0].message.contains("deletes every managed object"), "{r:?}");
    assert!(refusals(&p, &state, &Safety { force: true, ..strict }).is_empty());

    // Two of four (50%) is above 25%.
    let d2 = load(&[("policy.yaml", POLICY), ("purpose.yaml", PURPOSE)]);
    let p = run(&targets(&d2, None), &state, None);
    assert!(refusals(&p, &state, &strict)[0].message.contains("more than 25%"));
    // One of four is never a mass deletion.
    let d3 = load(&[("policy.yaml", POLICY), ("purpose.yaml", PURPOSE), ("ds.yaml", DS)]);
    let p = run(&targets(&d3, None), &state, None);
    assert!(refusals(&p, &state, &strict).is_empty());
    // Destructive changes need --allow-destroy.
    let r = refusals(&p, &state, &Safety { allow_destroy: false, ..strict });
    assert!(r[0].hint.contains("--allow-destroy"), "{r:?}");
}

#[test]
fn data_sources_a_post_drops_count_towards_the_mass_deletion_guard() {
    // One connection of six tables is one object, but six data sources: cutting it to one
    // disables (or, with hardDelete, deletes) five of them.
    let six: String = (1..=6).map(|i| format!("  - {{tableName: T{i}, schema: S}}\n")).collect();
    let ds = |sources: &str| {
        DS.replace("  - {tableName: A, schema: S}\n  - {tableName: B, schema: S}\n", sources)
    };
    let before = load(&[("ds.yaml", &ds(&six))]);
    let mut state = applied(&targets(&before, None));
    state.objects[0].names = (1..=6).map(|i| format!("S T{i}")).collect();
    let after = load(&[("ds.yaml", &ds("  - {tableName: T1, schema: S}\n"))]);
    let p = run(&targets(&after, None), &state, None);
    assert_eq!(crate::plan::safety::deletions(&p.changes[0], &state), 5);
    let strict = Safety { allow_destroy: true, force: false, max_delete_percent: 25 };
    let r = refusals(&p, &state, &strict);
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(r[0].message.contains("5 of 6"), "{r:?}");
    assert!(refusals(&p, &state, &Safety { force: true, ..strict }).is_empty());
    // Deleting the connection deletes its six data sources: every managed one.
    let p = run(&[], &state, None);
    assert!(refusals(&p, &state, &strict)[0].message.contains("every managed object"));
}

#[test]
fn a_managed_object_a_listing_leaves_out_is_forgotten_only_once_a_read_by_id_confirms_it() {
    let d = load(&[("policy.yaml", POLICY)]);
    let state = applied(&targets(&d, None));
    let id = ObjectId::new(Kind::Policy, "mask");
    // An empty (or capped) listing, and nothing else asked: the delete is still sent.
    let empty = Observed::default();
    let p = run(&[], &state, Some(&empty));
    let c = change(&p, "mask");
    assert_eq!(c.action, Action::Delete);
    assert!(c.write, "an unverified object must be deleted, not forgotten");
    assert!(c.reason.as_deref().unwrap().starts_with("missing on the tenant: not verified"));
    // The read by id finds it: the listing lied; a plain delete.
    let mut observed = Observed::default();
    observed.inventory.read_by_id = vec![(id.clone(), true)];
    let c = run(&[], &state, Some(&observed)).changes.remove(0);
    assert!(c.write && c.reason.is_none(), "{c:?}");
    // The read by id answers 404: gone, only the state changes.
    observed.inventory.read_by_id = vec![(id, false)];
    let c = run(&[], &state, Some(&observed)).changes.remove(0);
    assert!(!c.write);
    assert!(c.reason.as_deref().unwrap().starts_with("already deleted on the tenant (confirmed"));
}

#[test]
fn raising_the_repository_safety_settings_is_shown_until_accepted() {
    let state = State::new("t", SALT);
    let raised =
        RepoSettings { allow_destroy: true, max_delete_percent: 100, ..RepoSettings::default() };
    let plan_with = |state: &State| {
        plan(&PlanInput {
            targets: &[],
            state,
            observed: None,
            settings: &raised,
            tenant: "t".into(),
            revision: "r".into(),
            base: None,
            refresh: false,
            now: SystemTime::UNIX_EPOCH,
        })
    };
    let p = plan_with(&state);
    let w = p.warnings.iter().find(|w| w.code == "settings-raised").expect("a warning");
    assert!(w.message.contains("`allowDestroy` false -> true"), "{}", w.message);
    assert!(w.message.contains("`maxDeletePercent` 25 -> 100"), "{}", w.message);
    let mut accepted = state.clone();
    accepted.safety =
        Some(crate::state::SafetySettings { allow_destroy: true, max_delete_percent: 100 });
    assert!(plan_with(&accepted).warnings.iter().all(|w| w.code != "settings-raised"));
}

#[test]
fn existing_objects_are_adopted_without_a_write_when_identical() {
    let d = load(&[("policy.yaml", POLICY)]);
    let t = targets(&d, None);
    let mut observed = listing_policies(vec![live_policy(7, Some("mask"), "Mask", false)]);
    let id = ObjectId::new(Kind::Policy, "mask");
    observed.dry_runs.insert(id.clone(), object_dry_run(false, false));
    let p = run(&t, &State::new("t", SALT), Some(&observed));
    assert_eq!(p.changes[0].action, Action::Adopt);
    assert!(!p.changes[0].write);
    assert_eq!(p.changes[0].live_id, Some(7));
    observed.dry_runs.insert(id, object_dry_run(false, true));
    let p = run(&t, &State::new("t", SALT), Some(&observed));
    assert!(p.changes[0].write);
}

#[test]
fn objects_deleted_outside_are_created_again_and_changes_outside_are_updated() {
    let d = load(&[("policy.yaml", POLICY)]);
    let t = targets(&d, None);
    let state = applied(&t);
    let empty = Observed::default();
    let p = run(&t, &state, Some(&empty));
    assert_eq!(p.changes[0].action, Action::Create);
    assert!(p.changes[0].reason.as_deref().unwrap().contains("deleted outside"));

    let mut observed = listing_policies(vec![live_policy(1, Some("mask"), "Mask", false)]);
    assert!(!run(&t, &state, Some(&observed)).has_changes());
    observed.dry_runs.insert(ObjectId::new(Kind::Policy, "mask"), object_dry_run(false, true));
    let p = run(&t, &state, Some(&observed));
    assert_eq!(p.changes[0].action, Action::Update);
    let reason = p.changes[0].reason.clone().unwrap();
    // What the tenant reported, and that its listing cannot tell which field was edited.
    assert!(reason.contains("changed outside"), "{reason}");
    assert!(reason.contains("the tenant's dry run says posting the spec would update it"));
    assert!(reason.contains("same `name`") && reason.contains("compare it on the tenant"));
    // A field the listing does show is named, with both values.
    let mut renamed = listing_policies(vec![live_policy(1, Some("mask"), "Mask (edited)", false)]);
    renamed.dry_runs = observed.dry_runs.clone();
    let reason = run(&t, &state, Some(&renamed)).changes[0].reason.clone().unwrap();
    assert!(
        reason.contains("`name` differs: the tenant lists `Mask (edited)`, the spec says `Mask`"),
        "{reason}"
    );
}

#[test]
fn rejected_dry_runs_are_plan_errors() {
    let d = load(&[("policy.yaml", POLICY)]);
    let t = targets(&d, None);
    let mut observed = Observed::default();
    observed.dry_runs.insert(
        ObjectId::new(Kind::Policy, "mask"),
        DryRun::Rejected { status: 400, message: "K-Anonymization is not enabled".into() },
    );
    let p = run(&t, &State::new("t", SALT), Some(&observed));
    assert_eq!(p.errors.len(), 1);
    assert!(
        !refusals(
            &p,
            &State::new("t", SALT),
            &Safety { allow_destroy: true, force: true, max_delete_percent: 100 }
        )
        .is_empty()
    );
}

/// A tenant with license `id` (10 seats) expiring on `expires`, and `(active users, seats)`.
fn licensed(id: i64, expires: &str, (active_users, seats): (i64, i64)) -> Inventory {
    Inventory {
        licenses: Some(vec![LiveLicense {
            id: Some(id),
            seats: Some(10),
            expires: Some(expires.into()),
        }]),
        license_status: Some(LicenseStatus { active_users, seats }),
        ..Inventory::default()
    }
}

#[test]
fn k_anonymization_schema_monitoring_and_license_warnings() {
    let d = load(&[
        ("k.yaml", &POLICY.replace("type: Hash", "type: K-Anonymization")),
        (
            "ds.yaml",
            "connectionKey: all\nconnection: {handler: Databricks, hostname: h, httpPath: p}\nsources: [{all: true}]\n",
        ),
        ("l.yaml", "licenseKey: IMMUTA-TEST\n"),
    ]);
    let t = targets(&d, None);
    let observed =
        Observed { inventory: licensed(3, "2030-03-20", (10, 10)), ..Observed::default() };
    let p = run(&t, &State::new("t", SALT), Some(&observed));
    let codes: Vec<&str> = p.warnings.iter().map(|w| w.code).collect();
    assert_eq!(
        codes,
        ["schema-monitoring", "k-anonymization", "license-expiry", "license-seats"],
        "{:#?}",
        p.warnings
    );
    assert!(p.warnings[1].message.contains("metadata database"));

    // Specs that manage no license key still warn: an expired license stops the tenant.
    let policies_only = load(&[("policy.yaml", POLICY)]);
    let p = run(&targets(&policies_only, None), &State::new("t", SALT), Some(&observed));
    let codes: Vec<&str> = p.warnings.iter().map(|w| w.code).collect();
    assert_eq!(codes, ["license-expiry", "license-seats"], "{:#?}", p.warnings);
}

#[test]
fn unmanaged_objects_are_listed_not_touched() {
    let d = load(&[("policy.yaml", POLICY)]);
    let t = targets(&d, None);
    let observed = listing_policies(vec![
        live_policy(1, Some("mask"), "Mask", false),
        live_policy(2, Some("by-hand"), "By hand", false),
        live_policy(3, None, "New Column Added", true),
    ]);
    let p = run(&t, &applied(&t), Some(&observed));
    assert_eq!(
        p.unmanaged,
        vec![Unmanaged { kind: Kind::Policy, name: "by-hand".into(), id: Some(2) }]
    );
    assert!(!p.has_changes());
}

#[test]
fn fingerprints_change_with_specs_state_and_tenant() {
    let d = tree();
    let t = targets(&d, None);
    let state = applied(&t);
    let a = run(&t, &state, Some(&Observed::default()));
    let b = run(&t, &state, Some(&Observed::default()));
    assert_eq!(a.fingerprint, b.fingerprint);
    let c = run(&t, &State::new("t", SALT), Some(&Observed::default()));
    assert_ne!(a.fingerprint.state, c.fingerprint.state);
    let d2 = load(&[("policy.yaml", &POLICY.replace("Mask\n", "Mask 2\n"))]);
    let e = run(&targets(&d2, None), &state, Some(&Observed::default()));
    assert_ne!(a.fingerprint.specs, e.fingerprint.specs);
}

#[test]
fn days_until_reads_dates_and_timestamps() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000); // 2030-03-17
    assert_eq!(days_until("2030-03-20", now), Some(2));
    assert_eq!(days_until("2030-03-20T00:00:00.000Z", now), Some(2));
    assert_eq!(days_until("2030-03-10", now), Some(-7));
    assert_eq!(days_until("garbage", now), None);
}

#[test]
fn the_live_fingerprint_covers_listings_and_dry_runs() {
    let empty = Observed::default();
    let mut with_dry_run = Observed::default();
    with_dry_run.dry_runs.insert(ObjectId::new(Kind::Policy, "p"), object_dry_run(true, false));
    let mut other_answer = with_dry_run.clone();
    other_answer.dry_runs.insert(ObjectId::new(Kind::Policy, "p"), object_dry_run(false, true));
    let mut listed = Observed::default();
    listed.inventory.policies.push(live_policy(1, None, "x", false));
    let prints: std::collections::BTreeSet<String> =
        [&empty, &with_dry_run, &other_answer, &listed].iter().map(|o| o.fingerprint()).collect();
    assert_eq!(prints.len(), 4);
    // Streamed into the hash, the fingerprint is what hashing the JSON texts gave (saved plans
    // made before keep their fingerprints).
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let pairs: Vec<_> = with_dry_run.dry_runs.iter().collect();
    for text in [
        serde_json::to_string(&with_dry_run.inventory).unwrap(),
        serde_json::to_string(&pairs).unwrap(),
    ] {
        h.update(text.as_bytes());
        h.update([0]);
    }
    assert_eq!(with_dry_run.fingerprint(), hex::encode(&h.finalize()[..16]));
}

#[test]
fn adding_prune_protection_to_a_managed_object_is_a_state_only_change() {
    let d = tree();
    let t = targets(&d, None);
    let state = applied(&t);
    let protected =
        POLICY.replace("policyKey: mask\n", "policyKey: mask\ngitops: {prune: false}\n");
    let d2 = load(&[
        ("policy.yaml", protected.as_str()),
        ("purpose.yaml", PURPOSE),
        ("project.yaml", PROJECT),
        ("ds.yaml", DS),
    ]);
    let t2 = targets(&d2, None);
    let p = run(&t2, &state, None);
    let c = change(&p, "mask");
    assert_eq!((c.action, c.write), (Action::Update, false), "{c:#?}");
    assert!(c.fields.is_empty() && !c.is_destructive());
    assert!(p.has_changes());
    // Once recorded, the plan is empty again.
    let mut state = state;
    let mut entry = state.get(Kind::Policy, "mask").unwrap().clone();
    entry.prune = false;
    state.upsert(entry);
    assert!(!run(&t2, &state, None).has_changes());
}

#[test]
fn adopting_over_more_tables_or_subpurposes_than_the_spec_is_destructive() {
    let d = tree();
    let t = targets(&d, None);
    let mut observed = Observed::default();
    observed.inventory.data_keys.insert("sales".into(), true);
    for (id, name) in [(1, "R"), (2, "R.A"), (3, "R.B"), (4, "R.C")] {
        observed.inventory.purposes.push(super::observed::LivePurpose {
            id: Some(id),
            name: name.into(),
            system_generated: false,
        });
    }
    observed.dry_runs.insert(
        ObjectId::new(Kind::DataSource, "sales"),
        DryRun::Data {
            creating: vec![],
            updating: vec![],
            deleting: vec!["s c".into()],
            no_change: vec!["s a".into(), "s b".into()],
            detection_running: false,
            tags_updated: false,
        },
    );
    observed.dry_runs.insert(ObjectId::new(Kind::Purpose, "R"), object_dry_run(false, true));
    let p = run(&t, &State::new("t", SALT), Some(&observed));
    let ds = change(&p, "sales");
    assert_eq!(ds.action, Action::Adopt);
    assert_eq!(
        ds.effects,
        [Effect::TablesRemoved { tables: vec!["s c".into()], hard_delete: false }]
    );
    assert!(ds.is_destructive());
    let purpose = change(&p, "R");
    assert_eq!(purpose.action, Action::Adopt);
    assert_eq!(purpose.effects, [Effect::SubpurposesRemoved { names: vec!["R.C".into()] }]);
}

#[test]
fn every_action_has_one_machine_spelling_for_json_serde_and_parsing() {
    let doc = include_str!("../../docs/plan-json.md");
    for a in Action::ALL {
        assert_eq!(Action::parse(a.as_str()), Some(a));
        assert_eq!(serde_json::to_value(a).unwrap(), json!(a.as_str()));
        assert!(doc.contains(&format!("`{}`", a.as_str())), "{} is not documented", a.as_str());
    }
    assert_eq!(Action::NoOp.as_str(), "no_change");
    assert_eq!(Action::parse("no_op"), None);
}

#[test]
fn license_status_uses_the_plans_license_rule_and_says_when_there_is_no_license() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000); // 2030-03-17
    let lapsed = licensed(3, "2030-03-20", (11, 10));
    let messages = |w: Vec<Warning>| w.into_iter().map(|w| w.message).collect::<Vec<_>>();
    assert_eq!(
        messages(license_status_warnings(&lapsed, now)),
        ["license 3 expires in 2 days", "11 of 10 licensed seats are used (110%)"]
    );
    assert_eq!(license_status_warnings(&lapsed, now), license_warnings(&lapsed, now));

    // At the thresholds exactly: nothing to say.
    let at_limits = licensed(4, "2030-04-17", (9, 10)); // expires EXPIRY_WARNING_DAYS from now
    assert_eq!(days_until("2030-04-17", now), Some(EXPIRY_WARNING_DAYS));
    assert_eq!(SEATS_WARNING_PERCENT, 90);
    assert!(license_status_warnings(&at_limits, now).is_empty());

    let none = Inventory { licenses: Some(vec![]), ..Inventory::default() };
    assert_eq!(messages(license_status_warnings(&none, now)), ["the tenant has no license"]);
    assert!(license_warnings(&none, now).is_empty(), "plans do not warn about a missing license");
}

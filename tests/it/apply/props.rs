//! Property: for any short sequence of spec edits, plan-then-apply converges (the next plan is
//! empty) and the tenant holds exactly what the specs say. Driven through the library (load,
//! observe, plan, apply with a state store) against one emulator, reset between cases.

use std::collections::{BTreeMap, BTreeSet};

use immuta_emulator::{ADMIN_KEY, Emulator};
use immuta_gitops::live::{Client, ClientConfig};
use immuta_gitops::snapshot::Snapshot;
use proptest::prelude::*;
use serde_json::Value;

use crate::support::emulator_config;
use crate::support::tenant::{View, reconcile};

/// The spec tree, as a model.
#[derive(Debug, Clone)]
struct Model {
    /// Policies `p0..p3` present, each with a variant of its name.
    policies: BTreeMap<u8, bool>,
    /// Tables `T0..T3` of connection `lake` (no spec file when empty: the connection is deleted).
    tables: BTreeSet<u8>,
    /// Whether `Analytics` lists the subpurpose `Analytics.Extra`.
    extra_subpurpose: bool,
    /// Which `tableTags` set the connection has.
    tags: u8,
    /// Whether project `proj-b` exists (`proj-a` always does).
    project_b: bool,
}

#[derive(Debug, Clone)]
enum Edit {
    AddPolicy(u8),
    RemovePolicy(u8),
    ChangePolicy(u8),
    AddTable(u8),
    RemoveTable(u8),
    ToggleSubpurpose,
    SetTableTags(u8),
    ToggleProject,
}

/// `tableTags` as written, and as the tenant must hold them (sorted).
const TAGS: [(&str, &[&str]); 3] = [
    ("[Dept.Sales]", &["Dept.Sales"]),
    ("[Dept.Finance, Confidential]", &["Confidential", "Dept.Finance"]),
    ("[]", &[]),
];

impl Model {
    fn initial() -> Model {
        Model {
            policies: BTreeMap::from([(0, false), (1, false)]),
            tables: BTreeSet::from([0, 1]),
            extra_subpurpose: true,
            tags: 0,
            project_b: false,
        }
    }

    fn edit(&mut self, e: &Edit) {
        match *e {
            Edit::AddPolicy(i) => {
                self.policies.entry(i).or_insert(false);
            }
            Edit::RemovePolicy(i) => {
                self.policies.remove(&i);
            }
            Edit::ChangePolicy(i) => {
                if let Some(v) = self.policies.get_mut(&i) {
                    *v = !*v;
                }
            }
            Edit::AddTable(i) => {
                self.tables.insert(i);
            }
            Edit::RemoveTable(i) => {
                self.tables.remove(&i);
            }
            Edit::ToggleSubpurpose => self.extra_subpurpose = !self.extra_subpurpose,
            Edit::SetTableTags(t) => self.tags = t,
            Edit::ToggleProject => self.project_b = !self.project_b,
        }
    }

    fn files(&self) -> Vec<(String, String)> {
        let mut files = Vec::new();
        let extra = if self.extra_subpurpose { "  - name: Analytics.Extra\n" } else { "" };
        files.push((
            "purposes/analytics.yaml".into(),
            format!("name: Analytics\nsubpurposes:\n  - name: Analytics.Base\n{extra}"),
        ));
        if !self.tables.is_empty() {
            let sources: String = self
                .tables
                .iter()
                .map(|t| format!("  - {{tableName: T{t}, schema: PUBLIC}}\n"))
                .collect();
            files.push((
                "data/lake.yaml".into(),
                format!(
                    "connectionKey: lake\nconnection: {{handler: PostgreSQL, hostname: lake.example.com, database: LAKE}}\n\
                     options:\n  tableTags: {}\nsources:\n{sources}",
                    TAGS[usize::from(self.tags)].0
                ),
            ));
        }
        for (i, v2) in &self.policies {
            let name = if *v2 { format!("Policy {i} (v2)") } else { format!("Policy {i}") };
            files.push((
                format!("policies/p{i}.yaml"),
                format!(
                    "name: {name}\npolicyKey: p{i}\ntype: data\nactions:\n  - rules:\n      - type: Masking\n        \
                     config:\n          fields: [{{type: columnTags, columnTag: Tag.{i}}}]\n          \
                     maskingConfig: {{type: Hash}}\ncircumstances:\n  - {{type: columnTags, columnTag: Tag.{i}}}\n"
                ),
            ));
        }
        files.push((
            "projects/a.yaml".into(),
            "projectKey: proj-a\nname: A\npurposes: [Analytics]\n".into(),
        ));
        if self.project_b {
            files.push(("projects/b.yaml".into(), "projectKey: proj-b\nname: B\n".into()));
        }
        files
    }

    /// What the tenant must hold.
    fn expected(&self) -> (BTreeSet<String>, BTreeSet<String>, BTreeSet<String>, Vec<String>) {
        let policies = self.policies.keys().map(|i| format!("p{i}")).collect();
        let mut purposes: BTreeSet<String> =
            ["Analytics", "Analytics.Base"].map(String::from).into();
        if self.extra_subpurpose {
            purposes.insert("Analytics.Extra".into());
        }
        let mut projects: BTreeSet<String> = BTreeSet::from(["proj-a".to_owned()]);
        if self.project_b {
            projects.insert("proj-b".into());
        }
        let tables = self.tables.iter().map(|t| format!("public t{t}")).collect();
        (policies, purposes, projects, tables)
    }
}

fn edit_strategy() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (0..4u8).prop_map(Edit::AddPolicy),
        (0..4u8).prop_map(Edit::RemovePolicy),
        (0..4u8).prop_map(Edit::ChangePolicy),
        (0..4u8).prop_map(Edit::AddTable),
        (0..4u8).prop_map(Edit::RemoveTable),
        Just(Edit::ToggleSubpurpose),
        (0..3u8).prop_map(Edit::SetTableTags),
        Just(Edit::ToggleProject),
    ]
}

async fn tenant_state(http: &reqwest::Client, base: &str) -> Value {
    http.get(format!("{base}/_emulator/state")).send().await.unwrap().json().await.unwrap()
}

fn check(model: &Model, state: &Value) -> Result<(), String> {
    let view = View::of(state);
    let (policies, purposes, projects, tables) = model.expected();
    let got =
        (view.policies.clone(), view.purposes.clone(), view.projects.clone(), view.active("lake"));
    if got != (policies.clone(), purposes.clone(), projects.clone(), tables.clone()) {
        return Err(format!(
            "the tenant differs from the specs:\n  got      {got:?}\n  expected {:?}",
            (policies, purposes, projects, tables)
        ));
    }
    if !view.duplicates.is_empty() {
        return Err(format!("duplicated: {:?}", view.duplicates));
    }
    if model.tables.is_empty() && view.connections.contains("lake") {
        return Err("the deleted connection is still there".into());
    }
    let tags: Vec<String> =
        TAGS[usize::from(model.tags)].1.iter().map(|t| (*t).to_owned()).collect();
    for d in state["dataSources"].as_object().into_iter().flat_map(|m| m.values()) {
        if d["connectionKey"] == "lake" && d["deleted"] == false {
            let got: Vec<String> = serde_json::from_value(d["tableTags"].clone()).unwrap();
            if got != tags {
                return Err(format!("{}: tableTags {got:?}, expected {tags:?}", d["name"]));
            }
        }
    }
    Ok(())
}

#[test]
fn random_edit_sequences_converge_to_the_specs() {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let emu = rt.block_on(Emulator::start_with(emulator_config())).expect("the emulator starts");
    let base = emu.base_url();
    let http = crate::support::tenant::http_client();
    let mut config = ClientConfig::new(&base, ADMIN_KEY.to_owned().into());
    config.retry.min_delay = std::time::Duration::from_millis(5);
    config.retry.max_delay = std::time::Duration::from_millis(40);
    let client = rt.block_on(async { Client::new(config) }).unwrap();

    let cfg = ProptestConfig {
        cases: 16,
        max_shrink_iters: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(cfg, |(edits in prop::collection::vec(edit_strategy(), 1..6))| {
        let result: Result<(), String> = rt.block_on(async {
            http.post(format!("{base}/_emulator/reset")).send().await.unwrap();
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("state.json");
            let mut model = Model::initial();
            let apply = |model: &Model| {
                let snapshot = Snapshot::from_texts(model.files());
                let path = path.clone();
                let client = client.clone();
                async move { reconcile(&client, &path, "props", &snapshot, BTreeMap::new()).await }
            };
            apply(&model).await.map_err(|e| format!("initial: {e}"))?;
            check(&model, &tenant_state(&http, &base).await)?;
            for (n, e) in edits.iter().enumerate() {
                model.edit(e);
                apply(&model).await.map_err(|err| format!("after edit {n} {e:?}: {err}"))?;
                check(&model, &tenant_state(&http, &base).await).map_err(|err| format!("after edit {n} {e:?}: {err}"))?;
            }
            Ok(())
        });
        prop_assert!(result.is_ok(), "{}", result.unwrap_err());
    });
    drop(emu);
}

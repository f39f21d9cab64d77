//! Implicit effects of Immuta's full-replace semantics, spelled out for reviewers.
//!
//! A V2 post replaces a whole connection's table set, its `tableTags` and its owners; a
//! purpose post replaces its subpurposes; a project post replaces its data sources and purposes;
//! and new connection details under an existing `connectionKey` delete and recreate every data
//! source of the key. None of that is visible in a field diff, so it is listed here.
//!
//! So are the consequences of the query parameters a post carries (the `gitops:` options),
//! which no field shows either: a project losing its `workspace` with
//! `deleteDataSourcesOnWorkspaceDelete` deletes the workspace's data and data sources
//! (destructive); a policy posted with `reCertify` must be certified again; a purpose posted
//! with `reAcknowledgeRequired` must be acknowledged again by the members of the projects using
//! it.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::observed::DryRun;
use crate::spec::{Kind, ObjectOptions};

/// Connection fields that identify the remote database. Changing any of them under an existing
/// `connectionKey` makes Immuta delete and recreate every data source of the key; other
/// connection fields (credentials) update in place. (Our reading of "new connection
/// information"; the emulator makes the same assumption.)
pub const CONNECTION_IDENTITY: &[&str] = &["handler", "hostname", "port", "database", "httpPath"];

/// Something Immuta will do that the field diff does not show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Effect {
    /// Tables dropped from `sources`: their data sources are disabled, or deleted with
    /// `hardDelete`.
    TablesRemoved {
        /// Tables (`SCHEMA.TABLE`) or, when only the server knows, data source names.
        tables: Vec<String>,
        /// Deleted (true) or disabled (false).
        hard_delete: bool,
    },
    /// `options.tableTags` replaced on every data source of the connection.
    TableTagsReplaced {
        /// Tags removed from every data source.
        removed: Vec<String>,
        /// Tags added to every data source.
        added: Vec<String>,
    },
    /// Owners replaced on every data source of the connection.
    OwnersReplaced {
        /// Owners removed (`user:name`, `group:name`).
        removed: Vec<String>,
        /// Owners added.
        added: Vec<String>,
        /// `owners: []`: every owner but the caller is removed.
        all_but_caller: bool,
    },
    /// Connection details changed: every data source of the key is deleted and recreated
    /// (new ids; project memberships and manual edits on them are lost).
    DataSourcesRecreated {
        /// The identity fields that changed.
        fields: Vec<String>,
        /// The data sources that will be deleted, where known.
        names: Vec<String>,
    },
    /// Subpurposes no longer listed are deleted.
    SubpurposesRemoved {
        /// Full names.
        names: Vec<String>,
    },
    /// Data sources removed from a project.
    ProjectDataSourcesRemoved {
        /// Data source names.
        names: Vec<String>,
    },
    /// Purposes removed from a project.
    ProjectPurposesRemoved {
        /// Purpose names.
        names: Vec<String>,
    },
    /// The project's workspace is removed; with `deleteDataSourcesOnWorkspaceDelete`, its data
    /// and data sources are deleted with it.
    WorkspaceDeleted {
        /// Posted with `deleteDataSourcesOnWorkspaceDelete=true`.
        deletes_data: bool,
    },
    /// Posted with `reCertify=true`: the policy must be certified again on the data sources it
    /// applies to.
    Recertification,
    /// Posted with `reAcknowledgeRequired=true`: members of the projects using these purposes
    /// must acknowledge them again.
    ReAcknowledgement {
        /// The purpose and its subpurposes.
        purposes: Vec<String>,
    },
}

impl Effect {
    /// Whether the effect destroys something (needs `--allow-destroy`).
    pub fn is_destructive(&self) -> bool {
        matches!(
            self,
            Effect::TablesRemoved { .. }
                | Effect::DataSourcesRecreated { .. }
                | Effect::SubpurposesRemoved { .. }
                | Effect::WorkspaceDeleted { deletes_data: true }
        )
    }

    /// One line for people.
    pub fn describe(&self) -> String {
        fn list(items: &[String]) -> String {
            items.iter().map(|i| format!("`{i}`")).collect::<Vec<_>>().join(", ")
        }
        match self {
            Effect::TablesRemoved { tables, hard_delete: true } => {
                format!(
                    "data sources of tables no longer listed are DELETED (hardDelete): {}",
                    list(tables)
                )
            }
            Effect::TablesRemoved { tables, hard_delete: false } => {
                format!("data sources of tables no longer listed are disabled: {}", list(tables))
            }
            Effect::TableTagsReplaced { removed, added } => {
                let mut parts = Vec::new();
                if !removed.is_empty() {
                    parts.push(format!("removes {} from", list(removed)));
                }
                if !added.is_empty() {
                    parts.push(format!("adds {} to", list(added)));
                }
                format!(
                    "tableTags are replaced: {} every data source of the connection",
                    parts.join(" and ")
                )
            }
            Effect::OwnersReplaced { all_but_caller: true, removed, .. } if removed.is_empty() => {
                "owners: [] removes every owner of every data source except the caller".to_owned()
            }
            Effect::OwnersReplaced { all_but_caller: true, removed, .. } => {
                format!("owners: [] removes every owner except the caller: {}", list(removed))
            }
            Effect::OwnersReplaced { removed, added, .. } if removed.is_empty() => format!(
                "owners are replaced on every data source: adds {}; owners not listed (such as the creator) are removed",
                list(added)
            ),
            Effect::OwnersReplaced { removed, added, .. } => {
                let mut parts = vec![format!("removes {}", list(removed))];
                if !added.is_empty() {
                    parts.push(format!("adds {}", list(added)));
                }
                format!("owners are replaced on every data source: {}", parts.join(", "))
            }
            Effect::DataSourcesRecreated { fields, names } if names.is_empty() => format!(
                "connection changed ({}): every data source of the key is deleted and recreated with new ids",
                list(fields)
            ),
            Effect::DataSourcesRecreated { fields, names } => format!(
                "connection changed ({}): every data source of the key is deleted and recreated with new ids: {}",
                list(fields),
                list(names)
            ),
            Effect::SubpurposesRemoved { names } => {
                format!("subpurposes no longer listed are deleted: {}", list(names))
            }
            Effect::ProjectDataSourcesRemoved { names } => {
                format!("data sources removed from the project: {}", list(names))
            }
            Effect::ProjectPurposesRemoved { names } => {
                format!("purposes removed from the project: {}", list(names))
            }
            Effect::WorkspaceDeleted { deletes_data: true } => {
                "the project's workspace is removed and, with deleteDataSourcesOnWorkspaceDelete, \
                 its data and data sources are DELETED"
                    .to_owned()
            }
            Effect::WorkspaceDeleted { deletes_data: false } => {
                "the project's workspace is removed (its data is kept: \
                 deleteDataSourcesOnWorkspaceDelete is not set)"
                    .to_owned()
            }
            Effect::Recertification => {
                "posted with reCertify: the policy must be certified again on every data source it \
                 applies to"
                    .to_owned()
            }
            Effect::ReAcknowledgement { purposes } => format!(
                "posted with reAcknowledgeRequired: members of the projects using {} must \
                 acknowledge the purpose statement again",
                list(purposes)
            ),
        }
    }
}

fn strings(v: Option<&Value>) -> BTreeSet<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

fn owners(v: Option<&Value>) -> Option<BTreeSet<String>> {
    v.and_then(Value::as_array).map(|a| {
        a.iter()
            .map(|o| {
                let kind = o.get("type").and_then(Value::as_str).unwrap_or("user");
                let name = o.get("name").and_then(Value::as_str).unwrap_or_default();
                format!("{kind}:{name}")
            })
            .collect()
    })
}

/// Explicit tables of a data-source payload, or `None` when it registers every table
/// (`sources` omitted, or an `all: true` entry).
pub fn explicit_tables(payload: &Value) -> Option<BTreeSet<String>> {
    let sources = payload.get("sources").and_then(Value::as_array)?;
    if sources.iter().any(|s| s.get("all").and_then(Value::as_bool) == Some(true)) {
        return None;
    }
    Some(
        sources
            .iter()
            .filter_map(|s| {
                if let Some(t) =
                    s.get("tableName").or_else(|| s.get("table")).and_then(Value::as_str)
                {
                    let schema = s.get("schema").and_then(Value::as_str).unwrap_or_default();
                    Some(format!("{schema}.{t}"))
                } else {
                    s.get("naming")
                        .and_then(|n| n.get("datasource"))
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                }
            })
            .collect(),
    )
}

/// Whether a data-source payload turns on schema monitoring.
pub fn schema_monitoring(payload: &Value) -> bool {
    explicit_tables(payload).is_none()
}

/// The identity fields that differ between two connections.
pub fn identity_changes(prev: &Value, next: &Value) -> Vec<String> {
    let (a, b) = (prev.get("connection"), next.get("connection"));
    CONNECTION_IDENTITY
        .iter()
        .filter(|f| a.and_then(|c| c.get(**f)) != b.and_then(|c| c.get(**f)))
        .map(|f| (*f).to_owned())
        .collect()
}

/// The subpurpose names of a purpose payload (recursively).
fn subpurposes(v: &Value, out: &mut BTreeSet<String>) {
    for s in v.get("subpurposes").and_then(Value::as_array).into_iter().flatten() {
        if let Some(n) = s.get("name").and_then(Value::as_str) {
            out.insert(n.to_owned());
        }
        subpurposes(s, out);
    }
}

/// What the query parameters of a post of `next` over `prev` (`None`: not known, an adoption)
/// cause (see the module docs); `dry` is the server's answer.
pub fn parameter_effects(
    kind: Kind,
    prev: Option<&Value>,
    next: &Value,
    options: &ObjectOptions,
    dry: Option<&DryRun>,
) -> Vec<Effect> {
    let mut out = Vec::new();
    match kind {
        Kind::Project => {
            let workspace = |v: &Value| v.get("workspace").is_some_and(|w| !w.is_null());
            let told = matches!(dry, Some(DryRun::Object { deleting_workspace: true, .. }));
            if told || prev.is_some_and(|p| workspace(p) && !workspace(next)) {
                out.push(Effect::WorkspaceDeleted {
                    deletes_data: options.delete_data_sources_on_workspace_delete,
                });
            }
        }
        Kind::Policy if options.re_certify => out.push(Effect::Recertification),
        Kind::Purpose if options.re_acknowledge_required => {
            let mut purposes = BTreeSet::new();
            if let Some(name) = next.get("name").and_then(Value::as_str) {
                purposes.insert(name.to_owned());
            }
            subpurposes(next, &mut purposes);
            out.push(Effect::ReAcknowledgement { purposes: purposes.into_iter().collect() });
        }
        _ => {}
    }
    out
}

/// The implicit effects of replacing `prev` (last applied, canonical) with `next` (canonical),
/// and of the query parameters `options` put on the post. `names` are the data sources the
/// connection produced last time; `dry` is the server's answer.
pub fn effects(
    kind: Kind,
    prev: &Value,
    next: &Value,
    names: &[String],
    dry: Option<&DryRun>,
    options: &ObjectOptions,
) -> Vec<Effect> {
    let mut out = replace_effects(kind, prev, next, names, dry);
    if !out.iter().any(|e| matches!(e, Effect::DataSourcesRecreated { .. })) {
        out.extend(parameter_effects(kind, Some(prev), next, options, dry));
    }
    out
}

/// The effects of Immuta's full-replace semantics.
fn replace_effects(
    kind: Kind,
    prev: &Value,
    next: &Value,
    names: &[String],
    dry: Option<&DryRun>,
) -> Vec<Effect> {
    let mut out = Vec::new();
    let diff =
        |a: &BTreeSet<String>, b: &BTreeSet<String>| a.difference(b).cloned().collect::<Vec<_>>();
    match kind {
        Kind::DataSource => {
            let fields = identity_changes(prev, next);
            if !fields.is_empty() {
                out.push(Effect::DataSourcesRecreated { fields, names: names.to_vec() });
                return out;
            }
            let hard_delete =
                next.get("options").and_then(|o| o.get("hardDelete")).and_then(Value::as_bool)
                    == Some(true);
            let mut removed = match (explicit_tables(prev), explicit_tables(next)) {
                (Some(a), Some(b)) => diff(&a, &b),
                _ => Vec::new(),
            };
            if removed.is_empty()
                && let Some(DryRun::Data { deleting, .. }) = dry
            {
                removed.clone_from(deleting);
            }
            if !removed.is_empty() {
                out.push(Effect::TablesRemoved { tables: removed, hard_delete });
            }
            let tag = |v: &Value| strings(v.get("options").and_then(|o| o.get("tableTags")));
            let (a, b) = (tag(prev), tag(next));
            if a != b {
                out.push(Effect::TableTagsReplaced { removed: diff(&a, &b), added: diff(&b, &a) });
            }
            match (owners(prev.get("owners")), owners(next.get("owners"))) {
                (_, None) => {}
                (before, Some(after)) if after.is_empty() => {
                    let removed: Vec<String> = before.unwrap_or_default().into_iter().collect();
                    if !removed.is_empty() || prev.get("owners").is_none() {
                        out.push(Effect::OwnersReplaced {
                            removed,
                            added: vec![],
                            all_but_caller: true,
                        });
                    }
                }
                (Some(before), Some(after)) if before != after => {
                    out.push(Effect::OwnersReplaced {
                        removed: diff(&before, &after),
                        added: diff(&after, &before),
                        all_but_caller: false,
                    })
                }
                // Listed for the first time: whoever owns the data sources now (at least the
                // caller that created them, or owners set by hand) is replaced by the list.
                (None, Some(after)) => out.push(Effect::OwnersReplaced {
                    removed: Vec::new(),
                    added: after.into_iter().collect(),
                    all_but_caller: false,
                }),
                _ => {}
            }
        }
        Kind::Purpose => {
            let (mut a, mut b) = (BTreeSet::new(), BTreeSet::new());
            subpurposes(prev, &mut a);
            subpurposes(next, &mut b);
            let names = diff(&a, &b);
            if !names.is_empty() {
                out.push(Effect::SubpurposesRemoved { names });
            }
        }
        Kind::Project => {
            let names = diff(&strings(prev.get("datasources")), &strings(next.get("datasources")));
            if !names.is_empty() {
                out.push(Effect::ProjectDataSourcesRemoved { names });
            }
            let names = diff(&strings(prev.get("purposes")), &strings(next.get("purposes")));
            if !names.is_empty() {
                out.push(Effect::ProjectPurposesRemoved { names });
            }
        }
        Kind::Policy | Kind::License => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ds(tables: &[&str], tags: &[&str], owners: Option<Value>) -> Value {
        let mut v = json!({
            "connectionKey": "c",
            "connection": {"handler": "Snowflake", "hostname": "h", "database": "D"},
            "options": {"tableTags": tags},
            "sources": tables.iter().map(|t| json!({"schema": "S", "tableName": t})).collect::<Vec<_>>(),
        });
        if let Some(o) = owners {
            v["owners"] = o;
        }
        v
    }

    #[test]
    fn dropped_tables_replaced_tags_and_owners_are_spelled_out() {
        let prev = ds(&["A", "B"], &["T1", "T2"], Some(json!([{"type": "user", "name": "u"}])));
        let next = ds(&["A"], &["T2", "T3"], Some(json!([])));
        let e = effects(Kind::DataSource, &prev, &next, &[], None, &ObjectOptions::default());
        assert_eq!(
            e,
            vec![
                Effect::TablesRemoved { tables: vec!["S.B".into()], hard_delete: false },
                Effect::TableTagsReplaced { removed: vec!["T1".into()], added: vec!["T3".into()] },
                Effect::OwnersReplaced {
                    removed: vec!["user:u".into()],
                    added: vec![],
                    all_but_caller: true
                },
            ]
        );
        assert!(e[0].is_destructive());
        assert!(!e[1].is_destructive());
    }

    #[test]
    fn owners_listed_for_the_first_time_replace_whoever_owns_now() {
        let prev = ds(&["A"], &[], None);
        let next = ds(&["A"], &[], Some(json!([{"type": "group", "name": "g"}])));
        let e = effects(Kind::DataSource, &prev, &next, &[], None, &ObjectOptions::default());
        assert_eq!(
            e,
            vec![Effect::OwnersReplaced {
                removed: vec![],
                added: vec!["group:g".into()],
                all_but_caller: false
            }]
        );
        assert!(e[0].describe().contains("owners not listed (such as the creator) are removed"));
    }

    #[test]
    fn absent_owners_leave_owners_alone() {
        let prev = ds(&["A"], &[], Some(json!([{"type": "user", "name": "u"}])));
        let next = ds(&["A"], &[], None);
        assert!(
            effects(Kind::DataSource, &prev, &next, &[], None, &ObjectOptions::default())
                .is_empty()
        );
    }

    #[test]
    fn a_new_hostname_recreates_every_data_source_but_a_new_password_does_not() {
        let prev = ds(&["A"], &[], None);
        let mut next = prev.clone();
        next["connection"]["password"] = json!("(sensitive:x)");
        assert!(
            effects(Kind::DataSource, &prev, &next, &[], None, &ObjectOptions::default())
                .is_empty()
        );
        next["connection"]["hostname"] = json!("h2");
        let e = effects(
            Kind::DataSource,
            &prev,
            &next,
            &["s a".into()],
            None,
            &ObjectOptions::default(),
        );
        assert_eq!(
            e,
            vec![Effect::DataSourcesRecreated {
                fields: vec!["hostname".into()],
                names: vec!["s a".into()]
            }]
        );
    }

    #[test]
    fn server_names_fill_in_when_the_spec_cannot_tell() {
        let mut prev = ds(&[], &[], None);
        prev["sources"] = json!([{"all": true}]);
        let next = ds(&["A"], &[], None);
        let dry = DryRun::Data {
            creating: vec![],
            updating: vec![],
            deleting: vec!["s b".into()],
            no_change: vec!["s a".into()],
            detection_running: false,
            tags_updated: false,
        };
        let e = effects(Kind::DataSource, &prev, &next, &[], Some(&dry), &ObjectOptions::default());
        assert_eq!(
            e,
            vec![Effect::TablesRemoved { tables: vec!["s b".into()], hard_delete: false }]
        );
    }

    #[test]
    fn purpose_and_project_removals() {
        let prev = json!({"name": "R", "subpurposes": [{"name": "R.A", "subpurposes": [{"name": "R.A.X"}]}, {"name": "R.B"}]});
        let next = json!({"name": "R", "subpurposes": [{"name": "R.B"}]});
        assert_eq!(
            effects(Kind::Purpose, &prev, &next, &[], None, &ObjectOptions::default()),
            vec![Effect::SubpurposesRemoved { names: vec!["R.A".into(), "R.A.X".into()] }]
        );
        let prev = json!({"datasources": ["a", "b"], "purposes": ["p"]});
        let next = json!({"datasources": ["a"]});
        assert_eq!(
            effects(Kind::Project, &prev, &next, &[], None, &ObjectOptions::default()).len(),
            2
        );
    }

    #[test]
    fn query_parameters_show_what_they_cause() {
        let with_workspace = json!({"projectKey": "p", "name": "P",
            "workspace": {"type": "databricks", "config": {}}});
        let without = json!({"projectKey": "p", "name": "P"});
        let plain = ObjectOptions::default();
        let deleting =
            ObjectOptions { delete_data_sources_on_workspace_delete: true, ..plain.clone() };
        let e = effects(Kind::Project, &with_workspace, &without, &[], None, &deleting);
        assert_eq!(e, vec![Effect::WorkspaceDeleted { deletes_data: true }]);
        assert!(e[0].is_destructive());
        assert!(e[0].describe().contains("DELETED"));
        let e = effects(Kind::Project, &with_workspace, &without, &[], None, &plain);
        assert_eq!(e, vec![Effect::WorkspaceDeleted { deletes_data: false }]);
        assert!(!e[0].is_destructive());
        // A workspace added outside, removed by posting the spec again: the dry run tells.
        let dry = DryRun::Object {
            creating: false,
            updating: true,
            data_sources_added: 0,
            data_sources_removed: 0,
            deleting_workspace: true,
        };
        let e = parameter_effects(Kind::Project, Some(&without), &without, &deleting, Some(&dry));
        assert_eq!(e, vec![Effect::WorkspaceDeleted { deletes_data: true }]);

        let certify = ObjectOptions { re_certify: true, ..plain.clone() };
        let policy = json!({"policyKey": "k"});
        assert_eq!(
            effects(Kind::Policy, &policy, &policy, &[], None, &certify),
            vec![Effect::Recertification]
        );
        let again = ObjectOptions { re_acknowledge_required: true, ..plain };
        let purpose = json!({"name": "R", "subpurposes": [{"name": "R.A"}]});
        let e = effects(Kind::Purpose, &purpose, &purpose, &[], None, &again);
        assert_eq!(e, vec![Effect::ReAcknowledgement { purposes: vec!["R".into(), "R.A".into()] }]);
        assert!(!e[0].is_destructive());
        assert!(e[0].describe().contains("`R`, `R.A`"), "{}", e[0].describe());
    }
}

//! References a plan leaves dangling (projects, exceptions, tags).

use super::*;

/// References the plan leaves dangling: projects naming data sources or purposes it removes
/// (errors: the project post would fail), exceptions naming purposes it removes, and policies
/// whose tags no longer match any managed column or table (warnings).
pub(super) fn references(
    before: &World,
    after: &World,
    interner: &Interner,
    changes: &Changes<'_>,
    tenant: Option<&TenantFacts>,
) -> Vec<BrokenReference> {
    let mut out = Vec::new();
    // Data-source names this plan removes, and why.
    let mut removed: BTreeMap<String, String> = BTreeMap::new();
    let mut kept: HashSet<String> = HashSet::new();
    for key in changes.connections {
        let tb = before.connections.get(*key);
        let ta = after.connections.get(*key);
        let ids: HashSet<&str> = ta.iter().flat_map(|t| t.iter()).map(|t| t.id()).collect();
        for t in tb.iter().flat_map(|t| t.iter()).filter(|t| t.id() != "*") {
            if !ids.contains(t.id()) {
                let why = if ta.is_none() {
                    format!("connection `{key}` is deleted")
                } else {
                    format!("table `{}` is dropped from connection `{key}`", t.id())
                };
                removed.insert(t.name().to_owned(), why);
            }
        }
        if ta.is_none() {
            for n in before.recorded_names.get(*key).into_iter().flatten() {
                removed
                    .entry(n.clone())
                    .or_insert_with(|| format!("connection `{key}` is deleted"));
            }
        }
        if let Some(t) = tenant {
            for n in t.deleting.get(*key).into_iter().flatten() {
                removed.entry(n.clone()).or_insert_with(|| {
                    format!("the tenant's dry run of connection `{key}` deletes or disables it")
                });
            }
            kept.extend(t.keeping.get(*key).into_iter().flatten().cloned());
        }
    }
    // A removed name is kept when a changed connection still produces it (a table moved
    // between connections); an unchanged connection cannot (names are unique).
    if !removed.is_empty() {
        for key in changes.connections {
            for t in after.connections.get(*key).into_iter().flat_map(|t| t.iter()) {
                kept.insert(t.name().to_owned());
            }
        }
    }
    removed.retain(|n, _| !kept.contains(n));
    let removed_purposes: BTreeSet<&String> = before.purposes.difference(&after.purposes).collect();
    let mut projects: Vec<&Arc<Project>> = after.projects.values().collect();
    projects.sort_by(|a, b| a.key.cmp(&b.key));
    for p in &projects {
        for ds in &p.datasources {
            if let Some(why) = removed.get(ds) {
                out.push(BrokenReference {
                    severity: Severity::Error,
                    code: "project-data-source",
                    object: ObjectId::new(Kind::Project, &p.key),
                    name: ds.clone(),
                    message: format!(
                        "project `{}` lists data source `{ds}`, which this plan removes ({why}); \
                         the project would name a data source that no longer exists: remove it \
                         from the project in the same change",
                        p.key
                    ),
                });
            } else if !kept.contains(ds) && removed.keys().any(|r| loose_name(r) == loose_name(ds))
            {
                out.push(BrokenReference {
                    severity: Severity::Warning,
                    code: "project-data-source",
                    object: ObjectId::new(Kind::Project, &p.key),
                    name: ds.clone(),
                    message: format!(
                        "project `{}` lists data source `{ds}`, whose name resembles one this plan \
                         removes; check that it still exists (rule N2)",
                        p.key
                    ),
                });
            }
        }
        for purpose in &p.purposes {
            if removed_purposes.contains(purpose) {
                out.push(BrokenReference {
                    severity: Severity::Error,
                    code: "project-purpose",
                    object: ObjectId::new(Kind::Project, &p.key),
                    name: purpose.clone(),
                    message: format!(
                        "project `{}` names purpose `{purpose}`, which this plan deletes: remove \
                         it from the project in the same change",
                        p.key
                    ),
                });
            }
        }
    }
    let mut policies: Vec<_> = after.policies.values().collect();
    policies.sort_by(|a, b| a.key.cmp(&b.key));
    for p in &policies {
        for purpose in p.purposes() {
            if removed_purposes.iter().any(|r| r.as_str() == purpose) {
                out.push(BrokenReference {
                    severity: Severity::Warning,
                    code: "exception-purpose",
                    object: ObjectId::new(Kind::Policy, &p.key),
                    name: purpose.to_owned(),
                    message: format!(
                        "policy `{}` names purpose `{purpose}` in an exception or inclusion, which \
                         this plan deletes: no one can meet that condition any more",
                        p.key
                    ),
                });
            }
        }
    }
    // Tags: only when every connection was read (a policy or a connection changed).
    if !changes.policies.is_empty() || !changes.connections.is_empty() {
        let universe = |w: &World| -> FxSet<&str> {
            let mut profiles = vec![false; interner.profiles()];
            for t in w.tables() {
                profiles[t.profile] = true;
            }
            let mut set = FxSet::default();
            for (id, _) in profiles.iter().enumerate().filter(|(_, p)| **p) {
                let p = interner.profile(id);
                set.extend(p.table.lower_with_ancestors());
                set.extend(p.columns.lower_with_ancestors());
            }
            set
        };
        let (ub, ua) = (universe(before), universe(after));
        for p in policies.iter().filter(|p| !p.staged) {
            let changed = changes.policies.contains(p.key.as_str());
            for t in &p.tags {
                if ua.contains(t.lower.as_str()) || !(changed || ub.contains(t.lower.as_str())) {
                    continue;
                }
                out.push(BrokenReference {
                    severity: Severity::Warning,
                    code: "unmatched-tag",
                    object: ObjectId::new(Kind::Policy, &p.key),
                    name: t.exact.clone(),
                    message: format!(
                        "policy `{}` names tag `{}`, which no column or table of a managed data \
                         source carries {} this plan (tags may also come from outside Git: \
                         identification, a catalog)",
                        p.key,
                        t.exact,
                        if ub.contains(t.lower.as_str()) { "any more after" } else { "after" }
                    ),
                });
            }
        }
    }
    out.sort();
    out
}

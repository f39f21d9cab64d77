//! Apply order: the order of a plan's changes is decided here, and `apply` follows it.
//!
//! Creates, updates and no-ops run by kind, in the declaration order of
//! [`Kind`](crate::spec::Kind) (licenses, purposes, data sources, policies, projects); deletes
//! follow, in reverse kind order. `apply` only cuts the ordered plan into phases (one kind and
//! direction each) and runs each phase with bounded concurrency. [`dependencies`] is the graph
//! between objects: `apply` skips the dependents of an object that failed, and the planner
//! turns a dry-run rejection that only waits for an earlier object into a warning.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::{Action, Change, DryRun, ObjectId, Target};
use crate::spec::Kind;
use crate::state::State;

/// Apply order: creates, updates and no-ops by kind (licenses, purposes, data sources, policies,
/// projects), then deletes in reverse kind order.
pub(super) fn order(changes: &mut [Change]) {
    changes.sort_by(|a, b| {
        let rank = |c: &Change| {
            if c.action == Action::Delete {
                (1, std::cmp::Reverse(c.id.kind), c.id.key.clone())
            } else {
                (0, std::cmp::Reverse(Kind::Project), c.id.key.clone())
            }
        };
        let (ra, rb) = (rank(a), rank(b));
        ra.0.cmp(&rb.0)
            .then_with(|| if ra.0 == 0 { a.id.kind.cmp(&b.id.kind) } else { ra.1.cmp(&rb.1) })
            .then_with(|| ra.2.cmp(&rb.2))
    });
}

/// For each desired object, the objects it depends on: a project on the purposes it names and on the
/// connections that produce the data sources it names; a policy on the purposes its exceptions
/// name. Deletes run in reverse and need no edges: the tenant refuses to delete what is in use.
pub fn dependencies<'d>(
    targets: &[Target<'_>],
    state: &State,
    dry_run: impl Fn(&ObjectId) -> Option<&'d DryRun>,
) -> BTreeMap<ObjectId, Vec<ObjectId>> {
    let mut purpose_owner: BTreeMap<String, ObjectId> = BTreeMap::new();
    for t in targets.iter().filter(|t| t.object.kind == Kind::Purpose) {
        for name in t.object.purpose_names() {
            purpose_owner.insert(name, ObjectId::new(Kind::Purpose, &t.object.key));
        }
    }
    let mut data_owner: BTreeMap<String, ObjectId> = BTreeMap::new();
    for e in state.objects.iter().filter(|e| e.kind == Kind::DataSource) {
        for n in &e.names {
            data_owner.insert(n.clone(), ObjectId::new(Kind::DataSource, &e.key));
        }
    }
    for t in targets.iter().filter(|t| t.object.kind == Kind::DataSource) {
        let id = ObjectId::new(Kind::DataSource, &t.object.key);
        if let Some(DryRun::Data { creating, updating, no_change, .. }) = dry_run(&id) {
            for n in creating.iter().chain(updating).chain(no_change) {
                data_owner.insert(n.clone(), id.clone());
            }
        }
    }
    let mut deps = BTreeMap::new();
    for t in targets {
        let id = ObjectId::new(t.object.kind, &t.object.key);
        let mut d: BTreeSet<ObjectId> = BTreeSet::new();
        for r in &t.object.references {
            let owner = match r.kind {
                Kind::Purpose => purpose_owner.get(&r.name),
                Kind::DataSource => data_owner.get(&r.name),
                _ => None,
            };
            d.extend(owner.cloned());
        }
        if t.object.kind == Kind::Policy {
            let mut names = Vec::new();
            exception_purposes(&t.object.payload, &mut names);
            d.extend(names.iter().filter_map(|n| purpose_owner.get(n).cloned()));
        }
        d.remove(&id);
        if !d.is_empty() {
            deps.insert(id, d.into_iter().collect());
        }
    }
    deps
}

fn exception_purposes(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(p) =
                m.get("exceptions").and_then(|e| e.get("purposes")).and_then(Value::as_array)
            {
                out.extend(p.iter().filter_map(|x| x.as_str().map(str::to_owned)));
            }
            m.values().for_each(|x| exception_purposes(x, out));
        }
        Value::Array(items) => items.iter().for_each(|x| exception_purposes(x, out)),
        _ => {}
    }
}

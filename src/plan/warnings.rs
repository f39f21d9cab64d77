//! What a reviewer must see besides the changes: warnings about objects (K-anonymization,
//! schema monitoring), the license rule (expiry within [`EXPIRY_WARNING_DAYS`], seats above
//! [`SEATS_WARNING_PERCENT`]; used by plans and by `license status` alike), and the objects on
//! the tenant nobody manages.

use std::collections::BTreeSet;
use std::time::SystemTime;

use serde_json::Value;

use super::observed::Inventory;
use super::{DryRun, ObjectId, Observed, Target, Unmanaged, Warning, effects};
use crate::spec::Kind;
use crate::state::State;

/// Warnings about one object that is created or changed: K-anonymization masking, and a
/// connection under schema monitoring.
pub(super) fn object_warnings(t: &Target<'_>) -> Vec<Warning> {
    let id = ObjectId::new(t.object.kind, &t.object.key);
    let mut out = Vec::new();
    match t.object.kind {
        Kind::Policy if uses_k_anonymization(&t.object.payload) => out.push(Warning {
            object: Some(id),
            code: "k-anonymization",
            message: format!(
                "policy `{}` uses K-Anonymization masking: the tenant must have k-anonymization activated, \
                 and Immuta samples the targeted columns and stores the results in its metadata database \
                 (check this is allowed by your data-localization rules)",
                t.object.key
            ),
        }),
        Kind::DataSource if effects::schema_monitoring(&t.object.payload) => out.push(Warning {
            object: Some(id),
            code: "schema-monitoring",
            message: format!(
                "connection `{}` registers every table (`sources` omitted or `all: true`): schema monitoring \
                 is on, so Immuta adds and disables data sources as tables appear and disappear, outside Git",
                t.object.key
            ),
        }),
        _ => {}
    }
    out
}

fn uses_k_anonymization(v: &Value) -> bool {
    match v {
        Value::Object(m) => {
            m.get("maskingConfig").and_then(|c| c.get("type")).and_then(Value::as_str)
                == Some("K-Anonymization")
                || m.values().any(uses_k_anonymization)
        }
        Value::Array(items) => items.iter().any(uses_k_anonymization),
        _ => false,
    }
}

/// Days from `now` to an expiry date (`2030-12-31` or RFC 3339); negative when past.
pub fn days_until(expires: &str, now: SystemTime) -> Option<i64> {
    let text =
        if expires.len() == 10 { format!("{expires}T00:00:00Z") } else { expires.to_owned() };
    let at = humantime::parse_rfc3339_weak(text.trim_end_matches('Z')).ok()?;
    let secs = match at.duration_since(now) {
        Ok(d) => i64::try_from(d.as_secs()).ok()?,
        Err(e) => -i64::try_from(e.duration().as_secs()).ok()?,
    };
    Some(secs / 86_400)
}

/// A license expiring in fewer days than this (or expired) is flagged.
pub const EXPIRY_WARNING_DAYS: i64 = 30;
/// Seats used above this share (percent) of the licensed seats are flagged.
pub const SEATS_WARNING_PERCENT: i64 = 90;

/// The license rule: expiring licenses and nearly full seats, from whatever license listings
/// the tenant let us read. Plans show these whenever the listings were read (an expired license
/// stops the tenant, whoever manages the key), and so does `license status`.
pub fn license_warnings(inventory: &Inventory, now: SystemTime) -> Vec<Warning> {
    let mut out = Vec::new();
    for l in inventory.licenses.iter().flatten() {
        if let Some(days) = l.expires.as_deref().and_then(|e| days_until(e, now))
            && days < EXPIRY_WARNING_DAYS
        {
            let which = l.id.map_or_else(|| "(no id)".to_owned(), |id| id.to_string());
            let message = if days < 0 {
                format!("license {which} expired {} days ago", -days)
            } else {
                format!("license {which} expires in {days} days")
            };
            out.push(Warning { object: None, code: "license-expiry", message });
        }
    }
    if let Some(s) = &inventory.license_status
        && s.seats > 0
        && s.active_users * 100 > s.seats * SEATS_WARNING_PERCENT
    {
        out.push(Warning {
            object: None,
            code: "license-seats",
            message: format!(
                "{} of {} licensed seats are used ({}%)",
                s.active_users,
                s.seats,
                s.active_users * 100 / s.seats
            ),
        });
    }
    out
}

/// The warnings of `license status`: one when the tenant has no license at all, then the
/// license rule ([`license_warnings`]). Plans leave the first out: a plan reads the licenses
/// only when it may, and a tenant without a license key in Git is no change to review.
pub fn license_status_warnings(inventory: &Inventory, now: SystemTime) -> Vec<Warning> {
    let mut out = Vec::new();
    if inventory.licenses.as_ref().is_none_or(Vec::is_empty) {
        out.push(Warning {
            object: None,
            code: "license-missing",
            message: "the tenant has no license".to_owned(),
        });
    }
    out.extend(license_warnings(inventory, now));
    out
}

/// Objects on the tenant that no spec and no state entry covers (policies, projects,
/// purposes, data sources and licenses, minus what Immuta generates itself): listed in the
/// plan, never touched.
pub(super) fn unmanaged(o: &Observed, state: &State, targets: &[Target<'_>]) -> Vec<Unmanaged> {
    let known: BTreeSet<(Kind, &str)> = state
        .objects
        .iter()
        .map(|e| (e.kind, e.key.as_str()))
        .chain(targets.iter().map(|t| (t.object.kind, t.object.key.as_str())))
        .collect();
    let mut purposes: BTreeSet<String> = BTreeSet::new();
    for t in targets {
        purposes.extend(t.object.purpose_names());
    }
    for e in state.objects.iter().filter(|e| e.kind == Kind::Purpose) {
        purposes.insert(e.key.clone());
        let mut stack: Vec<&Value> = vec![e.payload.value()];
        while let Some(v) = stack.pop() {
            for s in v.get("subpurposes").and_then(Value::as_array).into_iter().flatten() {
                if let Some(n) = s.get("name").and_then(Value::as_str) {
                    purposes.insert(n.to_owned());
                }
                stack.push(s);
            }
        }
    }
    let managed_names: BTreeSet<&str> = state
        .objects
        .iter()
        .flat_map(|e| e.names.iter().map(String::as_str))
        .chain(o.dry_runs.values().flat_map(|d| {
            match d {
                DryRun::Data { creating, updating, deleting, no_change, .. } => creating
                    .iter()
                    .chain(updating)
                    .chain(deleting)
                    .chain(no_change)
                    .map(String::as_str)
                    .collect(),
                _ => Vec::new(),
            }
        }))
        .collect();
    let managed_licenses: BTreeSet<i64> =
        state.objects.iter().filter(|e| e.kind == Kind::License).filter_map(|e| e.id).collect();
    let mut out = Vec::new();
    for p in &o.inventory.policies {
        if !p.system_generated
            && !p.policy_key.as_deref().is_some_and(|k| known.contains(&(Kind::Policy, k)))
        {
            out.push(Unmanaged {
                kind: Kind::Policy,
                name: p.policy_key.clone().unwrap_or_else(|| p.name.clone()),
                id: Some(p.id),
            });
        }
    }
    for p in &o.inventory.projects {
        if !p.is_schema
            && !p.project_key.as_deref().is_some_and(|k| known.contains(&(Kind::Project, k)))
        {
            out.push(Unmanaged {
                kind: Kind::Project,
                name: p.project_key.clone().unwrap_or_else(|| p.name.clone()),
                id: Some(p.id),
            });
        }
    }
    for p in &o.inventory.purposes {
        if !p.system_generated && !purposes.contains(&p.name) {
            out.push(Unmanaged { kind: Kind::Purpose, name: p.name.clone(), id: p.id });
        }
    }
    for d in &o.inventory.data_sources {
        if !d.deleted && !managed_names.contains(d.name.as_str()) {
            out.push(Unmanaged { kind: Kind::DataSource, name: d.name.clone(), id: Some(d.id) });
        }
    }
    for l in o.inventory.licenses.iter().flatten() {
        if !l.id.is_some_and(|id| managed_licenses.contains(&id)) {
            let name =
                l.id.map_or_else(|| "license (no id)".to_owned(), |id| format!("license {id}"));
            out.push(Unmanaged { kind: Kind::License, name, id: l.id });
        }
    }
    out
}

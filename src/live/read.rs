//! Reads: the tolerant decoding of listed items ([`Row`]), the inventories, purposes and
//! licenses, and [`observe`], which reads everything a plan needs in one go and fails closed.

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt, stream};
use serde::Deserialize;
use serde_json::Value;

use super::write::{data_key_exists, dry_run};
use super::{Client, Error, Request, Result, client, listing};
use crate::plan::observed::{
    Inventory, LicenseStatus, LiveDataSource, LiveLicense, LivePolicy, LiveProject, LivePurpose,
    ObjectId, Observed,
};
use crate::spec::{Kind, ObjectOptions};

pub(super) fn decode_err(path: &str, message: impl Into<String>) -> Error {
    Error::Decode { path: path.to_owned(), message: message.into() }
}

/// An integer: a number, or a number in a string.
pub(super) fn int(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A flag: `true`, or `"true"`.
pub(super) fn flag(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// A string (empty strings count as absent).
pub(super) fn text(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned)
}

pub(super) fn bool_field(v: &Value, key: &str) -> bool {
    flag(v.get(key))
}

pub(super) fn str_field(v: &Value, key: &str) -> Option<String> {
    text(v.get(key))
}

/// One listed item, read for the fields the plan uses; every other field is skipped.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Row {
    pub(super) id: Option<Value>,
    pub(super) name: Option<Value>,
    pub(super) deleted: Option<Value>,
    pub(super) policy_key: Option<Value>,
    pub(super) project_key: Option<Value>,
    #[serde(rename = "type")]
    pub(super) kind: Option<Value>,
    pub(super) system_generated: Option<Value>,
    pub(super) subpurposes: Option<Value>,
}

impl listing::Listed for Row {
    fn identity(&self) -> Option<String> {
        int(self.id.as_ref())
            .map(|i| i.to_string())
            .or_else(|| text(self.name.as_ref()))
            .or_else(|| text(self.policy_key.as_ref()))
            .or_else(|| text(self.project_key.as_ref()))
    }
}

impl Row {
    pub(super) fn id(&self, path: &str) -> Result<i64> {
        int(self.id.as_ref()).ok_or_else(|| decode_err(path, "a listed item has no numeric `id`"))
    }

    pub(super) fn name(&self) -> Option<String> {
        text(self.name.as_ref())
    }

    pub(super) fn deleted(&self) -> bool {
        flag(self.deleted.as_ref())
    }
}

/// How license listings are read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Licenses {
    /// Not at all.
    Skip,
    /// When permitted; a 403 leaves them unknown.
    #[default]
    IfPermitted,
    /// Always; a failure fails the read (the specs manage license keys).
    Required,
}

/// Reads every V1 inventory. Any failure fails the whole read: a listing error must never be
/// mistaken for an empty tenant.
pub async fn inventory(client: &Client, licenses: Licenses) -> Result<Inventory> {
    // Each page's rows become the plan's small records as they arrive.
    let data_source = |d: Row| {
        Ok(LiveDataSource {
            id: d.id("/dataSource")?,
            deleted: d.deleted(),
            name: d
                .name()
                .ok_or_else(|| decode_err("/dataSource", "a data source has no `name`"))?,
        })
    };
    let policy = |p: Row| {
        if p.deleted() {
            return Ok(None);
        }
        Ok(Some(LivePolicy {
            id: p.id("/policy/global")?,
            policy_key: text(p.policy_key.as_ref()),
            system_generated: flag(p.system_generated.as_ref()),
            name: p.name().unwrap_or_default(),
        }))
    };
    let project = |p: Row| {
        if p.deleted() {
            return Ok(None);
        }
        let is_schema = p
            .kind
            .as_ref()
            .and_then(Value::as_str)
            .is_some_and(|t| t.eq_ignore_ascii_case("schema"));
        Ok(Some(LiveProject {
            id: p.id("/project")?,
            project_key: text(p.project_key.as_ref()),
            name: p.name().unwrap_or_default(),
            is_schema,
        }))
    };
    let (data_sources, policies, projects, purposes) = tokio::try_join!(
        client.list_mapped("/dataSource", "/dataSource", &[], false, data_source),
        client.list_mapped("/policy/global", "/policy/global", &[], false, policy),
        client.list_mapped("/project", "/project", &[], false, project),
        client.list::<Row>("/governance/purpose", "/governance/purpose", &[], false),
    )?;
    let mut inv = Inventory {
        data_sources,
        policies: policies.into_iter().flatten().collect(),
        projects: projects.into_iter().flatten().collect(),
        ..Inventory::default()
    };
    inv.purposes = decode_purposes(purposes)?;
    if licenses != Licenses::Skip {
        match read_licenses(client).await {
            Ok((list, status)) => {
                inv.licenses = Some(list);
                inv.license_status = status;
            }
            Err(Error::Forbidden { .. }) if licenses == Licenses::IfPermitted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(inv)
}

/// The purposes of a listing, flat or nested (see the module docs), by name.
pub(super) fn decode_purposes(rows: Vec<Row>) -> Result<Vec<LivePurpose>> {
    let mut by_name: BTreeMap<String, LivePurpose> = BTreeMap::new();
    for row in rows.into_iter().filter(|r| !r.deleted()) {
        let name = row
            .name()
            .ok_or_else(|| decode_err("/governance/purpose", "a purpose has no `name`"))?;
        let system_generated = flag(row.system_generated.as_ref());
        if let Some(subpurposes) = &row.subpurposes {
            nested_purposes(&name, subpurposes, system_generated, &mut by_name);
        }
        add_purpose(&mut by_name, LivePurpose { id: int(row.id.as_ref()), name, system_generated });
    }
    Ok(by_name.into_values().collect())
}

/// Records a purpose; a name seen twice keeps the id one of them had.
fn add_purpose(by_name: &mut BTreeMap<String, LivePurpose>, purpose: LivePurpose) {
    match by_name.get_mut(&purpose.name) {
        Some(known) => known.id = known.id.or(purpose.id),
        None => {
            by_name.insert(purpose.name.clone(), purpose);
        }
    }
}

/// The subpurposes listed under `parent`: names, or objects with or without an id, nested.
fn nested_purposes(
    parent: &str,
    listed: &Value,
    system_generated: bool,
    by_name: &mut BTreeMap<String, LivePurpose>,
) {
    let qualified = |name: &str| {
        if name.starts_with(parent) && name[parent.len()..].starts_with('.') {
            name.to_owned()
        } else {
            format!("{parent}.{name}")
        }
    };
    for sub in listed.as_array().into_iter().flatten() {
        match sub {
            Value::String(name) if !name.is_empty() => add_purpose(
                by_name,
                LivePurpose { id: None, name: qualified(name), system_generated },
            ),
            Value::Object(m) if !flag(m.get("deleted")) => {
                let Some(name) = text(m.get("name")) else { continue };
                let name = qualified(&name);
                if let Some(children) = m.get("subpurposes") {
                    nested_purposes(&name, children, system_generated, by_name);
                }
                add_purpose(by_name, LivePurpose { id: int(m.get("id")), name, system_generated });
            }
            _ => {}
        }
    }
}

/// The tenant's licenses and its seat status (APPLICATION_ADMIN): what `inventory` reads for
/// licenses, also read on its own after an apply that changed a license, so that the license
/// metrics are fresh.
pub async fn read_licenses(client: &Client) -> Result<(Vec<LiveLicense>, Option<LicenseStatus>)> {
    let list = client.send_ok(&Request::get("/admin/license", "/admin/license").admin()).await?;
    let (items, _) = client::envelope(&list).ok_or_else(|| {
        decode_err("/admin/license", "expected a list of licenses (or an object holding one)")
    })?;
    let mut out = Vec::new();
    for l in items.iter().filter(|l| !bool_field(l, "deleted")) {
        out.push(LiveLicense {
            id: int(l.get("id")),
            seats: int(l.get("seats")),
            expires: str_field(l, "expires"),
        });
    }
    let status = client
        .send_ok(
            &Request::get("/admin/license/licenseStatus", "/admin/license/licenseStatus").admin(),
        )
        .await?;
    // `licenseSeats` may be "Unlimited" (Swagger x-alternatives): no seat limit to warn about.
    let status = match (int(status.get("activeUserCount")), int(status.get("licenseSeats"))) {
        (Some(active_users), Some(seats)) => Some(LicenseStatus { active_users, seats }),
        _ => None,
    };
    Ok((out, status))
}

/// One dry run to ask.
#[derive(Debug, Clone)]
pub struct DryRunRequest {
    /// The object.
    pub id: ObjectId,
    /// Its payload, placeholders filled in.
    pub payload: Value,
    /// Its options (query parameters).
    pub options: ObjectOptions,
    /// Secret values in the payload (for redaction).
    pub secrets: Vec<String>,
}

/// What [`observe`] reads.
#[derive(Debug, Clone, Default)]
pub struct Reads {
    /// The dry runs to ask.
    pub dry_runs: Vec<DryRunRequest>,
    /// Connection keys whose existence the listings cannot tell (the caller decides which:
    /// see `pipeline::observe`), probed with `DELETE /api/v2/data/{key}?dryRun=true`.
    pub probe_keys: Vec<String>,
    /// Managed connection keys with the data-source names recorded for them: a key none of
    /// whose names is listed is probed too, since Immuta may still be creating them (the
    /// listing shows a data source only once it exists; the key exists from the post on).
    pub recorded: Vec<(String, Vec<String>)>,
    /// How license listings are read.
    pub licenses: Licenses,
    /// Managed objects whose spec is gone, with their Immuta ids: each one its listing does not
    /// show is read by id ([`Inventory::read_by_id`]), since only that read can tell "deleted"
    /// from "left out of a listing".
    pub deleting: Vec<(ObjectId, i64)>,
}

/// Reads what a plan needs: the inventories, the existence of connection keys, and the dry
/// runs, with at most `parallelism` requests at a time. Fails closed.
pub async fn observe(client: &Client, reads: Reads, parallelism: usize) -> Result<Observed> {
    observe_with(client, reads, parallelism, &|| {}).await
}

/// As [`observe`], calling `answered` as each dry run is answered (progress displays).
pub async fn observe_with(
    client: &Client,
    reads: Reads,
    parallelism: usize,
    answered: &(dyn Fn() + Sync),
) -> Result<Observed> {
    let parallelism = parallelism.max(1);
    let Reads { dry_runs, probe_keys, recorded, licenses, deleting } = reads;
    let probe_keys: std::collections::BTreeSet<String> = probe_keys.into_iter().collect();
    let probe = |keys: Vec<String>| {
        stream::iter(keys)
            .map(|key| async move {
                data_key_exists(client, &key).await.map(|exists| (key, exists))
            })
            .buffer_unordered(parallelism)
            .try_collect::<Vec<_>>()
    };
    let inventory_fut = inventory(client, licenses);
    let probes_fut = probe(probe_keys.iter().cloned().collect());
    let dry_fut = stream::iter(dry_runs)
        .map(|r| async move {
            let answer = dry_run(client, r.id.kind, &r.payload, &r.options, &r.secrets).await;
            answered();
            answer.map(|d| (r.id, d))
        })
        .buffer_unordered(parallelism)
        .try_collect::<Vec<_>>();
    let (mut inventory, probes, answers) = tokio::try_join!(inventory_fut, probes_fut, dry_fut)?;
    inventory.data_keys = probes.into_iter().collect();
    // Managed connections none of whose data sources is listed: deleted outside, or still
    // being created? The key tells.
    let listed: std::collections::HashSet<&str> =
        inventory.data_sources.iter().filter(|d| !d.deleted).map(|d| d.name.as_str()).collect();
    let unlisted: Vec<String> = recorded
        .into_iter()
        .filter(|(key, names)| {
            !names.is_empty()
                && !probe_keys.contains(key)
                && names.iter().all(|n| !listed.contains(n.as_str()))
        })
        .map(|(key, _)| key)
        .collect();
    if !unlisted.is_empty() {
        let found = probe(unlisted).await?;
        inventory.data_keys.extend(found);
    }
    let unlisted: Vec<(ObjectId, i64)> =
        deleting.into_iter().filter(|(id, _)| !listed_in(&inventory, id)).collect();
    let mut read_by_id: Vec<(ObjectId, bool)> = stream::iter(unlisted)
        .map(|(id, live_id)| async move { exists_by_id(client, &id, live_id).await })
        .buffer_unordered(parallelism)
        .try_collect::<Vec<_>>()
        .await?
        .into_iter()
        .flatten()
        .collect();
    read_by_id.sort();
    inventory.read_by_id = read_by_id;
    let dry_runs = answers.into_iter().filter_map(|(id, d)| d.map(|d| (id, d))).collect();
    Ok(Observed { inventory, dry_runs, tags: Default::default() })
}

/// Whether the listing of `id`'s kind shows it (kinds read otherwise count as shown).
fn listed_in(inventory: &Inventory, id: &ObjectId) -> bool {
    match id.kind {
        Kind::Policy => inventory.policies.iter().any(|p| p.policy_key.as_deref() == Some(&id.key)),
        Kind::Project => inventory
            .projects
            .iter()
            .any(|p| !p.is_schema && p.project_key.as_deref() == Some(&id.key)),
        Kind::Purpose => inventory.purposes.iter().any(|p| p.name == id.key),
        Kind::DataSource | Kind::License => true,
    }
}

/// Reads one object by its id: `Some(true)` when the tenant has it, `Some(false)` on a 404,
/// `None` for kinds without such a read. Any other failure fails the read (fail closed).
async fn exists_by_id(
    client: &Client,
    id: &ObjectId,
    live_id: i64,
) -> Result<Option<(ObjectId, bool)>> {
    let req = match id.kind {
        Kind::Policy => Request::get(format!("/policy/global/{live_id}"), "/policy/global/{id}"),
        Kind::Project => Request::get(format!("/project/{live_id}"), "/project/{id}"),
        Kind::Purpose => {
            Request::get(format!("/governance/purpose/{live_id}"), "/governance/purpose/{id}")
        }
        Kind::DataSource | Kind::License => return Ok(None),
    };
    let resp = client.send(&req).await?;
    Ok(Some((id.clone(), resp.status != reqwest::StatusCode::NOT_FOUND)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn purposes(listing: Value) -> Vec<(String, Option<i64>)> {
        let page: listing::Page<Row> =
            listing::parse("/governance/purpose", listing.to_string().as_bytes()).unwrap();
        decode_purposes(page.items).unwrap().into_iter().map(|p| (p.name, p.id)).collect()
    }

    fn named(items: &[(&str, Option<i64>)]) -> Vec<(String, Option<i64>)> {
        items.iter().map(|(n, i)| ((*n).to_owned(), *i)).collect()
    }

    #[test]
    fn purposes_are_read_flat_or_nested_with_or_without_ids() {
        // Flat: every purpose a row, children named by their full names.
        let flat = json!({"purposes": [
            {"id": 1, "name": "R", "subpurposes": ["R.A"]},
            {"id": 2, "name": "R.A", "parent": "R", "subpurposes": []},
        ], "count": 2});
        assert_eq!(purposes(flat), named(&[("R", Some(1)), ("R.A", Some(2))]));
        // Nested objects without ids (Terraform's PurposeResponse), two levels deep.
        let nested = json!({"purposes": [{"id": "7", "name": "R", "subpurposes": [
            {"name": "R.A", "description": "", "acknowledgement": "ok",
             "subpurposes": [{"name": "R.A.X"}]},
        ]}]});
        assert_eq!(purposes(nested), named(&[("R", Some(7)), ("R.A", None), ("R.A.X", None)]));
        // Nested names, short or full; nested objects with ids; deleted ones left out.
        let names = json!([{"id": 1, "name": "R", "subpurposes": ["A", "R.B", {"id": 5, "name": "C"},
            {"name": "R.D", "deleted": true}]}, {"id": 9, "name": "Old", "deleted": true}]);
        assert_eq!(
            purposes(names),
            named(&[("R", Some(1)), ("R.A", None), ("R.B", None), ("R.C", Some(5))])
        );
        // A purpose without a name is unreadable.
        let page: listing::Page<Row> = listing::parse("/p", br#"[{"id": 1}]"#).unwrap();
        assert!(decode_purposes(page.items).is_err());
    }

    #[test]
    fn listed_rows_take_ids_as_numbers_or_strings_and_skip_other_fields() {
        let page: listing::Page<Row> = listing::parse(
            "/project",
            br#"{"hits": [{"id": "12", "name": "P", "type": "Schema", "tags": [{"name": "t"}],
                 "purposes": [{"id": 3, "name": "R"}], "deleted": "false"}], "facets": {}, "count": 1}"#,
        )
        .unwrap();
        let row = &page.items[0];
        assert_eq!(row.id("/project").unwrap(), 12);
        assert!(!row.deleted());
        assert_eq!(row.kind.as_ref().and_then(Value::as_str), Some("Schema"));
        assert!(Row::default().id("/x").unwrap_err().to_string().contains("no numeric `id`"));
    }
}

//! The emulated tenant's state: every object, kept in memory behind one lock and serialised
//! as-is to the data file and to `GET /_emulator/state`.
//!
//! **Invariant:** nothing in the store holds a secret in clear. Payloads are run through
//! [`Secrets::redact`](super::secrets::Secrets::redact) with
//! [`Redaction::Digest`](super::secrets::Redaction)
//! before they are stored, and license keys are kept as digests only.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::catalog::Catalog;

/// Everything a tenant holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct Store {
    /// Last id handed out, per kind.
    pub(crate) ids: Ids,
    /// Tenant settings (app settings in Immuta's UI).
    pub(crate) settings: Settings,
    /// The simulated remote databases.
    pub(crate) catalog: Catalog,
    /// V2 data payloads by `connectionKey`.
    pub(crate) connections: BTreeMap<String, Connection>,
    /// Data sources by id, including disabled ones (`deleted: true`).
    pub(crate) data_sources: BTreeMap<u64, DataSource>,
    /// User projects (from `POST /api/v2/project`) by id.
    pub(crate) projects: BTreeMap<u64, Project>,
    /// Schema projects (created with data sources) by id; ids share the project counter.
    pub(crate) schema_projects: BTreeMap<u64, SchemaProject>,
    /// Global policies by id.
    pub(crate) policies: BTreeMap<u64, Policy>,
    /// Purposes and subpurposes by id.
    pub(crate) purposes: BTreeMap<u64, Purpose>,
    /// License keys by id.
    pub(crate) licenses: BTreeMap<u64, License>,
    /// Tag name to tag id: every tag ever used, so ids stay stable.
    pub(crate) tags: BTreeMap<String, u64>,
    /// Users counted by the license usage endpoints.
    pub(crate) users: Vec<UsageUser>,
}

/// Id counters: each holds the last id handed out for its kind.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct Ids {
    pub(crate) data_source: u64,
    pub(crate) project: u64,
    pub(crate) policy: u64,
    pub(crate) purpose: u64,
    pub(crate) license: u64,
    pub(crate) tag: u64,
    pub(crate) subscription: u64,
}

/// Hands out the next id of a counter (ids start at 1 and are never reused).
pub(crate) fn next_id(counter: &mut u64) -> u64 {
    *counter += 1;
    *counter
}

/// Tenant settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct Settings {
    /// Whether K-Anonymization masking is activated (off by default, as in Immuta).
    pub(crate) k_anonymization: bool,
}

/// The last V2 data payload posted under one `connectionKey`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Connection {
    pub(crate) connection_key: String,
    /// Canonical payload, secrets as digests.
    pub(crate) payload: Value,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
}

/// One data source.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DataSource {
    pub(crate) id: u64,
    /// Never shown by the V1 API (real Immuta does not expose it either).
    pub(crate) connection_key: String,
    /// Disabled (soft-deleted).
    pub(crate) deleted: bool,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
    /// While created in the background: when it will exist. Not persisted (a restarted tenant
    /// has finished its jobs).
    #[serde(skip)]
    pub(crate) ready_at: Option<std::time::Instant>,
    /// Everything a V2 post sets; "no change" means the desired spec equals this one.
    #[serde(flatten)]
    pub(crate) spec: SourceSpec,
}

impl DataSource {
    /// Whether it exists for V1 reads and project posts at `now` (not still being created).
    pub(crate) fn exists(&self, now: std::time::Instant) -> bool {
        self.ready_at.is_none_or(|at| now >= at)
    }
}

/// The part of a data source that `POST /api/v2/data` controls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SourceSpec {
    pub(crate) name: String,
    /// `connection.handler`, shown as `blobHandlerType`.
    pub(crate) handler: String,
    pub(crate) connection_string: String,
    pub(crate) remote_database: String,
    pub(crate) remote_schema: String,
    pub(crate) remote_table: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) query: Option<String>,
    pub(crate) sql_schema_name: String,
    pub(crate) sql_table_name: String,
    #[serde(default)]
    pub(crate) description: Option<String>,
    #[serde(default)]
    pub(crate) documentation: Option<String>,
    #[serde(default)]
    pub(crate) owners: Vec<Owner>,
    /// Table tags from the source's `tags.table` (sorted, unique).
    #[serde(default)]
    pub(crate) tags: Vec<String>,
    /// Tags from `options.tableTags` (sorted, unique), replaced wholesale on every post.
    #[serde(default)]
    pub(crate) table_tags: Vec<String>,
    /// Column name to its tags (sorted, unique).
    #[serde(default)]
    pub(crate) column_tags: BTreeMap<String, Vec<String>>,
    /// Column objects (`name`, `dataType`, ... `description`).
    #[serde(default)]
    pub(crate) columns: Vec<Value>,
}

impl SourceSpec {
    /// Every tag on the data source (table, `tableTags` and column tags).
    pub(crate) fn all_tags(&self) -> BTreeSet<&str> {
        self.tags
            .iter()
            .chain(&self.table_tags)
            .chain(self.column_tags.values().flatten())
            .map(String::as_str)
            .collect()
    }
}

/// A data-source owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Owner {
    /// `user` or `group`.
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) iam: Option<String>,
}

/// A user project, upserted by `projectKey`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Project {
    pub(crate) id: u64,
    pub(crate) project_key: String,
    /// Canonical V2 payload.
    pub(crate) payload: Value,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
    /// The owner's membership (`POST /project/{id}/members/{subscriptionId}/acknowledge`).
    #[serde(default)]
    pub(crate) subscription_id: u64,
    /// Purposes the owner has acknowledged.
    #[serde(default)]
    pub(crate) acknowledged: BTreeSet<String>,
    /// Purposes a refused post asked for, waiting to be acknowledged.
    #[serde(default)]
    pub(crate) staged_purposes: BTreeSet<String>,
}

impl Project {
    pub(crate) fn name(&self) -> &str {
        self.payload.get("name").and_then(Value::as_str).unwrap_or(&self.project_key)
    }

    /// Purposes of the project (or staged on it) that its owner has not acknowledged.
    pub(crate) fn unacknowledged(&self) -> BTreeSet<String> {
        self.names("purposes")
            .into_iter()
            .map(str::to_owned)
            .chain(self.staged_purposes.iter().cloned())
            .filter(|p| !self.acknowledged.contains(p))
            .collect()
    }

    /// Names listed under `payload.<key>` (`datasources`, `purposes`, `tags`).
    pub(crate) fn names(&self, key: &str) -> Vec<&str> {
        self.payload
            .get(key)
            .and_then(Value::as_array)
            .map(|items| items.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }
}

/// A schema project: created automatically, one per (connection, remote schema).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SchemaProject {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) connection_key: String,
    pub(crate) schema: String,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
}

/// A global policy, upserted by `policyKey`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Policy {
    pub(crate) id: u64,
    pub(crate) policy_key: String,
    /// Canonical V2 payload.
    pub(crate) payload: Value,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
}

/// A purpose or subpurpose (subpurposes carry their full dotted name and their parent's name).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Purpose {
    pub(crate) id: u64,
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) parent: Option<String>,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
    /// The purpose's own payload fields (`acknowledgement`, `description`, unknown fields),
    /// without `name` and `subpurposes`.
    #[serde(flatten)]
    pub(crate) fields: Map<String, Value>,
}

/// A license key (the key itself is kept only as a digest).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct License {
    pub(crate) id: u64,
    pub(crate) uuid: String,
    pub(crate) key_digest: String,
    pub(crate) seats: u64,
    pub(crate) soft_seats: u64,
    /// Expiry date, in days since 1970-01-01.
    pub(crate) expires: i64,
    pub(crate) features: Vec<String>,
    pub(crate) hard_seats: bool,
    pub(crate) hard_expiration: bool,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
}

/// A user as counted by `GET /admin/license/usage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UsageUser {
    /// `dataConsumer` or `policyOwner`.
    pub(crate) user_type: String,
    pub(crate) name: String,
    pub(crate) email: String,
    pub(crate) iamid: String,
    pub(crate) userid: String,
    pub(crate) active: bool,
}

impl Store {
    /// The user project with `projectKey` `key`.
    pub(crate) fn project_by_key(&self, key: &str) -> Option<&Project> {
        self.projects.values().find(|p| p.project_key == key)
    }

    /// The purpose (or subpurpose) named `name`.
    pub(crate) fn purpose_by_name(&self, name: &str) -> Option<&Purpose> {
        self.purposes.values().find(|p| p.name == name)
    }

    /// Ids of `name` and of every purpose below it.
    pub(crate) fn purpose_subtree(&self, name: &str) -> Vec<u64> {
        let mut names = vec![name.to_owned()];
        let mut ids = Vec::new();
        while let Some(current) = names.pop() {
            for p in self.purposes.values() {
                if p.name == current {
                    ids.push(p.id);
                } else if p.parent.as_deref() == Some(current.as_str()) {
                    names.push(p.name.clone());
                }
            }
        }
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Every project using one of `purposes` must have it acknowledged again.
    pub(crate) fn require_acknowledgement(&mut self, purposes: &BTreeSet<String>) {
        for project in self.projects.values_mut() {
            project.acknowledged.retain(|p| !purposes.contains(p));
        }
    }

    /// The first user project (by id) whose `purposes` names one of `names`.
    pub(crate) fn project_using_purposes(&self, names: &BTreeSet<&str>) -> Option<(&str, &str)> {
        if names.is_empty() {
            return None;
        }
        self.projects.values().find_map(|p| {
            p.names("purposes").into_iter().find(|n| names.contains(n)).map(|n| (p.name(), n))
        })
    }

    /// The active data source named `name`: not disabled, and not still being created.
    pub(crate) fn active_data_source_by_name(&self, name: &str) -> Option<&DataSource> {
        let now = std::time::Instant::now();
        self.data_sources.values().find(|d| !d.deleted && d.spec.name == name && d.exists(now))
    }

    /// Gives every tag in `tags` an id, if it has none yet.
    pub(crate) fn register_tags<'a>(&mut self, tags: impl IntoIterator<Item = &'a str>) {
        for tag in tags {
            if !self.tags.contains_key(tag) {
                let id = next_id(&mut self.ids.tag);
                self.tags.insert(tag.to_owned(), id);
            }
        }
    }

    /// Every tag currently on a data source (disabled ones included) or a user project.
    pub(crate) fn tags_in_use(&self) -> BTreeSet<&str> {
        let mut used: BTreeSet<&str> =
            self.data_sources.values().flat_map(|d| d.spec.all_tags()).collect();
        for project in self.projects.values() {
            used.extend(project.names("tags"));
        }
        used
    }

    /// Removes the schema projects of a connection that no longer hold any data source (only
    /// that connection's change: a tenant of 10,000 objects is not scanned per request).
    pub(crate) fn prune_schema_projects(&mut self, connection_key: &str) {
        let held: BTreeSet<&str> = self
            .data_sources
            .values()
            .filter(|d| d.connection_key == connection_key)
            .map(|d| d.spec.remote_schema.as_str())
            .collect();
        let empty: Vec<u64> = self
            .schema_projects
            .values()
            .filter(|p| p.connection_key == connection_key && !held.contains(p.schema.as_str()))
            .map(|p| p.id)
            .collect();
        for id in empty {
            self.schema_projects.remove(&id);
        }
    }

    /// Data sources held by a schema project (disabled ones included), by id.
    pub(crate) fn schema_project_sources(&self, project: &SchemaProject) -> Vec<&DataSource> {
        self.data_sources
            .values()
            .filter(|d| {
                d.connection_key == project.connection_key && d.spec.remote_schema == project.schema
            })
            .collect()
    }
}

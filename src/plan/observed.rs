//! What was read from the tenant: V1 inventories and V2 dry-run answers, as plain values.
//!
//! `live::read` fills these in; the planner only reads them. Keeping them here (not in `live`)
//! is what lets the planner stay free of I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::spec::Kind;

/// Identifies a managed object: kind and natural key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObjectId {
    /// Kind.
    pub kind: Kind,
    /// Natural key.
    pub key: String,
}

impl ObjectId {
    /// An id.
    pub fn new(kind: Kind, key: impl Into<String>) -> Self {
        ObjectId { kind, key: key.into() }
    }
}

impl std::fmt::Display for ObjectId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} \"{}\"", self.kind, self.key)
    }
}

/// A data source as `GET /dataSource` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveDataSource {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Disabled (soft-deleted).
    pub deleted: bool,
}

/// A global policy as `GET /policy/global` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LivePolicy {
    /// Id.
    pub id: i64,
    /// Natural key, when the policy has one.
    pub policy_key: Option<String>,
    /// Display name.
    pub name: String,
    /// Created by Immuta itself (seeded policies).
    pub system_generated: bool,
}

/// A project as `GET /project` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveProject {
    /// Id.
    pub id: i64,
    /// Natural key, when the project has one (schema projects have none).
    pub project_key: Option<String>,
    /// Name.
    pub name: String,
    /// `schema` projects are created by Immuta for registered schemas; never pruned.
    pub is_schema: bool,
}

/// A purpose as `GET /governance/purpose` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LivePurpose {
    /// Id (a subpurpose nested in its root's listing may have none).
    pub id: Option<i64>,
    /// Full (dotted) name.
    pub name: String,
    /// Created by Immuta itself.
    pub system_generated: bool,
}

/// A license as `GET /admin/license` lists it (never with its key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveLicense {
    /// Id (Immuta's Swagger lists licenses without one).
    pub id: Option<i64>,
    /// Seats.
    pub seats: Option<i64>,
    /// Expiry date (`YYYY-MM-DD...`).
    pub expires: Option<String>,
}

/// Seat use of the tenant (`GET /admin/license/licenseStatus`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicenseStatus {
    /// Users counted against the license.
    pub active_users: i64,
    /// Seats licensed.
    pub seats: i64,
}

/// Everything listed on the tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    /// Data sources (disabled ones included, `deleted: true`).
    pub data_sources: Vec<LiveDataSource>,
    /// Global policies.
    pub policies: Vec<LivePolicy>,
    /// Projects.
    pub projects: Vec<LiveProject>,
    /// Purposes, subpurposes included.
    pub purposes: Vec<LivePurpose>,
    /// Licenses, when the license key could read them.
    pub licenses: Option<Vec<LiveLicense>>,
    /// Seat use, when readable.
    pub license_status: Option<LicenseStatus>,
    /// Data-source connection keys probed with `DELETE /api/v2/data/{key}?dryRun=true`:
    /// `true` when the key exists.
    pub data_keys: BTreeMap<String, bool>,
    /// Managed objects whose spec is gone and that their listing does not show, read by their
    /// id (`GET /policy/global/{id}`...): `true` when the read finds them (the listing left them
    /// out), `false` when it answers 404. Only such a read confirms that an object is gone; a
    /// listing alone may be empty or capped by a proxy. Sorted; a list, since JSON maps (which
    /// the fingerprint hashes) cannot have struct keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub read_by_id: Vec<(ObjectId, bool)>,
}

impl Inventory {
    /// What the read by id of `id` found ([`Inventory::read_by_id`]), if it was read.
    pub fn found_by_id(&self, id: &ObjectId) -> Option<bool> {
        self.read_by_id.binary_search_by(|(i, _)| i.cmp(id)).ok().map(|at| self.read_by_id[at].1)
    }
}

/// The server's answer to a `dryRun=true` post of the desired payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DryRun {
    /// `POST /api/v2/data?dryRun=true`: data source names by fate.
    Data {
        /// Would be created.
        creating: Vec<String>,
        /// Would be updated.
        updating: Vec<String>,
        /// Would be deleted or disabled.
        deleting: Vec<String>,
        /// Unchanged.
        no_change: Vec<String>,
        /// Schema monitoring runs for the connection.
        detection_running: bool,
        /// Tags would change.
        tags_updated: bool,
    },
    /// Policies, projects, purposes: whether the object would be created or updated.
    Object {
        /// Would be created.
        creating: bool,
        /// Would be updated.
        updating: bool,
        /// Project: data sources added.
        #[serde(default)]
        data_sources_added: i64,
        /// Project: data sources removed.
        #[serde(default)]
        data_sources_removed: i64,
        /// Project: its workspace would be removed (`deletingWorkspace`).
        #[serde(default)]
        deleting_workspace: bool,
    },
    /// The tenant's answer could not be read (an HTML page, an empty body, an unexpected
    /// shape): what the post would do is unknown — never taken for "no change".
    Unknown {
        /// Why (no server text: it is not the tenant's).
        reason: String,
    },
    /// The tenant refused the payload (a 4xx): the plan cannot be applied as is.
    Rejected {
        /// HTTP status.
        status: u16,
        /// The server's message.
        message: String,
    },
}

impl DryRun {
    /// Whether the server says the post would change anything.
    pub fn changes_something(&self) -> bool {
        match self {
            DryRun::Data { creating, updating, deleting, tags_updated, .. } => {
                !creating.is_empty()
                    || !updating.is_empty()
                    || !deleting.is_empty()
                    || *tags_updated
            }
            DryRun::Object { creating, updating, .. } => *creating || *updating,
            DryRun::Rejected { .. } | DryRun::Unknown { .. } => true,
        }
    }
}

/// What was read from the tenant for one plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observed {
    /// V1 inventories.
    pub inventory: Inventory,
    /// Dry-run answers by object.
    pub dry_runs: BTreeMap<ObjectId, DryRun>,
    /// Table tags the tenant reports (`GET /dataSource/{id}`), by data-source name: read only
    /// for the managed data sources an access-impact finding is about (`live::metadata`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, Vec<String>>,
}

impl Observed {
    /// A digest of everything observed: a saved plan is stale when this changes.
    pub fn fingerprint(&self) -> String {
        // `dry_runs` has struct keys, which JSON maps cannot hold: hash it as a list of pairs.
        let dry_runs: Vec<(&ObjectId, &DryRun)> = self.dry_runs.iter().collect();
        let mut h = Sha256::new();
        hash_json(&mut h, &self.inventory);
        hash_json(&mut h, &dry_runs);
        // Tags read for the access impact are part of what was reviewed (older plans read none,
        // and their fingerprints stay what they were).
        if !self.tags.is_empty() {
            hash_json(&mut h, &self.tags);
        }
        hex::encode(&h.finalize()[..16])
    }

    /// The live policy with `key`.
    pub fn policy(&self, key: &str) -> Option<&LivePolicy> {
        self.inventory.policies.iter().find(|p| p.policy_key.as_deref() == Some(key))
    }

    /// The live (user) project with `key`.
    pub fn project(&self, key: &str) -> Option<&LiveProject> {
        self.inventory
            .projects
            .iter()
            .find(|p| p.project_key.as_deref() == Some(key) && !p.is_schema)
    }

    /// The live purpose named `name`.
    pub fn purpose(&self, name: &str) -> Option<&LivePurpose> {
        self.inventory.purposes.iter().find(|p| p.name == name)
    }

    /// The live, enabled data source named `name`.
    pub fn data_source(&self, name: &str) -> Option<&LiveDataSource> {
        self.inventory.data_sources.iter().find(|d| d.name == name && !d.deleted)
    }
}

/// Hashes `value`'s JSON text and a separator. The text is streamed into the hash (the same
/// bytes as `serde_json::to_string`, so the same fingerprint), never held: an inventory of
/// 10,000 objects is megabytes of it.
fn hash_json<T: serde::Serialize>(h: &mut Sha256, value: &T) {
    struct Hashing<'a>(&'a mut Sha256);
    impl std::io::Write for Hashing<'_> {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.update(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    // Serializing these plain types cannot fail; hash the error text too if it ever does, so
    // that a failure can never make two different tenants look the same.
    if let Err(e) = serde_json::to_writer(Hashing(h), value) {
        h.update(format!("unserializable: {e}").as_bytes());
    }
    h.update([0]);
}

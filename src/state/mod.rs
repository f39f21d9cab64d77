//! The inventory of objects this tool manages: what was applied, when, and under which id.
//!
//! Immuta's V2 API cannot be read back field by field, so the state is what makes a plan
//! possible: the last applied payload of every managed object (secrets as keyed digests, never
//! values), its Immuta id where one was returned, the revision and the time. Only objects in
//! the state are ever deleted; objects created by hand on the tenant are never touched.
//!
//! The types here ([`State`], [`Entry`], [`Record`]) are plain data, used by the pure planner.
//! Where a state lives is a [`Store`](store::Store), one interface with two backends: the JSON
//! file ([`file`], the default) and PostgreSQL ([`postgres`], shared by CI runners and
//! reconciler replicas). [`store::Recorder`] records an apply through either; [`key`] holds
//! the key of secret digests, which is never part of the state.

pub mod file;
pub mod key;
mod payload;
pub mod postgres;
pub mod store;

pub use self::payload::Payload;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::spec::Kind;

/// Current state format. Version 2 digests secrets with a key kept outside the state
/// (`key_id` names it); version 1 states (salted digests) are read and migrated by the next
/// apply.
pub const STATE_VERSION: u32 = 2;

/// The state of one tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// File format version.
    pub version: u32,
    /// The tenant this state belongs to (its URL, or `sandbox`).
    pub tenant: String,
    /// Format 1 only: the random salt of the secret digests made before keyed digests. Entries
    /// still holding such digests are migrated by the next apply ([`crate::pipeline`]).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub salt: String,
    /// The id of the digest key the secret digests are made with
    /// ([`DigestKey::id`](crate::spec::secrets::DigestKey::id)), never the key itself: a state
    /// read with another key is refused rather than planned with every secret "changed".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// Incremented on every write.
    pub serial: u64,
    /// The last revision applied completely.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Managed objects, sorted by kind then key.
    pub objects: Vec<Entry>,
    /// The repository's safety settings as last applied: what the operator accepted. A
    /// repository that raises them later (`allowDestroy: true`, a higher `maxDeletePercent`)
    /// gets its new values only through an apply with `--allow-destroy`, which records them
    /// here; until then the lower values apply. `None` in states written before (read as the
    /// defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safety: Option<SafetySettings>,
}

/// The repository's safety settings (`allowDestroy`, `maxDeletePercent`) as recorded in a state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SafetySettings {
    /// `allowDestroy`.
    pub allow_destroy: bool,
    /// `maxDeletePercent`.
    pub max_delete_percent: u8,
}

impl Default for SafetySettings {
    /// The defaults of an unset settings file.
    fn default() -> Self {
        SafetySettings { allow_destroy: false, max_delete_percent: 25 }
    }
}

impl SafetySettings {
    /// Whether `self` allows more than `accepted` in any way.
    pub fn raises(&self, accepted: &SafetySettings) -> bool {
        (self.allow_destroy && !accepted.allow_destroy)
            || self.max_delete_percent > accepted.max_delete_percent
    }

    /// The stricter of the two, setting by setting.
    pub fn stricter(&self, other: &SafetySettings) -> SafetySettings {
        SafetySettings {
            allow_destroy: self.allow_destroy && other.allow_destroy,
            max_delete_percent: self.max_delete_percent.min(other.max_delete_percent),
        }
    }
}

/// One managed object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Kind.
    pub kind: Kind,
    /// Natural key.
    pub key: String,
    /// Immuta's id, where the API returned one (policies, projects, purposes, licenses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// SHA-256 of the canonical applied payload.
    pub digest: String,
    /// The applied payload in canonical form; secrets are `(sensitive:<digest>)` (keyed, or
    /// salted in a format 1 state).
    /// Shared with the plan that applied it (the canonical form of 10,000 objects is large),
    /// and kept as text until something reads it ([`Payload`]).
    pub payload: Payload,
    /// `false` when the spec said `gitops: {prune: false}` (kept after the spec is removed).
    pub prune: bool,
    /// Revision of the specs it was applied from.
    pub revision: String,
    /// When it was applied (RFC 3339).
    pub applied_at: String,
    /// Data sources: the names Immuta gave the connection's data sources.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
}

/// One change to a state, as journaled: every backend records an apply as these, one at a time,
/// each durable before the next object starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Record {
    /// An object was applied (or adopted, or its protection changed).
    Upsert {
        /// Its new entry.
        entry: Entry,
    },
    /// An object was deleted or forgotten.
    Remove {
        /// Kind.
        kind: Kind,
        /// Natural key.
        key: String,
    },
    /// A revision was applied completely.
    Revision {
        /// The revision.
        revision: String,
    },
    /// Secret digests are made with this key from now on (a state migrated from salted
    /// digests, or a new one).
    Key {
        /// [`DigestKey::id`](crate::spec::secrets::DigestKey::id).
        key_id: String,
    },
    /// The repository's safety settings were applied ([`State::safety`]).
    Safety {
        /// The settings now in effect.
        settings: SafetySettings,
    },
}

impl State {
    /// An empty state for `tenant`, with secret digests salted by `salt` (format 1; tests and
    /// offline plans, whose digests never leave the process).
    pub fn new(tenant: impl Into<String>, salt: impl Into<String>) -> Self {
        State {
            version: STATE_VERSION,
            tenant: tenant.into(),
            salt: salt.into(),
            key_id: None,
            serial: 0,
            revision: None,
            objects: Vec::new(),
            safety: None,
        }
    }

    /// An empty state for `tenant` whose secret digests are made with the key `key_id` names.
    pub fn keyed(tenant: impl Into<String>, key_id: impl Into<String>) -> Self {
        State { key_id: Some(key_id.into()), ..State::new(tenant, "") }
    }

    /// Applies one journaled change.
    pub fn apply(&mut self, record: &Record) {
        match record {
            Record::Upsert { entry } => self.upsert(entry.clone()),
            Record::Remove { kind, key } => {
                self.remove(*kind, key);
            }
            Record::Revision { revision } => self.revision = Some(revision.clone()),
            Record::Key { key_id } => {
                self.key_id = Some(key_id.clone());
                self.version = STATE_VERSION;
            }
            Record::Safety { settings } => self.safety = Some(*settings),
        }
        self.serial += 1;
    }

    fn position(&self, kind: Kind, key: &str) -> Result<usize, usize> {
        self.objects.binary_search_by(|e| (e.kind, e.key.as_str()).cmp(&(kind, key)))
    }

    /// The entry for `kind`/`key`.
    pub fn get(&self, kind: Kind, key: &str) -> Option<&Entry> {
        self.position(kind, key).ok().map(|i| &self.objects[i])
    }

    /// Inserts or replaces an entry.
    pub fn upsert(&mut self, entry: Entry) {
        match self.position(entry.kind, &entry.key) {
            Ok(i) => self.objects[i] = entry,
            Err(i) => self.objects.insert(i, entry),
        }
    }

    /// Inserts or replaces many entries at once (later ones win), with one sort instead of one
    /// shift of the list per entry.
    pub fn upsert_all(&mut self, entries: impl IntoIterator<Item = Entry>) {
        let mut all = std::mem::take(&mut self.objects);
        all.extend(entries);
        // The last entry of each key wins: reversed, a stable sort puts it first, and dedup
        // keeps the first.
        all.reverse();
        all.sort_by(|a, b| (a.kind, a.key.as_str()).cmp(&(b.kind, b.key.as_str())));
        all.dedup_by(|later, first| later.kind == first.kind && later.key == first.key);
        self.objects = all;
    }

    /// Removes an entry; returns it.
    pub fn remove(&mut self, kind: Kind, key: &str) -> Option<Entry> {
        self.position(kind, key).ok().map(|i| self.objects.remove(i))
    }

    /// A digest of the managed objects (ids, digests, prune flags): changes whenever an apply
    /// changed anything, so a saved plan can tell it is stale.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.tenant.as_bytes());
        for e in &self.objects {
            h.update([0]);
            h.update(e.kind.as_str().as_bytes());
            h.update([0]);
            h.update(e.key.as_bytes());
            h.update([0]);
            h.update(e.digest.as_bytes());
            h.update(e.id.unwrap_or(-1).to_le_bytes());
            h.update([u8::from(e.prune)]);
        }
        hex::encode(&h.finalize()[..16])
    }
}

/// SHA-256 (hex) of a canonical payload.
pub fn payload_digest(canonical: &serde_json::Value) -> String {
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An entry of `kind` and `key` with placeholder values (shared with the store tests).
    pub(crate) fn entry(kind: Kind, key: &str) -> Entry {
        Entry {
            kind,
            key: key.into(),
            id: None,
            digest: "d".into(),
            payload: serde_json::json!({}).into(),
            prune: true,
            revision: "r".into(),
            applied_at: "t".into(),
            names: vec![],
        }
    }

    #[test]
    fn entries_stay_sorted_and_fingerprint_tracks_changes() {
        let mut s = State::new("sandbox", "salt");
        let empty = s.fingerprint();
        s.upsert(entry(Kind::Project, "b"));
        s.upsert(entry(Kind::Purpose, "a"));
        s.upsert(entry(Kind::Project, "a"));
        let keys: Vec<_> = s.objects.iter().map(|e| (e.kind, e.key.as_str())).collect();
        assert_eq!(keys, [(Kind::Purpose, "a"), (Kind::Project, "a"), (Kind::Project, "b")]);
        assert_ne!(s.fingerprint(), empty);
        assert!(s.remove(Kind::Project, "a").is_some());
        assert!(s.get(Kind::Project, "a").is_none());
    }

    #[test]
    fn upsert_all_sorts_once_and_later_entries_win() {
        let mut state = State::new("t", "s");
        state.upsert(entry(Kind::Policy, "b"));
        let mut newer = entry(Kind::Policy, "b");
        newer.digest = "newer".into();
        state.upsert_all([entry(Kind::Purpose, "z"), entry(Kind::Policy, "a"), newer]);
        let keys: Vec<_> = state.objects.iter().map(|e| (e.kind, e.key.as_str())).collect();
        assert_eq!(keys, [(Kind::Purpose, "z"), (Kind::Policy, "a"), (Kind::Policy, "b")]);
        assert_eq!(state.get(Kind::Policy, "b").unwrap().digest, "newer");
    }
}

//! The first stage: the specs of a snapshot ([`Specs::load`]), then everything a plan is made
//! from ([`Specs::prepare`]): valid specs, the state, and the comparable targets.
//!
//! Preparing only reads: a state that does not exist is planned against as empty and created by
//! the first record of an apply, so `plan` and `validate` never bind a state to a tenant.
//!
//! Secrets are compared by digests keyed with the state's digest key ([`Keys`]). Until a key
//! exists (a file state before its first apply), the targets compare placeholders as written,
//! under a key that is not secret, so a saved plan holds nothing to test guesses against and
//! its apply, planned the same way, finds it fresh; the apply then makes the key and records
//! keyed digests. A state written with salted digests (format 1) is migrated: an object whose
//! salted digest matches the specs is unchanged, and the next apply records its keyed digest.

use super::{Error, Inputs, Result};
use crate::diagnostic::{Diagnostic, Severity, render};
use crate::plan::{self, Target};
use crate::secret_store::{self, ProcessSecrets};
use crate::snapshot::Snapshot;
use crate::spec::secrets::{self, DigestKey, Digests, SecretSource};
use crate::spec::{self, Desired, LoadOptions};
use crate::state::key::Keys;
use crate::state::store::Store;
use crate::state::{self, Entry, State};

/// The specs of a snapshot, every diagnostic, and where their secrets come from.
#[derive(Debug)]
pub struct Specs {
    /// The desired objects and the repository settings.
    pub desired: Desired,
    /// Every diagnostic (sorted), secret files that cannot be read included.
    pub diagnostics: Vec<Diagnostic>,
    /// The environment, the secrets directory and the env files the settings name (the
    /// environment wins). One per load, so a rotated secret file is read afresh next time.
    pub secrets: ProcessSecrets,
    /// How the specs were loaded (the offline plan loads its base the same way).
    pub options: LoadOptions,
}

impl Specs {
    /// Loads the specs of `snapshot` and checks that every `${file:...}` can be read (unless the
    /// load is offline: no secret value is ever read then).
    pub fn load(snapshot: &Snapshot, inputs: &Inputs) -> Specs {
        let (desired, mut diagnostics) = spec::load(snapshot, &inputs.options);
        let secrets =
            ProcessSecrets::new(&inputs.secrets_dir).with_defaults(desired.env_defaults.clone());
        if !inputs.options.offline {
            diagnostics.extend(secret_store::check_files(&desired, &secrets));
            crate::diagnostic::sort(&mut diagnostics);
        }
        register_with_redaction(&desired);
        Specs { desired, diagnostics, secrets, options: inputs.options.clone() }
    }

    /// The tree as `validate`'s reports describe it ([`render::Tree`]), with `root` as given.
    pub fn tree<'a>(&'a self, root: &'a str) -> render::Tree<'a> {
        render::Tree {
            root,
            revision: &self.desired.revision,
            files: self.desired.files,
            objects: self
                .desired
                .counts()
                .into_iter()
                .map(|(kind, count)| render::Count {
                    key: kind.as_str(),
                    noun: kind.noun(),
                    plural: kind.plural(),
                    count,
                })
                .collect(),
        }
    }

    /// Whether any diagnostic is an error (nothing can be planned then).
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// Fails with [`Error::Specs`] when any diagnostic is an error.
    pub fn require_valid(&self) -> Result<()> {
        require_valid(&self.diagnostics)
    }

    /// Valid specs, the state of `tenant` in `store` (empty when nothing was applied yet:
    /// nothing is created), and the comparable targets, secrets digested with the state's key
    /// from `keys`. Fails on invalid specs (a spec error is never planned around), on a state
    /// of another tenant, and on a state whose digests were made with another key.
    pub async fn prepare<'a>(
        &'a self,
        store: &'a dyn Store,
        tenant: &str,
        keys: &'a Keys,
    ) -> Result<Prepared<'a>> {
        self.require_valid()?;
        let stored = store.load().await?;
        if let Some(found) = stored.as_ref().filter(|s| s.tenant != tenant) {
            return Err(Error::TenantMismatch {
                state: store.describe(),
                found: found.tenant.clone(),
                expected: tenant.to_owned(),
            });
        }
        let key = keys.current();
        if let Some(recorded) = stored.as_ref().and_then(|s| s.key_id.as_deref()) {
            match key {
                Some(k) if k.id() == recorded => {}
                Some(_) => {
                    return Err(Error::KeyMismatch {
                        state: store.describe(),
                        origin: keys.origin().to_owned(),
                    });
                }
                None => return Err(Error::KeyMissing { state: store.describe() }),
            }
        }
        let exists = stored.is_some();
        let public = DigestKey::public(tenant);
        let (mut state, digest_key, secrets): (State, &DigestKey, Option<&dyn SecretSource>) =
            match (stored, key) {
                (Some(s), Some(k)) => (s, k, Some(&self.secrets)),
                // A format 1 state before its key exists: compared in memory only.
                (Some(s), None) => (s, &public, Some(&self.secrets)),
                (None, Some(k)) => (State::keyed(tenant, k.id()), k, Some(&self.secrets)),
                (None, None) => (State::new(tenant, ""), &public, None),
            };
        let targets = targets(&self.desired, secrets, digest_key.into(), Some(&state))?;
        let migrated = migrate(&mut state, &targets, &self.secrets)?;
        Ok(Prepared {
            specs: self,
            state,
            targets,
            tenant: tenant.to_owned(),
            store,
            keys,
            migrated,
            provisional: key.is_none(),
            exists,
        })
    }
}

/// What a plan against a tenant is made from.
#[derive(Debug)]
pub struct Prepared<'a> {
    /// The (valid) specs.
    pub specs: &'a Specs,
    /// The state as it was read (empty when there is none), salted digests of unchanged secrets
    /// already migrated in memory.
    pub state: State,
    /// One comparable target per desired object.
    pub targets: Vec<Target<'a>>,
    /// The tenant label (`sandbox` or the URL), recorded in the state and the plan.
    pub tenant: String,
    /// Where the state lives (`apply` records progress there).
    pub store: &'a dyn Store,
    /// The digest key.
    pub keys: &'a Keys,
    /// Entries of a format 1 state whose salted digests match the specs, with keyed digests:
    /// the next apply records them (no change is shown for them).
    pub migrated: Vec<Entry>,
    /// No digest key exists yet: the targets compare under a key that is not secret, and the
    /// apply makes the key and digests again.
    pub provisional: bool,
    /// Whether a state exists (something was applied to this tenant).
    pub exists: bool,
}

impl Prepared<'_> {
    /// The desired objects and the repository settings.
    pub fn desired(&self) -> &Desired {
        &self.specs.desired
    }

    /// Whether an apply must record something even when the plan has no change: a format 1
    /// state whose digests move to the key.
    pub fn needs_recording(&self) -> bool {
        !self.migrated.is_empty() || (self.exists && self.state.key_id.is_none())
    }
}

/// Migrates the salted (format 1) digests of `state` in memory: an entry whose salted digest
/// is what the specs give now is replaced by its target's entry (keyed digests, same payload),
/// so the plan shows no change for it; the entries replaced are returned for the apply to
/// record. Entries whose secrets or payload changed keep their salted digests and plan as
/// updates.
pub(super) fn migrate(
    state: &mut State,
    targets: &[Target<'_>],
    secrets: &dyn SecretSource,
) -> Result<Vec<Entry>> {
    if state.salt.is_empty() {
        return Ok(Vec::new());
    }
    let salt = state.salt.clone();
    let mut migrated = Vec::new();
    for t in targets {
        let Some(entry) = state.get(t.object.kind, &t.object.key) else { continue };
        // A payload still read as text is searched before it is parsed: most hold no salted
        // digest (keyed ones read `(sensitive:k:...)`), and parsing every recorded payload
        // at every plan is what reading them as text avoids.
        let maybe_salted = entry.payload.unparsed_text().is_none_or(|text| {
            text.match_indices("\"(sensitive:").any(|(i, m)| !text[i + m.len()..].starts_with("k:"))
        });
        if !maybe_salted || !secrets::has_salted_digest(&entry.payload) {
            continue;
        }
        let salted =
            plan::comparable(t.object, Some(secrets), salt.as_str()).map_err(|source| {
                Error::Secret {
                    object: format!("{} ({})", t.object.label(), t.object.location),
                    source,
                }
            })?;
        if state::payload_digest(&salted) == entry.digest {
            let mut keyed = entry.clone();
            keyed.payload = t.comparable.clone();
            keyed.digest = t.digest.clone();
            migrated.push(keyed);
        }
    }
    state.upsert_all(migrated.iter().cloned());
    Ok(migrated)
}

/// Fails with [`Error::Specs`] when any diagnostic is an error.
pub(super) fn require_valid(diags: &[Diagnostic]) -> Result<()> {
    let errors: Vec<&Diagnostic> = diags.iter().filter(|d| d.severity == Severity::Error).collect();
    match errors.first() {
        None => Ok(()),
        Some(first) => Err(Error::Specs {
            errors: errors.len(),
            first: first.to_string().lines().next().unwrap_or_default().to_owned(),
            diagnostics: diags.to_vec(),
        }),
    }
}

/// Tells the redaction layer what the specs hold: their literal secret values (secrets), and
/// the rest of the tree, secrets masked (public text: anyone reading the repository sees it, so
/// a secret sharing a run of characters with it does not mask it everywhere).
///
/// The public text is every distinct key and scalar of the masked payloads, each once: a tree
/// of 10,000 objects repeats its field names and handlers thousands of times, and the redaction
/// layer keeps what it is given for the life of the process.
fn register_with_redaction(desired: &Desired) {
    let mut literal = Vec::new();
    let mut public = std::collections::BTreeSet::new();
    for o in &desired.objects {
        for p in o.tainted_pointers() {
            if let Some(s) = o.payload.pointer(p).and_then(serde_json::Value::as_str)
                && !secrets::has_placeholder(s)
            {
                literal.push(s.to_owned());
            }
        }
        public.insert(o.key.clone());
        scalars(&secrets::mask(&o.payload, o.tainted_pointers()), &mut public);
    }
    crate::redact::register_all(literal);
    crate::redact::register_public(public);
}

/// Every key and every scalar (as text) of `v`, into `out`.
fn scalars(v: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if !out.contains(k) {
                    out.insert(k.clone());
                }
                scalars(x, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|x| scalars(x, out)),
        Value::String(s) => {
            if !out.contains(s) {
                out.insert(s.clone());
            }
        }
        Value::Number(n) => {
            out.insert(n.to_string());
        }
        Value::Bool(_) | Value::Null => {}
    }
}

/// The comparable targets of the desired objects (secrets filled in from `secrets` and
/// digested, or compared as written without one).
///
/// A target whose payload is the one `state` recorded (the same digest: the usual case) shares
/// the state's copy, and its own is dropped as soon as it is digested: a tree of 10,000
/// unchanged objects is held once, not twice.
pub(super) fn targets<'a>(
    desired: &'a Desired,
    secrets: Option<&dyn SecretSource>,
    digests: Digests<'_>,
    state: Option<&State>,
) -> Result<Vec<Target<'a>>> {
    crate::parallel::map(&desired.objects, 32, |o| {
        let comparable = plan::comparable(o, secrets, digests).map_err(|source| Error::Secret {
            object: format!("{} ({})", o.label(), o.location),
            source,
        })?;
        let mut target = Target::new(o, comparable);
        if let Some(entry) = state.and_then(|s| s.get(o.kind, &o.key))
            && entry.digest == target.digest
        {
            target.comparable = entry.payload.clone();
        }
        Ok(target)
    })
    .into_iter()
    .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::state::file::{self, FileStore};

    fn inputs(dir: &Path) -> Inputs {
        Inputs { options: LoadOptions::default(), secrets_dir: dir.to_path_buf() }
    }

    /// The specs of one file `a.yaml`, with secrets read from `dir`.
    fn one_file(text: &str, dir: &Path) -> Specs {
        Specs::load(&Snapshot::from_texts([("a.yaml", text.to_owned())]), &inputs(dir))
    }

    #[tokio::test]
    async fn invalid_specs_are_never_prepared() {
        let dir = tempfile::tempdir().unwrap();
        let specs = one_file("[1, 2\n", dir.path());
        assert!(specs.has_errors());
        let store = FileStore::new(&dir.path().join("state.json"), "test");
        let keys = Keys::local(&dir.path().join("state.json.key")).unwrap();
        let err = specs.prepare(&store, "t", &keys).await.unwrap_err();
        assert!(matches!(err, Error::Specs { errors: 1, .. }), "{err}");
        assert!(!dir.path().join("state.json").exists(), "no state is created for invalid specs");
    }

    #[tokio::test]
    async fn preparing_creates_nothing_and_a_state_of_another_tenant_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let specs = one_file("name: Research\n", dir.path());
        let path = dir.path().join("state.json");
        let store = FileStore::new(&path, "test");
        let keys = Keys::local(&dir.path().join("state.json.key")).unwrap();
        let prepared = specs.prepare(&store, "one", &keys).await.unwrap();
        assert_eq!(prepared.targets.len(), 1);
        assert_eq!(prepared.state.tenant, "one");
        assert!(prepared.provisional && !prepared.exists);
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "nothing is written");
        file::save(&path, &State::new("one", "salt")).unwrap();
        let err = specs.prepare(&store, "two", &keys).await.unwrap_err();
        assert!(matches!(err, Error::TenantMismatch { .. }), "{err}");
    }

    #[tokio::test]
    async fn salted_digests_of_unchanged_secrets_migrate_without_a_change() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("key.txt"), "license-secret-1").unwrap();
        let specs = one_file("licenseKey: \"${file:key.txt}\"\n", dir.path());
        let path = dir.path().join("state.json");
        // A format 1 state, written with the salted digests of the same secret.
        let salted =
            targets(&specs.desired, Some(&specs.secrets), Digests::Salted("s1"), None).unwrap();
        let mut v1 = State::new("t", "s1");
        v1.upsert(salted[0].entry(Some(7), vec![], "r1", "now"));
        file::save(&path, &v1).unwrap();
        let store = FileStore::new(&path, "test");
        let keys = Keys::given(b"0123456789abcdef0123", "test").unwrap();

        let prepared = specs.prepare(&store, "t", &keys).await.unwrap();
        assert_eq!(prepared.migrated.len(), 1);
        assert!(prepared.needs_recording());
        let entry = prepared.state.objects.first().unwrap();
        assert_eq!(entry.digest, prepared.targets[0].digest, "no change is planned");
        assert_eq!(entry.id, Some(7), "the rest of the entry is kept");
        assert!(!secrets::has_salted_digest(&entry.payload));

        // A secret that changed keeps its salted digest, and plans as an update.
        std::fs::write(dir.path().join("key.txt"), "license-secret-2").unwrap();
        let specs = one_file("licenseKey: \"${file:key.txt}\"\n", dir.path());
        let prepared = specs.prepare(&store, "t", &keys).await.unwrap();
        assert!(prepared.migrated.is_empty());
        assert_ne!(prepared.state.objects[0].digest, prepared.targets[0].digest);

        // A keyed state read with another key is refused, not planned as all-changed.
        file::save(&path, &State::keyed("t", "0000000000000000")).unwrap();
        let err = specs.prepare(&store, "t", &keys).await.unwrap_err();
        assert!(matches!(err, Error::KeyMismatch { .. }), "{err}");
        let none = Keys::local(&dir.path().join("missing.key")).unwrap();
        let err = specs.prepare(&store, "t", &none).await.unwrap_err();
        assert!(matches!(err, Error::KeyMissing { .. }), "{err}");
    }

    #[test]
    fn an_unreadable_secret_file_is_a_diagnostic_unless_offline() {
        let dir = tempfile::tempdir().unwrap();
        let text = "licenseKey: \"${file:missing}\"\n";
        let snapshot = Snapshot::from_texts([("license.yaml", text.to_owned())]);
        let online = Specs::load(&snapshot, &inputs(dir.path()));
        assert!(
            online.diagnostics.iter().any(|d| d.message.contains("secret file")),
            "{:?}",
            online.diagnostics
        );
        let mut offline = inputs(dir.path());
        offline.options.offline = true;
        let offline = Specs::load(&snapshot, &offline);
        assert!(!offline.diagnostics.iter().any(|d| d.message.contains("secret file")));
    }
}

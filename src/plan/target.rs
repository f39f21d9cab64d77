//! A desired object as the planner compares it: its payload in canonical form, with secrets
//! replaced by digests, and which objects need the tenant's dry run.

use serde_json::Value;

use super::normalize;
use super::observed::ObjectId;
use crate::spec::secrets::{self, Digests, InterpolateError, SecretSource};
use crate::spec::{Kind, Object};
use crate::state::{self, Payload, State};

/// A desired object with its comparable payload.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    /// The spec object.
    pub object: &'a Object,
    /// Canonical payload with secrets as `(sensitive:<digest>)`; shared with the state
    /// entries and plan changes made from it.
    pub comparable: Payload,
    /// [`state::payload_digest`] of `comparable`, computed once.
    pub digest: String,
}

impl<'a> Target<'a> {
    /// The target of `object` with its comparable payload (see [`comparable`]).
    pub fn new(object: &'a Object, comparable: Value) -> Self {
        let digest = state::payload_digest(&comparable);
        Target { object, comparable: Payload::from(comparable), digest }
    }

    /// The state entry recording this object as applied.
    pub fn entry(
        &self,
        id: Option<i64>,
        names: Vec<String>,
        revision: &str,
        applied_at: &str,
    ) -> state::Entry {
        state::Entry {
            kind: self.object.kind,
            key: self.object.key.clone(),
            id,
            digest: self.digest.clone(),
            payload: self.comparable.clone(),
            prune: self.object.options.prune,
            revision: revision.to_owned(),
            applied_at: applied_at.to_owned(),
            names,
        }
    }
}

/// The canonical, comparable form of a desired payload. With a secret source, placeholders are
/// filled in first, so a changed secret value shows up as a changed digest; without one
/// (`plan --base` in CI), placeholders are compared as written. Secrets are digested as
/// `digests` says (a key, or a format 1 state's salt).
pub fn comparable<'k>(
    object: &Object,
    source: Option<&dyn SecretSource>,
    digests: impl Into<Digests<'k>>,
) -> Result<Value, InterpolateError> {
    let mut resolved = match source {
        Some(s) => secrets::interpolate(&object.payload, s)?,
        None => object.payload.clone(),
    };
    secrets::mask_with_digests(&mut resolved, object.tainted_pointers(), digests);
    Ok(normalize::canonical_owned(resolved))
}

/// The objects whose server dry run a plan needs: every object under `--refresh`, otherwise
/// those that differ from the last applied payload or are not managed yet.
pub fn needs_dry_run(targets: &[Target<'_>], state: &State, refresh: bool) -> Vec<ObjectId> {
    targets
        .iter()
        .filter(|t| {
            refresh || state.get(t.object.kind, &t.object.key).is_none_or(|e| e.digest != t.digest)
        })
        .filter(|t| t.object.kind != Kind::License)
        .map(|t| ObjectId::new(t.object.kind, &t.object.key))
        .collect()
}

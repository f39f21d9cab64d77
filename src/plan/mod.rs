//! Pure planning: desired state × last applied state × what the tenant says -> [`Plan`].
//!
//! A plan lists, per object, what `apply` will do (create, update, delete, replace, adopt or
//! nothing), the field-level difference in canonical form ([`normalize`]), and the implicit
//! effects of Immuta's full-replace semantics ([`effects`]). Secrets never appear: payloads are
//! compared with salted digests in place of secret values and shown as `(sensitive)`.
//!
//! This file holds the plan's types. The work is split by concern:
//!
//! - `target.rs`: a desired object's comparable payload ([`Target`], [`comparable`]) and which
//!   objects need a dry run ([`needs_dry_run`]).
//! - `decide.rs`: [`plan`] itself: per object, which [`Action`], why, and with what effects.
//! - `order.rs`: apply order (the order of [`Plan::changes`], which `apply` follows) and the
//!   dependency graph ([`dependencies`]).
//! - `warnings.rs`: what a reviewer must see besides the changes (K-anonymization, schema
//!   monitoring, the license rule ([`license_warnings`], also behind `license status`),
//!   unmanaged objects).
//! - `safety.rs`: why `apply` refuses a plan ([`refusals`]).
//! - [`impact`]: what the plan does to people's access (who loses protection, who gains
//!   access) and the references it leaves dangling, from the payloads on both sides.
//!
//! **Invariant:** this module does no I/O. The tenant's answers arrive as [`Observed`] values
//! that the caller fetched; the clock arrives as a parameter.

mod decide;
pub mod diff;
pub mod effects;
#[cfg(test)]
mod fixtures;
pub mod impact;
pub mod normalize;
pub mod observed;
mod order;
pub mod render;
pub(crate) mod safety;
mod target;
mod warnings;

pub use self::decide::{PlanInput, decisions, plan};
pub use self::diff::FieldChange;
pub use self::effects::Effect;
pub use self::impact::Impact;
pub use self::observed::{DryRun, ObjectId, Observed};
pub use self::order::dependencies;
pub use self::safety::{Refusal, Safety, refusals};
pub use self::target::{Target, comparable, needs_dry_run};
pub use self::warnings::{
    EXPIRY_WARNING_DAYS, SEATS_WARNING_PERCENT, days_until, license_status_warnings,
    license_warnings,
};
use crate::diagnostic::Location;
use crate::spec::Kind;
use crate::state::Payload;

/// What `apply` does with one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// Post a new object.
    Create,
    /// Post the changed object.
    Update,
    /// Delete a managed object whose spec was removed.
    Delete,
    /// Delete and recreate (a data-source connection whose identity changed).
    Replace,
    /// Take an object that already exists on the tenant under management.
    Adopt,
    /// Nothing to do.
    NoOp,
}

impl Action {
    /// Every action, in the order renderers list them.
    pub const ALL: [Action; 6] = [
        Action::Create,
        Action::Update,
        Action::Delete,
        Action::Replace,
        Action::Adopt,
        Action::NoOp,
    ];

    /// The one machine spelling of the action (`create`, `update`, `delete`, `replace`, `adopt`,
    /// `no_change`): the plan JSON's `action` (docs/plan-json.md), metric labels, and its serde
    /// form. Sentences use [`Action::verb`] instead.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Replace => "replace",
            Action::Adopt => "adopt",
            Action::NoOp => "no_change",
        }
    }

    /// The action of a machine spelling ([`Action::as_str`]).
    pub fn parse(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// Terraform-like symbol used by every renderer.
    pub fn symbol(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update => "~",
            Action::Delete => "-",
            Action::Replace => "-/+",
            Action::Adopt => "<=",
            Action::NoOp => " ",
        }
    }

    /// Verb for sentences (`no change`); machines read [`Action::as_str`].
    pub fn verb(self) -> &'static str {
        match self {
            Action::NoOp => "no change",
            other => other.as_str(),
        }
    }
}

impl serde::Serialize for Action {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// One object's planned change.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Which object.
    pub id: ObjectId,
    /// What happens.
    pub action: Action,
    /// Why, when it is not obvious (drift, adoption).
    pub reason: Option<String>,
    /// Changed fields (masked).
    pub fields: Vec<FieldChange>,
    /// The last applied payload, canonical, secrets as salted digests (shared with the state
    /// entry: renderers mask them for display).
    pub before: Option<Payload>,
    /// The desired payload, canonical, secrets as salted digests (shared with the target).
    pub after: Option<Payload>,
    /// What Immuta will also do.
    pub effects: Vec<Effect>,
    /// Immuta's id, when known.
    pub live_id: Option<i64>,
    /// Where the spec is.
    pub location: Option<Location>,
    /// The server's dry-run answer, when one was asked.
    pub server: Option<DryRun>,
    /// Set when the change will not be carried out, and why (`prune: false`).
    pub blocked: Option<String>,
    /// Whether `apply` calls the API for it (adopting an identical object, or forgetting a
    /// blocked or already-gone object, only updates the state).
    pub write: bool,
}

impl Change {
    /// Whether the change destroys something: a delete, a replace, or a destructive effect.
    pub fn is_destructive(&self) -> bool {
        self.blocked.is_none()
            && (matches!(self.action, Action::Delete | Action::Replace)
                || self.effects.iter().any(Effect::is_destructive))
    }
}

/// A consequence a reviewer must see that is not a change itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The object concerned, if one.
    pub object: Option<ObjectId>,
    /// Stable code (`k-anonymization`, `license-expiry`, `license-seats`, `schema-monitoring`...).
    pub code: &'static str,
    /// The warning.
    pub message: String,
}

/// An object the tenant refuses (its dry run failed): the plan cannot be applied as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    /// The object.
    pub object: ObjectId,
    /// The server's answer.
    pub message: String,
}

/// An object on the tenant that no spec and no state entry covers: listed, never touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmanaged {
    /// Its kind.
    pub kind: Kind,
    /// Its name or key.
    pub name: String,
    /// Its id.
    pub id: Option<i64>,
}

/// What a plan was computed from; `apply` of a saved plan refuses when any part changed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Fingerprint {
    /// Digest of the desired payloads (secrets as salted digests) and options.
    pub specs: String,
    /// Digest of the state.
    pub state: String,
    /// Digest of what was read from the tenant (`None` offline).
    pub live: Option<String>,
}

/// A plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The tenant (URL, `sandbox`, or `offline`).
    pub tenant: String,
    /// Revision of the specs.
    pub revision: String,
    /// `plan --base REV`: the revision used as the last applied state.
    pub base: Option<String>,
    /// Whether every object's dry run was asked (`--refresh`).
    pub refreshed: bool,
    /// Every object, in apply order: creates and updates by kind, then deletes in reverse.
    pub changes: Vec<Change>,
    /// Consequences to review.
    pub warnings: Vec<Warning>,
    /// Objects the tenant refuses.
    pub errors: Vec<PlanError>,
    /// Objects on the tenant nobody manages.
    pub unmanaged: Vec<Unmanaged>,
    /// What the plan does to people's access, and the references it breaks.
    pub impact: Impact,
    /// What it was computed from.
    pub fingerprint: Fingerprint,
}

/// Counts for the summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// Objects to create (including re-creations after drift).
    pub create: usize,
    /// Objects to update.
    pub update: usize,
    /// Objects to delete.
    pub delete: usize,
    /// Objects to replace.
    pub replace: usize,
    /// Objects to adopt.
    pub adopt: usize,
    /// Unchanged objects.
    pub unchanged: usize,
    /// Implicit effects.
    pub effects: usize,
    /// Destructive changes.
    pub destructive: usize,
}

impl Plan {
    /// Counts by action.
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.changes {
            if c.blocked.is_some() {
                continue;
            }
            match c.action {
                Action::Create => s.create += 1,
                Action::Update => s.update += 1,
                Action::Delete => s.delete += 1,
                Action::Replace => s.replace += 1,
                Action::Adopt => s.adopt += 1,
                Action::NoOp => s.unchanged += 1,
            }
            s.effects += c.effects.len();
            s.destructive += usize::from(c.is_destructive());
        }
        s
    }

    /// Whether applying would change anything on the tenant or in the state.
    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| c.action != Action::NoOp)
    }

    /// Whether the plan cannot be applied as is: the tenant refuses an object, or the plan
    /// leaves a reference dangling that would fail the apply half-way.
    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty() || self.impact.errors().next().is_some()
    }

    /// What the plan compared, in one sentence every renderer shows: a plan claims only what
    /// it checked.
    pub fn compared(&self) -> String {
        match &self.base {
            Some(base) => {
                format!("Compared the specs with the specs at {base}; the tenant was not read.")
            }
            None if self.refreshed => "Compared the specs with the last applied state, the \
                 tenant's listings and every object's dry run (changes made on the tenant by hand \
                 are found)."
                .to_owned(),
            None => "Compared the specs with the last applied state and the tenant's listings \
                 only (--refresh=false): objects deleted on the tenant are found, other changes \
                 made there by hand are not."
                .to_owned(),
        }
    }

    /// The sentence of a plan without changes, saying what matches what ([`Plan::compared`]).
    pub fn no_changes(&self) -> String {
        match &self.base {
            Some(base) => {
                format!("No changes. The specs match the specs at {base}; the tenant was not read.")
            }
            None if self.refreshed => "No changes. The tenant matches the specs.".to_owned(),
            None => "No changes. The specs match what was last applied; changes made on the \
                 tenant by hand were not checked (--refresh=false)."
                .to_owned(),
        }
    }

    /// The `N to create, M to update, K to delete, E implicit effects` line.
    pub fn summary_line(&self) -> String {
        let s = self.summary();
        let mut line = format!(
            "{} to create, {} to update, {} to delete, {} implicit effect{}",
            s.create,
            s.update,
            s.delete,
            s.effects,
            if s.effects == 1 { "" } else { "s" }
        );
        if s.replace > 0 {
            line.push_str(&format!(", {} to replace", s.replace));
        }
        if s.adopt > 0 {
            line.push_str(&format!(", {} to adopt", s.adopt));
        }
        line
    }
}

/// A digest of the desired state as the planner sees it.
pub fn specs_fingerprint(targets: &[Target<'_>]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut sorted: Vec<&Target<'_>> = targets.iter().collect();
    sorted.sort_by(|a, b| (a.object.kind, &a.object.key).cmp(&(b.object.kind, &b.object.key)));
    for t in sorted {
        h.update(t.object.kind.as_str().as_bytes());
        h.update([0]);
        h.update(t.object.key.as_bytes());
        h.update([0]);
        h.update(t.digest.as_bytes());
        h.update([0]);
        h.update(format!("{:?}", t.object.options).as_bytes());
    }
    hex::encode(&h.finalize()[..16])
}

#[cfg(test)]
mod tests;

//! Pure loading and validation of spec files into the desired state.
//!
//! [`load`] turns a [`Snapshot`](crate::snapshot::Snapshot) into a [`Desired`] state and every
//! [`Diagnostic`](crate::diagnostic::Diagnostic) found on the way. It does no I/O: environment
//! variable names and known live objects come in through [`LoadOptions`].
//!
//! - [`node`]: the located YAML tree (the only file that calls the YAML library).
//! - [`de`]: typed validation over the tree (type errors, unknown fields, "did you mean").
//! - [`model`]: the typed models of the five kinds; the spec file format.
//! - [`secrets`]: placeholders, taint tracking, masking.
//! - `document.rs`: where a document becomes an [`Object`] (kind, natural key, options,
//!   references, the purposes it defines).
//! - [`validate`]: per-document and cross-file semantic checks.
//! - [`schema`]: the JSON Schema for editors.
//! - [`text`]: user text made safe to quote in diagnostics.

pub mod de;
mod document;
pub mod envfile;
mod load;
pub mod model;
pub mod node;
pub mod schema;
pub mod secrets;
pub mod text;
pub mod validate;

use std::collections::BTreeSet;
use std::fmt;

pub use load::{SETTINGS_FILES, is_snapshot_file, is_spec_file, load};

#[doc(hidden)]
use crate::diagnostic::Location;

/// The kinds of objects, in apply order (deletes run in reverse).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A license key (`POST /admin/license`).
    License,
    /// A purpose with its subpurposes (`POST /api/v2/purpose`).
    Purpose,
    /// All data sources of one connection (`POST /api/v2/data`).
    #[serde(rename = "datasource")]
    DataSource,
    /// A global subscription or data policy (`POST /api/v2/policy`).
    Policy,
    /// A project (`POST /api/v2/project`).
    Project,
}

impl Kind {
    /// Every kind, in apply order.
    pub const ALL: [Kind; 5] =
        [Kind::License, Kind::Purpose, Kind::DataSource, Kind::Policy, Kind::Project];

    /// The lower-case name used in output, state and the plan JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::License => "license",
            Kind::Purpose => "purpose",
            Kind::DataSource => "datasource",
            Kind::Policy => "policy",
            Kind::Project => "project",
        }
    }

    /// A human name, singular.
    pub fn noun(self) -> &'static str {
        match self {
            Kind::License => "license key",
            Kind::Purpose => "purpose",
            Kind::DataSource => "data source connection",
            Kind::Policy => "policy",
            Kind::Project => "project",
        }
    }

    /// A human name, plural.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::License => "license keys",
            Kind::Purpose => "purposes",
            Kind::DataSource => "data source connections",
            Kind::Policy => "policies",
            Kind::Project => "projects",
        }
    }

    /// The field holding the natural key.
    pub fn key_field(self) -> &'static str {
        match self {
            Kind::License => "licenseKey",
            Kind::Purpose => "name",
            Kind::DataSource => "connectionKey",
            Kind::Policy => "policyKey",
            Kind::Project => "projectKey",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A reference from one object to another, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// What is referenced: [`Kind::Purpose`] or [`Kind::DataSource`] (a data-source *name*).
    pub kind: Kind,
    /// The name as written.
    pub name: String,
    /// Where it is written.
    pub location: Location,
}

/// A secret value inside a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tainted {
    /// RFC 6901 JSON pointer into the payload (`/connection/password`).
    pub pointer: String,
    /// Where the value is written.
    pub location: Location,
}

impl Object {
    /// JSON pointers of the tainted values.
    pub fn tainted_pointers(&self) -> impl Iterator<Item = &str> {
        self.tainted.iter().map(|t| t.pointer.as_str())
    }
}

/// This tool's options for one object, from its `gitops:` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectOptions {
    /// `false`: never delete this object (default `true`).
    pub prune: bool,
    /// Policies: post with `reCertify=true`.
    pub re_certify: bool,
    /// Purposes: post with `reAcknowledgeRequired=true`.
    pub re_acknowledge_required: bool,
    /// Projects: post with `deleteDataSourcesOnWorkspaceDelete=true`.
    pub delete_data_sources_on_workspace_delete: bool,
    /// Data sources: seconds to wait for creation.
    pub wait: Option<i64>,
}

impl Default for ObjectOptions {
    fn default() -> Self {
        ObjectOptions {
            prune: true,
            re_certify: false,
            re_acknowledge_required: false,
            delete_data_sources_on_workspace_delete: false,
            wait: None,
        }
    }
}

/// One object of the desired state: a spec document that passed validation.
#[derive(Debug, Clone)]
pub struct Object {
    /// Its kind.
    pub kind: Kind,
    /// Its natural key. For license keys (which are secret) this is the placeholder as written
    /// (`${IMMUTA_LICENSE_KEY}`) or `sha256:<digest>` of a literal key.
    pub key: String,
    /// Where the document starts.
    pub location: Location,
    /// Where the natural key's value is written (the document start for purposes).
    pub key_location: Location,
    /// The payload to post: the document as written, minus `gitops:`, placeholders intact.
    pub payload: serde_json::Value,
    /// The tainted (secret) strings of `payload`: placeholders and known secret fields.
    pub tainted: Vec<Tainted>,
    /// This tool's options.
    pub options: ObjectOptions,
    /// Objects this one names (a project's purposes and data sources), with where they are named.
    pub references: Vec<Reference>,
    /// The purposes this document defines (a purpose and its subpurposes; empty for other kinds).
    /// The typed document itself is dropped once validated: only the payload is posted.
    pub defines: Vec<String>,
}

impl Object {
    /// A short human label: `policy "Mask PII"`.
    pub fn label(&self) -> String {
        format!("{} \"{}\"", self.kind.as_str(), self.key)
    }

    /// Names of all purposes this object defines (a purpose and its subpurposes).
    pub fn purpose_names(&self) -> Vec<String> {
        self.defines.clone()
    }
}

/// Repository settings (from `immuta-gitops.yaml`, with defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoSettings {
    /// Allow destructive changes without `--allow-destroy`.
    pub allow_destroy: bool,
    /// Refuse plans deleting more than this share (percent) of managed objects.
    pub max_delete_percent: u8,
    /// Treat warnings as errors.
    pub strict: bool,
    /// Exclude patterns, as written.
    pub exclude: Vec<String>,
    /// Env files, as written.
    pub env_files: Vec<String>,
}

impl Default for RepoSettings {
    fn default() -> Self {
        RepoSettings {
            allow_destroy: false,
            max_delete_percent: 25,
            strict: false,
            exclude: Vec::new(),
            env_files: Vec::new(),
        }
    }
}

/// The desired state: every valid object of a snapshot.
#[derive(Debug, Clone, Default)]
pub struct Desired {
    /// The snapshot's revision.
    pub revision: String,
    /// The objects, sorted by kind (apply order) then key.
    pub objects: Vec<Object>,
    /// Repository settings.
    pub settings: RepoSettings,
    /// Number of spec files read (excluding settings and skipped files).
    pub files: usize,
    /// Default values for placeholders from the env files named in the settings.
    pub env_defaults: envfile::EnvValues,
    /// Every `${file:PATH}` reference of every document (valid or not), for the edge to check.
    pub secret_files: Vec<SecretFileRef>,
}

/// A `${file:PATH}` placeholder and where it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretFileRef {
    /// The path as written.
    pub file: String,
    /// Where the value is written.
    pub location: Location,
    /// JSON path of the value (`$.connection.userFiles[0].content`).
    pub path: String,
}

impl Desired {
    /// The object of `kind` with natural key `key`.
    pub fn get(&self, kind: Kind, key: &str) -> Option<&Object> {
        self.objects
            .binary_search_by(|o| (o.kind, o.key.as_str()).cmp(&(kind, key)))
            .ok()
            .map(|i| &self.objects[i])
    }

    /// How many objects of each kind, in apply order.
    pub fn counts(&self) -> Vec<(Kind, usize)> {
        Kind::ALL
            .iter()
            .map(|&k| (k, self.objects.iter().filter(|o| o.kind == k).count()))
            .collect()
    }

    /// Every purpose name defined by the specs (including subpurposes).
    pub fn purpose_names(&self) -> BTreeSet<String> {
        self.objects.iter().flat_map(Object::purpose_names).collect()
    }
}

/// Inputs of [`load`] that come from outside the snapshot.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Names of the environment variables that are set (values are never needed to validate).
    pub env: BTreeSet<String>,
    /// Treat warnings as errors (`--strict`).
    pub strict: bool,
    /// Purposes known to exist on the tenant, when a tenant was read. `None` when offline: a
    /// project naming a purpose no spec defines is then a warning, not an error.
    pub known_purposes: Option<BTreeSet<String>>,
    /// Parser budgets.
    pub limits: node::Limits,
    /// Secret values will never be read (`plan --base` compares placeholders as written): an
    /// unset `${NAME}` is no error.
    pub offline: bool,
}

impl LoadOptions {
    /// Options with the names of the set environment variables.
    pub fn with_env(env: impl IntoIterator<Item = String>) -> Self {
        LoadOptions { env: env.into_iter().collect(), ..LoadOptions::default() }
    }
}

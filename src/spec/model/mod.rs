//! The spec file format: typed models of the five kinds of Immuta objects.
//!
//! A spec document is the Immuta V2 payload itself (what the Immuta CLI's `save` commands take),
//! plus an optional `gitops:` block for this tool's own options. These types describe every
//! documented field, so they drive typed validation ([`super::de`]) and the JSON Schema for
//! editors ([`super::schema`]). They are *not* what gets posted: the payload is the document as
//! written (fields we do not model are kept), minus `gitops:`.
//!
//! Documented spelling drift is accepted through serde aliases: `requiredPermission(s)`,
//! `allow(ed)MaskedJoins`, `Row Restriction By/by ...`, `licenseKey`/`licensekey`, and the
//! `userFiles` spellings `keyName`/`key` and `userFilename`/`fileName`.
//!
//! Where Immuta's documentation lists values but is known to be incomplete (connection handlers,
//! masking types, circumstance types), the field is a string and unknown values are warnings
//! (see `validate`), not errors, so a newer tenant's vocabulary does not block anyone.
//!
//! This file has the shared vocabulary (handlers, masking types, natural keys, spellings and the
//! schema helpers), the `gitops:` blocks, data sources, projects, purposes, licenses, repository
//! settings and [`Spec`]; `model/policy.rs` has the policies, the largest kind. Field docs
//! are the JSON Schema's descriptions; not every field has one.

mod policy;

use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;

pub use self::policy::*;

/// Connection handlers named by Immuta's V2 documentation.
pub const HANDLERS: &[&str] = &[
    "Snowflake",
    "Databricks",
    "Redshift",
    "Google BigQuery",
    "BigQuery",
    "Presto",
    "Trino",
    "Athena",
];

/// Masking types named by Immuta's V2 documentation.
pub const MASKING_TYPES: &[&str] = &[
    "Hash",
    "Constant",
    "Null",
    "Custom Function",
    "K-Anonymization",
    "Regex",
    "Rounding",
    "Randomized Response",
    "Reversible",
    "Format Preserving Masking",
];

/// Circumstance types named by Immuta's V2 documentation and seen in real exports.
pub const CIRCUMSTANCE_TYPES: &[&str] =
    &["tags", "columnTags", "columnRegex", "noTags", "anyTag", "domains"];

/// Masking field selector types.
pub const FIELD_TYPES: &[&str] = &["columnTags", "noTags", "anyTag"];

/// The fields that tell a document's kind (see `validate`): exactly one of them, or none and a
/// `name` for a purpose.
pub const NATURAL_KEYS: &[&str] =
    &["connectionKey", "policyKey", "projectKey", "licenseKey", "licensekey"];

/// A purpose is a document with `name` and none of the [`NATURAL_KEYS`]: without this, any
/// policy or project (they have a `name`) would also match the purpose schema, and an editor
/// would accept it whatever its errors.
fn no_natural_key(schema: &mut Schema) {
    let any: Vec<serde_json::Value> =
        NATURAL_KEYS.iter().map(|k| serde_json::json!({"required": [k]})).collect();
    schema.insert("not".to_owned(), serde_json::json!({"anyOf": any}));
}

/// Documented spelling drift of field names, as `(preferred, also accepted)`: the serde aliases
/// of the models below. The JSON Schema offers both spellings, and writing both in one mapping
/// is an error (the tool cannot tell which one the tenant reads).
pub const SPELLINGS: &[(&str, &str)] = &[
    ("allowMaskedJoins", "allowedMaskedJoins"),
    ("requiredPermission", "requiredPermissions"),
    ("keyName", "key"),
    ("userFilename", "fileName"),
    ("licenseKey", "licensekey"),
];

fn open_enum(values: &[&str], description: &str) -> Schema {
    json_schema!({
        "description": description,
        "anyOf": [ { "enum": values }, { "type": "string" } ]
    })
}

fn handler_schema(_: &mut SchemaGenerator) -> Schema {
    open_enum(HANDLERS, "The connection handler (the kind of remote database).")
}

fn masking_type_schema(_: &mut SchemaGenerator) -> Schema {
    open_enum(
        MASKING_TYPES,
        "The masking type. Quote `\"Null\"` in YAML: unquoted it is a YAML null.",
    )
}

fn circumstance_type_schema(_: &mut SchemaGenerator) -> Schema {
    open_enum(CIRCUMSTANCE_TYPES, "Where the policy applies.")
}

fn field_type_schema(_: &mut SchemaGenerator) -> Schema {
    open_enum(FIELD_TYPES, "Which columns the rule masks.")
}

fn any_value_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({})
}

/// Offers the accepted spellings of [`SPELLINGS`] next to the preferred ones in a struct's
/// schema: the alias gets the same schema; a required field is satisfied by exactly one of its
/// spellings, and an optional one may be written under one spelling only.
fn spellings(schema: &mut Schema) {
    let Some(object) = schema.as_object_mut() else { return };
    let mut rules = Vec::new();
    if let Some(serde_json::Value::Object(properties)) = object.get_mut("properties") {
        for (preferred, alias) in SPELLINGS {
            if let Some(property) = properties.get(*preferred).cloned() {
                properties.insert((*alias).to_owned(), property);
                rules.push((*preferred, *alias));
            }
        }
    }
    for (preferred, alias) in rules {
        let required = match object.get_mut("required") {
            Some(serde_json::Value::Array(list)) => {
                let before = list.len();
                list.retain(|f| f != preferred);
                list.len() != before
            }
            _ => false,
        };
        if object.get("required").and_then(serde_json::Value::as_array).is_some_and(Vec::is_empty) {
            object.remove("required");
        }
        let rule = if required {
            serde_json::json!({"oneOf": [{"required": [preferred]}, {"required": [alias]}]})
        } else {
            serde_json::json!({"not": {"required": [preferred, alias]}})
        };
        if let serde_json::Value::Array(all) =
            object.entry("allOf").or_insert_with(|| serde_json::Value::Array(Vec::new()))
        {
            all.push(rule);
        }
    }
}

/// A value of any shape (kept and posted as written; not checked here).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnyValue;

impl<'de> Deserialize<'de> for AnyValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d).map(|_| AnyValue)
    }
}

impl JsonSchema for AnyValue {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "AnyValue".into()
    }
    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        any_value_schema(g)
    }
    fn inline_schema() -> bool {
        true
    }
}

// ---------------------------------------------------------------------------------------------
// `gitops:` blocks

/// Options of this tool for one data-source connection (stripped before posting).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataSourceGitops {
    /// `false` stops this tool from ever deleting the object, even when its spec is removed.
    pub prune: Option<bool>,
    /// Seconds to wait for data sources to be created (Immuta's `wait`; negative waits forever).
    pub wait: Option<i64>,
}

/// Options of this tool for one policy (stripped before posting).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyGitops {
    /// `false` stops this tool from ever deleting the object, even when its spec is removed.
    pub prune: Option<bool>,
    /// Post with `reCertify=true`: someone must re-certify the policy on every impacted data
    /// source when its certification changed.
    pub re_certify: Option<bool>,
}

/// Options of this tool for one project (stripped before posting).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProjectGitops {
    /// `false` stops this tool from ever deleting the object, even when its spec is removed.
    pub prune: Option<bool>,
    /// Post with `deleteDataSourcesOnWorkspaceDelete=true`: removing the workspace also deletes
    /// its data and data sources.
    pub delete_data_sources_on_workspace_delete: Option<bool>,
}

/// Options of this tool for one purpose (stripped before posting).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PurposeGitops {
    /// `false` stops this tool from ever deleting the object, even when its spec is removed.
    pub prune: Option<bool>,
    /// Post with `reAcknowledgeRequired=true`: every member of projects using the purpose must
    /// acknowledge the changed statement again.
    pub re_acknowledge_required: Option<bool>,
}

/// Options of this tool for one license key (stripped before posting).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LicenseGitops {
    /// `false` stops this tool from ever deleting the license, even when its spec is removed.
    pub prune: Option<bool>,
}

// ---------------------------------------------------------------------------------------------
// Data sources

/// All data sources of one connection (`POST /api/v2/data`). Immuta replaces the whole set on
/// every post: tables left out are disabled (or deleted with `options.hardDelete`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(title = "Data source connection")]
pub struct DataSourceSpec {
    /// Unique key of this collection of data sources. Reusing a key with different connection
    /// details deletes and recreates every data source of the key.
    pub connection_key: String,
    pub connection: Connection,
    pub name_template: Option<NameTemplate>,
    pub options: Option<DataSourceOptions>,
    /// Owners of every data source of the connection. Absent: left as they are; `[]`: all
    /// removed except the caller.
    pub owners: Option<Vec<Owner>>,
    /// Which tables become data sources. Omitted (or `all: true`) registers every table and
    /// turns on schema monitoring.
    pub sources: Option<Vec<Source>>,
    pub gitops: Option<DataSourceGitops>,
}

/// How Immuta connects to the remote database.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    // Every documented example has one, but the docs never say it is required, and one of them
    // (cut off) has none: `validate` warns when it is missing. With `schema_with`, `default` is
    // what keeps the field optional in the schema.
    #[serde(default)]
    #[schemars(schema_with = "handler_schema")]
    pub handler: Option<String>,
    pub hostname: Option<String>,
    pub port: Option<u16>,
    pub ssl: Option<bool>,
    pub database: Option<String>,
    /// Limits registration to this schema of the database.
    pub schema: Option<String>,
    pub username: Option<String>,
    /// Use `${ENV_VAR}`: never commit a password.
    pub password: Option<String>,
    /// Snowflake: the warehouse Immuta uses.
    pub warehouse: Option<String>,
    pub role: Option<String>,
    /// Databricks: the SQL warehouse or cluster HTTP path.
    pub http_path: Option<String>,
    /// Databricks Unity Catalog: the catalog.
    pub catalog: Option<String>,
    pub authentication_method: Option<String>,
    pub use_certificate: Option<bool>,
    pub client_id: Option<String>,
    /// Use `${ENV_VAR}`: never commit a client secret.
    pub client_secret: Option<String>,
    pub audience: Option<String>,
    pub scope: Option<String>,
    pub token: Option<String>,
    /// Databricks `oAuthM2M` with `useCertificate: true`: the certificate's thumbprint.
    pub certificate_thumbprint: Option<String>,
    /// Redshift `okta`: the Okta host.
    pub idp_host: Option<String>,
    /// Redshift `okta`: the Okta application id.
    #[serde(rename = "appID")]
    pub app_id: Option<String>,
    /// BigQuery: the GCP project id.
    pub sid: Option<String>,
    /// Athena: the AWS region.
    pub region: Option<String>,
    pub query_result_location_bucket: Option<String>,
    pub query_result_location_directory: Option<String>,
    pub connection_string_options: Option<String>,
    pub user_files: Option<Vec<UserFile>>,
}

/// A key file uploaded with the connection (base64 content).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = spellings)]
pub struct UserFile {
    /// For example `PRIV_KEY_FILE`, `KeyFilePath`, `oauth client certificate`.
    #[serde(alias = "key")]
    pub key_name: String,
    /// Base64 content. Use `${file:PATH}` or `${ENV_VAR}`.
    pub content: String,
    #[serde(alias = "fileName")]
    pub user_filename: Option<String>,
}

/// How data sources and schema projects are named from the remote names. Placeholders:
/// `<tablename>`, `<schema>`, `<database>`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NameTemplate {
    pub data_source_format: Option<String>,
    pub table_format: Option<String>,
    pub schema_format: Option<String>,
    pub schema_project_name_format: Option<String>,
    /// The schema Immuta creates in the remote database; must contain `_immuta`.
    pub native_schema_format: Option<String>,
}

/// Options applied to every data source of the connection.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataSourceOptions {
    pub stale_data_tolerance: Option<u64>,
    pub disable_sensitive_data_discovery: Option<bool>,
    pub domain_collection_id: Option<String>,
    /// `true`: tables dropped from `sources` are deleted; otherwise they are disabled.
    pub hard_delete: Option<bool>,
    /// Tags on every data source of the connection; replaced wholesale on every post.
    pub table_tags: Option<Vec<String>>,
}

/// A data-source owner.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Owner {
    #[serde(rename = "type")]
    pub kind: OwnerType,
    pub name: String,
    /// The identity manager id (`bim` for Immuta's built-in one).
    pub iam: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OwnerType {
    User,
    Group,
}

/// One entry of `sources`: `{all: true}`, a table (`tableName` + `schema`), or a query
/// (`query` + `naming`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    /// Register every table of the connection (turns on schema monitoring).
    pub all: Option<bool>,
    pub table_name: Option<String>,
    /// The table, as Immuta's own complex example names it (`tableName` in the attribute
    /// docs); one of the two, posted as written.
    pub table: Option<String>,
    pub schema: Option<String>,
    /// A SQL query registered as a data source (needs `naming`).
    pub query: Option<String>,
    pub naming: Option<Naming>,
    pub description: Option<String>,
    pub documentation: Option<String>,
    pub owners: Option<Vec<Owner>>,
    pub tags: Option<SourceTags>,
    pub columns: Option<Vec<Column>>,
    pub column_descriptions: Option<Vec<ColumnDescription>>,
}

/// Names for a table or query data source.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Naming {
    pub datasource: Option<String>,
    pub table: Option<String>,
    pub schema: Option<String>,
}

/// Tags on the table and on its columns.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceTags {
    pub table: Option<Vec<String>>,
    pub columns: Option<Vec<ColumnTags>>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ColumnTags {
    pub column_name: String,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Column {
    pub name: String,
    pub data_type: Option<String>,
    pub nullable: Option<bool>,
    pub remote_type: Option<String>,
    pub primary_key: Option<bool>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ColumnDescription {
    pub column_name: String,
    pub description: String,
}

// ---------------------------------------------------------------------------------------------
// Projects

/// A project (`POST /api/v2/project`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(title = "Project", transform = spellings)]
pub struct ProjectSpec {
    pub project_key: String,
    pub name: String,
    pub description: Option<String>,
    /// Markdown.
    pub documentation: Option<String>,
    #[serde(alias = "allowedMaskedJoins")]
    pub allow_masked_joins: Option<bool>,
    /// Purpose names (full dotted names for subpurposes).
    pub purposes: Option<Vec<String>>,
    /// Data-source names (as named by the connection's `nameTemplate`).
    pub datasources: Option<Vec<String>>,
    /// Who may join. Defaults to `manual`.
    pub subscription_policy: Option<SubscriptionActions>,
    pub workspace: Option<Workspace>,
    pub equalization: Option<bool>,
    pub tags: Option<Vec<String>>,
    pub gitops: Option<ProjectGitops>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Workspace {
    /// `databricks` or `snowflake`.
    #[serde(rename = "type")]
    pub kind: WorkspaceType,
    pub config: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WorkspaceType {
    Databricks,
    Snowflake,
}

// ---------------------------------------------------------------------------------------------
// Purposes

/// A purpose and its subpurposes (`POST /api/v2/purpose`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(title = "Purpose", transform = no_natural_key)]
pub struct PurposeSpec {
    pub name: String,
    pub description: Option<String>,
    /// The statement project members acknowledge. Immuta's default when omitted.
    pub acknowledgement: Option<String>,
    /// Child purposes; each name is the parent's name, a dot, and the child's own name.
    pub subpurposes: Option<Vec<Subpurpose>>,
    /// The noise reduction of K-Anonymization under this purpose (Immuta's V1
    /// `policyMetadata.kAnonNoiseReduction`: None, Very Small, Small, Medium, Large).
    pub k_anon_noise_reduction: Option<String>,
    pub gitops: Option<PurposeGitops>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Subpurpose {
    /// Full dotted name, e.g. `Research.Clinical`.
    pub name: String,
    /// (Terraform sends it; the V2 docs list no `description` for subpurposes.)
    pub description: Option<String>,
    pub acknowledgement: Option<String>,
    pub subpurposes: Option<Vec<Subpurpose>>,
}

// ---------------------------------------------------------------------------------------------
// Licenses

/// An Immuta license key (`POST /admin/license`). Keep the key out of Git: `${ENV_VAR}`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(title = "License key", transform = spellings)]
pub struct LicenseSpec {
    #[serde(alias = "licensekey")]
    pub license_key: String,
    pub gitops: Option<LicenseGitops>,
}

// ---------------------------------------------------------------------------------------------
// Repository settings

/// Repository-wide settings: `immuta-gitops.yaml` at the spec root.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "immuta-gitops repository settings")]
pub struct RepoSettingsFile {
    /// Allow deletes, replaces and implicit table removals without `--allow-destroy`.
    pub allow_destroy: Option<bool>,
    /// Refuse a plan that deletes more than this share (percent) of managed objects, unless
    /// `--force`. Default 25.
    pub max_delete_percent: Option<u8>,
    /// Treat warnings as errors.
    pub strict: Option<bool>,
    /// Glob patterns (relative to the spec root) of files that are not specs.
    pub exclude: Option<Vec<String>>,
    /// Env files (relative to the spec root, `*.env`) with default values for `${VAR}`
    /// placeholders; the process environment wins. Never commit real secrets in them.
    pub env_files: Option<Vec<String>>,
}

/// A typed spec document of any kind.
#[derive(Debug, Clone)]
pub enum Spec {
    DataSource(Box<DataSourceSpec>),
    SubscriptionPolicy(Box<SubscriptionPolicySpec>),
    DataPolicy(Box<DataPolicySpec>),
    Project(Box<ProjectSpec>),
    Purpose(Box<PurposeSpec>),
    License(Box<LicenseSpec>),
}

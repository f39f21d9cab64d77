//! The JSON Schema (draft-07, what yaml-language-server understands) of spec documents.
//!
//! Generated from the [`super::model`] types, so the schema and the validator cannot disagree
//! on which fields exist. A committed copy lives at `schema/spec.schema.json`; a test fails when
//! it is stale. Example specs point editors at it with a modeline:
//! `# yaml-language-server: $schema=../schema/spec.schema.json`.

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;

use super::model;

/// One spec document: any of the five kinds.
#[derive(JsonSchema)]
#[serde(untagged)]
#[schemars(
    title = "immuta-gitops spec document",
    description = "An Immuta V2 payload (data source connection, subscription or data policy, project, \
                   purpose, license key) plus an optional `gitops:` block of immuta-gitops options."
)]
#[allow(dead_code, clippy::large_enum_variant)] // Only its schema is used; never constructed.
enum SpecDocument {
    DataSource(model::DataSourceSpec),
    SubscriptionPolicy(model::SubscriptionPolicySpec),
    DataPolicy(model::DataPolicySpec),
    Project(model::ProjectSpec),
    License(model::LicenseSpec),
    Purpose(model::PurposeSpec),
}

/// The schema of spec documents, as pretty-printed JSON with a trailing newline.
pub fn spec_schema() -> String {
    let schema = SchemaSettings::draft07().into_generator().into_root_schema_for::<SpecDocument>();
    pretty(&schema)
}

/// The schema of the repository settings file `immuta-gitops.yaml`.
pub fn settings_schema() -> String {
    let schema = SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<model::RepoSettingsFile>();
    pretty(&schema)
}

fn pretty(schema: &schemars::Schema) -> String {
    // Serializing a `serde_json::Value`-backed schema cannot fail.
    let mut s = serde_json::to_string_pretty(schema).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_is_draft_07_and_covers_every_kind() {
        let s: serde_json::Value = serde_json::from_str(&spec_schema()).unwrap();
        assert_eq!(s["$schema"], "http://json-schema.org/draft-07/schema#");
        let titles: Vec<&str> =
            s["anyOf"].as_array().unwrap().iter().filter_map(|b| b["$ref"].as_str()).collect();
        assert_eq!(titles.len(), 6, "{titles:?}");
    }
}

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
#[schemars(transform = one_natural_key)]
#[allow(dead_code, clippy::large_enum_variant)] // Only its schema is used; never constructed.
enum SpecDocument {
    DataSource(model::DataSourceSpec),
    SubscriptionPolicy(model::SubscriptionPolicySpec),
    DataPolicy(model::DataPolicySpec),
    Project(model::ProjectSpec),
    License(model::LicenseSpec),
    Purpose(model::PurposeSpec),
}

/// A document with two natural keys is two objects in one: `validate` rejects it, and so does
/// the schema (otherwise it would match whichever kind it happens to be valid as).
fn one_natural_key(schema: &mut schemars::Schema) {
    let keys = model::NATURAL_KEYS;
    let pairs: Vec<serde_json::Value> = keys
        .iter()
        .enumerate()
        .flat_map(|(i, a)| {
            keys[i + 1..].iter().map(move |b| serde_json::json!({"required": [a, b]}))
        })
        .collect();
    schema.insert("not".to_owned(), serde_json::json!({"anyOf": pairs}));
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

    /// What editors check must not be stricter than `validate` (the audit found all three).
    #[test]
    fn the_schema_accepts_the_documented_spellings_and_optional_rule_configs() {
        let s: serde_json::Value = serde_json::from_str(&spec_schema()).unwrap();
        let d = &s["definitions"];
        assert_eq!(d["RuleType"]["enum"], serde_json::json!(model::RULE_TYPES));
        for spelling in
            ["Row Restriction by User Entitlements", "Row Restriction By Custom Where Clause"]
        {
            assert!(model::RULE_TYPES.contains(&spelling), "{spelling}");
        }
        assert_eq!(d["Rule"]["required"], serde_json::json!(["type"]));
        let needs_config: Vec<&serde_json::Value> = d["Rule"]["allOf"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|c| c["if"]["properties"]["type"]["enum"].as_array().unwrap())
            .collect();
        assert_eq!(needs_config.len(), 5, "Masking and both spellings of both row restrictions");
        let license = &d["LicenseSpec"];
        assert!(license.get("required").is_none(), "{license}");
        assert_eq!(license["properties"]["licensekey"], license["properties"]["licenseKey"]);
        assert_eq!(
            license["allOf"][0]["oneOf"],
            serde_json::json!([{"required": ["licenseKey"]}, {"required": ["licensekey"]}])
        );
        for (preferred, alias) in model::SPELLINGS {
            let holder = d
                .as_object()
                .unwrap()
                .values()
                .find(|def| def["properties"].get(*preferred).is_some())
                .unwrap_or_else(|| panic!("no definition has `{preferred}`"));
            assert!(holder["properties"].get(*alias).is_some(), "`{alias}` is not offered");
        }
        assert!(d["Connection"].get("required").is_none(), "`handler` is optional (a warning)");
    }
}

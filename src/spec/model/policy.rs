//! The global policy models (`POST /api/v2/policy`): subscription policies with their actions
//! and circumstances, data policies with their rules (masking, row restrictions) and the rule
//! types' documented spellings.

use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;

use super::{
    AnyValue, PolicyGitops, circumstance_type_schema, field_type_schema, masking_type_schema,
    spellings,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum SubscriptionPolicyType {
    #[serde(rename = "subscription")]
    Subscription,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum DataPolicyType {
    #[serde(rename = "data")]
    Data,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AnyAll {
    Any,
    All,
}

/// A global subscription policy (`POST /api/v2/policy`): who may subscribe to data sources.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(title = "Subscription policy")]
pub struct SubscriptionPolicySpec {
    pub policy_key: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: SubscriptionPolicyType,
    /// A mapping (not a list) for subscription policies.
    pub actions: SubscriptionActions,
    pub circumstances: Option<Vec<Circumstance>>,
    pub circumstance_operator: Option<AnyAll>,
    /// `true`: the policy exists but is inactive.
    pub staged: Option<bool>,
    pub certification: Option<Certification>,
    pub template: Option<bool>,
    pub gitops: Option<PolicyGitops>,
}

/// A global data policy (`POST /api/v2/policy`): masking, row-level and other rules.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(title = "Data policy")]
pub struct DataPolicySpec {
    pub policy_key: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: DataPolicyType,
    /// A list of `{description, rules}` for data policies.
    pub actions: Vec<DataAction>,
    pub circumstances: Option<Vec<Circumstance>>,
    pub circumstance_operator: Option<AnyAll>,
    pub staged: Option<bool>,
    pub certification: Option<Certification>,
    pub owner_restrictions: Option<OwnerRestrictions>,
    pub template: Option<bool>,
    pub gitops: Option<PolicyGitops>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SubscriptionType {
    /// Anyone can subscribe.
    Anyone,
    /// Anyone can request; subscribed once approved.
    Approval,
    /// Users with the listed groups or attributes.
    Entitlements,
    /// Users are added by hand.
    Manual,
}

/// Who may subscribe (subscription policy `actions`, project `subscriptionPolicy`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionActions {
    #[serde(rename = "type")]
    pub kind: SubscriptionType,
    pub automatic_subscription: Option<bool>,
    pub allow_discovery: Option<bool>,
    /// An advanced entitlement expression, e.g. `@isInGroups('Engineers')`.
    pub advanced: Option<String>,
    pub description: Option<String>,
    pub approvals: Option<Vec<Approval>>,
    pub entitlements: Option<Entitlements>,
    pub access_grant: Option<String>,
    pub share_responsibility: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = spellings)]
pub struct Approval {
    pub specific_approver_required: Option<bool>,
    /// `OWNER`, `GOVERNANCE`... (also accepted as `requiredPermissions`).
    #[serde(alias = "requiredPermissions")]
    pub required_permission: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Entitlements {
    pub operator: Option<AnyAll>,
    pub groups: Option<Vec<String>>,
    pub attributes: Option<Vec<Attribute>>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Attribute {
    pub name: String,
    pub value: String,
}

/// Where a policy applies.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Circumstance {
    #[serde(rename = "type")]
    #[schemars(schema_with = "circumstance_type_schema")]
    pub kind: String,
    pub tag: Option<String>,
    pub column_tag: Option<String>,
    pub regex: Option<String>,
    pub case_insensitive: Option<bool>,
    pub domains: Option<Vec<DomainRef>>,
    pub operator: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DomainRef {
    pub id: Option<String>,
    pub name: Option<String>,
}

/// Policy certification.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Certification {
    pub text: Option<String>,
    pub label: Option<String>,
    pub tags: Option<Vec<String>>,
    pub recertify: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OwnerRestrictions {
    pub users: Option<Vec<RestrictedUser>>,
    pub groups: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestrictedUser {
    pub iamid: Option<String>,
    pub username: String,
}

/// One action of a data policy.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataAction {
    pub description: Option<String>,
    pub rules: Vec<Rule>,
}

/// The kinds of data-policy rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[schemars(transform = rule_type_spellings)]
pub enum RuleType {
    #[serde(rename = "Masking")]
    Masking,
    #[serde(rename = "Minimization")]
    Minimization,
    #[serde(rename = "Purpose Restriction")]
    PurposeRestriction,
    #[serde(rename = "Time Restriction")]
    TimeRestriction,
    #[serde(
        rename = "Row Restriction By User Entitlements",
        alias = "Row Restriction by User Entitlements"
    )]
    RowRestrictionByUserEntitlements,
    #[serde(
        rename = "Row Restriction by Custom Where Clause",
        alias = "Row Restriction By Custom Where Clause"
    )]
    RowRestrictionByCustomWhereClause,
}

/// Every spelling of a rule type that is accepted: the serde names and aliases of [`RuleType`].
pub const RULE_TYPES: &[&str] = &[
    "Masking",
    "Minimization",
    "Purpose Restriction",
    "Time Restriction",
    "Row Restriction By User Entitlements",
    "Row Restriction by User Entitlements",
    "Row Restriction by Custom Where Clause",
    "Row Restriction By Custom Where Clause",
];

impl RuleType {
    /// The accepted spellings of this rule type (the documented `By`/`by` drift).
    pub fn spellings(self) -> &'static [&'static str] {
        match self {
            RuleType::Masking => &RULE_TYPES[0..1],
            RuleType::Minimization => &RULE_TYPES[1..2],
            RuleType::PurposeRestriction => &RULE_TYPES[2..3],
            RuleType::TimeRestriction => &RULE_TYPES[3..4],
            RuleType::RowRestrictionByUserEntitlements => &RULE_TYPES[4..6],
            RuleType::RowRestrictionByCustomWhereClause => &RULE_TYPES[6..8],
        }
    }
}

/// The schema of [`RuleType`] lists the aliases too: editors must accept what the loader does.
fn rule_type_spellings(schema: &mut Schema) {
    schema.insert("enum".to_owned(), serde_json::json!(RULE_TYPES));
}

/// One rule of a data-policy action. `config` depends on `type` (checked separately).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    #[serde(rename = "type")]
    pub kind: RuleType,
    pub config: Option<AnyValue>,
    /// The users the rule is meant for. With inclusions, add a second rule for everyone else.
    pub inclusions: Option<Inclusions>,
    /// The users the rule does not apply to.
    pub exceptions: Option<Exceptions>,
}

/// Written by hand: whether `config` is required, and its shape, depend on `type`, as in
/// `validate` (Masking, both row restrictions: required and typed; the rest: not checked).
impl JsonSchema for Rule {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Rule".into()
    }

    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        let kind = g.subschema_for::<RuleType>();
        let mut inclusions = g.subschema_for::<Option<Inclusions>>();
        inclusions.insert(
            "description".to_owned(),
            "The users the rule is meant for. With inclusions, add a second rule for everyone \
             else."
                .into(),
        );
        let mut exceptions = g.subschema_for::<Option<Exceptions>>();
        exceptions.insert("description".to_owned(), "The users the rule does not apply to.".into());
        let needs = |spellings: &[&str], config: Schema| {
            json_schema!({
                "if": { "properties": { "type": { "enum": spellings } }, "required": ["type"] },
                "then": { "properties": { "config": config }, "required": ["config"] }
            })
        };
        let all_of = [
            needs(RuleType::Masking.spellings(), g.subschema_for::<MaskingRuleConfig>()),
            needs(
                RuleType::RowRestrictionByCustomWhereClause.spellings(),
                g.subschema_for::<WhereClauseRuleConfig>(),
            ),
            needs(
                RuleType::RowRestrictionByUserEntitlements.spellings(),
                g.subschema_for::<EntitlementsRuleConfig>(),
            ),
        ];
        json_schema!({
            "description": "One rule of a data-policy action. `config` depends on `type`.",
            "type": "object",
            "properties": {
                "type": kind,
                "config": {
                    "description": "Rule configuration: masking (`fields`, `maskingConfig`), custom \
                                    where clause (`predicate`), user entitlements (`matches`); \
                                    optional, and not checked, for the other rule types."
                },
                "inclusions": inclusions,
                "exceptions": exceptions
            },
            "required": ["type"],
            "allOf": all_of
        })
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Inclusions {
    pub operator: Option<AnyAll>,
    pub groups: Option<Vec<String>>,
    pub attributes: Option<Vec<Attribute>>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Exceptions {
    pub operator: Option<AnyAll>,
    pub groups: Option<Vec<String>>,
    pub attributes: Option<Vec<Attribute>>,
    /// Purposes whose project members are exempt (a purpose restriction exception).
    pub purposes: Option<Vec<String>>,
}

/// `config` of a `Masking` rule.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MaskingRuleConfig {
    pub fields: Vec<MaskingField>,
    pub masking_config: MaskingConfig,
    /// Cell-level condition, e.g. `@columnTagged('Discovered.Country') = 'USA'`.
    pub conditional_predicate: Option<String>,
    pub operator: Option<AnyAll>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MaskingField {
    #[serde(rename = "type")]
    #[schemars(schema_with = "field_type_schema")]
    pub kind: String,
    pub column_tag: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MaskingConfig {
    #[serde(rename = "type")]
    #[schemars(schema_with = "masking_type_schema")]
    pub kind: String,
    /// `Constant`: the replacement value.
    pub constant: Option<String>,
    /// `Custom Function`: SQL using `@column`.
    pub sql_function: Option<String>,
    pub regex: Option<String>,
    pub replacement: Option<String>,
    pub metadata: Option<BTreeMap<String, serde_json::Value>>,
}

/// `config` of a `Row Restriction by Custom Where Clause` rule.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WhereClauseRuleConfig {
    /// SQL predicate, e.g. `region = @attributeValue('Region')`.
    pub predicate: String,
    pub column: Option<ColumnRef>,
    pub invert: Option<bool>,
    pub values: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ColumnRef {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

/// `config` of a `Row Restriction By User Entitlements` rule.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EntitlementsRuleConfig {
    pub operator: Option<AnyAll>,
    pub matches: Vec<EntitlementMatch>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EntitlementMatch {
    /// `attribute` or `group`.
    #[serde(rename = "type")]
    pub kind: String,
    pub attribute: Option<String>,
    pub group: Option<String>,
    /// The column tag whose values are matched.
    pub tag: Option<String>,
}

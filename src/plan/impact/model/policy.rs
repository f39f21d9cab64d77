//! Global policies and projects, as the impact model reads them (rules C1–C5, M1–M5, R1, R2,
//! E1, E2, S2, P1).

use std::collections::BTreeSet;

use serde_json::Value;

use super::{Needs, get, strs};
use crate::plan::impact::matching::{Op, Openness, Strength, TagRef, column_tagged};

/// Where a policy applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Circumstances {
    /// No `circumstances` key: every data source (rule C1).
    Absent,
    /// `circumstances: null` or `[]`: "when selected by data owners" in V1; possibly every data
    /// source, certainly none (rule C1).
    Empty,
    /// A list, combined with `circumstanceOperator` (rule C2).
    List(Op, Vec<Circumstance>),
}

/// One circumstance (rule C3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Circumstance {
    /// `columnTags`: some column carries the tag or a descendant.
    ColumnTag(TagRef),
    /// `tags`: the data source itself carries the tag or a descendant.
    Tag(TagRef),
    /// `columnRegex`: some column's name matches.
    ColumnRegex {
        /// The expression.
        regex: String,
        /// `caseInsensitive`.
        case_insensitive: bool,
    },
    /// `anyTag`.
    AnyTag,
    /// `noTags`.
    NoTags,
    /// `domains`: ids and names.
    Domains(Vec<(Option<String>, Option<String>)>),
    /// A type this build does not know.
    Unknown(String),
}

/// A set of people named by groups, attributes and purposes.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Principals {
    /// `operator` (default `any`: rule E1).
    pub op: Option<Op>,
    /// Groups.
    pub groups: BTreeSet<String>,
    /// Attributes as `name=value` (`name` alone when no value is given).
    pub attributes: BTreeSet<String>,
    /// Purposes.
    pub purposes: BTreeSet<String>,
}

impl Principals {
    fn parse(v: Option<&Value>) -> Option<Principals> {
        let v = v.filter(|v| v.is_object())?;
        let attributes = v
            .get("attributes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|a| {
                let name = get(a, "name").and_then(Value::as_str)?;
                Some(match get(a, "value").and_then(Value::as_str) {
                    Some(value) => format!("{name}={value}"),
                    None => name.to_owned(),
                })
            })
            .collect();
        Some(Principals {
            op: match get(v, "operator").and_then(Value::as_str) {
                Some("any") => Some(Op::Any),
                Some("all") => Some(Op::All),
                _ => None,
            },
            groups: strs(get(v, "groups")).map(str::to_owned).collect(),
            attributes,
            purposes: strs(get(v, "purposes")).map(str::to_owned).collect(),
        })
    }

    /// Whether it names nobody (an empty exception excepts no one).
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty() && self.attributes.is_empty() && self.purposes.is_empty()
    }

    /// The operator in effect (absent is `any`, the broadest reading: rule E1).
    pub fn operator(&self) -> Op {
        self.op.unwrap_or(Op::Any)
    }

    /// Every principal, labelled (`group X`, `attribute A=B`, `purpose P`).
    pub fn labels(&self) -> Vec<String> {
        self.groups
            .iter()
            .map(|g| format!("group `{g}`"))
            .chain(self.attributes.iter().map(|a| format!("attribute `{a}`")))
            .chain(self.purposes.iter().map(|p| format!("purpose `{p}`")))
            .collect()
    }
}

/// Who a data rule applies to (rules E1, E2).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Audience {
    /// `inclusions`: only these users (the others fall through to the next rule).
    pub inclusions: Option<Principals>,
    /// `exceptions`: everyone but these users.
    pub exceptions: Option<Principals>,
}

impl Audience {
    /// A short text: `everyone`, `everyone except group X`, `only group Y`.
    pub fn describe(&self) -> String {
        let mut out = match &self.inclusions {
            Some(i) if !i.is_empty() => {
                format!("only {}", i.labels().join(&format!(" {} ", joiner(i.operator()))))
            }
            _ => "everyone".to_owned(),
        };
        if let Some(e) = self.exceptions.as_ref().filter(|e| !e.is_empty()) {
            out.push_str(&format!(
                " except {}",
                e.labels().join(&format!(" {} ", joiner(e.operator())))
            ));
        }
        out
    }
}

fn joiner(op: Op) -> &'static str {
    match op {
        Op::Any => "or",
        Op::All => "and",
    }
}

/// Which columns a masking rule selects (rule M1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// `columnTags`.
    ColumnTag(TagRef),
    /// `anyTag`: columns with any tag.
    AnyTag,
    /// `noTags`: columns with no tag.
    NoTags,
    /// A type this build does not know ("all columns", "names spelled like"...).
    Unknown(String),
}

/// A masking rule's masking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Masking {
    /// Which columns.
    pub fields: Vec<Field>,
    /// `config.operator` (rule M2).
    pub operator: Option<Op>,
    /// `maskingConfig.type`.
    pub kind: String,
    /// Its strength class (rule M3), `Partial` at most under a condition (rule M4).
    pub strength: Strength,
    /// `conditionalPredicate` (cell-level masking: rule M4).
    pub condition: Option<String>,
    /// A digest of the rule's config, to tell a changed rule.
    pub config: u64,
}

impl Masking {
    /// `Hash`, `Null where <predicate>`.
    pub fn describe(&self) -> String {
        match &self.condition {
            Some(c) => format!("{} where `{c}` (other rows in the clear)", self.kind),
            None => self.kind.clone(),
        }
    }
}

/// The kind of a data rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleKind {
    /// `Masking`.
    Masking(Masking),
    /// A row-level rule: `Row Restriction By User Entitlements`, `... by Custom Where Clause`,
    /// `Minimization`, `Time Restriction`, `Purpose Restriction` (rules R1, R2).
    Rows {
        /// The type as written (canonical spelling).
        kind: String,
        /// A digest of the config, to tell a changed rule.
        config: u64,
        /// What it does, for people (`where STATUS = 'CLOSED'`).
        summary: String,
        /// Tags the rule reads columns by (`matches[].tag`, `@columnTagged`, `column.name`).
        tags: Vec<TagRef>,
    },
}

/// One rule of a data policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataRule {
    /// Index of its action.
    pub action: usize,
    /// Index of the rule in the action.
    pub rule: usize,
    /// What it does.
    pub kind: RuleKind,
    /// Who it applies to.
    pub audience: Audience,
}

/// Who may subscribe, as one subscription policy (or a project's `subscriptionPolicy`) says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Access {
    /// `type` as written.
    pub kind: String,
    /// `entitlements`.
    pub entitlements: Option<Principals>,
    /// `advanced` (a DSL: any change is possible widening).
    pub advanced: Option<String>,
    /// `approvals[].requiredPermission`.
    pub approvals: BTreeSet<String>,
    /// `automaticSubscription`.
    pub automatic: bool,
    /// `allowDiscovery`.
    pub discovery: bool,
    /// `accessGrant` (`READ`, `WRITE`).
    pub grant: Option<String>,
    /// `shareResponsibility`.
    pub share: Option<bool>,
}

impl Access {
    fn parse(v: Option<&Value>, default: &str) -> Access {
        let Some(v) = v.filter(|v| v.is_object()) else {
            return Access { kind: default.to_owned(), ..Access::default() };
        };
        let bool_at = |k: &str| get(v, k).and_then(Value::as_bool);
        Access {
            kind: get(v, "type").and_then(Value::as_str).unwrap_or(default).to_owned(),
            entitlements: Principals::parse(get(v, "entitlements")),
            advanced: get(v, "advanced").and_then(Value::as_str).map(str::to_owned),
            approvals: v
                .get("approvals")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|a| {
                    let p = get(a, "requiredPermission").and_then(Value::as_str).unwrap_or("?");
                    if get(a, "specificApproverRequired").and_then(Value::as_bool) == Some(true) {
                        format!("{p} (a specific approver)")
                    } else {
                        p.to_owned()
                    }
                })
                .collect(),
            automatic: bool_at("automaticSubscription").unwrap_or(false),
            discovery: bool_at("allowDiscovery").unwrap_or(false),
            grant: get(v, "accessGrant").and_then(Value::as_str).map(str::to_owned),
            share: bool_at("shareResponsibility"),
        }
    }

    /// Its openness (rule S2).
    pub fn openness(&self) -> Openness {
        Openness::of(&self.kind)
    }

    /// `anyone`, `approval by OWNER`, `group X or attribute Y`, `users added by hand`.
    pub fn describe(&self) -> String {
        match self.kind.as_str() {
            "anyone" => "anyone".to_owned(),
            "manual" => "only users a data owner adds by hand".to_owned(),
            "approval" if self.approvals.is_empty() => "anyone who asks, once approved".to_owned(),
            "approval" => format!(
                "anyone who asks, once approved by {}",
                self.approvals.iter().cloned().collect::<Vec<_>>().join(" or ")
            ),
            "entitlements" => {
                let mut parts = Vec::new();
                if let Some(e) = &self.entitlements
                    && !e.is_empty()
                {
                    parts.push(e.labels().join(&format!(" {} ", joiner(e.operator()))));
                }
                if let Some(a) = &self.advanced {
                    parts.push(format!("`{a}`"));
                }
                if parts.is_empty() {
                    "users with the listed entitlements".to_owned()
                } else {
                    format!("users with {}", parts.join(" and "))
                }
            }
            other => format!("`{other}` (an unknown subscription type)"),
        }
    }
}

/// The kind of a global policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// `type: data`.
    Data,
    /// `type: subscription`.
    Subscription,
}

/// A global policy, as the impact model reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `policyKey`.
    pub key: String,
    /// Data or subscription.
    pub kind: PolicyKind,
    /// `staged: true`: applies to nothing (rule C4).
    pub staged: bool,
    /// Where it applies.
    pub circumstances: Circumstances,
    /// `ownerRestrictions` (`user:NAME`, `group:NAME`), when present (rule C5).
    pub owners: Option<BTreeSet<String>>,
    /// Data rules, in order.
    pub rules: Vec<DataRule>,
    /// Who may subscribe.
    pub access: Option<Access>,
    /// Every tag it names (circumstances, fields, matches, predicates), for the reference check.
    pub tags: Vec<TagRef>,
    /// The same on both sides of the plan (one `Arc` for both): what it does to a profile is
    /// the same before and after.
    pub shared: bool,
    /// It has a masking rule (only such policies can decide a column's masking).
    pub masks: bool,
}

fn tag_ref(v: Option<&Value>) -> Option<TagRef> {
    v.and_then(Value::as_str).filter(|s| !s.is_empty()).map(TagRef::new)
}

impl Policy {
    /// The policy of a payload, `None` when it is not a data or subscription policy.
    pub fn parse(payload: &Value) -> Option<Policy> {
        let key = get(payload, "policyKey").and_then(Value::as_str)?.to_owned();
        let kind = match get(payload, "type").and_then(Value::as_str) {
            Some("data") => PolicyKind::Data,
            Some("subscription") => PolicyKind::Subscription,
            _ => return None,
        };
        let mut tags = Vec::new();
        let circumstances = match get(payload, "circumstances") {
            None => Circumstances::Absent,
            Some(Value::Array(list)) if !list.is_empty() => {
                let op = Op::parse(
                    get(payload, "circumstanceOperator").and_then(Value::as_str),
                    Op::Any,
                );
                let list: Vec<Circumstance> = list.iter().map(circumstance).collect();
                for c in &list {
                    if let Circumstance::ColumnTag(t) | Circumstance::Tag(t) = c {
                        tags.push(t.clone());
                    }
                }
                Circumstances::List(op, list)
            }
            Some(_) => Circumstances::Empty,
        };
        let owners = get(payload, "ownerRestrictions").filter(|v| v.is_object()).map(|o| {
            get(o, "users")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|u| get(u, "username").and_then(Value::as_str))
                .map(|u| format!("user:{u}"))
                .chain(strs(get(o, "groups")).map(|g| format!("group:{g}")))
                .collect()
        });
        let mut rules = Vec::new();
        let mut access = None;
        match kind {
            PolicyKind::Data => {
                let actions = get(payload, "actions").and_then(Value::as_array);
                for (a, action) in actions.into_iter().flatten().enumerate() {
                    let list = get(action, "rules").and_then(Value::as_array);
                    for (r, rule) in list.into_iter().flatten().enumerate() {
                        if let Some(kind) = data_rule(rule, &mut tags) {
                            rules.push(DataRule {
                                action: a,
                                rule: r,
                                kind,
                                audience: Audience {
                                    inclusions: Principals::parse(get(rule, "inclusions")),
                                    exceptions: Principals::parse(get(rule, "exceptions")),
                                },
                            });
                        }
                    }
                }
            }
            PolicyKind::Subscription => {
                access = Some(Access::parse(get(payload, "actions"), "unknown"));
            }
        }
        tags.sort();
        tags.dedup();
        // Thousands of policies are held at once: no spare capacity (a rule is large).
        tags.shrink_to_fit();
        rules.shrink_to_fit();
        let masks = rules.iter().any(|r| matches!(r.kind, RuleKind::Masking(_)));
        Some(Policy {
            key,
            kind,
            staged: get(payload, "staged").and_then(Value::as_bool) == Some(true),
            circumstances,
            owners,
            rules,
            masks,
            access,
            tags,
            shared: false,
        })
    }

    /// Whether some circumstance looks at column names, owners or domains.
    pub fn needs(&self) -> Needs {
        let list = match &self.circumstances {
            Circumstances::List(_, l) => l.as_slice(),
            _ => &[],
        };
        Needs {
            names: list.iter().any(|c| matches!(c, Circumstance::ColumnRegex { .. })),
            owners: self.owners.is_some(),
            domains: list.iter().any(|c| matches!(c, Circumstance::Domains(_))),
        }
    }

    /// The purposes its exceptions and inclusions name.
    pub fn purposes(&self) -> BTreeSet<&str> {
        self.rules
            .iter()
            .flat_map(|r| [&r.audience.exceptions, &r.audience.inclusions])
            .flatten()
            .flat_map(|p| p.purposes.iter().map(String::as_str))
            .collect()
    }

    /// The lower-cased tags under which the policy index finds it, or `None` when it must be
    /// evaluated against every profile (its circumstances do not all need a tag).
    pub fn index_tags(&self) -> Option<Vec<&str>> {
        match &self.circumstances {
            Circumstances::List(Op::Any, list) => list
                .iter()
                .map(|c| match c {
                    Circumstance::ColumnTag(t) | Circumstance::Tag(t) => Some(t.lower.as_str()),
                    _ => None,
                })
                .collect(),
            // Under `all`, one tag circumstance is enough to find every profile it may match.
            Circumstances::List(Op::All, list) => list
                .iter()
                .find_map(|c| match c {
                    Circumstance::ColumnTag(t) | Circumstance::Tag(t) => Some(t.lower.as_str()),
                    _ => None,
                })
                .map(|t| vec![t]),
            _ => None,
        }
    }
}

fn circumstance(c: &Value) -> Circumstance {
    match get(c, "type").and_then(Value::as_str).unwrap_or_default() {
        "columnTags" => tag_ref(get(c, "columnTag"))
            .map_or_else(|| Circumstance::Unknown("columnTags".into()), Circumstance::ColumnTag),
        "tags" => tag_ref(get(c, "tag"))
            .map_or_else(|| Circumstance::Unknown("tags".into()), Circumstance::Tag),
        "columnRegex" => Circumstance::ColumnRegex {
            regex: get(c, "regex").and_then(Value::as_str).unwrap_or_default().to_owned(),
            case_insensitive: get(c, "caseInsensitive").and_then(Value::as_bool) == Some(true),
        },
        "anyTag" => Circumstance::AnyTag,
        "noTags" => Circumstance::NoTags,
        "domains" => Circumstance::Domains(
            get(c, "domains")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|d| {
                    let s = |k: &str| get(d, k).and_then(Value::as_str).map(str::to_owned);
                    (s("id"), s("name"))
                })
                .collect(),
        ),
        other => Circumstance::Unknown(other.to_owned()),
    }
}

/// A digest of a JSON value (to tell whether two configs differ, without keeping them; the
/// fast hash suffices: both sides are digested in the same process).
fn digest(v: &Value) -> u64 {
    use std::hash::{Hash, Hasher};
    fn feed(v: &Value, h: &mut crate::plan::impact::matching::Fx) {
        match v {
            Value::Null => 0u8.hash(h),
            Value::Bool(b) => (1u8, b).hash(h),
            Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => (2u8, i).hash(h),
                (None, Some(f)) => (6u8, f.to_bits()).hash(h),
                (None, None) => (7u8, n.to_string()).hash(h),
            },
            Value::String(s) => (3u8, s).hash(h),
            Value::Array(items) => {
                (4u8, items.len()).hash(h);
                items.iter().for_each(|x| feed(x, h));
            }
            Value::Object(m) => {
                (5u8, m.len()).hash(h);
                for (k, x) in m {
                    k.hash(h);
                    feed(x, h);
                }
            }
        }
    }
    let mut h = crate::plan::impact::matching::Fx::default();
    feed(v, &mut h);
    h.finish()
}

fn data_rule(rule: &Value, tags: &mut Vec<TagRef>) -> Option<RuleKind> {
    let kind = get(rule, "type").and_then(Value::as_str)?;
    let config = get(rule, "config");
    let config_text = config.map_or(0, digest);
    let predicate_tags = |sql: Option<&Value>, tags: &mut Vec<TagRef>| -> Vec<TagRef> {
        let found: Vec<TagRef> = sql
            .and_then(Value::as_str)
            .map(column_tagged)
            .unwrap_or_default()
            .iter()
            .map(|t| TagRef::new(t))
            .collect();
        tags.extend(found.iter().cloned());
        found
    };
    if kind == "Masking" {
        let config = config?;
        let fields: Vec<Field> = config
            .get("fields")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|f| match get(f, "type").and_then(Value::as_str).unwrap_or_default() {
                "columnTags" => tag_ref(get(f, "columnTag"))
                    .map_or_else(|| Field::Unknown("columnTags".into()), Field::ColumnTag),
                "anyTag" => Field::AnyTag,
                "noTags" => Field::NoTags,
                other => Field::Unknown(other.to_owned()),
            })
            .collect();
        for f in &fields {
            if let Field::ColumnTag(t) = f {
                tags.push(t.clone());
            }
        }
        let masking = get(config, "maskingConfig");
        let masking_type =
            masking.and_then(|m| get(m, "type")).and_then(Value::as_str).unwrap_or("?").to_owned();
        let sql = masking.and_then(|m| get(m, "sqlFunction")).and_then(Value::as_str);
        let condition =
            get(config, "conditionalPredicate").and_then(Value::as_str).map(str::to_owned);
        predicate_tags(get(config, "conditionalPredicate"), tags);
        let mut strength = Strength::of(&masking_type, sql);
        if condition.is_some() && strength > Strength::Partial {
            strength = Strength::Partial;
        }
        return Some(RuleKind::Masking(Masking {
            fields,
            operator: match get(config, "operator").and_then(Value::as_str) {
                Some("any") => Some(Op::Any),
                Some("all") => Some(Op::All),
                _ => None,
            },
            kind: masking_type,
            strength,
            condition,
            config: config_text,
        }));
    }
    let mut rule_tags = Vec::new();
    if let Some(c) = config {
        for m in get(c, "matches").and_then(Value::as_array).into_iter().flatten() {
            if let Some(t) = tag_ref(get(m, "tag")) {
                rule_tags.push(t);
            }
        }
        rule_tags.extend(predicate_tags(get(c, "predicate"), tags));
        if let Some(col) = get(c, "column")
            && get(col, "type").and_then(Value::as_str) == Some("tag")
            && let Some(t) = tag_ref(get(col, "name"))
        {
            rule_tags.push(t);
        }
    }
    tags.extend(rule_tags.iter().cloned());
    let summary = row_summary(kind, config);
    Some(RuleKind::Rows { kind: kind.to_owned(), config: config_text, summary, tags: rule_tags })
}

/// A row rule for people: `where STATUS = 'CLOSED'`, `rows whose column tagged Sales.Region
/// matches the user's attribute Region`, `minimization`.
fn row_summary(kind: &str, config: Option<&Value>) -> String {
    let text = |k: &str| config.and_then(|c| get(c, k)).and_then(Value::as_str);
    match kind {
        "Row Restriction by Custom Where Clause" => match text("predicate") {
            Some(p) => format!("only rows where `{p}`"),
            None => "a custom where clause".to_owned(),
        },
        "Row Restriction By User Entitlements" => {
            let matches: Vec<String> = config
                .and_then(|c| get(c, "matches"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|m| {
                    let what = match get(m, "type").and_then(Value::as_str) {
                        Some("group") => "groups".to_owned(),
                        _ => format!(
                            "attribute `{}`",
                            get(m, "attribute").and_then(Value::as_str).unwrap_or("?")
                        ),
                    };
                    let tag = get(m, "tag").and_then(Value::as_str).unwrap_or("?");
                    format!("the column tagged `{tag}` matches the user's {what}")
                })
                .collect();
            if matches.is_empty() {
                "rows by user entitlements".to_owned()
            } else {
                format!("only rows where {}", matches.join(" and "))
            }
        }
        "Minimization" => "minimization (a share of the rows)".to_owned(),
        "Time Restriction" => "a time restriction (recent or old rows only)".to_owned(),
        "Purpose Restriction" => {
            "a purpose restriction (only users acting under a purpose)".to_owned()
        }
        other => format!("`{other}`"),
    }
}

// ---------------------------------------------------------------------------------------------
// Projects and purposes

/// A project, as the impact model reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// `projectKey`.
    pub key: String,
    /// Data-source names it lists.
    pub datasources: BTreeSet<String>,
    /// Purposes its members act under.
    pub purposes: BTreeSet<String>,
    /// Who may join (`subscriptionPolicy`, `manual` when absent).
    pub join: Access,
    /// `allowMaskedJoins`.
    pub masked_joins: bool,
    /// `equalization`.
    pub equalization: bool,
}

impl Project {
    /// The project of a payload.
    pub fn parse(payload: &Value) -> Option<Project> {
        Some(Project {
            key: get(payload, "projectKey").and_then(Value::as_str)?.to_owned(),
            datasources: strs(get(payload, "datasources")).map(str::to_owned).collect(),
            purposes: strs(get(payload, "purposes")).map(str::to_owned).collect(),
            join: Access::parse(get(payload, "subscriptionPolicy"), "manual"),
            masked_joins: get(payload, "allowMaskedJoins").and_then(Value::as_bool) == Some(true),
            equalization: get(payload, "equalization").and_then(Value::as_bool) == Some(true),
        })
    }
}

/// The purpose names a purpose payload defines (itself and its subpurposes).
pub fn purpose_names(payload: &Value, out: &mut BTreeSet<String>) {
    if let Some(n) = payload.get("name").and_then(Value::as_str) {
        out.insert(n.to_owned());
    }
    for s in payload.get("subpurposes").and_then(Value::as_array).into_iter().flatten() {
        purpose_names(s, out);
    }
}

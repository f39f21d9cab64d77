//! The access model of one side of a plan (the last applied specs, or the desired ones): which
//! tables exist with which tags, what each policy says, which projects reach what; and, per
//! table profile, who is masked, restricted and may subscribe.
//!
//! Tables are grouped by **profile**: everything a policy's circumstances can look at (table
//! tags, column tags, column names, owners, domain). Two tables with the same profile get the
//! same policies, so the model is computed once per profile (and per **column class**, a
//! profile plus a column's own tags), not once per table: a 10,000-object tree has tens of
//! thousands of tables but few distinct profiles. Profiles are interned across both sides
//! ([`Interner`]), so an unchanged table has the same profile before and after.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::Value;

use super::matching::{Level, Op, Openness, Strength, TagRef, TagSet, column_tagged};
use super::matching::{data_source_name, literal_regex, purpose_meets};

/// Index of a profile in the [`Interner`].
pub type ProfileId = usize;
/// Index of a column class in the [`Interner`].
pub type ClassId = usize;

/// What the circumstances of a policy can look at, for one table.
#[derive(Debug, Clone)]
pub struct Profile {
    /// Table tags: `options.tableTags` ∪ `sources[].tags.table` (rule T4), plus the tags the
    /// tenant reports (when read).
    pub table: TagSet,
    /// Every tag of every known column.
    pub columns: TagSet,
    /// Known column names (only kept when some policy matches names: rule C3).
    pub column_names: Vec<String>,
    /// Owners (`user:NAME`, `group:NAME`; only kept when some policy has `ownerRestrictions`).
    pub owners: Vec<String>,
    /// `options.domainCollectionId` (only kept when some policy names domains).
    pub domain: Option<String>,
    /// Tags here came from the tenant, not only from the specs.
    pub tenant: bool,
}

/// A column's own tags within a profile.
#[derive(Debug, Clone)]
pub struct Class {
    /// The table's profile.
    pub profile: ProfileId,
    /// The column's tags; `None` for the columns no spec names (their tags are unknown).
    pub tags: Option<TagSet>,
}

/// What the profile key must include: only what some policy of either side looks at, so that
/// tables differing in nothing that matters share a profile.
#[derive(Debug, Clone, Copy, Default)]
pub struct Needs {
    /// Some policy matches column names.
    pub names: bool,
    /// Some policy has owner restrictions.
    pub owners: bool,
    /// Some policy names domains.
    pub domains: bool,
}

/// Profiles and column classes of both sides.
#[derive(Debug, Default)]
pub struct Interner {
    needs: Needs,
    profiles: Vec<Profile>,
    profile_ids: HashMap<String, ProfileId>,
    classes: Vec<Class>,
    class_ids: HashMap<(ProfileId, String), ClassId>,
}

impl Interner {
    /// An interner for policies that need `needs`.
    pub fn new(needs: Needs) -> Self {
        Interner { needs, ..Interner::default() }
    }

    /// The profile of `id`.
    pub fn profile(&self, id: ProfileId) -> &Profile {
        &self.profiles[id]
    }

    /// The class of `id`.
    pub fn class(&self, id: ClassId) -> &Class {
        &self.classes[id]
    }

    /// How many profiles there are.
    pub fn profiles(&self) -> usize {
        self.profiles.len()
    }

    fn profile_id(&mut self, facts: &TableFacts<'_>) -> ProfileId {
        let mut key = String::with_capacity(128);
        let push = |key: &mut String, items: &mut Vec<&str>| {
            items.sort_unstable();
            items.dedup();
            for i in items.iter() {
                key.push_str(i);
                key.push('\u{1f}');
            }
            key.push('\u{1e}');
        };
        let mut table = facts.table_tags.clone();
        push(&mut key, &mut table);
        let mut columns: Vec<&str> =
            facts.columns.iter().flat_map(|c| c.tags.iter().copied()).collect();
        push(&mut key, &mut columns);
        let mut names: Vec<&str> = Vec::new();
        if self.needs.names {
            names = facts.columns.iter().map(|c| c.name).collect();
            push(&mut key, &mut names);
        }
        let mut owners: Vec<String> = Vec::new();
        if self.needs.owners {
            owners = facts.owners.clone();
            owners.sort_unstable();
            owners.dedup();
            for o in &owners {
                key.push_str(o);
                key.push('\u{1f}');
            }
            key.push('\u{1e}');
        }
        let domain = if self.needs.domains { facts.domain.map(str::to_owned) } else { None };
        if let Some(d) = &domain {
            key.push_str(d);
        }
        key.push('\u{1e}');
        if facts.tenant {
            key.push('t');
        }
        if let Some(id) = self.profile_ids.get(&key) {
            return *id;
        }
        let id = self.profiles.len();
        self.profiles.push(Profile {
            table: TagSet::new(table),
            columns: TagSet::new(columns),
            column_names: names.into_iter().map(str::to_owned).collect(),
            owners,
            domain,
            tenant: facts.tenant,
        });
        self.profile_ids.insert(key, id);
        id
    }

    fn class_id(&mut self, profile: ProfileId, tags: Option<&[&str]>) -> ClassId {
        let key = match tags {
            None => "\u{0}unknown".to_owned(),
            Some(tags) => {
                let mut sorted: Vec<&str> = tags.to_vec();
                sorted.sort_unstable();
                sorted.dedup();
                sorted.join("\u{1f}")
            }
        };
        if let Some(id) = self.class_ids.get(&(profile, key.clone())) {
            return *id;
        }
        let id = self.classes.len();
        self.classes.push(Class { profile, tags: tags.map(|t| TagSet::new(t.iter().copied())) });
        self.class_ids.insert((profile, key), id);
        id
    }
}

/// The column name under which the columns no spec names are reported.
pub const OTHER_COLUMNS: &str = "(columns not named in the specs)";

/// One table (one data source) of a connection.
#[derive(Debug, Clone)]
pub struct Table {
    /// `connectionKey`.
    pub connection: String,
    /// `SCHEMA.TABLE`, the query's data-source name, or `*` for every table of a connection
    /// under schema monitoring.
    pub id: String,
    /// The data-source name Immuta gives it (rule N1); for `*`, a description.
    pub name: String,
    /// Its profile.
    pub profile: ProfileId,
    /// Known columns and their classes, the columns no spec names last ([`OTHER_COLUMNS`]).
    pub columns: Vec<(String, ClassId)>,
}

/// A column as the specs describe it, before interning.
struct ColumnFacts<'a> {
    name: &'a str,
    tags: Vec<&'a str>,
}

/// A table as the specs describe it, before interning.
struct TableFacts<'a> {
    table_tags: Vec<&'a str>,
    columns: Vec<ColumnFacts<'a>>,
    owners: Vec<String>,
    domain: Option<&'a str>,
    tenant: bool,
}

fn strs(v: Option<&Value>) -> impl Iterator<Item = &str> {
    v.and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str)
}

fn owner_names(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|o| {
            let kind = o.get("type").and_then(Value::as_str).unwrap_or("user");
            Some(format!("{kind}:{}", o.get("name")?.as_str()?))
        })
        .collect()
}

/// Tags the tenant reports, by data-source name.
pub type TenantTags = HashMap<String, Vec<String>>;

/// The tables of a data-source connection payload.
pub fn tables(payload: &Value, interner: &mut Interner, tenant: Option<&TenantTags>) -> Vec<Table> {
    let connection = payload.get("connectionKey").and_then(Value::as_str).unwrap_or_default();
    let options = payload.get("options");
    let shared_tags: Vec<&str> = strs(options.and_then(|o| o.get("tableTags"))).collect();
    let domain = options.and_then(|o| o.get("domainCollectionId")).and_then(Value::as_str);
    let owners = owner_names(payload.get("owners"));
    let format =
        payload.get("nameTemplate").and_then(|t| t.get("dataSourceFormat")).and_then(Value::as_str);
    let database = payload
        .get("connection")
        .and_then(|c| c.get("database"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let sources = payload.get("sources").and_then(Value::as_array);
    let every_table = sources
        .is_none_or(|s| s.iter().any(|x| x.get("all").and_then(Value::as_bool) == Some(true)));
    let mut out = Vec::new();
    if every_table {
        // Schema monitoring: the tables are not known offline; what every one of them carries
        // (the connection's tags and owners) is.
        let facts = TableFacts {
            table_tags: shared_tags.clone(),
            columns: Vec::new(),
            owners: owners.clone(),
            domain,
            tenant: false,
        };
        let profile = interner.profile_id(&facts);
        let other = interner.class_id(profile, None);
        out.push(Table {
            connection: connection.to_owned(),
            id: "*".to_owned(),
            name: format!("every table of connection {connection}"),
            profile,
            columns: vec![(OTHER_COLUMNS.to_owned(), other)],
        });
    }
    for s in sources.into_iter().flatten() {
        if s.get("all").is_some() {
            continue;
        }
        let naming = s.get("naming");
        let named = naming.and_then(|n| n.get("datasource")).and_then(Value::as_str);
        let (id, name) = match (s.get("tableName").and_then(Value::as_str), named) {
            (Some(table), _) => {
                let schema = s.get("schema").and_then(Value::as_str).unwrap_or_default();
                let name = named.map_or_else(
                    || data_source_name(format, table, schema, database),
                    str::to_owned,
                );
                (format!("{schema}.{table}"), name)
            }
            (None, Some(name)) => (name.to_owned(), name.to_owned()),
            (None, None) => continue,
        };
        let tags = s.get("tags");
        let mut table_tags = shared_tags.clone();
        table_tags.extend(strs(tags.and_then(|t| t.get("table"))));
        let reported = tenant.and_then(|t| t.get(&name));
        if let Some(reported) = reported {
            table_tags.extend(reported.iter().map(String::as_str));
        }
        let mut columns: Vec<ColumnFacts<'_>> = Vec::new();
        for c in tags.and_then(|t| t.get("columns")).and_then(Value::as_array).into_iter().flatten()
        {
            if let Some(n) = c.get("columnName").and_then(Value::as_str) {
                let t: Vec<&str> = strs(c.get("tags")).collect();
                match columns.iter_mut().find(|x| x.name == n) {
                    Some(x) => x.tags.extend(t),
                    None => columns.push(ColumnFacts { name: n, tags: t }),
                }
            }
        }
        for (list, field) in [("columns", "name"), ("columnDescriptions", "columnName")] {
            for c in s.get(list).and_then(Value::as_array).into_iter().flatten() {
                if let Some(n) = c.get(field).and_then(Value::as_str)
                    && !columns.iter().any(|x| x.name == n)
                {
                    columns.push(ColumnFacts { name: n, tags: Vec::new() });
                }
            }
        }
        let mut table_owners = owners.clone();
        table_owners.extend(owner_names(s.get("owners")));
        let facts = TableFacts {
            table_tags,
            columns,
            owners: table_owners,
            domain,
            tenant: reported.is_some_and(|r| !r.is_empty()),
        };
        let profile = interner.profile_id(&facts);
        let mut cols: Vec<(String, ClassId)> = facts
            .columns
            .iter()
            .map(|c| (c.name.to_owned(), interner.class_id(profile, Some(&c.tags))))
            .collect();
        cols.sort_by(|a, b| a.0.cmp(&b.0));
        cols.push((OTHER_COLUMNS.to_owned(), interner.class_id(profile, None)));
        out.push(Table { connection: connection.to_owned(), id, name, profile, columns: cols });
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Policies

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
                let name = a.get("name").and_then(Value::as_str)?;
                Some(match a.get("value").and_then(Value::as_str) {
                    Some(value) => format!("{name}={value}"),
                    None => name.to_owned(),
                })
            })
            .collect();
        Some(Principals {
            op: match v.get("operator").and_then(Value::as_str) {
                Some("any") => Some(Op::Any),
                Some("all") => Some(Op::All),
                _ => None,
            },
            groups: strs(v.get("groups")).map(str::to_owned).collect(),
            attributes,
            purposes: strs(v.get("purposes")).map(str::to_owned).collect(),
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
    /// Everything of the rule's config, to tell a changed rule.
    pub config: String,
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
        /// The config as text, to tell a changed rule.
        config: String,
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
        let bool_at = |k: &str| v.get(k).and_then(Value::as_bool);
        Access {
            kind: v.get("type").and_then(Value::as_str).unwrap_or(default).to_owned(),
            entitlements: Principals::parse(v.get("entitlements")),
            advanced: v.get("advanced").and_then(Value::as_str).map(str::to_owned),
            approvals: v
                .get("approvals")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|a| {
                    let p = a.get("requiredPermission").and_then(Value::as_str).unwrap_or("?");
                    if a.get("specificApproverRequired").and_then(Value::as_bool) == Some(true) {
                        format!("{p} (a specific approver)")
                    } else {
                        p.to_owned()
                    }
                })
                .collect(),
            automatic: bool_at("automaticSubscription").unwrap_or(false),
            discovery: bool_at("allowDiscovery").unwrap_or(false),
            grant: v.get("accessGrant").and_then(Value::as_str).map(str::to_owned),
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
}

fn tag_ref(v: Option<&Value>) -> Option<TagRef> {
    v.and_then(Value::as_str).filter(|s| !s.is_empty()).map(TagRef::new)
}

impl Policy {
    /// The policy of a payload, `None` when it is not a data or subscription policy.
    pub fn parse(payload: &Value) -> Option<Policy> {
        let key = payload.get("policyKey").and_then(Value::as_str)?.to_owned();
        let kind = match payload.get("type").and_then(Value::as_str) {
            Some("data") => PolicyKind::Data,
            Some("subscription") => PolicyKind::Subscription,
            _ => return None,
        };
        let mut tags = Vec::new();
        let circumstances = match payload.get("circumstances") {
            None => Circumstances::Absent,
            Some(Value::Array(list)) if !list.is_empty() => {
                let op =
                    Op::parse(payload.get("circumstanceOperator").and_then(Value::as_str), Op::Any);
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
        let owners = payload.get("ownerRestrictions").filter(|v| v.is_object()).map(|o| {
            o.get("users")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|u| u.get("username").and_then(Value::as_str))
                .map(|u| format!("user:{u}"))
                .chain(strs(o.get("groups")).map(|g| format!("group:{g}")))
                .collect()
        });
        let mut rules = Vec::new();
        let mut access = None;
        match kind {
            PolicyKind::Data => {
                let actions = payload.get("actions").and_then(Value::as_array);
                for (a, action) in actions.into_iter().flatten().enumerate() {
                    let list = action.get("rules").and_then(Value::as_array);
                    for (r, rule) in list.into_iter().flatten().enumerate() {
                        if let Some(kind) = data_rule(rule, &mut tags) {
                            rules.push(DataRule {
                                action: a,
                                rule: r,
                                kind,
                                audience: Audience {
                                    inclusions: Principals::parse(rule.get("inclusions")),
                                    exceptions: Principals::parse(rule.get("exceptions")),
                                },
                            });
                        }
                    }
                }
            }
            PolicyKind::Subscription => {
                access = Some(Access::parse(payload.get("actions"), "unknown"));
            }
        }
        tags.sort();
        tags.dedup();
        Some(Policy {
            key,
            kind,
            staged: payload.get("staged").and_then(Value::as_bool) == Some(true),
            circumstances,
            owners,
            rules,
            access,
            tags,
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
    match c.get("type").and_then(Value::as_str).unwrap_or_default() {
        "columnTags" => tag_ref(c.get("columnTag"))
            .map_or_else(|| Circumstance::Unknown("columnTags".into()), Circumstance::ColumnTag),
        "tags" => tag_ref(c.get("tag"))
            .map_or_else(|| Circumstance::Unknown("tags".into()), Circumstance::Tag),
        "columnRegex" => Circumstance::ColumnRegex {
            regex: c.get("regex").and_then(Value::as_str).unwrap_or_default().to_owned(),
            case_insensitive: c.get("caseInsensitive").and_then(Value::as_bool) == Some(true),
        },
        "anyTag" => Circumstance::AnyTag,
        "noTags" => Circumstance::NoTags,
        "domains" => Circumstance::Domains(
            c.get("domains")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|d| {
                    let s = |k: &str| d.get(k).and_then(Value::as_str).map(str::to_owned);
                    (s("id"), s("name"))
                })
                .collect(),
        ),
        other => Circumstance::Unknown(other.to_owned()),
    }
}

fn data_rule(rule: &Value, tags: &mut Vec<TagRef>) -> Option<RuleKind> {
    let kind = rule.get("type").and_then(Value::as_str)?;
    let config = rule.get("config");
    let config_text = config.map(Value::to_string).unwrap_or_default();
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
            .map(|f| match f.get("type").and_then(Value::as_str).unwrap_or_default() {
                "columnTags" => tag_ref(f.get("columnTag"))
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
        let masking = config.get("maskingConfig");
        let masking_type =
            masking.and_then(|m| m.get("type")).and_then(Value::as_str).unwrap_or("?").to_owned();
        let sql = masking.and_then(|m| m.get("sqlFunction")).and_then(Value::as_str);
        let condition =
            config.get("conditionalPredicate").and_then(Value::as_str).map(str::to_owned);
        predicate_tags(config.get("conditionalPredicate"), tags);
        let mut strength = Strength::of(&masking_type, sql);
        if condition.is_some() && strength > Strength::Partial {
            strength = Strength::Partial;
        }
        return Some(RuleKind::Masking(Masking {
            fields,
            operator: match config.get("operator").and_then(Value::as_str) {
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
        for m in c.get("matches").and_then(Value::as_array).into_iter().flatten() {
            if let Some(t) = tag_ref(m.get("tag")) {
                rule_tags.push(t);
            }
        }
        rule_tags.extend(predicate_tags(c.get("predicate"), tags));
        if let Some(col) = c.get("column")
            && col.get("type").and_then(Value::as_str) == Some("tag")
            && let Some(t) = tag_ref(col.get("name"))
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
    let text = |k: &str| config.and_then(|c| c.get(k)).and_then(Value::as_str);
    match kind {
        "Row Restriction by Custom Where Clause" => match text("predicate") {
            Some(p) => format!("only rows where `{p}`"),
            None => "a custom where clause".to_owned(),
        },
        "Row Restriction By User Entitlements" => {
            let matches: Vec<String> = config
                .and_then(|c| c.get("matches"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|m| {
                    let what = match m.get("type").and_then(Value::as_str) {
                        Some("group") => "groups".to_owned(),
                        _ => format!(
                            "attribute `{}`",
                            m.get("attribute").and_then(Value::as_str).unwrap_or("?")
                        ),
                    };
                    let tag = m.get("tag").and_then(Value::as_str).unwrap_or("?");
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
            key: payload.get("projectKey").and_then(Value::as_str)?.to_owned(),
            datasources: strs(payload.get("datasources")).map(str::to_owned).collect(),
            purposes: strs(payload.get("purposes")).map(str::to_owned).collect(),
            join: Access::parse(payload.get("subscriptionPolicy"), "manual"),
            masked_joins: payload.get("allowMaskedJoins").and_then(Value::as_bool) == Some(true),
            equalization: payload.get("equalization").and_then(Value::as_bool) == Some(true),
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

// ---------------------------------------------------------------------------------------------
// One side

/// One side of a plan: its tables, policies, projects and purposes, and the policy index.
#[derive(Debug, Default)]
pub struct World {
    /// Tables by connection key.
    pub connections: HashMap<String, Arc<Vec<Table>>>,
    /// Policies by key.
    pub policies: HashMap<String, Arc<Policy>>,
    /// Projects by key.
    pub projects: HashMap<String, Arc<Project>>,
    /// Every purpose name.
    pub purposes: BTreeSet<String>,
    /// Data-source names recorded by the tenant for each connection (state), when known.
    pub recorded_names: HashMap<String, Vec<String>>,
    /// Connections whose dropped tables are deleted (`hardDelete: true`), not disabled.
    pub hard_delete: std::collections::HashSet<String>,
    /// Policies by lower-cased circumstance tag ([`Policy::index_tags`]).
    index: HashMap<String, Vec<Arc<Policy>>>,
    /// Policies to evaluate against every profile.
    generic: Vec<Arc<Policy>>,
}

impl World {
    /// Builds the policy index (call once every policy is in).
    pub fn index(&mut self) {
        let mut keys: Vec<&String> = self.policies.keys().collect();
        keys.sort();
        for key in keys {
            let p = &self.policies[key];
            if p.staged {
                continue;
            }
            match p.index_tags() {
                Some(tags) => {
                    let mut tags = tags;
                    tags.sort_unstable();
                    tags.dedup();
                    for t in tags {
                        self.index.entry(t.to_owned()).or_default().push(Arc::clone(p));
                    }
                }
                None => self.generic.push(Arc::clone(p)),
            }
        }
    }

    /// Every table, in a stable order.
    pub fn tables(&self) -> impl Iterator<Item = &Table> {
        self.connections.values().flat_map(|t| t.iter())
    }

    /// The policies that may apply to `profile` (a superset; [`applies`] decides), sorted by
    /// key and without duplicates.
    fn candidates(&self, profile: &Profile) -> Vec<&Arc<Policy>> {
        let mut out: Vec<&Arc<Policy>> = self.generic.iter().collect();
        for t in profile.table.lower_with_ancestors().chain(profile.columns.lower_with_ancestors())
        {
            if let Some(list) = self.index.get(t) {
                out.extend(list);
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out.dedup_by(|a, b| a.key == b.key);
        out
    }
}

/// Whether `policy` applies to a table of `profile` (rules C1–C5).
pub fn applies(policy: &Policy, profile: &Profile) -> Level {
    if policy.staged {
        return Level::No;
    }
    let level = match &policy.circumstances {
        Circumstances::Absent => Level::Certain,
        Circumstances::Empty => Level::Possible,
        Circumstances::List(op, list) => {
            op.combine(list.iter().map(|c| circumstance_level(c, profile)))
        }
    };
    match &policy.owners {
        // Restricted to data sources of these owners (rule C5): certain only with an owner
        // declared in Git; owners set outside Git are not known.
        Some(owners) if level.possible() => {
            if profile.owners.iter().any(|o| owners.contains(o)) {
                level
            } else {
                level.and(Level::Possible)
            }
        }
        _ => level,
    }
}

fn circumstance_level(c: &Circumstance, profile: &Profile) -> Level {
    match c {
        Circumstance::ColumnTag(t) => profile.columns.has(t),
        Circumstance::Tag(t) => profile.table.has(t),
        Circumstance::ColumnRegex { regex, case_insensitive } => {
            let exact = literal_regex(regex)
                && profile.column_names.iter().any(|n| {
                    if *case_insensitive { n.eq_ignore_ascii_case(regex) } else { n == regex }
                });
            if exact { Level::Certain } else { Level::Possible }
        }
        Circumstance::AnyTag => {
            if profile.columns.is_empty() && profile.table.is_empty() {
                Level::Possible
            } else {
                Level::Certain
            }
        }
        Circumstance::NoTags | Circumstance::Unknown(_) => Level::Possible,
        Circumstance::Domains(domains) => domains
            .iter()
            .map(|(id, name)| match (id, &profile.domain) {
                (Some(id), Some(d)) if id == d => Level::Certain,
                (Some(_), _) => Level::No,
                (None, _) if name.is_some() => Level::Possible,
                _ => Level::No,
            })
            .fold(Level::No, Level::or),
    }
}

/// Whether masking `fields` select a column of `class` (rules M1, M2), and the depth of the
/// tag that selects it (rule M5: `anyTag`, `noTags` and unknown selectors rank at depth 0).
fn field_level(m: &Masking, class: &Class) -> (Level, usize) {
    let mut levels = Vec::with_capacity(m.fields.len());
    let mut depth = 0;
    for f in &m.fields {
        let level = match (f, &class.tags) {
            (Field::ColumnTag(t), Some(tags)) => {
                let l = tags.has(t);
                if l.possible() {
                    depth = depth.max(t.depth);
                }
                l
            }
            // Tags from outside Git are not guessed (rule T2).
            (Field::ColumnTag(_), None) => Level::No,
            (Field::AnyTag, Some(tags)) if !tags.is_empty() => Level::Certain,
            (Field::AnyTag, _) => Level::Possible,
            (Field::NoTags, Some(tags)) if !tags.is_empty() => Level::No,
            (Field::NoTags, _) => Level::Possible,
            (Field::Unknown(_), _) => Level::Possible,
        };
        levels.push(level);
    }
    // `any` (and possible under any operator): one field is enough; certain under `all` (or
    // no operator) only when every field selects the column.
    let possible = Op::Any.combine(levels.iter().copied());
    let certain = match m.operator {
        Some(Op::Any) => possible,
        _ => Op::All.combine(levels.iter().copied()),
    };
    let level =
        if certain == Level::Certain { Level::Certain } else { possible.and(Level::Possible) };
    (level, depth)
}

/// One masking rule that may mask a column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaskCandidate {
    /// The policy.
    pub policy: Arc<Policy>,
    /// Index of the rule in [`Policy::rules`].
    pub rule: usize,
    /// How surely it applies to the column.
    pub level: Level,
    /// The depth of the tag that selects the column (rule M5).
    pub depth: usize,
}

impl MaskCandidate {
    /// The masking of the rule.
    pub fn masking(&self) -> Option<&Masking> {
        match &self.policy.rules[self.rule].kind {
            RuleKind::Masking(m) => Some(m),
            RuleKind::Rows { .. } => None,
        }
    }

    /// Its strength.
    pub fn strength(&self) -> Strength {
        self.masking().map_or(Strength::None, |m| m.strength)
    }

    /// Who the rule applies to.
    pub fn audience(&self) -> &Audience {
        &self.policy.rules[self.rule].audience
    }
}

/// One row-level rule on a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowCandidate {
    /// The policy.
    pub policy: Arc<Policy>,
    /// Index of the rule in [`Policy::rules`].
    pub rule: usize,
    /// How surely it applies.
    pub level: Level,
}

impl RowCandidate {
    /// The rule's config (as text) and what it does, for people.
    pub fn rows(&self) -> (&str, &str) {
        match &self.policy.rules[self.rule].kind {
            RuleKind::Rows { config, summary, .. } => (config, summary),
            RuleKind::Masking(_) => ("", ""),
        }
    }

    /// Who the rule applies to.
    pub fn audience(&self) -> &Audience {
        &self.policy.rules[self.rule].audience
    }
}

/// One subscription policy on a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubCandidate {
    /// The policy.
    pub policy: Arc<Policy>,
    /// How surely it applies.
    pub level: Level,
}

impl SubCandidate {
    /// What it says.
    pub fn access(&self) -> &Access {
        // Subscription policies always carry an access; an empty one is never used.
        static NONE: std::sync::OnceLock<Access> = std::sync::OnceLock::new();
        self.policy.access.as_ref().unwrap_or_else(|| NONE.get_or_init(Access::default))
    }
}

/// What applies to one profile on one side.
#[derive(Debug, Default)]
pub struct ProfileModel {
    /// Data policies that may apply (with their level), by key order.
    data: Vec<(Arc<Policy>, Level)>,
    /// Row rules (AND'ed: rule R1).
    pub rows: Vec<RowCandidate>,
    /// Subscription policies.
    pub subscriptions: Vec<SubCandidate>,
}

impl ProfileModel {
    /// The model of `profile` in `world`.
    pub fn new(world: &World, profile: &Profile) -> ProfileModel {
        let mut model = ProfileModel::default();
        for p in world.candidates(profile) {
            let level = applies(p, profile);
            if !level.possible() {
                continue;
            }
            match p.kind {
                PolicyKind::Subscription => {
                    model.subscriptions.push(SubCandidate { policy: Arc::clone(p), level });
                }
                PolicyKind::Data => {
                    for (i, r) in p.rules.iter().enumerate() {
                        if let RuleKind::Rows { tags, .. } = &r.kind {
                            // A rule that reads columns by tag is certain only where a column
                            // in Git carries it (rule R2).
                            let reads = tags.iter().map(|t| profile.columns.has(t));
                            let level = level.and(if tags.is_empty() {
                                Level::Certain
                            } else {
                                Op::All.combine(reads).or(Level::Possible)
                            });
                            model.rows.push(RowCandidate { policy: Arc::clone(p), rule: i, level });
                        }
                    }
                    model.data.push((Arc::clone(p), level));
                }
            }
        }
        model
    }

    /// The masking rules that may decide a column of `class`: every rule that selects it, minus
    /// those a certain candidate with a deeper tag overrides (rule M5). Sorted by policy key.
    pub fn masking(&self, class: &Class) -> Vec<MaskCandidate> {
        let mut out = Vec::new();
        for (p, level) in &self.data {
            for (i, r) in p.rules.iter().enumerate() {
                if let RuleKind::Masking(m) = &r.kind {
                    let (fields, depth) = field_level(m, class);
                    let level = level.and(fields);
                    if level.possible() {
                        out.push(MaskCandidate { policy: Arc::clone(p), rule: i, level, depth });
                    }
                }
            }
        }
        let deepest = out.iter().filter(|c| c.level == Level::Certain).map(|c| c.depth).max();
        if let Some(d) = deepest {
            out.retain(|c| c.depth >= d);
        }
        out
    }
}

/// The projects whose purposes meet a purpose an exception names (rule P2), with the level.
pub fn projects_meeting<'a>(
    purpose: &str,
    projects: impl Iterator<Item = &'a Project>,
) -> Vec<(&'a str, Level)> {
    let mut out: Vec<(&str, Level)> = projects
        .filter_map(|p| {
            let level =
                p.purposes.iter().map(|h| purpose_meets(purpose, h)).fold(Level::No, Level::or);
            level.possible().then_some((p.key.as_str(), level))
        })
        .collect();
    out.sort();
    out
}

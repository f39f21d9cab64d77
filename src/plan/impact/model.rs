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

use super::DataSourceRef;
use super::matching::{FxMap, Level, Op, Openness, Strength, TagRef, TagSet, column_tagged};
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
    profile_ids: FxMap<String, ProfileId>,
    classes: Vec<Class>,
    class_ids: FxMap<ProfileId, FxMap<String, ClassId>>,
    /// A reused buffer for keys.
    key: String,
    /// Column names, shared by every table that has them.
    column_names: super::matching::FxSet<Arc<str>>,
    /// Column lists, shared by every table that has the same (most tables of a large tree
    /// repeat a few shapes).
    column_lists: super::matching::FxSet<Columns>,
}

/// A table's known columns and their classes, sorted by name, the columns no spec names last.
pub type Columns = Arc<[(Arc<str>, ClassId)]>;

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

    /// How many column classes there are.
    pub fn classes(&self) -> usize {
        self.classes.len()
    }

    /// A column list, shared.
    fn column_list(&mut self, list: &[(Arc<str>, ClassId)]) -> Columns {
        if let Some(l) = self.column_lists.get(list) {
            return Arc::clone(l);
        }
        let l: Columns = Arc::from(list);
        self.column_lists.insert(Arc::clone(&l));
        l
    }

    /// A column name, shared.
    fn column_name(&mut self, name: &str) -> Arc<str> {
        if let Some(n) = self.column_names.get(name) {
            return Arc::clone(n);
        }
        let n: Arc<str> = Arc::from(name);
        self.column_names.insert(Arc::clone(&n));
        n
    }

    /// The profile of the table in `sc` (its lists are sorted in place).
    fn profile_id(
        &mut self,
        sc: &mut Scratch<'_>,
        domain: Option<&str>,
        tenant: bool,
    ) -> ProfileId {
        let mut key = std::mem::take(&mut self.key);
        key.clear();
        let push = |key: &mut String, items: &mut Vec<&str>| {
            items.sort_unstable();
            items.dedup();
            for i in items.iter() {
                key.push_str(i);
                key.push('\u{1f}');
            }
            key.push('\u{1e}');
        };
        push(&mut key, &mut sc.table);
        sc.all.clear();
        for (_, start, end) in &sc.columns {
            sc.all.extend_from_slice(&sc.tags[*start..*end]);
        }
        push(&mut key, &mut sc.all);
        sc.names.clear();
        if self.needs.names {
            sc.names.extend(sc.columns.iter().map(|c| c.0));
            push(&mut key, &mut sc.names);
        }
        if self.needs.owners {
            sc.owners.sort_unstable();
            sc.owners.dedup();
            for o in &sc.owners {
                key.push_str(o);
                key.push('\u{1f}');
            }
            key.push('\u{1e}');
        }
        let domain = if self.needs.domains { domain } else { None };
        if let Some(d) = domain {
            key.push_str(d);
        }
        key.push('\u{1e}');
        if tenant {
            key.push('t');
        }
        if let Some(id) = self.profile_ids.get(key.as_str()) {
            let id = *id;
            self.key = key;
            return id;
        }
        let id = self.profiles.len();
        self.profiles.push(Profile {
            table: TagSet::new(sc.table.iter().copied()),
            columns: TagSet::new(sc.all.iter().copied()),
            column_names: sc.names.iter().map(|n| (*n).to_owned()).collect(),
            owners: if self.needs.owners { sc.owners.clone() } else { Vec::new() },
            domain: domain.map(str::to_owned),
            tenant,
        });
        self.profile_ids.insert(key.clone(), id);
        self.key = key;
        id
    }

    /// The class of a column of `profile` with `tags` (sorted in place), or of the columns no
    /// spec names (`None`).
    fn class_id(&mut self, profile: ProfileId, tags: Option<&mut [&str]>) -> ClassId {
        let mut key = std::mem::take(&mut self.key);
        key.clear();
        let mut tags = tags;
        if let Some(t) = tags.as_deref_mut() {
            t.sort_unstable();
        }
        match &tags {
            None => key.push_str("\u{0}unknown"),
            Some(tags) => {
                let mut last = None;
                for t in tags.iter() {
                    if last != Some(*t) {
                        key.push_str(t);
                        key.push('\u{1f}');
                    }
                    last = Some(*t);
                }
            }
        }
        let ids = self.class_ids.entry(profile).or_default();
        let id = match ids.get(key.as_str()) {
            Some(id) => *id,
            None => {
                let id = self.classes.len();
                self.classes
                    .push(Class { profile, tags: tags.map(|t| TagSet::new(t.iter().copied())) });
                ids.insert(key.clone(), id);
                id
            }
        };
        self.key = key;
        id
    }
}

/// The column name under which the columns no spec names are reported.
pub const OTHER_COLUMNS: &str = "(columns not named in the specs)";

/// One table (one data source) of a connection. Its names are built on first use from the
/// connection's payload: most tables of a large tree are never named in a finding.
#[derive(Debug, Clone)]
pub struct Table {
    /// The connection's payload (shared).
    payload: Arc<Value>,
    /// Its `connectionKey` (shared by the connection's tables).
    connection: Arc<str>,
    /// Its entry in `sources`, or `None` for every table of a connection under schema
    /// monitoring.
    index: Option<u32>,
    /// Its connection, `SCHEMA.TABLE` (the query's data-source name, or `*`) and data-source
    /// name (rule N1; for `*`, a description), once asked for.
    source: std::sync::OnceLock<Arc<DataSourceRef>>,
    /// Its profile.
    pub profile: ProfileId,
    /// Known columns and their classes, the columns no spec names last ([`OTHER_COLUMNS`]).
    pub columns: Columns,
}

impl Table {
    /// Its connection, `SCHEMA.TABLE` and data-source name.
    pub fn source(&self) -> &Arc<DataSourceRef> {
        self.source.get_or_init(|| Arc::new(self.describe()))
    }

    /// The data-source name.
    pub fn name(&self) -> &str {
        &self.source().data_source
    }

    /// `SCHEMA.TABLE` (or `*`).
    pub fn id(&self) -> &str {
        &self.source().table
    }

    fn describe(&self) -> DataSourceRef {
        let connection = Arc::clone(&self.connection);
        let payload: &Value = &self.payload;
        let source = self.index.and_then(|i| get(payload, "sources")?.as_array()?.get(i as usize));
        let Some(s) = source else {
            return DataSourceRef {
                data_source: format!("every table of connection {connection}"),
                connection,
                table: "*".to_owned(),
            };
        };
        let format = get(payload, "nameTemplate")
            .and_then(|t| get(t, "dataSourceFormat"))
            .and_then(Value::as_str);
        let database = get(payload, "connection")
            .and_then(|c| get(c, "database"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let (table, name) = source_names(s, format, database).unwrap_or_default();
        DataSourceRef { data_source: name, connection, table }
    }
}

/// `SCHEMA.TABLE` (or the query's data-source name) and the data-source name of a `sources`
/// entry (rule N1), `None` for an entry that names no table.
fn source_names(s: &Value, format: Option<&str>, database: &str) -> Option<(String, String)> {
    let named = get(s, "naming").and_then(|n| get(n, "datasource")).and_then(Value::as_str);
    match (get(s, "tableName").and_then(Value::as_str), named) {
        (Some(table), _) => {
            let schema = get(s, "schema").and_then(Value::as_str).unwrap_or_default();
            let name = named
                .map_or_else(|| data_source_name(format, table, schema, database), str::to_owned);
            let mut id = String::with_capacity(schema.len() + 1 + table.len());
            id.push_str(schema);
            id.push('.');
            id.push_str(table);
            Some((id, name))
        }
        (None, Some(name)) => Some((name.to_owned(), name.to_owned())),
        (None, None) => None,
    }
}

/// A table as the specs describe it, before interning: buffers reused from table to table
/// (a large tree has tens of thousands of tables).
#[derive(Default)]
struct Scratch<'a> {
    /// Table tags.
    table: Vec<&'a str>,
    /// Column tags, one range per column.
    tags: Vec<&'a str>,
    /// Columns: name and range in `tags`.
    columns: Vec<(&'a str, usize, usize)>,
    /// Every column tag (the profile's).
    all: Vec<&'a str>,
    /// Column names (when a policy matches them).
    names: Vec<&'a str>,
    /// Owners (when a policy restricts to them).
    owners: Vec<String>,
    /// The table's column list, before it is shared.
    list: Vec<(Arc<str>, ClassId)>,
}

/// `v[key]`, scanning a small object instead of hashing the key: spec objects have a handful
/// of fields, and a large tree has tens of thousands of them (serde_json's maps hash with
/// SipHash).
fn get<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
    match v {
        Value::Object(m) if m.len() <= 8 => m.iter().find(|(k, _)| *k == key).map(|(_, v)| v),
        other => other.get(key),
    }
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

/// The table tags a data-source payload declares, by data-source name (what a post of it
/// sets, and so what a later post without them may take away).
pub fn declared_tags(payload: &Arc<Value>) -> HashMap<String, Vec<String>> {
    let mut interner = Interner::default();
    let mut out = HashMap::new();
    for t in tables(payload, &mut interner, None) {
        let tags = interner.profile(t.profile).table.tags.iter().cloned().collect();
        out.insert(t.name().to_owned(), tags);
    }
    out
}

/// The tables of a data-source connection payload.
pub fn tables(
    shared: &Arc<Value>,
    interner: &mut Interner,
    tenant: Option<&TenantTags>,
) -> Vec<Table> {
    let payload: &Value = shared;
    let connection = payload.get("connectionKey").and_then(Value::as_str).unwrap_or_default();
    let other_columns: Arc<str> = interner.column_name(OTHER_COLUMNS);
    let connection_key: Arc<str> = Arc::from(connection);
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
        .is_none_or(|s| s.iter().any(|x| get(x, "all").and_then(Value::as_bool) == Some(true)));
    let mut out = Vec::with_capacity(sources.map_or(1, Vec::len));
    let mut sc = Scratch::default();
    if every_table {
        // Schema monitoring: the tables are not known offline; what every one of them carries
        // (the connection's tags and owners) is.
        sc.table.extend(&shared_tags);
        sc.owners.clone_from(&owners);
        let profile = interner.profile_id(&mut sc, domain, false);
        let other = interner.class_id(profile, None);
        out.push(Table {
            payload: Arc::clone(shared),
            connection: Arc::clone(&connection_key),
            index: None,
            source: std::sync::OnceLock::new(),
            profile,
            columns: interner.column_list(&[(Arc::clone(&other_columns), other)]),
        });
    }
    for (index, s) in sources.into_iter().flatten().enumerate() {
        if get(s, "all").is_some() {
            continue;
        }
        let tags = get(s, "tags");
        // The name is needed now only to look up what the tenant reports.
        let source = std::sync::OnceLock::new();
        let mut reported = None;
        if let Some(t) = tenant {
            let Some((id, name)) = source_names(s, format, database) else { continue };
            reported = t.get(&name);
            let _ = source.set(Arc::new(DataSourceRef {
                data_source: name,
                connection: Arc::clone(&connection_key),
                table: id,
            }));
        } else if get(s, "tableName").is_none()
            && get(s, "naming").and_then(|n| get(n, "datasource")).is_none()
        {
            continue;
        }
        sc.table.clear();
        sc.table.extend(&shared_tags);
        sc.table.extend(strs(tags.and_then(|t| get(t, "table"))));
        // Tags the tenant reports that the specs do not declare come from outside Git.
        let outside = reported.is_some_and(|r| r.iter().any(|t| !sc.table.contains(&t.as_str())));
        if let Some(reported) = reported {
            sc.table.extend(reported.iter().map(String::as_str));
        }
        sc.tags.clear();
        sc.columns.clear();
        for c in
            tags.and_then(|t| get(t, "columns")).and_then(Value::as_array).into_iter().flatten()
        {
            let Some(n) = get(c, "columnName").and_then(Value::as_str) else { continue };
            let start = sc.tags.len();
            if let Some(i) = sc.columns.iter().position(|x| x.0 == n) {
                // The same column twice: its tags move to the end, with the new ones.
                let (_, a, b) = sc.columns[i];
                for k in a..b {
                    let t = sc.tags[k];
                    sc.tags.push(t);
                }
                sc.tags.extend(strs(get(c, "tags")));
                sc.columns[i] = (n, start, sc.tags.len());
            } else {
                sc.tags.extend(strs(get(c, "tags")));
                sc.columns.push((n, start, sc.tags.len()));
            }
        }
        for (list, field) in [("columns", "name"), ("columnDescriptions", "columnName")] {
            for c in get(s, list).and_then(Value::as_array).into_iter().flatten() {
                if let Some(n) = get(c, field).and_then(Value::as_str)
                    && !sc.columns.iter().any(|x| x.0 == n)
                {
                    let at = sc.tags.len();
                    sc.columns.push((n, at, at));
                }
            }
        }
        // Owners matter only to `ownerRestrictions` (rule C5).
        sc.owners.clear();
        if interner.needs.owners {
            sc.owners.extend(owners.iter().cloned());
            sc.owners.extend(owner_names(get(s, "owners")));
        }
        let profile = interner.profile_id(&mut sc, domain, outside);
        let mut cols = std::mem::take(&mut sc.list);
        cols.clear();
        let Scratch { tags, columns, .. } = &mut sc;
        for (n, a, b) in columns.iter() {
            let class = interner.class_id(profile, Some(&mut tags[*a..*b]));
            cols.push((interner.column_name(n), class));
        }
        cols.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        cols.push((Arc::clone(&other_columns), interner.class_id(profile, None)));
        let columns = interner.column_list(&cols);
        sc.list = cols;
        out.push(Table {
            payload: Arc::clone(shared),
            connection: Arc::clone(&connection_key),
            index: u32::try_from(index).ok(),
            source,
            profile,
            columns,
        });
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
    fn feed(v: &Value, h: &mut super::matching::Fx) {
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
    let mut h = super::matching::Fx::default();
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

// ---------------------------------------------------------------------------------------------
// One side

/// One side of a plan: its tables, policies, projects and purposes, and the policy index.
#[derive(Debug, Default)]
pub struct World {
    /// Tables by connection key.
    pub connections: FxMap<String, Arc<Vec<Table>>>,
    /// Policies by key.
    pub policies: FxMap<String, Arc<Policy>>,
    /// Projects by key.
    pub projects: FxMap<String, Arc<Project>>,
    /// Every purpose name.
    pub purposes: BTreeSet<String>,
    /// Data-source names recorded by the tenant for each connection (state), when known.
    pub recorded_names: FxMap<String, Vec<String>>,
    /// Connections whose dropped tables are deleted (`hardDelete: true`), not disabled.
    pub hard_delete: super::matching::FxSet<String>,
    /// Active (not staged) policies sorted by key: the index and the models refer to them
    /// by position, so that candidates sort as numbers.
    ordered: Vec<Arc<Policy>>,
    /// Positions in `ordered` by lower-cased circumstance tag ([`Policy::index_tags`]).
    index: FxMap<String, Vec<u32>>,
    /// Positions of the policies to evaluate against every profile.
    generic: Vec<u32>,
    /// Active policies that are not shared with the other side (changed, added), by key.
    pub changed: Vec<Arc<Policy>>,
}

impl World {
    /// Builds the policy index (call once every policy is in).
    pub fn index(&mut self) {
        let mut ordered: Vec<Arc<Policy>> =
            self.policies.values().filter(|p| !p.staged).cloned().collect();
        ordered.sort_by(|a, b| a.key.cmp(&b.key));
        for (i, p) in ordered.iter().enumerate() {
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            match p.index_tags() {
                Some(mut tags) => {
                    tags.sort_unstable();
                    tags.dedup();
                    for t in tags {
                        self.index.entry(t.to_owned()).or_default().push(i);
                    }
                }
                None => self.generic.push(i),
            }
        }
        self.changed = ordered.iter().filter(|p| !p.shared).cloned().collect();
        self.ordered = ordered;
    }

    /// Every table, in a stable order.
    pub fn tables(&self) -> impl Iterator<Item = &Table> {
        self.connections.values().flat_map(|t| t.iter())
    }

    /// The policies that may apply to `profile` (a superset; [`applies`] decides), sorted by
    /// key and without duplicates.
    fn candidates(&self, profile: &Profile) -> impl Iterator<Item = &Arc<Policy>> {
        // Marks, not a sort: the lists of a tag hierarchy overlap and add up to thousands.
        let mut marks = vec![false; self.ordered.len()];
        for &i in &self.generic {
            marks[i as usize] = true;
        }
        for t in profile.table.lower_with_ancestors().chain(profile.columns.lower_with_ancestors())
        {
            for &i in self.index.get(t).into_iter().flatten() {
                marks[i as usize] = true;
            }
        }
        self.ordered.iter().zip(marks).filter(|(_, m)| *m).map(|(p, _)| p)
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
    let mut depth = 0;
    let (mut any, mut all) = (Level::No, Level::Certain);
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
        any = any.or(level);
        all = all.and(level);
    }
    // `any` (and possible under any operator): one field is enough; certain under `all` (or
    // no operator) only when every field selects the column.
    let certain = match m.operator {
        Some(Op::Any) => any,
        _ => all,
    };
    let level = if certain == Level::Certain { Level::Certain } else { any.and(Level::Possible) };
    (level, depth)
}

/// One masking rule that may mask a column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaskCandidate {
    /// The policy.
    pub policy: Arc<Policy>,
    /// Index of the rule in [`Policy::rules`].
    pub rule: u32,
    /// How surely it applies to the column.
    pub level: Level,
    /// The depth of the tag that selects the column (rule M5).
    pub depth: u16,
}

impl MaskCandidate {
    /// The masking of the rule.
    pub fn masking(&self) -> Option<&Masking> {
        match &self.policy.rules[self.rule as usize].kind {
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
        &self.policy.rules[self.rule as usize].audience
    }
}

/// One row-level rule on a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowCandidate {
    /// The policy.
    pub policy: Arc<Policy>,
    /// Index of the rule in [`Policy::rules`].
    pub rule: u32,
    /// How surely it applies.
    pub level: Level,
}

impl RowCandidate {
    /// The digest of the rule's config and what it does, for people.
    pub fn rows(&self) -> (u64, &str) {
        match &self.policy.rules[self.rule as usize].kind {
            RuleKind::Rows { config, summary, .. } => (*config, summary),
            RuleKind::Masking(_) => (0, ""),
        }
    }

    /// Who the rule applies to.
    pub fn audience(&self) -> &Audience {
        &self.policy.rules[self.rule as usize].audience
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
    /// Data policies with a masking rule that may apply (with their level), by key order.
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
            model.add(p, profile);
        }
        model
    }

    /// What the after side's changed policies (not shared with the before side) do to
    /// `profile`: all that can differ from the model before.
    pub fn fresh(after: &World, profile: &Profile) -> ProfileModel {
        let mut fresh = ProfileModel::default();
        for p in &after.changed {
            fresh.add(p, profile);
        }
        fresh
    }

    /// The model of a profile after the plan, from its model before (`base`) and what the
    /// changed policies do to it (`fresh`): the shared policies do the same on both sides.
    /// Lists stay sorted by policy key (and rule).
    pub fn derive(base: &ProfileModel, fresh: &ProfileModel) -> ProfileModel {
        let by_key = |a: &Arc<Policy>, b: &Arc<Policy>| a.key.cmp(&b.key);
        ProfileModel {
            data: merge_sorted(
                base.data.iter().filter(|(p, _)| p.shared).cloned(),
                fresh.data.clone(),
                |a, b| by_key(&a.0, &b.0),
            ),
            rows: merge_sorted(
                base.rows.iter().filter(|r| r.policy.shared).cloned(),
                fresh.rows.clone(),
                |a, b| by_key(&a.policy, &b.policy).then(a.rule.cmp(&b.rule)),
            ),
            subscriptions: derive_subscriptions(base, fresh),
        }
    }

    /// Adds what `p` does to `profile`, when it may apply.
    fn add(&mut self, p: &Arc<Policy>, profile: &Profile) {
        let level = applies(p, profile);
        if !level.possible() {
            return;
        }
        match p.kind {
            PolicyKind::Subscription => {
                self.subscriptions.push(SubCandidate { policy: Arc::clone(p), level });
            }
            PolicyKind::Data => {
                for (i, r) in p.rules.iter().enumerate() {
                    if let RuleKind::Rows { tags, .. } = &r.kind {
                        // A rule that reads columns by tag is certain only where a column in
                        // Git carries it (rule R2).
                        let reads = tags.iter().map(|t| profile.columns.has(t));
                        let level = level.and(if tags.is_empty() {
                            Level::Certain
                        } else {
                            Op::All.combine(reads).or(Level::Possible)
                        });
                        let rule = u32::try_from(i).unwrap_or(u32::MAX);
                        self.rows.push(RowCandidate { policy: Arc::clone(p), rule, level });
                    }
                }
                if p.masks {
                    self.data.push((Arc::clone(p), level));
                }
            }
        }
    }

    /// Every masking rule that may select a column of `class`, sorted by policy key and rule
    /// (before [`winners`] keeps the deciding ones).
    pub fn masking(&self, class: &Class) -> Vec<MaskCandidate> {
        let mut out = Vec::new();
        for (p, level) in &self.data {
            masking_of(p, *level, class, &mut out);
        }
        out
    }

    /// [`ProfileModel::masking`] after the plan, from the list before (`base`): only the
    /// changed policies of this (after-side) model are evaluated.
    pub fn derive_masking(&self, base: &[MaskCandidate], class: &Class) -> Vec<MaskCandidate> {
        let mut fresh = Vec::new();
        for (p, level) in self.data.iter().filter(|(p, _)| !p.shared) {
            masking_of(p, *level, class, &mut fresh);
        }
        merge_sorted(base.iter().filter(|c| c.policy.shared).cloned(), fresh, |a, b| {
            a.policy.key.cmp(&b.policy.key).then(a.rule.cmp(&b.rule))
        })
    }
}

/// The masking rules of `p` (applying at `level`) that may select a column of `class`.
fn masking_of(p: &Arc<Policy>, level: Level, class: &Class, out: &mut Vec<MaskCandidate>) {
    for (i, r) in p.rules.iter().enumerate() {
        if let RuleKind::Masking(m) = &r.kind {
            let (fields, depth) = field_level(m, class);
            let level = level.and(fields);
            if level.possible() {
                let rule = u32::try_from(i).unwrap_or(u32::MAX);
                let depth = u16::try_from(depth).unwrap_or(u16::MAX);
                out.push(MaskCandidate { policy: Arc::clone(p), rule, level, depth });
            }
        }
    }
}

/// The masking rules that decide a column: every candidate, minus those a certain candidate
/// with a deeper tag overrides (rule M5).
pub fn winners(mut list: Vec<MaskCandidate>) -> Vec<MaskCandidate> {
    let deepest = list.iter().filter(|c| c.level == Level::Certain).map(|c| c.depth).max();
    if let Some(d) = deepest {
        list.retain(|c| c.depth >= d);
    }
    list
}

/// The subscription policies of a profile after the plan (see [`ProfileModel::derive`]).
pub fn derive_subscriptions(base: &ProfileModel, fresh: &ProfileModel) -> Vec<SubCandidate> {
    merge_sorted(
        base.subscriptions.iter().filter(|s| s.policy.shared).cloned(),
        fresh.subscriptions.clone(),
        |a, b| a.policy.key.cmp(&b.policy.key),
    )
}

/// Two sorted sequences merged into one sorted vector.
fn merge_sorted<T>(
    a: impl Iterator<Item = T>,
    b: Vec<T>,
    cmp: impl Fn(&T, &T) -> std::cmp::Ordering,
) -> Vec<T> {
    let mut out = Vec::with_capacity(a.size_hint().0 + b.len());
    let mut b = b.into_iter().peekable();
    for x in a {
        while let Some(y) = b.next_if(|y| cmp(y, &x).is_lt()) {
            out.push(y);
        }
        out.push(x);
    }
    out.extend(b);
    out
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

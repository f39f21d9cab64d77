//! Tables of data-source connections, grouped by profile and column class.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use super::{get, strs};
use crate::plan::impact::DataSourceRef;
use crate::plan::impact::matching::{FxMap, TagSet, data_source_name};
use crate::state::Payload;

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
    column_names: crate::plan::impact::matching::FxSet<Arc<str>>,
    /// Column lists, shared by every table that has the same (most tables of a large tree
    /// repeat a few shapes).
    column_lists: crate::plan::impact::matching::FxSet<Columns>,
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
    payload: Payload,
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
pub fn declared_tags(payload: &Payload) -> HashMap<String, Vec<String>> {
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
    shared: &Payload,
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
            payload: shared.clone(),
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
            payload: shared.clone(),
            connection: Arc::clone(&connection_key),
            index: u32::try_from(index).ok(),
            source,
            profile,
            columns,
        });
    }
    out
}

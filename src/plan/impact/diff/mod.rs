//! The impact of a plan: the model after minus the model before, as [`Finding`]s (widening
//! apart from narrowing, certain apart from possible), and the references the plan breaks.
//!
//! Only what can differ is compared: the profiles a changed policy may match (on either side)
//! and the tables of changed connections. Comparisons depend only on (profile before, profile
//! after) and (column class before, column class after), so each pair is compared once and its
//! findings are given to every table or column that has it; findings that say the same thing
//! are merged, their subjects listed.
//!
//! - `models.rs`: the models of both sides, computed on demand;
//! - `masks.rs`: a column's masking and a rule's audience (rules M1–M5, E1, E2);
//! - `access.rs`: row rules and subscription policies (rules R1, R2, S1–S4);
//! - `projects.rs`: project reach, purposes and settings (rules P1, P2);
//! - `references.rs`: the references a plan leaves dangling.

mod access;
mod masks;
mod models;
mod projects;
mod references;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;

use super::matching::{FxMap, FxSet, Level, Op, Openness, Strength, loose_name};
use super::model::{
    Access, Audience, ClassId, Interner, MaskCandidate, Policy, Principals, ProfileId,
    ProfileModel, Project, RowCandidate, SubCandidate, Table, World, applies, projects_meeting,
    winners,
};
use super::{
    BrokenReference, Confidence, DataSourceRef, Direction, Finding, FindingKind, Impact, Severity,
    Subject, TenantFacts,
};
use crate::plan::observed::ObjectId;
use crate::spec::Kind;

use self::access::{access_changes, rows, subscriptions};
use self::masks::masking;
use self::models::{AFTER, BEFORE, Models};
use self::references::references;

/// Why a loss rests on changed facts (rule T2).
const TAGS_CHANGED: &str = "the data source's tags or columns changed in Git; a tag may also \
                            come from identification or a catalog, which Git does not show \
                            (rule T2)";
/// Why a match was only possible.
const AMBIGUOUS: &str = "the policy's match is ambiguous in the docs (circumstances, case, \
                         fields or owners: rules C1–C5, M1–M2, T3)";
/// Why a tie is not decided.
const TIES: &str = "several policies match at the same tag depth, and Immuta applies the one \
                    authored first, which the specs do not show (rule M5)";
/// Why a strength change is not certain.
const STRENGTH: &str = "masking types are ordered by the docs' property matrix, not by a \
                        documented order (rule M3)";
/// Why a subscription change is not certain.
const MERGE: &str = "other subscription policies apply too, and how they merge is not \
                     documented (rule S3)";
/// Why a removed data source is not certain.
const DISABLED: &str = "what a data platform enforces for a disabled or deleted data source is \
                        not documented (rule D1)";
/// Why project reach is not certain.
const PROJECT: &str = "whether project membership grants access to its data sources is not \
                       documented (rule P1)";
/// Why a purpose exception through the hierarchy is not certain.
const HIERARCHY: &str = "the purpose meets the exception only through the purpose hierarchy, \
                         which the docs do not settle (rule P2)";
/// Why a changed rule may widen.
const RULE_CHANGED: &str = "a changed condition, function or filter may show more than before \
                            (rules M4, R2)";

/// What changed between the two sides, by key.
pub(super) struct Changes<'a> {
    pub policies: &'a BTreeSet<&'a str>,
    pub connections: &'a BTreeSet<&'a str>,
    pub projects: &'a BTreeSet<&'a str>,
}

/// A finding without its subjects: what is merged.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Template {
    kind: FindingKind,
    direction: Direction,
    confidence: Confidence,
    policy: Option<String>,
    was: Option<String>,
    now: Option<String>,
    who: Option<String>,
    caveat: Option<&'static str>,
    tenant: bool,
}

impl Template {
    fn new(kind: FindingKind, direction: Direction) -> Template {
        Template {
            kind,
            direction,
            confidence: Confidence::Certain,
            policy: None,
            was: None,
            now: None,
            who: None,
            caveat: None,
            tenant: false,
        }
    }

    fn policy(mut self, p: &str) -> Self {
        self.policy = Some(p.to_owned());
        self
    }

    fn was(mut self, s: impl Into<String>) -> Self {
        self.was = Some(s.into());
        self
    }

    fn now(mut self, s: impl Into<String>) -> Self {
        self.now = Some(s.into());
        self
    }

    fn who(mut self, s: impl Into<String>) -> Self {
        self.who = Some(s.into());
        self
    }

    /// Possible, for `caveat`, unless `certain`.
    fn sure(mut self, certain: bool, caveat: &'static str) -> Self {
        if !certain {
            self.confidence = Confidence::Possible;
            self.caveat.get_or_insert(caveat);
        }
        self
    }
}

/// Findings merged by template, in first-seen order. Templates are interned once per
/// comparison pair; adding a subject is then a push.
#[derive(Default)]
struct Findings {
    index: FxMap<Template, usize>,
    list: Vec<(Template, Vec<Subject>)>,
}

impl Findings {
    /// The index of `t`'s finding.
    fn intern(&mut self, t: Template) -> usize {
        if let Some(&i) = self.index.get(&t) {
            return i;
        }
        let i = self.list.len();
        self.index.insert(t.clone(), i);
        self.list.push((t, Vec::new()));
        i
    }

    /// Adds `subject` to the finding of `t`.
    fn add(&mut self, t: &Template, subject: Subject) {
        let i = self.intern(t.clone());
        self.list[i].1.push(subject);
    }

    fn finish(self) -> Vec<Finding> {
        let mut out: Vec<Finding> = self
            .list
            .into_iter()
            .filter(|(_, subjects)| !subjects.is_empty())
            .map(|(t, subjects)| Finding {
                kind: t.kind,
                direction: t.direction,
                confidence: t.confidence,
                policy: t.policy,
                subjects,
                was: t.was,
                now: t.now,
                who: t.who,
                caveat: t.caveat.map(str::to_owned),
                tenant: t.tenant,
            })
            .collect();
        // Subjects are compared last and by their first only: lists of thousands of equal
        // subjects must not be walked to order a few findings.
        out.sort_by(|a, b| {
            (a.direction, a.confidence, a.kind, &a.policy, &a.was, &a.now, a.subjects.first()).cmp(
                &(b.direction, b.confidence, b.kind, &b.policy, &b.was, &b.now, b.subjects.first()),
            )
        });
        out
    }
}

/// Computes the findings and broken references of going from `before` to `after`.
pub(super) fn diff(
    before: &World,
    after: &World,
    interner: &Interner,
    changes: &Changes<'_>,
    tenant: Option<&TenantFacts>,
    out: &mut Impact,
) {
    let mut affected = vec![false; interner.profiles()];
    for key in changes.policies {
        for p in [before.policies.get(*key), after.policies.get(*key)].into_iter().flatten() {
            for (id, a) in affected.iter_mut().enumerate() {
                if !*a && applies(p, interner.profile(id)).possible() {
                    *a = true;
                }
            }
        }
    }

    let mut cx = Cx {
        m: Models::new(before, after, interner),
        interner,
        after,
        findings: Findings::default(),
        columns: FxMap::default(),
        tables: FxMap::default(),
        purposes: None,
        names: None,
    };
    let unchanged = before.connections.iter().filter_map(|(k, b)| {
        after.connections.get(k).filter(|a| Arc::ptr_eq(a, b)).map(|_| b.iter())
    });
    cx.unchanged_profiles(unchanged.flatten(), &affected);
    let mut keys: Vec<&String> =
        before.connections.keys().chain(after.connections.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let (tb, ta) = (before.connections.get(key), after.connections.get(key));
        match (tb, ta) {
            (Some(b), Some(a)) if Arc::ptr_eq(b, a) => cx.connection(key, b, &affected),
            _ => {
                let empty = Vec::new();
                let b = tb.map_or(&empty, |b| b.as_ref());
                let a = ta.map_or(&empty, |a| a.as_ref());
                let by_id: FxMap<&str, &Table> = a.iter().map(|t| (t.id(), t)).collect();
                for t in b {
                    match by_id.get(t.id()) {
                        Some(n) => cx.compare(t, n),
                        None => {
                            let fate = if ta.is_none() {
                                "deleted with its connection"
                            } else if after.hard_delete.contains(key) {
                                "deleted (`hardDelete`)"
                            } else {
                                "disabled (dropped from `sources`)"
                            };
                            cx.removed(t, fate);
                        }
                    }
                }
                let old: FxSet<&str> = b.iter().map(|t| t.id()).collect();
                for t in a.iter().filter(|t| !old.contains(t.id())) {
                    cx.added(t);
                }
            }
        }
    }
    cx.projects(before, changes.projects);
    out.findings = std::mem::take(&mut cx.findings).finish();
    if let Some(t) = tenant {
        let reported: HashSet<&str> = t.tags.keys().map(String::as_str).collect();
        let managed: HashSet<&str> =
            before.tables().filter(|t| t.id() != "*").map(|t| t.name()).collect();
        let mut wanted: BTreeSet<&str> = BTreeSet::new();
        if !reads_table_tags(before, after, changes.policies) {
            for f in &out.findings {
                for s in &f.subjects {
                    if let Some(d) = s.data_source() {
                        wanted.insert(d.data_source.as_str());
                    } else if let Subject::Connection { connection, .. } = s {
                        let tables = before.connections.get(connection.as_ref());
                        wanted.extend(tables.into_iter().flat_map(|t| t.iter()).map(|t| t.name()));
                    }
                }
            }
            wanted.retain(|n| managed.contains(n));
        } else {
            wanted.extend(managed.iter().copied());
        }
        out.wanted_tags =
            wanted.into_iter().filter(|n| !reported.contains(n)).map(str::to_owned).collect();
        out.basis.tenant_tags_read = t.tags.len();
        out.basis.tenant_tags_unread = out.wanted_tags.len();
        out.basis.tenant_tagged = before
            .tables()
            .chain(after.tables())
            .filter(|t| interner.profile(t.profile).tenant)
            .map(|t| t.name())
            .collect::<HashSet<_>>()
            .len();
    }
    out.references = references(before, after, interner, changes, tenant);
}

/// Whether a changed policy's matching changed and looks at table tags (a `tags`, `anyTag` or
/// `noTags` circumstance on either side): then a tag the tenant reports on any managed data
/// source may change what it reaches, so every one is worth reading.
fn reads_table_tags(before: &World, after: &World, keys: &BTreeSet<&str>) -> bool {
    keys.iter().any(|k| {
        let (b, a) = (before.policies.get(*k), after.policies.get(*k));
        let same = match (b, a) {
            (Some(b), Some(a)) => {
                b.staged == a.staged
                    && b.circumstances == a.circumstances
                    && b.owners == a.owners
                    && b.rules == a.rules
                    && b.access == a.access
            }
            _ => false,
        };
        !same
            && [b, a].into_iter().flatten().any(|p| match &p.circumstances {
                super::model::Circumstances::List(_, list) => list.iter().any(|c| {
                    matches!(
                        c,
                        super::model::Circumstance::Tag(_)
                            | super::model::Circumstance::AnyTag
                            | super::model::Circumstance::NoTags
                    )
                }),
                _ => false,
            })
    })
}

/// The comparison state.
struct Cx<'w> {
    m: Models<'w>,
    interner: &'w Interner,
    after: &'w World,
    findings: Findings,
    /// Findings (indices) of (class before, class after).
    columns: FxMap<(ClassId, ClassId), Rc<[usize]>>,
    /// Findings (indices) of (profile before, profile after).
    tables: FxMap<(ProfileId, ProfileId), Rc<[usize]>>,
    /// Purposes exceptions name in the after side: (purpose, policy key).
    purposes: Option<Vec<(String, String)>>,
    /// After-side tables by data-source name, built when a project needs them.
    names: Option<HashMap<&'w str, &'w Table>>,
}

fn table_subject(t: &Table) -> Subject {
    Subject::DataSource { source: Arc::clone(t.source()) }
}

fn column_subject(t: &Table, column: &Arc<str>) -> Subject {
    Subject::Column { source: Arc::clone(t.source()), column: Arc::clone(column) }
}

impl Cx<'_> {
    /// A table on both sides: its findings and its columns'.
    fn compare(&mut self, tb: &Table, ta: &Table) {
        let found = self.table_findings(tb, ta);
        if !found.is_empty() {
            let subject = table_subject(ta);
            for &i in found.iter() {
                self.findings.list[i].1.push(subject.clone());
            }
        }
        self.columns_of(tb, ta);
    }

    /// The findings (indices) of a table's rows and subscriptions, before and after.
    fn table_findings(&mut self, tb: &Table, ta: &Table) -> Rc<[usize]> {
        self.profile_findings(tb.profile, ta.profile)
    }

    /// The findings (indices) of the rows and subscriptions of a table of profile `pb` before
    /// and `pa` after.
    fn profile_findings(&mut self, pb: ProfileId, pa: ProfileId) -> Rc<[usize]> {
        let key = (pb, pa);
        if let Some(t) = self.tables.get(&key) {
            return Rc::clone(t);
        }
        let mb = self.m.profile(BEFORE, pb);
        let changed = pb != pa;
        let tenant = self.tenant(pb, pa);
        let mut list;
        if changed {
            let ma = self.m.profile(AFTER, pa);
            list = rows(&mb.rows, &ma.rows, changed, self.after);
            list.extend(subscriptions(&mb.subscriptions, &ma.subscriptions, changed));
        } else {
            // The same profile on both sides: shared policies do the same, so only the
            // changed ones' entries are compared (the after side is not materialised).
            let fresh = self.m.fresh(pa);
            let gone: Vec<RowCandidate> =
                mb.rows.iter().filter(|r| !r.policy.shared).cloned().collect();
            list = rows(&gone, &fresh.rows, changed, self.after);
            if !fresh.subscriptions.is_empty() || mb.subscriptions.iter().any(|s| !s.policy.shared)
            {
                let after = super::model::derive_subscriptions(&mb, &fresh);
                list.extend(subscriptions(&mb.subscriptions, &after, changed));
            }
        }
        let found: Rc<[usize]> = list
            .into_iter()
            .map(|mut t| {
                t.tenant = tenant;
                self.findings.intern(t)
            })
            .collect();
        self.tables.insert(key, Rc::clone(&found));
        found
    }

    /// The tables of an unchanged connection `key` whose profiles a changed policy may match:
    /// a finding about every one of its data sources (when there are more than
    /// [`SUBJECTS_SHOWN`](super::SUBJECTS_SHOWN)) names the connection once; the others name
    /// their data sources (and no table is named that need not be).
    fn connection(&mut self, key: &str, all: &[Table], affected: &[bool]) {
        let tables: Vec<&Table> = all.iter().filter(|t| affected[t.profile]).collect();
        let found: Vec<Rc<[usize]>> = tables.iter().map(|t| self.table_findings(t, t)).collect();
        let mut whole: BTreeSet<usize> = BTreeSet::new();
        if tables.len() == all.len() && all.len() > super::SUBJECTS_SHOWN {
            let mut counts: FxMap<usize, usize> = FxMap::default();
            for f in &found {
                for &i in f.iter() {
                    *counts.entry(i).or_default() += 1;
                }
            }
            whole.extend(counts.into_iter().filter(|(_, n)| *n == all.len()).map(|(i, _)| i));
            for &i in &whole {
                self.findings.list[i].1.push(Subject::Connection {
                    connection: Arc::from(key),
                    data_sources: all.len(),
                });
            }
        }
        for (t, f) in tables.iter().zip(&found) {
            for &i in f.iter().filter(|i| !whole.contains(i)) {
                self.findings.list[i].1.push(table_subject(t));
            }
            self.columns_of(t, t);
        }
    }

    /// The columns of a table on both sides.
    fn columns_of(&mut self, tb: &Table, ta: &Table) {
        if std::ptr::eq(tb, ta) {
            for (name, c) in ta.columns.iter() {
                self.column(ta, *c, *c, name);
            }
            return;
        }
        let other = |t: &Table| t.columns.last().map(|c| c.1);
        let (Some(ob), Some(oa)) = (other(tb), other(ta)) else { return };
        let mut names: BTreeMap<&Arc<str>, (ClassId, ClassId)> = BTreeMap::new();
        for (n, c) in tb.columns.iter() {
            names.insert(n, (*c, oa));
        }
        for (n, c) in ta.columns.iter() {
            names.entry(n).and_modify(|e| e.1 = *c).or_insert((ob, *c));
        }
        for (name, (cb, ca)) in names {
            self.column(ta, cb, ca, name);
        }
    }

    /// A column of a table on both sides, of class `cb` before and `ca` after.
    fn column(&mut self, ta: &Table, cb: ClassId, ca: ClassId, name: &Arc<str>) {
        let found = self.class_findings(cb, ca);
        if found.is_empty() {
            return;
        }
        let subject = column_subject(ta, name);
        for &i in found.iter() {
            self.findings.list[i].1.push(subject.clone());
        }
    }

    /// The findings (indices) of the masking of a column of class `cb` before and `ca`
    /// after.
    fn class_findings(&mut self, cb: ClassId, ca: ClassId) -> Rc<[usize]> {
        if let Some(t) = self.columns.get(&(cb, ca)) {
            return Rc::clone(t);
        }
        let (pb, pa) = (self.interner.class(cb).profile, self.interner.class(ca).profile);
        let mb = self.m.masks(BEFORE, cb);
        let ma = self.m.masks(AFTER, ca);
        let changed = pb != pa || !same_tags(self.interner, cb, ca);
        let tenant = self.tenant(pb, pa);
        let m = masking(&mb, &ma, changed, self.after);
        let found: Rc<[usize]> = m
            .into_iter()
            .map(|mut t| {
                t.tenant = tenant;
                self.findings.intern(t)
            })
            .collect();
        self.columns.insert((cb, ca), Rc::clone(&found));
        found
    }

    /// Compares the affected tables of unchanged connections profile by profile, each
    /// profile's models dropped once it and its column classes are compared: the findings of
    /// a pair are a few indices, a profile's models on a large tree are thousands of entries.
    /// The walk over the connections then only hands out subjects.
    fn unchanged_profiles<'t>(
        &mut self,
        tables: impl Iterator<Item = &'t Table>,
        affected: &[bool],
    ) {
        let mut order: Vec<ProfileId> = Vec::new();
        let mut classes: FxMap<ProfileId, Vec<ClassId>> = FxMap::default();
        let mut seen = vec![false; self.interner.classes()];
        for t in tables.filter(|t| affected[t.profile]) {
            let list = classes.entry(t.profile).or_insert_with(|| {
                order.push(t.profile);
                Vec::new()
            });
            for (_, c) in t.columns.iter() {
                if !std::mem::replace(&mut seen[*c], true) {
                    list.push(*c);
                }
            }
        }
        for p in order {
            self.profile_findings(p, p);
            let list = classes.remove(&p).unwrap_or_default();
            for &c in &list {
                self.class_findings(c, c);
            }
            self.m.forget(p, &list);
        }
    }

    fn tenant(&self, b: ProfileId, a: ProfileId) -> bool {
        self.interner.profile(b).tenant || self.interner.profile(a).tenant
    }

    /// A table only before: its protections stop applying (rule D1).
    fn removed(&mut self, t: &Table, fate: &str) {
        let model = self.m.profile(BEFORE, t.profile);
        let mut parts = Vec::new();
        let masked: Vec<&str> = t
            .columns
            .iter()
            .filter(|(_, c)| self.m.masks(BEFORE, *c).iter().any(|m| m.strength() > Strength::None))
            .map(|(n, _)| n.as_ref())
            .collect();
        if !masked.is_empty() {
            let n = masked.len();
            parts.push(format!("masking on {n} column{}", if n == 1 { "" } else { "s" }));
        }
        let rows: BTreeSet<&str> = model.rows.iter().map(|r| r.policy.key.as_str()).collect();
        if !rows.is_empty() {
            parts.push(format!("row restrictions {}", codes(rows)));
        }
        let subs: BTreeSet<&str> =
            model.subscriptions.iter().map(|s| s.policy.key.as_str()).collect();
        if !subs.is_empty() {
            parts.push(format!("subscription policies {}", codes(subs)));
        }
        if parts.is_empty() {
            return;
        }
        let mut template = Template::new(FindingKind::DataSourceRemoved, Direction::Widening)
            .now(fate)
            .was(parts.join(", "))
            .sure(false, DISABLED);
        template.tenant = self.interner.profile(t.profile).tenant;
        self.findings.add(&template, table_subject(t));
    }

    /// A table only after: anyone may subscribe to it (the only widening a new table has).
    fn added(&mut self, t: &Table) {
        let model = self.m.profile(AFTER, t.profile);
        let sole = model.subscriptions.len() == 1;
        for s in &model.subscriptions {
            if s.access().openness() >= Openness::Unknown {
                let template = Template::new(FindingKind::SubscriptionWidened, Direction::Widening)
                    .policy(&s.policy.key)
                    .was("a new data source")
                    .now(format!("{} may subscribe", s.access().describe()))
                    .sure(s.level == Level::Certain, AMBIGUOUS)
                    .sure(sole, MERGE);
                self.findings.add(&template, table_subject(t));
            }
        }
    }
}

fn same_tags(interner: &Interner, b: ClassId, a: ClassId) -> bool {
    let (cb, ca) = (interner.class(b), interner.class(a));
    match (&cb.tags, &ca.tags) {
        (Some(x), Some(y)) => x.tags == y.tags,
        (None, None) => true,
        _ => false,
    }
}

fn codes<'s>(items: impl IntoIterator<Item = &'s str>) -> String {
    items.into_iter().map(|i| format!("`{i}`")).collect::<Vec<_>>().join(", ")
}

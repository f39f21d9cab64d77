//! The impact of a plan: the model after minus the model before, as [`Finding`]s (widening
//! apart from narrowing, certain apart from possible), and the references the plan breaks.
//!
//! Only what can differ is compared: the profiles a changed policy may match (on either side)
//! and the tables of changed connections. Comparisons depend only on (profile before, profile
//! after) and (column class before, column class after), so each pair is compared once and its
//! findings are given to every table or column that has it; findings that say the same thing
//! are merged, their subjects listed.

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

/// The models of both sides, computed on demand; the after side's are derived from the before
/// side's (only changed policies are evaluated again).
struct Models<'w> {
    before: &'w World,
    after: &'w World,
    interner: &'w Interner,
    /// Profile models, before and after.
    profiles: [FxMap<ProfileId, Rc<ProfileModel>>; 2],
    /// What the after side's changed policies do to a profile.
    fresh: FxMap<ProfileId, Rc<ProfileModel>>,
    /// Every masking candidate of a column class, before and after.
    candidates: [FxMap<ClassId, Rc<Vec<MaskCandidate>>>; 2],
    /// The deciding masking candidates of a column class, before and after.
    masks: [FxMap<ClassId, Rc<Vec<MaskCandidate>>>; 2],
}

/// Before (0) or after (1).
const BEFORE: usize = 0;
const AFTER: usize = 1;

impl<'w> Models<'w> {
    fn new(before: &'w World, after: &'w World, interner: &'w Interner) -> Self {
        Models {
            before,
            after,
            interner,
            profiles: Default::default(),
            fresh: FxMap::default(),
            candidates: Default::default(),
            masks: Default::default(),
        }
    }

    fn profile(&mut self, side: usize, id: ProfileId) -> Rc<ProfileModel> {
        if let Some(m) = self.profiles[side].get(&id) {
            return Rc::clone(m);
        }
        let profile = self.interner.profile(id);
        let model = if side == BEFORE {
            ProfileModel::new(self.before, profile)
        } else {
            let base = self.profile(BEFORE, id);
            ProfileModel::derive(&base, &self.fresh(id))
        };
        let model = Rc::new(model);
        self.profiles[side].insert(id, Rc::clone(&model));
        model
    }

    /// What the after side's changed policies do to profile `id`.
    fn fresh(&mut self, id: ProfileId) -> Rc<ProfileModel> {
        if let Some(m) = self.fresh.get(&id) {
            return Rc::clone(m);
        }
        let model = Rc::new(ProfileModel::fresh(self.after, self.interner.profile(id)));
        self.fresh.insert(id, Rc::clone(&model));
        model
    }

    fn candidates(&mut self, side: usize, class: ClassId) -> Rc<Vec<MaskCandidate>> {
        if let Some(m) = self.candidates[side].get(&class) {
            return Rc::clone(m);
        }
        let c = self.interner.class(class);
        let list = if side == BEFORE {
            self.profile(BEFORE, c.profile).masking(c)
        } else {
            let base = self.candidates(BEFORE, class);
            self.fresh(c.profile).derive_masking(&base, c)
        };
        let list = Rc::new(list);
        self.candidates[side].insert(class, Rc::clone(&list));
        list
    }

    /// Drops what is held for profile `id` and its `classes` (recomputed if asked again).
    fn forget(&mut self, id: ProfileId, classes: &[ClassId]) {
        for side in [BEFORE, AFTER] {
            self.profiles[side].remove(&id);
            for c in classes {
                self.masks[side].remove(c);
                self.candidates[side].remove(c);
            }
        }
        self.fresh.remove(&id);
    }

    fn masks(&mut self, side: usize, class: ClassId) -> Rc<Vec<MaskCandidate>> {
        if let Some(m) = self.masks[side].get(&class) {
            return Rc::clone(m);
        }
        let all = self.candidates(side, class);
        if side == AFTER {
            // Every class is compared once: the candidate lists are not needed again (and
            // hold most of the model's memory on a large tree).
            self.candidates[AFTER].remove(&class);
            self.candidates[BEFORE].remove(&class);
        }
        let list = Rc::new(winners(Rc::try_unwrap(all).unwrap_or_else(|rc| rc.as_ref().clone())));
        self.masks[side].insert(class, Rc::clone(&list));
        list
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

    /// Project reach, purposes and settings (rules P1, P2).
    fn projects(&mut self, before: &World, keys: &BTreeSet<&str>) {
        for key in keys {
            let b = before.projects.get(*key);
            let a = self.after.projects.get(*key);
            let none = Project {
                key: (*key).to_owned(),
                datasources: BTreeSet::new(),
                purposes: BTreeSet::new(),
                join: Access { kind: "manual".into(), ..Access::default() },
                masked_joins: false,
                equalization: true,
            };
            let (pb, pa) = (b.map_or(&none, |p| p.as_ref()), a.map_or(&none, |p| p.as_ref()));
            let subject = Subject::Project { key: Arc::from(*key) };
            let join = a.map(|p| p.join.describe());
            for ds in pa.datasources.difference(&pb.datasources) {
                let t = Template::new(FindingKind::ProjectReachAdded, Direction::Widening)
                    .policy(key)
                    .now(format!("members join: {}", join.as_deref().unwrap_or("-")))
                    .sure(false, PROJECT);
                let subject = self.data_source(ds);
                self.findings.add(&t, subject);
            }
            for ds in pb.datasources.difference(&pa.datasources) {
                let t = Template::new(FindingKind::ProjectReachRemoved, Direction::Narrowing)
                    .policy(key)
                    .sure(false, PROJECT);
                let subject = self.data_source(ds);
                self.findings.add(&t, subject);
            }
            for (purposes, kind, direction) in [
                (
                    pa.purposes.difference(&pb.purposes).collect::<Vec<_>>(),
                    FindingKind::PurposeExceptionAdded,
                    Direction::Widening,
                ),
                (
                    pb.purposes.difference(&pa.purposes).collect::<Vec<_>>(),
                    FindingKind::PurposeExceptionRemoved,
                    Direction::Narrowing,
                ),
            ] {
                for purpose in purposes {
                    let (policies, level) = self.excepting(purpose);
                    if policies.is_empty() {
                        continue;
                    }
                    let what = format!(
                        "policies {} except from masking or row rules",
                        codes(policies.iter().map(String::as_str))
                    );
                    let mut t = Template::new(kind, direction)
                        .policy(key)
                        .who(format!("purpose `{purpose}`"))
                        .sure(level == Level::Certain, HIERARCHY);
                    t = if direction == Direction::Widening { t.now(what) } else { t.was(what) };
                    self.findings.add(&t, subject.clone());
                }
            }
            if b.is_some() && a.is_some() {
                for (direction, now) in access_changes(&pb.join, &pa.join, "join") {
                    let kind = match direction {
                        Direction::Widening => FindingKind::ProjectJoinWidened,
                        Direction::Narrowing => FindingKind::ProjectJoinNarrowed,
                    };
                    let reach = if pa.datasources.is_empty() && pa.purposes.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "; it reaches {}",
                            pa.datasources
                                .iter()
                                .map(|d| format!("data source `{d}`"))
                                .chain(pa.purposes.iter().map(|p| format!("purpose `{p}`")))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    };
                    let t = Template::new(kind, direction)
                        .policy(key)
                        .was(pb.join.describe())
                        .now(format!("{now}{reach}"));
                    self.findings.add(&t, subject.clone());
                }
            }
            let settings = [
                (
                    pb.masked_joins,
                    pa.masked_joins,
                    "members may join masked columns (`allowMaskedJoins: true`)",
                    "members may no longer join masked columns",
                    true,
                ),
                (
                    !pb.equalization,
                    !pa.equalization,
                    "equalization is off: members stop being reduced to a common view",
                    "equalization is on: members see a common view",
                    false,
                ),
            ];
            if a.is_some() {
                for (was, now, widened, narrowed, certain) in settings {
                    if was == now {
                        continue;
                    }
                    let t = if now {
                        Template::new(FindingKind::ProjectSettingWidened, Direction::Widening)
                            .now(widened)
                            .sure(
                                certain,
                                "equalization's effect is documented in a sentence only (rule P1)",
                            )
                    } else {
                        Template::new(FindingKind::ProjectSettingNarrowed, Direction::Narrowing)
                            .now(narrowed)
                    };
                    self.findings.add(&t.policy(key), subject.clone());
                }
            }
        }
    }

    /// A data-source subject by name (connection and table when a parsed table has it).
    fn data_source(&mut self, name: &str) -> Subject {
        let after = self.after;
        let names =
            self.names.get_or_insert_with(|| after.tables().map(|t| (t.name(), t)).collect());
        match names.get(name) {
            Some(t) => table_subject(t),
            None => Subject::DataSource {
                source: Arc::new(DataSourceRef {
                    data_source: name.to_owned(),
                    connection: Arc::from(""),
                    table: String::new(),
                }),
            },
        }
    }

    /// The after-side policies whose exceptions a project acting under `purpose` meets, and
    /// how surely (rule P2).
    fn excepting(&mut self, purpose: &str) -> (BTreeSet<String>, Level) {
        let after = self.after;
        let list = self.purposes.get_or_insert_with(|| {
            let mut v: Vec<(String, String)> = after
                .policies
                .values()
                .filter(|p| !p.staged)
                .flat_map(|p| {
                    p.rules
                        .iter()
                        .filter_map(|r| r.audience.exceptions.as_ref())
                        .flat_map(|e| e.purposes.iter())
                        .map(|x| (x.clone(), p.key.clone()))
                        .collect::<Vec<_>>()
                })
                .collect();
            v.sort();
            v.dedup();
            v
        });
        let mut policies = BTreeSet::new();
        let mut level = Level::No;
        for (named, key) in list.iter() {
            let l = super::matching::purpose_meets(named, purpose);
            if l.possible() {
                policies.insert(key.clone());
                level = level.or(l);
            }
        }
        (policies, level)
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

/// `Constant, policy `k``; `one of Constant (`a`), Null where ... (`b`)`.
fn describe_masks(list: &[&MaskCandidate]) -> String {
    match list {
        [] => "not masked".to_owned(),
        [one] => format!(
            "{}, policy `{}`",
            one.masking().map_or_else(String::new, |m| m.describe()),
            one.policy.key
        ),
        many => {
            let items: Vec<String> = many
                .iter()
                .take(4)
                .map(|c| {
                    format!(
                        "{} (`{}`)",
                        c.masking().map_or_else(String::new, |m| m.describe()),
                        c.policy.key
                    )
                })
                .collect();
            let more = many.len().saturating_sub(4);
            let tail = if more > 0 { format!(" and {more} more") } else { String::new() };
            format!("one of {}{tail}", items.join(", "))
        }
    }
}

/// Masking of one column, before and after (rules M1–M5, E1, E2).
fn masking(
    b: &[MaskCandidate],
    a: &[MaskCandidate],
    changed: bool,
    after: &World,
) -> Vec<Template> {
    // Unchanged policies are shared by both sides: the same rule of the same `Arc` is the
    // same rule.
    let same = b.len() == a.len()
        && b.iter().zip(a).all(|(x, y)| {
            x.rule == y.rule
                && x.level == y.level
                && (Arc::ptr_eq(&x.policy, &y.policy)
                    || (x.policy.key == y.policy.key
                        && x.masking() == y.masking()
                        && x.audience() == y.audience()))
        });
    if same {
        return Vec::new();
    }
    let rb: Vec<&MaskCandidate> = b.iter().filter(|c| c.strength() > Strength::None).collect();
    let ra: Vec<&MaskCandidate> = a.iter().filter(|c| c.strength() > Strength::None).collect();
    let certain_b = rb.iter().any(|c| c.level == Level::Certain);
    let certain_a = ra.iter().any(|c| c.level == Level::Certain);
    let single = |l: &[&MaskCandidate]| {
        let keys: BTreeSet<&str> = l.iter().map(|c| c.policy.key.as_str()).collect();
        (keys.len() == 1).then(|| keys.into_iter().next().unwrap_or_default().to_owned())
    };
    let mut out = Vec::new();
    match (rb.is_empty(), ra.is_empty()) {
        (false, true) => {
            let mut t = Template::new(FindingKind::MaskingRemoved, Direction::Widening)
                .was(describe_masks(&rb));
            t.policy = single(&rb);
            out.push(t.sure(!changed, TAGS_CHANGED).sure(certain_b, AMBIGUOUS));
        }
        (true, false) => {
            let mut t = Template::new(FindingKind::MaskingAdded, Direction::Narrowing)
                .now(describe_masks(&ra));
            t.policy = single(&ra);
            out.push(t.sure(certain_a, AMBIGUOUS));
        }
        (false, false) => {
            let range = |l: &[&MaskCandidate]| {
                let s = l.iter().map(|c| c.strength());
                (s.clone().min().unwrap_or(Strength::None), s.max().unwrap_or(Strength::None))
            };
            let ((min_b, max_b), (min_a, max_a)) = (range(&rb), range(&ra));
            let ties = rb.len() > 1 || ra.len() > 1;
            let base = |kind, direction| {
                let mut t = Template::new(kind, direction)
                    .was(describe_masks(&rb))
                    .now(describe_masks(&ra));
                t.policy = single(&ra).filter(|p| single(&rb).as_ref() == Some(p));
                t
            };
            if min_a < min_b || max_a < max_b {
                let certain = max_a.certainly_stronger(min_b);
                out.push(
                    base(FindingKind::MaskingWeakened, Direction::Widening)
                        .sure(!ties, TIES)
                        .sure(certain, STRENGTH)
                        .sure(!changed, TAGS_CHANGED),
                );
            } else if min_a > min_b || max_a > max_b {
                let certain = max_b.certainly_stronger(min_a);
                out.push(
                    base(FindingKind::MaskingStrengthened, Direction::Narrowing)
                        .sure(!ties, TIES)
                        .sure(certain, STRENGTH),
                );
            } else {
                let mut changed_rule = false;
                merge(
                    &rb,
                    &ra,
                    |x, y| by_rule((&x.policy, x.rule), (&y.policy, y.rule)),
                    |x, y| {
                        if let (Some(x), Some(y)) = (x, y) {
                            changed_rule |=
                                !Arc::ptr_eq(&x.policy, &y.policy) && x.masking() != y.masking();
                        }
                    },
                );
                if changed_rule {
                    out.push(
                        base(FindingKind::MaskingChanged, Direction::Widening)
                            .sure(false, RULE_CHANGED),
                    );
                }
            }
        }
        (true, true) => {}
    }
    // The same rule, with other people excepted (rules E1, E2).
    merge(
        &rb,
        &ra,
        |x, y| by_rule((&x.policy, x.rule), (&y.policy, y.rule)),
        |x, y| {
            if let (Some(x), Some(y)) = (x, y)
                && !Arc::ptr_eq(&x.policy, &y.policy)
                && x.audience() != y.audience()
            {
                out.extend(audience(
                    &x.policy.key,
                    x.audience(),
                    y.audience(),
                    "see unmasked values of",
                    after,
                ));
            }
        },
    );
    out
}

/// How a rule's audience changed: exceptions (rule E1) and inclusions (rule E2).
fn audience(policy: &str, b: &Audience, a: &Audience, what: &str, after: &World) -> Vec<Template> {
    let mut out = Vec::new();
    let describe = |_: &Principals, who: &BTreeSet<String>| -> String {
        who.iter().cloned().collect::<Vec<_>>().join(", ")
    };
    let empty = Principals::default();
    let eb = b.exceptions.as_ref().unwrap_or(&empty);
    let ea = a.exceptions.as_ref().unwrap_or(&empty);
    let labels = |p: &Principals| -> BTreeSet<String> {
        p.groups
            .iter()
            .map(|g| format!("members of group `{g}`"))
            .chain(p.attributes.iter().map(|x| format!("users with attribute `{x}`")))
            .chain(p.purposes.iter().map(|x| {
                let projects = projects_meeting(x, after.projects.values().map(|p| p.as_ref()));
                let names: Vec<String> = projects.iter().map(|(k, _)| format!("`{k}`")).collect();
                if names.is_empty() {
                    format!("users acting under purpose `{x}`")
                } else {
                    format!(
                        "members of projects acting under purpose `{x}` (project{} {})",
                        if names.len() == 1 { "" } else { "s" },
                        names.join(", ")
                    )
                }
            }))
            .collect()
    };
    let (lb, la) = (labels(eb), labels(ea));
    let added: BTreeSet<String> = la.difference(&lb).cloned().collect();
    let removed: BTreeSet<String> = lb.difference(&la).cloned().collect();
    let was = b.describe();
    let now = a.describe();
    let hierarchy = ea.purposes.iter().any(|p| {
        projects_meeting(p, after.projects.values().map(|x| x.as_ref()))
            .iter()
            .any(|(_, l)| *l == Level::Possible)
    });
    // Under `any` a new principal excepts more people; under `all` it is one more condition
    // to meet, so fewer.
    let (widen, narrow) = match ea.operator() {
        Op::Any => (added, removed),
        Op::All => (removed, added),
    };
    if !widen.is_empty() {
        out.push(
            Template::new(FindingKind::ExceptionWidened, Direction::Widening)
                .policy(policy)
                .who(format!("{} now {what}", describe(ea, &widen)))
                .was(was.clone())
                .now(now.clone())
                .sure(!hierarchy, HIERARCHY),
        );
    }
    if !narrow.is_empty() {
        out.push(
            Template::new(FindingKind::ExceptionNarrowed, Direction::Narrowing)
                .policy(policy)
                .who(format!("{} no longer {what}", describe(eb, &narrow)))
                .was(was.clone())
                .now(now.clone()),
        );
    }
    if widen.is_empty() && narrow.is_empty() && eb.operator() != ea.operator() && !ea.is_empty() {
        let direction =
            if ea.operator() == Op::Any { Direction::Widening } else { Direction::Narrowing };
        let kind = if direction == Direction::Widening {
            FindingKind::ExceptionWidened
        } else {
            FindingKind::ExceptionNarrowed
        };
        out.push(
            Template::new(kind, direction)
                .policy(policy)
                .who(format!(
                    "users meeting {} of the exception's conditions {what}",
                    if ea.operator() == Op::Any { "any" } else { "all" }
                ))
                .was(was.clone())
                .now(now.clone()),
        );
    }
    // Inclusions: the rule protects only the included users.
    if b.inclusions != a.inclusions {
        let ib = b.inclusions.as_ref().filter(|i| !i.is_empty());
        let ia = a.inclusions.as_ref().filter(|i| !i.is_empty());
        let direction = match (ib, ia) {
            (None, Some(_)) => Some(Direction::Widening),
            (Some(_), None) => Some(Direction::Narrowing),
            (Some(x), Some(y)) => {
                let (lx, ly) = (labels(x), labels(y));
                let fewer = match y.operator() {
                    Op::Any => !lx.difference(&ly).collect::<Vec<_>>().is_empty(),
                    Op::All => !ly.difference(&lx).collect::<Vec<_>>().is_empty(),
                };
                Some(if fewer || x.operator() != y.operator() {
                    Direction::Widening
                } else {
                    Direction::Narrowing
                })
            }
            (None, None) => None,
        };
        if let Some(direction) = direction {
            let kind = match direction {
                Direction::Widening => FindingKind::ExceptionWidened,
                Direction::Narrowing => FindingKind::ExceptionNarrowed,
            };
            let who = match direction {
                Direction::Widening => format!("users the rule no longer includes {what}"),
                Direction::Narrowing => format!("users the rule now includes no longer {what}")
                    .replace("no longer no longer", "no longer"),
            };
            out
                .push(Template::new(kind, direction).policy(policy).who(who).was(was).now(now).sure(
                direction == Direction::Narrowing,
                "users outside every inclusion of an otherwise chain may be unprotected (rule E2)",
            ));
        }
    }
    out
}

/// Walks two lists sorted by `cmp`, calling `f` with each key's items (either may be absent).
fn merge<'x, T>(
    b: &'x [T],
    a: &'x [T],
    cmp: impl Fn(&T, &T) -> std::cmp::Ordering,
    mut f: impl FnMut(Option<&'x T>, Option<&'x T>),
) {
    let (mut i, mut j) = (0, 0);
    while i < b.len() || j < a.len() {
        match (b.get(i), a.get(j)) {
            (Some(x), Some(y)) => match cmp(x, y) {
                std::cmp::Ordering::Less => {
                    f(Some(x), None);
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    f(None, Some(y));
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    f(Some(x), Some(y));
                    i += 1;
                    j += 1;
                }
            },
            (Some(x), None) => {
                f(Some(x), None);
                i += 1;
            }
            (None, Some(y)) => {
                f(None, Some(y));
                j += 1;
            }
            (None, None) => break,
        }
    }
}

/// Orders (policy, rule) pairs by key then rule; the same shared policy needs no string
/// comparison.
fn by_rule(x: (&Arc<Policy>, u32), y: (&Arc<Policy>, u32)) -> std::cmp::Ordering {
    if Arc::ptr_eq(x.0, y.0) {
        x.1.cmp(&y.1)
    } else {
        (x.0.key.as_str(), x.1).cmp(&(y.0.key.as_str(), y.1))
    }
}

/// Row rules of one table, before and after (rules R1, R2). Both lists are sorted by policy
/// key and rule.
fn rows(b: &[RowCandidate], a: &[RowCandidate], changed: bool, after: &World) -> Vec<Template> {
    let mut out = Vec::new();
    merge(
        b,
        a,
        |x, y| by_rule((&x.policy, x.rule), (&y.policy, y.rule)),
        |x, y| match (x, y) {
            (Some(r), None) => out.push(
                Template::new(FindingKind::RowRestrictionRemoved, Direction::Widening)
                    .policy(&r.policy.key)
                    .was(r.rows().1)
                    .sure(!changed, TAGS_CHANGED)
                    .sure(r.level == Level::Certain, AMBIGUOUS),
            ),
            (None, Some(r)) => out.push(
                Template::new(FindingKind::RowRestrictionAdded, Direction::Narrowing)
                    .policy(&r.policy.key)
                    .now(r.rows().1)
                    .sure(r.level == Level::Certain, AMBIGUOUS),
            ),
            (Some(r), Some(n)) if !Arc::ptr_eq(&r.policy, &n.policy) => {
                if r.rows().0 != n.rows().0 {
                    out.push(
                        Template::new(FindingKind::RowRestrictionChanged, Direction::Widening)
                            .policy(&r.policy.key)
                            .was(r.rows().1)
                            .now(n.rows().1)
                            .sure(false, RULE_CHANGED),
                    );
                }
                if r.audience() != n.audience() {
                    out.extend(audience(
                        &r.policy.key,
                        r.audience(),
                        n.audience(),
                        "see every row of",
                        after,
                    ));
                }
            }
            _ => {}
        },
    );
    out
}

fn principal_labels(p: Option<&Principals>) -> BTreeSet<String> {
    p.map(Principals::labels).unwrap_or_default().into_iter().collect()
}

/// How who may subscribe (or, with `verb` `join`, join a project) changed (rule S2), as
/// (direction, what changed).
fn access_changes(b: &Access, a: &Access, verb: &str) -> Vec<(Direction, String)> {
    let mut out = Vec::new();
    let (ob, oa) = (b.openness(), a.openness());
    if b.kind != a.kind {
        let direction = if oa > ob || (oa == ob && oa != Openness::Manual) {
            Direction::Widening
        } else {
            Direction::Narrowing
        };
        let now = if oa == Openness::Anyone {
            format!("anyone may now {verb}")
        } else {
            format!("now {}", a.describe())
        };
        out.push((direction, now));
    } else {
        let (lb, la) =
            (principal_labels(b.entitlements.as_ref()), principal_labels(a.entitlements.as_ref()));
        let op = a.entitlements.as_ref().map_or(Op::Any, Principals::operator);
        let added: Vec<String> = la.difference(&lb).cloned().collect();
        let removed: Vec<String> = lb.difference(&la).cloned().collect();
        let (widen, narrow) = match op {
            Op::Any => (added, removed),
            Op::All => (removed, added),
        };
        if !widen.is_empty() {
            out.push((Direction::Widening, format!("{} may now qualify", widen.join(", "))));
        }
        if !narrow.is_empty() {
            out.push((Direction::Narrowing, format!("{} no longer qualify", narrow.join(", "))));
        }
        let opb = b.entitlements.as_ref().map_or(Op::Any, Principals::operator);
        if widen.is_empty() && narrow.is_empty() && opb != op {
            out.push(if op == Op::Any {
                (Direction::Widening, "any one entitlement now qualifies (was: all)".to_owned())
            } else {
                (Direction::Narrowing, "every entitlement is now required (was: any)".to_owned())
            });
        }
        if b.advanced != a.advanced {
            out.push((
                Direction::Widening,
                format!(
                    "the advanced rule changed to {}",
                    a.advanced.as_deref().map_or("none".into(), |x| format!("`{x}`"))
                ),
            ));
        }
        let gone: Vec<&String> = b.approvals.difference(&a.approvals).collect();
        let new: Vec<&String> = a.approvals.difference(&b.approvals).collect();
        if !gone.is_empty() {
            out.push((
                Direction::Widening,
                format!(
                    "approval by {} is no longer asked",
                    gone.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        if !new.is_empty() && gone.is_empty() {
            out.push((
                Direction::Narrowing,
                format!(
                    "approval by {} is now asked",
                    new.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }
    let flags = [
        (
            b.automatic,
            a.automatic,
            "eligible users are subscribed automatically",
            "eligible users must now ask to subscribe",
        ),
        (
            b.discovery,
            a.discovery,
            "users who do not qualify can discover it",
            "only qualifying users can discover it",
        ),
        (
            b.share == Some(true),
            a.share == Some(true),
            "it merges with other policies with OR (`shareResponsibility: true`)",
            "it no longer merges with other policies with OR",
        ),
        (
            b.grant.as_deref() == Some("WRITE"),
            a.grant.as_deref() == Some("WRITE"),
            "it grants WRITE access",
            "it no longer grants WRITE access",
        ),
    ];
    for (was, now, widened, narrowed) in flags {
        if was != now {
            out.push(if now {
                (Direction::Widening, widened.to_owned())
            } else {
                (Direction::Narrowing, narrowed.to_owned())
            });
        }
    }
    out
}

/// Subscription policies of one table, before and after (rules S1–S4). Both lists are sorted
/// by policy key.
fn subscriptions(b: &[SubCandidate], a: &[SubCandidate], changed: bool) -> Vec<Template> {
    let mut out = Vec::new();
    let listing = |l: &[SubCandidate]| {
        l.iter()
            .map(|s| format!("`{}`: {}", s.policy.key, s.access().describe()))
            .collect::<Vec<_>>()
            .join("; ")
    };
    if !b.is_empty() && a.is_empty() {
        let certain = b.iter().any(|s| s.level == Level::Certain);
        let mut t = Template::new(FindingKind::SubscriptionUngoverned, Direction::Widening)
            .was(listing(b))
            .sure(!changed, TAGS_CHANGED)
            .sure(certain, AMBIGUOUS);
        if let [only] = b {
            t.policy = Some(only.policy.key.clone());
        }
        out.push(t);
        return out;
    }
    let sole = b.len() <= 1 && a.len() <= 1;
    let by_key = |x: &SubCandidate, y: &SubCandidate| {
        if Arc::ptr_eq(&x.policy, &y.policy) {
            std::cmp::Ordering::Equal
        } else {
            x.policy.key.cmp(&y.policy.key)
        }
    };
    merge(b, a, by_key, |x, y| match (x, y) {
        (None, Some(s)) => {
            let open = s.access().openness();
            let k = &s.policy.key;
            if b.is_empty() {
                let t = if open >= Openness::Unknown {
                    Template::new(FindingKind::SubscriptionWidened, Direction::Widening)
                        .now(format!("{} may subscribe", s.access().describe()))
                        .was("no subscription policy (the data platform's own grants)")
                } else {
                    Template::new(FindingKind::SubscriptionNarrowed, Direction::Narrowing)
                        .now(format!("only {} may subscribe", s.access().describe()))
                        .was("no subscription policy (the data platform's own grants)")
                };
                out.push(t.policy(k).sure(s.level == Level::Certain, AMBIGUOUS));
            } else if open != Openness::Manual {
                out.push(
                    Template::new(FindingKind::SubscriptionWidened, Direction::Widening)
                        .policy(k)
                        .now(format!(
                            "the policy now also applies: {} may subscribe",
                            s.access().describe()
                        ))
                        .was(listing(b))
                        .sure(false, MERGE),
                );
            }
        }
        (Some(s), None) => out.push(
            Template::new(FindingKind::SubscriptionWidened, Direction::Widening)
                .policy(&s.policy.key)
                .now(format!(
                    "the policy no longer applies (it admitted {}); still applying: {}",
                    s.access().describe(),
                    codes(a.iter().map(|x| x.policy.key.as_str()))
                ))
                .was(listing(b))
                .sure(false, MERGE)
                .sure(!changed, TAGS_CHANGED),
        ),
        (Some(sb), Some(sa))
            if !Arc::ptr_eq(&sb.policy, &sa.policy) && sb.access() != sa.access() =>
        {
            for (direction, now) in access_changes(sb.access(), sa.access(), "subscribe") {
                let kind = match direction {
                    Direction::Widening => FindingKind::SubscriptionWidened,
                    Direction::Narrowing => FindingKind::SubscriptionNarrowed,
                };
                let certain = sole && sa.level == Level::Certain && sb.level == Level::Certain;
                out.push(
                    Template::new(kind, direction)
                        .policy(&sa.policy.key)
                        .now(now)
                        .was(sb.access().describe())
                        .sure(certain, if sole { AMBIGUOUS } else { MERGE }),
                );
            }
        }
        _ => {}
    });
    out
}

/// References the plan leaves dangling: projects naming data sources or purposes it removes
/// (errors: the project post would fail), exceptions naming purposes it removes, and policies
/// whose tags no longer match any managed column or table (warnings).
fn references(
    before: &World,
    after: &World,
    interner: &Interner,
    changes: &Changes<'_>,
    tenant: Option<&TenantFacts>,
) -> Vec<BrokenReference> {
    let mut out = Vec::new();
    // Data-source names this plan removes, and why.
    let mut removed: BTreeMap<String, String> = BTreeMap::new();
    let mut kept: HashSet<String> = HashSet::new();
    for key in changes.connections {
        let tb = before.connections.get(*key);
        let ta = after.connections.get(*key);
        let ids: HashSet<&str> = ta.iter().flat_map(|t| t.iter()).map(|t| t.id()).collect();
        for t in tb.iter().flat_map(|t| t.iter()).filter(|t| t.id() != "*") {
            if !ids.contains(t.id()) {
                let why = if ta.is_none() {
                    format!("connection `{key}` is deleted")
                } else {
                    format!("table `{}` is dropped from connection `{key}`", t.id())
                };
                removed.insert(t.name().to_owned(), why);
            }
        }
        if ta.is_none() {
            for n in before.recorded_names.get(*key).into_iter().flatten() {
                removed
                    .entry(n.clone())
                    .or_insert_with(|| format!("connection `{key}` is deleted"));
            }
        }
        if let Some(t) = tenant {
            for n in t.deleting.get(*key).into_iter().flatten() {
                removed.entry(n.clone()).or_insert_with(|| {
                    format!("the tenant's dry run of connection `{key}` deletes or disables it")
                });
            }
            kept.extend(t.keeping.get(*key).into_iter().flatten().cloned());
        }
    }
    // A removed name is kept when a changed connection still produces it (a table moved
    // between connections); an unchanged connection cannot (names are unique).
    if !removed.is_empty() {
        for key in changes.connections {
            for t in after.connections.get(*key).into_iter().flat_map(|t| t.iter()) {
                kept.insert(t.name().to_owned());
            }
        }
    }
    removed.retain(|n, _| !kept.contains(n));
    let removed_purposes: BTreeSet<&String> = before.purposes.difference(&after.purposes).collect();
    let mut projects: Vec<&Arc<Project>> = after.projects.values().collect();
    projects.sort_by(|a, b| a.key.cmp(&b.key));
    for p in &projects {
        for ds in &p.datasources {
            if let Some(why) = removed.get(ds) {
                out.push(BrokenReference {
                    severity: Severity::Error,
                    code: "project-data-source",
                    object: ObjectId::new(Kind::Project, &p.key),
                    name: ds.clone(),
                    message: format!(
                        "project `{}` lists data source `{ds}`, which this plan removes ({why}); \
                         the project would name a data source that no longer exists: remove it \
                         from the project in the same change",
                        p.key
                    ),
                });
            } else if !kept.contains(ds) && removed.keys().any(|r| loose_name(r) == loose_name(ds))
            {
                out.push(BrokenReference {
                    severity: Severity::Warning,
                    code: "project-data-source",
                    object: ObjectId::new(Kind::Project, &p.key),
                    name: ds.clone(),
                    message: format!(
                        "project `{}` lists data source `{ds}`, whose name resembles one this plan \
                         removes; check that it still exists (rule N2)",
                        p.key
                    ),
                });
            }
        }
        for purpose in &p.purposes {
            if removed_purposes.contains(purpose) {
                out.push(BrokenReference {
                    severity: Severity::Error,
                    code: "project-purpose",
                    object: ObjectId::new(Kind::Project, &p.key),
                    name: purpose.clone(),
                    message: format!(
                        "project `{}` names purpose `{purpose}`, which this plan deletes: remove \
                         it from the project in the same change",
                        p.key
                    ),
                });
            }
        }
    }
    let mut policies: Vec<_> = after.policies.values().collect();
    policies.sort_by(|a, b| a.key.cmp(&b.key));
    for p in &policies {
        for purpose in p.purposes() {
            if removed_purposes.iter().any(|r| r.as_str() == purpose) {
                out.push(BrokenReference {
                    severity: Severity::Warning,
                    code: "exception-purpose",
                    object: ObjectId::new(Kind::Policy, &p.key),
                    name: purpose.to_owned(),
                    message: format!(
                        "policy `{}` names purpose `{purpose}` in an exception or inclusion, which \
                         this plan deletes: no one can meet that condition any more",
                        p.key
                    ),
                });
            }
        }
    }
    // Tags: only when every connection was read (a policy or a connection changed).
    if !changes.policies.is_empty() || !changes.connections.is_empty() {
        let universe = |w: &World| -> FxSet<&str> {
            let mut profiles = vec![false; interner.profiles()];
            for t in w.tables() {
                profiles[t.profile] = true;
            }
            let mut set = FxSet::default();
            for (id, _) in profiles.iter().enumerate().filter(|(_, p)| **p) {
                let p = interner.profile(id);
                set.extend(p.table.lower_with_ancestors());
                set.extend(p.columns.lower_with_ancestors());
            }
            set
        };
        let (ub, ua) = (universe(before), universe(after));
        for p in policies.iter().filter(|p| !p.staged) {
            let changed = changes.policies.contains(p.key.as_str());
            for t in &p.tags {
                if ua.contains(t.lower.as_str()) || !(changed || ub.contains(t.lower.as_str())) {
                    continue;
                }
                out.push(BrokenReference {
                    severity: Severity::Warning,
                    code: "unmatched-tag",
                    object: ObjectId::new(Kind::Policy, &p.key),
                    name: t.exact.clone(),
                    message: format!(
                        "policy `{}` names tag `{}`, which no column or table of a managed data \
                         source carries {} this plan (tags may also come from outside Git: \
                         identification, a catalog)",
                        p.key,
                        t.exact,
                        if ub.contains(t.lower.as_str()) { "any more after" } else { "after" }
                    ),
                });
            }
        }
    }
    out.sort();
    out
}

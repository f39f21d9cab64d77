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

use super::matching::{Level, Op, Openness, Strength, loose_name};
use super::model::{
    Access, Audience, ClassId, Interner, MaskCandidate, Principals, ProfileId, ProfileModel,
    Project, RowCandidate, SubCandidate, Table, World, applies, projects_meeting,
};
use super::{
    BrokenReference, Confidence, Direction, Finding, FindingKind, Impact, Severity, Subject,
    TenantFacts,
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

/// Findings merged by template, in first-seen order.
#[derive(Default)]
struct Findings {
    index: HashMap<Template, usize>,
    list: Vec<(Template, Vec<Subject>)>,
}

impl Findings {
    fn add(&mut self, t: &Template, subject: Subject) {
        match self.index.get(t) {
            Some(&i) => self.list[i].1.push(subject),
            None => {
                self.index.insert(t.clone(), self.list.len());
                self.list.push((t.clone(), vec![subject]));
            }
        }
    }

    fn finish(self) -> Vec<Finding> {
        let mut out: Vec<Finding> = self
            .list
            .into_iter()
            .map(|(t, mut subjects)| {
                subjects.sort();
                subjects.dedup();
                Finding {
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
                }
            })
            .collect();
        out.sort_by(|a, b| {
            (a.direction, a.confidence, a.kind, &a.policy, &a.subjects).cmp(&(
                b.direction,
                b.confidence,
                b.kind,
                &b.policy,
                &b.subjects,
            ))
        });
        out
    }
}

/// The models of one side, computed on demand.
struct Models<'w> {
    world: &'w World,
    interner: &'w Interner,
    profiles: HashMap<ProfileId, Rc<ProfileModel>>,
    masks: HashMap<ClassId, Rc<Vec<MaskCandidate>>>,
}

impl<'w> Models<'w> {
    fn new(world: &'w World, interner: &'w Interner) -> Self {
        Models { world, interner, profiles: HashMap::new(), masks: HashMap::new() }
    }

    fn profile(&mut self, id: ProfileId) -> Rc<ProfileModel> {
        let (world, interner) = (self.world, self.interner);
        Rc::clone(
            self.profiles
                .entry(id)
                .or_insert_with(|| Rc::new(ProfileModel::new(world, interner.profile(id)))),
        )
    }

    fn masks(&mut self, class: ClassId) -> Rc<Vec<MaskCandidate>> {
        if let Some(m) = self.masks.get(&class) {
            return Rc::clone(m);
        }
        let c = self.interner.class(class);
        let m = Rc::new(self.profile(c.profile).masking(c));
        self.masks.insert(class, Rc::clone(&m));
        m
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
        b: Models::new(before, interner),
        a: Models::new(after, interner),
        interner,
        after,
        findings: Findings::default(),
        columns: HashMap::new(),
        tables: HashMap::new(),
        purposes: None,
    };
    let mut keys: Vec<&String> =
        before.connections.keys().chain(after.connections.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let (tb, ta) = (before.connections.get(key), after.connections.get(key));
        match (tb, ta) {
            (Some(b), Some(a)) if Arc::ptr_eq(b, a) => {
                for t in b.iter().filter(|t| affected[t.profile]) {
                    cx.compare(t, t);
                }
            }
            _ => {
                let empty = Vec::new();
                let b = tb.map_or(&empty, |b| b.as_ref());
                let a = ta.map_or(&empty, |a| a.as_ref());
                let by_id: HashMap<&str, &Table> = a.iter().map(|t| (t.id.as_str(), t)).collect();
                for t in b {
                    match by_id.get(t.id.as_str()) {
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
                let old: HashSet<&str> = b.iter().map(|t| t.id.as_str()).collect();
                for t in a.iter().filter(|t| !old.contains(t.id.as_str())) {
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
            before.tables().filter(|t| t.id != "*").map(|t| t.name.as_str()).collect();
        let mut wanted: BTreeSet<String> = BTreeSet::new();
        for f in &out.findings {
            for s in &f.subjects {
                let name = match s {
                    Subject::Column { data_source, .. }
                    | Subject::DataSource { data_source, .. } => data_source,
                    Subject::Project { .. } => continue,
                };
                if managed.contains(name.as_str()) && !reported.contains(name.as_str()) {
                    wanted.insert(name.clone());
                }
            }
        }
        out.wanted_tags = wanted.into_iter().collect();
        out.basis.tenant_tagged = before
            .tables()
            .chain(after.tables())
            .filter(|t| interner.profile(t.profile).tenant)
            .map(|t| t.name.as_str())
            .collect::<HashSet<_>>()
            .len();
    }
    out.references = references(before, after, interner, changes, tenant);
}

/// The comparison state.
struct Cx<'w> {
    b: Models<'w>,
    a: Models<'w>,
    interner: &'w Interner,
    after: &'w World,
    findings: Findings,
    /// Findings of (class before, class after).
    columns: HashMap<(ClassId, ClassId), Rc<Vec<Template>>>,
    /// Findings of (profile before, profile after).
    tables: HashMap<(ProfileId, ProfileId), Rc<Vec<Template>>>,
    /// Purposes exceptions name in the after side: (purpose, policy key).
    purposes: Option<Vec<(String, String)>>,
}

fn table_subject(t: &Table) -> Subject {
    Subject::DataSource {
        data_source: t.name.clone(),
        connection: t.connection.clone(),
        table: t.id.clone(),
    }
}

impl Cx<'_> {
    /// A table on both sides.
    fn compare(&mut self, tb: &Table, ta: &Table) {
        let key = (tb.profile, ta.profile);
        let templates = match self.tables.get(&key) {
            Some(t) => Rc::clone(t),
            None => {
                let mb = self.b.profile(tb.profile);
                let ma = self.a.profile(ta.profile);
                let changed = tb.profile != ta.profile;
                let tenant = self.tenant(tb.profile, ta.profile);
                let mut list = rows(&mb.rows, &ma.rows, changed, self.after);
                list.extend(subscriptions(&mb.subscriptions, &ma.subscriptions, changed));
                for t in &mut list {
                    t.tenant = tenant;
                }
                let list = Rc::new(list);
                self.tables.insert(key, Rc::clone(&list));
                list
            }
        };
        for t in templates.iter() {
            self.findings.add(t, table_subject(ta));
        }
        let other = |t: &Table| t.columns.last().map(|c| c.1);
        let (Some(ob), Some(oa)) = (other(tb), other(ta)) else { return };
        let mut names: BTreeMap<&str, (ClassId, ClassId)> = BTreeMap::new();
        for (n, c) in &tb.columns {
            names.insert(n.as_str(), (*c, oa));
        }
        for (n, c) in &ta.columns {
            names.entry(n.as_str()).and_modify(|e| e.1 = *c).or_insert((ob, *c));
        }
        for (name, (cb, ca)) in names {
            let templates = match self.columns.get(&(cb, ca)) {
                Some(t) => Rc::clone(t),
                None => {
                    let mb = self.b.masks(cb);
                    let ma = self.a.masks(ca);
                    let changed = tb.profile != ta.profile || !same_tags(self.interner, cb, ca);
                    let tenant = self.tenant(tb.profile, ta.profile);
                    let mut list = masking(&mb, &ma, changed, self.after);
                    for t in &mut list {
                        t.tenant = tenant;
                    }
                    let list = Rc::new(list);
                    self.columns.insert((cb, ca), Rc::clone(&list));
                    list
                }
            };
            if templates.is_empty() {
                continue;
            }
            let subject = Subject::Column {
                data_source: ta.name.clone(),
                column: name.to_owned(),
                connection: ta.connection.clone(),
                table: ta.id.clone(),
            };
            for t in templates.iter() {
                self.findings.add(t, subject.clone());
            }
        }
    }

    fn tenant(&self, b: ProfileId, a: ProfileId) -> bool {
        self.interner.profile(b).tenant || self.interner.profile(a).tenant
    }

    /// A table only before: its protections stop applying (rule D1).
    fn removed(&mut self, t: &Table, fate: &str) {
        let model = self.b.profile(t.profile);
        let mut parts = Vec::new();
        let masked: Vec<&str> = t
            .columns
            .iter()
            .filter(|(_, c)| self.b.masks(*c).iter().any(|m| m.strength() > Strength::None))
            .map(|(n, _)| n.as_str())
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
        let model = self.a.profile(t.profile);
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
            let subject = Subject::Project { key: (*key).to_owned() };
            let join = a.map(|p| p.join.describe());
            for ds in pa.datasources.difference(&pb.datasources) {
                let t = Template::new(FindingKind::ProjectReachAdded, Direction::Widening)
                    .policy(key)
                    .now(format!("members join: {}", join.as_deref().unwrap_or("-")))
                    .sure(false, PROJECT);
                self.findings.add(&t, self.data_source(ds));
            }
            for ds in pb.datasources.difference(&pa.datasources) {
                let t = Template::new(FindingKind::ProjectReachRemoved, Direction::Narrowing)
                    .policy(key)
                    .sure(false, PROJECT);
                self.findings.add(&t, self.data_source(ds));
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
    fn data_source(&self, name: &str) -> Subject {
        match self.after.tables().find(|t| t.name == name) {
            Some(t) => table_subject(t),
            None => Subject::DataSource {
                data_source: name.to_owned(),
                connection: String::new(),
                table: String::new(),
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
    let id = |c: &MaskCandidate| (c.policy.key.clone(), c.rule);
    let same = b.len() == a.len()
        && b.iter().zip(a).all(|(x, y)| {
            id(x) == id(y)
                && x.level == y.level
                && x.masking() == y.masking()
                && x.audience() == y.audience()
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
                let changed_rule = rb
                    .iter()
                    .any(|x| ra.iter().any(|y| id(x) == id(y) && x.masking() != y.masking()));
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
    for x in &rb {
        if let Some(y) = ra.iter().find(|y| id(x) == id(y))
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
    }
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

/// Row rules of one table, before and after (rules R1, R2).
fn rows(b: &[RowCandidate], a: &[RowCandidate], changed: bool, after: &World) -> Vec<Template> {
    let key = |r: &RowCandidate| (r.policy.key.clone(), r.rule);
    let bm: BTreeMap<_, &RowCandidate> = b.iter().map(|r| (key(r), r)).collect();
    let am: BTreeMap<_, &RowCandidate> = a.iter().map(|r| (key(r), r)).collect();
    let mut out = Vec::new();
    for (k, r) in &bm {
        match am.get(k) {
            None => out.push(
                Template::new(FindingKind::RowRestrictionRemoved, Direction::Widening)
                    .policy(&k.0)
                    .was(r.rows().1)
                    .sure(!changed, TAGS_CHANGED)
                    .sure(r.level == Level::Certain, AMBIGUOUS),
            ),
            Some(n) => {
                if r.rows().0 != n.rows().0 {
                    out.push(
                        Template::new(FindingKind::RowRestrictionChanged, Direction::Widening)
                            .policy(&k.0)
                            .was(r.rows().1)
                            .now(n.rows().1)
                            .sure(false, RULE_CHANGED),
                    );
                }
                if r.audience() != n.audience() {
                    out.extend(audience(
                        &k.0,
                        r.audience(),
                        n.audience(),
                        "see every row of",
                        after,
                    ));
                }
            }
        }
    }
    for (k, r) in &am {
        if !bm.contains_key(k) {
            out.push(
                Template::new(FindingKind::RowRestrictionAdded, Direction::Narrowing)
                    .policy(&k.0)
                    .now(r.rows().1)
                    .sure(r.level == Level::Certain, AMBIGUOUS),
            );
        }
    }
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

/// Subscription policies of one table, before and after (rules S1–S4).
fn subscriptions(b: &[SubCandidate], a: &[SubCandidate], changed: bool) -> Vec<Template> {
    let bm: BTreeMap<&str, &SubCandidate> = b.iter().map(|s| (s.policy.key.as_str(), s)).collect();
    let am: BTreeMap<&str, &SubCandidate> = a.iter().map(|s| (s.policy.key.as_str(), s)).collect();
    let mut out = Vec::new();
    let listing = |m: &BTreeMap<&str, &SubCandidate>| {
        m.iter()
            .map(|(k, s)| format!("`{k}`: {}", s.access().describe()))
            .collect::<Vec<_>>()
            .join("; ")
    };
    if !b.is_empty() && a.is_empty() {
        let certain = b.iter().any(|s| s.level == Level::Certain);
        let mut t = Template::new(FindingKind::SubscriptionUngoverned, Direction::Widening)
            .was(listing(&bm))
            .sure(!changed, TAGS_CHANGED)
            .sure(certain, AMBIGUOUS);
        if bm.len() == 1 {
            t.policy = bm.keys().next().map(|k| (*k).to_owned());
        }
        out.push(t);
        return out;
    }
    let sole = b.len() <= 1 && a.len() <= 1;
    for (k, s) in &am {
        if bm.contains_key(k) {
            continue;
        }
        let open = s.access().openness();
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
                    .was(listing(&bm))
                    .sure(false, MERGE),
            );
        }
    }
    for (k, s) in &bm {
        if am.contains_key(k) {
            continue;
        }
        out.push(
            Template::new(FindingKind::SubscriptionWidened, Direction::Widening)
                .policy(k)
                .now(format!(
                    "the policy no longer applies (it admitted {}); still applying: {}",
                    s.access().describe(),
                    codes(am.keys().copied())
                ))
                .was(listing(&bm))
                .sure(false, MERGE)
                .sure(!changed, TAGS_CHANGED),
        );
    }
    for (k, sa) in &am {
        let Some(sb) = bm.get(k) else { continue };
        if sb.access() == sa.access() {
            continue;
        }
        for (direction, now) in access_changes(sb.access(), sa.access(), "subscribe") {
            let kind = match direction {
                Direction::Widening => FindingKind::SubscriptionWidened,
                Direction::Narrowing => FindingKind::SubscriptionNarrowed,
            };
            let certain = sole && sa.level == Level::Certain && sb.level == Level::Certain;
            out.push(
                Template::new(kind, direction)
                    .policy(k)
                    .now(now)
                    .was(sb.access().describe())
                    .sure(certain, if sole { AMBIGUOUS } else { MERGE }),
            );
        }
    }
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
        let ids: HashSet<&str> = ta.iter().flat_map(|t| t.iter()).map(|t| t.id.as_str()).collect();
        for t in tb.iter().flat_map(|t| t.iter()).filter(|t| t.id != "*") {
            if !ids.contains(t.id.as_str()) {
                let why = if ta.is_none() {
                    format!("connection `{key}` is deleted")
                } else {
                    format!("table `{}` is dropped from connection `{key}`", t.id)
                };
                removed.insert(t.name.clone(), why);
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
    for t in after.tables() {
        kept.insert(t.name.clone());
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
        let universe = |w: &World| -> HashSet<String> {
            let profiles: HashSet<ProfileId> = w.tables().map(|t| t.profile).collect();
            let mut set = HashSet::new();
            for id in profiles {
                let p = interner.profile(id);
                set.extend(p.table.lower_with_ancestors().map(str::to_owned));
                set.extend(p.columns.lower_with_ancestors().map(str::to_owned));
            }
            set
        };
        let (ub, ua) = (universe(before), universe(after));
        for p in policies.iter().filter(|p| !p.staged) {
            let changed = changes.policies.contains(p.key.as_str());
            for t in &p.tags {
                if ua.contains(&t.lower) || !(changed || ub.contains(&t.lower)) {
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
                        if ub.contains(&t.lower) { "any more after" } else { "after" }
                    ),
                });
            }
        }
    }
    out.sort();
    out
}

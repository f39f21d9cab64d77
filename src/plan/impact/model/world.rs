//! One side of a plan, whether a policy applies to a table profile (rules C1–C5, M1, M2,
//! M5), and what applies to each profile.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::{
    Access, Audience, Circumstance, Circumstances, Class, Field, Masking, Policy, PolicyKind,
    Profile, Project, RuleKind, Table,
};
use crate::plan::impact::matching::{FxMap, Level, Op, Strength, literal_regex, purpose_meets};

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
    pub hard_delete: crate::plan::impact::matching::FxSet<String>,
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

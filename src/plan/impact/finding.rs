//! What an access impact says: its findings (widening or narrowing, certain or possible, and
//! their subjects), the references a plan breaks, and where its facts came from.

use std::sync::Arc;

use crate::plan::observed::ObjectId;

/// Less protection or more access, or the opposite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    /// Less protection, more access: what a reviewer must see first.
    Widening,
    /// More protection, less access.
    Narrowing,
}

impl Direction {
    /// `widening` / `narrowing`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Widening => "widening",
            Direction::Narrowing => "narrowing",
        }
    }
}

/// Whether a finding holds under every reading or only some.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Confidence {
    /// Under every reading of the docs and of the facts held.
    Certain,
    /// Under at least one reading; `caveat` says which ambiguity.
    Possible,
}

impl Confidence {
    /// `certain` / `possible`.
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::Certain => "certain",
            Confidence::Possible => "possible",
        }
    }
}

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FindingKind {
    /// A column no longer masked.
    MaskingRemoved,
    /// A column's masking weakened.
    MaskingWeakened,
    /// A masking rule changed within the same strength class (a condition, a function).
    MaskingChanged,
    /// A column's masking strengthened.
    MaskingStrengthened,
    /// A column newly masked.
    MaskingAdded,
    /// A data source no longer has a row-level rule.
    RowRestrictionRemoved,
    /// A row-level rule changed.
    RowRestrictionChanged,
    /// A data source gets a row-level rule.
    RowRestrictionAdded,
    /// A rule applies to fewer people (exceptions added, inclusions cut).
    ExceptionWidened,
    /// A rule applies to more people.
    ExceptionNarrowed,
    /// More people may subscribe to a data source.
    SubscriptionWidened,
    /// Fewer people may subscribe.
    SubscriptionNarrowed,
    /// No subscription policy governs a data source any more.
    SubscriptionUngoverned,
    /// A data source is disabled or deleted, and its protections stop applying.
    DataSourceRemoved,
    /// A project reaches a data source it did not.
    ProjectReachAdded,
    /// A project no longer reaches a data source.
    ProjectReachRemoved,
    /// A project's members now act under a purpose that exceptions name.
    PurposeExceptionAdded,
    /// They no longer do.
    PurposeExceptionRemoved,
    /// More people may join a project.
    ProjectJoinWidened,
    /// Fewer people may join a project.
    ProjectJoinNarrowed,
    /// A project's setting widens what its members see (`allowMaskedJoins`, `equalization`).
    ProjectSettingWidened,
    /// The opposite.
    ProjectSettingNarrowed,
}

impl FindingKind {
    /// The machine spelling (the plan JSON's `impact[].type`).
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::MaskingRemoved => "masking_removed",
            FindingKind::MaskingWeakened => "masking_weakened",
            FindingKind::MaskingChanged => "masking_changed",
            FindingKind::MaskingStrengthened => "masking_strengthened",
            FindingKind::MaskingAdded => "masking_added",
            FindingKind::RowRestrictionRemoved => "row_restriction_removed",
            FindingKind::RowRestrictionChanged => "row_restriction_changed",
            FindingKind::RowRestrictionAdded => "row_restriction_added",
            FindingKind::ExceptionWidened => "exception_widened",
            FindingKind::ExceptionNarrowed => "exception_narrowed",
            FindingKind::SubscriptionWidened => "subscription_widened",
            FindingKind::SubscriptionNarrowed => "subscription_narrowed",
            FindingKind::SubscriptionUngoverned => "subscription_ungoverned",
            FindingKind::DataSourceRemoved => "data_source_removed",
            FindingKind::ProjectReachAdded => "project_reach_added",
            FindingKind::ProjectReachRemoved => "project_reach_removed",
            FindingKind::PurposeExceptionAdded => "purpose_exception_added",
            FindingKind::PurposeExceptionRemoved => "purpose_exception_removed",
            FindingKind::ProjectJoinWidened => "project_join_widened",
            FindingKind::ProjectJoinNarrowed => "project_join_narrowed",
            FindingKind::ProjectSettingWidened => "project_setting_widened",
            FindingKind::ProjectSettingNarrowed => "project_setting_narrowed",
        }
    }
}

/// A data source, as findings name it: shared by every finding and column about it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DataSourceRef {
    /// Its name (from the connection's `nameTemplate`, rule N1).
    pub data_source: String,
    /// Its connection's `connectionKey` (empty for a name only a project lists).
    pub connection: Arc<str>,
    /// `SCHEMA.TABLE`, or `*` for every table of a connection under schema monitoring (empty
    /// for a name only a project lists).
    pub table: String,
}

/// Something a finding is about. Data sources are shared with the model (cloning a subject is
/// a reference count), since a finding may list every table of a large tree.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Subject {
    /// A column of a data source.
    Column {
        /// The data source.
        source: Arc<DataSourceRef>,
        /// The column (or `(columns not named in the specs)`).
        column: Arc<str>,
    },
    /// A data source.
    DataSource {
        /// The data source.
        source: Arc<DataSourceRef>,
    },
    /// Every data source of a connection (when a finding concerns all of them, they are listed
    /// once, not table by table).
    Connection {
        /// Its `connectionKey`.
        connection: Arc<str>,
        /// How many data sources it has.
        data_sources: usize,
    },
    /// A project.
    Project {
        /// Its `projectKey`.
        key: Arc<str>,
    },
}

impl Subject {
    /// How a list names it: `` `sales customers.EMAIL` ``, `` `sales orders` ``.
    pub fn label(&self) -> String {
        match self {
            Subject::Column { source, column } => format!("`{}.{column}`", source.data_source),
            Subject::DataSource { source } => format!("`{}`", source.data_source),
            Subject::Connection { connection, data_sources } => {
                format!("every data source of connection `{connection}` ({data_sources})")
            }
            Subject::Project { key } => format!("`{key}`"),
        }
    }

    /// How many data sources (or columns, or projects) it stands for.
    pub fn count(&self) -> usize {
        match self {
            Subject::Connection { data_sources, .. } => *data_sources,
            _ => 1,
        }
    }

    /// The data source it is about, when one.
    pub fn data_source(&self) -> Option<&DataSourceRef> {
        match self {
            Subject::Column { source, .. } | Subject::DataSource { source } => Some(source),
            Subject::Connection { .. } | Subject::Project { .. } => None,
        }
    }

    /// `column`, `data source`, `project`.
    pub fn noun(&self) -> &'static str {
        match self {
            Subject::Column { .. } => "column",
            Subject::DataSource { .. } | Subject::Connection { .. } => "data source",
            Subject::Project { .. } => "project",
        }
    }

    /// `columns`, `data sources`, `projects`.
    pub fn plural(&self) -> &'static str {
        match self {
            Subject::Column { .. } => "columns",
            Subject::DataSource { .. } | Subject::Connection { .. } => "data sources",
            Subject::Project { .. } => "projects",
        }
    }
}

/// Most data sources whose table tags one plan reads from the tenant (one request each); the
/// impact counts those it wanted and did not get ([`Basis::tenant_tags_unread`]).
pub const MAX_TAG_READS: usize = 200;

/// Subjects named in a sentence before "and N more".
pub const SUBJECTS_SHOWN: usize = 5;

/// One consequence of a plan for people's access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What kind.
    pub kind: FindingKind,
    /// Widening or narrowing.
    pub direction: Direction,
    /// Certain or possible.
    pub confidence: Confidence,
    /// The policy (or project) it comes from, when one.
    pub policy: Option<String>,
    /// What it is about: data sources and columns in the order of their connections
    /// (`connectionKey`) and tables, columns by name; projects by key.
    pub subjects: Vec<Subject>,
    /// What it was (`Constant, policy mask-passport-constant`).
    pub was: Option<String>,
    /// What it is now.
    pub now: Option<String>,
    /// Who it concerns, when that is the point (`members of group compliance`).
    pub who: Option<String>,
    /// Why it is only possible.
    pub caveat: Option<String>,
    /// Facts reported by the tenant (table tags) went into it.
    pub tenant: bool,
}

impl Finding {
    /// The subjects as a phrase: `column `a.X``, `3 columns (`a.X`, `a.Y`, `b.Z`)`.
    pub fn subject_phrase(&self) -> String {
        let Some(first) = self.subjects.first() else { return String::new() };
        if self.count() == 1 {
            return format!("{} {}", first.noun(), first.label());
        }
        if let [only] = self.subjects.as_slice() {
            return only.label();
        }
        let shown: Vec<String> =
            self.subjects.iter().take(SUBJECTS_SHOWN).map(Subject::label).collect();
        let more = self.subjects.len().saturating_sub(SUBJECTS_SHOWN);
        let tail = if more > 0 { format!(" and {more} more") } else { String::new() };
        format!("{} {} ({}{tail})", self.count(), first.plural(), shown.join(", "))
    }

    /// How many columns, data sources or projects it concerns.
    pub fn count(&self) -> usize {
        self.subjects.iter().map(Subject::count).sum()
    }

    /// The singular or the plural form, for the subjects.
    fn agree<'s>(&self, one: &'s str, many: &'s str) -> &'s str {
        if self.count() == 1 { one } else { many }
    }

    /// One sentence for people (without the confidence and caveat, which renderers add).
    pub fn describe(&self) -> String {
        let s = self.subject_phrase();
        let was = self.was.as_deref().unwrap_or("-");
        let now = self.now.as_deref().unwrap_or("-");
        let who = self.who.as_deref().unwrap_or("some users");
        let policy = self.policy.as_deref().map(|p| format!("`{p}`")).unwrap_or_default();
        let is = self.agree("is", "are");
        let its = self.agree("its", "their");
        match self.kind {
            FindingKind::MaskingRemoved => format!("{s} {is} no longer masked (was: {was})"),
            FindingKind::MaskingWeakened => {
                format!("masking of {s} weakened to {now} (was: {was})")
            }
            FindingKind::MaskingChanged => format!("masking of {s} changed to {now} (was: {was})"),
            FindingKind::MaskingStrengthened => {
                format!("masking of {s} strengthened to {now} (was: {was})")
            }
            FindingKind::MaskingAdded => format!("{s} {is} now masked: {now}"),
            FindingKind::RowRestrictionRemoved => {
                format!(
                    "{s} {} {its} row restriction {policy} ({was})",
                    self.agree("loses", "lose")
                )
            }
            FindingKind::RowRestrictionChanged => {
                format!("row restriction {policy} on {s} changed to {now} (was: {was})")
            }
            FindingKind::RowRestrictionAdded => {
                format!("{s} {} the row restriction {policy} ({now})", self.agree("gets", "get"))
            }
            FindingKind::ExceptionWidened => format!(
                "exception widened in {policy}: {who} {s} (the rule now applies to {now}; was: \
                 {was})"
            ),
            FindingKind::ExceptionNarrowed => format!(
                "exception narrowed in {policy}: {who} {s} (the rule now applies to {now}; was: \
                 {was})"
            ),
            FindingKind::SubscriptionWidened => {
                format!("subscription to {s} widened: {now} (policy {policy}; was: {was})")
            }
            FindingKind::SubscriptionNarrowed => {
                format!("subscription to {s} narrowed: {now} (policy {policy}; was: {was})")
            }
            FindingKind::SubscriptionUngoverned => format!(
                "no subscription policy governs {s} any more: access falls back to the data \
                 platform's own grants (was: {was})"
            ),
            FindingKind::DataSourceRemoved => {
                format!("{s} {is} {now}: {its} Immuta protections stop applying (was: {was})")
            }
            FindingKind::ProjectReachAdded => {
                format!("members of project {policy} may now reach {s}{}", extra(&self.now))
            }
            FindingKind::ProjectReachRemoved => {
                format!("members of project {policy} no longer reach {s}")
            }
            FindingKind::PurposeExceptionAdded => format!(
                "purpose exception added: members of project {policy} now act under {who}, \
                 which {now}"
            ),
            FindingKind::PurposeExceptionRemoved => format!(
                "purpose exception removed: members of project {policy} no longer act under \
                 {who}, which {was}"
            ),
            FindingKind::ProjectJoinWidened => {
                format!("more people may join project {policy}: {now} (was: {was})")
            }
            FindingKind::ProjectJoinNarrowed => {
                format!("fewer people may join project {policy}: {now} (was: {was})")
            }
            FindingKind::ProjectSettingWidened | FindingKind::ProjectSettingNarrowed => {
                format!("project {policy}: {now}")
            }
        }
    }
}

fn extra(v: &Option<String>) -> String {
    v.as_deref().map(|v| format!(" ({v})")).unwrap_or_default()
}

/// How bad a broken reference is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The apply would fail half-way: `apply` refuses the plan.
    Error,
    /// Worth a look (tags may come from outside Git; an exception becomes unreachable).
    Warning,
}

impl Severity {
    /// `error` / `warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// A reference the plan leaves dangling.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct BrokenReference {
    /// Error or warning.
    pub severity: Severity,
    /// Stable code: `project-data-source`, `project-purpose`, `exception-purpose`,
    /// `unmatched-tag`.
    pub code: &'static str,
    /// The object holding the reference.
    pub object: ObjectId,
    /// What it names (a data-source name, a purpose, a tag).
    pub name: String,
    /// For people.
    pub message: String,
}

/// Where the facts of an impact came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Basis {
    /// Offline: the specs only.
    pub offline: bool,
    /// Data sources whose table tags were read from the tenant.
    pub tenant_tags_read: usize,
    /// Data sources on which the tenant reports tags the specs do not declare (findings about
    /// them say so).
    pub tenant_tagged: usize,
    /// Managed data sources whose tags the impact wanted but were not read (the read is
    /// bounded).
    pub tenant_tags_unread: usize,
}

/// The access impact of a plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Impact {
    /// Findings: widening first, certain before possible.
    pub findings: Vec<Finding>,
    /// References the plan breaks: errors first.
    pub references: Vec<BrokenReference>,
    /// Where the facts came from.
    pub basis: Basis,
    /// Managed data sources whose table tags, as the tenant reports them, the impact wants and
    /// has not had (names, sorted): every managed data source when a changed policy's matching
    /// looks at table tags (it may match a tag applied outside Git anywhere), otherwise those
    /// the findings are about. The caller that can read the tenant reads them and plans again.
    pub wanted_tags: Vec<String>,
}

impl Impact {
    /// Findings in a direction.
    pub fn count(&self, direction: Direction) -> usize {
        self.findings.iter().filter(|f| f.direction == direction).count()
    }

    /// Broken references that refuse the apply.
    pub fn errors(&self) -> impl Iterator<Item = &BrokenReference> {
        self.references.iter().filter(|r| r.severity == Severity::Error)
    }

    /// Whether there is nothing to show.
    pub fn is_empty(&self) -> bool {
        self.findings.is_empty() && self.references.is_empty()
    }
}

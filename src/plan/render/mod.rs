//! Renderers of plans: text (terminal), JSON (tools and saved plans) and Markdown (PR comments).
//!
//! Every renderer is a pure function of a [`Plan`]: no I/O, no clock, no
//! terminal detection. Colour is decided by the caller ([`TextOptions::color`]).
//!
//! - [`text`]: Terraform-like output with unified diffs of the canonical YAML.
//! - [`json`]: the versioned, documented plan format (`docs/plan-json.md`), also the format of
//!   `plan --out`, read back by [`read_saved`].
//! - [`markdown`]: PR comments, split at object boundaries to fit a comment-size limit.
//! - [`github`]: the text plan and GitHub Actions annotations at the specs' `file:line:col`.
//!
//! Every format shows the plan's access impact first (widening before narrowing, certain before
//! possible, then the references the plan breaks), then the per-object changes.
//!
//! Secrets: the planner already masks them (`(sensitive)`, `(sensitive, changed)`); every
//! renderer still passes payloads through [`display_value`] and
//! free text through `scrub`, so a raw `(sensitive:<digest>)` string is never printed.

mod github;
mod json;
mod markdown;
mod text;

#[cfg(test)]
mod tests;

use std::borrow::Cow;

use serde_json::Value;
use similar::{ChangeTag, TextDiff};

pub use self::github::github;
pub use self::json::{FORMAT_VERSION, SavedChange, SavedPlan, SavedPlanError, json, read_saved};
pub use self::markdown::{GITHUB_COMMENT_LIMIT, markdown};
pub use self::text::{TextOptions, text};
use crate::plan::diff::display_value;
use crate::plan::impact::{Confidence, Finding};
use crate::plan::{Action, DryRun, Plan};
use crate::spec::node::to_yaml;

/// Lines of context around each change in a unified diff.
const CONTEXT_RADIUS: usize = 2;

/// What a line of a rendered diff is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineKind {
    /// A hunk header (`@@ -3,5 +3,4 @@`).
    Hunk,
    /// An unchanged line around a change.
    Context,
    /// A line only in the last applied payload.
    Removed,
    /// A line only in the desired payload.
    Added,
}

impl LineKind {
    /// The unified-diff prefix of the line.
    fn prefix(self) -> &'static str {
        match self {
            LineKind::Hunk => "",
            LineKind::Context => " ",
            LineKind::Removed => "-",
            LineKind::Added => "+",
        }
    }
}

/// One line of a rendered diff, without its prefix or newline.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DiffLine {
    kind: LineKind,
    text: String,
}

impl DiffLine {
    /// The line as it appears in a unified diff (prefix included).
    fn unified(&self) -> String {
        format!("{}{}", self.kind.prefix(), self.text)
    }
}

/// A payload for display: secrets masked ([`display_value`]: `(sensitive, changed)` where
/// `previous` holds another secret at the same place) and no raw digest left in any string,
/// even one embedded in longer text. Plans hold payloads with salted digests (that is how a
/// changed secret is seen); every renderer shows them through this function.
fn clean(value: &Value, previous: Option<&Value>) -> Value {
    fn scrub_strings(v: &mut Value) {
        match v {
            Value::String(s) => {
                if let Cow::Owned(clean) = unmarked(s) {
                    *s = clean;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(scrub_strings),
            Value::Object(map) => map.values_mut().for_each(scrub_strings),
            _ => {}
        }
    }
    let mut out = display_value(value, previous);
    scrub_strings(&mut out);
    out
}

/// The canonical YAML of a payload for display: secrets masked, no raw digests.
fn yaml(value: &Value, previous: Option<&Value>) -> String {
    let text = to_yaml(&clean(value, previous));
    scrub(&text).into_owned()
}

/// The unified diff (context radius 2) of the canonical YAML of `before` and `after`, hunk by
/// hunk and change by change.
fn diff_lines(before: &Value, after: &Value) -> Vec<DiffLine> {
    let (old, new) = (yaml(before, None), yaml(after, Some(before)));
    let diff = TextDiff::from_lines(old.as_str(), new.as_str());
    let mut unified = diff.unified_diff();
    unified.context_radius(CONTEXT_RADIUS).missing_newline_hint(false);
    let mut out = Vec::new();
    for hunk in unified.iter_hunks() {
        out.push(DiffLine { kind: LineKind::Hunk, text: hunk.header().to_string() });
        for change in hunk.iter_changes() {
            let kind = match change.tag() {
                ChangeTag::Equal => LineKind::Context,
                ChangeTag::Delete => LineKind::Removed,
                ChangeTag::Insert => LineKind::Added,
            };
            let text = change.to_string_lossy();
            out.push(DiffLine { kind, text: text.trim_end_matches(['\n', '\r']).to_owned() });
        }
    }
    out
}

/// Every line of the canonical YAML of `value`, marked `kind` (`+` for creates, `-` for deletes).
fn whole_lines(value: &Value, kind: LineKind) -> Vec<DiffLine> {
    yaml(value, None).lines().map(|l| DiffLine { kind, text: l.to_owned() }).collect()
}

/// The lines to show for a change: a unified diff for updates and replaces, the whole payload
/// for creates and adoptions (`+`), and for deletes when `deletes` is set (`-`).
fn change_lines(change: &crate::plan::Change, deletes: bool) -> Vec<DiffLine> {
    match (change.action, &change.before, &change.after) {
        (Action::Update | Action::Replace, Some(b), Some(a)) => diff_lines(b, a),
        (Action::Update | Action::Replace, None, Some(a)) => whole_lines(a, LineKind::Added),
        (Action::Create, _, Some(a)) => whole_lines(a, LineKind::Added),
        (Action::Adopt, _, Some(a)) if change.write => whole_lines(a, LineKind::Added),
        (Action::Delete, Some(b), _) if deletes => whole_lines(b, LineKind::Removed),
        _ => Vec::new(),
    }
}

/// Free text for display: every raw `(sensitive:<digest>)` replaced by `(sensitive)` (a last
/// line of defence: the planner should never let one through), and control and bidirectional
/// characters escaped ([`printable`](crate::spec::text::printable)), so that a key, a value or
/// a server message cannot make a plan read differently from what is applied.
pub(crate) fn scrub(text: &str) -> Cow<'_, str> {
    match unmarked(text) {
        Cow::Borrowed(t) => crate::spec::text::printable(t),
        Cow::Owned(t) => Cow::Owned(crate::spec::text::printable(&t).into_owned()),
    }
}

/// `text` with every raw `(sensitive:<digest>)` replaced by `(sensitive)`, nothing else
/// changed: the plan JSON is for machines, which read escapes themselves.
pub(crate) fn unmarked(text: &str) -> Cow<'_, str> {
    const OPEN: &str = "(sensitive:";
    if !text.contains(OPEN) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(OPEN) {
        out.push_str(&rest[..start]);
        let tail = &rest[start + OPEN.len()..];
        match tail.find(')') {
            Some(end) => {
                out.push_str(crate::spec::secrets::SENSITIVE);
                rest = &tail[end + 1..];
            }
            None => {
                // An unterminated marker: drop everything after it rather than risk a digest.
                out.push_str(crate::spec::secrets::SENSITIVE);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// The past participle of an action's verb, for "will be ..." sentences.
fn participle(action: Action) -> &'static str {
    match action {
        Action::Create => "created",
        Action::Update => "updated",
        Action::Delete => "deleted",
        Action::Replace => "replaced",
        Action::Adopt => "adopted",
        Action::NoOp => "left unchanged",
    }
}

/// `a`, `b` and `c` as inline code, comma-separated.
fn code_list(items: &[String]) -> String {
    items.iter().map(|i| format!("`{i}`")).collect::<Vec<_>>().join(", ")
}

/// One sentence per fact of a server dry run, for people.
fn server_notes(dry: &DryRun) -> Vec<String> {
    let mut out = Vec::new();
    match dry {
        DryRun::Data {
            creating,
            updating,
            deleting,
            no_change,
            detection_running,
            tags_updated,
        } => {
            if !creating.is_empty() {
                out.push(format!("creates data sources {}", code_list(creating)));
            }
            if !updating.is_empty() {
                out.push(format!("updates data sources {}", code_list(updating)));
            }
            if !deleting.is_empty() {
                out.push(format!("deletes or disables data sources {}", code_list(deleting)));
            }
            if !no_change.is_empty() {
                let n = no_change.len();
                out.push(format!("leaves {n} data source{} unchanged", plural(n)));
            }
            if *tags_updated {
                out.push("changes tags".to_owned());
            }
            if *detection_running {
                out.push("schema monitoring is running for the connection".to_owned());
            }
        }
        DryRun::Object { creating, updating, data_sources_added, data_sources_removed, .. } => {
            out.push(
                match (creating, updating) {
                    (true, _) => "creates the object",
                    (false, true) => "updates the object",
                    (false, false) => "reports no change",
                }
                .to_owned(),
            );
            if *data_sources_added > 0 {
                out.push(format!("adds {data_sources_added} data source(s) to the project"));
            }
            if *data_sources_removed > 0 {
                out.push(format!("removes {data_sources_removed} data source(s) from the project"));
            }
        }
        DryRun::Rejected { status, message } => {
            out.push(format!("rejects the payload ({status}): {}", scrub(message)));
        }
        DryRun::Unknown { reason } => {
            out.push(format!("unknown: {} (not taken for \"no change\")", scrub(reason)));
        }
    }
    out
}

/// `"s"` unless `n` is 1.
fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The line telling the reader how to apply destructive changes, `marked` saying how they are
/// marked.
fn allow_destroy_note(destructive: usize, marked: &str) -> String {
    format!(
        "{destructive} destructive change{s} ({marked}): `apply` refuses {them} unless run with \
         `--allow-destroy` (or `allowDestroy: true` in immuta-gitops.yaml).",
        s = plural(destructive),
        them = if destructive == 1 { "it" } else { "them" },
    )
}

/// Where the facts of the access impact came from, for the section's heading.
fn impact_basis(plan: &Plan) -> String {
    let b = &plan.impact.basis;
    if b.offline {
        return "from the specs alone; tags applied outside Git (identification, catalogs) are \
                not seen"
            .to_owned();
    }
    let mut text = if b.tenant_tags_read == 0 {
        "from the specs and the state; no table tags were read from the tenant".to_owned()
    } else {
        format!(
            "from the specs and the state, with the table tags the tenant reports for {} data \
             source{} ({} with tags from outside Git)",
            b.tenant_tags_read,
            plural(b.tenant_tags_read),
            b.tenant_tagged
        )
    };
    if b.tenant_tags_unread > 0 {
        text.push_str(&format!(
            "; the tenant's tags of {} data source{} were not read",
            b.tenant_tags_unread,
            plural(b.tenant_tags_unread),
        ));
    }
    text
}

/// A finding's sentence with its confidence: `... (possible: <caveat>)`, and `[tenant tags]`
/// when facts the tenant reported went into it.
fn finding_text(f: &Finding) -> String {
    let mut text = scrub(&f.describe()).into_owned();
    if f.tenant {
        text.push_str(" [tenant tags]");
    }
    text
}

/// The caveat of a possible finding (`possible: ...`), `None` for a certain one.
fn finding_caveat(f: &Finding) -> Option<String> {
    match (f.confidence, &f.caveat) {
        (Confidence::Certain, _) => None,
        (Confidence::Possible, Some(c)) => Some(format!("possible: {}", scrub(c))),
        (Confidence::Possible, None) => Some("possible".to_owned()),
    }
}

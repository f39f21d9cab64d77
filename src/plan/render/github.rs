//! `plan --format github`: the text plan (no colours) followed by GitHub Actions workflow
//! annotations, so that a pull request shows on its files what the tenant refuses, each
//! destructive change and each warning, at the spec's `file:line:col`.

use super::text::{TextOptions, text};
use crate::diagnostic::Location;
use crate::diagnostic::render::{Level, annotation};
use crate::plan::{Action, ObjectId, Plan};

/// Renders `plan` for a GitHub Actions log: the text plan, then one annotation per error,
/// destructive change and warning, files named from `prefix` (the spec root as the user sees
/// it, empty for the current directory), then a notice with the summary.
pub fn github(plan: &Plan, prefix: &str) -> String {
    let mut out = text(plan, &TextOptions { color: false });
    let prefix = prefix.trim_end_matches('/');
    let at = |id: &ObjectId| -> Option<Location> {
        let change = plan.changes.iter().find(|c| &c.id == id)?;
        let mut l = change.location.clone()?;
        if !prefix.is_empty() {
            l.file = format!("{prefix}/{}", l.file);
        }
        Some(l)
    };
    for e in &plan.errors {
        let message = format!("{}: {}", e.object, super::scrub(&e.message));
        out.push_str(&annotation(
            Level::Error,
            at(&e.object).as_ref(),
            "refused by the tenant",
            &message,
        ));
    }
    for c in plan.changes.iter().filter(|c| c.is_destructive()) {
        let mut message = format!("{} will be {}", c.id, c.action.verb());
        for effect in c.effects.iter().filter(|e| e.is_destructive()) {
            message.push_str(&format!("\n{}", super::scrub(&effect.describe())));
        }
        let title = "destructive change (needs --allow-destroy)";
        out.push_str(&annotation(Level::Warning, at(&c.id).as_ref(), title, &message));
    }
    for w in &plan.warnings {
        let location = w.object.as_ref().and_then(at);
        let title = format!("warning[{}]", w.code);
        out.push_str(&annotation(
            Level::Warning,
            location.as_ref(),
            &title,
            &super::scrub(&w.message),
        ));
    }
    let changes = plan.changes.iter().filter(|c| c.action != Action::NoOp).count();
    let summary = format!("Plan for {}: {} ({changes} changes)", plan.tenant, plan.summary_line());
    out.push_str(&annotation(Level::Notice, None, "immuta-gitops plan", &super::scrub(&summary)));
    out
}

//! The per-object results of an apply, for people: one line per object that was not
//! unchanged ([`result_line`], streamed by the CLI as objects finish), then a summary. Styled; `anstream` strips the styles when the output is not a
//! terminal or `NO_COLOR` is set.

use owo_colors::OwoColorize;

use super::{ObjectResult, Outcome, Status};
use crate::diagnostic::escape::printable;

/// The per-object results of an apply and the summary line.
pub fn outcome(outcome: &Outcome) -> String {
    let mut out = String::from("\n");
    for r in &outcome.results {
        if let Some(line) = result_line(r) {
            out.push_str(&line);
        }
    }
    out.push_str(&summary(outcome));
    out
}

/// One object's result, `  + policy "p" applied (12 ms)`, as it finishes (the CLI streams
/// them); `None` for an unchanged object, which is only counted.
pub fn result_line(r: &ObjectResult) -> Option<String> {
    let (word, line) = match &r.status {
        Status::Unchanged => return None,
        Status::Applied => ("applied".green().to_string(), String::new()),
        Status::Adopted => ("adopted".green().to_string(), String::new()),
        Status::Deleted => ("deleted".green().to_string(), String::new()),
        Status::Forgotten => ("no longer managed".green().to_string(), String::new()),
        Status::Recorded => ("recorded in the state".green().to_string(), String::new()),
        Status::Failed(m) => ("FAILED".red().bold().to_string(), format!(": {}", printable(m))),
        Status::Skipped(m) => ("skipped".yellow().to_string(), format!(": {}", printable(m))),
    };
    Some(format!(
        "  {} {} {word}{line} ({} ms)\n",
        r.action.symbol(),
        printable(&r.id.to_string()),
        r.took.as_millis()
    ))
}

/// The summary after the results: counts, and what to do after a failure.
pub fn summary(outcome: &Outcome) -> String {
    let mut out = String::new();
    let done = outcome.results.iter().filter(|r| r.status.is_done()).count();
    let unchanged = outcome.results.iter().filter(|r| r.status == Status::Unchanged).count();
    let failed = outcome.failed();
    let skipped = outcome.skipped();
    let summary = format!(
        "Apply {}: {done} done, {failed} failed, {skipped} skipped, {unchanged} unchanged.",
        if outcome.is_success() { "complete" } else { "incomplete" }
    );
    if outcome.is_success() {
        out.push_str(&format!("\n{}\n", summary.green().bold()));
    } else {
        out.push_str(&format!("\n{}\n", summary.red().bold()));
        out.push_str("Nothing that succeeded is lost: run the same command again to finish.\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::ObjectResult;
    use super::*;
    use crate::plan::{Action, ObjectId};
    use crate::spec::Kind;

    fn result(key: &str, action: Action, status: Status) -> ObjectResult {
        ObjectResult {
            id: ObjectId { kind: Kind::Purpose, key: key.into() },
            action,
            status,
            took: Duration::from_millis(7),
        }
    }

    #[test]
    fn every_status_that_is_done_counts_and_unchanged_objects_are_only_counted() {
        let o = Outcome {
            results: vec![
                result("a", Action::Create, Status::Applied),
                result("b", Action::Update, Status::Recorded),
                result("c", Action::Delete, Status::Forgotten),
                result("d", Action::NoOp, Status::Unchanged),
            ],
            cancelled: false,
        };
        // Styles wrap words and the summary, never split them.
        let text = outcome(&o);
        assert!(text.contains("recorded in the state"), "{text}");
        assert!(text.contains(" (7 ms)\n"), "{text}");
        assert!(!text.contains(" d "), "{text}");
        assert!(
            text.contains("Apply complete: 3 done, 0 failed, 0 skipped, 1 unchanged."),
            "{text}"
        );
    }

    #[test]
    fn an_incomplete_apply_says_how_to_finish() {
        let o = Outcome {
            results: vec![
                result("a", Action::Create, Status::Failed("403".into())),
                result("b", Action::Create, Status::Skipped("after a".into())),
            ],
            cancelled: false,
        };
        let text = outcome(&o);
        assert!(text.contains(": 403 (7 ms)"), "{text}");
        assert!(text.contains("Apply incomplete: 0 done, 1 failed, 1 skipped, 0 unchanged."));
        assert!(text.contains("run the same command again to finish"));
    }
}

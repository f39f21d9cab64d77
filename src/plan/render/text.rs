//! The human plan for terminals: Terraform-like blocks with unified diffs, optionally coloured.

use owo_colors::OwoColorize;

use super::{
    DiffLine, LineKind, allow_destroy_note, change_lines, finding_caveat, finding_text,
    impact_basis, participle, plural, scrub, server_notes,
};
use crate::plan::impact::{Direction, Severity};
use crate::plan::{Action, Change, Plan};

/// Options of [`text`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TextOptions {
    /// Emit ANSI colours. With `false` the output contains no escape sequence at all; the caller
    /// decides (terminal detection, `--color`, `NO_COLOR`).
    pub color: bool,
}

/// Indentation of everything under a change's header line.
const BODY: &str = "      ";

/// Renders `plan` for a terminal.
///
/// A header naming the tenant and revision; the access impact (widening in red, then
/// narrowing, then the references the plan breaks); one block per change that is not a no-op
/// (symbol, object, what happens, destructive marker, reason, the diff, implicit effects, the
/// server's dry-run answer); then warnings, errors, unmanaged objects and the summary.
pub fn text(plan: &Plan, options: &TextOptions) -> String {
    let p = Paint(options.color);
    let mut out: Vec<String> = Vec::new();

    let mut header = format!(
        "Plan for tenant {} at revision {}",
        p.bold(&scrub(&plan.tenant)),
        p.bold(&scrub(&plan.revision))
    );
    if let Some(base) = &plan.base {
        let base = scrub(base);
        header.push_str(&format!(
            ", against --base {} (the specs at {base} stand for the last applied state)",
            p.bold(&base)
        ));
    }
    out.push(header);
    out.push(p.dimmed(&scrub(&plan.compared())));

    impact(plan, &p, &mut out);

    let shown: Vec<&Change> = plan.changes.iter().filter(|c| c.action != Action::NoOp).collect();
    if !shown.is_empty() {
        out.push(String::new());
        out.push(legend(&shown, &p));
    }
    for change in &shown {
        out.push(String::new());
        change_block(change, &p, &mut out);
    }

    if !plan.warnings.is_empty() {
        out.push(String::new());
        out.push(p.yellow_bold("Warnings:"));
        for w in &plan.warnings {
            out.push(format!("  {} [{}] {}", p.yellow("!"), w.code, scrub(&w.message)));
        }
    }

    if !plan.errors.is_empty() {
        let n = plan.errors.len();
        out.push(String::new());
        out.push(p.red_bold(&format!(
            "Errors: the tenant refuses {n} object{}; nothing can be applied until {} fixed:",
            plural(n),
            if n == 1 { "it is" } else { "they are" }
        )));
        for e in &plan.errors {
            out.push(format!("  {} {}: {}", p.red("x"), e.object, scrub(&e.message)));
        }
    }

    if !plan.unmanaged.is_empty() {
        out.push(String::new());
        out.push(p.bold(
            "Unmanaged objects on the tenant (in no spec and no state; listed, never touched):",
        ));
        for u in &plan.unmanaged {
            let id = u.id.map(|i| format!(" (id {i})")).unwrap_or_default();
            out.push(format!("    {} \"{}\"{id}", u.kind, scrub(&u.name)));
        }
    }

    out.push(String::new());
    out.push(p.bold(&format!("Plan: {}.", plan.summary_line())));
    let (widening, narrowing) =
        (plan.impact.count(Direction::Widening), plan.impact.count(Direction::Narrowing));
    if widening + narrowing > 0 {
        let line = format!("Access: {widening} widening, {narrowing} narrowing.");
        out.push(if widening > 0 { p.red_bold(&line) } else { p.bold(&line) });
    }
    let kept = plan.changes.iter().filter(|c| c.blocked.is_some()).count();
    if kept > 0 {
        out.push(p.dimmed(&format!(
            "{kept} change{} kept back by `gitops: {{prune: false}}` (not applied).",
            plural(kept)
        )));
    }
    if !plan.has_changes() {
        out.push(p.green(&scrub(&plan.no_changes())));
    }
    let destructive = plan.summary().destructive;
    if destructive > 0 {
        out.push(p.red(&allow_destroy_note(destructive, "marked above")));
    }
    if !plan.errors.is_empty() {
        out.push(p.red_bold("The tenant refuses part of this plan: it cannot be applied."));
    }
    let broken = plan.impact.errors().count();
    if broken > 0 {
        out.push(p.red_bold(&format!(
            "The plan leaves {broken} reference{} dangling (see Access impact): `apply` refuses it.",
            plural(broken)
        )));
    }

    let mut text = out.join("\n");
    text.push('\n');
    text
}

/// The "Access impact" section: widening (red), narrowing (green), then broken references;
/// possible findings carry their caveat on the next line. Nothing when the plan changes
/// nothing; one line when it changes objects but not access.
fn impact(plan: &Plan, p: &Paint, out: &mut Vec<String>) {
    let impact = &plan.impact;
    if !plan.has_changes() && impact.is_empty() {
        return;
    }
    out.push(String::new());
    if impact.is_empty() {
        out.push(format!(
            "{} {}",
            p.bold("Access impact:"),
            p.dimmed("none found (no change to who is masked, row-restricted, may subscribe or reaches a project)")
        ));
        return;
    }
    out.push(format!(
        "{} {}",
        p.bold("Access impact"),
        p.dimmed(&format!("({}):", impact_basis(plan)))
    ));
    for (direction, title) in [
        (Direction::Widening, "Widening (less protection, more access):"),
        (Direction::Narrowing, "Narrowing (more protection, less access):"),
    ] {
        let findings: Vec<_> =
            impact.findings.iter().filter(|f| f.direction == direction).collect();
        if findings.is_empty() {
            continue;
        }
        out.push(match direction {
            Direction::Widening => format!("  {}", p.red_bold(title)),
            Direction::Narrowing => format!("  {}", p.green(title)),
        });
        for f in findings {
            let text = finding_text(f);
            out.push(match direction {
                Direction::Widening => format!("    {} {}", p.red("-"), p.red(&text)),
                Direction::Narrowing => format!("    {} {text}", p.green("+")),
            });
            if let Some(caveat) = finding_caveat(f) {
                out.push(format!("      {}", p.dimmed(&caveat)));
            }
        }
    }
    if !impact.references.is_empty() {
        out.push(format!("  {}", p.bold("Broken references:")));
        for r in &impact.references {
            let text = scrub(&r.message).into_owned();
            out.push(match r.severity {
                Severity::Error => format!("    {} {}", p.red_bold("x"), p.red(&text)),
                Severity::Warning => format!("    {} {text}", p.yellow("!")),
            });
        }
    }
}

/// `Symbols: + create, ~ update` for the actions present.
fn legend(shown: &[&Change], p: &Paint) -> String {
    let mut actions: Vec<Action> = shown.iter().map(|c| c.action).collect();
    actions.sort();
    actions.dedup();
    let items: Vec<String> =
        actions.iter().map(|a| format!("{} {}", symbol(*a, p), a.verb())).collect();
    p.dimmed("Symbols: ") + &items.join(", ")
}

/// The coloured, right-aligned symbol of an action.
fn symbol(action: Action, p: &Paint) -> String {
    let s = action.symbol();
    match action {
        Action::Create => p.green(s),
        Action::Update => p.yellow(s),
        Action::Delete | Action::Replace => p.red(s),
        Action::Adopt => p.cyan(s),
        Action::NoOp => s.to_owned(),
    }
}

/// One change: header line, notes, diff, effects, dry run.
fn change_block(change: &Change, p: &Paint, out: &mut Vec<String>) {
    let label = scrub(&change.id.to_string()).into_owned();
    if let Some(blocked) = &change.blocked {
        out.push(p.dimmed(&format!(
            "  # kept: {label} will not be {}: {}",
            participle(change.action),
            scrub(blocked)
        )));
        return;
    }

    let pad = " ".repeat(3usize.saturating_sub(change.action.symbol().len()));
    let mut head = format!(
        "{pad}{} {} will be {}",
        symbol(change.action, p),
        p.bold(&label),
        participle(change.action)
    );
    if change.is_destructive() {
        head.push(' ');
        head.push_str(&p.red_bold("(destructive)"));
    }
    if !change.write {
        head.push(' ');
        head.push_str(&p.dimmed("(state only, no API call)"));
    }
    out.push(head);

    if let Some(location) = &change.location {
        out.push(p.dimmed(&format!("{BODY}# {}", scrub(&location.to_string()))));
    }
    if change.action == Action::Delete && change.write {
        let id = change.live_id.map(|i| format!(" (id {i})")).unwrap_or_default();
        out.push(p.dimmed(&format!(
            "{BODY}# no longer in the specs: deleted from the tenant{id} and forgotten"
        )));
    }
    if let Some(reason) = &change.reason {
        out.push(p.dimmed(&format!("{BODY}# {}", scrub(reason))));
    }

    for line in change_lines(change, false) {
        out.push(format!("{BODY}{}", diff_line(&line, p)));
    }

    for effect in &change.effects {
        let text = scrub(&effect.describe()).into_owned();
        if effect.is_destructive() {
            out.push(format!("{BODY}{} {text} {}", p.red("!"), p.red_bold("(destructive)")));
        } else {
            out.push(format!("{BODY}{} {text}", p.yellow("!")));
        }
    }

    if let Some(dry) = &change.server {
        let notes = server_notes(dry);
        out.push(format!("{BODY}{} {}", p.dimmed("tenant dry run:"), notes.join("; ")));
    }
}

/// A diff line coloured by what it is (never by pattern matching its text).
fn diff_line(line: &DiffLine, p: &Paint) -> String {
    let text = scrub(&line.unified()).into_owned();
    match line.kind {
        LineKind::Hunk => p.cyan(&text),
        LineKind::Context => text,
        LineKind::Removed => p.red(&text),
        LineKind::Added => p.green(&text),
    }
}

/// Colours text when enabled; otherwise returns it unchanged (no escape sequences).
struct Paint(bool);

impl Paint {
    fn apply(&self, s: &str, f: impl FnOnce(&str) -> String) -> String {
        if self.0 { f(s) } else { s.to_owned() }
    }
    fn red(&self, s: &str) -> String {
        self.apply(s, |s| s.red().to_string())
    }
    fn red_bold(&self, s: &str) -> String {
        self.apply(s, |s| s.red().bold().to_string())
    }
    fn green(&self, s: &str) -> String {
        self.apply(s, |s| s.green().to_string())
    }
    fn yellow(&self, s: &str) -> String {
        self.apply(s, |s| s.yellow().to_string())
    }
    fn yellow_bold(&self, s: &str) -> String {
        self.apply(s, |s| s.yellow().bold().to_string())
    }
    fn cyan(&self, s: &str) -> String {
        self.apply(s, |s| s.cyan().to_string())
    }
    fn bold(&self, s: &str) -> String {
        self.apply(s, |s| s.bold().to_string())
    }
    fn dimmed(&self, s: &str) -> String {
        self.apply(s, |s| s.dimmed().to_string())
    }
}

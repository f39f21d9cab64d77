//! The plan as Markdown PR comments (GitHub/GitLab flavoured), split to fit a size limit.
//!
//! A comment is a title, a context line, then blocks: errors, the destructive-change notice,
//! the access impact (widening, narrowing, broken references) and every implicit effect, never
//! collapsed; then a summary table, warnings, one `<details>` per changed object (with a
//! ```` ```diff ```` fence), unmanaged objects. Blocks are never cut: when the whole does not fit, it is split between
//! blocks (table rows and list items count as blocks; their table header or list opening is
//! repeated in the next comment), each comment carrying the title with "part i of n". An object
//! whose block alone is too long has its diff truncated with a note.

use super::{
    DiffLine, allow_destroy_note, change_lines, finding_caveat, finding_text, impact_basis,
    participle, plural, scrub, server_notes,
};
use crate::plan::impact::{Direction, Severity};
use crate::plan::{Action, Change, Plan};

/// GitHub's limit on the size of an issue or PR comment, in characters. Callers pass a bit less
/// (for example 65,000) to leave room for what they add.
pub const GITHUB_COMMENT_LIMIT: usize = 65_536;

/// Renders `plan` as one or more Markdown comments, each at most `max_comment_len` bytes long
/// (bytes, which is never fewer than characters, so the bound also holds for character limits).
///
/// Below about 1,000 bytes the output degrades (blocks are cut short) but the bound still holds.
pub fn markdown(plan: &Plan, max_comment_len: usize) -> Vec<String> {
    let doc = Doc::new(plan);
    let single = doc.header(1, 1) + &pack(&doc.groups, &doc.blocks, usize::MAX).concat();
    if single.len() <= max_comment_len {
        return vec![single];
    }

    // Reserve room for the longest header and continuation line any part can have.
    let most = doc.blocks.len().max(2);
    let reserve = doc.header(most, most).len() + continued(most, most).len();
    let budget = max_comment_len.saturating_sub(reserve);
    let blocks: Vec<Block> = doc.blocks.iter().map(|b| doc.fit(b, budget)).collect();
    let bodies = pack(&doc.groups, &blocks, budget);
    let n = bodies.len();
    bodies
        .into_iter()
        .enumerate()
        .map(|(i, body)| {
            let mut part = doc.header(i + 1, n) + &body;
            if i + 1 < n {
                part.push_str(&continued(i + 2, n));
            }
            clamp(&mut part, max_comment_len);
            part
        })
        .collect()
}

/// The line ending a part that is continued.
fn continued(next: usize, n: usize) -> String {
    format!("_Continued in part {next} of {n}._\n")
}

/// A run of blocks sharing an opening and a closing (a table, a list under a heading).
struct Group {
    open: String,
    close: String,
}

/// The unit of splitting.
struct Block {
    /// The text, ending with a newline.
    text: String,
    /// The group it belongs to, an index into the groups.
    group: Option<usize>,
    /// The change it shows, so an oversized block can be rendered again with a shorter diff.
    change: Option<usize>,
}

/// Everything of a plan, as blocks.
struct Doc<'a> {
    plan: &'a Plan,
    groups: Vec<Group>,
    blocks: Vec<Block>,
}

impl<'a> Doc<'a> {
    fn new(plan: &'a Plan) -> Self {
        let mut doc = Doc { plan, groups: Vec::new(), blocks: Vec::new() };
        doc.errors();
        doc.notices();
        doc.impact();
        doc.effects();
        doc.table();
        doc.warnings();
        for (i, change) in plan.changes.iter().enumerate() {
            if change.action != Action::NoOp {
                doc.blocks.push(Block {
                    text: change_block(change, None),
                    group: None,
                    change: Some(i),
                });
            }
        }
        doc.unmanaged();
        doc.footer();
        doc
    }

    /// The title and context line of part `i` of `n`.
    fn header(&self, i: usize, n: usize) -> String {
        let part = if n > 1 { format!(" (part {i} of {n})") } else { String::new() };
        let mut context = format!(
            "Tenant {} · revision {}",
            code(&scrub(&self.plan.tenant)),
            code(&scrub(&self.plan.revision))
        );
        if let Some(base) = &self.plan.base {
            context.push_str(&format!(" · against `--base` {}", code(&scrub(base))));
        }
        context.push_str(&format!("  \n{}", inline(&self.plan.compared())));
        format!("### immuta-gitops plan{part}: {}\n\n{context}\n\n", self.plan.summary_line())
    }

    /// `block` cut down so that, with its group's opening and closing, it fits in `budget`.
    fn fit(&self, block: &Block, budget: usize) -> Block {
        let overhead =
            block.group.map_or(0, |g| self.groups[g].open.len() + self.groups[g].close.len());
        let room = budget.saturating_sub(overhead);
        let text = if block.text.len() <= room {
            block.text.clone()
        } else if let Some(i) = block.change {
            fit_change(&self.plan.changes[i], room)
        } else {
            shorten(&block.text, room)
        };
        Block { text, group: block.group, change: block.change }
    }

    fn group(&mut self, open: String, close: &str) -> usize {
        self.groups.push(Group { open, close: close.to_owned() });
        self.groups.len() - 1
    }

    /// A group opened by `open` and closed by `close`, holding `items`.
    fn grouped(&mut self, open: String, close: &str, items: Vec<String>) {
        let g = self.group(open, close);
        for item in items {
            self.item(g, item);
        }
    }

    fn item(&mut self, group: usize, text: String) {
        self.blocks.push(Block { text, group: Some(group), change: None });
    }

    fn text(&mut self, text: String) {
        self.blocks.push(Block { text, group: None, change: None });
    }

    fn errors(&mut self) {
        let errors = &self.plan.errors;
        if errors.is_empty() {
            return;
        }
        let n = errors.len();
        let open = format!(
            "> [!CAUTION]\n> **The tenant refuses {n} object{}: nothing can be applied until {} \
             fixed.**\n",
            plural(n),
            if n == 1 { "it is" } else { "they are" }
        );
        let items: Vec<String> = errors
            .iter()
            .map(|e| format!("> - {}: {}\n", object(&e.object), inline(&e.message)))
            .collect();
        self.grouped(open, "\n", items);
    }

    fn notices(&mut self) {
        let broken = self.plan.impact.errors().count();
        if broken > 0 {
            self.text(format!(
                "> [!CAUTION]\n> **The plan leaves {broken} reference{} dangling (see Broken \
                 references below): `apply` refuses it.**\n\n",
                plural(broken)
            ));
        }
        let destructive = self.plan.summary().destructive;
        if destructive > 0 {
            self.text(format!(
                "> [!WARNING]\n> {}\n\n",
                allow_destroy_note(destructive, "marked ⚠️")
            ));
        }
        if !self.plan.has_changes() {
            self.text(format!("{}\n\n", inline(&self.plan.no_changes())));
        }
    }

    /// The access impact, never collapsed: widening, narrowing, broken references.
    fn impact(&mut self) {
        let plan = self.plan;
        let impact = &plan.impact;
        if impact.is_empty() {
            if plan.has_changes() {
                self.text(
                    "**Access impact:** none found (no change to who is masked, row-restricted, \
                     may subscribe or reaches a project).\n\n"
                        .to_owned(),
                );
            }
            return;
        }
        self.text(format!("#### Access impact\n\n_{}._\n\n", inline(&impact_basis(plan))));
        for (direction, title) in [
            (Direction::Widening, "**🔴 Widening** (less protection, more access)"),
            (Direction::Narrowing, "**🟢 Narrowing** (more protection, less access)"),
        ] {
            let items: Vec<String> = impact
                .findings
                .iter()
                .filter(|f| f.direction == direction)
                .map(|f| {
                    let caveat = finding_caveat(f)
                        .map(|c| format!(" · _{}_", inline(&c)))
                        .unwrap_or_default();
                    format!("- {}{caveat}\n", inline(&finding_text(f)))
                })
                .collect();
            if items.is_empty() {
                continue;
            }
            self.grouped(format!("{title}\n\n"), "\n", items);
        }
        if !impact.references.is_empty() {
            let items: Vec<String> = impact
                .references
                .iter()
                .map(|r| {
                    let mark = match r.severity {
                        Severity::Error => "⛔ **error:**",
                        Severity::Warning => "⚠️",
                    };
                    format!("- {mark} {}\n", inline(&r.message))
                })
                .collect();
            self.grouped("**Broken references**\n\n".to_owned(), "\n", items);
        }
    }

    /// Every implicit effect of every change, never collapsed.
    fn effects(&mut self) {
        let items: Vec<String> = self
            .plan
            .changes
            .iter()
            .filter(|c| c.blocked.is_none())
            .flat_map(|c| {
                c.effects.iter().map(move |e| {
                    let mark = if e.is_destructive() { "⚠️ **destructive:** " } else { "" };
                    format!("- {}: {mark}{}\n", object(&c.id), inline(&e.describe()))
                })
            })
            .collect();
        if items.is_empty() {
            return;
        }
        self.grouped(
            "#### Implicit effects\n\n_What Immuta's full-replace semantics also do._\n\n"
                .to_owned(),
            "\n",
            items,
        );
    }

    fn table(&mut self) {
        let rows: Vec<String> = self
            .plan
            .changes
            .iter()
            .filter(|c| c.action != Action::NoOp)
            .map(|c| {
                let action = format!("`{}` {}", c.action.symbol(), c.action.verb());
                format!("| {} | {} | {} |\n", action, cell(&object(&c.id)), cell(&notes(c)))
            })
            .collect();
        if rows.is_empty() {
            return;
        }
        self.grouped("| Action | Object | Notes |\n|---|---|---|\n".to_owned(), "\n", rows);
    }

    fn warnings(&mut self) {
        if self.plan.warnings.is_empty() {
            return;
        }
        let items: Vec<String> = self
            .plan
            .warnings
            .iter()
            .map(|w| format!("- ⚠️ `{}`: {}\n", w.code, inline(&w.message)))
            .collect();
        self.grouped("**Warnings**\n\n".to_owned(), "\n", items);
    }

    fn unmanaged(&mut self) {
        let n = self.plan.unmanaged.len();
        if n == 0 {
            return;
        }
        let items: Vec<String> = self
            .plan
            .unmanaged
            .iter()
            .map(|u| {
                let id = u.id.map(|i| format!(" (id {i})")).unwrap_or_default();
                format!("- {} {}{id}\n", u.kind, code(&scrub(&u.name)))
            })
            .collect();
        let open = format!(
            "<details><summary>{n} unmanaged object{} on the tenant (in no spec and no state; \
             listed, never touched)</summary>\n\n",
            plural(n)
        );
        self.grouped(open, "\n</details>\n\n", items);
    }

    fn footer(&mut self) {
        let s = self.plan.summary();
        let kept = self.plan.changes.iter().filter(|c| c.blocked.is_some()).count();
        let mut notes = Vec::new();
        if s.unchanged > 0 {
            notes.push(format!("{} object{} unchanged", s.unchanged, plural(s.unchanged)));
        }
        if kept > 0 {
            notes.push(format!("{kept} kept back by `gitops: {{prune: false}}`"));
        }
        if !notes.is_empty() {
            self.text(format!("_{}._\n", notes.join("; ")));
        }
    }
}

/// The short notes of a change for the summary table.
fn notes(c: &Change) -> String {
    let mut notes = Vec::new();
    if c.blocked.is_some() {
        notes.push("kept (`prune: false`), not deleted".to_owned());
    }
    if c.is_destructive() {
        notes.push("⚠️ destructive".to_owned());
    }
    if !c.effects.is_empty() {
        let n = c.effects.len();
        notes.push(format!("{n} implicit effect{}", plural(n)));
    }
    if !c.fields.is_empty() && matches!(c.action, Action::Update | Action::Replace) {
        let n = c.fields.len();
        notes.push(format!("{n} field{}", plural(n)));
    }
    if !c.write && c.blocked.is_none() {
        notes.push("state only".to_owned());
    }
    notes.join(" · ")
}

/// The `<details>` block of one change. `diff_limit` caps the diff lines shown.
fn change_block(c: &Change, diff_limit: Option<usize>) -> String {
    let label = html(&scrub(&c.id.to_string()));
    let mut out = String::new();
    if let Some(blocked) = &c.blocked {
        out.push_str(&format!(
            "<details><summary><code>{label}</code> kept, will not be {}</summary>\n\n{}\n\n\
             </details>\n\n",
            participle(c.action),
            inline(blocked)
        ));
        return out;
    }

    let summary = summary(c, &label);
    out.push_str(&format!("<details><summary>{summary}</summary>\n\n"));

    let mut facts = Vec::new();
    if let Some(location) = &c.location {
        facts.push(code(&scrub(&location.to_string())));
    }
    if let Some(id) = c.live_id {
        facts.push(format!("id {id}"));
    }
    if let Some(reason) = &c.reason {
        facts.push(inline(reason));
    }
    if !c.write {
        facts.push("state only, no API call".to_owned());
    }
    if !facts.is_empty() {
        out.push_str(&facts.join(" · "));
        out.push_str("\n\n");
    }

    let lines = change_lines(c, true);
    let shown = diff_limit.map_or(lines.len(), |k| k.min(lines.len()));
    if shown > 0 {
        out.push_str(&fenced(&lines[..shown]));
    }
    if shown < lines.len() {
        let more = lines.len() - shown;
        out.push_str(&format!(
            "_diff truncated: {more} more line{}; run `immuta-gitops plan` locally for the full \
             diff._\n\n",
            plural(more)
        ));
    }

    let mut bullets = Vec::new();
    for e in &c.effects {
        let text = inline(&e.describe());
        if e.is_destructive() {
            bullets.push(format!("- ⚠️ **destructive:** {text}\n"));
        } else {
            bullets.push(format!("- {text}\n"));
        }
    }
    if let Some(dry) = &c.server {
        bullets.push(format!("- tenant dry run: {}\n", inline(&server_notes(dry).join("; "))));
    }
    if !bullets.is_empty() {
        out.push_str(&bullets.concat());
        out.push('\n');
    }
    out.push_str("</details>\n\n");
    out
}

/// A ```` ```diff ```` fence around `lines`, longer than any backtick run inside them.
fn fenced(lines: &[DiffLine]) -> String {
    let body: Vec<String> = lines.iter().map(|l| scrub(&l.unified()).into_owned()).collect();
    let longest = body.iter().map(|l| longest_run(l, '`')).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    format!("{fence}diff\n{}\n{fence}\n\n", body.join("\n"))
}

/// The longest run of `ch` in `s`.
fn longest_run(s: &str, ch: char) -> usize {
    let (mut best, mut run) = (0, 0);
    for c in s.chars() {
        run = if c == ch { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

/// An object reference: `policy` `` `mask` ``.
fn object(id: &crate::plan::ObjectId) -> String {
    format!("{} {}", id.kind, code(&scrub(&id.key)))
}

/// `s` as an inline code span, whatever backticks it holds.
fn code(s: &str) -> String {
    let s = s.replace(['\n', '\r'], " ");
    let ticks = "`".repeat(longest_run(&s, '`') + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') { " " } else { "" };
    format!("{ticks}{pad}{s}{pad}{ticks}")
}

/// Free text on one line, with HTML tags neutralised (a stray `<details>` must not swallow the
/// rest of the comment).
fn inline(s: &str) -> String {
    scrub(s).replace(['\n', '\r'], " ").replace('<', "&lt;").replace('>', "&gt;")
}

/// A table cell: pipes escaped.
fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

/// Text for HTML element content (not attributes).
fn html(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// `text` cut to `room` bytes with an ellipsis, for blocks that are plain text.
fn shorten(text: &str, room: usize) -> String {
    const MORE: &str = "…\n\n";
    let mut t = text.to_owned();
    clamp(&mut t, room.saturating_sub(MORE.len()));
    t.push_str(MORE);
    clamp(&mut t, room);
    t
}

/// The block of a change whose diff is as long as fits in `room`, or a short stand-in.
fn fit_change(c: &Change, room: usize) -> String {
    let total = change_lines(c, true).len();
    let fits = |k: usize| change_block(c, Some(k)).len() <= room;
    if total > 0 && fits(0) {
        // Largest number of diff lines that fits: fits(lo) holds, fits(hi) does not.
        let (mut lo, mut hi) = (0, total);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if fits(mid) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        return change_block(c, Some(lo));
    }
    let label = html(&scrub(&c.id.to_string()));
    let summary = summary(c, &label);
    let n = c.effects.len();
    let mut t = format!(
        "<details><summary>{summary}</summary>\n\nToo long for a comment ({total} diff line{}, \
         {n} implicit effect{}); run `immuta-gitops plan` locally for the details.\n\n\
         </details>\n\n",
        plural(total),
        plural(n)
    );
    clamp(&mut t, room);
    t
}

/// Splits `blocks` into bodies of at most `budget` bytes (when every block fits on its own).
fn pack(groups: &[Group], blocks: &[Block], budget: usize) -> Vec<String> {
    let open = |g: Option<usize>| g.map_or("", |g| groups[g].open.as_str());
    let close = |g: Option<usize>| g.map_or("", |g| groups[g].close.as_str());
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut cur_group: Option<usize> = None;
    let mut empty = true;
    for b in blocks {
        let same = !empty && cur_group == b.group && b.group.is_some();
        let addition = if same {
            b.text.clone()
        } else {
            format!("{}{}{}", if empty { "" } else { close(cur_group) }, open(b.group), b.text)
        };
        let fits =
            cur.len().saturating_add(addition.len()).saturating_add(close(b.group).len()) <= budget;
        if fits || empty {
            cur.push_str(&addition);
        } else {
            cur.push_str(close(cur_group));
            parts.push(std::mem::take(&mut cur));
            cur.push_str(open(b.group));
            cur.push_str(&b.text);
        }
        cur_group = b.group;
        empty = false;
    }
    if !empty {
        cur.push_str(close(cur_group));
        parts.push(cur);
    }
    if parts.is_empty() {
        parts.push(String::new());
    }
    parts
}

/// Cuts `s` to at most `max` bytes, at a character boundary.
fn clamp(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

/// The summary line of a change's `<details>`: its symbol, object and what it will be.
fn summary(c: &Change, label: &str) -> String {
    let mut summary = format!(
        "<code>{} {label}</code> will be {}",
        html(c.action.symbol()),
        participle(c.action)
    );
    if c.is_destructive() {
        summary.push_str(" ⚠️ destructive");
    }
    summary
}

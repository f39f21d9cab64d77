//! The reports of `validate`: every diagnostic and a summary, for people ([`text`]), for
//! editors and CI ([`json`], `format_version` 1), or as GitHub Actions workflow annotations
//! ([`github`], built on [`annotation`], which `plan --format github` uses too).
//!
//! This module knows nothing of specs: the caller describes the tree in a [`Tree`] (the
//! pipeline's `Specs::tree` does), so `diagnostic` stays a leaf every other module can use.

use owo_colors::OwoColorize;
use serde::Serialize;

use super::{Diagnostic, Severity, Summary};

/// What a report says about the spec tree besides its diagnostics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree<'a> {
    /// The spec root as given.
    pub root: &'a str,
    /// The snapshot's revision.
    pub revision: &'a str,
    /// Spec files read.
    pub files: usize,
    /// Valid objects by kind, in kind order, kinds without objects included.
    pub objects: Vec<Count>,
}

/// How many objects of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    /// The kind's key in the JSON report (`datasource`, `policy`...).
    pub key: &'static str,
    /// One object, in words (`data source`).
    pub noun: &'static str,
    /// Several, in words (`data sources`).
    pub plural: &'static str,
    /// The number.
    pub count: usize,
}

/// Renders diagnostics and a summary for people. Styled; `anstream` strips the styles when the
/// output is not a terminal or `NO_COLOR` is set.
pub fn text(tree: &Tree<'_>, diags: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diags {
        let mut text = super::escape::printable(&d.to_string()).into_owned();
        let label = format!("{}[{}]", d.severity.as_str(), d.code.as_str());
        let styled = match d.severity {
            Severity::Error => label.red().bold().to_string(),
            Severity::Warning => label.yellow().bold().to_string(),
        };
        text = text.replacen(&label, &styled, 1);
        out.push_str(&text);
        out.push_str("\n\n");
    }
    let objects: usize = tree.objects.iter().map(|c| c.count).sum();
    let counts: Vec<String> = tree
        .objects
        .iter()
        .filter(|c| c.count > 0)
        .map(|c| {
            if c.count == 1 { format!("1 {}", c.noun) } else { format!("{} {}", c.count, c.plural) }
        })
        .collect();
    out.push_str(&format!(
        "{}: {objects} valid object{} in {} file{}",
        super::escape::printable(tree.root),
        if objects == 1 { "" } else { "s" },
        tree.files,
        if tree.files == 1 { "" } else { "s" },
    ));
    if !counts.is_empty() {
        out.push_str(&format!(" ({})", counts.join(", ")));
    }
    out.push('\n');
    let summary = Summary::of(diags);
    if summary.errors > 0 {
        out.push_str(&format!(
            "{} {summary}: nothing will be applied until every error is fixed\n",
            "invalid:".red().bold()
        ));
    } else {
        out.push_str(&format!("{} {summary}\n", "valid:".green().bold()));
    }
    out
}

/// The JSON report (`format_version` 1).
#[derive(Serialize)]
struct JsonReport<'a> {
    format_version: u32,
    root: &'a str,
    valid: bool,
    revision: &'a str,
    files: usize,
    objects: serde_json::Map<String, serde_json::Value>,
    summary: Summary,
    diagnostics: Vec<JsonDiagnostic<'a>>,
}

#[derive(Serialize)]
struct JsonDiagnostic<'a> {
    severity: Severity,
    code: &'static str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    column: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<&'a str>,
}

/// Renders the machine-readable report.
pub fn json(tree: &Tree<'_>, diags: &[Diagnostic]) -> String {
    let summary = Summary::of(diags);
    let report = JsonReport {
        format_version: 1,
        root: tree.root,
        valid: summary.errors == 0,
        revision: tree.revision,
        files: tree.files,
        objects: tree.objects.iter().map(|c| (c.key.to_owned(), c.count.into())).collect(),
        summary,
        diagnostics: diags
            .iter()
            .map(|d| JsonDiagnostic {
                severity: d.severity,
                code: d.code.as_str(),
                message: &d.message,
                file: d.location.as_ref().map(|l| l.file.as_str()),
                line: d.location.as_ref().map(|l| l.line).filter(|l| *l > 0),
                column: d.location.as_ref().map(|l| l.column).filter(|c| *c > 0),
                path: d.path.as_deref(),
                hint: d.hint.as_deref(),
            })
            .collect(),
    };
    let mut s = serde_json::to_string_pretty(&report).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::super::{Code, Location};
    use super::*;

    fn tree(counts: &[(&'static str, usize)]) -> Tree<'static> {
        Tree {
            root: "specs",
            revision: "abc",
            files: 1,
            objects: counts
                .iter()
                .map(|&(key, count)| Count { key, noun: key, plural: "many", count })
                .collect(),
        }
    }

    #[test]
    fn the_text_report_counts_objects_in_words_and_says_whether_anything_applies() {
        let t = tree(&[("purpose", 1), ("policy", 0), ("project", 2)]);
        let out = text(&t, &[]);
        assert!(out.starts_with("specs: 3 valid objects in 1 file (1 purpose, 2 many)\n"), "{out}");
        assert!(out.ends_with(" 0 errors, 0 warnings\n"), "{out}");
        let d = Diagnostic::error(Code::Syntax, "broken").at(Location::new("a.yaml", 2, 3));
        let out = text(&tree(&[]), &[d]);
        assert!(out.contains("nothing will be applied until every error is fixed"), "{out}");
        assert!(out.contains("specs: 0 valid objects in 1 file\n"), "{out}");
    }

    #[test]
    fn the_json_report_lists_every_kind_and_leaves_unknown_positions_out() {
        let d = Diagnostic::warning(Code::UnknownField, "odd").at(Location::file("a.yaml"));
        let out: serde_json::Value =
            serde_json::from_str(&json(&tree(&[("purpose", 0), ("policy", 2)]), &[d])).unwrap();
        assert_eq!(out["format_version"], 1);
        assert_eq!(out["valid"], true);
        assert_eq!(out["objects"], serde_json::json!({"purpose": 0, "policy": 2}));
        assert_eq!(out["diagnostics"][0]["file"], "a.yaml");
        assert!(out["diagnostics"][0].get("line").is_none());
    }
}

/// Severity of a GitHub Actions annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// `::error`.
    Error,
    /// `::warning`.
    Warning,
    /// `::notice`.
    Notice,
}

/// One GitHub Actions workflow command, `::error file=F,line=L,col=C,title=T::message`, on one
/// line: the message escaped as GitHub's toolkit does (`%`, `\r`, `\n`), each property also
/// `:` and `,`. Line and column are left out when unknown (0).
pub fn annotation(
    level: Level,
    location: Option<&super::Location>,
    title: &str,
    message: &str,
) -> String {
    fn data(s: &str) -> String {
        s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
    }
    fn property(s: &str) -> String {
        data(s).replace(':', "%3A").replace(',', "%2C")
    }
    let level = match level {
        Level::Error => "error",
        Level::Warning => "warning",
        Level::Notice => "notice",
    };
    let mut props = Vec::new();
    if let Some(l) = location {
        props.push(format!("file={}", property(&l.file)));
        if l.line > 0 {
            props.push(format!("line={}", l.line));
        }
        if l.column > 0 {
            props.push(format!("col={}", l.column));
        }
    }
    if !title.is_empty() {
        props.push(format!("title={}", property(title)));
    }
    let props = if props.is_empty() { String::new() } else { format!(" {}", props.join(",")) };
    format!("::{level}{props}::{}\n", data(message))
}

/// `validate --format github`: one annotation per diagnostic (its JSON path and hint in the
/// message), then a notice with the summary. GitHub shows them on the pull request's files.
pub fn github(tree: &Tree<'_>, diags: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diags {
        let level = match d.severity {
            Severity::Error => Level::Error,
            Severity::Warning => Level::Warning,
        };
        let mut message = d.message.clone();
        if let Some(path) = &d.path {
            message.push_str(&format!("\nat: {path}"));
        }
        if let Some(hint) = &d.hint {
            message.push_str(&format!("\nhint: {hint}"));
        }
        let title = format!("{}[{}]", d.severity.as_str(), d.code.as_str());
        out.push_str(&annotation(level, d.location.as_ref(), &title, &message));
    }
    let summary = Summary::of(diags);
    let verdict = if summary.errors > 0 { "invalid" } else { "valid" };
    out.push_str(&annotation(
        Level::Notice,
        None,
        "immuta-gitops validate",
        &format!("{}: {verdict}: {summary} in {} files", tree.root, tree.files),
    ));
    out
}

#[cfg(test)]
mod github_tests {
    use super::{Level, annotation};
    use crate::diagnostic::Location;

    #[test]
    fn annotations_escape_as_github_does() {
        let at = Location::new("specs/a,b:c%.yaml", 3, 7);
        let line = annotation(Level::Error, Some(&at), "error[x]: y", "50% off\r\nnext: line, too");
        assert_eq!(
            line,
            "::error file=specs/a%2Cb%3Ac%25.yaml,line=3,col=7,title=error[x]%3A y::50%25 off%0D%0Anext: line, too\n"
        );
        let file_only = Location::file("a.yaml");
        assert_eq!(
            annotation(Level::Warning, Some(&file_only), "", "m"),
            "::warning file=a.yaml::m\n"
        );
        assert_eq!(annotation(Level::Notice, None, "", "m"), "::notice::m\n");
    }
}

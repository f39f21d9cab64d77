//! What is wrong with the input, where, and how to fix it.
//!
//! Every stage that reads user input returns `(T, Vec<Diagnostic>)` rather than stopping at the
//! first problem, so one run reports every broken file. A [`Diagnostic`] carries a severity, a
//! stable code (for editors and CI filters), the message, the location (`file:line:col`, plus the
//! JSON path inside the document where one is known) and a hint saying how to fix it.
//!
//! Messages never contain secret values: loaders only ever mention variable names, field names
//! and paths.
//!
//! [`render`] turns diagnostics into `validate`'s text and JSON reports.

pub mod escape;
pub mod render;

use std::fmt;

use serde::Serialize;

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Nothing is applied while any error exists.
    Error,
    /// Worth a look; an error only under `--strict`.
    Warning,
}

/// `diags` with every file named from `prefix` (the spec root as the user sees it, e.g.
/// `specs`), so that `file:line:col` opens from the current directory; `prefix` empty leaves
/// them as they are.
pub fn rebase(diags: &[Diagnostic], prefix: &str) -> Vec<Diagnostic> {
    let prefix = prefix.trim_end_matches('/');
    diags
        .iter()
        .cloned()
        .map(|mut d| {
            if let Some(l) = d.location.as_mut().filter(|_| !prefix.is_empty()) {
                l.file = format!("{prefix}/{}", l.file);
            }
            d
        })
        .collect()
}

/// An error and its causes on one line, `outer: cause: root cause`, as `anyhow`'s `{:#}` prints
/// them: for logs and `/status`, where an error is shown without `anyhow`. An error's own message
/// never repeats its cause (the cause is its `source()`), so each text appears once.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

impl Severity {
    /// The lower-case name used in text and JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// A stable, machine-readable name for each kind of problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Code {
    /// The file is not valid YAML or JSON.
    Syntax,
    /// The file exceeds a size, depth or alias budget.
    Budget,
    /// The file could not be read, or is not UTF-8 text.
    Unreadable,
    /// A symlink points outside the spec root.
    OutsideRoot,
    /// The same key appears twice in one mapping.
    DuplicateKey,
    /// A document is not a mapping, or its kind cannot be told from its keys.
    UnknownKind,
    /// A value has the wrong type or an invalid value.
    InvalidValue,
    /// A required field is missing.
    MissingField,
    /// A field this tool does not model (kept and posted unchanged).
    UnknownField,
    /// Two documents define the same natural key.
    DuplicateObject,
    /// A reference to an object that no spec (and no known live object) defines.
    UnknownReference,
    /// A subpurpose whose name is not prefixed by its parent's.
    SubpurposeName,
    /// `maskingConfig.type` parsed as YAML null (unquoted `Null`).
    NullTrap,
    /// Policy `actions` of the wrong shape for the policy type.
    ActionsShape,
    /// A `${VAR}` whose environment variable is not set.
    MissingVariable,
    /// A `${file:PATH}` that cannot be read or is not allowed.
    SecretFile,
    /// A malformed `${...}` placeholder.
    Placeholder,
    /// A problem with the repository settings file `immuta-gitops.yaml`.
    Settings,
    /// A secret written in clear text where a placeholder belongs.
    PlaintextSecret,
}

impl Code {
    /// The kebab-case name used in text and JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Syntax => "syntax",
            Code::Budget => "budget",
            Code::Unreadable => "unreadable",
            Code::OutsideRoot => "outside-root",
            Code::DuplicateKey => "duplicate-key",
            Code::UnknownKind => "unknown-kind",
            Code::InvalidValue => "invalid-value",
            Code::MissingField => "missing-field",
            Code::UnknownField => "unknown-field",
            Code::DuplicateObject => "duplicate-object",
            Code::UnknownReference => "unknown-reference",
            Code::SubpurposeName => "subpurpose-name",
            Code::NullTrap => "null-trap",
            Code::ActionsShape => "actions-shape",
            Code::MissingVariable => "missing-variable",
            Code::SecretFile => "secret-file",
            Code::Placeholder => "placeholder",
            Code::Settings => "settings",
            Code::PlaintextSecret => "plaintext-secret",
        }
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A position in a spec file. Lines and columns start at 1.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Location {
    /// Path relative to the spec root.
    pub file: String,
    /// 1-based line, 0 when unknown.
    pub line: u32,
    /// 1-based column, 0 when unknown.
    pub column: u32,
}

impl Location {
    /// A location at `file:line:column`.
    pub fn new(file: impl Into<String>, line: u32, column: u32) -> Self {
        Location { file: file.into(), line, column }
    }

    /// A location naming only the file.
    pub fn file(file: impl Into<String>) -> Self {
        Location { file: file.into(), line: 0, column: 0 }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (0, _) => write!(f, "{}", self.file),
            (line, 0) => write!(f, "{}:{line}", self.file),
            (line, column) => write!(f, "{}:{line}:{column}", self.file),
        }
    }
}

/// One problem found in the input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Stable code for tools.
    pub code: Code,
    /// What is wrong, in one sentence.
    pub message: String,
    /// Where, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// JSON path inside the document (`$.actions[0].rules[1]`), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// How to fix it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Diagnostic {
    /// An error with the given code and message.
    pub fn error(code: Code, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            location: None,
            path: None,
            hint: None,
        }
    }

    /// A warning with the given code and message.
    pub fn warning(code: Code, message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(code, message) }
    }

    /// Sets the location.
    pub fn at(mut self, location: Location) -> Self {
        self.location = Some(location);
        self
    }

    /// Sets the JSON path inside the document.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        let path = path.into();
        self.path = (!path.is_empty()).then_some(path);
        self
    }

    /// Sets the fix hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Whether this is an error.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    /// `file:line:col: error[code]: message`, then indented `at` and `hint` lines.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(location) = &self.location {
            write!(f, "{location}: ")?;
        }
        write!(f, "{}[{}]: {}", self.severity.as_str(), self.code.as_str(), self.message)?;
        if let Some(path) = &self.path {
            write!(f, "\n  at: {path}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// Counts of errors and warnings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Number of errors.
    pub errors: usize,
    /// Number of warnings.
    pub warnings: usize,
}

impl Summary {
    /// Counts the diagnostics.
    pub fn of(diagnostics: &[Diagnostic]) -> Self {
        let errors = diagnostics.iter().filter(|d| d.is_error()).count();
        Summary { errors, warnings: diagnostics.len() - errors }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        write!(
            f,
            "{} error{}, {} warning{}",
            self.errors,
            plural(self.errors),
            self.warnings,
            plural(self.warnings)
        )
    }
}

/// Turns warnings into errors (`--strict`).
pub fn promote_warnings(diagnostics: &mut [Diagnostic]) {
    for d in diagnostics {
        d.severity = Severity::Error;
    }
}

/// Sorts diagnostics by file, line, column, then code, so output is stable.
pub fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by(|a, b| {
        a.location
            .cmp(&b.location)
            .then(a.code.cmp(&b.code))
            .then_with(|| a.message.cmp(&b.message))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_reads_like_a_compiler_message() {
        let d = Diagnostic::error(Code::MissingVariable, "environment variable `X` is not set")
            .at(Location::new("a.yaml", 3, 7))
            .path("$.connection.password")
            .hint("export X before running");
        assert_eq!(
            d.to_string(),
            "a.yaml:3:7: error[missing-variable]: environment variable `X` is not set\n  at: \
             $.connection.password\n  hint: export X before running"
        );
    }

    #[test]
    fn summary_counts_and_pluralises() {
        let ds = [
            Diagnostic::error(Code::Syntax, "x"),
            Diagnostic::warning(Code::UnknownField, "y"),
            Diagnostic::warning(Code::UnknownField, "z"),
        ];
        assert_eq!(Summary::of(&ds).to_string(), "1 error, 2 warnings");
    }
}

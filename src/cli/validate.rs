//! `immuta-gitops validate`: load a spec tree offline and report every problem.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use owo_colors::OwoColorize;
use serde::Serialize;

use super::{EXIT_ERROR, EXIT_OK};
use crate::diagnostic::{Diagnostic, Severity, Summary};
use crate::secret_store::env_names;
use crate::secret_store::{self, ProcessSecrets};
use crate::source;
use crate::spec::{self, Desired, LoadOptions};

/// Output formats of `validate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Human-readable, `file:line:col: severity[code]: message` (coloured on a terminal).
    Text,
    /// Machine-readable diagnostics for editors and CI (see README, "validate --format json").
    Json,
}

/// Arguments of `validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Spec root: a directory (searched recursively) or a single file.
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// Treat warnings (unknown fields, literal secrets...) as errors.
    #[arg(long)]
    pub strict: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Directory that `${file:PATH}` placeholders are read from.
    #[arg(long, env = "IMMUTA_GITOPS_SECRETS_DIR", default_value = secret_store::DEFAULT_SECRETS_DIR)]
    pub secrets_dir: PathBuf,
}

pub fn run(args: &ValidateArgs) -> anyhow::Result<ExitCode> {
    let snapshot = source::dir::read(
        &args.path,
        &source::dir::ReadOptions { include: spec::is_snapshot_file, ..Default::default() },
    )
    .with_context(|| "nothing was validated; pass the directory that holds your spec files")?;
    let options = LoadOptions { strict: args.strict, ..LoadOptions::with_env(env_names()) };
    let (desired, mut diags) = spec::load(&snapshot, &options);
    let mut file_diags =
        secret_store::check_files(&desired, &ProcessSecrets::new(&args.secrets_dir));
    diags.append(&mut file_diags);
    crate::diagnostic::sort(&mut diags);
    let root = args.path.display().to_string();
    let out = match args.format {
        Format::Text => render_text(&root, &desired, &diags),
        Format::Json => render_json(&root, &desired, &diags),
    };
    anstream::stdout().lock().write_all(out.as_bytes())?;
    let failed = diags.iter().any(Diagnostic::is_error);
    Ok(ExitCode::from(if failed { EXIT_ERROR } else { EXIT_OK }))
}

/// Renders diagnostics and a summary for people. Styled; `anstream` strips the styles when the
/// output is not a terminal or `NO_COLOR` is set.
pub fn render_text(root: &str, desired: &Desired, diags: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diags {
        let mut text = d.to_string();
        let label = format!("{}[{}]", d.severity.as_str(), d.code.as_str());
        let styled = match d.severity {
            Severity::Error => label.red().bold().to_string(),
            Severity::Warning => label.yellow().bold().to_string(),
        };
        text = text.replacen(&label, &styled, 1);
        out.push_str(&text);
        out.push_str("\n\n");
    }
    let objects = desired.objects.len();
    let counts: Vec<String> = desired
        .counts()
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(
            |(k, n)| if n == 1 { format!("1 {}", k.noun()) } else { format!("{n} {}", k.plural()) },
        )
        .collect();
    out.push_str(&format!(
        "{root}: {objects} valid object{} in {} file{}",
        if objects == 1 { "" } else { "s" },
        desired.files,
        if desired.files == 1 { "" } else { "s" },
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
pub fn render_json(root: &str, desired: &Desired, diags: &[Diagnostic]) -> String {
    let summary = Summary::of(diags);
    let report = JsonReport {
        format_version: 1,
        root,
        valid: summary.errors == 0,
        revision: &desired.revision,
        files: desired.files,
        objects: desired
            .counts()
            .into_iter()
            .map(|(k, n)| (k.as_str().to_owned(), n.into()))
            .collect(),
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

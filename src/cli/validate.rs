//! `immuta-gitops validate`: load a spec tree without a tenant and report every problem (the
//! reports are `diagnostic::render`'s). `--offline` reads no secret value either: placeholders
//! are checked for their syntax only, so CI without secrets can validate. Files are named from
//! the current directory ([`shown_root`]), so `file:line:col` opens in a terminal and GitHub.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use super::{EXIT_ERROR, EXIT_OK};
use crate::diagnostic::{rebase, render};
use crate::pipeline::{Inputs, Specs};
use crate::secret_store::{self, env_names};
use crate::source;
use crate::spec::{self, LoadOptions};

/// Output formats of `validate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Human-readable, `file:line:col: severity[code]: message` (coloured on a terminal).
    Text,
    /// Machine-readable diagnostics for editors and CI (`format_version` 1; files relative to
    /// `root`).
    Json,
    /// GitHub Actions workflow annotations (`::error file=...,line=...,col=...::message`), shown
    /// on the pull request's files.
    Github,
}

/// Output formats of the reports of `doctor`, `license status` and `state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Report {
    /// For people (coloured on a terminal; NO_COLOR respected).
    Text,
    /// One JSON document, for scripts.
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
    /// Read no secret value: `${VAR}` and `${file:PATH}` placeholders are checked for their
    /// syntax, not for their values (CI without secrets, pull requests from forks).
    #[arg(long)]
    pub offline: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Directory that `${file:PATH}` placeholders are read from.
    #[arg(long, env = "IMMUTA_GITOPS_SECRETS_DIR", default_value = secret_store::DEFAULT_SECRETS_DIR)]
    pub secrets_dir: PathBuf,
}

/// `validate`.
pub fn run(args: &ValidateArgs) -> anyhow::Result<ExitCode> {
    let snapshot = source::dir::read(
        &args.path,
        &source::dir::ReadOptions { include: spec::is_snapshot_file, ..Default::default() },
    )
    .with_context(|| "nothing was validated; pass the directory that holds your spec files")?;
    let inputs = Inputs {
        options: LoadOptions {
            strict: args.strict,
            offline: args.offline,
            ..LoadOptions::with_env(env_names())
        },
        secrets_dir: args.secrets_dir.clone(),
    };
    let specs = Specs::load(&snapshot, &inputs);
    let root = args.path.display().to_string();
    let tree = specs.tree(&root);
    let out = match args.format {
        Format::Text => render::text(&tree, &rebase(&specs.diagnostics, &shown_root(&args.path))),
        Format::Json => render::json(&tree, &specs.diagnostics),
        Format::Github => {
            render::github(&tree, &rebase(&specs.diagnostics, &shown_root(&args.path)))
        }
    };
    anstream::stdout().lock().write_all(out.as_bytes())?;
    Ok(ExitCode::from(if specs.has_errors() { EXIT_ERROR } else { EXIT_OK }))
}

/// The spec root as the files of diagnostics are named from it: relative to the current
/// directory when it is under it (`specs`, not `/home/me/repo/specs`), the directory of a
/// single file, empty for the current directory itself.
pub(super) fn shown_root(root: &Path) -> String {
    let dir = if root.is_file() { root.parent().unwrap_or(Path::new("")) } else { root };
    let relative = match std::env::current_dir() {
        Ok(cwd) if dir.is_absolute() => dir.strip_prefix(&cwd).unwrap_or(dir).to_path_buf(),
        _ => dir.to_path_buf(),
    };
    let parts: PathBuf =
        relative.components().filter(|c| !matches!(c, std::path::Component::CurDir)).collect();
    parts.display().to_string()
}

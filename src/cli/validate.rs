//! `immuta-gitops validate`: load a spec tree offline and report every problem (the reports
//! are `diagnostic::render`'s).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::{EXIT_ERROR, EXIT_OK};
use crate::diagnostic::render;
use crate::pipeline::{Inputs, Specs};
use crate::secret_store::{self, env_names};
use crate::source;
use crate::spec::{self, LoadOptions};

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

/// `validate`.
pub fn run(args: &ValidateArgs) -> anyhow::Result<ExitCode> {
    let snapshot = source::dir::read(
        &args.path,
        &source::dir::ReadOptions { include: spec::is_snapshot_file, ..Default::default() },
    )
    .with_context(|| "nothing was validated; pass the directory that holds your spec files")?;
    let inputs = Inputs {
        options: LoadOptions { strict: args.strict, ..LoadOptions::with_env(env_names()) },
        secrets_dir: args.secrets_dir.clone(),
    };
    let specs = Specs::load(&snapshot, &inputs);
    let root = args.path.display().to_string();
    let tree = specs.tree(&root);
    let out = match args.format {
        Format::Text => render::text(&tree, &specs.diagnostics),
        Format::Json => render::json(&tree, &specs.diagnostics),
    };
    anstream::stdout().lock().write_all(out.as_bytes())?;
    Ok(ExitCode::from(if specs.has_errors() { EXIT_ERROR } else { EXIT_OK }))
}

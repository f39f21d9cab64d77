//! `immuta-gitops schema`: print the JSON Schema of spec documents (or of the settings file).

use std::io::Write;
use std::process::ExitCode;

use crate::spec::schema;

/// Arguments of `schema`.
#[derive(Debug, clap::Args)]
pub struct SchemaArgs {
    /// Print the schema of the repository settings file `immuta-gitops.yaml` instead.
    #[arg(long)]
    settings: bool,
}

pub fn run(args: &SchemaArgs) -> anyhow::Result<ExitCode> {
    let text = if args.settings { schema::settings_schema() } else { schema::spec_schema() };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

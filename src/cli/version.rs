//! `immuta-gitops version`: the version, the commit and the build date (what `--version` prints
//! on one line), and the target, as text or JSON.

use std::process::ExitCode;

use super::print_out;

/// The package version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The commit the binary was built from (`unknown` outside a Git checkout); see `build.rs`.
pub const COMMIT: &str = env!("IMMUTA_GITOPS_COMMIT");
/// The UTC build date, `YYYY-MM-DD` (`SOURCE_DATE_EPOCH` when set).
pub const BUILD_DATE: &str = env!("IMMUTA_GITOPS_BUILD_DATE");
/// The target triple.
pub const TARGET: &str = env!("IMMUTA_GITOPS_TARGET");

/// What `--version` prints after the program name: `0.1.0 (commit 1a2b3c4d5e6f, built 2026-12-03)`.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("IMMUTA_GITOPS_COMMIT"),
    ", built ",
    env!("IMMUTA_GITOPS_BUILD_DATE"),
    ")"
);

/// Output format of `version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum VersionFormat {
    /// One line per field.
    Text,
    /// One JSON object.
    Json,
}

/// Arguments of `version`.
#[derive(Debug, clap::Args)]
pub struct VersionArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = VersionFormat::Text)]
    format: VersionFormat,
}

pub fn run(args: &VersionArgs) -> anyhow::Result<ExitCode> {
    let text = match args.format {
        VersionFormat::Text => format!(
            "immuta-gitops {VERSION}\ncommit:     {COMMIT}\nbuilt:      {BUILD_DATE}\ntarget:     {TARGET}\n"
        ),
        VersionFormat::Json => {
            let value = serde_json::json!({
                "version": VERSION,
                "commit": COMMIT,
                "build_date": BUILD_DATE,
                "target": TARGET,
            });
            format!("{value}\n")
        }
    };
    print_out(&text)?;
    Ok(ExitCode::SUCCESS)
}

//! The command-line edge: argument parsing, wiring, printing, exit codes.
//!
//! Each subcommand lives in its own file and returns an [`ExitCode`]; errors that end a command
//! early are `anyhow` errors printed with their cause chain. This is the only module (with
//! `main`) that uses `anyhow`.

mod emulator;
mod license;
mod plan;
mod run;
mod schema;
mod tenant;
mod validate;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// GitOps reconciler for the Immuta data-governance platform.
#[derive(Debug, Parser)]
#[command(name = "immuta-gitops", version, about, long_about = None)]
pub struct Cli {
    /// When to use colours.
    #[arg(long, value_enum, global = true, default_value_t = ColorWhen::Auto)]
    color: ColorWhen,

    /// Log format (logs go to stderr; the level comes from RUST_LOG, default `info` for `run`
    /// and `warn` otherwise).
    #[arg(long, value_enum, global = true, default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ColorWhen {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load and check a spec tree; report every problem with file:line:col and a fix hint.
    Validate(validate::ValidateArgs),
    /// Show what apply would change on the tenant (or against a Git revision with --base).
    Plan(plan::PlanArgs),
    /// Make the tenant match the specs (or carry out a plan saved with `plan --out`).
    Apply(plan::ApplyArgs),
    /// Keep a tenant in sync with a Git repository or a directory (the sidecar).
    Run(Box<run::RunArgs>),
    /// License seats and expiry.
    License(license::LicenseArgs),
    /// Print the JSON Schema (draft-07) of spec documents, for editors.
    Schema(schema::SchemaArgs),
    /// Run an emulator of the documented Immuta API (a sandbox tenant for demos and tests).
    Emulator(emulator::EmulatorArgs),
}

/// Exit code for success.
pub const EXIT_OK: u8 = 0;
/// Exit code for errors.
pub const EXIT_ERROR: u8 = 1;
/// Exit code of `plan --detailed-exitcode` when there are changes.
pub const EXIT_CHANGES: u8 = 2;

/// Parses the command line, runs the command and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let choice = match cli.color {
        ColorWhen::Auto => anstream::ColorChoice::Auto,
        ColorWhen::Always => anstream::ColorChoice::Always,
        ColorWhen::Never => anstream::ColorChoice::Never,
    };
    choice.write_global();
    init_logging(cli.log_format, matches!(cli.command, Command::Run(_) | Command::Emulator(_)));
    let result = match cli.command {
        Command::Validate(args) => validate::run(&args),
        Command::Plan(args) => plan::run_plan(&args),
        Command::Apply(args) => plan::run_apply(&args),
        Command::Run(args) => run::run(&args, cli.log_format == LogFormat::Json),
        Command::License(args) => license::run(&args),
        Command::Schema(args) => schema::run(&args),
        Command::Emulator(args) => emulator::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::from(EXIT_OK),
        Err(e) => {
            if cli.log_format == LogFormat::Json {
                // Keep stderr one JSON object per line.
                tracing::error!("{e:#}");
            } else {
                let _ = writeln!(anstream::stderr(), "error: {e:#}");
            }
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// Logs to stderr, as text or JSON lines; `RUST_LOG` sets the level.
fn init_logging(format: LogFormat, long_running: bool) {
    let default = if long_running { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // A second initialisation (never in the binary) is harmless: ignore it.
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => {
            builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).try_init()
        }
    };
}

/// `immuta-gitops plan | head` must not report an error: a closed pipe is a normal way to stop.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Names of the environment variables that are set (values are not needed to validate).
fn env_names() -> impl Iterator<Item = String> {
    std::env::vars_os().filter_map(|(k, _)| k.into_string().ok())
}

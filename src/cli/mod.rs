//! The command-line edge: argument parsing, wiring, printing, exit codes. It is part of the
//! binary, not of the library (as ripgrep's CLI is its binary), and holds no domain rule: each
//! subcommand reads its arguments, calls the library, prints what it returns and picks the exit
//! code. Errors that end a command early are `anyhow` errors printed with their cause chain;
//! this is the only code that uses `anyhow`.
//!
//! One file per subcommand (`validate`, `plan`, `apply`, `run`, `license`, `schema`,
//! `state`, `doctor`, `version`, `completion`, `man`), plus [`tenant`] (which tenant a command talks to), [`args`]
//! (Terraform-style `-flag` spellings), [`logs`] (flat JSON log lines) and the helpers every
//! command shares, written once here: the async [`runtime`], the shutdown signals
//! ([`stop_signal`]), reading a secret from a file or the environment
//! ([`secret_from_file_or_env`]), and printing.
//!
//! Exit codes: 0 success (and `--help`, `--version`), 1 any error including a usage error (an
//! unknown flag or subcommand, a bad value), 2 only for `plan --detailed-exitcode` with changes.

mod apply;
mod args;
mod completion;
mod doctor;
mod emulator;
mod license;
mod logs;
mod man;
mod plan;
mod progress;
mod run;
mod schema;
mod state;
mod tenant;
mod validate;
mod version;

use std::future::Future;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use secrecy::SecretString;

use crate::redact;

/// GitOps reconciler for the Immuta data-governance platform.
#[derive(Debug, Parser)]
#[command(name = "immuta-gitops", version = version::LONG_VERSION, about, long_about = None)]
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
    Apply(apply::ApplyArgs),
    /// Keep a tenant in sync with a Git repository or a directory (the sidecar).
    Run(Box<run::RunArgs>),
    /// License seats and expiry.
    License(license::LicenseArgs),
    /// Check a tenant before the first apply, writing nothing: reachable, auth, permissions,
    /// listing shapes, connections, clock. Exit 1 when something blocks apply.
    Doctor(doctor::DoctorArgs),
    /// Print the JSON Schema (draft-07) of spec documents, for editors.
    Schema(schema::SchemaArgs),
    /// Inspect and change the state: list, show, rm (forget), migrate (file <-> PostgreSQL).
    State(state::StateArgs),
    /// Run an emulator of the documented Immuta API (a sandbox tenant for demos and tests).
    Emulator(emulator::EmulatorArgs),
    /// Print the version, the commit and the build date.
    Version(version::VersionArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell).
    Completion(completion::CompletionArgs),
    /// Print the manual page (roff), or write one page per command with --out-dir.
    Man(man::ManArgs),
}

/// Exit code for success.
pub const EXIT_OK: u8 = 0;
/// Exit code for errors.
pub const EXIT_ERROR: u8 = 1;
/// Exit code of `plan --detailed-exitcode` when there are changes.
pub const EXIT_CHANGES: u8 = 2;

/// Parses the command line, runs the command and returns the process exit code.
pub fn main() -> ExitCode {
    let args = args::normalize(std::env::args_os().collect(), &Cli::command());
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // clap exits 2 on usage errors; 2 is reserved for "changes present"
            // (`plan --detailed-exitcode`), so a usage error is 1 like every other error.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_ERROR } else { EXIT_OK });
        }
    };
    let choice = match cli.color {
        ColorWhen::Auto => anstream::ColorChoice::Auto,
        ColorWhen::Always => anstream::ColorChoice::Always,
        ColorWhen::Never => anstream::ColorChoice::Never,
    };
    choice.write_global();
    init_logging(cli.log_format, matches!(cli.command, Command::Run(_) | Command::Emulator(_)));
    progress::allow(cli.log_format == LogFormat::Text);
    let result = match cli.command {
        Command::Validate(args) => validate::run(&args),
        Command::Plan(args) => plan::run(&args),
        Command::Apply(args) => apply::run(&args),
        Command::Run(args) => run::run(&args, cli.log_format == LogFormat::Json),
        Command::License(args) => license::run(&args),
        Command::Doctor(args) => doctor::run(&args),
        Command::Schema(args) => schema::run(&args),
        Command::State(args) => state::run(&args),
        Command::Emulator(args) => emulator::run(args),
        Command::Version(args) => version::run(&args),
        Command::Completion(args) => completion::run(&args),
        Command::Man(args) => man::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::from(EXIT_OK),
        Err(e) => {
            if cli.log_format == LogFormat::Json {
                // Keep stderr one JSON object per line.
                tracing::error!("{e:#}");
            } else {
                let message = format!("{e:#}");
                let _ = writeln!(anstream::stderr(), "error: {}", redact::redact(&message));
            }
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// Logs to stderr, as text or flat JSON lines ([`logs::FlatJson`]); `RUST_LOG` sets the level.
fn init_logging(format: LogFormat, long_running: bool) {
    let default = if long_running { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Every log line passes the redaction layer.
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(redact::stderr);
    // A second initialisation (never in the binary) is harmless: ignore it.
    let _ = match format {
        LogFormat::Json => builder.event_format(logs::FlatJson).try_init(),
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

/// The async runtime of a command: two worker threads (commands wait on the network and the
/// tenant, not on the CPU).
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// A signal that stops a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM.
    Terminate,
}

/// Completes with the signal's name (`SIGINT`, `SIGTERM`) at the first of `signals`. The
/// handlers are installed before it returns, so a signal sent before the future is awaited is
/// not lost (and no longer kills the process: the caller decides how to stop).
fn stop_signal(signals: &[Stop]) -> anyhow::Result<impl Future<Output = &'static str> + Send> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut handlers = Vec::new();
    for stop in signals {
        let (kind, name) = match stop {
            Stop::Interrupt => (SignalKind::interrupt(), "SIGINT"),
            Stop::Terminate => (SignalKind::terminate(), "SIGTERM"),
        };
        handlers.push((signal(kind).with_context(|| format!("cannot handle {name}"))?, name));
    }
    Ok(async move {
        if handlers.is_empty() {
            return std::future::pending().await;
        }
        let received = handlers.iter_mut().map(|(handler, name)| {
            Box::pin(async move {
                handler.recv().await;
                *name
            })
        });
        futures::future::select_all(received).await.0
    })
}

/// A secret from `file` (when given) or else from the environment variable `env`, trimmed;
/// `None` when it is unset or empty. `what` names the file in the error (`the API key file`).
fn secret_from_file_or_env(
    file: Option<&Path>,
    env: &str,
    what: Option<&str>,
) -> anyhow::Result<Option<SecretString>> {
    let text = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| match what {
                Some(what) => format!("cannot read {what} `{}`", path.display()),
                None => format!("cannot read `{}`", path.display()),
            })?;
            // A file given but empty (a Secret mounted before it was filled in) must not
            // silently turn a feature off: the webhook would stop authenticating anyone.
            if text.trim().is_empty() {
                anyhow::bail!(
                    "`{}` is empty{}: put the secret in it, or leave the option out",
                    path.display(),
                    what.map(|w| format!(" (expected {w})")).unwrap_or_default()
                );
            }
            Some(text)
        }
        None => std::env::var(env).ok(),
    };
    let secret = text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
    // Every credential is known to the redaction layer before it is used.
    if let Some(s) = &secret {
        redact::register(s);
    }
    Ok(secret.map(SecretString::from))
}

/// Writes `text` to stdout, through the redaction layer.
fn print_out(text: &str) -> anyhow::Result<()> {
    let mut out = anstream::stdout().lock();
    out.write_all(redact::redact(text).as_bytes())?;
    out.flush()?;
    Ok(())
}

/// The sandbox banner: the first line of stdout (and a blank line) when stdout is for people,
/// else on stderr so that JSON and Markdown stay clean.
fn print_banner(banner: &str, on_stdout: bool) {
    if on_stdout {
        let _ = writeln!(anstream::stdout(), "{banner}\n");
    } else {
        let _ = writeln!(anstream::stderr(), "{banner}");
    }
}

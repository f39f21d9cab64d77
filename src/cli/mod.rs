//! The command-line edge: argument parsing, wiring, printing, exit codes.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// GitOps reconciler for the Immuta data-governance platform.
#[derive(Debug, Parser)]
#[command(name = "immuta-gitops", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run an emulator of the documented Immuta API (a sandbox tenant for demos and tests).
    Emulator(crate::emulator::EmulatorArgs),
}

/// Parses the command line, runs the command and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Emulator(args) => {
            let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(e) => {
                    eprintln!("error: cannot start the async runtime: {e}");
                    return ExitCode::from(1);
                }
            };
            match runtime.block_on(crate::emulator::run(args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {:#}", anyhow::Error::from(e));
                    ExitCode::from(1)
                }
            }
        }
    }
}

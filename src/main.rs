//! The `immuta-gitops` binary: parse the command line, run, map the outcome to an exit code.
//!
//! The command-line edge ([`cli`]) lives here, in the binary, not in the library (ripgrep's CLI
//! is its binary too): it is the only code that uses `anyhow`, prints, and picks exit codes.

#![deny(clippy::all)]

// The library's modules, at the root of the binary so that the CLI names them as the library
// does (`crate::plan`, `crate::pipeline`...).
use immuta_gitops::{
    apply, daemon, diagnostic, live, metrics, pipeline, plan, redact, secret_store, server,
    snapshot, source, spec, state,
};

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}

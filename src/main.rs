//! The `immuta-gitops` binary: parse the command line, run, map the outcome to an exit code.

use std::process::ExitCode;

fn main() -> ExitCode {
    immuta_gitops::cli::main()
}

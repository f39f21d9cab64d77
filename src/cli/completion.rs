//! `immuta-gitops completion SHELL`: a completion script for bash, zsh, fish or PowerShell on
//! stdout (clap_complete), generated from the same definition that parses the arguments.

use std::process::ExitCode;

use clap::CommandFactory;

use super::Cli;

/// Arguments of `completion`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Install, for example:\n  \
    bash:  immuta-gitops completion bash > ~/.local/share/bash-completion/completions/immuta-gitops\n  \
    zsh:   immuta-gitops completion zsh > \"${fpath[1]}/_immuta-gitops\"\n  \
    fish:  immuta-gitops completion fish > ~/.config/fish/completions/immuta-gitops.fish\n  \
    pwsh:  immuta-gitops completion powershell | Out-String | Invoke-Expression")]
pub struct CompletionArgs {
    /// The shell.
    #[arg(value_enum)]
    shell: Shell,
}

/// The shells a script can be generated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Shell {
    Bash,
    Zsh,
    Fish,
    Powershell,
}

pub fn run(args: &CompletionArgs) -> anyhow::Result<ExitCode> {
    let shell = match args.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
        Shell::Powershell => clap_complete::Shell::PowerShell,
    };
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "immuta-gitops", &mut script);
    super::print_out(&String::from_utf8_lossy(&script))?;
    Ok(ExitCode::SUCCESS)
}

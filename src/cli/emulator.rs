//! `immuta-gitops emulator`: run the Immuta API emulator as a server until Ctrl-C or SIGTERM.
//!
//! The arguments, the signal handling and the messages on stderr; the emulator itself (routes,
//! state, data file) is the `immuta-emulator` crate (`crates/emulator`). [`emulator_config`]
//! hands it the spec loader's lists, for this command and for the sandbox tenant alike.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use immuta_emulator::{self as emulator, ApiKey, Catalog, EmulatorConfig, EmulatorState, Variants};

use super::{EXIT_OK, Stop};
use crate::spec::model::RULE_TYPES;
use crate::spec::secrets::SECRET_FIELDS;

/// The emulator's defaults (an in-memory tenant on `127.0.0.1:0`, [`emulator::ADMIN_KEY`]),
/// with the lists it shares with the spec loader: the fields the loader treats as secret (masked
/// and digested by the emulator) and the rule types it accepts. Passed, never copied, so the
/// two cannot drift apart.
pub(crate) fn emulator_config() -> EmulatorConfig {
    EmulatorConfig::new(SECRET_FIELDS, RULE_TYPES)
}

/// Arguments of `immuta-gitops emulator`.
#[derive(Debug, clap::Args)]
pub struct EmulatorArgs {
    /// Address to listen on (port 0 picks a free port; the bound address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Persist the tenant in this JSON file (loaded at start, rewritten after every change).
    #[arg(long, value_name = "FILE")]
    pub data_file: Option<PathBuf>,

    /// An accepted API key: KEY (every permission) or KEY=PERM,PERM (only those). Repeatable.
    /// Without any, the built-in admin key is accepted.
    #[arg(long = "api-key", value_name = "KEY[=PERMS]")]
    pub api_keys: Vec<ApiKey>,

    /// Start with K-Anonymization masking activated.
    #[arg(long)]
    pub k_anonymization: bool,

    /// The simulated remote catalog (YAML or JSON): which tables each host and database has.
    #[arg(long, value_name = "FILE")]
    pub catalog: Option<PathBuf>,

    /// Lifetime of bearer tokens from /bim/apikey/authenticate (e.g. 1h, 30m).
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = humantime::parse_duration)]
    pub token_ttl: Duration,

    /// Play a documented variant of the tenant, DIMENSION=VALUE (repeatable), e.g.
    /// `paging=ignored-by-policies`, `purposes=flat`, `creation=synchronous`. Without any, the
    /// most realistic tenant. `--variant list` prints every dimension and value with its source.
    #[arg(long = "variant", value_name = "DIMENSION=VALUE")]
    pub variants: Vec<String>,

    /// How long data sources take to appear after a post creates them in the background.
    #[arg(long, value_name = "DURATION", default_value = "100ms", value_parser = humantime::parse_duration)]
    pub creation_delay: Duration,
}

impl EmulatorArgs {
    /// The configuration these arguments describe (reads the catalog file).
    fn config(&self) -> Result<EmulatorConfig, emulator::Error> {
        let catalog = match &self.catalog {
            Some(path) => Catalog::load(path)?,
            None => Catalog::default(),
        };
        Ok(EmulatorConfig {
            listen: self.listen,
            data_file: self.data_file.clone(),
            api_keys: self.api_keys.clone(),
            k_anonymization: self.k_anonymization,
            token_ttl: self.token_ttl,
            catalog,
            variants: Variants::parse(self.variants.iter().map(String::as_str))
                .map_err(emulator::Error::InvalidVariant)?,
            creation_delay: self.creation_delay,
            ..emulator_config()
        })
    }
}

/// Every variant dimension, its values (the default first) and their sources.
fn variant_list() -> String {
    let mut out = String::new();
    for d in Variants::dimensions() {
        out.push_str(&format!("{}:\n", d.key));
        for (i, (value, what, source)) in d.values.iter().enumerate() {
            let default = if i == 0 { " (default)" } else { "" };
            out.push_str(&format!("  {value}{default}: {what}\n      source: {source}\n"));
        }
    }
    out
}

/// Runs `immuta-gitops emulator`: serves until Ctrl-C or SIGTERM, then writes the data file.
/// Prints `immuta emulator listening on http://ADDR` (the bound address) to stderr; never prints
/// a key.
pub fn run(args: EmulatorArgs) -> anyhow::Result<ExitCode> {
    if args.variants.iter().any(|v| v == "list") {
        super::print_out(&variant_list())?;
        return Ok(ExitCode::from(EXIT_OK));
    }
    super::runtime()?.block_on(serve(args))?;
    Ok(ExitCode::from(EXIT_OK))
}

async fn serve(args: EmulatorArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    let state = EmulatorState::new(&config)?;
    let (listener, addr) = emulator::bind(config.listen).await?;
    let stop = super::stop_signal(&[Stop::Interrupt, Stop::Terminate])
        .context("cannot listen for shutdown signals")?;
    let signal = async move {
        stop.await;
    };
    eprintln!("immuta emulator listening on http://{addr}");
    if config.api_keys.is_empty() {
        eprintln!("no --api-key given: the built-in admin key has every permission");
    }
    if let Some(path) = &config.data_file {
        eprintln!("tenant persisted in {}", path.display());
    }
    let label = config.variants.label();
    if !label.is_empty() {
        eprintln!("playing the variants {label}");
    }
    emulator::serve(listener, state.clone(), signal).await?;
    Ok(state.flush().await?)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: EmulatorArgs,
    }

    #[test]
    fn the_emulator_gets_the_loaders_lists() {
        let config = emulator_config();
        assert_eq!(config.secret_fields, SECRET_FIELDS);
        assert_eq!(config.rule_types, RULE_TYPES);
        let args = Cli::parse_from(["emulator", "--listen", "127.0.0.1:0"]).args;
        let config = args.config().expect("no catalog to read");
        assert_eq!(config.secret_fields, SECRET_FIELDS);
        assert_eq!(config.rule_types, RULE_TYPES);
    }
}

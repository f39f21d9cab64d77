//! `immuta-gitops doctor`: a read-only check of a tenant before the first apply (see
//! `live::doctor`): reachable, which auth form it takes, the key's permissions (license admin
//! too), the listings' shapes, "connections" registration, clock skew. Text or JSON; exit 1
//! when something blocks apply. It never writes.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};

use super::tenant::{self, TenantArgs};
use super::validate::Report as Format;
use super::{EXIT_ERROR, EXIT_OK, print_out, runtime};
use crate::live::doctor::{self, Expectations};
use crate::secret_store::env_names;
use crate::source;
use crate::spec::{self, Kind, LoadOptions};

/// Arguments of `doctor`.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// Spec root (optional): its kinds decide which permissions block apply, and its connection
    /// keys are checked against "connections" registration.
    pub path: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    #[command(flatten)]
    pub tenant: TenantArgs,
}

/// What the specs at `path` expect of the tenant (read offline: no secret is needed).
fn expectations(path: Option<&PathBuf>) -> anyhow::Result<Expectations> {
    let Some(path) = path else { return Ok(Expectations::default()) };
    let snapshot = source::dir::read(
        path,
        &source::dir::ReadOptions { include: spec::is_snapshot_file, ..Default::default() },
    )
    .with_context(|| "nothing was checked; pass the directory that holds your spec files")?;
    let options = LoadOptions { offline: true, ..LoadOptions::with_env(env_names()) };
    let (desired, _) = spec::load(&snapshot, &options);
    let kinds: BTreeSet<Kind> = desired.objects.iter().map(|o| o.kind).collect();
    let connection_keys = desired
        .objects
        .iter()
        .filter(|o| o.kind == Kind::DataSource)
        .map(|o| o.key.clone())
        .collect();
    Ok(Expectations { kinds: Some(kinds), connection_keys })
}

/// `doctor`.
pub fn run(args: &DoctorArgs) -> anyhow::Result<ExitCode> {
    if args.tenant.url.as_deref().is_none_or(|u| u.trim().is_empty()) {
        bail!("doctor checks a tenant: pass --url (or set IMMUTA_URL) and the API key");
    }
    let expect = expectations(args.path.as_ref())?;
    let report = runtime()?.block_on(async {
        let tenant = tenant::connect(&args.tenant, None).await?;
        anyhow::Ok(doctor::doctor(&tenant.client, &expect).await)
    })?;
    let text = match args.format {
        Format::Text => report.text(),
        Format::Json => format!("{}\n", report.json()),
    };
    print_out(&text)?;
    Ok(ExitCode::from(if report.blocks() { EXIT_ERROR } else { EXIT_OK }))
}

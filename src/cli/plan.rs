//! `immuta-gitops plan`: the specs against the tenant (or, with `--base`, against another
//! revision), rendered as text, JSON or Markdown, and saved with `--out` for `apply FILE`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};

use super::progress::Phases;
use super::tenant::{self, OpenState, Tenant, TenantArgs};
use super::{EXIT_CHANGES, EXIT_ERROR, EXIT_OK, print_banner, print_out, runtime};
use crate::diagnostic::render::{Level, annotation};
use crate::diagnostic::{Diagnostic, Severity};
use crate::pipeline::{self, Inputs, Planned, Specs, saved};
use crate::plan::Plan;
use crate::plan::render::{self, TextOptions};
use crate::secret_store::env_names;
use crate::snapshot::Snapshot;
use crate::source;
use crate::spec::{self, LoadOptions};

/// Output formats of `plan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For people (coloured on a terminal; NO_COLOR respected).
    Text,
    /// Versioned JSON (see docs/plan-json.md).
    Json,
    /// Markdown for a pull-request comment.
    Markdown,
    /// The text plan, then GitHub Actions workflow annotations (`::error file=...::`) for
    /// spec diagnostics, objects the tenant refuses, destructive changes and warnings.
    Github,
}

/// `--refresh[=BOOL]` of `plan` and `apply`.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct Refresh {
    /// Ask the tenant's dry run for every object, not only changed ones: finds changes made
    /// outside immuta-gitops (on by default, as Terraform's refresh). `--refresh=false`
    /// compares with the last applied state and the tenant's listings only. A saved plan is
    /// applied with the reads it was made with.
    #[arg(
        long = "refresh",
        value_name = "BOOL",
        default_value_t = true,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub on: bool,
}

/// Arguments of `plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// Spec root: a directory of spec files.
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// Plan against the specs at this Git revision instead of the state and the tenant (for
    /// pull requests in CI: no state file, no tenant, no secrets needed).
    #[arg(long, value_name = "REV")]
    pub base: Option<String>,
    #[command(flatten)]
    pub refresh: Refresh,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Also save the plan (JSON) to FILE, for `apply FILE`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Exit 0 when there are no changes, 2 when there are, 1 on errors.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Treat spec warnings as errors.
    #[arg(long)]
    pub strict: bool,
    #[command(flatten)]
    pub tenant: TenantArgs,
}

/// The spec tree at `path`, and its specs with every diagnostic. `offline` (`plan --base`):
/// secret values are never read, so unset variables and unmounted secret files are no errors.
pub(super) fn load_specs(
    path: &Path,
    strict: bool,
    secrets_dir: &Path,
    offline: bool,
) -> anyhow::Result<(Snapshot, Specs)> {
    let snapshot = source::dir::read(
        path,
        &source::dir::ReadOptions { include: spec::is_snapshot_file, ..Default::default() },
    )
    .with_context(|| "nothing was planned; pass the directory that holds your spec files")?;
    let inputs = Inputs {
        options: LoadOptions { strict, offline, ..LoadOptions::with_env(env_names()) },
        secrets_dir: secrets_dir.to_path_buf(),
    };
    let specs = Specs::load(&snapshot, &inputs);
    Ok((snapshot, specs))
}

/// Prints diagnostics to stderr, files named from the current directory (`root` is the spec
/// root); returns whether any is an error.
pub(super) fn report(diags: &[Diagnostic], root: &Path) -> bool {
    let diags = crate::diagnostic::rebase(diags, &super::validate::shown_root(root));
    let mut err = anstream::stderr().lock();
    for d in &diags {
        let _ = writeln!(err, "{d}\n");
    }
    let errors = diags.iter().filter(|d| d.severity == Severity::Error).count();
    if errors > 0 {
        let _ =
            writeln!(err, "error: {errors} error(s) in the specs: nothing was planned or applied");
    }
    errors > 0
}

/// The state of the tenant (empty when nothing was applied: nothing is created), the targets,
/// what the tenant says, and the plan. A project naming an unknown purpose is reported like a
/// spec error.
pub(super) async fn plan_against_tenant<'a>(
    tenant: &Tenant,
    state: &'a OpenState,
    specs: &'a Specs,
    refresh: bool,
    parallelism: usize,
    root: &Path,
    progress: &Phases,
) -> anyhow::Result<Planned<'a>> {
    progress.phase("Reading the state");
    let prepared = specs.prepare(&*state.store, &tenant.label, &state.keys).await?;
    progress.phase("Reading the tenant");
    match prepared.plan_with(&tenant.client, refresh, parallelism, progress).await {
        Ok(planned) => Ok(planned),
        Err(pipeline::Error::Specs { diagnostics, .. }) => {
            progress.suspend(|| report(&diagnostics, root));
            bail!("the specs name purposes that neither the specs nor the tenant have");
        }
        Err(e) => Err(e.into()),
    }
}

/// The plan in `format` (`root`: the spec root, which `github` names files from).
pub(super) fn render(plan: &Plan, format: Format, root: &Path) -> String {
    match format {
        Format::Text => render::text(plan, &TextOptions { color: true }),
        Format::Json => render::json(plan),
        Format::Markdown => render::markdown(plan, 65_000).join("\n\n---\n\n"),
        Format::Github => render::github(plan, &super::validate::shown_root(root)),
    }
}

/// `plan`.
pub fn run(args: &PlanArgs) -> anyhow::Result<ExitCode> {
    let progress = Phases::start(args.format == Format::Text, "Loading the specs");
    let (snapshot, specs) =
        load_specs(&args.path, args.strict, &args.tenant.secrets_dir, args.base.is_some())?;

    let failed = if args.format == Format::Github {
        let root = super::validate::shown_root(&args.path);
        let diags = crate::diagnostic::rebase(&specs.diagnostics, &root);
        for d in &diags {
            let level = if d.is_error() { Level::Error } else { Level::Warning };
            let title = format!("{}[{}]", d.severity.as_str(), d.code.as_str());
            let message = match &d.hint {
                Some(hint) => format!("{}\nhint: {hint}", d.message),
                None => d.message.clone(),
            };
            print_out(&annotation(level, d.location.as_ref(), &title, &message))?;
        }
        specs.has_errors()
    } else {
        progress.suspend(|| report(&specs.diagnostics, &args.path))
    };
    if failed {
        return Ok(ExitCode::from(EXIT_ERROR));
    }
    let plan = match &args.base {
        Some(rev) => plan_offline(args, snapshot, &specs, rev)?,
        None => runtime()?.block_on(async {
            drop(snapshot);
            progress.phase("Connecting to the tenant");
            let tenant = tenant::connect(&args.tenant, None).await?;
            if let Some(banner) = tenant.banner(&args.tenant.state_dir) {
                progress.suspend(|| print_banner(&banner, args.format == Format::Text));
            }
            let state = tenant.open_state(&args.tenant, "plan").await?;
            let planned = plan_against_tenant(
                &tenant,
                &state,
                &specs,
                args.refresh.on,
                args.tenant.parallelism,
                &args.path,
                &progress,
            )
            .await?;
            anyhow::Ok(planned.plan)
        })?,
    };
    drop(progress);
    if let Some(out) = &args.out {
        saved::save(out, &plan, &args.path)?;
    }
    print_out(&render(&plan, args.format, &args.path))?;
    let code = if plan.has_errors() {
        EXIT_ERROR
    } else if args.detailed_exitcode && plan.has_changes() {
        EXIT_CHANGES
    } else {
        EXIT_OK
    };
    // The process exits next: freeing a large tree value by value would take longer than
    // planning its few changes (a tenth of a second at 10,000 objects); the OS reclaims it.
    std::mem::forget((plan, specs));
    Ok(ExitCode::from(code))
}

/// `plan --base REV`: the specs at REV play the role of the last applied state. No tenant, no
/// state file and no secret values are needed: both sides are compared with placeholders.
fn plan_offline(
    args: &PlanArgs,
    snapshot: Snapshot,
    specs: &Specs,
    rev: &str,
) -> anyhow::Result<Plan> {
    let sub = source::git::path_in_repo(&args.path)?;
    let base: Snapshot = source::git::read_revision_like(
        &args.path,
        rev,
        &sub,
        spec::is_snapshot_file,
        source::dir::DEFAULT_MAX_FILE_SIZE,
        &snapshot,
    )?;
    let offline = pipeline::plan_offline(specs, snapshot, base, rev)?;
    let base_errors = offline.base_diagnostics.iter().filter(|d| d.is_error()).count();
    if base_errors > 0 {
        let _ = writeln!(
            anstream::stderr(),
            "warning: the specs at {rev} have {base_errors} error(s); objects of the invalid documents count as new"
        );
    }
    Ok(offline.plan)
}

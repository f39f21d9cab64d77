//! `immuta-gitops plan` and `immuta-gitops apply`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use tokio_util::sync::CancellationToken;

use super::tenant::{self, Tenant, TenantArgs};
use super::{EXIT_CHANGES, EXIT_ERROR, EXIT_OK};
use crate::apply::{ObjectResult, Outcome, Progress, Status};
use crate::diagnostic::{Diagnostic, Severity};
use crate::pipeline::{self, ApplyOptions, Inputs, Overrides, Planned, Specs, saved};
use crate::plan::render::{self, TextOptions};
use crate::plan::{Action, Plan};
use crate::secret_store::env_names;
use crate::snapshot::Snapshot;
use crate::source;
use crate::spec::{self, LoadOptions};
use crate::state::file;

/// Output formats of `plan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For people (coloured on a terminal; NO_COLOR respected).
    Text,
    /// Versioned JSON (see docs/plan-json.md).
    Json,
    /// Markdown for a pull-request comment.
    Markdown,
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
    /// Ask the tenant's dry run for every object, not only changed ones (finds changes made
    /// outside immuta-gitops).
    #[arg(long)]
    pub refresh: bool,
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

/// Arguments of `apply`.
#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// Spec root, or a plan saved with `plan --out` (refused when stale).
    #[arg(default_value = ".")]
    pub target: PathBuf,
    /// Allow deletes, replaces and implicit table removals.
    #[arg(long)]
    pub allow_destroy: bool,
    /// Allow a plan that deletes every managed object, or more than maxDeletePercent of them.
    #[arg(long)]
    pub force: bool,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub auto_approve: bool,
    /// Ask the tenant's dry run for every object (as `plan --refresh`).
    #[arg(long)]
    pub refresh: bool,
    /// Treat spec warnings as errors.
    #[arg(long)]
    pub strict: bool,
    /// Seconds Immuta may take to create data sources before answering (its `wait` parameter;
    /// negative waits indefinitely), for connections without `gitops: {wait}` of their own.
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub wait: Option<i64>,
    #[command(flatten)]
    pub tenant: TenantArgs,
}

/// The spec tree at `path`, and its specs with every diagnostic. `offline` (`plan --base`):
/// secret values are never read, so unset variables and unmounted secret files are no errors.
fn load_specs(
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

/// Prints diagnostics to stderr; returns whether any is an error.
fn report(diags: &[Diagnostic]) -> bool {
    let mut err = anstream::stderr().lock();
    for d in diags {
        let _ = writeln!(err, "{d}\n");
    }
    let errors = diags.iter().filter(|d| d.severity == Severity::Error).count();
    if errors > 0 {
        let _ =
            writeln!(err, "error: {errors} error(s) in the specs: nothing was planned or applied");
    }
    errors > 0
}

/// The state of the tenant (created empty, with a fresh salt, when there is none), the targets,
/// what the tenant says, and the plan. A project naming an unknown purpose is reported like a
/// spec error.
async fn plan_against_tenant<'a>(
    tenant: &Tenant,
    specs: &'a Specs,
    refresh: bool,
    parallelism: usize,
) -> anyhow::Result<Planned<'a>> {
    let prepared = specs.prepare(&tenant.state_path, &tenant.label)?;
    match prepared.plan(&tenant.client, refresh, parallelism).await {
        Ok(planned) => Ok(planned),
        Err(pipeline::Error::Specs { diagnostics, .. }) => {
            report(&diagnostics);
            bail!("the specs name purposes that neither the specs nor the tenant have");
        }
        Err(e) => Err(e.into()),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn print_out(text: &str) -> anyhow::Result<()> {
    let mut out = anstream::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

fn render(plan: &Plan, format: Format) -> String {
    match format {
        Format::Text => render::text(plan, &TextOptions { color: true }),
        Format::Json => render::json(plan),
        Format::Markdown => render::markdown(plan, 65_000).join("\n\n---\n\n"),
    }
}

/// `plan`.
pub fn run_plan(args: &PlanArgs) -> anyhow::Result<ExitCode> {
    let (snapshot, specs) =
        load_specs(&args.path, args.strict, &args.tenant.secrets_dir, args.base.is_some())?;
    if report(&specs.diagnostics) {
        return Ok(ExitCode::from(EXIT_ERROR));
    }
    let plan = match &args.base {
        Some(rev) => plan_offline(args, &snapshot, &specs, rev)?,
        None => runtime()?.block_on(async {
            let tenant = tenant::connect(&args.tenant, None).await?;
            if let Some(banner) = tenant.banner(&args.tenant.state_dir) {
                banner_line(&banner, args.format);
            }
            let planned =
                plan_against_tenant(&tenant, &specs, args.refresh, args.tenant.parallelism).await?;
            anyhow::Ok(planned.plan)
        })?,
    };
    if let Some(out) = &args.out {
        saved::save(out, &plan, &args.path)?;
    }
    print_out(&render(&plan, args.format))?;
    let code = if !plan.errors.is_empty() {
        EXIT_ERROR
    } else if args.detailed_exitcode && plan.has_changes() {
        EXIT_CHANGES
    } else {
        EXIT_OK
    };
    // The process exits next: freeing a large tree value by value would take longer than
    // planning its few changes (a tenth of a second at 10,000 objects); the OS reclaims it.
    std::mem::forget((plan, specs, snapshot));
    Ok(ExitCode::from(code))
}

fn banner_line(banner: &str, format: Format) {
    if format == Format::Text {
        let _ = writeln!(anstream::stdout(), "{banner}\n");
    } else {
        let _ = writeln!(anstream::stderr(), "{banner}");
    }
}

/// `plan --base REV`: the specs at REV play the role of the last applied state. No tenant, no
/// state file and no secret values are needed: both sides are compared with placeholders.
fn plan_offline(
    args: &PlanArgs,
    snapshot: &Snapshot,
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
        snapshot,
    )?;
    let offline = pipeline::plan_offline(specs, snapshot, &base, rev)?;
    let base_errors = offline.base_diagnostics.iter().filter(|d| d.is_error()).count();
    if base_errors > 0 {
        let _ = writeln!(
            anstream::stderr(),
            "warning: the specs at {rev} have {base_errors} error(s); objects of the invalid documents count as new"
        );
    }
    Ok(offline.plan)
}

/// `apply`.
pub fn run_apply(args: &ApplyArgs) -> anyhow::Result<ExitCode> {
    let saved = saved::read(&args.target)?;
    let spec_root = saved.as_ref().map_or(args.target.clone(), |s| s.spec_root.clone());
    if let Some(saved) = &saved {
        saved.ensure_online()?;
    }
    let (_, specs) = load_specs(&spec_root, args.strict, &args.tenant.secrets_dir, false)?;
    if report(&specs.diagnostics) {
        return Ok(ExitCode::from(EXIT_ERROR));
    }
    runtime()?.block_on(async {
        let tenant = tenant::connect(&args.tenant, None).await?;
        if let Some(banner) = tenant.banner(&args.tenant.state_dir) {
            banner_line(&banner, Format::Text);
        }
        if let Some(saved) = &saved {
            saved.ensure_for(&tenant.label)?;
        }
        let lock = file::Lock::acquire(&tenant.state_path)?;
        let refresh = saved.as_ref().map_or(args.refresh, |s| s.refresh(args.refresh));
        let planned =
            plan_against_tenant(&tenant, &specs, refresh, args.tenant.parallelism).await?;
        if let Some(saved) = &saved {
            saved.ensure_fresh(&planned.plan.fingerprint)?;
        }
        let plan = &planned.plan;
        print_out(&render(plan, Format::Text))?;
        let overrides = Overrides { allow_destroy: args.allow_destroy, force: args.force };
        let refusals = planned.refusals(overrides);
        if !refusals.is_empty() {
            let mut err = anstream::stderr().lock();
            for r in &refusals {
                let _ =
                    writeln!(err, "error: refusing to apply: {}\n  hint: {}", r.message, r.hint);
            }
            return Ok(ExitCode::from(EXIT_ERROR));
        }
        if !plan.has_changes() {
            return Ok(ExitCode::from(EXIT_OK));
        }
        if !args.auto_approve && saved.is_none() && !confirm(&tenant.label)? {
            let _ = writeln!(anstream::stderr(), "Apply cancelled: nothing was changed.");
            return Ok(ExitCode::from(EXIT_ERROR));
        }
        let cancel = CancellationToken::new();
        let on_signal = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = writeln!(
                    anstream::stderr(),
                    "\nInterrupted: finishing the objects in flight, then stopping."
                );
                on_signal.cancel();
            }
        });
        let progress = Bar::new(plan.changes.iter().filter(|c| c.action != Action::NoOp).count());
        let options =
            ApplyOptions { parallelism: args.tenant.parallelism, cancel, wait: args.wait };
        let outcome = planned.apply(overrides, &tenant.client, &options, &progress).await?;
        progress.finish();
        drop(lock);
        print_out(&render_outcome(&outcome))?;
        Ok(ExitCode::from(if outcome.is_success() { EXIT_OK } else { EXIT_ERROR }))
    })
}

fn confirm(tenant: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!(
            "refusing to apply without confirmation: stdin is not a terminal; pass --auto-approve"
        );
    }
    let mut err = anstream::stderr().lock();
    write!(err, "\nApply these changes to {tenant}? Only 'yes' is accepted: ")?;
    err.flush()?;
    drop(err);
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim() == "yes")
}

/// A progress bar on a terminal; nothing otherwise.
struct Bar(Option<indicatif::ProgressBar>);

impl Bar {
    fn new(total: usize) -> Bar {
        if total < 2 || !std::io::stderr().is_terminal() {
            return Bar(None);
        }
        let bar = indicatif::ProgressBar::new(total as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}") {
            bar.set_style(style);
        }
        Bar(Some(bar))
    }

    fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

impl Progress for Bar {
    fn done(&self, result: &ObjectResult) {
        if let Some(b) = &self.0
            && result.action != Action::NoOp
        {
            b.set_message(result.id.to_string());
            b.inc(1);
        }
    }
}

/// The per-object results of an apply.
pub fn render_outcome(outcome: &Outcome) -> String {
    use owo_colors::OwoColorize;
    let mut out = String::from("\n");
    let (mut done, mut unchanged) = (0, 0);
    for r in &outcome.results {
        let (word, line) = match &r.status {
            Status::Unchanged => {
                unchanged += 1;
                continue;
            }
            Status::Applied => ("applied".green().to_string(), String::new()),
            Status::Adopted => ("adopted".green().to_string(), String::new()),
            Status::Deleted => ("deleted".green().to_string(), String::new()),
            Status::Forgotten => ("no longer managed".green().to_string(), String::new()),
            Status::Recorded => ("recorded in the state".green().to_string(), String::new()),
            Status::Failed(m) => ("FAILED".red().bold().to_string(), format!(": {m}")),
            Status::Skipped(m) => ("skipped".yellow().to_string(), format!(": {m}")),
        };
        if matches!(
            r.status,
            Status::Applied
                | Status::Adopted
                | Status::Deleted
                | Status::Forgotten
                | Status::Recorded
        ) {
            done += 1;
        }
        out.push_str(&format!(
            "  {} {} {word}{line} ({} ms)\n",
            r.action.symbol(),
            r.id,
            r.took.as_millis()
        ));
    }
    let failed = outcome.failed();
    let skipped = outcome.skipped();
    let summary = format!(
        "Apply {}: {done} done, {failed} failed, {skipped} skipped, {unchanged} unchanged.",
        if outcome.is_success() { "complete" } else { "incomplete" }
    );
    if outcome.is_success() {
        out.push_str(&format!("\n{}\n", summary.green().bold()));
    } else {
        out.push_str(&format!("\n{}\n", summary.red().bold()));
        out.push_str("Nothing that succeeded is lost: run the same command again to finish.\n");
    }
    out
}

//! `immuta-gitops apply`: plan against the tenant as `plan` does (or check a plan saved with
//! `plan --out` against a new one), refuse what is unsafe, ask, then carry the plan out with a
//! progress bar; Ctrl-C finishes the objects in flight and stops.

use std::collections::HashSet;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use tokio_util::sync::CancellationToken;

use super::plan::{Format, load_specs, plan_against_tenant, render, report};
use super::progress::{self, Phases};
use super::tenant::{self, TenantArgs};
use super::{EXIT_ERROR, EXIT_OK, Stop, print_banner, print_out, runtime, stop_signal};
use crate::apply::{self, ObjectResult, Progress};
use crate::pipeline::{ApplyOptions, Overrides, saved};
use crate::plan::{Action, ObjectId};
use crate::state::store;

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
    #[command(flatten)]
    pub refresh: super::plan::Refresh,
    /// Treat spec warnings as errors.
    #[arg(long)]
    pub strict: bool,
    /// How long to wait for the state's lock while another apply (or the reconciler) holds it;
    /// `0s` refuses at once, naming the holder.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub lock_timeout: std::time::Duration,
    /// Seconds Immuta may take to create data sources before answering (its `wait` parameter;
    /// negative waits indefinitely), for connections without `gitops: {wait}` of their own.
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub wait: Option<i64>,
    /// How long projects wait for the data sources they name to be created: Immuta creates
    /// them in the background (e.g. 10m, 90s).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = humantime::parse_duration)]
    pub creation_timeout: std::time::Duration,
    #[command(flatten)]
    pub tenant: TenantArgs,
}

/// `apply`.
pub fn run(args: &ApplyArgs) -> anyhow::Result<ExitCode> {
    let saved = saved::read(&args.target)?;
    let spec_root = saved.as_ref().map_or(args.target.clone(), |s| s.spec_root.clone());
    if let Some(saved) = &saved {
        saved.ensure_online()?;
    }
    let progress = Phases::start(true, "Loading the specs");
    let (_, specs) = load_specs(&spec_root, args.strict, &args.tenant.secrets_dir, false)?;
    if progress.suspend(|| report(&specs.diagnostics, &spec_root)) {
        return Ok(ExitCode::from(EXIT_ERROR));
    }
    runtime()?.block_on(async {
        progress.phase("Connecting to the tenant");
        let tenant = tenant::connect(&args.tenant, None).await?;
        if let Some(banner) = tenant.banner(&args.tenant.state_dir) {
            progress.suspend(|| print_banner(&banner, true));
        }
        if let Some(saved) = &saved {
            saved.ensure_for(&tenant.label)?;
        }
        progress.phase("Taking the state's lock");
        let state = tenant.open_state(&args.tenant, "apply").await?;
        let lock = store::lock_within(&*state.store, args.lock_timeout, LOCK_POLL).await?;
        // A saved plan is checked against what it was made from, with the same reads.
        let refresh = saved.as_ref().map_or(args.refresh.on, |s| s.refresh(false));
        let planned = plan_against_tenant(
            &tenant,
            &state,
            &specs,
            refresh,
            args.tenant.parallelism,
            &spec_root,
            &progress,
        )
        .await?;
        progress.finish();
        if let Some(saved) = &saved {
            saved.ensure_fresh(&planned.plan.fingerprint)?;
        }
        let plan = &planned.plan;
        print_out(&render(plan, Format::Text, &spec_root))?;
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
        if !plan.has_changes()
            && !planned.prepared.needs_recording()
            && planned.settings_to_record(overrides).is_none()
        {
            return Ok(ExitCode::from(EXIT_OK));
        }
        if plan.has_changes() && !args.auto_approve && saved.is_none() && !confirm(&tenant.label)? {
            let _ = writeln!(anstream::stderr(), "Apply cancelled: nothing was changed.");
            return Ok(ExitCode::from(EXIT_ERROR));
        }
        let cancel = CancellationToken::new();
        let interrupted = stop_signal(&[Stop::Interrupt])?;
        let on_signal = cancel.clone();
        tokio::spawn(async move {
            interrupted.await;
            let _ = writeln!(
                anstream::stderr(),
                "\nInterrupted: finishing the objects in flight, then stopping."
            );
            on_signal.cancel();
        });
        print_out("\n")?;
        let progress = Bar::new(plan.changes.iter().filter(|c| c.action != Action::NoOp).count());
        let options = ApplyOptions {
            parallelism: args.tenant.parallelism,
            cancel,
            wait: args.wait,
            creation_timeout: Some(args.creation_timeout),
        };
        let outcome = planned.apply(overrides, &tenant.client, &options, &progress).await;
        progress.finish();
        if lock.lost().is_cancelled() {
            bail!(
                "the state's lock was lost during the apply (the database connection broke): \
                 what was recorded is kept; run the same command again to finish"
            );
        }
        let outcome = outcome?;
        drop(lock);
        // The per-object results were printed as they finished (`Bar::done`); the rest now.
        print_out(&progress.unprinted(&outcome))?;
        print_out(&apply::render::summary(&outcome))?;
        Ok(ExitCode::from(if outcome.is_success() { EXIT_OK } else { EXIT_ERROR }))
    })
}

/// How often `apply --lock-timeout` tries the lock again.
const LOCK_POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// Asks on the terminal; only `yes` goes ahead.
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

/// The apply's progress: each object's result printed as it finishes (on stdout), and on a
/// terminal a bar with counts, elapsed time and ETA (on stderr) below them.
struct Bar(Option<indicatif::ProgressBar>, std::sync::Mutex<HashSet<ObjectId>>);

impl Bar {
    fn new(total: usize) -> Bar {
        if total < 2 || !progress::enabled() {
            return Bar(None, Default::default());
        }
        let bar = indicatif::ProgressBar::new(total as u64);
        bar.set_style(progress::bar_style("Applying"));
        bar.enable_steady_tick(std::time::Duration::from_millis(250));
        Bar(Some(bar), Default::default())
    }

    /// The results that were not streamed (objects skipped without starting, when a run is
    /// cancelled), in plan order.
    fn unprinted(&self, outcome: &apply::Outcome) -> String {
        let printed = self.1.lock().map(|p| p.clone()).unwrap_or_default();
        outcome
            .results
            .iter()
            .filter(|r| !printed.contains(&r.id))
            .filter_map(apply::render::result_line)
            .collect()
    }

    fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }

    /// Prints `text` on stdout, above the bar.
    fn print(&self, text: &str) {
        let print = || {
            let mut out = anstream::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        };
        match &self.0 {
            Some(b) => b.suspend(print),
            None => print(),
        }
    }
}

impl Progress for Bar {
    fn waiting(&self, message: &str) {
        match &self.0 {
            Some(b) => b.suspend(|| {
                let _ = writeln!(anstream::stderr(), "{message}");
            }),
            None => {
                let _ = writeln!(anstream::stderr(), "{message}");
            }
        }
    }

    fn done(&self, result: &ObjectResult) {
        if let Some(line) = apply::render::result_line(result) {
            self.print(&line);
        }
        if let Ok(mut printed) = self.1.lock() {
            printed.insert(result.id.clone());
        }
        if let Some(b) = &self.0
            && result.action != Action::NoOp
        {
            b.set_message(result.id.to_string());
            b.inc(1);
        }
    }
}

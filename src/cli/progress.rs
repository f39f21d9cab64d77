//! Progress on a terminal, on stderr: the phases of a plan (loading the specs, reading the
//! state and the tenant, dry runs `N/M` with elapsed time and ETA) and the apply's bar. Drawn
//! only when stderr is a terminal and logs are text ([`allow`]); never in JSON, never in a
//! pipe or a CI log, where it would only be noise.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::pipeline::PlanProgress;

/// Whether progress may be drawn at all (`--log-format text`); set once by `cli::main`.
static ALLOWED: AtomicBool = AtomicBool::new(true);

/// Allows or forbids progress for this process (JSON logs keep stderr one object per line).
pub fn allow(allowed: bool) {
    ALLOWED.store(allowed, Ordering::Relaxed);
}

/// Whether progress is drawn: allowed, and stderr is a terminal.
pub fn enabled() -> bool {
    ALLOWED.load(Ordering::Relaxed) && std::io::IsTerminal::is_terminal(&std::io::stderr())
}

/// The style of a bar with a label, counts, elapsed time and ETA.
pub fn bar_style(label: &str) -> ProgressStyle {
    let template = format!("{label} {{bar:30}} {{pos}}/{{len}} [{{elapsed}}, ETA {{eta}}] {{msg}}");
    ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// The phases of a plan on a spinner, then the dry runs on a bar; cleared when dropped.
pub struct Phases(Option<ProgressBar>);

impl Phases {
    /// A spinner showing `first`, when [`enabled`] and `wanted` (the output is for people).
    pub fn start(wanted: bool, first: &str) -> Phases {
        if !wanted || !enabled() {
            return Phases(None);
        }
        let spinner = ProgressBar::new_spinner();
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} [{elapsed}]") {
            spinner.set_style(style);
        }
        spinner.set_message(first.to_owned());
        spinner.enable_steady_tick(Duration::from_millis(120));
        Phases(Some(spinner))
    }

    /// Runs `f` (which prints) with the spinner cleared, then draws it again.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.0 {
            Some(p) => p.suspend(f),
            None => f(),
        }
    }

    /// Clears the spinner (the plan is printed next).
    pub fn finish(&self) {
        if let Some(p) = &self.0 {
            p.finish_and_clear();
        }
    }

    /// The next phase.
    pub fn phase(&self, message: &str) {
        if let Some(p) = &self.0 {
            p.set_message(message.to_owned());
        }
    }
}

impl Drop for Phases {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            p.finish_and_clear();
        }
    }
}

impl PlanProgress for Phases {
    fn reading(&self, dry_runs: usize) {
        let Some(p) = &self.0 else { return };
        if dry_runs == 0 {
            p.set_message("Reading the tenant (listings)");
            return;
        }
        p.set_length(dry_runs as u64);
        p.set_position(0);
        p.set_style(bar_style("Reading the tenant: dry runs"));
        p.set_message(String::new());
    }

    fn dry_run_answered(&self) {
        if let Some(p) = &self.0 {
            p.inc(1);
        }
    }
}

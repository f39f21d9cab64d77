//! immuta-gitops: a GitOps reconciler for the Immuta data-governance platform.
//!
//! Data teams keep Immuta data sources, global policies, projects, purposes and license keys as
//! YAML (or JSON) in a Git repository. This crate loads and validates those specs, plans the
//! changes against a tenant, applies them through Immuta's V2 API, and keeps a tenant in sync as
//! a long-lived reconciler.
//!
//! # Layout
//!
//! The pure core (no I/O, no clock):
//!
//! - [`snapshot`]: an immutable set of spec files at one revision (the seam between sources and
//!   everything else).
//! - [`diagnostic`]: what is wrong with the input, where, and how to fix it; `validate`'s
//!   reports.
//! - [`spec`]: pure loading and validation of spec files into the desired state.
//! - [`plan`]: pure planning (desired × state × observed tenant -> plan), safety refusals and
//!   rendering.
//! - [`parallel`]: CPU parallelism (scoped threads) for loading and planning large trees.
//!
//! The edges:
//!
//! - [`source`]: produces snapshots from a local directory, a local Git repository
//!   (`plan --base`) or a followed remote repository or watched directory (the daemon).
//! - [`secret_store`]: where `${VAR}` and `${file:PATH}` values come from at send time.
//! - [`state`]: the inventory of managed objects (last applied payloads, ids), journaled.
//! - [`live`]: the Immuta client: reads the tenant (inventories, dry runs) and writes objects.
//! - [`apply`]: carries out a plan in order, recording every success in the state.
//! - [`pipeline`]: the one reconcile operation (load -> prepare -> plan -> apply) that
//!   `validate`, `plan`, `apply`, the daemon and the benchmark share, and the saved-plan file.
//! - [`daemon`]: the long-lived reconciler: one loop over a closed set of triggers, typed
//!   outcomes, the self-heal backoff.
//! - [`server`]: the reconciler's HTTP server (webhooks, health, metrics, `/status`); it only
//!   sends triggers and reads shared state, and never calls Immuta. It runs beside the daemon,
//!   which does not know it.
//! - [`redact`]: the one redaction layer every output passes through (secrets and credentials
//!   in every encoding).
//! - [`metrics`]: the Prometheus registry the daemon, the client and the server record into.
//!
//! The command line is the binary's (`src/main.rs`, `src/cli/`): the only code that uses
//! `anyhow`, prints, and picks exit codes.
//!
//! `ARCHITECTURE.md` at the repository root has the code map and the invariants.

#![deny(clippy::all)]

pub mod apply;
pub mod daemon;
pub mod diagnostic;
pub mod live;
pub mod metrics;
pub mod parallel;
pub mod pipeline;
pub mod plan;
pub mod redact;
pub mod secret_store;
pub mod server;
pub mod snapshot;
pub mod source;
pub mod spec;
pub mod state;

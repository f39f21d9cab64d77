//! immuta-gitops: a GitOps reconciler for the Immuta data-governance platform.
//!
//! Data teams keep Immuta data sources, global policies, projects, purposes and license keys as
//! YAML (or JSON) in a Git repository. This crate loads and validates those specs, plans the
//! changes against a tenant, applies them through Immuta's V2 API, and keeps a tenant in sync as
//! a long-lived reconciler.
//!
//! # Layout
//!
//! - [`snapshot`]: an immutable set of spec files at one revision (the seam between sources and
//!   everything else).
//! - [`diagnostic`]: what is wrong with the input, where, and how to fix it.
//! - [`spec`]: pure loading and validation of spec files into the desired state.
//! - [`source`]: produces snapshots from a local directory (and, later, Git).
//! - [`secret_store`]: where `${VAR}` and `${file:PATH}` values come from at send time.
//! - [`state`]: the inventory of managed objects (last applied payloads, ids).
//! - [`plan`]: pure planning (desired × state × observed tenant -> plan) and rendering.
//! - [`server`]: the reconciler's HTTP server (webhooks, health, metrics, `/status`); it only
//!   sends triggers and reads shared state, and never calls Immuta.
//! - [`cli`]: the command-line edge; the only place (with `main`) that uses `anyhow`.
//!
//! `ARCHITECTURE.md` at the repository root has the code map and the invariants.

#![deny(clippy::all)]

pub mod apply;
pub mod cli;
pub mod daemon;
pub mod diagnostic;
pub mod live;
pub mod parallel;
pub mod pipeline;
pub mod plan;
pub mod secret_store;
pub mod server;
pub mod snapshot;
pub mod source;
pub mod spec;
pub mod state;

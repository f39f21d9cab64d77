//! The integration tests: one binary (one link step), one module per area.
//!
//! Tests drive the real binary (`support::bin`) or the library, against temporary spec trees,
//! the in-process emulator on `127.0.0.1:0`, and local Git repositories. Nothing here touches
//! the network beyond loopback.

mod support;

/// The invariants of ARCHITECTURE.md that a grep can check.
mod architecture;

/// The Immuta emulator, driven over real HTTP on 127.0.0.1: V2 full-replace semantics, V1
/// reads, licenses, auth, test controls, persistence and the `emulator` subcommand.
mod emulator;

/// Sources: the remote Git source over `file://`, `git://` (`git daemon`) and smart HTTP (`git
/// http-backend`) on 127.0.0.1 (depth-1 fetches, pins, force-pushes, corruption, timeouts,
/// rejected credentials) and the directory watcher.
mod source;

/// `validate` and `schema` through the real binary; the spec format end to end.
mod validate;

/// The command line's conventions: exit codes of usage errors, `version` and `--version`,
/// completions, the manual page, Terraform-style `-flag` spellings.
mod cli;

/// The Kubernetes manifests (docs/kubernetes.md, deploy/): structure and Pod Security
/// "restricted".
mod manifests;

/// The reconciler's HTTP server over real HTTP on 127.0.0.1: webhook authentication and
/// nudges (read from the trigger channel), health, readiness, `/status` and `/metrics`.
mod server;

/// The reconciler end to end: `run` against a Git repository on `git daemon` and a watched
/// directory, with the emulator.
mod daemon;

/// The state backends behind one `Store` interface: one suite run against the file and a real
/// PostgreSQL; locks, torn records, crashes, lost connections, migrations.
mod state;

/// PostgreSQL state end to end through the binary: CI jobs on fresh runners, concurrent
/// applies, the database going away, two `run` replicas and a killed leader, `state` commands,
/// read-only commands that write nothing, and salted digests migrated.
mod shared_state;

/// Secret hygiene: canaries in every secret-bearing field, scanned for in every output.
mod secrets;

/// A tenant that misbehaves (issue 12): echoes of the request and the `Authorization` header in
/// every encoding, redirects to a login page, HTML, empty and odd answers, lost answers.
mod hostile_tenant;

/// Access impact: the scenario suite (`tests/fixtures/impact/`, pairs of spec trees and the
/// impact each must report) and `specs-example` edited like a pull request, planned with
/// `plan --base` in text, JSON and Markdown through the real binary.
mod impact;

/// `plan` and `apply` end to end against the emulator (and the sandbox): `specs-example`,
/// every implicit effect, deletes and their guards, drift, adoption, saved plans, a killed
/// apply, secrets, and a property test of random edit sequences.
mod apply;

/// Fault injection (429, 5xx bursts, timeouts, dropped connections, expired tokens, 403/400/500)
/// crossed with plan, create, update and delete: exit codes, messages, retries, convergence;
/// failed V1 listings and token exchanges.
mod faults;

/// The REST client against the emulator: the token exchange's retries and observer,
/// `Retry-After` waits and their cap, and V1 listings paged to their count (also through a
/// proxy that caps pages below the client's size).
mod client;

/// `doctor` against the emulator (default and variants) and a closed port: the report, exit
/// codes, JSON, and nothing written.
mod doctor;

/// `license status` against the emulator and the sandbox: seats, active users, expiry and the
/// warnings.
mod license;

/// The hostile-input corpus (`tests/fixtures/hostile/`, plus huge, binary and symlinked trees
/// generated at test time) through `validate` and `apply`: each input's exact diagnostic, no
/// panic, bounded time and memory, nothing written to the tenant.
mod hostile;

/// Issue 12's deletes, inputs and servers against a world that misbehaves: a connection cut to
/// one table, a lying listing, raised repository settings, bidirectional controls, an oversized
/// tree, 1,000 idle connections, slow clients, foreign Hosts, an empty webhook secret and web
/// pages driving the emulator.
mod hostile_world;

/// A new user's first hour (issue 13): the sandbox only when nothing else was meant, one clear
/// error for an unreachable tenant, `validate --offline`, clickable paths and `--format
/// github`, the state directory's own `.gitignore`.
mod first_hour;

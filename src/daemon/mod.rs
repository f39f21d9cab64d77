//! The long-lived reconciler: one loop over a closed set of triggers.
//!
//! - [`trigger`]: everything that can wake the loop.
//! - [`status`]: what the loop reports (served at `/status` and `/readyz`).

pub mod status;
pub mod trigger;

pub use self::status::{ReconcileRecord, Status, StatusHandle};
pub use self::trigger::Trigger;

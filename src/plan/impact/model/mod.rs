//! The access model of one side of a plan (the last applied specs, or the desired ones): which
//! tables exist with which tags, what each policy says, which projects reach what; and, per
//! table profile, who is masked, restricted and may subscribe.
//!
//! Tables are grouped by **profile**: everything a policy's circumstances can look at (table
//! tags, column tags, column names, owners, domain). Two tables with the same profile get the
//! same policies, so the model is computed once per profile (and per **column class**, a
//! profile plus a column's own tags), not once per table: a 10,000-object tree has tens of
//! thousands of tables but few distinct profiles. Profiles are interned across both sides
//! ([`Interner`]), so an unchanged table has the same profile before and after.
//!
//! - `tables.rs`: tables, their profiles and column classes ([`Interner`]);
//! - `policy.rs`: policies and projects as the model reads them;
//! - `world.rs`: one side ([`World`]), whether a policy applies to a profile, and what
//!   applies to each profile ([`ProfileModel`]).

mod policy;
mod tables;
mod world;

use serde_json::Value;

pub use self::policy::*;
pub use self::tables::*;
pub use self::world::*;

/// `v[key]`, scanning a small object instead of hashing the key: spec objects have a handful
/// of fields, and a large tree has tens of thousands of them (serde_json's maps hash with
/// SipHash).
fn get<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
    match v {
        Value::Object(m) if m.len() <= 8 => m.iter().find(|(k, _)| *k == key).map(|(_, v)| v),
        other => other.get(key),
    }
}

fn strs(v: Option<&Value>) -> impl Iterator<Item = &str> {
    v.and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str)
}

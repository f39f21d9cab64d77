//! Test fixtures shared by the planner's and the renderers' tests: specs loaded through the real
//! loader, a secret source from a map, and targets with a fixed salt.

use std::collections::HashMap;

use super::{Target, comparable};
use crate::snapshot::Snapshot;
use crate::spec::secrets::SecretSource;
use crate::spec::{self, Desired, LoadOptions};

/// The salt of every test state.
pub(crate) const SALT: &str = "test-salt";

/// Loads spec files (with `PW` and `LIC` set); any error diagnostic fails the test.
pub(crate) fn load(files: &[(&str, &str)]) -> Desired {
    let (desired, diags) = spec::load(
        &Snapshot::from_texts(files.iter().copied()),
        &LoadOptions::with_env(["PW".into(), "LIC".into()]),
    );
    assert!(diags.iter().all(|d| !d.is_error()), "{diags:#?}");
    desired
}

/// Environment variables from a map; no secret files.
pub(crate) struct Env(pub(crate) HashMap<&'static str, &'static str>);

impl SecretSource for Env {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).map(|s| s.to_string())
    }
    fn file(&self, _: &str) -> Result<String, String> {
        Err("no files".into())
    }
}

/// The targets of every object of `desired`, secrets filled in from `source` when given.
pub(crate) fn targets<'a>(
    desired: &'a Desired,
    source: Option<&dyn SecretSource>,
) -> Vec<Target<'a>> {
    desired.objects.iter().map(|o| Target::new(o, comparable(o, source, SALT).unwrap())).collect()
}

//! The first stage: the specs of a snapshot ([`Specs::load`]), then everything a plan is made
//! from ([`Specs::prepare`]): valid specs, the state, and the comparable targets.

use std::path::{Path, PathBuf};

use super::{Error, Inputs, Result};
use crate::diagnostic::{Diagnostic, Severity, render};
use crate::plan::{self, Target};
use crate::secret_store::{self, ProcessSecrets};
use crate::snapshot::Snapshot;
use crate::spec::secrets::SecretSource;
use crate::spec::{self, Desired, LoadOptions};
use crate::state::{State, file};

/// The specs of a snapshot, every diagnostic, and where their secrets come from.
#[derive(Debug)]
pub struct Specs {
    /// The desired objects and the repository settings.
    pub desired: Desired,
    /// Every diagnostic (sorted), secret files that cannot be read included.
    pub diagnostics: Vec<Diagnostic>,
    /// The environment, the secrets directory and the env files the settings name (the
    /// environment wins). One per load, so a rotated secret file is read afresh next time.
    pub secrets: ProcessSecrets,
    /// How the specs were loaded (the offline plan loads its base the same way).
    pub options: LoadOptions,
}

impl Specs {
    /// Loads the specs of `snapshot` and checks that every `${file:...}` can be read (unless the
    /// load is offline: no secret value is ever read then).
    pub fn load(snapshot: &Snapshot, inputs: &Inputs) -> Specs {
        let (desired, mut diagnostics) = spec::load(snapshot, &inputs.options);
        let secrets =
            ProcessSecrets::new(&inputs.secrets_dir).with_defaults(desired.env_defaults.clone());
        if !inputs.options.offline {
            diagnostics.extend(secret_store::check_files(&desired, &secrets));
            crate::diagnostic::sort(&mut diagnostics);
        }
        Specs { desired, diagnostics, secrets, options: inputs.options.clone() }
    }

    /// The tree as `validate`'s reports describe it ([`render::Tree`]), with `root` as given.
    pub fn tree<'a>(&'a self, root: &'a str) -> render::Tree<'a> {
        render::Tree {
            root,
            revision: &self.desired.revision,
            files: self.desired.files,
            objects: self
                .desired
                .counts()
                .into_iter()
                .map(|(kind, count)| render::Count {
                    key: kind.as_str(),
                    noun: kind.noun(),
                    plural: kind.plural(),
                    count,
                })
                .collect(),
        }
    }

    /// Whether any diagnostic is an error (nothing can be planned then).
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// Fails with [`Error::Specs`] when any diagnostic is an error.
    pub fn require_valid(&self) -> Result<()> {
        require_valid(&self.diagnostics)
    }

    /// Valid specs, the state of `tenant` at `state_path` (created empty, with a fresh salt,
    /// when missing), and the comparable targets (secrets filled in and digested with the
    /// state's salt). Fails on invalid specs: a spec error is never planned around.
    pub fn prepare(&self, state_path: &Path, tenant: &str) -> Result<Prepared<'_>> {
        self.require_valid()?;
        let state = state_for(state_path, tenant)?;
        let targets = targets(&self.desired, Some(&self.secrets), &state.salt, Some(&state))?;
        Ok(Prepared {
            specs: self,
            state,
            targets,
            tenant: tenant.to_owned(),
            state_path: state_path.to_path_buf(),
        })
    }
}

/// What a plan against a tenant is made from.
#[derive(Debug)]
pub struct Prepared<'a> {
    /// The (valid) specs.
    pub specs: &'a Specs,
    /// The state as it was read.
    pub state: State,
    /// One comparable target per desired object.
    pub targets: Vec<Target<'a>>,
    /// The tenant label (`sandbox` or the URL), recorded in the state and the plan.
    pub tenant: String,
    /// Where the state lives (`apply` records progress there).
    pub state_path: PathBuf,
}

impl Prepared<'_> {
    /// The desired objects and the repository settings.
    pub fn desired(&self) -> &Desired {
        &self.specs.desired
    }
}

/// Fails with [`Error::Specs`] when any diagnostic is an error.
pub(super) fn require_valid(diags: &[Diagnostic]) -> Result<()> {
    let errors: Vec<&Diagnostic> = diags.iter().filter(|d| d.severity == Severity::Error).collect();
    match errors.first() {
        None => Ok(()),
        Some(first) => Err(Error::Specs {
            errors: errors.len(),
            first: first.to_string().lines().next().unwrap_or_default().to_owned(),
            diagnostics: diags.to_vec(),
        }),
    }
}

/// The comparable targets of the desired objects (secrets filled in from `secrets` and
/// digested, or compared as written without one).
///
/// A target whose payload is the one `state` recorded (the same digest: the usual case) shares
/// the state's copy, and its own is dropped as soon as it is digested: a tree of 10,000
/// unchanged objects is held once, not twice.
pub(super) fn targets<'a>(
    desired: &'a Desired,
    secrets: Option<&dyn SecretSource>,
    salt: &str,
    state: Option<&State>,
) -> Result<Vec<Target<'a>>> {
    crate::parallel::map(&desired.objects, 32, |o| {
        let comparable = plan::comparable(o, secrets, salt).map_err(|source| Error::Secret {
            object: format!("{} ({})", o.label(), o.location),
            source,
        })?;
        let mut target = Target::new(o, comparable);
        if let Some(entry) = state.and_then(|s| s.get(o.kind, &o.key))
            && entry.digest == target.digest
        {
            target.comparable = std::sync::Arc::clone(&entry.payload);
        }
        Ok(target)
    })
    .into_iter()
    .collect()
}

/// The state of `tenant` at `path`; created empty (with a fresh random salt) when missing, so
/// that a saved plan and its apply digest secrets with the same salt.
fn state_for(path: &Path, tenant: &str) -> Result<State> {
    match file::load(path)? {
        Some(state) if state.tenant != tenant => Err(Error::TenantMismatch {
            path: path.display().to_string(),
            found: state.tenant,
            expected: tenant.to_owned(),
        }),
        Some(state) => Ok(state),
        None => {
            let bytes: [u8; 16] = rand::random();
            let state = State::new(tenant, hex::encode(bytes));
            file::save(path, &state)?;
            Ok(state)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(dir: &Path) -> Inputs {
        Inputs { options: LoadOptions::default(), secrets_dir: dir.to_path_buf() }
    }

    /// The specs of one file `a.yaml`, with secrets read from `dir`.
    fn one_file(text: &str, dir: &Path) -> Specs {
        Specs::load(&Snapshot::from_texts([("a.yaml", text.to_owned())]), &inputs(dir))
    }

    #[test]
    fn invalid_specs_are_never_prepared() {
        let dir = tempfile::tempdir().unwrap();
        let specs = one_file("[1, 2\n", dir.path());
        assert!(specs.has_errors());
        let err = specs.prepare(&dir.path().join("state.json"), "t").unwrap_err();
        assert!(matches!(err, Error::Specs { errors: 1, .. }), "{err}");
        assert!(!dir.path().join("state.json").exists(), "no state is created for invalid specs");
    }

    #[test]
    fn a_state_of_another_tenant_is_refused_and_a_missing_one_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let specs = one_file("name: Research\n", dir.path());
        let path = dir.path().join("state.json");
        let prepared = specs.prepare(&path, "one").unwrap();
        assert_eq!(prepared.targets.len(), 1);
        assert_eq!(prepared.state.tenant, "one");
        assert!(path.exists());
        let err = specs.prepare(&path, "two").unwrap_err();
        assert!(matches!(err, Error::TenantMismatch { .. }), "{err}");
    }

    #[test]
    fn an_unreadable_secret_file_is_a_diagnostic_unless_offline() {
        let dir = tempfile::tempdir().unwrap();
        let text = "licenseKey: \"${file:missing}\"\n";
        let snapshot = Snapshot::from_texts([("license.yaml", text.to_owned())]);
        let online = Specs::load(&snapshot, &inputs(dir.path()));
        assert!(
            online.diagnostics.iter().any(|d| d.message.contains("secret file")),
            "{:?}",
            online.diagnostics
        );
        let mut offline = inputs(dir.path());
        offline.options.offline = true;
        let offline = Specs::load(&snapshot, &offline);
        assert!(!offline.diagnostics.iter().any(|d| d.message.contains("secret file")));
    }
}

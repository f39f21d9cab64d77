//! The test kit (`crates/testkit`, package `immuta-testkit`) bound to this package's binary:
//! only this package's tests know where Cargo put it (`CARGO_BIN_EXE_immuta-gitops`).

#![allow(dead_code)] // Not every test module uses every helper.

pub use immuta_testkit::{
    Log, SpecDir, emulator_config, fixture, follow_serving, git, json_answer, output_text,
    postgres, repo_root, serving_url,
};

/// The `immuta-gitops` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_immuta-gitops");

/// The binary under test, run from the repository root, with colours off and no Immuta settings
/// leaking in from the developer's environment.
pub fn bin() -> assert_cmd::Command {
    immuta_testkit::bin(BIN)
}

/// [`immuta_testkit::tenant`], with an [`Env`](tenant::Env) that runs this package's binary.
///
/// Tests must be `#[tokio::test(flavor = "multi_thread", worker_threads = 2)]`: the binary runs
/// on a blocking thread while the emulator keeps serving on the runtime.
pub mod tenant {
    use std::ops::{Deref, DerefMut};

    use immuta_emulator::EmulatorConfig;
    pub use immuta_testkit::tenant::*;

    use super::BIN;

    /// [`immuta_testkit::tenant::Env`] for [`BIN`]; everything else comes through `Deref`.
    pub struct Env(pub immuta_testkit::tenant::Env);

    impl Env {
        /// An empty tenant with the admin key.
        pub async fn start() -> Env {
            Env(immuta_testkit::tenant::Env::start(BIN).await)
        }

        /// A tenant with `config`; the binary uses its first key (or the admin key).
        pub async fn start_with(config: EmulatorConfig) -> Env {
            Env(immuta_testkit::tenant::Env::start_with(BIN, config).await)
        }

        /// An empty tenant, and the `shop` fixture in the spec tree (not applied).
        pub async fn shop() -> Env {
            let env = Env::start().await;
            write_shop(&env.specs);
            env
        }

        /// A tenant managing `count` policies, `p1` to `p<count>` (one spec file each, see
        /// [`policy_spec`]), applied in process.
        pub async fn with_policies(count: usize) -> Env {
            let env = Env::start().await;
            for i in 1..=count {
                env.specs.write(&format!("policies/p{i}.yaml"), &policy_spec(&format!("p{i}")));
            }
            env.apply_in_process().await;
            env
        }

        /// The `shop` fixture applied in process: where most apply tests start.
        pub async fn shop_applied() -> Env {
            let env = Env::shop().await;
            env.apply_in_process().await;
            env
        }
    }

    impl Deref for Env {
        type Target = immuta_testkit::tenant::Env;

        fn deref(&self) -> &Self::Target {
            &self.0
        }
    }

    impl DerefMut for Env {
        fn deref_mut(&mut self) -> &mut Self::Target {
            &mut self.0
        }
    }
}

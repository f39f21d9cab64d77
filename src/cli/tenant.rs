//! Which tenant a command talks to: a real one (`--url` / `IMMUTA_URL` and an API key), or the
//! embedded sandbox tenant when no URL is configured; and where its state lives ([`StateArgs`]:
//! a file, or PostgreSQL).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use immuta_emulator::{ADMIN_KEY, Emulator, EmulatorConfig, EmulatorHandle};
use secrecy::SecretString;

use super::emulator::emulator_config;
use super::secret_from_file_or_env;
use crate::live::{Client, ClientConfig, Observer};
use crate::secret_store;
use crate::state::key::{self, Keys};
use crate::state::store::{self, Location, Store};

/// Options shared by every command that talks to a tenant.
#[derive(Debug, Clone, clap::Args)]
pub struct TenantArgs {
    /// Immuta tenant URL. Without one, the embedded sandbox tenant is used.
    #[arg(long, env = "IMMUTA_URL")]
    pub url: Option<String>,
    /// File holding the API key (default: the IMMUTA_API_KEY environment variable). Never pass
    /// keys on the command line.
    #[arg(long, value_name = "FILE")]
    pub api_key_file: Option<PathBuf>,
    /// File holding a separate API key for license calls (default: IMMUTA_ADMIN_API_KEY, else
    /// the main key). Needed where GOVERNANCE and APPLICATION_ADMIN are exclusive.
    #[arg(long, value_name = "FILE")]
    pub admin_api_key_file: Option<PathBuf>,
    /// Directory for the state file, its journal and lock, and the sandbox tenant.
    #[arg(
        long,
        env = "IMMUTA_GITOPS_STATE_DIR",
        default_value = ".immuta-gitops",
        value_name = "DIR"
    )]
    pub state_dir: PathBuf,
    #[command(flatten)]
    pub state: StateArgs,
    /// Directory that `${file:PATH}` placeholders are read from.
    #[arg(long, env = "IMMUTA_GITOPS_SECRETS_DIR", default_value = secret_store::DEFAULT_SECRETS_DIR, value_name = "DIR")]
    pub secrets_dir: PathBuf,
    /// Writes in flight at once within one kind (dry runs and listings use twice as many).
    /// Immuta does real work per post (a data-source post registers tables): raise it for
    /// large cold applies if the tenant keeps up.
    #[arg(long, env = "IMMUTA_GITOPS_PARALLELISM", default_value_t = 4)]
    pub parallelism: usize,
    /// Timeout of one HTTP request (e.g. 60s).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Retries of a request after a connection error, 429, 502, 503 or 504.
    #[arg(long, default_value_t = 5)]
    pub max_retries: usize,
}

/// Where the state lives, and its keys.
#[derive(Debug, Clone, clap::Args)]
pub struct StateArgs {
    /// The state: a file, or a PostgreSQL URL (`postgres://user@host:5432/db`, no password in
    /// it) shared by CI jobs and reconciler replicas. Default: STATE_DIR/state.json, or
    /// STATE_DIR/sandbox/state.json for the sandbox.
    #[arg(long = "state", env = "IMMUTA_GITOPS_STATE_URL", value_name = "FILE|URL")]
    pub location: Option<String>,
    /// The state's name in a PostgreSQL database, beside other tenants and spec roots.
    #[arg(long, env = "IMMUTA_GITOPS_STATE_NAME", default_value = "default", value_name = "NAME")]
    pub state_name: String,
    /// File holding the PostgreSQL password (default: IMMUTA_GITOPS_STATE_PASSWORD, else
    /// PGPASSWORD).
    #[arg(long, value_name = "FILE")]
    pub state_password_file: Option<PathBuf>,
    /// File holding the key of secret digests (default: IMMUTA_GITOPS_DIGEST_KEY, else, for a
    /// state file, STATE.key, made at the first apply). Required with PostgreSQL state.
    #[arg(long, env = "IMMUTA_GITOPS_DIGEST_KEY_FILE", value_name = "FILE")]
    pub digest_key_file: Option<PathBuf>,
}

/// An open state and its digest key.
pub struct OpenState {
    /// The store.
    pub store: Box<dyn Store>,
    /// The key of secret digests.
    pub keys: Keys,
}

impl StateArgs {
    /// Where the state is: `--state`, or `default` (a file under the state directory).
    pub fn location(&self, default: &Path) -> Location {
        match self.location.as_deref().filter(|s| !s.trim().is_empty()) {
            Some(text) => Location::parse(text),
            None => Location::File(default.to_path_buf()),
        }
    }

    /// Opens the state of `tenant` at `location` as `role` (`apply`, `run`...), with its keys.
    pub async fn open(
        &self,
        location: Location,
        tenant: &str,
        role: &str,
    ) -> anyhow::Result<OpenState> {
        let password = match secret_from_file_or_env(
            self.state_password_file.as_deref(),
            "IMMUTA_GITOPS_STATE_PASSWORD",
            Some("the state password file"),
        )? {
            Some(p) => Some(p),
            None if self.state_password_file.is_none() => {
                secret_from_file_or_env(None, "PGPASSWORD", None)?
            }
            None => None,
        };
        let keys = if let Some(file) = &self.digest_key_file {
            Keys::from_file(file)?
        } else if let Some(given) = secret_from_file_or_env(None, "IMMUTA_GITOPS_DIGEST_KEY", None)?
        {
            use secrecy::ExposeSecret;
            Keys::given(given.expose_secret().as_bytes(), "IMMUTA_GITOPS_DIGEST_KEY")?
        } else {
            match &location {
                Location::File(path) => Keys::local(&key::local_path(path))?,
                Location::Postgres(_) => Keys::none(),
            }
        };
        let target = store::Target {
            location,
            tenant: tenant.to_owned(),
            name: self.state_name.clone(),
            password,
            holder: store::holder(role),
        };
        let store = store::open(&target).await?;
        Ok(OpenState { store, keys })
    }
}

/// How an unreadable key file is named in the error.
const API_KEY_FILE: Option<&str> = Some("the API key file");

/// A connected tenant.
pub struct Tenant {
    /// `sandbox`, or the URL.
    pub label: String,
    /// The client.
    pub client: Client,
    /// Where the state is (a file by default).
    pub state: Location,
    /// Whether it is the embedded sandbox.
    pub is_sandbox: bool,
    /// Keeps the sandbox running while the command runs.
    _sandbox: Option<EmulatorHandle>,
}

impl Tenant {
    /// Opens this tenant's state as `role` ([`StateArgs::open`]).
    pub async fn open_state(&self, args: &TenantArgs, role: &str) -> anyhow::Result<OpenState> {
        args.state.open(self.state.clone(), &self.label, role).await
    }

    /// The banner that is the first line of every command's output on the sandbox.
    pub fn banner(&self, state_dir: &Path) -> Option<String> {
        self.is_sandbox.then(|| {
            format!(
                "Using the embedded sandbox tenant (no --url or IMMUTA_URL configured); its data lives in {}",
                state_dir.join("sandbox").display()
            )
        })
    }
}

/// Test-only: `IMMUTA_GITOPS_RETRY_BASE_MS` shortens the retry schedule so fault tests do not
/// sleep for seconds (as cargo's `__CARGO_TEST_FIXED_RETRY_SLEEP_MS`).
fn retry_policy(args: &TenantArgs) -> crate::live::retry::RetryPolicy {
    let mut policy =
        crate::live::retry::RetryPolicy { max_retries: args.max_retries, ..Default::default() };
    if let Some(ms) =
        std::env::var("IMMUTA_GITOPS_RETRY_BASE_MS").ok().and_then(|v| v.parse::<u64>().ok())
    {
        policy.min_delay = Duration::from_millis(ms);
        policy.max_delay = Duration::from_millis(ms.saturating_mul(8));
        policy.max_retry_after = Duration::from_millis(ms.saturating_mul(8));
    }
    policy
}

/// The label of a tenant URL: without its userinfo (registered with the redaction layer) and
/// trailing slashes.
fn tenant_label(url: &str) -> String {
    crate::redact::strip_userinfo(url.trim()).trim_end_matches('/').to_owned()
}

/// The tenant label and the state location of `args` without connecting (the `state`
/// commands): the URL, or `sandbox`.
pub fn state_of(args: &TenantArgs) -> (String, Location) {
    match args.url.as_deref().filter(|u| !u.trim().is_empty()) {
        Some(url) => (tenant_label(url), args.state.location(&args.state_dir.join("state.json"))),
        None => (
            "sandbox".to_owned(),
            args.state.location(&args.state_dir.join("sandbox").join("state.json")),
        ),
    }
}

/// Connects to the configured tenant, starting the sandbox when no URL is set.
pub async fn connect(
    args: &TenantArgs,
    observer: Option<Arc<dyn Observer>>,
) -> anyhow::Result<Tenant> {
    let retry = retry_policy(args);
    let (label, config, sandbox, default_state) = match args
        .url
        .as_deref()
        .filter(|u| !u.trim().is_empty())
    {
        Some(url) => {
            // The URL's userinfo is never shown nor stored (the state keeps the label).
            let label = tenant_label(url);
            let url = label.as_str();
            let Some(api_key) = secret_from_file_or_env(
                args.api_key_file.as_deref(),
                "IMMUTA_API_KEY",
                API_KEY_FILE,
            )?
            else {
                bail!(
                    "no API key for {url}: set IMMUTA_API_KEY, or pass --api-key-file FILE (keys never go on the \
                     command line)"
                );
            };
            let mut config = ClientConfig::new(url, api_key);
            config.admin_api_key = secret_from_file_or_env(
                args.admin_api_key_file.as_deref(),
                "IMMUTA_ADMIN_API_KEY",
                API_KEY_FILE,
            )?;
            (label.clone(), config, None, args.state_dir.join("state.json"))
        }
        None => {
            let dir = args.state_dir.join("sandbox");
            std::fs::create_dir_all(&dir).with_context(|| {
                format!("cannot create the sandbox directory `{}`", dir.display())
            })?;
            let handle = Emulator::start_with(EmulatorConfig {
                data_file: Some(dir.join("tenant.json")),
                ..emulator_config()
            })
            .await
            .context("cannot start the embedded sandbox tenant")?;
            let config =
                ClientConfig::new(handle.base_url(), SecretString::from(ADMIN_KEY.to_owned()));
            ("sandbox".to_owned(), config, Some(handle), dir.join("state.json"))
        }
    };
    let mut config = ClientConfig { timeout: args.timeout, retry, ..config };
    // Reads (listing pages) run twice as wide as writes, as dry runs do.
    config.listing.concurrency = args.parallelism.max(1).saturating_mul(2);
    let client = match observer {
        Some(o) => Client::with_observer(config, o)?,
        None => Client::new(config)?,
    };
    Ok(Tenant {
        is_sandbox: sandbox.is_some(),
        label,
        client,
        state: args.state.location(&default_state),
        _sandbox: sandbox,
    })
}

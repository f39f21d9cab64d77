//! Which tenant a command talks to: a real one (`--url` / `IMMUTA_URL` and an API key), or the
//! embedded sandbox tenant ([`resolve`]: only when nothing else was meant); and where its state
//! lives ([`StateArgs`]: a file, or PostgreSQL).
//!
//! The sandbox rule: `--sandbox` asks for it; without it, the sandbox is used only when no URL
//! is configured at all, no API key is given, `CI` is not set and the command is not `run`. An
//! empty `IMMUTA_URL` (a CI secret that is missing expands to an empty string), an API key
//! without a URL, `CI` or `run` are errors that say how to fix them: a run that never reached
//! the tenant must never report success.

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
    /// Immuta tenant URL. Without one (and with no API key, outside CI and `run`), the
    /// embedded sandbox tenant is used.
    #[arg(long, env = "IMMUTA_URL")]
    pub url: Option<String>,
    /// Use the embedded sandbox tenant (an emulator kept in STATE_DIR/sandbox), even in CI or
    /// under `run`. Refused together with a tenant URL.
    #[arg(long)]
    pub sandbox: bool,
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
    /// Whether `--sandbox` asked for it.
    sandbox_asked: bool,
    /// Counts the client's retries; reported in one line when the command ends.
    retries: Arc<Retries>,
    /// Keeps the sandbox running while the command runs.
    _sandbox: Option<EmulatorHandle>,
}

impl Drop for Tenant {
    /// The client's retries in one line (each one is at debug level): at the end of a command,
    /// whether it succeeded or not, before its result or error is printed.
    fn drop(&mut self) {
        if let Some(line) = self.retries.summary() {
            tracing::warn!("{line}");
        }
    }
}

/// An [`Observer`] that counts retries by reason and passes every event on.
struct Retries {
    inner: Option<Arc<dyn Observer>>,
    counts: std::sync::Mutex<std::collections::BTreeMap<String, usize>>,
}

impl Retries {
    /// `N request(s) to the tenant retried (connection 2, 503 1)`, when there were any.
    fn summary(&self) -> Option<String> {
        let counts = self.counts.lock().ok()?;
        let total: usize = counts.values().sum();
        (total > 0).then(|| {
            let by: Vec<String> = counts.iter().map(|(r, n)| format!("{r}: {n}")).collect();
            format!(
                "{total} retr{} of requests to the tenant ({}); RUST_LOG=debug shows each",
                if total == 1 { "y" } else { "ies" },
                by.join(", ")
            )
        })
    }
}

impl Observer for Retries {
    fn request(&self, endpoint: &str, method: &str, status: Option<u16>, took: Duration) {
        if let Some(o) = &self.inner {
            o.request(endpoint, method, status, took);
        }
    }

    fn retry(&self, endpoint: &str, reason: &str) {
        if let Some(o) = &self.inner {
            o.retry(endpoint, reason);
        }
        if let Ok(mut counts) = self.counts.lock() {
            *counts.entry(reason.to_owned()).or_default() += 1;
        }
    }
}

impl Tenant {
    /// Opens this tenant's state as `role` ([`StateArgs::open`]).
    pub async fn open_state(&self, args: &TenantArgs, role: &str) -> anyhow::Result<OpenState> {
        args.state.open(self.state.clone(), &self.label, role).await
    }

    /// The banner that is the first line of every command's output on the sandbox.
    pub fn banner(&self, state_dir: &Path) -> Option<String> {
        self.is_sandbox.then(|| {
            let why =
                if self.sandbox_asked { "--sandbox" } else { "no --url or IMMUTA_URL configured" };
            format!(
                "Using the embedded sandbox tenant ({why}); its data lives in {}",
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

/// Which tenant a command talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Which {
    /// A tenant at this URL.
    Url(String),
    /// The embedded sandbox tenant; `asked` when `--sandbox` was passed.
    Sandbox {
        /// Whether `--sandbox` asked for it (else no tenant was configured at all).
        asked: bool,
    },
}

/// What [`decide`] looks at, read from the arguments and the environment by [`resolve`].
#[derive(Debug, Clone, Copy, Default)]
struct Setup<'a> {
    /// `--url`, else `IMMUTA_URL`, as given (possibly empty).
    url: Option<&'a str>,
    /// `--sandbox`.
    sandbox: bool,
    /// An API key is given (`--api-key-file` or a non-empty `IMMUTA_API_KEY`).
    api_key: bool,
    /// `CI` is set (non-empty, not `false` or `0`).
    ci: bool,
    /// The command is the long-lived reconciler (`run`).
    daemon: bool,
}

/// The sandbox rule (module docs): a tenant URL, the sandbox when nothing else was meant, or an
/// error that says how to fix the configuration.
fn decide(s: Setup<'_>) -> Result<Which, String> {
    const OR_SANDBOX: &str = "or pass --sandbox to use the embedded sandbox tenant";
    match s.url.map(str::trim) {
        Some(url) if !url.is_empty() => {
            if s.sandbox {
                return Err(format!(
                    "--sandbox and a tenant URL ({url}, from --url or IMMUTA_URL) were both given: \
                     drop --sandbox to use that tenant, or unset IMMUTA_URL to use the sandbox"
                ));
            }
            Ok(Which::Url(url.trim_end_matches('/').to_owned()))
        }
        _ if s.sandbox => Ok(Which::Sandbox { asked: true }),
        Some(_) => Err(format!(
            "IMMUTA_URL (or --url) is set but empty, so no tenant is configured (a missing CI \
             secret expands to an empty string): set it to your tenant's URL, {OR_SANDBOX}"
        )),
        None if s.api_key => Err(format!(
            "an API key is given (IMMUTA_API_KEY or --api-key-file) but no tenant URL: set \
             IMMUTA_URL (or pass --url), {OR_SANDBOX}"
        )),
        None if s.daemon => Err(format!(
            "`run` needs a tenant and none is configured: set IMMUTA_URL (or pass --url), \
             {OR_SANDBOX} (demos only: it reconciles a tenant inside this process)"
        )),
        None if s.ci => Err(format!(
            "no tenant is configured and CI is set: set IMMUTA_URL (or pass --url) and \
             IMMUTA_API_KEY, {OR_SANDBOX} (`plan --base REV` needs no tenant at all)"
        )),
        None => Ok(Which::Sandbox { asked: false }),
    }
}

/// Whether the environment variable `name` is set to something that means "yes" (non-empty,
/// not `false` or `0`), as CI providers set `CI`.
fn env_flag(name: &str) -> bool {
    std::env::var(name)
        .is_ok_and(|v| !v.trim().is_empty() && !matches!(v.trim(), "false" | "FALSE" | "0"))
}

/// Which tenant `args` mean for a command (`daemon`: `run`), by the sandbox rule.
pub fn resolve(args: &TenantArgs, daemon: bool) -> anyhow::Result<Which> {
    // clap may fold an empty IMMUTA_URL into "absent": look at the variable itself too.
    let env_url = std::env::var("IMMUTA_URL").ok();
    let url = args.url.as_deref().or(env_url.as_deref());
    let api_key = args.api_key_file.is_some()
        || std::env::var("IMMUTA_API_KEY").is_ok_and(|k| !k.trim().is_empty());
    let setup = Setup { url, sandbox: args.sandbox, api_key, ci: env_flag("CI"), daemon };
    match decide(setup).map_err(anyhow::Error::msg)? {
        // The URL's userinfo is never shown nor stored (the state keeps the label).
        Which::Url(url) => Ok(Which::Url(tenant_label(&url))),
        sandbox => Ok(sandbox),
    }
}

/// The tenant label and the state location of `args` without connecting (the `state`
/// commands): the URL, or `sandbox`.
pub fn state_of(args: &TenantArgs) -> anyhow::Result<(String, Location)> {
    Ok(match resolve(args, false)? {
        Which::Url(url) => (url, args.state.location(&args.state_dir.join("state.json"))),
        Which::Sandbox { .. } => (
            "sandbox".to_owned(),
            args.state.location(&args.state_dir.join("sandbox").join("state.json")),
        ),
    })
}

/// Connects to the configured tenant ([`resolve`]), starting the sandbox when it is meant.
pub async fn connect(
    args: &TenantArgs,
    observer: Option<Arc<dyn Observer>>,
) -> anyhow::Result<Tenant> {
    connect_as(args, observer, false).await
}

/// As [`connect`], for `run` when `daemon` (which never falls back to the sandbox).
pub async fn connect_as(
    args: &TenantArgs,
    observer: Option<Arc<dyn Observer>>,
    daemon: bool,
) -> anyhow::Result<Tenant> {
    let retry = retry_policy(args);
    let which = resolve(args, daemon)?;
    let asked = matches!(which, Which::Sandbox { asked: true });
    let (label, config, sandbox, default_state) = match which {
        Which::Url(url) => {
            let url = url.as_str();
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
            (url.to_owned(), config, None, args.state_dir.join("state.json"))
        }
        Which::Sandbox { .. } => {
            let dir = args.state_dir.join("sandbox");
            crate::state::file::create_dir(&dir).with_context(|| {
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
    let retries = Arc::new(Retries { inner: observer, counts: Default::default() });
    let client = Client::with_observer(config, retries.clone())?;
    Ok(Tenant {
        is_sandbox: sandbox.is_some(),
        sandbox_asked: asked,
        label,
        client,
        state: args.state.location(&default_state),
        retries,
        _sandbox: sandbox,
    })
}

#[cfg(test)]
mod tests {
    use super::{Setup, Which, decide};

    #[test]
    fn the_sandbox_only_when_nothing_else_was_meant() {
        let none = Setup::default();
        assert_eq!(decide(none), Ok(Which::Sandbox { asked: false }));
        assert_eq!(
            decide(Setup { url: Some("https://t.example/"), ..none }),
            Ok(Which::Url("https://t.example".to_owned()))
        );
        // Explicitly asked: in CI, under `run`, with a key, over an empty URL.
        let asked = Setup { sandbox: true, ci: true, daemon: true, api_key: true, ..none };
        assert_eq!(decide(asked), Ok(Which::Sandbox { asked: true }));
        assert_eq!(decide(Setup { url: Some(""), ..asked }), Ok(Which::Sandbox { asked: true }));
        // Everything else that meant a tenant is an error that says how to fix it.
        for (setup, says) in [
            (Setup { url: Some(""), ..none }, "set but empty"),
            (Setup { url: Some("  "), ..none }, "set but empty"),
            (Setup { api_key: true, ..none }, "no tenant URL"),
            (Setup { ci: true, ..none }, "CI is set"),
            (Setup { daemon: true, ..none }, "`run` needs a tenant"),
            (Setup { url: Some("https://t.example"), sandbox: true, ..none }, "both given"),
        ] {
            let err = decide(setup).expect_err(says);
            assert!(err.contains(says), "{err}");
            assert!(err.contains("--sandbox"), "the fix is named: {err}");
        }
    }
}

//! `immuta-gitops run`: the long-lived reconciler (a sidecar or a plain service).

use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::tenant::{self, TenantArgs};
use super::{EXIT_OK, Stop, runtime, secret_from_file_or_env, stop_signal};
use crate::daemon::{Config, Daemon, Handles, Mode, StatusHandle, Trigger};
use crate::metrics::Metrics;
use crate::pipeline::Overrides;
use crate::server::{self, ServerState, WebhookConfig};
use crate::source::SourceConfig;
use crate::source::remote::{GitAuth, GitRef, GitSourceConfig};
use crate::spec;

/// What `run` does with a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RunMode {
    /// Plan and apply.
    Apply,
    /// Plan and report only (metrics, /status, logs); never write to the tenant.
    PlanOnly,
}

/// Arguments of `run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Git repository to follow: https://, ssh://, git@host:path, git://, file://, or the path
    /// of a local repository.
    #[arg(long, value_name = "URL", conflicts_with = "dir", required_unless_present = "dir")]
    pub repo: Option<String>,
    /// Branch to follow (default: main).
    #[arg(long, conflicts_with_all = ["tag", "commit"])]
    pub branch: Option<String>,
    /// Tag to pin.
    #[arg(long, conflicts_with = "commit")]
    pub tag: Option<String>,
    /// Commit (full 40-hex id) to pin.
    #[arg(long)]
    pub commit: Option<String>,
    /// Spec root inside the repository (or inside --dir).
    #[arg(long, value_name = "SUBDIR", default_value = "")]
    pub path: String,
    /// A local directory to watch instead of a repository.
    #[arg(long, value_name = "PATH")]
    pub dir: Option<PathBuf>,
    /// How often to poll the source (a random jitter of up to 10% is added).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub interval: Duration,
    /// How often to compare the tenant with the specs (drift check); `0s` turns it off.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub drift_interval: Duration,
    /// Apply, or only plan and report.
    #[arg(long, value_enum, default_value_t = RunMode::Apply)]
    pub mode: RunMode,
    /// Re-apply drift found by the drift check (with an exponential backoff).
    #[arg(long)]
    pub self_heal: bool,
    /// Address for /webhook, /healthz, /readyz, /metrics and /status (the container image sets
    /// 0.0.0.0:8080 through the environment).
    #[arg(long, env = "IMMUTA_GITOPS_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Allow deletes, replaces and implicit table removals.
    #[arg(long)]
    pub allow_destroy: bool,
    /// Allow plans that delete every managed object or more than maxDeletePercent of them.
    #[arg(long)]
    pub force: bool,
    /// Treat spec warnings as errors.
    #[arg(long)]
    pub strict: bool,
    /// File with an HTTPS access token for the repository (default: IMMUTA_GITOPS_GIT_TOKEN).
    #[arg(long, value_name = "FILE")]
    pub git_token_file: Option<PathBuf>,
    /// File with an SSH private key for the repository (default: IMMUTA_GITOPS_SSH_KEY).
    #[arg(long, value_name = "FILE")]
    pub ssh_key_file: Option<PathBuf>,
    /// Use keys from the running ssh-agent.
    #[arg(long)]
    pub ssh_agent: bool,
    /// File with the GitHub webhook secret (default: IMMUTA_GITOPS_WEBHOOK_SECRET).
    #[arg(long, value_name = "FILE")]
    pub webhook_secret_file: Option<PathBuf>,
    /// File with the GitLab webhook token (default: IMMUTA_GITOPS_GITLAB_TOKEN).
    #[arg(long, value_name = "FILE")]
    pub gitlab_token_file: Option<PathBuf>,
    /// A Host name /healthz, /readyz, /metrics and /status answer besides IP addresses and
    /// localhost (DNS-rebinding protection; repeatable, `*` allows any). /webhook answers any.
    #[arg(
        long = "allowed-host",
        value_name = "NAME",
        env = "IMMUTA_GITOPS_ALLOWED_HOSTS",
        value_delimiter = ','
    )]
    pub allowed_hosts: Vec<String>,
    /// Most HTTP connections open at once; at the limit the oldest is closed for the newest.
    #[arg(long, default_value_t = server::DEFAULT_MAX_CONNECTIONS, value_parser = clap::value_parser!(usize))]
    pub max_connections: usize,
    /// Close an HTTP connection that sends no complete request head for this long (idle or
    /// slow clients).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_timeout: Duration,
    /// Quiet time that ends a burst of file changes (--dir).
    #[arg(long, default_value = "500ms", value_parser = humantime::parse_duration)]
    pub debounce: Duration,
    /// Rescan a watched directory this often even without events (--dir).
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub rescan: Duration,
    #[command(flatten)]
    pub tenant: TenantArgs,
}

/// `--path` as a relative path that stays inside the root (`a/b`, `/a/b/`; never `..`).
fn sub_path(path: &str) -> anyhow::Result<PathBuf> {
    let trimmed = Path::new(path.trim_matches('/'));
    if trimmed.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir)) {
        bail!("--path `{path}` must stay inside the spec root: use a relative path without `..`");
    }
    Ok(trimmed.to_path_buf())
}

/// `--repo` as a URL: a URL or `user@host:path` as given, a local repository's path as the
/// `file://` URL of its absolute path (so the cache is the same from any working directory).
fn repo_url(repo: &str) -> anyhow::Result<String> {
    if repo.contains("://") {
        return Ok(repo.to_owned());
    }
    let path = Path::new(repo);
    if path.exists() {
        let absolute = std::fs::canonicalize(path)
            .with_context(|| format!("--repo `{repo}`: cannot resolve the path"))?;
        let Some(absolute) = absolute.to_str() else {
            bail!("--repo `{repo}`: the path is not valid UTF-8");
        };
        return Ok(format!("file://{absolute}"));
    }
    // `git@github.com:org/repo.git`: scp-like SSH syntax (a colon before any slash).
    if repo.find(':').is_some_and(|colon| repo.find('/').is_none_or(|slash| colon < slash)) {
        return Ok(repo.to_owned());
    }
    bail!(
        "--repo `{repo}` is neither a URL (https://, ssh://, git@host:path, git://, file://) nor \
         an existing local repository"
    )
}

fn source_config(args: &RunArgs) -> anyhow::Result<SourceConfig> {
    if let Some(dir) = &args.dir {
        if !dir.is_dir() {
            bail!("--dir `{}` is not a directory", dir.display());
        }
        let sub = sub_path(&args.path)?;
        let root = if sub.as_os_str().is_empty() { dir.clone() } else { dir.join(&sub) };
        if !root.is_dir() {
            bail!("--path `{}` is not a directory under --dir `{}`", sub.display(), dir.display());
        }
        return Ok(SourceConfig::Dir {
            root,
            include: spec::is_snapshot_file,
            debounce: args.debounce,
            rescan_every: args.rescan,
        });
    }
    let Some(url) = &args.repo else { bail!("pass --repo URL or --dir PATH") };
    let url = repo_url(url)?;
    let reference = match (&args.branch, &args.tag, &args.commit) {
        (_, Some(t), _) => GitRef::Tag(t.clone()),
        (_, _, Some(c)) => GitRef::Commit(c.clone()),
        (Some(b), _, _) => GitRef::Branch(b.clone()),
        _ => GitRef::Branch("main".into()),
    };
    let auth = if let Some(token) =
        secret_from_file_or_env(args.git_token_file.as_deref(), "IMMUTA_GITOPS_GIT_TOKEN", None)?
    {
        GitAuth::HttpsToken(token)
    } else if let Some(key) =
        secret_from_file_or_env(args.ssh_key_file.as_deref(), "IMMUTA_GITOPS_SSH_KEY", None)?
    {
        GitAuth::SshKey { user: "git".into(), private_key: key }
    } else if args.ssh_agent {
        GitAuth::SshAgent
    } else {
        GitAuth::None
    };
    let mut config = GitSourceConfig::new(url, reference, args.tenant.state_dir.join("git-cache"));
    sub_path(&args.path)?;
    config.sub_path = args.path.trim_matches('/').to_owned();
    config.auth = auth;
    config.include = spec::is_snapshot_file;
    Ok(SourceConfig::Git(config))
}

/// How long shutdown waits for abandoned reads (a Git fetch on a blocking thread) to notice.
/// Writes are not concerned: they finish before the loop returns.
const ABANDONED_READS_GRACE: Duration = Duration::from_secs(2);

/// A webhook secret from its file or variable. Empty is a startup error, never "no webhook":
/// a Secret mounted before it was filled in would otherwise turn the receiver off unnoticed.
fn webhook_secret(file: Option<&Path>, env: &str) -> anyhow::Result<Option<secrecy::SecretString>> {
    if file.is_none() && std::env::var(env).is_ok_and(|v| v.trim().is_empty()) {
        bail!(
            "{env} is set but empty: give the webhook secret, or unset it to disable the webhook"
        );
    }
    secret_from_file_or_env(file, env, Some("the webhook secret"))
}

/// `run`. With `json_logs`, every stderr line is a JSON object (the "serving on" line too).
pub fn run(args: &RunArgs, json_logs: bool) -> anyhow::Result<ExitCode> {
    let source = source_config(args)?;
    let webhook = WebhookConfig {
        github_secret: webhook_secret(
            args.webhook_secret_file.as_deref(),
            "IMMUTA_GITOPS_WEBHOOK_SECRET",
        )?,
        gitlab_token: webhook_secret(
            args.gitlab_token_file.as_deref(),
            "IMMUTA_GITOPS_GITLAB_TOKEN",
        )?,
        branch: match &source {
            SourceConfig::Git(g) => match &g.reference {
                GitRef::Branch(b) => Some(b.clone()),
                _ => None,
            },
            SourceConfig::Dir { .. } => None,
        },
    };
    let runtime = runtime()?;
    let result = runtime.block_on(async {
        let metrics = Arc::new(Metrics::new());
        let tenant = tenant::connect_as(&args.tenant, Some(metrics.clone()), true).await?;
        // The reconciler writes its lock, state and Git cache here: made with its `.gitignore`.
        crate::state::file::create_dir(&args.tenant.state_dir).with_context(|| {
            format!("cannot create the state directory `{}`", args.tenant.state_dir.display())
        })?;
        if let Some(banner) = tenant.banner(&args.tenant.state_dir) {
            tracing::warn!("{banner}");
        }
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        tracing::info!(%addr, "serving /webhook, /healthz, /readyz, /metrics and /status");
        if !json_logs {
            eprintln!("immuta-gitops reconciler serving on http://{addr}");
        }
        let state = tenant.open_state(&args.tenant, "run").await?;
        if state.store.is_shared() && state.keys.current().is_none() {
            // Replicas and CI jobs must digest secrets alike: the key cannot be made here.
            return Err(crate::state::key::Error::Missing { state: state.store.describe() }.into());
        }
        let config = Config {
            source,
            mode: match args.mode {
                RunMode::Apply => Mode::Apply,
                RunMode::PlanOnly => Mode::PlanOnly,
            },
            interval: args.interval,
            drift_interval: (!args.drift_interval.is_zero()).then_some(args.drift_interval),
            self_heal: args.self_heal,
            overrides: Overrides { allow_destroy: args.allow_destroy, force: args.force },
            strict: args.strict,
            parallelism: args.tenant.parallelism,
            store: std::sync::Arc::from(state.store),
            keys: std::sync::Arc::new(state.keys),
            tenant: tenant.label.clone(),
            secrets_dir: args.tenant.secrets_dir.clone(),
        };
        let handles =
            Handles { client: tenant.client.clone(), metrics, status: StatusHandle::default() };
        let (triggers, triggers_rx) = mpsc::channel(16);
        let cancel = CancellationToken::new();
        spawn_signals(triggers.clone(), cancel.clone())?;
        // The daemon and the server run side by side (controller-rs `main.rs`): the server only
        // sends triggers and reads the status and the metrics. The daemon starts first (the
        // state lock, the source) so that a refused start never serves.
        let daemon = Daemon::start(config, handles.clone(), cancel.clone()).await?;
        let state = ServerState {
            metrics: handles.metrics.clone(),
            status: handles.status.clone(),
            triggers,
            webhook: Arc::new(webhook),
        };
        let reconciler = async {
            daemon.run(triggers_rx).await;
            // The loop stopped (a signal, or no trigger sender left): the server stops with it.
            cancel.cancel();
        };
        let options = server::ServeOptions {
            limits: server::Limits {
                max_connections: args.max_connections.max(1),
                header_timeout: args.header_timeout,
            },
            allowed_hosts: server::AllowedHosts::new(&args.allowed_hosts),
        };
        let served = server::serve_with(listener, state, options, cancel.clone().cancelled_owned());
        let ((), served) = tokio::join!(reconciler, served);
        served?;
        drop(tenant);
        Ok(ExitCode::from(EXIT_OK))
    });
    // A fetch abandoned on shutdown may still sit in a blocking Git call (a silent server):
    // do not wait for it beyond a short grace.
    runtime.shutdown_timeout(ABANDONED_READS_GRACE);
    result
}

/// SIGTERM and SIGINT stop the loop (the objects in flight finish first); SIGHUP reconciles now.
fn spawn_signals(tx: mpsc::Sender<Trigger>, cancel: CancellationToken) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let stop = stop_signal(&[Stop::Terminate, Stop::Interrupt])?;
    let mut hup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
    tokio::spawn(async move {
        tokio::pin!(stop);
        loop {
            tokio::select! {
                name = &mut stop => {
                    tracing::info!("{name}: finishing the objects in flight, then stopping");
                    cancel.cancel();
                    break;
                }
                _ = hup.recv() => { let _ = tx.try_send(Trigger::Reload); }
            }
        }
    });
    Ok(())
}

//! `immuta-gitops state`: Terraform's state commands. `list` and `show` read; `rm` forgets an
//! object (it stays on the tenant, unmanaged) after a confirmation; `migrate --to` copies the
//! state to another backend (a file to PostgreSQL and back) under both locks, and reads the
//! copy back to check it.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

use super::tenant::{self, OpenState, TenantArgs};
use super::validate::Report as Format;
use super::{EXIT_ERROR, EXIT_OK, print_out, runtime};
use crate::spec::Kind;
use crate::spec::secrets::{SENSITIVE, is_masked};
use crate::state::store::{self, Location, Recorder};
use crate::state::{Entry, State, key};

/// Arguments of `state`.
#[derive(Debug, clap::Args)]
pub struct StateArgs {
    #[command(subcommand)]
    command: StateCommand,
}

#[derive(Debug, clap::Subcommand)]
enum StateCommand {
    /// List the managed objects: kind, key, Immuta id, revision applied.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        #[command(flatten)]
        tenant: TenantArgs,
    },
    /// Show what the state records of one object (secrets as `(sensitive)`).
    Show {
        /// Kind: license, purpose, datasource, policy or project.
        kind: String,
        /// Natural key (connectionKey, policyKey, projectKey, purpose name, licenseKey id).
        key: String,
        #[command(flatten)]
        tenant: TenantArgs,
    },
    /// Forget an object: it stays on the tenant, no longer managed (never deleted by a later
    /// apply); a spec that still defines it adopts it again.
    Rm {
        /// Kind: license, purpose, datasource, policy or project.
        kind: String,
        /// Natural key.
        key: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        auto_approve: bool,
        /// How long to wait for the state's lock while another process holds it.
        #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
        lock_timeout: Duration,
        #[command(flatten)]
        tenant: TenantArgs,
    },
    /// Copy the state to another backend (a file, or a PostgreSQL URL), then read the copy back
    /// and check it is the same; plan with `--state TO` afterwards to see no change.
    Migrate {
        /// Where to: a file, or `postgres://user@host:port/db` (its password as for --state).
        #[arg(long, value_name = "FILE|URL")]
        to: String,
        /// The state's name at the destination (default: --state-name).
        #[arg(long, value_name = "NAME")]
        to_name: Option<String>,
        /// Replace a state that already exists at the destination.
        #[arg(long)]
        force: bool,
        /// How long to wait for each state's lock.
        #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
        lock_timeout: Duration,
        #[command(flatten)]
        tenant: TenantArgs,
    },
}

/// How often the state commands try a lock again.
const LOCK_POLL: Duration = Duration::from_millis(500);

/// `state`.
pub fn run(args: &StateArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        match &args.command {
            StateCommand::List { format, tenant } => list(tenant, *format).await,
            StateCommand::Show { kind, key, tenant } => show(tenant, kind, key).await,
            StateCommand::Rm { kind, key, auto_approve, lock_timeout, tenant } => {
                rm(tenant, kind, key, *auto_approve, *lock_timeout).await
            }
            StateCommand::Migrate { to, to_name, force, lock_timeout, tenant } => {
                migrate(tenant, to, to_name.as_deref(), *force, *lock_timeout).await
            }
        }
    })
}

async fn open(args: &TenantArgs, role: &str) -> anyhow::Result<(String, OpenState)> {
    let (label, location) = tenant::state_of(args)?;
    let state = args.state.open(location, &label, role).await?;
    Ok((label, state))
}

/// The state, or an error saying there is none.
async fn existing(label: &str, state: &OpenState) -> anyhow::Result<State> {
    match state.store.load().await? {
        Some(s) => Ok(s),
        None => {
            bail!("there is no state of {label} in {}: nothing was applied", state.store.describe())
        }
    }
}

fn kind(text: &str) -> anyhow::Result<Kind> {
    Kind::ALL.into_iter().find(|k| k.as_str() == text.to_ascii_lowercase()).with_context(|| {
        let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        format!("unknown kind `{text}`: use one of {}", kinds.join(", "))
    })
}

/// `value` with every digest shown as `(sensitive)`.
fn masked(value: &Value) -> Value {
    match value {
        Value::String(s) if is_masked(s) => Value::String(SENSITIVE.into()),
        Value::Array(items) => Value::Array(items.iter().map(masked).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), masked(v))).collect())
        }
        other => other.clone(),
    }
}

fn entry_json(e: &Entry) -> Value {
    serde_json::json!({
        "kind": e.kind.as_str(),
        "key": e.key,
        "id": e.id,
        "prune": e.prune,
        "revision": e.revision,
        "applied_at": e.applied_at,
        "names": e.names,
        "payload": masked(&e.payload),
    })
}

async fn list(args: &TenantArgs, format: Format) -> anyhow::Result<ExitCode> {
    let (label, state) = open(args, "state list").await?;
    let s = existing(&label, &state).await?;
    let text = match format {
        Format::Json => {
            let objects: Vec<Value> = s
                .objects
                .iter()
                .map(|e| {
                    serde_json::json!({"kind": e.kind.as_str(), "key": e.key, "id": e.id,
                        "revision": e.revision, "applied_at": e.applied_at})
                })
                .collect();
            let report = serde_json::json!({
                "format_version": 1,
                "tenant": s.tenant,
                "state": state.store.describe(),
                "revision": s.revision,
                "serial": s.serial,
                "objects": objects,
            });
            format!("{}\n", serde_json::to_string_pretty(&report)?)
        }
        Format::Text => {
            let mut out = String::new();
            for e in &s.objects {
                let id = e.id.map(|i| format!(" (id {i})")).unwrap_or_default();
                out.push_str(&format!("{} {}{id}\n", e.kind.as_str(), e.key));
            }
            out
        }
    };
    print_out(&text)?;
    Ok(ExitCode::from(EXIT_OK))
}

async fn show(args: &TenantArgs, kind_text: &str, key: &str) -> anyhow::Result<ExitCode> {
    let kind = kind(kind_text)?;
    let (label, state) = open(args, "state show").await?;
    let s = existing(&label, &state).await?;
    let Some(e) = s.get(kind, key) else {
        bail!("{} {key:?} is not in {}", kind.as_str(), state.store.describe());
    };
    print_out(&format!("{}\n", serde_json::to_string_pretty(&entry_json(e))?))?;
    Ok(ExitCode::from(EXIT_OK))
}

async fn rm(
    args: &TenantArgs,
    kind_text: &str,
    key: &str,
    auto_approve: bool,
    lock_timeout: Duration,
) -> anyhow::Result<ExitCode> {
    let kind = kind(kind_text)?;
    let (label, state) = open(args, "state rm").await?;
    let store = &*state.store;
    let _lock = store::lock_within(store, lock_timeout, LOCK_POLL).await?;
    let mut recorder = Recorder::open(store, State::new(&label, "")).await?;
    if recorder.state().get(kind, key).is_none() {
        bail!("{} {key:?} is not in {}", kind.as_str(), store.describe());
    }
    if !auto_approve && !confirm(&format!("Forget {} {key:?}", kind.as_str()))? {
        let _ = writeln!(anstream::stderr(), "Cancelled: nothing was changed.");
        return Ok(ExitCode::from(EXIT_ERROR));
    }
    recorder.remove(kind, key).await?;
    recorder.finish().await?;
    print_out(&format!(
        "Removed {} {key:?} from {}: it stays on the tenant, no longer managed.\n",
        kind.as_str(),
        store.describe()
    ))?;
    Ok(ExitCode::from(EXIT_OK))
}

async fn migrate(
    args: &TenantArgs,
    to: &str,
    to_name: Option<&str>,
    force: bool,
    lock_timeout: Duration,
) -> anyhow::Result<ExitCode> {
    let (label, from) = open(args, "state migrate").await?;
    let mut dest_args = args.state.clone();
    if let Some(name) = to_name {
        dest_args.state_name = name.to_owned();
    }
    let to_location = Location::parse(to);
    let dest = dest_args.open(to_location.clone(), &label, "state migrate").await?;
    if from.store.describe() == dest.store.describe() {
        bail!("--to names the state being migrated: {}", from.store.describe());
    }
    let _from_lock = store::lock_within(&*from.store, lock_timeout, LOCK_POLL).await?;
    let _to_lock = store::lock_within(&*dest.store, lock_timeout, LOCK_POLL).await?;
    let Some(state) = from.store.begin().await? else {
        bail!("there is no state of {label} in {}: nothing to migrate", from.store.describe());
    };
    if !force && dest.store.load().await?.is_some() {
        bail!(
            "{} exists already: pass --force to replace it, or another --to-name",
            dest.store.describe()
        );
    }
    dest.store.replace(&state).await?;
    let copy = dest.store.load().await?;
    let same = copy.as_ref().is_some_and(|c| {
        c.objects == state.objects
            && c.revision == state.revision
            && c.key_id == state.key_id
            && c.salt == state.salt
            && c.fingerprint() == state.fingerprint()
    });
    if !same {
        bail!(
            "the copy in {} does not read back as the state of {}: do not use it",
            dest.store.describe(),
            from.store.describe()
        );
    }
    let mut out = format!(
        "Migrated {} object(s) of {label} from {} to {}; the copy reads back identical.\n",
        state.objects.len(),
        from.store.describe(),
        dest.store.describe(),
    );
    // The copy's secret digests need the same key: say where it is, or put it beside a file.
    match (&to_location, from.keys.current()) {
        (Location::File(path), Some(_)) if !key::local_path(path).exists() => {
            let local = key::local_path(path);
            from.keys.copy_to(&local)?;
            out.push_str(&format!("Its digest key is in `{}` (mode 0600).\n", local.display()));
        }
        (Location::Postgres(_), _) if args.state.digest_key_file.is_none() => {
            if let Location::File(path) = tenant::state_of(args)?.1 {
                out.push_str(&format!(
                    "Give every writer of the new state the digest key of `{}` (IMMUTA_GITOPS_DIGEST_KEY \
                     or --digest-key-file).\n",
                    key::local_path(&path).display()
                ));
            }
        }
        _ => {}
    }
    let check = match &to_location {
        Location::File(p) => p.display().to_string(),
        Location::Postgres(_) => "URL".to_owned(),
    };
    out.push_str(&format!("Check it: immuta-gitops plan --state {check} (expect no changes).\n"));
    print_out(&out)?;
    Ok(ExitCode::from(EXIT_OK))
}

/// Asks on the terminal; only `yes` goes ahead.
fn confirm(question: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!("refusing without confirmation: stdin is not a terminal; pass --auto-approve");
    }
    let mut err = anstream::stderr().lock();
    write!(err, "{question}? Only 'yes' is accepted: ")?;
    err.flush()?;
    drop(err);
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim() == "yes")
}

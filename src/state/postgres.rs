//! The PostgreSQL backend: states shared by CI runners and reconciler replicas.
//!
//! One database holds the states of several tenants and spec roots side by side, each keyed by
//! the tenant URL and a name. The schema is the tool's own, created and migrated by it
//! ([`MIGRATIONS`], versioned in `immuta_gitops_schema`, applied under a transaction-scoped
//! advisory lock so that two processes starting at once migrate once) when a writer first takes
//! the lock: a read-only command (`plan`) creates nothing, and reads a database without the
//! schema as "nothing applied". One row per managed
//! object; the journal is rows too, each written in the same transaction as the object's row,
//! so a record is all or nothing and there is no torn line to recover.
//!
//! **One writer.** The writer lock is a session-level advisory lock on the store's single
//! connection: it dies with the session, so a writer killed with `kill -9`, or whose connection
//! is lost, releases it (the server notices a dead peer within seconds: the session asks for
//! TCP keepalives every few seconds). A record needs the lock, and is made on the connection
//! that holds it, so a writer that lost its connection cannot record anything more; the
//! holder's name is kept in `immuta_gitops_locks` so the others can say who holds it.
//!
//! The password comes from the environment or a file, never from the URL, and is never printed:
//! messages show the URL as `postgres://user@host:port/db`. TLS is not built in (see
//! [`Error::Tls`]).

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use secrecy::ExposeSecret;
use tokio::sync::Mutex;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::{Client, NoTls};
use tokio_util::sync::CancellationToken;

use super::store::{self, BoxFuture};
use super::{Entry, Record, STATE_VERSION, State};
use crate::spec::Kind;

/// The versioned schema: migration `i` takes the schema from version `i` to `i + 1`. Never edit
/// a released migration; add one.
pub const MIGRATIONS: &[&str] = &[
    // 1: states, objects, the journal and the lock holders.
    "CREATE TABLE immuta_gitops_states (
        tenant text NOT NULL,
        name text NOT NULL,
        version integer NOT NULL,
        serial bigint NOT NULL DEFAULT 0,
        revision text,
        key_id text,
        salt text NOT NULL DEFAULT '',
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant, name)
    );
    CREATE TABLE immuta_gitops_objects (
        tenant text NOT NULL,
        name text NOT NULL,
        kind text NOT NULL,
        key text NOT NULL,
        id bigint,
        digest text NOT NULL,
        payload text NOT NULL,
        prune boolean NOT NULL,
        revision text NOT NULL,
        applied_at text NOT NULL,
        names text[] NOT NULL DEFAULT '{}',
        PRIMARY KEY (tenant, name, kind, key),
        FOREIGN KEY (tenant, name) REFERENCES immuta_gitops_states ON DELETE CASCADE
    );
    CREATE TABLE immuta_gitops_journal (
        seq bigserial PRIMARY KEY,
        tenant text NOT NULL,
        name text NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT now(),
        holder text NOT NULL,
        op text NOT NULL,
        kind text,
        key text,
        detail text,
        FOREIGN KEY (tenant, name) REFERENCES immuta_gitops_states ON DELETE CASCADE
    );
    CREATE INDEX immuta_gitops_journal_state ON immuta_gitops_journal (tenant, name, seq);
    CREATE TABLE immuta_gitops_locks (
        tenant text NOT NULL,
        name text NOT NULL,
        holder text NOT NULL,
        backend_pid integer NOT NULL,
        acquired_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant, name)
    );",
    // 2: the repository's safety settings as last applied (`State::safety`, JSON).
    "ALTER TABLE immuta_gitops_states ADD COLUMN safety text;",
];

/// The first key of every advisory lock the tool takes (`IMGT`), so they stand apart from an
/// application's own locks on a shared database.
const LOCK_NAMESPACE: i32 = 0x494d_4754;
/// The second key of the lock that serialises migrations.
const MIGRATION_LOCK: i32 = 0;
/// How long one database operation may take before the state fails closed.
const OP_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a lock holder checks that its session is alive.
const HEALTH_EVERY: Duration = Duration::from_secs(2);
/// How long that check may take.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);
/// Journal rows kept per state (older ones are trimmed after an apply).
const JOURNAL_KEPT: i64 = 10_000;

/// PostgreSQL state errors. None holds the password.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `--state` is not a URL the client understands.
    #[error("--state `{url}` is not a PostgreSQL URL: {message}")]
    Url {
        /// The URL, shown without a password.
        url: String,
        /// What is wrong.
        message: String,
    },
    /// A password in the URL: it would show in process lists, logs and shell histories.
    #[error(
        "--state {url}: the URL holds a password; put it in IMMUTA_GITOPS_STATE_PASSWORD or pass \
         --state-password-file FILE instead"
    )]
    PasswordInUrl {
        /// The URL without the password.
        url: String,
    },
    /// `sslmode=require` or stricter.
    #[error(
        "{url}: TLS to PostgreSQL is not built into immuta-gitops; use sslmode=disable or prefer \
         on a trusted network, or reach the database through a TLS proxy (e.g. a cloud SQL proxy \
         sidecar)"
    )]
    Tls {
        /// The database.
        url: String,
    },
    /// A database call failed.
    #[error("PostgreSQL state at {url}: {what}: {message}")]
    Db {
        /// The database.
        url: String,
        /// What was being done.
        what: &'static str,
        /// The cause (password scrubbed).
        message: String,
    },
    /// A database call did not answer in time.
    #[error("PostgreSQL state at {url}: {what}: no answer within {}s", OP_TIMEOUT.as_secs())]
    Timeout {
        /// The database.
        url: String,
        /// What was being done.
        what: &'static str,
    },
    /// The schema is newer than this build.
    #[error(
        "PostgreSQL state at {url}: the schema has version {found}; this immuta-gitops knows up \
         to {known}: upgrade immuta-gitops"
    )]
    Schema {
        /// The database.
        url: String,
        /// The version found.
        found: i32,
        /// The newest this build knows.
        known: usize,
    },
    /// A row that this build cannot read.
    #[error("PostgreSQL state at {url}: {message}")]
    Corrupt {
        /// The database.
        url: String,
        /// What is wrong.
        message: String,
    },
    /// A write without the writer lock.
    #[error("PostgreSQL state at {url}: refusing to record without the writer lock")]
    NotLocked {
        /// The database.
        url: String,
    },
}

/// Result alias of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An open connection.
struct Conn {
    client: Client,
    /// Cancelled when the connection ends.
    closed: CancellationToken,
}

/// What the store and its lock share.
struct Inner {
    config: tokio_postgres::Config,
    /// `postgres://user@host:port/db`.
    shown: String,
    /// The password, to scrub from messages.
    password: Option<String>,
    tenant: String,
    name: String,
    holder: String,
    conn: Mutex<Option<Conn>>,
    /// Whether this store's session holds the writer lock.
    locked: AtomicBool,
    /// Whether the schema is known to be current (migrated by this process, or found so).
    migrated: AtomicBool,
}

/// A state in PostgreSQL, with its own connection (which also holds the writer lock).
pub struct PgStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("url", &self.inner.shown)
            .field("tenant", &self.inner.tenant)
            .field("name", &self.inner.name)
            .finish()
    }
}

/// `url` as messages show it: scheme, user, hosts, ports and database; never a password or
/// parameters.
pub fn shown_url(config: &tokio_postgres::Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                Host::Tcp(h) => h.clone(),
                Host::Unix(p) => p.display().to_string(),
            };
            match config.get_ports().get(i).or(config.get_ports().first()) {
                Some(port) => format!("{host}:{port}"),
                None => host,
            }
        })
        .collect();
    let user = config.get_user().map(|u| format!("{u}@")).unwrap_or_default();
    let db = config.get_dbname().unwrap_or_default();
    format!("postgres://{user}{}/{db}", hosts.join(","))
}

/// `url` with any `:password@` removed, for the error that refuses it.
fn without_password(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}@{}", &url[..scheme + 3], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// The advisory lock keys of one state.
fn lock_key(tenant: &str, name: &str) -> (i32, i32) {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{tenant}\0{name}"));
    let key = i32::from_be_bytes([digest[0] & 0x7f, digest[1], digest[2], digest[3]]);
    (LOCK_NAMESPACE, key)
}

fn kind_of(text: &str) -> Option<Kind> {
    Kind::ALL.into_iter().find(|k| k.as_str() == text)
}

impl Inner {
    fn db(&self, what: &'static str) -> impl Fn(tokio_postgres::Error) -> Error + '_ {
        move |e| {
            let mut message = e.to_string();
            if let Some(source) = std::error::Error::source(&e) {
                let source = source.to_string();
                if !message.contains(&source) {
                    message = format!("{message}: {source}");
                }
            }
            if let Some(pw) = self.password.as_deref().filter(|p| !p.is_empty()) {
                message = message.replace(pw, "(password)");
            }
            Error::Db { url: self.shown.clone(), what, message }
        }
    }

    async fn timed<T>(&self, what: &'static str, f: impl Future<Output = Result<T>>) -> Result<T> {
        tokio::time::timeout(OP_TIMEOUT, f)
            .await
            .map_err(|_| Error::Timeout { url: self.shown.clone(), what })?
    }

    /// A new connection with the session settings, and its driver task.
    async fn connect(&self) -> Result<Conn> {
        let (client, connection) = self
            .timed("connecting", async {
                self.config.connect(NoTls).await.map_err(self.db("connecting"))
            })
            .await?;
        let closed = CancellationToken::new();
        let on_close = closed.clone();
        let shown = self.shown.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(database = %shown, "the PostgreSQL connection ended: {e}");
            }
            on_close.cancel();
        });
        // The server drops a dead client's session (and so its lock) within about 11 s.
        client
            .batch_execute(
                "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; \
                 SET tcp_keepalives_count = 3; SET idle_in_transaction_session_timeout = '60s'",
            )
            .await
            .map_err(self.db("setting up the session"))?;
        Ok(Conn { client, closed })
    }

    /// The connection, connecting (again) when there is none or it ended. A session that held
    /// the lock and ended is not replaced behind the holder's back: that is [`store::Error::LockLost`].
    async fn conn(&self) -> store::Result<tokio::sync::MutexGuard<'_, Option<Conn>>> {
        let mut guard = self.conn.lock().await;
        let alive =
            guard.as_ref().is_some_and(|c| !c.closed.is_cancelled() && !c.client.is_closed());
        if !alive {
            if self.locked.swap(false, Ordering::SeqCst) {
                *guard = None;
                return Err(store::Error::LockLost {
                    state: self.describe(),
                    reason: "the database connection ended".into(),
                });
            }
            *guard = Some(self.connect().await?);
        }
        Ok(guard)
    }

    fn describe(&self) -> String {
        format!("the PostgreSQL state `{}` of {} at {}", self.name, self.tenant, self.shown)
    }

    async fn migrate(&self, client: &mut Client) -> Result<()> {
        let tx = client.transaction().await.map_err(self.db("migrating the schema"))?;
        tx.execute("SELECT pg_advisory_xact_lock($1, $2)", &[&LOCK_NAMESPACE, &MIGRATION_LOCK])
            .await
            .map_err(self.db("migrating the schema"))?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS immuta_gitops_schema (
                version integer PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT now()
            )",
        )
        .await
        .map_err(self.db("migrating the schema"))?;
        let row = tx
            .query_one("SELECT coalesce(max(version), 0) FROM immuta_gitops_schema", &[])
            .await
            .map_err(self.db("reading the schema version"))?;
        let found: i32 = row.get(0);
        let current = usize::try_from(found).unwrap_or(0);
        if current > MIGRATIONS.len() {
            return Err(Error::Schema { url: self.shown.clone(), found, known: MIGRATIONS.len() });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
            tx.batch_execute(sql).await.map_err(self.db("migrating the schema"))?;
            let version = i32::try_from(i + 1).unwrap_or(i32::MAX);
            tx.execute("INSERT INTO immuta_gitops_schema (version) VALUES ($1)", &[&version])
                .await
                .map_err(self.db("migrating the schema"))?;
            tracing::info!(database = %self.shown, version, "migrated the state schema");
        }
        tx.commit().await.map_err(self.db("migrating the schema"))
    }
}

/// The schema version of the database: `None` when it has no schema yet.
async fn schema_version(client: &Client, inner: &Inner) -> Result<Option<i32>> {
    let row = client
        .query_one("SELECT to_regclass('immuta_gitops_schema') IS NOT NULL", &[])
        .await
        .map_err(inner.db("reading the schema version"))?;
    if !row.get::<_, bool>(0) {
        return Ok(None);
    }
    let row = client
        .query_one("SELECT coalesce(max(version), 0) FROM immuta_gitops_schema", &[])
        .await
        .map_err(inner.db("reading the schema version"))?;
    let found: i32 = row.get(0);
    if usize::try_from(found).unwrap_or(0) > MIGRATIONS.len() {
        return Err(Error::Schema { url: inner.shown.clone(), found, known: MIGRATIONS.len() });
    }
    Ok(Some(found))
}

impl PgStore {
    /// Connects to the database `url` for the state of `target` (tenant and name), creating or
    /// migrating the schema.
    pub async fn connect(target: &store::Target, url: &str) -> Result<PgStore> {
        let mut config = tokio_postgres::Config::from_str(url)
            .map_err(|e| Error::Url { url: without_password(url), message: e.to_string() })?;
        if config.get_password().is_some() {
            return Err(Error::PasswordInUrl { url: without_password(url) });
        }
        let shown = shown_url(&config);
        if matches!(config.get_ssl_mode(), SslMode::Require) {
            return Err(Error::Tls { url: shown });
        }
        let password = target.password.as_ref().map(|p| p.expose_secret().to_owned());
        if let Some(p) = &password {
            config.password(p.as_str());
        }
        config
            .application_name(format!("immuta-gitops {}", target.holder))
            .connect_timeout(Duration::from_secs(10))
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(5))
            .keepalives_interval(Duration::from_secs(2))
            .keepalives_retries(3);
        let inner = Inner {
            config,
            shown,
            password,
            tenant: target.tenant.clone(),
            name: target.name.clone(),
            holder: target.holder.clone(),
            conn: Mutex::new(None),
            locked: AtomicBool::new(false),
            migrated: AtomicBool::new(false),
        };
        // Connect now, so that a wrong URL or password is told at once.
        let conn = inner.connect().await?;
        *inner.conn.lock().await = Some(conn);
        Ok(PgStore { inner: Arc::new(inner) })
    }

    /// The database as messages show it.
    pub fn url(&self) -> &str {
        &self.inner.shown
    }

    /// The names of the states in the database: `(tenant, name, objects, updated_at)`.
    pub async fn states(&self) -> store::Result<Vec<(String, String, i64, String)>> {
        let inner = &self.inner;
        let guard = inner.conn().await?;
        let Some(conn) = guard.as_ref() else { return Ok(Vec::new()) };
        if schema_version(&conn.client, inner).await?.is_none() {
            return Ok(Vec::new());
        }
        let rows = inner
            .timed("listing the states", async {
                conn.client
                    .query(
                        "SELECT s.tenant, s.name, \
                         (SELECT count(*) FROM immuta_gitops_objects o \
                          WHERE o.tenant = s.tenant AND o.name = s.name), \
                         to_char(s.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') \
                         FROM immuta_gitops_states s ORDER BY 1, 2",
                        &[],
                    )
                    .await
                    .map_err(inner.db("listing the states"))
            })
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))).collect())
    }

    async fn load_state(&self) -> store::Result<Option<State>> {
        let inner = &self.inner;
        let guard = inner.conn().await?;
        let Some(conn) = guard.as_ref() else { return Ok(None) };
        let (tenant, name) = (&inner.tenant, &inner.name);
        let state = inner
            .timed("reading the state", async {
                if schema_version(&conn.client, inner).await?.is_none() {
                    return Ok(None); // no schema: nothing was ever applied here
                }
                let head = conn
                    .client
                    .query_opt(
                        "SELECT version, serial, revision, key_id, salt, safety FROM immuta_gitops_states \
                         WHERE tenant = $1 AND name = $2",
                        &[tenant, name],
                    )
                    .await
                    .map_err(inner.db("reading the state"))?;
                let Some(head) = head else { return Ok(None) };
                let version: i32 = head.get(0);
                if u32::try_from(version).map_or(true, |v| v > STATE_VERSION) {
                    return Err(Error::Corrupt {
                        url: inner.shown.clone(),
                        message: format!(
                            "the state has format version {version}; this immuta-gitops \
                             understands {STATE_VERSION}: upgrade immuta-gitops"
                        ),
                    });
                }
                let rows = conn
                    .client
                    .query(
                        "SELECT kind, key, id, digest, payload, prune, revision, applied_at, names \
                         FROM immuta_gitops_objects WHERE tenant = $1 AND name = $2",
                        &[tenant, name],
                    )
                    .await
                    .map_err(inner.db("reading the state"))?;
                let mut objects = Vec::with_capacity(rows.len());
                for row in &rows {
                    let kind: &str = row.get(0);
                    let key: String = row.get(1);
                    let corrupt = |message: String| Error::Corrupt {
                        url: inner.shown.clone(),
                        message: format!("object {kind} {key:?}: {message}"),
                    };
                    let Some(kind_value) = kind_of(kind) else {
                        return Err(corrupt("unknown kind".into()));
                    };
                    let payload: &str = row.get(4);
                    let payload: serde_json::Value =
                        serde_json::from_str(payload).map_err(|e| corrupt(e.to_string()))?;
                    objects.push(Entry {
                        kind: kind_value,
                        key,
                        id: row.get(2),
                        digest: row.get(3),
                        payload: Arc::new(payload),
                        prune: row.get(5),
                        revision: row.get(6),
                        applied_at: row.get(7),
                        names: row.get(8),
                    });
                }
                objects.sort_by(|a, b| (a.kind, &a.key).cmp(&(b.kind, &b.key)));
                Ok(Some(State {
                    version: STATE_VERSION,
                    tenant: tenant.clone(),
                    salt: head.get(4),
                    key_id: head.get(3),
                    serial: u64::try_from(head.get::<_, i64>(1)).unwrap_or(0),
                    revision: head.get(2),
                    objects,
                    safety: head
                        .get::<_, Option<String>>(5)
                        .map(|text| {
                            serde_json::from_str(&text).map_err(|e| Error::Corrupt {
                                url: inner.shown.clone(),
                                message: format!("the recorded safety settings are unreadable: {e}"),
                            })
                        })
                        .transpose()?,
                }))
            })
            .await?;
        Ok(state)
    }

    /// The conn of a writer: the lock must be held by this session.
    async fn writer(&self) -> store::Result<tokio::sync::MutexGuard<'_, Option<Conn>>> {
        let inner = &self.inner;
        if !inner.locked.load(Ordering::SeqCst) {
            return Err(Error::NotLocked { url: inner.shown.clone() }.into());
        }
        inner.conn().await
    }

    async fn create_state(&self, state: &State) -> store::Result<()> {
        let inner = &self.inner;
        let mut guard = self.writer().await?;
        let Some(conn) = guard.as_mut() else { return Ok(()) };
        inner
            .timed("creating the state", async {
                let tx = conn.client.transaction().await.map_err(inner.db("creating the state"))?;
                write_head(&tx, inner, state).await?;
                journal(&tx, inner, "create", None, None, Some(&state.tenant)).await?;
                tx.commit().await.map_err(inner.db("creating the state"))
            })
            .await?;
        Ok(())
    }

    async fn record_one(&self, record: &Record) -> store::Result<()> {
        let inner = &self.inner;
        let mut guard = self.writer().await?;
        let Some(conn) = guard.as_mut() else { return Ok(()) };
        let (tenant, name) = (&inner.tenant, &inner.name);
        inner
            .timed("recording progress", async {
                let what = "recording progress";
                let tx = conn.client.transaction().await.map_err(inner.db(what))?;
                match record {
                    Record::Upsert { entry } => {
                        insert_objects(&tx, inner, std::slice::from_ref(entry)).await?;
                        let kind = entry.kind.as_str();
                        journal(
                            &tx,
                            inner,
                            "upsert",
                            Some(kind),
                            Some(&entry.key),
                            Some(&entry.digest),
                        )
                        .await?;
                    }
                    Record::Remove { kind, key } => {
                        tx.execute(
                            "DELETE FROM immuta_gitops_objects \
                             WHERE tenant = $1 AND name = $2 AND kind = $3 AND key = $4",
                            &[tenant, name, &kind.as_str(), key],
                        )
                        .await
                        .map_err(inner.db(what))?;
                        journal(&tx, inner, "remove", Some(kind.as_str()), Some(key), None).await?;
                    }
                    Record::Revision { revision } => {
                        tx.execute(
                            "UPDATE immuta_gitops_states SET revision = $3 \
                             WHERE tenant = $1 AND name = $2",
                            &[tenant, name, revision],
                        )
                        .await
                        .map_err(inner.db(what))?;
                        journal(&tx, inner, "revision", None, None, Some(revision)).await?;
                    }
                    Record::Safety { settings } => {
                        let text = safety_text(Some(settings));
                        tx.execute(
                            "UPDATE immuta_gitops_states SET safety = $3 \
                             WHERE tenant = $1 AND name = $2",
                            &[tenant, name, &text],
                        )
                        .await
                        .map_err(inner.db(what))?;
                        journal(&tx, inner, "safety", None, None, text.as_deref()).await?;
                    }
                    Record::Key { key_id } => {
                        tx.execute(
                            "UPDATE immuta_gitops_states SET key_id = $3, version = $4 \
                             WHERE tenant = $1 AND name = $2",
                            &[tenant, name, key_id, &(STATE_VERSION as i32)],
                        )
                        .await
                        .map_err(inner.db(what))?;
                        journal(&tx, inner, "key", None, None, Some(key_id)).await?;
                    }
                }
                let bumped = tx
                    .execute(
                        "UPDATE immuta_gitops_states SET serial = serial + 1, updated_at = now() \
                         WHERE tenant = $1 AND name = $2",
                        &[tenant, name],
                    )
                    .await
                    .map_err(inner.db(what))?;
                if bumped != 1 {
                    return Err(Error::Corrupt {
                        url: inner.shown.clone(),
                        message: format!("the state `{name}` of {tenant} is gone"),
                    });
                }
                tx.commit().await.map_err(inner.db(what))
            })
            .await?;
        Ok(())
    }

    async fn trim_journal(&self) -> store::Result<()> {
        let inner = &self.inner;
        let guard = self.writer().await?;
        let Some(conn) = guard.as_ref() else { return Ok(()) };
        inner
            .timed("trimming the journal", async {
                conn.client
                    .execute(
                        "DELETE FROM immuta_gitops_journal WHERE tenant = $1 AND name = $2 AND seq <= \
                         (SELECT max(seq) FROM immuta_gitops_journal WHERE tenant = $1 AND name = $2) - $3",
                        &[&inner.tenant, &inner.name, &JOURNAL_KEPT],
                    )
                    .await
                    .map_err(inner.db("trimming the journal"))
            })
            .await?;
        Ok(())
    }

    async fn replace_state(&self, state: &State) -> store::Result<()> {
        let inner = &self.inner;
        let mut guard = self.writer().await?;
        let Some(conn) = guard.as_mut() else { return Ok(()) };
        inner
            .timed("writing the state", async {
                let what = "writing the state";
                let tx = conn.client.transaction().await.map_err(inner.db(what))?;
                write_head(&tx, inner, state).await?;
                tx.execute(
                    "DELETE FROM immuta_gitops_objects WHERE tenant = $1 AND name = $2",
                    &[&inner.tenant, &inner.name],
                )
                .await
                .map_err(inner.db(what))?;
                for chunk in state.objects.chunks(2_000) {
                    insert_objects(&tx, inner, chunk).await?;
                }
                let count = state.objects.len().to_string();
                journal(&tx, inner, "replace", None, None, Some(&count)).await?;
                tx.commit().await.map_err(inner.db(what))
            })
            .await?;
        Ok(())
    }

    async fn lock(&self) -> store::Result<store::Lock> {
        let inner = &self.inner;
        let mut guard = inner.conn().await?;
        let Some(conn) = guard.as_mut() else {
            return Err(store::Error::LockLost {
                state: inner.describe(),
                reason: "no connection".into(),
            });
        };
        // A writer: the schema is created or migrated now (once per process).
        if !inner.migrated.load(Ordering::SeqCst) {
            inner.timed("migrating the schema", inner.migrate(&mut conn.client)).await?;
            inner.migrated.store(true, Ordering::SeqCst);
        }
        let conn = &*conn;
        let (k1, k2) = lock_key(&inner.tenant, &inner.name);
        let got: bool = inner
            .timed("taking the writer lock", async {
                conn.client
                    .query_one("SELECT pg_try_advisory_lock($1, $2)", &[&k1, &k2])
                    .await
                    .map(|r| r.get(0))
                    .map_err(inner.db("taking the writer lock"))
            })
            .await?;
        if !got {
            let holder = inner
                .timed("naming the lock holder", async {
                    let row = conn
                        .client
                        .query_opt(
                            "SELECT coalesce(k.holder, 'database session ' || l.pid) \
                             FROM pg_locks l LEFT JOIN immuta_gitops_locks k \
                               ON k.backend_pid = l.pid AND k.tenant = $3 AND k.name = $4 \
                             WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 \
                               AND l.classid::bigint = $1 AND l.objid::bigint = $2 LIMIT 1",
                            &[&i64::from(k1), &i64::from(k2), &inner.tenant, &inner.name],
                        )
                        .await
                        .map_err(inner.db("naming the lock holder"))?;
                    Ok(row.map(|r| r.get::<_, String>(0)))
                })
                .await?;
            return Err(store::Error::Locked {
                state: inner.describe(),
                holder: holder.unwrap_or_else(|| "another process (it just let go: retry)".into()),
            });
        }
        inner
            .timed("naming the lock holder", async {
                conn.client
                    .execute(
                        "INSERT INTO immuta_gitops_locks (tenant, name, holder, backend_pid) \
                         VALUES ($1, $2, $3, pg_backend_pid()) ON CONFLICT (tenant, name) DO UPDATE \
                         SET holder = $3, backend_pid = pg_backend_pid(), acquired_at = now()",
                        &[&inner.tenant, &inner.name, &inner.holder],
                    )
                    .await
                    .map_err(inner.db("naming the lock holder"))
            })
            .await?;
        inner.locked.store(true, Ordering::SeqCst);
        let lost = CancellationToken::new();
        let stop = CancellationToken::new();
        tokio::spawn(watch_session(
            Arc::clone(&self.inner),
            conn.closed.clone(),
            lost.clone(),
            stop.clone(),
        ));
        drop(guard);
        let held = Held { inner: Arc::clone(&self.inner), stop, keys: (k1, k2) };
        Ok(store::Lock::new(Box::new(held), lost))
    }
}

/// The lock holder's watch: the lock is lost when the session ends or stops answering.
async fn watch_session(
    inner: Arc<Inner>,
    closed: CancellationToken,
    lost: CancellationToken,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = closed.cancelled() => break,
            () = tokio::time::sleep(HEALTH_EVERY) => {}
        }
        // Waiting for the connection is not a failure (a record holds it, under its own
        // timeout); a check that gets no answer is.
        let guard = inner.conn.lock().await;
        let alive = match guard.as_ref() {
            Some(c) => tokio::time::timeout(HEALTH_TIMEOUT, c.client.simple_query("SELECT 1"))
                .await
                .is_ok_and(|answer| answer.is_ok()),
            None => false,
        };
        drop(guard);
        if !alive {
            break;
        }
    }
    if stop.is_cancelled() {
        return;
    }
    tracing::warn!(state = %inner.describe(), "lost the writer lock: the database session ended");
    // Whatever state the session is in, it holds no lock any more for the writer's purposes.
    if let Ok(mut guard) = tokio::time::timeout(HEALTH_TIMEOUT, inner.conn.lock()).await {
        *guard = None;
    }
    inner.locked.store(false, Ordering::SeqCst);
    lost.cancel();
}

/// The held lock: dropping it lets go.
struct Held {
    inner: Arc<Inner>,
    stop: CancellationToken,
    keys: (i32, i32),
}

impl Drop for Held {
    fn drop(&mut self) {
        self.stop.cancel();
        if !self.inner.locked.swap(false, Ordering::SeqCst) {
            return;
        }
        let inner = Arc::clone(&self.inner);
        let (k1, k2) = self.keys;
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let guard = inner.conn.lock().await;
                if let Some(c) = guard.as_ref() {
                    let _ =
                        c.client.execute("SELECT pg_advisory_unlock($1, $2)", &[&k1, &k2]).await;
                }
            });
        }
    }
}

async fn write_head(
    tx: &tokio_postgres::Transaction<'_>,
    inner: &Inner,
    state: &State,
) -> Result<()> {
    let serial = i64::try_from(state.serial).unwrap_or(i64::MAX);
    tx.execute(
        "INSERT INTO immuta_gitops_states \
         (tenant, name, version, serial, revision, key_id, salt, safety) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (tenant, name) DO UPDATE SET \
         version = $3, serial = $4, revision = $5, key_id = $6, salt = $7, safety = $8, \
         updated_at = now()",
        &[
            &inner.tenant,
            &inner.name,
            &(STATE_VERSION as i32),
            &serial,
            &state.revision,
            &state.key_id,
            &state.salt,
            &safety_text(state.safety.as_ref()),
        ],
    )
    .await
    .map_err(inner.db("writing the state"))?;
    Ok(())
}

/// The safety settings as stored (JSON text).
fn safety_text(settings: Option<&super::SafetySettings>) -> Option<String> {
    settings.and_then(|s| serde_json::to_string(s).ok())
}

/// Upserts `entries` in one statement.
async fn insert_objects(
    tx: &tokio_postgres::Transaction<'_>,
    inner: &Inner,
    entries: &[Entry],
) -> Result<()> {
    let kinds: Vec<&str> = entries.iter().map(|e| e.kind.as_str()).collect();
    let keys: Vec<&str> = entries.iter().map(|e| e.key.as_str()).collect();
    let ids: Vec<Option<i64>> = entries.iter().map(|e| e.id).collect();
    let digests: Vec<&str> = entries.iter().map(|e| e.digest.as_str()).collect();
    let payloads: Vec<String> = entries.iter().map(|e| e.payload.to_string()).collect();
    let prunes: Vec<bool> = entries.iter().map(|e| e.prune).collect();
    let revisions: Vec<&str> = entries.iter().map(|e| e.revision.as_str()).collect();
    let applied: Vec<&str> = entries.iter().map(|e| e.applied_at.as_str()).collect();
    // Arrays of arrays cannot be unnested: names travel as JSON text.
    let names: Vec<String> = entries
        .iter()
        .map(|e| serde_json::to_string(&e.names).unwrap_or_else(|_| "[]".into()))
        .collect();
    tx.execute(
        "INSERT INTO immuta_gitops_objects \
         (tenant, name, kind, key, id, digest, payload, prune, revision, applied_at, names) \
         SELECT $1, $2, k, ky, i, d, p, pr, r, a, \
           ARRAY(SELECT jsonb_array_elements_text(n::jsonb)) \
         FROM unnest($3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::bool[], \
                     $9::text[], $10::text[], $11::text[]) AS u(k, ky, i, d, p, pr, r, a, n) \
         ON CONFLICT (tenant, name, kind, key) DO UPDATE SET id = excluded.id, \
           digest = excluded.digest, payload = excluded.payload, prune = excluded.prune, \
           revision = excluded.revision, applied_at = excluded.applied_at, names = excluded.names",
        &[
            &inner.tenant,
            &inner.name,
            &kinds,
            &keys,
            &ids,
            &digests,
            &payloads,
            &prunes,
            &revisions,
            &applied,
            &names,
        ],
    )
    .await
    .map_err(inner.db("writing objects"))?;
    Ok(())
}

async fn journal(
    tx: &tokio_postgres::Transaction<'_>,
    inner: &Inner,
    op: &str,
    kind: Option<&str>,
    key: Option<&str>,
    detail: Option<&str>,
) -> Result<()> {
    tx.execute(
        "INSERT INTO immuta_gitops_journal (tenant, name, holder, op, kind, key, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[&inner.tenant, &inner.name, &inner.holder, &op, &kind, &key, &detail],
    )
    .await
    .map_err(inner.db("journaling"))?;
    Ok(())
}

impl store::Store for PgStore {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn is_shared(&self) -> bool {
        true
    }

    fn load(&self) -> BoxFuture<'_, store::Result<Option<State>>> {
        Box::pin(self.load_state())
    }

    fn begin(&self) -> BoxFuture<'_, store::Result<Option<State>>> {
        // Every record was a transaction: there is nothing to fold in.
        Box::pin(self.load_state())
    }

    fn create<'a>(&'a self, state: &'a State) -> BoxFuture<'a, store::Result<()>> {
        Box::pin(self.create_state(state))
    }

    fn record<'a>(&'a self, record: &'a Record) -> BoxFuture<'a, store::Result<()>> {
        Box::pin(self.record_one(record))
    }

    fn compact<'a>(&'a self, _state: &'a State) -> BoxFuture<'a, store::Result<()>> {
        Box::pin(self.trim_journal())
    }

    fn replace<'a>(&'a self, state: &'a State) -> BoxFuture<'a, store::Result<()>> {
        Box::pin(self.replace_state(state))
    }

    fn try_lock(&self) -> BoxFuture<'_, store::Result<store::Lock>> {
        Box::pin(self.lock())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_passwords() {
        let config =
            tokio_postgres::Config::from_str("postgres://app@db.example:6432/gitops").unwrap();
        assert_eq!(shown_url(&config), "postgres://app@db.example:6432/gitops");
        assert_eq!(
            without_password("postgresql://app:s3cret@db/gitops?sslmode=disable"),
            "postgresql://app@db/gitops?sslmode=disable"
        );
        assert_eq!(without_password("postgres://db/gitops"), "postgres://db/gitops");
    }

    #[test]
    fn lock_keys_differ_by_tenant_and_name_and_stay_in_the_namespace() {
        let a = lock_key("https://a.example", "default");
        assert_eq!(a.0, LOCK_NAMESPACE);
        assert!(a.1 >= 0);
        assert_ne!(a, lock_key("https://b.example", "default"));
        assert_ne!(a, lock_key("https://a.example", "other"));
        assert_eq!(a, lock_key("https://a.example", "default"));
    }

    #[tokio::test]
    async fn a_password_in_the_url_is_refused_without_showing_it() {
        let target = store::Target {
            location: store::Location::Postgres(String::new()),
            tenant: "t".into(),
            name: "default".into(),
            password: None,
            holder: "test".into(),
        };
        let err =
            PgStore::connect(&target, "postgres://app:hunter22@127.0.0.1:1/db").await.unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("IMMUTA_GITOPS_STATE_PASSWORD") && !text.contains("hunter22"),
            "{text}"
        );
        let err = PgStore::connect(&target, "postgres://app@127.0.0.1:1/db?sslmode=require")
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Tls { .. }), "{err}");
    }
}

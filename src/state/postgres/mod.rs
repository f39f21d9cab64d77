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

mod lock;
mod rows;
mod schema;

pub use schema::MIGRATIONS;
use schema::schema_version;

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
    use super::lock::lock_key;
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

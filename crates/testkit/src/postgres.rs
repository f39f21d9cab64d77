//! A real PostgreSQL for tests of the PostgreSQL state.
//!
//! [`server`] is the database server of the test process, started once:
//!
//! - the one `IMMUTA_GITOPS_TEST_DATABASE_URL` names (`postgres://user:password@host:port/db`;
//!   its password is split off and handed to the binary through the environment, as users do);
//! - otherwise a throw-away cluster made here with Debian's binaries
//!   (`/usr/lib/postgresql/*/bin/initdb` and `postgres`) in a temporary directory, listening on
//!   a free loopback port, with password authentication (SCRAM). As root, the binaries run as
//!   the unprivileged `postgres` user (`setpriv`), since PostgreSQL refuses to run as root. The
//!   server is started with a parent-death signal from a thread that lives as long as the test
//!   process, so it stops when the tests do, however they end.
//!
//! When neither is possible the tests **fail** with a message saying how to install PostgreSQL;
//! they never skip silently.
//!
//! [`TestDb::create`] gives each test a database of its own; [`Proxy`] is a loopback TCP proxy
//! that a test can cut and restore, to take the database away from a process mid-apply.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// The environment variable naming an external test database.
pub const URL_ENV: &str = "IMMUTA_GITOPS_TEST_DATABASE_URL";

/// How to get a PostgreSQL when there is none.
const INSTALL_HINT: &str = "the PostgreSQL state tests need a real PostgreSQL: install Debian's \
     package (`apt-get install -y postgresql`; .ci/run does), or set \
     IMMUTA_GITOPS_TEST_DATABASE_URL=postgres://user:password@host:port/db";

/// A database server the tests can reach.
#[derive(Debug)]
pub struct Server {
    /// `host:port`.
    pub addr: SocketAddr,
    /// The user.
    pub user: String,
    /// The password (never in a URL given to the binary).
    pub password: Option<String>,
    /// The database to connect to for administration.
    pub admin_db: String,
    /// Whether each test may create a database of its own.
    can_create: Mutex<Option<bool>>,
}

/// The server of this test process (started at the first call). Panics with how to install
/// PostgreSQL when there is none.
pub fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| match std::env::var(URL_ENV) {
        Ok(url) if !url.trim().is_empty() => external(&url),
        _ => {
            start_cluster().unwrap_or_else(|e| panic!("{INSTALL_HINT}\n(starting one failed: {e})"))
        }
    })
}

fn external(url: &str) -> Server {
    let config = tokio_postgres::Config::from_str(url)
        .unwrap_or_else(|e| panic!("{URL_ENV} is not a PostgreSQL URL: {e}"));
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => panic!("{URL_ENV} must name a TCP host"),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
        .ok()
        .and_then(|mut a| a.next())
        .unwrap_or_else(|| panic!("{URL_ENV}: cannot resolve {host}"));
    Server {
        addr,
        user: config.get_user().unwrap_or("postgres").to_owned(),
        password: config.get_password().map(|p| String::from_utf8_lossy(p).into_owned()),
        admin_db: config.get_dbname().unwrap_or("postgres").to_owned(),
        can_create: Mutex::new(None),
    }
}

/// Debian's newest PostgreSQL binaries.
fn binaries() -> Result<PathBuf, String> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| format!("/usr/lib/postgresql: {e}"))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).ok_or_else(|| "no /usr/lib/postgresql/*/bin/initdb".into())
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// uid and gid of `user`.
fn ids(user: &str) -> Option<(u32, u32)> {
    let out = Command::new("id").args(["-u", user]).output().ok()?;
    let uid = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    let out = Command::new("id").args(["-g", user]).output().ok()?;
    let gid = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    Some((uid, gid))
}

/// A command for `program`, as the unprivileged `postgres` user when we are root.
fn as_postgres(program: &Path, death_signal: bool) -> Result<Command, String> {
    if !is_root() {
        let mut cmd = if death_signal {
            let mut c = Command::new("setpriv");
            c.args(["--pdeathsig", "KILL", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        cmd.stdin(Stdio::null());
        return Ok(cmd);
    }
    if ids("postgres").is_none() {
        return Err("running as root, and there is no `postgres` user to run PostgreSQL as".into());
    }
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=postgres", "--regid=postgres", "--init-groups"]);
    if death_signal {
        cmd.args(["--pdeathsig", "KILL"]);
    }
    cmd.arg("--").arg(program).stdin(Stdio::null());
    Ok(cmd)
}

/// Removes the clusters of test processes that are gone.
fn sweep(root: &Path) {
    for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix("cluster-").and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn start_cluster() -> Result<Server, String> {
    let bin = binaries()?;
    let root = std::env::temp_dir().join("immuta-gitops-test-postgres");
    std::fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
    sweep(&root);
    let dir = root.join(format!("cluster-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let password = format!("pw-{}", std::process::id());
    std::fs::write(dir.join("pwfile"), format!("{password}\n")).map_err(|e| e.to_string())?;
    if is_root() {
        let (uid, gid) = ids("postgres").ok_or("no `postgres` user")?;
        for path in [root.as_path(), dir.as_path(), &dir.join("pwfile")] {
            std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(|e| e.to_string())?;
        }
    }
    let data = dir.join("data");
    let out = as_postgres(&bin.join("initdb"), false)?
        .arg("-D")
        .arg(&data)
        .args(["-U", "postgres", "-A", "scram-sha-256", "--no-sync", "-E", "UTF8"])
        .arg(format!("--pwfile={}", dir.join("pwfile").display()))
        .output()
        .map_err(|e| format!("initdb: {e}"))?;
    if !out.status.success() {
        return Err(format!("initdb failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let mut cmd = as_postgres(&bin.join("postgres"), true)?;
    cmd.arg("-D")
        .arg(&data)
        .args(["-p", &port.to_string(), "-k"])
        .arg(&dir)
        .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off"])
        .args(["-c", "max_connections=200", "-c", "shared_buffers=32MB"])
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("server.log")).map_err(|e| e.to_string())?,
        ));
    // The parent-death signal fires when the thread that started the server ends: start it
    // from a thread that never ends.
    let (tx, rx) = std::sync::mpsc::channel::<Result<(), String>>();
    std::thread::spawn(move || {
        let child: Result<Child, _> = cmd.spawn();
        match child {
            Ok(child) => {
                let _ = tx.send(Ok(()));
                let _keep = child;
                loop {
                    std::thread::park();
                }
            }
            Err(e) => {
                let _ = tx.send(Err(format!("starting postgres: {e}")));
            }
        }
    });
    rx.recv().map_err(|e| e.to_string())??;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(addr).is_err() {
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
            return Err(format!("postgres did not start listening:\n{log}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(Server {
        addr,
        user: "postgres".into(),
        password: Some(password),
        admin_db: "postgres".into(),
        can_create: Mutex::new(None),
    })
}

impl Server {
    /// A connection for administration (creating databases, looking at tables).
    pub async fn connect(&self, db: &str) -> tokio_postgres::Client {
        let mut config = tokio_postgres::Config::new();
        config
            .host(self.addr.ip().to_string())
            .port(self.addr.port())
            .user(&self.user)
            .dbname(db)
            .connect_timeout(Duration::from_secs(10));
        if let Some(p) = &self.password {
            config.password(p);
        }
        // Tests wait on the database through a server that is shared and slow to start.
        let mut tries = 0;
        loop {
            match config.connect(tokio_postgres::NoTls).await {
                Ok((client, conn)) => {
                    tokio::spawn(conn);
                    return client;
                }
                Err(e) if tries < 100 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("cannot connect to the test PostgreSQL at {}: {e}", self.addr),
            }
        }
    }
}

/// A database of one test.
#[derive(Debug, Clone)]
pub struct TestDb {
    /// Where the server is.
    pub addr: SocketAddr,
    /// The user.
    pub user: String,
    /// The database.
    pub name: String,
    /// The password.
    pub password: Option<String>,
}

impl TestDb {
    /// A new, empty database on [`server`] (or the given database itself, where the external
    /// server lets the test user create none).
    pub async fn create() -> TestDb {
        let server = server();
        let client = server.connect(&server.admin_db).await;
        let name = format!("gitops_{}", hex::encode(rand::random::<[u8; 6]>()));
        let allowed = *server.can_create.lock().unwrap_or_else(|e| e.into_inner());
        let created = allowed != Some(false)
            && client.batch_execute(&format!("CREATE DATABASE {name}")).await.is_ok();
        *server.can_create.lock().unwrap_or_else(|e| e.into_inner()) = Some(created);
        TestDb {
            addr: server.addr,
            user: server.user.clone(),
            name: if created { name } else { server.admin_db.clone() },
            password: server.password.clone(),
        }
    }

    /// The URL the binary is given (`--state`): no password in it.
    pub fn url(&self) -> String {
        self.url_at(self.addr)
    }

    /// The URL through another address (a [`Proxy`]).
    pub fn url_at(&self, addr: SocketAddr) -> String {
        format!("postgres://{}@{}/{}?sslmode=disable", self.user, addr, self.name)
    }

    /// The environment the binary needs for the password.
    pub fn env(&self) -> Vec<(String, String)> {
        self.password
            .iter()
            .map(|p| ("IMMUTA_GITOPS_STATE_PASSWORD".to_owned(), p.clone()))
            .collect()
    }

    /// An administration connection to this database.
    pub async fn client(&self) -> tokio_postgres::Client {
        server().connect(&self.name).await
    }
}

/// A loopback TCP proxy in front of the database that a test can cut (every connection closed,
/// new ones refused) and restore: the database "goes away" and comes back.
pub struct Proxy {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<Mutex<ProxyState>>,
    stop: CancellationToken,
}

struct ProxyState {
    down: bool,
    cut: CancellationToken,
}

impl Proxy {
    /// A proxy to `target` on `127.0.0.1:0`, serving on the current runtime.
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let state = Arc::new(Mutex::new(ProxyState { down: false, cut: CancellationToken::new() }));
        let stop = CancellationToken::new();
        let (shared, stopped) = (state.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = stopped.cancelled() => return,
                    a = listener.accept() => a,
                };
                let Ok((client, _)) = accepted else { continue };
                let cut = {
                    let s = shared.lock().unwrap_or_else(|e| e.into_inner());
                    if s.down {
                        continue; // dropped: refused
                    }
                    s.cut.clone()
                };
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(target).await else { return };
                    let (mut client, mut server) = (client, server);
                    tokio::select! {
                        () = cut.cancelled() => {}
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                    }
                });
            }
        });
        Proxy { addr, state, stop }
    }

    /// Closes every connection through the proxy and refuses new ones.
    pub fn cut(&self) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.down = true;
        s.cut.cancel();
    }

    /// Accepts connections again.
    pub fn restore(&self) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.down = false;
        s.cut = CancellationToken::new();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.cancel();
        self.cut();
    }
}

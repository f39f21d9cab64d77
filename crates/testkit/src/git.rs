//! Git fixtures: a work repository that commits and pushes to a bare repository, which
//! `git daemon` ([`GitDaemon`]) or Git's smart HTTP protocol ([`GitHttpServer`], `git
//! http-backend` behind a tiny HTTP server) serves on 127.0.0.1, or which is read through
//! `file://`; plus silent and always-401 servers for failure tests.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Runs `git` in `dir` with a fixed identity and no user or system configuration; panics with
/// git's stderr on failure. Returns stdout, trimmed.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .expect("run git");
    assert!(out.status.success(), "git {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A work repository (`work/`) whose `main` is pushed to a bare repository (`served/repo.git`)
/// that allows fetching reachable commits by id.
pub struct GitFixture {
    dir: tempfile::TempDir,
}

impl Default for GitFixture {
    fn default() -> Self {
        GitFixture::new()
    }
}

impl GitFixture {
    /// An empty work repository and an empty served repository.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let fixture = GitFixture { dir };
        std::fs::create_dir_all(fixture.work()).expect("mkdir work");
        std::fs::create_dir_all(fixture.served()).expect("mkdir served");
        git(&fixture.served(), &["init", "-q", "--bare"]);
        fixture.allow_fetch_by_id(true);
        git(&fixture.work(), &["init", "-q"]);
        git(
            &fixture.work(),
            &["remote", "add", "origin", fixture.served().to_str().expect("utf-8")],
        );
        fixture
    }

    /// The directory `git daemon` serves (`--base-path`).
    pub fn base_path(&self) -> PathBuf {
        self.dir.path().join("served")
    }

    /// The served bare repository.
    pub fn served(&self) -> PathBuf {
        self.base_path().join("repo.git")
    }

    /// The work repository.
    pub fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    /// Turns `uploadpack.allowReachableSHA1InWant` and `allowAnySHA1InWant` on or off.
    pub fn allow_fetch_by_id(&self, allow: bool) -> &Self {
        let value = if allow { "true" } else { "false" };
        git(&self.served(), &["config", "uploadpack.allowReachableSHA1InWant", value]);
        git(&self.served(), &["config", "uploadpack.allowAnySHA1InWant", value]);
        self
    }

    /// Writes `text` to `rel` in the work tree (creating directories).
    pub fn write(&self, rel: &str, text: impl AsRef<[u8]>) -> &Self {
        let path = self.work().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, text).expect("write");
        self
    }

    /// Creates the symlink `rel -> target` in the work tree.
    pub fn symlink(&self, rel: &str, target: &str) -> &Self {
        let path = self.work().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::os::unix::fs::symlink(target, path).expect("symlink");
        self
    }

    /// Removes `rel` from the work tree.
    pub fn remove(&self, rel: &str) -> &Self {
        std::fs::remove_file(self.work().join(rel)).expect("remove");
        self
    }

    /// Commits everything and pushes `main` (forced, so a rewritten history is pushed too).
    /// Returns the commit id.
    pub fn commit(&self, message: &str) -> String {
        git(&self.work(), &["add", "-A"]);
        git(&self.work(), &["commit", "-q", "--allow-empty", "-m", message]);
        git(&self.work(), &["push", "-q", "--force", "origin", "main"]);
        self.head()
    }

    /// Rewrites history: resets `main` to `rev` (keeping nothing of what came after).
    pub fn reset_hard(&self, rev: &str) -> &Self {
        git(&self.work(), &["reset", "-q", "--hard", rev]);
        self
    }

    /// Tags `HEAD` (annotated when `message` is given) and pushes the tag.
    pub fn tag(&self, name: &str, message: Option<&str>) -> &Self {
        match message {
            Some(m) => git(&self.work(), &["tag", "-a", name, "-m", m]),
            None => git(&self.work(), &["tag", name]),
        };
        git(&self.work(), &["push", "-q", "--force", "origin", &format!("refs/tags/{name}")]);
        self
    }

    /// The work repository's `HEAD` commit id.
    pub fn head(&self) -> String {
        git(&self.work(), &["rev-parse", "HEAD"])
    }
}

/// `git daemon` serving a directory on 127.0.0.1; killed on drop.
pub struct GitDaemon {
    child: Option<Child>,
    port: u16,
    base_path: PathBuf,
}

impl GitDaemon {
    /// Serves every repository under `base_path` (`--export-all`) and waits until the port
    /// accepts connections.
    pub fn serve(base_path: &Path) -> Self {
        for _ in 0..5 {
            let port = free_port();
            if let Some(child) = spawn_git_daemon(base_path, port) {
                return GitDaemon { child: Some(child), port, base_path: base_path.to_owned() };
            }
        }
        panic!("git daemon did not start");
    }

    /// Serves again on the same port after [`GitDaemon::kill`] (the server comes back).
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        // The port was ours a moment ago; retry briefly if the kernel has not released it.
        while Instant::now() < deadline {
            if let Some(child) = spawn_git_daemon(&self.base_path, self.port) {
                self.child = Some(child);
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("git daemon did not restart on port {}", self.port);
    }

    /// The `git://` URL of `repo` (a path under the base path).
    pub fn url(&self, repo: &str) -> String {
        format!("git://127.0.0.1:{}/{repo}", self.port)
    }

    /// Stops serving (the port then refuses connections).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts `git daemon` on `port`; `None` when it exits (the port is taken) or never listens.
fn spawn_git_daemon(base_path: &Path, port: u16) -> Option<Child> {
    // `git daemon` would run `git-daemon` as a child, which `kill` would not reach.
    let program = PathBuf::from(git(Path::new("."), &["--exec-path"])).join("git-daemon");
    let mut child = Command::new(&program)
        .arg(format!("--base-path={}", base_path.display()))
        .args(["--export-all", "--reuseaddr", "--informative-errors"])
        .args(["--listen=127.0.0.1", &format!("--port={port}")])
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn git daemon");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return None; // Lost the port to someone else.
        }
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return Some(child);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// A listener that accepts TCP connections (through the kernel's backlog) and never answers:
/// a server that hangs. Connections are reset when it is dropped.
pub struct SilentServer {
    listener: TcpListener,
}

impl SilentServer {
    /// Binds 127.0.0.1 on a free port.
    pub fn start() -> Self {
        SilentServer { listener: TcpListener::bind("127.0.0.1:0").expect("bind") }
    }

    /// The `git://` URL of a repository on it.
    pub fn url(&self) -> String {
        format!("git://127.0.0.1:{}/repo.git", self.listener.local_addr().expect("addr").port())
    }

    /// The `http://` URL of a repository on it.
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}/repo.git", self.listener.local_addr().expect("addr").port())
    }
}

/// An HTTP server that answers every request with `401 Unauthorized` (Basic), counting requests:
/// what a Git host does with a wrong token.
pub struct RejectingHttpServer {
    port: u16,
    requests: Arc<AtomicUsize>,
}

impl RejectingHttpServer {
    /// Starts serving on a free port of 127.0.0.1 (a background thread, for the test's lifetime).
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let counter = Arc::clone(&counter);
                std::thread::spawn(move || {
                    // Keep-alive: answer every request on the connection.
                    let mut pending = Vec::new();
                    let mut buf = [0u8; 4096];
                    loop {
                        while let Some(end) = find(&pending, b"\r\n\r\n") {
                            pending.drain(..end + 4);
                            counter.fetch_add(1, Ordering::SeqCst);
                            let response = "HTTP/1.1 401 Unauthorized\r\n\
                                WWW-Authenticate: Basic realm=\"git\"\r\n\
                                Content-Length: 0\r\n\r\n";
                            if stream.write_all(response.as_bytes()).is_err() {
                                return;
                            }
                        }
                        match stream.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => pending.extend_from_slice(&buf[..n]),
                        }
                    }
                });
            }
        });
        RejectingHttpServer { port, requests }
    }

    /// The URL of a repository on it, with `userinfo@` when given.
    pub fn url(&self, userinfo: Option<&str>) -> String {
        let userinfo = userinfo.map(|u| format!("{u}@")).unwrap_or_default();
        format!("http://{userinfo}127.0.0.1:{}/org/repo.git", self.port)
    }

    /// How many requests it has answered.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Git's smart HTTP protocol on 127.0.0.1: a small HTTP/1.1 server (one thread per connection,
/// `Connection: close`) that hands every request to `git http-backend` as CGI, serving every
/// repository under a base path. Stopped on drop or by [`GitHttpServer::kill`].
pub struct GitHttpServer {
    port: u16,
    stop: Arc<AtomicBool>,
    requests: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl GitHttpServer {
    /// Serves every repository under `base_path` on a free port.
    pub fn serve(base_path: &Path) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let port = listener.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicUsize::new(0));
        let (flag, counter, root) =
            (Arc::clone(&stop), Arc::clone(&requests), base_path.to_owned());
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        counter.fetch_add(1, Ordering::SeqCst);
                        let root = root.clone();
                        std::thread::spawn(move || {
                            let _ = serve_cgi(stream, &root);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        GitHttpServer { port, stop, requests, thread: Some(thread) }
    }

    /// The `http://` URL of `repo` (a path under the base path).
    pub fn url(&self, repo: &str) -> String {
        format!("http://127.0.0.1:{}/{repo}", self.port)
    }

    /// How many connections it has accepted.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Stops serving: the port then refuses connections.
    pub fn kill(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for GitHttpServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One request: read it (a `Content-Length` or chunked body), run `git http-backend`, answer.
fn serve_cgi(mut stream: TcpStream, root: &Path) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut pending = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(end) = find(&pending, b"\r\n\r\n") {
            break end;
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        pending.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&pending[..head_end]).into_owned();
    let mut rest = pending[head_end + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let mut request = lines.next().unwrap_or_default().split(' ');
    let method = request.next().unwrap_or_default().to_owned();
    let target = request.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let body = if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        read_chunked(&mut stream, &mut rest)?
    } else {
        let length: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        while rest.len() < length {
            let n = stream.read(&mut buf)?;
            if n == 0 {
                break;
            }
            rest.extend_from_slice(&buf[..n]);
        }
        rest.truncate(length);
        rest
    };
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut command = Command::new("git");
    command
        .arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", &method)
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("CONTENT_LENGTH", body.len().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(content_type) = header("content-type") {
        command.env("CONTENT_TYPE", content_type);
    }
    if let Some(protocol) = header("git-protocol") {
        command.env("GIT_PROTOCOL", protocol);
    }
    let mut child = command.spawn()?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let writer = std::thread::spawn(move || stdin.write_all(&body));
    let output = child.wait_with_output()?;
    let _ = writer.join();
    let out = output.stdout;
    let split =
        find(&out, b"\r\n\r\n").map(|i| (i, 4)).or_else(|| find(&out, b"\n\n").map(|i| (i, 2)));
    let (cgi_head, cgi_body) = match split {
        Some((i, sep)) => (String::from_utf8_lossy(&out[..i]).into_owned(), &out[i + sep..]),
        None => (String::new(), &out[..]),
    };
    let mut status = "200 OK".to_owned();
    let mut response_headers = String::new();
    for line in cgi_head.lines() {
        match line.split_once(':') {
            Some((k, v)) if k.eq_ignore_ascii_case("status") => status = v.trim().to_owned(),
            Some(_) => {
                response_headers.push_str(line.trim_end());
                response_headers.push_str("\r\n");
            }
            None => {}
        }
    }
    let head = format!(
        "HTTP/1.1 {status}\r\n{response_headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        cgi_body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(cgi_body)?;
    stream.flush()
}

/// Decodes a chunked request body, `pending` holding what was already read past the headers.
fn read_chunked(stream: &mut TcpStream, pending: &mut Vec<u8>) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    let mut buf = [0u8; 8192];
    let mut fill = |pending: &mut Vec<u8>, stream: &mut TcpStream| -> std::io::Result<bool> {
        let n = stream.read(&mut buf)?;
        pending.extend_from_slice(&buf[..n]);
        Ok(n > 0)
    };
    loop {
        let line_end = loop {
            if let Some(i) = find(pending, b"\r\n") {
                break i;
            }
            if !fill(pending, stream)? {
                return Ok(body);
            }
        };
        let size_text = String::from_utf8_lossy(&pending[..line_end]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        pending.drain(..line_end + 2);
        if size == 0 {
            return Ok(body);
        }
        while pending.len() < size + 2 {
            if !fill(pending, stream)? {
                return Ok(body);
            }
        }
        body.extend_from_slice(&pending[..size]);
        pending.drain(..size + 2);
    }
}

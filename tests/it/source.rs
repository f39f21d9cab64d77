//! Sources end to end: the remote Git source against every transport it speaks on loopback
//! (`file://`, `git://` from `git daemon`, and Git's smart HTTP from `git http-backend`), a
//! silent and a credential-rejecting server, and the directory watcher against real file-system
//! events.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use immuta_gitops::snapshot::{FileContent, Snapshot};
use immuta_gitops::source::dir::{self, ReadOptions};
use immuta_gitops::source::remote::{GitAuth, GitRef, GitSource, GitSourceConfig};
use immuta_gitops::source::{Error, FetchErrorKind, watch};
use immuta_gitops::spec::is_snapshot_file;
use secrecy::SecretString;

use crate::support::git::{
    GitDaemon, GitFixture, GitHttpServer, RejectingHttpServer, SilentServer, git,
};

/// How a fixture's served repository is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// `file://` (gitoxide runs `git-upload-pack`).
    File,
    /// `git://` from `git daemon`.
    Daemon,
    /// Git's smart HTTP protocol from `git http-backend`.
    Http,
}

const EVERY: [Via; 3] = [Via::File, Via::Daemon, Via::Http];

/// A fixture's repository served one way; [`Served::kill`] makes it unreachable.
struct Served {
    via: Via,
    url: String,
    daemon: Option<GitDaemon>,
    http: Option<GitHttpServer>,
    /// `file://`: the served repository, moved away by `kill`.
    path: PathBuf,
}

impl Served {
    fn new(repo: &GitFixture, via: Via) -> Served {
        let mut served =
            Served { via, url: String::new(), daemon: None, http: None, path: repo.served() };
        served.url = match via {
            Via::File => format!("file://{}", repo.served().display()),
            Via::Daemon => {
                served.daemon.insert(GitDaemon::serve(&repo.base_path())).url("repo.git")
            }
            Via::Http => {
                served.http.insert(GitHttpServer::serve(&repo.base_path())).url("repo.git")
            }
        };
        served
    }

    fn kill(&mut self) {
        match self.via {
            Via::File => std::fs::rename(&self.path, self.path.with_extension("gone")).unwrap(),
            Via::Daemon => self.daemon.as_mut().unwrap().kill(),
            Via::Http => self.http.as_mut().unwrap().kill(),
        }
    }
}

/// A source for `url` with short timeouts and the real include predicate.
fn source(url: &str, reference: GitRef, cache: &Path) -> GitSource {
    GitSource::new(config(url, reference, cache))
}

fn config(url: &str, reference: GitRef, cache: &Path) -> GitSourceConfig {
    GitSourceConfig {
        connect_timeout: Duration::from_secs(5),
        transfer_timeout: Duration::from_secs(10),
        include: is_snapshot_file,
        ..GitSourceConfig::new(url, reference, cache)
    }
}

fn main_branch() -> GitRef {
    GitRef::Branch("main".into())
}

fn paths(s: &Snapshot) -> Vec<&str> {
    s.files.iter().map(|f| f.path.as_str()).collect()
}

fn text(s: &Snapshot, path: &str) -> String {
    match s.files.iter().find(|f| f.path == path).map(|f| &f.content) {
        Some(FileContent::Bytes(b)) => String::from_utf8_lossy(b).into_owned(),
        other => panic!("{path}: {other:?}"),
    }
}

async fn fetched(source: &GitSource, last: Option<&str>) -> Snapshot {
    match source.fetch(last).await {
        Ok(Some(snapshot)) => snapshot,
        other => panic!("expected a snapshot, got {other:?}"),
    }
}

/// Runs `git` on the bare cache repository.
fn cache_git(source: &GitSource, args: &[&str]) -> String {
    let dir = source.cache_path().display().to_string();
    let mut full = vec!["--git-dir", dir.as_str()];
    full.extend_from_slice(args);
    git(Path::new("."), &full)
}

/// A fixture with one commit of a small spec tree under `specs/`.
fn spec_fixture() -> GitFixture {
    let repo = GitFixture::new();
    repo.write("README.md", "not a spec\n")
        .write("specs/purposes.yaml", "name: Fraud\n")
        .write("specs/sources/orders.yml", "connectionKey: pg\n")
        .write("specs/.hidden/secret.yaml", "name: Hidden\n")
        .write("specs/.draft.yaml", "name: Draft\n")
        .write("specs/notes.txt", "skipped by the include predicate\n")
        .write("other/x.yaml", "name: Elsewhere\n");
    repo.commit("one");
    repo
}

#[tokio::test]
async fn a_branch_is_fetched_shallow_into_a_bare_cache_and_read_from_the_tree() {
    for via in EVERY {
        let repo = spec_fixture();
        let served = Served::new(&repo, via);
        let cache = tempfile::tempdir().unwrap();
        let mut config = config(&served.url, main_branch(), cache.path());
        config.sub_path = "specs".into();
        let source = GitSource::new(config);

        let snapshot = fetched(&source, None).await;
        assert_eq!(snapshot.revision, repo.head(), "{via:?}");
        assert_eq!(paths(&snapshot), ["purposes.yaml", "sources/orders.yml"], "{via:?}");
        assert_eq!(text(&snapshot, "purposes.yaml"), "name: Fraud\n");

        assert!(source.cache_path().starts_with(cache.path()));
        assert_eq!(cache_git(&source, &["rev-parse", "--is-bare-repository"]), "true");
        assert_eq!(cache_git(&source, &["rev-parse", "--is-shallow-repository"]), "true");
        // Exactly one ref was fetched, and no tags.
        let refs = cache_git(&source, &["for-each-ref", "--format=%(refname)"]);
        assert_eq!(refs, "refs/remotes/origin/main", "{via:?}");
    }
}

#[tokio::test]
async fn an_unchanged_remote_is_a_no_op_and_a_new_commit_is_picked_up() {
    for via in EVERY {
        let repo = spec_fixture();
        let served = Served::new(&repo, via);
        let cache = tempfile::tempdir().unwrap();
        let source = source(&served.url, main_branch(), cache.path());
        let first = fetched(&source, None).await;

        assert_eq!(source.fetch(Some(&first.revision)).await.unwrap(), None, "{via:?}");

        repo.write("specs/purposes.yaml", "name: Fraud v2\n").remove("specs/sources/orders.yml");
        let second_id = repo.commit("two");
        let second = fetched(&source, Some(&first.revision)).await;
        assert_eq!(second.revision, second_id, "{via:?}");
        assert_eq!(text(&second, "specs/purposes.yaml"), "name: Fraud v2\n");
        assert!(!paths(&second).contains(&"specs/sources/orders.yml"));
        assert_eq!(source.fetch(Some(&second.revision)).await.unwrap(), None);
        // Still shallow after an incremental fetch.
        assert_eq!(cache_git(&source, &["rev-parse", "--is-shallow-repository"]), "true");

        // A restarted reconciler (new source, same cache, no `last`) gets the snapshot again.
        let restarted = self::source(&served.url, main_branch(), cache.path());
        assert_eq!(fetched(&restarted, None).await, second, "{via:?}");
    }
}

#[tokio::test]
async fn a_force_push_is_followed() {
    for via in EVERY {
        let repo = spec_fixture();
        let served = Served::new(&repo, via);
        let cache = tempfile::tempdir().unwrap();
        let source = source(&served.url, main_branch(), cache.path());
        repo.write("specs/purposes.yaml", "name: Mistake\n");
        let mistake = repo.commit("oops");
        assert_eq!(fetched(&source, None).await.revision, mistake);

        // Rewrite history: drop the commit and push a different one in its place.
        repo.reset_hard("HEAD~1").write("specs/purposes.yaml", "name: Fixed\n");
        let fixed = repo.commit("fixed");
        let after = fetched(&source, Some(&mistake)).await;
        assert_eq!(after.revision, fixed, "{via:?}");
        assert_eq!(text(&after, "specs/purposes.yaml"), "name: Fixed\n");
    }
}

#[tokio::test]
async fn a_tag_and_a_commit_id_can_be_pinned() {
    for via in EVERY {
        let repo = spec_fixture();
        let mut served = Served::new(&repo, via);
        let first = repo.head();
        repo.tag("v1", None).tag("v1-annotated", Some("release 1"));
        repo.write("specs/purposes.yaml", "name: Later\n");
        let later = repo.commit("later");
        let url = served.url.clone();

        for tag in ["v1", "refs/tags/v1-annotated"] {
            let cache = tempfile::tempdir().unwrap();
            let pinned = source(&url, GitRef::Tag(tag.into()), cache.path());
            let snapshot = fetched(&pinned, None).await;
            assert_eq!(snapshot.revision, first, "{tag} peels to its commit ({via:?})");
            assert_eq!(text(&snapshot, "specs/purposes.yaml"), "name: Fraud\n");
            assert_eq!(pinned.fetch(Some(&first)).await.unwrap(), None);
        }

        // A commit that is no branch tip: fetched by id, depth 1.
        let cache = tempfile::tempdir().unwrap();
        let pinned = source(&url, GitRef::Commit(first.clone()), cache.path());
        let snapshot = fetched(&pinned, None).await;
        assert_eq!(snapshot.revision, first, "{via:?}");
        assert_eq!(text(&snapshot, "specs/purposes.yaml"), "name: Fraud\n");
        assert_eq!(cache_git(&pinned, &["rev-parse", "--is-shallow-repository"]), "true");
        assert_eq!(pinned.fetch(Some(&first)).await.unwrap(), None);
        assert_ne!(first, later);

        // A commit id names immutable content: once cached, it is read without the server.
        served.kill();
        let offline = source(&url, GitRef::Commit(first.clone()), cache.path());
        assert_eq!(fetched(&offline, None).await, snapshot, "{via:?}");
    }
}

#[tokio::test]
async fn a_commit_the_server_does_not_have_is_an_error_never_a_deeper_fetch() {
    for via in EVERY {
        let repo = spec_fixture();
        let served = Served::new(&repo, via);
        let cache = tempfile::tempdir().unwrap();
        let unknown = GitRef::Commit("0123456789abcdef0123456789abcdef01234567".into());
        let err = source(&served.url, unknown, cache.path()).fetch(None).await;
        assert!(matches!(err, Err(Error::Fetch { .. } | Error::RefNotFound { .. })), "{err:?}");
    }
}

#[tokio::test]
async fn an_unknown_or_invalid_ref_or_sub_path_is_a_clear_error_never_an_empty_snapshot() {
    for via in EVERY {
        let repo = spec_fixture();
        let served = Served::new(&repo, via);
        let url = served.url.clone();
        let cache = tempfile::tempdir().unwrap();

        let err = source(&url, GitRef::Branch("mian".into()), cache.path()).fetch(None).await;
        let err = err.unwrap_err();
        assert!(matches!(&err, Error::RefNotFound { .. }), "{via:?}: {err:?}");
        assert!(err.to_string().contains("branch `mian` not found"), "{err}");

        let err = source(&url, GitRef::Tag("v9".into()), cache.path()).fetch(None).await;
        assert!(matches!(err, Err(Error::RefNotFound { .. })), "{err:?}");

        let err = source(&url, GitRef::Branch("a..b".into()), cache.path()).fetch(None).await;
        assert!(matches!(err, Err(Error::InvalidRef { .. })), "{err:?}");
        let err = source(&url, GitRef::Commit("abc123".into()), cache.path()).fetch(None).await;
        assert!(matches!(err, Err(Error::InvalidRef { .. })), "{err:?}");

        let mut config = config(&url, main_branch(), cache.path());
        config.sub_path = "spec".into();
        let err = GitSource::new(config).fetch(None).await.unwrap_err();
        assert!(matches!(&err, Error::SubPathNotFound { .. }), "{err:?}");
        assert!(err.to_string().starts_with("spec root `spec` does not exist at commit"), "{err}");

        let missing = url.replace("repo.git", "nope.git");
        let err = source(&missing, main_branch(), cache.path()).fetch(None).await;
        assert!(matches!(err, Err(Error::Fetch { .. })), "{via:?}: {err:?}");
    }
}

#[tokio::test]
async fn a_server_that_goes_away_is_an_error_quickly_and_the_cache_is_kept() {
    for via in [Via::Daemon, Via::Http] {
        let repo = spec_fixture();
        let mut served = Served::new(&repo, via);
        let cache = tempfile::tempdir().unwrap();
        let source = source(&served.url, main_branch(), cache.path());
        let first = fetched(&source, None).await;
        served.kill();

        let started = Instant::now();
        let err = source.fetch(Some(&first.revision)).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
        assert!(
            matches!(err, Error::Fetch { kind: FetchErrorKind::Network, .. }),
            "a network error, not an empty snapshot ({via:?}): {err:?}"
        );
        assert!(err.to_string().contains("network failure"), "{err}");
        // A network error never wipes the cache.
        assert_eq!(cache_git(&source, &["rev-parse", "refs/remotes/origin/main"]), repo.head());
    }
}

#[tokio::test]
async fn a_silent_server_times_out_instead_of_hanging() {
    let server = SilentServer::start();
    for url in [server.url(), server.http_url()] {
        let cache = tempfile::tempdir().unwrap();
        let mut config = config(&url, main_branch(), cache.path());
        config.connect_timeout = Duration::from_millis(300);
        config.transfer_timeout = Duration::from_millis(300);
        let source = GitSource::new(config);
        let started = Instant::now();
        let result = tokio::time::timeout(Duration::from_secs(10), source.fetch(None)).await;
        let err = result.expect("fetch hung").unwrap_err();
        assert!(
            matches!(
                err,
                Error::Timeout { .. } | Error::Fetch { kind: FetchErrorKind::Network, .. }
            ),
            "{url}: {err:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    }
    // Dropping the server resets the connections, which ends any abandoned blocking task.
    drop(server);
}

#[tokio::test]
async fn a_corrupt_cache_is_re_cloned_once() {
    for via in EVERY {
        let repo = spec_fixture();
        let served = Served::new(&repo, via);
        let url = served.url.clone();

        // Objects deleted under `objects/`: the ref still names a commit the cache no longer
        // has. (A new source each time, as after a restart.)
        let cache = tempfile::tempdir().unwrap();
        let source = source(&url, main_branch(), cache.path());
        let good = fetched(&source, None).await;
        let objects = source.cache_path().join("objects");
        let deleted = walk(&objects);
        assert!(!deleted.is_empty());
        for entry in deleted {
            std::fs::remove_file(entry).unwrap();
        }
        let restarted = self::source(&url, main_branch(), cache.path());
        assert_eq!(fetched(&restarted, None).await, good, "{via:?}");

        // A truncated HEAD.
        std::fs::write(source.cache_path().join("HEAD"), "").unwrap();
        let restarted = self::source(&url, main_branch(), cache.path());
        assert_eq!(fetched(&restarted, None).await, good, "{via:?}");

        // A stale lock file left by a crash in the middle of a fetch.
        repo.write("specs/purposes.yaml", "name: Next\n");
        let next = repo.commit("next");
        let lock = source.cache_path().join("refs/remotes/origin/main.lock");
        std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
        std::fs::write(&lock, "").unwrap();
        let after = fetched(&restarted, Some(&good.revision)).await;
        assert_eq!(after.revision, next, "{via:?}");
        assert!(!lock.exists());
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() { files.extend(walk(&path)) } else { files.push(path) }
    }
    files
}

#[tokio::test]
async fn symlinks_are_recorded_not_followed_and_large_files_not_read() {
    for via in EVERY {
        let repo = GitFixture::new();
        repo.write("specs/ok.yaml", "name: Ok\n")
            .write("specs/big.yaml", vec![b'x'; 2048])
            .symlink("specs/leak.yaml", "/etc/passwd")
            .symlink("specs/up.yaml", "../other/x.yaml")
            .write("other/x.yaml", "name: Elsewhere\n");
        repo.commit("links");
        let served = Served::new(&repo, via);
        let cache = tempfile::tempdir().unwrap();
        let mut config = config(&served.url, main_branch(), cache.path());
        config.sub_path = "/specs/".into();
        config.max_file_size = 1024;
        let snapshot = fetched(&GitSource::new(config), None).await;

        assert_eq!(paths(&snapshot), ["big.yaml", "leak.yaml", "ok.yaml", "up.yaml"], "{via:?}");
        let content = |p: &str| &snapshot.files.iter().find(|f| f.path == p).unwrap().content;
        assert_eq!(*content("big.yaml"), FileContent::TooLarge { size: 2048, limit: 1024 });
        assert_eq!(
            *content("leak.yaml"),
            FileContent::OutsideRoot { target: "/etc/passwd".into() }
        );
        assert_eq!(
            *content("up.yaml"),
            FileContent::OutsideRoot { target: "../other/x.yaml".into() }
        );
        assert_eq!(text(&snapshot, "ok.yaml"), "name: Ok\n");
    }
}

#[tokio::test]
async fn rejected_https_credentials_fail_fast_without_looping_or_leaking() {
    let server = RejectingHttpServer::start();
    let cache = tempfile::tempdir().unwrap();
    let mut config = config(&server.url(Some("ci:url-password")), main_branch(), cache.path());
    config.auth = GitAuth::HttpsToken(SecretString::from("ghp_token_value"));
    let started = Instant::now();
    let err = GitSource::new(config).fetch(None).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    assert!(matches!(err, Error::Fetch { kind: FetchErrorKind::Auth, .. }), "{err:?}");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("ghp_token_value") && !shown.contains("url-password"), "{shown}");
    assert!(shown.contains("ci:***@127.0.0.1"), "{shown}");
    // One request with the URL's credentials, one with the token, then we give up.
    assert!(server.requests() <= 3, "{} requests", server.requests());

    // With no credentials configured the request gives up at once too.
    let config = self::config(&server.url(None), main_branch(), cache.path());
    let err = GitSource::new(config).fetch(None).await.unwrap_err();
    assert!(matches!(err, Error::Fetch { kind: FetchErrorKind::Auth, .. }), "{err:?}");
    assert!(err.to_string().contains("none are configured"), "{err}");

    // A token is never sent in clear text to anything but loopback.
    let mut config = self::config("http://example.com/o/r.git", main_branch(), cache.path());
    config.auth = GitAuth::HttpsToken(SecretString::from("ghp_token_value"));
    let err = GitSource::new(config).fetch(None).await.unwrap_err();
    assert!(matches!(err, Error::Fetch { kind: FetchErrorKind::Auth, .. }), "{err:?}");
    assert!(err.to_string().contains("clear text"), "{err}");
}

#[tokio::test]
async fn credentials_an_ssh_remote_cannot_use_are_an_auth_error_before_connecting() {
    let cache = tempfile::tempdir().unwrap();
    let mut config = config("ssh://git@127.0.0.1:1/repo.git", main_branch(), cache.path());
    config.auth = GitAuth::HttpsToken(SecretString::from("ghp_token_value"));
    let err = GitSource::new(config).fetch(None).await.unwrap_err();
    assert!(matches!(err, Error::Fetch { kind: FetchErrorKind::Auth, .. }), "{err:?}");
    assert!(err.to_string().contains("HTTPS token"), "{err}");
    assert!(!err.to_string().contains("ghp_token_value"), "{err}");

    // `git://` never asks for credentials: configured ones are unused, not an error.
    let repo = spec_fixture();
    let served = Served::new(&repo, Via::Daemon);
    let mut config = self::config(&served.url, main_branch(), cache.path());
    config.auth = GitAuth::HttpsToken(SecretString::from("ghp_token_value"));
    assert_eq!(fetched(&GitSource::new(config), None).await.revision, repo.head());
}

// --- The directory watcher ----------------------------------------------------------------

const DEBOUNCE: Duration = Duration::from_millis(120);
const NEVER: Duration = Duration::from_secs(3600);

/// Waits for a dirty signal (failing the test rather than hanging).
async fn dirty(rx: &mut tokio::sync::mpsc::Receiver<()>, what: &str) {
    match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
        Ok(Some(())) => {}
        other => panic!("no dirty signal after {what}: {other:?}"),
    }
}

/// Lets pending events settle and drops any signal they produced.
async fn settle(rx: &mut tokio::sync::mpsc::Receiver<()>) {
    tokio::time::sleep(DEBOUNCE * 3).await;
    while rx.try_recv().is_ok() {}
}

#[tokio::test]
async fn editing_adding_and_deleting_a_file_each_mark_the_directory_dirty() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    std::fs::write(dir.path().join("policies/mask.yaml"), "policyKey: a\n").unwrap();
    let (_watch, mut rx) = watch::watcher(dir.path().to_path_buf(), DEBOUNCE, NEVER).unwrap();
    settle(&mut rx).await;

    std::fs::write(dir.path().join("policies/mask.yaml"), "policyKey: b\n").unwrap();
    dirty(&mut rx, "an edit").await;
    settle(&mut rx).await;
    std::fs::write(dir.path().join("policies/new.yaml"), "policyKey: c\n").unwrap();
    dirty(&mut rx, "a new file").await;
    settle(&mut rx).await;
    std::fs::remove_file(dir.path().join("policies/mask.yaml")).unwrap();
    dirty(&mut rx, "a deletion").await;
    settle(&mut rx).await;
    std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
    std::fs::write(dir.path().join("a/b/deep.yaml"), "policyKey: d\n").unwrap();
    dirty(&mut rx, "a file in a new directory").await;

    // A burst of writes is one signal (the channel holds one), not one per write.
    settle(&mut rx).await;
    for i in 0..20 {
        std::fs::write(dir.path().join(format!("burst-{i}.yaml")), "x: 1\n").unwrap();
    }
    dirty(&mut rx, "a burst").await;
    tokio::time::sleep(DEBOUNCE * 3).await;
    let mut extra = 0;
    while rx.try_recv().is_ok() {
        extra += 1;
    }
    assert!(extra <= 1, "{extra} extra signals for one burst");
}

#[tokio::test]
async fn a_configmap_symlink_swap_marks_dirty_and_a_rescan_sees_the_new_content() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // What the kubelet lays out for a ConfigMap volume.
    std::fs::create_dir(root.join("..2026_a")).unwrap();
    std::fs::write(root.join("..2026_a/spec.yaml"), "name: Before\n").unwrap();
    symlink("..2026_a", root.join("..data")).unwrap();
    symlink("..data/spec.yaml", root.join("spec.yaml")).unwrap();
    let options = ReadOptions { include: is_snapshot_file, ..ReadOptions::default() };
    let before = dir::read(root, &options).unwrap();
    assert_eq!(paths(&before), ["spec.yaml"]);
    assert_eq!(text(&before, "spec.yaml"), "name: Before\n");

    let (_watch, mut rx) = watch::watcher(root.to_path_buf(), DEBOUNCE, NEVER).unwrap();
    settle(&mut rx).await;

    // The kubelet's atomic update: new dir, new link, rename over `..data`, remove the old dir.
    std::fs::create_dir(root.join("..2026_b")).unwrap();
    std::fs::write(root.join("..2026_b/spec.yaml"), "name: After\n").unwrap();
    symlink("..2026_b", root.join("..data_tmp")).unwrap();
    std::fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
    std::fs::remove_dir_all(root.join("..2026_a")).unwrap();
    dirty(&mut rx, "the ..data swap").await;

    let after = dir::read(root, &options).unwrap();
    assert_eq!(text(&after, "spec.yaml"), "name: After\n");
    assert_ne!(after.revision, before.revision);
}

#[tokio::test]
async fn the_rescan_tick_fires_without_file_events_and_drop_stops_everything() {
    let dir = tempfile::tempdir().unwrap();
    let (watch, mut rx) =
        watch::watcher(dir.path().to_path_buf(), DEBOUNCE, Duration::from_millis(200)).unwrap();
    assert_eq!(watch.root(), dir.path());
    dirty(&mut rx, "one tick").await;
    dirty(&mut rx, "another tick").await;

    drop(watch);
    let closed =
        tokio::time::timeout(Duration::from_secs(5), async { while rx.recv().await.is_some() {} })
            .await;
    assert!(closed.is_ok(), "the channel stays open after the watch is dropped");
}

#[tokio::test]
async fn plan_base_still_reads_a_local_revision() {
    // `read_revision` shares the tree reader with the remote source.
    let repo = GitFixture::new();
    repo.write("specs/a.yaml", "name: A\n").symlink("specs/l.yaml", "a.yaml");
    let id = repo.commit("one");
    let snapshot = immuta_gitops::source::git::read_revision(
        &repo.work(),
        "main",
        "specs",
        is_snapshot_file,
        1 << 20,
    )
    .unwrap();
    assert_eq!(snapshot.revision, id);
    assert_eq!(paths(&snapshot), ["a.yaml", "l.yaml"]);
    assert_eq!(snapshot.files[1].content, FileContent::OutsideRoot { target: "a.yaml".into() });
    assert_eq!(git(&repo.work(), &["rev-parse", "main"]), id);
}

#[tokio::test]
async fn protocol_v2_serves_a_pinned_commit_without_the_v0_allow_settings() {
    // Protocol v0 needs `uploadpack.allowReachableSHA1InWant` to fetch a commit by id; in
    // protocol v2 (what gitoxide speaks to every transport here) a want may be any reachable
    // commit, so the pin works on a stock server.
    for via in EVERY {
        let repo = spec_fixture();
        let served = Served::new(&repo, via);
        let first = repo.head();
        repo.commit("tip");
        repo.allow_fetch_by_id(false);
        let cache = tempfile::tempdir().unwrap();
        let pinned = source(&served.url, GitRef::Commit(first.clone()), cache.path());
        assert_eq!(fetched(&pinned, None).await.revision, first, "{via:?}");
    }
}

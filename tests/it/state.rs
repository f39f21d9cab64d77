//! The state backends behind the one `Store` interface: one suite, run against the file backend
//! and against a real PostgreSQL (`support::postgres`: `IMMUTA_GITOPS_TEST_DATABASE_URL`, or a
//! throw-away cluster), then what only a shared database has (a lost connection, migrations).

use std::time::{Duration, Instant};

use crate::support::postgres::{Proxy, TestDb};
use immuta_gitops::spec::Kind;
use immuta_gitops::state::file;
use immuta_gitops::state::store::{self, Location, Recorder, Store, Target};
use immuta_gitops::state::{Entry, Record, State};
use serde_json::json;

/// Where one test's states live.
enum Backend {
    File(tempfile::TempDir),
    Postgres(TestDb),
}

impl Backend {
    async fn all() -> Vec<Backend> {
        vec![Backend::File(tempfile::tempdir().unwrap()), Backend::Postgres(TestDb::create().await)]
    }

    fn label(&self) -> &'static str {
        match self {
            Backend::File(_) => "file",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// The store of the state of `tenant` named `name`, as the process `holder`.
    async fn open(&self, tenant: &str, name: &str, holder: &str) -> Box<dyn Store> {
        let (location, password) = match self {
            Backend::File(dir) => {
                let file = format!("{}.json", hex::encode(format!("{tenant}/{name}")));
                (Location::File(dir.path().join(file)), None)
            }
            Backend::Postgres(db) => {
                (Location::Postgres(db.url()), db.password.clone().map(Into::into))
            }
        };
        let target = Target {
            location,
            tenant: tenant.into(),
            name: name.into(),
            password,
            holder: holder.into(),
        };
        store::open(&target).await.unwrap_or_else(|e| panic!("{}: {e}", self.label()))
    }

    /// A record torn by a crash: half a line in the file's journal; for PostgreSQL a
    /// transaction whose connection dies before it commits.
    async fn tear(&self, tenant: &str, name: &str) {
        match self {
            Backend::File(dir) => {
                use std::io::Write;
                let file = format!("{}.json.journal", hex::encode(format!("{tenant}/{name}")));
                let mut journal = std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(dir.path().join(file))
                    .unwrap();
                journal.write_all(br#"{"op":"upsert","entry":{"kind":"pol"#).unwrap();
            }
            Backend::Postgres(db) => {
                let client = db.client().await;
                client
                    .batch_execute(&format!(
                        "BEGIN; INSERT INTO immuta_gitops_objects (tenant, name, kind, key, digest, \
                         payload, prune, revision, applied_at) VALUES ('{tenant}', '{name}', \
                         'policy', 'torn', 'd', '{{}}', true, 'r', 't')"
                    ))
                    .await
                    .unwrap();
                drop(client); // the connection dies before COMMIT
            }
        }
    }
}

fn entry(key: &str, digest: &str) -> Entry {
    Entry {
        kind: Kind::Policy,
        key: key.into(),
        id: Some(7),
        digest: digest.into(),
        payload: json!({"policyKey": key, "password": "(sensitive:k:00ff)"}).into(),
        prune: true,
        revision: "rev-1".into(),
        applied_at: "2026-12-01T00:00:00Z".into(),
        names: vec!["a name".into()],
    }
}

fn keys(state: &State) -> Vec<&str> {
    state.objects.iter().map(|e| e.key.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_written_before_the_first_record_then_every_field_reads_back() {
    for backend in Backend::all().await {
        let store = backend.open("https://t.example", "default", "pid 1 on a: test").await;
        assert_eq!(store.load().await.unwrap(), None, "{}", backend.label());
        let _lock = store.try_lock().await.unwrap();
        let mut recorder =
            Recorder::open(&*store, State::keyed("https://t.example", "kid")).await.unwrap();
        recorder.finish().await.unwrap();
        assert_eq!(
            store.load().await.unwrap(),
            None,
            "{}: an apply of nothing creates nothing",
            backend.label()
        );
        recorder.upsert(entry("b", "d1")).await.unwrap();
        recorder.upsert(entry("a", "d2")).await.unwrap();
        recorder.set_revision("rev-1").await.unwrap();
        let loaded = store.load().await.unwrap().unwrap();
        assert_eq!(loaded.objects, recorder.state().objects, "{}", backend.label());
        assert_eq!(keys(&loaded), ["a", "b"]);
        assert_eq!(loaded.revision.as_deref(), Some("rev-1"));
        assert_eq!(loaded.key_id.as_deref(), Some("kid"));
        assert_eq!(loaded.tenant, "https://t.example");
        recorder.finish().await.unwrap();
        assert_eq!(store.load().await.unwrap().unwrap().objects, recorder.state().objects);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_was_recorded_survives_torn_records_and_any_number_of_crashes() {
    for backend in Backend::all().await {
        let (tenant, name) = ("https://t.example", "default");
        for (round, key) in ["a", "b", "c"].into_iter().enumerate() {
            // An apply records one object, then dies while recording the next.
            let store = backend.open(tenant, name, "pid 1 on a: test").await;
            let _lock = store.try_lock().await.unwrap();
            let mut recorder = Recorder::open(&*store, State::keyed(tenant, "kid")).await.unwrap();
            assert_eq!(recorder.state().objects.len(), round, "{}: kept", backend.label());
            recorder.upsert(entry(key, "d")).await.unwrap();
            drop(recorder);
            drop(_lock);
            drop(store);
            backend.tear(tenant, name).await;
            let store = backend.open(tenant, name, "pid 2 on a: test").await;
            let loaded = store.load().await.unwrap().unwrap();
            assert_eq!(
                loaded.objects.len(),
                round + 1,
                "{}: only the torn record is lost",
                backend.label()
            );
        }
        let store = backend.open(tenant, name, "pid 3 on a: test").await;
        let _lock =
            store::lock_within(&*store, Duration::from_secs(10), Duration::from_millis(100))
                .await
                .unwrap();
        let mut recorder = Recorder::open(&*store, State::keyed(tenant, "kid")).await.unwrap();
        recorder.remove(Kind::Policy, "a").await.unwrap();
        recorder.finish().await.unwrap();
        assert_eq!(keys(&store.load().await.unwrap().unwrap()), ["b", "c"], "{}", backend.label());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_writer_at_a_time_and_the_others_are_told_who() {
    for backend in Backend::all().await {
        let first =
            backend.open("https://t.example", "default", "pid 11 on ci-runner-1: apply").await;
        let second =
            backend.open("https://t.example", "default", "pid 22 on ci-runner-2: apply").await;
        let lock = first.try_lock().await.unwrap();
        match second.try_lock().await {
            Err(store::Error::Locked { holder, .. }) => {
                assert_eq!(holder, "pid 11 on ci-runner-1: apply", "{}", backend.label())
            }
            Err(store::Error::File(file::Error::Locked { holder, .. })) => {
                assert_eq!(holder, "pid 11 on ci-runner-1: apply")
            }
            other => panic!("{}: expected Locked, got {other:?}", backend.label()),
        }
        // Waiting for it: the second gets it once the first lets go.
        let waiting = tokio::spawn(async move {
            let started = Instant::now();
            let lock =
                store::lock_within(&*second, Duration::from_secs(10), Duration::from_millis(50))
                    .await;
            (lock.map(|_| ()), started.elapsed())
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(lock);
        let (got, waited) = waiting.await.unwrap();
        got.unwrap_or_else(|e| panic!("{}: {e}", backend.label()));
        assert!(waited >= Duration::from_millis(250), "{}: it waited", backend.label());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_in_another_database_on_the_same_server_is_not_this_ones() {
    // Two databases on one server (two teams, or staging and production) with the same tenant
    // and state name: each has its own writer, and a refused writer is told its own
    // database's holder, never the other's.
    let (one, two) =
        (Backend::Postgres(TestDb::create().await), Backend::Postgres(TestDb::create().await));
    if let (Backend::Postgres(a), Backend::Postgres(b)) = (&one, &two)
        && a.name == b.name
    {
        return; // An external server that lets the test user create no database.
    }
    let here = one.open("https://t.example", "default", "pid 1 on a: apply").await;
    let there = two.open("https://t.example", "default", "pid 2 on b: run").await;
    let _there = there.try_lock().await.expect("the other database's lock is its own");
    let _here = here.try_lock().await.expect("this database's lock is free");
    let third = one.open("https://t.example", "default", "pid 3 on c: apply").await;
    match third.try_lock().await {
        Err(store::Error::Locked { holder, .. }) => assert_eq!(holder, "pid 1 on a: apply"),
        other => panic!("expected Locked, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_and_names_stand_side_by_side_and_a_state_is_replaced_whole() {
    for backend in Backend::all().await {
        let states = [
            ("https://a.example", "default"),
            ("https://a.example", "team-b"),
            ("https://b.example", "default"),
        ];
        for (i, (tenant, name)) in states.iter().enumerate() {
            let store = backend.open(tenant, name, "pid 1 on a: test").await;
            let _lock = store.try_lock().await.unwrap();
            let mut state = State::keyed(*tenant, "kid");
            for k in 0..=i {
                state.upsert(entry(&format!("{name}-{k}"), "d"));
            }
            state.revision = Some(format!("rev-{i}"));
            store.replace(&state).await.unwrap();
        }
        for (i, (tenant, name)) in states.iter().enumerate() {
            let store = backend.open(tenant, name, "pid 1 on a: test").await;
            let loaded = store.load().await.unwrap().unwrap();
            assert_eq!(loaded.objects.len(), i + 1, "{} {tenant} {name}", backend.label());
            assert_eq!(loaded.revision, Some(format!("rev-{i}")));
            assert!(loaded.objects.iter().all(|e| e.key.starts_with(name)));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_need_the_lock_and_a_lost_connection_loses_it() {
    let db = TestDb::create().await;
    let proxy = Proxy::start(db.addr).await;
    let target = |url: String, holder: &str| Target {
        location: Location::Postgres(url),
        tenant: "https://t.example".into(),
        name: "default".into(),
        password: db.password.clone().map(Into::into),
        holder: holder.into(),
    };
    let leader = store::open(&target(db.url_at(proxy.addr), "pid 1 on leader: run")).await.unwrap();
    let standby = store::open(&target(db.url(), "pid 2 on standby: run")).await.unwrap();
    // No lock, no record.
    let err = standby.record(&Record::Revision { revision: "r".into() }).await.unwrap_err();
    assert!(err.to_string().contains("without the writer lock"), "{err}");

    let lock = leader.try_lock().await.unwrap();
    leader.create(&State::keyed("https://t.example", "kid")).await.unwrap();
    leader.record(&Record::Upsert { entry: entry("a", "d") }).await.unwrap();
    // The leader's connection breaks: it learns it lost the lock, records nothing more, and
    // the standby gets the lock within 15 s.
    let cut = Instant::now();
    proxy.cut();
    tokio::time::timeout(Duration::from_secs(15), lock.lost().cancelled())
        .await
        .expect("the leader notices within 15 s");
    let err = leader.record(&Record::Upsert { entry: entry("b", "d") }).await.unwrap_err();
    assert!(matches!(err, store::Error::LockLost { .. } | store::Error::Postgres(_)), "{err}");
    let _standby_lock =
        store::lock_within(&*standby, Duration::from_secs(15), Duration::from_millis(200))
            .await
            .expect("the standby takes over");
    assert!(cut.elapsed() < Duration::from_secs(15), "took over in {:?}", cut.elapsed());
    assert_eq!(keys(&standby.load().await.unwrap().unwrap()), ["a"], "nothing recorded is lost");
    // The old leader, back on the network, is refused: the lock is someone else's now.
    proxy.restore();
    match leader.try_lock().await {
        Err(store::Error::Locked { holder, .. }) => assert_eq!(holder, "pid 2 on standby: run"),
        other => panic!("expected Locked, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schema_is_migrated_once_however_many_start_together() {
    let db = TestDb::create().await;
    let opens = (0..4).map(|i| {
        let url = db.url();
        let password = db.password.clone();
        tokio::spawn(async move {
            let store = store::open(&Target {
                location: Location::Postgres(url),
                tenant: format!("https://t{i}.example"),
                name: "default".into(),
                password: password.map(Into::into),
                holder: "test".into(),
            })
            .await?;
            // Reading a database without the schema creates nothing; a writer migrates it.
            assert_eq!(store.load().await?, None);
            store.try_lock().await.map(|_| ())
        })
    });
    for open in opens {
        open.await.unwrap().unwrap();
    }
    let client = db.client().await;
    let rows =
        client.query("SELECT version FROM immuta_gitops_schema ORDER BY 1", &[]).await.unwrap();
    let versions: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(
        versions,
        (1..=i32::try_from(immuta_gitops::state::postgres::MIGRATIONS.len()).unwrap())
            .collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_an_error_that_does_not_show_it() {
    let db = TestDb::create().await;
    let err = store::open(&Target {
        location: Location::Postgres(db.url()),
        tenant: "t".into(),
        name: "default".into(),
        password: Some("canary-wrong-password-1".to_owned().into()),
        holder: "test".into(),
    })
    .await
    .unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(text.contains("password authentication failed"), "{text}");
    assert!(!text.contains("canary-wrong-password-1"), "{text}");
}

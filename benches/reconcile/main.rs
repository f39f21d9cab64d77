//! Benchmarks of immuta-gitops against the naive way, written to `BENCHMARKS.md`.
//!
//! ```sh
//! cargo bench --bench reconcile -- --write BENCHMARKS.md   # everything (minutes on 2 cores)
//! cargo bench --bench reconcile -- --quick                 # smaller trees, printed to stdout
//! ```
//!
//! Not part of the test suite: numbers depend on the machine. Everything runs on loopback
//! against the in-process emulator (with injected per-request latency to model a real
//! tenant), `git daemon`, and the release binary.

mod generate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use immuta_emulator::{ADMIN_KEY, Emulator, EmulatorHandle};
use immuta_gitops::apply::{self, Silent};
use immuta_gitops::live::{self, Client, ClientConfig, Observer};
use immuta_gitops::pipeline::{self, ApplyOptions, Inputs, Overrides, Specs};
use immuta_gitops::plan::{self, render};
use immuta_gitops::secret_store::ProcessSecrets;
use immuta_gitops::snapshot::Snapshot;
use immuta_gitops::source::dir;
use immuta_gitops::spec::{self, LoadOptions, secrets};
use immuta_gitops::state::file::FileStore;
use immuta_gitops::state::key::{self, Keys};
use immuta_gitops::state::store::{self, Store};
use immuta_testkit::{emulator_config, git, postgres};
use secrecy::SecretString;
use serde_json::json;

/// Parallelism of our apply: the CLI default (`--parallelism 4`).
const PARALLELISM: usize = 4;
/// A higher `--parallelism`, as a large cold apply would use, measured beside the default.
const WIDE: usize = 16;

/// Counts API requests by method.
#[derive(Default)]
struct Counter(Mutex<BTreeMap<String, u64>>);

impl Observer for Counter {
    fn request(&self, _endpoint: &str, method: &str, _status: Option<u16>, _took: Duration) {
        *self.0.lock().unwrap().entry(method.to_owned()).or_default() += 1;
    }
    fn retry(&self, _: &str, _: &str) {}
}

impl Counter {
    fn take(&self) -> BTreeMap<String, u64> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

struct Section {
    title: String,
    note: String,
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

struct Goal {
    goal: &'static str,
    measured: String,
    met: bool,
}

#[derive(Default)]
struct Report {
    sections: Vec<Section>,
    goals: Vec<Goal>,
}

fn secs(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

fn mb(kb: i64) -> String {
    format!("{:.0} MB", kb as f64 / 1024.0)
}

/// Runs a command and returns (wall time, peak RSS in KiB, exit success).
///
/// The command runs under a small helper (this binary, `--measured`), never as a direct child:
/// a child started with `posix_spawn` (what `Command` uses) shares the parent's memory until
/// it execs, and Linux then records the parent's peak RSS as the child's, so a direct child
/// of this process would report the benchmark's own peak (hundreds of MB after the in-process
/// runs), not its own. The helper's peak is a few MB.
fn measure(cmd: &mut Command) -> (Duration, i64, bool) {
    let exe = std::env::current_exe().expect("current exe");
    let mut helper = Command::new(exe);
    helper.arg("--measured").arg(cmd.get_program()).args(cmd.get_args());
    if let Some(dir) = cmd.get_current_dir() {
        helper.current_dir(dir);
    }
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => helper.env(k, v),
            None => helper.env_remove(k),
        };
    }
    let out = helper.stderr(Stdio::null()).output().expect("run the helper");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut fields = text.split_whitespace().map(|f| f.parse::<i64>().unwrap_or(-1));
    let (nanos, rss, ok) = (fields.next(), fields.next(), fields.next());
    let took = Duration::from_nanos(u64::try_from(nanos.unwrap_or(-1)).expect("the helper's time"));
    (took, rss.unwrap_or(-1), ok == Some(1))
}

/// `--measured PROGRAM ARGS...`: runs the program (output discarded) and prints its wall time
/// in nanoseconds, its peak RSS in KiB (wait4) and 1 if it succeeded, else 0.
fn measured(args: &[String]) {
    let started = Instant::now();
    let child = Command::new(&args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let pid = i32::try_from(child.id()).expect("pid");
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 fills it in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our own child; status and usage point to live locals.
    unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let took = started.elapsed();
    std::mem::forget(child); // already reaped
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    println!("{} {} {}", took.as_nanos(), usage.ru_maxrss, u8::from(ok));
}

/// The fastest of `runs` runs of a command (the machine is shared: the minimum is the least
/// disturbed), with the highest peak RSS; whether every run succeeded.
fn measure_best(cmd: &mut Command, runs: usize) -> (Duration, i64, bool) {
    let mut best = (Duration::MAX, 0, true);
    for _ in 0..runs {
        let (took, rss, ok) = measure(cmd);
        best = (best.0.min(took), best.1.max(rss), best.2 && ok);
    }
    best
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_immuta-gitops"));
    c.env("NO_COLOR", "1").env_remove("IMMUTA_URL");
    c
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").parse::<f64>().unwrap_or(0.0))
        })
        .map_or("?".into(), |kb| format!("{:.0} GiB", kb / 1024.0 / 1024.0));
    format!("{cpu}, {cores} cores, {mem} RAM")
}

fn write_tree(n: usize) -> (tempfile::TempDir, generate::Tree) {
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = generate::tree(n, 42);
    generate::write(&tree, dir.path()).expect("write tree");
    (dir, tree)
}

fn read(dir: &Path) -> Snapshot {
    dir::read(dir, &dir::ReadOptions { include: spec::is_snapshot_file, ..Default::default() })
        .expect("read tree")
}

// ---------------------------------------------------------------------------------------------

fn bench_load(report: &mut Report, sizes: &[usize]) {
    let mut rows = Vec::new();
    for &n in sizes {
        let (dir, tree) = write_tree(n);
        let mut best = Duration::MAX;
        for _ in 0..3 {
            let started = Instant::now();
            let snapshot = read(dir.path());
            let (desired, diags) = spec::load(&snapshot, &LoadOptions::default());
            best = best.min(started.elapsed());
            assert!(
                diags.iter().all(|d| !d.is_error()),
                "{:?}",
                diags.iter().find(|d| d.is_error())
            );
            assert_eq!(desired.objects.len(), tree.objects());
        }
        let (wall, rss, ok) = measure_best(bin().arg("validate").arg(dir.path()), 3);
        assert!(ok, "validate failed");
        rows.push(vec![
            format!("{n}"),
            format!("{}", tree.files.len() - 2),
            format!("{}", tree.tables),
            secs(best),
            format!("{:.0}", tree.objects() as f64 / best.as_secs_f64()),
            secs(wall),
            mb(rss),
        ]);
    }
    report.sections.push(Section {
        title: "Load + validate".into(),
        note: "In-process: read the directory and `spec::load` (best of 3). Binary: `immuta-gitops validate DIR` \
               (wall time, best of 3, and peak RSS of the process)."
            .into(),
        header: vec!["objects", "files", "tables", "load (in-process)", "docs/s", "`validate` wall", "`validate` peak RSS"],
        rows,
    });
}

fn bench_offline_plan(report: &mut Report, n: usize) {
    // A Git repository whose last commit changes 1% of the policies.
    let repo = git::GitFixture::new();
    let tree = generate::tree(n, 42);
    for (path, text) in &tree.files {
        repo.write(&format!("specs/{path}"), text);
    }
    repo.commit("base");
    let changed = (tree.policies / 100).max(1);
    for i in 0..changed {
        repo.write(&format!("specs/policies/policy-{i:05}.yaml"), format!("policyKey: policy-{i:05}\nname: Renamed {i}\ntype: subscription\nactions:\n  type: manual\n"));
    }
    repo.commit("change");
    let specs = repo.work().join("specs");

    // In-process: what `plan --base` does after reading both trees: load the working tree,
    // its targets, the base state (only the base files that differ are loaded), the plan and
    // its text.
    let snapshot = read(&specs);
    let base_snapshot = immuta_gitops::source::git::read_revision_like(
        &specs,
        "HEAD~1",
        "specs",
        spec::is_snapshot_file,
        8 << 20,
        &snapshot,
    )
    .expect("base");
    let inputs = Inputs {
        options: LoadOptions { offline: true, ..LoadOptions::default() },
        secrets_dir: "/run/secrets".into(),
    };
    // Best of 3; the snapshots are copied (file texts are shared) outside the measured time,
    // since the plan consumes them.
    let mut pure = Duration::MAX;
    let mut last = None;
    for _ in 0..3 {
        let (current, base) = (snapshot.clone(), base_snapshot.clone());
        drop(last.take());
        let started = Instant::now();
        let loaded = Specs::load(&current, &inputs);
        let p = pipeline::plan_offline(&loaded, current, base, "HEAD~1").expect("plan").plan;
        let text = render::text(&p, &render::TextOptions { color: false });
        pure = pure.min(started.elapsed());
        last = Some((loaded, p, text));
    }
    let Some((loaded, p, text)) = last else { unreachable!("three runs") };
    assert_eq!(p.summary().update, changed, "{}", p.summary_line());

    let (wall, rss, ok) =
        measure_best(bin().args(["plan", "--base", "HEAD~1", "--color", "never"]).arg(&specs), 3);
    assert!(ok, "plan --base failed");

    // What the access impact adds: `plan::plan` with it and without it (`plan::decisions`),
    // on the same two trees (the base as the state), and the impact alone.
    let options = LoadOptions { offline: true, ..LoadOptions::default() };
    let (base_desired, _) = spec::load(&base_snapshot, &options);
    fn targets(d: &spec::Desired) -> Vec<plan::Target<'_>> {
        d.objects
            .iter()
            .map(|o| {
                let v = plan::comparable(o, None, pipeline::OFFLINE_SALT).expect("comparable");
                plan::Target::new(o, v)
            })
            .collect()
    }
    let (base_targets, current_targets) = (targets(&base_desired), targets(&loaded.desired));
    let mut state = immuta_gitops::state::State::new("offline", pipeline::OFFLINE_SALT);
    state.upsert_all(base_targets.iter().map(|t| t.entry(None, Vec::new(), "base", "")));
    let input = plan::PlanInput {
        targets: &current_targets,
        state: &state,
        observed: None,
        settings: &loaded.desired.settings,
        tenant: "offline".into(),
        revision: "current".into(),
        base: Some("base".into()),
        refresh: false,
        now: SystemTime::now(),
    };
    // Best of 5, each plan dropped outside the measured time (the binary never frees it).
    let best = |f: &dyn Fn() -> plan::Plan| {
        let mut best = Duration::MAX;
        let mut last = f();
        for _ in 0..5 {
            drop(last);
            let started = Instant::now();
            last = f();
            best = best.min(started.elapsed());
        }
        (best, last)
    };
    let (with, planned) = best(&|| plan::plan(&input));
    let (without, _) = best(&|| plan::decisions(&input));
    fn side<'t>(t: &'t plan::Target<'_>) -> plan::impact::Side<'t> {
        plan::impact::Side {
            kind: t.object.kind,
            key: &t.object.key,
            payload: &t.comparable,
            digest: &t.digest,
            names: &[],
        }
    }
    let impact_input = plan::impact::Input {
        before: base_targets.iter().map(side).collect(),
        after: current_targets.iter().map(side).collect(),
        tenant: None,
    };
    let mut impact_alone = Duration::MAX;
    let mut impact = plan::impact::impact(&impact_input);
    for _ in 0..5 {
        drop(impact);
        let started = Instant::now();
        impact = plan::impact::impact(&impact_input);
        impact_alone = impact_alone.min(started.elapsed());
    }
    assert_eq!(impact, planned.impact, "the plan's impact");
    assert_eq!(impact, p.impact, "the pipeline's impact");
    let added = with.saturating_sub(without);
    // Relative to the offline plan without the impact: what a user waited for before.
    let share = added.as_secs_f64() * 100.0 / pure.saturating_sub(added).as_secs_f64().max(1e-9);
    report.sections.push(Section {
        title: format!("Offline plan ({n} objects, {changed} changed)"),
        note: format!(
            "In-process: load the working tree, its targets, the base state (only base files that differ \
             from the working tree are loaded), `plan::plan` (with its access impact) and text rendering, with \
             both trees already read (best of 3). Binary: `immuta-gitops plan --base HEAD~1 DIR` (reads the directory and \
             the base revision from Git, then the same; best of 3 runs). Access impact: on the same two trees \
             (the base as the state), `plan::impact::impact` alone, and `plan::plan` against `plan::decisions` \
             (the same plan without the impact). The changed policies become manual subscriptions, so every \
             data source they matched is compared ({} tables, masking of every tagged column).",
            tree.tables
        ),
        header: vec!["measure", "time", "peak RSS", "plan output"],
        rows: vec![
            vec!["in-process (load, targets, base state, plan, text)".into(), secs(pure), "-".into(), format!("{} lines", text.lines().count())],
            vec!["`plan --base` binary".into(), secs(wall), mb(rss), p.summary_line()],
            vec![
                "access impact alone (`plan::impact::impact`, best of 5)".into(),
                secs(impact_alone),
                "-".into(),
                format!(
                    "{} findings ({} widening), {} subjects, {} broken references",
                    impact.findings.len(),
                    impact.count(plan::impact::Direction::Widening),
                    impact.findings.iter().map(|f| f.subjects.len()).sum::<usize>(),
                    impact.references.len()
                ),
            ],
            vec![
                "`plan::plan` with the impact / without it (`plan::decisions`), best of 5".into(),
                format!("{} / {}", secs(with), secs(without)),
                "-".into(),
                format!(
                    "the impact adds {} ({share:.0}% of the in-process offline plan without it)",
                    secs(added)
                ),
            ],
        ],
    });
    report.goals.push(Goal {
        goal: "the access impact of 10,000 objects adds at most 20% to the offline plan",
        measured: format!(
            "{n} objects, {changed} policies changed: `plan::plan` {} with the impact, {} without: +{} = {share:.0}% of the in-process offline plan without it ({} with it); the impact alone takes {}",
            secs(with),
            secs(without),
            secs(added),
            secs(pure),
            secs(impact_alone)
        ),
        met: n >= 10_000 && share <= 20.0,
    });
    report.goals.push(Goal {
        goal: "offline plan of 10,000 objects under 1 s and 200 MB",
        measured: format!("`plan --base` of {n} objects: {}, {}", secs(wall), mb(rss)),
        met: n >= 10_000 && wall < Duration::from_secs(1) && rss < 200 * 1024,
    });
}

struct Tenant {
    handle: EmulatorHandle,
    client: Client,
    counter: Arc<Counter>,
    http: reqwest::Client,
}

impl Tenant {
    async fn start(latency_ms: u64) -> Tenant {
        // Data sources are created in the background but at once: the rows compare the tools
        // (and the requests they make), not a tenant's creation time.
        let config =
            immuta_emulator::EmulatorConfig { creation_delay: Duration::ZERO, ..emulator_config() };
        let handle = Emulator::start_with(config).await.expect("emulator");
        let counter = Arc::new(Counter::default());
        let config = ClientConfig::new(handle.base_url(), SecretString::from(ADMIN_KEY.to_owned()));
        let client = Client::with_observer(config, counter.clone()).expect("client");
        let http = reqwest::Client::new();
        http.put(format!("{}/_emulator/latency", handle.base_url()))
            .json(&json!({"ms": latency_ms}))
            .send()
            .await
            .expect("latency");
        Tenant { handle, client, counter, http }
    }

    async fn latency(&self, ms: u64) {
        self.http
            .put(format!("{}/_emulator/latency", self.handle.base_url()))
            .json(&json!({"ms": ms}))
            .send()
            .await
            .expect("latency");
    }
}

struct Run {
    took: Duration,
    calls: BTreeMap<String, u64>,
    writes: usize,
}

impl Run {
    fn calls(&self) -> String {
        self.calls.iter().map(|(m, n)| format!("{m} {n}")).collect::<Vec<_>>().join(", ")
    }
}

/// One reconcile the way `apply --auto-approve` does it, through the same pipeline: load,
/// prepare, observe, check references, plan, check the refusals, apply.
/// A state under test: a store (file or PostgreSQL) and its digest key.
struct BenchState {
    store: Box<dyn Store>,
    keys: Keys,
}

impl BenchState {
    /// The state `bench` in the PostgreSQL database `db`, with a given digest key.
    async fn postgres(db: &postgres::TestDb) -> BenchState {
        let target = store::Target {
            location: store::Location::Postgres(db.url()),
            tenant: "bench".into(),
            name: "default".into(),
            password: db.password.clone().map(Into::into),
            holder: "bench".into(),
        };
        BenchState {
            store: store::open(&target).await.expect("the PostgreSQL state"),
            keys: Keys::given(b"bench-digest-key-0123456789", "bench").expect("key"),
        }
    }

    /// A state file at `path` (its key beside it, made at the first apply).
    fn file(path: &Path) -> BenchState {
        BenchState {
            store: Box::new(FileStore::new(path, "bench")),
            keys: Keys::local(&key::local_path(path)).expect("key"),
        }
    }
}

async fn ours(
    t: &Tenant,
    dir: &Path,
    state: &BenchState,
    refresh: bool,
    apply_changes: bool,
    parallelism: usize,
) -> (Run, plan::Plan) {
    t.counter.take();
    let started = Instant::now();
    let snapshot = read(dir);
    let inputs = Inputs { options: LoadOptions::default(), secrets_dir: "/run/secrets".into() };
    let specs = Specs::load(&snapshot, &inputs);
    let _lock = state.store.try_lock().await.expect("the state's lock");
    let prepared =
        specs.prepare(&*state.store, "bench", &state.keys).await.expect("valid specs and a state");
    let planned = prepared.plan(&t.client, refresh, parallelism).await.expect("plan");
    let mut writes = 0;
    if apply_changes && planned.plan.has_changes() {
        let options = ApplyOptions { parallelism, ..ApplyOptions::default() };
        let outcome = planned
            .apply(Overrides::default(), &t.client, &options, &Silent)
            .await
            .expect("apply (not refused)");
        assert!(
            outcome.is_success(),
            "apply failed: {:?}",
            outcome.results.iter().find(|r| !matches!(
                r.status,
                apply::Status::Applied | apply::Status::Unchanged | apply::Status::Adopted
            ))
        );
        writes = outcome.writes();
    }
    (Run { took: started.elapsed(), calls: t.counter.take(), writes }, planned.plan)
}

/// The naive way: post every spec, one after the other, on every run (a CI loop over
/// `immuta datasource|policy|project|purpose save`), data sources with `wait=-1`.
async fn naive(t: &Tenant, dir: &Path) -> Run {
    t.counter.take();
    let started = Instant::now();
    let snapshot = read(dir);
    let (desired, _) = spec::load(&snapshot, &LoadOptions::default());
    let source = ProcessSecrets::new("/run/secrets").with_defaults(desired.env_defaults.clone());
    let mut writes = 0;
    for o in &desired.objects {
        let payload = secrets::interpolate(&o.payload, &source).expect("secrets");
        // `wait=-1`: the data sources exist before the loop goes on (Immuta creates them in
        // the background, and the projects posted later name them).
        let mut options = o.options.clone();
        if o.kind == spec::Kind::DataSource {
            options.wait = Some(-1);
        }
        live::write(&t.client, o.kind, &payload, &options, &[]).await.expect("naive post");
        writes += 1;
    }
    Run { took: started.elapsed(), calls: t.counter.take(), writes }
}

/// The no-op reconcile of `n` objects with each state backend: the same tree, applied once to a
/// tenant of its own, then reconciled with nothing to do (best of 3).
async fn bench_state(report: &mut Report, n: usize) {
    let (dir, _) = write_tree(n);
    let files = tempfile::tempdir().expect("state dir");
    let db = postgres::TestDb::create().await;
    let backends = [
        ("file", BenchState::file(&files.path().join("state.json"))),
        ("PostgreSQL", BenchState::postgres(&db).await),
    ];
    let mut rows = Vec::new();
    let mut noops = Vec::new();
    for (name, state) in &backends {
        let t = Tenant::start(0).await;
        let (cold, _) = ours(&t, dir.path(), state, false, true, PARALLELISM).await;
        let mut best = Duration::MAX;
        for _ in 0..3 {
            let (noop, plan) = ours(&t, dir.path(), state, false, true, PARALLELISM).await;
            assert!(!plan.has_changes() && noop.writes == 0, "{name}: {}", plan.summary_line());
            best = best.min(noop.took);
        }
        noops.push(best);
        rows.push(vec![format!("{n}"), (*name).to_owned(), secs(cold.took), secs(best)]);
    }
    let ratio = noops[1].as_secs_f64() / noops[0].as_secs_f64().max(f64::EPSILON);
    for row in &mut rows {
        row.push(String::new());
    }
    if let Some(last) = rows.last_mut() {
        last[4] = format!("{ratio:.2}x");
    }
    report.sections.push(Section {
        title: format!("State backends ({n} objects)"),
        note:
            "The same tree applied to a tenant of its own with each state backend (the cold apply \
               records every object: one journal line each in the file, one transaction each in \
               PostgreSQL), then reconciled with nothing to do: load, read the state, the tenant's \
               listings, plan (best of 3). PostgreSQL is the throw-away local cluster of the test \
               kit (or IMMUTA_GITOPS_TEST_DATABASE_URL), over TCP on loopback."
                .into(),
        header: vec!["objects", "state", "cold apply", "no-op reconcile", "vs file"],
        rows,
    });
    report.goals.push(Goal {
        goal: "no-op reconcile of 10,000 objects with PostgreSQL state within 1.5x the file backend",
        measured: format!(
            "{n} objects: {} (PostgreSQL) vs {} (file), {ratio:.2}x",
            secs(noops[1]),
            secs(noops[0])
        ),
        met: n >= 10_000 && ratio <= 1.5,
    });
}

fn touch_one(dir: &Path) {
    let path = dir.join("policies/policy-00003.yaml");
    let text = std::fs::read_to_string(&path).expect("policy");
    std::fs::write(&path, text.replace("type: manual", "type: manual\n  description: edited"))
        .expect("edit");
}

async fn bench_apply(report: &mut Report, n: usize, latencies: &[u64]) {
    let mut rows = Vec::new();
    for &ms in latencies {
        // Ours.
        let (dir, _) = write_tree(n);
        let state = tempfile::tempdir().expect("state");
        let state_path = BenchState::file(&state.path().join("state.json"));
        let t = Tenant::start(ms).await;
        let (cold, _) = ours(&t, dir.path(), &state_path, false, true, PARALLELISM).await;
        let (noop, noop_plan) = ours(&t, dir.path(), &state_path, false, true, PARALLELISM).await;
        touch_one(dir.path());
        let (one, _) = ours(&t, dir.path(), &state_path, false, true, PARALLELISM).await;
        let (refresh, refresh_plan) =
            ours(&t, dir.path(), &state_path, true, false, PARALLELISM).await;
        // The same cold apply with a wider --parallelism, on a fresh tenant.
        let (wdir, _) = write_tree(n);
        let wstate = tempfile::tempdir().expect("state");
        let wt = Tenant::start(ms).await;
        let (wide, _) = ours(
            &wt,
            wdir.path(),
            &BenchState::file(&wstate.path().join("state.json")),
            false,
            true,
            WIDE,
        )
        .await;
        assert!(!noop_plan.has_changes() && !refresh_plan.has_changes());
        // Naive, on a fresh tenant.
        let (ndir, _) = write_tree(n);
        let nt = Tenant::start(ms).await;
        let ncold = naive(&nt, ndir.path()).await;
        let nnoop = naive(&nt, ndir.path()).await;
        touch_one(ndir.path());
        let none = naive(&nt, ndir.path()).await;
        let wide_label = format!("cold apply, `--parallelism {WIDE}`");
        for (what, o, nv) in [
            ("cold apply", &cold, &ncold),
            (wide_label.as_str(), &wide, &ncold),
            ("no-op reconcile (source pass, no refresh)", &noop, &nnoop),
            ("one file changed", &one, &none),
        ] {
            rows.push(vec![
                format!("{n}"),
                format!("{ms} ms"),
                what.to_owned(),
                secs(o.took),
                format!("{} ({})", o.writes, o.calls()),
                secs(nv.took),
                format!("{} ({})", nv.writes, nv.calls()),
                format!("{:.1}x", nv.took.as_secs_f64() / o.took.as_secs_f64().max(1e-9)),
            ]);
        }
        rows.push(vec![
            format!("{n}"),
            format!("{ms} ms"),
            "`plan` / `apply` refresh, the default (every object's dry run)".into(),
            secs(refresh.took),
            format!("0 ({})", refresh.calls()),
            "-".into(),
            "-".into(),
            "-".into(),
        ]);
        if ms == 20 {
            let ratio = |o: &Run| ncold.took.as_secs_f64() / o.took.as_secs_f64().max(1e-9);
            report.goals.push(Goal {
                goal: "cold apply at least 5x faster than the naive loop at 20 ms latency",
                measured: format!(
                    "{n} objects, naive {}: {} with `--parallelism {WIDE}` ({:.1}x); {} with the \
                     default 4 ({:.1}x)",
                    secs(ncold.took),
                    secs(wide.took),
                    ratio(&wide),
                    secs(cold.took),
                    ratio(&cold),
                ),
                met: ratio(&wide) >= 5.0,
            });
        }
        if ms == latencies[0] {
            report.goals.push(Goal {
                goal: "no-op reconcile with zero writes",
                measured: format!("{n} objects: {} writes ({})", noop.writes, noop.calls()),
                met: noop.writes == 0 && !noop.calls.contains_key("DELETE"),
            });
            report.goals.push(Goal {
                goal: "one-file change with exactly one write",
                measured: format!("{n} objects: {} write(s) ({})", one.writes, one.calls()),
                met: one.writes == 1,
            });
        }
        t.latency(0).await;
    }
    report.sections.push(Section {
        title: format!("Apply: immuta-gitops vs the naive loop ({n} objects)"),
        note: format!(
            "Ours: load, V1 listings, dry runs of changed objects only, plan, apply with the default parallelism \
             ({PARALLELISM} writes, {} dry runs in flight; one cold apply also with {WIDE}), \
             state journaled. Naive: post every spec file, serially, on every run (data sources with \
             `wait=-1`, so that the projects after them find them). Writes are POSTs/DELETEs \
             that change the tenant; request counts are by HTTP method (our POSTs include dry runs; GETs are \
             listing pages and, on both sides, the reads of the project acknowledgement, which the emulator \
             asks for as real tenants do). The emulator creates data sources in the background, but at once. Latency is injected per request by the emulator. At 0 ms, both sides wait only on \
             the emulator's own work, which grows with the tenant (it checks a data-source post against every \
             data source), so at 10,000 objects those rows compare request counts more than the tools.",
            PARALLELISM * 2
        ),
        header: vec!["objects", "latency", "run", "immuta-gitops", "writes (requests)", "naive", "writes (requests)", "naive / ours"],
        rows,
    });
}

/// The no-op `plan` of the binary against a tenant holding `n` objects it applied, at each of
/// `latencies` (ms per request): wall time (best of 3) and peak RSS of the process.
async fn bench_noop_plan(report: &mut Report, n: usize, latencies: &[u64]) {
    let (dir, _) = write_tree(n);
    let state = tempfile::tempdir().expect("state");
    let t = Tenant::start(0).await;
    // The cold apply, by the binary (so that the state is the binary's, for this tenant URL).
    let mut apply = bin();
    apply
        .arg("apply")
        .arg(dir.path())
        .args(["--auto-approve", "--parallelism", &WIDE.to_string(), "--url"])
        .arg(t.handle.base_url())
        .arg("--state-dir")
        .arg(state.path())
        .env("IMMUTA_API_KEY", ADMIN_KEY);
    let (_, _, applied) =
        tokio::task::spawn_blocking(move || measure(&mut apply)).await.expect("the apply thread");
    assert!(applied, "the cold apply of {n} objects failed");
    let mut rows = Vec::new();
    let mut measured = Vec::new();
    for &ms in latencies {
        t.latency(ms).await;
        let mut cmd = bin();
        cmd.arg("plan")
            .arg(dir.path())
            .args(["--refresh=false", "--detailed-exitcode", "--color", "never", "--url"])
            .arg(t.handle.base_url())
            .arg("--state-dir")
            .arg(state.path())
            .env("IMMUTA_API_KEY", ADMIN_KEY);
        t.counter.take();
        let (wall, rss, ok) = tokio::task::spawn_blocking(move || measure_best(&mut cmd, 3))
            .await
            .expect("the measuring thread");
        assert!(ok, "the no-op plan failed or found changes at {ms} ms");
        measured.push((ms, wall, rss));
        rows.push(vec![format!("{n}"), format!("{ms} ms"), secs(wall), mb(rss)]);
    }
    t.latency(0).await;
    if let [(_, base, base_rss), .., (ms, slow, slow_rss)] = measured[..] {
        let ratio = slow.as_secs_f64() / base.as_secs_f64().max(1e-9);
        let rss = base_rss.max(slow_rss);
        report.goals.push(Goal {
            goal: "no-op plan (`--refresh=false`) of 10,000 objects: 50 ms per request at most 1.3x the 0 ms run, peak RSS at most 150 MB",
            measured: format!(
                "{n} objects: {} at 0 ms, {} at {ms} ms ({ratio:.2}x), peak RSS {}",
                secs(base),
                secs(slow),
                mb(rss)
            ),
            met: n >= 10_000 && ms >= 50 && ratio <= 1.3 && rss <= 150 * 1024,
        });
    }
    report.sections.push(Section {
        title: format!("No-op plan ({n} objects, binary)"),
        note: "`immuta-gitops plan DIR --refresh=false --detailed-exitcode` against a tenant holding every object of the tree (applied before by the binary, state present): load, the state, the V1 listings (pages after the first fetched concurrently once a count is known), no dry run (a plain `plan` refreshes: its cost is the refresh row of the apply tables), plan, text. Latency is injected per request by the emulator. Wall time is the best of 3 runs; peak RSS the highest (the process's own `VmHWM`)."
            .into(),
        header: vec!["objects", "latency", "wall", "peak RSS"],
        rows,
    });
}

async fn status(http: &reqwest::Client, base: &str) -> serde_json::Value {
    match http.get(format!("{base}/status")).send().await {
        Ok(r) => r.json().await.unwrap_or_default(),
        Err(_) => serde_json::Value::Null,
    }
}

async fn wait_applied(
    http: &reqwest::Client,
    base: &str,
    rev: &str,
    log: &Mutex<Vec<String>>,
) -> Duration {
    let started = Instant::now();
    loop {
        let s = status(http, base).await;
        if s["applied_revision"] == rev {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "not applied: {s:#}\n{}",
            log.lock().unwrap().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn proc_stat(pid: u32) -> (u64, i64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = fields.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + fields.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (ticks, rss)
}

async fn bench_daemon(report: &mut Report, idle: Duration) {
    let emulator = Emulator::start_with(emulator_config()).await.expect("emulator");
    let repo = git::GitFixture::new();
    let tree = generate::tree(50, 7);
    for (path, text) in &tree.files {
        repo.write(path, text);
    }
    let mut head = repo.commit("base");
    let server = git::GitDaemon::serve(&repo.base_path());
    let secret = "bench-webhook-secret";
    let mut rows = Vec::new();
    for (label, interval) in [("webhook", "1h"), ("poll every 5s", "5s")] {
        let dir = tempfile::tempdir().expect("state");
        let mut child = bin()
            .args([
                "run",
                "--repo",
                &server.url("repo.git"),
                "--listen",
                "127.0.0.1:0",
                "--interval",
                interval,
                "--drift-interval",
                "0s",
            ])
            .arg("--url")
            .arg(emulator.base_url())
            .arg("--state-dir")
            .arg(dir.path())
            .env("IMMUTA_API_KEY", ADMIN_KEY)
            .env("IMMUTA_GITOPS_WEBHOOK_SECRET", secret)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = log.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            // Keep draining stderr so the reconciler never blocks on a full pipe.
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(a) = line.strip_prefix("immuta-gitops reconciler serving on ") {
                    let _ = tx.send(a.to_owned());
                }
                lines.lock().unwrap().push(line);
            }
        });
        let base = rx.recv_timeout(Duration::from_secs(30)).expect("the reconciler starts");
        let http = reqwest::Client::new();
        wait_applied(&http, &base, &head, &log).await;
        let mut samples = Vec::new();
        for i in 0..5 {
            repo.write(
                &format!("purposes/bench-{label}-{i}.yaml").replace(' ', "-"),
                format!("name: Bench {label} {i}\n"),
            );
            head = repo.commit("change");
            let started = Instant::now();
            if label == "webhook" {
                let body = json!({"ref": "refs/heads/main", "after": head}).to_string();
                use hmac::{Hmac, KeyInit, Mac};
                let mut mac =
                    Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("hmac");
                mac.update(body.as_bytes());
                let sig = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
                http.post(format!("{base}/webhook"))
                    .header("X-GitHub-Event", "push")
                    .header("X-Hub-Signature-256", sig)
                    .body(body)
                    .send()
                    .await
                    .expect("webhook");
            }
            wait_applied(&http, &base, &head, &log).await;
            samples.push(started.elapsed());
        }
        samples.sort();
        rows.push(vec![
            format!("commit to applied, {label}"),
            format!(
                "median {}, min {}, max {} (5 commits)",
                secs(samples[2]),
                secs(samples[0]),
                secs(samples[4])
            ),
        ]);
        if label == "webhook" {
            // Idle: no commits, no webhooks (the poll interval is 1 h).
            let (t0, _) = proc_stat(child.id());
            tokio::time::sleep(idle).await;
            let (t1, rss) = proc_stat(child.id());
            // SAFETY: sysconf has no preconditions.
            let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
            let cpu = (t1 - t0) as f64 / hz;
            rows.push(vec![
                format!("idle over {}", secs(idle)),
                format!(
                    "CPU {:.3} s ({:.3}% of one core), RSS {}",
                    cpu,
                    cpu * 100.0 / idle.as_secs_f64(),
                    mb(rss)
                ),
            ]);
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    report.sections.push(Section {
        title: "Reconciler (`immuta-gitops run`, release build)".into(),
        note: "A 50-object repository served by `git daemon` on loopback; each commit adds one purpose. Latency is \
               from the push (and, with the webhook, the delivery) to `/status` reporting the commit as applied."
            .into(),
        header: vec!["measure", "result"],
        rows,
    });
}

async fn bench_emulator(report: &mut Report, window: Duration) {
    let emulator = Emulator::start_with(emulator_config()).await.expect("emulator");
    let base = emulator.base_url();
    let http = reqwest::Client::new();
    let deadline = Instant::now() + window;
    let mut tasks = Vec::new();
    for w in 0..4u64 {
        let http = http.clone();
        let base = base.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                let i = n % 50;
                let (path, body) = match n % 4 {
                    0 => ("/api/v2/policy", json!({"policyKey": format!("p{w}-{i}"), "name": format!("P {w} {i} {n}"), "type": "subscription", "actions": {"type": "anyone"}})),
                    1 => ("/api/v2/purpose", json!({"name": format!("Purpose {w} {i}"), "description": format!("{n}")})),
                    // Data: a real post every other time (full replace of the connection's
                    // tables), a dry run otherwise.
                    2 => (if n % 8 == 2 { "/api/v2/data" } else { "/api/v2/data?dryRun=true" }, json!({"connectionKey": format!("c{w}-{i}"), "connection": {"handler": "Snowflake", "hostname": format!("h{w}-{i}"), "database": "D"}, "sources": [{"tableName": format!("T{w}X{i}V{}", n % 3), "schema": "S"}]})),
                    _ => ("/api/v2/project", json!({"projectKey": format!("k{w}-{i}"), "name": format!("K {w} {i} {n}")})),
                };
                let r = http.post(format!("{base}{path}")).header("Authorization", ADMIN_KEY).json(&body).send().await.expect("post");
                assert!(r.status().is_success(), "{path}: {}", r.status());
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("task");
    }
    report.sections.push(Section {
        title: "Emulator throughput".into(),
        note: "4 concurrent clients on loopback, in the same process as the emulator, posting a mix of policy, \
               purpose and project upserts, data-source posts (each replacing the connection's table) and dry runs."
            .into(),
        header: vec!["window", "requests", "requests/s"],
        rows: vec![vec![secs(window), total.to_string(), format!("{:.0}", total as f64 / window.as_secs_f64())]],
    });
}

fn render_report(report: &Report, command: &str) -> String {
    let mut s = String::from("# Benchmarks\n\n");
    s.push_str(&format!(
        "Measured {} on {}.\n\nCommand: `{command}` (release build; every number comes from one run of that command).\n\n",
        humantime::format_rfc3339_seconds(SystemTime::now()).to_string().get(..10).unwrap_or_default(),
        machine()
    ));
    s.push_str("## Goals\n\n| goal | measured | met |\n|---|---|---|\n");
    for g in &report.goals {
        s.push_str(&format!(
            "| {} | {} | {} |\n",
            g.goal,
            g.measured,
            if g.met { "yes" } else { "**no**" }
        ));
    }
    for sec in &report.sections {
        s.push_str(&format!("\n## {}\n\n{}\n\n", sec.title, sec.note));
        s.push_str(&format!("| {} |\n", sec.header.join(" | ")));
        s.push_str(&format!("|{}\n", "---|".repeat(sec.header.len())));
        for row in &sec.rows {
            s.push_str(&format!("| {} |\n", row.join(" | ")));
        }
    }
    s
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "--measured") {
        measured(&args[1..]);
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--emit-tree") {
        // `--emit-tree N DIR`: write a generated tree (for profiling) and stop.
        let n = args.get(i + 1).and_then(|v| v.parse().ok()).unwrap_or(1000);
        let dir = PathBuf::from(args.get(i + 2).map_or("tree", String::as_str));
        generate::write(&generate::tree(n, 42), &dir).expect("write tree");
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    // `--only load,plan,apply,state,noop,daemon,emulator`: a subset (for profiling; never --write it).
    let only: Option<Vec<String>> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(|v| v.split(',').map(str::to_owned).collect());
    let runs = |part: &str| only.as_ref().is_none_or(|o| o.iter().any(|p| p == part));
    let out: Option<PathBuf> =
        args.iter().position(|a| a == "--write").and_then(|i| args.get(i + 1)).map(PathBuf::from);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut report = Report::default();
    let big = if quick { 2_000 } else { 10_000 };
    let small = if quick { 300 } else { 1_000 };
    if runs("load") {
        eprintln!("load...");
        bench_load(&mut report, &[small, big]);
    }
    if runs("plan") {
        eprintln!("offline plan...");
        bench_offline_plan(&mut report, big);
    }
    runtime.block_on(async {
        if runs("apply") {
            eprintln!("apply (ours vs naive)...");
            // `--objects N --latency MS`: one configuration only (for profiling).
            let arg = |name: &str| {
                args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)?.parse().ok())
            };
            match (arg("--objects"), arg("--latency")) {
                (Some(n), latency) => {
                    bench_apply(&mut report, n as usize, &[latency.unwrap_or(0)]).await
                }
                _ => {
                    bench_apply(&mut report, small, &[0, 20]).await;
                    bench_apply(&mut report, big, &[0]).await;
                }
            }
        }
        if runs("state") {
            eprintln!("state backends...");
            bench_state(&mut report, big).await;
        }
        if runs("noop") {
            eprintln!("no-op plan...");
            bench_noop_plan(&mut report, big, &[0, 50]).await;
        }
        if runs("daemon") {
            eprintln!("reconciler...");
            bench_daemon(
                &mut report,
                if quick { Duration::from_secs(10) } else { Duration::from_secs(60) },
            )
            .await;
        }
        if runs("emulator") {
            eprintln!("emulator...");
            bench_emulator(&mut report, Duration::from_secs(5)).await;
        }
    });
    let command = format!(
        "cargo bench --bench reconcile -- {}--write BENCHMARKS.md",
        if quick { "--quick " } else { "" }
    );
    let text = render_report(&report, &command);
    match out {
        Some(path) => std::fs::write(&path, &text).expect("write report"),
        None => print!("{text}"),
    }
}

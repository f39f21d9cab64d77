//! A new user's first hour, the way the newcomer audit tried it: each test drives the real
//! binary. The sandbox is used only when nothing else was meant (an empty `IMMUTA_URL`, an API
//! key without a URL, `CI` and `run` are errors that name the fix); an unreachable tenant gives
//! one clear error within seconds and leaves no file; `validate --offline` needs no secret;
//! diagnostics are `file:line:col` from the current directory and `--format github` emits
//! workflow annotations; the state directory ignores itself in Git.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::{SpecDir, bin, output_text};

/// A spec tree with one valid policy.
fn one_policy() -> SpecDir {
    let specs = SpecDir::new();
    specs.write("policies/p.yaml", &crate::support::tenant::policy_spec("p"));
    specs
}

/// Whether anything exists under `dir` (the state directory a refused command must not make).
fn is_empty_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir).map_or(true, |mut entries| entries.next().is_none())
}

/// What a refused case runs: a name, the arguments, the environment, and what the error says.
type Case<'a> = (&'a str, &'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

#[test]
fn the_sandbox_only_when_nothing_else_was_meant() {
    let specs = one_policy();
    let cases: [Case<'_>; 5] = [
        (
            "empty IMMUTA_URL with a key",
            &["plan"],
            &[("IMMUTA_URL", ""), ("IMMUTA_API_KEY", "k")],
            "set but empty",
        ),
        ("empty IMMUTA_URL", &["apply", "--auto-approve"], &[("IMMUTA_URL", "")], "set but empty"),
        (
            "a key without a URL",
            &["apply", "--auto-approve"],
            &[("IMMUTA_API_KEY", "k")],
            "no tenant URL",
        ),
        ("CI", &["plan"], &[("CI", "true")], "CI is set"),
        ("license status in CI", &["license", "status"], &[("CI", "1")], "CI is set"),
    ];
    for (what, args, env, says) in cases {
        let state = tempfile::tempdir().unwrap();
        let out = bin()
            .args(args)
            .args(if args[0] == "license" { vec![] } else { vec![specs.path().as_os_str()] })
            .arg("--state-dir")
            .arg(state.path())
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let text = output_text(&out);
        assert_eq!(out.status.code(), Some(1), "{what}: {text}");
        assert!(text.contains(says) && text.contains("--sandbox"), "{what}: {text}");
        assert!(!text.contains("Using the embedded sandbox"), "{what}: {text}");
        assert!(is_empty_dir(state.path()), "{what}: no sandbox was made");
    }
    // `run` without a tenant refuses at once, instead of reconciling a sandbox forever.
    let state = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["run", "--dir"])
        .arg(specs.path())
        .args(["--listen", "127.0.0.1:0", "--state-dir"])
        .arg(state.path())
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("`run` needs a tenant") && text.contains("--sandbox"), "{text}");
    // `--sandbox` is the explicit way, in CI too; a `CI=false` is no CI.
    for env in [[("CI", "true")], [("CI", "false")]] {
        let state = tempfile::tempdir().unwrap();
        let sandbox: &[&str] = if env[0].1 == "true" { &["--sandbox"] } else { &[] };
        let out = bin()
            .arg("plan")
            .arg(specs.path())
            .args(sandbox)
            .arg("--state-dir")
            .arg(state.path())
            .envs(env)
            .output()
            .unwrap();
        let text = output_text(&out);
        assert_eq!(out.status.code(), Some(0), "{env:?}: {text}");
        assert!(text.starts_with("Using the embedded sandbox tenant"), "{env:?}: {text}");
    }
}

#[test]
fn the_state_directory_ignores_itself_in_git() {
    // In a Git work tree, as the audit did it: `apply` with the default state directory.
    let work = tempfile::tempdir().unwrap();
    let specs = work.path().join("specs");
    std::fs::create_dir_all(specs.join("policies")).unwrap();
    std::fs::write(specs.join("policies/p.yaml"), crate::support::tenant::policy_spec("p"))
        .unwrap();
    let git = |args: &[&str]| {
        let out =
            std::process::Command::new("git").args(args).current_dir(work.path()).output().unwrap();
        assert!(out.status.success(), "git {args:?}: {}", output_text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    git(&["init", "-q"]);
    let out = bin()
        .current_dir(work.path())
        .args(["apply", "specs", "--auto-approve"])
        .env_remove("IMMUTA_GITOPS_STATE_DIR")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    let ignore = std::fs::read_to_string(work.path().join(".immuta-gitops/.gitignore")).unwrap();
    assert!(ignore.lines().any(|l| l == "*"), "{ignore}");
    assert!(work.path().join(".immuta-gitops/sandbox/state.json").is_file());
    // `git add -A` stages the specs and nothing of the state directory.
    git(&["add", "-A"]);
    let staged = git(&["diff", "--cached", "--name-only"]);
    assert_eq!(staged.trim(), "specs/policies/p.yaml", "{staged}");
    // A directory that exists already is left alone (`--state-dir .` writes no .gitignore).
    assert!(!work.path().join(".gitignore").exists());
}

/// A port on 127.0.0.1 that nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The `: `-separated parts of `line` that appear more than once (a cause printed twice).
fn repeated_parts(line: &str) -> Vec<String> {
    let parts: Vec<&str> = line.split(": ").map(str::trim).filter(|p| p.len() > 12).collect();
    let mut seen = std::collections::BTreeSet::new();
    parts.into_iter().filter(|p| !seen.insert(*p)).map(str::to_owned).collect()
}

#[test]
fn an_unreachable_tenant_fails_fast_says_it_once_and_leaves_no_file() {
    let specs = one_policy();
    for url in [format!("http://127.0.0.1:{}", closed_port()), "http://unreachable.invalid".into()]
    {
        let work = tempfile::tempdir().unwrap();
        let started = Instant::now();
        // The real retry schedule (no IMMUTA_GITOPS_RETRY_BASE_MS), from an empty directory.
        let out = bin()
            .current_dir(work.path())
            .arg("plan")
            .arg(specs.path())
            .env("IMMUTA_URL", &url)
            .env("IMMUTA_API_KEY", "some-key")
            .env_remove("IMMUTA_GITOPS_STATE_DIR")
            .env_remove("IMMUTA_GITOPS_RETRY_BASE_MS")
            .timeout(Duration::from_secs(60))
            .output()
            .unwrap();
        let took = started.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{url}: {}", output_text(&out));
        assert!(took < Duration::from_secs(10), "{url}: {took:?}\n{stderr}");
        let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error: ")).collect();
        assert_eq!(errors.len(), 1, "{url}: {stderr}");
        assert!(errors[0].contains("cannot reach the Immuta tenant"), "{stderr}");
        assert!(repeated_parts(errors[0]).is_empty(), "{url}: {:?}", repeated_parts(errors[0]));
        assert!(
            !stderr.contains("retrying Immuta request"),
            "details are at debug level: {stderr}"
        );
        assert!(stderr.lines().count() <= 2, "one error and one retry count: {stderr}");
        assert!(is_empty_dir(work.path()), "{url}: plan wrote a file");
    }
}

/// Every error and its causes: no message repeats its cause's text (the CLI prints the chain,
/// so a cause in the message too would be printed twice).
#[test]
fn no_error_repeats_its_cause() {
    use immuta_gitops::{apply, live, pipeline, plan, source, state};
    let io = || {
        std::io::Error::new(std::io::ErrorKind::PermissionDenied, "permission denied (os error 13)")
    };
    let file = || state::file::Error::Io { path: "s/state.json".into(), source: io() };
    let json = || serde_json::from_str::<serde_json::Value>("{").unwrap_err();
    let errors: Vec<Box<dyn std::error::Error>> = vec![
        Box::new(pipeline::Error::Live(live::Error::Transport {
            url: "http://127.0.0.1:9/x".into(),
            message: "tcp connect error: Connection refused (os error 111)".into(),
        })),
        Box::new(pipeline::Error::State(state::store::Error::File(file()))),
        Box::new(pipeline::Error::Apply(apply::Error::State(state::store::Error::File(file())))),
        Box::new(source::Error::Io { path: "specs".into(), source: io() }),
        Box::new(state::key::Error::Read { path: "k".into(), source: io() }),
        Box::new(state::key::Error::Write { path: "k".into(), source: io() }),
        Box::new(plan::render::SavedPlanError::Syntax(json())),
        Box::new(plan::render::SavedPlanError::Malformed(json())),
        Box::new(pipeline::Error::Secret {
            object: "policy \"p\"".into(),
            source: immuta_gitops::spec::secrets::InterpolateError::MissingVar {
                name: "X".into(),
                path: "$.a".into(),
            },
        }),
    ];
    for e in &errors {
        let mut outer: &dyn std::error::Error = e.as_ref();
        while let Some(cause) = outer.source() {
            let (text, cause_text) = (outer.to_string(), cause.to_string());
            assert!(!text.contains(&cause_text), "`{text}` repeats its cause `{cause_text}`");
            outer = cause;
        }
        let chain = immuta_gitops::diagnostic::chain(e.as_ref());
        assert!(repeated_parts(&chain).is_empty(), "{chain}");
    }
}

#[test]
fn validate_offline_checks_placeholders_without_their_values() {
    let work = tempfile::tempdir().unwrap();
    let write = |rel: &str, text: &str| {
        let path = work.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    let unset = crate::support::tenant::policy_spec("p")
        .replace("name: Policy p", "name: \"${FIRST_HOUR_UNSET} ${file:db/password}\"");
    write("specs/policies/p.yaml", &unset);
    let validate = |extra: &[&str]| {
        bin()
            .current_dir(work.path())
            .args(["validate", "specs"])
            .args(extra)
            .env_remove("FIRST_HOUR_UNSET")
            .output()
            .unwrap()
    };
    // With values required (before an apply), the unset variable is an error...
    let out = validate(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    assert!(output_text(&out).contains("FIRST_HOUR_UNSET"), "{}", output_text(&out));
    // ...offline, placeholders only need to be well formed.
    let out = validate(&["--offline"]);
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    write(
        "specs/policies/q.yaml",
        &crate::support::tenant::policy_spec("q").replace("Policy q", "\"${BROKEN\""),
    );
    let out = validate(&["--offline"]);
    assert_eq!(out.status.code(), Some(1), "a malformed placeholder: {}", output_text(&out));
    // Paths are named from the current directory, as the spec root was given.
    assert!(
        output_text(&out).contains("specs/policies/q.yaml:1:7: error[placeholder]"),
        "{}",
        output_text(&out)
    );
}

#[test]
fn diagnostics_are_clickable_and_github_annotations_escape() {
    let work = tempfile::tempdir().unwrap();
    let specs = work.path().join("repo/specs");
    std::fs::create_dir_all(specs.join("policies")).unwrap();
    std::fs::write(
        specs.join("policies/p.yaml"),
        crate::support::tenant::policy_spec("p")
            .replace("type: data", "type: data\nmaskingConfg: 1"),
    )
    .unwrap();
    std::fs::write(specs.join("policies/bad, 100%.yaml"), "name: [unclosed\n").unwrap();
    // An absolute root under the current directory is shown relative to it.
    let out = bin()
        .current_dir(work.path())
        .arg("validate")
        .arg(&specs)
        .args(["--format", "github"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines.iter().any(|l| l.starts_with(
            "::warning file=repo/specs/policies/p.yaml,line=4,col=1,title=warning[unknown-field]::"
        )),
        "{stdout}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("::error file=repo/specs/policies/bad%2C 100%25.yaml,line=")),
        "{stdout}"
    );
    assert!(lines.iter().all(|l| l.starts_with("::")), "one annotation per line: {stdout}");
    assert!(
        lines.last().unwrap().starts_with("::notice title=immuta-gitops validate::"),
        "{stdout}"
    );
    // Text: the same files, from the current directory.
    let out =
        bin().current_dir(work.path().join("repo")).args(["validate", "./specs"]).output().unwrap();
    assert!(
        output_text(&out).contains("\nspecs/policies/p.yaml:4:1: warning[unknown-field]"),
        "{}",
        output_text(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_format_github_annotates_spec_warnings_and_destructive_changes() {
    let env = crate::support::tenant::Env::with_policies(2).await;
    std::fs::remove_file(env.specs.path().join("policies/p2.yaml")).unwrap();
    env.specs.write(
        "policies/p1.yaml",
        &crate::support::tenant::policy_spec("p1")
            .replace("type: data", "type: data\nmaskingConfg: 1"),
    );
    let run = env.plan(&["--format", "github", "--refresh=false"]).await.must_exit(0);
    let stdout = &run.stdout;
    assert!(
        stdout.contains(
            "::warning file=policies/p1.yaml,line=4,col=1,title=warning[unknown-field]::"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("::warning title=destructive change (needs --allow-destroy)::policy \"p2\" will be delete"), "{stdout}");
    assert!(stdout.contains("- policy \"p2\""), "the text plan too: {stdout}");
    assert!(stdout.contains("::notice title=immuta-gitops plan::Plan for http"), "{stdout}");
}

/// Runs `args` of the binary in a pseudo-terminal (`script`), as a person would: stdout and
/// stderr both reach the terminal. `None` where `script` is not installed.
fn in_terminal(env: &crate::support::tenant::Env, args: &[&str]) -> Option<(i32, String)> {
    if !Path::new("/usr/bin/script").exists() {
        return None;
    }
    let mut command = vec![crate::support::BIN.to_owned()];
    command.extend(args.iter().map(|a| (*a).to_owned()));
    command.extend(["--url".into(), env.url(), "--state-dir".into()]);
    command.push(env.state_dir().display().to_string());
    let quoted: Vec<String> = command.iter().map(|a| format!("'{a}'")).collect();
    let out = std::process::Command::new("script")
        .args(["-qefc", &quoted.join(" "), "/dev/null"])
        .current_dir(env.specs.path())
        .env("IMMUTA_API_KEY", &env.key)
        .env("IMMUTA_GITOPS_RETRY_BASE_MS", "5")
        .env("SHOP_PASSWORD", "shop-password-1")
        .env_remove("CI")
        .env_remove("IMMUTA_URL")
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    Some((out.status.code().unwrap_or(-1), strip_ansi(&String::from_utf8_lossy(&out.stdout))))
}

/// `text` without ANSI escape sequences (`ESC [ ... letter`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for n in chars.by_ref() {
                if n.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_shows_on_a_terminal_only() {
    let env = crate::support::tenant::Env::with_policies(6).await;
    for i in 1..=6 {
        env.specs.write(
            &format!("policies/p{i}.yaml"),
            &crate::support::tenant::policy_spec(&format!("p{i}")).replace("Policy", "Edited"),
        );
    }
    env.set_latency(150).await;
    let specs = env.specs.path().display().to_string();
    // Not a terminal: stderr stays empty, stdout is the plan alone.
    let run = env.plan(&[]).await.must_exit(0);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    let run = env.plan(&["--format", "json"]).await.must_exit(0);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    // A terminal: the phases and the dry runs N/M with elapsed time and ETA, then the results
    // of the apply as they finish, and the bar.
    let Some((code, screen)) = in_terminal(&env, &["plan", &specs]) else { return };
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("Reading the tenant: dry runs"), "{screen}");
    assert!(screen.contains("/6 [") && screen.contains("ETA"), "{screen}");
    assert!(screen.contains("Plan: 0 to create, 6 to update"), "{screen}");
    let Some((code, screen)) = in_terminal(&env, &["apply", &specs, "--auto-approve"]) else {
        return;
    };
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("Applying"), "{screen}");
    assert!(screen.contains("~ policy \"p1\" applied"), "{screen}");
    // JSON logs keep stderr one object per line: no progress there.
    let Some((_, screen)) =
        in_terminal(&env, &["--log-format", "json", "plan", &specs, "--format", "json"])
    else {
        return;
    };
    assert!(!screen.contains("Reading the tenant"), "{screen}");
}

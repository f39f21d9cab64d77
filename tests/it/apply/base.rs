//! `plan --base REV` end to end, as CI plans a pull request: a real Git repository, no tenant
//! configured, no secrets set (neither variables nor files), no network. The plan shows exactly what changed since REV, and a
//! plan saved that way is refused by `apply`.

use std::net::TcpListener;
use std::path::Path;

use serde_json::Value;

use crate::support::git::GitFixture;
use crate::support::tenant::{SHOP_DATA, SHOP_PURPOSE, assert_actions, change, policy_spec};
use crate::support::{bin, output_text};

/// A finished run: exit code and stdout, stderr.
struct Out {
    code: Option<i32>,
    stdout: String,
    text: String,
}

/// Runs the binary in `cwd` with no Immuta settings and no secrets (`bin` removes the Immuta
/// variables; the `shop` password is removed too), plus `env`.
fn run(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Out {
    let out = bin()
        .current_dir(cwd)
        .args(args)
        .args(["--color", "never"])
        .env_remove("SHOP_PASSWORD")
        .envs(env.iter().copied())
        .output()
        .expect("the binary runs");
    Out {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        text: output_text(&out),
    }
}

/// A port nothing accepts on, standing for a configured tenant: any connection attempt waits in
/// its backlog, where [`assert_untouched`] finds it.
fn trap() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("non-blocking");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    (listener, url)
}

#[track_caller]
fn assert_untouched(listener: &TcpListener) {
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Ok((_, peer)) => panic!("the binary connected to the tenant (from {peer})"),
        Err(e) => panic!("accept: {e}"),
    }
}

#[test]
fn plan_base_shows_the_changes_since_a_revision_offline() {
    let repo = GitFixture::new();
    repo.write("specs/data/shop.yaml", SHOP_DATA)
        .write(
            "specs/data/files.yaml",
            SHOP_DATA
                .replace("connectionKey: shop", "connectionKey: files")
                .replace("shop.example.com", "files.example.com")
                .replace("${SHOP_PASSWORD}", "${file:files-password}"),
        )
        .write("specs/purposes/analytics.yaml", SHOP_PURPOSE)
        .write("specs/policies/kept.yaml", policy_spec("kept"))
        .write("specs/policies/edited.yaml", policy_spec("edited"))
        .write("specs/policies/removed.yaml", policy_spec("removed"));
    repo.commit("base");
    // The pull request: one policy edited, one removed, one added.
    repo.write(
        "specs/policies/edited.yaml",
        policy_spec("edited").replace("name: Policy edited", "name: Policy edited, renamed"),
    )
    .remove("specs/policies/removed.yaml")
    .write("specs/policies/added.yaml", policy_spec("added"));
    repo.commit("change");

    let cwd = tempfile::tempdir().expect("temp dir");
    let specs = repo.work().join("specs").display().to_string();
    let base = ["plan", "--base", "HEAD~1", specs.as_str()];

    let text = run(cwd.path(), &base, &[]);
    assert_eq!(text.code, Some(0), "{}", text.text);
    let out = &text.stdout;
    assert!(out.contains("  + policy \"added\" will be created"), "{out}");
    assert!(out.contains("  ~ policy \"edited\" will be updated"), "{out}");
    assert!(out.contains("Policy edited, renamed"), "the field diff: {out}");
    assert!(out.contains("  - policy \"removed\" will be deleted (destructive)"), "{out}");
    assert!(out.contains("1 to create, 1 to update, 1 to delete"), "{out}");
    // Connections with unset secrets (a variable, a file) are compared as written: unchanged.
    for unchanged in ["kept", "shop", "files", "Analytics"] {
        assert!(
            !out.lines().any(|l| l.contains(&format!("\"{unchanged}\" will"))),
            "{unchanged} is unchanged: {out}"
        );
    }
    assert!(!text.text.contains("sandbox"), "no tenant, not even the sandbox: {}", text.text);
    assert!(!text.text.contains("error"), "no secret is needed: {}", text.text);

    let json = run(cwd.path(), &[&base[..], &["--format", "json"]].concat(), &[]);
    assert_eq!(json.code, Some(0), "{}", json.text);
    let plan: Value = serde_json::from_str(&json.stdout).expect("JSON");
    let expected = [
        ("policy", "added", "create"),
        ("policy", "edited", "update"),
        ("policy", "removed", "delete"),
    ];
    assert_actions(&plan, &expected);
    assert_eq!(change(&plan, "policy", "removed")["destructive"], true);
    assert_eq!(plan["summary"]["create"], 1, "{plan:#}");
    assert_eq!(plan["summary"]["update"], 1, "{plan:#}");
    assert_eq!(plan["summary"]["delete"], 1, "{plan:#}");

    let detailed = run(cwd.path(), &[&base[..], &["--detailed-exitcode"]].concat(), &[]);
    assert_eq!(detailed.code, Some(2), "{}", detailed.text);
    let same = run(cwd.path(), &["plan", "--base", "HEAD", &specs, "--detailed-exitcode"], &[]);
    assert_eq!(same.code, Some(0), "{}", same.text);
    assert!(same.stdout.contains("No changes."), "{}", same.stdout);

    // Nothing was written where a state or a sandbox would live.
    let left: Vec<_> = std::fs::read_dir(cwd.path()).expect("read").collect();
    assert!(left.is_empty(), "{left:?}");

    // A tenant configured (and a key) changes nothing: it is never contacted.
    let (listener, url) = trap();
    let tenant = [("IMMUTA_URL", url.as_str()), ("IMMUTA_API_KEY", "unused-key")];
    let saved = cwd.path().join("offline.json").display().to_string();
    let out = run(cwd.path(), &[&base[..], &["--out", saved.as_str()]].concat(), &tenant);
    assert_eq!(out.code, Some(0), "{}", out.text);
    assert_eq!(out.stdout, text.stdout, "the same plan");
    assert_untouched(&listener);

    // The saved offline plan cannot be applied, with or without a tenant.
    for env in [&[][..], &tenant[..]] {
        let out = run(cwd.path(), &["apply", &saved, "--auto-approve"], env);
        assert_eq!(out.code, Some(1), "{}", out.text);
        assert!(
            out.text.contains(
                "this plan was made offline (`plan --base`); plan against the tenant, then apply"
            ),
            "{}",
            out.text
        );
        assert!(!out.text.contains("sandbox"), "{}", out.text);
    }
    assert_untouched(&listener);
    let left: Vec<String> = std::fs::read_dir(cwd.path())
        .expect("read")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["offline.json"], "nothing but the saved plan");
}

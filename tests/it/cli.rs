//! The command line's conventions through the real binary: usage errors exit 1 (2 means only
//! "changes present"), `version` and `--version` carry the commit and the build date,
//! completion scripts and the manual page come from the same definition as the parser, and
//! Terraform-style single-dash long flags are understood.

use crate::support::{SpecDir, bin};

/// The exit code and output of the binary with `args`.
fn run(args: &[&str]) -> (i32, String, String) {
    let out = bin().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn usage_errors_exit_1_never_2() {
    for args in [
        &["--bogus"][..],
        &["aply", "specs-example"],
        &["plan", "specs-example", "--format", "yaml"],
        &["plan", "specs-example", "--no-such-flag"],
        &["plan", "specs-example", "--parallelism", "many"],
        &[],
    ] {
        let (code, stdout, stderr) = run(args);
        assert_eq!(code, 1, "{args:?}: {stdout}{stderr}");
        assert!(!stderr.is_empty(), "{args:?} says why");
    }
    let (code, stdout, _) = run(&["--help"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("Usage:"), "{stdout}");
    let (code, _, stderr) = run(&["--bogus"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("--bogus"), "{stderr}");
}

#[test]
fn version_names_the_commit_and_the_build_date() {
    let (code, stdout, _) = run(&["--version"]);
    assert_eq!(code, 0);
    let line = stdout.trim();
    assert!(
        line.starts_with(&format!("immuta-gitops {} (commit ", env!("CARGO_PKG_VERSION"))),
        "{line}"
    );
    assert!(line.contains(", built 20"), "{line}");

    let (code, stdout, _) = run(&["version", "--format", "json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    let commit = v["commit"].as_str().unwrap();
    assert!(commit == "unknown" || commit.chars().all(|c| c.is_ascii_hexdigit()), "{commit}");
    assert_eq!(v["build_date"].as_str().unwrap().len(), 10, "{v}");
    assert!(v["target"].as_str().unwrap().contains("linux"), "{v}");
    let (code, stdout, _) = run(&["version"]);
    assert_eq!(code, 0);
    assert!(stdout.contains(&format!("commit:     {commit}")), "{stdout}");
}

#[test]
fn completion_scripts_and_the_manual_page_cover_every_command() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let (code, stdout, stderr) = run(&["completion", shell]);
        assert_eq!(code, 0, "{shell}: {stderr}");
        for word in ["immuta-gitops", "validate", "plan", "apply", "detailed-exitcode"] {
            assert!(stdout.contains(word), "{shell} completion lacks {word}");
        }
    }
    assert_eq!(run(&["completion", "tcsh"]).0, 1);

    let (code, page, _) = run(&["man"]);
    assert_eq!(code, 0);
    assert!(page.starts_with(".ie") || page.contains(".TH immuta-gitops 1"), "{page}");
    assert!(page.contains("plan") && page.contains("apply"), "{page}");
    let dir = SpecDir::new();
    let out = dir.path().join("man1");
    let (code, _, stderr) = run(&["man", "--out-dir", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    for page in ["immuta-gitops.1", "immuta-gitops-plan.1", "immuta-gitops-run.1"] {
        assert!(out.join(page).is_file(), "{page} written");
    }
}

#[test]
fn terraform_style_single_dash_flags_are_understood() {
    let (code, stdout, stderr) = run(&["validate", "specs-example", "-format", "json"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(serde_json::from_str::<serde_json::Value>(&stdout).is_ok(), "{stdout}");
    // A flag that does not exist is still a usage error (exit 1), with clap's message.
    let (code, _, stderr) = run(&["validate", "specs-example", "-auto-approve"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("unexpected argument"), "{stderr}");
}

#[test]
fn the_install_action_and_the_docs_pin_this_release() {
    let root = crate::support::repo_root();
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    let version = env!("CARGO_PKG_VERSION");
    let action = read("action.yml");
    assert!(action.contains(&format!("default: \"{version}\"")), "action.yml installs {version}");
    let ci = read("docs/ci.md");
    assert!(ci.contains(&format!("version: {version}")), "docs/ci.md pins {version}");
    assert!(!ci.contains("cargo install"), "docs/ci.md installs the release, not from source");
    // The action's targets are the ones the release workflow builds.
    let release = read(".github/workflows/release.yml");
    for target in ["x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl"] {
        assert!(action.contains(target) && release.contains(target), "{target}");
    }
    let dockerfile = read("Dockerfile");
    assert!(dockerfile.contains("\nFROM scratch\n") && dockerfile.contains("\nUSER 10001:10001\n"));
    let ignored = read(".dockerignore");
    for entry in [".git", "target", ".immuta-gitops"] {
        assert!(ignored.lines().any(|l| l == entry), ".dockerignore lacks {entry}");
    }
}

//! The invariants of ARCHITECTURE.md that a grep can check.

use std::path::Path;

use crate::support::repo_root;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn offenders(module: &str, forbidden: &[&str]) -> Vec<String> {
    offenders_under(&repo_root().join("src").join(module), forbidden)
}

fn offenders_under(dir: &Path, forbidden: &[&str]) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(dir, &mut files);
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for f in forbidden {
                if code.contains(f) {
                    found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                }
            }
        }
    }
    found
}

#[test]
fn the_pure_core_does_no_io() {
    let io = [
        "tokio::",
        "reqwest::",
        "git2::",
        "notify",
        "axum::",
        "std::fs::",
        "std::net::",
        "std::env::",
        "crate::live",
        "crate::source",
        "crate::apply",
        "crate::daemon",
        "crate::server",
    ];
    for module in ["spec", "plan"] {
        let found = offenders(module, &io);
        assert!(found.is_empty(), "`{module}` must not do I/O:\n{}", found.join("\n"));
    }
}

#[test]
fn sources_never_parse_specs_and_the_server_never_calls_immuta() {
    let found = offenders("source", &["crate::spec::load", "spec::node", "spec::validate"]);
    assert!(found.is_empty(), "sources must not parse specs:\n{}", found.join("\n"));
    let found = offenders(
        "server",
        &["crate::live::Client", "live::observe", "live::write", "crate::apply"],
    );
    assert!(found.is_empty(), "the server must not call Immuta:\n{}", found.join("\n"));
}

#[test]
fn anyhow_lives_only_at_the_cli_edge() {
    for module in ["spec", "plan", "live", "apply", "state", "source", "daemon", "server"] {
        let found = offenders(module, &["anyhow"]);
        assert!(found.is_empty(), "`{module}` must use typed errors:\n{}", found.join("\n"));
    }
}

/// The dependency names a manifest declares, in every dependency table (`[dependencies]`,
/// `[dev-dependencies]`, `[target.'cfg(..)'.dependencies]`, `[dependencies.NAME]`, ...),
/// with the `path = ...` values seen in them.
fn declared_dependencies(manifest: &str) -> (Vec<String>, Vec<String>) {
    let (mut names, mut paths) = (Vec::new(), Vec::new());
    let mut table = String::new();
    for line in manifest.lines().map(|l| l.split('#').next().unwrap_or_default().trim()) {
        if let Some(header) = line.strip_prefix('[') {
            table = header.trim_end_matches(']').to_owned();
            if let Some((_, name)) = table.split_once("dependencies.") {
                names.push(name.to_owned());
            }
            continue;
        }
        if !table.contains("dependencies") || line.is_empty() {
            continue;
        }
        if let Some(name) =
            line.split(['=', '.']).next().filter(|_| !table.contains("dependencies."))
        {
            names.push(name.trim().to_owned());
        }
        if let Some((_, rest)) = line.split_once("path") {
            paths.push(rest.trim_start_matches([' ', '=']).to_owned());
        }
    }
    (names, paths)
}

#[test]
fn the_emulator_crate_does_not_depend_on_the_reconciler() {
    // The fake tenant is a product of its own: what it shares with the reconciler (the secret
    // fields, the rule types) is passed in through EmulatorConfig, never imported.
    let manifest = std::fs::read_to_string(repo_root().join("crates/emulator/Cargo.toml")).unwrap();
    let (names, paths) = declared_dependencies(&manifest);
    assert!(names.contains(&"axum".to_owned()), "the manifest was read: {names:?}");
    for forbidden in ["immuta-gitops", "immuta-testkit"] {
        assert!(!names.iter().any(|n| n == forbidden), "crates/emulator depends on {forbidden}");
    }
    assert!(paths.is_empty(), "crates/emulator has path dependencies: {paths:?}");
    let dir = repo_root().join("crates/emulator/src");
    let found = offenders_under(
        &dir,
        &["immuta_gitops", "anyhow", "clap::", "eprintln!", "println!", "tokio::signal"],
    );
    assert!(
        found.is_empty(),
        "the emulator crate is a library: no reconciler, no CLI, typed errors:\n{}",
        found.join("\n")
    );
}

#[test]
fn cargo_test_at_the_root_covers_every_workspace_member() {
    // The README's `cargo test` (and .ci/run) must run the tests of crates/* too.
    let manifest = std::fs::read_to_string(repo_root().join("Cargo.toml")).unwrap();
    let list = |key: &str| {
        manifest
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|rest| rest.trim_start_matches([' ', '=']).to_owned())
            .unwrap_or_else(|| panic!("no `{key}` in Cargo.toml"))
    };
    assert_eq!(list("default-members"), list("members"));
}

#[test]
fn test_support_is_a_crate_not_an_include() {
    // The benchmark and the tests share `crates/testkit` as a dependency; a `#[path]` include
    // would compile a second copy that drifts.
    let mut files = Vec::new();
    for dir in ["benches", "tests", "src", "crates"] {
        rust_files(&repo_root().join(dir), &mut files);
    }
    let found: Vec<String> = files
        .iter()
        .filter(|file| std::fs::read_to_string(file).unwrap().contains(concat!("#[path", " =")))
        .map(|file| file.display().to_string())
        .collect();
    assert!(found.is_empty(), "`#[path]` includes:\n{}", found.join("\n"));
}

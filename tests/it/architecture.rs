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
    let mut files = Vec::new();
    rust_files(&repo_root().join("src").join(module), &mut files);
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
    for module in
        ["spec", "plan", "live", "apply", "state", "source", "daemon", "server", "emulator"]
    {
        let found = offenders(module, &["anyhow"]);
        assert!(found.is_empty(), "`{module}` must use typed errors:\n{}", found.join("\n"));
    }
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

//! The invariants of ARCHITECTURE.md that the source text can check.
//!
//! Two readings of each file: every `use` declaration expanded into full paths
//! (`use std::{env, fs};` is `std::env` and `std::fs`, `use crate::{live, plan};` is
//! `crate::live` and `crate::plan`), and the code itself (comments dropped) for paths written
//! inline (`std::fs::read(..)`).

use std::path::{Path, PathBuf};

use crate::support::repo_root;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The files of `src/<module>` (a directory, or `src/<module>.rs`).
fn module_files(module: &str) -> Vec<PathBuf> {
    let src = repo_root().join("src");
    let mut files = Vec::new();
    if src.join(module).is_dir() {
        rust_files(&src.join(module), &mut files);
    }
    let single = src.join(format!("{module}.rs"));
    if single.is_file() {
        files.push(single);
    }
    assert!(!files.is_empty(), "no module `{module}` under src/");
    files
}

/// The code of a file without `//` comments (doc comments included), line by line.
fn code_lines(text: &str) -> Vec<String> {
    text.lines().map(|l| l.split("//").next().unwrap_or_default().to_owned()).collect()
}

/// Expands one use tree (`a::{b, c::{d, e}}`) into full paths; `self` names the prefix.
fn expand(tree: &str, prefix: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    let join = |p: &str, s: &str| if p.is_empty() { s.to_owned() } else { format!("{p}::{s}") };
    match tree.find('{') {
        None => {
            let path = tree.split(" as ").next().unwrap_or_default().trim();
            let path = path.strip_suffix("::self").unwrap_or(path);
            if path == "self" {
                out.push(prefix.to_owned());
            } else if !path.is_empty() {
                out.push(join(prefix, path));
            }
        }
        Some(open) => {
            let head = tree[..open].trim().trim_end_matches("::");
            let inner = tree[open + 1..].trim_end().strip_suffix('}').unwrap_or_default();
            let prefix = join(prefix, head);
            let (mut depth, mut start) = (0, 0);
            for (i, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        expand(&inner[start..i], &prefix, out);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            expand(&inner[start..], &prefix, out);
        }
    }
}

/// Every path a file imports, with the line of its `use`.
fn imports(text: &str) -> Vec<(usize, String)> {
    let lines = code_lines(text);
    let mut found = Vec::new();
    let mut n = 0;
    while n < lines.len() {
        let line = lines[n].trim_start();
        let rest = line
            .strip_prefix("pub(crate) use ")
            .or_else(|| line.strip_prefix("pub(super) use "))
            .or_else(|| line.strip_prefix("pub use "))
            .or_else(|| line.strip_prefix("use "));
        let Some(rest) = rest else {
            n += 1;
            continue;
        };
        let first = n;
        let mut statement = rest.to_owned();
        while !statement.contains(';') && n + 1 < lines.len() {
            n += 1;
            statement.push_str(&lines[n]);
        }
        let tree = statement.split(';').next().unwrap_or_default();
        let mut paths = Vec::new();
        expand(tree, "", &mut paths);
        found.extend(paths.into_iter().map(|p| (first + 1, p.trim_start_matches("::").to_owned())));
        n += 1;
    }
    found
}

/// Whether `path` is `forbidden` or inside it (`std::fs` forbids `std::fs::read`, not
/// `std::fsx`).
fn within(path: &str, forbidden: &str) -> bool {
    path == forbidden || path.starts_with(&format!("{forbidden}::"))
}

/// Whether `code` names the path `path` inline (`std::fs::read(..)`, `tokio::spawn`), as a
/// whole path: `crate::spec::load(` names `crate::spec::load`, `my_tokio::x` does not name
/// `tokio`.
fn names(code: &str, path: &str) -> bool {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    code.match_indices(path).any(|(i, _)| {
        let before = code[..i].chars().next_back();
        let after = code[i + path.len()..].chars().next();
        !before.is_some_and(|c| ident(c) || c == ':') && !after.is_some_and(ident)
    })
}

/// Where the files of `modules` import or name one of `forbidden` (paths, `::`-separated).
fn offenders(modules: &[&str], forbidden: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for module in modules {
        for file in module_files(module) {
            let text = std::fs::read_to_string(&file).unwrap();
            let shown = file.strip_prefix(repo_root()).unwrap_or(&file).display().to_string();
            for (line, path) in imports(&text) {
                if let Some(f) = forbidden.iter().find(|f| within(&path, f)) {
                    found.push(format!("{shown}:{line}: imports `{path}` ({f})"));
                }
            }
            for (n, code) in code_lines(&text).iter().enumerate() {
                if code.trim_start().starts_with("use ") {
                    continue;
                }
                for f in forbidden.iter().filter(|f| names(code, f)) {
                    found.push(format!("{shown}:{}: names `{f}`: {}", n + 1, code.trim()));
                }
            }
        }
    }
    found
}

#[test]
fn use_trees_expand_into_full_paths() {
    let text = "use std::{env, fs};\nuse crate::{live, plan::{self, Plan as P}};\n\
                pub(crate) use tokio::sync::mpsc;\nuse super::x::*;\n";
    let paths: Vec<String> = imports(text).into_iter().map(|(_, p)| p).collect();
    assert_eq!(
        paths,
        [
            "std::env",
            "std::fs",
            "crate::live",
            "crate::plan",
            "crate::plan::Plan",
            "tokio::sync::mpsc",
            "super::x::*"
        ]
    );
    assert!(within("std::fs::read", "std::fs") && !within("std::fsx", "std::fs"));
    assert!(names("let t = std::fs::read(p)?;", "std::fs"));
    assert!(names("crate::spec::load(&s, &o)", "crate::spec::load"));
    assert!(!names("my_tokio::spawn()", "tokio") && !names("a::tokio::x", "tokio"));
}

#[test]
fn the_pure_core_does_no_io() {
    let io = [
        "tokio",
        "reqwest",
        "gix",
        "notify",
        "axum",
        "std::fs",
        "std::net",
        "std::env",
        "std::process",
        "crate::live",
        "crate::source",
        "crate::apply",
        "crate::daemon",
        "crate::server",
        "crate::pipeline",
        "crate::metrics",
        "crate::secret_store",
        "crate::state::file",
        "immuta_emulator",
    ];
    let found = offenders(&["spec", "plan", "diagnostic", "snapshot", "parallel"], &io);
    assert!(found.is_empty(), "the pure core must not do I/O:\n{}", found.join("\n"));
}

#[test]
fn diagnostics_are_a_leaf_every_module_can_use() {
    let found = offenders(
        &["diagnostic"],
        &["crate::spec", "crate::plan", "crate::pipeline", "crate::snapshot"],
    );
    assert!(found.is_empty(), "`diagnostic` must not know specs:\n{}", found.join("\n"));
}

#[test]
fn sources_never_parse_specs_and_the_server_never_calls_immuta() {
    let found = offenders(
        &["source"],
        &["crate::spec::load", "crate::spec::node", "crate::spec::validate"],
    );
    assert!(found.is_empty(), "sources must not parse specs:\n{}", found.join("\n"));
    let found = offenders(
        &["server"],
        &[
            "crate::live::Client",
            "crate::live::observe",
            "crate::live::write",
            "crate::apply",
            "crate::pipeline",
        ],
    );
    assert!(found.is_empty(), "the server must not call Immuta:\n{}", found.join("\n"));
}

#[test]
fn the_daemon_does_not_know_the_server() {
    // The server imports the daemon (`Trigger`, `StatusHandle`); an edge back would be a cycle.
    let found = offenders(&["daemon", "metrics", "pipeline"], &["crate::server"]);
    assert!(found.is_empty(), "`daemon` must not import `server`:\n{}", found.join("\n"));
}

#[test]
fn anyhow_and_the_cli_live_only_in_the_binary() {
    let src = repo_root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut found = Vec::new();
    for file in files {
        if file == src.join("main.rs") || file.starts_with(src.join("cli")) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, code) in code_lines(&text).iter().enumerate() {
            if names(code, "anyhow") || names(code, "mod cli") {
                found.push(format!("{}:{}: {}", file.display(), n + 1, code.trim()));
            }
        }
    }
    assert!(found.is_empty(), "the library must use typed errors:\n{}", found.join("\n"));
}

/// Lines under `dir` whose code (comments aside) contains one of `forbidden`.
fn lines_containing(dir: &Path, forbidden: &[&str]) -> Vec<String> {
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
    let found = lines_containing(
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

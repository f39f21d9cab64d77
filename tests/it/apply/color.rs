//! Colours: `NO_COLOR` alone (no `--color never`) makes `plan` print plain text, even where
//! colours are otherwise forced.

use crate::support::tenant::{BASE_ENV, write_shop};
use crate::support::{SpecDir, bin};

/// `plan SPECS` against the sandbox with the default `--color auto`, colours forced on
/// (`CLICOLOR_FORCE`), and `NO_COLOR` set or not. Stdout.
fn plan(specs: &SpecDir, no_color: bool) -> String {
    let state = tempfile::tempdir().expect("temp dir");
    let mut cmd = bin();
    cmd.args(["plan"])
        .arg(specs.path())
        .arg("--state-dir")
        .arg(state.path())
        .envs(BASE_ENV.iter().copied())
        .env("CLICOLOR_FORCE", "1")
        .env_remove("NO_COLOR");
    if no_color {
        cmd.env("NO_COLOR", "1");
    }
    let out = cmd.output().expect("the binary runs");
    let text = crate::support::output_text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn no_color_alone_gives_a_plain_text_plan() {
    let specs = SpecDir::new();
    write_shop(&specs);
    let coloured = plan(&specs, false);
    assert!(coloured.contains("\u{1b}["), "colours are forced on: {coloured}");
    let plain = plan(&specs, true);
    assert!(!plain.contains('\u{1b}'), "NO_COLOR gives plain text: {plain:?}");
    assert!(plain.contains("to create"), "{plain}");
}

//! Fuzz target: arbitrary bytes -> a snapshot -> `spec::load`, then everything done with its
//! output downstream (rendering diagnostics, canonical payloads, placeholder parsing, masking).
//!
//! Input layout:
//! - Anything not starting with `0xFE`: the bytes as `a.yaml` and as `sub/b.json` (both parsers).
//! - `0xFE`, a flags byte, then up to four parts separated by `0xFE 0xFE`: two spec files, the
//!   settings file and an env file. Flags: bits 0-1 and 2-3 pick the extensions of the two spec
//!   files (`.yaml`, `.yml`, `.json`, `.YAML`); bit 4 makes the settings name the env file
//!   (`envFiles: [dev.env]`); bit 5 sets known tenant purposes (online mode); bit 6 is
//!   `--strict`; bit 7 names the settings file `immuta-gitops.yml`.
//!
//! Besides "no panic, no hang, no OOM", it checks invariants the loader promises:
//! - every diagnostic has a hint and prints no control character but `\n`;
//! - every tainted pointer of an object resolves in its payload;
//! - every string of a valid object's payload has well-formed placeholders;
//! - the canonical form of a payload is a fixed point.

#![no_main]

use std::collections::BTreeSet;

use immuta_gitops::plan::normalize::canonical;
use immuta_gitops::snapshot::Snapshot;
use immuta_gitops::spec::{self, LoadOptions};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const EXTENSIONS: [&str; 4] = ["yaml", "yml", "json", "YAML"];

fuzz_target!(|data: &[u8]| run(data));

fn run(data: &[u8]) {
    let (files, flags) = layout(data);
    let snapshot = Snapshot::from_texts(files);
    let mut options = LoadOptions::with_env(["DB_PASSWORD".to_owned(), "TOKEN".to_owned()]);
    options.strict = flags & 0x40 != 0;
    if flags & 0x20 != 0 {
        options.known_purposes = Some(BTreeSet::from(["Research".to_owned()]));
    }
    let (desired, diags) = spec::load(&snapshot, &options);

    for d in &diags {
        let text = d.to_string();
        assert!(d.hint.is_some(), "a diagnostic without a hint: {text:?}");
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "a control character in a diagnostic: {text:?}"
        );
    }
    for o in &desired.objects {
        for t in &o.tainted {
            assert!(
                o.payload.pointer(&t.pointer).is_some(),
                "dangling tainted pointer {}",
                t.pointer
            );
        }
        let masked = spec::secrets::mask(&o.payload, o.tainted_pointers());
        let _ = masked.to_string();
        each_string(&o.payload, &mut |s| {
            if let Err(e) = spec::secrets::parse(s) {
                panic!("a valid object holds a malformed placeholder: {}", e.message);
            }
        });
        let once = canonical(&o.payload);
        assert_eq!(canonical(&once), once, "canonical form is not a fixed point");
        let _ = o.label();
        let _ = o.purpose_names();
    }
    let _ = desired.counts();
    let _ = desired.purpose_names();
}

/// The files of the snapshot, and the flags byte (0 in single-file mode).
fn layout(data: &[u8]) -> (Vec<(String, Vec<u8>)>, u8) {
    let Some((&0xfe, rest)) = data.split_first() else {
        return (vec![("a.yaml".into(), data.to_vec()), ("sub/b.json".into(), data.to_vec())], 0);
    };
    let Some((&flags, rest)) = rest.split_first() else { return (Vec::new(), 0) };
    let mut parts = split(rest).into_iter();
    let mut files = Vec::new();
    let ext = |shift: u8| EXTENSIONS[usize::from((flags >> shift) & 3)];
    if let Some(p) = parts.next() {
        files.push((format!("a.{}", ext(0)), p.to_vec()));
    }
    if let Some(p) = parts.next() {
        files.push((format!("sub/dir/b.{}", ext(2)), p.to_vec()));
    }
    let settings_name = if flags & 0x80 != 0 { "immuta-gitops.yml" } else { "immuta-gitops.yaml" };
    let mut settings = Vec::new();
    if flags & 0x10 != 0 {
        settings.extend_from_slice(b"envFiles: [dev.env]\n");
    }
    if let Some(p) = parts.next() {
        settings.extend_from_slice(p);
    }
    if !settings.is_empty() {
        files.push((settings_name.into(), settings));
    }
    if let Some(p) = parts.next() {
        files.push(("dev.env".into(), p.to_vec()));
    }
    (files, flags)
}

/// Splits on `0xFE 0xFE`, into at most four parts.
fn split(data: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut rest = data;
    while parts.len() < 3 {
        match rest.windows(2).position(|w| w == [0xfe, 0xfe]) {
            Some(i) => {
                parts.push(&rest[..i]);
                rest = &rest[i + 2..];
            }
            None => break,
        }
    }
    parts.push(rest);
    parts
}

fn each_string(v: &Value, f: &mut dyn FnMut(&str)) {
    match v {
        Value::String(s) => f(s),
        Value::Array(items) => items.iter().for_each(|i| each_string(i, f)),
        Value::Object(map) => map.values().for_each(|i| each_string(i, f)),
        _ => {}
    }
}

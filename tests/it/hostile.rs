//! The hostile-input corpus: malformed and malicious spec trees through the real binary.
//!
//! Each case is a spec root: a directory of `tests/fixtures/hostile/` (text inputs), or a tree
//! generated at test time (huge, binary and symlinked inputs, which are not committed). Every
//! case runs `validate` and must:
//!
//! - exit with the expected code, never 101 (a panic) or a signal;
//! - print every expected substring (the `file:line:col: severity[code]` of each diagnostic);
//! - give every diagnostic a hint, print no raw control character and no canary value;
//! - stay within [`TIME_LIMIT`] and [`RSS_LIMIT_KB`] (peak RSS from `/usr/bin/time`, or
//!   `VmHWM` polled from `/proc` when it is missing).
//!
//! Failures are collected over the whole corpus and reported together. The full text output is
//! snapshotted, so any change of wording is reviewed. A second test runs `apply --auto-approve`
//! on every case that `validate` rejects, against a tenant that counts connections: it must
//! exit 1 with the same diagnostics and never open one. A third applies the case that only the
//! tenant can reject (a dangling reference) to the embedded sandbox, which must stay empty; a
//! fourth loads every case through the library on a 2 MiB thread (tokio's stack size).

use std::fmt::Write as _;
use std::fs;
use std::io::ErrorKind;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use immuta_gitops::source;
use immuta_gitops::spec::{self, LoadOptions};

use crate::support::repo_root;

/// Longest a single `validate` may take (debug build, a busy two-core machine).
const TIME_LIMIT: Duration = Duration::from_secs(10);
/// Highest peak RSS of a single `validate`, in KiB.
const RSS_LIMIT_KB: u64 = 200 * 1024;
/// Values planted in the corpus that no output may contain.
const CANARIES: [&str; 3] = ["CANARY-TOKEN-LIST", "hunter2-CANARY", "CANARY-ENV-LINE"];

/// Where a case's spec root comes from.
enum Tree {
    /// `tests/fixtures/hostile/<name>/`.
    Fixture,
    /// Built at test time under `<work>/<name>/`; gets the shared work directory.
    Generated(fn(&Path, &Work)),
}

struct Case {
    name: &'static str,
    tree: Tree,
    /// Expected exit code of `validate`.
    exit: i32,
    /// Substrings the output must contain.
    expect: &'static [&'static str],
}

const fn fixture(name: &'static str, exit: i32, expect: &'static [&'static str]) -> Case {
    Case { name, tree: Tree::Fixture, exit, expect }
}

const fn generated(
    name: &'static str,
    build: fn(&Path, &Work),
    exit: i32,
    expect: &'static [&'static str],
) -> Case {
    Case { name, tree: Tree::Generated(build), exit, expect }
}

/// The corpus. Expected substrings name the diagnostic's position and code; the snapshot
/// holds the full wording.
#[rustfmt::skip]
const CASES: &[Case] = &[
    // Invalid YAML.
    fixture("yaml-tab-indentation", 1, &["purpose.yaml:2:1: error[syntax]", "indent with spaces"]),
    fixture("yaml-tab-in-block-sequence", 1, &["purpose.yaml:3:1: error[syntax]: tabs disallowed"]),
    fixture("yaml-unclosed-double-quote", 1, &["purpose.yaml:1:7: error[syntax]: unclosed quote"]),
    fixture("yaml-unclosed-single-quote", 1, &["purpose.yaml:1:7: error[syntax]: unclosed quote"]),
    fixture("yaml-unclosed-flow-sequence", 1, &["project.yaml:3:11: error[syntax]: unclosed bracket '['"]),
    fixture("yaml-unclosed-flow-mapping", 1, &["policy.yaml:4:10: error[syntax]: unclosed bracket '{'"]),
    fixture("yaml-bad-indentation", 1, &["purpose.yaml:2:14: error[syntax]: mapping values are not allowed"]),
    fixture("yaml-stray-colon", 1, &["purpose.yaml:1:15: error[syntax]: mapping values are not allowed"]),
    fixture("yaml-stray-dash", 1, &["purpose.yaml:2:3: error[syntax]: while parsing a block mapping"]),
    fixture("yaml-invalid-escape", 1, &["purpose.yaml:1:7: error[syntax]: while parsing a quoted scalar, found unknown escape"]),
    fixture("yaml-marker-storm", 0, &["0 valid objects in 1 file", "valid: 0 errors, 0 warnings"]),
    fixture("yaml-bom-mid-file", 1, &["purpose.yaml:2:1: error[syntax]: a BOM must not appear inside a document"]),
    fixture("yaml-bom-at-start", 0, &["1 valid object in 1 file (1 purpose)"]),
    fixture("yaml-crlf-mixed", 1, &["purpose.yaml:3:14: error[syntax]: unclosed bracket '['"]),
    fixture("yaml-lone-cr", 1, &["purpose.yaml:3:18: error[syntax]: unclosed bracket '['"]),
    fixture("yaml-unknown-anchor", 1, &["purpose.yaml:1:7: error[syntax]: alias references unknown anchor"]),
    fixture("yaml-syntax-error-in-one-document", 1, &["purposes.yaml:4:6: error[syntax]", "2 valid objects in 1 file"]),
    fixture("raw-control-character", 1, &["purpose.yaml:1:7: error[syntax]: unexpected character: `\\u{7}'"]),
    // Aliases.
    fixture("alias-billion-laughs", 1, &["purpose.yaml:6:25: error[budget]: anchors and aliases", "billion laughs"]),
    fixture("alias-to-itself", 1, &["purpose.yaml:2:14: error[syntax]: an alias (`*name`) refers to the anchor that contains it"]),
    fixture("alias-recursive-mapping", 1, &["purpose.yaml:2:21: error[syntax]: an alias (`*name`) refers to the anchor"]),
    fixture("alias-merge-key-bomb", 1, &["purpose.yaml:52:11: error[budget]: anchors and aliases"]),
    fixture("alias-merge-not-a-mapping", 1, &["purpose.yaml:2:5: error[syntax]: YAML merge value must be mapping"]),
    generated("alias-huge-scalar", huge_scalar_alias, 1, &["purpose.yaml:3:14: error[budget]: the document's text values (counting every alias copy) exceed 16777216 bytes"]),
    // Size.
    generated("size-50-mib", file_of_50_mib, 1, &["big.yaml: error[budget]: the file is 52428800 bytes, more than the limit of 8388608"]),
    generated("size-huge-scalar", huge_scalar, 0, &["1 valid object in 1 file (1 purpose)"]),
    generated("size-long-line-of-values", long_line, 1, &["purpose.yaml:2:599993: error[budget]: the document has more than 200000 values"]),
    generated("size-million-documents", million_documents, 1, &["docs.yaml:1: error[budget]: the file holds more than 1000 documents (the limit)"]),
    // Binary data.
    generated("binary-random-bytes", random_bytes, 1, &["random.yaml:1:3: error[unreadable]: the file is not UTF-8 text (invalid byte at offset 2)"]),
    generated("binary-png", png, 1, &["logo.yaml:1:1: error[unreadable]: the file is not UTF-8 text (invalid byte at offset 0)"]),
    generated("binary-elf", elf, 1, &["tool.yaml:1:8: error[unreadable]: the file contains a NUL byte (at byte offset 7)"]),
    generated("binary-utf16", utf16, 1, &["purpose.yaml:1:1: error[unreadable]: the file is not UTF-8 text (invalid byte at offset 0)", "not UTF-16"]),
    generated("invalid-utf8", invalid_utf8, 1, &["purpose.yaml:2:17: error[unreadable]: the file is not UTF-8 text (invalid byte at offset 31)"]),
    generated("nul-byte", nul_byte, 1, &["purpose.yaml:2:15: error[unreadable]: the file contains a NUL byte (at byte offset 29)"]),
    // Deep nesting.
    generated("deep-flow-sequences", deep_flow_sequences, 1, &["purpose.yaml:2:28: error[budget]: mappings and lists nest deeper than the limit of 24 levels"]),
    generated("deep-flow-mappings", deep_flow_mappings, 1, &["purpose.yaml:2:96: error[budget]: mappings and lists nest deeper than the limit of 24 levels"]),
    generated("deep-block-sequences", deep_block_sequences, 1, &["purpose.yaml:3:47: error[budget]: mappings and lists nest deeper"]),
    generated("deep-block-mappings", deep_block_mappings, 1, &["purpose.yaml:26:25: error[budget]: mappings and lists nest deeper"]),
    generated("deep-json", deep_json, 1, &["purpose.json:1:43: error[budget]: mappings and lists nest deeper"]),
    generated("depth-at-the-limit", depth_at_limit, 0, &["1 valid object in 1 file (1 purpose)", "purpose.yaml:2:1: warning[unknown-field]: unknown field `a`"]),
    // Duplicate keys.
    fixture("dup-top-level", 1, &["purpose.yaml:3:1: error[duplicate-key]: duplicate mapping key `description`"]),
    fixture("dup-nested", 1, &["policy.yaml:6:3: error[duplicate-key]: duplicate mapping key `type`"]),
    fixture("dup-differently-quoted", 1, &["purpose.yaml:2:1: error[duplicate-key]: duplicate mapping key `\"name\"`: the same key as `name`"]),
    fixture("dup-single-quoted-in-flow", 1, &["purpose.yaml:2:13: error[duplicate-key]: duplicate mapping key `a`"]),
    fixture("dup-numeric-equivalent", 1, &["purpose.yaml:4:3: error[duplicate-key]: duplicate mapping key `1.0`: the same key as `1` before it (two spellings"]),
    fixture("dup-hex-equivalent", 1, &["purpose.yaml:2:13: error[duplicate-key]: duplicate mapping key `0x1`"]),
    fixture("dup-null-spellings", 1, &["purpose.yaml:2:11: error[duplicate-key]: duplicate mapping key `null`"]),
    fixture("dup-null-and-text-null", 1, &["purpose.yaml:2:14: error[duplicate-key]: duplicate mapping key `\"null\"`: the same key as `null`"]),
    fixture("dup-json-keys", 1, &["purpose.json:1:22: error[duplicate-key]: duplicate mapping key `name`"]),
    fixture("dup-natural-key-across-files", 1, &["b.yaml:2:7: error[duplicate-object]: purpose `Research` is defined twice (first at a.yaml:1:7)"]),
    // Wrong types.
    fixture("type-number-for-string", 1, &["purpose.yaml:1:7: error[invalid-value]: expected a string, found an integer; quote the value"]),
    fixture("type-map-for-list", 1, &["project.yaml:3:11: error[invalid-value]: expected a list, found a mapping"]),
    fixture("type-list-for-map", 1, &["ds.yaml:2:13: error[invalid-value]: expected a mapping, found a list"]),
    fixture("type-yes-for-bool", 1, &["policy.yaml:4:9: error[invalid-value]: expected a boolean", "are text in YAML 1.2"]),
    fixture("type-null-everywhere", 1, &["policy.yaml:1:12: error[invalid-value]", "policy.yaml:2:7: error[invalid-value]", "policy.yaml:5:9: error[invalid-value]", "3 errors"]),
    fixture("type-secret-of-wrong-type", 1, &["ds.yaml:6:13: error[invalid-value]: expected a string, found an integer", "ds.yaml:7:10: error[invalid-value]: expected a string, found a list"]),
    fixture("type-enum-did-you-mean", 1, &["policy.yaml:4:17: error[invalid-value]: unknown value `Anyone`", "(did you mean `anyone`?)"]),
    fixture("type-document-is-a-list", 1, &["list.yaml:1:1: error[unknown-kind]: a spec document must be a mapping, found a list"]),
    fixture("type-document-is-a-scalar", 1, &["scalar.yaml:1:1: error[unknown-kind]: a spec document must be a mapping, found a string"]),
    fixture("type-several-natural-keys", 1, &["both.yaml:1:1: error[unknown-kind]: the document has several natural keys"]),
    fixture("type-no-natural-key", 1, &["what.yaml:1:1: error[unknown-kind]: cannot tell what kind of Immuta object this is"]),
    fixture("type-natural-key-typo", 1, &["policy.yaml:1:1: error[unknown-kind]: `policyKye` looks like a misspelt `policyKey`"]),
    fixture("type-infinity", 1, &["ds.yaml:6:16: error[invalid-value]: `.inf` and `.nan` are not numbers in JSON"]),
    // The Null trap.
    fixture("null-trap-spellings", 1, &["purposes.yaml:1:7: error[invalid-value]", "purposes.yaml:3:7: error[invalid-value]", "purposes.yaml:5:7: error[invalid-value]", "purposes.yaml:7:5: error[invalid-value]", "are all YAML null", "1 valid object"]),
    fixture("null-trap-masking-type", 1, &["policy.yaml:10:19: error[null-trap]"]),
    // References.
    fixture("dangling-purpose-reference", 0, &["project.yaml:3:12: warning[unknown-reference]: project `fraud` names purpose `Fraud Investigaton`", "did you mean `Fraud Investigation`?"]),
    // Placeholders and `${file:...}`.
    fixture("secret-file-parent-traversal", 1, &["ds.yaml:6:13: error[placeholder]: a `${file:...}` path must not contain `..`"]),
    fixture("secret-file-absolute-outside", 1, &["ds.yaml:6:13: error[secret-file]: secret file `/etc/passwd` cannot be read: the file lies outside the secrets directory"]),
    fixture("secret-file-symlink-escape", 1, &["ds.yaml:6:13: error[secret-file]: secret file `escape` cannot be read: the file lies outside the secrets directory"]),
    fixture("secret-file-nul", 1, &["ds.yaml:6:13: error[placeholder]: a `${file:...}` path must not contain NUL bytes"]),
    fixture("secret-file-empty", 1, &["ds.yaml:6:13: error[placeholder]: `${file:}` names no file"]),
    fixture("secret-file-control-chars", 1, &["ds.yaml:6:13: error[placeholder]: a `${file:...}` path must not contain control"]),
    fixture("secret-file-directory", 1, &["ds.yaml:6:13: error[secret-file]: secret file `.` cannot be read: not a regular file"]),
    generated("secret-file-many-references", many_secret_references, 0, &["1 valid object in 1 file (1 data source connection)"]),
    fixture("placeholder-malformed", 1, &["ds.yaml:6:13: error[placeholder]: a `${` placeholder is not closed", "ds.yaml:7:10: error[placeholder]", "ds.yaml:8:17: error[placeholder]"]),
    fixture("placeholder-missing-variable", 1, &["ds.yaml:6:13: error[missing-variable]: environment variable `HOSTILE_UNSET_VARIABLE` is not set"]),
    // Symlinks and odd files.
    generated("symlink-to-etc-passwd", symlink_to_etc_passwd, 1, &["passwd.yaml: error[outside-root]: symlink to `/etc/passwd` leaves the spec root; not followed"]),
    generated("symlink-to-outside-dir", symlink_to_outside_dir, 1, &["shared/: error[outside-root]: symlink to directory `<tmp>/outside` leaves the spec root"]),
    generated("symlink-to-outside-dir-excluded", symlink_to_outside_dir_excluded, 0, &["1 valid object in 1 file (1 purpose)", "valid: 0 errors, 0 warnings"]),
    generated("symlink-loop", symlink_loop, 1, &["a.yaml: error[unreadable]: cannot read: symlink to `b.yaml` cannot be followed", "b.yaml: error[unreadable]"]),
    generated("symlink-dangling", symlink_dangling, 1, &["gone.yaml: error[unreadable]: cannot read: symlink to `nowhere.yaml` cannot be followed"]),
    generated("symlink-dir-cycle-inside", symlink_dir_cycle, 0, &["1 valid object in 1 file (1 purpose)"]),
    generated("fifo-named-yaml", fifo, 1, &["pipe.yaml: error[unreadable]: cannot read: not a regular file"]),
    generated("file-name-control-characters", file_name_control_characters, 1, &["evil\\u{1b}[2J.yaml: error[unreadable]: the file name contains control"]),
    // Keys.
    fixture("key-control-characters", 0, &["purpose.yaml:2:1: warning[unknown-field]: unknown field `a\\u{1b}]0;pwned\\u{7}b`", "$[\"pass\\u{0}word\"]"]),
    fixture("key-bidi-override", 0, &["purpose.yaml:2:1: warning[unknown-field]: unknown field `admin\\u{202e}nigol`"]),
    fixture("key-very-long", 0, &["purpose.yaml:2:1: warning[unknown-field]: unknown field `kkkk", "kkk…`"]),
    fixture("key-over-1024-characters", 1, &["purpose.yaml:2:1: error[syntax]: a mapping key must be followed by `:` on the same line, within 1024 characters"]),
    fixture("key-complex", 1, &["purpose.yaml:2:3: error[invalid-value]: a mapping key must be text, a number or a boolean"]),
    fixture("value-bidi-in-duplicate-name", 1, &["b.yaml:1:7: error[duplicate-object]: purpose `Re\\u{202e}search` is defined twice"]),
    // Tags.
    fixture("tag-binary", 1, &["purpose.yaml:2:23: error[invalid-value]: YAML tag `!!binary` is not supported"]),
    fixture("tag-python-object", 1, &["purpose.yaml:1:39: error[invalid-value]: YAML tag `!!python/object/apply:os.system` is not supported"]),
    fixture("tag-include", 1, &["purpose.yaml:2:23: error[invalid-value]: YAML tag `!include` is not supported"]),
    fixture("tag-custom-on-mapping", 1, &["purpose.yaml:2:16: error[invalid-value]: YAML tag `!vault` is not supported"]),
    fixture("tag-on-key", 1, &["ds.yaml:6:11: error[invalid-value]: YAML tag `!secret` is not supported"]),
    fixture("tag-core-types-allowed", 0, &["1 valid object in 1 file (1 purpose)", "valid: 0 errors, 0 warnings"]),
    // JSON.
    fixture("json-trailing-comma", 1, &["purpose.json:3:1: error[syntax]: invalid JSON: a trailing comma before the closing bracket"]),
    fixture("json-comment", 1, &["purpose.json:2:3: error[syntax]: invalid JSON: comments are not allowed"]),
    fixture("json-yaml-syntax", 1, &["purpose.json:1:2: error[syntax]: invalid JSON: unquoted text"]),
    fixture("json-two-documents", 1, &["purposes.json:2:1: error[syntax]: invalid JSON: trailing characters"]),
    fixture("json-single-quotes", 1, &["purpose.json:1:2: error[syntax]: invalid JSON: strings and keys need double quotes"]),
    fixture("json-empty-file", 1, &["purpose.json:1: error[syntax]: invalid JSON: EOF while parsing a value"]),
    // Empty files.
    fixture("empty-file", 0, &["0 valid objects in 1 file", "valid: 0 errors, 0 warnings"]),
    fixture("only-comments", 0, &["0 valid objects in 1 file", "valid: 0 errors, 0 warnings"]),
    fixture("only-blank-lines", 0, &["0 valid objects in 1 file", "valid: 0 errors, 0 warnings"]),
    // Settings and env files.
    fixture("settings-syntax-error", 1, &["immuta-gitops.yaml:1:10: error[settings]: unclosed bracket '['"]),
    fixture("settings-wrong-types", 1, &["immuta-gitops.yaml:1:9: error[settings]", "immuta-gitops.yaml:2:10: error[settings]: expected a list", "immuta-gitops.yaml:3:19: error[settings]: invalid value 1000, expected a whole number from 0 to 255"]),
    fixture("settings-is-a-list", 1, &["immuta-gitops.yaml:1:1: error[settings]: expected a mapping, found a list"]),
    fixture("settings-env-file-outside-root", 1, &["immuta-gitops.yaml:1:12: error[settings]: env file `../secrets.env` must be", "immuta-gitops.yaml:1:28: error[settings]: env file `/etc/environment` must be"]),
    fixture("settings-env-file-bad-line", 1, &["dev.env:2:1: error[settings]: env file syntax: expected `KEY=VALUE`"]),
    fixture("settings-invalid-glob", 1, &["immuta-gitops.yaml:1:11: error[settings]: invalid exclude pattern `drafts/[`"]),
    fixture("settings-glob-range-control-chars", 1, &["immuta-gitops.yaml:1:11: error[settings]: invalid exclude pattern `[\\u{7}-\\u{1}]`: invalid range; '\\u{7}' > '\\u{1}'"]),
    fixture("settings-alias-bomb", 1, &["immuta-gitops.yaml:5:25: error[settings]: anchors and aliases"]),
];

/// Cases that `validate` accepts but `apply` refuses once it has read the tenant: the sandbox
/// must stay empty. (Every case that `validate` rejects is applied to a counting tenant.)
const REFUSED_AFTER_READING: &[&str] = &["dangling-purpose-reference"];

// ---------------------------------------------------------------------------------------------
// Generated trees.

/// Scratch space shared by the generated cases: `<work>/<case>/` spec roots, a secrets
/// directory and an "outside" directory for symlinks to point at.
struct Work {
    dir: tempfile::TempDir,
}

impl Work {
    fn new() -> Self {
        let work = Work { dir: tempfile::tempdir().expect("temp dir") };
        let secrets = work.secrets();
        fs::create_dir_all(&secrets).expect("mkdir secrets");
        fs::create_dir_all(work.outside()).expect("mkdir outside");
        fs::write(secrets.join("db"), "s3cret\n").expect("write");
        fs::write(secrets.join("big"), vec![b'x'; 1024 * 1024]).expect("write");
        fs::write(work.outside().join("secret.txt"), "outside\n").expect("write");
        fs::write(work.outside().join("other.yaml"), "name: Outside\n").expect("write");
        std::os::unix::fs::symlink(work.outside().join("secret.txt"), secrets.join("escape"))
            .expect("symlink");
        work
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn secrets(&self) -> PathBuf {
        self.path().join("secrets")
    }
    fn outside(&self) -> PathBuf {
        self.path().join("outside")
    }
}

fn write(root: &Path, rel: &str, bytes: impl AsRef<[u8]>) {
    let path = root.join(rel);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("mkdir");
    }
    fs::write(path, bytes).expect("write");
}

fn huge_scalar_alias(root: &Path, _: &Work) {
    let aliases = vec!["*a"; 1000].join(",");
    let text = format!("name: R\nx: &a \"{}\"\ny: [{aliases}]\n", "A".repeat(4_000_000));
    write(root, "purpose.yaml", text);
}

fn file_of_50_mib(root: &Path, _: &Work) {
    // Sparse: the loader must refuse it by its size, without reading it.
    let file = fs::File::create(root.join("big.yaml")).expect("create");
    file.set_len(50 * 1024 * 1024).expect("set_len");
}

fn huge_scalar(root: &Path, _: &Work) {
    write(root, "purpose.yaml", format!("name: R\ndescription: {}\n", "word ".repeat(800_000)));
}

fn long_line(root: &Path, _: &Work) {
    write(root, "purpose.yaml", format!("name: R\ntags: [{}]\n", vec!["x"; 250_000].join(", ")));
}

fn million_documents(root: &Path, _: &Work) {
    write(root, "docs.yaml", "---\na\n".repeat(1_000_000));
}

fn random_bytes(root: &Path, _: &Work) {
    // xorshift64 with a fixed seed: the same 64 KiB every run.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let bytes: Vec<u8> = (0..65_536)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    write(root, "random.yaml", bytes);
}

fn png(root: &Path, _: &Work) {
    write(root, "logo.yaml", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0");
}

fn elf(root: &Path, _: &Work) {
    write(root, "tool.yaml", b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0>\0");
}

fn utf16(root: &Path, _: &Work) {
    let mut bytes = vec![0xff, 0xfe];
    bytes.extend("name: Research\n".encode_utf16().flat_map(u16::to_le_bytes));
    write(root, "purpose.yaml", bytes);
}

fn invalid_utf8(root: &Path, _: &Work) {
    write(root, "purpose.yaml", b"name: Research\ndescription: caf\xe9 (Latin-1)\n");
}

fn nul_byte(root: &Path, _: &Work) {
    write(root, "purpose.yaml", b"name: Research\ndescription: a\0b\n");
}

fn deep_flow_sequences(root: &Path, _: &Work) {
    write(
        root,
        "purpose.yaml",
        format!("name: R\nx: {}{}\n", "[".repeat(10_000), "]".repeat(10_000)),
    );
}

fn deep_flow_mappings(root: &Path, _: &Work) {
    let text = format!("name: R\nx: {}1{}\n", "{a: ".repeat(10_000), "}".repeat(10_000));
    write(root, "purpose.yaml", text);
}

fn deep_block_sequences(root: &Path, _: &Work) {
    write(root, "purpose.yaml", format!("name: R\nx:\n{}x\n", "- ".repeat(10_000)));
}

fn deep_block_mappings(root: &Path, _: &Work) {
    let nested: String = (0..2_000).map(|i| format!("{}a:\n", " ".repeat(i))).collect();
    write(root, "purpose.yaml", format!("name: R\n{nested}"));
}

fn deep_json(root: &Path, _: &Work) {
    let text = format!("{{\"name\": \"R\", \"x\": {}{}}}", "[".repeat(10_000), "]".repeat(10_000));
    write(root, "purpose.json", text);
}

fn depth_at_limit(root: &Path, _: &Work) {
    // The root mapping is level 1: 23 more levels reach the limit of 24.
    let nested: String = (0..23).map(|i| format!("{}a:\n", " ".repeat(i))).collect();
    write(root, "purpose.yaml", format!("name: R\n{nested}"));
}

fn many_secret_references(root: &Path, _: &Work) {
    // 20,000 placeholders naming one 1 MiB secret file: checked with a single read.
    let text = format!(
        "connectionKey: w\nconnection:\n  handler: Snowflake\n  hostname: h\n  warehouse: W\n  \
         password: \"{}\"\n",
        "${file:big}".repeat(20_000)
    );
    write(root, "ds.yaml", text);
}

fn symlink_to_etc_passwd(root: &Path, _: &Work) {
    std::os::unix::fs::symlink("/etc/passwd", root.join("passwd.yaml")).expect("symlink");
}

fn symlink_to_outside_dir(root: &Path, work: &Work) {
    write(root, "purpose.yaml", "name: Research\n");
    std::os::unix::fs::symlink(work.outside(), root.join("shared")).expect("symlink");
}

fn symlink_to_outside_dir_excluded(root: &Path, work: &Work) {
    symlink_to_outside_dir(root, work);
    write(root, "immuta-gitops.yaml", "exclude: [\"shared/**\"]\n");
}

fn symlink_loop(root: &Path, _: &Work) {
    std::os::unix::fs::symlink("b.yaml", root.join("a.yaml")).expect("symlink");
    std::os::unix::fs::symlink("a.yaml", root.join("b.yaml")).expect("symlink");
}

fn symlink_dangling(root: &Path, _: &Work) {
    std::os::unix::fs::symlink("nowhere.yaml", root.join("gone.yaml")).expect("symlink");
}

fn symlink_dir_cycle(root: &Path, _: &Work) {
    write(root, "sub/purpose.yaml", "name: Research\n");
    std::os::unix::fs::symlink("..", root.join("sub/up")).expect("symlink");
    std::os::unix::fs::symlink(".", root.join("here")).expect("symlink");
}

fn fifo(root: &Path, _: &Work) {
    // A reader that opened it would block forever: the loader must not open it.
    let status = Command::new("mkfifo").arg(root.join("pipe.yaml")).status().expect("mkfifo");
    assert!(status.success());
}

fn file_name_control_characters(root: &Path, _: &Work) {
    write(root, "evil\u{1b}[2J.yaml", "name: Research\n");
}

// ---------------------------------------------------------------------------------------------
// Running the binary with its peak memory.

struct Run {
    code: Option<i32>,
    signal: Option<String>,
    text: String,
    peak_kb: Option<u64>,
    elapsed: Duration,
}

/// Runs the binary with `args` from the repository root, measuring time and peak RSS.
fn run(args: &[&std::ffi::OsStr], scratch: &Path) -> Run {
    let bin = env!("CARGO_BIN_EXE_immuta-gitops");
    let time = Path::new("/usr/bin/time");
    let time_out = scratch.join(format!("time-{}", std::process::id()));
    let out_path = scratch.join("stdout");
    let err_path = scratch.join("stderr");
    let mut cmd = if time.exists() {
        let mut c = Command::new(time);
        c.arg("-f").arg("%M").arg("-o").arg(&time_out).arg(bin);
        c
    } else {
        Command::new(bin)
    };
    cmd.args(args)
        .current_dir(repo_root())
        .env("NO_COLOR", "1")
        .env_remove("IMMUTA_URL")
        .env_remove("IMMUTA_API_KEY")
        .env_remove("IMMUTA_ADMIN_API_KEY")
        .env_remove("IMMUTA_GITOPS_SECRETS_DIR")
        .env_remove("IMMUTA_GITOPS_STATE_DIR")
        .env_remove("RUST_LOG")
        // As on a developer's machine (`.ci/run` sets CI, which refuses the implicit sandbox).
        .env_remove("CI")
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out_path).expect("stdout file"))
        .stderr(fs::File::create(&err_path).expect("stderr file"));
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn");
    let mut hwm_kb = None;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if !time.exists() {
            hwm_kb = vm_hwm_kb(child.id()).max(hwm_kb);
        }
        if start.elapsed() > TIME_LIMIT * 6 {
            // Hung: kill what we started (and the binary under /usr/bin/time), by pid.
            for pid in children_of(child.id()) {
                let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            }
            let _ = child.kill();
            break child.wait().expect("wait");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = start.elapsed();
    let mut text = String::from_utf8_lossy(&fs::read(&out_path).unwrap_or_default()).into_owned();
    text.push_str(&String::from_utf8_lossy(&fs::read(&err_path).unwrap_or_default()));
    let (mut code, mut signal) = (status.code(), None);
    if let Ok(report) = fs::read_to_string(&time_out) {
        if let Some(line) = report.lines().find(|l| l.contains("terminated by signal")) {
            signal = Some(line.to_owned());
            code = None;
        }
        hwm_kb = report.lines().last().and_then(|l| l.trim().parse().ok());
        let _ = fs::remove_file(&time_out);
    }
    if signal.is_none() && code.is_none() {
        signal = Some(format!("{status:?}"));
    }
    Run { code, signal, text, peak_kb: hwm_kb, elapsed }
}

fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn children_of(pid: u32) -> Vec<u32> {
    fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The tests.

/// The spec root of `case`, built under `work` when generated; and how it is shown.
fn root_of(case: &Case, work: &Work) -> PathBuf {
    match case.tree {
        Tree::Fixture => PathBuf::from("tests/fixtures/hostile").join(case.name),
        Tree::Generated(build) => {
            let root = work.path().join(case.name);
            if !root.exists() {
                fs::create_dir_all(&root).expect("mkdir");
                build(&root, work);
            }
            root
        }
    }
}

/// Properties every output must have, whatever the case.
fn check_output(text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(c) = text.chars().find(|c| c.is_control() && *c != '\n') {
        problems.push(format!("raw control character {c:?} in the output"));
    }
    for canary in CANARIES {
        if text.contains(canary) {
            problems.push(format!("the canary `{canary}` leaked"));
        }
    }
    if text.contains("panicked") || text.contains("RUST_BACKTRACE") {
        problems.push("a panic message".into());
    }
    // Every diagnostic block (`...: error[code]: ...` up to the blank line) has a hint.
    for block in text.split("\n\n") {
        let first = block.lines().next().unwrap_or_default();
        let is_diag = first.contains(": error[") || first.contains(": warning[");
        if is_diag && !block.contains("\n  hint: ") {
            problems.push(format!("no hint for `{first}`"));
        }
    }
    problems
}

#[test]
fn every_hostile_input_gets_its_diagnostic_in_bounded_time_and_memory() {
    let work = Work::new();
    let scratch = tempfile::tempdir().expect("temp dir");
    let secrets = work.secrets();
    let mut names = std::collections::BTreeSet::new();
    let mut failures = Vec::new();
    let mut report = String::new();
    let (mut slowest, mut largest) = ((Duration::ZERO, ""), (0, ""));
    for case in CASES {
        assert!(names.insert(case.name), "{} is listed twice", case.name);
        let root = root_of(case, &work);
        let args =
            ["validate".as_ref(), root.as_os_str(), "--secrets-dir".as_ref(), secrets.as_os_str()];
        let r = run(&args, scratch.path());
        let text = r.text.replace(&work.path().display().to_string(), "<tmp>");
        let mut problems = check_output(&text);
        match (r.code, &r.signal) {
            (_, Some(signal)) => problems.push(format!("killed: {signal}")),
            (Some(code), None) if code != case.exit => {
                problems.push(format!("exit code {code}, expected {}", case.exit));
            }
            _ => {}
        }
        for want in case.expect {
            if !text.contains(want) {
                problems.push(format!("missing `{want}`"));
            }
        }
        if r.elapsed > TIME_LIMIT {
            problems.push(format!("took {:?}", r.elapsed));
        }
        match r.peak_kb {
            Some(kb) if kb > RSS_LIMIT_KB => problems.push(format!("peak RSS {kb} KiB")),
            Some(kb) if kb > largest.0 => largest = (kb, case.name),
            _ => {}
        }
        if r.elapsed > slowest.0 {
            slowest = (r.elapsed, case.name);
        }
        if !problems.is_empty() {
            failures.push(format!("{}:\n    {}\n{text}", case.name, problems.join("\n    ")));
        }
        let _ = writeln!(report, "## {} (exit {})\n{}", case.name, case.exit, text.trim_end());
    }
    eprintln!(
        "{} cases; slowest {} ({:?}); largest peak RSS {} ({} KiB)",
        CASES.len(),
        slowest.1,
        slowest.0,
        largest.1,
        largest.0
    );
    assert!(CASES.len() >= 50);
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
    insta::assert_snapshot!("hostile_corpus_validate_text", report);
}

/// A tenant that only counts: a listener on 127.0.0.1 that never answers. Nothing accepts while
/// a case runs, so every connection the binary opens waits in the backlog until
/// [`CountingTenant::connections`] takes it (a connection is complete before `connect` returns,
/// so none is missed once the process has exited).
struct CountingTenant {
    listener: TcpListener,
}

impl CountingTenant {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("non-blocking");
        CountingTenant { listener }
    }

    fn url(&self) -> String {
        format!("http://{}", self.listener.local_addr().expect("addr"))
    }

    /// Connections opened since the last call (closed as they are counted).
    fn connections(&self) -> usize {
        let mut count = 0;
        loop {
            match self.listener.accept() {
                Ok(_) => count += 1,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return count,
                Err(e) => panic!("accept: {e}"),
            }
        }
    }
}

/// The diagnostics in a command's output: each `file:line:col: severity[code]: ...` line with
/// the indented `at:` and `hint:` lines under it.
fn diagnostics(text: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut open = false;
    for line in text.lines() {
        if !line.starts_with(' ') && (line.contains(": error[") || line.contains(": warning[")) {
            found.push(line.to_owned());
            open = true;
        } else if open && line.starts_with("  ") {
            let last = found.last_mut().expect("a diagnostic");
            last.push('\n');
            last.push_str(line);
        } else {
            open = false;
        }
    }
    found
}

/// What `validate` printed for each case: the reviewed snapshot, which the corpus test keeps
/// equal to the real output (so `apply` is compared with it without running `validate` again).
fn validate_outputs() -> std::collections::BTreeMap<String, String> {
    let path =
        repo_root().join("tests/it/snapshots/it__hostile__hostile_corpus_validate_text.snap");
    let snap = fs::read_to_string(path).expect("the corpus snapshot");
    let body = snap.splitn(3, "---\n").nth(2).expect("a snapshot header");
    body.split("## ")
        .filter(|s| !s.is_empty())
        .map(|section| {
            let (heading, text) = section.split_once('\n').unwrap_or((section, ""));
            let name = heading.split(" (exit ").next().unwrap_or_default();
            (name.to_owned(), text.to_owned())
        })
        .collect()
}

#[test]
fn apply_refuses_every_rejected_input_with_its_diagnostics_and_never_contacts_the_tenant() {
    let work = Work::new();
    let scratch = tempfile::tempdir().expect("temp dir");
    let secrets = work.secrets();
    let tenant = CountingTenant::start();
    let url = tenant.url();
    let key = scratch.path().join("api.key");
    fs::write(&key, "hostile-case-api-key\n").expect("write");
    let validated = validate_outputs();
    let rejected: Vec<&Case> = CASES.iter().filter(|c| c.exit == 1).collect();
    let mut failures = Vec::new();
    for case in &rejected {
        let root = root_of(case, &work);
        let state_dir = scratch.path().join(format!("state-{}", case.name));
        let args = [
            "apply".as_ref(),
            root.as_os_str(),
            "--auto-approve".as_ref(),
            "--url".as_ref(),
            url.as_ref(),
            "--api-key-file".as_ref(),
            key.as_os_str(),
            "--state-dir".as_ref(),
            state_dir.as_os_str(),
            "--secrets-dir".as_ref(),
            secrets.as_os_str(),
            // Should a case get through, fail in seconds rather than wait for the silent tenant.
            "--timeout".as_ref(),
            "2s".as_ref(),
            "--max-retries".as_ref(),
            "0".as_ref(),
        ];
        let r = run(&args, scratch.path());
        let text = r.text.replace(&work.path().display().to_string(), "<tmp>");
        let mut problems = check_output(&text);
        if r.code != Some(1) || r.signal.is_some() {
            problems.push(format!("exit {:?} (signal {:?}), expected 1", r.code, r.signal));
        }
        if !text.contains("nothing was planned or applied") {
            problems.push("no `nothing was planned or applied`".into());
        }
        let expected = diagnostics(validated.get(case.name).map_or("", String::as_str));
        if expected.is_empty() {
            problems.push("no diagnostic in the validate snapshot".into());
        }
        let shown = diagnostics(&text);
        if shown != expected {
            problems.push(format!(
                "diagnostics differ from validate's:\n--- validate\n{}\n--- apply\n{}",
                expected.join("\n\n"),
                shown.join("\n\n")
            ));
        }
        let connections = tenant.connections();
        if connections > 0 {
            problems.push(format!("{connections} connection(s) to the tenant"));
        }
        if state_dir.join("state.json").exists() {
            problems.push("a state file was written".into());
        }
        if !problems.is_empty() {
            failures.push(format!("{}:\n    {}\n{text}", case.name, problems.join("\n    ")));
        }
    }
    assert!(rejected.len() >= 90, "{} rejected cases", rejected.len());
    assert!(
        failures.is_empty(),
        "{} of {} rejected cases failed:\n\n{}",
        failures.len(),
        rejected.len(),
        failures.join("\n")
    );
}

#[test]
fn apply_refuses_a_dangling_reference_and_writes_nothing_to_the_sandbox() {
    let work = Work::new();
    let scratch = tempfile::tempdir().expect("temp dir");
    let secrets = work.secrets();
    let mut failures = Vec::new();
    for name in REFUSED_AFTER_READING {
        let case = CASES.iter().find(|c| c.name == *name).expect("a corpus case");
        let root = root_of(case, &work);
        let state_dir = scratch.path().join(format!("state-{name}"));
        let args = [
            "apply".as_ref(),
            root.as_os_str(),
            "--state-dir".as_ref(),
            state_dir.as_os_str(),
            "--secrets-dir".as_ref(),
            secrets.as_os_str(),
            "--auto-approve".as_ref(),
        ];
        let r = run(&args, scratch.path());
        let mut problems = check_output(&r.text);
        if r.code != Some(1) {
            problems.push(format!("exit {:?} (signal {:?}), expected 1", r.code, r.signal));
        }
        if !r.text.contains("nothing was planned or applied") {
            problems.push("no `nothing was planned or applied`".into());
        }
        let tenant = state_dir.join("sandbox/tenant.json");
        if let Ok(bytes) = fs::read(&tenant) {
            let data: serde_json::Value = serde_json::from_slice(&bytes).expect("tenant.json");
            for kind in
                ["connections", "dataSources", "projects", "policies", "purposes", "licenses"]
            {
                let objects = &data["store"][kind];
                if objects.as_object().is_some_and(|o| !o.is_empty()) {
                    problems.push(format!("the sandbox holds {kind}: {objects}"));
                }
            }
        }
        if !problems.is_empty() {
            failures.push(format!("{name}:\n    {}\n{}", problems.join("\n    "), r.text));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The daemon loads specs on tokio threads (2 MiB stacks): every case must load there too,
/// and render, without a panic or a stack overflow.
#[test]
fn every_hostile_input_loads_on_a_2_mib_thread_through_the_library() {
    let work = Work::new();
    let roots: Vec<(&str, PathBuf)> = CASES
        .iter()
        .filter(|c| !matches!(c.name, "fifo-named-yaml")) // source::dir does not open it either
        .map(|c| (c.name, root_of(c, &work)))
        .map(|(n, r)| (n, if r.is_relative() { repo_root().join(r) } else { r }))
        .collect();
    let handle = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(move || {
            let options =
                source::dir::ReadOptions { include: spec::is_snapshot_file, ..Default::default() };
            let mut total = 0;
            for (name, root) in &roots {
                let snapshot =
                    source::dir::read(root, &options).unwrap_or_else(|e| panic!("{name}: {e}"));
                let (desired, diags) = spec::load(&snapshot, &LoadOptions::default());
                total += diags.iter().map(|d| d.to_string().len()).sum::<usize>();
                for o in &desired.objects {
                    total += o.payload.to_string().len();
                }
            }
            total
        })
        .expect("spawn");
    assert!(handle.join().expect("no panic, no overflow") > 0);
}

#[test]
fn the_committed_corpus_stays_small_and_matches_the_table() {
    let dir = repo_root().join("tests/fixtures/hostile");
    let mut on_disk: Vec<String> = fs::read_dir(&dir)
        .expect("corpus")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = CASES
        .iter()
        .filter(|c| matches!(c.tree, Tree::Fixture))
        .map(|c| c.name.to_owned())
        .collect();
    listed.sort();
    assert_eq!(on_disk, listed, "every fixture directory is a case, and every fixture case exists");
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).expect("dir") {
            let entry = entry.expect("entry");
            let meta = entry.metadata().expect("metadata");
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                assert!(meta.len() <= 100 * 1024, "{} is over 100 KiB", entry.path().display());
            }
        }
    }
}

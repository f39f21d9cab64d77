//! A located YAML tree: every value and every mapping key keeps its `line:column`.
//!
//! Spec files are parsed once into [`Node`]s: the events of granit-parser (the YAML parser
//! serde-saphyr is built on, which also reads JSON) are built into a tree here, and the few
//! plain scalars that may be typed are resolved by serde-saphyr. Everything later works on this
//! tree: typed validation ([`super::de`]), semantic checks, and
//! the conversion to the JSON payload that is posted to Immuta. Keeping our own tree (instead of
//! deserializing straight into the model) is what lets every diagnostic point at a position.
//!
//! This file has the tree's types, the budgets and the split of a stream into documents;
//! `node/build.rs` builds one document's tree from the parser's events.
//!
//! All YAML calls of the spec loader live in this module (this file and `node/build.rs`), so the
//! YAML library can be swapped in one place.

mod build;

use self::build::parse_one;

/// Renders a JSON value as YAML (for human-readable diffs). Never fails: a value that cannot be
/// rendered as YAML is rendered as JSON.
pub fn to_yaml(value: &serde_json::Value) -> String {
    serde_saphyr::to_string(value).unwrap_or_else(|_| value.to_string())
}

/// A 1-based position in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pos {
    /// 1-based line (0 when unknown).
    pub line: u32,
    /// 1-based column (0 when unknown).
    pub column: u32,
}

/// A mapping key with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// The key as text (non-string YAML keys are rendered to text).
    pub name: String,
    /// Where the key is written.
    pub pos: Pos,
}

/// A YAML value with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where the value starts.
    pub pos: Pos,
    /// The value.
    pub value: Value,
}

/// The value of a [`Node`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`, `~`, an empty value, or an unquoted `Null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer that fits in `i64`.
    Int(i64),
    /// An integer above `i64::MAX`.
    UInt(u64),
    /// A float.
    Float(f64),
    /// A string (quoted or plain).
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in document order.
    Map(Vec<(Key, Node)>),
}

impl Value {
    /// A short name of the value's type for messages ("a string", "a list"...).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::UInt(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

impl Node {
    /// The value of `key` when this node is a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|(_, v)| v)
    }

    /// The key and value of `key` when this node is a mapping.
    pub fn entry(&self, key: &str) -> Option<(&Key, &Node)> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|(k, _)| k.name == key).map(|(k, v)| (k, v)),
            _ => None,
        }
    }

    /// The string value, when this node is a string.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The entries, when this node is a mapping.
    pub fn as_map(&self) -> Option<&[(Key, Node)]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// The items, when this node is a sequence.
    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(items) => Some(items),
            _ => None,
        }
    }

    /// Converts to JSON, leaving out the top-level keys in `skip_keys`; the tree's text is
    /// moved, not copied.
    pub fn into_json_without(self, skip_keys: &[&str]) -> serde_json::Value {
        match self.value {
            Value::Map(entries) => serde_json::Value::Object(
                entries
                    .into_iter()
                    .filter(|(k, _)| !skip_keys.contains(&k.name.as_str()))
                    .map(|(k, v)| (k.name, v.into_json()))
                    .collect(),
            ),
            _ => self.into_json(),
        }
    }

    /// Converts to JSON, moving the tree's text.
    pub fn into_json(self) -> serde_json::Value {
        use serde_json::Value as J;
        match self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(b),
            Value::Int(i) => J::from(i),
            Value::UInt(u) => J::from(u),
            Value::Float(f) => serde_json::Number::from_f64(f).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s),
            Value::Seq(items) => J::Array(items.into_iter().map(Node::into_json).collect()),
            Value::Map(entries) => {
                J::Object(entries.into_iter().map(|(k, v)| (k.name, v.into_json())).collect())
            }
        }
    }

    /// Converts to JSON, leaving out the top-level keys in `skip_keys`.
    pub fn to_json_without(&self, skip_keys: &[&str]) -> serde_json::Value {
        match &self.value {
            Value::Map(entries) => serde_json::Value::Object(
                entries
                    .iter()
                    .filter(|(k, _)| !skip_keys.contains(&k.name.as_str()))
                    .map(|(k, v)| (k.name.clone(), v.to_json()))
                    .collect(),
            ),
            _ => self.to_json(),
        }
    }

    /// Converts to JSON.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::UInt(u) => J::from(*u),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => {
                J::Object(entries.iter().map(|(k, v)| (k.name.clone(), v.to_json())).collect())
            }
        }
    }

    /// Shifts every position by `lines` (used when a document was parsed out of a larger file).
    fn shift(&mut self, lines: u32) {
        if self.pos.line > 0 {
            self.pos.line += lines;
        }
        match &mut self.value {
            Value::Seq(items) => items.iter_mut().for_each(|n| n.shift(lines)),
            Value::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
                if k.pos.line > 0 {
                    k.pos.line += lines;
                }
                v.shift(lines);
            }),
            _ => {}
        }
    }
}

/// Limits that keep hostile input (alias bombs, deep nesting, huge documents) bounded.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Deepest nesting of mappings and sequences. Parsing recurses once per level, and a debug
    /// build needs about 55 KiB of stack per level; the default of 24 (three times the depth
    /// of the deepest documented Immuta payload) keeps `load` within a 2 MiB thread stack,
    /// tokio's default for worker and blocking threads.
    pub max_depth: usize,
    /// Most nodes (scalars, sequences, mappings) in one document.
    pub max_nodes: usize,
    /// Most alias references in one document.
    pub max_aliases: usize,
    /// Most documents in one file.
    pub max_documents: usize,
    /// Most bytes of text values in one document, counting every copy an alias makes.
    pub max_scalar_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 24,
            max_nodes: 200_000,
            max_aliases: 1_000,
            max_documents: 1_000,
            max_scalar_bytes: 16 * 1024 * 1024,
        }
    }
}

/// What kind of parse failure a [`ParseError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// Invalid YAML or JSON.
    Syntax,
    /// A size, depth, document or alias budget was exceeded.
    Budget,
    /// The same key twice in one mapping (also two spellings of one key, `1` and `1.0`).
    DuplicateKey,
    /// Valid YAML this tool does not accept: tags (`!include`, `!!binary`, `!!python/...`),
    /// non-scalar mapping keys.
    Unsupported,
}

/// A parse failure with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// What is wrong, without the position. Never quotes a value (keys and tags may be quoted,
    /// with control characters escaped).
    pub message: String,
    /// Where, when known.
    pub pos: Option<Pos>,
    /// What kind of failure.
    pub kind: ParseErrorKind,
    /// How to fix it.
    pub hint: &'static str,
}

impl ParseError {
    fn new(kind: ParseErrorKind, message: impl Into<String>, pos: Option<Pos>) -> Self {
        let hint = match kind {
            ParseErrorKind::Syntax => {
                "fix the YAML syntax (indentation, quoting, `:` in plain values)"
            }
            ParseErrorKind::Budget => "split the file, or remove deep nesting and repeated aliases",
            ParseErrorKind::DuplicateKey => {
                "remove one of the two entries: keys in a mapping must be unique"
            }
            ParseErrorKind::Unsupported => {
                "spec files are plain data: remove the tag (or quote the value if the `!` is text)"
            }
        };
        ParseError { message: message.into(), pos, kind, hint }
    }

    fn with_hint(mut self, hint: &'static str) -> Self {
        self.hint = hint;
        self
    }
}

/// One document of a file: its tree, or why it could not be parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedDocument {
    /// 1-based line where the document's text starts.
    pub start_line: u32,
    /// The tree, or the parse error.
    pub result: Result<Node, ParseError>,
}

/// Parses every document of a YAML (or JSON) text.
///
/// A YAML stream is split on its `---` / `...` document markers first, so a syntax error in one
/// document does not hide problems in the others. Empty documents are skipped.
pub fn parse_documents(text: &str, json: bool, limits: &Limits) -> Vec<ParsedDocument> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if json && let Err(e) = check_json(text, limits) {
        return vec![ParsedDocument { start_line: 1, result: Err(e) }];
    }
    let chunks = if json { vec![(0, text)] } else { split_documents(text, limits.max_documents) };
    if chunks.len() > limits.max_documents {
        let message =
            format!("the file holds more than {} documents (the limit)", limits.max_documents);
        return vec![ParsedDocument {
            start_line: 1,
            result: Err(ParseError::new(ParseErrorKind::Budget, message, None)),
        }];
    }
    let mut docs = Vec::new();
    for (offset, chunk) in chunks {
        let start_line = offset + 1;
        match parse_one(chunk, limits) {
            Ok(None) => {}
            Ok(Some(mut node)) => {
                node.shift(offset);
                docs.push(ParsedDocument { start_line, result: Ok(node) });
            }
            Err(mut e) => {
                if let Some(pos) = &mut e.pos {
                    pos.line += offset;
                }
                docs.push(ParsedDocument { start_line, result: Err(e) });
            }
        }
    }
    docs
}

/// Splits a YAML stream into `(line offset, text)` chunks at document markers. A `---` or `...`
/// at column 0 always ends a document in YAML (even inside block scalars), so a line-based
/// split agrees with the parser. Lines before a marker that hold only directives or comments
/// stay with the document that follows. Documents with no content (a run of `---` lines) are
/// dropped here, so a storm of markers costs no parser work and no document budget. Stops after
/// `max + 1` chunks: the caller refuses the file then.
fn split_documents(text: &str, max: usize) -> Vec<(u32, &str)> {
    let mut chunks = Vec::new();
    let mut start = 0usize;
    let mut start_line = 0u32;
    let mut line_no = 0u32;
    let mut offset = 0usize;
    let mut chunk_has_content = false;
    let mut chunk_has_start = false;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_end_matches(['\n', '\r']);
        let is_start =
            trimmed == "---" || trimmed.starts_with("--- ") || trimmed.starts_with("---\t");
        let is_end = trimmed == "..." || trimmed.starts_with("... ");
        if chunks.len() > max {
            return chunks;
        }
        if is_start {
            if chunk_has_content {
                chunks.push((start_line, &text[start..offset]));
            }
            if chunk_has_content || chunk_has_start {
                // A new document starts here; an empty one before it is dropped.
                start = offset;
                start_line = line_no;
                chunk_has_content = false;
            }
            chunk_has_start = true;
            if trimmed.len() > 3 {
                chunk_has_content = true;
            }
        }
        offset += line.len();
        line_no = line_no.saturating_add(1);
        if is_end {
            if chunk_has_content {
                chunks.push((start_line, &text[start..offset]));
            }
            start = offset;
            start_line = line_no;
            chunk_has_content = false;
            chunk_has_start = false;
            continue;
        }
        let t = trimmed.trim_start();
        if !is_start && !t.is_empty() && !t.starts_with('#') && !t.starts_with('%') {
            chunk_has_content = true;
        }
    }
    if start < text.len() && (chunk_has_content || !chunk_has_start) {
        chunks.push((start_line, &text[start..]));
    }
    chunks
}

/// A JSON file must be JSON: YAML would also read comments, trailing commas, single quotes and
/// unquoted keys, which editors, `jq` and the Immuta CLI reject. serde_json checks the syntax
/// (with its own recursion limit); the YAML parser then builds the located tree.
fn check_json(text: &str, limits: &Limits) -> Result<(), ParseError> {
    let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(text) else { return Ok(()) };
    let full = e.to_string();
    let message = full.rfind(" at line ").map_or(full.as_str(), |i| &full[..i]);
    let pos = (e.line() > 0)
        .then(|| Pos { line: saturate(e.line() as u64), column: saturate(e.column() as u64) });
    // serde_json names the token it expected; say what was found when it is a common mistake.
    let at = pos.and_then(|p| {
        let line = text.lines().nth(p.line as usize - 1)?;
        line.chars().nth((p.column as usize).checked_sub(1)?)
    });
    let message = match at {
        Some('/') => "comments are not allowed",
        Some('\'') => "strings and keys need double quotes, not single quotes",
        Some('}' | ']') if message == "key must be a string" || message == "trailing comma" => {
            "a trailing comma before the closing bracket is not allowed"
        }
        Some(c) if c.is_alphabetic() && message.starts_with("expected") => {
            "unquoted text: JSON keys and strings need double quotes"
        }
        _ => message,
    };
    let hint = "JSON allows no comments, trailing commas, single quotes or unquoted keys; \
                fix the JSON, or rename the file to `.yaml`";
    if message.contains("recursion limit") {
        return Err(ParseError::new(ParseErrorKind::Budget, depth_message(limits), pos));
    }
    Err(ParseError::new(ParseErrorKind::Syntax, format!("invalid JSON: {message}"), pos)
        .with_hint(hint))
}

fn depth_message(limits: &Limits) -> String {
    format!("mappings and lists nest deeper than the limit of {} levels", limits.max_depth)
}

/// A parser's `u64` line or column as a [`Pos`] field (saturating).
fn saturate(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<ParsedDocument> {
        parse_documents(text, false, &Limits::default())
    }

    #[test]
    fn positions_of_keys_and_values_are_kept() {
        let docs = parse("a: 1\nb:\n  - x\n  - y: Null\n");
        let root = docs[0].result.as_ref().unwrap();
        let (k, v) = root.entry("b").unwrap();
        assert_eq!(k.pos, Pos { line: 2, column: 1 });
        let item = &v.as_seq().unwrap()[1];
        let (yk, yv) = item.entry("y").unwrap();
        assert_eq!(yk.pos, Pos { line: 4, column: 5 });
        assert_eq!(yv.value, Value::Null);
    }

    #[test]
    fn a_syntax_error_in_one_document_does_not_hide_the_others() {
        let docs = parse("a: 1\n---\nname: x\n  bad: indent\n---\nc: [1, 2]\n");
        assert_eq!(docs.len(), 3);
        assert!(docs[0].result.is_ok());
        let err = docs[1].result.as_ref().unwrap_err();
        assert_eq!(err.pos.map(|p| p.line), Some(4));
        let third = docs[2].result.as_ref().unwrap();
        assert_eq!(third.pos.line, 6);
        assert_eq!(docs[2].start_line, 5);
    }

    #[test]
    fn duplicate_keys_are_errors_with_their_position() {
        let docs = parse("m:\n  k: 1\n  k: 2\n");
        let err = docs[0].result.as_ref().unwrap_err();
        assert_eq!(err.pos, Some(Pos { line: 3, column: 3 }));
        assert!(err.message.contains("duplicate mapping key"), "{}", err.message);
        assert!(!err.message.contains("DuplicateKeyPolicy"));
    }

    #[test]
    fn empty_documents_and_comment_only_files_are_skipped() {
        assert!(parse("# just a comment\n").is_empty());
        assert_eq!(parse("---\na: 1\n---\n---\nb: 2\n...\n").len(), 2);
    }

    #[test]
    fn json_is_read_with_positions() {
        let docs = parse_documents("{\n  \"a\": [1, 2.5, true, null]\n}", true, &Limits::default());
        let root = docs[0].result.as_ref().unwrap();
        assert_eq!(root.entry("a").unwrap().0.pos, Pos { line: 2, column: 3 });
        assert_eq!(root.to_json(), serde_json::json!({"a": [1, 2.5, true, null]}));
    }

    #[test]
    fn alias_bombs_hit_the_budget() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let docs = parse(&text);
        let err = docs[0].result.as_ref().unwrap_err();
        assert_eq!(err.kind, ParseErrorKind::Budget, "{err:?}");
    }

    #[test]
    fn deep_nesting_hits_the_budget() {
        let text = format!("{}1{}", "[".repeat(500), "]".repeat(500));
        let docs = parse(&text);
        assert!(docs[0].result.is_err());
    }

    fn error_of(text: &str, json: bool) -> ParseError {
        let docs = parse_documents(text, json, &Limits::default());
        docs.into_iter().find_map(|d| d.result.err()).expect("an error")
    }

    #[test]
    fn tags_other_than_core_types_are_refused_with_their_position() {
        for (text, tag) in [
            ("name: !include other.yaml\n", "`!include`"),
            ("name: !!python/object:os.system P\n", "`!!python/object:os.system`"),
            ("name: P\ndescription: !!binary aGVsbG8=\n", "`!!binary`"),
            ("name: P\n!secret password: x\n", "`!secret`"),
            ("name: P\nx: !custom {a: b}\n", "`!custom`"),
        ] {
            let e = error_of(text, false);
            assert_eq!(e.kind, ParseErrorKind::Unsupported, "{text}: {e:?}");
            assert!(e.message.contains(tag), "{text}: {e:?}");
            assert!(e.pos.is_some_and(|p| p.line > 0), "{text}: {e:?}");
        }
        let docs =
            parse("name: !!str 123\nx: !!int \"12\"\ny: !<tag:yaml.org,2002:str> s\nz: ! t\n");
        let root = docs[0].result.as_ref().unwrap();
        assert_eq!(root.to_json(), serde_json::json!({"name": "123", "x": 12, "y": "s", "z": "t"}));
    }

    #[test]
    fn keys_that_read_the_same_as_json_text_are_duplicates() {
        for text in
            ["x:\n  1: a\n  1.0: b\n", "x: {null: a, \"null\": b}\n", "x: {~: a, null: b}\n"]
        {
            let e = error_of(text, false);
            assert_eq!(e.kind, ParseErrorKind::DuplicateKey, "{text}: {e:?}");
            assert!(e.pos.is_some_and(|p| p.line > 0), "{text}: {e:?}");
        }
    }

    #[test]
    fn a_storm_of_markers_is_empty_and_many_documents_hit_the_budget_early() {
        assert!(parse(&"---\n".repeat(100_000)).is_empty());
        assert!(parse(&"...\n".repeat(100_000)).is_empty());
        assert_eq!(parse("---\n---\n%YAML 1.2\n---\na: 1\n---\n").len(), 1);
        let e = error_of(&"---\na\n".repeat(100_000), false);
        assert_eq!(e.kind, ParseErrorKind::Budget);
        assert_eq!(e.message, "the file holds more than 1000 documents (the limit)");
    }

    #[test]
    fn json_files_must_be_json() {
        for (text, what) in [
            ("{\"name\": \"P\",}", "a trailing comma before the closing bracket is not allowed"),
            ("{\"name\": \"P\" // c\n}", "comments are not allowed"),
            ("{'name': 'P'}", "strings and keys need double quotes, not single quotes"),
            ("{\"name\": \"P\"}\n{\"name\": \"Q\"}", "trailing characters"),
            ("name: P\n", "unquoted text: JSON keys and strings need double quotes"),
        ] {
            let e = error_of(text, true);
            assert_eq!(e.kind, ParseErrorKind::Syntax);
            assert_eq!(e.message, format!("invalid JSON: {what}"));
            assert!(e.hint.contains("JSON allows no comments"), "{e:?}");
        }
        let e = error_of(&format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)), true);
        assert_eq!(e.kind, ParseErrorKind::Budget);
    }

    #[test]
    fn budget_errors_read_as_sentences() {
        let deep = format!("x: {}1{}", "{a: ".repeat(10_000), "}".repeat(10_000));
        let e = error_of(&deep, false);
        assert_eq!(e.message, "mappings and lists nest deeper than the limit of 24 levels");
        let e = error_of("a: &a [*a]\n", false);
        assert!(e.message.starts_with("an alias (`*name`) refers to the anchor"), "{e:?}");
        let e = error_of("? [a]\n: b\n", false);
        assert_eq!(e.kind, ParseErrorKind::Unsupported);
    }

    #[test]
    fn the_deepest_allowed_document_parses_on_a_2_mib_stack() {
        let depth = Limits::default().max_depth;
        let text = (0..depth).map(|i| format!("{}a:\n", " ".repeat(i))).collect::<String>();
        let flow = format!("{}1{}", "{a: ".repeat(depth), "}".repeat(depth));
        let parsed = std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || (parse(&text), parse(&flow)))
            .unwrap()
            .join()
            .unwrap();
        assert!(parsed.0[0].result.is_ok(), "{:?}", parsed.0);
        assert!(parsed.1[0].result.is_ok(), "{:?}", parsed.1);
    }

    #[test]
    fn to_json_without_drops_top_level_keys_only() {
        let docs = parse("gitops: {prune: false}\nname: x\nsub: {gitops: 1}\n");
        let root = docs[0].result.as_ref().unwrap();
        assert_eq!(
            root.to_json_without(&["gitops"]),
            serde_json::json!({"name": "x", "sub": {"gitops": 1}})
        );
    }

    #[test]
    fn aliases_copy_the_anchored_value_and_merges_let_written_keys_win() {
        let docs = parse(
            "base: &b {x: 1, y: 2}\nother: &o {z: 3, x: 9}\nlist: &l [1, 2]\n\
             m: {<<: [*b, *o], y: 5}\ncopy: *l\n",
        );
        let root = docs[0].result.as_ref().unwrap();
        let json = root.to_json();
        assert_eq!(json["m"], serde_json::json!({"y": 5, "x": 1, "z": 3}));
        assert_eq!(json["copy"], serde_json::json!([1, 2]));
        // The copy is located at the alias; what it holds, where it is written.
        let copy = root.get("copy").unwrap();
        assert_eq!(copy.pos, Pos { line: 5, column: 7 });
        assert_eq!(copy.as_seq().unwrap()[0].pos, Pos { line: 3, column: 11 });
    }

    #[test]
    fn plain_scalars_are_typed_by_the_core_schema_and_quoted_ones_are_text() {
        let docs = parse(
            "a: 443\nb: -1.5\nc: 0x1F\nd: ~\ne: True\nf: yes\ng: '443'\nh: 1_000\ni: .5\n\
             j: !!str 12\nk: !!int \"7\"\nl: ! 12\nm: -\\x\nn: 2024-01-01\n",
        );
        let json = docs[0].result.as_ref().unwrap().to_json();
        assert_eq!(
            json,
            serde_json::json!({"a": 443, "b": -1.5, "c": 31, "d": null, "e": true, "f": "yes",
                "g": "443", "h": 1000, "i": 0.5, "j": "12", "k": 7, "l": "12", "m": "-\\x",
                "n": "2024-01-01"})
        );
    }

    #[test]
    fn only_the_non_specific_tag_and_core_tags_of_the_right_kind_are_accepted() {
        for (text, message) in [
            ("a: !seq x\n", "YAML tag `!seq` is not supported"),
            ("a: !!float {b: 1}\n", "YAML tag `!!float` cannot be put on a mapping"),
            ("a: !!map [1]\n", "YAML tag `!!map` cannot be put on a list"),
            ("a: !!seq x\n", "YAML tag `!!seq` cannot be put on a single value"),
        ] {
            let e = error_of(text, false);
            assert_eq!(e.kind, ParseErrorKind::Unsupported, "{text}");
            assert_eq!(e.message, message, "{text}");
        }
        assert!(parse("a: !!map {b: !!seq [!!null x]}\nc: ! {d: 1}\n")[0].result.is_ok());
    }

    #[test]
    fn a_document_that_is_only_null_is_empty() {
        assert!(parse("~\n").is_empty());
        assert!(parse("null\n---\nname: x\n").len() == 1);
    }
}

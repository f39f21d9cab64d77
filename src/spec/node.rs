//! A located YAML tree: every value and every mapping key keeps its `line:column`.
//!
//! Spec files are parsed once into [`Node`]s (YAML through serde-saphyr, which also reads JSON).
//! Everything later works on this tree: typed validation ([`super::de`]), semantic checks, and
//! the conversion to the JSON payload that is posted to Immuta. Keeping our own tree (instead of
//! deserializing straight into the model) is what lets every diagnostic point at a position.
//!
//! All YAML calls of the crate live in this file, so the YAML library can be swapped in one place.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{DuplicateKeyPolicy, MessageFormatter, Spanned};

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
    /// Deepest nesting of mappings and sequences.
    pub max_depth: usize,
    /// Most nodes (scalars, sequences, mappings) in one document.
    pub max_nodes: usize,
    /// Most alias references in one document.
    pub max_aliases: usize,
    /// Most documents in one file.
    pub max_documents: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_depth: 48, max_nodes: 200_000, max_aliases: 1_000, max_documents: 1_000 }
    }
}

/// A parse failure with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// What is wrong, without the position.
    pub message: String,
    /// Where, when known.
    pub pos: Option<Pos>,
    /// Whether a size, depth or alias budget was exceeded (as opposed to invalid syntax).
    pub budget: bool,
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
    let chunks = if json { vec![(0, text)] } else { split_documents(text) };
    if chunks.len() > limits.max_documents {
        return vec![ParsedDocument {
            start_line: 1,
            result: Err(ParseError {
                message: format!(
                    "the file holds {} documents, more than the limit of {}",
                    chunks.len(),
                    limits.max_documents
                ),
                pos: None,
                budget: true,
            }),
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
/// stay with the document that follows.
fn split_documents(text: &str) -> Vec<(u32, &str)> {
    let mut chunks = Vec::new();
    let mut start = 0usize;
    let mut start_line = 0u32;
    let mut line_no = 0u32;
    let mut offset = 0usize;
    let mut chunk_has_content = false;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_end_matches(['\n', '\r']);
        let is_start =
            trimmed == "---" || trimmed.starts_with("--- ") || trimmed.starts_with("---\t");
        let is_end = trimmed == "..." || trimmed.starts_with("... ");
        if is_start && chunk_has_content {
            chunks.push((start_line, &text[start..offset]));
            start = offset;
            start_line = line_no;
            chunk_has_content = false;
        }
        if is_start && trimmed.len() > 3 {
            chunk_has_content = true;
        }
        offset += line.len();
        line_no += 1;
        if is_end {
            chunks.push((start_line, &text[start..offset]));
            start = offset;
            start_line = line_no;
            chunk_has_content = false;
            continue;
        }
        let t = trimmed.trim_start();
        if !is_start && !t.is_empty() && !t.starts_with('#') && !t.starts_with('%') {
            chunk_has_content = true;
        }
    }
    if start < text.len() {
        chunks.push((start_line, &text[start..]));
    }
    chunks
}

fn parse_one(text: &str, limits: &Limits) -> Result<Option<Node>, ParseError> {
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: limits.max_depth,
            max_nodes: limits.max_nodes,
            max_aliases: limits.max_aliases,
            max_anchors: limits.max_aliases,
            max_documents: 2,
            max_recorded_anchor_events: limits.max_nodes / 10,
            max_events: limits.max_nodes.saturating_mul(4),
        },
        duplicate_keys: DuplicateKeyPolicy::Error,
        strict_booleans: true,
    };
    match serde_saphyr::from_multiple_with_options::<Node>(text, options) {
        Ok(mut docs) => match docs.len() {
            0 => Ok(None),
            1 => Ok(docs.pop()),
            _ => Err(ParseError {
                message: "unexpected document marker".into(),
                pos: docs.get(1).map(|n| n.pos),
                budget: false,
            }),
        },
        Err(e) => Err(convert_error(&e)),
    }
}

fn convert_error(e: &serde_saphyr::Error) -> ParseError {
    let inner = e.without_snippet();
    let message = serde_saphyr::DefaultMessageFormatter.format_message(inner).into_owned();
    let message = message.replace(", set DuplicateKeyPolicy in Options if acceptable", "");
    let pos = e
        .location()
        .filter(|l| l.line() > 0)
        .map(|l| Pos { line: saturate(l.line()), column: saturate(l.column()) });
    let budget = matches!(inner, serde_saphyr::Error::Budget { .. })
        || message.contains("budget")
        || message.contains("nesting");
    ParseError { message, pos, budget }
}

fn saturate(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

fn pos_of(location: &serde_saphyr::Location) -> Pos {
    Pos { line: saturate(location.line()), column: saturate(location.column()) }
}

/// A mapping key of any scalar type, rendered to text.
struct KeyText(String);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeyText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a scalar mapping key")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<KeyText, E> {
                Ok(KeyText(v.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<KeyText, E> {
                Ok(KeyText(v))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<KeyText, E> {
                Ok(KeyText("null".into()))
            }
            fn visit_none<E: serde::de::Error>(self) -> Result<KeyText, E> {
                Ok(KeyText("null".into()))
            }
        }
        d.deserialize_any(V)
    }
}

/// The value part of a node, deserialized without its own position (the caller wraps it in
/// `Spanned`).
struct ValueOnly(Value);

impl<'de> Deserialize<'de> for ValueOnly {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ValueOnly;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<ValueOnly, E> {
                Ok(ValueOnly(Value::Null))
            }
            fn visit_none<E: serde::de::Error>(self) -> Result<ValueOnly, E> {
                Ok(ValueOnly(Value::Null))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<ValueOnly, D::Error> {
                ValueOnly::deserialize(d)
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<ValueOnly, E> {
                Ok(ValueOnly(Value::Bool(v)))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ValueOnly, E> {
                Ok(ValueOnly(Value::Int(v)))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ValueOnly, E> {
                Ok(ValueOnly(i64::try_from(v).map_or(Value::UInt(v), Value::Int)))
            }
            fn visit_i128<E: serde::de::Error>(self, v: i128) -> Result<ValueOnly, E> {
                Ok(ValueOnly(i64::try_from(v).map_or(Value::Str(v.to_string()), Value::Int)))
            }
            fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<ValueOnly, E> {
                Ok(ValueOnly(u64::try_from(v).map_or(Value::Str(v.to_string()), Value::UInt)))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<ValueOnly, E> {
                Ok(ValueOnly(Value::Float(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ValueOnly, E> {
                Ok(ValueOnly(Value::Str(v.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<ValueOnly, E> {
                Ok(ValueOnly(Value::Str(v)))
            }
            fn visit_bytes<E: serde::de::Error>(self, _: &[u8]) -> Result<ValueOnly, E> {
                Err(E::custom("binary values (`!!binary`) are not supported in specs"))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<ValueOnly, A::Error> {
                let mut items = Vec::with_capacity(a.size_hint().unwrap_or(0).min(1024));
                while let Some(n) = a.next_element::<Node>()? {
                    items.push(n);
                }
                Ok(ValueOnly(Value::Seq(items)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<ValueOnly, A::Error> {
                let mut entries = Vec::new();
                while let Some(k) = a.next_key::<Spanned<KeyText>>()? {
                    let v = a.next_value::<Node>()?;
                    entries.push((Key { name: k.value.0, pos: pos_of(&k.referenced) }, v));
                }
                Ok(ValueOnly(Value::Map(entries)))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<ValueOnly>::deserialize(d)?;
        Ok(Node { pos: pos_of(&spanned.referenced), value: spanned.value.0 })
    }
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
        assert!(err.budget, "{err:?}");
    }

    #[test]
    fn deep_nesting_hits_the_budget() {
        let text = format!("{}1{}", "[".repeat(500), "]".repeat(500));
        let docs = parse(&text);
        assert!(docs[0].result.is_err());
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
}

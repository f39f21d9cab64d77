//! The tree builder: parser events of one document into a located [`Node`] tree.
//!
//! The events come from granit-parser, the YAML parser serde-saphyr is built on, and the tree
//! is built here: every value gets its position without a serde wrapper per value. Anchors,
//! aliases and merge keys (`<<`) are expanded within the [`Limits`] budgets; tags other than
//! YAML's core types are refused; plain scalars that may be typed are resolved by serde-saphyr.
//! Parser and resolver errors become [`ParseError`]s in this tool's words.

use std::collections::HashMap;
use std::fmt;

use granit_parser::{Event, Parser, ScalarStyle, ScanError, StrInput, Tag};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::MessageFormatter;

use super::{Key, Limits, Node, ParseError, ParseErrorKind, Pos, Value, depth_message, saturate};
use crate::spec::text::{shown, shown_up_to};

/// Parses one document (a chunk from `split_documents`) into a located tree.
///
/// The events come from granit-parser, the YAML parser serde-saphyr is built on, and the tree
/// is built here: every value gets its position without a serde wrapper per value, which made
/// parsing four times slower. Plain scalars that may be typed (numbers, `.inf`) and scalars with
/// a core tag (`!!int "5"`) are resolved by serde-saphyr itself, so the typing rules stay the
/// library's. Anchors, aliases and merge keys (`<<`) are expanded here, within the budgets.
pub(super) fn parse_one(text: &str, limits: &Limits) -> Result<Option<Node>, ParseError> {
    build(text, limits).map_err(|e| locate_tab(e, text))
}

fn build(text: &str, limits: &Limits) -> Result<Option<Node>, ParseError> {
    let options = granit_parser::options! {
        flow_nesting_limit: limits.max_depth,
        block_nesting_limit: granit_parser::Options::default()
            .block_nesting_limit
            .max(limits.max_depth.saturating_add(1)),
        emit_comments: false,
    };
    let mut b = Builder {
        parser: Parser::with_options(StrInput::new(text), options),
        limits,
        anchors: HashMap::new(),
        open_anchors: Vec::new(),
        nodes: 0,
        scalar_bytes: 0,
        aliases: 0,
        replayed: 0,
        merges: 0,
    };
    let mut root = None;
    loop {
        let (event, span) = b.next()?;
        match event {
            // A document that is only `null` (or `~`) is empty, as a comment-only one is.
            Event::StreamEnd => return Ok(root.filter(|n: &Node| n.value != Value::Null)),
            Event::Scalar(..)
            | Event::SequenceStart(..)
            | Event::MappingStart(..)
            | Event::Alias(..) => {
                let node = b.node(event, span, 0)?;
                if root.is_some() {
                    return Err(ParseError::new(
                        ParseErrorKind::Syntax,
                        "unexpected document marker",
                        Some(node.pos),
                    ));
                }
                root = Some(node);
            }
            _ => {}
        }
    }
}

/// An anchored node, with what one copy of it costs.
struct Anchored {
    node: Node,
    nodes: usize,
    scalar_bytes: usize,
}

/// Builds a [`Node`] tree from parser events, counting against the [`Limits`].
struct Builder<'t> {
    parser: Parser<'t, StrInput<'t>>,
    limits: &'t Limits,
    anchors: HashMap<usize, Anchored>,
    /// Anchors whose node is being built: an alias to one of them is recursive.
    open_anchors: Vec<usize>,
    /// Nodes of the document, alias copies included.
    nodes: usize,
    /// Bytes of text values, alias copies included.
    scalar_bytes: usize,
    aliases: usize,
    /// Nodes copied by aliases.
    replayed: usize,
    merges: usize,
}

impl<'t> Builder<'t> {
    fn next(&mut self) -> Result<(Event<'t>, granit_parser::Span), ParseError> {
        match self.parser.next_event() {
            Some(Ok(pair)) => Ok(pair),
            Some(Err(e)) => Err(scan_error(&e, self.limits)),
            None => {
                Err(ParseError::new(ParseErrorKind::Syntax, "unexpected end of the file", None))
            }
        }
    }

    fn count(&mut self, nodes: usize, scalar_bytes: usize, pos: Pos) -> Result<(), ParseError> {
        self.nodes = self.nodes.saturating_add(nodes);
        self.scalar_bytes = self.scalar_bytes.saturating_add(scalar_bytes);
        if self.nodes > self.limits.max_nodes {
            let message = format!(
                "the document has more than {} values; split it into several documents",
                self.limits.max_nodes
            );
            return Err(ParseError::new(ParseErrorKind::Budget, message, Some(pos)));
        }
        if self.scalar_bytes > self.limits.max_scalar_bytes {
            let message = format!(
                "the document's text values (counting every alias copy) exceed {} bytes",
                self.limits.max_scalar_bytes
            );
            return Err(ParseError::new(ParseErrorKind::Budget, message, Some(pos)));
        }
        Ok(())
    }

    fn alias_bomb(&self, pos: Pos) -> ParseError {
        let message = format!(
            "anchors and aliases (`&name` / `*name`) expand to too much data (a \"billion \
             laughs\" pattern); at most {} values and {} aliases are allowed per document",
            self.limits.max_nodes, self.limits.max_aliases
        );
        ParseError::new(ParseErrorKind::Budget, message, Some(pos))
    }

    /// Builds a node that may carry an anchor: counted against the budgets, and recorded with
    /// what one copy of it costs once built, so that aliases can copy it.
    fn anchored(
        &mut self,
        anchor: usize,
        pos: Pos,
        text_bytes: usize,
        value: impl FnOnce(&mut Self) -> Result<Value, ParseError>,
    ) -> Result<Node, ParseError> {
        let start = self.open(anchor, pos)?;
        self.count(1, text_bytes, pos)?;
        let node = Node { pos, value: value(self)? };
        self.close(anchor, &node, start);
        Ok(node)
    }

    /// Starts an anchor; returns the counters to measure its node with.
    fn open(&mut self, anchor: usize, pos: Pos) -> Result<(usize, usize), ParseError> {
        if anchor != 0 {
            if self.anchors.len() >= self.limits.max_aliases {
                return Err(self.alias_bomb(pos));
            }
            self.open_anchors.push(anchor);
        }
        Ok((self.nodes, self.scalar_bytes))
    }

    /// Records an anchored node once it is built.
    fn close(&mut self, anchor: usize, node: &Node, (nodes, scalar_bytes): (usize, usize)) {
        if anchor != 0 {
            self.open_anchors.retain(|&a| a != anchor);
            let anchored = Anchored {
                node: node.clone(),
                nodes: self.nodes - nodes,
                scalar_bytes: self.scalar_bytes - scalar_bytes,
            };
            self.anchors.insert(anchor, anchored);
        }
    }

    /// Builds the node that starts with `event`, `depth` collections deep.
    fn node(
        &mut self,
        event: Event<'t>,
        span: granit_parser::Span,
        depth: usize,
    ) -> Result<Node, ParseError> {
        let pos = pos_of(&span.start);
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                self.anchored(anchor, pos, text.len(), |_| {
                    scalar(&text, style, tag.as_deref(), pos)
                })
            }
            Event::SequenceStart(_, anchor, tag) => {
                self.enter(depth, tag.as_deref(), Tagged::Sequence, pos)?;
                self.anchored(anchor, pos, 0, |b| {
                    let mut items = Vec::new();
                    loop {
                        let (event, span) = b.next()?;
                        if matches!(event, Event::SequenceEnd) {
                            return Ok(Value::Seq(items));
                        }
                        items.push(b.node(event, span, depth + 1)?);
                    }
                })
            }
            Event::MappingStart(_, anchor, tag) => {
                self.enter(depth, tag.as_deref(), Tagged::Mapping, pos)?;
                self.anchored(anchor, pos, 0, |b| Ok(Value::Map(b.mapping(depth)?)))
            }
            Event::Alias(anchor) => self.alias(anchor, pos),
            _ => Err(ParseError::new(ParseErrorKind::Syntax, "unexpected YAML event", Some(pos))),
        }
    }

    /// Checks a collection's tag and depth before it is read.
    fn enter(
        &self,
        depth: usize,
        tag: Option<&Tag>,
        on: Tagged,
        pos: Pos,
    ) -> Result<(), ParseError> {
        if let Some(tag) = tag {
            check_tag(tag, on, pos)?;
        }
        if depth + 1 > self.limits.max_depth {
            return Err(ParseError::new(
                ParseErrorKind::Budget,
                depth_message(self.limits),
                Some(pos),
            ));
        }
        Ok(())
    }

    /// A copy of an anchored node, located at the alias.
    fn alias(&mut self, anchor: usize, pos: Pos) -> Result<Node, ParseError> {
        self.aliases += 1;
        if self.aliases > self.limits.max_aliases {
            return Err(self.alias_bomb(pos));
        }
        if self.open_anchors.contains(&anchor) {
            return Err(ParseError::new(
                ParseErrorKind::Syntax,
                "an alias (`*name`) refers to the anchor that contains it: a recursive \
                 structure cannot be converted to JSON",
                Some(pos),
            )
            .with_hint("replace the alias with the value it should stand for"));
        }
        let Some(anchored) = self.anchors.get(&anchor) else {
            return Err(ParseError::new(
                ParseErrorKind::Syntax,
                "alias references unknown anchor",
                Some(pos),
            ));
        };
        let (nodes, scalar_bytes) = (anchored.nodes, anchored.scalar_bytes);
        let mut node = anchored.node.clone();
        node.pos = pos;
        self.replayed = self.replayed.saturating_add(nodes);
        if self.replayed > self.limits.max_nodes / 4 {
            return Err(self.alias_bomb(pos));
        }
        self.count(nodes, scalar_bytes, pos)?;
        Ok(node)
    }

    /// The entries of a mapping whose start was read, merge keys expanded: entries written in
    /// the mapping come first and win; merged ones follow, the first merged mapping winning.
    fn mapping(&mut self, depth: usize) -> Result<Vec<(Key, Node)>, ParseError> {
        let mut entries: Vec<(Key, Node)> = Vec::new();
        // Key text -> the key as written, for the message of a duplicate.
        let mut seen: HashMap<String, String> = HashMap::new();
        let mut merged: Vec<Vec<(Key, Node)>> = Vec::new();
        loop {
            let (event, span) = self.next()?;
            let pos = pos_of(&span.start);
            let merge = match &event {
                Event::MappingEnd => break,
                Event::Scalar(text, ScalarStyle::Plain, _, None) => text.as_ref() == "<<",
                Event::Scalar(_, _, _, Some(tag)) => {
                    tag.handle() == "tag:yaml.org,2002:" && tag.suffix() == "merge"
                }
                _ => false,
            };
            if merge {
                self.count(1, 2, pos)?;
                self.merges += 1;
                if self.merges > self.limits.max_aliases {
                    let message = format!(
                        "the document uses more than {} merge keys (`<<`)",
                        self.limits.max_aliases
                    );
                    return Err(ParseError::new(ParseErrorKind::Budget, message, Some(pos)));
                }
                let (event, span) = self.next()?;
                let value = self.node(event, span, depth + 1)?;
                match value.value {
                    Value::Null => {}
                    Value::Map(map) => merged.push(map),
                    Value::Seq(items) => {
                        for item in items {
                            match item.value {
                                Value::Map(map) => merged.push(map),
                                _ => return Err(merge_value_error(item.pos)),
                            }
                        }
                    }
                    _ => return Err(merge_value_error(value.pos)),
                }
                continue;
            }
            let (key, written) = self.key(event, pos)?;
            if let Some(previous) = seen.get(&key.name) {
                let message = if *previous == written {
                    format!("duplicate mapping key `{}`", shown(&key.name))
                } else {
                    format!(
                        "duplicate mapping key `{}`: the same key as `{}` before it (two \
                         spellings of one key, such as `1` and `1.0` or `~` and `null`)",
                        shown(&written),
                        shown(previous)
                    )
                };
                return Err(ParseError::new(ParseErrorKind::DuplicateKey, message, Some(key.pos)));
            }
            seen.insert(key.name.clone(), written);
            let (event, span) = self.next()?;
            let value = self.node(event, span, depth + 1)?;
            entries.push((key, value));
        }
        for map in merged {
            for (key, value) in map {
                if !seen.contains_key(&key.name) {
                    seen.insert(key.name.clone(), key.name.clone());
                    entries.push((key, value));
                }
            }
        }
        Ok(entries)
    }

    /// A mapping key (non-string keys rendered as text: `1.0` is `1`, `~` is `null`), and the
    /// key as written.
    fn key(&mut self, event: Event<'t>, pos: Pos) -> Result<(Key, String), ParseError> {
        let (value, written) = match event {
            Event::Scalar(text, style, anchor, tag) => {
                let value = self
                    .anchored(anchor, pos, text.len(), |_| {
                        scalar(&text, style, tag.as_deref(), pos)
                    })?
                    .value;
                let written = match style {
                    ScalarStyle::SingleQuoted => format!("'{text}'"),
                    ScalarStyle::DoubleQuoted => format!("\"{text}\""),
                    _ => text.into_owned(),
                };
                (value, written)
            }
            Event::Alias(anchor) => {
                let node = self.alias(anchor, pos)?;
                let written = key_name(&node.value).unwrap_or_default();
                (node.value, written)
            }
            Event::SequenceStart(..) | Event::MappingStart(..) => return Err(complex_key(pos)),
            _ => {
                return Err(ParseError::new(
                    ParseErrorKind::Syntax,
                    "unexpected YAML event",
                    Some(pos),
                ));
            }
        };
        let Some(name) = key_name(&value) else { return Err(complex_key(pos)) };
        Ok((Key { name, pos }, written))
    }
}

/// The text of a scalar used as a mapping key; `None` for collections.
fn key_name(value: &Value) -> Option<String> {
    Some(match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Str(s) => s.clone(),
        Value::Seq(_) | Value::Map(_) => return None,
    })
}

fn complex_key(pos: Pos) -> ParseError {
    ParseError::new(
        ParseErrorKind::Unsupported,
        "a mapping key must be text, a number or a boolean, not a list or a mapping",
        Some(pos),
    )
    .with_hint("write the key as text (quote it if needed); JSON keys are text")
}

fn merge_value_error(pos: Pos) -> ParseError {
    ParseError::new(
        ParseErrorKind::Syntax,
        "YAML merge value must be mapping or sequence of mappings",
        Some(pos),
    )
    .with_hint("merge (`<<`) an alias of a mapping, or a list of them")
}

/// The value of a scalar. Quoted and block scalars are text; plain ones are `null`, booleans
/// and numbers by YAML 1.2's core schema (resolved by serde-saphyr), text otherwise.
fn scalar(
    text: &str,
    style: ScalarStyle,
    tag: Option<&Tag>,
    pos: Pos,
) -> Result<Value, ParseError> {
    if let Some(tag) = tag {
        return match check_tag(tag, Tagged::Scalar, pos)? {
            "null" => Ok(Value::Null),
            core @ ("bool" | "int" | "float") => {
                resolve(&format!("!!{core} {}", serde_json::Value::from(text)), text, pos)
            }
            // `!!str`, the non-specific `!`.
            _ => Ok(Value::Str(text.to_owned())),
        };
    }
    if style != ScalarStyle::Plain {
        return Ok(Value::Str(text.to_owned()));
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Ok(Value::Null),
        "true" | "True" | "TRUE" => return Ok(Value::Bool(true)),
        "false" | "False" | "FALSE" => return Ok(Value::Bool(false)),
        _ => {}
    }
    // Every other typed plain scalar is a number (`1`, `-2`, `0x1F`, `1e3`, `.5`, `.inf`),
    // made of these characters. `-`, `---` and `...` would read as YAML syntax on their own.
    let number_like = text
        .starts_with(|c: char| c.is_ascii_digit() || matches!(c, '+' | '-' | '.'))
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.' | b'_'))
        && text != "-"
        && !text.starts_with("---")
        && !text.starts_with("...");
    if number_like { resolve(text, text, pos) } else { Ok(Value::Str(text.to_owned())) }
}

/// Resolves the YAML text of one scalar with serde-saphyr; a result that is not a scalar is
/// the text itself.
fn resolve(yaml: &str, text: &str, pos: Pos) -> Result<Value, ParseError> {
    let options = serde_saphyr::options! { strict_booleans: true };
    match serde_saphyr::from_str_with_options::<ScalarValue>(yaml, options) {
        Ok(ScalarValue(Some(value))) => Ok(value),
        Ok(ScalarValue(None)) => Ok(Value::Str(text.to_owned())),
        Err(e) => {
            let mut error = convert_error(&e);
            error.pos = Some(pos);
            Err(error)
        }
    }
}

/// The value of a scalar resolved by serde-saphyr; `None` when it is not a scalar.
struct ScalarValue(Option<Value>);

impl<'de> Deserialize<'de> for ScalarValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ScalarValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a YAML scalar")
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<ScalarValue, E> {
                Ok(ScalarValue(Some(Value::Null)))
            }
            fn visit_none<E: serde::de::Error>(self) -> Result<ScalarValue, E> {
                Ok(ScalarValue(Some(Value::Null)))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<ScalarValue, E> {
                Ok(ScalarValue(Some(Value::Bool(v))))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ScalarValue, E> {
                Ok(ScalarValue(Some(Value::Int(v))))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ScalarValue, E> {
                Ok(ScalarValue(Some(i64::try_from(v).map_or(Value::UInt(v), Value::Int))))
            }
            fn visit_i128<E: serde::de::Error>(self, v: i128) -> Result<ScalarValue, E> {
                Ok(ScalarValue(Some(
                    i64::try_from(v).map_or(Value::Str(v.to_string()), Value::Int),
                )))
            }
            fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<ScalarValue, E> {
                Ok(ScalarValue(Some(
                    u64::try_from(v).map_or(Value::Str(v.to_string()), Value::UInt),
                )))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<ScalarValue, E> {
                Ok(ScalarValue(Some(Value::Float(v))))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ScalarValue, E> {
                Ok(ScalarValue(Some(Value::Str(v.to_owned()))))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<ScalarValue, A::Error> {
                Ok(ScalarValue(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<ScalarValue, A::Error> {
                Ok(ScalarValue(None))
            }
        }
        d.deserialize_any(V)
    }
}

fn pos_of(marker: &granit_parser::Marker) -> Pos {
    Pos { line: saturate(marker.line() as u64), column: saturate(marker.col() as u64 + 1) }
}

/// A parser error with its position; unknown anchors and nesting limits in our words.
fn scan_error(e: &ScanError, limits: &Limits) -> ParseError {
    let pos = (e.marker().line() > 0).then(|| pos_of(e.marker()));
    match e.kind() {
        granit_parser::ErrorKind::UnknownAnchor => {
            return ParseError::new(ParseErrorKind::Syntax, "alias references unknown anchor", pos);
        }
        granit_parser::ErrorKind::RecursionLimitExceeded => {
            return ParseError::new(ParseErrorKind::Budget, depth_message(limits), pos);
        }
        _ => {}
    }
    let raw = e.info();
    if raw.contains("simple key expected ':'") {
        return ParseError::new(
            ParseErrorKind::Syntax,
            "a mapping key must be followed by `:` on the same line, within 1024 characters",
            pos,
        )
        .with_hint(
            "add the `:`, or shorten the key (YAML limits plain keys to 1024 characters; for \
             longer ones write `? key` on one line and `: value` on the next)",
        );
    }
    ParseError::new(ParseErrorKind::Syntax, shown_up_to(&raw, 240).into_owned(), pos)
}

/// Errors of serde-saphyr resolving one scalar (a non-finite float, an invalid `!!int`).
fn convert_error(e: &serde_saphyr::Error) -> ParseError {
    let mut inner = e.without_snippet();
    while let serde_saphyr::Error::AliasError { error, .. } = inner {
        inner = error.without_snippet();
    }
    if let serde_saphyr::Error::NonFiniteFloat { .. } = inner {
        return ParseError::new(
            ParseErrorKind::Unsupported,
            "`.inf` and `.nan` are not numbers in JSON, so they cannot be posted",
            None,
        )
        .with_hint("write a finite number, or quote the value if you meant the text");
    }
    let raw = serde_saphyr::DefaultMessageFormatter.format_message(inner).into_owned();
    ParseError::new(ParseErrorKind::Syntax, shown_up_to(&raw, 240).into_owned(), None)
}

/// Tab errors point at the scalar before the tab (`name: x<newline><tab>description:` says
/// 1:7); point at the first tab from there on instead, and say that tabs cannot indent.
fn locate_tab(mut e: ParseError, text: &str) -> ParseError {
    if e.kind != ParseErrorKind::Syntax || !e.message.contains("tab") {
        return e;
    }
    let from = e.pos.map_or(1, |p| p.line.max(1));
    let tab = text.lines().enumerate().skip(from as usize - 1).find_map(|(i, line)| {
        line.char_indices().find(|(_, c)| *c == '\t').map(|(b, _)| (i, line[..b].chars().count()))
    });
    if let Some((line, column)) = tab {
        e.pos = Some(Pos { line: saturate(line as u64 + 1), column: saturate(column as u64 + 1) });
    }
    e.hint = "indent with spaces: YAML does not allow tabs for indentation";
    e
}

/// What a tag is put on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tagged {
    Scalar,
    Sequence,
    Mapping,
}

/// The only tags a spec may carry: the non-specific `!` and YAML's core types, on a node of
/// their kind (`!!str`, `!!int`, `!!float`, `!!bool`, `!!null` on scalars, `!!seq` on a list,
/// `!!map` on a mapping). Returns the core type (`""` for `!`).
fn check_tag(tag: &Tag, on: Tagged, pos: Pos) -> Result<&str, ParseError> {
    let core = match (tag.handle(), tag.suffix()) {
        ("", "!") => Some(""),
        ("tag:yaml.org,2002:", suffix) => Some(suffix),
        ("", suffix) => suffix.strip_prefix("tag:yaml.org,2002:"),
        _ => None,
    };
    let fits = match core {
        Some("") => true,
        Some("str" | "int" | "float" | "bool" | "null") => on == Tagged::Scalar,
        Some("seq") => on == Tagged::Sequence,
        Some("map") => on == Tagged::Mapping,
        _ => {
            let text = tag.to_string();
            let text = match text.strip_prefix("tag:yaml.org,2002:") {
                Some(rest) => format!("!!{rest}"),
                None => text,
            };
            return Err(ParseError::new(
                ParseErrorKind::Unsupported,
                format!("YAML tag `{}` is not supported", shown(&text)),
                Some(pos),
            ));
        }
    };
    let core = core.unwrap_or_default();
    if !fits {
        let what = match on {
            Tagged::Scalar => "a single value",
            Tagged::Sequence => "a list",
            Tagged::Mapping => "a mapping",
        };
        return Err(ParseError::new(
            ParseErrorKind::Unsupported,
            format!("YAML tag `!!{}` cannot be put on {what}", shown(core)),
            Some(pos),
        ));
    }
    Ok(core)
}

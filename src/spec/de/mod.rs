//! Typed validation: a serde `Deserializer` over the located tree.
//!
//! Deserializing a [`Node`] into the model types checks types and required fields with the
//! position of the offending value, and notices every mapping key that a model struct does not
//! declare (an *unknown field*, reported with a "did you mean" suggestion taken from the struct's
//! own field list, aliases included). Error messages never quote values: a wrongly typed
//! `password` must not end up in a CI log.
//!
//! serde stops at the first error, so [`check`] retries: it records the error, marks the
//! offending value as skipped, and deserializes again, until the document passes or the error
//! is at the root. That way one run reports every type error of a document, not just the first.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::fmt;

use serde::de::{self, DeserializeOwned, Error as _, IntoDeserializer, Visitor};

use super::node::{Key, Node, Pos, Value};
use super::text::shown;

/// One step of a path inside a document.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Seg {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

/// Renders a path as `$.a.b[0]["key with space"]`.
pub fn path_string(path: &[Seg]) -> String {
    let mut s = String::from("$");
    for seg in path {
        match seg {
            Seg::Key(k)
                if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
            {
                s.push('.');
                s.push_str(&shown(k));
            }
            Seg::Key(k) => {
                s.push_str("[\"");
                s.push_str(&shown(&k.replace('\\', "\\\\").replace('"', "\\\"")));
                s.push_str("\"]");
            }
            Seg::Index(i) => {
                s.push('[');
                s.push_str(&i.to_string());
                s.push(']');
            }
        }
    }
    s
}

/// What went wrong, for deciding how to continue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// A required field is missing from the mapping at the error's path.
    MissingField(String),
    /// Anything else: a wrong type, an unknown enum value, a custom error.
    Invalid,
}

/// A typed-validation error with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The message, without position.
    pub message: String,
    /// The kind.
    pub kind: ErrorKind,
    /// Path of the value the error is about (set by the innermost node that sees it).
    pub path: Option<Vec<Seg>>,
    /// Position of that value.
    pub pos: Option<Pos>,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error { message: msg.to_string(), kind: ErrorKind::Invalid, path: None, pos: None }
    }

    fn missing_field(field: &'static str) -> Self {
        Error {
            message: format!("missing required field `{field}`"),
            kind: ErrorKind::MissingField(field.to_owned()),
            path: None,
            pos: None,
        }
    }

    fn invalid_type(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        // Never echo the value: it might be a secret.
        Error::custom(format_args!("expected {exp}, found {}", unexpected_kind(&unexp)))
    }

    fn invalid_value(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        // serde's primitive visitors name Rust types (`expected u8`): say the range instead.
        let exp = match exp.to_string().as_str() {
            "u8" => "a whole number from 0 to 255".to_owned(),
            "u16" => "a whole number from 0 to 65535".to_owned(),
            "u32" => "a whole number from 0 to 4294967295".to_owned(),
            "u64" | "usize" => "a whole number of 0 or more".to_owned(),
            "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number in range".to_owned(),
            other => other.to_owned(),
        };
        match unexp {
            de::Unexpected::Unsigned(n) => {
                Error::custom(format_args!("invalid value {n}, expected {exp}"))
            }
            de::Unexpected::Signed(n) => {
                Error::custom(format_args!("invalid value {n}, expected {exp}"))
            }
            _ => Error::custom(format_args!("invalid {}, expected {exp}", unexpected_kind(&unexp))),
        }
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        let list = expected.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(", ");
        let mut message = format!("unknown value `{}`; expected one of {list}", shown(variant));
        if let Some(s) = suggest(variant, expected) {
            message.push_str(&format!(" (did you mean `{s}`?)"));
        }
        Error::custom(message)
    }
}

fn unexpected_kind(u: &de::Unexpected<'_>) -> &'static str {
    use de::Unexpected as U;
    match u {
        U::Bool(_) => "a boolean",
        U::Unsigned(_) | U::Signed(_) => "an integer",
        U::Float(_) => "a number",
        U::Char(_) | U::Str(_) => "a string",
        U::Bytes(_) => "bytes",
        U::Unit | U::Option => "null",
        U::NewtypeStruct | U::NewtypeVariant | U::UnitVariant | U::TupleVariant | U::Enum => {
            "an enum value"
        }
        U::Seq => "a list",
        U::Map | U::StructVariant => "a mapping",
        U::Other(_) => "a value",
    }
}

/// Words longer than this get no suggestion: no field or value is that long, and comparing a
/// huge key against every candidate would cost time for nothing.
const MAX_SUGGEST_LEN: usize = 100;

/// The closest candidate to `word`, when one is close enough to be a likely typo.
pub fn suggest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    if word.len() > MAX_SUGGEST_LEN * 4 || word.chars().count() > MAX_SUGGEST_LEN {
        return None;
    }
    let lower = word.to_lowercase();
    let mut best: Option<(&'a str, f64)> = None;
    for &c in candidates {
        let score = if c.to_lowercase() == lower {
            1.0
        } else {
            strsim::jaro_winkler(&lower, &c.to_lowercase())
        };
        if score >= 0.85 && best.is_none_or(|(_, b)| score > b) {
            best = Some((c, score));
        }
    }
    best.map(|(c, _)| c)
}

/// A mapping key that no model struct declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownField {
    /// Path of the mapping holding the key.
    pub path: Vec<Seg>,
    /// The key.
    pub key: String,
    /// Where the key is written.
    pub pos: Pos,
    /// The closest declared field, if any is close.
    pub suggestion: Option<String>,
}

/// The result of checking one document against a model type.
#[derive(Debug)]
pub struct Checked<T> {
    /// The typed value, when the document passed.
    pub value: Option<T>,
    /// Every type error found.
    pub errors: Vec<Error>,
    /// Every unknown field found, in document order.
    pub unknown_fields: Vec<UnknownField>,
}

/// Most retries per document; each retry skips one more bad value.
const MAX_ROUNDS: usize = 32;

/// Deserializes `node` into `T`, collecting every error and unknown field.
///
/// Each round costs one walk of the document; suggestions for unknown fields are computed once,
/// after the last round (a document with many unknown keys and many type errors would otherwise
/// pay `rounds × keys` string comparisons).
pub fn check<T: DeserializeOwned>(node: &Node) -> Checked<T> {
    let mut skipped: HashSet<*const Node> = HashSet::new();
    let mut errors: Vec<Error> = Vec::new();
    let mut unknown = UnknownMap::new();
    let mut value = None;
    for _ in 0..MAX_ROUNDS {
        let ctx = Ctx { skipped: &skipped, unknown: RefCell::new(unknown) };
        let result = T::deserialize(NodeDe { node, path: PathLink::ROOT, ctx: &ctx });
        unknown = ctx.unknown.into_inner();
        match result {
            Ok(v) => {
                value = Some(v);
                break;
            }
            Err(e) => {
                let path = e.path.clone().unwrap_or_default();
                let Some(target) = resolve(node, &path) else { break };
                let is_consequence = match &e.kind {
                    // A required field we skipped ourselves: not a new problem.
                    ErrorKind::MissingField(f) => {
                        target.get(f).is_some_and(|n| skipped.contains(&(n as *const Node)))
                    }
                    ErrorKind::Invalid => false,
                };
                if !is_consequence {
                    errors.push(e);
                }
                if path.is_empty() || !skipped.insert(target as *const Node) {
                    break;
                }
            }
        }
    }
    let unknown_fields = unknown
        .into_values()
        .map(|(mut u, fields)| {
            u.suggestion = suggest(&u.key, fields).map(str::to_owned);
            u
        })
        .collect();
    Checked { value, errors, unknown_fields }
}

/// The node at `path`.
pub fn resolve<'a>(node: &'a Node, path: &[Seg]) -> Option<&'a Node> {
    let mut cur = node;
    for seg in path {
        cur = match (seg, &cur.value) {
            (Seg::Key(k), Value::Map(entries)) => {
                &entries.iter().find(|(key, _)| &key.name == k)?.1
            }
            (Seg::Index(i), Value::Seq(items)) => items.get(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Unknown fields by position, with the field list their suggestion is taken from.
type UnknownMap = BTreeMap<Pos, (UnknownField, &'static [&'static str])>;

struct Ctx<'a> {
    skipped: &'a HashSet<*const Node>,
    unknown: RefCell<UnknownMap>,
}

impl Ctx<'_> {
    fn is_skipped(&self, node: &Node) -> bool {
        self.skipped.contains(&(node as *const Node))
    }
}

/// A path inside the document as a linked list borrowed from the tree and the call stack: no
/// allocation per value; a `Vec<Seg>` is built only when something is reported.
#[derive(Clone, Copy)]
struct PathLink<'a, 'p> {
    parent: Option<&'p PathLink<'a, 'p>>,
    seg: Option<SegRef<'a>>,
}

#[derive(Clone, Copy)]
enum SegRef<'a> {
    Key(&'a str),
    Index(usize),
}

impl<'a, 'p> PathLink<'a, 'p> {
    const ROOT: PathLink<'static, 'static> = PathLink { parent: None, seg: None };

    fn child(&'p self, seg: SegRef<'a>) -> PathLink<'a, 'p> {
        PathLink { parent: Some(self), seg: Some(seg) }
    }

    fn to_vec(self) -> Vec<Seg> {
        let mut segs = Vec::new();
        let mut cur = Some(&self);
        let mut here;
        while let Some(link) = cur {
            here = *link;
            match here.seg {
                Some(SegRef::Key(k)) => segs.push(Seg::Key(k.to_owned())),
                Some(SegRef::Index(i)) => segs.push(Seg::Index(i)),
                None => {}
            }
            cur = here.parent;
        }
        segs.reverse();
        segs
    }
}

struct NodeDe<'a, 'p, 'c> {
    node: &'a Node,
    path: PathLink<'a, 'p>,
    ctx: &'c Ctx<'c>,
}

impl NodeDe<'_, '_, '_> {
    fn locate(&self, mut e: Error) -> Error {
        if e.path.is_none() {
            e.path = Some(self.path.to_vec());
            e.pos = Some(self.node.pos);
        }
        e
    }

    fn wrong_type(&self, expected: &str) -> Error {
        self.locate(Error::custom(format_args!(
            "expected {expected}, found {}",
            self.node.value.type_name()
        )))
    }

    fn scalar_hint(&self, expected: &str) -> Error {
        let mut e = self.wrong_type(expected);
        match self.node.value {
            Value::Int(_) | Value::UInt(_) | Value::Float(_) | Value::Bool(_) => {
                e.message.push_str("; quote the value if you meant text");
            }
            // The `Null` trap: `Null`, `NULL`, `null`, `~` and an empty value are all YAML null.
            Value::Null => e
                .message
                .push_str(" (an empty value, `~`, `null`, `Null` and `NULL` are all YAML null)"),
            _ => {}
        }
        e
    }
}

macro_rules! forward_number {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            let r = match &self.node.value {
                Value::Int(i) => visitor.visit_i64(*i),
                Value::UInt(u) => visitor.visit_u64(*u),
                Value::Float(f) => visitor.visit_f64(*f),
                _ => return Err(self.wrong_type("a number")),
            };
            r.map_err(|e| self.locate(e))
        }
    )*};
}

impl<'de> de::Deserializer<'de> for NodeDe<'_, '_, '_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let r = match &self.node.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(i) => visitor.visit_i64(*i),
            Value::UInt(u) => visitor.visit_u64(*u),
            Value::Float(f) => visitor.visit_f64(*f),
            Value::Str(s) => visitor.visit_str(s),
            Value::Seq(_) => return self.deserialize_seq(visitor),
            Value::Map(_) => return self.deserialize_map(visitor),
        };
        r.map_err(|e| self.locate(e))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.node.value {
            Value::Bool(b) => visitor.visit_bool(*b).map_err(|e| self.locate(e)),
            Value::Str(s)
                if ["yes", "no", "on", "off", "y", "n"]
                    .contains(&s.to_ascii_lowercase().as_str()) =>
            {
                let mut e = self.wrong_type("a boolean (`true` or `false`)");
                e.message.push_str(
                    " (`yes`, `no`, `on` and `off` are text in YAML 1.2: write `true` or `false`)",
                );
                Err(e)
            }
            _ => Err(self.wrong_type("a boolean (`true` or `false`)")),
        }
    }

    forward_number! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
        deserialize_f32 deserialize_f64
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.node.value {
            Value::Str(s) => visitor.visit_str(s).map_err(|e| self.locate(e)),
            _ => Err(self.scalar_hint("a string")),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Error> {
        Err(self.wrong_type("bytes"))
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.node.value {
            Value::Null => visitor.visit_none().map_err(|e| self.locate(e)),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.node.value {
            Value::Null => visitor.visit_unit().map_err(|e| self.locate(e)),
            _ => Err(self.wrong_type("null")),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.node.value {
            Value::Seq(items) => {
                let access =
                    SeqAccess { items: items.iter().enumerate(), path: self.path, ctx: self.ctx };
                visitor.visit_seq(access).map_err(|e| self.locate(e))
            }
            _ => Err(self.wrong_type("a list")),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.node.value {
            Value::Map(entries) => {
                let access = MapAccess {
                    entries: entries.iter(),
                    value: None,
                    path: self.path,
                    ctx: self.ctx,
                };
                visitor.visit_map(access).map_err(|e| self.locate(e))
            }
            _ => Err(self.wrong_type("a mapping")),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let Value::Map(entries) = &self.node.value else {
            return Err(self.wrong_type("a mapping"));
        };
        let mut known: Vec<&(Key, Node)> = Vec::with_capacity(entries.len());
        for entry in entries {
            if fields.contains(&entry.0.name.as_str()) {
                known.push(entry);
            } else {
                self.ctx.unknown.borrow_mut().entry(entry.0.pos).or_insert_with(|| {
                    let u = UnknownField {
                        path: self.path.to_vec(),
                        key: entry.0.name.clone(),
                        pos: entry.0.pos,
                        suggestion: None,
                    };
                    (u, fields)
                });
            }
        }
        let access =
            MapAccess { entries: known.into_iter(), value: None, path: self.path, ctx: self.ctx };
        visitor.visit_map(access).map_err(|e| self.locate(e))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match &self.node.value {
            Value::Str(s) => {
                let d: de::value::StrDeserializer<'_, Error> = s.as_str().into_deserializer();
                visitor.visit_enum(d).map_err(|e| self.locate(e))
            }
            _ => Err(self.scalar_hint("a string")),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}

struct SeqAccess<'a, 'p, 'c, I> {
    items: I,
    path: PathLink<'a, 'p>,
    ctx: &'c Ctx<'c>,
}

impl<'de, 'a, 'p, 'c, I: Iterator<Item = (usize, &'a Node)>> de::SeqAccess<'de>
    for SeqAccess<'a, 'p, 'c, I>
{
    type Error = Error;

    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        for (i, node) in self.items.by_ref() {
            if self.ctx.is_skipped(node) {
                continue;
            }
            let path = self.path.child(SegRef::Index(i));
            return seed.deserialize(NodeDe { node, path, ctx: self.ctx }).map(Some);
        }
        Ok(None)
    }
}

struct MapAccess<'a, 'p, 'c, I> {
    entries: I,
    value: Option<&'a (Key, Node)>,
    path: PathLink<'a, 'p>,
    ctx: &'c Ctx<'c>,
}

impl<'de, 'a, 'p, 'c, I: Iterator<Item = &'a (Key, Node)>> de::MapAccess<'de>
    for MapAccess<'a, 'p, 'c, I>
{
    type Error = Error;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        for entry in self.entries.by_ref() {
            if self.ctx.is_skipped(&entry.1) {
                continue;
            }
            self.value = Some(entry);
            let d: de::value::StrDeserializer<'_, Error> =
                entry.0.name.as_str().into_deserializer();
            return seed.deserialize(d).map(Some).map_err(|mut e| {
                if e.path.is_none() {
                    e.path = Some(self.path.child(SegRef::Key(&entry.0.name)).to_vec());
                    e.pos = Some(entry.0.pos);
                }
                e
            });
        }
        Ok(None)
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let Some((key, node)) = self.value.take() else {
            return Err(Error::custom("value requested before key"));
        };
        let path = self.path.child(SegRef::Key(&key.name));
        seed.deserialize(NodeDe { node, path, ctx: self.ctx })
    }
}

#[cfg(test)]
mod tests;

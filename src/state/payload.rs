//! [`Payload`]: a canonical payload that is parsed only when something reads it.
//!
//! A state holds the last applied payload of every object, and a no-op plan of 10,000 objects
//! reads none of them: it compares digests. Held as parsed JSON trees those payloads are the
//! largest part of a plan's memory (a `serde_json::Value` tree takes several times the bytes of
//! its text), so a payload read from a state (a file, a journal line, a database row) is kept as
//! its compact JSON text and parsed, once, the first time it is read ([`Payload::value`], or
//! through `Deref`). A payload made in memory (a target's canonical form) is kept as the tree
//! it already is.
//!
//! Payloads are shared (`Clone` is an `Arc` clone): a target whose payload is the one its
//! state entry recorded (the same digest) takes the entry's, and the plan's changes and the
//! next state share it in turn, so each payload exists once however many places show it.

use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

/// A canonical payload: compact JSON text parsed on first read, or a tree made in memory.
#[derive(Clone)]
pub struct Payload(Arc<Inner>);

enum Inner {
    /// Read from a state: its compact text (checked to be JSON when it was read), and the tree
    /// once something reads it.
    Text { text: Box<RawValue>, parsed: OnceLock<Value> },
    /// Made in memory.
    Tree(Value),
}

impl Payload {
    /// A payload from the text of a state (a database row), kept as compact text: an error
    /// when it is not JSON a tree can be made of (a number out of range included). The tree
    /// made to check it is dropped at once.
    pub fn from_json(text: &str) -> Result<Payload, serde_json::Error> {
        let v: Value = serde_json::from_str(text)?;
        Ok(Payload::text(RawValue::from_string(v.to_string())?))
    }

    fn text(text: Box<RawValue>) -> Payload {
        Payload(Arc::new(Inner::Text { text, parsed: OnceLock::new() }))
    }

    /// The payload as a JSON tree (parsed now when it was not yet).
    pub fn value(&self) -> &Value {
        match &*self.0 {
            Inner::Tree(v) => v,
            // The text was checked to be JSON when it was read, so this parse cannot fail;
            // were it to, `null` reads as a payload unlike any spec's (a change, never a
            // silent match).
            Inner::Text { text, parsed } => {
                parsed.get_or_init(|| serde_json::from_str(text.get()).unwrap_or(Value::Null))
            }
        }
    }

    /// The text of a payload read as text and not parsed yet (`None` otherwise): what a caller
    /// can search before deciding to parse.
    pub fn unparsed_text(&self) -> Option<&str> {
        match &*self.0 {
            Inner::Text { text, parsed } if parsed.get().is_none() => Some(text.get()),
            _ => None,
        }
    }

    /// The compact JSON text (what a state stores), without parsing a payload read as text.
    pub fn to_json(&self) -> String {
        match &*self.0 {
            Inner::Text { text, .. } => text.get().to_owned(),
            Inner::Tree(v) => v.to_string(),
        }
    }

    /// Whether the tree exists (made in memory, or parsed since it was read).
    pub fn is_parsed(&self) -> bool {
        match &*self.0 {
            Inner::Tree(_) => true,
            Inner::Text { parsed, .. } => parsed.get().is_some(),
        }
    }

    /// Whether `self` and `other` are the same shared payload (not only equal ones).
    pub fn ptr_eq(&self, other: &Payload) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Deref for Payload {
    type Target = Value;

    fn deref(&self) -> &Value {
        self.value()
    }
}

impl From<Value> for Payload {
    fn from(v: Value) -> Payload {
        Payload(Arc::new(Inner::Tree(v)))
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Payload) -> bool {
        self.ptr_eq(other) || self.value() == other.value()
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.value(), f)
    }
}

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &*self.0 {
            Inner::Tree(v) => v.serialize(s),
            // serde_json writes the text as it is.
            Inner::Text { text, .. } => text.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Payload {
    /// Read as a tree and kept as its compact text: one object's tree at a time while a state
    /// is read, whatever the deserializer (a journal record is an internally tagged enum,
    /// which cannot hand out raw text).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Payload, D::Error> {
        let v = Value::deserialize(d)?;
        let text = RawValue::from_string(v.to_string()).map_err(serde::de::Error::custom)?;
        Ok(Payload::text(text))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_payload_read_as_text_is_parsed_only_when_read_and_equals_its_tree() {
        let p = Payload::from_json(r#"{"b":1,"a":[true,null]}"#).unwrap();
        assert!(matches!(&*p.0, Inner::Text { parsed, .. } if parsed.get().is_none()));
        assert_eq!(p.to_json(), r#"{"b":1,"a":[true,null]}"#, "kept as written, not parsed");
        assert_eq!(p["b"], 1);
        assert_eq!(p, Payload::from(json!({"b": 1, "a": [true, null]})));
        assert!(Payload::from_json("{not json").is_err());
        assert!(Payload::from_json(r#"{"a": 1e400}"#).is_err(), "out of range");
        assert_eq!(p.unparsed_text(), None, "parsed by the reads above");
        let q = Payload::from_json(r#"{"a": 1}"#).unwrap();
        assert_eq!(q.unparsed_text(), Some(r#"{"a":1}"#));
    }

    #[test]
    fn payloads_round_trip_through_a_state_in_either_form() {
        for p in [
            Payload::from(json!({"k": "v", "n": [1, 2]})),
            Payload::from_json(r#"{"k":"v","n":[1,2]}"#).unwrap(),
        ] {
            let text = serde_json::to_string(&json!({"payload": &p})).unwrap();
            assert_eq!(text, r#"{"payload":{"k":"v","n":[1,2]}}"#);
            #[derive(Deserialize)]
            struct Wrapper {
                payload: Payload,
            }
            let back: Wrapper = serde_json::from_str(&text).unwrap();
            assert_eq!(back.payload, p);
            assert!(matches!(&*back.payload.0, Inner::Text { .. }));
        }
    }
}

//! Log output: text for people, or flat JSON lines for log pipelines.
//!
//! A JSON line is one object with `ts` (RFC 3339, UTC), `level` (`info`, `warn`, ...), `msg`,
//! `target`, and every field of the event at the top level (`{"level":"info","msg":"reconciled",
//! "revision":"main@sha1:...","changes":2,...}`), the shape Loki, Elasticsearch and `jq` users
//! expect (tracing-subscriber's own JSON nests them under `fields`).

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The flat JSON event format (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct FlatJson;

impl<S, N> FormatEvent<S, N> for FlatJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        writeln!(writer, "{}", Value::Object(flat(event)))
    }
}

/// The event as one flat object.
fn flat(event: &Event<'_>) -> Map<String, Value> {
    let metadata = event.metadata();
    let mut object = Map::new();
    let now = humantime::format_rfc3339_millis(std::time::SystemTime::now());
    object.insert("ts".into(), Value::from(now.to_string()));
    object.insert("level".into(), Value::from(metadata.level().as_str().to_ascii_lowercase()));
    object.insert("msg".into(), Value::from(""));
    let mut fields = Fields(Map::new());
    event.record(&mut fields);
    if let Some(message) = fields.0.remove("message") {
        object.insert("msg".into(), message);
    }
    object.insert("target".into(), Value::from(metadata.target()));
    for (key, value) in fields.0 {
        // A field never replaces the envelope (`level`, `msg`, ...).
        let key = if object.contains_key(&key) { format!("field.{key}") } else { key };
        object.insert(key, value);
    }
    object
}

/// Collects an event's fields as JSON values: numbers and booleans as such, everything else
/// (`%display` and `?debug` fields alike) as its text.
struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), Value::from(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), Value::from(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), Value::from(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().into(), Value::from(value.to_string()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().into(), Value::from(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    #[test]
    fn events_are_flat_objects_with_level_msg_and_fields() {
        let buffer = Buffer::default();
        let subscriber =
            tracing_subscriber::fmt().event_format(FlatJson).with_writer(buffer.clone()).finish();
        tracing::subscriber::with_default(subscriber, || {
            let revision = "main@sha1:abc";
            tracing::info!(%revision, changes = 2, healed = true, "applied revision {revision}");
            tracing::warn!(level = "x", "a field named like the envelope");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines[0]["level"], "info");
        assert_eq!(lines[0]["msg"], "applied revision main@sha1:abc");
        assert_eq!(lines[0]["revision"], "main@sha1:abc");
        assert_eq!(lines[0]["changes"], 2);
        assert_eq!(lines[0]["healed"], true);
        assert!(lines[0]["ts"].as_str().unwrap().ends_with('Z'));
        assert!(lines[0].get("fields").is_none(), "{}", lines[0]);
        assert_eq!(lines[1]["level"], "warn");
        assert_eq!(lines[1]["field.level"], "x");
    }
}

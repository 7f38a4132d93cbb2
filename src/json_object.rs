//! A JSON object written field by field, for the one object on the hot path: the entry that
//! every `get` from C returns.
//!
//! Field names are fixed ASCII identifiers written as they are; every value goes through
//! serde_json (strings escaped, numbers formatted), so the output is serde_json's. Deriving
//! `Serialize` gave the same bytes but re-escaped the 21 field names on every call, which was a
//! third of the cost of a `get` from C.

use crate::time::Timestamp;

pub(crate) struct JsonObject {
    buf: Vec<u8>,
    empty: bool,
}

impl JsonObject {
    pub fn with_capacity(bytes: usize) -> JsonObject {
        let mut buf = Vec::with_capacity(bytes);
        buf.push(b'{');
        JsonObject { buf, empty: true }
    }

    fn name(&mut self, name: &'static str) {
        debug_assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        if !self.empty {
            self.buf.push(b',');
        }
        self.empty = false;
        self.buf.push(b'"');
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.extend_from_slice(b"\":");
    }

    fn value<T: serde::Serialize + ?Sized>(&mut self, value: &T) {
        serde_json::to_writer(&mut self.buf, value).expect("writing to a Vec cannot fail");
    }

    pub fn str(&mut self, name: &'static str, value: &str) {
        self.name(name);
        self.value(value);
    }

    pub fn opt_str(&mut self, name: &'static str, value: Option<&str>) {
        self.name(name);
        self.value(&value);
    }

    pub fn int(&mut self, name: &'static str, value: i64) {
        self.name(name);
        self.value(&value);
    }

    pub fn bool(&mut self, name: &'static str, value: bool) {
        self.name(name);
        self.buf
            .extend_from_slice(if value { b"true" } else { b"false" });
    }

    /// A string known to need no escaping (digits, letters and `-:.+T`), quoted as it is.
    pub fn plain_str(&mut self, name: &'static str, value: &str) {
        debug_assert!(
            value
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        );
        self.name(name);
        self.buf.push(b'"');
        self.buf.extend_from_slice(value.as_bytes());
        self.buf.push(b'"');
    }

    pub fn time(&mut self, name: &'static str, value: Timestamp) {
        self.plain_str(name, &value.to_rfc3339());
    }

    pub fn opt_time(&mut self, name: &'static str, value: Option<Timestamp>) {
        match value {
            Some(t) => self.time(name, t),
            None => self.opt_str(name, None),
        }
    }

    pub fn finish(mut self) -> String {
        self.buf.push(b'}');
        String::from_utf8(self.buf).expect("serde_json writes UTF-8 and names are ASCII")
    }
}

//! The values the crash and multi-process tests store: each put stores a unique id (the op that
//! wrote it) in the URL and, derived from it, the password, which is encrypted at rest. Whatever
//! a reader finds under a key is reduced to [`Seen`], so what the engine returned, what a file
//! holds and what a model expects compare directly.

use pwcache::{CacheEntry, EntryInput};

use super::store::Held;

/// What is under a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    Absent,
    /// The value put by the op `id`, with its health failure count.
    Value {
        id: String,
        failures: i64,
    },
    /// Something no put of this key stored: another key's URL, a wrong or missing password.
    Foreign(&'static str),
}

impl Seen {
    pub fn value(id: impl Into<String>, failures: i64) -> Seen {
        Seen::Value {
            id: id.into(),
            failures,
        }
    }

    /// The form written to an operation log (no spaces inside a field).
    pub fn to_log(&self) -> String {
        match self {
            Seen::Absent => "none".into(),
            Seen::Value { id, failures } => format!("v {id} {failures}"),
            Seen::Foreign(why) => format!("foreign {why}"),
        }
    }

    /// Parses [`Seen::to_log`] from the fields of a log line.
    pub fn from_log(fields: &[&str]) -> Seen {
        match fields {
            ["none"] => Seen::Absent,
            ["v", id, failures] => Seen::value(*id, failures.parse().expect("a failure count")),
            ["foreign", _] => Seen::Foreign("see the child's log"),
            other => panic!("not a logged value: {other:?}"),
        }
    }
}

pub fn url(key: &str, id: &str) -> String {
    format!("http://{key}.pwcache.test:8080/{id}")
}

fn password(key: &str, id: &str) -> String {
    format!("pw-{key}-{id}")
}

/// The entry a put of op `id` stores under `key`.
pub fn input(key: &str, id: &str) -> EntryInput {
    EntryInput {
        password: Some(password(key, id)),
        ..EntryInput::with_url(url(key, id))
    }
}

fn seen(key: &str, proxy_url: &str, password_text: Option<&str>, failures: i64) -> Seen {
    let prefix = url(key, "");
    let Some(id) = proxy_url.strip_prefix(&prefix) else {
        return Seen::Foreign("other-url");
    };
    if password_text != Some(password(key, id).as_str()) {
        return Seen::Foreign("wrong-password");
    }
    Seen::value(id, failures)
}

/// What the engine returned for `key`.
pub fn seen_entry(key: &str, entry: Option<&CacheEntry>) -> Seen {
    match entry {
        None => Seen::Absent,
        Some(e) => seen(
            key,
            &e.proxy_url,
            e.password.as_ref().map(|p| p.expose()),
            e.failure_count,
        ),
    }
}

/// What a tier's files hold for `key`.
pub fn seen_held(key: &str, held: Option<&Held>) -> Seen {
    match held {
        None => Seen::Absent,
        Some(h) => seen(
            key,
            &h.proxy_url,
            h.password.as_ref().map(|p| p.expose()),
            h.failure_count,
        ),
    }
}

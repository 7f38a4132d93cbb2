//! The cached record ([`CacheEntry`]), what a caller gives to `put` ([`EntryInput`]), and their
//! JSON forms (the 21 fields of docs/FORMAT.md §2.1, datetimes as in §2.2).

use std::fmt;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::json_object::JsonObject;
use crate::proxy_url::{ProxyUrl, merge_credential};
use crate::redact::mask_url_userinfo;
use crate::time::Timestamp;

/// Health of a proxy, as upstream's `HealthStatus`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum HealthStatus {
    #[default]
    Unknown,
    Healthy,
    Degraded,
    Unhealthy,
    Dead,
}

impl HealthStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Unknown => "unknown",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Unhealthy => "unhealthy",
            HealthStatus::Dead => "dead",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "unknown" => HealthStatus::Unknown,
            "healthy" => HealthStatus::Healthy,
            "degraded" => HealthStatus::Degraded,
            "unhealthy" => HealthStatus::Unhealthy,
            "dead" => HealthStatus::Dead,
            _ => return None,
        })
    }
}

/// A credential. Its `Debug` form is `***`, so it cannot leak through `{:?}` in a log line.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// `None` for an empty string: an empty credential is no credential (as upstream stores it).
    pub fn new(value: impl Into<String>) -> Option<Secret> {
        let value = value.into();
        (!value.is_empty()).then_some(Secret(value))
    }

    /// The plain text. Call sites are few and deliberate: `get` output, encryption at rest,
    /// and exports that asked for credentials.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// One cached proxy. Field names and meanings as upstream's `CacheEntry`; datetimes in UTC.
/// Its `Debug` form masks the credentials and the userinfo of `proxy_url`.
#[derive(Clone, PartialEq)]
pub struct CacheEntry {
    pub key: String,
    pub proxy_url: String,
    pub username: Option<Secret>,
    pub password: Option<Secret>,
    pub source: String,
    pub fetch_time: Timestamp,
    pub last_accessed: Timestamp,
    pub access_count: i64,
    pub ttl_seconds: i64,
    pub expires_at: Timestamp,
    pub health_status: HealthStatus,
    pub failure_count: i64,
    pub evicted_from_l1: bool,
    pub last_health_check: Option<Timestamp>,
    pub consecutive_health_failures: i64,
    pub consecutive_health_successes: i64,
    pub recovery_attempt: i64,
    pub next_check_time: Option<Timestamp>,
    pub last_health_error: Option<String>,
    pub total_health_checks: i64,
    pub total_health_check_failures: i64,
}

impl fmt::Debug for CacheEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheEntry")
            .field("key", &self.key)
            .field("proxy_url", &mask_url_userinfo(&self.proxy_url))
            .field("username", &self.username)
            .field("password", &self.password)
            .field("source", &self.source)
            .field("fetch_time", &self.fetch_time)
            .field("last_accessed", &self.last_accessed)
            .field("access_count", &self.access_count)
            .field("expires_at", &self.expires_at)
            .field("health_status", &self.health_status)
            .field("failure_count", &self.failure_count)
            .field("evicted_from_l1", &self.evicted_from_l1)
            .finish_non_exhaustive()
    }
}

/// How credentials appear in an entry's JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credentials {
    /// As stored: what `get` returns, and exports with `include_credentials`.
    Plain,
    /// `"***"` for a present credential (null stays null), and the userinfo of `proxy_url`
    /// masked: what a default export writes.
    Masked,
}

pub const MASK: &str = "***";

impl CacheEntry {
    /// A fresh entry with upstream's defaults: unknown health, zero counters.
    pub fn new(
        key: impl Into<String>,
        proxy_url: impl Into<String>,
        source: impl Into<String>,
        now: Timestamp,
        ttl_seconds: i64,
    ) -> CacheEntry {
        CacheEntry {
            key: key.into(),
            proxy_url: proxy_url.into(),
            username: None,
            password: None,
            source: source.into(),
            fetch_time: now,
            last_accessed: now,
            access_count: 0,
            ttl_seconds,
            expires_at: now.plus_seconds(ttl_seconds),
            health_status: HealthStatus::Unknown,
            failure_count: 0,
            evicted_from_l1: false,
            last_health_check: None,
            consecutive_health_failures: 0,
            consecutive_health_successes: 0,
            recovery_attempt: 0,
            next_check_time: None,
            last_health_error: None,
            total_health_checks: 0,
            total_health_check_failures: 0,
        }
    }

    /// Expired when `now >= expires_at`: the one boundary used everywhere.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        now >= self.expires_at
    }

    /// Records a read: what every hit does to the entry it returns.
    pub fn touch(&mut self, now: Timestamp) {
        self.access_count = self.access_count.saturating_add(1);
        self.last_accessed = now;
    }

    /// The 21-field JSON object of docs/FORMAT.md §2.1, fields in that order, datetimes as
    /// `YYYY-MM-DDTHH:MM:SS.ffffff+00:00`.
    pub fn to_json(&self, credentials: Credentials) -> String {
        let masked_url;
        let (username, password, proxy_url) = match credentials {
            Credentials::Plain => (
                self.username.as_ref().map(Secret::expose),
                self.password.as_ref().map(Secret::expose),
                self.proxy_url.as_str(),
            ),
            Credentials::Masked => {
                masked_url = mask_url_userinfo(&self.proxy_url);
                (
                    self.username.as_ref().map(|_| MASK),
                    self.password.as_ref().map(|_| MASK),
                    masked_url.as_ref(),
                )
            }
        };
        let mut out = JsonObject::with_capacity(640);
        out.str("key", &self.key);
        out.str("proxy_url", proxy_url);
        out.opt_str("username", username);
        out.opt_str("password", password);
        out.str("source", &self.source);
        out.time("fetch_time", self.fetch_time);
        out.time("last_accessed", self.last_accessed);
        out.int("access_count", self.access_count);
        out.int("ttl_seconds", self.ttl_seconds);
        out.time("expires_at", self.expires_at);
        out.plain_str("health_status", self.health_status.as_str());
        out.int("failure_count", self.failure_count);
        out.bool("evicted_from_l1", self.evicted_from_l1);
        out.opt_time("last_health_check", self.last_health_check);
        out.int(
            "consecutive_health_failures",
            self.consecutive_health_failures,
        );
        out.int(
            "consecutive_health_successes",
            self.consecutive_health_successes,
        );
        out.int("recovery_attempt", self.recovery_attempt);
        out.opt_time("next_check_time", self.next_check_time);
        out.opt_str("last_health_error", self.last_health_error.as_deref());
        out.int("total_health_checks", self.total_health_checks);
        out.int(
            "total_health_check_failures",
            self.total_health_check_failures,
        );
        out.finish()
    }
}

/// What a caller gives to `put`: only `proxy_url` is required, a URL `scheme://host[:port]`
/// (checked by [`ProxyUrl::parse`]; credentials in its userinfo move into `username` and
/// `password`). [`EntryInput::resolve`] fills in the rest against the configuration: `source` "user", `fetch_time` and `last_accessed` now,
/// `ttl_seconds` the source's TTL, `expires_at` = `fetch_time + ttl_seconds`, `health_status`
/// "unknown", counters 0, `evicted_from_l1` false, the other fields absent.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryInput {
    /// Accepted and ignored: the key argument of `put` always wins.
    pub key: Option<String>,
    #[serde(default)]
    pub proxy_url: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub source: Option<String>,
    pub fetch_time: Option<String>,
    pub last_accessed: Option<String>,
    pub access_count: Option<i64>,
    pub ttl_seconds: Option<i64>,
    pub expires_at: Option<String>,
    pub health_status: Option<String>,
    pub failure_count: Option<i64>,
    pub evicted_from_l1: Option<bool>,
    pub last_health_check: Option<String>,
    pub consecutive_health_failures: Option<i64>,
    pub consecutive_health_successes: Option<i64>,
    pub recovery_attempt: Option<i64>,
    pub next_check_time: Option<String>,
    pub last_health_error: Option<String>,
    pub total_health_checks: Option<i64>,
    pub total_health_check_failures: Option<i64>,
}

/// Parses JSON text into `T`, naming the offending field in the error.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value: T =
        serde_path_to_error::deserialize(&mut de).map_err(|e| describe_json_error(what, e))?;
    de.end()
        .map_err(|e| Error::InvalidJson(format!("{what}: {e}")))?;
    Ok(value)
}

/// [`parse_json`] for an already parsed JSON value.
fn parse_value<T: serde::de::DeserializeOwned>(what: &str, value: serde_json::Value) -> Result<T> {
    serde_path_to_error::deserialize(value).map_err(|e| describe_json_error(what, e))
}

/// The message of a deserialisation error: the field's path and what was expected, never the
/// rejected value (it may be a secret typed into the wrong field).
fn describe_json_error(what: &str, e: serde_path_to_error::Error<serde_json::Error>) -> Error {
    let path = e.path().to_string();
    let inner = e.into_inner();
    let secret_field = ["username", "password", "encryption_key"]
        .iter()
        .any(|name| path.rsplit('.').next() == Some(name));
    let text = inner.to_string();
    // serde quotes a rejected value ("invalid type: string \"...\""); it may be a secret
    // typed into the wrong field, so only the expectation is kept.
    let expected = (text.starts_with("invalid type") || text.starts_with("invalid value"))
        .then(|| text.split_once(", expected ").map(|(_, e)| e))
        .flatten()
        .map(|e| e.split(" at line ").next().unwrap_or(e));
    if path.is_empty() || path == "." {
        match expected {
            Some(e) => Error::InvalidJson(format!("{what}: invalid JSON, expected {e}")),
            None => Error::InvalidJson(format!("{what}: {inner}")),
        }
    } else if let Some(e) = expected {
        Error::InvalidJson(format!(
            "{what}: field `{path}`: wrong type or value, expected {e}"
        ))
    } else if secret_field {
        // serde quotes the offending value; for a credential or a key, that is the secret.
        Error::InvalidJson(format!("{what}: field `{path}` must be a string or null"))
    } else {
        Error::InvalidJson(format!("{what}: field `{path}`: {inner}"))
    }
}

impl EntryInput {
    /// An input with just a URL.
    pub fn with_url(proxy_url: impl Into<String>) -> EntryInput {
        EntryInput {
            proxy_url: proxy_url.into(),
            ..EntryInput::default()
        }
    }

    /// Parses the JSON object given to `put`. Unknown fields, wrong types and JSON that is not an
    /// object are [`Error::InvalidJson`] naming the field.
    pub fn from_json(text: &str) -> Result<EntryInput> {
        parse_json("entry", text)
    }

    /// Parses the JSON array given to `put_many`: each item is an entry object as for
    /// [`EntryInput::from_json`] with a required non-empty string `key`, the key it is stored
    /// under. Returns the `(key, input)` pairs in order. Text that is not a JSON array, or an
    /// item that is invalid, is [`Error::InvalidJson`]; an item's message starts with
    /// `item <index>:` (0-based) and names the field.
    pub fn list_from_json(text: &str) -> Result<Vec<(String, EntryInput)>> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| Error::InvalidJson(format!("entries: {e}")))?;
        let serde_json::Value::Array(items) = value else {
            return Err(Error::InvalidJson(
                "entries: expected a JSON array of entry objects".into(),
            ));
        };
        items
            .into_iter()
            .enumerate()
            .map(|(index, item)| {
                let item_error =
                    |message: &str| Error::InvalidJson(format!("item {index}: entry: {message}"));
                if !item.is_object() {
                    return Err(item_error("expected a JSON object"));
                }
                let mut input: EntryInput =
                    parse_value("entry", item).map_err(|e| e.in_item(index))?;
                match input.key.take() {
                    Some(key) if !key.is_empty() => Ok((key, input)),
                    _ => Err(item_error(
                        "field `key` is required and must be a non-empty string",
                    )),
                }
            })
            .collect()
    }

    /// Applies the defaults and checks the bounds. `ttl_for_source` gives the TTL of a source that
    /// carries none (`per_source_ttl`, else `default_ttl_seconds`).
    ///
    /// Errors: [`Error::InvalidJson`] for a missing or empty `proxy_url` and a field out of
    /// bounds (naming it); then [`Error::InvalidArgument`] for a `proxy_url` that is not
    /// `scheme://host[:port]` ([`ProxyUrl::parse`]), or whose userinfo gives a user name or
    /// password that differs from the `username` or `password` field (the same value twice is
    /// fine: credentials are never silently dropped).
    pub fn resolve(
        self,
        key: &str,
        now: Timestamp,
        ttl_for_source: impl Fn(&str) -> i64,
    ) -> Result<CacheEntry> {
        if self.proxy_url.is_empty() {
            return Err(Error::InvalidJson(
                "entry: field `proxy_url` is required and must be a non-empty string".into(),
            ));
        }
        let counter = |name: &str, value: Option<i64>| -> Result<i64> {
            match value {
                Some(v) if v < 0 => Err(Error::InvalidJson(format!(
                    "entry: field `{name}` must be >= 0, got {v}"
                ))),
                Some(v) => Ok(v),
                None => Ok(0),
            }
        };
        let datetime = |name: &str, value: Option<String>| -> Result<Option<Timestamp>> {
            value
                .map(|text| {
                    Timestamp::parse(&text).ok_or_else(|| {
                        Error::InvalidJson(format!(
                            "entry: field `{name}` is not an RFC 3339 datetime within years 1-9999"
                        ))
                    })
                })
                .transpose()
        };
        let source = self.source.unwrap_or_else(|| "user".to_string());
        let fetch_time = datetime("fetch_time", self.fetch_time)?.unwrap_or(now);
        let last_accessed = datetime("last_accessed", self.last_accessed)?.unwrap_or(now);
        let ttl_seconds = match self.ttl_seconds {
            Some(v) => counter("ttl_seconds", Some(v))?,
            None => ttl_for_source(&source),
        };
        let expires_at = datetime("expires_at", self.expires_at)?
            .unwrap_or_else(|| fetch_time.plus_seconds(ttl_seconds));
        let health_status = match self.health_status {
            None => HealthStatus::Unknown,
            Some(text) => HealthStatus::parse(&text).ok_or_else(|| {
                Error::InvalidJson(format!(
                    "entry: field `health_status` must be one of unknown, healthy, degraded, \
                     unhealthy, dead; got {text:?}"
                ))
            })?,
        };
        let mut entry = CacheEntry {
            key: key.to_string(),
            proxy_url: String::new(),
            username: None,
            password: None,
            source,
            fetch_time,
            last_accessed,
            access_count: counter("access_count", self.access_count)?,
            ttl_seconds,
            expires_at,
            health_status,
            failure_count: counter("failure_count", self.failure_count)?,
            evicted_from_l1: self.evicted_from_l1.unwrap_or(false),
            last_health_check: datetime("last_health_check", self.last_health_check)?,
            consecutive_health_failures: counter(
                "consecutive_health_failures",
                self.consecutive_health_failures,
            )?,
            consecutive_health_successes: counter(
                "consecutive_health_successes",
                self.consecutive_health_successes,
            )?,
            recovery_attempt: counter("recovery_attempt", self.recovery_attempt)?,
            next_check_time: datetime("next_check_time", self.next_check_time)?,
            last_health_error: self.last_health_error,
            total_health_checks: counter("total_health_checks", self.total_health_checks)?,
            total_health_check_failures: counter(
                "total_health_check_failures",
                self.total_health_check_failures,
            )?,
        };
        // Last, so that an input with a bad field and a placeholder URL reports the field.
        let proxy = ProxyUrl::parse(&self.proxy_url)?;
        let given = |field: Option<String>| field.filter(|f| !f.is_empty());
        entry.proxy_url = proxy.url;
        entry.username = merge_credential("username", proxy.username, given(self.username))?
            .and_then(Secret::new);
        entry.password = merge_credential("password", proxy.password, given(self.password))?
            .and_then(Secret::new);
        Ok(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp::parse("2026-11-24T01:00:00Z").unwrap()
    }

    #[test]
    fn put_defaults_follow_the_design() {
        let e = EntryInput::from_json(r#"{"proxy_url":"http://h:1"}"#)
            .unwrap()
            .resolve("k", now(), |_| 60)
            .unwrap();
        assert_eq!(e.key, "k");
        assert_eq!(e.source, "user");
        assert_eq!(e.ttl_seconds, 60);
        assert_eq!(e.expires_at, now().plus_seconds(60));
        assert_eq!(e.health_status, HealthStatus::Unknown);
    }

    #[test]
    fn json_output_has_21_fields_in_order() {
        let mut e = CacheEntry::new("k", "http://u:p@h:1", "s", now(), 10);
        e.username = Secret::new("alice");
        let v: serde_json::Value = serde_json::from_str(&e.to_json(Credentials::Plain)).unwrap();
        let text = e.to_json(Credentials::Plain);
        assert!(text.starts_with(r#"{"key":"k","proxy_url":"http://u:p@h:1","username":"alice","password":null,"source":"s","fetch_time":"2026-11-24T01:00:00.000000+00:00""#));
        assert_eq!(v.as_object().unwrap().len(), 21);
        let masked = e.to_json(Credentials::Masked);
        assert!(
            masked.contains(r#""proxy_url":"http://***:***@h:1","username":"***","password":null"#)
        );
        assert!(!masked.contains("alice"));
    }

    #[test]
    fn bad_input_names_the_field() {
        let err = EntryInput::from_json(r#"{"proxy_url":"x","colour":1}"#).unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
        let err = EntryInput::from_json(r#"{"proxy_url":"x","access_count":"3"}"#).unwrap_err();
        assert!(err.to_string().contains("access_count"), "{err}");
        let err = EntryInput::from_json(r#"{"proxy_url":"x","failure_count":-1}"#)
            .unwrap()
            .resolve("k", now(), |_| 1)
            .unwrap_err();
        assert!(err.to_string().contains("failure_count"), "{err}");
        assert!(EntryInput::from_json("[1]").is_err());
        assert!(EntryInput::from_json(r#"{"proxy_url":"x"} trailing"#).is_err());
        let err = EntryInput::from_json("{}")
            .unwrap()
            .resolve("k", now(), |_| 1);
        assert!(err.unwrap_err().to_string().contains("proxy_url"));
    }

    proptest::proptest! {
        /// Whatever the text in its strings, an entry's JSON parses back to what it holds.
        #[test]
        fn json_output_round_trips_any_text(
            key in ".*", url in ".*", source in ".*", error in proptest::option::of(".*"),
            user in proptest::option::of(".+"), count in 0i64..i64::MAX,
        ) {
            let mut e = CacheEntry::new(key.clone(), url.clone(), source.clone(), now(), 5);
            e.username = user.clone().and_then(Secret::new);
            e.last_health_error = error.clone();
            e.access_count = count;
            let v: serde_json::Value = serde_json::from_str(&e.to_json(Credentials::Plain)).unwrap();
            proptest::prop_assert_eq!(v["key"].as_str(), Some(key.as_str()));
            proptest::prop_assert_eq!(v["proxy_url"].as_str(), Some(url.as_str()));
            proptest::prop_assert_eq!(v["source"].as_str(), Some(source.as_str()));
            proptest::prop_assert_eq!(v["username"].as_str(), user.as_deref());
            proptest::prop_assert_eq!(v["last_health_error"].as_str(), error.as_deref());
            proptest::prop_assert_eq!(v["access_count"].as_i64(), Some(count));
            proptest::prop_assert_eq!(v.as_object().unwrap().len(), 21);
        }
    }

    #[test]
    fn a_list_parses_in_order_with_each_key() {
        let items = EntryInput::list_from_json(
            r#"[{"key":"a","proxy_url":"http://a:1","password":"p"},
                {"proxy_url":"http://b:1","key":"b","source":"s"}]"#,
        )
        .unwrap();
        let keys: Vec<&str> = items.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a", "b"]);
        assert!(items.iter().all(|(_, input)| input.key.is_none()));
        assert_eq!(items[1].1.source.as_deref(), Some("s"));
        let e = items[0].1.clone().resolve("a", now(), |_| 1).unwrap();
        assert_eq!(e.password.unwrap().expose(), "p");
        assert!(EntryInput::list_from_json("[]").unwrap().is_empty());
        assert!(EntryInput::list_from_json(" [ ] \n").unwrap().is_empty());
    }

    #[test]
    fn a_list_that_is_not_an_array_is_rejected() {
        for bad in [
            "",
            "{}",
            r#"{"key":"a","proxy_url":"http://x:1"}"#,
            "null",
            "3",
            "[",
            "[] []",
        ] {
            let err = EntryInput::list_from_json(bad).unwrap_err();
            assert_eq!(err.kind(), crate::error::ErrorKind::InvalidJson, "{bad:?}");
            assert!(err.to_string().starts_with("entries:"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn a_bad_item_is_named_by_index_and_field() {
        let cases = [
            (
                r#"[{"key":"a","proxy_url":"x"}, 7]"#,
                "item 1:",
                "JSON object",
            ),
            (
                r#"[{"key":"a","proxy_url":"x"}, ["b"]]"#,
                "item 1:",
                "JSON object",
            ),
            (r#"[{"proxy_url":"x"}]"#, "item 0:", "`key`"),
            (r#"[{"key":"","proxy_url":"x"}]"#, "item 0:", "`key`"),
            (r#"[{"key":null,"proxy_url":"x"}]"#, "item 0:", "`key`"),
            (r#"[{"key":5,"proxy_url":"x"}]"#, "item 0:", "`key`"),
            (
                r#"[{"key":"a","proxy_url":"x"},{"key":"b","proxy_url":"y","colour":1}]"#,
                "item 1:",
                "colour",
            ),
            (
                r#"[{"key":"a","proxy_url":"x","access_count":"3"}]"#,
                "item 0:",
                "access_count",
            ),
        ];
        for (text, index, field) in cases {
            let err = EntryInput::list_from_json(text).unwrap_err();
            let message = err.to_string();
            assert_eq!(err.kind(), crate::error::ErrorKind::InvalidJson, "{text}");
            assert!(message.starts_with(index), "{text}: {message}");
            assert!(message.contains(field), "{text}: {message}");
        }
    }

    #[test]
    fn a_credential_of_the_wrong_type_in_a_list_is_not_quoted() {
        let err =
            EntryInput::list_from_json(r#"[{"key":"a","proxy_url":"x","password":["hunter2"]}]"#)
                .unwrap_err();
        let message = err.to_string();
        assert!(message.contains("password"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2").unwrap();
        assert_eq!(format!("{s:?}"), "***");
        assert!(Secret::new("").is_none());
    }
}

//! An entry as stored on the server: one hash, one field per attribute, as text.
//!
//! Times are integer microseconds since the Unix epoch (exact, so the scripts compare versions
//! as strings), counters decimal integers (so `HINCRBY` counts failures in place), credentials
//! Fernet tokens made with the cache's key as in every other tier, never plain text. An absent
//! optional attribute is an absent field.

use std::collections::HashMap;

use crate::crypto::Crypto;
use crate::entry::{CacheEntry, HealthStatus, Secret};
use crate::error::{Error, Result};
use crate::time::Timestamp;

/// Why a stored hash is not an entry.
#[derive(Debug)]
pub enum Undecodable {
    /// Damaged: the reason names the field, never its value.
    Corrupt(String),
    /// A credential the key cannot decrypt.
    Crypto(Error),
}

/// The fields and values of `entry`, credentials encrypted.
pub fn encode(entry: &CacheEntry, crypto: &Crypto) -> Result<Vec<(&'static str, String)>> {
    let mut fields = vec![
        ("key", entry.key.clone()),
        ("proxy_url", entry.proxy_url.clone()),
        ("source", entry.source.clone()),
        ("fetch_time", micros(entry.fetch_time)),
        ("last_accessed", micros(entry.last_accessed)),
        ("access_count", entry.access_count.to_string()),
        ("ttl_seconds", entry.ttl_seconds.to_string()),
        ("expires_at", micros(entry.expires_at)),
        ("health_status", entry.health_status.as_str().to_string()),
        ("failure_count", entry.failure_count.to_string()),
        (
            "evicted_from_l1",
            u8::from(entry.evicted_from_l1).to_string(),
        ),
        (
            "consecutive_health_failures",
            entry.consecutive_health_failures.to_string(),
        ),
        (
            "consecutive_health_successes",
            entry.consecutive_health_successes.to_string(),
        ),
        ("recovery_attempt", entry.recovery_attempt.to_string()),
        ("total_health_checks", entry.total_health_checks.to_string()),
        (
            "total_health_check_failures",
            entry.total_health_check_failures.to_string(),
        ),
    ];
    let optional = [
        ("last_health_check", entry.last_health_check.map(micros)),
        ("next_check_time", entry.next_check_time.map(micros)),
        ("last_health_error", entry.last_health_error.clone()),
    ];
    fields.extend(optional.into_iter().filter_map(|(f, v)| v.map(|v| (f, v))));
    for (field, secret) in [("username", &entry.username), ("password", &entry.password)] {
        if let Some(secret) = secret {
            fields.push((field, crypto.encrypt(secret)?));
        }
    }
    Ok(fields)
}

pub fn micros(t: Timestamp) -> String {
    t.as_micros().to_string()
}

struct Fields(HashMap<String, String>);

impl Fields {
    fn text(&self, name: &str) -> std::result::Result<String, Undecodable> {
        self.0
            .get(name)
            .cloned()
            .ok_or_else(|| Undecodable::Corrupt(format!("field {name} is missing")))
    }

    fn integer(&self, name: &str) -> std::result::Result<i64, Undecodable> {
        self.text(name)?
            .parse()
            .map_err(|_| Undecodable::Corrupt(format!("field {name} is not an integer")))
    }

    fn time(&self, name: &str) -> std::result::Result<Timestamp, Undecodable> {
        Timestamp::from_micros(self.integer(name)?)
            .ok_or_else(|| Undecodable::Corrupt(format!("field {name} is out of range")))
    }

    fn optional_time(&self, name: &str) -> std::result::Result<Option<Timestamp>, Undecodable> {
        match self.0.contains_key(name) {
            true => self.time(name).map(Some),
            false => Ok(None),
        }
    }

    fn secret(&self, name: &str, crypto: &Crypto) -> std::result::Result<Option<Secret>, Error> {
        match self.0.get(name) {
            None => Ok(None),
            Some(token) => crypto.decrypt(token),
        }
    }
}

/// The entry in a stored hash (field → value); damage is found before a credential is decrypted.
pub fn decode(
    hash: HashMap<String, String>,
    crypto: &Crypto,
) -> std::result::Result<CacheEntry, Undecodable> {
    let f = Fields(hash);
    let status = f.text("health_status")?;
    let health_status = HealthStatus::parse(&status)
        .ok_or_else(|| Undecodable::Corrupt("field health_status is not a status".into()))?;
    let evicted = f.integer("evicted_from_l1")?;
    let mut entry = CacheEntry {
        key: f.text("key")?,
        proxy_url: f.text("proxy_url")?,
        username: None,
        password: None,
        source: f.text("source")?,
        fetch_time: f.time("fetch_time")?,
        last_accessed: f.time("last_accessed")?,
        access_count: f.integer("access_count")?,
        ttl_seconds: f.integer("ttl_seconds")?,
        expires_at: f.time("expires_at")?,
        health_status,
        failure_count: f.integer("failure_count")?,
        evicted_from_l1: evicted != 0,
        last_health_check: f.optional_time("last_health_check")?,
        consecutive_health_failures: f.integer("consecutive_health_failures")?,
        consecutive_health_successes: f.integer("consecutive_health_successes")?,
        recovery_attempt: f.integer("recovery_attempt")?,
        next_check_time: f.optional_time("next_check_time")?,
        last_health_error: f.0.get("last_health_error").cloned(),
        total_health_checks: f.integer("total_health_checks")?,
        total_health_check_failures: f.integer("total_health_check_failures")?,
    };
    entry.username = f.secret("username", crypto).map_err(Undecodable::Crypto)?;
    entry.password = f.secret("password", crypto).map_err(Undecodable::Crypto)?;
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const KEY: &str = "dGVzdC1rZXktZm9yLXB3Y2FjaGUtZml4dHVyZXMtMDE=";

    fn crypto() -> Crypto {
        Crypto::new(Some(KEY), Path::new("/nonexistent")).unwrap()
    }

    fn as_hash(fields: Vec<(&'static str, String)>) -> HashMap<String, String> {
        fields
            .into_iter()
            .map(|(f, v)| (f.to_string(), v))
            .collect()
    }

    #[test]
    fn encode_then_decode_is_the_identity_and_secrets_are_tokens() {
        let mut e = CacheEntry::new(
            "k",
            "http://h:1",
            "s",
            Timestamp::from_micros(7).unwrap(),
            9,
        );
        e.username = Secret::new("alice");
        e.password = Secret::new("s3cr3t");
        e.last_health_error = Some("boom".into());
        e.next_check_time = Timestamp::from_micros(-1_000_001);
        let fields = encode(&e, &crypto()).unwrap();
        assert!(
            fields
                .iter()
                .all(|(_, v)| !v.contains("s3cr3t") && v != "alice")
        );
        assert_eq!(decode(as_hash(fields), &crypto()).unwrap(), e);
    }

    #[test]
    fn damage_names_the_field_and_a_foreign_token_is_a_crypto_error() {
        let mut e = CacheEntry::new(
            "k",
            "http://h:1",
            "s",
            Timestamp::from_micros(7).unwrap(),
            9,
        );
        e.password = Secret::new("pw");
        let good = as_hash(encode(&e, &crypto()).unwrap());
        let mut bad = good.clone();
        bad.insert("fetch_time".into(), "noon".into());
        match decode(bad, &crypto()) {
            Err(Undecodable::Corrupt(why)) => {
                assert!(why.contains("fetch_time") && !why.contains("noon"))
            }
            other => panic!("{other:?}"),
        }
        let mut bad = good;
        bad.insert("password".into(), "gAAAAAnot-a-token".into());
        assert!(matches!(
            decode(bad, &crypto()),
            Err(Undecodable::Crypto(_))
        ));
    }
}

//! The lines of a shard file (docs/FORMAT.md §3.3): a record as written and read, a tombstone,
//! the classification of a line for the index, and the split of a buffer into complete lines.

use serde::{Deserialize, Serialize};

use crate::crypto::Crypto;
use crate::entry::{CacheEntry, HealthStatus};
use crate::error::{Error, Result};
use crate::tier::Version;
use crate::time::Timestamp;

/// A record line, as written and as read (upstream's field names and order).
#[derive(Serialize, Deserialize)]
pub(super) struct Record {
    pub(super) key: String,
    pub(super) proxy_url: String,
    pub(super) source: String,
    pub(super) fetch_time: String,
    pub(super) last_accessed: String,
    pub(super) access_count: i64,
    pub(super) ttl_seconds: i64,
    pub(super) expires_at: String,
    pub(super) health_status: String,
    pub(super) failure_count: i64,
    pub(super) evicted_from_l1: bool,
    #[serde(default)]
    pub(super) last_health_check: Option<String>,
    #[serde(default)]
    pub(super) consecutive_health_failures: i64,
    #[serde(default)]
    pub(super) consecutive_health_successes: i64,
    #[serde(default)]
    pub(super) recovery_attempt: i64,
    #[serde(default)]
    pub(super) next_check_time: Option<String>,
    #[serde(default)]
    pub(super) last_health_error: Option<String>,
    #[serde(default)]
    pub(super) total_health_checks: i64,
    #[serde(default)]
    pub(super) total_health_check_failures: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) username_encrypted: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) password_encrypted: Option<String>,
}

impl Record {
    /// The line of this record, without its `\n`.
    pub(super) fn to_line(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a record serialises")
    }

    /// When the entry expires; an error for a datetime that does not parse (out of range).
    pub(super) fn expiry(&self) -> Result<Timestamp> {
        Timestamp::parse(&self.expires_at).ok_or_else(|| {
            Error::InvalidArgument("jsonl L2: an entry's expires_at is out of range".into())
        })
    }

    /// Whether this record holds `version`.
    pub(super) fn is_version(&self, version: &Version) -> bool {
        self.proxy_url == version.proxy_url
            && Timestamp::parse(&self.fetch_time) == Some(version.fetch_time)
            && Timestamp::parse(&self.expires_at) == Some(version.expires_at)
    }
}

#[derive(Serialize)]
struct Tombstone<'a> {
    op: &'static str,
    key: &'a str,
}

/// Appends the tombstone of `key` to `buf`, without its `\n`.
pub(super) fn write_tombstone(buf: &mut Vec<u8>, key: &str) {
    let tomb = Tombstone { op: "delete", key };
    serde_json::to_writer(buf, &tomb).expect("a tombstone serialises");
}

/// What the index needs from a line; the rest is read on `get`.
#[derive(Deserialize)]
struct LineHead {
    #[serde(default)]
    op: Option<String>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(default)]
    last_accessed: Option<String>,
    #[serde(default)]
    fetch_time: Option<String>,
    #[serde(default)]
    access_count: Option<i64>,
}

/// What a record says about its place in the eviction order, read when the index is built at
/// open.
#[derive(Clone, Copy, Default)]
pub(super) struct Meta {
    pub(super) last_accessed: Option<Timestamp>,
    pub(super) fetch_time: Option<Timestamp>,
    pub(super) access_count: i64,
}

/// A line as the index sees it.
pub(super) enum Line {
    Put {
        key: String,
        expires_at: Timestamp,
        meta: Meta,
    },
    Delete {
        key: String,
    },
    Blank,
    Corrupt,
}

/// Whether a line is a JSON object in UTF-8, as a line must be (docs/FORMAT.md §3.5). serde alone
/// does not tell: it reads a struct from an array too, and does not check the UTF-8 of the fields
/// it skips, so such a line would be indexed as a record and hide the key's earlier one.
pub(super) fn is_object_text(bytes: &[u8]) -> bool {
    bytes.trim_ascii_start().first() == Some(&b'{') && std::str::from_utf8(bytes).is_ok()
}

pub(super) fn parse_line(bytes: &[u8]) -> Line {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Line::Blank;
    }
    if !is_object_text(bytes) {
        return Line::Corrupt;
    }
    let Ok(head) = serde_json::from_slice::<LineHead>(bytes) else {
        return Line::Corrupt;
    };
    let Some(key) = head.key.filter(|k| !k.is_empty()) else {
        return Line::Corrupt;
    };
    match head.op.as_deref() {
        Some("delete") => Line::Delete { key },
        Some(_) => Line::Corrupt,
        None => {
            let Some(expires_at) = head.expires_at.as_deref().and_then(Timestamp::parse) else {
                return Line::Corrupt;
            };
            let meta = Meta {
                last_accessed: head.last_accessed.as_deref().and_then(Timestamp::parse),
                fetch_time: head.fetch_time.as_deref().and_then(Timestamp::parse),
                access_count: head.access_count.unwrap_or(0),
            };
            Line::Put {
                key,
                expires_at,
                meta,
            }
        }
    }
}

/// Calls `f(offset, line)` for each `\n`-terminated line of `buf` (which starts at file offset
/// `base`); returns the number of bytes those lines take (a trailing partial line is left).
pub(super) fn for_each_line(buf: &[u8], base: u64, mut f: impl FnMut(u64, &[u8])) -> usize {
    let mut start = 0;
    while let Some(nl) = buf[start..].iter().position(|&b| b == b'\n') {
        f(base + start as u64, &buf[start..start + nl]);
        start += nl + 1;
    }
    start
}

pub(super) fn encode_entry(entry: &CacheEntry, crypto: &Crypto) -> Result<Record> {
    let username_encrypted = entry
        .username
        .as_ref()
        .map(|s| crypto.encrypt(s))
        .transpose()?;
    let password_encrypted = entry
        .password
        .as_ref()
        .map(|s| crypto.encrypt(s))
        .transpose()?;
    Ok(Record {
        key: entry.key.clone(),
        proxy_url: entry.proxy_url.clone(),
        source: entry.source.clone(),
        fetch_time: entry.fetch_time.to_rfc3339(),
        last_accessed: entry.last_accessed.to_rfc3339(),
        access_count: entry.access_count,
        ttl_seconds: entry.ttl_seconds,
        expires_at: entry.expires_at.to_rfc3339(),
        health_status: entry.health_status.as_str().to_string(),
        failure_count: entry.failure_count,
        evicted_from_l1: entry.evicted_from_l1,
        last_health_check: entry.last_health_check.map(Timestamp::to_rfc3339),
        consecutive_health_failures: entry.consecutive_health_failures,
        consecutive_health_successes: entry.consecutive_health_successes,
        recovery_attempt: entry.recovery_attempt,
        next_check_time: entry.next_check_time.map(Timestamp::to_rfc3339),
        last_health_error: entry.last_health_error.clone(),
        total_health_checks: entry.total_health_checks,
        total_health_check_failures: entry.total_health_check_failures,
        username_encrypted,
        password_encrypted,
    })
}

/// Why a stored record could not be turned back into an entry.
pub(super) enum DecodeError {
    /// The record is damaged: drop it.
    Corrupt(&'static str),
    /// A credential did not decrypt (wrong key): keep the record.
    Crypto(Error),
}

/// The entry in the line that the index places under `key`; `line` is `None` when the file
/// ended before it (another process cut the file).
pub(super) fn decode_record(
    line: Option<&[u8]>,
    key: &str,
    crypto: &Crypto,
) -> std::result::Result<CacheEntry, DecodeError> {
    use DecodeError::Corrupt;
    let bytes = line.ok_or(Corrupt("the file is shorter than its index"))?;
    let rec: Record = serde_json::from_slice(bytes).map_err(|_| Corrupt("not a record"))?;
    if rec.key != key {
        return Err(Corrupt("the record holds another key"));
    }
    let ts = |text: &str| Timestamp::parse(text).ok_or(Corrupt("a datetime is invalid"));
    let opt_ts = |text: Option<&str>| text.map(ts).transpose();
    let count = |n: i64| {
        if n >= 0 {
            Ok(n)
        } else {
            Err(Corrupt("a counter is negative"))
        }
    };
    let secret = |token: Option<&str>| match token {
        None => Ok(None),
        Some(t) => crypto.decrypt(t).map_err(DecodeError::Crypto),
    };
    Ok(CacheEntry {
        username: secret(rec.username_encrypted.as_deref())?,
        password: secret(rec.password_encrypted.as_deref())?,
        fetch_time: ts(&rec.fetch_time)?,
        last_accessed: ts(&rec.last_accessed)?,
        access_count: count(rec.access_count)?,
        ttl_seconds: count(rec.ttl_seconds)?,
        expires_at: ts(&rec.expires_at)?,
        health_status: HealthStatus::parse(&rec.health_status)
            .ok_or(Corrupt("health_status is invalid"))?,
        failure_count: count(rec.failure_count)?,
        evicted_from_l1: rec.evicted_from_l1,
        last_health_check: opt_ts(rec.last_health_check.as_deref())?,
        consecutive_health_failures: count(rec.consecutive_health_failures)?,
        consecutive_health_successes: count(rec.consecutive_health_successes)?,
        recovery_attempt: count(rec.recovery_attempt)?,
        next_check_time: opt_ts(rec.next_check_time.as_deref())?,
        last_health_error: rec.last_health_error,
        total_health_checks: count(rec.total_health_checks)?,
        total_health_check_failures: count(rec.total_health_check_failures)?,
        key: rec.key,
        proxy_url: rec.proxy_url,
        source: rec.source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_classified() {
        assert!(matches!(parse_line(b""), Line::Blank));
        assert!(matches!(parse_line(b"{not json"), Line::Corrupt));
        assert!(matches!(parse_line(br#"{"op":"delete"}"#), Line::Corrupt));
        assert!(matches!(
            parse_line(br#"{"op":"frob","key":"k"}"#),
            Line::Corrupt
        ));
        assert!(matches!(
            parse_line(br#"{"op":"delete","key":"k"}"#),
            Line::Delete { .. }
        ));
        assert!(matches!(
            parse_line(br#"{"key":"k","expires_at":"nope"}"#),
            Line::Corrupt
        ));
        assert!(matches!(
            parse_line(br#"{"key":"k","expires_at":"2030-01-02T03:04:05+00:00"}"#),
            Line::Put { .. }
        ));
        // Not JSON objects in UTF-8 (as docs/FORMAT.md §3.5 reads them), though serde would
        // take an array for a struct and skips the bytes of fields it ignores.
        assert!(matches!(
            parse_line(br#"[null,"k","2030-01-02T03:04:05+00:00"]"#),
            Line::Corrupt
        ));
        assert!(matches!(
            parse_line(b"{\"key\":\"k\",\"expires_at\":\"2030-01-02T03:04:05Z\",\"x\":\"\xad\"}"),
            Line::Corrupt
        ));
    }

    #[test]
    fn only_terminated_lines_are_read() {
        let mut seen = Vec::new();
        let used = for_each_line(b"ab\n\ncd\nef", 10, |off, line| {
            seen.push((off, line.to_vec()))
        });
        assert_eq!(used, 7);
        assert_eq!(
            seen,
            vec![
                (10, b"ab".to_vec()),
                (13, b"".to_vec()),
                (14, b"cd".to_vec())
            ]
        );
    }
}

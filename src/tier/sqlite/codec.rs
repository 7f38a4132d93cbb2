//! Rows to entries and entries to parameters.
//!
//! Reading is strict where upstream's schema is (`NOT NULL` columns must hold a value of the
//! right type) and lenient where it is not: a `NULL` in a column with a `DEFAULT` reads as that
//! default, as a row written by an older proxywhirl may hold. A negative counter or TTL is damage,
//! as in the JSONL tier (an entry's bounds, docs/FORMAT.md §2.1). Datetimes are REAL epoch seconds
//! (an INTEGER is accepted), rounded to the microsecond. Credentials are the Fernet token's ASCII,
//! BLOB as upstream writes it or TEXT.

use rusqlite::Row;
use rusqlite::types::{Value, ValueRef};

use crate::crypto::Crypto;
use crate::entry::{CacheEntry, HealthStatus, Secret};
use crate::error::Error;
use crate::time::Timestamp;

use super::schema::ENTRY_COLUMNS;

/// Why a row did not give an entry.
#[derive(Debug)]
pub(super) enum Undecodable {
    /// The row is damaged: it is dropped. The text names the column and what was wrong, never a
    /// value.
    Corrupt(String),
    /// A credential that the key cannot decrypt: the row is kept.
    Crypto(Error),
}

type Decoded<T> = std::result::Result<T, Undecodable>;

fn corrupt(column: usize, what: &str) -> Undecodable {
    Undecodable::Corrupt(format!("column {}: {what}", ENTRY_COLUMNS[column]))
}

fn value<'r>(row: &'r Row<'_>, i: usize) -> Decoded<ValueRef<'r>> {
    row.get_ref(i).map_err(|_| corrupt(i, "cannot be read"))
}

fn type_name(v: ValueRef<'_>) -> &'static str {
    match v {
        ValueRef::Null => "NULL",
        ValueRef::Integer(_) => "INTEGER",
        ValueRef::Real(_) => "REAL",
        ValueRef::Text(_) => "TEXT",
        ValueRef::Blob(_) => "BLOB",
    }
}

fn text(row: &Row<'_>, i: usize) -> Decoded<String> {
    match value(row, i)? {
        ValueRef::Text(bytes) => {
            String::from_utf8(bytes.to_vec()).map_err(|_| corrupt(i, "TEXT that is not UTF-8"))
        }
        other => Err(corrupt(
            i,
            &format!("expected TEXT, found {}", type_name(other)),
        )),
    }
}

fn optional_text(row: &Row<'_>, i: usize) -> Decoded<Option<String>> {
    match value(row, i)? {
        ValueRef::Null => Ok(None),
        _ => text(row, i).map(Some),
    }
}

fn optional_time(row: &Row<'_>, i: usize) -> Decoded<Option<Timestamp>> {
    let seconds = match value(row, i)? {
        ValueRef::Null => return Ok(None),
        ValueRef::Real(f) => f,
        ValueRef::Integer(n) => n as f64,
        other => {
            return Err(corrupt(
                i,
                &format!("expected REAL epoch seconds, found {}", type_name(other)),
            ));
        }
    };
    Timestamp::from_epoch_seconds(seconds)
        .map(Some)
        .ok_or_else(|| corrupt(i, "a datetime outside years 1-9999"))
}

fn time(row: &Row<'_>, i: usize) -> Decoded<Timestamp> {
    optional_time(row, i)?.ok_or_else(|| corrupt(i, "NULL where a datetime is required"))
}

fn optional_integer(row: &Row<'_>, i: usize) -> Decoded<Option<i64>> {
    match value(row, i)? {
        ValueRef::Null => Ok(None),
        ValueRef::Integer(n) => Ok(Some(n)),
        // REAL only when it is a whole number that fits (a value SQLite could not store as INTEGER).
        ValueRef::Real(f) if f.fract() == 0.0 && f.abs() < 9.0e18 => Ok(Some(f as i64)),
        other => Err(corrupt(
            i,
            &format!("expected INTEGER, found {}", type_name(other)),
        )),
    }
}

fn integer(row: &Row<'_>, i: usize) -> Decoded<i64> {
    optional_integer(row, i)?.ok_or_else(|| corrupt(i, "NULL where an integer is required"))
}

fn integer_or_zero(row: &Row<'_>, i: usize) -> Decoded<i64> {
    Ok(optional_integer(row, i)?.unwrap_or(0))
}

/// A counter or the TTL: never negative (an entry's bounds, as the JSONL tier and `put` check).
fn non_negative(i: usize, n: i64) -> Decoded<i64> {
    if n < 0 {
        Err(corrupt(i, "a negative count"))
    } else {
        Ok(n)
    }
}

fn counter(row: &Row<'_>, i: usize) -> Decoded<i64> {
    non_negative(i, integer_or_zero(row, i)?)
}

/// The token text of a credential column; `Err(Crypto)` for bytes that cannot be a token.
fn token(row: &Row<'_>, i: usize) -> Decoded<Option<String>> {
    let bytes = match value(row, i)? {
        ValueRef::Null => return Ok(None),
        ValueRef::Blob(b) | ValueRef::Text(b) => b,
        other => {
            return Err(corrupt(
                i,
                &format!("expected a BLOB token, found {}", type_name(other)),
            ));
        }
    };
    String::from_utf8(bytes.to_vec()).map(Some).map_err(|_| {
        Undecodable::Crypto(Error::Crypto(
            "cannot decrypt a stored credential: wrong key or damaged token".into(),
        ))
    })
}

fn decrypt(crypto: &Crypto, token: Option<String>) -> Decoded<Option<Secret>> {
    match token {
        None => Ok(None),
        Some(t) => crypto.decrypt(&t).map_err(Undecodable::Crypto),
    }
}

/// The entry in a row of the 21 [`ENTRY_COLUMNS`]. Every other column is checked before a
/// credential is decrypted, so a damaged row is reported as corrupt whatever the key.
pub(super) fn decode(row: &Row<'_>, crypto: &Crypto) -> Decoded<CacheEntry> {
    let health_status = match value(row, 10)? {
        ValueRef::Null => HealthStatus::Unknown,
        _ => {
            let name = text(row, 10)?;
            HealthStatus::parse(&name).ok_or_else(|| corrupt(10, "an unknown health status"))?
        }
    };
    let key = text(row, 0)?;
    let proxy_url = text(row, 1)?;
    let username = token(row, 2)?;
    let password = token(row, 3)?;
    let mut entry = CacheEntry {
        key,
        proxy_url,
        username: None,
        password: None,
        source: text(row, 4)?,
        fetch_time: time(row, 5)?,
        last_accessed: time(row, 6)?,
        access_count: counter(row, 7)?,
        ttl_seconds: non_negative(8, integer(row, 8)?)?,
        expires_at: time(row, 9)?,
        health_status,
        failure_count: counter(row, 11)?,
        evicted_from_l1: integer_or_zero(row, 12)? != 0,
        last_health_check: optional_time(row, 13)?,
        consecutive_health_failures: counter(row, 14)?,
        consecutive_health_successes: counter(row, 15)?,
        recovery_attempt: counter(row, 16)?,
        next_check_time: optional_time(row, 17)?,
        last_health_error: optional_text(row, 18)?,
        total_health_checks: counter(row, 19)?,
        total_health_check_failures: counter(row, 20)?,
    };
    entry.username = decrypt(crypto, username)?;
    entry.password = decrypt(crypto, password)?;
    Ok(entry)
}

/// A credential as stored: the Fernet token's ASCII bytes as a BLOB, `NULL` when absent.
fn encrypt(crypto: &Crypto, secret: Option<&Secret>) -> crate::Result<Value> {
    Ok(match secret {
        None => Value::Null,
        Some(s) => Value::Blob(crypto.encrypt(s)?.into_bytes()),
    })
}

fn time_value(t: Option<Timestamp>) -> Value {
    t.map_or(Value::Null, |t| Value::Real(t.as_epoch_seconds()))
}

/// The values of the 21 [`ENTRY_COLUMNS`] for `entry`, credentials encrypted.
pub(super) fn encode(entry: &CacheEntry, crypto: &Crypto) -> crate::Result<Vec<Value>> {
    Ok(vec![
        Value::Text(entry.key.clone()),
        Value::Text(entry.proxy_url.clone()),
        encrypt(crypto, entry.username.as_ref())?,
        encrypt(crypto, entry.password.as_ref())?,
        Value::Text(entry.source.clone()),
        time_value(Some(entry.fetch_time)),
        time_value(Some(entry.last_accessed)),
        Value::Integer(entry.access_count),
        Value::Integer(entry.ttl_seconds),
        time_value(Some(entry.expires_at)),
        Value::Text(entry.health_status.as_str().to_string()),
        Value::Integer(entry.failure_count),
        Value::Integer(i64::from(entry.evicted_from_l1)),
        time_value(entry.last_health_check),
        Value::Integer(entry.consecutive_health_failures),
        Value::Integer(entry.consecutive_health_successes),
        Value::Integer(entry.recovery_attempt),
        time_value(entry.next_check_time),
        entry
            .last_health_error
            .clone()
            .map_or(Value::Null, Value::Text),
        Value::Integer(entry.total_health_checks),
        Value::Integer(entry.total_health_check_failures),
    ])
}

/// Whether the eight fields `l2_cache` has no column for are all at their defaults (then no side
/// row is needed).
pub(super) fn health_fields_are_default(entry: &CacheEntry) -> bool {
    entry.last_health_check.is_none()
        && entry.consecutive_health_failures == 0
        && entry.consecutive_health_successes == 0
        && entry.recovery_attempt == 0
        && entry.next_check_time.is_none()
        && entry.last_health_error.is_none()
        && entry.total_health_checks == 0
        && entry.total_health_check_failures == 0
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use rusqlite::Connection;

    use super::*;

    const KEY: &str = "dGVzdC1rZXktZm9yLXB3Y2FjaGUtZml4dHVyZXMtMDE=";

    fn crypto() -> Crypto {
        Crypto::new(Some(KEY), Path::new("/nonexistent")).unwrap()
    }

    /// Decodes one row given as 21 SQL expressions.
    fn decode_values(values: &[String]) -> Decoded<CacheEntry> {
        let conn = Connection::open_in_memory().unwrap();
        let sql = format!("SELECT {}", values.join(", "));
        let mut stmt = conn.prepare(&sql).unwrap();
        let mut rows = stmt.query([]).unwrap();
        decode(rows.next().unwrap().unwrap(), &crypto())
    }

    fn minimal_row() -> Vec<String> {
        let mut v: Vec<String> = [
            "'k'",
            "'http://h:1'",
            "NULL",
            "NULL",
            "'src'",
            "1795486134.123456",
            "1795486134",
            "NULL",
            "60",
            "4070908800.0",
            "NULL",
            "NULL",
            "NULL",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(std::iter::repeat_n("NULL".to_string(), 8));
        v
    }

    #[test]
    fn nulls_in_defaulted_columns_read_as_the_defaults() {
        let e = decode_values(&minimal_row()).unwrap();
        assert_eq!(e.access_count, 0);
        assert_eq!(e.health_status, HealthStatus::Unknown);
        assert!(!e.evicted_from_l1);
        assert_eq!(e.last_health_check, None);
        assert_eq!(e.total_health_check_failures, 0);
        // An INTEGER datetime is epoch seconds too.
        assert_eq!(
            e.last_accessed,
            Timestamp::from_epoch_seconds(1795486134.0).unwrap()
        );
        assert_eq!(e.fetch_time.as_micros(), 1_795_486_134_123_456);
    }

    #[test]
    fn tokens_are_read_from_blob_and_text() {
        let token = crypto().encrypt(&Secret::new("bob").unwrap()).unwrap();
        let mut row = minimal_row();
        row[2] = format!("CAST('{token}' AS BLOB)");
        row[3] = format!("'{token}'");
        let e = decode_values(&row).unwrap();
        assert_eq!(e.username.unwrap().expose(), "bob");
        assert_eq!(e.password.unwrap().expose(), "bob");
        row[3] = "x''".to_string();
        assert!(decode_values(&row).unwrap().password.is_none());
    }

    #[test]
    fn damage_is_corrupt_and_a_bad_token_is_a_crypto_error() {
        let cases = [
            (0, "NULL"),
            (5, "NULL"),
            (5, "'noon'"),
            (9, "1e300"),
            (8, "2.5"),
            (10, "'sleepy'"),
            (2, "7"),
            (18, "x'00'"),
            (7, "-1"),
            (8, "-60"),
            (20, "-1.0"),
        ];
        for (column, value) in cases {
            let mut row = minimal_row();
            row[column] = value.to_string();
            match decode_values(&row) {
                Err(Undecodable::Corrupt(reason)) => {
                    assert!(reason.contains(ENTRY_COLUMNS[column]), "{reason}");
                    if value.starts_with('\'') {
                        // The reason names the column, never the value.
                        assert!(!reason.contains(value.trim_matches('\'')), "{reason}");
                    }
                }
                other => panic!("column {column} = {value}: {other:?}"),
            }
        }
        let mut row = minimal_row();
        row[3] = "'gAAAAAnot-a-token'".to_string();
        assert!(matches!(decode_values(&row), Err(Undecodable::Crypto(_))));
        row[3] = "x'ff'".to_string();
        assert!(matches!(decode_values(&row), Err(Undecodable::Crypto(_))));
        // Damage elsewhere wins over a token that cannot be decrypted.
        row[10] = "'sleepy'".to_string();
        assert!(matches!(decode_values(&row), Err(Undecodable::Corrupt(_))));
    }

    #[test]
    fn encode_then_decode_is_the_identity() {
        let mut e = CacheEntry::new(
            "k",
            "http://h:1",
            "s",
            Timestamp::from_micros(7).unwrap(),
            9,
        );
        e.username = Secret::new("u");
        e.last_health_error = Some("boom".into());
        e.next_check_time = Timestamp::from_micros(-1_000_001);
        let values = encode(&e, &crypto()).unwrap();
        let conn = Connection::open_in_memory().unwrap();
        let params: Vec<String> = (1..=21).map(|i| format!("?{i}")).collect();
        let mut stmt = conn
            .prepare(&format!("SELECT {}", params.join(", ")))
            .unwrap();
        let mut rows = stmt.query(rusqlite::params_from_iter(&values)).unwrap();
        let back = decode(rows.next().unwrap().unwrap(), &crypto()).unwrap();
        assert_eq!(back, e);
        assert!(!health_fields_are_default(&e));
    }
}

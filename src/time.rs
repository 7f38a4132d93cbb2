//! Timestamps and the clock.
//!
//! Every datetime is held as microseconds since the Unix epoch, UTC ([`Timestamp`]): comparisons
//! for expiry are integer comparisons, and SQLite's epoch seconds and JSON's RFC 3339 strings are
//! both conversions at the edge. Time comes from one [`Clock`], so tests can stand exactly on an
//! expiry boundary.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};

/// Microseconds since 1970-01-01T00:00:00Z, within years 1..=9999 (what RFC 3339 can write).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// 0001-01-01T00:00:00Z.
    pub const MIN: Timestamp = Timestamp(-62_135_596_800_000_000);
    /// 9999-12-31T23:59:59.999999Z.
    pub const MAX: Timestamp = Timestamp(253_402_300_799_999_999);

    /// `None` outside years 1..=9999.
    pub fn from_micros(micros: i64) -> Option<Self> {
        (Self::MIN.0..=Self::MAX.0)
            .contains(&micros)
            .then_some(Timestamp(micros))
    }

    pub fn as_micros(self) -> i64 {
        self.0
    }

    /// From Unix epoch seconds as SQLite stores them (REAL), rounded to the microsecond.
    pub fn from_epoch_seconds(seconds: f64) -> Option<Self> {
        if !seconds.is_finite() {
            return None;
        }
        let micros = (seconds * 1e6).round();
        if micros < Self::MIN.0 as f64 || micros > Self::MAX.0 as f64 {
            return None;
        }
        Some(Timestamp(micros as i64))
    }

    pub fn as_epoch_seconds(self) -> f64 {
        self.0 as f64 / 1e6
    }

    /// This time plus `seconds`, saturating at [`Timestamp::MAX`].
    pub fn plus_seconds(self, seconds: i64) -> Timestamp {
        let micros = self.0.saturating_add(seconds.saturating_mul(1_000_000));
        Timestamp(micros.min(Self::MAX.0))
    }

    /// Parses RFC 3339 / ISO 8601 with any offset or `Z`; a datetime without an offset is UTC.
    pub fn parse(text: &str) -> Option<Self> {
        let utc = match DateTime::parse_from_rfc3339(text) {
            Ok(dt) => dt.with_timezone(&Utc),
            Err(_) => NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
                .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f"))
                .ok()?
                .and_utc(),
        };
        Self::from_micros(utc.timestamp_micros())
    }

    /// RFC 3339 in UTC with exactly six fractional digits and `+00:00`, as `pw_cache_get` writes.
    pub fn to_rfc3339(self) -> String {
        let dt = DateTime::<Utc>::from_timestamp_micros(self.0).expect("timestamp is in range");
        // chrono's RFC 3339 writer, not a format string: a format string is parsed on every call
        // and was 4x slower, which showed in every `get` from C (its JSON holds 3 to 5 dates).
        dt.to_rfc3339_opts(SecondsFormat::Micros, false)
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// Serialised as its RFC 3339 text ([`Timestamp::to_rfc3339`]).
impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

/// Where the cache reads the time.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_micros(Utc::now().timestamp_micros()).unwrap_or(Timestamp::MAX)
    }
}

/// A clock that moves only when told to: for tests and simulations of expiry.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        ManualClock(AtomicI64::new(start.as_micros()))
    }

    pub fn set(&self, to: Timestamp) {
        self.0.store(to.as_micros(), Ordering::SeqCst);
    }

    pub fn advance_micros(&self, micros: i64) {
        self.0.fetch_add(micros, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_microseconds_and_utc_offset() {
        let t = Timestamp::parse("2026-11-24T01:45:44.854045+00:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-24T01:45:44.854045+00:00");
        let t = Timestamp::parse("2030-01-02T03:04:05Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2030-01-02T03:04:05.000000+00:00");
    }

    #[test]
    fn offsets_are_converted_and_naive_is_utc() {
        let a = Timestamp::parse("2026-01-01T02:00:00+02:00").unwrap();
        let b = Timestamp::parse("2026-01-01T00:00:00").unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn rejects_garbage_and_out_of_range() {
        assert!(Timestamp::parse("yesterday").is_none());
        assert!(Timestamp::from_micros(i64::MAX).is_none());
        assert!(Timestamp::from_epoch_seconds(f64::NAN).is_none());
    }

    #[test]
    fn epoch_seconds_round_trip_to_the_microsecond() {
        let t = Timestamp::parse("2026-11-24T02:08:54.123456+00:00").unwrap();
        assert_eq!(Timestamp::from_epoch_seconds(t.as_epoch_seconds()), Some(t));
    }
}

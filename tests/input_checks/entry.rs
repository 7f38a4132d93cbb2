//! The entry JSON: `EntryInput::from_json` (what `put` takes), `EntryInput::list_from_json`
//! (`put_many`), `EntryInput::resolve`, and `CacheEntry::to_json` (what `get` returns).
//!
//! Must hold: any text gives an input or an `InvalidJson` error naming no secret (or, for a
//! `proxy_url` that is not a URL or credentials given twice, `InvalidArgument`); an input that
//! resolves gives an entry whose JSON parses back to the same entry; `put` then `get` through a
//! cache returns that entry, read once (or nothing, when it is already expired).

use std::sync::Arc;

use pwcache::{
    CacheConfig, CacheEntry, CacheManager, Credentials, EntryInput, ErrorKind, ManualClock,
    Timestamp,
};
use serde_json::Value;

use super::secrets;
use super::{KEY, assert_clean, now};

/// The TTL the checks give a source that names none.
const DEFAULT_TTL: i64 = 60;

pub fn check_entry_json(text: &str) {
    match EntryInput::from_json(text) {
        Err(e) => assert_clean("entry", &e, &[ErrorKind::InvalidJson]),
        Ok(input) => match input.resolve("k", now(), |_| DEFAULT_TTL) {
            Err(e) => assert_clean(
                "entry resolve",
                &e,
                &[ErrorKind::InvalidJson, ErrorKind::InvalidArgument],
            ),
            Ok(entry) => check_entry_round_trip(&entry),
        },
    }
    if let Some(planted) = secrets::plant(text) {
        let resolved = EntryInput::from_json(&planted)
            .and_then(|input| input.resolve("k", now(), |_| DEFAULT_TTL));
        if let Err(e) = resolved {
            secrets::assert_not_quoted("entry", &e.to_string());
        }
    }
}

pub fn check_entry_list_json(text: &str) {
    match EntryInput::list_from_json(text) {
        Err(e) => assert_clean("entries", &e, &[ErrorKind::InvalidJson]),
        Ok(items) => {
            for (key, input) in items {
                assert!(!key.is_empty(), "an item of a list has an empty key");
                assert!(input.key.is_none(), "an item keeps its key in the input");
                match input.resolve(&key, now(), |_| DEFAULT_TTL) {
                    Err(e) => assert_clean(
                        "entries resolve",
                        &e,
                        &[ErrorKind::InvalidJson, ErrorKind::InvalidArgument],
                    ),
                    Ok(entry) => check_entry_round_trip(&entry),
                }
            }
        }
    }
    if let Some(planted) = secrets::plant(text)
        && let Err(e) = EntryInput::list_from_json(&planted)
    {
        secrets::assert_not_quoted("entries", &e.to_string());
    }
}

/// The entry of an entry's JSON (as `get` and exports write it), parsed and resolved as the input
/// of a `put` under `key`: every field is written, so neither the time nor the TTL of the `put`
/// matter.
///
/// One exception: `put` checks its `proxy_url` (a URL `scheme://host[:port]`, userinfo moved
/// into the credentials), while the storage formats hold whatever text was stored (an empty
/// one too, docs/FORMAT.md §2.1). So the input is resolved with a plain URL in its place, and
/// the entry gets the text back: this reads a stored entry, it does not `put` one.
pub fn entry_from_json(key: &str, text: &str) -> CacheEntry {
    let later = now().plus_seconds(12_345);
    let mut input = EntryInput::from_json(text)
        .unwrap_or_else(|e| panic!("an entry's JSON does not parse back: {e}; {text}"));
    let stored_url = std::mem::replace(&mut input.proxy_url, "http://placeholder:1".into());
    let mut entry = input
        .resolve(key, later, |_| 7)
        .unwrap_or_else(|e| panic!("an entry's JSON does not resolve: {e}; {text}"));
    entry.proxy_url = stored_url;
    entry
}

/// An entry's JSON (credentials in plain text, as `get` returns it) parses back to the same
/// entry ([`entry_from_json`]). The masked form is JSON too and holds no credential.
pub fn check_entry_round_trip(entry: &CacheEntry) {
    let back = entry_from_json(&entry.key, &entry.to_json(Credentials::Plain));
    assert_eq!(&back, entry, "an entry changed in a JSON round trip");
    let masked: Value = serde_json::from_str(&entry.to_json(Credentials::Masked))
        .expect("the masked JSON of an entry is JSON");
    for (name, secret) in [("username", &entry.username), ("password", &entry.password)] {
        let expected = secret.as_ref().map(|_| Value::from("***"));
        assert_eq!(
            masked[name],
            expected.unwrap_or(Value::Null),
            "masked {name}"
        );
    }
}

/// An L1-only cache on a clock that stands still, for `put` then `get` of JSON inputs.
pub struct EntryBench {
    cache: CacheManager,
    config: CacheConfig,
}

impl Default for EntryBench {
    fn default() -> Self {
        let mut config = CacheConfig::default();
        config.l2.enabled = false;
        config.l3.enabled = false;
        // Never created: the tiers that would use it are off.
        config.l2_cache_dir = super::scratch_root().join("pwcache-check-unused");
        config.encryption_key = Some(KEY.to_string());
        let clock = Arc::new(ManualClock::new(now()));
        let cache = CacheManager::open_with_clock(config.clone(), clock).expect("an L1 cache");
        EntryBench { cache, config }
    }
}

impl EntryBench {
    /// `put_json(key, text)` then `get(key)`: the entry `get` returns is the one the input
    /// resolves to, read once; `put` fails exactly when resolving fails, with the same kind.
    pub fn check_put_get(&self, text: &str) {
        const KEY_OF_PUT: &str = "entry-check";
        let expected = EntryInput::from_json(text)
            .and_then(|input| input.resolve(KEY_OF_PUT, now(), |s| self.config.ttl_for_source(s)));
        match (self.cache.put_json(KEY_OF_PUT, text), expected) {
            (Err(e), Err(x)) => {
                assert_clean(
                    "put_json",
                    &e,
                    &[ErrorKind::InvalidJson, ErrorKind::InvalidArgument],
                );
                assert_eq!(e.kind(), x.kind(), "put_json: {e} / resolve: {x}");
            }
            (Ok(()), Ok(mut expected)) => {
                let got = self.cache.get(KEY_OF_PUT).expect("get from L1");
                if expected.is_expired(now()) {
                    assert!(got.is_none(), "get returned an expired entry");
                } else {
                    expected.touch(now());
                    assert_eq!(got.as_ref(), Some(&expected), "get after put_json");
                }
            }
            (put, resolved) => panic!(
                "put_json and resolve disagree: {:?} / {:?}",
                put.err(),
                resolved.err()
            ),
        }
    }
}

/// A timestamp in years 1..=9999 from any integer (for generated entries).
pub fn timestamp_from(n: i64) -> Timestamp {
    let span = Timestamp::MAX.as_micros() - Timestamp::MIN.as_micros() + 1;
    let micros = Timestamp::MIN.as_micros() + n.rem_euclid(span);
    Timestamp::from_micros(micros).expect("in range")
}

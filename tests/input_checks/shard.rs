//! A JSONL shard file read by the JSONL L2 tier (`pwcache::tier::jsonl::JsonlTier`, opened,
//! read, compacted and reopened through its public API): any bytes as one of pwcache's shards,
//! any bytes as a proxywhirl shard to import, and a valid shard cut anywhere and followed by any
//! bytes (a torn write, a damaged disk).
//!
//! Must hold: open succeeds; every entry read back comes from a line of the file (pwcache's
//! shards: the last record or tombstone of its key, as docs/FORMAT.md §3 defines them) and
//! round-trips as JSON; scan and get agree; compaction and reopening change nothing that can be
//! read; a record that was intact before the damaged region is still readable; a write after
//! the damage is readable after a reopen.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use pwcache::tier::Tier;
use pwcache::tier::jsonl::{JsonlTier, shard_file_name, shard_index};
use pwcache::{CacheEntry, ErrorKind, Secret, Timestamp};
use serde::Deserialize;
use serde_json::Value;
use tempfile::TempDir;

use super::entry::check_entry_round_trip;
use super::{assert_clean, now, tier_context};

/// How many records a damaged shard starts with, at most.
pub const MAX_RECORDS: usize = 32;

/// What can be read from a tier.
#[derive(Debug, Default, PartialEq)]
struct Readable {
    entries: BTreeMap<String, CacheEntry>,
    /// Records the tier holds but cannot decode (corrupt, or a credential the key cannot decrypt).
    undecodable: usize,
}

fn open(dir: &Path) -> JsonlTier {
    JsonlTier::open(dir, tier_context(dir))
        .unwrap_or_else(|e| panic!("open a shard directory: {e}"))
}

fn readable(tier: &JsonlTier) -> Readable {
    let mut out = Readable::default();
    tier.scan(&mut |record| match record {
        Ok(entry) => {
            let key = entry.key.clone();
            assert!(
                out.entries.insert(key.clone(), entry).is_none(),
                "scan returned {key:?} twice"
            );
        }
        Err(e) => {
            assert_clean("scan", &e, &[ErrorKind::Storage, ErrorKind::Crypto]);
            out.undecodable += 1;
        }
    })
    .unwrap_or_else(|e| panic!("scan: {e}"));
    out
}

/// The fields of a line that decide what the tier's index makes of it (docs/FORMAT.md §3):
/// a record has a non-empty `key` and an RFC 3339 `expires_at`, a tombstone is
/// `{"op":"delete","key":…}`; the sort fields must have their types when present.
#[derive(Deserialize)]
struct Head {
    #[serde(default)]
    op: Option<String>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    last_accessed: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    fetch_time: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    access_count: Option<i64>,
}

/// The last line about a key that the index takes.
#[derive(Debug)]
enum Last {
    /// A record, with its `proxy_url` when it is a string, and whether it is [`well_formed`]
    /// (then it must be read).
    Record(Option<String>, bool),
    Tombstone,
}

/// Whether a record line is one that must decode: every field of docs/FORMAT.md §3.3 present
/// (or, if optional, absent) with its type and bounds, no credential (whose token would need
/// the key), and no field twice.
fn well_formed(line: &[u8], object: &serde_json::Map<String, Value>) -> bool {
    let string = |name: &str| object.get(name).is_some_and(Value::is_string);
    let time = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .and_then(Timestamp::parse)
            .is_some()
    };
    let count = |v: Option<&Value>| v.and_then(Value::as_i64).is_some_and(|n| n >= 0);
    let required = ["fetch_time", "last_accessed", "expires_at"]
        .iter()
        .all(|n| time(object.get(*n)))
        && ["access_count", "ttl_seconds", "failure_count"]
            .iter()
            .all(|n| count(object.get(*n)))
        && string("key")
        && string("proxy_url")
        && string("source")
        && object.get("evicted_from_l1").is_some_and(Value::is_boolean)
        && object
            .get("health_status")
            .and_then(Value::as_str)
            .and_then(pwcache::HealthStatus::parse)
            .is_some();
    let optional = ["last_health_check", "next_check_time"]
        .iter()
        .all(|n| matches!(object.get(*n), None | Some(Value::Null)) || time(object.get(*n)))
        && [
            "consecutive_health_failures",
            "consecutive_health_successes",
            "recovery_attempt",
            "total_health_checks",
            "total_health_check_failures",
        ]
        .iter()
        .all(|n| object.get(*n).is_none() || count(object.get(*n)))
        && matches!(
            object.get("last_health_error"),
            None | Some(Value::Null | Value::String(_))
        )
        && ["username_encrypted", "password_encrypted"]
            .iter()
            .all(|n| matches!(object.get(*n), None | Some(Value::Null)));
    required && optional && distinct_fields(line)
}

/// Whether no field of the JSON object `line` appears twice (serde refuses a record that
/// repeats one; a JSON value keeps the last).
fn distinct_fields(line: &[u8]) -> bool {
    struct Distinct(bool);
    impl<'de> Deserialize<'de> for Distinct {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Fields;
            impl<'de> serde::de::Visitor<'de> for Fields {
                type Value = Distinct;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut map: A,
                ) -> Result<Distinct, A::Error> {
                    let mut seen = BTreeSet::new();
                    let mut distinct = true;
                    while let Some(name) = map.next_key::<String>()? {
                        map.next_value::<serde::de::IgnoredAny>()?;
                        distinct &= seen.insert(name);
                    }
                    Ok(Distinct(distinct))
                }
            }
            d.deserialize_map(Fields)
        }
    }
    serde_json::from_slice::<Distinct>(line).is_ok_and(|d| d.0)
}

/// Key → its last record or tombstone, from the complete (`\n`-terminated) lines of a shard.
fn last_lines(bytes: &[u8]) -> BTreeMap<String, Last> {
    let mut out = BTreeMap::new();
    let complete = bytes.rsplit_once_newline();
    for line in complete.split(|&b| b == b'\n') {
        // One JSON object per line; the head is read from the bytes, so a repeated field makes
        // the line corrupt as it does for the tier.
        let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(line) else {
            continue;
        };
        let Ok(head) = serde_json::from_slice::<Head>(line) else {
            continue;
        };
        let Some(key) = head.key.filter(|k| !k.is_empty()) else {
            continue;
        };
        match head.op.as_deref() {
            Some("delete") => {
                out.insert(key, Last::Tombstone);
            }
            Some(_) => {}
            None => {
                if head
                    .expires_at
                    .as_deref()
                    .and_then(Timestamp::parse)
                    .is_some()
                {
                    let url = object.get("proxy_url").and_then(Value::as_str);
                    let must_read = well_formed(line, &object);
                    out.insert(key, Last::Record(url.map(str::to_string), must_read));
                }
            }
        }
    }
    out
}

trait CompleteLines {
    /// The bytes up to and including the last `\n`, without that `\n`.
    fn rsplit_once_newline(&self) -> &[u8];
}

impl CompleteLines for [u8] {
    fn rsplit_once_newline(&self) -> &[u8] {
        match self.iter().rposition(|&b| b == b'\n') {
            Some(end) => &self[..end],
            None => &[],
        }
    }
}

/// Every `(key, proxy_url)` that a line of `bytes` (a proxywhirl shard) holds.
fn upstream_pairs(bytes: &[u8]) -> BTreeSet<(String, String)> {
    bytes
        .split(|&b| b == b'\n')
        .filter_map(|line| match serde_json::from_slice::<Value>(line) {
            Ok(Value::Object(o)) => Some((
                o.get("key")?.as_str()?.to_string(),
                o.get("proxy_url")?.as_str()?.to_string(),
            )),
            _ => None,
        })
        .collect()
}

/// Shard directories under one temp dir, one fresh directory per check.
pub struct ShardBench {
    root: TempDir,
    next: AtomicU64,
    /// Keys whose shard is 0: the records of damaged shards and the probe written after damage.
    shard0_keys: Vec<String>,
}

impl Default for ShardBench {
    fn default() -> Self {
        let shard0_keys = (0..)
            .map(|i| format!("record-{i:06}-in-shard-0"))
            .filter(|k| shard_index(k) == 0)
            .take(MAX_RECORDS + 1)
            .collect();
        ShardBench {
            root: tempfile::tempdir_in(super::scratch_root()).expect("a temp dir"),
            next: AtomicU64::new(0),
            shard0_keys,
        }
    }
}

impl ShardBench {
    /// The fuzz target's entry: the first byte picks the case, the rest is its input.
    pub fn check_bytes(&self, data: &[u8]) {
        let Some((&case, rest)) = data.split_first() else {
            return self.check_ours(data);
        };
        match case % 3 {
            0 => self.check_ours(rest),
            1 => self.check_upstream(rest),
            _ => {
                let records = usize::from(rest.first().copied().unwrap_or(0)) % MAX_RECORDS + 1;
                let cut = rest
                    .get(1..3)
                    .map_or(0, |b| u16::from_le_bytes([b[0], b[1]]));
                self.check_damaged(records, usize::from(cut), rest.get(3..).unwrap_or(&[]));
            }
        }
    }

    fn fresh_dir(&self) -> PathBuf {
        let dir = self
            .root
            .path()
            .join(self.next.fetch_add(1, Ordering::Relaxed).to_string());
        fs::create_dir(&dir).expect("a shard directory");
        dir
    }

    fn probe(&self) -> CacheEntry {
        let key = &self.shard0_keys[MAX_RECORDS];
        let mut probe = CacheEntry::new(key.as_str(), "http://10.9.9.9:9", "probe", now(), 600);
        probe.password = Secret::new("probe-password");
        probe
    }

    /// Any bytes as pwcache's shard 0.
    pub fn check_ours(&self, bytes: &[u8]) {
        let dir = self.fresh_dir();
        fs::write(dir.join(shard_file_name(0)), bytes).expect("write the shard");
        let tier = open(&dir);
        let before = readable(&tier);
        let last = last_lines(bytes);
        for (key, entry) in &before.entries {
            match last.get(key) {
                Some(Last::Record(url, _)) => assert_eq!(
                    Some(&entry.proxy_url),
                    url.as_ref(),
                    "{key:?} read with a proxy_url its last record does not hold"
                ),
                other => panic!("{key:?} read, yet its last line is {other:?}"),
            }
        }
        for (key, last) in &last {
            if let Last::Record(url, true) = last {
                let read = before.entries.get(key).map(|e| &e.proxy_url);
                assert_eq!(read, url.as_ref(), "{key:?}: its last record is not read");
            }
        }
        let records = last
            .values()
            .filter(|l| matches!(l, Last::Record(..)))
            .count();
        assert_eq!(
            before.entries.len() + before.undecodable,
            records,
            "records held: the keys whose last line is a record"
        );
        // A key whose line sits in another shard's file than its own is found by scan, not get.
        let own = last.keys().filter(|k| shard_index(k) == 0);
        self.compact_and_reopen(&dir, tier, before, own);
    }

    /// Any bytes as a proxywhirl shard (`shard_00.jsonl`), imported at open.
    pub fn check_upstream(&self, bytes: &[u8]) {
        let dir = self.fresh_dir();
        fs::write(dir.join("shard_00.jsonl"), bytes).expect("write the shard");
        let tier = open(&dir);
        assert!(
            dir.join("shard_00.jsonl.imported").is_file(),
            "an imported shard is renamed"
        );
        let before = readable(&tier);
        let pairs = upstream_pairs(bytes);
        for (key, entry) in &before.entries {
            assert!(
                pairs.contains(&(key.clone(), entry.proxy_url.clone())),
                "{key:?} imported with a proxy_url no line of its key holds"
            );
        }
        let keys: BTreeSet<String> = pairs.into_iter().map(|(k, _)| k).collect();
        self.compact_and_reopen(&dir, tier, before, keys.iter());
    }

    /// `records` valid records in shard 0, the file cut at `cut` (modulo its length + 1), then
    /// `tail` appended.
    pub fn check_damaged(&self, records: usize, cut: usize, tail: &[u8]) {
        let dir = self.fresh_dir();
        let entries: Vec<CacheEntry> = self.shard0_keys[..records.min(MAX_RECORDS)]
            .iter()
            .enumerate()
            .map(|(i, key)| {
                let url = format!("http://10.0.{}.{}:8080", i / 200, i % 200);
                let mut e = CacheEntry::new(key.as_str(), url, "damage", now(), 3600 + i as i64);
                if i % 3 == 0 {
                    e.username = Secret::new(format!("user{i}"));
                }
                e
            })
            .collect();
        open(&dir).put_many(&entries).expect("write the records");
        let path = dir.join(shard_file_name(0));
        let mut bytes = fs::read(&path).expect("read the shard");
        let cut = cut % (bytes.len() + 1);
        // A record is intact when its line, `\n` included, lies before the cut.
        let ends: Vec<usize> = (0..bytes.len()).filter(|&i| bytes[i] == b'\n').collect();
        assert_eq!(ends.len(), entries.len(), "one line per record");
        bytes.truncate(cut);
        bytes.extend_from_slice(tail);
        fs::write(&path, &bytes).expect("damage the shard");
        let intact: BTreeMap<String, CacheEntry> = entries
            .into_iter()
            .zip(ends)
            .filter(|(e, end)| {
                // A tail that names the key may hold a newer line about it: not checked.
                *end < cut && !contains(tail, e.key.as_bytes())
            })
            .map(|(e, _)| (e.key.clone(), e))
            .collect();
        let tier = open(&dir);
        for (key, entry) in &intact {
            let got = tier.get(key).unwrap_or_else(|e| panic!("get {key:?}: {e}"));
            assert_eq!(
                got.as_ref(),
                Some(entry),
                "an intact record before the damage"
            );
        }
        let probe = self.probe();
        tier.put(&probe).expect("a put after the damage");
        drop(tier);
        let tier = open(&dir);
        for (key, entry) in intact.iter().chain([(&probe.key, &probe)]) {
            let got = tier.get(key).unwrap_or_else(|e| panic!("get {key:?}: {e}"));
            assert_eq!(
                got.as_ref(),
                Some(entry),
                "after a put on the damaged shard"
            );
        }
        drop(tier);
        fs::remove_dir_all(&dir).expect("remove the shard directory");
    }

    /// What `tier` reads (`before`) survives compaction, `get` of each of `keys` (keys in their
    /// own shard's file), reopening, and a put followed by a reopen.
    fn compact_and_reopen<'k>(
        &self,
        dir: &Path,
        tier: JsonlTier,
        before: Readable,
        keys: impl Iterator<Item = &'k String>,
    ) {
        before.entries.values().for_each(check_entry_round_trip);
        tier.compact().unwrap_or_else(|e| panic!("compact: {e}"));
        assert_eq!(readable(&tier), before, "compaction changed what is read");
        let mut lines = 0;
        for shard in 0..pwcache::tier::jsonl::SHARDS {
            let bytes = fs::read(dir.join(shard_file_name(shard))).expect("read a shard");
            assert!(
                bytes.is_empty() || bytes.ends_with(b"\n"),
                "a compacted shard ends in a partial line"
            );
            for line in bytes.rsplit_once_newline().split(|&b| b == b'\n') {
                if !bytes.is_empty() {
                    serde_json::from_slice::<Value>(line)
                        .unwrap_or_else(|e| panic!("a compacted line is not JSON: {e}"));
                    lines += 1;
                }
            }
        }
        assert_eq!(
            lines,
            before.entries.len() + before.undecodable,
            "lines after compaction"
        );
        for key in keys {
            match tier.get(key) {
                Ok(got) => assert_eq!(got.as_ref(), before.entries.get(key), "get {key:?}"),
                Err(e) => {
                    assert_clean("get", &e, &[ErrorKind::Crypto]);
                    assert!(!before.entries.contains_key(key), "get {key:?}: {e}");
                }
            }
        }
        let probe = self.probe();
        tier.put(&probe).expect("a put after reading the shard");
        drop(tier);
        let mut expected = before.entries;
        expected.insert(probe.key.clone(), probe);
        assert_eq!(
            readable(&open(dir)).entries,
            expected,
            "what is read after a put and a reopen"
        );
        fs::remove_dir_all(dir).expect("remove the shard directory");
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

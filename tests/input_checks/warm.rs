//! Warm files (`CacheManager::warm_from_file`) of each format, on a cache with L1, the JSONL L2
//! and the SQLite L3 under a temp dir.
//!
//! Must hold, for any bytes: the call returns counts or a clean error (`InvalidJson`, and only
//! for a `.json` file that is not a JSON array); the counts are what docs/FORMAT.md §7 says for
//! these rows; every row loaded is in the cache under its key with the `proxy_url`, source and
//! credentials its row said (the last row of a key wins), and nothing else is.
//!
//! The expected rows are worked out here from the rules of docs/FORMAT.md §7, independently of
//! `src/manager/warm.rs`.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::sync::Arc;

use pwcache::{CacheConfig, CacheManager, ErrorKind, ManualClock, WarmCounts, generate_cache_key};
use serde_json::Value;
use tempfile::TempDir;

use super::{KEY, assert_clean, now};

#[derive(Clone, Copy, Debug)]
pub enum WarmFormat {
    Json,
    Jsonl,
    Csv,
}

impl WarmFormat {
    fn extension(self) -> &'static str {
        match self {
            WarmFormat::Json => "json",
            WarmFormat::Jsonl => "jsonl",
            WarmFormat::Csv => "csv",
        }
    }
}

/// One row that must be loaded.
#[derive(Clone, Debug, PartialEq)]
struct Row {
    key: String,
    proxy_url: String,
    username: Option<String>,
    password: Option<String>,
    source: String,
}

/// What a warm of some bytes must do.
#[derive(Debug, Default)]
struct Expected {
    counts: WarmCounts,
    /// Key → the last row loaded under it.
    rows: BTreeMap<String, Row>,
}

impl Expected {
    fn load(&mut self, proxy_url: Option<String>, fields: [Option<String>; 4]) {
        let Some(proxy_url) = proxy_url.filter(|u| !u.is_empty()) else {
            self.counts.skipped += 1;
            return;
        };
        let [key, username, password, source] = fields;
        let credential = |c: Option<String>| c.filter(|t| !t.bytes().all(|b| b == b'*'));
        let row = Row {
            key: key.unwrap_or_else(|| generate_cache_key(&proxy_url)),
            proxy_url,
            username: credential(username),
            password: credential(password),
            source: source.unwrap_or_else(|| "warmed".into()),
        };
        self.counts.loaded += 1;
        self.rows.insert(row.key.clone(), row);
    }

    /// A JSON row: an object is read, anything else is skipped.
    fn value(&mut self, value: &Value) {
        let Value::Object(object) = value else {
            self.counts.skipped += 1;
            return;
        };
        // A string as it is, a number as its JSON text; empty strings and other types are absent.
        let text = |name: &str| match object.get(name) {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let proxy_url = match object.get("proxy_url") {
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        };
        self.load(
            proxy_url,
            [
                text("key"),
                text("username"),
                text("password"),
                text("source"),
            ],
        );
    }
}

fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// What warming `bytes` must give; `None` when the call must fail (`InvalidJson`).
fn expected(format: WarmFormat, bytes: &[u8]) -> Option<Expected> {
    let mut out = Expected::default();
    match format {
        WarmFormat::Json => {
            let Ok(Value::Array(items)) = serde_json::from_slice::<Value>(strip_bom(bytes)) else {
                return None;
            };
            items.iter().for_each(|item| out.value(item));
        }
        WarmFormat::Jsonl => {
            for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
                let line = if i == 0 { strip_bom(line) } else { line }.trim_ascii();
                if line.is_empty() {
                    continue;
                }
                match serde_json::from_slice::<Value>(line) {
                    Ok(value) => out.value(&value),
                    Err(_) => out.counts.failed += 1,
                }
            }
        }
        WarmFormat::Csv => {
            let mut reader = csv::ReaderBuilder::new()
                .flexible(true)
                .has_headers(true)
                .from_reader(bytes);
            let headers = reader.byte_headers().ok()?.clone();
            let column = |name: &str| {
                headers
                    .iter()
                    .position(|h| strip_bom(h).trim_ascii() == name.as_bytes())
            };
            let columns = ["proxy_url", "key", "username", "password", "source"].map(column);
            for record in reader.byte_records() {
                let Ok(record) = record else {
                    out.counts.failed += 1;
                    continue;
                };
                // A cell that is absent or empty is absent; one that is not UTF-8 fails the row.
                let cells: Option<Vec<Option<String>>> = columns
                    .iter()
                    .map(|c| match c.and_then(|i| record.get(i)) {
                        None | Some(b"") => Some(None),
                        Some(bytes) => String::from_utf8(bytes.to_vec()).ok().map(Some),
                    })
                    .collect();
                let Some(mut cells) = cells else {
                    out.counts.failed += 1;
                    continue;
                };
                let proxy_url = cells[0].take();
                out.load(
                    proxy_url,
                    [
                        cells[1].take(),
                        cells[2].take(),
                        cells[3].take(),
                        cells[4].take(),
                    ],
                );
            }
        }
    }
    Some(out)
}

/// A cache with its three tiers under a temp dir, emptied after each check.
pub struct WarmBench {
    dir: TempDir,
    cache: CacheManager,
    config: CacheConfig,
}

impl Default for WarmBench {
    fn default() -> Self {
        let dir = tempfile::tempdir_in(super::scratch_root()).expect("a temp dir");
        let config = CacheConfig {
            l2_cache_dir: dir.path().join("l2"),
            l3_database_path: dir.path().join("l3.db"),
            encryption_key: Some(KEY.to_string()),
            ..CacheConfig::default()
        };
        let clock = Arc::new(ManualClock::new(now()));
        let cache = CacheManager::open_with_clock(config.clone(), clock).expect("a cache");
        WarmBench { dir, cache, config }
    }
}

impl WarmBench {
    pub fn check(&self, format: WarmFormat, bytes: &[u8]) {
        let path: PathBuf = self
            .dir
            .path()
            .join(format!("input.{}", format.extension()));
        fs::write(&path, bytes).expect("write the warm file");
        let result = self.cache.warm_from_file(&path, None);
        let expected = expected(format, bytes);
        let held = match (result, expected) {
            (Err(e), None) => {
                assert_clean("warm", &e, &[ErrorKind::InvalidJson]);
                self.assert_holds(&BTreeMap::new())
            }
            (Ok(counts), Some(expected)) => {
                assert_eq!(counts, expected.counts, "warm {format:?} counts");
                self.assert_holds(&expected.rows)
            }
            (result, expected) => panic!(
                "warm {format:?}: returned {result:?}, expected {}",
                if expected.is_some() {
                    "counts"
                } else {
                    "an error"
                }
            ),
        };
        // Nothing else writes to this cache: `clear` removes exactly the keys the warm stored.
        let cleared = self.cache.clear().expect("clear after a warm");
        assert_eq!(cleared, held, "keys removed by clear after a warm");
    }

    /// The cache holds exactly `rows`: each under its key with what its row said, in every tier.
    /// Returns their number.
    fn assert_holds(&self, rows: &BTreeMap<String, Row>) -> u64 {
        let stats = self.cache.statistics();
        let n = rows.len() as u64;
        assert_eq!(stats.l2_stats.current_size, n, "entries in L2 after a warm");
        assert_eq!(stats.l3_stats.current_size, n, "entries in L3 after a warm");
        for (key, row) in rows {
            let entry = self
                .cache
                .get(key)
                .unwrap_or_else(|e| panic!("get {key:?} after a warm: {e}"))
                .unwrap_or_else(|| panic!("a warmed row is missing: {row:?}"));
            let secret = |s: &Option<pwcache::Secret>| s.as_ref().map(|s| s.expose().to_string());
            let got = Row {
                key: entry.key.clone(),
                proxy_url: entry.proxy_url.clone(),
                username: secret(&entry.username),
                password: secret(&entry.password),
                source: entry.source.clone(),
            };
            assert_eq!(&got, row, "a warmed entry is not what its row said");
            assert_eq!(entry.ttl_seconds, self.config.ttl_for_source(&row.source));
        }
        n
    }
}

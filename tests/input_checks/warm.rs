//! Warm files (`CacheManager::warm_from_file`) of each format, on a cache with L1, the JSONL L2
//! and the SQLite L3 under a temp dir.
//!
//! Must hold, for any bytes: the call returns a report or a clean error (`InvalidJson`, and
//! only for a `.json` file that is not a JSON array; `InvalidInput`, and only for a `.csv` file
//! with no header row or no `proxy_url` column); the counts are what docs/FORMAT.md §7 says for
//! these rows, and the rows listed as left out are the first 20 of them, at their line (item)
//! and with their outcome; every row loaded is in the cache under its key with the `proxy_url`
//! (without userinfo), source and credentials its row said (the last row of a key wins), and
//! nothing else is.
//!
//! The expected rows are worked out here from the rules of docs/FORMAT.md §7, independently of
//! `src/manager/warm.rs`; whether a `proxy_url` is a URL, and what its userinfo holds, is asked
//! of `ProxyUrl::parse` (tested on its own in `src/proxy_url.rs`).

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::sync::Arc;

use pwcache::proxy_url::ProxyUrl;
use pwcache::{
    CacheConfig, CacheManager, ErrorKind, ManualClock, RowOutcome, RowPlace, WARM_PROBLEMS_LISTED,
    WarmCounts, generate_cache_key,
};
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
    /// Every row left out, in file order.
    left_out: Vec<(RowPlace, RowOutcome)>,
    /// Key → the last row loaded under it.
    rows: BTreeMap<String, Row>,
}

impl Expected {
    fn left_out(&mut self, place: RowPlace, outcome: RowOutcome) {
        match outcome {
            RowOutcome::Skipped => self.counts.skipped += 1,
            RowOutcome::Failed => self.counts.failed += 1,
        }
        self.left_out.push((place, outcome));
    }

    fn load(&mut self, place: RowPlace, proxy_url: Option<String>, fields: [Option<String>; 4]) {
        let Some(text) = proxy_url.filter(|u| !u.is_empty()) else {
            return self.left_out(place, RowOutcome::Skipped);
        };
        let Ok(url) = ProxyUrl::parse(&text) else {
            return self.left_out(place, RowOutcome::Skipped);
        };
        let [key, username, password, source] = fields;
        let credential = |c: Option<String>| c.filter(|t| !t.bytes().all(|b| b == b'*'));
        // A credential in the URL and in its field: equal, or the row is skipped.
        let merge = |a: Option<String>, b: Option<String>| match (a, b) {
            (Some(a), Some(b)) if a != b => Err(()),
            (a, b) => Ok(a.or(b)),
        };
        let (Ok(username), Ok(password)) = (
            merge(url.username, credential(username)),
            merge(url.password, credential(password)),
        ) else {
            return self.left_out(place, RowOutcome::Skipped);
        };
        let row = Row {
            key: key.unwrap_or_else(|| generate_cache_key(text.trim())),
            proxy_url: url.url,
            username,
            password,
            source: source.unwrap_or_else(|| "warmed".into()),
        };
        self.counts.loaded += 1;
        self.rows.insert(row.key.clone(), row);
    }

    /// A JSON row: an object is read, anything else is skipped.
    fn value(&mut self, place: RowPlace, value: &Value) {
        let Value::Object(object) = value else {
            return self.left_out(place, RowOutcome::Skipped);
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
            place,
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

/// The lines of a file, numbered from 1, without `\n`, `\r\n` or the BOM of line 1. A file
/// ending in `\n` has no line after it.
fn lines(bytes: &[u8]) -> Vec<(u64, &[u8])> {
    let bytes = strip_bom(bytes);
    let mut out: Vec<(u64, &[u8])> = bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, line)| (i as u64 + 1, line.strip_suffix(b"\r").unwrap_or(line)))
        .collect();
    if bytes.ends_with(b"\n") || bytes.is_empty() {
        out.pop();
    }
    out
}

/// A CSV line as one record: `None` when it is not exactly one (an odd number of quotes, or a
/// carriage return that the CSV reader takes as a record end).
fn csv_line(line: &[u8]) -> Option<csv::ByteRecord> {
    if line.iter().filter(|&&b| b == b'"').count() % 2 == 1 {
        return None;
    }
    let mut records = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(line)
        .into_byte_records();
    let first = records.next()?.ok()?;
    records.next().is_none().then_some(first)
}

/// What warming `bytes` must give; `Err(kind)` when the call must fail.
fn expected(format: WarmFormat, bytes: &[u8]) -> Result<Expected, ErrorKind> {
    let mut out = Expected::default();
    match format {
        WarmFormat::Json => {
            let Ok(Value::Array(items)) = serde_json::from_slice::<Value>(strip_bom(bytes)) else {
                return Err(ErrorKind::InvalidJson);
            };
            for (i, item) in items.iter().enumerate() {
                out.value(RowPlace::Item(i as u64 + 1), item);
            }
        }
        WarmFormat::Jsonl => {
            for (number, line) in lines(bytes) {
                let line = line.trim_ascii();
                if line.is_empty() {
                    continue;
                }
                match serde_json::from_slice::<Value>(line) {
                    Ok(value) => out.value(RowPlace::Line(number), &value),
                    Err(_) => out.left_out(RowPlace::Line(number), RowOutcome::Failed),
                }
            }
        }
        WarmFormat::Csv => {
            let mut columns = None;
            for (number, line) in lines(bytes) {
                if line.trim_ascii().is_empty() {
                    continue;
                }
                let place = RowPlace::Line(number);
                let Some(columns) = &columns else {
                    let header = csv_line(line).ok_or(ErrorKind::InvalidInput)?;
                    let column = |name: &str| {
                        header
                            .iter()
                            .position(|h| h.trim_ascii() == name.as_bytes())
                    };
                    let found = ["proxy_url", "key", "username", "password", "source"].map(column);
                    if found[0].is_none() {
                        return Err(ErrorKind::InvalidInput);
                    }
                    columns = Some(found);
                    continue;
                };
                let Some(record) = csv_line(line) else {
                    out.left_out(place, RowOutcome::Failed);
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
                    out.left_out(place, RowOutcome::Failed);
                    continue;
                };
                let proxy_url = cells[0].take();
                out.load(
                    place,
                    proxy_url,
                    [
                        cells[1].take(),
                        cells[2].take(),
                        cells[3].take(),
                        cells[4].take(),
                    ],
                );
            }
            if columns.is_none() {
                return Err(ErrorKind::InvalidInput);
            }
        }
    }
    Ok(out)
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
            (Err(e), Err(kind)) => {
                assert_clean("warm", &e, &[kind]);
                self.assert_holds(&BTreeMap::new())
            }
            (Ok(report), Ok(expected)) => {
                assert_eq!(report.counts, expected.counts, "warm {format:?} counts");
                let listed: Vec<_> = report
                    .problems
                    .iter()
                    .map(|p| (p.place, p.outcome))
                    .collect();
                let first = expected.left_out.len().min(WARM_PROBLEMS_LISTED);
                assert_eq!(
                    listed,
                    expected.left_out[..first],
                    "warm {format:?} rows listed"
                );
                assert_eq!(
                    report.problems_not_listed as usize,
                    expected.left_out.len() - first,
                    "warm {format:?} rows not listed"
                );
                self.assert_holds(&expected.rows)
            }
            (result, expected) => panic!(
                "warm {format:?}: returned {result:?}, expected {:?}",
                expected.map(|e| e.counts)
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

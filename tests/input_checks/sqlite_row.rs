//! A SQLite row holding any values: a `cache_entries` row (L3), or a `l2_cache` row with or
//! without its `pwcache_l2_health` side row (the SQLite L2), written by another connection (as
//! proxywhirl, an older pwcache or a damaged disk may leave it) and read back through the tier's
//! `scan`, the cache's export and the cache's `get`.
//!
//! Must hold: the tier reads the row as an entry (with the row's key and `proxy_url`, which
//! round-trips as JSON), as corrupt, or as a credential it cannot decrypt, never failing the call;
//! the export writes the entry when it is live and counts the row as failed when it cannot be
//! read; `get` returns the entry, read once, when it is live, a crypto error for a credential
//! under another key (the row is kept), and nothing otherwise (a corrupt or expired row is then
//! gone); no tier is degraded by what a row holds.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pwcache::crypto::Crypto;
use pwcache::tier::Tier;
use pwcache::tier::sqlite::{ENTRY_COLUMNS, Schema, SqliteTier};
use pwcache::{
    CacheConfig, CacheEntry, CacheManager, EntryInput, ErrorKind, L2Backend, ManualClock, Secret,
};
use rusqlite::Connection;
use rusqlite::types::Value;
use tempfile::TempDir;

use super::entry::{check_entry_round_trip, entry_from_json};
use super::{KEY, assert_clean, now, tier_context};

/// One column's value as written.
#[derive(Clone, Debug)]
pub enum Cell {
    /// Bound as it is.
    Sql(Value),
    /// Bytes stored as TEXT whatever they are (`CAST(? AS TEXT)`), UTF-8 or not.
    RawText(Vec<u8>),
    /// A Fernet token of this text under the checks' key, as a BLOB (a credential that decrypts).
    Token(String),
}

/// A row to write: the 21 entry columns in [`ENTRY_COLUMNS`] order.
#[derive(Clone, Debug)]
pub struct SqlRow {
    pub schema: Schema,
    /// L2: also write the `pwcache_l2_health` row (the last 8 columns); without it they read as
    /// their defaults.
    pub side_row: bool,
    pub cells: Vec<Cell>,
}

/// What a well-formed row holds in each column (a live entry with a key and a URL).
pub fn default_cell(column: usize) -> Cell {
    let now = now().as_epoch_seconds();
    Cell::Sql(match ENTRY_COLUMNS[column] {
        "key" => Value::Text("sqlite-row".into()),
        "proxy_url" => Value::Text("http://10.0.0.1:8080".into()),
        "source" => Value::Text("row".into()),
        "fetch_time" | "last_accessed" => Value::Real(now),
        "ttl_seconds" => Value::Integer(3600),
        "expires_at" => Value::Real(now + 3600.0),
        "health_status" => Value::Text("unknown".into()),
        "username_encrypted" | "password_encrypted" | "last_health_check" | "next_check_time"
        | "last_health_error" => Value::Null,
        _ => Value::Integer(0),
    })
}

/// Reads bytes from the front of a fuzz input; past its end, zeros.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for b in &mut out {
            *b = self.u8().unwrap_or(0);
        }
        out
    }

    fn vec(&mut self) -> Vec<u8> {
        let len = usize::from(self.u8().unwrap_or(0) % 48);
        (0..len).map_while(|_| self.u8()).collect()
    }
}

impl SqlRow {
    /// A row from any bytes: the first byte picks the table (and the L2 side row), then one tag
    /// byte per column picks its value, followed by the value's bytes. Once the input runs out,
    /// the columns keep their well-formed values ([`default_cell`]).
    pub fn from_bytes(data: &[u8]) -> SqlRow {
        let mut input = Bytes(data);
        let head = input.u8().unwrap_or(0);
        let schema = if head & 1 == 0 {
            Schema::L3
        } else {
            Schema::L2
        };
        let cells = (0..ENTRY_COLUMNS.len())
            .map(|column| {
                let Some(tag) = input.u8() else {
                    return default_cell(column);
                };
                match tag % 10 {
                    1 => Cell::Sql(Value::Null),
                    2 => Cell::Sql(Value::Integer(i64::from(input.u8().unwrap_or(0) as i8))),
                    3 => Cell::Sql(Value::Integer(i64::from_le_bytes(input.array()))),
                    4 => Cell::Sql(Value::Real(f64::from_le_bytes(input.array()))),
                    // Epoch seconds around now: a datetime that may or may not have passed.
                    5 => Cell::Sql(Value::Real(
                        now().as_epoch_seconds()
                            + f64::from(i32::from_le_bytes(input.array())) / 16.0,
                    )),
                    6 => Cell::RawText(input.vec()),
                    7 => Cell::Sql(Value::Blob(input.vec())),
                    8 => Cell::Token(String::from_utf8_lossy(&input.vec()).into_owned()),
                    _ => default_cell(column),
                }
            })
            .collect();
        SqlRow {
            schema,
            side_row: head & 2 != 0,
            cells,
        }
    }
}

/// How the tier reads the row.
#[derive(Debug)]
enum Read {
    Entry(Box<CacheEntry>),
    Corrupt,
    ForeignCredential,
}

/// A cache on SQLite L2 and L3 under a temp dir (L1 off, so reads reach the rows), the tiers
/// opened on their own, and a connection to each database to write rows with.
pub struct SqliteBench {
    dir: TempDir,
    cache: CacheManager,
    crypto: Crypto,
    l2: (Connection, SqliteTier),
    l3: (Connection, SqliteTier),
}

fn tier(path: &Path, schema: Schema, dir: &Path) -> SqliteTier {
    SqliteTier::open(path, schema, tier_context(dir))
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

fn connect(path: &Path) -> Connection {
    let conn = Connection::open(path).expect("a connection");
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .expect("a busy timeout");
    conn
}

impl Default for SqliteBench {
    fn default() -> Self {
        let dir = tempfile::tempdir_in(super::scratch_root()).expect("a temp dir");
        let mut config = CacheConfig {
            l2_cache_dir: dir.path().join("l2"),
            l3_database_path: dir.path().join("l3.db"),
            l2_backend: L2Backend::Sqlite,
            encryption_key: Some(KEY.to_string()),
            ..CacheConfig::default()
        };
        config.l1.enabled = false;
        let clock = Arc::new(ManualClock::new(now()));
        let cache = CacheManager::open_with_clock(config.clone(), clock).expect("a cache");
        let l2_path = config.l2_cache_dir.join("l2_cache.db");
        let l3_path = config.l3_database_path.clone();
        SqliteBench {
            crypto: Crypto::new(Some(KEY), dir.path()).expect("the checks' key"),
            l2: (connect(&l2_path), tier(&l2_path, Schema::L2, dir.path())),
            l3: (connect(&l3_path), tier(&l3_path, Schema::L3, dir.path())),
            cache,
            dir,
        }
    }
}

impl SqliteBench {
    fn export_path(&self) -> PathBuf {
        self.dir.path().join("export.jsonl")
    }

    /// Writes `row` alone in its table; `false` when SQLite refuses it (a `NOT NULL` column
    /// given `NULL`): then there is nothing to read.
    fn write(&self, row: &SqlRow) -> bool {
        self.l2
            .0
            .execute_batch("DELETE FROM l2_cache; DELETE FROM pwcache_l2_health;")
            .expect("empty the L2 tables");
        self.l3
            .0
            .execute_batch("DELETE FROM cache_entries")
            .expect("empty the L3 table");
        // (value, stored as TEXT whatever its bytes) per column.
        let values: Vec<(Value, bool)> = row
            .cells
            .iter()
            .map(|cell| match cell {
                Cell::Sql(v) => (v.clone(), false),
                Cell::RawText(bytes) => (Value::Blob(bytes.clone()), true),
                Cell::Token(text) => {
                    let token = match Secret::new(text.as_str()) {
                        Some(secret) => self.crypto.encrypt(&secret).expect("encrypt"),
                        None => String::new(),
                    };
                    (Value::Blob(token.into_bytes()), false)
                }
            })
            .collect();
        let insert = |conn: &Connection, table: &str, columns: &[usize], stamps: bool| {
            let mut names: Vec<&str> = columns.iter().map(|&i| ENTRY_COLUMNS[i]).collect();
            let mut exprs: Vec<String> = columns
                .iter()
                .enumerate()
                .map(|(n, &i)| match values[i].1 {
                    true => format!("CAST(?{} AS TEXT)", n + 1),
                    false => format!("?{}", n + 1),
                })
                .collect();
            if stamps {
                let now = now().as_epoch_seconds();
                names.extend(["created_at", "updated_at"]);
                exprs.extend([now.to_string(), now.to_string()]);
            }
            let sql = format!(
                "INSERT INTO {table} ({}) VALUES ({})",
                names.join(", "),
                exprs.join(", ")
            );
            let params = columns.iter().map(|&i| &values[i].0);
            conn.execute(&sql, rusqlite::params_from_iter(params))
        };
        match row.schema {
            Schema::L3 => {
                let all: Vec<usize> = (0..ENTRY_COLUMNS.len()).collect();
                insert(&self.l3.0, "cache_entries", &all, true).is_ok()
            }
            Schema::L2 => {
                let main: Vec<usize> = (0..13).collect();
                if insert(&self.l2.0, "l2_cache", &main, false).is_err() {
                    return false;
                }
                if row.side_row {
                    // Refused (a NULL counter): the main row reads the defaults.
                    let side: Vec<usize> = std::iter::once(0).chain(13..21).collect();
                    let _ = insert(&self.l2.0, "pwcache_l2_health", &side, false);
                }
                true
            }
        }
    }

    fn rows(&self, schema: Schema) -> i64 {
        let (conn, table) = match schema {
            Schema::L2 => (&self.l2.0, "l2_cache"),
            Schema::L3 => (&self.l3.0, "cache_entries"),
        };
        conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .expect("count rows")
    }

    /// The row's key when it is TEXT in UTF-8.
    fn key_of(&self, schema: Schema) -> Option<String> {
        let (conn, table) = match schema {
            Schema::L2 => (&self.l2.0, "l2_cache"),
            Schema::L3 => (&self.l3.0, "cache_entries"),
        };
        let key: Value = conn
            .query_row(&format!("SELECT key FROM {table}"), [], |r| r.get(0))
            .ok()?;
        match key {
            Value::Text(k) => Some(k),
            _ => None,
        }
    }

    pub fn check_bytes(&self, data: &[u8]) {
        self.check(&SqlRow::from_bytes(data));
    }

    pub fn check(&self, row: &SqlRow) {
        if !self.write(row) {
            return;
        }
        let schema = row.schema;
        let tier = match schema {
            Schema::L2 => &self.l2.1,
            Schema::L3 => &self.l3.1,
        };
        // The tier's scan: one row, read one way or another, without failing.
        let mut reads = Vec::new();
        tier.scan(&mut |r| {
            reads.push(match r {
                Ok(entry) => Read::Entry(Box::new(entry)),
                Err(e) if e.kind() == ErrorKind::Crypto => Read::ForeignCredential,
                Err(e) => {
                    assert_clean("scan", &e, &[ErrorKind::Storage]);
                    Read::Corrupt
                }
            })
        })
        .unwrap_or_else(|e| panic!("scan a row: {e}"));
        assert_eq!(reads.len(), 1, "scan of one row: {reads:?}");
        let read = reads.pop().expect("one read");
        let live = match &read {
            Read::Entry(e) => {
                assert_eq!(Some(&e.key), self.key_of(schema).as_ref(), "the row's key");
                check_entry_round_trip(e);
                (!e.is_expired(now())).then_some(&**e)
            }
            _ => None,
        };

        // The export (a scan of every tier): the live entry, or a failed row.
        let export = self.export_path();
        let counts = self
            .cache
            .export_to_file(&export, true)
            .unwrap_or_else(|e| panic!("export: {e}"));
        let lines = fs::read_to_string(&export).expect("read the export");
        let exported: Vec<CacheEntry> = lines
            .lines()
            .map(|line| {
                let input = EntryInput::from_json(line).expect("an exported line parses");
                let key = input.key.expect("an exported line has its key");
                entry_from_json(&key, line)
            })
            .collect();
        assert_eq!(exported.len() as u64, counts.exported, "exported lines");
        assert_eq!(
            exported.first(),
            live,
            "the export holds the live entry alone"
        );
        let unreadable = matches!(read, Read::Corrupt | Read::ForeignCredential);
        assert_eq!(
            counts.failed,
            u64::from(unreadable),
            "rows the export failed"
        );

        // `get`: the live entry, read once; a corrupt or expired row is removed; a foreign
        // credential is a crypto error (no other tier holds the key) and the row is kept.
        if let Some(key) = self.key_of(schema).filter(|k| !k.is_empty()) {
            let got = self.cache.get(&key);
            match (live, &read, got) {
                (Some(entry), _, Ok(got)) => {
                    let mut expected = entry.clone();
                    expected.touch(now());
                    assert_eq!(got.as_ref(), Some(&expected), "get a live row");
                }
                (None, Read::ForeignCredential, Err(e)) => {
                    assert_clean("get", &e, &[ErrorKind::Crypto]);
                    assert_eq!(
                        self.rows(schema),
                        1,
                        "a row with a foreign credential is kept"
                    );
                }
                (None, Read::Entry(_) | Read::Corrupt, Ok(None)) => {
                    assert_eq!(self.rows(schema), 0, "rows after get ({read:?})");
                }
                (_, read, got) => panic!("get {key:?} of a row read as {read:?}: {got:?}"),
            }
        }
        let stats = self.cache.statistics();
        assert!(
            !stats.l2_degraded && !stats.l3_degraded,
            "a row degraded a tier: {read:?}"
        );
    }
}

//! What each lower tier holds, read from its files without the engine: the JSONL shards as
//! docs/FORMAT.md §3.5 tells a reader to, the SQLite tables with rusqlite. Every problem found on
//! the way (a line that does not parse, a failed `PRAGMA integrity_check`, a credential that does
//! not decrypt) is collected, never printed with a credential in it.

use std::collections::BTreeMap;
use std::path::Path;

use pwcache::crypto::Crypto;
use pwcache::tier::jsonl::{shard_file_name, shard_index};
use pwcache::{CacheConfig, L2Backend, Secret};
use rusqlite::{Connection, OpenFlags};
use serde_json::Value;

/// The JSONL tier's number of shard files (docs/FORMAT.md §3.1).
pub const SHARDS: usize = 16;

/// The fields of a stored entry that the tests compare.
#[derive(Clone, Debug, PartialEq)]
pub struct Held {
    pub proxy_url: String,
    pub password: Option<Secret>,
    pub failure_count: i64,
    pub access_count: i64,
    pub evicted_from_l1: bool,
}

/// What one tier holds, and what was wrong with its files.
#[derive(Default)]
pub struct TierContents {
    pub entries: BTreeMap<String, Held>,
    pub problems: Vec<String>,
    /// JSONL: shards that end in an unfinished line (cut by a crash; the next open removes it).
    pub torn_tails: u64,
    /// JSONL: complete lines read; SQLite: rows read.
    pub records: u64,
}

/// The credentials' decrypter for the files of `config`.
pub fn crypto_for(config: &CacheConfig) -> Crypto {
    Crypto::new(config.encryption_key.as_deref(), &config.l2_cache_dir).expect("the test key")
}

/// L2 of `config`, whichever its backend.
pub fn read_l2(config: &CacheConfig) -> TierContents {
    let crypto = crypto_for(config);
    match config.l2_backend {
        L2Backend::Jsonl => read_jsonl(&config.l2_cache_dir, &crypto),
        L2Backend::Sqlite => read_sqlite(
            &config.l2_cache_dir.join("l2_cache.db"),
            "l2_cache",
            &crypto,
        ),
    }
}

/// L3 of `config`.
pub fn read_l3(config: &CacheConfig) -> TierContents {
    read_sqlite(
        &config.l3_database_path,
        "cache_entries",
        &crypto_for(config),
    )
}

/// The rows of `table` in the database at `path` (none when the file does not exist), after
/// `PRAGMA integrity_check`.
pub fn read_sqlite(path: &Path, table: &str, crypto: &Crypto) -> TierContents {
    let mut out = TierContents::default();
    if !path.exists() {
        return out;
    }
    let name = path.display();
    // Read-write: the first connection after a crash replays or discards the WAL.
    let conn = match Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    ) {
        Ok(conn) => conn,
        Err(e) => {
            out.problems.push(format!("{name}: cannot open: {e}"));
            return out;
        }
    };
    let integrity: Vec<String> = match conn.prepare("PRAGMA integrity_check").and_then(|mut s| {
        s.query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()
    }) {
        Ok(lines) => lines,
        Err(e) => vec![format!("integrity_check failed: {e}")],
    };
    if integrity != ["ok"] {
        out.problems
            .push(format!("{name}: PRAGMA integrity_check: {integrity:?}"));
    }
    let sql = format!(
        "SELECT key, proxy_url, password_encrypted, failure_count, access_count, \
         evicted_from_l1 FROM {table}"
    );
    let rows = conn.prepare(&sql).and_then(|mut s| {
        s.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<Vec<u8>>>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()
    });
    let rows = match rows {
        Ok(rows) => rows,
        Err(e) => {
            out.problems
                .push(format!("{name}: cannot read {table}: {e}"));
            return out;
        }
    };
    for (key, proxy_url, token, failure_count, access_count, evicted) in rows {
        out.records += 1;
        let token = token.map(|bytes| String::from_utf8(bytes).unwrap_or_default());
        let password = match decrypt(crypto, token.as_deref()) {
            Ok(password) => password,
            Err(problem) => {
                out.problems.push(format!("{name}: key {key}: {problem}"));
                continue;
            }
        };
        out.entries.insert(
            key,
            Held {
                proxy_url,
                password,
                failure_count,
                access_count,
                evicted_from_l1: evicted != 0,
            },
        );
    }
    out
}

/// The live records of the 16 shards in `dir` (docs/FORMAT.md §3.5), checking that every
/// complete line is a record or a tombstone of a key of that shard.
pub fn read_jsonl(dir: &Path, crypto: &Crypto) -> TierContents {
    let mut out = TierContents::default();
    for shard in 0..SHARDS {
        let path = dir.join(shard_file_name(shard));
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        if complete < bytes.len() {
            out.torn_tails += 1;
        }
        let file = shard_file_name(shard);
        let lines = bytes[..complete]
            .strip_suffix(b"\n")
            .map(|body| body.split(|&b| b == b'\n'));
        for (number, line) in lines.into_iter().flatten().enumerate() {
            out.records += 1;
            let place = format!("{file} line {}", number + 1);
            match parse_line(line, crypto) {
                Ok((key, _)) if shard_index(&key) != shard => {
                    out.problems.push(format!(
                        "{place}: key {key} belongs in shard {}",
                        shard_index(&key)
                    ));
                }
                Ok((key, Some(held))) => {
                    out.entries.insert(key, held);
                }
                Ok((key, None)) => {
                    out.entries.remove(&key);
                }
                Err(problem) => out.problems.push(format!("{place}: {problem}")),
            }
        }
    }
    out
}

/// A complete shard line: its key, and the record (`None` for a tombstone).
fn parse_line(line: &[u8], crypto: &Crypto) -> Result<(String, Option<Held>), String> {
    let value: Value = serde_json::from_slice(line)
        .map_err(|e| format!("not JSON ({e}), {} bytes", line.len()))?;
    let object = value.as_object().ok_or("not a JSON object")?;
    let key = object
        .get("key")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        .ok_or("no non-empty string `key`")?
        .to_string();
    match object.get("op") {
        Some(Value::String(op)) if op == "delete" => return Ok((key, None)),
        None | Some(Value::Null) => {}
        Some(other) => return Err(format!("key {key}: unknown op {other}")),
    }
    let text = |field: &str| {
        object
            .get(field)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("key {key}: no string `{field}`"))
    };
    let integer = |field: &str| {
        object
            .get(field)
            .and_then(Value::as_i64)
            .filter(|n| *n >= 0)
            .ok_or_else(|| format!("key {key}: no integer >= 0 `{field}`"))
    };
    let proxy_url = text("proxy_url")?.to_string();
    for field in [
        "source",
        "fetch_time",
        "last_accessed",
        "expires_at",
        "health_status",
    ] {
        text(field)?;
    }
    let failure_count = integer("failure_count")?;
    let access_count = integer("access_count")?;
    integer("ttl_seconds")?;
    let evicted_from_l1 = object
        .get("evicted_from_l1")
        .and_then(Value::as_bool)
        .ok_or_else(|| format!("key {key}: no boolean `evicted_from_l1`"))?;
    let token = match object.get("password_encrypted") {
        None => None,
        Some(Value::String(token)) => Some(token.as_str()),
        Some(_) => return Err(format!("key {key}: `password_encrypted` is not a string")),
    };
    let password = decrypt(crypto, token).map_err(|p| format!("key {key}: {p}"))?;
    Ok((
        key,
        Some(Held {
            proxy_url,
            password,
            failure_count,
            access_count,
            evicted_from_l1,
        }),
    ))
}

fn decrypt(crypto: &Crypto, token: Option<&str>) -> Result<Option<Secret>, String> {
    match token {
        None => Ok(None),
        Some(token) => crypto
            .decrypt(token)
            .map_err(|_| "the password token does not decrypt".to_string()),
    }
}

/// Temporary files (`.<name>.<pid>.<n>.tmp`) left in `dir`, by name.
pub fn temporary_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.starts_with('.') && name.ends_with(".tmp"))
                .collect()
        })
        .unwrap_or_default()
}

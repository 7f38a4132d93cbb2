//! L2 as JSON Lines: append-only shard files with tombstones and compaction.
//!
//! # Files
//!
//! Everything lives in one directory (created 0700, parents too); every file is 0600.
//!
//! - `pwcache_l2_NN.jsonl`, `NN` = `00`..`15`: the 16 shards. A key's shard is the 64-bit FNV-1a
//!   hash of its UTF-8 bytes, modulo 16 ([`shard_index`]).
//! - `pwcache_l2_NN.lock`: an empty lock file per shard (see *Sharing* below).
//! - `pwcache_l2_import.lock`: taken while upstream shards are imported.
//! - `shard_NN.jsonl.imported`: upstream proxywhirl shards, once imported (see *Upstream*).
//!
//! # Format
//!
//! One JSON object per line, each line ending in `\n`, UTF-8. A line is either a **record** or a
//! **tombstone**; the last line about a key wins.
//!
//! A record holds one entry, fields in this order (the names and order of proxywhirl's shard
//! lines):
//!
//! ```text
//! {"key":"84d7754142f9018a","proxy_url":"socks5://proxy0.example.net:1080","source":"fetched",
//!  "fetch_time":"2026-11-24T02:08:54.123456+00:00","last_accessed":"…","access_count":0,
//!  "ttl_seconds":3600,"expires_at":"2099-01-01T00:00:00.000000+00:00","health_status":"unknown",
//!  "failure_count":0,"evicted_from_l1":false,"last_health_check":null,
//!  "consecutive_health_failures":0,"consecutive_health_successes":0,"recovery_attempt":0,
//!  "next_check_time":null,"last_health_error":null,"total_health_checks":0,
//!  "total_health_check_failures":0,"username_encrypted":"gAAAAAB…","password_encrypted":"gAAAAAB…"}
//! ```
//! (shown wrapped; a record is one line).
//!
//! - Datetimes are RFC 3339 in UTC with six fractional digits and `+00:00`; optional ones are
//!   `null`. Readers accept any RFC 3339 offset, and a datetime without one as UTC.
//! - `health_status` is one of `unknown`, `healthy`, `degraded`, `unhealthy`, `dead`.
//! - `username_encrypted` / `password_encrypted` are the Fernet token text (URL-safe base64, as
//!   Python's `cryptography.fernet` writes it), omitted when there is no credential. Credentials
//!   are never written in plain text. (Upstream stores the lowercase hex of that text instead.)
//! - Readers ignore unknown fields; the health-monitoring fields (`last_health_check` through
//!   `total_health_check_failures`) default to null / 0 when missing.
//!
//! A tombstone removes a key: `{"op":"delete","key":"84d7754142f9018a"}`.
//!
//! A blank line is ignored. A line that is not valid JSON, or not a record or a tombstone, is
//! corrupt: it is counted once in `evictions_corruption` by each handle that reads it, ignored, and
//! dropped at the next compaction. A final line without `\n` is an unfinished write: it is not
//! read, and the next open cuts it away (counted as one corrupt record). A writer that finds such a
//! remnant at the end of a shard starts its own batch with `\n`, so the remnant never swallows a
//! complete record.
//!
//! # Writes and compaction
//!
//! `put`, `delete`, `remove_expired` and evictions append lines; a batch ([`Tier::put_many`]) is one
//! `write(2)` per shard. A shard is compacted when its dead bytes (superseded records, tombstones,
//! corrupt and blank lines) exceed its live bytes and the file is larger than
//! [`COMPACTION_MIN_BYTES`]: the live records are copied, in file order, to a temp file beside it,
//! which is renamed over the shard. Compaction costs the size of the live data, which the dead
//! bytes written since the last compaction have already paid for: amortised O(1) per write.
//!
//! With [`Durability::Full`] every append batch is `fsync`ed (`fdatasync`) before the call
//! returns, as are compacted files and the directory after creating or renaming files. With
//! [`Durability::Normal`] a write is a plain `write(2)`, which survives a process crash.
//!
//! # Sharing
//!
//! Several handles, in one process or several, may use one directory. Each handle keeps an index
//! (key → shard, offset, length, `expires_at`), and before each operation on a shard it checks the
//! shard file: when it grew, the new lines are read into the index; when it is another file
//! (another handle compacted or cleared it), the shard is read again. Every writer holds an
//! exclusive `flock` on the shard's lock file: an appender makes sure that the file it appends to
//! is the one at the path, and knows where its lines land (at the length it read); compaction,
//! `clear` and the repair at open replace the file under the same lock. Within a handle, each
//! shard has a mutex.
//!
//! # Capacity
//!
//! With `max_entries`, the handle keeps its keys in the order of the eviction policy
//! ([`EvictionOrder`]): a `get` hit is a use, a put of a new key an insertion, a put of a known
//! key a use (so are records that other handles append). After a `put_many` leaves more keys than
//! `max_entries`, the victims are tombstoned and counted in `evictions_lru`. The bound is enforced
//! on this handle's view of the shards, after its own writes; other handles' writes can take the
//! files above it until this handle next writes. When the index is built at open, keys are ordered
//! by `last_accessed` (LRU), by `access_count` then `last_accessed` (LFU: use counts themselves
//! start afresh), or by `fetch_time` (FIFO); ties in file order.
//!
//! # Upstream
//!
//! At open, proxywhirl shards (`shard_NN.jsonl`) found in the directory are imported as one
//! `put_many` and renamed `shard_NN.jsonl.imported`. Their credentials (hex of the Fernet token
//! text, or plain `username` / `password` fields) are carried over as token text without being
//! decrypted, so a wrong key loses nothing. Lines that cannot be read are counted as corrupt and
//! skipped.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};
use serde::{Deserialize, Serialize};
use std::hash::Hasher;

use crate::config::{Durability, EvictionPolicy};
use crate::crypto::Crypto;
use crate::entry::{CacheEntry, HealthStatus};
use crate::error::{Error, Result};
use crate::fast_hash::{FastMap, FastSet};
use crate::fsutil;
use crate::stats::Counter;
use crate::tier::order::{EvictionOrder, Handle};
use crate::tier::{Failures, Tier, TierContext, Usage, Version};
use crate::time::Timestamp;

/// The number of shard files.
pub const SHARDS: usize = 16;

/// A shard smaller than this is never compacted.
pub const COMPACTION_MIN_BYTES: u64 = 256 * 1024;

const IMPORT_LOCK_NAME: &str = "pwcache_l2_import.lock";

/// The shard of `key`: the 64-bit FNV-1a hash of its UTF-8 bytes, modulo 16. (SHA-256 was used
/// first; in software it was a fifth of the cost of writing a record.)
pub fn shard_index(key: &str) -> usize {
    let mut hasher = fnv::FnvHasher::default();
    hasher.write(key.as_bytes());
    (hasher.finish() % SHARDS as u64) as usize
}

/// `pwcache_l2_NN.jsonl`.
pub fn shard_file_name(shard: usize) -> String {
    format!("pwcache_l2_{shard:02}.jsonl")
}

fn lock_file_name(shard: usize) -> String {
    format!("pwcache_l2_{shard:02}.lock")
}

// ---------------------------------------------------------------------------------------------
// Lines

/// A record line, as written and as read (upstream's field names and order).
#[derive(Serialize, Deserialize)]
struct Record {
    key: String,
    proxy_url: String,
    source: String,
    fetch_time: String,
    last_accessed: String,
    access_count: i64,
    ttl_seconds: i64,
    expires_at: String,
    health_status: String,
    failure_count: i64,
    evicted_from_l1: bool,
    #[serde(default)]
    last_health_check: Option<String>,
    #[serde(default)]
    consecutive_health_failures: i64,
    #[serde(default)]
    consecutive_health_successes: i64,
    #[serde(default)]
    recovery_attempt: i64,
    #[serde(default)]
    next_check_time: Option<String>,
    #[serde(default)]
    last_health_error: Option<String>,
    #[serde(default)]
    total_health_checks: i64,
    #[serde(default)]
    total_health_check_failures: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    username_encrypted: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    password_encrypted: Option<String>,
}

#[derive(Serialize)]
struct Tombstone<'a> {
    op: &'static str,
    key: &'a str,
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

/// Where a key sits at open, to order it for eviction.
#[derive(Clone, Copy, Default)]
struct Meta {
    last_accessed: Option<Timestamp>,
    fetch_time: Option<Timestamp>,
    access_count: i64,
}

enum Line {
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
fn is_object_text(bytes: &[u8]) -> bool {
    bytes.trim_ascii_start().first() == Some(&b'{') && std::str::from_utf8(bytes).is_ok()
}

fn parse_line(bytes: &[u8]) -> Line {
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
fn for_each_line(buf: &[u8], base: u64, mut f: impl FnMut(u64, &[u8])) -> usize {
    let mut start = 0;
    while let Some(nl) = buf[start..].iter().position(|&b| b == b'\n') {
        f(base + start as u64, &buf[start..start + nl]);
        start += nl + 1;
    }
    start
}

fn encode_entry(entry: &CacheEntry, crypto: &Crypto) -> Result<Record> {
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
enum DecodeError {
    /// The record is damaged: drop it.
    Corrupt(&'static str),
    /// A credential did not decrypt (wrong key): keep the record.
    Crypto(Error),
}

fn decode_record(
    bytes: &[u8],
    expected_key: Option<&str>,
    crypto: &Crypto,
) -> std::result::Result<CacheEntry, DecodeError> {
    use DecodeError::Corrupt;
    let rec: Record = serde_json::from_slice(bytes).map_err(|_| Corrupt("not a record"))?;
    if expected_key.is_some_and(|k| k != rec.key) {
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

/// An upstream (proxywhirl) shard line as one of our records; `None` when it cannot be read.
fn upstream_record(line: &[u8], crypto: &Crypto) -> Option<Record> {
    #[derive(Deserialize)]
    struct Plain {
        #[serde(default)]
        username: Option<String>,
        #[serde(default)]
        password: Option<String>,
    }
    if !is_object_text(line) {
        return None;
    }
    let mut rec: Record = serde_json::from_slice(line).ok()?;
    if rec.key.is_empty() {
        return None;
    }
    let norm = |text: &mut String| -> Option<()> {
        *text = Timestamp::parse(text)?.to_rfc3339();
        Some(())
    };
    norm(&mut rec.fetch_time)?;
    norm(&mut rec.last_accessed)?;
    norm(&mut rec.expires_at)?;
    if let Some(t) = rec.last_health_check.as_mut() {
        norm(t)?;
    }
    if let Some(t) = rec.next_check_time.as_mut() {
        norm(t)?;
    }
    HealthStatus::parse(&rec.health_status)?;
    let unhex = |field: &mut Option<String>| -> Option<()> {
        if let Some(hex_text) = field.take() {
            let token = String::from_utf8(hex::decode(hex_text.trim()).ok()?).ok()?;
            *field = (!token.is_empty()).then_some(token);
        }
        Some(())
    };
    unhex(&mut rec.username_encrypted)?;
    unhex(&mut rec.password_encrypted)?;
    if rec.username_encrypted.is_none() || rec.password_encrypted.is_none() {
        let plain: Plain = serde_json::from_slice(line).ok()?;
        let encrypt = |value: Option<String>| -> Option<Option<String>> {
            match value.and_then(crate::entry::Secret::new) {
                None => Some(None),
                Some(secret) => match crypto.encrypt(&secret) {
                    Ok(token) => Some(Some(token)),
                    Err(e) => {
                        log::warn!("jsonl L2: cannot encrypt an upstream credential: {e}");
                        None
                    }
                },
            }
        };
        if rec.username_encrypted.is_none() {
            rec.username_encrypted = encrypt(plain.username)?;
        }
        if rec.password_encrypted.is_none() {
            rec.password_encrypted = encrypt(plain.password)?;
        }
    }
    Some(rec)
}

// ---------------------------------------------------------------------------------------------
// Shards

struct Slot {
    offset: u64,
    /// Without the `\n`.
    len: u64,
    expires_at: Timestamp,
    handle: Handle,
}

struct ShardState {
    id: usize,
    path: PathBuf,
    file: File,
    dev: u64,
    inode: u64,
    /// Bytes read into the index: always the end of a complete line.
    scanned: u64,
    /// The file's length when last looked at (by `refresh`): where an append under the lock lands.
    len: u64,
    /// Bytes of the live records, their `\n` included.
    live_bytes: u64,
    map: FastMap<Arc<str>, Slot>,
}

struct Shard {
    lock: File,
    st: ShardState,
}

/// An `flock` held on a shard's lock file until dropped.
struct FileLock<'a>(&'a File);

impl<'a> FileLock<'a> {
    fn exclusive(file: &'a File, path: &Path) -> Result<Self> {
        file.lock().map_err(|e| Error::io("cannot lock", path, e))?;
        Ok(FileLock(file))
    }
}

impl Drop for FileLock<'_> {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// The last record of a key found in a shard file.
struct Found {
    offset: u64,
    len: u64,
    expires_at: Timestamp,
    meta: Meta,
    /// The line's number in the file.
    position: u64,
}

/// The complete lines of a shard file, folded by key (last line wins).
struct Loaded {
    file: File,
    dev: u64,
    inode: u64,
    file_len: u64,
    complete_len: u64,
    /// key → (offset, len, expires_at, meta, position in file)
    records: FastMap<Arc<str>, Found>,
    corrupt: u64,
}

fn read_all(file: &File, path: &Path) -> Result<Vec<u8>> {
    let len = file
        .metadata()
        .map_err(|e| Error::io("cannot stat", path, e))?
        .len();
    let mut buf = vec![0u8; usize::try_from(len).unwrap_or(usize::MAX)];
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("cannot read", path, e)),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

fn load_shard(path: &Path) -> Result<Loaded> {
    let file = fsutil::open_private_append(path)?;
    let meta = file
        .metadata()
        .map_err(|e| Error::io("cannot stat", path, e))?;
    let buf = read_all(&file, path)?;
    let mut records = FastMap::default();
    let mut corrupt = 0;
    let mut position = 0u64;
    let complete = for_each_line(&buf, 0, |offset, line| {
        position += 1;
        match parse_line(line) {
            Line::Put {
                key,
                expires_at,
                meta,
            } => {
                records.insert(
                    Arc::from(key),
                    Found {
                        offset,
                        len: line.len() as u64,
                        expires_at,
                        meta,
                        position,
                    },
                );
            }
            Line::Delete { key } => {
                records.remove(key.as_str());
            }
            Line::Blank => {}
            Line::Corrupt => corrupt += 1,
        }
    });
    Ok(Loaded {
        file,
        dev: meta.dev(),
        inode: meta.ino(),
        file_len: buf.len() as u64,
        complete_len: complete as u64,
        records,
        corrupt,
    })
}

/// One line to append.
enum Op {
    Put {
        key: Arc<str>,
        expires_at: Timestamp,
        line: Vec<u8>,
    },
    /// A tombstone; with `only_if_present`, skipped when the key is not (or no longer) stored.
    Delete {
        key: Arc<str>,
        only_if_present: bool,
    },
}

/// What an append did to the index.
#[derive(Default)]
struct Applied {
    /// Keys that `Put` ops added (they were not stored before).
    inserted: Vec<Arc<str>>,
    /// Keys that `Delete` ops removed.
    removed: Vec<Arc<str>>,
}

// ---------------------------------------------------------------------------------------------
// The tier

/// L2 as JSON Lines. See the module docs for the format and the sharing rules.
pub struct JsonlTier {
    dir: PathBuf,
    ctx: TierContext,
    shards: Vec<Mutex<Shard>>,
    /// Every key of this handle's index, in eviction order. Taken after a shard's mutex, never
    /// before one, and never held across I/O.
    order: Mutex<EvictionOrder<Arc<str>>>,
}

impl JsonlTier {
    /// Opens (creating as needed) the tier in `dir`: repairs torn shard tails, builds the index,
    /// and imports upstream shards found there.
    pub fn open(dir: &Path, ctx: TierContext) -> Result<JsonlTier> {
        fsutil::create_private_dir_all(dir)?;
        let mut shards = Vec::with_capacity(SHARDS);
        let mut loaded_all = Vec::with_capacity(SHARDS);
        for id in 0..SHARDS {
            let lock_path = dir.join(lock_file_name(id));
            let lock = fsutil::open_private_append(&lock_path)?;
            let path = dir.join(shard_file_name(id));
            let mut loaded = {
                let _x = FileLock::exclusive(&lock, &lock_path)?;
                let loaded = load_shard(&path)?;
                if loaded.file_len > loaded.complete_len {
                    log::warn!(
                        "jsonl L2: {} ends in an unfinished line ({} bytes); cut away",
                        path.display(),
                        loaded.file_len - loaded.complete_len
                    );
                    loaded
                        .file
                        .set_len(loaded.complete_len)
                        .map_err(|e| Error::io("cannot truncate", &path, e))?;
                    ctx.counters.add(Counter::EvictionsCorruption, 1);
                }
                loaded
            };
            if loaded.corrupt > 0 {
                log::warn!(
                    "jsonl L2: {} holds {} corrupt line(s); ignored",
                    path.display(),
                    loaded.corrupt
                );
                ctx.counters
                    .add(Counter::EvictionsCorruption, loaded.corrupt);
            }
            let records = std::mem::take(&mut loaded.records);
            loaded_all.push(records);
            shards.push((lock, path, loaded));
        }
        if ctx.durability == Durability::Full {
            fsutil::sync_dir(dir)?;
        }

        // The eviction order from what the files say.
        let mut all: Vec<(usize, Arc<str>, Found)> = loaded_all
            .into_iter()
            .enumerate()
            .flat_map(|(id, records)| records.into_iter().map(move |(k, v)| (id, k, v)))
            .collect();
        let min = Timestamp::MIN;
        match ctx.eviction_policy {
            EvictionPolicy::Lru => {
                all.sort_by_key(|(_, _, v)| (v.meta.last_accessed.unwrap_or(min), v.position))
            }
            EvictionPolicy::Lfu => all.sort_by_key(|(_, _, v)| {
                (
                    v.meta.access_count,
                    v.meta.last_accessed.unwrap_or(min),
                    v.position,
                )
            }),
            EvictionPolicy::Fifo => {
                all.sort_by_key(|(_, _, v)| (v.meta.fetch_time.unwrap_or(min), v.position))
            }
        }
        let mut order = EvictionOrder::new(ctx.eviction_policy);
        let mut maps: Vec<FastMap<Arc<str>, Slot>> =
            (0..SHARDS).map(|_| FastMap::default()).collect();
        let mut live = [0u64; SHARDS];
        for (id, key, found) in all {
            let Found {
                offset,
                len,
                expires_at,
                ..
            } = found;
            let handle = order.insert(key.clone());
            live[id] += len + 1;
            maps[id].insert(
                key,
                Slot {
                    offset,
                    len,
                    expires_at,
                    handle,
                },
            );
        }
        let shards = shards
            .into_iter()
            .zip(maps)
            .enumerate()
            .map(|(id, ((lock, path, loaded), map))| {
                Mutex::new(Shard {
                    lock,
                    st: ShardState {
                        id,
                        path,
                        file: loaded.file,
                        dev: loaded.dev,
                        inode: loaded.inode,
                        scanned: loaded.complete_len,
                        len: loaded.complete_len,
                        live_bytes: live[id],
                        map,
                    },
                })
            })
            .collect();
        let tier = JsonlTier {
            dir: dir.to_path_buf(),
            ctx,
            shards,
            order: Mutex::new(order),
        };
        tier.import_upstream()?;
        Ok(tier)
    }

    /// The directory of the shard files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of the shard file that holds `key`.
    pub fn shard_path(&self, key: &str) -> PathBuf {
        self.dir.join(shard_file_name(shard_index(key)))
    }

    /// Compacts every shard now, whatever its size.
    pub fn compact(&self) -> Result<()> {
        for shard in &self.shards {
            let mut guard = shard.lock();
            self.compact_shard(&mut guard, true)?;
        }
        Ok(())
    }

    fn full(&self) -> bool {
        self.ctx.durability == Durability::Full
    }

    fn corrupt(&self, n: u64) {
        self.ctx.counters.add(Counter::EvictionsCorruption, n);
    }

    /// Brings the index of a shard up to date with its file.
    fn refresh(&self, st: &mut ShardState) -> Result<()> {
        let meta = match fs::metadata(&st.path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return self.rescan(st),
            Err(e) => return Err(Error::io("cannot stat", &st.path, e)),
        };
        if meta.ino() != st.inode || meta.dev() != st.dev || meta.len() < st.scanned {
            self.rescan(st)
        } else {
            st.len = meta.len();
            if meta.len() > st.scanned {
                self.scan_range(st, st.scanned, meta.len(), false)
            } else {
                Ok(())
            }
        }
    }

    /// Reads `[from, to)` of the shard into the index. A trailing partial line is left unread,
    /// unless `terminated` says something follows it (then it is a corrupt line).
    fn scan_range(&self, st: &mut ShardState, from: u64, to: u64, terminated: bool) -> Result<()> {
        let mut buf = vec![0u8; usize::try_from(to - from).unwrap_or(usize::MAX)];
        let mut filled = 0;
        while filled < buf.len() {
            match st.file.read_at(&mut buf[filled..], from + filled as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io("cannot read", &st.path, e)),
            }
        }
        buf.truncate(filled);
        let mut lines = Vec::new();
        let complete = for_each_line(&buf, from, |offset, line| {
            lines.push((offset, line.len() as u64, parse_line(line)));
        });
        let mut consumed = complete as u64;
        if terminated && complete < buf.len() {
            lines.push((from + consumed, 0, Line::Corrupt));
            consumed = buf.len() as u64;
        }
        let mut corrupt = 0;
        {
            let mut order = self.order.lock();
            for (offset, len, line) in lines {
                match line {
                    Line::Put {
                        key, expires_at, ..
                    } => {
                        put_slot(st, &mut order, &key, (offset, len), expires_at);
                    }
                    Line::Delete { key } => {
                        remove_slot(st, &mut order, &key);
                    }
                    Line::Blank => {}
                    Line::Corrupt => corrupt += 1,
                }
            }
        }
        if corrupt > 0 {
            log::warn!(
                "jsonl L2: {} holds {corrupt} corrupt line(s); ignored",
                st.path.display()
            );
            self.corrupt(corrupt);
        }
        st.scanned = from + consumed;
        Ok(())
    }

    /// Reads a shard afresh (it was replaced), keeping the eviction order of the keys it still
    /// holds.
    fn rescan(&self, st: &mut ShardState) -> Result<()> {
        let mut loaded = load_shard(&st.path)?;
        if loaded.corrupt > 0 {
            log::warn!(
                "jsonl L2: {} holds {} corrupt line(s); ignored",
                st.path.display(),
                loaded.corrupt
            );
            self.corrupt(loaded.corrupt);
        }
        let mut records: Vec<_> = std::mem::take(&mut loaded.records).into_iter().collect();
        records.sort_by_key(|(_, v)| v.position);
        let mut old = std::mem::take(&mut st.map);
        let mut live = 0;
        {
            let mut order = self.order.lock();
            for (key, found) in records {
                let Found {
                    offset,
                    len,
                    expires_at,
                    ..
                } = found;
                let handle = match old.remove(&key) {
                    Some(slot) => slot.handle,
                    None => order.insert(key.clone()),
                };
                live += len + 1;
                st.map.insert(
                    key,
                    Slot {
                        offset,
                        len,
                        expires_at,
                        handle,
                    },
                );
            }
            for (_, slot) in old {
                order.remove(slot.handle);
            }
        }
        st.len = loaded
            .file
            .metadata()
            .map_err(|e| Error::io("cannot stat", &st.path, e))?
            .len();
        st.file = loaded.file;
        st.dev = loaded.dev;
        st.inode = loaded.inode;
        st.scanned = loaded.complete_len;
        st.live_bytes = live;
        Ok(())
    }

    /// Appends `ops` to a shard as one write, under the shard's lock, and applies them to the index.
    fn append(&self, shard: &mut Shard, ops: Vec<Op>) -> Result<Applied> {
        self.append_planned(shard, |_| Ok((ops, ())))
            .map(|(applied, ())| applied)
    }

    /// Appends the ops that `plan` decides on from the shard as it is under the shard's lock,
    /// after reading what other handles appended (a conditional write sees the record it
    /// depends on, and no other writer can replace it before the append), as one write; applies
    /// them to the index. Returns what was applied and what `plan` returned beside the ops.
    fn append_planned<T>(
        &self,
        shard: &mut Shard,
        plan: impl FnOnce(&ShardState) -> Result<(Vec<Op>, T)>,
    ) -> Result<(Applied, T)> {
        let Shard { lock, st } = shard;
        let lock_path = self.dir.join(lock_file_name(st.id));
        // Exclusive: nobody replaces the file and nobody else appends while we hold it, so our
        // lines land at the length read below (no seek to find out where they went).
        let _locked = FileLock::exclusive(lock, &lock_path)?;
        self.refresh(st)?;
        let (ops, planned) = plan(st)?;
        let file_len = st.len;
        let remnant = file_len > st.scanned;
        let mut buf = Vec::new();
        if remnant {
            buf.push(b'\n');
        }
        // (op index, offset in buf, len)
        let mut placed = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            let start = buf.len() as u64;
            match op {
                Op::Put { line, .. } => buf.extend_from_slice(line),
                Op::Delete {
                    key,
                    only_if_present,
                } => {
                    if *only_if_present && !st.map.contains_key(key) {
                        continue;
                    }
                    let tomb = Tombstone { op: "delete", key };
                    serde_json::to_writer(&mut buf, &tomb).expect("a tombstone serialises");
                }
            }
            placed.push((i, start, buf.len() as u64 - start));
            buf.push(b'\n');
        }
        if placed.is_empty() {
            return Ok((Applied::default(), planned));
        }
        st.file
            .write_all(&buf)
            .map_err(|e| Error::io("cannot append to", &st.path, e))?;
        let end = file_len + buf.len() as u64;
        if self.full() {
            st.file
                .sync_data()
                .map_err(|e| Error::io("cannot sync", &st.path, e))?;
        }
        let start = end - buf.len() as u64;
        if start > st.scanned || remnant {
            // Lines that others appended since the refresh, and the remnant our `\n` ends.
            let to = if remnant { start + 1 } else { start };
            self.scan_range(st, st.scanned, to, true)?;
        }
        let mut applied = Applied::default();
        {
            let mut order = self.order.lock();
            let mut ops: Vec<Option<Op>> = ops.into_iter().map(Some).collect();
            for (i, offset, len) in placed {
                match ops[i].take().expect("each op is placed once") {
                    Op::Put {
                        key, expires_at, ..
                    } => {
                        let place = (start + offset, len);
                        if put_slot(st, &mut order, &key, place, expires_at) {
                            applied.inserted.push(key);
                        }
                    }
                    Op::Delete { key, .. } => {
                        if remove_slot(st, &mut order, &key) {
                            applied.removed.push(key);
                        }
                    }
                }
            }
        }
        st.scanned = end;
        Ok((applied, planned))
    }

    fn needs_compaction(st: &ShardState) -> bool {
        st.scanned > COMPACTION_MIN_BYTES
            && st.scanned.saturating_sub(st.live_bytes) > st.live_bytes
    }

    /// Rewrites a shard with only its live records (when it needs it, or with `force`).
    fn compact_shard(&self, shard: &mut Shard, force: bool) -> Result<()> {
        if !force && !Self::needs_compaction(&shard.st) {
            return Ok(());
        }
        let Shard { lock, st } = shard;
        let lock_path = self.dir.join(lock_file_name(st.id));
        let _exclusive = FileLock::exclusive(lock, &lock_path)?;
        self.refresh(st)?;
        if !force && !Self::needs_compaction(st) {
            return Ok(());
        }
        let old = read_all(&st.file, &st.path)?;
        let mut slots: Vec<(&Arc<str>, &mut Slot)> = st.map.iter_mut().collect();
        slots.sort_by_key(|(_, s)| s.offset);
        let mut out = Vec::with_capacity(usize::try_from(st.live_bytes).unwrap_or(0));
        let mut moves = Vec::with_capacity(slots.len());
        for (_, slot) in &slots {
            let (from, to) = (slot.offset as usize, (slot.offset + slot.len) as usize);
            let Some(bytes) = old.get(from..to) else {
                return Err(Error::Storage(format!(
                    "jsonl L2: {} is shorter than its index",
                    st.path.display()
                )));
            };
            moves.push(out.len() as u64);
            out.extend_from_slice(bytes);
            out.push(b'\n');
        }
        let file = self.replace_file(&st.path, &out)?;
        for ((_, slot), offset) in slots.into_iter().zip(moves) {
            slot.offset = offset;
        }
        let meta = file
            .metadata()
            .map_err(|e| Error::io("cannot stat", &st.path, e))?;
        let before = st.scanned;
        st.file = file;
        st.dev = meta.dev();
        st.inode = meta.ino();
        st.scanned = out.len() as u64;
        st.live_bytes = out.len() as u64;
        log::debug!(
            "jsonl L2: compacted {} from {before} to {} bytes",
            st.path.display(),
            st.scanned
        );
        Ok(())
    }

    /// Puts `bytes` at `path` by a temp file and a rename; returns the new file, open to append.
    fn replace_file(&self, path: &Path, bytes: &[u8]) -> Result<File> {
        let (temp, mut file) = fsutil::create_temp_beside(path)?;
        let written = file
            .write_all(bytes)
            .and_then(|_| if self.full() { file.sync_all() } else { Ok(()) })
            .map_err(|e| Error::io("cannot write", &temp, e))
            .and_then(|_| {
                fs::rename(&temp, path).map_err(|e| Error::io("cannot rename into", path, e))
            });
        if let Err(e) = written {
            let _ = fs::remove_file(&temp);
            return Err(e);
        }
        if self.full() {
            fsutil::sync_dir(&self.dir)?;
        }
        drop(file);
        fsutil::open_private_append(path)
    }

    /// Appends records (already encoded), in one batch per shard, then enforces `max_entries`.
    /// The keys of a batch take their places in the eviction order in the order given.
    fn write_records(&self, records: Vec<Record>) -> Result<()> {
        let mut per_shard: Vec<Vec<Op>> = (0..SHARDS).map(|_| Vec::new()).collect();
        let mut batch_keys = Vec::with_capacity(records.len());
        for rec in records {
            let key: Arc<str> = Arc::from(rec.key.as_str());
            batch_keys.push(key.clone());
            per_shard[shard_index(&key)].push(put_op(key, &rec)?);
        }
        {
            // Involved shards are locked in ascending order and held for the whole batch.
            let mut guards: Vec<Option<MutexGuard<'_, Shard>>> = per_shard
                .iter()
                .zip(&self.shards)
                .map(|(ops, shard)| (!ops.is_empty()).then(|| shard.lock()))
                .collect();
            let mut inserted = FastSet::default();
            for (id, ops) in per_shard.into_iter().enumerate() {
                if let Some(guard) = guards[id].as_mut() {
                    inserted.extend(self.append(guard, ops)?.inserted);
                    self.compact_shard(guard, false)?;
                }
            }
            if batch_keys.len() > 1 {
                let mut order = self.order.lock();
                for key in &batch_keys {
                    let Some(guard) = guards[shard_index(key)].as_mut() else {
                        continue;
                    };
                    let Some(slot) = guard.st.map.get_mut(key) else {
                        continue;
                    };
                    if inserted.remove(key) {
                        order.remove(slot.handle);
                        slot.handle = order.insert(key.clone());
                    } else if self.ctx.eviction_policy == EvictionPolicy::Lru {
                        order.touch(slot.handle);
                    }
                }
            }
        }
        self.enforce_capacity(&batch_keys)
    }

    /// Runs one conditional change on the shard of `key`: `plan` reads the record held under
    /// `key` (if any, decoded as a record) under the shard's lock and returns the ops to append.
    fn change_held<T>(
        &self,
        key: &str,
        plan: impl FnOnce(Option<Record>) -> Result<(Vec<Op>, T)>,
    ) -> Result<(Applied, T)> {
        let mut guard = self.shards[shard_index(key)].lock();
        let done = self.append_planned(&mut guard, |st| plan(held_record(st, key)?))?;
        self.compact_shard(&mut guard, false)?;
        Ok(done)
    }

    /// Tombstones victims when this handle's index holds more than `max_entries` keys, down to
    /// 99% of it (for a tier of 100 or more), so that one tombstone append per shard serves the
    /// next puts too instead of one append per put. The keys just written are the last
    /// candidates: under LFU a new key has the fewest uses, and evicting it on arrival would keep
    /// every new key out of a full tier.
    fn enforce_capacity(&self, just_written: &[Arc<str>]) -> Result<()> {
        let Some(max) = self.ctx.max_entries else {
            return Ok(());
        };
        let max = usize::try_from(max).unwrap_or(usize::MAX);
        if self.order.lock().len() <= max {
            return Ok(());
        }
        let mut guards: Vec<MutexGuard<'_, Shard>> = self.shards.iter().map(|s| s.lock()).collect();
        let mut victims: Vec<Vec<Op>> = (0..SHARDS).map(|_| Vec::new()).collect();
        let mut count = 0u64;
        {
            let mut order = self.order.lock();
            let target = max - max / 100;
            let protected: FastSet<&str> = just_written.iter().map(|k| &**k).collect();
            let others: Vec<Arc<str>> = order
                .iter()
                .filter(|k| !protected.contains(&***k))
                .take(order.len().saturating_sub(target))
                .cloned()
                .collect();
            for key in others {
                let id = shard_index(&key);
                let st = &mut guards[id].st;
                if let Some(slot) = st.map.remove(&key) {
                    order.remove(slot.handle);
                    st.live_bytes -= slot.len + 1;
                }
                victims[id].push(Op::Delete {
                    key,
                    only_if_present: false,
                });
                count += 1;
            }
            while order.len() > target {
                let Some(key) = order.pop_victim() else { break };
                let id = shard_index(&key);
                let st = &mut guards[id].st;
                if let Some(slot) = st.map.remove(&key) {
                    st.live_bytes -= slot.len + 1;
                }
                victims[id].push(Op::Delete {
                    key,
                    only_if_present: false,
                });
                count += 1;
            }
        }
        self.ctx.counters.add(Counter::EvictionsLru, count);
        log::debug!("jsonl L2: evicted {count} entries over max_entries = {max}");
        for (id, ops) in victims.into_iter().enumerate() {
            if !ops.is_empty() {
                self.append(&mut guards[id], ops)?;
                self.compact_shard(&mut guards[id], false)?;
            }
        }
        Ok(())
    }

    /// Imports upstream proxywhirl shards (`shard_NN.jsonl`) found in the directory.
    fn import_upstream(&self) -> Result<()> {
        let is_upstream = |name: &str| {
            name.strip_prefix("shard_")
                .and_then(|rest| rest.strip_suffix(".jsonl"))
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        };
        let list = |dir: &Path| -> Result<Vec<PathBuf>> {
            let mut found = Vec::new();
            let entries = fs::read_dir(dir).map_err(|e| Error::io("cannot list", dir, e))?;
            for entry in entries {
                let entry = entry.map_err(|e| Error::io("cannot list", dir, e))?;
                if entry.file_name().to_str().is_some_and(is_upstream) && entry.path().is_file() {
                    found.push(entry.path());
                }
            }
            found.sort();
            Ok(found)
        };
        if list(&self.dir)?.is_empty() {
            return Ok(());
        }
        let lock_path = self.dir.join(IMPORT_LOCK_NAME);
        let lock = fsutil::open_private_append(&lock_path)?;
        let _x = FileLock::exclusive(&lock, &lock_path)?;
        // Another process may have imported them while we waited.
        let files = list(&self.dir)?;
        let mut records = Vec::new();
        let mut bad = 0u64;
        for path in &files {
            let text = fs::read(path).map_err(|e| Error::io("cannot read", path, e))?;
            for line in text.split(|&b| b == b'\n') {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                match upstream_record(line, &self.ctx.crypto) {
                    Some(rec) => records.push(rec),
                    None => bad += 1,
                }
            }
        }
        let count = records.len();
        self.write_records(records)?;
        self.corrupt(bad);
        for path in &files {
            let mut done = path.clone().into_os_string();
            done.push(".imported");
            fs::rename(path, &done).map_err(|e| Error::io("cannot rename", path, e))?;
        }
        if self.full() {
            fsutil::sync_dir(&self.dir)?;
        }
        log::info!(
            "jsonl L2: imported {count} entries from {} upstream shard file(s) in {} \
             ({bad} unreadable line(s) skipped)",
            files.len(),
            self.dir.display()
        );
        Ok(())
    }

    fn read_record(
        &self,
        st: &ShardState,
        key: &str,
        slot: &Slot,
    ) -> Result<std::result::Result<CacheEntry, DecodeError>> {
        Ok(match read_line(st, slot)? {
            Some(line) => decode_record(&line, Some(key), &self.ctx.crypto),
            None => Err(DecodeError::Corrupt("the file is shorter than its index")),
        })
    }
}

/// The line a slot points at, without its `\n`; `None` when the file is shorter than the index
/// says (cut by another process).
fn read_line(st: &ShardState, slot: &Slot) -> Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; usize::try_from(slot.len).unwrap_or(0)];
    match st.file.read_exact_at(&mut buf, slot.offset) {
        Ok(()) => Ok(Some(buf)),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(Error::io("cannot read", &st.path, e)),
    }
}

/// The record held under `key`, as a record (credentials stay the tokens they are: nothing is
/// decrypted); `None` when the key is not stored or its line is not a record of that key.
fn held_record(st: &ShardState, key: &str) -> Result<Option<Record>> {
    let Some(slot) = st.map.get(key) else {
        return Ok(None);
    };
    Ok(read_line(st, slot)?
        .and_then(|line| serde_json::from_slice::<Record>(&line).ok())
        .filter(|r| r.key == key))
}

/// Whether `record` holds `version`.
fn is_version(record: &Record, version: &Version) -> bool {
    record.proxy_url == version.proxy_url
        && Timestamp::parse(&record.fetch_time) == Some(version.fetch_time)
        && Timestamp::parse(&record.expires_at) == Some(version.expires_at)
}

/// The append of a record (`key` is its key).
fn put_op(key: Arc<str>, record: &Record) -> Result<Op> {
    let expires_at = Timestamp::parse(&record.expires_at).ok_or_else(|| {
        Error::InvalidArgument("jsonl L2: an entry's expires_at is out of range".into())
    })?;
    let line = serde_json::to_vec(record).expect("a record serialises");
    Ok(Op::Put {
        key,
        expires_at,
        line,
    })
}

/// Indexes the record of `key` at `(offset, len)`; `true` when the key is new to the shard.
fn put_slot(
    st: &mut ShardState,
    order: &mut EvictionOrder<Arc<str>>,
    key: &str,
    (offset, len): (u64, u64),
    expires_at: Timestamp,
) -> bool {
    if let Some(slot) = st.map.get_mut(key) {
        st.live_bytes = st.live_bytes - (slot.len + 1) + (len + 1);
        slot.offset = offset;
        slot.len = len;
        slot.expires_at = expires_at;
        order.touch(slot.handle);
        false
    } else {
        let key: Arc<str> = Arc::from(key);
        let handle = order.insert(key.clone());
        st.live_bytes += len + 1;
        st.map.insert(
            key,
            Slot {
                offset,
                len,
                expires_at,
                handle,
            },
        );
        true
    }
}

fn remove_slot(st: &mut ShardState, order: &mut EvictionOrder<Arc<str>>, key: &str) -> bool {
    match st.map.remove(key) {
        Some(slot) => {
            order.remove(slot.handle);
            st.live_bytes -= slot.len + 1;
            true
        }
        None => false,
    }
}

impl Tier for JsonlTier {
    fn get(&self, key: &str) -> Result<Option<CacheEntry>> {
        let mut guard = self.shards[shard_index(key)].lock();
        self.refresh(&mut guard.st)?;
        let st = &guard.st;
        let Some(slot) = st.map.get(key) else {
            return Ok(None);
        };
        match self.read_record(st, key, slot)? {
            Ok(entry) => {
                self.order.lock().touch(slot.handle);
                Ok(Some(entry))
            }
            Err(DecodeError::Crypto(e)) => Err(e),
            Err(DecodeError::Corrupt(why)) => {
                log::warn!(
                    "jsonl L2: dropped a corrupt record in {}: {why}",
                    st.path.display()
                );
                self.corrupt(1);
                let key: Arc<str> = Arc::from(key);
                self.append(
                    &mut guard,
                    vec![Op::Delete {
                        key,
                        only_if_present: true,
                    }],
                )?;
                self.compact_shard(&mut guard, false)?;
                Ok(None)
            }
        }
    }

    fn put_many(&self, entries: &[CacheEntry]) -> Result<()> {
        let records = entries
            .iter()
            .map(|e| encode_entry(e, &self.ctx.crypto))
            .collect::<Result<Vec<_>>>()?;
        self.write_records(records)
    }

    fn put_if_absent(&self, entry: &CacheEntry) -> Result<bool> {
        let record = encode_entry(entry, &self.ctx.crypto)?;
        let key: Arc<str> = Arc::from(entry.key.as_str());
        let op = put_op(key.clone(), &record)?;
        let (applied, ()) = self.change_held(&entry.key, |held| match held {
            Some(_) => Ok((Vec::new(), ())),
            None => Ok((vec![op], ())),
        })?;
        if applied.inserted.is_empty() {
            return Ok(false);
        }
        self.enforce_capacity(&[key])?;
        Ok(true)
    }

    fn record_usage(&self, usage: &[Usage]) -> Result<u64> {
        let mut per_shard: Vec<Vec<&Usage>> = (0..SHARDS).map(|_| Vec::new()).collect();
        for u in usage {
            per_shard[shard_index(&u.key)].push(u);
        }
        let mut recorded = 0;
        for (id, batch) in per_shard.into_iter().enumerate() {
            if batch.is_empty() {
                continue;
            }
            let mut guard = self.shards[id].lock();
            let (_, n) = self.append_planned(&mut guard, |st| {
                let mut ops = Vec::with_capacity(batch.len());
                for u in batch {
                    let Some(mut record) = held_record(st, &u.key)? else {
                        continue;
                    };
                    if !is_version(&record, &u.version) {
                        continue;
                    }
                    record.access_count = u.access_count;
                    record.last_accessed = u.last_accessed.to_rfc3339();
                    record.evicted_from_l1 = u.evicted_from_l1;
                    ops.push(put_op(Arc::from(u.key.as_str()), &record)?);
                }
                let n = ops.len() as u64;
                Ok((ops, n))
            })?;
            self.compact_shard(&mut guard, false)?;
            recorded += n;
        }
        Ok(recorded)
    }

    fn record_failure(&self, key: &str) -> Result<Option<Failures>> {
        let (_, failures) = self.change_held(key, |held| {
            let Some(mut record) = held else {
                return Ok((Vec::new(), None));
            };
            record.failure_count = record.failure_count.saturating_add(1);
            record.health_status = HealthStatus::Unhealthy.as_str().to_string();
            let op = put_op(Arc::from(key), &record)?;
            let failures = Failures {
                failure_count: record.failure_count,
                // put_op has read it already: a record with an unreadable expiry is refused.
                expires_at: Timestamp::parse(&record.expires_at).unwrap_or(Timestamp::MIN),
            };
            Ok((vec![op], Some(failures)))
        })?;
        Ok(failures)
    }

    fn delete_if_version(&self, key: &str, version: &Version) -> Result<bool> {
        let (applied, ()) = self.change_held(key, |held| {
            let ops = match held {
                Some(record) if is_version(&record, version) => vec![Op::Delete {
                    key: Arc::from(key),
                    only_if_present: true,
                }],
                _ => Vec::new(),
            };
            Ok((ops, ()))
        })?;
        Ok(!applied.removed.is_empty())
    }

    fn delete(&self, key: &str) -> Result<bool> {
        let mut guard = self.shards[shard_index(key)].lock();
        let removed = self.append(
            &mut guard,
            vec![Op::Delete {
                key: Arc::from(key),
                only_if_present: true,
            }],
        )?;
        self.compact_shard(&mut guard, false)?;
        Ok(!removed.removed.is_empty())
    }

    fn clear(&self) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        for shard in &self.shards {
            let mut guard = shard.lock();
            let Shard { lock, st } = &mut *guard;
            let lock_path = self.dir.join(lock_file_name(st.id));
            let _exclusive = FileLock::exclusive(lock, &lock_path)?;
            self.refresh(st)?;
            let file = self.replace_file(&st.path, &[])?;
            let meta = file
                .metadata()
                .map_err(|e| Error::io("cannot stat", &st.path, e))?;
            {
                let mut order = self.order.lock();
                for (key, slot) in st.map.drain() {
                    order.remove(slot.handle);
                    keys.push(key.to_string());
                }
            }
            st.file = file;
            st.dev = meta.dev();
            st.inode = meta.ino();
            st.scanned = 0;
            st.live_bytes = 0;
        }
        Ok(keys)
    }

    fn len(&self) -> Result<u64> {
        let mut total = 0;
        for shard in &self.shards {
            let mut guard = shard.lock();
            self.refresh(&mut guard.st)?;
            total += guard.st.map.len() as u64;
        }
        Ok(total)
    }

    fn remove_expired(&self, now: Timestamp) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for shard in &self.shards {
            let mut guard = shard.lock();
            self.refresh(&mut guard.st)?;
            let ops: Vec<Op> = guard
                .st
                .map
                .iter()
                .filter(|(_, slot)| slot.expires_at <= now)
                .map(|(key, _)| Op::Delete {
                    key: key.clone(),
                    only_if_present: true,
                })
                .collect();
            if ops.is_empty() {
                continue;
            }
            let gone = self.append(&mut guard, ops)?;
            removed.extend(gone.removed.iter().map(|k| k.to_string()));
            self.compact_shard(&mut guard, false)?;
        }
        Ok(removed)
    }

    fn scan(&self, visit: &mut dyn FnMut(Result<CacheEntry>)) -> Result<()> {
        for shard in &self.shards {
            let decoded = {
                let mut guard = shard.lock();
                self.refresh(&mut guard.st)?;
                let st = &guard.st;
                if st.map.is_empty() {
                    continue;
                }
                let buf = read_all(&st.file, &st.path)?;
                let mut slots: Vec<(&Arc<str>, &Slot)> = st.map.iter().collect();
                slots.sort_by_key(|(_, s)| s.offset);
                slots
                    .into_iter()
                    .map(|(key, slot)| {
                        let bytes = buf
                            .get(slot.offset as usize..(slot.offset + slot.len) as usize)
                            .ok_or(DecodeError::Corrupt("the file is shorter than its index"));
                        match bytes.and_then(|b| decode_record(b, Some(key), &self.ctx.crypto)) {
                            Ok(entry) => Ok(entry),
                            Err(DecodeError::Crypto(e)) => Err(e),
                            Err(DecodeError::Corrupt(why)) => Err(Error::Storage(format!(
                                "jsonl L2: a corrupt record in {}: {why}",
                                st.path.display()
                            ))),
                        }
                    })
                    .collect::<Vec<_>>()
            };
            for item in decoded {
                visit(item);
            }
        }
        Ok(())
    }
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

    #[test]
    fn shard_index_is_stable_and_in_range() {
        assert_eq!(shard_index("k"), shard_index("k"));
        assert!((0..1000).all(|i| shard_index(&format!("key{i}")) < SHARDS));
        // FNV-1a 64 of "abc" is 0xe71fa2190541574b.
        assert_eq!(shard_index("abc"), 0xb);
    }
}

//! The import of proxywhirl's own shard files (`shard_NN.jsonl`) found in the directory at open
//! (docs/FORMAT.md §3.11): read under the import lock, stored as one batch, renamed
//! `shard_NN.jsonl.imported`. Credentials are carried over as the token text they are, without
//! being decrypted, so a wrong key loses nothing.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::Durability;
use crate::crypto::Crypto;
use crate::entry::{HealthStatus, Secret};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::stats::Counter;
use crate::tier::TierContext;
use crate::time::Timestamp;

use super::lock::LockFile;
use super::record::Record;

const IMPORT_LOCK_NAME: &str = "pwcache_l2_import.lock";

/// Imports the upstream shards found in `dir`, handing their records to `store` as one batch.
pub(super) fn import(
    dir: &Path,
    ctx: &TierContext,
    store: impl FnOnce(Vec<Record>) -> Result<()>,
) -> Result<()> {
    if list(dir)?.is_empty() {
        return Ok(());
    }
    let lock = LockFile::open(dir.join(IMPORT_LOCK_NAME))?;
    let _flock = lock.exclusive()?;
    // Another process may have imported them while we waited.
    let files = list(dir)?;
    let mut records = Vec::new();
    let mut bad = 0u64;
    for path in &files {
        let text = fs::read(path).map_err(|e| Error::io("cannot read", path, e))?;
        for line in text.split(|&b| b == b'\n') {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match upstream_record(line, &ctx.crypto) {
                Some(rec) => records.push(rec),
                None => bad += 1,
            }
        }
    }
    let count = records.len();
    store(records)?;
    ctx.counters.add(Counter::EvictionsCorruption, bad);
    for path in &files {
        let mut done = path.clone().into_os_string();
        done.push(".imported");
        fs::rename(path, &done).map_err(|e| Error::io("cannot rename", path, e))?;
    }
    if ctx.durability == Durability::Full {
        fsutil::sync_dir(dir)?;
    }
    log::info!(
        "jsonl L2: imported {count} entries from {} upstream shard file(s) in {} \
         ({bad} unreadable line(s) skipped)",
        files.len(),
        dir.display()
    );
    Ok(())
}

/// The upstream shards in `dir`: regular files named `shard_<digits>.jsonl`, sorted.
fn list(dir: &Path) -> Result<Vec<PathBuf>> {
    let is_upstream = |name: &str| {
        name.strip_prefix("shard_")
            .and_then(|rest| rest.strip_suffix(".jsonl"))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
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
}

/// An upstream shard line as one of our records; `None` when it cannot be read.
fn upstream_record(line: &[u8], crypto: &Crypto) -> Option<Record> {
    #[derive(Deserialize)]
    struct Plain {
        #[serde(default)]
        username: Option<String>,
        #[serde(default)]
        password: Option<String>,
    }
    if !super::record::is_object_text(line) {
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
            match value.and_then(Secret::new) {
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

//! L2 as JSON Lines: sixteen append-only shard files with tombstones and compaction, shared by
//! every handle and process that opens the same directory.
//!
//! The files, the line format, the sharing protocol, compaction, durability, capacity and the
//! import of upstream shards are specified in `docs/FORMAT.md` §3; this module implements it:
//!
//! - `record`: the lines (a record, a tombstone, the classification of a line);
//! - `load`: reading a whole shard file, at open and when another handle replaced it;
//! - `lock`: the lock files and their `flock`;
//! - `shard`: one shard, its file, lock file and this handle's index of it;
//! - `capacity`: the eviction order and the `max_entries` bound;
//! - `upstream`: the import of proxywhirl's shards;
//! - this file: the tier, which sends each operation to the shard of its key.
//!
//! # Invariants
//!
//! - A shard file changes only under the shard's exclusive `flock`: by an append of whole lines
//!   in one `write(2)`, by a rename of a complete file over it, or, at open, by cutting away an
//!   unfinished last line (a writer died). No line is edited in place, so an open file reads as
//!   complete lines but for such a last line, which is never indexed.
//! - A handle's index of a shard says where the last record of each live key is, for the file
//!   up to `scanned`, the end of a complete line. Before every operation on a shard the index is
//!   brought up to date with the file at the path: the lines appended since are read; a file
//!   replaced (another inode) or shorter than `scanned` is read again whole.
//! - The tier's eviction order holds exactly the keys of the sixteen indexes.
//! - A shard's `live_bytes` is the size of the lines its index points at; after each append the
//!   shard is compacted when the rest of the file (dead bytes) outweighs them and the file is past
//!   `COMPACTION_MIN_BYTES`, so a write costs amortised O(1).
//! - Lock order: a shard's mutex, then its `flock`, then the eviction order's mutex, which is
//!   never held across I/O (the structure of `shard` makes it so). Several shards are locked in
//!   ascending order. The import lock is taken before any shard's.
//! - Each change of a shard is atomic with respect to other handles: a conditional change reads
//!   the record it depends on and appends under one hold of the shard's `flock`.

use std::path::Path;
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};

use crate::config::Durability;
use crate::entry::{CacheEntry, HealthStatus};
use crate::error::{Error, Result};
use crate::fast_hash::FastSet;
use crate::fsutil;
use crate::stats::Counter;
use crate::tier::{CopyOutcome, Failures, Scanned, Tier, TierContext, Unreadable, Usage, Version};
use crate::time::Timestamp;

mod capacity;
mod load;
mod lock;
mod record;
mod shard;
mod upstream;

use record::{DecodeError, Record, decode_record, encode_entry};
use shard::{Applied, Op, Shard, Shared};
pub use shard::{SHARDS, shard_file_name, shard_index};

/// L2 as JSON Lines. See the module docs for its invariants, and `docs/FORMAT.md` §3 for the
/// files and the sharing rules.
pub struct JsonlTier {
    shards: Vec<Mutex<Shard>>,
    shared: Shared,
}

impl JsonlTier {
    /// Opens (creating as needed) the tier in `dir`: repairs torn shard tails, builds the index,
    /// and imports upstream shards found there.
    pub fn open(dir: &Path, ctx: TierContext) -> Result<JsonlTier> {
        fsutil::create_private_dir_all(dir)?;
        let mut shards = Vec::with_capacity(SHARDS);
        let mut found = Vec::with_capacity(SHARDS);
        for id in 0..SHARDS {
            let (shard, records) = Shard::open(dir, id, &ctx.counters)?;
            shards.push(shard);
            found.push(records);
        }
        if ctx.durability == Durability::Full {
            fsutil::sync_dir(dir)?;
        }
        let order = capacity::index_at_open(ctx.eviction_policy, &mut shards, found);
        let tier = JsonlTier {
            shards: shards.into_iter().map(Mutex::new).collect(),
            shared: Shared {
                ctx,
                order: Mutex::new(order),
            },
        };
        upstream::import(dir, &tier.shared.ctx, |records| tier.write_records(records))?;
        Ok(tier)
    }

    /// Compacts every shard now, whatever its dead bytes (writes compact a shard on their own
    /// once its dead bytes outweigh its live ones; this is for tools and tests).
    pub fn compact(&self) -> Result<()> {
        for shard in &self.shards {
            shard.lock().compact_now(&self.shared)?;
        }
        Ok(())
    }

    fn shard(&self, key: &str) -> MutexGuard<'_, Shard> {
        self.shards[shard_index(key)].lock()
    }

    /// Appends records (already encoded), in one batch per shard, then enforces `max_entries`.
    /// The keys of a batch take their places in the eviction order in the order given.
    fn write_records(&self, records: Vec<Record>) -> Result<()> {
        self.write_records_around(records, &mut || {})
    }

    /// [`JsonlTier::write_records`], with `below` run once while every shard the batch writes
    /// is locked (mutex and flock), before the appends ([`Tier::put_many_around`]).
    fn write_records_around(&self, records: Vec<Record>, below: &mut dyn FnMut()) -> Result<()> {
        let mut batch_keys = Vec::with_capacity(records.len());
        let mut ops = Vec::with_capacity(records.len());
        for rec in records {
            let key: Arc<str> = Arc::from(rec.key.as_str());
            batch_keys.push(key.clone());
            ops.push(Op::put(key, &rec)?);
        }
        let per_shard = by_shard(ops);
        {
            let mut guards = self.lock_shards(&per_shard);
            let mut inserted = FastSet::default();
            for applied in Shard::append_around(&self.shared, held(&mut guards, per_shard), below)?
            {
                inserted.extend(applied.inserted);
            }
            if batch_keys.len() > 1 {
                capacity::place_batch(&self.shared, &mut guards, &batch_keys, inserted);
            }
        }
        // After the shards' locks are released: enforcing the bound locks every shard.
        capacity::enforce(&self.shared, &self.shards, &batch_keys)
    }

    /// The mutexes of the shards that have ops, taken in ascending order (`guards[id]` holds
    /// shard `id` when it has some).
    fn lock_shards(&self, per_shard: &[Vec<Op>]) -> Vec<Option<MutexGuard<'_, Shard>>> {
        per_shard
            .iter()
            .zip(&self.shards)
            .map(|(ops, shard)| (!ops.is_empty()).then(|| shard.lock()))
            .collect()
    }

    /// Runs one conditional change on the shard of `key`: `plan` reads the record held under
    /// `key` (if any, decoded as a record) under the shard's lock and returns the ops to append.
    fn change_held<T>(
        &self,
        key: &str,
        plan: impl FnOnce(Option<Record>) -> Result<(Vec<Op>, T)>,
    ) -> Result<(Applied, T)> {
        self.shard(key)
            .append_planned(&self.shared, |view| plan(view.held_record(key)?))
    }
}

impl Tier for JsonlTier {
    fn get(&self, key: &str) -> Result<Option<CacheEntry>> {
        let mut shard = self.shard(key);
        shard.refresh(&self.shared)?;
        let Some(slot) = shard.slot(key) else {
            return Ok(None);
        };
        let line = shard.read_line(slot)?;
        match decode_record(line.as_deref(), key, &self.shared.ctx.crypto) {
            Ok(entry) => {
                self.shared.order.lock().touch(slot.handle);
                Ok(Some(entry))
            }
            Err(DecodeError::Crypto(e)) => Err(e),
            Err(DecodeError::Corrupt(why)) => {
                log::warn!(
                    "jsonl L2: dropped a corrupt record in {}: {why}",
                    shard.path().display()
                );
                self.shared
                    .ctx
                    .counters
                    .add(Counter::EvictionsCorruption, 1);
                shard.append(&self.shared, vec![Op::delete(Arc::from(key))])?;
                Ok(None)
            }
        }
    }

    fn put_many(&self, entries: &[CacheEntry]) -> Result<()> {
        self.put_many_around(entries, &mut || {})
    }

    // Every shard the batch writes is held (mutex, then flock, ascending) while `below` runs.
    fn put_many_around(&self, entries: &[CacheEntry], below: &mut dyn FnMut()) -> Result<()> {
        let records = entries
            .iter()
            .map(|e| encode_entry(e, &self.shared.ctx.crypto))
            .collect::<Result<Vec<_>>>()?;
        self.write_records_around(records, below)
    }

    fn put_if_absent(&self, entry: &CacheEntry) -> Result<bool> {
        self.put_if_absent_while_current(entry, &mut || true)
            .map(|outcome| outcome == CopyOutcome::Stored)
    }

    // The question is asked under the shard's lock, which every change of the key takes.
    fn put_if_absent_while_current(
        &self,
        entry: &CacheEntry,
        still_current: &mut dyn FnMut() -> bool,
    ) -> Result<CopyOutcome> {
        let record = encode_entry(entry, &self.shared.ctx.crypto)?;
        let key: Arc<str> = Arc::from(entry.key.as_str());
        let op = Op::put(key.clone(), &record)?;
        let (applied, outcome) = self.change_held(&entry.key, |held| match held {
            Some(_) => Ok((Vec::new(), CopyOutcome::Occupied)),
            None if still_current() => Ok((vec![op], CopyOutcome::Stored)),
            None => Ok((Vec::new(), CopyOutcome::NoLongerCurrent)),
        })?;
        if !applied.inserted.is_empty() {
            capacity::enforce(&self.shared, &self.shards, &[key])?;
        }
        Ok(outcome)
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
            let (_, n) = self.shards[id]
                .lock()
                .append_planned(&self.shared, |view| {
                    let mut ops = Vec::with_capacity(batch.len());
                    for u in batch {
                        let Some(mut record) = view.held_record(&u.key)? else {
                            continue;
                        };
                        if !record.is_version(&u.version) {
                            continue;
                        }
                        record.access_count = u.access_count;
                        record.last_accessed = u.last_accessed.to_rfc3339();
                        record.evicted_from_l1 = u.evicted_from_l1;
                        ops.push(Op::put(Arc::from(u.key.as_str()), &record)?);
                    }
                    let n = ops.len() as u64;
                    Ok((ops, n))
                })?;
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
            let op = Op::put(Arc::from(key), &record)?;
            let failures = Failures {
                failure_count: record.failure_count,
                expires_at: record.expiry()?,
            };
            Ok((vec![op], Some(failures)))
        })?;
        Ok(failures)
    }

    fn delete_if_version(&self, key: &str, version: &Version) -> Result<bool> {
        let (applied, ()) = self.change_held(key, |held| {
            let ops = match held {
                Some(record) if record.is_version(version) => vec![Op::delete(Arc::from(key))],
                _ => Vec::new(),
            };
            Ok((ops, ()))
        })?;
        Ok(!applied.removed.is_empty())
    }

    fn delete(&self, key: &str) -> Result<bool> {
        let applied = self
            .shard(key)
            .append(&self.shared, vec![Op::delete(Arc::from(key))])?;
        Ok(!applied.removed.is_empty())
    }

    fn delete_around(&self, keys: &[&str], below: &mut dyn FnMut()) -> Result<u64> {
        let per_shard = by_shard(keys.iter().map(|key| Op::delete(Arc::from(*key))));
        let mut guards = self.lock_shards(&per_shard);
        let applied = Shard::append_around(&self.shared, held(&mut guards, per_shard), below)?;
        Ok(applied.iter().map(|a| a.removed.len() as u64).sum())
    }

    fn clear(&self) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        for shard in &self.shards {
            keys.extend(shard.lock().clear(&self.shared)?);
        }
        Ok(keys)
    }

    fn len(&self) -> Result<u64> {
        let mut total = 0;
        for shard in &self.shards {
            let mut shard = shard.lock();
            shard.refresh(&self.shared)?;
            total += shard.key_count() as u64;
        }
        Ok(total)
    }

    fn remove_expired(&self, now: Timestamp) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for shard in &self.shards {
            let mut shard = shard.lock();
            shard.refresh(&self.shared)?;
            let ops: Vec<Op> = shard
                .slots()
                .filter(|(_, slot)| slot.expires_at <= now)
                .map(|(key, _)| Op::delete(key.clone()))
                .collect();
            if ops.is_empty() {
                continue;
            }
            let gone = shard.append(&self.shared, ops)?;
            removed.extend(gone.removed.iter().map(|k| k.to_string()));
        }
        Ok(removed)
    }

    fn scan(&self, visit: &mut dyn FnMut(Scanned)) -> Result<()> {
        for shard in &self.shards {
            let mut decoded = Vec::new();
            {
                let mut shard = shard.lock();
                shard.refresh(&self.shared)?;
                shard.for_each_live_line(|key, line| {
                    decoded.push(match decode_record(line, key, &self.shared.ctx.crypto) {
                        Ok(entry) => Ok(entry),
                        Err(DecodeError::Crypto(e)) => {
                            Err(Unreadable::new(Some(key.to_string()), e))
                        }
                        Err(DecodeError::Corrupt(why)) => Err(Unreadable::new(
                            Some(key.to_string()),
                            Error::Storage(format!(
                                "jsonl L2: a corrupt record in {}: {why}",
                                shard.path().display()
                            )),
                        )),
                    });
                    Ok(())
                })?;
            }
            for item in decoded {
                visit(item);
            }
        }
        Ok(())
    }
}

/// `ops` in one list per shard (index = shard id), each in the order given.
fn by_shard(ops: impl IntoIterator<Item = Op>) -> Vec<Vec<Op>> {
    let mut per_shard: Vec<Vec<Op>> = (0..SHARDS).map(|_| Vec::new()).collect();
    for op in ops {
        per_shard[shard_index(op.key())].push(op);
    }
    per_shard
}

/// Each locked shard with its ops, in ascending shard order.
fn held<'g>(
    guards: &'g mut [Option<MutexGuard<'_, Shard>>],
    per_shard: Vec<Vec<Op>>,
) -> Vec<(&'g mut Shard, Vec<Op>)> {
    guards
        .iter_mut()
        .zip(per_shard)
        .filter_map(|(guard, ops)| guard.as_mut().map(|g| (&mut **g, ops)))
        .collect()
}

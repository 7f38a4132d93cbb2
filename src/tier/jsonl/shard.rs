//! One shard: its file, its lock file, and this handle's index of it (key → where the key's live
//! record is), which only `Shard` methods change and keep fresh. Others read through `View`.
//!
//! The lock order follows from what can reach which lock:
//! - the shard's mutex comes first: the tier holds each `Shard` in a `Mutex`, so whatever
//!   reaches a shard holds its mutex;
//! - the shard's `flock` comes next: the lock file is a private field of `Shard`, and its
//!   methods take the flock (in `Shard::exclusive`, and in `Shard::open`) before anything else;
//! - the tier's eviction order (`Shared::order`) comes last: the index updates lock it around
//!   their in-memory changes alone, so it is never held across I/O or while taking a lock.

use std::fs::{self, File, Metadata};
use std::hash::Hasher;
use std::io::Write;
use std::ops::Deref;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::config::Durability;
use crate::error::{Error, Result};
use crate::fast_hash::FastMap;
use crate::fsutil;
use crate::stats::TierCounters;
use crate::tier::TierContext;
use crate::tier::order::{EvictionOrder, Handle};
use crate::time::Timestamp;

use super::load::{self, Found};
use super::lock::{FileLock, LockFile};
use super::record::{Line, Record, for_each_line, parse_line, write_tombstone};

/// The number of shard files.
pub const SHARDS: usize = 16;

/// A shard smaller than this is never compacted.
pub(super) const COMPACTION_MIN_BYTES: u64 = 256 * 1024;

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

/// What the shards of one tier share.
pub(super) struct Shared {
    pub(super) ctx: TierContext,
    /// Every key of this handle's index, in eviction order. Locked after a shard's mutex (and its
    /// flock, where that is held), never before one, and never across I/O.
    pub(super) order: Mutex<EvictionOrder<Arc<str>>>,
}

impl Shared {
    fn full(&self) -> bool {
        self.ctx.durability == Durability::Full
    }
}

/// Where the live record of a key is.
pub(super) struct Slot {
    pub(super) offset: u64,
    /// Without the `\n`.
    pub(super) len: u64,
    pub(super) expires_at: Timestamp,
    pub(super) handle: Handle,
}

/// One line to append.
pub(super) enum Op {
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

impl Op {
    /// The key the op writes.
    pub(super) fn key(&self) -> &str {
        match self {
            Op::Put { key, .. } | Op::Delete { key, .. } => key,
        }
    }

    /// The append of `record` (`key` is its key).
    pub(super) fn put(key: Arc<str>, record: &Record) -> Result<Op> {
        Ok(Op::Put {
            key,
            expires_at: record.expiry()?,
            line: record.to_line(),
        })
    }

    /// The tombstone of `key`, if the key is stored when it is appended.
    pub(super) fn delete(key: Arc<str>) -> Op {
        Op::Delete {
            key,
            only_if_present: true,
        }
    }
}

/// What an append did to the index.
#[derive(Default)]
pub(super) struct Applied {
    /// Keys that `Put` ops added (they were not stored before).
    pub(super) inserted: Vec<Arc<str>>,
    /// Keys that `Delete` ops removed.
    pub(super) removed: Vec<Arc<str>>,
}

/// A shard of the tier. Reads go through `View` (`Deref`); everything that changes the file or
/// the index is a method here.
pub(super) struct Shard {
    lock: LockFile,
    view: View,
}

/// This handle's view of a shard file: the open file, how much of it is indexed, and the index.
pub(super) struct View {
    path: PathBuf,
    file: File,
    dev: u64,
    inode: u64,
    /// Bytes read into the index: always the end of a complete line.
    scanned: u64,
    /// Bytes of the live records, their `\n` included.
    live_bytes: u64,
    map: FastMap<Arc<str>, Slot>,
}

/// A shard under its flock, its index brought up to date.
struct Exclusive<'a> {
    _flock: FileLock<'a>,
    view: &'a mut View,
    /// The file's length: where an append lands.
    file_len: u64,
}

impl Shard {
    /// Opens shard `id` in `dir`, creating its files: reads it under its lock and cuts away a
    /// torn tail. Returns the shard with an empty index, and the records found in it, for the
    /// tier to place in its eviction order (`Shard::insert`).
    pub(super) fn open(
        dir: &Path,
        id: usize,
        counters: &TierCounters,
    ) -> Result<(Shard, FastMap<Arc<str>, Found>)> {
        let lock = LockFile::open(dir.join(lock_file_name(id)))?;
        let path = dir.join(shard_file_name(id));
        let loaded = {
            let _flock = lock.exclusive()?;
            let loaded = load::read_shard(&path, counters)?;
            loaded.cut_torn_tail(&path, counters)?;
            loaded
        };
        let view = View::new(path, loaded.file, loaded.complete_len)?;
        Ok((Shard { lock, view }, loaded.records))
    }

    /// Indexes a record found at open; `handle` is its key's place in the eviction order.
    pub(super) fn insert(&mut self, key: Arc<str>, found: &Found, handle: Handle) {
        self.view
            .insert(key, (found.offset, found.len), found.expires_at, handle);
    }

    /// Brings the index up to date with the file, for a read.
    pub(super) fn refresh(&mut self, shared: &Shared) -> Result<()> {
        self.view.refresh(shared).map(drop)
    }

    /// Takes `key` out of the index alone: the caller takes it out of the eviction order and
    /// appends its tombstone.
    pub(super) fn forget(&mut self, key: &str) -> Option<Slot> {
        self.view.forget(key)
    }

    /// The place of `key` in the eviction order, to move it there.
    pub(super) fn handle_mut(&mut self, key: &str) -> Option<&mut Handle> {
        self.view.map.get_mut(key).map(|slot| &mut slot.handle)
    }

    /// Takes the shard's flock (nobody replaces the file and nobody else appends while it is
    /// held, so an append lands at the length read here: no seek to find out where it went),
    /// then brings the index up to date.
    fn exclusive(&mut self, shared: &Shared) -> Result<Exclusive<'_>> {
        let flock = self.lock.exclusive()?;
        let file_len = self.view.refresh(shared)?;
        Ok(Exclusive {
            _flock: flock,
            view: &mut self.view,
            file_len,
        })
    }

    /// Appends `ops` as one write and applies them to the index.
    pub(super) fn append(&mut self, shared: &Shared, ops: Vec<Op>) -> Result<Applied> {
        self.append_planned(shared, |_| Ok((ops, ())))
            .map(|(applied, ())| applied)
    }

    /// Appends the ops that `plan` decides on from the shard as it is under its flock, after
    /// reading what other handles appended (a conditional write sees the record it depends on,
    /// and no other writer can replace it before the append), as one write; applies them to the
    /// index, then compacts the shard if its dead bytes now outweigh its live ones. Returns what
    /// was applied and what `plan` returned beside the ops.
    pub(super) fn append_planned<T>(
        &mut self,
        shared: &Shared,
        plan: impl FnOnce(&View) -> Result<(Vec<Op>, T)>,
    ) -> Result<(Applied, T)> {
        let locked = self.exclusive(shared)?;
        let (ops, planned) = plan(locked.view)?;
        let applied = locked.view.append(shared, locked.file_len, ops)?;
        if locked.view.needs_compaction() {
            locked.view.compact(shared)?;
        }
        Ok((applied, planned))
    }

    /// Appends `ops` to each of `shards` as [`Shard::append`] does, holding all of their flocks
    /// at once: they are taken in the order given (ascending shard index, as their mutexes
    /// were), `below` runs once every one is held, then each shard gets its append and, when its
    /// dead bytes outweigh its live ones, its compaction; the flocks are released at the end.
    /// `below` is not run when a flock cannot be taken or the index cannot be refreshed. Returns
    /// what each append applied, in the order given.
    pub(super) fn append_around(
        shared: &Shared,
        shards: Vec<(&mut Shard, Vec<Op>)>,
        below: &mut dyn FnMut(),
    ) -> Result<Vec<Applied>> {
        let mut locked = Vec::with_capacity(shards.len());
        for (shard, ops) in shards {
            locked.push((shard.exclusive(shared)?, ops));
        }
        below();
        let mut applied = Vec::with_capacity(locked.len());
        for (held, ops) in &mut locked {
            applied.push(
                held.view
                    .append(shared, held.file_len, std::mem::take(ops))?,
            );
        }
        for (held, _) in &mut locked {
            if held.view.needs_compaction() {
                held.view.compact(shared)?;
            }
        }
        Ok(applied)
    }

    /// Rewrites the shard with only its live records now, whatever its dead bytes (under its
    /// flock, after reading what others appended).
    pub(super) fn compact_now(&mut self, shared: &Shared) -> Result<()> {
        let locked = self.exclusive(shared)?;
        locked.view.compact(shared)
    }

    /// Replaces the shard with an empty file; returns the keys it held.
    pub(super) fn clear(&mut self, shared: &Shared) -> Result<Vec<String>> {
        let locked = self.exclusive(shared)?;
        locked.view.replace(shared, &[])?;
        let mut order = shared.order.lock();
        Ok(locked
            .view
            .map
            .drain()
            .map(|(key, slot)| {
                order.remove(slot.handle);
                key.to_string()
            })
            .collect())
    }
}

impl Deref for Shard {
    type Target = View;

    fn deref(&self) -> &View {
        &self.view
    }
}

fn stat(file: &File, path: &Path) -> Result<Metadata> {
    file.metadata()
        .map_err(|e| Error::io("cannot stat", path, e))
}

impl View {
    fn new(path: PathBuf, file: File, scanned: u64) -> Result<View> {
        let meta = stat(&file, &path)?;
        Ok(View {
            dev: meta.dev(),
            inode: meta.ino(),
            path,
            file,
            scanned,
            live_bytes: 0,
            map: FastMap::default(),
        })
    }

    /// The path of the shard file.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Where the live record of `key` is.
    pub(super) fn slot(&self, key: &str) -> Option<&Slot> {
        self.map.get(key)
    }

    /// The live records' keys and places, in no order.
    pub(super) fn slots(&self) -> impl Iterator<Item = (&Arc<str>, &Slot)> {
        self.map.iter()
    }

    /// How many keys the shard holds.
    pub(super) fn key_count(&self) -> usize {
        self.map.len()
    }

    /// The line a slot points at, without its `\n`; `None` when the file is shorter than the
    /// index says (cut by another process).
    pub(super) fn read_line(&self, slot: &Slot) -> Result<Option<Vec<u8>>> {
        let mut buf = vec![0u8; usize::try_from(slot.len).unwrap_or(0)];
        match self.file.read_exact_at(&mut buf, slot.offset) {
            Ok(()) => Ok(Some(buf)),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(Error::io("cannot read", &self.path, e)),
        }
    }

    /// The record held under `key`, as a record (credentials stay the tokens they are: nothing
    /// is decrypted); `None` when the key is not stored or its line is not a record of that key.
    pub(super) fn held_record(&self, key: &str) -> Result<Option<Record>> {
        let Some(slot) = self.map.get(key) else {
            return Ok(None);
        };
        Ok(self
            .read_line(slot)?
            .and_then(|line| serde_json::from_slice::<Record>(&line).ok())
            .filter(|r| r.key == key))
    }

    /// Calls `f(key, line)` for each live record, in file order, reading the file once; `line`
    /// is `None` where the file ends before it.
    pub(super) fn for_each_live_line(
        &self,
        mut f: impl FnMut(&Arc<str>, Option<&[u8]>) -> Result<()>,
    ) -> Result<()> {
        if self.map.is_empty() {
            return Ok(());
        }
        let buf = load::read_all(&self.file, &self.path)?;
        let mut slots: Vec<(&Arc<str>, &Slot)> = self.map.iter().collect();
        slots.sort_by_key(|(_, s)| s.offset);
        for (key, slot) in slots {
            f(
                key,
                buf.get(slot.offset as usize..(slot.offset + slot.len) as usize),
            )?;
        }
        Ok(())
    }

    /// Brings the index up to date with the file at the path; returns the file's length.
    fn refresh(&mut self, shared: &Shared) -> Result<u64> {
        let meta = match fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return self.rescan(shared),
            Err(e) => return Err(Error::io("cannot stat", &self.path, e)),
        };
        if meta.ino() != self.inode || meta.dev() != self.dev || meta.len() < self.scanned {
            return self.rescan(shared);
        }
        if meta.len() > self.scanned {
            self.scan_range(shared, self.scanned, meta.len(), false)?;
        }
        Ok(meta.len())
    }

    /// Reads `[from, to)` of the shard into the index. A trailing partial line is left unread,
    /// unless `terminated` says something follows it (then it is a corrupt line).
    fn scan_range(&mut self, shared: &Shared, from: u64, to: u64, terminated: bool) -> Result<()> {
        let buf = load::read_range(&self.file, &self.path, from, to)?;
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
            let mut order = shared.order.lock();
            for (offset, len, line) in lines {
                match line {
                    Line::Put {
                        key, expires_at, ..
                    } => {
                        self.put_slot(&mut order, &key, (offset, len), expires_at);
                    }
                    Line::Delete { key } => {
                        self.remove_slot(&mut order, &key);
                    }
                    Line::Blank => {}
                    Line::Corrupt => corrupt += 1,
                }
            }
        }
        load::report_corrupt(&self.path, corrupt, &shared.ctx.counters);
        self.scanned = from + consumed;
        Ok(())
    }

    /// Reads the shard afresh (another handle replaced it), keeping the eviction order of the
    /// keys it still holds; returns the file's length.
    fn rescan(&mut self, shared: &Shared) -> Result<u64> {
        let loaded = load::read_shard(&self.path, &shared.ctx.counters)?;
        let mut records: Vec<_> = loaded.records.into_iter().collect();
        records.sort_by_key(|(_, found)| found.position);
        let mut old = std::mem::take(&mut self.map);
        self.live_bytes = 0;
        {
            let mut order = shared.order.lock();
            for (key, found) in records {
                let handle = match old.remove(&key) {
                    Some(slot) => slot.handle,
                    None => order.insert(key.clone()),
                };
                self.insert(key, (found.offset, found.len), found.expires_at, handle);
            }
            for (_, slot) in old {
                order.remove(slot.handle);
            }
        }
        self.adopt(loaded.file, loaded.complete_len)
    }

    /// Takes `file`, now the one at the path, as the shard file, indexed up to `scanned`;
    /// returns its length.
    fn adopt(&mut self, file: File, scanned: u64) -> Result<u64> {
        let meta = stat(&file, &self.path)?;
        self.file = file;
        self.dev = meta.dev();
        self.inode = meta.ino();
        self.scanned = scanned;
        Ok(meta.len())
    }

    /// Appends `ops` as one write at `file_len` (under the flock, just after a refresh) and
    /// applies them to the index.
    fn append(&mut self, shared: &Shared, file_len: u64, ops: Vec<Op>) -> Result<Applied> {
        // A partial line left by a writer that died: our `\n` ends it, so it never swallows a
        // complete record (it reads as one corrupt line).
        let remnant = file_len > self.scanned;
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
                    if *only_if_present && !self.map.contains_key(key) {
                        continue;
                    }
                    write_tombstone(&mut buf, key);
                }
            }
            placed.push((i, start, buf.len() as u64 - start));
            buf.push(b'\n');
        }
        if placed.is_empty() {
            return Ok(Applied::default());
        }
        self.file
            .write_all(&buf)
            .map_err(|e| Error::io("cannot append to", &self.path, e))?;
        if shared.full() {
            self.file
                .sync_data()
                .map_err(|e| Error::io("cannot sync", &self.path, e))?;
        }
        if remnant {
            self.scan_range(shared, self.scanned, file_len + 1, true)?;
        }
        let mut applied = Applied::default();
        {
            let mut order = shared.order.lock();
            let mut ops: Vec<Option<Op>> = ops.into_iter().map(Some).collect();
            for (i, offset, len) in placed {
                match ops[i].take().expect("each op is placed once") {
                    Op::Put {
                        key, expires_at, ..
                    } => {
                        let place = (file_len + offset, len);
                        if self.put_slot(&mut order, &key, place, expires_at) {
                            applied.inserted.push(key);
                        }
                    }
                    Op::Delete { key, .. } => {
                        if self.remove_slot(&mut order, &key) {
                            applied.removed.push(key);
                        }
                    }
                }
            }
        }
        self.scanned = file_len + buf.len() as u64;
        Ok(applied)
    }

    fn needs_compaction(&self) -> bool {
        self.scanned > COMPACTION_MIN_BYTES
            && self.scanned.saturating_sub(self.live_bytes) > self.live_bytes
    }

    /// Rewrites the shard with only its live records, in file order (under the flock).
    fn compact(&mut self, shared: &Shared) -> Result<()> {
        let before = self.scanned;
        let mut out = Vec::with_capacity(usize::try_from(self.live_bytes).unwrap_or(0));
        let mut moved = Vec::with_capacity(self.map.len());
        self.for_each_live_line(|key, line| {
            let Some(line) = line else {
                return Err(Error::Storage(format!(
                    "jsonl L2: {} is shorter than its index",
                    self.path.display()
                )));
            };
            moved.push((key.clone(), out.len() as u64));
            out.extend_from_slice(line);
            out.push(b'\n');
            Ok(())
        })?;
        self.replace(shared, &out)?;
        for (key, offset) in moved {
            if let Some(slot) = self.map.get_mut(&key) {
                slot.offset = offset;
            }
        }
        log::debug!(
            "jsonl L2: compacted {} from {before} to {} bytes",
            self.path.display(),
            self.scanned
        );
        Ok(())
    }

    /// Puts `bytes`, the live records' lines, in place of the shard file: a temp file and a
    /// rename (under the flock), then the new file is the shard's.
    fn replace(&mut self, shared: &Shared, bytes: &[u8]) -> Result<()> {
        fsutil::write_atomically(&self.path, bytes, shared.full())?;
        let file = fsutil::open_private_append(&self.path)?;
        self.adopt(file, bytes.len() as u64)?;
        self.live_bytes = bytes.len() as u64;
        Ok(())
    }

    /// Indexes a record of a key that the index does not hold.
    fn insert(
        &mut self,
        key: Arc<str>,
        (offset, len): (u64, u64),
        expires_at: Timestamp,
        handle: Handle,
    ) {
        self.live_bytes += len + 1;
        self.map.insert(
            key,
            Slot {
                offset,
                len,
                expires_at,
                handle,
            },
        );
    }

    /// Indexes the record of `key` at `(offset, len)`; `true` when the key is new to the shard.
    fn put_slot(
        &mut self,
        order: &mut EvictionOrder<Arc<str>>,
        key: &str,
        (offset, len): (u64, u64),
        expires_at: Timestamp,
    ) -> bool {
        if let Some(slot) = self.map.get_mut(key) {
            self.live_bytes = self.live_bytes - (slot.len + 1) + (len + 1);
            slot.offset = offset;
            slot.len = len;
            slot.expires_at = expires_at;
            order.touch(slot.handle);
            false
        } else {
            let key: Arc<str> = Arc::from(key);
            let handle = order.insert(key.clone());
            self.insert(key, (offset, len), expires_at, handle);
            true
        }
    }

    /// Takes `key` out of the index; `true` when it was there.
    fn remove_slot(&mut self, order: &mut EvictionOrder<Arc<str>>, key: &str) -> bool {
        match self.forget(key) {
            Some(slot) => {
                order.remove(slot.handle);
                true
            }
            None => false,
        }
    }

    fn forget(&mut self, key: &str) -> Option<Slot> {
        let slot = self.map.remove(key)?;
        self.live_bytes -= slot.len + 1;
        Some(slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_index_is_stable_and_in_range() {
        assert_eq!(shard_index("k"), shard_index("k"));
        assert!((0..1000).all(|i| shard_index(&format!("key{i}")) < SHARDS));
        // FNV-1a 64 of "abc" is 0xe71fa2190541574b.
        assert_eq!(shard_index("abc"), 0xb);
    }
}

//! Reading a shard file whole, folded by key (the last line wins): at open, where a torn last
//! line is cut away, and when another handle has replaced the file (docs/FORMAT.md §3.5, §3.6).
//! Also the one report of corrupt lines, for whole files and for the lines read since.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::fast_hash::FastMap;
use crate::fsutil;
use crate::stats::{Counter, TierCounters};
use crate::time::Timestamp;

use super::record::{Line, Meta, for_each_line, parse_line};

/// The last record of a key found in a shard file.
pub(super) struct Found {
    pub(super) offset: u64,
    /// Without the `\n`.
    pub(super) len: u64,
    pub(super) expires_at: Timestamp,
    pub(super) meta: Meta,
    /// The line's number in the file.
    pub(super) position: u64,
}

/// The complete lines of a shard file, folded by key.
pub(super) struct Loaded {
    /// Open to read and append.
    pub(super) file: File,
    file_len: u64,
    /// Where the last complete line ends.
    pub(super) complete_len: u64,
    pub(super) records: FastMap<Arc<str>, Found>,
}

/// Bytes `[from, to)` of `file` (fewer when the file ends first).
pub(super) fn read_range(file: &File, path: &Path, from: u64, to: u64) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; usize::try_from(to - from).unwrap_or(usize::MAX)];
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], from + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("cannot read", path, e)),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

/// The whole of `file`.
pub(super) fn read_all(file: &File, path: &Path) -> Result<Vec<u8>> {
    let len = file
        .metadata()
        .map_err(|e| Error::io("cannot stat", path, e))?
        .len();
    read_range(file, path, 0, len)
}

/// Opens (creating it) and reads the shard file at `path`; its corrupt lines are reported.
pub(super) fn read_shard(path: &Path, counters: &TierCounters) -> Result<Loaded> {
    let file = fsutil::open_private_append(path)?;
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
    report_corrupt(path, corrupt, counters);
    Ok(Loaded {
        file,
        file_len: buf.len() as u64,
        complete_len: complete as u64,
        records,
    })
}

impl Loaded {
    /// Cuts away an unfinished last line (a writer died in the middle of it), counted as one
    /// corrupt record. Only at open, under the shard's lock: a live writer may be appending to
    /// the file at any other time.
    pub(super) fn cut_torn_tail(&self, path: &Path, counters: &TierCounters) -> Result<()> {
        if self.file_len == self.complete_len {
            return Ok(());
        }
        log::warn!(
            "jsonl L2: {} ends in an unfinished line ({} bytes); cut away",
            path.display(),
            self.file_len - self.complete_len
        );
        self.file
            .set_len(self.complete_len)
            .map_err(|e| Error::io("cannot truncate", path, e))?;
        counters.add(Counter::EvictionsCorruption, 1);
        Ok(())
    }
}

/// Warns of and counts `n` corrupt lines read from the shard at `path` (none: nothing).
pub(super) fn report_corrupt(path: &Path, n: u64, counters: &TierCounters) {
    if n == 0 {
        return;
    }
    log::warn!(
        "jsonl L2: {} holds {n} corrupt line(s); ignored",
        path.display()
    );
    counters.add(Counter::EvictionsCorruption, n);
}

//! Export of every live entry as JSON Lines (the line format is in docs/FORMAT.md).
//!
//! A client of the engine's scan ([`Engine::for_each_live_entry`]): L1 first (its counters are
//! the newest), then L2, then L3, each key once. Nothing is counted as a read, nothing is
//! removed or written back: an export has no side effects. The file appears complete or not at
//! all (temp file + rename), and not at all when no tier could be read (a storage error, as for
//! a get: L1 alone is read only when it is the only tier).

use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

use super::Engine;
use crate::entry::{CacheEntry, Credentials};
use crate::error::{Error, Result};
use crate::fsutil;

/// What an export wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ExportCounts {
    pub exported: u64,
    /// Entries that could not be read in any tier (corrupt, or a credential under another
    /// key), each key once: `exported + failed` is the number of live entries.
    pub failed: u64,
}

impl ExportCounts {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("counts serialise")
    }
}

struct Writer<'a> {
    out: BufWriter<std::fs::File>,
    credentials: Credentials,
    counts: ExportCounts,
    error: Option<std::io::Error>,
    progress: &'a mut dyn FnMut(u64, u64),
    total: u64,
    /// Set by the caller to give up; the rest of the scan is then skipped over.
    stop: &'a AtomicBool,
    stopped: bool,
}

impl Writer<'_> {
    fn entry(&mut self, entry: CacheEntry) {
        if self.error.is_some() || self.stopped {
            return;
        }
        if self.stop.load(Ordering::Relaxed) {
            self.stopped = true;
            return;
        }
        let mut line = entry.to_json(self.credentials);
        line.push('\n');
        if let Err(e) = self.out.write_all(line.as_bytes()) {
            self.error = Some(e);
            return;
        }
        self.counts.exported += 1;
        if self.counts.exported.is_multiple_of(1000) {
            (self.progress)(self.counts.exported, self.total);
        }
    }
}

/// Writes every live entry of `engine` to `path` (see the module docs).
pub(super) fn export_to_file(
    engine: &Engine,
    path: &Path,
    include_credentials: bool,
    progress: &mut dyn FnMut(u64, u64),
    stop: &AtomicBool,
) -> Result<ExportCounts> {
    if path.as_os_str().is_empty() {
        return Err(Error::InvalidArgument("the path must not be empty".into()));
    }
    if path.is_dir() {
        return Err(Error::io(
            "cannot export to",
            path,
            std::io::Error::new(std::io::ErrorKind::IsADirectory, "is a directory"),
        ));
    }
    fsutil::create_parent_dirs(path)?;
    let (temp, file) = fsutil::create_temp_beside(path)?;
    // For the progress bar only: the tiers' sizes added up, an upper bound of the keys.
    let total = engine.sizes().iter().sum();
    let mut writer = Writer {
        out: BufWriter::with_capacity(1 << 16, file),
        credentials: if include_credentials {
            Credentials::Plain
        } else {
            Credentials::Masked
        },
        counts: ExportCounts::default(),
        error: None,
        progress,
        total,
        stop,
        stopped: false,
    };
    // With no tier to read, the export fails rather than write an empty file.
    let scanned = engine.for_each_live_entry(&mut |entry| writer.entry(entry));
    let result = scanned
        .and_then(|unreadable| {
            writer.counts.failed = unreadable;
            match writer.error.take() {
                Some(e) => Err(Error::Io {
                    context: "cannot write the export".into(),
                    source: e,
                }),
                None if writer.stopped => Err(Error::Io {
                    context: format!(
                        "export stopped after {} entries; {} was not written (an export is \
                         whole or not at all)",
                        writer.counts.exported,
                        path.display()
                    ),
                    source: std::io::Error::new(
                        std::io::ErrorKind::Interrupted,
                        "stopped on request",
                    ),
                }),
                None => Ok(()),
            }
        })
        .and_then(|()| {
            let file = writer
                .out
                .into_inner()
                .map_err(|e| Error::io("cannot write", &temp, e.into_error()))?;
            if engine.config.durability == crate::config::Durability::Full {
                file.sync_all()
                    .map_err(|e| Error::io("cannot write", &temp, e))?;
            }
            std::fs::rename(&temp, path).map_err(|e| Error::io("cannot rename into", path, e))
        });
    if let Err(e) = result {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    (writer.progress)(writer.counts.exported, writer.counts.exported);
    Ok(writer.counts)
}

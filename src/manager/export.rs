//! Export of every live entry as JSON Lines (`export_to_file`; the file is specified in
//! docs/FORMAT.md §6).
//!
//! Reads L1 first (its counters are the newest), then L2, then L3, writing each key once. Nothing
//! is counted as a read and nothing is removed: an export has no side effects. The file appears
//! complete or not at all (temp file + rename).

use std::collections::HashSet;
use std::io::{BufWriter, Write};
use std::path::Path;

use serde::Serialize;

use super::Inner;
use crate::entry::{CacheEntry, Credentials};
use crate::error::{Error, Result};
use crate::fsutil;

/// What an export wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ExportCounts {
    pub exported: u64,
    /// Stored records that could not be read (corrupt, or a credential under another key).
    pub failed: u64,
}

impl ExportCounts {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("counts serialise")
    }
}

struct Writer<'a> {
    out: BufWriter<std::fs::File>,
    seen: HashSet<String>,
    credentials: Credentials,
    now: crate::time::Timestamp,
    counts: ExportCounts,
    error: Option<std::io::Error>,
    progress: &'a mut dyn FnMut(u64, u64),
    total: u64,
}

impl Writer<'_> {
    fn entry(&mut self, entry: CacheEntry) {
        if self.error.is_some() || entry.is_expired(self.now) || self.seen.contains(&entry.key) {
            return;
        }
        let mut line = entry.to_json(self.credentials);
        line.push('\n');
        if let Err(e) = self.out.write_all(line.as_bytes()) {
            self.error = Some(e);
            return;
        }
        self.seen.insert(entry.key);
        self.counts.exported += 1;
        if self.counts.exported.is_multiple_of(1000) {
            (self.progress)(self.counts.exported, self.total);
        }
    }
}

impl Inner {
    pub(crate) fn export_to_file(
        &self,
        path: &Path,
        include_credentials: bool,
        progress: &mut dyn FnMut(u64, u64),
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
        let stats = self.statistics();
        let mut writer = Writer {
            out: BufWriter::with_capacity(1 << 16, file),
            seen: HashSet::new(),
            credentials: if include_credentials {
                Credentials::Plain
            } else {
                Credentials::Masked
            },
            now: self.now(),
            counts: ExportCounts::default(),
            error: None,
            progress,
            total: stats.total_size,
        };
        let result = self.export_into(&mut writer).and_then(|()| {
            let file = writer
                .out
                .into_inner()
                .map_err(|e| Error::io("cannot write", &temp, e.into_error()))?;
            if self.config.durability == crate::config::Durability::Full {
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

    fn export_into(&self, writer: &mut Writer<'_>) -> Result<()> {
        if let Some(l1) = &self.l1 {
            for entry in l1.entries() {
                writer.entry(entry);
            }
        }
        for (_, slot) in self.lower() {
            let scanned = slot.call(|t| {
                t.scan(&mut |record| match record {
                    Ok(entry) => writer.entry(entry),
                    Err(_) => writer.counts.failed += 1,
                })
            });
            if let Err(e) = scanned {
                log::warn!("export: {} could not be read: {e}", slot.name);
            }
        }
        match writer.error.take() {
            Some(e) => Err(Error::Io {
                context: "cannot write the export".into(),
                source: e,
            }),
            None => Ok(()),
        }
    }
}

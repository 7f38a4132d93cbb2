//! Lock files: empty files whose exclusive `flock` every writer of the file they guard holds (a
//! shard's, or the import of upstream shards; docs/FORMAT.md §3.8). Advisory, blocking, and
//! released when the guard drops, so no error path leaves one held.

use std::fs::File;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::fsutil;

/// An open lock file.
pub(super) struct LockFile {
    path: PathBuf,
    file: File,
}

impl LockFile {
    /// Opens the lock file at `path`, creating it (0600) when missing.
    pub(super) fn open(path: PathBuf) -> Result<LockFile> {
        let file = fsutil::open_private_append(&path)?;
        Ok(LockFile { path, file })
    }

    /// Waits for the exclusive lock and holds it until the guard drops.
    pub(super) fn exclusive(&self) -> Result<FileLock<'_>> {
        self.file
            .lock()
            .map_err(|e| Error::io("cannot lock", &self.path, e))?;
        Ok(FileLock(&self.file))
    }
}

/// An exclusive `flock`, held until dropped.
pub(super) struct FileLock<'a>(&'a File);

impl Drop for FileLock<'_> {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

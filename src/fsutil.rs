//! Files 0600 and directories 0700, for everything pwcache creates (docs/FORMAT.md §8).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Creates `dir` and any missing parents, each 0700. An existing directory is left as it is.
pub fn create_private_dir_all(dir: &Path) -> Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io("cannot create directory", dir, e))
}

/// Creates the parent directories of `path` (0700).
pub fn create_parent_dirs(path: &Path) -> Result<()> {
    match path.parent() {
        Some(parent) => create_private_dir_all(parent),
        None => Ok(()),
    }
}

/// Opens `path` for reading and appending, creating it 0600 when missing.
pub fn open_private_append(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io("cannot open", path, e))
}

/// Creates `path` 0600 if it does not exist (so SQLite, which copies the database's mode to its
/// -wal and -shm files, makes those 0600 too).
pub fn touch_private(path: &Path) -> Result<()> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::io("cannot create", path, e)),
    }
}

/// A temporary file beside `target`, unique to this process and call, created 0600.
pub fn create_temp_beside(target: &Path) -> Result<(PathBuf, File)> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let temp = target.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()));
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)
        .map_err(|e| Error::io("cannot create", &temp, e))?;
    Ok((temp, file))
}

/// Flushes a directory's entries (a rename or a new file in it) to stable storage.
pub fn sync_dir(dir: &Path) -> Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("cannot sync directory", dir, e))
}

/// Writes `bytes` to `target` atomically: a temp file beside it, then a rename. With `durable`
/// the file and the directory are synced, so the new content survives power loss.
pub fn write_atomically(target: &Path, bytes: &[u8], durable: bool) -> Result<()> {
    let (temp, mut file) = create_temp_beside(target)?;
    let result = file
        .write_all(bytes)
        .and_then(|_| if durable { file.sync_all() } else { Ok(()) })
        .map_err(|e| Error::io("cannot write", &temp, e))
        .and_then(|_| {
            fs::rename(&temp, target).map_err(|e| Error::io("cannot rename into", target, e))
        });
    if result.is_err() {
        let _ = fs::remove_file(&temp);
        return result;
    }
    if durable {
        sync_dir(target.parent().unwrap_or(Path::new(".")))?;
    }
    Ok(())
}

//! Whether a database path still names the file the tier opened.
//!
//! SQLite holds its files open: when the database is removed (`rm -rf` of its directory) or
//! replaced (another file renamed over it), its connections go on reading and committing to the
//! old file, which nobody will open again, and every write "succeeds" into it. Comparing the
//! device and inode of the path with those of the file opened tells the two apart, for the price
//! of one `stat`.
//!
//! The WAL and shared-memory files beside a database are found by name: `<path>-wal`,
//! `<path>-shm`. Once the database has left its path, the old ones there would be taken as the
//! WAL of whatever database is opened at the path next, and SQLite would lay the old database's
//! pages over it. So they are removed, but only while they are still the ones this tier opened.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The device and inode of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct FileIdentity {
    dev: u64,
    ino: u64,
}

impl FileIdentity {
    /// The file `path` names now (symbolic links followed, as SQLite follows them).
    pub fn of(path: &Path) -> io::Result<FileIdentity> {
        let meta = std::fs::metadata(path)?;
        Ok(FileIdentity {
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }

    /// Why `path` no longer names this file, or `None` when it still does. A `stat` that fails
    /// for another reason than a missing file (a directory made unreadable, an I/O error) proves
    /// nothing either way, and is `None`: the connection's file is still in place as far as
    /// anyone can tell.
    pub fn lost_at(&self, path: &Path) -> Option<&'static str> {
        match FileIdentity::of(path) {
            Ok(now) if now == *self => None,
            Ok(_) => Some("was replaced by another file while open"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Some("was removed while open"),
            Err(e) => {
                log::debug!("cannot stat {}: {e}", path.display());
                None
            }
        }
    }
}

/// The files a tier opened: its database, and the WAL and shared-memory files beside it.
#[derive(Debug)]
pub(super) struct OpenedFiles {
    database: FileIdentity,
    /// `<path>-wal` and `<path>-shm` as they were when opened (absent outside WAL mode).
    companions: Vec<(PathBuf, FileIdentity)>,
}

impl OpenedFiles {
    /// The files at `path` now, right after the tier opened them.
    pub fn of(path: &Path) -> io::Result<OpenedFiles> {
        let database = FileIdentity::of(path)?;
        let companions = ["-wal", "-shm"]
            .iter()
            .filter_map(|suffix| {
                let mut name = path.as_os_str().to_os_string();
                name.push(suffix);
                let companion = PathBuf::from(name);
                FileIdentity::of(&companion).ok().map(|id| (companion, id))
            })
            .collect();
        Ok(OpenedFiles {
            database,
            companions,
        })
    }

    /// Why `path` no longer names the database opened ([`FileIdentity::lost_at`]).
    pub fn lost_at(&self, path: &Path) -> Option<&'static str> {
        self.database.lost_at(path)
    }

    /// Removes the WAL and shared-memory files of the database opened that are still at their
    /// names, for a database that has left its path (see the module docs). Files of that name
    /// that are not the ones opened belong to another database and are left alone.
    pub fn remove_companions_left_behind(&self) {
        for (companion, opened) in &self.companions {
            if FileIdentity::of(companion).is_ok_and(|now| now == *opened) {
                match std::fs::remove_file(companion) {
                    Ok(()) => log::info!(
                        "removed {}, left behind by a database no longer at its path",
                        companion.display()
                    ),
                    Err(e) => log::warn!("cannot remove {}: {e}", companion.display()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_removed_or_replaced_file_is_told_from_the_same_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"a").unwrap();
        let id = FileIdentity::of(&path).unwrap();
        std::fs::write(&path, b"rewritten in place").unwrap();
        assert_eq!(id.lost_at(&path), None, "the same inode");
        let other = dir.path().join("g");
        std::fs::write(&other, b"b").unwrap();
        std::fs::rename(&other, &path).unwrap();
        assert!(id.lost_at(&path).unwrap().contains("replaced"));
        std::fs::remove_file(&path).unwrap();
        assert!(id.lost_at(&path).unwrap().contains("removed"));
    }

    #[test]
    fn only_the_companions_opened_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.db");
        for name in ["d.db", "d.db-wal", "d.db-shm"] {
            std::fs::write(dir.path().join(name), name).unwrap();
        }
        let opened = OpenedFiles::of(&path).unwrap();
        assert_eq!(opened.companions.len(), 2);
        // Another database's shared-memory file took the name since.
        let other = dir.path().join("other");
        std::fs::write(&other, b"other").unwrap();
        std::fs::rename(&other, dir.path().join("d.db-shm")).unwrap();
        opened.remove_companions_left_behind();
        assert!(
            !dir.path().join("d.db-wal").exists(),
            "the WAL opened is removed"
        );
        assert_eq!(
            std::fs::read(dir.path().join("d.db-shm")).unwrap(),
            b"other"
        );
        assert!(path.exists(), "the database itself is never removed");
    }
}

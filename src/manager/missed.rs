//! What a persistent tier missed, kept on disk beside the other tier, so that it is repaired
//! after a restart and by other processes too.
//!
//! While a tier is skipped (degraded) or a write to it fails, the keys it did not see are
//! remembered in memory by its slot ([`super::slot`]). Memory is not enough: a process that is
//! freed or killed before the tier recovers would leave the tier holding the old entries, and the
//! next handle would serve them as current. So every missed key is also appended to a journal
//! file that lives with the *other* persistent tier (the one that did take the write): L2's
//! journal is `pwcache_l2_missed.jsonl` in L3's directory, L3's is `pwcache_l3_missed.jsonl` in
//! L2's directory. Each line is `{"key":"…"}`, or `{"clear":true}` for a missed clear.
//!
//! The journal is read and emptied, under an exclusive `flock` on the file, by whichever handle
//! next uses the tier successfully: at open, when the tier recovers, and every
//! [`CHECK_EVERY_MICROS`] while it is in use (so a handle in another process, whose tier never
//! failed, repairs it too). The repair removes the listed keys from the tier; the tier that took
//! the write holds the current entry, and a read below the repaired tier finds it.
//!
//! A key is appended after the operation that missed it has finished on every tier (the engine
//! calls [`super::slot::TierSlot::persist_missed`] last), so a repair can never run between the
//! missed write and the write to the other tier and let a stale copy be promoted back.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fsutil;

/// How often a tier in use checks whether another handle left keys for it to repair.
pub const CHECK_EVERY_MICROS: i64 = 100_000;

/// One line of a journal.
#[derive(Serialize, Deserialize, Default)]
struct Line {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    clear: bool,
}

/// What a journal listed.
#[derive(Default, Debug, PartialEq, Eq)]
pub struct Listed {
    pub keys: Vec<String>,
    pub everything: bool,
}

impl Listed {
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && !self.everything
    }
}

/// The journal file of one tier's missed keys.
pub struct MissedJournal {
    path: PathBuf,
}

/// An exclusive `flock` on the journal, released when dropped.
struct Locked(File);

impl Drop for Locked {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

impl MissedJournal {
    /// The journal of tier `name` ("L2", "L3") in `dir`.
    pub fn in_dir(dir: &Path, name: &str) -> MissedJournal {
        MissedJournal {
            path: dir.join(format!(
                "pwcache_{}_missed.jsonl",
                name.to_ascii_lowercase()
            )),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> Result<Locked> {
        fsutil::create_parent_dirs(&self.path)?;
        let file = fsutil::open_private_append(&self.path)?;
        file.lock()
            .map_err(|e| Error::io("cannot lock", &self.path, e))?;
        Ok(Locked(file))
    }

    /// Appends `keys`, or a missed clear, in one write.
    pub fn append(&self, keys: &[String], everything: bool) -> Result<()> {
        let mut buf = Vec::new();
        let mut line = |l: &Line| {
            serde_json::to_writer(&mut buf, l).expect("a journal line serialises");
            buf.push(b'\n');
        };
        if everything {
            line(&Line {
                key: None,
                clear: true,
            });
        }
        for key in keys {
            line(&Line {
                key: Some(key.clone()),
                clear: false,
            });
        }
        if buf.is_empty() {
            return Ok(());
        }
        let mut locked = self.lock()?;
        locked
            .0
            .write_all(&buf)
            .map_err(|e| Error::io("cannot append to", &self.path, e))
    }

    /// Whether the journal lists anything (a missing file lists nothing).
    pub fn has_entries(&self) -> bool {
        std::fs::metadata(&self.path).is_ok_and(|m| m.len() > 0)
    }

    /// Runs `repair` on what the journal lists, under its lock, and empties it when `repair`
    /// succeeds. Nothing is read or locked when the journal is empty or absent.
    pub fn drain(&self, repair: impl FnOnce(&Listed) -> Result<()>) -> Result<()> {
        if !self.has_entries() {
            return Ok(());
        }
        let locked = self.lock()?;
        let len = locked
            .0
            .metadata()
            .map_err(|e| Error::io("cannot stat", &self.path, e))?
            .len();
        let mut bytes = vec![0u8; usize::try_from(len).unwrap_or(0)];
        locked
            .0
            .read_exact_at(&mut bytes, 0)
            .map_err(|e| Error::io("cannot read", &self.path, e))?;
        let listed = parse(&bytes);
        if !listed.is_empty() {
            repair(&listed)?;
        }
        locked
            .0
            .set_len(0)
            .map_err(|e| Error::io("cannot truncate", &self.path, e))
    }
}

/// The keys and clears of a journal's text. A line that does not parse (a torn append) is
/// skipped: it can only be the last, and its key is still in the memory of the handle that
/// wrote it if that handle lives; a key lost that way costs a stale entry, never a lost one.
fn parse(bytes: &[u8]) -> Listed {
    let mut listed = Listed::default();
    for raw in bytes.split(|&b| b == b'\n') {
        let Ok(line) = serde_json::from_slice::<Line>(raw) else {
            continue;
        };
        if line.clear {
            listed.everything = true;
            listed.keys.clear();
        } else if let Some(key) = line.key
            && !listed.everything
        {
            listed.keys.push(key);
        }
    }
    listed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_clears_are_listed_then_drained() {
        let dir = tempfile::tempdir().unwrap();
        let journal = MissedJournal::in_dir(dir.path(), "L2");
        assert!(!journal.has_entries());
        journal.append(&["a".into(), "b".into()], false).unwrap();
        let mut seen = None;
        journal
            .drain(|l| {
                seen = Some(l.keys.clone());
                Ok(())
            })
            .unwrap();
        assert_eq!(seen.unwrap(), ["a", "b"]);
        assert!(!journal.has_entries());
        journal.append(&["c".into()], true).unwrap();
        journal
            .drain(|l| {
                assert!(l.everything && l.keys.is_empty());
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn a_failed_repair_keeps_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let journal = MissedJournal::in_dir(dir.path(), "L3");
        journal.append(&["k".into()], false).unwrap();
        let failed = journal.drain(|_| Err(Error::Storage("still failing".into())));
        assert!(failed.is_err());
        assert!(journal.has_entries());
    }

    #[test]
    fn a_torn_last_line_is_skipped() {
        assert_eq!(
            parse(b"{\"key\":\"a\"}\n{\"ke"),
            Listed {
                keys: vec!["a".into()],
                everything: false
            }
        );
    }
}

//! The SQLite library this process runs on, and whether pwcache can use it.
//!
//! pwcache links the SQLite the host process already has (the system `libsqlite3`) instead of
//! compiling its own copy in: POSIX advisory locks belong to the process, not to a connection, so
//! when a second SQLite copy in the same process (Python's `sqlite3` module, proxywhirl, a C host
//! linking `-lsqlite3`) closes a file pwcache also has open, the kernel drops pwcache's locks too
//! and other processes can overwrite its commits. One SQLite per process shares one lock table
//! (see docs/sqlite.md). The price is a run-time check: the system library may be older than the
//! SQL pwcache runs.

use std::sync::OnceLock;

use crate::error::{Error, Result};

/// The oldest SQLite pwcache runs on: `DELETE ... RETURNING` needs 3.35.0.
pub const MINIMUM_VERSION: i32 = 3_035_000;

/// What the SQLite library of this process offers, as the check needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Library {
    /// `sqlite3_libversion_number()`: 3.40.1 is 3040001.
    version: i32,
    /// Whether the JSON functions are compiled in (`json_each` picks the keys a put must not
    /// evict). Built in since 3.38.0, a compile option before.
    has_json: bool,
}

/// `3040001` as `3.40.1`.
fn dotted(version: i32) -> String {
    format!(
        "{}.{}.{}",
        version / 1_000_000,
        version / 1_000 % 1_000,
        version % 1_000
    )
}

fn check(library: Library) -> Result<()> {
    if library.version < MINIMUM_VERSION {
        return Err(Error::Unsupported(format!(
            "this process runs SQLite {}, and pwcache needs {} or later: upgrade libsqlite3, or \
             turn the SQLite tiers off (l3_config.enabled false, l2_backend \"jsonl\")",
            dotted(library.version),
            dotted(MINIMUM_VERSION)
        )));
    }
    if !library.has_json {
        return Err(Error::Unsupported(format!(
            "this process runs SQLite {} built without the JSON functions, which pwcache needs",
            dotted(library.version)
        )));
    }
    Ok(())
}

/// The SQLite library of this process, asked once.
fn this_process() -> Library {
    let has_json = rusqlite::Connection::open_in_memory()
        .and_then(|conn| conn.query_row("SELECT json_valid('[]')", [], |r| r.get::<_, i64>(0)))
        .is_ok();
    Library {
        version: rusqlite::version_number(),
        has_json,
    }
}

/// `Ok` when this process's SQLite can run pwcache's SQLite tiers, else an
/// [`Error::Unsupported`] that names the version found and the one needed.
pub fn check_this_process() -> Result<()> {
    static LIBRARY: OnceLock<Library> = OnceLock::new();
    check(*LIBRARY.get_or_init(this_process))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_from_the_minimum_on_are_accepted() {
        for version in [MINIMUM_VERSION, 3_040_001, 3_045_003, 4_000_000] {
            assert!(
                check(Library {
                    version,
                    has_json: true
                })
                .is_ok(),
                "{version}"
            );
        }
    }

    #[test]
    fn an_older_sqlite_is_refused_with_both_versions_named() {
        let e = check(Library {
            version: 3_034_001,
            has_json: true,
        })
        .unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::Unsupported);
        let message = e.to_string();
        assert!(message.contains("SQLite 3.34.1"), "{message}");
        assert!(message.contains("3.35.0 or later"), "{message}");
    }

    #[test]
    fn a_sqlite_without_json_is_refused() {
        let e = check(Library {
            version: 3_037_002,
            has_json: false,
        })
        .unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::Unsupported);
        assert!(e.to_string().contains("JSON functions"), "{e}");
    }

    #[test]
    fn the_sqlite_of_this_process_is_usable() {
        check_this_process().unwrap();
    }
}

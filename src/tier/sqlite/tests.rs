//! Unit tests of what only the module sees: the pragmas, the reader pool, the L3 upsert.

use std::sync::Arc;

use super::*;
use crate::config::{Durability, EvictionPolicy};
use crate::crypto::Crypto;
use crate::stats::TierCounters;

fn ctx(durability: Durability, dir: &Path) -> TierContext {
    TierContext {
        max_entries: None,
        eviction_policy: EvictionPolicy::Lru,
        durability,
        crypto: Arc::new(
            Crypto::new(Some("dGVzdC1rZXktZm9yLXB3Y2FjaGUtZml4dHVyZXMtMDE="), dir).unwrap(),
        ),
        counters: Arc::new(TierCounters::new(true)),
    }
}

fn pragma(tier: &SqliteTier, name: &str) -> String {
    let writer = tier.writer.lock();
    writer
        .conn
        .query_row(&format!("PRAGMA {name}"), [], |r| {
            r.get::<_, rusqlite::types::Value>(0)
        })
        .map(|v| match v {
            Value::Text(t) => t,
            Value::Integer(n) => n.to_string(),
            other => format!("{other:?}"),
        })
        .unwrap()
}

#[test]
fn durability_sets_synchronous_and_every_database_is_wal() {
    let dir = tempfile::tempdir().unwrap();
    let normal = SqliteTier::open(
        &dir.path().join("n.db"),
        Schema::L3,
        ctx(Durability::Normal, dir.path()),
    )
    .unwrap();
    let full = SqliteTier::open(
        &dir.path().join("f.db"),
        Schema::L2,
        ctx(Durability::Full, dir.path()),
    )
    .unwrap();
    assert_eq!(pragma(&normal, "synchronous"), "1");
    assert_eq!(pragma(&full, "synchronous"), "2");
    assert_eq!(pragma(&normal, "journal_mode"), "wal");
    assert_eq!(pragma(&full, "journal_mode"), "wal");
    // The lock is waited for by `wait_for_lock`, not SQLite's own sleeps.
    assert_eq!(pragma(&full, "busy_timeout"), "0");
}

#[test]
fn readers_are_pooled_and_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    let tier = SqliteTier::open(
        &dir.path().join("r.db"),
        Schema::L3,
        ctx(Durability::Normal, dir.path()),
    )
    .unwrap();
    for _ in 0..3 {
        tier.len().unwrap();
    }
    assert_eq!(tier.readers.lock().len(), 1);
    let refused = tier.read("test", |conn| {
        conn.execute("DELETE FROM cache_entries", []).map(|_| ())
    });
    assert!(refused.is_err());
}

#[test]
fn the_l3_upsert_keeps_created_at_and_the_rowid() {
    let sql = Sql::new(Schema::L3, EvictionPolicy::Fifo);
    assert!(sql.upsert.contains("ON CONFLICT(key) DO UPDATE"));
    assert!(sql.upsert.contains("updated_at = excluded.updated_at"));
    assert!(!sql.upsert.contains("created_at = excluded"));
    assert!(sql.evict.contains("ORDER BY rowid"));
}

fn wal_bytes(db: &Path) -> u64 {
    std::fs::metadata(format!("{}-wal", db.display()))
        .map(|m| m.len())
        .unwrap_or(0)
}

fn put_one_by_one(tier: &SqliteTier, from: usize, count: usize) {
    let now = SystemClock.now();
    for i in from..from + count {
        let key = format!("k{i:06}");
        let entry = CacheEntry::new(&key, format!("http://{key}.example:8080"), "t", now, 3600);
        tier.put_many(&[entry]).unwrap();
    }
}

/// The checkpoint thread copies the WAL into the database while the writer goes on: with
/// SQLite's automatic checkpoint off (the WAL hook) and the WAL below the writer's own mark,
/// nothing else would.
#[test]
fn the_checkpoint_thread_copies_the_wal_into_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let tier = SqliteTier::open(&db, Schema::L3, ctx(Durability::Normal, dir.path())).unwrap();
    assert!(tier.checkpointer.is_some());
    let empty = std::fs::metadata(&db).unwrap().len();
    let frame = (connection::NEW_DATABASE_PAGE_SIZE + 24) as u64;
    let mut written = 0;
    // Past the checkpoint mark, well below the writer's own.
    while wal_bytes(&db) < 2 * checkpointer::CHECKPOINT_PAGES as u64 * frame {
        put_one_by_one(&tier, written, 100);
        written += 100;
    }
    assert!(wal_bytes(&db) < checkpointer::WRITER_CHECKPOINT_PAGES as u64 * frame);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::metadata(&db).unwrap().len() <= empty {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing was checkpointed into {} after {written} puts",
            db.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // What was copied is whole: another connection reads every row.
    drop(tier);
    let conn = Connection::open(&db).unwrap();
    let rows: i64 = conn
        .query_row("SELECT COUNT(*) FROM cache_entries", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, written as i64);
}

/// However far the thread falls behind, the writer checkpoints itself at its mark: the WAL stays
/// near it. Past it by what is committed while a checkpoint of the thread still runs (the
/// writer's is then refused, and tried again at the next commit), never by the 50,000 pages
/// these puts write in all.
#[test]
fn the_wal_stays_bounded_while_one_writer_commits_without_pause() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.db");
    let tier = SqliteTier::open(&db, Schema::L2, ctx(Durability::Normal, dir.path())).unwrap();
    let frame = (connection::NEW_DATABASE_PAGE_SIZE + 24) as u64;
    let bound = 2 * checkpointer::WRITER_CHECKPOINT_PAGES as u64 * frame;
    let mut most = 0;
    // About 5 frames a put: several times the writer's mark in all.
    for round in 0..100 {
        put_one_by_one(&tier, round * 100, 100);
        most = most.max(wal_bytes(&db));
    }
    assert!(
        most <= bound,
        "the WAL reached {most} bytes, past twice the writer's mark ({bound} bytes)"
    );
}

/// A tier whose file left its path stops serving, and its checkpoint thread ends: a file
/// closed without a checkpoint (it may be damaged, or its WAL's name another file's) gets none
/// from the thread either.
#[test]
fn the_checkpoint_thread_ends_when_the_tier_stops_serving() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let tier = SqliteTier::open(&db, Schema::L3, ctx(Durability::Normal, dir.path())).unwrap();
    put_one_by_one(&tier, 0, 10);
    let checkpointer = tier.checkpointer.as_ref().unwrap();
    assert!(!checkpointer.ended());
    std::fs::remove_file(&db).unwrap();
    let now = SystemClock.now();
    let entry = CacheEntry::new("after", "http://after.example:8080", "t", now, 3600);
    assert!(
        tier.put_many(&[entry]).is_err(),
        "the put after the removal fails"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !checkpointer.ended() {
        assert!(
            std::time::Instant::now() < deadline,
            "the checkpoint thread still runs"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

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

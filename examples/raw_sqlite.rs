//! The limit for a SQLite tier: raw rusqlite single-row commits and one batched commit on
//! upstream's L3 table, with upstream's four secondary indexes and with the key index only.
//! `cargo run --release --example raw_sqlite`.

use std::time::Instant;

fn main() {
    let dir = tempfile::tempdir().unwrap();
    for (name, indexes, page) in [
        ("upstream schema", true, 4096),
        ("pk only", false, 4096),
        ("upstream, 1k pages", true, 1024),
    ] {
        let path = dir.path().join(format!("{name}.db"));
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(&format!(
            "PRAGMA page_size={page}; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
        ))
        .unwrap();
        c.execute_batch("CREATE TABLE cache_entries (key TEXT PRIMARY KEY, proxy_url TEXT NOT NULL, username_encrypted BLOB, password_encrypted BLOB, source TEXT NOT NULL, fetch_time REAL NOT NULL, last_accessed REAL NOT NULL, access_count INTEGER DEFAULT 0, ttl_seconds INTEGER NOT NULL, expires_at REAL NOT NULL, health_status TEXT DEFAULT 'unknown', failure_count INTEGER DEFAULT 0, created_at REAL NOT NULL, updated_at REAL NOT NULL)").unwrap();
        if indexes {
            c.execute_batch("CREATE INDEX i1 ON cache_entries(expires_at); CREATE INDEX i2 ON cache_entries(source); CREATE INDEX i3 ON cache_entries(health_status); CREATE INDEX i4 ON cache_entries(last_accessed);").unwrap();
        }
        let n = 20000;
        let t = Instant::now();
        for i in 0..n {
            c.execute_batch("BEGIN IMMEDIATE").unwrap();
            c.prepare_cached("INSERT INTO cache_entries VALUES (?1,?2,NULL,NULL,'user',?3,?3,0,3600,?4,'unknown',0,?3,?3)").unwrap()
              .execute(rusqlite::params![format!("k{i}"), format!("http://h{i}:1"), 1.7e9 + i as f64, 1.7e9 + 3600.0 + i as f64]).unwrap();
            c.execute_batch("COMMIT").unwrap();
        }
        let el = t.elapsed();
        println!(
            "{name:20} {:6.1} µs/insert-commit",
            el.as_secs_f64() * 1e6 / n as f64
        );
        let t = Instant::now();
        c.execute_batch("BEGIN IMMEDIATE").unwrap();
        for i in n..2 * n {
            c.prepare_cached("INSERT INTO cache_entries VALUES (?1,?2,NULL,NULL,'user',?3,?3,0,3600,?4,'unknown',0,?3,?3)").unwrap()
              .execute(rusqlite::params![format!("k{i}"), format!("http://h{i}:1"), 1.7e9 + i as f64, 1.7e9 + 3600.0 + i as f64]).unwrap();
        }
        c.execute_batch("COMMIT").unwrap();
        println!(
            "{name:20} {:6.1} µs/insert batched",
            t.elapsed().as_secs_f64() * 1e6 / n as f64
        );
    }
}

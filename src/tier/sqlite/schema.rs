//! Upstream's tables, created or migrated in place, our side table and indexes, and the SQL text
//! of every statement the tier runs (built once per tier, then prepared once per connection).

use rusqlite::Connection;

use crate::config::EvictionPolicy;

use super::Schema;

/// `l2_cache`, as proxywhirl 0.3.3 creates it (column order matters: upstream reads `SELECT *`).
const L2_TABLE: &str = "CREATE TABLE IF NOT EXISTS l2_cache (
    key TEXT PRIMARY KEY,
    proxy_url TEXT NOT NULL,
    username_encrypted BLOB,
    password_encrypted BLOB,
    source TEXT NOT NULL,
    fetch_time REAL NOT NULL,
    last_accessed REAL NOT NULL,
    access_count INTEGER DEFAULT 0,
    ttl_seconds INTEGER NOT NULL,
    expires_at REAL NOT NULL,
    health_status TEXT DEFAULT 'unknown',
    failure_count INTEGER DEFAULT 0,
    evicted_from_l1 INTEGER DEFAULT 0
);";

/// Of upstream's indexes, the ones pwcache queries (expiry sweeps). Upstream's others
/// (`idx_l2_source`; in L3 `idx_source`, `idx_health_status`, `idx_last_accessed`) serve no
/// query of ours, yet each one is another b-tree written by every put: a single-row commit on
/// upstream's full L3 index set costs 117 µs here against 31 µs with the key index alone
/// (`cargo run --release --example raw_sqlite`). They are not created in new databases, left as
/// they are in existing ones, and proxywhirl creates them itself (`IF NOT EXISTS`) when it opens
/// a database, so both programs still read each other's files.
const L2_INDEXES: &str = "CREATE INDEX IF NOT EXISTS idx_l2_expires_at ON l2_cache(expires_at);";

/// Ours: the health fields `l2_cache` has no column for. A `l2_cache` row without a side row
/// reads defaults, so rows upstream wrote need none. The triggers keep the side table in step
/// with whatever deletes or inserts `l2_cache` rows, proxywhirl included (its `INSERT OR REPLACE`
/// is an insert, and its write means "health fields at their defaults").
const L2_SIDE_TABLE: &str = "CREATE TABLE IF NOT EXISTS pwcache_l2_health (
    key TEXT PRIMARY KEY,
    last_health_check REAL,
    consecutive_health_failures INTEGER NOT NULL DEFAULT 0,
    consecutive_health_successes INTEGER NOT NULL DEFAULT 0,
    recovery_attempt INTEGER NOT NULL DEFAULT 0,
    next_check_time REAL,
    last_health_error TEXT,
    total_health_checks INTEGER NOT NULL DEFAULT 0,
    total_health_check_failures INTEGER NOT NULL DEFAULT 0
);
CREATE TRIGGER IF NOT EXISTS pwcache_l2_health_after_delete AFTER DELETE ON l2_cache
BEGIN
    DELETE FROM pwcache_l2_health WHERE key = OLD.key;
END;
CREATE TRIGGER IF NOT EXISTS pwcache_l2_health_after_insert AFTER INSERT ON l2_cache
BEGIN
    DELETE FROM pwcache_l2_health WHERE key = NEW.key;
END;";

/// `cache_entries` and `health_history`, as proxywhirl 0.3.3 creates them.
const L3_TABLES: &str = "CREATE TABLE IF NOT EXISTS cache_entries (
    key TEXT PRIMARY KEY,
    proxy_url TEXT NOT NULL,
    username_encrypted BLOB,
    password_encrypted BLOB,
    source TEXT NOT NULL,
    fetch_time REAL NOT NULL,
    last_accessed REAL NOT NULL,
    access_count INTEGER DEFAULT 0,
    ttl_seconds INTEGER NOT NULL,
    expires_at REAL NOT NULL,
    health_status TEXT DEFAULT 'unknown',
    failure_count INTEGER DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    last_health_check REAL,
    consecutive_health_failures INTEGER DEFAULT 0,
    consecutive_health_successes INTEGER DEFAULT 0,
    recovery_attempt INTEGER DEFAULT 0,
    next_check_time REAL,
    last_health_error TEXT,
    total_health_checks INTEGER DEFAULT 0,
    total_health_check_failures INTEGER DEFAULT 0,
    evicted_from_l1 INTEGER DEFAULT 0
);
CREATE TABLE IF NOT EXISTS health_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    proxy_key TEXT NOT NULL,
    check_time REAL NOT NULL,
    status TEXT NOT NULL,
    response_time_ms REAL,
    error_message TEXT,
    check_url TEXT NOT NULL,
    FOREIGN KEY (proxy_key) REFERENCES cache_entries(key) ON DELETE CASCADE
);";

const L3_INDEXES: &str = "CREATE INDEX IF NOT EXISTS idx_expires_at ON cache_entries(expires_at);
CREATE INDEX IF NOT EXISTS idx_health_history_proxy ON health_history(proxy_key);
CREATE INDEX IF NOT EXISTS idx_health_history_time ON health_history(check_time);";

/// The columns a legacy `cache_entries` lacks, in the order upstream appends them.
pub(super) const L3_MIGRATED_COLUMNS: [(&str, &str); 9] = [
    ("last_health_check", "REAL"),
    ("consecutive_health_failures", "INTEGER DEFAULT 0"),
    ("consecutive_health_successes", "INTEGER DEFAULT 0"),
    ("recovery_attempt", "INTEGER DEFAULT 0"),
    ("next_check_time", "REAL"),
    ("last_health_error", "TEXT"),
    ("total_health_checks", "INTEGER DEFAULT 0"),
    ("total_health_check_failures", "INTEGER DEFAULT 0"),
    ("evicted_from_l1", "INTEGER DEFAULT 0"),
];

/// The 21 fields of an entry, in [`crate::CacheEntry`]'s order: what every read selects and
/// [`super::codec::decode`] reads by position.
pub const ENTRY_COLUMNS: [&str; 21] = [
    "key",
    "proxy_url",
    "username_encrypted",
    "password_encrypted",
    "source",
    "fetch_time",
    "last_accessed",
    "access_count",
    "ttl_seconds",
    "expires_at",
    "health_status",
    "failure_count",
    "evicted_from_l1",
    "last_health_check",
    "consecutive_health_failures",
    "consecutive_health_successes",
    "recovery_attempt",
    "next_check_time",
    "last_health_error",
    "total_health_checks",
    "total_health_check_failures",
];

/// The first 13 of [`ENTRY_COLUMNS`] live in `l2_cache`, the other 8 in `pwcache_l2_health`.
const L2_MAIN_COLUMNS: usize = 13;

/// The name of an index of ours that serves the policy's `ORDER BY`, and its columns; `None`
/// when upstream's indexes (or the rowid) already do.
fn policy_index(schema: Schema, policy: EvictionPolicy) -> Option<(&'static str, &'static str)> {
    match (schema, policy) {
        (Schema::L2, EvictionPolicy::Lru) => {
            Some(("pwcache_idx_l2_last_accessed", "last_accessed"))
        }
        // Upstream's name, so a database that has it already is not given a second one.
        (Schema::L3, EvictionPolicy::Lru) => Some(("idx_last_accessed", "last_accessed")),
        (Schema::L2, EvictionPolicy::Lfu) => {
            Some(("pwcache_idx_l2_lfu", "access_count, last_accessed"))
        }
        (Schema::L3, EvictionPolicy::Lfu) => {
            Some(("pwcache_idx_lfu", "access_count, last_accessed"))
        }
        (_, EvictionPolicy::Fifo) => None, // rowid
    }
}

/// Creates the tables that are missing (upstream's, and our L2 side table) and adds the legacy
/// L3 columns. Runs inside the caller's transaction.
pub(super) fn create_tables(conn: &Connection, schema: Schema) -> rusqlite::Result<()> {
    match schema {
        Schema::L2 => {
            conn.execute_batch(L2_TABLE)?;
            conn.execute_batch(L2_SIDE_TABLE)?;
        }
        Schema::L3 => {
            conn.execute_batch(L3_TABLES)?;
            let present = column_names(conn, "cache_entries")?;
            for (name, definition) in L3_MIGRATED_COLUMNS {
                if !present.iter().any(|c| c == name) {
                    log::info!("adding column {name} to a legacy cache_entries table");
                    conn.execute_batch(&format!(
                        "ALTER TABLE cache_entries ADD COLUMN {name} {definition}"
                    ))?;
                }
            }
        }
    }
    Ok(())
}

/// Creates upstream's indexes and, for a bounded tier, the index of its policy.
pub(super) fn create_indexes(
    conn: &Connection,
    schema: Schema,
    bounded_by: Option<EvictionPolicy>,
) -> rusqlite::Result<()> {
    match schema {
        Schema::L2 => conn.execute_batch(L2_INDEXES)?,
        Schema::L3 => conn.execute_batch(L3_INDEXES)?,
    }
    if let Some((name, columns)) = bounded_by.and_then(|p| policy_index(schema, p)) {
        conn.execute_batch(&format!(
            "CREATE INDEX IF NOT EXISTS {name} ON {}({columns})",
            schema.table()
        ))?;
    }
    Ok(())
}

/// The columns of `table`, in order.
pub(super) fn column_names(conn: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(&format!("PRAGMA table_info({table})"))?;
    let names = stmt.query_map([], |row| row.get::<_, String>(1))?;
    names.collect()
}

/// The columns the tier reads or writes that `table` lacks (a table of that name that is not
/// upstream's); empty when all are there.
pub(super) fn missing_columns(conn: &Connection, schema: Schema) -> rusqlite::Result<Vec<String>> {
    let present = column_names(conn, schema.table())?;
    let needed: &[&str] = match schema {
        Schema::L2 => &ENTRY_COLUMNS[..L2_MAIN_COLUMNS],
        Schema::L3 => &ENTRY_COLUMNS,
    };
    let extra: &[&str] = match schema {
        Schema::L2 => &[],
        Schema::L3 => &["created_at", "updated_at"],
    };
    Ok(needed
        .iter()
        .chain(extra)
        .filter(|c| !present.iter().any(|p| p == *c))
        .map(|c| c.to_string())
        .collect())
}

/// The SQL text of every statement, for one schema and policy.
pub(super) struct Sql {
    /// The 21 entry columns, in order, `WHERE key = ?1`.
    pub get: String,
    /// The 21 entry columns of every row.
    pub scan: String,
    /// Writes the stored columns of one entry; L3: `?1..?21` in [`ENTRY_COLUMNS`] order, `?22` =
    /// now (created_at on insert, updated_at always). L2: `?1..?13`.
    pub upsert: String,
    /// L2 only: the side row, `?1` = key, `?2..?9` the eight health fields.
    pub side_upsert: &'static str,
    pub side_delete: &'static str,
    pub exists: String,
    pub delete: String,
    pub clear: String,
    /// `expires_at < ?1`, returning the keys.
    pub expire: String,
    /// Deletes the `?1` first rows in eviction order, returning their keys.
    pub evict: String,
    /// The same among the rows whose key is not in the JSON array `?2` (the keys just written).
    pub evict_others: String,
    /// A usage record: `?1` key, `?2` access_count, `?3` last_accessed, `?4` evicted_from_l1,
    /// `?5`..`?7` the version (and `?8` updated_at in L3). No indexed column is set, so no
    /// index page is written.
    pub record_use: String,
    /// One more failed health check on whatever `?1` holds (and `?2` updated_at in L3),
    /// returning the new count and the expiry.
    pub record_failure: String,
    /// Deletes `?1` if it holds the version `?5`..`?7`.
    pub delete_if_version: String,
    pub count: String,
}

impl Sql {
    pub fn new(schema: Schema, policy: EvictionPolicy) -> Sql {
        let table = schema.table();
        let (select, from) = match schema {
            Schema::L3 => (ENTRY_COLUMNS.join(", "), table.to_string()),
            Schema::L2 => {
                let main = ENTRY_COLUMNS[..L2_MAIN_COLUMNS]
                    .iter()
                    .map(|c| format!("t.{c}"));
                let side = ENTRY_COLUMNS[L2_MAIN_COLUMNS..]
                    .iter()
                    .map(|c| format!("h.{c}"));
                (
                    main.chain(side).collect::<Vec<_>>().join(", "),
                    "l2_cache t LEFT JOIN pwcache_l2_health h ON h.key = t.key".to_string(),
                )
            }
        };
        let key_column = match schema {
            Schema::L3 => "key",
            Schema::L2 => "t.key",
        };
        let upsert = match schema {
            Schema::L3 => upsert_sql(table, &ENTRY_COLUMNS, true),
            Schema::L2 => upsert_sql(table, &ENTRY_COLUMNS[..L2_MAIN_COLUMNS], false),
        };
        let order = match policy {
            EvictionPolicy::Lru => "last_accessed, rowid",
            EvictionPolicy::Lfu => "access_count, last_accessed, rowid",
            EvictionPolicy::Fifo => "rowid",
        };
        Sql {
            get: format!("SELECT {select} FROM {from} WHERE {key_column} = ?1"),
            scan: format!("SELECT {select} FROM {from}"),
            upsert,
            side_upsert: "INSERT INTO pwcache_l2_health (key, last_health_check, \
                consecutive_health_failures, consecutive_health_successes, recovery_attempt, \
                next_check_time, last_health_error, total_health_checks, \
                total_health_check_failures) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
                ON CONFLICT(key) DO UPDATE SET last_health_check = excluded.last_health_check, \
                consecutive_health_failures = excluded.consecutive_health_failures, \
                consecutive_health_successes = excluded.consecutive_health_successes, \
                recovery_attempt = excluded.recovery_attempt, \
                next_check_time = excluded.next_check_time, \
                last_health_error = excluded.last_health_error, \
                total_health_checks = excluded.total_health_checks, \
                total_health_check_failures = excluded.total_health_check_failures",
            side_delete: "DELETE FROM pwcache_l2_health WHERE key = ?1",
            exists: format!("SELECT 1 FROM {table} WHERE key = ?1"),
            delete: format!("DELETE FROM {table} WHERE key = ?1"),
            clear: format!("DELETE FROM {table} RETURNING key"),
            expire: format!("DELETE FROM {table} WHERE expires_at < ?1 RETURNING key"),
            evict: format!(
                "DELETE FROM {table} WHERE rowid IN \
                 (SELECT rowid FROM {table} ORDER BY {order} LIMIT ?1) RETURNING key"
            ),
            evict_others: format!(
                "DELETE FROM {table} WHERE rowid IN \
                 (SELECT rowid FROM {table} WHERE key NOT IN (SELECT value FROM json_each(?2)) \
                  ORDER BY {order} LIMIT ?1) RETURNING key"
            ),
            count: format!("SELECT COUNT(*) FROM {table}"),
            record_use: match schema {
                Schema::L2 => format!(
                    "UPDATE l2_cache SET access_count = ?2, last_accessed = ?3, \
                     evicted_from_l1 = ?4 WHERE key = ?1 AND {SAME_VERSION}"
                ),
                Schema::L3 => format!(
                    "UPDATE cache_entries SET access_count = ?2, last_accessed = ?3, \
                     evicted_from_l1 = ?4, updated_at = ?8 WHERE key = ?1 AND {SAME_VERSION}"
                ),
            },
            record_failure: match schema {
                Schema::L2 => {
                    "UPDATE l2_cache SET failure_count = COALESCE(failure_count, 0) + 1, \
                               health_status = 'unhealthy' WHERE key = ?1 \
                               RETURNING failure_count, expires_at"
                        .to_string()
                }
                Schema::L3 => "UPDATE cache_entries SET \
                               failure_count = COALESCE(failure_count, 0) + 1, \
                               health_status = 'unhealthy', updated_at = ?2 WHERE key = ?1 \
                               RETURNING failure_count, expires_at"
                    .to_string(),
            },
            delete_if_version: format!("DELETE FROM {table} WHERE key = ?1 AND {SAME_VERSION}"),
        }
    }
}

/// The row is the version `?5` (fetch_time), `?6` (expires_at), `?7` (proxy_url). A stored REAL
/// reads back as the microsecond it rounds to, so times are compared to the half microsecond and
/// rows written by another program (full float precision) match too.
const SAME_VERSION: &str = "abs(fetch_time - ?5) < 0.0000005 AND abs(expires_at - ?6) < 0.0000005 \
                            AND proxy_url = ?7";

/// `INSERT ... ON CONFLICT(key) DO UPDATE`: an update keeps the rowid (FIFO order) and, in L3,
/// `created_at`.
fn upsert_sql(table: &str, columns: &[&str], timestamps: bool) -> String {
    let mut names: Vec<&str> = columns.to_vec();
    let mut values: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
    let mut updates: Vec<String> = columns[1..]
        .iter()
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    if timestamps {
        let now = format!("?{}", columns.len() + 1);
        names.extend(["created_at", "updated_at"]);
        values.extend([now.clone(), now]);
        updates.push("updated_at = excluded.updated_at".to_string());
    }
    format!(
        "INSERT INTO {table} ({}) VALUES ({}) ON CONFLICT(key) DO UPDATE SET {}",
        names.join(", "),
        values.join(", "),
        updates.join(", ")
    )
}

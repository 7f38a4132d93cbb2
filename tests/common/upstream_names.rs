//! proxywhirl 0.3.3's names for an entry's fields and its tables' columns, in its order.
//!
//! A fixed copy of upstream's schema, on purpose not taken from pwcache's own lists
//! (src/tier/sqlite/schema.rs): the tests check what pwcache creates and reads against what
//! upstream does, and a list taken from the code would follow a change there and pass it unseen.
//! Included by path (`#[path = "common/upstream_names.rs"]`) by the tests that use it.
#![allow(dead_code)]

/// The fields that follow the key, the URL and the two credentials, in upstream's JSON and in
/// both of its tables alike.
pub const PLAIN_FIELDS: [&str; 8] = [
    "source",
    "fetch_time",
    "last_accessed",
    "access_count",
    "ttl_seconds",
    "expires_at",
    "health_status",
    "failure_count",
];

/// The health-check fields, in the order upstream appended them to `cache_entries`.
pub const HEALTH_FIELDS: [&str; 8] = [
    "last_health_check",
    "consecutive_health_failures",
    "consecutive_health_successes",
    "recovery_attempt",
    "next_check_time",
    "last_health_error",
    "total_health_checks",
    "total_health_check_failures",
];

/// The first columns of both tables: the key, the URL and the encrypted credentials.
const KEY_COLUMNS: [&str; 4] = [
    "key",
    "proxy_url",
    "username_encrypted",
    "password_encrypted",
];

/// `l2_cache`'s columns.
pub fn l2_columns() -> Vec<&'static str> {
    [&KEY_COLUMNS[..], &PLAIN_FIELDS, &["evicted_from_l1"]].concat()
}

/// `cache_entries`' columns.
pub fn l3_columns() -> Vec<&'static str> {
    [
        &KEY_COLUMNS[..],
        &PLAIN_FIELDS,
        &["created_at", "updated_at"],
        &HEALTH_FIELDS,
        &["evicted_from_l1"],
    ]
    .concat()
}

/// An entry's JSON fields, the credentials in clear.
pub fn entry_fields() -> Vec<&'static str> {
    [
        &["key", "proxy_url", "username", "password"][..],
        &PLAIN_FIELDS,
        &["evicted_from_l1"],
        &HEALTH_FIELDS,
    ]
    .concat()
}

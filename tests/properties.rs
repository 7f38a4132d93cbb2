//! Property tests of everything pwcache parses or reads back, on stable, in CI: configuration
//! JSON, entry JSON, warm files of each format, JSONL shards (any bytes, and valid shards cut
//! and followed by any bytes) and SQLite rows holding any values.
//!
//! The properties themselves live in `tests/input_checks/` and are shared with the cargo-fuzz
//! targets (`fuzz/`), which run the same checks on libFuzzer's inputs for millions of cases
//! (docs/reliability.md, "Fuzzing"). Here proptest feeds them two kinds of input: arbitrary
//! bytes or text, and inputs built from the fields each parser knows with values of every type
//! (so that many of them parse and reach the deeper checks). Case counts keep the whole file
//! under a few seconds in release builds.
//!
//! Over 700 lines, one idea: the proptest driver of `tests/input_checks/`, one strategy and one
//! property per input.

mod input_checks;
#[path = "common/upstream_names.rs"]
mod upstream_names;

use input_checks::config::check_config_json;
use input_checks::entry::{EntryBench, check_entry_json, check_entry_list_json};
use input_checks::entry::{check_entry_round_trip, timestamp_from};
use input_checks::shard::{MAX_RECORDS, ShardBench};
use input_checks::sqlite_row::{Cell, SqlRow, SqliteBench, default_cell};
use input_checks::warm::{WarmBench, WarmFormat};
use input_checks::{KEY, now};

use std::sync::LazyLock;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use pwcache::tier::jsonl::shard_index;
use pwcache::tier::sqlite::{ENTRY_COLUMNS, Schema};
use pwcache::{CacheEntry, HealthStatus, Secret};
use serde_json::{Map, Value, json};

/// Runs `check` on `cases` values of `strategy`; a panic in the check fails the test with the
/// smallest input proptest finds.
fn run<S: Strategy>(cases: u32, strategy: S, check: impl Fn(S::Value)) {
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    if let Err(e) = runner.run(&strategy, |value| {
        check(value);
        Ok(())
    }) {
        panic!("{e}");
    }
}

// ---- JSON building blocks ----------------------------------------------------------------------

/// Strings that mean something to some parser.
const WORDS: &[&str] = &[
    "",
    "lru",
    "lfu",
    "fifo",
    "jsonl",
    "sqlite",
    "normal",
    "full",
    "healthy",
    "unknown",
    "dead",
    "delete",
    "***",
    "http://10.0.0.1:8080",
    "socks5://u:p@h:1080",
    "2026-11-24T00:00:00Z",
    "2026-11-24T00:00:00.123456+05:30",
    "2026-11-24 00:00:00",
    "0000-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999-01:00",
    "/tmp/pwcache-check",
    KEY,
];

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(WORDS).prop_map(str::to_string),
        1 => ".{0,12}",
    ]
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::sample::select(&[0i64, 1, -1, 2, 60, 3600, i64::MAX, i64::MIN][..])
            .prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        prop::sample::select(&[0.25, 1e19, 9.3e18, 1e300, -1.5][..]).prop_map(Value::from),
    ]
}

/// Any JSON value, its object keys mostly from `names`.
fn json_value(names: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        number(),
        word().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 32, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((name(names), inner), 0..6)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

fn name(names: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(names).prop_map(str::to_string),
        1 => "[a-z_]{0,10}",
    ]
}

/// An object whose fields are drawn from `fields` (name, strategy of its value).
fn object(fields: Vec<(&'static str, BoxedStrategy<Value>)>) -> impl Strategy<Value = Value> {
    let parts: Vec<BoxedStrategy<Option<(String, Value)>>> = fields
        .into_iter()
        .map(|(n, v)| prop::option::weighted(0.6, v.prop_map(move |v| (n.to_string(), v))).boxed())
        .collect();
    parts.prop_map(|fields| Value::Object(fields.into_iter().flatten().collect::<Map<_, _>>()))
}

/// Text from a JSON value: as it is, or with a byte cut out or a piece cut off.
fn text_of(values: impl Strategy<Value = Value>) -> impl Strategy<Value = String> {
    (values, any::<prop::sample::Index>(), 0u8..4).prop_map(|(value, at, how)| {
        let text = value.to_string();
        let cut = text
            .char_indices()
            .map(|(i, _)| i)
            .nth(at.index(text.chars().count().max(1)))
            .unwrap_or(0);
        match how {
            0 => text[..cut].to_string(),
            1 => {
                let mut t = text.clone();
                if cut < t.len() {
                    t.remove(cut);
                }
                t
            }
            _ => text,
        }
    })
}

// ---- configuration -----------------------------------------------------------------------------

const CONFIG_NAMES: &[&str] = &[
    "l1_config",
    "l2_config",
    "l3_config",
    "enabled",
    "max_entries",
    "eviction_policy",
    "l2_backend",
    "default_ttl_seconds",
    "per_source_ttl",
    "enable_background_cleanup",
    "cleanup_interval_seconds",
    "l2_cache_dir",
    "l3_database_path",
    "encryption_key",
    "health_check_invalidation",
    "failure_threshold",
    "enable_statistics",
    "durability",
    "ttl_cleanup_interval",
    "statistics_interval",
    "shared_config",
    "url",
    "namespace",
    "timeout_ms",
];

fn any_of<T: Clone + std::fmt::Debug + 'static>(values: &'static [T]) -> BoxedStrategy<T> {
    prop::sample::select(values).boxed()
}

/// Configurations with every field of the right type (most valid, some out of bounds).
fn config_object() -> impl Strategy<Value = Value> {
    let max_entries =
        || prop_oneof![Just(Value::Null), (-2i64..100_000).prop_map(Value::from)].boxed();
    let policy = || {
        any_of(&["lru", "lfu", "fifo", "random"])
            .prop_map(Value::from)
            .boxed()
    };
    let boolean = || any::<bool>().prop_map(Value::from).boxed();
    let tier = || {
        object(vec![
            ("enabled", boolean()),
            ("max_entries", max_entries()),
            ("eviction_policy", policy()),
        ])
        .boxed()
    };
    let int = |lo: i64, hi: i64| (lo..hi).prop_map(Value::from).boxed();
    let shared = object(vec![
        ("enabled", boolean()),
        (
            "url",
            prop_oneof![
                3 => any_of(&[
                    "redis://127.0.0.1:6379/0",
                    "rediss://u:p@h:6380/2",
                    "redis://h",
                    "http://h:1",
                    "redis://:@",
                ])
                .prop_map(Value::from),
                1 => word().prop_map(Value::from),
            ]
            .boxed(),
        ),
        (
            "namespace",
            prop_oneof![3 => "[a-z0-9._-]{1,8}", 1 => ".{0,70}"]
                .prop_map(Value::from)
                .boxed(),
        ),
        ("timeout_ms", int(-1, 70_000)),
        ("max_entries", max_entries()),
        ("eviction_policy", policy()),
    ]);
    object(vec![
        ("l1_config", tier()),
        ("l2_config", tier()),
        ("l3_config", tier()),
        (
            "l2_backend",
            any_of(&["jsonl", "sqlite", "redis"])
                .prop_map(Value::from)
                .boxed(),
        ),
        ("default_ttl_seconds", int(-1, 1_000_000)),
        (
            "per_source_ttl",
            prop::collection::btree_map(".{0,6}", -1i64..100_000, 0..4)
                .prop_map(|m| json!(m))
                .boxed(),
        ),
        ("enable_background_cleanup", boolean()),
        ("cleanup_interval_seconds", number().boxed()),
        ("l2_cache_dir", word().prop_map(Value::from).boxed()),
        ("l3_database_path", word().prop_map(Value::from).boxed()),
        ("encryption_key", word().prop_map(Value::from).boxed()),
        ("health_check_invalidation", boolean()),
        ("failure_threshold", int(-1, 10)),
        ("enable_statistics", boolean()),
        (
            "durability",
            any_of(&["normal", "full", "paranoid"])
                .prop_map(Value::from)
                .boxed(),
        ),
        ("ttl_cleanup_interval", number().boxed()),
        ("statistics_interval", number().boxed()),
        ("shared_config", shared.boxed()),
    ])
}

#[test]
fn any_configuration_text_parses_or_is_invalid_json_and_valid_ones_round_trip() {
    run(
        1500,
        prop_oneof![
            3 => text_of(config_object()),
            2 => text_of(json_value(CONFIG_NAMES)),
            1 => ".{0,40}",
            // A long decimal: its f64, written back in its shortest form, must read back as is.
            1 => (0.0f64..31_536_000.0).prop_map(|f| format!(r#"{{"cleanup_interval_seconds":{f:.20}}}"#)),
        ],
        |text| check_config_json(&text),
    );
}

// ---- entries -----------------------------------------------------------------------------------

/// An entry's JSON fields (upstream's, in its order).
static ENTRY_NAMES: LazyLock<Vec<&str>> = LazyLock::new(upstream_names::entry_fields);

/// Entry objects: every field with a value of its type or of another.
fn entry_object() -> impl Strategy<Value = Value> {
    let field = |name: &'static str| {
        let typed: BoxedStrategy<Value> = match name {
            "evicted_from_l1" => any::<bool>().prop_map(Value::from).boxed(),
            "access_count" | "ttl_seconds" | "failure_count" | "recovery_attempt" => {
                prop_oneof![(-2i64..10_000).prop_map(Value::from), number()].boxed()
            }
            n if n.starts_with("consecutive") || n.starts_with("total") => {
                (-1i64..1000).prop_map(Value::from).boxed()
            }
            _ => word().prop_map(Value::from).boxed(),
        };
        let value = prop_oneof![6 => typed, 1 => json_value(ENTRY_NAMES.as_slice())].boxed();
        (name, value)
    };
    object(ENTRY_NAMES.iter().map(|n| field(n)).collect())
}

#[test]
fn any_entry_text_parses_or_is_invalid_json_and_put_then_get_returns_it() {
    let bench = EntryBench::default();
    run(
        1500,
        prop_oneof![
            4 => text_of(entry_object()),
            1 => text_of(json_value(ENTRY_NAMES.as_slice())),
            1 => ".{0,40}",
        ],
        |text| {
            check_entry_json(&text);
            bench.check_put_get(&text);
        },
    );
}

#[test]
fn any_entry_list_text_parses_or_is_invalid_json() {
    run(
        500,
        prop_oneof![
            3 => text_of(prop::collection::vec(entry_object(), 0..4).prop_map(Value::Array)),
            1 => text_of(json_value(ENTRY_NAMES.as_slice())),
        ],
        |text| check_entry_list_json(&text),
    );
}

fn opt_time() -> impl Strategy<Value = Option<pwcache::Timestamp>> {
    prop::option::of(any::<i64>().prop_map(timestamp_from))
}

prop_compose! {
    fn any_entry()(
        (key, proxy_url, source, error) in (".{1,12}", ".{0,24}", ".{0,8}", prop::option::of(".{0,16}")),
        (username, password) in (prop::option::of(".{0,8}"), prop::option::of(".{0,8}")),
        (fetch, accessed, expires) in (any::<i64>(), any::<i64>(), any::<i64>()),
        (check, next) in (opt_time(), opt_time()),
        counters in prop::array::uniform8(0i64..=i64::MAX),
        (health, evicted) in (0usize..5, any::<bool>()),
    ) -> CacheEntry {
        let mut e = CacheEntry::new(key, proxy_url, source, timestamp_from(fetch), counters[0]);
        e.username = username.and_then(Secret::new);
        e.password = password.and_then(Secret::new);
        e.last_accessed = timestamp_from(accessed);
        e.expires_at = timestamp_from(expires);
        e.access_count = counters[1];
        e.failure_count = counters[2];
        e.consecutive_health_failures = counters[3];
        e.consecutive_health_successes = counters[4];
        e.recovery_attempt = counters[5];
        e.total_health_checks = counters[6];
        e.total_health_check_failures = counters[7];
        e.health_status = [
            HealthStatus::Unknown,
            HealthStatus::Healthy,
            HealthStatus::Degraded,
            HealthStatus::Unhealthy,
            HealthStatus::Dead,
        ][health];
        e.evicted_from_l1 = evicted;
        e.last_health_check = check;
        e.next_check_time = next;
        e.last_health_error = error;
        e
    }
}

#[test]
fn an_entry_serialised_and_parsed_back_is_equal() {
    run(2000, any_entry(), |entry| check_entry_round_trip(&entry));
}

// ---- warm files --------------------------------------------------------------------------------

const WARM_NAMES: &[&str] = &["proxy_url", "key", "username", "password", "source"];

/// Text for a `proxy_url`: URLs with and without userinfo (masked, percent-encoded, empty
/// parts), with spaces around, with a bad port or no host, and other text.
fn proxy_url_text() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => "(http|socks5)://[a-z0-9.]{0,6}(:[0-9]{0,6})?(/[a-z]{0,3})?",
        2 => "http://[a-z*%0-9]{0,4}(:[a-z*@%0-9]{0,4})?@[a-z]{0,4}:[0-9]{1,3}",
        1 => "[ \t]{0,2}http://[a-z]{1,4}:8080[ \t]{0,2}",
        1 => word(),
    ]
}

/// A warm row: the five fields with values of every JSON type, often strings.
fn warm_object() -> impl Strategy<Value = Value> {
    let value = || {
        prop_oneof![
            5 => word().prop_map(Value::from),
            1 => json_value(WARM_NAMES),
        ]
        .boxed()
    };
    object(
        WARM_NAMES
            .iter()
            .map(|n| match *n {
                "proxy_url" => (
                    *n,
                    prop_oneof![4 => proxy_url_text().prop_map(Value::from), 1 => value()].boxed(),
                ),
                _ => (*n, value()),
            })
            .collect(),
    )
}

/// Lines of a JSON Lines file: rows, other JSON, blank lines, garbage; LF or CRLF; maybe a BOM.
fn jsonl_bytes() -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        6 => warm_object().prop_map(|v| v.to_string().into_bytes()),
        1 => json_value(WARM_NAMES).prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..12),
        1 => Just(b"  \t".to_vec()),
    ];
    (
        prop::collection::vec((line, any::<bool>()), 0..10),
        any::<bool>(),
    )
        .prop_map(|(lines, bom)| {
            let mut out = if bom {
                b"\xEF\xBB\xBF".to_vec()
            } else {
                Vec::new()
            };
            for (line, crlf) in lines {
                out.extend_from_slice(&line);
                out.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
            }
            out
        })
}

/// A CSV cell: quoted or not (a raw cell may hold a stray quote or comma).
fn csv_cell() -> impl Strategy<Value = String> {
    (
        prop_oneof![word(), "[a-z,\" \n]{0,6}", proxy_url_text()],
        any::<bool>(),
    )
        .prop_map(|(text, quote)| {
            if quote {
                format!("\"{}\"", text.replace('"', "\"\""))
            } else {
                text
            }
        })
}

fn csv_bytes() -> impl Strategy<Value = Vec<u8>> {
    let header = prop::collection::vec(
        prop_oneof![
            4 => prop::sample::select(WARM_NAMES).prop_map(str::to_string),
            1 => prop::sample::select(WARM_NAMES).prop_map(|n| format!(" {n} ")),
            1 => "[a-z_]{0,6}",
        ],
        0..7,
    );
    let rows = prop::collection::vec(prop::collection::vec(csv_cell(), 0..7), 0..8);
    (header, rows, any::<bool>()).prop_map(|(header, rows, bom)| {
        let mut out = if bom {
            b"\xEF\xBB\xBF".to_vec()
        } else {
            Vec::new()
        };
        out.extend_from_slice(header.join(",").as_bytes());
        for row in rows {
            out.push(b'\n');
            out.extend_from_slice(row.join(",").as_bytes());
        }
        out
    })
}

fn json_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => text_of(prop::collection::vec(
            prop_oneof![4 => warm_object(), 1 => json_value(WARM_NAMES)],
            0..10,
        )
        .prop_map(Value::Array)),
        1 => text_of(json_value(WARM_NAMES)),
    ]
    .prop_map(String::into_bytes)
}

fn any_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..200)
}

/// Files made by `files` four times in five, any bytes the fifth.
fn mostly(files: impl Strategy<Value = Vec<u8>> + 'static) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![4 => files, 1 => any_bytes()]
}

/// 300 warm files of `format`, four in five made by `files`, the others any bytes: each loads
/// what it says.
fn check_warm_files(format: WarmFormat, files: impl Strategy<Value = Vec<u8>> + 'static) {
    let bench = WarmBench::default();
    run(300, mostly(files), |bytes| bench.check(format, &bytes));
}

#[test]
fn a_jsonl_warm_file_of_any_bytes_loads_what_its_lines_say() {
    check_warm_files(WarmFormat::Jsonl, jsonl_bytes());
}

#[test]
fn a_csv_warm_file_of_any_bytes_loads_what_its_rows_say() {
    check_warm_files(WarmFormat::Csv, csv_bytes());
}

#[test]
fn a_json_warm_file_of_any_bytes_loads_what_its_items_say() {
    check_warm_files(WarmFormat::Json, json_bytes());
}

// ---- JSONL shards ------------------------------------------------------------------------------

/// A shard record's fields: upstream's, an `op`, and credentials encrypted or in clear.
static RECORD_NAMES: LazyLock<Vec<&str>> = LazyLock::new(|| {
    [
        &["op", "key", "proxy_url"][..],
        &upstream_names::PLAIN_FIELDS,
        &[
            "evicted_from_l1",
            "username_encrypted",
            "password_encrypted",
            "username",
            "password",
        ],
    ]
    .concat()
});

/// Keys that collide often, most in shard 0 (the file the checks write).
fn shard_key() -> impl Strategy<Value = String> {
    let shard0: Vec<String> = (0..)
        .map(|i| format!("k{i}"))
        .filter(|k| shard_index(k) == 0)
        .take(4)
        .collect();
    prop_oneof![
        4 => prop::sample::select(shard0),
        1 => prop::sample::select(&["k1", "k2", ""][..]).prop_map(str::to_string),
    ]
}

/// A record as pwcache writes it: every field, of its type and within its bounds.
fn full_record() -> impl Strategy<Value = Value> {
    let time = || prop::sample::select(&WORDS[15..20]).prop_map(Value::from);
    let optional_time = || prop_oneof![Just(Value::Null), time()];
    let count = || (0i64..100).prop_map(Value::from);
    (
        (shard_key(), word(), word(), time(), time(), time()),
        (count(), count(), count(), any::<bool>(), 0usize..5),
        (
            optional_time(),
            optional_time(),
            count(),
            prop::option::of(word()),
        ),
    )
        .prop_map(
            |(
                (key, url, source, fetch, accessed, expires),
                (uses, ttl, failures, evicted, health),
                (checked, next, checks, error),
            )| {
                let health = ["unknown", "healthy", "degraded", "unhealthy", "dead"][health];
                json!({
                    "key": key, "proxy_url": url, "source": source, "fetch_time": fetch,
                    "last_accessed": accessed, "access_count": uses, "ttl_seconds": ttl,
                    "expires_at": expires,
                    "health_status": health,
                    "failure_count": failures, "evicted_from_l1": evicted,
                    "last_health_check": checked, "consecutive_health_failures": 0,
                    "consecutive_health_successes": 0, "recovery_attempt": 0,
                    "next_check_time": next, "last_health_error": error,
                    "total_health_checks": checks, "total_health_check_failures": 0,
                })
            },
        )
}

/// A shard line: a record (whole, with a field given any value, or with fields missing), a
/// tombstone, a record head as an array, a record with a byte that is not UTF-8 in a field the
/// head does not read, or anything.
fn shard_line() -> impl Strategy<Value = Vec<u8>> {
    let partial = (
        full_record(),
        prop::collection::vec(prop::sample::select(RECORD_NAMES.as_slice()), 0..4),
    )
        .prop_map(|(mut record, missing)| {
            for name in missing {
                if name != "key" && name != "expires_at" {
                    record.as_object_mut().expect("an object").remove(name);
                }
            }
            record
        });
    let changed = (
        full_record(),
        prop::sample::select(RECORD_NAMES.as_slice()),
        json_value(RECORD_NAMES.as_slice()),
    )
        .prop_map(|(mut record, name, value)| {
            record[name] = value;
            record
        });
    prop_oneof![
        4 => full_record().prop_map(|r| r.to_string().into_bytes()),
        2 => changed.prop_map(|r| r.to_string().into_bytes()),
        2 => partial.prop_map(|r| r.to_string().into_bytes()),
        2 => shard_key().prop_map(|key| json!({"op": "delete", "key": key}).to_string().into_bytes()),
        1 => shard_key().prop_map(|key| json!([null, key, "2099-01-01T00:00:00Z"]).to_string().into_bytes()),
        1 => full_record().prop_map(|r| {
            let text = r.to_string();
            let mut line = text.as_bytes()[..text.len() - 1].to_vec();
            line.extend_from_slice(b",\"note\":\"\xad\"}");
            line
        }),
        1 => json_value(RECORD_NAMES.as_slice()).prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>().prop_filter("one line", |b| *b != b'\n'), 0..16),
    ]
}

fn shard_bytes() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(shard_line(), 0..10),
        prop::option::of(prop::collection::vec(any::<u8>(), 1..12)),
    )
        .prop_map(|(lines, partial)| {
            let mut out = Vec::new();
            for line in lines {
                out.extend_from_slice(&line);
                out.push(b'\n');
            }
            out.extend(partial.into_iter().flatten());
            out
        })
}

#[test]
fn a_shard_of_any_bytes_opens_and_reads_only_what_its_lines_hold() {
    let bench = ShardBench::default();
    run(300, mostly(shard_bytes()), |bytes| bench.check_ours(&bytes));
}

#[test]
fn an_upstream_shard_of_any_bytes_imports_only_what_its_lines_hold() {
    let bench = ShardBench::default();
    run(200, mostly(shard_bytes()), |bytes| {
        bench.check_upstream(&bytes)
    });
}

#[test]
fn a_shard_cut_anywhere_and_followed_by_any_bytes_keeps_every_intact_record() {
    let bench = ShardBench::default();
    let tail = prop_oneof![
        2 => any_bytes(),
        1 => shard_bytes(),
        1 => Just(Vec::new()),
    ];
    run(
        300,
        (1..=MAX_RECORDS, any::<usize>(), tail),
        |(records, cut, tail)| bench.check_damaged(records, cut, &tail),
    );
}

// ---- SQLite rows -------------------------------------------------------------------------------

/// Any SQLite value for a column, or a value of the kinds the checks can bind.
fn cell() -> impl Strategy<Value = Cell> {
    use rusqlite::types::Value as Sql;
    prop_oneof![
        Just(Cell::Sql(Sql::Null)),
        prop_oneof![-2i64..3, any::<i64>()].prop_map(|n| Cell::Sql(Sql::Integer(n))),
        prop_oneof![
            any::<f64>(),
            (-1e6f64..1e6).prop_map(|d| now().as_epoch_seconds() + d),
        ]
        .prop_map(|f| Cell::Sql(Sql::Real(f))),
        word().prop_map(|t| Cell::Sql(Sql::Text(t))),
        prop::collection::vec(any::<u8>(), 0..12).prop_map(Cell::RawText),
        prop::collection::vec(any::<u8>(), 0..12).prop_map(|b| Cell::Sql(Sql::Blob(b))),
        ".{0,8}".prop_map(Cell::Token),
    ]
}

/// A well-formed row with up to four columns given other values.
fn sql_row() -> impl Strategy<Value = SqlRow> {
    let changes = prop::collection::vec((0..ENTRY_COLUMNS.len(), cell()), 0..5);
    (any::<bool>(), any::<bool>(), changes).prop_map(|(l2, side_row, changes)| {
        let mut cells: Vec<Cell> = (0..ENTRY_COLUMNS.len()).map(default_cell).collect();
        for (column, value) in changes {
            cells[column] = value;
        }
        SqlRow {
            schema: if l2 { Schema::L2 } else { Schema::L3 },
            side_row,
            cells,
        }
    })
}

#[test]
fn a_sqlite_row_of_any_values_reads_as_its_entry_or_is_dropped_or_kept() {
    let bench = SqliteBench::default();
    run(
        400,
        prop_oneof![
            4 => sql_row(),
            1 => any_bytes().prop_map(|b| SqlRow::from_bytes(&b)),
        ],
        |row| bench.check(&row),
    );
}

// ---- the fuzz targets' seeds -------------------------------------------------------------------

/// Every seed of the fuzz targets (fuzz/seeds/<target>/), through the target's check: the inputs
/// that found bugs stay in CI whatever proptest draws.
#[test]
fn every_fuzz_seed_passes_its_check() {
    let seeds = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    let warm = WarmBench::default();
    let shard = ShardBench::default();
    let sqlite = SqliteBench::default();
    let entry = EntryBench::default();
    let mut checked = 0;
    for target in std::fs::read_dir(&seeds).expect("fuzz/seeds") {
        let target = target.expect("a seed directory").path();
        let name = target
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        for seed in std::fs::read_dir(&target).expect("a seed directory") {
            let path = seed.expect("a seed").path();
            let bytes = std::fs::read(&path).expect("read a seed");
            let text = std::str::from_utf8(&bytes);
            println!("{}", path.display());
            match (name.as_str(), text) {
                ("config_json", Ok(text)) => check_config_json(text),
                ("entry_json", Ok(text)) => {
                    check_entry_json(text);
                    check_entry_list_json(text);
                    entry.check_put_get(text);
                }
                ("config_json" | "entry_json", Err(_)) => {}
                ("warm_json", _) => warm.check(WarmFormat::Json, &bytes),
                ("warm_jsonl", _) => warm.check(WarmFormat::Jsonl, &bytes),
                ("warm_csv", _) => warm.check(WarmFormat::Csv, &bytes),
                ("jsonl_shard", _) => shard.check_bytes(&bytes),
                ("sqlite_row", _) => sqlite.check_bytes(&bytes),
                (other, _) => panic!("seeds of an unknown target: {other}"),
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 20,
        "only {checked} seeds found under {}",
        seeds.display()
    );
}

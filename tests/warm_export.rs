//! warm_from_file and export_to_file (the files of docs/FORMAT.md §7 and §6).

mod common;

use std::path::Path;

use common::*;
use pwcache::{CacheManager, ErrorKind, RowOutcome, RowPlace, WarmCounts};

fn cache_in(dir: &Path) -> CacheManager {
    open(config_in(dir), &clock())
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn counts(loaded: u64, skipped: u64, failed: u64) -> WarmCounts {
    WarmCounts {
        loaded,
        skipped,
        failed,
    }
}

#[test]
fn csv_with_bom_extra_columns_and_masked_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache_in(dir.path());
    let csv = "\u{feff}country,proxy_url,username,password,source,speed\n\
               de,http://1.1.1.1:80,alice,wonder,,fast\n\
               \n\
               fr,http://2.2.2.2:80,***,**********,list,slow\n\
               us,,bob,x,list,slow\n\
               uk,http://3.3.3.3:80\n";
    let path = write(dir.path(), "proxies.CSV", csv.as_bytes());
    assert_eq!(
        cache.warm_from_file(&path, None).unwrap().counts,
        counts(3, 1, 0)
    );
    let alice = cache
        .get(&pwcache::generate_cache_key("http://1.1.1.1:80"))
        .unwrap()
        .unwrap();
    assert_eq!(alice.username.unwrap().expose(), "alice");
    assert_eq!(
        alice.source, "warmed",
        "an empty source cell takes the default"
    );
    assert_eq!(alice.ttl_seconds, 3600);
    let masked = cache
        .get(&pwcache::generate_cache_key("http://2.2.2.2:80"))
        .unwrap()
        .unwrap();
    assert!(
        masked.username.is_none() && masked.password.is_none(),
        "masks are no credentials"
    );
    assert_eq!(masked.source, "list");
}

#[test]
fn jsonl_blank_bad_and_odd_lines() {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache_in(dir.path());
    let text = "\u{feff}{\"proxy_url\":\"http://a:1\",\"key\":\"ka\",\"extra\":[1,2]}\n\
                \n   \n\
                {not json\n\
                42\n\
                null\n\
                [\"proxy_url\"]\n\
                {\"proxy_url\":\"\"}\n\
                {\"proxy_url\":7}\n\
                {\"key\":\"no-url\"}\n\
                {\"proxy_url\":\"http://b:1\",\"key\":\"kb\",\"source\":null}\n\
                {\"proxy_url\":\"http://a:2\",\"key\":\"ka\"}\n\
                {\"proxy_url\":\"http://c:1\"";
    let path = write(dir.path(), "p.jsonl", text.as_bytes());
    let report = cache.warm_from_file(&path, None).unwrap();
    assert_eq!(report.counts, counts(3, 6, 2));
    let left_out: Vec<_> = report
        .problems
        .iter()
        .map(|p| (p.place, p.outcome))
        .collect();
    let (skipped, failed) = (RowOutcome::Skipped, RowOutcome::Failed);
    assert_eq!(
        left_out,
        [
            (4, failed),
            (5, skipped),
            (6, skipped),
            (7, skipped),
            (8, skipped),
            (9, skipped),
            (10, skipped),
            (13, failed)
        ]
        .map(|(line, outcome)| (RowPlace::Line(line), outcome))
    );
    assert_eq!(
        cache.get("ka").unwrap().unwrap().proxy_url,
        "http://a:2",
        "last wins"
    );
    assert_eq!(
        cache.get("kb").unwrap().unwrap().source,
        "warmed",
        "null source → default"
    );
}

#[test]
fn invalid_utf8_line_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache_in(dir.path());
    let mut bytes = b"{\"proxy_url\":\"http://a:1\"}\n".to_vec();
    bytes.extend_from_slice(b"{\"proxy_url\":\"http://\xff:1\"}\n");
    bytes.extend_from_slice(b"{\"proxy_url\":\"http://b:1\"}\n");
    let path = write(dir.path(), "p.jsonl", &bytes);
    assert_eq!(
        cache.warm_from_file(&path, None).unwrap().counts,
        counts(2, 0, 1)
    );
}

#[test]
fn json_array_rows_and_ttl_override() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let cache = open(config_in(dir.path()), &clock);
    let text = r#"[{"proxy_url":"http://a:1","key":"a","password":"pw"}, 3, "proxy_url", {"x":1},
                  {"proxy_url":"http://b:1","key":"b"}]"#;
    let path = write(dir.path(), "p.json", text.as_bytes());
    assert_eq!(
        cache.warm_from_file(&path, Some(30)).unwrap().counts,
        counts(2, 3, 0)
    );
    let a = cache.get("a").unwrap().unwrap();
    assert_eq!((a.ttl_seconds, a.expires_at), (30, t0().plus_seconds(30)));
    assert_eq!(a.password.unwrap().expose(), "pw");
    assert_eq!(
        cache.warm_from_file(&path, Some(0)).unwrap().counts.loaded,
        2
    );
    assert!(
        cache.get("b").unwrap().is_none(),
        "ttl_override 0 = already expired"
    );
    assert_eq!(
        cache.warm_from_file(&path, Some(-1)).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
}

#[test]
fn json_that_is_not_an_array_loads_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache_in(dir.path());
    for text in [
        r#"{"proxy_url":"http://a:1"}"#,
        "[{\"proxy_url\":\"http://a:1\"}",
        "",
    ] {
        let path = write(dir.path(), "p.json", text.as_bytes());
        let err = cache.warm_from_file(&path, None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidJson, "{text}");
    }
    assert_eq!(cache.statistics().total_size, 0);
}

#[test]
fn warm_file_kinds_and_io_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache_in(dir.path());
    let xml = write(dir.path(), "p.xml", b"<x/>");
    assert_eq!(
        cache.warm_from_file(&xml, None).unwrap_err().kind(),
        ErrorKind::Unsupported
    );
    let missing_xml = dir.path().join("missing.ndjson");
    assert_eq!(
        cache.warm_from_file(&missing_xml, None).unwrap_err().kind(),
        ErrorKind::Unsupported,
        "the extension is checked first"
    );
    let missing = dir.path().join("missing.csv");
    assert_eq!(
        cache.warm_from_file(&missing, None).unwrap_err().kind(),
        ErrorKind::Io
    );
    let as_dir = dir.path().join("dir.jsonl");
    std::fs::create_dir(&as_dir).unwrap();
    assert_eq!(
        cache.warm_from_file(&as_dir, None).unwrap_err().kind(),
        ErrorKind::Io
    );
}

/// A CSV file whose header names no `proxy_url` is an error naming the columns it has, and so
/// is a file with no header row at all; neither loads anything.
#[test]
fn csv_without_a_proxy_url_column_is_an_error_naming_its_columns() {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache_in(dir.path());
    let path = write(
        dir.path(),
        "n.csv",
        b"url,user,pass\nhttp://10.0.0.1:8080,erin,s3cret\n",
    );
    let err = cache.warm_from_file(&path, None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    let text = err.to_string();
    for column in ["proxy_url", "\"url\"", "\"user\"", "\"pass\""] {
        assert!(text.contains(column), "{column} is not named: {text}");
    }
    for empty in [&b""[..], b"\n  \n"] {
        let path = write(dir.path(), "e.csv", empty);
        let err = cache.warm_from_file(&path, None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains("header"), "{err}");
    }
    let path = write(dir.path(), "q.csv", b"\"proxy_url,key\nhttp://h:1,k\n");
    let err = cache.warm_from_file(&path, None).unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::InvalidInput,
        "a header with a quote left open: {err}"
    );
    assert_eq!(cache.statistics().total_size, 0);
}

/// The rows of issue 13: a quote left open fails its own line and nothing else (the next row
/// keeps its username), and `proxy_url`s of blanks or plain words are skipped; each is named
/// with its line and a reason.
#[test]
fn a_csv_quote_left_open_fails_its_line_alone() {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache_in(dir.path());
    let csv = "proxy_url,username,password\n\
               http://10.1.0.1:8080,alice,a\n\
               \"unterminated,quote,mylist\n\
               http://10.1.0.4:8080,erin,e\n\
               \"   \",x,y\n\
               not a url,x,y\n\
               \"http://10.1.0.7:8080\",\"gr\"\"ace\",\"p,w\"\n";
    let path = write(dir.path(), "list.csv", csv.as_bytes());
    let report = cache.warm_from_file(&path, None).unwrap();
    assert_eq!(report.counts, counts(3, 2, 1));
    let places: Vec<_> = report
        .problems
        .iter()
        .map(|p| (p.place, p.outcome))
        .collect();
    assert_eq!(
        places,
        [
            (RowPlace::Line(3), RowOutcome::Failed),
            (RowPlace::Line(5), RowOutcome::Skipped),
            (RowPlace::Line(6), RowOutcome::Skipped),
        ]
    );
    assert!(
        report.problems[0].reason.contains("quote"),
        "{:?}",
        report.problems[0]
    );
    assert!(
        report.problems[1].reason.contains("proxy_url"),
        "{:?}",
        report.problems[1]
    );
    let erin = cache
        .get(&pwcache::generate_cache_key("http://10.1.0.4:8080"))
        .unwrap()
        .expect("the row after the open quote is loaded");
    assert_eq!(erin.username.unwrap().expose(), "erin");
    let grace = cache
        .get(&pwcache::generate_cache_key("http://10.1.0.7:8080"))
        .unwrap()
        .unwrap();
    assert_eq!(grace.username.unwrap().expose(), "gr\"ace");
    assert_eq!(grace.password.unwrap().expose(), "p,w");
    assert_eq!(report.to_json().matches("\"line\":").count(), 3);
}

/// Every row left out is logged as a warning naming its line; the report lists the first 20
/// and counts the rest.
#[test]
fn every_row_left_out_is_logged_and_the_first_ones_listed() {
    log::set_logger(&ROW_LOGS).unwrap();
    log::set_max_level(log::LevelFilter::Warn);
    let dir = tempfile::tempdir().unwrap();
    let cache = cache_in(dir.path());
    let mut text = String::new();
    for i in 0..30 {
        text.push_str(&format!("{{\"proxy_url\":\"{}\"}}\n", url(i)));
        text.push_str("{\"proxy_url\":\"10.0.0.1:8080\"}\n");
    }
    let path = write(dir.path(), "rows.jsonl", text.as_bytes());
    let report = cache.warm_from_file(&path, None).unwrap();
    assert_eq!(report.counts, counts(30, 30, 0));
    assert_eq!(report.problems.len(), pwcache::WARM_PROBLEMS_LISTED);
    assert_eq!(report.problems_not_listed, 10);
    for (i, p) in report.problems.iter().enumerate() {
        assert_eq!(p.place, RowPlace::Line(2 * i as u64 + 2));
    }
    let name = path.display().to_string();
    let logged: Vec<String> = ROW_LOGS
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|line| line.contains(&name))
        .cloned()
        .collect();
    assert_eq!(logged.len(), 30, "{logged:#?}");
    assert!(
        logged[29].contains("line 60: skipped: proxy_url"),
        "{}",
        logged[29]
    );
}

/// Warnings with warm's row target, kept to be read by the test above.
struct RowLogs(std::sync::Mutex<Vec<String>>);

impl log::Log for RowLogs {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.target() == pwcache::WARM_ROW_LOG_TARGET
    }
    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) && record.level() == log::Level::Warn {
            self.0.lock().unwrap().push(record.args().to_string());
        }
    }
    fn flush(&self) {}
}

static ROW_LOGS: RowLogs = RowLogs(std::sync::Mutex::new(Vec::new()));

#[test]
fn warm_loads_in_batches_past_l1_capacity() {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache_in(dir.path());
    let mut text = String::from("proxy_url,username\n");
    for i in 0..3500 {
        text.push_str(&format!("{},u{i}\n", url(i)));
    }
    let path = write(dir.path(), "many.csv", text.as_bytes());
    let mut calls = 0;
    let got = cache
        .warm_from_file_with_progress(&path, None, &mut |done, total| {
            assert!(done <= total);
            calls += 1;
        })
        .unwrap();
    assert_eq!(got.counts, counts(3500, 0, 0));
    assert!(got.problems.is_empty());
    assert!(calls >= 3);
    let s = cache.statistics();
    assert_eq!(
        (s.l1_stats.current_size, s.l3_stats.current_size),
        (1000, 3500)
    );
    let e = cache
        .get(&pwcache::generate_cache_key(&url(0)))
        .unwrap()
        .unwrap();
    assert_eq!(e.username.unwrap().expose(), "u0");
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn export_masks_credentials_and_has_no_side_effects() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let mut config = config_in(dir.path());
    config.l1.max_entries = Some(2);
    let cache = open(config, &clock);
    cache
        .put_json(
            "c",
            r#"{"proxy_url":"http://alice:p%40ss@h:8080","password":"p@ss"}"#,
        )
        .unwrap();
    for i in 0..4 {
        cache.put(&key(i), input(i)).unwrap();
    }
    let mut short = input(9);
    short.ttl_seconds = Some(1);
    cache.put("short", short).unwrap();
    cache.get(&key(3)).unwrap();
    clock.set(t0().plus_seconds(1));
    let before = cache.statistics();
    let path = dir.path().join("export.jsonl");
    let got = cache.export_to_file(&path, false).unwrap();
    assert_eq!(
        (got.exported, got.failed),
        (5, 0),
        "every live entry once; expired skipped"
    );
    assert_eq!(cache.statistics(), before, "no statistics changed");
    let rows = lines(&path);
    assert_eq!(rows.len(), 5);
    let c = rows.iter().find(|r| r["key"] == "c").unwrap();
    assert_eq!(c["username"], "***");
    assert_eq!(c["password"], "***");
    assert_eq!(
        c["proxy_url"], "http://h:8080",
        "the userinfo was stored as the credentials"
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("alice") && !text.contains("p@ss") && !text.contains("p%40ss"));
    let plain = rows.iter().find(|r| r["key"] == key(0)).unwrap();
    assert!(plain["username"].is_null(), "null stays null");
    assert_eq!(
        rows.iter().find(|r| r["key"] == key(3)).unwrap()["access_count"],
        1
    );
    assert_eq!(
        cache.get(&key(3)).unwrap().unwrap().access_count,
        2,
        "export read nothing"
    );
    assert_eq!(c.as_object().unwrap().len(), 21);

    let with = dir.path().join("with.jsonl");
    cache.export_to_file(&with, true).unwrap();
    let c = lines(&with).into_iter().find(|r| r["key"] == "c").unwrap();
    assert_eq!(
        (c["username"].as_str(), c["password"].as_str()),
        (Some("alice"), Some("p@ss"))
    );
    assert_eq!(c["proxy_url"], "http://h:8080");
}

#[test]
fn export_round_trips_through_warm() {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache_in(dir.path());
    for i in 0..10 {
        cache.put(&key(i), input(i)).unwrap();
    }
    let path = dir.path().join("e.jsonl");
    cache.export_to_file(&path, false).unwrap();
    let other_dir = tempfile::tempdir().unwrap();
    let other = cache_in(other_dir.path());
    assert_eq!(
        other.warm_from_file(&path, None).unwrap().counts,
        counts(10, 0, 0)
    );
    assert_eq!(other.get(&key(4)).unwrap().unwrap().proxy_url, url(4));
}

#[test]
fn export_of_an_empty_cache_is_an_empty_file_and_bad_paths_are_io_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache_in(dir.path());
    let path = dir.path().join("empty.jsonl");
    assert_eq!(cache.export_to_file(&path, false).unwrap().exported, 0);
    assert_eq!(std::fs::read(&path).unwrap().len(), 0);
    assert_eq!(
        cache.export_to_file(dir.path(), false).unwrap_err().kind(),
        ErrorKind::Io
    );
    let file = write(dir.path(), "plain", b"x");
    let under_file = file.join("x.jsonl");
    assert_eq!(
        cache.export_to_file(&under_file, false).unwrap_err().kind(),
        ErrorKind::Io
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

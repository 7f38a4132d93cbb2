//! No credential, and no encryption key, ever reaches a log line, an error message, the
//! statistics or a default export.

mod common;

use std::sync::Mutex;

use common::*;
use log::{Level, LevelFilter, Log, Metadata, Record};
use pwcache::{CacheConfig, CacheManager, EntryInput};

struct Capture(Mutex<Vec<String>>);

impl Log for Capture {
    fn enabled(&self, _: &Metadata) -> bool {
        true
    }
    fn log(&self, record: &Record) {
        self.0
            .lock()
            .unwrap()
            .push(format!("{} {}", record.level(), record.args()));
    }
    fn flush(&self) {}
}

static LOGS: Capture = Capture(Mutex::new(Vec::new()));

const SECRETS: [&str; 4] = ["alice-the-user", "hunter2-pass", "url-user", "url-pa55"];

fn assert_clean(what: &str, text: &str) {
    for secret in SECRETS.iter().chain([&KEY]) {
        assert!(!text.contains(secret), "{what} leaks {secret:?}: {text}");
    }
}

#[test]
fn credentials_never_leak() {
    log::set_logger(&LOGS).unwrap();
    log::set_max_level(LevelFilter::Trace);
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let mut config = config_in(dir.path());
    config.l1.max_entries = Some(1);
    let cache = open(config.clone(), &clock);
    let url = "http://url-user:url-pa55@10.1.1.1:3128";
    let mut entry = EntryInput::with_url("http://10.1.1.1:3128");
    entry.username = Some("alice-the-user".into());
    entry.password = Some("hunter2-pass".into());
    cache.put("u", EntryInput::with_url(url)).unwrap();
    cache.put("a", entry.clone()).unwrap();
    cache.put("b", entry.clone()).unwrap(); // evicts a: write-back
    let got = cache.get("a").unwrap().unwrap();
    assert_eq!(
        got.password.as_ref().unwrap().expose(),
        "hunter2-pass",
        "get returns them"
    );
    assert_clean("Debug of an entry", &format!("{got:?}"));
    cache.invalidate_by_health("a").unwrap();

    let mut errors = Vec::new();
    for bad in [
        r#"{"proxy_url":"http://url-user:url-pa55@h:1","password":12345678}"#,
        r#"{"proxy_url":"http://url-user:url-pa55@h:1","username":["alice-the-user"]}"#,
        r#"{"proxy_url":"http://url-user:url-pa55@h:1","password":"hunter2-pass","nope":1}"#,
        r#"{"proxy_url":"http://url-user:url-pa55@h:1","access_count":"hunter2-pass"}"#,
        r#"{"proxy_url":"http://url-user:url-pa55@h:1","password":"hunter2-pass"}"#,
        r#"{"proxy_url":"http://url-user:url-pa55@h:99999"}"#,
        r#"{"proxy_url":"url-user:url-pa55 hunter2-pass"}"#,
    ] {
        errors.push(cache.put_json("x", bad).unwrap_err().to_string());
    }
    assert!(
        errors[0].contains("password") && !errors[0].contains("12345678"),
        "{}",
        errors[0]
    );
    errors.push(
        CacheConfig::from_json(&format!(r#"{{"encryption_key": ["{KEY}"]}}"#))
            .unwrap_err()
            .to_string(),
    );
    let mut bad_key = config.clone();
    bad_key.encryption_key = Some("url-pa55".into());
    errors.push(CacheManager::open(bad_key).err().unwrap().to_string());

    let warm = dir.path().join("w.jsonl");
    std::fs::write(
        &warm,
        format!(
            "{{\"proxy_url\":\"{url}\",\"username\":\"alice-the-user\",\"password\":\"hunter2-pass\"}}\n\
             {{\"proxy_url\":\"{url}\"}}\n\
             {{\"proxy_url\":\"http://url-user:url-pa55@h:99999\"}}\n\
             {{\"proxy_url\":\"{url}\",\"password\":\"hunter2-pass\"\n\
             [\"hunter2-pass\"]\n"
        ),
    )
    .unwrap();
    cache.warm_from_file(&warm, None).unwrap();

    let export = dir.path().join("e.jsonl");
    cache.export_to_file(&export, false).unwrap();
    assert_clean("default export", &std::fs::read_to_string(&export).unwrap());
    assert_clean("statistics", &cache.statistics().to_json());

    // A failing tier logs warnings: break L2 and keep writing credentials.
    std::fs::remove_dir_all(dir.path().join("l2")).unwrap();
    std::fs::write(dir.path().join("l2"), b"x").unwrap();
    for k in ["c", "d", "e", "f"] {
        cache.put(k, entry.clone()).unwrap();
    }
    drop(cache);

    // On disk, credentials are Fernet tokens only.
    {
        let path = dir.path().join("db").join("l3.db");
        let bytes = std::fs::read(path).unwrap();
        assert_clean("L3", &String::from_utf8_lossy(&bytes));
    }

    for e in &errors {
        assert_clean("error message", e);
    }
    let logs = LOGS.0.lock().unwrap();
    assert!(
        logs.iter().any(|l| l.starts_with(&Level::Warn.to_string())),
        "warnings were logged"
    );
    for line in logs.iter() {
        assert_clean("log line", line);
    }
}

/// Every file under `dir`, recursively.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Credentials given in a URL's userinfo (put, put_many, warm) are stored like the `username`
/// and `password` fields: encrypted. No file of the store holds them in plain text, with either
/// L2 backend, and `get` gives them back, from L1 and after a reopen.
#[test]
fn credentials_in_a_url_are_encrypted_at_rest() {
    for sqlite in [false, true] {
        let store = tempfile::tempdir().unwrap();
        let input = tempfile::tempdir().unwrap();
        let clock = clock();
        let mut config = config_in(store.path());
        if sqlite {
            config = sqlite_l2(config);
        }
        let cache = open(config.clone(), &clock);
        cache
            .put(
                "a",
                EntryInput::with_url("http://url-user:url-pa55@10.2.0.1:3128"),
            )
            .unwrap();
        let many = vec![(
            "b".to_string(),
            EntryInput::with_url("socks5://url-user:url-pa55@10.2.0.2:1080"),
        )];
        cache.put_many(many).unwrap();
        let warm = input.path().join("w.jsonl");
        std::fs::write(
            &warm,
            "{\"proxy_url\":\"http://url-user:url-pa55@10.2.0.3:8080\",\"key\":\"c\"}\n",
        )
        .unwrap();
        assert_eq!(cache.warm_from_file(&warm, None).unwrap().counts.loaded, 1);
        let expect = |cache: &CacheManager, key: &str, url: &str| {
            let e = cache.get(key).unwrap().unwrap();
            assert_eq!(e.proxy_url, url, "sqlite L2: {sqlite}");
            assert_eq!(e.username.unwrap().expose(), "url-user");
            assert_eq!(e.password.unwrap().expose(), "url-pa55");
        };
        expect(&cache, "a", "http://10.2.0.1:3128");
        drop(cache);
        let files = files_under(store.path());
        assert!(files.len() >= 2, "{files:?}");
        for file in &files {
            let bytes = std::fs::read(file).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains("url-pa55") && !text.contains("url-user"),
                "{} holds a credential in plain text (sqlite L2: {sqlite})",
                file.display()
            );
        }
        let cache = open(config, &clock);
        expect(&cache, "a", "http://10.2.0.1:3128");
        expect(&cache, "b", "socks5://10.2.0.2:1080");
        expect(&cache, "c", "http://10.2.0.3:8080");
    }
}

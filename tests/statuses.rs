//! The statuses the header's "Returns" lists promise that no C test provokes, provoked here
//! through the exported `pw_*` functions themselves (not the Rust API under them): a cache
//! without a usable persistent tier, a credential stored under another key, the single-tier
//! functions, a tier that fails while in use, a process that cannot create a thread, and a
//! process that already has a Rust logger. docs/c-api-statuses.md lists, for every function and
//! every status of its list, the test that shows it; tests/status_table.rs keeps that table
//! and the header in step.

mod common;

use std::ffi::{CStr, CString, c_char, c_void};
use std::fs;
use std::path::Path;
use std::process::Command;
use std::ptr;

use pwcache::ffi::cache::{
    pw_cache, pw_cache_cleanup_expired, pw_cache_clear, pw_cache_delete, pw_cache_export_to_file,
    pw_cache_free, pw_cache_get, pw_cache_invalidate_by_health, pw_cache_new, pw_cache_put,
    pw_cache_put_many, pw_cache_warm_from_file,
};
use pwcache::ffi::error::pw_last_error;
use pwcache::ffi::logging::{pw_log_level, pw_set_logger};
use pwcache::ffi::status::pw_status::{self, *};
use pwcache::ffi::strings::pw_string_free;
use pwcache::ffi::tier::{
    pw_cache_tier_clear, pw_cache_tier_delete, pw_cache_tier_enabled, pw_cache_tier_get,
    pw_cache_tier_put, pw_cache_tier_size,
};
use pwcache::ffi::ttl::{pw_ttl, pw_ttl_free, pw_ttl_new, pw_ttl_start};

use common::{KEY, assert_child_test_passed};

/// Another valid Fernet key (base64url of "another-key-for-pwcache-tests-02").
const OTHER_KEY: &str = "YW5vdGhlci1rZXktZm9yLXB3Y2FjaGUtdGVzdHMtMDI=";
const ENTRY: &str = r#"{"proxy_url": "http://10.0.0.1:8080"}"#;
const L1: u32 = 1;
const L2: u32 = 2;
const L3: u32 = 3;
/// Set in a child process: which scenario it runs, in a process of its own.
const CHILD_ENV: &str = "PWCACHE_STATUSES_CHILD";
/// The unprivileged user (and group) a child runs as under root: `nobody`.
const NOBODY: u32 = 65534;

fn c(text: &str) -> CString {
    CString::new(text).unwrap()
}

fn last_error() -> String {
    // SAFETY: pw_last_error never returns NULL; the string lives until the next call.
    unsafe { CStr::from_ptr(pw_last_error()) }
        .to_string_lossy()
        .into_owned()
}

/// Takes a string the library returned and frees it.
fn take(s: *mut c_char) -> String {
    assert!(!s.is_null());
    // SAFETY: a NUL-terminated string from the library, freed once below.
    let text = unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned();
    pw_string_free(s);
    text
}

/// A handle freed on drop.
struct Cache(*mut pw_cache);

impl Drop for Cache {
    fn drop(&mut self) {
        pw_cache_free(self.0);
    }
}

fn open(config: &str) -> Cache {
    let mut cache = ptr::null_mut();
    let status = pw_cache_new(c(config).as_ptr(), &mut cache);
    assert_eq!(status, PW_OK, "pw_cache_new: {}", last_error());
    Cache(cache)
}

/// A configuration with every file under `dir`, the encryption key `key`, and `extra` members.
fn config(dir: &Path, key: &str, extra: &str) -> String {
    let sep = if extra.is_empty() { "" } else { ", " };
    format!(
        r#"{{"l2_cache_dir": "{}", "l3_database_path": "{}", "encryption_key": "{key}"{sep}{extra}}}"#,
        dir.join("l2").display(),
        dir.join("l3.db").display()
    )
}

/// A cache without L1 whose L2 directory lies under a regular file and whose L3 database path
/// is a directory: both persistent tiers start degraded, for root too.
fn without_a_usable_tier(dir: &Path) -> Cache {
    fs::write(dir.join("file"), "x").unwrap();
    fs::create_dir(dir.join("a-directory")).unwrap();
    open(&format!(
        r#"{{"l1_config": {{"enabled": false}}, "l2_cache_dir": "{}", "l3_database_path": "{}",
            "encryption_key": "{KEY}"}}"#,
        dir.join("file").join("l2").display(),
        dir.join("a-directory").display()
    ))
}

fn get(cache: &Cache, key: &str) -> (pw_status, Option<String>) {
    let mut out = ptr::null_mut();
    let status = pw_cache_get(cache.0, c(key).as_ptr(), &mut out);
    (status, (!out.is_null()).then(|| take(out)))
}

fn tier_get(cache: &Cache, tier: u32, key: &str) -> (pw_status, Option<String>) {
    let mut out = ptr::null_mut();
    let status = pw_cache_tier_get(cache.0, tier, c(key).as_ptr(), &mut out);
    (status, (!out.is_null()).then(|| take(out)))
}

fn tier_size(cache: &Cache, tier: u32) -> (pw_status, u64) {
    let mut size = 99;
    let status = pw_cache_tier_size(cache.0, tier, &mut size);
    (status, size)
}

fn tier_clear(cache: &Cache, tier: u32) -> (pw_status, u64) {
    let mut cleared = 99;
    let status = pw_cache_tier_clear(cache.0, tier, &mut cleared);
    (status, cleared)
}

fn tier_enabled(cache: &Cache, tier: u32) -> (pw_status, bool) {
    let mut enabled = true;
    let status = pw_cache_tier_enabled(cache.0, tier, &mut enabled);
    (status, enabled)
}

#[test]
fn a_cache_without_a_usable_tier_answers_storage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cache = without_a_usable_tier(dir.path());
    let key = c("k");

    assert_eq!(
        pw_cache_put(cache.0, key.as_ptr(), c(ENTRY).as_ptr()),
        PW_STORAGE_ERROR
    );
    assert!(last_error().contains("no enabled"), "{}", last_error());
    let mut stored = 99;
    let batch = c(r#"[{"key": "a", "proxy_url": "http://h:1"}]"#);
    assert_eq!(
        pw_cache_put_many(cache.0, batch.as_ptr(), &mut stored),
        PW_STORAGE_ERROR
    );
    assert_eq!(stored, 0);
    assert_eq!(get(&cache, "k"), (PW_STORAGE_ERROR, None));
    assert_eq!(pw_cache_delete(cache.0, key.as_ptr()), PW_STORAGE_ERROR);
    let mut evicted = true;
    assert_eq!(
        pw_cache_invalidate_by_health(cache.0, key.as_ptr(), &mut evicted),
        PW_STORAGE_ERROR
    );
    assert!(!evicted);
    let mut cleared = 99;
    assert_eq!(pw_cache_clear(cache.0, &mut cleared), PW_STORAGE_ERROR);
    assert_eq!(cleared, 0);
    let mut removed = 99;
    assert_eq!(
        pw_cache_cleanup_expired(cache.0, &mut removed),
        PW_STORAGE_ERROR
    );
    assert_eq!(removed, 0);

    // An export that could read no tier is an error, not an empty file.
    let out_path = dir.path().join("export.jsonl");
    let mut counts = ptr::null_mut();
    assert_eq!(
        pw_cache_export_to_file(
            cache.0,
            c(out_path.to_str().unwrap()).as_ptr(),
            ptr::null(),
            &mut counts
        ),
        PW_STORAGE_ERROR
    );
    assert!(counts.is_null());
    assert!(!out_path.exists(), "no export file is left behind");
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().contains("export"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "no temporary file is left: {leftovers:?}"
    );

    // A warm file is read, and the records no tier could store are counted as failed: the
    // status says the file was read, the counts say what became of it.
    let warm = dir.path().join("p.jsonl");
    fs::write(
        &warm,
        "{\"proxy_url\": \"http://h:1\"}\n{\"proxy_url\": \"http://h:2\"}\n",
    )
    .unwrap();
    let mut counts = ptr::null_mut();
    assert_eq!(
        pw_cache_warm_from_file(cache.0, c(warm.to_str().unwrap()).as_ptr(), -1, &mut counts),
        PW_OK
    );
    let counts = take(counts);
    assert!(
        counts.contains(r#""loaded":0"#) && counts.contains(r#""failed":2"#),
        "{counts}"
    );
}

#[test]
fn a_credential_under_another_key_is_a_crypto_error_and_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let entry = r#"{"proxy_url": "http://10.0.0.1:8080", "username": "alice", "password": "pw"}"#;
    {
        let cache = open(&config(dir.path(), KEY, ""));
        assert_eq!(
            pw_cache_put(cache.0, c("k").as_ptr(), c(entry).as_ptr()),
            PW_OK
        );
    }
    let other = open(&config(dir.path(), OTHER_KEY, ""));
    assert_eq!(get(&other, "k"), (PW_CRYPTO_ERROR, None));
    assert!(last_error().contains("decrypt"), "{}", last_error());
    assert_eq!(tier_get(&other, L3, "k"), (PW_CRYPTO_ERROR, None));
    assert_eq!(
        tier_size(&other, L3),
        (PW_OK, 1),
        "the stored entry is kept"
    );
    drop(other);
    let cache = open(&config(dir.path(), KEY, ""));
    let (status, json) = get(&cache, "k");
    assert_eq!(status, PW_OK, "{}", last_error());
    assert!(json.unwrap().contains(r#""password":"pw""#));
}

#[test]
fn the_single_tier_functions_answer_and_refuse_bad_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(&config(dir.path(), KEY, ""));
    let (k, entry) = (c("k"), c(ENTRY));
    for tier in [L1, L2, L3] {
        assert_eq!(tier_enabled(&cache, tier), (PW_OK, true));
        assert_eq!(
            pw_cache_tier_put(cache.0, tier, k.as_ptr(), entry.as_ptr()),
            PW_OK
        );
        let (status, json) = tier_get(&cache, tier, "k");
        assert_eq!(status, PW_OK, "{}", last_error());
        assert!(json.unwrap().contains("10.0.0.1"));
        assert_eq!(tier_size(&cache, tier), (PW_OK, 1));
        assert_eq!(pw_cache_tier_delete(cache.0, tier, k.as_ptr()), PW_OK);
        assert_eq!(
            pw_cache_tier_delete(cache.0, tier, k.as_ptr()),
            PW_NOT_FOUND
        );
        assert_eq!(tier_get(&cache, tier, "k"), (PW_NOT_FOUND, None));
        assert_eq!(
            pw_cache_tier_put(cache.0, tier, k.as_ptr(), entry.as_ptr()),
            PW_OK
        );
        assert_eq!(tier_clear(&cache, tier), (PW_OK, 1));
        assert_eq!(
            pw_cache_tier_put(cache.0, tier, k.as_ptr(), c("{}").as_ptr()),
            PW_INVALID_JSON
        );
        assert!(last_error().contains("proxy_url"), "{}", last_error());
    }

    // A tier out of range, a NULL handle, key or out-parameter, an empty key.
    let null: *mut pw_cache = ptr::null_mut();
    let mut out = ptr::null_mut();
    let mut n = 7;
    let mut b = true;
    assert_eq!(tier_enabled(&cache, 4), (PW_INVALID_ARGUMENT, false));
    assert_eq!(pw_cache_tier_enabled(null, L1, &mut b), PW_INVALID_ARGUMENT);
    assert!(!b);
    assert_eq!(tier_get(&cache, 0, "k"), (PW_INVALID_ARGUMENT, None));
    assert!(last_error().contains("PW_TIER_L1"), "{}", last_error());
    assert_eq!(tier_get(&cache, L1, ""), (PW_INVALID_ARGUMENT, None));
    assert_eq!(
        pw_cache_tier_get(cache.0, L1, k.as_ptr(), ptr::null_mut()),
        PW_INVALID_ARGUMENT
    );
    assert_eq!(
        pw_cache_tier_get(null, L1, k.as_ptr(), &mut out),
        PW_INVALID_ARGUMENT
    );
    assert!(out.is_null());
    assert_eq!(
        pw_cache_tier_put(cache.0, 9, k.as_ptr(), entry.as_ptr()),
        PW_INVALID_ARGUMENT
    );
    assert_eq!(
        pw_cache_tier_put(cache.0, L2, ptr::null(), entry.as_ptr()),
        PW_INVALID_ARGUMENT
    );
    assert_eq!(
        pw_cache_tier_put(cache.0, L2, k.as_ptr(), ptr::null()),
        PW_INVALID_ARGUMENT
    );
    assert_eq!(
        pw_cache_tier_delete(cache.0, 0, k.as_ptr()),
        PW_INVALID_ARGUMENT
    );
    assert_eq!(
        pw_cache_tier_delete(cache.0, L3, c("").as_ptr()),
        PW_INVALID_ARGUMENT
    );
    assert_eq!(
        pw_cache_tier_delete(null, L3, k.as_ptr()),
        PW_INVALID_ARGUMENT
    );
    assert_eq!(tier_size(&cache, 4), (PW_INVALID_ARGUMENT, 0));
    assert_eq!(pw_cache_tier_size(null, L1, &mut n), PW_INVALID_ARGUMENT);
    assert_eq!(n, 0);
    assert_eq!(tier_clear(&cache, 4), (PW_INVALID_ARGUMENT, 0));
    n = 7;
    assert_eq!(pw_cache_tier_clear(null, L1, &mut n), PW_INVALID_ARGUMENT);
    assert_eq!(n, 0);
}

#[test]
fn a_tier_the_configuration_disables_is_unsupported() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(&config(
        dir.path(),
        KEY,
        r#""l1_config": {"enabled": false}, "l2_config": {"enabled": false}"#,
    ));
    let (k, entry) = (c("k"), c(ENTRY));
    for tier in [L1, L2] {
        assert_eq!(tier_enabled(&cache, tier), (PW_OK, false));
        assert_eq!(tier_get(&cache, tier, "k"), (PW_UNSUPPORTED, None));
        assert!(last_error().contains("disabled"), "{}", last_error());
        assert_eq!(
            pw_cache_tier_put(cache.0, tier, k.as_ptr(), entry.as_ptr()),
            PW_UNSUPPORTED
        );
        assert_eq!(
            pw_cache_tier_delete(cache.0, tier, k.as_ptr()),
            PW_UNSUPPORTED
        );
        assert_eq!(tier_size(&cache, tier), (PW_UNSUPPORTED, 0));
        assert_eq!(tier_clear(&cache, tier), (PW_UNSUPPORTED, 0));
    }
    assert_eq!(tier_enabled(&cache, L3), (PW_OK, true));
}

#[test]
fn a_degraded_tier_is_a_storage_error_for_the_single_tier_functions() {
    let dir = tempfile::tempdir().unwrap();
    let cache = without_a_usable_tier(dir.path());
    let (k, entry) = (c("k"), c(ENTRY));
    for tier in [L2, L3] {
        assert_eq!(
            tier_enabled(&cache, tier),
            (PW_OK, false),
            "degraded: not in use"
        );
        assert_eq!(tier_get(&cache, tier, "k"), (PW_STORAGE_ERROR, None));
        assert_eq!(
            pw_cache_tier_put(cache.0, tier, k.as_ptr(), entry.as_ptr()),
            PW_STORAGE_ERROR
        );
        assert_eq!(
            pw_cache_tier_delete(cache.0, tier, k.as_ptr()),
            PW_STORAGE_ERROR
        );
        assert_eq!(tier_size(&cache, tier), (PW_STORAGE_ERROR, 0));
        assert_eq!(tier_clear(&cache, tier), (PW_STORAGE_ERROR, 0));
    }
}

/// A JSONL L2 whose directory is replaced by a regular file while the cache uses it: the tier's
/// own failure (an I/O error inside the tier) reaches the caller as `PW_STORAGE_ERROR`, the
/// status the single-tier functions name for a tier that cannot be read or written.
#[test]
fn a_tier_that_fails_while_in_use_is_a_storage_error() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(&config(dir.path(), KEY, ""));
    let (k, entry) = (c("k"), c(ENTRY));
    assert_eq!(
        pw_cache_tier_put(cache.0, L2, k.as_ptr(), entry.as_ptr()),
        PW_OK
    );
    let l2 = dir.path().join("l2");
    fs::remove_dir_all(&l2).unwrap();
    fs::write(&l2, "not a directory").unwrap();
    let status = pw_cache_tier_put(cache.0, L2, c("k2").as_ptr(), entry.as_ptr());
    assert_eq!(status, PW_STORAGE_ERROR, "{}", last_error());
    assert!(last_error().contains("L2"), "{}", last_error());
}

#[test]
fn configurations_of_the_shared_tier_are_checked_before_anything_opens() {
    let dir = tempfile::tempdir().unwrap();
    let shared = |members: &str| {
        config(
            dir.path(),
            KEY,
            &format!(r#""shared_config": {{"enabled": true, {members}}}"#),
        )
    };
    for (members, named) in [
        (r#""url": "http://u:hunter2@127.0.0.1:1""#, "url"),
        (
            r#""url": "redis://127.0.0.1:1", "namespace": "a b""#,
            "namespace",
        ),
        (
            r#""url": "redis://127.0.0.1:1", "timeout_ms": 0"#,
            "timeout_ms",
        ),
    ] {
        let mut cache = ptr::null_mut();
        assert_eq!(
            pw_cache_new(c(&shared(members)).as_ptr(), &mut cache),
            PW_INVALID_JSON,
            "{members}"
        );
        assert!(cache.is_null());
        assert!(last_error().contains(named), "{}", last_error());
        assert!(!last_error().contains("hunter2"), "{}", last_error());
    }
    if std::env::var_os("PROXYWHIRL_CACHE_ENCRYPTION_KEY").is_some() {
        eprintln!("SKIPPED: a fleet without a key: PROXYWHIRL_CACHE_ENCRYPTION_KEY is set");
        return;
    }
    let without_key = format!(
        r#"{{"l2_cache_dir": "{}", "l3_database_path": "{}",
            "shared_config": {{"enabled": true, "url": "redis://127.0.0.1:1"}}}}"#,
        dir.path().join("l2").display(),
        dir.path().join("l3.db").display()
    );
    let mut cache = ptr::null_mut();
    assert_eq!(
        pw_cache_new(c(&without_key).as_ptr(), &mut cache),
        PW_CRYPTO_ERROR
    );
    assert!(cache.is_null());
}

// ---- scenarios that need a process of their own ------------------------------------------

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn setpriv_available() -> bool {
    Command::new("setpriv")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs the test `name` again in a child process with [`CHILD_ENV`] set, as user 65534 when
/// `unprivileged` and this process is root (a copy of this binary that user can run, started
/// with `setpriv`). Asserts that the child passed; false when it cannot run (said on stderr).
fn run_in_child(name: &str, unprivileged: bool) -> bool {
    let bin_dir = tempfile::tempdir().unwrap();
    let mut program = std::env::current_exe().unwrap();
    let mut command = if unprivileged && is_root() {
        if !setpriv_available() {
            eprintln!(
                "SKIPPED: {name}: running as root, which no process limit binds, and `setpriv` \
                 (util-linux) is not installed to run it as user {NOBODY}"
            );
            return false;
        }
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(bin_dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let copy = bin_dir.path().join("statuses");
        fs::copy(&program, &copy).unwrap();
        fs::set_permissions(&copy, fs::Permissions::from_mode(0o755)).unwrap();
        program = copy;
        let mut setpriv = Command::new("setpriv");
        setpriv.args([
            format!("--reuid={NOBODY}"),
            format!("--regid={NOBODY}"),
            "--clear-groups".to_string(),
        ]);
        setpriv.arg(&program);
        setpriv
    } else {
        Command::new(&program)
    };
    let out = command
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, name)
        .env("TMPDIR", "/tmp")
        .output()
        .unwrap();
    assert_child_test_passed(&out, name);
    true
}

fn in_child(name: &str) -> bool {
    std::env::var(CHILD_ENV).is_ok_and(|v| v == name)
}

/// With no thread to be had (RLIMIT_NPROC 0, which binds only an unprivileged user): the
/// sweeper's thread is `PW_PANIC` from pw_ttl_start() (the header says so), and a fleet's
/// notice listener is `PW_STORAGE_ERROR` from pw_cache_new().
#[test]
fn a_thread_that_cannot_be_created() {
    const NAME: &str = "a_thread_that_cannot_be_created";
    if !in_child(NAME) {
        run_in_child(NAME, true);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cache = open(&config(
        dir.path(),
        KEY,
        r#""l2_config": {"enabled": false}, "l3_config": {"enabled": false}"#,
    ));
    let mut ttl: *mut pw_ttl = ptr::null_mut();
    assert_eq!(pw_ttl_new(cache.0, 60.0, &mut ttl), PW_OK);
    let none = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid rlimit for this process (a child of its own).
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NPROC, &none) }, 0);

    assert_eq!(pw_ttl_start(ttl), PW_PANIC);
    assert!(last_error().contains("pw_ttl_start"), "{}", last_error());
    pw_ttl_free(ttl);

    let fleet = config(
        dir.path(),
        KEY,
        r#""l2_config": {"enabled": false}, "l3_config": {"enabled": false},
           "shared_config": {"enabled": true, "url": "redis://127.0.0.1:1", "timeout_ms": 50}"#,
    );
    let mut other = ptr::null_mut();
    assert_eq!(
        pw_cache_new(c(&fleet).as_ptr(), &mut other),
        PW_STORAGE_ERROR
    );
    assert!(other.is_null());
    assert!(last_error().contains("notice listener"), "{}", last_error());
}

unsafe extern "C" fn ignore(_: *mut c_void, _: pw_log_level, _: *const c_char) {}

struct OtherLogger;

impl log::Log for OtherLogger {
    fn enabled(&self, _: &log::Metadata) -> bool {
        false
    }
    fn log(&self, _: &log::Record) {}
    fn flush(&self) {}
}

/// pwcache linked into a Rust program that installed its own `log` logger first.
#[test]
fn another_rust_logger_makes_pw_set_logger_unsupported() {
    const NAME: &str = "another_rust_logger_makes_pw_set_logger_unsupported";
    if !in_child(NAME) {
        run_in_child(NAME, false);
        return;
    }
    static OTHER: OtherLogger = OtherLogger;
    log::set_logger(&OTHER).unwrap();
    let warn = pw_log_level::PW_LOG_WARN as u32;
    assert_eq!(
        pw_set_logger(Some(ignore), ptr::null_mut(), warn),
        PW_UNSUPPORTED
    );
    assert!(last_error().contains("logger"), "{}", last_error());
    assert_eq!(pw_set_logger(None, ptr::null_mut(), warn), PW_OK);
}

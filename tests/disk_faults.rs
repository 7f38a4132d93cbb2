//! Faults of the disk under L2, for both L2 backends (JSONL and SQLite): a full filesystem and a
//! read-only directory. Each scenario checks the status of every call, that the cache serves
//! from the other tiers while L2 is failing, the `l2_degraded` flag, that L2 recovers once the
//! fault is gone (the back-off is passed with the manager's clock), and that nothing acknowledged
//! is lost or undone: every acknowledged put reads back with its last value and every
//! acknowledged delete stays deleted, in the handle and after it is dropped and the store is
//! opened again. The handle that saw the fault is freed while the fault is still there: what L2
//! missed must survive it (the missed-keys journal beside L3).
//!
//! - The full disk is a 2 MiB tmpfs mounted on L2's directory (needs root, as in CI). Where
//!   mounting is refused the test says so and skips.
//! - A file-size limit (`RLIMIT_FSIZE`), which needs no privilege and runs everywhere: a child
//!   process (this test binary) limits every file it writes, L2's and L3's alike, so writes
//!   fail with `EFBIG` the way they fail with `ENOSPC` on a full disk, at whichever tier grows
//!   past the limit first. An operation that fails may or may not have taken effect; one that
//!   returned OK must hold, in that process and after the store is reopened without the limit.
//! - The read-only directory must be seen by an unprivileged user (root ignores permissions): as
//!   root the scenario runs in a child process, this test binary copied where user 65534 can run
//!   it, started with `setpriv --reuid=65534 --regid=65534 --clear-groups`; as another user it
//!   runs in this process. Without `setpriv` (as root) the test says so and skips.
//!
//! A database replaced by garbage at run time is covered by tests/tier_faults.rs.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use common::*;
use pwcache::{CacheConfig, CacheManager, EntryInput, ErrorKind, ManualClock};

/// Past the longest back-off a slot schedules after a few failures.
const PAST_BACKOFF_SECS: i64 = 120;
/// Set in the child process of the read-only scenario: the directory it works in.
const CHILD_DIR_ENV: &str = "PWCACHE_DISK_FAULTS_CHILD_DIR";
/// Set in the child process of the file-size-limit scenario: the directory it works in.
const FSIZE_CHILD_DIR_ENV: &str = "PWCACHE_DISK_FAULTS_FSIZE_DIR";
/// The unprivileged user (and group) the read-only scenario runs as under root: `nobody`.
const NOBODY: u32 = 65534;

/// What a key holds: its URL and source, or nothing.
type Value = Option<(String, String)>;

/// The acknowledged state of every key the scenario touched.
#[derive(Default)]
struct Model(BTreeMap<String, Value>);

impl Model {
    /// Puts `value` and records it when the put is acknowledged (it must be).
    fn put(&mut self, cache: &CacheManager, key: &str, url: String, source: String, what: &str) {
        let input = EntryInput {
            source: Some(source.clone()),
            ..EntryInput::with_url(url.clone())
        };
        cache
            .put(key, input)
            .unwrap_or_else(|e| panic!("{what}: put {key} must be acknowledged: {e}"));
        self.0.insert(key.to_string(), Some((url, source)));
    }

    fn delete(&mut self, cache: &CacheManager, key: &str, what: &str) {
        cache
            .delete(key)
            .unwrap_or_else(|e| panic!("{what}: delete {key} must be acknowledged: {e}"));
        self.0.insert(key.to_string(), None);
    }

    /// Every key reads back as last acknowledged through `cache`.
    fn check(&self, cache: &CacheManager, what: &str) {
        let mut wrong = Vec::new();
        for (key, expected) in &self.0 {
            let got = cache
                .get(key)
                .unwrap_or_else(|e| panic!("{what}: get {key}: {e}"))
                .map(|e| (e.proxy_url, e.source));
            if &got != expected {
                wrong.push(format!(
                    "{key}: expected {}, got {}",
                    show(expected),
                    show(&got)
                ));
            }
        }
        assert!(
            wrong.is_empty(),
            "{what}: {} of {} keys read back wrong (stale or undone):\n{}",
            wrong.len(),
            self.0.len(),
            wrong.join("\n")
        );
    }

    /// What L2 alone holds is never an older value: each key is absent or as last acknowledged.
    fn check_no_stale_in(&self, l2: &CacheManager, what: &str) {
        for (key, expected) in &self.0 {
            let got = l2
                .get(key)
                .unwrap_or_else(|e| panic!("{what}: get {key} from L2 alone: {e}"))
                .map(|e| (e.proxy_url, e.source));
            assert!(
                got.is_none() || &got == expected,
                "{what}: L2 alone holds a stale {key}: expected {} or nothing, got {}",
                show(expected),
                show(&got)
            );
        }
    }
}

fn show(value: &Value) -> String {
    match value {
        None => "NOT_FOUND".to_string(),
        Some((url, source)) => format!("{url} (source {} bytes)", source.len()),
    }
}

/// The backends, by name, with the configuration of a store in `dir`.
fn backends(dir: &Path) -> [(&'static str, CacheConfig); 2] {
    [
        ("jsonl", config_in(&dir.join("jsonl"))),
        ("sqlite", sqlite_l2(config_in(&dir.join("sqlite")))),
    ]
}

/// `config` without L1: reads reach L2 and L3, and no L1 copy is written back when freed.
fn without_l1(config: &CacheConfig) -> CacheConfig {
    let mut config = config.clone();
    config.l1.enabled = false;
    config
}

fn l2_degraded(cache: &CacheManager) -> bool {
    cache.statistics().l2_degraded
}

// ---------------------------------------------------------------------------------------------
// A full disk.

/// A tmpfs mounted on a directory, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount -o size=`) on `dir`, or says why it cannot.
    fn mount(dir: &Path, size: &str) -> Result<Tmpfs, String> {
        fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
            .arg("tmpfs")
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if out.status.success() {
            Ok(Tmpfs(dir.to_path_buf()))
        } else {
            Err(format!(
                "mount -t tmpfs failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // Busy (a file still open after a failed assertion): detach it instead.
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

/// Fills the filesystem of `dir` with a file until a write fails with "no space"; returns the
/// file and how many bytes it took. Bounded by `max_bytes`.
fn fill(dir: &Path, max_bytes: usize) -> (PathBuf, usize) {
    let path = dir.join("filler");
    let mut file = fs::File::create(&path).unwrap();
    let mut written = 0;
    // Large writes first, then single bytes to use up the last page.
    for chunk in [65536, 4096, 1] {
        let buf = vec![0x42u8; chunk];
        while written < max_bytes {
            match file.write(&buf) {
                Ok(0) => break,
                Ok(n) => written += n,
                Err(e) => {
                    assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "filling: {e}");
                    break;
                }
            }
        }
    }
    assert!(written < max_bytes, "the filesystem never filled up");
    let err = file.write(b"x").expect_err("the filesystem is full");
    assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
    (path, written)
}

/// A value of key `i` written while the disk is full: larger than a page, so its write needs a
/// new page of the filesystem whichever file it goes to.
fn big_source(i: usize) -> String {
    format!("full-{i}-{}", "x".repeat(6000))
}

/// A handle reopened on `config` once the fault is gone; its L2 must be usable.
fn reopen_usable(config: &CacheConfig, clock: &Arc<ManualClock>, what: &str) -> CacheManager {
    let cache = open(config.clone(), clock);
    assert!(
        !l2_degraded(&cache),
        "{what}: L2 is usable after the reopen"
    );
    cache
}

/// L2 alone, after the recovery and the reopen: no stale entry, and the put made under `after`
/// once the tier recovered (URL `after_url`) reached it.
fn check_l2_alone_after_recovery(
    model: &Model,
    config: &CacheConfig,
    clock: &Arc<ManualClock>,
    what: &str,
    after_url: String,
) {
    let l2 = open(one_lower_tier(config, true), clock);
    model.check_no_stale_in(&l2, what);
    let after = l2.get("after").unwrap().map(|e| e.proxy_url);
    assert_eq!(
        after,
        Some(after_url),
        "{what}: a put after the recovery reached L2"
    );
}

#[test]
fn a_full_disk_under_l2_loses_nothing_acknowledged() {
    const KEYS: usize = 40;
    const UPDATED: std::ops::Range<usize> = 0..10;
    const DELETED: std::ops::Range<usize> = 10..16;
    let dir = tempfile::tempdir().unwrap();
    for (backend, config) in backends(dir.path()) {
        let what = format!("full disk, {backend} L2");
        let mount = match Tmpfs::mount(&config.l2_cache_dir, "2m") {
            Ok(mount) => mount,
            Err(why) => {
                eprintln!(
                    "SKIPPED: {what}: the full-disk scenario needs a small tmpfs for L2 and {why} \
                     (run as root, outside a container that forbids mounts)"
                );
                return;
            }
        };
        let clock = clock();
        let mut model = Model::default();

        let cache = open(config.clone(), &clock);
        for i in 0..KEYS {
            model.put(&cache, &key(i), url(i), format!("v1-{i}"), &what);
        }
        let (filler, filled) = fill(&config.l2_cache_dir, 4 << 20);

        // Updates larger than a page: L2 cannot store them, L3 acknowledges them.
        for i in UPDATED {
            model.put(&cache, &key(i), url(1000 + i), big_source(i), &what);
        }
        assert!(
            l2_degraded(&cache),
            "{what}: L2 is degraded after failing every update"
        );
        for i in DELETED {
            model.delete(&cache, &key(i), &what);
        }
        model.check(&cache, &format!("{what}, the handle that saw the fault"));
        drop(cache); // freed while the disk is still full: what L2 missed must not be forgotten

        // A new handle while the disk is still full, without L1: every read goes below.
        let cache = open(without_l1(&config), &clock);
        model.check(&cache, &format!("{what}, a new handle while full"));
        model.put(&cache, "while-full", url(500), big_source(500), &what);
        for i in [KEYS - 1, KEYS - 2] {
            model.delete(&cache, &key(i), &what);
        }
        model.check(&cache, &format!("{what}, the second handle while full"));

        // Space freed: after the back-off, the next operation brings L2 back.
        fs::remove_file(&filler).unwrap();
        clock.set(t0().plus_seconds(PAST_BACKOFF_SECS));
        model.put(&cache, "after", url(501), big_source(501), &what);
        assert!(
            !l2_degraded(&cache),
            "{what}: L2 recovered once space was freed"
        );
        drop(cache);

        let cache = reopen_usable(&config, &clock, &what);
        model.check(&cache, &format!("{what}, after the reopen"));
        drop(cache);
        check_l2_alone_after_recovery(&model, &config, &clock, &what, url(501));
        eprintln!(
            "{what}: filled with {filled} bytes; {} updates and {} deletes while full, all \
             read back after the reopen",
            UPDATED.len() + 1,
            DELETED.len() + 2
        );
        drop(mount);
    }
}

// ---------------------------------------------------------------------------------------------
// A file-size limit: every file of the store stops growing.

/// What each key may hold after the limited run: the values that an acknowledged operation left,
/// plus those of failed operations after it (which may or may not have taken effect).
type Outcomes = BTreeMap<String, Vec<Value>>;

/// The limit on every file the child writes: L3's write-ahead log is past it after the first
/// puts, the L2 files get there after a few big updates each, so both tiers fail in turn.
const FSIZE_LIMIT: u64 = 64 * 1024;

/// The child: fills a store under a file-size limit; writes what each key may hold to
/// `outcomes.json` in each backend's directory.
fn file_size_limit_scenario(dir: &Path) {
    const KEYS: usize = 40;
    const OPS: usize = 240;
    for (backend, config) in backends(dir) {
        let what = format!("file-size limit, {backend} L2");
        let clock = clock();
        let mut model = Model::default();
        let cache = open(config.clone(), &clock);
        for i in 0..KEYS {
            model.put(&cache, &key(i), url(i), format!("v1-{i}"), &what);
        }
        let mut outcomes: Outcomes = model
            .0
            .iter()
            .map(|(k, v)| (k.clone(), vec![v.clone()]))
            .collect();
        // From here no file of the process grows past the limit (`EFBIG`); it is lifted before
        // the next backend, which has a store of its own.
        set_file_size_limit(FSIZE_LIMIT);
        let (mut failed, mut degraded_seen) = (0, false);
        for op in 0..OPS {
            let k = key(op % KEYS);
            let allowed = outcomes.get_mut(&k).unwrap();
            let (result, value) = if op % 6 == 5 {
                (cache.delete(&k).map(|_| ()), None)
            } else {
                let source = big_source(op);
                let input = EntryInput {
                    source: Some(source.clone()),
                    ..EntryInput::with_url(url(1000 + op))
                };
                (cache.put(&k, input), Some((url(1000 + op), source)))
            };
            match result {
                Ok(()) => *allowed = vec![value],
                Err(_) => {
                    failed += 1;
                    allowed.push(value);
                }
            }
            let stats = cache.statistics();
            degraded_seen |= stats.l2_degraded || stats.l3_degraded;
        }
        assert!(
            degraded_seen && failed > 0,
            "{what}: the limit did nothing (degraded seen: {degraded_seen}, {failed} failed)"
        );
        // Reads while the files still cannot grow: each key holds one of its allowed values, or
        // the read is a storage error when L1 lacks it and both tiers are skipped (a miss then
        // would be a lie: the entry is on disk).
        let mut unreadable = 0;
        for (k, allowed) in &outcomes {
            let got = match cache.get(k) {
                Ok(got) => got.map(|e| (e.proxy_url, e.source)),
                Err(e) if e.kind() == ErrorKind::Storage => {
                    unreadable += 1;
                    continue;
                }
                Err(e) => panic!("{what}: get {k} while limited: {e}"),
            };
            assert!(
                allowed.contains(&got),
                "{what}: {k} while limited reads {}, allowed: {}",
                show(&got),
                allowed.iter().map(show).collect::<Vec<_>>().join(" | ")
            );
        }
        drop(cache); // freed while limited: what a tier missed must not be forgotten
        let file = config.l2_cache_dir.parent().unwrap().join("outcomes.json");
        set_file_size_limit(libc::RLIM_INFINITY);
        fs::write(&file, serde_json::to_vec(&outcomes).unwrap()).unwrap();
        eprintln!(
            "{what}: {OPS} operations under a {FSIZE_LIMIT}-byte file-size limit, {failed} \
             failed, {unreadable} keys unreadable (storage error) while limited"
        );
    }
}

fn set_file_size_limit(bytes: libc::rlim_t) {
    let limit = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: plain system calls on this process; SIGXFSZ would otherwise kill it at the limit
    // (the write then fails with EFBIG instead).
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
    }
}

#[test]
fn a_file_size_limit_loses_nothing_acknowledged() {
    if let Some(dir) = std::env::var_os(FSIZE_CHILD_DIR_ENV) {
        file_size_limit_scenario(Path::new(&dir));
        return;
    }
    let store = tempfile::tempdir().unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_file_size_limit_loses_nothing_acknowledged",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(FSIZE_CHILD_DIR_ENV, store.path())
        .output()
        .unwrap();
    assert_child_test_passed(&out, "the file-size-limited run");

    // Without the limit: every key holds an allowed value, in every tier, and the store heals.
    for (backend, config) in backends(store.path()) {
        let what = format!("file-size limit, {backend} L2, reopened");
        let file = config.l2_cache_dir.parent().unwrap().join("outcomes.json");
        let outcomes: Outcomes = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
        let clock = clock();
        let readers = [
            ("the cache", without_l1(&config), false),
            ("L2 alone", one_lower_tier(&config, true), true),
            ("L3 alone", one_lower_tier(&config, false), true),
        ];
        for (name, reader_config, may_lack) in readers {
            let cache = open(reader_config, &clock);
            for (k, allowed) in &outcomes {
                let got = cache
                    .get(k)
                    .unwrap_or_else(|e| panic!("{what}: {name}: get {k}: {e}"))
                    .map(|e| (e.proxy_url, e.source));
                assert!(
                    allowed.contains(&got) || (may_lack && got.is_none()),
                    "{what}: {name}: {k} reads {}, allowed: {}",
                    show(&got),
                    allowed.iter().map(show).collect::<Vec<_>>().join(" | ")
                );
            }
        }
        let cache = open(config.clone(), &clock);
        clock.set(t0().plus_seconds(PAST_BACKOFF_SECS));
        cache
            .put("after", EntryInput::with_url(url(7)))
            .unwrap_or_else(|e| panic!("{what}: put after the limit: {e}"));
        let stats = cache.statistics();
        assert!(
            !stats.l2_degraded && !stats.l3_degraded,
            "{what}: both tiers serve without the limit"
        );
        drop(cache);
        for (name, l2) in [("L2", true), ("L3", false)] {
            let one = open(one_lower_tier(&config, l2), &clock);
            assert_eq!(
                one.get("after").unwrap().map(|e| e.proxy_url),
                Some(url(7)),
                "{what}: a put after the limit reached {name}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A read-only directory.

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// The files of L2's directory (its shards or database, and their lock files).
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// The scenario, run by an unprivileged user in `dir`: put a (v1) and b (v1), free;
/// make L2 read-only (chmod 0500 l2, chmod 0400 l2/*); open (OK, degraded); put a v2 and delete
/// b (OK), free; a new handle while still read-only serves from L3; restore the permissions;
/// L2 comes back; reopen: a is v2, b is NOT_FOUND.
fn read_only_scenario(dir: &Path) {
    for (backend, config) in backends(dir) {
        let what = format!("read-only L2 directory, {backend} L2");
        let clock = clock();
        let mut model = Model::default();
        let l2_dir = config.l2_cache_dir.clone();

        let cache = open(config.clone(), &clock);
        model.put(&cache, "a", url(1), "v1".into(), &what);
        model.put(&cache, "b", url(2), "v1".into(), &what);
        for i in 0..10 {
            model.put(&cache, &key(i), url(i), "v1".into(), &what);
        }
        drop(cache);

        let files = files_in(&l2_dir);
        assert!(!files.is_empty(), "{what}: L2 wrote files");
        for file in &files {
            set_mode(file, 0o400);
        }
        set_mode(&l2_dir, 0o500);

        let cache = open(config.clone(), &clock);
        assert!(
            l2_degraded(&cache),
            "{what}: L2 cannot be opened for writing"
        );
        model.put(&cache, "a", url(11), "v2".into(), &what);
        model.delete(&cache, "b", &what);
        for i in 0..5 {
            model.put(&cache, &key(i), url(100 + i), "v2".into(), &what);
        }
        model.delete(&cache, &key(9), &what);
        model.check(&cache, &format!("{what}, the handle that saw the fault"));
        drop(cache); // freed while L2 is still read-only

        // A new handle while still read-only, without L1: every read goes below.
        let cache = open(without_l1(&config), &clock);
        assert!(l2_degraded(&cache), "{what}: still read-only");
        model.check(&cache, &format!("{what}, a new handle while read-only"));
        model.put(&cache, "c", url(3), "v1".into(), &what);

        set_mode(&l2_dir, 0o700);
        for file in &files {
            set_mode(file, 0o600);
        }
        clock.set(t0().plus_seconds(PAST_BACKOFF_SECS));
        model.put(&cache, "after", url(4), "v1".into(), &what);
        assert!(!l2_degraded(&cache), "{what}: L2 recovered once writable");
        drop(cache);

        let cache = reopen_usable(&config, &clock, &what);
        let a = cache.get("a").unwrap().map(|e| e.proxy_url);
        assert_eq!(a, Some(url(11)), "{what}: get a after the reopen is v2");
        assert!(
            cache.get("b").unwrap().is_none(),
            "{what}: get b after the reopen is NOT_FOUND"
        );
        model.check(&cache, &format!("{what}, after the reopen"));
        drop(cache);
        check_l2_alone_after_recovery(&model, &config, &clock, &what, url(4));
        eprintln!("{what}: 7 puts and 2 deletes while read-only, all read back after the reopen");
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn chown(path: &Path, uid: u32) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `c` is a NUL-terminated path that lives across the call.
    let rc = unsafe { libc::chown(c.as_ptr(), uid, uid) };
    assert_eq!(
        rc,
        0,
        "chown {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

fn setpriv_available() -> bool {
    Command::new("setpriv")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn a_read_only_l2_directory_loses_nothing_acknowledged() {
    // The child process (as the unprivileged user): run the scenario in the directory given.
    if let Some(dir) = std::env::var_os(CHILD_DIR_ENV) {
        read_only_scenario(Path::new(&dir));
        return;
    }
    let store = tempfile::tempdir().unwrap();
    if !is_root() {
        // Permissions apply to this user: no child needed.
        read_only_scenario(store.path());
        return;
    }
    if !setpriv_available() {
        eprintln!(
            "SKIPPED: read-only L2 directory: running as root, which ignores file permissions, \
             and `setpriv` (util-linux) is not installed to run the scenario as user {NOBODY}"
        );
        return;
    }
    // The binary where user 65534 can read and run it, and a store that user owns.
    let bin_dir = tempfile::tempdir().unwrap();
    set_mode(bin_dir.path(), 0o755);
    let bin = bin_dir.path().join("disk_faults");
    fs::copy(std::env::current_exe().unwrap(), &bin).unwrap();
    set_mode(&bin, 0o755);
    chown(store.path(), NOBODY);
    let out = Command::new("setpriv")
        .args([
            format!("--reuid={NOBODY}"),
            format!("--regid={NOBODY}"),
            "--clear-groups".to_string(),
        ])
        .arg(&bin)
        .args([
            "--exact",
            "a_read_only_l2_directory_loses_nothing_acknowledged",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR_ENV, store.path())
        .output()
        .unwrap();
    assert_child_test_passed(&out, &format!("the read-only scenario as user {NOBODY}"));
}

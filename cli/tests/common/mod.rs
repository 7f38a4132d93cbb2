//! Helpers of the CLI tests: the binary with an environment of its own, so no test reads the
//! machine's key, password, log filter or per-user cache.
#![allow(dead_code)]

use std::path::Path;

use assert_cmd::Command;

/// The binary run in `dir`, with HOME and PWCACHE_DIR pointing inside it: the default cache is
/// `dir/store`. Built by [`child`], so both run the binary in the same environment.
pub fn bare(dir: &Path) -> Command {
    Command::from(child(dir))
}

/// [`bare`] as a `std::process::Command`, for a child the test signals while it runs.
pub fn child(dir: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("pwcache"));
    cmd.current_dir(dir)
        .env_remove("PROXYWHIRL_CACHE_ENCRYPTION_KEY")
        .env_remove("PROXYWHIRL_CACHE_KEY_PREVIOUS")
        .env_remove("PWCACHE_PASSWORD")
        .env_remove("RUST_LOG")
        .env_remove("XDG_CACHE_HOME")
        .env("HOME", dir.join("home"))
        .env("TMPDIR", dir)
        .env("PWCACHE_DIR", dir.join("store"));
    cmd
}

/// The same; kept as the name the older tests use.
pub fn pwcache(dir: &Path) -> Command {
    bare(dir)
}

/// Stdout of a command that must succeed.
pub fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.assert().success().get_output().clone();
    String::from_utf8(out.stdout).unwrap()
}

/// Every file under `dir`, relative, sorted.
pub fn files_under(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path.clone());
            }
            found.push(path.strip_prefix(dir).unwrap().display().to_string());
        }
    }
    found.sort();
    found
}

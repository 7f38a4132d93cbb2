//! The shared library exports only the C API (`pw_` symbols) and has its SONAME (build.rs,
//! src/ffi/exports.map). Linux only: it reads the ELF file with binutils' `nm` and `readelf`.
//! That CMake installs the library under the same name is checked by tests/c/install_consumer.sh.
#![cfg(target_os = "linux")]

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// `target/<profile>/libpwcache.so`, built now: `cargo test` builds the crate as an rlib for the
/// tests and leaves the cdylib as it was, so the test builds it with the same cargo and profile,
/// as CMake and scripts/test-python.sh do (`-p pwcache`: the library alone, not the CLI).
fn shared_library() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().unwrap();
            let profile_dir = exe.parent().unwrap().parent().unwrap();
            let release = profile_dir.file_name().is_some_and(|n| n == "release");
            let mut cargo = Command::new(env!("CARGO"));
            cargo
                .args(["build", "-p", "pwcache", "--lib", "--quiet"])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .env("CARGO_TARGET_DIR", profile_dir.parent().unwrap());
            if release {
                cargo.arg("--release");
            }
            assert!(cargo.status().unwrap().success(), "cargo build --lib");
            let lib = profile_dir.join("libpwcache.so");
            assert!(lib.exists(), "{} is built", lib.display());
            lib
        })
        .clone()
}

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} runs (binutils installed?): {e}"));
    assert!(out.status.success(), "{program} {args:?} failed");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn only_pw_symbols_are_exported() {
    let lib = shared_library();
    let symbols = run("nm", &["-D", "--defined-only", lib.to_str().unwrap()]);
    let names: Vec<&str> = symbols
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    for expected in [
        "pw_version",
        "pw_cache_new",
        "pw_set_logger",
        "pw_ttl_free",
        "pw_cache_tier_get",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} is exported: {names:?}"
        );
    }
    let foreign: Vec<&&str> = names.iter().filter(|n| !n.starts_with("pw_")).collect();
    assert!(
        foreign.is_empty(),
        "symbols exported besides pw_*: {foreign:?}"
    );
}

/// `libpwcache.so.<major>`, the major number of Cargo.toml's version.
#[test]
fn the_library_has_a_soname() {
    let lib = shared_library();
    let dynamic = run("readelf", &["-d", lib.to_str().unwrap()]);
    let expected = format!(
        "Library soname: [libpwcache.so.{}]",
        env!("CARGO_PKG_VERSION_MAJOR")
    );
    assert!(
        dynamic.contains(&expected),
        "SONAME missing or not {expected}:\n{dynamic}"
    );
}

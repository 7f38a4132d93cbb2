//! Link arguments of the shared library (the cdylib only): export only the `pw_` symbols of
//! the C API (a linker version script) and give the library its SONAME.
//!
//! The SONAME is `libpwcache.so.<major>`, the major number of the version in Cargo.toml: that
//! version is the one definition, and CMakeLists.txt derives the name it installs from the same
//! version by the same rule (`PWCACHE_SONAME`). tests/c/install_consumer.sh checks that the
//! installed files carry the name this script gives the library.

fn main() {
    let map = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ffi/exports.map");
    println!("cargo:rerun-if-changed={}", map.display());
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os == "linux" {
        println!(
            "cargo:rustc-cdylib-link-arg=-Wl,--version-script={}",
            map.display()
        );
        let major = std::env::var("CARGO_PKG_VERSION_MAJOR").expect("cargo sets the version");
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libpwcache.so.{major}");
    }
}

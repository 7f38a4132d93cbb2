//! Link arguments of the shared library (the cdylib only): export only the `pw_` symbols of
//! the C API (a linker version script) and give the library its SONAME.

fn main() {
    let map = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ffi/exports.map");
    println!("cargo:rerun-if-changed={}", map.display());
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os == "linux" {
        println!(
            "cargo:rustc-cdylib-link-arg=-Wl,--version-script={}",
            map.display()
        );
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libpwcache.so.0");
    }
}

#!/usr/bin/env bash
# Runs the library's Rust unit tests and the integration tests that drive the engine hardest
# (manager, the tier contract on every tier, both L2 backends, L3, warm/export, TTL sweeps, the
# property tests) under AddressSanitizer, on nightly. The C API has its own ASan+UBSan build in
# scripts/test-c.sh.
#
#   scripts/test-asan.sh [cargo test arguments, e.g. a test name filter]
#
# Without a nightly toolchain it says so and exits 0. Builds into target/asan (a separate build:
# every crate is compiled with the sanitizer). The standard library itself is not instrumented
# (that needs -Zbuild-std and the rust-src component; set PWCACHE_ASAN_BUILD_STD=1 to use it when
# installed); pwcache's code, its dependencies and their unsafe code are.
# docs/reliability.md ("Rust tests under AddressSanitizer") has the last run's figures.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v rustup >/dev/null 2>&1 || ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "asan: skipped: no nightly Rust toolchain (rustup toolchain install nightly)"
  exit 0
fi
host=$(rustc +nightly -vV | sed -n 's/^host: //p')
case "$host" in
  x86_64-unknown-linux-gnu | aarch64-unknown-linux-gnu) ;;
  *) echo "asan: skipped: AddressSanitizer is not supported on $host"; exit 0 ;;
esac

build_std=()
if [ "${PWCACHE_ASAN_BUILD_STD:-0}" = 1 ]; then
  if rustup +nightly component list --installed 2>/dev/null | grep -q '^rust-src'; then
    build_std=(-Zbuild-std)
  else
    echo "asan: PWCACHE_ASAN_BUILD_STD=1 needs rust-src (rustup +nightly component add rust-src)"
    exit 1
  fi
fi

# --target keeps the sanitizer off build scripts and proc-macros, which run on the host.
export RUSTFLAGS="-Zsanitizer=address"
export RUSTDOCFLAGS="-Zsanitizer=address"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1}"
echo "== cargo +nightly test under AddressSanitizer ($host)"
cargo +nightly test -p pwcache --release --locked "${build_std[@]}" --target "$host" \
  --target-dir target/asan \
  --lib --test manager --test tier_contract --test l2_jsonl --test sqlite_tiers \
  --test warm_export --test ttl --test properties --no-fail-fast "$@"
echo "== asan: passed"

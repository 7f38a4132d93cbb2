#!/usr/bin/env bash
# Runs every test suite of pwcache, as CI does (.ci/run calls this script):
#   formatting (rustfmt) and lints (clippy -D warnings) of the whole workspace (library and CLI),
#   the Rust tests (unit, integration, CLI, doc, header freshness, exported symbols),
#   the C tests through ctest, again under valgrind memcheck and built with ASan+UBSan,
#   the Python package's tests on the installed wheel (built with pip and maturin, installed
#   into a fresh .venv), and the proxywhirl drop-in's beside proxywhirl 0.3.3 (.venv-proxywhirl),
#   then README.md's shell, C and Python snippets as written (scripts/test-readme.sh).
# On a fresh Debian machine it installs what is missing: cmake, pkg-config, valgrind,
# libsqlite3-dev and redis-server with apt-get; maturin, cffi, pytest and proxywhirl from PyPI
# with pip. The shared-tier tests (tests/fleet*.rs, tests/tier_contract.rs) start their own
# redis-server processes and clusters; with PWCACHE_REQUIRE_REDIS=1 they fail instead of skipping when it is
# missing, so CI never skips them.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for tool in cmake pkg-config valgrind; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
# The SQLite tiers link the system SQLite (docs/sqlite.md): its headers and pkg-config file.
if ! pkg-config --exists sqlite3 2>/dev/null || [ ! -f /usr/include/sqlite3.h ]; then
  missing+=(libsqlite3-dev)
fi
# The shared tier's tests start real redis-server processes on free loopback ports, make a
# three-master cluster of them with redis-cli, and a throwaway CA for rediss:// with openssl.
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "== installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

export PWCACHE_REQUIRE_REDIS=1

echo "== rustfmt"
cargo fmt --all -- --check
echo "== clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
# Release: the C and Python suites link the release library, and the concurrency and bulk
# tests (8 threads x 50,000 operations, a 100,000-line warm) run in seconds instead of minutes.
echo "== cargo test"
cargo test --workspace --release --locked
echo "== C tests"
scripts/test-c.sh
echo "== Python tests"
scripts/test-python.sh
# After the C and Python suites: it installs from build/ and runs on .venv's wheel.
echo "== README snippets"
scripts/test-readme.sh
echo "== all suites passed"

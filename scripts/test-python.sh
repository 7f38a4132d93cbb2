#!/bin/sh
# Builds libpwcache (release) and runs the Python wrapper's tests in a virtualenv (.venv).
set -eu
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check pytest
cargo build --release -p pwcache --lib
target="${CARGO_TARGET_DIR:-target}"
PWCACHE_LIB="${PWCACHE_LIB:-$target/release/libpwcache.so}" exec .venv/bin/python -m pytest -q tests/python "$@"

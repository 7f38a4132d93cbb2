#!/bin/sh
# The Python package's tests, against the installed wheel (docs/python.md):
#   1. builds the wheel as `pip install .` does (maturin, release, in <target>, where <target> is
#      $CARGO_TARGET_DIR or target/, so the crate's dependencies compiled by `cargo test` are
#      reused) into dist/;
#   2. installs it into a fresh virtualenv, .venv, with pytest, and runs tests/python from a
#      directory outside the repository, without PWCACHE_LIB and with PWCACHE_TEST_INSTALLED=1:
#      `import pwcache` is the installed package, loading its bundled library;
#   3. runs the drop-in's tests again in .venv-proxywhirl, with proxywhirl 0.3.3 from PyPI
#      (created once, then reused; the fresh wheel is reinstalled into it). Set
#      PWCACHE_TEST_PROXYWHIRL=0 to skip this run.
# Arguments are passed to both pytest runs.
set -eu
cd "$(dirname "$0")/.."
repo=$(pwd)
pip_quiet="--quiet --disable-pip-version-check"

echo "== building the wheel"
rm -rf dist
python3 -m pip wheel $pip_quiet --no-deps --wheel-dir dist .
wheel=$(ls dist/pwcache-*.whl)
echo "$wheel ($(du -k "$wheel" | cut -f1) KiB)"

echo "== installing it into a fresh .venv"
rm -rf .venv
python3 -m venv .venv
.venv/bin/python -m pip install $pip_quiet "$wheel" pytest

outside=$(mktemp -d)
trap 'rm -rf "$outside"' EXIT
cd "$outside"

echo "== tests/python on the installed package"
env -u PWCACHE_LIB PWCACHE_TEST_INSTALLED=1 \
  "$repo/.venv/bin/python" -m pytest -q -p no:cacheprovider "$repo/tests/python" "$@"

if [ "${PWCACHE_TEST_PROXYWHIRL:-1}" != "0" ]; then
  echo "== the drop-in beside proxywhirl 0.3.3"
  venv="$repo/.venv-proxywhirl"
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import proxywhirl.cache" 2>/dev/null; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install $pip_quiet "proxywhirl==0.3.3" pytest
  fi
  "$venv/bin/python" -m pip install $pip_quiet --force-reinstall --no-deps "$repo/$wheel"
  # proxywhirl's pydantic models warn about deprecated pydantic features on import.
  env -u PWCACHE_LIB PWCACHE_TEST_INSTALLED=1 \
    "$venv/bin/python" -m pytest -q -p no:cacheprovider -W ignore::DeprecationWarning \
    "$repo/tests/python/test_dropin.py" "$repo/tests/python/test_installed.py" "$@"
fi

"""The installed wheel: the package comes from site-packages, the library from inside it, and the
process has one SQLite, the system's (the wheel bundles none).

scripts/test-python.sh builds the wheel, installs it into a fresh virtualenv and runs this
suite from outside the repository with PWCACHE_TEST_INSTALLED=1 and no PWCACHE_LIB.
"""

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import pwcache
from pwcache import _lib

pytestmark = pytest.mark.skipif(
    os.environ.get("PWCACHE_TEST_INSTALLED") != "1",
    reason="checks the installed wheel: run scripts/test-python.sh",
)

PACKAGE = Path(pwcache.__file__).resolve().parent


def test_the_package_is_the_installed_one():
    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    assert PACKAGE.parent == site, f"pwcache imported from {PACKAGE}, not from {site}"
    assert "PWCACHE_LIB" not in os.environ
    assert (PACKAGE / "py.typed").is_file()
    assert (PACKAGE / "proxywhirl" / "__init__.py").is_file()


def test_the_library_is_the_bundled_one():
    assert Path(_lib.path).resolve() == _lib.BUNDLED.resolve()
    assert _lib.BUNDLED.is_relative_to(PACKAGE)
    assert pwcache.version().count(".") == 2


def test_a_fresh_interpreter_imports_it_from_anywhere(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PWCACHE_LIB", "PYTHONPATH")}
    out = subprocess.run(
        [sys.executable, "-c", "import pwcache; print(pwcache.version(), pwcache.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out[0] == pwcache.version()
    assert Path(out[1]).resolve().parent == PACKAGE


def test_the_wheel_bundles_no_sqlite_and_the_process_maps_one():
    bundled = [p.name for p in PACKAGE.rglob("*") if "sqlite" in p.name.lower()]
    assert bundled == [], f"the wheel carries a SQLite: {bundled}"
    # The library is loaded: every SQLite mapped into this process is the same file.
    maps = Path("/proc/self/maps").read_text().splitlines()
    sqlite = {line.split()[-1] for line in maps if "libsqlite3" in line}
    assert len(sqlite) == 1, f"SQLite libraries mapped: {sorted(sqlite)}"
    assert not any(path.startswith(str(PACKAGE)) for path in sqlite)
    # And the library takes SQLite from outside: its SQLite calls are undefined symbols, to be
    # resolved by the system's libsqlite3 (a SQLite compiled in would leave none).
    symbols = subprocess.run(
        ["nm", "-D", "--undefined-only", str(_lib.BUNDLED)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "sqlite3_open_v2" in symbols


def test_the_cffi_declarations_maturin_ships_work_with_cffi():
    pytest.importorskip("cffi")
    from pwcache._native import ffi, lib

    assert ffi.string(lib.pw_version()).decode() == pwcache.version()

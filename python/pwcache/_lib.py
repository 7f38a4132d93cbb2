"""Loading libpwcache and declaring its C functions (argtypes, restype, errcheck)."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from pathlib import Path

from . import _errors

_PACKAGE = Path(__file__).resolve().parent
# The repository this package sits in when it is imported from a clone (python/pwcache), for
# the build tree; None when it is installed.
_REPO = _PACKAGE.parents[1] if (_PACKAGE.parents[1] / "Cargo.toml").is_file() else None
# Where the wheel puts the library (pyproject.toml: maturin's module `pwcache._native`).
BUNDLED = _PACKAGE / "_native" / "lib_native.so"


def _candidates() -> list[str]:
    """Where the library is looked for, in order (docs/python.md):

    1. $PWCACHE_LIB, alone: an explicit choice is never second-guessed;
    2. the library bundled in the installed wheel;
    3. the build tree, when the package is imported from a clone: $CARGO_TARGET_DIR or
       target/ (release, then debug), then build/lib (CMake);
    4. the system's library search path (`libpwcache.so`).
    """
    env = os.environ.get("PWCACHE_LIB")
    if env:
        return [env]
    found = [str(BUNDLED)]
    if _REPO is not None:
        targets = [os.environ.get("CARGO_TARGET_DIR"), str(_REPO / "target")]
        for target in filter(None, targets):
            for profile in ("release", "debug"):
                found.append(str(Path(target) / profile / "libpwcache.so"))
        found.append(str(_REPO / "build" / "lib" / "libpwcache.so"))
    system = ctypes.util.find_library("pwcache")
    if system:
        found.append(system)
    return found


def load() -> ctypes.CDLL:
    """The first candidate that loads; OSError naming every path tried when none does."""
    tried: list[str] = []
    for path in _candidates():
        if os.sep in path and not Path(path).exists():
            tried.append(path)
            continue
        try:
            return ctypes.CDLL(path)
        except OSError as e:
            tried.append(f"{path} ({e})")
    raise OSError(
        "libpwcache not found; install the wheel (pip install .), set PWCACHE_LIB or run "
        "`cargo build --release`. Tried: "
        + ", ".join(tried)
    )


lib = load()
#: The file the library was loaded from (a bare name when the system's search path found it).
path: str = lib._name

c_char_pp = ctypes.POINTER(ctypes.c_void_p)  # char ** whose result we free ourselves
LOG_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint, ctypes.c_char_p)


def _check(status: int, func: object, args: tuple) -> tuple:
    if status != 0:
        message = lib.pw_last_error().decode("utf-8", "replace")
        raise _errors.from_status(status, message)
    return args


def _declare(name: str, argtypes: list, restype: object = ctypes.c_int, checked: bool = True):
    fn = getattr(lib, name)
    fn.argtypes = argtypes
    fn.restype = restype
    if checked:
        fn.errcheck = _check
    return fn


_p = ctypes.c_void_p
_s = ctypes.c_char_p
pw_version = _declare("pw_version", [], _s, checked=False)
pw_last_error = _declare("pw_last_error", [], _s, checked=False)
pw_string_free = _declare("pw_string_free", [_p], None, checked=False)
pw_cache_new = _declare("pw_cache_new", [_s, ctypes.POINTER(_p)])
pw_cache_free = _declare("pw_cache_free", [_p], None, checked=False)
pw_cache_put = _declare("pw_cache_put", [_p, _s, _s])
pw_cache_put_many = _declare("pw_cache_put_many", [_p, _s, ctypes.POINTER(ctypes.c_uint64)])
pw_cache_get = _declare("pw_cache_get", [_p, _s, c_char_pp])
pw_cache_delete = _declare("pw_cache_delete", [_p, _s])
pw_cache_clear = _declare("pw_cache_clear", [_p, ctypes.POINTER(ctypes.c_uint64)])
pw_cache_invalidate_by_health = _declare(
    "pw_cache_invalidate_by_health", [_p, _s, ctypes.POINTER(ctypes.c_bool)]
)
pw_cache_get_statistics = _declare("pw_cache_get_statistics", [_p, c_char_pp])
pw_cache_warm_from_file = _declare(
    "pw_cache_warm_from_file", [_p, _s, ctypes.c_int64, c_char_pp]
)
pw_cache_export_to_file = _declare("pw_cache_export_to_file", [_p, _s, _s, c_char_pp])
pw_cache_cleanup_expired = _declare(
    "pw_cache_cleanup_expired", [_p, ctypes.POINTER(ctypes.c_uint64)]
)
pw_generate_cache_key = _declare("pw_generate_cache_key", [_s, c_char_pp])
pw_ttl_new = _declare("pw_ttl_new", [_p, ctypes.c_double, ctypes.POINTER(_p)])
pw_ttl_start = _declare("pw_ttl_start", [_p])
pw_ttl_stop = _declare("pw_ttl_stop", [_p])
pw_ttl_is_running = _declare("pw_ttl_is_running", [_p], ctypes.c_bool, checked=False)
pw_ttl_free = _declare("pw_ttl_free", [_p], None, checked=False)
pw_set_logger = _declare("pw_set_logger", [LOG_FN, _p, ctypes.c_uint])
_t = ctypes.c_uint  # pw_tier
pw_cache_tier_enabled = _declare("pw_cache_tier_enabled", [_p, _t, ctypes.POINTER(ctypes.c_bool)])
pw_cache_tier_get = _declare("pw_cache_tier_get", [_p, _t, _s, c_char_pp])
pw_cache_tier_put = _declare("pw_cache_tier_put", [_p, _t, _s, _s])
pw_cache_tier_delete = _declare("pw_cache_tier_delete", [_p, _t, _s])
pw_cache_tier_size = _declare("pw_cache_tier_size", [_p, _t, ctypes.POINTER(ctypes.c_uint64)])
pw_cache_tier_clear = _declare("pw_cache_tier_clear", [_p, _t, ctypes.POINTER(ctypes.c_uint64)])


def take_string(ptr: ctypes.c_void_p) -> str:
    """The text of a string the library returned, which is then freed with pw_string_free."""
    if not ptr.value:
        raise RuntimeError("the library returned NULL with PW_OK")
    try:
        return ctypes.string_at(ptr.value).decode("utf-8")
    finally:
        pw_string_free(ptr)

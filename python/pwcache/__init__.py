"""pwcache: a multi-tier proxy cache (memory, JSONL/SQLite, SQLite), through its C library.

    import pwcache
    with pwcache.Cache({"l2_cache_dir": "cache/l2", "l3_database_path": "cache/l3.db"}) as cache:
        key = pwcache.generate_cache_key("http://10.0.0.1:8080")
        cache.put(key, {"proxy_url": "http://10.0.0.1:8080"})
        entry = cache.get(key)      # a dict, or None on a miss

`pip install .` from a clone installs the package with the library bundled. The library is
found through $PWCACHE_LIB, then the bundled copy, then (imported from a clone) the build tree
(target/release, target/debug, build/lib), then the system (docs/python.md). Its log messages
go to the `logging` logger "pwcache".

`pwcache.proxywhirl` is a drop-in for proxywhirl's cache (`CacheManager`, `TTLManager`, ...).
"""

from __future__ import annotations

import atexit
import ctypes
import json
import logging
import os
import threading
from enum import IntEnum
from typing import Any, Optional, TypeVar, Union

from . import _lib
from ._errors import (
    CryptoError,
    Error,
    InvalidArgument,
    InvalidInput,
    InvalidJson,
    NotFound,
    Panic,
    PwIOError,
    StorageError,
    Unsupported,
)

__all__ = [
    "Cache",
    "Tier",
    "TTLManager",
    "generate_cache_key",
    "version",
    "Error",
    "NotFound",
    "InvalidArgument",
    "InvalidJson",
    "InvalidInput",
    "PwIOError",
    "StorageError",
    "Unsupported",
    "CryptoError",
    "Panic",
]

logger = logging.getLogger("pwcache")

_LEVELS = {1: logging.ERROR, 2: logging.WARNING, 3: logging.INFO, 4: logging.DEBUG, 5: logging.DEBUG}


@_lib.LOG_FN
def _on_log(_user_data: Optional[int], level: int, message: bytes) -> None:
    # Called from any thread, the library's sweeper included; never let an exception escape.
    try:
        logger.log(_LEVELS.get(level, logging.DEBUG), "%s", message.decode("utf-8", "replace"))
    except Exception:  # pragma: no cover
        pass


def _install_logger() -> None:
    # DEBUG and above are forwarded; the logging module filters further. At exit the callback
    # is removed first, so a sweeper thread never calls into a finalising interpreter.
    _lib.pw_set_logger(_on_log, None, 4)
    atexit.register(_lib.pw_set_logger, _lib.LOG_FN(), None, 0)


_install_logger()


def version() -> str:
    """The version of the loaded library."""
    return _lib.pw_version().decode()


class Tier(IntEnum):
    """One tier of a cache, for the `Cache.tier_*` methods (C: `pw_tier`)."""

    L1 = 1
    L2 = 2
    L3 = 3


PathLike = Union[str, "os.PathLike[str]"]


def _text(value: PathLike, what: str) -> bytes:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    return value.encode("utf-8", "surrogatepass")


def generate_cache_key(proxy_url: str) -> str:
    """The cache key of a URL: the first 16 hex characters of its SHA-256."""
    out = ctypes.c_void_p()
    _lib.pw_generate_cache_key(_text(proxy_url, "proxy_url"), ctypes.byref(out))
    return _lib.take_string(out)


_H = TypeVar("_H", bound="_Handle")


class _Handle:
    """A library handle owned by a Python object: freed once, by `close()`, the end of a `with`
    block, or garbage collection, whichever comes first."""

    _what = "handle"

    def __init__(self, handle: int | None) -> None:
        self._handle: int | None = handle
        self._lock = threading.Lock()

    @staticmethod
    def _free(handle: int) -> None:
        raise NotImplementedError

    def close(self) -> None:
        with self._lock:
            handle, self._handle = self._handle, None
        if handle:
            self._free(handle)

    def __enter__(self: _H) -> _H:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    @property
    def closed(self) -> bool:
        return self._handle is None

    def _h(self) -> int:
        handle = self._handle
        if handle is None:
            raise InvalidArgument(f"the {self._what} is closed")
        return handle


class Cache(_Handle):
    """A cache handle (`pw_cache`). Thread-safe; close it (or use `with`) to write back access
    counters and release it."""

    _what = "cache"

    @staticmethod
    def _free(handle: int) -> None:
        _lib.pw_cache_free(handle)

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        text = None if config is None else json.dumps(config).encode()
        handle = ctypes.c_void_p()
        _lib.pw_cache_new(text, ctypes.byref(handle))
        super().__init__(handle.value)

    # -- operations
    def put(self, key: str, entry: dict[str, Any]) -> None:
        _lib.pw_cache_put(self._h(), _text(key, "key"), json.dumps(entry).encode())

    def put_many(self, entries: list[dict[str, Any]]) -> int:
        """Stores many entries in one batch per tier; each dict has its "key". Every entry is
        validated first: if one is invalid (InvalidJson naming its index), nothing is stored.
        Returns the number stored."""
        if not isinstance(entries, (list, tuple)):
            raise TypeError(f"entries must be a list of dicts, not {type(entries).__name__}")
        stored = ctypes.c_uint64()
        _lib.pw_cache_put_many(self._h(), json.dumps(list(entries)).encode(), ctypes.byref(stored))
        return stored.value

    def get(self, key: str) -> dict[str, Any] | None:
        out = ctypes.c_void_p()
        try:
            _lib.pw_cache_get(self._h(), _text(key, "key"), ctypes.byref(out))
        except NotFound:
            return None
        return json.loads(_lib.take_string(out))

    def delete(self, key: str) -> None:
        """Removes `key` from every tier; raises NotFound when absent."""
        _lib.pw_cache_delete(self._h(), _text(key, "key"))

    def clear(self) -> int:
        n = ctypes.c_uint64()
        _lib.pw_cache_clear(self._h(), ctypes.byref(n))
        return n.value

    def invalidate_by_health(self, key: str) -> bool:
        """Records a failed health check; True when it evicted the key. NotFound if absent."""
        evicted = ctypes.c_bool()
        _lib.pw_cache_invalidate_by_health(self._h(), _text(key, "key"), ctypes.byref(evicted))
        return evicted.value

    def statistics(self) -> dict[str, Any]:
        """The C statistics JSON as a dict: `l1_stats`, `l2_stats`, `l3_stats` and
        `shared_stats` (each with hits, misses, current_size, the evictions by reason),
        `promotions`, `demotions`, `overall_hit_rate`, `total_size`, and the `l1_degraded`,
        `l2_degraded`, `l3_degraded` and `shared_degraded` flags. Reading them writes nothing."""
        out = ctypes.c_void_p()
        _lib.pw_cache_get_statistics(self._h(), ctypes.byref(out))
        return json.loads(_lib.take_string(out))

    def warm_from_file(self, path: PathLike, ttl_override: Optional[int] = None) -> dict[str, Any]:
        """Loads proxies from a `.json`, `.jsonl` or `.csv` file. Returns `{"loaded": n,
        "skipped": n, "failed": n, "problems": [{"line": n, "outcome": "skipped" | "failed",
        "reason": str}, ...], "problems_not_listed": n}`: the first 20 rows left out, with their
        line (`"item"` in a `.json` array) and reason; every one is also logged as a warning on
        the "pwcache" logger. InvalidJson for a `.json` that is not an array, InvalidInput for a
        `.csv` with no header row or no `proxy_url` column."""
        out = ctypes.c_void_p()
        ttl = -1 if ttl_override is None else int(ttl_override)
        if ttl_override is not None and ttl < 0:
            raise InvalidArgument("ttl_override must be >= 0 or None")
        _lib.pw_cache_warm_from_file(self._h(), _text(path, "path"), ttl, ctypes.byref(out))
        return json.loads(_lib.take_string(out))

    def export_to_file(self, path: PathLike, include_credentials: bool = False) -> dict[str, int]:
        out = ctypes.c_void_p()
        options = json.dumps({"include_credentials": bool(include_credentials)}).encode()
        _lib.pw_cache_export_to_file(self._h(), _text(path, "path"), options, ctypes.byref(out))
        return json.loads(_lib.take_string(out))

    def cleanup_expired(self) -> int:
        n = ctypes.c_uint64()
        _lib.pw_cache_cleanup_expired(self._h(), ctypes.byref(n))
        return n.value

    # -- one tier alone: no promotion, no write-through, no read counted
    def tier_enabled(self, tier: Tier) -> bool:
        """Whether `tier` is enabled in the configuration and (L2, L3) not degraded."""
        enabled = ctypes.c_bool()
        _lib.pw_cache_tier_enabled(self._h(), _tier(tier), ctypes.byref(enabled))
        return enabled.value

    def tier_get(self, tier: Tier, key: str) -> Optional[dict[str, Any]]:
        """The entry `tier` stores under `key`, expired or not, without counting a read; None
        when it stores none. Unsupported for a tier the configuration disables."""
        out = ctypes.c_void_p()
        try:
            _lib.pw_cache_tier_get(self._h(), _tier(tier), _text(key, "key"), ctypes.byref(out))
        except NotFound:
            return None
        return json.loads(_lib.take_string(out))

    def tier_put(self, tier: Tier, key: str, entry: dict[str, Any]) -> None:
        """Stores an entry in `tier` only (a full L1 still evicts, and writes its victims back)."""
        entry_json = json.dumps(entry).encode()
        _lib.pw_cache_tier_put(self._h(), _tier(tier), _text(key, "key"), entry_json)

    def tier_delete(self, tier: Tier, key: str) -> None:
        """Removes `key` from `tier` only; raises NotFound when the tier does not hold it."""
        _lib.pw_cache_tier_delete(self._h(), _tier(tier), _text(key, "key"))

    def tier_size(self, tier: Tier) -> int:
        n = ctypes.c_uint64()
        _lib.pw_cache_tier_size(self._h(), _tier(tier), ctypes.byref(n))
        return n.value

    def tier_clear(self, tier: Tier) -> int:
        """Empties `tier` only; returns how many entries it held."""
        n = ctypes.c_uint64()
        _lib.pw_cache_tier_clear(self._h(), _tier(tier), ctypes.byref(n))
        return n.value


def _tier(tier: Tier) -> int:
    if isinstance(tier, bool) or not isinstance(tier, int):
        raise TypeError(f"tier must be a pwcache.Tier, not {type(tier).__name__}")
    return int(tier)


class TTLManager(_Handle):
    """A background sweeper of expired entries (`pw_ttl`), created stopped. It may outlive the
    Cache it was made from."""

    _what = "TTL manager"

    @staticmethod
    def _free(handle: int) -> None:
        _lib.pw_ttl_free(handle)

    def __init__(self, cache: Cache, interval: float) -> None:
        handle = ctypes.c_void_p()
        _lib.pw_ttl_new(cache._h(), float(interval), ctypes.byref(handle))
        super().__init__(handle.value)

    def start(self) -> None:
        _lib.pw_ttl_start(self._h())

    def stop(self) -> None:
        _lib.pw_ttl_stop(self._h())

    def is_running(self) -> bool:
        handle = self._handle
        return bool(handle) and _lib.pw_ttl_is_running(handle)


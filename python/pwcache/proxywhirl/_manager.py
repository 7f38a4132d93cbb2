"""`CacheManager` and `TTLManager` with proxywhirl 0.3.3's API, over a `pwcache.Cache`.

Every method keeps upstream's signature, return type and exceptions, except where
docs/differences-from-proxywhirl.md says otherwise (its "Python drop-in" section).
"""

from __future__ import annotations

import logging
import os
from typing import Any, Optional, Union

from .. import (
    Cache,
    CryptoError,
    InvalidInput,
    InvalidJson,
    NotFound,
    PwIOError,
    StorageError,
    Tier,
    Unsupported,
    generate_cache_key,
)
from .. import TTLManager as _Sweeper
from . import _convert

__all__ = ["CacheManager", "TTLManager", "TierView"]

logger = logging.getLogger("pwcache.proxywhirl")


class TierView:
    """One tier of a manager (`l1_tier`, `l2_tier`, `l3_tier`): its operations act on that tier
    alone, without promotion, write-through or counting a read.

    A tier disabled in the configuration stores nothing: `get` returns None, `put` and `delete`
    False, `size` and `clear` 0. A degraded or unreadable tier raises `pwcache.StorageError`
    (or `pwcache.CryptoError` for a credential the key cannot decrypt)."""

    def __init__(self, cache: Cache, tier: Tier, config: Any) -> None:
        self._cache = cache  # not the manager: no reference cycle keeps a manager alive
        self._tier = tier
        #: The tier's `CacheTierConfig`, as given in the manager's configuration.
        self.config = config

    @property
    def enabled(self) -> bool:
        """Enabled in the configuration and (L2, L3) not degraded."""
        return self._cache.tier_enabled(self._tier)

    def get(self, key: str) -> Optional[Any]:
        """The entry this tier stores under `key` (expired or not), or None."""
        try:
            data = self._cache.tier_get(self._tier, key)
        except Unsupported:
            return None
        return None if data is None else _convert.entry_from_json(data)

    def put(self, key: str, entry: Any) -> bool:
        """Stores `entry` under `key` in this tier only; False when the tier could not."""
        try:
            self._cache.tier_put(self._tier, key, _convert.entry_json(entry))
        except (Unsupported, StorageError):
            return False
        return True

    def delete(self, key: str) -> bool:
        """Removes `key` from this tier only; True when it held it."""
        try:
            self._cache.tier_delete(self._tier, key)
        except (NotFound, Unsupported):
            return False
        return True

    def size(self) -> int:
        try:
            return self._cache.tier_size(self._tier)
        except Unsupported:
            return 0

    def clear(self) -> int:
        """Empties this tier only; returns how many entries it held."""
        try:
            return self._cache.tier_clear(self._tier)
        except Unsupported:
            return 0

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None

    def __repr__(self) -> str:
        return f"<pwcache tier view {self._tier.name}>"


class CacheManager:
    """proxywhirl's `CacheManager(config)`: L1 memory, L2 JSONL or SQLite, L3 SQLite, with
    promotion, write-through, TTL and health invalidation, all done by pwcache.

    Call `close()` (or use `with`) to write L1's access counters to L2/L3 at once; otherwise
    they are written when the manager is garbage-collected."""

    def __init__(self, config: Any) -> None:
        #: The configuration object, as given (proxywhirl's or the drop-in's `CacheConfig`).
        self.config = config
        try:
            self._cache = Cache(_convert.config_json(config, background_cleanup=False))
        except CryptoError as e:  # upstream: an invalid Fernet key is a ValueError
            raise ValueError(str(e)) from e
        self.l1_tier = TierView(self._cache, Tier.L1, config.l1_config)
        self.l2_tier = TierView(self._cache, Tier.L2, config.l2_config)
        self.l3_tier = TierView(self._cache, Tier.L3, config.l3_config)
        #: The background sweeper when `enable_background_cleanup` is set, else None.
        self.ttl_manager: Optional[TTLManager] = None
        if config.enable_background_cleanup:
            self.ttl_manager = TTLManager(self, cleanup_interval=config.cleanup_interval_seconds)
            self.ttl_manager.start()

    # -- the cache
    def get(self, key: str) -> Optional[Any]:
        """The entry under `key` (L1, then L2, then L3, promoting a lower hit), counted as read;
        None on a miss or an expired entry."""
        data = self._cache.get(key)
        return None if data is None else _convert.entry_from_json(data)

    def put(self, key: str, entry: Any) -> bool:
        """Stores `entry` under `key` in every enabled tier; False when none could."""
        try:
            self._cache.put(key, _convert.entry_json(entry))
        except StorageError:
            return False
        return True

    def delete(self, key: str) -> bool:
        """Removes `key` from every tier; True when one held it."""
        try:
            self._cache.delete(key)
        except NotFound:
            return False
        return True

    def clear(self) -> int:
        """Empties every tier; returns the number of distinct entries removed."""
        return self._cache.clear()

    def invalidate_by_health(self, key: str) -> None:
        """Records a failed health check: the entry is marked unhealthy, and removed from every
        tier once `failure_threshold` failures are reached. An absent key is ignored."""
        try:
            self._cache.invalidate_by_health(key)
        except NotFound:
            logger.debug("health invalidation of an absent or expired key")

    def get_statistics(self) -> Any:
        """The statistics now (sizes counted at the call)."""
        return _convert.statistics_from_json(self._cache.statistics())

    @property
    def statistics(self) -> Any:
        """The statistics now: `manager.statistics.l1_stats.hits` reads the current count."""
        return self.get_statistics()

    def export_to_file(self, filepath: Union[str, "os.PathLike[str]"]) -> dict[str, int]:
        """Writes every live entry to a JSONL file; credentials are masked."""
        return self._cache.export_to_file(filepath)

    def warm_from_file(
        self, file_path: Union[str, "os.PathLike[str]"], ttl_override: Optional[int] = None
    ) -> dict[str, int]:
        """Loads proxies from a `.json`, `.jsonl` or `.csv` file. As upstream, a file that
        cannot be loaded at all (missing, unreadable, another extension, a `.json` that is not
        an array, a `.csv` with no `proxy_url` column) returns `{"loaded": 0, "skipped": 0, "failed": 1}`, and the reason is logged."""
        try:
            report = self._cache.warm_from_file(file_path, ttl_override)
            # Upstream's shape; the rows left out were logged, each with its line and reason.
            return {name: report[name] for name in ("loaded", "skipped", "failed")}
        except (PwIOError, Unsupported, InvalidJson, InvalidInput) as e:
            logger.warning("cache warming: %s", e)
            return {"loaded": 0, "skipped": 0, "failed": 1}

    @staticmethod
    def generate_cache_key(proxy_url: str) -> str:
        """The first 16 hex characters of the SHA-256 of the URL."""
        return generate_cache_key(proxy_url)

    # -- lifetime (not in upstream, which has no way to release a manager)
    def close(self) -> None:
        """Stops the background sweeper and writes L1's access counters to L2/L3."""
        if self.ttl_manager is not None:
            self.ttl_manager.stop()
        self._cache.close()

    def __enter__(self) -> "CacheManager":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        ttl = getattr(self, "ttl_manager", None)
        if ttl is not None:
            ttl.stop()


class TTLManager:
    """proxywhirl's `TTLManager(cache_manager, cleanup_interval=60)`: a background thread that
    removes expired entries from every tier, now and then every `cleanup_interval` seconds
    (fractions allowed; it must be > 0). Created stopped; `enabled` tells whether it runs."""

    def __init__(self, cache_manager: CacheManager, cleanup_interval: float = 60) -> None:
        if not isinstance(cache_manager, CacheManager):
            raise TypeError(
                "TTLManager needs a pwcache.proxywhirl.CacheManager, "
                f"not {type(cache_manager).__name__}"
            )
        self.cache_manager = cache_manager
        self.cleanup_interval = cleanup_interval
        self._sweeper = _Sweeper(cache_manager._cache, cleanup_interval)

    @property
    def enabled(self) -> bool:
        return self._sweeper.is_running()

    def start(self) -> None:
        self._sweeper.start()

    def stop(self) -> None:
        if not self._sweeper.closed:
            self._sweeper.stop()

"""A drop-in for the cache of proxywhirl 0.3.3 (`proxywhirl.cache`), backed by pwcache.

Switch by changing one import::

    from pwcache.proxywhirl import CacheManager, CacheConfig, CacheEntry   # was proxywhirl.cache

or, to make proxywhirl's own code use pwcache too, once at start-up::

    import pwcache.proxywhirl
    pwcache.proxywhirl.install()    # proxywhirl.cache.CacheManager is now pwcache's

With proxywhirl installed, the model classes (`CacheConfig`, `CacheEntry`, `CacheStatistics`,
...) are proxywhirl's own, so code typed against proxywhirl keeps working; without it, this
package provides equivalents and needs neither proxywhirl nor pydantic. `UPSTREAM` tells which.
What behaves differently from proxywhirl is listed in docs/differences-from-proxywhirl.md.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from ._convert import (
    UPSTREAM,
    CacheConfig,
    CacheEntry,
    CacheStatistics,
    CacheTierConfig,
    CacheTierType,
    HealthStatus,
    L2BackendType,
    TierStatistics,
)
from ._manager import CacheManager, TierView, TTLManager

__all__ = [
    "CacheManager",
    "TTLManager",
    "TierView",
    "CacheConfig",
    "CacheTierConfig",
    "CacheEntry",
    "CacheStatistics",
    "TierStatistics",
    "HealthStatus",
    "L2BackendType",
    "CacheTierType",
    "UPSTREAM",
    "install",
    "uninstall",
]

# (module, attribute, value it had) for every attribute install() replaced.
_replaced: list[tuple[ModuleType, str, Any]] = []


def _targets() -> list[tuple[ModuleType, str, Any]]:
    """Where proxywhirl binds its manager classes: its cache module, the package that re-exports
    it, and the top-level package."""
    import proxywhirl
    import proxywhirl.cache
    import proxywhirl.cache.manager

    targets = []
    for module in (proxywhirl.cache.manager, proxywhirl.cache, proxywhirl):
        for name, ours in (("CacheManager", CacheManager), ("TTLManager", TTLManager)):
            if hasattr(module, name):
                targets.append((module, name, ours))
    return targets


def install() -> None:
    """Makes proxywhirl use pwcache: `proxywhirl.cache.CacheManager` (and the same name in
    `proxywhirl.cache.manager` and `proxywhirl`) and `proxywhirl.cache.manager.TTLManager`
    become this package's. Code that looks them up after the call (`from proxywhirl.cache import
    CacheManager`, proxywhirl's own modules) gets pwcache's. Calling it again does nothing.

    Raises ImportError when proxywhirl is not installed."""
    if _replaced:
        return
    for module, name, ours in _targets():
        _replaced.append((module, name, getattr(module, name)))
        setattr(module, name, ours)


def uninstall() -> None:
    """Puts back what install() replaced."""
    while _replaced:
        module, name, original = _replaced.pop()
        setattr(module, name, original)

"""Between proxywhirl's model objects and pwcache's JSON.

The models in use are proxywhirl's own when proxywhirl is importable (so `isinstance` checks and
type hints written against proxywhirl keep holding), else the equivalents in `_models`. Reading a
model goes by attribute, so either kind of object is accepted whichever is in use.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

try:  # proxywhirl installed: its classes are the ones returned
    from proxywhirl.cache import models as _in_use

    UPSTREAM = True
except ImportError:
    from . import _models as _in_use

    UPSTREAM = False

CacheEntry = _in_use.CacheEntry
CacheConfig = _in_use.CacheConfig
CacheTierConfig = _in_use.CacheTierConfig
CacheStatistics = _in_use.CacheStatistics
TierStatistics = _in_use.TierStatistics
HealthStatus = _in_use.HealthStatus
L2BackendType = _in_use.L2BackendType
CacheTierType = _in_use.CacheTierType

_TIER_KEYS = ("enabled", "max_entries", "eviction_policy")
# Upstream's configuration fields, in its order; each goes to pwcache under the same name.
_CONFIG_KEYS = (
    "l2_backend", "default_ttl_seconds", "ttl_cleanup_interval", "enable_background_cleanup",
    "cleanup_interval_seconds", "per_source_ttl", "l2_cache_dir", "l3_database_path",
    "encryption_key", "health_check_invalidation", "failure_threshold", "enable_statistics",
    "statistics_interval",
)  # fmt: skip
_ENTRY_KEYS = (
    "proxy_url", "username", "password", "source", "fetch_time", "last_accessed",
    "access_count", "ttl_seconds", "expires_at", "health_status", "failure_count",
    "evicted_from_l1", "last_health_check", "consecutive_health_failures",
    "consecutive_health_successes", "recovery_attempt", "next_check_time",
    "last_health_error", "total_health_checks", "total_health_check_failures",
)  # fmt: skip


def _plain(value: Any) -> Any:
    """A model field as JSON: secrets revealed (pwcache encrypts them at rest), enums as their
    value, datetimes in ISO 8601 (a naive one is taken as UTC by pwcache)."""
    if hasattr(value, "get_secret_value"):
        return value.get_secret_value()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def config_json(config: Any, background_cleanup: bool) -> dict[str, Any]:
    """pwcache's configuration for a proxywhirl `CacheConfig` (either kind). The manager runs
    its own `TTLManager`, so the library's background cleanup is set by `background_cleanup`."""
    out: dict[str, Any] = {}
    for tier in ("l1_config", "l2_config", "l3_config"):
        tier_config = getattr(config, tier)
        out[tier] = {key: _plain(getattr(tier_config, key)) for key in _TIER_KEYS}
    for key in _CONFIG_KEYS:
        out[key] = _plain(getattr(config, key))
    out["per_source_ttl"] = dict(out["per_source_ttl"] or {})
    out["enable_background_cleanup"] = background_cleanup
    return out


def entry_json(entry: Any) -> dict[str, Any]:
    """pwcache's entry input for a proxywhirl `CacheEntry` (either kind); the `key` argument of
    the call that stores it decides its key."""
    return {key: _plain(getattr(entry, key)) for key in _ENTRY_KEYS}


def entry_from_json(data: dict[str, Any]) -> Any:
    """The `CacheEntry` (of the models in use) for an entry pwcache returned."""
    return CacheEntry(**data)


def statistics_from_json(data: dict[str, Any]) -> Any:
    """The `CacheStatistics` (of the models in use) for pwcache's statistics."""
    tiers = {
        name: TierStatistics(**{k: v for k, v in data[name].items() if k in _TIER_STAT_KEYS})
        for name in ("l1_stats", "l2_stats", "l3_stats")
    }
    return CacheStatistics(
        **tiers,
        promotions=data["promotions"],
        demotions=data["demotions"],
        l1_degraded=data["l1_degraded"],
        l2_degraded=data["l2_degraded"],
        l3_degraded=data["l3_degraded"],
    )


# The stored counters of a tier; `hit_rate` and `total_evictions` are computed by the model.
_TIER_STAT_KEYS = (
    "hits", "misses", "current_size", "evictions_lru", "evictions_ttl", "evictions_health",
    "evictions_corruption",
)  # fmt: skip

"""proxywhirl 0.3.3's cache models, for when proxywhirl is not installed: the same names, fields,
defaults, properties and enum values, without pydantic.

They are plain classes with keyword constructors. What pydantic would coerce is coerced the same
way (a `str` credential becomes a `SecretStr`, an ISO-8601 string a `datetime`, a status string
a `HealthStatus`); an unknown keyword is a `TypeError` (pydantic would drop it silently).
"""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Optional, Union

__all__ = [
    "SecretStr",
    "HealthStatus",
    "L2BackendType",
    "CacheTierType",
    "CacheEntry",
    "CacheTierConfig",
    "CacheConfig",
    "TierStatistics",
    "CacheStatistics",
]


class SecretStr:
    """A string kept out of `repr`, `str` and logs; `get_secret_value()` returns it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"SecretStr takes a str, not {type(value).__name__}")
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretStr) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __len__(self) -> int:
        return len(self._value)

    def __str__(self) -> str:
        return "**********" if self._value else ""

    def __repr__(self) -> str:
        return f"SecretStr('{self}')"


class HealthStatus(str, Enum):
    UNKNOWN = "unknown"
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"
    DEAD = "dead"


class L2BackendType(str, Enum):
    JSONL = "jsonl"
    SQLITE = "sqlite"


class CacheTierType(str, Enum):
    L1 = "l1"
    L2 = "l2"
    L3 = "l3"


def _secret(value: Union[SecretStr, str, None], field: str) -> Optional[SecretStr]:
    if value is None or isinstance(value, SecretStr):
        return value
    if hasattr(value, "get_secret_value"):  # pydantic's SecretStr
        return SecretStr(value.get_secret_value())
    if isinstance(value, str):
        return SecretStr(value)
    raise TypeError(f"{field} must be a str or SecretStr, not {type(value).__name__}")


def _datetime(value: Union[datetime, str, None], field: str, required: bool) -> Optional[datetime]:
    if value is None:
        if required:
            raise TypeError(f"{field} is required")
        return None
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    raise TypeError(f"{field} must be a datetime, not {type(value).__name__}")


def _count(value: Any, field: str, minimum: Optional[int]) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{field} must be an int, not {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{field} must be >= {minimum}, got {value}")
    return value


class _Model:
    """What the models share: keyword construction with defaults, equality, copies, dumps."""

    _fields: tuple[str, ...] = ()
    _defaults: dict[str, Any] = {}

    def __init__(self, **values: Any) -> None:
        unknown = set(values) - set(self._fields)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field {', '.join(sorted(unknown))}")
        for name in self._fields:
            if name in values:
                value = values[name]
            elif name in self._defaults:
                value = self._defaults[name]
                value = value() if callable(value) else value  # a factory of a mutable default
            else:
                raise TypeError(f"{type(self).__name__}: field {name} is required")
            object.__setattr__(self, name, value)
        self._check()

    def _check(self) -> None:
        """Coerces and validates the fields (each model its own)."""

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and all(
            getattr(self, f) == getattr(other, f) for f in self._fields
        )

    def __repr__(self) -> str:
        fields = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields)
        return f"{type(self).__name__}({fields})"

    def model_copy(self, update: Optional[dict[str, Any]] = None, deep: bool = False) -> Any:
        values = {f: getattr(self, f) for f in self._fields}
        if deep:
            values = copy.deepcopy(values)
        values.update(update or {})
        return type(self)(**values)

    def model_dump(self, mode: str = "python") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self._fields + tuple(getattr(self, "_computed", ())):
            value = getattr(self, name)
            if isinstance(value, _Model):
                value = value.model_dump(mode=mode)
            elif mode == "json":
                if isinstance(value, SecretStr):
                    value = str(value)
                elif isinstance(value, datetime):
                    value = value.isoformat()
                elif isinstance(value, Enum):
                    value = value.value
            out[name] = value
        return out


class CacheEntry(_Model):
    """One cached proxy: proxywhirl's 21 fields, in its order."""

    _fields = (
        "key", "proxy_url", "username", "password", "source", "fetch_time", "last_accessed",
        "access_count", "ttl_seconds", "expires_at", "health_status", "failure_count",
        "evicted_from_l1", "last_health_check", "consecutive_health_failures",
        "consecutive_health_successes", "recovery_attempt", "next_check_time",
        "last_health_error", "total_health_checks", "total_health_check_failures",
    )  # fmt: skip
    _defaults = {
        "username": None,
        "password": None,
        "access_count": 0,
        "health_status": HealthStatus.UNKNOWN,
        "failure_count": 0,
        "evicted_from_l1": False,
        "last_health_check": None,
        "consecutive_health_failures": 0,
        "consecutive_health_successes": 0,
        "recovery_attempt": 0,
        "next_check_time": None,
        "last_health_error": None,
        "total_health_checks": 0,
        "total_health_check_failures": 0,
    }

    key: str
    proxy_url: str
    username: Optional[SecretStr]
    password: Optional[SecretStr]
    source: str
    fetch_time: datetime
    last_accessed: datetime
    access_count: int
    ttl_seconds: int
    expires_at: datetime
    health_status: HealthStatus
    failure_count: int
    evicted_from_l1: bool
    last_health_check: Optional[datetime]
    consecutive_health_failures: int
    consecutive_health_successes: int
    recovery_attempt: int
    next_check_time: Optional[datetime]
    last_health_error: Optional[str]
    total_health_checks: int
    total_health_check_failures: int

    def _check(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        for name in ("key", "proxy_url", "source"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"{name} must be a str")
        for name in ("username", "password"):
            set_(name, _secret(getattr(self, name), name))
        for name in ("fetch_time", "last_accessed", "expires_at"):
            set_(name, _datetime(getattr(self, name), name, required=True))
        for name in ("last_health_check", "next_check_time"):
            set_(name, _datetime(getattr(self, name), name, required=False))
        set_("access_count", _count(self.access_count, "access_count", None))
        for name in (
            "ttl_seconds", "failure_count", "consecutive_health_failures",
            "consecutive_health_successes", "recovery_attempt", "total_health_checks",
            "total_health_check_failures",
        ):  # fmt: skip
            set_(name, _count(getattr(self, name), name, 0))
        set_("health_status", HealthStatus(self.health_status))
        set_("evicted_from_l1", bool(self.evicted_from_l1))

    @property
    def is_expired(self) -> bool:
        return datetime.now(timezone.utc) >= self.expires_at

    @property
    def is_healthy(self) -> bool:
        return self.health_status == HealthStatus.HEALTHY


EVICTION_POLICIES = ("lru", "lfu", "fifo")


class CacheTierConfig(_Model):
    _fields = ("enabled", "max_entries", "eviction_policy")
    _defaults = {"enabled": True, "max_entries": None, "eviction_policy": "lru"}

    enabled: bool
    max_entries: Optional[int]
    eviction_policy: str

    def _check(self) -> None:
        if self.eviction_policy not in EVICTION_POLICIES:
            raise ValueError(
                f"Invalid eviction policy: {self.eviction_policy}. "
                f"Must be one of {list(EVICTION_POLICIES)}"
            )


class CacheConfig(_Model):
    _fields = (
        "l1_config", "l2_config", "l2_backend", "l3_config", "default_ttl_seconds",
        "ttl_cleanup_interval", "enable_background_cleanup", "cleanup_interval_seconds",
        "per_source_ttl", "l2_cache_dir", "l3_database_path", "encryption_key",
        "health_check_invalidation", "failure_threshold", "enable_statistics",
        "statistics_interval",
    )  # fmt: skip
    _defaults = {
        "l1_config": lambda: CacheTierConfig(max_entries=1000),
        "l2_config": lambda: CacheTierConfig(max_entries=5000),
        "l2_backend": L2BackendType.JSONL,
        "l3_config": lambda: CacheTierConfig(max_entries=None),
        "default_ttl_seconds": 3600,
        "ttl_cleanup_interval": 60,
        "enable_background_cleanup": False,
        "cleanup_interval_seconds": 60,
        "per_source_ttl": lambda: {},
        "l2_cache_dir": ".cache/proxies",
        "l3_database_path": ".cache/db/proxywhirl.db",
        "encryption_key": None,
        "health_check_invalidation": True,
        "failure_threshold": 3,
        "enable_statistics": True,
        "statistics_interval": 5,
    }

    l1_config: CacheTierConfig
    l2_config: CacheTierConfig
    l2_backend: L2BackendType
    l3_config: CacheTierConfig
    default_ttl_seconds: int
    ttl_cleanup_interval: int
    enable_background_cleanup: bool
    cleanup_interval_seconds: int
    per_source_ttl: dict[str, int]
    l2_cache_dir: str
    l3_database_path: str
    encryption_key: Optional[SecretStr]
    health_check_invalidation: bool
    failure_threshold: int
    enable_statistics: bool
    statistics_interval: int

    def _check(self) -> None:
        object.__setattr__(self, "l2_backend", L2BackendType(self.l2_backend))
        object.__setattr__(self, "encryption_key", _secret(self.encryption_key, "encryption_key"))


class TierStatistics(_Model):
    _fields = (
        "hits", "misses", "current_size", "evictions_lru", "evictions_ttl", "evictions_health",
        "evictions_corruption",
    )  # fmt: skip
    _defaults = dict.fromkeys(_fields, 0)
    _computed = ("hit_rate", "total_evictions")

    hits: int
    misses: int
    current_size: int
    evictions_lru: int
    evictions_ttl: int
    evictions_health: int
    evictions_corruption: int

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total > 0 else 0.0

    @property
    def total_evictions(self) -> int:
        return (
            self.evictions_lru + self.evictions_ttl + self.evictions_health
            + self.evictions_corruption
        )  # fmt: skip


class CacheStatistics(_Model):
    _fields = (
        "l1_stats", "l2_stats", "l3_stats", "promotions", "demotions", "l1_degraded",
        "l2_degraded", "l3_degraded",
    )  # fmt: skip
    _defaults = {
        "l1_stats": lambda: TierStatistics(),
        "l2_stats": lambda: TierStatistics(),
        "l3_stats": lambda: TierStatistics(),
        "promotions": 0,
        "demotions": 0,
        "l1_degraded": False,
        "l2_degraded": False,
        "l3_degraded": False,
    }
    _computed = ("overall_hit_rate", "total_size")

    l1_stats: TierStatistics
    l2_stats: TierStatistics
    l3_stats: TierStatistics
    promotions: int
    demotions: int
    l1_degraded: bool
    l2_degraded: bool
    l3_degraded: bool

    def _check(self) -> None:
        for name in ("l1_stats", "l2_stats", "l3_stats"):
            value = getattr(self, name)
            if isinstance(value, dict):
                object.__setattr__(self, name, TierStatistics(**value))

    @property
    def overall_hit_rate(self) -> float:
        tiers = (self.l1_stats, self.l2_stats, self.l3_stats)
        hits = sum(t.hits for t in tiers)
        requests = hits + max(t.misses for t in tiers)
        return hits / requests if requests > 0 else 0.0

    @property
    def total_size(self) -> int:
        return self.l1_stats.current_size + self.l2_stats.current_size + self.l3_stats.current_size

    def to_metrics_dict(self) -> dict[str, float]:
        return {
            "cache.l1.hit_rate": self.l1_stats.hit_rate,
            "cache.l2.hit_rate": self.l2_stats.hit_rate,
            "cache.l3.hit_rate": self.l3_stats.hit_rate,
            "cache.overall.hit_rate": self.overall_hit_rate,
            "cache.total_size": float(self.total_size),
            "cache.promotions": float(self.promotions),
            "cache.demotions": float(self.demotions),
            "cache.l1.size": float(self.l1_stats.current_size),
            "cache.l2.size": float(self.l2_stats.current_size),
            "cache.l3.size": float(self.l3_stats.current_size),
        }

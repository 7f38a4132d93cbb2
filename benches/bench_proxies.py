"""The proxies the benchmarks against proxywhirl store, the same in both scripts
(benches/compare_proxywhirl.py, benches/dropin_vs_proxywhirl.py): their URLs, keys and
credentials, and proxywhirl's `CacheEntry` for each.

Imported by those scripts from their own folder (Python puts a script's folder first on its
path); not a benchmark itself.
"""

from __future__ import annotations

from datetime import datetime, timedelta


def url(i: int) -> str:
    return f"http://10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}:8080"


def key(i: int) -> str:
    return f"key-{i:06d}"


def proxywhirl_entry(i: int, now: datetime):
    """proxywhirl's `CacheEntry` for proxy `i`, with credentials, fetched at `now`, for an hour."""
    from proxywhirl.cache.models import CacheEntry

    return CacheEntry(
        key=key(i),
        proxy_url=url(i),
        username=f"user{i}",
        password=f"secret{i}",
        source="bench",
        fetch_time=now,
        last_accessed=now,
        ttl_seconds=3600,
        expires_at=now + timedelta(seconds=3600),
    )

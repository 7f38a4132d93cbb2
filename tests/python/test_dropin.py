"""The drop-in for proxywhirl 0.3.3's cache (`pwcache.proxywhirl`), called the way proxywhirl's
users call `proxywhirl.cache`.

scripts/test-python.sh runs this file twice: in a virtualenv without proxywhirl (the drop-in's
own model classes) and in one with proxywhirl 0.3.3 from PyPI (proxywhirl's pydantic models,
and `install()`). The tests marked `needs_proxywhirl` are skipped in the first.
"""

import csv
import json
import shutil
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

import pwcache
import pwcache.proxywhirl as dropin
from pwcache.proxywhirl import (
    CacheConfig,
    CacheEntry,
    CacheManager,
    CacheStatistics,
    CacheTierConfig,
    HealthStatus,
    L2BackendType,
    TTLManager,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "proxywhirl-0.3.3"
KEY = (FIXTURES / "key.txt").read_text().strip()

try:
    import proxywhirl.cache as upstream_cache
    import proxywhirl.cache.manager as upstream_manager
except ImportError:
    upstream_cache = None

needs_proxywhirl = pytest.mark.skipif(
    upstream_cache is None, reason="proxywhirl 0.3.3 is not installed in this virtualenv"
)


def config(tmp_path, **extra):
    return CacheConfig(
        l2_cache_dir=str(tmp_path / "l2"),
        l3_database_path=str(tmp_path / "db" / "proxywhirl.db"),
        encryption_key=KEY,
        **extra,
    )


def entry(key, url, ttl=3600, **extra):
    now = datetime.now(timezone.utc)
    return CacheEntry(
        key=key,
        proxy_url=url,
        source="fetched",
        fetch_time=now,
        last_accessed=now,
        ttl_seconds=ttl,
        expires_at=now + timedelta(seconds=ttl),
        **extra,
    )


@pytest.fixture
def manager(tmp_path):
    with CacheManager(config(tmp_path)) as m:
        yield m


def test_the_models_in_use_are_proxywhirls_when_it_is_installed():
    assert dropin.UPSTREAM == (upstream_cache is not None)
    if dropin.UPSTREAM:
        assert CacheEntry is upstream_cache.CacheEntry
        assert CacheConfig is upstream_cache.CacheConfig
        assert CacheStatistics is upstream_cache.CacheStatistics
    else:
        assert CacheEntry.__module__ == "pwcache.proxywhirl._models"


def test_put_get_round_trip_with_secret_credentials_and_datetimes(manager):
    e = entry("k1", "http://10.0.0.1:8080", username="alice", password="p@ss:wörd")
    assert manager.put("k1", e) is True
    got = manager.get("k1")
    assert isinstance(got, CacheEntry)
    assert got.username.get_secret_value() == "alice"
    assert got.password.get_secret_value() == "p@ss:wörd"
    assert "p@ss" not in repr(got) and "alice" not in str(got)
    for field in ("fetch_time", "last_accessed", "expires_at"):
        value = getattr(got, field)
        assert isinstance(value, datetime) and value.utcoffset() == timedelta(0), field
    assert got.expires_at == e.expires_at
    assert got.access_count == 1 and got.health_status == HealthStatus.UNKNOWN
    assert not got.is_expired and not got.is_healthy
    assert manager.get("k1").access_count == 2
    assert manager.get("absent") is None


def test_delete_is_a_bool_and_clear_counts_distinct_entries(manager):
    for i in range(3):
        manager.put(f"k{i}", entry(f"k{i}", f"http://10.0.0.{i}:8080"))
    assert manager.delete("k0") is True
    assert manager.delete("k0") is False
    # proxywhirl returns 6 here (each entry counted once per tier); pwcache counts entries.
    assert manager.clear() == 2
    assert manager.get("k1") is None


def test_statistics_object_counts_hits_misses_and_promotions(tmp_path):
    cfg = config(tmp_path)
    with CacheManager(cfg) as first:
        first.put("k", entry("k", "http://10.0.0.1:8080"))
        first.get("k")
        first.get("absent")
        stats = first.get_statistics()
        assert isinstance(stats, CacheStatistics)
        assert (stats.l1_stats.hits, stats.l1_stats.misses) == (1, 1)
        assert first.statistics.l1_stats.hits == 1
        assert stats.l1_stats.current_size == 1 and stats.total_size == 3
        assert stats.overall_hit_rate == 0.5
        assert stats.to_metrics_dict()["cache.l1.hit_rate"] == 0.5
    with CacheManager(cfg) as second:  # L1 empty: an L2 hit, promoted into L1
        # The first manager's read was written below when it closed (proxywhirl loses it).
        assert second.get("k").access_count == 2
        stats = second.get_statistics()
        assert (stats.l1_stats.misses, stats.l2_stats.hits, stats.promotions) == (1, 1, 1)
        assert stats.l2_degraded is False


def test_generate_cache_key_is_a_static_method_with_upstreams_keys():
    assert CacheManager.generate_cache_key("socks5://proxy0.example.net:1080") == "84d7754142f9018a"
    expected = json.loads((FIXTURES / "expected.json").read_text())
    for e in expected[:5]:
        assert CacheManager.generate_cache_key(e["proxy_url"]) == e["key"]


def test_tier_views_act_on_one_tier_without_promotion(manager):
    e = entry("promote", "http://proxy.example.com:8080", health_status=HealthStatus.HEALTHY)
    assert manager.l3_tier.put(e.key, e) is True
    assert manager.l1_tier.get(e.key) is None
    assert manager.l2_tier.get(e.key) is None
    assert manager.l3_tier.get(e.key).access_count == 0, "a tier get counts no read"
    assert manager.get(e.key).access_count == 1
    assert manager.l1_tier.get(e.key) is not None, "promoted to L1"
    assert e.key in manager.l2_tier, "promoted to L2"
    assert [t.size() for t in (manager.l1_tier, manager.l2_tier, manager.l3_tier)] == [1, 1, 1]
    assert manager.l1_tier.enabled and manager.l2_tier.enabled and manager.l3_tier.enabled
    assert manager.l1_tier.config.max_entries == 1000
    # Clear L1 and L2 to simulate a cold cache: L3 still serves it.
    assert manager.l1_tier.clear() == 1
    assert manager.l2_tier.clear() == 1
    assert manager.get(e.key) is not None
    assert manager.l2_tier.delete(e.key) is True
    assert manager.l2_tier.delete(e.key) is False
    assert manager.l1_tier.get(e.key) is not None and manager.l3_tier.get(e.key) is not None


def test_l1_eviction_writes_the_victim_to_l2(tmp_path):
    cfg = config(tmp_path, l1_config=CacheTierConfig(enabled=True, max_entries=3))
    with CacheManager(cfg) as m:
        for i in range(3):
            m.put(f"key_{i}", entry(f"key_{i}", f"http://proxy{i}.example.com:8080"))
        assert m.l1_tier.size() == 3
        m.put("key_evict", entry("key_evict", "http://proxy_evict.example.com:8080"))
        assert m.l1_tier.size() == 3
        assert m.l1_tier.get("key_0") is None
        below = m.l2_tier.get("key_0")
        assert below is not None and below.evicted_from_l1 is True
        assert m.get_statistics().l1_stats.evictions_lru == 1


def test_disabled_tiers_store_nothing_and_put_is_false_when_no_tier_can(tmp_path):
    cfg = config(
        tmp_path,
        l1_config=CacheTierConfig(enabled=False),
        l2_config=CacheTierConfig(enabled=False),
    )
    (tmp_path / "db" / "proxywhirl.db").mkdir(parents=True)  # a directory: L3 cannot store
    with CacheManager(cfg) as m:
        e = entry("k", "http://10.0.0.1:8080")
        assert m.l2_tier.enabled is False
        assert (m.l2_tier.put("k", e), m.l2_tier.get("k"), m.l2_tier.size()) == (False, None, 0)
        assert m.put("k", e) is False
        assert m.l3_tier.enabled is False


def test_warm_from_file_and_export_to_file_return_their_dicts(manager, tmp_path):
    jsonl = tmp_path / "proxies.jsonl"
    jsonl.write_text(
        '{"proxy_url": "http://10.1.0.1:80", "username": "u", "password": "hunter2"}\n'
        "not json\n"
        '{"source": "no url"}\n'
    )
    assert manager.warm_from_file(str(jsonl)) == {"loaded": 1, "skipped": 1, "failed": 1}
    with open(tmp_path / "proxies.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["proxy_url", "source"])
        writer.writerow(["http://10.1.0.2:80", "csv"])
    assert manager.warm_from_file(tmp_path / "proxies.csv", ttl_override=120)["loaded"] == 1
    key = CacheManager.generate_cache_key("http://10.1.0.2:80")
    assert manager.get(key).ttl_seconds == 120
    # Whole-file problems: proxywhirl's answer, not an exception.
    assert manager.warm_from_file(str(tmp_path / "missing.json")) == {
        "loaded": 0,
        "skipped": 0,
        "failed": 1,
    }
    assert manager.warm_from_file(str(tmp_path / "proxies.xml"))["failed"] == 1
    out = tmp_path / "export.jsonl"
    assert manager.export_to_file(str(out)) == {"exported": 2, "failed": 0}
    text = out.read_text()
    assert "hunter2" not in text and '"password": "***"' in text.replace('":"', '": "')


def test_invalidate_by_health_returns_none_and_evicts_at_the_threshold(tmp_path):
    with CacheManager(config(tmp_path, failure_threshold=2)) as m:
        m.put("k", entry("k", "http://10.0.0.1:8080"))
        assert m.invalidate_by_health("k") is None
        got = m.get("k")
        assert got.failure_count == 1 and got.health_status == HealthStatus.UNHEALTHY
        m.invalidate_by_health("k")
        assert m.get("k") is None
        assert m.get_statistics().l1_stats.evictions_health == 1
        assert m.invalidate_by_health("absent") is None


def test_ttl_manager_sweeps_expired_entries_in_the_background(manager):
    ttl = TTLManager(manager, cleanup_interval=60)
    assert ttl.cache_manager is manager and ttl.cleanup_interval == 60
    assert ttl.enabled is False
    manager.put("old", entry("old", "http://10.0.0.9:8080", ttl=0))
    assert manager.l3_tier.get("old") is not None
    ttl.start()  # sweeps at once, then every 60 s
    assert ttl.enabled is True
    deadline = time.monotonic() + 5
    while manager.l3_tier.get("old") is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert manager.l3_tier.get("old") is None
    assert manager.l1_tier.size() == 0
    ttl.stop()
    assert ttl.enabled is False
    with pytest.raises(ValueError):
        TTLManager(manager, cleanup_interval=0)


def test_background_cleanup_from_the_config(tmp_path):
    m = CacheManager(config(tmp_path, enable_background_cleanup=True, cleanup_interval_seconds=5))
    assert isinstance(m.ttl_manager, TTLManager) and m.ttl_manager.enabled
    m.close()
    assert not m.ttl_manager.enabled
    with CacheManager(config(tmp_path)) as plain:
        assert plain.ttl_manager is None


def test_an_invalid_encryption_key_is_a_value_error(tmp_path):
    with pytest.raises(ValueError):
        CacheManager(
            CacheConfig(
                l2_cache_dir=str(tmp_path / "l2"),
                l3_database_path=str(tmp_path / "l3.db"),
                encryption_key="not-a-fernet-key",
            )
        )


def test_bad_input_raises_value_errors(manager):
    with pytest.raises(ValueError):
        manager.get("")
    with pytest.raises(ValueError):
        manager.put("k", entry("k", ""))
    with pytest.raises(ValueError):
        CacheTierConfig(eviction_policy="random")


@pytest.mark.parametrize("backend", ["sqlite", "jsonl"])
def test_reads_what_proxywhirl_wrote(tmp_path, backend):
    """The files proxywhirl 0.3.3 wrote (tests/fixtures): the same config, the same entries."""
    shutil.copytree(FIXTURES / "l3", tmp_path / "l3")
    shutil.copytree(FIXTURES / f"l2_{backend}", tmp_path / "l2")
    cfg = CacheConfig(
        l2_backend=L2BackendType(backend),
        l2_cache_dir=str(tmp_path / "l2"),
        l3_database_path=str(tmp_path / "l3" / "proxywhirl.db"),
        encryption_key=KEY,
    )
    expected = json.loads((FIXTURES / "expected.json").read_text())
    with CacheManager(cfg) as m:
        for e in expected:
            got = m.get(e["key"])
            if e["expired"]:
                assert got is None, e["key"]
                continue
            assert got.proxy_url == e["proxy_url"]
            for field in ("username", "password"):
                secret = getattr(got, field)
                assert (secret and secret.get_secret_value()) == e[field], (e["key"], field)
            assert got.health_status == HealthStatus(e["health_status"])


# ---- one program, written for proxywhirl 0.3.3, run on each implementation ------------------


def proxywhirl_user_program(api, workdir: Path) -> dict:
    """What a proxywhirl user's program does with the cache, through `api` (a namespace holding
    proxywhirl's names). Returns what it observed."""
    cfg = api.CacheConfig(
        l1_config=api.CacheTierConfig(max_entries=100),
        l2_config=api.CacheTierConfig(max_entries=500),
        l2_backend=api.L2BackendType.SQLITE,
        l2_cache_dir=str(workdir / "cache"),
        l3_database_path=str(workdir / "cache.db"),
        encryption_key=KEY,
        failure_threshold=2,
    )
    manager = api.CacheManager(cfg)
    now = datetime.now(timezone.utc)
    seen: dict = {"put": []}
    keys = []
    for i in range(10):
        url = f"http://10.0.0.{i}:8080"
        key = api.CacheManager.generate_cache_key(url)
        keys.append(key)
        e = api.CacheEntry(
            key=key,
            proxy_url=url,
            username=f"user{i}",
            password=f"pw{i}",
            source="fetched",
            fetch_time=now,
            last_accessed=now,
            ttl_seconds=3600,
            expires_at=now + timedelta(hours=1),
            health_status=api.HealthStatus.HEALTHY,
        )
        seen["put"].append(manager.put(key, e))
    first = manager.get(keys[0])
    seen["first"] = (first.password.get_secret_value(), first.access_count, first.is_healthy)
    seen["first_type"] = type(first)
    seen["miss"] = manager.get("0000000000000000")
    old = api.CacheEntry(
        key="old",
        proxy_url="http://10.0.9.9:8080",
        source="fetched",
        fetch_time=now - timedelta(hours=2),
        last_accessed=now - timedelta(hours=2),
        ttl_seconds=60,
        expires_at=now - timedelta(hours=1),
    )
    manager.put("old", old)
    seen["expired"] = manager.get("old")
    warm = workdir / "warm.jsonl"
    warm.write_text(
        '{"proxy_url": "http://10.2.0.1:80", "password": "w1"}\n'
        "{broken\n"
        '{"proxy_url": "http://10.2.0.2:80"}\n'
    )
    seen["warm"] = manager.warm_from_file(str(warm))
    manager.invalidate_by_health(keys[1])
    manager.invalidate_by_health(keys[1])
    seen["invalidated"] = manager.get(keys[1])
    seen["delete"] = (manager.delete(keys[2]), manager.delete(keys[2]))
    stats = manager.get_statistics()
    seen["stats"] = (stats.l1_stats.hits >= 1, stats.l3_stats.current_size >= 8)
    seen["export"] = manager.export_to_file(str(workdir / "export.jsonl"))
    # The expired entry is in L3 until a sweep: the TTL manager's first sweep runs at start.
    manager.put("old", old)
    ttl = api.TTLManager(manager, cleanup_interval=1)
    ttl.start()
    deadline = time.monotonic() + 5
    while manager.l3_tier.get("old") is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    seen["swept"] = manager.l3_tier.get("old") is None
    seen["ttl_enabled"] = ttl.enabled
    ttl.stop()
    return seen


def check_program(seen: dict, entry_class: type) -> None:
    assert seen["put"] == [True] * 10
    assert seen["first"] == ("pw0", 1, True)
    assert seen["first_type"] is entry_class
    assert seen["miss"] is None and seen["expired"] is None and seen["invalidated"] is None
    assert seen["warm"] == {"loaded": 2, "skipped": 0, "failed": 1}
    assert seen["delete"] == (True, False)
    assert seen["stats"] == (True, True)
    assert seen["export"] == {"exported": 10, "failed": 0}
    assert seen["swept"] and seen["ttl_enabled"]


def test_a_proxywhirl_program_runs_on_the_dropin(tmp_path):
    check_program(proxywhirl_user_program(dropin, tmp_path), CacheEntry)


@needs_proxywhirl
def test_the_same_program_runs_on_proxywhirl_itself(tmp_path):
    """The program is proxywhirl code: it passes on proxywhirl 0.3.3 too."""
    from proxywhirl.cache import models

    api = SimpleNamespace(
        CacheManager=upstream_manager.CacheManager,
        TTLManager=upstream_manager.TTLManager,
        **{name: getattr(models, name) for name in (
            "CacheConfig", "CacheTierConfig", "CacheEntry", "HealthStatus", "L2BackendType",
        )},
    )  # fmt: skip
    assert api.CacheManager is not dropin.CacheManager
    check_program(proxywhirl_user_program(api, tmp_path), models.CacheEntry)


@needs_proxywhirl
def test_install_makes_proxywhirl_use_pwcache(tmp_path):
    import proxywhirl

    original = upstream_cache.CacheManager
    dropin.install()
    try:
        dropin.install()  # a second call changes nothing
        from proxywhirl.cache import CacheManager as looked_up
        from proxywhirl.cache.manager import TTLManager as ttl_looked_up

        assert looked_up is dropin.CacheManager and ttl_looked_up is dropin.TTLManager
        assert proxywhirl.CacheManager is dropin.CacheManager
        api = SimpleNamespace(
            CacheManager=upstream_cache.CacheManager,
            TTLManager=upstream_manager.TTLManager,
            CacheConfig=upstream_cache.CacheConfig,
            CacheTierConfig=upstream_cache.models.CacheTierConfig,
            CacheEntry=upstream_cache.CacheEntry,
            HealthStatus=upstream_cache.HealthStatus,
            L2BackendType=upstream_cache.models.L2BackendType,
        )
        seen = proxywhirl_user_program(api, tmp_path)
        check_program(seen, upstream_cache.CacheEntry)
        # pwcache wrote the files: its SQLite L2 side table is there.
        import sqlite3

        with sqlite3.connect(tmp_path / "cache" / "l2_cache.db") as db:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
        assert "pwcache_l2_health" in tables
    finally:
        dropin.uninstall()
    assert upstream_cache.CacheManager is original
    assert proxywhirl.CacheManager is original


@needs_proxywhirl
def test_accepts_proxywhirls_own_objects(tmp_path):
    from pydantic import SecretStr

    from proxywhirl.cache.models import CacheConfig as PwConfig
    from proxywhirl.cache.models import CacheEntry as PwEntry

    cfg = PwConfig(
        l2_cache_dir=str(tmp_path / "l2"),
        l3_database_path=str(tmp_path / "l3.db"),
        encryption_key=SecretStr(KEY),
    )
    now = datetime.now(timezone.utc)
    e = PwEntry(
        key="k",
        proxy_url="http://10.0.0.1:8080",
        username=SecretStr("u"),
        password=SecretStr("p"),
        source="s",
        fetch_time=now,
        last_accessed=now,
        ttl_seconds=60,
        expires_at=now + timedelta(seconds=60),
    )
    with dropin.CacheManager(cfg) as m:
        assert m.config is cfg
        assert m.put("k", e) is True
        got = m.get("k")
        assert isinstance(got, PwEntry) and got.password.get_secret_value() == "p"
        assert got.model_dump()["key"] == "k"


# ---- the drop-in's own models (used when proxywhirl is not installed) ------------------------


def test_standalone_models_behave_like_proxywhirls():
    from pwcache.proxywhirl import _models as m

    secret = m.SecretStr("hunter2")
    assert secret.get_secret_value() == "hunter2"
    assert "hunter2" not in repr(secret) + str(secret)
    now = datetime.now(timezone.utc)
    e = m.CacheEntry(
        key="k",
        proxy_url="http://h:1",
        password="pw",
        source="s",
        fetch_time=now.isoformat(),
        last_accessed=now,
        ttl_seconds=10,
        expires_at=now + timedelta(seconds=10),
        health_status="healthy",
    )
    assert isinstance(e.password, m.SecretStr) and e.fetch_time == now
    assert e.is_healthy and not e.is_expired
    assert "pw" not in repr(e)
    assert e.model_copy(update={"failure_count": 2}).failure_count == 2
    dumped = e.model_dump(mode="json")
    assert list(dumped)[:4] == ["key", "proxy_url", "username", "password"]
    assert dumped["password"] == "**********" and dumped["health_status"] == "healthy"
    with pytest.raises(TypeError):
        m.CacheEntry(key="k", proxy_url="http://h:1")  # required fields missing
    with pytest.raises(TypeError):
        m.CacheTierConfig(max_size=3)  # an unknown field
    with pytest.raises(ValueError):
        m.CacheEntry(**{**dumped, "password": None, "ttl_seconds": -1})
    cfg = m.CacheConfig()
    assert (cfg.l1_config.max_entries, cfg.l2_config.max_entries, cfg.l3_config.max_entries) == (
        1000,
        5000,
        None,
    )
    assert cfg.l2_backend is m.L2BackendType.JSONL and cfg.per_source_ttl == {}
    assert m.CacheConfig().per_source_ttl is not cfg.per_source_ttl
    stats = m.CacheStatistics(l1_stats={"hits": 3, "misses": 1}, l2_stats={"misses": 2})
    assert stats.overall_hit_rate == 3 / 5 and stats.l1_stats.hit_rate == 0.75
    assert list(stats.model_dump())[-2:] == ["overall_hit_rate", "total_size"]
    assert list(stats.to_metrics_dict())[0] == "cache.l1.hit_rate"


def test_the_package_is_typed():
    assert (Path(pwcache.__file__).parent / "py.typed").is_file()


@needs_proxywhirl
def test_proxywhirl_reads_the_credentials_taken_from_a_url(tmp_path):
    """A URL's userinfo is stored encrypted, as `username`/`password`, and the URL without it:
    no file of the store holds the password, and proxywhirl 0.3.3 reads the entry from pwcache's
    files (SQLite L2 and L3) with the credentials in their fields."""
    from proxywhirl.cache import models

    url = "http://url-user:url-pa55@10.3.0.1:8080"
    key = dropin.CacheManager.generate_cache_key(url)
    paths = {"l2_cache_dir": str(tmp_path / "l2"), "l3_database_path": str(tmp_path / "l3.db")}
    with pwcache.Cache({"l2_backend": "sqlite", "encryption_key": KEY, **paths}) as cache:
        cache.put(key, {"proxy_url": url})
        got = cache.get(key)
        assert (got["proxy_url"], got["username"], got["password"]) == (
            "http://10.3.0.1:8080", "url-user", "url-pa55")
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files
    for path in files:
        data = path.read_bytes()
        assert b"url-pa55" not in data and b"url-user" not in data, path
    upstream = upstream_manager.CacheManager(models.CacheConfig(
        l2_backend=models.L2BackendType.SQLITE, encryption_key=KEY, **paths))
    for tier in (upstream.l2_tier, upstream.l3_tier):
        entry = tier.get(key)
        assert entry is not None, tier
        assert entry.proxy_url == "http://10.3.0.1:8080"
        assert entry.username.get_secret_value() == "url-user"
        assert entry.password.get_secret_value() == "url-pa55"

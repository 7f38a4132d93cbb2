"""The ctypes wrapper: every method, the exceptions, threads, the context manager, logging."""

import json
import logging
import threading
import time
from pathlib import Path

import pytest

import pwcache


def config(tmp_path: Path, **extra):
    return {"l2_cache_dir": str(tmp_path / "l2"), "l3_database_path": str(tmp_path / "l3.db"), **extra}


@pytest.fixture
def cache(tmp_path):
    with pwcache.Cache(config(tmp_path)) as c:
        yield c


def test_version_is_the_crate_version():
    cargo = (Path(__file__).resolve().parents[2] / "Cargo.toml").read_text()
    line = next(l for l in cargo.splitlines() if l.startswith("version = "))
    assert pwcache.version() == line.split('"')[1]


def test_generate_cache_key_matches_upstream():
    assert pwcache.generate_cache_key("socks5://proxy0.example.net:1080") == "84d7754142f9018a"
    with pytest.raises(pwcache.InvalidArgument):
        pwcache.generate_cache_key("")


def test_put_get_delete(cache):
    cache.put("k", {"proxy_url": "http://10.0.0.1:80", "username": "u", "password": "p"})
    entry = cache.get("k")
    assert entry["key"] == "k" and entry["password"] == "p" and entry["access_count"] == 1
    assert list(entry)[:3] == ["key", "proxy_url", "username"]
    assert len(entry) == 21
    assert cache.get("k")["access_count"] == 2
    cache.delete("k")
    assert cache.get("k") is None
    with pytest.raises(pwcache.NotFound) as e:
        cache.delete("k")
    assert "k" in str(e.value) and e.value.status == 1
    assert isinstance(e.value, pwcache.Error)


def test_clear_cleanup_and_statistics(cache):
    cache.put("a", {"proxy_url": "http://a:1"})
    cache.put("x", {"proxy_url": "http://x:1", "ttl_seconds": 0})
    assert cache.cleanup_expired() == 1
    assert cache.get("a") is not None
    stats = cache.statistics()
    assert stats["l1_stats"]["hits"] == 1 and "overall_hit_rate" in stats
    # The fleet's shared tier has its block and flag too (off here: zeros, not degraded).
    assert stats["shared_stats"]["current_size"] == 0 and stats["shared_degraded"] is False
    assert cache.clear() == 1


def test_invalidate_by_health(tmp_path):
    with pwcache.Cache(config(tmp_path, failure_threshold=2)) as cache:
        cache.put("k", {"proxy_url": "http://h:1"})
        assert cache.invalidate_by_health("k") is False
        assert cache.invalidate_by_health("k") is True
        with pytest.raises(pwcache.NotFound):
            cache.invalidate_by_health("k")


def test_put_many(cache):
    entries = [
        {"key": f"k{i}", "proxy_url": f"http://10.0.0.{i}:80", "username": "u", "password": f"p{i}"}
        for i in range(50)
    ]
    assert cache.put_many(entries) == 50
    assert cache.get("k7")["password"] == "p7"
    assert cache.statistics()["l3_stats"]["current_size"] == 50
    assert cache.put_many([]) == 0


def test_put_many_with_a_bad_item_stores_nothing(cache):
    entries = [{"key": "a", "proxy_url": "http://a:1"}, {"key": "b", "proxy_url": "http://b:1", "failure_count": -1}]
    with pytest.raises(pwcache.InvalidJson, match=r"item 1:.*failure_count"):
        cache.put_many(entries)
    with pytest.raises(pwcache.InvalidJson, match=r"item 0:.*`key`"):
        cache.put_many([{"proxy_url": "http://a:1"}])
    assert cache.get("a") is None
    with pytest.raises(TypeError):
        cache.put_many({"key": "a", "proxy_url": "http://a:1"})


def test_warm_and_export(cache, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"proxy_url": "http://10.0.0.1:80", "password": "hunter2"}\nnot json\n')
    report = cache.warm_from_file(src)
    assert {k: report[k] for k in ("loaded", "skipped", "failed")} == {
        "loaded": 1, "skipped": 0, "failed": 1}
    assert report["problems_not_listed"] == 0
    [problem] = report["problems"]
    assert problem["line"] == 2 and problem["outcome"] == "failed", problem
    assert problem["reason"].startswith("not JSON"), problem
    assert cache.warm_from_file(str(src), ttl_override=60)["loaded"] == 1
    out = tmp_path / "out.jsonl"
    assert cache.export_to_file(out) == {"exported": 1, "failed": 0}
    assert "hunter2" not in out.read_text()
    cache.export_to_file(out, include_credentials=True)
    assert json.loads(out.read_text())["password"] == "hunter2"


@pytest.mark.parametrize(
    "call, exc",
    [
        (lambda c, t: c.put("k", {"proxy_url": "http://h:1", "colour": 1}), pwcache.InvalidJson),
        (lambda c, t: c.put("", {"proxy_url": "http://h:1"}), pwcache.InvalidArgument),
        (lambda c, t: c.put("k\ud800", {"proxy_url": "http://h:1"}), pwcache.InvalidArgument),
        (lambda c, t: c.warm_from_file(t / "x.txt"), pwcache.Unsupported),
        (lambda c, t: c.warm_from_file(t / "missing.json"), pwcache.PwIOError),
        (lambda c, t: c.export_to_file(t), pwcache.PwIOError),
        (lambda c, t: c.warm_from_file(""), pwcache.InvalidArgument),
        (lambda c, t: c.put("k", {"proxy_url": "not a url"}), pwcache.InvalidArgument),
        (lambda c, t: (t / "l.csv").write_text("url,user\nhttp://h:1,u\n") and
         c.warm_from_file(t / "l.csv"), pwcache.InvalidInput),
    ],
)
def test_each_failure_has_its_exception(cache, tmp_path, call, exc):
    with pytest.raises(exc) as e:
        call(cache, tmp_path)
    assert str(e.value)


def test_bad_configurations(tmp_path):
    with pytest.raises(pwcache.InvalidJson, match="no_such_key"):
        pwcache.Cache(config(tmp_path, no_such_key=1))
    with pytest.raises(pwcache.CryptoError):
        pwcache.Cache(config(tmp_path, encryption_key="not-a-key"))


def test_storage_error_when_no_tier_can_store(tmp_path):
    cfg = config(tmp_path, l1_config={"enabled": False}, l2_config={"enabled": False})
    cfg["l3_database_path"] = str(tmp_path)  # a directory
    with pwcache.Cache(cfg) as cache:
        with pytest.raises(pwcache.StorageError):
            cache.put("k", {"proxy_url": "http://h:1"})


def test_closed_cache_is_refused(tmp_path):
    cache = pwcache.Cache(config(tmp_path))
    cache.close()
    cache.close()  # idempotent
    assert cache.closed
    with pytest.raises(pwcache.InvalidArgument):
        cache.get("k")


def test_many_threads_on_one_cache(cache):
    errors = []

    def work(t):
        try:
            for i in range(100):
                key = f"t{t}-{i}"
                cache.put(key, {"proxy_url": f"http://10.{t}.0.{i}:80"})
                assert cache.get(key)["key"] == key
                with pytest.raises(pwcache.NotFound):
                    cache.delete(f"absent-{t}")
        except Exception as e:  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert cache.statistics()["l1_stats"]["current_size"] == 800


def test_ttl_manager(tmp_path):
    cache = pwcache.Cache(config(tmp_path))
    cache.put("gone", {"proxy_url": "http://h:1", "ttl_seconds": 0})
    with pytest.raises(pwcache.InvalidArgument):
        pwcache.TTLManager(cache, 0)
    with pytest.raises(pwcache.InvalidArgument):
        pwcache.TTLManager(cache, float("nan"))
    ttl = pwcache.TTLManager(cache, 0.01)
    assert not ttl.is_running()
    ttl.start()
    assert ttl.is_running()
    deadline = time.time() + 5
    while cache.statistics()["l1_stats"]["current_size"] and time.time() < deadline:
        time.sleep(0.01)
    assert cache.statistics()["l1_stats"]["current_size"] == 0
    cache.close()  # the sweeper outlives the cache handle
    time.sleep(0.05)
    assert ttl.is_running()
    ttl.stop()
    assert not ttl.is_running()
    ttl.close()
    assert not ttl.is_running()


def test_logs_reach_the_logging_module_without_credentials(tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="pwcache")
    cfg = config(tmp_path)
    cfg["l3_database_path"] = str(tmp_path)  # a directory: L3 starts degraded, with a warning
    with pwcache.Cache(cfg) as cache:
        cache.put("k", {"proxy_url": "http://user:hunter2@h:1", "password": "hunter2"})
        src = tmp_path / "w.jsonl"
        src.write_text('{"proxy_url": "http://user:hunter2@h:2"}\n')
        cache.warm_from_file(src)
    records = [r for r in caplog.records if r.name == "pwcache"]
    assert any(r.levelno == logging.WARNING for r in records)
    assert all("hunter2" not in r.getMessage() for r in records)


def test_one_tier_alone(tmp_path):
    with pwcache.Cache(config(tmp_path, l2_config={"enabled": False})) as cache:
        cache.tier_put(pwcache.Tier.L3, "k", {"proxy_url": "http://h:1", "password": "p"})
        assert cache.tier_get(pwcache.Tier.L1, "k") is None
        assert cache.tier_get(pwcache.Tier.L3, "k")["password"] == "p"
        assert [cache.tier_size(t) for t in (pwcache.Tier.L1, pwcache.Tier.L3)] == [0, 1]
        assert cache.tier_enabled(pwcache.Tier.L1) and not cache.tier_enabled(pwcache.Tier.L2)
        with pytest.raises(pwcache.Unsupported, match="L2 is disabled"):
            cache.tier_get(pwcache.Tier.L2, "k")
        with pytest.raises(pwcache.InvalidArgument, match="PW_TIER_L1"):
            cache.tier_size(7)
        with pytest.raises(TypeError):
            cache.tier_size("L1")
        with pytest.raises(pwcache.NotFound):
            cache.tier_delete(pwcache.Tier.L1, "k")
        assert cache.get("k")["access_count"] == 1  # promoted from L3 into L1
        assert cache.tier_clear(pwcache.Tier.L1) == 1
        cache.tier_delete(pwcache.Tier.L3, "k")
        assert cache.get("k") is None

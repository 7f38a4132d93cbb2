"""One SQLite per process: Python's `sqlite3` module looking at pwcache's databases loses nothing.

POSIX file locks belong to the process. If libpwcache carried its own copy of SQLite, the
`sqlite3` module's copy would not know about pwcache's connections: closing its own connection to
the same file drops pwcache's locks and, believing itself the last user, checkpoints and deletes
the WAL under pwcache's feet. Acknowledged puts then never reach the file and deleted rows come
back. With the one SQLite of the process shared, both see each other's connections.

The writer runs in a child process that peeks at the databases with `sqlite3` between its writes
and deletes, holds a connection open across a sweep, checks after each step that a third process
counts exactly the rows it expects, and is then killed with SIGKILL (nothing is closed). This
process then reads the store back.
"""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap

import pytest

import pwcache

WRITER = textwrap.dedent(
    r"""
    import json, os, signal, sqlite3, subprocess, sys
    import pwcache

    config = json.loads(sys.argv[1])
    l3 = config["l3_database_path"]
    l2 = os.path.join(config["l2_cache_dir"], "l2_cache.db")
    sqlite_l2 = config["l2_backend"] == "sqlite"
    COUNT = "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); " \
            "print(sorted(r[0] for r in c.execute('SELECT key FROM ' + sys.argv[2])))"

    def keys_seen_by_another_process(db, table):
        out = subprocess.run([sys.executable, "-c", COUNT, db, table],
                             check=True, capture_output=True, text=True).stdout
        return set(eval(out))

    def peek(db, table):
        # Open, read, close: the close is what dropped a second SQLite's locks.
        conn = sqlite3.connect(db)
        n = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        conn.close()
        return n

    def expect(live, step):
        seen = keys_seen_by_another_process(l3, "cache_entries")
        assert seen == live, f"{step}: L3 seen from another process differs: " \
            f"missing {sorted(live - seen)[:5]}, extra {sorted(seen - live)[:5]}"
        if sqlite_l2:
            seen = keys_seen_by_another_process(l2, "l2_cache")
            assert seen == live, f"{step}: L2 seen from another process differs: " \
                f"missing {sorted(live - seen)[:5]}, extra {sorted(seen - live)[:5]}"

    cache = pwcache.Cache(config)
    live = set()
    for round in range(5):
        for i in range(20):
            key = f"r{round}-{i}"
            cache.put(key, {"proxy_url": f"http://10.{round}.0.{i}:8080", "password": "p"})
            live.add(key)
            if i % 5 == 0:
                peek(l3, "cache_entries")
                if sqlite_l2:
                    peek(l2, "l2_cache")
        expect(live, f"round {round} after puts")
        for i in range(0, 20, 2):
            key = f"r{round}-{i}"
            cache.delete(key)
            live.discard(key)
            if i % 4 == 0:
                peek(l3, "cache_entries")
                if sqlite_l2:
                    peek(l2, "l2_cache")
        expect(live, f"round {round} after deletes")

    # A sweep while the sqlite3 module holds connections to both databases.
    for i in range(3):
        cache.put(f"expired-{i}", {"proxy_url": f"http://10.9.0.{i}:8080", "ttl_seconds": 0})
    held = [sqlite3.connect(l3)] + ([sqlite3.connect(l2)] if sqlite_l2 else [])
    for conn in held:
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    swept = cache.cleanup_expired()
    assert swept == 3, f"cleanup_expired returned {swept}"
    for conn in held:
        conn.close()
    expect(live, "after the sweep")
    stats = cache.statistics()
    assert stats["l3_stats"]["current_size"] == len(live), stats["l3_stats"]
    assert not stats["l3_degraded"] and not stats["l2_degraded"], stats

    # Writes after the last close, acknowledged, then the process dies without closing.
    for i in range(10):
        cache.put(f"last-{i}", {"proxy_url": f"http://10.8.0.{i}:8080"})
        live.add(f"last-{i}")
    peek(l3, "cache_entries")
    print(json.dumps(sorted(live)), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


@pytest.mark.parametrize("backend", ["jsonl", "sqlite"])
def test_sqlite3_module_beside_the_cache_loses_nothing(tmp_path, backend):
    config = {
        "l2_cache_dir": str(tmp_path / "l2"),
        "l3_database_path": str(tmp_path / "l3.db"),
        "l2_backend": backend,
    }
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    child = subprocess.run(
        [sys.executable, "-c", WRITER, json.dumps(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    live = set(json.loads(child.stdout))
    assert len(live) == 5 * 10 + 10

    conn = sqlite3.connect(config["l3_database_path"])
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert {r[0] for r in conn.execute("SELECT key FROM cache_entries")} == live
    conn.close()

    with pwcache.Cache(config) as cache:
        for key in live:
            assert cache.get(key) is not None, key
        for round in range(5):
            for i in range(0, 20, 2):
                assert cache.get(f"r{round}-{i}") is None
        assert cache.get("expired-0") is None


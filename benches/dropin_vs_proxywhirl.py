#!/usr/bin/env python3
"""One proxywhirl program, timed on proxywhirl 0.3.3's cache and on pwcache's drop-in, in one run.

Usage (from anywhere; not run in CI):

    python3 benches/dropin_vs_proxywhirl.py [--n 2000] [--warm-lines 10000] [--l1-rounds 5]
                                            [--no-build]

What it does:
- creates benches/.venv-dropin (gitignored) with `proxywhirl==0.3.3` from PyPI and this clone
  installed with `pip install .` (the wheel a user gets; `--no-build` keeps the one installed),
  then re-runs itself inside that virtualenv;
- runs `workload()` twice, with the same arguments: once with `proxywhirl.cache.CacheManager`,
  once with `pwcache.proxywhirl.CacheManager`. Everything else is proxywhirl's: the
  `CacheConfig`, `CacheTierConfig` and `CacheEntry` objects (pydantic models) are built by the
  same code from proxywhirl's classes, and the calls are proxywhirl's API (`put`, `get`,
  `invalidate_by_health`, `export_to_file`, `warm_from_file`). Each run has a fresh temporary
  directory and the default configuration (JSONL L2, L1 1000 entries), with only the paths and
  one Fernet key set;
- prints one table: operation, proxywhirl ops/s, drop-in ops/s, ratio (drop-in / proxywhirl).
  Progress goes to stderr, the table to stdout.

Operations (K = min(N, 1000), the L1 size, so reads promote without L1 evictions):
  put                   N new keys into an empty cache: the first K, then the other N-K (each
                        evicts from a full L1)
  get, L1 hit           the K most recent keys, --l1-rounds times
  get, miss             N absent keys
  get, L2 hit           K keys from a new manager on the same files (L1 empty; promotion)
  get, L3 hit           K keys from a new manager with L2 disabled
  invalidate_by_health  one failed check on each of K keys (below the threshold of 3)
  export_to_file        the N entries, from the manager of the L2 hits (K of them in L1); rate
                        per entry
  warm_from_file        a JSONL file of --warm-lines lines into an empty cache; rate per line

proxywhirl's loguru output is removed (`logger.remove()`): its per-operation DEBUG lines would
otherwise dominate its fast paths. A run at the defaults takes about 6 minutes, most of it
proxywhirl's warm-up (about 27 ms a line).
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from bench_proxies import proxywhirl_entry, url

REPO = Path(__file__).resolve().parents[1]
VENV = REPO / "benches" / ".venv-dropin"
PROXYWHIRL = "proxywhirl==0.3.3"


def ensure_venv(build: bool) -> None:
    """Re-executes this script inside the virtualenv with proxywhirl and the pwcache wheel."""
    python = VENV / "bin" / "python"
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    quiet = ["--quiet", "--disable-pip-version-check"]
    if not python.exists():
        print(f"creating {VENV} with {PROXYWHIRL}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", *quiet, PROXYWHIRL], check=True)
    if build:
        print("installing this clone's wheel (pip install .)", file=sys.stderr)
        subprocess.run(
            [str(python), "-m", "pip", "install", *quiet, "--force-reinstall", "--no-deps", str(REPO)],
            check=True,
        )
    env = {k: v for k, v in os.environ.items() if k != "PWCACHE_LIB"}
    os.execve(str(python), [str(python), str(Path(__file__).resolve()), *sys.argv[1:]], env)


def entries(ids, now: datetime) -> list:
    """proxywhirl `CacheEntry` objects with credentials, built once, outside the timings."""
    return [proxywhirl_entry(i, now) for i in ids]


def config(root: Path, fernet_key: str, l2: bool = True):
    from pydantic import SecretStr

    from proxywhirl.cache.models import CacheConfig, CacheTierConfig

    return CacheConfig(
        l1_config=CacheTierConfig(max_entries=1000),
        l2_config=CacheTierConfig(enabled=l2, max_entries=5000),
        l2_cache_dir=str(root / "l2"),
        l3_database_path=str(root / "db" / "l3.db"),
        encryption_key=SecretStr(fernet_key),
    )


def timed(fn) -> float:
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def workload(CacheManager, root: Path, args, fernet_key: str, warm_file: Path) -> dict[str, float]:
    """The proxywhirl program; returns operations per second by operation."""
    n, k = args.n, min(args.n, 1000)
    now = datetime.now(timezone.utc)
    items = entries(range(n), now)
    keys = [e.key for e in items]
    rates: dict[str, float] = {}

    def put_all(manager, batch):
        for e in batch:
            assert manager.put(e.key, e)

    def get_all(manager, batch, hit: bool):
        for key in batch:
            assert (manager.get(key) is not None) == hit, key

    manager = CacheManager(config(root, fernet_key))
    rates["put (L1 not full)"] = k / timed(lambda: put_all(manager, items[:k]))
    if n > k:
        rates["put (L1 full, evicting)"] = (n - k) / timed(lambda: put_all(manager, items[k:]))
    recent = keys[-k:]
    rates["get, L1 hit"] = k * args.l1_rounds / timed(
        lambda: [get_all(manager, recent, True) for _ in range(args.l1_rounds)]
    )
    absent = [f"absent-{i:06d}" for i in range(n)]
    rates["get, miss"] = n / timed(lambda: get_all(manager, absent, False))
    del manager
    gc.collect()

    manager = CacheManager(config(root, fernet_key))
    rates["get, L2 hit"] = k / timed(lambda: get_all(manager, recent, True))
    rates["invalidate_by_health"] = k / timed(
        lambda: [manager.invalidate_by_health(key) for key in recent]
    )
    out = root / "export.jsonl"
    exported = {}
    seconds = timed(lambda: exported.update(manager.export_to_file(str(out))))
    assert exported["exported"] == n, exported
    rates["export_to_file (per entry)"] = n / seconds
    del manager
    gc.collect()

    manager = CacheManager(config(root, fernet_key, l2=False))
    older = keys[:k]
    rates["get, L3 hit"] = k / timed(lambda: get_all(manager, older, True))
    del manager
    gc.collect()

    warm_root = root / "warm"
    manager = CacheManager(config(warm_root, fernet_key))
    counts = {}
    rates["warm_from_file (per line)"] = args.warm_lines / timed(
        lambda: counts.update(manager.warm_from_file(str(warm_file)))
    )
    assert counts["loaded"] == args.warm_lines, counts
    del manager
    gc.collect()
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--warm-lines", type=int, default=10_000)
    parser.add_argument("--l1-rounds", type=int, default=5)
    parser.add_argument("--no-build", action="store_true", help="keep the installed wheel")
    args = parser.parse_args()
    ensure_venv(build=not args.no_build)

    from loguru import logger

    import proxywhirl.cache
    import pwcache
    import pwcache.proxywhirl

    logger.remove()
    assert pwcache.proxywhirl.UPSTREAM, "proxywhirl's models are in use"
    fernet_key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    sides = [
        ("proxywhirl 0.3.3", proxywhirl.cache.CacheManager),
        (f"pwcache {pwcache.version()} drop-in", pwcache.proxywhirl.CacheManager),
    ]
    results = []
    with tempfile.TemporaryDirectory() as work:
        warm_file = Path(work) / "warm.jsonl"
        with warm_file.open("w") as f:
            for i in range(args.warm_lines):
                line = {"proxy_url": url(100_000 + i), "username": f"u{i}", "password": f"p{i}"}
                f.write(json.dumps(line) + "\n")
        for name, manager_class in sides:
            print(f"running {name}", file=sys.stderr)
            root = Path(work) / name.split()[0]
            results.append(workload(manager_class, root, args, fernet_key, warm_file))

    wheel_lib = Path(pwcache.__file__).parent / "_native" / "lib_native.so"
    print(f"N={args.n}, warm {args.warm_lines} lines, L1 rounds {args.l1_rounds}; "
          f"pwcache from {Path(pwcache.__file__).parent} ({wheel_lib.stat().st_size // 1024} KiB library)")
    print()
    print(f"| operation | {sides[0][0]} (ops/s) | {sides[1][0]} (ops/s) | ratio |")
    print("|---|---:|---:|---:|")
    for op in results[0]:
        a, b = results[0][op], results[1][op]
        print(f"| {op} | {a:,.0f} | {b:,.0f} | {b / a:,.1f}x |")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Side-by-side timing of pwcache (through its Python package) and proxywhirl's cache.

Usage (from anywhere; not run in CI):

    python3 benches/compare_proxywhirl.py [--n 2000] [--warm-lines 10000]
                                          [--pw-warm-lines 1000] [--l1-rounds 5]

What it does:
- creates benches/.venv-proxywhirl (gitignored) with `proxywhirl==0.3.3` from PyPI, then
  re-runs itself inside that virtualenv (pwcache needs nothing there: it is pure Python over
  ctypes and is imported from python/);
- uses the library at $PWCACHE_LIB, else <target>/release/libpwcache.so, where <target> is
  $CARGO_TARGET_DIR or target/; if that file is missing, runs `cargo build --release --lib`;
- runs the same operations on both caches, each with its default configuration in a fresh
  temporary directory (only the paths and an encryption key are set, the same Fernet key for
  both, so credentialed entries can be read back after a reopen), with credentialed entries
  (URL, username, password, source);
- compiles benches/c/l1_get.c with `cc` against include/ and the library, and times L1 hits of
  pw_cache_get() from C;
- prints one table: operation, proxywhirl ops/s, pwcache ops/s, ratio (pwcache / proxywhirl).
  Progress goes to stderr, the table to stdout. A run at the defaults takes about 3 minutes,
  most of it proxywhirl's puts and warm-up.

Operations (K = min(N, 1000), the default L1 size, so reads promote without L1 evictions):
  put              N puts of new keys into an empty cache, timed in two parts: the first K
                   (L1 not full) and the other N-K (each evicts from L1 and writes the victim back)
  get L1 hit       the K most recent keys, --l1-rounds times
  get miss         N absent keys
  get L2 hit       K keys after reopening the cache (L1 empty; promotion into L1)
  get L3 hit       K keys after reopening a cache whose L2 is disabled
  invalidate_by_health   one failed check on each of K keys (below the threshold of 3)
  export_to_file   K entries, all resident in L1; rate per entry
  warm_from_file   a JSONL file: --warm-lines lines for pwcache, --pw-warm-lines for proxywhirl
                   (proxywhirl takes ~27 ms a line at its defaults); rate per line
  put_many         pwcache only (proxywhirl has no batch put): N entries in one call
  L1 get from C    pwcache only: the C program's pw_cache_get() L1 hits

The inputs each library takes are built before the timed loop: proxywhirl `CacheEntry` models,
pwcache dicts (the wrapper's json.dumps is inside the timing, as it is part of each call).
proxywhirl's loguru output is removed (`logger.remove()`), as in the reference measurements.
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from bench_proxies import key, proxywhirl_entry, url

REPO = Path(__file__).resolve().parents[1]
VENV = REPO / "benches" / ".venv-proxywhirl"
PROXYWHIRL = "proxywhirl==0.3.3"


# --------------------------------------------------------------------------- setup


def ensure_venv() -> None:
    """Re-executes this script inside the virtualenv that has proxywhirl."""
    python = VENV / "bin" / "python"
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    if not python.exists():
        print(f"creating {VENV}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    check = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('proxywhirl'))"],
        capture_output=True,
        text=True,
    )
    if check.returncode != 0 or check.stdout.strip() != PROXYWHIRL.split("==")[1]:
        print(f"installing {PROXYWHIRL} into {VENV}", file=sys.stderr)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", PROXYWHIRL],
            check=True,
        )
    os.execv(str(python), [str(python), str(Path(__file__).resolve()), *sys.argv[1:]])


def library_path() -> Path:
    """The release build of libpwcache, built now if it is missing."""
    env = os.environ.get("PWCACHE_LIB")
    if env:
        return Path(env).resolve()
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    lib = target / "release" / "libpwcache.so"
    if not lib.exists():
        print("building libpwcache (cargo build --release -p pwcache --lib)", file=sys.stderr)
        subprocess.run(["cargo", "build", "--release", "-p", "pwcache", "--lib"], cwd=REPO, check=True)
    return lib.resolve()


# --------------------------------------------------------------------------- data


def record(i: int) -> dict:
    """A credentialed entry as pwcache takes it (the other fields default)."""
    return {"proxy_url": url(i), "username": f"user{i}", "password": f"secret{i}", "source": "bench"}


def write_warm_file(path: Path, lines: int, offset: int) -> None:
    with path.open("w") as f:
        for i in range(offset, offset + lines):
            f.write(json.dumps({"key": key(i), **record(i)}) + "\n")


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# --------------------------------------------------------------------------- the two caches


class ProxywhirlSide:
    name = "proxywhirl"

    def __init__(self, fernet_key: str) -> None:
        from loguru import logger

        logger.remove()  # as the reference did: loguru formatting would dominate L1 hits
        from proxywhirl.cache import CacheConfig, CacheManager, CacheTierConfig

        self._config, self._manager, self._tier = CacheConfig, CacheManager, CacheTierConfig
        self.key = fernet_key
        self.cache = None

    def open(self, root: Path, l2: bool = True) -> None:
        extra = {}
        if not l2:
            extra["l2_config"] = self._tier(enabled=False, max_entries=5000)
        config = self._config(
            l2_cache_dir=str(root / "l2"),
            l3_database_path=str(root / "db" / "l3.db"),
            encryption_key=self.key,
            **extra,
        )
        self.cache = self._manager(config)

    def close(self) -> None:
        # proxywhirl has no close(): drop the manager and let its SQLite connections go.
        self.cache = None
        gc.collect()

    def inputs(self, ids) -> list:
        now = datetime.now(timezone.utc)
        return [(key(i), proxywhirl_entry(i, now)) for i in ids]

    def put_all(self, items) -> None:
        put = self.cache.put
        for k, entry in items:
            if not put(k, entry):
                raise RuntimeError(f"proxywhirl put {k} failed")

    def get_all(self, keys, expect_hit: bool) -> None:
        get = self.cache.get
        for k in keys:
            if (get(k) is not None) != expect_hit:
                raise RuntimeError(f"proxywhirl get {k}: expected hit={expect_hit}")

    def invalidate_all(self, keys) -> None:
        for k in keys:
            self.cache.invalidate_by_health(k)

    def export(self, path: Path) -> int:
        return self.cache.export_to_file(str(path))["exported"]

    def warm(self, path: Path) -> int:
        return self.cache.warm_from_file(str(path))["loaded"]


class PwcacheSide:
    name = "pwcache"

    def __init__(self, fernet_key: str) -> None:
        sys.path.insert(0, str(REPO / "python"))
        import pwcache

        self.pwcache = pwcache
        self.key = fernet_key
        self.cache = None

    def open(self, root: Path, l2: bool = True) -> None:
        config = {
            "l2_cache_dir": str(root / "l2"),
            "l3_database_path": str(root / "db" / "l3.db"),
            "encryption_key": self.key,
        }
        if not l2:
            config["l2_config"] = {"enabled": False}
        self.cache = self.pwcache.Cache(config)

    def close(self) -> None:
        self.cache.close()
        self.cache = None

    def inputs(self, ids) -> list:
        return [(key(i), record(i)) for i in ids]

    def put_all(self, items) -> None:
        put = self.cache.put
        for k, entry in items:
            put(k, entry)

    def get_all(self, keys, expect_hit: bool) -> None:
        get = self.cache.get
        for k in keys:
            if (get(k) is not None) != expect_hit:
                raise RuntimeError(f"pwcache get {k}: expected hit={expect_hit}")

    def invalidate_all(self, keys) -> None:
        for k in keys:
            if self.cache.invalidate_by_health(k):
                raise RuntimeError(f"pwcache evicted {k} below the threshold")

    def export(self, path: Path) -> int:
        return self.cache.export_to_file(path)["exported"]

    def warm(self, path: Path) -> int:
        return self.cache.warm_from_file(path)["loaded"]


# --------------------------------------------------------------------------- the runs


def run_side(side, args, work: Path, warm_file: Path, warm_lines: int) -> dict[str, float]:
    n, k_l1 = args.n, min(args.n, 1000)
    results: dict[str, float] = {}
    every, recent, first = list(range(n)), [key(i) for i in range(n - k_l1, n)], [key(i) for i in range(k_l1)]
    print(f"[{side.name}] N={n}", file=sys.stderr)

    # Default configuration: put, L1 hits, misses; reopen: L2 hits, then health invalidation.
    root = work / side.name / "default"
    side.open(root)
    items = side.inputs(every)
    head, tail = items[:k_l1], items[k_l1:]
    results["put, new key (L1 not full)"] = rate(len(head), timed(lambda: side.put_all(head)))
    if tail:
        results["put, new key (L1 full: evicts, writes back)"] = rate(len(tail), timed(lambda: side.put_all(tail)))
    results["get, L1 hit"] = rate(
        k_l1 * args.l1_rounds, timed(lambda: [side.get_all(recent, True) for _ in range(args.l1_rounds)])
    )
    absent = [f"absent-{i:06d}" for i in range(n)]
    results["get, miss"] = rate(n, timed(lambda: side.get_all(absent, False)))
    side.close()
    side.open(root)
    results["get, L2 hit (+ promotion)"] = rate(k_l1, timed(lambda: side.get_all(first, True)))
    results["invalidate_by_health (below threshold)"] = rate(k_l1, timed(lambda: side.invalidate_all(first)))
    side.close()
    print(f"[{side.name}] default-config phase done", file=sys.stderr)

    # L2 disabled: L3 hits after a reopen.
    root = work / side.name / "no-l2"
    side.open(root, l2=False)
    side.put_all(side.inputs(range(k_l1)))
    side.close()
    side.open(root, l2=False)
    results["get, L3 hit (L2 disabled)"] = rate(k_l1, timed(lambda: side.get_all(first, True)))
    side.close()

    # Export of entries resident in L1.
    root = work / side.name / "export"
    side.open(root)
    side.put_all(side.inputs(range(k_l1)))
    out = root / "export.jsonl"
    exported = {}
    results["export_to_file (per entry)"] = rate(k_l1, timed(lambda: exported.setdefault("n", side.export(out))))
    if exported["n"] != k_l1:
        raise RuntimeError(f"{side.name} exported {exported['n']} of {k_l1}")
    side.close()
    print(f"[{side.name}] L3 and export phases done", file=sys.stderr)

    # Warm from a JSONL file (per line).
    root = work / side.name / "warm"
    side.open(root)
    loaded = {}
    elapsed = timed(lambda: loaded.setdefault("n", side.warm(warm_file)))
    if loaded["n"] != warm_lines:
        raise RuntimeError(f"{side.name} warmed {loaded['n']} of {warm_lines} lines")
    results["warm_from_file JSONL (per line)"] = rate(warm_lines, elapsed)
    side.close()
    print(f"[{side.name}] warm phase done ({warm_lines} lines, {elapsed:.1f} s)", file=sys.stderr)

    if isinstance(side, PwcacheSide):
        root = work / side.name / "put-many"
        side.open(root)
        batch = [{"key": k, **entry} for k, entry in side.inputs(every)]
        stored = {}
        elapsed = timed(lambda: stored.setdefault("n", side.cache.put_many(batch)))
        if stored["n"] != n:
            raise RuntimeError(f"put_many stored {stored['n']} of {n}")
        results[f"put_many ({n} per call, per entry)"] = rate(n, elapsed)
        side.close()
    return results


def soname(lib: Path) -> str:
    """The SONAME recorded in the shared library (binutils' readelf)."""
    dynamic = subprocess.run(["readelf", "-d", str(lib)], check=True, capture_output=True, text=True).stdout
    found = re.search(r"Library soname: \[([^\]]+)\]", dynamic)
    if not found:
        raise RuntimeError(f"{lib} has no SONAME")
    return found.group(1)


def c_l1_get(lib: Path, work: Path, n: int, rounds: int) -> float:
    """Builds benches/c/l1_get.c against `lib` and returns its L1 gets per second."""
    build = work / "c"
    build.mkdir(parents=True, exist_ok=True)
    # Link against a directory that has both the link-time name and the SONAME (the run-time name).
    for name in ("libpwcache.so", soname(lib)):
        (build / name).symlink_to(lib)
    exe = build / "l1_get"
    cc = os.environ.get("CC", "cc")
    subprocess.run(
        [cc, "-O2", "-std=c99", "-D_POSIX_C_SOURCE=200809L", "-I", str(REPO / "include"),
         str(REPO / "benches" / "c" / "l1_get.c"), "-o", str(exe),
         "-L", str(build), "-lpwcache", f"-Wl,-rpath,{build}"],
        check=True,
    )
    data = build / "data"
    data.mkdir()
    out = subprocess.run([str(exe), str(data), str(n), str(rounds)], check=True, capture_output=True, text=True)
    for line in out.stdout.splitlines():
        if line.startswith("l1_get_ops_per_s "):
            return float(line.split()[1])
    raise RuntimeError(f"unexpected output of l1_get: {out.stdout!r}")


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:,.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="entries per run (default 2000)")
    parser.add_argument("--warm-lines", type=int, default=10_000, help="JSONL lines warmed by pwcache")
    parser.add_argument("--pw-warm-lines", type=int, default=1000, help="JSONL lines warmed by proxywhirl")
    parser.add_argument("--l1-rounds", type=int, default=5, help="rounds over the L1-resident keys")
    args = parser.parse_args()
    if args.n < 1 or args.warm_lines < 1 or args.pw_warm_lines < 1 or args.l1_rounds < 1:
        parser.error("every count must be >= 1")

    ensure_venv()
    lib = library_path()
    os.environ["PWCACHE_LIB"] = str(lib)  # the release build, never a debug one found first
    # The same Fernet key for both: credentialed entries stay readable after a reopen.
    fernet_key = base64.urlsafe_b64encode(os.urandom(32)).decode()

    work = Path(tempfile.mkdtemp(prefix="pwcache-compare-"))
    try:
        sides = {}
        for side, lines in ((ProxywhirlSide(fernet_key), args.pw_warm_lines), (PwcacheSide(fernet_key), args.warm_lines)):
            warm_file = work / f"warm-{side.name}.jsonl"
            write_warm_file(warm_file, lines, offset=10 * args.n)
            sides[side.name] = run_side(side, args, work, warm_file, lines)
        c_rate = c_l1_get(lib, work, min(args.n, 1000), max(20, args.l1_rounds))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    import importlib.metadata as md

    pw, ours = sides["proxywhirl"], sides["pwcache"]
    rows = [(op, pw.get(op), ours[op]) for op in ours]
    rows.append(("L1 get from C (pw_cache_get)", None, c_rate))
    width = max(len(r[0]) for r in rows)
    print()
    print(f"proxywhirl {md.version('proxywhirl')} vs pwcache {sys.modules['pwcache'].version()}"
          f" (library {lib}); N={args.n}, warm lines: proxywhirl {args.pw_warm_lines},"
          f" pwcache {args.warm_lines}; Python {sys.version.split()[0]}")
    print(f"| {'operation':<{width}} | proxywhirl ops/s | pwcache ops/s |    ratio |")
    print(f"|{'-' * (width + 2)}|-----------------:|--------------:|---------:|")
    for op, a, b in rows:
        ratio = f"{b / a:,.1f}x" if a else "-"
        print(f"| {op:<{width}} | {fmt(a):>16} | {fmt(b):>13} | {ratio:>8} |")


if __name__ == "__main__":
    main()

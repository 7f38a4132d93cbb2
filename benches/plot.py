#!/usr/bin/env python3
"""Tables and SVG plots of pwcache's criterion results, with the standard library only.

    python3 benches/plot.py [CRITERION_DIR] [--out docs/img]

CRITERION_DIR defaults to target/criterion (with CARGO_TARGET_DIR set, $CARGO_TARGET_DIR/criterion).
It reads every <group>/<function>/new/{benchmark,estimates}.json, prints Markdown tables
(throughput, time per operation and the ratio to the peer) and writes one SVG per bench target
into the output directory.
"""

import json
import math
import os
import sys
from html import escape

PEERS = {"l1_": "moka", "sqlite_": "raw_rusqlite", "warm_l3": "raw_rusqlite"}
COLORS = {
    "pwcache": "#1f77b4",
    "moka": "#ff7f0e",
    "quick_cache": "#2ca02c",
    "raw_rusqlite": "#7f7f7f",
}
SERIES_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"]


def load(root):
    """{group: {function: (ns per iteration, elements per iteration)}}"""
    results = {}
    for dirpath, _dirs, files in os.walk(root):
        if os.path.basename(dirpath) != "new" or "estimates.json" not in files:
            continue
        with open(os.path.join(dirpath, "benchmark.json")) as f:
            bench = json.load(f)
        with open(os.path.join(dirpath, "estimates.json")) as f:
            est = json.load(f)
        ns = est["mean"]["point_estimate"]
        elements = (bench.get("throughput") or {}).get("Elements", 1)
        function = bench.get("function_id") or bench.get("value_str") or ""
        if bench.get("value_str") and bench.get("function_id"):
            function = f"{bench['function_id']}/{bench['value_str']}"
        results.setdefault(bench["group_id"], {})[function] = (ns, elements)
    return results


def per_op_ns(value):
    ns, elements = value
    return ns / elements


def ops_per_s(value):
    return 1e9 / per_op_ns(value)


def human_rate(r):
    for unit, scale in (("M", 1e6), ("k", 1e3)):
        if r >= scale:
            return f"{r / scale:.2f} {unit}/s"
    return f"{r:.0f} /s"


def human_time(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.1f} ns"


def peer_of(group):
    for prefix, peer in PEERS.items():
        if group.startswith(prefix):
            return peer
    return None


def tables(results):
    out = []
    by_target = {"l1_peers": [], "sqlite_limit": [], "scaling": [], "cache": []}
    for group in sorted(results):
        if group.startswith("l1_"):
            by_target["l1_peers"].append(group)
        elif group.startswith(("sqlite_", "warm_l3")):
            by_target["sqlite_limit"].append(group)
        elif group.startswith("scaling_"):
            by_target["scaling"].append(group)
        else:
            by_target["cache"].append(group)
    for target, groups in by_target.items():
        if not groups:
            continue
        out.append(f"### {target}\n")
        if target in ("l1_peers", "sqlite_limit"):
            out.append("| group | implementation | time/op | throughput | ratio to peer |")
            out.append("|---|---|---:|---:|---:|")
            for g in groups:
                peer = results[g].get(peer_of(g))
                for fn in sorted(results[g], key=lambda f: (f != "pwcache", f)):
                    v = results[g][fn]
                    ratio = f"{ops_per_s(v) / ops_per_s(peer):.2f}×" if peer else "—"
                    if fn == peer_of(g):
                        ratio = "1.00× (peer)"
                    out.append(
                        f"| {g} | {fn} | {human_time(per_op_ns(v))} | "
                        f"{human_rate(ops_per_s(v))} | {ratio} |"
                    )
        elif target == "scaling":
            out.append("| group | entries | time/op | throughput | vs 1k |")
            out.append("|---|---:|---:|---:|---:|")
            for g in groups:
                sizes = sorted(results[g], key=int)
                base = per_op_ns(results[g][sizes[0]])
                for n in sizes:
                    v = results[g][n]
                    out.append(
                        f"| {g} | {int(n):,} | {human_time(per_op_ns(v))} | "
                        f"{human_rate(ops_per_s(v))} | {per_op_ns(v) / base:.2f}× |"
                    )
        else:
            out.append("| benchmark | time/op (per entry for warm, export) | throughput |")
            out.append("|---|---:|---:|")
            for g in groups:
                for fn in sorted(results[g]):
                    v = results[g][fn]
                    out.append(
                        f"| {g}/{fn} | {human_time(per_op_ns(v))} | {human_rate(ops_per_s(v))} |"
                    )
        out.append("")
    return "\n".join(out)


# ---- SVG ---------------------------------------------------------------------------------------


def svg_doc(width, height, body, title):
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">\n'
        f'<rect width="100%" height="100%" fill="white"/>\n'
        f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="15" '
        f'font-weight="bold">{escape(title)}</text>\n' + "\n".join(body) + "\n</svg>\n"
    )


def text(x, y, s, anchor="start", size=12, extra=""):
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" {extra}>'
        f"{escape(s)}</text>"
    )


def grouped_ratio_chart(results, groups, title, subtitle):
    """One panel per group; bars are throughput relative to the group's peer (peer = 1.0)."""
    functions = []
    for g in groups:
        for fn in sorted(results[g], key=lambda f: (f != "pwcache", f)):
            if fn not in functions:
                functions.append(fn)
    bar_w, gap, left, top, plot_h = 22, 26, 60, 70, 260
    group_w = bar_w * len(functions) + gap
    width = left + group_w * len(groups) + 40
    height = top + plot_h + 130
    top_ratio = 0.0
    for g in groups:
        peer = results[g].get(peer_of(g))
        for v in results[g].values():
            top_ratio = max(top_ratio, ops_per_s(v) / ops_per_s(peer) if peer else 1)
    top_ratio = max(1.2, math.ceil(top_ratio * 5 + 0.5) / 5)
    y_of = lambda r: top + plot_h - r / top_ratio * plot_h  # noqa: E731
    body = [text(width / 2, 40, subtitle, "middle", 11)]
    step = 0.2 if top_ratio <= 2 else 0.5 if top_ratio <= 5 else 1.0
    r = 0.0
    while r <= top_ratio + 1e-9:
        y = y_of(r)
        body.append(f'<line x1="{left}" x2="{width - 30}" y1="{y:.1f}" y2="{y:.1f}" '
                    f'stroke="{"#444" if abs(r - 1) < 1e-9 else "#ddd"}"/>')
        body.append(text(left - 6, y + 4, f"{r:.1f}×", "end", 10))
        r += step
    for i, g in enumerate(groups):
        x0 = left + gap / 2 + i * group_w
        peer = results[g].get(peer_of(g))
        for j, fn in enumerate(functions):
            if fn not in results[g] or not peer:
                continue
            ratio = ops_per_s(results[g][fn]) / ops_per_s(peer)
            x = x0 + j * bar_w
            y = y_of(ratio)
            body.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w - 3}" '
                        f'height="{top + plot_h - y:.1f}" fill="{COLORS.get(fn, "#999")}">'
                        f"<title>{escape(g)} {escape(fn)}: "
                        f"{escape(human_rate(ops_per_s(results[g][fn])))}</title></rect>")
            body.append(text(x + (bar_w - 3) / 2, y - 3, f"{ratio:.2f}", "middle", 9))
        label_x = x0 + (group_w - gap) / 2
        body.append(text(label_x, top + plot_h + 14, g, "end", 10,
                         f'transform="rotate(-35 {label_x:.1f} {top + plot_h + 14})"'))
    for j, fn in enumerate(functions):
        y = height - 18 - 16 * (len(functions) - 1 - j)
        body.append(f'<rect x="{width - 170}" y="{y - 10}" width="12" height="12" '
                    f'fill="{COLORS.get(fn, "#999")}"/>')
        body.append(text(width - 152, y, fn))
    return svg_doc(width, height, body, title)


def scaling_chart(results, groups, title):
    """ns per get against entries, log-log, one line per group."""
    left, top, plot_w, plot_h = 80, 50, 520, 300
    width, height = left + plot_w + 40, top + plot_h + 70 + 18 * len(groups)
    points = {g: sorted((int(n), per_op_ns(v)) for n, v in results[g].items()) for g in groups}
    xs = [n for p in points.values() for n, _ in p]
    ys = [t for p in points.values() for _, t in p]
    x_lo, x_hi = math.log10(min(xs)), math.log10(max(xs))
    y_lo, y_hi = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))
    if x_hi == x_lo:
        x_hi += 1
    if y_hi == y_lo:
        y_hi += 1
    x_of = lambda n: left + (math.log10(n) - x_lo) / (x_hi - x_lo) * plot_w  # noqa: E731
    y_of = lambda t: top + plot_h - (math.log10(t) - y_lo) / (y_hi - y_lo) * plot_h  # noqa: E731
    body = []
    for e in range(int(y_lo), int(y_hi) + 1):
        y = y_of(10 ** e)
        body.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        body.append(text(left - 6, y + 4, human_time(10 ** e), "end", 10))
    for n in sorted(set(xs)):
        x = x_of(n)
        body.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + plot_h}" stroke="#eee"/>')
        body.append(text(x, top + plot_h + 16, f"{n:,}", "middle", 10))
    body.append(text(left + plot_w / 2, top + plot_h + 34, "entries in the cache", "middle", 11))
    for k, g in enumerate(groups):
        color = SERIES_COLORS[k % len(SERIES_COLORS)]
        path = " ".join(f"{x_of(n):.1f},{y_of(t):.1f}" for n, t in points[g])
        body.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for n, t in points[g]:
            body.append(f'<circle cx="{x_of(n):.1f}" cy="{y_of(t):.1f}" r="3" fill="{color}">'
                        f"<title>{escape(g)} {n}: {escape(human_time(t))}</title></circle>")
            body.append(text(x_of(n) + 5, y_of(t) - 5, human_time(t), "start", 9))
        y = top + plot_h + 56 + 18 * k
        body.append(f'<rect x="{left}" y="{y - 10}" width="12" height="12" fill="{color}"/>')
        body.append(text(left + 18, y, g))
    return svg_doc(width, height, body, title)


def time_chart(results, groups, title):
    """Horizontal bars of time per operation (log scale), one per benchmark."""
    rows = [(f"{g}/{fn}", per_op_ns(results[g][fn])) for g in groups for fn in sorted(results[g])]
    left, top, bar_h, plot_w = 260, 40, 20, 440
    width, height = left + plot_w + 90, top + bar_h * len(rows) + 50
    lo = math.floor(math.log10(min(t for _, t in rows)))
    hi = math.ceil(math.log10(max(t for _, t in rows)))
    if hi == lo:
        hi += 1
    x_of = lambda t: left + (math.log10(t) - lo + 0.0) / (hi - lo) * plot_w  # noqa: E731
    body = []
    for e in range(lo, hi + 1):
        x = x_of(10 ** e)
        body.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + bar_h * len(rows)}" stroke="#ddd"/>')
        body.append(text(x, top + bar_h * len(rows) + 16, human_time(10 ** e), "middle", 10))
    body.append(text(left + plot_w / 2, height - 10,
                     "time per operation (per entry for warm and export), log scale", "middle", 11))
    for i, (name, t) in enumerate(rows):
        y = top + i * bar_h
        body.append(text(left - 6, y + bar_h - 6, name, "end", 11))
        body.append(f'<rect x="{left}" y="{y + 2}" width="{max(1.0, x_of(t) - left):.1f}" '
                    f'height="{bar_h - 4}" fill="#1f77b4"/>')
        body.append(text(x_of(t) + 4, y + bar_h - 6, human_time(t), "start", 10))
    return svg_doc(width, height, body, title)


def out_dir_and_args(argv):
    """(the directory after --out, docs/img by default; the other arguments)"""
    out_dir = "docs/img"
    args = []
    i = 0
    while i < len(argv):
        if argv[i] == "--out":
            out_dir = argv[i + 1]
            i += 2
        else:
            args.append(argv[i])
            i += 1
    return out_dir, args


def main(argv):
    out_dir, args = out_dir_and_args(argv)
    root = args[0] if args else "target/criterion"
    results = load(root)
    if not results:
        sys.exit(f"no criterion results under {root}")
    print(tables(results))
    os.makedirs(out_dir, exist_ok=True)
    groups = sorted(results)
    charts = {
        "l1_peers.svg": lambda gs: grouped_ratio_chart(
            results, gs, "L1 against moka and quick_cache",
            "throughput relative to moka (1.0 = moka), same keys, values, capacity"),
        "sqlite_limit.svg": lambda gs: grouped_ratio_chart(
            results, gs, "SQLite tier against raw rusqlite",
            "throughput relative to raw rusqlite on the same schema and pragmas (1.0 = raw)"),
        "scaling.svg": lambda gs: scaling_chart(results, gs, "Get cost against cache size"),
        "cache.svg": lambda gs: time_chart(results, gs, "Cache operations (default configuration)"),
    }
    selectors = {
        "l1_peers.svg": lambda g: g.startswith("l1_"),
        "sqlite_limit.svg": lambda g: g.startswith(("sqlite_", "warm_l3")),
        "scaling.svg": lambda g: g.startswith("scaling_"),
        "cache.svg": lambda g: not g.startswith(("l1_", "sqlite_", "warm_l3", "scaling_")),
    }
    for name, chart in charts.items():
        gs = [g for g in groups if selectors[name](g)]
        if not gs:
            continue
        path = os.path.join(out_dir, name)
        with open(path, "w") as f:
            f.write(chart(gs))
        print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])

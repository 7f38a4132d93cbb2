#!/usr/bin/env python3
"""Plots of `cargo bench --bench speed` (SVG, standard library only), one or more runs side by side.

    python3 benches/plot_speed.py [LABEL=DIR ...] [--out docs/img]

Each DIR holds the medians that a run saved (threads.json, processes.json, tiers.json; by default
the run writes them to target/speed, or to $PWCACHE_SPEED_OUT). Without arguments: now=target/speed.
Writes speed_threads.svg, speed_processes.svg and speed_tiers.svg for the parts present, each
figure a ratio inside one run, as the targets of docs/benchmarks.md are.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from plot import SERIES_COLORS, escape, out_dir_and_args, svg_doc, text  # noqa: E402

DASHES = ["", "6,4", "2,3", "10,3,2,3"]


def load_runs(pairs):
    """[(label, {part: {case: ns}})]"""
    runs = []
    for pair in pairs:
        label, _, directory = pair.partition("=")
        if not directory:
            label, directory = os.path.basename(os.path.normpath(pair)), pair
        parts = {}
        for part in ("threads", "processes", "tiers"):
            path = os.path.join(directory, f"{part}.json")
            if os.path.exists(path):
                with open(path) as f:
                    parts[part] = json.load(f)["ns_per_op"]
        if not parts:
            sys.exit(f"no saved medians under {directory}")
        runs.append((label, parts))
    return runs


def lines_chart(title, subtitle, xs, x_label, series, target, connect=True):
    """series: [(name, color, dash, [ratio per x])]; a ratio of 1 is the reference line. Without
    `connect`, points only (the x values are separate cases, not a scale), each labelled."""
    left, top, plot_w, plot_h = 70, 60, 460, 300
    width, height = left + plot_w + 250, top + plot_h + 60
    y_hi = max([target * 1.1] + [r for *_, rs in series for r in rs if r is not None])
    y_hi = max(1.0, round(y_hi * 2 + 0.5) / 2)
    x_of = lambda i: left + (i + 0.5) / len(xs) * plot_w  # noqa: E731
    y_of = lambda r: top + plot_h - r / y_hi * plot_h  # noqa: E731
    body = [text(left + plot_w / 2, 40, subtitle, "middle", 11)]
    step = 0.5 if y_hi <= 4 else 1.0
    r = 0.0
    while r <= y_hi + 1e-9:
        y = y_of(r)
        colour = "#444" if abs(r - 1) < 1e-9 else "#ddd"
        body.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="{colour}"/>')
        body.append(text(left - 6, y + 4, f"{r:.1f}×", "end", 10))
        r += step
    y = y_of(target)
    body.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
                f'stroke="#d62728" stroke-dasharray="4,3"/>')
    body.append(text(left + plot_w - 4, y - 4, f"target {target}×", "end", 10, 'fill="#d62728"'))
    for i, x in enumerate(xs):
        body.append(text(x_of(i), top + plot_h + 16, str(x), "middle", 10))
    body.append(text(left + plot_w / 2, top + plot_h + 36, x_label, "middle", 11))
    for k, (name, colour, dash, ratios) in enumerate(series):
        points = [(x_of(i), y_of(r)) for i, r in enumerate(ratios) if r is not None]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        if connect:
            body.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2" '
                        f'stroke-dasharray="{dash}"/>')
        shift = (k - (len(series) - 1) / 2) * 40 if not connect else 0
        for (x, y), r in zip(points, [r for r in ratios if r is not None]):
            body.append(f'<circle cx="{x + shift:.1f}" cy="{y:.1f}" r="{3 if connect else 5}" fill="{colour}">'
                        f"<title>{escape(name)}: {r:.2f}×</title></circle>")
            if not connect:
                body.append(text(x + shift, y - 9, f"{r:.2f}×", "middle", 10))
        ly = top + 10 + 18 * k
        body.append(f'<line x1="{left + plot_w + 20}" x2="{left + plot_w + 44}" y1="{ly - 4}" '
                    f'y2="{ly - 4}" stroke="{colour}" stroke-width="2" stroke-dasharray="{dash}"/>')
        body.append(text(left + plot_w + 50, ly, name, "start", 11))
    return svg_doc(width, height, body, title)


def scaling_series(runs, part, ops, counts, prefix):
    series = []
    for j, (label, parts) in enumerate(runs):
        cases = parts.get(part)
        if not cases:
            continue
        for k, op in enumerate(ops):
            one = cases.get(f"{op}/{prefix}1")
            if not one:
                continue
            ratios = [one / cases[f"{op}/{prefix}{n}"] if f"{op}/{prefix}{n}" in cases else None
                      for n in counts]
            name = f"{op}, {label}" if len(runs) > 1 else op
            series.append((name, SERIES_COLORS[k % len(SERIES_COLORS)], DASHES[j % len(DASHES)], ratios))
    return series


def tiers_chart(runs):
    """The three ratios of the tiers part, one line per run, against their 1.3× target."""
    ratios = [("L2 hit: SQLite / L3", "l2_hit/sqlite", "l3_hit"),
              ("put: SQLite / JSONL backend", "put/sqlite", "put/jsonl"),
              ("miss: SQLite / JSONL backend", "miss/sqlite", "miss/jsonl")]
    series = []
    for j, (label, parts) in enumerate(runs):
        cases = parts.get("tiers")
        if not cases:
            continue
        values = [cases[a] / cases[b] if a in cases and b in cases else None for _, a, b in ratios]
        series.append((label, SERIES_COLORS[j % len(SERIES_COLORS)], "", values))
    if not series:
        return None
    return lines_chart("SQLite L2 backend against its peers",
                       "time ratio in one run (below the target is better)",
                       [name for name, *_ in ratios], "", series, 1.3, connect=False)


def main(argv):
    out_dir, pairs = out_dir_and_args(argv)
    runs = load_runs(pairs or ["now=target/speed"])
    os.makedirs(out_dir, exist_ok=True)
    charts = {
        "speed_threads.svg": lambda: lines_chart(
            "Writers on one handle", "throughput against one thread, same run (higher is better)",
            [1, 2, 4, 8, 64], "threads",
            scaling_series(runs, "threads", ["put/jsonl", "put/sqlite", "health/jsonl", "health/sqlite"],
                           [1, 2, 4, 8, 64], "t"), 3.0),
        "speed_processes.svg": lambda: lines_chart(
            "Processes writing one store", "throughput against one process, same run (higher is better)",
            [1, 2, 4], "processes",
            scaling_series(runs, "processes", ["put/jsonl", "put/sqlite"], [1, 2, 4], "p"), 1.5),
        "speed_tiers.svg": lambda: tiers_chart(runs),
    }
    for name, chart in charts.items():
        svg = chart()
        if svg is None or "<circle" not in svg:
            continue
        path = os.path.join(out_dir, name)
        with open(path, "w") as f:
            f.write(svg)
        print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])

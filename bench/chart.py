#!/usr/bin/env python3
"""Draws a results file of bench/stores.sh as a PNG: requests/s (median) of the token
endpoint and the protected route on each store beside their same-run ceilings, with the
ratio above each library bar and token p99 in the axis labels.

    pip install -r bench/requirements.txt
    python3 bench/chart.py bench/results/<date>-stores.txt docs/images/benchmarks-stores.png
"""
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import summarize  # noqa: E402  (bench/summarize.py, beside this file)


def main(src, dst):
    rows = summarize.load(src)
    stores = [s for s in summarize.STORES if any(k[0] == s for k in rows)]
    if not stores:
        sys.exit(f"no run lines in {src}")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    panels = [
        ("POST /oauth2/token (client_credentials)", "token_ceiling", "token", []),
        ("GET /protected (#[oauth])", "protected_ceiling", "protected", ["protected_cache"]),
    ]
    for ax, (title, ceil, lib, extra) in zip(axes, panels):
        names = [ceil, lib] + [e for e in extra if any((s, e) in rows for s in stores)]
        width = 0.8 / len(names)
        colors = {"token_ceiling": "#bbbbbb", "protected_ceiling": "#bbbbbb",
                  "token": "#3366aa", "protected": "#3366aa", "protected_cache": "#55aa55"}
        labels = {"token_ceiling": "ceiling (same statement, no library)",
                  "protected_ceiling": "ceiling (same statement, no library)",
                  "token": "twisted-oauth2", "protected": "twisted-oauth2",
                  "protected_cache": "twisted-oauth2, validation cache"}
        for j, name in enumerate(names):
            xs, ys = [], []
            for i, s in enumerate(stores):
                v = summarize.med(rows, s, name, "rps")
                if v is not None:
                    xs.append(i + (j - (len(names) - 1) / 2) * width)
                    ys.append(v)
            bars = ax.bar(xs, ys, width, color=colors[name], label=labels[name])
            if name != ceil:
                for x, y, s in zip(xs, ys, [s for s in stores if summarize.med(rows, s, name, "rps")]):
                    c = summarize.med(rows, s, ceil, "rps")
                    if c:
                        ax.annotate(f"{y / c:.2f}×", (x, y), ha="center", va="bottom", fontsize=8)
            del bars
        ticks = []
        for s in stores:
            p99 = summarize.med(rows, s, lib, "p99_ms")
            ticks.append(f"{s}\np99 {p99:.1f} ms" if p99 is not None else s)
        ax.set_xticks(range(len(stores)), ticks)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel("requests/s (median)")
        ax.legend(fontsize=7, loc="upper right")
        ax.grid(axis="y", alpha=0.3)
    header = next((line[2:].strip() for line in open(src) if line.startswith("# ")), "")
    fig.suptitle(f"twisted-oauth2 per store vs same-run ceilings\n{header}", fontsize=8)
    fig.tight_layout()
    fig.savefig(dst, dpi=110)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: chart.py RESULTS_FILE OUT.png")
    main(sys.argv[1], sys.argv[2])

#!/usr/bin/env python3
"""Draws results files of bench/stores.sh as a PNG: requests/s (median) of the token
endpoint and the protected route on each store beside their same-run ceilings, with the
ratio above each library bar and the library's p99 in the axis labels; when the file holds
a `CACHE=1` run (or a second file is given), a third panel: the protected route with the
validation cache on each store beside the memory store's protected route of that run.

    pip install -r bench/requirements.txt
    python3 bench/chart.py bench/results/<date>-stores.txt [<cache run>] docs/images/benchmarks-stores.png
"""
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import summarize  # noqa: E402  (bench/summarize.py, beside this file)


COLORS = {"ceiling": "#bbbbbb", "lib": "#3366aa", "cache": "#55aa55", "memory": "#aa7733"}


def bars(ax, groups, series, title, ref_label=None):
    """groups: x labels; series: [(label, color, [value or None per group], ratio_to)]."""
    width = 0.8 / len(series)
    for j, (label, color, vals, ratio_to) in enumerate(series):
        for i, v in enumerate(vals):
            if v is None:
                continue
            x = i + (j - (len(series) - 1) / 2) * width
            ax.bar(x, v, width, color=color, label=label if i == next(
                k for k, w in enumerate(vals) if w is not None) else None)
            if ratio_to is not None and ratio_to[i]:
                ax.annotate(f"{v / ratio_to[i]:.2f}×", (x, v), ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(groups)), groups, fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.set_ylabel("requests/s (median)")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(axis="y", alpha=0.3)


def main(srcs, dst):
    rows = summarize.load(srcs[0])
    stores = [s for s in summarize.STORES if any(k[0] == s for k in rows)]
    if not stores:
        sys.exit(f"no run lines in {srcs[0]}")
    if len(srcs) > 1:
        cache_rows = summarize.load(srcs[1])
    else:
        cache_rows = rows if any(k[1] == "protected_cache" for k in rows) else None
    fig, axes = plt.subplots(1, 3 if cache_rows else 2, figsize=(15 if cache_rows else 11, 4.4))
    for ax, (title, ceil, lib) in zip(axes, [
            ("POST /oauth2/token (client_credentials)", "token_ceiling", "token"),
            ("GET /protected (#[oauth])", "protected_ceiling", "protected")]):
        c = [summarize.med(rows, s, ceil, "rps") for s in stores]
        v = [summarize.med(rows, s, lib, "rps") for s in stores]
        groups = []
        for s in stores:
            p99 = summarize.med(rows, s, lib, "p99_ms")
            groups.append(f"{s}\np99 {p99:.1f} ms" if p99 is not None else s)
        bars(ax, groups, [("ceiling: same statement, same driver, no library", COLORS["ceiling"], c, None),
                          ("twisted-oauth2", COLORS["lib"], v, c)], title)
    if cache_rows:
        shared = [s for s in summarize.STORES if s != "memory" and (s, "protected_cache") in cache_rows]
        mem = summarize.med(cache_rows, "memory", "protected", "rps")
        ref = [mem] * len(shared)
        bars(axes[2], shared, [
            ("memory store, GET /protected", COLORS["memory"], [mem] * len(shared), None),
            ("no cache", COLORS["lib"], [summarize.med(cache_rows, s, "protected", "rps") for s in shared], ref),
            ("validation cache on", COLORS["cache"],
             [summarize.med(cache_rows, s, "protected_cache", "rps") for s in shared], ref)],
            "GET /protected with the validation cache (ratios: / memory store)")
    header = " | ".join(next((line[2:].strip() for line in open(f) if line.startswith("# ")), "") for f in srcs)
    fig.suptitle(f"twisted-oauth2 per store against same-run ceilings\n{header}", fontsize=7)
    fig.tight_layout()
    fig.savefig(dst, dpi=110)


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit("usage: chart.py RESULTS_FILE [CACHE_RESULTS_FILE] OUT.png")
    main(sys.argv[1:-1], sys.argv[-1])

#!/usr/bin/env python3
"""Draws results files of bench/stores.sh as a PNG: requests/s (median) of the token
endpoint and the protected route on each store beside their same-run ceilings, with the
ratio above each library bar and the library's p99 in the axis labels; when the file holds
a `CACHE=1` run (or a second file is given), a third panel: the protected route with the
validation cache on each store beside the memory store's protected route of that run.

    pip install -r bench/requirements.txt
    python3 bench/chart.py bench/results/<date>-stores.txt [<cache run>] docs/images/benchmarks-stores.png

With `--run`, draws a results file of `FORMAT=jwt bench/run.sh` instead: requests/s of
`/protected` beside `/open` (opaque on the memory store, JWT on the memory store, JWT on
PostgreSQL) and of the token endpoint (opaque on the memory store beside its `/form`
ceiling, JWT on PostgreSQL beside the opaque memory-store token), with the ratios; given
the output of `cargo bench --bench jwt` too, a third panel with signing and first-seen
verification per algorithm:

    python3 bench/chart.py --run bench/results/<date>-jwt-run.txt [<criterion output>] docs/images/benchmarks-jwt.png
"""
import collections
import re
import statistics
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


def load_run(path):
    """Run lines of bench/run.sh (`<route> run<i> key=value ...`): lists of dicts per route."""
    rows = collections.defaultdict(list)
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 3 or not parts[1].startswith("run") or "=" not in parts[2]:
                continue
            kv = {}
            for p in parts[2:]:
                k, _, v = p.partition("=")
                try:
                    kv[k] = float(v)
                except ValueError:
                    pass
            rows[parts[0]].append(kv)
    return rows


def run_med(rows, route, key="rps"):
    vals = [r[key] for r in rows.get(route, []) if key in r]
    return statistics.median(vals) if vals else None


UNITS = {"ns": 1e-3, "µs": 1.0, "us": 1.0, "ms": 1e3, "s": 1e6}


def load_criterion(path):
    """`jwt/<what>/<alg>` → the median estimate in µs, from criterion's console output."""
    text = open(path, encoding="utf-8").read()
    out = {}
    pat = re.compile(r"^(jwt/\S+)\s+time:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]", re.M)
    for name, value, unit in pat.findall(text):
        out[name] = float(value) * UNITS[unit]
    return out


def main_run(src, crit, dst):
    rows = load_run(src)
    if not rows:
        sys.exit(f"no run lines in {src}")
    panels = 3 if crit else 2
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 4.6))
    gets = [(label, a, b) for label, a, b in [
        ("opaque token\nmemory store", "open", "protected"),
        ("repeat JWT\nmemory store", "open_jwt", "protected_jwt"),
        ("repeat JWT\nPostgreSQL", "open_pg", "protected_jwt_pg")] if a in rows and b in rows]
    groups = [f"{label}\np99 {run_med(rows, b, 'p99_ms'):.1f} ms" for label, _, b in gets]
    ceil = [run_med(rows, a) for _, a, _ in gets]
    bars(axes[0], groups, [
        ("GET /open (same Authorization header)", COLORS["ceiling"], ceil, None),
        ("GET /protected (#[oauth])", COLORS["lib"], [run_med(rows, b) for _, _, b in gets], ceil)],
        "GET /protected beside /open (ratios: / open)")
    form, tok, tok_opaque, tok_pg = (run_med(rows, r) for r in ("form", "token", "token_opaque",
                                                                 "token_jwt_pg"))
    groups = ["opaque, memory store\n(beside POST /form)", "JWT, PostgreSQL\n(beside opaque, memory)"]
    bars(axes[1], groups, [
        ("ceiling: POST /form / opaque token on memory", COLORS["ceiling"], [form, tok_opaque], None),
        ("POST /oauth2/token (client_credentials)", COLORS["lib"], [tok, tok_pg], [form, tok_opaque])],
        "token issuance (ratios: / ceiling)")
    for ax in axes[:2]:  # room above the bars for the legend
        ax.set_ylim(0, ax.get_ylim()[1] * 1.3)
        ax.legend(fontsize=7, loc="upper right")
    if crit:
        algs = ["EdDSA", "ES256", "RS256"]
        width = 0.38
        for j, (what, color, label) in enumerate([
                ("sign", COLORS["memory"], "sign"),
                ("verify_first_seen", COLORS["lib"], "verify, first seen")]):
            vals = [crit.get(f"jwt/{what}/{a}") for a in algs]
            xs = [i + (j - 0.5) * width for i in range(len(algs))]
            axes[2].bar([x for x, v in zip(xs, vals) if v is not None],
                        [v for v in vals if v is not None], width, color=color, label=label)
            for x, v in zip(xs, vals):
                if v is not None:
                    axes[2].annotate(f"{v:.1f}", (x, v), ha="center", va="bottom", fontsize=7)
        axes[2].set_xticks(range(len(algs)), algs, fontsize=8)
        axes[2].set_yscale("log")
        axes[2].set_ylim(1, axes[2].get_ylim()[1] * 3)
        axes[2].set_ylabel("µs per operation (criterion median, log scale)")
        axes[2].set_title("JWT per algorithm, one thread (cargo bench --bench jwt)", fontsize=9)
        axes[2].legend(fontsize=7, loc="upper left")
        axes[2].grid(axis="y", alpha=0.3)
    header = next((line[2:].strip() for line in open(src) if line.startswith("# ")), "")
    fig.suptitle(f"twisted-oauth2 JWT access tokens against same-run ceilings\n{header}", fontsize=7)
    fig.tight_layout()
    fig.savefig(dst, dpi=110)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--run":
        if len(sys.argv) not in (4, 5):
            sys.exit("usage: chart.py --run RUN_RESULTS_FILE [CRITERION_OUTPUT] OUT.png")
        main_run(sys.argv[2], load_criterion(sys.argv[3]) if len(sys.argv) == 5 else None,
                 sys.argv[-1])
    else:
        if len(sys.argv) not in (3, 4):
            sys.exit("usage: chart.py RESULTS_FILE [CACHE_RESULTS_FILE] OUT.png")
        main(sys.argv[1:-1], sys.argv[-1])

#!/usr/bin/env python3
"""Summarizes bench/stores.sh run lines: a table of medians per store and route, and the
ratios against the ceilings measured in the same run.

    python3 bench/summarize.py bench/results/<date>-stores.txt

Input lines: `<store> <route> run<i> requests=.. rps=.. p50_ms=.. p99_ms=.. bad_status=..
sock_err=.. cpu_us_per_req=.. rss_mb=..`; other lines are ignored.
"""
import collections
import statistics
import sys

STORES = ["memory", "sqlite", "postgres", "redis"]
ROUTES = ["token_ceiling", "token", "protected_ceiling", "protected", "cache_ceiling",
          "protected_cache"]


def load(path):
    """Rows per (store, route): a list of dicts of floats, in run order."""
    rows = collections.defaultdict(list)
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 4 or not parts[2].startswith("run") or "=" not in parts[3]:
                continue
            kv = {}
            for p in parts[3:]:
                k, _, v = p.partition("=")
                try:
                    kv[k] = float(v)
                except ValueError:
                    pass
            rows[(parts[0], parts[1])].append(kv)
    return rows


def med(rows, store, route, key):
    vals = [r[key] for r in rows.get((store, route), []) if key in r]
    return statistics.median(vals) if vals else None


def pair_ratios(rows, store, a, b):
    """Per-run ratios b/a of requests/s (runs alternate, so run i of each is a pair)."""
    xs, ys = rows.get((store, a), []), rows.get((store, b), [])
    return [y["rps"] / x["rps"] for x, y in zip(xs, ys) if x.get("rps")]


def main(path):
    rows = load(path)
    stores = [s for s in STORES if any(k[0] == s for k in rows)]
    print("\n| store | route | req/s | p50 ms | p99 ms | server CPU µs/req | RSS MiB | bad + socket errors |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for s in stores:
        for r in ROUTES:
            if (s, r) not in rows:
                continue
            bad = sum(int(x.get("bad_status", 0) + x.get("sock_err", 0)) for x in rows[(s, r)])
            print(f"| {s} | {r} | {med(rows, s, r, 'rps'):.0f} | {med(rows, s, r, 'p50_ms'):.3f} "
                  f"| {med(rows, s, r, 'p99_ms'):.3f} | {med(rows, s, r, 'cpu_us_per_req'):.1f} "
                  f"| {med(rows, s, r, 'rss_mb'):.0f} | {bad} |")
    print()
    mem_prot = med(rows, "memory", "protected", "rps")
    for s in stores:
        for a, b, target in [("token_ceiling", "token", 0.8), ("protected_ceiling", "protected", None),
                             ("cache_ceiling", "protected_cache", None)]:
            ca, cb = med(rows, s, a, "rps"), med(rows, s, b, "rps")
            if ca and cb:
                per = ", ".join(f"{x:.2f}" for x in pair_ratios(rows, s, a, b))
                t = f" (target >= {target})" if target else ""
                print(f"{s}: {b} / {a} = {cb / ca:.3f}{t}; per pair {per}")
        p99 = med(rows, s, "token", "p99_ms")
        if p99 is not None:
            print(f"{s}: token p99 = {p99:.2f} ms (target <= 10 ms)")
        pc = med(rows, s, "protected_cache", "rps")
        if pc and mem_prot:
            print(f"{s}: protected_cache / memory protected = {pc / mem_prot:.3f} (target >= 0.8)")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: summarize.py RESULTS_FILE")
    main(sys.argv[1])

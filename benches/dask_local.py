#!/usr/bin/env python3
"""Dask's threaded scheduler on the graphs of benches/local.rs.

The same graphs, with the same key names, as dask dict graphs computed with
``dask.threaded.get(dsk, root, num_workers=T)`` for T = 1 and 2. Only graph
execution is timed (the ``get`` call, which includes Dask's own ordering, as
rask's ``compute`` includes its planning); building the dict is not.

Output: one JSON object per line on stdout, the format benches/local.rs
prints; a summary on stderr.

    python benches/dask_local.py [--quick] [--only PREFIX]
"""

import argparse
import gc
import json
import operator
import os
import statistics
import sys
import time

import dask
from dask.threaded import get as threaded_get

FANIN = 8


def noop(*args):
    return None


def inc(x):
    return x + 1


def noop_tree(n):
    """n noop() leaves and a fan-in-8 tree of noop(children...) above them."""
    dsk = {f"n-{i}": (noop,) for i in range(n)}
    level = [f"n-{i}" for i in range(n)]
    depth = 0
    while len(level) > 1:
        depth += 1
        nxt = []
        for j in range(0, (len(level) + FANIN - 1) // FANIN):
            key = f"t-{depth}-{j}"
            dsk[key] = (noop, *level[j * FANIN:(j + 1) * FANIN])
            nxt.append(key)
        level = nxt
    return dsk, level[0], None


def chain(n):
    dsk = {"c-0": (inc, 0)}
    for i in range(1, n):
        dsk[f"c-{i}"] = (inc, f"c-{i - 1}")
    return dsk, f"c-{n - 1}", n


def tree_reduce(depth):
    n = 1 << depth
    dsk = {f"l-{i}": (inc, i) for i in range(n)}
    level = [f"l-{i}" for i in range(n)]
    d = 0
    while len(level) > 1:
        d += 1
        nxt = []
        for j in range(len(level) // 2):
            key = f"a-{d}-{j}"
            dsk[key] = (operator.add, level[2 * j], level[2 * j + 1])
            nxt.append(key)
        level = nxt
    return dsk, level[0], n * (n + 1) // 2


def cpus_allowed():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Cpus_allowed_list:"):
                    return line.split()[1]
    except OSError:
        pass
    return "?"


def time_runs(fn, warmup, reps):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(reps):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), min(ts), reps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default=None)
    args = ap.parse_args()
    cpus = cpus_allowed()
    print(f"dask {dask.__version__} threaded scheduler (cpus allowed: {cpus})", file=sys.stderr)

    benches = [
        ("noop_1", lambda: noop_tree(1), 5, 101),
        ("noop_tree_10k", lambda: noop_tree(10_000), 1, 5),
        ("noop_tree_100k", lambda: noop_tree(100_000), 1, 3),
        ("chain_10k", lambda: chain(10_000), 1, 5),
        ("tree_reduce_2^14", lambda: tree_reduce(14), 1, 5),
    ]
    for name, make, warmup, reps in benches:
        if args.only and not name.startswith(args.only):
            continue
        if args.quick:
            warmup, reps = min(warmup, 1), max(1, reps // 20)
        dsk, root, expect = make()
        tasks = len(dsk)
        for threads in (1, 2):
            got = threaded_get(dsk, root, num_workers=threads)
            assert got == expect, (name, got, expect)
            med, mn, n = time_runs(
                lambda: threaded_get(dsk, root, num_workers=threads), warmup, reps
            )
            rec = {
                "bench": name,
                "impl": "dask",
                "threads": threads,
                "tasks": tasks,
                "us_per_task": round(med / tasks * 1e6, 4),
                "us_per_task_min": round(mn / tasks * 1e6, 4),
                "compute_median_s": round(med, 6),
                "compute_min_s": round(mn, 6),
                "reps": n,
                "cpus": cpus,
                "dask": dask.__version__,
            }
            print(json.dumps(rec), flush=True)
            print(
                f"{name:>18} threads={threads} tasks={tasks:>7}  "
                f"{rec['us_per_task']:9.2f} µs/task (min {rec['us_per_task_min']:.2f})",
                file=sys.stderr,
                flush=True,
            )


if __name__ == "__main__":
    main()

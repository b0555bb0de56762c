#!/usr/bin/env python3
"""Python functions computed locally: ``rask.get`` against ``dask.get``
(synchronous) and ``dask.threaded.get`` on the same dict, in one run.

    python benches/python_local.py [--quick] [--only etl|tiny]

with a Python that has rask (``pip install ./bindings/python``) and dask.
Prints one JSON object per line and a summary on stderr.

- ``etl_3001``: a Dask-style ETL graph of Python functions: 1,000 inputs,
  ``load(i)`` (a list of 50 floats) → ``clean(xs)`` (a dict of the list
  without negatives and a count) → ``analyze(d)`` (a small dict: mean,
  max, n), then one ``summarize(*results)`` reduction: 3,001 tasks whose
  values are lists of 50 floats and small dicts. The graph is built before
  the clock starts; the call (``rask.get(dsk, "summary")``,
  ``dask.get(dsk, "summary")``, ``dask.threaded.get(dsk, "summary")``) is
  timed. The result is checked equal on all three.
- ``tiny_10k``: 10,000 independent ``inc(i)`` tasks of a Python function
  and one ``count(*xs)`` reduction: per-task overhead in µs (time / tasks).
"""

import argparse
import json
import os
import random
import sys
import time


def emit(**kw):
    print(json.dumps(kw), flush=True)
    return kw


def timed(fn, reps):
    times = []
    out = None
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[0], times[len(times) // 2], out


def load(i):
    rnd = random.Random(i)
    return [rnd.uniform(-1.0, 10.0) for _ in range(50)]


def clean(xs):
    kept = [x for x in xs if x >= 0.0]
    return {"values": kept, "dropped": len(xs) - len(kept)}


def analyze(d):
    v = d["values"]
    return {"mean": sum(v) / len(v) if v else 0.0, "max": max(v) if v else 0.0, "n": len(v)}


def summarize(*results):
    return {"n": sum(r["n"] for r in results), "max": max(r["max"] for r in results)}


def etl_graph(n=1000):
    dsk = {}
    for i in range(n):
        dsk[f"load-{i}"] = (load, i)
        dsk[f"clean-{i}"] = (clean, f"load-{i}")
        dsk[f"analyze-{i}"] = (analyze, f"clean-{i}")
    dsk["summary"] = (summarize,) + tuple(f"analyze-{i}" for i in range(n))
    return dsk


def inc(x):
    return x + 1


def count(*xs):
    return len(xs)


def tiny_graph(n=10_000):
    dsk = {f"inc-{i}": (inc, i) for i in range(n)}
    dsk["count"] = (count,) + tuple(f"inc-{i}" for i in range(n))
    return dsk


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", choices=["etl", "tiny"])
    a = ap.parse_args()
    import dask
    import dask.threaded

    import rask

    pinned = os.sched_getaffinity(0) == {0}
    reps = 3 if a.quick else 11
    rows = []
    if a.only in (None, "etl"):
        dsk = etl_graph()
        want = dask.get(dsk, "summary")
        for name, fn in (
            ("rask.get", lambda: rask.get(dsk, "summary")),
            ("dask.get", lambda: dask.get(dsk, "summary")),
            ("dask.threaded.get", lambda: dask.threaded.get(dsk, "summary")),
        ):
            best, median, out = timed(fn, reps)
            assert out == want, (name, out, want)
            rows.append(emit(bench="etl_3001", impl=name, pinned=pinned, tasks=3001, min_ms=best * 1e3, median_ms=median * 1e3))
    if a.only in (None, "tiny"):
        n = 10_000
        dsk = tiny_graph(n)
        for name, fn in (
            ("rask.get", lambda: rask.get(dsk, "count")),
            ("dask.get", lambda: dask.get(dsk, "count")),
            ("dask.threaded.get", lambda: dask.threaded.get(dsk, "count")),
        ):
            best, median, out = timed(fn, reps)
            assert out == n, (name, out)
            rows.append(
                emit(bench="tiny_10k", impl=name, pinned=pinned, tasks=n + 1, min_us_per_task=best * 1e6 / (n + 1),
                     median_us_per_task=median * 1e6 / (n + 1))
            )
    for r in rows:
        if r["bench"] == "etl_3001":
            print(f"{r['bench']:10} {r['impl']:18} median {r['median_ms']:8.1f} ms  (min {r['min_ms']:.1f})", file=sys.stderr)
        else:
            print(f"{r['bench']:10} {r['impl']:18} median {r['median_us_per_task']:8.2f} us/task (min {r['min_us_per_task']:.2f})", file=sys.stderr)


if __name__ == "__main__":
    main()

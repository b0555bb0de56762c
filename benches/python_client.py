#!/usr/bin/env python3
"""The Python client against a cluster of processes: rask against
dask.distributed, in one run.

    python benches/python_client.py [--quick]

with a Python that has rask (``pip install ./bindings/python``) and
``distributed``; rask-worker from target/release. Prints JSON lines and a
summary on stderr.

- ``map_noop``: ``client.map(noop, range(N))`` then ``client.gather``,
  submit → gathered, tasks/s (median of 3, fresh keys each time). rask:
  a ``rask.Scheduler`` in this process and 2 ``rask-worker --nthreads 1``
  processes, builtin ``"noop"``, N = 100,000. Dask:
  ``distributed.LocalCluster(n_workers=2, threads_per_worker=1,
  processes=True)``, a Python ``noop``, ``pure=False``, N = 10,000 (Dask
  does well under 1,000 tasks/s here; 100k would take minutes).
- ``round_trip``: ``client.submit(inc, i).result()`` one at a time: median
  µs (rask: builtin ``"inc"``, 1,000 times; Dask: 200 times).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))


def emit(**kw):
    print(json.dumps(kw), flush=True)
    return kw


def noop(x):
    return None


def inc(x):
    return x + 1


def bench_rask(n, reps, trips):
    import rask

    sched = rask.Scheduler()
    worker = os.path.join(ROOT, "target", "release", "rask-worker")
    procs = [
        subprocess.Popen([worker, sched.address, "--nthreads", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(2)
    ]
    try:
        with rask.Client(sched.address) as c:
            c.wait_for_workers(2, timeout=30)
            c.gather(c.map("noop", range(-1000, 0)))  # warm-up
            rates = []
            for r in range(reps):
                t0 = time.perf_counter()
                fs = c.map("noop", range((r + 1) * n, (r + 2) * n))
                c.gather(fs)
                rates.append(n / (time.perf_counter() - t0))
                del fs
            rt = []
            for i in range(trips):
                t0 = time.perf_counter()
                c.submit("inc", 10**9 + i).result()
                rt.append(time.perf_counter() - t0)
    finally:
        sched.close()
        for p in procs:
            p.terminate()
            p.wait()
    return statistics.median(rates), statistics.median(rt) * 1e6


def bench_dask(n, reps, trips):
    import distributed

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cl:
        with distributed.Client(cl) as c:
            c.gather(c.map(noop, range(100), pure=False))
            rates = []
            for _ in range(reps):
                t0 = time.perf_counter()
                c.gather(c.map(noop, range(n), pure=False))
                rates.append(n / (time.perf_counter() - t0))
            rt = []
            for i in range(trips):
                t0 = time.perf_counter()
                c.submit(inc, i, pure=False).result()
                rt.append(time.perf_counter() - t0)
    return statistics.median(rates), statistics.median(rt) * 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-dask", action="store_true")
    a = ap.parse_args()
    pinned = os.sched_getaffinity(0) == {0}
    reps = 1 if a.quick else 3
    rate, rt = bench_rask(20_000 if a.quick else 100_000, reps, 200 if a.quick else 1000)
    emit(bench="map_noop", impl="rask", pinned=pinned, tasks_per_s=rate)
    emit(bench="round_trip", impl="rask", pinned=pinned, median_us=rt)
    print(f"rask  map noop {rate:10.0f} tasks/s   round trip median {rt:8.1f} us", file=sys.stderr)
    if not a.no_dask:
        drate, drt = bench_dask(2_000 if a.quick else 10_000, reps, 50 if a.quick else 200)
        emit(bench="map_noop", impl="dask", pinned=pinned, tasks_per_s=drate)
        emit(bench="round_trip", impl="dask", pinned=pinned, median_us=drt)
        print(f"dask  map noop {drate:10.0f} tasks/s   round trip median {drt:8.1f} us", file=sys.stderr)
        print(f"rask/dask: map {rate / drate:.1f}x, round trip {drt / rt:.1f}x faster", file=sys.stderr)


if __name__ == "__main__":
    main()

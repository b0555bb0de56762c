#!/usr/bin/env python3
"""A Python function over 2 Python worker processes: rask against
dask.distributed, in one run.

    PYTHONPATH=bindings/python RASK_LIB=target/release/librask.so \\
        benches/.venv/bin/python benches/python_workers.py [--quick]

(a Python with ``distributed``, and rask from bindings/python). Prints JSON
lines and a summary on stderr.

- ``py_map``: ``client.map(pyinc, range(N))`` then ``client.gather``, submit
  → gathered, tasks/s (median of 3, fresh keys each time), N = 10,000.
  ``pyinc`` is a plain Python function of this script, shipped to the
  workers (cloudpickle) as Dask ships it. rask:
  ``rask.LocalCluster(n_workers=2, threads_per_worker=1, processes=True)``
  (two ``python -m rask.worker`` processes, one Python thread each, which
  take and end tasks in batches: ``rask_worker_take_tasks`` /
  ``_complete_tasks``). Dask: ``distributed.LocalCluster(n_workers=2,
  threads_per_worker=1, processes=True)``, ``pure=False``.
"""

import argparse
import json
import os
import statistics
import sys
import time


def emit(**kw):
    print(json.dumps(kw), flush=True)
    return kw


def pyinc(x):
    return x + 1


def bench_rask(n, reps):
    import rask

    with rask.LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cl:
        with rask.Client(cl) as c:
            c.wait_for_workers(2, timeout=60)
            assert c.gather(c.map(pyinc, range(-200, 0))) == list(range(-199, 1))  # warm-up
            rates = []
            for r in range(reps):
                xs = range((r + 1) * n, (r + 2) * n)
                t0 = time.perf_counter()
                out = c.gather(c.map(pyinc, xs))
                rates.append(n / (time.perf_counter() - t0))
                assert out[0] == xs[0] + 1 and out[-1] == xs[-1] + 1
    return statistics.median(rates)


def bench_dask(n, reps):
    import distributed

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cl:
        with distributed.Client(cl) as c:
            c.gather(c.map(pyinc, range(200), pure=False))
            rates = []
            for r in range(reps):
                xs = range((r + 1) * n, (r + 2) * n)
                t0 = time.perf_counter()
                out = c.gather(c.map(pyinc, xs, pure=False))
                rates.append(n / (time.perf_counter() - t0))
                assert out[0] == xs[0] + 1
    return statistics.median(rates)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-dask", action="store_true")
    a = ap.parse_args()
    pinned = os.sched_getaffinity(0) == {0}
    n = 2_000 if a.quick else 10_000
    reps = 1 if a.quick else 3
    rate = bench_rask(n, reps)
    emit(bench="py_map_2_worker_processes", impl="rask", pinned=pinned, n=n, tasks_per_s=rate)
    print(f"rask  python function, 2 worker processes {rate:10.0f} tasks/s", file=sys.stderr)
    if not a.no_dask:
        drate = bench_dask(n, reps)
        emit(bench="py_map_2_worker_processes", impl="dask", pinned=pinned, n=n, tasks_per_s=drate)
        print(f"dask  python function, 2 worker processes {drate:10.0f} tasks/s", file=sys.stderr)
        print(f"rask/dask: {rate / drate:.1f}x", file=sys.stderr)


if __name__ == "__main__":
    main()

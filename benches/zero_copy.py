#!/usr/bin/env python3
"""A 100 MB numpy array into and out of rask: lent and viewed (no copy)
against the copying path, and beside dask.distributed, in one run.

    python benches/zero_copy.py [--mb 100] [--reps 5]

with a Python that has rask (``pip install ./bindings/python``), numpy and
``dask[distributed]`` (benches/run.sh makes such a venv). Prints one JSON
object per line and a summary on stderr. Times are medians of ``--reps``.

- ``boundary``: ``to_value(a)`` then ``from_value`` of the value (the
  array's trip across the C boundary and back, nothing else), zero-copy
  (``ZERO_COPY_MIN`` at its default) and copying (``ZERO_COPY_MIN = inf``:
  ``rask_value_tensor`` copies in, a new array is filled coming out).
- ``local_compute``: ``rask.compute`` of ``identity(a)`` in the local
  executor: the array in as a literal and the result out.
- ``cluster``: ``client.scatter(a)`` then ``future.result()`` through a
  local cluster of one worker (TCP on loopback, both ways): rask zero-copy,
  rask copying, and dask.distributed (``LocalCluster(processes=False,
  protocol="tcp")``: also TCP on loopback, in-process workers) doing the same.
  Each result is checked equal to the array.
"""

import argparse
import gc
import json
import statistics
import sys
import time

import numpy as np


def emit(**kw):
    print(json.dumps(kw), flush=True)
    return kw


def median_time(fn, reps, check=None):
    fn()  # warm: first-use costs (the host table, ctypes types, pools)
    times = []
    for _ in range(reps):
        gc.collect()
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
        if check is not None:
            check(out)
        del out
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=100)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--no-dask", action="store_true")
    args = ap.parse_args()

    import rask
    from rask import values
    from rask.values import from_value, take_value, to_value

    n = args.mb * 1_000_000 // 8
    a = np.arange(n, dtype=np.float64)
    a.flags.writeable = False  # nothing here writes it: a view may share it
    nbytes = a.nbytes
    default_min = values.ZERO_COPY_MIN
    rows = []

    def same(out):
        assert out.shape == a.shape and out[n // 2] == a[n // 2] and out[-1] == a[-1]

    def modes():
        for mode, zmin in (("zero_copy", default_min), ("copy", float("inf"))):
            values.ZERO_COPY_MIN = zmin
            yield mode
        values.ZERO_COPY_MIN = default_min

    # 1. Across the C boundary and back.
    for mode in modes():
        t = median_time(lambda: take_value(to_value(a)), args.reps, same)
        rows.append(emit(bench="boundary", system="rask", mode=mode, mb=args.mb, ms=t * 1e3, gb_s=nbytes / t / 1e9))

    # 2. The local executor.
    for mode in modes():
        g = rask.Graph()
        g["x"] = rask.task("identity", a)

        def run(g=g):
            return rask.compute(g, "x")

        t = median_time(run, args.reps, same)
        rows.append(emit(bench="local_compute", system="rask", mode=mode, mb=args.mb, ms=t * 1e3))
        del g

    # 3. scatter + result through a cluster of one worker.
    with rask.LocalCluster(n_workers=1, threads_per_worker=1) as cluster, rask.Client(cluster) as client:
        for mode in modes():

            def trip():
                f = client.scatter(a)
                out = f.result()
                f.release()
                return out

            t = median_time(trip, args.reps, same)
            rows.append(emit(bench="cluster", system="rask", mode=mode, mb=args.mb, ms=t * 1e3, gb_s=2 * nbytes / t / 1e9))

    if not args.no_dask:
        import logging

        from distributed import Client, LocalCluster

        logging.getLogger("distributed").setLevel(logging.ERROR)
        with LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, protocol="tcp", dashboard_address=None
        ) as cluster, Client(cluster) as client:

            def dtrip():
                f = client.scatter(a, direct=True)
                out = f.result()
                f.release()
                return out

            t = median_time(dtrip, args.reps, same)
            rows.append(emit(bench="cluster", system="dask", mode="default", mb=args.mb, ms=t * 1e3, gb_s=2 * nbytes / t / 1e9))

    by = {(r["bench"], r["system"], r["mode"]): r["ms"] for r in rows}
    print("\nsummary (median ms; ratio = copy / zero_copy, dask / rask zero_copy)", file=sys.stderr)
    for bench in ("boundary", "local_compute", "cluster"):
        z, c = by.get((bench, "rask", "zero_copy")), by.get((bench, "rask", "copy"))
        line = f"  {bench:14s} rask zero-copy {z:9.3f}  rask copy {c:9.3f}  copy/zero {c / z:8.1f}x"
        d = by.get((bench, "dask", "default"))
        if d is not None:
            line += f"  dask {d:9.3f}  dask/rask {d / z:6.2f}x"
        print(line, file=sys.stderr)


if __name__ == "__main__":
    main()

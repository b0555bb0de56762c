#!/usr/bin/env python3
"""Shipped functions and Dask's own collections on rask, against Dask, in one run.

    python benches/shipped.py [--quick] [--size 4000] [--chunk 1000]

with a Python that has rask (``pip install ./bindings/python``), ``dask[array]``
and ``distributed`` (``benches/run.sh`` makes benches/.venv with them; add
rask there). Prints one JSON object per line and a summary table on stderr,
ending with one ``TARGET`` line per target of issue #10 (the ratio, the
target, and the same ratio in CPU time of the process tree: this process
and its worker processes, less disturbed by other load than wall time).

1. ``map_lambda_10k``: ``client.map(lambda x: x + 1, range(10_000))`` then
   ``gather`` on 2 Python worker processes of 1 thread each:
   - ``rask-shipped``: ``rask.Client(processes=True, n_workers=2)`` — the
     lambda is shipped (cloudpickle);
   - ``rask-named``: the same function served by name by 2 ``python -m
     rask.worker --import`` processes, ``client.map("inc1", ...)``;
   - ``dask``: ``distributed.LocalCluster(n_workers=2, threads_per_worker=1,
     processes=True)``, ``client.map(lambda, ..., pure=False)``.
   Fresh keys every repetition (rask: a new lambda object each time; the
   key is the hash of the call, so a new offset argument).
2. ``seed_array``: ``x = da.random.random((N, N), chunks=(C, C))``,
   ``(x.dot(x.T + 1) - x.mean()).std()``:
   - ``numpy``: the same expression on ``x`` computed to one numpy array
     first (the floor; one process, numpy's own BLAS threads);
   - ``rask.get`` vs ``dask.threaded`` (local, one process);
   - ``rask-cluster`` (``dask.compute(y, scheduler=client.get)`` on
     ``rask.Client(processes=True, n_workers=2, threads_per_worker=1)``) vs
     ``dask-distributed`` (``LocalCluster(n_workers=2, threads_per_worker=1,
     processes=True)``): the same processes and threads.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np


def emit(**kw):
    print(json.dumps(kw), flush=True)
    return kw


_TICK = os.sysconf("SC_CLK_TCK")


def tree_cpu():
    """CPU seconds (user + system) used so far by this process and its live
    descendants (worker processes, schedulers, Dask's nannies): far less
    disturbed by other load on the machine than wall time."""
    stat = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/stat") as f:
                    rest = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stat[int(p)] = (int(rest[1]), (int(rest[11]) + int(rest[12])) / _TICK)
    children = {}
    for pid, (ppid, _) in stat.items():
        children.setdefault(ppid, []).append(pid)
    total, stack = 0.0, [os.getpid()]
    while stack:
        pid = stack.pop()
        total += stat.get(pid, (0, 0.0))[1]
        stack.extend(children.get(pid, ()))
    return total


def best(fn, reps):
    """(best wall s, median wall s, least CPU s of the process tree) of ``reps`` runs."""
    times, cpus = [], []
    for _ in range(reps):
        c0 = tree_cpu()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        cpus.append(tree_cpu() - c0)
    return min(times), sorted(times)[len(times) // 2], min(cpus)


def bench_map(reps, n=10_000):
    import distributed

    import rask

    out = []
    # rask, shipped
    with rask.Client(processes=True, n_workers=2, threads_per_worker=1) as c:
        c.gather(c.map(lambda x: x + 1, range(100)))  # warm: processes, code key
        counter = iter(range(10**9))

        def run():
            k = next(counter)
            fs = c.map(lambda x, k=k: x + 1, range(n))  # a new function each time: new keys
            assert c.gather(fs)[-1] == n
            del fs

        b, m, cpu = best(run, reps)
        out.append(emit(bench="map_lambda_10k", impl="rask-shipped", best_s=b, median_s=m, cpu_s=cpu, tasks_per_s=n / b))
    # rask, named
    tmp = tempfile.mkdtemp(prefix="rask-bench-")
    with open(os.path.join(tmp, "benchmod.py"), "w") as f:
        f.write("def inc1(x, k=0):\n    return x + 1\n__rask_functions__ = {'inc1': inc1}\n")
    with rask.LocalCluster(n_workers=0) as cluster:
        env = dict(os.environ, RASK_LIB=rask.library_path())
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "rask.worker", cluster.address, "--nthreads", "1", "--import", "benchmod"],
                cwd=tmp,
                env=env,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(2)
        ]
        try:
            with rask.Client(cluster) as c:
                c.wait_for_workers(2, timeout=60)
                c.gather(c.map("inc1", range(100)))
                counter = iter(range(10**9))

                def run():
                    k = next(counter)
                    fs = c.map("inc1", range(n), [k] * n)  # new keys each time
                    assert c.gather(fs)[-1] == n
                    del fs

                b, m, cpu = best(run, reps)
                out.append(emit(bench="map_lambda_10k", impl="rask-named", best_s=b, median_s=m, cpu_s=cpu, tasks_per_s=n / b))
        finally:
            for p in procs:
                p.terminate()
                p.wait()
    # dask.distributed
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, distributed.Client(cluster) as c:
        c.gather(c.map(lambda x: x + 1, range(100), pure=False))

        def run():
            fs = c.map(lambda x: x + 1, range(n), pure=False)
            assert c.gather(fs)[-1] == n
            del fs

        b, m, cpu = best(run, reps)
        out.append(emit(bench="map_lambda_10k", impl="dask", best_s=b, median_s=m, cpu_s=cpu, tasks_per_s=n / b))
    return out


def bench_array(reps, size, chunk):
    import dask
    import dask.array as da
    import distributed

    import rask

    out = []
    x = da.random.random((size, size), chunks=(chunk, chunk))
    y = (x.dot(x.T + 1) - x.mean()).std()
    xn = x.compute(scheduler="threads")

    def numpy_only():
        return (xn.dot(xn.T + 1) - xn.mean()).std()

    ref = numpy_only()
    cases = [
        ("numpy", numpy_only),
        ("rask.get", lambda: dask.compute(y, scheduler=rask.get)[0]),
        ("dask.threaded", lambda: dask.compute(y, scheduler="threads")[0]),
    ]
    for impl, fn in cases:
        assert abs(fn() - ref) < 1e-6 * abs(ref)
        b, m, cpu = best(fn, reps)
        out.append(emit(bench="seed_array", impl=impl, size=size, chunk=chunk, best_s=b, median_s=m, cpu_s=cpu))
    with rask.Client(processes=True, n_workers=2, threads_per_worker=1) as c:

        def fn():
            return dask.compute(y, scheduler=c.get)[0]

        assert abs(fn() - ref) < 1e-6 * abs(ref)
        b, m, cpu = best(fn, reps)
        out.append(emit(bench="seed_array", impl="rask-cluster", size=size, chunk=chunk, best_s=b, median_s=m, cpu_s=cpu))
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, distributed.Client(cluster) as c:

        def fn():
            return dask.compute(y, scheduler=c.get)[0]

        assert abs(fn() - ref) < 1e-6 * abs(ref)
        b, m, cpu = best(fn, reps)
        out.append(emit(bench="seed_array", impl="dask-distributed", size=size, chunk=chunk, best_s=b, median_s=m, cpu_s=cpu))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="one repetition, a 1000x1000 array")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--size", type=int, default=4000)
    ap.add_argument("--chunk", type=int, default=1000)
    ap.add_argument("--only", choices=["map", "array"])
    a = ap.parse_args()
    reps = 1 if a.quick else a.reps
    size, chunk = (1000, 250) if a.quick else (a.size, a.chunk)
    rows = []
    if a.only in (None, "map"):
        rows += bench_map(reps)
    if a.only in (None, "array"):
        rows += bench_array(reps, size, chunk)
    by = {(r["bench"], r["impl"]): r for r in rows}
    print("\nbench            impl              best      ratio                      CPU (process tree)", file=sys.stderr)
    if ("map_lambda_10k", "dask") in by:
        d = by[("map_lambda_10k", "dask")]
        named = by[("map_lambda_10k", "rask-named")]
        for impl in ("rask-shipped", "rask-named", "dask"):
            r = by[("map_lambda_10k", impl)]
            print(
                f"map_lambda_10k   {impl:16s}  {r['tasks_per_s']:8.0f}/s  x{r['tasks_per_s'] / d['tasks_per_s']:.1f} of dask, "
                f"x{r['tasks_per_s'] / named['tasks_per_s']:.2f} of named   {r['cpu_s'] * 1e6 / 10_000:6.1f} us/task",
                file=sys.stderr,
            )
        s = by[("map_lambda_10k", "rask-shipped")]
        print(
            f"TARGET shipped vs dask.distributed  x{s['tasks_per_s'] / d['tasks_per_s']:.1f}  (target >= 30)  "
            f"CPU x{d['cpu_s'] / s['cpu_s']:.1f}",
            file=sys.stderr,
        )
        print(
            f"TARGET shipped vs named             x{s['tasks_per_s'] / named['tasks_per_s']:.2f}  (target >= 0.8)  "
            f"CPU x{named['cpu_s'] / s['cpu_s']:.2f}",
            file=sys.stderr,
        )
    if ("seed_array", "dask.threaded") in by:
        t = by[("seed_array", "dask.threaded")]
        dd = by[("seed_array", "dask-distributed")]
        for impl in ("numpy", "rask.get", "dask.threaded", "rask-cluster", "dask-distributed"):
            r = by[("seed_array", impl)]
            print(
                f"seed_array       {impl:16s}  {r['best_s']:7.2f} s  /threaded {r['best_s'] / t['best_s']:.2f}, "
                f"/distributed {r['best_s'] / dd['best_s']:.2f}   {r['cpu_s']:6.2f} s",
                file=sys.stderr,
            )
        g, c = by[("seed_array", "rask.get")], by[("seed_array", "rask-cluster")]
        print(
            f"TARGET rask.get / dask.threaded     {g['best_s'] / t['best_s']:.2f}  (target <= 1)  "
            f"CPU {g['cpu_s'] / t['cpu_s']:.2f}",
            file=sys.stderr,
        )
        print(
            f"TARGET rask cluster / distributed   {c['best_s'] / dd['best_s']:.2f}  (target <= 1)  "
            f"CPU {c['cpu_s'] / dd['cpu_s']:.2f}",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()

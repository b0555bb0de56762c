#!/usr/bin/env python3
"""A 100 MB array from one worker process to another on the same host:
through shared memory (a memory file's descriptor over the holder's Unix
socket) against TCP, beside dask.distributed doing the same, in one run.

    python benches/shm_transfer.py [--mb 100] [--reps 5] [--no-dask]

with a Python that has numpy and ``dask[distributed]`` (benches/run.sh makes
such a venv); rask is taken from bindings/python and target/release
(``cargo build --release`` first: the library, ``rask-scheduler`` and
``rask-worker``). Prints one JSON object per line and a summary on stderr;
times are medians of ``--reps``.

Each mode starts a ``rask-scheduler`` and three ``rask-worker`` processes
(1 thread each) and, per repetition, scatters a new array of float64 to one
worker, then

- ``first``: ``client.replicate(f, 2)``: a second worker fetches it. With
  shared memory the holder copies the value into a memory file first (once:
  it keeps that copy) and passes the descriptor;
- ``again``: ``client.replicate(f, 3)``: a third worker fetches it from a
  holder whose copy is in a memory file already (shared memory: no copy at
  all, the descriptor is passed; TCP: the same as ``first``).

Both are end to end as a user sees them: the client's request to the
scheduler, the scheduler's to the worker, the fetch, and the answers back.
Modes: rask with shared memory (the default), rask with
``RASK_SHM_THRESHOLD=off`` (TCP on loopback), and dask.distributed
(``LocalCluster(n_workers=3, threads_per_worker=1, processes=True)``, TCP)
doing the same replicates. ``memcpy`` is numpy copying the array once in
this process, for scale.
"""

import argparse
import gc
import json
import os
import re
import statistics
import subprocess
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "bindings", "python"))
os.environ.setdefault("RASK_LIB", os.path.join(REPO, "target", "release", "librask.so"))


def emit(**kw):
    print(json.dumps(kw), flush=True)
    return kw


def spawn(args, env, needle):
    p = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 30
    while time.time() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        if needle in line:
            m = re.search(r"(tcp|tls)://\S+", line)
            return p, m.group(0).rstrip(".,")
    p.kill()
    raise RuntimeError(f"{args[0]} did not print {needle!r}")


def rask_mode(name, threshold, nbytes, reps):
    import rask

    env = dict(os.environ, RUST_LOG="warn")
    if threshold is not None:
        env["RASK_SHM_THRESHOLD"] = threshold
    procs = []
    try:
        sched, address = spawn(
            [os.path.join(REPO, "target", "release", "rask-scheduler"), "--port", "0"],
            env,
            "listening on",
        )
        procs.append(sched)
        for i in range(3):
            w, _ = spawn(
                [
                    os.path.join(REPO, "target", "release", "rask-worker"),
                    address,
                    "--nthreads",
                    "1",
                    "--name",
                    f"w{i}",
                ],
                env,
                "serving data on",
            )
            procs.append(w)
        first, again = [], []
        with rask.Client(address, timeout=60) as c:
            c.wait_for_workers(3, timeout=30)
            for rep in range(reps + 1):
                a = np.full(nbytes // 8, float(rep), dtype=np.float64)
                [f] = c.scatter([a])
                gc.collect()
                t0 = time.perf_counter()
                c.replicate([f], 2)
                t1 = time.perf_counter()
                c.replicate([f], 3)
                t2 = time.perf_counter()
                if rep == 0:
                    # Checked once: every holder has the whole array.
                    assert np.array_equal(f.result(timeout=60), a)
                else:
                    first.append(t1 - t0)
                    again.append(t2 - t1)
                del f, a
                time.sleep(0.2)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
    out = []
    for what, times in (("first", first), ("again", again)):
        med = statistics.median(times)
        out.append(
            emit(
                bench=f"worker_to_worker_{what}",
                impl=name,
                bytes=nbytes,
                median_s=round(med, 6),
                gb_per_s=round(nbytes / med / 1e9, 3),
                reps=reps,
            )
        )
    return out


def dask_mode(nbytes, reps):
    from distributed import Client, LocalCluster

    first, again = [], []
    with LocalCluster(
        n_workers=3, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, Client(cluster) as c:
        for rep in range(reps + 1):
            a = np.full(nbytes // 8, float(rep), dtype=np.float64)
            w0 = list(c.scheduler_info()["workers"])[0]
            f = c.scatter(a, workers=[w0])
            gc.collect()
            t0 = time.perf_counter()
            c.replicate([f], n=2)
            t1 = time.perf_counter()
            c.replicate([f], n=3)
            t2 = time.perf_counter()
            assert len(c.who_has([f])[f.key]) == 3
            if rep > 0:
                first.append(t1 - t0)
                again.append(t2 - t1)
            del f, a
            time.sleep(0.2)
    out = []
    for what, times in (("first", first), ("again", again)):
        med = statistics.median(times)
        out.append(
            emit(
                bench=f"worker_to_worker_{what}",
                impl="dask.distributed (tcp)",
                bytes=nbytes,
                median_s=round(med, 6),
                gb_per_s=round(nbytes / med / 1e9, 3),
                reps=reps,
            )
        )
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=100)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--no-dask", action="store_true")
    args = ap.parse_args()
    nbytes = args.mb * 1_000_000 // 8 * 8

    a = np.ones(nbytes // 8)
    times = []
    for _ in range(args.reps):
        t0 = time.perf_counter()
        b = a.copy()
        times.append(time.perf_counter() - t0)
        del b
    memcpy = statistics.median(times)
    emit(bench="memcpy", impl="numpy", bytes=nbytes, median_s=round(memcpy, 6))
    del a

    rows = rask_mode("rask shared memory", None, nbytes, args.reps)
    rows += rask_mode("rask tcp", "off", nbytes, args.reps)
    if not args.no_dask:
        rows += dask_mode(nbytes, args.reps)
    print(f"\n{args.mb} MB worker -> worker, median of {args.reps} (cpus {os.sched_getaffinity(0)})", file=sys.stderr)
    print(f"{'memcpy (numpy copy)':34} {memcpy * 1e3:9.2f} ms", file=sys.stderr)
    shm_again = next(r for r in rows if r["impl"] == "rask shared memory" and r["bench"].endswith("again"))
    for r in rows:
        ratio = r["median_s"] / shm_again["median_s"]
        print(
            f"{r['impl'] + ' ' + r['bench'].rsplit('_', 1)[1]:34} {r['median_s'] * 1e3:9.2f} ms"
            f"  {r['gb_per_s']:7.2f} GB/s  {ratio:6.1f}x shm-again",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()

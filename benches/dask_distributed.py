#!/usr/bin/env python3
"""dask.distributed on the workloads of benches/distributed.rs.

The same workloads, as close to the same calls as the two APIs allow, on
``distributed.LocalCluster(n_workers=2, threads_per_worker=1,
processes=True)`` (workers in their own processes; the scheduler runs in
this process, on its own event-loop thread, as LocalCluster does); the
throughput and round-trip figures again with ``processes=False``
(scheduler, workers and client in one process, like rask's LocalCluster).

- ``noop_graph_10k``, ``noop_graph_100k``: a dict graph of N independent
  ``noop(i)`` tasks, ``client.get(dsk, keys, sync=False)`` then
  ``client.gather``; tasks/s from the call to the last value. Fresh keys
  every repetition; the graph is built before the clock starts.
- ``noop_map_10k``, ``noop_map_100k``: ``client.map(noop, [tag] * N,
  range(N), pure=False)`` then ``client.gather``.
- ``round_trip``: ``client.submit(inc, i, pure=False).result()``, one at a
  time, 1,000 times (50 warm-up): median and p99.
- ``scatter_100mb``, ``gather_100mb``: a 100 MB float64 numpy array,
  ``client.scatter`` then ``client.gather`` (Dask's default: through the
  scheduler, ``direct=False`` from a client that is not a worker); the
  ``_direct`` variants pass ``direct=True`` (client to worker).
- ``worker_transfer_100mb``: ``make(nbytes)`` pinned to worker A
  (``workers=[A]``), waited for; then, timed, ``nbytes_of(d)`` pinned to
  worker B: submit to result.
- ``scheduler_memory_100k``: the scheduler alone in a subprocess
  (``distributed.deploy.subprocess.SubprocessCluster``, one worker with two
  threads), so its RSS is the scheduler's and not this client's: one task
  that runs until a file appears, then 100,000 ``noop(root, i)`` tasks
  that wait on it (all held by the client, as ``client.map`` does); RSS of
  the scheduler process (psutil, through ``run_on_scheduler``, after
  ``gc.collect()``) after minus before, per waiting task. Then the
  futures are released and the file is made.
- ``tcp_loopback_100mb``: raw loopback TCP in Python, 100 MB in 1 MiB
  ``sendall``s, read with ``recv_into`` a reused 1 MiB buffer;
  ``tcp_loopback_100mb_fresh`` reads into a new 100 MB bytearray each time.

Output: one JSON object per line on stdout, the format benches/distributed.rs
prints (``{"bench": ..., "impl": "dask", "processes": true, ...}``); a
summary on stderr.

    python benches/dask_distributed.py [--quick] [--only PREFIX]
        [--sizes 10000,100000] [--no-threads-cluster] [--no-memory]
"""

import argparse
import gc
import json
import logging
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid

import dask
import distributed
import numpy as np
from distributed import Client, LocalCluster, wait

MB100 = 100 << 20


def noop(*args):
    return None


def inc(x):
    return x + 1


def make_array(nbytes, seed):
    return np.arange(nbytes // 8, dtype=np.float64) * 0.5 + seed


def nbytes_of(a):
    return int(a.nbytes)


def block(path):
    """Runs until `path` exists (a file, so no scheduler round trips while
    the measurement runs)."""
    while not os.path.exists(path):
        time.sleep(0.05)
    return 0


def cpus_allowed():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Cpus_allowed_list:"):
                    return line.split()[1]
    except OSError:
        pass
    return "?"


CPUS = cpus_allowed()


def emit(rec, summary):
    rec.setdefault("cpus", CPUS)
    rec.setdefault("dask", distributed.__version__)
    print(json.dumps(rec), flush=True)
    print(summary, file=sys.stderr, flush=True)


def p99(xs):
    s = sorted(xs)
    return s[round((len(s) - 1) * 0.99)]


def scheduler_task_count(dask_scheduler):
    return len(dask_scheduler.tasks)


def settle(client, timeout=60):
    """Waits until the scheduler has forgotten every task (the releases of
    the previous repetition), so one repetition does not pay for another."""
    deadline = time.time() + timeout
    while client.run_on_scheduler(scheduler_task_count) and time.time() < deadline:
        time.sleep(0.05)


def throughput(client, args, n, via_map, tag_base, processes, reps):
    name = f"noop_{'map' if via_map else 'graph'}_{n // 1000}k"
    if args.only and not name.startswith(args.only):
        return
    times, submits = [], []
    if reps > 0:
        # Warm-up: 1,000 tasks of the same shape (a 10k run takes 5-40 s
        # through dask.distributed on this machine).
        warm = client.map(noop, [tag_base - 1] * 1000, range(1000), pure=False)
        client.gather(warm)
        del warm
        settle(client)
    for rep in range(max(reps, 1)):
        tag = tag_base + rep
        if via_map:
            tags, idx = [tag] * n, range(n)
        else:
            keys = [f"n-{tag}-{i}" for i in range(n)]
            dsk = {k: (noop, i) for i, k in enumerate(keys)}
        gc.collect()
        t0 = time.perf_counter()
        if via_map:
            fs = client.map(noop, tags, idx, pure=False)
        else:
            fs = client.get(dsk, keys, sync=False)
        submitted = time.perf_counter() - t0
        vals = client.gather(fs)
        dt = time.perf_counter() - t0
        assert len(vals) == n
        del fs, vals
        settle(client)
        times.append(dt)
        submits.append(submitted)
    med = statistics.median(times)
    emit(
        {
            "bench": name,
            "impl": "dask",
            "processes": processes,
            "workers": 2,
            "threads_per_worker": 1,
            "tasks": n,
            "median_s": round(med, 6),
            "min_s": round(min(times), 6),
            "tasks_per_s": round(n / med),
            "us_per_task": round(med / n * 1e6, 3),
            "submit_median_s": round(statistics.median(submits), 6),
            "reps": len(times),
        },
        f"{name:>22} processes={processes!s:<5} {n / med:9.0f} tasks/s  "
        f"({med:.3f} s median, {min(times):.3f} s min, {len(times)} runs; "
        f"submit {statistics.median(submits):.3f} s)",
    )


def round_trip(client, args, processes):
    if args.only and not "round_trip".startswith(args.only):
        return
    n = 300 if args.quick else 1000
    for i in range(50):
        client.submit(inc, -1 - i, pure=False).result()
    lat = []
    for i in range(n):
        t0 = time.perf_counter()
        v = client.submit(inc, i, pure=False).result()
        lat.append((time.perf_counter() - t0) * 1e6)
        assert v == i + 1
    med = statistics.median(lat)
    emit(
        {
            "bench": "round_trip",
            "impl": "dask",
            "processes": processes,
            "workers": 2,
            "threads_per_worker": 1,
            "n": n,
            "median_us": round(med, 1),
            "p99_us": round(p99(lat), 1),
            "mean_us": round(statistics.fmean(lat), 1),
            "min_us": round(min(lat), 1),
        },
        f"{'round_trip':>22} processes={processes!s:<5} median {med:.1f} µs  "
        f"p99 {p99(lat):.1f} µs  (min {min(lat):.1f} µs, n={n})",
    )


def scatter_gather(client, args, processes, direct):
    suffix = "_direct" if direct else ""
    names = [f"scatter_100mb{suffix}", f"gather_100mb{suffix}"]
    if args.only and not any(x.startswith(args.only) for x in names):
        return
    reps = 2 if args.quick else 5
    st, gt = [], []
    for rep in range(reps + 1):
        a = make_array(MB100, rep)
        gc.collect()
        t0 = time.perf_counter()
        f = client.scatter(a, direct=direct, hash=False)
        s = time.perf_counter() - t0
        t1 = time.perf_counter()
        back = client.gather(f, direct=direct)
        g = time.perf_counter() - t1
        assert np.array_equal(back, a)
        del back, f, a
        settle(client)
        if rep > 0:
            st.append(s)
            gt.append(g)
    for name, ts in zip(names, (st, gt)):
        med = statistics.median(ts)
        emit(
            {
                "bench": name,
                "impl": "dask",
                "processes": processes,
                "direct": direct,
                "bytes": MB100,
                "median_s": round(med, 6),
                "gb_per_s": round(MB100 / med / 1e9, 3),
                "reps": reps,
            },
            f"{name:>22} processes={processes!s:<5} {MB100 / med / 1e9:.2f} GB/s  "
            f"({med * 1e3:.1f} ms median)",
        )


def worker_transfer(client, args, processes):
    if args.only and not "worker_transfer".startswith(args.only):
        return
    reps = 2 if args.quick else 5
    a, b = sorted(client.scheduler_info()["workers"])[:2]
    times = []
    for rep in range(reps + 1):
        d = client.submit(make_array, MB100, float(rep), workers=[a], pure=False)
        wait(d)
        assert client.who_has(d)[d.key] == (a,) or list(client.who_has(d)[d.key]) == [a]
        t0 = time.perf_counter()
        f = client.submit(nbytes_of, d, workers=[b], pure=False)
        v = f.result()
        dt = time.perf_counter() - t0
        assert v == MB100
        del d, f
        settle(client)
        if rep > 0:
            times.append(dt)
    med = statistics.median(times)
    emit(
        {
            "bench": "worker_transfer_100mb",
            "impl": "dask",
            "processes": processes,
            "bytes": MB100,
            "median_s": round(med, 6),
            "gb_per_s": round(MB100 / med / 1e9, 3),
            "reps": reps,
        },
        f"{'worker_transfer_100mb':>22} processes={processes!s:<5} "
        f"{MB100 / med / 1e9:.2f} GB/s  ({med * 1e3:.1f} ms median, submit to result)",
    )


def scheduler_rss(dask_scheduler):
    import gc as _gc

    import psutil as _psutil

    _gc.collect()
    return _psutil.Process().memory_info().rss


def scheduler_states(dask_scheduler):
    out = {}
    for ts in dask_scheduler.tasks.values():
        out[ts.state] = out.get(ts.state, 0) + 1
    return out


def scheduler_memory(args):
    if args.only and not "scheduler_memory".startswith(args.only):
        return
    from distributed.deploy.subprocess import SubprocessCluster

    n = 10_000 if args.quick else 100_000
    with SubprocessCluster(
        n_workers=1, threads_per_worker=2, dashboard_address=None, silence_logs=logging.ERROR
    ) as cluster, Client(cluster) as client:
        client.wait_for_workers(1)
        # Warm the scheduler up (imports, comm buffers) before the baseline.
        client.gather(client.map(noop, range(1000), pure=False))
        settle(client)
        gate = os.path.join(tempfile.gettempdir(), f"rask-bench-gate-{uuid.uuid4().hex}")
        root = client.submit(block, gate, pure=False)
        deadline = time.time() + 30
        while client.run_on_scheduler(scheduler_states).get("processing", 0) < 1:
            assert time.time() < deadline, "the blocking task did not start"
            time.sleep(0.05)
        pid = client.run_on_scheduler(os.getpid)
        assert pid != os.getpid()
        before = client.run_on_scheduler(scheduler_rss)
        t0 = time.perf_counter()
        futs = client.map(noop, [root] * n, range(n), pure=False)
        deadline = time.time() + 300
        while client.run_on_scheduler(scheduler_states).get("waiting", 0) < n:
            assert time.time() < deadline, "the waiting tasks did not arrive"
            time.sleep(0.1)
        submit_s = time.perf_counter() - t0
        after = client.run_on_scheduler(scheduler_rss)
        states = client.run_on_scheduler(scheduler_states)
        # Released rather than run (100k tasks take minutes here), and
        # not with client.cancel, which takes minutes on 100k dependents
        # of one task.
        t1 = time.perf_counter()
        del futs
        deadline = time.time() + 300
        while client.run_on_scheduler(scheduler_task_count) > 1 and time.time() < deadline:
            time.sleep(0.1)
        release_s = time.perf_counter() - t1
        open(gate, "w").close()
        root.result()
        os.unlink(gate)
        del root
    per = (after - before) / n
    emit(
        {
            "bench": "scheduler_memory_100k",
            "impl": "dask",
            "processes": True,
            "waiting_tasks": n,
            "bytes_per_waiting_task": round(per, 1),
            "rss_before_mb": round(before / 1e6, 1),
            "rss_after_mb": round(after / 1e6, 1),
            "submit_s": round(submit_s, 3),
            "release_s": round(release_s, 3),
            "states": states,
            "method": "scheduler process RSS delta (SubprocessCluster)",
        },
        f"{'scheduler_memory_100k':>22} {per:.0f} bytes per waiting task "
        f"(scheduler RSS {before / 1e6:.0f} -> {after / 1e6:.0f} MB, {n} tasks waiting on one)",
    )


def tcp_loopback(args, fresh):
    name = "tcp_loopback_100mb_fresh" if fresh else "tcp_loopback_100mb"
    if args.only and not name.startswith(args.only):
        return
    reps = 2 if args.quick else 5
    chunk = b"\x07" * (1 << 20)
    times = []
    for _ in range(reps + 1):
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)

        def reader():
            s, _ = srv.accept()
            if fresh:
                whole = bytearray(MB100)
                view = memoryview(whole)
            else:
                buf = bytearray(1 << 20)
                view = memoryview(buf)
            got = 0
            while got < MB100:
                k = s.recv_into(view[got:] if fresh else view)
                assert k > 0
                got += k
            s.sendall(b"k")
            s.close()

        th = threading.Thread(target=reader)
        th.start()
        c = socket.create_connection(srv.getsockname())
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        t0 = time.perf_counter()
        sent = 0
        while sent < MB100:
            c.sendall(chunk)
            sent += len(chunk)
        assert c.recv(1) == b"k"
        times.append(time.perf_counter() - t0)
        th.join()
        c.close()
        srv.close()
    times.pop(0)
    med = statistics.median(times)
    emit(
        {
            "bench": name,
            "impl": "raw-python",
            "bytes": MB100,
            "median_s": round(med, 6),
            "gb_per_s": round(MB100 / med / 1e9, 3),
            "reps": reps,
        },
        f"{name:>22} (Python) {MB100 / med / 1e9:.2f} GB/s  ({med * 1e3:.1f} ms median)",
    )


def cluster_benches(args, processes, sizes, reps_for):
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=processes,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    ) as cluster, Client(cluster) as client:
        client.wait_for_workers(2)
        round_trip(client, args, processes)
        for i, n in enumerate(sizes):
            reps = reps_for(n)
            throughput(client, args, n, False, 1000 * i, processes, reps)
            throughput(client, args, n, True, 1000 * i + 500, processes, reps)
        if processes:
            scatter_gather(client, args, processes, direct=False)
            scatter_gather(client, args, processes, direct=True)
            worker_transfer(client, args, processes)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default=None)
    ap.add_argument("--sizes", default=None, help="task counts, e.g. 10000,100000")
    ap.add_argument("--no-threads-cluster", action="store_true", help="skip processes=False")
    ap.add_argument("--no-memory", action="store_true", help="skip scheduler_memory_100k")
    args = ap.parse_args()
    if args.sizes:
        sizes = [int(s) for s in args.sizes.split(",")]
    else:
        sizes = [10_000] if args.quick else [10_000, 100_000]
    print(
        f"dask.distributed {distributed.__version__} (dask {dask.__version__}), "
        f"LocalCluster 2 workers x 1 thread (cpus allowed: {CPUS})",
        file=sys.stderr,
    )

    # 10k: a 1,000-task warm-up and 2 timed runs (1 quick); 100k: one run,
    # no warm-up (the 10k runs before it warmed the cluster up). Under the
    # load of a shared 2-CPU machine dask.distributed runs 250-1,000 no-op
    # tasks/s, so one 100k run takes 2-7 minutes.
    def reps_for(n):
        if n >= 100_000:
            return 0
        return 1 if args.quick else 2

    tcp_loopback(args, False)
    tcp_loopback(args, True)
    cluster_benches(args, True, sizes, reps_for)
    if not args.no_threads_cluster:
        # One process: only 10k (and the round trip), to keep the run short.
        cluster_benches(args, False, [s for s in sizes if s < 100_000], reps_for)
    if not args.no_memory:
        scheduler_memory(args)


if __name__ == "__main__":
    main()

"""Queue put -> get between two tasks on two different workers, rask and
dask.distributed in one run.

    benches/.venv/bin/python benches/queue_roundtrip.py [--n 2000] [--no-dask]

Two tasks ping-pong through two named queues: the "ping" task (on worker 1)
puts i into queue A and gets from queue B; the "pong" task (on worker 2)
gets from A and puts into B. Each round trip is two put -> get hops; the
figure is the median of (round trip / 2) over --n round trips, after 50
warm-up ones. Both sides use their library's Queue from inside a task with
the task's own client (rask.get_client(), distributed.get_client()).

rask: a LocalCluster's scheduler and two rask.Worker (Python pull mode) in
this process, each serving one of the two functions; dask: a
distributed.LocalCluster of two single-thread worker processes, the tasks
pinned with workers=[...]. Prints one JSON line per system.
"""

import argparse
import json
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))
os.environ.setdefault("RASK_ROOT", ROOT)

WARMUP = 50


def rask_ping(n, qa, qb):
    import rask

    a, b = rask.Queue(qa), rask.Queue(qb)
    times = []
    for i in range(n + WARMUP):
        t0 = time.perf_counter()
        a.put(i)
        assert b.get() == i
        times.append(time.perf_counter() - t0)
    return times[WARMUP:]


def rask_pong(n, qa, qb):
    import rask

    a, b = rask.Queue(qa), rask.Queue(qb)
    for _ in range(n + WARMUP):
        b.put(a.get())
    return n


def run_rask(n):
    import rask

    with rask.LocalCluster(n_workers=0) as cluster, rask.Client(cluster) as client:
        w1 = rask.Worker(cluster, functions={"ping": rask_ping}, name="ping-worker").start()
        w2 = rask.Worker(cluster, functions={"pong": rask_pong}, name="pong-worker").start()
        try:
            pong = client.submit("pong", n, "qa", "qb", pure=False)
            ping = client.submit("ping", n, "qa", "qb", pure=False)
            times = ping.result()
            pong.result()
        finally:
            w1.close()
            w2.close()
    return times


def dask_ping(n, qa, qb):
    from distributed import Queue

    a, b = Queue(qa), Queue(qb)
    times = []
    for i in range(n + WARMUP):
        t0 = time.perf_counter()
        a.put(i)
        assert b.get() == i
        times.append(time.perf_counter() - t0)
    return times[WARMUP:]


def dask_pong(n, qa, qb):
    from distributed import Queue

    a, b = Queue(qa), Queue(qb)
    for _ in range(n + WARMUP):
        b.put(a.get())
    return n


def run_dask(n):
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            w1, w2 = sorted(client.scheduler_info()["workers"])
            pong = client.submit(dask_pong, n, "qa", "qb", workers=[w2], pure=False)
            ping = client.submit(dask_ping, n, "qa", "qb", workers=[w1], pure=False)
            times = ping.result()
            pong.result()
    return times


def report(system, times):
    hop = sorted(t / 2 for t in times)
    out = {
        "system": system,
        "round_trips": len(times),
        "median_hop_us": round(statistics.median(hop) * 1e6, 1),
        "p90_hop_us": round(hop[int(len(hop) * 0.9)] * 1e6, 1),
    }
    print(json.dumps(out), flush=True)
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--no-dask", action="store_true")
    args = p.parse_args()
    r = report("rask", run_rask(args.n))
    if not args.no_dask:
        d = report("dask.distributed", run_dask(args.n))
        print(json.dumps({"dask_over_rask_median": round(d["median_hop_us"] / r["median_hop_us"], 1)}))


if __name__ == "__main__":
    main()

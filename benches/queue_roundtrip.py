"""Queue put -> get between two tasks on two different workers, rask and
dask.distributed in one run.

    benches/.venv/bin/python benches/queue_roundtrip.py [--n 2000] [--no-dask]

Two tasks ping-pong through two named queues: the "ping" task (on worker 1)
puts i into queue A and gets from queue B; the "pong" task (on worker 2)
gets from A and puts into B. Each round trip is two put -> get hops; the
figure is the median of (round trip / 2) over --n round trips, after 50
warm-up ones. Both sides use their library's Queue from inside a task with
the task's own client (rask.get_client(), distributed.get_client()).

rask: a LocalCluster's scheduler in this process and two worker processes
(`python -m rask.worker --import queue_roundtrip --nthreads 1`), each
serving one of the two functions, as Dask's side runs (--in-process: two
rask.Worker in this process instead); dask: a distributed.LocalCluster of
two single-thread worker processes, the tasks pinned with workers=[...].
Prints one JSON line per system.
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


# Served by name by the worker processes: each serves one of the two
# functions (RASK_BENCH_ROLE), so ping and pong run on different workers.
__rask_functions__ = {"ping": rask_ping, "pong": rask_pong}
if os.environ.get("RASK_BENCH_ROLE") in __rask_functions__:
    __rask_functions__ = {os.environ["RASK_BENCH_ROLE"]: __rask_functions__[os.environ["RASK_BENCH_ROLE"]]}


def run_rask(n, in_process=False):
    import subprocess

    import rask

    with rask.LocalCluster(n_workers=0, dashboard_address=None) as cluster, rask.Client(cluster) as client:
        ws, procs = [], []
        try:
            if in_process:
                ws.append(rask.Worker(cluster, functions={"ping": rask_ping}, name="ping-worker").start())
                ws.append(rask.Worker(cluster, functions={"pong": rask_pong}, name="pong-worker").start())
            else:
                here = os.path.dirname(os.path.abspath(__file__))
                for role in ("ping", "pong"):
                    env = dict(os.environ, RASK_BENCH_ROLE=role)
                    env["PYTHONPATH"] = os.pathsep.join(filter(None, [here, env.get("PYTHONPATH")]))
                    cmd = [sys.executable, "-m", "rask.worker", cluster.address, "--import", "queue_roundtrip"]
                    cmd += ["--nthreads", "1", "--reconnect-timeout", "0", "--name", f"{role}-worker"]
                    procs.append(subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL))
                client.wait_for_workers(2, timeout=60)
            pong = client.submit("pong", n, "qa", "qb", pure=False)
            ping = client.submit("ping", n, "qa", "qb", pure=False)
            times = ping.result()
            pong.result()
        finally:
            for w in ws:
                w.close()
    for p in procs:  # the scheduler closed them as it stopped
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
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
    p.add_argument("--in-process", action="store_true", help="rask: the two workers in this process")
    args = p.parse_args()
    r = report("rask", run_rask(args.n, args.in_process))
    if not args.no_dask:
        d = report("dask.distributed", run_dask(args.n))
        print(json.dumps({"dask_over_rask_median": round(d["median_hop_us"] / r["median_hop_us"], 1)}))


if __name__ == "__main__":
    main()

"""Task-spawning throughput: recursive fib with one task per call, each call
submitting its two children from inside its task with worker_client, rask
and dask.distributed in one run.

    benches/.venv/bin/python benches/nested_fib.py [--n 25] [--dask-n 18] [--no-dask]

fib(n) is 2 * F(n+1) - 1 tasks (fib(25): 242,785; fib(18): 8,361). Both sides: two workers with their
default threads (one per CPU), the function the same Python code
(`with worker_client() as c: a = c.submit(fib, n-1); b = c.submit(fib, n-2);
return a.result() + b.result()`), run once to warm up with fib(10), then
timed from submit to result. rask: a LocalCluster scheduler (no builtin
workers) and two worker processes (`python -m rask.worker --import
nested_fib --nthreads 1`, fib served by name), as users run them and as
Dask's side runs (--in-process: two rask.Worker in this process, sharing
its GIL); dask: a distributed.LocalCluster of two worker processes (one
thread each on 2 CPUs). Dask may be given a
smaller n (--dask-n): the figures compared are then tasks per second, and
the output says so. Prints one JSON line per system and the ratio.
"""

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))
os.environ.setdefault("RASK_ROOT", ROOT)


def tasks_of(n):
    a, b = 0, 1
    for _ in range(n + 1):
        a, b = b, a + b
    return 2 * a - 1  # 2 * F(n+1) - 1


def rask_fib(n):
    import rask

    if n < 2:
        return n
    with rask.worker_client() as c:
        a = c.submit("fib", n - 1, pure=False)
        b = c.submit("fib", n - 2, pure=False)
        return a.result() + b.result()


def dask_fib(n):
    from distributed import worker_client

    if n < 2:
        return n
    with worker_client() as c:
        a = c.submit(dask_fib, n - 1, pure=False)
        b = c.submit(dask_fib, n - 2, pure=False)
        return a.result() + b.result()


def _cpu_seconds(pid):
    """User + system CPU seconds of process ``pid`` (None: this one) so far (Linux)."""
    with open(f"/proc/{pid or 'self'}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# Served by name by the worker processes (python -m rask.worker --import nested_fib).
__rask_functions__ = {"fib": rask_fib}


def run_rask(n, in_process=False):
    import subprocess

    import rask

    with rask.LocalCluster(n_workers=0, dashboard_address=None) as cluster, rask.Client(cluster) as client:
        ws, procs = [], []
        try:
            if in_process:
                ws = [rask.Worker(cluster, functions={"fib": rask_fib}).start() for _ in range(2)]
            else:
                env = dict(os.environ)
                here = os.path.dirname(os.path.abspath(__file__))
                env["PYTHONPATH"] = os.pathsep.join(filter(None, [here, env.get("PYTHONPATH")]))
                cmd = [sys.executable, "-m", "rask.worker", cluster.address, "--import", "nested_fib"]
                cmd += ["--nthreads", "1", "--reconnect-timeout", "0"]
                procs = [subprocess.Popen(cmd + ["--name", f"fib-{i}"], env=env, stdin=subprocess.DEVNULL) for i in range(2)]
                client.wait_for_workers(2, timeout=60)
            client.submit("fib", 10, pure=False).result()
            cpu0 = [_cpu_seconds(p.pid) for p in procs] + [_cpu_seconds(None)]
            t0 = time.perf_counter()
            r = client.submit("fib", n, pure=False).result()
            took = time.perf_counter() - t0
            cpu = [round(_cpu_seconds(p.pid) - c, 2) for p, c in zip(procs, cpu0)]
            if procs:  # this process: the scheduler (and the client)
                cpu.append(round(_cpu_seconds(None) - cpu0[-1], 2))
            ran = sum(w.tasks_run for w in ws) if ws else None
            if cpu:
                print(json.dumps({"rask_cpu_seconds_worker_worker_scheduler": cpu}), file=sys.stderr)
        finally:
            for w in ws:
                w.close()
    for p in procs:  # the scheduler closed them as it stopped
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
    return r, took, ran


def run_dask(n):
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, processes=True, dashboard_address=None) as cluster, Client(cluster) as client:
        client.submit(dask_fib, 10, pure=False).result()
        t0 = time.perf_counter()
        r = client.submit(dask_fib, n, pure=False).result()
        took = time.perf_counter() - t0
    return r, took, None


def fib_value(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def report(system, n, result):
    r, took, ran = result
    assert r == fib_value(n), (system, r)
    out = {
        "system": system,
        "n": n,
        "tasks": tasks_of(n),
        "seconds": round(took, 3),
        "tasks_per_s": round(tasks_of(n) / took, 1),
    }
    if ran is not None:
        out["tasks_run_by_workers"] = ran  # includes the warm-up fib(10)
    print(json.dumps(out), flush=True)
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=25)
    p.add_argument("--dask-n", type=int, default=None, help="default: --n")
    p.add_argument("--no-dask", action="store_true")
    p.add_argument(
        "--in-process", action="store_true", help="rask: two rask.Worker in this process (one GIL) instead of two processes"
    )
    args = p.parse_args()
    r = report("rask", args.n, run_rask(args.n, args.in_process))
    if not args.no_dask:
        dn = args.dask_n or args.n
        d = report("dask.distributed", dn, run_dask(dn))
        print(
            json.dumps(
                {
                    "rask_over_dask_tasks_per_s": round(r["tasks_per_s"] / d["tasks_per_s"], 1),
                    "same_n": dn == args.n,
                }
            )
        )


if __name__ == "__main__":
    main()

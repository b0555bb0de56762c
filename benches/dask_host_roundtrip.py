"""dask.distributed's side of benches/julia_inprocess.jl, in one process
(Client(processes=False)): submit + result of a task that sleeps 5 ms or
computes for 5 ms (median, ms), and client.map of a no-op then gather
(tasks/s). Prints JSON lines.

    benches/.venv/bin/python benches/dask_host_roundtrip.py [--quick]
"""

import json
import statistics
import sys
import time

from distributed import Client


def sleep5(x):
    time.sleep(0.005)
    return x


def busy5(x):
    t = time.perf_counter()
    while time.perf_counter() - t < 0.005:
        pass
    return x


def noop(x):
    return None


def main():
    quick = "--quick" in sys.argv
    n_rt = 20 if quick else 200
    n_map = 2_000 if quick else 10_000
    with Client(processes=False, n_workers=2, threads_per_worker=1, dashboard_address=None) as c:
        for name, f in (("sleep5_roundtrip", sleep5), ("busy5_roundtrip", busy5)):
            c.submit(f, -1, pure=False).result()
            ms = []
            for i in range(n_rt):
                t0 = time.perf_counter()
                c.submit(f, i, pure=False).result()
                ms.append((time.perf_counter() - t0) * 1000)
            print(json.dumps({"bench": name, "impl": "dask-distributed", "n": n_rt, "median_ms": round(statistics.median(ms), 3)}))
        c.gather(c.map(noop, range(100), pure=False))
        t0 = time.perf_counter()
        vals = c.gather(c.map(noop, range(n_map), pure=False))
        secs = time.perf_counter() - t0
        assert len(vals) == n_map
        print(json.dumps({"bench": "map_noop", "impl": "dask-distributed", "n": n_map, "tasks_per_s": round(n_map / secs)}))


if __name__ == "__main__":
    main()

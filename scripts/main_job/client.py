"""The main job's client (scripts/run.sh): a pipeline whose steps run in
three languages on one cluster, with a progress bar.

    python3 scripts/main_job/client.py SCHEDULER_ADDRESS CHUNKS DASHBOARD REPORT

For each of CHUNKS records i (seeded: the same every run):

    x = inc(i)            Rust builtin, on a rask-worker process
    y = py_clean(x)       Python, on the Python worker process
    z = jl_score(y)       Julia, on the Julia worker process

then the scores are summed by a tree of `add` tasks (Rust builtins). The
result is checked against the same computation done here. A performance
report of the pipeline (the scheduler's, through its DASHBOARD) is written
to REPORT."""

import sys
import time

import rask


def expected(n):
    total = 0
    for i in range(n):
        y = min(10 * (i + 1), 5_000)
        total += (y * y) % 997
    return total


def main(argv):
    address, n, dashboard, report = argv[1], int(argv[2]), argv[3], argv[4]
    with rask.Client(address, timeout=30) as c:
        # Two rask-workers, the Python worker, the Julia worker (the Julia
        # one takes a while to start).
        got = c.wait_for_workers(4, timeout=180)
        print(f"main job: {got} workers joined {address}", flush=True)
        t0 = time.monotonic()
        perf = rask.performance_report(report, dashboard)
        perf.__enter__()
        xs = c.map("inc", range(n))
        ys = c.map("py_clean", xs)
        zs = c.map("jl_score", ys)
        level, adds = zs, []
        while len(level) > 1:
            nxt = [c.submit("add", level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            adds += nxt
            if len(level) % 2:
                nxt.append(level[-1])
            level = nxt
        every = xs + ys + zs + adds
        counts = rask.progress(every, timeout=300)
        total = level[0].result(timeout=60)
        took = time.monotonic() - t0
        perf.__exit__(None, None, None)
        want = expected(n)
        print(
            f"main job: {counts['finished']} tasks in three languages in {took:.2f} s; "
            f"sum of scores = {total} (expected {want})",
            flush=True,
        )
        print(f"main job: performance report written to {report}", flush=True)
        if counts["erred"] or total != want:
            print("main job: WRONG RESULT", flush=True)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/env python3
"""The cost of the dashboard: the distributed bench's no-op throughput and
round trip with the scheduler's dashboard off and on (--dashboard: a viewer
thread reads /api/updates and /metrics all along), interleaved runs, each
with the process's CPU time (user + sys, from getrusage of the child) per
task, which other load on the machine disturbs far less than wall time.

usage: benches/dashboard_cost.py BENCH_BINARY [RUNS]
  BENCH_BINARY: target/release/deps/distributed-<hash> (cargo bench
  --bench distributed --no-run prints it)
"""

import json
import resource
import statistics
import subprocess
import sys


def run(binary, only, dash):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    args = [binary, "--only", only] + (["--dashboard"] if dash else [])
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return rows, cpu


def main():
    binary = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    res = {}
    for _ in range(runs):
        for dash in (False, True):
            for only in ("noop_graph_100k", "round_trip"):
                rows, cpu = run(binary, only, dash)
                for r in rows:
                    r["process_cpu_s"] = cpu
                    res.setdefault((only, dash), []).append(r)
    print("| bench | off | on | on/off |")
    print("|---|---|---|---|")
    for only, key, unit in (
        ("noop_graph_100k", "tasks_per_s", "tasks/s"),
        ("round_trip", "median_us", "µs"),
    ):
        off = [r[key] for r in res[(only, False)]]
        on = [r[key] for r in res[(only, True)]]
        mo, mn = statistics.median(off), statistics.median(on)
        print(f"| {only} median {unit} (runs: {', '.join(f'{x:g}' for x in off)} / {', '.join(f'{x:g}' for x in on)}) | {mo:g} | {mn:g} | {mn / mo:.3f} |")
        tasks = {"noop_graph_100k": 100_000 * 6, "round_trip": 1000}[only]
        co = statistics.median(r["process_cpu_s"] for r in res[(only, False)]) / tasks * 1e6
        cn = statistics.median(r["process_cpu_s"] for r in res[(only, True)]) / tasks * 1e6
        print(f"| {only} process CPU µs per task (whole run) | {co:.2f} | {cn:.2f} | {cn / co:.3f} |")


if __name__ == "__main__":
    main()

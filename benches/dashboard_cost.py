#!/usr/bin/env python3
"""What the dashboard costs the scheduler: dashboard off vs on with a viewer.

One command (from the repository root, after `cargo build --release` and
`cargo bench --bench distributed --no-run`):

    flock /tmp/rask-bench.lock python3 benches/dashboard_cost.py [--pairs 6]

Each run starts a `rask-scheduler` process (`--no-dashboard`, or
`--dashboard-address 127.0.0.1:0` with a viewer watching), two
`rask-worker --nthreads 1` processes, and the distributed bench's client
(`target/release/deps/distributed-<hash> --scheduler ADDRESS`) twice: the
no-op throughput (`noop_graph_100k`: 6 graphs of 100,000 independent
`noop` tasks) and the submit -> result round trip (10,000 `inc`, one at
a time). Off and
on runs are interleaved in pairs (off-on, then on-off, ...), fresh
processes each time.

The viewer lives in this process, not the scheduler's: by default it does
what an open status page does (reads the server-sent `/api/updates`, one
update per 0.5 s, as it comes) plus a Prometheus scraping `/metrics` every
`--scrape` seconds (1 s: fifteen times Prometheus' default rate);
`--viewer chromium` opens the status page in a real headless chromium
instead of reading the events itself (the scraper runs too).

Figures per run: the scheduler process's CPU time (user + system, from
/proc/PID/stat, before and after each client run) per task, which other
load on a shared machine disturbs far less than wall time, and the
bench's own wall figures (tasks/s, median round trip). With the dashboard
on, also what the dashboard itself used, measured directly rather than as
a difference of two noisy runs: the CPU time of the scheduler's
`rask-dashboard` thread (the HTTP side: pages, server-sent events, their
JSON, /metrics) plus the time the core spent building snapshots
(`rask_dashboard_snapshot_seconds_total`), as a share of the scheduler's
CPU time. It leaves out only the few additions the core makes per event
while a dashboard is on, which the off/on CPU per task covers. Printed: each
figure's median over the runs with its spread (min-max), the ratio of
medians on/off, the median of the per-pair ratios, and the target (the
issue: <= 5 % cost).
"""

import argparse
import glob
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """user + system CPU seconds of process `pid` (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def thread_cpu_seconds(pid, name):
    """user + system CPU seconds of the threads of `pid` called `name`."""
    total = 0.0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                if f.read().strip() != name:
                    continue
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
        except FileNotFoundError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        total += (int(fields[11]) + int(fields[12])) / TICK
    return total


def snapshot_seconds(link):
    """rask_dashboard_snapshot_seconds_total from /metrics."""
    base = link[: -len("/status")]
    with urllib.request.urlopen(base + "/metrics", timeout=30) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("rask_dashboard_snapshot_seconds_total "):
                return float(line.split()[1])
    raise RuntimeError("/metrics has no rask_dashboard_snapshot_seconds_total")


def bench_binary():
    found = sorted(
        glob.glob(os.path.join(ROOT, "target/release/deps/distributed-*")),
        key=os.path.getmtime,
    )
    found = [f for f in found if os.access(f, os.X_OK) and not f.endswith(".d")]
    if not found:
        sys.exit("no bench binary: run `cargo bench --bench distributed --no-run` first")
    return found[-1]


class Viewer:
    """An open status page (or a real headless chromium on it) and a
    Prometheus scraper, in this process, until stop()."""

    def __init__(self, link, kind, scrape):
        m = re.match(r"http://([^/:]+):(\d+)/", link)
        self.host, self.port = m.group(1), int(m.group(2))
        self.done = threading.Event()
        self.updates = 0
        self.scrapes = 0
        self.threads = [threading.Thread(target=self._scrape, args=(scrape,), daemon=True)]
        self.browser = None
        if kind == "sse":
            self.threads.append(threading.Thread(target=self._page, daemon=True))
        elif kind == "chromium":
            self.browser = subprocess.Popen(
                [
                    "chromium", "--headless", "--disable-gpu", "--no-sandbox",
                    "--no-first-run", "--disable-extensions",
                    f"--user-data-dir=/tmp/rask-dash-cost-{os.getpid()}",
                    "--remote-debugging-port=0", link,
                ],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        for t in self.threads:
            t.start()

    def _get(self, path):
        s = socket.create_connection((self.host, self.port))
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\nConnection: close\r\n\r\n".encode())
        return s

    def _page(self):
        s = self._get("/api/updates")
        s.settimeout(0.2)
        while not self.done.is_set():
            try:
                b = s.recv(1 << 16)
            except socket.timeout:
                continue
            if not b:
                break
            self.updates += b.count(b"event: update")
        s.close()

    def _scrape(self, every):
        while not self.done.wait(every if self.scrapes else 0):
            s = self._get("/metrics")
            body = b""
            while True:
                b = s.recv(1 << 16)
                if not b:
                    break
                body += b
            s.close()
            if b"rask_tasks_finished_total" not in body:
                raise RuntimeError(f"/metrics without rask_tasks_finished_total: {body[:300]!r}")
            self.scrapes += 1

    def stop(self):
        self.done.set()
        for t in self.threads:
            t.join(5)
        if self.browser:
            self.browser.terminate()
            self.browser.wait(10)


def start_cluster(dashboard):
    sched = subprocess.Popen(
        [os.path.join(ROOT, "target/release/rask-scheduler"), "--port", "0"]
        + (["--dashboard-address", "127.0.0.1:0"] if dashboard else ["--no-dashboard"]),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    address = link = None
    while address is None or (dashboard and link is None):
        line = sched.stdout.readline()
        if not line:
            sys.exit("rask-scheduler ended before it listened")
        if "listening on" in line:
            address = line.split()[-1]
        if "dashboard at" in line:
            link = line.split()[-1]
    workers = [
        subprocess.Popen(
            [os.path.join(ROOT, "target/release/rask-worker"), address, "--nthreads", "1",
             "--memory-limit", "0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    return sched, workers, address, link


def run_once(binary, dashboard, viewer_kind, scrape, round_trips):
    sched, workers, address, link = start_cluster(dashboard)
    viewer = Viewer(link, viewer_kind, scrape) if dashboard and viewer_kind != "none" else None
    out = {}
    try:
        if viewer and viewer.browser:
            time.sleep(3)  # let the page load and connect
        for only, tasks, extra in (
            ("noop_graph_100k", 6 * 100_000, []),
            ("round_trip", round_trips + 50, ["--round-trips", str(round_trips)]),
        ):
            if dashboard:
                d0, s0 = thread_cpu_seconds(sched.pid, "rask-dashboard"), snapshot_seconds(link)
            c0, w0, t0 = cpu_seconds(sched.pid), sum(cpu_seconds(w.pid) for w in workers), time.time()
            res = subprocess.run(
                [binary, "--scheduler", address, "--only", only] + extra,
                capture_output=True, text=True, timeout=900,
            )
            if res.returncode != 0:
                sys.exit(f"the bench failed:\n{res.stderr[-2000:]}")
            c1, w1, t1 = cpu_seconds(sched.pid), sum(cpu_seconds(w.pid) for w in workers), time.time()
            row = [json.loads(l) for l in res.stdout.splitlines() if l.startswith("{")][0]
            row["sched_cpu_us_per_task"] = (c1 - c0) / tasks * 1e6
            row["sched_cpu_s"] = c1 - c0
            row["workers_cpu_s"] = w1 - w0
            row["wall_s"] = t1 - t0
            if dashboard:
                d1, s1 = thread_cpu_seconds(sched.pid, "rask-dashboard"), snapshot_seconds(link)
                row["dash_thread_cpu_s"] = d1 - d0
                row["snapshot_s"] = s1 - s0
                row["dash_share"] = (d1 - d0 + s1 - s0) / max(c1 - c0, 1e-9)
            out[only] = row
        if viewer:
            out["viewer"] = {"updates": viewer.updates, "scrapes": viewer.scrapes}
    finally:
        if viewer:
            viewer.stop()
        for p in workers + [sched]:
            p.terminate()
        for p in workers + [sched]:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
    return out


def spread(xs, fmt):
    return f"{fmt(statistics.median(xs))} ({fmt(min(xs))}-{fmt(max(xs))})"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=6, help="off/on pairs (default 6)")
    ap.add_argument("--viewer", choices=["sse", "chromium", "none"], default="sse")
    ap.add_argument("--scrape", type=float, default=1.0, help="seconds between /metrics scrapes")
    ap.add_argument("--round-trips", type=int, default=10_000, help="round trips per run (10,000)")
    ap.add_argument("--bench", help="the distributed bench binary (default: the newest built)")
    ap.add_argument("--json", help="also write every run's figures here")
    a = ap.parse_args()
    binary = a.bench or bench_binary()
    load = os.getloadavg()
    print(f"# dashboard cost: {a.pairs} pairs, viewer {a.viewer} (+ /metrics every {a.scrape:g} s), "
          f"bench {os.path.basename(binary)}, load {load[0]:.1f}, "
          f"cpus {os.sched_getaffinity(0)}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
          flush=True)
    runs = {False: [], True: []}
    for i in range(a.pairs):
        for dash in ((False, True) if i % 2 == 0 else (True, False)):
            r = run_once(binary, dash, a.viewer, a.scrape, a.round_trips)
            runs[dash].append(r)
            n, rt = r["noop_graph_100k"], r["round_trip"]
            print(f"pair {i + 1} {'on ' if dash else 'off'}: {n['tasks_per_s']:>8.0f} tasks/s, "
                  f"scheduler {n['sched_cpu_us_per_task']:.2f} µs CPU/task; round trip "
                  f"{rt['median_us']:.1f} µs, scheduler {rt['sched_cpu_us_per_task']:.1f} µs CPU/trip"
                  + (f"; viewer got {r['viewer']['updates']} updates, {r['viewer']['scrapes']} scrapes; "
                     f"dashboard's own share of the scheduler's CPU {100 * n['dash_share']:.2f} % "
                     f"(thread {n['dash_thread_cpu_s']:.3f} s + snapshots {n['snapshot_s']:.3f} s)"
                     if "viewer" in r else ""), flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"off": runs[False], "on": runs[True]}, f, indent=1)

    figures = [
        ("scheduler CPU per no-op task, µs", "noop_graph_100k", "sched_cpu_us_per_task", "<=", 1.05, "{:.2f}"),
        ("no-op throughput, tasks/s", "noop_graph_100k", "tasks_per_s", ">=", 0.95, "{:.0f}"),
        ("scheduler CPU per round trip, µs", "round_trip", "sched_cpu_us_per_task", "<=", 1.05, "{:.1f}"),
        ("round trip median, µs", "round_trip", "median_us", "<=", 1.05, "{:.1f}"),
    ]
    print()
    print("| figure | off: median (min-max) | on: median (min-max) | on/off (medians) | on/off (median of pairs) | target |")
    print("|---|---|---|---|---|---|")
    verdicts = []
    for name, bench, key, op, target, f in figures:
        off = [r[bench][key] for r in runs[False]]
        on = [r[bench][key] for r in runs[True]]
        ratio = statistics.median(on) / statistics.median(off)
        pairs = statistics.median(b / a for a, b in zip(off, on))
        fmt = lambda x: f.format(x)
        ok = ratio <= target if op == "<=" else ratio >= target
        verdicts.append((name, ratio, op, target, ok))
        print(f"| {name} | {spread(off, fmt)} | {spread(on, fmt)} | {ratio:.3f} | {pairs:.3f} | {op} {target} |")
    shares = {b: [100 * r[b]["dash_share"] for r in runs[True]] for b in ("noop_graph_100k", "round_trip")}
    if a.viewer != "none":
        for b, xs in shares.items():
            print(f"| dashboard's own CPU (thread `rask-dashboard` + snapshot building), % of the scheduler's, {b} | | "
                  f"{spread(xs, lambda x: f'{x:.2f}')} | | | <= 5 |")
    print()
    for name, ratio, op, target, ok in verdicts:
        print(f"RATIO {name}: on/off = {ratio:.3f} (target {op} {target}) {'ok' if ok else 'OVER'}")
    if a.viewer != "none":
        for b, xs in shares.items():
            m = statistics.median(xs)
            print(f"SHARE dashboard's own CPU / scheduler CPU, {b}: {m:.2f} % (target <= 5 %) {'ok' if m <= 5 else 'OVER'}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Side-by-side table of one benchmark run (see benches/run.sh).

    python3 benches/compare.py benches/results/<run>

reads <run>/{unpinned,pinned}-{rask,capi,dask}.jsonl (any that exist) and
prints Markdown: per mode, each graph and thread count with rask's, the C
API's and Dask's µs/task and the ratio dask/rask; the 1M-task figures; and
the targets with whether this run meets them. Standard library only.

For a run of benches/run_distributed.sh it reads
<run>/{unpinned,pinned}-{rask-dist,dask-dist,core}.jsonl and prints the
distributed side by side instead: per mode, each workload with rask's and
dask.distributed's figure (processes=True, and processes=False where
measured) and the ratio in rask's favour (higher is better for rask); the
scheduler core alone; and the distributed targets.
"""

import json
import os
import sys

MODES = [("unpinned", "unpinned (2 CPUs)"), ("pinned", "pinned (`taskset -c 0`)")]
IMPLS = ["rask", "capi", "dask"]
GRAPHS = ["noop_1", "noop_tree_10k", "noop_tree_100k", "chain_10k", "tree_reduce_2^14"]

# The targets.
US_PER_TASK_MAX = 1.0  # noop_tree_100k, 2 threads
RATIO_MIN = 50.0  # dask / rask, every graph
BUILD_1M_MAX_S = 1.0  # through the C API
PEAK_RSS_MAX_MB = 500.0  # 1M no-op computation


def load(run):
    recs = {}
    for mode, _ in MODES:
        for impl in IMPLS:
            path = os.path.join(run, f"{mode}-{impl}.jsonl")
            if not os.path.exists(path):
                continue
            with open(path) as f:
                for line in f:
                    line = line.strip()
                    if line.startswith("{"):
                        r = json.loads(line)
                        recs[(mode, impl, r["bench"], r["threads"])] = r
    return recs


def fmt(x, digits=3):
    return "—" if x is None else f"{x:.{digits}f}"


def get(recs, key, field):
    r = recs.get(key)
    return None if r is None else r.get(field)


# ------------------------------------------------------------ distributed

DIST_TASKS_PER_S_MIN = 500_000  # end to end, LocalCluster of 2 workers
DIST_RATIO_MIN = 100.0  # rask / dask.distributed, no-op throughput
CORE_TASKS_PER_S_MIN = 2_000_000  # scheduler core, 1,000 simulated workers
ROUND_TRIP_US_MAX = 50.0  # median
BYTES_PER_WAITING_MAX = 300.0
TRANSFER_FRAC_MIN = 0.90  # of raw loopback TCP, same run
THROUGHPUT = ["noop_graph_10k", "noop_map_10k", "noop_graph_100k", "noop_map_100k"]
TRANSFERS = ["scatter_100mb", "gather_100mb", "worker_transfer_100mb"]


def load_dist(run):
    """{(mode, source, bench, variant): record}. source: rask, dask, core;
    variant: for dask "p" (processes=True) or "t" (processes=False), for
    the core its case/variant, else ""."""
    recs = {}
    for mode, _ in MODES:
        for source, fname in (("rask", "rask-dist"), ("dask", "dask-dist"), ("core", "core")):
            path = os.path.join(run, f"{mode}-{fname}.jsonl")
            if not os.path.exists(path):
                continue
            with open(path) as f:
                for line in f:
                    line = line.strip()
                    if not line.startswith("{"):
                        continue
                    r = json.loads(line)
                    src = source
                    if r.get("impl") in ("raw", "raw-python"):
                        src = r["impl"]
                        variant = ""
                    elif source == "dask":
                        variant = "p" if r.get("processes", True) else "t"
                        if r.get("direct"):
                            variant += "d"
                    elif source == "core":
                        variant = f"{r.get('case')}/{r.get('variant', '')}"
                    else:
                        variant = ""
                    recs[(mode, src, r["bench"], variant)] = r
    return recs


def ratio(a, b):
    return a / b if a and b else None


def fx(x, digits=0, suffix=""):
    if x is None:
        return "—"
    return f"{x:,.{digits}f}{suffix}"


def core_rates(r):
    """(on-CPU median, wall median, on-CPU best) tasks/s, whichever the
    record has (the bench's output has changed over time)."""
    cpu = r.get("tasks_per_cpu_s_median", r.get("tasks_per_cpu_s"))
    wall = r.get("tasks_per_wall_s_median", r.get("tasks_per_s"))
    best = r.get("tasks_per_cpu_s_best")
    return cpu, wall, best


def dist_main(run):
    recs = load_dist(run)
    out = []
    tp = []  # (tasks/s, mode, bench)
    tp_ratio = []  # (ratio, mode, bench)
    rt = []  # (median µs, p99, mode, dask median)
    mem = []  # (bytes, mode, what)
    xfer = []  # (fraction of raw, mode, bench, GB/s, raw GB/s)
    core = []  # (cpu, wall, mode, case)

    def g(mode, src, bench, variant="", field=None):
        r = recs.get((mode, src, bench, variant))
        return r if field is None or r is None else r.get(field)

    for mode, title in MODES:
        if not any(k[0] == mode for k in recs):
            continue
        have_t = any(k[0] == mode and k[3] == "t" for k in recs)
        out.append(f"### {title}\n")
        head = "| workload | unit | rask | dask (processes) | rask vs dask |"
        sep = "|---|---|---:|---:|---:|"
        if have_t:
            head += " dask (threads, 1 process) | rask vs dask (threads) |"
            sep += "---:|---:|"
        out += [head, sep]

        def row(name, unit, rv, dv, dt, higher_better, digits=0):
            rr = ratio(rv, dv) if higher_better else ratio(dv, rv)
            line = f"| {name} | {unit} | {fx(rv, digits)} | {fx(dv, digits)} | **{fx(rr, 1 if rr and rr < 10 else 0, '×')}** |"
            if have_t:
                rt_ = ratio(rv, dt) if higher_better else ratio(dt, rv)
                line += f" {fx(dt, digits)} | {fx(rt_, 1 if rt_ and rt_ < 10 else 0, '×')} |"
            out.append(line)
            return rr

        for b in THROUGHPUT:
            rv = g(mode, "rask", b, "", "tasks_per_s")
            dv = g(mode, "dask", b, "p", "tasks_per_s")
            dt = g(mode, "dask", b, "t", "tasks_per_s")
            if rv is None and dv is None:
                continue
            rr = row(b, "tasks/s", rv, dv, dt, True)
            if rv is not None:
                tp.append((rv, mode, b))
            if rr is not None:
                tp_ratio.append((rr, mode, b))
        r = g(mode, "rask", "round_trip")
        d = g(mode, "dask", "round_trip", "p")
        t = g(mode, "dask", "round_trip", "t")
        if r or d:
            for field, label in (("median_us", "round trip, median"), ("p99_us", "round trip, p99")):
                row(label, "µs", r and r[field], d and d[field], t and t[field], False, 1)
            if r:
                rt.append((r["median_us"], r["p99_us"], mode, d and d["median_us"]))
        raw = g(mode, "raw", "tcp_loopback_100mb", "", "gb_per_s")
        rawf = g(mode, "raw", "tcp_loopback_100mb_fresh", "", "gb_per_s")
        for b in TRANSFERS:
            rv = g(mode, "rask", b, "", "gb_per_s")
            dv = g(mode, "dask", b, "p", "gb_per_s")
            if rv is None and dv is None:
                continue
            row(b, "GB/s", rv, dv, None, True, 2)
            dd = g(mode, "dask", f"{b}_direct", "pd", "gb_per_s")
            if dd is not None:
                row(f"{b} (dask direct=True)", "GB/s", rv, dd, None, True, 2)
            if rv is not None and raw:
                xfer.append((rv / raw, mode, b, rv, raw, rawf))
        for b, rsrc, dsrc in (("tcp_loopback_100mb", "raw", "raw-python"), ("tcp_loopback_100mb_fresh", "raw", "raw-python")):
            rv = g(mode, rsrc, b, "", "gb_per_s")
            dv = g(mode, dsrc, b, "", "gb_per_s")
            if rv is not None or dv is not None:
                row(f"{b} (raw socket: Rust vs Python)", "GB/s", rv, dv, None, True, 2)
        r = g(mode, "rask", "scheduler_memory_100k")
        d = g(mode, "dask", "scheduler_memory_100k", "p")
        if r or d:
            row("scheduler memory per waiting task (process RSS)", "bytes",
                r and r["bytes_per_waiting_task"], d and d["bytes_per_waiting_task"], None, False)
            if r:
                mem.append((r["bytes_per_waiting_task"], mode, "end to end (rask-scheduler RSS)"))
                if "second_batch_bytes_per_task" in r:
                    out.append(f"| … a second batch of the same size (rask) | bytes | {fx(r['second_batch_bytes_per_task'])} | | |" + (" | |" if have_t else ""))
        out.append("")
        # The scheduler core alone.
        lines = []
        for case in ("map_1m", "tree_1m"):
            for variant in ("run", "run+render"):
                c = g(mode, "core", "scheduler_core", f"{case}/{variant}")
                if not c:
                    continue
                cpu, wall, best = core_rates(c)
                lines.append(
                    f"| {case} | {variant} | {c['tasks']:,} | {fx(cpu)} | {fx(wall)} | {fx(best)} |"
                )
                if variant == "run":
                    core.append((cpu, wall, mode, case))
        for case in ("wanted", "unwanted"):
            c = g(mode, "core", "scheduler_memory", f"{case}/")
            if c:
                mem.append((c["bytes_per_waiting_task"], mode, f"core alone ({case})"))
        if lines:
            out.append("Scheduler core alone (benches/scheduler_core.rs), 1,000 simulated workers that finish every task at once:\n")
            out.append("| graph | variant | tasks | tasks/s on-CPU (median) | tasks/s wall (median) | tasks/s on-CPU (best) |")
            out.append("|---|---|---:|---:|---:|---:|")
            out += lines
            mems = [g(mode, "core", "scheduler_memory", f"{c}/") for c in ("wanted", "unwanted")]
            mems = [m for m in mems if m]
            if mems:
                out.append("")
                out.append("Core memory per waiting task (counting allocator): " + ", ".join(
                    f"{m['case']} {m['bytes_per_waiting_task']:.0f} B (transient peak during update-graph "
                    f"{m.get('ingest_peak_extra_bytes_per_task', 0):.0f} B)" for m in mems))
            out.append("")

    out.append("### Targets\n")
    out.append("| target | this run | met |")
    out.append("|---|---|---|")
    if tp:
        big = [x for x in tp if "100k" in x[2]] or tp
        worst = min(big)
        out.append(
            f"| ≥ {DIST_TASKS_PER_S_MIN:,} no-op tasks/s end to end, LocalCluster of 2 workers | "
            + ", ".join(f"{b} {m} {v:,.0f}" for v, m, b in big)
            + f" | {'yes' if worst[0] >= DIST_TASKS_PER_S_MIN else f'NO ({DIST_TASKS_PER_S_MIN / worst[0]:.0f}× short at worst)'} |"
        )
    if tp_ratio:
        worst = min(tp_ratio)
        out.append(
            f"| ≥ {DIST_RATIO_MIN:g}× dask.distributed (processes=True) on no-op throughput | "
            f"lowest {worst[0]:.0f}× ({worst[2]}, {worst[1]}), highest {max(tp_ratio)[0]:.0f}× | "
            f"{'yes' if worst[0] >= DIST_RATIO_MIN else 'NO'} |"
        )
    if core:
        cpu_worst = min(c[0] for c in core if c[0]) if any(c[0] for c in core) else None
        wall_worst = min(c[1] for c in core if c[1]) if any(c[1] for c in core) else None
        desc = ", ".join(f"{case} {m} {fx(c)} on-CPU / {fx(w)} wall" for c, w, m, case in core)
        met = "yes" if cpu_worst and cpu_worst >= CORE_TASKS_PER_S_MIN else "NO"
        if met == "yes" and wall_worst and wall_worst < CORE_TASKS_PER_S_MIN:
            met = "yes on-CPU; not in wall time under this load"
        out.append(f"| scheduler core ≥ {CORE_TASKS_PER_S_MIN:,} tasks/s, 1M tasks, 1,000 simulated workers | {desc} | {met} |")
    if rt:
        worst = max(rt)
        desc = ", ".join(f"{m} {med:.1f} µs (p99 {p:.0f} µs{'' if d is None else f'; dask {d / 1000:.1f} ms'})" for med, p, m, d in rt)
        out.append(f"| round trip ≤ {ROUND_TRIP_US_MAX:g} µs median | {desc} | {'yes' if worst[0] <= ROUND_TRIP_US_MAX else 'NO'} |")
    if mem:
        e2e = [x for x in mem if x[2].startswith("end to end")]
        cor = [x for x in mem if x[2].startswith("core")]
        for group in (e2e, cor):
            if group:
                worst = max(group)
                out.append(
                    f"| ≤ {BYTES_PER_WAITING_MAX:g} bytes of scheduler memory per waiting task, {group[0][2].split(' (')[0]} | "
                    + ", ".join(f"{w} {m} {v:.0f} B" for v, m, w in group)
                    + f" | {'yes' if worst[0] <= BYTES_PER_WAITING_MAX else 'NO'} |"
                )
    if xfer:
        worst = min(xfer)
        desc = ", ".join(
            f"{b} {m} {v:.2f} GB/s = {f:.0%}" for f, m, b, v, raw, rawf in xfer
        )
        raws = sorted({(m, raw, rawf) for f, m, b, v, raw, rawf in xfer})
        desc += " (raw TCP " + ", ".join(
            f"{m} {raw:.2f} GB/s, into a fresh buffer {fx(rawf, 2)}" for m, raw, rawf in raws) + ")"
        out.append(f"| 100 MB transfers ≥ {TRANSFER_FRAC_MIN:.0%} of raw loopback TCP | {desc} | {'yes' if worst[0] >= TRANSFER_FRAC_MIN else 'NO'} |")
    print("\n".join(out))


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    run = sys.argv[1]
    if any(
        os.path.exists(os.path.join(run, f"{mode}-{x}.jsonl"))
        for mode, _ in MODES
        for x in ("rask-dist", "dask-dist", "core")
    ):
        dist_main(run)
        return
    recs = load(run)
    have_capi = any(k[1] == "capi" for k in recs)
    out = []
    ratios = []  # (ratio, mode, bench, threads)
    cratios = []  # the same against the C API
    fixed = []  # noop_1: the fixed cost of one compute call, not a per-task figure
    per_task_100k = []  # (us, mode, impl)

    for mode, title in MODES:
        if not any(k[0] == mode for k in recs):
            continue
        out.append(f"### {title}\n")
        head = "| graph | threads | tasks | rask µs/task (min) |"
        sep = "|---|---:|---:|---:|"
        if have_capi:
            head += " C API µs/task |"
            sep += "---:|"
        head += " dask µs/task | dask / rask |"
        sep += "---:|---:|"
        if have_capi:
            head += " dask / C API |"
            sep += "---:|"
        head += " rask build µs/task |"
        sep += "---:|"
        if have_capi:
            head += " C API build µs/task |"
            sep += "---:|"
        head += " rask plan µs/task |"
        sep += "---:|"
        out += [head, sep]
        for g in GRAPHS:
            for t in (1, 2):
                r = recs.get((mode, "rask", g, t))
                d = recs.get((mode, "dask", g, t))
                c = recs.get((mode, "capi", g, t))
                if r is None and d is None:
                    continue
                ru = None if r is None else r["us_per_task"]
                du = None if d is None else d["us_per_task"]
                ratio = du / ru if ru and du else None
                if ratio is not None:
                    (fixed if g == "noop_1" else ratios).append((ratio, mode, g, t))
                if g == "noop_tree_100k" and t == 2:
                    if ru is not None:
                        per_task_100k.append((ru, mode, "rask"))
                    if c is not None:
                        per_task_100k.append((c["us_per_task"], mode, "C API"))
                tasks = (r or d)["tasks"]
                row = f"| {g} | {t} | {tasks} | {fmt(ru)} ({fmt(get(recs, (mode, 'rask', g, t), 'us_per_task_min'))}) |"
                if have_capi:
                    row += f" {fmt(None if c is None else c['us_per_task'])} |"
                row += f" {fmt(du, 1)} | **{fmt(ratio, 0)}×** |"
                if have_capi:
                    cu = None if c is None else c["us_per_task"]
                    cratio = du / cu if cu and du else None
                    if cratio is not None and g != "noop_1":
                        cratios.append((cratio, mode, g, t))
                    row += f" {fmt(cratio, 0)}× |"
                row += f" {fmt(get(recs, (mode, 'rask', g, t), 'build_us_per_task'))} |"
                if have_capi:
                    row += f" {fmt(get(recs, (mode, 'capi', g, t), 'build_us_per_task'))} |"
                row += f" {fmt(get(recs, (mode, 'rask', g, t), 'plan_us_per_task'))} |"
                out.append(row)
        out.append("")
        # The 1M-task figures.
        lines = []
        b = recs.get((mode, "rask", "build_1m", 0))
        if b:
            lines.append(
                f"- build 1M-leaf noop tree ({b['tasks']} tasks), Rust API: "
                f"{b['build_median_s']:.3f} s median (min {b['build_min_s']:.3f} s), "
                f"{b['build_us_per_task']:.3f} µs/task"
                + (f", waiting for a CPU {b['runqueue_wait_frac']:.0%} of the time" if "runqueue_wait_frac" in b else "")
            )
        cb = recs.get((mode, "capi", "build_1m", 0))
        if cb:
            lines.append(
                f"- build 1M-leaf noop tree ({cb['tasks']} tasks), C API: "
                f"{cb['build_median_s']:.3f} s median (min {cb['build_min_s']:.3f} s), "
                f"{cb['build_us_per_task']:.3f} µs/task"
                + (f", waiting for a CPU {cb['runqueue_wait_frac']:.0%} of the time" if "runqueue_wait_frac" in cb else "")
            )
        for t in (1, 2):
            m = recs.get((mode, "rask", "noop_tree_1m", t))
            if m:
                lines.append(
                    f"- compute 1M-leaf noop tree, threads={t}: {m['compute_s']:.3f} s "
                    f"({m['us_per_task']:.3f} µs/task), fresh-process build {m['build_s']:.3f} s, "
                    f"peak RSS {m['peak_rss_mb']:.0f} MB (graph alone {m['peak_rss_after_build_mb']:.0f} MB)"
                )
        if lines:
            out += lines + [""]

    # Targets.
    out.append("### Targets\n")
    out.append("| target | this run | met |")
    out.append("|---|---|---|")
    if per_task_100k:
        worst = max(per_task_100k)
        ok = worst[0] <= US_PER_TASK_MAX
        desc = ", ".join(f"{i} {m} {u:.3f}" for u, m, i in per_task_100k)
        out.append(f"| ≤ {US_PER_TASK_MAX:g} µs per no-op task, 100k tasks, 2 threads | {desc} µs/task | {'yes' if ok else 'NO'} |")
    if ratios:
        worst = min(ratios)
        ok = worst[0] >= RATIO_MIN
        out.append(
            f"| ≥ {RATIO_MIN:g}× lower than Dask's threaded scheduler on every graph (Rust API) | "
            f"lowest {worst[0]:.0f}× ({worst[2]}, threads={worst[3]}, {worst[1]}); "
            f"highest {max(ratios)[0]:.0f}× | {'yes' if ok else 'NO'} |"
        )
    if cratios:
        worst = min(cratios)
        ok = worst[0] >= RATIO_MIN
        out.append(
            f"| the same, through the C API | "
            f"lowest {worst[0]:.0f}× ({worst[2]}, threads={worst[3]}, {worst[1]}); "
            f"highest {max(cratios)[0]:.0f}× | {'yes' if ok else 'NO'} |"
        )
    if fixed:
        worst = min(fixed)
        out.append(
            f"| (not a target: one-task graph, the fixed cost of a compute call) | "
            f"lowest {worst[0]:.0f}× (threads={worst[3]}, {worst[1]}); "
            f"highest {max(fixed)[0]:.0f}× | {'≥ 50×' if worst[0] >= RATIO_MIN else '< 50×'} |"
        )
    cbuilds = [recs[k] for k in recs if k[1] == "capi" and k[2] == "build_1m"]
    rbuilds = [recs[k] for k in recs if k[1] == "rask" and k[2] == "build_1m"]
    if cbuilds:
        worst = max(b["build_median_s"] for b in cbuilds)
        out.append(f"| 1M-task graph built through the C API in < {BUILD_1M_MAX_S:g} s | {worst:.3f} s (slowest mode) | {'yes' if worst < BUILD_1M_MAX_S else 'NO'} |")
    elif rbuilds:
        worst = max(b["build_median_s"] for b in rbuilds)
        out.append(
            f"| 1M-task graph built through the C API in < {BUILD_1M_MAX_S:g} s | "
            f"C API not measured; Rust API {worst:.3f} s | not measured |"
        )
    mems = [recs[k] for k in recs if k[2] == "noop_tree_1m"]
    if mems:
        worst = max(m["peak_rss_mb"] for m in mems)
        out.append(f"| peak memory of a 1M no-op computation < {PEAK_RSS_MAX_MB:g} MB | {worst:.0f} MB (highest) | {'yes' if worst < PEAK_RSS_MAX_MB else 'NO'} |")
    print("\n".join(out))


if __name__ == "__main__":
    main()

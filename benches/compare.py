#!/usr/bin/env python3
"""Side-by-side table of one benchmark run (see benches/run.sh).

    python3 benches/compare.py benches/results/<run>

reads <run>/{unpinned,pinned}-{rask,capi,dask}.jsonl (any that exist) and
prints Markdown: per mode, each graph and thread count with rask's, the C
API's and Dask's µs/task and the ratio dask/rask; the 1M-task figures; and
the targets with whether this run meets them. Standard library only.
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


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    run = sys.argv[1]
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

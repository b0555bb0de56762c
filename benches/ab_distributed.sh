#!/usr/bin/env bash
# A before/after check of benches/distributed.rs (rask only): the bench of
# two source trees (e.g. a `git worktree add /tmp/before <commit>` and this
# one), run alternately (before, after, before, after, ...) unpinned and
# under `taskset -c 0`, on one machine in one sitting; prints the medians of
# the rounds and after/before ratios. Issue 14's "not a regression" check
# (benches/RESULTS.md) was made with it.
#
#   flock /tmp/rask-bench.lock benches/ab_distributed.sh BEFORE_TREE [ROUNDS] [AFTER_TREE]
#
# ROUNDS (default 3) pairs per mode; AFTER_TREE defaults to this repository.
# Each tree's `cargo bench --bench distributed --no-run` is built first
# (release; a worktree builds in its own target/).
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 BEFORE_TREE [ROUNDS] [AFTER_TREE]" >&2; exit 2; }
BEFORE_TREE="$1"
ROUNDS="${2:-3}"
MAIN="${3:-$(cd "$(dirname "$0")/.." && pwd)}"
exe_of() { # tree -> the distributed bench executable built there
    (cd "$1" && cargo bench --bench distributed --no-run --message-format=json 2>/dev/null) |
        python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "distributed":
        print(m["executable"])'
}
BEFORE=$(exe_of "$BEFORE_TREE")
AFTER=$(exe_of "$MAIN")
[ -x "$BEFORE" ] && [ -x "$AFTER" ] || { echo "ab.sh: a bench executable is missing ($BEFORE, $AFTER)" >&2; exit 1; }
OUT=$(mktemp -d /tmp/ab-distributed-XXXX)
echo "before: $BEFORE ($(git -C "$BEFORE_TREE" rev-parse --short HEAD))"
echo "after:  $AFTER ($(git -C "$MAIN" rev-parse --short HEAD))"
echo "out: $OUT; $(nproc) CPUs; $(date -u +%FT%TZ); load $(cut -d' ' -f1-3 /proc/loadavg)"
for mode in unpinned pinned; do
    PIN=()
    [ "$mode" = pinned ] && PIN=(taskset -c 0)
    for r in $(seq 1 "$ROUNDS"); do
        for side in before after; do
            bin=$BEFORE
            [ "$side" = after ] && bin=$AFTER
            echo "== $mode round $r: $side (load $(cut -d' ' -f1 /proc/loadavg))"
            env RUST_BACKTRACE=0 "${PIN[@]}" "$bin" --quick > "$OUT/$mode-$side-$r.jsonl" 2>/dev/null
        done
    done
done
python3 - "$OUT" <<'PY'
import glob, json, os, statistics, sys
out = sys.argv[1]
rows = {}
for f in sorted(glob.glob(os.path.join(out, "*.jsonl"))):
    mode, side, _ = os.path.basename(f)[:-6].split("-")
    for line in open(f):
        line = line.strip()
        if not line.startswith("{"):
            continue
        m = json.loads(line)
        for field, better in (("tasks_per_s", "higher"), ("median_us", "lower"), ("p99_us", "lower"),
                              ("gb_per_s", "higher"), ("bytes_per_waiting_task", "lower")):
            if field in m:
                rows.setdefault((mode, m["bench"], field, better), {}).setdefault(side, []).append(float(m[field]))
print(f"| mode | bench | figure | before (median of rounds) | after | after/before | better |")
print("|---|---|---|---|---|---|---|")
for (mode, bench, field, better), v in sorted(rows.items()):
    b, a = v.get("before"), v.get("after")
    if not b or not a:
        continue
    mb, ma = statistics.median(b), statistics.median(a)
    print(f"| {mode} | {bench} | {field} | {mb:.1f} ({min(b):.1f}-{max(b):.1f}) | {ma:.1f} ({min(a):.1f}-{max(a):.1f}) | {ma / mb:.3f} | {better} |")
PY
echo "raw: $OUT"

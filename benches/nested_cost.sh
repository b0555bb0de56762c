#!/usr/bin/env bash
# What one task of benches/nested_fib.py costs, in figures that load on a
# shared machine does not distort much: CPU time and context switches of the
# whole run (scheduler, client and both worker processes, counted by
# `perf stat`), for fib(16) and fib(20); their difference over the tasks'
# difference (18,698) is the cost of one more task, start-up excluded.
# rask only (--no-dask). For an A/B comparison run it alternately with
# RASK_LIB (the library) and PYTHONPATH (the Python package) of each side.
#
#   flock /tmp/rask-bench.lock benches/nested_cost.sh [--reps 3]
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=1
if [ "${1:-}" = --reps ]; then REPS=$2; fi
export RASK_LIB=${RASK_LIB:-$PWD/target/release/librask.so} PYTHONPATH=${PYTHONPATH:-$PWD/bindings/python}
PY=benches/.venv/bin/python
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for r in $(seq "$REPS"); do
    for n in 16 20; do
        perf stat -x, -e context-switches,task-clock -o "$tmp/$n.txt" \
            $PY benches/nested_fib.py --n $n --no-dask >/dev/null 2>&1
    done
    $PY - "$tmp" <<'PY'
import json, sys
def read(path):
    out = {}
    for line in open(path):
        f = line.split(",")
        if len(f) > 3 and f[0].replace(".", "", 1).isdigit():
            out[f[2]] = float(f[0])
    return out
a, b = read(sys.argv[1] + "/16.txt"), read(sys.argv[1] + "/20.txt")
tasks = 21891 - 3193
print(json.dumps({
    "cpu_us_per_task": round((b["task-clock"] - a["task-clock"]) * 1000 / tasks, 1),
    "context_switches_per_task": round((b["context-switches"] - a["context-switches"]) / tasks, 2),
}), flush=True)
PY
done

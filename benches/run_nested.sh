#!/usr/bin/env bash
# Issue 11's benchmarks, rask and dask.distributed in one run, unpinned and
# under `taskset -c 0`: task-spawning throughput (benches/nested_fib.py) and
# the Queue put -> get round trip (benches/queue_roundtrip.py; rask's workers
# as two processes like Dask's, then also both in one process). Writes JSON
# lines and machine.txt to benches/results/<UTC time>-nested/.
#
#   flock /tmp/rask-bench.lock benches/run_nested.sh [--n 25] [--dask-n 15] [--queue-n 1000]
set -euo pipefail
cd "$(dirname "$0")/.."
N=25 DASK_N=15 QN=1000
while [ $# -gt 0 ]; do
    case "$1" in
        --n) N=$2; shift ;;
        --dask-n) DASK_N=$2; shift ;;
        --queue-n) QN=$2; shift ;;
        *) echo "usage: $0 [--n N] [--dask-n N] [--queue-n N]" >&2; exit 2 ;;
    esac
    shift
done
OUT=benches/results/$(date -u +%Y%m%dT%H%M%SZ)-nested
mkdir -p "$OUT"
PY=benches/.venv/bin/python
export RASK_LIB=$PWD/target/release/librask.so PYTHONPATH=$PWD/bindings/python
{
    date -u
    nproc
    uptime
    git rev-parse HEAD
} >"$OUT/machine.txt"
for pin in "" "taskset -c 0"; do
    tag=${pin:+pinned}
    tag=${tag:-unpinned}
    echo "== fib, $tag" >&2
    $pin $PY benches/nested_fib.py --n "$N" --dask-n "$DASK_N" | tee "$OUT/fib-$tag.jsonl"
    echo "== queue round trip, $tag" >&2
    $pin $PY benches/queue_roundtrip.py --n "$QN" | tee "$OUT/queue-$tag.jsonl"
    echo "== queue round trip, rask's two workers in one process, $tag" >&2
    $pin $PY benches/queue_roundtrip.py --n "$QN" --no-dask --in-process | tee "$OUT/queue-in-process-$tag.jsonl"
    uptime >>"$OUT/machine.txt"
done
echo "results in $OUT" >&2

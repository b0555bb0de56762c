#!/usr/bin/env bash
# The distributed runtime side by side with dask.distributed.
#
#   benches/run_distributed.sh [--quick] [--no-dask] [--no-core] [--dask-100k-pinned] [--out DIR]
#   (also: benches/run.sh --distributed ...)
#
# 1. builds benches/distributed.rs and benches/scheduler_core.rs (and with
#    them target/release/rask-scheduler) in release;
# 2. makes benches/.venv with dask[distributed] and numpy if missing;
# 3. runs, unpinned and then under `taskset -c 0`:
#    - rask: benches/distributed.rs (LocalCluster, 2 workers x 1 thread,
#      raw loopback TCP, scheduler memory per waiting task in a
#      rask-scheduler process) -> <mode>-rask-dist.jsonl
#    - the scheduler core alone, 1,000 simulated workers, 1M tasks
#      (benches/scheduler_core.rs) -> <mode>-core.jsonl
#    - dask.distributed: benches/dask_distributed.py -> <mode>-dask-dist.jsonl
#    writing the load average before and after each step to machine.txt;
# 4. prints the side-by-side table (benches/compare.py), saved as table.md.
#
# dask.distributed runs 250-1,000 no-op tasks/s on this shared 2-CPU
# machine, so its 100k-task runs (one each, graph and map) take minutes:
# they run unpinned only, unless --dask-100k-pinned. Its processes=False
# cluster runs unpinned only (10k and the round trip), its scheduler
# memory figure likewise (pinning does not change it).
#
# --quick: fewer repetitions and 10k tasks only (a smoke test).
# --no-dask: rask only.  --no-core: skip the scheduler core bench.
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=""
DASK=1
CORE=1
DASK_100K_PINNED=0
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=--quick ;;
        --no-dask) DASK=0 ;;
        --no-core) CORE=0 ;;
        --dask-100k-pinned) DASK_100K_PINNED=1 ;;
        --out) OUT="$2"; shift ;;
        *) echo "usage: $0 [--quick] [--no-dask] [--no-core] [--dask-100k-pinned] [--out DIR]" >&2; exit 2 ;;
    esac
    shift
done
OUT="${OUT:-benches/results/dist-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$OUT"

echo "== building (release)" >&2
BINS=$(cargo bench --bench distributed --bench scheduler_core --no-run --message-format=json 2>/dev/null \
    | python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") \
            and m.get("target", {}).get("name") in ("distributed", "scheduler_core"):
        print(m["target"]["name"], m["executable"])')
DIST_BIN=$(awk '$1 == "distributed" {print $2}' <<<"$BINS")
CORE_BIN=$(awk '$1 == "scheduler_core" {print $2}' <<<"$BINS")
[ -x "$DIST_BIN" ] || { echo "could not find the distributed bench executable" >&2; exit 1; }
[ -x "$CORE_BIN" ] || { echo "could not find the scheduler_core bench executable" >&2; CORE=0; }

PY=benches/.venv/bin/python
if [ "$DASK" = 1 ]; then
    if ! "$PY" -c 'import distributed, numpy, psutil' 2>/dev/null; then
        echo "== setting up benches/.venv with dask[distributed] and numpy" >&2
        [ -x "$PY" ] || python3 -m venv benches/.venv
        "$PY" -m pip install -q --upgrade pip
        "$PY" -m pip install -q "dask[distributed]" numpy
    fi
fi

load() { cut -d' ' -f1-3 /proc/loadavg; }
{
    echo "date: $(date)"
    echo "git: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src Cargo.toml benches/distributed.rs benches/scheduler_core.rs || echo ' (src/, Cargo.toml or a rask bench modified in the working tree)')"
    echo "nproc: $(nproc)"
    echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
    echo "memory: $(free -h | awk '/^Mem:/ {print $2}')"
    echo "kernel: $(uname -r)"
    echo "rustc: $(rustc --version)"
    [ "$DASK" = 1 ] && echo "dask: $("$PY" -c 'import distributed, numpy, sys; print("distributed", distributed.__version__, "numpy", numpy.__version__, "python", sys.version.split()[0])')"
    echo "quick: ${QUICK:-no}"
    echo "load before: $(load)"
} > "$OUT/machine.txt"
cat "$OUT/machine.txt" >&2

# Runs "$@" with its stdout to $1's file, logging the load around it.
step() {
    local name="$1" file="$2"
    shift 2
    echo "== $name" >&2
    echo "load before $name: $(load)" >> "$OUT/machine.txt"
    "$@" > "$file"
    echo "load after $name: $(load)" >> "$OUT/machine.txt"
}

for mode in unpinned pinned; do
    PIN=()
    [ "$mode" = pinned ] && PIN=(taskset -c 0)
    # No backtraces in the log should a cluster shutdown panic (one did before 75e9253).
    step "rask distributed, $mode" "$OUT/$mode-rask-dist.jsonl" \
        env RUST_BACKTRACE=0 "${PIN[@]}" "$DIST_BIN" $QUICK
    if [ "$CORE" = 1 ]; then
        step "scheduler core, $mode" "$OUT/$mode-core.jsonl" "${PIN[@]}" "$CORE_BIN" $QUICK
    fi
    if [ "$DASK" = 1 ]; then
        DARGS=($QUICK)
        if [ "$mode" = pinned ]; then
            DARGS+=(--no-threads-cluster --no-memory)
            [ "$DASK_100K_PINNED" = 1 ] || DARGS+=(--sizes 10000)
        fi
        step "dask.distributed, $mode" "$OUT/$mode-dask-dist.jsonl" \
            "${PIN[@]}" "$PY" benches/dask_distributed.py "${DARGS[@]}"
    fi
done
echo "load after: $(load)" >> "$OUT/machine.txt"

python3 benches/compare.py "$OUT" | tee "$OUT/table.md"
echo >&2
echo "raw results: $OUT" >&2

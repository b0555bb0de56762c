#!/usr/bin/env bash
# The local executor side by side with Dask's threaded scheduler.
#
#   benches/run.sh [--quick] [--no-dask] [--out DIR]
#   benches/run.sh --distributed [...]   the distributed runtime against
#                                         dask.distributed: benches/run_distributed.sh
#
# 1. builds the Rust bench (benches/local.rs) and librask.so in release;
# 2. makes benches/.venv with dask[distributed] if it is missing;
# 3. compiles benches/c_api_bench.c against target/release/librask.so when the
#    C API (include/rask.h, rask_graph_new, rask_graph_add_task, rask_compute)
#    and that file exist;
# 4. runs rask, the C API bench and Dask unpinned, then again under
#    `taskset -c 0`, writing JSON lines to benches/results/<UTC time>/;
# 5. prints the side-by-side table (benches/compare.py), also saved as table.md.
#
# --quick: fewer repetitions (a smoke test, not figures to quote).
# --no-dask: skip Dask (its full run takes several minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = --distributed ]; then
    shift
    exec benches/run_distributed.sh "$@"
fi

QUICK=""
DASK=1
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=--quick ;;
        --no-dask) DASK=0 ;;
        --out) OUT="$2"; shift ;;
        *) echo "usage: $0 [--quick] [--no-dask] [--out DIR]" >&2; exit 2 ;;
    esac
    shift
done
OUT="${OUT:-benches/results/$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$OUT"

echo "== building (release)" >&2
cargo build --release --lib
BENCH_BIN=$(cargo bench --bench local --no-run --message-format=json 2>/dev/null \
    | python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "local" and m.get("executable"):
        print(m["executable"])')
[ -x "$BENCH_BIN" ] || { echo "could not find the bench executable" >&2; exit 1; }

CBENCH=""
LIB=target/release/librask.so
# nm's output is saved first: `nm | grep -q` fails under pipefail when grep
# exits at the first match and nm gets SIGPIPE.
SYMS=$( [ -f "$LIB" ] && nm -D --defined-only "$LIB" || true)
if [ -f include/rask.h ] && [ -f benches/c_api_bench.c ] \
    && grep -qw rask_graph_new <<<"$SYMS" \
    && grep -qw rask_graph_add_task <<<"$SYMS" \
    && grep -qw rask_compute <<<"$SYMS"; then
    echo "== compiling benches/c_api_bench.c" >&2
    CBENCH=target/release/c_api_bench
    cc -O2 -Wall -Wextra -Werror -Iinclude benches/c_api_bench.c \
        -L target/release -lrask -Wl,-rpath,"$PWD/target/release" -o "$CBENCH"
else
    echo "== C API bench skipped (needs include/rask.h, benches/c_api_bench.c and rask_graph_new/rask_graph_add_task/rask_compute in $LIB)" >&2
fi

PY=benches/.venv/bin/python
if [ "$DASK" = 1 ]; then
    if ! "$PY" -c 'import dask.threaded, distributed' 2>/dev/null; then
        echo "== creating benches/.venv with dask[distributed]" >&2
        python3 -m venv benches/.venv
        "$PY" -m pip install -q --upgrade pip
        "$PY" -m pip install -q "dask[distributed]"
    fi
fi

{
    echo "date: $(date)"
    echo "git: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src Cargo.toml || echo ' (src/ or Cargo.toml modified)')"
    echo "nproc: $(nproc)"
    echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
    echo "memory: $(free -h | awk '/^Mem:/ {print $2}')"
    echo "kernel: $(uname -r)"
    echo "rustc: $(rustc --version)"
    [ "$DASK" = 1 ] && echo "dask: $("$PY" -c 'import dask, sys; print(dask.__version__, "python", sys.version.split()[0])')"
    echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "quick: ${QUICK:-no}"
} > "$OUT/machine.txt"
cat "$OUT/machine.txt" >&2

for mode in unpinned pinned; do
    PIN=()
    [ "$mode" = pinned ] && PIN=(taskset -c 0)
    echo "== rask, $mode" >&2
    "${PIN[@]}" "$BENCH_BIN" $QUICK > "$OUT/$mode-rask.jsonl"
    if [ -n "$CBENCH" ]; then
        echo "== C API, $mode" >&2
        "${PIN[@]}" "$CBENCH" $QUICK > "$OUT/$mode-capi.jsonl"
    fi
    if [ "$DASK" = 1 ]; then
        echo "== dask, $mode" >&2
        "${PIN[@]}" "$PY" benches/dask_local.py $QUICK > "$OUT/$mode-dask.jsonl"
    fi
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/machine.txt"

python3 benches/compare.py "$OUT" | tee "$OUT/table.md"
echo >&2
echo "raw results: $OUT" >&2

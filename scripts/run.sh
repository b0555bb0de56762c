#!/usr/bin/env bash
# Sets up and builds rask (scripts/setup.sh), then runs the main job.
#
# usage: scripts/run.sh
#
# Part 1, a cluster you can watch: rask-scheduler with its dashboard, two
# rask-worker processes, a Python worker process and a Julia worker process
# (scripts/main_job/), and a Python client running a pipeline whose steps are
# a Rust builtin, a Python function and a Julia function (then a tree of
# Rust `add`s), with a progress bar and a performance report
# (target/rask-main-job-report.html: one HTML file, opens offline). It prints
# the report's path and the dashboard's address (open
# it while the job runs; RASK_MAIN_JOB_CHUNKS sets the size, 2000 by
# default, and RASK_MAIN_JOB_LINGER=SECONDS keeps the cluster up that long
# afterwards to look at it), then stops every process it started.
#
# Part 2, the C API on the local executor: the c-examples built by CMake,
#   01_hello_graph   an inc/add task graph computed on the local executor
#   04_parallel_map  a map over many inputs on the thread pool
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

"$root/scripts/setup.sh"

build_dir=${RASK_BUILD_DIR:-build}
main_job=(01_hello_graph 04_parallel_map)

now_ns() { date +%s%N; }

# ------------------------------------------------------------ part 1: a cluster
pids=()
job_dir=$(mktemp -d "${TMPDIR:-/tmp}/rask-main-job.XXXXXX")
stop_all() {
    local p
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    pids=()
}
trap 'stop_all; rm -rf "$job_dir"' EXIT

# launch NAME CMD...: CMD in the background, its output in $job_dir/NAME.log.
launch() {
    local name=$1
    shift
    "$@" >"$job_dir/$name.log" 2>&1 &
    pids+=($!)
}

# wait_line NAME REGEX: the first match of REGEX's group 1 in NAME's log,
# waiting up to 180 s (a process that ends first is an error).
wait_line() {
    local name=$1 re=$2 pid=$3 i
    for i in $(seq 1800); do
        if m=$(sed -n -E "s#.*$re.*#\1#p" "$job_dir/$name.log" | head -n 1) && [ -n "$m" ]; then
            echo "$m"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || { echo "run: $name ended:" >&2; cat "$job_dir/$name.log" >&2; return 1; }
        sleep 0.1
    done
    echo "run: $name printed no '$re' within 180 s" >&2
    return 1
}

bin=target/release
export RASK_LIB="$root/target/release/librask.so"
export PYTHONPATH="$root/bindings/python${PYTHONPATH:+:$PYTHONPATH}"
chunks=${RASK_MAIN_JOB_CHUNKS:-2000}

echo
echo "== main job, part 1: a cluster of four workers in three languages ($(nproc 2>/dev/null || echo '?') CPUs)"
launch scheduler "$bin/rask-scheduler" --port 0
address=$(wait_line scheduler 'listening on ([^ ]+)' "${pids[0]}")
dashboard=$(wait_line scheduler 'dashboard at ([^ ]+)' "${pids[0]}")
echo "-- scheduler at $address"
echo "-- dashboard at $dashboard   (open it in a browser: the task stream, workers, graph, events)"
launch worker-1 "$bin/rask-worker" "$address" --nthreads 1 --name rust-1
launch worker-2 "$bin/rask-worker" "$address" --nthreads 1 --name rust-2
launch python-worker python3 scripts/main_job/python_worker.py "$address"
launch julia-worker julia --startup-file=no --project=julia scripts/main_job/julia_worker.jl "$address"
echo "-- workers: 2 rask-worker (Rust builtins), 1 Python (py_clean), 1 Julia (jl_score); the Julia one takes a while to start"
start_ns=$(now_ns)
report="$root/target/rask-main-job-report.html"
python3 scripts/main_job/client.py "$address" "$chunks" "$dashboard" "$report"
end_ns=$(now_ns)
awk -v ns=$((end_ns - start_ns)) 'BEGIN { printf "-- part 1: %.1f s wall (workers joining included)\n", ns / 1e9 }'
curl_metrics() { python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' "$1"; }
echo "-- the scheduler's /metrics now (tasks finished, by function):"
curl_metrics "${dashboard%/status}/metrics" | grep -E '^rask_(tasks_finished_total|task_duration_seconds_count)' | sed 's/^/   /'
if [ -n "${RASK_MAIN_JOB_LINGER:-}" ]; then
    echo "-- the cluster stays up ${RASK_MAIN_JOB_LINGER} s: $dashboard"
    sleep "$RASK_MAIN_JOB_LINGER"
fi
stop_all
echo "-- every process of part 1 stopped"

echo
echo "== main job, part 2: rask through its C API, on the local executor"

total_start=$(now_ns)
for name in "${main_job[@]}"; do
    exe=$build_dir/example_$name
    if [ ! -x "$exe" ]; then
        echo "run: $exe was not built: is c-examples/$name.c missing?" >&2
        exit 1
    fi
    echo
    echo "-- $name"
    start=$(now_ns)
    "$exe"
    end=$(now_ns)
    awk -v ns=$((end - start)) -v n="$name" 'BEGIN { printf "-- %s: %.1f ms wall (process start to exit)\n", n, ns / 1e6 }'
done
total_end=$(now_ns)
echo
awk -v ns=$((total_end - total_start)) 'BEGIN { printf "== main job done in %.1f ms\n", ns / 1e6 }'

#!/usr/bin/env bash
# Sets up and builds rask (scripts/setup.sh), then runs the main job: real
# computations through the C API, with their results and timings.
#
# usage: scripts/run.sh
#
# The main job for now: the c-examples built by CMake,
#   01_hello_graph   an inc/add task graph computed on the local executor
#   04_parallel_map  a map over many inputs on the thread pool
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

"$root/scripts/setup.sh"

build_dir=${RASK_BUILD_DIR:-build}
main_job=(01_hello_graph 04_parallel_map)

now_ns() { date +%s%N; }

echo
echo "== main job: rask through its C API ($(nproc 2>/dev/null || echo '?') CPUs)"
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

#!/usr/bin/env bash
# The long forms of two tests (issue: "scale of the existing hostile-input
# and load tests"), which CI runs shorter:
#
# 1. tests/bad_input.rs at full size: RASK_BAD_FRAMES frames (default
#    1,000,000; CI 100,000) of garbage, mutated messages, bad hellos and
#    fatal frames at a live scheduler, a fifth as many at a worker's data
#    port; then the scheduler must have its one worker and no other
#    connection, compute a graph, and the data port must serve a peer.
# 2. tests/load.rs at full size: RASK_LOAD_TASKS no-op tasks (default
#    4,000,000: 4 clients x 1,000,000, submitted at once) on rask-scheduler +
#    2 rask-worker processes; every result right, the scheduler's peak RSS
#    per task (target <= 600 B), and its RSS after every key was released.
#
#   benches/scale.sh [FRAMES] [TASKS]
#
# Release build; prints each test's own figures line.
set -euo pipefail
cd "$(dirname "$0")/.."
FRAMES="${1:-1000000}"
TASKS="${2:-4000000}"
cargo test --release --test bad_input --test load --no-run >/dev/null 2>&1 ||
    cargo test --release --test bad_input --test load --no-run
echo "machine: $(nproc) CPUs, $(uname -sr), $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
run() {
    local start end status=0
    start=$(date +%s.%N)
    "$@" >"$log" 2>&1 || status=$?
    end=$(date +%s.%N)
    grep -E '^seed |^load:|test result' "$log" || true
    if [ "$status" -ne 0 ]; then
        echo "-- FAILED (exit $status); the end of its output:"
        tail -n 40 "$log"
    fi
    printf -- '-- %.1f s wall\n' "$(echo "$end - $start" | bc)"
}
echo "== bad input: $FRAMES frames at the scheduler, $((FRAMES / 5)) at the data port"
RASK_BAD_FRAMES="$FRAMES" run cargo test --release --test bad_input -- --nocapture --exact \
    a_flood_of_bad_frames_leaves_the_scheduler_and_worker_serving
echo "== load: $TASKS no-op tasks from 4 clients at once"
# Without invariant checks (the test's default is RASK_VALIDATE=amortized):
# the figures are those of release use.
RASK_VALIDATE=0 RASK_LOAD_TASKS="$TASKS" run cargo test --release --test load -- --nocapture

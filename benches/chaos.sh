#!/usr/bin/env bash
# The long form of tests/chaos.rs: a 10,000-task graph on rask-scheduler and
# 3 rask-worker processes, with many workers SIGKILLed at random moments
# (and replaced); every result is checked against rask::local.
#
#   benches/chaos.sh [KILLS] [SEED...]      default: 100 kills, seed 1
#
# Release build. For each seed it prints the test's figures line: kills,
# workers started, finished keys lost with the killed workers (and so
# recomputed from the graph), the time the kills took, the time until every
# result was back, and the whole run. RASK_CHAOS_GAP_MS=MIN..MAX sets the
# random pause before each kill (default 40..250).
set -euo pipefail
cd "$(dirname "$0")/.."
KILLS="${1:-100}"
shift || true
SEEDS=("$@")
[ ${#SEEDS[@]} -eq 0 ] && SEEDS=(1)
cargo test --release --test chaos --no-run >/dev/null 2>&1 || cargo test --release --test chaos --no-run
echo "machine: $(nproc) CPUs, $(uname -sr), $(date -u +%FT%TZ)"
for seed in "${SEEDS[@]}"; do
    start=$(date +%s.%N)
    RASK_CHAOS_KILLS="$KILLS" RASK_CHAOS_SEED="$seed" \
        cargo test --release --test chaos -- --nocapture --exact chaos_killed_workers_lose_nothing 2>&1 |
        grep -E '^chaos:|panicked|FAILED|test result' || true
    end=$(date +%s.%N)
    printf 'seed %s: %.1f s wall (with process start-up)\n' "$seed" "$(echo "$end - $start" | bc)"
done

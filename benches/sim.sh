#!/usr/bin/env bash
# The long runs of the two seeded simulations (CI runs 1,000 seeds of each):
#
# - sim_many_seeds: the scheduler core with played workers and clients
#   (src/scheduler/state/sim.rs);
# - cluster_sim_many_seeds: the scheduler core and real worker cores
#   together, messages in flight on in-order links, kills, data ports down,
#   duplicated messages, retirements (src/scheduler/state/cluster_sim.rs).
#
# Both check every invariant of both cores after every step and the results
# at the end. A failing seed stops the run and prints its last steps and the
# command that replays it alone.
#
#   benches/sim.sh [SEEDS] [FIRST]      (default 100000 seeds from 0)
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS="${1:-100000}"
FIRST="${2:-0}"
echo "machine: $(nproc) CPUs, $(uname -sr), $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
for t in sim::sim_many_seeds cluster_sim::cluster_sim_many_seeds; do
    echo "== $t: $SEEDS seeds from $FIRST"
    start=$(date +%s)
    RASK_SIM_SEEDS="$SEEDS" RASK_SIM_FIRST="$FIRST" \
        cargo test --release --lib -- --ignored --exact "scheduler::state::$t"
    echo "-- $t: $(( $(date +%s) - start )) s"
done

#!/bin/sh
# 07_c_worker_cluster.sh: 07_c_worker.c as separate processes, for ctest.
#
#   07_c_worker_cluster.sh PROGRAM RASK_SCHEDULER RASK_WORKER
#
# Starts `rask-scheduler --port 0`, one `rask-worker` (builtins only), the C
# worker (`PROGRAM worker ADDRESS`), then the client (`PROGRAM client
# ADDRESS`), which computes a graph using c_cube and c_label (only the C
# worker has them) and builtins, and checks the results. Then it stops the
# scheduler and checks that the C worker noticed and exited cleanly.
#
# Every process it started is killed on the way out, whatever happened
# (SIGTERM, then SIGKILL after 5 s). Exits 0 on success, 77 (ctest: skipped)
# when a binary is missing (1 when CI is set), 1 otherwise, printing the logs on failure.
set -u

if [ $# -ne 3 ]; then
    echo "usage: $0 PROGRAM RASK_SCHEDULER RASK_WORKER" >&2
    exit 2
fi
prog=$1
scheduler_bin=$2
worker_bin=$3
for b in "$prog" "$scheduler_bin" "$worker_bin"; do
    if [ ! -x "$b" ]; then
        case "${CI:-}" in
            1 | true | TRUE | yes)
                echo "FAILED: $b is not built (CI=true: no skipping)"
                exit 1
                ;;
        esac
        echo "skipped: $b is not built"
        exit 77
    fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/rask-07.XXXXXX") || exit 1
pids=""

alive() {
    kill -0 "$1" 2>/dev/null
}

cleanup() {
    status=$?
    trap - EXIT INT TERM HUP
    for p in $pids; do
        kill "$p" 2>/dev/null
    done
    i=0
    while [ $i -lt 50 ]; do
        left=""
        for p in $pids; do
            if alive "$p"; then left="$left $p"; fi
        done
        [ -z "$left" ] && break
        sleep 0.1
        i=$((i + 1))
    done
    for p in $pids; do
        kill -9 "$p" 2>/dev/null
    done
    wait 2>/dev/null
    if [ "$status" -ne 0 ]; then
        for f in "$tmp"/*.log; do
            [ -f "$f" ] || continue
            echo "---- $(basename "$f")"
            cat "$f"
        done
        echo "RASK_EXAMPLE_FAILED"
    fi
    rm -rf "$tmp"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

fail() {
    echo "FAILED: $*"
    exit 1
}

# 1. The scheduler, on a free port; it prints its address on stdout.
"$scheduler_bin" --port 0 >"$tmp/scheduler.out" 2>"$tmp/scheduler.log" &
scheduler=$!
pids="$scheduler"
address=""
i=0
while [ $i -lt 100 ]; do
    address=$(sed -n 's/^rask-scheduler listening on //p' "$tmp/scheduler.out")
    [ -n "$address" ] && break
    alive "$scheduler" || fail "rask-scheduler exited"
    sleep 0.1
    i=$((i + 1))
done
[ -n "$address" ] || fail "rask-scheduler did not say where it listens"
echo "scheduler at $address"

# 2. A rask-worker: builtins only.
"$worker_bin" "$address" >"$tmp/rask-worker.log" 2>&1 &
pids="$pids $!"

# 3. The C worker: c_cube and c_label.
"$prog" worker "$address" >"$tmp/c-worker.log" 2>&1 &
c_worker=$!
pids="$pids $c_worker"

# 4. The client: waits for both workers, computes, checks.
timeout 60 "$prog" client "$address" >"$tmp/client.log" 2>&1
client_status=$?
cat "$tmp/client.log"
[ "$client_status" -eq 0 ] || fail "the client exited with $client_status"
for want in "cubes: 1 8 27 64 125" "total = 225" "label = total is 225" "client: OK"; do
    grep -q "^$want\$" "$tmp/client.log" || fail "the client did not print '$want'"
done

# 5. Stopping the scheduler closes the workers: the C worker's pull loop
#    ends with RASK_DONE and it exits 0 by itself.
kill -TERM "$scheduler"
i=0
while alive "$c_worker" && [ $i -lt 100 ]; do
    sleep 0.1
    i=$((i + 1))
done
alive "$c_worker" && fail "the C worker did not stop when the scheduler did"
wait "$c_worker"
c_worker_status=$?
cat "$tmp/c-worker.log"
[ "$c_worker_status" -eq 0 ] || fail "the C worker exited with $c_worker_status"
grep -q "^the C worker pulled 1 c_label task\$" "$tmp/c-worker.log" ||
    fail "the C worker did not run the c_label task"
echo "07_c_worker_cluster: OK"

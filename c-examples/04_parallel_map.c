// 04_parallel_map.c: a map and a tree reduction over 10,000 tasks.
//
//     sq-0 = c_square(0)   sq-1 = c_square(1)   ...   sq-9999 = c_square(9999)
//     then `add` pairwise, level by level, down to one key "total"
//
// c_square runs on rask's threads, several at once; it counts its calls in
// an atomic counter passed as user_data, which rask releases through
// drop_user_data when it no longer needs the function. Timings are printed
// with clock_gettime.
//
// expect: total = 333283335000
// expect: c_square calls: 10000
// expect: tasks run: 19999 of 19999
// expect: user_data released: yes

#define _POSIX_C_SOURCE 200809L  // clock_gettime under strict C11

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rask.h"

#define N 10000

static void check(rask_status status, rask_error *err, const char *what) {
    if (status == RASK_OK) {
        return;
    }
    fprintf(stderr, "%s failed: %s: %s\n", what, rask_status_name(status),
            rask_error_message(err));
    rask_error_free(err);
    exit(1);
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

// What user_data points to: a call counter, and whether rask released it.
typedef struct {
    atomic_long calls;
    int released;
} square_state;

// x * x for an integer x. Thread-safe: it only touches its arguments and an
// atomic counter.
static rask_status c_square(void *user_data, const rask_value *const *args, size_t nargs,
                            rask_value **result, rask_error **err) {
    square_state *state = user_data;
    atomic_fetch_add_explicit(&state->calls, 1, memory_order_relaxed);
    int64_t x;
    if (nargs != 1) {
        *err = rask_error_new(RASK_ERR_INVALID_ARG, "c_square takes one argument");
        return RASK_ERR_INVALID_ARG;
    }
    rask_status status = rask_value_get_int(args[0], &x, err);
    if (status != RASK_OK) {
        return status;
    }
    *result = rask_value_int(x * x);
    return RASK_OK;
}

// Called once by rask when neither the registry nor a computation needs
// c_square any more.
static void release_square_state(void *user_data) {
    square_state *state = user_data;
    state->released = 1;
}

int main(void) {
    rask_error *err = NULL;
    static square_state state;  // outlives the registry; released flag checked at the end
    atomic_init(&state.calls, 0);

    rask_registry *registry = rask_registry_new();
    check(rask_registry_add_callback(registry, "c_square", c_square, &state,
                                     release_square_state, &err),
          err, "registering c_square");

    // The map: N independent tasks, each with a literal integer argument.
    double t0 = now_seconds();
    rask_graph *graph = rask_graph_new();
    char key[32];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "sq-%d", i);
        rask_arg *args[1] = {rask_arg_int(i)};
        check(rask_graph_add_task(graph, key, "c_square", args, 1, &err), err, "adding sq");
    }

    // The reduction: add neighbours pairwise, level by level, until one key
    // is left: N - 1 `add` tasks. `names` holds the keys of the current
    // level; an odd one out moves up to the next level as it is.
    static char names[N][32];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "sq-%d", i);
    }
    int width = N;
    for (int level = 1; width > 1; level++) {
        int next_width = 0;
        for (int j = 0; j + 1 < width; j += 2) {
            char out[32];
            if (width == 2) {
                snprintf(out, sizeof out, "total");
            } else {
                snprintf(out, sizeof out, "sum-%d-%d", level, j / 2);
            }
            const char *refs[2] = {names[j], names[j + 1]};
            check(rask_graph_add_task_refs(graph, out, "add", refs, 2, &err), err,
                  "adding a sum");
            // Safe to overwrite: slot next_width <= j has been read already.
            memcpy(names[next_width++], out, sizeof out);
        }
        if (width % 2 == 1) {
            memmove(names[next_width++], names[width - 1], sizeof names[0]);
        }
        width = next_width;
    }
    double t1 = now_seconds();
    printf("built %zu tasks in %.1f ms\n", rask_graph_len(graph), (t1 - t0) * 1e3);

    // Compute on every CPU (threads = 0), the calling thread included.
    rask_compute_options options = {0};
    const char *keys[] = {"total"};
    rask_value *total = NULL;
    rask_compute_stats stats;
    check(rask_compute(graph, keys, 1, registry, &options, &total, &stats, &err), err,
          "computing");
    double t2 = now_seconds();

    int64_t value;
    check(rask_value_get_int(total, &value, &err), err, "reading total");
    double seconds = t2 - t1;
    printf("total = %" PRId64 "\n", value);
    printf("c_square calls: %ld\n", atomic_load(&state.calls));
    printf("tasks run: %zu of %zu\n", stats.tasks_run, stats.tasks);
    printf("computed in %.1f ms: %.2f us per task, peak %zu results held\n", seconds * 1e3,
           seconds * 1e6 / (double)stats.tasks_run, stats.peak_live);

    rask_value_free(total);
    rask_graph_free(graph);
    rask_registry_free(registry);  // the last user of c_square: releases state
    printf("user_data released: %s\n", state.released ? "yes" : "no");

    // sum of i^2 for i < N = (N-1) N (2N-1) / 6
    int64_t expected = (int64_t)(N - 1) * N * (2 * N - 1) / 6;
    return value == expected && state.released ? 0 : 1;
}

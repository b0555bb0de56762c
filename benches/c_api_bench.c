// c_api_bench.c: the graphs of benches/local.rs, built and computed through
// the C API (include/rask.h), timed with clock_gettime.
//
//     cc -O2 -Wall -Wextra -Werror -Iinclude benches/c_api_bench.c
//        -Ltarget/release -lrask -Wl,-rpath,$PWD/target/release -o c_api_bench
//     ./c_api_bench [--quick]
//
// Prints one JSON object per line on stdout (the format of benches/local.rs,
// "impl": "capi") and a summary on stderr. Key names and graph shapes are
// those of local.rs and dask_local.py:
//
// - noop_1: one `noop()` task: the fixed cost of a rask_compute call.
// - noop_tree_10k / noop_tree_100k: N `noop()` leaves `n-<i>` and a tree of
//   `noop(children...)` of fan-in 8 (`t-<level>-<j>`) down to one root, built
//   with rask_graph_add_task_refs (leaves and tree nodes: no rask_arg).
// - chain_10k: `c-0 = inc(0)`, `c-<i> = inc(c-<i-1>)`.
// - tree_reduce_2^14: `l-<i> = inc(i)`, pairwise `add` (`a-<level>-<j>`).
// - build_1m: building the noop tree with 1M leaves (1,142,860 tasks),
//   key names formatted with snprintf as a C caller would.
//
// Compute time is one rask_compute call (key lookup, planning, running,
// results handed back); build time is every add_task call plus snprintf.

#define _POSIX_C_SOURCE 200809L  // clock_gettime under strict C11

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rask.h"

#define FANIN 8
#define NAME 32

typedef char name_t[NAME];

static void check(rask_status status, rask_error *err, const char *what) {
    if (status == RASK_OK) {
        return;
    }
    fprintf(stderr, "%s failed: %s: %s\n", what, rask_status_name(status),
            err ? rask_error_message(err) : "(no message)");
    rask_error_free(err);
    exit(1);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct {
    double median, min;
    int reps;
} timing;

static timing summarize(double *ts, int reps) {
    qsort(ts, (size_t)reps, sizeof ts[0], cmp_double);
    timing t;
    t.median = reps % 2 ? ts[reps / 2] : (ts[reps / 2 - 1] + ts[reps / 2]) / 2;
    t.min = ts[0];
    t.reps = reps;
    return t;
}

static char cpus[64] = "?";

static void read_cpus(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) {
        return;
    }
    char line[256];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "Cpus_allowed_list:", 18) == 0) {
            char *p = line + 18;
            while (*p == ' ' || *p == '\t') {
                p++;
            }
            p[strcspn(p, "\n")] = 0;
            size_t len = strlen(p);
            if (len >= sizeof cpus) {
                len = sizeof cpus - 1;
            }
            memcpy(cpus, p, len);
            cpus[len] = 0;
        }
    }
    fclose(f);
}

// This thread's time on a CPU and waiting on a run queue, in ns
// (/proc/thread-self/schedstat): shows how much of a timing other processes
// took.
static void schedstat(unsigned long long *run, unsigned long long *wait) {
    *run = *wait = 0;
    FILE *f = fopen("/proc/thread-self/schedstat", "r");
    if (f) {
        if (fscanf(f, "%llu %llu", run, wait) != 2) {
            *run = *wait = 0;
        }
        fclose(f);
    }
}

// ---------------------------------------------------------------------------
// Graphs. Each builder returns the graph, writes the root key and the task
// count.

static rask_graph *noop_tree(size_t n, char *root, size_t *tasks) {
    rask_error *err = NULL;
    rask_graph *g = rask_graph_new();
    name_t *level = malloc(n * sizeof *level);
    if (!level) {
        abort();
    }
    for (size_t i = 0; i < n; i++) {
        snprintf(level[i], NAME, "n-%zu", i);
        check(rask_graph_add_task_refs(g, level[i], "noop", NULL, 0, &err), err, "adding a leaf");
    }
    size_t total = n, width = n;
    const char *refs[FANIN];
    for (int depth = 1; width > 1; depth++) {
        size_t next = 0;
        for (size_t j = 0; j * FANIN < width; j++) {
            size_t k = 0;
            for (; k < FANIN && j * FANIN + k < width; k++) {
                refs[k] = level[j * FANIN + k];
            }
            name_t key;
            snprintf(key, NAME, "t-%d-%zu", depth, j);
            check(rask_graph_add_task_refs(g, key, "noop", refs, k, &err), err, "adding a node");
            // Safe: slot `next` <= j * FANIN has been read already.
            memcpy(level[next++], key, NAME);
        }
        total += next;
        width = next;
    }
    snprintf(root, NAME, "%s", level[0]);
    free(level);
    *tasks = total;
    return g;
}

static rask_graph *chain(size_t n, char *root, size_t *tasks) {
    rask_error *err = NULL;
    rask_graph *g = rask_graph_new();
    rask_arg *args[1] = {rask_arg_int(0)};
    check(rask_graph_add_task(g, "c-0", "inc", args, 1, &err), err, "adding c-0");
    name_t prev = "c-0", key;
    for (size_t i = 1; i < n; i++) {
        snprintf(key, NAME, "c-%zu", i);
        const char *refs[1] = {prev};
        check(rask_graph_add_task_refs(g, key, "inc", refs, 1, &err), err, "adding a link");
        memcpy(prev, key, NAME);
    }
    snprintf(root, NAME, "%s", prev);
    *tasks = n;
    return g;
}

static rask_graph *tree_reduce(int depth, char *root, size_t *tasks) {
    rask_error *err = NULL;
    size_t n = (size_t)1 << depth;
    rask_graph *g = rask_graph_new();
    name_t *level = malloc(n * sizeof *level);
    if (!level) {
        abort();
    }
    for (size_t i = 0; i < n; i++) {
        snprintf(level[i], NAME, "l-%zu", i);
        rask_arg *args[1] = {rask_arg_int((int64_t)i)};
        check(rask_graph_add_task(g, level[i], "inc", args, 1, &err), err, "adding a leaf");
    }
    size_t total = n, width = n;
    for (int d = 1; width > 1; d++) {
        for (size_t j = 0; j < width / 2; j++) {
            name_t key;
            snprintf(key, NAME, "a-%d-%zu", d, j);
            const char *refs[2] = {level[2 * j], level[2 * j + 1]};
            check(rask_graph_add_task_refs(g, key, "add", refs, 2, &err), err, "adding an add");
            memcpy(level[j], key, NAME);
        }
        width /= 2;
        total += width;
    }
    snprintf(root, NAME, "%s", level[0]);
    free(level);
    *tasks = total;
    return g;
}

// ---------------------------------------------------------------------------

typedef rask_graph *(*builder)(size_t param, char *root, size_t *tasks);

static rask_graph *noop_tree_b(size_t n, char *root, size_t *tasks) {
    return noop_tree(n, root, tasks);
}
static rask_graph *chain_b(size_t n, char *root, size_t *tasks) { return chain(n, root, tasks); }
static rask_graph *tree_reduce_b(size_t d, char *root, size_t *tasks) {
    return tree_reduce((int)d, root, tasks);
}

// expect_int < 0: the root's value must be nil.
static void bench(const char *name, builder make, size_t param, int64_t expect_int, int warmup,
                  int reps) {
    rask_error *err = NULL;
    char root[NAME];
    size_t tasks = 0;

    // Build time: a few builds, freed outside the timed region.
    int build_reps = reps < 5 ? reps : 5;
    double *ts = malloc(sizeof(double) * (size_t)(reps > build_reps ? reps : build_reps));
    for (int r = 0; r < build_reps; r++) {
        double t0 = now();
        rask_graph *g = make(param, root, &tasks);
        ts[r] = now() - t0;
        rask_graph_free(g);
    }
    timing build = summarize(ts, build_reps);

    rask_graph *g = make(param, root, &tasks);
    const char *keys[1] = {root};
    for (uint32_t threads = 1; threads <= 2; threads++) {
        rask_compute_options opts;
        memset(&opts, 0, sizeof opts);
        opts.threads = threads;
        for (int r = -warmup; r < reps; r++) {
            rask_value *result = NULL;
            rask_compute_stats stats;
            double t0 = now();
            check(rask_compute(g, keys, 1, NULL, &opts, &result, &stats, &err), err, name);
            double dt = now() - t0;
            if (stats.tasks_run != tasks) {
                fprintf(stderr, "%s: ran %zu tasks, expected %zu\n", name, stats.tasks_run, tasks);
                exit(1);
            }
            if (expect_int < 0) {
                if (rask_value_kind(result) != RASK_KIND_NIL) {
                    fprintf(stderr, "%s: the root is not nil\n", name);
                    exit(1);
                }
            } else {
                int64_t v;
                check(rask_value_get_int(result, &v, &err), err, "reading the root");
                if (v != expect_int) {
                    fprintf(stderr, "%s: got %" PRId64 ", expected %" PRId64 "\n", name, v,
                            expect_int);
                    exit(1);
                }
            }
            rask_value_free(result);
            if (r >= 0) {
                ts[r] = dt;
            }
        }
        timing t = summarize(ts, reps);
        double us = t.median / (double)tasks * 1e6, us_min = t.min / (double)tasks * 1e6;
        printf("{\"bench\": \"%s\", \"impl\": \"capi\", \"threads\": %u, \"tasks\": %zu, "
               "\"us_per_task\": %.4f, \"us_per_task_min\": %.4f, \"compute_median_s\": %.6f, "
               "\"compute_min_s\": %.6f, \"reps\": %d, \"build_median_s\": %.6f, "
               "\"build_us_per_task\": %.4f, \"cpus\": \"%s\"}\n",
               name, threads, tasks, us, us_min, t.median, t.min, t.reps, build.median,
               build.median / (double)tasks * 1e6, cpus);
        fflush(stdout);
        fprintf(stderr,
                "%18s threads=%u tasks=%7zu  compute %8.4f us/task (min %.4f)  build %.4f "
                "us/task\n",
                name, threads, tasks, us, us_min, build.median / (double)tasks * 1e6);
    }
    rask_graph_free(g);
    free(ts);
}

int main(int argc, char **argv) {
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    read_cpus();
    fprintf(stderr, "rask C API benchmark, %s (cpus allowed: %s)\n", rask_version_string(), cpus);

#define REPS(w, r) (quick ? 1 : (w)), (quick ? ((r) + 3) / 4 : (r))
    bench("noop_1", noop_tree_b, 1, -1, REPS(20, 201));
    bench("noop_tree_10k", noop_tree_b, 10000, -1, REPS(5, 31));
    bench("noop_tree_100k", noop_tree_b, 100000, -1, REPS(2, 11));
    bench("chain_10k", chain_b, 10000, 10000, REPS(5, 31));
    int64_t n = 1 << 14;
    bench("tree_reduce_2^14", tree_reduce_b, 14, n * (n + 1) / 2, REPS(5, 31));

    // build_1m: the 1M-leaf noop tree, built and freed.
    int reps = quick ? 2 : 5;
    double ts[5];
    size_t tasks = 0;
    char root[NAME];
    rask_graph *g = noop_tree(1000000, root, &tasks);  // warm-up
    rask_graph_free(g);
    unsigned long long run0, wait0, run1, wait1;
    schedstat(&run0, &wait0);
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        g = noop_tree(1000000, root, &tasks);
        ts[r] = now() - t0;
        rask_graph_free(g);
    }
    schedstat(&run1, &wait1);
    double ran = (double)(run1 - run0), waited = (double)(wait1 - wait0);
    timing t = summarize(ts, reps);
    printf("{\"bench\": \"build_1m\", \"impl\": \"capi\", \"threads\": 0, \"tasks\": %zu, "
           "\"build_median_s\": %.4f, \"build_min_s\": %.4f, \"build_us_per_task\": %.4f, "
           "\"reps\": %d, \"runqueue_wait_frac\": %.3f, \"cpus\": \"%s\"}\n",
           tasks, t.median, t.min, t.median / (double)tasks * 1e6, reps,
           ran + waited > 0 ? waited / (ran + waited) : 0.0, cpus);
    fprintf(stderr, "%18s tasks=%zu  %.3f s (min %.3f s), %.4f us/task\n", "build_1m", tasks,
            t.median, t.min, t.median / (double)tasks * 1e6);
    return 0;
}

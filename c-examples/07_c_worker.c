// 07_c_worker.c: a worker written in C joins a cluster and serves a
// function that no other worker offers.
//
// The worker offers two C functions:
//
//   c_cube(x)    -> x * x * x          a callback: rask calls it on the
//                                      worker's own threads
//   c_label(x)   -> "total is X"       pulled: the worker queues its tasks
//                                      and this program's main thread runs
//                                      them (rask_worker_next_task), as a
//                                      host with a GIL would
//
// and a client computes a graph that needs them and builtins:
//
//   x-i    = i                         i = 1..5
//   cube-i = c_cube(x-i)               only the C worker can run these
//   total  = sum([cube-1, ..., cube-5])   -> 225 (a builtin: any worker)
//   label  = c_label(total)            -> "total is 225" (the C worker)
//
// Three ways to run it:
//
//   07_c_worker                  everything in this process: a scheduler
//                                (rask_scheduler_start), a builtins-only
//                                worker, the C worker, and the client
//   07_c_worker worker ADDRESS   the C worker alone, joining the scheduler
//                                at ADDRESS until the scheduler closes
//   07_c_worker client ADDRESS   the client alone: waits for two workers,
//                                computes the graph, checks the results
//
// c-examples/07_c_worker_cluster.sh (a ctest test) runs `rask-scheduler`,
// `rask-worker` (builtins only) and the two modes as separate processes.
//
// expect: scheduler at tcp://127\.0\.0\.1:[0-9]+
// expect: C worker at tcp://127\.0\.0\.1:[0-9]+ serving c_cube and c_label
// expect: cubes: 1 8 27 64 125
// expect: total = 225
// expect: label = total is 225
// expect: the C worker pulled 1 c_label task
// expect: client: OK

#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rask.h"

#define N 5

static void check(rask_status status, rask_error *err, const char *what) {
    if (status == RASK_OK) {
        return;
    }
    fprintf(stderr, "%s failed: %s: %s\n", what, rask_status_name(status),
            rask_error_message(err));
    rask_error_free(err);
    exit(1);
}

// ------------------------------------------------------------------ worker

// c_cube: a callback, run on the worker's threads.
static rask_status c_cube(void *user_data, const rask_value *const *args, size_t nargs,
                          rask_value **result, rask_error **err) {
    (void)user_data;
    int64_t x;
    if (nargs != 1 || rask_value_get_int(args[0], &x, NULL) != RASK_OK) {
        *err = rask_error_new(RASK_ERR_INVALID_ARG, "c_cube expects one int");
        return RASK_ERR_INVALID_ARG;
    }
    *result = rask_value_int(x * x * x);
    return RASK_OK;
}

// Runs one pulled c_label task: "total is X".
static void run_c_label(rask_task *task) {
    int64_t x;
    if (rask_task_nargs(task) != 1 ||
        rask_value_get_int(rask_task_arg(task, 0), &x, NULL) != RASK_OK) {
        rask_task_fail(task, "c_label expects one int", NULL);  // consumes task
        return;
    }
    char text[64];
    int len = snprintf(text, sizeof text, "total is %" PRId64, x);
    rask_value *label = NULL;
    rask_error *err = NULL;
    if (rask_value_str(text, (size_t)len, &label, &err) != RASK_OK) {
        rask_task_fail(task, rask_error_message(err), NULL);
        rask_error_free(err);
        return;
    }
    rask_task_complete(task, label, NULL);  // consumes task and label
}

// Starts the C worker: c_cube as a callback, c_label pulled.
static rask_worker *start_c_worker(const char *scheduler) {
    rask_error *err = NULL;
    rask_registry *registry = rask_registry_new();
    check(rask_registry_add_callback(registry, "c_cube", c_cube, NULL, NULL, &err), err,
          "registering c_cube");
    check(rask_registry_add_pulled(registry, "c_label", &err), err, "registering c_label");

    rask_worker_options options = {0};
    options.name = "c-worker";
    options.threads = 1;
    rask_worker *worker = NULL;
    check(rask_worker_start(scheduler, &options, registry, &worker, &err), err,
          "starting the C worker");
    rask_registry_free(registry);  // the worker has its own copy
    printf("C worker at %s serving c_cube and c_label\n", rask_worker_address(worker));
    fflush(stdout);
    return worker;
}

// The host's pull loop: runs c_label tasks until the worker stops. Returns
// how many it ran.
static long pull_loop(const rask_worker *worker) {
    long pulled = 0;
    for (;;) {
        rask_task *task = NULL;
        rask_error *err = NULL;
        rask_status status = rask_worker_next_task(worker, 200, &task, &err);
        if (status == RASK_DONE) {
            return pulled;  // the scheduler closed the worker, or it was stopped
        }
        if (status == RASK_TIMEOUT) {
            continue;  // a real host could do other work here
        }
        check(status, err, "rask_worker_next_task");
        run_c_label(task);
        pulled++;
    }
}

// ------------------------------------------------------------------ client

// Computes the graph on the cluster at `scheduler` and checks it. Returns 0
// when every result is right.
static int run_client(const char *scheduler) {
    rask_error *err = NULL;
    rask_client *client = NULL;
    check(rask_client_connect(scheduler, NULL, &client, &err), err, "connecting");

    // c_cube exists only on the C worker: wait until both workers joined, so
    // that the scheduler knows someone offers it.
    size_t workers = 0;
    rask_status st = rask_client_wait_for_workers(client, 2, 30000, &workers, &err);
    if (st == RASK_TIMEOUT) {
        fprintf(stderr, "only %zu of 2 workers joined\n", workers);
        return 1;
    }
    check(st, err, "waiting for workers");

    rask_graph *graph = rask_graph_new();
    const char *keys[N + 2];
    char names[N][2][16];
    for (int i = 0; i < N; i++) {
        snprintf(names[i][0], sizeof names[i][0], "x-%d", i + 1);
        snprintf(names[i][1], sizeof names[i][1], "cube-%d", i + 1);
        check(rask_graph_add_value(graph, names[i][0], rask_value_int(i + 1), &err), err,
              "adding x-i");
        const char *refs[] = {names[i][0]};
        check(rask_graph_add_task_refs(graph, names[i][1], "c_cube", refs, 1, &err), err,
              "adding cube-i");
        keys[i] = names[i][1];
    }
    rask_arg *items[N];
    for (int i = 0; i < N; i++) {
        check(rask_arg_ref(names[i][1], &items[i], &err), err, "a reference");
    }
    rask_arg *list = NULL;
    check(rask_arg_list(items, N, &list, &err), err, "the list of cubes");
    check(rask_graph_add_task(graph, "total", "sum", &list, 1, &err), err, "adding total");
    const char *total_ref[] = {"total"};
    check(rask_graph_add_task_refs(graph, "label", "c_label", total_ref, 1, &err), err,
          "adding label");
    keys[N] = "total";
    keys[N + 1] = "label";

    rask_future *futures[N + 2];
    check(rask_client_compute(client, graph, keys, N + 2, futures, &err), err, "computing");
    rask_graph_free(graph);  // the client sent its own copy

    rask_value *values[N + 2];
    check(rask_client_gather(client, (const rask_future *const *)futures, N + 2, 30000, values,
                             &err),
          err, "gathering");

    int failures = 0;
    printf("cubes:");
    for (int i = 0; i < N; i++) {
        int64_t cube = 0;
        check(rask_value_get_int(values[i], &cube, &err), err, "a cube");
        printf(" %" PRId64, cube);
        failures += cube != (int64_t)(i + 1) * (i + 1) * (i + 1);
    }
    printf("\n");
    int64_t total = 0;
    check(rask_value_get_int(values[N], &total, &err), err, "total");
    printf("total = %" PRId64 "\n", total);
    failures += total != 225;
    const char *label = NULL;
    size_t label_len = 0;
    check(rask_value_get_str(values[N + 1], &label, &label_len, &err), err, "label");
    printf("label = %.*s\n", (int)label_len, label);
    failures += label_len != strlen("total is 225") || memcmp(label, "total is 225", label_len);

    for (int i = 0; i < N + 2; i++) {
        rask_value_free(values[i]);
        rask_future_free(futures[i]);
    }
    rask_client_free(client);
    printf("client: %s\n", failures ? "FAILED" : "OK");
    fflush(stdout);
    return failures ? 1 : 0;
}

// ------------------------------------------------------------ in-process

struct client_thread {
    const char *scheduler;
    const rask_worker *worker;
    int result;
};

// The client, on a thread of its own. When it is done it stops the C
// worker, which ends the main thread's pull loop with RASK_DONE.
static void *client_main(void *arg) {
    struct client_thread *ct = arg;
    ct->result = run_client(ct->scheduler);
    rask_error *err = NULL;
    check(rask_worker_stop(ct->worker, &err), err, "stopping the C worker");
    return NULL;
}

// Everything in one process: the scheduler, a builtins-only worker (what
// `rask-worker` is), the C worker with its pull loop on the main thread, and
// the client on a thread of its own.
static int run_all_in_process(void) {
    rask_error *err = NULL;
    rask_scheduler *scheduler = NULL;
    check(rask_scheduler_start(NULL, &scheduler, &err), err, "starting the scheduler");
    const char *address = rask_scheduler_address(scheduler);  // borrowed
    printf("scheduler at %s\n", address);

    rask_worker_options options = {0};
    options.threads = 1;
    rask_worker *builtins = NULL;
    check(rask_worker_start(address, &options, NULL, &builtins, &err), err,
          "starting the builtins worker");
    rask_worker *worker = start_c_worker(address);

    struct client_thread ct = {address, worker, 1};
    pthread_t thread;
    if (pthread_create(&thread, NULL, client_main, &ct) != 0) {
        fprintf(stderr, "pthread_create failed\n");
        return 1;
    }
    long pulled = pull_loop(worker);
    pthread_join(thread, NULL);
    printf("the C worker pulled %ld c_label task%s\n", pulled, pulled == 1 ? "" : "s");

    rask_worker_free(worker);
    rask_worker_free(builtins);
    rask_scheduler_free(scheduler);  // shuts the scheduler down
    return ct.result;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "worker") == 0) {
        rask_worker *worker = start_c_worker(argv[2]);
        long pulled = pull_loop(worker);
        printf("the C worker pulled %ld c_label task%s\n", pulled, pulled == 1 ? "" : "s");
        const char *why = rask_worker_stop_reason(worker);  // borrowed; NULL while running
        printf("worker stopped: %s\n", why ? why : "(still running)");
        rask_worker_free(worker);
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "client") == 0) {
        return run_client(argv[2]);
    }
    if (argc == 1) {
        return run_all_in_process();
    }
    fprintf(stderr, "usage: %s [worker ADDRESS | client ADDRESS]\n", argv[0]);
    return 2;
}

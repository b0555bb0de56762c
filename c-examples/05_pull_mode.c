// 05_pull_mode.c: run a function's tasks on threads of your own.
//
// "host_double" is registered as a *pulled* function: rask does not call
// it. When one of its tasks is ready, rask queues it, and two host threads
// take tasks with rask_computation_next_task, run them and hand the results
// back. Meanwhile rask's own thread runs the builtin `sum` over the results:
//
//     d-0 = host_double(0) ... d-99 = host_double(99)
//     total = sum([d-0, ..., d-99])                      -> 9900
//
// This is how hosts that must run task code on their own threads (Python
// with its GIL, Julia before 1.9) use rask.
//
// expect: pulled 100 tasks on 2 host threads
// expect: total = 9900
// expect: tasks run: 101 of 101

#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "rask.h"

#define N 100

static void check(rask_status status, rask_error *err, const char *what) {
    if (status == RASK_OK) {
        return;
    }
    fprintf(stderr, "%s failed: %s: %s\n", what, rask_status_name(status),
            rask_error_message(err));
    rask_error_free(err);
    exit(1);
}

// What each host thread does: pull, run, complete, until rask says DONE.
static void *host_thread(void *arg) {
    const rask_computation *comp = arg;
    long handled = 0;
    for (;;) {
        rask_task *task = NULL;
        rask_error *err = NULL;
        // Wait up to 100 ms for a task; a real host could do other work on
        // RASK_TIMEOUT (run its event loop, check for Ctrl-C, ...).
        rask_status status = rask_computation_next_task(comp, 100, &task, &err);
        if (status == RASK_DONE) {
            break;  // finished, failed or cancelled: no more tasks
        }
        if (status == RASK_TIMEOUT) {
            continue;
        }
        check(status, err, "next_task");

        // The task's key, function and arguments are borrowed from the task.
        int64_t x;
        if (rask_task_nargs(task) != 1 ||
            rask_value_get_int(rask_task_arg(task, 0), &x, NULL) != RASK_OK) {
            // Failing a task fails the computation, with this message.
            rask_task_fail(task, "host_double takes one integer", NULL);
            continue;
        }
        // Both the task and the result are consumed.
        status = rask_task_complete(task, rask_value_int(2 * x), &err);
        if (status != RASK_OK && status != RASK_DONE) {
            check(status, err, "completing a task");
        }
        handled++;
    }
    return (void *)handled;
}

int main(void) {
    rask_error *err = NULL;

    rask_registry *registry = rask_registry_new();
    check(rask_registry_add_pulled(registry, "host_double", &err), err, "registering");

    rask_graph *graph = rask_graph_new();
    rask_arg *items[N];
    char key[32];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "d-%d", i);
        rask_arg *args[1] = {rask_arg_int(i)};
        check(rask_graph_add_task(graph, key, "host_double", args, 1, &err), err, "adding");
        check(rask_arg_ref(key, &items[i], &err), err, "referencing");
    }
    rask_arg *list;
    check(rask_arg_list(items, N, &list, &err), err, "making the list");
    check(rask_graph_add_task(graph, "total", "sum", &list, 1, &err), err, "adding total");

    // Start in the background with one rask thread (for `sum`). The
    // computation keeps its own copy of the graph and the registry's
    // functions, so both can be freed now.
    const char *keys[] = {"total"};
    rask_compute_options options = {1};
    rask_computation *comp = NULL;
    check(rask_computation_start(graph, keys, 1, registry, &options, &comp, &err), err,
          "starting");
    rask_graph_free(graph);
    rask_registry_free(registry);

    // Two host threads pull concurrently.
    pthread_t threads[2];
    for (int i = 0; i < 2; i++) {
        if (pthread_create(&threads[i], NULL, host_thread, comp) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            return 1;
        }
    }
    long pulled = 0;
    for (int i = 0; i < 2; i++) {
        void *handled;
        pthread_join(threads[i], &handled);
        pulled += (long)handled;
    }
    printf("pulled %ld tasks on 2 host threads\n", pulled);

    // How did it end? Then fetch the result (a new value we own).
    check(rask_computation_wait(comp, -1, &err), err, "the computation");
    rask_value *total = NULL;
    check(rask_computation_results(comp, &total, &err), err, "fetching the result");
    int64_t value;
    check(rask_value_get_int(total, &value, &err), err, "reading total");
    rask_compute_stats stats;
    check(rask_computation_stats(comp, &stats, &err), err, "stats");
    printf("total = %" PRId64 "\n", value);
    printf("tasks run: %zu of %zu\n", stats.tasks_run, stats.tasks);

    rask_value_free(total);
    rask_computation_free(comp);
    return value == 9900 && pulled == N ? 0 : 1;
}

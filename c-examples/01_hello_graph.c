// 01_hello_graph.c: build the classic task graph in C and compute it.
//
//     a = 1          x = 10
//     b = c_inc(a)   y = c_inc(x)
//     z = add(b, y)                      -> 13
//
// `c_inc` is a C function registered as a callback; `add` is a rask builtin.
//
// expect: rask [0-9]+\.[0-9]+\.[0-9]+, C ABI 1
// expect: z = 13
// expect: b = 2, y = 11
// expect: tasks run: 3 of 3

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "rask.h"

// Every fallible rask call returns a rask_status and can hand back an owned
// rask_error. This helper reports a failure and exits; `err` is freed here.
static void check(rask_status status, rask_error *err, const char *what) {
    if (status == RASK_OK) {
        return;
    }
    fprintf(stderr, "%s failed: %s: %s\n", what, rask_status_name(status),
            rask_error_message(err));
    rask_error_free(err);
    exit(1);
}

// A task function: returns its single integer argument plus one.
//
// rask calls it on its own threads (possibly several at once), with
// borrowed arguments. On success it stores a new value in *result, which
// rask takes over. On failure it returns an error status and may describe
// the problem in *err.
static rask_status c_inc(void *user_data, const rask_value *const *args, size_t nargs,
                         rask_value **result, rask_error **err) {
    (void)user_data;
    if (nargs != 1) {
        *err = rask_error_new(RASK_ERR_INVALID_ARG, "c_inc takes exactly one argument");
        return RASK_ERR_INVALID_ARG;
    }
    int64_t x;
    rask_status status = rask_value_get_int(args[0], &x, err);
    if (status != RASK_OK) {
        return status;  // *err already says what was wrong
    }
    *result = rask_value_int(x + 1);
    return RASK_OK;
}

int main(void) {
    // The header and the library must agree on the ABI.
    if (rask_abi_version() != RASK_ABI_VERSION) {
        fprintf(stderr, "header is for ABI %d, library is ABI %u\n", RASK_ABI_VERSION,
                (unsigned)rask_abi_version());
        return 1;
    }
    printf("rask %s, C ABI %u\n", rask_version_string(), (unsigned)rask_abi_version());

    rask_error *err = NULL;

    // 1. A registry with our C function under the name "c_inc".
    rask_registry *registry = rask_registry_new();
    check(rask_registry_add_callback(registry, "c_inc", c_inc, NULL, NULL, &err), err,
          "registering c_inc");

    // 2. The graph. Literal values are consumed by rask_graph_add_value.
    rask_graph *graph = rask_graph_new();
    check(rask_graph_add_value(graph, "a", rask_value_int(1), &err), err, "adding a");
    check(rask_graph_add_value(graph, "x", rask_value_int(10), &err), err, "adding x");

    // A task whose arguments are all other keys: the _refs fast path.
    const char *b_args[] = {"a"};
    check(rask_graph_add_task_refs(graph, "b", "c_inc", b_args, 1, &err), err, "adding b");

    // The general form: a list of rask_arg, each consumed by the call.
    rask_arg *y_args[1];
    check(rask_arg_ref("x", &y_args[0], &err), err, "making a reference to x");
    check(rask_graph_add_task(graph, "y", "c_inc", y_args, 1, &err), err, "adding y");

    const char *z_args[] = {"b", "y"};
    check(rask_graph_add_task_refs(graph, "z", "add", z_args, 2, &err), err, "adding z");

    check(rask_graph_validate(graph, &err), err, "validating the graph");

    // 3. Compute z, b and y. Each result is a new value we own.
    const char *keys[] = {"z", "b", "y"};
    rask_value *results[3];
    rask_compute_stats stats;
    check(rask_compute(graph, keys, 3, registry, NULL, results, &stats, &err), err,
          "computing");

    int64_t z, b, y;
    check(rask_value_get_int(results[0], &z, &err), err, "reading z");
    check(rask_value_get_int(results[1], &b, &err), err, "reading b");
    check(rask_value_get_int(results[2], &y, &err), err, "reading y");
    printf("z = %" PRId64 "\n", z);
    printf("b = %" PRId64 ", y = %" PRId64 "\n", b, y);
    printf("tasks run: %zu of %zu\n", stats.tasks_run, stats.tasks);

    // 4. Everything made by rask is freed by rask.
    for (size_t i = 0; i < 3; i++) {
        rask_value_free(results[i]);
    }
    rask_graph_free(graph);
    rask_registry_free(registry);
    return z == 13 ? 0 : 1;
}

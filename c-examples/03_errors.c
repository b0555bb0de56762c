// 03_errors.c: how rask reports what went wrong.
//
// Every fallible call returns a rask_status; pass a `rask_error **` to also
// get a message (free it with rask_error_free). This program provokes four
// errors and checks each status and that each message names the culprits:
//
//   1. a cycle (p -> q -> p)             RASK_ERR_GRAPH, names 'p' and 'q'
//   2. a reference to a missing key      RASK_ERR_GRAPH, names both keys
//   3. a C callback that fails           RASK_ERR_TASK_FAILED, names the key,
//                                        the function and its message
//   4. a NULL argument                   RASK_ERR_NULL_ARG, names the parameter
//
// expect: cycle: RASK_ERR_GRAPH: the graph has a cycle: '[pq]' -> '[pq]' -> '[pq]'
// expect: missing key: RASK_ERR_GRAPH: key 'total' depends on 'nowhere'
// expect: failing callback: RASK_ERR_TASK_FAILED: task 'root' \(c_isqrt\) failed: c_isqrt: -4 is negative
// expect: NULL argument: RASK_ERR_NULL_ARG: rask_graph_add_value: argument 'key' must not be NULL
// expect: all 4 errors were reported as expected

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rask.h"

static int failures = 0;

// Checks that `status` is `want` and that the message contains every string
// of the NULL-terminated list `needles`; prints the error. Frees `err`.
static void expect_error(const char *what, rask_status status, rask_error *err,
                         rask_status want, const char *const *needles) {
    const char *message = rask_error_message(err);  // "" if err is NULL
    printf("%s: %s: %s\n", what, rask_status_name(status), message);
    if (status != want) {
        printf("  RASK_EXAMPLE_FAILED: expected %s\n", rask_status_name(want));
        failures++;
    }
    if (err == NULL || rask_error_status(err) != status) {
        printf("  RASK_EXAMPLE_FAILED: the error does not carry the status\n");
        failures++;
    }
    for (; *needles != NULL; needles++) {
        if (strstr(message, *needles) == NULL) {
            printf("  RASK_EXAMPLE_FAILED: the message does not mention %s\n", *needles);
            failures++;
        }
    }
    rask_error_free(err);
}

// Stops the program when a call that should work does not.
static void check(rask_status status, rask_error *err, const char *what) {
    if (status != RASK_OK) {
        fprintf(stderr, "%s failed: %s: %s\n", what, rask_status_name(status),
                rask_error_message(err));
        exit(1);
    }
}

// A C task function: the integer square root of a non-negative integer. It
// refuses negative numbers, with a message.
static rask_status c_isqrt(void *user_data, const rask_value *const *args, size_t nargs,
                           rask_value **result, rask_error **err) {
    (void)user_data;
    int64_t x;
    if (nargs != 1) {
        *err = rask_error_new(RASK_ERR_INVALID_ARG, "c_isqrt takes one argument");
        return RASK_ERR_INVALID_ARG;
    }
    rask_status status = rask_value_get_int(args[0], &x, err);
    if (status != RASK_OK) {
        return status;
    }
    if (x < 0) {
        char message[96];
        snprintf(message, sizeof message, "c_isqrt: %" PRId64 " is negative", x);
        *err = rask_error_new(RASK_ERR_TASK_FAILED, message);  // rask frees it
        return RASK_ERR_TASK_FAILED;
    }
    int64_t r = 0;
    while ((r + 1) * (r + 1) <= x) {
        r++;
    }
    *result = rask_value_int(r);
    return RASK_OK;
}

int main(void) {
    rask_error *err = NULL;

    // 1. A cycle: p needs q and q needs p. Adding the tasks works (keys may
    //    be referenced before they exist); validating finds the cycle.
    {
        rask_graph *graph = rask_graph_new();
        const char *p_args[] = {"q"};
        const char *q_args[] = {"p"};
        check(rask_graph_add_task_refs(graph, "p", "inc", p_args, 1, &err), err, "adding p");
        check(rask_graph_add_task_refs(graph, "q", "inc", q_args, 1, &err), err, "adding q");
        rask_status status = rask_graph_validate(graph, &err);
        const char *needles[] = {"cycle", "'p'", "'q'", NULL};
        expect_error("cycle", status, err, RASK_ERR_GRAPH, needles);
        err = NULL;
        rask_graph_free(graph);
    }

    // 2. A missing key: total = add(a, nowhere), and "nowhere" is never
    //    defined. rask_compute reports it before running anything, and
    //    leaves the result NULL.
    {
        rask_graph *graph = rask_graph_new();
        check(rask_graph_add_value(graph, "a", rask_value_int(1), &err), err, "adding a");
        const char *args[] = {"a", "nowhere"};
        check(rask_graph_add_task_refs(graph, "total", "add", args, 2, &err), err,
              "adding total");
        const char *keys[] = {"total"};
        rask_value *result = NULL;
        rask_status status = rask_compute(graph, keys, 1, NULL, NULL, &result, NULL, &err);
        const char *needles[] = {"'total'", "'nowhere'", NULL};
        expect_error("missing key", status, err, RASK_ERR_GRAPH, needles);
        err = NULL;
        if (result != NULL) {
            printf("  RASK_EXAMPLE_FAILED: a failed compute wrote a result\n");
            failures++;
        }
        rask_graph_free(graph);
    }

    // 3. A callback that fails: the computation stops and the error names the
    //    task's key and function, followed by the callback's own message.
    {
        rask_registry *registry = rask_registry_new();
        check(rask_registry_add_callback(registry, "c_isqrt", c_isqrt, NULL, NULL, &err), err,
              "registering c_isqrt");
        rask_graph *graph = rask_graph_new();
        check(rask_graph_add_value(graph, "x", rask_value_int(-4), &err), err, "adding x");
        const char *args[] = {"x"};
        check(rask_graph_add_task_refs(graph, "root", "c_isqrt", args, 1, &err), err,
              "adding root");
        const char *keys[] = {"root"};
        rask_value *result = NULL;
        rask_status status = rask_compute(graph, keys, 1, registry, NULL, &result, NULL, &err);
        const char *needles[] = {"'root'", "c_isqrt", "-4 is negative", NULL};
        expect_error("failing callback", status, err, RASK_ERR_TASK_FAILED, needles);
        err = NULL;
        rask_graph_free(graph);
        rask_registry_free(registry);
    }

    // 4. A NULL where a pointer is required: no crash, an error naming the
    //    function and the parameter. The value passed is consumed anyway.
    {
        rask_graph *graph = rask_graph_new();
        rask_status status = rask_graph_add_value(graph, NULL, rask_value_int(1), &err);
        const char *needles[] = {"rask_graph_add_value", "'key'", NULL};
        expect_error("NULL argument", status, err, RASK_ERR_NULL_ARG, needles);
        err = NULL;
        // Passing NULL for `err` is fine too: only the status comes back.
        if (rask_graph_validate(NULL, NULL) != RASK_ERR_NULL_ARG) {
            printf("  RASK_EXAMPLE_FAILED: expected RASK_ERR_NULL_ARG without an error slot\n");
            failures++;
        }
        rask_graph_free(graph);
    }

    if (failures > 0) {
        printf("%d check(s) failed\n", failures);
        return 1;
    }
    printf("all 4 errors were reported as expected\n");
    return 0;
}

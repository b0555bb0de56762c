// 06_cluster_client.c: a local cluster in one call, and a client on it.
//
// rask_cluster_start runs a scheduler and two workers inside this process
// (each worker on its own threads, talking over loopback TCP, as a real
// cluster does). A client then
//
//   - submits one task:          x = inc(41)                      -> 42
//   - maps a C function:         sq-i = c_square(i), i = 0..9
//   - uses futures as arguments: total = sum([sq-0, ..., sq-9])    -> 285
//   - scatters a value:          offset = 1000 (stored on a worker)
//                                big = add(total, offset)          -> 1285
//   - iterates as_completed over the squares, adding work while
//     iterating: each square below 20 also gets inc(square), which
//     joins the same iteration
//   - gathers everything at the end.
//
// expect: cluster at tcp://127\.0\.0\.1:[0-9]+ with 2 workers
// expect: x = 42
// expect: key: inc-1947b44a679fe4c234ac24d46ccbb2d0
// expect: key: mul-78af0688493ed884f7a1fafdf525a2b1
// expect: key: len-1a8af0223c2b69788d6347cba7f21484
// expect: as_completed: 10 squares, 5 incs added while iterating, 15 futures in all
// expect: incremented small squares sum to 35
// expect: squares: 0 1 4 9 16 25 36 49 64 81
// expect: total = 285, big = 1285
// expect: a failing task: RASK_ERR_TASK_FAILED: .*c_square.*expects an int

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rask.h"

#define N 10

static void check(rask_status status, rask_error *err, const char *what) {
    if (status == RASK_OK) {
        return;
    }
    fprintf(stderr, "%s failed: %s: %s\n", what, rask_status_name(status),
            rask_error_message(err));
    rask_error_free(err);
    exit(1);
}

static int64_t get_int(const rask_value *v, const char *what) {
    int64_t x = 0;
    rask_error *err = NULL;
    check(rask_value_get_int(v, &x, &err), err, what);
    return x;
}

// A C task function, run by the cluster's workers on their threads.
static rask_status c_square(void *user_data, const rask_value *const *args, size_t nargs,
                            rask_value **result, rask_error **err) {
    (void)user_data;
    int64_t x;
    if (nargs != 1 || rask_value_get_int(args[0], &x, NULL) != RASK_OK) {
        *err = rask_error_new(RASK_ERR_INVALID_ARG, "c_square expects an int");
        return RASK_ERR_INVALID_ARG;
    }
    *result = rask_value_int(x * x);
    return RASK_OK;
}

int main(void) {
    rask_error *err = NULL;

    // 1. The cluster: two workers of one thread each, with c_square on every
    //    worker (the registry is copied; we can free ours at once).
    rask_registry *registry = rask_registry_new();
    check(rask_registry_add_callback(registry, "c_square", c_square, NULL, NULL, &err), err,
          "registering c_square");
    rask_cluster_options copts = {0};
    copts.workers = 2;
    copts.threads_per_worker = 1;
    rask_cluster *cluster = NULL;
    check(rask_cluster_start(&copts, registry, &cluster, &err), err, "starting the cluster");
    rask_registry_free(registry);
    printf("cluster at %s with %u workers\n", rask_cluster_address(cluster),
           (unsigned)copts.workers);

    // 2. A client. rask_client_connect(rask_cluster_address(cluster), ...)
    //    would do the same.
    rask_client *client = NULL;
    check(rask_cluster_client(cluster, &client, &err), err, "connecting a client");

    // 3. submit: one task; its arguments are consumed.
    rask_arg *x_args[] = {rask_arg_int(41)};
    rask_future *x = NULL;
    check(rask_client_submit(client, "inc", x_args, 1, &x, &err), err, "submitting inc");
    rask_value *xv = NULL;
    check(rask_future_result(x, -1, &xv, &err), err, "x's result");
    printf("x = %" PRId64 "\n", get_int(xv, "x"));
    rask_value_free(xv);

    // 3b. The key of a call is a hash of the function and its arguments (a
    //     "pure key", docs/protocol.md): the same in every language, so the
    //     same call from any client is one task. These are the keys of
    //     tests/vectors/pure-keys.txt.
    printf("key of inc(41): %s\n", rask_future_key(x));
    {
        rask_value *abc = NULL;
        check(rask_value_str("abc", 3, &abc, &err), err, "a string");
        rask_arg *calls[3][2] = {{rask_arg_int(1), NULL},
                                 {rask_arg_float(2.5), rask_arg_int(-1)},
                                 {rask_arg_value(abc), NULL}};
        const char *funcs[3] = {"inc", "mul", "len"};
        const size_t nargs[3] = {1, 2, 1};
        for (int i = 0; i < 3; i++) {
            rask_future *f = NULL;
            check(rask_client_submit(client, funcs[i], calls[i], nargs[i], &f, &err), err,
                  "submitting a call for its key");
            printf("key: %s\n", rask_future_key(f));
            rask_future_free(f);
        }
    }

    // 4. map: c_square over 0..N-1, one argument per call.
    rask_arg *sq_args[N];
    for (int i = 0; i < N; i++) {
        sq_args[i] = rask_arg_int(i);
    }
    rask_future *sq[N];
    check(rask_client_map(client, "c_square", sq_args, N, 1, sq, &err), err, "mapping c_square");

    // 5. Futures as arguments: sum([sq-0, ..., sq-9]). rask_arg_future makes
    //    an argument that refers to the future's key; the future stays ours.
    rask_arg *items[N];
    for (int i = 0; i < N; i++) {
        items[i] = rask_arg_future(sq[i]);
    }
    rask_arg *list = NULL;
    check(rask_arg_list(items, N, &list, &err), err, "the list of squares");
    rask_future *total = NULL;
    check(rask_client_submit(client, "sum", &list, 1, &total, &err), err, "submitting sum");

    // 6. scatter: a value stored on a worker, used like any future.
    rask_value *offset_value = rask_value_int(1000);
    rask_future *offset = NULL;
    check(rask_client_scatter(client, &offset_value, 1, false, &offset, &err), err,
          "scattering");
    rask_arg *big_args[] = {rask_arg_future(total), rask_arg_future(offset)};
    rask_future *big = NULL;
    check(rask_client_submit(client, "add", big_args, 2, &big, &err), err, "submitting add");

    // 7. as_completed over the squares. Each square below 20 also gets an
    //    inc, which we add to the same iteration: it is yielded later.
    rask_as_completed *ac = NULL;
    check(rask_as_completed_new(client, (const rask_future *const *)sq, N, &ac, &err), err,
          "as_completed");
    int squares_seen = 0, incs_added = 0, yielded = 0;
    int64_t inc_sum = 0;
    for (;;) {
        rask_future *done = NULL;
        rask_status st = rask_as_completed_next(ac, -1, &done, &err);
        if (st == RASK_DONE) {
            break;
        }
        check(st, err, "as_completed_next");
        yielded++;
        rask_value *v = NULL;
        check(rask_future_result(done, 0, &v, &err), err, "a completed future's result");
        int64_t value = get_int(v, "a result");
        rask_value_free(v);

        // Is it one of the squares? (Keys are the cluster's names for them.)
        int is_square = 0;
        for (int i = 0; i < N; i++) {
            if (strcmp(rask_future_key(done), rask_future_key(sq[i])) == 0) {
                is_square = 1;
            }
        }
        if (is_square) {
            squares_seen++;
            if (value < 20) {
                rask_arg *inc_args[] = {rask_arg_future(done)};
                rask_future *inc = NULL;
                check(rask_client_submit(client, "inc", inc_args, 1, &inc, &err), err,
                      "submitting an inc");
                check(rask_as_completed_add(ac, inc, &err), err, "adding to as_completed");
                rask_future_free(inc);  // the iterator holds its own reference
                incs_added++;
            }
        } else {
            inc_sum += value;
        }
        rask_future_free(done);  // each yielded future is a new reference
    }
    rask_as_completed_free(ac);
    printf("as_completed: %d squares, %d incs added while iterating, %d futures in all\n",
           squares_seen, incs_added, yielded);
    printf("incremented small squares sum to %" PRId64 "\n", inc_sum);

    // 8. gather: the values of many futures in one call.
    rask_value *values[N];
    check(rask_client_gather(client, (const rask_future *const *)sq, N, -1, values, &err), err,
          "gathering the squares");
    printf("squares:");
    for (int i = 0; i < N; i++) {
        printf(" %" PRId64, get_int(values[i], "a square"));
        rask_value_free(values[i]);
    }
    printf("\n");
    const rask_future *last[] = {total, big};
    rask_value *last_values[2];
    check(rask_client_gather(client, last, 2, -1, last_values, &err), err, "gathering totals");
    printf("total = %" PRId64 ", big = %" PRId64 "\n", get_int(last_values[0], "total"),
           get_int(last_values[1], "big"));
    rask_value_free(last_values[0]);
    rask_value_free(last_values[1]);

    // 9. A task that fails: the error names the task, its function, the
    //    worker and the function's message.
    rask_value *s = NULL;
    check(rask_value_str("not a number", strlen("not a number"), &s, &err), err, "a string");
    rask_arg *bad_args[] = {rask_arg_value(s)};
    rask_future *bad = NULL;
    check(rask_client_submit(client, "c_square", bad_args, 1, &bad, &err), err,
          "submitting a bad c_square");
    rask_value *nothing = NULL;
    rask_status st = rask_future_result(bad, -1, &nothing, &err);
    printf("a failing task: %s: %s\n", rask_status_name(st), rask_error_message(err));
    rask_error_free(err);
    err = NULL;
    if (st != RASK_ERR_TASK_FAILED || rask_future_status(bad) != RASK_FUTURE_ERROR) {
        fprintf(stderr, "expected the task to fail\n");
        return 1;
    }

    // 10. Futures first (each releases its key on the scheduler), then the
    //     client, then the cluster.
    rask_future_free(bad);
    rask_future_free(x);
    rask_future_free(total);
    rask_future_free(offset);
    rask_future_free(big);
    for (int i = 0; i < N; i++) {
        rask_future_free(sq[i]);
    }
    rask_client_free(client);
    rask_cluster_free(cluster);
    return 0;
}

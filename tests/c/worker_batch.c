// worker_batch.c: a host serving a worker's pulled functions in batches,
// rask_worker_take_tasks / rask_worker_complete_tasks / rask_worker_detach_task /
// rask_worker_secede_task.
// The buffers are read and written with rask's own value functions
// (rask_value_from_msgpack / rask_value_to_msgpack). Checks: every task is
// handed out once, at most `max` per call; results and failures (with and
// without exception and traceback) reach the client; a refused call (bad
// msgpack, bad shapes, unknown or repeated ids) ends no task; a detached task
// ends through its own handle and is no longer known to the batch; a task
// seceded with rask_worker_secede_task likewise, and the results handed
// over in that call end their tasks.
#include "check.h"

#define NINC 40
#define MAX 16

static rask_value *str_value(const char *s) {
    rask_value *v = NULL;
    MUST(rask_value_str(s, strlen(s), &v, E));
    return v;
}

static rask_value *array_of(rask_value **items, size_t n) {
    rask_value *a = rask_value_array_new();
    for (size_t i = 0; i < n; i++) MUST(rask_value_array_push(a, items[i], E));
    return a;
}

// Encodes `v` (consumed) and hands the bytes to rask_worker_complete_tasks.
static rask_status complete(const rask_worker *w, rask_value *v, rask_error **err) {
    uint8_t *data = NULL;
    size_t len = 0;
    MUST(rask_value_to_msgpack(v, &data, &len, E));
    rask_value_free(v);
    rask_status st = rask_worker_complete_tasks(w, data, len, err);
    rask_buffer_free(data, len);
    return st;
}

static const char *TB = "Traceback (most recent call last):\n  File \"job.py\", line 3, in host_fail\nValueError: bad input\n";

int main(void) {
    rask_scheduler *sched = NULL;
    MUST(rask_scheduler_start(NULL, &sched, E));
    rask_registry *reg = rask_registry_new();
    MUST(rask_registry_add_pulled(reg, "host_inc", E));
    MUST(rask_registry_add_pulled(reg, "host_fail", E));
    rask_worker *w = NULL;
    MUST(rask_worker_start(rask_scheduler_address(sched), NULL, reg, &w, E));
    rask_registry_free(reg);
    rask_client *c = NULL;
    MUST(rask_client_connect(rask_scheduler_address(sched), NULL, &c, E));

    rask_future *inc[NINC];
    for (int i = 0; i < NINC; i++) {
        rask_arg *args[1] = {rask_arg_int(i)};
        MUST(rask_client_submit(c, "host_inc", args, 1, &inc[i], E));
    }
    rask_future *fail[2];
    for (int i = 0; i < 2; i++) {
        rask_arg *args[1] = {rask_arg_int(100 + i)};
        MUST(rask_client_submit(c, "host_fail", args, 1, &fail[i], E));
    }

    int taken = 0, batches = 0, largest = 0, refusals_checked = 0, detached = 0, seceded = 0;
    bool seen[NINC] = {false};
    while (taken < NINC + 2) {
        uint8_t *buf = NULL;
        size_t len = 0;
        rask_status st = rask_worker_take_tasks(w, MAX, 30000, &buf, &len, NULL);
        EXPECT(st == RASK_OK);
        if (st != RASK_OK) break;
        rask_value *tasks = NULL;
        MUST(rask_value_from_msgpack(buf, len, &tasks, E));
        rask_buffer_free(buf, len);
        size_t n = 0;
        MUST(rask_value_len(tasks, &n, E));
        EXPECT(n >= 1 && n <= MAX);
        batches++;
        if ((int)n > largest) largest = (int)n;
        rask_value *results = rask_value_array_new();
        for (size_t i = 0; i < n; i++) {
            const rask_value *t = NULL, *f = NULL, *idv = NULL, *args = NULL, *a0 = NULL;
            MUST(rask_value_array_get(tasks, i, &t, E));
            MUST(rask_value_array_get(t, 0, &idv, E));
            MUST(rask_value_array_get(t, 2, &f, E));
            MUST(rask_value_array_get(t, 3, &args, E));
            MUST(rask_value_array_get(args, 0, &a0, E));
            int64_t id = 0, x = 0;
            MUST(rask_value_get_int(idv, &id, E));
            MUST(rask_value_get_int(a0, &x, E));
            const char *func = NULL;
            size_t flen = 0;
            MUST(rask_value_get_str(f, &func, &flen, E));
            taken++;
            if (flen == 8 && memcmp(func, "host_inc", 8) == 0) {
                EXPECT(x >= 0 && x < NINC && !seen[x]);
                if (x >= 0 && x < NINC) seen[x] = true;
                if (!refusals_checked) {
                    // Refused calls end nothing: the first task is ended
                    // afterwards, which succeeds only if it is still taken.
                    refusals_checked = 1;
                    const uint8_t junk[] = {0xc1};
                    EXPECT_ERR(RASK_ERR_DECODE, "rask_worker_complete_tasks", "results", rask_worker_complete_tasks(w, junk, sizeof junk, E));
                    const uint8_t not_array[] = {0x05};
                    EXPECT_ERR(RASK_ERR_INVALID_ARG, "results", "array", rask_worker_complete_tasks(w, not_array, sizeof not_array, E));
                    rask_value *e1[3] = {rask_value_uint((uint64_t)id), rask_value_bool(true), rask_value_int(x + 1)};
                    rask_value *e2[3] = {rask_value_uint(999999), rask_value_bool(true), rask_value_int(0)};
                    rask_value *two[2] = {array_of(e1, 3), array_of(e2, 3)};
                    EXPECT_ERR(RASK_ERR_INVALID_ARG, "results[1]", "999999", complete(w, array_of(two, 2), E));
                    rask_value *d1[3] = {rask_value_uint((uint64_t)id), rask_value_bool(true), rask_value_int(x + 1)};
                    rask_value *d2[3] = {rask_value_uint((uint64_t)id), rask_value_bool(true), rask_value_int(x + 1)};
                    rask_value *dup[2] = {array_of(d1, 3), array_of(d2, 3)};
                    EXPECT_ERR(RASK_ERR_INVALID_ARG, "results[1]", "ended", complete(w, array_of(dup, 2), E));
                    rask_value *b1[3] = {rask_value_uint((uint64_t)id), rask_value_int(1), rask_value_int(1)};
                    rask_value *bad_ok[1] = {array_of(b1, 3)};
                    EXPECT_ERR(RASK_ERR_INVALID_ARG, "results[0]", "[id, true, value]", complete(w, array_of(bad_ok, 1), E));
                    rask_value *b2[3] = {rask_value_uint((uint64_t)id), rask_value_bool(false), rask_value_int(3)};
                    rask_value *bad_msg[1] = {array_of(b2, 3)};
                    EXPECT_ERR(RASK_ERR_INVALID_ARG, "results[0]", "message", complete(w, array_of(bad_msg, 1), E));
                    rask_value *b3[4] = {rask_value_uint((uint64_t)id), rask_value_bool(false), str_value("m"), rask_value_nil()};
                    rask_value *bad_len[1] = {array_of(b3, 4)};
                    EXPECT_ERR(RASK_ERR_INVALID_ARG, "results[0]", "traceback", complete(w, array_of(bad_len, 1), E));
                    rask_value *b4[5] = {rask_value_uint((uint64_t)id), rask_value_bool(false), str_value("m"), rask_value_int(1), rask_value_nil()};
                    rask_value *bad_exc[1] = {array_of(b4, 5)};
                    EXPECT_ERR(RASK_ERR_INVALID_ARG, "results[0]", "exception", complete(w, array_of(bad_exc, 1), E));
                    rask_task *none = NULL;
                    EXPECT_ERR(RASK_ERR_INVALID_ARG, "rask_worker_detach_task", "999999", rask_worker_detach_task(w, 999999, &none, E));
                    EXPECT(none == NULL);
                } else if (!detached) {
                    // Handed over to a rask_task, ended through it; the
                    // batch no longer knows the id.
                    detached = 1;
                    rask_task *t1 = NULL;
                    MUST(rask_worker_detach_task(w, (uint64_t)id, &t1, E));
                    EXPECT(rask_task_nargs(t1) == 1);
                    EXPECT_OK(rask_task_complete(t1, rask_value_int(x + 1), E));
                    rask_value *e[3] = {rask_value_uint((uint64_t)id), rask_value_bool(true), rask_value_int(0)};
                    rask_value *one[1] = {array_of(e, 3)};
                    EXPECT_ERR(RASK_ERR_INVALID_ARG, "results[0]", "detached", complete(w, array_of(one, 1), E));
                    continue;
                } else if (!seceded) {
                    // Seceded in one call, with the results gathered so
                    // far in this batch (ended by it: their futures are
                    // checked below). Refusals first: they end nothing.
                    seceded = 1;
                    rask_task *t2 = NULL;
                    EXPECT_ERR(RASK_ERR_INVALID_ARG, "rask_worker_secede_task", "999999", rask_worker_secede_task(w, 999999, NULL, 0, &t2, E));
                    EXPECT(t2 == NULL);
                    const uint8_t junk[] = {0xc1};
                    EXPECT_ERR(RASK_ERR_DECODE, "rask_worker_secede_task", "results", rask_worker_secede_task(w, (uint64_t)id, junk, sizeof junk, &t2, E));
                    rask_value *s1[3] = {rask_value_uint((uint64_t)id), rask_value_bool(true), rask_value_int(0)};
                    rask_value *self_too[1] = {array_of(s1, 3)};
                    rask_value *st = array_of(self_too, 1);
                    uint8_t *sb = NULL;
                    size_t slen = 0;
                    MUST(rask_value_to_msgpack(st, &sb, &slen, E));
                    rask_value_free(st);
                    EXPECT_ERR(RASK_ERR_INVALID_ARG, "rask_worker_secede_task", "results[0]", rask_worker_secede_task(w, (uint64_t)id, sb, slen, &t2, E));
                    rask_buffer_free(sb, slen);
                    EXPECT(t2 == NULL);
                    uint8_t *rb = NULL;
                    size_t rlen = 0;
                    MUST(rask_value_to_msgpack(results, &rb, &rlen, E));
                    rask_value_free(results);
                    results = rask_value_array_new();
                    EXPECT_OK(rask_worker_secede_task(w, (uint64_t)id, rb, rlen, &t2, E));
                    rask_buffer_free(rb, rlen);
                    EXPECT(t2 != NULL && rask_task_nargs(t2) == 1);
                    EXPECT_OK(rask_task_secede(t2, E));  // again: nothing more
                    EXPECT_OK(rask_task_complete(t2, rask_value_int(x + 1), E));
                    continue;
                }
                rask_value *e[3] = {rask_value_uint((uint64_t)id), rask_value_bool(true), rask_value_int(x + 1)};
                MUST(rask_value_array_push(results, array_of(e, 3), E));
            } else {
                EXPECT(flen == 9 && memcmp(func, "host_fail", 9) == 0);
                if (x == 100) {  // with the exception's type and traceback
                    rask_value *e[5] = {rask_value_uint((uint64_t)id), rask_value_bool(false),
                                        str_value("ValueError: bad input"), str_value("ValueError"), str_value(TB)};
                    MUST(rask_value_array_push(results, array_of(e, 5), E));
                } else {  // a message only
                    rask_value *e[3] = {rask_value_uint((uint64_t)id), rask_value_bool(false), str_value("plain failure")};
                    MUST(rask_value_array_push(results, array_of(e, 3), E));
                }
            }
        }
        rask_value_free(tasks);
        EXPECT_OK(complete(w, results, E));
    }
    EXPECT(taken == NINC + 2);
    EXPECT(refusals_checked && detached && seceded);
    EXPECT(largest > 1);  // many tasks were ready at once: one call took several
    fprintf(stderr, "worker_batch: %d tasks in %d batches (largest %d)\n", taken, batches, largest);

    for (int i = 0; i < NINC; i++) {
        rask_value *v = NULL;
        int64_t x = -1;
        MUST(rask_future_result(inc[i], 30000, &v, E));
        MUST(rask_value_get_int(v, &x, E));
        EXPECT(x == i + 1);
        rask_value_free(v);
        rask_future_free(inc[i]);
    }
    rask_value *v = NULL;
    rask_error *err = NULL;
    EXPECT(rask_future_result(fail[0], 30000, &v, &err) == RASK_ERR_TASK_FAILED);
    EXPECT(strstr(rask_error_message(err), "bad input") != NULL);
    EXPECT_STR(rask_error_exception(err), "ValueError");
    EXPECT_STR(rask_error_traceback(err), TB);
    rask_error_free(err);
    err = NULL;
    EXPECT(rask_future_result(fail[1], 30000, &v, &err) == RASK_ERR_TASK_FAILED);
    EXPECT(strstr(rask_error_message(err), "plain failure") != NULL);
    EXPECT(rask_error_exception(err) == NULL);
    EXPECT(rask_error_traceback(err) == NULL);
    rask_error_free(err);
    rask_future_free(fail[0]);
    rask_future_free(fail[1]);

    // Nothing more: a look times out, and the stopped worker says so.
    uint8_t *buf = NULL;
    size_t len = 0;
    EXPECT_STATUS(RASK_TIMEOUT, rask_worker_take_tasks(w, MAX, 0, &buf, &len, E));
    EXPECT(buf == NULL && len == 0);
    EXPECT_OK(rask_worker_stop(w, E));
    EXPECT_STATUS(RASK_DONE, rask_worker_take_tasks(w, MAX, -1, &buf, &len, E));

    rask_client_free(c);
    rask_worker_free(w);
    rask_scheduler_free(sched);
    return check_summary("worker_batch");
}

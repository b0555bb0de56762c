// coordination.c: the seed patterns through the scheduler's coordination
// objects, with C callbacks as the tasks: a producer/consumer pipeline
// through a Queue with a stop flag in a Variable, and a Lock-protected
// read-modify-write counter across 8 concurrent tasks (2 workers x 4
// threads). Each task connects its own client to the scheduler (the
// address is the callback's user_data) and frees it before returning.
#include "check.h"

static rask_client *task_client(void *user_data, rask_error **err) {
    rask_client *c = NULL;
    if (rask_client_connect((const char *)user_data, NULL, &c, err) != RASK_OK) return NULL;
    return c;
}

static int64_t get_int(rask_value *v) {
    int64_t x = -1;
    if (v == NULL || rask_value_get_int(v, &x, NULL) != RASK_OK) x = -1;
    rask_value_free(v);
    return x;
}

// produce(n): puts 1..n into the queue "pipeline", then sets "stop".
static rask_status produce(void *user_data, const rask_value *const *args, size_t nargs,
                           rask_value **result, rask_error **err) {
    int64_t n = 0;
    if (nargs != 1 || rask_value_get_int(args[0], &n, err) != RASK_OK) return RASK_ERR_TYPE;
    rask_client *c = task_client(user_data, err);
    if (c == NULL) return RASK_ERR_CONNECTION;
    rask_status st = RASK_OK;
    for (int64_t i = 1; i <= n && st == RASK_OK; i++) {
        rask_value *v = rask_value_int(i);
        st = rask_client_queue_put(c, "pipeline", v, NULL, -1, err);
        rask_value_free(v);
    }
    if (st == RASK_OK) {
        rask_value *yes = rask_value_bool(true);
        st = rask_client_variable_set(c, "stop", yes, NULL, err);
        rask_value_free(yes);
    }
    rask_client_free(c);
    if (st != RASK_OK) return st;
    *result = rask_value_int(n);
    return RASK_OK;
}

// consume(): sums what comes through "pipeline" until "stop" is set and
// the queue is empty.
static rask_status consume(void *user_data, const rask_value *const *args, size_t nargs,
                           rask_value **result, rask_error **err) {
    (void)args;
    (void)nargs;
    rask_client *c = task_client(user_data, err);
    if (c == NULL) return RASK_ERR_CONNECTION;
    int64_t total = 0;
    rask_status st = RASK_OK;
    for (;;) {
        rask_value *v = NULL;
        rask_future *f = NULL;
        rask_error *e = NULL;
        st = rask_client_queue_get(c, "pipeline", 50, &v, &f, &e);
        rask_error_free(e);  // a timeout names the queue; not needed here
        rask_future_free(f);
        if (st == RASK_OK) {
            total += get_int(v);
            continue;
        }
        if (st != RASK_TIMEOUT) break;
        rask_value *stop = NULL;
        rask_future *sf = NULL;
        e = NULL;
        rask_status vs = rask_client_variable_get(c, "stop", 0, &stop, &sf, &e);
        rask_error_free(e);
        rask_future_free(sf);
        bool done = false;
        if (vs == RASK_OK) rask_value_get_bool(stop, &done, NULL);
        rask_value_free(stop);
        uint64_t left = 1;
        if (done && rask_client_queue_size(c, "pipeline", &left, err) == RASK_OK && left == 0) {
            st = RASK_OK;
            break;
        }
    }
    rask_client_free(c);
    if (st != RASK_OK) return st;
    *result = rask_value_int(total);
    return RASK_OK;
}

// bump(i): counter += 1 under the lock "counter-lock".
static rask_status bump(void *user_data, const rask_value *const *args, size_t nargs,
                        rask_value **result, rask_error **err) {
    rask_client *c = task_client(user_data, err);
    if (c == NULL) return RASK_ERR_CONNECTION;
    uint64_t lease = 0;
    rask_status st = rask_client_lease_acquire(c, "counter-lock", 1, -1, &lease, err);
    if (st == RASK_OK) {
        rask_value *v = NULL;
        rask_future *f = NULL;
        st = rask_client_variable_get(c, "counter", -1, &v, &f, err);
        rask_future_free(f);
        if (st == RASK_OK) {
            rask_value *next = rask_value_int(get_int(v) + 1);
            st = rask_client_variable_set(c, "counter", next, NULL, err);
            rask_value_free(next);
        }
        rask_status rs = rask_client_lease_release(c, "counter-lock", lease, st == RASK_OK ? err : NULL);
        if (st == RASK_OK) st = rs;
    }
    rask_client_free(c);
    if (st != RASK_OK) return st;
    *result = nargs > 0 ? rask_value_clone(args[0]) : rask_value_nil();
    return RASK_OK;
}

static int64_t result_of(rask_future *f) {
    rask_value *v = NULL;
    rask_error *e = NULL;
    rask_status st = rask_future_result(f, 60000, &v, &e);
    if (st != RASK_OK) fprintf(stderr, "task failed: %s\n", rask_error_message(e));
    rask_error_free(e);
    return st == RASK_OK ? get_int(v) : -1;
}

int main(void) {
    // The callbacks need the scheduler's address before their workers
    // start: a scheduler first, then two workers at its address.
    rask_scheduler *s = NULL;
    MUST(rask_scheduler_start(NULL, &s, E));
    const char *addr = rask_scheduler_address(s);
    rask_registry *reg = rask_registry_new();
    MUST(rask_registry_add_callback(reg, "produce", produce, (void *)addr, NULL, E));
    MUST(rask_registry_add_callback(reg, "consume", consume, (void *)addr, NULL, E));
    MUST(rask_registry_add_callback(reg, "bump", bump, (void *)addr, NULL, E));
    rask_worker_options wo = {0};
    wo.threads = 4;
    rask_worker *w1 = NULL, *w2 = NULL;
    MUST(rask_worker_start(addr, &wo, reg, &w1, E));
    MUST(rask_worker_start(addr, &wo, reg, &w2, E));
    rask_registry_free(reg);
    rask_client *c = NULL;
    MUST(rask_client_connect(addr, NULL, &c, E));
    size_t nw = 0;
    MUST(rask_client_wait_for_workers(c, 2, 60000, &nw, E));

    // Producer/consumer, stopped by a Variable.
    rask_future *cons = NULL, *prod = NULL;
    MUST(rask_client_submit(c, "consume", NULL, 0, &cons, E));
    rask_arg *pa[1] = {rask_arg_int(100)};
    MUST(rask_client_submit(c, "produce", pa, 1, &prod, E));
    EXPECT(result_of(prod) == 100);
    EXPECT(result_of(cons) == 5050);

    // A Lock-protected counter across 8 concurrent tasks.
    rask_value *zero = rask_value_int(0);
    EXPECT_OK(rask_client_variable_set(c, "counter", zero, NULL, E));
    rask_value_free(zero);
    rask_arg *ba[8];
    for (int i = 0; i < 8; i++) ba[i] = rask_arg_int(i);
    rask_future *bumps[8] = {NULL};
    MUST(rask_client_map(c, "bump", ba, 8, 1, bumps, E));
    int64_t sum = 0;
    for (int i = 0; i < 8; i++) sum += result_of(bumps[i]);
    EXPECT(sum == 28);
    rask_value *v = NULL;
    rask_future *f = NULL;
    EXPECT_OK(rask_client_variable_get(c, "counter", 10000, &v, &f, E));
    EXPECT(f == NULL && get_int(v) == 8);
    // The pipeline was drained: a get times out, naming the queue.
    v = NULL;
    EXPECT_ERR(RASK_TIMEOUT, "queue 'pipeline': nothing to get", "0 s",
               rask_client_queue_get(c, "pipeline", 0, &v, &f, E));
    EXPECT(v == NULL && f == NULL);

    for (int i = 0; i < 8; i++) rask_future_free(bumps[i]);
    rask_future_free(prod);
    rask_future_free(cons);
    rask_client_free(c);
    rask_worker_free(w1);
    rask_worker_free(w2);
    rask_scheduler_free(s);
    return check_summary("coordination");
}

// nested_tasks.c: tasks that submit tasks. A recursive fib whose every call
// is a task (a C callback): fib(n) gets its worker's client with
// rask_callback_client, submits fib(n-1) and fib(n-2) with unique keys,
// secedes while it waits on them and rejoins before adding them up.
// fib(20) (21,891 tasks) completes on 2 workers with default threads and on
// one worker with 1 thread (without secede, the thread would wait on
// itself). Then a task of a pulled function (run by this thread through
// rask_worker_next_task) does the same with rask_task_client and
// rask_task_secede.
#include "check.h"

static int64_t get_int(rask_value *v) {
    int64_t x = -1;
    if (v == NULL || rask_value_get_int(v, &x, NULL) != RASK_OK) x = -1;
    rask_value_free(v);
    return x;
}

// Submits fib(n) through `c` with a unique key.
static rask_status submit_fib(rask_client *c, int64_t n, rask_future **out, rask_error **err) {
    rask_arg *a[1] = {rask_arg_int(n)};
    rask_submit_options o = {0};
    o.impure = true;
    return rask_client_submit_with(c, "fib", a, 1, &o, out, err);
}

static rask_status wait_int(rask_future *f, int64_t *out, rask_error **err) {
    rask_value *v = NULL;
    rask_status st = rask_future_result(f, -1, &v, err);
    if (st == RASK_OK) *out = get_int(v);
    return st;
}

static rask_status fib(void *user_data, const rask_value *const *args, size_t nargs,
                       rask_value **result, rask_error **err) {
    (void)user_data;
    int64_t n = 0;
    if (nargs != 1 || rask_value_get_int(args[0], &n, err) != RASK_OK) return RASK_ERR_TYPE;
    if (n < 2) {
        *result = rask_value_int(n);
        return RASK_OK;
    }
    rask_client *c = NULL;
    rask_status st = rask_callback_client(&c, err);
    if (st != RASK_OK) return st;
    rask_future *a = NULL, *b = NULL;
    int64_t x = 0, y = 0;
    st = submit_fib(c, n - 1, &a, err);
    if (st == RASK_OK) st = submit_fib(c, n - 2, &b, err);
    if (st == RASK_OK) st = rask_callback_secede(err);
    if (st == RASK_OK) st = wait_int(a, &x, err);
    if (st == RASK_OK) st = wait_int(b, &y, err);
    rask_status rs = rask_callback_rejoin(st == RASK_OK ? err : NULL);
    if (st == RASK_OK) st = rs;
    rask_future_free(a);
    rask_future_free(b);
    rask_client_free(c);  // the handle only: the worker's connection stays
    if (st != RASK_OK) return st;
    *result = rask_value_int(x + y);
    return RASK_OK;
}

static int64_t fib_on(const char *addr, int64_t n) {
    rask_client *c = NULL;
    MUST(rask_client_connect(addr, NULL, &c, E));
    size_t nw = 0;
    MUST(rask_client_wait_for_workers(c, 1, 60000, &nw, E));
    rask_future *f = NULL;
    MUST(submit_fib(c, n, &f, E));
    int64_t r = -1;
    rask_error *e = NULL;
    if (wait_int(f, &r, &e) != RASK_OK) fprintf(stderr, "fib failed: %s\n", rask_error_message(e));
    rask_error_free(e);
    rask_future_free(f);
    rask_client_free(c);
    return r;
}

int main(void) {
    // Outside a worker's callback there is nothing to secede from.
    EXPECT_ERR(RASK_ERR_STATE, "rask_callback_secede", "not inside a C callback", rask_callback_secede(E));
    rask_registry *reg = rask_registry_new();
    MUST(rask_registry_add_callback(reg, "fib", fib, NULL, NULL, E));
    MUST(rask_registry_add_pulled(reg, "parent", E));

    // Two workers, default threads (one per CPU).
    rask_scheduler *s = NULL;
    MUST(rask_scheduler_start(NULL, &s, E));
    const char *addr = rask_scheduler_address(s);
    rask_worker *w1 = NULL, *w2 = NULL;
    MUST(rask_worker_start(addr, NULL, reg, &w1, E));
    MUST(rask_worker_start(addr, NULL, reg, &w2, E));
    EXPECT(fib_on(addr, 20) == 6765);
    rask_worker_free(w1);
    rask_worker_free(w2);
    rask_scheduler_free(s);

    // One worker with one thread.
    MUST(rask_scheduler_start(NULL, &s, E));
    addr = rask_scheduler_address(s);
    rask_worker_options wo = {0};
    wo.threads = 1;
    rask_worker *w = NULL;
    MUST(rask_worker_start(addr, &wo, reg, &w, E));
    EXPECT(fib_on(addr, 20) == 6765);

    // A pulled task submits through its task's client and secedes.
    rask_client *c = NULL;
    MUST(rask_client_connect(addr, NULL, &c, E));
    rask_arg *pa[1] = {rask_arg_int(12)};
    rask_future *pf = NULL;
    MUST(rask_client_submit(c, "parent", pa, 1, &pf, E));
    rask_task *t = NULL;
    MUST(rask_worker_next_task(w, 60000, &t, E));
    EXPECT_STR(rask_task_func(t), "parent");
    int64_t n = -1;
    EXPECT_OK(rask_value_get_int(rask_task_arg(t, 0), &n, E));
    rask_client *tc = NULL;
    EXPECT_OK(rask_task_client(t, &tc, E));
    EXPECT(tc != NULL);
    rask_future *child = NULL;
    EXPECT_OK(submit_fib(tc, n, &child, E));
    EXPECT_OK(rask_task_secede(t, E));
    EXPECT_OK(rask_task_secede(t, E));  // again: nothing more
    int64_t r = -1;
    EXPECT_OK(wait_int(child, &r, E));
    EXPECT(r == 144);
    rask_future_free(child);
    // Closing the handle leaves the worker's connection to other tasks.
    EXPECT_OK(rask_client_close(tc, E));
    rask_client_free(tc);
    EXPECT_OK(rask_task_client(t, &tc, E));
    EXPECT_OK(submit_fib(tc, 10, &child, E));
    EXPECT_OK(wait_int(child, &r, E));
    EXPECT(r == 55);
    rask_future_free(child);
    rask_client_free(tc);
    EXPECT_OK(rask_task_complete(t, rask_value_int(r * 2), E));
    rask_value *v = NULL;
    EXPECT_OK(rask_future_result(pf, 60000, &v, E));
    EXPECT(get_int(v) == 110);
    rask_future_free(pf);
    rask_client_free(c);

    rask_worker_free(w);
    rask_scheduler_free(s);
    rask_registry_free(reg);
    return check_summary("nested_tasks");
}

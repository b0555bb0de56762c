// wrong_state.c: handles used in a state where the call is not possible.
//
// rask's handles fall in two groups (docs/c-api.md, "Handle states"):
//
// - closed (or stopped) but still valid: a client after rask_client_close,
//   a cluster after rask_cluster_stop, a scheduler after
//   rask_scheduler_stop, a worker after rask_worker_stop or after its
//   scheduler went away, a computation that was cancelled or failed, and
//   the futures and as_completed iterators of a closed or freed client, a
//   task whose computation or worker is gone. Calls on them return a
//   defined status (RASK_ERR_STATE naming the function and the state,
//   RASK_ERR_CONNECTION, RASK_ERR_CANCELLED, RASK_DONE), and they are freed
//   as usual.
// - freed (or consumed) = gone: any handle after its _free, an argument
//   after the call that consumed it. C cannot detect that; using one is
//   undefined behaviour, as with free() itself. Not tested here.
//
// Plus: futures of one client given to another client's calls
// (RASK_ERR_INVALID_ARG, "belongs to another client").
#include "check.h"

static rask_future *submit_int(const rask_client *c, const char *func, int64_t x) {
    rask_arg *args[1] = {rask_arg_int(x)};
    rask_future *f = NULL;
    MUST(rask_client_submit(c, func, args, 1, &f, E));
    return f;
}

static int64_t result_int(const rask_future *f) {
    rask_value *v = NULL;
    int64_t x = -1;
    MUST(rask_future_result(f, -1, &v, E));
    MUST(rask_value_get_int(v, &x, E));
    rask_value_free(v);
    return x;
}

// A worker offering the pulled function "later", which nobody pulls: its
// tasks stay pending.
static rask_worker *idle_worker(const char *address) {
    rask_registry *reg = rask_registry_new();
    MUST(rask_registry_add_pulled(reg, "later", E));
    rask_worker *w = NULL;
    MUST(rask_worker_start(address, NULL, reg, &w, E));
    rask_registry_free(reg);
    return w;
}

// Every call that takes a client, on a closed client.
static void calls_on_a_closed_client(const rask_client *c, const rask_future *f) {
#define CLOSED "was closed"
    rask_future *out = NULL;
    rask_future *outs[1] = {NULL};
    rask_arg *args[1];
    args[0] = rask_arg_int(1);
    EXPECT_ERR(RASK_ERR_STATE, "rask_client_submit", CLOSED, rask_client_submit(c, "inc", args, 1, &out, E));
    args[0] = rask_arg_int(1);
    EXPECT_ERR(RASK_ERR_STATE, "rask_client_submit_with", CLOSED, rask_client_submit_with(c, "inc", args, 1, NULL, &out, E));
    args[0] = rask_arg_int(1);
    EXPECT_ERR(RASK_ERR_STATE, "rask_client_map", CLOSED, rask_client_map(c, "inc", args, 1, 1, outs, E));
    rask_graph *g = rask_graph_new();
    MUST(rask_graph_add_value(g, "a", rask_value_int(1), E));
    const char *keys[1] = {"a"};
    EXPECT_ERR(RASK_ERR_STATE, "rask_client_compute", CLOSED, rask_client_compute(c, g, keys, 1, outs, E));
    rask_graph_free(g);
    const rask_future *fs[1] = {f};
    rask_value *vals[1] = {NULL};
    EXPECT_ERR(RASK_ERR_STATE, "rask_client_gather", CLOSED, rask_client_gather(c, fs, 1, -1, vals, E));
    EXPECT_ERR(RASK_ERR_STATE, "rask_client_gather", CLOSED, rask_client_gather(c, fs, 1, 0, vals, E));
    uint8_t *buf = NULL;
    size_t blen = 7;
    EXPECT_ERR(RASK_ERR_STATE, "rask_client_gather_msgpack", CLOSED, rask_client_gather_msgpack(c, fs, 1, -1, &buf, &blen, E));
    EXPECT(buf == NULL && blen == 0);
    const uint8_t calls[] = {0x91, 0x91, 0x01};  // [[1]]
    rask_future_batch *batch = NULL;
    EXPECT_ERR(RASK_ERR_STATE, "rask_client_map_msgpack", CLOSED, rask_client_map_msgpack(c, "inc", calls, sizeof calls, &batch, E));
    EXPECT(batch == NULL);
    rask_arg *sh[1] = {rask_arg_int(1)};
    EXPECT_ERR(RASK_ERR_STATE, "rask_client_map_msgpack_shared", CLOSED, rask_client_map_msgpack_shared(c, "add", sh, 1, calls, sizeof calls, &batch, E));
    EXPECT(batch == NULL);
    rask_value *sv[1] = {rask_value_int(3)};
    EXPECT_ERR(RASK_ERR_STATE, "rask_client_scatter", CLOSED, rask_client_scatter(c, sv, 1, false, outs, E));
    EXPECT_ERR(RASK_ERR_STATE, "rask_client_cancel", CLOSED, rask_client_cancel(c, fs, 1, E));
    int fd = 0;
    EXPECT_ERR(RASK_ERR_STATE, "rask_client_fd", CLOSED, rask_client_fd(c, &fd, E));
    EXPECT_ERR(RASK_ERR_STATE, "rask_client_fd_clear", CLOSED, rask_client_fd_clear(c, E));
    bool done[1];
    EXPECT_ERR(RASK_ERR_STATE, "rask_client_wait", CLOSED, rask_client_wait(c, fs, 1, RASK_WAIT_ALL_COMPLETED, -1, done, E));
    EXPECT_ERR(RASK_ERR_STATE, "rask_client_progress", CLOSED, rask_client_progress(c, fs, 1, NULL, NULL, -1, NULL, E));
    double since = 1;
    EXPECT_ERR(RASK_ERR_STATE, "rask_client_report_start", CLOSED, rask_client_report_start(c, &since, E));
    EXPECT(since == 0);
    EXPECT_ERR(RASK_ERR_STATE, "rask_client_performance_report", CLOSED, rask_client_performance_report(c, 0, "r.html", E));
    EXPECT_ERR(RASK_ERR_STATE, "rask_client_wait_for_workers", CLOSED, rask_client_wait_for_workers(c, 1, -1, NULL, E));
    rask_scheduler_info info;
    info.clients = 7;
    EXPECT_ERR(RASK_ERR_STATE, "rask_client_scheduler_info", CLOSED, rask_client_scheduler_info(c, &info, E));
    EXPECT(info.clients == 0);
    const char *names[1] = {"w"};
    EXPECT_ERR(RASK_ERR_STATE, "rask_client_retire_workers", CLOSED, rask_client_retire_workers(c, names, 1, -1, NULL, NULL, E));
    EXPECT_ERR(RASK_ERR_STATE, "rask_client_replicate", CLOSED, rask_client_replicate(c, fs, 1, 2, -1, NULL, NULL, E));
    EXPECT_ERR(RASK_ERR_STATE, "rask_client_rebalance", CLOSED, rask_client_rebalance(c, fs, 1, -1, NULL, NULL, E));
    EXPECT_ERR(RASK_ERR_STATE, "rask_client_rebalance", CLOSED, rask_client_rebalance(c, NULL, 0, -1, NULL, NULL, E));
    rask_as_completed *ac = NULL;
    EXPECT_ERR(RASK_ERR_STATE, "rask_as_completed_new", CLOSED, rask_as_completed_new(c, fs, 1, &ac, E));
    // Coordination objects.
    rask_value *one = rask_value_int(1);
    rask_value *cv = NULL;
    rask_future *cf = NULL;
    uint64_t cn = 0;
    bool cset = false;
    rask_subscription *sub = NULL;
    EXPECT_ERR(RASK_ERR_STATE, "rask_client_variable_set", CLOSED, rask_client_variable_set(c, "x", one, NULL, E));
    EXPECT_ERR(RASK_ERR_STATE, "rask_client_variable_get", CLOSED, rask_client_variable_get(c, "x", 0, &cv, &cf, E));
    EXPECT_ERR(RASK_ERR_STATE, "rask_client_variable_delete", CLOSED, rask_client_variable_delete(c, "x", E));
    EXPECT_ERR(RASK_ERR_STATE, "rask_client_queue_create", CLOSED, rask_client_queue_create(c, "q", 0, E));
    EXPECT_ERR(RASK_ERR_STATE, "rask_client_queue_put", CLOSED, rask_client_queue_put(c, "q", one, NULL, 0, E));
    EXPECT_ERR(RASK_ERR_STATE, "rask_client_queue_get", CLOSED, rask_client_queue_get(c, "q", 0, &cv, &cf, E));
    EXPECT_ERR(RASK_ERR_STATE, "rask_client_queue_size", CLOSED, rask_client_queue_size(c, "q", &cn, E));
    EXPECT_ERR(RASK_ERR_STATE, "rask_client_lease_acquire", CLOSED, rask_client_lease_acquire(c, "L", 1, 0, &cn, E));
    EXPECT_ERR(RASK_ERR_STATE, "rask_client_lease_release", CLOSED, rask_client_lease_release(c, "L", 1, E));
    EXPECT_ERR(RASK_ERR_STATE, "rask_client_event_set", CLOSED, rask_client_event_set(c, "e", E));
    EXPECT_ERR(RASK_ERR_STATE, "rask_client_event_clear", CLOSED, rask_client_event_clear(c, "e", E));
    EXPECT_ERR(RASK_ERR_STATE, "rask_client_event_wait", CLOSED, rask_client_event_wait(c, "e", 0, &cset, E));
    EXPECT_ERR(RASK_ERR_STATE, "rask_client_publish_dataset", CLOSED, rask_client_publish_dataset(c, "d", one, NULL, false, E));
    EXPECT_ERR(RASK_ERR_STATE, "rask_client_get_dataset", CLOSED, rask_client_get_dataset(c, "d", &cv, &cf, E));
    EXPECT_ERR(RASK_ERR_STATE, "rask_client_unpublish_dataset", CLOSED, rask_client_unpublish_dataset(c, "d", E));
    EXPECT_ERR(RASK_ERR_STATE, "rask_client_list_datasets", CLOSED, rask_client_list_datasets(c, &cv, E));
    EXPECT_ERR(RASK_ERR_STATE, "rask_client_fire_and_forget", CLOSED, rask_client_fire_and_forget(c, fs, 1, E));
    EXPECT_ERR(RASK_ERR_STATE, "rask_client_publish", CLOSED, rask_client_publish(c, "t", one, E));
    EXPECT_ERR(RASK_ERR_STATE, "rask_client_subscribe", CLOSED, rask_client_subscribe(c, "t", &sub, E));
    EXPECT(cv == NULL && cf == NULL && sub == NULL);
    rask_value_free(one);
    EXPECT(out == NULL && outs[0] == NULL && vals[0] == NULL && ac == NULL);
    // Closing again does nothing; the address is still there.
    EXPECT_OK(rask_client_close(c, E));
    EXPECT(strncmp(rask_client_scheduler_address(c), "tcp://", 6) == 0);
    // So is the dashboard link (from the scheduler's welcome).
    EXPECT(strncmp(rask_client_dashboard_link(c), "http://", 7) == 0);
}

// Futures and an as_completed of a client that was closed (`close`) or
// freed: both give the same answers.
static void futures_of_a_gone_client(const rask_cluster *cl, bool close) {
    rask_client *c = NULL;
    MUST(rask_cluster_client(cl, &c, E));
    rask_future *done = submit_int(c, "inc", 1);
    EXPECT(result_int(done) == 2);
    rask_future *pending = submit_int(c, "later", 1);
    EXPECT(rask_future_status(pending) == RASK_FUTURE_PENDING);
    const rask_future *both[2] = {done, pending};
    rask_as_completed *ac = NULL;
    MUST(rask_as_completed_new(c, both, 2, &ac, E));
    rask_arg *arg = rask_arg_future(done);  // holds its own reference
    rask_future *clone = rask_future_clone(done);
    const uint8_t calls[] = {0x92, 0x91, 0x01, 0x91, 0x02};  // [[1], [2]]: inc(1), inc(2)
    rask_future_batch *batch = NULL;
    MUST(rask_client_map_msgpack(c, "inc", calls, sizeof calls, &batch, E));
    uint8_t *buf = NULL;
    size_t blen = 0;
    MUST(rask_future_batch_gather(batch, NULL, 2, -1, &buf, &blen, E));
    rask_buffer_free(buf, blen);
    // A released entry cannot be used; releasing it again does nothing.
    size_t first[1] = {0};
    EXPECT_OK(rask_future_batch_release(batch, first, 1, E));
    EXPECT_OK(rask_future_batch_release(batch, first, 1, E));
    rask_future *entry = NULL;
    rask_future_state st[1];
    EXPECT_ERR(RASK_ERR_STATE, "rask_future_batch_get", "released", rask_future_batch_get(batch, 0, &entry, E));
    EXPECT_ERR(RASK_ERR_STATE, "rask_future_batch_gather", "released", rask_future_batch_gather(batch, first, 1, -1, &buf, &blen, E));
    EXPECT_ERR(RASK_ERR_STATE, "rask_future_batch_status", "released", rask_future_batch_status(batch, first, 1, st, E));
    EXPECT(entry == NULL && buf == NULL);

    if (close) {
        EXPECT_OK(rask_client_close(c, E));
        calls_on_a_closed_client(c, done);
    } else {
        rask_client_free(c);
    }
    const char *what = close ? "was closed" : "rask_client_free";

    // The finished future keeps its state, the pending one errs.
    EXPECT(rask_future_status(done) == RASK_FUTURE_FINISHED);
    EXPECT(rask_future_status(pending) == RASK_FUTURE_ERROR);
    // A warning (none here) stays readable.
    rask_value *warning = (rask_value *)1;
    EXPECT_OK(rask_future_warning(done, &warning, E));
    EXPECT(warning == NULL);
    EXPECT(rask_future_key(done) != NULL && rask_future_key(done)[0] != '\0');
    rask_value *v = NULL;
    EXPECT_ERR(RASK_ERR_STATE, "rask_future_result", what, rask_future_result(done, -1, &v, E));
    EXPECT_ERR(RASK_ERR_STATE, "rask_future_result", what, rask_future_result(pending, 0, &v, E));
    EXPECT_ERR(RASK_ERR_STATE, "rask_future_result", what, rask_future_result(clone, -1, &v, E));
    EXPECT(v == NULL);
    rask_future *again = rask_future_clone(pending);  // still a handle
    EXPECT(again != NULL && rask_future_status(again) == RASK_FUTURE_ERROR);
    rask_future_free(again);
    // The batch: its finished entry stays finished, gathering it is refused,
    // keys and entries are still there.
    size_t second[1] = {1};
    EXPECT_OK(rask_future_batch_status(batch, second, 1, st, E));
    EXPECT(st[0] == RASK_FUTURE_FINISHED);
    EXPECT_ERR(RASK_ERR_STATE, "rask_future_batch_gather", what, rask_future_batch_gather(batch, second, 1, -1, &buf, &blen, E));
    EXPECT_OK(rask_future_batch_keys(batch, &buf, &blen, E));
    rask_buffer_free(buf, blen);
    EXPECT_OK(rask_future_batch_get(batch, 1, &entry, E));
    EXPECT(rask_future_status(entry) == RASK_FUTURE_FINISHED);
    rask_future_free(entry);
    EXPECT_OK(rask_future_batch_release(batch, second, 1, E));
    rask_future_batch_free(batch);
    rask_future *next = NULL;
    EXPECT_ERR(RASK_ERR_STATE, "rask_as_completed_next", what, rask_as_completed_next(ac, -1, &next, E));
    EXPECT_ERR(RASK_ERR_STATE, "rask_as_completed_add", what, rask_as_completed_add(ac, done, E));
    EXPECT(next == NULL);
    EXPECT(rask_as_completed_count(ac) == 2);  // nothing was yielded

    // The argument made from a gone client's future is refused by another
    // client.
    rask_client *other = NULL;
    MUST(rask_cluster_client(cl, &other, E));
    rask_future *h = NULL;
    EXPECT_ERR(RASK_ERR_INVALID_ARG, "rask_client_submit", "another client", rask_client_submit(other, "inc", &arg, 1, &h, E));
    EXPECT(h == NULL);
    rask_client_free(other);

    // Everything is freed as usual, after the client.
    rask_as_completed_free(ac);
    rask_future_free(clone);
    rask_future_free(pending);
    rask_future_free(done);
    if (close) {
        rask_client_free(c);
    }
}

// Futures of one client in another client's calls.
static void futures_of_another_client(const rask_cluster *cl) {
    rask_client *a = NULL, *b = NULL;
    MUST(rask_cluster_client(cl, &a, E));
    MUST(rask_cluster_client(cl, &b, E));
    rask_future *fa = submit_int(a, "inc", 10);
    EXPECT(result_int(fa) == 11);
    const rask_future *fs[1] = {fa};
    rask_value *vals[1] = {NULL};
#define OTHER "belongs to another client"
    EXPECT_ERR(RASK_ERR_INVALID_ARG, "rask_client_gather", OTHER, rask_client_gather(b, fs, 1, -1, vals, E));
    uint8_t *buf = NULL;
    size_t blen = 0;
    EXPECT_ERR(RASK_ERR_INVALID_ARG, "rask_client_gather_msgpack", OTHER, rask_client_gather_msgpack(b, fs, 1, -1, &buf, &blen, E));
    EXPECT_ERR(RASK_ERR_INVALID_ARG, "rask_client_cancel", OTHER, rask_client_cancel(b, fs, 1, E));
    EXPECT_ERR(RASK_ERR_INVALID_ARG, "rask_client_wait", OTHER, rask_client_wait(b, fs, 1, RASK_WAIT_ALL_COMPLETED, -1, NULL, E));
    rask_as_completed *ac = NULL;
    EXPECT_ERR(RASK_ERR_INVALID_ARG, "rask_as_completed_new", OTHER, rask_as_completed_new(b, fs, 1, &ac, E));
    MUST(rask_as_completed_new(b, NULL, 0, &ac, E));
    EXPECT_ERR(RASK_ERR_INVALID_ARG, "rask_as_completed_add", OTHER, rask_as_completed_add(ac, fa, E));
    rask_as_completed_free(ac);
    rask_arg *arg = rask_arg_future(fa);
    rask_future *h = NULL;
    EXPECT_ERR(RASK_ERR_INVALID_ARG, "rask_client_submit", OTHER, rask_client_submit(b, "inc", &arg, 1, &h, E));
    // The future was not disturbed.
    EXPECT(rask_future_status(fa) == RASK_FUTURE_FINISHED);
    EXPECT(result_int(fa) == 11);
    rask_future_free(fa);
    rask_client_free(b);
    rask_client_free(a);
}

// A cluster stopped with rask_cluster_stop, with a client still connected
// and a worker of the host's own.
static void a_stopped_cluster(rask_cluster *cl, rask_worker *idle) {
    rask_client *c = NULL;
    MUST(rask_cluster_client(cl, &c, E));
    rask_future *pending = submit_int(c, "later", 2);
    EXPECT(rask_future_status(pending) == RASK_FUTURE_PENDING);
    char address[256];
    snprintf(address, sizeof address, "%s", rask_cluster_address(cl));

    EXPECT_OK(rask_cluster_stop(cl, E));
    EXPECT_OK(rask_cluster_stop(cl, E));  // again: nothing
    EXPECT_STR(rask_cluster_address(cl), address);
    rask_client *c2 = NULL;
    EXPECT_ERR(RASK_ERR_STATE, "rask_cluster_client", "was stopped", rask_cluster_client(cl, &c2, E));
    EXPECT(c2 == NULL);

    // The client lost its scheduler.
    rask_value *v = NULL;
    EXPECT_ERR(RASK_ERR_CONNECTION, "connection", NULL, rask_future_result(pending, -1, &v, E));
    EXPECT(rask_future_status(pending) == RASK_FUTURE_ERROR);
    rask_future *f = NULL;
    rask_arg *args[1] = {rask_arg_int(1)};
    EXPECT_ERR(RASK_ERR_CONNECTION, NULL, NULL, rask_client_submit(c, "inc", args, 1, &f, E));
    EXPECT_ERR(RASK_ERR_CONNECTION, NULL, NULL, rask_client_wait_for_workers(c, 1, -1, NULL, E));
    rask_scheduler_info lost_info;
    EXPECT_ERR(RASK_ERR_CONNECTION, NULL, NULL, rask_client_scheduler_info(c, &lost_info, E));
    EXPECT(f == NULL);

    // The host's worker was closed by its scheduler: a clean stop.
    EXPECT_OK(rask_worker_wait(idle, -1, E));
    EXPECT(rask_worker_stop_reason(idle) != NULL);
    rask_task *t = NULL;
    EXPECT_STATUS(RASK_DONE, rask_worker_next_task(idle, -1, &t, E));
    EXPECT(t == NULL);
    EXPECT_OK(rask_worker_stop(idle, E));

    rask_future_free(pending);
    rask_client_free(c);
}

// A worker stopped with rask_worker_stop while the host holds one of its
// tasks, then its scheduler stopped with rask_scheduler_stop.
static void a_stopped_worker_and_scheduler(void) {
    rask_scheduler *s = NULL;
    MUST(rask_scheduler_start(NULL, &s, E));
    char address[256];
    snprintf(address, sizeof address, "%s", rask_scheduler_address(s));
    rask_registry *reg = rask_registry_new();
    MUST(rask_registry_add_pulled(reg, "pulled", E));
    rask_worker *w = NULL;
    MUST(rask_worker_start(address, NULL, reg, &w, E));
    rask_registry_free(reg);
    rask_client *c = NULL;
    MUST(rask_client_connect(address, NULL, &c, E));
    rask_future *f = submit_int(c, "pulled", 1);
    rask_task *t = NULL;
    MUST(rask_worker_next_task(w, -1, &t, E));
    EXPECT_STR(rask_task_func(t), "pulled");
    char name[256];
    snprintf(name, sizeof name, "%s", rask_worker_name(w));

    EXPECT(rask_worker_stop_reason(w) == NULL);  // running
    EXPECT_STATUS(RASK_TIMEOUT, rask_worker_wait(w, 0, E));
    EXPECT_OK(rask_worker_stop(w, E));
    EXPECT_OK(rask_worker_stop(w, E));  // again: nothing
    EXPECT_OK(rask_worker_wait(w, -1, E));
    EXPECT(rask_worker_stop_reason(w) != NULL);
    rask_task *t2 = NULL;
    EXPECT_STATUS(RASK_DONE, rask_worker_next_task(w, -1, &t2, E));
    EXPECT(t2 == NULL);
    EXPECT_STR(rask_worker_name(w), name);
    EXPECT(strncmp(rask_worker_address(w), "tcp://", 6) == 0);
    // The task the host still held: its result is discarded.
    EXPECT_STATUS(RASK_DONE, rask_task_complete(t, rask_value_int(5), E));
    EXPECT(rask_future_status(f) == RASK_FUTURE_PENDING);  // no worker for it now
    // Taking in batches from the stopped worker: RASK_DONE, nothing taken.
    uint8_t *tb = NULL;
    size_t tlen = 7;
    EXPECT_STATUS(RASK_DONE, rask_worker_take_tasks(w, 4, -1, &tb, &tlen, E));
    EXPECT(tb == NULL && tlen == 0);

    EXPECT_OK(rask_scheduler_stop(s, E));
    EXPECT_OK(rask_scheduler_stop(s, E));  // again: nothing
    EXPECT_STR(rask_scheduler_address(s), address);
    EXPECT(strncmp(rask_scheduler_dashboard_link(s), "http://", 7) == 0);
    rask_value *v = NULL;
    EXPECT_ERR(RASK_ERR_CONNECTION, NULL, NULL, rask_future_result(f, -1, &v, E));
    rask_client *c2 = NULL;
    rask_client_options o = {0};
    o.timeout_ms = 2000;
    EXPECT_ERR(RASK_ERR_CONNECTION, NULL, NULL, rask_client_connect(address, &o, &c2, E));
    EXPECT(c2 == NULL);

    rask_future_free(f);
    rask_client_free(c);
    rask_worker_free(w);
    rask_scheduler_free(s);
}

// A worker stopped while the host holds tasks it took in a batch: ending
// them is accepted and their results discarded (RASK_DONE), once; a task
// detached before the stop ends with RASK_DONE too.
static void a_stopped_worker_with_a_batch(void) {
    rask_scheduler *s = NULL;
    MUST(rask_scheduler_start(NULL, &s, E));
    rask_registry *reg = rask_registry_new();
    MUST(rask_registry_add_pulled(reg, "pulled", E));
    rask_worker *w = NULL;
    MUST(rask_worker_start(rask_scheduler_address(s), NULL, reg, &w, E));
    rask_registry_free(reg);
    rask_client *c = NULL;
    MUST(rask_client_connect(rask_scheduler_address(s), NULL, &c, E));
    rask_future *f1 = submit_int(c, "pulled", 1);
    rask_future *f2 = submit_int(c, "pulled", 2);
    rask_future *f3 = submit_int(c, "pulled", 3);
    uint8_t *tb = NULL;
    size_t tlen = 0;
    int taken = 0;
    while (taken < 3) {  // ids 0, 1 and 2, in one batch or more
        MUST(rask_worker_take_tasks(w, 4, -1, &tb, &tlen, E));
        EXPECT(tlen > 0 && tb[0] >= 0x91 && tb[0] <= 0x93);
        taken += tb[0] - 0x90;
        rask_buffer_free(tb, tlen);
    }
    EXPECT(taken == 3);
    rask_task *t = NULL;
    MUST(rask_worker_detach_task(w, 1, &t, E));
    EXPECT_STR(rask_task_func(t), "pulled");
    EXPECT_OK(rask_worker_stop(w, E));
    EXPECT_STATUS(RASK_DONE, rask_worker_take_tasks(w, 4, 0, &tb, &tlen, E));
    const uint8_t done0[] = {0x91, 0x93, 0x00, 0xc3, 0x05};  // [[0, true, 5]]
    EXPECT_STATUS(RASK_DONE, rask_worker_complete_tasks(w, done0, sizeof done0, E));
    EXPECT_ERR(RASK_ERR_INVALID_ARG, "rask_worker_complete_tasks", "ended or detached already", rask_worker_complete_tasks(w, done0, sizeof done0, E));
    EXPECT_STATUS(RASK_DONE, rask_task_complete(t, rask_value_int(6), E));
    // Seceding after the stop: handed over all the same, nothing sent.
    rask_task *t2 = NULL;
    EXPECT_STATUS(RASK_DONE, rask_worker_secede_task(w, 2, NULL, 0, &t2, E));
    EXPECT(t2 != NULL);
    EXPECT_STATUS(RASK_DONE, rask_task_complete(t2, rask_value_int(7), E));
    EXPECT(rask_future_status(f1) == RASK_FUTURE_PENDING);  // no worker for them now
    rask_future_free(f1);
    rask_future_free(f2);
    rask_future_free(f3);
    rask_client_free(c);
    rask_worker_free(w);
    rask_scheduler_free(s);
}

// A worker retired with rask_worker_retire while the host holds one of its
// tasks: the task still completes (its result reaches the client), the
// result moves to the other worker, and the worker stops cleanly. Retiring
// again, or a stopped worker, does nothing.
static void a_retired_worker_finishes_its_task(void) {
    rask_scheduler *s = NULL;
    MUST(rask_scheduler_start(NULL, &s, E));
    const char *address = rask_scheduler_address(s);
    rask_worker *other = NULL;  // builtins only: where the result moves
    MUST(rask_worker_start(address, NULL, NULL, &other, E));
    rask_registry *reg = rask_registry_new();
    MUST(rask_registry_add_pulled(reg, "pulled", E));
    rask_worker *w = NULL;
    MUST(rask_worker_start(address, NULL, reg, &w, E));
    rask_registry_free(reg);
    rask_client *c = NULL;
    MUST(rask_client_connect(address, NULL, &c, E));
    rask_future *f = submit_int(c, "pulled", 1);
    rask_task *t = NULL;
    MUST(rask_worker_next_task(w, -1, &t, E));

    EXPECT_OK(rask_worker_retire(w, E));
    EXPECT_OK(rask_worker_retire(w, E));  // again: nothing
    EXPECT_OK(rask_task_complete(t, rask_value_int(5), E));
    rask_value *v = NULL;
    EXPECT_OK(rask_future_result(f, -1, &v, E));
    int64_t x = 0;
    EXPECT(v != NULL && rask_value_get_int(v, &x, NULL) == RASK_OK && x == 5);
    rask_value_free(v);
    EXPECT_OK(rask_worker_wait(w, -1, E));  // the scheduler closed it
    EXPECT(rask_worker_stop_reason(w) != NULL);
    rask_task *t2 = NULL;
    EXPECT_STATUS(RASK_DONE, rask_worker_next_task(w, -1, &t2, E));
    EXPECT(t2 == NULL);
    EXPECT_OK(rask_worker_retire(w, E));  // stopped: nothing
    rask_worker_free(w);
    // The result lives on in the other worker.
    v = NULL;
    EXPECT_OK(rask_future_result(f, -1, &v, E));
    EXPECT(v != NULL && rask_value_get_int(v, &x, NULL) == RASK_OK && x == 5);
    rask_value_free(v);

    rask_future_free(f);
    rask_client_free(c);
    rask_worker_free(other);
    rask_scheduler_free(s);
}

// Background computations that were cancelled, and tasks that outlive
// their computation.
static void cancelled_computations(void) {
    rask_registry *reg = rask_registry_new();
    MUST(rask_registry_add_pulled(reg, "p", E));
    rask_graph *g = rask_graph_new();
    rask_arg *args[1] = {rask_arg_int(1)};
    MUST(rask_graph_add_task(g, "t", "p", args, 1, E));
    const char *keys[1] = {"t"};

    rask_computation *comp = NULL;
    MUST(rask_computation_start(g, keys, 1, reg, NULL, &comp, E));
    rask_task *t = NULL;
    MUST(rask_computation_next_task(comp, -1, &t, E));
    EXPECT(!rask_computation_is_done(comp));
    EXPECT_OK(rask_computation_cancel(comp, E));
    EXPECT_OK(rask_computation_cancel(comp, E));  // again: nothing
    EXPECT(rask_computation_is_done(comp));
    rask_task *t2 = NULL;
    EXPECT_STATUS(RASK_DONE, rask_computation_next_task(comp, -1, &t2, E));
    EXPECT_ERR(RASK_ERR_CANCELLED, "cancelled", NULL, rask_computation_wait(comp, -1, E));
    rask_value *results[1] = {NULL};
    EXPECT_ERR(RASK_ERR_CANCELLED, "cancelled", NULL, rask_computation_results(comp, results, E));
    EXPECT(results[0] == NULL);
    rask_compute_stats st;
    EXPECT_OK(rask_computation_stats(comp, &st, E));
    EXPECT(st.tasks == 1 && st.tasks_run == 0);
    EXPECT_STATUS(RASK_DONE, rask_task_complete(t, rask_value_int(2), E));
    rask_computation_free(comp);

    // Tasks taken in a batch, then the computation cancelled: taking gives
    // RASK_DONE, ending them is accepted and their results discarded.
    MUST(rask_computation_start(g, keys, 1, reg, NULL, &comp, E));
    uint8_t *tb = NULL;
    size_t tlen = 0;
    MUST(rask_computation_take_tasks(comp, 4, -1, &tb, &tlen, E));
    rask_buffer_free(tb, tlen);
    EXPECT_OK(rask_computation_cancel(comp, E));
    EXPECT_STATUS(RASK_DONE, rask_computation_take_tasks(comp, 4, -1, &tb, &tlen, E));
    EXPECT(tb == NULL && tlen == 0);
    const uint8_t done2[] = {0x91, 0x93, 0x00, 0xc3, 0x02};  // [[0, true, 2]]
    EXPECT_STATUS(RASK_DONE, rask_computation_complete_tasks(comp, done2, sizeof done2, E));
    EXPECT_ERR(RASK_ERR_INVALID_ARG, "rask_computation_complete_tasks", "ended already", rask_computation_complete_tasks(comp, done2, sizeof done2, E));
    rask_computation_free(comp);

    // A task that outlives its computation (freed, which cancels it).
    MUST(rask_computation_start(g, keys, 1, reg, NULL, &comp, E));
    MUST(rask_computation_next_task(comp, -1, &t, E));
    rask_computation_free(comp);
    EXPECT_STR(rask_task_key(t), "t");  // still readable
    EXPECT_STATUS(RASK_DONE, rask_task_fail(t, "too late", E));
    // A task of a local computation has no scheduler: no client, no
    // secede; outside a worker's callback there is no task at all.
    MUST(rask_computation_start(g, keys, 1, reg, NULL, &comp, E));
    MUST(rask_computation_next_task(comp, -1, &t, E));
    rask_client *tc = (rask_client *)&tc;
    EXPECT_ERR(RASK_ERR_STATE, "rask_task_client", "local computation", rask_task_client(t, &tc, E));
    EXPECT(tc == NULL);
    EXPECT_ERR(RASK_ERR_STATE, "rask_task_secede", "local computation", rask_task_secede(t, E));
    EXPECT_OK(rask_task_complete(t, rask_value_int(1), E));
    rask_computation_free(comp);
    tc = (rask_client *)&tc;
    EXPECT_ERR(RASK_ERR_STATE, "rask_callback_client", "not inside a C callback", rask_callback_client(&tc, E));
    EXPECT(tc == NULL);
    EXPECT_ERR(RASK_ERR_STATE, "rask_callback_secede", "not inside a C callback", rask_callback_secede(E));
    EXPECT_ERR(RASK_ERR_STATE, "rask_callback_rejoin", "not inside a C callback", rask_callback_rejoin(E));
    MUST(rask_computation_start(g, keys, 1, reg, NULL, &comp, E));
    MUST(rask_computation_next_task(comp, -1, &t, E));
    rask_computation_free(comp);
    EXPECT_STATUS(RASK_DONE, rask_task_fail_exception(t, "too late", "RuntimeError", "tb", E));

    rask_graph_free(g);
    rask_registry_free(reg);
}

static void host_release(void *u, uint64_t id) {
    (void)u, (void)id;
}

// A host: the fd of one that has a release callback, a second host for a
// computation, values that outlive their host (no serializer any more).
static void host_values(void) {
    rask_host *h = NULL;
    MUST(rask_host_new("w-1", NULL, host_release, NULL, NULL, &h, E));
    int fd = 0;
    EXPECT_ERR(RASK_ERR_STATE, "rask_host_fd", "release callback", rask_host_fd(h, &fd, E));
    rask_graph *g = rask_graph_new();
    MUST(rask_graph_add_value(g, "x", rask_value_int(1), E));
    const char *keys[1] = {"x"};
    rask_computation *comp = NULL;
    MUST(rask_computation_start(g, keys, 1, NULL, NULL, &comp, E));
    MUST(rask_computation_use_host(comp, h, E));
    EXPECT_ERR(RASK_ERR_STATE, "rask_computation_use_host", "already uses a host", rask_computation_use_host(comp, h, E));
    rask_computation_free(comp);
    rask_graph_free(g);
    rask_value *v = NULL;
    MUST(rask_value_host(h, 5, 0, NULL, &v, E));
    // A buffer lent by one of its objects: plain data, which outlives the host.
    static const double lent[2] = {1.5, 2.5};
    size_t shape[1] = {2};
    rask_value *t = NULL, *b = NULL;
    MUST(rask_value_tensor_wrap_host(h, 6, RASK_DTYPE_FLOAT64, shape, 1, lent, sizeof lent, &t, E));
    MUST(rask_value_bytes_wrap_host(h, 7, (const uint8_t *)lent, 4, &b, E));
    rask_host_free(h);
    uint8_t *buf = NULL;
    size_t len = 0;
    EXPECT_ERR(RASK_ERR_INVALID_ARG, "rask_value_to_msgpack", "has closed", rask_value_to_msgpack(v, &buf, &len, E));
    rask_value_free(v);
    // The lent values still encode (their memory is the host's to keep), and
    // their releases go nowhere.
    EXPECT_OK(rask_value_to_msgpack(t, &buf, &len, E));
    EXPECT(len > sizeof lent && memcmp(buf + len - sizeof lent, lent, sizeof lent) == 0);
    rask_buffer_free(buf, len);
    rask_value_free(t);
    rask_value_free(b);
}

int main(void) {
    host_values();
    rask_cluster_options o = {0};
    o.workers = 1;
    rask_cluster *cl = NULL;
    MUST(rask_cluster_start(&o, NULL, &cl, E));
    rask_worker *idle = idle_worker(rask_cluster_address(cl));

    futures_of_a_gone_client(cl, true);
    futures_of_a_gone_client(cl, false);
    futures_of_another_client(cl);
    a_stopped_cluster(cl, idle);
    rask_worker_free(idle);
    rask_cluster_free(cl);

    a_stopped_worker_and_scheduler();
    a_stopped_worker_with_a_batch();
    a_retired_worker_finishes_its_task();
    cancelled_computations();
    return check_summary("wrong_state");
}

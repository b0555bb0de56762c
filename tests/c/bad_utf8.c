// bad_utf8.c: every string-taking function of rask.h given a string that is
// not UTF-8 ("\xff\xfe", and a truncated sequence "a\xe2\x82").
//
// A `const char *` parameter that is not UTF-8 fails the call with
// RASK_ERR_INVALID_UTF8 and a message naming the function and the
// parameter ("rask_graph_add_value: argument 'key' is not valid UTF-8"),
// also inside option structs ('options->token') and arrays ('keys[1]').
// The exceptions are documented: rask_error_new and rask_task_fail keep
// the message with the bad bytes replaced by U+FFFD (rask_task_fail still
// fails the task and reports the problem), rask_registry_contains answers
// false. Bytes inside msgpack documents are checked by the decoders
// (RASK_ERR_DECODE naming the byte).
#include "check.h"

#define BAD "\xff\xfe"
#define BAD2 "a\xe2\x82"  // a cut-short three-byte sequence
#define UTF8_MSG "is not valid UTF-8"
#define REPLACEMENT "\xef\xbf\xbd"  // U+FFFD

static rask_status c_identity(void *user_data, const rask_value *const *args, size_t nargs,
                              rask_value **result, rask_error **err) {
    (void)user_data;
    (void)err;
    *result = nargs > 0 ? rask_value_clone(args[0]) : rask_value_nil();
    return RASK_OK;
}

static void local_api(void) {
    // rask_error_new copies the message with the bad bytes replaced.
    rask_error *e = rask_error_new(RASK_ERR_TASK_FAILED, "bad " BAD " bytes");
    EXPECT(e != NULL && rask_error_status(e) == RASK_ERR_TASK_FAILED);
    EXPECT(strstr(rask_error_message(e), "bad " REPLACEMENT) != NULL);
    rask_error_free(e);

    rask_value *v = NULL;
    EXPECT_ERR(RASK_ERR_INVALID_UTF8, "rask_value_str", "'s' " UTF8_MSG, rask_value_str(BAD, 2, &v, E));
    EXPECT_ERR(RASK_ERR_INVALID_UTF8, "rask_value_str", "'s'", rask_value_str(BAD2, 3, &v, E));
    EXPECT(v == NULL);
    // Bytes are bytes: rask_value_bytes takes anything.
    EXPECT_OK(rask_value_bytes((const uint8_t *)BAD, 2, &v, E));
    rask_value_free(v);
    v = NULL;
    // A msgpack str whose bytes are not UTF-8.
    const uint8_t bad_str[] = {0xa2, 0xff, 0xfe};
    EXPECT_ERR(RASK_ERR_DECODE, "at byte 1", "UTF-8", rask_value_from_msgpack(bad_str, sizeof bad_str, &v, E));
    EXPECT(v == NULL);

    rask_arg *a = NULL;
    EXPECT_ERR(RASK_ERR_INVALID_UTF8, "rask_arg_ref", "'key' " UTF8_MSG, rask_arg_ref(BAD, &a, E));
    EXPECT(a == NULL);

    rask_graph *g = rask_graph_new();
    EXPECT_ERR(RASK_ERR_INVALID_UTF8, "rask_graph_add_value", "'key'", rask_graph_add_value(g, BAD, rask_value_int(1), E));
    EXPECT_ERR(RASK_ERR_INVALID_UTF8, "rask_graph_add_value", "'key'", rask_graph_add_value(g, BAD2, rask_value_int(1), E));
    MUST(rask_graph_add_value(g, "a", rask_value_int(1), E));
    rask_arg *args[1];
    args[0] = rask_arg_int(1);
    EXPECT_ERR(RASK_ERR_INVALID_UTF8, "rask_graph_add_task", "'key'", rask_graph_add_task(g, BAD, "inc", args, 1, E));
    args[0] = rask_arg_int(1);
    EXPECT_ERR(RASK_ERR_INVALID_UTF8, "rask_graph_add_task", "'func'", rask_graph_add_task(g, "b", BAD, args, 1, E));
    const char *refs[2] = {"a", BAD};
    EXPECT_ERR(RASK_ERR_INVALID_UTF8, "rask_graph_add_task_refs", "'key'", rask_graph_add_task_refs(g, BAD, "inc", refs, 1, E));
    EXPECT_ERR(RASK_ERR_INVALID_UTF8, "rask_graph_add_task_refs", "'func'", rask_graph_add_task_refs(g, "b", BAD, refs, 1, E));
    EXPECT_ERR(RASK_ERR_INVALID_UTF8, "rask_graph_add_task_refs", "'refs[1]'", rask_graph_add_task_refs(g, "b", "add", refs, 2, E));
    EXPECT(rask_graph_len(g) == 1);  // nothing was added
    // A graph document with a key that is not UTF-8: {"tasks": {"\xff": {"value": 1}}}.
    const uint8_t doc[] = {0x81, 0xa5, 't', 'a', 's', 'k', 's', 0x81, 0xa1, 0xff,
                           0x81, 0xa5, 'v', 'a', 'l', 'u', 'e', 0x01};
    rask_graph *g2 = NULL;
    EXPECT_ERR(RASK_ERR_DECODE, "at byte 9", "UTF-8", rask_graph_from_msgpack(doc, sizeof doc, &g2, E));
    EXPECT(g2 == NULL);

    rask_registry *reg = rask_registry_new();
    EXPECT_ERR(RASK_ERR_INVALID_UTF8, "rask_registry_add_callback", "'name'", rask_registry_add_callback(reg, BAD, c_identity, NULL, NULL, E));
    EXPECT_ERR(RASK_ERR_INVALID_UTF8, "rask_registry_add_pulled", "'name'", rask_registry_add_pulled(reg, BAD, E));
    EXPECT(!rask_registry_contains(reg, BAD));
    EXPECT(!rask_registry_contains(NULL, BAD));
    MUST(rask_registry_add_pulled(reg, "p", E));

    const char *keys[2] = {"a", BAD};
    rask_value *results[2] = {NULL, NULL};
    EXPECT_ERR(RASK_ERR_INVALID_UTF8, "rask_compute", "'keys[1]'", rask_compute(g, keys, 2, NULL, NULL, results, NULL, E));
    EXPECT(results[0] == NULL && results[1] == NULL);
    rask_computation *comp = NULL;
    EXPECT_ERR(RASK_ERR_INVALID_UTF8, "rask_computation_start", "'keys[1]'", rask_computation_start(g, keys, 2, NULL, NULL, &comp, E));

    // rask_task_fail with a message that is not UTF-8: the task fails with
    // the bytes replaced, and the call says so.
    args[0] = rask_arg_int(1);
    MUST(rask_graph_add_task(g, "c", "p", args, 1, E));
    keys[0] = "c";
    MUST(rask_computation_start(g, keys, 1, reg, NULL, &comp, E));
    rask_task *t = NULL;
    MUST(rask_computation_next_task(comp, -1, &t, E));
    EXPECT_ERR(RASK_ERR_INVALID_UTF8, "rask_task_fail", "'message'", rask_task_fail(t, "oops " BAD, E));
    EXPECT_ERR(RASK_ERR_TASK_FAILED, "'c'", "oops " REPLACEMENT, rask_computation_wait(comp, -1, E));
    rask_computation_free(comp);
    // rask_task_fail_exception: bad bytes in any of its strings are replaced
    // and named; the task fails all the same.
    MUST(rask_computation_start(g, keys, 1, reg, NULL, &comp, E));
    MUST(rask_computation_next_task(comp, -1, &t, E));
    EXPECT_ERR(RASK_ERR_INVALID_UTF8, "rask_task_fail_exception", "'message'", rask_task_fail_exception(t, "oops " BAD, "E", "tb", E));
    EXPECT_ERR(RASK_ERR_TASK_FAILED, "'c'", "oops " REPLACEMENT, rask_computation_wait(comp, -1, E));
    rask_computation_free(comp);
    MUST(rask_computation_start(g, keys, 1, reg, NULL, &comp, E));
    MUST(rask_computation_next_task(comp, -1, &t, E));
    EXPECT_ERR(RASK_ERR_INVALID_UTF8, "rask_task_fail_exception", "'exception'", rask_task_fail_exception(t, "oops", BAD, "tb", E));
    EXPECT_ERR(RASK_ERR_TASK_FAILED, "'c'", "oops", rask_computation_wait(comp, -1, E));
    rask_computation_free(comp);
    MUST(rask_computation_start(g, keys, 1, reg, NULL, &comp, E));
    MUST(rask_computation_next_task(comp, -1, &t, E));
    EXPECT_ERR(RASK_ERR_INVALID_UTF8, "rask_task_fail_exception", "'traceback'", rask_task_fail_exception(t, "oops", "E", BAD, E));
    EXPECT_ERR(RASK_ERR_TASK_FAILED, "'c'", "oops", rask_computation_wait(comp, -1, E));
    rask_computation_free(comp);

    rask_registry_free(reg);
    rask_graph_free(g);
}

static void distributed_api(void) {
    rask_scheduler *s = NULL;
    rask_scheduler_options so = {0};
    so.host = BAD;
    EXPECT_ERR(RASK_ERR_INVALID_UTF8, "rask_scheduler_start", "'options->host'", rask_scheduler_start(&so, &s, E));
    so.host = NULL, so.name = BAD;
    EXPECT_ERR(RASK_ERR_INVALID_UTF8, "rask_scheduler_start", "'options->name'", rask_scheduler_start(&so, &s, E));
    so.name = NULL, so.token = BAD2;
    EXPECT_ERR(RASK_ERR_INVALID_UTF8, "rask_scheduler_start", "'options->token'", rask_scheduler_start(&so, &s, E));
    so.token = NULL, so.tls_ca_file = BAD;
    EXPECT_ERR(RASK_ERR_INVALID_UTF8, "rask_scheduler_start", "'options->tls_ca_file'", rask_scheduler_start(&so, &s, E));
    so.tls_ca_file = NULL, so.dashboard_address = BAD;
    EXPECT_ERR(RASK_ERR_INVALID_UTF8, "rask_scheduler_start", "'options->dashboard_address'", rask_scheduler_start(&so, &s, E));
    so.dashboard_address = NULL;
    EXPECT(s == NULL);

    rask_cluster *cl = NULL;
    rask_cluster_options co = {0};
    co.workers = 1;
    co.host = BAD;
    EXPECT_ERR(RASK_ERR_INVALID_UTF8, "rask_cluster_start", "'options->host'", rask_cluster_start(&co, NULL, &cl, E));
    co.host = NULL, co.token = BAD;
    EXPECT_ERR(RASK_ERR_INVALID_UTF8, "rask_cluster_start", "'options->token'", rask_cluster_start(&co, NULL, &cl, E));
    co.token = NULL, co.tls_cert_file = BAD;
    EXPECT_ERR(RASK_ERR_INVALID_UTF8, "rask_cluster_start", "'options->tls_cert_file'", rask_cluster_start(&co, NULL, &cl, E));
    co.tls_cert_file = NULL, co.dashboard_address = BAD;
    EXPECT_ERR(RASK_ERR_INVALID_UTF8, "rask_cluster_start", "'options->dashboard_address'", rask_cluster_start(&co, NULL, &cl, E));
    co.dashboard_address = NULL;
    EXPECT(cl == NULL);
    co.token = NULL;
    MUST(rask_cluster_start(&co, NULL, &cl, E));
    const char *addr = rask_cluster_address(cl);

    rask_client *c = NULL;
    EXPECT_ERR(RASK_ERR_INVALID_UTF8, "rask_client_connect", "'address'", rask_client_connect(BAD, NULL, &c, E));
    rask_client_options o = {0};
    o.name = BAD;
    EXPECT_ERR(RASK_ERR_INVALID_UTF8, "rask_client_connect", "'options->name'", rask_client_connect(addr, &o, &c, E));
    o.name = NULL, o.token = BAD;
    EXPECT_ERR(RASK_ERR_INVALID_UTF8, "rask_client_connect", "'options->token'", rask_client_connect(addr, &o, &c, E));
    o.token = NULL, o.tls_key_file = BAD2;
    EXPECT_ERR(RASK_ERR_INVALID_UTF8, "rask_client_connect", "'options->tls_key_file'", rask_client_connect(addr, &o, &c, E));
    EXPECT(c == NULL);
    MUST(rask_cluster_client(cl, &c, E));
    EXPECT_ERR(RASK_ERR_INVALID_UTF8, "rask_client_performance_report", "'path'", rask_client_performance_report(c, 0, BAD, E));

    rask_future *f = NULL;
    rask_arg *args[2];
    args[0] = rask_arg_int(1);
    EXPECT_ERR(RASK_ERR_INVALID_UTF8, "rask_client_submit", "'func'", rask_client_submit(c, BAD, args, 1, &f, E));
    args[0] = rask_arg_int(1);
    EXPECT_ERR(RASK_ERR_INVALID_UTF8, "rask_client_submit_with", "'func'", rask_client_submit_with(c, BAD, args, 1, NULL, &f, E));
    rask_submit_options sub = {0};
    sub.key = BAD;
    args[0] = rask_arg_int(1);
    EXPECT_ERR(RASK_ERR_INVALID_UTF8, "rask_client_submit_with", "'options->key'", rask_client_submit_with(c, "inc", args, 1, &sub, &f, E));
    EXPECT(f == NULL);
    rask_future *fs[2] = {NULL, NULL};
    args[0] = rask_arg_int(1), args[1] = rask_arg_int(2);
    EXPECT_ERR(RASK_ERR_INVALID_UTF8, "rask_client_map", "'func'", rask_client_map(c, BAD, args, 2, 1, fs, E));
    const uint8_t calls[] = {0x91, 0x91, 0x01};  // [[1]]
    rask_future_batch *batch = NULL;
    EXPECT_ERR(RASK_ERR_INVALID_UTF8, "rask_client_map_msgpack", "'func'", rask_client_map_msgpack(c, BAD, calls, sizeof calls, &batch, E));
    EXPECT(batch == NULL);
    rask_arg *sh[1] = {rask_arg_int(1)};
    EXPECT_ERR(RASK_ERR_INVALID_UTF8, "rask_client_map_msgpack_shared", "'func'", rask_client_map_msgpack_shared(c, BAD, sh, 1, calls, sizeof calls, &batch, E));
    EXPECT(batch == NULL);
    // A msgpack string that is not UTF-8 in the arguments: a decoding error.
    const uint8_t bad_str[] = {0x91, 0x91, 0xa1, 0xff};  // [["\xff"]]
    EXPECT_ERR(RASK_ERR_DECODE, "rask_client_map_msgpack", "calls", rask_client_map_msgpack(c, "inc", bad_str, sizeof bad_str, &batch, E));
    EXPECT(batch == NULL);
    rask_graph *g = rask_graph_new();
    MUST(rask_graph_add_value(g, "a", rask_value_int(1), E));
    const char *keys[2] = {"a", BAD2};
    EXPECT_ERR(RASK_ERR_INVALID_UTF8, "rask_client_compute", "'keys[1]'", rask_client_compute(c, g, keys, 2, fs, E));
    EXPECT(fs[0] == NULL && fs[1] == NULL);
    rask_graph_free(g);
    size_t moved = 7, lost = 7;
    const char *names[2] = {"tcp://127.0.0.1:1", BAD};
    EXPECT_ERR(RASK_ERR_INVALID_UTF8, "rask_client_retire_workers", "'workers[1]'", rask_client_retire_workers(c, names, 2, 1000, &moved, &lost, E));
    EXPECT(moved == 0 && lost == 0);
    // A string value that is not UTF-8 cannot even be made, so nothing bad
    // reaches rask_client_scatter or a task.

    rask_worker *w = NULL;
    EXPECT_ERR(RASK_ERR_INVALID_UTF8, "rask_worker_start", "'scheduler_address'", rask_worker_start(BAD, NULL, NULL, &w, E));
    rask_worker_options wo = {0};
    wo.name = BAD;
    EXPECT_ERR(RASK_ERR_INVALID_UTF8, "rask_worker_start", "'options->name'", rask_worker_start(addr, &wo, NULL, &w, E));
    wo.name = NULL, wo.host = BAD;
    EXPECT_ERR(RASK_ERR_INVALID_UTF8, "rask_worker_start", "'options->host'", rask_worker_start(addr, &wo, NULL, &w, E));
    wo.host = NULL, wo.token = BAD2;
    EXPECT_ERR(RASK_ERR_INVALID_UTF8, "rask_worker_start", "'options->token'", rask_worker_start(addr, &wo, NULL, &w, E));
    wo.token = NULL, wo.tls_ca_file = BAD;
    EXPECT_ERR(RASK_ERR_INVALID_UTF8, "rask_worker_start", "'options->tls_ca_file'", rask_worker_start(addr, &wo, NULL, &w, E));
    wo.tls_ca_file = NULL, wo.runtime = BAD;
    EXPECT_ERR(RASK_ERR_INVALID_UTF8, "rask_worker_start", "'options->runtime'", rask_worker_start(addr, &wo, NULL, &w, E));
    wo.runtime = "";
    EXPECT_ERR(RASK_ERR_INVALID_ARG, "options->runtime", "1 to 64 bytes", rask_worker_start(addr, &wo, NULL, &w, E));
    EXPECT(w == NULL);

    // The cluster still works after all that.
    args[0] = rask_arg_int(41);
    MUST(rask_client_submit(c, "inc", args, 1, &f, E));
    rask_value *v = NULL;
    int64_t x = 0;
    EXPECT_OK(rask_future_result(f, -1, &v, E));
    EXPECT(rask_value_get_int(v, &x, NULL) == RASK_OK && x == 42);
    rask_value_free(v);
    rask_future_free(f);
    rask_client_free(c);
    rask_cluster_free(cl);
}

// Coordination: every name (and topic) that is not UTF-8 is refused before
// anything is sent.
static void coordination(void) {
    rask_cluster_options co = {0};
    co.workers = 1;
    rask_cluster *cl = NULL;
    MUST(rask_cluster_start(&co, NULL, &cl, E));
    rask_client *c = NULL;
    MUST(rask_cluster_client(cl, &c, E));
    rask_value *one = rask_value_int(1);
    rask_value *v = NULL;
    rask_future *f = NULL;
    uint64_t n = 0;
    bool set = false;
    rask_subscription *sub = NULL;
#define U RASK_ERR_INVALID_UTF8
    EXPECT_ERR(U, "rask_client_variable_set", "'name'", rask_client_variable_set(c, BAD, one, NULL, E));
    EXPECT_ERR(U, "rask_client_variable_get", "'name'", rask_client_variable_get(c, BAD2, 0, &v, &f, E));
    EXPECT_ERR(U, "rask_client_variable_delete", "'name'", rask_client_variable_delete(c, BAD, E));
    EXPECT_ERR(U, "rask_client_queue_create", "'name'", rask_client_queue_create(c, BAD, 0, E));
    EXPECT_ERR(U, "rask_client_queue_put", "'name'", rask_client_queue_put(c, BAD, one, NULL, 0, E));
    EXPECT_ERR(U, "rask_client_queue_get", "'name'", rask_client_queue_get(c, BAD, 0, &v, &f, E));
    EXPECT_ERR(U, "rask_client_queue_size", "'name'", rask_client_queue_size(c, BAD, &n, E));
    EXPECT_ERR(U, "rask_client_lease_acquire", "'name'", rask_client_lease_acquire(c, BAD, 1, 0, &n, E));
    EXPECT_ERR(U, "rask_client_lease_release", "'name'", rask_client_lease_release(c, BAD, 1, E));
    EXPECT_ERR(U, "rask_client_event_set", "'name'", rask_client_event_set(c, BAD, E));
    EXPECT_ERR(U, "rask_client_event_clear", "'name'", rask_client_event_clear(c, BAD, E));
    EXPECT_ERR(U, "rask_client_event_wait", "'name'", rask_client_event_wait(c, BAD, 0, &set, E));
    EXPECT_ERR(U, "rask_client_publish_dataset", "'name'", rask_client_publish_dataset(c, BAD, one, NULL, false, E));
    EXPECT_ERR(U, "rask_client_get_dataset", "'name'", rask_client_get_dataset(c, BAD, &v, &f, E));
    EXPECT_ERR(U, "rask_client_unpublish_dataset", "'name'", rask_client_unpublish_dataset(c, BAD, E));
    EXPECT_ERR(U, "rask_client_publish", "'topic'", rask_client_publish(c, BAD, one, E));
    EXPECT_ERR(U, "rask_client_subscribe", "'topic'", rask_client_subscribe(c, BAD, &sub, E));
#undef U
    // Empty names are refused too, naming what is empty.
    EXPECT_ERR(RASK_ERR_INVALID_ARG, "queue name is empty", NULL, rask_client_queue_put(c, "", one, NULL, 0, E));
    EXPECT_ERR(RASK_ERR_INVALID_ARG, "variable name is empty", NULL, rask_client_variable_get(c, "", 0, &v, &f, E));
    EXPECT_ERR(RASK_ERR_INVALID_ARG, "lock or semaphore name is empty", NULL, rask_client_lease_acquire(c, "", 1, 0, &n, E));
    EXPECT(v == NULL && f == NULL && sub == NULL);
    rask_value_free(one);
    rask_client_free(c);
    rask_cluster_free(cl);
}

static void host_values(void) {
    rask_host *h = NULL;
    rask_value *v = NULL;
    EXPECT_ERR(RASK_ERR_INVALID_UTF8, "rask_host_new", "'runtime'", rask_host_new(BAD, NULL, NULL, NULL, NULL, &h, E));
    EXPECT(h == NULL);
    EXPECT_ERR(RASK_ERR_INVALID_UTF8, "rask_value_host_packed", "'runtime'",
               rask_value_host_packed(BAD, (const uint8_t *)"x", 1, &v, E));
    EXPECT(v == NULL);
}

int main(void) {
    host_values();
    local_api();
    distributed_api();
    coordination();
    return check_summary("bad_utf8");
}

// host_values.c: objects a host owns (rask_host, rask_value_host) flowing
// through a local computation: handed back as the same id to the host's
// functions, converted through the serializer only for a builtin or an
// encoding, released exactly once; the queue mode (no release callback)
// and the wrong uses.
#include "check.h"

#include <poll.h>
#include <stdatomic.h>

static atomic_int released[16];
static atomic_int serialized[16];

static rask_status serialize(void *user_data, uint64_t id, rask_value **result, rask_error **err) {
    (void)user_data;
    if (id < 16) atomic_fetch_add(&serialized[id], 1);
    if (id == 1) {  // a list of numbers: plain data
        rask_value *a = rask_value_array_new();
        for (int i = 1; i <= 3; i++) MUST(rask_value_array_push(a, rask_value_int(i), E));
        *result = a;
        return RASK_OK;
    }
    if (id == 2 || id == 12) {  // an object with no plain form: packed by its host
        return rask_value_host_packed("test-1", (const uint8_t *)"obj2", 4, result, err);
    }
    *err = rask_error_new(RASK_ERR_INVALID_ARG, "this object does not serialize");
    return RASK_ERR_INVALID_ARG;
}

static void release(void *user_data, uint64_t id) {
    (void)user_data;
    if (id < 16) atomic_fetch_add(&released[id], 1);
}

static int dropped = 0;
static void drop_data(void *user_data) {
    (void)user_data;
    dropped++;
}

static bool readable(int fd) {
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, 0) == 1;
}

// a = make(1) (pulled, gives host object 1); b = use(a) (pulled: gets the
// same object, gives object 2); c = sum(a) (builtin: gets [1, 2, 3]).
static rask_graph *graph(void) {
    rask_graph *g = rask_graph_new();
    rask_arg *one[1] = {rask_arg_int(1)};
    MUST(rask_graph_add_task(g, "a", "make", one, 1, E));
    const char *refs[1] = {"a"};
    MUST(rask_graph_add_task_refs(g, "b", "use", refs, 1, E));
    MUST(rask_graph_add_task_refs(g, "c", "sum", refs, 1, E));
    return g;
}

static void through_a_computation(void) {
    rask_host *h = NULL;
    MUST(rask_host_new("test-1", serialize, release, NULL, drop_data, &h, E));
    int fd = -1;
    EXPECT_ERR(RASK_ERR_STATE, "rask_host_fd", "release callback", rask_host_fd(h, &fd, E));
    rask_registry *reg = rask_registry_new();
    MUST(rask_registry_add_pulled(reg, "make", E));
    MUST(rask_registry_add_pulled(reg, "use", E));
    rask_graph *g = graph();
    const char *keys[2] = {"b", "c"};
    rask_computation *comp = NULL;
    MUST(rask_computation_start(g, keys, 2, reg, NULL, &comp, E));
    MUST(rask_computation_use_host(comp, h, E));
    EXPECT_ERR(RASK_ERR_STATE, "rask_computation_use_host", "already", rask_computation_use_host(comp, h, E));

    // make: one task at a time, the result a host value.
    rask_task *t = NULL;
    MUST(rask_computation_next_task(comp, -1, &t, E));
    EXPECT_STR(rask_task_func(t), "make");
    rask_value *obj = NULL;
    MUST(rask_value_host(h, 1, 24, NULL, &obj, E));
    EXPECT(rask_value_kind(obj) == RASK_KIND_HOST);
    MUST(rask_task_complete(t, obj, E));

    // use: in a batch; its argument comes back as a reference to object 1.
    uint8_t *buf = NULL;
    size_t len = 0;
    MUST(rask_computation_take_tasks(comp, 8, -1, &buf, &len, E));
    const uint8_t want[] = {0x91, 0x94, 0x00, 0xa1, 'b', 0xa3, 'u', 's', 'e', 0x91,
                            0xd7, 0x03, 1, 0, 0, 0, 0, 0, 0, 0};
    EXPECT(len == sizeof want && memcmp(buf, want, sizeof want) == 0);
    rask_buffer_free(buf, len);
    // [[0, true, <reference to object 2>]]
    const uint8_t done[] = {0x91, 0x93, 0x00, 0xc3, 0xd7, 0x03, 2, 0, 0, 0, 0, 0, 0, 0};
    MUST(rask_computation_complete_tasks(comp, done, sizeof done, E));
    MUST(rask_computation_wait(comp, -1, E));

    rask_value *results[2] = {NULL, NULL};
    MUST(rask_computation_results(comp, results, E));
    uint64_t id = 0;
    EXPECT_OK(rask_value_host_id(results[0], h, &id, E));
    EXPECT(id == 2);
    int64_t sum = 0;
    EXPECT_OK(rask_value_get_int(results[1], &sum, E));
    EXPECT(sum == 6);  // the builtin got object 1's portable form
    EXPECT(atomic_load(&serialized[1]) == 1);
    EXPECT(atomic_load(&serialized[2]) == 0);  // nothing needed object 2 converted

    // Encodings: a reference for its own host, the portable form otherwise.
    MUST(rask_value_to_msgpack_for(results[0], h, &buf, &len, E));
    const uint8_t ref2[] = {0xd7, 0x03, 2, 0, 0, 0, 0, 0, 0, 0};
    EXPECT(len == sizeof ref2 && memcmp(buf, ref2, sizeof ref2) == 0);
    rask_buffer_free(buf, len);
    MUST(rask_value_to_msgpack(results[0], &buf, &len, E));
    const uint8_t packed[] = {0xc7, 11, 0x02, 6, 't', 'e', 's', 't', '-', '1', 'o', 'b', 'j', '2'};
    EXPECT(len == sizeof packed && memcmp(buf, packed, sizeof packed) == 0);
    rask_value *back = NULL;
    MUST(rask_value_from_msgpack(buf, len, &back, E));
    rask_buffer_free(buf, len);
    EXPECT(rask_value_kind(back) == RASK_KIND_HOST);
    const char *rt = NULL;
    size_t rtlen = 0;
    const uint8_t *data = NULL;
    size_t dlen = 0;
    EXPECT_OK(rask_value_host_packed_info(back, &rt, &rtlen, &data, &dlen, E));
    EXPECT(rtlen == 6 && memcmp(rt, "test-1", 6) == 0 && dlen == 4 && memcmp(data, "obj2", 4) == 0);
    EXPECT_ERR(RASK_ERR_TYPE, "rask_value_host_id", "packed", rask_value_host_id(back, h, &id, E));
    EXPECT_ERR(RASK_ERR_TYPE, "rask_value_host_packed_info", "live",
               rask_value_host_packed_info(results[0], &rt, &rtlen, &data, &dlen, E));
    EXPECT_ERR(RASK_ERR_TYPE, "rask_value_host_id", "int", rask_value_host_id(results[1], h, &id, E));
    EXPECT_ERR(RASK_ERR_TYPE, "rask_value_host_packed_info", "int",
               rask_value_host_packed_info(results[1], &rt, &rtlen, &data, &dlen, E));
    rask_value_free(back);

    // Released once each, when the last copy goes (the computation holds one).
    rask_value *copy = rask_value_clone(results[0]);
    rask_value_free(results[0]);
    rask_value_free(results[1]);
    EXPECT(atomic_load(&released[2]) == 0);
    rask_computation_free(comp);
    EXPECT(atomic_load(&released[1]) == 1);
    EXPECT(atomic_load(&released[2]) == 0);
    rask_value_free(copy);
    EXPECT(atomic_load(&released[2]) == 1);

    // A builtin cannot take an object whose host packed it (no plain form),
    // nor one that does not serialize: the task fails naming the host.
    for (uint64_t bad = 12; bad <= 13; bad++) {
        MUST(rask_computation_start(g, keys + 1, 1, reg, NULL, &comp, E));
        MUST(rask_computation_next_task(comp, -1, &t, E));
        MUST(rask_value_host(h, bad, 0, NULL, &obj, E));
        MUST(rask_task_complete(t, obj, E));
        EXPECT_ERR(RASK_ERR_TASK_FAILED, "test-1", bad == 12 ? "plain" : "does not serialize",
                   rask_computation_wait(comp, -1, E));
        rask_computation_free(comp);
        EXPECT(atomic_load(&released[bad]) == 1);
    }
    // A reference in a computation that uses no host is not read.
    MUST(rask_computation_start(g, keys, 2, reg, NULL, &comp, E));
    MUST(rask_computation_take_tasks(comp, 8, -1, &buf, &len, E));
    rask_buffer_free(buf, len);
    EXPECT_ERR(RASK_ERR_DECODE, "rask_computation_complete_tasks", "extension type 3",
               rask_computation_complete_tasks(comp, done, sizeof done, E));
    rask_computation_free(comp);

    rask_graph_free(g);
    rask_registry_free(reg);
    EXPECT(dropped == 0);
    rask_host_free(h);
    EXPECT(dropped == 1);
    for (int i = 0; i < 16; i++) EXPECT(atomic_load(&released[i]) == (i == 1 || i == 2 || i == 12 || i == 13));
}

// No release callback: ids wait in a queue the host drains on its thread,
// and a descriptor says when. No serializer: only an object given with its
// portable form can leave.
static void queued_releases(void) {
    rask_host *q = NULL;
    MUST(rask_host_new("queue-1", NULL, NULL, NULL, NULL, &q, E));
    int fd = -1;
    MUST(rask_host_fd(q, &fd, E));
    EXPECT(fd >= 0 && !readable(fd));
    rask_value *a = NULL, *b = NULL;
    MUST(rask_value_host(q, 7, 0, NULL, &a, E));
    MUST(rask_value_host(q, 8, 0, rask_value_int(42), &b, E));
    uint8_t *buf = NULL;
    size_t len = 0;
    EXPECT_ERR(RASK_ERR_INVALID_ARG, "rask_value_to_msgpack", "queue-1", rask_value_to_msgpack(a, &buf, &len, E));
    MUST(rask_value_to_msgpack(b, &buf, &len, E));
    EXPECT(len == 1 && buf[0] == 42);
    rask_buffer_free(buf, len);
    uint64_t ids[4] = {0};
    size_t n = 9;
    MUST(rask_host_take_released(q, ids, 4, &n, E));
    EXPECT(n == 0);
    rask_value_free(a);
    EXPECT(readable(fd));
    rask_value_free(b);
    MUST(rask_host_take_released(q, ids, 1, &n, E));
    EXPECT(n == 1 && ids[0] == 7 && readable(fd));
    MUST(rask_host_take_released(q, ids, 4, &n, E));
    EXPECT(n == 1 && ids[0] == 8 && !readable(fd));
    MUST(rask_host_take_released(q, ids, 4, &n, E));
    EXPECT(n == 0);
    // A portable form must not hold a live host value (it is consumed).
    MUST(rask_value_host(q, 9, 0, NULL, &a, E));
    rask_value *arr = rask_value_array_new();
    MUST(rask_value_array_push(arr, a, E));
    EXPECT_ERR(RASK_ERR_INVALID_ARG, "rask_value_host", "live", rask_value_host(q, 10, 0, arr, &b, E));
    EXPECT(b == NULL);
    MUST(rask_host_take_released(q, ids, 4, &n, E));
    EXPECT(n == 2);  // 9 (inside the refused form) and 10 (the refused value)
    // Values may outlive their host: releases then go nowhere.
    MUST(rask_value_host(q, 11, 0, NULL, &a, E));
    rask_host_free(q);
    EXPECT_ERR(RASK_ERR_INVALID_ARG, "rask_value_to_msgpack", "closed", rask_value_to_msgpack(a, &buf, &len, E));
    rask_value_free(a);
    EXPECT_ERR(RASK_ERR_INVALID_ARG, "rask_host_new", "1 to 255", rask_host_new("", NULL, NULL, NULL, NULL, &q, E));
    EXPECT_ERR(RASK_ERR_INVALID_ARG, "rask_value_host_packed", "1 to 255",
               rask_value_host_packed("", (const uint8_t *)"x", 1, &a, E));
}

int main(void) {
    through_a_computation();
    queued_releases();
    return check_summary("host_values");
}

// worker_host.c: a host's objects through a worker's batches
// (rask_worker_use_host with rask_worker_take_tasks/complete_tasks): a
// result given as a reference (msgpack extension type 3) stays the host's
// object in the worker; a task of the same worker that takes it gets the
// same reference back (no serializer call); a client that gathers it gets
// the serializer's plain form; the object is released exactly once, when
// nobody wants it any more. Using a host twice is refused.
#include "check.h"

#include <stdatomic.h>

static atomic_int released[8];
static atomic_int serialized[8];

static rask_status serialize(void *user_data, uint64_t id, rask_value **result, rask_error **err) {
    (void)user_data;
    (void)err;
    if (id < 8) atomic_fetch_add(&serialized[id], 1);
    *result = rask_value_int(1000 + (int64_t)id);  // its plain form
    return RASK_OK;
}

static void release(void *user_data, uint64_t id) {
    (void)user_data;
    if (id < 8) atomic_fetch_add(&released[id], 1);
}

// msgpack [[id, true, ext3(ref)]]: ext 3 with an 8-byte little-endian id
// (fixext 8: 0xd7, type, 8 bytes).
static size_t one_ref_result(uint8_t *out, uint64_t task_id, uint64_t ref) {
    size_t n = 0;
    out[n++] = 0x91;  // array of 1
    out[n++] = 0x93;  // [id, true, value]
    out[n++] = 0xcf;  // uint64
    for (int i = 7; i >= 0; i--) out[n++] = (uint8_t)(task_id >> (8 * i));
    out[n++] = 0xc3;  // true
    out[n++] = 0xd7;  // fixext 8
    out[n++] = 3;
    for (int i = 0; i < 8; i++) out[n++] = (uint8_t)(ref >> (8 * i));
    return n;
}

// The one task of a batch: its id and function name.
static void the_task(rask_worker *w, uint64_t *id, char *func, size_t func_cap) {
    uint8_t *buf = NULL;
    size_t len = 0;
    MUST(rask_worker_take_tasks(w, 1, 30000, &buf, &len, E));
    // [[id, key, func, [args...]]]: read with rask's own decoder.
    rask_value *all = NULL;
    MUST(rask_value_from_msgpack(buf, len, &all, E));
    rask_buffer_free(buf, len);
    const rask_value *t = NULL;
    MUST(rask_value_array_get(all, 0, &t, E));
    const rask_value *part = NULL;
    MUST(rask_value_array_get(t, 0, &part, E));
    int64_t i = -1;
    MUST(rask_value_get_int(part, &i, E));
    *id = (uint64_t)i;
    MUST(rask_value_array_get(t, 2, &part, E));
    const char *s = NULL;
    size_t sn = 0;
    MUST(rask_value_get_str(part, &s, &sn, E));
    snprintf(func, func_cap, "%.*s", (int)sn, s);
    rask_value_free(all);
}

int main(void) {
    rask_scheduler *sched = NULL;
    MUST(rask_scheduler_start(NULL, &sched, E));
    rask_registry *reg = rask_registry_new();
    MUST(rask_registry_add_pulled(reg, "make", E));
    MUST(rask_registry_add_pulled(reg, "use", E));
    rask_worker *w = NULL;
    MUST(rask_worker_start(rask_scheduler_address(sched), NULL, reg, &w, E));
    rask_registry_free(reg);
    rask_host *h = NULL;
    MUST(rask_host_new("test-1", serialize, release, NULL, NULL, &h, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_worker_use_host", "'host'", rask_worker_use_host(w, NULL, E));
    MUST(rask_worker_use_host(w, h, E));
    EXPECT_ERR(RASK_ERR_STATE, "rask_worker_use_host", "already uses a host", rask_worker_use_host(w, h, E));
    rask_client *c = NULL;
    MUST(rask_client_connect(rask_scheduler_address(sched), NULL, &c, E));

    // a = make(1): the host answers with its object 5, as a reference.
    rask_future *a = NULL;
    rask_arg *one[1] = {rask_arg_int(1)};
    MUST(rask_client_submit(c, "make", one, 1, &a, E));
    uint64_t id = 0;
    char func[16];
    the_task(w, &id, func, sizeof func);
    EXPECT_STR(func, "make");
    uint8_t res[64];
    size_t n = one_ref_result(res, id, 5);
    EXPECT_OK(rask_worker_complete_tasks(w, res, n, E));

    // b = use(a) on the same worker: the argument is the same reference
    // (msgpack ext 3 of id 5), and no serializer call was needed.
    rask_future *b = NULL;
    rask_arg *fa[1] = {rask_arg_future(a)};
    MUST(rask_client_submit(c, "use", fa, 1, &b, E));
    uint8_t *buf = NULL;
    size_t len = 0;
    MUST(rask_worker_take_tasks(w, 1, 30000, &buf, &len, E));
    const uint8_t want_ref[10] = {0xd7, 3, 5, 0, 0, 0, 0, 0, 0, 0};
    bool found = false;
    for (size_t i = 0; i + sizeof want_ref <= len; i++) {
        if (memcmp(buf + i, want_ref, sizeof want_ref) == 0) found = true;
    }
    EXPECT(found);
    EXPECT(atomic_load(&serialized[5]) == 0);
    // its id: [[id, ...]] with id a small uint
    EXPECT(len > 3 && buf[0] == 0x91 && buf[1] == 0x94);
    uint64_t bid = buf[2] < 0x80 ? buf[2] : 0;
    rask_buffer_free(buf, len);
    const uint8_t ok_nil[] = {0x91, 0x93, (uint8_t)bid, 0xc3, 0xc0};  // [[id, true, nil]]
    EXPECT_OK(rask_worker_complete_tasks(w, ok_nil, sizeof ok_nil, E));
    rask_value *v = NULL;
    MUST(rask_future_result(b, 30000, &v, E));
    EXPECT(rask_value_kind(v) == RASK_KIND_NIL);
    rask_value_free(v);

    // The client gathers a: the serializer's plain form crosses.
    MUST(rask_future_result(a, 30000, &v, E));
    int64_t x = 0;
    MUST(rask_value_get_int(v, &x, E));
    EXPECT(x == 1005);
    EXPECT(atomic_load(&serialized[5]) >= 1);
    rask_value_free(v);
    EXPECT(atomic_load(&released[5]) == 0);  // still wanted (the client holds a)

    rask_future_free(b);
    rask_future_free(a);
    rask_client_free(c);
    rask_worker_free(w);
    rask_scheduler_free(sched);
    EXPECT(atomic_load(&released[5]) == 1);  // released once, when the worker dropped it
    rask_host_free(h);
    return check_summary("worker_host");
}

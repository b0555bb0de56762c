// null_args.c: every exported function of rask.h given NULL for each of its
// pointer parameters.
//
// - A function that returns a rask_status fails with RASK_ERR_NULL_ARG and
//   an error whose message names the function and the parameter
//   ("rask_value_str: argument 'out' must not be NULL"). Arguments the
//   function consumes are consumed even then (no leak, no double free:
//   run it under valgrind or ASan to see).
// - A function with no status channel returns its documented safe result
//   for NULL: "" for addresses and messages, NULL for keys, clones and
//   arguments, 0 for counts, RASK_KIND_NIL, RASK_FUTURE_ERROR, and so on.
// - Every _free accepts NULL.
// - Where NULL is allowed (options, registries, outputs that are optional,
//   arrays of length 0), the call succeeds.
//
// Handles are real (a local cluster, a client, futures, a worker, a pulled
// task), so that only the parameter under test is NULL.
#include "check.h"

#include <signal.h>
#include <unistd.h>

#define NUL_MSG "must not be NULL"

static rask_status c_identity(void *user_data, const rask_value *const *args, size_t nargs,
                              rask_value **result, rask_error **err) {
    (void)user_data;
    (void)err;
    *result = nargs > 0 ? rask_value_clone(args[0]) : rask_value_nil();
    return RASK_OK;
}

static void errors_and_versions(void) {
    EXPECT(rask_abi_version() == RASK_ABI_VERSION);
    EXPECT(rask_version_string() != NULL && rask_version_string()[0] != '\0');
    EXPECT_STR(rask_status_name(RASK_ERR_NULL_ARG), "RASK_ERR_NULL_ARG");
    EXPECT_STR(rask_status_name(-1), "RASK_UNKNOWN_STATUS");
    EXPECT_STR(rask_error_message(NULL), "");
    EXPECT(rask_error_status(NULL) == RASK_OK);
    EXPECT(rask_error_exception(NULL) == NULL);
    EXPECT(rask_error_traceback(NULL) == NULL);
    rask_error_free(NULL);
    rask_error *e = rask_error_new(RASK_ERR_TYPE, NULL);  // NULL message: ""
    EXPECT(e != NULL && rask_error_status(e) == RASK_ERR_TYPE);
    EXPECT_STR(rask_error_message(e), "");
    rask_error_free(e);
    e = rask_error_new(12345, "x");  // unknown status: stored as TASK_FAILED
    EXPECT(rask_error_status(e) == RASK_ERR_TASK_FAILED);
    rask_error_free(e);
    // A NULL err: only the status.
    EXPECT(rask_value_str("a", 1, NULL, NULL) == RASK_ERR_NULL_ARG);
}

static void values(void) {
    rask_value *out = NULL;
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_str", "'s' " NUL_MSG, rask_value_str(NULL, 3, &out, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_str", "'out' " NUL_MSG, rask_value_str("abc", 3, NULL, E));
    EXPECT_OK(rask_value_str(NULL, 0, &out, E));  // NULL with length 0: ""
    EXPECT(rask_value_kind(out) == RASK_KIND_STR);
    rask_value_free(out);
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_bytes", "'data'", rask_value_bytes(NULL, 3, &out, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_bytes", "'out'", rask_value_bytes((const uint8_t *)"ab", 2, NULL, E));
    EXPECT_OK(rask_value_bytes(NULL, 0, &out, E));
    rask_value_free(out);

    rask_value *arr = rask_value_array_new();
    rask_value *map = rask_value_map_new();
    EXPECT(arr != NULL && map != NULL);
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_array_push", "'array'", rask_value_array_push(NULL, rask_value_int(1), E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_array_push", "'elem'", rask_value_array_push(arr, NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_map_insert", "'map'", rask_value_map_insert(NULL, rask_value_int(1), rask_value_int(2), E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_map_insert", "'key'", rask_value_map_insert(map, NULL, rask_value_int(2), E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_map_insert", "'val'", rask_value_map_insert(map, rask_value_int(1), NULL, E));
    size_t n = 99;
    EXPECT_OK(rask_value_len(arr, &n, E));
    EXPECT(n == 0);  // nothing was added by the failed calls
    EXPECT_OK(rask_value_len(map, &n, E));
    EXPECT(n == 0);

    double data[2] = {1, 2};
    size_t shape[1] = {2};
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_tensor", "'shape'", rask_value_tensor(RASK_DTYPE_FLOAT64, NULL, 1, data, sizeof data, &out, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_tensor", "'data'", rask_value_tensor(RASK_DTYPE_FLOAT64, shape, 1, NULL, sizeof data, &out, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_tensor", "'out'", rask_value_tensor(RASK_DTYPE_FLOAT64, shape, 1, data, sizeof data, NULL, E));
    // shape may be NULL for a 0-dimensional tensor.
    EXPECT_OK(rask_value_tensor(RASK_DTYPE_FLOAT64, NULL, 0, data, sizeof(double), &out, E));
    rask_value *tensor = out;

    EXPECT(rask_value_clone(NULL) == NULL);
    rask_value_free(NULL);
    EXPECT(rask_value_kind(NULL) == RASK_KIND_NIL);
    EXPECT(rask_value_nil() != NULL && rask_value_kind(rask_value_nil()) == RASK_KIND_NIL);

    rask_value *b = rask_value_bool(true), *i = rask_value_int(-1), *u = rask_value_uint(UINT64_MAX),
               *f = rask_value_float(0.5), *s = NULL, *bin = NULL;
    MUST(rask_value_str("hi", 2, &s, E));
    MUST(rask_value_bytes((const uint8_t *)"hi", 2, &bin, E));
    bool bo;
    int64_t io;
    uint64_t uo;
    double fo;
    const char *sp;
    const uint8_t *bp;
    const rask_value *vo;
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_get_bool", "'v'", rask_value_get_bool(NULL, &bo, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_get_bool", "'out'", rask_value_get_bool(b, NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_get_int", "'v'", rask_value_get_int(NULL, &io, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_get_int", "'out'", rask_value_get_int(i, NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_get_uint", "'v'", rask_value_get_uint(NULL, &uo, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_get_uint", "'out'", rask_value_get_uint(u, NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_get_float", "'v'", rask_value_get_float(NULL, &fo, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_get_float", "'out'", rask_value_get_float(f, NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_get_str", "'v'", rask_value_get_str(NULL, &sp, &n, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_get_str", "'ptr'", rask_value_get_str(s, NULL, &n, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_get_str", "'len'", rask_value_get_str(s, &sp, NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_get_bytes", "'v'", rask_value_get_bytes(NULL, &bp, &n, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_get_bytes", "'data'", rask_value_get_bytes(bin, NULL, &n, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_get_bytes", "'len'", rask_value_get_bytes(bin, &bp, NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_len", "'v'", rask_value_len(NULL, &n, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_len", "'out'", rask_value_len(arr, NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_array_get", "'v'", rask_value_array_get(NULL, 0, &vo, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_array_get", "'out'", rask_value_array_get(arr, 0, NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_map_key", "'v'", rask_value_map_key(NULL, 0, &vo, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_map_key", "'out'", rask_value_map_key(map, 0, NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_map_value", "'v'", rask_value_map_value(NULL, 0, &vo, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_map_value", "'out'", rask_value_map_value(map, 0, NULL, E));
    rask_dtype dt;
    size_t ndim, nbytes;
    const size_t *shp;
    const void *dp;
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_tensor_info", "'v'", rask_value_tensor_info(NULL, &dt, &ndim, &shp, &dp, &nbytes, E));
    // Every output of tensor_info may be NULL.
    EXPECT_OK(rask_value_tensor_info(tensor, NULL, NULL, NULL, NULL, NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_from_msgpack", "'data'", rask_value_from_msgpack(NULL, 1, &out, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_from_msgpack", "'out'", rask_value_from_msgpack((const uint8_t *)"\xc0", 1, NULL, E));
    uint8_t *buf;
    size_t len;
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_to_msgpack", "'v'", rask_value_to_msgpack(NULL, &buf, &len, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_to_msgpack", "'data'", rask_value_to_msgpack(i, NULL, &len, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_to_msgpack", "'len'", rask_value_to_msgpack(i, &buf, NULL, E));
    rask_buffer_free(NULL, 0);
    rask_buffer_free(NULL, 10);

    rask_value *all[] = {arr, map, tensor, b, i, u, f, s, bin};
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++) {
        rask_value_free(all[k]);
    }
}

static void args_and_graphs(void) {
    rask_arg *a = NULL;
    EXPECT(rask_arg_value(NULL) == NULL);
    rask_arg *ai = rask_arg_int(1), *af = rask_arg_float(2.0);
    EXPECT(ai != NULL && af != NULL);
    rask_arg_free(ai);
    rask_arg_free(af);
    rask_arg_free(NULL);
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_arg_ref", "'key'", rask_arg_ref(NULL, &a, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_arg_ref", "'out'", rask_arg_ref("k", NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_arg_list", "'items'", rask_arg_list(NULL, 2, &a, E));
    rask_arg *items[2] = {rask_arg_int(1), NULL};
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_arg_list", "'items[1]'", rask_arg_list(items, 2, &a, E));
    rask_arg *items2[1] = {rask_arg_int(1)};
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_arg_list", "'out'", rask_arg_list(items2, 1, NULL, E));
    EXPECT_OK(rask_arg_list(NULL, 0, &a, E));  // an empty list
    rask_arg_free(a);

    rask_graph *g = rask_graph_new();
    EXPECT(g != NULL);
    EXPECT(rask_graph_clone(NULL) == NULL);
    rask_graph_free(NULL);
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_graph_add_value", "'g'", rask_graph_add_value(NULL, "a", rask_value_int(1), E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_graph_add_value", "'key'", rask_graph_add_value(g, NULL, rask_value_int(1), E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_graph_add_value", "'value'", rask_graph_add_value(g, "a", NULL, E));
    MUST(rask_graph_add_value(g, "a", rask_value_int(1), E));
    rask_arg *one[1];
    one[0] = rask_arg_int(1);
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_graph_add_task", "'g'", rask_graph_add_task(NULL, "b", "inc", one, 1, E));
    one[0] = rask_arg_int(1);
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_graph_add_task", "'key'", rask_graph_add_task(g, NULL, "inc", one, 1, E));
    one[0] = rask_arg_int(1);
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_graph_add_task", "'func'", rask_graph_add_task(g, "b", NULL, one, 1, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_graph_add_task", "'args'", rask_graph_add_task(g, "b", "inc", NULL, 1, E));
    one[0] = NULL;
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_graph_add_task", "'args[0]'", rask_graph_add_task(g, "b", "inc", one, 1, E));
    const char *refs[2] = {"a", NULL};
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_graph_add_task_refs", "'g'", rask_graph_add_task_refs(NULL, "b", "inc", refs, 1, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_graph_add_task_refs", "'key'", rask_graph_add_task_refs(g, NULL, "inc", refs, 1, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_graph_add_task_refs", "'func'", rask_graph_add_task_refs(g, "b", NULL, refs, 1, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_graph_add_task_refs", "'refs'", rask_graph_add_task_refs(g, "b", "inc", NULL, 1, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_graph_add_task_refs", "'refs[1]'", rask_graph_add_task_refs(g, "b", "add", refs, 2, E));
    EXPECT(rask_graph_len(g) == 1);  // the failed calls added nothing
    MUST(rask_graph_add_task_refs(g, "b", "inc", refs, 1, E));
    rask_graph *out = NULL;
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_graph_from_msgpack", "'data'", rask_graph_from_msgpack(NULL, 4, &out, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_graph_from_msgpack", "'out'", rask_graph_from_msgpack((const uint8_t *)"\x80", 1, NULL, E));
    EXPECT(rask_graph_doc_output_count(NULL) == 0);
    EXPECT(rask_graph_doc_output(NULL, 0) == NULL);
    EXPECT(rask_graph_doc_output(g, 0) == NULL);  // not from a document
    EXPECT(rask_graph_len(NULL) == 0);
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_graph_validate", "'g'", rask_graph_validate(NULL, E));
    EXPECT_OK(rask_graph_validate(g, E));
    {
        uint8_t *dot = NULL;
        size_t dot_len = 0;
        EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_graph_to_dot", "'g'", rask_graph_to_dot(NULL, &dot, &dot_len, E));
        EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_graph_to_dot", "'data'", rask_graph_to_dot(g, NULL, &dot_len, E));
        EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_graph_to_dot", "'len'", rask_graph_to_dot(g, &dot, NULL, E));
        // The graph built so far, as DOT text.
        EXPECT_OK(rask_graph_to_dot(g, &dot, &dot_len, E));
        EXPECT(dot != NULL && dot_len > 10 && memcmp(dot, "digraph rask {", 14) == 0);
        EXPECT(dot[dot_len - 2] == '}' && dot[dot_len - 1] == '\n');
        rask_buffer_free(dot, dot_len);
    }

    // Registries.
    rask_registry *reg = rask_registry_new();
    EXPECT(reg != NULL);
    rask_registry_free(NULL);
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_registry_add_callback", "'reg'", rask_registry_add_callback(NULL, "f", c_identity, NULL, NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_registry_add_callback", "'name'", rask_registry_add_callback(reg, NULL, c_identity, NULL, NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_registry_add_callback", "'callback'", rask_registry_add_callback(reg, "f", NULL, NULL, NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_registry_add_pulled", "'reg'", rask_registry_add_pulled(NULL, "p", E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_registry_add_pulled", "'name'", rask_registry_add_pulled(reg, NULL, E));
    EXPECT(!rask_registry_contains(reg, NULL));
    EXPECT(rask_registry_contains(NULL, "inc"));  // NULL: the builtins
    EXPECT(!rask_registry_contains(NULL, "f"));
    EXPECT(!rask_registry_contains(reg, "f"));  // the failed calls added nothing
    MUST(rask_registry_add_pulled(reg, "p", E));

    // rask_compute and background computations.
    const char *keys[2] = {"b", NULL};
    rask_value *results[2] = {NULL, NULL};
    rask_compute_stats stats;
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_compute", "'graph'", rask_compute(NULL, keys, 1, NULL, NULL, results, NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_compute", "'keys'", rask_compute(g, NULL, 1, NULL, NULL, results, NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_compute", "'keys[1]'", rask_compute(g, keys, 2, NULL, NULL, results, NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_compute", "'results'", rask_compute(g, keys, 1, NULL, NULL, NULL, NULL, E));
    // registry, options and stats may be NULL.
    EXPECT_OK(rask_compute(g, keys, 1, NULL, NULL, results, NULL, E));
    int64_t v = 0;
    EXPECT(rask_value_get_int(results[0], &v, NULL) == RASK_OK && v == 2);
    rask_value_free(results[0]);

    rask_computation *comp = NULL;
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_computation_start", "'graph'", rask_computation_start(NULL, keys, 1, NULL, NULL, &comp, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_computation_start", "'keys'", rask_computation_start(g, NULL, 1, NULL, NULL, &comp, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_computation_start", "'keys[1]'", rask_computation_start(g, keys, 2, NULL, NULL, &comp, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_computation_start", "'out'", rask_computation_start(g, keys, 1, NULL, NULL, NULL, E));
    // A computation with a pulled task, to get a rask_task.
    rask_arg *pa[1] = {rask_arg_int(5)};
    MUST(rask_graph_add_task(g, "c", "p", pa, 1, E));
    keys[0] = "c";
    MUST(rask_computation_start(g, keys, 1, reg, NULL, &comp, E));
    rask_task *task = NULL;
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_computation_next_task", "'comp'", rask_computation_next_task(NULL, 0, &task, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_computation_next_task", "'out'", rask_computation_next_task(comp, 0, NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_computation_wait", "'comp'", rask_computation_wait(NULL, 0, E));
    EXPECT(rask_computation_is_done(NULL));  // documented: true for NULL
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_computation_results", "'comp'", rask_computation_results(NULL, results, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_computation_results", "'results'", rask_computation_results(comp, NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_computation_stats", "'comp'", rask_computation_stats(NULL, &stats, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_computation_stats", "'stats'", rask_computation_stats(comp, NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_computation_cancel", "'comp'", rask_computation_cancel(NULL, E));
    rask_computation_free(NULL);

    // Many tasks in one call: rask_computation_take_tasks / _complete_tasks.
    uint8_t *tb = NULL;
    size_t tlen = 7;
    const uint8_t done6[] = {0x91, 0x93, 0x00, 0xc3, 0x06};  // [[0, true, 6]]
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_computation_take_tasks", "'comp'", rask_computation_take_tasks(NULL, 8, 0, &tb, &tlen, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_computation_take_tasks", "'data'", rask_computation_take_tasks(comp, 8, 0, NULL, &tlen, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_computation_take_tasks", "'len'", rask_computation_take_tasks(comp, 8, 0, &tb, NULL, E));
    EXPECT_ERR(RASK_ERR_INVALID_ARG, "rask_computation_take_tasks", "max", rask_computation_take_tasks(comp, 0, 0, &tb, &tlen, E));
    EXPECT(tb == NULL && tlen == 0);
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_computation_complete_tasks", "'comp'", rask_computation_complete_tasks(NULL, done6, sizeof done6, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_computation_complete_tasks", "'results'", rask_computation_complete_tasks(comp, NULL, 5, E));
    {
        rask_computation *bc = NULL;
        MUST(rask_computation_start(g, keys, 1, reg, NULL, &bc, E));
        EXPECT_OK(rask_computation_take_tasks(bc, 8, -1, &tb, &tlen, E));
        // [[0, "c", "p", [5]]]
        const uint8_t want[] = {0x91, 0x94, 0x00, 0xa1, 'c', 0xa1, 'p', 0x91, 0x05};
        EXPECT(tlen == sizeof want && memcmp(tb, want, sizeof want) == 0);
        rask_buffer_free(tb, tlen);
        const uint8_t junk[] = {0xc1};
        const uint8_t unknown[] = {0x91, 0x93, 0x07, 0xc3, 0x01};        // [[7, true, 1]]
        const uint8_t not_bool[] = {0x91, 0x93, 0x00, 0x01, 0x01};       // [[0, 1, 1]]
        const uint8_t bad_message[] = {0x91, 0x93, 0x00, 0xc2, 0x03};    // [[0, false, 3]]
        const uint8_t twice[] = {0x92, 0x93, 0x00, 0xc3, 0x06, 0x93, 0x00, 0xc3, 0x06};
        EXPECT_ERR(RASK_ERR_DECODE, "rask_computation_complete_tasks", "results", rask_computation_complete_tasks(bc, junk, sizeof junk, E));
        EXPECT_ERR(RASK_ERR_INVALID_ARG, "rask_computation_complete_tasks", "results[0]", rask_computation_complete_tasks(bc, unknown, sizeof unknown, E));
        EXPECT_ERR(RASK_ERR_INVALID_ARG, "rask_computation_complete_tasks", "results[0]", rask_computation_complete_tasks(bc, not_bool, sizeof not_bool, E));
        EXPECT_ERR(RASK_ERR_INVALID_ARG, "rask_computation_complete_tasks", "results[0]", rask_computation_complete_tasks(bc, bad_message, sizeof bad_message, E));
        EXPECT_ERR(RASK_ERR_INVALID_ARG, "rask_computation_complete_tasks", "results[1]", rask_computation_complete_tasks(bc, twice, sizeof twice, E));
        EXPECT(!rask_computation_is_done(bc));  // nothing was ended by the refused calls
        EXPECT_OK(rask_computation_complete_tasks(bc, done6, sizeof done6, E));
        EXPECT_OK(rask_computation_wait(bc, -1, E));
        MUST(rask_computation_results(bc, results, E));
        EXPECT(rask_value_get_int(results[0], &v, NULL) == RASK_OK && v == 6);
        rask_value_free(results[0]);
        EXPECT_STATUS(RASK_DONE, rask_computation_take_tasks(bc, 8, -1, &tb, &tlen, E));
        rask_computation_free(bc);
        // A task failed with a message.
        MUST(rask_computation_start(g, keys, 1, reg, NULL, &bc, E));
        MUST(rask_computation_take_tasks(bc, 8, -1, &tb, &tlen, E));
        rask_buffer_free(tb, tlen);
        const uint8_t boom[] = {0x91, 0x93, 0x00, 0xc2, 0xa4, 'b', 'o', 'o', 'm'};  // [[0, false, "boom"]]
        EXPECT_OK(rask_computation_complete_tasks(bc, boom, sizeof boom, E));
        EXPECT_ERR(RASK_ERR_TASK_FAILED, "'c'", "boom", rask_computation_wait(bc, -1, E));
        rask_computation_free(bc);
    }

    // Tasks.
    EXPECT(rask_task_key(NULL) == NULL);
    EXPECT(rask_task_func(NULL) == NULL);
    EXPECT(rask_task_nargs(NULL) == 0);
    EXPECT(rask_task_arg(NULL, 0) == NULL);
    rask_task_free(NULL);
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_task_complete", "'task'", rask_task_complete(NULL, rask_value_int(1), E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_task_fail", "'task'", rask_task_fail(NULL, "m", E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_task_fail_exception", "'task'", rask_task_fail_exception(NULL, "m", "E", "tb", E));
    // Tasks that submit tasks.
    rask_client *tc = NULL;
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_callback_client", "'client'", rask_callback_client(NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_task_client", "'task'", rask_task_client(NULL, &tc, E));
    EXPECT(tc == NULL);
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_task_secede", "'task'", rask_task_secede(NULL, E));
    MUST(rask_computation_next_task(comp, -1, &task, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_task_client", "'client'", rask_task_client(task, NULL, E));
    EXPECT_STR(rask_task_key(task), "c");
    EXPECT_STR(rask_task_func(task), "p");
    EXPECT(rask_task_nargs(task) == 1);
    EXPECT(rask_task_arg(task, 1) == NULL);  // out of range
    // A NULL result fails the task (consumed) and the computation with it.
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_task_complete", "'result'", rask_task_complete(task, NULL, E));
    EXPECT_ERR(RASK_ERR_TASK_FAILED, "'c'", "NULL result", rask_computation_wait(comp, -1, E));
    rask_computation_free(comp);
    // A NULL message fails the task too.
    MUST(rask_computation_start(g, keys, 1, reg, NULL, &comp, E));
    MUST(rask_computation_next_task(comp, -1, &task, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_task_fail", "'message'", rask_task_fail(task, NULL, E));
    EXPECT_ERR(RASK_ERR_TASK_FAILED, "'c'", "without a message", rask_computation_wait(comp, -1, E));
    rask_computation_free(comp);
    // rask_task_fail_exception: a NULL message fails the task too; NULL
    // exception and traceback are allowed (not known).
    MUST(rask_computation_start(g, keys, 1, reg, NULL, &comp, E));
    MUST(rask_computation_next_task(comp, -1, &task, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_task_fail_exception", "'message'", rask_task_fail_exception(task, NULL, "ValueError", NULL, E));
    EXPECT_ERR(RASK_ERR_TASK_FAILED, "'c'", "without a message", rask_computation_wait(comp, -1, E));
    rask_computation_free(comp);
    MUST(rask_computation_start(g, keys, 1, reg, NULL, &comp, E));
    MUST(rask_computation_next_task(comp, -1, &task, E));
    EXPECT_OK(rask_task_fail_exception(task, "boom", NULL, NULL, E));
    EXPECT_ERR(RASK_ERR_TASK_FAILED, "'c'", "boom", rask_computation_wait(comp, -1, E));
    rask_computation_free(comp);

    rask_registry_free(reg);
    rask_graph_free(g);
}

// rask_client_progress's callback: counts its calls in *user_data (if any).
static void progress_seen(const rask_progress_counts *counts, void *user_data) {
    (void)counts;
    if (user_data) ++*(size_t *)user_data;
}

static int64_t result_of(const rask_future *f) {
    rask_value *v = NULL;
    int64_t x = -1;
    if (rask_future_result(f, -1, &v, NULL) == RASK_OK) rask_value_get_int(v, &x, NULL);
    rask_value_free(v);
    return x;
}

static void distributed(void) {
    // Schedulers.
    rask_scheduler *sched = NULL;
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_scheduler_start", "'out'", rask_scheduler_start(NULL, NULL, E));
    EXPECT_OK(rask_scheduler_start(NULL, &sched, E));  // NULL options: the defaults
    EXPECT_STR(rask_scheduler_address(NULL), "");
    EXPECT_STR(rask_scheduler_dashboard_link(NULL), "");
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_scheduler_stop", "'scheduler'", rask_scheduler_stop(NULL, E));
    rask_scheduler_free(NULL);

    // Workers, at that scheduler.
    rask_worker *w = NULL;
    const char *addr = rask_scheduler_address(sched);
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_worker_start", "'scheduler_address'", rask_worker_start(NULL, NULL, NULL, &w, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_worker_start", "'out'", rask_worker_start(addr, NULL, NULL, NULL, E));
    EXPECT_OK(rask_worker_start(addr, NULL, NULL, &w, E));  // options, registry: defaults
    EXPECT_STR(rask_worker_address(NULL), "");
    EXPECT_STR(rask_worker_name(NULL), "");
    EXPECT(rask_worker_stop_reason(NULL) == NULL);
    rask_task *task = NULL;
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_worker_next_task", "'worker'", rask_worker_next_task(NULL, 0, &task, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_worker_next_task", "'out'", rask_worker_next_task(w, 0, NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_worker_wait", "'worker'", rask_worker_wait(NULL, 0, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_worker_stop", "'worker'", rask_worker_stop(NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_worker_retire", "'worker'", rask_worker_retire(NULL, E));
    int fd = 0;
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_worker_fd", "'worker'", rask_worker_fd(NULL, &fd, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_worker_fd", "'out'", rask_worker_fd(w, NULL, E));
    {  // Tasks in batches (tests/c/worker_batch.c has the bad input).
        uint8_t *wb = NULL;
        size_t wlen = 7;
        const uint8_t done1[] = {0x91, 0x93, 0x00, 0xc3, 0x01};  // [[0, true, 1]]
        EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_worker_take_tasks", "'worker'", rask_worker_take_tasks(NULL, 8, 0, &wb, &wlen, E));
        EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_worker_take_tasks", "'data'", rask_worker_take_tasks(w, 8, 0, NULL, &wlen, E));
        EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_worker_take_tasks", "'len'", rask_worker_take_tasks(w, 8, 0, &wb, NULL, E));
        EXPECT_ERR(RASK_ERR_INVALID_ARG, "rask_worker_take_tasks", "max", rask_worker_take_tasks(w, 0, 0, &wb, &wlen, E));
        EXPECT(wb == NULL && wlen == 0);
        EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_worker_complete_tasks", "'worker'", rask_worker_complete_tasks(NULL, done1, sizeof done1, E));
        EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_worker_complete_tasks", "'results'", rask_worker_complete_tasks(w, NULL, 5, E));
        rask_task *dt = NULL;
        EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_worker_detach_task", "'worker'", rask_worker_detach_task(NULL, 0, &dt, E));
        EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_worker_detach_task", "'out'", rask_worker_detach_task(w, 0, NULL, E));
        EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_worker_secede_task", "'worker'", rask_worker_secede_task(NULL, 0, NULL, 0, &dt, E));
        EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_worker_secede_task", "'out'", rask_worker_secede_task(w, 0, NULL, 0, NULL, E));
        EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_worker_secede_task", "'results'", rask_worker_secede_task(w, 0, NULL, 5, &dt, E));
        EXPECT(dt == NULL);
    }
    rask_worker_free(NULL);

    // Clients.
    rask_client *client = NULL;
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_connect", "'address'", rask_client_connect(NULL, NULL, &client, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_connect", "'out'", rask_client_connect(addr, NULL, NULL, E));
    MUST(rask_client_connect(addr, NULL, &client, E));
    EXPECT_STR(rask_client_scheduler_address(NULL), "");
    EXPECT_STR(rask_client_dashboard_link(NULL), "");
    double since = 1;
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_report_start", "'client'", rask_client_report_start(NULL, &since, E));
    EXPECT(since == 0);
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_report_start", "'since'", rask_client_report_start(client, NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_performance_report", "'client'", rask_client_performance_report(NULL, 0, "r.html", E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_performance_report", "'path'", rask_client_performance_report(client, 0, NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_close", "'client'", rask_client_close(NULL, E));
    rask_client_free(NULL);

    rask_future *fut = NULL;
    rask_arg *args[1];
    args[0] = rask_arg_int(1);
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_submit", "'client'", rask_client_submit(NULL, "inc", args, 1, &fut, E));
    args[0] = rask_arg_int(1);
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_submit", "'func'", rask_client_submit(client, NULL, args, 1, &fut, E));
    args[0] = rask_arg_int(1);
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_submit", "'out'", rask_client_submit(client, "inc", args, 1, NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_submit", "'args'", rask_client_submit(client, "inc", NULL, 1, &fut, E));
    args[0] = NULL;
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_submit", "'args[0]'", rask_client_submit(client, "inc", args, 1, &fut, E));
    EXPECT(fut == NULL);
    args[0] = rask_arg_int(1);
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_submit_with", "'client'", rask_client_submit_with(NULL, "inc", args, 1, NULL, &fut, E));
    args[0] = rask_arg_int(1);
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_submit_with", "'func'", rask_client_submit_with(client, NULL, args, 1, NULL, &fut, E));
    args[0] = rask_arg_int(1);
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_submit_with", "'out'", rask_client_submit_with(client, "inc", args, 1, NULL, NULL, E));
    args[0] = NULL;
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_submit_with", "'args[0]'", rask_client_submit_with(client, "inc", args, 1, NULL, &fut, E));
    args[0] = rask_arg_int(1);
    EXPECT_OK(rask_client_submit_with(client, "inc", args, 1, NULL, &fut, E));  // NULL options

    rask_future *futs[2] = {NULL, NULL};
    rask_arg *margs[2];
    margs[0] = rask_arg_int(1), margs[1] = rask_arg_int(2);
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_map", "'client'", rask_client_map(NULL, "inc", margs, 2, 1, futs, E));
    margs[0] = rask_arg_int(1), margs[1] = rask_arg_int(2);
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_map", "'func'", rask_client_map(client, NULL, margs, 2, 1, futs, E));
    margs[0] = rask_arg_int(1), margs[1] = rask_arg_int(2);
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_map", "'futures'", rask_client_map(client, "inc", margs, 2, 1, NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_map", "'args'", rask_client_map(client, "inc", NULL, 2, 1, futs, E));
    margs[0] = rask_arg_int(1), margs[1] = NULL;
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_map", "'args[1]'", rask_client_map(client, "inc", margs, 2, 1, futs, E));
    EXPECT(futs[0] == NULL && futs[1] == NULL);

    rask_graph *g = rask_graph_new();
    MUST(rask_graph_add_value(g, "x", rask_value_int(41), E));
    const char *refs[1] = {"x"};
    MUST(rask_graph_add_task_refs(g, "y", "inc", refs, 1, E));
    const char *keys[2] = {"y", NULL};
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_compute", "'client'", rask_client_compute(NULL, g, keys, 1, futs, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_compute", "'graph'", rask_client_compute(client, NULL, keys, 1, futs, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_compute", "'keys'", rask_client_compute(client, g, NULL, 1, futs, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_compute", "'keys[1]'", rask_client_compute(client, g, keys, 2, futs, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_compute", "'futures'", rask_client_compute(client, g, keys, 1, NULL, E));
    rask_future *y = NULL;
    EXPECT_OK(rask_client_compute(client, g, keys, 1, &y, E));
    rask_graph_free(g);

    const rask_future *pair[2] = {fut, NULL};
    rask_value *vals[2] = {NULL, NULL};
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_gather", "'client'", rask_client_gather(NULL, pair, 1, -1, vals, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_gather", "'futures'", rask_client_gather(client, NULL, 1, -1, vals, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_gather", "'futures[1]'", rask_client_gather(client, pair, 2, -1, vals, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_gather", "'values'", rask_client_gather(client, pair, 1, -1, NULL, E));
    EXPECT_OK(rask_client_gather(client, pair, 1, -1, vals, E));
    int64_t v = 0;
    EXPECT(rask_value_get_int(vals[0], &v, NULL) == RASK_OK && v == 2);
    rask_value_free(vals[0]);

    // Batches of futures: a map's arguments in one msgpack buffer, the
    // values back in one buffer.
    const uint8_t mcalls[] = {0x92, 0x91, 0x01, 0x91, 0x02};  // [[1], [2]]
    rask_future_batch *batch = NULL;
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_map_msgpack", "'client'", rask_client_map_msgpack(NULL, "inc", mcalls, sizeof mcalls, &batch, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_map_msgpack", "'func'", rask_client_map_msgpack(client, NULL, mcalls, sizeof mcalls, &batch, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_map_msgpack", "'calls'", rask_client_map_msgpack(client, "inc", NULL, sizeof mcalls, &batch, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_map_msgpack", "'out'", rask_client_map_msgpack(client, "inc", mcalls, sizeof mcalls, NULL, E));
    const uint8_t junk[] = {0xc1};
    EXPECT_ERR(RASK_ERR_DECODE, "rask_client_map_msgpack", "calls", rask_client_map_msgpack(client, "inc", junk, sizeof junk, &batch, E));
    const uint8_t flat[] = {0x92, 0x01, 0x02};  // [1, 2]: not one array per call
    EXPECT_ERR(RASK_ERR_INVALID_ARG, "rask_client_map_msgpack", "calls[0]", rask_client_map_msgpack(client, "inc", flat, sizeof flat, &batch, E));
    EXPECT(batch == NULL);
    // The shared arguments are consumed on every path but a NULL array.
    const uint8_t one_call[] = {0x91, 0x90};  // [[]]: one call, no arguments of its own
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_map_msgpack_shared", "'shared'", rask_client_map_msgpack_shared(client, "inc", NULL, 1, one_call, sizeof one_call, &batch, E));
    rask_arg *sh[2] = {rask_arg_int(1), NULL};
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_map_msgpack_shared", "'shared[1]'", rask_client_map_msgpack_shared(client, "inc", sh, 2, one_call, sizeof one_call, &batch, E));
    sh[0] = rask_arg_int(1);
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_map_msgpack_shared", "'client'", rask_client_map_msgpack_shared(NULL, "inc", sh, 1, one_call, sizeof one_call, &batch, E));
    sh[0] = rask_arg_int(1);
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_map_msgpack_shared", "'func'", rask_client_map_msgpack_shared(client, NULL, sh, 1, one_call, sizeof one_call, &batch, E));
    sh[0] = rask_arg_int(1);
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_map_msgpack_shared", "'calls'", rask_client_map_msgpack_shared(client, "inc", sh, 1, NULL, 2, &batch, E));
    sh[0] = rask_arg_int(1);
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_map_msgpack_shared", "'out'", rask_client_map_msgpack_shared(client, "inc", sh, 1, one_call, sizeof one_call, NULL, E));
    sh[0] = rask_arg_int(1);
    EXPECT_ERR(RASK_ERR_DECODE, "rask_client_map_msgpack_shared", "calls", rask_client_map_msgpack_shared(client, "inc", sh, 1, junk, sizeof junk, &batch, E));
    EXPECT(batch == NULL);
    // add(shared 10, own 1), add(10, 2): [[1], [2]]
    sh[0] = rask_arg_int(10);
    EXPECT_OK(rask_client_map_msgpack_shared(client, "add", sh, 1, mcalls, sizeof mcalls, &batch, E));
    {
        uint8_t *sbuf = NULL;
        size_t slen = 0;
        EXPECT_OK(rask_future_batch_gather(batch, NULL, rask_future_batch_len(batch), -1, &sbuf, &slen, E));
        const uint8_t want[] = {0x92, 0x0b, 0x0c};  // [11, 12]
        EXPECT(slen == sizeof want && memcmp(sbuf, want, slen) == 0);
        rask_buffer_free(sbuf, slen);
        rask_future_batch_free(batch);
        batch = NULL;
    }
    EXPECT_OK(rask_client_map_msgpack(client, "inc", mcalls, sizeof mcalls, &batch, E));
    EXPECT(rask_future_batch_len(batch) == 2);
    EXPECT(rask_future_batch_len(NULL) == 0);
    uint8_t *buf = NULL;
    size_t blen = 0;
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_future_batch_keys", "'batch'", rask_future_batch_keys(NULL, &buf, &blen, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_future_batch_keys", "'data'", rask_future_batch_keys(batch, NULL, &blen, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_future_batch_keys", "'len'", rask_future_batch_keys(batch, &buf, NULL, E));
    EXPECT_OK(rask_future_batch_keys(batch, &buf, &blen, E));
    rask_value *bv = NULL;
    EXPECT_OK(rask_value_from_msgpack(buf, blen, &bv, E));
    rask_buffer_free(buf, blen);
    size_t nkeys = 0;
    EXPECT(rask_value_len(bv, &nkeys, NULL) == RASK_OK && nkeys == 2);
    rask_value_free(bv);
    size_t idx[2] = {1, 0};
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_future_batch_gather", "'batch'", rask_future_batch_gather(NULL, idx, 2, -1, &buf, &blen, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_future_batch_gather", "'data'", rask_future_batch_gather(batch, idx, 2, -1, NULL, &blen, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_future_batch_gather", "'len'", rask_future_batch_gather(batch, idx, 2, -1, &buf, NULL, E));
    EXPECT_ERR(RASK_ERR_INVALID_ARG, "rask_future_batch_gather", "indices", rask_future_batch_gather(batch, NULL, 1, -1, &buf, &blen, E));
    EXPECT_OK(rask_future_batch_gather(batch, idx, 2, -1, &buf, &blen, E));  // in the order asked: [3, 2]
    EXPECT_OK(rask_value_from_msgpack(buf, blen, &bv, E));
    rask_buffer_free(buf, blen);
    const rask_value *elem = NULL;
    int64_t got = 0;
    EXPECT(rask_value_array_get(bv, 0, &elem, NULL) == RASK_OK && rask_value_get_int(elem, &got, NULL) == RASK_OK && got == 3);
    EXPECT(rask_value_array_get(bv, 1, &elem, NULL) == RASK_OK && rask_value_get_int(elem, &got, NULL) == RASK_OK && got == 2);
    rask_value_free(bv);
    EXPECT_OK(rask_future_batch_gather(batch, NULL, 2, 0, &buf, &blen, E));  // NULL indices: every entry
    rask_buffer_free(buf, blen);
    rask_future_state states[2];
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_future_batch_status", "'batch'", rask_future_batch_status(NULL, NULL, 2, states, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_future_batch_status", "'states'", rask_future_batch_status(batch, NULL, 2, NULL, E));
    EXPECT_OK(rask_future_batch_status(batch, NULL, 2, states, E));
    EXPECT(states[0] == RASK_FUTURE_FINISHED && states[1] == RASK_FUTURE_FINISHED);
    rask_future *bf = NULL;
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_future_batch_get", "'batch'", rask_future_batch_get(NULL, 0, &bf, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_future_batch_get", "'out'", rask_future_batch_get(batch, 0, NULL, E));
    EXPECT_ERR(RASK_ERR_INVALID_ARG, "rask_future_batch_get", "out of range", rask_future_batch_get(batch, 2, &bf, E));
    EXPECT_OK(rask_future_batch_get(batch, 0, &bf, E));
    EXPECT(result_of(bf) == 2);
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_future_batch_release", "'batch'", rask_future_batch_release(NULL, idx, 1, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_future_batch_release", "'indices'", rask_future_batch_release(batch, NULL, 1, E));
    size_t far[1] = {2};
    EXPECT_ERR(RASK_ERR_INVALID_ARG, "rask_future_batch_release", "out of range", rask_future_batch_release(batch, far, 1, E));
    EXPECT_OK(rask_future_batch_release(batch, NULL, 0, E));  // nothing to release
    rask_future_batch_free(NULL);
    rask_future_batch_free(batch);
    EXPECT(result_of(bf) == 2);  // a future made from a batch outlives it
    const rask_future *bfs[2] = {bf, NULL};
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_gather_msgpack", "'client'", rask_client_gather_msgpack(NULL, bfs, 1, -1, &buf, &blen, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_gather_msgpack", "'futures'", rask_client_gather_msgpack(client, NULL, 1, -1, &buf, &blen, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_gather_msgpack", "'futures[1]'", rask_client_gather_msgpack(client, bfs, 2, -1, &buf, &blen, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_gather_msgpack", "'data'", rask_client_gather_msgpack(client, bfs, 1, -1, NULL, &blen, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_gather_msgpack", "'len'", rask_client_gather_msgpack(client, bfs, 1, -1, &buf, NULL, E));
    EXPECT_OK(rask_client_gather_msgpack(client, bfs, 1, -1, &buf, &blen, E));
    EXPECT(blen == 2 && buf[0] == 0x91 && buf[1] == 0x02);  // [2]
    rask_buffer_free(buf, blen);
    rask_future_free(bf);

    rask_value *sv[2];
    sv[0] = rask_value_int(7), sv[1] = rask_value_int(8);
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_scatter", "'client'", rask_client_scatter(NULL, sv, 2, false, futs, E));
    sv[0] = rask_value_int(7), sv[1] = rask_value_int(8);
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_scatter", "'futures'", rask_client_scatter(client, sv, 2, false, NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_scatter", "'values'", rask_client_scatter(client, NULL, 2, false, futs, E));
    sv[0] = rask_value_int(7), sv[1] = NULL;
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_scatter", "'values[1]'", rask_client_scatter(client, sv, 2, false, futs, E));

    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_cancel", "'client'", rask_client_cancel(NULL, pair, 1, E));
    int cfd = 0;
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_fd", "'client'", rask_client_fd(NULL, &cfd, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_fd", "'out'", rask_client_fd(client, NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_fd_clear", "'client'", rask_client_fd_clear(NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_cancel", "'futures'", rask_client_cancel(client, NULL, 1, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_cancel", "'futures[1]'", rask_client_cancel(client, pair, 2, E));
    EXPECT_OK(rask_client_cancel(client, NULL, 0, E));  // nothing to cancel

    bool done[2];
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_wait", "'client'", rask_client_wait(NULL, pair, 1, RASK_WAIT_ALL_COMPLETED, -1, done, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_wait", "'futures'", rask_client_wait(client, NULL, 1, RASK_WAIT_ALL_COMPLETED, -1, done, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_wait", "'futures[1]'", rask_client_wait(client, pair, 2, RASK_WAIT_ALL_COMPLETED, -1, done, E));
    EXPECT_OK(rask_client_wait(client, pair, 1, RASK_WAIT_ALL_COMPLETED, -1, NULL, E));  // done may be NULL

    rask_progress_counts pc;
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_progress", "'client'", rask_client_progress(NULL, pair, 1, progress_seen, NULL, -1, &pc, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_progress", "'futures'", rask_client_progress(client, NULL, 1, progress_seen, NULL, -1, &pc, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_progress", "'futures[1]'", rask_client_progress(client, pair, 2, progress_seen, NULL, -1, &pc, E));
    // Done already: one call of the callback, with nothing pending; the
    // callback and the counts may be NULL.
    size_t calls = 0;
    EXPECT_OK(rask_client_progress(client, pair, 1, progress_seen, &calls, -1, &pc, E));
    EXPECT(calls == 1 && pc.total == 1 && pc.pending == 0 && pc.finished + pc.erred + pc.cancelled == 1);
    EXPECT_OK(rask_client_progress(client, pair, 1, NULL, NULL, 0, NULL, E));
    EXPECT_OK(rask_client_progress(client, NULL, 0, NULL, NULL, 0, &pc, E));
    EXPECT(pc.total == 0);

    size_t count = 0;
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_wait_for_workers", "'client'", rask_client_wait_for_workers(NULL, 1, -1, &count, E));
    EXPECT_OK(rask_client_wait_for_workers(client, 1, -1, NULL, E));  // count may be NULL
    rask_scheduler_info info;
    info.tasks = 99;
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_scheduler_info", "'client'", rask_client_scheduler_info(NULL, &info, E));
    EXPECT(info.tasks == 0);  // zeroed first
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_scheduler_info", "'info'", rask_client_scheduler_info(client, NULL, E));
    EXPECT_OK(rask_client_scheduler_info(client, &info, E));
    EXPECT(info.workers >= 1 && info.clients >= 1);
    const char *names[2] = {"no-such-worker", NULL};
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_retire_workers", "'client'", rask_client_retire_workers(NULL, names, 1, -1, NULL, NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_retire_workers", "'workers'", rask_client_retire_workers(client, NULL, 1, -1, NULL, NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_retire_workers", "'workers[1]'", rask_client_retire_workers(client, names, 2, -1, NULL, NULL, E));
    // moved and lost may be NULL; an unknown worker is refused, nothing retired.
    EXPECT_ERR(RASK_ERR_PROTOCOL, "unknown-worker", NULL, rask_client_retire_workers(client, names, 1, -1, NULL, NULL, E));
    // replicate / rebalance: NULL client, NULL array, NULL element; n = 0 refused.
    const rask_future *nofs[1] = {NULL};
    size_t copied = 9, short_keys = 9, nmoved = 9;
    uint64_t nbytes = 9;
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_replicate", "'client'", rask_client_replicate(NULL, nofs, 0, 2, -1, &copied, &short_keys, E));
    EXPECT(copied == 0 && short_keys == 0);  // zeroed first
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_replicate", "'futures'", rask_client_replicate(client, NULL, 1, 2, -1, NULL, NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_replicate", "'futures[0]'", rask_client_replicate(client, nofs, 1, 2, -1, NULL, NULL, E));
    EXPECT_ERR(RASK_ERR_INVALID_ARG, "rask_client_replicate", "at least 1", rask_client_replicate(client, nofs, 0, 0, -1, NULL, NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_rebalance", "'client'", rask_client_rebalance(NULL, NULL, 0, -1, &nmoved, &nbytes, E));
    EXPECT(nmoved == 0 && nbytes == 0);  // zeroed first
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_rebalance", "'futures'", rask_client_rebalance(client, NULL, 1, -1, NULL, NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_rebalance", "'futures[0]'", rask_client_rebalance(client, nofs, 1, -1, NULL, NULL, E));
    // No futures: every result in memory (NULL counts are fine).
    EXPECT_OK(rask_client_rebalance(client, NULL, 0, 30000, NULL, NULL, E));

    // Futures.
    EXPECT(rask_future_key(NULL) == NULL);
    EXPECT(rask_future_status(NULL) == RASK_FUTURE_ERROR);
    rask_value *out = NULL;
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_future_result", "'future'", rask_future_result(NULL, -1, &out, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_future_result", "'out'", rask_future_result(y, -1, NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_future_warning", "'future'", rask_future_warning(NULL, &out, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_future_warning", "'out'", rask_future_warning(y, NULL, E));
    EXPECT(rask_future_clone(NULL) == NULL);
    EXPECT(rask_arg_future(NULL) == NULL);
    rask_future_free(NULL);

    // as_completed.
    rask_as_completed *ac = NULL;
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_as_completed_new", "'client'", rask_as_completed_new(NULL, pair, 1, &ac, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_as_completed_new", "'out'", rask_as_completed_new(client, pair, 1, NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_as_completed_new", "'futures'", rask_as_completed_new(client, NULL, 1, &ac, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_as_completed_new", "'futures[1]'", rask_as_completed_new(client, pair, 2, &ac, E));
    EXPECT_OK(rask_as_completed_new(client, NULL, 0, &ac, E));  // empty
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_as_completed_add", "'ac'", rask_as_completed_add(NULL, fut, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_as_completed_add", "'future'", rask_as_completed_add(ac, NULL, E));
    rask_future *next = NULL;
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_as_completed_next", "'ac'", rask_as_completed_next(NULL, 0, &next, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_as_completed_next", "'out'", rask_as_completed_next(ac, 0, NULL, E));
    EXPECT_STATUS(RASK_DONE, rask_as_completed_next(ac, 0, &next, E));  // nothing was added
    EXPECT(rask_as_completed_count(NULL) == 0);
    rask_as_completed_free(NULL);
    rask_as_completed_free(ac);

    // Clusters.
    rask_cluster *cl = NULL;
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_cluster_start", "'out'", rask_cluster_start(NULL, NULL, NULL, E));
    rask_cluster_options copts = {0};
    copts.workers = 1;
    EXPECT_OK(rask_cluster_start(&copts, NULL, &cl, E));  // registry NULL: builtins
    EXPECT_STR(rask_cluster_address(NULL), "");
    EXPECT_STR(rask_cluster_dashboard_link(NULL), "");
    rask_client *c2 = NULL;
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_cluster_client", "'cluster'", rask_cluster_client(NULL, &c2, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_cluster_client", "'out'", rask_cluster_client(cl, NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_cluster_stop", "'cluster'", rask_cluster_stop(NULL, E));
    rask_cluster_free(NULL);
    rask_cluster_free(cl);

    rask_future_free(fut);
    rask_future_free(y);
    rask_client_free(client);
    rask_worker_free(w);
    rask_scheduler_free(sched);
}

// Coordination objects: NULL for each pointer, and the pairs value/future
// (exactly one) of items; then a round trip of each through a real cluster.
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
    uint64_t n = 9, lease = 9;
    bool set = true;

    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_variable_set", "'client'", rask_client_variable_set(NULL, "x", one, NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_variable_set", "'name'", rask_client_variable_set(c, NULL, one, NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_variable_set", "'value' and 'future'", rask_client_variable_set(c, "x", NULL, NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_variable_get", "'out_value'", rask_client_variable_get(c, "x", 0, NULL, &f, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_variable_get", "'out_future'", rask_client_variable_get(c, "x", 0, &v, NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_variable_get", "'client'", rask_client_variable_get(NULL, "x", 0, &v, &f, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_variable_get", "'name'", rask_client_variable_get(c, NULL, 0, &v, &f, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_variable_delete", "'client'", rask_client_variable_delete(NULL, "x", E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_variable_delete", "'name'", rask_client_variable_delete(c, NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_queue_create", "'client'", rask_client_queue_create(NULL, "q", 0, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_queue_create", "'name'", rask_client_queue_create(c, NULL, 0, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_queue_put", "'client'", rask_client_queue_put(NULL, "q", one, NULL, -1, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_queue_put", "'name'", rask_client_queue_put(c, NULL, one, NULL, -1, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_queue_put", "'value' and 'future'", rask_client_queue_put(c, "q", NULL, NULL, -1, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_queue_get", "'client'", rask_client_queue_get(NULL, "q", 0, &v, &f, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_queue_get", "'name'", rask_client_queue_get(c, NULL, 0, &v, &f, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_queue_get", "'out_value'", rask_client_queue_get(c, "q", 0, NULL, &f, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_queue_size", "'client'", rask_client_queue_size(NULL, "q", &n, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_queue_size", "'name'", rask_client_queue_size(c, NULL, &n, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_queue_size", "'out'", rask_client_queue_size(c, "q", NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_lease_acquire", "'client'", rask_client_lease_acquire(NULL, "L", 1, 0, &lease, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_lease_acquire", "'name'", rask_client_lease_acquire(c, NULL, 1, 0, &lease, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_lease_acquire", "'out_lease'", rask_client_lease_acquire(c, "L", 1, 0, NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_lease_release", "'client'", rask_client_lease_release(NULL, "L", 1, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_lease_release", "'name'", rask_client_lease_release(c, NULL, 1, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_event_set", "'client'", rask_client_event_set(NULL, "e", E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_event_set", "'name'", rask_client_event_set(c, NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_event_clear", "'client'", rask_client_event_clear(NULL, "e", E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_event_clear", "'name'", rask_client_event_clear(c, NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_event_wait", "'client'", rask_client_event_wait(NULL, "e", 0, &set, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_event_wait", "'name'", rask_client_event_wait(c, NULL, 0, &set, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_event_wait", "'out_set'", rask_client_event_wait(c, "e", 0, NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_publish_dataset", "'client'", rask_client_publish_dataset(NULL, "d", one, NULL, false, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_publish_dataset", "'name'", rask_client_publish_dataset(c, NULL, one, NULL, false, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_publish_dataset", "'value' and 'future'", rask_client_publish_dataset(c, "d", NULL, NULL, false, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_get_dataset", "'client'", rask_client_get_dataset(NULL, "d", &v, &f, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_get_dataset", "'name'", rask_client_get_dataset(c, NULL, &v, &f, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_get_dataset", "'out_future'", rask_client_get_dataset(c, "d", &v, NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_unpublish_dataset", "'client'", rask_client_unpublish_dataset(NULL, "d", E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_unpublish_dataset", "'name'", rask_client_unpublish_dataset(c, NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_list_datasets", "'client'", rask_client_list_datasets(NULL, &v, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_list_datasets", "'out'", rask_client_list_datasets(c, NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_fire_and_forget", "'client'", rask_client_fire_and_forget(NULL, NULL, 0, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_fire_and_forget", "'futures'", rask_client_fire_and_forget(c, NULL, 1, E));
    EXPECT_OK(rask_client_fire_and_forget(c, NULL, 0, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_publish", "'client'", rask_client_publish(NULL, "t", one, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_publish", "'topic'", rask_client_publish(c, NULL, one, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_publish", "'value'", rask_client_publish(c, "t", NULL, E));
    rask_subscription *sub = NULL;
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_subscribe", "'client'", rask_client_subscribe(NULL, "t", &sub, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_subscribe", "'topic'", rask_client_subscribe(c, NULL, &sub, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_client_subscribe", "'out'", rask_client_subscribe(c, "t", NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_subscription_get", "'sub'", rask_subscription_get(NULL, 0, &v, E));
    rask_subscription_free(NULL);

    // The real thing: a value and a future through each kind of object.
    rask_arg *args[1] = {rask_arg_int(41)};
    MUST(rask_client_submit(c, "inc", args, 1, &f, E));
    EXPECT_OK(rask_client_queue_create(c, "q", 1, E));
    EXPECT_OK(rask_client_queue_put(c, "q", NULL, f, -1, E));
    EXPECT_ERR(RASK_TIMEOUT, "queue 'q' is full (maxsize 1)", "0.02 s", rask_client_queue_put(c, "q", one, NULL, 20, E));
    EXPECT_OK(rask_client_queue_size(c, "q", &n, E));
    EXPECT(n == 1);
    rask_value *got_v = NULL;
    rask_future *got_f = NULL;
    EXPECT_OK(rask_client_queue_get(c, "q", -1, &got_v, &got_f, E));
    EXPECT(got_v == NULL && got_f != NULL && strcmp(rask_future_key(got_f), rask_future_key(f)) == 0);
    rask_value *r = NULL;
    int64_t x = 0;
    EXPECT_OK(rask_future_result(got_f, -1, &r, E));
    EXPECT(rask_value_get_int(r, &x, NULL) == RASK_OK && x == 42);
    rask_value_free(r);
    rask_future_free(got_f);
    got_f = NULL;
    EXPECT_ERR(RASK_TIMEOUT, "queue 'q': nothing to get", "0.01 s", rask_client_queue_get(c, "q", 10, &got_v, &got_f, E));
    EXPECT(got_v == NULL && got_f == NULL);
    EXPECT_ERR(RASK_TIMEOUT, "variable 'x'", "0 s", rask_client_variable_get(c, "x", 0, &got_v, &got_f, E));
    EXPECT_OK(rask_client_variable_set(c, "x", one, NULL, E));
    EXPECT_OK(rask_client_variable_get(c, "x", -1, &got_v, &got_f, E));
    EXPECT(got_f == NULL && rask_value_get_int(got_v, &x, NULL) == RASK_OK && x == 1);
    rask_value_free(got_v);
    EXPECT_OK(rask_client_variable_delete(c, "x", E));
    EXPECT_OK(rask_client_lease_acquire(c, "L", 1, -1, &lease, E));
    uint64_t lease2 = 7;
    EXPECT_STATUS(RASK_TIMEOUT, rask_client_lease_acquire(c, "L", 1, 0, &lease2, E));
    EXPECT(lease2 == 0);
    EXPECT_OK(rask_client_lease_release(c, "L", lease, E));
    EXPECT_ERR(RASK_ERR_PROTOCOL, "not held", NULL, rask_client_lease_release(c, "L", lease, E));
    EXPECT_OK(rask_client_event_wait(c, "e", 0, &set, E));
    EXPECT(!set);
    EXPECT_OK(rask_client_event_set(c, "e", E));
    EXPECT_OK(rask_client_event_wait(c, "e", -1, &set, E));
    EXPECT(set);
    EXPECT_OK(rask_client_event_clear(c, "e", E));
    EXPECT_OK(rask_client_publish_dataset(c, "d", NULL, f, false, E));
    EXPECT_ERR(RASK_ERR_PROTOCOL, "already published", NULL, rask_client_publish_dataset(c, "d", one, NULL, false, E));
    rask_value *names = NULL;
    EXPECT_OK(rask_client_list_datasets(c, &names, E));
    size_t nnames = 0;
    EXPECT(rask_value_len(names, &nnames, NULL) == RASK_OK && nnames == 1);
    rask_value_free(names);
    EXPECT_OK(rask_client_get_dataset(c, "d", &got_v, &got_f, E));
    EXPECT(got_v == NULL && got_f != NULL);
    rask_future_free(got_f);
    EXPECT_OK(rask_client_unpublish_dataset(c, "d", E));
    EXPECT_ERR(RASK_ERR_PROTOCOL, "no dataset named 'd'", NULL, rask_client_get_dataset(c, "d", &got_v, &got_f, E));
    const rask_future *fs[1] = {f};
    EXPECT_OK(rask_client_fire_and_forget(c, fs, 1, E));
    EXPECT_OK(rask_client_subscribe(c, "t", &sub, E));
    EXPECT_OK(rask_client_publish(c, "t", one, E));
    EXPECT_OK(rask_subscription_get(sub, -1, &got_v, E));
    EXPECT(rask_value_get_int(got_v, &x, NULL) == RASK_OK && x == 1);
    rask_value_free(got_v);
    EXPECT_ERR(RASK_TIMEOUT, "topic 't'", NULL, rask_subscription_get(sub, 0, &got_v, E));
    rask_subscription_free(sub);

    rask_future_free(f);
    rask_value_free(one);
    rask_client_free(c);
    rask_cluster_free(cl);
}

// rask_signal_watch: NULL fd, a signal it refuses, and a watched signal that
// arrives as a readable byte (instead of ending the process).
static void signals(void) {
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_signal_watch", "'fd' " NUL_MSG, rask_signal_watch(SIGUSR1, NULL, E));
    int fd = 0;
    EXPECT_ERR(RASK_ERR_INVALID_ARG, "signal 9 cannot be watched", "SIGTERM", rask_signal_watch(SIGKILL, &fd, E));
    EXPECT(fd == -1);
    EXPECT_ERR(RASK_ERR_INVALID_ARG, "cannot be watched", NULL, rask_signal_watch(0, &fd, E));
    EXPECT_OK(rask_signal_watch(SIGUSR1, &fd, E));
    EXPECT(fd >= 0);
    int again = -1;
    EXPECT_OK(rask_signal_watch(SIGUSR1, &again, E));
    EXPECT(again == fd);
    char byte = 0;
    EXPECT(read(fd, &byte, 1) == -1);  // nothing yet (non-blocking)
    EXPECT(raise(SIGUSR1) == 0);        // would end the process unwatched
    EXPECT(read(fd, &byte, 1) == 1);
}

static rask_status no_serialize(void *u, uint64_t id, rask_value **r, rask_error **e) {
    (void)u, (void)id, (void)r, (void)e;
    return RASK_ERR_INVALID_ARG;
}

static void host_values(void) {
    rask_host *h = NULL;
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_host_new", "'runtime'", rask_host_new(NULL, no_serialize, NULL, NULL, NULL, &h, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_host_new", "'out'", rask_host_new("p-1", NULL, NULL, NULL, NULL, NULL, E));
    MUST(rask_host_new("p-1", no_serialize, NULL, NULL, NULL, &h, E));
    int fd = 0;
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_host_fd", "'host'", rask_host_fd(NULL, &fd, E));
    EXPECT(fd == -1);
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_host_fd", "'out'", rask_host_fd(h, NULL, E));
    uint64_t ids[2];
    size_t n = 5;
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_host_take_released", "'host'", rask_host_take_released(NULL, ids, 2, &n, E));
    EXPECT(n == 0);
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_host_take_released", "'ids'", rask_host_take_released(h, NULL, 2, &n, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_host_take_released", "'n'", rask_host_take_released(h, ids, 2, NULL, E));
    EXPECT_OK(rask_host_take_released(h, NULL, 0, &n, E));
    rask_value *v = NULL;
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_host", "'host'", rask_value_host(NULL, 1, 0, rask_value_int(1), &v, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_host", "'out'", rask_value_host(h, 1, 0, NULL, NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_host_packed", "'runtime'", rask_value_host_packed(NULL, (const uint8_t *)"x", 1, &v, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_host_packed", "'data'", rask_value_host_packed("p-1", NULL, 1, &v, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_host_packed", "'out'", rask_value_host_packed("p-1", (const uint8_t *)"x", 1, NULL, E));
    MUST(rask_value_host(h, 1, 0, NULL, &v, E));
    uint64_t id = 0;
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_host_id", "'v'", rask_value_host_id(NULL, h, &id, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_host_id", "'host'", rask_value_host_id(v, NULL, &id, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_host_id", "'id'", rask_value_host_id(v, h, NULL, E));
    const char *rt;
    const uint8_t *d;
    size_t rl, dl;
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_host_packed_info", "'v'", rask_value_host_packed_info(NULL, &rt, &rl, &d, &dl, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_host_packed_info", "'runtime'", rask_value_host_packed_info(v, NULL, &rl, &d, &dl, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_host_packed_info", "'runtime_len'", rask_value_host_packed_info(v, &rt, NULL, &d, &dl, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_host_packed_info", "'data'", rask_value_host_packed_info(v, &rt, &rl, NULL, &dl, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_host_packed_info", "'len'", rask_value_host_packed_info(v, &rt, &rl, &d, NULL, E));
    uint8_t *buf = NULL;
    size_t len = 0;
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_to_msgpack_for", "'v'", rask_value_to_msgpack_for(NULL, h, &buf, &len, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_to_msgpack_for", "'host'", rask_value_to_msgpack_for(v, NULL, &buf, &len, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_to_msgpack_for", "'data'", rask_value_to_msgpack_for(v, h, NULL, &len, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_to_msgpack_for", "'len'", rask_value_to_msgpack_for(v, h, &buf, NULL, E));
    EXPECT(buf == NULL);
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_computation_use_host", "'comp'", rask_computation_use_host(NULL, h, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_worker_use_host", "'worker'", rask_worker_use_host(NULL, h, E));
    rask_value_free(v);
    rask_host_free(h);
    rask_host_free(NULL);
}

// Lent buffers: the release runs exactly once even when the call fails on
// a NULL argument (the buffer was handed over at the call).
static int lent_released = 0;
static void count_release(void *user_data) {
    (void)user_data;
    lent_released++;
}

static void lent_buffers(void) {
    static const double data[2] = {1, 2};
    size_t shape[1] = {2};
    rask_value *v = NULL;
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_bytes_wrap", "'data'", rask_value_bytes_wrap(NULL, 3, count_release, NULL, &v, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_bytes_wrap", "'out'", rask_value_bytes_wrap((const uint8_t *)"ab", 2, count_release, NULL, NULL, E));
    EXPECT(lent_released == 2);
    EXPECT_OK(rask_value_bytes_wrap(NULL, 0, count_release, NULL, &v, E));  // empty: NULL allowed
    EXPECT(rask_value_kind(v) == RASK_KIND_BIN && lent_released == 2);
    rask_value_free(v);
    EXPECT(lent_released == 3);
    EXPECT_OK(rask_value_bytes_wrap((const uint8_t *)"ab", 2, NULL, NULL, &v, E));  // NULL release: static data
    rask_value_free(v);
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_tensor_wrap", "'shape'", rask_value_tensor_wrap(RASK_DTYPE_FLOAT64, NULL, 1, data, sizeof data, count_release, NULL, &v, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_tensor_wrap", "'data'", rask_value_tensor_wrap(RASK_DTYPE_FLOAT64, shape, 1, NULL, sizeof data, count_release, NULL, &v, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_tensor_wrap", "'out'", rask_value_tensor_wrap(RASK_DTYPE_FLOAT64, shape, 1, data, sizeof data, count_release, NULL, NULL, E));
    EXPECT(lent_released == 6);
    EXPECT_OK(rask_value_tensor_wrap(RASK_DTYPE_FLOAT64, NULL, 0, data, sizeof(double), count_release, NULL, &v, E));
    rask_value_free(v);
    EXPECT(lent_released == 7);

    rask_host *h = NULL;  // queue mode: released ids wait in rask_host_take_released
    MUST(rask_host_new("p-1", NULL, NULL, NULL, NULL, &h, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_bytes_wrap_host", "'host'", rask_value_bytes_wrap_host(NULL, 1, (const uint8_t *)"ab", 2, &v, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_bytes_wrap_host", "'data'", rask_value_bytes_wrap_host(h, 2, NULL, 2, &v, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_bytes_wrap_host", "'out'", rask_value_bytes_wrap_host(h, 3, (const uint8_t *)"ab", 2, NULL, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_tensor_wrap_host", "'host'", rask_value_tensor_wrap_host(NULL, 4, RASK_DTYPE_FLOAT64, shape, 1, data, sizeof data, &v, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_tensor_wrap_host", "'shape'", rask_value_tensor_wrap_host(h, 5, RASK_DTYPE_FLOAT64, NULL, 1, data, sizeof data, &v, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_tensor_wrap_host", "'data'", rask_value_tensor_wrap_host(h, 6, RASK_DTYPE_FLOAT64, shape, 1, NULL, sizeof data, &v, E));
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_value_tensor_wrap_host", "'out'", rask_value_tensor_wrap_host(h, 7, RASK_DTYPE_FLOAT64, shape, 1, data, sizeof data, NULL, E));
    // Every id whose host was given is released once (1 and 4 had none).
    uint64_t ids[8];
    size_t n = 0;
    MUST(rask_host_take_released(h, ids, 8, &n, E));
    EXPECT(n == 5 && ids[0] == 2 && ids[1] == 3 && ids[2] == 5 && ids[3] == 6 && ids[4] == 7);
    rask_host_free(h);
}

int main(void) {
    errors_and_versions();
    host_values();
    lent_buffers();
    values();
    args_and_graphs();
    distributed();
    coordination();
    signals();
    return check_summary("null_args");
}

// zero_copy.c: buffers a host lends rask without a copy
// (rask_value_bytes_wrap, rask_value_tensor_wrap and their _host forms):
// the value reads the host's very memory, through clones and a local
// computation; the release runs exactly once, only when the last reference
// is gone (also on failure, and on rask's threads after a scatter); a host
// without a release callback hears of it through its queue and fd.
#define _POSIX_C_SOURCE 200809L
#include "check.h"

#include <poll.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

static atomic_int released[8];

static void release(void *user_data) {
    atomic_fetch_add(&released[(intptr_t)user_data], 1);
}

static bool readable(int fd) {
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, 0) == 1;
}

// Deadline poll (no sleep): true once released[i] reached want.
static bool released_within(int i, int want, int seconds) {
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    do {
        if (atomic_load(&released[i]) >= want) return true;
        sched_yield();
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while (now.tv_sec - start.tv_sec < seconds);
    return atomic_load(&released[i]) >= want;
}

static double matrix[2][3] = {{1, 2, 3}, {4, 5, 6}};

static void the_same_memory_until_the_last_clone(void) {
    size_t shape[2] = {2, 3};
    rask_value *t = NULL;
    MUST(rask_value_tensor_wrap(RASK_DTYPE_FLOAT64, shape, 2, matrix, sizeof matrix, release,
                                (void *)1, &t, E));
    const void *data = NULL;
    size_t nbytes = 0, ndim = 0;
    MUST(rask_value_tensor_info(t, NULL, &ndim, NULL, &data, &nbytes, E));
    EXPECT(data == (const void *)matrix && nbytes == sizeof matrix && ndim == 2);

    rask_value *c = rask_value_clone(t);
    rask_value_free(t);
    EXPECT(atomic_load(&released[1]) == 0);  // the clone still reads it
    MUST(rask_value_tensor_info(c, NULL, NULL, NULL, &data, NULL, E));
    EXPECT(data == (const void *)matrix);

    // Through a computation: identity hands back the very buffer.
    rask_graph *g = rask_graph_new();
    rask_arg *args[1] = {rask_arg_value(c)};  // consumes c
    MUST(rask_graph_add_task(g, "x", "identity", args, 1, E));
    const char *keys[1] = {"x"};
    rask_value *results[1] = {NULL};
    MUST(rask_compute(g, keys, 1, NULL, NULL, results, NULL, E));
    MUST(rask_value_tensor_info(results[0], NULL, NULL, NULL, &data, NULL, E));
    EXPECT(data == (const void *)matrix);
    rask_graph_free(g);
    EXPECT(atomic_load(&released[1]) == 0);  // the result holds it
    rask_value_free(results[0]);
    EXPECT(atomic_load(&released[1]) == 1);

    // Bytes: the same.
    static const char text[] = "lent, not copied";
    rask_value *b = NULL;
    MUST(rask_value_bytes_wrap((const uint8_t *)text, sizeof text - 1, release, (void *)2, &b, E));
    const uint8_t *bp = NULL;
    size_t blen = 0;
    MUST(rask_value_get_bytes(b, &bp, &blen, E));
    EXPECT(bp == (const uint8_t *)text && blen == sizeof text - 1);
    // Encoding reads it (and copies into the encoding, not out of the value).
    uint8_t *buf = NULL;
    size_t len = 0;
    MUST(rask_value_to_msgpack(b, &buf, &len, E));
    EXPECT(len == 2 + sizeof text - 1 && memcmp(buf + 2, text, sizeof text - 1) == 0);
    rask_buffer_free(buf, len);
    rask_value_free(b);
    EXPECT(atomic_load(&released[2]) == 1);
}

static void refused_buffers_are_released_once(void) {
    static uint64_t words[4];
    size_t shape[1] = {3};
    rask_value *t = NULL;
    // Not aligned for float64: refused, never copied.
    EXPECT_ERR(RASK_ERR_INVALID_ARG, "rask_value_tensor_wrap", "aligned",
               rask_value_tensor_wrap(RASK_DTYPE_FLOAT64, shape, 1, (const uint8_t *)words + 4, 24,
                                      release, (void *)3, &t, E));
    EXPECT(t == NULL && atomic_load(&released[3]) == 1);
    // The shape needs 24 bytes, 16 given.
    EXPECT_ERR(RASK_ERR_INVALID_ARG, "rask_value_tensor_wrap", "24",
               rask_value_tensor_wrap(RASK_DTYPE_FLOAT64, shape, 1, words, 16, release, (void *)3, &t, E));
    EXPECT_ERR(RASK_ERR_INVALID_ARG, "rask_value_tensor_wrap", "rask_dtype",
               rask_value_tensor_wrap(99, shape, 1, words, 24, release, (void *)3, &t, E));
    EXPECT(t == NULL && atomic_load(&released[3]) == 3);
    // Bytes need no alignment; a uint8 tensor neither.
    MUST(rask_value_tensor_wrap(RASK_DTYPE_UINT8, shape, 1, (const uint8_t *)words + 1, 3, release,
                                (void *)3, &t, E));
    rask_value_free(t);
    EXPECT(atomic_load(&released[3]) == 4);
}

static void scattered_then_released_on_a_rask_thread(void) {
    enum { N = 1 << 20 };  // 8 MiB: a frame of its own
    double *big = malloc(N * sizeof(double));
    for (size_t i = 0; i < N; i++) big[i] = (double)i;
    size_t shape[1] = {N};
    rask_value *t = NULL;
    MUST(rask_value_tensor_wrap(RASK_DTYPE_FLOAT64, shape, 1, big, N * sizeof(double), release,
                                (void *)4, &t, E));
    rask_cluster_options co = {0};
    co.workers = 1;
    co.threads_per_worker = 1;
    rask_cluster *cluster = NULL;
    MUST(rask_cluster_start(&co, NULL, &cluster, E));
    rask_client *client = NULL;
    MUST(rask_cluster_client(cluster, &client, E));
    rask_future *f = NULL;
    MUST(rask_client_scatter(client, &t, 1, false, &f, E));  // consumes t
    rask_value *back[1] = {NULL};
    MUST(rask_client_gather(client, (const rask_future *const *)&f, 1, -1, back, E));
    const void *data = NULL;
    size_t nbytes = 0;
    MUST(rask_value_tensor_info(back[0], NULL, NULL, NULL, &data, &nbytes, E));
    EXPECT(nbytes == N * sizeof(double) && memcmp(data, big, nbytes) == 0);
    // Once sent, rask holds no reference: the release comes (from whichever
    // thread dropped it last) and the host may free the memory.
    EXPECT(released_within(4, 1, 60));
    EXPECT(atomic_load(&released[4]) == 1);
    free(big);
    rask_value_free(back[0]);
    rask_future_free(f);
    rask_client_free(client);
    rask_cluster_free(cluster);
    EXPECT(atomic_load(&released[4]) == 1);
}

static void a_host_without_callbacks_hears_through_its_queue(void) {
    rask_host *h = NULL;
    MUST(rask_host_new("test-1", NULL, NULL, NULL, NULL, &h, E));
    int fd = -1;
    MUST(rask_host_fd(h, &fd, E));
    static int32_t ints[4] = {1, 2, 3, 4};
    size_t shape[2] = {2, 2};
    rask_value *t = NULL, *b = NULL;
    MUST(rask_value_tensor_wrap_host(h, 41, RASK_DTYPE_INT32, shape, 2, ints, sizeof ints, &t, E));
    MUST(rask_value_bytes_wrap_host(h, 42, (const uint8_t *)ints, 3, &b, E));
    EXPECT(rask_value_kind(t) == RASK_KIND_TENSOR && rask_value_kind(b) == RASK_KIND_BIN);
    const void *data = NULL;
    MUST(rask_value_tensor_info(t, NULL, NULL, NULL, &data, NULL, E));
    EXPECT(data == (const void *)ints);
    EXPECT(!readable(fd));
    rask_value *c = rask_value_clone(t);
    rask_value_free(t);
    EXPECT(!readable(fd));
    rask_value_free(c);
    rask_value_free(b);
    EXPECT(readable(fd));
    uint64_t ids[4];
    size_t n = 0;
    MUST(rask_host_take_released(h, ids, 4, &n, E));
    EXPECT(n == 2 && ids[0] == 41 && ids[1] == 42);
    EXPECT(!readable(fd));
    // Refused (misaligned): the id is released at once.
    EXPECT_ERR(RASK_ERR_INVALID_ARG, "rask_value_tensor_wrap_host", "aligned",
               rask_value_tensor_wrap_host(h, 43, RASK_DTYPE_INT32, shape, 2, (const uint8_t *)ints + 1,
                                           sizeof ints, &t, E));
    MUST(rask_host_take_released(h, ids, 4, &n, E));
    EXPECT(n == 1 && ids[0] == 43);
    rask_host_free(h);
}

int main(void) {
    the_same_memory_until_the_last_clone();
    refused_buffers_are_released_once();
    scattered_then_released_on_a_rask_thread();
    a_host_without_callbacks_hears_through_its_queue();
    return check_summary("zero_copy");
}

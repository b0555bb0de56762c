// nested_tasks.c: tasks that submit tasks. A recursive fib whose every call
// is a task (a C callback): fib(n) gets its worker's client with
// rask_callback_client, submits fib(n-1) and fib(n-2) with unique keys,
// secedes while it waits on them and rejoins before adding them up.
// fib(20) (21,891 tasks) completes on 2 workers with default threads and on
// one worker with 1 thread (without secede, the thread would wait on
// itself). Then a task of a pulled function (run by this thread through
// rask_worker_next_task) does the same with rask_task_client and
// rask_task_secede. The Rosenbrock random search runs as a task that
// submits its steps' points as tasks (a seed pattern). Seceding reuses spare pool threads: on one thread, the
// fib(20) callbacks (10,945 of which secede) run on far fewer OS threads
// than there are secedes, and a second fib(20) starts nearly none.
#define _GNU_SOURCE
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"

// The OS threads (Linux thread ids) the fib callbacks ran on.
#define TID_SLOTS (1 << 16)
static pthread_mutex_t tid_lock = PTHREAD_MUTEX_INITIALIZER;
static long tids[TID_SLOTS];
static size_t ntids = 0;

static void note_thread(void) {
    long tid = (long)syscall(SYS_gettid);
    pthread_mutex_lock(&tid_lock);
    size_t i = (size_t)tid % TID_SLOTS;
    while (tids[i] != 0 && tids[i] != tid) i = (i + 1) % TID_SLOTS;
    if (tids[i] == 0 && ntids < TID_SLOTS / 2) {
        tids[i] = tid;
        ntids++;
    }
    pthread_mutex_unlock(&tid_lock);
}

static size_t threads_seen(void) {
    pthread_mutex_lock(&tid_lock);
    size_t n = ntids;
    pthread_mutex_unlock(&tid_lock);
    return n;
}

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
    note_thread();
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

// The Rosenbrock random search, a seed pattern: the search runs as a task
// and each step's points are tasks it submits. rosen(x, y) is one point's
// score; search(seed, steps, n) scores n points around the best so far per
// step (uniform in a box of half-width `scale`, from xorshift64*), moves to
// the best if better, widens the box (x1.3) after a success and narrows it
// (x0.9) after a failure, and returns [x, y, score].
static double rosenbrock(double x, double y) { return (1 - x) * (1 - x) + 100 * (y - x * x) * (y - x * x); }

static double next_uniform(uint64_t *s) {  // in [-1, 1)
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return (double)((*s * 0x2545F4914F6CDD1DULL) >> 11) * 0x1.0p-53 * 2 - 1;
}

#define START_X (-1.5)
#define START_Y 2.0
#define MAX_POINTS 16

// One step's scores: evaluate(ctx, xs, ys, n, scores) -> status.
typedef rask_status (*evaluate_fn)(void *ctx, const double *xs, const double *ys, size_t n, double *scores,
                                   rask_error **err);

static rask_status random_search(uint64_t seed, int64_t steps, size_t n, evaluate_fn evaluate, void *ctx,
                                 double out[3], rask_error **err) {
    uint64_t s = seed;
    double bx = START_X, by = START_Y, best = rosenbrock(bx, by), scale = 0.5;
    for (int64_t k = 0; k < steps; k++) {
        double xs[MAX_POINTS], ys[MAX_POINTS], scores[MAX_POINTS];
        for (size_t i = 0; i < n; i++) {
            xs[i] = bx + scale * next_uniform(&s);
            ys[i] = by + scale * next_uniform(&s);
        }
        rask_status st = evaluate(ctx, xs, ys, n, scores, err);
        if (st != RASK_OK) return st;
        size_t m = 0;
        for (size_t i = 1; i < n; i++)
            if (scores[i] < scores[m]) m = i;
        if (scores[m] < best) {
            bx = xs[m], by = ys[m], best = scores[m], scale *= 1.3;
        } else {
            scale *= 0.9;
        }
    }
    out[0] = bx, out[1] = by, out[2] = best;
    return RASK_OK;
}

static rask_status evaluate_here(void *ctx, const double *xs, const double *ys, size_t n, double *scores,
                                 rask_error **err) {
    (void)ctx, (void)err;
    for (size_t i = 0; i < n; i++) scores[i] = rosenbrock(xs[i], ys[i]);
    return RASK_OK;
}

// Each point a task submitted through the search task's client.
static rask_status evaluate_as_tasks(void *ctx, const double *xs, const double *ys, size_t n, double *scores,
                                     rask_error **err) {
    rask_client *c = ctx;
    rask_future *fs[MAX_POINTS] = {0};
    rask_value *vs[MAX_POINTS] = {0};
    rask_status st = RASK_OK;
    size_t made = 0;
    for (; made < n && st == RASK_OK; made++) {
        rask_arg *a[2] = {rask_arg_float(xs[made]), rask_arg_float(ys[made])};
        rask_submit_options o = {0};
        o.impure = true;
        st = rask_client_submit_with(c, "rosen", a, 2, &o, &fs[made], err);
    }
    if (st == RASK_OK) st = rask_client_gather(c, (const rask_future *const *)fs, n, -1, vs, err);
    for (size_t i = 0; i < n; i++) {
        if (st == RASK_OK) st = rask_value_get_float(vs[i], &scores[i], err);
        rask_value_free(vs[i]);
    }
    for (size_t i = 0; i < made; i++) rask_future_free(fs[i]);
    return st;
}

static rask_status rosen(void *user_data, const rask_value *const *args, size_t nargs, rask_value **result,
                         rask_error **err) {
    (void)user_data;
    double x = 0, y = 0;
    if (nargs != 2 || rask_value_get_float(args[0], &x, err) != RASK_OK ||
        rask_value_get_float(args[1], &y, err) != RASK_OK)
        return RASK_ERR_TYPE;
    *result = rask_value_float(rosenbrock(x, y));
    return RASK_OK;
}

static rask_status search(void *user_data, const rask_value *const *args, size_t nargs, rask_value **result,
                          rask_error **err) {
    (void)user_data;
    int64_t seed = 0, steps = 0, n = 0;
    if (nargs != 3 || rask_value_get_int(args[0], &seed, err) != RASK_OK ||
        rask_value_get_int(args[1], &steps, err) != RASK_OK || rask_value_get_int(args[2], &n, err) != RASK_OK)
        return RASK_ERR_TYPE;
    if (n < 1 || n > MAX_POINTS) return RASK_ERR_INVALID_ARG;
    rask_client *c = NULL;
    rask_status st = rask_callback_client(&c, err);
    if (st != RASK_OK) return st;
    double found[3];
    st = rask_callback_secede(err);
    if (st == RASK_OK) st = random_search((uint64_t)seed, steps, (size_t)n, evaluate_as_tasks, c, found, err);
    rask_status rs = rask_callback_rejoin(st == RASK_OK ? err : NULL);
    if (st == RASK_OK) st = rs;
    rask_client_free(c);
    if (st != RASK_OK) return st;
    rask_value *arr = rask_value_array_new();
    for (int i = 0; i < 3 && st == RASK_OK; i++) st = rask_value_array_push(arr, rask_value_float(found[i]), err);
    if (st != RASK_OK) {
        rask_value_free(arr);
        return st;
    }
    *result = arr;
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
    MUST(rask_registry_add_callback(reg, "rosen", rosen, NULL, NULL, E));
    MUST(rask_registry_add_callback(reg, "search", search, NULL, NULL, E));

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
    size_t before = threads_seen();
    EXPECT(fib_on(addr, 20) == 6765);
    size_t first = threads_seen() - before;
    // Spare threads (parked when a task ended seceded) take the next
    // secedes' slots: far fewer threads than the 10,945 secedes.
    fprintf(stderr, "nested_tasks: fib(20) on one thread ran on %zu OS threads\n", first);
    EXPECT(first < 10945 / 4);
    // They wait SPARE_IDLE (10 s) for a slot: a second fib(20) right after
    // reuses them (a few new ones at most, as its peak may be higher).
    EXPECT(fib_on(addr, 20) == 6765);
    size_t second = threads_seen() - before - first;
    fprintf(stderr, "nested_tasks: a second fib(20) started %zu more\n", second);
    EXPECT(second < first / 2 + 2);

    // The Rosenbrock search as a task on the one thread: 60 steps x 8
    // points, the same result as the search computed here.
    rask_client *c = NULL;
    MUST(rask_client_connect(addr, NULL, &c, E));
    rask_arg *sa[3] = {rask_arg_int(7), rask_arg_int(60), rask_arg_int(8)};
    rask_submit_options so = {0};
    so.impure = true;
    rask_future *sf = NULL;
    MUST(rask_client_submit_with(c, "search", sa, 3, &so, &sf, E));
    rask_value *sv = NULL;
    EXPECT_OK(rask_future_result(sf, 300000, &sv, E));
    double here[3] = {0}, found[3] = {-1, -1, -1};
    EXPECT_OK(random_search(7, 60, 8, evaluate_here, NULL, here, E));
    size_t len = 0;
    if (sv != NULL) EXPECT_OK(rask_value_len(sv, &len, E));
    if (len == 3) {
        for (size_t i = 0; i < 3; i++) {
            const rask_value *item = NULL;
            EXPECT_OK(rask_value_array_get(sv, i, &item, E));
            if (item != NULL) EXPECT_OK(rask_value_get_float(item, &found[i], E));
        }
    }
    EXPECT(len == 3);
    EXPECT(found[0] == here[0] && found[1] == here[1] && found[2] == here[2]);
    EXPECT(here[2] < rosenbrock(START_X, START_Y) / 100);
    rask_value_free(sv);
    rask_future_free(sf);

    // A pulled task submits through its task's client and secedes.
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

// dashboard.c: what runs can be seen from C. The dashboard of an embedded
// scheduler or cluster (on by default, off with no_dashboard, at an address
// of the caller's), its link as the scheduler and its clients see it (the
// link travels in `welcome`), and rask_client_progress following tasks that
// are still pending when it starts.
#include "check.h"

static bool starts_with(const char *s, const char *prefix) {
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static void links(void) {
    // A cluster with the defaults serves a dashboard on loopback (8787, or
    // a free port when another test has it), and its clients learn where.
    rask_cluster *cl = NULL;
    MUST(rask_cluster_start(NULL, NULL, &cl, E));
    const char *link = rask_cluster_dashboard_link(cl);
    EXPECT(starts_with(link, "http://127.0.0.1:"));
    EXPECT(ends_with(link, "/status"));
    rask_client *c = NULL;
    MUST(rask_cluster_client(cl, &c, E));
    EXPECT_STR(rask_client_dashboard_link(c), link);
    rask_client_free(c);
    // Stopped: the link still answers (nothing serves it any more).
    char saved[256];
    snprintf(saved, sizeof saved, "%s", link);
    EXPECT_OK(rask_cluster_stop(cl, E));
    EXPECT_STR(rask_cluster_dashboard_link(cl), saved);
    rask_cluster_free(cl);

    // Turned off: no link anywhere.
    rask_cluster_options co = {0};
    co.workers = 1;
    co.dashboard_address = "nonsense";
    EXPECT_ERR(RASK_ERR_CONNECTION, "rask_cluster_start", "dashboard address", rask_cluster_start(&co, NULL, &cl, E));
    co.dashboard_address = "still ignored: no dashboard";
    co.no_dashboard = true;
    MUST(rask_cluster_start(&co, NULL, &cl, E));
    EXPECT_STR(rask_cluster_dashboard_link(cl), "");
    MUST(rask_cluster_client(cl, &c, E));
    EXPECT_STR(rask_client_dashboard_link(c), "");
    rask_client_free(c);
    rask_cluster_free(cl);

    // A scheduler at an address of the caller's (port 0: a free one).
    rask_scheduler_options so = {0};
    so.dashboard_address = "127.0.0.1:0";
    rask_scheduler *s = NULL;
    MUST(rask_scheduler_start(&so, &s, E));
    link = rask_scheduler_dashboard_link(s);
    EXPECT(starts_with(link, "http://127.0.0.1:"));
    EXPECT(!starts_with(link, "http://127.0.0.1:0/"));
    MUST(rask_client_connect(rask_scheduler_address(s), NULL, &c, E));
    EXPECT_STR(rask_client_dashboard_link(c), link);
    rask_client_free(c);

    // That address again, now taken: an explicit address does not move.
    rask_scheduler_options taken = {0};
    char addr[128];
    snprintf(addr, sizeof addr, "%s", link + strlen("http://"));
    *strchr(addr, '/') = '\0';
    taken.dashboard_address = addr;
    rask_scheduler *s2 = NULL;
    EXPECT_ERR(RASK_ERR_CONNECTION, "rask_scheduler_start", "dashboard", rask_scheduler_start(&taken, &s2, E));
    EXPECT(s2 == NULL);
    taken.dashboard_address = "not an address";
    EXPECT_ERR(RASK_ERR_CONNECTION, "rask_scheduler_start", "dashboard address", rask_scheduler_start(&taken, &s2, E));
    EXPECT(s2 == NULL);
    // no_dashboard wins over an address.
    taken.no_dashboard = true;
    MUST(rask_scheduler_start(&taken, &s2, E));
    EXPECT_STR(rask_scheduler_dashboard_link(s2), "");
    rask_scheduler_free(s2);
    rask_scheduler_free(s);
}

// Reads a whole file (NULL if it cannot); the caller frees it.
static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)n + 1);
    size_t got = fread(text, 1, (size_t)n, f);
    text[got] = '\0';
    fclose(f);
    return text;
}

// A performance report of a block of work, written by the client from the
// scheduler's dashboard (the link came in its welcome).
static void performance_reports(void) {
    rask_cluster *cl = NULL;
    MUST(rask_cluster_start(NULL, NULL, &cl, E));
    rask_client *c = NULL;
    MUST(rask_cluster_client(cl, &c, E));
    rask_future *before = NULL;
    rask_arg *a0[1] = {rask_arg_int(100)};
    MUST(rask_client_submit(c, "inc", a0, 1, &before, E));
    rask_value *v = NULL;
    MUST(rask_future_result(before, -1, &v, E));
    rask_value_free(v);

    double since = -1;
    EXPECT_OK(rask_client_report_start(c, &since, E));
    EXPECT(since > 0);
    enum { N = 5 };
    rask_future *fs[N];
    for (int i = 0; i < N; i++) {
        rask_arg *args[1] = {rask_arg_int(i)};
        MUST(rask_client_submit(c, "inc", args, 1, &fs[i], E));
    }
    rask_value *vals[N];
    MUST(rask_client_gather(c, (const rask_future *const *)fs, N, -1, vals, E));
    for (int i = 0; i < N; i++) rask_value_free(vals[i]);
    const char *path = "c-dashboard-report.html";
    remove(path);
    EXPECT_OK(rask_client_performance_report(c, since, path, E));
    char *html = read_file(path);
    EXPECT(html != NULL);
    if (html) {
        EXPECT(strstr(html, "<title>rask performance report</title>") != NULL);
        // Self-contained: nothing to fetch.
        EXPECT(strstr(html, "/static/") == NULL);
        // The scheduler counted all six inc; the task stream holds the five
        // of the block only (one "ok" per entry).
        EXPECT(strstr(html, "\"finished_total\":6") != NULL);
        size_t entries = 0;
        for (const char *p = strstr(html, "\"ok\":"); p; p = strstr(p + 1, "\"ok\":")) entries++;
        EXPECT(entries == N);
        free(html);
    }
    remove(path);
    EXPECT_ERR(RASK_ERR_INVALID_ARG, "rask_client_performance_report", "cannot write",
               rask_client_performance_report(c, since, "/nonexistent-dir/r.html", E));
    EXPECT_ERR(RASK_ERR_INVALID_ARG, "rask_client_performance_report", "since",
               rask_client_performance_report(c, 0.0 / 0.0, path, E));
    for (int i = 0; i < N; i++) rask_future_free(fs[i]);
    rask_future_free(before);
    rask_client_free(c);
    rask_cluster_free(cl);

    // Without a dashboard there is no report.
    rask_cluster_options co = {0};
    co.workers = 1;
    co.no_dashboard = true;
    MUST(rask_cluster_start(&co, NULL, &cl, E));
    MUST(rask_cluster_client(cl, &c, E));
    EXPECT_ERR(RASK_ERR_STATE, "rask_client_report_start", "no dashboard", rask_client_report_start(c, &since, E));
    EXPECT(since == 0);
    EXPECT_ERR(RASK_ERR_STATE, "rask_client_performance_report", "no dashboard",
               rask_client_performance_report(c, 0, path, E));
    rask_client_free(c);
    rask_cluster_free(cl);
}

// Progress with tasks still pending: the tasks are pulled, and the progress
// callback runs the next one each time it is called, so every change of the
// counts is one task and the sequence of calls is known.
typedef struct {
    rask_worker *worker;
    size_t calls;
    size_t pending[8];
    size_t finished[8];
    size_t erred[8];
} follow;

static void run_next(const rask_progress_counts *counts, void *user_data) {
    follow *f = (follow *)user_data;
    if (f->calls < 8) {
        f->pending[f->calls] = counts->pending;
        f->finished[f->calls] = counts->finished;
        f->erred[f->calls] = counts->erred;
    }
    f->calls++;
    if (counts->pending == 0 || f->worker == NULL) return;
    rask_task *t = NULL;
    if (rask_worker_next_task(f->worker, -1, &t, NULL) != RASK_OK) return;
    // The third task fails; the others return their argument.
    if (f->calls == 3) {
        rask_task_fail(t, "the third one fails", NULL);
    } else {
        rask_value *v = rask_value_int((int64_t)f->calls);
        rask_task_complete(t, v, NULL);
    }
}

static void progress_of_pending_tasks(void) {
    rask_scheduler_options so = {0};
    so.no_dashboard = true;
    rask_scheduler *s = NULL;
    MUST(rask_scheduler_start(&so, &s, E));
    const char *addr = rask_scheduler_address(s);
    rask_registry *reg = rask_registry_new();
    MUST(rask_registry_add_pulled(reg, "pulled", E));
    rask_worker *w = NULL;
    MUST(rask_worker_start(addr, NULL, reg, &w, E));
    rask_registry_free(reg);
    rask_client *c = NULL;
    MUST(rask_client_connect(addr, NULL, &c, E));

    enum { N = 4 };
    rask_future *fs[N];
    for (int i = 0; i < N; i++) {
        rask_arg *args[1] = {rask_arg_int(i)};
        MUST(rask_client_submit(c, "pulled", args, 1, &fs[i], E));
    }
    const rask_future *const *cfs = (const rask_future *const *)fs;

    // Nothing runs yet: a timeout, with every future pending.
    follow idle = {0};
    rask_progress_counts pc = {0};
    EXPECT_STATUS(RASK_TIMEOUT, rask_client_progress(c, cfs, N, run_next, &idle, 50, &pc, E));
    EXPECT(pc.total == N && pc.pending == N && pc.finished == 0 && pc.erred == 0);
    EXPECT(idle.calls == 1 && idle.pending[0] == N);

    // Now the callback runs one task per call: N + 1 calls, one change each.
    follow f = {0};
    f.worker = w;
    EXPECT_OK(rask_client_progress(c, cfs, N, run_next, &f, -1, &pc, E));
    EXPECT(f.calls == N + 1);
    for (size_t i = 0; i < f.calls && i < 8; i++) {
        EXPECT(f.pending[i] == N - i);
        EXPECT(f.finished[i] + f.erred[i] == i);
        EXPECT(f.erred[i] == (i >= 3 ? 1u : 0u));
    }
    EXPECT(pc.total == N && pc.pending == 0 && pc.finished == N - 1 && pc.erred == 1 && pc.cancelled == 0);

    for (int i = 0; i < N; i++) rask_future_free(fs[i]);
    rask_client_free(c);
    rask_worker_free(w);
    rask_scheduler_free(s);
}

int main(void) {
    links();
    performance_reports();
    progress_of_pending_tasks();
    return check_summary("dashboard");
}

// client_threads.c: one rask_client shared by many threads (the C API
// allows any number of threads on a distributed handle, `_free` last).
//
// 1. Eight threads submit, wait and check results on one client at once.
// 2. Four threads keep submitting while the main thread closes the client
//    (rask_client_close): each of their calls either succeeds or fails with
//    RASK_ERR_STATE saying the client was closed — a defined error, never a
//    crash — and every thread stops. Only then is the client freed:
//    rask_client_free while another thread still uses the handle is a
//    use-after-free no library can define (docs/c-api.md, Threads), and
//    rask_client_close is the call that stops a client other threads share.
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#include "check.h"

#define THREADS 8
#define CALLS 100
#define SUBMITTERS 4

static rask_client *client;
static atomic_int wrong_results;
static atomic_int unexpected_errors;
static atomic_int submitted_before_close;
static atomic_int state_errors;
static char first_unexpected[512];
static pthread_mutex_t first_lock = PTHREAD_MUTEX_INITIALIZER;

static void note_unexpected(rask_status st, rask_error *err) {
    atomic_fetch_add(&unexpected_errors, 1);
    pthread_mutex_lock(&first_lock);
    if (first_unexpected[0] == '\0') {
        snprintf(first_unexpected, sizeof first_unexpected, "%s: %s", rask_status_name(st),
                 rask_error_message(err));
    }
    pthread_mutex_unlock(&first_lock);
}

static void *submit_and_check(void *arg) {
    int64_t base = (int64_t)(intptr_t)arg * CALLS;
    for (int64_t i = 0; i < CALLS; i++) {
        rask_error *err = NULL;
        rask_arg *args[] = {rask_arg_int(base + i)};
        rask_future *f = NULL;
        rask_status st = rask_client_submit(client, "inc", args, 1, &f, &err);
        if (st != RASK_OK) {
            note_unexpected(st, err);
            rask_error_free(err);
            continue;
        }
        rask_value *v = NULL;
        st = rask_future_result(f, 60000, &v, &err);
        int64_t x = 0;
        if (st != RASK_OK) {
            note_unexpected(st, err);
            rask_error_free(err);
        } else if (rask_value_get_int(v, &x, NULL) != RASK_OK || x != base + i + 1) {
            atomic_fetch_add(&wrong_results, 1);
        }
        rask_value_free(v);
        rask_future_free(f);
    }
    return NULL;
}

// Submits until the client is closed under it.
static void *submit_until_closed(void *arg) {
    (void)arg;
    for (int64_t i = 0;; i++) {
        rask_error *err = NULL;
        rask_arg *args[] = {rask_arg_int(i)};
        rask_future *f = NULL;
        rask_status st = rask_client_submit(client, "inc", args, 1, &f, &err);
        if (st == RASK_OK) {
            atomic_fetch_add(&submitted_before_close, 1);
            rask_future_free(f);
            continue;
        }
        if (st == RASK_ERR_STATE && strstr(rask_error_message(err), "closed") != NULL) {
            atomic_fetch_add(&state_errors, 1);
        } else {
            note_unexpected(st, err);
        }
        rask_error_free(err);
        return NULL;
    }
}

int main(void) {
    rask_cluster_options co = {0};
    co.workers = 2;
    co.threads_per_worker = 1;
    rask_cluster *cluster = NULL;
    MUST(rask_cluster_start(&co, NULL, &cluster, E));
    MUST(rask_cluster_client(cluster, &client, E));

    pthread_t t[THREADS];
    for (intptr_t i = 0; i < THREADS; i++) {
        EXPECT(pthread_create(&t[i], NULL, submit_and_check, (void *)i) == 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
    }
    EXPECT(atomic_load(&wrong_results) == 0);
    EXPECT(atomic_load(&unexpected_errors) == 0);
    if (first_unexpected[0] != '\0') {
        fprintf(stderr, "first unexpected error: %s\n", first_unexpected);
    }

    pthread_t s[SUBMITTERS];
    for (int i = 0; i < SUBMITTERS; i++) {
        EXPECT(pthread_create(&s[i], NULL, submit_until_closed, NULL) == 0);
    }
    // Close once they are under way (a deadline poll on their progress).
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    do {
        sched_yield();
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while (atomic_load(&submitted_before_close) < 50 && now.tv_sec - start.tv_sec < 60);
    EXPECT(atomic_load(&submitted_before_close) >= 50);
    EXPECT_OK(rask_client_close(client, E));
    for (int i = 0; i < SUBMITTERS; i++) {
        pthread_join(s[i], NULL);
    }
    EXPECT(atomic_load(&state_errors) == SUBMITTERS);
    EXPECT(atomic_load(&unexpected_errors) == 0);
    if (first_unexpected[0] != '\0') {
        fprintf(stderr, "first unexpected error: %s\n", first_unexpected);
    }
    // After the close every call on the client fails the same way.
    rask_arg *args[] = {rask_arg_int(1)};
    rask_future *f = NULL;
    EXPECT_ERR(RASK_ERR_STATE, "closed", NULL, rask_client_submit(client, "inc", args, 1, &f, E));
    rask_client_free(client);
    rask_cluster_free(cluster);
    return check_summary("client_threads");
}

// wait_fd.c: the descriptors an event loop waits on instead of blocking in
// rask. The worker's (rask_worker_fd) is readable exactly while a task of a
// pulled function waits, and once the worker stopped; the client's
// (rask_client_fd) becomes readable when a future changes and stays so
// until rask_client_fd_clear. Waits are poll(2) with a long deadline (the
// readiness is what is checked, never the time).
#define _POSIX_C_SOURCE 200809L
#include <poll.h>

#include "check.h"

// Whether `fd` becomes readable within `ms` milliseconds (0: right now).
static bool readable(int fd, int ms) {
    struct pollfd p = {.fd = fd, .events = POLLIN, .revents = 0};
    return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

int main(void) {
    rask_scheduler *sched = NULL;
    MUST(rask_scheduler_start(NULL, &sched, E));
    rask_registry *reg = rask_registry_new();
    MUST(rask_registry_add_pulled(reg, "host_inc", E));
    rask_worker *w = NULL;
    MUST(rask_worker_start(rask_scheduler_address(sched), NULL, reg, &w, E));
    rask_registry_free(reg);
    rask_client *c = NULL;
    MUST(rask_client_connect(rask_scheduler_address(sched), NULL, &c, E));

    int wfd = -1, wfd2 = -1, cfd = -1, cfd2 = -1;
    MUST(rask_worker_fd(w, &wfd, E));
    MUST(rask_worker_fd(w, &wfd2, E));
    EXPECT(wfd >= 0 && wfd == wfd2);
    EXPECT(!readable(wfd, 0));  // no task yet
    MUST(rask_client_fd(c, &cfd, E));
    MUST(rask_client_fd(c, &cfd2, E));
    EXPECT(cfd >= 0 && cfd == cfd2 && cfd != wfd);
    EXPECT(readable(cfd, 0));  // new: readable, so a host looks once
    EXPECT_OK(rask_client_fd_clear(c, E));
    EXPECT(!readable(cfd, 0));

    // Two tasks for the host: the worker's descriptor wakes the loop, and
    // stays readable until next_task has taken both.
    rask_future *fs[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++) {
        rask_arg *args[1] = {rask_arg_int(10 * i)};
        MUST(rask_client_submit(c, "host_inc", args, 1, &fs[i], E));
    }
    int taken = 0;
    while (taken < 2) {
        EXPECT(readable(wfd, 30000));
        rask_task *t = NULL;
        rask_status st;
        while ((st = rask_worker_next_task(w, 0, &t, NULL)) == RASK_OK) {
            int64_t x = 0;
            MUST(rask_value_get_int(rask_task_arg(t, 0), &x, E));
            EXPECT_OK(rask_task_complete(t, rask_value_int(x + 1), E));
            taken++;
        }
        EXPECT(st == RASK_TIMEOUT);
        if (st != RASK_TIMEOUT) break;
    }
    EXPECT(taken == 2);
    EXPECT(!readable(wfd, 0));  // the queue is empty: unreadable again

    // The client's descriptor says the futures changed; clear, then look.
    for (int i = 0; i < 2; i++) {
        rask_future_state s;
        for (;;) {  // clear, look, and wait only if it is not there yet
            EXPECT_OK(rask_client_fd_clear(c, E));
            s = rask_future_status(fs[i]);
            if (s != RASK_FUTURE_PENDING) break;
            EXPECT(readable(cfd, 30000));
        }
        EXPECT(s == RASK_FUTURE_FINISHED);
        rask_value *v = NULL;
        MUST(rask_future_result(fs[i], 0, &v, E));
        int64_t x = 0;
        MUST(rask_value_get_int(v, &x, E));
        EXPECT(x == 10 * i + 1);
        rask_value_free(v);
        rask_future_free(fs[i]);
    }
    EXPECT_OK(rask_client_fd_clear(c, E));
    EXPECT(!readable(cfd, 0));

    // A stopped worker: readable, and next_task says RASK_DONE.
    EXPECT_ERR(RASK_ERR_NULL_ARG, "rask_worker_fd", "'out'", rask_worker_fd(w, NULL, E));
    MUST(rask_worker_stop(w, E));
    EXPECT(readable(wfd, 30000));
    rask_task *t = NULL;
    EXPECT_STATUS(RASK_DONE, rask_worker_next_task(w, 0, &t, E));
    EXPECT(readable(wfd, 0));

    rask_client_free(c);
    rask_worker_free(w);
    rask_scheduler_free(sched);
    return check_summary("wait_fd");
}

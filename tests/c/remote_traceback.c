// remote_traceback.c: a task that raised on a worker reaches a C client with
// the exception's type name and the traceback, through rask_error_exception
// and rask_error_traceback; a task failed without them leaves both NULL.
// The worker's pulled function is run by this thread (pull mode).
#include "check.h"

int main(void) {
    rask_scheduler *sched = NULL;
    MUST(rask_scheduler_start(NULL, &sched, E));
    rask_registry *reg = rask_registry_new();
    MUST(rask_registry_add_pulled(reg, "boom", E));
    rask_worker *w = NULL;
    MUST(rask_worker_start(rask_scheduler_address(sched), NULL, reg, &w, E));
    rask_registry_free(reg);
    rask_client *c = NULL;
    MUST(rask_client_connect(rask_scheduler_address(sched), NULL, &c, E));

    // Raised with a type name and a traceback.
    rask_arg *args[1] = {rask_arg_int(1)};
    rask_future *f = NULL;
    MUST(rask_client_submit(c, "boom", args, 1, &f, E));
    rask_task *t = NULL;
    MUST(rask_worker_next_task(w, -1, &t, E));
    EXPECT_STR(rask_task_func(t), "boom");
    const char *tb = "Traceback (most recent call last):\n  File \"job.py\", line 3, in boom\nValueError: bad input 1\n";
    EXPECT_OK(rask_task_fail_exception(t, "ValueError: bad input 1", "ValueError", tb, E));
    rask_value *v = NULL;
    rask_error *err = NULL;
    EXPECT(rask_future_result(f, -1, &v, &err) == RASK_ERR_TASK_FAILED);
    EXPECT(v == NULL);
    EXPECT(strstr(rask_error_message(err), "bad input 1") != NULL);
    EXPECT_STR(rask_error_exception(err), "ValueError");
    EXPECT_STR(rask_error_traceback(err), tb);
    rask_error_free(err);
    // Asked again, the future gives the same error.
    EXPECT_ERR(RASK_ERR_TASK_FAILED, "(boom)", "bad input 1", rask_future_result(f, -1, &v, E));
    rask_future_free(f);

    // Failed with a message only: no exception, no traceback.
    args[0] = rask_arg_int(2);
    MUST(rask_client_submit(c, "boom", args, 1, &f, E));
    MUST(rask_worker_next_task(w, -1, &t, E));
    EXPECT_OK(rask_task_fail(t, "plain failure", E));
    err = NULL;
    EXPECT(rask_future_result(f, -1, &v, &err) == RASK_ERR_TASK_FAILED);
    EXPECT(strstr(rask_error_message(err), "plain failure") != NULL);
    EXPECT(rask_error_exception(err) == NULL);
    EXPECT(rask_error_traceback(err) == NULL);
    rask_error_free(err);
    rask_future_free(f);

    // A type name without a traceback (NULL: not known).
    args[0] = rask_arg_int(3);
    MUST(rask_client_submit(c, "boom", args, 1, &f, E));
    MUST(rask_worker_next_task(w, -1, &t, E));
    EXPECT_OK(rask_task_fail_exception(t, "KeyError: 'x'", "KeyError", NULL, E));
    err = NULL;
    EXPECT(rask_future_result(f, -1, &v, &err) == RASK_ERR_TASK_FAILED);
    EXPECT_STR(rask_error_exception(err), "KeyError");
    EXPECT(rask_error_traceback(err) == NULL);
    rask_error_free(err);
    rask_future_free(f);

    rask_client_free(c);
    rask_worker_free(w);
    rask_scheduler_free(sched);
    return check_summary("remote_traceback");
}

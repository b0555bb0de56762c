// check.h: the small harness of the C tests in tests/c/ (plain C, no
// framework). Each test program includes it, runs its checks and returns
// check_summary(): 0 when every check passed, 1 otherwise.
//
//   EXPECT_ERR(status, "needle", "needle", call using E);
//
// runs `call` with `E` (a `rask_error **`) for its error parameter and
// checks that it returned `status`, that it set an error carrying the same
// status, and that the message contains both needles (NULL: no needle). The
// needles are the function's name and the parameter (or the state) the
// error is about, so that a message that does not name its culprit fails.
#ifndef RASK_TESTS_C_CHECK_H
#define RASK_TESTS_C_CHECK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rask.h"

static int check_failures = 0;
static int check_count = 0;

static void check_fail(const char *file, int line, const char *what, const char *detail) {
    check_failures++;
    fprintf(stderr, "%s:%d: FAILED: %s\n    %s\n", file, line, what, detail);
}

static void check_error(const char *file, int line, const char *expr, rask_status got,
                        rask_error *err, rask_status want, const char *n1, const char *n2) {
    char detail[1024];
    const char *message = rask_error_message(err);
    check_count++;
    if (got != want) {
        snprintf(detail, sizeof detail, "returned %s, expected %s (message: %s)",
                 rask_status_name(got), rask_status_name(want), message);
        check_fail(file, line, expr, detail);
    } else if (err == NULL) {
        snprintf(detail, sizeof detail, "returned %s without setting the error",
                 rask_status_name(got));
        check_fail(file, line, expr, detail);
    } else if (rask_error_status(err) != want) {
        snprintf(detail, sizeof detail, "the error carries %s, expected %s",
                 rask_status_name(rask_error_status(err)), rask_status_name(want));
        check_fail(file, line, expr, detail);
    } else {
        const char *needles[2] = {n1, n2};
        for (int i = 0; i < 2; i++) {
            if (needles[i] != NULL && strstr(message, needles[i]) == NULL) {
                snprintf(detail, sizeof detail, "the message \"%s\" does not mention \"%s\"",
                         message, needles[i]);
                check_fail(file, line, expr, detail);
            }
        }
    }
    rask_error_free(err);
}

#define EXPECT_ERR(want, n1, n2, call)                                                   \
    do {                                                                                 \
        rask_error *check_err_ = NULL;                                                   \
        rask_error **E = &check_err_;                                                    \
        rask_status check_st_ = (call);                                                  \
        check_error(__FILE__, __LINE__, #call, check_st_, check_err_, (want), (n1), (n2)); \
    } while (0)

// A call that must return `want`, a status that is not an error (RASK_OK,
// RASK_TIMEOUT, RASK_DONE): no error may be set.
#define EXPECT_STATUS(want, call)                                                        \
    do {                                                                                 \
        rask_error *check_err_ = NULL;                                                   \
        rask_error **E = &check_err_;                                                    \
        rask_status check_st_ = (call);                                                  \
        check_count++;                                                                   \
        if (check_st_ != (want) || check_err_ != NULL) {                                 \
            char d_[512];                                                                \
            snprintf(d_, sizeof d_, "returned %s, expected %s (message: %s)",            \
                     rask_status_name(check_st_), rask_status_name(want),                \
                     rask_error_message(check_err_));                                    \
            check_fail(__FILE__, __LINE__, #call, d_);                                   \
        }                                                                                \
        rask_error_free(check_err_);                                                     \
    } while (0)

#define EXPECT_OK(call) EXPECT_STATUS(RASK_OK, call)

// A condition that must hold.
#define EXPECT(cond)                                                                     \
    do {                                                                                 \
        check_count++;                                                                   \
        if (!(cond)) {                                                                   \
            check_fail(__FILE__, __LINE__, #cond, "is false");                           \
        }                                                                                \
    } while (0)

// Two C strings that must be equal (either may be NULL).
#define EXPECT_STR(got, want)                                                            \
    do {                                                                                 \
        const char *g_ = (got), *w_ = (want);                                            \
        check_count++;                                                                   \
        if ((g_ == NULL) != (w_ == NULL) || (g_ != NULL && strcmp(g_, w_) != 0)) {       \
            char d_[512];                                                                \
            snprintf(d_, sizeof d_, "got \"%s\", expected \"%s\"", g_ ? g_ : "(NULL)",   \
                     w_ ? w_ : "(NULL)");                                                \
            check_fail(__FILE__, __LINE__, #got, d_);                                    \
        }                                                                                \
    } while (0)

// Stops the program when setting up a check fails (not a check itself).
#define MUST(call)                                                                       \
    do {                                                                                 \
        rask_error *check_err_ = NULL;                                                   \
        rask_error **E = &check_err_;                                                    \
        rask_status check_st_ = (call);                                                  \
        if (check_st_ != RASK_OK) {                                                      \
            fprintf(stderr, "%s:%d: setup failed: %s: %s: %s\n", __FILE__, __LINE__,    \
                    #call, rask_status_name(check_st_), rask_error_message(check_err_)); \
            exit(2);                                                                     \
        }                                                                                \
    } while (0)

static int check_summary(const char *name) {
    if (check_failures > 0) {
        fprintf(stderr, "%s: %d of %d checks FAILED\n", name, check_failures, check_count);
        return 1;
    }
    printf("%s: all %d checks passed\n", name, check_count);
    return 0;
}

#endif

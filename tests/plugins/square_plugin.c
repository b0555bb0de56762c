/*
 * A rask worker plugin for the tests: offers `square(x)` for an integer x.
 *
 * Built by tests/worker.rs with `cc -shared -fPIC -Iinclude`, three ways:
 *   (default)                   a good plugin
 *   -DRASK_TEST_NO_ENTRY        a library without rask_plugin_init
 *   -DRASK_TEST_INIT_FAILS      an init that returns an error
 */
#include "rask.h"

#include <stddef.h>
#include <stdint.h>

static rask_status square(void *user_data, const rask_value *const *args, size_t nargs,
                          rask_value **result, rask_error **err) {
    (void)user_data;
    if (nargs != 1) {
        *err = rask_error_new(RASK_ERR_INVALID_ARG, "square takes 1 argument");
        return RASK_ERR_INVALID_ARG;
    }
    int64_t x;
    rask_status s = rask_value_get_int(args[0], &x, err);
    if (s != RASK_OK) {
        return s;
    }
    *result = rask_value_int(x * x);
    return RASK_OK;
}

#ifndef RASK_TEST_NO_ENTRY
rask_status rask_plugin_init(rask_registry *registry, rask_error **err) {
#ifdef RASK_TEST_INIT_FAILS
    (void)registry;
    *err = rask_error_new(RASK_ERR_INVALID_ARG, "this plugin refuses to load");
    return RASK_ERR_INVALID_ARG;
#else
    return rask_registry_add_callback(registry, "square", square, NULL, NULL, err);
#endif
}

/* The entry point has the type rask.h gives it. */
static const rask_plugin_init_fn entry_point_type_check = rask_plugin_init;
const void *rask_test_entry_point(void) { return (const void *)&entry_point_type_check; }
#else
/* Something exported, so the library is not empty. */
int not_a_rask_plugin(void) { return 42; }
#endif

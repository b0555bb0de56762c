/*
 * A rask worker plugin for tests/chaos.rs: `crash()` kills the worker
 * process that runs it with SIGKILL (as a segfault in a C task function or
 * the out-of-memory killer would; SIGKILL leaves no core file behind).
 *
 * Built with `cc -shared -fPIC -Iinclude`.
 */
#include "rask.h"

#include <stddef.h>
#include <signal.h>

static rask_status crash(void *user_data, const rask_value *const *args, size_t nargs,
                         rask_value **result, rask_error **err) {
    (void)user_data;
    (void)args;
    (void)nargs;
    (void)result;
    (void)err;
    raise(SIGKILL);
    return RASK_OK;
}

rask_status rask_plugin_init(rask_registry *registry, rask_error **err) {
    return rask_registry_add_callback(registry, "crash", crash, NULL, NULL, err);
}

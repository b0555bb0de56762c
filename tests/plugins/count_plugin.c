/*
 * A rask worker plugin for tests/retire.rs: `counted(x, ms)` appends the
 * line "x\n" to the file named by the environment variable
 * RASK_COUNT_FILE (one write with O_APPEND, so lines from several worker
 * processes never mix), works for `ms` milliseconds, and returns 2048
 * bytes, byte i being (x + i) mod 256: too big to travel inline, so a
 * client fetches it from a worker. The test counts the lines: each x
 * must appear once (no task ran twice).
 *
 * Built with `cc -shared -fPIC -Iinclude`.
 */
#include "rask.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static rask_status counted(void *user_data, const rask_value *const *args, size_t nargs,
                           rask_value **result, rask_error **err) {
    (void)user_data;
    if (nargs != 2) {
        *err = rask_error_new(RASK_ERR_INVALID_ARG, "counted takes 2 arguments");
        return RASK_ERR_INVALID_ARG;
    }
    int64_t x, ms;
    rask_status s = rask_value_get_int(args[0], &x, err);
    if (s == RASK_OK) {
        s = rask_value_get_int(args[1], &ms, err);
    }
    if (s != RASK_OK) {
        return s;
    }
    const char *path = getenv("RASK_COUNT_FILE");
    if (path == NULL) {
        *err = rask_error_new(RASK_ERR_INVALID_ARG, "RASK_COUNT_FILE is not set");
        return RASK_ERR_INVALID_ARG;
    }
    char line[32];
    int n = snprintf(line, sizeof line, "%lld\n", (long long)x);
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd < 0 || write(fd, line, (size_t)n) != n) {
        *err = rask_error_new(RASK_ERR_INVALID_ARG, "cannot append to RASK_COUNT_FILE");
        if (fd >= 0) {
            close(fd);
        }
        return RASK_ERR_INVALID_ARG;
    }
    close(fd);
    if (ms > 0) {
        struct timespec t = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
        nanosleep(&t, NULL);
    }
    uint8_t buf[2048];
    for (size_t i = 0; i < sizeof buf; i++) {
        buf[i] = (uint8_t)((uint64_t)x + i);
    }
    return rask_value_bytes(buf, sizeof buf, result, err);
}

rask_status rask_plugin_init(rask_registry *registry, rask_error **err) {
    return rask_registry_add_callback(registry, "counted", counted, NULL, NULL, err);
}

"""Same-host shared memory between a C worker process and a Python worker:
a tensor a C function made in another process reaches the Python worker as
the memory file the C worker passed (mapped in this process, no bytes over
TCP), stays whole when the C worker is killed, and no mapping is left once
released."""

import gc
import os
import shutil
import subprocess
import time

import pytest
from conftest import REPO, needs_numpy

import rask

C_WORKER = r"""
#include <rask.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* c_big(n): a float64 tensor [0, 0.5, 1, ...] of n elements. */
static rask_status c_big(void *user_data, const rask_value *const *args, size_t nargs,
                         rask_value **result, rask_error **err) {
    (void)user_data;
    int64_t n;
    if (nargs != 1 || rask_value_get_int(args[0], &n, err) != RASK_OK || n <= 0)
        return RASK_ERR_TASK_FAILED;
    double *a = malloc((size_t)n * sizeof *a);
    if (!a)
        return RASK_ERR_TASK_FAILED;
    for (int64_t i = 0; i < n; i++)
        a[i] = (double)i * 0.5;
    size_t shape[1] = {(size_t)n};
    rask_status s = rask_value_tensor(RASK_DTYPE_FLOAT64, shape, 1, a, (size_t)n * sizeof *a,
                                      result, err);
    free(a);
    return s == RASK_OK ? RASK_OK : RASK_ERR_TASK_FAILED;
}

int main(int argc, char **argv) {
    if (argc != 2)
        return 2;
    rask_error *err = NULL;
    rask_registry *reg = rask_registry_new();
    if (rask_registry_add_callback(reg, "c_big", c_big, NULL, NULL, &err) != RASK_OK) {
        fprintf(stderr, "%s\n", rask_error_message(err));
        return 1;
    }
    rask_worker_options o = {0};
    o.name = "c-worker";
    o.threads = 1;
    rask_worker *w = NULL;
    if (rask_worker_start(argv[1], &o, reg, &w, &err) != RASK_OK) {
        fprintf(stderr, "%s\n", rask_error_message(err));
        return 1;
    }
    rask_registry_free(reg);
    printf("ready %s\n", rask_worker_address(w));
    fflush(stdout);
    rask_worker_wait(w, -1, NULL);
    rask_worker_free(w);
    return 0;
}
"""


def memfd_ranges():
    """The address ranges of rask memory files mapped in this process."""
    out = []
    with open("/proc/self/maps") as f:
        for line in f:
            if "memfd:rask-value" in line:
                lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
                out.append((lo, hi))
    return out


def py_check(a):
    """The array's sum, and the bytes of rask memory files this process
    maps while the task runs (the argument's value is held meanwhile)."""
    return [float(a.sum()), sum(hi - lo for lo, hi in memfd_ranges())]


@pytest.fixture(scope="module")
def c_worker_exe(tmp_path_factory):
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.skip("no C compiler")
    libpath = os.path.abspath(rask.library_path())
    d = tmp_path_factory.mktemp("cworker")
    src = d / "c_worker.c"
    src.write_text(C_WORKER)
    exe = d / "c_worker"
    subprocess.run(
        [
            cc,
            "-O1",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-I",
            os.path.join(REPO, "include"),
            str(src),
            "-o",
            str(exe),
            libpath,
            f"-Wl,-rpath,{os.path.dirname(libpath)}",
        ],
        check=True,
    )
    return str(exe)


@needs_numpy
@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="Linux only")
def test_a_c_worker_hands_a_python_worker_a_tensor_through_shared_memory(c_worker_exe):
    n = 1 << 18  # 2 MiB of float64: over the 1 MiB threshold
    want = 0.5 * n * (n - 1) / 2
    with rask.LocalCluster(n_workers=0) as cluster, rask.Client(cluster, timeout=30) as client:
        proc = subprocess.Popen([c_worker_exe, cluster.address], stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().startswith("ready")
            with rask.Worker(cluster, functions={"py_check": py_check}, name="py"):
                assert client.wait_for_workers(2, timeout=10) == 2
                big = client.submit("c_big", n)  # only the C worker has c_big
                assert memfd_ranges() == [], "nothing mapped before"
                total, mapped = client.submit("py_check", big).result(timeout=30)
                assert total == want
                assert mapped >= 8 * n, "the value came as the C worker's memory file, mapped here"
                # The C worker dies: this process's copy stays whole.
                proc.kill()
                proc.wait(timeout=10)
                again = client.submit("py_check", big, pure=False).result(timeout=30)
                assert again[0] == want and again[1] >= 8 * n
                del big
            # Released and the Python worker stopped: no mapping of a rask
            # memory file is left in this process.
            deadline = time.time() + 20
            while memfd_ranges() and time.time() < deadline:
                gc.collect()  # a task's lent argument array may sit in a cycle
                time.sleep(0.05)
            assert memfd_ranges() == []
        finally:
            proc.kill()
            proc.wait(timeout=10)

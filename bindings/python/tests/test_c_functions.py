"""C functions (callback mode) next to Python functions (pull mode)."""

import ctypes
import os
import shutil
import subprocess
import threading

import pytest
from conftest import REPO

import rask
from rask import ref, task

C_SOURCE = r"""
#include <rask.h>
#include <pthread.h>
#include <stdint.h>

/* times2(x): 2 * x for an int; counts its calls in *(int64_t *)user_data. */
rask_status times2(void *user_data, const rask_value *const *args, size_t nargs,
                   rask_value **result, rask_error **err) {
    int64_t x;
    if (nargs != 1) {
        *err = rask_error_new(RASK_ERR_TASK_FAILED, "times2 takes 1 argument");
        return RASK_ERR_TASK_FAILED;
    }
    if (rask_value_get_int(args[0], &x, err) != RASK_OK)
        return RASK_ERR_TASK_FAILED;
    if (user_data)
        __atomic_fetch_add((int64_t *)user_data, 1, __ATOMIC_SEQ_CST);
    *result = rask_value_int(2 * x);
    return RASK_OK;
}

/* thread_id(): an id of the calling thread. */
rask_status thread_id(void *user_data, const rask_value *const *args, size_t nargs,
                      rask_value **result, rask_error **err) {
    (void)user_data; (void)args; (void)nargs; (void)err;
    *result = rask_value_uint((uint64_t)pthread_self());
    return RASK_OK;
}

rask_status always_fails(void *user_data, const rask_value *const *args, size_t nargs,
                         rask_value **result, rask_error **err) {
    (void)user_data; (void)args; (void)nargs; (void)result;
    *err = rask_error_new(RASK_ERR_TASK_FAILED, "no luck in C");
    return RASK_ERR_TASK_FAILED;
}
"""


@pytest.fixture(scope="module")
def clib(tmp_path_factory):
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.skip("no C compiler")
    libpath = rask.library_path()
    d = tmp_path_factory.mktemp("clib")
    src = d / "cb.c"
    src.write_text(C_SOURCE)
    out = d / "libcb.so"
    libdir = os.path.dirname(os.path.abspath(libpath))
    subprocess.run(
        [
            cc,
            "-shared",
            "-fPIC",
            "-O1",
            "-I",
            os.path.join(REPO, "include"),
            str(src),
            "-o",
            str(out),
            os.path.abspath(libpath),
            f"-Wl,-rpath,{libdir}",
            "-lpthread",
        ],
        check=True,
    )
    return ctypes.CDLL(str(out))


def test_c_function_with_user_data(clib):
    calls = ctypes.c_int64(0)
    g = rask.Graph()
    for i in range(100):
        g.add_task(f"t{i}", "times2", i)
    g.add_task("s", "sum", [rask.Ref(f"t{i}") for i in range(100)])
    f = rask.CFunction(clib.times2, ctypes.addressof(calls))
    assert rask.compute(g, "s", functions={"times2": f}) == 2 * sum(range(100))
    assert calls.value == 100


def test_c_functions_run_on_rask_threads_while_python_pulls(clib):
    g = rask.Graph()
    for i in range(20):
        g.add_task(f"c{i}", "thread_id", i)
        g.add_task(f"p{i}", "py_thread", rask.Ref(f"c{i}"))
    g.add_task("all", "list", *[rask.Ref(f"p{i}") for i in range(20)])

    def py_thread(c_tid):
        return [c_tid, threading.get_ident()]

    out = rask.compute(
        g, "all", functions={"thread_id": rask.CFunction(clib.thread_id), "py_thread": py_thread}, threads=2
    )
    c_threads = {c for c, _ in out}
    py_threads = {p for _, p in out}
    assert py_threads == {threading.get_ident()}
    assert threading.get_ident() not in c_threads  # C ran on rask's threads


def test_c_function_failure_is_a_task_error(clib):
    g = rask.Graph({"a": task("fails", 1), "b": task("inc", ref("a"))})
    with pytest.raises(rask.TaskError, match="no luck in C") as e:
        rask.compute(g, "b", functions={"fails": rask.CFunction(clib.always_fails)})
    assert e.value.key == "a" and e.value.func == "fails"
    assert e.value.exception is None


def test_cfunction_arguments():
    with pytest.raises(ValueError):
        rask.CFunction(0)
    g = rask.Graph({"a": task("x", 1)})
    with pytest.raises(TypeError):
        rask.compute(g, "a", functions={"x": 3})

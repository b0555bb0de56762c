"""Large numpy arrays and bytes cross into and out of rask without a copy:
rask's tensor is the array's own memory (lent through this process's host,
held until rask releases it); a tensor comes back as a read-only array over
rask's memory that keeps the value alive. Small ones are still copied."""

import ctypes
import gc

import pytest
from conftest import needs_numpy

import rask
from rask import task
from rask import _host
from rask import _lib as L
from rask import values
from rask.errors import call
from rask.values import from_value, take_value, to_value

pytestmark = needs_numpy

BIG = 1 << 17  # elements: 1 MiB of float64, over values.ZERO_COPY_MIN


def tensor_address(v):
    data = ctypes.c_void_p()
    call(L.lib().value_tensor_info, v, None, None, None, ctypes.byref(data), None)
    return data.value


def held(obj):
    """Whether this process's host holds ``obj`` for rask."""
    h = _host.current()
    return h is not None and any(o is obj for o in h.objects.values())


def test_an_array_is_lent_and_released_when_rask_drops_it():
    import numpy as np

    a = np.arange(BIG, dtype=np.float64)
    v = to_value(a)
    assert tensor_address(v) == a.ctypes.data  # rask reads the array's own memory
    assert held(a)
    c = L.lib().value_clone(v)
    L.lib().value_free(v)
    assert held(a)  # the clone still needs it
    L.lib().value_free(c)
    assert not held(a)


def test_a_tensor_comes_back_as_a_read_only_view_that_keeps_the_value():
    import numpy as np

    a = np.arange(BIG, dtype=np.int32).reshape(256, -1)
    v = to_value(a)
    out = take_value(v)  # frees v: the view holds its own reference
    assert out.ctypes.data == a.ctypes.data  # no copy either way
    assert out.shape == a.shape and out.dtype == a.dtype
    assert not out.flags.writeable
    with pytest.raises(ValueError):
        out[0, 0] = 1
    assert held(a)
    view = out[3:5]
    del out
    gc.collect()
    assert held(a)  # a slice of the view still reads it
    assert int(view[1, 7]) == int(a[4, 7])
    del view
    gc.collect()
    assert not held(a)
    w = take_value(to_value(a)).copy()
    w[0, 0] = 42  # a copy is writable
    assert a[0, 0] == 0


def test_small_and_awkward_arrays_are_copied():
    import numpy as np

    small = np.arange(10, dtype=np.float64)
    v = to_value(small)
    assert tensor_address(v) != small.ctypes.data and not held(small)
    back = take_value(v)
    assert back.flags.writeable and back.tolist() == small.tolist()
    # Not C-contiguous: converted once, and the converted copy is lent.
    t = np.arange(BIG, dtype=np.float64).reshape(2, -1).T
    v = to_value(t)
    assert tensor_address(v) != t.ctypes.data
    np.testing.assert_array_equal(from_value(v), t)
    L.lib().value_free(v)


def test_the_threshold_turns_it_off(monkeypatch):
    import numpy as np

    monkeypatch.setattr(values, "ZERO_COPY_MIN", float("inf"))
    a = np.ones(BIG)
    v = to_value(a)
    assert tensor_address(v) != a.ctypes.data and not held(a)
    out = take_value(v)
    assert out.flags.writeable


def test_bytes_are_lent():
    b = bytes(range(256)) * 1024
    v = to_value(b)
    assert held(b)
    ptr, n = ctypes.c_void_p(), ctypes.c_size_t()
    call(L.lib().value_get_bytes, v, ctypes.byref(ptr), ctypes.byref(n))
    assert n.value == len(b) and ctypes.string_at(ptr, 16) == b[:16]
    assert take_value(v) == b
    assert not held(b)


def test_through_a_local_computation_nothing_is_copied():
    import numpy as np

    a = np.arange(BIG, dtype=np.float64)
    g = rask.Graph()
    g["x"] = task("identity", a)
    out = rask.compute(g, "x")
    assert out.ctypes.data == a.ctypes.data and not out.flags.writeable
    del out, g  # the graph holds the literal too
    gc.collect()
    assert not held(a)


def test_a_pulled_task_in_batches_gets_a_large_tensor_lent_not_copied():
    """rask_computation_take_tasks lends a large tensor argument (extension
    type 4): the Python function reads the array's own memory, read-only;
    a small one is copied into the batch (a new writable array). Nothing
    stays held afterwards."""
    import numpy as np

    a = np.arange(BIG, dtype=np.float64)
    small = np.arange(8, dtype=np.float64)
    seen = {}

    def look(big, little):
        seen["big"] = (big.ctypes.data == a.ctypes.data, big.flags.writeable)
        seen["small"] = (little.ctypes.data == small.ctypes.data, little.flags.writeable)
        return float(big.sum() + little.sum())

    g = rask.Graph()
    g["x"] = task(look, a, small)
    assert rask.compute(g, "x") == float(a.sum() + small.sum())
    assert seen == {"big": (True, False), "small": (False, True)}
    del g
    gc.collect()
    assert not held(a)  # the lent value was freed with the task's arguments


def test_scatter_and_gather_through_a_cluster():
    import numpy as np

    a = np.arange(BIG * 4, dtype=np.float64)
    with rask.LocalCluster(n_workers=1, threads_per_worker=1) as cluster, rask.Client(cluster) as client:
        f = client.scatter(a)
        out = f.result()
        np.testing.assert_array_equal(out, a)
        assert not out.flags.writeable
        (g,) = client.gather([f])
        np.testing.assert_array_equal(g, a)
        s = client.submit("sum", f).result()
        assert s == float(a.sum())
        del out, g
        gc.collect()
    # Once sent and the cluster gone, rask holds nothing of the array.
    assert not held(a)


def test_a_python_result_leaves_its_process_without_a_copy():
    """A Python function's result is a host value; where it must leave the
    process rask asks for its portable form: a large array is lent, not
    encoded."""
    import numpy as np

    h = _host.host()
    a = np.arange(BIG, dtype=np.float64)
    i = h.put(a)
    out = L.ValueP()
    err = L.ErrorP()
    assert h._serialize(None, i, ctypes.pointer(out), ctypes.pointer(err)) == L.OK
    assert tensor_address(out) == a.ctypes.data
    h.objects.pop(i)  # (as rask's release of the host value would)
    assert held(a)  # the portable form holds it now
    L.lib().value_free(out)
    assert not held(a)
    # Through a host value in a computation: a builtin gets the same memory.
    g = rask.Graph()
    g["a"] = task(lambda: np.arange(BIG, dtype=np.float64))
    g["s"] = task("sum", rask.ref("a"))
    assert rask.compute(g, "s") == float(np.arange(BIG, dtype=np.float64).sum())

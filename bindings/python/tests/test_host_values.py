"""Host values: a Python function's result stays the Python object inside
rask; it is converted only to leave the process (pickled when it has no
plain form) or for a builtin."""

import gc
import os
import subprocess
import sys
import weakref

import pytest
from conftest import REPO
from hostobj import Point

import rask
from rask import _host, ref, task


def test_consumers_in_this_process_get_the_very_object():
    made = []

    def make():
        made.append(Point(1, 2))
        return made[-1]

    def same(p, q):
        return p is q is made[-1]

    dsk = {"a": (make,), "b": (same, "a", "a"), "c": (lambda p: [p], "a")}
    a, b, c = rask.get(dsk, ["a", "b", "c"])
    assert a is made[0] and b is True and c[0] is made[0]
    # Plain data is not converted either: the list itself comes back.
    xs = [1.5, 2.5]
    assert rask.get({"x": (lambda: xs,), "y": (lambda v: v, "x")}, "y") is xs
    # One Python thread per task (no batches): the same.
    g = rask.Graph()
    g["a"] = task(make)
    g["b"] = task(same, ref("a"), ref("a"))
    with rask.Computation(g, ["a", "b"]) as comp:
        comp.work(threads=2)
        a, b = comp.results()
    assert b is True and a is made[-1]


def test_each_object_is_released_exactly_once():
    h = _host.host()
    gc.collect()
    before_released, before_held = h.released, len(h.objects)
    refs = []

    def make(i):
        p = Point(i, i)
        refs.append(weakref.ref(p))
        return p

    dsk = {f"p{i}": (make, i) for i in range(20)}
    dsk["n"] = (lambda *ps: sum(p.x for p in ps),) + tuple(f"p{i}" for i in range(20))
    assert rask.get(dsk, "n") == 190
    assert all(r() is None for r in refs)  # nothing keeps them alive: rask released them
    assert h.released - before_released == 21  # 20 points and the sum
    assert len(h.objects) == before_held


def test_a_builtin_gets_the_converted_value():
    g = rask.Graph()
    g["xs"] = task(lambda: (1, 2, 3.5))
    g["s"] = task("sum", ref("xs"))  # a builtin: gets [1, 2, 3.5]
    g["pt"] = task(lambda: Point(1, 2))
    assert rask.compute(g, "s") == 6.5
    g["bad"] = task("sum", ref("pt"))
    with pytest.raises(rask.TaskError, match=r"python-3\.\d+ object with no plain-data form"):
        rask.compute(g, "bad")


def test_portable_forms():
    assert _host.portable([1, {"a": (2, 3)}]) == rask.to_msgpack([1, {"a": [2, 3]}])
    packed = _host.portable(Point(3, 4))
    assert packed[0] in (0xC7, 0xC8, 0xC9)  # ext 8/16/32 holding a pickle
    assert rask.from_msgpack(packed) == Point(3, 4)
    other = _host.Packed("julia-1.5", b"\x01\x02")
    assert rask.from_msgpack(rask.to_msgpack(other)) == other  # kept as it is


WORKER = """
import sys, rask
from hostobj import Point
def make(x):
    return Point(x, x)
def grow(p):
    assert type(p) is Point, type(p)
    return Point(p.x + 1, p.y)
def same_here(p, q):
    return p is q
def make_lock():
    import threading
    return threading.Lock()
def locked(lock):
    return lock.locked()
fns = {'make': make, 'grow': grow, 'same_here': same_here, 'make_lock': make_lock, 'locked': locked}
w = rask.Worker(sys.argv[1], functions={sys.argv[2]: fns[sys.argv[2]]}, name=sys.argv[2])
print('ready', flush=True)
w.run()
"""


def test_an_object_crosses_two_python_worker_processes():
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([os.path.join(REPO, "bindings", "python"), os.path.dirname(__file__)]),
    )
    with rask.LocalCluster(n_workers=1) as cluster, rask.Client(cluster, timeout=10) as client:
        procs = [
            subprocess.Popen([sys.executable, "-c", WORKER, cluster.address, f], stdout=subprocess.PIPE, text=True, env=env)
            for f in ("make", "grow")
        ]
        try:
            for p in procs:
                assert p.stdout.readline().strip() == "ready"
            a = client.submit("make", 1)
            b = client.submit("grow", a)  # on the other process: pickled across
            c = client.submit("list", b)  # a builtin on a rask worker: gets no plain form
            assert b.result(timeout=20) == Point(2, 1)
            assert a.result(timeout=20) == Point(1, 1)
            e = c.exception(timeout=20)
            assert e is not None and "python-3." in str(e)
        finally:
            cluster.close()
            for p in procs:
                p.communicate(timeout=20)


def test_a_value_that_cannot_be_pickled_says_why_when_it_must_leave_its_process():
    """A result its worker process cannot pickle stays usable there; a client
    gathering it, and a task on another process that needs it, hear the
    pickling error itself (not "could not fetch")."""
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([os.path.join(REPO, "bindings", "python"), os.path.dirname(__file__)]),
    )
    with rask.LocalCluster(n_workers=1) as cluster, rask.Client(cluster, timeout=10) as client:
        procs = [
            subprocess.Popen([sys.executable, "-c", WORKER, cluster.address, f], stdout=subprocess.PIPE, text=True, env=env)
            for f in ("make_lock", "locked")
        ]
        try:
            for p in procs:
                assert p.stdout.readline().strip() == "ready"
            a = client.submit("make_lock")
            with pytest.raises(rask.DataError) as e:
                a.result(timeout=20)
            msg = str(e.value)
            assert "cannot be sent" in msg and "cannot pickle" in msg and "lock" in msg, msg
            assert "attempts" not in msg, msg
            # Another process's task that needs it fails with the reason.
            b = client.submit("locked", a)
            err = b.exception(timeout=20)
            assert isinstance(err, rask.TaskError), repr(err)
            assert "argument" in str(err) and "cannot pickle" in str(err), str(err)
            # Both keys stay usable: the same answer again, no hang.
            with pytest.raises(rask.DataError, match="cannot pickle"):
                client.gather([a], timeout=20)
        finally:
            cluster.close()
            for p in procs:
                p.communicate(timeout=20)

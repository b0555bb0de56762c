"""Dask's own collections computed by rask: dask.compute(x, scheduler=rask.get).

Each result is checked against Dask's own scheduler on the same collection.
"""

import operator
import os

import pytest

import rask

if not os.environ.get("CI"):  # scripts/test.sh installs dask: in CI these tests never skip
    pytest.importorskip("dask.array")
    pytest.importorskip("dask.bag")
import dask  # noqa: E402
import dask.array as da  # noqa: E402
import dask.bag as db  # noqa: E402
import numpy as np  # noqa: E402
from dask import delayed  # noqa: E402
from dask._task_spec import Alias, DataNode, Dict, List, Task, TaskRef  # noqa: E402


def inc(x):
    return x + 1


def test_delayed_against_dask():
    @delayed
    def add(a, b):
        return a + b

    xs = [delayed(inc)(i) for i in range(20)]
    total = delayed(sum)(xs)
    pair = add(xs[3], total)
    ours = dask.compute(total, pair, xs, scheduler=rask.get)
    theirs = dask.compute(total, pair, xs, scheduler="sync")
    assert ours == theirs == (210, 214, list(range(1, 21)))


def test_values_stay_the_very_python_objects():
    class Box:  # neither msgpack nor picklable by name: never converted
        def __init__(self, v):
            self.v = v

    made = []

    @delayed
    def make(v):
        b = Box(v)
        made.append(b)
        return b

    @delayed
    def same(a, b):
        return (a, b)

    a = make(1)
    (pair,) = dask.compute(same(a, a), scheduler=rask.get)
    assert pair[0] is pair[1] is made[0]
    assert isinstance(pair, tuple)  # not turned into a list


def test_bag_against_dask():
    b = db.from_sequence(range(1000), npartitions=9).map(lambda v: v * 3).filter(lambda v: v % 2 == 0)
    by_rest = b.map(lambda v: (v % 5, v)).foldby(0, lambda t, x: t + x[1], 0, operator.add, 0)
    colls = (b.sum(), b.count(), b.frequencies(), by_rest)
    ours = dask.compute(*colls, scheduler=rask.get)
    theirs = dask.compute(*colls, scheduler="sync")
    assert ours[0] == theirs[0] == 3 * sum(range(0, 1000, 2))
    assert ours[1] == theirs[1] == 500
    assert sorted(ours[2]) == sorted(theirs[2])
    assert sorted(ours[3]) == sorted(theirs[3])
    assert b.compute(scheduler=rask.get) == b.compute(scheduler="sync")


def test_small_array_against_dask():
    x = da.random.random((400, 300), chunks=(100, 70))
    exprs = (x.sum(axis=0), x.T.dot(x), (x + 1)[::3, 5:].mean(), da.linalg.qr(x.rechunk({1: -1}))[1])
    ours = dask.compute(*exprs, scheduler=rask.get)
    theirs = dask.compute(*exprs, scheduler="sync")
    for o, t in zip(ours, theirs):
        np.testing.assert_allclose(o, t, rtol=1e-10)
    assert x.persist(scheduler=rask.get).chunks == x.chunks


def test_the_seed_expression_4000_squared_in_1000_squared_chunks():
    x = da.random.random((4000, 4000), chunks=(1000, 1000))
    y = (x.dot(x.T + 1) - x.mean()).std()
    (ours,) = dask.compute(y, scheduler=rask.get)
    (theirs,) = dask.compute(y, scheduler="threads")
    assert ours == pytest.approx(theirs, rel=1e-12)
    assert ours > 0


def test_task_spec_dicts_and_old_tuple_graphs():
    # dask._task_spec objects, given directly: Task, Alias, DataNode, List, Dict, tuple keys.
    dsk = {
        ("x", 0): DataNode(("x", 0), 10),
        ("x", 1): DataNode(("x", 1), 20),
        "s": Task("s", operator.add, TaskRef(("x", 0)), TaskRef(("x", 1))),
        "l": Task("l", list, List(TaskRef("s"), TaskRef(("x", 0)), 7)),
        "d": Task("d", dict, Dict(a=TaskRef("s"), b=3)),
        "alias": Alias("alias", "s"),
    }
    assert rask.get(dsk, ["s", "l", "d", "alias"]) == (30, [30, 10, 7], {"a": 30, "b": 3}, 30)
    assert rask.get(dsk, ("x", 1)) == 20
    assert rask.get(dsk, "s") == dask.get(dsk, "s")
    # An old tuple graph, read with Dask's rules.
    old = {"a": 1, "b": (inc, "a"), "c": (operator.add, "b", (inc, "b"))}
    old.update({"e": (sum, ["a", "b", "c"]), "f": "c"})
    assert rask.get_dask(old, ["c", "e", "f"]) == dask.get(old, ["c", "e", "f"]) == (5, 8, 5)
    # rask.get of what a collection's __dask_graph__() gives (the second example).
    arr = da.arange(10, chunks=3).sum()
    (key,) = arr.__dask_keys__() if isinstance(arr.__dask_keys__(), list) else [arr.__dask_keys__()]
    assert rask.get(dict(arr.__dask_graph__()), key) == 45
    assert rask.get(arr.__dask_graph__(), key) == 45


def test_keys_keep_dasks_names_and_errors_stay_dasks():
    def boom(v):
        raise ZeroDivisionError(f"no {v}")

    bad = delayed(boom, pure=True)(1, dask_key_name=("boom", 3))
    with pytest.raises(ZeroDivisionError, match="no 1") as e:
        dask.compute(delayed(inc)(bad), scheduler=rask.get)
    assert "('boom', 3)" in "".join(getattr(e.value, "__notes__", []))
    # The names rask knows the keys by.
    nodes = {("boom", 3): DataNode(("boom", 3), 1), "k": DataNode("k", 2)}
    state = rask.dask_spec._DaskComputation(nodes, [("boom", 3), "k"])
    assert state.wanted == ["('boom', 3)", "k"]


def test_values_are_dropped_when_no_task_needs_them():
    dsk = {
        "a": DataNode("a", [1]),
        "b": Task("b", len, TaskRef("a")),
        "c": Task("c", inc, TaskRef("b")),
        "d": Task("d", operator.add, TaskRef("b"), TaskRef("c")),
    }
    state = rask.dask_spec._DaskComputation(dsk, ["d"])
    for name in ["a", "b", "c"]:
        state.run(name)
    assert set(state.store) == {"b", "c"}  # "a" was needed by "b" only
    state.run("d")
    assert state.store == {"d": 3}


def test_bad_dask_graphs():
    with pytest.raises(rask.GraphError, match="depends on 'nosuch', which is not in the graph"):
        rask.get({"a": Task("a", inc, TaskRef("nosuch"))}, "a")
    with pytest.raises(rask.GraphError, match="not in the graph"):
        rask.get({"a": DataNode("a", 1)}, "b")
    with pytest.raises(rask.GraphError, match="both named"):
        s = Task("s", operator.add, TaskRef(1), TaskRef("1"))
        rask.get({1: DataNode(1, 1), "1": DataNode("1", 2), "s": s}, "s")
    with pytest.raises(TypeError, match="functions="):
        rask.get({"a": DataNode("a", 1)}, "a", functions={"f": inc})


def test_num_workers_and_pullers(monkeypatch):
    x = db.from_sequence(range(100), npartitions=10).map(inc).sum()
    # By default as many pulling threads as dask.threaded's pool: the CPUs
    # this process may use (dask.system.CPU_COUNT), not os.cpu_count().
    import threading

    import dask.system

    seen = set()

    def where(v):
        seen.add(threading.get_ident())
        return v

    y = db.from_sequence(range(40), npartitions=20).map(where).map(inc).sum()
    monkeypatch.setattr(dask.system, "CPU_COUNT", 1)
    assert dask.compute(y, scheduler=rask.get) == (sum(range(1, 41)),)
    assert seen == {threading.get_ident()}  # one puller: this thread
    monkeypatch.undo()
    assert dask.compute(x, scheduler=rask.get, num_workers=1) == (5050,)
    assert dask.compute(x, scheduler=rask.get, pullers=3, threads=1) == (5050,)

"""The Dask-style dict spec: rask.get and compute(dict, ...)."""

import pytest

import rask


def inc(x):
    return x + 1


def add(a, b):
    return a + b


def test_classic_graph_with_builtin_names():
    dsk = {"a": 1, "x": 10, "b": ("inc", "a"), "y": ("inc", "x"), "z": ("add", "b", "y")}
    assert rask.get(dsk, "z") == 13
    assert rask.get(dsk, ["z", "b"]) == (13, 2)
    assert rask.get(dsk, [["z"], "a"]) == ((13,), 1)
    assert rask.compute(dsk, "z") == 13
    assert rask.compute(dsk, ["z", "y"]) == [13, 11]


def test_classic_graph_with_python_callables():
    dsk = {"a": 1, "x": 10, "b": (inc, "a"), "y": (inc, "x"), "z": (add, "b", "y")}
    assert rask.get(dsk, "z") == 13


def test_the_brief_example_mixing_callables_and_names():
    dsk = {"a": 1, "b": (inc, "a"), "z": ("add", "b", "y"), "y": 10}
    assert rask.get(dsk, "z") == 12


def test_strings_that_are_not_keys_are_literals():
    dsk = {"a": "hello", "b": ("add", "a", " world"), "c": (lambda s: s.upper(), "b")}
    assert rask.get(dsk, "c") == "HELLO WORLD"


def test_lists_dicts_and_nested_tasks_are_traversed():
    dsk = {
        "a": 1,
        "b": 2,
        "s": ("sum", ["a", "b", 10]),
        "n": ("add", ("inc", "a"), ("mul", "b", 3)),
        "d": (lambda d: d["w"] * d["k"], {"w": "b", "k": 5}),
        "lst": ["a", "b", ["a", 7]],
        "alias": "s",
        "lit": (1, 2),  # a tuple that is not a task: a list
    }
    assert rask.get(dsk, ["s", "n", "d", "lst", "alias", "lit"]) == (13, 8, 10, [1, 2, [1, 7]], 13, [1, 2])


def test_tuple_keys_as_in_dask_arrays():
    dsk = {
        ("x", 0): 1,
        ("x", 1): 2,
        ("y", 0): ("add", ("x", 0), ("x", 1)),
        "total": ("sum", [("x", 0), ("y", 0)]),
    }
    assert rask.get(dsk, ("y", 0)) == 3
    assert rask.get(dsk, "total") == 4


def test_functions_by_name_and_threads():
    dsk = {"a": 4, "b": ("square", "a")}
    assert rask.get(dsk, "b", functions={"square": lambda v: v * v}, threads=1, pullers=2) == 16


def test_errors_through_the_dict_spec():
    with pytest.raises(rask.GraphError, match="->"):
        rask.get({"a": ("inc", "b"), "b": ("inc", "a")}, "a")
    with pytest.raises(rask.GraphError, match="missing"):
        rask.get({"a": 1}, "missing")
    with pytest.raises(rask.UnknownFunctionError, match="nosuch"):
        rask.get({"a": ("nosuch", 1)}, "a")
    with pytest.raises(rask.TaskError, match="ZeroDivisionError") as e:
        rask.get({"a": 0, "b": (lambda v: 1 / v, "a")}, "b")
    assert e.value.key == "b"
    with pytest.raises(TypeError):
        rask.get([("a", 1)], "a")


def test_map_of_many_python_tasks():
    n = 2000
    dsk = {f"x-{i}": i for i in range(n)}
    dsk.update({f"y-{i}": (inc, f"x-{i}") for i in range(n)})
    dsk["total"] = ("sum", [f"y-{i}" for i in range(n)])
    assert rask.get(dsk, "total") == sum(range(1, n + 1))

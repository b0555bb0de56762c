"""Building graphs and computing them with builtins."""

import pytest

import rask
from rask import Ref, Task, ref, task

CLASSIC_MSGPACK = bytes.fromhex(
    "82a57461736b7385a16181a576616c756501a17881a576616c75650aa16282a466756e63a3696e63a46172"
    "67739181a3726566a161a17982a466756e63a3696e63a4617267739181a3726566a178a17a82a466756e63"
    "a3616464a4617267739281a3726566a16281a3726566a179a76f75747075747391a17a"
)


def test_classic_graph(classic):
    assert rask.compute(classic, "z") == 13
    assert rask.compute(classic, ["z", "b", "y", "a"]) == [13, 2, 11, 1]
    assert classic.compute("z") == 13
    assert len(classic) == 5
    classic.validate()


def test_classic_graph_with_add_task_and_one_thread():
    with rask.Graph() as g:
        g.add_value("a", 1)
        g.add_value("x", 10)
        g.add_task("b", "inc", Ref("a"))
        g.add_task("y", "inc", Ref("x"))
        g.add_task("z", "add", Ref("b"), Ref("y"))
        assert rask.compute(g, "z", threads=1) == 13


def test_classic_graph_from_msgpack():
    with rask.Graph.from_msgpack(CLASSIC_MSGPACK) as g:
        assert g.outputs == ["z"]
        assert len(g) == 5
        assert g.compute() == [13]
        assert rask.compute(g, "y") == 11


def test_graph_from_a_mapping():
    g = rask.Graph({"a": 1, "b": task("inc", ref("a")), "c": task("mul", ref("b"), 3)})
    assert rask.compute(g, "c") == 6
    assert g.keys() == ["a", "b", "c"]
    assert "b" in g and "q" not in g


def test_literal_arguments_of_every_kind():
    g = rask.Graph()
    g["s"] = task("add", "ab", "cd")  # strings are literals here, never keys
    g["f"] = task("add", 1.5, 2)
    g["big"] = task("identity", 2**64 - 1)
    g["l"] = task("len", [1, 2, 3, {"k": "v"}])
    g["m"] = task("getitem", {"k": "v", "a": [1]}, "a")
    g["n"] = task("identity", None)
    assert rask.compute(g, ["s", "f", "big", "l", "m", "n"]) == ["abcd", 3.5, 2**64 - 1, 4, [1], None]


def test_nested_references_in_lists():
    g = rask.Graph()
    g["a"] = 1
    g["b"] = 2
    g["s"] = task("sum", [ref("a"), ref("b"), 5, [ref("a")][0]])
    g["l"] = task("list", [ref("a"), [ref("b"), "lit"]], 3)
    g["alias"] = ref("s")
    g["lst"] = [ref("a"), ref("b"), [ref("a")]]  # a list value with refs is computed
    g["plain"] = [1, 2, "a"]  # a plain list is a literal
    assert rask.compute(g, ["s", "l", "alias", "lst", "plain"]) == [
        9,
        [[1, [2, "lit"]], 3],
        9,
        [1, 2, [1]],
        [1, 2, "a"],
    ]


def test_dicts_with_references_and_inline_tasks():
    g = rask.Graph()
    g["w"] = 2.0
    g["d"] = {"weight": ref("w"), "n": 3, "nested": [ref("w")]}
    g["e"] = task("getitem", {"weight": ref("w")}, "weight")
    g["inline"] = task("add", task("inc", ref("w")), task("mul", 2, task("inc", 1)))
    assert rask.compute(g, ["d", "e", "inline"]) == [{"weight": 2.0, "n": 3, "nested": [2.0]}, 2.0, 7.0]
    # the extra keys are named after their task
    assert "inline~1" in g.keys()


def test_add_value_never_interprets():
    g = rask.Graph()
    with pytest.raises(TypeError):
        g.add_value("a", [Ref("b")])


def test_tuple_keys():
    g = rask.Graph()
    g[("x", 0)] = 5
    g[("x", 1)] = task("inc", ref(("x", 0)))
    assert rask.compute(g, ("x", 1)) == 6
    assert rask.compute(g, "('x', 1)") == 6
    with pytest.raises(TypeError):
        g[3] = 1


def test_duplicate_and_empty_keys_are_graph_errors():
    g = rask.Graph()
    g["a"] = 1
    with pytest.raises(rask.GraphError, match="'a'"):
        g["a"] = 2
    with pytest.raises(rask.GraphError):
        g.add_task("", "inc", 1)
    with pytest.raises(rask.GraphError):
        g.add_task("r", "inc", Ref(""))
    with pytest.raises(ValueError):
        g.add_task("q", "", 1)
    assert rask.compute(g, "a") == 1  # unchanged


def test_copy_is_independent(classic):
    c = classic.copy()
    c["w"] = task("mul", ref("z"), 2)
    assert rask.compute(c, "w") == 26
    with pytest.raises(rask.GraphError):
        rask.compute(classic, "w")
    assert len(c) == 6 and len(classic) == 5
    c.close()


def test_close_is_idempotent_and_closed_graphs_refuse():
    g = rask.Graph()
    g["a"] = 1
    g.close()
    g.close()
    with pytest.raises(rask.RaskError, match="closed"):
        g["b"] = 2
    with pytest.raises(rask.RaskError, match="closed"):
        rask.compute(g, "a")
    with rask.Graph() as h:
        h["a"] = 1
    assert "closed" in repr(h)


def test_a_computation_keeps_its_own_snapshot(classic):
    with rask.Computation(classic, "z") as comp:
        classic.close()  # freeing the graph does not affect the computation
        comp.work()
        assert comp.results() == 13
        assert comp.stats == rask.Stats(tasks=3, tasks_run=3, peak_live=comp.stats.peak_live)
        assert comp.done


def test_task_and_ref_objects():
    assert Ref("a") == ref("a") and hash(Ref("a")) == hash(ref("a"))
    assert "inc" in repr(Task("inc", Ref("a")))
    with pytest.raises(TypeError):
        Task(3)
    assert rask.is_builtin("inc") and not rask.is_builtin("nope")
    assert all(rask.is_builtin(b) for b in rask.BUILTINS)


def test_to_dot_and_visualize(tmp_path, classic):
    dot = classic.to_dot()
    assert dot.startswith("digraph rask {") and dot.endswith("}\n")
    assert dot.count("->") == 4  # a->b, x->y, b->z, y->z
    assert '"z\\nadd"' in dot and "shape=box" in dot
    p = tmp_path / "g.dot"
    assert classic.visualize(str(p)) == dot
    assert p.read_text() == dot
    svg = tmp_path / "g.svg"
    data = classic.visualize(str(svg))
    assert svg.read_bytes() == data and b"<svg" in data
    # every key drawn, as Graphviz wrote it
    for k in (b">a<", b">x<", b">b<", b">y<", b">z<"):
        assert k in data
    with pytest.raises(ValueError, match="not one of"):
        classic.visualize(str(tmp_path / "g.gif"))


def test_visualize_without_graphviz_says_so(tmp_path, classic, monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="needs Graphviz"):
        classic.visualize(str(tmp_path / "g.svg"))
    assert classic.visualize(format="dot").startswith("digraph")

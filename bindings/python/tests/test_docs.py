"""The Python examples of docs/python.md run, and print what they say."""

import contextlib
import io
import os
import re

import pytest
from conftest import REPO

DOC = os.path.join(REPO, "docs", "python.md")


def blocks():
    text = open(DOC, encoding="utf-8").read()
    return re.findall(r"```python\n(.*?)```", text, re.S)


def test_docs_examples_run():
    code = blocks()
    assert len(code) >= 4
    ns = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec("import time\nimport rask", ns)
        for i, block in enumerate(code):
            try:
                exec(compile(block, f"docs/python.md block {i}", "exec"), ns)
            except Exception as e:  # pragma: no cover - the message says which block
                pytest.fail(f"docs/python.md python block {i} failed: {e!r}\n{block}")
    printed = out.getvalue().splitlines()
    assert printed[:2] == ["22", "2"]  # the quick start
    assert "task 'b' (boom) failed: ValueError: bad input 41" in printed
    assert "127840000.0 [0, 2, 4]" in printed  # dask.compute(..., scheduler=rask.get)
    assert "[100, 101, 102, 103]" in printed  # a closure shipped to worker processes
    assert "160000.0" in printed and "320000.0" in printed  # Dask on a cluster
    # the cluster examples
    for line in (
        "13",
        "[1, 2, 3, 4, 5]",
        "(2, 3)",
        "15",
        "three 3",
        "True True",
        "[2, 3, 4, 12, 13, 14]",
        "boom ValueError: bad input 41 True",
        "ValueError",
        "<2>",
        "<7>",
    ):
        assert line in printed, line
    # rask.progress, printed to a file: its final bar, then the count
    assert any("100% Completed | 100/100" in line for line in printed)
    assert "100" in printed


def test_doc_claims_about_results():
    import rask
    from rask import Graph, Ref, ref, task

    g = Graph()
    g["a"] = 1
    g["x"] = 10
    g["b"] = task("inc", ref("a"))
    g.add_task("y", "inc", Ref("x"))
    g["z"] = task("add", ref("b"), ref("y"))
    g["s"] = task("sum", [ref("a"), ref("b"), 5])
    g["d"] = task(lambda d: d["w"] * 2, {"w": ref("z")})
    g["n"] = task("add", task("inc", ref("a")), 1)
    assert rask.compute(g, "z") == 13
    assert rask.compute(g, ["z", "s", "d"]) == [13, 8, 26]
    from operator import mul

    dsk = {
        "a": 1,
        ("x", 0): 10,
        "b": ("inc", "a"),
        "c": (mul, "b", ("x", 0)),
        "d": ("add", ("inc", "b"), 100),
        "e": ("sum", ["a", "b", "c"]),
        "f": (lambda o: o["k"], {"k": "e"}),
        "g": "a",
    }
    assert rask.get(dsk, "d") == 103
    assert rask.get(dsk, ["c", ["e", "g"]]) == (20, (23, 1))
    assert rask.get(dsk, "f") == 23

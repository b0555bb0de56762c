"""Python functions in pull mode."""

import threading
import time

import pytest

import rask
from rask import ref, task


def inc(x):
    return x + 1


def test_python_callables_in_a_graph(classic):
    classic["p"] = task(lambda b, y: b * y, ref("b"), ref("y"))
    classic["q"] = task(inc, ref("p"))
    assert rask.compute(classic, ["p", "q", "z"]) == [22, 23, 13]


def test_functions_by_name():
    g = rask.Graph()
    g["a"] = 3
    g["sq"] = task("square", ref("a"))
    g["s"] = task("add", ref("sq"), 1)  # a builtin after a Python function
    assert rask.compute(g, "s", functions={"square": lambda v: v * v}) == 10


def test_a_python_function_named_like_a_builtin_gets_its_own_name():
    g = rask.Graph()
    g["a"] = 1
    g["b"] = task(inc, ref("a"))  # qualname "inc" is a builtin's name
    g["c"] = task("inc", ref("b"))  # the builtin
    assert rask.compute(g, "c") == 3
    assert "inc#2" in g.functions


def test_registering_a_builtin_name_is_a_registry_error():
    g = rask.Graph()
    g["a"] = task("inc", 1)
    with pytest.raises(rask.RegistryError, match="inc"):
        rask.compute(g, "a", functions={"inc": inc})


def test_values_cross_both_ways():
    seen = []

    def record(*args):
        seen.append(args)
        return {"got": list(args), "bytes": b"\x00\xff", "big": 2**64 - 1}

    g = rask.Graph()
    g["a"] = [1, "two", None]
    g["r"] = task(record, ref("a"), {"k": 1.5}, b"raw", True)
    out = rask.compute(g, "r")
    assert seen == [([1, "two", None], {"k": 1.5}, b"raw", True)]
    assert out == {
        "got": [[1, "two", None], {"k": 1.5}, b"raw", True],
        "bytes": b"\x00\xff",
        "big": 2**64 - 1,
    }


def test_numpy_through_python_functions():
    np = pytest.importorskip("numpy")
    g = rask.Graph()
    g.add_value("a", np.arange(6, dtype=np.float32).reshape(2, 3))
    g["b"] = task(lambda a: a * 2, ref("a"))
    g["n"] = task("len", ref("b"))
    b, n = rask.compute(g, ["b", "n"])
    assert b.dtype == np.float32 and b.tolist() == [[0, 2, 4], [6, 8, 10]]
    assert n == 6


def test_map_of_10000_tasks_through_a_python_function():
    n = 10_000
    g = rask.Graph()
    for i in range(n):
        g.add_task(f"sq-{i}", "square", i)
    g.add_task("total", "sum", [rask.Ref(f"sq-{i}") for i in range(n)])
    calls = []

    def square(x):
        calls.append(x)
        return x * x

    total = rask.compute(g, "total", functions={"square": square})
    assert total == sum(i * i for i in range(n))
    assert sorted(calls) == list(range(n))


def test_two_pulling_threads():
    threads = set()
    lock = threading.Lock()
    running = [0, 0]  # now, most at once
    both = threading.Event()  # set once two tasks ran at the same time

    def slow(i):
        with lock:
            threads.add(threading.get_ident())
            running[0] += 1
            running[1] = max(running)
            if running[0] == 2:
                both.set()
        # Hold the task until the other thread is in one too (an event, not
        # a sleep: under load the other thread may take long to pull). The
        # timeout only bounds a failing run.
        both.wait(30)
        with lock:
            running[0] -= 1
        return i * 3

    g = rask.Graph()
    n = 40
    for i in range(n):
        g.add_task(f"t{i}", slow, i)
    g.add_task("sum", "sum", [rask.Ref(f"t{i}") for i in range(n)])
    assert rask.compute(g, "sum", pullers=2) == 3 * sum(range(n))
    assert len(threads) == 2, "both threads ran tasks"
    assert running[1] == 2, "the two threads ran tasks at the same time"


def test_pulling_from_threads_of_your_own():
    g = rask.Graph()
    for i in range(200):
        g.add_task(f"t{i}", "twice", i)
    g.add_task("s", "sum", [rask.Ref(f"t{i}") for i in range(200)])
    ran = {}

    def twice(x):
        ran[threading.current_thread().name] = ran.get(threading.current_thread().name, 0) + 1
        time.sleep(0.001)
        return 2 * x

    with rask.Computation(g, ["s"], functions={"twice": twice}, threads=2) as comp:
        ts = [threading.Thread(target=comp.work, name=f"mine-{i}") for i in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert comp.wait(timeout=5)
        assert comp.results() == [2 * sum(range(200))]
        assert comp.results() == [2 * sum(range(200))]  # again: new copies
        assert set(ran) == {"mine-0", "mine-1"}
        assert comp.stats.tasks == 201 and comp.stats.tasks_run == 201


def test_pull_step_by_step():
    g = rask.Graph()
    g["a"] = task("double", 21)
    with rask.Computation(g, "a", functions={"double": lambda v: 2 * v}) as comp:
        assert comp.wait(timeout=0.05) is False  # waits for us to pull
        assert not comp.done
        assert comp.pull(timeout=5) is True
        assert comp.pull(timeout=5) is False  # ended
        assert comp.wait(timeout=5) is True
        assert comp.results() == 42


def test_pull_times_out_with_none():
    gate = threading.Event()
    holding = threading.Event()

    def hold(x):
        holding.set()
        gate.wait(30)
        return x

    g = rask.Graph()
    g["b"] = task("hold", 1)
    g["a"] = task("f", ref("b"))
    with rask.Computation(g, "a", functions={"f": inc, "hold": hold}) as comp:
        t = threading.Thread(target=comp.pull)  # takes b and holds it
        t.start()
        assert holding.wait(30), "the other thread did not take b"
        assert comp.pull(timeout=0.05) is None  # a is not ready yet
        gate.set()
        t.join()
        assert comp.pull(timeout=5) is True  # a
        assert comp.pull(timeout=5) is False
        assert comp.results() == 2


def test_builtins_only_graph_through_the_pull_loop_computes_repeatedly(classic):
    # (How long it takes is for benches/, not a pass/fail test.)
    for _ in range(20):
        assert rask.compute(classic, "z") == 13


def test_cancel_and_close():
    g = rask.Graph()
    g["a"] = task("f", 1)
    comp = rask.Computation(g, "a", functions={"f": inc})
    comp.cancel()
    assert comp.pull(timeout=1) is False
    with pytest.raises(rask.CancelledError):
        comp.results()
    comp.close()
    comp.close()
    assert comp.pull() is False
    with pytest.raises(rask.StateError):
        comp.results()


def test_close_while_another_thread_pulls():
    g = rask.Graph()
    g["a"] = task("f", ref("b"))
    g["b"] = task("f", 1)
    gate = threading.Event()
    running = threading.Event()

    def f(x):
        running.set()
        gate.wait(30)
        return x

    comp = rask.Computation(g, "a", functions={"f": f})
    t = threading.Thread(target=comp.work)
    t.start()
    assert running.wait(30), "the worker thread did not start b"
    closer = threading.Thread(target=comp.close)
    closer.start()
    gate.set()
    closer.join(30)
    t.join(30)
    assert not closer.is_alive() and not t.is_alive()


def test_keyboard_interrupt_in_a_function_cancels_and_propagates():
    def interrupted(x):
        raise KeyboardInterrupt

    g = rask.Graph()
    g["a"] = task(interrupted, 1)
    g["b"] = task("inc", ref("a"))
    with pytest.raises(KeyboardInterrupt):
        rask.compute(g, "b")


def test_ctrl_c_while_waiting_reaches_python():
    import _thread

    g = rask.Graph()
    g["a"] = task("f", 1)
    with rask.Computation(g, "a", functions={"f": inc}) as comp:
        timer = threading.Timer(0.2, _thread.interrupt_main)
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            comp.wait()  # nobody pulls: waits until interrupted (or hangs)
        timer.join()


def test_a_result_that_is_no_rask_value_stays_a_python_object():
    class Opaque:
        pass

    made = []
    dsk = {"a": (lambda: 1,), "b": (lambda: made.append(Opaque()) or made[-1],), "c": (lambda a: a + 1, "a")}
    c, b = rask.get(dsk, ["c", "b"])
    assert c == 2 and b is made[0]


def test_batches_of_tasks_keep_every_value_kind():
    values = [None, True, -(2**63), 2**64 - 1, 1.5, "é", b"\x00", [1, [2.5]], {"k": [1]}, {(1, 2): "t"}]
    dsk = {f"v{i}": (lambda x: x, v) for i, v in enumerate(values)}
    dsk["all"] = (lambda *xs: list(xs),) + tuple(f"v{i}" for i in range(len(values)))
    assert rask.get(dsk, "all") == values

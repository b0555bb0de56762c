"""Tasks that submit tasks: rask.get_client() / rask.worker_client() inside
a task run by a rask.Worker, secede()/rejoin(), and recursive fib with one
task per call (fib(20): 21,891 tasks) on two workers with default threads
and on one worker with one thread, where a task waiting on its children
without seceding would wait on itself."""

import random
import threading

import pytest

import rask

T = 300  # seconds: only a bound on waits that should end much sooner


def fib(n):
    if n < 2:
        return n
    with rask.worker_client() as c:
        a = c.submit("fib", n - 1, pure=False)
        b = c.submit("fib", n - 2, pure=False)
        return a.result() + b.result()


@pytest.fixture
def cluster():
    with rask.LocalCluster(n_workers=1) as c:
        yield c


def test_fib_20_on_two_workers_with_default_threads(cluster):
    with rask.Worker(cluster, functions={"fib": fib}), rask.Worker(cluster, functions={"fib": fib}):
        with rask.Client(cluster) as client:
            assert client.submit("fib", 20, pure=False).result(timeout=T) == 6765


def test_fib_20_on_one_worker_with_one_thread(cluster):
    with rask.Worker(cluster, functions={"fib": fib}, nthreads=1) as w:
        with rask.Client(cluster) as client:
            assert client.submit("fib", 20, pure=False).result(timeout=T) == 6765
        assert w.tasks_run == 21891


def parent(n):
    """Submits through get_client(), passes a future on, secedes by hand."""
    c = rask.get_client()
    assert c is rask.get_client(), "one client for the worker's tasks"
    f = c.submit("inc", n)
    g = c.submit("add", f, 10)  # a future as an argument
    rask.secede()
    rask.secede()  # again: nothing
    value = g.result()
    rask.rejoin()
    rask.rejoin()  # again: nothing
    return value


def test_get_client_secede_rejoin_by_hand(cluster):
    with rask.Worker(cluster, functions={"parent": parent}, nthreads=1):
        with rask.Client(cluster) as client:
            assert client.submit("parent", 5).result(timeout=T) == 16


def seceding(kind):
    rask.secede()
    rask.rejoin()
    return 42 if kind == "int" else {"a": [1, 2]}


def test_a_seceded_tasks_scalar_result_is_a_plain_value(cluster):
    """A task that seceded ends through its own rask_task: a scalar result
    is handed back as a plain value (the scheduler forwards it inline; no
    fetch from the worker), another object stays the Python object."""
    from rask import _host

    with rask.Worker(cluster, functions={"seceding": seceding}, nthreads=1):
        with rask.Client(cluster) as client:
            before = len(_host.host().objects)
            assert client.submit("seceding", "int", pure=False).result(timeout=T) == 42
            assert len(_host.host().objects) == before, "a host value was made for an int"
            f = client.submit("seceding", "obj", pure=False)
            assert f.result(timeout=T) == {"a": [1, 2]}
            assert len(_host.host().objects) == before + 1, "the object result is not a host value"


def test_outside_a_task_they_say_so():
    for f, name in ((rask.secede, "secede"), (rask.rejoin, "rejoin")):
        with pytest.raises(ValueError, match=rf"rask.{name}\(\): not inside a task run by a rask.Worker"):
            f()
    with pytest.raises(ValueError, match="worker_client"):
        with rask.worker_client():
            pass


def test_a_seceded_task_frees_its_thread_for_others(cluster):
    # One thread: the waiter secedes and waits on an Event that a second
    # task (which needs the thread) sets.
    started = threading.Event()

    def waiter():
        rask.secede()
        started.set()
        rask.Event("go").wait(timeout=T)
        rask.rejoin()
        return "waited"

    def setter():
        rask.Event("go").set()
        return "set"

    with rask.Worker(cluster, functions={"waiter": waiter, "setter": setter}, nthreads=1):
        with rask.Client(cluster) as client:
            w = client.submit("waiter")
            assert started.wait(T)
            s = client.submit("setter")
            assert s.result(timeout=T) == "set"
            assert w.result(timeout=T) == "waited"


# ------------------------------------------------ seed pattern: a search as a task


def rosenbrock(x, y):
    return (1 - x) ** 2 + 100 * (y - x * x) ** 2


START = (-1.5, 2.0)


def random_search(seed, steps, n, evaluate):
    """Random search for the Rosenbrock minimum (1, 1): each step scores
    ``n`` random points around the best so far (``evaluate(points)``),
    moves to the best of them if it is better, and widens (x1.5) or
    narrows (x0.6) the step after a success or a failure. Deterministic for
    a seed, however ``evaluate`` computes the scores."""
    rng = random.Random(seed)
    best, best_score, scale = START, rosenbrock(*START), 0.5
    for _ in range(steps):
        points = [(best[0] + rng.gauss(0, scale), best[1] + rng.gauss(0, scale)) for _ in range(n)]
        scores = evaluate(points)
        i = min(range(n), key=scores.__getitem__)
        if scores[i] < best_score:
            best, best_score, scale = points[i], scores[i], scale * 1.5
        else:
            scale *= 0.6
    return [best[0], best[1], best_score]


def search(seed, steps, n):
    """The search itself runs as a task: each step's points are tasks it
    submits through its worker's client, and it waits on them seceded."""
    with rask.worker_client() as c:
        return random_search(
            seed, steps, n, lambda ps: c.gather([c.submit("rosenbrock", x, y, pure=False) for x, y in ps])
        )


def test_the_rosenbrock_search_runs_as_a_task_submitting_its_steps(cluster):
    functions = {"search": search, "rosenbrock": rosenbrock}
    with rask.Worker(cluster, functions=functions, nthreads=1) as w:
        with rask.Client(cluster) as client:
            found = client.submit("search", 7, 40, 8, pure=False).result(timeout=T)
        # 1 search + 40 steps x 8 points, on one thread: the search gave its
        # slot to its steps.
        assert w.tasks_run == 1 + 40 * 8
    # The same search computed here, point by point, finds the same point.
    assert found == random_search(7, 40, 8, lambda ps: [rosenbrock(x, y) for x, y in ps])
    assert found[2] < rosenbrock(*START) / 100

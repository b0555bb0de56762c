"""Tasks that submit tasks: rask.get_client() / rask.worker_client() inside
a task run by a rask.Worker, secede()/rejoin(), and recursive fib with one
task per call (fib(20): 21,891 tasks) on two workers with default threads
and on one worker with one thread, where a task waiting on its children
without seceding would wait on itself."""

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

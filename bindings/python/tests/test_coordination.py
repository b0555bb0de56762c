"""Coordination objects held by the scheduler (rask.Queue, Variable, Lock,
Semaphore, Event, Pub/Sub, datasets, fire_and_forget) from clients and
from tasks of Python workers, with the seed patterns: a producer/consumer
pipeline stopped by a Variable, and a Lock-protected counter across 8
concurrent tasks; and a worker killed with SIGKILL while holding a lock."""

import os
import signal
import subprocess
import sys
import textwrap
import threading

import pytest
from conftest import REPO

import rask

T = 30  # seconds: only a bound on waits that should end much sooner


@pytest.fixture
def cluster():
    with rask.LocalCluster(n_workers=1) as c:
        yield c


@pytest.fixture
def client(cluster):
    with rask.Client(cluster) as c:
        yield c


def test_queue_values_futures_maxsize_and_timeouts(client):
    q = rask.Queue("jobs", maxsize=2)  # client=None: the open client
    assert q.client is client
    q.put(1)
    f = client.submit("inc", 41)
    q.put(f)
    with pytest.raises(TimeoutError, match=r"queue 'jobs' is full \(maxsize 2\).*0.05 s"):
        q.put(3, timeout=0.05)
    assert q.qsize() == 2
    del f  # the queue keeps the key alive
    assert q.get(timeout=T) == 1
    g = q.get(timeout=T)
    assert isinstance(g, rask.Future) and g.result(timeout=T) == 42
    with pytest.raises(TimeoutError, match=r"queue 'jobs': nothing to get within 0.02 s"):
        q.get(timeout=0.02)
    q.put("a")
    q.put("b")
    assert q.get(batch=True) == ["a", "b"]
    with pytest.raises(rask.InvalidArgumentError, match="queue name is empty"):
        rask.Queue("", client=client)


def test_variable_event_semaphore_lock(client):
    v = rask.Variable("x", client=client)
    with pytest.raises(TimeoutError, match=r"variable 'x'.*0.03 s"):
        v.get(timeout=0.03)
    v.set({"a": [1, 2]})
    assert rask.Variable("x").get(timeout=T) == {"a": [1, 2]}
    v.delete()

    e = rask.Event("go")
    assert not e.is_set()
    waiter = threading.Thread(target=lambda: results.append(rask.Event("go").wait(timeout=T)))
    results = []
    waiter.start()
    e.set()
    waiter.join()
    assert results == [True] and e.is_set()
    e.clear()
    assert not e.wait(timeout=0.01)

    s = rask.Semaphore(max_leases=2, name="pool")
    assert s.acquire() and s.acquire()
    assert not rask.Semaphore(max_leases=2, name="pool").acquire(timeout=0.02)
    s.release()
    s.release()
    with pytest.raises(RuntimeError):
        s.release()

    lock = rask.Lock("L")
    with lock:
        assert lock.locked()
        assert not rask.Lock("L").acquire(blocking=False)
    assert not lock.locked()


def test_datasets_survive_the_publisher_and_pub_sub(cluster):
    with rask.Client(cluster) as a:
        a.publish_dataset(two=a.submit("inc", 1), name_only=7)
        with pytest.raises(rask.ProtocolError, match="already published"):
            a.publish_dataset(two=0)
    with rask.Client(cluster) as b:
        assert b.list_datasets() == ["name_only", "two"]
        assert b.get_dataset("two").result(timeout=T) == 2
        assert b.get_dataset("name_only") == 7
        b.unpublish_dataset("two")
        with pytest.raises(KeyError):
            b.get_dataset("two")
        assert b.get_dataset("two", default=None) is None

        sub = rask.Sub("news", client=b)
        rask.Pub("news", client=b).put({"n": 1})
        assert sub.get(timeout=T) == {"n": 1}
        with pytest.raises(TimeoutError, match="topic 'news'"):
            sub.get(timeout=0.01)

        f = b.submit("inc", 100)
        rask.fire_and_forget(f)


def test_get_client_outside_any_client_or_task(monkeypatch):
    # As in a fresh process: no client was made, and this is not a task.
    monkeypatch.setattr(rask.coordination, "_CLIENTS", [])
    with pytest.raises(ValueError, match="not a task run by a rask.Worker"):
        rask.get_client()
    with pytest.raises(ValueError, match="no rask.Client is open"):
        rask.Queue("q")


# ------------------------------------------------ seed patterns, in tasks


def produce(n):
    q = rask.Queue("pipeline")
    for i in range(n):
        q.put(i)
    rask.Variable("stop").set(True)
    return n


def consume():
    q = rask.Queue("pipeline")
    stop = rask.Variable("stop")
    total = 0
    while True:
        try:
            total += q.get(timeout=0.05)
        except TimeoutError:
            try:
                if stop.get(timeout=0) and q.qsize() == 0:
                    return total
            except TimeoutError:
                pass


def bump(i):
    with rask.Lock("counter-lock"):
        v = rask.Variable("counter")
        n = v.get(timeout=T)
        v.set(n + 1)
    return i


def test_producer_consumer_through_a_queue_with_a_stop_flag(cluster, client):
    with rask.Worker(cluster, functions={"produce": produce, "consume": consume}, nthreads=2):
        c = client.submit(consume)
        p = client.submit(produce, 100)
        assert p.result(timeout=T) == 100
        assert c.result(timeout=T) == sum(range(100))


def test_a_lock_protected_counter_across_8_concurrent_tasks(cluster, client):
    rask.Variable("counter").set(0)
    with rask.Worker(cluster, functions={"bump": bump}, nthreads=4):
        fs = client.map(bump, range(8))
        assert sorted(f.result(timeout=T) for f in fs) == list(range(8))
    assert rask.Variable("counter").get(timeout=T) == 8


# ------------------------------------------------ a killed worker's lease

HOLDER = textwrap.dedent(
    """
    import sys, time, rask

    def hold():
        assert rask.Lock("held-lock").acquire(timeout=30)
        rask.Event("lock-taken").set()
        time.sleep(600)

    w = rask.Worker(sys.argv[1], functions={"hold": hold})
    print("ready", flush=True)
    w.run()
    """
)


def test_the_lease_of_a_sigkilled_worker_comes_back(cluster, client):
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "bindings", "python"))
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, cluster.address], stdout=subprocess.PIPE, env=env, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        holding = client.submit("hold", pure=False)  # kept: a released task would not run
        assert rask.Event("lock-taken").wait(timeout=T)
        assert not rask.Lock("held-lock").acquire(timeout=0)
        assert holding.status == "pending"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=T)
        # The killed process's connections close: its lease is released.
        lock = rask.Lock("held-lock")
        assert lock.acquire(timeout=T)
        lock.release()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ------------------------------------------------ Ctrl-C during a wait

WAITER = textwrap.dedent(
    """
    import sys, threading, time, rask

    c = rask.Client(sys.argv[1])
    main = threading.main_thread().ident

    def announce():
        # "waiting" once the main thread is inside the wait's C call.
        while sys._current_frames()[main].f_code.co_name != "_coord_call":
            time.sleep(0.01)
        print("waiting", flush=True)

    threading.Thread(target=announce, daemon=True).start()
    try:
        rask.Queue("never-filled").get()  # timeout=None
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    c.close()
    """
)


def test_ctrl_c_stops_a_wait_without_timeout(cluster):
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "bindings", "python"))
    proc = subprocess.Popen(
        [sys.executable, "-c", WAITER, cluster.address], stdout=subprocess.PIPE, env=env, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "waiting"
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=T)  # a wait blocked in C would not end
        assert out.strip() == "interrupted" and proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

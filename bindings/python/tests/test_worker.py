"""rask.Worker: Python functions served to a cluster in pull mode, next to
rask's own workers (LocalCluster); C functions on LocalCluster workers."""

import ctypes
import os
import subprocess
import sys
import threading
import time

import pytest
from conftest import REPO, needs_numpy
from test_c_functions import clib  # noqa: F401 - the compiled C functions fixture

import rask
from rask import ref, task


def label(x):
    """A function only the Python worker offers."""
    return f"<{x}>"


def shout(s, n):
    return s.upper() + "!" * n


def boom(x):
    raise ValueError(f"bad input {x}")


@pytest.fixture
def cluster():
    with rask.LocalCluster(n_workers=2) as c:
        yield c


@pytest.fixture
def client(cluster):
    with rask.Client(cluster, timeout=5) as c:
        yield c


def test_a_python_worker_next_to_rask_workers(cluster, client):
    with rask.Worker(cluster, functions={"label": label, "shout": shout}, name="py") as w:
        assert w.running and w.name == "py" and w.address.startswith("tcp://")
        assert w.scheduler_address == cluster.address
        assert client.wait_for_workers(3, timeout=5) == 3
        # one graph using both: builtins on any worker, label and shout only on ours
        g = rask.Graph()
        g["a"] = 1
        g["b"] = task("inc", ref("a"))  # 2, a builtin
        g["c"] = task("label", ref("b"))  # "<2>", Python
        g["d"] = task("shout", ref("c"), ref("b"))  # "<2>!!", Python
        g["e"] = task("list", ref("d"), task("add", ref("b"), 40))
        assert client.compute(g, "e").result(timeout=10) == ["<2>!!", 42]
        # submit by name, or by the served callable, with futures as arguments
        f = client.submit(label, client.submit("inc", 41))
        assert f.result(timeout=10) == "<42>"
        assert client.submit("shout", "hi", 3).result(timeout=10) == "HI!!!"
        assert client.gather(client.map(label, range(5))) == [f"<{i}>" for i in range(5)]
        assert w.tasks_run >= 9 and w.tasks_failed == 0
    assert not w.running and w.stop_reason


def test_run_blocks_until_stopped(cluster, client):
    w = rask.Worker(cluster.address, functions=[label])  # a list: named by __name__
    reasons = []
    t = threading.Thread(target=lambda: reasons.append(w.run()))
    t.start()
    assert client.submit("label", 7).result(timeout=10) == "<7>"
    with pytest.raises(RuntimeError, match="already serving"):
        w.run()
    w.stop()
    t.join(5)
    assert not t.is_alive() and reasons and reasons[0] == w.stop_reason
    assert w.wait(0) is True
    w.close()
    w.close()  # idempotent


def test_an_exception_fails_the_task_with_its_type_and_message(client, cluster):
    with rask.Worker(cluster, functions={"boom": boom, "label": label}):
        f = client.submit("boom", 3)
        with pytest.raises(rask.RemoteTaskError) as info:
            f.result(timeout=10)
        e = info.value
        assert e.func == "boom" and e.key == f.key == e.failed_key
        assert e.task_message == "ValueError: bad input 3"
        assert isinstance(e.__cause__, ValueError) and e.exception is e.__cause__
        assert e.__cause__.__traceback__ is not None
        after = client.submit("label", f)
        e2 = after.exception(timeout=10)
        assert e2.failed_key == f.key and isinstance(e2.__cause__, ValueError)
        # the worker goes on serving
        assert client.submit("label", 1).result(timeout=10) == "<1>"
        # a result that is no rask value stays an object, pickled to leave
        with rask.Worker(cluster, functions={"obj": lambda: object()}):
            assert type(client.submit("obj").result(timeout=10)) is object


def test_the_remote_traceback_reaches_the_client(client, cluster):
    with rask.Worker(cluster, functions={"boom": boom}) as w:
        e = client.submit("boom", 5).exception(timeout=10)
        assert e.exception_type == "ValueError"
        # the traceback is the worker's, down to the line that raised
        assert e.remote_traceback.startswith("Traceback (most recent call last):")
        assert 'in boom\n    raise ValueError(f"bad input {x}")' in e.remote_traceback
        assert e.remote_traceback.rstrip().endswith("ValueError: bad input 5")
        assert e.worker == w.address and isinstance(e.__cause__, ValueError)
        # a dependent's error carries the failed task's traceback
        e2 = client.submit("inc", client.submit("boom", 6)).exception(timeout=10)
        assert e2.exception_type == "ValueError" and "bad input 6" in e2.remote_traceback
    # a builtin's error has neither
    e3 = client.submit("inc", "x").exception(timeout=10)
    assert e3.exception_type is None and e3.remote_traceback is None


def test_the_remote_traceback_of_a_worker_in_another_process(cluster, client, tmp_path):
    script = tmp_path / "etl_worker.py"
    script.write_text(
        "import sys, rask\n"
        "def parse(x):\n"
        "    return int(x)\n"
        "w = rask.Worker(sys.argv[1], functions={'parse': parse}, name='tb-subprocess')\n"
        "print('ready', flush=True)\n"
        "w.run()\n"
    )
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "bindings", "python"))
    proc = subprocess.Popen(
        [sys.executable, str(script), cluster.address], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        with pytest.raises(rask.RemoteTaskError) as info:
            client.submit("parse", "4x2").result(timeout=10)
        e = info.value
        # no exception object crosses processes: the text does
        assert e.exception is None and e.__cause__ is None
        assert e.exception_type == "ValueError"
        assert 'etl_worker.py", line 3, in parse\n    return int(x)' in e.remote_traceback
        assert "rask" not in e.remote_traceback.split("\n")[1]  # starts at the function
        text = str(e)
        assert "invalid literal for int()" in text
        assert "Remote traceback (on tcp://" in text and "return int(x)" in text
    finally:
        cluster.close()
        proc.communicate(timeout=10)


def test_a_reused_key_never_gets_a_closed_clusters_exception():
    with rask.LocalCluster(n_workers=1, functions={"boom": boom}) as c1, rask.Client(c1, timeout=5) as cl:
        e1 = cl.submit("boom", 1, key="reused").exception(timeout=10)
        assert isinstance(e1.__cause__, ValueError) and "bad input 1" in str(e1.__cause__)
    # the same key fails on a new cluster, in a builtin: no Python exception
    # is its cause, and nothing of the old one shows
    with rask.LocalCluster(n_workers=1) as c2, rask.Client(c2, timeout=5) as cl:
        with pytest.raises(rask.RemoteTaskError) as info:
            cl.submit("inc", "x", key="reused").result(timeout=10)
        e2 = info.value
        assert e2.__cause__ is None and e2.exception is None and e2.exception_type is None
        assert "bad input" not in str(e2)


def test_retries_run_a_failed_task_again(client, cluster):
    calls = []

    def flaky(x):
        calls.append(x)
        if len(calls) < 2:
            raise RuntimeError("first time fails")
        return x * 10

    with rask.Worker(cluster, functions={"flaky": flaky}):
        assert client.submit("flaky", 4, retries=1).result(timeout=10) == 40
        assert calls == [4, 4]


def test_several_python_threads(client, cluster):
    barrier = threading.Barrier(2, timeout=5)

    def meet(i):
        barrier.wait()  # both tasks must run at once
        return i

    with rask.Worker(cluster, functions={"meet": meet}, nthreads=2):
        assert client.gather(client.map("meet", [1, 2])) == [1, 2]


def test_nthreads_tasks_run_at_once():
    # 16 tasks that each wait for all 16 (no timing: a worker running fewer
    # at once breaks the barrier, and the tasks fail). The scheduler sends a
    # worker 2 x threads + 2 tasks at most; it counts the Python threads.
    n = 16
    barrier = threading.Barrier(n, timeout=60)

    def meet(i):
        if i < 0:
            # A first task that takes a while: the scheduler then knows the
            # function is slow, and sends no deeper backlog of it.
            time.sleep(0.05)
        else:
            barrier.wait()
        return i

    def check(c):
        assert c.submit("meet", -1).result() == -1
        assert c.gather(c.map("meet", range(n))) == list(range(n))

    with rask.LocalCluster(n_workers=0, functions={"meet": meet}, python_threads=n) as cluster:
        with rask.Client(cluster) as c:
            check(c)
    # The same through a Worker of its own, beside a Rust worker.
    barrier.reset()
    with rask.LocalCluster(n_workers=1) as cluster, rask.Client(cluster) as c:
        with rask.Worker(cluster, functions={"meet": meet}, nthreads=n):
            check(c)


def test_tasks_are_taken_and_ended_in_batches(client, cluster, monkeypatch):
    # A worker with one thread takes the ready tasks of its Python functions
    # many per C call (rask_worker_take_tasks) and hands results back many
    # per call (rask_worker_complete_tasks): scalars as plain msgpack, any
    # other object as a reference to it (a host value, rask_worker_use_host);
    # a failure fails only its own task of the batch.
    from rask import _lib as L

    lib = L.lib()
    calls = {"take": 0, "complete": 0}

    def counted(name, what):
        f = getattr(lib, name)

        def wrapper(*args):
            calls[what] += 1
            return f(*args)

        monkeypatch.setattr(lib, name, wrapper)

    counted("worker_take_tasks", "take")
    counted("worker_complete_tasks", "complete")

    def odd(x):
        if x == 13:
            raise ValueError("thirteen")
        if x == 14:
            return object()  # no plain form: pickled where it leaves the process
        if x % 2:
            return 2 * x  # a scalar: plain msgpack
        return [x, {"x": x}]  # stays a Python object in rask: a reference in the batch

    n = 300
    with rask.Worker(cluster, functions={"odd": odd}):
        fs = client.map("odd", range(n))
        rask.wait(fs, timeout=60)
        ok = [i for i in range(n) if i not in (13, 14)]
        assert client.gather([fs[i] for i in ok]) == [2 * i if i % 2 else [i, {"x": i}] for i in ok]
        assert type(fs[14].result()) is object
        with pytest.raises(rask.RemoteTaskError, match="thirteen") as e:
            fs[13].result()
        assert e.value.exception_type == "ValueError" and "odd" in e.value.remote_traceback
    assert 0 < calls["take"] < n / 2 and 0 < calls["complete"] < n / 2, calls


def test_a_task_of_a_batch_that_secedes_hands_its_batch_on(cluster, client):
    # One thread, tasks that wait on tasks they submit (secede/rejoin), the
    # waited-on tasks taken in the same batches: none is stuck behind a
    # waiting task of its own thread.
    def tree(n):
        if n == 0:
            return 1
        c = rask.get_client()
        fs = c.map("tree", [n - 1] * 3, pure=False)
        rask.secede()
        total = sum(c.gather(fs))
        rask.rejoin()
        return total

    with rask.Worker(cluster, functions={"tree": tree}, nthreads=1):
        assert client.submit("tree", 3).result(timeout=120) == 27


@needs_numpy
def test_arrays_in_and_out(client, cluster):
    import numpy as np

    def scale(a, k):
        return a * k

    with rask.Worker(cluster, functions={"scale": scale}):
        a = client.scatter(np.arange(6, dtype=np.int64).reshape(2, 3))
        out = client.submit("scale", a, 3).result(timeout=10)
        np.testing.assert_array_equal(out, np.arange(6).reshape(2, 3) * 3)


def test_local_cluster_with_python_functions():
    with rask.LocalCluster(n_workers=1, functions={"label": label}) as cluster:
        assert cluster.python_worker is not None and cluster.python_worker.running
        with rask.Client(cluster) as c:
            dsk = {"a": 5, "b": ("inc", "a"), "c": (label, "b")}
            assert c.get(dsk, ["c"]) == ("<6>",)
            # a dict argument holding a reference is built by the Python worker (rask.dict)
            g = rask.Graph({"a": 1, "d": task("identity", {"w": ref("a")})})
            assert c.compute(g, "d").result(timeout=10) == {"w": 1}
            # a callable the cluster does not serve by name is shipped (the cluster allows code)
            assert c.compute(dict(dsk, d=(lambda d: d["k"], {"k": "c"})), "d").result(timeout=10) == "<6>"
    assert not cluster.python_worker.running


def test_a_cluster_of_python_workers_only():
    with rask.LocalCluster(n_workers=0, functions={"label": label}, python_threads=2) as cluster:
        with rask.Client(cluster) as c:
            assert c.submit(label, c.submit("inc", 1)).result(timeout=10) == "<2>"


def test_a_late_worker_takes_the_waiting_tasks(client, cluster):
    f = client.submit("label", "late")  # nobody offers it yet: pending
    time.sleep(0.05)
    assert f.status == "pending"
    with rask.Worker(cluster, functions={"label": label}):
        assert f.result(timeout=10) == "<late>"


def test_worker_of_a_closed_cluster_stops():
    cluster = rask.LocalCluster(n_workers=1)
    w = rask.Worker(cluster, functions={"label": label})
    reasons = []
    t = threading.Thread(target=lambda: reasons.append(w.run()))
    t.start()
    cluster.close()
    t.join(5)
    assert not t.is_alive() and not w.running
    assert "shut" in reasons[0] or "closed" in reasons[0]
    w.close()


def test_joining_nothing_fails_clearly():
    with rask.Scheduler() as s:
        address = s.address
    with pytest.raises(rask.RaskConnectionError):
        rask.Worker(address, functions={"label": label}, connect_timeout=2)
    with pytest.raises(TypeError):
        rask.Worker(address, functions={"x": 3})
    with pytest.raises(ValueError):
        rask.Worker(address, functions=[lambda: 1])


def test_c_functions_on_cluster_workers(clib):  # noqa: F811 - the fixture
    calls = ctypes.c_int64(0)
    times2 = rask.CFunction(clib.times2, ctypes.addressof(calls))
    with rask.LocalCluster(n_workers=2, functions={"times2": times2, "label": label}) as cluster:
        with rask.Client(cluster) as c:
            fs = c.map("times2", range(10))
            assert c.gather(fs) == [2 * i for i in range(10)]
            assert c.submit("label", fs[3]).result(timeout=10) == "<6>"
            assert calls.value == 10
            e = c.submit("times2", "x").exception(timeout=10)
            assert isinstance(e, rask.RemoteTaskError) and e.func == "times2"


def test_a_python_worker_in_another_process(cluster, client):
    code = (
        "import sys, rask\n"
        "def square(x):\n"
        "    return x * x\n"
        "w = rask.Worker(sys.argv[1], functions={'square': square}, name='subprocess')\n"
        "print('ready', flush=True)\n"
        "print('stopped:', w.run(), flush=True)\n"
    )
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "bindings", "python"))
    proc = subprocess.Popen(
        [sys.executable, "-c", code, cluster.address], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        assert client.gather(client.map("square", range(4))) == [0, 1, 4, 9]
    finally:
        cluster.close()  # the worker's scheduler shuts down: its run() returns
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0 and out.startswith("stopped:")


def test_a_lost_scheduler_is_an_error_for_run():
    exe = os.path.join(REPO, "target", "release", "rask-scheduler")
    if not os.path.exists(exe):
        pytest.skip("no target/release/rask-scheduler")
    proc = subprocess.Popen(
        [exe, "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        address = proc.stdout.readline().split()[-1]
        assert address.startswith("tcp://")
        w = rask.Worker(address, functions={"label": label})
        errors = []

        def serve():
            try:
                w.run()
            except rask.RaskError as e:
                errors.append(e)

        t = threading.Thread(target=serve)
        t.start()
        with rask.Client(address) as c:
            assert c.submit("label", 1).result(timeout=10) == "<1>"
            pending = c.submit("nobody-offers-this", 1)
            proc.kill()  # the scheduler dies: no clean close
            t.join(10)
            assert not t.is_alive() and isinstance(errors[0], rask.RaskConnectionError)
            with pytest.raises(rask.RaskConnectionError):
                pending.result(timeout=10)
        assert not w.running and w.stop_reason
        w.close()
    finally:
        proc.kill()
        proc.wait()


def test_with_reconnect_timeout_a_worker_rejoins_a_scheduler_that_returns():
    # The scheduler dies (no clean close) and a new one comes up on its
    # port: a worker with reconnect_timeout registers there again and serves;
    # with the default it would have stopped (test above).
    exe = os.path.join(REPO, "target", "release", "rask-scheduler")
    if not os.path.exists(exe):
        pytest.skip("no target/release/rask-scheduler")
    proc = subprocess.Popen(
        [exe, "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        address = proc.stdout.readline().split()[-1]
        assert address.startswith("tcp://")
        port = int(address.rsplit(":", 1)[1])
        with rask.Worker(address, functions={"label": label}, reconnect_timeout=60, name="back") as w:
            with rask.Client(address) as c:
                assert c.submit("label", 1).result(timeout=10) == "<1>"
            proc.kill()  # the scheduler dies: no clean close
            proc.wait()
            with rask.Scheduler(host="127.0.0.1", port=port) as again:
                assert again.address == address
                with rask.Client(again, timeout=10) as c:
                    assert c.wait_for_workers(1, timeout=30) == 1
                    assert c.submit("label", 2).result(timeout=10) == "<2>"
                assert w.running and w.stop_reason is None
                assert w.name == "back"
                w.close()  # before the scheduler: its close could look like a loss
    finally:
        proc.kill()
        proc.wait()


def test_reconnect_timeout_reaches_the_c_options(monkeypatch):
    # The value (seconds) becomes rask_worker_options.reconnect_timeout_ms;
    # None/0/negative is C's default 0 (stop at once).
    from rask import _lib as L
    from rask import worker as W

    seen = []
    real = L.WorkerOptions

    def spy(**kw):
        seen.append(kw.get("reconnect_timeout_ms"))
        return real(**kw)

    monkeypatch.setattr(L, "WorkerOptions", spy)
    with rask.Scheduler(port=0) as s:
        for value in (2.5, None, 0, -1, 0.0001):
            rask.Worker(s, reconnect_timeout=value).close()
    assert seen == [2500, 0, 0, 0, 1]
    assert W._reconnect_ms(60) == 60000


def test_the_cluster_goes_on_after_a_python_worker_leaves(cluster, client):
    w = rask.Worker(cluster, functions={"label": label}).start()
    fs = client.map("inc", range(20))  # some land on the Python worker (it offers builtins too)
    client.gather(fs)
    assert client.gather(client.map(label, range(3))) == ["<0>", "<1>", "<2>"]
    del fs  # released: the scheduler forgets these keys
    time.sleep(0.1)
    w.close()
    assert client.submit("inc", 100).result(timeout=5) == 101


def test_a_retired_worker_finishes_its_task_and_hands_its_results_on(cluster, client):
    started, go = threading.Event(), threading.Event()

    def slow(x):
        started.set()
        assert go.wait(30)
        return x * 10

    w = rask.Worker(cluster, functions={"slow": slow}).start()
    go.set()
    held = client.submit("slow", 1)
    assert held.result(timeout=10) == 10  # a result only w holds
    go.clear()
    started.clear()
    running = client.submit("slow", 2)
    assert started.wait(10)
    w.retire()
    w.retire()  # again: nothing
    go.set()
    assert running.result(timeout=10) == 20  # the running task finished
    assert w.wait(30) is True and not w.running  # the scheduler closed it
    # The results moved: a builtin task on the other workers reads them
    # (lost, they could not be made again: no worker serves "slow" now).
    assert client.submit("add", held, running).result(timeout=10) == 30
    w.retire()  # stopped: nothing
    w.close()


def test_releasing_a_future_frees_the_key_on_the_scheduler(cluster, client):
    calls = []

    def count(x):
        calls.append(x)
        return x

    with rask.Worker(cluster, functions={"count": count}):
        f = client.submit("count", 1)
        assert f.result(timeout=10) == 1
        g = client.submit("count", 1)  # the same key, still wanted: not run again
        assert g.key == f.key and g.result(timeout=10) == 1 and calls == [1]
        f.release()
        del g  # garbage collection releases too
        # once the scheduler has forgotten the key, the same call runs again
        for _ in range(100):
            time.sleep(0.02)
            h = client.submit("count", 1)
            assert h.result(timeout=10) == 1
            if len(calls) == 2:
                break
            h.release()
        assert calls == [1, 1]


def test_retire_workers_moves_results_off_a_worker(cluster, client):
    with rask.Worker(cluster, functions={"label": label}, name="leaving") as w:
        assert client.wait_for_workers(3, timeout=5) == 3
        # label runs only on this worker: its results are held only there
        fs = [client.submit(label, i) for i in range(5)]
        assert client.gather(fs) == [f"<{i}>" for i in range(5)]
        with pytest.raises(rask.RaskError, match="unknown-worker"):
            client.retire_workers(["nobody"], timeout=5)
        report = client.retire_workers([w.address], timeout=30)
        assert report == {"moved": 5, "lost": 0}
        assert w.wait(timeout=10)  # closed cleanly by the scheduler
        assert client.wait_for_workers(2, timeout=5) == 2
        assert client.gather(fs) == [f"<{i}>" for i in range(5)]


def big_bytes(n):
    return bytes(range(256)) * (n // 256)


def test_memory_limit_spills_results_to_disk_and_gathers_them_back(cluster, client, tmp_path):
    # A Python worker limited to 4 MB, spilling by target only (this test
    # process's RSS must not pause it): a 3 MB result is over the 2.4 MB
    # target and goes to its disk, and comes back intact.
    with rask.Worker(
        cluster,
        functions={"big_bytes": big_bytes},
        memory_limit=4_000_000,
        memory_spill_fraction=False,
        memory_pause_fraction=False,
        memory_terminate_fraction=False,
        local_directory=tmp_path,
    ) as w:
        f = client.submit("big_bytes", 3 * 1024 * 1024)
        assert f.result(timeout=20) == big_bytes(3 * 1024 * 1024)
        space = tmp_path / "rask-worker-space"
        (mine,) = list(space.iterdir())
        assert len(list(mine.iterdir())) == 2  # the lock and the value
        deadline = time.monotonic() + 20
        while (info := client.scheduler_info())["spilled_bytes"] < 3 * 1024 * 1024:
            assert time.monotonic() < deadline, info
            time.sleep(0.02)
        assert info["memory_limit"] >= 4_000_000 and info["paused_workers"] == 0
        assert set(info) >= {"managed_bytes", "process_bytes", "tasks", "workers"}
    assert not w.running
    assert list(space.iterdir()) == []  # a stopped worker removes its directory


def test_memory_options_are_checked():
    with rask.Scheduler(port=0) as s:
        with pytest.raises(ValueError, match="memory_limit"):
            rask.Worker(s, memory_limit=-5)
        with pytest.raises(ValueError, match="spill_compression"):
            rask.Worker(s, spill_compression="zip")
        with pytest.raises(rask.RaskError, match="spill fraction"):
            rask.Worker(s, memory_target_fraction=0.9, memory_spill_fraction=0.5)
        # "auto", None and a number of bytes all start.
        for limit in ("auto", None, 0, 10**9):
            rask.Worker(s, memory_limit=limit, spill_compression=None).close()


def test_rebalance_and_replicate_copy_results_between_workers(cluster, client):
    with rask.Worker(cluster, functions={"label": label}, name="only") as w:
        assert client.wait_for_workers(3, timeout=5) == 3
        # label runs only on this worker: every result lands there.
        fs = [client.submit(label, i) for i in range(6)]
        assert client.gather(fs) == [f"<{i}>" for i in range(6)]
        report = client.rebalance(timeout=30)
        assert report["moved"] >= 2 and report["bytes"] > 0, report
        assert client.rebalance(fs, timeout=30)["moved"] == 0  # balanced now
        # Two workers hold each: a second replicate has nothing to copy.
        assert client.replicate(fs[:2], n=2, timeout=30)["short"] == 0
        assert client.replicate(fs[:2], n=2, timeout=30) == {"copied": 0, "short": 0}
        assert client.gather(fs) == [f"<{i}>" for i in range(6)]
        with pytest.raises(ValueError, match="n must be"):
            client.replicate(fs, n=0)
        gone = fs.pop()
        gone.release()
        with pytest.raises(rask.RaskError):
            client.replicate([gone], n=2)
        with pytest.raises(rask.RaskError):
            client.rebalance([gone])


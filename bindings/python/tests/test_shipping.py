"""Shipped functions: any callable a client submits runs on the cluster."""

import functools
import os
import signal
import subprocess
import sys
import textwrap
import threading

import pytest

import rask
from rask.shipping import CODE_FUNC, RUNTIME, may_run_code


def test_any_callable_runs_on_an_in_process_cluster():
    k = 10

    class Scaler:
        def __init__(self, f):
            self.f = f

        def scale(self, x):
            return self.f * x

    with rask.Client(n_workers=1) as c:
        assert c.submit(lambda x: x + 1, 1).result() == 2  # a lambda
        assert c.gather(c.map(lambda x: x * k, range(4))) == [0, 10, 20, 30]  # a closure
        assert c.submit(functools.partial(pow, 2), 10).result() == 1024  # a partial
        assert c.submit(Scaler(3).scale, 5).result() == 15  # a bound method
        f = c.submit(lambda x: x * 2, c.submit("inc", 1))  # futures as arguments, builtins after
        assert c.submit("inc", f).result() == 5
        # Graphs: a dict and a rask.Graph, by client.compute and client.get.
        assert c.get({"a": 1, "b": (lambda v: v + 100, "a"), "c": ("inc", "b")}, "c") == 102
        g = rask.Graph()
        g["a"] = 3
        g["b"] = rask.task(lambda v: v * 3, rask.ref("a"))
        g["c"] = rask.task("sum", [rask.ref("b"), rask.task(lambda: 7)])
        assert c.compute(g, "c").result() == 16
        assert rask.compute(g, "c") == 16  # the same graph, locally
        # One key per distinct function, whatever the number of tasks.
        code_keys = set(c._code_futures)
        assert all(key.startswith(CODE_FUNC + "-") for key in code_keys)
        n = len(code_keys)
        double = lambda x: 2 * x  # noqa: E731
        doubled = c.map(double, range(50))
        # one batch, one C call (rask_client_map_msgpack_shared): the code
        # future is shared by every call, not passed call by call
        assert doubled[0]._batch is not None and all(f._batch is doubled[0]._batch for f in doubled)
        assert doubled[3].key == c.submit(double, 3).key  # the same call, the same key
        assert c.gather(doubled) == [2 * i for i in range(50)]
        # futures among a shipped map's own arguments: call by call, still right
        assert c.gather(c.map(double, [c.submit("inc", 1), 5])) == [4, 10]
        assert sum(c.submit(double, i, pure=False).result() for i in range(5)) == 20
        assert len(c._code_futures) == n + 1
        # ... and each worker unpickles it once.
        cache = c.cluster.python_worker._code
        before = cache.loads
        assert c.gather(c.map(double, range(50, 80))) == [2 * i for i in range(50, 80)]
        assert cache.loads == before


def test_worker_processes_get_one_blas_thread_unless_the_user_set_it(monkeypatch):
    # As dask's nanny does: one BLAS/OpenMP thread per worker process (a
    # pool per CPU in every process oversubscribes), unless set explicitly.
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")

    def env():
        return [os.environ.get(v) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")]

    with rask.Client(n_workers=1, processes=True) as c:
        assert c.submit(env).result() == ["1", "1", "3"]
    assert os.environ.get("OMP_NUM_THREADS") is None  # this process's own environment is untouched


def test_worker_processes_that_never_imported_the_function():
    offset = 1000

    def work(x):
        return [x + offset, os.getpid()]

    with rask.Client(n_workers=2, threads_per_worker=2, processes=True) as c:
        assert len(c.cluster.processes) == 2
        out = c.gather(c.map(work, range(40)))
        assert [v for v, _ in out] == [x + 1000 for x in range(40)]
        pids = {p for _, p in out}
        assert os.getpid() not in pids and pids <= {p.pid for p in c.cluster.processes}
        assert c.submit(functools.partial(max, 3), 9).result() == 9
        assert c.get({"x": 2, "y": (lambda v: v**10, "x")}, "y") == 1024
        procs = list(c.cluster.processes)
    for p in procs:  # closed cleanly by SIGTERM
        assert p.returncode == 0


def test_missing_module_on_the_worker_names_the_import_error_and_runtime(tmp_path, monkeypatch):
    (tmp_path / "only_here_mod.py").write_text("def triple(x):\n    return 3 * x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import only_here_mod  # importable in this process, not in the workers

    with rask.Client(n_workers=1, processes=True) as c:
        with pytest.raises(rask.RemoteTaskError) as e:
            c.submit(only_here_mod.triple, 2).result()
        msg = str(e.value)
        assert "ModuleNotFoundError" in msg and "only_here_mod" in msg, msg
        assert RUNTIME in msg, msg
        assert c.submit(lambda: "still fine").result() == "still fine"


def test_what_cannot_be_serialized_fails_at_submit_naming_it():
    lock = threading.Lock()
    with rask.Client(n_workers=1) as c:
        with pytest.raises(TypeError, match="cannot ship the function .*<lambda>"):
            c.submit(lambda: lock.locked())
        with pytest.raises(TypeError, match="task 'bad'"):
            c.compute({"a": 1, "bad": (lambda v: lock.locked(), "a")}, "bad")
        with pytest.raises(ValueError, match="reserved for shipped functions"):
            c.submit("code:python-3.11", b"x")


def test_shipped_code_is_opt_in():
    # A cluster whose workers do not allow code: the scheduler errs the task
    # at once, naming the option.
    with rask.LocalCluster(n_workers=1, allow_code=False) as cluster, rask.Client(cluster) as c:
        with pytest.raises(rask.RemoteTaskError, match="no connected worker runs shipped") as e:
            c.submit(lambda: 1).result(timeout=30)
        assert "--allow-code" in str(e.value) and "allow_code=True" in str(e.value)
        assert c.submit("inc", 1).result() == 2
        with rask.Worker(cluster) as w:  # a Python worker without allow_code offers no runtime
            assert not w.allows_code
            with pytest.raises(rask.RemoteTaskError, match="no connected worker runs shipped"):
                c.submit(lambda: 2).result(timeout=30)
        with rask.Worker(cluster, allow_code=True) as w:
            assert w.allows_code
            assert c.submit(lambda: 3).result(timeout=30) == 3


def test_a_runtime_of_another_version_is_refused_at_routing():
    with rask.Client(n_workers=1) as c:
        assert c.submit(lambda: 0).result() == 0  # a python worker is there
        g = rask.Graph()
        g.add_task("old", "code:python-2.7", b"not even a pickle")
        with pytest.raises(rask.RemoteTaskError, match=rf"shipped python-2.7 functions \(runtimes offered: {RUNTIME}\)"):
            c.compute(g, "old").result(timeout=30)


def test_non_loopback_needs_a_token_or_tls():
    assert may_run_code("tcp://127.0.0.1:8786") is None
    assert may_run_code("tcp://localhost:8786") is None
    assert may_run_code("tcp://[::1]:8786") is None
    why = may_run_code("tcp://10.1.2.3:8786")
    assert "not on loopback" in why and "token" in why
    assert may_run_code("tcp://10.1.2.3:8786", token="s3cret") is None
    assert may_run_code("tls://10.1.2.3:8786", tls=object()) is None


# ------------------------------------------------------------------ CLI

def _env():
    env = dict(os.environ)
    env.setdefault("RASK_LIB", rask.library_path())
    return env


def _start(args, cwd):
    p = subprocess.Popen(
        [sys.executable, "-m", "rask.worker", *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=_env(),
    )
    line = p.stderr.readline().decode()  # the "joined" line, or an error and EOF
    return p, line


def test_worker_command_help_and_bad_options(tmp_path):
    r = subprocess.run([sys.executable, "-m", "rask.worker", "--help"], cwd=tmp_path, capture_output=True, env=_env())
    assert r.returncode == 0
    out = r.stdout.decode()
    for opt in ("--nthreads", "--allow-code", "--import", "--name", "--auth-token-file", "--tls-ca-file"):
        assert opt in out
    r = subprocess.run(
        [sys.executable, "-m", "rask.worker", "--nthreads", "many"], cwd=tmp_path, capture_output=True, env=_env()
    )
    assert r.returncode == 2 and b"not a whole number" in r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "rask.worker", "--import", "no_such_module_here"],
        cwd=tmp_path,
        capture_output=True,
        env=_env(),
    )
    assert r.returncode == 2 and b"no_such_module_here" in r.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_worker_command_serves_imports_and_code_and_stops_cleanly(tmp_path, sig):
    (tmp_path / "mytasks.py").write_text(
        textwrap.dedent(
            """
            def shout(s):
                return s.upper() + "!"

            __rask_functions__ = {"shout": shout}
            """
        )
    )
    # SIGTERM retires the worker: a rask worker in this process (which
    # cannot run `shout`) takes its results; Ctrl-C leaves at once.
    with rask.LocalCluster(n_workers=1 if sig == signal.SIGTERM else 0) as cluster:
        p, line = _start(
            [cluster.address, "--nthreads", "2", "--allow-code", "--import", "mytasks", "--name", "cli-w"], tmp_path
        )
        try:
            assert "worker cli-w" in line and "joined" in line and "shipped code allowed" in line, line
            with rask.Client(cluster) as c:
                shouted = c.submit("shout", "hi")
                assert shouted.result(timeout=30) == "HI!"
                assert c.submit(lambda s: s * 2, "ab").result(timeout=30) == "abab"
                p.send_signal(sig)
                assert p.wait(timeout=30) == 0
                if sig == signal.SIGTERM:
                    # moved, not lost: no worker left could compute it again
                    assert c.gather(shouted, timeout=30) == "HI!"
            err = p.stderr.read()
            assert b"stopped" in err
            assert (b"retires" in err) == (sig == signal.SIGTERM), err
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()


def test_code_cache_returns_the_function_of_the_bytes_given():
    # The last-used shortcut must never hand back another function's code.
    import cloudpickle

    from rask.shipping import CodeCache

    b1, b2 = cloudpickle.dumps(lambda x: x + 1), cloudpickle.dumps(lambda x: x * 10)
    cache = CodeCache(size=1)
    for blob, want in [(b1, 2), (b1, 2), (b2, 10), (bytearray(b1), 2), (b2, 10), (bytes(b2), 10)]:
        assert cache.load(blob)(1) == want
    assert cache.loads == 4  # size 1: b1, b2, b1 again, b2 again; repeats of the last cost nothing
    with pytest.raises(TypeError, match="bytes, not str"):
        cache.load("not bytes")

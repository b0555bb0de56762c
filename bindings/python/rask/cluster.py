"""Clusters in this process: :class:`LocalCluster` and :class:`Scheduler`.

A :class:`LocalCluster` is a scheduler and ``n_workers`` rask workers
(``rask_cluster_start``), all in this process but talking over loopback TCP
as a real cluster does. Builtins and C functions run on the workers'
threads; Python functions given in ``functions=`` are served by a
:class:`rask.Worker` of this process that joins the cluster (pull mode on
Python threads), since rask never runs Python on its own threads.
"""

import ctypes
import threading

from . import _lib as L
from ._handle import Handle, at_exit
from .compute import CFunction
from .errors import RaskError, call
from .worker import Worker, _functions_dict


def _ms(seconds):
    return 0 if seconds is None else max(1, int(seconds * 1000))


class Scheduler:
    """A scheduler running in this process (owns a ``rask_scheduler``):
    workers and clients, in this process or others, join it at
    :attr:`address`. ``port=0`` takes any free port. ``token`` is a shared
    secret every client and worker must then present; ``heartbeat_timeout``
    (s) how long a silent worker stays. ``tls_ca_file``, ``tls_cert`` and
    ``tls_key`` (PEM paths, all three or none) make it serve TLS only, with
    client certificates signed by the CA required; :attr:`address` is then
    ``tls://host:port``. ``dashboard_address`` (``"HOST:PORT"``, port 0: any
    free port) is where the web dashboard and ``/metrics`` are served: by
    default ``127.0.0.1:8787`` as in Dask (a free port when 8787 is taken);
    ``None`` serves none. :attr:`dashboard_link` is its status page.
    :meth:`close` shuts it down: its workers stop, its clients' pending
    futures fail."""

    def __init__(
        self,
        host=None,
        port=0,
        name=None,
        token=None,
        heartbeat_timeout=None,
        *,
        tls_ca_file=None,
        tls_cert=None,
        tls_key=None,
        dashboard_address=L.DEFAULT_DASHBOARD,
    ):
        tls = L.tls_of(tls_ca_file, tls_cert, tls_key)
        opts = L.SchedulerOptions(
            host=host.encode() if host else None,
            port=port,
            name=name.encode() if name else None,
            token=token.encode() if token else None,
            heartbeat_timeout_ms=_ms(heartbeat_timeout),
            **L.tls_fields(tls),
            **L.dashboard_fields(dashboard_address),
        )
        out = L.SchedulerP()
        call(L.lib().scheduler_start, ctypes.byref(opts), ctypes.byref(out))
        self.token = token
        self.tls = tls
        self.address = L.lib().scheduler_address(out).decode()
        self.dashboard_link = L.lib().scheduler_dashboard_link(out).decode() or None
        self._handle = Handle(out, L.lib().scheduler_free, "the scheduler")
        at_exit(self, 2)

    @property
    def scheduler_address(self):
        return self.address

    def close(self):
        """Shuts the scheduler down. Idempotent."""
        self._handle.close()

    @property
    def closed(self):
        return self._handle.closed

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass

    def __repr__(self):
        return f"<rask.Scheduler {self.address}{' (closed)' if self.closed else ''}>"


#: Set in the environment of the worker processes of
#: ``LocalCluster(processes=True)`` unless already set (as dask.distributed's
#: nanny does, ``distributed.nanny.pre-spawn-environ``): one thread for the
#: BLAS and OpenMP pools of numpy & co in each process. The worker's own
#: threads are the parallelism; a pool of one thread per CPU in every worker
#: process oversubscribes the machine (with 2 processes on 2 CPUs, the seed
#: expression's matrix products took ~1.3x the CPU time of BLAS with one
#: thread: idle pool threads spin).
WORKER_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


class LocalCluster:
    """A scheduler and workers in this process, like
    ``dask.distributed.LocalCluster``.

    ``LocalCluster(n_workers=2, threads_per_worker=1, functions=None)``
    returns once every worker has registered; :attr:`address` is where
    clients and more workers connect. ``Client(cluster)`` connects a client;
    ``Client()`` starts a LocalCluster of its own.

    - ``n_workers`` rask workers of ``threads_per_worker`` threads run the
      builtins and the C functions (``{name: rask.CFunction(...)}``) of
      ``functions``. ``n_workers=0`` starts only the scheduler.
    - The Python callables of ``functions`` are served by one
      :class:`rask.Worker` of this process (:attr:`python_worker`) with
      ``python_threads`` Python threads (default ``threads_per_worker``).
    - ``host``, ``scheduler_port`` (0: any free), ``token``, ``timeout``
      (s; starting, and clients' requests): ``rask_cluster_options``.
    - ``dashboard_address``: where the scheduler serves its web dashboard
      and ``/metrics`` (``"HOST:PORT"``; default ``127.0.0.1:8787`` as in
      Dask, a free port when that is taken; ``None``: no dashboard).
      :attr:`dashboard_link` is its status page (``None`` without one).
    - ``tls_ca_file``, ``tls_cert``, ``tls_key`` (PEM paths, all three or
      none): every connection uses TLS with that certificate; clients and
      workers given the cluster object use it too.
    - ``processes=True``: the ``n_workers`` workers are Python processes
      (``python -m rask.worker``, ``threads_per_worker`` Python threads
      each) instead of rask workers in this process, as dask's
      LocalCluster does; with ``allow_code`` they run shipped functions, so
      ``Client(processes=True).submit(f, x)`` runs any function in
      parallel processes. ``functions`` must then be empty (ship callables
      instead: pass them to ``submit``/``map``). :attr:`processes` lists
      them; closing stops the scheduler first, which closes them (they
      exit by themselves; one that has not after 10 s gets SIGTERM, then
      SIGKILL).
    - ``allow_code`` (default True): the Python worker runs *shipped*
      functions (any callable a client of this cluster submits). It is
      your own process on loopback; the Python worker starts when a client
      first ships a function, if ``functions`` did not start it already.

    :meth:`close` (idempotent; also a ``with`` block) stops the Python
    worker, the workers and the scheduler; clients still connected then get
    :class:`rask.RaskConnectionError` instead of waiting.
    """

    def __init__(
        self,
        n_workers=2,
        threads_per_worker=1,
        functions=None,
        *,
        host=None,
        scheduler_port=0,
        token=None,
        timeout=None,
        python_threads=None,
        tls_ca_file=None,
        tls_cert=None,
        tls_key=None,
        allow_code=True,
        processes=False,
        dashboard_address=L.DEFAULT_DASHBOARD,
    ):
        if n_workers < 0 or threads_per_worker < 1:
            raise ValueError("n_workers must be at least 0, threads_per_worker at least 1")
        self.processes = []
        self.n_workers = n_workers
        self.threads_per_worker = threads_per_worker
        self.token = token
        self.tls = tls = L.tls_of(tls_ca_file, tls_cert, tls_key)
        self.python_worker = None
        self._handle = None
        self._scheduler = None
        self.dashboard_link = None
        self.allow_code = allow_code
        self._worker_lock = threading.Lock()
        self._python_worker_args = dict(
            nthreads=python_threads or threads_per_worker,
            token=token,
            threads=1,
            host=host,
            tls_ca_file=tls_ca_file,
            tls_cert=tls_cert,
            tls_key=tls_key,
            allow_code=allow_code,
        )
        funcs = _functions_dict(functions)
        self._c_functions = {k: f for k, f in funcs.items() if isinstance(f, CFunction)}
        py = {k: f for k, f in funcs.items() if not isinstance(f, CFunction)}
        for k, f in py.items():
            if not callable(f):
                raise TypeError(f"functions[{k!r}] is neither callable nor a rask.CFunction")

        if processes and functions:
            raise ValueError(
                "LocalCluster(processes=True) serves no functions by name: pass Python callables to "
                "submit/map (they are shipped), or start workers with python -m rask.worker --import MODULE"
            )
        lib = L.lib()
        if n_workers == 0 or processes:
            # rask_cluster_options.workers = 0 means the default (2): a
            # scheduler alone is a rask_scheduler.
            self._scheduler = Scheduler(
                host=host,
                port=scheduler_port,
                token=token,
                tls_ca_file=tls_ca_file,
                tls_cert=tls_cert,
                tls_key=tls_key,
                dashboard_address=dashboard_address,
            )
            self.address = self._scheduler.address
            self.dashboard_link = self._scheduler.dashboard_link
            if processes and n_workers:
                try:
                    self._start_processes(n_workers, timeout)
                except BaseException:
                    self.close()
                    raise
        else:
            reg = lib.registry_new()
            if not reg:
                raise RaskError("rask_registry_new failed")
            try:
                for k, f in self._c_functions.items():
                    call(
                        lib.registry_add_callback, reg, k.encode(), f.callback, f.user_data, L.DropUserData()
                    )
                opts = L.ClusterOptions(
                    workers=n_workers,
                    threads_per_worker=threads_per_worker,
                    host=host.encode() if host else None,
                    scheduler_port=scheduler_port,
                    token=token.encode() if token else None,
                    timeout_ms=_ms(timeout),
                    **L.tls_fields(tls),
                    **L.dashboard_fields(dashboard_address),
                )
                out = L.ClusterP()
                call(lib.cluster_start, ctypes.byref(opts), reg, ctypes.byref(out))
            finally:
                lib.registry_free(reg)  # every worker copied it
            self.address = lib.cluster_address(out).decode()
            self.dashboard_link = lib.cluster_dashboard_link(out).decode() or None
            self._handle = Handle(out, lib.cluster_free, "the cluster")
        at_exit(self, 2)
        if py:
            try:
                self.python_worker = Worker(self.address, functions=py, **self._python_worker_args).start()
            except BaseException:
                self.close()
                raise

    def _start_processes(self, n, timeout):
        """Starts ``n`` ``python -m rask.worker`` processes and waits until
        they have all registered (or one exits: its stderr is in the error)."""
        import os
        import subprocess
        import sys
        import tempfile
        import time

        from .client import Client

        args = self._python_worker_args
        env = dict(os.environ)
        pkg_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [pkg_root, env.get("PYTHONPATH")]))
        env.setdefault("RASK_LIB", L.lib().path)
        for var, value in WORKER_ENV.items():  # what the user set explicitly wins
            env.setdefault(var, value)
        self._tmp = tempfile.TemporaryDirectory(prefix="rask-cluster-")
        common = ["--nthreads", str(args["nthreads"]), "--reconnect-timeout", "0"]
        if args["allow_code"]:
            common.append("--allow-code")
        if args["host"]:
            common += ["--host", args["host"]]
        if self.token:
            path = os.path.join(self._tmp.name, "token")
            with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
                f.write(self.token)
            common += ["--auth-token-file", path]
        if self.tls is not None:
            common += ["--tls-ca-file", str(args["tls_ca_file"]), "--tls-cert", str(args["tls_cert"])]
            common += ["--tls-key", str(args["tls_key"])]
        port = self.address.rsplit(":", 1)[-1]
        logs = []
        for i in range(n):
            log = open(os.path.join(self._tmp.name, f"worker-{i}.log"), "w+b")
            logs.append(log)
            cmd = [sys.executable, "-m", "rask.worker", self.address, "--name", f"python-{port}-{i}"] + common
            self.processes.append(subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stderr=log, stdout=log, env=env))
        deadline = time.monotonic() + (timeout or 60)
        with Client(self, timeout=timeout) as c:
            while True:
                for p, log in zip(self.processes, logs):
                    if p.poll() is not None:
                        log.seek(0)
                        raise RaskError(
                            f"a worker process exited with status {p.returncode} while starting: "
                            f"{log.read().decode(errors='replace').strip()}"
                        )
                try:
                    c.wait_for_workers(n, timeout=0.2)
                    break
                except TimeoutError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"the {n} worker processes had not all registered after {timeout or 60} s")
        for log in logs:
            log.close()

    def _stop_processes(self):
        import signal
        import subprocess
        import time

        # The scheduler has closed them: each leaves by itself. One that
        # has not within 10 s (stuck in a task) is stopped: SIGTERM (it
        # retires, with nowhere to go), then SIGKILL.
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            for p in self.processes:
                if sig is not None and p.poll() is None:
                    p.send_signal(sig)
            deadline = time.monotonic() + 10
            for p in self.processes:
                try:
                    p.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
            if all(p.poll() is not None for p in self.processes):
                break
        self.processes = []

    def _enable_code(self):
        """Starts the Python worker (which runs shipped functions) if it is
        not running yet and the cluster allows code."""
        if not self.allow_code or self.python_worker is not None or self.processes:
            return
        with self._worker_lock:
            if self.python_worker is None and not self.closed:
                self.python_worker = Worker(self.address, **self._python_worker_args).start()

    @property
    def scheduler_address(self):
        return self.address

    def close(self):
        """Stops the Python worker, the workers and the scheduler. Idempotent.

        Worker processes go after the scheduler: it closes them as it stops
        (a SIGTERM first would make each retire, waiting for somewhere to
        move its results while the whole cluster is going away)."""
        if self.python_worker is not None:
            self.python_worker.close()
        if self._handle is not None:
            self._handle.close()
        if self._scheduler is not None:
            self._scheduler.close()
        if self.processes:
            self._stop_processes()

    @property
    def closed(self):
        if self._handle is not None:
            return self._handle.closed
        return self._scheduler is None or self._scheduler.closed

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass

    def __repr__(self):
        state = "closed" if self.closed else f"{self.n_workers} workers x {self.threads_per_worker} threads"
        py = f", Python functions {sorted(self.python_worker.functions)}" if self.python_worker else ""
        return f"<rask.LocalCluster {self.address}: {state}{py}>"

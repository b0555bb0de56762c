"""Computing graphs locally, with Python functions in pull mode.

rask runs builtins (and C callbacks) on its own threads. A Python callable
is registered as a *pulled* function (``rask_registry_add_pulled``): its
tasks wait in rask until a Python thread asks for them with
``rask_computation_next_task``, runs the callable while holding the GIL, and
hands the result back with ``rask_task_complete`` (or ``rask_task_fail``).
The Python side never runs on rask's threads, so there is no callback into
Python from a foreign thread and the GIL is only held while Python code
really runs. ``next_task`` waits in slices of :data:`POLL_MS` milliseconds
with the GIL released, so Ctrl-C (``KeyboardInterrupt``) reaches a waiting
thread within that time; it cancels the computation.

:func:`compute` does all of it; :class:`Computation` is the step-by-step
form (start, pull from as many threads as you like, results).
"""

import ctypes
import threading
from collections import namedtuple

from . import _host
from . import _lib as L
from .errors import RaskError, StateError, TaskError, call
from .graph import Graph, key_name
from .values import _msgpack, from_value, pack, take_buffer, to_value

#: Most tasks one :meth:`Computation.work` thread takes in one call.
BATCH = 64

#: How long one wait inside rask lasts (ms) before Python checks for signals.
POLL_MS = 100

Stats = namedtuple("Stats", ["tasks", "tasks_run", "peak_live"])
Stats.__doc__ = """Figures about a computation: tasks the requested keys
need, tasks that ran to completion, most results held in memory at once."""


class CFunction:
    """A C function to run as a task on rask's threads (callback mode).

    ``func`` is a ctypes function from a loaded library (``mylib.my_task``)
    or an address; it must have the signature of ``rask_callback`` in
    include/rask.h. ``user_data`` (an int address, a ``ctypes.c_void_p`` or
    ``None``) is passed to it as it is and stays yours (rask gets no
    ``drop_user_data``): keep what it points to, and the library, alive while
    computations that use it run. Give it in ``functions=``::

        rask.compute(g, "b", functions={"c_inc": rask.CFunction(mylib.c_inc)})
    """

    def __init__(self, func, user_data=None):
        if isinstance(func, int):
            address = func
        else:
            address = ctypes.cast(func, ctypes.c_void_p).value
        if not address:
            raise ValueError("a CFunction needs a non-NULL function pointer")
        self.callback = func if isinstance(func, L.Callback) else L.Callback(address)
        if isinstance(user_data, ctypes.c_void_p):
            user_data = user_data.value
        self.user_data = user_data

    def __repr__(self):
        return f"CFunction(0x{ctypes.cast(self.callback, ctypes.c_void_p).value:x})"


def _describe(exc):
    text = str(exc)
    name = type(exc).__qualname__
    return f"{name}: {text}" if text else name


class Computation:
    """A computation running in the background (owns a ``rask_computation``).

    ``Computation(graph, keys, functions=None, threads=0)`` starts it: rask's
    ``threads`` threads (0: one per CPU) run the builtins at once; tasks of
    Python functions wait until a Python thread calls :meth:`pull` or
    :meth:`work`. Any number of Python threads may pull at once.

    ``graph`` is a :class:`rask.Graph` or a Dask-style dict (see
    :func:`rask.from_dask`); ``keys`` a key or a list of keys;
    ``functions`` maps names used by tasks to Python callables (in addition
    to the callables the graph's tasks were given directly).

    Use it as a context manager, or call :meth:`close` (idempotent;
    cancels the computation if it is still running).
    """

    def __init__(self, graph, keys, functions=None, threads=0):
        self._h = None
        self._host = None
        self._users = 0
        self._closed = False
        self._cond = threading.Condition()
        self._exceptions = {}  # key -> exception raised by a Python function
        owned = None
        if isinstance(graph, dict):
            from .dask_spec import from_dask

            graph = owned = from_dask(graph)
        try:
            self._start(graph, keys, functions, threads)
        finally:
            if owned is not None:
                owned.close()  # the computation keeps its own snapshot

    def _start(self, graph, keys, functions, threads):
        if not isinstance(graph, Graph):
            raise TypeError(f"graph must be a rask.Graph or a dict, not {type(graph).__name__}")
        self._single = not isinstance(keys, list)
        self.keys = [key_name(k) for k in ([keys] if self._single else keys)]
        self._functions = graph.functions
        self._c_functions = {}  # name -> CFunction, kept alive with the computation
        for name, f in (functions or {}).items():
            if isinstance(f, CFunction):
                self._c_functions[name] = f
                continue
            if not callable(f):
                raise TypeError(f"functions[{name!r}] is neither callable nor a rask.CFunction")
            if name in self._functions and self._functions[name] is not f:
                raise ValueError(f"two different callables are named {name!r}")
            self._functions[name] = f

        lib = L.lib()
        reg = lib.registry_new()
        if not reg:
            raise RaskError("rask_registry_new failed")
        try:
            for name in self._functions:
                if name in self._c_functions:
                    raise ValueError(f"{name!r} names both a Python function and a C function")
                call(lib.registry_add_pulled, reg, name.encode())
            for name, f in self._c_functions.items():
                call(lib.registry_add_callback, reg, name.encode(), f.callback, f.user_data, L.DropUserData())
            n = len(self.keys)
            keys_arr = (ctypes.c_char_p * n)(*(k.encode() for k in self.keys))
            opts = L.ComputeOptions(threads=threads)
            out = L.ComputationP()
            with graph._lock:  # the graph is not closed or changed meanwhile
                call(lib.computation_start, graph.handle, keys_arr, n, reg, ctypes.byref(opts), ctypes.byref(out))
            self._h = out
            if _msgpack is not None:  # results stay Python objects (see _host)
                self._host = _host.host()
                call(lib.computation_use_host, out, self._host.handle)
        finally:
            lib.registry_free(reg)  # the computation keeps what it needs

    # ----------------------------------------------------------- lifetime

    def _enter(self):
        with self._cond:
            if self._closed or not self._h:
                raise StateError("the computation is closed")
            self._users += 1
            return self._h

    def _leave(self):
        with self._cond:
            self._users -= 1
            if self._users == 0:
                self._cond.notify_all()

    def close(self):
        """Cancels the computation if it still runs, waits until no other
        thread is inside a call on it, and frees it. Idempotent."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            h = self._h
            if h:
                call(L.lib().computation_cancel, h)
            while self._users:
                self._cond.wait()
            self._h = None
        if h:
            L.lib().computation_free(h)

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -------------------------------------------------------------- pull

    def pull(self, timeout=None):
        """Waits up to ``timeout`` seconds (``None``: until one comes or the
        computation ends) for one task of a Python function, and runs it.
        Returns ``True`` if a task ran, ``False`` once the computation has
        ended. With a timeout, returns ``None`` when no task came in time.

        An exception raised by the function fails the task (and so the
        computation) with its type and message; it is not raised here but by
        :meth:`wait` / :meth:`results`, as a :class:`rask.TaskError` whose
        ``__cause__`` it is. ``KeyboardInterrupt`` and ``SystemExit`` also
        cancel the computation and are raised here.
        """
        lib = L.lib()
        remaining = None if timeout is None else max(0, int(timeout * 1000))
        while True:
            slice_ms = POLL_MS if remaining is None else min(POLL_MS, remaining)
            task = L.TaskP()
            try:
                h = self._enter()
            except StateError:
                return False
            handed = False
            try:
                try:
                    status = call(lib.computation_next_task, h, slice_ms, ctypes.byref(task))
                finally:
                    self._leave()
                if status == L.OK:
                    handed = True  # from here on _run ends the task
                    self._run(task)
                    return True
            except BaseException:
                if task and not handed:  # e.g. Ctrl-C right after next_task returned
                    lib.task_free(task)
                raise
            if status == L.DONE:
                return False
            if remaining is not None:
                remaining -= slice_ms
                if remaining <= 0:
                    return None

    def _run(self, task):
        """Runs the pulled ``task`` and ends it exactly once."""
        lib = L.lib()
        key = func = None
        try:
            key = lib.task_key(task).decode()
            func = lib.task_func(task).decode()
            f = self._functions.get(func)
            if f is None:
                raise LookupError(f"no Python function is named {func!r}")
            args = [from_value(lib.task_arg(task, i)) for i in range(lib.task_nargs(task))]
            result = f(*args)
            result = self._host.value(result) if self._host is not None else to_value(result)
        except BaseException as e:
            if key is not None:
                self._exceptions.setdefault(key, e)
            msg = _describe(e).encode("utf-8", "replace")
            call(lib.task_fail, task, msg)  # consumes the task
            if not isinstance(e, Exception):  # KeyboardInterrupt, SystemExit
                self.cancel()
                raise
            return
        call(lib.task_complete, task, result)  # consumes both

    def _pull_batch(self):
        """Takes up to :data:`BATCH` ready tasks in one C call, runs them,
        and ends them all in one more. Returns False once the computation
        has ended. (The one-task-per-call loop is :meth:`pull`; several
        pulling threads use it, so that they share the work.)"""
        lib = L.lib()
        data = ctypes.POINTER(ctypes.c_uint8)()
        size = ctypes.c_size_t()
        try:
            h = self._enter()
        except StateError:
            return False
        try:
            status = call(lib.computation_take_tasks, h, BATCH, POLL_MS, ctypes.byref(data), ctypes.byref(size))
        finally:
            self._leave()
        if status == L.DONE:
            return False
        if status != L.OK:
            return True
        tasks = take_buffer(data, size.value)
        results = []
        stop = None
        run = self._call
        ref = self._host.ref
        for tid, key, func, args in tasks:
            try:
                results.append([tid, True, ref(run(key, func, args))])
            except BaseException as e:
                self._exceptions.setdefault(key, e)
                results.append([tid, False, _describe(e)])
                if not isinstance(e, Exception):  # KeyboardInterrupt, SystemExit
                    stop = e
                    break
        try:
            payload = pack(results)
        except (TypeError, OverflowError, ValueError):  # a result rask cannot hold: that task fails
            payload = pack([self._packable(r, tasks) for r in results])
        h = self._enter()
        try:
            call(lib.computation_complete_tasks, h, payload, len(payload))
        finally:
            self._leave()
        if stop is not None:
            self.cancel()
            raise stop
        return True

    def _call(self, key, func, args):
        """The result of the task ``key``: its function applied to ``args``."""
        f = self._functions.get(func)
        if f is None:
            raise LookupError(f"no Python function is named {func!r}")
        return f(*args)

    def _packable(self, result, tasks):
        tid, ok, value = result
        if not ok:
            return result
        try:
            pack(value)
            return result
        except (TypeError, OverflowError, ValueError) as e:
            key = next(k for t, k, _, _ in tasks if t == tid)
            self._exceptions.setdefault(key, e)
            return [tid, False, _describe(e)]

    def work(self, threads=1):
        """Pulls and runs tasks of Python functions until the computation
        ends, on this thread and ``threads - 1`` more. Returns when it has
        ended (successfully or not: see :meth:`wait`). ``KeyboardInterrupt``
        cancels the computation and is re-raised."""
        helpers = []
        errors = []

        # One thread takes tasks by batches; several take them one by one,
        # so that they share the work (a batch would go to one of them).
        pull = self._pull_batch if _msgpack is not None and threads <= 1 else self.pull

        def loop():
            try:
                while pull() is not False:
                    pass
            except BaseException as e:  # noqa: BLE001 - re-raised on the calling thread
                errors.append(e)
                self.cancel()

        for i in range(max(1, threads) - 1):
            t = threading.Thread(target=loop, name=f"rask-pull-{i + 1}", daemon=True)
            t.start()
            helpers.append(t)
        try:
            while pull() is not False:
                pass
        except BaseException:
            self.cancel()
            raise
        finally:
            for t in helpers:
                t.join()
        if errors:
            raise errors[0]

    # ----------------------------------------------------------- outcome

    def _raise(self, e):
        if isinstance(e, TaskError):
            cause = self._exceptions.get(e.key)
            if cause is not None:
                e.exception = cause
                raise e from cause
        raise e

    def wait(self, timeout=None):
        """Waits up to ``timeout`` seconds (``None``: forever) for the
        computation to end. Returns ``True`` if it finished, ``False`` if
        it still runs; raises its error if it failed. Waiting does not run
        Python functions: call :meth:`work` (or :meth:`pull`) for that."""
        lib = L.lib()
        remaining = None if timeout is None else max(0, int(timeout * 1000))
        while True:
            slice_ms = POLL_MS if remaining is None else min(POLL_MS, remaining)
            h = self._enter()
            try:
                status = call(lib.computation_wait, h, slice_ms)
            except RaskError as e:
                self._raise(e)
            finally:
                self._leave()
            if status == L.OK:
                return True
            if remaining is not None:
                remaining -= slice_ms
                if remaining <= 0:
                    return False

    @property
    def done(self):
        """Whether the computation has ended (finished, failed or cancelled)."""
        if not self._h:
            return True
        h = self._enter()
        try:
            return L.lib().computation_is_done(h)
        finally:
            self._leave()

    def results(self):
        """The values of the keys: one value if the computation was started
        with a single key, else a list. Waits for the end first (without
        pulling). Raises the computation's error if it failed."""
        self.wait()
        lib = L.lib()
        n = len(self.keys)
        out = (L.ValueP * n)()
        h = self._enter()
        try:
            call(lib.computation_results, h, out)
        except RaskError as e:
            self._raise(e)
        finally:
            self._leave()
        try:
            values = [from_value(out[i]) for i in range(n)]
        finally:
            for i in range(n):
                lib.value_free(out[i])
        return values[0] if self._single else values

    def cancel(self):
        """Cancels the computation (nothing happens if it has ended)."""
        with self._cond:
            if self._closed or not self._h:
                return
            call(L.lib().computation_cancel, self._h)

    @property
    def stats(self):
        """:class:`Stats` so far."""
        s = L.ComputeStats()
        h = self._enter()
        try:
            call(L.lib().computation_stats, h, ctypes.byref(s))
        finally:
            self._leave()
        return Stats(s.tasks, s.tasks_run, s.peak_live)


def compute(graph, keys, functions=None, threads=0, pullers=1):
    """Computes ``keys`` of ``graph`` and returns their values.

    - ``graph``: a :class:`rask.Graph`, or a Dask-style dict (see
      :func:`rask.from_dask`).
    - ``keys``: one key (its value is returned) or a list of keys (a list of
      values is returned).
    - ``functions``: ``{name: callable}``, Python functions that tasks name
      (run in pull mode), or ``{name: rask.CFunction(...)}`` for C functions
      (run on rask's threads).
    - ``threads``: rask's threads for builtins and C callbacks (0: one per CPU).
    - ``pullers``: Python threads that run Python functions (the calling
      thread is one of them).

    Raises :class:`rask.GraphError`, :class:`rask.UnknownFunctionError`,
    :class:`rask.TaskError` (with the Python exception as ``__cause__``), ...
    """
    with Computation(graph, keys, functions=functions, threads=threads) as comp:
        comp.work(pullers)
        return comp.results()

"""rask.Worker: Python functions served to a cluster through pull mode.

A :class:`Worker` joins a scheduler (``rask_worker_start``) offering the
names of its Python functions (registered as *pulled*) next to rask's
builtins and any C functions (:class:`rask.CFunction`, run on rask's
threads). Tasks of the Python functions wait in the worker until a Python
thread takes one with ``rask_worker_next_task``, runs the function holding
the GIL, and hands the result back (``rask_task_complete``) or fails the
task with the exception's type and message (``rask_task_fail``). rask never
calls into Python from its own threads — the same pull mode as local
computations (:mod:`rask.compute`).
"""

import ctypes
import logging
import os
import threading
import time
import traceback
import weakref
from collections import OrderedDict, deque

from .. import _host
from .. import _lib as L
from .._handle import POLL_MS, Deadline, Handle, at_exit
from ..compute import CFunction, _describe

# Seconds a spare serving thread (one without a slot, see rask.secede) waits
# for a seceding task's slot before it ends.
SPARE_IDLE = 10.0
from ..errors import RaskError, StateError, call
from ..graph import DICT_HELPER, _make_dict
from ..shipping import CODE_FUNC, CODE_PREFIX, RUNTIME, CodeCache, may_run_code
from ..coordination import _TASK
from ..values import _msgpack, from_value, pack, take_buffer, to_value

logger = logging.getLogger("rask.worker")

#: Most tasks a serving thread takes in one call (``rask_worker_take_tasks``)
#: when the worker's other threads are all busy; with an idle thread it takes
#: one, so that tasks which wait for each other never queue behind one thread.
BATCH = 64

#: Results handed back as plain msgpack in batches: scalars. Anything else
#: goes in the same batch as a reference to the Python object, which stays
#: one inside rask (a host value, see rask._host; rask_worker_use_host).
_PLAIN = frozenset((type(None), bool, int, float, str, bytes))

#: Results are handed back in one call (``rask_worker_complete_tasks``) once
#: this many wait, once the first has waited this long (s), or once the
#: thread has nothing else queued.
FLUSH_AFTER = 0.002

def _result_value(result):
    """A new ``rask_value *`` for a task's result handed back through its
    own ``rask_task``: a scalar as a plain value (as in batches: the
    scheduler then forwards a small one with ``key-in-memory``, and a
    client waiting for it needs no ``get-data`` from this worker), anything
    else as a host value (it stays the very Python object here)."""
    if type(result) in _PLAIN:
        try:
            return to_value(result)
        except OverflowError:  # an int beyond 64 bits: stays a Python int
            pass
    return _host.host().value(result)


# Workers of this process, so that a client of this process can name a
# callable by the name a worker serves it under.
_WORKERS = weakref.WeakSet()

# The latest exceptions raised by served functions, by (worker data address,
# key), so that a client of this process can attach the exception object to a
# RemoteTaskError. A worker's are dropped when it closes: a key reused on
# another cluster (or another worker) never gets an old exception as its
# cause.
_EXCEPTIONS = OrderedDict()
_EXCEPTIONS_MAX = 256
_EXCEPTIONS_LOCK = threading.Lock()


def _remember(worker_address, key, exc):
    with _EXCEPTIONS_LOCK:
        _EXCEPTIONS.pop((worker_address, key), None)
        _EXCEPTIONS[(worker_address, key)] = exc
        while len(_EXCEPTIONS) > _EXCEPTIONS_MAX:
            _EXCEPTIONS.popitem(last=False)


def _forget_worker(worker_address):
    with _EXCEPTIONS_LOCK:
        for k in [k for k in _EXCEPTIONS if k[0] == worker_address]:
            del _EXCEPTIONS[k]


def recent_exception(worker_address, key):
    """The exception a served function of the running worker at
    ``worker_address`` raised for ``key`` in this process (among the latest
    few hundred), or None."""
    if not worker_address or not key:
        return None
    with _EXCEPTIONS_LOCK:
        return _EXCEPTIONS.get((worker_address, key))


def exception_type_name(exc):
    """``ValueError`` for a builtin exception, ``module.Qual`` otherwise."""
    t = type(exc)
    module = getattr(t, "__module__", None)
    if module in (None, "builtins", "__main__"):
        return t.__qualname__
    return f"{module}.{t.__qualname__}"


def _traceback_text(exc, skip=None):
    """``exc``'s traceback as text, without its first frame when that is
    ``skip``'s (the loop that called the function)."""
    tb = exc.__traceback__
    if tb is not None and skip is not None and tb.tb_frame.f_code is skip.__code__:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


def fail_task(task, exc, skip=None):
    """Fails the pulled ``task`` (consumed) with ``exc``'s message, type name
    and traceback (``rask_task_fail_exception``); the traceback leaves out
    its first frame when that is ``skip``'s (the loop that called the
    function)."""
    tb = _traceback_text(exc, skip)
    call(
        L.lib().task_fail_exception,
        task,
        _describe(exc).encode("utf-8", "replace"),
        exception_type_name(exc).encode("utf-8", "replace"),
        tb.encode("utf-8", "replace"),
    )


def _live_workers(address=None):
    """Running workers of this process; those of the scheduler at
    ``address`` first (an address may be spelt differently, so the others
    follow)."""
    live = [w for w in list(_WORKERS) if w.running]
    return sorted(live, key=lambda w: w.scheduler_address != address)


def served_name(func, address=None):
    """The name a running Worker of this process (preferably one of the
    scheduler at ``address``) serves ``func`` under, or None."""
    for w in _live_workers(address):
        for name, f in w._functions.items():
            if f is func:
                return name
    return None


def served_function(name, address=None):
    """The callable a running Worker of this process (preferably one of the
    scheduler at ``address``) serves as ``name``, or None."""
    for w in _live_workers(address):
        f = w._functions.get(name)
        if f is not None:
            return f
    return None


def _functions_dict(functions):
    if functions is None:
        return {}
    if isinstance(functions, dict):
        return dict(functions)
    out = {}
    for f in functions:  # a list of callables: named by __name__
        name = getattr(f, "__name__", None)
        if not name or name == "<lambda>":
            raise ValueError(f"give {f!r} a name: functions={{'name': f}}")
        out[name] = f
    return out


def _reconnect_ms(seconds):
    """``reconnect_timeout_ms`` for ``reconnect_timeout`` seconds: None or 0
    or less -> 0 (stop at once); a positive time at least 1 ms."""
    if seconds is None or seconds <= 0:
        return 0
    return max(1, int(seconds * 1000))


class Worker:
    """A worker serving Python functions to a rask cluster (owns a
    ``rask_worker``).

    ``Worker(address, functions={"name": callable, ...}, nthreads=1,
    name=None)`` joins the scheduler at ``address`` (a ``"tcp://host:port"``
    str, a :class:`rask.LocalCluster` or a :class:`rask.Scheduler`) and
    returns once registered. Serve tasks with :meth:`run` (blocks) or
    :meth:`start` (background threads); stop with :meth:`stop` / :meth:`close`.
    ``with Worker(...) as w:`` starts serving and closes at the end.

    - ``functions``: ``{name: callable}`` run in pull mode by ``nthreads``
      Python threads (so up to ``nthreads`` of these tasks run at once:
      the worker tells the scheduler it runs ``threads + nthreads`` tasks
      at once), or ``{name: rask.CFunction(...)}`` run on rask's
      ``threads`` threads (also the builtins'); a list of named functions
      is taken as ``{f.__name__: f}``. The scheduler sends the worker only
      tasks of functions it offers.
    - an exception raised by a function fails that task with
      ``"TypeName: message"``, the type's name and the traceback; a client
      sees a :class:`rask.RemoteTaskError` with ``exception_type`` and
      ``remote_traceback`` (in this process also with the exception itself
      as ``__cause__``, while this worker is open).
    - ``token``: the cluster's secret (taken from a LocalCluster/Scheduler).
    - ``tls_ca_file``, ``tls_cert``, ``tls_key``: PEM paths, all three or
      none (taken from a LocalCluster/Scheduler): the data port serves TLS
      only and ``tls://`` addresses are reached with TLS.
    - ``allow_code``: run *shipped* functions (any callable a client
      submits, serialized with cloudpickle; see docs/python.md). Off by
      default: unpickling runs arbitrary code. On a scheduler address that
      is not loopback it also needs ``token`` or TLS; without them the
      worker does not offer shipped code (a warning says why) and the
      scheduler errs such tasks naming the option. :attr:`allows_code`
      says what the worker offers.
    - ``reconnect_timeout`` (s): when the connection to the scheduler is
      lost (not closed by it), how long to keep trying to reconnect; the
      worker then registers again as a new worker. ``None`` or 0 (the
      default, as in C): no reconnecting, the worker stops at once.
    - ``threads``, ``host``, ``heartbeat`` (s), ``connect_timeout`` (s):
      ``rask_worker_options``.
    - memory, as Dask's workers: ``memory_limit`` in bytes; ``"auto"`` (the
      default) is the machine's memory times the worker's share of the
      CPUs, ``0`` or ``None`` no limit. Results over
      ``memory_target_fraction`` (0.6) of it spill to disk, least recently
      used first, into a directory made under ``local_directory`` (default:
      the system temp dir) and removed when the worker stops; process
      memory over ``memory_spill_fraction`` (0.7) spills more, over
      ``memory_pause_fraction`` (0.8) pauses the worker (no task starts),
      over ``memory_terminate_fraction`` (0.95) restarts it. ``None`` keeps
      a default, ``False`` turns a step off. ``spill_compression``:
      ``"lz4"`` or ``None``.
    """

    def __init__(
        self,
        address,
        functions=None,
        nthreads=1,
        name=None,
        *,
        token=None,
        threads=1,
        host=None,
        memory_limit="auto",
        heartbeat=None,
        connect_timeout=None,
        reconnect_timeout=None,
        tls_ca_file=None,
        tls_cert=None,
        tls_key=None,
        allow_code=False,
        memory_target_fraction=None,
        memory_spill_fraction=None,
        memory_pause_fraction=None,
        memory_terminate_fraction=None,
        local_directory=None,
        spill_compression="lz4",
    ):
        from ..client import _address_of

        if memory_limit == "auto":
            c_limit = 0
        elif memory_limit is None or memory_limit == 0:
            c_limit = 2**64 - 1
        elif isinstance(memory_limit, int) and memory_limit > 0:
            c_limit = memory_limit
        else:
            raise ValueError(f"memory_limit must be 'auto', a positive number of bytes, 0 or None, not {memory_limit!r}")
        if spill_compression not in ("lz4", None):
            raise ValueError(f"spill_compression must be 'lz4' or None, not {spill_compression!r}")

        def frac(f):
            return 0.0 if f is None else -1.0 if f is False else float(f)

        self._handle = None
        self._threads = []  # threads made by start() or run() (not run()'s caller)
        self._threads_kept = 64  # _threads is pruned of ended threads when twice this long
        self._serving = False
        self._state_lock = threading.Lock()
        self._counts_lock = threading.Lock()
        self.tasks_run = 0
        self.tasks_failed = 0
        if nthreads < 1:
            raise ValueError("nthreads must be at least 1")
        self.nthreads = nthreads
        tls = L.tls_of(tls_ca_file, tls_cert, tls_key)
        if not isinstance(address, str):
            if token is None:
                token = getattr(address, "token", None)
            if tls is None:
                tls = getattr(address, "tls", None)
        self.scheduler_address = _address_of(address)
        self._token, self._tls = token, tls
        self._client = None  # get_client() inside this worker's tasks
        self._client_lock = threading.Lock()
        # Serving threads holding a slot (at most nthreads, see rask.secede),
        # those waiting in next_task, and seceded tasks waiting to rejoin.
        # Spare serving threads (without a slot) park on _spare until a
        # seceding task hands them its slot (_spare_grants) instead of a new
        # thread being started; _spares counts those not yet claimed.
        lock = threading.RLock()
        self._slots = threading.Condition(lock)
        self._spare = threading.Condition(lock)
        self._active = 0
        self._idle = 0
        self._rejoining = 0
        self._rejoin_slots = 0  # slots seceding tasks freed for rejoiners (<= _rejoining)
        # Batches (rask_worker_take_tasks): tasks taken and not started yet,
        # [id, key, func, args] (any serving thread runs them), and the
        # number of tasks running on a slot now (guarded by _slots).
        self._backlog = deque()
        self._running = 0
        self._spares = 0
        self._spare_grants = 0
        self._stopping = False  # a serving thread saw the worker stop

        self._functions = {}  # name -> Python callable (pulled)
        self._c_functions = {}  # name -> CFunction, kept alive with the worker
        for fname, f in _functions_dict(functions).items():
            if isinstance(f, CFunction):
                self._c_functions[fname] = f
            elif callable(f):
                self._functions[fname] = f
            else:
                raise TypeError(f"functions[{fname!r}] is neither callable nor a rask.CFunction")
        if DICT_HELPER not in self._functions and DICT_HELPER not in self._c_functions:
            self._functions[DICT_HELPER] = _make_dict  # dict arguments of graphs (rask.Graph)
        for fname in list(self._functions) + list(self._c_functions):
            if fname.startswith(CODE_PREFIX):
                raise ValueError(f"function names beginning with {CODE_PREFIX!r} are reserved for shipped functions: {fname!r}")
        self.allows_code = False
        self._code = None
        if allow_code:
            refused = may_run_code(self.scheduler_address, token, tls)
            if refused is None:
                self.allows_code = True
                self._code = CodeCache()
            else:
                logger.warning("allow_code ignored: %s", refused)

        lib = L.lib()
        reg = lib.registry_new()
        if not reg:
            raise RaskError("rask_registry_new failed")
        try:
            for fname in self._functions:
                call(lib.registry_add_pulled, reg, fname.encode())
            if self.allows_code:
                call(lib.registry_add_pulled, reg, CODE_FUNC.encode())
            for fname, f in self._c_functions.items():
                call(
                    lib.registry_add_callback, reg, fname.encode(), f.callback, f.user_data, L.DropUserData()
                )
            opts = L.WorkerOptions(
                name=name.encode() if name else None,
                threads=threads,
                # The nthreads Python threads that run tasks at once: the
                # scheduler sends this worker work for all of them.
                pull_threads=nthreads,
                runtime=RUNTIME.encode(),
                host=host.encode() if host else None,
                memory_limit=c_limit,
                memory_target_fraction=frac(memory_target_fraction),
                memory_spill_fraction=frac(memory_spill_fraction),
                memory_pause_fraction=frac(memory_pause_fraction),
                memory_terminate_fraction=frac(memory_terminate_fraction),
                local_directory=None if local_directory is None else os.fsencode(local_directory),
                spill_compression=0 if spill_compression == "lz4" else 1,
                token=token.encode() if token else None,
                heartbeat_ms=0 if heartbeat is None else max(1, int(heartbeat * 1000)),
                connect_timeout_ms=0 if connect_timeout is None else max(1, int(connect_timeout * 1000)),
                reconnect_timeout_ms=_reconnect_ms(reconnect_timeout),
                **L.tls_fields(tls),
            )
            out = L.WorkerP()
            call(
                lib.worker_start, self.scheduler_address.encode(), ctypes.byref(opts), reg, ctypes.byref(out)
            )
        finally:
            lib.registry_free(reg)  # the worker copied it
        self.address = lib.worker_address(out).decode()
        self.name = lib.worker_name(out).decode()
        self._handle = Handle(out, lib.worker_free, f"worker {self.name!r}")
        if _msgpack is not None:  # batches (_serve_batches): results stay Python objects (see _host)
            call(lib.worker_use_host, out, _host.host().handle)
        _WORKERS.add(self)
        at_exit(self, 0)

    # ------------------------------------------------------------- state

    @property
    def functions(self):
        """The Python functions served, by name (a copy)."""
        return dict(self._functions)

    @property
    def stop_reason(self):
        """Why the worker stopped (a str), or None while it runs."""
        try:
            with self._handle.use() as h:
                raw = L.lib().worker_stop_reason(h)
        except StateError:
            return "closed"
        return raw.decode("utf-8", "replace") if raw is not None else None

    @property
    def running(self):
        """Whether the worker is still in the cluster (not stopped or closed)."""
        return self._handle is not None and not self._handle.closed and self.stop_reason is None

    def wait(self, timeout=None):
        """Waits up to ``timeout`` seconds (None: until it happens) for the
        worker to stop. Returns True once it stopped cleanly (:meth:`stop`,
        or the scheduler closed it), False at the deadline; raises
        :class:`rask.RaskConnectionError` when the connection to the
        scheduler was lost."""
        lib = L.lib()
        dl = Deadline(timeout)
        while True:
            try:
                with self._handle.use() as h:
                    status = call(lib.worker_wait, h, dl.slice_ms())
            except StateError:
                return True
            if status == L.OK:
                return True
            if dl.passed():
                return False

    # ----------------------------------------------------------- serving

    def _serve(self):
        """Pulls and runs tasks until the worker stops (or is closed), or
        until this thread hands its slot over (see :func:`rask.secede`):
        in batches when ``msgpack`` is there (it is a dependency), else one
        ``rask_task`` at a time."""
        if _msgpack is not None:
            return self._serve_batches()
        return self._serve_each()

    def _serve_batches(self):
        """:meth:`_serve` with ``rask_worker_take_tasks`` (tasks and their
        arguments in one msgpack buffer per call) and
        ``rask_worker_complete_tasks`` (results in one buffer per call).
        A thread takes a batch only while every other slot runs a task; the
        tasks it does not start at once wait in the worker's backlog, where
        the next free thread finds them."""
        lib = L.lib()
        done = _TASK.done = []  # [id, ok, value...] not handed back yet
        first_done = 0.0
        try:
            while True:
                with self._slots:
                    give_up = self._active > self.nthreads or (self._rejoining and self._active >= self.nthreads)
                    if give_up:
                        # One slot too many (a task rejoined meanwhile), or
                        # a seceded task waits for one: this thread hands
                        # it over and becomes a spare (or ends).
                        self._active -= 1
                        self._slots.notify_all()
                if give_up:
                    if not self._spare_after(done):
                        return
                    first_done = 0.0
                    continue
                with self._slots:
                    item = self._backlog.popleft() if self._backlog else None
                    if item is not None:
                        self._running += 1
                    elif not done:
                        self._idle += 1
                        many = self._running >= self.nthreads - 1
                if item is None and done:
                    self._flush(done)  # hand them back before waiting
                    first_done = 0.0
                    continue
                if item is None:
                    data = ctypes.POINTER(ctypes.c_uint8)()
                    size = ctypes.c_size_t()
                    try:
                        try:
                            with self._handle.use() as h:
                                status = call(
                                    lib.worker_take_tasks,
                                    h,
                                    BATCH if many else 1,
                                    POLL_MS,
                                    ctypes.byref(data),
                                    ctypes.byref(size),
                                )
                        except StateError:  # closed
                            self._stopped_serving()
                            return
                    finally:
                        with self._slots:
                            self._idle -= 1
                    if status == L.DONE:
                        self._stopped_serving()
                        return
                    if status != L.OK:
                        continue
                    tasks = take_buffer(data, size.value)
                    if not tasks:
                        continue
                    with self._slots:
                        self._backlog.extend(tasks[1:])
                        self._running += 1
                    item = tasks[0]
                    # Not kept through the next wait: a lent argument
                    # (a received chunk) would stay mapped while idle.
                    tasks = None
                try:
                    seceded = self._run_entry(item, done)
                finally:
                    with self._slots:
                        self._running -= 1
                item = None
                if done:
                    now = time.monotonic()
                    first_done = first_done or now
                    if len(done) >= BATCH or now - first_done >= FLUSH_AFTER:
                        self._flush(done)
                        first_done = 0.0
                if seceded:
                    # Its task seceded and ended without rejoining: this
                    # thread holds no slot; it takes a free one or becomes
                    # a spare (or ends).
                    with self._slots:
                        slotless = self._active >= self.nthreads or self._rejoining
                        if not slotless:
                            self._active += 1
                    if slotless:
                        if not self._spare_after(done):
                            return
                        first_done = 0.0
        finally:
            if done:
                try:
                    self._flush(done)
                except StateError:  # closed meanwhile: the tasks went with it
                    pass
            _TASK.done = None

    def _flush(self, done):
        """Hands the results in ``done`` back in one call and empties it. A
        result that cannot be packed (a type rask has no value for) fails
        its task instead."""
        payload = self._pack_done(done)
        with self._handle.use() as h:
            call(L.lib().worker_complete_tasks, h, payload, len(payload))

    def _pack_done(self, done):
        """The msgpack payload of the results in ``done`` (emptied), for
        ``rask_worker_complete_tasks``: a result that cannot be packed fails
        its task instead."""
        try:
            payload = pack(done)
        except (TypeError, OverflowError, ValueError):
            entries = []
            for entry in done:
                try:
                    pack(entry)
                    entries.append(entry)
                except (TypeError, OverflowError, ValueError) as e:
                    entries.append([entry[0], False, _describe(e), exception_type_name(e), None])
                    with self._counts_lock:
                        self.tasks_run -= 1
                        self.tasks_failed += 1
            payload = pack(entries)
        done.clear()
        return payload

    def _run_entry(self, item, done):
        """Runs one task of a batch, ``[id, key, func, args]``, and appends
        its ending to ``done`` (or ends it through its own handle when the
        task asked for one: get_client, secede). Returns True when the task
        seceded and did not rejoin (the thread then holds no slot)."""
        tid, key, func, args = item
        seceded = False
        task = None
        try:
            f = self._functions.get(func)
            if f is None:
                if func == CODE_FUNC and args:
                    if self._code is None:  # (not offered, so not sent: a scheduler's mistake)
                        raise PermissionError(
                            f"worker {self.name!r} runs no shipped code: start it with allow_code=True "
                            "(python -m rask.worker ... --allow-code)"
                        )
                    f = self._code.load(args[0], self.name)
                    args = args[1:]
                else:
                    raise LookupError(f"worker {self.name!r} serves no Python function named {func!r}")
            _TASK.client_of = self._task_client
            _TASK.worker, _TASK.task, _TASK.tid, _TASK.seceded = self, None, tid, False
            try:
                result = f(*args)
            finally:
                seceded = _TASK.seceded
                task = _TASK.task  # detached (get_client, secede): ended through it
                _TASK.client_of = _TASK.worker = _TASK.task = _TASK.tid = None
                _TASK.seceded = False
        except BaseException as e:
            _remember(self.address, key, e)
            with self._counts_lock:
                self.tasks_failed += 1
            if isinstance(e, Exception):
                logger.warning("task %r (%s) failed on worker %s", key, func, self.name, exc_info=e)
            if task is not None:
                fail_task(task, e, Worker._run_entry)  # consumes the task
            else:
                tb = _traceback_text(e, Worker._run_entry)
                done.append([tid, False, _describe(e), exception_type_name(e), tb])
            if not isinstance(e, Exception):  # KeyboardInterrupt, SystemExit
                raise
            return seceded
        # Counted before the result is handed back: whoever sees the result
        # sees the count.
        with self._counts_lock:
            self.tasks_run += 1
        if task is not None:
            call(L.lib().task_complete, task, _result_value(result))  # consumes both
        elif type(result) in _PLAIN:
            done.append([tid, True, result])  # a scalar: plain msgpack
        else:
            done.append([tid, True, _host.host().ref(result)])  # a reference: stays a Python object here
        return seceded

    def _detach(self, tid):
        """The ``rask_task`` of the task ``tid`` of a batch
        (``rask_worker_detach_task``), after this thread's results waiting
        to be handed back are."""
        done = getattr(_TASK, "done", None)
        if done:
            self._flush(done)
        task = L.TaskP()
        with self._handle.use() as h:
            call(L.lib().worker_detach_task, h, tid, ctypes.byref(task))
        return task

    def _current_task(self):
        """The ``rask_task`` of the task running on this thread: a task of a
        batch is detached from it first (``rask_worker_detach_task``), after
        this thread's results waiting to be handed back are (a task that
        asks for its client may wait on them)."""
        task = getattr(_TASK, "task", None)
        if task is not None:
            return task
        task = _TASK.task = self._detach(_TASK.tid)
        return task

    def _serve_each(self):
        """:meth:`_serve`, one ``rask_task`` per call."""
        lib = L.lib()
        while True:
            with self._slots:
                # One slot too many (a task rejoined while this thread was
                # idle), or a seceded task waits for one: this thread hands
                # it over and becomes a spare (or ends).
                if self._active > self.nthreads or (self._rejoining and self._active >= self.nthreads):
                    self._active -= 1
                    self._slots.notify_all()
                    if not self._park():
                        return
                self._idle += 1
            task = L.TaskP()
            handed = False
            try:
                try:
                    with self._handle.use() as h:
                        status = call(lib.worker_next_task, h, POLL_MS, ctypes.byref(task))
                except StateError:  # closed
                    with self._slots:
                        self._stopping = True
                        self._spare.notify_all()
                    return
                finally:
                    with self._slots:
                        self._idle -= 1
                if status == L.DONE:
                    with self._slots:
                        self._stopping = True
                        self._spare.notify_all()
                    return
                if status == L.OK:
                    handed = True  # from here on _run ends the task
                    if self._run(task):
                        # Its task seceded and ended without rejoining:
                        # this thread holds no slot; it takes a free one
                        # or becomes a spare (or ends).
                        with self._slots:
                            if self._active >= self.nthreads or self._rejoining:
                                if not self._park():
                                    return
                            else:
                                self._active += 1
            except BaseException:
                if task and not handed:  # e.g. Ctrl-C right after next_task returned
                    lib.task_free(task)
                raise

    def _stopped_serving(self):
        """A serving thread saw the worker stop (or closed): the spares end."""
        with self._slots:
            self._stopping = True
            self._spare.notify_all()

    def _spare_after(self, done):
        """By a batch-serving thread without a slot: hands back its results
        (``done``), then waits as a spare (see :meth:`_park`). True when it
        got a seceding task's slot."""
        if done:
            self._flush(done)
        with self._slots:
            return self._park()

    def _park(self):
        """With ``_slots`` held, by a serving thread without a slot: waits
        as a spare until a seceding task hands it its slot (True), or the
        worker stops or SPARE_IDLE seconds pass (False: the thread ends)."""
        self._spares += 1
        deadline = time.monotonic() + SPARE_IDLE
        while True:
            # Whichever spare wakes first takes a grant; the claim that
            # came with it already took one off _spares.
            if self._spare_grants:
                self._spare_grants -= 1
                return True
            left = deadline - time.monotonic()
            if left <= 0 or self._stopping or self.stop_reason is not None:
                self._spares -= 1
                return False
            # One wait, not slices: thousands of spares may park at once.
            # A serving thread that sees the worker stop wakes them all.
            self._spare.wait(left)

    def _run(self, task):
        """Runs the pulled ``task`` and ends it exactly once. Returns True
        when the task seceded and did not rejoin (the thread then holds no
        slot)."""
        lib = L.lib()
        seceded = False
        key = func = None
        try:
            key = lib.task_key(task).decode()
            func = lib.task_func(task).decode()
            args = [from_value(lib.task_arg(task, i)) for i in range(lib.task_nargs(task))]
            f = self._functions.get(func)
            if f is None:
                if func == CODE_FUNC and args:
                    if self._code is None:  # (not offered, so not sent: a scheduler's mistake)
                        raise PermissionError(
                            f"worker {self.name!r} runs no shipped code: start it with allow_code=True "
                            "(python -m rask.worker ... --allow-code)"
                        )
                    f = self._code.load(args[0], self.name)
                    args = args[1:]
                else:
                    raise LookupError(f"worker {self.name!r} serves no Python function named {func!r}")
            _TASK.client_of = self._task_client
            _TASK.worker, _TASK.task, _TASK.seceded = self, task, False
            try:
                result = _result_value(f(*args))
            finally:
                seceded = _TASK.seceded
                _TASK.client_of = _TASK.worker = _TASK.task = None
                _TASK.seceded = False
        except BaseException as e:
            if key is not None:
                _remember(self.address, key, e)
            with self._counts_lock:
                self.tasks_failed += 1
            if isinstance(e, Exception):
                logger.warning("task %r (%s) failed on worker %s", key, func, self.name, exc_info=e)
            fail_task(task, e, Worker._run)  # consumes the task
            if not isinstance(e, Exception):  # KeyboardInterrupt, SystemExit
                raise
            return seceded
        call(lib.task_complete, task, result)  # consumes both
        with self._counts_lock:
            self.tasks_run += 1
        return seceded

    # --------------------------------------------- secede / rejoin (tasks)

    def _secede(self, task):
        """The running ``task`` (None: this thread's) gives its slot back:
        the scheduler is told, and a spare serving thread takes the slot, or
        a new one."""
        if task is None:
            task = _TASK.task
        if task is None:
            # A task of a batch: this thread's results waiting to be handed
            # back go first (the task may wait on them), then the task is
            # detached and seceded — one call (rask_worker_secede_task).
            done = getattr(_TASK, "done", None)
            payload = self._pack_done(done) if done else b""
            task = L.TaskP()
            with self._handle.use() as h:
                # RASK_DONE: nobody wants it; still fine
                call(L.lib().worker_secede_task, h, _TASK.tid, payload, len(payload), ctypes.byref(task))
            _TASK.task = task
        else:
            call(L.lib().task_secede, task)  # RASK_DONE: nobody wants it; still fine
        with self._slots:
            if self._rejoining > self._rejoin_slots:
                # A seceded task waits to rejoin: the slot goes to it
                # (rejoiners before new tasks), one wake-up instead of a
                # spare's, which would hand it over at once anyway.
                self._rejoin_slots += 1
                self._active -= 1
                self._slots.notify_all()
                return
            if self._spares:
                self._spares -= 1
                self._spare_grants += 1
                self._spare.notify()
                return
        t = threading.Thread(target=self._thread_main, name=f"rask-worker-{self.name}-x", daemon=True)
        with self._state_lock:
            self._threads.append(t)
            if len(self._threads) >= 2 * self._threads_kept:  # drop the ended ones now and then
                self._threads = [x for x in self._threads if x.is_alive()]
                self._threads_kept = max(64, len(self._threads))
        t.start()  # holds the slot the seceded task gave up (_active unchanged)

    def _rejoin(self):
        """Waits for a free slot (or an idle serving thread, which then
        ends) and takes it."""
        with self._slots:
            self._rejoining += 1
            try:
                # (The worker's stop is looked at only after a wait ran
                # out: each look is a call into rask.)
                while self._active >= self.nthreads and self._idle == 0:
                    if not self._slots.wait(POLL_MS / 1000) and (self._stopping or self.stop_reason is not None):
                        break
            finally:
                self._rejoining -= 1
                if self._rejoin_slots:
                    self._rejoin_slots -= 1
            self._active += 1

    def _task_client(self):
        """The client of this worker's tasks (rask.get_client() inside one):
        the worker's one connection to its scheduler (``rask_task_client``),
        made on first use and closed with the worker. What tasks submit
        through it runs before work submitted earlier, newest first, so
        recursive submission goes depth first."""
        from ..client import Client

        with self._client_lock:
            if self._client is None or self._client.closed:
                out = L.ClientP()
                call(L.lib().task_client, self._current_task(), ctypes.byref(out))
                self._client = Client._of_handle(out)
                self._client._for_tasks = True
            return self._client

    def _thread_main(self):
        try:
            self._serve()
        except BaseException:
            logger.exception("worker %s: a serving thread failed", self.name)

    def run(self):
        """Serves tasks on this thread (and ``nthreads - 1`` more) until the
        worker stops. Returns :attr:`stop_reason` after a clean stop
        (:meth:`stop` from another thread, or the scheduler closing the
        worker); raises :class:`rask.RaskConnectionError` when the
        connection to the scheduler was lost. Ctrl-C stops the worker and is
        re-raised."""
        with self._state_lock:
            if self._serving:
                raise RuntimeError("the worker is already serving")
            self._handle.enter()  # raises if closed
            self._handle.leave()
            self._serving = True
            with self._slots:
                self._active = self.nthreads
            helpers = [
                threading.Thread(
                    target=self._thread_main, name=f"rask-worker-{self.name}-{i + 1}", daemon=True
                )
                for i in range(self.nthreads - 1)
            ]
            self._threads = list(helpers)  # (secede adds to it)
            for t in helpers:
                t.start()
        try:
            self._serve()
        except BaseException:
            self.stop()
            raise
        finally:
            for t in helpers:
                t.join()
            with self._state_lock:
                self._serving = False
                self._threads = []
        self.wait()  # raises if the scheduler was lost
        return self.stop_reason

    def start(self):
        """Serves tasks on ``nthreads`` background threads; returns self.
        Does nothing when already serving."""
        with self._state_lock:
            if self._serving:
                return self
            self._handle.enter()  # raises if closed
            self._handle.leave()
            self._serving = True
            with self._slots:
                self._active = self.nthreads
            self._threads = [
                threading.Thread(target=self._thread_main, name=f"rask-worker-{self.name}-{i}", daemon=True)
                for i in range(self.nthreads)
            ]
            for t in self._threads:
                t.start()
        return self

    def retire(self):
        """Retires the worker gracefully, as ``rask-worker`` does on SIGTERM:
        the scheduler moves the results only this worker holds to other
        workers, the tasks it has not started go elsewhere, the ones it runs
        finish, and then the scheduler closes it (:meth:`run` returns,
        :meth:`wait` is True). Returns at once; :meth:`stop` leaves at once
        instead. Does nothing to a stopped worker."""
        if self._handle is None:
            return
        try:
            with self._handle.use() as h:
                call(L.lib().worker_retire, h)
        except StateError:
            pass

    def stop(self):
        """Leaves the cluster (the scheduler recomputes elsewhere what only
        this worker held) and waits for the serving threads to finish the
        task they run. Does nothing to a stopped worker."""
        if self._handle is None:
            return
        try:
            with self._handle.use() as h:
                call(L.lib().worker_stop, h)
        except StateError:
            pass
        me = threading.current_thread()
        with self._state_lock:
            threads = [t for t in self._threads if t is not me]
        for t in threads:  # the threads start() made (run() joins its own)
            t.join()

    def close(self):
        """Stops the worker and frees it. Idempotent."""
        if self._handle is None:
            return
        self.stop()
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()
        self._handle.close()
        _WORKERS.discard(self)
        _forget_worker(self.address)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass

    def __repr__(self):
        state = "running" if self.running else "stopped"
        return f"<rask.Worker {self.name!r} at {getattr(self, 'address', '?')}: {state}, functions {sorted(self._functions)}>"

"""The distributed client: :class:`Client`, :class:`Future`, :func:`wait`,
:class:`as_completed` — named after dask.distributed's.

A :class:`Client` is a connection to a scheduler (``rask_client``). Its
calls return :class:`Future` objects at once (``rask_future``), while the
cluster computes; ``result()``/``gather`` wait and copy the values out.
Tasks name their functions: a builtin (``"inc"``), a C callback a worker
offers, or a Python function a :class:`rask.Worker` serves. Every wait
inside rask lasts at most ``POLL_MS`` before Python gets control back, so
Ctrl-C works and timeouts are honoured (``Future.result`` off the main
thread: ``THREAD_POLL_MS``, see rask._handle).

A Future is one reference to its key: when the last Python Future of a key
is released (:meth:`Future.release`, or garbage collection), the client
tells the scheduler, which may then forget the key and free its data.
"""

import array
import collections
import ctypes
import gc
import logging
import operator
import threading
import time
import weakref
from collections import OrderedDict, namedtuple

from . import _lib as L
from ._handle import POLL_MS, THREAD_POLL_MS, Deadline, Handle, at_exit
from .errors import CancelledError, RaskError, RemoteTaskError, StateError, TaskError, call
from .graph import DICT_HELPER, Graph, key_name
from .shipping import CODE_FUNC, CODE_PREFIX, code_key, dumps
from . import values as _values
from .values import _default, _msgpack, from_value, pack, take_buffer, take_value, to_value

_I64_MIN = -(1 << 63)
_I64_MAX = (1 << 63) - 1

ALL_COMPLETED = "ALL_COMPLETED"
FIRST_COMPLETED = "FIRST_COMPLETED"
_WAIT_MODES = {ALL_COMPLETED: L.WAIT_ALL_COMPLETED, FIRST_COMPLETED: L.WAIT_FIRST_COMPLETED}

_STATUS = {
    L.FUTURE_PENDING: "pending",
    L.FUTURE_FINISHED: "finished",
    L.FUTURE_ERROR: "error",
    L.FUTURE_CANCELLED: "cancelled",
}

logger = logging.getLogger("rask.client")

DoneAndNotDoneFutures = namedtuple("DoneAndNotDoneFutures", ["done", "not_done"])
DoneAndNotDoneFutures.__doc__ = "What :func:`rask.wait` returns: two sets of futures."


# ------------------------------------------------------------------ errors


def remote_error(e):
    """The :class:`RemoteTaskError` for the :class:`TaskError` ``e`` of a
    distributed call, with the Python exception attached when the failed
    task ran in a :class:`rask.Worker` of this process."""
    from .worker import recent_exception

    r = RemoteTaskError(e.message, e.status)
    r.exception_type = e.exception_type
    r.remote_traceback = e.remote_traceback
    r.exception = recent_exception(r.worker, r.failed_key)
    return r


def _call(func, *args):
    """:func:`rask.errors.call`, with task failures as :class:`RemoteTaskError`."""
    try:
        return call(func, *args)
    except TaskError as e:
        r = remote_error(e)
    raise r from r.exception


# ---------------------------------------------------------------- helpers


def _func_name(func, address=None):
    """The name a task's ``func`` is known by on the cluster: a str as it
    is, a callable by the name a :class:`rask.Worker` of this process
    serves it under (preferably one of the scheduler at ``address``);
    ``None`` for any other callable, which is shipped."""
    if isinstance(func, str):
        if not func:
            raise ValueError("a function name must not be empty")
        if func.startswith(CODE_PREFIX):
            raise ValueError(f"function names beginning with {CODE_PREFIX!r} are reserved for shipped functions")
        return func
    if callable(func):
        from .worker import served_name

        return served_name(func, address)
    raise TypeError(f"a task's function is a name or a callable, not {func!r}")


def _has_future(obj):
    if isinstance(obj, Future):
        return True
    if isinstance(obj, (list, tuple)):
        return any(_has_future(x) for x in obj)
    if isinstance(obj, dict):
        return any(_has_future(x) for x in obj.values())
    return False


def _free_args(args):
    lib = L.lib()
    for a in args:
        if a:
            lib.arg_free(a)


def _address_of(target):
    """The scheduler address of a str, a LocalCluster, a Scheduler or a Client."""
    if isinstance(target, str):
        return target
    address = getattr(target, "scheduler_address", None) or getattr(target, "address", None)
    if isinstance(address, str) and address:
        return address
    raise TypeError(f"not an address, a cluster, a scheduler or a client: {target!r}")


def _flatten(obj, out):
    """Futures of a (nested) list/tuple/dict/set, appended to ``out``."""
    if isinstance(obj, Future):
        out.append(obj)
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for x in obj:
            _flatten(x, out)
    elif isinstance(obj, dict):
        for x in obj.values():
            _flatten(x, out)
    return out


_SKIP = object()


class _HasFuture(Exception):
    """Raised while packing arguments that hold a :class:`Future`."""


def _default_arg(obj):
    """msgpack's ``default`` for task arguments: futures are not values."""
    if isinstance(obj, Future):
        raise _HasFuture
    return _default(obj)


def _rebuild(obj, values):
    """``obj`` with each Future replaced by ``values[future]`` (an iterator
    in flattening order); failed ones (``_SKIP``) are left out."""
    if isinstance(obj, Future):
        return next(values)
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = [_rebuild(x, values) for x in obj]
        items = [x for x in items if x is not _SKIP]
        return items if isinstance(obj, list) else type(obj)(items)
    if isinstance(obj, dict):
        out = {k: _rebuild(v, values) for k, v in obj.items()}
        return {k: v for k, v in out.items() if v is not _SKIP}
    return obj


class _Held:
    """Several handles entered at once (``with _Held(handles) as hs:``)."""

    def __init__(self, handles):
        self.handles = handles
        self.entered = []

    def __enter__(self):
        try:
            for h in self.handles:
                self.entered.append((h, h.enter()))
        except BaseException:
            self.__exit__()
            raise
        return [p for _, p in self.entered]

    def __exit__(self, *exc):
        for h, _ in self.entered:
            h.leave()
        self.entered = []


# ----------------------------------------------------------------- Future


class Future:
    """A handle on the value of a key in the cluster (owns a
    ``rask_future``). Made by :class:`Client` calls, never directly.

    ``key``; ``status`` (``"pending"``, ``"finished"``, ``"error"``,
    ``"cancelled"``); :meth:`done`, :meth:`result`, :meth:`exception`,
    :meth:`cancel`, :meth:`release`. Pass it as an argument of
    :meth:`Client.submit` to use its value in another task.
    """

    __slots__ = ("__weakref__", "_batch", "_callbacks", "_client", "_decode", "_h", "_index", "_key", "_warned")

    def __init__(self, client, h):
        lib = L.lib()
        self._client = client
        self._callbacks = None
        self._decode = None  # Dask's values travel pickled: how to read this one
        self._warned = None
        self._batch = None
        self._index = None
        raw = lib.future_key(h)
        self._key = raw.decode() if raw else ""
        self._h = Handle(h, lib.future_free, f"future {self._key!r}", "released")

    @property
    def key(self):
        """The key (a str)."""
        k = self._key
        if k is None:
            k = self._key = self._batch.keys()[self._index]
        return k

    @property
    def _handle(self):
        """The :class:`Handle` of this future's own ``rask_future``. A future
        of a batch (made by :meth:`Client.map`) makes one on first use
        (``rask_future_batch_get``); most calls on such futures go through
        the batch and never need it."""
        h = self._h
        if h is None:
            b = self._batch
            with b.lock:
                h = self._h
                if h is None:
                    if self._index is None:
                        raise StateError(f"future {self.key!r} was released")
                    out = L.FutureP()
                    with b.handle.use() as bh:
                        call(L.lib().future_batch_get, bh, self._index, ctypes.byref(out))
                    h = self._h = Handle(out, L.lib().future_free, f"future {self.key!r}", "released")
        return h

    @property
    def client(self):
        """The :class:`Client` this future belongs to."""
        return self._client

    @property
    def status(self):
        """``"pending"``, ``"finished"``, ``"error"`` (the task or one it
        needs failed, or the scheduler is gone) or ``"cancelled"``; a
        released future is ``"released"``."""
        if self._h is None:  # a future of a batch
            i = self._index
            if i is None:
                return "released"
            return _STATUS.get(self._batch.states([i])[0], "error")
        try:
            with self._h.use() as h:
                return _STATUS.get(L.lib().future_status(h), "error")
        except StateError:
            return "released"

    def done(self):
        """Whether the key is no longer pending (finished, failed or
        cancelled)."""
        return self.status != "pending"

    def cancelled(self):
        return self.status == "cancelled"

    def result(self, timeout=None):
        """Waits up to ``timeout`` seconds (``None``: as long as it takes)
        and returns the value. Raises ``TimeoutError`` at the deadline,
        :class:`rask.RemoteTaskError` when the task (or one it needs)
        failed, :class:`rask.CancelledError`, :class:`rask.RaskConnectionError`
        when the scheduler is gone, :class:`rask.StateError` when the client
        was closed."""
        if self._h is None:  # a future of a batch: gathered through it
            if self._index is None:
                raise StateError(f"future {self.key!r} was released")
            value = self._batch.gather([self._index], timeout, self)[0]
            return self._decode(value) if self._decode is not None else value
        lib = L.lib()
        dl = Deadline(timeout)
        out = L.ValueP()
        most = POLL_MS if threading.current_thread() is threading.main_thread() else THREAD_POLL_MS
        while True:
            with self._h.use() as h:
                status = _call(lib.future_result, h, dl.slice_ms(most), ctypes.byref(out))
            if status == L.OK:
                value = take_value(out)
                return self._decode(value) if self._decode is not None else value
            self._log_warning()
            if dl.passed():
                raise TimeoutError(f"future {self.key!r} is still pending after {timeout} s")

    def __await__(self):
        """``await future``: its value, waiting in the running asyncio event
        loop (which watches the client's descriptor, ``rask_client_fd``:
        no thread blocks). Raises as :meth:`result`; bound it with
        ``asyncio.wait_for``."""

        def check():
            return _NOT_YET if self.status == "pending" else self.result(timeout=0)

        return self._client._aio().wait(check).__await__()

    @property
    def warning(self):
        """The last warning the scheduler sent about this key (a string),
        or ``None``: for instance that no connected worker offers a
        function it needs (a misspelt name), so it waits for one. While
        :meth:`result` waits, each new warning is also logged (logger
        ``rask.client``)."""
        out = L.ValueP()
        with self._handle.use() as h:
            _call(L.lib().future_warning, h, ctypes.byref(out))
        return take_value(out) if out else None

    def _log_warning(self):
        w = self.warning
        if w and w != self._warned:
            self._warned = w
            logger.warning("future %r: %s", self.key, w)

    def exception(self, timeout=None):
        """Waits like :meth:`result`; returns the exception :meth:`result`
        raises (a :class:`rask.RemoteTaskError`, ...), or ``None`` when the
        task finished. Raises :class:`rask.CancelledError` when the future
        was cancelled and ``TimeoutError`` at the deadline."""
        try:
            self.result(timeout)
        except CancelledError:
            raise
        except RaskError as e:
            return e
        return None

    def cancel(self):
        """Cancels the key (see :meth:`Client.cancel`)."""
        self._client.cancel([self])

    def add_done_callback(self, fn):
        """Calls ``fn(future)`` once the future is done (finished, failed or
        cancelled; at once if it is done already), on the client's callback
        thread. An exception ``fn`` raises is logged (``rask.client``)."""
        if not callable(fn):
            raise TypeError(f"not callable: {fn!r}")
        with _CALLBACK_LOCK:
            if self._callbacks is None:
                self._callbacks = []
            self._callbacks.append(fn)
            first = len(self._callbacks) == 1
        if first:
            self._client._done_callbacks().add(self)

    def _take_callbacks(self):
        with _CALLBACK_LOCK:
            fns, self._callbacks = self._callbacks or [], None
        return fns

    def release(self):
        """Drops this reference to the key now (garbage collection does it
        otherwise): once a client holds no reference to a key, the
        scheduler may forget it and free its data. Idempotent; the future
        cannot be used afterwards."""
        b = self._batch
        if b is not None:
            if self._index is not None:
                self.key  # remembered: the key stays readable (in messages) once released
            with b.lock:
                i, self._index = self._index, None
            if i is not None:
                b.release([i])
        h = self._h
        if h is not None:
            h.close()

    def __del__(self):
        # Runs once per future of a map when its list goes: kept to a few
        # attribute reads and an append (see _Batch.drop, inlined here).
        try:
            i = self._index
            if i is not None:
                b = self._batch
                d = b._dropped
                d.append(i)  # atomic (deque): no lock on this path
                if not b._pending:
                    b._pending = True
                    b.client._dropping.add(b)
                if len(d) >= DROP_FLUSH:
                    b.flush()
            h = self._h
            if h is not None:
                h.close()
        except Exception:  # interpreter shutdown
            pass

    def __repr__(self):
        return f"<rask.Future: {self.status}, key: {self.key}>"


_CALLBACK_LOCK = threading.Lock()

_BATCH_OF = operator.attrgetter("_batch")
_INDEX_OF = operator.attrgetter("_index")
_DECODE_OF = operator.attrgetter("_decode")

_SIZE_T_CODE = "Q" if ctypes.sizeof(ctypes.c_size_t) == 8 else "I"

#: A batch's futures dropped by garbage collection are released together,
#: once this many have been dropped (or at the batch's end, or at the
#: client's next call).
DROP_FLUSH = 1024


class _Batch:
    """The ``rask_future_batch`` behind the futures of one
    :meth:`Client.map`: made, gathered and released in a few C calls
    whatever the number of futures. Each of its :class:`Future` objects
    holds it; once they are all gone it is freed, which releases the keys
    still held."""

    __slots__ = ("__weakref__", "_dropped", "_keys", "_pending", "client", "handle", "lock", "n")

    def __init__(self, client, ptr):
        lib = L.lib()
        self.client = client
        self.n = lib.future_batch_len(ptr)
        self.handle = Handle(ptr, lib.future_batch_free, "the batch of futures")
        self.lock = threading.RLock()
        self._keys = None
        # Indices of futures garbage collection dropped, not yet released:
        # appended without a lock by Future.__del__ (deque.append is
        # atomic), taken by flush until empty. ``_pending``: the batch is
        # in its client's ``_dropping`` set (cleared before flush takes).
        self._dropped = collections.deque()
        self._pending = False

    def futures(self):
        """A new :class:`Future` for every entry, in order."""
        new = object.__new__
        client = self.client
        out = []
        append = out.append
        # 100k new tracked objects would run the cyclic collector ~140
        # times over the growing list (half the time of this loop); these
        # futures make no cycles.
        gc_was = gc.isenabled()
        gc.disable()
        try:
            for i in range(self.n):
                f = new(Future)
                f._client = client
                f._batch = self
                f._index = i
                f._h = f._key = f._callbacks = f._decode = f._warned = None
                append(f)
        finally:
            if gc_was:
                gc.enable()
        return out

    def keys(self):
        """Every entry's key, in order (one C call, then remembered)."""
        k = self._keys
        if k is None:
            data = ctypes.POINTER(ctypes.c_uint8)()
            n = ctypes.c_size_t()
            with self.handle.use() as h:
                call(L.lib().future_batch_keys, h, ctypes.byref(data), ctypes.byref(n))
            k = self._keys = take_buffer(data, n.value)
        return k

    def states(self, indices):
        """The ``rask_future_state`` of each entry of ``indices``."""
        idx = array.array(_SIZE_T_CODE, indices)
        out = (L.enum_t * max(len(idx), 1))()
        with self.handle.use() as h:
            _call(L.lib().future_batch_status, h, idx.buffer_info()[0], len(idx), out)
        return out[: len(idx)]

    def gather(self, indices, timeout, future=None):
        """The values of the entries ``indices``, waiting up to ``timeout``
        seconds (``TimeoutError`` after); ``future`` (one being waited for)
        gets its warnings logged."""
        lib = L.lib()
        idx = array.array(_SIZE_T_CODE, indices)
        dl = Deadline(timeout)
        data = ctypes.POINTER(ctypes.c_uint8)()
        size = ctypes.c_size_t()
        while True:
            with self.handle.use() as h:
                status = _call(
                    lib.future_batch_gather,
                    h,
                    idx.buffer_info()[0],
                    len(idx),
                    dl.slice_ms(),
                    ctypes.byref(data),
                    ctypes.byref(size),
                )
            if status == L.OK:
                return take_buffer(data, size.value)
            if future is not None:
                future._log_warning()
            if dl.passed():
                if future is not None:
                    raise TimeoutError(f"future {future.key!r} is still pending after {timeout} s")
                raise TimeoutError(f"{len(idx)} futures are not all done after {timeout} s")

    def release(self, indices):
        idx = array.array(_SIZE_T_CODE, indices)
        with self.handle.use() as h:
            call(L.lib().future_batch_release, h, idx.buffer_info()[0], len(idx))

    # Entry i's future was garbage-collected (Future.__del__): i is
    # released with the next DROP_FLUSH drops, at the client's next call, or
    # at the batch's end.

    def flush(self):
        """Releases the entries dropped so far (each exactly once, whatever
        the threads, or a collection inside this call, do meanwhile: every
        index is taken by one ``popleft``)."""
        self._pending = False  # before taking: a drop after this registers again
        d = self._dropped
        pop = d.popleft
        dropped = []
        append = dropped.append
        try:
            while True:
                append(pop())
        except IndexError:
            pass
        if dropped:
            try:
                self.release(dropped)
            except StateError:  # freed meanwhile: released with it
                pass

    def __del__(self):
        try:
            self.handle.close()
        except Exception:  # interpreter shutdown
            pass


class _DoneCallbacks:
    """A client's callback thread: an :class:`as_completed` of the futures
    that have callbacks, and a thread calling them as they come."""

    def __init__(self):
        self.ac = as_completed()
        self.cond = threading.Condition()
        self.closing = False
        self.thread = threading.Thread(target=self._loop, name="rask-done-callbacks", daemon=True)
        self.thread.start()

    def add(self, future):
        self.ac.add(future)
        with self.cond:
            self.cond.notify()

    def _loop(self):
        while True:
            with self.cond:
                if self.closing:
                    return
            try:
                f = self.ac._next_future(once=True)
            except RaskError:  # the client is closed
                f = None
            if f is None:
                with self.cond:
                    if self.closing:
                        return
                    if self.ac.is_empty():
                        self.cond.wait(0.1)
                continue
            for fn in f._take_callbacks():
                try:
                    fn(f)
                except Exception:
                    logger.exception("a done callback of %r failed", f)

    def close(self):
        with self.cond:
            self.closing = True
            self.cond.notify()
        if threading.current_thread() is not self.thread:
            self.thread.join()
        self.ac.close()


# ----------------------------------------------------------------- Client


_NO_DEFAULT = object()


_NOT_YET = object()


class _AioWaiter:
    """Resolves asyncio futures of one event loop from a client's changes:
    the loop watches the client's descriptor (``rask_client_fd``) with
    ``add_reader`` while something waits; at each change it clears the
    descriptor, then runs every waiter's check (which does not block); a
    check that returns something other than ``_NOT_YET`` (or raises)
    resolves its asyncio future. Used from the loop's thread only."""

    def __init__(self, client, loop):
        self.client = client
        self.loop = loop
        self.waiters = []  # (check, asyncio.Future)
        self.reading = False
        out = ctypes.c_int(-1)
        with client._use() as h:
            call(L.lib().client_fd, h, ctypes.byref(out))
        self.fd = out.value

    def wait(self, check):
        """An asyncio future of ``check()``'s first answer that is not
        ``_NOT_YET`` (looked at now, then at each change)."""
        af = self.loop.create_future()
        try:
            r = check()
        except BaseException as e:  # noqa: B036 - handed to the awaiting task
            af.set_exception(e)
            return af
        if r is not _NOT_YET:
            af.set_result(r)
            return af
        self.waiters.append((check, af))
        if not self.reading:
            self.loop.add_reader(self.fd, self._changed)
            self.reading = True
        return af

    def _changed(self):
        try:
            with self.client._use() as h:
                L.lib().client_fd_clear(h, None)  # before looking: no change is missed
        except StateError:
            pass  # closed: every check says so
        still = []
        for check, af in self.waiters:
            if af.done():  # cancelled by its awaiter
                continue
            try:
                r = check()
            except BaseException as e:  # noqa: B036 - handed to the awaiting task
                af.set_exception(e)
                continue
            if r is _NOT_YET:
                still.append((check, af))
            else:
                af.set_result(r)
        self.waiters = still
        if not still:
            self.stop_reading()

    def stop_reading(self):
        if self.reading:
            self.reading = False
            try:
                self.loop.remove_reader(self.fd)
            except Exception:  # a closed loop  # noqa: BLE001
                pass

    def close(self):
        """Before the client is freed (which closes the descriptor)."""
        self.stop_reading()
        for _, af in self.waiters:
            if not af.done():
                af.get_loop().call_soon_threadsafe(
                    lambda af=af: af.done() or af.set_exception(StateError("the client is closed"))
                )
        self.waiters = []


class Client:
    """A connection to a rask scheduler (owns a ``rask_client``).

    ``Client(address_or_cluster=None, timeout=None, name=None, token=None,
    **cluster_kwargs)``:

    - ``None``: starts a :class:`rask.LocalCluster` (``cluster_kwargs``:
      ``n_workers``, ``threads_per_worker``, ``functions``, ...) that the
      client owns and closes with itself, as ``dask.distributed.Client()``
      does;
    - a :class:`rask.LocalCluster` (or :class:`rask.Scheduler`): connects to
      it, with its token and TLS files;
    - a str ``"tcp://host:port"`` (or ``"tls://host:port"``): connects to
      that scheduler.

    ``tls_ca_file``, ``tls_cert``, ``tls_key`` (keyword-only PEM paths, all
    three or none) are the CA, certificate and key for ``tls://``
    addresses: the scheduler's and the workers' (scatter, gather).

    ``timeout`` (seconds) bounds connecting and each request to the
    scheduler (``None``: rask's default, 10 s). Use it as a context manager,
    or call :meth:`close` (idempotent).
    """

    def __init__(
        self,
        address_or_cluster=None,
        timeout=None,
        name=None,
        token=None,
        *,
        tls_ca_file=None,
        tls_cert=None,
        tls_key=None,
        **cluster_kwargs,
    ):
        from .cluster import LocalCluster

        self._handle = None
        self.cluster = None
        self._owns_cluster = False
        self._code_lock = threading.Lock()
        self._code_futures = {}  # code key -> Future holding a shipped function's bytes
        self._code_of = OrderedDict()  # id(callable) -> (callable, code key, bytes), recent ones
        self._callbacks = None
        self._callbacks_lock = threading.Lock()
        self._aio_waiter = None  # _AioWaiter of the event loop that awaits
        self._dropping = weakref.WeakSet()  # batches with futures dropped but not yet released
        target = address_or_cluster
        tls = L.tls_of(tls_ca_file, tls_cert, tls_key)
        if target is None:
            if tls is not None:
                cluster_kwargs.update(tls_ca_file=tls_ca_file, tls_cert=tls_cert, tls_key=tls_key)
            target = LocalCluster(**cluster_kwargs)
            self._owns_cluster = True
        elif cluster_kwargs:
            raise TypeError(f"unexpected arguments {sorted(cluster_kwargs)} (only for a new LocalCluster)")
        try:
            if not isinstance(target, str):
                self.cluster = target if isinstance(target, LocalCluster) else None
                if token is None:
                    token = getattr(target, "token", None)
                if tls is None:
                    tls = getattr(target, "tls", None)
            address = _address_of(target)
            opts = L.ClientOptions(
                name=(name or "rask-python-client").encode(),
                token=token.encode() if token else None,
                timeout_ms=0 if timeout is None else max(1, int(timeout * 1000)),
                **L.tls_fields(tls),
            )
            out = L.ClientP()
            call(L.lib().client_connect, address.encode(), ctypes.byref(opts), ctypes.byref(out))
        except BaseException:
            if self._owns_cluster:
                target.close()
            raise
        self._adopt(out)

    @classmethod
    def _of_handle(cls, out):
        """A Client over a ``rask_client`` handle made elsewhere (a
        worker's client of its tasks, ``rask_task_client``)."""
        self = cls.__new__(cls)
        self._handle = None
        self.cluster = None
        self._owns_cluster = False
        self._code_lock = threading.Lock()
        self._code_futures = {}
        self._code_of = OrderedDict()
        self._callbacks = None
        self._callbacks_lock = threading.Lock()
        self._dropping = weakref.WeakSet()
        self._adopt(out)
        return self

    def _adopt(self, out):
        self._handle = Handle(out, L.lib().client_free, "the client")
        self.scheduler_address = L.lib().client_scheduler_address(out).decode()
        #: The scheduler's dashboard (``http://HOST:PORT/status``), as it said
        #: when the client connected; ``None`` when it serves none.
        self.dashboard_link = L.lib().client_dashboard_link(out).decode() or None
        at_exit(self, 1)
        from .coordination import _register_client

        _register_client(self)

    # ----------------------------------------------------------- lifetime

    def close(self):
        """Closes the client: the scheduler is told it no longer wants any
        of its keys. Its futures then fail with :class:`rask.StateError`.
        Closes the LocalCluster the client started, if any. Idempotent."""
        with self._callbacks_lock:
            callbacks, self._callbacks = self._callbacks, None
        if callbacks is not None:
            callbacks.close()
        aio, self._aio_waiter = getattr(self, "_aio_waiter", None), None
        if aio is not None:
            aio.close()
        if self._handle is not None:
            self._handle.close()
        if self._owns_cluster and self.cluster is not None:
            self.cluster.close()

    @property
    def closed(self):
        return self._handle is None or self._handle.closed

    def _done_callbacks(self):
        with self._callbacks_lock:
            if self._handle is None or self._handle.closed:
                raise StateError("the client is closed")
            if self._callbacks is None:
                self._callbacks = _DoneCallbacks()
            return self._callbacks

    def _aio(self):
        """The asyncio waiter of this client for the running event loop."""
        import asyncio

        loop = asyncio.get_running_loop()
        w = self._aio_waiter
        if w is None or w.loop is not loop:
            if w is not None:
                w.close()
            w = self._aio_waiter = _AioWaiter(self, loop)
        return w

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
        state = "closed" if self.closed else f"scheduler={self.scheduler_address!r}"
        return f"<rask.Client: {state}>"

    def performance_report(self, filename="rask-report.html"):
        """A context manager that writes a performance report of what runs
        inside its ``with`` block to ``filename`` (one self-contained HTML
        file), from this client's scheduler's dashboard
        (:attr:`dashboard_link`): see :class:`rask.performance_report`."""
        from .diagnostics import performance_report  # noqa: PLC0415

        return performance_report(filename, self)

    # --------------------------------------------------------- arguments

    def _arg(self, a):
        """A new ``rask_arg *`` for the submit argument ``a``."""
        lib = L.lib()
        if isinstance(a, Future):
            if a._client is not self:
                raise ValueError(f"{a!r} belongs to another client")
            with a._handle.use() as fh:
                out = lib.arg_future(fh)
            if not out:
                raise RaskError("rask_arg_future failed")
            return out
        t = type(a)
        if t is int and _I64_MIN <= a <= _I64_MAX:
            return lib.arg_int(a)
        if t is float:
            return lib.arg_float(a)
        if isinstance(a, (list, tuple)) and _has_future(a):
            items = self._args(a)
            arr = (L.ArgP * len(items))(*items)
            out = L.ArgP()
            call(lib.arg_list, arr, len(items), ctypes.byref(out))  # consumes the items
            return out
        if isinstance(a, dict) and _has_future(a):
            raise TypeError(
                "a dict argument cannot hold futures (the C API has no map-valued task argument): "
                "pass a list, or compute the dict in a task"
            )
        out = lib.arg_value(to_value(a))  # consumes the value
        if not out:
            raise RaskError("rask_arg_value failed")
        return out

    def _args(self, args):
        built = []
        try:
            for a in args:
                built.append(self._arg(a))
        except BaseException:
            _free_args(built)
            raise
        return built

    def _consuming(self, built, fn):
        """``fn(client_handle)`` for a C call that consumes the args
        ``built``; frees them if the call cannot be made."""
        made = False
        try:
            with self._handle.use() as h:
                made = True
                return fn(h)
        finally:
            if not made:
                _free_args(built)

    def _flush_drops(self):
        """Releases the batch futures garbage collection dropped (see
        :data:`DROP_FLUSH`)."""
        if self._dropping:
            for b in list(self._dropping):
                self._dropping.discard(b)
                b.flush()

    def _use(self):
        if self._handle is None:
            raise StateError("the client is closed")
        return self._handle.use()

    # ---------------------------------------------------- shipped functions

    def _code(self, func, what=None):
        """``(code key, bytes)`` of the callable ``func`` (cloudpickle),
        remembered for the last few callables."""
        with self._code_lock:
            hit = self._code_of.get(id(func))
            if hit is not None and hit[0] is func:
                self._code_of.move_to_end(id(func))
                return hit[1], hit[2]
        blob = dumps(func, what)
        key = code_key(blob)
        with self._code_lock:
            self._code_of[id(func)] = (func, key, blob)
            while len(self._code_of) > 64:
                self._code_of.popitem(last=False)
        return key, blob

    def _code_future(self, func, what=None):
        """A future on the key holding ``func``'s bytes: submitted once (an
        ``identity`` task of the bytes, keyed by their content hash), held
        by this client while it lives, so every task of ``func`` refers to
        it and each worker fetches it once."""
        key, blob = self._code(func, what)
        with self._code_lock:
            fut = self._code_futures.get(key)
        if fut is not None and fut.status in ("pending", "finished"):
            return fut
        self._ensure_code_worker()
        fut = self._submit("identity", (blob,), _submit_options(key, True, 0))
        with self._code_lock:
            self._code_futures[key] = fut
        return fut

    def _shipper(self):
        """For graphs sent to the cluster: ``(code key, bytes)`` for a
        callable that no Worker of this process serves under the graph's
        name for it, else None."""
        from .worker import served_function

        address = self.scheduler_address

        def ship(func, name, key):
            if served_function(name, address) is func or name == DICT_HELPER:
                return None
            self._ensure_code_worker()
            return self._code(func, f"task {key!r}")

        return ship

    def _ensure_code_worker(self):
        """A LocalCluster of this process runs shipped code once a client
        of it ships some (its Python worker starts then)."""
        cluster = self.cluster
        if cluster is not None and hasattr(cluster, "_enable_code"):
            cluster._enable_code()

    # ------------------------------------------------------------ submit

    def submit(self, func, *args, key=None, pure=True, retries=0, **kwargs):
        """Runs ``func(*args)`` on the cluster; returns a :class:`Future`.

        - ``func``: a function name (a builtin such as ``"inc"``, or a name
          some worker offers), or a Python callable served by a
          :class:`rask.Worker` of this process.
        - ``args``: values (copied), :class:`Future` objects (the task then
          gets their values), and lists/tuples holding either.
        - ``key``: the task's key; by default (``pure=True``) a hash of the
          function and its arguments, so the same call is one task;
          ``pure=False`` gives every call a key of its own.
        - ``retries``: times the task runs again after a failure.
        """
        if kwargs:
            raise TypeError(f"rask tasks take positional arguments only, not {sorted(kwargs)}")
        name = _func_name(func, self.scheduler_address)
        if name is None:  # shipped: the function's bytes come first
            name, args = CODE_FUNC, (self._code_future(func),) + args
        return self._submit(name, args, _submit_options(key, pure, retries))

    def _submit(self, name, args, opts):
        lib = L.lib()
        self._flush_drops()
        built = self._args(args)
        arr = (L.ArgP * len(built))(*built)
        out = L.FutureP()
        if opts is None:
            self._consuming(
                built,
                lambda h: _call(lib.client_submit, h, name.encode(), arr, len(built), ctypes.byref(out)),
            )
        else:
            self._consuming(
                built,
                lambda h: _call(
                    lib.client_submit_with,
                    h,
                    name.encode(),
                    arr,
                    len(built),
                    ctypes.byref(opts),
                    ctypes.byref(out),
                ),
            )
        return Future(self, out)

    def map(self, func, *iterables, key=None, pure=True, retries=0, **kwargs):
        """``[submit(func, *args) for args in zip(*iterables)]``, in one
        message to the scheduler; returns a list of futures. ``key``: a list
        of keys, or a prefix (keys ``f"{key}-{i}"``); ``key``, ``pure=False``
        and ``retries`` submit the calls one by one."""
        if kwargs:
            raise TypeError(f"rask tasks take positional arguments only, not {sorted(kwargs)}")
        if not iterables:
            raise TypeError("map needs at least one iterable")
        name = _func_name(func, self.scheduler_address)
        # Each call's arguments as a list: msgpack packs a list itself,
        # while a tuple (strict types) would cost a Python `default` call.
        if len(iterables) == 1:
            calls = [[x] for x in iterables[0]]
        else:
            calls = list(map(list, zip(*iterables)))
        if not calls:
            return []
        shared = []
        if name is None:  # shipped: the function's bytes come first in every call
            name, shared = CODE_FUNC, [self._code_future(func)]
        if key is not None or not pure or retries:
            calls = [shared + c for c in calls]
            if key is None:
                keys = [None] * len(calls)
            elif isinstance(key, str):
                keys = [f"{key}-{i}" for i in range(len(calls))]
            else:
                keys = list(key)
                if len(keys) != len(calls):
                    raise ValueError(f"{len(keys)} keys for {len(calls)} calls")
            return [self._submit(name, c, _submit_options(k, pure, retries)) for k, c in zip(keys, calls)]
        lib = L.lib()
        self._flush_drops()
        if _msgpack is not None:
            try:
                payload = pack(calls, _default_arg)
            except _HasFuture:
                payload = None  # arguments that are futures: rask_args below
            if payload is not None:
                out = L.FutureBatchP()
                if not shared:
                    with self._use() as h:
                        _call(lib.client_map_msgpack, h, name.encode(), payload, len(payload), ctypes.byref(out))
                else:  # one C call still: the shared future first in every call
                    built = self._args(shared)
                    arr = (L.ArgP * len(built))(*built)
                    self._consuming(
                        built,
                        lambda h: _call(
                            lib.client_map_msgpack_shared,
                            h,
                            name.encode(),
                            arr,
                            len(built),
                            payload,
                            len(payload),
                            ctypes.byref(out),
                        ),
                    )
                return _Batch(self, out).futures()
        calls = [shared + c for c in calls]
        per_call = len(calls[0])
        built = self._args([a for c in calls for a in c])
        arr = (L.ArgP * len(built))(*built)
        futs = (L.FutureP * len(calls))()
        self._consuming(
            built,
            lambda h: _call(lib.client_map, h, name.encode(), arr, len(calls), per_call, futs),
        )
        return [Future(self, futs[i]) for i in range(len(calls))]

    # ----------------------------------------------------------- compute

    #: For dask: this client is synchronous (``dask.compute(x, scheduler=client)``).
    asynchronous = False

    def compute(self, graph, keys=None, optimize_graph=True):
        """Computes ``keys`` of ``graph`` (a :class:`rask.Graph` or a
        Dask-style dict) on the cluster; returns a :class:`Future` for one
        key, a list of futures for a list of keys. ``keys`` defaults to the
        graph's ``outputs`` (a graph from msgpack).

        ``graph`` may also be a Dask collection (``dask.delayed``, a bag,
        an array...) or a list of them: then ``keys`` is not given, and the
        result is a future (a list of futures) whose value is the
        collection's computed value, as ``dask.distributed.Client.compute``
        returns. Its tasks run on Python workers that allow shipped code.

        Tasks name their functions; a Python callable in the graph must be
        served under the same name by a :class:`rask.Worker` of this
        process (use function names for functions served elsewhere)."""
        from . import dask_spec

        if dask_spec.is_dask_collection(graph) or (
            isinstance(graph, (list, tuple)) and graph and all(dask_spec.is_dask_collection(c) for c in graph)
        ):
            if keys is not None:
                raise TypeError("keys= is for graphs; a Dask collection's keys are its own")
            many = isinstance(graph, (list, tuple))
            futures = dask_spec.compute_collections(self, graph if many else [graph], optimize_graph)
            return futures if many else futures[0]
        if isinstance(graph, dict) and dask_spec._dask_nodes(graph) is not None:
            single = not isinstance(keys, list)
            futures = dask_spec.dask_to_cluster(self, graph, [keys] if single else keys)
            return futures[0] if single else futures
        owned = None
        if isinstance(graph, dict):
            graph = owned = dask_spec.from_dask(graph, self._shipper())
        elif isinstance(graph, Graph) and graph.functions:
            graph = owned = graph.shipped(self._shipper())
        try:
            if not isinstance(graph, Graph):
                raise TypeError(f"graph must be a rask.Graph or a dict, not {type(graph).__name__}")
            if keys is None:
                if not graph.outputs:
                    raise ValueError("no keys given and the graph has no outputs")
                keys = graph.outputs
            single = not isinstance(keys, list)
            names = [key_name(k) for k in ([keys] if single else keys)]
            _check_served(graph.functions, self.scheduler_address)
            futures = self._compute_graph(graph, names)
        finally:
            if owned is not None:
                owned.close()
        return futures[0] if single else futures

    def _compute_graph(self, graph, keys):
        lib = L.lib()
        self._flush_drops()
        n = len(keys)
        keys_arr = (ctypes.c_char_p * n)(*(k.encode() for k in keys))
        futs = (L.FutureP * n)()
        with self._use() as h, graph._lock:
            _call(lib.client_compute, h, graph.handle, keys_arr, n, futs)
        return [Future(self, futs[i]) for i in range(n)]

    def persist(self, collection, optimize_graph=True):
        """Computes the Dask collection ``collection`` on the cluster and
        returns a collection of the same type whose data stays there (held
        while the returned collection lives), as
        ``dask.distributed.Client.persist``: computing from it later reuses
        the data."""
        from . import dask_spec

        if isinstance(collection, (list, tuple)):
            return type(collection)(self.persist(c, optimize_graph) for c in collection)
        if not dask_spec.is_dask_collection(collection):
            raise TypeError(f"persist takes a Dask collection, not {type(collection).__name__}")
        return dask_spec.persist_collection(self, collection, optimize_graph)

    def get(self, dsk, keys, **kwargs):
        """Computes ``keys`` of a graph on the cluster and returns their
        values, like ``dask.distributed.Client.get``: one key gives its
        value, a list of keys a tuple (nested lists, nested tuples). A graph
        made by Dask (what ``dask.compute(x, scheduler=client.get)`` passes)
        runs with Dask's semantics on Python workers that allow shipped
        code."""
        from . import dask_spec

        if dask_spec._dask_nodes(dsk) is not None:
            flat = dask_spec._flatten(keys, [])
            futures = dask_spec.dask_to_cluster(self, dsk, flat)
            try:
                return dask_spec._shape(keys, iter(self.gather(futures)))
            finally:
                for f in futures:
                    f.release()

        def flatten(k, out):
            if isinstance(k, list):
                for x in k:
                    flatten(x, out)
            else:
                out.append(k)
            return out

        def shape(k, it):
            if isinstance(k, list):
                return tuple(shape(x, it) for x in k)
            return next(it)

        futures = self.compute(dsk, flatten(keys, []))
        try:
            return shape(keys, iter(self.gather(futures)))
        finally:
            for f in futures:
                f.release()

    # ------------------------------------------------------------ gather

    def gather(self, futures, errors="raise", timeout=None):
        """The values of ``futures``: a Future (its value), or a list, tuple,
        set or dict nesting futures (the same structure with values; other
        items are kept as they are). Waits up to ``timeout`` seconds
        (``TimeoutError`` after). ``errors="raise"`` raises the first
        failure (in order); ``errors="skip"`` leaves failed and cancelled
        futures out."""
        if errors not in ("raise", "skip"):
            raise ValueError('errors is "raise" or "skip"')
        if type(futures) is list and errors == "raise" and futures:
            # The futures of one map (the common case): checked and gathered
            # in C-speed passes (map/set over the list), one C call.
            if set(map(type, futures)) == {Future}:
                batches = set(map(_BATCH_OF, futures))
                if len(batches) == 1:
                    b = batches.pop()
                    if b is not None and b.client is self:
                        self._flush_drops()
                        return self._gather_batch(b, futures, timeout)
        plain = type(futures) is list and all(type(f) is Future for f in futures)
        flat = futures if plain else _flatten(futures, [])
        for f in flat:
            if f._client is not self:
                raise ValueError(f"{f!r} belongs to another client")
        if not flat:
            return _rebuild(futures, iter(()))
        self._flush_drops()
        b = flat[0]._batch
        if b is not None and errors == "raise" and all(f._batch is b for f in flat):
            values = self._gather_batch(b, flat, timeout)
        else:
            values = self._gather_futures(flat, errors, timeout)
        if plain:
            return [v for v in values if v is not _SKIP] if errors == "skip" else values
        return _rebuild(futures, iter(values))

    def _gather_batch(self, b, flat, timeout):
        """gather of futures of one batch: one C call, one buffer."""
        idx = list(map(_INDEX_OF, flat))
        if None in idx:
            raise StateError(f"future {flat[idx.index(None)].key!r} was released")
        values = b.gather(idx, timeout)
        if set(map(_DECODE_OF, flat)) == {None}:
            return values
        return self._decoded(flat, values)

    def _gather_futures(self, flat, errors, timeout):
        """gather of any futures: waits for them all, then one C call."""
        lib = L.lib()
        _wait_handles(self, flat, L.WAIT_ALL_COMPLETED, timeout)
        if errors == "skip":
            ok = [f for f in flat if f.status == "finished"]
        else:
            ok = flat
        got = iter(())
        if ok and len(ok) <= _values.GATHER_IN_PLACE:  # value by value: large arrays read in place
            outs = (L.ValueP * len(ok))()
            with self._use() as h, _Held([f._handle for f in ok]) as hs:
                arr = (L.FutureP * len(hs))(*hs)
                _call(lib.client_gather, h, arr, len(hs), -1, outs)
            try:
                got = iter([from_value(outs[i]) for i in range(len(ok))])
            finally:
                for i in range(len(ok)):
                    lib.value_free(outs[i])
        elif ok:
            data = ctypes.POINTER(ctypes.c_uint8)()
            size = ctypes.c_size_t()
            with self._use() as h, _Held([f._handle for f in ok]) as hs:
                arr = (L.FutureP * len(hs))(*hs)
                _call(lib.client_gather_msgpack, h, arr, len(hs), -1, ctypes.byref(data), ctypes.byref(size))
            got = iter(take_buffer(data, size.value))
        okset = {id(f) for f in ok}
        values = [next(got) if id(f) in okset else _SKIP for f in flat]
        return self._decoded(flat, values)

    @staticmethod
    def _decoded(flat, values):
        for i, f in enumerate(flat):
            if f._decode is not None and values[i] is not _SKIP:
                values[i] = f._decode(values[i])
        return values

    def scatter(self, data, broadcast=False):
        """Stores ``data`` on the workers; returns futures to pass to tasks.
        A list or tuple gives a list of futures, a dict a dict of futures
        (same keys; the futures' keys are rask's), anything else (a numpy
        array, a number...) one future. Values go round robin over the
        workers, or to every worker with ``broadcast=True``."""
        if isinstance(data, dict):
            futs = self._scatter(list(data.values()), broadcast)
            return dict(zip(data.keys(), futs))
        if isinstance(data, (list, tuple)):
            return self._scatter(list(data), broadcast)
        return self._scatter([data], broadcast)[0]

    def _scatter(self, items, broadcast):
        if not items:
            return []
        lib = L.lib()
        values = []
        try:
            for x in items:
                values.append(to_value(x))
        except BaseException:
            for v in values:
                lib.value_free(v)
            raise
        arr = (L.ValueP * len(values))(*values)
        futs = (L.FutureP * len(values))()
        made = False
        try:
            with self._use() as h:
                made = True
                _call(lib.client_scatter, h, arr, len(values), bool(broadcast), futs)  # consumes
        finally:
            if not made:
                for v in values:
                    lib.value_free(v)
        return [Future(self, futs[i]) for i in range(len(values))]

    # ------------------------------------------------------------- other

    def cancel(self, futures):
        """Cancels a Future or the futures of a list: they become
        ``"cancelled"`` at once (unless already failed) and the scheduler
        stops work no other client wants."""
        flat = _flatten(futures, [])
        if not flat:
            return
        for f in flat:
            if f._client is not self:
                raise ValueError(f"{f!r} belongs to another client")
        with self._use() as h, _Held([f._handle for f in flat]) as hs:
            arr = (L.FutureP * len(hs))(*hs)
            call(L.lib().client_cancel, h, arr, len(hs))

    def wait_for_workers(self, n_workers=1, timeout=None):
        """Waits until the scheduler knows at least ``n_workers`` workers;
        ``TimeoutError`` after ``timeout`` seconds. Returns how many it
        knows."""
        lib = L.lib()
        dl = Deadline(timeout)
        count = ctypes.c_size_t()
        while True:
            with self._use() as h:
                status = call(lib.client_wait_for_workers, h, n_workers, dl.slice_ms(), ctypes.byref(count))
            if status == L.OK:
                return count.value
            if dl.passed():
                raise TimeoutError(f"{count.value} of {n_workers} workers after {timeout} s")


    def scheduler_info(self):
        """What the scheduler holds (its ``get-info``), as a dict: ``tasks``
        (in all) and by state (``released``, ``waiting``, ``no_worker``,
        ``queued``, ``processing``, ``memory``, ``erred``), ``workers``,
        ``clients``, and the workers' memory from their last heartbeats,
        summed: ``managed_bytes`` (data in memory), ``spilled_bytes`` (data
        spilled to disk), ``process_bytes`` (resident memory),
        ``memory_limit``, and ``paused_workers`` (paused by their memory use:
        they are sent no task)."""
        out = L.SchedulerInfo()
        with self._use() as h:
            call(L.lib().client_scheduler_info, h, ctypes.byref(out))
        return {name: getattr(out, name) for name, _ in L.SchedulerInfo._fields_}

    def retire_workers(self, workers, timeout=None):
        """Retires ``workers`` gracefully (each a worker's data address, name,
        or id, as ``str``): they get no new tasks, hand back the ones they
        had not started, finish the running ones, and the results only they
        hold are copied to other workers before they leave, so nothing is
        recomputed. Returns ``{"moved": n, "lost": n}`` (keys copied, keys
        no other worker could take) once they have all left;
        ``TimeoutError`` after ``timeout`` seconds (the retirement goes
        on); ``RaskError`` (``RASK_ERR_PROTOCOL``, ``unknown-worker``) when
        a name matches no worker (nothing is retired)."""
        names = [str(w).encode() for w in workers]
        arr = (ctypes.c_char_p * max(len(names), 1))(*names)
        moved, lost = ctypes.c_size_t(), ctypes.c_size_t()
        ms = -1 if timeout is None else max(int(timeout * 1000), 0)
        with self._use() as h:
            status = call(
                L.lib().client_retire_workers, h, arr, len(names), ms, ctypes.byref(moved), ctypes.byref(lost)
            )
        if status == L.TIMEOUT:
            raise TimeoutError(f"the workers had not all retired after {timeout} s")
        return {"moved": moved.value, "lost": lost.value}

    def _own(self, futures):
        flat = _flatten(futures, []) if not (type(futures) is list and all(type(f) is Future for f in futures)) else futures
        for f in flat:
            if f._client is not self:
                raise ValueError(f"{f!r} belongs to another client")
        self._flush_drops()
        return flat

    def replicate(self, futures, n=None, timeout=None):
        """Copies the results of ``futures`` so that ``n`` workers hold each
        (every worker when ``n`` is None; capped at the workers there are),
        as Dask's ``Client.replicate``: copies go to the workers holding the
        fewest bytes, copies beyond ``n`` are dropped. Waits for the futures,
        then for the copies. Returns ``{"copied": n, "short": n}`` (copies
        made, keys left on fewer than ``n`` workers). ``ValueError`` when
        ``n`` < 1; ``RaskError`` when a future failed, was cancelled or
        released (nothing is copied); ``TimeoutError`` after ``timeout``
        seconds (the copies go on)."""
        if n is None:
            n = 1 << 31
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"replicate: n must be an int >= 1, got {n!r}")
        flat = self._own(futures)
        copied, short = ctypes.c_size_t(), ctypes.c_size_t()
        ms = -1 if timeout is None else max(int(timeout * 1000), 0)
        with self._use() as h, _Held([f._handle for f in flat]) as hs:
            arr = (L.FutureP * max(len(hs), 1))(*hs)
            status = call(
                L.lib().client_replicate, h, arr, len(hs), n, ms, ctypes.byref(copied), ctypes.byref(short)
            )
        if status == L.TIMEOUT:
            raise TimeoutError(f"replicate had not finished after {timeout} s")
        return {"copied": copied.value, "short": short.value}

    def rebalance(self, futures=None, timeout=None):
        """Moves results between workers so that the bytes each holds even
        out, as Dask's ``Client.rebalance``: only the results of ``futures``,
        or every result in memory when None. Waits for the futures, then for
        the moves. Returns ``{"moved": n, "bytes": n}``. ``RaskError`` when a
        future failed, was cancelled or released (nothing moves);
        ``TimeoutError`` after ``timeout`` seconds (the moves go on)."""
        flat = [] if futures is None else self._own(futures)
        if futures is not None and not flat:
            return {"moved": 0, "bytes": 0}
        moved, nbytes = ctypes.c_size_t(), ctypes.c_uint64()
        ms = -1 if timeout is None else max(int(timeout * 1000), 0)
        with self._use() as h, _Held([f._handle for f in flat]) as hs:
            arr = (L.FutureP * max(len(hs), 1))(*hs)
            status = call(
                L.lib().client_rebalance, h, arr, len(hs), ms, ctypes.byref(moved), ctypes.byref(nbytes)
            )
        if status == L.TIMEOUT:
            raise TimeoutError(f"rebalance had not finished after {timeout} s")
        return {"moved": moved.value, "bytes": nbytes.value}


    # --------------------------------------------------------- datasets

    def publish_dataset(self, *args, name=None, override=False, **kwargs):
        """Publishes futures (or values) under names on the scheduler, as
        dask.distributed does: ``publish_dataset(x=future)``, or
        ``publish_dataset(future, name="x")``. They outlive this client
        (their keys stay alive) until :meth:`unpublish_dataset`. An existing
        name raises :class:`rask.ProtocolError` unless ``override``."""
        from .coordination import _Object, _coord_call

        items = dict(kwargs)
        if args:
            if name is None or len(args) != 1:
                raise ValueError("publish_dataset: give one positional dataset together with name=")
            items[name] = args[0]
        if not items:
            raise ValueError("publish_dataset: nothing to publish")
        for n, v in items.items():
            obj = _Object(n, self)
            obj._with_item(
                lambda h, vp, fp, n=n: _coord_call(L.lib().client_publish_dataset, h, n.encode(), vp, fp, bool(override)),
                v,
            )

    def get_dataset(self, name, default=_NO_DEFAULT):
        """The dataset published as ``name`` (a :class:`Future` on this
        client, or the value). An unknown name returns ``default`` when
        given, else raises ``KeyError``."""
        from .coordination import _Object, _coord_call
        from .errors import ProtocolError

        try:
            return _Object(name, self)._take_item(
                lambda h, v, f: _coord_call(L.lib().client_get_dataset, h, name.encode(), v, f)
            )
        except ProtocolError as e:
            if "not-found" not in str(e):
                raise
            if default is not _NO_DEFAULT:
                return default
            raise KeyError(f"no dataset named {name!r} is published") from None

    def list_datasets(self):
        """The names of the published datasets, sorted."""
        from .coordination import _coord_call

        out = L.ValueP()
        with self._use() as h:
            _coord_call(L.lib().client_list_datasets, h, ctypes.byref(out))
        return take_value(out)

    def unpublish_dataset(self, name):
        """Removes a published dataset (``KeyError`` if there is none)."""
        from .coordination import _coord_call
        from .errors import ProtocolError

        try:
            with self._use() as h:
                _coord_call(L.lib().client_unpublish_dataset, h, name.encode())
        except ProtocolError as e:
            if "not-found" in str(e):
                raise KeyError(f"no dataset named {name!r} is published") from None
            raise


def _submit_options(key, pure, retries):
    """The ``rask_submit_options`` for these arguments, or None for the
    defaults (plain ``rask_client_submit``)."""
    if key is None and pure and not retries:
        return None
    if retries < 0:
        raise ValueError("retries must not be negative")
    return L.SubmitOptions(
        key=key_name(key).encode() if key is not None else None, impure=not pure, retries=int(retries)
    )


def _check_served(functions, address):
    """Every Python callable of a graph sent to a cluster must be served by
    a Worker of this process under the name the graph gives it."""
    from .worker import served_function

    for name, f in functions.items():
        served = served_function(name, address)
        if served is f or (name == DICT_HELPER and served is not None):
            continue
        if served is None:
            raise ValueError(
                f"the graph runs the Python callable {name!r}, which no rask.Worker of this process "
                f"serves: serve it (rask.Worker(address, functions={{{name!r}: f}}) or "
                "LocalCluster(functions=...)), or name a function some worker offers"
            )
        raise ValueError(f"a rask.Worker of this process serves another callable under the name {name!r}")


def _wait_handles(client, futures, mode, timeout):
    """``rask_client_wait`` in slices; the done flags, or TimeoutError."""
    lib = L.lib()
    dl = Deadline(timeout)
    done = (ctypes.c_bool * len(futures))()
    while True:
        with client._use() as h, _Held([f._handle for f in futures]) as hs:
            arr = (L.FutureP * len(hs))(*hs)
            status = call(lib.client_wait, h, arr, len(hs), mode, dl.slice_ms(), done)
        if status == L.OK:
            return list(done)
        if dl.passed():
            e = TimeoutError(
                f"{sum(done)} of {len(futures)} futures done after {timeout} s"
                + (" (waiting for the first)" if mode == L.WAIT_FIRST_COMPLETED else "")
            )
            e.done = {f for f, d in zip(futures, done) if d}
            e.not_done = {f for f, d in zip(futures, done) if not d}
            raise e


def wait(fs, timeout=None, return_when=ALL_COMPLETED):
    """Waits until all (``return_when="ALL_COMPLETED"``) or one
    (``"FIRST_COMPLETED"``) of the futures ``fs`` (a Future or an iterable;
    all of one client) is done — finished, failed or cancelled. Returns
    ``DoneAndNotDoneFutures(done, not_done)`` (two sets). After ``timeout``
    seconds raises ``TimeoutError`` (as dask.distributed does), whose
    ``done`` and ``not_done`` attributes are the sets at that moment."""
    mode = _WAIT_MODES.get(return_when)
    if mode is None:
        raise ValueError(f"return_when is one of {sorted(_WAIT_MODES)}, not {return_when!r}")
    fs = [fs] if isinstance(fs, Future) else list(fs)
    if not fs:
        return DoneAndNotDoneFutures(set(), set())
    client = fs[0]._client
    for f in fs:
        if not isinstance(f, Future):
            raise TypeError(f"not a rask.Future: {f!r}")
        if f._client is not client:
            raise ValueError("rask.wait takes futures of one client")
    done = _wait_handles(client, fs, mode, timeout)
    return DoneAndNotDoneFutures({f for f, d in zip(fs, done) if d}, {f for f, d in zip(fs, done) if not d})


# ----------------------------------------------------------- as_completed


class as_completed:
    """Iterates over futures in the order they finish (or fail, or are
    cancelled), taking more while iterating — the adaptive pattern::

        ac = rask.as_completed(futures)
        for f in ac:
            if need_more(f.result()):
                ac.add(client.submit("inc", f))

    Yields the Future objects given (a future added twice is yielded
    twice). ``with_results=True`` yields ``(future, result)`` pairs; with
    ``raise_errors=False`` a failed future's result is its exception.
    ``timeout`` (seconds) bounds the whole iteration (``TimeoutError``).
    :meth:`add` may be called from another thread while one iterates.
    """

    def __init__(self, futures=None, with_results=False, raise_errors=True, timeout=None):
        import threading

        self.with_results = with_results
        self.raise_errors = raise_errors
        self._deadline = Deadline(timeout)
        self._timeout = timeout
        self._lock = threading.Lock()
        self._handle = None
        self._client = None
        self._pending = {}  # key -> [Future, ...] not yet yielded, in order added
        self._added = 0
        if futures is not None:
            self.update(futures)

    def _start(self, future):
        """Makes the C iterator, with ``future`` in it. Under the lock."""
        lib = L.lib()
        client = future._client
        out = L.AsCompletedP()
        with client._use() as h, future._handle.use() as fh:
            arr = (L.FutureP * 1)(fh)
            call(lib.as_completed_new, h, arr, 1, ctypes.byref(out))
        self._client = client
        self._handle = Handle(out, lib.as_completed_free, "the as_completed iterator")

    def add(self, future):
        """Adds ``future`` (of the same client as the others), to be yielded
        once done — at once if it is done already."""
        if not isinstance(future, Future):
            raise TypeError(f"not a rask.Future: {future!r}")
        with self._lock:
            if self._client is not None and future._client is not self._client:
                raise ValueError("as_completed takes futures of one client")
            self._pending.setdefault(future.key, []).append(future)
            self._added += 1
            try:
                if self._handle is None:
                    self._start(future)
                else:
                    with self._handle.use() as h, future._handle.use() as fh:
                        call(L.lib().as_completed_add, h, fh)
            except BaseException:
                self._added -= 1
                self._pending[future.key].remove(future)
                if not self._pending[future.key]:
                    del self._pending[future.key]
                raise

    def update(self, futures):
        """Adds every future of the iterable ``futures``."""
        for f in futures:
            self.add(f)

    def count(self):
        """How many futures are not yielded yet."""
        with self._lock:
            return sum(len(v) for v in self._pending.values())

    def is_empty(self):
        return self.count() == 0

    def counts(self):
        """Progress of the iteration: ``{"total": futures added, "done":
        yielded so far, "pending": not yielded yet}``."""
        with self._lock:
            pending = sum(len(v) for v in self._pending.values())
            return {"total": self._added, "done": self._added - pending, "pending": pending}

    def __iter__(self):
        return self

    def _next_future(self, block=True, once=False):
        """The next done future; None when nothing is left (or, when not
        ``block``, nothing is done now; with ``once``, nothing came in one
        wait of at most POLL_MS)."""
        lib = L.lib()
        out = L.FutureP()
        while True:
            with self._lock:
                handle = self._handle
            if handle is None:
                return None
            slice_ms = self._deadline.slice_ms() if block else 0
            with handle.use() as h:
                status = call(lib.as_completed_next, h, slice_ms, ctypes.byref(out))
            if status == L.OK:
                key = lib.future_key(out).decode()
                with self._lock:
                    waiting = self._pending.get(key)
                    f = waiting.pop(0) if waiting else None
                    if waiting is not None and not waiting:
                        del self._pending[key]
                if f is None:  # not one of ours (cannot happen): hand out the new reference
                    return Future(self._client, out)
                lib.future_free(out)
                return f
            if status == L.DONE or not block or once:
                return None
            if self._deadline.passed():
                raise TimeoutError(f"as_completed: {self.count()} futures not done after {self._timeout} s")

    def _item(self, f):
        if not self.with_results:
            return f
        if self.raise_errors:
            return f, f.result()
        try:
            return f, f.result()
        except RaskError as e:
            return f, e

    def __next__(self):
        f = self._next_future()
        if f is None:
            raise StopIteration
        return self._item(f)

    def __aiter__(self):
        return self

    async def __anext__(self):
        """``async for f in as_completed(...)``: waits in the running
        asyncio event loop (on the client's descriptor), never blocking it."""
        import asyncio

        while True:
            f = self._next_future(block=False)
            if f is not None:
                return self._item(f)
            if self.count() == 0:
                raise StopAsyncIteration
            if self._deadline.passed():
                raise TimeoutError(f"as_completed: {self.count()} futures not done after {self._timeout} s")
            # Until the client's next change (or the deadline).
            changed = self._client._aio().wait(lambda: None)
            end = self._deadline.end
            left = None if end is None else max(0.0, end - time.monotonic())
            try:
                await asyncio.wait_for(changed, left)
            except asyncio.TimeoutError:
                pass

    def next_batch(self, block=True):
        """Every future done now (at least one when ``block``)."""
        out = []
        f = self._next_future(block)
        while f is not None:
            out.append(self._item(f))
            f = self._next_future(False)
        return out

    def batches(self):
        """Yields lists of the futures done at once, until none is left."""
        while True:
            batch = self.next_batch()
            if not batch:
                return
            yield batch

    def close(self):
        """Frees the iterator (futures not yet yielded are dropped)."""
        with self._lock:
            handle, self._handle = self._handle, None
            self._pending.clear()
        if handle is not None:
            handle.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

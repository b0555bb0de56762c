"""Coordination objects held by the scheduler, with dask.distributed's names:
:class:`Queue`, :class:`Variable`, :class:`Lock`, :class:`Semaphore`,
:class:`Event`, :class:`Pub` / :class:`Sub`, :func:`fire_and_forget`, and
:func:`get_client`; published datasets are methods of :class:`rask.Client`
(``publish_dataset``, ``get_dataset``, ``list_datasets``,
``unpublish_dataset``).

Each object is a name on the scheduler: two ``Queue("jobs")`` in two
processes are the same queue. ``client=None`` means :func:`get_client`: the
client of the task running on this thread, else the most recent open
:class:`rask.Client` of this process. What they hold is a value (anything
:mod:`rask.values` converts: None, bools, ints, floats, str, bytes, lists,
dicts, arrays) or a :class:`rask.Future`, whose key the scheduler keeps alive
while it is held; a future taken out belongs to the client that took it.

A wait (``Queue.get``, ``Variable.get``, ``Lock.acquire``, ...) runs in
rask with the GIL released; ``timeout=None`` waits as long as it takes, in
slices of :data:`rask._handle.POLL_MS` milliseconds, so that Ctrl-C
(``KeyboardInterrupt``) stops it.
"""

import contextlib
import ctypes
import threading
import uuid
import weakref

from . import _lib as L
from ._handle import POLL_MS
from .errors import _NOT_ERRORS, _take_error

_CLIENTS = []  # weak references to the clients of this process, oldest first
_CLIENTS_LOCK = threading.Lock()
_TASK = threading.local()  # .client_of: a callable giving the running task's client;
# .worker, .task: the rask.Worker running the task on this thread and its rask_task;
# .seceded: the task gave its slot back (secede) and has not rejoined


def _register_client(client):
    with _CLIENTS_LOCK:
        _CLIENTS[:] = [r for r in _CLIENTS if r() is not None]
        _CLIENTS.append(weakref.ref(client))


def get_client():
    """The client to use here: inside a task run by a :class:`rask.Worker`
    of this process, a client to that worker's scheduler (made on first
    use, closed with the worker); elsewhere the most recent open
    :class:`rask.Client` of this process. Raises ``ValueError`` when there
    is neither."""
    client_of = getattr(_TASK, "client_of", None)
    if client_of is not None:
        return client_of()
    with _CLIENTS_LOCK:
        for r in reversed(_CLIENTS):
            c = r()
            # (not a worker's client for its tasks: that one is the task's)
            if c is not None and not c.closed and not getattr(c, "_for_tasks", False):
                return c
    raise ValueError(
        "rask.get_client(): no client here: this is not a task run by a rask.Worker, "
        "and no rask.Client is open in this process (make one with rask.Client(address))"
    )


def secede():
    """Inside a task run by a :class:`rask.Worker`: the task gives its
    thread's slot back while it waits (on tasks it submitted), so the worker
    runs other tasks meanwhile (on a new thread), and the scheduler is told
    (``long-running``) that the task no longer occupies the worker. Call
    :func:`rejoin` before working again (or use :func:`worker_client`,
    which does both). Seceding twice does nothing. Raises ``ValueError``
    outside such a task."""
    worker = getattr(_TASK, "worker", None)
    if worker is None:
        raise ValueError("rask.secede(): not inside a task run by a rask.Worker")
    if _TASK.seceded:
        return
    worker._secede(_TASK.task)
    _TASK.seceded = True


def rejoin():
    """After :func:`secede`: waits until one of the worker's ``nthreads``
    slots is free and takes it back, so the task goes on with its share of
    the worker. Does nothing when the task has not seceded. Raises
    ``ValueError`` outside a task run by a :class:`rask.Worker`."""
    worker = getattr(_TASK, "worker", None)
    if worker is None:
        raise ValueError("rask.rejoin(): not inside a task run by a rask.Worker")
    if not _TASK.seceded:
        return
    worker._rejoin()
    _TASK.seceded = False


@contextlib.contextmanager
def worker_client(timeout=None, separate_thread=True):
    """Inside a task run by a :class:`rask.Worker`, Dask's context manager:
    gives the task's client (:func:`get_client`) and, with
    ``separate_thread`` (the default), secedes on entry and rejoins on exit,
    so the task can wait on what it submits without holding a slot::

        def fib(n):
            if n < 2:
                return n
            with rask.worker_client() as c:
                a = c.submit("fib", n - 1, pure=False)
                b = c.submit("fib", n - 2, pure=False)
                return a.result() + b.result()

    ``timeout`` is accepted for Dask's signature and not used (the task's
    client is already connected). Raises ``ValueError`` outside such a
    task."""
    if getattr(_TASK, "worker", None) is None:
        raise ValueError("rask.worker_client(): not inside a task run by a rask.Worker")
    client = get_client()
    if separate_thread:
        secede()
    try:
        yield client
    finally:
        if separate_thread:
            rejoin()


def _coord_call(func, *args):
    """Like :func:`rask.errors.call`, but a ``RASK_TIMEOUT`` that carries a
    message (a get or put that ran out of time) raises ``TimeoutError``
    with it."""
    err = L.ErrorP()
    status = func(*args, ctypes.byref(err))
    if status == L.TIMEOUT and err:
        e = _take_error(status, err)
        raise TimeoutError(str(e.args[0]) if e.args else "timed out")
    if status in _NOT_ERRORS:
        if err:
            L.lib().error_free(err)
        return status
    raise _take_error(status, err)


def _forever(wait, ms):
    """``wait(ms)`` — one coordination wait of up to ``ms`` milliseconds,
    returning its status and raising ``TimeoutError`` when a get or put ran
    out of time — with ``ms == -1`` (no limit) done as waits of
    :data:`POLL_MS` again and again, Python running in between (Ctrl-C
    raises there). The scheduler answers each wait, so an item is never
    taken by a wait that ran out. Returns the last status."""
    if ms != -1:
        return wait(ms)
    while True:
        try:
            status = wait(POLL_MS)
        except TimeoutError:
            continue
        if status != L.TIMEOUT:
            return status


def _ms(timeout):
    if timeout is None:
        return -1
    if timeout < 0:
        raise ValueError("a timeout must not be negative")
    return int(timeout * 1000 + 0.5)


def _name(prefix, name):
    if name is None:
        return f"{prefix}-{uuid.uuid4().hex}"
    if not isinstance(name, str):
        raise TypeError(f"a {prefix} name must be a str, not {type(name).__name__}")
    return name


class _Object:
    """A named object on the scheduler, used through a client."""

    _kind = "object"

    def __init__(self, name=None, client=None):
        self.name = _name(self._kind, name)
        self._client = client

    @property
    def client(self):
        return self._client if self._client is not None else get_client()

    def _with_item(self, fn, value):
        """Calls ``fn(h, value_ptr, future_ptr)`` with the item's C form."""
        from .client import Future
        from .values import to_value

        c = self.client
        lib = L.lib()
        if isinstance(value, Future):
            with c._use() as h, value._handle.use() as fh:
                return fn(h, None, fh)
        v = to_value(value)
        try:
            with c._use() as h:
                return fn(h, v, None)
        finally:
            lib.value_free(v)

    def _take_item(self, fn):
        """Calls ``fn(h, &value, &future)`` and returns the item it set."""
        from .client import Future
        from .values import take_value

        c = self.client
        v = L.ValueP()
        f = L.FutureP()
        with c._use() as h:
            fn(h, ctypes.byref(v), ctypes.byref(f))
        if f:
            return Future(c, f)
        return take_value(v)

    def __repr__(self):
        return f"<rask.{type(self).__name__}: {self.name}>"

    def __reduce__(self):  # same object by name elsewhere (no client travels)
        return (type(self)._rebuild, (self.name,))

    @classmethod
    def _rebuild(cls, name):
        return cls(name=name)


class Queue(_Object):
    """A first-in first-out queue on the scheduler:
    ``Queue(name=None, client=None, maxsize=0)`` (``maxsize`` 0: no limit;
    an existing queue keeps the limit it was made with). Items are values
    or futures."""

    _kind = "queue"

    def __init__(self, name=None, client=None, maxsize=0):
        super().__init__(name, client)
        self.maxsize = int(maxsize)
        if self.maxsize < 0:
            raise ValueError("maxsize must not be negative")
        with self.client._use() as h:
            _coord_call(L.lib().client_queue_create, h, self.name.encode(), self.maxsize)

    def put(self, value, timeout=None):
        """Appends ``value`` (or a future); on a full queue waits up to
        ``timeout`` seconds for room, then raises ``TimeoutError`` naming
        the queue."""
        ms = _ms(timeout)
        self._with_item(
            lambda h, v, f: _forever(lambda m: _coord_call(L.lib().client_queue_put, h, self.name.encode(), v, f, m), ms),
            value,
        )

    def get(self, timeout=None, batch=False):
        """Takes the oldest item, waiting up to ``timeout`` seconds for one
        (``TimeoutError`` naming the queue after that). ``batch=True``
        takes every item there now (a list, maybe empty); ``batch=n`` takes
        ``n`` items, waiting for each."""
        if batch is True:
            out = []
            for _ in range(self.qsize()):
                out.append(self.get(timeout=0))
            return out
        if batch:
            return [self.get(timeout=timeout) for _ in range(int(batch))]
        ms = _ms(timeout)
        return self._take_item(
            lambda h, v, f: _forever(lambda m: _coord_call(L.lib().client_queue_get, h, self.name.encode(), m, v, f), ms)
        )

    def qsize(self):
        """The number of items in the queue."""
        n = ctypes.c_uint64()
        with self.client._use() as h:
            _coord_call(L.lib().client_queue_size, h, self.name.encode(), ctypes.byref(n))
        return n.value

    def __reduce__(self):
        return (Queue, (self.name, None, self.maxsize))


class Variable(_Object):
    """A named value (or future) on the scheduler:
    ``Variable(name=None, client=None)``."""

    _kind = "variable"

    def set(self, value):
        """Sets the value (or a future); waiting :meth:`get` calls return it."""
        self._with_item(lambda h, v, f: _coord_call(L.lib().client_variable_set, h, self.name.encode(), v, f), value)

    def get(self, timeout=None):
        """The value, waiting up to ``timeout`` seconds for one to be set
        (``TimeoutError`` naming the variable after that)."""
        ms = _ms(timeout)
        return self._take_item(
            lambda h, v, f: _forever(lambda m: _coord_call(L.lib().client_variable_get, h, self.name.encode(), m, v, f), ms)
        )

    def delete(self):
        """Deletes the variable's value."""
        with self.client._use() as h:
            _coord_call(L.lib().client_variable_delete, h, self.name.encode())


class Semaphore(_Object):
    """A semaphore of ``max_leases`` leases on the scheduler:
    ``Semaphore(max_leases=1, name=None, client=None)``. A lease is this
    instance's: :meth:`release` gives back the oldest one it holds. Leases
    of a client that goes away (closed, or its process killed) are
    released by the scheduler."""

    _kind = "semaphore"

    def __init__(self, max_leases=1, name=None, client=None):
        super().__init__(name, client)
        if int(max_leases) < 1:
            raise ValueError("max_leases must be at least 1")
        self.max_leases = int(max_leases)
        self._leases = []  # (client, lease id)
        self._lock = threading.Lock()

    def acquire(self, timeout=None):
        """Takes a lease, waiting up to ``timeout`` seconds (``None``:
        forever, 0: only try). Returns whether it got one."""
        c = self.client
        lease = ctypes.c_uint64()
        with c._use() as h:
            status = _forever(
                lambda m: _coord_call(
                    L.lib().client_lease_acquire, h, self.name.encode(), self.max_leases, m, ctypes.byref(lease)
                ),
                _ms(timeout),
            )
        if status != L.OK:
            return False
        with self._lock:
            self._leases.append((c, lease.value))
        return True

    def release(self):
        """Gives back a lease this instance holds (``RuntimeError`` if none)."""
        with self._lock:
            if not self._leases:
                raise RuntimeError(f"{self!r} released more often than acquired")
            c, lease = self._leases.pop(0)
        with c._use() as h:
            _coord_call(L.lib().client_lease_release, h, self.name.encode(), lease)

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()

    def __reduce__(self):
        return (Semaphore, (self.max_leases, self.name))


class Lock(Semaphore):
    """A lock on the scheduler (a semaphore of one lease):
    ``Lock(name=None, client=None)``. Not reentrant."""

    _kind = "lock"

    def __init__(self, name=None, client=None):
        super().__init__(1, name, client)

    def acquire(self, blocking=True, timeout=None):
        """Takes the lock; waits up to ``timeout`` seconds (forever with
        ``None``; ``blocking=False`` only tries). Returns whether it got it."""
        return super().acquire(timeout=timeout if blocking else 0)

    def locked(self):
        """Whether this instance holds the lock."""
        with self._lock:
            return bool(self._leases)

    def __reduce__(self):
        return (Lock, (self.name,))


class Event(_Object):
    """An event on the scheduler: ``Event(name=None, client=None)``."""

    _kind = "event"

    def set(self):
        with self.client._use() as h:
            _coord_call(L.lib().client_event_set, h, self.name.encode())

    def clear(self):
        with self.client._use() as h:
            _coord_call(L.lib().client_event_clear, h, self.name.encode())

    def wait(self, timeout=None):
        """Waits up to ``timeout`` seconds for the event to be set; returns
        whether it is."""
        out = ctypes.c_bool()
        ms = _ms(timeout)
        with self.client._use() as h:
            while True:
                _forever(lambda m: _coord_call(L.lib().client_event_wait, h, self.name.encode(), m, ctypes.byref(out)), ms)
                if out.value or ms != -1:
                    return out.value

    def is_set(self):
        return self.wait(timeout=0)


class Pub(_Object):
    """Publishes on a topic: ``Pub(name, client=None)``; :meth:`put` sends
    a value to the topic's current subscribers (:class:`Sub`)."""

    _kind = "topic"

    def put(self, msg):
        from .values import to_value

        v = to_value(msg)
        try:
            with self.client._use() as h:
                _coord_call(L.lib().client_publish, h, self.name.encode(), v)
        finally:
            L.lib().value_free(v)


class Sub(_Object):
    """Subscribes to a topic: ``Sub(name, client=None)``; receives what is
    published from now on, in order (:meth:`get`, or iterate)."""

    _kind = "topic"

    def __init__(self, name=None, client=None):
        from ._handle import Handle

        super().__init__(name, client)
        out = L.SubscriptionP()
        with self.client._use() as h:
            _coord_call(L.lib().client_subscribe, h, self.name.encode(), ctypes.byref(out))
        self._handle = Handle(out, L.lib().subscription_free, f"subscription {self.name!r}")

    def get(self, timeout=None):
        """The next message, waiting up to ``timeout`` seconds
        (``TimeoutError`` after that)."""
        from .values import take_value

        v = L.ValueP()
        with self._handle.use() as h:
            _forever(lambda m: _coord_call(L.lib().subscription_get, h, m, ctypes.byref(v)), _ms(timeout))
        return take_value(v)

    def __iter__(self):
        while True:
            yield self.get()

    def close(self):
        self._handle.close()

    def __del__(self):
        try:
            self._handle.close()
        except Exception:
            pass


def fire_and_forget(obj):
    """Runs the tasks of ``obj`` (a future, or a list/tuple/set/dict of
    them) to the end even when no future on them is left."""
    from .client import Future

    futures = []

    def walk(o):
        if isinstance(o, Future):
            futures.append(o)
        elif isinstance(o, (list, tuple, set)):
            for x in o:
                walk(x)
        elif isinstance(o, dict):
            for x in o.values():
                walk(x)

    walk(obj)
    by_client = {}
    for f in futures:
        by_client.setdefault(id(f.client), (f.client, []))[1].append(f)
    for c, fs in by_client.values():
        handles = [f._handle for f in fs]
        from .client import _Held

        with c._use() as h, _Held(handles) as hs:
            arr = (L.FutureP * len(hs))(*hs)
            _coord_call(L.lib().client_fire_and_forget, h, arr, len(hs))

"""A C handle shared by Python threads, freed exactly once.

The distributed handles (``rask_client``, ``rask_future``,
``rask_as_completed``, ``rask_worker``, ``rask_cluster``,
``rask_scheduler``) may be used by several threads at once, but their
``_free`` must come after every other call on them. :class:`Handle` counts
the threads inside a call (:meth:`use`) and makes :meth:`close` wait for
them before freeing, so closing from one thread while another waits in
rask is safe (the waits inside rask last at most ``POLL_MS``).
"""

import atexit
import threading
import time
import weakref

from .errors import StateError

#: How long one wait inside rask lasts (ms) before Python checks for
#: signals (Ctrl-C), a deadline, or a close from another thread.
POLL_MS = 100

#: How long one wait of :meth:`rask.Future.result` lasts (ms) on a thread
#: other than the main one: only the main thread gets Ctrl-C, and a close of
#: the client ends the wait at once, so such a thread wakes only to log the
#: scheduler's warnings about the key. (A worker's tasks waiting on their
#: children are such threads, a thousand at once in a recursion: waking each
#: ten times a second cost more than the tasks.)
THREAD_POLL_MS = 5000


class Handle:
    """Owns the C pointer ``h``; ``free(h)`` frees it. The error raised when
    it is used after :meth:`close` says ``f"{what} was {closed_word}"``."""

    __slots__ = ("_closed", "_closed_word", "_cond", "_free", "_h", "_lock", "_users", "what")

    def __init__(self, h, free, what, closed_word="closed"):
        self._h = h
        self._free = free
        self.what = what
        self._closed_word = closed_word
        self._users = 0
        self._closed = False
        self._lock = threading.Lock()
        self._cond = None  # made by close() when it must wait for users

    @property
    def closed(self):
        return self._closed

    def enter(self):
        with self._lock:
            if self._closed:
                raise StateError(f"{self.what} was {self._closed_word}")
            self._users += 1
            return self._h

    def leave(self):
        with self._lock:
            self._users -= 1
            if self._users == 0 and self._cond is not None:
                self._cond.notify_all()

    def use(self):
        """``with handle.use() as h:`` — ``h`` stays valid inside."""
        return self

    __enter__ = enter

    def __exit__(self, *exc):
        self.leave()

    def close(self, before_free=None):
        """Marks the handle closed, waits until no thread is inside a call
        on it, and frees it. Idempotent. ``before_free(h)`` runs first
        (e.g. a ``_stop`` that makes the other threads' waits return)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            h = self._h
        if before_free is not None and h:
            before_free(h)
        with self._lock:
            if self._users:
                self._cond = threading.Condition(self._lock)
                while self._users:
                    self._cond.wait()
            self._h = None
        if h:
            self._free(h)


class Deadline:
    """A timeout in seconds (``None``: none) as slices of at most
    :data:`POLL_MS` milliseconds."""

    __slots__ = ("end",)

    def __init__(self, timeout):
        if timeout is not None and timeout < 0:
            raise ValueError("a timeout must not be negative")
        self.end = None if timeout is None else time.monotonic() + timeout

    def slice_ms(self, most=POLL_MS):
        """The next wait, in ms (at most ``most``; 0 once the deadline has
        passed)."""
        if self.end is None:
            return most
        left = self.end - time.monotonic()
        return max(0, min(most, int(left * 1000 + 0.999)))

    def passed(self):
        return self.end is not None and time.monotonic() >= self.end


# Objects still open when the interpreter exits are closed in order —
# workers (their serving threads stop), then clients, then clusters and
# schedulers — rather than left to finalizers that may run in any order, or
# not at all, while daemon threads are still inside rask.
_LIVE = (weakref.WeakSet(), weakref.WeakSet(), weakref.WeakSet())


def at_exit(obj, rank):
    """Closes ``obj`` (``obj.close()``) at interpreter exit if it is still
    alive then: rank 0 first (workers), then 1 (clients), then 2."""
    _LIVE[rank].add(obj)


@atexit.register
def _close_all():
    for live in _LIVE:
        for obj in list(live):
            try:
                obj.close()
            except Exception:
                pass

"""Shipped functions: Python callables that travel to the cluster's workers.

A task of a callable that no worker offers by name is sent as the function
``code:python-X.Y`` (:data:`CODE_FUNC`, the runtime of this interpreter)
whose first argument is the callable serialized with cloudpickle (the
library Dask uses). The bytes are the value of a key named after their
content hash (:func:`code_key`): the client submits that key once (an
``identity`` task holding the bytes) and every task of the function refers
to it, so a worker fetches it once, like any dependency, and unpickles it
once (:class:`CodeCache`). See "Shipped functions" in docs/protocol.md.

A worker runs shipped code only when started with ``allow_code=True``
(``python -m rask.worker ... --allow-code``) and, when its scheduler is not
on loopback, only if it connects with a token or TLS
(:func:`may_run_code`); otherwise it does not offer :data:`CODE_FUNC` and
the scheduler errs such tasks with a message naming the option.
"""

import hashlib
import ipaddress
import socket
import sys
import threading
from collections import OrderedDict

#: The runtime this interpreter runs shipped functions of.
RUNTIME = f"python-{sys.version_info[0]}.{sys.version_info[1]}"
#: The function name of shipped functions of this runtime.
CODE_FUNC = "code:" + RUNTIME
#: The prefix of every shipped function's name (any runtime).
CODE_PREFIX = "code:"


def _pickler():
    try:
        import cloudpickle
    except ImportError as e:  # pragma: no cover - cloudpickle is a dependency
        raise ImportError(
            "shipping Python functions to a cluster needs cloudpickle (pip install cloudpickle)"
        ) from e
    return cloudpickle


def dumps(func, what=None):
    """The cloudpickle bytes of ``func``; a ``TypeError`` naming ``what``
    (the task's key, or the function) when it cannot be serialized."""
    try:
        return _pickler().dumps(func)
    except Exception as e:
        name = getattr(func, "__qualname__", None) or repr(func)
        where = f" of {what}" if what else ""
        raise TypeError(
            f"cannot ship the function {name!r}{where} to the cluster: it does not serialize "
            f"({type(e).__name__}: {e})"
        ) from e


def code_key(blob):
    """The key that holds the shipped function ``blob``: its runtime and
    content hash, so equal functions share one key on the cluster."""
    return f"{CODE_FUNC}-{hashlib.sha256(blob).hexdigest()[:40]}"


class CodeCache:
    """Unpickled shipped functions by their bytes (at most ``size``, least
    recently used dropped first)."""

    def __init__(self, size=256):
        self.size = size
        self.loads = 0  # how many times a function was unpickled
        self._items = OrderedDict()
        self._lock = threading.Lock()
        # The last function loaded, (bytes, callable): the tasks of one map
        # all carry the same bytes, and comparing them costs less than
        # hashing them for the dict (one tuple read: no lock needed).
        self._last = (None, None)

    def load(self, blob, worker_name="?"):
        """The callable ``blob`` holds. A function that does not unpickle
        (a module missing here, ...) raises the error with this worker's
        runtime named."""
        if not isinstance(blob, (bytes, bytearray)):
            raise TypeError(f"a shipped function is bytes, not {type(blob).__name__}")
        last_blob, last_f = self._last
        if blob == last_blob:
            return last_f
        blob = bytes(blob)
        with self._lock:
            f = self._items.get(blob)
            if f is not None:
                self._items.move_to_end(blob)
                self._last = (blob, f)
                return f
        try:
            self.loads += 1
            f = _pickler().loads(blob)
        except Exception as e:
            msg = f"{e} (unpickling a shipped function on worker {worker_name!r}, runtime {RUNTIME})"
            if isinstance(e, ImportError):  # a module the function needs is missing here
                raise type(e)(msg, name=e.name) from e
            raise RuntimeError(f"{type(e).__name__}: {msg}") from e
        if not callable(f):
            raise TypeError(f"a shipped function unpickled to a {type(f).__name__}, not a callable")
        with self._lock:
            self._items[blob] = f
            while len(self._items) > self.size:
                self._items.popitem(last=False)
            self._last = (blob, f)
        return f


def is_loopback(address):
    """Whether the scheduler address ``tcp://host:port`` is on loopback."""
    rest = address.split("://", 1)[-1]
    host = rest.rsplit(":", 1)[0].strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0].split("%")[0]).is_loopback for i in infos)


def may_run_code(address, token=None, tls=None):
    """Why a worker asked to run shipped code must not (a str), or None
    when it may: on loopback, or with a token or TLS."""
    if is_loopback(address) or token or tls:
        return None
    return (
        f"the scheduler {address} is not on loopback and the worker connects without a token or TLS: "
        "shipped code is refused (give the cluster a token, or TLS)"
    )

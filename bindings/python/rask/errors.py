"""Exceptions: one class per ``rask_status``, all under :class:`RaskError`.

Every call into librask that can fail goes through :func:`call`, which hands
rask a fresh ``rask_error *``, turns a failure into the matching exception
with rask's message, and frees the error (also when building the exception
fails), so no error object is ever leaked.
"""

import ctypes
import re

from . import _lib as L


class RaskError(Exception):
    """A call into rask failed.

    Attributes: ``status`` (the ``rask_status`` number), ``status_name``
    (``"RASK_ERR_GRAPH"``), ``message`` (rask's message, as given by
    ``rask_error_message``); for a task that raised on a worker,
    ``exception_type`` and ``remote_traceback`` (``rask_error_exception``,
    ``rask_error_traceback``; else None).
    """

    status = None
    exception_type = None
    remote_traceback = None

    def __init__(self, message, status=None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status

    @property
    def status_name(self):
        return _STATUS_NAMES.get(self.status, "RASK_UNKNOWN_STATUS")


class NullArgError(RaskError):
    """RASK_ERR_NULL_ARG: a required pointer was NULL (a bug in the bindings)."""

    status = L.ERR_NULL_ARG


class InvalidUtf8Error(RaskError):
    """RASK_ERR_INVALID_UTF8: a string was not valid UTF-8."""

    status = L.ERR_INVALID_UTF8


class InvalidArgumentError(RaskError, ValueError):
    """RASK_ERR_INVALID_ARG: an argument was out of range or unusable."""

    status = L.ERR_INVALID_ARG


class ValueKindError(RaskError, TypeError):
    """RASK_ERR_TYPE: a value was of the wrong kind."""

    status = L.ERR_TYPE


class DecodeError(RaskError, ValueError):
    """RASK_ERR_DECODE: bytes were not valid msgpack or not a graph document."""

    status = L.ERR_DECODE


class GraphError(RaskError):
    """RASK_ERR_GRAPH: a cycle, a missing or duplicate key, an unknown output.
    The message names the keys (a cycle as ``'a' -> 'b' -> 'a'``)."""

    status = L.ERR_GRAPH


class UnknownFunctionError(RaskError):
    """RASK_ERR_UNKNOWN_FUNCTION: a task names a function nobody provides."""

    status = L.ERR_UNKNOWN_FUNCTION


class TaskError(RaskError):
    """RASK_ERR_TASK_FAILED: a task's function failed.

    ``key`` and ``func`` name the task and its function, ``task_message`` is
    the function's own message (for a Python function: ``"TypeName: text"``)
    and ``message`` the whole of rask's message. When the function was a
    Python callable, the exception it raised is ``__cause__`` (with its
    traceback) and ``exception``.
    """

    status = L.ERR_TASK_FAILED
    _PATTERN = re.compile(r"^task '(?P<key>.*)' \((?P<func>[^()]*)\) failed: (?P<msg>.*)$", re.S)

    def __init__(self, message, status=None):
        super().__init__(message, status)
        m = self._PATTERN.match(message)
        self.key = m.group("key") if m else None
        self.func = m.group("func") if m else None
        self.task_message = m.group("msg") if m else message
        self.exception = None


class RemoteTaskError(TaskError):
    """A task failed on a cluster (raised by :class:`rask.Client`, futures,
    ``gather``, ...). rask's message is ``task 'KEY' (FUNC) failed on
    WORKER: FUNC: MESSAGE``, or ``task 'KEY' failed because its dependency
    'FAILED' (FUNC) failed on WORKER: FUNC: MESSAGE`` when a task the key
    needs failed. Attributes:

    - ``key``: the key that was asked for;
    - ``failed_key``: the key whose task failed (``key`` itself, or a
      dependency);
    - ``func``: the failed task's function;
    - ``worker``: the address of the worker it failed on;
    - ``task_message``: the function's own message (for a Python function
      served by :class:`rask.Worker`: ``"TypeName: text"``);
    - ``exception``: the exception object, when the function raised it in a
      :class:`rask.Worker` of this process (also ``__cause__``), else None;
    - ``exception_type``: the name of the exception's type as the worker
      reported it (``"ValueError"``, ``"mymodule.ParseError"``), else None;
    - ``remote_traceback``: the traceback on the worker as text (any
      process, any host language that reports one: Python and Julia
      workers do), else None. ``str(error)`` ends with it when no exception
      object is attached (which would show its own traceback as the cause).
    """

    def __str__(self):
        text = self.message
        if self.remote_traceback and self.exception is None:
            where = f" (on {self.worker})" if self.worker else ""
            text += f"\n\nRemote traceback{where}:\n{self.remote_traceback.rstrip()}"
        return text

    _REMOTE = re.compile(
        r"^task '(?P<key>.*?)' (?:failed because its dependency '(?P<failed>.*?)' )?"
        r"\((?P<func>[^()]*)\) failed on (?P<worker>\S+): (?P<msg>.*)$",
        re.S,
    )

    def __init__(self, message, status=None):
        super().__init__(message, status)
        m = self._REMOTE.match(message)
        if m:
            self.key = m.group("key")
            self.failed_key = m.group("failed") or self.key
            self.func = m.group("func")
            self.worker = m.group("worker")
            msg = m.group("msg")
            prefix = self.func + ": "  # the worker starts the message with the function's name
            self.task_message = msg[len(prefix) :] if msg.startswith(prefix) else msg
        else:
            self.failed_key = self.key
            self.worker = None


class CancelledError(RaskError):
    """RASK_ERR_CANCELLED: the computation was cancelled."""

    status = L.ERR_CANCELLED


class RegistryError(RaskError):
    """RASK_ERR_REGISTRY: a function could not be registered (empty, builtin
    or duplicate name)."""

    status = L.ERR_REGISTRY


class PanicError(RaskError):
    """RASK_ERR_PANIC: rask panicked (a bug in rask)."""

    status = L.ERR_PANIC


class StateError(RaskError):
    """RASK_ERR_STATE: the call is not possible in the current state."""

    status = L.ERR_STATE


class RaskConnectionError(RaskError, ConnectionError):
    """RASK_ERR_CONNECTION: connecting, listening or a connection failed (the
    distributed runtime)."""

    status = L.ERR_CONNECTION


class ProtocolError(RaskError):
    """RASK_ERR_PROTOCOL: the other side sent something unusable or refused a
    request."""

    status = L.ERR_PROTOCOL


class DataError(RaskError):
    """RASK_ERR_DATA: a value could not be fetched from or stored on the
    workers."""

    status = L.ERR_DATA


_CLASSES = {
    cls.status: cls
    for cls in (
        NullArgError,
        InvalidUtf8Error,
        InvalidArgumentError,
        ValueKindError,
        DecodeError,
        GraphError,
        UnknownFunctionError,
        TaskError,
        CancelledError,
        RegistryError,
        PanicError,
        StateError,
        RaskConnectionError,
        ProtocolError,
        DataError,
    )
}

_STATUS_NAMES = {
    L.OK: "RASK_OK",
    L.ERR_NULL_ARG: "RASK_ERR_NULL_ARG",
    L.ERR_INVALID_UTF8: "RASK_ERR_INVALID_UTF8",
    L.ERR_INVALID_ARG: "RASK_ERR_INVALID_ARG",
    L.ERR_TYPE: "RASK_ERR_TYPE",
    L.ERR_DECODE: "RASK_ERR_DECODE",
    L.ERR_GRAPH: "RASK_ERR_GRAPH",
    L.ERR_UNKNOWN_FUNCTION: "RASK_ERR_UNKNOWN_FUNCTION",
    L.ERR_TASK_FAILED: "RASK_ERR_TASK_FAILED",
    L.ERR_CANCELLED: "RASK_ERR_CANCELLED",
    L.ERR_REGISTRY: "RASK_ERR_REGISTRY",
    L.ERR_PANIC: "RASK_ERR_PANIC",
    L.ERR_STATE: "RASK_ERR_STATE",
    L.ERR_CONNECTION: "RASK_ERR_CONNECTION",
    L.ERR_PROTOCOL: "RASK_ERR_PROTOCOL",
    L.ERR_DATA: "RASK_ERR_DATA",
    L.TIMEOUT: "RASK_TIMEOUT",
    L.DONE: "RASK_DONE",
}

_NOT_ERRORS = (L.OK, L.TIMEOUT, L.DONE)


def error_for(status, message):
    """The exception for ``status`` with ``message``."""
    cls = _CLASSES.get(status, RaskError)
    return cls(message, status)


def _take_error(status, err):
    """Builds the exception from the ``rask_error *`` ``err`` (may be NULL)
    and frees it."""
    lib = L.lib()
    try:
        if err:
            raw = lib.error_message(err)
            message = raw.decode("utf-8", "replace") if raw else ""
            status = lib.error_status(err) or status
            exc_type, tb = lib.error_exception(err), lib.error_traceback(err)
        else:
            message = f"{_STATUS_NAMES.get(status, 'RASK_UNKNOWN_STATUS')} (rask gave no message)"
            exc_type = tb = None
        e = error_for(status, message)
        if exc_type is not None:
            e.exception_type = exc_type.decode("utf-8", "replace")
        if tb is not None:
            e.remote_traceback = tb.decode("utf-8", "replace")
        return e
    finally:
        lib.error_free(err)


def call(func, *args):
    """Calls the fallible C function ``func(*args, &err)``; returns its
    status when it is OK, TIMEOUT or DONE, raises the matching
    :class:`RaskError` otherwise. The error is always freed."""
    err = L.ErrorP()
    status = func(*args, ctypes.byref(err))
    if status in _NOT_ERRORS:
        if err:  # rask does not write *err on success, but never leak one
            L.lib().error_free(err)
        return status
    raise _take_error(status, err)

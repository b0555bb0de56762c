"""Python objects that stay Python objects inside rask (host values).

The result of a Python function is not converted to a rask value: rask
holds a *host value*, a number standing for the object, which this module
keeps in :data:`HOST`'s table until rask releases it (exactly once, through a
callback, when its last copy is dropped). Functions of this process that
consume it get the very object (``is``). Where it must leave the process (a
task on another worker, a client's gather, a spill file) or the language (a
builtin or C function), rask asks for its *portable form* once:
a numpy array of at least ``values.ZERO_COPY_MIN`` bytes is lent as a tensor
over its own memory (no copy); otherwise :func:`portable` — plain data as
msgpack when the object is plain data
(lists, dicts, numbers, strings, bytes, numpy arrays), else the object
pickled with cloudpickle and tagged with this runtime (msgpack extension
type 2), which a Python process of the same version unpickles. See "Host
values" in docs/graph-spec.md and docs/python.md.
"""

import atexit
import ctypes
import itertools
import struct
import sys
import threading

from . import _lib as L
from .errors import call
from .shipping import RUNTIME

#: msgpack extension type of a packed host value (docs/graph-spec.md).
HOST_EXT = 2
#: msgpack extension type of a reference to a live host object (only in
#: buffers between rask and this process).
HOST_REF_EXT = 3

_RUNTIME_B = RUNTIME.encode()
_PACK_HEAD = bytes([len(_RUNTIME_B)]) + _RUNTIME_B
_ref = struct.Struct("<Q")
_ref_sized = struct.Struct("<QQ")


class Packed:
    """A host value packed by a runtime this process cannot read (another
    Python version, Julia): kept as it is, and sent back unchanged when given
    to rask again."""

    __slots__ = ("runtime", "data")

    def __init__(self, runtime, data):
        self.runtime = runtime
        self.data = bytes(data)

    def __eq__(self, other):
        return isinstance(other, Packed) and (self.runtime, self.data) == (other.runtime, other.data)

    def __hash__(self):
        return hash((self.runtime, self.data))

    def __repr__(self):
        return f"rask.Packed({self.runtime!r}, <{len(self.data)} bytes>)"


def pack_ext(runtime, data):
    """The msgpack extension (type 2) of bytes packed by ``runtime``."""
    from .values import _msgpack

    r = runtime.encode()
    return _msgpack.ExtType(HOST_EXT, bytes([len(r)]) + r + bytes(data))


def unpack_ext(data):
    """The object of a type-2 extension payload: unpickled when this
    runtime packed it, else a :class:`Packed`."""
    n = data[0]
    runtime = bytes(data[1 : 1 + n]).decode()
    body = data[1 + n :]
    if runtime == RUNTIME:
        import pickle

        return pickle.loads(body)
    return Packed(runtime, body)


def _pickled(obj):
    from .shipping import _pickler
    from .values import _msgpack

    return _msgpack.ExtType(HOST_EXT, _PACK_HEAD + _pickler().dumps(obj))


def _portable_default(obj):
    from .values import _default

    if isinstance(obj, Packed):
        return pack_ext(obj.runtime, obj.data)
    try:
        return _default(obj)
    except TypeError:
        return _pickled(obj)


def portable(obj):
    """The portable form of ``obj`` as msgpack bytes: plain data where it
    is plain data, pickled (extension type 2) where it is not."""
    from .values import pack

    try:
        return pack(obj, default=_portable_default)
    except (OverflowError, ValueError):  # ints beyond 64 bits, ...: the whole object pickled
        from .values import _msgpack

        return _msgpack.packb(_pickled(obj), use_bin_type=True)


def size_of(obj):
    """A cheap estimate of ``obj``'s bytes, for a worker's memory limit:
    buffers and numpy arrays by their length, anything else shallowly."""
    if isinstance(obj, (bytes, bytearray)):
        return len(obj)
    nbytes = getattr(obj, "nbytes", None)
    if isinstance(nbytes, int):
        return nbytes
    try:
        return sys.getsizeof(obj)
    except TypeError:
        return 0


class Host:
    """This interpreter as a ``rask_host``: the table of objects rask holds."""

    def __init__(self):
        self.objects = {}  # id -> object, while rask holds it
        self._ids = itertools.count(1)
        self.released = 0  # how many rask released (for tests)
        # The callbacks must live as long as the host handle.
        self._serialize_cb = L.HostSerialize(self._serialize)
        self._release_cb = L.HostRelease(self._release)
        out = L.HostP()
        call(L.lib().host_new, _RUNTIME_B, self._serialize_cb, self._release_cb, None, L.DropUserData(), ctypes.byref(out))
        self.handle = out
        self._lock = threading.Lock()

    def put(self, obj):
        """A new id for ``obj``, held until rask releases it."""
        i = next(self._ids)
        self.objects[i] = obj
        return i

    def ref(self, obj):
        """``obj`` as a reference rask reads (extension type 3: its id and
        its size, which a worker's memory limit counts)."""
        from .values import _msgpack

        i = next(self._ids)
        self.objects[i] = obj
        return _msgpack.ExtType(HOST_REF_EXT, _ref_sized.pack(i, size_of(obj)))

    def get(self, data):
        """The object of a reference's payload."""
        return self.objects[_ref.unpack_from(data)[0]]

    def value(self, obj):
        """A new ``rask_value *`` (owned by the caller) holding ``obj``."""
        out = L.ValueP()
        call(L.lib().value_host, self.handle, self.put(obj), size_of(obj), None, ctypes.byref(out))
        return out

    def _release(self, _user_data, i):
        self.objects.pop(i, None)
        self.released += 1

    def _serialize(self, _user_data, i, result, err):
        lib = L.lib()
        try:
            obj = self.objects[i]
            if type(obj).__name__ == "ndarray":  # a large numpy array: lent, not encoded (no copy)
                from . import values

                if obj.nbytes >= values.ZERO_COPY_MIN:
                    result[0] = values.to_value(obj)
                    return L.OK
            b = portable(obj)
            call(lib.value_from_msgpack, b, len(b), result)
            return L.OK
        except BaseException as e:  # noqa: BLE001 - reported to rask, which fails what needed it
            t = type(e)
            msg = f"{t.__module__}.{t.__qualname__}: {e}".encode("utf-8", "replace")
            err[0] = lib.error_new(L.ERR_INVALID_ARG, msg)
            return L.ERR_INVALID_ARG

    def close(self):
        h, self.handle = self.handle, None
        if h:
            L.lib().host_free(h)


_HOST = None
_HOST_LOCK = threading.Lock()


def host():
    """This process's :class:`Host` (made on first use; freed at exit, so
    that rask never calls into a finished interpreter)."""
    global _HOST
    if _HOST is None:
        with _HOST_LOCK:
            if _HOST is None:
                h = Host()
                atexit.register(h.close)
                _HOST = h
    return _HOST


def current():
    """The host if it was made, else None."""
    return _HOST

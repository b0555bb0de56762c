"""Python objects ↔ rask values.

=====================  ==================  =====================================
Python                 rask value          back in Python
=====================  ==================  =====================================
``None``               nil                 ``None``
``bool``               bool                ``bool``
``int`` (−2⁶³…2⁶⁴−1)   int / uint          ``int`` (larger: ``OverflowError``)
``float``              float               ``float``
``str``                str                 ``str``
``bytes``, ``bytearray``, ``memoryview``   bin  ``bytes``
``list``, ``tuple``    array               ``list``
``dict``               map                 ``dict`` (list keys come back as tuples)
``numpy.ndarray``      tensor              ``numpy.ndarray`` (or :class:`Tensor`
                                           when numpy is not installed)
:class:`Tensor`        tensor              as above
numpy scalars          bool / int / float  ``bool`` / ``int`` / ``float``
=====================  ==================  =====================================

Tensor dtypes: bool, int8–int64, uint8–uint64, float32, float64. Arrays that
are not C-contiguous or not in native byte order are converted first; any
other dtype (float16, complex, object, strings, datetimes) is a
``TypeError``.

How values cross: a list, tuple or dict is encoded by the C-accelerated
``msgpack`` package into one buffer that rask decodes in one call
(``rask_value_from_msgpack``), and comes back the same way
(``rask_value_to_msgpack``, or one buffer for a whole gather): one C call per
value, not one per element. Scalars and a top-level numpy array take one
direct C call. Without ``msgpack`` the element-wise calls below are used.

Copies: large buffers cross without one; small ones are copied.

- **Into rask.** A numpy array (C-contiguous, native byte order, aligned)
  or a ``bytes`` object of at least :data:`ZERO_COPY_MIN` bytes is *lent*
  to rask (``rask_value_tensor_wrap_host``): rask's tensor is the array's
  own memory, and this process's host keeps the array alive until rask
  releases it (the last copy of the value dropped: after a scatter was
  sent, when a result is forgotten). **Do not write to an array after
  handing it to rask** while rask may hold it: the change would show in
  rask's value. Smaller values, other arrays and bytes-likes are copied into
  memory rask owns (``rask_value_tensor``, ``rask_value_bytes``).
- **Out of rask.** A tensor of at least :data:`ZERO_COPY_MIN` bytes becomes
  a **read-only** numpy array over rask's memory (a received frame, a
  stored result, a lent array), which holds a reference to the rask value
  until the array is garbage-collected; ``a.copy()`` gives a writable one.
  Smaller tensors become new writable arrays. Strings and bytes are copied.
  Lists and dicts travel as one msgpack buffer, and the arrays inside them
  are copied (a top-level array, ``Future.result()`` and a gather of up to
  :data:`GATHER_IN_PLACE` futures are read in place). The arguments of
  Python tasks taken in batches (``rask.compute``, a worker's tasks) are
  read in place too: rask lends each large tensor (extension type 4) and
  the task gets a read-only array over rask's memory.
"""

import ctypes
from collections import namedtuple

from . import _host
from . import _lib as L
from .errors import RaskError, call

try:  # numpy is optional
    import numpy as np
except ImportError:  # pragma: no cover - exercised when numpy is absent
    np = None

#: Arrays and ``bytes`` of at least this many bytes cross into rask, and
#: tensors out of it, without a copy (see the module's docstring). Set it to
#: ``float("inf")`` to copy everything.
ZERO_COPY_MIN = 1 << 16

#: A gather of at most this many futures reads each value in place (so large
#: arrays come back without a copy); more come in one msgpack buffer.
GATHER_IN_PLACE = 8

_I64_MIN = -(1 << 63)
_I64_MAX = (1 << 63) - 1
_U64_MAX = (1 << 64) - 1


class Tensor(namedtuple("Tensor", ["dtype", "shape", "data"])):
    """A dense row-major tensor without numpy: ``dtype`` is a name
    (``"float64"``), ``shape`` a tuple of ints, ``data`` the elements'
    bytes in native byte order. rask hands tensors back as this when numpy is
    not installed, and accepts it as an input either way."""

    __slots__ = ()

    def to_numpy(self):
        """The tensor as a new numpy array (needs numpy)."""
        if np is None:
            raise ImportError("numpy is not installed")
        return np.frombuffer(self.data, dtype=self.dtype).reshape(self.shape).copy()


# ----------------------------------------------------------- Python → rask


def _new_str(s):
    b = s.encode("utf-8")
    out = L.ValueP()
    call(L.lib().value_str, b, len(b), ctypes.byref(out))
    return out


def _new_bytes(b):
    out = L.ValueP()
    if type(b) is bytes and len(b) >= ZERO_COPY_MIN:  # immutable: lent as it is
        h = _host.host()
        call(L.lib().value_bytes_wrap_host, h.handle, h.put(b), b, len(b), ctypes.byref(out))
        return out
    if not isinstance(b, bytes):
        b = bytes(b)
    call(L.lib().value_bytes, b, len(b), ctypes.byref(out))
    return out


def _new_int(i):
    lib = L.lib()
    if _I64_MIN <= i <= _I64_MAX:
        return lib.value_int(i)
    if 0 <= i <= _U64_MAX:
        return lib.value_uint(i)
    raise OverflowError(f"int {i} does not fit in 64 bits (rask integers are int64 or uint64)")


def _new_tensor(code, shape, data_ptr, nbytes):
    ndim = len(shape)
    shape_arr = (ctypes.c_size_t * ndim)(*shape) if ndim else None
    out = L.ValueP()
    call(L.lib().value_tensor, code, shape_arr, ndim, data_ptr, nbytes, ctypes.byref(out))
    return out


def _new_ndarray(a):
    code = L.DTYPE_CODES.get(a.dtype.name)
    if code is None or a.dtype.kind not in "biuf":
        raise TypeError(
            f"numpy dtype {a.dtype} has no rask tensor dtype (supported: {', '.join(L.DTYPE_CODES)})"
        )
    if not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    if not a.flags.c_contiguous:  # (np.ascontiguousarray would make 0-d arrays 1-d)
        a = np.ascontiguousarray(a)
    if a.nbytes >= ZERO_COPY_MIN and a.flags.aligned:
        return _lend_ndarray(code, a)
    return _new_tensor(code, a.shape, a.ctypes.data_as(ctypes.c_void_p), a.nbytes)


def _lend_ndarray(code, a):
    """A tensor over ``a``'s own memory: this process's host holds ``a``
    until rask releases it (exactly once, also if the call fails)."""
    h = _host.host()
    ndim = a.ndim
    shape_arr = (ctypes.c_size_t * ndim)(*a.shape) if ndim else None
    out = L.ValueP()
    call(L.lib().value_tensor_wrap_host, h.handle, h.put(a), code, shape_arr, ndim, a.ctypes.data, a.nbytes, ctypes.byref(out))
    return out


def _new_tensor_tuple(t):
    code = L.DTYPE_CODES.get(t.dtype)
    if code is None:
        raise TypeError(f"unknown tensor dtype {t.dtype!r} (supported: {', '.join(L.DTYPE_CODES)})")
    data = bytes(t.data)
    return _new_tensor(code, tuple(int(d) for d in t.shape), data, len(data))


def _new_array(items):
    lib = L.lib()
    arr = lib.value_array_new()
    try:
        for item in items:
            call(lib.value_array_push, arr, to_value(item))  # consumes the element
    except BaseException:
        lib.value_free(arr)
        raise
    return arr


def _new_map(d):
    lib = L.lib()
    m = lib.value_map_new()
    try:
        for k, v in d.items():
            key = to_value(k)
            try:
                val = to_value(v)
            except BaseException:
                lib.value_free(key)
                raise
            call(lib.value_map_insert, m, key, val)  # consumes both
    except BaseException:
        lib.value_free(m)
        raise
    return m


def _new_packed(obj):
    """A value from the msgpack encoding of ``obj``: one C call."""
    b = pack(obj)
    out = L.ValueP()
    call(L.lib().value_from_msgpack, b, len(b), ctypes.byref(out))
    return out


def to_value(obj):
    """A new ``rask_value *`` (owned by the caller: free it with
    ``rask_value_free`` or hand it to a function that consumes it) holding
    ``obj``. Raises ``TypeError`` for objects with no rask equivalent and
    ``OverflowError`` for ints beyond 64 bits."""
    lib = L.lib()
    t = type(obj)
    if obj is None:
        return lib.value_nil()
    if t is bool:
        return lib.value_bool(obj)
    if t is int:
        return _new_int(obj)
    if t is float:
        return lib.value_float(obj)
    if t is str:
        return _new_str(obj)
    if t is list or t is tuple or t is dict:
        if _msgpack is not None:
            return _new_packed(obj)
        return _new_array(obj) if t is not dict else _new_map(obj)
    if t is bytes or t is bytearray or t is memoryview:
        return _new_bytes(obj)
    # Less common types, and subclasses.
    if np is not None:
        if isinstance(obj, np.ndarray):
            return _new_ndarray(obj)
        if isinstance(obj, np.generic):
            if isinstance(obj, np.bool_):
                return lib.value_bool(bool(obj))
            if isinstance(obj, np.integer):
                return _new_int(int(obj))
            if isinstance(obj, np.floating):
                return lib.value_float(float(obj))
    if isinstance(obj, Tensor):
        return _new_tensor_tuple(obj)
    if isinstance(obj, bool):
        return lib.value_bool(bool(obj))
    if isinstance(obj, int):
        return _new_int(int(obj))
    if isinstance(obj, float):
        return lib.value_float(float(obj))
    if isinstance(obj, str):
        return _new_str(str(obj))
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return _new_bytes(obj)
    if isinstance(obj, (list, tuple)):
        return _new_array(obj)
    if isinstance(obj, dict):
        return _new_map(obj)
    if isinstance(obj, _host.Packed):
        out = L.ValueP()
        call(lib.value_host_packed, obj.runtime.encode(), obj.data, len(obj.data), ctypes.byref(out))
        return out
    raise TypeError(f"cannot convert {t.__module__}.{t.__qualname__} to a rask value")


# ----------------------------------------------------------- rask → Python


def _hashable(k):
    if isinstance(k, list):
        return tuple(_hashable(x) for x in k)
    if isinstance(k, dict):
        return tuple((_hashable(a), _hashable(b)) for a, b in k.items())
    if np is not None and isinstance(k, np.ndarray):
        return k.tobytes()
    if isinstance(k, Tensor):
        return k.data
    return k


def _get_tensor(v):
    dtype = L.enum_t()
    ndim = ctypes.c_size_t()
    shape = ctypes.POINTER(ctypes.c_size_t)()
    data = ctypes.c_void_p()
    nbytes = ctypes.c_size_t()
    call(
        L.lib().value_tensor_info,
        v,
        ctypes.byref(dtype),
        ctypes.byref(ndim),
        ctypes.byref(shape),
        ctypes.byref(data),
        ctypes.byref(nbytes),
    )
    dims = tuple(shape[i] for i in range(ndim.value))
    name = L.DTYPES[dtype.value][0]
    n = nbytes.value
    if np is None:
        return Tensor(name, dims, ctypes.string_at(data, n) if n else b"")
    if n >= ZERO_COPY_MIN:
        return _view(v, data.value, n, name, dims)
    out = np.empty(dims, dtype=name)
    if n:
        ctypes.memmove(out.ctypes.data, data, n)
    return out


class _Pinned:
    """An owned clone of a rask value, freed when the last numpy array over
    its memory is garbage-collected (it is their buffer's attribute)."""

    __slots__ = ("v", "free")

    def __init__(self, v):
        self.v = v
        self.free = L.lib().value_free  # kept: at exit the module may be gone

    def __del__(self):
        v, self.v = self.v, None
        if v:
            self.free(v)


def _view(v, addr, n, dtype, dims):
    """A read-only numpy array over the ``n`` bytes of the tensor ``v``
    (borrowed) at ``addr``, keeping a clone of ``v`` (same memory) alive."""
    buf = (ctypes.c_char * n).from_address(addr)
    buf._rask_value = _Pinned(L.lib().value_clone(v))
    a = np.frombuffer(buf, dtype=dtype).reshape(dims)
    a.flags.writeable = False
    return a


def from_value(v):
    """The Python object for the ``rask_value *`` ``v`` (borrowed: not
    freed here). Large tensors are read in place (a read-only numpy array
    that keeps its own reference to the value), the rest is copied."""
    lib = L.lib()
    kind = lib.value_kind(v)
    if kind == L.KIND_INT:
        out = ctypes.c_int64()
        call(lib.value_get_int, v, ctypes.byref(out))
        return out.value
    if kind == L.KIND_FLOAT:
        out = ctypes.c_double()
        call(lib.value_get_float, v, ctypes.byref(out))
        return out.value
    if kind == L.KIND_STR:
        ptr = ctypes.POINTER(ctypes.c_char)()
        n = ctypes.c_size_t()
        call(lib.value_get_str, v, ctypes.byref(ptr), ctypes.byref(n))
        return ctypes.string_at(ptr, n.value).decode("utf-8") if n.value else ""
    if kind == L.KIND_NIL:
        return None
    if kind == L.KIND_BOOL:
        out = ctypes.c_bool()
        call(lib.value_get_bool, v, ctypes.byref(out))
        return out.value
    if kind == L.KIND_UINT:
        out = ctypes.c_uint64()
        call(lib.value_get_uint, v, ctypes.byref(out))
        return out.value
    if kind == L.KIND_BIN:
        ptr = ctypes.c_void_p()
        n = ctypes.c_size_t()
        call(lib.value_get_bytes, v, ctypes.byref(ptr), ctypes.byref(n))
        return ctypes.string_at(ptr, n.value) if n.value else b""
    if (kind == L.KIND_ARRAY or kind == L.KIND_MAP) and _msgpack is not None:
        data = ctypes.POINTER(ctypes.c_uint8)()
        n = ctypes.c_size_t()
        h = _host.current()
        if h is not None:  # this process's objects inside come back as themselves
            call(lib.value_to_msgpack_for, v, h.handle, ctypes.byref(data), ctypes.byref(n))
        else:
            call(lib.value_to_msgpack, v, ctypes.byref(data), ctypes.byref(n))
        return take_buffer(data, n.value)
    if kind == L.KIND_HOST:
        return _get_host(v)
    if kind == L.KIND_ARRAY:
        n = ctypes.c_size_t()
        call(lib.value_len, v, ctypes.byref(n))
        elem = L.ValueP()
        out = []
        for i in range(n.value):
            call(lib.value_array_get, v, i, ctypes.byref(elem))
            out.append(from_value(elem))
        return out
    if kind == L.KIND_MAP:
        n = ctypes.c_size_t()
        call(lib.value_len, v, ctypes.byref(n))
        key = L.ValueP()
        val = L.ValueP()
        out = {}
        for i in range(n.value):
            call(lib.value_map_key, v, i, ctypes.byref(key))
            call(lib.value_map_value, v, i, ctypes.byref(val))
            out[_hashable(from_value(key))] = from_value(val)
        return out
    if kind == L.KIND_TENSOR:
        return _get_tensor(v)
    raise TypeError(f"rask value of unknown kind {kind}")


def _get_host(v):
    """The object of a host value: this process's very object, or one
    unpickled from a packed value (:class:`rask.Packed` when another
    runtime packed it)."""
    lib = L.lib()
    h = _host.current()
    if h is not None:
        i = ctypes.c_uint64()
        try:
            call(lib.value_host_id, v, h.handle, ctypes.byref(i))
            return h.objects[i.value]
        except RaskError:
            pass  # packed, or another host's: read below
    rt, rn, d, dn = ctypes.c_void_p(), ctypes.c_size_t(), ctypes.c_void_p(), ctypes.c_size_t()
    try:
        call(lib.value_host_packed_info, v, ctypes.byref(rt), ctypes.byref(rn), ctypes.byref(d), ctypes.byref(dn))
    except RaskError:  # a live object of another host in this process: its portable form
        data = ctypes.POINTER(ctypes.c_uint8)()
        n = ctypes.c_size_t()
        call(lib.value_to_msgpack, v, ctypes.byref(data), ctypes.byref(n))
        return take_buffer(data, n.value)
    runtime = ctypes.string_at(rt, rn.value)
    body = ctypes.string_at(d, dn.value) if dn.value else b""
    return _host.unpack_ext(bytes([len(runtime)]) + runtime + body)


def take_value(v):
    """:func:`from_value` of an owned ``rask_value *``, then frees it (a
    scalar without releasing the GIL: see :data:`rask._lib.QUICK`)."""
    lib = L.lib()
    free = lib.value_free_scalar if lib.value_kind(v) in L.SCALAR_KINDS else lib.value_free
    try:
        return from_value(v)
    finally:
        free(v)


# ----------------------------------------------------------- msgpack
#
# A whole value crosses the C boundary as one msgpack buffer, encoded and
# decoded by the C-accelerated ``msgpack`` package: one C call per value
# instead of one per element (tensors are extension type 1, whose layout
# docs/graph-spec.md gives). Without the package, the element-wise path above
# is used.

try:
    import msgpack as _msgpack
except ImportError:  # pragma: no cover - msgpack is a dependency of the package
    _msgpack = None

TENSOR_EXT = 1
#: A tensor lent by rask in a ``*_take_tasks`` buffer (docs/graph-spec.md):
#: the payload is the address of a ``rask_value *`` that is ours to free.
LENT_TENSOR_EXT = 4
_LITTLE = __import__("sys").byteorder == "little"


def _tensor_ext(code, shape, data):
    """The msgpack extension of a tensor: dtype, ndim, dims (u64 LE), data."""
    import struct

    head = struct.pack(f"<BB{len(shape)}Q", code, len(shape), *shape)
    return _msgpack.ExtType(TENSOR_EXT, head + bytes(data))


def _ndarray_ext(a):
    code = L.DTYPE_CODES.get(a.dtype.name)
    if code is None or a.dtype.kind not in "biuf":
        raise TypeError(
            f"numpy dtype {a.dtype} has no rask tensor dtype (supported: {', '.join(L.DTYPE_CODES)})"
        )
    little = a.dtype.byteorder == "<" or a.dtype.byteorder == "|" or (a.dtype.byteorder == "=" and _LITTLE)
    if not little:
        a = a.astype(a.dtype.newbyteorder("<"))
    if not a.flags.c_contiguous:
        a = np.ascontiguousarray(a)
    return _tensor_ext(code, a.shape, a.data if a.ndim else a.tobytes())


def _default(obj):
    """What msgpack (with exact types) cannot pack itself."""
    if isinstance(obj, Tensor):
        code = L.DTYPE_CODES.get(obj.dtype)
        if code is None:
            raise TypeError(f"unknown tensor dtype {obj.dtype!r} (supported: {', '.join(L.DTYPE_CODES)})")
        data = bytes(obj.data)
        if not _LITTLE and L.DTYPES[code][1] > 1:  # pragma: no cover - big-endian hosts
            return _ndarray_ext(np.frombuffer(data, dtype=obj.dtype))
        return _tensor_ext(code, tuple(int(d) for d in obj.shape), data)
    if isinstance(obj, tuple):
        return list(obj)
    if isinstance(obj, _host.Packed):
        return _host.pack_ext(obj.runtime, obj.data)
    if np is not None:
        if isinstance(obj, np.ndarray):
            return _ndarray_ext(obj)
        if isinstance(obj, np.generic):
            if isinstance(obj, np.bool_):
                return bool(obj)
            if isinstance(obj, np.integer):
                return _check_int(int(obj))
            if isinstance(obj, np.floating):
                return float(obj)
    if isinstance(obj, bool):
        return bool(obj)
    if isinstance(obj, int):
        return _check_int(int(obj))
    if isinstance(obj, float):
        return float(obj)
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return bytes(obj)
    if isinstance(obj, list):
        return list(obj)
    if isinstance(obj, dict):
        return dict(obj)
    t = type(obj)
    raise TypeError(f"cannot convert {t.__module__}.{t.__qualname__} to a rask value")


def _check_int(i):
    if not _I64_MIN <= i <= _U64_MAX:
        raise OverflowError(f"int {i} does not fit in 64 bits (rask integers are int64 or uint64)")
    return i


def pack(obj, default=None):
    """``obj`` as msgpack bytes in rask's value model (needs ``msgpack``);
    ``default`` replaces :func:`_default` for objects msgpack cannot pack."""
    try:
        return _msgpack.packb(obj, default=default or _default, strict_types=True, use_bin_type=True)
    except OverflowError:
        _find_big_int(obj)
        raise


def _find_big_int(obj):
    """Raises rask's OverflowError for the first int beyond 64 bits in ``obj``."""
    if type(obj) is int:
        _check_int(obj)
    elif isinstance(obj, (list, tuple)):
        for x in obj:
            _find_big_int(x)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _find_big_int(k)
            _find_big_int(v)


def _lent(data):
    """The array of a tensor rask lent (extension type 4): read in place
    (read-only, over rask's memory) when large, as :func:`from_value`
    reads it; the lent ``rask_value *`` is freed here."""
    v = ctypes.cast(int.from_bytes(data, "little"), L.ValueP)
    try:
        return from_value(v)
    finally:
        L.lib().value_free(v)


def _ext_hook(code, data):
    if code == LENT_TENSOR_EXT:
        return _lent(data)
    if code != TENSOR_EXT:
        if code == _host.HOST_REF_EXT and _host.current() is not None:
            return _host.current().get(data)
        if code == _host.HOST_EXT:
            return _host.unpack_ext(data)
        raise ValueError(f"unknown msgpack extension type {code}")
    dtype, ndim = data[0], data[1]
    dims = tuple(int.from_bytes(data[2 + 8 * i : 10 + 8 * i], "little") for i in range(ndim))
    body = data[2 + 8 * ndim :]
    name = L.DTYPES[dtype][0]
    if np is None:
        if not _LITTLE:  # pragma: no cover - big-endian hosts
            raise TypeError("tensors on a big-endian host need numpy")
        return Tensor(name, dims, bytes(body))
    a = np.frombuffer(body, dtype=np.dtype(name).newbyteorder("<")).reshape(dims)
    return a.astype(np.dtype(name), copy=True)  # writable, native, owning its memory


def _pairs(pairs):
    return {_hashable(k): v for k, v in pairs}


def unpack(data):
    """The Python object of one msgpack value (rask's value model) in
    ``data`` (bytes or any buffer)."""
    try:
        return _msgpack.unpackb(data, raw=False, strict_map_key=False, ext_hook=_ext_hook)
    except TypeError:  # an unhashable (array or map) key: as tuples, as from_value does
        return _msgpack.unpackb(
            data, raw=False, strict_map_key=False, ext_hook=_ext_hook, object_pairs_hook=_pairs
        )


def take_buffer(data, n):
    """:func:`unpack` of a buffer rask returned (``rask_value_to_msgpack``,
    ``rask_future_batch_gather``...), then frees it."""
    lib = L.lib()
    try:
        if not n:
            raise ValueError("rask returned an empty msgpack buffer")
        view = (ctypes.c_char * n).from_address(ctypes.addressof(data.contents))
        return unpack(memoryview(view).cast("B"))
    finally:
        lib.buffer_free(data, n)


def to_msgpack(obj):
    """``obj`` encoded as msgpack bytes (tensors as extension type 1, see
    docs/graph-spec.md), as rask encodes it."""
    lib = L.lib()
    v = to_value(obj)
    data = ctypes.POINTER(ctypes.c_uint8)()
    n = ctypes.c_size_t()
    try:
        call(lib.value_to_msgpack, v, ctypes.byref(data), ctypes.byref(n))
    finally:
        lib.value_free(v)
    try:
        return ctypes.string_at(data, n.value)
    finally:
        lib.buffer_free(data, n.value)  # memory made by Rust is freed by Rust


def from_msgpack(data):
    """The Python object for one msgpack value spanning all of ``data``."""
    data = bytes(data)
    out = L.ValueP()
    call(L.lib().value_from_msgpack, data, len(data), ctypes.byref(out))
    return take_value(out)

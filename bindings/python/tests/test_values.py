"""Python objects → rask values → Python objects, directly, through msgpack
(encoded and decoded by rask) and through a computation."""

import pytest
from conftest import needs_numpy

import rask
from rask import _lib as L
from rask.values import from_value, take_value, to_value

CASES = [
    None,
    True,
    False,
    0,
    1,
    -1,
    2**63 - 1,
    -(2**63),
    2**63,  # a uint
    2**64 - 1,
    0.0,
    -2.5,
    float("inf"),
    1e300,
    "",
    "hello",
    "ünïcödé ✓ 🎉",
    "with\x00nul",
    b"",
    b"\x00\x01\xff" * 100,
    [],
    [1, "two", 3.0, None, [b"x", [True]]],
    {},
    {"a": 1, "b": [1, 2, {"c": None}]},
    {1: "int key", "s": "str key", None: "nil key"},
    [[[[[[[[[[1]]]]]]]]]],
    list(range(1000)),
]


def roundtrip(obj):
    return take_value(to_value(obj))


@pytest.mark.parametrize("obj", CASES, ids=repr)
def test_roundtrip(obj):
    assert roundtrip(obj) == obj
    assert type(roundtrip(obj)) is type(obj)


@pytest.mark.parametrize("obj", CASES, ids=repr)
def test_roundtrip_through_msgpack(obj):
    data = rask.to_msgpack(obj)
    assert isinstance(data, bytes)
    assert rask.from_msgpack(data) == obj


@pytest.mark.parametrize("obj", CASES, ids=repr)
def test_roundtrip_through_a_computation(obj):
    g = rask.Graph()
    g.add_value("v", obj)
    g["w"] = rask.task("identity", rask.ref("v"))
    assert rask.compute(g, "w") == obj


def test_nan():
    v = roundtrip(float("nan"))
    assert v != v


def test_tuples_become_lists():
    assert roundtrip((1, (2, 3))) == [1, [2, 3]]


def test_bytes_like():
    assert roundtrip(bytearray(b"ab")) == b"ab"
    assert roundtrip(memoryview(b"abc")[1:]) == b"bc"


def test_kinds_are_the_c_ones():
    lib = L.lib()
    for obj, kind in [
        (None, L.KIND_NIL),
        (True, L.KIND_BOOL),
        (5, L.KIND_INT),
        (2**63 - 1, L.KIND_INT),
        (2**63, L.KIND_UINT),
        (1.0, L.KIND_FLOAT),
        ("s", L.KIND_STR),
        (b"b", L.KIND_BIN),
        ([1], L.KIND_ARRAY),
        ({1: 2}, L.KIND_MAP),
    ]:
        v = to_value(obj)
        try:
            assert lib.value_kind(v) == kind, obj
        finally:
            lib.value_free(v)


def test_big_ints_are_refused():
    with pytest.raises(OverflowError):
        to_value(2**64)
    with pytest.raises(OverflowError):
        to_value([1, -(2**63) - 1])


def test_unconvertible_objects():
    with pytest.raises(TypeError, match="object"):
        to_value(object())
    with pytest.raises(TypeError):
        to_value({"ok": [1, 2, {3, 4}]})  # a set, deep inside: nothing leaks either
    with pytest.raises(UnicodeEncodeError):
        to_value("\ud800")  # a lone surrogate is not UTF-8


def test_unhashable_map_keys_come_back_hashable():
    # rask maps take any value as a key; Python dicts need hashable ones.
    data = rask.to_msgpack({1: 2})
    assert rask.from_msgpack(data) == {1: 2}
    v = L.lib().value_map_new()
    try:
        from rask.errors import call

        call(L.lib().value_map_insert, v, to_value([1, 2]), to_value("list key"))
        assert from_value(v) == {(1, 2): "list key"}
    finally:
        L.lib().value_free(v)


def test_msgpack_decode_error():
    with pytest.raises(rask.DecodeError) as e:
        rask.from_msgpack(b"\xc1")
    assert e.value.status == L.ERR_DECODE
    assert e.value.status_name == "RASK_ERR_DECODE"


def test_tensor_without_numpy_types():
    t = rask.Tensor("int32", (2, 2), bytes(range(16)))
    out = roundtrip(t)
    if isinstance(out, rask.Tensor):
        assert out == t
    else:
        import numpy as np

        assert out.dtype == np.int32 and out.shape == (2, 2)
        assert out.tobytes() == t.data


def test_tensor_with_the_wrong_size_is_an_invalid_argument():
    with pytest.raises(rask.InvalidArgumentError):
        to_value(rask.Tensor("float64", (3,), b"\x00" * 8))
    with pytest.raises(TypeError):
        to_value(rask.Tensor("complex64", (1,), b"\x00" * 8))


@needs_numpy
@pytest.mark.parametrize(
    "dtype",
    ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float32", "float64"],
)
def test_numpy_roundtrip_every_dtype(dtype):
    import numpy as np

    a = (np.arange(24) % 7).astype(dtype).reshape(2, 3, 4)
    out = roundtrip(a)
    assert isinstance(out, np.ndarray)
    assert out.dtype == a.dtype and out.shape == a.shape
    assert np.array_equal(out, a)
    assert out.flags.writeable and out.flags.owndata  # a copy Python owns
    out[0, 0, 0] = 1  # writable, independent of rask


@needs_numpy
def test_numpy_layouts_and_shapes():
    import numpy as np

    a = np.arange(12, dtype=np.float64).reshape(3, 4)
    assert np.array_equal(roundtrip(a.T), a.T)  # not C-contiguous: made so
    assert np.array_equal(roundtrip(a[:, ::2]), a[:, ::2])
    big_endian = a.astype(">f8")
    assert np.array_equal(roundtrip(big_endian), a)
    scalar = np.array(3.5)
    out = roundtrip(scalar)
    assert out.shape == () and out == 3.5
    empty = np.zeros((0, 3), dtype=np.int16)
    out = roundtrip(empty)
    assert out.shape == (0, 3) and out.dtype == np.int16


@needs_numpy
def test_numpy_nested_and_through_msgpack_and_compute():
    import numpy as np

    a = np.linspace(0, 1, 1000).reshape(10, 100)
    obj = {"w": a, "meta": [1, "x"]}
    out = rask.from_msgpack(rask.to_msgpack(obj))
    assert np.array_equal(out["w"], a) and out["meta"] == [1, "x"]
    g = rask.Graph()
    g.add_value("a", a)
    g["n"] = rask.task("len", rask.ref("a"))
    g["same"] = rask.task("identity", rask.ref("a"))
    n, same = rask.compute(g, ["n", "same"])
    assert n == 1000
    assert np.array_equal(same, a)


@needs_numpy
def test_numpy_scalars_and_unsupported_dtypes():
    import numpy as np

    assert roundtrip(np.int32(7)) == 7 and type(roundtrip(np.int32(7))) is int
    assert roundtrip(np.float32(0.5)) == 0.5
    assert roundtrip(np.bool_(True)) is True
    assert roundtrip(np.uint64(2**64 - 1)) == 2**64 - 1
    with pytest.raises(TypeError, match="complex"):
        to_value(np.zeros(3, dtype=np.complex128))
    with pytest.raises(TypeError):
        to_value(np.array(["a", "b"]))
    with pytest.raises(TypeError):
        to_value(np.zeros(2, dtype=np.float16))


@needs_numpy
def test_tensor_tuple_to_numpy():
    import numpy as np

    t = rask.Tensor("float64", (2,), np.array([1.0, 2.0]).tobytes())
    assert np.array_equal(t.to_numpy(), [1.0, 2.0])

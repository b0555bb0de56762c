"""rask/_lib.py against include/rask.h: every function _lib binds is declared
in the header with the same number of arguments of compatible types; every
function of the header that _lib binds exists in the loaded library."""

import ctypes
import re
import warnings

import pytest
from conftest import HEADER

from rask import _lib as L

DECL = re.compile(r"^([A-Za-z_][\w \*]*?[\s\*])(rask_\w+)\s*\(([^;{]*?)\)\s*;", re.M | re.S)


def parse_header(path):
    """{name: (return type, [parameter types])} of every rask_* function."""
    text = open(path, encoding="utf-8").read()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    out = {}
    for m in DECL.finditer(text):
        ret, name, params = m.group(1), m.group(2), m.group(3)
        if "typedef" in ret:
            continue
        params = " ".join(params.split())
        if params in ("", "void"):
            types = []
        else:
            types = []
            for p in params.split(","):
                p = p.strip()
                # drop the parameter name: the last identifier
                ty = re.sub(r"\b\w+$", "", p).strip()
                types.append(" ".join(ty.replace("*", " * ").split()))
        out[name] = (" ".join(ret.replace("*", " * ").split()), types)
    return out


HEADER_FUNCS = parse_header(HEADER)

SCALARS = {
    "int": ctypes.c_int,
    "bool": ctypes.c_bool,
    "size_t": ctypes.c_size_t,
    "int64_t": ctypes.c_int64,
    "uint32_t": ctypes.c_uint32,
    "uint64_t": ctypes.c_uint64,
    "double": ctypes.c_double,
    "rask_status": ctypes.c_int,
    "rask_kind": ctypes.c_int,
    "rask_dtype": ctypes.c_int,
}
FUNC_POINTERS = {"rask_callback": L.Callback, "rask_drop_user_data": L.DropUserData}


def is_pointer_type(t):
    if t in (ctypes.c_void_p, ctypes.c_char_p):
        return True
    if isinstance(t, type) and issubclass(t, ctypes._Pointer):
        return True
    return False


def check_type(c_type, py_type, what):
    c_type = c_type.replace("const ", "").strip()
    if c_type.endswith("*"):
        assert is_pointer_type(py_type), f"{what}: C {c_type!r} is a pointer, _lib has {py_type}"
        if c_type == "char *":
            assert py_type in (ctypes.c_char_p, ctypes.c_void_p) or py_type == ctypes.POINTER(ctypes.c_char)
        return
    if c_type in FUNC_POINTERS:
        assert py_type is FUNC_POINTERS[c_type], f"{what}: {c_type} vs {py_type}"
        return
    if c_type == "void":
        assert py_type is None, f"{what}: C returns void, _lib has {py_type}"
        return
    assert c_type in SCALARS, f"{what}: unknown C type {c_type!r}: teach this test"
    want = SCALARS[c_type]
    assert ctypes.sizeof(want) == ctypes.sizeof(py_type), f"{what}: {c_type} vs {py_type}"
    assert want._type_ == py_type._type_, f"{what}: {c_type} ({want}) vs {py_type}"


def test_the_header_parses():
    # A sanity check of the parser itself: some well-known functions.
    assert HEADER_FUNCS["rask_abi_version"] == ("uint32_t", [])
    assert HEADER_FUNCS["rask_value_free"] == ("void", ["rask_value *"])
    assert len(HEADER_FUNCS["rask_compute"][1]) == 8
    assert len(HEADER_FUNCS) >= 70


def test_every_bound_function_is_in_the_header():
    missing = sorted(set(L.FUNCTIONS) - set(HEADER_FUNCS))
    assert not missing, f"_lib.py binds functions include/rask.h does not declare: {missing}"


@pytest.mark.parametrize("name", sorted(L.FUNCTIONS))
def test_bound_function_matches_the_header(name):
    if name not in HEADER_FUNCS:
        pytest.skip("not in the header (reported by another test)")
    c_ret, c_params = HEADER_FUNCS[name]
    restype, argtypes = L.FUNCTIONS[name]
    assert len(argtypes) == len(c_params), (
        f"{name}: the header has {len(c_params)} parameters {c_params}, _lib.py {len(argtypes)}"
    )
    check_type(c_ret, restype, f"{name} result")
    for i, (c, py) in enumerate(zip(c_params, argtypes)):
        check_type(c, py, f"{name} parameter {i}")


def test_the_library_exports_every_bound_function():
    lib = L.lib()
    assert lib.missing == [], f"{lib.path} lacks {lib.missing}"
    assert lib.abi_version() == L.ABI_VERSION


def test_header_abi_version_matches():
    text = open(HEADER, encoding="utf-8").read()
    m = re.search(r"#define RASK_ABI_VERSION (\d+)", text)
    assert m and int(m.group(1)) == L.ABI_VERSION


def test_constants_match_the_header():
    text = open(HEADER, encoding="utf-8").read()
    enums = dict((k, int(v)) for k, v in re.findall(r"\b(RASK_[A-Z0-9_]+) = (\d+)", text))
    assert "RASK_ERR_GRAPH" in enums and "RASK_KIND_TENSOR" in enums
    unknown = []
    for name, value in enums.items():
        if name.startswith("RASK_DTYPE_"):
            short = name[len("RASK_DTYPE_") :].lower()
            assert L.DTYPE_CODES.get(short) == value, name
            continue
        short = name[len("RASK_") :]
        if not hasattr(L, short):
            unknown.append(name)
            continue
        assert getattr(L, short) == value, name
    if unknown:  # a new status or kind: the bindings should learn it
        warnings.warn(f"include/rask.h has constants _lib.py does not define yet: {unknown}")


def test_functions_of_the_header_not_yet_bound_are_reported():
    unbound = sorted(set(HEADER_FUNCS) - set(L.FUNCTIONS))
    if unbound:  # new C API (e.g. the distributed client): a warning, not a failure
        warnings.warn(f"include/rask.h declares functions _lib.py does not bind yet: {unbound}")

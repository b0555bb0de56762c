"""rask/_lib.py against include/rask.h: every function _lib binds is declared
in the header with the same number of arguments of compatible types; every
function of the header that _lib binds exists in the loaded library; the
option structs have the header's fields, in order, of compatible types; the
distributed API (clients, futures, clusters, schedulers, workers) is bound
in full."""

import os

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
    "rask_future_state": ctypes.c_int,
    "uint16_t": ctypes.c_uint16,
    "uint8_t": ctypes.c_uint8,
}
FUNC_POINTERS = {
    "rask_callback": L.Callback,
    "rask_drop_user_data": L.DropUserData,
    "rask_progress_fn": L.ProgressFn,
    "rask_host_serialize": L.HostSerialize,
    "rask_host_release": L.HostRelease,
    "rask_buffer_release": L.BufferRelease,
}


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


#: Parts of the header the bindings must bind in full: the local API and,
#: since rask.Client / rask.Worker, the distributed one.
REQUIRED_PREFIXES = (
    "rask_client_",
    "rask_future_",
    "rask_as_completed_",
    "rask_arg_future",
    "rask_cluster_",
    "rask_scheduler_",
    "rask_worker_",
    "rask_graph_",
    "rask_value_",
    "rask_computation_",
    "rask_task_",
    "rask_registry_",
    "rask_error_",
)


def test_the_distributed_api_is_bound_in_full():
    required = [n for n in HEADER_FUNCS if n.startswith(REQUIRED_PREFIXES)]
    assert any(n.startswith("rask_worker_") for n in required)
    assert any(n.startswith("rask_cluster_") for n in required)
    missing = sorted(set(required) - set(L.FUNCTIONS))
    assert not missing, f"include/rask.h declares functions rask/_lib.py does not bind: {missing}"


def test_functions_of_the_header_not_yet_bound_are_reported():
    unbound = sorted(set(HEADER_FUNCS) - set(L.FUNCTIONS))
    if unbound:  # a new part of the C API: a warning, not a failure
        warnings.warn(f"include/rask.h declares functions _lib.py does not bind yet: {unbound}")


STRUCT = re.compile(r"typedef struct \{(?P<body>[^{}]*)\} (?P<name>rask_\w+);", re.S)


def parse_structs(path):
    """{name: [(field type, field name), ...]} of every ``typedef struct {...} rask_x;``."""
    text = open(path, encoding="utf-8").read()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    out = {}
    for m in STRUCT.finditer(text):
        fields = []
        for decl in m.group("body").split(";"):
            decl = " ".join(decl.split())
            if not decl:
                continue
            fm = re.match(r"^(.*?)(\w+)$", decl)
            ty = " ".join(fm.group(1).replace("*", " * ").split())
            fields.append((ty, fm.group(2)))
        out[m.group("name")] = fields
    return out


HEADER_STRUCTS = parse_structs(HEADER)


def test_every_option_struct_of_the_header_is_bound():
    assert "rask_worker_options" in HEADER_STRUCTS and "rask_compute_options" in HEADER_STRUCTS
    missing = sorted(set(HEADER_STRUCTS) - set(L.STRUCTS))
    assert not missing, f"include/rask.h declares structs rask/_lib.py does not define: {missing}"


@pytest.mark.parametrize("name", sorted(L.STRUCTS))
def test_struct_matches_the_header(name):
    assert name in HEADER_STRUCTS, f"{name} is not in include/rask.h"
    c_fields = HEADER_STRUCTS[name]
    py_fields = L.STRUCTS[name]._fields_
    assert [f for _, f in c_fields] == [f for f, _ in py_fields], f"{name}: fields differ"
    for (c_type, field), (_, py_type) in zip(c_fields, py_fields):
        check_type(c_type, py_type, f"{name}.{field}")


def test_wait_modes_match_the_source():
    # rask_wait_mode is passed as int and cbindgen leaves the enum out of
    # the header (no signature names it): check src/capi/client.rs instead.
    src = os.path.join(os.path.dirname(HEADER), "..", "src", "capi", "client.rs")
    if not os.path.exists(src):
        pytest.skip("no rask source tree")
    text = open(src, encoding="utf-8").read()
    modes = dict((k, int(v)) for k, v in re.findall(r"\bRASK_(WAIT_[A-Z_]+) = (\d+)", text))
    assert modes == {
        "WAIT_ALL_COMPLETED": L.WAIT_ALL_COMPLETED,
        "WAIT_FIRST_COMPLETED": L.WAIT_FIRST_COMPLETED,
    }

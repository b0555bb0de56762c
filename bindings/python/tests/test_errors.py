"""Every failure is a RaskError subclass carrying rask's message."""

import pytest

import rask
from rask import _lib as L
from rask import ref, task


def test_cycle_names_the_keys():
    g = rask.Graph()
    g["a"] = task("inc", ref("b"))
    g["b"] = task("inc", ref("c"))
    g["c"] = task("inc", ref("a"))
    with pytest.raises(rask.GraphError) as e:
        rask.compute(g, "a")
    msg = str(e.value)
    assert "'a'" in msg and "'b'" in msg and "'c'" in msg and "->" in msg
    assert e.value.status == L.ERR_GRAPH and e.value.status_name == "RASK_ERR_GRAPH"
    assert e.value.message == msg
    with pytest.raises(rask.GraphError, match="->"):
        g.validate()


def test_missing_reference_names_both_keys():
    g = rask.Graph()
    g["b"] = task("inc", ref("q"))
    with pytest.raises(rask.GraphError) as e:
        rask.compute(g, "b")
    assert "'b'" in str(e.value) and "'q'" in str(e.value)


def test_unknown_output_key():
    g = rask.Graph()
    g["a"] = 1
    with pytest.raises(rask.GraphError, match="nope"):
        rask.compute(g, "nope")


def test_unknown_function_names_function_and_key():
    g = rask.Graph()
    g["a"] = 1
    g["b"] = task("frobnicate", ref("a"))
    with pytest.raises(rask.UnknownFunctionError) as e:
        rask.compute(g, "b")
    assert "frobnicate" in str(e.value) and "'b'" in str(e.value)
    assert isinstance(e.value, rask.RaskError)


def test_python_exception_inside_a_task():
    def boom(x):
        raise ValueError(f"bad input {x}")

    g = rask.Graph()
    g["a"] = 41
    g["b"] = task(boom, ref("a"))
    g["c"] = task("inc", ref("b"))
    with pytest.raises(rask.TaskError) as e:
        rask.compute(g, "c")
    err = e.value
    assert err.key == "b"
    assert err.func == "boom"
    assert err.task_message == "ValueError: bad input 41"
    assert "ValueError: bad input 41" in str(err)
    assert isinstance(err.exception, ValueError)
    assert err.__cause__ is err.exception
    assert err.exception.__traceback__ is not None


def test_exception_of_a_function_given_by_name():
    g = rask.Graph()
    g["a"] = task("div0", 1)
    with pytest.raises(rask.TaskError, match="ZeroDivisionError") as e:
        rask.compute(g, "a", functions={"div0": lambda x: x / 0})
    assert e.value.func == "div0" and e.value.key == "a"


def test_a_result_with_no_rask_value_stays_the_python_object():
    # (Before host values this failed the task with a TypeError; see
    # tests/test_host_values.py for what happens where it must convert.)
    g = rask.Graph()
    g["a"] = task("f", 1)
    obj = object()
    assert rask.compute(g, "a", functions={"f": lambda x: obj}) is obj


def test_builtin_failure_is_a_task_error():
    g = rask.Graph()
    g["a"] = task("div", 1, 0)
    with pytest.raises(rask.TaskError) as e:
        rask.compute(g, "a")
    assert e.value.key == "a" and e.value.func == "div"
    assert e.value.exception is None and e.value.__cause__ is None
    g2 = rask.Graph()
    g2["a"] = task("inc", 2**64 - 1)  # checked arithmetic
    with pytest.raises(rask.TaskError, match="overflow"):
        rask.compute(g2, "a")


def test_failure_in_one_of_many_parallel_tasks():
    def maybe(i):
        if i == 137:
            raise RuntimeError("137 is unlucky")
        return i

    g = rask.Graph()
    for i in range(500):
        g.add_task(f"t{i}", maybe, i)
    g.add_task("s", "sum", [rask.Ref(f"t{i}") for i in range(500)])
    with pytest.raises(rask.TaskError, match="137 is unlucky") as e:
        rask.compute(g, "s", pullers=2)
    assert e.value.key == "t137"


def test_error_classes():
    for cls, status in [
        (rask.NullArgError, L.ERR_NULL_ARG),
        (rask.InvalidUtf8Error, L.ERR_INVALID_UTF8),
        (rask.InvalidArgumentError, L.ERR_INVALID_ARG),
        (rask.ValueKindError, L.ERR_TYPE),
        (rask.DecodeError, L.ERR_DECODE),
        (rask.GraphError, L.ERR_GRAPH),
        (rask.UnknownFunctionError, L.ERR_UNKNOWN_FUNCTION),
        (rask.TaskError, L.ERR_TASK_FAILED),
        (rask.CancelledError, L.ERR_CANCELLED),
        (rask.RegistryError, L.ERR_REGISTRY),
        (rask.PanicError, L.ERR_PANIC),
        (rask.StateError, L.ERR_STATE),
        (rask.RaskConnectionError, L.ERR_CONNECTION),
        (rask.ProtocolError, L.ERR_PROTOCOL),
        (rask.DataError, L.ERR_DATA),
    ]:
        assert issubclass(cls, rask.RaskError)
        assert cls.status == status
        name = L.lib().status_name(status).decode()
        assert cls("m").status_name.startswith("RASK_ERR_")
        if name != "RASK_UNKNOWN_STATUS":  # (a library older than the bindings)
            assert cls("m").status_name == name


def test_errors_made_by_rask_carry_status_and_message():
    # rask_error_new/_message/_status/_free from Python: the error object's
    # whole lifecycle, and the mapping of statuses to classes.
    from rask.errors import _take_error

    lib = L.lib()
    for status in (L.ERR_GRAPH, L.ERR_DECODE, L.ERR_TASK_FAILED, 999):
        err = lib.error_new(status, b"made by hand")
        e = _take_error(status, err)  # frees err
        assert str(e) == "made by hand"
        assert isinstance(e, rask.RaskError)
    assert isinstance(_take_error(L.ERR_GRAPH, L.ErrorP()), rask.GraphError)


def test_decode_errors():
    with pytest.raises(rask.DecodeError):
        rask.Graph.from_msgpack(b"\x93\x01\x02\x03")  # an array, not a map
    with pytest.raises(rask.DecodeError):
        rask.Graph.from_msgpack(b"")


def test_library_not_found_names_every_place(monkeypatch, tmp_path):
    from rask import _lib

    monkeypatch.delenv("RASK_LIB", raising=False)
    monkeypatch.setenv("RASK_ROOT", str(tmp_path))
    monkeypatch.setattr(_lib, "source_root", lambda: None)
    with pytest.raises(rask.LibraryNotFoundError) as e:
        _lib._load()
    msg = str(e.value)
    assert str(tmp_path / "target" / "release" / "librask.so") in msg
    assert str(tmp_path / "target" / "debug" / "librask.so") in msg
    assert "RASK_LIB" in msg and "system loader" in msg
    assert isinstance(e.value, OSError)

    monkeypatch.setenv("RASK_LIB", str(tmp_path / "nope.so"))
    with pytest.raises(rask.LibraryNotFoundError, match="nope.so"):
        _lib._load()

"""rask: a Dask-style task scheduler (Python bindings over librask's C ABI).

Quick start::

    import rask

    g = rask.Graph()
    g["a"] = 1
    g["b"] = rask.task("inc", rask.ref("a"))
    print(rask.compute(g, "b"))                              # 2
    print(rask.get({"x": 1, "y": (lambda v: v * 10, "x")}, "y"))  # 10

See docs/python.md in the rask repository.

Layout (so the distributed part can sit beside the local one):

- ``rask._lib``: the raw ctypes declarations of include/rask.h;
- ``rask.errors``, ``rask.values``: exceptions and value conversion, shared
  by every part;
- ``rask.graph``, ``rask.dask_spec``: building graphs;
- ``rask.compute``: the local executor, with Python functions in pull mode;
- ``rask.client``: ``rask.Client``, ``rask.Future``, ``rask.wait``,
  ``rask.as_completed`` (after dask.distributed's names);
- ``rask.cluster``: ``rask.LocalCluster``, ``rask.Scheduler``;
- ``rask.worker``: ``rask.Worker``, Python functions served to a cluster in
  pull mode;
- ``rask.diagnostics``: ``rask.progress``, progress bars of futures;
  ``rask.performance_report``, a self-contained HTML report of a block.
"""

from ._lib import ABI_VERSION, LibraryNotFoundError
from .client import ALL_COMPLETED, FIRST_COMPLETED, Client, DoneAndNotDoneFutures, Future, as_completed, wait
from .cluster import LocalCluster, Scheduler
from .coordination import (
    Event,
    Lock,
    Pub,
    Queue,
    Semaphore,
    Sub,
    Variable,
    fire_and_forget,
    get_client,
    rejoin,
    secede,
    worker_client,
)
from .compute import CFunction, Computation, Stats, compute
from .dask_spec import from_dask, get, get_dask
from .diagnostics import performance_report, progress
from .errors import (
    CancelledError,
    DataError,
    DecodeError,
    GraphError,
    InvalidArgumentError,
    InvalidUtf8Error,
    NullArgError,
    PanicError,
    ProtocolError,
    RaskConnectionError,
    RaskError,
    RegistryError,
    RemoteTaskError,
    StateError,
    TaskError,
    UnknownFunctionError,
    ValueKindError,
)
from .graph import Graph, Ref, Task, ref, task
from .values import Tensor, from_msgpack, to_msgpack
from .worker import Worker

__version__ = "0.1.0"

BUILTINS = (
    "add",
    "dec",
    "div",
    "getitem",
    "identity",
    "inc",
    "len",
    "list",
    "max",
    "min",
    "mul",
    "neg",
    "noop",
    "sub",
    "sum",
)


def library_path():
    """The path of the librask that was loaded (loading it if needed)."""
    from ._lib import lib

    return lib().path


def library_version():
    """The version of the rask crate librask was built from ("0.1.0")."""
    from ._lib import lib

    return lib().version_string().decode()


def is_builtin(name):
    """Whether ``name`` is one of rask's builtin functions (asks librask)."""
    from ._lib import lib

    return bool(lib().registry_contains(None, name.encode()))


__all__ = [
    "ABI_VERSION",
    "ALL_COMPLETED",
    "BUILTINS",
    "CancelledError",
    "CFunction",
    "Client",
    "Computation",
    "DataError",
    "DecodeError",
    "DoneAndNotDoneFutures",
    "Event",
    "FIRST_COMPLETED",
    "Future",
    "Graph",
    "GraphError",
    "InvalidArgumentError",
    "InvalidUtf8Error",
    "LibraryNotFoundError",
    "LocalCluster",
    "Lock",
    "NullArgError",
    "PanicError",
    "ProtocolError",
    "Pub",
    "Queue",
    "RaskConnectionError",
    "RaskError",
    "Ref",
    "RegistryError",
    "RemoteTaskError",
    "Scheduler",
    "Semaphore",
    "StateError",
    "Stats",
    "Sub",
    "Task",
    "TaskError",
    "Tensor",
    "UnknownFunctionError",
    "ValueKindError",
    "Variable",
    "Worker",
    "as_completed",
    "performance_report",
    "progress",
    "compute",
    "fire_and_forget",
    "from_dask",
    "from_msgpack",
    "get",
    "get_client",
    "secede",
    "rejoin",
    "worker_client",
    "get_dask",
    "is_builtin",
    "library_path",
    "library_version",
    "ref",
    "task",
    "to_msgpack",
    "wait",
]

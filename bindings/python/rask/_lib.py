"""The raw layer: librask loaded with ctypes, every C function declared.

Everything here mirrors include/rask.h one to one; the rest of the package
builds the Python API on top. ``tests/test_header.py`` parses the header and
checks this table against it (names, argument counts, argument widths).

Finding the library, in order:

1. ``$RASK_LIB``: a path to ``librask.so`` (or ``.dylib``/``.dll``);
2. ``$RASK_ROOT/target/release``, then ``$RASK_ROOT/target/debug``;
3. the repository this package sits in, when it is used from its source tree
   (``pip install -e`` or ``PYTHONPATH``): ``target/release``, then
   ``target/debug``, three levels above this file;
4. the system's loader (``ctypes.util.find_library("rask")``), for a rask
   installed with ``cmake --install`` into a prefix the loader searches.

When none works, :class:`LibraryNotFoundError` (an ``OSError``) names every
place that was tried.

Handles are typed pointers to opaque structures (``POINTER(Value)`` and so
on); a NULL handle is a false pointer. ctypes releases the GIL around every
call (``CDLL``), so a call that blocks in rask lets other Python threads run.
The few calls in :data:`QUICK` are the exception: they make, read or free a
scalar and touch nothing shared (no lock, no thread, no I/O), so they run
holding the GIL (``PyDLL``). Releasing it there cost more than the call: each
release woke a thread waiting for the GIL (a task waking from its wait on a
child, say), which found it taken again at once and went back to sleep — two
context switches for nothing, several times per task in a recursion.
"""

import ctypes
import ctypes.util
import os
import sys
import threading
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_bool,
    c_char,
    c_char_p,
    c_double,
    c_int,
    c_int64,
    c_size_t,
    c_uint8,
    c_uint16,
    c_uint32,
    c_uint64,
    c_void_p,
)

#: The ABI version these declarations describe (RASK_ABI_VERSION in rask.h).
ABI_VERSION = 1

# --------------------------------------------------------------- constants

# rask_status
OK = 0
ERR_NULL_ARG = 1
ERR_INVALID_UTF8 = 2
ERR_INVALID_ARG = 3
ERR_TYPE = 4
ERR_DECODE = 5
ERR_GRAPH = 6
ERR_UNKNOWN_FUNCTION = 7
ERR_TASK_FAILED = 8
ERR_CANCELLED = 9
ERR_REGISTRY = 10
ERR_PANIC = 11
ERR_STATE = 12
ERR_CONNECTION = 13
ERR_PROTOCOL = 14
ERR_DATA = 15
TIMEOUT = 100
DONE = 101

# rask_future_state
FUTURE_PENDING = 0
FUTURE_FINISHED = 1
FUTURE_ERROR = 2
FUTURE_CANCELLED = 3

# rask_wait_mode (passed as int to rask_client_wait). Defined in
# src/capi/client.rs; cbindgen leaves it out of rask.h because no signature
# names the type, so tests/test_header.py checks these against the source.
WAIT_ALL_COMPLETED = 0
WAIT_FIRST_COMPLETED = 1

# rask_kind
KIND_NIL = 0
KIND_BOOL = 1
KIND_INT = 2
KIND_UINT = 3
KIND_FLOAT = 4
KIND_STR = 5
KIND_BIN = 6
KIND_ARRAY = 7
KIND_MAP = 8
KIND_TENSOR = 9
KIND_HOST = 10

# rask_dtype: code -> (name, element size in bytes)
DTYPES = {
    0: ("bool", 1),
    1: ("int8", 1),
    2: ("int16", 2),
    3: ("int32", 4),
    4: ("int64", 8),
    5: ("uint8", 1),
    6: ("uint16", 2),
    7: ("uint32", 4),
    8: ("uint64", 8),
    9: ("float32", 4),
    10: ("float64", 8),
}
DTYPE_CODES = {name: code for code, (name, _) in DTYPES.items()}

# ------------------------------------------------------------------- types


class Value(Structure):
    """Opaque ``rask_value``."""


class Error(Structure):
    """Opaque ``rask_error``."""


class Arg(Structure):
    """Opaque ``rask_arg``."""


class Graph(Structure):
    """Opaque ``rask_graph``."""


class Registry(Structure):
    """Opaque ``rask_registry``."""


class Computation(Structure):
    """Opaque ``rask_computation``."""


class Host(Structure):
    _fields_ = []


class Task(Structure):
    """Opaque ``rask_task``."""


class Client(Structure):
    """Opaque ``rask_client``."""


class Future(Structure):
    """Opaque ``rask_future``."""


class FutureBatch(Structure):
    """Opaque ``rask_future_batch``."""


class AsCompleted(Structure):
    """Opaque ``rask_as_completed``."""


class Subscription(Structure):
    """Opaque ``rask_subscription``."""


class Cluster(Structure):
    """Opaque ``rask_cluster``."""


class Scheduler(Structure):
    """Opaque ``rask_scheduler``."""


class Worker(Structure):
    """Opaque ``rask_worker``."""


class ComputeOptions(Structure):
    """``rask_compute_options``."""

    _fields_ = [("threads", c_uint32)]


class ComputeStats(Structure):
    """``rask_compute_stats``."""

    _fields_ = [("tasks", c_size_t), ("tasks_run", c_size_t), ("peak_live", c_size_t)]


class SchedulerInfo(Structure):
    """``rask_scheduler_info`` (filled by ``rask_client_scheduler_info``)."""

    _fields_ = [
        ("tasks", c_uint64),
        ("released", c_uint64),
        ("waiting", c_uint64),
        ("no_worker", c_uint64),
        ("queued", c_uint64),
        ("processing", c_uint64),
        ("memory", c_uint64),
        ("erred", c_uint64),
        ("workers", c_uint64),
        ("clients", c_uint64),
        ("managed_bytes", c_uint64),
        ("spilled_bytes", c_uint64),
        ("process_bytes", c_uint64),
        ("memory_limit", c_uint64),
        ("paused_workers", c_uint64),
    ]


class ProgressCounts(Structure):
    """``rask_progress_counts`` (filled by ``rask_client_progress``)."""

    _fields_ = [
        ("total", c_size_t),
        ("pending", c_size_t),
        ("finished", c_size_t),
        ("erred", c_size_t),
        ("cancelled", c_size_t),
    ]


class SchedulerOptions(Structure):
    """``rask_scheduler_options`` (zero means the default for every field)."""

    _fields_ = [
        ("host", c_char_p),
        ("port", c_uint16),
        ("name", c_char_p),
        ("token", c_char_p),
        ("heartbeat_timeout_ms", c_int64),
        ("tls_ca_file", c_char_p),
        ("tls_cert_file", c_char_p),
        ("tls_key_file", c_char_p),
        ("dashboard_address", c_char_p),
        ("no_dashboard", c_bool),
    ]


class ClusterOptions(Structure):
    """``rask_cluster_options``."""

    _fields_ = [
        ("workers", c_uint32),
        ("threads_per_worker", c_uint32),
        ("host", c_char_p),
        ("scheduler_port", c_uint16),
        ("token", c_char_p),
        ("timeout_ms", c_int64),
        ("tls_ca_file", c_char_p),
        ("tls_cert_file", c_char_p),
        ("tls_key_file", c_char_p),
        ("dashboard_address", c_char_p),
        ("no_dashboard", c_bool),
    ]


class ClientOptions(Structure):
    """``rask_client_options``."""

    _fields_ = [
        ("name", c_char_p),
        ("token", c_char_p),
        ("timeout_ms", c_int64),
        ("tls_ca_file", c_char_p),
        ("tls_cert_file", c_char_p),
        ("tls_key_file", c_char_p),
    ]


class SubmitOptions(Structure):
    """``rask_submit_options`` (zero: what ``rask_client_submit`` does)."""

    _fields_ = [("key", c_char_p), ("impure", c_bool), ("retries", c_uint32)]


class WorkerOptions(Structure):
    """``rask_worker_options``."""

    _fields_ = [
        ("name", c_char_p),
        ("threads", c_uint32),
        ("host", c_char_p),
        ("data_port", c_uint16),
        ("memory_limit", c_uint64),
        ("token", c_char_p),
        ("heartbeat_ms", c_int64),
        ("connect_timeout_ms", c_int64),
        ("tls_ca_file", c_char_p),
        ("tls_cert_file", c_char_p),
        ("tls_key_file", c_char_p),
        ("reconnect_timeout_ms", c_int64),
        ("memory_target_fraction", c_double),
        ("memory_spill_fraction", c_double),
        ("memory_pause_fraction", c_double),
        ("memory_terminate_fraction", c_double),
        ("local_directory", c_char_p),
        ("spill_compression", c_uint32),
        ("pull_threads", c_uint32),
        ("runtime", c_char_p),
    ]


DEFAULT_DASHBOARD = "127.0.0.1:8787"


def dashboard_fields(address):
    """The ``dashboard_address``/``no_dashboard`` fields of a scheduler's or
    cluster's options: ``address`` is ``"HOST:PORT"`` (port 0: any free
    port; :data:`DEFAULT_DASHBOARD`, the default, falls back to a free port
    when 8787 is taken), or ``None``/``False`` for no dashboard (as Dask's
    ``dashboard_address=None``)."""
    if address is None or address is False:
        return {"no_dashboard": True}
    if not isinstance(address, str):
        raise TypeError(f"dashboard_address must be 'HOST:PORT' or None, not {type(address).__name__}")
    return {"dashboard_address": address.encode()}


def tls_fields(tls):
    """The ``tls_*`` fields of an options struct for ``tls``: ``None`` (no
    TLS) or a ``(ca_file, cert_file, key_file)`` tuple of paths (str or
    path-like; an entry may be ``None``, which rask refuses with a message
    naming what is missing)."""
    if tls is None:
        return {}
    ca, cert, key = tls
    enc = lambda p: None if p is None else os.fsencode(p)  # noqa: E731
    return {"tls_ca_file": enc(ca), "tls_cert_file": enc(cert), "tls_key_file": enc(key)}


def tls_of(tls_ca_file, tls_cert, tls_key):
    """``(ca, cert, key)`` from keyword arguments, or ``None`` when all three
    are ``None``."""
    if tls_ca_file is None and tls_cert is None and tls_key is None:
        return None
    return (tls_ca_file, tls_cert, tls_key)


#: Option structs by their C name, for tests/test_header.py.
STRUCTS = {
    "rask_compute_options": ComputeOptions,
    "rask_compute_stats": ComputeStats,
    "rask_scheduler_options": SchedulerOptions,
    "rask_cluster_options": ClusterOptions,
    "rask_client_options": ClientOptions,
    "rask_submit_options": SubmitOptions,
    "rask_worker_options": WorkerOptions,
    "rask_scheduler_info": SchedulerInfo,
    "rask_progress_counts": ProgressCounts,
}

ValueP = POINTER(Value)
ErrorP = POINTER(Error)
ArgP = POINTER(Arg)
GraphP = POINTER(Graph)
RegistryP = POINTER(Registry)
ComputationP = POINTER(Computation)
HostP = POINTER(Host)
TaskP = POINTER(Task)
ClientP = POINTER(Client)
FutureP = POINTER(Future)
FutureBatchP = POINTER(FutureBatch)
AsCompletedP = POINTER(AsCompleted)
SubscriptionP = POINTER(Subscription)
ClusterP = POINTER(Cluster)
SchedulerP = POINTER(Scheduler)
WorkerP = POINTER(Worker)

status_t = c_int  # rask_status: a C enum, 4 bytes (asserted in src/capi/mod.rs)
enum_t = c_int  # rask_kind, rask_dtype

#: rask_status (*)(void *user_data, const rask_value *const *args, size_t nargs,
#:                 rask_value **result, rask_error **err)
Callback = CFUNCTYPE(status_t, c_void_p, POINTER(ValueP), c_size_t, POINTER(ValueP), POINTER(ErrorP))
#: void (*)(void *user_data)
DropUserData = CFUNCTYPE(None, c_void_p)
#: ``rask_host_serialize``: rask_status (*)(void *user_data, uint64_t id,
#:                                         rask_value **result, rask_error **err)
HostSerialize = CFUNCTYPE(status_t, c_void_p, c_uint64, POINTER(ValueP), POINTER(ErrorP))
#: ``rask_host_release``: void (*)(void *user_data, uint64_t id)
HostRelease = CFUNCTYPE(None, c_void_p, c_uint64)
BufferRelease = CFUNCTYPE(None, c_void_p)
#: ``rask_progress_fn``: the counts (borrowed for the call) and user data.
ProgressFn = CFUNCTYPE(None, POINTER(ProgressCounts), c_void_p)

_ERR = POINTER(ErrorP)

#: name -> (restype, argtypes), in the order of include/rask.h.
FUNCTIONS = {
    # versions and statuses
    "rask_abi_version": (c_uint32, []),
    "rask_version_string": (c_char_p, []),
    "rask_status_name": (c_char_p, [c_int]),
    # compute
    "rask_compute": (
        status_t,
        [
            GraphP,
            POINTER(c_char_p),
            c_size_t,
            RegistryP,
            POINTER(ComputeOptions),
            POINTER(ValueP),
            POINTER(ComputeStats),
            _ERR,
        ],
    ),
    "rask_computation_start": (
        status_t,
        [
            GraphP,
            POINTER(c_char_p),
            c_size_t,
            RegistryP,
            POINTER(ComputeOptions),
            POINTER(ComputationP),
            _ERR,
        ],
    ),
    "rask_computation_take_tasks": (
        status_t,
        [ComputationP, c_size_t, c_int64, POINTER(POINTER(c_uint8)), POINTER(c_size_t), _ERR],
    ),
    "rask_computation_complete_tasks": (status_t, [ComputationP, c_void_p, c_size_t, _ERR]),
    "rask_computation_use_host": (status_t, [ComputationP, HostP, _ERR]),
    "rask_computation_next_task": (status_t, [ComputationP, c_int64, POINTER(TaskP), _ERR]),
    "rask_computation_wait": (status_t, [ComputationP, c_int64, _ERR]),
    "rask_computation_is_done": (c_bool, [ComputationP]),
    "rask_computation_results": (status_t, [ComputationP, POINTER(ValueP), _ERR]),
    "rask_computation_stats": (status_t, [ComputationP, POINTER(ComputeStats), _ERR]),
    "rask_computation_cancel": (status_t, [ComputationP, _ERR]),
    "rask_computation_free": (None, [ComputationP]),
    # pulled tasks
    "rask_task_key": (c_char_p, [TaskP]),
    "rask_task_func": (c_char_p, [TaskP]),
    "rask_task_nargs": (c_size_t, [TaskP]),
    "rask_task_arg": (ValueP, [TaskP, c_size_t]),
    "rask_task_complete": (status_t, [TaskP, ValueP, _ERR]),
    "rask_task_fail": (status_t, [TaskP, c_char_p, _ERR]),
    "rask_task_fail_exception": (status_t, [TaskP, c_char_p, c_char_p, c_char_p, _ERR]),
    "rask_task_free": (None, [TaskP]),
    # tasks that submit tasks
    "rask_task_client": (status_t, [TaskP, POINTER(ClientP), _ERR]),
    "rask_task_secede": (status_t, [TaskP, _ERR]),
    "rask_callback_client": (status_t, [POINTER(ClientP), _ERR]),
    "rask_callback_secede": (status_t, [_ERR]),
    "rask_callback_rejoin": (status_t, [_ERR]),
    # errors
    "rask_error_message": (c_char_p, [ErrorP]),
    "rask_error_status": (status_t, [ErrorP]),
    "rask_error_exception": (c_char_p, [ErrorP]),
    "rask_error_traceback": (c_char_p, [ErrorP]),
    "rask_error_free": (None, [ErrorP]),
    "rask_error_new": (ErrorP, [c_int, c_char_p]),
    # task arguments
    "rask_arg_value": (ArgP, [ValueP]),
    "rask_arg_int": (ArgP, [c_int64]),
    "rask_arg_float": (ArgP, [c_double]),
    "rask_arg_ref": (status_t, [c_char_p, POINTER(ArgP), _ERR]),
    "rask_arg_list": (status_t, [POINTER(ArgP), c_size_t, POINTER(ArgP), _ERR]),
    "rask_arg_free": (None, [ArgP]),
    # graphs
    "rask_graph_new": (GraphP, []),
    "rask_graph_clone": (GraphP, [GraphP]),
    "rask_graph_free": (None, [GraphP]),
    "rask_graph_add_value": (status_t, [GraphP, c_char_p, ValueP, _ERR]),
    "rask_graph_add_task": (status_t, [GraphP, c_char_p, c_char_p, POINTER(ArgP), c_size_t, _ERR]),
    "rask_graph_add_task_refs": (
        status_t,
        [GraphP, c_char_p, c_char_p, POINTER(c_char_p), c_size_t, _ERR],
    ),
    "rask_graph_from_msgpack": (status_t, [c_void_p, c_size_t, POINTER(GraphP), _ERR]),
    "rask_graph_doc_output_count": (c_size_t, [GraphP]),
    "rask_graph_doc_output": (c_char_p, [GraphP, c_size_t]),
    "rask_graph_len": (c_size_t, [GraphP]),
    "rask_graph_validate": (status_t, [GraphP, _ERR]),
    "rask_graph_to_dot": (status_t, [GraphP, POINTER(POINTER(c_uint8)), POINTER(c_size_t), _ERR]),
    # registries
    "rask_registry_new": (RegistryP, []),
    "rask_registry_free": (None, [RegistryP]),
    "rask_registry_add_callback": (
        status_t,
        [RegistryP, c_char_p, Callback, c_void_p, DropUserData, _ERR],
    ),
    "rask_registry_add_pulled": (status_t, [RegistryP, c_char_p, _ERR]),
    "rask_registry_contains": (c_bool, [RegistryP, c_char_p]),
    # values
    "rask_value_nil": (ValueP, []),
    "rask_value_bool": (ValueP, [c_bool]),
    "rask_value_int": (ValueP, [c_int64]),
    "rask_value_uint": (ValueP, [c_uint64]),
    "rask_value_float": (ValueP, [c_double]),
    "rask_value_str": (status_t, [c_char_p, c_size_t, POINTER(ValueP), _ERR]),
    "rask_value_bytes": (status_t, [c_void_p, c_size_t, POINTER(ValueP), _ERR]),
    "rask_value_array_new": (ValueP, []),
    "rask_value_array_push": (status_t, [ValueP, ValueP, _ERR]),
    "rask_value_map_new": (ValueP, []),
    "rask_value_map_insert": (status_t, [ValueP, ValueP, ValueP, _ERR]),
    "rask_value_tensor": (
        status_t,
        [c_int, POINTER(c_size_t), c_size_t, c_void_p, c_size_t, POINTER(ValueP), _ERR],
    ),
    "rask_value_bytes_wrap": (status_t, [c_void_p, c_size_t, BufferRelease, c_void_p, POINTER(ValueP), _ERR]),
    "rask_value_tensor_wrap": (
        status_t,
        [c_int, POINTER(c_size_t), c_size_t, c_void_p, c_size_t, BufferRelease, c_void_p, POINTER(ValueP), _ERR],
    ),
    "rask_value_clone": (ValueP, [ValueP]),
    "rask_value_free": (None, [ValueP]),
    "rask_value_kind": (enum_t, [ValueP]),
    "rask_value_get_bool": (status_t, [ValueP, POINTER(c_bool), _ERR]),
    "rask_value_get_int": (status_t, [ValueP, POINTER(c_int64), _ERR]),
    "rask_value_get_uint": (status_t, [ValueP, POINTER(c_uint64), _ERR]),
    "rask_value_get_float": (status_t, [ValueP, POINTER(c_double), _ERR]),
    "rask_value_get_str": (status_t, [ValueP, POINTER(POINTER(c_char)), POINTER(c_size_t), _ERR]),
    "rask_value_get_bytes": (status_t, [ValueP, POINTER(c_void_p), POINTER(c_size_t), _ERR]),
    "rask_value_len": (status_t, [ValueP, POINTER(c_size_t), _ERR]),
    "rask_value_array_get": (status_t, [ValueP, c_size_t, POINTER(ValueP), _ERR]),
    "rask_value_map_key": (status_t, [ValueP, c_size_t, POINTER(ValueP), _ERR]),
    "rask_value_map_value": (status_t, [ValueP, c_size_t, POINTER(ValueP), _ERR]),
    "rask_value_tensor_info": (
        status_t,
        [
            ValueP,
            POINTER(enum_t),
            POINTER(c_size_t),
            POINTER(POINTER(c_size_t)),
            POINTER(c_void_p),
            POINTER(c_size_t),
            _ERR,
        ],
    ),
    "rask_value_from_msgpack": (status_t, [c_void_p, c_size_t, POINTER(ValueP), _ERR]),
    "rask_value_to_msgpack": (status_t, [ValueP, POINTER(POINTER(c_uint8)), POINTER(c_size_t), _ERR]),
    "rask_buffer_free": (None, [POINTER(c_uint8), c_size_t]),
    # host values
    "rask_host_new": (status_t, [c_char_p, HostSerialize, HostRelease, c_void_p, DropUserData, POINTER(HostP), _ERR]),
    "rask_host_take_released": (status_t, [HostP, POINTER(c_uint64), c_size_t, POINTER(c_size_t), _ERR]),
    "rask_host_fd": (status_t, [HostP, POINTER(c_int), _ERR]),
    "rask_host_free": (None, [HostP]),
    "rask_value_host": (status_t, [HostP, c_uint64, c_size_t, ValueP, POINTER(ValueP), _ERR]),
    "rask_value_bytes_wrap_host": (status_t, [HostP, c_uint64, c_void_p, c_size_t, POINTER(ValueP), _ERR]),
    "rask_value_tensor_wrap_host": (
        status_t,
        [HostP, c_uint64, c_int, POINTER(c_size_t), c_size_t, c_void_p, c_size_t, POINTER(ValueP), _ERR],
    ),
    "rask_value_host_packed": (status_t, [c_char_p, c_void_p, c_size_t, POINTER(ValueP), _ERR]),
    "rask_value_host_id": (status_t, [ValueP, HostP, POINTER(c_uint64), _ERR]),
    "rask_value_host_packed_info": (
        status_t,
        [ValueP, POINTER(c_void_p), POINTER(c_size_t), POINTER(c_void_p), POINTER(c_size_t), _ERR],
    ),
    "rask_value_to_msgpack_for": (status_t, [ValueP, HostP, POINTER(POINTER(c_uint8)), POINTER(c_size_t), _ERR]),
    # schedulers
    "rask_scheduler_start": (status_t, [POINTER(SchedulerOptions), POINTER(SchedulerP), _ERR]),
    "rask_scheduler_address": (c_char_p, [SchedulerP]),
    "rask_scheduler_dashboard_link": (c_char_p, [SchedulerP]),
    "rask_scheduler_stop": (status_t, [SchedulerP, _ERR]),
    "rask_scheduler_free": (None, [SchedulerP]),
    # local clusters
    "rask_cluster_start": (status_t, [POINTER(ClusterOptions), RegistryP, POINTER(ClusterP), _ERR]),
    "rask_cluster_address": (c_char_p, [ClusterP]),
    "rask_cluster_dashboard_link": (c_char_p, [ClusterP]),
    "rask_cluster_client": (status_t, [ClusterP, POINTER(ClientP), _ERR]),
    "rask_cluster_stop": (status_t, [ClusterP, _ERR]),
    "rask_cluster_free": (None, [ClusterP]),
    # clients
    "rask_client_connect": (status_t, [c_char_p, POINTER(ClientOptions), POINTER(ClientP), _ERR]),
    "rask_client_close": (status_t, [ClientP, _ERR]),
    "rask_client_free": (None, [ClientP]),
    "rask_client_scheduler_address": (c_char_p, [ClientP]),
    "rask_client_dashboard_link": (c_char_p, [ClientP]),
    "rask_client_submit": (status_t, [ClientP, c_char_p, POINTER(ArgP), c_size_t, POINTER(FutureP), _ERR]),
    "rask_client_submit_with": (
        status_t,
        [ClientP, c_char_p, POINTER(ArgP), c_size_t, POINTER(SubmitOptions), POINTER(FutureP), _ERR],
    ),
    "rask_client_map": (
        status_t,
        [ClientP, c_char_p, POINTER(ArgP), c_size_t, c_size_t, POINTER(FutureP), _ERR],
    ),
    "rask_client_compute": (
        status_t,
        [ClientP, GraphP, POINTER(c_char_p), c_size_t, POINTER(FutureP), _ERR],
    ),
    "rask_client_gather": (status_t, [ClientP, POINTER(FutureP), c_size_t, c_int64, POINTER(ValueP), _ERR]),
    "rask_client_scatter": (status_t, [ClientP, POINTER(ValueP), c_size_t, c_bool, POINTER(FutureP), _ERR]),
    "rask_client_cancel": (status_t, [ClientP, POINTER(FutureP), c_size_t, _ERR]),
    "rask_client_fd": (status_t, [ClientP, POINTER(c_int), _ERR]),
    "rask_client_fd_clear": (status_t, [ClientP, _ERR]),
    "rask_client_wait": (
        status_t,
        [ClientP, POINTER(FutureP), c_size_t, c_int, c_int64, POINTER(c_bool), _ERR],
    ),
    "rask_client_wait_for_workers": (status_t, [ClientP, c_size_t, c_int64, POINTER(c_size_t), _ERR]),
    "rask_client_scheduler_info": (status_t, [ClientP, POINTER(SchedulerInfo), _ERR]),
    "rask_client_report_start": (c_int, [ClientP, POINTER(c_double), POINTER(ErrorP)]),
    "rask_client_performance_report": (c_int, [ClientP, c_double, c_char_p, POINTER(ErrorP)]),
    "rask_client_progress": (
        status_t,
        [ClientP, POINTER(FutureP), c_size_t, ProgressFn, c_void_p, c_int64, POINTER(ProgressCounts), _ERR],
    ),
    "rask_client_retire_workers": (
        status_t,
        [ClientP, POINTER(c_char_p), c_size_t, c_int64, POINTER(c_size_t), POINTER(c_size_t), _ERR],
    ),
    "rask_client_replicate": (
        status_t,
        [ClientP, POINTER(FutureP), c_size_t, c_size_t, c_int64, POINTER(c_size_t), POINTER(c_size_t), _ERR],
    ),
    "rask_client_rebalance": (
        status_t,
        [ClientP, POINTER(FutureP), c_size_t, c_int64, POINTER(c_size_t), POINTER(c_uint64), _ERR],
    ),
    # futures
    "rask_future_key": (c_char_p, [FutureP]),
    "rask_future_status": (enum_t, [FutureP]),
    "rask_future_result": (status_t, [FutureP, c_int64, POINTER(ValueP), _ERR]),
    "rask_future_warning": (status_t, [FutureP, POINTER(ValueP), _ERR]),
    "rask_future_clone": (FutureP, [FutureP]),
    "rask_future_free": (None, [FutureP]),
    # batches of futures
    "rask_client_map_msgpack": (
        status_t,
        [ClientP, c_char_p, c_void_p, c_size_t, POINTER(FutureBatchP), _ERR],
    ),
    "rask_client_map_msgpack_shared": (
        status_t,
        [ClientP, c_char_p, POINTER(ArgP), c_size_t, c_void_p, c_size_t, POINTER(FutureBatchP), _ERR],
    ),
    "rask_client_gather_msgpack": (
        status_t,
        [ClientP, POINTER(FutureP), c_size_t, c_int64, POINTER(POINTER(c_uint8)), POINTER(c_size_t), _ERR],
    ),
    "rask_future_batch_len": (c_size_t, [FutureBatchP]),
    "rask_future_batch_keys": (status_t, [FutureBatchP, POINTER(POINTER(c_uint8)), POINTER(c_size_t), _ERR]),
    "rask_future_batch_get": (status_t, [FutureBatchP, c_size_t, POINTER(FutureP), _ERR]),
    "rask_future_batch_release": (status_t, [FutureBatchP, c_void_p, c_size_t, _ERR]),
    "rask_future_batch_status": (status_t, [FutureBatchP, c_void_p, c_size_t, POINTER(enum_t), _ERR]),
    "rask_future_batch_gather": (
        status_t,
        [FutureBatchP, c_void_p, c_size_t, c_int64, POINTER(POINTER(c_uint8)), POINTER(c_size_t), _ERR],
    ),
    "rask_future_batch_free": (None, [FutureBatchP]),
    "rask_arg_future": (ArgP, [FutureP]),
    # as_completed
    "rask_as_completed_new": (status_t, [ClientP, POINTER(FutureP), c_size_t, POINTER(AsCompletedP), _ERR]),
    "rask_as_completed_add": (status_t, [AsCompletedP, FutureP, _ERR]),
    "rask_as_completed_next": (status_t, [AsCompletedP, c_int64, POINTER(FutureP), _ERR]),
    "rask_as_completed_count": (c_size_t, [AsCompletedP]),
    "rask_as_completed_free": (None, [AsCompletedP]),
    # coordination
    "rask_client_variable_set": (status_t, [ClientP, c_char_p, ValueP, FutureP, _ERR]),
    "rask_client_variable_get": (status_t, [ClientP, c_char_p, c_int64, POINTER(ValueP), POINTER(FutureP), _ERR]),
    "rask_client_variable_delete": (status_t, [ClientP, c_char_p, _ERR]),
    "rask_client_queue_create": (status_t, [ClientP, c_char_p, c_uint64, _ERR]),
    "rask_client_queue_put": (status_t, [ClientP, c_char_p, ValueP, FutureP, c_int64, _ERR]),
    "rask_client_queue_get": (status_t, [ClientP, c_char_p, c_int64, POINTER(ValueP), POINTER(FutureP), _ERR]),
    "rask_client_queue_size": (status_t, [ClientP, c_char_p, POINTER(c_uint64), _ERR]),
    "rask_client_lease_acquire": (status_t, [ClientP, c_char_p, c_uint32, c_int64, POINTER(c_uint64), _ERR]),
    "rask_client_lease_release": (status_t, [ClientP, c_char_p, c_uint64, _ERR]),
    "rask_client_event_set": (status_t, [ClientP, c_char_p, _ERR]),
    "rask_client_event_clear": (status_t, [ClientP, c_char_p, _ERR]),
    "rask_client_event_wait": (status_t, [ClientP, c_char_p, c_int64, POINTER(c_bool), _ERR]),
    "rask_client_publish_dataset": (status_t, [ClientP, c_char_p, ValueP, FutureP, c_bool, _ERR]),
    "rask_client_get_dataset": (status_t, [ClientP, c_char_p, POINTER(ValueP), POINTER(FutureP), _ERR]),
    "rask_client_unpublish_dataset": (status_t, [ClientP, c_char_p, _ERR]),
    "rask_client_list_datasets": (status_t, [ClientP, POINTER(ValueP), _ERR]),
    "rask_client_fire_and_forget": (status_t, [ClientP, POINTER(FutureP), c_size_t, _ERR]),
    "rask_client_publish": (status_t, [ClientP, c_char_p, ValueP, _ERR]),
    "rask_client_subscribe": (status_t, [ClientP, c_char_p, POINTER(SubscriptionP), _ERR]),
    "rask_subscription_get": (status_t, [SubscriptionP, c_int64, POINTER(ValueP), _ERR]),
    "rask_subscription_free": (None, [SubscriptionP]),
    # workers
    "rask_worker_start": (
        status_t,
        [c_char_p, POINTER(WorkerOptions), RegistryP, POINTER(WorkerP), _ERR],
    ),
    "rask_worker_address": (c_char_p, [WorkerP]),
    "rask_worker_name": (c_char_p, [WorkerP]),
    "rask_worker_next_task": (status_t, [WorkerP, c_int64, POINTER(TaskP), _ERR]),
    "rask_worker_use_host": (status_t, [WorkerP, HostP, _ERR]),
    "rask_worker_take_tasks": (
        status_t,
        [WorkerP, c_size_t, c_int64, POINTER(POINTER(c_uint8)), POINTER(c_size_t), _ERR],
    ),
    "rask_worker_complete_tasks": (status_t, [WorkerP, c_void_p, c_size_t, _ERR]),
    "rask_worker_detach_task": (status_t, [WorkerP, c_uint64, POINTER(TaskP), _ERR]),
    "rask_worker_secede_task": (status_t, [WorkerP, c_uint64, c_void_p, c_size_t, POINTER(TaskP), _ERR]),
    "rask_worker_fd": (status_t, [WorkerP, POINTER(c_int), _ERR]),
    "rask_worker_wait": (status_t, [WorkerP, c_int64, _ERR]),
    "rask_worker_stop_reason": (c_char_p, [WorkerP]),
    "rask_worker_stop": (status_t, [WorkerP, _ERR]),
    "rask_worker_retire": (status_t, [WorkerP, _ERR]),
    "rask_signal_watch": (status_t, [c_int, POINTER(c_int), _ERR]),
    "rask_worker_free": (None, [WorkerP]),
}

# ----------------------------------------------------------------- loading


class LibraryNotFoundError(OSError):
    """librask could not be found or loaded; the message names every place tried."""


def _lib_names():
    if sys.platform == "darwin":
        return ["librask.dylib"]
    if sys.platform == "win32":
        return ["rask.dll"]
    return ["librask.so"]


def source_root():
    """The repository root when this package is used from its source tree
    (``bindings/python/rask/`` → three levels up), else ``None``."""
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.normpath(os.path.join(here, "..", "..", ".."))
    if os.path.isfile(os.path.join(root, "include", "rask.h")):
        return root
    return None


def candidates():
    """Every (description, path) this module tries, in order. A path of
    ``None`` means "ask the system's loader"."""
    out = []
    env = os.environ.get("RASK_LIB")
    if env:
        out.append(("$RASK_LIB", env))
        return out  # an explicit choice: do not silently fall back
    roots = []
    if os.environ.get("RASK_ROOT"):
        roots.append(("$RASK_ROOT", os.environ["RASK_ROOT"]))
    src = source_root()
    if src:
        roots.append(("the source tree", src))
    for what, root in roots:
        for profile in ("release", "debug"):
            for name in _lib_names():
                out.append((what, os.path.join(root, "target", profile, name)))
    out.append(("the system loader", None))
    return out


def _load():
    tried = []
    for what, path in candidates():
        if path is None:
            found = ctypes.util.find_library("rask")
            if not found:
                tried.append("the system loader (ctypes.util.find_library('rask')): not found")
                continue
            path = found
        elif not os.path.exists(path):
            tried.append(f"{path} ({what}): no such file")
            continue
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            tried.append(f"{path} ({what}): {e}")
    raise LibraryNotFoundError(
        "cannot find librask; set RASK_LIB to the path of librask.so, or RASK_ROOT to a "
        "rask checkout built with `cargo build --release`. Tried:\n  " + "\n  ".join(tried)
    )


#: Functions called holding the GIL (see the module's docs): each makes,
#: reads or frees a scalar value or argument, or reads a future's key
#: (a field set when the future was made), and takes no lock.
#: ``value_free_scalar`` is ``rask_value_free`` for values known to be
#: nil, bools, ints or floats (a value holding a buffer or a host object
#: may run a release callback or unmap memory: that one keeps ``value_free``).
QUICK = (
    "rask_arg_int",
    "rask_arg_float",
    "rask_future_key",
    "rask_value_nil",
    "rask_value_bool",
    "rask_value_int",
    "rask_value_float",
    "rask_value_kind",
    "rask_value_get_bool",
    "rask_value_get_int",
    "rask_value_get_uint",
    "rask_value_get_float",
)
SCALAR_KINDS = frozenset((KIND_NIL, KIND_BOOL, KIND_INT, KIND_UINT, KIND_FLOAT))


class _Missing:
    """Stands for a function the loaded library lacks; calling it raises."""

    def __init__(self, name, path):
        self.name, self.path = name, path

    def __call__(self, *args):
        raise LibraryNotFoundError(
            f"{self.path} has no function {self.name}: it is older than these bindings; "
            "rebuild it (cargo build --release)"
        )


class _Lib:
    """The loaded library, with every function of :data:`FUNCTIONS` as an
    attribute named without the ``rask_`` prefix (``lib.graph_new``)."""

    def __init__(self):
        self.cdll, self.path = _load()
        self.missing = []
        for name, (restype, argtypes) in FUNCTIONS.items():
            try:
                f = getattr(self.cdll, name)
            except AttributeError:
                self.missing.append(name)
                setattr(self, name[len("rask_") :], _Missing(name, self.path))
                continue
            f.restype = restype
            f.argtypes = argtypes
            setattr(self, name[len("rask_") :], f)
        # The same loaded library (dlopen hands back its handle), called
        # without releasing the GIL.
        quick = ctypes.PyDLL(self.path)
        for name in QUICK + ("rask_value_free",):
            if name in self.missing:
                continue
            f = getattr(quick, name)
            f.restype, f.argtypes = FUNCTIONS[name]
            attr = "value_free_scalar" if name == "rask_value_free" else name[len("rask_") :]
            setattr(self, attr, f)
        version = self.abi_version()
        if version != ABI_VERSION:
            raise LibraryNotFoundError(
                f"{self.path} has C ABI version {version}, these bindings need {ABI_VERSION}"
            )


_lib = None
_lib_lock = threading.Lock()


def lib():
    """The loaded library (loaded on first use)."""
    global _lib
    if _lib is None:
        with _lib_lock:
            if _lib is None:
                _lib = _Lib()
    return _lib

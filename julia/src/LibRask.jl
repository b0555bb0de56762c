# LibRask: the raw C API of librask, one `ccall` wrapper per function of
# include/rask.h, with the same name, argument order and ownership rules (the
# header's comment on each function is the contract). Nothing here frees,
# converts or checks anything: that is the job of the Julia API above
# (src/Rask.jl). test/runtests.jl parses include/rask.h and checks that every
# `ccall` here names a function of the header with the same number of
# arguments and matching types, and that every function of the header has
# its wrapper.
#
# Julia 1.5 cannot `ccall((:sym, lib))` with a library path chosen at run time
# (a non-constant library name crashes it), so the library is opened once in
# `__init__` and each wrapper calls the function pointer that `fptr(:sym)`
# looks up in a table filled then.
module LibRask

using Libdl

# ----------------------------------------------------------- loading

"""The handle of the loaded librask (set by `load!`)."""
const HANDLE = Ref{Ptr{Cvoid}}(C_NULL)
"""The path librask was loaded from."""
const PATH = Ref{String}("")
"""Function pointers of every wrapper below, by name; filled by `load!`."""
const FPTRS = Dict{Symbol,Ptr{Cvoid}}()

"""
    fptr(name::Symbol) -> Ptr{Cvoid}

The address of the C function `name` in the loaded library.
"""
@inline fptr(name::Symbol) = FPTRS[name]

"""
    load!(path)

Opens librask at `path` and looks up every function this module wraps (the
functions of this module whose name starts with `rask_`). Throws if the file
cannot be opened or lacks one of them (a library older than the header).
"""
function load!(path::AbstractString)
    h = Libdl.dlopen(path, Libdl.RTLD_LAZY | Libdl.RTLD_LOCAL)
    ptrs = Dict{Symbol,Ptr{Cvoid}}()
    for name in names(@__MODULE__; all = true)
        startswith(string(name), "rask_") || continue
        isdefined(@__MODULE__, name) || continue
        f = getfield(@__MODULE__, name)
        (f isa Function && !(f isa Type)) || continue
        p = Libdl.dlsym(h, name; throw_error = false)
        p === nothing && error("$path has no function $name: is it older than this package?")
        ptrs[name] = p
    end
    empty!(FPTRS)
    merge!(FPTRS, ptrs)
    HANDLE[] = h
    PATH[] = String(path)
    return h
end

# ------------------------------------------------------------ types

"""`RASK_ABI_VERSION` of the header these wrappers follow."""
const RASK_ABI_VERSION = UInt32(1)

@enum rask_status::Cint begin
    RASK_OK = 0
    RASK_ERR_NULL_ARG = 1
    RASK_ERR_INVALID_UTF8 = 2
    RASK_ERR_INVALID_ARG = 3
    RASK_ERR_TYPE = 4
    RASK_ERR_DECODE = 5
    RASK_ERR_GRAPH = 6
    RASK_ERR_UNKNOWN_FUNCTION = 7
    RASK_ERR_TASK_FAILED = 8
    RASK_ERR_CANCELLED = 9
    RASK_ERR_REGISTRY = 10
    RASK_ERR_PANIC = 11
    RASK_ERR_STATE = 12
    RASK_ERR_CONNECTION = 13
    RASK_ERR_PROTOCOL = 14
    RASK_ERR_DATA = 15
    RASK_TIMEOUT = 100
    RASK_DONE = 101
end

@enum rask_kind::Cint begin
    RASK_KIND_NIL = 0
    RASK_KIND_BOOL = 1
    RASK_KIND_INT = 2
    RASK_KIND_UINT = 3
    RASK_KIND_FLOAT = 4
    RASK_KIND_STR = 5
    RASK_KIND_BIN = 6
    RASK_KIND_ARRAY = 7
    RASK_KIND_MAP = 8
    RASK_KIND_TENSOR = 9
    RASK_KIND_HOST = 10
end

@enum rask_dtype::Cint begin
    RASK_DTYPE_BOOL = 0
    RASK_DTYPE_INT8 = 1
    RASK_DTYPE_INT16 = 2
    RASK_DTYPE_INT32 = 3
    RASK_DTYPE_INT64 = 4
    RASK_DTYPE_UINT8 = 5
    RASK_DTYPE_UINT16 = 6
    RASK_DTYPE_UINT32 = 7
    RASK_DTYPE_UINT64 = 8
    RASK_DTYPE_FLOAT32 = 9
    RASK_DTYPE_FLOAT64 = 10
end

@enum rask_future_state::Cint begin
    RASK_FUTURE_PENDING = 0
    RASK_FUTURE_FINISHED = 1
    RASK_FUTURE_ERROR = 2
    RASK_FUTURE_CANCELLED = 3
end

# `rask_wait_mode`, the `mode` of `rask_client_wait` (an `int`). The enum is
# defined in src/capi/client.rs but cbindgen leaves it out of rask.h (no
# exported function names the type), so only these numbers are the contract.
const RASK_WAIT_ALL_COMPLETED = Cint(0)
const RASK_WAIT_FIRST_COMPLETED = Cint(1)

# Opaque handles: only ever used as Ptr{T}.
mutable struct rask_arg end
mutable struct rask_as_completed end
mutable struct rask_client end
mutable struct rask_cluster end
mutable struct rask_computation end
mutable struct rask_error end
mutable struct rask_future end
mutable struct rask_future_batch end
mutable struct rask_graph end
mutable struct rask_host end
mutable struct rask_registry end
mutable struct rask_scheduler end
mutable struct rask_subscription end
mutable struct rask_task end
mutable struct rask_value end
mutable struct rask_worker end

struct rask_compute_options
    threads::UInt32
end

struct rask_compute_stats
    tasks::Csize_t
    tasks_run::Csize_t
    peak_live::Csize_t
end

# Filled by rask_client_progress.
struct rask_progress_counts
    total::Csize_t
    pending::Csize_t
    finished::Csize_t
    erred::Csize_t
    cancelled::Csize_t
end

# Filled by rask_client_scheduler_info.
struct rask_scheduler_info
    tasks::UInt64
    released::UInt64
    waiting::UInt64
    no_worker::UInt64
    queued::UInt64
    processing::UInt64
    memory::UInt64
    erred::UInt64
    workers::UInt64
    clients::UInt64
    managed_bytes::UInt64
    spilled_bytes::UInt64
    process_bytes::UInt64
    memory_limit::UInt64
    paused_workers::UInt64
end

# The options structs of the distributed part. Their strings are
# NUL-terminated and borrowed for the call only (C_NULL: the default); zero
# means the default for every other field. Julia lays these out as C does.
# The tls_* fields come last (all three paths or all C_NULL), as in C.
struct rask_scheduler_options
    host::Ptr{UInt8}
    port::UInt16
    name::Ptr{UInt8}
    token::Ptr{UInt8}
    heartbeat_timeout_ms::Int64
    tls_ca_file::Ptr{UInt8}
    tls_cert_file::Ptr{UInt8}
    tls_key_file::Ptr{UInt8}
    dashboard_address::Ptr{UInt8}
    no_dashboard::Bool
end

struct rask_cluster_options
    workers::UInt32
    threads_per_worker::UInt32
    host::Ptr{UInt8}
    scheduler_port::UInt16
    token::Ptr{UInt8}
    timeout_ms::Int64
    tls_ca_file::Ptr{UInt8}
    tls_cert_file::Ptr{UInt8}
    tls_key_file::Ptr{UInt8}
    dashboard_address::Ptr{UInt8}
    no_dashboard::Bool
end

struct rask_client_options
    name::Ptr{UInt8}
    token::Ptr{UInt8}
    timeout_ms::Int64
    tls_ca_file::Ptr{UInt8}
    tls_cert_file::Ptr{UInt8}
    tls_key_file::Ptr{UInt8}
end

struct rask_submit_options
    key::Ptr{UInt8}
    impure::Bool
    retries::UInt32
end

struct rask_worker_options
    name::Ptr{UInt8}
    threads::UInt32
    host::Ptr{UInt8}
    data_port::UInt16
    memory_limit::UInt64
    token::Ptr{UInt8}
    heartbeat_ms::Int64
    connect_timeout_ms::Int64
    tls_ca_file::Ptr{UInt8}
    tls_cert_file::Ptr{UInt8}
    tls_key_file::Ptr{UInt8}
    reconnect_timeout_ms::Int64
    memory_target_fraction::Float64
    memory_spill_fraction::Float64
    memory_pause_fraction::Float64
    memory_terminate_fraction::Float64
    local_directory::Ptr{UInt8}
    spill_compression::UInt32
    pull_threads::UInt32
    runtime::Ptr{UInt8}
end

# `rask_callback` and `rask_drop_user_data` are C function pointers
# (Ptr{Cvoid}). Julia 1.5 cannot run code on rask's threads, so Julia
# functions go through pull mode instead; `rask_registry_add_callback` is
# here for function pointers that come from C libraries.

# ------------------------------------------------------------ functions
# versions and errors
rask_abi_version() =
    ccall(fptr(:rask_abi_version), UInt32, ())

rask_version_string() =
    ccall(fptr(:rask_version_string), Ptr{UInt8}, ())

rask_status_name(status) =
    ccall(fptr(:rask_status_name), Ptr{UInt8}, (Cint,), status)

rask_error_message(err) =
    ccall(fptr(:rask_error_message), Ptr{UInt8}, (Ptr{rask_error},), err)

rask_error_status(err) =
    ccall(fptr(:rask_error_status), rask_status, (Ptr{rask_error},), err)

rask_error_exception(err) =
    ccall(fptr(:rask_error_exception), Ptr{UInt8}, (Ptr{rask_error},), err)

rask_error_traceback(err) =
    ccall(fptr(:rask_error_traceback), Ptr{UInt8}, (Ptr{rask_error},), err)

rask_error_free(err) =
    ccall(fptr(:rask_error_free), Cvoid, (Ptr{rask_error},), err)

rask_error_new(status, message) =
    ccall(fptr(:rask_error_new), Ptr{rask_error}, (Cint, Cstring), status, message)

# values
rask_value_nil() =
    ccall(fptr(:rask_value_nil), Ptr{rask_value}, ())

rask_value_bool(b) =
    ccall(fptr(:rask_value_bool), Ptr{rask_value}, (Bool,), b)

rask_value_int(i) =
    ccall(fptr(:rask_value_int), Ptr{rask_value}, (Int64,), i)

rask_value_uint(u) =
    ccall(fptr(:rask_value_uint), Ptr{rask_value}, (UInt64,), u)

rask_value_float(f) =
    ccall(fptr(:rask_value_float), Ptr{rask_value}, (Cdouble,), f)

rask_value_str(s, len, out, err) =
    ccall(fptr(:rask_value_str), rask_status, (Ptr{UInt8}, Csize_t, Ptr{Ptr{rask_value}}, Ptr{Ptr{rask_error}}), s, len, out, err)

rask_value_bytes(data, len, out, err) =
    ccall(fptr(:rask_value_bytes), rask_status, (Ptr{UInt8}, Csize_t, Ptr{Ptr{rask_value}}, Ptr{Ptr{rask_error}}), data, len, out, err)

rask_value_array_new() =
    ccall(fptr(:rask_value_array_new), Ptr{rask_value}, ())

rask_value_array_push(array, elem, err) =
    ccall(fptr(:rask_value_array_push), rask_status, (Ptr{rask_value}, Ptr{rask_value}, Ptr{Ptr{rask_error}}), array, elem, err)

rask_value_map_new() =
    ccall(fptr(:rask_value_map_new), Ptr{rask_value}, ())

rask_value_map_insert(map, key, val, err) =
    ccall(fptr(:rask_value_map_insert), rask_status, (Ptr{rask_value}, Ptr{rask_value}, Ptr{rask_value}, Ptr{Ptr{rask_error}}), map, key, val, err)

rask_value_tensor(dtype, shape, ndim, data, nbytes, out, err) =
    ccall(fptr(:rask_value_tensor), rask_status, (Cint, Ptr{Csize_t}, Csize_t, Ptr{Cvoid}, Csize_t, Ptr{Ptr{rask_value}}, Ptr{Ptr{rask_error}}), dtype, shape, ndim, data, nbytes, out, err)

rask_value_bytes_wrap(data, len, release, user_data, out, err) =
    ccall(fptr(:rask_value_bytes_wrap), rask_status, (Ptr{UInt8}, Csize_t, Ptr{Cvoid}, Ptr{Cvoid}, Ptr{Ptr{rask_value}}, Ptr{Ptr{rask_error}}), data, len, release, user_data, out, err)

rask_value_tensor_wrap(dtype, shape, ndim, data, nbytes, release, user_data, out, err) =
    ccall(fptr(:rask_value_tensor_wrap), rask_status, (Cint, Ptr{Csize_t}, Csize_t, Ptr{Cvoid}, Csize_t, Ptr{Cvoid}, Ptr{Cvoid}, Ptr{Ptr{rask_value}}, Ptr{Ptr{rask_error}}), dtype, shape, ndim, data, nbytes, release, user_data, out, err)

rask_value_clone(v) =
    ccall(fptr(:rask_value_clone), Ptr{rask_value}, (Ptr{rask_value},), v)

rask_value_free(v) =
    ccall(fptr(:rask_value_free), Cvoid, (Ptr{rask_value},), v)

rask_value_kind(v) =
    ccall(fptr(:rask_value_kind), rask_kind, (Ptr{rask_value},), v)

rask_value_get_bool(v, out, err) =
    ccall(fptr(:rask_value_get_bool), rask_status, (Ptr{rask_value}, Ptr{Bool}, Ptr{Ptr{rask_error}}), v, out, err)

rask_value_get_int(v, out, err) =
    ccall(fptr(:rask_value_get_int), rask_status, (Ptr{rask_value}, Ptr{Int64}, Ptr{Ptr{rask_error}}), v, out, err)

rask_value_get_uint(v, out, err) =
    ccall(fptr(:rask_value_get_uint), rask_status, (Ptr{rask_value}, Ptr{UInt64}, Ptr{Ptr{rask_error}}), v, out, err)

rask_value_get_float(v, out, err) =
    ccall(fptr(:rask_value_get_float), rask_status, (Ptr{rask_value}, Ptr{Cdouble}, Ptr{Ptr{rask_error}}), v, out, err)

rask_value_get_str(v, ptr, len, err) =
    ccall(fptr(:rask_value_get_str), rask_status, (Ptr{rask_value}, Ptr{Ptr{UInt8}}, Ptr{Csize_t}, Ptr{Ptr{rask_error}}), v, ptr, len, err)

rask_value_get_bytes(v, data, len, err) =
    ccall(fptr(:rask_value_get_bytes), rask_status, (Ptr{rask_value}, Ptr{Ptr{UInt8}}, Ptr{Csize_t}, Ptr{Ptr{rask_error}}), v, data, len, err)

rask_value_len(v, out, err) =
    ccall(fptr(:rask_value_len), rask_status, (Ptr{rask_value}, Ptr{Csize_t}, Ptr{Ptr{rask_error}}), v, out, err)

rask_value_array_get(v, i, out, err) =
    ccall(fptr(:rask_value_array_get), rask_status, (Ptr{rask_value}, Csize_t, Ptr{Ptr{rask_value}}, Ptr{Ptr{rask_error}}), v, i, out, err)

rask_value_map_key(v, i, out, err) =
    ccall(fptr(:rask_value_map_key), rask_status, (Ptr{rask_value}, Csize_t, Ptr{Ptr{rask_value}}, Ptr{Ptr{rask_error}}), v, i, out, err)

rask_value_map_value(v, i, out, err) =
    ccall(fptr(:rask_value_map_value), rask_status, (Ptr{rask_value}, Csize_t, Ptr{Ptr{rask_value}}, Ptr{Ptr{rask_error}}), v, i, out, err)

rask_value_tensor_info(v, dtype, ndim, shape, data, nbytes, err) =
    ccall(fptr(:rask_value_tensor_info), rask_status, (Ptr{rask_value}, Ptr{rask_dtype}, Ptr{Csize_t}, Ptr{Ptr{Csize_t}}, Ptr{Ptr{Cvoid}}, Ptr{Csize_t}, Ptr{Ptr{rask_error}}), v, dtype, ndim, shape, data, nbytes, err)

rask_value_from_msgpack(data, len, out, err) =
    ccall(fptr(:rask_value_from_msgpack), rask_status, (Ptr{UInt8}, Csize_t, Ptr{Ptr{rask_value}}, Ptr{Ptr{rask_error}}), data, len, out, err)

rask_value_to_msgpack(v, data, len, err) =
    ccall(fptr(:rask_value_to_msgpack), rask_status, (Ptr{rask_value}, Ptr{Ptr{UInt8}}, Ptr{Csize_t}, Ptr{Ptr{rask_error}}), v, data, len, err)

rask_buffer_free(data, len) =
    ccall(fptr(:rask_buffer_free), Cvoid, (Ptr{UInt8}, Csize_t), data, len)

# host values
rask_host_new(runtime, serialize, release, user_data, drop_user_data, out, err) =
    ccall(fptr(:rask_host_new), rask_status, (Cstring, Ptr{Cvoid}, Ptr{Cvoid}, Ptr{Cvoid}, Ptr{Cvoid}, Ptr{Ptr{rask_host}}, Ptr{Ptr{rask_error}}), runtime, serialize, release, user_data, drop_user_data, out, err)

rask_host_take_released(host, ids, cap, n, err) =
    ccall(fptr(:rask_host_take_released), rask_status, (Ptr{rask_host}, Ptr{UInt64}, Csize_t, Ptr{Csize_t}, Ptr{Ptr{rask_error}}), host, ids, cap, n, err)

rask_host_fd(host, out, err) =
    ccall(fptr(:rask_host_fd), rask_status, (Ptr{rask_host}, Ptr{Cint}, Ptr{Ptr{rask_error}}), host, out, err)

rask_host_free(host) =
    ccall(fptr(:rask_host_free), Cvoid, (Ptr{rask_host},), host)

rask_value_host(host, id, size, portable, out, err) =
    ccall(fptr(:rask_value_host), rask_status, (Ptr{rask_host}, UInt64, Csize_t, Ptr{rask_value}, Ptr{Ptr{rask_value}}, Ptr{Ptr{rask_error}}), host, id, size, portable, out, err)

rask_value_bytes_wrap_host(host, id, data, len, out, err) =
    ccall(fptr(:rask_value_bytes_wrap_host), rask_status, (Ptr{rask_host}, UInt64, Ptr{UInt8}, Csize_t, Ptr{Ptr{rask_value}}, Ptr{Ptr{rask_error}}), host, id, data, len, out, err)

rask_value_tensor_wrap_host(host, id, dtype, shape, ndim, data, nbytes, out, err) =
    ccall(fptr(:rask_value_tensor_wrap_host), rask_status, (Ptr{rask_host}, UInt64, Cint, Ptr{Csize_t}, Csize_t, Ptr{Cvoid}, Csize_t, Ptr{Ptr{rask_value}}, Ptr{Ptr{rask_error}}), host, id, dtype, shape, ndim, data, nbytes, out, err)

rask_value_host_packed(runtime, data, len, out, err) =
    ccall(fptr(:rask_value_host_packed), rask_status, (Cstring, Ptr{UInt8}, Csize_t, Ptr{Ptr{rask_value}}, Ptr{Ptr{rask_error}}), runtime, data, len, out, err)

rask_value_host_id(v, host, id, err) =
    ccall(fptr(:rask_value_host_id), rask_status, (Ptr{rask_value}, Ptr{rask_host}, Ptr{UInt64}, Ptr{Ptr{rask_error}}), v, host, id, err)

rask_value_host_packed_info(v, runtime, runtime_len, data, len, err) =
    ccall(fptr(:rask_value_host_packed_info), rask_status, (Ptr{rask_value}, Ptr{Ptr{UInt8}}, Ptr{Csize_t}, Ptr{Ptr{UInt8}}, Ptr{Csize_t}, Ptr{Ptr{rask_error}}), v, runtime, runtime_len, data, len, err)

rask_value_to_msgpack_for(v, host, data, len, err) =
    ccall(fptr(:rask_value_to_msgpack_for), rask_status, (Ptr{rask_value}, Ptr{rask_host}, Ptr{Ptr{UInt8}}, Ptr{Csize_t}, Ptr{Ptr{rask_error}}), v, host, data, len, err)

# task arguments
rask_arg_value(value) =
    ccall(fptr(:rask_arg_value), Ptr{rask_arg}, (Ptr{rask_value},), value)

rask_arg_int(i) =
    ccall(fptr(:rask_arg_int), Ptr{rask_arg}, (Int64,), i)

rask_arg_float(f) =
    ccall(fptr(:rask_arg_float), Ptr{rask_arg}, (Cdouble,), f)

rask_arg_ref(key, out, err) =
    ccall(fptr(:rask_arg_ref), rask_status, (Cstring, Ptr{Ptr{rask_arg}}, Ptr{Ptr{rask_error}}), key, out, err)

rask_arg_list(items, n, out, err) =
    ccall(fptr(:rask_arg_list), rask_status, (Ptr{Ptr{rask_arg}}, Csize_t, Ptr{Ptr{rask_arg}}, Ptr{Ptr{rask_error}}), items, n, out, err)

rask_arg_free(arg) =
    ccall(fptr(:rask_arg_free), Cvoid, (Ptr{rask_arg},), arg)

# graphs
rask_graph_new() =
    ccall(fptr(:rask_graph_new), Ptr{rask_graph}, ())

rask_graph_clone(g) =
    ccall(fptr(:rask_graph_clone), Ptr{rask_graph}, (Ptr{rask_graph},), g)

rask_graph_free(g) =
    ccall(fptr(:rask_graph_free), Cvoid, (Ptr{rask_graph},), g)

rask_graph_add_value(g, key, value, err) =
    ccall(fptr(:rask_graph_add_value), rask_status, (Ptr{rask_graph}, Cstring, Ptr{rask_value}, Ptr{Ptr{rask_error}}), g, key, value, err)

rask_graph_add_task(g, key, func, args, nargs, err) =
    ccall(fptr(:rask_graph_add_task), rask_status, (Ptr{rask_graph}, Cstring, Cstring, Ptr{Ptr{rask_arg}}, Csize_t, Ptr{Ptr{rask_error}}), g, key, func, args, nargs, err)

rask_graph_add_task_refs(g, key, func, refs, nrefs, err) =
    ccall(fptr(:rask_graph_add_task_refs), rask_status, (Ptr{rask_graph}, Cstring, Cstring, Ptr{Ptr{UInt8}}, Csize_t, Ptr{Ptr{rask_error}}), g, key, func, refs, nrefs, err)

rask_graph_from_msgpack(data, len, out, err) =
    ccall(fptr(:rask_graph_from_msgpack), rask_status, (Ptr{UInt8}, Csize_t, Ptr{Ptr{rask_graph}}, Ptr{Ptr{rask_error}}), data, len, out, err)

rask_graph_doc_output_count(g) =
    ccall(fptr(:rask_graph_doc_output_count), Csize_t, (Ptr{rask_graph},), g)

rask_graph_doc_output(g, i) =
    ccall(fptr(:rask_graph_doc_output), Ptr{UInt8}, (Ptr{rask_graph}, Csize_t), g, i)

rask_graph_len(g) =
    ccall(fptr(:rask_graph_len), Csize_t, (Ptr{rask_graph},), g)

rask_graph_validate(g, err) =
    ccall(fptr(:rask_graph_validate), rask_status, (Ptr{rask_graph}, Ptr{Ptr{rask_error}}), g, err)
rask_graph_to_dot(g, data, len, err) =
    ccall(fptr(:rask_graph_to_dot), rask_status, (Ptr{rask_graph}, Ptr{Ptr{UInt8}}, Ptr{Csize_t}, Ptr{Ptr{rask_error}}), g, data, len, err)

# registries
rask_registry_new() =
    ccall(fptr(:rask_registry_new), Ptr{rask_registry}, ())

rask_registry_free(reg) =
    ccall(fptr(:rask_registry_free), Cvoid, (Ptr{rask_registry},), reg)

rask_registry_add_callback(reg, name, callback, user_data, drop_user_data, err) =
    ccall(fptr(:rask_registry_add_callback), rask_status, (Ptr{rask_registry}, Cstring, Ptr{Cvoid}, Ptr{Cvoid}, Ptr{Cvoid}, Ptr{Ptr{rask_error}}), reg, name, callback, user_data, drop_user_data, err)

rask_registry_add_pulled(reg, name, err) =
    ccall(fptr(:rask_registry_add_pulled), rask_status, (Ptr{rask_registry}, Cstring, Ptr{Ptr{rask_error}}), reg, name, err)

rask_registry_contains(reg, name) =
    ccall(fptr(:rask_registry_contains), Bool, (Ptr{rask_registry}, Cstring), reg, name)

# computing, pull mode
rask_compute(graph, keys, nkeys, registry, options, results, stats, err) =
    ccall(fptr(:rask_compute), rask_status, (Ptr{rask_graph}, Ptr{Ptr{UInt8}}, Csize_t, Ptr{rask_registry}, Ptr{rask_compute_options}, Ptr{Ptr{rask_value}}, Ptr{rask_compute_stats}, Ptr{Ptr{rask_error}}), graph, keys, nkeys, registry, options, results, stats, err)

rask_computation_start(graph, keys, nkeys, registry, options, out, err) =
    ccall(fptr(:rask_computation_start), rask_status, (Ptr{rask_graph}, Ptr{Ptr{UInt8}}, Csize_t, Ptr{rask_registry}, Ptr{rask_compute_options}, Ptr{Ptr{rask_computation}}, Ptr{Ptr{rask_error}}), graph, keys, nkeys, registry, options, out, err)

rask_computation_take_tasks(comp, max, timeout_ms, data, len, err) =
    ccall(fptr(:rask_computation_take_tasks), rask_status, (Ptr{rask_computation}, Csize_t, Int64, Ptr{Ptr{UInt8}}, Ptr{Csize_t}, Ptr{Ptr{rask_error}}), comp, max, timeout_ms, data, len, err)

rask_computation_complete_tasks(comp, results, len, err) =
    ccall(fptr(:rask_computation_complete_tasks), rask_status, (Ptr{rask_computation}, Ptr{UInt8}, Csize_t, Ptr{Ptr{rask_error}}), comp, results, len, err)

rask_computation_use_host(comp, host, err) =
    ccall(fptr(:rask_computation_use_host), rask_status, (Ptr{rask_computation}, Ptr{rask_host}, Ptr{Ptr{rask_error}}), comp, host, err)

rask_computation_next_task(comp, timeout_ms, out, err) =
    ccall(fptr(:rask_computation_next_task), rask_status, (Ptr{rask_computation}, Int64, Ptr{Ptr{rask_task}}, Ptr{Ptr{rask_error}}), comp, timeout_ms, out, err)

rask_computation_wait(comp, timeout_ms, err) =
    ccall(fptr(:rask_computation_wait), rask_status, (Ptr{rask_computation}, Int64, Ptr{Ptr{rask_error}}), comp, timeout_ms, err)

rask_computation_is_done(comp) =
    ccall(fptr(:rask_computation_is_done), Bool, (Ptr{rask_computation},), comp)

rask_computation_results(comp, results, err) =
    ccall(fptr(:rask_computation_results), rask_status, (Ptr{rask_computation}, Ptr{Ptr{rask_value}}, Ptr{Ptr{rask_error}}), comp, results, err)

rask_computation_stats(comp, stats, err) =
    ccall(fptr(:rask_computation_stats), rask_status, (Ptr{rask_computation}, Ptr{rask_compute_stats}, Ptr{Ptr{rask_error}}), comp, stats, err)

rask_computation_cancel(comp, err) =
    ccall(fptr(:rask_computation_cancel), rask_status, (Ptr{rask_computation}, Ptr{Ptr{rask_error}}), comp, err)

rask_computation_free(comp) =
    ccall(fptr(:rask_computation_free), Cvoid, (Ptr{rask_computation},), comp)

# pulled tasks
rask_task_key(task) =
    ccall(fptr(:rask_task_key), Ptr{UInt8}, (Ptr{rask_task},), task)

rask_task_func(task) =
    ccall(fptr(:rask_task_func), Ptr{UInt8}, (Ptr{rask_task},), task)

rask_task_nargs(task) =
    ccall(fptr(:rask_task_nargs), Csize_t, (Ptr{rask_task},), task)

rask_task_arg(task, i) =
    ccall(fptr(:rask_task_arg), Ptr{rask_value}, (Ptr{rask_task}, Csize_t), task, i)

rask_task_complete(task, result, err) =
    ccall(fptr(:rask_task_complete), rask_status, (Ptr{rask_task}, Ptr{rask_value}, Ptr{Ptr{rask_error}}), task, result, err)

rask_task_fail(task, message, err) =
    ccall(fptr(:rask_task_fail), rask_status, (Ptr{rask_task}, Cstring, Ptr{Ptr{rask_error}}), task, message, err)

rask_task_fail_exception(task, message, exception, traceback, err) =
    ccall(fptr(:rask_task_fail_exception), rask_status, (Ptr{rask_task}, Cstring, Cstring, Cstring, Ptr{Ptr{rask_error}}), task, message, exception, traceback, err)

# Tasks that submit tasks (src/capi/nested.rs).
rask_callback_client(client, err) =
    ccall(fptr(:rask_callback_client), rask_status, (Ptr{Ptr{rask_client}}, Ptr{Ptr{rask_error}}), client, err)

rask_callback_secede(err) =
    ccall(fptr(:rask_callback_secede), rask_status, (Ptr{Ptr{rask_error}},), err)

rask_callback_rejoin(err) =
    ccall(fptr(:rask_callback_rejoin), rask_status, (Ptr{Ptr{rask_error}},), err)

rask_task_client(task, client, err) =
    ccall(fptr(:rask_task_client), rask_status, (Ptr{rask_task}, Ptr{Ptr{rask_client}}, Ptr{Ptr{rask_error}}), task, client, err)

rask_task_secede(task, err) =
    ccall(fptr(:rask_task_secede), rask_status, (Ptr{rask_task}, Ptr{Ptr{rask_error}}), task, err)

rask_task_free(task) =
    ccall(fptr(:rask_task_free), Cvoid, (Ptr{rask_task},), task)

# schedulers and local clusters
rask_scheduler_start(options, out, err) =
    ccall(fptr(:rask_scheduler_start), rask_status, (Ptr{rask_scheduler_options}, Ptr{Ptr{rask_scheduler}}, Ptr{Ptr{rask_error}}), options, out, err)

rask_scheduler_address(scheduler) =
    ccall(fptr(:rask_scheduler_address), Ptr{UInt8}, (Ptr{rask_scheduler},), scheduler)

rask_scheduler_dashboard_link(scheduler) =
    ccall(fptr(:rask_scheduler_dashboard_link), Ptr{UInt8}, (Ptr{rask_scheduler},), scheduler)

rask_scheduler_stop(scheduler, err) =
    ccall(fptr(:rask_scheduler_stop), rask_status, (Ptr{rask_scheduler}, Ptr{Ptr{rask_error}}), scheduler, err)

rask_scheduler_free(scheduler) =
    ccall(fptr(:rask_scheduler_free), Cvoid, (Ptr{rask_scheduler},), scheduler)

rask_cluster_start(options, registry, out, err) =
    ccall(fptr(:rask_cluster_start), rask_status, (Ptr{rask_cluster_options}, Ptr{rask_registry}, Ptr{Ptr{rask_cluster}}, Ptr{Ptr{rask_error}}), options, registry, out, err)

rask_cluster_address(cluster) =
    ccall(fptr(:rask_cluster_address), Ptr{UInt8}, (Ptr{rask_cluster},), cluster)

rask_cluster_dashboard_link(cluster) =
    ccall(fptr(:rask_cluster_dashboard_link), Ptr{UInt8}, (Ptr{rask_cluster},), cluster)

rask_cluster_client(cluster, out, err) =
    ccall(fptr(:rask_cluster_client), rask_status, (Ptr{rask_cluster}, Ptr{Ptr{rask_client}}, Ptr{Ptr{rask_error}}), cluster, out, err)

rask_cluster_stop(cluster, err) =
    ccall(fptr(:rask_cluster_stop), rask_status, (Ptr{rask_cluster}, Ptr{Ptr{rask_error}}), cluster, err)

rask_cluster_free(cluster) =
    ccall(fptr(:rask_cluster_free), Cvoid, (Ptr{rask_cluster},), cluster)

# clients
rask_client_connect(address, options, out, err) =
    ccall(fptr(:rask_client_connect), rask_status, (Cstring, Ptr{rask_client_options}, Ptr{Ptr{rask_client}}, Ptr{Ptr{rask_error}}), address, options, out, err)

rask_client_close(client, err) =
    ccall(fptr(:rask_client_close), rask_status, (Ptr{rask_client}, Ptr{Ptr{rask_error}}), client, err)

rask_client_free(client) =
    ccall(fptr(:rask_client_free), Cvoid, (Ptr{rask_client},), client)

rask_client_scheduler_address(client) =
    ccall(fptr(:rask_client_scheduler_address), Ptr{UInt8}, (Ptr{rask_client},), client)

rask_client_dashboard_link(client) =
    ccall(fptr(:rask_client_dashboard_link), Ptr{UInt8}, (Ptr{rask_client},), client)

rask_client_submit(client, func, args, nargs, out, err) =
    ccall(fptr(:rask_client_submit), rask_status, (Ptr{rask_client}, Cstring, Ptr{Ptr{rask_arg}}, Csize_t, Ptr{Ptr{rask_future}}, Ptr{Ptr{rask_error}}), client, func, args, nargs, out, err)

rask_client_submit_with(client, func, args, nargs, options, out, err) =
    ccall(fptr(:rask_client_submit_with), rask_status, (Ptr{rask_client}, Cstring, Ptr{Ptr{rask_arg}}, Csize_t, Ptr{rask_submit_options}, Ptr{Ptr{rask_future}}, Ptr{Ptr{rask_error}}), client, func, args, nargs, options, out, err)

rask_client_map(client, func, args, ncalls, nargs_per_call, futures, err) =
    ccall(fptr(:rask_client_map), rask_status, (Ptr{rask_client}, Cstring, Ptr{Ptr{rask_arg}}, Csize_t, Csize_t, Ptr{Ptr{rask_future}}, Ptr{Ptr{rask_error}}), client, func, args, ncalls, nargs_per_call, futures, err)

rask_client_compute(client, graph, keys, nkeys, futures, err) =
    ccall(fptr(:rask_client_compute), rask_status, (Ptr{rask_client}, Ptr{rask_graph}, Ptr{Ptr{UInt8}}, Csize_t, Ptr{Ptr{rask_future}}, Ptr{Ptr{rask_error}}), client, graph, keys, nkeys, futures, err)

rask_client_gather(client, futures, n, timeout_ms, values, err) =
    ccall(fptr(:rask_client_gather), rask_status, (Ptr{rask_client}, Ptr{Ptr{rask_future}}, Csize_t, Int64, Ptr{Ptr{rask_value}}, Ptr{Ptr{rask_error}}), client, futures, n, timeout_ms, values, err)

rask_client_scatter(client, values, n, broadcast, futures, err) =
    ccall(fptr(:rask_client_scatter), rask_status, (Ptr{rask_client}, Ptr{Ptr{rask_value}}, Csize_t, Bool, Ptr{Ptr{rask_future}}, Ptr{Ptr{rask_error}}), client, values, n, broadcast, futures, err)

rask_client_cancel(client, futures, n, err) =
    ccall(fptr(:rask_client_cancel), rask_status, (Ptr{rask_client}, Ptr{Ptr{rask_future}}, Csize_t, Ptr{Ptr{rask_error}}), client, futures, n, err)

rask_client_progress(client, futures, n, callback, user_data, timeout_ms, counts, err) =
    ccall(fptr(:rask_client_progress), rask_status, (Ptr{rask_client}, Ptr{Ptr{rask_future}}, Csize_t, Ptr{Cvoid}, Ptr{Cvoid}, Int64, Ptr{rask_progress_counts}, Ptr{Ptr{rask_error}}), client, futures, n, callback, user_data, timeout_ms, counts, err)
rask_client_report_start(client, since, err) =
    ccall(fptr(:rask_client_report_start), rask_status, (Ptr{rask_client}, Ptr{Cdouble}, Ptr{Ptr{rask_error}}), client, since, err)
rask_client_performance_report(client, since, path, err) =
    ccall(fptr(:rask_client_performance_report), rask_status, (Ptr{rask_client}, Cdouble, Cstring, Ptr{Ptr{rask_error}}), client, since, path, err)
rask_client_wait(client, futures, n, mode, timeout_ms, done, err) =
    ccall(fptr(:rask_client_wait), rask_status, (Ptr{rask_client}, Ptr{Ptr{rask_future}}, Csize_t, Cint, Int64, Ptr{Bool}, Ptr{Ptr{rask_error}}), client, futures, n, mode, timeout_ms, done, err)

rask_client_wait_for_workers(client, n, timeout_ms, count, err) =
    ccall(fptr(:rask_client_wait_for_workers), rask_status, (Ptr{rask_client}, Csize_t, Int64, Ptr{Csize_t}, Ptr{Ptr{rask_error}}), client, n, timeout_ms, count, err)

rask_client_scheduler_info(client, info, err) =
    ccall(fptr(:rask_client_scheduler_info), rask_status, (Ptr{rask_client}, Ptr{rask_scheduler_info}, Ptr{Ptr{rask_error}}), client, info, err)

rask_client_retire_workers(client, workers, n, timeout_ms, moved, lost, err) =
    ccall(fptr(:rask_client_retire_workers), rask_status, (Ptr{rask_client}, Ptr{Ptr{UInt8}}, Csize_t, Int64, Ptr{Csize_t}, Ptr{Csize_t}, Ptr{Ptr{rask_error}}), client, workers, n, timeout_ms, moved, lost, err)
rask_client_replicate(client, futures, n_futures, n, timeout_ms, copied, short_keys, err) =
    ccall(fptr(:rask_client_replicate), rask_status, (Ptr{rask_client}, Ptr{Ptr{rask_future}}, Csize_t, Csize_t, Int64, Ptr{Csize_t}, Ptr{Csize_t}, Ptr{Ptr{rask_error}}), client, futures, n_futures, n, timeout_ms, copied, short_keys, err)
rask_client_rebalance(client, futures, n, timeout_ms, moved, bytes, err) =
    ccall(fptr(:rask_client_rebalance), rask_status, (Ptr{rask_client}, Ptr{Ptr{rask_future}}, Csize_t, Int64, Ptr{Csize_t}, Ptr{UInt64}, Ptr{Ptr{rask_error}}), client, futures, n, timeout_ms, moved, bytes, err)

# futures
rask_future_key(future) =
    ccall(fptr(:rask_future_key), Ptr{UInt8}, (Ptr{rask_future},), future)

rask_future_status(future) =
    ccall(fptr(:rask_future_status), rask_future_state, (Ptr{rask_future},), future)

rask_future_result(future, timeout_ms, out, err) =
    ccall(fptr(:rask_future_result), rask_status, (Ptr{rask_future}, Int64, Ptr{Ptr{rask_value}}, Ptr{Ptr{rask_error}}), future, timeout_ms, out, err)

rask_future_warning(future, out, err) =
    ccall(fptr(:rask_future_warning), rask_status, (Ptr{rask_future}, Ptr{Ptr{rask_value}}, Ptr{Ptr{rask_error}}), future, out, err)

rask_future_clone(future) =
    ccall(fptr(:rask_future_clone), Ptr{rask_future}, (Ptr{rask_future},), future)

rask_future_free(future) =
    ccall(fptr(:rask_future_free), Cvoid, (Ptr{rask_future},), future)

rask_arg_future(future) =
    ccall(fptr(:rask_arg_future), Ptr{rask_arg}, (Ptr{rask_future},), future)

# batches of futures
rask_client_map_msgpack(client, func, calls, len, out, err) =
    ccall(fptr(:rask_client_map_msgpack), rask_status, (Ptr{rask_client}, Cstring, Ptr{UInt8}, Csize_t, Ptr{Ptr{rask_future_batch}}, Ptr{Ptr{rask_error}}), client, func, calls, len, out, err)
rask_client_map_msgpack_shared(client, func, shared, nshared, calls, len, out, err) =
    ccall(fptr(:rask_client_map_msgpack_shared), rask_status, (Ptr{rask_client}, Cstring, Ptr{Ptr{rask_arg}}, Csize_t, Ptr{UInt8}, Csize_t, Ptr{Ptr{rask_future_batch}}, Ptr{Ptr{rask_error}}), client, func, shared, nshared, calls, len, out, err)

rask_client_gather_msgpack(client, futures, n, timeout_ms, data, len, err) =
    ccall(fptr(:rask_client_gather_msgpack), rask_status, (Ptr{rask_client}, Ptr{Ptr{rask_future}}, Csize_t, Int64, Ptr{Ptr{UInt8}}, Ptr{Csize_t}, Ptr{Ptr{rask_error}}), client, futures, n, timeout_ms, data, len, err)

rask_future_batch_len(batch) =
    ccall(fptr(:rask_future_batch_len), Csize_t, (Ptr{rask_future_batch},), batch)

rask_future_batch_keys(batch, data, len, err) =
    ccall(fptr(:rask_future_batch_keys), rask_status, (Ptr{rask_future_batch}, Ptr{Ptr{UInt8}}, Ptr{Csize_t}, Ptr{Ptr{rask_error}}), batch, data, len, err)

rask_future_batch_get(batch, i, out, err) =
    ccall(fptr(:rask_future_batch_get), rask_status, (Ptr{rask_future_batch}, Csize_t, Ptr{Ptr{rask_future}}, Ptr{Ptr{rask_error}}), batch, i, out, err)

rask_future_batch_release(batch, indices, n, err) =
    ccall(fptr(:rask_future_batch_release), rask_status, (Ptr{rask_future_batch}, Ptr{Csize_t}, Csize_t, Ptr{Ptr{rask_error}}), batch, indices, n, err)

rask_future_batch_status(batch, indices, n, states, err) =
    ccall(fptr(:rask_future_batch_status), rask_status, (Ptr{rask_future_batch}, Ptr{Csize_t}, Csize_t, Ptr{rask_future_state}, Ptr{Ptr{rask_error}}), batch, indices, n, states, err)

rask_future_batch_gather(batch, indices, n, timeout_ms, data, len, err) =
    ccall(fptr(:rask_future_batch_gather), rask_status, (Ptr{rask_future_batch}, Ptr{Csize_t}, Csize_t, Int64, Ptr{Ptr{UInt8}}, Ptr{Csize_t}, Ptr{Ptr{rask_error}}), batch, indices, n, timeout_ms, data, len, err)

rask_future_batch_free(batch) =
    ccall(fptr(:rask_future_batch_free), Cvoid, (Ptr{rask_future_batch},), batch)

rask_as_completed_new(client, futures, n, out, err) =
    ccall(fptr(:rask_as_completed_new), rask_status, (Ptr{rask_client}, Ptr{Ptr{rask_future}}, Csize_t, Ptr{Ptr{rask_as_completed}}, Ptr{Ptr{rask_error}}), client, futures, n, out, err)

rask_as_completed_add(ac, future, err) =
    ccall(fptr(:rask_as_completed_add), rask_status, (Ptr{rask_as_completed}, Ptr{rask_future}, Ptr{Ptr{rask_error}}), ac, future, err)

rask_as_completed_next(ac, timeout_ms, out, err) =
    ccall(fptr(:rask_as_completed_next), rask_status, (Ptr{rask_as_completed}, Int64, Ptr{Ptr{rask_future}}, Ptr{Ptr{rask_error}}), ac, timeout_ms, out, err)

rask_as_completed_count(ac) =
    ccall(fptr(:rask_as_completed_count), Csize_t, (Ptr{rask_as_completed},), ac)

rask_as_completed_free(ac) =
    ccall(fptr(:rask_as_completed_free), Cvoid, (Ptr{rask_as_completed},), ac)

# coordination
rask_client_variable_set(client, name, value, future, err) =
    ccall(fptr(:rask_client_variable_set), rask_status, (Ptr{rask_client}, Cstring, Ptr{rask_value}, Ptr{rask_future}, Ptr{Ptr{rask_error}}), client, name, value, future, err)

rask_client_variable_get(client, name, timeout_ms, out_value, out_future, err) =
    ccall(fptr(:rask_client_variable_get), rask_status, (Ptr{rask_client}, Cstring, Int64, Ptr{Ptr{rask_value}}, Ptr{Ptr{rask_future}}, Ptr{Ptr{rask_error}}), client, name, timeout_ms, out_value, out_future, err)

rask_client_variable_delete(client, name, err) =
    ccall(fptr(:rask_client_variable_delete), rask_status, (Ptr{rask_client}, Cstring, Ptr{Ptr{rask_error}}), client, name, err)

rask_client_queue_create(client, name, maxsize, err) =
    ccall(fptr(:rask_client_queue_create), rask_status, (Ptr{rask_client}, Cstring, UInt64, Ptr{Ptr{rask_error}}), client, name, maxsize, err)

rask_client_queue_put(client, name, value, future, timeout_ms, err) =
    ccall(fptr(:rask_client_queue_put), rask_status, (Ptr{rask_client}, Cstring, Ptr{rask_value}, Ptr{rask_future}, Int64, Ptr{Ptr{rask_error}}), client, name, value, future, timeout_ms, err)

rask_client_queue_get(client, name, timeout_ms, out_value, out_future, err) =
    ccall(fptr(:rask_client_queue_get), rask_status, (Ptr{rask_client}, Cstring, Int64, Ptr{Ptr{rask_value}}, Ptr{Ptr{rask_future}}, Ptr{Ptr{rask_error}}), client, name, timeout_ms, out_value, out_future, err)

rask_client_queue_size(client, name, out, err) =
    ccall(fptr(:rask_client_queue_size), rask_status, (Ptr{rask_client}, Cstring, Ptr{UInt64}, Ptr{Ptr{rask_error}}), client, name, out, err)

rask_client_lease_acquire(client, name, max_leases, timeout_ms, out_lease, err) =
    ccall(fptr(:rask_client_lease_acquire), rask_status, (Ptr{rask_client}, Cstring, UInt32, Int64, Ptr{UInt64}, Ptr{Ptr{rask_error}}), client, name, max_leases, timeout_ms, out_lease, err)

rask_client_lease_release(client, name, lease, err) =
    ccall(fptr(:rask_client_lease_release), rask_status, (Ptr{rask_client}, Cstring, UInt64, Ptr{Ptr{rask_error}}), client, name, lease, err)

rask_client_event_set(client, name, err) =
    ccall(fptr(:rask_client_event_set), rask_status, (Ptr{rask_client}, Cstring, Ptr{Ptr{rask_error}}), client, name, err)

rask_client_event_clear(client, name, err) =
    ccall(fptr(:rask_client_event_clear), rask_status, (Ptr{rask_client}, Cstring, Ptr{Ptr{rask_error}}), client, name, err)

rask_client_event_wait(client, name, timeout_ms, out_set, err) =
    ccall(fptr(:rask_client_event_wait), rask_status, (Ptr{rask_client}, Cstring, Int64, Ptr{Bool}, Ptr{Ptr{rask_error}}), client, name, timeout_ms, out_set, err)

rask_client_publish_dataset(client, name, value, future, replace, err) =
    ccall(fptr(:rask_client_publish_dataset), rask_status, (Ptr{rask_client}, Cstring, Ptr{rask_value}, Ptr{rask_future}, Bool, Ptr{Ptr{rask_error}}), client, name, value, future, replace, err)

rask_client_get_dataset(client, name, out_value, out_future, err) =
    ccall(fptr(:rask_client_get_dataset), rask_status, (Ptr{rask_client}, Cstring, Ptr{Ptr{rask_value}}, Ptr{Ptr{rask_future}}, Ptr{Ptr{rask_error}}), client, name, out_value, out_future, err)

rask_client_unpublish_dataset(client, name, err) =
    ccall(fptr(:rask_client_unpublish_dataset), rask_status, (Ptr{rask_client}, Cstring, Ptr{Ptr{rask_error}}), client, name, err)

rask_client_list_datasets(client, out, err) =
    ccall(fptr(:rask_client_list_datasets), rask_status, (Ptr{rask_client}, Ptr{Ptr{rask_value}}, Ptr{Ptr{rask_error}}), client, out, err)

rask_client_fire_and_forget(client, futures, n, err) =
    ccall(fptr(:rask_client_fire_and_forget), rask_status, (Ptr{rask_client}, Ptr{Ptr{rask_future}}, Csize_t, Ptr{Ptr{rask_error}}), client, futures, n, err)

rask_client_publish(client, topic, value, err) =
    ccall(fptr(:rask_client_publish), rask_status, (Ptr{rask_client}, Cstring, Ptr{rask_value}, Ptr{Ptr{rask_error}}), client, topic, value, err)

rask_client_subscribe(client, topic, out, err) =
    ccall(fptr(:rask_client_subscribe), rask_status, (Ptr{rask_client}, Cstring, Ptr{Ptr{rask_subscription}}, Ptr{Ptr{rask_error}}), client, topic, out, err)

rask_subscription_get(sub, timeout_ms, out, err) =
    ccall(fptr(:rask_subscription_get), rask_status, (Ptr{rask_subscription}, Int64, Ptr{Ptr{rask_value}}, Ptr{Ptr{rask_error}}), sub, timeout_ms, out, err)

rask_subscription_free(sub) =
    ccall(fptr(:rask_subscription_free), Cvoid, (Ptr{rask_subscription},), sub)

# workers
rask_worker_start(scheduler_address, options, registry, out, err) =
    ccall(fptr(:rask_worker_start), rask_status, (Cstring, Ptr{rask_worker_options}, Ptr{rask_registry}, Ptr{Ptr{rask_worker}}, Ptr{Ptr{rask_error}}), scheduler_address, options, registry, out, err)

rask_worker_address(worker) =
    ccall(fptr(:rask_worker_address), Ptr{UInt8}, (Ptr{rask_worker},), worker)

rask_worker_name(worker) =
    ccall(fptr(:rask_worker_name), Ptr{UInt8}, (Ptr{rask_worker},), worker)

rask_worker_next_task(worker, timeout_ms, out, err) =
    ccall(fptr(:rask_worker_next_task), rask_status, (Ptr{rask_worker}, Int64, Ptr{Ptr{rask_task}}, Ptr{Ptr{rask_error}}), worker, timeout_ms, out, err)

rask_worker_use_host(worker, host, err) =
    ccall(fptr(:rask_worker_use_host), rask_status, (Ptr{rask_worker}, Ptr{rask_host}, Ptr{Ptr{rask_error}}), worker, host, err)
rask_worker_take_tasks(worker, max, timeout_ms, data, len, err) =
    ccall(fptr(:rask_worker_take_tasks), rask_status, (Ptr{rask_worker}, Csize_t, Int64, Ptr{Ptr{UInt8}}, Ptr{Csize_t}, Ptr{Ptr{rask_error}}), worker, max, timeout_ms, data, len, err)

rask_worker_complete_tasks(worker, results, len, err) =
    ccall(fptr(:rask_worker_complete_tasks), rask_status, (Ptr{rask_worker}, Ptr{UInt8}, Csize_t, Ptr{Ptr{rask_error}}), worker, results, len, err)

rask_worker_detach_task(worker, id, out, err) =
    ccall(fptr(:rask_worker_detach_task), rask_status, (Ptr{rask_worker}, UInt64, Ptr{Ptr{rask_task}}, Ptr{Ptr{rask_error}}), worker, id, out, err)

rask_worker_secede_task(worker, id, results, len, out, err) =
    ccall(fptr(:rask_worker_secede_task), rask_status, (Ptr{rask_worker}, UInt64, Ptr{UInt8}, Csize_t, Ptr{Ptr{rask_task}}, Ptr{Ptr{rask_error}}), worker, id, results, len, out, err)

rask_worker_fd(worker, out, err) =
    ccall(fptr(:rask_worker_fd), rask_status, (Ptr{rask_worker}, Ptr{Cint}, Ptr{Ptr{rask_error}}), worker, out, err)
rask_client_fd(client, out, err) =
    ccall(fptr(:rask_client_fd), rask_status, (Ptr{rask_client}, Ptr{Cint}, Ptr{Ptr{rask_error}}), client, out, err)
rask_client_fd_clear(client, err) =
    ccall(fptr(:rask_client_fd_clear), rask_status, (Ptr{rask_client}, Ptr{Ptr{rask_error}}), client, err)
rask_worker_wait(worker, timeout_ms, err) =
    ccall(fptr(:rask_worker_wait), rask_status, (Ptr{rask_worker}, Int64, Ptr{Ptr{rask_error}}), worker, timeout_ms, err)

rask_worker_stop_reason(worker) =
    ccall(fptr(:rask_worker_stop_reason), Ptr{UInt8}, (Ptr{rask_worker},), worker)

rask_worker_stop(worker, err) =
    ccall(fptr(:rask_worker_stop), rask_status, (Ptr{rask_worker}, Ptr{Ptr{rask_error}}), worker, err)

rask_worker_retire(worker, err) =
    ccall(fptr(:rask_worker_retire), rask_status, (Ptr{rask_worker}, Ptr{Ptr{rask_error}}), worker, err)

rask_worker_free(worker) =
    ccall(fptr(:rask_worker_free), Cvoid, (Ptr{rask_worker},), worker)

rask_signal_watch(signal, fd, err) =
    ccall(fptr(:rask_signal_watch), rask_status, (Cint, Ptr{Cint}, Ptr{Ptr{rask_error}}), signal, fd, err)

end # module LibRask

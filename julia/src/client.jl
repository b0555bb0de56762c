# The distributed part, client side: a scheduler or a whole local cluster in
# this process, a `Client` connected to any scheduler, and `Future`s on the
# keys it submits. See docs/julia.md ("Clusters and clients").
#
# Every rask call that waits blocks the Julia thread that makes it: rask's C
# code knows nothing of Julia's tasks. So Rask never blocks for long: a
# future's result, gather, wait and as_completed look without blocking and
# wait in Julia's event loop on the client's descriptor (`waited`); a
# worker's loop on the worker's (worker.jl). The other waits call rask with
# a short timeout, and between two calls `yield()`, so that other Julia tasks
# (a `Rask.Worker` served with `@async` in this very process, a timer,
# Ctrl-C) get their turn. See `sliced`.

# ------------------------------------------------------------ waiting in slices

"""
    Rask.POLL_MS[]

The longest a single rask call that waits may block the Julia thread, in
milliseconds (50). While two or more Julia tasks of this process wait on rask
at once (say a `fetch` and a `Rask.Worker` served with `@async`), they take
turns instead: each only looks (timeout 0) and yields for its first
`Rask.SPIN_US[]` microseconds of waiting, then blocks 1 ms at a time.
"""
const POLL_MS = Ref(50)

"""See `Rask.POLL_MS`: how long (µs) a wait only looks and yields while others wait too (2000)."""
const SPIN_US = Ref(2000)

# Julia tasks of this process inside `sliced` (client waits, worker loops).
const WAITERS = Threads.Atomic{Int}(0)

# The slice of a wait that started at `t0` (time_ns()).
function slice_ms(t0::UInt64)
    WAITERS[] > 1 || return POLL_MS[]
    return time_ns() - t0 < UInt64(SPIN_US[]) * 1000 ? 0 : 1
end

# Milliseconds from `timeout` in seconds (nothing: forever): the deadline
# `sliced` works to.
deadline(timeout::Nothing) = Inf
function deadline(timeout::Real)
    timeout >= 0 || throw(ArgumentError("a timeout must be >= 0 seconds (or nothing: no limit), not $timeout"))
    return time() + timeout
end

"""
    sliced(f, timeout) -> rask_status

Calls `f(ms)`, a rask call that waits up to `ms` milliseconds and returns
`RASK_TIMEOUT` if nothing happened in that time, again and again with short
`ms` (`slice_ms`), `yield()`ing in between, until it returns anything else
or `timeout` seconds (nothing: no limit) have passed. Returns the last status.
A `timeout` of 0 is one call that just looks.
"""
function sliced(f, timeout::Union{Nothing,Real})
    until = deadline(timeout)
    t0 = time_ns()
    Threads.atomic_add!(WAITERS, 1)
    try
        while true
            left = until == Inf ? typemax(Int64) : max(0, floor(Int64, (until - time()) * 1000))
            st = f(min(Int64(slice_ms(t0)), left))
            (st == LibRask.RASK_TIMEOUT && (left > 0 || until - time() > 0)) || return st
            yield()
        end
    finally
        Threads.atomic_sub!(WAITERS, 1)
    end
end

timeout_error(what, timeout) = RaskError(LibRask.RASK_TIMEOUT, "timed out after $(timeout) s waiting for $what")

# A C string for an options struct: C_NULL for nothing (the default).
cstr(::Nothing) = Ptr{UInt8}(C_NULL)
function cstr(s::AbstractString)
    occursin('\0', s) && throw(ArgumentError("a string passed to rask must not contain NUL: $(repr(s))"))
    return pointer(s)
end
strings(xs...) = Any[x === nothing ? nothing : String(x) for x in xs]

ms(::Nothing) = Int64(0)              # 0: rask's default
ms(seconds::Real) = seconds > 0 ? max(Int64(1), round(Int64, seconds * 1000)) : Int64(0)

# ---------------------------------------------------------------- remote errors

"""
    Rask.RemoteError

Why a task failed on a cluster worker: the `cause` of the `RaskError`
(`RASK_ERR_TASK_FAILED`) that `fetch`, `gather` etc. throw for it.

- `key`: the key that was asked for;
- `failed`: the key whose task failed: `key` itself or a task it depends on;
- `func`: that task's function;
- `worker`: the worker it failed on (its data address);
- `message`: the function's own message (a Julia worker sends
  `sprint(showerror, exception)`);
- `exception`: the name of the exception's type, as the worker reported it
  (`"ErrorException"`, `"ValueError"` from a Python worker); `""` if none;
- `backtrace`: the remote backtrace as text (Julia and Python workers
  report it), shown by `showerror`; `""` if none.
"""
struct RemoteError <: Exception
    key::String
    failed::String
    func::String
    worker::String
    message::String
    exception::String
    backtrace::String
end
RemoteError(key, failed, func, worker, message) = RemoteError(key, failed, func, worker, message, "", "")

function Base.showerror(io::IO, e::RemoteError)
    print(io, "Rask.RemoteError: task '", e.failed, "' (", e.func, ") failed on ", e.worker)
    e.failed == e.key || print(io, " (needed by '", e.key, "')")
    print(io, ": ", e.message)
    if !isempty(e.backtrace)
        print(io, "\n\nremote backtrace (on ", e.worker, "):\n", rstrip(e.backtrace))
    end
end

# The message of a remote task failure, as rask writes it:
#   task 'KEY' (FUNC) failed on WORKER: MESSAGE
#   task 'KEY' failed because its dependency 'DEP' (FUNC) failed on WORKER: MESSAGE
# Keys may hold quotes and parentheses (Dask-style keys), so KEY is one of the
# keys asked for rather than whatever a pattern would take.
function remote_error(msg::AbstractString, keys)
    for key in keys
        prefix = "task '$key' "
        startswith(msg, prefix) || continue
        rest = SubString(msg, ncodeunits(prefix) + 1)
        m = match(r"^\(([^()]*)\) failed on (\S+?): (.*)$"s, rest)
        m === nothing || return RemoteError(key, key, m[1], m[2], m[3])
        m = match(r"^failed because its dependency '(.*?)' \(([^()]*)\) failed on (\S+?): (.*)$"s, rest)
        m === nothing || return RemoteError(key, m[1], m[2], m[3], m[4])
    end
    return nothing
end

# The RaskError of a failed status; for a remote task failure, with its
# RemoteError as cause.
function cluster_error(st::LibRask.rask_status, err::ErrRef, keys)
    p = err[]
    text(s) = s == C_NULL ? "" : unsafe_string(s)
    exception = p == C_NULL ? "" : text(LibRask.rask_error_exception(p))
    backtrace = p == C_NULL ? "" : text(LibRask.rask_error_traceback(p))
    e = take_error(st, err)
    e.status == LibRask.RASK_ERR_TASK_FAILED || return e
    r = remote_error(e.message, keys)
    r === nothing || (r = RemoteError(r.key, r.failed, r.func, r.worker, r.message, exception, backtrace))
    return RaskError(e.status, e.message, r)
end

# ------------------------------------------------------------------ Scheduler

# The dashboard of a scheduler's options: (address or C_NULL, no_dashboard).
const DEFAULT_DASHBOARD = "127.0.0.1:8787"
dashboard_string(a::Nothing) = nothing
dashboard_string(a::AbstractString) = String(a)
dashboard_string(a) = throw(ArgumentError("dashboard_address must be \"HOST:PORT\" or nothing, not $(repr(a))"))
link_or_nothing(p::Ptr{UInt8}) = (s = unsafe_string(p); isempty(s) ? nothing : s)

"""
    Rask.Scheduler(; host = "127.0.0.1", port = 0, token = nothing, name = nothing,
                   heartbeat_timeout = nothing, tls_ca_file = nothing, tls_cert = nothing,
                   tls_key = nothing, dashboard_address = "127.0.0.1:8787")

A rask scheduler running in this process (on rask's threads), the same as
the `rask-scheduler` program. `port = 0` takes any free port:
`Rask.address(s)` says where workers and clients connect. `close(s)` shuts it
down (its workers are told to close, its clients' pending futures fail).
With `tls_ca_file`, `tls_cert` and `tls_key` (PEM paths, all three or none)
it serves TLS only, requires client certificates signed by the CA, and its
address is `"tls://HOST:PORT"`. It serves the web dashboard and Prometheus
`/metrics` at `dashboard_address` (`"HOST:PORT"`, port 0: any free port; the
default, `"127.0.0.1:8787"` as Dask's, takes a free port when 8787 is taken;
`nothing`: no dashboard): `Rask.dashboard_link(s)`.
"""
mutable struct Scheduler
    ptr::Ptr{LibRask.rask_scheduler}
    address::String
    dashboard_link::Union{Nothing,String}
    function Scheduler(; host = nothing, port::Integer = 0, token = nothing, name = nothing,
                       heartbeat_timeout::Union{Nothing,Real} = nothing, tls_ca_file = nothing,
                       tls_cert = nothing, tls_key = nothing, dashboard_address = DEFAULT_DASHBOARD)
        h, n, t, ca, ce, k = strings(host, name, token, tls_ca_file, tls_cert, tls_key)
        d = dashboard_string(dashboard_address)
        out = Ref{Ptr{LibRask.rask_scheduler}}(C_NULL)
        err = errref()
        GC.@preserve h n t ca ce k d begin
            opts = Ref(LibRask.rask_scheduler_options(cstr(h), UInt16(port), cstr(n), cstr(t),
                                                      ms(heartbeat_timeout), cstr(ca), cstr(ce), cstr(k),
                                                      cstr(d), d === nothing))
            check(LibRask.rask_scheduler_start(opts, out, err), err)
        end
        s = new(out[], unsafe_string(LibRask.rask_scheduler_address(out[])),
                link_or_nothing(LibRask.rask_scheduler_dashboard_link(out[])))
        return finalizer(close, s)
    end
end

function Base.close(s::Scheduler)
    p = s.ptr
    s.ptr = C_NULL
    LibRask.rask_scheduler_free(p)
    return nothing
end
Base.isopen(s::Scheduler) = s.ptr != C_NULL
Base.show(io::IO, s::Scheduler) = print(io, "Rask.Scheduler(", repr(s.address), isopen(s) ? "" : "; closed", ")")

# -------------------------------------------------------------- LocalCluster

"""
    Rask.LocalCluster(; workers = 2, threads_per_worker = 1, host = "127.0.0.1",
                      port = 0, token = nothing, timeout = 10, tls_ca_file = nothing,
                      tls_cert = nothing, tls_key = nothing, dashboard_address = "127.0.0.1:8787")

A scheduler and `workers` workers in this process, talking over loopback TCP
as a real cluster does; returns once every worker has registered. Its
workers run rask's builtins; Julia functions are served by a `Rask.Worker`
joining at `Rask.address(cluster)` (in this process or another). Connect with
`Client(cluster)`. `close(cluster)` shuts it all down (idempotent; the
garbage collector does it too, once no client holds the cluster). With
`tls_ca_file`, `tls_cert` and `tls_key` every connection uses TLS with that
certificate (`Client(cluster)` too; a `Rask.Worker` joining needs the same
keywords). `dashboard_address` is where its scheduler serves the dashboard,
as for `Rask.Scheduler` (`nothing`: none); `Rask.dashboard_link(cluster)`.
"""
mutable struct LocalCluster
    ptr::Ptr{LibRask.rask_cluster}
    address::String
    dashboard_link::Union{Nothing,String}
    function LocalCluster(; workers::Integer = 2, threads_per_worker::Integer = 1, host = nothing,
                          port::Integer = 0, token = nothing, timeout::Union{Nothing,Real} = nothing,
                          tls_ca_file = nothing, tls_cert = nothing, tls_key = nothing,
                          dashboard_address = DEFAULT_DASHBOARD)
        workers >= 1 || throw(ArgumentError("a LocalCluster needs at least one worker, not $workers"))
        threads_per_worker >= 1 || throw(ArgumentError("threads_per_worker must be >= 1, not $threads_per_worker"))
        h, t, ca, ce, k = strings(host, token, tls_ca_file, tls_cert, tls_key)
        d = dashboard_string(dashboard_address)
        out = Ref{Ptr{LibRask.rask_cluster}}(C_NULL)
        err = errref()
        GC.@preserve h t ca ce k d begin
            opts = Ref(LibRask.rask_cluster_options(UInt32(workers), UInt32(threads_per_worker), cstr(h),
                                                    UInt16(port), cstr(t), ms(timeout), cstr(ca),
                                                    cstr(ce), cstr(k), cstr(d), d === nothing))
            check(LibRask.rask_cluster_start(opts, C_NULL, out, err), err)
        end
        c = new(out[], unsafe_string(LibRask.rask_cluster_address(out[])),
                link_or_nothing(LibRask.rask_cluster_dashboard_link(out[])))
        return finalizer(close, c)
    end
end

function Base.unsafe_convert(::Type{Ptr{LibRask.rask_cluster}}, c::LocalCluster)
    c.ptr == C_NULL && throw(ArgumentError("the Rask.LocalCluster is closed"))
    return c.ptr
end

function Base.close(c::LocalCluster)
    p = c.ptr
    c.ptr = C_NULL
    LibRask.rask_cluster_free(p)
    return nothing
end
Base.isopen(c::LocalCluster) = c.ptr != C_NULL
Base.show(io::IO, c::LocalCluster) = print(io, "Rask.LocalCluster(", repr(c.address), isopen(c) ? "" : "; closed", ")")

"""
    Rask.address(x) -> String

Where to connect: the scheduler's address (`"tcp://HOST:PORT"`, or
`"tls://HOST:PORT"` with TLS) of a
`Scheduler`, a `LocalCluster` or a `Client`; a `Worker`'s own data address.
"""
address(s::Union{Scheduler,LocalCluster}) = s.address

"""
    Rask.dashboard_link(x) -> Union{String,Nothing}

The scheduler's web dashboard (`"http://HOST:PORT/status"`; `/metrics` and
`/report` are beside it) of a `Scheduler`, a `LocalCluster` or a `Client` (as
the scheduler said when the client connected), or `nothing` when it serves
none.
"""
dashboard_link(s::Union{Scheduler,LocalCluster}) = s.dashboard_link

# ------------------------------------------------------------------- Client

"""
    Client(address::AbstractString; token = nothing, timeout = 10, name = "rask-julia-client",
           tls_ca_file = nothing, tls_cert = nothing, tls_key = nothing)
    Client(cluster::LocalCluster)
    Client(; workers = 2, threads_per_worker = 1)

A connection to a rask scheduler (`"tcp://HOST:PORT"`), to a `LocalCluster`,
or to a new `LocalCluster` of its own (closed with the client). `timeout`
bounds connecting and each request to the scheduler (not waiting for
results). `tls_ca_file`, `tls_cert`, `tls_key` (PEM paths, all three or
none) are needed for a `"tls://HOST:PORT"` scheduler and its workers. Then:

- `submit(client, fname, args...)` runs a function on the cluster: a `Future`;
- `fetch(future)` (or `Rask.result(future; timeout)`) its value;
- `gather`, `scatter`, `Rask.cancel`, `wait`, `as_completed`, `Rask.status`;
- `compute(client, graph, keys)`: futures on the keys of a `Graph`.

`close(client)` releases every key the client wanted and disconnects
(idempotent; the garbage collector does it too, once no future of the client
is left).
"""
# How a client's waits go through Julia's event loop: `rask_client_fd` (a
# descriptor that becomes readable when a future changed, until cleared),
# watched by one "pump" Julia task that clears it and wakes every Julia task
# waiting on the client (`changed`); each then looks again with calls that
# do not block. The pump runs while tasks wait. The descriptor is the
# client's: the watcher is closed (libuv stops polling it) before the client
# is freed, which closes it.
mutable struct ClientEvents
    ptr::Ptr{LibRask.rask_client}    # C_NULL once the client is closed
    watcher::FileWatching.FDWatcher
    changed::Condition
    waiting::Int                     # Julia tasks in `wait_change`
    pumping::Bool
end

# The futures of one `map`: one `rask_future_batch` that every one of its
# `Future`s shares (each is the batch and an index; no C call makes it).
# Freed by the garbage collector once none of its futures is left, which
# releases the keys still held (rask_future_batch_free).
mutable struct FutureBatch
    ptr::Ptr{LibRask.rask_future_batch}    # C_NULL once freed
    n::Int
    keys::Union{Nothing,Vector{String}}    # read from rask when first asked
    # 0-based entries whose Future the garbage collector took, to release
    # (rask_future_batch_release) in one call: see `drop_entry!`.
    dropped::Vector{Csize_t}
    function FutureBatch(ptr::Ptr{LibRask.rask_future_batch})
        b = new(nonnull(ptr, "a rask future batch"), Int(LibRask.rask_future_batch_len(ptr)), nothing,
                Csize_t[])
        return finalizer(free_batch, b)
    end
end

function free_batch(b::FutureBatch)
    p = b.ptr
    b.ptr = C_NULL
    LibRask.rask_future_batch_free(p)
    return nothing
end

mutable struct Client
    ptr::Ptr{LibRask.rask_client}
    address::String
    cluster::Union{Nothing,LocalCluster}   # kept alive while the client is
    owns_cluster::Bool
    dashboard_link::Union{Nothing,String}
    events::Union{Nothing,ClientEvents}    # made by the first wait
    # Batches with entries dropped by the garbage collector and not yet
    # released: released by the client's next call (`flush_dropped!`).
    dropping::Vector{FutureBatch}

    function Client(ptr::Ptr{LibRask.rask_client}, cluster, owns::Bool)
        c = new(ptr, unsafe_string(LibRask.rask_client_scheduler_address(ptr)), cluster, owns,
                link_or_nothing(LibRask.rask_client_dashboard_link(ptr)), nothing, FutureBatch[])
        return finalizer(close, c)
    end
end

function client_events(c::Client)
    ev = c.events
    ev === nothing || return ev
    fd = Ref{Cint}(-1)
    err = errref()
    check(LibRask.rask_client_fd(c, fd, err), err)
    ev = ClientEvents(c.ptr, FileWatching.FDWatcher(RawFD(fd[]), true, false), Condition(), 0, false)
    c.events = ev
    return ev
end

function pump(ev::ClientEvents)
    try
        while ev.waiting > 0 && ev.ptr != C_NULL
            wait(ev.watcher)
            ev.ptr == C_NULL && break
            LibRask.rask_client_fd_clear(ev.ptr, C_NULL)   # before anyone looks
            notify(ev.changed)
        end
    catch e
        ev.ptr == C_NULL || rethrow()                    # the watcher was closed
    finally
        ev.pumping = false
        notify(ev.changed)
    end
end

# Before the client is freed: libuv stops watching its descriptor, the pump
# (if any) wakes and ends.
function close_events(ev::ClientEvents)
    ev.ptr = C_NULL
    close(ev.watcher)
end

# Waits until the client's descriptor says something changed, or `until`
# (a `time()`) has passed. Other Julia tasks run meanwhile.
function wait_change(c::Client, until::Float64)
    ev = client_events(c)
    ev.waiting += 1
    if !ev.pumping
        ev.pumping = true
        @async pump(ev)
    end
    timer = until == Inf ? nothing : Timer(_ -> notify(ev.changed), max(0.0, until - time()))
    try
        wait(ev.changed)
    finally
        timer === nothing || close(timer)
        ev.waiting -= 1
    end
    return nothing
end

"""
    waited(f, client, timeout) -> rask_status

Calls `f(0)`, a rask call of `client` that looks without blocking and
returns `RASK_TIMEOUT` if what it waits for is not there yet, again each time
the client's descriptor says something changed, until it returns anything
else or `timeout` seconds (nothing: no limit) have passed. The Julia thread
is never blocked meanwhile: it waits in Julia's event loop.
"""
function waited(f, c::Client, timeout::Union{Nothing,Real})
    until = deadline(timeout)
    while true
        st = f(0)
        (st == LibRask.RASK_TIMEOUT && time() < until) || return st
        wait_change(c, until)
    end
end

"""
    wait_in_order(client, ptrs, timeout) -> remaining timeout

Waits through Julia's event loop (as `waited`) until none of the futures
`ptrs` is pending or `timeout` seconds have passed, looking at the futures
in order and each only until it is no longer pending: a wake-up costs the
futures that ended since the last one, not all of them. (Looking at all
of them at every wake-up, as one `rask_client_gather` or `rask_client_wait`
call does, made `gather(map(client, f, 1:100_000))` quadratic.) Returns
the time left for the call that follows.
"""
function wait_in_order(c::Client, ptrs::Vector{Ptr{LibRask.rask_future}}, timeout::Union{Nothing,Real})
    until = deadline(timeout)
    i, n = 1, length(ptrs)
    while true
        while i <= n && LibRask.rask_future_status(ptrs[i]) != LibRask.RASK_FUTURE_PENDING
            i += 1
        end
        (i > n || time() >= until) && break
        wait_change(c, until)
    end
    return timeout === nothing ? nothing : max(0.0, until - time())
end

function Client(address::AbstractString; token = nothing, timeout::Union{Nothing,Real} = nothing,
                name = "rask-julia-client", tls_ca_file = nothing, tls_cert = nothing,
                tls_key = nothing)
    a, n, t, ca, ce, k = strings(address, name, token, tls_ca_file, tls_cert, tls_key)
    out = Ref{Ptr{LibRask.rask_client}}(C_NULL)
    err = errref()
    GC.@preserve n t ca ce k begin
        opts = Ref(LibRask.rask_client_options(cstr(n), cstr(t), ms(timeout), cstr(ca), cstr(ce),
                                               cstr(k)))
        check(LibRask.rask_client_connect(a, opts, out, err), err)
    end
    return Client(out[], nothing, false)
end

function Client(cluster::LocalCluster)
    out = Ref{Ptr{LibRask.rask_client}}(C_NULL)
    err = errref()
    check(LibRask.rask_cluster_client(cluster, out, err), err)
    return Client(out[], cluster, false)
end

function Client(; kw...)
    cluster = LocalCluster(; kw...)
    out = Ref{Ptr{LibRask.rask_client}}(C_NULL)
    err = errref()
    try
        check(LibRask.rask_cluster_client(cluster, out, err), err)
    catch
        close(cluster)
        rethrow()
    end
    return Client(out[], cluster, true)
end

function Base.unsafe_convert(::Type{Ptr{LibRask.rask_client}}, c::Client)
    c.ptr == C_NULL && throw(ArgumentError("the Rask.Client is closed"))
    return c.ptr
end

function Base.close(c::Client)
    p = c.ptr
    c.ptr = C_NULL
    ev = c.events
    ev === nothing || close_events(ev)
    LibRask.rask_client_free(p)
    if c.owns_cluster && c.cluster !== nothing
        close(c.cluster)
    end
    return nothing
end
Base.isopen(c::Client) = c.ptr != C_NULL
Base.show(io::IO, c::Client) = print(io, "Rask.Client(", repr(c.address), isopen(c) ? "" : "; closed", ")")
address(c::Client) = c.address
dashboard_link(c::Client) = c.dashboard_link

"""
    Rask.wait_for_workers(client, n; timeout = 10) -> Int

Waits until the scheduler knows at least `n` workers and returns how many it
knows; throws a `RaskError` (`RASK_TIMEOUT`) after `timeout` seconds.
"""
function wait_for_workers(c::Client, n::Integer; timeout::Union{Nothing,Real} = 10)
    count = Ref{Csize_t}(0)
    err = errref()
    st = sliced(ms -> LibRask.rask_client_wait_for_workers(c, n, ms, count, err), timeout)
    st == LibRask.RASK_TIMEOUT && throw(timeout_error("$n workers (there are $(count[]))", timeout))
    check(st, err)
    return Int(count[])
end

"""
    Rask.retire_workers(client, workers; timeout = nothing) -> (moved = n, lost = n)

Retires `workers` gracefully (each a worker's data address, name, or id, as
a string): they get no new tasks, hand back the ones they had not started,
finish the running ones, and the results only they hold are copied to other
workers before they leave, so nothing is recomputed. Returns the number of
keys copied and of keys no other worker could take, once they have all
left; throws a `RaskError` (`RASK_TIMEOUT`) after `timeout` seconds (the
retirement goes on), or (`RASK_ERR_PROTOCOL`, `unknown-worker`) when a name
matches no worker.
"""
function retire_workers(c::Client, workers::AbstractVector; timeout::Union{Nothing,Real} = nothing)
    names = String[string(w) for w in workers]
    ptrs = Ptr{UInt8}[pointer(n) for n in names]
    moved = Ref{Csize_t}(0)
    lost = Ref{Csize_t}(0)
    err = errref()
    ms = timeout === nothing ? Int64(-1) : Int64(max(round(Int64, timeout * 1000), 0))
    st = GC.@preserve names LibRask.rask_client_retire_workers(c, ptrs, length(ptrs), ms, moved, lost, err)
    st == LibRask.RASK_TIMEOUT && throw(timeout_error("the workers to retire", timeout))
    check(st, err)
    return (moved = Int(moved[]), lost = Int(lost[]))
end

"""
    Rask.scheduler_info(client) -> NamedTuple

What the scheduler holds (its `get-info`): `tasks` (in all) and by state
(`released`, `waiting`, `no_worker`, `queued`, `processing`, `memory`,
`erred`), `workers`, `clients`, and the workers' memory from their last
heartbeats, summed: `managed_bytes` (data in memory), `spilled_bytes` (data
spilled to disk), `process_bytes` (resident memory), `memory_limit`, and
`paused_workers` (paused by their memory use: they are sent no task).
"""
function scheduler_info(c::Client)
    flush_dropped!(c)
    info = Ref{LibRask.rask_scheduler_info}()
    err = errref()
    check(LibRask.rask_client_scheduler_info(c, info, err), err)
    i = info[]
    return NamedTuple{fieldnames(LibRask.rask_scheduler_info)}(
        Tuple(Int(getfield(i, f)) for f in fieldnames(LibRask.rask_scheduler_info)))
end

# -------------------------------------------------------------------- Future

"""
    Rask.Future

A key on a cluster, from `submit`, `map`, `scatter`, `compute(client, ...)`
or `as_completed`: `fetch(f)` waits for its value. While a `Future` of a key
lives, the cluster keeps the key's value; the garbage collector (or
`close(f)`) releases it. `f.key` is its key, `Rask.status(f)` where it
stands. A future can be an argument of `submit`.

The futures of one `map` share one batch of rask futures (an entry each):
making them costs no C call, `gather` and `wait` of them are one C call for
all, and a future's own C handle is made only when a call needs one
(`fetch`, `submit` with it as argument, `as_completed`, ...).
"""
mutable struct Future
    ptr::Ptr{LibRask.rask_future}          # its own C handle (a batch entry's: made when needed)
    client::Client
    batch::Union{Nothing,FutureBatch}      # the batch of a `map`, or nothing
    index::Int                             # its entry in `batch` (1-based)
    open::Bool
    k::Union{Nothing,String}               # the key (a batch entry's: read when first asked)
    function Future(ptr::Ptr{LibRask.rask_future}, client::Client)
        f = new(nonnull(ptr, "a rask future"), client, nothing, 0, true,
                unsafe_string(LibRask.rask_future_key(ptr)))
        return finalizer(close, f)
    end
    function Future(b::FutureBatch, index::Int, client::Client)
        f = new(Ptr{LibRask.rask_future}(C_NULL), client, b, index, true, nothing)
        return finalizer(drop_entry!, f)
    end
end

function Base.getproperty(f::Future, s::Symbol)
    s === :key && return future_key(f)
    return getfield(f, s)
end
Base.propertynames(::Future) = (:key, :client)

function future_key(f::Future)
    k = getfield(f, :k)
    k === nothing || return k
    k = batch_keys(getfield(f, :batch))[getfield(f, :index)]
    setfield!(f, :k, k)
    return k
end

# Every key of the batch, in order: one C call, then remembered.
function batch_keys(b::FutureBatch)
    ks = b.keys
    ks === nothing || return ks
    b.ptr == C_NULL && throw(ArgumentError("the batch of futures was freed"))
    data, len = Ref{Ptr{UInt8}}(C_NULL), Ref{Csize_t}(0)
    err = errref()
    check(LibRask.rask_future_batch_keys(b.ptr, data, len, err), err)
    ks = String[k for k in unpack_buffer(data[], len[])]
    b.keys = ks
    return ks
end

function Base.unsafe_convert(::Type{Ptr{LibRask.rask_future}}, f::Future)
    f.open || throw(ArgumentError("the Rask.Future of '$(f.key)' is closed"))
    p = f.ptr
    p == C_NULL || return p
    # A batch entry used alone: its own handle, another reference to the key.
    out = Ref{Ptr{LibRask.rask_future}}(C_NULL)
    err = errref()
    check(LibRask.rask_future_batch_get(f.batch.ptr, f.index - 1, out, err), err)
    f.ptr = out[]
    return out[]
end

"""
    close(f::Future)

Releases the future now: when it was the client's last reference to its key,
the cluster may forget the key. Calling it again does nothing.
"""
function Base.close(f::Future)
    f.open || return nothing
    f.open = false
    p = f.ptr
    f.ptr = C_NULL
    LibRask.rask_future_free(p)
    b = f.batch
    if b !== nothing && b.ptr != C_NULL
        err = errref()
        check(LibRask.rask_future_batch_release(b.ptr, Ref(Csize_t(f.index - 1)), 1, err), err)
    end
    return nothing
end
Base.isopen(f::Future) = f.open

"""
    Rask.DROP_FLUSH[]

How many entries of one `map`'s batch the garbage collector drops before
they are released in one call (4096); fewer are released by the client's
next call (`submit`, `map`, `gather`, `wait`, `fetch`, ...) or when the
whole batch is collected.
"""
const DROP_FLUSH = Ref(4096)

# The finalizer of a batch entry's Future: its own handle is freed, the
# entry queued for release. Runs inside the garbage collector: it only
# appends to vectors that the rest of the code swaps out before reading
# (`flush_dropped!`), so an append is never lost.
function drop_entry!(f::Future)
    f.open || return nothing
    f.open = false
    p = f.ptr
    f.ptr = C_NULL
    LibRask.rask_future_free(p)
    b = f.batch::FutureBatch
    b.ptr == C_NULL && return nothing
    push!(b.dropped, Csize_t(f.index - 1))
    n = length(b.dropped)
    if n >= DROP_FLUSH[]
        flush_dropped!(b)
    elseif n == 1
        push!(f.client.dropping, b)
    end
    return nothing
end

function flush_dropped!(b::FutureBatch)
    isempty(b.dropped) && return nothing
    fresh = Csize_t[]
    d = b.dropped          # no allocation between these two lines: no
    b.dropped = fresh      # finalizer can run between them
    b.ptr == C_NULL && return nothing     # freed: all released with it
    LibRask.rask_future_batch_release(b.ptr, d, length(d), C_NULL)
    return nothing
end

# Releases the batch entries dropped since the client's last call.
function flush_dropped!(c::Client)
    isempty(c.dropping) && return nothing
    fresh = FutureBatch[]
    bs = c.dropping
    c.dropping = fresh
    foreach(flush_dropped!, bs)
    return nothing
end

const FUTURE_STATES = Dict(LibRask.RASK_FUTURE_PENDING => :pending, LibRask.RASK_FUTURE_FINISHED => :finished,
                           LibRask.RASK_FUTURE_ERROR => :error, LibRask.RASK_FUTURE_CANCELLED => :cancelled)

"""
    Rask.status(f::Future) -> Symbol

Where the key stands now (does not wait): `:pending`, `:finished` (its value
is in the cluster), `:error` (its task or one it needs failed, or the client
lost its scheduler or was closed) or `:cancelled`.
"""
function status(f::Future)
    f.open || throw(ArgumentError("the Rask.Future of '$(f.key)' is closed"))
    (f.ptr != C_NULL || f.batch === nothing) && return FUTURE_STATES[LibRask.rask_future_status(f.ptr)]
    st = Ref(LibRask.RASK_FUTURE_PENDING)
    err = errref()
    check(LibRask.rask_future_batch_status(f.batch.ptr, Ref(Csize_t(f.index - 1)), 1, st, err), err)
    return FUTURE_STATES[st[]]
end

"""Whether the future is done: finished, erred or cancelled (does not wait)."""
Base.isready(f::Future) = status(f) !== :pending

Base.show(io::IO, f::Future) = print(io, "Rask.Future(", repr(f.key), isopen(f) ? "; $(status(f))" : "; closed", ")")

"""
    Rask.result(f::Future; timeout = nothing)
    fetch(f::Future; timeout = nothing)

Waits for the future's value and returns it (a fresh copy each time). Throws
a `RaskError`: `RASK_ERR_TASK_FAILED` if its task or one it needs failed
(the `cause` is a `Rask.RemoteError` naming the failed task, its function,
the worker and the message), `RASK_ERR_CANCELLED`, `RASK_ERR_CONNECTION` if
the scheduler is gone, `RASK_TIMEOUT` after `timeout` seconds.
"""
function result(f::Future; timeout::Union{Nothing,Real} = nothing)
    flush_dropped!(f.client)
    out = Ref{ValuePtr}(C_NULL)
    err = errref()
    warned = Ref{Union{Nothing,String}}(nothing)
    st = waited(f.client, timeout) do ms
        s = LibRask.rask_future_result(f, ms, out, err)
        s == LibRask.RASK_TIMEOUT && log_warning(f, warned)
        return s
    end
    st == LibRask.RASK_TIMEOUT && throw(timeout_error("'$(f.key)'", timeout))
    st == LibRask.RASK_OK || throw(cluster_error(st, err, (f.key,)))
    try
        return julia_value(out[])
    finally
        LibRask.rask_value_free(out[])
    end
end
Base.fetch(f::Future; timeout::Union{Nothing,Real} = nothing) = result(f; timeout = timeout)

"""
    Rask.warning(f::Future) -> Union{Nothing,String}

The last warning the scheduler sent about the future's key, or `nothing`:
for instance that no connected worker offers a function it needs (a
misspelt name), so the task waits for one (or errs after the scheduler's
no-workers timeout). Does not wait. While `result` waits, each new warning
is also logged (`@warn`).
"""
function warning(f::Future)
    out = Ref{ValuePtr}(C_NULL)
    err = errref()
    st = LibRask.rask_future_warning(f, out, err)
    st == LibRask.RASK_OK || throw(cluster_error(st, err, (f.key,)))
    out[] == C_NULL && return nothing
    try
        return julia_value(out[])::String
    finally
        LibRask.rask_value_free(out[])
    end
end

# Logs `f`'s warning once, while a wait goes on (`seen` holds the last one logged).
function log_warning(f::Future, seen::Ref{Union{Nothing,String}})
    w = warning(f)
    if w !== nothing && w != seen[]
        seen[] = w
        @warn "future '$(f.key)': $w"
    end
    return nothing
end

# ------------------------------------------------------------------ submitting

# The rask name of the function of a submitted task.
funcname(f::Builtin) = f.name
function funcname(f::Union{Symbol,AbstractString})
    s = String(f)
    isempty(s) && throw(ArgumentError("a function name must not be empty"))
    return s
end
funcname(f::Function) = string(parentmodule(f), ".", nameof(f))
funcname(f) = throw(ArgumentError("a task's function is a name (String or Symbol), a Rask.Builtin or a " *
                                  "Julia function (named Module.name), not a $(typeof(f))"))

holds_future(x) = x isa Future
holds_future(x::Union{Tuple,AbstractArray}) = !istensor(x) && !(x isa AbstractVector{UInt8}) && any(holds_future, x)
holds_future(x::Union{AbstractDict,NamedTuple}) = any(holds_future, values(x))

# An owned rask_arg for an argument of `submit`.
function client_arg(c::Client, a)
    if a isa Future
        a.client === c || throw(ArgumentError("the future '$(a.key)' belongs to another client"))
        return nonnull(LibRask.rask_arg_future(a), "rask_arg_future")
    elseif (a isa Tuple || a isa AbstractVector) && holds_future(a)
        items = client_args(c, a)
        out = Ref{Ptr{LibRask.rask_arg}}(C_NULL)
        err = errref()
        # Every item is consumed, even when the call fails.
        check(LibRask.rask_arg_list(items, length(items), out, err), err)
        return out[]
    elseif holds_future(a)
        throw(ArgumentError("a Dict argument cannot hold futures: the C API has no map argument"))
    elseif a isa Union{Key,Task,Delayed,Base.RefValue}
        throw(ArgumentError("$(typeof(a)) is a graph reference; submit takes values and futures " *
                            "(compute(client, graph, keys) computes a graph)"))
    end
    return nonnull(LibRask.rask_arg_value(new_value(a)), "rask_arg_value")
end

function client_args(c::Client, items)
    args = Ptr{LibRask.rask_arg}[]
    try
        for a in items
            push!(args, client_arg(c, a))
        end
    catch
        foreach(LibRask.rask_arg_free, args)
        rethrow()
    end
    return args
end

"""
    submit(client, f, args...; key = nothing, pure = true, retries = 0) -> Future

Runs `f(args...)` on the cluster and returns a `Future` on its result at once.

- `f` names a function that some worker offers: a `String` or `Symbol`
  (`"inc"`, `:jl_f`), a `Rask.Builtins` function (on every worker), or a
  named Julia function, which stands for its name `Module.name` (served by
  a `Rask.Worker` given that function). The task waits until a worker that
  offers `f` joins. An anonymous function or a closure is *shipped*
  (serialized, run by Julia workers started with `allow_code = true`; see
  docs/julia.md).
- `args` are values (converted as in `Rask.roundtrip`: arrays as tensors,
  column-major handled; a `Symbol` is a string here), `Future`s (the task
  gets their values) or vectors and tuples holding futures.
- `key`: the task's key; by default a hash of `f` and the arguments
  (`pure = true`: the same call is one task, computed once), or a unique
  key per call (`pure = false`). `retries`: runs of the task again after a
  failure.
"""
function submit(c::Client, f, args...; key::Union{Nothing,AbstractString,Symbol} = nothing,
                pure::Bool = true, retries::Integer = 0)
    flush_dropped!(c)
    if isanonymous(f)  # shipped: the function's bytes come first
        args = (code_future(c, f), args...)
        f = CODE_FUNC
    end
    name = funcname(f)
    k = key === nothing ? nothing : keyname(key)
    argv = client_args(c, args)
    out = Ref{Ptr{LibRask.rask_future}}(C_NULL)
    err = errref()
    # Every argument is consumed, even when the call fails.
    if k === nothing && pure && retries == 0
        check(LibRask.rask_client_submit(c, name, argv, length(argv), out, err), err)
    else
        GC.@preserve k begin
            opts = Ref(LibRask.rask_submit_options(cstr(k), !pure, UInt32(retries)))
            check(LibRask.rask_client_submit_with(c, name, argv, length(argv), opts, out, err), err)
        end
    end
    return Future(out[], c)
end

"""
    map(client, f, iterables...) -> Vector{Future}

`submit(client, f, args...)` for each `args` of `zip(iterables...)`, all in
one message to the scheduler: `map(client, :inc, 1:100)`,
`map(client, :add, xs, ys)`. Elements are values or futures, as for
`submit`; keys are hashes of the calls.

When no element is or holds a future, every call's arguments go to rask as
one msgpack buffer (written in Julia; `rask_client_map_msgpack`, and
`rask_client_map_msgpack_shared` for a shipped function, whose code is the
one future every call shares), and the futures come back as one batch that
they all share: one C call for the whole map, none per future (see
`Rask.Future`). Otherwise each argument is a `rask_arg` (`rask_client_map`).
"""
function Base.map(c::Client, f, iters...)
    isempty(iters) && throw(ArgumentError("map(client, f, iterables...) needs at least one iterable"))
    flush_dropped!(c)
    calls = collect(zip(iters...))
    isempty(calls) && return Future[]
    shipped = isanonymous(f)
    code = shipped ? code_future(c, f) : nothing  # shipped: the function's bytes come first in every call
    shipped && (f = CODE_FUNC)
    name = funcname(f)
    any(call -> any(a -> holds_future(a) || a isa GraphRef || lends(a), call), calls) ||
        return map_batched(c, name, code, calls)
    if shipped
        calls = [(code, call...) for call in calls]
        iters = (nothing, iters...)
    end
    args = Ptr{LibRask.rask_arg}[]
    try
        for call in calls, a in call
            push!(args, client_arg(c, a))
        end
    catch
        foreach(LibRask.rask_arg_free, args)
        rethrow()
    end
    futs = fill(Ptr{LibRask.rask_future}(C_NULL), length(calls))
    err = errref()
    # Every argument is consumed, even when the call fails.
    check(LibRask.rask_client_map(c, name, args, length(calls), length(iters), futs, err), err)
    return Future[Future(p, c) for p in futs]
end

# Graph references, which `submit` and `map` refuse (client_arg says why).
const GraphRef = Union{Key,Task,Delayed,Base.RefValue}

# Whether `x` is or holds an array that a `rask_arg` would lend to rask
# without a copy (values.jl: Arrays of at least ZERO_COPY_MIN[] bytes):
# such a map keeps to one `rask_arg` per argument, rather than copying the
# array into the calls' msgpack buffer.
lends(x) = false
lends(x::Union{Tuple,AbstractVector}) = any(lends, x)
lends(x::Union{AbstractDict,NamedTuple}) = any(lends, values(x))
lends(x::Array) = istensor(x) || x isa Vector{UInt8} ? sizeof(x) >= ZERO_COPY_MIN[] : any(lends, x)

# `map` of calls that hold no future: the calls as one msgpack buffer, the
# futures one batch.
function map_batched(c::Client, name::String, code, calls::AbstractVector)
    bytes = pack_calls(calls)
    out = Ref{Ptr{LibRask.rask_future_batch}}(C_NULL)
    err = errref()
    if code === nothing
        check(LibRask.rask_client_map_msgpack(c, name, bytes, length(bytes), out, err), err)
    else
        shared = Ptr{LibRask.rask_arg}[client_arg(c, code)]
        # The shared argument is consumed, even when the call fails.
        check(LibRask.rask_client_map_msgpack_shared(c, name, shared, 1, bytes, length(bytes), out, err), err)
    end
    b = FutureBatch(out[])
    futs = Vector{Future}(undef, b.n)
    for i in 1:b.n
        futs[i] = Future(b, i, c)
    end
    return futs
end

"""
    compute(client, g::Graph, keys::AbstractVector) -> Vector{Future}
    compute(client, g::Graph, key) -> Future
    compute(client, d::Delayed) -> Future

Sends the part of the graph that `keys` need to the cluster and returns
futures on them (keys the cluster already has are not computed again). The
graph's Julia functions are named `Module.name`: a `Rask.Worker` given those
functions serves them.
"""
function compute(c::Client, g::Graph, keys::AbstractVector)
    flush_dropped!(c)
    names = String[keyname(k) for k in keys]
    ptrs = Ptr{UInt8}[pointer(n) for n in names]
    futs = fill(Ptr{LibRask.rask_future}(C_NULL), length(names))
    err = errref()
    GC.@preserve names check(LibRask.rask_client_compute(c, g, ptrs, length(ptrs), futs, err), err)
    return Future[Future(p, c) for p in futs]
end
compute(c::Client, g::Graph, key::KeyLike) = compute(c, g, [key])[1]
function compute(c::Client, d::Delayed)
    # Anonymous functions and closures travel (shipped); named ones by name.
    g = graph(ship_delayed(d, IdDict{Any,Any}()))
    try
        return compute(c, g, d.key)
    finally
        close(g)
    end
end

function check_client(c::Client, fs)
    for f in fs
        f.client === c || throw(ArgumentError("the future '$(f.key)' belongs to another client"))
    end
end

function client_of(fs)
    isempty(fs) && throw(ArgumentError("no futures given: pass the client too"))
    return first(fs).client
end

"""
    gather(client, futures; timeout = nothing) -> Vector
    gather(futures; timeout = nothing)

Waits for all `futures` (of `client`) and returns their values, in order.
Throws the error of the first one in order that failed or was cancelled, or
`RASK_TIMEOUT` if one is still pending after `timeout` seconds.
"""
function gather(c::Client, fs::AbstractVector{Future}; timeout::Union{Nothing,Real} = nothing)
    check_client(c, fs)
    isempty(fs) && return Any[]
    flush_dropped!(c)
    b = one_batch(fs)
    b === nothing || return gather_batch(c, b, fs, timeout)
    fv = Vector{Future}(fs)
    ptrs = Ptr{LibRask.rask_future}[Base.unsafe_convert(Ptr{LibRask.rask_future}, f) for f in fv]
    values = fill(ValuePtr(C_NULL), length(fv))
    err = errref()
    st = GC.@preserve fv begin
        left = wait_in_order(c, ptrs, timeout)
        waited(ms -> LibRask.rask_client_gather(c, ptrs, length(ptrs), ms, values, err), c, left)
    end
    st == LibRask.RASK_TIMEOUT && throw(timeout_error("$(length(fv)) futures", timeout))
    st == LibRask.RASK_OK || throw(cluster_error(st, err, (f.key for f in fv)))
    try
        return Any[julia_value(p) for p in values]
    finally
        foreach(LibRask.rask_value_free, values)
    end
end
gather(fs::AbstractVector{Future}; kw...) = gather(client_of(fs), fs; kw...)

# The batch every future of `fs` (none closed) is an entry of, or nothing.
function one_batch(fs::AbstractVector{Future})
    b = first(fs).batch
    b === nothing && return nothing
    for f in fs
        f.batch === b || return nothing
        f.open || throw(ArgumentError("the Rask.Future of '$(f.key)' is closed"))
    end
    return b
end

# The 0-based entries of `fs` (all of batch `b`).
entries(fs::AbstractVector{Future}) = Csize_t[f.index - 1 for f in fs]

# `gather` of futures of one batch: one C call gives every value in one
# msgpack buffer, read in Julia.
function gather_batch(c::Client, b::FutureBatch, fs::AbstractVector{Future}, timeout)
    idx = entries(fs)
    data, len = Ref{Ptr{UInt8}}(C_NULL), Ref{Csize_t}(0)
    err = errref()
    st = GC.@preserve fs begin        # the futures hold the entries
        left = wait_batch(c, b, idx, timeout)
        waited(ms -> LibRask.rask_future_batch_gather(b.ptr, idx, length(idx), ms, data, len, err), c, left)
    end
    st == LibRask.RASK_TIMEOUT && throw(timeout_error("$(length(fs)) futures", timeout))
    st == LibRask.RASK_OK || throw(cluster_error(st, err, (f.key for f in fs)))
    return unpack_buffer(data[], len[])::Vector{Any}
end

# The states of entries `idx[from:from+n-1]` of `b` into `states[1:n]`.
function batch_states!(states::Vector{LibRask.rask_future_state}, b::FutureBatch, idx::Vector{Csize_t},
                       from::Int, n::Int)
    err = errref()
    GC.@preserve idx states check(LibRask.rask_future_batch_status(
        b.ptr, pointer(idx, from), n, pointer(states), err), err)
    return states
end

"""
    wait_batch(client, batch, idx, timeout) -> remaining timeout

`wait_in_order` for entries `idx` of one batch: their states are read a
chunk at a time (`rask_future_batch_status`), from the first entry still
pending; the chunk doubles while every entry of it is done and starts
small again at a pending one, so that a wake-up costs about the entries
that ended since the last one.
"""
function wait_batch(c::Client, b::FutureBatch, idx::Vector{Csize_t}, timeout::Union{Nothing,Real})
    until = deadline(timeout)
    n = length(idx)
    states = fill(LibRask.RASK_FUTURE_PENDING, min(n, 1 << 16))
    pos, chunk = 0, 256
    while pos < n
        k = min(chunk, n - pos)
        batch_states!(states, b, idx, pos + 1, k)
        j = 0
        while j < k && states[j + 1] != LibRask.RASK_FUTURE_PENDING
            j += 1
        end
        pos += j
        if j == k
            chunk = min(2chunk, length(states))
        else
            chunk = 256
            time() >= until && break
            wait_change(c, until)
        end
    end
    return timeout === nothing ? nothing : max(0.0, until - time())
end

"""
    scatter(client, values::Union{AbstractVector,Tuple}; broadcast = false) -> Vector{Future}
    scatter(client, value; broadcast = false) -> Future

Stores values in the workers' memory and returns futures on them, to pass
to `submit`. A vector or tuple is scattered element by element (as in Dask:
`scatter(client, [v])` scatters the vector `v` as one value); anything else,
a matrix for instance, is one value. Arrays are tensors, with the
column-major handling of `Rask.roundtrip`. Values go round robin over the
workers, or to every worker with `broadcast = true`.
"""
function scatter(c::Client, xs::Union{AbstractVector,Tuple}; broadcast::Bool = false)
    flush_dropped!(c)
    isempty(xs) && return Future[]
    values = ValuePtr[]
    try
        for x in xs
            push!(values, new_value(x))
        end
    catch
        foreach(LibRask.rask_value_free, values)
        rethrow()
    end
    futs = fill(Ptr{LibRask.rask_future}(C_NULL), length(values))
    err = errref()
    # Every value is consumed, even when the call fails.
    check(LibRask.rask_client_scatter(c, values, length(values), broadcast, futs, err), err)
    return Future[Future(p, c) for p in futs]
end
scatter(c::Client, x; broadcast::Bool = false) = scatter(c, (x,); broadcast = broadcast)[1]

"""
    Rask.cancel(f::Future)
    Rask.cancel(futures)

Cancels the futures: they are `:cancelled` at once (unless they already
failed), fetching them throws `RASK_ERR_CANCELLED`, and the cluster stops
computing what no other client wants.
"""
function cancel(fs::AbstractVector{Future})
    isempty(fs) && return fs
    c = client_of(fs)
    check_client(c, fs)
    fv = Vector{Future}(fs)
    ptrs = Ptr{LibRask.rask_future}[Base.unsafe_convert(Ptr{LibRask.rask_future}, f) for f in fv]
    err = errref()
    GC.@preserve fv check(LibRask.rask_client_cancel(c, ptrs, length(ptrs), err), err)
    return fs
end
cancel(f::Future) = (cancel([f]); f)

"""
    wait(futures; timeout = nothing, mode = :all) -> (done = Vector{Future}, not_done = Vector{Future})
    wait(f::Future; timeout = nothing) -> f

Waits until all the futures are done (`mode = :all`) or at least one is
(`mode = :first`); done means finished, erred or cancelled (it does not
throw for a failed one: `fetch` does). Throws a `RaskError` (`RASK_TIMEOUT`)
after `timeout` seconds.
"""
function Base.wait(fs::AbstractVector{Future}; timeout::Union{Nothing,Real} = nothing, mode::Symbol = :all)
    m = mode === :all ? LibRask.RASK_WAIT_ALL_COMPLETED :
        mode === :first ? LibRask.RASK_WAIT_FIRST_COMPLETED :
        throw(ArgumentError("mode is :all or :first, not $(repr(mode))"))
    isempty(fs) && return (done = Future[], not_done = Future[])
    c = client_of(fs)
    check_client(c, fs)
    flush_dropped!(c)
    fv = Vector{Future}(fs)
    done = fill(false, length(fv))
    err = errref()
    b = one_batch(fv)
    st = if b !== nothing
        GC.@preserve fv wait_batch_done!(done, c, b, entries(fv), mode, timeout)
    else
        ptrs = Ptr{LibRask.rask_future}[Base.unsafe_convert(Ptr{LibRask.rask_future}, f) for f in fv]
        GC.@preserve fv begin
            left = mode === :all ? wait_in_order(c, ptrs, timeout) : timeout
            waited(ms -> LibRask.rask_client_wait(c, ptrs, length(ptrs), m, ms, done, err), c, left)
        end
    end
    st == LibRask.RASK_TIMEOUT && throw(timeout_error(
        "$(mode === :all ? "all" : "one") of $(length(fv)) futures ($(count(done)) done)", timeout))
    check(st, err)
    return (done = fv[done], not_done = fv[.!done])
end
Base.wait(f::Future; timeout::Union{Nothing,Real} = nothing) = (wait([f]; timeout = timeout); f)

# `wait` of entries `idx` of one batch: sets `done`, returns RASK_OK or
# RASK_TIMEOUT (as rask_client_wait).
function wait_batch_done!(done::Vector{Bool}, c::Client, b::FutureBatch, idx::Vector{Csize_t},
                          mode::Symbol, timeout)
    until = deadline(timeout)
    mode === :all && wait_batch(c, b, idx, timeout)
    states = fill(LibRask.RASK_FUTURE_PENDING, length(idx))
    while true
        batch_states!(states, b, idx, 1, length(idx))
        done .= states .!= LibRask.RASK_FUTURE_PENDING
        ok = mode === :all ? all(done) : any(done)
        ok && return LibRask.RASK_OK
        (mode === :all || time() >= until) && return LibRask.RASK_TIMEOUT
        wait_change(c, until)
    end
end

"""
    Rask.replicate(client, futures, n = nothing; timeout = nothing) -> (copied = n, short = n)
    Rask.replicate(futures, n = nothing; timeout = nothing)

Copies the results of `futures` so that `n` workers hold each (every
worker when `n` is `nothing`; capped at the workers there are), as Dask's
`Client.replicate`: copies go to the workers holding the fewest bytes, and
copies beyond `n` are dropped. Waits for the futures (through Julia's event
loop, so a `Rask.Worker` of this process can compute them), then for the
copies. Returns the number of copies made and of keys left on fewer than
`n` workers (no worker could fetch a copy). Throws an `ArgumentError` when
`n` < 1; a `RaskError` when a future failed, was cancelled or was closed
(nothing is copied), or (`RASK_TIMEOUT`) after `timeout` seconds (the
copies go on).
"""
function replicate(c::Client, fs::AbstractVector{Future}, n::Union{Nothing,Integer} = nothing;
                   timeout::Union{Nothing,Real} = nothing)
    n === nothing || n >= 1 || throw(ArgumentError("replicate: n must be >= 1, got $n"))
    nn = n === nothing ? Csize_t(1) << 31 : Csize_t(n)
    copied = Ref{Csize_t}(0)
    short = Ref{Csize_t}(0)
    copies_call(c, fs, "replicate", timeout) do ptrs, ms, err
        LibRask.rask_client_replicate(c, ptrs, length(ptrs), nn, ms, copied, short, err)
    end
    return (copied = Int(copied[]), short = Int(short[]))
end
replicate(fs::AbstractVector{Future}, n::Union{Nothing,Integer} = nothing; kw...) =
    replicate(client_of(fs), fs, n; kw...)

"""
    Rask.rebalance(client[, futures]; timeout = nothing) -> (moved = n, bytes = n)

Moves results between workers so that the bytes each holds even out, as
Dask's `Client.rebalance`: only the results of `futures`, or every result in
memory when none are given. Waits for the futures (through Julia's event
loop), then for the moves. Returns the number of keys moved and their
bytes. Throws a `RaskError` when a future failed, was cancelled or was
closed (nothing moves), or (`RASK_TIMEOUT`) after `timeout` seconds (the
moves go on).
"""
function rebalance(c::Client, fs::Union{Nothing,AbstractVector{Future}} = nothing;
                   timeout::Union{Nothing,Real} = nothing)
    fs !== nothing && isempty(fs) && return (moved = 0, bytes = 0)
    moved = Ref{Csize_t}(0)
    nbytes = Ref{UInt64}(0)
    copies_call(c, fs === nothing ? Future[] : fs, "rebalance", timeout) do ptrs, ms, err
        LibRask.rask_client_rebalance(c, isempty(ptrs) ? C_NULL : ptrs, length(ptrs), ms, moved, nbytes, err)
    end
    return (moved = Int(moved[]), bytes = Int(nbytes[]))
end

# replicate and rebalance: the futures are waited for through the event loop
# first (the C call would wait for them in a blocking call, where a Julia
# worker of this process could not compute them); the copies themselves are
# made by the workers' data ports, so the rest is one blocking call, as
# `retire_workers`.
function copies_call(f, c::Client, fs::AbstractVector{Future}, what::String, timeout)
    check_client(c, fs)
    fv = Vector{Future}(fs)
    until = deadline(timeout)
    isempty(fv) || wait(fv; timeout = timeout)
    ptrs = Ptr{LibRask.rask_future}[Base.unsafe_convert(Ptr{LibRask.rask_future}, x) for x in fv]
    ms = until == Inf ? Int64(-1) : Int64(max(floor(Int64, (until - time()) * 1000), 0))
    err = errref()
    st = GC.@preserve fv f(ptrs, ms, err)
    st == LibRask.RASK_TIMEOUT && throw(timeout_error(what, timeout))
    st == LibRask.RASK_OK || throw(cluster_error(st, err, (x.key for x in fv)))
    return nothing
end

# -------------------------------------------------------------- as_completed

"""
    as_completed(futures)
    as_completed(client, futures)

An iterator over the futures in the order they become done (finished, erred
or cancelled: `fetch` each one). `push!(ac, future)` adds more while
iterating; the iteration ends once every future added has been yielded.
Each yielded `Future` is a new reference to the key. `close(ac)` frees it
(the garbage collector does it too).

```julia
ac = as_completed([submit(client, :inc, i) for i in 1:10])
for f in ac
    x = fetch(f)
    x < 20 && push!(ac, submit(client, :inc, x + 10))
end
```
"""
mutable struct AsCompleted
    ptr::Ptr{LibRask.rask_as_completed}
    client::Client
    timeout::Union{Nothing,Float64}
    function AsCompleted(c::Client, fs::AbstractVector{Future}, timeout)
        check_client(c, fs)
        fv = Vector{Future}(fs)
        ptrs = Ptr{LibRask.rask_future}[Base.unsafe_convert(Ptr{LibRask.rask_future}, f) for f in fv]
        out = Ref{Ptr{LibRask.rask_as_completed}}(C_NULL)
        err = errref()
        GC.@preserve fv check(LibRask.rask_as_completed_new(c, ptrs, length(ptrs), out, err), err)
        return finalizer(close, new(out[], c, timeout === nothing ? nothing : Float64(timeout)))
    end
end

"""See `Rask.AsCompleted`. `timeout` (seconds) bounds the wait for each next future."""
as_completed(c::Client, fs::AbstractVector{Future}; timeout::Union{Nothing,Real} = nothing) = AsCompleted(c, fs, timeout)
as_completed(fs::AbstractVector{Future}; kw...) = as_completed(client_of(fs), fs; kw...)

function Base.unsafe_convert(::Type{Ptr{LibRask.rask_as_completed}}, ac::AsCompleted)
    ac.ptr == C_NULL && throw(ArgumentError("the Rask.AsCompleted is closed"))
    return ac.ptr
end

function Base.close(ac::AsCompleted)
    p = ac.ptr
    ac.ptr = C_NULL
    LibRask.rask_as_completed_free(p)
    return nothing
end
Base.isopen(ac::AsCompleted) = ac.ptr != C_NULL

function Base.push!(ac::AsCompleted, f::Future)
    f.client === ac.client || throw(ArgumentError("the future '$(f.key)' belongs to another client"))
    err = errref()
    check(LibRask.rask_as_completed_add(ac, f, err), err)
    return ac
end

"""The number of futures `ac` has not yielded yet (done or not)."""
Base.length(ac::AsCompleted) = Int(LibRask.rask_as_completed_count(ac))
Base.IteratorSize(::Type{AsCompleted}) = Base.SizeUnknown()
Base.eltype(::Type{AsCompleted}) = Future
Base.show(io::IO, ac::AsCompleted) = print(io, "Rask.AsCompleted(", isopen(ac) ? "$(length(ac)) to come" : "closed", ")")

function Base.iterate(ac::AsCompleted, state = nothing)
    out = Ref{Ptr{LibRask.rask_future}}(C_NULL)
    err = errref()
    st = waited(ms -> LibRask.rask_as_completed_next(ac, ms, out, err), ac.client, ac.timeout)
    st == LibRask.RASK_DONE && return nothing
    st == LibRask.RASK_TIMEOUT && throw(timeout_error("the next of $(length(ac)) futures", ac.timeout))
    check(st, err)
    return (Future(out[], ac.client), nothing)
end

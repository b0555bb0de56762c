# Coordination objects held by the scheduler, through a Client: queues,
# variables, locks and semaphores, events, published datasets,
# fire-and-forget and topics (docs/julia.md, "Coordination").

"""
    Rask.Queue(client, name = random; maxsize = 0)

A first-in first-out queue on the scheduler, shared by name. `put!(q, x;
timeout)` appends a value or a `Rask.Future` (its key is kept alive while
queued), `take!(q; timeout)` takes the oldest (a future taken out belongs
to this client), `Rask.qsize(q)`. A get or put that runs out of `timeout`
seconds throws a `RaskError` (`RASK_TIMEOUT`) naming the queue.
"""
struct Queue
    client::Client
    name::String
    function Queue(c::Client, name::AbstractString = "queue-" * randname(); maxsize::Integer = 0)
        maxsize >= 0 || throw(ArgumentError("maxsize must be >= 0"))
        err = errref()
        check(LibRask.rask_client_queue_create(c, name, UInt64(maxsize), err), err)
        return new(c, String(name))
    end
end

"""
    Rask.Variable(client, name = random)

A named value (or `Rask.Future`) on the scheduler: `put!(v, x)` sets it,
`fetch(v; timeout)` gets it (waiting for one to be set), `delete!(v)`.
"""
struct Variable
    client::Client
    name::String
    Variable(c::Client, name::AbstractString = "variable-" * randname()) = new(c, String(name))
end

"""
    Rask.Semaphore(client, name = random; max_leases = 1)
    Rask.DistributedLock(client, name = random)

A semaphore on the scheduler (a lock is one lease): `Rask.acquire(s;
timeout) -> Bool`, `Rask.release(s)`; for locks also `lock(l)`,
`trylock(l)`, `unlock(l)`, `lock(f, l)`. Leases of a client that closes, or
whose process dies, are released.
"""
mutable struct Semaphore
    client::Client
    name::String
    max_leases::UInt32
    leases::Vector{UInt64}
    Semaphore(c::Client, name::AbstractString = "semaphore-" * randname(); max_leases::Integer = 1) =
        max_leases >= 1 ? new(c, String(name), UInt32(max_leases), UInt64[]) :
        throw(ArgumentError("max_leases must be >= 1"))
end
DistributedLock(c::Client, name::AbstractString = "lock-" * randname()) = Semaphore(c, name; max_leases = 1)

"""
    Rask.Event(client, name = random)

An event on the scheduler: `Rask.set!(e)`, `Rask.clear!(e)`, `wait(e;
timeout) -> Bool` (whether it is set), `Rask.is_set(e)`.
"""
struct Event
    client::Client
    name::String
    Event(c::Client, name::AbstractString = "event-" * randname()) = new(c, String(name))
end

"""
    Rask.Pub(client, topic), Rask.Sub(client, topic)

Topics: `put!(pub, x)` sends `x` to the topic's current subscribers;
`take!(sub; timeout)` is the next message a `Sub` received (in order).
"""
struct Pub
    client::Client
    name::String
    Pub(c::Client, name::AbstractString) = new(c, String(name))
end

mutable struct Sub
    ptr::Ptr{LibRask.rask_subscription}
    client::Client
    name::String
    function Sub(c::Client, name::AbstractString)
        out = Ref{Ptr{LibRask.rask_subscription}}(C_NULL)
        err = errref()
        check(LibRask.rask_client_subscribe(c, name, out, err), err)
        return finalizer(close, new(out[], c, String(name)))
    end
end

function Base.close(s::Sub)
    p = s.ptr
    s.ptr = C_NULL
    LibRask.rask_subscription_free(p)
    return nothing
end

randname() = string(rand(UInt64); base = 16, pad = 16)

# An item for a C call: (value pointer owned by us, future pointer borrowed).
function with_item(f, x)
    if x isa Future
        return GC.@preserve x f(Ptr{LibRask.rask_value}(C_NULL), Base.unsafe_convert(Ptr{LibRask.rask_future}, x))
    end
    v = new_value(x)
    try
        return f(v, Ptr{LibRask.rask_future}(C_NULL))
    finally
        LibRask.rask_value_free(v)
    end
end

# The item a C call set: a Future of `c`, or the Julia value.
function item_of(c::Client, v::Ref{ValuePtr}, f::Ref{Ptr{LibRask.rask_future}})
    f[] != C_NULL && return Future(f[], c)
    try
        return julia_value(v[])
    finally
        LibRask.rask_value_free(v[])
    end
end

# Waits in slices (as every wait of Rask): `call(ms, err)` returns
# RASK_TIMEOUT, with an error for gets and puts, when a slice ran out.
function coord_wait(call, timeout, what)
    err = errref()
    st = sliced(timeout) do ms
        s = call(ms, err)
        if s == LibRask.RASK_TIMEOUT && err[] != C_NULL
            LibRask.rask_error_free(err[])
            err[] = C_NULL
        end
        s
    end
    st == LibRask.RASK_TIMEOUT && throw(RaskError(LibRask.RASK_TIMEOUT, "$what within $(timeout) s"))
    check(st, err)
end

function Base.put!(q::Queue, x; timeout::Union{Nothing,Real} = nothing)
    with_item(x) do v, f
        coord_wait((ms, err) -> LibRask.rask_client_queue_put(q.client, q.name, v, f, ms, err), timeout,
                   "queue '$(q.name)' is full: no room to put")
    end
    return q
end

function Base.take!(q::Queue; timeout::Union{Nothing,Real} = nothing)
    v = Ref{ValuePtr}(C_NULL)
    f = Ref{Ptr{LibRask.rask_future}}(C_NULL)
    coord_wait((ms, err) -> LibRask.rask_client_queue_get(q.client, q.name, ms, v, f, err), timeout,
               "queue '$(q.name)': nothing to get")
    return item_of(q.client, v, f)
end

"""The number of items in a `Rask.Queue`."""
function qsize(q::Queue)
    n = Ref{UInt64}(0)
    err = errref()
    check(LibRask.rask_client_queue_size(q.client, q.name, n, err), err)
    return Int(n[])
end

function Base.put!(var::Variable, x)
    with_item(x) do v, f
        err = errref()
        check(LibRask.rask_client_variable_set(var.client, var.name, v, f, err), err)
    end
    return var
end

function Base.fetch(var::Variable; timeout::Union{Nothing,Real} = nothing)
    v = Ref{ValuePtr}(C_NULL)
    f = Ref{Ptr{LibRask.rask_future}}(C_NULL)
    coord_wait((ms, err) -> LibRask.rask_client_variable_get(var.client, var.name, ms, v, f, err), timeout,
               "variable '$(var.name)': no value was set")
    return item_of(var.client, v, f)
end

function Base.delete!(var::Variable)
    err = errref()
    check(LibRask.rask_client_variable_delete(var.client, var.name, err), err)
    return var
end

"""
    Rask.acquire(s::Semaphore; timeout = nothing) -> Bool

Takes a lease, waiting up to `timeout` seconds (nothing: forever; 0: only
try). Returns whether it got one.
"""
function acquire(s::Semaphore; timeout::Union{Nothing,Real} = nothing)
    lease = Ref{UInt64}(0)
    err = errref()
    st = sliced(ms -> LibRask.rask_client_lease_acquire(s.client, s.name, s.max_leases, ms, lease, err), timeout)
    st == LibRask.RASK_TIMEOUT && return false
    check(st, err)
    push!(s.leases, lease[])
    return true
end

"""Gives back the oldest lease this `Rask.Semaphore` holds."""
function release(s::Semaphore)
    isempty(s.leases) && throw(ArgumentError("Rask.Semaphore '$(s.name)' released more often than acquired"))
    lease = popfirst!(s.leases)
    err = errref()
    check(LibRask.rask_client_lease_release(s.client, s.name, lease, err), err)
    return nothing
end

Base.lock(s::Semaphore) = (acquire(s); nothing)
Base.trylock(s::Semaphore) = acquire(s; timeout = 0)
Base.unlock(s::Semaphore) = release(s)
function Base.lock(f, s::Semaphore)
    lock(s)
    try
        return f()
    finally
        unlock(s)
    end
end
Base.islocked(s::Semaphore) = !isempty(s.leases)

function set!(e::Event)
    err = errref()
    check(LibRask.rask_client_event_set(e.client, e.name, err), err)
    return e
end

function clear!(e::Event)
    err = errref()
    check(LibRask.rask_client_event_clear(e.client, e.name, err), err)
    return e
end

function Base.wait(e::Event; timeout::Union{Nothing,Real} = nothing)
    out = Ref{Bool}(false)
    err = errref()
    # Each slice answers whether the event is set; not set yet counts as a
    # slice that ran out.
    st = sliced(timeout) do ms
        s = LibRask.rask_client_event_wait(e.client, e.name, ms, out, err)
        s == LibRask.RASK_OK && !out[] ? LibRask.RASK_TIMEOUT : s
    end
    st == LibRask.RASK_TIMEOUT && return false
    check(st, err)
    return out[]
end

is_set(e::Event) = wait(e; timeout = 0)

"""
    Rask.publish_dataset(client, name => x; override = false)

Publishes a value or a `Rask.Future` under `name`; it outlives the client
(its key stays alive) until `Rask.unpublish_dataset`. Also
`Rask.get_dataset(client, name)`, `Rask.list_datasets(client)`.
"""
function publish_dataset(c::Client, p::Pair; override::Bool = false)
    name = string(p.first)
    with_item(p.second) do v, f
        err = errref()
        check(LibRask.rask_client_publish_dataset(c, name, v, f, override, err), err)
    end
    return nothing
end

function get_dataset(c::Client, name::AbstractString)
    v = Ref{ValuePtr}(C_NULL)
    f = Ref{Ptr{LibRask.rask_future}}(C_NULL)
    err = errref()
    check(LibRask.rask_client_get_dataset(c, name, v, f, err), err)
    return item_of(c, v, f)
end

function unpublish_dataset(c::Client, name::AbstractString)
    err = errref()
    check(LibRask.rask_client_unpublish_dataset(c, name, err), err)
    return nothing
end

function list_datasets(c::Client)
    out = Ref{ValuePtr}(C_NULL)
    err = errref()
    check(LibRask.rask_client_list_datasets(c, out, err), err)
    try
        return String[string(x) for x in julia_value(out[])]
    finally
        LibRask.rask_value_free(out[])
    end
end

"""The tasks of `fs` run to the end even when no future on them is left."""
function fire_and_forget(fs::AbstractVector{Future})
    isempty(fs) && return nothing
    c = client_of(fs)
    ptrs = Ptr{LibRask.rask_future}[Base.unsafe_convert(Ptr{LibRask.rask_future}, f) for f in fs]
    err = errref()
    GC.@preserve fs check(LibRask.rask_client_fire_and_forget(c, ptrs, length(ptrs), err), err)
    return nothing
end
fire_and_forget(f::Future) = fire_and_forget([f])

function Base.put!(p::Pub, x)
    v = new_value(x)
    try
        err = errref()
        check(LibRask.rask_client_publish(p.client, p.name, v, err), err)
    finally
        LibRask.rask_value_free(v)
    end
    return p
end

function Base.take!(s::Sub; timeout::Union{Nothing,Real} = nothing)
    s.ptr == C_NULL && throw(ArgumentError("the Rask.Sub of '$(s.name)' is closed"))
    out = Ref{ValuePtr}(C_NULL)
    coord_wait((ms, err) -> LibRask.rask_subscription_get(s.ptr, ms, out, err), timeout,
               "topic '$(s.name)': no message")
    try
        return julia_value(out[])
    finally
        LibRask.rask_value_free(out[])
    end
end

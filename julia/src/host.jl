# Host values: results of Julia functions stay Julia objects inside rask.
#
# A Julia function's result is handed to rask as a host value (an id into
# HOST_OBJECTS): Julia functions of this process that consume it get the very
# object (`===`), and so does `fetch`. Julia 1.5 cannot be called back on
# rask's threads, so the host has no callbacks: rask queues released ids,
# which `drain_released!` takes (before each task and after each fetch), and
# the object's portable form (what a builtin, a C function or another process
# gets) is given when the value is made: plain data where `new_value` can
# convert it, else the object serialized with `Serialization` (a packed
# value, msgpack extension type 2) that only Julia of the same version reads.
# See "Host values" in docs/graph-spec.md and docs/julia.md.

using Serialization

const HOST_RUNTIME = "julia-$(VERSION.major).$(VERSION.minor)"
const HOST_OBJECTS = Dict{UInt64,Any}()
const HOST_NEXT = Ref{UInt64}(0)
const HOST_HANDLE = Ref{Ptr{LibRask.rask_host}}(C_NULL)
const HOST_RELEASED = Ref{Int}(0)
# Released ids that were not in HOST_OBJECTS: a second release of one object
# (rask releases each exactly once, so this stays 0; the tests check it).
const HOST_UNKNOWN_RELEASES = Ref{Int}(0)

function host_handle()
    if HOST_HANDLE[] == C_NULL
        out = Ref{Ptr{LibRask.rask_host}}(C_NULL)
        err = errref()
        check(LibRask.rask_host_new(HOST_RUNTIME, C_NULL, C_NULL, C_NULL, C_NULL, out, err), err)
        HOST_HANDLE[] = out[]
        atexit() do
            h = HOST_HANDLE[]
            HOST_HANDLE[] = C_NULL
            h != C_NULL && LibRask.rask_host_free(h)
        end
    end
    return HOST_HANDLE[]
end

"""
    drain_released!() -> Int

Forgets the objects rask has released (each exactly once); returns how many.
"""
function drain_released!()
    h = HOST_HANDLE[]
    h == C_NULL && return 0
    ids = Vector{UInt64}(undef, 256)
    n = Ref{Csize_t}(0)
    err = errref()
    total = 0
    while true
        check(LibRask.rask_host_take_released(h, ids, length(ids), n, err), err)
        for i in 1:n[]
            if haskey(HOST_OBJECTS, ids[i])
                delete!(HOST_OBJECTS, ids[i])
            else
                HOST_UNKNOWN_RELEASES[] += 1
            end
        end
        total += Int(n[])
        n[] < length(ids) && break
    end
    HOST_RELEASED[] += total
    return total
end

function packed_value(x)
    io = IOBuffer()
    serialize(io, x)
    b = take!(io)
    out = Ref{ValuePtr}(C_NULL)
    err = errref()
    check(LibRask.rask_value_host_packed(HOST_RUNTIME, b, length(b), out, err), err)
    return out[]
end

"""
    host_value(x) -> Ptr{rask_value}

A new host value (owned by the caller) holding the Julia object `x`, with its
portable form: plain data, or `x` serialized.
"""
function host_value(x)
    h = host_handle()
    portable = try
        new_value(x)
    catch e
        e isa ArgumentError || rethrow()
        packed_value(x)
    end
    id = (HOST_NEXT[] += 1)
    HOST_OBJECTS[id] = x
    out = Ref{ValuePtr}(C_NULL)
    err = errref()
    # Consumes `portable`; on failure rask releases `id` (queued, drained later).
    check(LibRask.rask_value_host(h, id, 0, portable, out, err), err)
    return out[]
end

# The Julia object of a host value: this process's very object, or one
# deserialized from a packed Julia value.
function julia_host(p::ValuePtr)
    h = HOST_HANDLE[]
    if h != C_NULL
        id = Ref{UInt64}(0)
        if LibRask.rask_value_host_id(p, h, id, C_NULL) == LibRask.RASK_OK
            return HOST_OBJECTS[id[]]
        end
    end
    rt, rn = Ref{Ptr{UInt8}}(C_NULL), Ref{Csize_t}(0)
    d, dn = Ref{Ptr{UInt8}}(C_NULL), Ref{Csize_t}(0)
    err = errref()
    check(LibRask.rask_value_host_packed_info(p, rt, rn, d, dn, err), err)
    runtime = unsafe_string(rt[], rn[])
    runtime == HOST_RUNTIME || throw(RaskError(LibRask.RASK_ERR_TYPE,
        "a $runtime object packed by its host cannot be read by $HOST_RUNTIME"))
    bytes = Vector{UInt8}(undef, dn[])
    dn[] > 0 && unsafe_copyto!(pointer(bytes), d[], dn[])
    return deserialize(IOBuffer(bytes))
end

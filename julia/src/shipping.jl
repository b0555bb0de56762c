# Shipped functions: Julia functions that travel to the cluster's workers
# (docs/protocol.md, "Shipped functions"; docs/julia.md). An anonymous
# function or a closure given to `submit`/`map` is serialized with Julia's
# `Serialization` (as Distributed does) and run as the function
# `code:julia-X.Y` by Julia workers that allow shipped code; its bytes are
# the value of a key named after their content hash, submitted once per
# client, fetched once per worker and deserialized once.

"The runtime this Julia runs shipped functions of (`\"julia-1.5\"`)."
const RUNTIME = "julia-$(VERSION.major).$(VERSION.minor)"
"The function name of this runtime's shipped functions (`\"code:julia-1.5\"`)."
const CODE_FUNC = "code:" * RUNTIME

# Whether a Julia function has no name to be served by: an anonymous
# function or a closure (`#3`, `#f#4`); these are shipped.
isanonymous(f::Function) = occursin('#', String(nameof(f)))
isanonymous(f) = false

function code_bytes(f, what)
    io = IOBuffer()
    try
        Serialization.serialize(io, f)
    catch e
        throw(ArgumentError("cannot ship the function $(f)$(what === nothing ? "" : " of $what") to the " *
                            "cluster: it does not serialize ($(sprint(showerror, e)))"))
    end
    return take!(io)
end

code_key(blob::Vector{UInt8}) = CODE_FUNC * "-" * bytes2hex(SHA.sha256(blob))[1:40]

# Per client: code key => the future holding the bytes.
const CODE_FUTURES = WeakKeyDict{Any,Dict{String,Any}}()
const CODE_LOCK = ReentrantLock()

# A future on the key that holds `f`'s bytes (an `identity` task of them,
# keyed by their content hash), submitted once per client.
function code_future(c, f)
    blob = code_bytes(f, nothing)
    key = code_key(blob)
    lock(CODE_LOCK) do
        d = get!(() -> Dict{String,Any}(), CODE_FUTURES, c)
        fut = get(d, key, nothing)
        fut === nothing || return fut
        fut = submit(c, "identity", blob; key = key)
        d[key] = fut
        return fut
    end
end

# Whether a worker at `address` may run shipped code: nothing if so, else why not.
function may_run_code(address::AbstractString, token, tls)
    (token !== nothing || tls) && return nothing
    rest = split(address, "://"; limit = 2)[end]
    host = strip(rsplit(rest, ":"; limit = 2)[1], ['[', ']'])
    loopback = host == "localhost" || startswith(host, "127.") || host == "::1"
    loopback && return nothing
    return "the scheduler $address is not on loopback and the worker connects without a token or TLS: " *
           "shipped code is refused (give the cluster a token, or TLS)"
end

# The function a worker runs for `code:julia-X.Y`: deserializes the first
# argument once (cached by its bytes) and calls it with the others.
function code_runner(worker_name::Function)
    cache = Dict{Vector{UInt8},Any}()
    lk = ReentrantLock()
    return function (blob, args...)
        blob isa AbstractVector{UInt8} || throw(ArgumentError("a shipped function is bytes, not $(typeof(blob))"))
        f = lock(() -> get(cache, blob, nothing), lk)
        if f === nothing
            f = try
                Serialization.deserialize(IOBuffer(Vector{UInt8}(blob)))
            catch e
                error("$(sprint(showerror, e)) (deserializing a shipped function on worker " *
                      "$(repr(worker_name())), runtime $RUNTIME)")
            end
            lock(() -> (cache[Vector{UInt8}(blob)] = f), lk)
        end
        return Base.invokelatest(f, args...)
    end
end

# The delayed tree of `d` for a cluster: each node whose function is
# anonymous (or a closure) calls `code:julia-X.Y` with, first, a reference
# to a node holding the function's bytes (one per distinct function).
function ship_delayed(d::Delayed, memo::IdDict{Any,Any})
    haskey(memo, d) && return memo[d]
    args = map(a -> ship_arg(a, memo), d.task.args)
    f = d.task.f
    nd = if isanonymous(f)
        blob = code_bytes(f, "task $(repr(d.key))")
        key = code_key(blob)
        code = get!(() -> Delayed(Task("identity", blob), key), memo, key)
        Delayed(Task(CODE_FUNC, code, args...), d.key)
    else
        Delayed(Task(f, args...), d.key)
    end
    memo[d] = nd
    return nd
end
ship_arg(a::Delayed, memo) = ship_delayed(a, memo)
ship_arg(a::Tuple, memo) = map(x -> ship_arg(x, memo), a)
ship_arg(a::AbstractVector, memo) = any(x -> x isa Union{Delayed,Tuple,AbstractVector}, a) ? Any[ship_arg(x, memo) for x in a] : a
ship_arg(a, memo) = a

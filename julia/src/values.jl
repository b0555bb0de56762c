# Values: Julia objects to owned rask_values and back.
#
#   Julia                                   rask            back to Julia
#   nothing                                 nil             nothing
#   Bool                                    bool            Bool
#   Integer (Int8 ... UInt64, BigInt)       int or uint     Int64 (UInt64 above typemax(Int64))
#   AbstractFloat                           float           Float64
#   AbstractString, Symbol, Char            str             String
#   Vector{UInt8} (AbstractVector{UInt8})   bin             Vector{UInt8}
#   Array{T,N} with T a tensor dtype        tensor          Array{T,N}
#   other AbstractVector, Tuple             array           Vector{Any}
#   AbstractDict, NamedTuple                map             Dict{Any,Any}
#
# Tensor dtypes: Bool, Int8/16/32/64, UInt8/16/32/64 (UInt8 from 2 dimensions
# on), Float32, Float64. A Float16 array is widened to Float32.
#
# Tensors and column-major order: rask tensors are row-major (C order), Julia
# arrays column-major. An array is passed as its own bytes with its shape
# reversed: a Julia 2×3 matrix becomes a rask tensor of shape [3, 2] holding
# the same bytes, which row-major reading sees as the transpose. Nothing is
# reordered, in either direction: a tensor of shape [3, 2] comes back as a
# 2×3 Array. So the element order rask sees (its flat, row-major index: what
# `getitem(t, i)` and `sum` walk) is Julia's linear index order: rask
# `getitem(t, i)` is `A[i+1]`.

# Copies: large arrays cross without one. An Array of a tensor dtype (or a
# Vector{UInt8}) of at least ZERO_COPY_MIN[] bytes is *lent* to rask
# (rask_value_tensor_wrap_host): rask's tensor is the array's own memory, and
# HOST_OBJECTS keeps the array until rask releases it (queued, taken by
# drain_released! on this thread: never a call into Julia from rask's
# threads). Do not write to an array after handing it to rask while rask may
# hold it. A tensor (or bin) of at least ZERO_COPY_MIN[] bytes comes back as
# an Array over rask's memory (`unsafe_wrap`) whose finalizer frees the
# reference it holds: do not write to it either (other values may share the
# memory); `copy(a)` gives an array of your own. Smaller ones are copied.

"""
    Rask.ZERO_COPY_MIN[]

Arrays of at least this many bytes cross into and out of rask without a copy
(see julia.md, "Arrays without a copy"); `typemax(Int)` copies everything.
"""
const ZERO_COPY_MIN = Ref{Int}(1 << 16)

const DTYPES = (
    (Bool, LibRask.RASK_DTYPE_BOOL),
    (Int8, LibRask.RASK_DTYPE_INT8),
    (Int16, LibRask.RASK_DTYPE_INT16),
    (Int32, LibRask.RASK_DTYPE_INT32),
    (Int64, LibRask.RASK_DTYPE_INT64),
    (UInt8, LibRask.RASK_DTYPE_UINT8),
    (UInt16, LibRask.RASK_DTYPE_UINT16),
    (UInt32, LibRask.RASK_DTYPE_UINT32),
    (UInt64, LibRask.RASK_DTYPE_UINT64),
    (Float32, LibRask.RASK_DTYPE_FLOAT32),
    (Float64, LibRask.RASK_DTYPE_FLOAT64),
)

const TensorElt = Union{Bool,Int8,Int16,Int32,Int64,UInt8,UInt16,UInt32,UInt64,Float32,Float64}

for (T, code) in DTYPES
    @eval dtype_of(::Type{$T}) = $code
end
function eltype_of(code::LibRask.rask_dtype)
    for (T, c) in DTYPES
        c == code && return T
    end
    throw(ArgumentError("unknown rask dtype $(Int(code))"))
end

"""
    istensor(x) -> Bool

Whether `x` is passed to rask as a tensor: an array whose element type is a
tensor dtype (every `Vector{UInt8}` is a bin instead).
"""
istensor(x) = false
istensor(::AbstractVector{UInt8}) = false
istensor(::AbstractArray{<:Union{TensorElt,Float16}}) = true

unsupported(x) = throw(ArgumentError(
    "rask cannot hold a value of type $(typeof(x)): use nothing, Bool, numbers, strings, " *
    "Vector{UInt8}, numeric arrays, vectors, tuples or dicts of these"))

const ValuePtr = Ptr{LibRask.rask_value}

# A constructor that returns NULL only if rask panicked.
function nonnull(p::Ptr, what)
    p == C_NULL && throw(RaskError(LibRask.RASK_ERR_PANIC, "$what returned NULL"))
    return p
end

"""
    new_value(x) -> Ptr{rask_value}

An owned rask_value holding `x` (see the table at the top of values.jl).
The caller frees it or hands it to a function that consumes it.
"""
new_value(::Nothing) = nonnull(LibRask.rask_value_nil(), "rask_value_nil")
new_value(x::Bool) = nonnull(LibRask.rask_value_bool(x), "rask_value_bool")
new_value(x::Int64) = nonnull(LibRask.rask_value_int(x), "rask_value_int")
new_value(x::UInt64) = nonnull(LibRask.rask_value_uint(x), "rask_value_uint")
function new_value(x::Integer)
    typemin(Int64) <= x <= typemax(Int64) && return new_value(Int64(x))
    0 <= x <= typemax(UInt64) && return new_value(UInt64(x))
    throw(InexactError(:new_value, Int64, x))
end
new_value(x::AbstractFloat) = nonnull(LibRask.rask_value_float(Float64(x)), "rask_value_float")
new_value(x::Symbol) = new_value(String(x))
new_value(x::Char) = new_value(string(x))
new_value(x::AbstractString) = new_value(String(x))
function new_value(s::String)
    out = Ref{ValuePtr}(C_NULL)
    err = errref()
    GC.@preserve s check(LibRask.rask_value_str(pointer(s), sizeof(s), out, err), err)
    return out[]
end
function new_value(b::AbstractVector{UInt8})
    b isa Vector{UInt8} && sizeof(b) >= ZERO_COPY_MIN[] && return lend_bytes(b)
    data = b isa Vector{UInt8} ? b : Vector{UInt8}(b)
    out = Ref{ValuePtr}(C_NULL)
    err = errref()
    GC.@preserve data check(LibRask.rask_value_bytes(pointer(data), length(data), out, err), err)
    return out[]
end
new_value(a::AbstractArray) = istensor(a) ? new_tensor(a) : new_array(a)
new_value(t::Tuple) = new_array(t)
new_value(d::AbstractDict) = new_map(pairs(d))
new_value(nt::NamedTuple) = new_map(pairs(nt))
new_value(x) = unsupported(x)

function new_array(items)
    items isa AbstractArray && ndims(items) != 1 && throw(ArgumentError(
        "rask cannot hold a $(ndims(items))-dimensional array of $(eltype(items)): only arrays " *
        "of numbers or Bool can be tensors; other arrays must be vectors"))
    arr = nonnull(LibRask.rask_value_array_new(), "rask_value_array_new")
    try
        err = errref()
        for x in items
            # rask_value_array_push consumes the element even when it fails.
            check(LibRask.rask_value_array_push(arr, new_value(x), err), err)
        end
    catch
        LibRask.rask_value_free(arr)
        rethrow()
    end
    return arr
end

function new_map(kvs)
    map = nonnull(LibRask.rask_value_map_new(), "rask_value_map_new")
    try
        err = errref()
        for (k, v) in kvs
            kp = new_value(k)
            vp = try
                new_value(v)
            catch
                LibRask.rask_value_free(kp)
                rethrow()
            end
            # Both consumed, even on failure.
            check(LibRask.rask_value_map_insert(map, kp, vp, err), err)
        end
    catch
        LibRask.rask_value_free(map)
        rethrow()
    end
    return map
end

new_tensor(a::AbstractArray{Float16}) = new_tensor(Array{Float32}(a))
new_tensor(a::AbstractArray) = new_tensor(collect(a))
# The id under which HOST_OBJECTS keeps `a` while rask holds its memory.
function lend!(a)
    id = (HOST_NEXT[] += 1)
    HOST_OBJECTS[id] = a
    return id
end

function lend_bytes(b::Vector{UInt8})
    h = host_handle()
    out = Ref{ValuePtr}(C_NULL)
    err = errref()
    # rask releases the id exactly once, also if the call fails.
    GC.@preserve b check(LibRask.rask_value_bytes_wrap_host(h, lend!(b), pointer(b), sizeof(b), out, err), err)
    return out[]
end

function new_tensor(a::Array{T,N}) where {T<:TensorElt,N}
    # Column-major bytes, row-major reading: reverse the shape (see the top).
    shape = Csize_t[size(a, d) for d in N:-1:1]
    if sizeof(a) >= ZERO_COPY_MIN[]
        h = host_handle()
        out = Ref{ValuePtr}(C_NULL)
        err = errref()
        GC.@preserve a shape check(LibRask.rask_value_tensor_wrap_host(
            h, lend!(a), Cint(dtype_of(T)), pointer(shape), N, pointer(a), sizeof(a), out, err), err)
        return out[]
    end
    out = Ref{ValuePtr}(C_NULL)
    err = errref()
    GC.@preserve a shape check(LibRask.rask_value_tensor(
        Cint(dtype_of(T)), pointer(shape), N, pointer(a), sizeof(a), out, err), err)
    return out[]
end

"""
    julia_value(p::Ptr{rask_value})

A Julia copy of the rask value `p` (borrowed: not freed).
"""
function julia_value(p::ValuePtr)
    p == C_NULL && throw(ArgumentError("NULL rask_value"))
    kind = LibRask.rask_value_kind(p)
    err = errref()
    if kind == LibRask.RASK_KIND_NIL
        return nothing
    elseif kind == LibRask.RASK_KIND_BOOL
        b = Ref{Bool}(false)
        check(LibRask.rask_value_get_bool(p, b, err), err)
        return b[]
    elseif kind == LibRask.RASK_KIND_INT
        i = Ref{Int64}(0)
        check(LibRask.rask_value_get_int(p, i, err), err)
        return i[]
    elseif kind == LibRask.RASK_KIND_UINT
        u = Ref{UInt64}(0)
        check(LibRask.rask_value_get_uint(p, u, err), err)
        return u[]
    elseif kind == LibRask.RASK_KIND_FLOAT
        f = Ref{Cdouble}(0)
        check(LibRask.rask_value_get_float(p, f, err), err)
        return f[]
    elseif kind == LibRask.RASK_KIND_STR
        s, n = Ref{Ptr{UInt8}}(C_NULL), Ref{Csize_t}(0)
        check(LibRask.rask_value_get_str(p, s, n, err), err)
        return n[] == 0 ? "" : unsafe_string(s[], n[])
    elseif kind == LibRask.RASK_KIND_BIN
        d, n = Ref{Ptr{UInt8}}(C_NULL), Ref{Csize_t}(0)
        check(LibRask.rask_value_get_bytes(p, d, n, err), err)
        n[] >= ZERO_COPY_MIN[] && return wrap_pinned(p, d[], (Int(n[]),))
        bytes = Vector{UInt8}(undef, n[])
        n[] > 0 && unsafe_copyto!(pointer(bytes), d[], n[])
        return bytes
    elseif kind == LibRask.RASK_KIND_ARRAY
        n = Ref{Csize_t}(0)
        check(LibRask.rask_value_len(p, n, err), err)
        out = Vector{Any}(undef, n[])
        e = Ref{ValuePtr}(C_NULL)
        for i in 1:n[]
            check(LibRask.rask_value_array_get(p, i - 1, e, err), err)
            out[i] = julia_value(e[])
        end
        return out
    elseif kind == LibRask.RASK_KIND_MAP
        n = Ref{Csize_t}(0)
        check(LibRask.rask_value_len(p, n, err), err)
        out = Dict{Any,Any}()
        k, v = Ref{ValuePtr}(C_NULL), Ref{ValuePtr}(C_NULL)
        for i in 1:n[]
            check(LibRask.rask_value_map_key(p, i - 1, k, err), err)
            check(LibRask.rask_value_map_value(p, i - 1, v, err), err)
            out[julia_value(k[])] = julia_value(v[])
        end
        return out
    elseif kind == LibRask.RASK_KIND_TENSOR
        return julia_tensor(p)
    elseif kind == LibRask.RASK_KIND_HOST
        return julia_host(p)
    end
    throw(RaskError(LibRask.RASK_ERR_TYPE, "unknown rask value kind $(Int(kind))"))
end

function julia_tensor(p::ValuePtr)
    dtype = Ref{LibRask.rask_dtype}(LibRask.RASK_DTYPE_BOOL)
    ndim = Ref{Csize_t}(0)
    shape = Ref{Ptr{Csize_t}}(C_NULL)
    data = Ref{Ptr{Cvoid}}(C_NULL)
    nbytes = Ref{Csize_t}(0)
    err = errref()
    check(LibRask.rask_value_tensor_info(p, dtype, ndim, shape, data, nbytes, err), err)
    T = eltype_of(dtype[])
    # Reverse the row-major shape back into Julia's column-major one.
    dims = ntuple(d -> Int(unsafe_load(shape[], ndim[] - d + 1)), Int(ndim[]))
    nbytes[] >= ZERO_COPY_MIN[] && return wrap_pinned(p, Ptr{T}(data[]), dims)
    a = Array{T}(undef, dims)
    sizeof(a) == nbytes[] || throw(RaskError(LibRask.RASK_ERR_INVALID_ARG,
        "tensor of shape $(reverse(dims)) has $(nbytes[]) bytes, expected $(sizeof(a))"))
    nbytes[] > 0 && unsafe_copyto!(Ptr{UInt8}(pointer(a)), Ptr{UInt8}(data[]), nbytes[])
    return a
end

# An Array over rask's memory at `ptr` (of the value `p`, borrowed), holding
# a clone of `p` (the same memory) until the array is garbage-collected.
function wrap_pinned(p::ValuePtr, ptr::Ptr{T}, dims) where {T}
    c = nonnull(LibRask.rask_value_clone(p), "rask_value_clone")
    a = unsafe_wrap(Array, ptr, dims; own=false)
    finalizer(_ -> LibRask.rask_value_free(c), a)
    return a
end

"""
    Rask.roundtrip(x)

`x` converted to a rask value and back (what a task function receives when
`x` is passed to it).
"""
function roundtrip(x)
    p = new_value(x)
    try
        return julia_value(p)
    finally
        LibRask.rask_value_free(p)
    end
end

"""
    Rask.to_msgpack(x) -> Vector{UInt8}

`x` encoded as one msgpack value, tensors as extension type 1
(docs/graph-spec.md).
"""
function to_msgpack(x)
    p = new_value(x)
    try
        data, len = Ref{Ptr{UInt8}}(C_NULL), Ref{Csize_t}(0)
        err = errref()
        check(LibRask.rask_value_to_msgpack(p, data, len, err), err)
        try
            bytes = Vector{UInt8}(undef, len[])
            len[] > 0 && unsafe_copyto!(pointer(bytes), data[], len[])
            return bytes
        finally
            LibRask.rask_buffer_free(data[], len[])
        end
    finally
        LibRask.rask_value_free(p)
    end
end

"""
    Rask.from_msgpack(bytes) -> Any

Decodes one msgpack value spanning all of `bytes`.
"""
function from_msgpack(bytes::AbstractVector{UInt8})
    data = Vector{UInt8}(bytes)
    out = Ref{ValuePtr}(C_NULL)
    err = errref()
    GC.@preserve data check(LibRask.rask_value_from_msgpack(pointer(data), length(data), out, err), err)
    try
        return julia_value(out[])
    finally
        LibRask.rask_value_free(out[])
    end
end

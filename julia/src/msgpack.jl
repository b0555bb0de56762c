# Values to and from msgpack in Julia itself, for the batched client calls
# (a `map`'s arguments in one buffer, a batch's values gathered in one
# buffer): one ccall for many values instead of a few ccalls per value.
#
# Only the common kinds are handled here: nothing, Bool, integers, floats,
# strings (Symbol, Char), byte vectors, and vectors and tuples of these. Any
# other value (tensors, dicts, host objects, what rask refuses) goes through
# rask's own C conversion (`to_msgpack`, `rask_value_from_msgpack` +
# `julia_value`), so a value means, and fails, exactly as it does in
# `new_value` / `julia_value` (values.jl); tests compare the two.

# ------------------------------------------------------------------ encoding

@inline be!(io::IOBuffer, x) = write(io, hton(x))

pack!(io::IOBuffer, ::Nothing) = write(io, 0xc0)
pack!(io::IOBuffer, b::Bool) = write(io, b ? 0xc3 : 0xc2)
function pack!(io::IOBuffer, x::Int64)
    if -32 <= x <= 127
        write(io, x % UInt8)              # positive or negative fixint
    elseif typemin(Int32) <= x <= typemax(Int32)
        write(io, 0xd2); be!(io, x % Int32)
    else
        write(io, 0xd3); be!(io, x)
    end
end
function pack!(io::IOBuffer, x::Integer)
    typemin(Int64) <= x <= typemax(Int64) && return pack!(io, Int64(x))
    0 <= x <= typemax(UInt64) || throw(InexactError(:new_value, Int64, x))
    write(io, 0xcf); be!(io, UInt64(x))
end
pack!(io::IOBuffer, x::AbstractFloat) = (write(io, 0xcb); be!(io, Float64(x)))
pack!(io::IOBuffer, s::Symbol) = pack!(io, String(s))
pack!(io::IOBuffer, c::Char) = pack!(io, string(c))
pack!(io::IOBuffer, s::AbstractString) = pack!(io, String(s))
function pack!(io::IOBuffer, s::String)
    n = sizeof(s)
    # rask refuses what is not UTF-8 (and what does not fit): its own
    # conversion says so.
    (n <= typemax(UInt32) && isvalid(s)) || return pack_c!(io, s)
    if n < 32
        write(io, 0xa0 | n % UInt8)
    elseif n <= typemax(UInt8)
        write(io, 0xd9, n % UInt8)
    elseif n <= typemax(UInt16)
        write(io, 0xda); be!(io, n % UInt16)
    else
        write(io, 0xdb); be!(io, n % UInt32)
    end
    write(io, s)
end
function pack!(io::IOBuffer, b::AbstractVector{UInt8})
    n = length(b)
    n <= typemax(UInt32) || return pack_c!(io, b)
    if n <= typemax(UInt8)
        write(io, 0xc4, n % UInt8)
    elseif n <= typemax(UInt16)
        write(io, 0xc5); be!(io, n % UInt16)
    else
        write(io, 0xc6); be!(io, n % UInt32)
    end
    b isa Vector{UInt8} ? write(io, b) : foreach(x -> write(io, x), b)
end
function pack!(io::IOBuffer, a::AbstractVector)
    istensor(a) && return pack_c!(io, a)
    pack_array!(io, a)
end
pack!(io::IOBuffer, t::Tuple) = pack_array!(io, t)
pack!(io::IOBuffer, x) = pack_c!(io, x)   # tensors, dicts, ...: rask's conversion

function pack_array!(io::IOBuffer, items)
    n = length(items)
    n <= typemax(UInt32) || return pack_c!(io, items)
    if n < 16
        write(io, 0x90 | n % UInt8)
    elseif n <= typemax(UInt16)
        write(io, 0xdc); be!(io, n % UInt16)
    else
        write(io, 0xdd); be!(io, n % UInt32)
    end
    for x in items
        pack!(io, x)
    end
    return nothing
end

# Any value, through rask's own conversion (new_value, then its encoder).
pack_c!(io::IOBuffer, x) = (write(io, to_msgpack(x)); nothing)

"""
    Rask.pack_calls(calls) -> Vector{UInt8}

The arguments of a `map`'s calls (a vector of tuples) as one msgpack array
of argument arrays, the `calls` of `rask_client_map_msgpack`.
"""
function pack_calls(calls::AbstractVector)
    io = IOBuffer(sizehint = 4 + 4 * length(calls))
    pack_array!(io, calls)
    return take!(io)
end

# ------------------------------------------------------------------ decoding

# A msgpack buffer of `len` bytes at `ptr` (rask's, borrowed), read from
# `pos` (0-based).
mutable struct Unpacker
    ptr::Ptr{UInt8}
    len::Int
    pos::Int
end

function need(u::Unpacker, n::Integer)
    u.pos + n <= u.len || throw(RaskError(LibRask.RASK_ERR_DECODE,
        "msgpack from rask ends after $(u.len) bytes, in a value at byte $(u.pos)"))
    return nothing
end
@inline function byte!(u::Unpacker)
    need(u, 1)
    b = unsafe_load(u.ptr, u.pos + 1)
    u.pos += 1
    return b
end
@inline function be!(u::Unpacker, ::Type{T}) where {T}
    need(u, sizeof(T))
    x = ntoh(unsafe_load(Ptr{T}(u.ptr + u.pos)))   # unaligned loads are fine on x86-64 and aarch64
    u.pos += sizeof(T)
    return x
end

function unpack_str(u::Unpacker, n::Integer)
    need(u, n)
    s = unsafe_string(u.ptr + u.pos, n)
    u.pos += n
    return s
end
function unpack_bin(u::Unpacker, n::Integer)
    need(u, n)
    b = Vector{UInt8}(undef, n)
    n > 0 && unsafe_copyto!(pointer(b), u.ptr + u.pos, n)
    u.pos += n
    return b
end
function unpack_array(u::Unpacker, n::Integer)
    out = Vector{Any}(undef, n)
    for i in 1:n
        out[i] = unpack(u)
    end
    return out
end
function unpack_map(u::Unpacker, n::Integer)
    out = Dict{Any,Any}()
    for _ in 1:n
        k = unpack(u)
        out[k] = unpack(u)
    end
    return out
end
# An extension value (a tensor, a host object) of `n` payload bytes whose
# header began at `start`: rask decodes it, `julia_value` converts it.
function unpack_ext(u::Unpacker, start::Int, n::Integer)
    need(u, 1 + n)
    u.pos += 1 + n
    out = Ref{ValuePtr}(C_NULL)
    err = errref()
    check(LibRask.rask_value_from_msgpack(u.ptr + start, u.pos - start, out, err), err)
    try
        return julia_value(out[])
    finally
        LibRask.rask_value_free(out[])
    end
end

"""
    unpack(u::Unpacker)

The next value, as `julia_value` would give it: ints as Int64 (UInt64
above typemax(Int64)), floats as Float64, strings, byte vectors (copied),
arrays as `Vector{Any}`, maps as `Dict{Any,Any}`, tensors and host values
through rask.
"""
function unpack(u::Unpacker)
    start = u.pos
    m = byte!(u)
    m <= 0x7f && return Int64(m)
    m >= 0xe0 && return Int64(m % Int8)
    m <= 0x8f && return unpack_map(u, m & 0x0f)
    m <= 0x9f && return unpack_array(u, m & 0x0f)
    m <= 0xbf && return unpack_str(u, m & 0x1f)
    m == 0xc0 && return nothing
    m == 0xc2 && return false
    m == 0xc3 && return true
    m == 0xc4 && return unpack_bin(u, byte!(u))
    m == 0xc5 && return unpack_bin(u, be!(u, UInt16))
    m == 0xc6 && return unpack_bin(u, be!(u, UInt32))
    m == 0xc7 && return unpack_ext(u, start, byte!(u))
    m == 0xc8 && return unpack_ext(u, start, be!(u, UInt16))
    m == 0xc9 && return unpack_ext(u, start, be!(u, UInt32))
    m == 0xca && return Float64(be!(u, Float32))
    m == 0xcb && return be!(u, Float64)
    m == 0xcc && return Int64(byte!(u))
    m == 0xcd && return Int64(be!(u, UInt16))
    m == 0xce && return Int64(be!(u, UInt32))
    if m == 0xcf
        x = be!(u, UInt64)
        return x <= typemax(Int64) ? Int64(x) : x
    end
    m == 0xd0 && return Int64(byte!(u) % Int8)
    m == 0xd1 && return Int64(be!(u, Int16))
    m == 0xd2 && return Int64(be!(u, Int32))
    m == 0xd3 && return be!(u, Int64)
    0xd4 <= m <= 0xd8 && return unpack_ext(u, start, 1 << (m - 0xd4))
    m == 0xd9 && return unpack_str(u, byte!(u))
    m == 0xda && return unpack_str(u, be!(u, UInt16))
    m == 0xdb && return unpack_str(u, be!(u, UInt32))
    m == 0xdc && return unpack_array(u, be!(u, UInt16))
    m == 0xdd && return unpack_array(u, be!(u, UInt32))
    m == 0xde && return unpack_map(u, be!(u, UInt16))
    m == 0xdf && return unpack_map(u, be!(u, UInt32))
    throw(RaskError(LibRask.RASK_ERR_DECODE, "msgpack from rask has the reserved marker 0xc1 at byte $start"))
end

# The values of a msgpack array in rask's buffer (`data`, `len`), which is
# freed whatever happens.
function unpack_buffer(data::Ptr{UInt8}, len::Integer)
    try
        u = Unpacker(data, Int(len), 0)
        v = unpack(u)
        u.pos == u.len || throw(RaskError(LibRask.RASK_ERR_DECODE,
            "msgpack from rask has $(u.len - u.pos) bytes after its value"))
        return v
    finally
        LibRask.rask_buffer_free(data, len)
    end
end

"""
    Rask.unpack_msgpack(bytes) -> Any

Decodes one msgpack value spanning all of `bytes` in Julia (what the
batched gathers use); `Rask.from_msgpack` does it through rask.
"""
function unpack_msgpack(bytes::AbstractVector{UInt8})
    data = Vector{UInt8}(bytes)
    GC.@preserve data begin
        u = Unpacker(pointer(data), length(data), 0)
        v = unpack(u)
        u.pos == u.len || throw(RaskError(LibRask.RASK_ERR_DECODE, "$(u.len - u.pos) bytes after the value"))
        return v
    end
end

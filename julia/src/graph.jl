# Graphs: keys bound to literal values or to tasks, built from Julia.

"""
    Key(name)

A reference to the key `name` in a task's arguments: the task receives that
key's value. A `Symbol` means the same (`:a` is `Key("a")`), and so does
`Ref("a")`. A plain string is a literal string, never a reference.
"""
struct Key
    name::String
    function Key(name::AbstractString)
        isempty(name) && throw(ArgumentError("a rask key must not be empty"))
        occursin('\0', name) && throw(ArgumentError("a rask key must not contain NUL: $(repr(name))"))
        return new(String(name))
    end
end
Key(s::Symbol) = Key(String(s))
Key(k::Key) = k
Base.show(io::IO, k::Key) = print(io, "Key(", repr(k.name), ")")

"""What may name a key: a Symbol, a string or a `Key`."""
const KeyLike = Union{Symbol,AbstractString,Key}

keyname(k::KeyLike) = Key(k).name
keyname(k) = throw(ArgumentError("a rask key is a Symbol, a string or a Key, not a $(typeof(k))"))

isref(x) = x isa Symbol || x isa Key || x isa Base.RefValue{<:AbstractString}
refname(x::Union{Symbol,Key}) = keyname(x)
refname(x::Base.RefValue{<:AbstractString}) = keyname(x[])

"""
    Literal(x)

`x` passed to a task as it is: a Symbol becomes a string, a vector is not
searched for references.
"""
struct Literal
    value::Any
end

"""
    Builtin(name)

A function rask runs itself, on its own threads: `Rask.Builtins.inc`,
`Rask.Builtins.add`, ... (`noop`, `identity`, `list`, `inc`, `dec`, `neg`,
`add`, `sub`, `mul`, `div`, `sum`, `max`, `min`, `len`, `getitem`). In a
task, a `Symbol` or string in the function's place names a rask function in
the same way (`Rask.Task(:inc, :a)`). Calling a `Builtin` computes it at once:
`Rask.Builtins.add(1, 2) == 3`.
"""
struct Builtin
    name::String
end
Base.show(io::IO, b::Builtin) = print(io, "Rask.Builtins.", b.name)

"""
    Rask.Task(f, args...)

A task: the call `f(args...)` as a graph node. `f` is a Julia function (run
by Julia, in pull mode), a `Builtin`, or the name of a rask function (a
`Symbol` or a string). Each argument is a reference (`:a`, `Key("a")`,
`Ref("a")`), another `Rask.Task` or a delayed value (added to the graph under
a key of its own), a vector or tuple of arguments (passed as an array, each
element interpreted the same way), `Literal(x)`, or any other value, passed as
it is.

Not exported: Base has a `Task`. Write `Rask.Task` or `import Rask: Task`.
"""
struct Task
    f::Any
    args::Tuple
    Task(f, args...) = new(f, args)
end

function Base.show(io::IO, t::Task)
    print(io, "Rask.Task(", t.f isa Function ? nameof(t.f) : repr(t.f))
    for a in t.args
        print(io, ", ")
        show(io, a)
    end
    print(io, ")")
end

"""
    Delayed

A lazy call made by `delayed(f)(args...)` or `@delayed f(args...)`: a task
and the key it will have. `compute(d)` builds the graph it needs and computes
it; a delayed value passed to another delayed call becomes a reference.
"""
struct Delayed
    task::Task
    key::String
end
Base.show(io::IO, d::Delayed) = print(io, "Delayed(", repr(d.key), ": ", d.task, ")")

const KEY_COUNTER = Threads.Atomic{Int}(0)

shortname(f::Builtin) = f.name
shortname(f::Union{Symbol,AbstractString}) = String(f)
shortname(f::Function) = string(nameof(f))
shortname(f) = string(nameof(typeof(f)))

"""A new key for a task of `f`: "inc-12" (unique in this process)."""
genkey(f) = string(shortname(f), "-", Threads.atomic_add!(KEY_COUNTER, 1) + 1)

# ------------------------------------------------------------------ Graph

"""
    Graph()
    Graph(key => value_or_task, ...)
    Graph(msgpack_bytes::Vector{UInt8})

A rask task graph. Bind keys with `g[key] = x`:

- `g[:a] = 1`: a literal value (any value rask can hold, see `Rask.roundtrip`);
- `g[:b] = Rask.Task(f, :a)`: a task (see `Rask.Task`);
- `g[:c] = :b`: an alias (`identity(b)`);
- `g[:d] = delayed_value`: the value of a delayed call.

From bytes: the graph document of docs/graph-spec.md (`Rask.outputs(g)` gives
its `outputs`). Free it with `close(g)` (idempotent) or leave it to the
garbage collector.
"""
mutable struct Graph
    ptr::Ptr{LibRask.rask_graph}
    funcs::Dict{String,Any}      # rask name => Julia function, for pull mode
    fnames::IdDict{Any,String}   # Julia function => its rask name
    delayed::Set{String}         # keys of the Delayed nodes already added

    function Graph(ptr::Ptr{LibRask.rask_graph})
        g = new(nonnull(ptr, "rask_graph_new"), Dict{String,Any}(), IdDict{Any,String}(), Set{String}())
        return finalizer(close, g)
    end
end

Graph() = Graph(LibRask.rask_graph_new())

function Graph(kvs::Union{Pair,Tuple}...)
    g = Graph()
    for (k, v) in kvs
        g[k] = v
    end
    return g
end
Graph(d::AbstractDict) = Graph(pairs(d)...)

function Graph(doc::AbstractVector{UInt8})
    data = Vector{UInt8}(doc)
    out = Ref{Ptr{LibRask.rask_graph}}(C_NULL)
    err = errref()
    GC.@preserve data check(LibRask.rask_graph_from_msgpack(pointer(data), length(data), out, err), err)
    return Graph(out[])
end

function Base.unsafe_convert(::Type{Ptr{LibRask.rask_graph}}, g::Graph)
    g.ptr == C_NULL && throw(ArgumentError("the Rask.Graph is closed"))
    return g.ptr
end

"""
    close(g::Graph)

Frees the graph now (computations started from it are not affected). Calling
it again does nothing.
"""
function Base.close(g::Graph)
    p = g.ptr
    g.ptr = C_NULL
    LibRask.rask_graph_free(p)
    return nothing
end
Base.isopen(g::Graph) = g.ptr != C_NULL

"""The number of keys in the graph."""
Base.length(g::Graph) = Int(LibRask.rask_graph_len(g))

function Base.show(io::IO, g::Graph)
    if isopen(g)
        print(io, "Rask.Graph(", length(g), " keys")
        isempty(g.funcs) || print(io, "; Julia functions: ", join(sort!(collect(keys(g.funcs))), ", "))
        print(io, ")")
    else
        print(io, "Rask.Graph(closed)")
    end
end

"""A copy of the graph (cheap: rask shares the nodes until one side changes)."""
function Base.copy(g::Graph)
    c = Graph(LibRask.rask_graph_clone(g))
    merge!(c.funcs, g.funcs)
    merge!(c.fnames, g.fnames)
    union!(c.delayed, g.delayed)
    return c
end

"""
    validate(g::Graph) -> g

Checks the whole graph: every reference names a key, and there is no cycle.
Throws a `RaskError` (`RASK_ERR_GRAPH`) naming the keys otherwise.
"""
function validate(g::Graph)
    err = errref()
    check(LibRask.rask_graph_validate(g, err), err)
    return g
end

"""
    Rask.to_dot(g::Graph) -> String

The graph as Graphviz DOT text (`rask_graph_to_dot`): tasks as ellipses
labelled with key and function, values as boxes, keys referenced but not
defined as dashed red boxes; edges from a dependency to its task.
"""
function to_dot(g::Graph)
    data = Ref{Ptr{UInt8}}(C_NULL)
    len = Ref{Csize_t}(0)
    err = errref()
    check(LibRask.rask_graph_to_dot(g, data, len, err), err)
    try
        return unsafe_string(data[], len[])
    finally
        LibRask.rask_buffer_free(data[], len[])  # memory made by Rust is freed by Rust
    end
end

"""
    Rask.visualize(g::Graph, filename; format = extension of filename) -> String or Vector{UInt8}

Writes a picture of the graph, after `dask.visualize`: `format` `"dot"` (or
a `.dot` file) the DOT text (returned), `"svg"`, `"png"` or `"pdf"` the
picture Graphviz's `dot` program draws (its bytes returned; an
`ErrorException` saying so when `dot` is not installed).
"""
function visualize(g::Graph, filename::AbstractString;
                   format::AbstractString = lowercase(lstrip(splitext(filename)[2], '.')))
    fmt = isempty(format) ? "dot" : lowercase(format)
    fmt in ("dot", "svg", "png", "pdf") ||
        throw(ArgumentError("visualize: format \"$fmt\" is not one of dot, svg, png, pdf"))
    text = to_dot(g)
    if fmt == "dot"
        write(filename, text)
        return text
    end
    # Not Sys.which's path: it resolves links, and Debian's `dot` is a link
    # to a program that acts by the name it was called with.
    Sys.which("dot") === nothing && error("visualize: drawing $fmt needs Graphviz's 'dot' program (apt-get install graphviz); " *
                             "a .dot file needs nothing")
    out = IOBuffer()
    run(pipeline(`dot -T$fmt`; stdin = IOBuffer(text), stdout = out))
    bytes = take!(out)
    write(filename, bytes)
    return bytes
end

"""
    Rask.outputs(g::Graph) -> Vector{String}

The `outputs` of the msgpack document the graph was read from (empty for a
graph built in Julia).
"""
function outputs(g::Graph)
    n = LibRask.rask_graph_doc_output_count(g)
    return String[unsafe_string(LibRask.rask_graph_doc_output(g, i - 1)) for i in 1:n]
end

function Base.setindex!(g::Graph, v, key)
    k = keyname(key)
    pending = Delayed[]
    if v isa Task
        add_task!(g, k, v, pending)
    elseif v isa Delayed
        push!(pending, v)
        add_task!(g, k, Task(:identity, Key(v.key)), pending)
    elseif isref(v)
        add_task!(g, k, Task(:identity, v), pending)
    else
        err = errref()
        x = v isa Literal ? v.value : v
        # The value is consumed, even when the call fails.
        check(LibRask.rask_graph_add_value(g, k, new_value(x), err), err)
    end
    add_pending!(g, pending)
    return v
end

"""
    funcname!(g, f) -> String

The rask function name of `f` in `g`: a Builtin's or a given name as it is; a
Julia function gets "Module.name" (never a builtin's name), registered in
`g.funcs` for pull mode; "Module.name@2" if another object has that name.
"""
function funcname!(g::Graph, f)
    f isa Builtin && return f.name
    f isa Union{Symbol,AbstractString} && return String(f)
    name = get(g.fnames, f, nothing)
    name === nothing || return name
    base = f isa Function ? string(parentmodule(f), ".", nameof(f)) : string(typeof(f))
    name, i = base, 1
    while haskey(g.funcs, name)
        i += 1
        name = string(base, "@", i)
    end
    g.funcs[name] = f
    g.fnames[f] = name
    return name
end

function add_task!(g::Graph, key::String, t::Task, pending::Vector{Delayed})
    fname = funcname!(g, t.f)
    err = errref()
    if all(isref, t.args)
        # The fast path: every argument is a reference, nothing to allocate.
        refs = String[refname(a) for a in t.args]
        ptrs = Ptr{UInt8}[pointer(r) for r in refs]
        GC.@preserve refs check(LibRask.rask_graph_add_task_refs(g, key, fname, ptrs, length(ptrs), err), err)
        return
    end
    args = new_args!(t.args, pending)
    # Every argument is consumed, even when the call fails.
    check(LibRask.rask_graph_add_task(g, key, fname, args, length(args), err), err)
    return
end

# Owned rask_args for `items`; none is left behind if one fails.
function new_args!(items, pending::Vector{Delayed})
    args = Ptr{LibRask.rask_arg}[]
    try
        for a in items
            push!(args, new_arg!(a, pending))
        end
    catch
        foreach(LibRask.rask_arg_free, args)
        rethrow()
    end
    return args
end

function new_arg!(a, pending::Vector{Delayed})
    err = errref()
    if isref(a)
        out = Ref{Ptr{LibRask.rask_arg}}(C_NULL)
        check(LibRask.rask_arg_ref(refname(a), out, err), err)
        return out[]
    elseif a isa Task
        d = Delayed(a, genkey(a.f))
        push!(pending, d)
        return new_arg!(Key(d.key), pending)
    elseif a isa Delayed
        push!(pending, a)
        return new_arg!(Key(a.key), pending)
    elseif a isa Literal
        return nonnull(LibRask.rask_arg_value(new_value(a.value)), "rask_arg_value")
    elseif a isa Int64
        return nonnull(LibRask.rask_arg_int(a), "rask_arg_int")
    elseif a isa Float64
        return nonnull(LibRask.rask_arg_float(a), "rask_arg_float")
    elseif a isa Tuple || (a isa AbstractVector && !istensor(a) && !(a isa AbstractVector{UInt8}))
        items = new_args!(a, pending)
        out = Ref{Ptr{LibRask.rask_arg}}(C_NULL)
        # Every item is consumed, even when the call fails.
        check(LibRask.rask_arg_list(items, length(items), out, err), err)
        return out[]
    elseif (a isa AbstractDict || a isa NamedTuple) && any(holds_ref, values(a))
        throw(ArgumentError(
            "a Dict argument cannot hold references or tasks: the C API has no map argument. " *
            "Pass them as arguments of their own, or wrap the Dict in Literal(...) to pass " *
            "Symbols as strings"))
    end
    return nonnull(LibRask.rask_arg_value(new_value(a)), "rask_arg_value")
end

holds_ref(x) = isref(x) || x isa Task || x isa Delayed
holds_ref(x::Union{Tuple,AbstractArray}) = !istensor(x) && any(holds_ref, x)
holds_ref(x::Union{AbstractDict,NamedTuple}) = any(holds_ref, values(x))

# Adds the delayed nodes reached from `pending` (without recursion: a long
# chain of delayed calls is fine).
function add_pending!(g::Graph, pending::Vector{Delayed})
    while !isempty(pending)
        d = pop!(pending)
        d.key in g.delayed && continue
        add_task!(g, d.key, d.task, pending)
        push!(g.delayed, d.key)
    end
    return g
end

# Lazy calls, in the spirit of Dask's `delayed` and Dagger's `@spawn`: build
# the graph by calling functions, compute it at the end.

"""
    delayed(f; key = nothing)(args...) -> Delayed

A lazy call of `f(args...)`: nothing runs until `compute`. `f` is a Julia
function, a `Builtin` (`Rask.Builtins.add`) or a rask function name. The
arguments follow the rules of `Rask.Task`; a `Delayed` among them (also
inside a vector or tuple) becomes a reference to its result. The node's key is
`key`, or "name-N" (unique in this process).
"""
delayed(f; key = nothing) = (args...) -> Delayed(Task(f, args...), key === nothing ? genkey(f) : keyname(key))

"""
    @delayed f(args...)

`delayed(f)(args...)`: a lazy call, computed with `compute`.

```julia
x = @delayed inc(1)
y = @delayed inc(10)
z = @delayed Rask.Builtins.add(x, y)
compute(z) == 13
```
"""
macro delayed(ex)
    (ex isa Expr && ex.head == :call) || throw(ArgumentError("@delayed expects a call, f(args...), got $ex"))
    f, args = ex.args[1], ex.args[2:end]
    any(a -> a isa Expr && a.head in (:parameters, :kw), args) && throw(ArgumentError(
        "@delayed: keyword arguments are not supported (rask tasks take positional arguments)"))
    return :($delayed($(esc(f)))($(map(esc, args)...)))
end

"""
    compute(d::Delayed; threads = 0) -> value
    compute(d1::Delayed, d2::Delayed, ...; ...) -> Tuple
    compute(t::Rask.Task; ...) -> value

Builds the graph the delayed values need and computes it (see
`compute(::Graph, key)` for the options).
"""
compute(d::Delayed; kw...) = compute_delayed(Delayed[d]; kw...)[1]
compute(d1::Delayed, d2::Delayed, ds::Delayed...; kw...) = Tuple(compute_delayed(Delayed[d1, d2, ds...]; kw...))
compute(t::Task; kw...) = compute(Delayed(t, genkey(t.f)); kw...)

function compute_delayed(ds::Vector{Delayed}; kw...)
    g = Graph()
    try
        add_pending!(g, copy(ds))
        return compute(g, [d.key for d in ds]; kw...)
    finally
        close(g)
    end
end

"""
    Rask.graph(d::Delayed...) -> Graph

The graph of the delayed values (their keys are `d.key`).
"""
function graph(ds::Delayed...)
    g = Graph()
    add_pending!(g, collect(Delayed, ds))
    return g
end

# Calling a builtin computes it at once.
(b::Builtin)(args...) = compute(Task(b, args...); threads = 1)

# Computing: a background rask computation, with the tasks of Julia functions
# pulled and run on the calling Julia thread (pull mode; Julia 1.5 cannot run
# code on threads it did not create), while rask's threads run the builtins.

"""
    Rask.Computation

A running computation (from `Rask.start`). `Rask.run!(c)` runs its Julia
tasks until it ends, `fetch(c)` returns the values of its keys, `close(c)`
cancels it if needed and frees it (idempotent; the garbage collector does it
too). `compute` does all of this.
"""
mutable struct Computation
    ptr::Ptr{LibRask.rask_computation}
    keys::Vector{String}
    funcs::Dict{String,Any}
    # The first Julia function that failed: its task's key and the exception.
    failed::Union{Nothing,Tuple{String,CapturedException}}

    function Computation(ptr, keys, funcs)
        return finalizer(close, new(ptr, keys, funcs, nothing))
    end
end

function Base.unsafe_convert(::Type{Ptr{LibRask.rask_computation}}, c::Computation)
    c.ptr == C_NULL && throw(ArgumentError("the Rask.Computation is closed"))
    return c.ptr
end

"""
    close(c::Computation)

Cancels the computation if it is still running, waits for rask's threads and
frees it. Calling it again does nothing.
"""
function Base.close(c::Computation)
    p = c.ptr
    c.ptr = C_NULL
    LibRask.rask_computation_free(p)
    return nothing
end
Base.isopen(c::Computation) = c.ptr != C_NULL

Base.show(io::IO, c::Computation) = print(io, "Rask.Computation(", join(repr.(c.keys), ", "),
    isopen(c) ? (isdone(c) ? "; done" : "; running") : "; closed", ")")

"""Whether the computation has ended (finished, failed or cancelled)."""
isdone(c::Computation) = LibRask.rask_computation_is_done(c)

"""Cancels the computation: no new task starts; `fetch` then throws RASK_ERR_CANCELLED."""
function cancel(c::Computation)
    err = errref()
    check(LibRask.rask_computation_cancel(c, err), err)
    return c
end

"""
    Rask.stats(c::Computation) -> NamedTuple

`(tasks, tasks_run, peak_live)`: the tasks the keys need, those run so far,
the most results held in memory at once.
"""
function stats(c::Computation)
    s = Ref(LibRask.rask_compute_stats(0, 0, 0))
    err = errref()
    check(LibRask.rask_computation_stats(c, s, err), err)
    return (tasks = Int(s[].tasks), tasks_run = Int(s[].tasks_run), peak_live = Int(s[].peak_live))
end

"""
    Rask.start(g::Graph, keys; threads = 0, functions = nothing) -> Computation

Starts computing `keys` (a vector of keys) in the background: `threads` rask
threads (0: one per CPU) run the builtins. The Julia functions of the graph,
and `functions` (a `Dict` of rask function name => Julia function, for names
used by a graph read from msgpack), are registered as pulled functions: their
tasks wait until `Rask.run!` (or `fetch`) runs them on this thread. Throws a
`RaskError` for unknown keys, graph errors and unknown functions.
"""
function start(g::Graph, keys::AbstractVector; threads::Integer = 0, functions = nothing)
    names = String[keyname(k) for k in keys]
    funcs = copy(g.funcs)
    if functions !== nothing
        for (name, f) in functions
            funcs[String(name)] = f
        end
    end
    err = errref()
    reg = nonnull(LibRask.rask_registry_new(), "rask_registry_new")
    try
        for name in Base.keys(funcs)
            check(LibRask.rask_registry_add_pulled(reg, name, err), err)
        end
        opts = Ref(LibRask.rask_compute_options(UInt32(threads)))
        out = Ref{Ptr{LibRask.rask_computation}}(C_NULL)
        ptrs = Ptr{UInt8}[pointer(n) for n in names]
        GC.@preserve names check(LibRask.rask_computation_start(
            g, ptrs, length(ptrs), reg, opts, out, err), err)
        return Computation(out[], names, funcs)
    finally
        # The computation has its own copy of what it needs.
        LibRask.rask_registry_free(reg)
    end
end

"""
    Rask.run!(c::Computation; poll_ms = 50) -> c

Runs the computation's Julia tasks on this thread until it ends: asks rask
for the next ready task (waiting up to `poll_ms` milliseconds, then calling
`yield()` so that other Julia tasks and Ctrl-C get their turn), calls the
Julia function with the task's arguments, and hands the result back. A Julia
exception fails the task, with `sprint(showerror, e)` as the message, and so
the computation; `fetch` then throws a `RaskError` whose `cause` is that
exception. An interrupt cancels nothing by itself: it propagates (`compute`
closes the computation on the way out).
"""
function run!(c::Computation; poll_ms::Integer = 50)
    task = Ref{Ptr{LibRask.rask_task}}(C_NULL)
    err = errref()
    n = 0
    try
        while true
            st = LibRask.rask_computation_next_task(c, poll_ms, task, err)
            if st == LibRask.RASK_OK
                t = task[]
                task[] = C_NULL
                failed = run_task!(c.funcs, t)
                failed === nothing || c.failed !== nothing || (c.failed = failed)
                (n += 1) % 64 == 0 && yield()
            elseif st == LibRask.RASK_TIMEOUT
                yield()
            elseif st == LibRask.RASK_DONE
                break
            else
                throw(take_error(st, err))
            end
        end
    finally
        # Only when interrupted between receiving a task and running it.
        task[] == C_NULL || LibRask.rask_task_free(task[])
    end
    return c
end

# A message rask can take: no NUL (it is passed as a C string).
cmessage(s::AbstractString) = replace(String(s), '\0' => "\\0")

function describe(e)
    try
        return sprint(showerror, e)
    catch
        return string("an exception of type ", typeof(e))
    end
end

# The exception of a task's Julia function, with the backtrace cut where rask
# called it (the frames below are the pull loop's).
function user_exception(e, bt)
    ce = CapturedException(e, bt)
    cut = findfirst(((sf, _),) -> sf.func === :run_task!, ce.processed_bt)
    if cut !== nothing
        frames = ce.processed_bt[1:cut-1]
        while !isempty(frames) && occursin("invokelatest", string(frames[end][1].func))
            pop!(frames)
        end
        resize!(ce.processed_bt, length(frames))
        copyto!(ce.processed_bt, frames)
    end
    return ce
end

# A captured exception with its backtrace as text, as Julia shows it.
function backtrace_text(ce::CapturedException)
    try
        return sprint(showerror, ce)
    catch
        return describe(ce.ex)
    end
end

# Runs one pulled task with the Julia function `funcs[name]` and ends it
# (complete or fail: `t` is consumed on every path). Returns nothing, or the
# failed task's key and the exception. A worker's pull loop (later: worker.jl)
# runs its tasks with this too.
function run_task!(funcs::AbstractDict, t::Ptr{LibRask.rask_task})
    result = ValuePtr(C_NULL)
    stage = "calling"
    try
        drain_released!()
        fname = unsafe_string(LibRask.rask_task_func(t))
        f = get(funcs, fname, nothing)
        f === nothing && error("no Julia function is named $(repr(fname))")
        args = Any[julia_value(LibRask.rask_task_arg(t, i - 1)) for i in 1:LibRask.rask_task_nargs(t)]
        r = Base.invokelatest(f, args...)
        stage = "converting the result"
        result = host_value(r)  # stays a Julia object in this process (host.jl)
    catch e
        bt = catch_backtrace()
        if e isa InterruptException
            LibRask.rask_task_fail(t, "interrupted", C_NULL)
            rethrow()
        end
        key = unsafe_string(LibRask.rask_task_key(t))
        msg = stage == "calling" ? describe(e) : "its result cannot be a rask value: " * describe(e)
        ce = user_exception(e, bt)
        # The exception's type and its backtrace travel to the clients
        # (worker tasks; a local computation keeps `ce` as the cause).
        LibRask.rask_task_fail_exception(t, cmessage(msg), cmessage(string(typeof(e))),
                                         cmessage(backtrace_text(ce)), C_NULL)
        return (key, ce)
    end
    # RASK_OK, or RASK_DONE if the computation had already ended (the result
    # is then discarded); the task and the result are consumed either way.
    LibRask.rask_task_complete(t, result, C_NULL)
    return nothing
end

"""
    fetch(c::Computation) -> Vector{Any}

Runs the computation to its end (`Rask.run!`) and returns the values of its
keys, in order. Throws a `RaskError` if it failed (for a Julia function's
exception, with that exception as `cause`).
"""
function Base.fetch(c::Computation; poll_ms::Integer = 50)
    run!(c; poll_ms = poll_ms)
    err = errref()
    st = LibRask.rask_computation_wait(c, -1, err)
    if st != LibRask.RASK_OK
        e = take_error(st, err)
        f = c.failed
        cause = f !== nothing && occursin("task '$(f[1])'", e.message) ? f[2] : nothing
        throw(RaskError(e.status, e.message, cause))
    end
    results = fill(ValuePtr(C_NULL), length(c.keys))
    check(LibRask.rask_computation_results(c, results, err), err)
    try
        return Any[julia_value(p) for p in results]
    finally
        foreach(LibRask.rask_value_free, results)
        drain_released!()
    end
end

"""
    compute(g::Graph, key; threads = 0, functions = nothing) -> value
    compute(g::Graph, keys::AbstractVector; ...) -> Vector
    compute(g::Graph, key1, key2, ...; ...) -> Tuple

Computes keys of the graph and returns their values. `threads` rask threads
run the builtins (0: one per CPU); Julia functions run on this thread in the
meantime. `functions` maps further rask function names to Julia functions (for
graphs read from msgpack). Throws a `RaskError` naming the keys for a cycle,
a missing key or an unknown function, and the task for a failed one.
"""
function compute(g::Graph, keys::AbstractVector; poll_ms::Integer = 50, kw...)
    c = start(g, keys; kw...)
    try
        return fetch(c; poll_ms = poll_ms)
    finally
        close(c)
    end
end
compute(g::Graph, key::KeyLike; kw...) = compute(g, [key]; kw...)[1]
compute(g::Graph, k1::KeyLike, k2::KeyLike, ks::KeyLike...; kw...) = Tuple(compute(g, [k1, k2, ks...]; kw...))

# The distributed part, worker side: `Rask.Worker` joins a cluster and serves
# Julia functions in pull mode. rask's worker (its connections, data store and
# threads for builtins) runs in the background; the Julia functions' tasks
# wait in its queue until the Julia thread that serves the worker takes them
# (`rask_worker_next_task`) and runs them with `run_task!`, as `compute` does
# for a local computation.

"""
    Rask.Worker(address, functions; nthreads = 1, name = nothing, token = nothing,
                host = "127.0.0.1", port = 0, memory_limit = :auto, heartbeat = nothing,
                connect_timeout = nothing, reconnect_timeout = nothing, tls_ca_file = nothing,
                tls_cert = nothing, tls_key = nothing, memory_target_fraction = nothing,
                memory_spill_fraction = nothing, memory_pause_fraction = nothing,
                memory_terminate_fraction = nothing, local_directory = nothing,
                spill_compression = :lz4)

A worker that joins the scheduler at `address` (`"tcp://HOST:PORT"`) and
offers the cluster the Julia `functions`, beside rask's builtins:

- a `Dict` (or pairs) of rask function name => Julia function:
  `Dict("jl_f" => f)`; clients call it as `submit(client, "jl_f", x)`;
- or a vector of Julia functions, each named `Module.name` (as in a local
  `Graph`, so `compute(client, graph, keys)` finds them there).

`nthreads` rask threads run builtins; the Julia functions run on the Julia
thread that serves the worker, up to `nthreads` of their tasks at once (each
in a Julia task of its own, so they overlap while they wait: `sleep`, I/O, a
`Channel`; the scheduler sends the worker work for all of them):
`run(worker)` serves until the worker stops
(`close(worker)` from another Julia task, the scheduler closing it, a lost
connection). Run it with `@async run(worker)` to serve in the background of
this Julia process, or in a process of its own (`julia -e '...;
run(Rask.Worker(addr, fs))'`).

With `tls_ca_file`, `tls_cert` and `tls_key` (PEM paths, all three or none)
its data port serves TLS only and `"tls://"` addresses (the scheduler's,
other workers') are reached with TLS.

Memory (as Dask's workers): `memory_limit` in bytes; `:auto` (the default)
is the machine's memory times the worker's share of the CPUs, `0` or
`nothing` no limit. Results over `memory_target_fraction` (0.6) of it spill
to disk, least recently used first, into a directory made under
`local_directory` (default: the system temp dir) and removed when the worker
stops; process memory over `memory_spill_fraction` (0.7) spills more, over
`memory_pause_fraction` (0.8) pauses the worker (no task starts), over
`memory_terminate_fraction` (0.95) restarts it. `nothing` keeps a default,
`false` turns a step off. `spill_compression`: `:lz4` or `:none`.

`reconnect_timeout` (seconds): when the connection to the scheduler is lost
(not closed by it), the worker keeps trying to reconnect for this long, then
registers again as a new worker. The default `nothing` (or 0) is C's: no
reconnecting, the worker stops at once (`run(w)` throws
`RASK_ERR_CONNECTION`). `heartbeat` and `connect_timeout` are in seconds too.

Returns once the worker has registered with the scheduler. `Rask.address(w)`
is its data address; `w.tasks_run` and `w.tasks_failed` count the Julia
tasks it ran. A Julia function that throws fails its task (clients get
`sprint(showerror, e)` in their `RaskError`); the worker goes on.
"""
mutable struct Worker
    ptr::Ptr{LibRask.rask_worker}
    funcs::Dict{String,Any}
    scheduler::String
    address::String
    name::String
    nthreads::Int             # Julia functions' tasks `run` runs at once
    serving::Int              # run loops in progress
    closing::Bool             # close was called while serving: the last loop frees
    tasks_run::Int
    tasks_failed::Int
    # The last Julia function failure: its task's key and the exception.
    last_failure::Union{Nothing,Tuple{String,CapturedException}}
    # `Rask.get_client()` inside its tasks (made on first use).
    task_client::Union{Nothing,Client}
    # Slots (shared by every `run` loop of the worker): Julia tasks running
    # a task and not seceded (at most `nthreads`, but for a moment after a
    # rejoin), seceded tasks waiting in `rejoin` for a slot (they go before
    # new tasks), and the condition notified when either may change.
    active::Int
    rejoining::Int
    slots::Condition
end

worker_functions(fs::AbstractDict) = Dict{String,Any}(funcname(k) => v for (k, v) in fs)
worker_functions(fs::AbstractVector{<:Pair}) = worker_functions(Dict(fs))
function worker_functions(fs::AbstractVector)
    d = Dict{String,Any}()
    for f in fs
        f isa Pair && (d[funcname(f.first)] = f.second; continue)
        f isa Function || throw(ArgumentError("a worker's functions are Julia functions or name => function pairs, not $(typeof(f))"))
        d[funcname(f)] = f
    end
    return d
end
worker_functions(f::Function) = worker_functions([f])

function Worker(address::AbstractString, functions = Dict{String,Any}(); nthreads::Integer = 1,
                name = nothing, token = nothing, host = nothing, port::Integer = 0,
                memory_limit::Union{Symbol,Nothing,Integer} = :auto,
                heartbeat::Union{Nothing,Real} = nothing,
                connect_timeout::Union{Nothing,Real} = nothing,
                reconnect_timeout::Union{Nothing,Real} = nothing, tls_ca_file = nothing,
                tls_cert = nothing, tls_key = nothing, allow_code::Bool = false,
                memory_target_fraction = nothing, memory_spill_fraction = nothing,
                memory_pause_fraction = nothing, memory_terminate_fraction = nothing,
                local_directory = nothing, spill_compression::Symbol = :lz4)
    funcs = worker_functions(functions)
    any(startswith(n, "code:") for n in keys(funcs)) &&
        throw(ArgumentError("function names beginning with \"code:\" are reserved for shipped functions"))
    wref = Ref{Any}(nothing)
    if allow_code
        why = may_run_code(address, token, tls_ca_file !== nothing)
        if why === nothing
            funcs[CODE_FUNC] = code_runner(() -> wref[] === nothing ? "?" : wref[].name)
        else
            @warn "allow_code ignored: $why"
        end
    end
    nthreads >= 1 || throw(ArgumentError("nthreads must be >= 1, not $nthreads"))
    limit = memory_limit === :auto ? UInt64(0) :
            (memory_limit === nothing || memory_limit == 0) ? typemax(UInt64) : UInt64(memory_limit)
    frac(f) = f === nothing ? 0.0 : f === false ? -1.0 : Float64(f)
    spill_compression in (:lz4, :none) ||
        throw(ArgumentError("spill_compression must be :lz4 or :none, not $spill_compression"))
    a, n, h, t, ca, ce, k, ld = strings(address, name, host, token, tls_ca_file, tls_cert, tls_key,
                                        local_directory)
    err = errref()
    reg = nonnull(LibRask.rask_registry_new(), "rask_registry_new")
    out = Ref{Ptr{LibRask.rask_worker}}(C_NULL)
    try
        for fname in keys(funcs)
            check(LibRask.rask_registry_add_pulled(reg, fname, err), err)
        end
        GC.@preserve n h t ca ce k ld begin
            opts = Ref(LibRask.rask_worker_options(cstr(n), UInt32(nthreads), cstr(h), UInt16(port),
                                                   limit, cstr(t), ms(heartbeat),
                                                   ms(connect_timeout), cstr(ca), cstr(ce), cstr(k),
                                                   ms(reconnect_timeout),
                                                   frac(memory_target_fraction),
                                                   frac(memory_spill_fraction),
                                                   frac(memory_pause_fraction),
                                                   frac(memory_terminate_fraction), cstr(ld),
                                                   UInt32(spill_compression === :none),
                                                   UInt32(nthreads), pointer(RUNTIME)))
            check(LibRask.rask_worker_start(a, opts, reg, out, err), err)
        end
    finally
        # The worker has its own copy.
        LibRask.rask_registry_free(reg)
    end
    p = out[]
    w = Worker(p, funcs, a, unsafe_string(LibRask.rask_worker_address(p)),
               unsafe_string(LibRask.rask_worker_name(p)), Int(nthreads), 0, false, 0, 0, nothing,
               nothing, 0, 0, Condition())
    wref[] = w
    return finalizer(close, w)
end

function Base.unsafe_convert(::Type{Ptr{LibRask.rask_worker}}, w::Worker)
    w.ptr == C_NULL && throw(ArgumentError("the Rask.Worker is closed"))
    return w.ptr
end

address(w::Worker) = w.address
Base.isopen(w::Worker) = w.ptr != C_NULL && !w.closing

function Base.show(io::IO, w::Worker)
    print(io, "Rask.Worker(", repr(w.name), " at ", w.address, "; ")
    if !isopen(w)
        print(io, "closed")
    else
        r = stop_reason(w)
        print(io, r === nothing ? (w.serving > 0 ? "serving" : "running") : "stopped: $r")
    end
    print(io, "; ", join(sort!(collect(keys(w.funcs))), ", "), ")")
end

"""
    Rask.stop_reason(w::Worker) -> Union{Nothing,String}

Why the worker stopped, or `nothing` while it runs.
"""
function stop_reason(w::Worker)
    w.ptr == C_NULL && return "closed"
    p = LibRask.rask_worker_stop_reason(w)
    return p == C_NULL ? nothing : unsafe_string(p)
end

"""
    Rask.stop(w::Worker)

Stops the worker: it leaves the cluster (the scheduler recomputes elsewhere
what only it held) and `run(w)` returns. `close` does this and frees it.
"""
function stop(w::Worker)
    w.ptr == C_NULL && return w
    err = errref()
    check(LibRask.rask_worker_stop(w, err), err)
    return w
end

"""
    Rask.retire(w::Worker)

Retires the worker gracefully, as `rask-worker` does on SIGTERM: the
scheduler moves the results only it holds to other workers, the tasks it
has not started go elsewhere, the one it runs finishes, and then the
scheduler closes it (`run(w)` returns). Returns at once. `Rask.stop` leaves
at once instead.
"""
function retire(w::Worker)
    w.ptr == C_NULL && return w
    err = errref()
    check(LibRask.rask_worker_retire(w, err), err)
    return w
end

"""
    close(w::Worker)

Stops the worker (see `Rask.stop`) and frees it; a `run(w)` in progress in
another Julia task returns (and frees it on its way out). Idempotent.
"""
function Base.close(w::Worker)
    w.ptr == C_NULL && return nothing
    if w.task_client !== nothing
        close(w.task_client)       # the handle only: the worker closes the connection
        w.task_client = nothing
    end
    if w.serving > 0
        # A run loop holds the pointer: it sees RASK_DONE and frees it.
        w.closing || (w.closing = true; stop(w))
        return nothing
    end
    p = w.ptr
    w.ptr = C_NULL
    LibRask.rask_worker_free(p)
    return nothing
end

"""
    run(w::Worker; timeout = nothing) -> w

Serves the worker's Julia functions on this Julia thread until the worker
stops (`close(w)` or `Rask.stop(w)` from another Julia task, the scheduler
closing it, a lost connection: then it throws a `RaskError`,
`RASK_ERR_CONNECTION`) or `timeout` seconds have passed: takes the
next task of a Julia function (waiting in Julia's event loop on the worker's
descriptor, `rask_worker_fd`, so that other Julia tasks — a client of this
process — run meanwhile), calls the
function, hands back its result. Each task runs in a Julia task of its
own, up to `nthreads` at once (not counting those that seceded: see
`Rask.secede`), and `run` returns once those it started have finished. An
interrupt fails the task it interrupted; the worker stays up.
"""
function Base.run(w::Worker; timeout::Union{Nothing,Real} = nothing)
    Base.unsafe_convert(Ptr{LibRask.rask_worker}, w)       # open?
    task = Ref{Ptr{LibRask.rask_task}}(C_NULL)
    err = errref()
    until = deadline(timeout)
    fdref = Ref{Cint}(-1)
    check(LibRask.rask_worker_fd(w, fdref, err), err)
    fd = fdref[]
    running = 0                 # tasks this loop started, still running
    w.serving += 1
    try
        n = 0
        while !w.closing
            if w.active >= w.nthreads || w.rejoining > 0
                # No free slot, or a seceded task takes the free one back
                # first: wait for a task to end or secede, or a rejoin.
                wait(w.slots)
                continue
            end
            st = LibRask.rask_worker_next_task(w, 0, task, err)
            if st == LibRask.RASK_TIMEOUT && time() < until
                # Nothing queued: wait in Julia's event loop (other Julia
                # tasks run) until the worker's descriptor is readable — a
                # task arrived or the worker stopped.
                # At most 0.5 s at a time: Julia 1.5 delivers a Ctrl-C's
                # InterruptException when this task runs Julia code again.
                left = until - time()
                FileWatching.poll_fd(RawFD(fd), min(left, 0.5); readable = true)
                continue
            end
            if st == LibRask.RASK_OK
                t = task[]
                task[] = C_NULL
                w.tasks_run += 1
                running += 1
                w.active += 1
                # A Julia task of its own, also with one slot: when the
                # function secedes, this loop takes the next task.
                @async try
                    serve_task!(w, t)
                catch e
                    # An interrupt (the task has failed): nobody waits
                    # for this Julia task to rethrow it to.
                    e isa InterruptException || rethrow()
                finally
                    running -= 1
                end
                (n += 1) % 16 == 0 && yield()
            elseif st == LibRask.RASK_TIMEOUT
                break                                       # `timeout` passed
            elseif st == LibRask.RASK_DONE
                break
            else
                throw(take_error(st, err))
            end
        end
        # How it stopped: throws if the scheduler was lost.
        w.closing || still_running(w) || wait(w; timeout = 0)
    finally
        # The tasks it started hand back their results before the worker
        # may be freed.
        while running > 0
            wait(w.slots)
        end
        # Only when interrupted between receiving a task and running it.
        task[] == C_NULL || LibRask.rask_task_free(task[])
        w.serving -= 1
        if w.closing && w.serving == 0 && w.ptr != C_NULL
            p = w.ptr
            w.ptr = C_NULL
            LibRask.rask_worker_free(p)
        end
    end
    return w
end

# Runs one task of a Julia function (holding one of the worker's slots,
# counted in `w.active` by the caller) and counts a failure. The function
# finds its task in task-local storage (`Rask.get_client`, `Rask.secede`).
function serve_task!(w::Worker, t::Ptr{LibRask.rask_task})
    ctx = TaskContext(w, t, false)
    failed = try
        task_local_storage(() -> run_task!(w.funcs, t), :rask_task, ctx)
    finally
        ctx.task = C_NULL                  # consumed
        # Ended seceded (no rejoin): its slot was given back already.
        ctx.seceded || (w.active -= 1)
        notify(w.slots)
    end
    if failed !== nothing
        w.tasks_failed += 1
        w.last_failure = failed
    end
    return nothing
end

# Whether `run` ended because its own timeout passed.
still_running(w::Worker) = w.ptr != C_NULL && LibRask.rask_worker_stop_reason(w) == C_NULL

# ------------------------------------------------ tasks that submit tasks

# The task a Julia function of a worker is running for (task-local).
mutable struct TaskContext
    worker::Worker
    task::Ptr{LibRask.rask_task}
    seceded::Bool                       # gave its slot back (`Rask.secede`)
end

function task_context(what)
    ctx = get(task_local_storage(), :rask_task, nothing)
    ctx === nothing && throw(ArgumentError("Rask.$what(): not inside a task run by a Rask.Worker"))
    return ctx::TaskContext
end

"""
    Rask.get_client() -> Client

Inside a task of a Julia function run by a `Rask.Worker`: a client to the
task's own scheduler, the worker's one connection (made on first use,
shared by its tasks, closed with the worker). Submit, pass futures on,
`fetch`, use coordination objects, as with any client. What tasks submit runs
before work submitted earlier, newest first, so recursive submission goes
depth first. A task that waits on what it submitted should `Rask.secede()`
first (or use `Rask.worker_client`). Throws `ArgumentError` outside such a
task.
"""
function get_client()
    ctx = task_context("get_client")
    w = ctx.worker
    c = w.task_client
    if c === nothing || c.ptr == C_NULL
        out = Ref{Ptr{LibRask.rask_client}}(C_NULL)
        err = errref()
        check(LibRask.rask_task_client(ctx.task, out, err), err)
        c = w.task_client = Client(out[], nothing, false)
    end
    return c
end

"""
    Rask.secede()

Inside a task run by a `Rask.Worker`: the task gives its slot back while it
waits (on tasks it submitted). The scheduler is told (`long-running`) and
sends the worker another task, which `run` starts in the freed slot (Julia
1.5 runs them all on this thread: the waits yield). Seceding twice does
nothing. Take the slot back with `Rask.rejoin()`. Throws `ArgumentError`
outside such a task.
"""
function secede()
    ctx = task_context("secede")
    ctx.seceded && return nothing
    err = errref()
    st = LibRask.rask_task_secede(ctx.task, err)
    st == LibRask.RASK_DONE || check(st, err)
    ctx.seceded = true
    w = ctx.worker
    w.active -= 1
    notify(w.slots)
    return nothing
end

"""
    Rask.rejoin()

After `Rask.secede()`: the task takes a slot back, waiting until one of the
worker's `nthreads` slots is free (a task ends or secedes); tasks waiting to
rejoin get free slots before new tasks start. Does nothing when the task
has not seceded.
"""
function rejoin()
    ctx = task_context("rejoin")
    ctx.seceded || return nothing
    w = ctx.worker
    w.rejoining += 1
    try
        while w.active >= w.nthreads
            wait(w.slots)
        end
    finally
        w.rejoining -= 1
    end
    w.active += 1
    ctx.seceded = false
    notify(w.slots)             # `run` may take the next free slot, if any
    return nothing
end

"""
    Rask.worker_client(f)

Inside a task run by a `Rask.Worker`: `f(client)` with the task's client
(`Rask.get_client()`), seceded meanwhile (`Rask.secede()` before,
`Rask.rejoin()` after), as Dask's `worker_client`:

    function fib(n)
        n < 2 && return n
        Rask.worker_client() do c
            a = submit(c, "fib", n - 1; pure = false)
            b = submit(c, "fib", n - 2; pure = false)
            fetch(a) + fetch(b)
        end
    end
"""
function worker_client(f)
    c = get_client()
    secede()
    try
        return f(c)
    finally
        rejoin()
    end
end

"""
    wait(w::Worker; timeout = nothing) -> Bool

Waits until the worker has stopped (without serving its tasks: that is
`run`). Returns `true` once it stopped cleanly (`close`/`Rask.stop`, or the
scheduler closed it), `false` if it still runs after `timeout` seconds;
throws a `RaskError` (`RASK_ERR_CONNECTION`) if the connection to the
scheduler was lost.
"""
function Base.wait(w::Worker; timeout::Union{Nothing,Real} = nothing)
    w.ptr == C_NULL && return true
    err = errref()
    st = sliced(ms -> LibRask.rask_worker_wait(w, ms, err), timeout)
    st == LibRask.RASK_TIMEOUT && return false
    check(st, err)
    return true
end

"""
    Rask.serve(address, functions; kw...)

A worker process's main loop: starts a `Rask.Worker` (same arguments),
serves it until the scheduler closes it or the process is interrupted, and
closes it. Returns the reason it stopped.
"""
function serve(address::AbstractString, functions; kw...)
    w = Worker(address, functions; kw...)
    try
        run(w)
        return something(stop_reason(w), "stopped")
    finally
        close(w)
    end
end

"Whether the worker runs shipped functions (it was started with `allow_code = true` and may)."
allows_code(w::Worker) = haskey(w.funcs, CODE_FUNC)

"""
    Rask.watch_signal(signal) -> RawFD

Catches `signal` (`Base.SIGTERM`, `Base.SIGINT`, SIGHUP, SIGQUIT, SIGUSR1 or
SIGUSR2) for the rest of the process: instead of its usual effect (Julia 1.5
exits on SIGTERM), each arrival makes the returned descriptor readable. Wait
for it in a task with `FileWatching.poll_fd(fd, -1; readable = true)`, which
goes through Julia's event loop. Call it on Julia's main thread (the signal
is delivered there). The descriptor belongs to rask: do not close it.
`Rask.worker_main` uses it so that SIGTERM stops a worker cleanly.
"""
function watch_signal(signal::Integer)
    fd = Ref{Cint}(-1)
    err = errref()
    check(LibRask.rask_signal_watch(Cint(signal), fd, err), err)
    return RawFD(fd[])
end

const WORKER_MAIN_HELP = """
usage: julia --project=PATH -e 'using Rask; Rask.worker_main(ARGS)' -- [SCHEDULER] [options]

Runs a rask worker in a Julia process: rask's builtins on rask's threads, and
Julia functions on this Julia thread: the `__rask_functions__` (a Dict of
name => function, or a vector of functions) of the --import-ed modules, by
name, and, with --allow-code, any function a client ships (anonymous
functions and closures, serialized with Serialization, runtime $RUNTIME).
SIGTERM retires it gracefully (its results move to other workers, the task
it runs finishes; a second SIGTERM stops it at once); Ctrl-C (SIGINT) stops
it at once. Both exit with status 0.

  SCHEDULER                    the scheduler's address (default tcp://127.0.0.1:8786)
  --nthreads N                 rask threads for builtins, and Julia tasks run at once (default 1)
  --name NAME                  the worker's name
  --host HOST                  interface of the data port (default 127.0.0.1)
  --port PORT                  the data port (default 0: any)
  --memory-limit BYTES         memory for data, bytes (0: no limit)
  --allow-code                 run functions clients ship (runs arbitrary code); beyond
                               loopback only with --auth-token-file or TLS
  --import MODULE              `using MODULE` first; its __rask_functions__ are served
  --reconnect-timeout SECONDS  reconnecting to a lost scheduler (default 60; 0: exit)
  --auth-token-file PATH       a file holding the cluster's shared secret
  --tls-ca-file, --tls-cert, --tls-key PATH   TLS (all three or none)
  -h, --help                   this text
"""

"""
    Rask.worker_main(args = ARGS; functions = Dict(), io = stderr) -> Int

The Julia worker command (`Rask.worker_main(["--help"])` prints its
options): joins the scheduler, serves until the worker stops, returns the
exit status (0 after a clean stop, 1 when the scheduler was lost, 2 for a
bad option). `julia -e 'using Rask; exit(Rask.worker_main(ARGS))' -- tcp://host:8786 --allow-code`.

`functions` (name => function, as `Worker` takes them) are served beside
those of the `--import`-ed modules: a script of one's own functions gets
the whole command — options, SIGTERM retirement, Ctrl-C — with
`exit(Rask.worker_main(ARGS; functions = Dict("f" => f)))`. Messages go to
`io`.
"""
function worker_main(args::AbstractVector{<:AbstractString} = ARGS; functions = Dict{String,Any}(),
                     io::IO = stderr)
    opts = Dict{String,Any}("nthreads" => 1, "reconnect-timeout" => 60.0, "imports" => String[])
    address = "tcp://127.0.0.1:8786"
    valued = ("nthreads", "name", "host", "port", "memory-limit", "import", "reconnect-timeout",
              "auth-token-file", "tls-ca-file", "tls-cert", "tls-key")
    i = 1
    try
        while i <= length(args)
            a = args[i]
            if a in ("-h", "--help")
                print(io, WORKER_MAIN_HELP)
                return 0
            elseif a == "--allow-code"
                opts["allow-code"] = true
            elseif startswith(a, "--") && a[3:end] in valued
                i < length(args) || throw(ArgumentError("$a needs a value"))
                v = args[i += 1]
                k = a[3:end]
                if k == "import"
                    push!(opts["imports"], v)
                elseif k in ("nthreads", "port", "memory-limit")
                    n = tryparse(Int, v)
                    (n === nothing || n < 0) && throw(ArgumentError("$a: not a whole number: $(repr(v))"))
                    opts[k] = n
                elseif k == "reconnect-timeout"
                    s = tryparse(Float64, v)
                    (s === nothing || s < 0) && throw(ArgumentError("$a: not a number of seconds: $(repr(v))"))
                    opts[k] = s
                else
                    opts[k] = v
                end
            elseif startswith(a, "-")
                throw(ArgumentError("unknown option $a (see --help)"))
            else
                address = a
            end
            i += 1
        end
    catch e
        e isa ArgumentError || rethrow()
        println(io, "Rask.worker_main: ", e.msg)
        return 2
    end
    funcs = Dict{String,Any}()
    token = nothing
    try
        merge!(funcs, worker_functions(functions))
        for m in opts["imports"]
            mod = Base.require(Main, Symbol(m))
            if isdefined(mod, :__rask_functions__)
                merge!(funcs, worker_functions(Base.invokelatest(getfield, mod, :__rask_functions__)))
            end
        end
        if haskey(opts, "auth-token-file")
            token = strip(read(opts["auth-token-file"], String))
            isempty(token) && throw(ArgumentError("$(opts["auth-token-file"]) holds no token"))
        end
    catch e
        println(io, "Rask.worker_main: ", sprint(showerror, e))
        return 2
    end
    w = try
        Worker(address, funcs; nthreads = opts["nthreads"], name = get(opts, "name", nothing),
               token = token, host = get(opts, "host", nothing), port = get(opts, "port", 0),
               memory_limit = get(opts, "memory-limit", 0), reconnect_timeout = opts["reconnect-timeout"],
               tls_ca_file = get(opts, "tls-ca-file", nothing), tls_cert = get(opts, "tls-cert", nothing),
               tls_key = get(opts, "tls-key", nothing), allow_code = get(opts, "allow-code", false))
    catch e
        println(io, "Rask.worker_main: cannot join $address: ", sprint(showerror, e))
        return 1
    end
    # Ctrl-C (SIGINT) is an InterruptException in `run`, which stops the
    # worker at once. Julia 1.5 answers SIGTERM by exiting at once: rask
    # catches it instead (`watch_signal`), and the worker retires as
    # `rask-worker` does. Should SIGTERM reach Julia anyway, the atexit hook
    # still closes the worker on the way out.
    Base.exit_on_sigint(false)
    atexit(() -> isopen(w) && close(w))
    # Ctrl-C too goes through rask: Julia 1.5 would throw its
    # InterruptException into whichever Julia task runs at that moment.
    int = watch_signal(Base.SIGINT)
    @async begin
        FileWatching.poll_fd(int, -1; readable = true)
        println(io, "Rask.worker_main: SIGINT: worker $(w.name) stops")
        flush(io)
        close(w)
    end
    term = watch_signal(Base.SIGTERM)
    main = current_task()
    @async try
        FileWatching.poll_fd(term, -1; readable = true)
        read(Base.Filesystem.File(term), UInt8)         # one byte a signal
        println(io, "Rask.worker_main: SIGTERM: worker $(w.name) retires (its results move to other workers); ",
                "send it again to stop at once")
        flush(io)
        retire(w)
        FileWatching.poll_fd(term, -1; readable = true)
        println(io, "Rask.worker_main: SIGTERM again: worker $(w.name) stops at once")
        flush(io)
        close(w)
    catch e
        # Julia 1.5 throws a Ctrl-C's InterruptException into whichever task
        # runs: hand it to the one serving the worker.
        e isa InterruptException && istaskdone(main) == false && schedule(main, e; error = true)
    end
    names = sort!([n for n in keys(w.funcs) if n != CODE_FUNC])
    println(io, "Rask.worker_main: worker $(w.name) at $(w.address) joined $address ($RUNTIME, ",
            allows_code(w) ? "shipped code allowed" : "no shipped code", ", functions: ",
            isempty(names) ? "builtins only" : join(names, ", "), ")")
    flush(io)
    status = 0
    try
        run(w)
    catch e
        if e isa InterruptException
            status = 0
        else
            println(io, "Rask.worker_main: ", sprint(showerror, e))
            status = 1
        end
    finally
        close(w)
    end
    println(io, "Rask.worker_main: worker $(w.name) stopped")
    flush(io)
    return status
end

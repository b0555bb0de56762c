# The mixed-language cluster test: one rask cluster whose workers are written
# in four languages, and one graph that needs all of them.
#
#   rask-scheduler --port 0                      the scheduler (Rust)
#   rask-worker [--plugin libsquare.so]          Rust builtins, and `square` from
#                                                tests/plugins/square_plugin.c
#                                                (when a C compiler is there)
#   07_c_worker worker ADDRESS                   c-examples/07_c_worker.c: c_cube
#                                                (a callback), c_label (pulled)
#   julia tests/mixed/julia_worker.jl ADDRESS    jl_f, jl_mat (Rask.Worker)
#   python tests/mixed/python_worker.py ADDRESS  py_f, py_shape (rask.Worker)
#
# and this Julia process as the client (Rask.Client). A part whose program is
# missing is skipped with a message saying why, and the graph goes around it;
# without rask-scheduler and rask-worker nothing runs. Every process started
# here is stopped at the end (SIGTERM, then SIGKILL), whatever happened, and
# each runs under `timeout` so that none outlives a crashed test run.
#
# julia/test/runtests.jl includes this file: it starts the cluster early (so
# the worker processes start while other tests run) and checks it at the end.
# Standalone, from the repository root:
#
#     RASK_LIB=$PWD/target/release/librask.so julia --project=julia tests/mixed/mixed_cluster.jl
#
# Programs: $RASK_BIN_DIR (default target/release) for rask-scheduler and
# rask-worker; $RASK_BUILD_DIR (default build) for CMake's example_07_c_worker,
# else it is compiled here with `cc` when there is one.

using Test
using Rask

# A Julia object with no plain form, made by the Julia worker process
# (tests/mixed/julia_worker.jl defines it the same way): the client reads it
# back through Serialization.
mutable struct MixedThing
    x::Int
end

mutable struct MixedCluster
    root::String
    tmp::String
    procs::Vector{Pair{String,Base.Process}}
    address::String
    parts::Dict{String,Bool}         # which workers run: rust, plugin, c, julia, python
    skipped::Vector{String}          # why the others do not
end

mixed_log(mc::MixedCluster, name) = joinpath(mc.tmp, name * ".log")

# `cmd` in the background, stdout and stderr to tmp/NAME.log, under
# `timeout` (so it cannot outlive a crashed test by long).
function mixed_spawn!(mc::MixedCluster, name, cmd::Cmd; env = nothing)
    t = Sys.which("timeout")
    t === nothing || (cmd = `$t 900 $cmd`)
    env === nothing || (cmd = setenv(cmd, env))
    io = open(mixed_log(mc, name), "w")
    p = try
        run(pipeline(cmd; stdout = io, stderr = io); wait = false)
    finally
        close(io)                    # the child has its own descriptor
    end
    push!(mc.procs, name => p)
    return p
end

function mixed_skip!(mc::MixedCluster, part, why)
    mc.parts[part] = false
    push!(mc.skipped, "$part: $why")
    println("  mixed cluster: no $part worker: $why")
end

# The first executable of `paths`, or nothing.
function first_exe(paths)
    for p in paths
        !isempty(p) && isfile(p) && Sys.isexecutable(p) && return p
    end
    return nothing
end

function mixed_cc(mc::MixedCluster, out, args...)
    cc = something(Sys.which("cc"), Sys.which("gcc"), Some(nothing))
    cc === nothing && return "no C compiler (cc)"
    log = joinpath(mc.tmp, "cc-" * basename(out) * ".log")
    ok = success(pipeline(`$cc -O1 -I$(joinpath(mc.root, "include")) $args -o $out`; stdout = log, stderr = log))
    return ok ? nothing : "compiling $(basename(out)) failed: $(read(log, String))"
end

"""
    start_mixed_cluster(root) -> MixedCluster or nothing

Starts the scheduler and the workers it can; nothing (after saying why) when
rask-scheduler or rask-worker is not built. Stop it with
`stop_mixed_cluster` in any case.
"""
function start_mixed_cluster(root::AbstractString)
    bin = get(ENV, "RASK_BIN_DIR", joinpath("target", "release"))
    isabspath(bin) || (bin = joinpath(root, bin))
    sched_bin, worker_bin = joinpath(bin, "rask-scheduler"), joinpath(bin, "rask-worker")
    for b in (sched_bin, worker_bin)
        if first_exe([b]) === nothing
            println("  mixed cluster: skipped: $b is not built (cargo build --release builds it)")
            return nothing
        end
    end
    mc = MixedCluster(root, mktempdir(), Pair{String,Base.Process}[], "", Dict{String,Bool}(), String[])
    try
        # 1. The scheduler, on a free port; it prints where it listens.
        p = mixed_spawn!(mc, "scheduler", `$sched_bin --port 0`)
        t0 = time()
        while isempty(mc.address)
            m = match(r"rask-scheduler listening on (\S+)", read(mixed_log(mc, "scheduler"), String))
            m === nothing || (mc.address = m[1]; break)
            process_exited(p) && error("rask-scheduler exited: $(read(mixed_log(mc, "scheduler"), String))")
            time() - t0 > 20 && error("rask-scheduler did not say where it listens")
            sleep(0.05)
        end
        env = copy(ENV)
        env["RASK_LIB"] = Rask.libpath()
        # 2. The Julia worker first: it takes the longest to start.
        julia = `$(Base.julia_cmd()) --startup-file=no --project=$(joinpath(root, "julia"))`
        mixed_spawn!(mc, "julia-worker", `$julia $(joinpath(root, "tests", "mixed", "julia_worker.jl")) $(mc.address)`; env = env)
        mc.parts["julia"] = true
        # 3. A rask-worker, with the square plugin when it can be built.
        plugin = joinpath(mc.tmp, "libsquare_plugin.so")
        why = mixed_cc(mc, plugin, "-shared", "-fPIC", joinpath(root, "tests", "plugins", "square_plugin.c"))
        if why === nothing
            mixed_spawn!(mc, "rask-worker", `$worker_bin --nthreads 1 --plugin $plugin $(mc.address)`)
        else
            mixed_skip!(mc, "plugin", why * " (square runs as the builtin mul)")
            mixed_spawn!(mc, "rask-worker", `$worker_bin --nthreads 1 $(mc.address)`)
        end
        mc.parts["plugin"] = why === nothing
        mc.parts["rust"] = true
        # 4. The C worker: CMake's build of c-examples/07_c_worker.c, else ours.
        build = get(ENV, "RASK_BUILD_DIR", "build")
        isabspath(build) || (build = joinpath(root, build))
        cprog = first_exe([joinpath(build, "example_07_c_worker"), joinpath(root, "build", "example_07_c_worker")])
        if cprog === nothing
            cprog = joinpath(mc.tmp, "07_c_worker")
            libdir = dirname(Rask.libpath())
            why = mixed_cc(mc, cprog, joinpath(root, "c-examples", "07_c_worker.c"), "-L$libdir", "-lrask",
                           "-lpthread", "-Wl,-rpath,$libdir")
            why === nothing || (cprog = nothing; mixed_skip!(mc, "c", "example_07_c_worker is not built " *
                                                            "(cmake --build build) and $why"))
        end
        if cprog !== nothing
            mixed_spawn!(mc, "c-worker", `$cprog worker $(mc.address)`; env = env)
            mc.parts["c"] = true
        end
        # 5. The Python worker, if bindings/python has rask.Worker.
        venv = joinpath(root, "bindings", "python", ".venv", "bin", "python")
        python = first_exe([venv, something(Sys.which("python3"), "")])
        if python === nothing
            mixed_skip!(mc, "python", "no python3")
        else
            penv = copy(env)
            penv["PYTHONPATH"] = join(filter(!isempty, [joinpath(root, "bindings", "python"), get(ENV, "PYTHONPATH", "")]), ":")
            if success(setenv(`$python -c "import rask; rask.Worker"`, penv))
                mixed_spawn!(mc, "python-worker", `$python $(joinpath(root, "tests", "mixed", "python_worker.py")) $(mc.address)`;
                             env = penv)
                mc.parts["python"] = true
            else
                mixed_skip!(mc, "python", "$python cannot import rask.Worker from bindings/python")
            end
        end
    catch
        stop_mixed_cluster(mc; quiet = true)
        rethrow()
    end
    return mc
end

"""Stops every process of the cluster (SIGTERM, SIGKILL after 5 s)."""
function stop_mixed_cluster(mc::Union{Nothing,MixedCluster}; quiet = false)
    mc === nothing && return
    for (_, p) in mc.procs
        process_exited(p) || kill(p)
    end
    t0 = time()
    while any(!process_exited(p) for (_, p) in mc.procs) && time() - t0 < 5
        sleep(0.05)
    end
    for (name, p) in mc.procs
        process_exited(p) && continue
        quiet || println("  mixed cluster: $name did not stop on SIGTERM: SIGKILL")
        kill(p, Base.SIGKILL)
    end
    foreach(((_, p),) -> wait(p), mc.procs)
    rm(mc.tmp; recursive = true, force = true)
    return
end

function print_mixed_logs(mc::MixedCluster)
    for (name, _) in mc.procs
        println("---- $name.log")
        print(read(mixed_log(mc, name), String))
    end
end

"""The checks: one graph through every worker, then errors, then shutdown."""
function mixed_cluster_tests(mc::MixedCluster)
    B = Rask.Builtins
    has(part) = get(mc.parts, part, false)
    passed = false
    client = Client(mc.address; timeout = 20)
    try
        nworkers = 1 + has("c") + has("julia") + has("python")
        # Julia compiles as it starts: give it time on a loaded machine.
        @test Rask.wait_for_workers(client, nworkers; timeout = 120) >= nworkers

        # One graph: x -> square (Rust plugin) -> c_cube (C) -> jl_f (Julia)
        # -> py_f (Python), summed by a builtin, labelled by C's pulled c_label;
        # and a Julia matrix read by a builtin and by Python.
        g = Graph()
        want = Dict{String,Any}()
        n = 3
        for i in 1:n
            g["x-$i"] = i
            g["sq-$i"] = has("plugin") ? Rask.Task(:square, Key("x-$i")) : Rask.Task(B.mul, Key("x-$i"), Key("x-$i"))
            v = i^2
            last = "sq-$i"
            if has("c")
                g["cube-$i"] = Rask.Task(:c_cube, Key(last))
                last, v = "cube-$i", v^3
            end
            g["jl-$i"] = Rask.Task(:jl_f, Key(last))
            last, v = "jl-$i", 2v + 1
            if has("python")
                g["py-$i"] = Rask.Task(:py_f, Key(last))
                last, v = "py-$i", 10v
            end
            g["out-$i"] = Key(last)
            want["out-$i"] = v
        end
        g[:total] = Rask.Task(B.sum, Any[Key("out-$i") for i in 1:n])
        want["total"] = sum(want["out-$i"] for i in 1:n)
        if has("c")
            g[:label] = Rask.Task(:c_label, :total)
            want["label"] = "total is $(want["total"])"
        end
        M = 2 .* [1 3 5; 2 4 6]
        g[:mat] = Rask.Task(:jl_mat, 2)
        want["mat"] = M
        g[:item] = Rask.Task(B.getitem, :mat, 1)     # rask's flat index 1: Julia's M[2]
        want["item"] = M[2]
        if has("python")
            g[:shape] = Rask.Task(:py_shape, :mat)   # row-major: the shape reversed
            want["shape"] = Any[3, 2]
        end
        keys_ = sort!(collect(keys(want)))
        futures = compute(client, g, keys_)
        got = gather(client, futures; timeout = 120)
        for (k, v) in zip(keys_, got)
            @test v == want[k] || (println("mixed cluster: $k = $(repr(v)), expected $(repr(want[k]))"); false)
        end
        @test got[findfirst(==("mat"), keys_)] isa Matrix{Int64}
        println("  mixed cluster: total = $(want["total"]) through ",
                join([p for p in ("rust", "plugin", "c", "julia", "python") if has(p)], ", "))

        # The Julia worker process: futures as arguments, a scattered matrix.
        A = [1.5 2.5; 3.5 4.5; 5.5 6.5]
        fa = scatter(client, A)
        @test fetch(submit(client, B.getitem, fa, 1); timeout = 60) == A[2]
        has("python") && @test fetch(submit(client, :py_shape, fa); timeout = 60) == Any[2, 3]
        @test fetch(submit(client, :jl_f, submit(client, :jl_f, 1)); timeout = 60) == 7

        # A Julia object made in the worker process (a host value there):
        # the same object to a Julia task of that process, serialized only
        # for this client, and released there exactly once when no future
        # wants it any more.
        things(nonce) = fetch(submit(client, :jl_things, 41, nonce); timeout = 60)
        t = submit(client, :jl_thing, 41)
        same = submit(client, :jl_same, t, t)
        @test fetch(same; timeout = 60) === true
        v = fetch(t; timeout = 60)
        @test v isa MixedThing && v.x == 41
        @test things("held") == [1, 0]
        close(t)
        close(same)
        held = [1, 0]
        t0 = time()
        n = 0
        while held != [0, 0] && time() - t0 < 60
            held = things("released-$(n += 1)")   # a new key each time
            held == [0, 0] || sleep(0.05)
        end
        @test held == [0, 0]

        # Errors carry the key, function, worker and message of each language.
        e = try fetch(submit(client, :jl_f, "text"); timeout = 60) catch x; x end
        @test e isa RaskError && e.status == Rask.LibRask.RASK_ERR_TASK_FAILED
        @test e.cause isa Rask.RemoteError && e.cause.func == "jl_f" && occursin("MethodError", e.cause.message)
        @test startswith(e.cause.worker, "tcp://")
        if has("python")
            e = try fetch(submit(client, :py_f, nothing); timeout = 60) catch x; x end
            @test e isa RaskError && e.cause isa Rask.RemoteError && e.cause.func == "py_f"
            @test occursin("TypeError", e.cause.message)
        end
        if has("c")
            dep = submit(client, :c_cube, "not an int")
            f = submit(client, :jl_f, dep)
            e = try fetch(f; timeout = 60) catch x; x end
            @test e isa RaskError && e.cause isa Rask.RemoteError
            @test e.cause.key == f.key && e.cause.failed == dep.key && e.cause.func == "c_cube"
        end
        passed = true
    finally
        close(client)
        passed || print_mixed_logs(mc)
    end

    # Ctrl-C stops the Julia worker (Rask.worker_main catches SIGINT through
    # rask, not as Julia's InterruptException): it leaves and exits 0.
    procs = Dict(mc.procs)
    function exits_cleanly(name, want)
        p = procs[name]
        t0 = time()
        while !process_exited(p) && time() - t0 < 20
            sleep(0.05)
        end
        log = read(mixed_log(mc, name), String)
        @test process_exited(p) && p.exitcode == 0 && occursin(want, log) ||
              (println("---- $name.log (expected \"$want\")\n", log); false)
    end
    kill(procs["julia-worker"], Base.SIGINT)
    exits_cleanly("julia-worker", "SIGINT: worker julia-worker stops")
    # Stopping the scheduler closes the other workers: they exit 0 by
    # themselves.
    kill(procs["scheduler"])
    has("python") && exits_cleanly("python-worker", "python worker stopped")
    has("c") && exits_cleanly("c-worker", "the C worker pulled")
    # Every part ran, or (outside CI only) the missing ones were listed. In CI
    # (CI=true) the machine has every part: a missing one is a failure.
    if lowercase(get(ENV, "CI", "")) in ("1", "true", "yes")
        @test isempty(mc.skipped) && all(values(mc.parts)) &&
              Set(keys(mc.parts)) == Set(["rust", "plugin", "c", "julia", "python"]) ||
              (println("  mixed cluster: parts missing in CI: ", join(mc.skipped, "; ")); false)
    else
        isempty(mc.skipped) || println("  mixed cluster: parts skipped: ", join(mc.skipped, "; "))
        @test all(p -> p[2] || any(startswith(s, p[1] * ":") for s in mc.skipped), collect(mc.parts))
    end
    return
end

if abspath(PROGRAM_FILE) == @__FILE__
    @testset "mixed-language cluster" begin
        mc = start_mixed_cluster(normpath(joinpath(@__DIR__, "..", "..")))
        try
            mc === nothing ? (@test_skip "rask binaries") : mixed_cluster_tests(mc)
        finally
            stop_mixed_cluster(mc)
        end
    end
end

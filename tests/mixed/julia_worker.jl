# A Julia worker process for the mixed-language cluster test
# (tests/mixed/mixed_cluster.jl):
#
#     julia --project=julia tests/mixed/julia_worker.jl tcp://HOST:PORT
#
# joins the scheduler at that address and serves, beside rask's builtins,
#
#     jl_f(x)    = 2x + 1
#     jl_mat(n)  = n .* [1 3 5; 2 4 6]      a 2×3 Julia matrix (column-major)
#
# until the scheduler closes it or SIGINT (Ctrl-C) interrupts it. Exits 0
# after a clean stop or an interrupt (the worker leaves the cluster), 1 if the
# scheduler was lost.
using Rask

# SIGINT is not an exit (it is caught below, through rask).
Base.exit_on_sigint(false)

jl_f(x::Integer) = 2x + 1
jl_mat(n::Integer) = n .* [1 3 5; 2 4 6]

length(ARGS) == 1 || (println(stderr, "usage: julia_worker.jl SCHEDULER_ADDRESS"); exit(2))
w = Rask.Worker(ARGS[1], Dict("jl_f" => jl_f, "jl_mat" => jl_mat); name = "julia-worker")
println("julia worker $(w.name) at $(Rask.address(w)) serving jl_f, jl_mat")
flush(stdout)
# Julia 1.5 throws a Ctrl-C's InterruptException into whichever Julia task
# runs at that moment (even a finishing one, which is fatal): catch SIGINT
# through rask instead and stop the worker from a task of our own.
interrupted = false
sigint = Rask.watch_signal(Base.SIGINT)
@async begin
    Rask.FileWatching.poll_fd(sigint, -1; readable = true)
    global interrupted = true
    close(w)
end
status = try
    run(w)
    interrupted && throw(InterruptException())
    println("julia worker stopped: ", Rask.stop_reason(w), "; ran $(w.tasks_run) Julia tasks")
    0
catch e
    if e isa InterruptException || interrupted
        println("julia worker interrupted; ran $(w.tasks_run) Julia tasks")
        0
    else
        println("julia worker failed: ", sprint(showerror, e))
        1
    end
finally
    close(w)
end
flush(stdout)
exit(status)

# The main job's Julia worker process (scripts/run.sh):
#
#     julia --project=julia scripts/main_job/julia_worker.jl tcp://HOST:PORT
#
# serves, beside rask's builtins, `jl_score(x) = x^2 % 997` (the "score"
# step of the main job's pipeline) until the scheduler closes it or SIGINT.
using Rask

Base.exit_on_sigint(false)

jl_score(x::Integer) = (x * x) % 997

length(ARGS) == 1 || (println(stderr, "usage: julia_worker.jl SCHEDULER_ADDRESS"); exit(2))
w = Rask.Worker(ARGS[1], Dict("jl_score" => jl_score); name = "julia-worker")
println("julia worker $(w.name) serving jl_score")
flush(stdout)
status = try
    run(w)
    println("julia worker stopped: ", Rask.stop_reason(w), "; ran $(w.tasks_run) Julia tasks")
    0
catch e
    if e isa InterruptException
        println("julia worker interrupted; ran $(w.tasks_run) Julia tasks")
        0
    else
        println("julia worker failed: ", sprint(showerror, e))
        1
    end
finally
    close(w)
end
exit(status)

# The main job's Julia worker process (scripts/run.sh):
#
#     julia --project=julia scripts/main_job/julia_worker.jl tcp://HOST:PORT
#
# serves, beside rask's builtins, `jl_score(x) = x^2 % 997` (the "score"
# step of the main job's pipeline) through `Rask.worker_main`, the Julia
# worker command: it stops when the scheduler closes it, on Ctrl-C, or
# retires on SIGTERM (what scripts/run.sh sends at the end).
using Rask

jl_score(x::Integer) = (x * x) % 997

length(ARGS) == 1 || (println(stderr, "usage: julia_worker.jl SCHEDULER_ADDRESS"); exit(2))
exit(Rask.worker_main([ARGS[1], "--name", "julia-worker"]; functions = Dict("jl_score" => jl_score), io = stdout))

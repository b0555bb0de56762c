# A Julia worker process for the mixed-language cluster test
# (tests/mixed/mixed_cluster.jl):
#
#     julia --project=julia tests/mixed/julia_worker.jl tcp://HOST:PORT
#
# joins the scheduler at that address as "julia-worker" and serves, beside
# rask's builtins,
#
#     jl_f(x)    = 2x + 1
#     jl_mat(n)  = n .* [1 3 5; 2 4 6]      a 2×3 Julia matrix (column-major)
#
# through `Rask.worker_main`, the Julia worker command, so it behaves as
# that command does: Ctrl-C (SIGINT) stops it, SIGTERM retires it; exit 0
# after either or a clean stop, 1 if the scheduler was lost. Messages go to
# stdout.
using Rask

jl_f(x::Integer) = 2x + 1
jl_mat(n::Integer) = n .* [1 3 5; 2 4 6]

length(ARGS) == 1 || (println(stderr, "usage: julia_worker.jl SCHEDULER_ADDRESS"); exit(2))
exit(Rask.worker_main([ARGS[1], "--name", "julia-worker"];
                      functions = Dict("jl_f" => jl_f, "jl_mat" => jl_mat), io = stdout))

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
#     jl_thing(x) = MixedThing(x)           a Julia object with no plain form
#     jl_same(p, q) = p === q               (a host value: the very object here)
#     jl_things(x, nonce)                   how many MixedThing(x) this process
#                                           holds as host values, and how many
#                                           releases it got twice (always 0)
#
# through `Rask.worker_main`, the Julia worker command, so it behaves as
# that command does: Ctrl-C (SIGINT) stops it, SIGTERM retires it; exit 0
# after either or a clean stop, 1 if the scheduler was lost. Messages go to
# stdout.
using Rask

jl_f(x::Integer) = 2x + 1
jl_mat(n::Integer) = n .* [1 3 5; 2 4 6]
# Also defined by mixed_cluster.jl (the client deserializes it by name).
mutable struct MixedThing
    x::Int
end
jl_thing(x::Integer) = MixedThing(x)
jl_same(p, q) = p === q
function jl_things(x::Integer, nonce)
    Rask.drain_released!()
    held = count(v -> v isa MixedThing && v.x == x, values(Rask.HOST_OBJECTS))
    return [held, Rask.HOST_UNKNOWN_RELEASES[]]
end

length(ARGS) == 1 || (println(stderr, "usage: julia_worker.jl SCHEDULER_ADDRESS"); exit(2))
exit(Rask.worker_main([ARGS[1], "--name", "julia-worker"];
                      functions = Dict("jl_f" => jl_f, "jl_mat" => jl_mat, "jl_thing" => jl_thing,
                                       "jl_same" => jl_same, "jl_things" => jl_things), io = stdout))

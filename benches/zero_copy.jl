# A 100 MB Julia array into and out of rask: lent and wrapped (no copy)
# against the copying path (Rask.ZERO_COPY_MIN[] = typemax(Int)). Prints JSON
# lines and a summary (medians of 5).
#
#   RASK_LIB=target/release/librask.so julia --project=julia benches/zero_copy.jl [MB]
#
# - boundary: Rask.new_value(A) then Rask.julia_value of it (the trip across
#   the C boundary and back, nothing else);
# - local_compute: compute(Graph(:x => Task(identity, A)), :x) in the local
#   executor (in as a literal, out as the result);
# - cluster: scatter(client, A) then fetch through a local cluster of one
#   worker (TCP on loopback both ways).
using Rask
using Statistics: median

mb = isempty(ARGS) ? 100 : parse(Int, ARGS[1])
A = collect(1.0:(mb * 1_000_000 ÷ 8))
const B = Rask.Builtins

function timed(f, reps = 5)
    f()  # warm (compilation, first use)
    ts = Float64[]
    for _ in 1:reps
        GC.gc(); Rask.drain_released!()
        t = time_ns()
        out = f()
        push!(ts, (time_ns() - t) / 1e6)
        out[end] == A[end] && size(out) == size(A) || error("wrong result")
    end
    return median(ts)
end

function boundary()
    p = Rask.new_value(A)
    try
        return Rask.julia_value(p)
    finally
        Rask.LibRask.rask_value_free(p)
    end
end
local_compute() = compute(Graph(:x => Rask.Task(B.identity, A)), :x)

cluster = LocalCluster(workers = 1)
client = Client(cluster)
# (A vector is scattered element by element: wrap it to make it one value.)
via_cluster() = fetch(scatter(client, [A])[1]; timeout = 120)

results = Dict{Tuple{String,String},Float64}()
default = Rask.ZERO_COPY_MIN[]
for (mode, zmin) in (("zero_copy", default), ("copy", typemax(Int)))
    Rask.ZERO_COPY_MIN[] = zmin
    for (name, f) in (("boundary", boundary), ("local_compute", local_compute), ("cluster", via_cluster))
        ms = timed(f)
        results[(name, mode)] = ms
        println("{\"bench\": \"$name\", \"system\": \"rask-julia\", \"mode\": \"$mode\", \"mb\": $mb, \"ms\": $ms}")
    end
end
Rask.ZERO_COPY_MIN[] = default
close(client); close(cluster)
println(stderr, "\nsummary (median ms; copy / zero-copy)")
for name in ("boundary", "local_compute", "cluster")
    z, c = results[(name, "zero_copy")], results[(name, "copy")]
    println(stderr, "  ", rpad(name, 14), " zero-copy ", round(z; digits = 3), "  copy ", round(c; digits = 3),
            "  ", round(c / z; digits = 1), "x")
end

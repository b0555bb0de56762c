# CPU of the Julia thread per task in the Julia client's map, phase by phase:
# `map(client, :noop, xs)`, then `gather`. 100k calls, 3 repetitions after a
# warm-up one, on a LocalCluster of 2 rask workers in this process. For A/B
# runs of two versions of the package (`--project=...`) on a shared machine:
# CPU time of one thread (getrusage(RUSAGE_THREAD), Linux) moves much less
# with the load than wall time does.
#
#   RASK_LIB=target/release/librask.so julia --project=julia benches/julia_map_cpu.jl [int|tuple]
#
# int: xs = 100k consecutive Ints; tuple: xs = 100k `(string, int)` tuples.
using Rask

n = 100_000
kind = isempty(ARGS) ? "int" : ARGS[1]
kind in ("int", "tuple") || error("usage: julia_map_cpu.jl [int|tuple]")
function thread_cpu()
    r = zeros(Int64, 18)                                   # struct rusage
    ccall(:getrusage, Cint, (Cint, Ptr{Int64}), 1, r) == 0 || error("getrusage failed")
    return (r[1] + r[3]) + (r[2] + r[4]) / 1e6             # user + system, seconds
end
cluster = LocalCluster(workers = 2)
client = Client(cluster)
args(r) = kind == "int" ? collect(r*n+1:r*n+n) : [("k$r", i) for i in 1:n]   # fresh keys each time
total = zeros(2)
for r in 0:3
    GC.gc()
    xs = args(r)
    c0 = thread_cpu()
    fs = map(client, :noop, xs)
    c1 = thread_cpu()
    vals = gather(client, fs; timeout = 600)
    c2 = thread_cpu()
    @assert length(vals) == n
    r > 0 && (total .+= (c1 - c0, c2 - c1))
end
us(x) = round(x / 3 / n * 1e6, digits = 2)
println("{\"bench\": \"julia_map_cpu\", \"args\": \"$kind\", \"n\": $n, \"map_us_per_task\": $(us(total[1])), " *
        "\"gather_us_per_task\": $(us(total[2]))}")
close(client); close(cluster)

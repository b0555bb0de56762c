# A Julia worker in the client's own process (docs/julia.md: `@async run(w)`),
# and the Julia client's map of a builtin. Prints JSON lines.
#
#   RASK_LIB=target/release/librask.so julia --project=julia benches/julia_inprocess.jl [--quick]
#
# - sleep5_roundtrip: submit + fetch of one Julia task that sleeps 5 ms,
#   served by a Rask.Worker of this process (median of N, in ms);
# - busy5_roundtrip: the same with a task that computes for 5 ms;
# - map_noop: map(client, :noop, 1:N) then gather (tasks/s), on a local
#   cluster of 2 rask workers in this process; with the time `map` took and
#   the CPU per task of the Julia thread and of rask's threads (the
#   scheduler, the workers, the client's I/O) over map + gather.
# The last lines (stderr) give each figure beside its target (issue 9).
using Rask
using Statistics: median

quick = "--quick" in ARGS
n_rt = quick ? 20 : 200
n_map = quick ? 10_000 : 100_000

jl_sleep5(x) = (sleep(0.005); x)
function jl_busy5(x)
    t = time_ns()
    while time_ns() - t < 5_000_000 end
    return x
end

verdicts = String[]
cluster = LocalCluster(workers = 2)
client = Client(cluster)
w = Rask.Worker(Rask.address(cluster), Dict("jl_sleep5" => jl_sleep5, "jl_busy5" => jl_busy5))
t = @async run(w)
for (name, f) in (("sleep5_roundtrip", :jl_sleep5), ("busy5_roundtrip", :jl_busy5))
    fetch(submit(client, f, 0); timeout = 60)        # warm up (compilation)
    ms = Float64[]
    for i in 1:n_rt
        t0 = time_ns()
        fetch(submit(client, f, i); timeout = 60)
        push!(ms, (time_ns() - t0) / 1e6)
    end
    println("{\"bench\": \"$name\", \"impl\": \"rask-julia\", \"n\": $n_rt, \"median_ms\": $(round(median(ms), digits = 3))}")
    name == "sleep5_roundtrip" && push!(verdicts, "target: sleep(5 ms) task submit + fetch <= 7 ms: " *
        "$(round(median(ms), digits = 2)) ms ($(median(ms) <= 7 ? "met" : "NOT met"))")
end
close(w); wait(t)

# CPU seconds of this process's threads by name (Linux /proc): the Julia
# thread ("julia") and rask's (the in-process cluster: scheduler, workers,
# the client's I/O).
function thread_cpu()
    d = Dict{String,Float64}()
    for t in readdir("/proc/self/task")
        s = try read("/proc/self/task/$t/stat", String) catch; continue end
        name = s[findfirst('(', s)+1:findlast(')', s)-1]
        f = split(s[findlast(')', s)+2:end])
        d[name] = get(d, name, 0.0) + (parse(Int, f[12]) + parse(Int, f[13])) / 100
    end
    return d
end
cpu_us(a, b, pick) = round(1e6 * sum(Float64[v - get(a, k, 0.0) for (k, v) in b if pick(k)]) / n_map, digits = 2)

gather(client, map(client, :noop, 1:100); timeout = 60)  # warm up
GC.gc()
c0 = thread_cpu()
t0 = time_ns()
fs = map(client, :noop, 1:n_map)
t1 = time_ns()
vals = gather(client, fs; timeout = 600)
secs = (time_ns() - t0) / 1e9
c1 = thread_cpu()
fs = nothing
GC.gc()                     # the futures' release, after the timed part
@assert length(vals) == n_map
println("{\"bench\": \"map_noop\", \"impl\": \"rask-julia\", \"n\": $n_map, \"tasks_per_s\": $(round(n_map / secs, digits = 0)), " *
        "\"map_s\": $(round((t1 - t0) / 1e9, digits = 3)), \"cpu_us_per_task_julia\": $(cpu_us(c0, c1, ==("julia"))), " *
        "\"cpu_us_per_task_rask\": $(cpu_us(c0, c1, !=("julia")))}")
push!(verdicts, "target: Julia client map noop >= 100,000 tasks/s: $(round(Int, n_map / secs)) " *
      "($(n_map / secs >= 100_000 ? "met" : "NOT met"))")
close(client); close(cluster)
foreach(v -> println(stderr, v), verdicts)

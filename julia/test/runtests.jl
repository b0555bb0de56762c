# Tests of the Rask package. Run from the repository root with
#
#     RASK_LIB=$PWD/target/release/librask.so julia --project=julia julia/test/runtests.jl
#
# (without RASK_LIB, target/release then target/debug is used).

using Test
using Rask
using Rask: LibRask

const B = Rask.Builtins
const ROOT = normpath(joinpath(@__DIR__, "..", ".."))

# ----------------------------------------------------------------- helpers

"""The error `f()` throws (a test failure if it throws none)."""
function error_of(f)
    try
        f()
    catch e
        return e
    end
    error("no exception was thrown")
end

# In CI (CI=true, as .ci/run sets it) a test that cannot run here is a
# failure, not a Broken: the CI machine has everything (scripts/setup.sh).
# Elsewhere it is a @test_skip. Each call site says what is missing.
const IN_CI = lowercase(get(ENV, "CI", "")) in ("1", "true", "yes")
macro skip_unless_ci(why)
    quote
        if IN_CI
            @error "skipped in CI: " * $(esc(why))
            @test false
        else
            @test_skip $(esc(why))
        end
    end
end

myinc(x) = x + 1
mutable struct HostThing  # no rask value: a host value's test
    x::Int
end
myadd(x, y) = x + y

function classic_graph(inc, add)
    g = Graph()
    g[:a] = 1
    g[:x] = 10
    g[:b] = Rask.Task(inc, :a)
    g[:y] = Rask.Task(inc, :x)
    g[:z] = Rask.Task(add, :b, :y)
    return g
end

# The mixed-language cluster (tests/mixed/mixed_cluster.jl): its processes
# start now, so that the Julia and Python workers start up while the tests
# below run; it is checked by the last testset and stopped on the way out,
# whatever happens.
include(joinpath(ROOT, "tests", "mixed", "mixed_cluster.jl"))
const MIXED = try
    start_mixed_cluster(ROOT)
catch e
    e
end
atexit(() -> MIXED isa MixedCluster && stop_mixed_cluster(MIXED))

# ------------------------------------------------- the C API wrappers (LibRask)

# C declarations of include/rask.h: name => (return type, [parameter types]).
function header_functions(path)
    src = read(path, String)
    src = replace(src, r"/\*.*?\*/"s => " ")
    src = replace(src, r"//[^\n]*" => " ")
    decls = Dict{String,Tuple{String,Vector{String}}}()
    for m in eachmatch(r"([A-Za-z_][\w \t\*]*?)\b(rask_\w+)\s*\(([^;{}()]*)\)\s*;", src)
        params = strip(replace(m.captures[3], r"\s+" => " "))
        types = String[]
        if !(params in ("void", ""))
            for p in split(params, ",")
                pm = match(r"^(.*?)\b\w+$", strip(p))
                push!(types, ctype(pm.captures[1]))
            end
        end
        decls[m.captures[2]] = (ctype(m.captures[1]), types)
    end
    return decls
end

# A C type in one canonical spelling: "const char *", "rask_arg *const *".
ctype(s) = strip(replace(replace(replace(s, r"\s+" => " "), r"\s*\*" => " *"), r"\* \*" => "**"))

# The Julia types a C type may be passed as.
function julia_types(c::AbstractString)
    scalar = Dict("void" => "Cvoid", "bool" => "Bool", "int" => "Cint", "uint32_t" => "UInt32",
                  "int64_t" => "Int64", "uint64_t" => "UInt64", "double" => "Cdouble",
                  "size_t" => "Csize_t", "uint8_t" => "UInt8", "char" => "UInt8",
                  "rask_status" => "rask_status", "rask_kind" => "rask_kind",
                  "rask_dtype" => "rask_dtype", "rask_callback" => "Ptr{Cvoid}",
                  "rask_drop_user_data" => "Ptr{Cvoid}",
                  "rask_host_serialize" => "Ptr{Cvoid}", "rask_host_release" => "Ptr{Cvoid}",
                  "rask_buffer_release" => "Ptr{Cvoid}",
                  "rask_compute_options" => "rask_compute_options",
                  "rask_compute_stats" => "rask_compute_stats",
                  "rask_scheduler_info" => "rask_scheduler_info",
                  "rask_progress_counts" => "rask_progress_counts", "rask_progress_fn" => "Ptr{Cvoid}",
                  "rask_future_state" => "rask_future_state", "uint16_t" => "UInt16")
    for h in ("rask_arg", "rask_computation", "rask_error", "rask_graph", "rask_host", "rask_registry",
              "rask_task", "rask_value", "rask_client", "rask_future", "rask_future_batch", "rask_as_completed", "rask_subscription",
              "rask_cluster", "rask_scheduler", "rask_worker", "rask_scheduler_options",
              "rask_cluster_options", "rask_client_options", "rask_submit_options",
              "rask_worker_options")
        scalar[h] = h
    end
    base = replace(c, r"\bconst\b" => "")
    stars = count(==('*'), base)
    base = strip(replace(base, "*" => ""))
    haskey(scalar, base) || return String[]
    t = scalar[base]
    for _ in 1:stars
        t = "Ptr{$t}"
    end
    alts = [t]
    base == "char" && stars == 1 && push!(alts, "Cstring")
    base == "char" && stars == 2 && push!(alts, "Ptr{Cstring}")
    return alts
end

# Every ccall in julia/src: (file, name, return type, [argument types]).
function julia_ccalls(dir)
    calls = []
    for file in readdir(dir)
        endswith(file, ".jl") || continue
        src = read(joinpath(dir, file), String)
        pos = 1
        while pos <= ncodeunits(src)
            ex, pos = Meta.parse(src, pos)
            walk(ex) do e
                if e isa Expr && e.head == :call && e.args[1] == :ccall
                    fp, ret, argt = e.args[2], e.args[3], e.args[4]
                    ok = fp isa Expr && fp.head == :call && fp.args[1] == :fptr &&
                         fp.args[2] isa QuoteNode && argt isa Expr && argt.head == :tuple
                    push!(calls, (file = file, ok = ok, expr = e,
                                  name = ok ? string(fp.args[2].value) : "",
                                  ret = string(ret),
                                  args = ok ? [string(a) for a in argt.args] : String[]))
                end
            end
        end
    end
    return calls
end
walk(f, e) = (f(e); e isa Expr && foreach(a -> walk(f, a), e.args))

@testset "Rask" begin

@testset "LibRask follows include/rask.h" begin
    decls = header_functions(joinpath(ROOT, "include", "rask.h"))
    @test length(decls) > 60
    calls = julia_ccalls(joinpath(@__DIR__, "..", "src"))
    @test !isempty(calls)
    for c in calls
        # Every ccall calls fptr(:name) with a literal tuple of argument types.
        @test c.ok || (println("not in the checked form: ", c.expr); false)
        c.ok || continue
        @test haskey(decls, c.name) || (println("$(c.file): $(c.name) is not in rask.h"); false)
        haskey(decls, c.name) || continue
        ret, params = decls[c.name]
        @test length(c.args) == length(params) ||
              (println("$(c.name): $(length(c.args)) arguments, rask.h has $(length(params))"); false)
        @test c.ret in julia_types(ret) ||
              (println("$(c.name) returns $ret, the ccall says $(c.ret)"); false)
        for (i, (j, p)) in enumerate(zip(c.args, params))
            @test j in julia_types(p) ||
                  (println("$(c.name) argument $i is $p in rask.h, $j in the ccall"); false)
        end
    end
    # ... and every function of the header has its wrapper, the distributed
    # part (schedulers, clusters, clients, futures, workers) included.
    wrapped = Set(c.name for c in calls)
    @test any(startswith("rask_worker_"), wrapped) && any(startswith("rask_client_"), wrapped)
    missing_ = sort!([n for n in keys(decls) if !(n in wrapped)])
    @test isempty(missing_) || (println("not wrapped: ", join(missing_, ", ")); false)
    @test sort!(collect(keys(LibRask.FPTRS))) == sort!(Symbol.(collect(wrapped)))
    @test occursin("#define RASK_ABI_VERSION $(Int(LibRask.RASK_ABI_VERSION))",
                   read(joinpath(ROOT, "include", "rask.h"), String))
end

@testset "LibRask enums follow include/rask.h" begin
    header = read(joinpath(ROOT, "include", "rask.h"), String)
    for T in (LibRask.rask_status, LibRask.rask_kind, LibRask.rask_dtype)
        body = match(Regex("typedef enum \\{([^}]*)\\} $(nameof(T));"), header)
        @test body !== nothing
        body === nothing && continue
        want = Dict(m[1] => parse(Int, m[2]) for m in eachmatch(r"(RASK_\w+) = (\d+)", body[1]))
        have = Dict(string(x) => Int(x) for x in instances(T))
        @test have == want || (println("$(nameof(T)): rask.h has $want, LibRask $have"); false)
    end
end

@testset "LibRask structs follow include/rask.h" begin
    header = replace(read(joinpath(ROOT, "include", "rask.h"), String), r"/\*.*?\*/"s => " ")
    structs = Dict(m[2] => m[1] for m in eachmatch(r"typedef struct \{([^}]*)\} (rask_\w+);", header))
    @test haskey(structs, "rask_worker_options") && haskey(structs, "rask_compute_options")
    for (name, body) in structs
        @test isdefined(LibRask, Symbol(name)) || (println("LibRask has no struct $name"); false)
        isdefined(LibRask, Symbol(name)) || continue
        T = getfield(LibRask, Symbol(name))
        want = [(String(m[2]), ctype(m[1])) for m in eachmatch(r"([\w \t\*]+?)\b(\w+)\s*;", body)]
        have = [(String(f), fieldtype(T, f)) for f in fieldnames(T)]
        types(c) = [Core.eval(LibRask, Meta.parse(t)) for t in julia_types(c)]
        @test length(have) == length(want) &&
              all(h[1] == w[1] && h[2] in types(w[2]) for (h, w) in zip(have, want)) ||
              (println("$name: rask.h has $want, LibRask $have"); false)
    end
end

@testset "library" begin
    @test isfile(Rask.libpath())
    @test Rask.version() isa VersionNumber
    @test LibRask.rask_abi_version() == LibRask.RASK_ABI_VERSION
    @test Rask.statusname(LibRask.RASK_ERR_GRAPH) == "RASK_ERR_GRAPH"
end

@testset "values roundtrip" begin
    same(x, y) = isequal(x, y) && typeof(x) == typeof(y)
    cases = Any[
        nothing => nothing, true => true, false => false,
        0 => 0, -5 => -5, typemax(Int64) => typemax(Int64), typemin(Int64) => typemin(Int64),
        typemax(UInt64) => typemax(UInt64), UInt64(7) => 7,
        Int8(-3) => -3, Int32(3) => 3, UInt16(9) => 9, big(2)^40 => 2^40,
        1.5 => 1.5, Float32(2.5) => 2.5, -0.0 => -0.0, Inf => Inf,
        "" => "", "héllo wörld" => "héllo wörld", "a\0b" => "a\0b", :sym => "sym", 'c' => "c",
        UInt8[] => UInt8[], UInt8[0x00, 0xff] => UInt8[0x00, 0xff],
        Any[] => Any[], Any[1, "a", nothing, Any[2.5]] => Any[1, "a", nothing, Any[2.5]],
        ["x", "y"] => Any["x", "y"], (1, "two") => Any[1, "two"],
        Dict("a" => 1, "b" => Any[1, 2]) => Dict{Any,Any}("a" => 1, "b" => Any[1, 2]),
        Dict(1 => "one", nothing => true) => Dict{Any,Any}(1 => "one", nothing => true),
        (a = 1, b = "x") => Dict{Any,Any}("a" => 1, "b" => "x"),
        [1, 2, 3] => [1, 2, 3], Float32[1, 2] => Float32[1, 2], Bool[1, 0, 1] => Bool[1, 0, 1],
        fill(7.0) => fill(7.0), zeros(Int16, 0, 3) => zeros(Int16, 0, 3),
        1:4 => [1, 2, 3, 4], Float16[1.5] => Float32[1.5],
    ]
    for (x, want) in cases
        @test same(Rask.roundtrip(x), want) || (println("roundtrip($(repr(x))) = $(repr(Rask.roundtrip(x)))"); false)
        @test same(Rask.from_msgpack(Rask.to_msgpack(x)), want)
    end
    # Through a computation: the builtin identity, and a Julia function.
    for (x, want) in cases
        @test same(compute(Rask.Task(B.identity, Literal(x))), want)
        @test same(compute(Rask.Task(identity, Literal(x))), want)
    end
    @test Rask.to_msgpack(Dict("a" => 1)) == [0x81, 0xa1, UInt8('a'), 0x01]
    @test Rask.to_msgpack(nothing) == [0xc0]
    @test_throws ArgumentError Rask.roundtrip(1 // 2)
    @test_throws ArgumentError Rask.roundtrip(Any[1, sin])
    @test_throws ArgumentError Rask.roundtrip(["a" "b"])      # a matrix of strings
    @test_throws InexactError Rask.roundtrip(big(2)^70)
    e = error_of(() -> Rask.roundtrip("\xff"))
    @test e isa RaskError && e.status == LibRask.RASK_ERR_INVALID_UTF8
    e = error_of(() -> Rask.from_msgpack([0x92, 0x01]))
    @test e isa RaskError && e.status == LibRask.RASK_ERR_DECODE
end

@testset "the classic graph" begin
    # {a: 1, x: 10, b: inc(a), y: inc(x), z: add(b, y)} -> 13
    @testset "builtins ($(repr(inc)))" for (inc, add) in ((B.inc, B.add), (:inc, :add), ("inc", "add"))
        g = classic_graph(inc, add)
        @test length(g) == 5
        @test validate(g) === g
        @test compute(g, :z) == 13
        @test compute(g, "z"; threads = 2) == 13
        @test compute(g, Key("z"); threads = 1) == 13
        @test compute(g, :b, :y, :z) == (2, 11, 13)
        @test compute(g, [:z, :a]) == [13, 1]
        close(g)
    end
    @testset "Julia functions" begin
        g = classic_graph(myinc, myadd)
        @test occursin("Main.myinc", sprint(show, g))
        @test compute(g, :z) == 13
        @test compute(g, :z; threads = 2) == 13
        @test compute(g, :b, :y) == (2, 11)
        # Mixed: a Julia function, an anonymous one, a builtin.
        g = classic_graph(x -> x + 1, B.add)
        @test compute(g, :z; threads = 2) == 13
        # Base functions are Julia functions too (Base.sum is not rask's sum).
        g = Graph(:v => [1, 2, 3], :s => Rask.Task(sum, :v), :m => Rask.Task(maximum, :v))
        @test compute(g, :s, :m) == (6, 3)
    end
    @testset "Graph(pairs), aliases, references" begin
        g = Graph(:a => 1, :x => 10, :b => Rask.Task(myinc, Ref("a")), :y => Rask.Task(:inc, Key("x")),
                  :z => Rask.Task(B.add, :b, :y), :w => :z)
        @test compute(g, :w) == 13
        # Strings are literal strings, never references.
        g = Graph(:a => "x", :s => Rask.Task(B.add, :a, "a"))
        @test compute(g, :s) == "xa"
        # Lists of arguments: references and literals, passed as one array.
        g = Graph(:p => 1, :q => 2, :t => Rask.Task(B.sum, Any[:p, :q, 5]), :l => Rask.Task(B.list, (:p, Literal(:q))))
        @test compute(g, :t) == 8
        @test compute(g, :l) == Any[Any[1, "q"]]
        # A nested task gets a key of its own.
        g = Graph(:a => 1, :n => Rask.Task(B.add, Rask.Task(myinc, :a), Rask.Task(B.inc, 100)))
        @test compute(g, :n) == 103
        @test length(g) == 4
        # Two closures with the same name are two functions.
        adders = [let k = k; x -> x + k; end for k in (1, 2)]
        g = Graph(:a => 0, :p => Rask.Task(adders[1], :a), :q => Rask.Task(adders[2], :a))
        @test compute(g, :p, :q) == (1, 2)
        @test length(g.funcs) == 2
    end
    @testset "msgpack graph document" begin
        hex = "82a57461736b7385a16181a576616c756501a17881a576616c75650aa16282a466756e63a3696e63a461" *
              "7267739181a3726566a161a17982a466756e63a3696e63a4617267739181a3726566a178a17a82a466" *
              "756e63a3616464a4617267739281a3726566a16281a3726566a179a76f75747075747391a17a"
        g = Graph(hex2bytes(hex))
        @test Rask.outputs(g) == ["z"]
        @test compute(g, Rask.outputs(g)) == [13]
        # Names in a document run as Julia functions through `functions`.
        doc = Rask.to_msgpack(Dict("tasks" => Dict(
            "a" => Dict("value" => 20),
            "h" => Dict("func" => "half", "args" => [Dict("ref" => "a")]))))
        g = Graph(doc)
        @test compute(g, :h; functions = Dict("half" => x -> x ÷ 2)) == 10
        e = error_of(() -> compute(g, :h))
        @test e isa RaskError && e.status == LibRask.RASK_ERR_UNKNOWN_FUNCTION
    end
    @testset "calling a builtin" begin
        @test B.add(1, 2) == 3
        @test B.inc(41) == 42
        @test B.sum([1.5, 2.5]) == 4.0
    end
end

@testset "graph pictures: to_dot, visualize" begin
    g = classic_graph(B.inc, B.add)
    dot = Rask.to_dot(g)
    @test startswith(dot, "digraph rask {") && endswith(dot, "}\n")
    @test count("->", dot) == 4
    @test occursin("\"z\\nadd\"", dot)
    mktempdir() do d
        @test Rask.visualize(g, joinpath(d, "g.dot")) == dot
        @test read(joinpath(d, "g.dot"), String) == dot
        svg = Rask.visualize(g, joinpath(d, "g.svg"))
        @test occursin("<svg", String(copy(svg))) && read(joinpath(d, "g.svg")) == svg
        @test_throws ArgumentError Rask.visualize(g, joinpath(d, "g.gif"))
    end
end

@testset "@delayed" begin
    x = @delayed myinc(1)
    y = @delayed myinc(10)
    z = @delayed B.add(x, y)
    @test z isa Delayed
    @test compute(z) == 13
    @test compute(z; threads = 2) == 13
    @test compute(x, y, z) == (2, 11, 13)
    # Shared nodes run once; delayed values inside vectors are references.
    calls = Ref(0)
    counted(v) = (calls[] += 1; v)
    base = @delayed counted(5)
    parts = [delayed(myadd)(base, i) for i in 1:10]
    total = @delayed B.sum(parts)
    @test compute(total) == sum(5 + i for i in 1:10)
    @test calls[] == 1
    # Explicit keys, and a delayed value bound in a graph.
    d = delayed(myinc; key = "my-key")(1)
    @test d.key == "my-key"
    g = Graph(:out => d)
    @test compute(g, :out) == 2
    @test compute(g, "my-key") == 2
    g = Rask.graph(z)
    @test compute(g, z.key) == 13
    # A long chain (no recursion when building the graph).
    c = @delayed myinc(0)
    for _ in 1:2000
        c = @delayed myinc(c)
    end
    @test compute(c) == 2001
    @test_throws LoadError @eval @delayed myinc(1; k = 2)
end

@testset "tensors: column-major handling" begin
    M = [1.0 2.0 3.0; 4.0 5.0 6.0]                  # 2×3
    @test size(M) == (2, 3)
    @test Rask.roundtrip(M) == M
    @test size(Rask.roundtrip(M)) == (2, 3)
    # On the wire the shape is reversed and the bytes are Julia's, unchanged:
    # ext type 1, dtype float64 (10), ndim 2, dims [3, 2].
    bytes = Rask.to_msgpack(M)
    payload = 2 + 16 + 48
    @test bytes[1:3] == [0xc7, UInt8(payload), 0x01]
    @test bytes[4:5] == [0x0a, 0x02]
    @test reinterpret(UInt64, bytes[6:21]) == [3, 2]
    @test reinterpret(Float64, bytes[22:end]) == vec(M) == [1, 4, 2, 5, 3, 6]
    # So rask's flat (row-major) index is Julia's linear index, minus one.
    g = Graph(:m => M)
    g[:s] = Rask.Task(B.sum, :m)
    @test compute(g, :s) == 21.0
    for i in 0:5
        g[Symbol("item", i)] = Rask.Task(B.getitem, :m, i)
        @test compute(g, Symbol("item", i)) == M[i+1]
    end
    g[:len] = Rask.Task(B.len, :m)
    @test compute(g, :len) == 6
    # A Julia function sees the same matrix, and its results come back whole.
    g[:t] = Rask.Task(permutedims, :m)
    g[:sz] = Rask.Task(size, :m)
    g[:col] = Rask.Task(A -> A[:, 2], :m)
    @test compute(g, :t) == permutedims(M)
    @test compute(g, :sz) == (2, 3)  # the tuple itself (a host value), not converted
    @test compute(g, :col) == [2.0, 5.0]
    # Other element types and ranks.
    for A in (reshape(Int32.(1:24), 2, 3, 4), rand(UInt8, 3, 2), rand(Float32, 4), [true false; false true],
              reshape(Int64[], 0, 2), reshape(collect(1:6), 1, 6, 1))
        @test Rask.roundtrip(A) == A && typeof(Rask.roundtrip(A)) == typeof(A)
        @test Rask.from_msgpack(Rask.to_msgpack(A)) == A
    end
    A = reshape(Int32.(1:24), 2, 3, 4)
    @test compute(Rask.Task(B.getitem, A, 7)) == A[8]
    @test compute(Rask.Task(B.sum, A)) == sum(A)
    # Views and transposes are copied into a fresh array first.
    @test Rask.roundtrip(transpose(M)) == permutedims(M)
    @test Rask.roundtrip(view(M, :, 2:3)) == M[:, 2:3]
end

@testset "errors" begin
    @testset "cycle" begin
        g = Graph(:a => Rask.Task(B.inc, :b), :b => Rask.Task(B.inc, :c), :c => Rask.Task(myinc, :a))
        e = error_of(() -> validate(g))
        @test e isa RaskError && e.status == LibRask.RASK_ERR_GRAPH
        @test occursin("'a' -> 'b' -> 'c' -> 'a'", e.message) || occursin("->", e.message)
        for k in ("'a'", "'b'", "'c'")
            @test occursin(k, e.message)
        end
        e = error_of(() -> compute(g, :a))
        @test e isa RaskError && e.status == LibRask.RASK_ERR_GRAPH && occursin("'b'", e.message)
        @test occursin("RASK_ERR_GRAPH", sprint(showerror, e))
    end
    @testset "missing key" begin
        g = classic_graph(B.inc, B.add)
        e = error_of(() -> compute(g, :nope))
        @test e isa RaskError && e.status == LibRask.RASK_ERR_GRAPH && occursin("nope", e.message)
        g[:q] = Rask.Task(B.inc, :missing_key)
        e = error_of(() -> compute(g, :q))
        @test e isa RaskError && occursin("'q'", e.message) && occursin("'missing_key'", e.message)
        e = error_of(() -> (g[:a] = 2))
        @test e isa RaskError && e.status == LibRask.RASK_ERR_GRAPH && occursin("a", e.message)
        @test_throws ArgumentError g[""] = 1
        @test_throws ArgumentError g[1] = 1
    end
    @testset "unknown function" begin
        g = Graph(:a => 1, :b => Rask.Task(:no_such_function, :a))
        e = error_of(() -> compute(g, :b))
        @test e isa RaskError && e.status == LibRask.RASK_ERR_UNKNOWN_FUNCTION
        @test occursin("no_such_function", e.message) && occursin("b", e.message)
    end
    @testset "a Julia exception inside a task" begin
        bad(x) = x > 5 ? error("too big: $x") : x
        g = Graph(:a => 10, :b => Rask.Task(bad, :a), :c => Rask.Task(B.inc, :b))
        e = error_of(() -> compute(g, :c))
        @test e isa RaskError && e.status == LibRask.RASK_ERR_TASK_FAILED
        @test occursin("'b'", e.message) && occursin("bad", e.message)
        @test occursin("too big: 10", e.message)
        @test e.cause isa CapturedException && e.cause.ex == ErrorException("too big: 10")
        @test occursin("too big: 10", sprint(showerror, e))
        # A MethodError, and a result rask cannot hold.
        g = Graph(:a => "text", :b => Rask.Task(myinc, :a), :f => Rask.Task(x -> sin, :a))
        e = error_of(() -> compute(g, :b))
        @test e isa RaskError && occursin("MethodError", e.message) && e.cause.ex isa MethodError
        @test compute(g, :f) === sin  # no rask value, but it stays a Julia object
        # A builtin's failure has no Julia cause.
        e = error_of(() -> compute(Rask.Task(B.div, 1, 0)))
        @test e isa RaskError && e.status == LibRask.RASK_ERR_TASK_FAILED && e.cause === nothing
        # The cause's backtrace starts in the user's function, not in rask's loop.
        g = Graph(:a => 10, :b => Rask.Task(bad, :a))
        bt = sprint(showerror, error_of(() -> compute(g, :b)).cause)
        @test occursin("bad", bt) && !occursin("run_task!", bt)
        # An interrupt is not a task failure: it propagates.
        g = Graph(:a => 1, :b => Rask.Task(x -> throw(InterruptException()), :a), :c => Rask.Task(B.inc, :b))
        @test_throws InterruptException compute(g, :c)
        # Other Julia computations go on afterwards.
        @test compute(classic_graph(myinc, myadd), :z) == 13
    end
    @testset "arguments the C API cannot express" begin
        g = Graph()
        @test_throws ArgumentError g[:d] = Rask.Task(identity, Dict("k" => :a))
        g[:d] = Rask.Task(identity, Dict("k" => 1))              # no references: fine
        @test compute(g, :d) == Dict{Any,Any}("k" => 1)
        g[:l] = Rask.Task(identity, Literal(Dict("k" => :a)))    # Symbols as strings
        @test compute(g, :l) == Dict{Any,Any}("k" => "a")
    end
    @testset "closed handles" begin
        g = classic_graph(B.inc, B.add)
        close(g)
        close(g)                                 # idempotent
        @test !isopen(g)
        @test_throws ArgumentError length(g)
        @test_throws ArgumentError compute(g, :z)
        @test occursin("closed", sprint(show, g))
    end
end

@testset "computations" begin
    g = classic_graph(myinc, myadd)
    c = Rask.start(g, [:z, :b]; threads = 1)
    close(g)                                     # the computation has its own copy
    @test fetch(c) == [13, 2]
    @test fetch(c) == [13, 2]                    # again: fresh copies
    @test Rask.isdone(c)
    @test Rask.stats(c).tasks == 3 && Rask.stats(c).tasks_run == 3
    close(c)
    close(c)
    @test !isopen(c)
    # Cancelled before its Julia tasks ran.
    g = classic_graph(myinc, myadd)
    c = Rask.start(g, [:z])
    Rask.cancel(c)
    e = error_of(() -> fetch(c))
    @test e isa RaskError && e.status == LibRask.RASK_ERR_CANCELLED
    close(c)
    # Left to the garbage collector.
    for _ in 1:20
        Rask.start(classic_graph(B.inc, B.add), [:z])
    end
    GC.gc()
    GC.gc()
end

@testset "host values: Julia results stay Julia objects" begin
    made = HostThing[]
    make() = (push!(made, HostThing(length(made) + 1)); made[end])
    same(p, q) = p === q === made[end]
    g = Graph(:a => Rask.Task(make), :b => Rask.Task(same, :a, :a), :c => Rask.Task(p -> [p], :a))
    a, b, c = compute(g, [:a, :b, :c])
    @test a === made[end] && b === true && c[1] === made[end]
    # A builtin gets the portable form: plain data, or refused when there is none.
    g = Graph(:xs => Rask.Task(() -> [1, 2, 3]), :s => Rask.Task(B.sum, :xs),
              :t => Rask.Task(make), :u => Rask.Task(B.sum, :t))
    @test compute(g, :s) == 6
    e = error_of(() -> compute(g, :u))
    @test e isa RaskError && occursin("julia-1.", e.message) && occursin("plain", e.message)
    # Released exactly once: the table is back to where it was (after a full
    # collection, so that no array view of an earlier test is finalized meanwhile).
    GC.gc(); Rask.drain_released!()
    held, released = length(Rask.HOST_OBJECTS), Rask.HOST_RELEASED[]
    g = Graph((Symbol("p", i) => Rask.Task(make) for i in 1:10)...)
    g[:n] = Rask.Task((ps...) -> length(ps), (Symbol("p", i) for i in 1:10)...)
    @test compute(g, :n) == 10
    Rask.drain_released!()
    @test length(Rask.HOST_OBJECTS) == held && Rask.HOST_RELEASED[] - released == 11
    # The portable form of an object with no plain form: Serialization, read back.
    v = Rask.host_value(HostThing(7))
    try
        @test Rask.julia_value(v).x == 7
    finally
        LibRask.rask_value_free(v)
    end
    p = Rask.packed_value(HostThing(8))
    try
        @test Rask.julia_value(p) isa HostThing && Rask.julia_value(p).x == 8
    finally
        LibRask.rask_value_free(p)
    end
end

@testset "arrays without a copy" begin
    lent(a) = any(o -> o === a, values(Rask.HOST_OBJECTS))
    tensor_ptr(p) = (d = Ref{Ptr{Cvoid}}(C_NULL); e = Rask.errref();
                     Rask.check(LibRask.rask_value_tensor_info(p, C_NULL, C_NULL, C_NULL, d, C_NULL, e), e); d[])
    A = reshape(collect(1.0:2.0^15), 128, :)       # 256 KiB: over ZERO_COPY_MIN
    p = Rask.new_value(A)
    @test tensor_ptr(p) == pointer(A)              # rask reads A's own memory
    @test lent(A)
    V = Rask.julia_value(p)                        # an Array over that memory
    @test pointer(V) == pointer(A) && V == A && size(V) == size(A)
    LibRask.rask_value_free(p)
    Rask.drain_released!()
    @test lent(A)                                  # V's reference holds it
    V = nothing
    GC.gc(); Rask.drain_released!()
    @test !lent(A)                                 # released through the queue, on this thread
    # Small arrays are copied; so is everything with ZERO_COPY_MIN at typemax.
    s = [1.0, 2.0]
    @test (p = Rask.new_value(s); r = tensor_ptr(p) != pointer(s); LibRask.rask_value_free(p); r)
    old = Rask.ZERO_COPY_MIN[]
    Rask.ZERO_COPY_MIN[] = typemax(Int)
    try
        @test (p = Rask.new_value(A); r = tensor_ptr(p) != pointer(A); LibRask.rask_value_free(p); r)
        @test pointer(Rask.roundtrip(A)) != pointer(A)
    finally
        Rask.ZERO_COPY_MIN[] = old
    end
    # Bytes the same way.
    bs = rand(UInt8, 1 << 17)
    p = Rask.new_value(bs)
    @test lent(bs)
    b2 = Rask.julia_value(p)
    @test pointer(b2) == pointer(bs) && b2 == bs
    LibRask.rask_value_free(p)
    b2 = nothing
    GC.gc(); Rask.drain_released!()
    @test !lent(bs)
    # Through a local computation: the result is the very array. (In a
    # function: top-level code may keep its temporaries, the graph, alive.)
    via_compute(A) = pointer(compute(Graph(:x => Rask.Task(B.identity, A)), :x)) == pointer(A)
    @test via_compute(A)
    GC.gc(); Rask.drain_released!()
    @test !lent(A)
    # Through a cluster: lent to the scatter, fetched back (a view of the
    # received buffer), released once sent.
    function via_cluster(A)
        cluster = LocalCluster(workers = 1)
        client = Client(cluster)
        try
            got = fetch(scatter(client, [A])[1]; timeout = 60)
            return got == A && pointer(got) != pointer(A)
        finally
            close(client); close(cluster)
        end
    end
    @test via_cluster(A)
    GC.gc(); Rask.drain_released!()
    @test !lent(A)
end


@testset "a 1,000-task map through a Julia function" begin
    n = 1000
    square(x) = x * x
    g = Graph()
    for i in 1:n
        g["sq-$i"] = Rask.Task(square, i)
    end
    g[:total] = Rask.Task(B.sum, Any[Key("sq-$i") for i in 1:n])
    @test length(g) == n + 1
    t = @elapsed total = compute(g, :total; threads = 2)
    @test total == sum(i * i for i in 1:n)
    c = Rask.start(g, [:total]; threads = 2)
    t = @elapsed Rask.run!(c)
    @test Rask.stats(c) == (tasks = n + 1, tasks_run = n + 1, peak_live = Rask.stats(c).peak_live)
    close(c)
    println("  1,000 Julia tasks + a sum: $(round(t * 1000, digits = 1)) ms")
    # The same map with @delayed.
    parts = [delayed(square)(i) for i in 1:n]
    @test compute(delayed(B.sum)(parts)) == sum(i * i for i in 1:n)
end

# ------------------------------------------------------------- clusters

jl_f(x) = 2x + 1
too_big(x) = x > 5 ? error("too big: $x") : x

@testset "cluster: Client and futures" begin
    cluster = LocalCluster(workers = 2)
    client = Client(cluster)
    @test startswith(Rask.address(cluster), "tcp://127.0.0.1:")
    @test Rask.address(client) == Rask.address(cluster)
    @test occursin("Rask.Client", sprint(show, client))
    @test Rask.wait_for_workers(client, 2) == 2
    @testset "the classic graph by submit and fetch" begin
        b = submit(client, :inc, 1)
        y = submit(client, B.inc, 10)
        z = submit(client, "add", b, y)
        @test z isa Rask.Future && startswith(z.key, "add-")
        @test fetch(z) == 13
        @test Rask.result(z; timeout = 10) == 13
        @test Rask.status(z) === :finished && isready(z)
        @test fetch(b) == 2 && fetch(y) == 11
        # Pure keys: the same call is the same key; pure = false and key = ...
        @test submit(client, :inc, 1).key == b.key
        # ... and the same key in every language: the literals of
        # tests/vectors/pure-keys.txt (checked from Rust, C, C++ and Python too).
        @test b.key == "inc-1947b44a679fe4c234ac24d46ccbb2d0"
        @test submit(client, :add, 2, 3).key == "add-1c445a3a02b39b5ef50783175bde8c5d"
        @test submit(client, :mul, 2.5, -1).key == "mul-78af0688493ed884f7a1fafdf525a2b1"
        @test submit(client, :len, "abc").key == "len-1a8af0223c2b69788d6347cba7f21484"
        @test submit(client, :add, 300, -200).key == "add-e39f800594b49f8bee459e3a0444a0ae"
        @test submit(client, :inc, 1; pure = false).key != b.key
        k = submit(client, :inc, 1; key = "my-inc-key")
        @test k.key == "my-inc-key" && fetch(k) == 2
        # The graph itself, computed on the cluster.
        g = classic_graph(:inc, :add)
        @test fetch(compute(client, g, :z)) == 13
        @test gather(compute(client, g, [:b, :y, :z])) == [2, 11, 13]
        @test fetch(compute(client, @delayed B.add(1, 2))) == 3
    end
    @testset "a misspelt function is warned about" begin
        f = submit(client, :incc, 1)
        t0 = time()
        while Rask.warning(f) === nothing
            @test time() - t0 < 20
            time() - t0 < 20 || break
            sleep(0.005)
        end
        @test occursin("no connected worker offers the function 'incc'", Rask.warning(f))
        @test Rask.status(f) === :pending
        # fetch logs it (once) while it waits.
        @test_logs (:warn, r"'incc'") match_mode = :any begin
            @test_throws RaskError fetch(f; timeout = 0.3)
        end
        @test Rask.warning(submit(client, :inc, 1)) === nothing
        Rask.cancel([f])
    end
    @testset "gather and scatter of a matrix (column-major)" begin
        M = [1.0 2.0 3.0; 4.0 5.0 6.0]
        fm = scatter(client, M)                 # a matrix is one value
        @test fm isa Rask.Future
        back = fetch(fm)
        @test back == M && size(back) == (2, 3) && back isa Matrix{Float64}
        # Builtins see rask's row-major [3, 2]: flat index i is Julia's M[i+1].
        @test fetch(submit(client, B.getitem, fm, 1)) == M[2]
        @test fetch(submit(client, B.sum, fm)) == 21.0
        @test fetch(submit(client, B.len, fm)) == 6
        fs = scatter(client, Any[1, "two", M, Int32[1, 2, 3]])   # a vector: one future each
        @test length(fs) == 4
        @test gather(client, fs) == Any[1, "two", M, Int32[1, 2, 3]]
        @test gather(fs)[4] isa Vector{Int32}
        fb = scatter(client, [reshape(collect(1:24), 2, 3, 4)]; broadcast = true)
        @test fetch(submit(client, B.getitem, fb[1], 23)) == 24
        @test gather(client, Rask.Future[]) == Any[]
    end
    @testset "map" begin
        fs = map(client, :inc, 1:10)
        @test length(fs) == 10 && gather(client, fs) == collect(2:11)
        @test fs[1].key == submit(client, :inc, 1).key          # the same pure key
        @test gather(map(client, B.add, fs, 100:109)) == collect(102:2:120)
        @test map(client, :inc, Int[]) == Rask.Future[]
        @test_throws ArgumentError map(client, :inc)
        # One msgpack buffer for all the calls: strings, tuples, matrices as tensors.
        @test gather(map(client, B.add, ["a", "b"], ["x", "y"])) == ["ax", "by"]
        @test gather(map(client, B.len, [(1, 2), (3,)])) == [2, 1]
        @test gather(map(client, B.len, [[1 2; 3 4], [1 2 3]])) == [4, 3]   # tensor elements
        e = error_of(() -> map(client, :inc, [Key("a")]))
        @test e isa ArgumentError && occursin("graph reference", e.msg)
        @test_throws ArgumentError map(client, :inc, [HostThing(1)])
    end
    @testset "map: its futures share one batch" begin
        fs = map(client, B.inc, 1:300)
        b = fs[1].batch
        @test b isa Rask.FutureBatch && all(f -> f.batch === b, fs)
        @test all(f -> f.ptr == C_NULL, fs)                  # no C handle per future
        @test gather(client, fs) == collect(2:301)           # one C call for all
        @test all(f -> f.ptr == C_NULL, fs)
        @test gather(fs[end:-1:1]) == collect(301:-1:2)      # any entries, any order
        @test [f.key for f in fs[1:3]] == [submit(client, B.inc, i).key for i in 1:3]
        @test Rask.status(fs[6]) === :finished && isready(fs[6]) && fs[6].ptr == C_NULL
        @test fetch(fs[5]) == 6 && fs[5].ptr != C_NULL       # its own handle once used alone
        @test fetch(submit(client, B.add, fs[7], 1)) == 9
        @test length(wait(fs).done) == 300
        @test wait(fs[1:2]; mode = :first, timeout = 10).done == fs[1:2]
        # Futures of several batches, or with others: future by future.
        gs = map(client, B.inc, 1001:1003)
        @test gather(vcat(fs[1:2], gs, [submit(client, :inc, 0)])) == [2, 3, 1002, 1003, 1004, 1]
        # An array rask would borrow without a copy keeps to one rask_arg per
        # argument (lent, not copied into the calls' buffer); small ones do not.
        big = collect(1.0:2.0^14)                            # 128 KiB
        @test map(client, B.len, [big])[1].batch === nothing
        @test gather(map(client, B.len, [big, (1, big)])) == [2^14, 2]
        @test map(client, B.len, [[1.0, 2.0]])[1].batch !== nothing
        # A failed entry: the first in order, naming its key.
        ds = map(client, B.div, [1, 1, 1], [1, 0, 0])
        e = error_of(() -> gather(ds))
        @test e isa RaskError && e.status == LibRask.RASK_ERR_TASK_FAILED
        @test e.cause isa Rask.RemoteError && e.cause.key == ds[2].key && e.cause.func == "div"
        @test Rask.status(ds[2]) === :error && Rask.status(ds[1]) === :finished
        # Waits that time out, then cancelled entries.
        ns = map(client, :nobody_offers_this, 1:3)
        for w in (() -> gather(ns; timeout = 0.05), () -> wait(ns; timeout = 0),
                  () -> wait(ns; mode = :first, timeout = 0.05))
            e = error_of(w)
            @test e isa RaskError && e.status == LibRask.RASK_TIMEOUT
        end
        @test all(f -> Rask.status(f) === :pending, ns)
        Rask.cancel(ns[2:3])
        @test Rask.status.(ns) == [:pending, :cancelled, :cancelled]
        e = error_of(() -> gather(ns[2:3]))
        @test e isa RaskError && e.status == LibRask.RASK_ERR_CANCELLED
        # close releases the entry at once; a closed future is refused.
        close(fs[1]); close(fs[1])
        @test !isopen(fs[1]) && occursin("closed", sprint(show, fs[1]))
        @test_throws ArgumentError gather(fs[1:2])
        @test_throws ArgumentError Rask.status(fs[1])
        st = Ref(LibRask.RASK_FUTURE_PENDING)
        @test LibRask.rask_future_batch_status(b.ptr, Ref(Csize_t(0)), 1, st, C_NULL) == LibRask.RASK_ERR_STATE
        @test gather(fs[2:3]) == [3, 4]
    end
    @testset "map: values cross as one msgpack buffer each way, as rask converts them" begin
        xs = Any[nothing, true, false, 0, -1, -32, -33, 127, 128, 255, 65536, -129, 2^31, -2^31 - 1,
                 typemax(Int), typemin(Int), typemax(UInt64), UInt8(7), Int8(-3), big(2)^40, 1.5,
                 Float32(2.5), -0.0, Inf, "", "é"^40, "x"^300, "y"^70_000, :sym, 'c', UInt8[],
                 UInt8[1, 2, 3], zeros(UInt8, 70_000), (1, "a", nothing), Any[Any[1, [2]], "q"],
                 Dict("a" => 1, 2 => [3]), [1 2; 3 4], Float32[1, 2], (a = 1,), Int32[5], 1:3,
                 collect(Any, 1:20), [(i, "s") for i in 1:70_000]]
        same(a, b) = typeof(a) == typeof(b) && isequal(a, b)
        # Julia's encoder, read by rask, gives what rask's conversion gives.
        @test all(same.(Rask.from_msgpack(Rask.pack_calls([(x,) for x in xs])),
                        [Any[Rask.roundtrip(x)] for x in xs]))
        # Julia's decoder gives what rask's decoding gives.
        @test all(x -> same(Rask.unpack_msgpack(Rask.to_msgpack(x)), Rask.roundtrip(x)), xs)
        # Through a cluster: identity of each, gathered from the batch.
        @test all(same.(gather(map(client, B.identity, xs[1:end-1])), Rask.roundtrip.(xs[1:end-1])))
        # What rask refuses is refused the same way: not UTF-8, too large, not a value.
        for bad in ("\xff", big(2)^70, HostThing(1), [Dict(1 => 2) Dict(3 => 4)])
            e1 = error_of(() -> submit(client, B.identity, bad))
            e2 = error_of(() -> map(client, B.identity, [bad]))
            @test typeof(e1) == typeof(e2) && e1 isa Exception
            e1 isa RaskError && @test e1.status == e2.status
        end
        @test_throws RaskError Rask.unpack_msgpack([0x92, 0x01])
        @test_throws RaskError Rask.unpack_msgpack([0xc1])
    end
    @testset "map: the garbage collector releases dropped futures in bulk" begin
        c1 = LocalCluster(workers = 1)
        cl = Client(c1)
        # One future of ten kept; nine left to the collector.
        keep_one(n) = (fs = map(cl, B.inc, 1:n); gather(fs); fs[3])
        old = Rask.DROP_FLUSH[]
        try
            Rask.DROP_FLUSH[] = 4
            keep = keep_one(10)
            GC.gc(); GC.gc()
            # Eight went in two calls from the collector; one waits for the client's next call.
            @test length(keep.batch.dropped) == 1 && keep.batch in cl.dropping
            t0 = time()
            n = -1
            while time() - t0 < 30
                n = Rask.scheduler_info(cl).tasks        # a client call: releases it
                n == 1 && break
                sleep(0.02)
            end
            @test n == 1 && isempty(keep.batch.dropped) && fetch(keep) == 4
        finally
            Rask.DROP_FLUSH[] = old
        end
        close(cl); close(c1)
    end
    @testset "futures as arguments" begin
        xs = [submit(client, :inc, i) for i in 1:5]
        total = submit(client, B.sum, xs)                 # a list of futures
        @test fetch(total) == sum(2:6)
        mixed = submit(client, B.list, (xs[1], 100, Any[xs[2], "s"]))
        @test fetch(mixed) == Any[Any[2, 100, Any[3, "s"]]]
        @test fetch(submit(client, :add, submit(client, :mul, xs[1], 10), xs[5])) == 26
        close(xs[1])                                      # released: argument values still fine
        @test fetch(total) == sum(2:6)
        @test_throws ArgumentError fetch(xs[1])
    end
    @testset "wait and as_completed with push!" begin
        fs = [submit(client, :inc, i) for i in 100:104]
        r = wait(fs)
        @test length(r.done) == 5 && isempty(r.not_done)
        @test wait(fs[1]) === fs[1]
        r = wait(fs; mode = :first)
        @test !isempty(r.done)
        ac = as_completed([submit(client, :inc, i) for i in 1:4])
        seen = Int[]
        for f in ac
            v = fetch(f)
            push!(seen, v)
            v < 8 && push!(ac, submit(client, :add, v, 3))
        end
        # 2..5, then +3 while below 8: 5, 6, 7, 8, then 8, 9, 10.
        @test sort(seen) == sort([2, 3, 4, 5, 5, 6, 7, 8, 8, 9, 10])
        @test length(ac) == 0
        close(ac)
        close(ac)
        @test collect(as_completed(client, Rask.Future[])) == Rask.Future[]
    end
    @testset "Rask.progress" begin
        # On a terminal: redrawn in place at every finished task, the failed
        # one counted and said.
        fs = [[submit(client, :inc, i) for i in 1:5]; submit(client, :div, 1, 0)]
        io = IOBuffer()
        counts = Rask.progress(fs; io = io, tty = true)
        @test counts == (total = 6, finished = 5, erred = 1, cancelled = 0, pending = 0)
        text = String(take!(io))
        @test count(==('\r'), text) == 8  # the empty bar, one per future, the final line
        @test occursin("|   0% Completed | 0/6", text)
        @test endswith(text, "| 100% Completed | 6/6 | " * split(text, "6/6 | ")[end])
        @test endswith(text, "1 erred\n")
        # In a file: the final line only.
        io = IOBuffer()
        @test Rask.progress([submit(client, :inc, i) for i in 1:3]; io = io).finished == 3
        text = String(take!(io))
        @test !occursin('\r', text) && count(==('\n'), text) == 1
        @test occursin("100% Completed | 3/3", text)
        @test Rask.progress(Rask.Future[]; io = IOBuffer()).total == 0
        @test_throws ArgumentError Rask.progress(fs; io = IOBuffer(), width = 0)
    end
    @testset "cancel, timeouts, a function nobody offers" begin
        # No worker offers it: the task waits for one.
        f = submit(client, :nobody_offers_this, 1)
        @test Rask.status(f) === :pending && !isready(f)
        e = error_of(() -> fetch(f; timeout = 0.05))
        @test e isa RaskError && e.status == LibRask.RASK_TIMEOUT && occursin(f.key, e.message)
        e = error_of(() -> wait([f]; timeout = 0))
        @test e isa RaskError && e.status == LibRask.RASK_TIMEOUT
        e = error_of(() -> gather([f]; timeout = 0.01))
        @test e isa RaskError && e.status == LibRask.RASK_TIMEOUT
        ok = submit(client, :inc, 7)
        @test wait([f, ok]; mode = :first, timeout = 10).done == [ok]
        @test Rask.cancel(f) === f
        @test Rask.status(f) === :cancelled
        e = error_of(() -> fetch(f))
        @test e isa RaskError && e.status == LibRask.RASK_ERR_CANCELLED
        e = error_of(() -> gather([ok, f]))
        @test e isa RaskError && e.status == LibRask.RASK_ERR_CANCELLED
        @test_throws ArgumentError wait([ok]; mode = :some)
        @test_throws ArgumentError fetch(ok; timeout = -1)
    end
    @testset "remote errors" begin
        bad = submit(client, :div, 1, 0)
        e = error_of(() -> fetch(bad))
        @test e isa RaskError && e.status == LibRask.RASK_ERR_TASK_FAILED
        @test e.cause isa Rask.RemoteError
        @test e.cause.key == bad.key && e.cause.failed == bad.key && e.cause.func == "div"
        @test startswith(e.cause.worker, "tcp://127.0.0.1:") && occursin("division by zero", e.cause.message)
        @test Rask.status(bad) === :error
        @test occursin("RASK_ERR_TASK_FAILED", sprint(showerror, e)) && !occursin("caused by", sprint(showerror, e))
        # A builtin's error has no exception type or backtrace.
        @test e.cause.exception == "" && e.cause.backtrace == ""
        @test !occursin("remote backtrace", sprint(showerror, e))
        # A task that needs the failed one names it.
        dep = submit(client, :inc, bad)
        e = error_of(() -> fetch(dep))
        @test e.cause.key == dep.key && e.cause.failed == bad.key && e.cause.func == "div"
        @test occursin("needed by", sprint(showerror, e.cause))
        e = error_of(() -> gather([submit(client, :inc, 1), dep]))
        @test e isa RaskError && e.cause isa Rask.RemoteError && e.cause.key == dep.key
        # Bad input, caught here.
        @test_throws ArgumentError submit(client, 42, 1)
        @test_throws ArgumentError submit(client, "", 1)
        @test_throws ArgumentError submit(client, :inc, :a => 1)
        @test_throws ArgumentError submit(client, :inc, Key("a"))
        @test_throws ArgumentError submit(client, :identity, Dict("f" => bad))
        other = Client(cluster)
        @test_throws ArgumentError submit(other, :inc, bad)
        @test_throws ArgumentError gather(other, [bad])
        close(other)
        e = error_of(() -> compute(client, classic_graph(:inc, :add), :nope))
        @test e isa RaskError && e.status == LibRask.RASK_ERR_GRAPH
    end
    @testset "closing" begin
        c2 = Client(Rask.address(cluster); name = "second")
        f = submit(c2, :inc, 1)
        @test fetch(f) == 2
        p = submit(c2, :nobody_offers_this, 2)
        close(c2)
        close(c2)
        @test !isopen(c2) && occursin("closed", sprint(show, c2))
        @test_throws ArgumentError submit(c2, :inc, 1)
        @test Rask.status(p) === :error
        e = error_of(() -> fetch(p))
        @test e isa RaskError && e.status == LibRask.RASK_ERR_STATE
        # Futures left to the garbage collector, and a client of its own cluster.
        for i in 1:50
            submit(client, :inc, i)
        end
        GC.gc()
        c3 = Client(workers = 1)
        @test fetch(submit(c3, :inc, 1)) == 2
        close(c3)
        @test !isopen(c3.cluster)
        e = error_of(() -> Client("tcp://127.0.0.1:1"; timeout = 2))
        @test e isa RaskError && e.status == LibRask.RASK_ERR_CONNECTION
        @test_throws ArgumentError LocalCluster(workers = 0)
    end
    @testset "a Julia worker in this process" begin
        # Served by a Julia task of this thread; the client's waits are
        # sliced, so fetch lets it run.
        w = Rask.Worker(Rask.address(cluster), Dict("jl_f" => jl_f, "too_big" => too_big, "jl_size" => size))
        @test startswith(Rask.address(w), "tcp://") && occursin("jl_f", sprint(show, w))
        t = @async run(w)
        @test fetch(submit(client, "jl_f", 20); timeout = 30) == 41
        # Julia, builtins and Julia again, through futures.
        x = submit(client, :jl_f, submit(client, :inc, 1))
        @test fetch(submit(client, :jl_f, x); timeout = 30) == 11
        M = reshape(collect(1.0:6.0), 2, 3)
        @test fetch(submit(client, :jl_size, scatter(client, M)); timeout = 30) == Any[2, 3]
        # A Julia exception fails its task; the worker goes on.
        e = error_of(() -> fetch(submit(client, :too_big, 10); timeout = 30))
        @test e isa RaskError && e.cause isa Rask.RemoteError
        @test e.cause.func == "too_big" && e.cause.worker == Rask.address(w)
        @test occursin("too big: 10", e.cause.message)
        # ... with the exception's type and the remote backtrace, down to
        # the function that threw
        @test e.cause.exception == "ErrorException"
        @test occursin("too big: 10", e.cause.backtrace) && occursin("too_big", e.cause.backtrace)
        @test occursin("runtests.jl:", e.cause.backtrace)
        @test !occursin("run_task!", e.cause.backtrace)
        @test occursin("remote backtrace (on $(Rask.address(w)))", sprint(showerror, e))
        @test w.tasks_failed == 1 && w.last_failure[2].ex == ErrorException("too big: 10")
        @test fetch(submit(client, :too_big, 3); timeout = 30) == 3
        # Many tasks, and as_completed while it serves.
        fs = [submit(client, :jl_f, i) for i in 1:50]
        @test sum(fetch(f) for f in as_completed(fs; timeout = 30)) == sum(2i + 1 for i in 1:50)
        @test w.tasks_run >= 55
        close(w)
        wait(t)
        @test !isopen(w) && istaskdone(t)
        close(w)
        # Nobody offers jl_f now: a new call waits.
        @test_throws RaskError fetch(submit(client, :jl_f, 1000); timeout = 0.2)
        # Julia functions by their own name (Module.name), as in local graphs.
        w2 = Rask.Worker(Rask.address(cluster), [myinc, myadd]; nthreads = 1)
        t2 = @async run(w2)
        @test fetch(submit(client, myinc, 1); timeout = 30) == 2
        @test fetch(compute(client, classic_graph(myinc, myadd), :z); timeout = 30) == 13
        Rask.stop(w2)
        wait(t2)
        @test Rask.stop_reason(w2) !== nothing && wait(w2)
        close(w2)
        # run with a timeout returns, the worker still up.
        w3 = Rask.Worker(Rask.address(cluster), Dict("jl_f" => jl_f))
        @test run(w3; timeout = 0.05) === w3 && Rask.stop_reason(w3) === nothing
        close(w3)
        @test_throws ArgumentError run(w3)
        @test_throws ArgumentError Rask.Worker(Rask.address(cluster), [1])
        e = error_of(() -> Rask.Worker("tcp://127.0.0.1:1", Dict("f" => jl_f); connect_timeout = 2))
        @test e isa RaskError && e.status == LibRask.RASK_ERR_CONNECTION
        # Memory: a worker limited to 4 MB, spilling by target only; a 3 MB
        # Julia array result goes to its disk and comes back intact.
        dir = mktempdir()
        w4 = Rask.Worker(Rask.address(cluster), Dict("jl_big" => n -> collect(1.0:n));
                         memory_limit = 4_000_000, memory_spill_fraction = false,
                         memory_pause_fraction = false, memory_terminate_fraction = false,
                         local_directory = dir)
        t4 = @async run(w4)
        @test fetch(submit(client, :jl_big, 400_000); timeout = 30) == collect(1.0:400_000)
        mine = readdir(joinpath(dir, "rask-worker-space"); join = true)
        @test length(mine) == 1 && length(readdir(mine[1])) == 2  # lock + the value
        info = Rask.scheduler_info(client)
        @test info.memory_limit >= 4_000_000 && info.paused_workers == 0 && info.workers >= 1
        @test haskey(pairs(info), :spilled_bytes) && haskey(pairs(info), :process_bytes)
        close(w4)
        wait(t4)
        @test isempty(readdir(joinpath(dir, "rask-worker-space")))
        @test_throws ArgumentError Rask.Worker(Rask.address(cluster), Dict("f" => jl_f);
                                               spill_compression = :zip)
        # `nthreads` tasks at once: N tasks that each wait until all N have
        # started (a worker that runs fewer at once never gets them there).
        N = 8
        arrived = Ref(0)
        function jl_meet(i)
            if i < 0
                sleep(0.05)  # a slow first task: the scheduler then holds back its backlog
                return i
            end
            arrived[] += 1
            timedwait(() -> arrived[] >= N, 30.0; pollint = 0.001) === :ok ||
                error("only $(arrived[]) of $N tasks ran at once")
            return i
        end
        w5 = Rask.Worker(Rask.address(cluster), Dict("jl_meet" => jl_meet); nthreads = N)
        t5 = @async run(w5)
        @test fetch(submit(client, :jl_meet, -1); timeout = 30) == -1
        @test gather(client, [submit(client, :jl_meet, i) for i in 1:N]; timeout = 90) == collect(1:N)
        @test w5.tasks_failed == 0
        close(w5)
        wait(t5)
        @test istaskdone(t5) && !isopen(w5)
        # The worker and the client share this Julia thread through its
        # event loop (they wait on rask_worker_fd and rask_client_fd, never
        # in a blocking call): a graph of sleeping Julia tasks, four of which
        # must run at once (they meet before they finish), a builtin on their
        # results, and a Julia task on that, fetched by two Julia tasks at once.
        met = Ref(0)
        function jl_nap(i)
            met[] += 1
            timedwait(() -> met[] >= 4, 30.0; pollint = 0.001) === :ok ||
                error("only $(met[]) of 4 tasks ran at once")
            sleep(0.005)
            return i
        end
        jl_last(x) = (sleep(0.005); 10x)
        w6 = Rask.Worker(Rask.address(cluster), Dict("jl_nap" => jl_nap, "jl_last" => jl_last);
                         nthreads = 4)
        t6 = @async run(w6)
        naps = [submit(client, :jl_nap, i) for i in 1:4]
        total = submit(client, :add, submit(client, :add, naps[1], naps[2]),
                       submit(client, :add, naps[3], naps[4]))
        last = submit(client, :jl_last, total)
        got = Any[nothing, nothing]
        @sync begin
            @async got[1] = fetch(last; timeout = 60)
            @async got[2] = gather(client, naps; timeout = 60)
        end
        @test got[1] == 100 && got[2] == [1, 2, 3, 4]
        @test w6.tasks_failed == 0 && w6.tasks_run == 5
        close(w6)
        wait(t6)
        @test istaskdone(t6)
    end
    close(client)
    close(cluster)
    close(cluster)
    @test !isopen(cluster)
end

jl_label(i) = "<$i>"

@testset "cluster: replicate and rebalance" begin
    cluster = LocalCluster(workers = 2)
    client = Client(cluster)
    # jl_label runs only on this Julia worker: every result lands there.
    w = Rask.Worker(Rask.address(cluster), Dict("jl_label" => jl_label))
    t = @async run(w)
    @test Rask.wait_for_workers(client, 3) == 3
    fs = [submit(client, :jl_label, i) for i in 1:6]
    # rebalance waits for them through the event loop (w computes them).
    r = Rask.rebalance(client, fs; timeout = 60)
    @test r.moved >= 2 && r.bytes > 0
    @test Rask.rebalance(client; timeout = 60) == (moved = 0, bytes = 0)  # balanced now
    @test Rask.rebalance(client, Rask.Future[]) == (moved = 0, bytes = 0)
    rep = Rask.replicate(fs[1:2], 2; timeout = 60)
    @test rep.short == 0
    # Two workers hold each now: nothing more to copy.
    @test Rask.replicate(client, fs[1:2], 2; timeout = 60) == (copied = 0, short = 0)
    # Every worker (three) for the first one.
    @test Rask.replicate(client, fs[1:1]; timeout = 60) == (copied = 1, short = 0)
    @test gather(client, fs; timeout = 30) == ["<$i>" for i in 1:6]
    @test_throws ArgumentError Rask.replicate(client, fs, 0)
    gone = submit(client, :jl_label, 99)
    Rask.cancel(gone)
    e = error_of(() -> Rask.replicate(client, [gone], 2))
    @test e isa RaskError && e.status == LibRask.RASK_ERR_INVALID_ARG
    e = error_of(() -> Rask.rebalance(client, [gone]))
    @test e isa RaskError && e.status == LibRask.RASK_ERR_INVALID_ARG
    close(w)
    wait(t)
    close(client)
    close(cluster)
end

@testset "cluster: coordination objects (Queue, Variable, locks, Event, datasets, Pub/Sub)" begin
    cluster = LocalCluster(workers = 1)
    a = Client(cluster)
    b = Client(cluster)
    q = Rask.Queue(a, "jobs"; maxsize = 2)
    put!(q, 1)
    f = submit(a, :inc, 41)
    put!(q, f)
    e = error_of(() -> put!(q, 3; timeout = 0.05))
    @test e isa RaskError && e.status == LibRask.RASK_TIMEOUT && occursin("queue 'jobs' is full", e.message)
    @test Rask.qsize(Rask.Queue(b, "jobs")) == 2
    close(f)  # the queue keeps the key alive
    @test take!(Rask.Queue(b, "jobs")) == 1
    g = take!(Rask.Queue(b, "jobs"))
    @test g isa Rask.Future && fetch(g) == 42
    e = error_of(() -> take!(q; timeout = 0.02))
    @test e isa RaskError && e.status == LibRask.RASK_TIMEOUT && occursin("queue 'jobs': nothing to get", e.message)

    v = Rask.Variable(a, "stop")
    e = error_of(() -> fetch(v; timeout = 0))
    @test e isa RaskError && occursin("variable 'stop'", e.message)
    put!(v, false)
    @test fetch(Rask.Variable(b, "stop")) == false
    delete!(v)

    ev = Rask.Event(a, "go")
    @test !Rask.is_set(ev)
    Rask.set!(ev)
    @test wait(Rask.Event(b, "go"); timeout = 5)
    Rask.clear!(ev)
    @test !wait(ev; timeout = 0.01)

    l = Rask.DistributedLock(a, "L")
    lock(l)
    @test islocked(l) && !trylock(Rask.DistributedLock(b, "L"))
    unlock(l)
    s = Rask.Semaphore(a, "pool"; max_leases = 2)
    @test Rask.acquire(s) && Rask.acquire(s) && !Rask.acquire(Rask.Semaphore(b, "pool"; max_leases = 2); timeout = 0)
    Rask.release(s); Rask.release(s)

    p = Client(cluster)
    Rask.publish_dataset(p, "two" => submit(p, :inc, 1))
    close(p)
    @test Rask.list_datasets(b) == ["two"]
    @test fetch(Rask.get_dataset(b, "two")) == 2
    Rask.unpublish_dataset(b, "two")
    @test error_of(() -> Rask.get_dataset(b, "two")) isa RaskError

    sub = Rask.Sub(b, "news")
    put!(Rask.Pub(a, "news"), Dict("n" => 1))
    @test take!(sub; timeout = 10) == Dict("n" => 1)
    @test error_of(() -> take!(sub; timeout = 0.01)).status == LibRask.RASK_TIMEOUT
    close(sub)
    Rask.fire_and_forget(submit(a, :inc, 7))

    @testset "seed patterns between clients: a queue with a stop flag, a locked counter" begin
        producer, consumer = Client(cluster), Client(cluster)
        total = Ref(0)
        t = @async begin
            cq, stop = Rask.Queue(consumer, "pipeline"), Rask.Variable(consumer, "pipeline-stop")
            while true
                x = try
                    take!(cq; timeout = 0.05)
                catch err
                    err isa RaskError && err.status == LibRask.RASK_TIMEOUT || rethrow()
                    nothing
                end
                if x === nothing
                    done = try fetch(stop; timeout = 0) catch; false end
                    done === true && Rask.qsize(cq) == 0 && break
                else
                    total[] += x
                end
            end
        end
        pq = Rask.Queue(producer, "pipeline")
        foreach(i -> put!(pq, i), 1:50)
        put!(Rask.Variable(producer, "pipeline-stop"), true)
        wait(t)
        @test total[] == sum(1:50)

        counters = [Client(cluster) for _ in 1:8]
        put!(Rask.Variable(a, "counter"), 0)
        ts = [@async begin
                  l = Rask.DistributedLock(c, "counter-lock")
                  lock(l)
                  try
                      cv = Rask.Variable(c, "counter")
                      put!(cv, fetch(cv) + 1)
                  finally
                      unlock(l)
                  end
              end for c in counters]
        foreach(wait, ts)
        @test fetch(Rask.Variable(a, "counter")) == 8
        foreach(close, counters)
        close(producer); close(consumer)
    end
    close(a); close(b)
    close(cluster)
end

# fib with one task per call, each call a task of a Julia worker that
# submits its two calls through its task's client and secedes while it waits.
function jfib(n)
    n < 2 && return n
    Rask.worker_client() do c
        a = submit(c, "jfib", n - 1; pure = false)
        b = submit(c, "jfib", n - 2; pure = false)
        fetch(a) + fetch(b)
    end
end

@testset "cluster: tasks that submit tasks (get_client, worker_client, secede/rejoin)" begin
    @test_throws ArgumentError Rask.get_client()
    @test_throws ArgumentError Rask.secede()
    @test_throws ArgumentError Rask.rejoin()
    @test_throws ArgumentError Rask.worker_client(c -> 1)
    cluster = LocalCluster(workers = 1)
    client = Client(cluster)
    # One worker with one thread; by hand: get_client, a future passed on,
    # secede twice, rejoin twice; then fib, whose every call waits on two
    # tasks (it would wait on itself without seceding).
    function parent(n)
        c = Rask.get_client()
        @assert c === Rask.get_client()
        g = submit(c, :add, submit(c, :inc, n), 10)
        Rask.secede(); Rask.secede()
        v = fetch(g)
        Rask.rejoin(); Rask.rejoin()
        return v
    end
    w = Rask.Worker(Rask.address(cluster), Dict("jfib" => jfib, "parent" => parent); nthreads = 1)
    t = @async run(w)
    @test fetch(submit(client, "parent", 5); timeout = 60) == 16
    # fib(20): 21,891 tasks, many seceded at once (each secedes before it
    # submits), on one worker with one slot.
    @test fetch(submit(client, "jfib", 20; pure = false); timeout = 600) == 6765
    @test w.tasks_run == 1 + 21891
    @test w.active == 0 && w.rejoining == 0
    # Another worker (default nthreads) joins: fib(20) across the two.
    w2 = Rask.Worker(Rask.address(cluster), Dict("jfib" => jfib))
    t2 = @async run(w2)
    @test fetch(submit(client, "jfib", 20; pure = false); timeout = 600) == 6765
    @test w.tasks_run + w2.tasks_run == 1 + 2 * 21891
    @test w2.tasks_run > 0 && w.tasks_run > 1 + 21891
    close(w2)
    wait(t2)
    close(w)
    wait(t)
    close(client)
    close(cluster)
end

# The seed patterns as tasks of a Julia worker, through the task's client.
function jproduce(n)
    c = Rask.get_client()
    q = Rask.Queue(c, "pipeline")
    foreach(i -> put!(q, i), 1:n)
    put!(Rask.Variable(c, "pipeline-stop"), true)
    return n
end

function jconsume()
    c = Rask.get_client()
    q, stop = Rask.Queue(c, "pipeline"), Rask.Variable(c, "pipeline-stop")
    total = 0
    while true
        x = try
            take!(q; timeout = 0.05)
        catch err
            err isa RaskError && err.status == LibRask.RASK_TIMEOUT || rethrow()
            nothing
        end
        if x === nothing
            done = try fetch(stop; timeout = 0) catch; false end
            done === true && Rask.qsize(q) == 0 && return total
        else
            total += x
        end
    end
end

function jbump(i)
    c = Rask.get_client()
    lock(Rask.DistributedLock(c, "counter-lock")) do
        v = Rask.Variable(c, "counter")
        n = fetch(v)
        yield()             # another task's read-modify-write would interleave here
        put!(v, n + 1)
    end
    return i
end

jrosen(x, y) = (1 - x)^2 + 100 * (y - x * x)^2
JSTART = (-1.5, 2.0)
JROSEN_TASKS = Ref(0)
jrosen_task(x, y) = (JROSEN_TASKS[] += 1; jrosen(x, y))

# The Rosenbrock random search (as tests/c/nested_tasks.c): per step, `n`
# points uniform in a box of half-width `scale` around the best so far
# (xorshift64*), `evaluate(points)` scores them, the best moves there if
# better; the box widens (x1.3) after a success, narrows (x0.9) otherwise.
function random_search(seed, steps, n, evaluate)
    s = UInt64(seed)
    function u()
        s ⊻= s >> 12; s ⊻= s << 25; s ⊻= s >> 27
        return Float64((s * 0x2545F4914F6CDD1D) >> 11) * 2.0^-53 * 2 - 1
    end
    best, best_score, scale = JSTART, jrosen(JSTART...), 0.5
    for _ in 1:steps
        points = [(best[1] + scale * u(), best[2] + scale * u()) for _ in 1:n]
        scores = evaluate(points)
        i = argmin(scores)
        if scores[i] < best_score
            best, best_score, scale = points[i], scores[i], scale * 1.3
        else
            scale *= 0.9
        end
    end
    return [best[1], best[2], best_score]
end

# The search itself runs as a task: each step's points are tasks it submits.
jsearch(seed, steps, n) = Rask.worker_client() do c
    random_search(seed, steps, n, ps -> Float64[x for x in gather(c, [submit(c, "jrosen", x, y; pure = false) for (x, y) in ps])])
end

@testset "cluster: seed patterns as worker tasks (Queue + stop Variable, locked counter, Rosenbrock search)" begin
    cluster = LocalCluster(workers = 1)
    client = Client(cluster)
    fs = Dict("jproduce" => jproduce, "jconsume" => jconsume, "jbump" => jbump, "jrosen" => jrosen_task,
              "jsearch" => jsearch)
    w = Rask.Worker(Rask.address(cluster), fs; nthreads = 8)
    t = @async run(w)
    # A pipeline between two tasks: the consumer stops once the flag is set
    # and the queue is empty.
    cons = submit(client, "jconsume"; pure = false)
    prod = submit(client, "jproduce", 50; pure = false)
    @test fetch(prod; timeout = 120) == 50
    @test fetch(cons; timeout = 120) == sum(1:50)
    # A Lock-protected read-modify-write counter across 8 concurrent tasks.
    put!(Rask.Variable(client, "counter"), 0)
    bumps = [submit(client, "jbump", i; pure = false) for i in 1:8]
    @test sort!([fetch(b; timeout = 120) for b in bumps]) == 1:8
    @test fetch(Rask.Variable(client, "counter")) == 8
    close(w)
    wait(t)
    # The search as a task on a worker with one slot: 60 steps x 8 points,
    # the same point as the search computed here.
    # (The first worker's results still wanted may be recomputed here.)
    w = Rask.Worker(Rask.address(cluster), fs; nthreads = 1)
    t = @async run(w)
    JROSEN_TASKS[] = 0
    found = fetch(submit(client, "jsearch", 7, 60, 8; pure = false); timeout = 300)
    @test JROSEN_TASKS[] == 60 * 8 && w.tasks_run >= 1 + 60 * 8
    here = random_search(7, 60, 8, ps -> [jrosen(x, y) for (x, y) in ps])
    @test Float64.(found) == here
    @test here[3] < jrosen(JSTART...) / 100
    close(w)
    wait(t)
    close(client)
    close(cluster)
end

@testset "cluster: Rask.Scheduler and a worker it closes" begin
    s = Rask.Scheduler()
    @test startswith(Rask.address(s), "tcp://127.0.0.1:")
    w = Rask.Worker(Rask.address(s), Dict("jl_f" => jl_f); name = "jl-worker")
    @test w.name == "jl-worker"
    t = @async run(w)
    client = Client(Rask.address(s))
    @test fetch(submit(client, :jl_f, submit(client, B.inc, 1)); timeout = 30) == 5
    f = submit(client, :nobody_offers_this, 1)
    # Shutting the scheduler down closes the worker: run returns (cleanly).
    close(s)
    @test fetch(t) === w
    @test occursin("shut", Rask.stop_reason(w)) && wait(w)
    e = error_of(() -> fetch(f; timeout = 10))
    @test e isa RaskError && e.status == LibRask.RASK_ERR_CONNECTION
    close(w)
    close(client)
    close(s)
end

@testset "dashboard: on by default, its link reaches clients" begin
    cluster = LocalCluster(workers = 1)
    link = Rask.dashboard_link(cluster)
    @test occursin(r"^http://127\.0\.0\.1:\d+/status$", link)
    client = Client(cluster)
    @test Rask.dashboard_link(client) == link   # from the scheduler's welcome
    # A performance report of a block: the five tasks of the block only.
    path = tempname() * ".html"
    v = Rask.performance_report(client, path) do
        gather(map(client, :inc, 1:5))
    end
    @test v == 2:6
    html = read(path, String)
    @test occursin("<title>rask performance report</title>", html)
    @test !occursin("/static/", html)
    @test length(collect(eachmatch(r"\"ok\":true", html))) == 5
    @test occursin("\"memory\":[", html)   # the workers' memory samples of the block
    rm(path)
    # Written also when the block throws.
    @test_throws ErrorException Rask.performance_report(() -> error("boom"), client, path)
    @test isfile(path)
    rm(path)
    close(client)
    close(cluster)
    s = Rask.Scheduler(dashboard_address = "127.0.0.1:0")
    @test startswith(Rask.dashboard_link(s), "http://127.0.0.1:") && !occursin(":0/", Rask.dashboard_link(s))
    # A Julia worker names its runtime: the dashboard (and so a report) shows it.
    w = Rask.Worker(Rask.address(s), Dict("jl_f" => jl_f); name = "jl-dash")
    t = @async run(w)
    client = Client(Rask.address(s))
    path = tempname() * ".html"
    @test Rask.performance_report(() -> fetch(submit(client, :jl_f, 1); timeout = 30), client, path) == 3
    @test occursin("\"runtime\":\"$(Rask.RUNTIME)\"", read(path, String))
    rm(path)
    close(client)
    close(s)
    @test fetch(t) === w
    close(w)
    s = Rask.Scheduler(dashboard_address = nothing)
    @test Rask.dashboard_link(s) === nothing
    client = Client(Rask.address(s))
    @test Rask.dashboard_link(client) === nothing
    e = error_of(() -> Rask.performance_report(() -> 1, client, tempname()))
    @test e isa RaskError && e.status == LibRask.RASK_ERR_STATE && occursin("no dashboard", e.message)
    close(client)
    close(s)
    e = error_of(() -> Rask.Scheduler(dashboard_address = "nonsense"))
    @test e isa RaskError && e.status == LibRask.RASK_ERR_CONNECTION && occursin("dashboard address", e.message)
    @test_throws ArgumentError Rask.Scheduler(dashboard_address = 8787)
end

@testset "cluster: a worker with reconnect_timeout rejoins a scheduler that returns" begin
    exe = joinpath(get(ENV, "RASK_BIN_DIR", joinpath(ROOT, "target", "release")), "rask-scheduler")
    if !isfile(exe)
        @skip_unless_ci "rask-scheduler is not built"
    else
        proc = open(`$exe --port 0`; read = true)
        try
            address = String(split(readline(proc))[end])
            @test startswith(address, "tcp://")
            port = parse(Int, split(address, ":")[end])
            w = Rask.Worker(address, Dict("jl_f" => jl_f); name = "jl-back", reconnect_timeout = 60)
            t = @async run(w)
            # The scheduler dies (no clean close); a new one comes up on its
            # port: the worker registers there again and serves (with the
            # default it would stop: run throws RASK_ERR_CONNECTION).
            kill(proc, Base.SIGKILL)
            wait(proc)
            s = Rask.Scheduler(; host = "127.0.0.1", port = port)
            client = Client(Rask.address(s))
            @test Rask.wait_for_workers(client, 1; timeout = 30) == 1
            @test fetch(submit(client, :jl_f, 1); timeout = 30) == jl_f(1)
            @test Rask.stop_reason(w) === nothing && !istaskdone(t)
            close(w)                                # run returns, and frees it
            @test fetch(t) === w
            close(client)
            close(s)
        finally
            process_exited(proc) || kill(proc, Base.SIGKILL)
        end
    end
end

# A CA and a certificate it signed (naming a host other than the one
# connected to), made with the openssl command: (ca, cert, key) paths, or
# nothing without openssl.
function test_pki()
    Sys.which("openssl") === nothing && return nothing
    d = mktempdir()
    ec = `-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes`
    run(pipeline(`openssl req -x509 $ec -keyout $d/ca-key.pem -out $d/ca.pem -days 2 -subj /CN=rask-test-CA`;
                 stderr = devnull))
    run(pipeline(`openssl req $ec -keyout $d/key.pem -out $d/node.csr -subj /CN=rask-node`; stderr = devnull))
    write("$d/ext.cnf", "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n" *
                        "extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=DNS:rask-node.invalid\n")
    run(pipeline(`openssl x509 -req -in $d/node.csr -CA $d/ca.pem -CAkey $d/ca-key.pem -CAcreateserial
                  -out $d/cert.pem -days 2 -extfile $d/ext.cnf`; stderr = devnull))
    return ("$d/ca.pem", "$d/cert.pem", "$d/key.pem")
end

@testset "cluster: TLS keywords reach the C options" begin
    pki = test_pki()
    if pki === nothing
        @skip_unless_ci "the openssl command (to make test certificates) is not installed"
    else
        ca, cert, key = pki
        tls = (tls_ca_file = ca, tls_cert = cert, tls_key = key)
        s = Rask.Scheduler(; tls...)
        @test startswith(Rask.address(s), "tls://127.0.0.1:")
        w = Rask.Worker(Rask.address(s), Dict("jl_f" => jl_f); name = "jl-tls-worker", tls...)
        @test startswith(Rask.address(w), "tls://")
        t = @async run(w)
        client = Client(Rask.address(s); tls...)
        @test fetch(submit(client, :jl_f, submit(client, B.inc, 1)); timeout = 30) == 5
        # Without TLS: a clear connection error.
        e = error_of(() -> Client(replace(Rask.address(s), "tls://" => "tcp://")))
        @test e isa RaskError && e.status == LibRask.RASK_ERR_CONNECTION && occursin("requires TLS", e.message)
        # Only some of the files: an invalid argument.
        e = error_of(() -> Client(Rask.address(s); tls_ca_file = ca))
        @test e isa RaskError && e.status == LibRask.RASK_ERR_INVALID_ARG && occursin("missing", e.message)
        close(client)
        close(w)
        fetch(t)
        close(s)
        cluster = Rask.LocalCluster(; workers = 1, tls...)
        @test startswith(Rask.address(cluster), "tls://")
        c = Client(cluster)
        @test fetch(submit(c, B.inc, 41); timeout = 30) == 42
        close(c)
        close(cluster)
    end
end

@testset "shipped functions, worker_main, Pkg.develop offline" begin
    root = normpath(joinpath(@__DIR__, "..", ".."))
    julia = Base.julia_cmd()
    cluster = LocalCluster(workers = 1)
    addr = Rask.address(cluster)
    c = Client(cluster)
    # No Julia worker allows code yet: the scheduler says so at once.
    e = try
        fetch(submit(c, x -> x + 1, 1); timeout = 30)
        nothing
    catch err
        err
    end
    @test e isa RaskError && occursin("no connected worker runs shipped $(Rask.RUNTIME) functions", e.message) &&
          occursin("allow_code=true", e.message)
    @test Rask.may_run_code("tcp://10.1.2.3:8786", nothing, false) isa String
    @test Rask.may_run_code("tcp://10.1.2.3:8786", "s3cret", false) === nothing
    @test Rask.may_run_code("tcp://127.0.0.1:8786", nothing, false) === nothing
    @test Rask.worker_main(["--nthreads", "many"]; io = devnull) == 2
    @test Rask.worker_main(["--bogus"]; io = devnull) == 2
    help = sprint(io -> Rask.worker_main(["--help"]; io = io))
    @test occursin("--allow-code", help) && occursin("--import", help)
    # A Julia worker process started by worker_main, from another directory.
    log = tempname()
    dir = mktempdir()
    proc = cd(dir) do
        run(pipeline(`$julia --startup-file=no --project=$(joinpath(root, "julia")) -e 'using Rask; exit(Rask.worker_main(ARGS))' -- $addr --allow-code --name jworker`;
                     stderr = log); wait = false)
    end
    try
        @test Rask.wait_for_workers(c, 2; timeout = 120) >= 2
        m = 3
        scale = let m = m
            x -> x * m          # a closure
        end
        @test fetch(submit(c, x -> x + 1, 41); timeout = 60) == 42
        @test gather(c, map(c, scale, 1:4)) == [3, 6, 9, 12]
        n = length(Rask.CODE_FUTURES[c])                 # one key per function, whatever the calls
        @test fetch(submit(c, scale, 5); timeout = 60) == 15
        @test gather(c, map(c, scale, 6:7)) == [18, 21]
        @test length(Rask.CODE_FUTURES[c]) == n
        # @delayed of anonymous functions and closures, on the cluster.
        sq = x -> x^2
        d1 = @delayed sq(3)
        d2 = @delayed scale(d1)
        d3 = @delayed Rask.Builtins.add(d2, @delayed scale(1))
        @test fetch(compute(c, d3); timeout = 60) == 30
        @test compute(d3) == 30                          # the same, locally
        # A function that throws on the worker: the error names it.
        e2 = try
            fetch(submit(c, x -> error("bad $x"), 7); timeout = 60)
            nothing
        catch err
            err
        end
        @test e2 isa RaskError && occursin("bad 7", e2.message)
        kill(proc, Base.SIGINT)             # Ctrl-C: a clean stop
        wait(proc)
        @test proc.exitcode == 0
        text = read(log, String)
        @test occursin("worker jworker", text) && occursin("shipped code allowed", text) && occursin("stopped", text)
        # SIGTERM, which Julia 1.5 answers by exiting at once: the worker
        # retires (the task it runs finishes, its result moves to the
        # builtin worker) and exits with status 0.
        log2 = tempname()
        proc2 = run(pipeline(`$julia --startup-file=no --project=$(joinpath(root, "julia")) -e 'using Rask; exit(Rask.worker_main(ARGS))' -- $addr --allow-code --name jterm`;
                             stderr = log2); wait = false)
        try
            @test Rask.wait_for_workers(c, 2; timeout = 120) >= 2
            @test fetch(submit(c, x -> x * 2, 21); timeout = 60) == 42     # only jterm runs Julia code
            # A task that is running when SIGTERM comes still delivers its result.
            started = tempname()
            slow = submit(c, x -> (touch(started); sleep(2); x + 1), 1)
            deadline = time() + 120
            while !isfile(started) && time() < deadline
                sleep(0.05)
            end
            @test isfile(started)
            kill(proc2, Base.SIGTERM)
            @test fetch(slow; timeout = 60) == 2
            wait(proc2)
            @test fetch(slow; timeout = 60) == 2                              # now from the other worker
            @test proc2.exitcode == 0 && proc2.termsignal == 0
            text2 = read(log2, String)
            @test occursin("SIGTERM: worker jterm retires", text2) && occursin("worker jterm stopped", text2)
            @test !occursin("signal (15)", text2)                            # not Julia's own exit
        finally
            process_running(proc2) && kill(proc2, Base.SIGKILL)
        end
    finally
        process_running(proc) && kill(proc)
        close(c)
        close(cluster)
    end
    # A user's own project reaches `using Rask` by Pkg.develop without network,
    # with the empty registry scripts/julia-offline-registry.sh makes.
    depot, proj = mktempdir(), mktempdir()
    run(`sh $(joinpath(root, "scripts", "julia-offline-registry.sh")) $depot`)
    code = "using Pkg; Pkg.offline(true); Pkg.develop(path=$(repr(joinpath(root, "julia")))); using Rask; " *
           "print(Rask.compute(Rask.delayed(Rask.Builtins.inc)(1)))"
    env = copy(ENV)
    env["JULIA_DEPOT_PATH"] = depot * ":" * join(DEPOT_PATH, ":")
    out = read(setenv(`$julia --startup-file=no --project=$proj -e $code`, env), String)
    @test endswith(out, "2")
    @test occursin("Rask", read(joinpath(proj, "Manifest.toml"), String))
end

@testset "mixed-language cluster (tests/mixed)" begin
    if MIXED isa Exception
        @error "the mixed cluster did not start" exception = MIXED
        @test false
    elseif MIXED === nothing
        @skip_unless_ci "rask-scheduler and rask-worker are not built"
    else
        mixed_cluster_tests(MIXED)
    end
end

end # testset Rask

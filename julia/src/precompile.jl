# Type-inference work done once, when the package is precompiled, instead of
# at the first compute of every session (Julia 1.5 caches inferred code, not
# machine code, so this takes a part of the latency away, not all of it).
# Top-level code runs only while the package is precompiled: a session loads
# the result from the cache.
function _precompile_()
    for T in (Nothing, Bool, Int64, UInt64, Float64, String, Symbol, Vector{UInt8}, Vector{Any},
              Dict{String,Any}, Dict{Any,Any}, Vector{Float64}, Matrix{Float64}, Vector{Int64},
              Matrix{Int64}, Tuple{Int64,Int64}, Task, Delayed, Key, Literal)
        precompile(new_value, (T,))
        precompile(Base.setindex!, (Graph, T, Symbol))
        precompile(Base.setindex!, (Graph, T, String))
        precompile(new_arg!, (T, Vector{Delayed}))
    end
    precompile(julia_value, (ValuePtr,))
    precompile(julia_tensor, (ValuePtr,))
    precompile(Graph, ())
    for K in (Symbol, String, Key)
        precompile(compute, (Graph, K))
        precompile(compute, (Graph, Vector{K}))
        precompile(start, (Graph, Vector{K}))
        precompile(keyname, (K,))
    end
    precompile(compute, (Delayed,))
    precompile(compute_delayed, (Vector{Delayed},))
    precompile(run!, (Computation,))
    precompile(run_task!, (Dict{String,Any}, Ptr{LibRask.rask_task}))
    precompile(Base.fetch, (Computation,))
    precompile(close, (Computation,))
    precompile(close, (Graph,))
    precompile(add_task!, (Graph, String, Task, Vector{Delayed}))
    precompile(add_pending!, (Graph, Vector{Delayed}))
    precompile(take_error, (LibRask.rask_status, ErrRef))
    precompile(describe, (ErrorException,))
    precompile(delayed, (Function,))
    # The distributed part.
    precompile(Client, (String,))
    precompile(Client, (LocalCluster,))
    precompile(LocalCluster, ())
    for F in (Symbol, String, Builtin), A in (Int64, Float64, String, Future, Vector{Future}, Matrix{Float64})
        precompile(submit, (Client, F, A))
        precompile(submit, (Client, F, A, A))
    end
    for F in (Symbol, String, Builtin), I in (UnitRange{Int64}, Vector{Int64}, Vector{Float64}, Vector{String})
        precompile(map, (Client, F, I))
    end
    precompile(unpack, (Unpacker,))
    precompile(unpack_buffer, (Ptr{UInt8}, Csize_t))
    precompile(drop_entry!, (Future,))
    precompile(result, (Future,))
    precompile(Base.fetch, (Future,))
    precompile(gather, (Client, Vector{Future}))
    precompile(gather, (Vector{Future},))
    for T in (Vector{Any}, Vector{Int64}, Matrix{Float64}, Int64)
        precompile(scatter, (Client, T))
    end
    precompile(Base.wait, (Vector{Future},))
    precompile(as_completed, (Vector{Future},))
    precompile(Base.iterate, (AsCompleted,))
    precompile(Base.iterate, (AsCompleted, Nothing))
    precompile(cancel, (Future,))
    precompile(status, (Future,))
    precompile(close, (Future,))
    precompile(close, (Client,))
    precompile(close, (LocalCluster,))
    precompile(compute, (Client, Graph, Vector{Symbol}))
    precompile(compute, (Client, Graph, Symbol))
    precompile(Worker, (String, Dict{String,Function}))
    precompile(Worker, (String, Dict{String,Any}))
    precompile(Base.run, (Worker,))
    precompile(close, (Worker,))
    precompile(remote_error, (String, Tuple{String}))
    return nothing
end
_precompile_()

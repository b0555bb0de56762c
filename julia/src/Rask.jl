"""
    Rask

Julia interface to rask, a Dask-style task scheduler (librask, a C library).
Build task graphs of Julia functions and rask builtins and compute them on
rask's thread pool; Julia functions run on the calling Julia thread (pull
mode). See docs/julia.md.

- `Graph`, `Rask.Task`, `Key`, `Literal`, `compute`: graphs by hand;
- `delayed`, `@delayed`: lazy calls;
- `Rask.Builtins`: rask's own functions (`inc`, `add`, `sum`, ...);
- `Client`, `LocalCluster`, `submit`, `gather`, `scatter`, `as_completed`,
  `fetch`: a cluster, as in dask.distributed; `Rask.Worker`: serve Julia
  functions to a cluster;
- `RaskError`: every failure;
- `Rask.LibRask`: the raw C API, one wrapper per function of rask.h.

The library is `ENV["RASK_LIB"]` if set, else the repository's
`target/release/librask.so`, else `target/debug/librask.so`.
"""
module Rask

using Libdl
import FileWatching
import Serialization
import SHA
import FileWatching

include("LibRask.jl")
include("errors.jl")
include("values.jl")
include("msgpack.jl")
include("host.jl")
include("graph.jl")
include("compute.jl")
include("delayed.jl")
include("client.jl")
include("shipping.jl")
include("progress.jl")
include("coordination.jl")
include("worker.jl")
include("precompile.jl")

"""rask's own functions, run on rask's threads: `Rask.Builtins.inc` etc."""
baremodule Builtins
import ..Rask: Builtin
const noop = Builtin("noop")
const identity = Builtin("identity")
const list = Builtin("list")
const inc = Builtin("inc")
const dec = Builtin("dec")
const neg = Builtin("neg")
const add = Builtin("add")
const sub = Builtin("sub")
const mul = Builtin("mul")
const div = Builtin("div")
const sum = Builtin("sum")
const max = Builtin("max")
const min = Builtin("min")
const len = Builtin("len")
const getitem = Builtin("getitem")
end

export Graph, Key, Literal, Builtin, RaskError, Delayed, compute, delayed, @delayed, validate
export Client, LocalCluster, submit, gather, scatter, as_completed

"""
    Rask.find_library() -> String

The librask to load: `ENV["RASK_LIB"]`, else `target/release/librask.so`, else
`target/debug/librask.so` of the repository this package is in.
"""
function find_library()
    env = get(ENV, "RASK_LIB", "")
    if !isempty(env)
        isfile(env) || error("Rask: RASK_LIB is $(repr(env)), which is not a file")
        return abspath(env)
    end
    root = normpath(joinpath(@__DIR__, "..", ".."))
    lib = "librask." * Libdl.dlext
    candidates = [joinpath(root, "target", "release", lib), joinpath(root, "target", "debug", lib)]
    for c in candidates
        isfile(c) && return c
    end
    error("Rask: librask not found: neither $(candidates[1]) nor $(candidates[2]) exists. " *
          "Build it (cargo build --release in $root) or set ENV[\"RASK_LIB\"] to its path.")
end

"""The path of the loaded librask."""
libpath() = LibRask.PATH[]

"""The version of the loaded librask (its crate version)."""
version() = VersionNumber(unsafe_string(LibRask.rask_version_string()))

function __init__()
    path = find_library()
    LibRask.load!(path)
    abi = LibRask.rask_abi_version()
    abi == LibRask.RASK_ABI_VERSION || error("Rask: $path has C ABI version $abi; this package " *
                                             "follows version $(LibRask.RASK_ABI_VERSION)")
    return nothing
end

end # module Rask

# Errors: every failing rask call becomes a `RaskError`; the rask_error is
# always freed.

"""
    RaskError(status, message[, cause])

A failed rask call. `status` is the C status (`Rask.LibRask.RASK_ERR_GRAPH`,
...; `statusname(e)` gives its name), `message` rask's message, which names
the keys and functions involved (`task 'b' (Main.f) failed: ...`). When a
Julia function failed inside a computation, `cause` is that exception with its
backtrace (a `CapturedException`); when a task failed on a cluster worker,
a `Rask.RemoteError` naming the failed task, its function, the worker and
the message; otherwise `nothing`.
"""
struct RaskError <: Exception
    status::LibRask.rask_status
    message::String
    cause::Any
end
RaskError(status, message) = RaskError(status, message, nothing)

"""
    statusname(e::RaskError) -> String

The name of the error's status, e.g. `"RASK_ERR_GRAPH"`.
"""
statusname(e::RaskError) = statusname(e.status)
statusname(st::LibRask.rask_status) = unsafe_string(LibRask.rask_status_name(st))

function Base.showerror(io::IO, e::RaskError)
    print(io, "RaskError: ", statusname(e), ": ", e.message)
    # A RemoteError's text is the message already, but for the remote
    # backtrace.
    if e.cause isa RemoteError
        isempty(e.cause.backtrace) ||
            print(io, "\n\nremote backtrace (on ", e.cause.worker, "):\n", rstrip(e.cause.backtrace))
    elseif e.cause !== nothing
        print(io, "\n\ncaused by: ")
        showerror(io, e.cause)
    end
end

const ErrRef = Base.RefValue{Ptr{LibRask.rask_error}}
errref() = ErrRef(C_NULL)

"""
    take_error(status, err::ErrRef) -> RaskError

Turns a failed status and the rask_error it came with (if any) into a
`RaskError`, freeing the rask_error.
"""
function take_error(st::LibRask.rask_status, err::ErrRef)
    p = err[]
    err[] = C_NULL
    p == C_NULL && return RaskError(st, "")
    try
        return RaskError(LibRask.rask_error_status(p), unsafe_string(LibRask.rask_error_message(p)))
    finally
        LibRask.rask_error_free(p)
    end
end

"""
    check(status, err::ErrRef)

Throws the `RaskError` of a failed call; returns nothing on `RASK_OK`.
"""
@inline function check(st::LibRask.rask_status, err::ErrRef)
    st == LibRask.RASK_OK || throw(take_error(st, err))
    return nothing
end

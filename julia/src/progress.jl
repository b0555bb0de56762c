# Progress of futures: Rask.progress (after dask.distributed.progress).

"""
    Rask.progress(futures; io = stdout, width = 40, timeout = nothing, tty = io isa Base.TTY)
        -> (total, finished, erred, cancelled, pending)

Shows the progress of `futures` (a vector of `Rask.Future`s) as they finish,
and returns once all are done with their counts by outcome. On a terminal
(`tty`) a text bar is redrawn in place (`\\r`) at every finished task:

    [####################                    ] |  50% Completed | 5/10 | 0.3s | 1 erred

elsewhere (a file, a pipe, an `IOBuffer`) only the final line is written. A
failed or cancelled future counts as done, and the bar says how many. It
waits through `as_completed` (so through Julia's event loop: other tasks
run meanwhile); `timeout` (seconds) bounds the wait for each next future
(a `RaskError` with `RASK_TIMEOUT`). Only the standard library is used.
"""
function progress(fs::AbstractVector{Future}; io::IO = stdout, width::Integer = 40,
                  timeout::Union{Nothing,Real} = nothing, tty::Bool = io isa Base.TTY)
    width > 0 || throw(ArgumentError("width must be positive, not $width"))
    total = length(fs)
    finished = erred = cancelled = 0
    t0 = time()
    function draw(final::Bool)
        done = finished + erred + cancelled
        frac = total == 0 ? 1.0 : done / total
        filled = round(Int, width * frac)
        line = string("[", "#"^filled, " "^(width - filled), "] | ", lpad(floor(Int, 100 * frac), 3),
                      "% Completed | ", done, "/", total, " | ", round(time() - t0; digits = 1), "s")
        erred > 0 && (line *= " | $erred erred")
        cancelled > 0 && (line *= " | $cancelled cancelled")
        print(io, tty ? "\r" : "", line, final ? "\n" : "")
        flush(io)
    end
    if total > 0
        ac = as_completed(fs; timeout = timeout)
        try
            tty && draw(false)
            for f in ac
                s = status(f)
                close(f)
                if s === :finished
                    finished += 1
                elseif s === :cancelled
                    cancelled += 1
                else
                    erred += 1
                end
                tty && draw(false)
            end
        finally
            close(ac)
        end
    end
    draw(true)
    return (total = total, finished = finished, erred = erred, cancelled = cancelled,
            pending = total - finished - erred - cancelled)
end

"""
    Rask.performance_report(f, client::Client, path = "rask-report.html")

Runs `f()` and writes the scheduler's performance report of what finished
meanwhile to `path` (also when `f` throws): one self-contained HTML file
that opens with no network (the task stream, counts and run times per
function, the workers' memory over the block, transfers, the event log, the
scheduler's settings), as Dask's `performance_report`. Returns `f()`'s
value. The report comes from the scheduler's dashboard, whose link the
client learnt when it connected (`Rask.dashboard_link(client)`); a scheduler
without one gives a `RaskError` with `RASK_ERR_STATE` before `f` runs.
Fetching the report blocks this thread for that one request (at most the
client's timeout).

```julia
Rask.performance_report(client, "report.html") do
    gather(map(client, :inc, 1:1000))
end
```
"""
function performance_report(f, client::Client, path::AbstractString = "rask-report.html")
    since = Ref{Cdouble}(0)
    err = errref()
    check(LibRask.rask_client_report_start(client, since, err), err)
    try
        return f()
    finally
        err = errref()
        check(LibRask.rask_client_performance_report(client, since[], String(path), err), err)
    end
end

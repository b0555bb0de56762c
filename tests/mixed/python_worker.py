"""A Python worker process for the mixed-language cluster test
(tests/mixed/mixed_cluster.jl):

    PYTHONPATH=bindings/python python3 tests/mixed/python_worker.py tcp://HOST:PORT

joins the scheduler at that address and serves, beside rask's builtins,

    py_f(x)      = 10 * x
    py_shape(t)  = the shape of a tensor, as a list (row-major: a Julia 2x3
                   matrix arrives as shape [3, 2])

until the scheduler closes it. Exits 0 after a clean stop, 1 otherwise.
"""

import sys

import rask


def py_f(x):
    return 10 * x


def py_shape(t):
    return [int(d) for d in t.shape]


def main(argv):
    if len(argv) != 2:
        print("usage: python_worker.py SCHEDULER_ADDRESS", file=sys.stderr)
        return 2
    w = rask.Worker(argv[1], {"py_f": py_f, "py_shape": py_shape}, name="python-worker")
    print(f"python worker {w.name} serving py_f, py_shape", flush=True)
    try:
        reason = w.run()
    except rask.RaskError as e:
        print(f"python worker failed: {e}", flush=True)
        return 1
    finally:
        w.close()
    print(f"python worker stopped: {reason}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

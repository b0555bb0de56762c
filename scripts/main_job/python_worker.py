"""The main job's Python worker process (scripts/run.sh):

    PYTHONPATH=bindings/python python3 scripts/main_job/python_worker.py tcp://HOST:PORT

serves, beside rask's builtins, ``py_clean(x)``: the "transform" step of the
main job's pipeline (a Python function, in pull mode on this process's
threads), until the scheduler closes it."""

import sys

import rask


def py_clean(x):
    # Scale and clip, as a cleaning step would.
    return min(10 * x, 5_000)


def main(argv):
    if len(argv) != 2:
        print("usage: python_worker.py SCHEDULER_ADDRESS", file=sys.stderr)
        return 2
    w = rask.Worker(argv[1], {"py_clean": py_clean}, name="python-worker")
    print(f"python worker {w.name} serving py_clean", flush=True)
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

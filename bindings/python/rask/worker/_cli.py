"""The command line of ``python -m rask.worker``.

A Python worker process: rask's builtins on rask's threads, Python
functions (served by name from ``--import``-ed modules, or shipped by
clients with ``--allow-code``) on ``--nthreads`` Python threads. The options
are ``rask-worker``'s where they apply. SIGTERM retires it as it does
``rask-worker`` (the results only it holds move to other workers, the tasks
it runs finish; a second SIGTERM stops it at once); Ctrl-C stops it at once
after the tasks it runs. Both exit with status 0.
"""

import argparse
import importlib
import logging
import os
import re
import signal
import sys
import threading

DESCRIPTION = """\
Runs a rask worker in a Python process: it registers with the scheduler and
runs rask's builtins (inc, add, sum, ...) on rask's threads and Python
functions on Python threads: functions of the --import-ed modules by name
(a module's __rask_functions__, a dict {name: callable} or a list of
functions), and, with --allow-code, any function a client ships
(a lambda, a closure, ...: serialized with cloudpickle, runtime {runtime}).
SIGTERM retires it gracefully (its results move to other workers, the tasks
it runs finish; a second SIGTERM stops it at once); Ctrl-C stops it at once.
"""

_UNITS = {
    "": 1,
    "b": 1,
    "k": 10**3,
    "kb": 10**3,
    "m": 10**6,
    "mb": 10**6,
    "g": 10**9,
    "gb": 10**9,
    "t": 10**12,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def parse_size(text):
    """Bytes of ``"4GB"``, ``"4GiB"``, ``"512MB"``, ``"1.5G"``, ``"0"`` (as rask-worker reads them)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).lower() not in _UNITS:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 4GB, 4GiB, 512MB, 1.5G, 0)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def _seconds(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"seconds must not be negative: {text!r}")
    return v


def _count(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return v


def parser():
    from ..shipping import RUNTIME

    p = argparse.ArgumentParser(
        prog="python -m rask.worker",
        description=DESCRIPTION.replace("{runtime}", RUNTIME),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "scheduler", nargs="?", default="tcp://127.0.0.1:8786", help="the scheduler's address (default: %(default)s)"
    )
    p.add_argument(
        "--nthreads", type=_count, default=0, metavar="N", help="Python threads running tasks; 0 (default): one per CPU"
    )
    p.add_argument("--threads", type=_count, default=1, metavar="N", help="rask's threads for builtins (default 1)")
    p.add_argument("--name", help="the worker's name (default: worker-<data port>)")
    p.add_argument("--host", help="interface of the data port, announced to the scheduler (default 127.0.0.1)")
    p.add_argument(
        "--memory-limit",
        type=lambda s: s if s in ("auto", "none") else parse_size(s),
        default="auto",
        metavar="BYTES",
        help="the memory limit: 4GB, 4GiB, 512MB; auto (default): machine memory x threads/CPUs; 0 or none: no limit",
    )
    for step, default in (("target", 0.6), ("spill", 0.7), ("pause", 0.8), ("terminate", 0.95)):
        p.add_argument(
            f"--memory-{step}-fraction",
            type=lambda s: False if s in ("false", "off", "none") else float(s),
            default=None,
            metavar="FRACTION",
            help=f"fraction of the memory limit for the {step} step ({default}); false: off",
        )
    p.add_argument("--local-directory", metavar="PATH", help="where the spill directory is made (the temp dir)")
    p.add_argument(
        "--allow-code",
        action="store_true",
        help="run functions clients ship (unpickling runs arbitrary code); on a scheduler address that is not "
        "loopback only with --auth-token-file or TLS",
    )
    p.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE first (repeat for several); its __rask_functions__ are served by name",
    )
    p.add_argument("--heartbeat-interval", type=_seconds, metavar="SECONDS", help="seconds between heartbeats (1)")
    p.add_argument("--connect-timeout", type=_seconds, metavar="SECONDS", help="seconds connecting may take (10)")
    p.add_argument(
        "--reconnect-timeout",
        type=_seconds,
        default=60.0,
        metavar="SECONDS",
        help="seconds to keep reconnecting to a lost scheduler (default 60; 0: exit at once)",
    )
    p.add_argument("--auth-token-file", metavar="PATH", help="a file holding the cluster's shared secret")
    p.add_argument("--tls-ca-file", metavar="PATH", help="TLS: the CA certificate(s) (PEM)")
    p.add_argument("--tls-cert", metavar="PATH", help="TLS: this process's certificate chain (PEM)")
    p.add_argument("--tls-key", metavar="PATH", help="TLS: the private key of --tls-cert (PEM)")
    p.add_argument("-v", "--verbose", action="store_true", help="log each failed task")
    return p


def _module_functions(name):
    """The functions ``--import name`` serves: the module's ``__rask_functions__``."""
    from . import _functions_dict

    module = importlib.import_module(name)
    return _functions_dict(getattr(module, "__rask_functions__", None))


def main(argv=None):
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.ERROR, format="%(name)s: %(levelname)s: %(message)s"
    )
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # --import of a module in the current directory, as `python -m` does
    functions = {}
    try:
        for m in args.imports:
            functions.update(_module_functions(m))
        token = None
        if args.auth_token_file:
            with open(args.auth_token_file, encoding="utf-8") as f:
                token = f.read().strip()
            if not token:
                raise ValueError(f"{args.auth_token_file} holds no token")
    except (ImportError, OSError, ValueError, TypeError) as e:
        print(f"rask.worker: {type(e).__name__}: {e}", file=sys.stderr)
        return 2

    from . import Worker
    from ..errors import RaskError
    from ..shipping import RUNTIME

    stopping = threading.Event()

    try:
        worker = Worker(
            args.scheduler,
            functions=functions,
            nthreads=args.nthreads or os.cpu_count() or 1,
            name=args.name,
            token=token,
            threads=args.threads,
            host=args.host,
            memory_limit=None if args.memory_limit == "none" else args.memory_limit,
            memory_target_fraction=args.memory_target_fraction,
            memory_spill_fraction=args.memory_spill_fraction,
            memory_pause_fraction=args.memory_pause_fraction,
            memory_terminate_fraction=args.memory_terminate_fraction,
            local_directory=args.local_directory,
            heartbeat=args.heartbeat_interval,
            connect_timeout=args.connect_timeout,
            reconnect_timeout=args.reconnect_timeout,
            tls_ca_file=args.tls_ca_file,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            allow_code=args.allow_code,
        )
    except (RaskError, ValueError, TypeError, OSError) as e:
        print(f"rask.worker: cannot join {args.scheduler}: {e}", file=sys.stderr)
        return 1

    def on_signal(signum, frame):
        if stopping.is_set():  # a second SIGTERM: leave at once
            print(f"rask.worker: SIGTERM again: worker {worker.name} stops at once", file=sys.stderr, flush=True)
            worker.stop()
            return
        stopping.set()
        print(
            f"rask.worker: SIGTERM: worker {worker.name} retires (its results move to other workers); "
            "send it again to stop at once",
            file=sys.stderr,
            flush=True,
        )
        worker.retire()  # returns at once; run() returns when the scheduler closes the worker

    signal.signal(signal.SIGTERM, on_signal)
    code = "shipped code allowed" if worker.allows_code else "no shipped code"
    print(
        f"rask.worker: worker {worker.name} at {worker.address} joined {args.scheduler} "
        f"({RUNTIME}, {code}, functions: {', '.join(sorted(worker.functions)) or 'builtins only'})",
        file=sys.stderr,
        flush=True,
    )
    try:
        reason = worker.run()
    except KeyboardInterrupt:
        reason = "interrupted"
    except RaskError as e:
        print(f"rask.worker: {e}", file=sys.stderr)
        worker.close()
        return 1
    worker.close()
    print(f"rask.worker: worker {worker.name} stopped ({reason or 'stopped'})", file=sys.stderr, flush=True)
    return 0

"""Progress of futures: :func:`progress` (after ``dask.distributed.progress``).

On a terminal it draws a text bar that moves as tasks finish and returns
when all are done; in a Jupyter notebook with ``ipywidgets`` installed it
shows a widget and returns at once. The bar is driven by the futures' done
callbacks (the client's callback thread), not by polling the scheduler.
"""

import sys
import threading
import time

from .client import Future


def futures_of(obj):
    """The futures in ``obj``: a Future, or (nested) lists, tuples, sets and
    dict values of them. Anything else raises ``TypeError``."""
    out = []

    def walk(x):
        if isinstance(x, Future):
            out.append(x)
        elif isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, (list, tuple, set, frozenset)):
            for v in x:
                walk(v)
        else:
            raise TypeError(f"progress takes rask futures (or lists, tuples, dicts of them), not {type(x).__name__}")

    walk(obj)
    return out


class Counts:
    """Counts of ``futures`` by outcome, kept up to date by done callbacks:
    ``total``, ``finished``, ``erred`` (failed), ``cancelled``, ``done`` (all
    three) and ``pending``. :meth:`wait` blocks until something changes."""

    def __init__(self, futures):
        self.total = len(futures)
        self.finished = self.erred = self.cancelled = 0
        self._cond = threading.Condition()
        for f in futures:
            f.add_done_callback(self._on_done)

    def _on_done(self, f):
        status = f.status
        with self._cond:
            if status == "finished":
                self.finished += 1
            elif status == "cancelled":
                self.cancelled += 1
            else:
                self.erred += 1
            self._cond.notify_all()

    @property
    def done(self):
        return self.finished + self.erred + self.cancelled

    @property
    def pending(self):
        return self.total - self.done

    def wait(self, timeout):
        """Waits up to ``timeout`` seconds for a future to finish; returns
        whether all are done."""
        with self._cond:
            if self.done < self.total:
                self._cond.wait(timeout)
            return self.done >= self.total

    def as_dict(self):
        with self._cond:
            return {
                "total": self.total,
                "finished": self.finished,
                "erred": self.erred,
                "cancelled": self.cancelled,
                "pending": self.total - self.finished - self.erred - self.cancelled,
            }


def _in_notebook():
    try:
        from IPython import get_ipython  # noqa: PLC0415

        shell = get_ipython()
        return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"
    except Exception:
        return False


def format_bar(counts, elapsed, width=40):
    """One line: ``[#####     ] | 50% Completed | 5/10 | 1.2s`` (and how
    many erred or were cancelled)."""
    c = counts.as_dict()
    done = c["total"] - c["pending"]
    frac = done / c["total"] if c["total"] else 1.0
    filled = int(round(width * frac))
    line = f"[{'#' * filled}{' ' * (width - filled)}] | {int(100 * frac):3d}% Completed | {done}/{c['total']} | {elapsed:.1f}s"
    if c["erred"]:
        line += f" | {c['erred']} erred"
    if c["cancelled"]:
        line += f" | {c['cancelled']} cancelled"
    return line


class TextProgressBar:
    """The terminal bar: redrawn in place (``\\r``) on a terminal, at most
    every ``interval`` seconds while tasks finish; elsewhere (a file, a
    pipe) one line when everything is done."""

    def __init__(self, futures, width=40, interval=0.1, file=None):
        self.start = time.monotonic()
        self.width = width
        self.interval = interval
        self.file = file if file is not None else sys.stdout
        self.counts = Counts(futures)

    def _tty(self):
        try:
            return self.file.isatty()
        except Exception:
            return False

    def _draw(self, end=""):
        line = format_bar(self.counts, time.monotonic() - self.start, self.width)
        self.file.write("\r" + line + end if self._tty() else line + end)
        self.file.flush()

    def run(self, timeout=None):
        """Draws until every future is done (or ``timeout`` seconds passed:
        ``TimeoutError``)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        tty = self._tty()
        last = None
        while True:
            all_done = self.counts.wait(self.interval)
            if all_done:
                self._draw("\n")
                return self.counts.as_dict()
            now = time.monotonic()
            if tty and (last is None or now - last >= self.interval):
                self._draw()
                last = now
            if deadline is not None and time.monotonic() >= deadline:
                if tty:
                    self.file.write("\n")
                raise TimeoutError(f"progress: {self.counts.pending} futures still pending after {timeout} s")


class WidgetProgressBar:
    """The notebook bar (ipywidgets): updated from the done callbacks."""

    def __init__(self, futures):
        import ipywidgets  # noqa: PLC0415

        self.counts = Counts([])
        self.counts.total = len(futures)
        self.bar = ipywidgets.IntProgress(min=0, max=max(1, len(futures)), value=0, description="rask")
        self.label = ipywidgets.HTML()
        self.widget = ipywidgets.HBox([self.bar, self.label])
        self.start = time.monotonic()
        self._update()
        for f in futures:
            f.add_done_callback(self._on_done)

    def _on_done(self, f):
        self.counts._on_done(f)
        self._update()

    def _update(self):
        c = self.counts.as_dict()
        done = c["total"] - c["pending"]
        self.bar.value = done
        self.bar.bar_style = "danger" if c["erred"] else ("success" if not c["pending"] else "")
        self.label.value = f"{done} / {c['total']}" + (f", {c['erred']} erred" if c["erred"] else "")


def progress(*futures, notebook=None, width=40, interval=0.1, file=None, timeout=None):
    """Shows the progress of ``futures`` (Futures, or lists, tuples, dicts
    of them) as they finish.

    In a Jupyter notebook (``notebook=None`` detects it) with ``ipywidgets``
    installed: displays a progress widget and returns it at once. Otherwise:
    draws a text bar on ``file`` (default stdout; redrawn in place on a
    terminal, one final line elsewhere) until every future is done, then
    returns their counts (``{"total", "finished", "erred", "cancelled",
    "pending"}``). A failed or cancelled future counts as done, and the bar
    says how many. ``timeout`` (seconds) raises ``TimeoutError`` if they are
    not all done by then."""
    fs = futures_of(list(futures))
    if notebook is None:
        notebook = _in_notebook()
    if notebook:
        try:
            import ipywidgets  # noqa: F401, PLC0415
            from IPython.display import display  # noqa: PLC0415
        except ImportError:
            notebook = False
        else:
            w = WidgetProgressBar(fs)
            display(w.widget)
            return w
    return TextProgressBar(fs, width=width, interval=interval, file=file).run(timeout)


class performance_report:
    """A performance report of what runs inside the ``with`` block, after
    ``dask.distributed.performance_report``::

        with rask.performance_report("report.html"):
            client.gather(client.map("inc", range(1000)))

    or ``with client.performance_report("report.html"):``.

    ``dashboard``: whose dashboard: a :class:`rask.Client`, a
    :class:`rask.LocalCluster` or :class:`rask.Scheduler` (their
    ``dashboard_link``), or the dashboard's address as a string
    (``rask-scheduler`` prints it: ``rask-scheduler dashboard at
    http://HOST:PORT/status``; the path is ignored). ``None`` (the default)
    means the client :func:`rask.get_client` returns, as Dask's uses the
    default client. On leaving the block the scheduler's ``/report`` is
    written to ``filename``: one self-contained HTML file (no network needed
    to open it) with the task stream of the tasks that finished inside the
    block, counts and run times per function, transfers, the workers with
    their memory, the event log and the scheduler's settings. ``path`` is
    the file written."""

    def __init__(self, filename="rask-report.html", dashboard=None):
        if dashboard is None:
            from .coordination import get_client  # noqa: PLC0415

            try:
                dashboard = get_client()
            except ValueError:
                raise ValueError(
                    "performance_report needs a client (none is open here) or the scheduler's "
                    "dashboard address (http://HOST:PORT)"
                ) from None
        self.client = None
        if not isinstance(dashboard, str):
            link = getattr(dashboard, "dashboard_link", None)
            if not link:
                raise ValueError(f"performance_report: {dashboard!r} has no dashboard (it was started without one)")
            if hasattr(dashboard, "_handle") and hasattr(dashboard, "scheduler_address"):
                self.client = dashboard  # a Client: rask_client_report_start/_performance_report
            dashboard = link
        from urllib.parse import urlsplit

        u = urlsplit(dashboard if "://" in dashboard else "http://" + dashboard)
        if u.scheme != "http" or not u.netloc:
            raise ValueError(f"performance_report: not a dashboard address: {dashboard!r}")
        self.base = f"http://{u.netloc}"
        self.path = filename
        self.since = None

    def _get(self, path):
        import urllib.request

        with urllib.request.urlopen(self.base + path, timeout=30) as r:
            return r.read().decode()

    def __enter__(self):
        # The scheduler's clock: the report holds what finished from here.
        if self.client is not None:
            import ctypes  # noqa: PLC0415

            from . import _lib as L  # noqa: PLC0415
            from .errors import call  # noqa: PLC0415

            since = ctypes.c_double()
            with self.client._handle.use() as h:
                call(L.lib().client_report_start, h, ctypes.byref(since))
            self.since = since.value
            return self
        text = self._get("/api/time")
        try:
            self.since = float(text)
        except ValueError:
            raise RuntimeError(f"{self.base}/api/time answered {text[:80]!r}: not a rask dashboard?") from None
        return self

    def __exit__(self, *exc):
        if self.client is not None:
            import os  # noqa: PLC0415

            from . import _lib as L  # noqa: PLC0415
            from .errors import call  # noqa: PLC0415

            with self.client._handle.use() as h:
                call(L.lib().client_performance_report, h, self.since, os.fsencode(self.path))
            return False
        html = self._get(f"/report?since={self.since!r}")
        with open(self.path, "w", encoding="utf-8") as f:
            f.write(html)
        return False

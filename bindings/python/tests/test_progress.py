"""rask.progress on a pseudo-terminal (a real pty: the bar redraws in place
as tasks finish), in a file (one final line), and as_completed's counts."""

import io
import os
import select
import subprocess
import sys
import time

import pytest

import rask

CHILD = r"""
import sys, threading, rask

go = threading.Event()

def gate(x):
    go.wait(60)  # released by the test once it has seen the bar at 6/11
    return x

def reader():
    sys.stdin.readline()
    go.set()

threading.Thread(target=reader, daemon=True).start()
with rask.Client(n_workers=1, functions={"gate": gate}) as c:
    fast = c.map("inc", range(5))
    slow = c.map("gate", range(5))
    bad = c.submit("div", 1, 0)
    counts = rask.progress([fast, slow], {"bad": bad}, interval=0.05, timeout=60)
    print("COUNTS", sorted(counts.items()))
"""


def _read_until(fd, needle, out, timeout=60):
    deadline = time.monotonic() + timeout
    while needle not in out[0]:
        left = deadline - time.monotonic()
        assert left > 0, f"never saw {needle!r} in {out[0]!r}"
        r, _, _ = select.select([fd], [], [], left)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child closed the pty
                chunk = b""
            assert chunk, f"the child ended before {needle!r}: {out[0]!r}"
            out[0] += chunk.decode(errors="replace")


def test_the_bar_moves_on_a_terminal():
    master, slave = os.openpty()
    p = subprocess.Popen(
        [sys.executable, "-c", CHILD],
        stdin=slave,
        stdout=slave,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
    )
    os.close(slave)
    out = [""]
    try:
        # 5 inc and the failing div are done, the 5 gated tasks are not:
        # the bar says so, in place.
        _read_until(master, "6/11", out)
        assert "\r[" in out[0]
        assert "1 erred" in out[0]
        assert "100%" not in out[0]
        os.write(master, b"go\n")
        _read_until(master, "('total', 11)]", out)
        final, counts = out[0].split("COUNTS")
        assert "('erred', 1), ('finished', 10)" in counts
        assert "100% Completed | 11/11" in final and "1 erred" in final
        assert final.rstrip().endswith("1 erred")
    finally:
        try:
            p.wait(timeout=60)
        finally:
            os.close(master)
            if p.poll() is None:
                p.kill()
    err = p.stderr.read().decode()
    assert p.returncode == 0, err


def test_in_a_file_one_line_and_the_counts():
    buf = io.StringIO()
    with rask.Client(n_workers=1) as c:
        fs = c.map("inc", range(20))
        counts = rask.progress(fs, file=buf)
    assert counts == {"total": 20, "finished": 20, "erred": 0, "cancelled": 0, "pending": 0}
    text = buf.getvalue()
    assert "\r" not in text and text.count("\n") == 1
    assert "100% Completed | 20/20" in text


def test_progress_refuses_what_is_not_a_future():
    with pytest.raises(TypeError, match="rask futures"):
        rask.progress([1, 2])


def test_the_notebook_widget_moves_with_the_futures():
    """The notebook path, with the real ipywidgets (scripts/test.sh installs
    it): progress() displays a widget and returns it at once, before the
    tasks are done; the done callbacks move it to the end, and a failed task
    turns it red."""
    import threading

    import ipywidgets

    go = threading.Event()

    def gate(x):
        go.wait(60)
        return x

    with rask.Client(n_workers=1, functions={"gate": gate}) as c:
        fs = c.map("inc", range(4)) + [c.submit("gate", 1), c.submit("div", 1, 0)]
        w = rask.progress(fs, notebook=True)
        assert isinstance(w.widget, ipywidgets.HBox) and isinstance(w.bar, ipywidgets.IntProgress)
        assert w.bar.max == 6 and w.bar.value < 6, "returned before the gate opened"
        go.set()
        deadline = time.monotonic() + 30
        while w.bar.value < 6:
            assert time.monotonic() < deadline, f"the widget stopped at {w.bar.value}"
            time.sleep(0.02)
        assert w.bar.bar_style == "danger"
        assert w.label.value == "6 / 6, 1 erred"
        ok = rask.progress(c.map("inc", range(10, 13)), notebook=True)
        deadline = time.monotonic() + 30
        while ok.bar.value < 3:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert (ok.bar.bar_style, ok.label.value) == ("success", "3 / 3")


def test_as_completed_counts():
    with rask.Client(n_workers=1) as c:
        fs = c.map("inc", range(5))
        ac = rask.as_completed(fs)
        assert ac.counts() == {"total": 5, "done": 0, "pending": 5}
        next(ac)
        assert ac.counts() == {"total": 5, "done": 1, "pending": 4}
        ac.add(c.submit("inc", 10))
        rest = list(ac)
        assert len(rest) == 5
        assert ac.counts() == {"total": 6, "done": 6, "pending": 0}



def test_the_c_progress_call_through_ctypes():
    """rask_client_progress as bound in rask._lib: it calls back with the
    counts at the start and as they change, last with nothing pending, and
    fills the final counts (a failed task counts as erred)."""
    import contextlib
    import ctypes

    from rask import _lib as L

    with rask.Client(n_workers=1) as c:
        fs = c.map("inc", range(4)) + [c.submit("div", 1, 0)]
        seen = []
        cb = L.ProgressFn(lambda counts, _ud: seen.append((counts[0].total, counts[0].pending)))
        counts = L.ProgressCounts()
        err = L.ErrorP()
        with contextlib.ExitStack() as stack:
            handles = [stack.enter_context(f._handle.use()) for f in fs]
            client = stack.enter_context(c._handle.use())
            arr = (L.FutureP * len(handles))(*handles)
            st = L.lib().client_progress(client, arr, len(handles), cb, None, 30_000, ctypes.byref(counts), ctypes.byref(err))
        assert st == L.OK
        assert (counts.total, counts.pending, counts.finished, counts.erred, counts.cancelled) == (5, 0, 4, 1, 0)
        assert seen and seen[-1] == (5, 0)
        assert all(t == 5 for t, _ in seen)

import os

import pytest

REPO = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
HEADER = os.path.join(REPO, "include", "rask.h")

# Use the repository's own build unless told otherwise.
if "RASK_LIB" not in os.environ and "RASK_ROOT" not in os.environ:
    os.environ["RASK_ROOT"] = REPO

try:
    import numpy  # noqa: F401

    HAVE_NUMPY = True
except ImportError:
    HAVE_NUMPY = False

needs_numpy = pytest.mark.skipif(not HAVE_NUMPY, reason="numpy is not installed")


@pytest.fixture
def classic():
    """The classic graph {a: 1, x: 10, b: inc(a), y: inc(x), z: add(b, y)}."""
    import rask

    g = rask.Graph()
    g["a"] = 1
    g["x"] = 10
    g["b"] = rask.task("inc", rask.ref("a"))
    g["y"] = rask.task("inc", rask.ref("x"))
    g["z"] = rask.task("add", rask.ref("b"), rask.ref("y"))
    yield g
    g.close()


def pytest_report_header(config):
    import rask

    return [f"rask package: {rask.__file__}", f"librask: {rask.library_path()} ({rask.library_version()})"]

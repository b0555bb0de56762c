"""Dask-style dict graphs: ``rask.get(dsk, keys)``.

For people coming from Dask::

    def double(x):
        return 2 * x

    dsk = {
        "a": 1,
        "x": 10,
        "b": ("inc", "a"),          # a builtin, by name
        "y": (double, "x"),         # a Python callable (runs in pull mode)
        "z": ("add", "b", "y"),
        "w": ("sum", ["a", "b", 5]),  # lists inside arguments are traversed
    }
    rask.get(dsk, "z")               # -> 22
    rask.get(dsk, ["z", "w"])        # -> (22, 9)

The rules, as in Dask's dict graphs:

- A **key** is a str, or a tuple (Dask's ``('x', 0)``, known to rask as the
  string ``"('x', 0)"``).
- A **tuple whose first item is a callable or a str** is a task: the first
  item is the function (a Python callable, a builtin's name, or a name given
  in ``functions=``), the rest are its arguments. Unlike Dask, a str first
  item is a function *name*; a tuple that is itself a key of the graph is a
  reference, not a task. Tasks may nest: ``("add", ("inc", "a"), 1)``.
- Inside a task's arguments, **a str (or tuple) equal to a key of the graph
  is a reference to that key**; any other str is a literal. Lists are
  traversed (their elements are arguments), and so are dict values. A
  tuple that is neither a key nor a task is a list.
- A top-level value that is a key is an alias (``"c": "a"``); any other
  non-task value is a literal (after substituting keys inside lists).

This is where the dict spec differs from rask's own graphs
(:class:`rask.Graph` and the msgpack document of docs/graph-spec.md), in
which a string argument is **always** a literal string and references are
explicit (``Ref("a")`` / ``{"ref": "a"}``). With the dict spec, a literal
string that happens to equal a key cannot be passed; build a
:class:`rask.Graph` for that.
"""

from .graph import Graph, Ref, Task


def _is_task(obj):
    return type(obj) is tuple and len(obj) > 0 and (callable(obj[0]) or isinstance(obj[0], str))


def _convert(obj, dsk):
    """The Graph-API form (Ref/Task objects) of a Dask-spec argument."""
    t = type(obj)
    if t is str:
        return Ref(obj) if obj in dsk else obj
    if t is tuple:
        try:
            if obj in dsk:
                return Ref(obj)
        except TypeError:  # unhashable contents
            pass
        if _is_task(obj):
            return Task(obj[0], *(_convert(a, dsk) for a in obj[1:]))
        return [_convert(a, dsk) for a in obj]
    if t is list:
        return [_convert(a, dsk) for a in obj]
    if t is dict:
        return {k: _convert(v, dsk) for k, v in obj.items()}
    return obj


def from_dask(dsk):
    """A :class:`rask.Graph` built from the Dask-style dict ``dsk``."""
    if not isinstance(dsk, dict):
        raise TypeError(f"a Dask-style graph is a dict, not {type(dsk).__name__}")
    g = Graph()
    try:
        for key, value in dsk.items():
            g[key] = _convert(value, dsk)  # a Task, a Ref (alias) or a literal
    except BaseException:
        g.close()
        raise
    return g


def get(dsk, keys, functions=None, threads=0, pullers=1):
    """Computes ``keys`` of the Dask-style dict graph ``dsk``, like
    ``dask.get``: one key gives its value, a list of keys a tuple of values
    (nested lists give nested tuples). See :func:`rask.compute` for the
    other arguments."""
    from .compute import compute

    def flatten(k, out):
        if isinstance(k, list):
            for x in k:
                flatten(x, out)
        else:
            out.append(k)
        return out

    def shape(k, it):
        if isinstance(k, list):
            return tuple(shape(x, it) for x in k)
        return next(it)

    flat = flatten(keys, [])
    with from_dask(dsk) as g:
        values = compute(g, flat, functions=functions, threads=threads, pullers=pullers)
    return shape(keys, iter(values))

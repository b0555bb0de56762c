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

import sys
import threading
from collections.abc import Mapping

from . import _lib as L
from .compute import Computation, _describe, compute
from .errors import GraphError, TaskError, call
from .graph import Graph, Ref, Task, _needs_graph, key_name
from .values import _msgpack, pack


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


def from_dask(dsk, _shipper=None):
    """A :class:`rask.Graph` built from the Dask-style dict ``dsk``."""
    if not isinstance(dsk, dict):
        raise TypeError(f"a Dask-style graph is a dict, not {type(dsk).__name__}")
    g = Graph()
    g._shipper = _shipper
    try:
        for key, value in dsk.items():
            g[key] = _convert(value, dsk)  # a Task, a Ref (alias) or a literal
    except BaseException:
        g.close()
        raise
    return g


def _flatten(k, out):
    if isinstance(k, list):
        for x in k:
            _flatten(x, out)
    else:
        out.append(k)
    return out


def _shape(k, it):
    if isinstance(k, list):
        return tuple(_shape(x, it) for x in k)
    return next(it)


def get(dsk, keys, functions=None, threads=0, pullers=None, num_workers=None):
    """Computes ``keys`` of the graph ``dsk``, like ``dask.get``: one key
    gives its value, a list of keys a tuple of values (nested lists give
    nested tuples).

    ``dsk`` is either rask's Dask-style dict spec (the rules above; see
    :func:`rask.compute` for ``functions``, ``threads`` and ``pullers``), or
    a graph made by Dask itself: any Dask collection or expression (what
    ``dask.compute(x, scheduler=rask.get)`` passes), its
    ``__dask_graph__()``, or a dict holding ``dask._task_spec`` nodes
    (``Task``, ``Alias``, ``DataNode``, ``List``, ...). Dask's graphs are
    run with Dask's own semantics (see :func:`get_dask`)."""
    nodes = _dask_nodes(dsk)
    if nodes is not None:
        if functions is not None:
            raise TypeError("functions= is for rask's dict spec; a Dask graph's tasks carry their callables")
        return get_dask(nodes, keys, threads=threads, pullers=pullers or num_workers)
    flat = _flatten(keys, [])
    with _graph_of(dsk) as g:
        values = compute(g, flat, functions=functions, threads=threads, pullers=pullers or num_workers or 1)
    return _shape(keys, iter(values))


class _NotPlain(Exception):
    """The dict uses a form the one-document path does not write (a task
    nested in an argument, a dict holding references)."""


def _doc_arg(obj, dsk):
    """An argument of a task in the msgpack graph document (docs/graph-spec.md)."""
    t = type(obj)
    if t is str:
        return {"ref": obj} if obj in dsk else obj
    if t is int or t is float or t is bool or obj is None:
        return obj
    if t is tuple:
        try:
            if obj in dsk:
                return {"ref": key_name(obj)}
        except TypeError:  # unhashable contents
            pass
        if _is_task(obj):
            raise _NotPlain
        return [_doc_arg(a, dsk) for a in obj]
    if t is list:
        return [_doc_arg(a, dsk) for a in obj]
    if t is dict and _needs_graph(_convert(obj, dsk)):
        raise _NotPlain
    return {"value": obj}  # a literal, never interpreted


def _graph_of(dsk):
    """``from_dask(dsk)``, built as one msgpack graph document and handed
    to rask in one call when the dict's tasks take references and literals
    (the common case); else key by key."""
    if _msgpack is None or not isinstance(dsk, dict):
        return from_dask(dsk)
    namer = Graph()
    try:
        tasks = {}
        for key, value in dsk.items():
            if _is_task(value):
                tasks[key_name(key)] = {
                    "func": namer._func_name(value[0]),
                    "args": [_doc_arg(a, dsk) for a in value[1:]],
                }
                continue
            alias = False
            if type(value) is str or type(value) is tuple:
                try:
                    alias = value in dsk
                except TypeError:
                    pass
            if alias:
                tasks[key_name(key)] = {"func": "identity", "args": [{"ref": key_name(value)}]}
            elif _needs_graph(_convert(value, dsk)):
                raise _NotPlain
            else:
                tasks[key_name(key)] = {"value": value}
        g = Graph.from_msgpack(pack({"tasks": tasks}))
        g._functions = namer.functions
        return g
    except _NotPlain:
        return from_dask(dsk)
    finally:
        namer.close()


# ------------------------------------------------------------ Dask's graphs


def _dask_nodes(dsk):
    """``None`` when ``dsk`` is rask's dict spec; else Dask's graph as a
    dict of ``dask._task_spec`` nodes (old tuple tasks converted by Dask's
    own ``convert_legacy_graph``)."""
    from_dask_itself = False
    if not isinstance(dsk, Mapping) and hasattr(dsk, "__dask_graph__"):
        dsk = dsk.__dask_graph__()  # a collection or an expression
        from_dask_itself = True
    elif not isinstance(dsk, Mapping):
        return None  # from_dask names the type in its error
    elif type(dsk).__module__.split(".")[0] == "dask":  # a HighLevelGraph
        from_dask_itself = True
    if not from_dask_itself:
        ts = sys.modules.get("dask._task_spec")
        if ts is None or not any(isinstance(v, ts.GraphNode) for v in dsk.values()):
            return None
    try:
        from dask._task_spec import convert_legacy_graph
    except ImportError as e:  # pragma: no cover - a Dask graph without Dask
        raise ImportError(f"computing a Dask graph needs the dask package: {e}") from e
    return convert_legacy_graph(dsk)


def _dask_key_name(key):
    """The string rask knows a Dask key by: a str as it is, anything else
    (a tuple such as ``('x', 0)``, an int) as its ``repr``."""
    return key if type(key) is str else repr(key)


#: The pulled function every task of a Dask graph names in rask.
DASK_FUNCTION = "rask.dask"


def _not_called(*args):  # pragma: no cover - _DaskComputation._run runs the nodes
    raise AssertionError("the tasks of a Dask graph are run by _DaskComputation")


class _DaskComputation:
    """The state of one Dask graph computed on rask's executor.

    rask holds the graph's shape (one task per Dask key, named as Dask names
    it, whose arguments are references to the keys it depends on) and orders
    and dispatches it; the values stay Python objects here, in ``store``,
    never converted: rask's tasks carry nil. A value is dropped as soon as
    the last task that needs it has run (unless it was asked for)."""

    def __init__(self, nodes, keys):
        self.nodes = {}  # rask name -> node
        self.names = {}  # Dask key -> rask name
        wanted = []
        for k in keys:
            if k not in nodes:
                raise GraphError(f"the key {k!r} is not in the graph")
            wanted.append(k)
        # Only what the keys need (rask would cull too, but the reference
        # counts below must count only tasks that will run).
        needed, stack = set(), list(wanted)
        while stack:
            k = stack.pop()
            if k in needed:
                continue
            needed.add(k)
            node = nodes.get(k)
            if node is not None:
                stack.extend(d for d in node.dependencies if d not in needed)
        self.refs = {}  # rask name -> tasks still to run that need its value (+1 if asked for)
        for k in needed:
            name = _dask_key_name(k)
            if name in self.nodes:
                raise GraphError(f"two keys of the Dask graph are both named {name!r} in rask")
            self.names[k] = name
            self.refs[name] = 0
            self.nodes[name] = nodes.get(k)  # None: a dependency missing from the graph
        for k in needed:
            node = nodes.get(k)
            if node is not None:
                for d in node.dependencies:
                    self.refs[self.names[d]] += 1
        for k in wanted:
            self.refs[self.names[k]] += 1
        self.wanted = [self.names[k] for k in wanted]
        self.store = {}
        self.lock = threading.Lock()

    def graph(self):
        """The rask graph: each node a task with references to its dependencies."""
        g = Graph()
        try:
            for name, node in self.nodes.items():
                if node is None:
                    continue  # a reference to it is rask's "missing key" error
                deps = [Ref(self.names[d]) for d in node.dependencies]
                g.add_task(name, DASK_FUNCTION, *deps)
        except BaseException:
            g.close()
            raise
        return g

    def run(self, name):
        """Runs the node ``name`` (its dependencies are in the store)."""
        node = self.nodes[name]
        deps = node.dependencies
        store = self.store
        values = {d: store[self.names[d]] for d in deps}
        result = node(values)
        with self.lock:
            store[name] = result
            for d in deps:
                dn = self.names[d]
                self.refs[dn] -= 1
                if self.refs[dn] == 0:
                    del store[dn]


def get_dask(dsk, keys, threads=0, pullers=None):
    """Computes ``keys`` of a graph made by Dask on rask's local executor.

    ``dsk``: a Dask collection or expression, a ``HighLevelGraph``, or a
    dict of ``dask._task_spec`` nodes and/or old-style tuple tasks; Dask's
    own semantics apply (its ``convert_legacy_graph`` reads tuples). Keys
    keep Dask's names (a tuple key ``('x', 0)`` is ``"('x', 0)"`` in rask).
    Values are never converted: every task runs on a Python thread of this
    process (``pullers`` of them, default one per CPU this process may
    run on, ``dask.system.CPU_COUNT`` as dask.threaded) and
    its result stays the very Python object. rask orders the tasks and hands
    them to those threads; ``threads`` are rask's own threads.

    Returns as ``dask.get``: one key gives its value, a list a tuple. A task
    that raises fails the computation with that very exception (as Dask's
    schedulers do), noted with the key it came from.
    """
    nodes = _dask_nodes(dsk)
    if nodes is None:
        if not isinstance(dsk, Mapping):
            raise TypeError(f"not a Dask graph: {type(dsk).__name__}")
        from dask._task_spec import convert_legacy_graph

        nodes = convert_legacy_graph(dsk)  # old tuple tasks, read as Dask reads them
    flat = _flatten(keys, [])
    state = _DaskComputation(nodes, flat)
    if not pullers:
        # As dask.threaded: the CPUs this process may use (its affinity
        # mask, a cgroup quota), not os.cpu_count(): under `taskset -c 0`
        # two pullers would share one CPU and interleave their numpy work.
        from dask.system import CPU_COUNT as pullers
    with state.graph() as g:
        comp = _DaskRun(state, g, state.wanted, threads)
    with comp:
        comp.work(pullers)
        try:
            comp.wait()
        except TaskError as e:
            cause = e.exception
            if cause is None:
                raise
            if hasattr(cause, "add_note"):
                cause.add_note(f"(raised by the task {e.key!r}, computed by rask)")
            raise cause.with_traceback(cause.__traceback__) from None
        values = [state.store[n] for n in state.wanted]
    return _shape(keys, iter(values))


class _DaskRun(Computation):
    """A :class:`Computation` whose pulled tasks are the nodes of a Dask
    graph, run from the :class:`_DaskComputation` by their key."""

    def __init__(self, state, graph, keys, threads):
        self._state = state
        super().__init__(graph, keys, functions={DASK_FUNCTION: _not_called}, threads=threads)

    def _call(self, key, func, args):
        self._state.run(key)  # the value stays here; rask's task carries nil

    def _run(self, task):
        lib = L.lib()
        name = None
        try:
            name = lib.task_key(task).decode()
            self._state.run(name)
        except BaseException as e:
            if name is not None:
                self._exceptions.setdefault(name, e)
            call(lib.task_fail, task, _describe(e).encode("utf-8", "replace"))  # consumes the task
            if not isinstance(e, Exception):  # KeyboardInterrupt, SystemExit
                self.cancel()
                raise
            return
        call(lib.task_complete, task, lib.value_nil())  # consumes both


# ------------------------------------------------- Dask's graphs on a cluster
#
# Each Dask node becomes one rask task of the shipped runner below (one
# code key for all of them): its arguments are the node pickled with the
# Dask keys of its dependencies, then references to those dependencies.
# Results stay Python objects in the worker process that made them (host
# values): a task of the same process gets the very object; between
# processes numpy arrays travel as rask tensors and anything else pickled,
# as dask.distributed sends them.


class _Boxed:
    """A Dask value on a rask cluster that is not a plain numpy array. The
    box is a host object (docs/python.md, "Host values"): a task of the same
    worker process gets the very box, nothing copied; where it leaves the
    process it is pickled whole, so Dask's types come through exactly (a
    tuple stays a tuple, which plain data would make a list)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __reduce__(self):
        return (_Boxed, (self.value,))

    @property
    def nbytes(self):  # what a worker's memory limit counts
        n = getattr(self.value, "nbytes", None)
        return n if isinstance(n, int) else sys.getsizeof(self.value)


def _box(value):
    """What a Dask node's result is on a rask cluster: a plain numpy array
    as itself (a host object; where it leaves the process it travels as a
    rask tensor, exactly), anything else in a :class:`_Boxed`."""
    return value if _is_tensor(value) else _Boxed(value)


def _unbox(value):
    """A Dask value from what a task or a gather received."""
    return value.value if isinstance(value, _Boxed) else value


def _is_tensor(value):
    """A value rask carries as a tensor and gives back as an equal numpy
    array: exactly ``numpy.ndarray`` (no subclass: a masked array or a
    matrix is boxed), of a tensor dtype in native byte order."""
    np = sys.modules.get("numpy")
    if np is None or type(value) is not np.ndarray:
        return False
    return value.dtype.kind in "biuf" and value.dtype.isnative and value.dtype.name in L.DTYPE_CODES


def run_dask_node(spec, *deps):
    """On a worker: runs one node of a Dask graph. ``spec`` is the pickled
    ``(node, dependency keys)``; ``deps`` the values of those keys (boxed or
    numpy arrays, see :func:`_box`), in that order. Returns the boxed
    result."""
    import pickle

    node, keys = pickle.loads(spec)
    return _box(node({k: _unbox(v) for k, v in zip(keys, deps)}))


def _persisted_class():
    from dask._task_spec import GraphNode

    class Persisted(GraphNode):
        """A key of a Dask collection persisted on a rask cluster: held by
        ``future`` (so the scheduler keeps its data) and read from there."""

        __slots__ = ("future",)

        def __init__(self, key, future):
            self.key = key
            self.future = future
            self._dependencies = frozenset()

        @property
        def block_fusion(self):
            return True

        def __call__(self, values=()):
            return self.future.result()

        def copy(self):
            return Persisted(self.key, self.future)

        def substitute(self, subs, key=None):
            return self if key is None or key == self.key else Persisted(key, self.future)

        def __dask_tokenize__(self):
            return ("rask-persisted", self.key)

        def __reduce__(self):
            raise TypeError(f"the persisted key {self.key!r} lives on a rask cluster and does not pickle")

        def __repr__(self):
            return f"<rask persisted {self.key!r}>"

    return Persisted


_PERSISTED = None


def Persisted(key, future):  # noqa: N802 - a class made on first use (dask is optional)
    global _PERSISTED
    if _PERSISTED is None:
        _PERSISTED = _persisted_class()
    return _PERSISTED(key, future)


def _is_persisted(node):
    return _PERSISTED is not None and isinstance(node, _PERSISTED)


def dask_to_cluster(client, dsk, keys):
    """Sends the Dask graph ``dsk`` (anything :func:`get` takes from Dask)
    to ``client``'s cluster; returns a future per key of ``keys`` (a flat
    list) whose result is the unpickled value."""
    from .client import Future

    nodes = _dask_nodes(dsk)
    if nodes is None:
        if not isinstance(dsk, Mapping):
            raise TypeError(f"not a Dask graph: {type(dsk).__name__}")
        from dask._task_spec import convert_legacy_graph

        nodes = convert_legacy_graph(dsk)
    state = _DaskComputation(nodes, keys)
    from .shipping import CODE_FUNC, dumps

    code, blob = client._code(run_dask_node)
    client._ensure_code_worker()
    held = []  # persisted keys' futures, kept alive while the graph is sent
    g = Graph()
    try:
        g.add_task(code, "identity", blob)
        for name, node in state.nodes.items():
            if node is None:
                continue  # a missing dependency: the graph check names it
            if _is_persisted(node):
                # The scheduler has this key (the future holds it): a key it
                # knows is never recomputed from a new graph's definition.
                held.append(node.future)
                g.add_task(name, "identity", None)
                continue
            deps = list(node.dependencies)
            try:
                spec = dumps((node, deps), f"task {name!r}")
            except TypeError as e:
                raise TypeError(f"the Dask task {name!r} cannot be sent to the cluster: {e}") from e
            g.add_task(name, CODE_FUNC, Ref(code), spec, *(Ref(state.names[d]) for d in deps))
        futures = client._compute_graph(g, state.wanted)
    finally:
        g.close()
    for f in futures:
        f._decode = _unbox
    del held
    return futures


def _collection_expr(collections, finalize, optimize_graph=True):
    from dask.base import collections_to_expr

    expr = collections_to_expr(list(collections), optimize_graph)
    if finalize:
        from dask._expr import FinalizeCompute

        expr = FinalizeCompute(expr)
    return expr.optimize()


def is_dask_collection(obj):
    return not isinstance(obj, (Mapping, Graph)) and hasattr(obj, "__dask_graph__")


def compute_collections(client, collections, optimize_graph=True):
    """A future per Dask collection, computed on ``client``'s cluster; each
    future's result is the collection's computed value."""
    futures = []
    for c in collections:
        expr = _collection_expr([c], True, optimize_graph)
        (key,) = _flatten_keys(expr.__dask_keys__())
        futures.append(dask_to_cluster(client, expr, [key])[0])
    return futures


def persist_collection(client, collection, optimize_graph=True):
    """``collection`` computed on the cluster and kept there: a collection
    of the same type whose keys are held by futures (their data stays on
    the workers until it is garbage collected)."""
    expr = _collection_expr([collection], False, optimize_graph)
    keys = _flatten_keys(expr.__dask_keys__())
    futures = dask_to_cluster(client, expr, keys)
    graph = {k: Persisted(k, f) for k, f in zip(keys, futures)}
    rebuild, args = collection.__dask_postpersist__()
    return rebuild(graph, *args)


def _flatten_keys(keys):
    out = []

    def walk(k):
        if isinstance(k, list):
            for x in k:
                walk(x)
        else:
            out.append(k)

    walk(keys)
    return out

"""Task graphs: :class:`Graph`, :class:`Ref`, :class:`Task`.

A graph binds keys (strings) to literal values or to tasks: a function name
(or a Python callable) applied to arguments. An argument is a literal, a
:class:`Ref` to another key, an inline :class:`Task`, or a list/tuple/dict
nesting any of these::

    g = Graph()
    g["a"] = 1
    g["b"] = task("inc", ref("a"))
    g.add_task("c", "add", Ref("b"), 10)
    g["d"] = task("sum", [ref("a"), ref("b"), 5])
    g["e"] = task(my_python_function, {"weight": ref("c")})

Strings are always literal strings here: references are explicit. (The
Dask-style dict spec, :func:`rask.from_dask`, is where a string equal to a
key means that key.)

What the C API cannot express directly is done with extra keys, named after
the task they belong to (``"e~0"``, ``"e~1"``, ...):

- an inline task inside an argument becomes a task of its own;
- a dict argument that contains references becomes a small task run by the
  Python helper function ``rask.dict`` (in pull mode), since the C API has
  no map-valued argument.
"""

import ctypes
import threading

from . import _lib as L
from .errors import RaskError, call
from .values import to_value

_I64_MIN = -(1 << 63)
_I64_MAX = (1 << 63) - 1

#: The name of the helper that builds a dict argument whose values need refs.
DICT_HELPER = "rask.dict"


_VALUE = object()  # in Graph._log: a literal value


def shipped_func():
    from .shipping import CODE_FUNC

    return CODE_FUNC


def _make_dict(keys, values):
    return dict(zip(keys, values))


def key_name(key):
    """The string rask knows ``key`` by: a ``str`` as it is, a Dask-style
    tuple key as ``str(key)`` (``('x', 0)`` → ``"('x', 0)"``)."""
    if type(key) is str:
        return key
    if isinstance(key, str):
        return str(key)
    if isinstance(key, tuple):
        return str(key)
    raise TypeError(f"a key is a str or a tuple, not {type(key).__name__}: {key!r}")


class Ref:
    """A reference to the value of another key."""

    __slots__ = ("key",)

    def __init__(self, key):
        self.key = key_name(key)

    def __repr__(self):
        return f"Ref({self.key!r})"

    def __eq__(self, other):
        return isinstance(other, Ref) and other.key == self.key

    def __hash__(self):
        return hash(("rask.Ref", self.key))


class Task:
    """A task: ``func`` (a function name or a Python callable) applied to
    ``args``."""

    __slots__ = ("func", "args")

    def __init__(self, func, *args):
        if not (isinstance(func, str) or callable(func)):
            raise TypeError(f"a task's function is a name or a callable, not {func!r}")
        self.func = func
        self.args = args

    def __repr__(self):
        f = self.func if isinstance(self.func, str) else getattr(self.func, "__qualname__", self.func)
        return f"Task({f!r}, {', '.join(map(repr, self.args))})"


def ref(key):
    """``Ref(key)``: a reference to the value of ``key``."""
    return Ref(key)


def task(func, *args):
    """``Task(func, *args)``: ``func`` applied to ``args``."""
    return Task(func, *args)


def _needs_graph(obj):
    """Whether ``obj`` (an argument) contains a Ref or a Task."""
    t = type(obj)
    if t is Ref or t is Task:
        return True
    if t is list or t is tuple:
        return any(_needs_graph(x) for x in obj)
    if t is dict:
        return any(_needs_graph(x) for x in obj.values())
    if isinstance(obj, (Ref, Task)):
        return True
    if isinstance(obj, (list, tuple)) and not hasattr(obj, "_fields"):
        return any(_needs_graph(x) for x in obj)
    if isinstance(obj, dict):
        return any(_needs_graph(x) for x in obj.values())
    return False


def _free_args(args):
    lib = L.lib()
    for a in args:
        lib.arg_free(a)


class Graph:
    """A task graph (owns a ``rask_graph``).

    ``g[key] = value`` binds ``key`` to a literal, or — when ``value`` is a
    :class:`Task`, a :class:`Ref`, or a list/dict containing them — to a
    task. :meth:`add_value` always binds a literal; :meth:`add_task` a task.
    A graph may be given a mapping to start from: ``Graph({"a": 1, "b":
    task("inc", ref("a"))})``.

    Python callables used as task functions are remembered by the graph
    under a name (their ``__qualname__`` without ``<locals>`` prefixes, with
    ``#2``, ``#3``... appended
    when it is a builtin's name or already taken) and run in pull mode when
    the graph is computed.

    Free it with :meth:`close` (idempotent), a ``with`` block, or let the
    garbage collector do it.
    """

    def __init__(self, tasks=None):
        self._h = None
        self._lock = threading.RLock()
        h = L.lib().graph_new()
        if not h:
            raise RaskError("rask_graph_new failed")
        self._h = h
        self._functions = {}  # name -> callable
        self._names = {}  # id(callable) -> name
        self._keys = []  # keys added from Python, in order
        self._key_set = set()
        self._outputs = []
        self._log = []  # (key, func or _VALUE, args or value): what was added, to rebuild it
        self._depth = 0
        self._shipper = None  # for a cluster: ships callables (see shipped())
        if tasks is not None:
            self.update(tasks)

    # ----------------------------------------------------------- lifetime

    @property
    def handle(self):
        """The ``rask_graph *`` (borrowed). Raises if the graph is closed."""
        if not self._h:
            raise RaskError("the graph is closed")
        return self._h

    def close(self):
        """Frees the graph. Idempotent. Computations already started are not
        affected (they keep their own snapshot)."""
        with self._lock:  # not while another thread adds to it or starts a computation
            h, self._h = self._h, None
            if h:
                L.lib().graph_free(h)

    def __del__(self):
        try:
            if getattr(self, "_lock", None) is not None:
                self.close()
        except Exception:  # interpreter shutdown
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --------------------------------------------------------- functions

    @property
    def functions(self):
        """The Python callables the graph's tasks use, by name (a copy)."""
        return dict(self._functions)

    def _func_name(self, func):
        if isinstance(func, str):
            if not func:
                raise ValueError("a function name must not be empty")
            return func
        if not callable(func):
            raise TypeError(f"a task's function is a name or a callable, not {func!r}")
        name = self._names.get(id(func))
        if name is not None and self._functions.get(name) is func:
            return name
        base = getattr(func, "__qualname__", None) or getattr(func, "__name__", None)
        base = (base or type(func).__qualname__).rsplit("<locals>.", 1)[-1]
        lib = L.lib()
        name, n = base, 1
        while lib.registry_contains(None, name.encode()) or (
            name in self._functions and self._functions[name] is not func
        ):
            n += 1
            name = f"{base}#{n}"
        self._functions[name] = func
        self._names[id(func)] = name
        return name

    # -------------------------------------------------------------- keys

    def _new_key(self, parent, n):
        name = f"{parent}~{n}"
        while name in self._key_set:
            name += "~"
        return name

    def _note_key(self, k):
        self._key_set.add(k)
        self._keys.append(k)

    def keys(self):
        """The keys added from Python, in order (a graph decoded from
        msgpack does not list its keys; see ``len(g)``)."""
        return list(self._keys)

    def __contains__(self, key):
        return key_name(key) in self._key_set

    def __len__(self):
        with self._lock:
            return L.lib().graph_len(self.handle)

    # ---------------------------------------------------------- building

    def add_value(self, key, value):
        """Binds ``key`` to the literal ``value`` (never interpreted: a
        :class:`Ref` inside it is a ``TypeError``)."""
        k = key_name(key)
        v = to_value(value)
        with self._lock:
            try:
                h = self.handle
            except RaskError:
                L.lib().value_free(v)
                raise
            call(L.lib().graph_add_value, h, k.encode(), v)  # consumes v
            self._note_key(k)
            if self._depth == 0:
                self._log.append((k, _VALUE, value))

    def add_task(self, key, func, *args):
        """Binds ``key`` to the task ``func(*args)``. ``func`` is a function
        name (a builtin, a name given in ``functions=`` when computing) or a
        Python callable."""
        with self._lock:
            top = self._depth == 0
            self._depth += 1
            try:
                self._add_task(key, func, args)
            finally:
                self._depth -= 1
            if top:
                self._log.append((key_name(key), func, args))

    def _add_task(self, key, func, args):
        k = key_name(key)
        name = self._func_name(func)
        if self._shipper is not None and not isinstance(func, str):
            shipped = self._shipper(func, name, k)
            if shipped is not None:  # (code key, bytes): the callable travels as data
                code, blob = shipped
                if code not in self._key_set:
                    self._add_task(code, "identity", (blob,))
                self._functions.pop(name, None)  # not run by name
                self._names.pop(id(func), None)
                name, args = shipped_func(), (Ref(code),) + tuple(args)
        lib = L.lib()
        h = self.handle
        if all(type(a) is Ref for a in args):  # the fast path: no rask_arg at all
            refs = (ctypes.c_char_p * len(args))(*(a.key.encode() for a in args))
            call(lib.graph_add_task_refs, h, k.encode(), name.encode(), refs, len(args))
        else:
            counter = [0]
            built = []
            try:
                for a in args:
                    built.append(self._arg(a, k, counter))
            except BaseException:
                _free_args(built)
                raise
            arr = (L.ArgP * len(built))(*built)
            call(lib.graph_add_task, h, k.encode(), name.encode(), arr, len(built))  # consumes
        self._note_key(k)

    def __setitem__(self, key, value):
        if isinstance(value, Task):
            self.add_task(key, value.func, *value.args)
        elif isinstance(value, dict) and _needs_graph(value):
            self._functions.setdefault(DICT_HELPER, _make_dict)
            self.add_task(key, DICT_HELPER, list(value.keys()), list(value.values()))
        elif isinstance(value, Ref) or _needs_graph(value):
            self.add_task(key, "identity", value)
        else:
            self.add_value(key, value)

    def update(self, tasks):
        """``g[k] = v`` for every item of the mapping ``tasks``."""
        for k, v in tasks.items():
            self[k] = v

    def _arg(self, a, parent, counter):
        """A new ``rask_arg *`` for the argument ``a`` of the task ``parent``."""
        lib = L.lib()
        t = type(a)
        if t is Ref:
            out = L.ArgP()
            call(lib.arg_ref, a.key.encode(), ctypes.byref(out))
            return out
        if t is int and _I64_MIN <= a <= _I64_MAX:
            return lib.arg_int(a)
        if t is float:
            return lib.arg_float(a)
        if isinstance(a, Task):
            counter[0] += 1
            name = self._new_key(parent, counter[0])
            self.add_task(name, a.func, *a.args)
            return self._arg(Ref(name), parent, counter)
        if isinstance(a, Ref):
            return self._arg(Ref(a.key), parent, counter)
        if isinstance(a, dict) and _needs_graph(a):
            counter[0] += 1
            name = self._new_key(parent, counter[0])
            self._functions.setdefault(DICT_HELPER, _make_dict)
            self.add_task(name, DICT_HELPER, list(a.keys()), list(a.values()))
            return self._arg(Ref(name), parent, counter)
        if isinstance(a, (list, tuple)) and _needs_graph(a):
            items = []
            try:
                for x in a:
                    items.append(self._arg(x, parent, counter))
            except BaseException:
                _free_args(items)
                raise
            arr = (L.ArgP * len(items))(*items)
            out = L.ArgP()
            call(lib.arg_list, arr, len(items), ctypes.byref(out))  # consumes the items
            return out
        out = lib.arg_value(to_value(a))  # consumes the value
        if not out:
            raise RaskError("rask_arg_value failed")
        return out

    # ------------------------------------------------------------- other

    def validate(self):
        """Checks every reference and that there is no cycle; raises
        :class:`rask.GraphError` naming the keys otherwise."""
        with self._lock:
            call(L.lib().graph_validate, self.handle)

    def to_dot(self):
        """The graph as Graphviz DOT text (``rask_graph_to_dot``): tasks as
        ellipses labelled with key and function, values as boxes, keys
        referenced but not defined as dashed red boxes."""
        import ctypes

        lib = L.lib()
        data = ctypes.POINTER(ctypes.c_uint8)()
        n = ctypes.c_size_t()
        with self._lock:
            call(lib.graph_to_dot, self.handle, ctypes.byref(data), ctypes.byref(n))
        try:
            return ctypes.string_at(data, n.value).decode()
        finally:
            lib.buffer_free(data, n.value)  # memory made by Rust is freed by Rust

    def visualize(self, filename=None, format=None):
        """A picture of the graph, after ``dask.visualize``. ``filename``
        ending in ``.dot`` (or ``format="dot"``) gets the DOT text; ``.svg``,
        ``.png`` or ``.pdf`` the picture Graphviz's ``dot`` program draws
        (``RuntimeError`` saying so when ``dot`` is not installed). Returns
        the DOT text, or the picture's bytes for a picture format; with no
        ``filename`` nothing is written."""
        import os
        import shutil
        import subprocess

        if format is None:
            ext = os.path.splitext(filename)[1].lstrip(".").lower() if filename else ""
            format = ext or "dot"
        format = format.lower()
        if format not in ("dot", "svg", "png", "pdf"):
            raise ValueError(f"visualize: format {format!r} is not one of dot, svg, png, pdf")
        text = self.to_dot()
        if format == "dot":
            out = text
            if filename:
                with open(filename, "w", encoding="utf-8") as f:
                    f.write(text)
            return out
        exe = shutil.which("dot")
        if exe is None:
            raise RuntimeError(
                f"visualize: drawing {format} needs Graphviz's 'dot' program (apt-get install graphviz); "
                "a .dot file needs nothing"
            )
        r = subprocess.run([exe, f"-T{format}"], input=text.encode(), capture_output=True, check=False)
        if r.returncode != 0:
            raise RuntimeError(f"visualize: dot failed: {r.stderr.decode(errors='replace').strip()}")
        if filename:
            with open(filename, "wb") as f:
                f.write(r.stdout)
        return r.stdout

    def copy(self):
        """A cheap copy (``rask_graph_clone``): the two can then change
        independently."""
        with self._lock:
            h = L.lib().graph_clone(self.handle)
        if not h:
            raise RaskError("rask_graph_clone failed")
        g = Graph.__new__(Graph)
        g._h = h
        g._lock = threading.RLock()
        g._functions = dict(self._functions)
        g._names = dict(self._names)
        g._keys = list(self._keys)
        g._key_set = set(self._key_set)
        g._outputs = list(self._outputs)
        g._log = list(self._log)
        g._depth = 0
        g._shipper = self._shipper
        return g

    def shipped(self, shipper):
        """A new graph with the same keys in which the tasks of Python
        callables that ``shipper(func, name, key)`` says to ship (by
        returning ``(code_key, bytes)``; ``None`` keeps the name) run the
        shipped function instead (:mod:`rask.shipping`). Rebuilt from what
        was added from Python; a graph decoded from msgpack has no Python
        callables and is returned as a copy."""
        with self._lock:
            if not self._functions:
                return self.copy()
            g = Graph()
            g._shipper = shipper
            try:
                for k, func, args in self._log:
                    if func is _VALUE:
                        g.add_value(k, args)
                    else:
                        g.add_task(k, func, *args)
            except BaseException:
                g.close()
                raise
            g._outputs = list(self._outputs)
            return g

    @classmethod
    def from_msgpack(cls, data):
        """A graph decoded from the msgpack graph document ``data``
        (docs/graph-spec.md). Its ``outputs`` field is :attr:`outputs`."""
        data = bytes(data)
        out = L.GraphP()
        call(L.lib().graph_from_msgpack, data, len(data), ctypes.byref(out))
        g = cls.__new__(cls)
        g._h = out
        g._lock = threading.RLock()
        g._functions, g._names, g._keys, g._key_set = {}, {}, [], set()
        g._log, g._depth, g._shipper = [], 0, None
        lib = L.lib()
        g._outputs = [lib.graph_doc_output(out, i).decode() for i in range(lib.graph_doc_output_count(out))]
        return g

    @property
    def outputs(self):
        """The ``outputs`` of the msgpack document the graph came from."""
        return list(self._outputs)

    def compute(self, keys=None, **kwargs):
        """``rask.compute(self, keys, **kwargs)``; ``keys`` defaults to
        :attr:`outputs`."""
        from .compute import compute

        if keys is None:
            if not self._outputs:
                raise ValueError("no keys given and the graph has no outputs")
            keys = list(self._outputs)
        return compute(self, keys, **kwargs)

    def __repr__(self):
        state = f"{len(self)} keys" if self._h else "closed"
        return f"<rask.Graph {state}>"

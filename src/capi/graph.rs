//! `rask_arg` (a task argument under construction) and `rask_graph`.

use super::value::take as take_value;
use super::{
    ffi_boundary, rask_error, rask_status, rask_value, req, req_bytes, req_mut, req_slice, req_str,
    req_strs, Error,
};
use crate::graph::{Arg, Graph, GraphError};
use crate::value::Value;
use std::ffi::{c_char, CString};
use std::ptr;
use std::sync::Arc;

/// One argument of a task: a literal value, a reference to another key, the
/// value of a future, or a list of arguments (passed to the function as an
/// array). Made by the `rask_arg_*` constructors (and `rask_arg_future`);
/// consumed by `rask_graph_add_task`, `rask_arg_list`, `rask_client_submit`
/// and `rask_client_map`, or freed with `rask_arg_free`.
pub struct rask_arg {
    spec: ArgSpec,
}

/// An argument whose key references are still names; they become key ids
/// when the argument is added to a graph.
pub(crate) enum ArgSpec {
    Value(Value),
    Ref(String),
    /// The value of a future's key (a reference to its key in a graph).
    Future(crate::client::Future),
    List(Vec<ArgSpec>),
}

impl ArgSpec {
    fn check_refs(&self) -> Result<(), GraphError> {
        match self {
            ArgSpec::Value(_) => Ok(()),
            ArgSpec::Ref(k) if k.is_empty() => Err(GraphError::EmptyKey),
            ArgSpec::Ref(_) | ArgSpec::Future(_) => Ok(()),
            ArgSpec::List(items) => items.iter().try_for_each(ArgSpec::check_refs),
        }
    }

    fn resolve(self, g: &mut Graph) -> Result<Arg, GraphError> {
        Ok(match self {
            ArgSpec::Value(v) => Arg::Value(v),
            ArgSpec::Ref(k) => g.r(&k)?,
            ArgSpec::Future(f) => g.r(f.key())?,
            ArgSpec::List(items) => Arg::List(
                items
                    .into_iter()
                    .map(|a| a.resolve(g))
                    .collect::<Result<_, _>>()?,
            ),
        })
    }
}

pub(crate) fn arg_into_c(spec: ArgSpec) -> *mut rask_arg {
    Box::into_raw(Box::new(rask_arg { spec }))
}

unsafe fn take_arg(p: *mut rask_arg) -> Option<ArgSpec> {
    if p.is_null() {
        None
    } else {
        Some(Box::from_raw(p).spec)
    }
}

/// Takes every argument of a C array (all of them, whatever happens), then
/// reports the first NULL one.
pub(crate) unsafe fn take_args(
    args: *const *mut rask_arg,
    n: usize,
    param: &str,
) -> Result<Vec<ArgSpec>, Error> {
    let ptrs = req_slice(args, n, param)?;
    let taken: Vec<Option<ArgSpec>> = ptrs.iter().map(|&p| take_arg(p)).collect();
    taken
        .into_iter()
        .enumerate()
        .map(|(i, a)| a.ok_or_else(|| Error::null(&format!("{param}[{i}]"))))
        .collect()
}

/// An argument holding the literal `value`, which is consumed. The caller
/// owns the result (consumed by `rask_graph_add_task` or `rask_arg_list`, or
/// freed with `rask_arg_free`). Returns NULL if `value` is NULL.
#[no_mangle]
pub unsafe extern "C" fn rask_arg_value(value: *mut rask_value) -> *mut rask_arg {
    ffi_boundary!(default = ptr::null_mut(), {
        match take_value(value) {
            Some(v) => arg_into_c(ArgSpec::Value(v)),
            None => ptr::null_mut(),
        }
    })
}

/// An argument holding the integer `i`. The caller owns it, as for
/// `rask_arg_value`.
#[no_mangle]
pub extern "C" fn rask_arg_int(i: i64) -> *mut rask_arg {
    ffi_boundary!(default = ptr::null_mut(), {
        arg_into_c(ArgSpec::Value(Value::Int(i)))
    })
}

/// An argument holding the float `f`. The caller owns it, as for
/// `rask_arg_value`.
#[no_mangle]
pub extern "C" fn rask_arg_float(f: f64) -> *mut rask_arg {
    ffi_boundary!(default = ptr::null_mut(), {
        arg_into_c(ArgSpec::Value(Value::Float(f)))
    })
}

/// An argument referring to the value of the key `key` (copied; NUL-terminated
/// UTF-8). The key need not exist yet: references are checked when the graph
/// is validated or computed. On success `*out` is set to an argument the
/// caller owns, as for `rask_arg_value`.
#[no_mangle]
pub unsafe extern "C" fn rask_arg_ref(
    key: *const c_char,
    out: *mut *mut rask_arg,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let key = req_str(key, "key")?;
        let out = req_mut(out, "out")?;
        if key.is_empty() {
            return Err(GraphError::EmptyKey.into());
        }
        *out = arg_into_c(ArgSpec::Ref(key.to_owned()));
        Ok(rask_status::RASK_OK)
    })
}

/// An argument that is the list of the `n` arguments in `items` (passed to
/// the function as an array value, each element resolved). Every element of
/// `items` is consumed, even when the call fails; the array itself stays the
/// caller's. `items` may be NULL when `n` is 0. On success `*out` is set to
/// an argument the caller owns, as for `rask_arg_value`.
#[no_mangle]
pub unsafe extern "C" fn rask_arg_list(
    items: *const *mut rask_arg,
    n: usize,
    out: *mut *mut rask_arg,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let items = take_args(items, n, "items");
        let out = req_mut(out, "out")?;
        *out = arg_into_c(ArgSpec::List(items?));
        Ok(rask_status::RASK_OK)
    })
}

/// Frees an argument that was not consumed. NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn rask_arg_free(arg: *mut rask_arg) {
    ffi_boundary!(default = (), {
        drop(take_arg(arg));
    })
}

// ---------------------------------------------------------------------------

/// A task graph: keys bound to literal values or to tasks. Made by
/// `rask_graph_new` or `rask_graph_from_msgpack`, freed with
/// `rask_graph_free`. A computation started from a graph keeps its own
/// snapshot, so the graph may be changed or freed while it runs. A graph
/// must not be changed by two threads at once; reading it (computing,
/// validating) from several threads at once is fine.
pub struct rask_graph {
    graph: Arc<Graph>,
    /// The `outputs` of the msgpack document it was decoded from.
    doc_outputs: Vec<CString>,
}

impl rask_graph {
    /// The graph, shared (cheap to clone).
    pub fn graph(&self) -> &Arc<Graph> {
        &self.graph
    }

    fn graph_mut(&mut self) -> &mut Graph {
        Arc::make_mut(&mut self.graph)
    }
}

/// Checks what `Graph::add_task` would refuse before any reference is
/// interned, so that a refused task leaves no trace in the graph.
fn precheck_task(g: &Graph, key: &str, func: &str) -> Result<(), GraphError> {
    if key.is_empty() {
        return Err(GraphError::EmptyKey);
    }
    if func.is_empty() {
        return Err(GraphError::EmptyFunctionName {
            key: key.to_owned(),
        });
    }
    if g.lookup(key).and_then(|k| g.node(k)).is_some() {
        return Err(GraphError::DuplicateKey(key.to_owned()));
    }
    Ok(())
}

/// A new empty graph. The caller owns it and frees it with
/// `rask_graph_free`. Returns NULL only if rask panicked.
#[no_mangle]
pub extern "C" fn rask_graph_new() -> *mut rask_graph {
    ffi_boundary!(default = ptr::null_mut(), {
        Box::into_raw(Box::new(rask_graph {
            graph: Arc::new(Graph::new()),
            doc_outputs: Vec::new(),
        }))
    })
}

/// A copy of `g`, made cheaply: the two share their keys and tasks until
/// one of them is changed. The caller owns it and frees it with
/// `rask_graph_free`. Returns NULL if `g` is NULL.
#[no_mangle]
pub unsafe extern "C" fn rask_graph_clone(g: *const rask_graph) -> *mut rask_graph {
    ffi_boundary!(default = ptr::null_mut(), {
        match g.as_ref() {
            Some(g) => Box::into_raw(Box::new(rask_graph {
                graph: g.graph.clone(),
                doc_outputs: g.doc_outputs.clone(),
            })),
            None => ptr::null_mut(),
        }
    })
}

/// Frees a graph. NULL is ignored. Computations started from it are not
/// affected.
#[no_mangle]
pub unsafe extern "C" fn rask_graph_free(g: *mut rask_graph) {
    ffi_boundary!(default = (), {
        if !g.is_null() {
            drop(Box::from_raw(g));
        }
    })
}

/// Binds `key` (NUL-terminated UTF-8, copied) to the literal `value`.
/// `value` is consumed, even when the call fails. Fails with
/// `RASK_ERR_GRAPH` if `key` is empty or already defined.
#[no_mangle]
pub unsafe extern "C" fn rask_graph_add_value(
    g: *mut rask_graph,
    key: *const c_char,
    value: *mut rask_value,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let value = take_value(value);
        let g = req_mut(g, "g")?;
        let key = req_str(key, "key")?;
        let value = value.ok_or_else(|| Error::null("value"))?;
        g.graph_mut().add_value(key, value)?;
        Ok(rask_status::RASK_OK)
    })
}

/// Binds `key` to the task `func(args[0], ..., args[nargs-1])`. `key` and
/// `func` are NUL-terminated UTF-8 (copied). Every element of `args` is
/// consumed, even when the call fails; the array itself stays the caller's
/// (`args` may be NULL when `nargs` is 0). The function is looked up by name
/// when the graph is computed. Fails with `RASK_ERR_GRAPH` if `key` is empty
/// or already defined, `func` is empty, or a reference names an empty key;
/// the graph is then unchanged.
#[no_mangle]
pub unsafe extern "C" fn rask_graph_add_task(
    g: *mut rask_graph,
    key: *const c_char,
    func: *const c_char,
    args: *const *mut rask_arg,
    nargs: usize,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let args = take_args(args, nargs, "args");
        let g = req_mut(g, "g")?;
        let key = req_str(key, "key")?;
        let func = req_str(func, "func")?;
        let args = args?;
        precheck_task(&g.graph, key, func)?;
        args.iter().try_for_each(ArgSpec::check_refs)?;
        let graph = g.graph_mut();
        let args = args
            .into_iter()
            .map(|a| a.resolve(graph))
            .collect::<Result<Vec<_>, _>>()?;
        graph.add_task(key, func, args)?;
        Ok(rask_status::RASK_OK)
    })
}

/// Binds `key` to the task `func(refs[0], ..., refs[nrefs-1])` where every
/// argument is the value of the key it names: a fast path for the common
/// case, with nothing to allocate or free. `key`, `func` and each `refs[i]`
/// are NUL-terminated UTF-8, borrowed for the call only (`refs` may be NULL
/// when `nrefs` is 0). Fails as `rask_graph_add_task` does; the graph is then
/// unchanged.
#[no_mangle]
pub unsafe extern "C" fn rask_graph_add_task_refs(
    g: *mut rask_graph,
    key: *const c_char,
    func: *const c_char,
    refs: *const *const c_char,
    nrefs: usize,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let g = req_mut(g, "g")?;
        let key = req_str(key, "key")?;
        let func = req_str(func, "func")?;
        let refs = req_strs(refs, nrefs, "refs")?;
        precheck_task(&g.graph, key, func)?;
        if refs.iter().any(|r| r.is_empty()) {
            return Err(GraphError::EmptyKey.into());
        }
        let graph = g.graph_mut();
        let args = refs
            .iter()
            .map(|r| graph.r(r))
            .collect::<Result<Vec<_>, _>>()?;
        graph.add_task(key, func, args)?;
        Ok(rask_status::RASK_OK)
    })
}

/// Decodes a graph from the msgpack graph document of `len` bytes at `data`
/// (docs/graph-spec.md; the bytes are copied). The document's `outputs`, if
/// any, are kept with the graph: see `rask_graph_doc_output_count`. On
/// success `*out` is set to a graph the caller owns (free with
/// `rask_graph_free`). Fails with `RASK_ERR_DECODE` for malformed msgpack or
/// a malformed document, `RASK_ERR_GRAPH` for a duplicate or empty key.
#[no_mangle]
pub unsafe extern "C" fn rask_graph_from_msgpack(
    data: *const u8,
    len: usize,
    out: *mut *mut rask_graph,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let bytes = req_bytes(data, len, "data")?;
        let out = req_mut(out, "out")?;
        let (graph, outputs) = Graph::from_msgpack(bytes)?;
        *out = Box::into_raw(Box::new(rask_graph {
            graph: Arc::new(graph),
            doc_outputs: outputs.iter().map(|o| super::c_string(o)).collect(),
        }));
        Ok(rask_status::RASK_OK)
    })
}

/// The number of keys listed in the `outputs` field of the msgpack document
/// `g` was decoded from (0 for a graph built by hand, or when `g` is NULL).
#[no_mangle]
pub unsafe extern "C" fn rask_graph_doc_output_count(g: *const rask_graph) -> usize {
    g.as_ref().map_or(0, |g| g.doc_outputs.len())
}

/// Output key `i` of the document `g` was decoded from, NUL-terminated,
/// borrowed from `g` and valid until it is freed. Returns NULL when `g` is
/// NULL or `i` is out of range.
#[no_mangle]
pub unsafe extern "C" fn rask_graph_doc_output(g: *const rask_graph, i: usize) -> *const c_char {
    match g.as_ref().and_then(|g| g.doc_outputs.get(i)) {
        Some(s) => s.as_ptr(),
        None => ptr::null(),
    }
}

/// The number of keys defined in `g` (literals and tasks); 0 when `g` is
/// NULL.
#[no_mangle]
pub unsafe extern "C" fn rask_graph_len(g: *const rask_graph) -> usize {
    g.as_ref().map_or(0, |g| g.graph.len())
}

/// Checks the whole graph: every reference names a defined key and there is
/// no cycle. Fails with `RASK_ERR_GRAPH` and a message that names the keys
/// (for a cycle, the keys on it in order: `'a' -> 'b' -> 'a'`).
#[no_mangle]
pub unsafe extern "C" fn rask_graph_validate(
    g: *const rask_graph,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let g = req(g, "g")?;
        g.graph.validate()?;
        Ok(rask_status::RASK_OK)
    })
}

/// The graph as Graphviz DOT text (UTF-8, not NUL-terminated), for a
/// picture: `dot -Tsvg g.dot -o g.svg`. A task is an ellipse labelled with
/// its key and function, a literal value a box, a key referenced but not
/// defined a dashed red box; edges go from a dependency to the task using
/// it. The graph does not have to be valid. On success `*data` is set to a
/// new buffer of `*len` bytes that the caller owns and frees with
/// `rask_buffer_free(*data, *len)`; `g` is only read.
#[no_mangle]
pub unsafe extern "C" fn rask_graph_to_dot(
    g: *const rask_graph,
    data: *mut *mut u8,
    len: *mut usize,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let g = req(g, "g")?;
        let data = req_mut(data, "data")?;
        let len = req_mut(len, "len")?;
        let buf = g.graph.to_dot().into_bytes().into_boxed_slice();
        *len = buf.len();
        *data = Box::into_raw(buf).cast::<u8>();
        Ok(rask_status::RASK_OK)
    })
}

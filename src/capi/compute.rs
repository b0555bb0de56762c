//! Computing graphs: `rask_compute` (blocking), and `rask_computation`
//! (in the background, with pull mode through `rask_task`).

use super::registry::{rask_registry, registry_or_builtins};
use super::task::rask_task;
use super::value::into_c;
use super::{
    ffi_boundary, rask_error, rask_graph, rask_status, rask_value, req, req_strs, timeout, Error,
};
use crate::graph::{Graph, KeyId, Node};
use crate::local::{self, Computation, NextTask, Options, Stats};
use crate::registry::Registry;
use crate::value::{codec, HostRuntime, Value};
use std::ffi::c_char;
use std::ptr;
use std::sync::Arc;

/// How to run a computation. Zero-initialise it (`rask_compute_options o =
/// {0};`) for the defaults; passing NULL means the defaults too.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct rask_compute_options {
    /// Threads that run builtins and C callbacks; 0 means one per CPU.
    /// `rask_compute` counts the calling thread as one of them.
    pub threads: u32,
}

/// Figures about a computation.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct rask_compute_stats {
    /// Tasks the requested keys need (literals are not tasks).
    pub tasks: usize,
    /// Tasks that ran to completion.
    pub tasks_run: usize,
    /// Most task results held in memory at one time (outputs included).
    pub peak_live: usize,
}

impl From<Stats> for rask_compute_stats {
    fn from(s: Stats) -> Self {
        rask_compute_stats {
            tasks: s.tasks,
            tasks_run: s.tasks_run,
            peak_live: s.peak_live,
        }
    }
}

unsafe fn options(p: *const rask_compute_options) -> Options {
    let o = p.as_ref().copied().unwrap_or_default();
    Options::with_threads(o.threads as usize)
}

/// Sets every `results[i]` to NULL (when `results` is not NULL), so that a
/// failed call leaves nothing to free.
unsafe fn clear_results(results: *mut *mut rask_value, n: usize) {
    if !results.is_null() {
        for i in 0..n {
            *results.add(i) = ptr::null_mut();
        }
    }
}

unsafe fn write_results(results: *mut *mut rask_value, values: Vec<Value>) {
    for (i, v) in values.into_iter().enumerate() {
        *results.add(i) = into_c(v);
    }
}

/// The first task (key, function) among those `outputs` need whose function
/// is pulled: `rask_compute` cannot run it, since nobody could pull it.
fn needed_pulled_task(g: &Graph, outputs: &[KeyId], reg: &Registry) -> Option<(String, String)> {
    let pulled: Vec<bool> = g
        .func_names()
        .map(|n| reg.resolve(n).is_some_and(|f| f.is_pulled()))
        .collect();
    if !pulled.contains(&true) {
        return None;
    }
    let mut seen = vec![false; g.key_capacity()];
    let mut stack: Vec<KeyId> = outputs.to_vec();
    while let Some(k) = stack.pop() {
        if std::mem::replace(&mut seen[k.0 as usize], true) {
            continue;
        }
        if let Some(Node::Task(spec)) = g.node(k) {
            if pulled[spec.func.0 as usize] {
                return Some((g.key_name(k).to_owned(), g.func_name(spec.func).to_owned()));
            }
            for a in &spec.args {
                a.for_each_ref(&mut |d| stack.push(d));
            }
        }
    }
    None
}

/// Computes the `nkeys` keys named in `keys` of `graph`, blocking until they
/// are done, and stores their values in `results[0..nkeys]` in the same
/// order.
///
/// - `graph`: borrowed. `keys`: `nkeys` NUL-terminated UTF-8 strings,
///   borrowed (NULL allowed when `nkeys` is 0).
/// - `registry`: borrowed; NULL means the builtins only. A graph whose
///   needed tasks use a pulled function cannot be computed here (nobody
///   could pull them): that fails with `RASK_ERR_STATE`; use
///   `rask_computation_start`.
/// - `options`: borrowed; NULL means the defaults.
/// - `results`: a caller-provided array of `nkeys` pointers. Each is first
///   set to NULL; on success each is set to a new value the caller owns and
///   frees with `rask_value_free`. On failure they all stay NULL.
/// - `stats`: filled on success when not NULL.
///
/// Fails with `RASK_ERR_GRAPH` (unknown key, missing reference, cycle: the
/// message names the keys), `RASK_ERR_UNKNOWN_FUNCTION` (the message names
/// the function and a task using it) or `RASK_ERR_TASK_FAILED` (the message
/// names the task's key and function and gives the function's message).
#[no_mangle]
pub unsafe extern "C" fn rask_compute(
    graph: *const rask_graph,
    keys: *const *const c_char,
    nkeys: usize,
    registry: *const rask_registry,
    options: *const rask_compute_options,
    results: *mut *mut rask_value,
    stats: *mut rask_compute_stats,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        clear_results(results, nkeys);
        let g = req(graph, "graph")?;
        let names = req_strs(keys, nkeys, "keys")?;
        if results.is_null() && nkeys > 0 {
            return Err(Error::null("results"));
        }
        let builtins = Registry::new();
        let reg = registry_or_builtins(registry, &builtins);
        let opts = self::options(options);
        let graph = g.graph();
        let ids = graph.output_ids(&names)?;
        if let Some((key, func)) = needed_pulled_task(graph, &ids, reg) {
            return Err(Error::new(
                rask_status::RASK_ERR_STATE,
                format!(
                    "task '{key}' uses the pulled function '{func}', which rask_compute cannot \
                     run; use rask_computation_start and pull its tasks"
                ),
            ));
        }
        let computed = local::compute(graph, &ids, reg, &opts)?;
        write_results(results, computed.values);
        if let Some(s) = stats.as_mut() {
            *s = computed.stats.into();
        }
        Ok(rask_status::RASK_OK)
    })
}

// ---------------------------------------------------------------------------
// Background computations and pull mode.

/// A computation running in the background on rask's threads. Made by
/// `rask_computation_start`, freed with `rask_computation_free` (which
/// cancels it if it is still running). Any number of threads may call
/// `rask_computation_next_task`, `_wait`, `_results`, `_stats` and `_cancel`
/// on it at once; `rask_computation_free` must come after all of them.
pub struct rask_computation {
    comp: Computation,
    nkeys: usize,
    /// Tasks handed out by `rask_computation_take_tasks`, by id, until
    /// `rask_computation_complete_tasks` ends them. Dropped after `comp`
    /// (which has ended by then), so dropping them fails nothing.
    held: parking_lot::Mutex<super::batch::Held<local::PulledTask>>,
    /// The host whose live objects `take_tasks`/`complete_tasks` pass as
    /// references (`rask_computation_use_host`).
    host: std::sync::OnceLock<Arc<dyn HostRuntime>>,
}

/// Starts computing the keys named in `keys` of `graph` in the background
/// and returns at once. Arguments are as for `rask_compute`: `graph`,
/// `keys`, `registry` and `options` are borrowed for this call only (the
/// computation keeps its own snapshot of the graph and of the functions it
/// needs). `options->threads` threads are started (0: one per CPU). Tasks of
/// pulled functions wait for the host: see `rask_computation_next_task`.
///
/// On success `*out` is set to a computation the caller owns and frees with
/// `rask_computation_free`. Fails (before anything runs) as `rask_compute`
/// does for unknown keys, graph errors and unknown functions.
#[no_mangle]
pub unsafe extern "C" fn rask_computation_start(
    graph: *const rask_graph,
    keys: *const *const c_char,
    nkeys: usize,
    registry: *const rask_registry,
    options: *const rask_compute_options,
    out: *mut *mut rask_computation,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let g = req(graph, "graph")?;
        let names = req_strs(keys, nkeys, "keys")?;
        let out = super::req_mut(out, "out")?;
        let builtins = Registry::new();
        let reg = registry_or_builtins(registry, &builtins);
        let opts = self::options(options);
        let ids = g.graph().output_ids(&names)?;
        let comp = Computation::start(g.graph(), &ids, reg, &opts)?;
        *out = Box::into_raw(Box::new(rask_computation {
            comp,
            nkeys,
            held: Default::default(),
            host: Default::default(),
        }));
        Ok(rask_status::RASK_OK)
    })
}

/// Waits up to `timeout_ms` milliseconds (negative: forever; 0: just look)
/// for a ready task of a pulled function.
///
/// - `RASK_OK`: `*out` is set to a task the caller owns (see `rask_task`).
/// - `RASK_TIMEOUT`: no task became ready in time; `*out` is set to NULL.
/// - `RASK_DONE`: the computation has ended (finished, failed or cancelled)
///   and no more tasks will come; `*out` is set to NULL. Call
///   `rask_computation_wait` to learn how it ended.
///
/// Several threads may call this at once; each task goes to one of them.
#[no_mangle]
pub unsafe extern "C" fn rask_computation_next_task(
    comp: *const rask_computation,
    timeout_ms: i64,
    out: *mut *mut rask_task,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let c = req(comp, "comp")?;
        let out = super::req_mut(out, "out")?;
        *out = ptr::null_mut();
        Ok(match c.comp.next_task(timeout(timeout_ms)) {
            NextTask::Task(task) => {
                *out = rask_task::local(task);
                rask_status::RASK_OK
            }
            NextTask::Timeout => rask_status::RASK_TIMEOUT,
            NextTask::Done => rask_status::RASK_DONE,
        })
    })
}

/// Takes up to `max` ready tasks of pulled functions in one call, for
/// hosts that pay for every call into C: waits up to `timeout_ms`
/// milliseconds (negative: forever; 0: just look) for the first, then takes
/// the others ready now. On `RASK_OK`, `*data` is set to a new buffer of
/// `*len` bytes that the caller owns and frees with
/// `rask_buffer_free(*data, *len)`: one msgpack array with one entry per
/// task, `[id, key, func, [args...]]` (`id` an unsigned integer; arguments
/// as in docs/graph-spec.md, tensors as extension type 1, objects of the
/// host given to `rask_computation_use_host` as references, extension type
/// 3, other host values in their portable form). End every task
/// taken with `rask_computation_complete_tasks`; tasks never ended are
/// dropped with the computation (`rask_computation_free`).
///
/// Returns `RASK_TIMEOUT` or `RASK_DONE` as `rask_computation_next_task`
/// does (`*data` NULL, `*len` 0). `max` 0 is `RASK_ERR_INVALID_ARG`. A task
/// whose arguments cannot be encoded (a value over the size limit) is not
/// handed out: it fails, with a message naming the limit (the array may
/// then be shorter, even empty).
#[no_mangle]
pub unsafe extern "C" fn rask_computation_take_tasks(
    comp: *const rask_computation,
    max: usize,
    timeout_ms: i64,
    data: *mut *mut u8,
    len: *mut usize,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let data = super::req_mut(data, "data")?;
        *data = ptr::null_mut();
        let len = super::req_mut(len, "len")?;
        *len = 0;
        let c = req(comp, "comp")?;
        if max == 0 {
            return Err(Error::invalid("max must be at least 1"));
        }
        let tasks = match c.comp.next_tasks(max, timeout(timeout_ms)) {
            Ok(tasks) => tasks,
            Err(NextTask::Timeout) => return Ok(rask_status::RASK_TIMEOUT),
            Err(_) => return Ok(rask_status::RASK_DONE),
        };
        let (buf, unsendable) = c.held.lock().hand_out(tasks, c.host.get());
        for (t, why) in unsendable {
            t.complete(Err(format!(
                "an argument cannot be handed to the host: {why}"
            )));
        }
        let buf = buf.into_boxed_slice();
        *len = buf.len();
        *data = Box::into_raw(buf).cast::<u8>();
        Ok(rask_status::RASK_OK)
    })
}

/// Ends tasks taken with `rask_computation_take_tasks`, all in one call:
/// `results` (`len` bytes, borrowed) is one msgpack array of
/// `[id, true, value]` (the task's result) or `[id, false, message]` (the
/// task failed with that message, a string), any number of tasks in any
/// order. A value may hold references (extension type 3) to objects of the
/// host given to `rask_computation_use_host`: each becomes a host value that
/// rask releases once; when the call fails, every reference it read is
/// released before it returns. Everything is checked before anything is applied: not msgpack is
/// `RASK_ERR_DECODE`; an entry of another shape, an id that was not taken
/// (or was already ended) or given twice is `RASK_ERR_INVALID_ARG` naming
/// the entry, and then no task is ended. Returns `RASK_DONE` (the tasks are
/// ended, their results discarded) when the computation had already ended,
/// as `rask_task_complete` does.
#[no_mangle]
pub unsafe extern "C" fn rask_computation_complete_tasks(
    comp: *const rask_computation,
    results: *const u8,
    len: usize,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let c = req(comp, "comp")?;
        if results.is_null() {
            return Err(Error::null("results"));
        }
        let bytes = super::req_bytes(results, len, "results")?;
        let v = codec::decode_for(&bytes::Bytes::copy_from_slice(bytes), c.host.get()).map_err(
            |e| {
                Error::call(
                    rask_status::RASK_ERR_DECODE,
                    format!("argument 'results': {e}"),
                )
            },
        )?;
        let Value::Array(entries) = v else {
            return Err(Error::invalid(format!(
                "results must be a msgpack array of [id, ok, value] entries, not {}",
                v.kind_name()
            )));
        };
        let mut ends = Vec::with_capacity(entries.len());
        for (i, e) in entries.into_iter().enumerate() {
            let shape = || {
                Error::invalid(format!(
                    "results[{i}] must be [id, true, value] or [id, false, message]"
                ))
            };
            let Value::Array(mut parts) = e else {
                return Err(shape());
            };
            if parts.len() != 3 {
                return Err(shape());
            }
            let value = parts.pop().expect("3 parts");
            let ok = match parts[1] {
                Value::Bool(b) => b,
                _ => return Err(shape()),
            };
            let id = parts[0].as_u64().ok_or_else(shape)?;
            let result = match (ok, value) {
                (true, v) => Ok(v),
                (false, Value::Str(m)) => Err(m),
                (false, _) => return Err(shape()),
            };
            ends.push((i, id, result));
        }
        let mut held = c.held.lock();
        let mut seen = rustc_hash::FxHashSet::default();
        for (i, id, _) in &ends {
            if !held.tasks.contains_key(id) || !seen.insert(*id) {
                return Err(Error::invalid(format!(
                    "results[{i}]: task {id} was not taken by rask_computation_take_tasks, \
                     or was ended already"
                )));
            }
        }
        let tasks: Vec<_> = ends
            .into_iter()
            .map(|(_, id, r)| (held.tasks.remove(&id).expect("checked"), r))
            .collect();
        drop(held);
        let mut discarded = false;
        for (t, r) in tasks {
            discarded |= !t.complete(r);
        }
        // As rask_task_complete: the computation had ended, results dropped.
        Ok(match discarded {
            true => rask_status::RASK_DONE,
            false => rask_status::RASK_OK,
        })
    })
}

/// Makes `host` (borrowed; the computation keeps what it needs) the host
/// whose objects `rask_computation_take_tasks` and
/// `rask_computation_complete_tasks` pass as references (msgpack extension
/// type 3, docs/graph-spec.md "Host values") instead of converting them:
/// a result given as a reference becomes a host value (released once, when
/// the computation drops it), and a task's argument that is one of that
/// host's objects is handed back as the same reference. Call it once,
/// before taking tasks; a second call is `RASK_ERR_STATE`.
#[no_mangle]
pub unsafe extern "C" fn rask_computation_use_host(
    comp: *const rask_computation,
    host: *const super::host::rask_host,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let c = req(comp, "comp")?;
        let h = req(host, "host")?;
        c.host.set(h.runtime()).map_err(|_| {
            Error::call(
                rask_status::RASK_ERR_STATE,
                "the computation already uses a host",
            )
        })?;
        Ok(rask_status::RASK_OK)
    })
}

/// Waits up to `timeout_ms` milliseconds (negative: forever; 0: just look)
/// for the computation to end. Returns `RASK_OK` if it finished,
/// `RASK_TIMEOUT` if it is still running, or the status and message of its
/// failure (`RASK_ERR_TASK_FAILED`, `RASK_ERR_CANCELLED`, ...).
#[no_mangle]
pub unsafe extern "C" fn rask_computation_wait(
    comp: *const rask_computation,
    timeout_ms: i64,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let c = req(comp, "comp")?;
        Ok(match c.comp.wait(timeout(timeout_ms))? {
            true => rask_status::RASK_OK,
            false => rask_status::RASK_TIMEOUT,
        })
    })
}

/// Whether the computation has ended (finished, failed or cancelled).
/// Returns true when `comp` is NULL.
#[no_mangle]
pub unsafe extern "C" fn rask_computation_is_done(comp: *const rask_computation) -> bool {
    ffi_boundary!(default = true, {
        comp.as_ref().map_or(true, |c| c.comp.is_done())
    })
}

/// Waits for the computation to end (forever: pull its pulled tasks on
/// other threads, or wait with a timeout first), then stores the values of
/// the requested keys in `results`, a caller-provided array as long as the
/// `nkeys` given to `rask_computation_start`. Each `results[i]` is first set
/// to NULL; on success each is set to a new value the caller owns and frees
/// with `rask_value_free`. May be called more than once (each call returns
/// new copies). Fails with the computation's error if it failed.
#[no_mangle]
pub unsafe extern "C" fn rask_computation_results(
    comp: *const rask_computation,
    results: *mut *mut rask_value,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let c = req(comp, "comp")?;
        clear_results(results, c.nkeys);
        if results.is_null() && c.nkeys > 0 {
            return Err(Error::null("results"));
        }
        let values = c.comp.results()?;
        write_results(results, values);
        Ok(rask_status::RASK_OK)
    })
}

/// Fills `*stats` with the computation's figures so far.
#[no_mangle]
pub unsafe extern "C" fn rask_computation_stats(
    comp: *const rask_computation,
    stats: *mut rask_compute_stats,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let c = req(comp, "comp")?;
        let stats = super::req_mut(stats, "stats")?;
        *stats = c.comp.stats().into();
        Ok(rask_status::RASK_OK)
    })
}

/// Cancels the computation: no new task starts, tasks running on rask's
/// threads finish and are discarded, `rask_computation_next_task` returns
/// `RASK_DONE`, and `rask_computation_wait` reports `RASK_ERR_CANCELLED`.
/// Does nothing to a computation that has already ended.
#[no_mangle]
pub unsafe extern "C" fn rask_computation_cancel(
    comp: *const rask_computation,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        req(comp, "comp")?.comp.cancel();
        Ok(rask_status::RASK_OK)
    })
}

/// Frees a computation: cancels it if it is still running and waits for
/// rask's threads (and the callbacks they are running) to stop. NULL is
/// ignored. Tasks already handed to the host stay valid and must still be
/// ended; their results are discarded.
#[no_mangle]
pub unsafe extern "C" fn rask_computation_free(comp: *mut rask_computation) {
    ffi_boundary!(default = (), {
        if !comp.is_null() {
            drop(Box::from_raw(comp));
        }
    })
}

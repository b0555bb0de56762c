//! `rask_worker`: a worker in this process that joins a cluster, with C
//! callbacks run on its threads and pulled functions run by the host
//! (`rask_worker_next_task`).

use super::registry::rask_registry;
use super::task::rask_task;
use super::{
    c_string, ffi_boundary, rask_error, rask_status, req, req_mut, req_str, timeout, Error,
};
use crate::registry::Failure;
use crate::registry::Registry;
use crate::value::{codec, Value};
use crate::worker::{NextTask, Worker, WorkerConfig, WorkerError, WorkerHandle, WorkerTask};
use std::ffi::{c_char, c_int, CString};
use std::ptr;
use std::sync::OnceLock;
use std::time::Duration;

/// How to start a worker. Zero-initialise it (`rask_worker_options o =
/// {0};`) for the defaults; passing NULL means the defaults too. The strings
/// are borrowed for the call only.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct rask_worker_options {
    /// A name for logs and for the scheduler (NUL-terminated UTF-8); NULL
    /// means "worker-PORT".
    pub name: *const c_char,
    /// Threads that run builtins and C callbacks; 0 means one per CPU.
    /// Pulled functions run on the host's threads instead, whatever this is.
    pub threads: u32,
    /// The interface the data port listens on, which is also the host
    /// announced to peers and clients (NUL-terminated); NULL means
    /// "127.0.0.1".
    pub host: *const c_char,
    /// The data port; 0 means any free port (see `rask_worker_address`).
    pub data_port: u16,
    /// The worker's memory limit in bytes. 0 means the default: the
    /// machine's memory (or its cgroup's limit) times the worker's share of
    /// the CPUs (threads / CPUs), as Dask; `UINT64_MAX` means no limit
    /// (nothing spills, pauses or restarts). See the `memory_*_fraction`
    /// fields.
    pub memory_limit: u64,
    /// The cluster's shared secret (NUL-terminated UTF-8), or NULL for none.
    pub token: *const c_char,
    /// Time between heartbeats, in milliseconds; 0 or less means the
    /// default (1 s).
    pub heartbeat_ms: i64,
    /// How long connecting to the scheduler or a peer may take, in
    /// milliseconds; 0 or less means the default (10 s).
    pub connect_timeout_ms: i64,
    /// TLS (all three NUL-terminated paths of PEM files, or all NULL for
    /// none): the CA certificate(s), this side's certificate chain (signed
    /// by the CA) and its private key. With them the data
    /// port serves TLS only (announced as "tls://HOST:PORT") and "tls://"
    /// addresses (the scheduler's, peers') are reached with TLS. Only some of
    /// them, or files that do not load, fail with `RASK_ERR_INVALID_ARG`
    /// naming the file.
    pub tls_ca_file: *const c_char,
    /// See `tls_ca_file`.
    pub tls_cert_file: *const c_char,
    /// See `tls_ca_file`.
    pub tls_key_file: *const c_char,
    /// When the connection to the scheduler is lost (not closed by it),
    /// how long to keep trying to reconnect, in milliseconds; the worker
    /// then registers again as a new worker, dropping what it held for the
    /// old scheduler (tasks running finish, their results discarded). 0 or
    /// less: no reconnecting, the worker stops at once (`rask_worker_wait`
    /// gives `RASK_ERR_CONNECTION`), as it does when the time is up.
    pub reconnect_timeout_ms: i64,
    /// Fraction of `memory_limit` above which results in memory are
    /// spilled to disk, least recently used first. 0 means the default
    /// (0.6); a negative value turns it off.
    pub memory_target_fraction: f64,
    /// Fraction of `memory_limit` that the process's resident memory may
    /// reach before values are spilled until it is back at the target. 0:
    /// the default (0.7); negative: off.
    pub memory_spill_fraction: f64,
    /// Fraction of `memory_limit` (process memory) above which the worker
    /// pauses: it starts no task until memory is back under it. 0: the
    /// default (0.8); negative: off.
    pub memory_pause_fraction: f64,
    /// Fraction of `memory_limit` (process memory) above which the worker
    /// restarts: it drops what it holds and registers again as a new worker
    /// (the scheduler recomputes the data). 0: the default (0.95);
    /// negative: off.
    pub memory_terminate_fraction: f64,
    /// Where the worker makes its spill directory (NUL-terminated UTF-8
    /// path; inside `rask-worker-space/`, removed when the worker stops);
    /// NULL means the system temp dir.
    pub local_directory: *const c_char,
    /// Compression of spill files: 0 lz4 where a sample compresses (the
    /// default), 1 none. Anything else fails with `RASK_ERR_INVALID_ARG`.
    pub spill_compression: u32,
    /// How many host threads (or host tasks) run pulled functions' tasks
    /// at once, each taking them with `rask_worker_next_task`; 0 means none
    /// are counted. The worker tells the scheduler it runs `threads +
    /// pull_threads` tasks at once, and the scheduler sends it that many
    /// (plus a backlog): without it, a worker whose pulled tasks block (a
    /// sleep, I/O) runs only about 2 × `threads` + 2 of them at once,
    /// however many host threads wait for them.
    pub pull_threads: u32,
    /// The language or runtime the worker's functions run in, as the
    /// scheduler's dashboard and `rask_client_workers`-style listings show
    /// it (NUL-terminated UTF-8, at most 64 bytes); NULL means "c".
    /// Python and Julia workers say "python-3.11", "julia-1.5" (the names
    /// their shipped functions use).
    pub runtime: *const c_char,
}

/// A worker running in this process: it has joined a scheduler, runs the
/// tasks it is sent (builtins and C callbacks on its own threads; pulled
/// functions through `rask_worker_next_task`) and serves its data to peers
/// and clients. Made by `rask_worker_start`, freed with `rask_worker_free`.
/// Any number of threads may call `rask_worker_next_task`, `_wait`, `_stop`
/// and the getters at once; `rask_worker_free` must come after all of them.
pub struct rask_worker {
    handle: WorkerHandle,
    address: CString,
    name: CString,
    stop_reason: OnceLock<CString>,
    /// Tasks handed out by `rask_worker_take_tasks`, by id, until
    /// `rask_worker_complete_tasks` ends them (or `rask_worker_detach_task`
    /// hands one out as a `rask_task`). Dropped after `handle` has stopped
    /// the worker, so dropping them reports nothing.
    held: parking_lot::Mutex<super::batch::Held<WorkerTask>>,
    /// The host whose live objects `take_tasks`/`complete_tasks` pass as
    /// references (`rask_worker_use_host`).
    host: OnceLock<std::sync::Arc<dyn crate::value::HostRuntime>>,
}

pub(crate) fn worker_error(e: WorkerError) -> Error {
    let status = match e {
        WorkerError::Config(_) => rask_status::RASK_ERR_INVALID_ARG,
        WorkerError::Bind(_) | WorkerError::Connect(_) => rask_status::RASK_ERR_CONNECTION,
    };
    Error::new(status, e.to_string())
}

unsafe fn config(address: &str, o: Option<&rask_worker_options>) -> Result<WorkerConfig, Error> {
    let mut c = WorkerConfig::new(address);
    c.runtime = "c".into();
    let Some(o) = o else {
        c.memory_limit = crate::worker::auto_memory_limit(0);
        return Ok(c);
    };
    if !o.name.is_null() {
        c.name = req_str(o.name, "options->name")?.to_owned();
    }
    c.threads = o.threads as usize;
    c.pull_threads = o.pull_threads as usize;
    if !o.runtime.is_null() {
        let r = req_str(o.runtime, "options->runtime")?;
        if r.is_empty() || r.len() > 64 {
            return Err(Error::new(
                rask_status::RASK_ERR_INVALID_ARG,
                format!(
                    "options->runtime must be 1 to 64 bytes, got {} bytes",
                    r.len()
                ),
            ));
        }
        c.runtime = r.to_owned();
    }
    if !o.host.is_null() {
        c.host = req_str(o.host, "options->host")?.to_owned();
    }
    c.data_port = o.data_port;
    c.memory_limit = match o.memory_limit {
        0 => crate::worker::auto_memory_limit(c.threads),
        u64::MAX => 0,
        n => n,
    };
    let fraction = |f: f64, default: Option<f64>| {
        if f == 0.0 {
            default
        } else if f < 0.0 {
            None
        } else {
            Some(f)
        }
    };
    let d = crate::worker::MemoryPolicy::default();
    c.memory_policy = crate::worker::MemoryPolicy {
        target: fraction(o.memory_target_fraction, d.target),
        spill: fraction(o.memory_spill_fraction, d.spill),
        pause: fraction(o.memory_pause_fraction, d.pause),
        terminate: fraction(o.memory_terminate_fraction, d.terminate),
    };
    c.memory_policy
        .check()
        .map_err(|e| Error::new(rask_status::RASK_ERR_INVALID_ARG, format!("options: {e}")))?;
    if !o.local_directory.is_null() {
        c.local_directory = Some(req_str(o.local_directory, "options->local_directory")?.into());
    }
    c.spill_compression = match o.spill_compression {
        0 => true,
        1 => false,
        n => {
            return Err(Error::new(
                rask_status::RASK_ERR_INVALID_ARG,
                format!("options->spill_compression must be 0 (lz4) or 1 (none), got {n}"),
            ))
        }
    };
    if !o.token.is_null() {
        c.token = Some(req_str(o.token, "options->token")?.to_owned());
    }
    if o.heartbeat_ms > 0 {
        c.heartbeat_interval = Duration::from_millis(o.heartbeat_ms as u64);
    }
    if o.reconnect_timeout_ms > 0 {
        c.reconnect_timeout = Duration::from_millis(o.reconnect_timeout_ms as u64);
    }
    if o.connect_timeout_ms > 0 {
        c.connect_timeout = Duration::from_millis(o.connect_timeout_ms as u64);
    }
    c.tls = super::tls_options(o.tls_ca_file, o.tls_cert_file, o.tls_key_file)?;
    Ok(c)
}

/// Once a worker says it is stopped, waits (briefly: it is a matter of
/// instructions) until it has also recorded why.
fn settle(handle: &WorkerHandle) {
    if handle.is_stopped() {
        handle.wait_timeout(Duration::from_secs(5));
    }
}

/// Starts a worker that joins the scheduler at `scheduler_address`
/// (NUL-terminated UTF-8, e.g. "tcp://127.0.0.1:8786"; borrowed), and
/// returns once it has registered.
///
/// - `options`: borrowed; NULL means the defaults.
/// - `registry`: borrowed; NULL means the builtins only. The worker copies
///   it: it offers the scheduler every function of the registry (builtins
///   included), runs C callbacks on its threads, and queues the tasks of
///   pulled functions for `rask_worker_next_task`. The registry may be
///   freed at once.
///
/// On success `*out` is set to a worker the caller owns and frees with
/// `rask_worker_free`. Fails with `RASK_ERR_CONNECTION` when the data port
/// cannot be opened or the scheduler cannot be reached or refuses the
/// worker, `RASK_ERR_INVALID_ARG` for an unusable option.
#[no_mangle]
pub unsafe extern "C" fn rask_worker_start(
    scheduler_address: *const c_char,
    options: *const rask_worker_options,
    registry: *const rask_registry,
    out: *mut *mut rask_worker,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let out = req_mut(out, "out")?;
        *out = ptr::null_mut();
        let address = req_str(scheduler_address, "scheduler_address")?;
        let config = config(address, options.as_ref())?;
        let registry = registry
            .as_ref()
            .map_or_else(Registry::new, |r| r.registry().clone());
        let handle = Worker::start(config, registry).map_err(worker_error)?;
        *out = Box::into_raw(Box::new(rask_worker {
            address: c_string(handle.data_address()),
            name: c_string(handle.name()),
            handle,
            stop_reason: OnceLock::new(),
            held: Default::default(),
            host: OnceLock::new(),
        }));
        Ok(rask_status::RASK_OK)
    })
}

/// The worker's data address ("tcp://host:port", or "tls://host:port" with
/// TLS), where peers and clients fetch its data; borrowed from `worker`
/// (valid until it is freed).
/// Returns "" when `worker` is NULL.
#[no_mangle]
pub unsafe extern "C" fn rask_worker_address(worker: *const rask_worker) -> *const c_char {
    match worker.as_ref() {
        Some(w) => w.address.as_ptr(),
        None => "\0".as_ptr().cast(),
    }
}

/// The worker's name, borrowed from `worker` (valid until it is freed).
/// Returns "" when `worker` is NULL.
#[no_mangle]
pub unsafe extern "C" fn rask_worker_name(worker: *const rask_worker) -> *const c_char {
    match worker.as_ref() {
        Some(w) => w.name.as_ptr(),
        None => "\0".as_ptr().cast(),
    }
}

/// Waits up to `timeout_ms` milliseconds (negative: forever; 0: just look)
/// for a task of one of the worker's pulled functions, as
/// `rask_computation_next_task` does for a local computation:
///
/// - `RASK_OK`: `*out` is set to a task the caller owns; end it with
///   `rask_task_complete`, `rask_task_fail` or `rask_task_free`.
/// - `RASK_TIMEOUT`: no task came in time; `*out` is NULL.
/// - `RASK_DONE`: the worker has stopped (the scheduler closed it, the
///   connection was lost, or `rask_worker_stop`); no more tasks will come.
///   `*out` is NULL.
///
/// Several threads may call this at once; each task goes to one of them.
/// Tasks the host does not take wait in the worker's queue, by priority.
#[no_mangle]
pub unsafe extern "C" fn rask_worker_next_task(
    worker: *const rask_worker,
    timeout_ms: i64,
    out: *mut *mut rask_task,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let out = req_mut(out, "out")?;
        *out = ptr::null_mut();
        let w = req(worker, "worker")?;
        Ok(match w.handle.next_task(timeout(timeout_ms)) {
            NextTask::Task(t) => {
                *out = rask_task::worker(t);
                rask_status::RASK_OK
            }
            NextTask::Timeout => rask_status::RASK_TIMEOUT,
            NextTask::Stopped => {
                // The worker flags itself stopped before it records why;
                // let the reason land so that it is there after RASK_DONE.
                settle(&w.handle);
                rask_status::RASK_DONE
            }
        })
    })
}

/// Takes up to `max` tasks of pulled functions in one call, for hosts that
/// pay for every call into C: waits up to `timeout_ms` milliseconds
/// (negative: forever; 0: just look) for the first, as
/// `rask_worker_next_task` does, then takes the others ready now, most
/// urgent first. On `RASK_OK`, `*data` is set to a new buffer of `*len`
/// bytes that the caller owns and frees with `rask_buffer_free(*data,
/// *len)`: one msgpack array with one entry per task,
/// `[id, key, func, [args...]]` (`id` an unsigned integer naming the task
/// in this worker; arguments as in docs/graph-spec.md, tensors as extension
/// type 1), as `rask_computation_take_tasks` gives. Every task taken counts
/// as running (the scheduler sends the worker no more than it runs at once,
/// see `pull_threads`): end each with `rask_worker_complete_tasks`, or hand
/// one over to a `rask_task` with `rask_worker_detach_task`. Tasks never
/// ended are dropped with the worker (`rask_worker_free`, which stops it
/// first: the scheduler then recomputes them elsewhere).
///
/// Returns `RASK_TIMEOUT` (no task came in time) or `RASK_DONE` (the worker
/// has stopped) with `*data` NULL and `*len` 0. `max` 0 is
/// `RASK_ERR_INVALID_ARG`. A task whose arguments cannot be encoded (a
/// value over the size limit) is not handed out: it fails, with a message
/// naming the limit (the array may then be shorter, even empty). A host
/// with several threads should take one task at a time while other threads
/// are idle, so that tasks which wait on each other do not queue behind one
/// thread.
#[no_mangle]
pub unsafe extern "C" fn rask_worker_take_tasks(
    worker: *const rask_worker,
    max: usize,
    timeout_ms: i64,
    data: *mut *mut u8,
    len: *mut usize,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let data = req_mut(data, "data")?;
        *data = ptr::null_mut();
        let len = req_mut(len, "len")?;
        *len = 0;
        let w = req(worker, "worker")?;
        if max == 0 {
            return Err(Error::invalid("max must be at least 1"));
        }
        let tasks = match w.handle.next_tasks(max, timeout(timeout_ms)) {
            Ok(tasks) => tasks,
            Err(NextTask::Timeout) => return Ok(rask_status::RASK_TIMEOUT),
            Err(_) => {
                settle(&w.handle);
                return Ok(rask_status::RASK_DONE);
            }
        };
        let (buf, unsendable) = w.held.lock().hand_out(tasks, w.host.get());
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

/// One entry of `rask_worker_complete_tasks`' array, checked.
fn task_end(i: usize, entry: Value) -> Result<(u64, Result<Value, Failure>), Error> {
    let shape = || {
        Error::invalid(format!(
            "results[{i}] must be [id, true, value], [id, false, message] or \
             [id, false, message, exception, traceback] (exception and traceback strings or nil)"
        ))
    };
    let Value::Array(parts) = entry else {
        return Err(shape());
    };
    let mut parts = parts.into_iter();
    let (Some(id), Some(Value::Bool(ok)), Some(third)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(shape());
    };
    let id = id.as_u64().ok_or_else(shape)?;
    let rest: Vec<Value> = parts.collect();
    let text = |v: Option<Value>| match v {
        None | Some(Value::Nil) => Ok(String::new()),
        Some(Value::Str(s)) => Ok(s),
        Some(_) => Err(shape()),
    };
    match (ok, third) {
        (true, v) if rest.is_empty() => Ok((id, Ok(v))),
        (false, Value::Str(message)) if rest.is_empty() || rest.len() == 2 => {
            let mut rest = rest.into_iter();
            let exception = text(rest.next())?;
            let traceback = text(rest.next())?;
            Ok((
                id,
                Err(Failure {
                    message,
                    exception,
                    traceback,
                }),
            ))
        }
        _ => Err(shape()),
    }
}

/// Ends tasks taken with `rask_worker_take_tasks`, all in one call (one
/// lock of the worker, one message to the scheduler): `results` (`len`
/// bytes, borrowed) is one msgpack array, any number of tasks in any order,
/// of
///
/// - `[id, true, value]`: the task's result;
/// - `[id, false, message]`: the task failed with `message` (a string), as
///   `rask_task_fail`;
/// - `[id, false, message, exception, traceback]`: also with the
///   exception's type name and traceback text (strings, or nil when not
///   known), as `rask_task_fail_exception`.
///
/// Everything is checked before anything is applied: not msgpack is
/// `RASK_ERR_DECODE`; an entry of another shape, an id that was not taken
/// from this worker (or was already ended or detached) or given twice is
/// `RASK_ERR_INVALID_ARG` naming the entry, and then no task is ended (they
/// stay taken: end them in another call). Returns `RASK_OK`, or `RASK_DONE`
/// when some result was discarded because nobody wants it any more (the
/// worker has stopped, or the scheduler freed the key), as
/// `rask_task_complete` does; the tasks are ended either way.
#[no_mangle]
pub unsafe extern "C" fn rask_worker_complete_tasks(
    worker: *const rask_worker,
    results: *const u8,
    len: usize,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let w = req(worker, "worker")?;
        if results.is_null() {
            return Err(Error::null("results"));
        }
        let bytes = super::req_bytes(results, len, "results")?;
        let (discarded, _) = end_tasks(w, bytes, None)?;
        Ok(match discarded {
            0 => rask_status::RASK_OK,
            _ => rask_status::RASK_DONE,
        })
    })
}

/// `rask_worker_complete_tasks`'s work on `bytes`, and with `detach` the
/// task of that id taken out of the batch too (it must be held and not be
/// among the results): everything is checked before anything is applied.
/// Returns how many results were discarded (nobody wanted them) and the
/// detached task.
fn end_tasks(
    w: &rask_worker,
    bytes: &[u8],
    detach: Option<u64>,
) -> Result<(usize, Option<WorkerTask>), Error> {
    let ends = if bytes.is_empty() {
        Vec::new()
    } else {
        let v = codec::decode_for(&bytes::Bytes::copy_from_slice(bytes), w.host.get()).map_err(
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
        entries
            .into_iter()
            .enumerate()
            .map(|(i, e)| task_end(i, e).map(|(id, r)| (i, id, r)))
            .collect::<Result<Vec<_>, Error>>()?
    };
    let mut held = w.held.lock();
    let mut seen = rustc_hash::FxHashSet::default();
    if let Some(id) = detach {
        if !held.tasks.contains_key(&id) {
            return Err(Error::invalid(format!(
                "task {id} was not taken by rask_worker_take_tasks from this worker, or was \
                 ended or detached already"
            )));
        }
        seen.insert(id);
    }
    for (i, id, _) in &ends {
        if !held.tasks.contains_key(id) || !seen.insert(*id) {
            return Err(Error::invalid(format!(
                "results[{i}]: task {id} was not taken by rask_worker_take_tasks from this \
                 worker, or was ended or detached already"
            )));
        }
    }
    let detached = detach.map(|id| held.tasks.remove(&id).expect("checked"));
    let tasks: Vec<_> = ends
        .into_iter()
        .map(|(_, id, r)| (held.tasks.remove(&id).expect("checked"), r))
        .collect();
    drop(held);
    let discarded = if tasks.is_empty() {
        0
    } else {
        w.handle.complete_tasks(tasks)
    };
    Ok((discarded, detached))
}

/// Makes `host` (borrowed; the worker keeps what it needs) the host whose
/// objects `rask_worker_take_tasks` and `rask_worker_complete_tasks` pass
/// as references (msgpack extension type 3, docs/graph-spec.md "Host
/// values") instead of converting them, as `rask_computation_use_host` does
/// for a local computation: a result given as a reference becomes a host
/// value held by the worker (converted through the host's serializer only
/// when it leaves the process: a peer, a gather, a spill, a builtin), and a
/// task's argument that is one of that host's objects is handed back as the
/// same reference. Call it once, before taking tasks; a second call is
/// `RASK_ERR_STATE`.
#[no_mangle]
pub unsafe extern "C" fn rask_worker_use_host(
    worker: *const rask_worker,
    host: *const super::host::rask_host,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let w = req(worker, "worker")?;
        let h = req(host, "host")?;
        w.host.set(h.runtime()).map_err(|_| {
            Error::call(
                rask_status::RASK_ERR_STATE,
                "the worker already uses a host",
            )
        })?;
        Ok(rask_status::RASK_OK)
    })
}

/// Hands the task `id`, taken with `rask_worker_take_tasks` and not ended
/// yet, over to a `rask_task`, for what only a task handle does
/// (`rask_task_client`, `rask_task_secede`): `*out` is set to a task the
/// caller owns and ends with `rask_task_complete`, `rask_task_fail`,
/// `rask_task_fail_exception` or `rask_task_free` (the task keeps running
/// meanwhile; `rask_worker_complete_tasks` no longer knows its id). An id
/// not held is `RASK_ERR_INVALID_ARG` (`*out` NULL).
#[no_mangle]
pub unsafe extern "C" fn rask_worker_detach_task(
    worker: *const rask_worker,
    id: u64,
    out: *mut *mut rask_task,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let out = req_mut(out, "out")?;
        *out = ptr::null_mut();
        let w = req(worker, "worker")?;
        let t = w.held.lock().tasks.remove(&id).ok_or_else(|| {
            Error::invalid(format!(
                "task {id} was not taken by rask_worker_take_tasks from this worker, or was \
                 ended or detached already"
            ))
        })?;
        *out = rask_task::worker(t);
        Ok(rask_status::RASK_OK)
    })
}

/// What a task of a batch does when it secedes, in one call instead of
/// three: ends the tasks in `results` as `rask_worker_complete_tasks` does
/// (`len` bytes, borrowed, the same msgpack array; `len` 0 for none, when
/// `results` may be NULL: a task about to wait may wait on those results,
/// so they go first), hands the task `id` over to a `rask_task` as
/// `rask_worker_detach_task` does (`*out`, owned by the caller, ended with
/// `rask_task_complete`, `rask_task_fail`, `rask_task_fail_exception` or
/// `rask_task_free`), and secedes it as `rask_task_secede` does (the
/// scheduler is told `long-running`; rejoin is the host's part).
///
/// Everything is checked before anything is applied: not msgpack is
/// `RASK_ERR_DECODE`; an entry of another shape, or an id (`id` or one in
/// `results`) not held by this worker's batches or given twice, is
/// `RASK_ERR_INVALID_ARG`; then nothing was ended or detached and `*out`
/// is NULL. Returns `RASK_OK`, or `RASK_DONE` when the worker has stopped
/// or the scheduler freed a key meanwhile (a result discarded, or nothing
/// sent for the seceding task: nobody wants it); `*out` is set either way.
#[no_mangle]
pub unsafe extern "C" fn rask_worker_secede_task(
    worker: *const rask_worker,
    id: u64,
    results: *const u8,
    len: usize,
    out: *mut *mut rask_task,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let out = req_mut(out, "out")?;
        *out = ptr::null_mut();
        let w = req(worker, "worker")?;
        let bytes: &[u8] = if len == 0 {
            &[]
        } else {
            if results.is_null() {
                return Err(Error::null("results"));
            }
            super::req_bytes(results, len, "results")?
        };
        let (discarded, task) = end_tasks(w, bytes, Some(id))?;
        let task = task.expect("detached");
        let sent = task.secede();
        *out = rask_task::worker(task);
        Ok(match (discarded, sent) {
            (0, true) => rask_status::RASK_OK,
            _ => rask_status::RASK_DONE,
        })
    })
}

/// Sets `*out` to a file descriptor for an event loop to wait on (`poll`,
/// `epoll`, Julia's `FileWatching.poll_fd`, asyncio's `loop.add_reader`)
/// instead of blocking in `rask_worker_next_task`: it is readable while a
/// task of a pulled function may be waiting, and once the worker has
/// stopped. When it is readable, call `rask_worker_next_task` with timeout
/// 0 until it returns `RASK_TIMEOUT` (which makes the descriptor unreadable
/// again, unless a task arrived meanwhile) or `RASK_DONE`. The first call
/// makes it; the next calls give the same one.
///
/// The descriptor is owned by `worker`: do not read, write or close it; it
/// is valid until `rask_worker_free` (stop waiting on it before). Fails
/// with `RASK_ERR_STATE` if the system has no descriptor left.
#[no_mangle]
pub unsafe extern "C" fn rask_worker_fd(
    worker: *const rask_worker,
    out: *mut c_int,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let out = req_mut(out, "out")?;
        *out = -1;
        let w = req(worker, "worker")?;
        *out = w.handle.wait_fd().map_err(|e| {
            Error::new(
                rask_status::RASK_ERR_STATE,
                format!("a pipe for the worker: {e}"),
            )
        })?;
        Ok(rask_status::RASK_OK)
    })
}

/// Waits up to `timeout_ms` milliseconds (negative: forever; 0: just look)
/// for the worker to stop, and says how it stopped:
///
/// - `RASK_OK`: it stopped cleanly: the scheduler closed it (it shut down)
///   or `rask_worker_stop` was called.
/// - `RASK_ERR_CONNECTION`: the connection to the scheduler was lost (the
///   scheduler died, the network failed); the message says why.
/// - `RASK_TIMEOUT`: it is still running.
///
/// `rask_worker_stop_reason` gives the reason in every case. A worker
/// without pulled functions needs nothing else from its host: this is its
/// main loop. A host that pulls tasks calls it after `rask_worker_next_task`
/// returned `RASK_DONE`, as `rask_computation_wait` after a computation's.
#[no_mangle]
pub unsafe extern "C" fn rask_worker_wait(
    worker: *const rask_worker,
    timeout_ms: i64,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let w = req(worker, "worker")?;
        let stopped = match timeout(timeout_ms) {
            None => Some(w.handle.wait()),
            Some(t) => w.handle.wait_timeout(t),
        };
        match stopped {
            None => Ok(rask_status::RASK_TIMEOUT),
            Some(_) if w.handle.stopped_cleanly() => Ok(rask_status::RASK_OK),
            Some(reason) => Err(Error::new(
                rask_status::RASK_ERR_CONNECTION,
                format!("the worker stopped: {reason}"),
            )),
        }
    })
}

/// Why the worker stopped (NUL-terminated, borrowed from `worker` and valid
/// until it is freed), or NULL while it is running or when `worker` is
/// NULL.
#[no_mangle]
pub unsafe extern "C" fn rask_worker_stop_reason(worker: *const rask_worker) -> *const c_char {
    ffi_boundary!(default = ptr::null(), {
        let Some(w) = worker.as_ref() else {
            return ptr::null();
        };
        if let Some(r) = w.stop_reason.get() {
            return r.as_ptr();
        }
        settle(&w.handle);
        match w.handle.stop_reason() {
            Some(r) => w.stop_reason.get_or_init(|| c_string(&r)).as_ptr(),
            None => ptr::null(),
        }
    })
}

/// Stops the worker: tells the scheduler it leaves (its data is lost to the
/// cluster; the scheduler recomputes what is still wanted elsewhere), stops
/// taking tasks, and waits for its threads to finish the callbacks they are
/// running. Host threads in `rask_worker_next_task` get `RASK_DONE`. Tasks
/// already handed to the host stay valid; completing them returns
/// `RASK_DONE`. Does nothing to a stopped worker.
#[no_mangle]
pub unsafe extern "C" fn rask_worker_stop(
    worker: *const rask_worker,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        req(worker, "worker")?.handle.stop();
        Ok(rask_status::RASK_OK)
    })
}

/// Retires the worker gracefully, as `rask-worker` does on SIGTERM: asks
/// the scheduler to move the results only this worker holds to other
/// workers, hands back the tasks it has not started, lets the running ones
/// finish (pulled tasks the host holds included: complete them as usual),
/// and keeps serving data until the scheduler has moved everything and
/// closes it. Returns at once; `rask_worker_next_task` then returns
/// `RASK_DONE` once the worker has stopped, and `rask_worker_wait` says
/// why. Call `rask_worker_stop` to leave at once instead (a second SIGTERM,
/// say). Does nothing to a stopped or retiring worker. `worker` is
/// borrowed.
#[no_mangle]
pub unsafe extern "C" fn rask_worker_retire(
    worker: *const rask_worker,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        req(worker, "worker")?
            .handle
            .retire("the host retired the worker");
        Ok(rask_status::RASK_OK)
    })
}

/// Stops the worker (as `rask_worker_stop`) and frees it. NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn rask_worker_free(worker: *mut rask_worker) {
    ffi_boundary!(default = (), {
        if !worker.is_null() {
            drop(Box::from_raw(worker));
        }
    })
}

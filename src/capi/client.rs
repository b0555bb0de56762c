//! `rask_client`: a connection to a scheduler, and the calls that make
//! futures (`submit`, `map`, `compute`, `scatter`) or use them (`gather`,
//! `cancel`, `wait`).

use super::future::{futures_of, rask_future};
use super::graph::{rask_arg, take_args, ArgSpec};
use super::value::{into_c, take as take_value};
use super::{
    c_string, ffi_boundary, rask_error, rask_graph, rask_status, rask_value, req, req_mut,
    req_slice, req_str, req_strs, timeout, Error,
};
use crate::client::{
    Client, ClientArg, ClientConfig, ClientError, Future, SchedulerInfo, SubmitOptions, WaitMode,
};
use crate::value::Value;
use std::ffi::{c_char, c_int, CString};
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How a client connects. Zero-initialise it (`rask_client_options o =
/// {0};`) for the defaults; passing NULL means the defaults too. The strings
/// are borrowed for the call only.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct rask_client_options {
    /// A name for the scheduler's logs (NUL-terminated UTF-8); NULL means
    /// "rask-c-client".
    pub name: *const c_char,
    /// The cluster's shared secret (NUL-terminated UTF-8), or NULL for none.
    pub token: *const c_char,
    /// How long connecting, and each request to the scheduler, may take, in
    /// milliseconds; 0 or less means the default (10 s).
    pub timeout_ms: i64,
    /// TLS (all three NUL-terminated paths of PEM files, or all NULL for
    /// none): the CA certificate(s), this side's certificate chain (signed
    /// by the CA) and its private key. With them "tls://"
    /// addresses (the scheduler's, the workers' for scatter and gather) are
    /// reached with TLS. Only some of
    /// them, or files that do not load, fail with `RASK_ERR_INVALID_ARG`
    /// naming the file.
    pub tls_ca_file: *const c_char,
    /// See `tls_ca_file`.
    pub tls_cert_file: *const c_char,
    /// See `tls_ca_file`.
    pub tls_key_file: *const c_char,
}

/// How `rask_client_wait` decides it is done. Passed as `int`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum rask_wait_mode {
    /// Every future is done (finished, erred or cancelled).
    RASK_WAIT_ALL_COMPLETED = 0,
    /// At least one future is done.
    RASK_WAIT_FIRST_COMPLETED = 1,
}

/// Whether a client handle is still open: shared by the client and every
/// future and `as_completed` made through it, so that using them after
/// `rask_client_close` or `rask_client_free` is a clear `RASK_ERR_STATE`.
#[derive(Debug, Default)]
pub(crate) struct Liveness {
    freed: AtomicBool,
}

impl Liveness {
    pub(crate) fn check(&self, what: &str) -> Result<(), Error> {
        if self.freed.load(Ordering::Acquire) {
            return Err(Error::call(
                rask_status::RASK_ERR_STATE,
                format!("the client of {what} was closed (rask_client_close or rask_client_free)"),
            ));
        }
        Ok(())
    }

    /// The error of a client call that failed: `RASK_ERR_STATE` if the
    /// client was closed meanwhile (by another thread, during the call),
    /// as when it was closed before; otherwise the client error's own.
    pub(crate) fn error_of(&self, what: &str, e: ClientError) -> Error {
        match self.check(what) {
            Err(closed) => closed,
            Ok(()) => client_error(e),
        }
    }
}

/// A connection to a scheduler. Made by `rask_client_connect` or
/// `rask_cluster_client`, freed with `rask_client_free`. Any number of
/// threads may use one client at once; `rask_client_free` must come after
/// all of them. Futures made through the client are separate handles that
/// the caller frees on their own (before or after the client).
pub struct rask_client {
    pub(crate) client: Client,
    pub(crate) life: Arc<Liveness>,
    address: CString,
    dashboard_link: CString,
    /// A handle on a worker's client of its tasks (`rask_task_client`):
    /// closing or freeing it leaves the shared connection open.
    shared: bool,
}

impl rask_client {
    pub(crate) fn boxed(client: Client) -> *mut rask_client {
        let address = c_string(client.scheduler_address());
        let dashboard_link = c_string(client.dashboard_link().unwrap_or(""));
        Box::into_raw(Box::new(rask_client {
            client,
            life: Arc::new(Liveness::default()),
            address,
            dashboard_link,
            shared: false,
        }))
    }

    /// A handle on a worker's client of its tasks: closing or freeing it
    /// ends only this handle (and its futures), not the connection.
    pub(crate) fn shared(client: Client) -> *mut rask_client {
        let address = c_string(client.scheduler_address());
        let dashboard_link = c_string(client.dashboard_link().unwrap_or(""));
        Box::into_raw(Box::new(rask_client {
            client,
            life: Arc::new(Liveness::default()),
            address,
            dashboard_link,
            shared: true,
        }))
    }

    fn future(&self, future: Future) -> *mut rask_future {
        rask_future::boxed(future, &self.life)
    }
}

/// The C status and message of a client error.
pub(crate) fn client_error(e: ClientError) -> Error {
    use rask_status::*;
    let status = match &e {
        ClientError::ConnectionFailed(_) | ClientError::ConnectionClosed(_) => RASK_ERR_CONNECTION,
        // A deadline that is not the caller's own (those give RASK_TIMEOUT):
        // a request to the scheduler that got no answer.
        ClientError::Timeout(_) => RASK_ERR_CONNECTION,
        ClientError::Task(_) => RASK_ERR_TASK_FAILED,
        ClientError::Cancelled(_) => RASK_ERR_CANCELLED,
        ClientError::Protocol(_) => RASK_ERR_PROTOCOL,
        ClientError::BadArgument(_) => {
            return Error::call(RASK_ERR_INVALID_ARG, e.to_string());
        }
        ClientError::Data(_) => RASK_ERR_DATA,
    };
    let mut out = Error::new(status, e.to_string());
    if let ClientError::Task(t) = e {
        out.exception = t.exception;
        out.traceback = t.traceback;
    }
    out
}

/// A `ClientArg` for an argument made in C. On a cluster, keys are named by
/// futures: a reference by name (`rask_arg_ref`) is refused.
fn client_arg(spec: ArgSpec, param: &str) -> Result<ClientArg, Error> {
    Ok(match spec {
        ArgSpec::Value(v) => ClientArg::Value(v),
        ArgSpec::Future(f) => ClientArg::Future(f),
        ArgSpec::Ref(k) => {
            return Err(Error::invalid(format!(
                "{param} refers to the key '{k}' by name (rask_arg_ref); on a cluster, pass \
                 the value of a future with rask_arg_future"
            )))
        }
        ArgSpec::List(items) => ClientArg::List(
            items
                .into_iter()
                .enumerate()
                .map(|(i, a)| client_arg(a, &format!("{param}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
    })
}

pub(crate) fn client_args(
    specs: Vec<ArgSpec>,
    param: &str,
    first: usize,
) -> Result<Vec<ClientArg>, Error> {
    specs
        .into_iter()
        .enumerate()
        .map(|(i, a)| client_arg(a, &format!("{param}[{}]", first + i)))
        .collect()
}

/// Sets `out[0..n]` to NULL (when `out` is not NULL), so that a failed call
/// leaves nothing to free.
pub(crate) unsafe fn clear<T>(out: *mut *mut T, n: usize) {
    if !out.is_null() {
        for i in 0..n {
            *out.add(i) = ptr::null_mut();
        }
    }
}

/// An output array of `n` pointers: NULL is allowed only when `n` is 0.
fn out_array<T>(out: *mut *mut T, n: usize, param: &str) -> Result<(), Error> {
    if out.is_null() && n > 0 {
        return Err(Error::null(param));
    }
    Ok(())
}

unsafe fn write_futures(out: *mut *mut rask_future, c: &rask_client, fs: Vec<Future>) {
    for (i, f) in fs.into_iter().enumerate() {
        *out.add(i) = c.future(f);
    }
}

fn config(o: Option<&rask_client_options>) -> Result<ClientConfig, Error> {
    let mut config = ClientConfig {
        name: "rask-c-client".into(),
        ..ClientConfig::default()
    };
    if let Some(o) = o {
        if !o.name.is_null() {
            config.name = unsafe { req_str(o.name, "options->name") }?.to_owned();
        }
        if !o.token.is_null() {
            config.token = Some(unsafe { req_str(o.token, "options->token") }?.to_owned());
        }
        if o.timeout_ms > 0 {
            config.timeout = Duration::from_millis(o.timeout_ms as u64);
        }
        config.tls = unsafe { super::tls_options(o.tls_ca_file, o.tls_cert_file, o.tls_key_file) }?;
    }
    Ok(config)
}

/// Connects to the scheduler at `address` (NUL-terminated UTF-8, e.g.
/// "tcp://127.0.0.1:8786", or "tls://..." with the TLS options; borrowed).
/// `options` is borrowed; NULL means the defaults. Blocks until the scheduler has answered the handshake (at most
/// the options' timeout).
///
/// On success `*out` is set to a client the caller owns and frees with
/// `rask_client_free`. Fails with `RASK_ERR_CONNECTION` when the scheduler
/// cannot be reached or refuses the handshake (wrong token, no TLS where
/// it needs TLS, a certificate of another CA, another protocol version),
/// and with `RASK_ERR_INVALID_ARG` for incomplete or unloadable TLS files.
#[no_mangle]
pub unsafe extern "C" fn rask_client_connect(
    address: *const c_char,
    options: *const rask_client_options,
    out: *mut *mut rask_client,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let out = req_mut(out, "out")?;
        *out = ptr::null_mut();
        let address = req_str(address, "address")?;
        let config = config(options.as_ref())?;
        let client = Client::connect(address, config).map_err(client_error)?;
        *out = rask_client::boxed(client);
        Ok(rask_status::RASK_OK)
    })
}

impl rask_client {
    fn close(&self) {
        self.life.freed.store(true, Ordering::Release);
        if !self.shared {
            self.client.close();
        }
    }
}

/// Closes a client but keeps the handle: the scheduler is told that the
/// client no longer wants any of its keys, and the connections close, as
/// `rask_client_free` does. The handle stays valid until
/// `rask_client_free`: `rask_client_scheduler_address` still answers, and
/// every other call taking the client fails with `RASK_ERR_STATE` ("the
/// client of this call was closed"). Futures and `as_completed` iterators
/// made through it behave as after `rask_client_free`. Closing a closed
/// client does nothing. Threads waiting on the client's futures are woken
/// (their calls fail).
#[no_mangle]
pub unsafe extern "C" fn rask_client_close(
    client: *const rask_client,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        req(client, "client")?.close();
        Ok(rask_status::RASK_OK)
    })
}

/// Closes (as `rask_client_close`, if it was not closed already) and frees
/// a client. NULL is ignored.
///
/// Futures and `as_completed` iterators made through the client stay valid
/// handles (free them as usual), but every call that needs the client then
/// fails with `RASK_ERR_STATE`; `rask_future_status` reports
/// `RASK_FUTURE_ERROR` for a future that was still pending.
#[no_mangle]
pub unsafe extern "C" fn rask_client_free(client: *mut rask_client) {
    ffi_boundary!(default = (), {
        if !client.is_null() {
            Box::from_raw(client).close();
        }
    })
}

/// The address of the scheduler this client is connected to, borrowed from
/// `client` (valid until it is freed). Returns "" when `client` is NULL.
#[no_mangle]
pub unsafe extern "C" fn rask_client_scheduler_address(
    client: *const rask_client,
) -> *const c_char {
    match client.as_ref() {
        Some(c) => c.address.as_ptr(),
        None => "\0".as_ptr().cast(),
    }
}

/// The scheduler's dashboard, "http://HOST:PORT/status" (its `/metrics`
/// and `/report` are beside it), as the scheduler said in its `welcome`
/// when the client connected; NUL-terminated, borrowed from `client`
/// (valid until it is freed). Returns "" when the scheduler serves no
/// dashboard (or is a rask older than the field) or `client` is NULL.
#[no_mangle]
pub unsafe extern "C" fn rask_client_dashboard_link(client: *const rask_client) -> *const c_char {
    match client.as_ref() {
        Some(c) => c.dashboard_link.as_ptr(),
        None => "\0".as_ptr().cast(),
    }
}

/// Runs `func(args[0], ..., args[nargs-1])` on the cluster and sets `*out`
/// to a future on its result, which the caller owns and frees with
/// `rask_future_free`.
///
/// - `func`: NUL-terminated UTF-8, borrowed. Only workers that offer it run
///   the task (builtins are on every worker).
/// - `args`: every element is consumed, even when the call fails; the array
///   itself stays the caller's (NULL allowed when `nargs` is 0). Arguments
///   are literals (`rask_arg_int`, `rask_arg_value`, ...), the values of
///   futures (`rask_arg_future`) or lists of those; a reference by key name
///   (`rask_arg_ref`) is refused with `RASK_ERR_INVALID_ARG`.
///
/// The key is a hash of the function and its arguments (as Dask's
/// `pure=True`): the same call, from any client, is one task. Returns once
/// the scheduler has been sent the task; it does not wait for the result.
#[no_mangle]
pub unsafe extern "C" fn rask_client_submit(
    client: *const rask_client,
    func: *const c_char,
    args: *const *mut rask_arg,
    nargs: usize,
    out: *mut *mut rask_future,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let args = take_args(args, nargs, "args");
        let out = req_mut(out, "out")?;
        *out = ptr::null_mut();
        let c = req(client, "client")?;
        let func = req_str(func, "func")?;
        let args = client_args(args?, "args", 0)?;
        c.life.check("this call")?;
        let f = c
            .client
            .submit(func, args)
            .map_err(|e| c.life.error_of("this call", e))?;
        *out = c.future(f);
        Ok(rask_status::RASK_OK)
    })
}

/// How `rask_client_submit_with` names and runs a task. Zero-initialise it
/// (`rask_submit_options o = {0};`) for what `rask_client_submit` does.
/// `key` is borrowed for the call only.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct rask_submit_options {
    /// The task's key (NUL-terminated UTF-8), or NULL to derive one from
    /// the call.
    pub key: *const c_char,
    /// When `key` is NULL: false (the default) names the task after a hash
    /// of the function and its arguments, so the same call is one task;
    /// true gives every call a unique key (Dask's `pure=False`), for
    /// functions with side effects or randomness.
    pub impure: bool,
    /// Times the task is run again after a failure before it errs; 0: none.
    pub retries: u32,
}

/// `rask_client_submit` with a key of the caller's choice, a unique key, or
/// retries (see `rask_submit_options`; `options` is borrowed, NULL means
/// the defaults). Arguments and result are as for `rask_client_submit`. An
/// empty `options->key` fails with `RASK_ERR_INVALID_ARG`.
#[no_mangle]
pub unsafe extern "C" fn rask_client_submit_with(
    client: *const rask_client,
    func: *const c_char,
    args: *const *mut rask_arg,
    nargs: usize,
    options: *const rask_submit_options,
    out: *mut *mut rask_future,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let args = take_args(args, nargs, "args");
        let out = req_mut(out, "out")?;
        *out = ptr::null_mut();
        let c = req(client, "client")?;
        let func = req_str(func, "func")?;
        let mut opts = SubmitOptions::default();
        if let Some(o) = options.as_ref() {
            if !o.key.is_null() {
                opts.key = Some(req_str(o.key, "options->key")?.to_owned());
            }
            opts.pure = !o.impure;
            opts.retries = o.retries;
        }
        let args = client_args(args?, "args", 0)?;
        c.life.check("this call")?;
        let f = c
            .client
            .submit_with(func, args, &opts)
            .map_err(|e| c.life.error_of("this call", e))?;
        *out = c.future(f);
        Ok(rask_status::RASK_OK)
    })
}

/// Runs `func` once per call, `ncalls` calls in one message to the
/// scheduler: call `i` gets the `nargs_per_call` arguments
/// `args[i * nargs_per_call ..= i * nargs_per_call + nargs_per_call - 1]`.
///
/// - `args`: an array of `ncalls * nargs_per_call` arguments, each consumed
///   even when the call fails (the array stays the caller's), as for
///   `rask_client_submit`; only when that product overflows `size_t` is
///   nothing consumed (`RASK_ERR_INVALID_ARG`).
/// - `futures`: a caller-provided array of `ncalls` pointers. Each is first
///   set to NULL; on success `futures[i]` is a future on call `i`'s result
///   that the caller owns (free each with `rask_future_free`).
#[no_mangle]
pub unsafe extern "C" fn rask_client_map(
    client: *const rask_client,
    func: *const c_char,
    args: *const *mut rask_arg,
    ncalls: usize,
    nargs_per_call: usize,
    futures: *mut *mut rask_future,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let total = ncalls.checked_mul(nargs_per_call).ok_or_else(|| {
            Error::invalid(format!(
                "ncalls ({ncalls}) * nargs_per_call ({nargs_per_call}) overflows"
            ))
        })?;
        clear(futures, ncalls);
        let args = take_args(args, total, "args");
        let c = req(client, "client")?;
        let func = req_str(func, "func")?;
        out_array(futures, ncalls, "futures")?;
        let mut args = args?.into_iter();
        let mut calls = Vec::with_capacity(ncalls);
        for i in 0..ncalls {
            let call: Vec<ArgSpec> = args.by_ref().take(nargs_per_call).collect();
            calls.push(client_args(call, "args", i * nargs_per_call)?);
        }
        c.life.check("this call")?;
        let fs = c
            .client
            .map(func, calls)
            .map_err(|e| c.life.error_of("this call", e))?;
        write_futures(futures, c, fs);
        Ok(rask_status::RASK_OK)
    })
}

/// Computes the `nkeys` keys named in `keys` of `graph` on the cluster:
/// sends the part of the graph they need (checked here first) and sets
/// `futures[i]` to a future on `keys[i]`.
///
/// - `graph`: borrowed (the call sends a copy). It must be complete: an
///   unknown key, a task referring to a key outside the graph or a cycle
///   fails with `RASK_ERR_GRAPH`, as for `rask_compute` (keys held by
///   futures cannot be referenced from a graph; use `rask_client_submit`
///   with `rask_arg_future`).
/// - `keys`: `nkeys` NUL-terminated UTF-8 strings, borrowed.
/// - `futures`: a caller-provided array of `nkeys` pointers. Each is first
///   set to NULL; on success each is a future the caller owns (free with
///   `rask_future_free`).
///
/// Keys the scheduler already has (from this or another client) are not
/// computed again.
#[no_mangle]
pub unsafe extern "C" fn rask_client_compute(
    client: *const rask_client,
    graph: *const rask_graph,
    keys: *const *const c_char,
    nkeys: usize,
    futures: *mut *mut rask_future,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        clear(futures, nkeys);
        let c = req(client, "client")?;
        let g = req(graph, "graph")?;
        let names = req_strs(keys, nkeys, "keys")?;
        out_array(futures, nkeys, "futures")?;
        c.life.check("this call")?;
        // Checked here too, so that a bad graph is RASK_ERR_GRAPH with the
        // message rask_compute gives, not a generic bad argument.
        let graph = g.graph();
        graph.plan(&graph.output_ids(&names)?)?;
        let fs = c
            .client
            .compute(graph, &names)
            .map_err(|e| c.life.error_of("this call", e))?;
        write_futures(futures, c, fs);
        Ok(rask_status::RASK_OK)
    })
}

/// Waits up to `timeout_ms` milliseconds (negative: forever) for the `n`
/// futures in `futures` (borrowed; all of this client) and stores their
/// values in `values[0..n]`, in order, fetching from the workers what the
/// scheduler did not send along.
///
/// `values` is a caller-provided array of `n` pointers. Each is first set to
/// NULL; on success each is a new value the caller owns (free with
/// `rask_value_free`). Returns `RASK_TIMEOUT` (values all NULL) if some
/// future is still pending at the deadline. If a future failed or was
/// cancelled, the first such one in order is the error
/// (`RASK_ERR_TASK_FAILED`, `RASK_ERR_CANCELLED`).
#[no_mangle]
pub unsafe extern "C" fn rask_client_gather(
    client: *const rask_client,
    futures: *const *const rask_future,
    n: usize,
    timeout_ms: i64,
    values: *mut *mut rask_value,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        clear(values, n);
        let c = req(client, "client")?;
        let fs = futures_of(futures, n, "futures")?;
        out_array(values, n, "values")?;
        c.life.check("this call")?;
        let fs: Vec<Future> = fs.iter().map(|f| f.future.clone()).collect();
        if let Some(t) = timeout(timeout_ms) {
            let (_, not_done) = c.client.wait(&fs, WaitMode::All, Some(t));
            if !not_done.is_empty() {
                return Ok(rask_status::RASK_TIMEOUT);
            }
        }
        let vs = c
            .client
            .gather(&fs)
            .map_err(|e| c.life.error_of("this call", e))?;
        for (i, v) in vs.into_iter().enumerate() {
            *values.add(i) = into_c(v);
        }
        Ok(rask_status::RASK_OK)
    })
}

/// Stores the `n` values of `values` in the workers' memory and sets
/// `futures[i]` to a future on `values[i]`, to pass to tasks
/// (`rask_arg_future`) like any other. Values go round robin over the
/// workers, or to every worker when `broadcast` is true. Waits up to the
/// client's timeout for a worker to exist (`RASK_ERR_CONNECTION` after it).
///
/// Every element of `values` is consumed, even when the call fails; the
/// array stays the caller's. `futures` is a caller-provided array of `n`
/// pointers, first set to NULL; on success each is a future the caller owns
/// (free with `rask_future_free`).
#[no_mangle]
pub unsafe extern "C" fn rask_client_scatter(
    client: *const rask_client,
    values: *const *mut rask_value,
    n: usize,
    broadcast: bool,
    futures: *mut *mut rask_future,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        clear(futures, n);
        let ptrs = req_slice(values, n, "values")?;
        let taken: Vec<Option<Value>> = ptrs.iter().map(|&p| take_value(p)).collect();
        let c = req(client, "client")?;
        out_array(futures, n, "futures")?;
        let vs = taken
            .into_iter()
            .enumerate()
            .map(|(i, v)| v.ok_or_else(|| Error::null(&format!("values[{i}]"))))
            .collect::<Result<Vec<_>, _>>()?;
        c.life.check("this call")?;
        let fs = c
            .client
            .scatter(vs, broadcast)
            .map_err(|e| c.life.error_of("this call", e))?;
        write_futures(futures, c, fs);
        Ok(rask_status::RASK_OK)
    })
}

/// Sets `*out` to a file descriptor for an event loop to wait on (`poll`,
/// `epoll`, Julia's `FileWatching.poll_fd`, asyncio's `loop.add_reader`):
/// it becomes readable when something a wait may be waiting for changed —
/// a future finished, erred or was cancelled, a scheduler reply arrived,
/// the connection was lost — and stays readable until
/// `rask_client_fd_clear`. The first call makes it, readable (the next
/// calls give the same one).
///
/// Use: clear it, look at what you wait for with calls that do not block
/// (`rask_future_status`, `rask_client_wait` or `rask_future_result` with
/// timeout 0); if it is not there yet, wait until the descriptor is
/// readable and start again. Clearing before looking means no change is
/// missed. Several waiters in one process share one descriptor: one of them
/// clears it and wakes the others (as Rask.jl and the Python binding do).
///
/// The descriptor is owned by `client`: do not read, write or close it; it
/// is valid until `rask_client_free` (stop waiting on it before). Fails with
/// `RASK_ERR_STATE` once the client is closed, or when the system has no
/// descriptor left.
#[no_mangle]
pub unsafe extern "C" fn rask_client_fd(
    client: *const rask_client,
    out: *mut c_int,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let out = req_mut(out, "out")?;
        *out = -1;
        let c = req(client, "client")?;
        c.life.check("this call")?;
        *out = c.client.wait_fd().map_err(|e| {
            Error::new(
                rask_status::RASK_ERR_STATE,
                format!("a pipe for the client: {e}"),
            )
        })?;
        Ok(rask_status::RASK_OK)
    })
}

/// Makes the descriptor of `rask_client_fd` unreadable until the next
/// change (see there). Does nothing if it was never asked for. Fails with
/// `RASK_ERR_STATE` once the client is closed.
#[no_mangle]
pub unsafe extern "C" fn rask_client_fd_clear(
    client: *const rask_client,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let c = req(client, "client")?;
        c.life.check("this call")?;
        c.client.clear_wait_fd();
        Ok(rask_status::RASK_OK)
    })
}

/// Cancels the `n` futures in `futures` (borrowed; all of this client): they
/// become `RASK_FUTURE_CANCELLED` at once (unless already erred), their
/// results report `RASK_ERR_CANCELLED`, and the scheduler stops computing
/// what no other client wants. The handles stay the caller's to free.
#[no_mangle]
pub unsafe extern "C" fn rask_client_cancel(
    client: *const rask_client,
    futures: *const *const rask_future,
    n: usize,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let c = req(client, "client")?;
        let fs = futures_of(futures, n, "futures")?;
        c.life.check("this call")?;
        let fs: Vec<Future> = fs.iter().map(|f| f.future.clone()).collect();
        c.client
            .cancel(&fs)
            .map_err(|e| c.life.error_of("this call", e))?;
        Ok(rask_status::RASK_OK)
    })
}

/// Waits up to `timeout_ms` milliseconds (negative: forever; 0: just look)
/// until all of the `n` futures in `futures` (borrowed; all of this client)
/// are done (`mode` = `RASK_WAIT_ALL_COMPLETED`), or at least one is
/// (`RASK_WAIT_FIRST_COMPLETED`). Done means finished, erred or cancelled.
///
/// Returns `RASK_OK` when that happened, `RASK_TIMEOUT` otherwise. In both
/// cases, when `done` is not NULL, `done[i]` (a caller-provided array of `n`
/// bools) tells whether `futures[i]` was done when the call returned.
/// `mode` is a `rask_wait_mode` taken as `int`; another number fails with
/// `RASK_ERR_INVALID_ARG`.
#[no_mangle]
pub unsafe extern "C" fn rask_client_wait(
    client: *const rask_client,
    futures: *const *const rask_future,
    n: usize,
    mode: c_int,
    timeout_ms: i64,
    done: *mut bool,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let c = req(client, "client")?;
        let fs = futures_of(futures, n, "futures")?;
        let mode = match mode {
            0 => WaitMode::All,
            1 => WaitMode::FirstCompleted,
            m => {
                return Err(Error::invalid(format!(
                    "mode {m} is not a rask_wait_mode (0: all completed, 1: first completed)"
                )))
            }
        };
        c.life.check("this call")?;
        let owned: Vec<Future> = fs.iter().map(|f| f.future.clone()).collect();
        if let Some(f) = owned.iter().find(|f| !f.belongs_to(&c.client.inner)) {
            return Err(Error::invalid(format!(
                "future '{}' belongs to another client",
                f.key()
            )));
        }
        let (finished, pending) = c.client.wait(&owned, mode, timeout(timeout_ms));
        if !done.is_null() {
            for (i, f) in owned.iter().enumerate() {
                *done.add(i) = f.done();
            }
        }
        let met = match mode {
            WaitMode::All => pending.is_empty(),
            WaitMode::FirstCompleted => n == 0 || !finished.is_empty(),
        };
        Ok(match met {
            true => rask_status::RASK_OK,
            false => rask_status::RASK_TIMEOUT,
        })
    })
}

/// Waits up to `timeout_ms` milliseconds (negative: forever) until the
/// scheduler knows at least `n` workers. Returns `RASK_OK`, or
/// `RASK_TIMEOUT` if fewer had joined at the deadline. When `count` is not
/// NULL, `*count` is set to the number of workers last seen.
#[no_mangle]
pub unsafe extern "C" fn rask_client_wait_for_workers(
    client: *const rask_client,
    n: usize,
    timeout_ms: i64,
    count: *mut usize,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let c = req(client, "client")?;
        c.life.check("this call")?;
        let deadline = timeout(timeout_ms).map(|t| std::time::Instant::now() + t);
        loop {
            let ws = c
                .client
                .workers()
                .map_err(|e| c.life.error_of("this call", e))?;
            if let Some(out) = count.as_mut() {
                *out = ws.len();
            }
            if ws.len() >= n {
                return Ok(rask_status::RASK_OK);
            }
            if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                return Ok(rask_status::RASK_TIMEOUT);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    })
}

/// What the scheduler holds, as `rask_client_scheduler_info` reports it
/// (the scheduler's `get-info`). Filled by the call; the caller owns it
/// (usually on the stack).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct rask_scheduler_info {
    /// Tasks the scheduler holds, in any state.
    pub tasks: u64,
    /// Tasks by state: released (forgotten soon), waiting for their
    /// dependencies, with no worker that can run them, queued for a worker,
    /// processing on a worker, in memory (done), erred.
    pub released: u64,
    /// See `released`.
    pub waiting: u64,
    /// See `released`.
    pub no_worker: u64,
    /// See `released`.
    pub queued: u64,
    /// See `released`.
    pub processing: u64,
    /// See `released`.
    pub memory: u64,
    /// See `released`.
    pub erred: u64,
    /// Workers in the cluster.
    pub workers: u64,
    /// Clients connected (this one included).
    pub clients: u64,
    /// Bytes of data the workers hold in memory (from their heartbeats).
    pub managed_bytes: u64,
    /// Bytes of data the workers have spilled to disk.
    pub spilled_bytes: u64,
    /// The workers' processes' resident memory, summed over the workers.
    pub process_bytes: u64,
    /// The sum of the workers' memory limits.
    pub memory_limit: u64,
    /// Workers paused by their memory use (sent no task until they resume).
    pub paused_workers: u64,
}

impl From<SchedulerInfo> for rask_scheduler_info {
    fn from(i: SchedulerInfo) -> Self {
        let state = |name: &str| i.states.get(name).copied().unwrap_or(0);
        rask_scheduler_info {
            tasks: i.tasks,
            released: state("released"),
            waiting: state("waiting"),
            no_worker: state("no-worker"),
            queued: state("queued"),
            processing: state("processing"),
            memory: state("memory"),
            erred: state("erred"),
            workers: i.workers,
            clients: i.clients,
            managed_bytes: i.managed,
            spilled_bytes: i.spilled,
            process_bytes: i.process,
            memory_limit: i.memory_limit,
            paused_workers: i.paused,
        }
    }
}

/// Asks the scheduler what it holds: its tasks (in all and by state), its
/// workers and its clients. `info` (caller-owned, not NULL) is set to all
/// zeros first, then filled on `RASK_OK`. Fails with
/// `RASK_ERR_CONNECTION` when the scheduler is lost or does not answer in
/// the client's timeout, `RASK_ERR_STATE` on a closed client.
#[no_mangle]
pub unsafe extern "C" fn rask_client_scheduler_info(
    client: *const rask_client,
    info: *mut rask_scheduler_info,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        if let Some(p) = info.as_mut() {
            *p = rask_scheduler_info::default();
        }
        let c = req(client, "client")?;
        let out = req_mut(info, "info")?;
        c.life.check("this call")?;
        *out = c
            .client
            .scheduler_info()
            .map_err(|e| c.life.error_of("this call", e))?
            .into();
        Ok(rask_status::RASK_OK)
    })
}

/// Retires the `n` workers named in `workers` gracefully: each name is a
/// worker's data address ("tcp://host:port"), its name, or its id in
/// decimal (NUL-terminated UTF-8 strings, borrowed for the call). They get
/// no new tasks, hand back the tasks they have not started, finish the
/// running ones, and the results only they hold are copied to other
/// workers before they are closed: nothing is recomputed. Waits up to
/// `timeout_ms` milliseconds (negative: forever) until every one of them
/// has left.
///
/// Returns `RASK_OK` once they have left; `RASK_TIMEOUT` if they had not at
/// the deadline (retirement goes on); `RASK_ERR_PROTOCOL` when a name
/// matches no worker (code `unknown-worker` in the message; nothing is
/// retired); `RASK_ERR_CONNECTION` when the scheduler is lost. When not
/// NULL, `*moved` is set to the number of keys copied to other workers and
/// `*lost` to the number that could not be (only they held them and no
/// other worker could take them: recomputed if still needed); both are
/// set to 0 first.
#[no_mangle]
pub unsafe extern "C" fn rask_client_retire_workers(
    client: *const rask_client,
    workers: *const *const c_char,
    n: usize,
    timeout_ms: i64,
    moved: *mut usize,
    lost: *mut usize,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        for p in [moved, lost] {
            if let Some(p) = p.as_mut() {
                *p = 0;
            }
        }
        let c = req(client, "client")?;
        let names = req_strs(workers, n, "workers")?;
        c.life.check("this call")?;
        let report = match c.client.retire_workers(&names, timeout(timeout_ms)) {
            Ok(r) => r,
            Err(ClientError::Timeout(_)) => return Ok(rask_status::RASK_TIMEOUT),
            Err(e) => return Err(c.life.error_of("this call", e)),
        };
        if let Some(p) = moved.as_mut() {
            *p = report.moved.len();
        }
        if let Some(p) = lost.as_mut() {
            *p = report.lost.len();
        }
        Ok(rask_status::RASK_OK)
    })
}

/// Copies the results of the `n_futures` futures in `futures` (borrowed
/// for the call) so that `n` workers hold each, as Dask's `replicate`:
/// copies go to the workers holding the fewest bytes, and copies beyond
/// `n` are dropped. `n` is capped at the workers there are. Waits for the
/// futures, then for the copies, up to `timeout_ms` milliseconds in all
/// (negative: forever).
///
/// Returns `RASK_OK` when done; `RASK_TIMEOUT` at the deadline (the copies
/// go on); `RASK_ERR_INVALID_ARG` when `n` is 0, or a future failed, was
/// cancelled or belongs to another client (nothing is copied);
/// `RASK_ERR_CONNECTION` when the scheduler is lost. When not NULL,
/// `*copied` is set to the number of copies made and `*short_keys` to the
/// number of keys left on fewer than `n` workers (no worker could fetch a
/// copy); both are set to 0 first.
#[no_mangle]
pub unsafe extern "C" fn rask_client_replicate(
    client: *const rask_client,
    futures: *const *const rask_future,
    n_futures: usize,
    n: usize,
    timeout_ms: i64,
    copied: *mut usize,
    short_keys: *mut usize,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        for p in [copied, short_keys] {
            if let Some(p) = p.as_mut() {
                *p = 0;
            }
        }
        let c = req(client, "client")?;
        let fs = futures_of(futures, n_futures, "futures")?;
        c.life.check("this call")?;
        let fs: Vec<Future> = fs.iter().map(|f| f.future.clone()).collect();
        let report = match c.client.replicate(&fs, n, timeout(timeout_ms)) {
            Ok(r) => r,
            Err(ClientError::Timeout(_)) => return Ok(rask_status::RASK_TIMEOUT),
            Err(e) => return Err(c.life.error_of("this call", e)),
        };
        if let Some(p) = copied.as_mut() {
            *p = report.copied as usize;
        }
        if let Some(p) = short_keys.as_mut() {
            *p = report.short.len();
        }
        Ok(rask_status::RASK_OK)
    })
}

/// Moves results between workers so that the bytes each holds even out, as
/// Dask's `rebalance`: only the results of the `n` futures in `futures`
/// (borrowed for the call), or every result in memory when `n` is 0
/// (`futures` may then be NULL). Waits for the futures, then for the moves,
/// up to `timeout_ms` milliseconds in all (negative: forever).
///
/// Returns `RASK_OK` when done; `RASK_TIMEOUT` at the deadline (the moves
/// go on); `RASK_ERR_INVALID_ARG` when a future failed, was cancelled or
/// belongs to another client (nothing moves); `RASK_ERR_CONNECTION` when
/// the scheduler is lost. When not NULL, `*moved` is set to the number of
/// keys moved and `*bytes` to their bytes; both are set to 0 first.
#[no_mangle]
pub unsafe extern "C" fn rask_client_rebalance(
    client: *const rask_client,
    futures: *const *const rask_future,
    n: usize,
    timeout_ms: i64,
    moved: *mut usize,
    bytes: *mut u64,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        if let Some(p) = moved.as_mut() {
            *p = 0;
        }
        if let Some(p) = bytes.as_mut() {
            *p = 0;
        }
        let c = req(client, "client")?;
        let fs = futures_of(futures, n, "futures")?;
        c.life.check("this call")?;
        let fs: Vec<Future> = fs.iter().map(|f| f.future.clone()).collect();
        let which = if fs.is_empty() { None } else { Some(&fs[..]) };
        let report = match c.client.rebalance(which, timeout(timeout_ms)) {
            Ok(r) => r,
            Err(ClientError::Timeout(_)) => return Ok(rask_status::RASK_TIMEOUT),
            Err(e) => return Err(c.life.error_of("this call", e)),
        };
        if let Some(p) = moved.as_mut() {
            *p = report.moved as usize;
        }
        if let Some(p) = bytes.as_mut() {
            *p = report.bytes;
        }
        Ok(rask_status::RASK_OK)
    })
}

//! `rask_scheduler`: a scheduler running in this process.

use super::{c_string, ffi_boundary, rask_error, rask_status, req, req_mut, req_str, Error};
use crate::scheduler::{Scheduler, SchedulerConfig, SchedulerHandle, DEFAULT_DASHBOARD};
use std::ffi::{c_char, CString};
use std::ptr;
use std::time::Duration;

/// How to start a scheduler. Zero-initialise it (`rask_scheduler_options o
/// = {0};`) for the defaults; passing NULL means the defaults too. The
/// strings are borrowed for the call only.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct rask_scheduler_options {
    /// The address to listen on (NUL-terminated); NULL means "127.0.0.1".
    /// Anything but a loopback address exposes the scheduler to the
    /// network: set a `token` then.
    pub host: *const c_char,
    /// The port to listen on; 0 means any free port (see
    /// `rask_scheduler_address`). Unlike the `rask-scheduler` program, whose
    /// default is 8786, an embedded scheduler does not take a fixed port
    /// unless asked.
    pub port: u16,
    /// The scheduler's name for logs and handshakes (NUL-terminated UTF-8);
    /// NULL means "scheduler".
    pub name: *const c_char,
    /// The cluster's shared secret (NUL-terminated UTF-8), which every
    /// client and worker must then present; NULL means none.
    pub token: *const c_char,
    /// How long a worker may stay silent before it is considered gone, in
    /// milliseconds; 0 or less means the default (60 s).
    pub heartbeat_timeout_ms: i64,
    /// TLS (all three NUL-terminated paths of PEM files, or all NULL for
    /// none): the CA certificate(s), this side's certificate chain (signed
    /// by the CA) and its private key. With them the port
    /// serves TLS only, requires client certificates signed by the CA, and
    /// the address is "tls://HOST:PORT". Only some of
    /// them, or files that do not load, fail with `RASK_ERR_INVALID_ARG`
    /// naming the file.
    pub tls_ca_file: *const c_char,
    /// See `tls_ca_file`.
    pub tls_cert_file: *const c_char,
    /// See `tls_ca_file`.
    pub tls_key_file: *const c_char,
    /// Where to serve the web dashboard and Prometheus `/metrics`
    /// ("HOST:PORT", NUL-terminated; port 0 means any free port). NULL
    /// means "127.0.0.1:8787", as Dask's, or a free port of 127.0.0.1 when
    /// 8787 is taken (see `rask_scheduler_dashboard_link`). An address that
    /// does not parse or cannot be bound fails the start with
    /// `RASK_ERR_CONNECTION`. Ignored when `no_dashboard` is set.
    pub dashboard_address: *const c_char,
    /// Serve no dashboard and no `/metrics` (false, the zero value, serves
    /// them).
    pub no_dashboard: bool,
}

/// A scheduler running in this process, on rask's I/O threads. Made by
/// `rask_scheduler_start`, freed (and shut down) with
/// `rask_scheduler_free`. Workers and clients, in this process or others,
/// join it at `rask_scheduler_address`.
pub struct rask_scheduler {
    handle: SchedulerHandle,
    address: CString,
    dashboard_link: CString,
}

unsafe fn config(o: Option<&rask_scheduler_options>) -> Result<SchedulerConfig, Error> {
    let mut c = SchedulerConfig {
        port: 0,
        dashboard: Some(DEFAULT_DASHBOARD.into()),
        ..SchedulerConfig::default()
    };
    let Some(o) = o else {
        return Ok(c);
    };
    c.dashboard = super::dashboard_option(o.dashboard_address, o.no_dashboard)?;
    if !o.host.is_null() {
        c.host = req_str(o.host, "options->host")?.to_owned();
    }
    c.port = o.port;
    if !o.name.is_null() {
        c.name = req_str(o.name, "options->name")?.to_owned();
    }
    if !o.token.is_null() {
        c.token = Some(req_str(o.token, "options->token")?.to_owned());
    }
    if o.heartbeat_timeout_ms > 0 {
        c.heartbeat_timeout = Duration::from_millis(o.heartbeat_timeout_ms as u64);
    }
    c.tls = super::tls_options(o.tls_ca_file, o.tls_cert_file, o.tls_key_file)?;
    Ok(c)
}

/// Starts a scheduler and returns once it listens. `options` is borrowed;
/// NULL means the defaults (127.0.0.1, any free port).
///
/// On success `*out` is set to a scheduler the caller owns and frees with
/// `rask_scheduler_free`. Fails with `RASK_ERR_CONNECTION` when it cannot
/// listen (the port is taken, the host does not resolve).
#[no_mangle]
pub unsafe extern "C" fn rask_scheduler_start(
    options: *const rask_scheduler_options,
    out: *mut *mut rask_scheduler,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let out = req_mut(out, "out")?;
        *out = ptr::null_mut();
        let config = config(options.as_ref())?;
        let (host, port) = (config.host.clone(), config.port);
        let handle = Scheduler::start(config).map_err(|e| {
            let e = e.to_string();
            // The dashboard's errors say what they are about.
            let message = if e.contains("dashboard") {
                e
            } else {
                format!("cannot listen on {host}:{port}: {e}")
            };
            Error::call(rask_status::RASK_ERR_CONNECTION, message)
        })?;
        *out = Box::into_raw(Box::new(rask_scheduler {
            address: c_string(handle.address()),
            dashboard_link: c_string(handle.dashboard_link().unwrap_or("")),
            handle,
        }));
        Ok(rask_status::RASK_OK)
    })
}

/// Where workers and clients connect: "tcp://HOST:PORT" ("tls://HOST:PORT"
/// with TLS) with the real port, NUL-terminated, borrowed from `scheduler`
/// (valid until it is freed).
/// Returns "" when `scheduler` is NULL.
#[no_mangle]
pub unsafe extern "C" fn rask_scheduler_address(scheduler: *const rask_scheduler) -> *const c_char {
    match scheduler.as_ref() {
        Some(s) => s.address.as_ptr(),
        None => "\0".as_ptr().cast(),
    }
}

/// The dashboard's status page, "http://HOST:PORT/status" with the real
/// port (its `/metrics` and `/report` are beside it), NUL-terminated,
/// borrowed from `scheduler` (valid until it is freed). Returns "" when the
/// scheduler serves no dashboard (`no_dashboard`) or `scheduler` is NULL.
#[no_mangle]
pub unsafe extern "C" fn rask_scheduler_dashboard_link(
    scheduler: *const rask_scheduler,
) -> *const c_char {
    match scheduler.as_ref() {
        Some(s) => s.dashboard_link.as_ptr(),
        None => "\0".as_ptr().cast(),
    }
}

/// Shuts the scheduler down but keeps the handle: every worker and client
/// is sent `close` and disconnected (workers stop; clients' pending futures
/// fail with `RASK_ERR_CONNECTION`), and the call returns once that is
/// done, as `rask_scheduler_free` does. The handle stays valid until
/// `rask_scheduler_free` (`rask_scheduler_address` still answers; nothing
/// listens there any more). Stopping a stopped scheduler does nothing.
#[no_mangle]
pub unsafe extern "C" fn rask_scheduler_stop(
    scheduler: *const rask_scheduler,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        req(scheduler, "scheduler")?.handle.shutdown();
        Ok(rask_status::RASK_OK)
    })
}

/// Shuts the scheduler down (as `rask_scheduler_stop`, if it was not
/// stopped already) and frees it. NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn rask_scheduler_free(scheduler: *mut rask_scheduler) {
    ffi_boundary!(default = (), {
        if !scheduler.is_null() {
            let s = Box::from_raw(scheduler);
            s.handle.shutdown();
        }
    })
}

//! `rask_cluster`: a scheduler and workers in this process.

use super::client::{client_error, rask_client};
use super::registry::rask_registry;
use super::worker::worker_error;
use super::{c_string, ffi_boundary, rask_error, rask_status, req, req_mut, req_str, Error};
use crate::cluster::{ClusterError, LocalCluster, LocalClusterConfig};
use crate::registry::Registry;
use crate::scheduler::DEFAULT_DASHBOARD;
use std::ffi::{c_char, CString};
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How to start a local cluster. Zero-initialise it (`rask_cluster_options
/// o = {0};`) for the defaults; passing NULL means the defaults too. The
/// strings are borrowed for the call only.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct rask_cluster_options {
    /// Workers to start; 0 means 2.
    pub workers: u32,
    /// Threads of each worker, running builtins and C callbacks; 0 means 1.
    pub threads_per_worker: u32,
    /// The interface the scheduler and workers listen on (NUL-terminated);
    /// NULL means "127.0.0.1".
    pub host: *const c_char,
    /// The scheduler's port; 0 means any free port (see
    /// `rask_cluster_address`).
    pub scheduler_port: u16,
    /// A shared secret for the scheduler, the workers and the clients
    /// (NUL-terminated UTF-8); NULL means none.
    pub token: *const c_char,
    /// How long starting may take (every worker registering), and the
    /// timeout of clients made by `rask_cluster_client`, in milliseconds; 0
    /// or less means the default (10 s).
    pub timeout_ms: i64,
    /// TLS (all three NUL-terminated paths of PEM files, or all NULL for
    /// none): the CA certificate(s), this side's certificate chain (signed
    /// by the CA) and its private key. With them the
    /// scheduler, the workers and the clients of `rask_cluster_client` all
    /// use TLS (one certificate), and the address is "tls://HOST:PORT". Only some of
    /// them, or files that do not load, fail with `RASK_ERR_INVALID_ARG`
    /// naming the file.
    pub tls_ca_file: *const c_char,
    /// See `tls_ca_file`.
    pub tls_cert_file: *const c_char,
    /// See `tls_ca_file`.
    pub tls_key_file: *const c_char,
    /// Where the scheduler serves the web dashboard and Prometheus
    /// `/metrics` ("HOST:PORT", NUL-terminated; port 0 means any free
    /// port). NULL means "127.0.0.1:8787", as Dask's, or a free port of
    /// 127.0.0.1 when 8787 is taken (see `rask_cluster_dashboard_link`). An
    /// address that does not parse or cannot be bound fails the start with
    /// `RASK_ERR_CONNECTION`. Ignored when `no_dashboard` is set.
    pub dashboard_address: *const c_char,
    /// Serve no dashboard and no `/metrics` (false, the zero value, serves
    /// them).
    pub no_dashboard: bool,
}

/// A scheduler and its workers, all in this process and talking over
/// loopback TCP as a real cluster does. Made by `rask_cluster_start`, freed
/// (and shut down) with `rask_cluster_free`. Clients connect with
/// `rask_cluster_client`, or from anywhere with `rask_client_connect` and
/// `rask_cluster_address`; more workers (e.g. with pulled functions) join
/// with `rask_worker_start` at that address.
pub struct rask_cluster {
    cluster: LocalCluster,
    address: CString,
    dashboard_link: CString,
    stopped: AtomicBool,
}

fn cluster_error(e: ClusterError) -> Error {
    match e {
        ClusterError::Worker(w) => worker_error(w),
        e => Error::call(rask_status::RASK_ERR_CONNECTION, e.to_string()),
    }
}

unsafe fn config(
    o: Option<&rask_cluster_options>,
    registry: Registry,
) -> Result<LocalClusterConfig, Error> {
    let mut c = LocalClusterConfig {
        registry,
        dashboard: Some(DEFAULT_DASHBOARD.into()),
        ..LocalClusterConfig::default()
    };
    let Some(o) = o else {
        return Ok(c);
    };
    c.dashboard = super::dashboard_option(o.dashboard_address, o.no_dashboard)?;
    if o.workers > 0 {
        c.workers = o.workers as usize;
    }
    if o.threads_per_worker > 0 {
        c.threads_per_worker = o.threads_per_worker as usize;
    }
    if !o.host.is_null() {
        c.host = req_str(o.host, "options->host")?.to_owned();
    }
    c.scheduler_port = o.scheduler_port;
    if !o.token.is_null() {
        c.token = Some(req_str(o.token, "options->token")?.to_owned());
    }
    if o.timeout_ms > 0 {
        c.timeout = Duration::from_millis(o.timeout_ms as u64);
    }
    c.tls = super::tls_options(o.tls_ca_file, o.tls_cert_file, o.tls_key_file)?;
    Ok(c)
}

/// Starts a scheduler and `options->workers` workers in this process, and
/// returns once every worker has registered.
///
/// - `options`: borrowed; NULL means the defaults (2 workers of 1 thread).
/// - `registry`: borrowed; NULL means the builtins only. Every worker gets
///   a copy and offers its functions; C callbacks run on the workers'
///   threads. The registry may be freed at once. Pulled functions are
///   refused (`RASK_ERR_INVALID_ARG`): nobody could pull from the cluster's
///   workers; start a worker of your own for them (`rask_worker_start` at
///   `rask_cluster_address`) and pull from it.
///
/// On success `*out` is set to a cluster the caller owns and frees with
/// `rask_cluster_free`. Fails with `RASK_ERR_CONNECTION` when the scheduler
/// or a worker cannot listen, or the workers do not register in time.
#[no_mangle]
pub unsafe extern "C" fn rask_cluster_start(
    options: *const rask_cluster_options,
    registry: *const rask_registry,
    out: *mut *mut rask_cluster,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let out = req_mut(out, "out")?;
        *out = ptr::null_mut();
        let registry = registry
            .as_ref()
            .map_or_else(Registry::new, |r| r.registry().clone());
        if let Some(name) = registry
            .names()
            .into_iter()
            .find(|n| registry.resolve(n).is_some_and(|f| f.is_pulled()))
        {
            return Err(Error::invalid(format!(
                "'{name}' is a pulled function, which nobody could pull from the cluster's \
                 workers; start a worker of your own for it (rask_worker_start at \
                 rask_cluster_address) and pull from that"
            )));
        }
        let config = config(options.as_ref(), registry)?;
        let cluster = LocalCluster::start(config).map_err(cluster_error)?;
        *out = Box::into_raw(Box::new(rask_cluster {
            address: c_string(cluster.address()),
            dashboard_link: c_string(&cluster.dashboard_link().unwrap_or_default()),
            cluster,
            stopped: AtomicBool::new(false),
        }));
        Ok(rask_status::RASK_OK)
    })
}

/// The scheduler's address ("tcp://HOST:PORT", or "tls://HOST:PORT" with
/// TLS), where clients and more workers connect; borrowed from `cluster`
/// (valid until it is freed).
/// Returns "" when `cluster` is NULL.
#[no_mangle]
pub unsafe extern "C" fn rask_cluster_address(cluster: *const rask_cluster) -> *const c_char {
    match cluster.as_ref() {
        Some(c) => c.address.as_ptr(),
        None => "\0".as_ptr().cast(),
    }
}

/// The dashboard's status page of the cluster's scheduler,
/// "http://HOST:PORT/status" with the real port, NUL-terminated, borrowed
/// from `cluster` (valid until it is freed). Returns "" when it serves no
/// dashboard (`no_dashboard`) or `cluster` is NULL.
#[no_mangle]
pub unsafe extern "C" fn rask_cluster_dashboard_link(
    cluster: *const rask_cluster,
) -> *const c_char {
    match cluster.as_ref() {
        Some(c) => c.dashboard_link.as_ptr(),
        None => "\0".as_ptr().cast(),
    }
}

/// Connects a new client to the cluster (with the cluster's token and
/// timeout). On success `*out` is set to a client the caller owns and frees
/// with `rask_client_free` — before or after the cluster; once the cluster
/// is freed, the client's calls fail with `RASK_ERR_CONNECTION`.
#[no_mangle]
pub unsafe extern "C" fn rask_cluster_client(
    cluster: *const rask_cluster,
    out: *mut *mut rask_client,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let out = req_mut(out, "out")?;
        *out = ptr::null_mut();
        let c = req(cluster, "cluster")?;
        if c.stopped.load(Ordering::Acquire) {
            return Err(Error::call(
                rask_status::RASK_ERR_STATE,
                "the cluster was stopped (rask_cluster_stop)",
            ));
        }
        let client = c.cluster.client().map_err(client_error)?;
        *out = rask_client::boxed(client);
        Ok(rask_status::RASK_OK)
    })
}

/// Shuts the cluster down but keeps the handle: stops the workers
/// (waiting for the callbacks they are running), then the scheduler, as
/// `rask_cluster_free` does. Clients connected to it see their connection
/// end (their calls fail with `RASK_ERR_CONNECTION`). The handle stays
/// valid until `rask_cluster_free`: `rask_cluster_address` still answers,
/// `rask_cluster_client` fails with `RASK_ERR_STATE`. Stopping a stopped
/// cluster does nothing.
#[no_mangle]
pub unsafe extern "C" fn rask_cluster_stop(
    cluster: *const rask_cluster,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let c = req(cluster, "cluster")?;
        c.stopped.store(true, Ordering::Release);
        c.cluster.shutdown();
        Ok(rask_status::RASK_OK)
    })
}

/// Shuts the cluster down (as `rask_cluster_stop`, if it was not stopped
/// already) and frees it. NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn rask_cluster_free(cluster: *mut rask_cluster) {
    ffi_boundary!(default = (), {
        if !cluster.is_null() {
            let c = Box::from_raw(cluster);
            c.cluster.shutdown();
        }
    })
}

//! The C ABI: every `#[no_mangle]` function of `librask`, one file per handle
//! type. `include/rask.h` is generated from these files by cbindgen
//! (`cbindgen.toml`); `tests/header.rs` fails when it is out of date.
//!
//! # Conventions (docs/c-api.md explains them for C users)
//!
//! - Names are `rask_<noun>_<verb>`. Handles are opaque; each `_new` has a
//!   `_free`, and every `_free` accepts NULL and does nothing.
//! - Every fallible function returns a [`rask_status`] and takes a last
//!   parameter `rask_error **err`, which may be NULL. On failure, when `err`
//!   is not NULL, `*err` is set to a new [`rask_error`] that the caller frees
//!   with `rask_error_free`; on success `*err` is not written. There is no
//!   thread-local "last error".
//! - Every export runs its body inside [`ffi_boundary!`]: a Rust panic never
//!   unwinds into C; it becomes `RASK_ERR_PANIC` with the panic's message.
//! - A NULL pointer where one is required gives `RASK_ERR_NULL_ARG` with a
//!   message that names the parameter; a `const char *` that is not UTF-8
//!   gives `RASK_ERR_INVALID_UTF8`, also naming the parameter.
//! - Enum values passed *from* C into rask (a dtype, a status) are taken as
//!   `int`, not as the enum type, so that a value outside the enum is
//!   reported (or mapped) instead of being undefined behaviour in Rust.
//! - Memory made by Rust is freed by Rust, through the `_free` function the
//!   doc comment names.
//!
//! # Safety
//!
//! Every pointer a caller passes must be NULL or valid for what the doc
//! comment says (a live handle of the named type, a NUL-terminated string, an
//! array of the given length); the functions check for NULL, nothing more.
//! A handle must not be used after it was freed or consumed.

#![allow(non_camel_case_types)]
#![allow(clippy::missing_safety_doc)]

// cbindgen writes the functions in the order of these declarations: errors,
// values, host values, graphs, registries, compute, tasks, schedulers, clusters, clients,
// futures, batches of futures, as_completed, coordination, workers, plugins. (The blank lines stop rustfmt from
// sorting them.)
pub mod error;

pub mod value;

pub mod host;

pub mod graph;

pub mod registry;

pub mod compute;

pub mod task;

pub mod scheduler;

pub mod cluster;

pub mod client;

pub mod future;

pub mod batch;

pub mod as_completed;

pub mod progress;

pub mod report;

pub mod coord;

pub mod worker;

pub mod nested;

pub mod plugin;

pub mod signal;

pub use as_completed::*;
pub use batch::*;
pub use client::*;
pub use cluster::*;
pub use compute::*;
pub use coord::*;
pub use error::*;
pub use future::*;
pub use graph::*;
pub use host::*;
pub use plugin::*;
pub use registry::*;
pub use scheduler::*;
pub use signal::*;
pub use task::*;
pub use value::*;
pub use worker::*;

use crate::graph::GraphError;
use crate::local::ComputeError;
use crate::registry::RegistryError;
use std::any::Any;
use std::ffi::{c_char, c_int, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The version of the C ABI this header describes. It changes whenever a
/// function, type or value changes incompatibly; compare it with
/// `rask_abi_version()` to check that the header matches the library.
pub const RASK_ABI_VERSION: u32 = 1;

/// The result of a fallible call. The values are fixed and never reused.
/// `RASK_OK`, `RASK_TIMEOUT` and `RASK_DONE` are not errors; every other
/// value is, and comes with a `rask_error` when the caller asked for one.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum rask_status {
    /// Success.
    RASK_OK = 0,
    /// A pointer argument that must not be NULL was NULL.
    RASK_ERR_NULL_ARG = 1,
    /// A string argument was not valid UTF-8.
    RASK_ERR_INVALID_UTF8 = 2,
    /// An argument was out of range or otherwise unusable (an index, a
    /// dtype, a tensor size).
    RASK_ERR_INVALID_ARG = 3,
    /// A value was of the wrong kind (e.g. `rask_value_get_int` of a string).
    RASK_ERR_TYPE = 4,
    /// Bytes were not valid msgpack, or not a valid graph document.
    RASK_ERR_DECODE = 5,
    /// The graph is not usable: a cycle, a missing key, a duplicate key, an
    /// empty key or function name, an unknown output key.
    RASK_ERR_GRAPH = 6,
    /// A task names a function that no registry provides.
    RASK_ERR_UNKNOWN_FUNCTION = 7,
    /// A task failed (its function returned an error).
    RASK_ERR_TASK_FAILED = 8,
    /// The computation was cancelled.
    RASK_ERR_CANCELLED = 9,
    /// A function could not be registered (empty, builtin or duplicate name).
    RASK_ERR_REGISTRY = 10,
    /// rask panicked; this is a bug in rask. The message is the panic's.
    RASK_ERR_PANIC = 11,
    /// The call is not possible in the current state (e.g. `rask_compute`
    /// of a graph whose tasks need a pulled function).
    RASK_ERR_STATE = 12,
    /// A network operation failed: connecting or listening (an unreachable
    /// address, a refused handshake, a port in use), or a connection was
    /// lost (the scheduler went away).
    RASK_ERR_CONNECTION = 13,
    /// The other side sent something unusable or refused a request (an
    /// `error` reply of the wire protocol; the message says why).
    RASK_ERR_PROTOCOL = 14,
    /// A value could not be fetched from or stored on the workers (no
    /// worker holds it any more, a worker refused it, there are no workers).
    RASK_ERR_DATA = 15,
    /// Not an error: nothing happened within the timeout.
    RASK_TIMEOUT = 100,
    /// Not an error: the computation has ended; no more tasks will come.
    RASK_DONE = 101,
}

// The callback wrapper reads a C `rask_status` as a 32-bit integer.
const _: () = assert!(std::mem::size_of::<rask_status>() == 4);

impl rask_status {
    /// Every status, for lookups by number. (Not `pub`: cbindgen would
    /// export a public associated constant.)
    const ALL: [rask_status; 18] = [
        rask_status::RASK_OK,
        rask_status::RASK_ERR_NULL_ARG,
        rask_status::RASK_ERR_INVALID_UTF8,
        rask_status::RASK_ERR_INVALID_ARG,
        rask_status::RASK_ERR_TYPE,
        rask_status::RASK_ERR_DECODE,
        rask_status::RASK_ERR_GRAPH,
        rask_status::RASK_ERR_UNKNOWN_FUNCTION,
        rask_status::RASK_ERR_TASK_FAILED,
        rask_status::RASK_ERR_CANCELLED,
        rask_status::RASK_ERR_REGISTRY,
        rask_status::RASK_ERR_PANIC,
        rask_status::RASK_ERR_STATE,
        rask_status::RASK_ERR_CONNECTION,
        rask_status::RASK_ERR_PROTOCOL,
        rask_status::RASK_ERR_DATA,
        rask_status::RASK_TIMEOUT,
        rask_status::RASK_DONE,
    ];

    /// Every status, in increasing order.
    pub fn all() -> impl Iterator<Item = rask_status> {
        Self::ALL.into_iter()
    }

    /// The status with this number, if there is one.
    pub fn from_raw(raw: i64) -> Option<rask_status> {
        Self::ALL.iter().copied().find(|s| *s as i64 == raw)
    }

    /// The status's name with a NUL at the end, for C.
    fn name_nul(self) -> &'static str {
        use rask_status::*;
        match self {
            RASK_OK => "RASK_OK\0",
            RASK_ERR_NULL_ARG => "RASK_ERR_NULL_ARG\0",
            RASK_ERR_INVALID_UTF8 => "RASK_ERR_INVALID_UTF8\0",
            RASK_ERR_INVALID_ARG => "RASK_ERR_INVALID_ARG\0",
            RASK_ERR_TYPE => "RASK_ERR_TYPE\0",
            RASK_ERR_DECODE => "RASK_ERR_DECODE\0",
            RASK_ERR_GRAPH => "RASK_ERR_GRAPH\0",
            RASK_ERR_UNKNOWN_FUNCTION => "RASK_ERR_UNKNOWN_FUNCTION\0",
            RASK_ERR_TASK_FAILED => "RASK_ERR_TASK_FAILED\0",
            RASK_ERR_CANCELLED => "RASK_ERR_CANCELLED\0",
            RASK_ERR_REGISTRY => "RASK_ERR_REGISTRY\0",
            RASK_ERR_PANIC => "RASK_ERR_PANIC\0",
            RASK_ERR_STATE => "RASK_ERR_STATE\0",
            RASK_ERR_CONNECTION => "RASK_ERR_CONNECTION\0",
            RASK_ERR_PROTOCOL => "RASK_ERR_PROTOCOL\0",
            RASK_ERR_DATA => "RASK_ERR_DATA\0",
            RASK_TIMEOUT => "RASK_TIMEOUT\0",
            RASK_DONE => "RASK_DONE\0",
        }
    }

    /// The status's name ("RASK_ERR_GRAPH").
    pub fn name(self) -> &'static str {
        let n = self.name_nul();
        &n[..n.len() - 1]
    }

    /// Whether the status reports a failure (not OK, TIMEOUT or DONE).
    pub fn is_error(self) -> bool {
        !matches!(
            self,
            rask_status::RASK_OK | rask_status::RASK_TIMEOUT | rask_status::RASK_DONE
        )
    }
}

/// The version of the C ABI of this library (`RASK_ABI_VERSION` of the
/// header it was built with). Never fails.
#[no_mangle]
pub extern "C" fn rask_abi_version() -> u32 {
    RASK_ABI_VERSION
}

/// The version of the rask crate this library was built from, e.g. "0.1.0".
/// The string is static: do not free it.
#[no_mangle]
pub extern "C" fn rask_version_string() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The name of a status ("RASK_ERR_GRAPH"), or "RASK_UNKNOWN_STATUS" for a
/// number that is not a `rask_status`. `status` is an `int` so that any
/// number can be passed. The string is static: do not free it.
#[no_mangle]
pub extern "C" fn rask_status_name(status: c_int) -> *const c_char {
    match rask_status::from_raw(status.into()) {
        Some(s) => s.name_nul().as_ptr().cast(),
        None => "RASK_UNKNOWN_STATUS\0".as_ptr().cast(),
    }
}

/// An error inside the C API, before it becomes a `rask_error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub status: rask_status,
    pub message: String,
    /// Prefix the message with the name of the C function that failed
    /// (argument errors, where the function is the context the caller needs;
    /// not graph or task errors, whose messages are complete).
    pub in_call: bool,
    /// For a task that raised on a worker: the exception's type name and
    /// the traceback (empty when the worker reported none).
    pub exception: String,
    pub traceback: String,
}

impl Error {
    /// An error whose message is complete as it is.
    pub fn new(status: rask_status, message: impl Into<String>) -> Error {
        Error {
            status,
            message: message.into(),
            in_call: false,
            exception: String::new(),
            traceback: String::new(),
        }
    }

    /// An error about the arguments of the call; the message gets the name
    /// of the C function in front.
    pub fn call(status: rask_status, message: impl Into<String>) -> Error {
        Error {
            status,
            message: message.into(),
            in_call: true,
            exception: String::new(),
            traceback: String::new(),
        }
    }

    pub fn null(param: &str) -> Error {
        Error::call(
            rask_status::RASK_ERR_NULL_ARG,
            format!("argument '{param}' must not be NULL"),
        )
    }

    pub fn utf8(param: &str) -> Error {
        Error::call(
            rask_status::RASK_ERR_INVALID_UTF8,
            format!("argument '{param}' is not valid UTF-8"),
        )
    }

    pub fn invalid(message: impl Into<String>) -> Error {
        Error::call(rask_status::RASK_ERR_INVALID_ARG, message)
    }

    pub fn kind(message: impl Into<String>) -> Error {
        Error::call(rask_status::RASK_ERR_TYPE, message)
    }

    fn panic(payload: Box<dyn Any + Send>) -> Error {
        let msg = if let Some(s) = payload.downcast_ref::<&str>() {
            (*s).to_owned()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "unknown panic payload".to_owned()
        };
        Error::call(
            rask_status::RASK_ERR_PANIC,
            format!("rask panicked (a bug in rask): {msg}"),
        )
    }
}

impl From<GraphError> for Error {
    fn from(e: GraphError) -> Error {
        let status = match e {
            GraphError::InvalidUtf8 { .. } => rask_status::RASK_ERR_INVALID_UTF8,
            GraphError::Document(_) => rask_status::RASK_ERR_DECODE,
            _ => rask_status::RASK_ERR_GRAPH,
        };
        Error::new(status, e.to_string())
    }
}

impl From<ComputeError> for Error {
    fn from(e: ComputeError) -> Error {
        match e {
            ComputeError::Graph(g) => g.into(),
            ComputeError::UnknownFunction { .. } => {
                Error::new(rask_status::RASK_ERR_UNKNOWN_FUNCTION, e.to_string())
            }
            ComputeError::TaskFailed { .. } => {
                Error::new(rask_status::RASK_ERR_TASK_FAILED, e.to_string())
            }
            ComputeError::Cancelled => Error::new(rask_status::RASK_ERR_CANCELLED, e.to_string()),
        }
    }
}

impl From<RegistryError> for Error {
    fn from(e: RegistryError) -> Error {
        Error::new(rask_status::RASK_ERR_REGISTRY, e.to_string())
    }
}

/// What the body of a fallible export returns.
pub type FfiResult = Result<rask_status, Error>;

/// Runs the body of an export so that no panic unwinds into C.
///
/// `ffi_boundary!(err, { ... })` is for fallible functions: the block
/// evaluates to an [`FfiResult`]; an `Err` (or a panic) is turned into its
/// status and, when `err` is not NULL, stored in `*err` as a new
/// `rask_error`. `ffi_boundary!(default = X, { ... })` is for functions that
/// cannot report errors: a panic returns `X`.
macro_rules! ffi_boundary {
    (default = $default:expr, $body:block) => {{
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(move || $body)) {
            Ok(v) => v,
            Err(_) => $default,
        }
    }};
    ($err:expr, $body:block) => {{
        fn __rask_here() {}
        // SAFETY: `$err` is the export's `err` parameter, NULL or valid.
        unsafe {
            $crate::capi::run_fallible($err, __rask_here, move || -> $crate::capi::FfiResult {
                $body
            })
        }
    }};
}
pub(crate) use ffi_boundary;

/// The engine of [`ffi_boundary!`]. `H` is a function item declared inside
/// the export, whose type name gives the export's name for messages.
///
/// # Safety
///
/// `err` must be NULL or valid for writing a `*mut rask_error`.
#[doc(hidden)]
pub unsafe fn run_fallible<H: Fn()>(
    err: *mut *mut rask_error,
    _here: H,
    body: impl FnOnce() -> FfiResult,
) -> rask_status {
    let e = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(status)) => return status,
        Ok(Err(e)) => e,
        Err(payload) => Error::panic(payload),
    };
    let status = e.status;
    if !err.is_null() {
        let message = if e.in_call {
            format!("{}: {}", export_name(std::any::type_name::<H>()), e.message)
        } else {
            e.message
        };
        // Building the error cannot panic in a way that matters here, but
        // keep the boundary tight anyway.
        let (exception, traceback) = (e.exception, e.traceback);
        if let Ok(boxed) =
            catch_unwind(|| rask_error::boxed_raised(status, &message, &exception, &traceback))
        {
            *err = boxed;
        }
    }
    status
}

/// "rask::capi::graph::rask_graph_add_task::__rask_here" → "rask_graph_add_task".
fn export_name(type_name: &str) -> &str {
    let mut parts = type_name.rsplit("::");
    parts.next();
    parts.next().unwrap_or("rask")
}

// ---------------------------------------------------------------------------
// Argument helpers shared by the handle files.

/// `p` as a shared reference, or `RASK_ERR_NULL_ARG` naming `param`.
pub(crate) unsafe fn req<'a, T>(p: *const T, param: &str) -> Result<&'a T, Error> {
    p.as_ref().ok_or_else(|| Error::null(param))
}

/// `p` as a mutable reference, or `RASK_ERR_NULL_ARG` naming `param`.
pub(crate) unsafe fn req_mut<'a, T>(p: *mut T, param: &str) -> Result<&'a mut T, Error> {
    p.as_mut().ok_or_else(|| Error::null(param))
}

/// A NUL-terminated UTF-8 string argument.
pub(crate) unsafe fn req_str<'a>(p: *const c_char, param: &str) -> Result<&'a str, Error> {
    if p.is_null() {
        return Err(Error::null(param));
    }
    CStr::from_ptr(p).to_str().map_err(|_| Error::utf8(param))
}

/// A byte range argument: NULL is allowed only when `len` is 0.
pub(crate) unsafe fn req_bytes<'a>(
    p: *const u8,
    len: usize,
    param: &str,
) -> Result<&'a [u8], Error> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Error::null(param));
    }
    Ok(std::slice::from_raw_parts(p, len))
}

/// An array argument of `n` elements: NULL is allowed only when `n` is 0.
pub(crate) unsafe fn req_slice<'a, T>(
    p: *const T,
    n: usize,
    param: &str,
) -> Result<&'a [T], Error> {
    if n == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Error::null(param));
    }
    Ok(std::slice::from_raw_parts(p, n))
}

/// The `tls_ca_file`, `tls_cert_file` and `tls_key_file` fields of an
/// options struct: all three (loaded now) or none (NULL, no TLS). Anything
/// else, or files that do not load, is `RASK_ERR_INVALID_ARG` with a
/// message naming the file.
pub(crate) unsafe fn tls_options(
    ca: *const c_char,
    cert: *const c_char,
    key: *const c_char,
) -> Result<Option<crate::protocol::TlsConfig>, Error> {
    let path = |p: *const c_char, name: &str| -> Result<Option<&std::path::Path>, Error> {
        if p.is_null() {
            Ok(None)
        } else {
            req_str(p, name).map(|s| Some(std::path::Path::new(s)))
        }
    };
    crate::protocol::TlsConfig::from_options(
        path(ca, "options->tls_ca_file")?,
        path(cert, "options->tls_cert_file")?,
        path(key, "options->tls_key_file")?,
    )
    .map_err(|e| Error::new(rask_status::RASK_ERR_INVALID_ARG, e.0))
}

/// The dashboard of a scheduler's options: none with `no_dashboard`, else
/// `address` (NULL: the default, `DEFAULT_DASHBOARD`).
pub(crate) unsafe fn dashboard_option(
    address: *const c_char,
    no_dashboard: bool,
) -> Result<Option<String>, Error> {
    if no_dashboard {
        return Ok(None);
    }
    if address.is_null() {
        return Ok(Some(crate::scheduler::DEFAULT_DASHBOARD.into()));
    }
    Ok(Some(
        req_str(address, "options->dashboard_address")?.to_owned(),
    ))
}

/// An array of `n` NUL-terminated UTF-8 strings (`keys`, `refs`).
pub(crate) unsafe fn req_strs<'a>(
    p: *const *const c_char,
    n: usize,
    param: &str,
) -> Result<Vec<&'a str>, Error> {
    let ptrs = req_slice(p, n, param)?;
    ptrs.iter()
        .enumerate()
        .map(|(i, &s)| {
            if s.is_null() {
                return Err(Error::null(&format!("{param}[{i}]")));
            }
            CStr::from_ptr(s)
                .to_str()
                .map_err(|_| Error::utf8(&format!("{param}[{i}]")))
        })
        .collect()
}

/// A C string for a Rust string that may contain NUL bytes (cut at the first).
pub(crate) fn c_string(s: &str) -> std::ffi::CString {
    let end = s.find('\0').unwrap_or(s.len());
    std::ffi::CString::new(&s[..end]).expect("cut at the first NUL")
}

/// Converts a timeout in milliseconds (negative = forever).
pub(crate) fn timeout(ms: i64) -> Option<std::time::Duration> {
    u64::try_from(ms).ok().map(std::time::Duration::from_millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_names_come_from_the_type_name() {
        fn __rask_here() {}
        fn name_of<H: Fn()>(_: H) -> &'static str {
            std::any::type_name::<H>()
        }
        let n = name_of(__rask_here);
        assert_eq!(export_name(n), "export_names_come_from_the_type_name");
    }

    #[test]
    fn every_status_round_trips_through_its_number() {
        for s in rask_status::all() {
            assert_eq!(rask_status::from_raw(s as i64), Some(s));
            let name = unsafe { CStr::from_ptr(rask_status_name(s as c_int)) };
            assert_eq!(name.to_str().unwrap(), s.name());
        }
        assert_eq!(rask_status::from_raw(16), None);
        let unknown = unsafe { CStr::from_ptr(rask_status_name(-7)) };
        assert_eq!(unknown.to_str().unwrap(), "RASK_UNKNOWN_STATUS");
    }

    unsafe fn panicking_export(err: *mut *mut rask_error) -> rask_status {
        ffi_boundary!(err, {
            let v: Vec<u8> = Vec::new();
            if v.is_empty() {
                panic!("index {} out of range", 3);
            }
            Ok(rask_status::RASK_OK)
        })
    }

    #[test]
    fn a_panic_becomes_an_error_naming_the_export() {
        let mut err = std::ptr::null_mut();
        let st = unsafe { panicking_export(&mut err) };
        assert_eq!(st, rask_status::RASK_ERR_PANIC);
        let e = unsafe { Box::from_raw(err) };
        assert_eq!(e.status(), rask_status::RASK_ERR_PANIC);
        assert!(e.message().starts_with("panicking_export: rask panicked"));
        assert!(e.message().ends_with("index 3 out of range"));
        // Without an error slot, only the status.
        assert_eq!(
            unsafe { panicking_export(std::ptr::null_mut()) },
            rask_status::RASK_ERR_PANIC
        );
        // The infallible form returns its default.
        let v: u32 = ffi_boundary!(default = 7, {
            if err.is_null() {
                1
            } else {
                panic!("boom")
            }
        });
        assert_eq!(v, 7);
    }

    #[test]
    fn error_messages_show_the_export_and_the_parameter() {
        let mut err = std::ptr::null_mut();
        let st = unsafe {
            crate::capi::rask_graph_add_value(
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null_mut(),
                &mut err,
            )
        };
        assert_eq!(st, rask_status::RASK_ERR_NULL_ARG);
        let e = unsafe { Box::from_raw(err) };
        assert_eq!(
            e.message(),
            "rask_graph_add_value: argument 'g' must not be NULL"
        );
    }
}

//! `rask_future`: a handle on a key's value in a cluster.

use super::client::{client_error, Liveness};
use super::graph::{arg_into_c, rask_arg, ArgSpec};
use super::value::into_c;
use super::{
    c_string, ffi_boundary, rask_error, rask_status, rask_value, req, req_mut, req_slice, timeout,
    Error,
};
use crate::client::{Future, Status};
use std::ffi::{c_char, CString};
use std::ptr;
use std::sync::Arc;

/// A future: a handle on the value of a key in the cluster, made by a
/// client call (`rask_client_submit`, `_map`, `_compute`, `_scatter`) or by
/// `rask_future_clone`, freed with `rask_future_free`.
///
/// Each handle is one reference to its key: when the last reference of a
/// client to a key is freed, the scheduler is told the client no longer
/// wants it, and it may be forgotten and its data freed. A future may be
/// used from any thread; several threads may use the same future at once
/// (e.g. wait on it), but `rask_future_free` must come after all of them.
pub struct rask_future {
    pub(crate) future: Future,
    pub(crate) life: Arc<Liveness>,
    key: CString,
}

/// Where a future's key stands (see `rask_future_status`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum rask_future_state {
    /// Not computed yet (waiting, queued or running).
    RASK_FUTURE_PENDING = 0,
    /// The value is in a worker's memory: `rask_future_result` gives it.
    RASK_FUTURE_FINISHED = 1,
    /// The task (or one it depends on) failed, or the connection to the
    /// scheduler was lost, or the client was closed or freed.
    RASK_FUTURE_ERROR = 2,
    /// The key was cancelled.
    RASK_FUTURE_CANCELLED = 3,
}

impl rask_future {
    pub(crate) fn boxed(future: Future, life: &Arc<Liveness>) -> *mut rask_future {
        let key = c_string(future.key());
        Box::into_raw(Box::new(rask_future {
            future,
            life: Arc::clone(life),
            key,
        }))
    }

    fn what(&self) -> String {
        format!("future '{}'", self.future.key())
    }
}

/// An array argument of `n` futures (borrowed), each checked for NULL.
pub(crate) unsafe fn futures_of<'a>(
    p: *const *const rask_future,
    n: usize,
    param: &str,
) -> Result<Vec<&'a rask_future>, Error> {
    req_slice(p, n, param)?
        .iter()
        .enumerate()
        .map(|(i, &f)| req(f, &format!("{param}[{i}]")))
        .collect()
}

/// The future's key, NUL-terminated, borrowed from `future` (valid until it
/// is freed). Returns NULL when `future` is NULL.
#[no_mangle]
pub unsafe extern "C" fn rask_future_key(future: *const rask_future) -> *const c_char {
    future.as_ref().map_or(ptr::null(), |f| f.key.as_ptr())
}

/// Where the future's key stands now (does not wait). A NULL `future`, and
/// a pending future whose client was closed, freed or lost its scheduler, give
/// `RASK_FUTURE_ERROR`.
#[no_mangle]
pub unsafe extern "C" fn rask_future_status(future: *const rask_future) -> rask_future_state {
    use rask_future_state::*;
    ffi_boundary!(default = RASK_FUTURE_ERROR, {
        match future.as_ref().map(|f| f.future.status()) {
            Some(Status::Pending) => RASK_FUTURE_PENDING,
            Some(Status::Finished) => RASK_FUTURE_FINISHED,
            Some(Status::Cancelled) => RASK_FUTURE_CANCELLED,
            Some(Status::Error) | None => RASK_FUTURE_ERROR,
        }
    })
}

/// Waits up to `timeout_ms` milliseconds (negative: forever; 0: just look)
/// for the future's value and sets `*out` to a copy the caller owns (free
/// with `rask_value_free`), fetched from a worker if needed.
///
/// Returns `RASK_OK`; `RASK_TIMEOUT` if the key is still pending at the
/// deadline (`*out` NULL); `RASK_ERR_TASK_FAILED` if its task or one it
/// depends on failed, with the message `task 'KEY' failed because its
/// dependency 'FAILED' (FUNC) failed on WORKER: MESSAGE` (or `task 'KEY'
/// (FUNC) failed on WORKER: MESSAGE` when the key's own task failed);
/// `RASK_ERR_CANCELLED`; `RASK_ERR_CONNECTION` when the scheduler is gone;
/// `RASK_ERR_STATE` when the future's client was closed or freed.
#[no_mangle]
pub unsafe extern "C" fn rask_future_result(
    future: *const rask_future,
    timeout_ms: i64,
    out: *mut *mut rask_value,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let out = req_mut(out, "out")?;
        *out = ptr::null_mut();
        let f = req(future, "future")?;
        f.life.check(&f.what())?;
        if !f.future.wait(timeout(timeout_ms)) {
            return Ok(rask_status::RASK_TIMEOUT);
        }
        // Done: the value (or the failure) is known; fetching it may still
        // take a moment.
        let v = f.future.result(None).map_err(client_error)?;
        *out = into_c(v);
        Ok(rask_status::RASK_OK)
    })
}

/// The last warning the scheduler sent about the future's key, such as
/// "no connected worker offers the function 'incc' ..." (the task waits for
/// a worker that does, or errs after the scheduler's no-workers timeout).
/// Does not wait. Sets `*out` to a string value the caller owns (free with
/// `rask_value_free`), or to NULL when there is no warning. The warning
/// stays readable after the future's client was closed or freed.
///
/// Returns `RASK_OK`, or `RASK_ERR_NULL_ARG` when `future` or `out` is NULL.
#[no_mangle]
pub unsafe extern "C" fn rask_future_warning(
    future: *const rask_future,
    out: *mut *mut rask_value,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let out = req_mut(out, "out")?;
        *out = ptr::null_mut();
        let f = req(future, "future")?;
        if let Some(w) = f.future.warning() {
            *out = into_c(crate::value::Value::Str(w));
        }
        Ok(rask_status::RASK_OK)
    })
}

/// Another reference to the same key, which the caller owns and frees with
/// `rask_future_free` (the key stays wanted while any reference lives).
/// Returns NULL when `future` is NULL.
#[no_mangle]
pub unsafe extern "C" fn rask_future_clone(future: *const rask_future) -> *mut rask_future {
    ffi_boundary!(default = ptr::null_mut(), {
        match future.as_ref() {
            Some(f) => rask_future::boxed(f.future.clone(), &f.life),
            None => ptr::null_mut(),
        }
    })
}

/// Frees a future. When it was the client's last reference to its key, the
/// scheduler is told (in the background) that the client no longer wants
/// the key. NULL is ignored. Futures may be freed before or after their
/// client.
#[no_mangle]
pub unsafe extern "C" fn rask_future_free(future: *mut rask_future) {
    ffi_boundary!(default = (), {
        if !future.is_null() {
            drop(Box::from_raw(future));
        }
    })
}

/// A task argument that is the value of `future`'s key: the task runs once
/// the key is in memory, on a worker that fetches the value if it does not
/// hold it. `future` is borrowed (the argument holds its own reference to
/// the key until it is consumed or freed). The caller owns the result,
/// which `rask_client_submit`, `rask_client_map` or `rask_arg_list`
/// consume, or `rask_arg_free` frees. Returns NULL when `future` is NULL.
///
/// Added to a `rask_graph` (`rask_graph_add_task`), it is a reference to
/// the future's key by name.
#[no_mangle]
pub unsafe extern "C" fn rask_arg_future(future: *const rask_future) -> *mut rask_arg {
    ffi_boundary!(default = ptr::null_mut(), {
        match future.as_ref() {
            Some(f) => arg_into_c(ArgSpec::Future(f.future.clone())),
            None => ptr::null_mut(),
        }
    })
}

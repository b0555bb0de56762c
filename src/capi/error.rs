//! `rask_error`: an owned error (status + message) handed to C.

use super::{ffi_boundary, rask_status};
use std::ffi::{c_char, c_int, CStr, CString};

/// An error: a status and a message. Made by rask (through the `err`
/// parameter of a fallible call) or by `rask_error_new`; always freed with
/// `rask_error_free`.
pub struct rask_error {
    status: rask_status,
    message: CString,
    /// Set for a task that raised on a worker and reported it.
    exception: Option<CString>,
    traceback: Option<CString>,
}

/// `s` for C (NUL bytes shown as `\0`), or None when it is empty.
fn c_text(s: &str) -> Option<CString> {
    (!s.is_empty()).then(|| CString::new(s.replace('\0', "\\0")).expect("NULs were replaced"))
}

impl rask_error {
    /// A new heap-allocated error, as C receives it. NUL bytes in the
    /// message are shown as `\0`.
    pub(crate) fn boxed(status: rask_status, message: &str) -> *mut rask_error {
        Self::boxed_raised(status, message, "", "")
    }

    /// As `boxed`, with the exception's type name and traceback of a task
    /// that raised (either may be empty: not reported).
    pub(crate) fn boxed_raised(
        status: rask_status,
        message: &str,
        exception: &str,
        traceback: &str,
    ) -> *mut rask_error {
        let message = CString::new(message.replace('\0', "\\0")).expect("NULs were replaced");
        Box::into_raw(Box::new(rask_error {
            status,
            message,
            exception: c_text(exception),
            traceback: c_text(traceback),
        }))
    }

    pub fn status(&self) -> rask_status {
        self.status
    }

    pub fn message(&self) -> &str {
        self.message.to_str().unwrap_or("")
    }

    /// Takes ownership of an error made for C (e.g. by a callback).
    pub(crate) unsafe fn take(p: *mut rask_error) -> Option<Box<rask_error>> {
        if p.is_null() {
            None
        } else {
            Some(Box::from_raw(p))
        }
    }
}

/// The error's message: NUL-terminated UTF-8, borrowed from `err` and valid
/// until `err` is freed. Returns "" when `err` is NULL.
#[no_mangle]
pub unsafe extern "C" fn rask_error_message(err: *const rask_error) -> *const c_char {
    match err.as_ref() {
        Some(e) => e.message.as_ptr(),
        None => "\0".as_ptr().cast(),
    }
}

/// For a task that failed on a worker whose host reported an exception
/// (`rask_task_fail_exception`; Python and Julia workers do): the
/// exception's type name, e.g. "ValueError", NUL-terminated UTF-8, borrowed
/// from `err` and valid until `err` is freed. Returns NULL when `err` is
/// NULL or carries no exception (any other error, or a task failed with
/// `rask_task_fail`).
#[no_mangle]
pub unsafe extern "C" fn rask_error_exception(err: *const rask_error) -> *const c_char {
    match err.as_ref().and_then(|e| e.exception.as_ref()) {
        Some(s) => s.as_ptr(),
        None => std::ptr::null(),
    }
}

/// For a task that failed on a worker whose host reported where: the
/// traceback (remote backtrace) as the worker's host formatted it, as
/// multi-line NUL-terminated UTF-8, borrowed from `err` and valid until
/// `err` is freed. Returns NULL when `err` is NULL or carries no traceback.
#[no_mangle]
pub unsafe extern "C" fn rask_error_traceback(err: *const rask_error) -> *const c_char {
    match err.as_ref().and_then(|e| e.traceback.as_ref()) {
        Some(s) => s.as_ptr(),
        None => std::ptr::null(),
    }
}

/// The error's status. Returns `RASK_OK` when `err` is NULL.
#[no_mangle]
pub unsafe extern "C" fn rask_error_status(err: *const rask_error) -> rask_status {
    match err.as_ref() {
        Some(e) => e.status,
        None => rask_status::RASK_OK,
    }
}

/// Frees an error made by rask or by `rask_error_new`. NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn rask_error_free(err: *mut rask_error) {
    ffi_boundary!(default = (), {
        drop(rask_error::take(err));
    })
}

/// A new error, for a C callback to report why it failed (set it in the
/// callback's `err` parameter; rask takes ownership and frees it).
///
/// `status` is a `rask_status` value, taken as `int`; a number that is not a
/// `rask_status` is stored as `RASK_ERR_TASK_FAILED`. `message` is copied; it
/// may be NULL (stored as "") and should be UTF-8 (invalid bytes are replaced
/// with U+FFFD). The caller owns the result and frees it with
/// `rask_error_free`, unless it hands it to rask. Returns NULL only if rask
/// panicked.
#[no_mangle]
pub unsafe extern "C" fn rask_error_new(status: c_int, message: *const c_char) -> *mut rask_error {
    ffi_boundary!(default = std::ptr::null_mut(), {
        let status =
            rask_status::from_raw(status.into()).unwrap_or(rask_status::RASK_ERR_TASK_FAILED);
        let message = if message.is_null() {
            String::new()
        } else {
            CStr::from_ptr(message).to_string_lossy().into_owned()
        };
        rask_error::boxed(status, &message)
    })
}

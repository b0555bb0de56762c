//! `rask_task`: a task of a pulled function, handed to the host. One handle
//! for both sources of pulled tasks: a local background computation
//! (`rask_computation_next_task`) and a worker in a cluster
//! (`rask_worker_next_task`), so a host writes its pull loop once.

use super::value::{as_c, take as take_value};
use super::{c_string, ffi_boundary, rask_error, rask_status, rask_value, Error};
use crate::local::PulledTask;
use crate::registry::{Failure, FnResult};
use crate::value::Value;
use crate::worker::WorkerTask;
use std::ffi::{c_char, CStr, CString};
use std::ptr;

/// A task of a pulled function, handed to the host by
/// `rask_computation_next_task` or `rask_worker_next_task`. Run it with its
/// arguments and end it with exactly one of `rask_task_complete`,
/// `rask_task_fail` or `rask_task_free`; each consumes it. A task may be
/// handled on any thread, and may outlive the `rask_computation` or
/// `rask_worker` it came from (its result is then discarded).
pub struct rask_task {
    source: Source,
    key: CString,
    func: CString,
}

/// Where a task came from; each kind knows how to hand its result back.
enum Source {
    Local(PulledTask),
    Worker(WorkerTask),
}

impl rask_task {
    /// A task of a local computation, handed to C.
    pub(crate) fn local(task: PulledTask) -> *mut rask_task {
        let key = c_string(task.key());
        let func = c_string(task.func());
        Box::into_raw(Box::new(rask_task {
            source: Source::Local(task),
            key,
            func,
        }))
    }

    /// A task of a worker's pulled function, handed to C.
    pub(crate) fn worker(task: WorkerTask) -> *mut rask_task {
        let key = c_string(task.key());
        let func = c_string(task.func());
        Box::into_raw(Box::new(rask_task {
            source: Source::Worker(task),
            key,
            func,
        }))
    }

    /// The worker task behind it; `None` for a task of a local
    /// computation.
    pub(crate) fn worker_task(&self) -> Option<&WorkerTask> {
        match &self.source {
            Source::Local(_) => None,
            Source::Worker(t) => Some(t),
        }
    }

    fn args(&self) -> &[Value] {
        match &self.source {
            Source::Local(t) => t.args(),
            Source::Worker(t) => t.args(),
        }
    }

    /// Hands the result back; false when nobody wants it any more.
    fn complete(self, result: FnResult) -> bool {
        match self.source {
            Source::Local(t) => t.complete(result),
            Source::Worker(t) => t.complete(result),
        }
    }

    /// Fails the task. A worker reports the exception's type name and
    /// traceback to the scheduler; a local computation has its host right
    /// here, which has them already, and keeps the message.
    fn fail(self, failure: Failure) -> bool {
        match self.source {
            Source::Local(t) => t.complete(Err(failure.message)),
            Source::Worker(t) => t.fail(failure),
        }
    }
}

/// `p` as an owned string: "" for NULL (with `Error::null(param)` when
/// `required`), lossily decoded with `Error::utf8(param)` when not UTF-8.
unsafe fn lossy(p: *const c_char, param: &str, required: bool) -> (String, Option<Error>) {
    if p.is_null() {
        return (String::new(), required.then(|| Error::null(param)));
    }
    let m = CStr::from_ptr(p);
    match m.to_str() {
        Ok(s) => (s.to_owned(), None),
        Err(_) => (m.to_string_lossy().into_owned(), Some(Error::utf8(param))),
    }
}

unsafe fn take_task(t: *mut rask_task) -> Option<rask_task> {
    if t.is_null() {
        None
    } else {
        Some(*Box::from_raw(t))
    }
}

/// The task's key, NUL-terminated, borrowed from `task` and valid until it
/// is consumed. Returns NULL when `task` is NULL.
#[no_mangle]
pub unsafe extern "C" fn rask_task_key(task: *const rask_task) -> *const c_char {
    task.as_ref().map_or(ptr::null(), |t| t.key.as_ptr())
}

/// The name of the function to run, NUL-terminated, borrowed from `task` and
/// valid until it is consumed. Returns NULL when `task` is NULL.
#[no_mangle]
pub unsafe extern "C" fn rask_task_func(task: *const rask_task) -> *const c_char {
    task.as_ref().map_or(ptr::null(), |t| t.func.as_ptr())
}

/// The number of arguments of the task; 0 when `task` is NULL.
#[no_mangle]
pub unsafe extern "C" fn rask_task_nargs(task: *const rask_task) -> usize {
    task.as_ref().map_or(0, |t| t.args().len())
}

/// Argument `i` of the task, borrowed from `task` and valid until it is
/// consumed (clone it with `rask_value_clone` to keep it). Returns NULL when
/// `task` is NULL or `i` is out of range.
#[no_mangle]
pub unsafe extern "C" fn rask_task_arg(task: *const rask_task, i: usize) -> *const rask_value {
    match task.as_ref().and_then(|t| t.args().get(i)) {
        Some(v) => as_c(v),
        None => ptr::null(),
    }
}

/// Completes the task with `result`. Both `task` and `result` are consumed,
/// even when the call fails. Returns `RASK_OK`, or `RASK_DONE` if nobody
/// wants the result any more (its computation had already failed or been
/// cancelled; its worker has stopped or the scheduler no longer wants the
/// task) and it was discarded. A NULL `result` fails the task and returns
/// `RASK_ERR_NULL_ARG`.
#[no_mangle]
pub unsafe extern "C" fn rask_task_complete(
    task: *mut rask_task,
    result: *mut rask_value,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let result = take_value(result);
        let task = take_task(task).ok_or_else(|| Error::null("task"))?;
        let Some(v) = result else {
            task.complete(Err("rask_task_complete was given a NULL result".into()));
            return Err(Error::null("result"));
        };
        Ok(match task.complete(Ok(v)) {
            true => rask_status::RASK_OK,
            false => rask_status::RASK_DONE,
        })
    })
}

/// Fails the task with `message` (NUL-terminated UTF-8, copied). For a task
/// of a local computation, the computation then fails with
/// `RASK_ERR_TASK_FAILED` and a message naming the task; for a task of a
/// worker, the scheduler marks the task as erred and the clients that want
/// it (or keys depending on it) get the message. `task` is consumed, even
/// when the call fails: a NULL `message` still fails the task (with a
/// generic message) and returns `RASK_ERR_NULL_ARG`; one that is not UTF-8
/// fails it with the bytes replaced and returns `RASK_ERR_INVALID_UTF8`.
/// Otherwise returns `RASK_OK`, or `RASK_DONE` if nobody wants the result
/// any more (as for `rask_task_complete`).
#[no_mangle]
pub unsafe extern "C" fn rask_task_fail(
    task: *mut rask_task,
    message: *const c_char,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let task = take_task(task).ok_or_else(|| Error::null("task"))?;
        let (msg, problem) = if message.is_null() {
            (
                "the host failed the task without a message".to_owned(),
                Some(Error::null("message")),
            )
        } else {
            let m = CStr::from_ptr(message);
            match m.to_str() {
                Ok(s) => (s.to_owned(), None),
                Err(_) => (
                    m.to_string_lossy().into_owned(),
                    Some(Error::utf8("message")),
                ),
            }
        };
        let running = task.complete(Err(msg));
        if let Some(e) = problem {
            return Err(e);
        }
        Ok(match running {
            true => rask_status::RASK_OK,
            false => rask_status::RASK_DONE,
        })
    })
}

/// Fails the task as `rask_task_fail` does, with what a host that has
/// exceptions knows besides the message: `exception`, the exception's type
/// name (e.g. "ValueError"), and `traceback`, where it was raised as
/// multi-line text. All three are NUL-terminated UTF-8, copied; `exception`
/// and `traceback` may be NULL (not known). For a task of a worker both
/// travel with `task-erred` to the scheduler and in `key-erred` to the
/// clients that want the key, where `rask_error_exception` and
/// `rask_error_traceback` read them; a local computation keeps only the
/// message (its host has the exception already). `task` is consumed, even
/// when the call fails: a NULL `message` still fails the task (with a
/// generic message) and returns `RASK_ERR_NULL_ARG`; text that is not UTF-8
/// fails it with the bytes replaced and returns `RASK_ERR_INVALID_UTF8`.
/// Otherwise returns `RASK_OK`, or `RASK_DONE` if nobody wants the result
/// any more.
#[no_mangle]
pub unsafe extern "C" fn rask_task_fail_exception(
    task: *mut rask_task,
    message: *const c_char,
    exception: *const c_char,
    traceback: *const c_char,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let task = take_task(task).ok_or_else(|| Error::null("task"))?;
        let (mut message, p1) = lossy(message, "message", true);
        if message.is_empty() && p1.is_some() {
            message = "the host failed the task without a message".to_owned();
        }
        let (exception, p2) = lossy(exception, "exception", false);
        let (traceback, p3) = lossy(traceback, "traceback", false);
        let running = task.fail(Failure {
            message,
            exception,
            traceback,
        });
        if let Some(e) = p1.or(p2).or(p3) {
            return Err(e);
        }
        Ok(match running {
            true => rask_status::RASK_OK,
            false => rask_status::RASK_DONE,
        })
    })
}

/// Abandons a task without a result: it fails (a local computation fails
/// with "the task was dropped without a result"; a worker reports the task
/// as erred, "abandoned"). NULL is ignored.
/// Use it when the host cannot run the task at all; prefer `rask_task_fail`
/// with a message.
#[no_mangle]
pub unsafe extern "C" fn rask_task_free(task: *mut rask_task) {
    ffi_boundary!(default = (), {
        drop(take_task(task));
    })
}

//! Tasks that submit tasks: from inside a running task, a client to the
//! task's own scheduler, and `secede`/`rejoin` so that a task waiting on
//! the tasks it submitted gives its slot back meanwhile.
//!
//! Two kinds of running task reach C: a C callback run on a worker's
//! threads (`rask_registry_add_callback`), which finds its worker through
//! the thread it runs on (`rask_callback_*`), and a task of a pulled
//! function that the host took with `rask_worker_next_task`
//! (`rask_task_*`, on the `rask_task` handle).

use super::client::rask_client;
use super::task::rask_task;
use super::{client::client_error, ffi_boundary, rask_error, rask_status, req, Error};
use crate::worker::SecedeError;

fn not_in_callback() -> Error {
    Error::call(
        rask_status::RASK_ERR_STATE,
        "not inside a C callback run by a worker (call it from the callback's own thread, \
         during the call)",
    )
}

fn secede_error(e: SecedeError) -> Error {
    match e {
        SecedeError::NotInTask => not_in_callback(),
        SecedeError::Thread(m) => Error::call(
            rask_status::RASK_ERR_STATE,
            format!("could not start a thread to take over the slot: {m}"),
        ),
    }
}

/// Writes a new task-client handle to `*out`.
unsafe fn write_client(
    out: *mut *mut rask_client,
    client: Result<crate::client::Client, crate::client::ClientError>,
) -> Result<rask_status, Error> {
    let c = client.map_err(client_error)?;
    *out = rask_client::shared(c);
    Ok(rask_status::RASK_OK)
}

/// From inside a C callback that a worker runs (`rask_registry_add_callback`
/// on a `rask_worker`), a client to that worker's scheduler, to submit
/// tasks, pass futures, wait on results and use coordination objects like
/// any client. Sets `*client` to a new handle that the caller owns and
/// frees with `rask_client_free` (before the callback returns, or later
/// from any thread); it may also keep it. The connection behind it is the
/// worker's, shared by all its tasks (made on first use): freeing or closing
/// the handle ends only the handle (and the futures made through it), never
/// the connection, which the worker closes when it stops. Tasks submitted
/// through it run before work submitted earlier, newest first (see
/// `update-graph` in docs/protocol.md), so recursive submission goes depth
/// first. A callback that waits on what it submitted should
/// `rask_callback_secede` first, or the worker's threads can all end up
/// waiting.
///
/// Returns `RASK_ERR_NULL_ARG` for a NULL `client`, `RASK_ERR_STATE`
/// outside such a callback (on another thread, in a local computation's
/// callback, after it returned), `RASK_ERR_CONNECTION` when the scheduler
/// cannot be reached. `*client` is NULL on failure.
#[no_mangle]
pub unsafe extern "C" fn rask_callback_client(
    client: *mut *mut rask_client,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        if client.is_null() {
            return Err(Error::null("client"));
        }
        *client = std::ptr::null_mut();
        match crate::worker::task_client() {
            Ok(c) => write_client(client, Ok(c)),
            Err(None) => Err(not_in_callback()),
            Err(Some(e)) => Err(client_error(e)),
        }
    })
}

/// From inside a C callback that a worker runs: the task gives its slot
/// back while it waits (on tasks it submitted through
/// `rask_callback_client`). Another thread takes over the slot (and the
/// tasks queued behind this one), so the worker keeps running other tasks
/// meanwhile, and the scheduler is told (`long-running`) that the task no
/// longer occupies the worker. Call `rask_callback_rejoin` before working
/// again; a callback that returns without rejoining is fine (its thread
/// then ends, or takes a free slot). Seceding twice does nothing.
///
/// Returns `RASK_OK`; `RASK_ERR_STATE` outside such a callback;
/// `RASK_ERR_STATE` too when no thread could be started (the task then
/// keeps its slot).
#[no_mangle]
pub unsafe extern "C" fn rask_callback_secede(err: *mut *mut rask_error) -> rask_status {
    ffi_boundary!(err, {
        crate::worker::secede().map_err(secede_error)?;
        Ok(rask_status::RASK_OK)
    })
}

/// From inside a C callback that a worker runs, after
/// `rask_callback_secede`: waits until one of the worker's threads is free
/// and takes its slot back (a thread hands it over between two of its
/// tasks), so the task goes on with its share of the worker. Does nothing
/// when the task has not seceded. Returns at once if the worker stops
/// meanwhile. Returns `RASK_OK`, or `RASK_ERR_STATE` outside such a
/// callback.
#[no_mangle]
pub unsafe extern "C" fn rask_callback_rejoin(err: *mut *mut rask_error) -> rask_status {
    ffi_boundary!(err, {
        crate::worker::rejoin().map_err(secede_error)?;
        Ok(rask_status::RASK_OK)
    })
}

/// For a task of a pulled function taken from a worker
/// (`rask_worker_next_task`): a client to the worker's scheduler, exactly
/// as `rask_callback_client` gives a callback (the same shared connection;
/// the caller owns the new handle `*client` and frees it with
/// `rask_client_free`, which never closes the connection). `task` is
/// borrowed; the handle may outlive it.
///
/// Returns `RASK_ERR_NULL_ARG` for a NULL `task` or `client`,
/// `RASK_ERR_STATE` for a task of a local computation
/// (`rask_computation_next_task`: it has no scheduler) or when the worker
/// has stopped, `RASK_ERR_CONNECTION` when the scheduler cannot be reached.
/// `*client` is NULL on failure.
#[no_mangle]
pub unsafe extern "C" fn rask_task_client(
    task: *const rask_task,
    client: *mut *mut rask_client,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        if client.is_null() {
            return Err(Error::null("client"));
        }
        *client = std::ptr::null_mut();
        let t = req(task, "task")?;
        let Some(wt) = t.worker_task() else {
            return Err(Error::call(
                rask_status::RASK_ERR_STATE,
                "a task of a local computation has no scheduler",
            ));
        };
        write_client(client, wt.client())
    })
}

/// For a task of a pulled function taken from a worker: the task waits
/// (on tasks it submitted) without holding a slot. The scheduler is told
/// (`long-running`, once per run) and may send the worker more tasks; the
/// host keeps calling `rask_worker_next_task` on another of its threads
/// meanwhile (pull mode's threads are the host's: rask's Python and Julia
/// workers start another one), and before the task goes on the host waits
/// until one of its own threads is free (rejoin is the host's part, no
/// call). `task` is borrowed.
///
/// Returns `RASK_OK`; `RASK_DONE` when nobody wants the task any more
/// (freed meanwhile, or the worker stopped): nothing was sent;
/// `RASK_ERR_NULL_ARG` for a NULL `task`; `RASK_ERR_STATE` for a task of a
/// local computation.
#[no_mangle]
pub unsafe extern "C" fn rask_task_secede(
    task: *const rask_task,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let t = req(task, "task")?;
        let Some(wt) = t.worker_task() else {
            return Err(Error::call(
                rask_status::RASK_ERR_STATE,
                "a task of a local computation has no scheduler to tell",
            ));
        };
        Ok(match wt.secede() {
            true => rask_status::RASK_OK,
            false => rask_status::RASK_DONE,
        })
    })
}

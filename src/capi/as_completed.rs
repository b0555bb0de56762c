//! `rask_as_completed`: futures in the order they finish.

use super::client::{rask_client, Liveness};
use super::future::{futures_of, rask_future};
use super::{ffi_boundary, rask_error, rask_status, req, req_mut, timeout, Error};
use crate::client::{AsCompleted, Client};
use std::ptr;
use std::sync::Arc;

/// An iterator over futures in the order they finish, to which more
/// futures can be added while iterating. Made by `rask_as_completed_new`,
/// freed with `rask_as_completed_free`. `rask_as_completed_add` may be
/// called from another thread while one waits in `rask_as_completed_next`;
/// `rask_as_completed_free` must come after all other calls.
pub struct rask_as_completed {
    ac: AsCompleted,
    client: Client,
    life: Arc<Liveness>,
}

impl rask_as_completed {
    fn check(&self, f: &rask_future, param: &str) -> Result<(), Error> {
        if !f.future.belongs_to(&self.client.inner) {
            return Err(Error::invalid(format!(
                "{param} (future '{}') belongs to another client",
                f.future.key()
            )));
        }
        Ok(())
    }
}

/// A new iterator over the `n` futures in `futures` (borrowed: the
/// iterator takes its own references; `futures` may be NULL when `n` is 0),
/// which must all be of `client`. On success `*out` is set to an iterator
/// the caller owns and frees with `rask_as_completed_free`. A future of
/// another client fails the call with `RASK_ERR_INVALID_ARG`.
#[no_mangle]
pub unsafe extern "C" fn rask_as_completed_new(
    client: *const rask_client,
    futures: *const *const rask_future,
    n: usize,
    out: *mut *mut rask_as_completed,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let out = req_mut(out, "out")?;
        *out = ptr::null_mut();
        let c = req(client, "client")?;
        let fs = futures_of(futures, n, "futures")?;
        c.life.check("this call")?;
        let ac = rask_as_completed {
            ac: c.client.as_completed(Vec::new()),
            client: c.client.clone(),
            life: Arc::clone(&c.life),
        };
        for (i, f) in fs.iter().enumerate() {
            ac.check(f, &format!("futures[{i}]"))?;
        }
        for f in fs {
            ac.ac.add(f.future.clone());
        }
        *out = Box::into_raw(Box::new(ac));
        Ok(rask_status::RASK_OK)
    })
}

/// Adds `future` (borrowed: the iterator takes its own reference) to be
/// yielded once it is done, even if it is done already. May be called
/// while iterating, also from another thread. Fails with
/// `RASK_ERR_INVALID_ARG` for a future of another client.
#[no_mangle]
pub unsafe extern "C" fn rask_as_completed_add(
    ac: *const rask_as_completed,
    future: *const rask_future,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let ac = req(ac, "ac")?;
        let f = req(future, "future")?;
        ac.life.check("this as_completed")?;
        ac.check(f, "future")?;
        ac.ac.add(f.future.clone());
        Ok(rask_status::RASK_OK)
    })
}

/// Waits up to `timeout_ms` milliseconds (negative: forever; 0: just look)
/// for the next done future (finished, erred or cancelled: read it with
/// `rask_future_result` or `rask_future_status`).
///
/// - `RASK_OK`: `*out` is set to a new reference to that future, which the
///   caller owns and frees with `rask_future_free`.
/// - `RASK_TIMEOUT`: none became done in time; `*out` is NULL.
/// - `RASK_DONE`: every future added so far has been yielded; `*out` is
///   NULL. Adding more makes the iterator yield again.
///
/// Each future added is yielded once (a future added twice, twice). Fails
/// with `RASK_ERR_STATE` after the client was closed or freed.
#[no_mangle]
pub unsafe extern "C" fn rask_as_completed_next(
    ac: *const rask_as_completed,
    timeout_ms: i64,
    out: *mut *mut rask_future,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let out = req_mut(out, "out")?;
        *out = ptr::null_mut();
        let ac = req(ac, "ac")?;
        ac.life.check("this as_completed")?;
        Ok(match ac.ac.next_timeout(timeout(timeout_ms)) {
            Ok(Some(f)) => {
                *out = rask_future::boxed(f, &ac.life);
                rask_status::RASK_OK
            }
            Ok(None) => rask_status::RASK_DONE,
            Err(()) => rask_status::RASK_TIMEOUT,
        })
    })
}

/// How many futures the iterator has not yielded yet (done or not); 0 when
/// `ac` is NULL.
#[no_mangle]
pub unsafe extern "C" fn rask_as_completed_count(ac: *const rask_as_completed) -> usize {
    ffi_boundary!(default = 0, { ac.as_ref().map_or(0, |a| a.ac.len()) })
}

/// Frees the iterator and its references to the futures not yet yielded.
/// NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn rask_as_completed_free(ac: *mut rask_as_completed) {
    ffi_boundary!(default = (), {
        if !ac.is_null() {
            drop(Box::from_raw(ac));
        }
    })
}

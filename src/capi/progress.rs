//! `rask_client_progress`: counts of futures by outcome, with a callback as
//! they finish (the C side of Python's `rask.progress`).

use super::client::rask_client;
use super::future::{futures_of, rask_future};
use super::{ffi_boundary, rask_error, rask_status, req, timeout, Error};
use crate::client::{Future, Status, WaitMode};
use std::ffi::c_void;
use std::time::Instant;

/// Counts of futures by outcome, as `rask_client_progress` reports them.
/// Filled by rask; the caller owns it (usually on the stack).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct rask_progress_counts {
    /// Futures counted.
    pub total: usize,
    /// Not done yet.
    pub pending: usize,
    /// Their value is in the cluster.
    pub finished: usize,
    /// Their task (or one it needs) failed, or the client lost its
    /// scheduler.
    pub erred: usize,
    pub cancelled: usize,
}

/// Called by `rask_client_progress` on the calling thread with the counts
/// (borrowed for the call) and the caller's `user_data`.
pub type rask_progress_fn =
    Option<unsafe extern "C" fn(counts: *const rask_progress_counts, user_data: *mut c_void)>;

/// The counts of `fs`, and the futures that were pending when counted.
fn count(fs: &[Future]) -> (rask_progress_counts, Vec<Future>) {
    let mut c = rask_progress_counts {
        total: fs.len(),
        ..Default::default()
    };
    let mut pending = Vec::new();
    for f in fs {
        match f.status() {
            Status::Pending => {
                c.pending += 1;
                pending.push(f.clone());
            }
            Status::Finished => c.finished += 1,
            Status::Error => c.erred += 1,
            Status::Cancelled => c.cancelled += 1,
        }
    }
    (c, pending)
}

/// Follows the `n` futures in `futures` (borrowed; all of this client)
/// until all are done (finished, erred or cancelled) or `timeout_ms`
/// milliseconds passed (negative: no limit; 0: just count). `callback`
/// (may be NULL) is called on this thread with the counts once at the
/// start and again each time they change, last with `pending == 0` when
/// all are done; it must not free the futures. When `counts` is not NULL
/// `*counts` is set to the last counts.
///
/// Returns `RASK_OK` once all are done, `RASK_TIMEOUT` otherwise. Fails
/// with `RASK_ERR_NULL_ARG` for a NULL `client`, `futures` (with `n` > 0) or
/// element, `RASK_ERR_INVALID_ARG` for a future of another client, and
/// `RASK_ERR_STATE` on a closed client.
#[no_mangle]
pub unsafe extern "C" fn rask_client_progress(
    client: *const rask_client,
    futures: *const *const rask_future,
    n: usize,
    callback: rask_progress_fn,
    user_data: *mut c_void,
    timeout_ms: i64,
    counts: *mut rask_progress_counts,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let c = req(client, "client")?;
        let fs = futures_of(futures, n, "futures")?;
        c.life.check("this call")?;
        let owned: Vec<Future> = fs.iter().map(|f| f.future.clone()).collect();
        if let Some(f) = owned.iter().find(|f| !f.belongs_to(&c.client.inner)) {
            return Err(Error::invalid(format!(
                "future '{}' belongs to another client",
                f.key()
            )));
        }
        let deadline = timeout(timeout_ms).map(|t| Instant::now() + t);
        let mut last: Option<rask_progress_counts> = None;
        loop {
            let (now, pending) = count(&owned);
            if last != Some(now) {
                if let Some(cb) = callback {
                    cb(&now, user_data);
                }
                last = Some(now);
            }
            if let Some(out) = counts.as_mut() {
                *out = now;
            }
            if now.pending == 0 {
                return Ok(rask_status::RASK_OK);
            }
            let left = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(l) if !l.is_zero() => Some(l),
                    _ => return Ok(rask_status::RASK_TIMEOUT),
                },
                None => None,
            };
            // Wait on the futures pending when counted: one that finished
            // since (during the callback, say) ends the wait at once, so
            // no change goes unreported.
            c.client.wait(&pending, WaitMode::FirstCompleted, left);
        }
    })
}

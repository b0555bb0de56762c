//! Performance reports from C: `rask_client_report_start` and
//! `rask_client_performance_report` (the C side of Python's
//! `client.performance_report`), through the scheduler's dashboard.

use super::client::rask_client;
use super::{ffi_boundary, rask_error, rask_status, req, req_mut, req_str, Error};
use std::ffi::c_char;

fn no_dashboard() -> Error {
    Error::call(
        rask_status::RASK_ERR_STATE,
        "the scheduler serves no dashboard (rask_client_dashboard_link is \"\"), so there is \
         no performance report",
    )
}

/// Where a performance report starts: sets `*since` to the scheduler's
/// clock now (seconds since it started), read from its dashboard, to pass to
/// `rask_client_performance_report` when the work to report is done.
/// `client` is borrowed; `since` is the caller's (set to 0 on failure).
///
/// Fails with `RASK_ERR_NULL_ARG` for a NULL argument, `RASK_ERR_STATE`
/// when the client was closed or its scheduler serves no dashboard, and
/// `RASK_ERR_CONNECTION` when the dashboard does not answer within the
/// client's timeout.
#[no_mangle]
pub unsafe extern "C" fn rask_client_report_start(
    client: *const rask_client,
    since: *mut f64,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        if let Some(s) = since.as_mut() {
            *s = 0.0;
        }
        let c = req(client, "client")?;
        let since = req_mut(since, "since")?;
        c.life.check("this call")?;
        if c.client.dashboard_link().is_none() {
            return Err(no_dashboard());
        }
        *since = c
            .client
            .report_start()
            .map_err(|e| c.life.error_of("this call", e))?;
        Ok(rask_status::RASK_OK)
    })
}

/// Writes the scheduler's performance report of the tasks that finished
/// since `since` (from `rask_client_report_start`; 0 for all it remembers)
/// to the file `path` (NUL-terminated UTF-8, borrowed; created or
/// replaced): one self-contained HTML file that opens with no network,
/// with the task stream, counts and run times per function, the workers
/// (their memory over the time reported, bytes they fetched from each
/// other), the event log and the scheduler's settings (docs/dashboard.md).
///
/// Fails with `RASK_ERR_NULL_ARG` / `RASK_ERR_INVALID_UTF8` for `client` or
/// `path`, `RASK_ERR_INVALID_ARG` for a `since` that is not a number or a
/// file that cannot be written (naming it), `RASK_ERR_STATE` when the client
/// was closed or its scheduler serves no dashboard, `RASK_ERR_CONNECTION`
/// when the dashboard does not answer within the client's timeout.
#[no_mangle]
pub unsafe extern "C" fn rask_client_performance_report(
    client: *const rask_client,
    since: f64,
    path: *const c_char,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let c = req(client, "client")?;
        let path = req_str(path, "path")?;
        c.life.check("this call")?;
        if c.client.dashboard_link().is_none() {
            return Err(no_dashboard());
        }
        if !since.is_finite() {
            return Err(Error::invalid(format!(
                "since must be a number of seconds, not {since}"
            )));
        }
        let html = c
            .client
            .performance_report(since)
            .map_err(|e| c.life.error_of("this call", e))?;
        std::fs::write(path, html)
            .map_err(|e| Error::invalid(format!("cannot write the report to '{path}': {e}")))?;
        Ok(rask_status::RASK_OK)
    })
}

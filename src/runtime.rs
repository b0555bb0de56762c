//! The process-wide tokio runtime that the scheduler, workers and clients
//! of this process share.
//!
//! One runtime for everything keeps the thread count small on small
//! machines (a local cluster of a scheduler and four workers is still two
//! I/O threads, not ten). Its size is `RASK_IO_THREADS` (default 2).
//! Blocking calls from host threads (C, Python, Julia) enter it with
//! [`block_on`]; never call that from inside the runtime.

use std::future::Future;
use std::sync::OnceLock;
use tokio::runtime::{Handle, Runtime};

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// The shared runtime, started on first use.
pub fn runtime() -> &'static Runtime {
    RUNTIME.get_or_init(|| {
        let threads = std::env::var("RASK_IO_THREADS")
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
            .filter(|&n| n > 0)
            .unwrap_or(2);
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("rask-io")
            .enable_all()
            .build()
            .expect("starting the rask I/O runtime")
    })
}

/// A handle to the shared runtime, for spawning.
pub fn handle() -> Handle {
    runtime().handle().clone()
}

/// Runs `f` to completion from a thread outside the runtime.
///
/// # Panics
/// When called from a thread of a tokio runtime (that would deadlock).
pub fn block_on<F: Future>(f: F) -> F::Output {
    assert!(
        Handle::try_current().is_err(),
        "rask::runtime::block_on called from inside a tokio runtime"
    );
    runtime().block_on(f)
}

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
            .on_thread_start(|| {
                block_sigpipe();
                IO_THREAD.with(|t| t.set(true));
            })
            .enable_all()
            .build()
            .expect("starting the rask I/O runtime")
    })
}

/// Blocks SIGPIPE on the calling thread (one of the runtime's, which do
/// every socket write): a write to a connection its peer has closed then
/// fails with `EPIPE`, which the connection handles, instead of raising
/// SIGPIPE — whose default action kills the whole process. Rust programs
/// and Python ignore SIGPIPE, but a C or C++ host usually has the default,
/// and rask is a library there: it must not change the process's
/// disposition, so it masks the signal on its own threads only (a write's
/// SIGPIPE goes to the thread that wrote).
fn block_sigpipe() {
    #[cfg(unix)]
    // SAFETY: changes only this thread's signal mask; `set` is initialised
    // by sigemptyset before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

thread_local! {
    static IO_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the calling thread is one of the shared runtime's (not a host
/// thread, nor one inside [`block_on`]).
pub fn on_io_thread() -> bool {
    IO_THREAD.with(|t| t.get())
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

/// SIGTERM and SIGINT (Ctrl-C elsewhere), for the `rask-scheduler` and
/// `rask-worker` programs: listened for from the moment [`listen`]
/// returns, so a signal sent as soon as a program prints its address (or
/// registers) meets this handler, not the default action (death without
/// shutting down). [`next`] can be awaited again for a second signal.
///
/// [`listen`]: StopSignals::listen
/// [`next`]: StopSignals::next
pub struct StopSignals {
    #[cfg(unix)]
    signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl StopSignals {
    /// Starts listening (on the shared runtime). If the handlers cannot be
    /// registered, [`next`](Self::next) falls back to Ctrl-C.
    pub fn listen() -> StopSignals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let _guard = handle().enter();
            let signals = signal(SignalKind::terminate())
                .ok()
                .zip(signal(SignalKind::interrupt()).ok());
            StopSignals { signals }
        }
        #[cfg(not(unix))]
        StopSignals {}
    }

    /// The next signal: "SIGTERM" or "SIGINT" ("Ctrl-C" off Unix).
    pub async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        if let Some((term, int)) = &mut self.signals {
            return tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            };
        }
        let _ = tokio::signal::ctrl_c().await;
        if cfg!(unix) {
            "SIGINT"
        } else {
            "Ctrl-C"
        }
    }
}

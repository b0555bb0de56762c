//! `rask_signal_watch`: stop signals as a readable file descriptor, for hosts
//! whose runtime keeps signals for itself (Julia 1.5 answers SIGTERM by
//! exiting; a worker there wants to leave the cluster cleanly first).

use super::{ffi_boundary, rask_error, rask_status, req_mut, Error};
#[cfg(unix)]
use parking_lot::Mutex;
#[cfg(unix)]
use std::collections::HashMap;
use std::ffi::c_int;

/// The signals `rask_signal_watch` takes: the ones that ask a process to stop
/// or to do something, never the ones a fault raises.
#[cfg(unix)]
const WATCHABLE: [(c_int, &str); 6] = [
    (libc::SIGHUP, "SIGHUP"),
    (libc::SIGINT, "SIGINT"),
    (libc::SIGQUIT, "SIGQUIT"),
    (libc::SIGTERM, "SIGTERM"),
    (libc::SIGUSR1, "SIGUSR1"),
    (libc::SIGUSR2, "SIGUSR2"),
];

/// signal -> the read end of its pipe; both ends stay open for the life of
/// the process (the handler writes to the write end at any moment).
#[cfg(unix)]
static WATCHED: Mutex<Option<HashMap<c_int, c_int>>> = Mutex::new(None);

#[cfg(unix)]
fn watch(signal: c_int) -> Result<c_int, Error> {
    if !WATCHABLE.iter().any(|(s, _)| *s == signal) {
        let names: Vec<&str> = WATCHABLE.iter().map(|(_, n)| *n).collect();
        return Err(Error::new(
            rask_status::RASK_ERR_INVALID_ARG,
            format!(
                "signal {signal} cannot be watched: only {} can",
                names.join(", ")
            ),
        ));
    }
    let mut watched = WATCHED.lock();
    let watched = watched.get_or_insert_with(HashMap::new);
    let fd = match watched.get(&signal) {
        Some(&fd) => fd,
        None => {
            let mut ends = [0 as c_int; 2];
            // SAFETY: `ends` has room for the two descriptors.
            if unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
                return Err(Error::new(
                    rask_status::RASK_ERR_STATE,
                    format!(
                        "cannot make a pipe for signal {signal}: {}",
                        std::io::Error::last_os_error()
                    ),
                ));
            }
            let [read_end, write_end] = ends;
            let action = move || {
                // Async-signal-safe: one write on a non-blocking pipe. A full
                // pipe already says "the signal came": the byte is not needed.
                let byte = 1u8;
                // SAFETY: `write_end` stays open for the life of the process.
                unsafe { libc::write(write_end, (&byte as *const u8).cast(), 1) };
            };
            // SAFETY: the action only calls write(2), which is
            // async-signal-safe, and touches no lock or allocation.
            if let Err(e) = unsafe { signal_hook_registry::register(signal, action) } {
                // SAFETY: both ends were just made and are not shared.
                unsafe {
                    libc::close(read_end);
                    libc::close(write_end);
                }
                return Err(Error::new(
                    rask_status::RASK_ERR_STATE,
                    format!("cannot catch signal {signal}: {e}"),
                ));
            }
            watched.insert(signal, read_end);
            read_end
        }
    };
    // A runtime that sigwaits its signals on a thread of its own blocks them
    // on every other thread. Unblocking the signal here makes this thread
    // eligible: Linux gives a signal sent to the process to its main thread
    // when that thread does not block it.
    // SAFETY: plain sigset manipulation on a local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, signal);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
    }
    Ok(fd)
}

#[cfg(not(unix))]
fn watch(_signal: c_int) -> Result<c_int, Error> {
    Err(Error::new(
        rask_status::RASK_ERR_STATE,
        "rask_signal_watch needs a Unix system",
    ))
}

/// Catches `signal` from now on, for the rest of the process: each time it
/// arrives, a byte becomes readable on the file descriptor stored in `*fd`,
/// instead of the signal's usual effect (a SIGTERM no longer ends the
/// process: the caller decides what it means). Wait for it with
/// poll/select/epoll or a host event loop (Julia: `FileWatching.poll_fd`),
/// then read the byte(s) out (the descriptor is non-blocking).
///
/// `signal` must be one of SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1,
/// SIGUSR2 (`RASK_ERR_INVALID_ARG` otherwise). Calling it again for the same
/// signal returns the same descriptor. The call also unblocks `signal` on
/// the calling thread: in a runtime that blocks signals on every thread and
/// waits for them on one of its own (Julia), call it on the main thread, so
/// that Linux delivers the signal there (to this handler) and not to the
/// runtime's waiting thread.
///
/// Ownership: `*fd` is owned by rask and stays open for the life of the
/// process; the caller reads from it and must not close it. `fd` must not
/// be NULL (`RASK_ERR_NULL_ARG`); it is set to -1 on error. Unix only
/// (`RASK_ERR_STATE` elsewhere).
#[no_mangle]
pub unsafe extern "C" fn rask_signal_watch(
    signal: c_int,
    fd: *mut c_int,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let fd = req_mut(fd, "fd")?;
        *fd = -1;
        *fd = watch(signal)?;
        Ok(rask_status::RASK_OK)
    })
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_watched_signal_becomes_a_readable_byte_and_others_are_refused() {
        let fd = watch(libc::SIGUSR2).unwrap();
        assert_eq!(watch(libc::SIGUSR2).unwrap(), fd, "same signal, same fd");
        let mut byte = 0u8;
        // SAFETY: `fd` is the open read end; `byte` has room for one byte.
        let n = unsafe { libc::read(fd, (&mut byte as *mut u8).cast(), 1) };
        assert_eq!(n, -1, "nothing before the signal");
        // SAFETY: raise(3) on this thread, whose handler is rask's.
        unsafe { libc::raise(libc::SIGUSR2) };
        // SAFETY: as above.
        let n = unsafe { libc::read(fd, (&mut byte as *mut u8).cast(), 1) };
        assert_eq!(n, 1, "the signal left a byte");
        let e = watch(libc::SIGKILL).unwrap_err();
        assert_eq!(e.status, rask_status::RASK_ERR_INVALID_ARG);
        assert!(e.message.contains("SIGTERM"), "{}", e.message);
        assert!(watch(libc::SIGSEGV).is_err());
    }
}

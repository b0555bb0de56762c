//! A waitable OS handle for host event loops: a non-blocking pipe whose
//! read end becomes readable when something is ready (Julia's
//! `FileWatching.poll_fd`, asyncio's `loop.add_reader`, `poll(2)` in C).
//!
//! [`Wakeup::set`] makes the read end readable (one byte, written only if
//! none is there); [`Wakeup::clear`] makes it unreadable again (drains it).
//! Both take one small lock, so a `set` is never lost to a concurrent
//! `clear`: after any interleaving, the pipe holds a byte exactly when the
//! last call was a `set`.

use parking_lot::Mutex;
use std::os::raw::c_int;

pub struct Wakeup {
    read: c_int,
    write: c_int,
    /// Whether the pipe holds a byte.
    set: Mutex<bool>,
}

fn nonblocking_cloexec(fd: c_int) -> std::io::Result<()> {
    // SAFETY: fcntl on a descriptor this module owns.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        if fl < 0 || libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let fd_flags = libc::fcntl(fd, libc::F_GETFD);
        if fd_flags < 0 || libc::fcntl(fd, libc::F_SETFD, fd_flags | libc::FD_CLOEXEC) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

impl Wakeup {
    /// A new pipe, not readable.
    pub fn new() -> std::io::Result<Wakeup> {
        let mut fds = [0 as c_int; 2];
        // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let w = Wakeup {
            read: fds[0],
            write: fds[1],
            set: Mutex::new(false),
        };
        nonblocking_cloexec(w.read)?;
        nonblocking_cloexec(w.write)?;
        Ok(w)
    }

    /// The descriptor to wait on (readable while set).
    pub fn fd(&self) -> c_int {
        self.read
    }

    /// Makes the descriptor readable (no-op if it is).
    pub fn set(&self) {
        let mut s = self.set.lock();
        if !*s {
            let b = 1u8;
            // SAFETY: writes one byte from a local to our own pipe. A full
            // pipe (impossible: it holds at most one byte) or a closed
            // reader would only leave it unset.
            let n = unsafe { libc::write(self.write, (&b as *const u8).cast(), 1) };
            *s = n == 1;
        }
    }

    /// Makes the descriptor unreadable (no-op if it is not readable).
    pub fn clear(&self) {
        let mut s = self.set.lock();
        if *s {
            let mut buf = [0u8; 16];
            // SAFETY: reads into a local buffer from our own non-blocking
            // pipe, until it is empty.
            while unsafe { libc::read(self.read, buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
            *s = false;
        }
    }
}

impl Drop for Wakeup {
    fn drop(&mut self) {
        // SAFETY: the two descriptors are ours and closed once.
        unsafe {
            libc::close(self.read);
            libc::close(self.write);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readable(fd: c_int) -> bool {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd, no wait.
        unsafe { libc::poll(&mut p, 1, 0) == 1 && p.revents & libc::POLLIN != 0 }
    }

    #[test]
    fn set_makes_it_readable_and_clear_undoes_it() {
        let w = Wakeup::new().unwrap();
        assert!(!readable(w.fd()));
        w.set();
        w.set();
        assert!(readable(w.fd()));
        w.clear();
        assert!(!readable(w.fd()));
        w.clear();
        w.set();
        assert!(readable(w.fd()));
    }

    #[test]
    fn a_set_racing_clears_is_never_lost() {
        let w = std::sync::Arc::new(Wakeup::new().unwrap());
        let w2 = w.clone();
        let t = std::thread::spawn(move || {
            for _ in 0..10_000 {
                w2.clear();
            }
        });
        for _ in 0..10_000 {
            w.set();
        }
        t.join().unwrap();
        w.set();
        assert!(readable(w.fd()));
    }
}

//! Shared memory between the processes of one host.
//!
//! A large value (a `bin` or a tensor of at least [`threshold`] bytes) that
//! goes to another process on the same host travels as a file descriptor,
//! not as bytes: its buffer lives in a *segment*, an anonymous memory file
//! (`memfd_create`, no name in any file system), and the descriptor is
//! passed over a Unix-domain socket (`SCM_RIGHTS`, see [`super::conn`]).
//! The receiver maps it read-only and the value it makes owns the mapping,
//! so the bytes are never copied between the two processes.
//!
//! Lifetime: a segment is a kernel object that lives while any process
//! holds a descriptor or a mapping of it, and nothing else: no file, no
//! name in `/dev/shm`. Each side drops its mapping when the last value
//! using it is dropped ([`Bytes`] reference counts). A process that dies,
//! even by `SIGKILL`, loses its descriptors and mappings with it, so a
//! segment outlives its maker only while a survivor still uses the value,
//! and is gone when that survivor drops it. Nothing is left behind to clean.
//!
//! Immutability: a segment is sealed once written ([`SEALS`]): it can
//! neither shrink (a receiver's mapping can never lose pages under it,
//! which would be a `SIGBUS`), nor grow, nor be mapped writable again. A
//! receiver refuses a descriptor that is not at least sealed against
//! shrinking.
//!
//! Which buffers live in segments: a value's buffer is copied into one, once,
//! the first time the value is sent to a process on the same host (the
//! worker then keeps the copy in place of the original, so later sends are
//! free), and a value received as a descriptor stays in its segment (a
//! worker that received it forwards the same descriptor). [`find`] tells
//! whether a buffer is in a segment (a process-wide table of mappings).

use bytes::Bytes;
use parking_lot::Mutex;
use rustix::fs::{MemfdFlags, SealFlags};
use rustix::mm::{MapFlags, ProtFlags};
use std::collections::BTreeMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

/// The default [`threshold`]: values from 1 MiB on travel in shared memory.
pub const DEFAULT_THRESHOLD: usize = 1 << 20;

/// The environment variable that sets the threshold for a process: a size
/// in bytes, or `off` (also `0`) to turn shared memory off.
pub const THRESHOLD_ENV: &str = "RASK_SHM_THRESHOLD";

/// The seals a segment gets once written.
pub const SEALS: SealFlags = SealFlags::SHRINK
    .union(SealFlags::GROW)
    .union(SealFlags::FUTURE_WRITE)
    .union(SealFlags::SEAL);

/// Most descriptors one wire message carries (values beyond go as frames).
pub const MAX_FDS: usize = 64;

/// The name memory files get (shown in `/proc/PID/maps` and `fd/`).
pub const MEMFD_NAME: &str = "rask-value";

/// `usize::MAX` means off; `UNSET` means "read the environment".
static THRESHOLD: AtomicUsize = AtomicUsize::new(UNSET);
const UNSET: usize = usize::MAX - 1;
const OFF: usize = usize::MAX;

/// The threshold of this process: `None` when shared memory is off (by
/// [`set_threshold`] or [`THRESHOLD_ENV`]), otherwise the size from which
/// a value travels as a descriptor to a process on the same host.
pub fn threshold() -> Option<usize> {
    let mut t = THRESHOLD.load(Ordering::Relaxed);
    if t == UNSET {
        t = match parse_threshold(std::env::var(THRESHOLD_ENV).ok().as_deref()) {
            Ok(t) => t.unwrap_or(OFF),
            Err(e) => {
                tracing::warn!("{THRESHOLD_ENV}: {e}; shared memory stays at the default");
                DEFAULT_THRESHOLD
            }
        };
        let _ = THRESHOLD.compare_exchange(UNSET, t, Ordering::Relaxed, Ordering::Relaxed);
        t = THRESHOLD.load(Ordering::Relaxed);
    }
    (t != OFF).then_some(t)
}

/// Sets this process's threshold (`None`: off). Applies to the connections
/// made and the values sent from then on.
pub fn set_threshold(t: Option<usize>) {
    let t = match t {
        None => OFF,
        Some(t) => t.min(UNSET - 1),
    };
    THRESHOLD.store(t, Ordering::Relaxed);
}

/// Reads a threshold setting: unset → the default; `off`, `no`, `0` →
/// `None`; a number of bytes (suffixes k, M, G for KiB, MiB, GiB).
pub fn parse_threshold(s: Option<&str>) -> Result<Option<usize>, String> {
    let Some(s) = s.map(str::trim) else {
        return Ok(Some(DEFAULT_THRESHOLD));
    };
    if s.is_empty() {
        return Ok(Some(DEFAULT_THRESHOLD));
    }
    if ["off", "no", "false", "0"].contains(&s.to_ascii_lowercase().as_str()) {
        return Ok(None);
    }
    let (digits, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => (&s[..i], s[i..].trim()),
        None => (s, ""),
    };
    let mult: usize = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("'{s}' is not a size in bytes (or 'off')")),
    };
    let n: usize = digits
        .parse()
        .map_err(|_| format!("'{s}' is not a size in bytes (or 'off')"))?;
    n.checked_mul(mult)
        .map(Some)
        .ok_or_else(|| format!("'{s}' is too large"))
}

/// One mapped memory file. Dropping the last reference unmaps it and
/// closes its descriptor.
#[derive(Debug)]
pub struct Segment {
    fd: OwnedFd,
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is owned by the segment; shared access is read-only
// (a segment is written only before it is shared, through `&mut`).
unsafe impl Send for Segment {}
// SAFETY: as above.
unsafe impl Sync for Segment {}

/// Every mapped segment of this process by start address, for [`find`].
static MAPPED: Mutex<BTreeMap<usize, (usize, Weak<Segment>)>> = Mutex::new(BTreeMap::new());

/// Segments mapped in this process now (tests, stats).
pub fn mapped_count() -> usize {
    MAPPED.lock().len()
}

impl Segment {
    /// A new writable segment of `len` (> 0) bytes, filled by `fill`, then
    /// sealed and registered.
    pub fn create_with(len: usize, fill: impl FnOnce(&mut [u8])) -> std::io::Result<Arc<Segment>> {
        if len == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "an empty segment",
            ));
        }
        let fd =
            rustix::fs::memfd_create(MEMFD_NAME, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)?;
        rustix::fs::ftruncate(&fd, len as u64)?;
        // SAFETY: a new shared mapping of our own file, `len` bytes long
        // (the file's size); nothing else refers to that memory.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED | MapFlags::POPULATE,
                &fd,
                0,
            )?
        };
        let ptr = NonNull::new(ptr.cast::<u8>()).expect("mmap returns no null mapping");
        let seg = Segment { fd, ptr, len };
        // SAFETY: the mapping is ours, writable, `len` bytes long, and no
        // one else has it yet.
        fill(unsafe { std::slice::from_raw_parts_mut(ptr.as_ptr(), len) });
        rustix::fs::fcntl_add_seals(&seg.fd, SEALS)?;
        Ok(seg.register())
    }

    /// A segment copied from `src` (non-empty).
    pub fn copy_from(src: &[u8]) -> std::io::Result<Arc<Segment>> {
        Segment::create_with(src.len(), |dst| dst.copy_from_slice(src))
    }

    /// Maps a segment received from another process, read-only. Refused
    /// when it is not a memory file sealed against shrinking (a mapping of
    /// it could then lose its pages) or is empty.
    pub fn open(fd: OwnedFd) -> Result<Arc<Segment>, String> {
        let seals = rustix::fs::fcntl_get_seals(&fd)
            .map_err(|e| format!("a passed descriptor is not a sealable memory file: {e}"))?;
        if !seals.contains(SealFlags::SHRINK) {
            return Err("a passed memory file is not sealed against shrinking".into());
        }
        let st =
            rustix::fs::fstat(&fd).map_err(|e| format!("fstat of a passed memory file: {e}"))?;
        let len = usize::try_from(st.st_size)
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("a passed memory file has size {}", st.st_size))?;
        // SAFETY: a new read-only shared mapping of a file of `len` bytes
        // that cannot shrink (checked above).
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ,
                MapFlags::SHARED,
                &fd,
                0,
            )
        }
        .map_err(|e| format!("cannot map a passed memory file of {len} bytes: {e}"))?;
        let ptr = NonNull::new(ptr.cast::<u8>()).expect("mmap returns no null mapping");
        Ok(Segment { fd, ptr, len }.register())
    }

    fn register(self) -> Arc<Segment> {
        let seg = Arc::new(self);
        MAPPED
            .lock()
            .insert(seg.ptr.as_ptr() as usize, (seg.len, Arc::downgrade(&seg)));
        seg
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The descriptor to pass to another process.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// `len` bytes from `offset` as [`Bytes`] that keep the segment mapped.
    pub fn bytes(self: &Arc<Segment>, offset: usize, len: usize) -> Option<Bytes> {
        let end = offset.checked_add(len)?;
        if end > self.len {
            return None;
        }
        Some(Bytes::from_owner(View(self.clone())).slice(offset..end))
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // Out of the table before the address can be reused.
        MAPPED.lock().remove(&(self.ptr.as_ptr() as usize));
        // SAFETY: our mapping, unmapped once; no `Bytes` of it is left
        // (each holds an `Arc` of this segment).
        unsafe {
            let _ = rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

/// A whole segment as the owner of [`Bytes`].
struct View(Arc<Segment>);

impl AsRef<[u8]> for View {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: the mapping lives as long as the segment, which we hold.
        unsafe { std::slice::from_raw_parts(self.0.ptr.as_ptr(), self.0.len) }
    }
}

/// The segment holding `b`'s bytes and their offset in it, when they lie in
/// a segment mapped in this process.
pub fn find(b: &[u8]) -> Option<(Arc<Segment>, usize)> {
    if b.is_empty() {
        return None;
    }
    let p = b.as_ptr() as usize;
    let map = MAPPED.lock();
    let (&start, (len, seg)) = map.range(..=p).next_back()?;
    if p + b.len() > start + len {
        return None;
    }
    let seg = seg.upgrade()?;
    Some((seg, p - start))
}

/// `b` in shared memory: the same bytes when they already are (no copy),
/// otherwise copied into a new segment (once; the caller keeps the copy).
pub fn share(b: &Bytes) -> std::io::Result<Bytes> {
    if find(b).is_some() {
        return Ok(b.clone());
    }
    let seg = Segment::copy_from(b)?;
    Ok(seg.bytes(0, b.len()).expect("in bounds"))
}

/// The abstract Unix socket (no file: Linux's abstract namespace, which
/// belongs to the network namespace) on which the worker whose data
/// address is `address` takes connections from its own host. Whoever can
/// connect to it is on the same host (and network namespace).
pub fn socket_name(address: &str) -> String {
    format!("\0rask-data:{address}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fds_named_rask() -> usize {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .filter(|p| p.to_string_lossy().contains(MEMFD_NAME))
            .count()
    }

    #[test]
    fn thresholds_parse() {
        assert_eq!(parse_threshold(None), Ok(Some(DEFAULT_THRESHOLD)));
        assert_eq!(parse_threshold(Some("off")), Ok(None));
        assert_eq!(parse_threshold(Some("0")), Ok(None));
        assert_eq!(parse_threshold(Some("4096")), Ok(Some(4096)));
        assert_eq!(parse_threshold(Some("2M")), Ok(Some(2 << 20)));
        assert_eq!(parse_threshold(Some("64 KiB")), Ok(Some(64 << 10)));
        assert!(parse_threshold(Some("lots")).is_err());
        assert!(parse_threshold(Some("99999999999999999999G")).is_err());
    }

    #[test]
    fn segments_share_without_copies_and_vanish_with_their_last_value() {
        let before = fds_named_rask();
        let src = Bytes::from((0..3 << 20).map(|i| i as u8).collect::<Vec<u8>>());
        assert!(find(&src).is_none(), "plain memory is not a segment");
        let shared = share(&src).unwrap();
        assert_eq!(shared, src);
        assert_ne!(shared.as_ptr(), src.as_ptr(), "copied once");
        let again = share(&shared).unwrap();
        assert_eq!(again.as_ptr(), shared.as_ptr(), "not copied twice");
        let (seg, off) = find(&shared.slice(100..200)).unwrap();
        assert_eq!(off, 100);
        assert_eq!(seg.len(), 3 << 20);
        let seals = rustix::fs::fcntl_get_seals(seg.fd()).unwrap();
        assert!(seals.contains(SEALS));

        // What a receiving process does: map the descriptor it got.
        let dup = seg.fd().try_clone_to_owned().unwrap();
        let theirs = Segment::open(dup).unwrap();
        let view = theirs.bytes(1 << 20, 1 << 20).unwrap();
        assert_eq!(view, src.slice(1 << 20..2 << 20));
        assert_ne!(view.as_ptr(), shared.as_ptr().wrapping_add(1 << 20));
        assert!(theirs.bytes(3 << 20, 1).is_none(), "out of bounds");
        assert_eq!(fds_named_rask(), before + 2);
        drop((seg, theirs, shared, again));
        assert_eq!(fds_named_rask(), before + 1, "the view keeps its own");
        drop(view);
        assert_eq!(fds_named_rask(), before, "the last value closes it");
    }

    #[test]
    fn unsealed_or_foreign_descriptors_are_refused() {
        let fd = rustix::fs::memfd_create("x", MemfdFlags::CLOEXEC).unwrap();
        rustix::fs::ftruncate(&fd, 4096).unwrap();
        assert!(Segment::open(fd).unwrap_err().contains("seal"));
        let fd =
            rustix::fs::memfd_create("x", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING).unwrap();
        rustix::fs::ftruncate(&fd, 4096).unwrap();
        assert!(Segment::open(fd).unwrap_err().contains("shrinking"));
        let f = std::fs::File::open("/proc/self/status").unwrap();
        assert!(Segment::open(OwnedFd::from(f)).is_err());
        assert!(Segment::copy_from(&[]).is_err());
    }
}

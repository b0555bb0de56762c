//! Receive buffers for large frames.
//!
//! A value that arrives in a frame is read straight into the buffer it will
//! own (a `bin` or a tensor shares it, see [`super::payload`]); what this
//! module decides is what that buffer is. Receiving into fresh memory costs
//! a page fault per 4 KiB page, and for 100 MB that was most of a
//! transfer's time (benches/RESULTS.md). So a frame of at least
//! [`HUGE_MIN`] bytes goes into memory aligned to 2 MiB and advised
//! `MADV_HUGEPAGE` (transparent huge pages: one fault per 2 MiB where the
//! kernel allows it; elsewhere plain pages, as before), and freed buffers
//! are kept in a small pool ([`POOL_MAX`] bytes in all) for the next frame
//! of the same size class, whose pages are then already there.
//!
//! The pool is memory the process holds but no value owns: it is bounded,
//! a buffer not reused within [`POOL_TTL`] is released at the next pool
//! operation, and [`trim`] releases it all (the worker calls it when it
//! spills, as it calls `malloc_trim`).

use bytes::Bytes;
use parking_lot::Mutex;
use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Frames from this size on get huge-page-aligned, pooled buffers.
pub const HUGE_MIN: usize = 2 << 20;
/// Alignment and size granule of those buffers (one huge page).
const GRANULE: usize = 2 << 20;
/// Most bytes the pool keeps.
pub const POOL_MAX: usize = 256 << 20;
/// A pooled buffer not reused within this time is released.
pub const POOL_TTL: Duration = Duration::from_secs(2);

/// An owned, 2 MiB-aligned allocation of `cap` bytes, `len` of them
/// initialised (written by reads). Returned to the pool when dropped.
pub struct LargeBuf {
    ptr: NonNull<u8>,
    cap: usize,
    len: usize,
    pool: &'static BufPool,
}

// SAFETY: LargeBuf owns its allocation exclusively, like a Vec<u8>.
unsafe impl Send for LargeBuf {}
// SAFETY: shared access is read-only (&[u8]).
unsafe impl Sync for LargeBuf {}

struct Pool {
    bufs: Vec<(NonNull<u8>, usize, Instant)>,
    bytes: usize,
}
// SAFETY: the pointers are owned allocations, moved between threads only
// under the mutex.
unsafe impl Send for Pool {}

/// Freed buffers kept for reuse (the process has one, [`POOL`]).
pub struct BufPool {
    inner: Mutex<Pool>,
    max: AtomicUsize,
}

/// The process's pool.
static POOL: BufPool = BufPool::new(POOL_MAX);

fn layout(cap: usize) -> Layout {
    Layout::from_size_align(cap, GRANULE).expect("a granule-rounded size is a valid layout")
}

/// Frees what the pool holds beyond its TTL (all of it with `all`).
fn release(pool: &mut Pool, all: bool) -> Vec<(NonNull<u8>, usize)> {
    let now = Instant::now();
    let mut out = Vec::new();
    pool.bufs.retain(|&(p, cap, at)| {
        let keep = !all && now.duration_since(at) < POOL_TTL;
        if !keep {
            out.push((p, cap));
        }
        keep
    });
    for &(_, cap) in &out {
        pool.bytes -= cap;
    }
    out
}

fn dealloc_all(v: Vec<(NonNull<u8>, usize)>) {
    for (p, cap) in v {
        // SAFETY: allocated by `alloc` below with this layout, owned here.
        unsafe { std::alloc::dealloc(p.as_ptr(), layout(cap)) };
    }
}

/// Releases every buffer of the process's pool (returns the bytes).
pub fn trim() -> usize {
    POOL.trim()
}

/// Lowers the bytes the process's pool may keep (a worker with a memory
/// limit L calls it with L / 8, so the pool never makes it spill).
pub fn limit_pool(max: usize) {
    POOL.limit(max)
}

/// Releases the process's pooled buffers not reused within [`POOL_TTL`].
pub fn release_stale() {
    POOL.release_stale()
}

/// Bytes the process's pool holds now.
pub fn pooled_bytes() -> usize {
    POOL.bytes()
}

impl BufPool {
    pub const fn new(max: usize) -> BufPool {
        BufPool {
            inner: Mutex::new(Pool {
                bufs: Vec::new(),
                bytes: 0,
            }),
            max: AtomicUsize::new(max),
        }
    }

    /// Lowers the bytes the pool may keep to `max` (never raises it).
    pub fn limit(&self, max: usize) {
        self.max.fetch_min(max, Ordering::Relaxed);
        let stale = {
            let mut pool = self.inner.lock();
            let mut out = Vec::new();
            while pool.bytes > max {
                let (p, c, _) = pool.bufs.remove(0);
                pool.bytes -= c;
                out.push((p, c));
            }
            out
        };
        dealloc_all(stale);
    }

    /// Releases the buffers not reused within [`POOL_TTL`].
    pub fn release_stale(&self) {
        let stale = release(&mut self.inner.lock(), false);
        dealloc_all(stale);
    }

    /// Releases every pooled buffer (returns the bytes released).
    pub fn trim(&self) -> usize {
        let freed = release(&mut self.inner.lock(), true);
        let n = freed.iter().map(|&(_, c)| c).sum();
        dealloc_all(freed);
        n
    }

    /// Bytes pooled now.
    pub fn bytes(&self) -> usize {
        self.inner.lock().bytes
    }
}

impl LargeBuf {
    /// A buffer with room for `len` bytes from the process's pool, see
    /// [`Self::from_pool`].
    pub fn with_capacity(len: usize) -> Option<LargeBuf> {
        LargeBuf::from_pool(len, &POOL)
    }

    /// A buffer with room for `len` bytes: a pooled one of the same size
    /// class, or a new allocation. `None` when the allocation fails (the
    /// caller falls back to growing a buffer as the bytes arrive).
    pub fn from_pool(len: usize, pool: &'static BufPool) -> Option<LargeBuf> {
        let cap = len.checked_next_multiple_of(GRANULE)?.max(GRANULE);
        let (reused, stale) = {
            let mut pool = pool.inner.lock();
            let hit = pool.bufs.iter().position(|&(_, c, _)| c == cap);
            let reused = hit.map(|i| {
                let (p, c, _) = pool.bufs.swap_remove(i);
                pool.bytes -= c;
                p
            });
            (reused, release(&mut pool, false))
        };
        dealloc_all(stale);
        if let Some(ptr) = reused {
            return Some(LargeBuf {
                ptr,
                cap,
                len: 0,
                pool,
            });
        }
        let layout = Layout::from_size_align(cap, GRANULE).ok()?;
        // SAFETY: the layout has a non-zero size.
        let ptr = NonNull::new(unsafe { std::alloc::alloc(layout) })?;
        #[cfg(target_os = "linux")]
        // SAFETY: [ptr, ptr + cap) is our allocation, aligned to a page;
        // the advice changes only how the kernel backs it.
        unsafe {
            libc::madvise(ptr.as_ptr().cast(), cap, libc::MADV_HUGEPAGE);
        }
        Some(LargeBuf {
            ptr,
            cap,
            len: 0,
            pool,
        })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Appends `src` (the caller keeps within the capacity).
    pub fn extend_from_slice(&mut self, src: &[u8]) {
        assert!(src.len() <= self.cap - self.len, "LargeBuf overflow");
        // SAFETY: in bounds (checked), and `src` cannot overlap our buffer.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), self.ptr.as_ptr().add(self.len), src.len())
        };
        self.len += src.len();
    }

    /// The room after the initialised bytes, to read into; call
    /// [`Self::advance`] with what was written.
    pub fn spare(&mut self) -> &mut [std::mem::MaybeUninit<u8>] {
        // SAFETY: [len, cap) lies inside our allocation.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.ptr.as_ptr().add(self.len).cast(),
                self.cap - self.len,
            )
        }
    }

    /// Marks `n` more bytes (written through [`Self::spare`]) initialised.
    ///
    /// # Safety
    /// The first `n` bytes of `spare()` must have been written.
    pub unsafe fn advance(&mut self, n: usize) {
        assert!(n <= self.cap - self.len);
        self.len += n;
    }

    /// The initialised bytes as `Bytes`, without a copy: the buffer goes
    /// back to the pool when the last `Bytes` of it is dropped.
    pub fn freeze(self) -> Bytes {
        Bytes::from_owner(self)
    }
}

impl AsRef<[u8]> for LargeBuf {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: the first `len` bytes are initialised.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for LargeBuf {
    fn drop(&mut self) {
        let stale = {
            let mut pool = self.pool.inner.lock();
            let mut stale = release(&mut pool, false);
            if pool.bytes + self.cap <= self.pool.max.load(Ordering::Relaxed) {
                pool.bufs.push((self.ptr, self.cap, Instant::now()));
                pool.bytes += self.cap;
            } else {
                stale.push((self.ptr, self.cap));
            }
            stale
        };
        dealloc_all(stale);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_aligned_shared_without_copy_and_pooled_within_bounds() {
        // A pool of this test's own (the process's is shared by tests
        // running in parallel).
        let pool: &'static BufPool = Box::leak(Box::new(BufPool::new(32 << 20)));
        let mut b = LargeBuf::from_pool(3 << 20, pool).unwrap();
        assert_eq!(b.capacity(), 4 << 20);
        assert_eq!(b.as_ref().as_ptr() as usize % GRANULE, 0);
        b.extend_from_slice(&[1, 2, 3]);
        let spare = b.spare();
        spare[0].write(4);
        // SAFETY: one byte written above.
        unsafe { b.advance(1) };
        let ptr = b.as_ref().as_ptr();
        let bytes = b.freeze();
        assert_eq!(&bytes[..], &[1, 2, 3, 4]);
        assert_eq!(bytes.as_ptr(), ptr, "freeze does not copy");
        let tail = bytes.slice(2..);
        drop(bytes);
        assert_eq!(pool.bytes(), 0, "a slice keeps the buffer alive");
        assert_eq!(&tail[..], &[3, 4]);
        drop(tail);
        // Back in the pool: the next buffer of that size class is the same.
        assert_eq!(pool.bytes(), 4 << 20);
        let again = LargeBuf::from_pool(4 << 20, pool).unwrap();
        assert_eq!(again.as_ref().as_ptr(), ptr);
        assert!(again.is_empty() && pool.bytes() == 0);
        drop(again);
        // A size class with nothing pooled allocates.
        let other = LargeBuf::from_pool(1, pool).unwrap();
        assert_eq!(other.capacity(), 2 << 20);
        drop(other);
        assert_eq!(pool.bytes(), 6 << 20);
        // Bounded: buffers beyond the pool's bytes are freed, not kept.
        let many: Vec<LargeBuf> = (0..5)
            .map(|_| LargeBuf::from_pool(10 << 20, pool).unwrap())
            .collect();
        drop(many);
        assert_eq!(
            pool.bytes(),
            (6 + 2 * 10) << 20,
            "two of five kept within 32 MiB"
        );
        pool.limit(12 << 20);
        assert!(pool.bytes() <= 12 << 20);
        let held = pool.bytes();
        assert_eq!(pool.trim(), held);
        // Lowered for good: a 20 MiB buffer is not kept.
        drop(LargeBuf::from_pool(20 << 20, pool).unwrap());
        assert_eq!(pool.bytes(), 0);
        assert_eq!(pool.bytes(), 0);
    }
}

//! Spill files: the worker-local directory and the [`Disk`] that writes
//! values there.
//!
//! # The directory
//!
//! Each worker makes its own directory `worker-<pid>-<n>` under
//! `<local directory>/rask-worker-space/` (the local directory is
//! `WorkerConfig::local_directory`, `rask-worker --local-directory`, by
//! default the system temp dir) and holds an exclusive `flock` on a `lock`
//! file inside it while it lives. The directory is removed when the worker
//! stops. A worker that was killed cannot remove its own: the next worker
//! started with the same local directory removes every directory there
//! whose lock nobody holds (as Dask's workers do with their scratch space).
//!
//! # A spill file
//!
//! One file per value, named by its key id (keys are named in the core, not
//! on disk). Layout, all integers little-endian:
//!
//! ```text
//! u8  kind         0 msgpack, 1 bin, 2 tensor
//! u8  compression  0 none, 1 lz4 (block format)
//! u8  dtype        tensor dtype code (0 otherwise)
//! u8  ndim         tensor dimensions (0 otherwise)
//! ndim × u64       tensor shape
//! u64 raw length   bytes of the data uncompressed
//! data             the bytes (msgpack of the value; the bin's bytes; the
//!                  tensor's row-major elements), compressed or not
//! ```
//!
//! Compression is lz4 (the `lz4_flex` crate), chosen by measurement over
//! zstd (docs/architecture.md, "Memory"): it is tried on the first 64 KiB
//! of a value larger than that, and used only when that sample shrinks by
//! at least 10%, so random or already-compressed data costs one small trial.

use super::state::KeyId;
use super::store::Disk;
use crate::value::{DType, Tensor, Value};
use bytes::Bytes;
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The name of the folder under the local directory that holds the
/// workers' directories.
pub const SPACE: &str = "rask-worker-space";
/// Bytes of a value tried for compression first.
const SAMPLE: usize = 64 * 1024;

const KIND_MSGPACK: u8 = 0;
const KIND_BIN: u8 = 1;
const KIND_TENSOR: u8 = 2;

/// A worker's own directory for spill files, locked while it lives and
/// removed when dropped (or by [`SpillDir::remove`]).
pub struct SpillDir {
    path: PathBuf,
    /// Holds the `flock` that marks the directory as in use.
    _lock: File,
    removed: bool,
}

fn try_lock(f: &File) -> bool {
    // SAFETY: flock on a valid open descriptor.
    unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

impl SpillDir {
    /// Makes a fresh directory under `<local>/rask-worker-space/`, after
    /// removing the directories there that no live worker holds (left by
    /// killed workers).
    pub fn create(local: &Path) -> Result<SpillDir, String> {
        let space = local.join(SPACE);
        fs::create_dir_all(&space)
            .map_err(|e| format!("cannot create the spill directory {}: {e}", space.display()))?;
        let removed = clean_stale(&space);
        if removed > 0 {
            tracing::info!(
                "removed {removed} spill directories left by workers that died, in {}",
                space.display()
            );
        }
        static N: AtomicU64 = AtomicU64::new(0);
        let pid = std::process::id();
        loop {
            let n = N.fetch_add(1, Ordering::Relaxed);
            let path = space.join(format!("worker-{pid}-{n}"));
            match fs::create_dir(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(format!(
                        "cannot create the spill directory {}: {e}",
                        path.display()
                    ))
                }
            }
            let lock = File::create(path.join("lock"))
                .map_err(|e| format!("cannot create {}/lock: {e}", path.display()))?;
            if !try_lock(&lock) {
                return Err(format!("cannot lock {}/lock", path.display()));
            }
            return Ok(SpillDir {
                path,
                _lock: lock,
                removed: false,
            });
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the directory and every spill file in it. Idempotent.
    pub fn remove(&mut self) {
        if !self.removed {
            self.removed = true;
            if let Err(e) = fs::remove_dir_all(&self.path) {
                tracing::warn!(
                    "cannot remove the spill directory {}: {e}",
                    self.path.display()
                );
            }
        }
    }
}

impl Drop for SpillDir {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Removes the worker directories in `space` whose lock nobody holds;
/// returns how many.
fn clean_stale(space: &Path) -> usize {
    let Ok(entries) = fs::read_dir(space) else {
        return 0;
    };
    let mut n = 0;
    for e in entries.flatten() {
        let path = e.path();
        let is_worker_dir = path.is_dir()
            && e.file_name()
                .to_str()
                .is_some_and(|s| s.starts_with("worker-"));
        if !is_worker_dir {
            continue;
        }
        // A directory without a lock file is being made (or was left
        // half-made): only one whose lock can be taken is surely dead.
        let Ok(lock) = OpenOptions::new().read(true).open(path.join("lock")) else {
            continue;
        };
        if try_lock(&lock) && fs::remove_dir_all(&path).is_ok() {
            n += 1;
        }
    }
    n
}

/// Spill files in a [`SpillDir`].
pub struct FileDisk {
    dir: SpillDir,
    compress: bool,
}

impl FileDisk {
    /// Spill files in `dir`; `compress`: lz4 where it pays (see the module
    /// docs).
    pub fn new(dir: SpillDir, compress: bool) -> FileDisk {
        FileDisk { dir, compress }
    }

    fn file(&self, id: KeyId) -> PathBuf {
        self.dir.path.join(id.0.to_string())
    }
}

/// Whether lz4 shrinks `data` enough to be worth it (judged on a sample).
fn worth_compressing(data: &[u8]) -> bool {
    if data.len() < 4096 {
        return false;
    }
    let sample = &data[..data.len().min(SAMPLE)];
    let c = lz4_flex::block::compress(sample);
    c.len() * 10 < sample.len() * 9
}

impl Disk for FileDisk {
    fn write(&mut self, id: KeyId, value: &Value) -> Result<u64, String> {
        let encoded;
        let (kind, dtype, shape, data): (u8, u8, &[usize], &[u8]) = match value {
            Value::Bin(b) => (KIND_BIN, 0, &[], b),
            Value::Tensor(t) => (KIND_TENSOR, t.dtype() as u8, t.shape(), t.data()),
            v => {
                encoded = crate::value::encode(v).map_err(|e| e.to_string())?;
                (KIND_MSGPACK, 0, &[], &encoded)
            }
        };
        let compressed =
            (self.compress && worth_compressing(data)).then(|| lz4_flex::block::compress(data));
        let mut head = Vec::with_capacity(12 + 8 * shape.len());
        head.extend_from_slice(&[kind, compressed.is_some() as u8, dtype, shape.len() as u8]);
        for &d in shape {
            head.extend_from_slice(&(d as u64).to_le_bytes());
        }
        head.extend_from_slice(&(data.len() as u64).to_le_bytes());
        let body = compressed.as_deref().unwrap_or(data);
        let path = self.file(id);
        let write = || -> std::io::Result<()> {
            let mut f = BufWriter::with_capacity(64 * 1024, File::create(&path)?);
            f.write_all(&head)?;
            f.write_all(body)?;
            f.flush()
        };
        match write() {
            Ok(()) => Ok((head.len() + body.len()) as u64),
            Err(e) => {
                let _ = fs::remove_file(&path);
                Err(format!("writing {}: {e}", path.display()))
            }
        }
    }

    fn read(&mut self, id: KeyId) -> Result<Value, String> {
        let path = self.file(id);
        let bad = |m: String| format!("reading {}: {m}", path.display());
        let mut f = File::open(&path).map_err(|e| bad(e.to_string()))?;
        let total = f.metadata().map_err(|e| bad(e.to_string()))?.len() as usize;
        let mut fixed = [0u8; 4];
        f.read_exact(&mut fixed).map_err(|e| bad(e.to_string()))?;
        let [kind, compression, dtype, ndim] = fixed;
        let mut shape = Vec::with_capacity(ndim as usize);
        let mut word = [0u8; 8];
        for _ in 0..ndim {
            f.read_exact(&mut word).map_err(|e| bad(e.to_string()))?;
            shape.push(u64::from_le_bytes(word) as usize);
        }
        f.read_exact(&mut word).map_err(|e| bad(e.to_string()))?;
        let raw_len = u64::from_le_bytes(word) as usize;
        let body_len = total
            .checked_sub(4 + 8 * ndim as usize + 8)
            .ok_or_else(|| bad("truncated".into()))?;
        let mut body = vec![0u8; body_len];
        f.read_exact(&mut body).map_err(|e| bad(e.to_string()))?;
        let data = match compression {
            0 => body,
            1 => lz4_flex::block::decompress(&body, raw_len).map_err(|e| bad(e.to_string()))?,
            c => return Err(bad(format!("unknown compression {c}"))),
        };
        if data.len() != raw_len {
            return Err(bad(format!("{} bytes, expected {raw_len}", data.len())));
        }
        match kind {
            KIND_BIN => Ok(Value::Bin(Bytes::from(data))),
            KIND_TENSOR => {
                let dtype = DType::from_code(dtype)
                    .ok_or_else(|| bad(format!("unknown dtype code {dtype}")))?;
                Tensor::new(dtype, shape, Bytes::from(data))
                    .map(Value::Tensor)
                    .map_err(|e| bad(e.to_string()))
            }
            KIND_MSGPACK => crate::value::decode(&data).map_err(|e| bad(e.to_string())),
            k => Err(bad(format!("unknown kind {k}"))),
        }
    }

    fn remove(&mut self, id: KeyId) {
        let _ = fs::remove_file(self.file(id));
    }

    fn close(&mut self) {
        self.dir.remove();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rask-spill-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn values_roundtrip_through_files_compressed_or_not() {
        let local = tmp("roundtrip");
        let t = Tensor::from_vec(vec![3, 2], vec![1.5f64, 2., 3., 4., 5., 6.]).unwrap();
        let big = Tensor::from_vec(vec![100_000], (0..100_000i64).collect()).unwrap();
        let mut x = 88172645463325252u64;
        let noise: Vec<u8> = (0..200_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect();
        let values = [
            Value::Bin(vec![7u8; 100_000].into()),
            Value::Bin(noise.into()),
            Value::Tensor(t),
            Value::Tensor(big),
            Value::Array(vec![Value::Int(1), Value::from("two"), Value::Nil]),
        ];
        for compress in [false, true] {
            let mut d = FileDisk::new(SpillDir::create(&local).unwrap(), compress);
            for (i, v) in values.iter().enumerate() {
                let on_disk = d.write(KeyId(i as u32), v).unwrap();
                if compress && i == 0 {
                    assert!(on_disk < 10_000, "zeros compress: {on_disk}");
                }
                if i == 1 {
                    assert!(on_disk >= 200_000, "noise is stored raw: {on_disk}");
                }
                assert_eq!(&d.read(KeyId(i as u32)).unwrap(), v);
            }
            d.remove(KeyId(0));
            assert!(d.read(KeyId(0)).unwrap_err().contains("reading"));
            let path = d.dir.path().to_path_buf();
            assert!(path.join("1").exists());
            drop(d);
            assert!(!path.exists(), "the directory goes with the disk");
        }
        let _ = fs::remove_dir_all(&local);
    }

    #[test]
    fn a_dead_workers_directory_is_removed_a_live_ones_kept() {
        let local = tmp("stale");
        let live = SpillDir::create(&local).unwrap();
        // A directory left by a killed worker: its lock file, unlocked.
        let dead = local.join(SPACE).join("worker-999999-0");
        fs::create_dir_all(&dead).unwrap();
        File::create(dead.join("lock")).unwrap();
        File::create(dead.join("17")).unwrap();
        let other = SpillDir::create(&local).unwrap();
        assert!(!dead.exists(), "the dead worker's directory is removed");
        assert!(live.path().exists(), "a live worker's directory stays");
        assert_ne!(live.path(), other.path());
        drop(live);
        drop(other);
        assert_eq!(fs::read_dir(local.join(SPACE)).unwrap().count(), 0);
        let _ = fs::remove_dir_all(&local);
    }
}

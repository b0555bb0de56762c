//! Where a worker keeps the values it holds: in memory, or spilled to disk.
//!
//! The [`Store`] maps a key id of the worker's core to its value and keeps
//! the counts heartbeats report: bytes held in memory (each value's
//! [`Value::size_estimate`]), bytes spilled (the same estimate, for values
//! on disk) and bytes the spill files take.
//!
//! Values in memory are kept in least-recently-used order (a value is
//! *used* when it is stored, read for a task, or served to a peer or a
//! client). [`Store::evict`] moves the least recently used ones to a
//! [`Disk`] until enough bytes are freed; [`Store::get`] reads a spilled
//! value back (without keeping it in memory: whoever asked holds it while
//! it needs it, and the store's memory stays bounded). The store decides;
//! the [`Disk`] does the I/O, so the core's unit tests run with an
//! in-memory fake ([`MemDisk`]) and the worker with spill files
//! ([`super::spill::FileDisk`]).

use super::state::KeyId;
use crate::value::Value;
use std::collections::BTreeSet;

/// Where spilled values go.
pub trait Disk: Send {
    /// Writes `value` as the spilled copy of `id` (replacing any); returns
    /// the bytes it takes on disk.
    fn write(&mut self, id: KeyId, value: &Value) -> Result<u64, String>;
    /// Reads the spilled copy of `id` back.
    fn read(&mut self, id: KeyId) -> Result<Value, String>;
    /// Deletes the spilled copy of `id` (if any).
    fn remove(&mut self, id: KeyId);
    /// The worker stops: remove whatever is left (the directory).
    fn close(&mut self) {}
}

/// A [`Disk`] in memory (for unit tests): values are kept encoded as
/// msgpack, so a read gives a fresh copy as a file would.
#[derive(Default)]
pub struct MemDisk {
    files: rustc_hash::FxHashMap<u32, Vec<u8>>,
    /// Makes every write fail (a full disk).
    pub fail_writes: bool,
}

impl MemDisk {
    /// Spilled copies held.
    pub fn len(&self) -> usize {
        self.files.len()
    }
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

impl Disk for MemDisk {
    fn write(&mut self, id: KeyId, value: &Value) -> Result<u64, String> {
        if self.fail_writes {
            return Err("no space left on device".into());
        }
        let b = crate::value::encode(value).map_err(|e| e.to_string())?;
        let n = b.len() as u64;
        self.files.insert(id.0, b);
        Ok(n)
    }
    fn read(&mut self, id: KeyId) -> Result<Value, String> {
        let b = self.files.get(&id.0).ok_or("no such spill file")?;
        crate::value::decode(b).map_err(|e| e.to_string())
    }
    fn remove(&mut self, id: KeyId) {
        self.files.remove(&id.0);
    }
}

enum Place {
    Memory(Value),
    /// On disk, taking this many bytes there.
    Disk(u64),
}

struct Stored {
    place: Place,
    nbytes: u64,
    /// When it was last used (the store's clock); its LRU position while
    /// in memory.
    used: u64,
}

/// Counters of spilling (cumulative).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpillStats {
    /// Values written to disk.
    pub spilled: u64,
    /// Their bytes (size estimates).
    pub spilled_bytes: u64,
    /// Spilled values read back (for a task, a peer or a client).
    pub unspilled: u64,
    /// Their bytes.
    pub unspilled_bytes: u64,
    /// Writes that failed (the value stayed in memory).
    pub write_errors: u64,
    /// Reads that failed (the value was reported missing).
    pub read_errors: u64,
}

/// The values a worker holds, indexed by key id.
pub struct Store {
    slots: Vec<Option<Stored>>,
    /// Bytes in memory (size estimates).
    memory: u64,
    /// Bytes spilled (size estimates of the values on disk).
    spilled: u64,
    /// Bytes the spill files take.
    disk_bytes: u64,
    count: usize,
    n_spilled: usize,
    limit: u64,
    /// Values in memory by (last use, id): the front is evicted first.
    lru: BTreeSet<(u64, u32)>,
    clock: u64,
    disk: Option<Box<dyn Disk>>,
    stats: SpillStats,
}

impl Default for Store {
    fn default() -> Self {
        Store::new(0)
    }
}

impl Store {
    /// An empty store without a disk; `limit` is the memory limit in bytes
    /// (0: none).
    pub fn new(limit: u64) -> Store {
        Store {
            slots: Vec::new(),
            memory: 0,
            spilled: 0,
            disk_bytes: 0,
            count: 0,
            n_spilled: 0,
            limit,
            lru: BTreeSet::new(),
            clock: 0,
            disk: None,
            stats: SpillStats::default(),
        }
    }

    /// An empty store that spills to `disk`.
    pub fn with_disk(limit: u64, disk: Box<dyn Disk>) -> Store {
        Store {
            disk: Some(disk),
            ..Store::new(limit)
        }
    }

    /// Whether values can be spilled.
    pub fn can_spill(&self) -> bool {
        self.disk.is_some()
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// Stores `value` under `id` in memory (replacing what was there) as
    /// the most recently used value, and returns its size estimate.
    pub fn insert(&mut self, id: KeyId, value: Value, nbytes: u64) -> u64 {
        self.remove(id);
        let i = id.0 as usize;
        if self.slots.len() <= i {
            self.slots.resize_with(i + 1, || None);
        }
        let used = self.tick();
        self.slots[i] = Some(Stored {
            place: Place::Memory(value),
            nbytes,
            used,
        });
        self.lru.insert((used, id.0));
        self.count += 1;
        self.memory += nbytes;
        nbytes
    }

    /// Whether a value is held under `id` (in memory or on disk).
    pub fn contains(&self, id: KeyId) -> bool {
        self.slot(id).is_some()
    }

    /// Whether the value under `id` is on disk.
    pub fn is_spilled(&self, id: KeyId) -> bool {
        matches!(self.slot(id).map(|s| &s.place), Some(Place::Disk(_)))
    }

    fn slot(&self, id: KeyId) -> Option<&Stored> {
        self.slots.get(id.0 as usize).and_then(|s| s.as_ref())
    }

    /// The value under `id`, read back from disk if it was spilled (then
    /// not kept in memory). A value in memory becomes the most recently
    /// used. `Err` when it is held but its spill file cannot be read.
    pub fn get(&mut self, id: KeyId) -> Option<Result<Value, String>> {
        let i = id.0 as usize;
        let s = self.slots.get_mut(i)?.as_mut()?;
        match &s.place {
            Place::Memory(v) => {
                let v = v.clone();
                self.clock += 1;
                let old = std::mem::replace(&mut s.used, self.clock);
                self.lru.remove(&(old, id.0));
                self.lru.insert((self.clock, id.0));
                Some(Ok(v))
            }
            Place::Disk(_) => {
                let nbytes = s.nbytes;
                let disk = self.disk.as_mut().expect("spilled without a disk");
                match disk.read(id) {
                    Ok(v) => {
                        self.stats.unspilled += 1;
                        self.stats.unspilled_bytes += nbytes;
                        Some(Ok(v))
                    }
                    Err(e) => {
                        self.stats.read_errors += 1;
                        Some(Err(e))
                    }
                }
            }
        }
    }

    /// The value under `id` if it is in memory (no disk access, no use).
    pub fn peek(&self, id: KeyId) -> Option<&Value> {
        match &self.slot(id)?.place {
            Place::Memory(v) => Some(v),
            Place::Disk(_) => None,
        }
    }

    /// The size estimate of the value under `id`.
    pub fn nbytes(&self, id: KeyId) -> Option<u64> {
        self.slot(id).map(|s| s.nbytes)
    }

    /// Deletes the value under `id` (and its spill file), if any.
    pub fn remove(&mut self, id: KeyId) {
        let Some(s) = self.slots.get_mut(id.0 as usize).and_then(|s| s.take()) else {
            return;
        };
        self.count -= 1;
        match s.place {
            Place::Memory(_) => {
                self.memory -= s.nbytes;
                self.lru.remove(&(s.used, id.0));
            }
            Place::Disk(on_disk) => {
                self.spilled -= s.nbytes;
                self.disk_bytes -= on_disk;
                self.n_spilled -= 1;
                if let Some(d) = self.disk.as_mut() {
                    d.remove(id);
                }
            }
        }
    }

    /// Deletes every value (and spill file); the disk stays.
    pub fn clear(&mut self) {
        for i in 0..self.slots.len() {
            self.remove(KeyId(i as u32));
        }
        self.slots.clear();
    }

    /// Deletes every value and closes the disk (the worker stops): no
    /// spill file is left behind.
    pub fn close(&mut self) {
        self.clear();
        if let Some(d) = self.disk.as_mut() {
            d.close();
        }
        self.disk = None;
    }

    /// Spills values in memory, least recently used first, until at least
    /// `need` bytes (size estimates) are freed or none is left in memory.
    /// Returns the bytes freed. A write that fails stops the round (the
    /// value stays in memory; the error is logged and counted).
    pub fn evict(&mut self, need: u64) -> u64 {
        let mut freed = 0;
        if self.disk.is_none() {
            return 0;
        }
        while freed < need {
            let Some(&(used, raw)) = self.lru.first() else {
                break;
            };
            let id = KeyId(raw);
            let s = self.slots[raw as usize].as_mut().expect("lru entry");
            let Place::Memory(v) = &s.place else {
                unreachable!("a spilled value in the lru")
            };
            let disk = self.disk.as_mut().expect("checked");
            match disk.write(id, v) {
                Ok(on_disk) => {
                    let nbytes = s.nbytes;
                    s.place = Place::Disk(on_disk);
                    self.lru.remove(&(used, raw));
                    self.memory -= nbytes;
                    self.spilled += nbytes;
                    self.disk_bytes += on_disk;
                    self.n_spilled += 1;
                    self.stats.spilled += 1;
                    self.stats.spilled_bytes += nbytes;
                    freed += nbytes;
                }
                Err(e) => {
                    self.stats.write_errors += 1;
                    tracing::error!(
                        "cannot spill a value of {} bytes to disk: {e}; keeping it in memory",
                        s.nbytes
                    );
                    break;
                }
            }
        }
        freed
    }

    /// The value under `id` when it is in memory, to replace it by a copy
    /// of itself (the same bytes elsewhere: in shared memory); its size
    /// and place in the LRU order stay.
    pub fn memory_mut(&mut self, id: KeyId) -> Option<&mut Value> {
        match &mut self.slots.get_mut(id.0 as usize)?.as_mut()?.place {
            Place::Memory(v) => Some(v),
            Place::Disk(_) => None,
        }
    }

    /// Bytes held in memory (sum of the size estimates).
    pub fn bytes(&self) -> u64 {
        self.memory
    }

    /// Bytes spilled to disk (sum of the size estimates of those values).
    pub fn spilled_bytes(&self) -> u64 {
        self.spilled
    }

    /// Bytes the spill files take on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.disk_bytes
    }

    /// Values held, in memory or on disk.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Values held on disk.
    pub fn spilled_len(&self) -> usize {
        self.n_spilled
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The memory limit in bytes; 0 for none.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Whether the bytes held in memory exceed the limit.
    pub fn over_limit(&self) -> bool {
        self.limit > 0 && self.memory > self.limit
    }

    pub fn spill_stats(&self) -> SpillStats {
        self.stats
    }

    /// Checks the totals and the LRU index from scratch (for `validate`).
    pub(crate) fn check(&self) -> Result<(), String> {
        let (mut memory, mut spilled, mut disk, mut count, mut n_spilled) = (0, 0, 0, 0, 0);
        for (i, s) in self.slots.iter().enumerate() {
            let Some(s) = s else { continue };
            count += 1;
            match s.place {
                Place::Memory(_) => {
                    memory += s.nbytes;
                    if !self.lru.contains(&(s.used, i as u32)) {
                        return Err(format!("store: id {i} in memory but not in the lru"));
                    }
                }
                Place::Disk(d) => {
                    spilled += s.nbytes;
                    disk += d;
                    n_spilled += 1;
                }
            }
        }
        if self.lru.len() != count - n_spilled {
            return Err("store: the lru has stale entries".into());
        }
        if (memory, spilled, disk, count, n_spilled)
            != (
                self.memory,
                self.spilled,
                self.disk_bytes,
                self.count,
                self.n_spilled,
            )
        {
            return Err("the store's totals are off".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bin(n: usize) -> Value {
        Value::Bin(vec![n as u8; n].into())
    }

    #[test]
    fn evicts_least_recently_used_first_and_reads_back() {
        let mut s = Store::with_disk(0, Box::<MemDisk>::default());
        for i in 0..4u32 {
            s.insert(KeyId(i), bin(10 + i as usize), 10 + i as u64);
        }
        // Using 0 makes 1 the least recently used.
        assert!(s.get(KeyId(0)).unwrap().is_ok());
        assert_eq!(s.evict(1), 11);
        assert!(s.is_spilled(KeyId(1)) && !s.is_spilled(KeyId(0)));
        assert_eq!(s.evict(20), 12 + 13);
        assert!(s.is_spilled(KeyId(2)) && s.is_spilled(KeyId(3)));
        assert_eq!((s.bytes(), s.spilled_bytes(), s.spilled_len()), (10, 36, 3));
        s.check().unwrap();
        // Read back, not kept in memory.
        assert_eq!(s.get(KeyId(2)).unwrap().unwrap(), bin(12));
        assert!(s.is_spilled(KeyId(2)));
        assert_eq!(s.spill_stats().unspilled, 1);
        s.remove(KeyId(2));
        s.check().unwrap();
        assert_eq!((s.len(), s.spilled_len(), s.spilled_bytes()), (3, 2, 24));
        // Nothing more in memory than the one value.
        assert_eq!(s.evict(1000), 10);
        assert_eq!(s.evict(1000), 0);
        s.clear();
        s.check().unwrap();
        assert_eq!(
            (s.len(), s.bytes(), s.spilled_bytes(), s.disk_bytes()),
            (0, 0, 0, 0)
        );
    }

    #[test]
    fn a_failed_write_keeps_the_value_in_memory() {
        let mut s = Store::with_disk(
            0,
            Box::new(MemDisk {
                fail_writes: true,
                ..MemDisk::default()
            }),
        );
        s.insert(KeyId(0), bin(5), 5);
        assert_eq!(s.evict(5), 0);
        assert!(!s.is_spilled(KeyId(0)));
        assert_eq!(s.spill_stats().write_errors, 1);
        assert_eq!(s.get(KeyId(0)).unwrap().unwrap(), bin(5));
        s.check().unwrap();
    }

    #[test]
    fn without_a_disk_nothing_spills() {
        let mut s = Store::new(10);
        s.insert(KeyId(3), bin(20), 20);
        assert!(s.over_limit());
        assert_eq!(s.evict(100), 0);
        s.insert(KeyId(3), bin(2), 2);
        assert_eq!((s.len(), s.bytes()), (1, 2));
        s.check().unwrap();
    }
}

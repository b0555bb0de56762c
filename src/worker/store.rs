//! Where a worker keeps the values it holds.
//!
//! The [`Store`] maps a key id of the worker's core to its value and keeps
//! the count of bytes held (each value's [`Value::size_estimate`]), which
//! heartbeats report against the memory limit.
//!
//! This is the seam for spilling to disk: every read goes through
//! [`Store::get`] and every write through [`Store::insert`] /
//! [`Store::remove`], so a later version can move cold values to disk when
//! [`Store::bytes`] passes a fraction of [`Store::limit`] and bring them
//! back on `get` without the rest of the worker changing.

use super::state::KeyId;
use crate::value::Value;

struct Stored {
    value: Value,
    nbytes: u64,
}

/// The values a worker holds, indexed by key id.
#[derive(Default)]
pub struct Store {
    slots: Vec<Option<Stored>>,
    bytes: u64,
    count: usize,
    limit: u64,
}

impl Store {
    /// An empty store; `limit` is the memory limit in bytes (0: none).
    pub fn new(limit: u64) -> Store {
        Store {
            limit,
            ..Store::default()
        }
    }

    /// Stores `value` under `id` (replacing what was there) and returns its
    /// size estimate.
    pub fn insert(&mut self, id: KeyId, value: Value, nbytes: u64) -> u64 {
        let i = id.0 as usize;
        if self.slots.len() <= i {
            self.slots.resize_with(i + 1, || None);
        }
        if let Some(old) = self.slots[i].replace(Stored { value, nbytes }) {
            self.bytes -= old.nbytes;
        } else {
            self.count += 1;
        }
        self.bytes += nbytes;
        nbytes
    }

    /// The value under `id`.
    pub fn get(&self, id: KeyId) -> Option<&Value> {
        self.slots
            .get(id.0 as usize)
            .and_then(|s| s.as_ref())
            .map(|s| &s.value)
    }

    /// The size estimate of the value under `id`.
    pub fn nbytes(&self, id: KeyId) -> Option<u64> {
        self.slots
            .get(id.0 as usize)
            .and_then(|s| s.as_ref())
            .map(|s| s.nbytes)
    }

    /// Deletes the value under `id`, if any.
    pub fn remove(&mut self, id: KeyId) -> Option<Value> {
        let s = self.slots.get_mut(id.0 as usize)?.take()?;
        self.bytes -= s.nbytes;
        self.count -= 1;
        Some(s.value)
    }

    /// Bytes held (sum of the size estimates).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Values held.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The memory limit in bytes; 0 for none.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Whether the bytes held exceed the limit.
    pub fn over_limit(&self) -> bool {
        self.limit > 0 && self.bytes > self.limit
    }

    /// Recounts the bytes and values from scratch (for `validate`).
    pub(crate) fn recount(&self) -> (u64, usize) {
        self.slots
            .iter()
            .flatten()
            .fold((0, 0), |(b, n), s| (b + s.nbytes, n + 1))
    }
}

//! Small collections tuned for the task table.
//!
//! - [`IdSet`]: a task's dependents. Almost every task has a handful, so it
//!   is a plain `Vec` (no hashing, no allocation when empty); past
//!   [`IdSet::LARGE`] entries it becomes a hash set, so that forgetting one
//!   of 100,000 dependents of a scattered array is O(1), not O(n).
//! - [`Holders`]: the workers holding a key's data. Almost always exactly
//!   one, kept inline; a boxed list for replicas.
//! - [`FuncQueue`]: the scheduler-side queue of ready tasks of one function,
//!   lowest priority first, with lazy deletion (see its docs).

use super::{TaskId, WorkerId};
use rustc_hash::FxHashSet;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A set of task ids: a `Vec` while small, a hash set when large.
#[derive(Debug, Clone)]
pub enum IdSet {
    Small(Vec<TaskId>),
    Large(Box<FxHashSet<TaskId>>),
}

impl Default for IdSet {
    fn default() -> Self {
        IdSet::Small(Vec::new())
    }
}

impl IdSet {
    /// Size at which a set switches to hashing.
    pub const LARGE: usize = 32;

    pub fn len(&self) -> usize {
        match self {
            IdSet::Small(v) => v.len(),
            IdSet::Large(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds `t` (the caller guarantees it is not already present).
    pub fn insert(&mut self, t: TaskId) {
        match self {
            IdSet::Small(v) => {
                if v.len() < Self::LARGE {
                    v.push(t);
                } else {
                    let mut s: FxHashSet<TaskId> = v.drain(..).collect();
                    s.insert(t);
                    *self = IdSet::Large(Box::new(s));
                }
            }
            IdSet::Large(s) => {
                s.insert(t);
            }
        }
    }

    /// Removes `t`; returns whether it was present.
    pub fn remove(&mut self, t: TaskId) -> bool {
        match self {
            IdSet::Small(v) => match v.iter().position(|&x| x == t) {
                Some(i) => {
                    v.swap_remove(i);
                    true
                }
                None => false,
            },
            IdSet::Large(s) => s.remove(&t),
        }
    }

    pub fn contains(&self, t: TaskId) -> bool {
        match self {
            IdSet::Small(v) => v.contains(&t),
            IdSet::Large(s) => s.contains(&t),
        }
    }

    /// Appends every id to `out` (for iterating while mutating the table).
    pub fn copy_into(&self, out: &mut Vec<TaskId>) {
        match self {
            IdSet::Small(v) => out.extend_from_slice(v),
            IdSet::Large(s) => out.extend(s.iter().copied()),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = TaskId> + '_ {
        let (a, b) = match self {
            IdSet::Small(v) => (Some(v.iter().copied()), None),
            IdSet::Large(s) => (None, Some(s.iter().copied())),
        };
        a.into_iter().flatten().chain(b.into_iter().flatten())
    }
}

/// The workers holding a key: one inline, or a boxed list of two or more.
#[derive(Debug, Clone, PartialEq)]
pub enum Holders {
    One(WorkerId),
    Many(Box<Vec<WorkerId>>),
}

impl Holders {
    pub fn as_slice(&self) -> &[WorkerId] {
        match self {
            Holders::One(w) => std::slice::from_ref(w),
            Holders::Many(v) => v,
        }
    }

    pub fn contains(&self, w: WorkerId) -> bool {
        self.as_slice().contains(&w)
    }

    /// Adds `w` if absent; returns whether it was added.
    pub fn add(&mut self, w: WorkerId) -> bool {
        if self.contains(w) {
            return false;
        }
        match self {
            Holders::One(a) => *self = Holders::Many(Box::new(vec![*a, w])),
            Holders::Many(v) => v.push(w),
        }
        true
    }

    /// Removes `w`. Returns `None` when no holder is left (the caller then
    /// decides what the key becomes), otherwise the remaining holders.
    pub fn remove(self, w: WorkerId) -> Option<Holders> {
        match self {
            Holders::One(a) if a == w => None,
            h @ Holders::One(_) => Some(h),
            Holders::Many(mut v) => {
                v.retain(|&x| x != w);
                match v.len() {
                    0 => None,
                    1 => Some(Holders::One(v[0])),
                    _ => Some(Holders::Many(v)),
                }
            }
        }
    }
}

/// Ready tasks of one function waiting in the scheduler for a worker slot,
/// lowest `(priority, id)` first.
///
/// Two parts: a binary heap for tasks queued a few at a time, and a sorted
/// run (descending, popped from the end in O(1)) for tasks queued in bulk,
/// which is how a large submission arrives: a million root tasks are sorted
/// once instead of sifted through a million-entry heap on every pop.
///
/// Deletion is lazy: a task that leaves the `queued` state keeps its entry,
/// and whoever pops checks the task's state. The task's `IN_QUEUE` flag
/// says whether an entry exists, so a task that comes back to `queued`
/// is never entered twice (its priority never changes).
#[derive(Debug, Default)]
pub struct FuncQueue {
    heap: BinaryHeap<Reverse<(u64, TaskId)>>,
    run: Vec<(u64, TaskId)>,
}

impl FuncQueue {
    /// Entries that go to the sorted run instead of the heap.
    const BULK: usize = 64;

    pub fn len(&self) -> usize {
        self.heap.len() + self.run.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty() && self.run.is_empty()
    }

    pub fn push(&mut self, priority: u64, t: TaskId) {
        self.heap.push(Reverse((priority, t)));
    }

    /// Adds many entries at once (any order).
    pub fn extend(&mut self, mut items: Vec<(u64, TaskId)>) {
        if items.len() < Self::BULK {
            for (p, t) in items {
                self.push(p, t);
            }
            return;
        }
        if self.run.is_empty() {
            items.sort_unstable_by(|a, b| b.cmp(a));
            self.run = items;
        } else {
            self.run.extend(items);
            self.run.sort_unstable_by(|a, b| b.cmp(a));
        }
    }

    /// The smallest entry, without removing it.
    pub fn peek(&self) -> Option<(u64, TaskId)> {
        let h = self.heap.peek().map(|r| r.0);
        let r = self.run.last().copied();
        match (h, r) {
            (Some(h), Some(r)) => Some(h.min(r)),
            (a, b) => a.or(b),
        }
    }

    /// Removes and returns the smallest entry.
    pub fn pop(&mut self) -> Option<(u64, TaskId)> {
        let h = self.heap.peek().map(|r| r.0);
        let r = self.run.last().copied();
        match (h, r) {
            (Some(h), Some(r)) if h < r => self.heap.pop().map(|r| r.0),
            (_, Some(_)) => self.run.pop(),
            (Some(_), None) => self.heap.pop().map(|r| r.0),
            (None, None) => None,
        }
    }

    /// Every entry, in no particular order (validation).
    pub fn entries(&self) -> impl Iterator<Item = (u64, TaskId)> + '_ {
        self.heap
            .iter()
            .map(|r| r.0)
            .chain(self.run.iter().copied())
    }

    /// Drops every entry, returning them.
    pub fn drain(&mut self) -> Vec<(u64, TaskId)> {
        let mut v: Vec<(u64, TaskId)> = self.heap.drain().map(|r| r.0).collect();
        v.append(&mut self.run);
        v
    }
}

/// A bit set over small dense ids (function ids).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct BitSet(Vec<u64>);

impl BitSet {
    pub fn insert(&mut self, i: u32) {
        let (w, b) = (i as usize / 64, i % 64);
        if self.0.len() <= w {
            self.0.resize(w + 1, 0);
        }
        self.0[w] |= 1 << b;
    }

    #[inline]
    pub fn contains(&self, i: u32) -> bool {
        let (w, b) = (i as usize / 64, i % 64);
        self.0.get(w).is_some_and(|x| x & (1 << b) != 0)
    }

    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().enumerate().flat_map(|(w, &bits)| {
            (0..64u32)
                .filter(move |b| bits & (1 << b) != 0)
                .map(move |b| w as u32 * 64 + b)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idset_grows_into_a_hash_set_and_removes() {
        let mut s = IdSet::default();
        for i in 0..100 {
            s.insert(TaskId(i));
        }
        assert!(matches!(s, IdSet::Large(_)));
        assert_eq!(s.len(), 100);
        assert!(s.remove(TaskId(50)));
        assert!(!s.remove(TaskId(50)));
        assert!(!s.contains(TaskId(50)));
        assert_eq!(s.iter().count(), 99);
    }

    #[test]
    fn queue_merges_heap_and_run_in_order() {
        let mut q = FuncQueue::default();
        q.extend((0..200).map(|i| (i * 2, TaskId(i as u32))).collect());
        q.push(5, TaskId(1000));
        q.push(1000, TaskId(1001));
        let mut last = None;
        let mut n = 0;
        while let Some(e) = q.pop() {
            if let Some(l) = last {
                assert!(e > l);
            }
            last = Some(e);
            n += 1;
        }
        assert_eq!(n, 202);
    }

    #[test]
    fn holders() {
        let mut h = Holders::One(WorkerId(1));
        assert!(!h.add(WorkerId(1)));
        assert!(h.add(WorkerId(2)));
        let h = h.remove(WorkerId(1)).unwrap();
        assert_eq!(h, Holders::One(WorkerId(2)));
        assert!(h.remove(WorkerId(2)).is_none());
    }
}

/// A growable table of slots in fixed chunks of [`Slab::CHUNK`]: unlike a
/// `Vec`, growing never copies the table and never leaves up to half of it
/// allocated but unused (a `Vec` of a million 120-byte tasks can hold 64 MB
/// of spare capacity). Indexing is a shift and a mask.
#[derive(Debug)]
pub struct Slab<T> {
    chunks: Vec<Vec<Option<T>>>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Slab<T> {
    const BITS: u32 = 10;
    pub const CHUNK: usize = 1 << Self::BITS;

    /// Number of slots (used or not).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends a slot; returns its index.
    pub fn push(&mut self, v: Option<T>) -> usize {
        match self.chunks.last_mut() {
            Some(c) if c.len() < Self::CHUNK => c.push(v),
            _ => {
                // The first chunk grows by doubling (small schedulers stay
                // small); later ones are allocated whole.
                let mut c = if self.chunks.is_empty() {
                    Vec::new()
                } else {
                    Vec::with_capacity(Self::CHUNK)
                };
                c.push(v);
                self.chunks.push(c);
            }
        }
        self.len += 1;
        self.len - 1
    }

    #[inline]
    pub fn get(&self, i: usize) -> Option<&Option<T>> {
        self.chunks.get(i >> Self::BITS)?.get(i & (Self::CHUNK - 1))
    }

    /// Every slot, in index order.
    pub fn iter(&self) -> impl Iterator<Item = &Option<T>> {
        self.chunks.iter().flatten()
    }
}

impl<T> std::ops::Index<usize> for Slab<T> {
    type Output = Option<T>;
    #[inline]
    fn index(&self, i: usize) -> &Option<T> {
        &self.chunks[i >> Self::BITS][i & (Self::CHUNK - 1)]
    }
}

impl<T> std::ops::IndexMut<usize> for Slab<T> {
    #[inline]
    fn index_mut(&mut self, i: usize) -> &mut Option<T> {
        &mut self.chunks[i >> Self::BITS][i & (Self::CHUNK - 1)]
    }
}

//! A bounded log that snapshots share instead of copying.
//!
//! The task stream, the event log and the worker memory samples are the
//! last N entries of an append-only log. A snapshot is taken several times
//! a second while a page is open; copying 20,000 entries each time was the
//! largest part of a snapshot's cost. A [`Ring`] keeps its entries in
//! sealed chunks of [`CHUNK`] entries, each behind an `Arc`, plus an open
//! tail: a [`View`] clones the chunks' `Arc`s and copies only the tail
//! (fewer than [`CHUNK`] entries), whatever the length.

use std::collections::VecDeque;
use std::sync::Arc;

/// Entries per sealed chunk.
pub const CHUNK: usize = 256;

/// The last `cap` entries pushed (see the module docs).
#[derive(Debug)]
pub struct Ring<T> {
    sealed: VecDeque<Arc<[T]>>,
    tail: Vec<T>,
    /// Entries in `sealed` and `tail`.
    held: usize,
    cap: usize,
}

impl<T: Clone> Ring<T> {
    pub fn new(cap: usize) -> Ring<T> {
        Ring {
            sealed: VecDeque::new(),
            tail: Vec::new(),
            held: 0,
            cap,
        }
    }

    pub fn push(&mut self, x: T) {
        self.tail.push(x);
        self.held += 1;
        if self.tail.len() == CHUNK {
            let chunk: Arc<[T]> = std::mem::take(&mut self.tail).into();
            self.sealed.push_back(chunk);
        }
        // Drop the oldest chunk once the rest holds `cap` entries.
        while let Some(front) = self.sealed.front() {
            if self.held - front.len() < self.cap {
                break;
            }
            self.held -= front.len();
            self.sealed.pop_front();
        }
    }

    /// The last `cap` entries, oldest first, sharing the sealed chunks.
    pub fn view(&self) -> View<T> {
        let mut chunks: Vec<Arc<[T]>> = self.sealed.iter().cloned().collect();
        if !self.tail.is_empty() {
            chunks.push(self.tail.as_slice().into());
        }
        let len = self.held.min(self.cap);
        View {
            chunks,
            skip: self.held - len,
            len,
        }
    }
}

/// The entries of a [`Ring`] when the view was taken, oldest first.
#[derive(Clone, Debug)]
pub struct View<T> {
    chunks: Vec<Arc<[T]>>,
    /// Entries of the first chunk that are past the ring's capacity.
    skip: usize,
    len: usize,
}

impl<T> Default for View<T> {
    fn default() -> View<T> {
        View {
            chunks: Vec::new(),
            skip: 0,
            len: 0,
        }
    }
}

impl<T> View<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Entries from index `from` on (0: the oldest), in order.
    pub fn iter_from(&self, from: usize) -> impl Iterator<Item = &T> + '_ {
        self.chunks
            .iter()
            .flat_map(|c| c.iter())
            .skip(self.skip + from)
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        self.iter_from(0)
    }

    pub fn get(&self, i: usize) -> Option<&T> {
        if i >= self.len {
            return None;
        }
        let mut i = i + self.skip;
        for c in &self.chunks {
            if i < c.len() {
                return Some(&c[i]);
            }
            i -= c.len();
        }
        None
    }

    pub fn last(&self) -> Option<&T> {
        self.len.checked_sub(1).and_then(|i| self.get(i))
    }

    /// The index of the first entry for which `pred` is false, the entries
    /// being ordered so that `pred` holds for a prefix (as
    /// `slice::partition_point`).
    pub fn partition_point(&self, mut pred: impl FnMut(&T) -> bool) -> usize {
        let (mut lo, mut hi) = (0, self.len);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if pred(self.get(mid).expect("in range")) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Serializes the entries from index `from` on, as a JSON array.
    pub fn from(&self, from: usize) -> From<'_, T> {
        From { view: self, from }
    }
}

impl<T> std::ops::Index<usize> for View<T> {
    type Output = T;
    fn index(&self, i: usize) -> &T {
        self.get(i).expect("index within the view")
    }
}

/// The entries of a [`View`] from an index on, serialized as a sequence.
pub struct From<'a, T> {
    view: &'a View<T>,
    from: usize,
}

impl<T: serde::Serialize> serde::Serialize for From<'_, T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.view.iter_from(self.from))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_holds_the_last_cap_entries_in_order_and_later_pushes_leave_it_alone() {
        for cap in [1, 5, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 7] {
            let mut r = Ring::new(cap);
            for n in 0..4 * CHUNK + 3 {
                r.push(n);
                let v = r.view();
                let want: Vec<usize> = (0..=n).skip((n + 1).saturating_sub(cap)).collect();
                assert_eq!(v.len(), want.len(), "cap {cap}, n {n}");
                assert_eq!(v.iter().copied().collect::<Vec<_>>(), want);
                assert_eq!(v.last(), want.last());
                let i = want.len() / 2;
                assert_eq!(v.get(i), want.get(i));
                assert_eq!(v.partition_point(|&x| x < want[i]), i);
                assert_eq!(v.iter_from(i).count(), want.len() - i);
            }
            // Held: at most a chunk more than asked.
            assert!(r.held < cap + CHUNK);
            let before = r.view();
            let kept: Vec<usize> = before.iter().copied().collect();
            for n in 0..2 * CHUNK {
                r.push(1_000_000 + n);
            }
            assert_eq!(before.iter().copied().collect::<Vec<_>>(), kept);
        }
    }

    #[test]
    fn from_serializes_the_rest_as_a_json_array() {
        let mut r = Ring::new(10);
        for n in 0..20u32 {
            r.push(n);
        }
        let v = r.view();
        assert_eq!(serde_json::to_string(&v.from(7)).unwrap(), "[17,18,19]");
        assert_eq!(serde_json::to_string(&v.from(10)).unwrap(), "[]");
        assert!(View::<u32>::default().is_empty());
    }
}

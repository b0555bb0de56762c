//! Futures: handles on keys a client wants.

use super::error::ClientError;
use super::state::{Inner, KeyState, KeyStatus, State};
use super::Client;
use crate::value::Value;
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::fmt;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// Where a future's key stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// Not computed yet (waiting, queued or running).
    Pending,
    /// The value is in a worker's memory.
    Finished,
    /// The task (or one it depends on) failed, or the connection was lost.
    Error,
    /// The key was cancelled.
    Cancelled,
}

/// A handle on a key's value in the cluster.
///
/// Futures are reference counted per key inside their client: cloning one
/// adds a reference, and when the last future of a key is dropped the client
/// tells the scheduler it no longer wants the key (`release-keys`, batched),
/// so its data can be freed. Two futures on the same key are equal.
pub struct Future {
    pub(crate) key: Arc<str>,
    /// The key's slot in the client's table (see `state::Keys`).
    pub(crate) slot: u32,
    pub(crate) inner: Arc<Inner>,
}

impl Future {
    /// Wraps a slot whose reference the caller already counted.
    pub(crate) fn counted(st: &State, slot: u32, inner: &Arc<Inner>) -> Future {
        Future {
            key: Arc::clone(&st.keys.get(slot).name),
            slot,
            inner: Arc::clone(inner),
        }
    }

    /// This future's key state (the caller holds the lock).
    pub(crate) fn state<'a>(&self, st: &'a State) -> &'a KeyState {
        st.keys.get(self.slot)
    }

    /// The key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The current status (does not wait).
    pub fn status(&self) -> Status {
        match &self.state(&self.inner.lock()).status {
            KeyStatus::Pending => Status::Pending,
            KeyStatus::Finished(_) => Status::Finished,
            KeyStatus::Error(_) => Status::Error,
            KeyStatus::Cancelled => Status::Cancelled,
        }
    }

    /// The size of the value in bytes, as the worker estimated it, once
    /// the future finished.
    pub fn nbytes(&self) -> Option<u64> {
        match &self.state(&self.inner.lock()).status {
            KeyStatus::Finished(f) => Some(f.nbytes),
            _ => None,
        }
    }

    /// Whether the future is no longer pending.
    pub fn done(&self) -> bool {
        self.status() != Status::Pending
    }

    /// Waits until the future is done, at most `timeout` (forever with
    /// `None`). Returns whether it is done.
    pub fn wait(&self, timeout: Option<Duration>) -> bool {
        let deadline = timeout.map(|t| Instant::now() + t);
        self.inner
            .wait_key(deadline, self.slot, |st| self.state(st).status.is_done())
    }

    /// Waits for the value (at most `timeout`; forever with `None`) and
    /// returns it, fetching it from a worker if the scheduler did not send
    /// it inline. A failed task gives [`ClientError::Task`], a cancelled key
    /// [`ClientError::Cancelled`], the deadline [`ClientError::Timeout`].
    pub fn result(&self, timeout: Option<Duration>) -> Result<Value, ClientError> {
        if !self.wait(timeout) {
            return Err(ClientError::Timeout(format!(
                "key '{}' is not done after {:?}",
                self.key,
                timeout.unwrap_or_default()
            )));
        }
        let mut v = super::gather_from(&self.inner, std::slice::from_ref(self))?;
        Ok(v.pop().unwrap_or_default())
    }

    /// The last warning the scheduler sent about this key, if any (does
    /// not wait): for instance that no connected worker offers a function
    /// it needs, so it waits for one (a misspelt function name). The
    /// client also logs each warning (`tracing`, target `rask::client`).
    pub fn warning(&self) -> Option<String> {
        self.state(&self.inner.lock())
            .warning
            .as_deref()
            .map(str::to_string)
    }

    /// The error of a failed or cancelled future; `None` while it is
    /// pending or when it finished (does not wait).
    pub fn exception(&self) -> Option<ClientError> {
        match &self.state(&self.inner.lock()).status {
            KeyStatus::Error(e) => Some(e.clone()),
            KeyStatus::Cancelled => Some(ClientError::Cancelled(self.key.to_string())),
            _ => None,
        }
    }

    /// Cancels this future (see [`Client::cancel`]).
    pub fn cancel(&self) -> Result<(), ClientError> {
        super::cancel_in(&self.inner, std::slice::from_ref(self))
    }

    pub(crate) fn belongs_to(&self, inner: &Arc<Inner>) -> bool {
        Arc::ptr_eq(&self.inner, inner)
    }
}

/// The `slot` of a future whose reference was already dropped (by
/// [`Future::drop_many`]): its `Drop` does nothing more.
const RELEASED: u32 = u32::MAX;

impl Future {
    /// New references to `fs`, all of one client, taking the client's lock
    /// once (a clone takes it once per future).
    pub(crate) fn clone_many<'a>(fs: impl Iterator<Item = &'a Future> + Clone) -> Vec<Future> {
        let Some(first) = fs.clone().next() else {
            return Vec::new();
        };
        let inner = &first.inner;
        if fs.clone().any(|f| !Arc::ptr_eq(&f.inner, inner)) {
            return fs.cloned().collect();
        }
        inner.add_refs(fs.clone().map(|f| f.slot));
        fs.map(|f| Future {
            key: Arc::clone(&f.key),
            slot: f.slot,
            inner: Arc::clone(&f.inner),
        })
        .collect()
    }

    /// Drops `fs`, all of one client, taking the client's lock once (see
    /// [`Inner::drop_refs`]).
    pub(crate) fn drop_many(mut fs: Vec<Future>) {
        let Some(first) = fs.first() else {
            return;
        };
        let inner = Arc::clone(&first.inner);
        if fs.iter().any(|f| !Arc::ptr_eq(&f.inner, &inner)) {
            return; // one by one
        }
        inner.drop_refs(fs.iter().map(|f| f.slot));
        for f in &mut fs {
            f.slot = RELEASED;
        }
    }
}

impl Clone for Future {
    fn clone(&self) -> Self {
        self.inner.add_ref(self.slot);
        Future {
            key: Arc::clone(&self.key),
            slot: self.slot,
            inner: Arc::clone(&self.inner),
        }
    }
}

impl Drop for Future {
    fn drop(&mut self) {
        if self.slot != RELEASED {
            self.inner.drop_ref(self.slot);
        }
    }
}

impl PartialEq for Future {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key && Arc::ptr_eq(&self.inner, &other.inner)
    }
}
impl Eq for Future {}

impl std::hash::Hash for Future {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key.hash(state)
    }
}

impl fmt::Debug for Future {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Future({:?}, {:?})", &*self.key, self.status())
    }
}

/// What [`Client::wait`] waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitMode {
    /// Every future is done.
    All,
    /// At least one future is done.
    FirstCompleted,
}

/// Futures in the order they finish (see [`Client::as_completed`]).
///
/// Iterate it (`for f in &ac` or `while let Some(f) = ac.next()`) and
/// [`add`](AsCompleted::add) more futures while iterating: each is yielded
/// once it is done (finished, erred or cancelled). Iteration ends when every
/// future added so far has been yielded.
pub struct AsCompleted {
    inner: Arc<Inner>,
    tx: mpsc::Sender<u32>,
    rx: Mutex<mpsc::Receiver<u32>>,
    state: Mutex<AcState>,
}

#[derive(Default)]
struct AcState {
    ready: VecDeque<Future>,
    /// By slot (a future in here keeps its slot alive).
    pending: FxHashMap<u32, Vec<Future>>,
}

impl AsCompleted {
    pub(crate) fn new(client: &Client) -> AsCompleted {
        let (tx, rx) = mpsc::channel();
        AsCompleted {
            inner: Arc::clone(&client.inner),
            tx,
            rx: Mutex::new(rx),
            state: Mutex::new(AcState::default()),
        }
    }

    /// Adds a future (of the same client) to yield once it is done.
    ///
    /// # Panics
    /// When the future belongs to another client.
    pub fn add(&self, f: Future) {
        assert!(
            f.belongs_to(&self.inner),
            "AsCompleted::add: the future belongs to another client"
        );
        let slot = f.slot;
        self.state.lock().pending.entry(slot).or_default().push(f);
        let mut st = self.inner.lock();
        let k = st.keys.get_mut(slot);
        if k.status.is_done() {
            let _ = self.tx.send(slot);
        } else {
            k.watchers.push(self.tx.clone());
        }
    }

    /// How many futures are not yielded yet.
    pub fn len(&self) -> usize {
        let st = self.state.lock();
        st.ready.len() + st.pending.values().map(Vec::len).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The next done future, waiting at most `timeout`; `Ok(None)` when
    /// every future was yielded, `Err(())` on the deadline.
    #[allow(clippy::result_unit_err)]
    pub fn next_timeout(&self, timeout: Option<Duration>) -> Result<Option<Future>, ()> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            {
                let mut st = self.state.lock();
                if let Some(f) = st.ready.pop_front() {
                    return Ok(Some(f));
                }
                if st.pending.is_empty() {
                    return Ok(None);
                }
            }
            let slot = {
                let rx = self.rx.lock();
                match deadline {
                    None => rx.recv().map_err(|_| ()),
                    Some(d) => rx
                        .recv_timeout(d.saturating_duration_since(Instant::now()))
                        .map_err(|_| ()),
                }
            }?;
            let mut st = self.state.lock();
            if let Some(fs) = st.pending.remove(&slot) {
                st.ready.extend(fs);
            }
        }
    }
}

impl Iterator for &AsCompleted {
    type Item = Future;
    fn next(&mut self) -> Option<Future> {
        // Our own sender lives as long as we do: recv never disconnects.
        self.next_timeout(None).ok().flatten()
    }
}

impl Iterator for AsCompleted {
    type Item = Future;
    fn next(&mut self) -> Option<Future> {
        (&*self).next()
    }
}

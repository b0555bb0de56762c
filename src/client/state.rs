//! The client's shared state: one entry per key the client holds futures
//! on, updated by the reader task of the scheduler connection and waited on
//! by host threads.

use super::error::{ClientError, TaskError};
use super::peer::PeerPool;
use super::ClientConfig;
use crate::protocol::conn::{Inbox, Outbox, Received};
use crate::protocol::{narrow, ErrorCode, Message, SchedulerToClient};
use crate::value::Value;
use parking_lot::{Condvar, Mutex, MutexGuard};
use rustc_hash::FxHashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;
use tokio::sync::{oneshot, watch};

/// The error a request's `error` reply becomes.
fn reply_error(message: String, code: Option<&str>) -> ClientError {
    match code {
        // A coordination wait that ran out of the caller's time, and a
        // request the scheduler found unusable.
        Some("timeout") => ClientError::Timeout(message),
        Some("bad-argument") => ClientError::BadArgument(message),
        Some(c) => ClientError::Protocol(format!("{message} ({c})")),
        None => ClientError::Protocol(message),
    }
}

/// What is known about a key's value.
#[derive(Clone, Debug)]
pub(crate) enum KeyStatus {
    Pending,
    Finished(Finished),
    Error(ClientError),
    Cancelled,
}

impl KeyStatus {
    pub(crate) fn is_done(&self) -> bool {
        !matches!(self, KeyStatus::Pending)
    }
}

/// A key in memory: where, and its value when the scheduler sent it inline.
#[derive(Clone, Debug)]
pub(crate) struct Finished {
    pub nbytes: u64,
    pub workers: Vec<String>,
    pub value: Option<Value>,
}

pub(crate) struct KeyState {
    /// The key (shared with the index and the futures).
    pub name: Arc<str>,
    /// Where it is in [`Keys`].
    pub slot: u32,
    /// Live [`super::Future`]s on this key.
    pub refs: usize,
    pub status: KeyStatus,
    /// `as_completed` iterators waiting for this key (they are sent its
    /// slot).
    pub watchers: Vec<mpsc::Sender<u32>>,
    /// Threads waiting for this key alone ([`Inner::wait_key`]), each on
    /// its own condition variable: a key that ends wakes its waiters, not
    /// every thread waiting on the client (with a thousand tasks of a
    /// worker waiting on their children, a wake for all at every result
    /// was most of the worker's time).
    pub key_waits: Vec<Arc<Condvar>>,
    /// `cancel-keys` sent and not yet answered by `key-cancelled`: those
    /// answers confirm the local cancel and must not cancel a resubmission.
    pub cancels_sent: u32,
    /// Its scheduler connection was lost: it is out of the index (a key
    /// submitted again gets a new slot), and dropping it sends nothing.
    pub detached: bool,
    /// Counts the scheduler's `key-in-memory` for this key (a lost key
    /// recomputed is announced again).
    pub announced: u64,
    /// The last `warning` the scheduler sent about this key (say, no
    /// connected worker offers a function it needs).
    pub warning: Option<Arc<str>>,
    /// The id of the `update-graph` that last made it pending (0: none):
    /// an `error` with that id (a `bad-graph`) fails it.
    pub graph: u64,
}

impl KeyState {
    fn new(name: Arc<str>, slot: u32) -> KeyState {
        KeyState {
            name,
            slot,
            refs: 1,
            status: KeyStatus::Pending,
            watchers: Vec::new(),
            key_waits: Vec::new(),
            cancels_sent: 0,
            announced: 0,
            detached: false,
            warning: None,
            graph: 0,
        }
    }

    pub(crate) fn set_done(&mut self, status: KeyStatus) {
        self.status = status;
        for w in self.watchers.drain(..) {
            let _ = w.send(self.slot);
        }
        // Each waiter takes itself off the list when it returns.
        for c in &self.key_waits {
            c.notify_one();
        }
    }
}

/// The keys the client holds futures on: a slab of [`KeyState`]s (a
/// future keeps the index of its slot, so waiting on it or reading it
/// costs no hashing) and an index by name for what the scheduler sends.
/// A slot is reused only after its last future is gone.
#[derive(Default)]
pub(crate) struct Keys {
    index: FxHashMap<Arc<str>, u32>,
    slots: Vec<KeyState>,
    free: Vec<u32>,
}

impl Keys {
    /// The state of a live slot (one a future holds).
    pub(crate) fn get(&self, slot: u32) -> &KeyState {
        &self.slots[slot as usize]
    }

    pub(crate) fn get_mut(&mut self, slot: u32) -> &mut KeyState {
        &mut self.slots[slot as usize]
    }

    /// Whether `slot` is live and holds `key` (the same `Arc` its futures
    /// hold): false once its last future is gone, even if the slot was
    /// reused for another key since.
    pub(crate) fn holds(&self, slot: u32, key: &Arc<str>) -> bool {
        self.slots
            .get(slot as usize)
            .is_some_and(|k| k.refs > 0 && Arc::ptr_eq(&k.name, key))
    }

    /// The slot of a live key.
    pub(crate) fn slot_of(&self, key: &str) -> Option<u32> {
        self.index.get(key).copied()
    }

    pub(crate) fn by_name_mut(&mut self, key: &str) -> Option<&mut KeyState> {
        let i = *self.index.get(key)?;
        Some(&mut self.slots[i as usize])
    }

    /// One more reference to `key`, creating it (pending) if it is new.
    /// Returns its slot and whether it was created.
    pub(crate) fn acquire(&mut self, key: &str) -> (u32, bool) {
        if let Some(&i) = self.index.get(key) {
            self.slots[i as usize].refs += 1;
            return (i, false);
        }
        (self.create(Arc::from(key)), true)
    }

    /// A new key with one reference. The caller makes sure it is new.
    pub(crate) fn create(&mut self, name: Arc<str>) -> u32 {
        let slot = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots
                    .push(KeyState::new(Arc::clone(&name), self.slots.len() as u32));
                self.slots.len() as u32 - 1
            }
        };
        self.slots[slot as usize] = KeyState::new(Arc::clone(&name), slot);
        self.index.insert(name, slot);
        slot
    }

    /// One reference fewer; returns the key's name when it was the last.
    pub(crate) fn release(&mut self, slot: u32) -> Option<Arc<str>> {
        let ks = &mut self.slots[slot as usize];
        ks.refs -= 1;
        if ks.refs > 0 {
            return None;
        }
        ks.watchers.clear();
        ks.status = KeyStatus::Pending;
        self.free.push(slot);
        if ks.detached {
            return None;
        }
        self.index.remove(&*ks.name);
        Some(Arc::clone(&ks.name))
    }

    /// The connection was lost: every live key leaves the index (the
    /// futures on them keep their slots, erred).
    pub(crate) fn detach_all(&mut self) {
        for &i in self.index.values() {
            self.slots[i as usize].detached = true;
        }
        self.index.clear();
    }

    /// Every live key.
    pub(crate) fn live(&self) -> impl Iterator<Item = &KeyState> {
        self.index.values().map(|&i| &self.slots[i as usize])
    }

    pub(crate) fn live_mut(&mut self) -> impl Iterator<Item = &mut KeyState> {
        self.slots.iter_mut().filter(|k| k.refs > 0)
    }
}

type RequestWaiter = oneshot::Sender<Result<Message, ClientError>>;

pub(crate) struct State {
    pub keys: Keys,
    /// The scheduler connection; `None` once it is closed.
    outbox: Option<Outbox>,
    /// Why the client cannot be used any more.
    pub closed: Option<String>,
    /// Keys whose last future was dropped, not yet sent in `release-keys`.
    releases: Vec<Arc<str>>,
    flush_scheduled: bool,
    /// Requests to the scheduler waiting for their reply, by id.
    requests: FxHashMap<u64, RequestWaiter>,
    /// The id of the last `update-graph` sent: a `bad-graph` error without
    /// an id (from a scheduler older than request ids on `update-graph`)
    /// fails its keys.
    last_graph: u64,
    /// Why the scheduler said it closes the connection.
    close_reason: Option<String>,
    /// Set while the connection is lost and the client reconnects: why.
    pub lost: Option<String>,
    /// Topic subscriptions: name → (subscription id, messages not read yet).
    pub topics: FxHashMap<String, Vec<(u64, std::collections::VecDeque<Value>)>>,
}

impl State {
    /// Sends a message to the scheduler, after any pending releases (a
    /// release queued before a resubmission of the same key must reach the
    /// scheduler first).
    pub(crate) fn send(&mut self, msg: Message) -> Result<(), ClientError> {
        self.check_open()?;
        let outbox = self.outbox.as_ref().expect("open client has an outbox");
        if !self.releases.is_empty() {
            let keys = self.releases.drain(..).map(|k| k.to_string()).collect();
            outbox.send(Message::ReleaseKeys { keys, id: None });
        }
        if outbox.send(msg) {
            Ok(())
        } else {
            Err(ClientError::ConnectionClosed(
                "connection to the scheduler lost".into(),
            ))
        }
    }

    pub(crate) fn check_open(&self) -> Result<(), ClientError> {
        match (&self.closed, &self.lost) {
            (Some(why), _) => Err(ClientError::ConnectionClosed(why.clone())),
            (None, Some(why)) => Err(ClientError::ConnectionClosed(format!(
                "{why}; reconnecting"
            ))),
            (None, None) => Ok(()),
        }
    }

    /// Sends `update-graph` number `id`: the keys it made pending
    /// (`graph` set to `id` by the caller) fail if the scheduler refuses it.
    pub(crate) fn send_graph(&mut self, id: u64, msg: Message) -> Result<(), ClientError> {
        self.last_graph = id;
        self.send(msg)
    }

    /// The scheduler answered request `id` with an error nobody waits for:
    /// if it was an `update-graph`, the keys it made pending fail with it.
    /// Returns whether any did.
    fn refuse_graph(&mut self, id: u64, message: &str) -> bool {
        let mut any = false;
        for ks in self.keys.live_mut() {
            if ks.graph == id && !ks.status.is_done() && !ks.detached {
                let e =
                    ClientError::Protocol(format!("the scheduler refused the graph: {message}"));
                ks.set_done(KeyStatus::Error(e));
                any = true;
            }
        }
        any
    }
}

pub(crate) struct Inner {
    pub state: Mutex<State>,
    pub cond: Condvar,
    /// The host's waitable descriptor, once asked for ([`Inner::wait_fd`]):
    /// set by every [`Inner::notify`].
    wakeup: std::sync::OnceLock<crate::wakeup::Wakeup>,
    pub config: ClientConfig,
    /// The id the scheduler gave this client (a new one after reconnecting).
    id: AtomicU64,
    pub address: String,
    pub scheduler_name: String,
    /// The scheduler's dashboard link (from the first `welcome`).
    pub dashboard: Option<String>,
    next_id: AtomicU64,
    pub peers: PeerPool,
    shutdown: watch::Sender<bool>,
}

impl Inner {
    pub(crate) fn new(
        config: ClientConfig,
        id: u64,
        address: String,
        scheduler_name: String,
        dashboard: Option<String>,
        outbox: Outbox,
    ) -> Arc<Inner> {
        let (shutdown, shutdown_rx) = watch::channel(false);
        let peers = PeerPool::new(
            config.name.clone(),
            config.token.clone(),
            config.tls.clone(),
            config.limits,
            config.timeout,
            shutdown_rx,
        );
        Arc::new(Inner {
            state: Mutex::new(State {
                keys: Keys::default(),
                outbox: Some(outbox),
                closed: None,
                releases: Vec::new(),
                flush_scheduled: false,
                requests: FxHashMap::default(),
                last_graph: 0,
                close_reason: None,
                lost: None,
                topics: FxHashMap::default(),
            }),
            cond: Condvar::new(),
            wakeup: std::sync::OnceLock::new(),
            config,
            id: AtomicU64::new(id),
            address,
            scheduler_name,
            dashboard,
            next_id: AtomicU64::new(1),
            peers,
            shutdown,
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }

    /// Wakes every thread waiting on the state, and makes the host's
    /// descriptor readable: something a wait may be waiting for changed.
    pub(crate) fn notify(&self) {
        self.cond.notify_all();
        if let Some(w) = self.wakeup.get() {
            w.set();
        }
    }

    /// The descriptor that becomes readable at every change of the state
    /// (a key's status, a reply, the connection) and stays so until
    /// [`Inner::clear_wait_fd`]. Made on the first call (readable then, so
    /// a host looks once at what it waits for).
    pub(crate) fn wait_fd(&self) -> std::io::Result<std::os::raw::c_int> {
        if let Some(w) = self.wakeup.get() {
            return Ok(w.fd());
        }
        let w = crate::wakeup::Wakeup::new()?;
        w.set();
        // A racing first call may have won: its descriptor is the one.
        Ok(self.wakeup.get_or_init(|| w).fd())
    }

    /// Makes the descriptor of [`Inner::wait_fd`] unreadable until the
    /// next change. A host clears it *before* it looks at what it waits
    /// for, so a change made meanwhile sets it again.
    pub(crate) fn clear_wait_fd(&self) {
        if let Some(w) = self.wakeup.get() {
            w.clear();
        }
    }

    pub(crate) fn id(&self) -> u64 {
        self.id.load(Ordering::Relaxed)
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Starts the task that reads the scheduler connection.
    pub(crate) fn spawn_reader(self: &Arc<Self>, inbox: Inbox) {
        let inner = Arc::clone(self);
        let shutdown = self.shutdown.subscribe();
        crate::runtime::handle().spawn(read_scheduler(inner, inbox, shutdown));
    }

    /// One more reference to a future's key (a clone).
    pub(crate) fn add_ref(&self, slot: u32) {
        self.lock().keys.get_mut(slot).refs += 1;
    }

    /// One reference fewer; the last one releases the key (batched).
    /// One more reference to each of `slots` (live ones), under one lock:
    /// see [`super::Future::clone_many`].
    pub(crate) fn add_refs(&self, slots: impl Iterator<Item = u32>) {
        let mut st = self.lock();
        for slot in slots {
            st.keys.get_mut(slot).refs += 1;
        }
    }

    pub(crate) fn drop_ref(self: &Arc<Self>, slot: u32) {
        self.drop_refs(std::iter::once(slot));
    }

    /// One reference fewer to each of `slots`, under one lock (a batch of
    /// 100,000 futures released or gathered takes the client's lock once,
    /// not once per future): the keys whose last reference it was go to
    /// the scheduler in one `release-keys`.
    pub(crate) fn drop_refs(self: &Arc<Self>, slots: impl Iterator<Item = u32>) {
        let mut st = self.lock();
        let before = st.releases.len();
        for slot in slots {
            if let Some(name) = st.keys.release(slot) {
                st.releases.push(name);
            }
        }
        if st.releases.len() == before {
            return;
        }
        if st.closed.is_some() || st.lost.is_some() {
            st.releases.truncate(before);
            return;
        }
        if !st.flush_scheduled {
            st.flush_scheduled = true;
            let inner = Arc::clone(self);
            crate::runtime::handle().spawn(async move {
                // Let the dropping thread queue more before we send.
                tokio::task::yield_now().await;
                inner.flush_releases();
            });
        }
    }

    fn flush_releases(&self) {
        let mut st = self.lock();
        st.flush_scheduled = false;
        if st.closed.is_none() && st.lost.is_none() && !st.releases.is_empty() {
            // `send` flushes the releases first; this adds nothing.
            let keys: Vec<String> = st.releases.drain(..).map(|k| k.to_string()).collect();
            let _ = st.send(Message::ReleaseKeys { keys, id: None });
        }
    }

    /// Waits until `ready(state)` holds or `deadline` passes; returns
    /// whether it holds.
    pub(crate) fn wait_until(
        &self,
        deadline: Option<Instant>,
        mut ready: impl FnMut(&State) -> bool,
    ) -> bool {
        let mut st = self.lock();
        loop {
            if ready(&st) {
                return true;
            }
            match deadline {
                None => self.cond.wait(&mut st),
                Some(d) => {
                    if Instant::now() >= d {
                        return false;
                    }
                    self.cond.wait_until(&mut st, d);
                }
            }
        }
    }

    /// [`Inner::wait_until`] for a condition on the key at `slot` alone
    /// (one a future of the caller holds, so the slot stays the key's):
    /// woken only when that key ends ([`KeyState::set_done`]: its result,
    /// its error, a cancel, or the connection going), not at every change
    /// of the client's state.
    pub(crate) fn wait_key(
        &self,
        deadline: Option<Instant>,
        slot: u32,
        mut ready: impl FnMut(&State) -> bool,
    ) -> bool {
        let mut st = self.lock();
        if ready(&st) {
            return true;
        }
        let cond = Arc::new(Condvar::new());
        st.keys.get_mut(slot).key_waits.push(Arc::clone(&cond));
        let ok = loop {
            if ready(&st) {
                break true;
            }
            match deadline {
                None => cond.wait(&mut st),
                Some(d) => {
                    if Instant::now() >= d {
                        break false;
                    }
                    cond.wait_until(&mut st, d);
                }
            }
        };
        let waits = &mut st.keys.get_mut(slot).key_waits;
        if let Some(i) = waits.iter().position(|c| Arc::ptr_eq(c, &cond)) {
            waits.swap_remove(i);
        }
        ok
    }

    /// Sends a request (its id filled in by `make`) and waits for the reply
    /// with the same id, within the client's timeout.
    pub(crate) async fn request(
        &self,
        make: impl FnOnce(u64) -> Message,
    ) -> Result<Message, ClientError> {
        self.request_within(make, Some(self.config.timeout)).await
    }

    /// [`request`](Self::request) waiting at most `timeout` (forever with
    /// `None`; a lost connection still ends the wait).
    pub(crate) async fn request_within(
        &self,
        make: impl FnOnce(u64) -> Message,
        timeout: Option<std::time::Duration>,
    ) -> Result<Message, ClientError> {
        let id = self.next_id();
        let (tx, rx) = oneshot::channel();
        let msg = make(id);
        let op = msg.op();
        {
            let mut st = self.lock();
            st.check_open()?;
            st.requests.insert(id, tx);
            if let Err(e) = st.send(msg) {
                st.requests.remove(&id);
                return Err(e);
            }
        }
        let wait = async {
            match timeout {
                Some(t) => tokio::time::timeout(t, rx).await.ok(),
                None => Some(rx.await),
            }
        };
        match wait.await {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(self.closed_error()),
            None => {
                self.lock().requests.remove(&id);
                Err(ClientError::Timeout(format!(
                    "the scheduler did not answer '{op}' within {:?}",
                    timeout.unwrap_or_default()
                )))
            }
        }
    }

    pub(crate) fn closed_error(&self) -> ClientError {
        ClientError::ConnectionClosed(
            self.lock()
                .closed
                .clone()
                .unwrap_or_else(|| "connection to the scheduler lost".into()),
        )
    }

    /// Handles one wire message from the scheduler.
    fn handle(&self, r: Received) {
        enum Update {
            Memory(String, Finished),
            Erred(TaskError),
            Cancelled(String),
            /// A `bad-graph` without an id (an older scheduler).
            BadGraph(String),
            Warning(Arc<str>, Vec<String>),
        }
        let mut updates = Vec::with_capacity(r.messages.len());
        let mut replies = Vec::new();
        let mut topic_msgs: Vec<(String, Value)> = Vec::new();
        for m in r.messages {
            match narrow::<SchedulerToClient>(m, "a client takes from the scheduler") {
                Ok(SchedulerToClient::KeyInMemory {
                    key,
                    nbytes,
                    workers,
                    value,
                }) => {
                    let value = value.and_then(|b| match crate::value::decode(&b) {
                        Ok(v) => Some(v),
                        Err(e) => {
                            tracing::warn!(%key, error = %e, "bad inline value; it will be fetched");
                            None
                        }
                    });
                    updates.push(Update::Memory(
                        key,
                        Finished {
                            nbytes,
                            workers,
                            value,
                        },
                    ));
                }
                Ok(SchedulerToClient::KeyErred {
                    key,
                    failed,
                    func,
                    worker,
                    message,
                    exception,
                    traceback,
                }) => updates.push(Update::Erred(TaskError {
                    key,
                    failed,
                    func,
                    worker,
                    message,
                    exception,
                    traceback,
                })),
                Ok(SchedulerToClient::KeyCancelled { key }) => updates.push(Update::Cancelled(key)),
                Ok(SchedulerToClient::Warning {
                    code,
                    message,
                    keys,
                }) => {
                    // Logged here, so every binding's user hears it.
                    tracing::warn!(%code, n = keys.len(), "the scheduler warns: {message}");
                    updates.push(Update::Warning(message.into(), keys));
                }
                Ok(m @ SchedulerToClient::WhoHasReply { id, .. })
                | Ok(m @ SchedulerToClient::WorkersReply { id, .. })
                | Ok(m @ SchedulerToClient::InfoReply { id, .. })
                | Ok(m @ SchedulerToClient::RetireWorkersReply { id, .. })
                | Ok(m @ SchedulerToClient::ReplicateReply { id, .. })
                | Ok(m @ SchedulerToClient::RebalanceReply { id, .. })
                | Ok(m @ SchedulerToClient::CoordReply { id, .. }) => {
                    replies.push((id, Ok(Message::from(m))))
                }
                Ok(SchedulerToClient::TopicMessage { name, value }) => {
                    match crate::value::decode(&value) {
                        Ok(v) => topic_msgs.push((name, v)),
                        Err(e) => tracing::warn!(topic = %name, error = %e, "bad topic message"),
                    }
                }
                Ok(SchedulerToClient::Error {
                    message,
                    id: Some(id),
                    code,
                }) => replies.push((id, Err((message, code)))),
                Ok(SchedulerToClient::Error {
                    message,
                    code,
                    id: None,
                }) => {
                    if code.as_deref() == Some("bad-graph") {
                        // Only from a scheduler that does not echo ids.
                        updates.push(Update::BadGraph(message));
                    } else {
                        tracing::warn!(%message, ?code, "error from the scheduler");
                        // The scheduler closes the connection next: the calls
                        // that fails say why.
                        if code
                            .as_deref()
                            .and_then(ErrorCode::parse)
                            .is_some_and(|c| c.closes_connection())
                        {
                            self.lock().close_reason.get_or_insert(message);
                        }
                    }
                }
                Ok(SchedulerToClient::Close { reason }) => {
                    self.lock().close_reason = Some(reason);
                }
                // Undecodable, or a message of another direction: a request
                // whose reply it was hears why rather than waiting.
                Err(e) => {
                    tracing::warn!(error = %e, id = ?e.id, "bad message from the scheduler");
                    if let Some(id) = e.id {
                        let code = Some(ErrorCode::BadMessage.as_str().to_string());
                        replies.push((
                            id,
                            Err((format!("bad reply from the scheduler: {e}"), code)),
                        ));
                    }
                }
            }
        }
        let mut st = self.lock();
        // Keys handed over in coordination replies become this client's
        // before the updates are applied: the scheduler sends `key-in-memory`
        // for such a key right after the reply, maybe in this same batch.
        let mut adopted = Vec::new();
        for (id, r) in &replies {
            if let Ok(Message::CoordReply {
                item: Some(crate::protocol::messages::Item { key: Some(key), .. }),
                ..
            }) = r
            {
                let (slot, created) = st.keys.acquire(key);
                if created {
                    if let Some(i) = st.releases.iter().position(|k| **k == **key) {
                        // Its release was not sent: the scheduler still
                        // counts this client as wanting it.
                        st.releases.swap_remove(i);
                    } else {
                        // A release sent after the request may reach the
                        // scheduler after it handed the key over: want it
                        // again (an update-graph naming a known key).
                        let id = self.next_id();
                        st.keys.get_mut(slot).graph = id;
                        let _ = st.send_graph(
                            id,
                            Message::UpdateGraph {
                                graph: serde_bytes::ByteBuf::from(
                                    super::args::DocWriter::new().finish(),
                                ),
                                keys: vec![key.clone()],
                                retries: 0,
                                from_task: false,
                                id: Some(id),
                            },
                        );
                    }
                }
                adopted.push((*id, slot));
            }
        }
        for (name, v) in topic_msgs {
            if let Some(subs) = st.topics.get_mut(&name) {
                for (_, q) in subs.iter_mut() {
                    q.push_back(v.clone());
                }
            }
        }
        for u in updates {
            match u {
                Update::Memory(key, f) => {
                    if let Some(ks) = st.keys.by_name_mut(key.as_str()) {
                        ks.announced += 1;
                        // A cancelled key stays cancelled until resubmitted.
                        if !matches!(ks.status, KeyStatus::Cancelled) {
                            ks.set_done(KeyStatus::Finished(f));
                        }
                    }
                }
                Update::Erred(t) => {
                    if let Some(ks) = st.keys.by_name_mut(t.key.as_str()) {
                        if !matches!(ks.status, KeyStatus::Cancelled) {
                            ks.set_done(KeyStatus::Error(ClientError::Task(Box::new(t))));
                        }
                    }
                }
                Update::Cancelled(key) => {
                    if let Some(ks) = st.keys.by_name_mut(key.as_str()) {
                        if ks.cancels_sent > 0 {
                            ks.cancels_sent -= 1;
                        } else {
                            ks.set_done(KeyStatus::Cancelled);
                        }
                    }
                }
                Update::Warning(message, keys) => {
                    for k in keys {
                        if let Some(ks) = st.keys.by_name_mut(k.as_str()) {
                            ks.warning = Some(Arc::clone(&message));
                        }
                    }
                }
                Update::BadGraph(message) => {
                    // No id to match: the keys of the last update-graph.
                    let last = st.last_graph;
                    st.refuse_graph(last, &message);
                }
            }
        }
        for (id, r) in replies {
            let waiter = st.requests.remove(&id);
            match (waiter, r) {
                (w, Ok(m)) => {
                    if w.map_or(true, |w| w.send(Ok(m)).is_err()) {
                        // Nobody waits for it any more (a local timeout):
                        // give the adopted key's reference back.
                        if let Some(&(_, slot)) = adopted.iter().find(|(i, _)| *i == id) {
                            if let Some(name) = st.keys.release(slot) {
                                st.releases.push(name);
                            }
                        }
                    }
                }
                (Some(w), Err((message, code))) => {
                    let _ = w.send(Err(reply_error(message, code.as_deref())));
                }
                (None, Err((message, code))) => {
                    // Not a waited request: an update-graph refused, or
                    // another request without a reply (scattered,
                    // fire-and-forget, cancel-keys, publish).
                    if !st.refuse_graph(id, &message) {
                        tracing::warn!(id, %message, ?code, "the scheduler refused request {id}");
                    }
                }
            }
        }
        drop(st);
        self.notify();
    }

    /// The connection is gone (or the client closed): every pending key
    /// fails with `why`, every request too.
    pub(crate) fn fail_all(&self, why: String) {
        let mut st = self.lock();
        if st.closed.is_none() {
            st.closed = Some(why.clone());
        }
        st.outbox = None;
        st.releases.clear();
        let why = st.closed.clone().unwrap();
        for ks in st.keys.live_mut() {
            if !ks.status.is_done() {
                ks.set_done(KeyStatus::Error(ClientError::ConnectionClosed(why.clone())));
            }
        }
        for (_, w) in st.requests.drain() {
            let _ = w.send(Err(ClientError::ConnectionClosed(why.clone())));
        }
        drop(st);
        self.notify();
    }

    /// The scheduler connection was lost (`why` says how): every pending
    /// key and request fails at once, keys leave the index, new calls fail
    /// until a reconnection, which starts now in the background.
    pub(crate) fn connection_lost(self: &Arc<Self>, why: String) {
        let msg = format!(
            "connection to the scheduler at {} lost: {why}",
            self.address
        );
        tracing::warn!("{msg}; reconnecting");
        {
            let mut st = self.lock();
            if st.closed.is_some() {
                return;
            }
            st.lost = Some(msg.clone());
            st.outbox = None;
            st.releases.clear();
            let futures_msg = format!("{msg} (the future was lost with the scheduler connection)");
            for ks in st.keys.live_mut() {
                if !ks.status.is_done() {
                    ks.set_done(KeyStatus::Error(ClientError::ConnectionClosed(
                        futures_msg.clone(),
                    )));
                }
            }
            st.keys.detach_all();
            for (_, w) in st.requests.drain() {
                let _ = w.send(Err(ClientError::ConnectionClosed(msg.clone())));
            }
        }
        self.notify();
        self.peers.clear();
        let inner = Arc::clone(self);
        crate::runtime::handle().spawn(reconnect(inner));
    }

    /// Closes the client: releases every key, says `close`, stops the
    /// reader and the data connections.
    pub(crate) fn close(&self) {
        {
            let mut st = self.lock();
            if st.closed.is_some() {
                return;
            }
            let mut keys: Vec<String> = st.releases.drain(..).map(|k| k.to_string()).collect();
            keys.extend(st.keys.live().map(|k| k.name.to_string()));
            if let Some(o) = &st.outbox {
                if !keys.is_empty() {
                    o.send(Message::ReleaseKeys { keys, id: None });
                }
                o.send(Message::Close {
                    reason: "client closed".into(),
                });
            }
            st.closed = Some("the client is closed".into());
        }
        // Dropping the outbox lets the writer flush and shut the socket.
        self.fail_all("the client is closed".into());
        let _ = self.shutdown.send(true);
        self.peers.clear();
    }
}

async fn read_scheduler(inner: Arc<Inner>, mut inbox: Inbox, mut shutdown: watch::Receiver<bool>) {
    let why = loop {
        let r = tokio::select! {
            r = inbox.recv() => r,
            _ = shutdown.wait_for(|s| *s) => return,
        };
        match r {
            Ok(Some(r)) => inner.handle(r),
            Ok(None) => break "the scheduler closed the connection".to_string(),
            Err(e) => break e.to_string(),
        }
    };
    let why = match inner.lock().close_reason.take() {
        Some(reason) if !reason.is_empty() => format!("{why} ({reason})"),
        _ => why,
    };
    tracing::debug!(%why, "scheduler connection ended");
    inner.connection_lost(why);
}

/// Connects to the scheduler again, with backoff (100 ms doubling to 2 s),
/// until it succeeds or the client is closed.
async fn reconnect(inner: Arc<Inner>) {
    let mut shutdown = inner.shutdown.subscribe();
    let mut pause = std::time::Duration::from_millis(100);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        pause = (pause * 2).min(std::time::Duration::from_secs(2));
        let attempt = crate::protocol::conn::connect_with(
            &inner.address,
            inner.config.tls.as_ref(),
            crate::protocol::messages::Role::Client,
            &inner.config.name,
            inner.config.token.clone(),
            inner.config.limits,
            inner.config.timeout,
        );
        let r = tokio::select! {
            r = attempt => r,
            _ = shutdown.wait_for(|s| *s) => return,
        };
        let (inbox, outbox, welcome) = match r {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "reconnecting to the scheduler");
                continue;
            }
        };
        {
            let mut st = inner.lock();
            if st.closed.is_some() {
                return;
            }
            outbox.set_direct(true);
            st.outbox = Some(outbox);
            st.lost = None;
            st.close_reason = None;
            inner.id.store(welcome.id, Ordering::Relaxed);
        }
        tracing::info!(
            id = welcome.id,
            "reconnected to the scheduler at {}",
            inner.address
        );
        inner.spawn_reader(inbox);
        inner.notify();
        return;
    }
}

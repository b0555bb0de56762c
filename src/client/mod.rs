//! The client: futures over keys in a cluster, with dask.distributed's
//! user experience (`submit`, `map`, `compute`, `gather`, `scatter`,
//! `cancel`, `wait`, `as_completed`).
//!
//! ```no_run
//! use rask::client::{Client, ClientConfig};
//! let client = Client::connect("tcp://127.0.0.1:8786", ClientConfig::default())?;
//! let a = client.submit("inc", vec![1.into()])?;
//! let b = client.submit("add", vec![(&a).into(), 10.into()])?;
//! assert_eq!(b.result(None)?, rask::Value::Int(12));
//! # Ok::<(), rask::client::ClientError>(())
//! ```
//!
//! # Design
//!
//! - **Blocking API, async inside.** Every public call blocks the calling
//!   thread and may be made from any host thread (C, Python and Julia wrap
//!   them through the C ABI). Inside, the shared runtime
//!   ([`crate::runtime`]) runs one reader task per connection; the reader of
//!   the scheduler connection updates the shared state (one entry per key,
//!   behind a mutex) and wakes waiting host threads through a condition
//!   variable. Calls must not be made from inside a tokio runtime (they
//!   panic: see [`crate::runtime::block_on`]).
//! - **Keys.** `submit` names a task like Dask's `pure=True`:
//!   `"{func}-{32 hex digits}"`, a stable 128-bit hash of the function name
//!   and the msgpack-encoded arguments (futures as `{"ref": key}`), so the
//!   same call from any client is one task. `SubmitOptions` gives an
//!   explicit key, or a unique one (`pure: false`). Scattered values get
//!   unique keys `"scatter-{hex}"` (hashing 100 MB would cost more than
//!   sending it).
//! - **Futures are reference counted per key.** Cloning adds a reference;
//!   dropping the last one queues the key for `release-keys`, sent in one
//!   batch by a task on the runtime. Any message to the scheduler first
//!   flushes the queued releases, so a release always reaches the scheduler
//!   before a resubmission of the same key.
//! - **One `update-graph` per call.** `submit` sends one task, `map` all of
//!   them at once, `compute` the part of a [`Graph`] the wanted keys need
//!   (culled and validated locally with [`Graph::plan`], so a bad graph is a
//!   [`ClientError::BadArgument`] at once). A wanted key that is a literal in
//!   the graph is sent as `identity(value)` so that it exists on the
//!   scheduler like any other key. A call whose keys the client already
//!   holds (and that are not cancelled) sends nothing.
//! - **Gather.** Small values arrive inline in `key-in-memory` and are kept
//!   with the key; others are fetched from a worker listed there, with one
//!   `get-data` per worker and one pooled connection per worker data port.
//!   Keys a worker no longer holds are looked up again (`who-has`) and
//!   retried; a key no worker holds is considered lost and waited for (the
//!   scheduler may recompute it) up to the client's timeout.
//! - **Scatter.** `get-workers`, then one `put-data` per worker with the
//!   values as payload frames (tensors and bytes are written from their
//!   buffers, not copied), then `scattered` to the scheduler.
//! - **Cancel** marks the futures cancelled at once; the scheduler's
//!   `key-cancelled` answers are counted so they cannot cancel a later
//!   resubmission of the key.
//! - **Failure.** When the scheduler connection ends, every pending future
//!   and request fails at once with [`ClientError::ConnectionClosed`]
//!   ("connection to the scheduler at ADDR lost: ..."): no call waits
//!   forever, or for its timeout, for a scheduler that is gone. New calls
//!   fail the same way while the client reconnects in the background
//!   (backoff from 100 ms doubling to 2 s, until it succeeds or the client
//!   is closed). Once reconnected (a new client id), new calls work;
//!   futures from before the loss stay erred ("lost with the scheduler
//!   connection"), and a key submitted again is a new task for the new
//!   scheduler. Requests to the scheduler (`who-has`, `get-workers`) time
//!   out after the client's timeout. Every `update-graph` carries a request
//!   id; a `bad-graph` error echoing it fails the keys that graph made
//!   pending (a `bad-graph` without an id, from a scheduler that does not
//!   echo ids, fails those of the last `update-graph`).
//! - **Closing** (`close`, or dropping the last [`Client`] clone) releases
//!   every key, sends `close`, and stops the reader and data connections;
//!   futures that outlive the client report the closed connection.

mod args;
mod coord;
mod error;
mod future;
mod peer;
mod report;
mod state;

pub use args::ClientArg;
pub use coord::{Item, Subscription};
pub use error::{ClientError, TaskError};
pub use future::{AsCompleted, Future, Status, WaitMode};

use crate::graph::Graph;
use crate::protocol::conn;
use crate::protocol::messages::{Role, WorkerInfo};
use crate::protocol::{pack_batches, unpack_value, Limits, Message};
use crate::value::Value;
use args::{
    call_hash, encode_client_args, encode_client_args_into, graph_document, hashed_key, pure_key,
    unique_key, DocWriter,
};
use rustc_hash::{FxHashMap, FxHashSet};
use serde_bytes::ByteBuf;
use state::{Finished, Inner, KeyStatus};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How a client connects.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// A name for the scheduler's logs.
    pub name: String,
    /// Connect timeout, and how long a request to the scheduler may wait
    /// for its answer.
    pub timeout: Duration,
    /// The cluster's shared secret, if it has one.
    pub token: Option<String>,
    /// Size limits for what this client accepts.
    pub limits: Limits,
    /// TLS for `tls://` addresses: the scheduler's and the workers' (for
    /// scatter, gather and direct transfers).
    pub tls: Option<crate::protocol::TlsConfig>,
    /// A client of running tasks (the one a task gets from its worker):
    /// its graphs are sent with `from_task`, so what a task submits runs
    /// before work submitted earlier, newest first (depth first for
    /// recursive submission; see docs/protocol.md, `update-graph`).
    pub from_task: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            name: "rask-client".into(),
            timeout: Duration::from_secs(10),
            token: None,
            limits: Limits::default(),
            tls: None,
            from_task: false,
        }
    }
}

/// How [`Client::submit_with`] names and runs a task.
#[derive(Clone, Debug)]
pub struct SubmitOptions {
    /// The key to use; computed from the call when `None`.
    pub key: Option<String>,
    /// With `true` (the default) the key is a hash of the function and its
    /// arguments, so the same call is the same task; with `false` every
    /// call gets a unique key.
    pub pure: bool,
    /// Times the task is re-run after a failure before it errs.
    pub retries: u32,
}

impl Default for SubmitOptions {
    fn default() -> Self {
        SubmitOptions {
            key: None,
            pure: true,
            retries: 0,
        }
    }
}

/// What [`Client::retire_workers`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetireReport {
    /// Data addresses of the workers that left.
    pub workers: Vec<String>,
    /// Each key copied off them → the data address of its new holder.
    pub moved: BTreeMap<String, String>,
    /// Keys only they held that could not be copied (recomputed from their
    /// tasks when still needed).
    pub lost: Vec<String>,
}

/// What [`Client::replicate`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplicateReport {
    /// Copies made.
    pub copied: u64,
    /// Copies dropped (keys held by more than `n` workers).
    pub removed: u64,
    /// Keys left on fewer than `n` workers (no worker could fetch a copy,
    /// or the key was released meanwhile).
    pub short: Vec<String>,
}

/// What [`Client::rebalance`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RebalanceReport {
    /// Keys moved to another worker.
    pub moved: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// Closes the client when the last [`Client`] clone goes.
struct CloseOnDrop(Arc<Inner>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// The scheduler's counters, from [`Client::scheduler_info`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SchedulerInfo {
    /// Tasks the scheduler holds, in any state.
    pub tasks: u64,
    /// Tasks by state (`released`, `waiting`, `no-worker`, `queued`,
    /// `processing`, `memory`, `erred`).
    pub states: BTreeMap<String, u64>,
    pub workers: u64,
    pub clients: u64,
    /// Bytes of data the workers hold in memory.
    pub managed: u64,
    /// Bytes of data the workers have spilled to disk.
    pub spilled: u64,
    /// The workers' processes' resident memory (each counted once per
    /// worker: in-process workers of one process count it each).
    pub process: u64,
    /// The sum of the workers' memory limits (0 for a worker without one).
    pub memory_limit: u64,
    /// Workers paused by their memory use.
    pub paused: u64,
}

/// A connection to a scheduler. Cheap to clone (clones share the
/// connection); dropping the last clone closes it. See the module docs.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
    _close: Arc<CloseOnDrop>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.inner.id())
            .field("scheduler", &self.inner.address)
            .finish()
    }
}

fn check_futures<'a>(
    inner: &Arc<Inner>,
    futures: impl IntoIterator<Item = &'a Future>,
) -> Result<(), ClientError> {
    for f in futures {
        if !f.belongs_to(inner) {
            return Err(ClientError::BadArgument(format!(
                "future '{}' belongs to another client",
                f.key()
            )));
        }
    }
    Ok(())
}

impl Client {
    /// A descriptor (the read end of a pipe, owned by the client, valid
    /// until it is dropped) for host event loops: readable once something
    /// changed that a wait may be waiting for (a key finished, erred or was
    /// cancelled, a reply arrived, the connection ended), and readable
    /// until [`Client::clear_wait_fd`]. Made (readable) on the first call.
    pub fn wait_fd(&self) -> std::io::Result<std::os::raw::c_int> {
        self.inner.wait_fd()
    }

    /// Makes [`Client::wait_fd`] unreadable until the next change. Clear it
    /// before looking at what you wait for (then no change is missed).
    pub fn clear_wait_fd(&self) {
        self.inner.clear_wait_fd()
    }

    /// Connects to the scheduler at `address` (`tcp://host:port`, or
    /// `tls://host:port` with `config.tls`).
    ///
    /// # Panics
    /// When called from inside a tokio runtime.
    pub fn connect(address: &str, config: ClientConfig) -> Result<Client, ClientError> {
        let (inbox, outbox, welcome) = crate::runtime::block_on(conn::connect_with(
            address,
            config.tls.as_ref(),
            Role::Client,
            &config.name,
            config.token.clone(),
            config.limits,
            config.timeout,
        ))
        .map_err(|e| ClientError::ConnectionFailed(e.to_string()))?;
        // The client's calls come from the user's threads: they write to
        // the socket themselves when its writer is idle (one thread wake
        // saved per message).
        outbox.set_direct(true);
        let inner = Inner::new(
            config,
            welcome.id,
            address.to_string(),
            welcome.name,
            welcome.dashboard,
            outbox,
        );
        inner.spawn_reader(inbox);
        Ok(Client {
            _close: Arc::new(CloseOnDrop(Arc::clone(&inner))),
            inner,
        })
    }

    /// The id the scheduler gave this client.
    /// (A new id after a reconnection.)
    pub fn id(&self) -> u64 {
        self.inner.id()
    }

    /// The scheduler's address.
    pub fn scheduler_address(&self) -> &str {
        &self.inner.address
    }

    /// The scheduler's name (from its `welcome`).
    pub fn scheduler_name(&self) -> &str {
        &self.inner.scheduler_name
    }

    /// The scheduler's dashboard (`http://HOST:PORT/status`), from its
    /// `welcome` when the client connected; `None` when it serves none.
    pub fn dashboard_link(&self) -> Option<&str> {
        self.inner.dashboard.as_deref()
    }

    /// Why the client cannot be used, while that is so: it was closed, or
    /// its connection to the scheduler was lost (it is reconnecting; see
    /// the module docs).
    pub fn closed_reason(&self) -> Option<String> {
        let st = self.inner.lock();
        st.closed.clone().or_else(|| st.lost.clone())
    }

    /// Runs `func(args...)` on the cluster. The key is a hash of the call
    /// (see the module docs), so submitting the same call twice gives two
    /// futures on one task.
    pub fn submit(&self, func: &str, args: Vec<ClientArg>) -> Result<Future, ClientError> {
        self.submit_with(func, args, &SubmitOptions::default())
    }

    /// [`submit`](Client::submit) with an explicit key, an impure (unique)
    /// key, or retries.
    pub fn submit_with(
        &self,
        func: &str,
        args: Vec<ClientArg>,
        options: &SubmitOptions,
    ) -> Result<Future, ClientError> {
        if func.is_empty() {
            return Err(ClientError::BadArgument(
                "the function name is empty".into(),
            ));
        }
        self.check_args(&args)?;
        let encoded = encode_client_args(&args)?;
        let key = match &options.key {
            Some(k) if k.is_empty() => {
                return Err(ClientError::BadArgument("the key is empty".into()))
            }
            Some(k) => k.clone(),
            None if options.pure => pure_key(func, &encoded),
            None => unique_key(func, self.inner.id(), self.inner.next_id()),
        };
        let mut doc = DocWriter::new();
        doc.task(&key, func, &encoded);
        let mut fs = self.want(vec![key], doc.finish(), options.retries)?;
        // `args` (and the futures in it) live until the scheduler has the
        // task: a dependency is never released before its dependent exists.
        drop(args);
        Ok(fs.pop().unwrap())
    }

    /// Runs `func` once per argument list, in one `update-graph`. Keys are
    /// pure (see [`submit`](Client::submit)).
    pub fn map(&self, func: &str, calls: Vec<Vec<ClientArg>>) -> Result<Vec<Future>, ClientError> {
        if func.is_empty() {
            return Err(ClientError::BadArgument(
                "the function name is empty".into(),
            ));
        }
        let mut doc = DocWriter::new();
        let mut keys = Vec::with_capacity(calls.len());
        // Calls repeated within the map are one task.
        let mut seen: FxHashSet<u128> = FxHashSet::default();
        seen.reserve(calls.len());
        let mut encoded = Vec::with_capacity(64);
        for args in &calls {
            self.check_args(args)?;
            encoded.clear();
            encode_client_args_into(args, &mut encoded)?;
            let h = call_hash(func, &encoded);
            let key = hashed_key(func, h);
            if seen.insert(h) {
                doc.task(&key, func, &encoded);
            }
            keys.push(key);
        }
        let fs = self.want(keys, doc.finish(), 0)?;
        drop(calls);
        Ok(fs)
    }

    /// Computes `keys` of `graph` on the cluster: sends the part of the
    /// graph they need and returns a future per key, in order.
    pub fn compute<S: AsRef<str>>(
        &self,
        graph: &Graph,
        keys: &[S],
    ) -> Result<Vec<Future>, ClientError> {
        let outs = graph
            .output_ids(keys)
            .map_err(|e| ClientError::BadArgument(e.to_string()))?;
        let doc = graph_document(graph, &outs)?;
        self.want(
            keys.iter().map(|k| k.as_ref().to_string()).collect(),
            doc,
            0,
        )
    }

    /// Every future in `args` must be this client's and not cancelled (a
    /// cancelled key may be gone from the scheduler: a task on it fails
    /// here, at once, as in Dask).
    fn check_args(&self, args: &[ClientArg]) -> Result<(), ClientError> {
        let mut bad = None;
        let mut futures = Vec::new();
        for a in args {
            a.for_each_future(&mut |f| {
                if bad.is_none() && !f.belongs_to(&self.inner) {
                    bad = Some(f.key().to_string());
                }
                futures.push(f);
            });
        }
        if let Some(k) = bad {
            return Err(ClientError::BadArgument(format!(
                "future '{k}' belongs to another client"
            )));
        }
        if !futures.is_empty() {
            let st = self.inner.lock();
            if let Some(f) = futures
                .iter()
                .find(|f| matches!(f.state(&st).status, KeyStatus::Cancelled))
            {
                return Err(ClientError::Cancelled(f.key().to_string()));
            }
        }
        Ok(())
    }

    /// Registers futures on `keys` and sends `graph` unless every key is
    /// already held (and not cancelled).
    fn want(
        &self,
        keys: Vec<String>,
        graph: Vec<u8>,
        retries: u32,
    ) -> Result<Vec<Future>, ClientError> {
        let mut st = self.inner.lock();
        st.check_open()?;
        let mut need = false;
        let mut futures = Vec::with_capacity(keys.len());
        // This update-graph's id: the keys it makes pending fail with an
        // `error` carrying it (a refused graph).
        let id = self.inner.next_id();
        for k in &keys {
            let (slot, created) = st.keys.acquire(k);
            let ks = st.keys.get_mut(slot);
            if created {
                need = true;
                ks.graph = id;
            } else if matches!(ks.status, KeyStatus::Cancelled) {
                ks.status = KeyStatus::Pending;
                ks.graph = id;
                need = true;
            }
            futures.push(Future::counted(&st, slot, &self.inner));
        }
        let mut sent = Ok(());
        if need {
            sent = st.send_graph(
                id,
                Message::UpdateGraph {
                    graph: ByteBuf::from(graph),
                    keys,
                    retries,
                    from_task: self.inner.config.from_task,
                    id: Some(id),
                },
            );
        }
        // Unlock before the futures can drop (on an error): dropping one
        // takes the lock.
        drop(st);
        sent.map(|()| futures)
    }

    /// The values of `futures`, in order. Waits for all of them; the first
    /// failed (or cancelled) one, in order, is the error.
    pub fn gather(&self, futures: &[Future]) -> Result<Vec<Value>, ClientError> {
        check_futures(&self.inner, futures)?;
        gather_from(&self.inner, futures)
    }

    /// Puts `values` into the workers' memory and returns futures on them.
    /// Values go round robin over the workers, or to every worker with
    /// `broadcast`. Waits up to the client's timeout for a worker to exist.
    pub fn scatter(&self, values: Vec<Value>, broadcast: bool) -> Result<Vec<Future>, ClientError> {
        if values.is_empty() {
            return Ok(Vec::new());
        }
        // Refused before anything is sent: a value no frame can carry.
        for (i, v) in values.iter().enumerate() {
            crate::value::check_size(v)
                .map_err(|e| ClientError::BadArgument(format!("scatter of value {i}: {e}")))?;
        }
        self.inner.lock().check_open()?;
        let workers = self.wait_for_workers(1, self.inner.config.timeout)?;
        let keys: Vec<String> = (0..values.len())
            .map(|_| unique_key("scatter", self.inner.id(), self.inner.next_id()))
            .collect();
        // Worker index → indices of the values it gets.
        let mut plan: Vec<Vec<usize>> = vec![Vec::new(); workers.len()];
        for i in 0..values.len() {
            if broadcast {
                plan.iter_mut().for_each(|p| p.push(i));
            } else {
                plan[i % workers.len()].push(i);
            }
        }
        let inner = &self.inner;
        let stored = crate::runtime::block_on(async {
            let mut set = tokio::task::JoinSet::new();
            for (w, idx) in workers.iter().zip(&plan) {
                if idx.is_empty() {
                    continue;
                }
                // Checked above, so nothing is refused here. Each value is
                // a frame: a put-data holds at most MAX_BATCH_VALUES of
                // them, far under the frames a worker takes in one message.
                let batches = pack_batches(
                    idx.iter().map(|&i| (keys[i].clone(), &values[i])),
                    crate::protocol::payload::MAX_BATCH_VALUES,
                    |_, _| {},
                );
                let inner = Arc::clone(inner);
                let address = w.address.clone();
                set.spawn(async move {
                    let peer = inner.peers.get(&address).await?;
                    let mut stored = BTreeMap::new();
                    // One put-data per batch, so no message is over the
                    // size or the frame count a worker accepts.
                    for b in batches {
                        let id = inner.next_id();
                        let msg = Message::PutData { id, data: b.data };
                        let mut replies = peer.request(id, msg, b.payloads, |_| true).await?;
                        match replies.pop().map(|r| r.msg) {
                            Some(Message::DataStored { nbytes, .. }) => stored.extend(nbytes),
                            Some(Message::Error { message, .. }) => {
                                return Err(ClientError::Data(format!(
                                    "worker {address} refused the data: {message}"
                                )))
                            }
                            other => {
                                return Err(ClientError::Protocol(format!(
                                    "worker {address} answered put-data with '{}'",
                                    other.map_or("nothing", |m| m.op())
                                )))
                            }
                        }
                    }
                    Ok(stored)
                });
            }
            let mut nbytes: FxHashMap<String, u64> = FxHashMap::default();
            while let Some(r) = set.join_next().await {
                let r = r.map_err(|e| ClientError::Protocol(format!("scatter task: {e}")))?;
                nbytes.extend(r?);
            }
            Ok::<_, ClientError>(nbytes)
        })?;
        let mut who_has: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        let mut addrs: FxHashMap<&str, Vec<String>> = FxHashMap::default();
        for (w, idx) in workers.iter().zip(&plan) {
            for &i in idx {
                who_has.entry(keys[i].clone()).or_default().push(w.id);
                addrs.entry(&keys[i]).or_default().push(w.address.clone());
            }
        }
        let nbytes: BTreeMap<String, u64> = keys
            .iter()
            .zip(&values)
            .map(|(k, v)| {
                let n = stored.get(k).copied().unwrap_or(v.size_estimate() as u64);
                (k.clone(), n)
            })
            .collect();
        let mut st = self.inner.lock();
        let mut futures = Vec::with_capacity(keys.len());
        for (k, v) in keys.iter().zip(&values) {
            let slot = st.keys.create(Arc::from(k.as_str()));
            st.keys.get_mut(slot).status = KeyStatus::Finished(Finished {
                nbytes: nbytes[k],
                workers: addrs.remove(k.as_str()).unwrap_or_default(),
                // Small values stay here too: gathering them costs nothing.
                value: (v.size_estimate() <= 1024).then(|| v.clone()),
            });
            futures.push(Future::counted(&st, slot, &self.inner));
        }
        let sent = st.send(Message::Scattered {
            who_has,
            nbytes,
            id: Some(self.inner.next_id()),
        });
        drop(st);
        sent.map(|()| futures)
    }

    /// Cancels `futures`: they become [`Status::Cancelled`] at once, and
    /// the scheduler stops computing what only they need.
    pub fn cancel(&self, futures: &[Future]) -> Result<(), ClientError> {
        check_futures(&self.inner, futures)?;
        cancel_in(&self.inner, futures)
    }

    /// Waits until all (or the first) of `futures` are done, at most
    /// `timeout` (forever with `None`). Returns `(done, not_done)`; on the
    /// deadline it returns what is done so far, like Python's
    /// `concurrent.futures.wait`.
    pub fn wait(
        &self,
        futures: &[Future],
        mode: WaitMode,
        timeout: Option<Duration>,
    ) -> (Vec<Future>, Vec<Future>) {
        let deadline = timeout.map(|t| Instant::now() + t);
        let done = |st: &state::State, f: &Future| f.state(st).status.is_done();
        let mut pos = 0;
        self.inner.wait_until(deadline, |st| match mode {
            WaitMode::All => {
                while pos < futures.len() && done(st, &futures[pos]) {
                    pos += 1;
                }
                pos == futures.len()
            }
            WaitMode::FirstCompleted => futures.is_empty() || futures.iter().any(|f| done(st, f)),
        });
        let st = self.inner.lock();
        let (mut d, mut n) = (Vec::new(), Vec::new());
        for f in futures {
            if done(&st, f) {
                d.push(f)
            } else {
                n.push(f)
            }
        }
        drop(st);
        (
            d.into_iter().cloned().collect(),
            n.into_iter().cloned().collect(),
        )
    }

    /// An iterator over `futures` in the order they finish; more can be
    /// added while iterating ([`AsCompleted::add`]).
    ///
    /// # Panics
    /// When a future belongs to another client.
    pub fn as_completed(&self, futures: Vec<Future>) -> AsCompleted {
        let ac = AsCompleted::new(self);
        for f in futures {
            ac.add(f);
        }
        ac
    }

    /// The workers the scheduler knows.
    pub fn workers(&self) -> Result<Vec<WorkerInfo>, ClientError> {
        match crate::runtime::block_on(self.inner.request(|id| Message::GetWorkers { id }))? {
            Message::WorkersReply { workers, .. } => Ok(workers),
            other => Err(ClientError::Protocol(format!(
                "get-workers answered with '{}'",
                other.op()
            ))),
        }
    }

    /// The scheduler's counters (`get-info`): the tasks it holds (in all,
    /// and by state), its workers and clients. Tasks of every client count.
    pub fn scheduler_info(&self) -> Result<SchedulerInfo, ClientError> {
        match crate::runtime::block_on(self.inner.request(|id| Message::GetInfo { id }))? {
            Message::InfoReply {
                tasks,
                states,
                workers,
                clients,
                managed,
                spilled,
                process,
                memory_limit,
                paused,
                ..
            } => Ok(SchedulerInfo {
                tasks,
                states,
                workers,
                clients,
                managed,
                spilled,
                process,
                memory_limit,
                paused,
            }),
            other => Err(ClientError::Protocol(format!(
                "get-info answered with '{}'",
                other.op()
            ))),
        }
    }

    /// Retires `workers` gracefully (each named by its data address, its
    /// name, or its id in decimal, as [`workers`](Self::workers) lists
    /// them): they get no new tasks, hand back the tasks they have not
    /// started, finish the running ones, and the results only they hold
    /// are copied to other workers before they are closed, so nothing is
    /// recomputed. Returns once every one of them has left, or after
    /// `timeout` (forever with `None`), with what was moved where and what
    /// could not be moved (see docs/reliability.md, "Graceful
    /// retirement"). An unknown worker is a [`ClientError::Protocol`]
    /// error (code `unknown-worker`) and nothing is retired.
    pub fn retire_workers<S: AsRef<str>>(
        &self,
        workers: &[S],
        timeout: Option<Duration>,
    ) -> Result<RetireReport, ClientError> {
        let workers: Vec<String> = workers.iter().map(|w| w.as_ref().to_string()).collect();
        let reply = crate::runtime::block_on(
            self.inner
                .request_within(|id| Message::RetireWorkers { id, workers }, timeout),
        )?;
        match reply {
            Message::RetireWorkersReply {
                workers,
                moved,
                lost,
                ..
            } => Ok(RetireReport {
                workers,
                moved,
                lost,
            }),
            other => Err(ClientError::Protocol(format!(
                "retire-workers answered with '{}'",
                other.op()
            ))),
        }
    }

    /// Copies the results of `futures` so that `n` workers hold each
    /// (Dask's `replicate`): copies go to the workers holding the fewest
    /// bytes, and copies beyond `n` are dropped. `n` is capped at the
    /// workers there are. Waits for the futures first, then for the copies,
    /// at most `timeout` in all (forever with `None`). `n` < 1, or a future
    /// that failed or was cancelled, is a [`ClientError::BadArgument`] and
    /// nothing is copied. See docs/protocol.md, `replicate`.
    pub fn replicate(
        &self,
        futures: &[Future],
        n: usize,
        timeout: Option<Duration>,
    ) -> Result<ReplicateReport, ClientError> {
        if n < 1 {
            return Err(ClientError::BadArgument(format!(
                "replicate: n must be at least 1 (got {n})"
            )));
        }
        let Some((keys, timeout)) = self.finished_keys("replicate", futures, timeout)? else {
            return Ok(ReplicateReport::default());
        };
        let reply = crate::runtime::block_on(self.inner.request_within(
            |id| Message::Replicate {
                id,
                keys,
                n: n as u64,
            },
            timeout,
        ))?;
        match reply {
            Message::ReplicateReply {
                copied,
                removed,
                short,
                ..
            } => Ok(ReplicateReport {
                copied,
                removed,
                short,
            }),
            other => Err(ClientError::Protocol(format!(
                "replicate answered with '{}'",
                other.op()
            ))),
        }
    }

    /// Moves results between workers so that the bytes each holds even
    /// out (Dask's `rebalance`): only the results of `futures`, or every
    /// result in memory when `None`. Waits for the futures first, then for
    /// the moves, at most `timeout` in all. A future that failed or was
    /// cancelled is a [`ClientError::BadArgument`] and nothing moves. See
    /// docs/protocol.md, `rebalance`.
    pub fn rebalance(
        &self,
        futures: Option<&[Future]>,
        timeout: Option<Duration>,
    ) -> Result<RebalanceReport, ClientError> {
        let (keys, timeout) = match futures {
            None => (Vec::new(), timeout),
            Some(fs) => match self.finished_keys("rebalance", fs, timeout)? {
                Some(x) => x,
                None => return Ok(RebalanceReport::default()),
            },
        };
        let reply = crate::runtime::block_on(
            self.inner
                .request_within(|id| Message::Rebalance { id, keys }, timeout),
        )?;
        match reply {
            Message::RebalanceReply { moved, bytes, .. } => Ok(RebalanceReport { moved, bytes }),
            other => Err(ClientError::Protocol(format!(
                "rebalance answered with '{}'",
                other.op()
            ))),
        }
    }

    /// Waits for `futures` (at most `timeout`) and returns their keys and
    /// the time left, or `None` when there are none. A future that did not
    /// finish well is an error.
    #[allow(clippy::type_complexity)]
    fn finished_keys(
        &self,
        op: &str,
        futures: &[Future],
        timeout: Option<Duration>,
    ) -> Result<Option<(Vec<String>, Option<Duration>)>, ClientError> {
        check_futures(&self.inner, futures)?;
        self.inner.lock().check_open()?;
        if futures.is_empty() {
            return Ok(None);
        }
        let start = Instant::now();
        let (_, not_done) = self.wait(futures, WaitMode::All, timeout);
        if let Some(f) = not_done.first() {
            return Err(ClientError::Timeout(format!(
                "{op}: future '{}' did not finish within {timeout:?}",
                f.key()
            )));
        }
        for f in futures {
            let st = f.status();
            if st != Status::Finished {
                return Err(ClientError::BadArgument(format!(
                    "{op}: future '{}' is {st:?}, not in memory: only finished results can be copied",
                    f.key()
                )));
            }
        }
        let left = timeout.map(|t| t.saturating_sub(start.elapsed()));
        let keys = futures.iter().map(|f| f.key().to_string()).collect();
        Ok(Some((keys, left)))
    }

    /// Waits until the scheduler knows at least `n` workers (polling), at
    /// most `timeout`.
    pub fn wait_for_workers(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<WorkerInfo>, ClientError> {
        let deadline = Instant::now() + timeout;
        loop {
            let ws = self.workers()?;
            if ws.len() >= n {
                return Ok(ws);
            }
            if Instant::now() >= deadline {
                return Err(ClientError::Timeout(format!(
                    "{} of {n} workers after {timeout:?}",
                    ws.len()
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Where the scheduler says the data of `futures` is (data addresses).
    pub fn who_has(
        &self,
        futures: &[Future],
    ) -> Result<BTreeMap<String, Vec<String>>, ClientError> {
        check_futures(&self.inner, futures)?;
        let keys: Vec<String> = futures.iter().map(|f| f.key().to_string()).collect();
        who_has(&self.inner, keys)
    }

    /// Closes the client: releases every key, says `close` to the
    /// scheduler and closes the connections. Futures still alive report
    /// the closed connection. Idempotent; dropping the last clone does it.
    pub fn close(&self) {
        self.inner.close();
    }
}

fn who_has(
    inner: &Arc<Inner>,
    keys: Vec<String>,
) -> Result<BTreeMap<String, Vec<String>>, ClientError> {
    match crate::runtime::block_on(inner.request(|id| Message::WhoHas { id, keys }))? {
        Message::WhoHasReply { who_has, .. } => Ok(who_has),
        other => Err(ClientError::Protocol(format!(
            "who-has answered with '{}'",
            other.op()
        ))),
    }
}

pub(crate) fn cancel_in(inner: &Arc<Inner>, futures: &[Future]) -> Result<(), ClientError> {
    if futures.is_empty() {
        return Ok(());
    }
    let mut st = inner.lock();
    st.check_open()?;
    let mut keys = Vec::with_capacity(futures.len());
    let mut seen = FxHashSet::default();
    for f in futures {
        if !seen.insert(&*f.key) {
            continue;
        }
        let ks = st.keys.get_mut(f.slot);
        ks.cancels_sent += 1;
        if !matches!(ks.status, KeyStatus::Error(_)) {
            ks.set_done(KeyStatus::Cancelled);
        }
        keys.push(f.key().to_string());
    }
    st.send(Message::CancelKeys {
        keys,
        id: Some(inner.next_id()),
    })?;
    drop(st);
    inner.notify();
    Ok(())
}

/// Most rounds of `who-has` and re-fetching in one gather.
const MAX_FETCH_ROUNDS: usize = 8;

/// The values of `futures` (all of `inner`), waiting for them.
pub(crate) fn gather_from(
    inner: &Arc<Inner>,
    futures: &[Future],
) -> Result<Vec<Value>, ClientError> {
    let mut out: Vec<Option<Value>> = vec![None; futures.len()];
    for round in 0.. {
        let mut pos = 0;
        inner.wait_until(None, |st| {
            while pos < futures.len()
                && (out[pos].is_some() || futures[pos].state(st).status.is_done())
            {
                pos += 1;
            }
            pos == futures.len()
        });
        // Key → (worker addresses, indices in `futures`).
        let mut needs: FxHashMap<Arc<str>, (Vec<String>, Vec<usize>)> = FxHashMap::default();
        {
            let st = inner.lock();
            for (i, f) in futures.iter().enumerate() {
                if out[i].is_some() {
                    continue;
                }
                match &f.state(&st).status {
                    KeyStatus::Finished(Finished { value: Some(v), .. }) => {
                        out[i] = Some(v.clone())
                    }
                    KeyStatus::Finished(fin) => needs
                        .entry(Arc::clone(&f.key))
                        .or_insert_with(|| (fin.workers.clone(), Vec::new()))
                        .1
                        .push(i),
                    KeyStatus::Error(e) => return Err(e.clone()),
                    KeyStatus::Cancelled => {
                        return Err(ClientError::Cancelled(f.key().to_string()))
                    }
                    KeyStatus::Pending => unreachable!("waited until done"),
                }
            }
        }
        if needs.is_empty() {
            break;
        }
        let wanted: Vec<(Arc<str>, Vec<String>)> = needs
            .iter()
            .map(|(k, (w, _))| (Arc::clone(k), w.clone()))
            .collect();
        let (got, missing) = crate::runtime::block_on(fetch(Arc::clone(inner), wanted))?;
        for (k, v) in got {
            if let Some((_, idx)) = needs.get(&k) {
                for &i in idx {
                    out[i] = Some(v.clone());
                }
            }
        }
        if missing.is_empty() {
            break;
        }
        if round + 1 >= MAX_FETCH_ROUNDS {
            return Err(ClientError::Data(format!(
                "could not fetch '{}' after {MAX_FETCH_ROUNDS} attempts",
                missing[0]
            )));
        }
        relocate(inner, &missing)?;
    }
    Ok(out.into_iter().map(|v| v.unwrap_or_default()).collect())
}

/// Asks where `missing` keys are now and records it. A key no worker holds
/// is set pending again and waited for (the scheduler may compute it
/// again), at most the client's timeout.
fn relocate(inner: &Arc<Inner>, missing: &[Arc<str>]) -> Result<(), ClientError> {
    // A `key-in-memory` (a recomputed key) may arrive while `who-has` is on
    // its way: it is newer than the reply, which must not undo it.
    let announced: Vec<u64> = {
        let mut st = inner.lock();
        missing
            .iter()
            .map(|k| st.keys.by_name_mut(k).map_or(0, |ks| ks.announced))
            .collect()
    };
    let wh = who_has(inner, missing.iter().map(|k| k.to_string()).collect())?;
    let mut lost = Vec::new();
    {
        let mut st = inner.lock();
        for (k, &seen) in missing.iter().zip(&announced) {
            let holders = wh.get(&**k).cloned().unwrap_or_default();
            if let Some(ks) = st.keys.by_name_mut(k) {
                if ks.announced != seen {
                    continue;
                }
                if let KeyStatus::Finished(fin) = &mut ks.status {
                    if holders.is_empty() {
                        ks.status = KeyStatus::Pending;
                        lost.push((ks.slot, Arc::clone(k)));
                    } else {
                        fin.workers = holders;
                    }
                }
            }
        }
    }
    if lost.is_empty() {
        return Ok(());
    }
    let deadline = Instant::now() + inner.config.timeout;
    let ok = inner.wait_until(Some(deadline), |st| {
        lost.iter()
            .all(|&(slot, _)| st.keys.get(slot).status.is_done())
    });
    if ok {
        Ok(())
    } else {
        Err(ClientError::Data(format!(
            "no worker holds the data of '{}' any more",
            lost[0].1
        )))
    }
}

type Fetched = (Vec<(Arc<str>, Value)>, Vec<Arc<str>>);

/// Fetches keys from the workers holding them: one `get-data` per worker,
/// all at once. Returns the values and the keys that could not be had.
async fn fetch(
    inner: Arc<Inner>,
    wanted: Vec<(Arc<str>, Vec<String>)>,
) -> Result<Fetched, ClientError> {
    let mut by_worker: FxHashMap<String, Vec<Arc<str>>> = FxHashMap::default();
    let mut missing = Vec::new();
    for (k, workers) in wanted {
        match workers.into_iter().next() {
            Some(w) => by_worker.entry(w).or_default().push(k),
            None => missing.push(k),
        }
    }
    let mut set = tokio::task::JoinSet::new();
    for (address, keys) in by_worker {
        let inner = Arc::clone(&inner);
        set.spawn(async move {
            let id = inner.next_id();
            let msg = Message::GetData {
                id,
                keys: keys.iter().map(|k| k.to_string()).collect(),
            };
            // The worker may answer in several `data` messages: done when
            // every key came back, as a value or as missing.
            let mut left: FxHashSet<String> = keys.iter().map(|k| k.to_string()).collect();
            let replies = match inner.peers.get(&address).await {
                Ok(peer) => {
                    peer.request(id, msg, Vec::new(), |r| {
                        if let Message::Data { data, missing, .. } = &r.msg {
                            for k in data.keys().chain(missing) {
                                left.remove(k);
                            }
                        }
                        left.is_empty()
                    })
                    .await
                }
                Err(e) => Err(e),
            };
            (address, keys, replies)
        });
    }
    let mut got = Vec::new();
    while let Some(r) = set.join_next().await {
        let (address, keys, replies) =
            r.map_err(|e| ClientError::Protocol(format!("fetch task: {e}")))?;
        let replies = match replies {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(%address, error = %e, "fetch failed; asking who-has");
                inner.peers.forget(&address);
                missing.extend(keys);
                continue;
            }
        };
        let mut found: FxHashMap<&str, Value> = FxHashMap::default();
        for reply in &replies {
            match &reply.msg {
                Message::Data {
                    data, unsendable, ..
                } => {
                    // The worker holds the value but its host cannot
                    // serialize it: asking again would get the same answer.
                    if let Some((k, reason)) = unsendable.iter().next() {
                        return Err(ClientError::Data(format!(
                            "the value of '{k}' cannot be sent from {address}: {reason}"
                        )));
                    }
                    for (k, p) in data {
                        let v = unpack_value(p, &reply.frames).map_err(|e| {
                            ClientError::Protocol(format!("value of '{k}' from {address}: {e}"))
                        })?;
                        found.insert(k, v);
                    }
                }
                Message::Error { message, .. } => {
                    tracing::debug!(%address, %message, "get-data refused; asking who-has");
                }
                other => {
                    return Err(ClientError::Protocol(format!(
                        "worker {address} answered get-data with '{}'",
                        other.op()
                    )))
                }
            }
        }
        for k in keys {
            match found.remove(&*k) {
                Some(v) => got.push((k, v)),
                None => missing.push(k),
            }
        }
    }
    Ok((got, missing))
}

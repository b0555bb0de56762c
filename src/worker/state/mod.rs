//! The worker's sans-I/O core: every decision the worker makes, as plain
//! functions over plain state. Events go in (a `compute-task`, a finished
//! run, a fetched value, `free-keys`, ...); [`Action`]s come out (messages
//! for the scheduler, fetches to start, "tasks are ready"), collected with
//! [`WorkerState::drain_actions`]. No sockets, threads or clocks here: the
//! glue in `server.rs` and `exec.rs` moves frames and runs functions, and
//! the unit tests in `tests.rs` drive this directly, checking
//! [`WorkerState::validate`] after every step.
//!
//! # Keys and their states
//!
//! Every key the worker knows is an entry with a dense [`KeyId`] (names
//! only at the edge). A key is either a *task* this worker was asked to
//! compute, or *data*: a dependency it fetches or holds, or a value a client
//! put here. Its [`Phase`]:
//!
//! ```text
//!            compute-task                all deps in memory
//!   (new) ───────────────▶ waiting ────────────────────────▶ ready ──take──▶ executing
//!                            │ ▲ dep erred / missing           (heap by priority)  │
//!                            ▼ │                                                   │ ok
//!   (new dep) ──▶ fetching ──┴─┼──────────── data from a peer ──────▶ memory ◀──────┤
//!                  │ missing   │                                        ▲           │ error
//!                  ▼ at every  │              put-data (any state) ─────┘           ▼
//!             missing-data ────┘                                                  erred
//! ```
//!
//! - **waiting**: a task whose dependencies are not all in memory here; it
//!   counts the missing ones and is in each one's `waiters` list.
//! - **fetching**: a dependency being fetched from a peer (`from`), with
//!   the other holders `who_has` named to try next.
//! - **ready**: every input is present; the arguments are resolved into
//!   values and the task sits in the ready heap (lowest `priority` first,
//!   first come first among equals) or, for a pulled function, the pull
//!   heap that host threads take from.
//! - **executing**: taken by a pool thread or a host thread.
//! - **memory**: the value is in the [`Store`].
//! - **erred**: the task failed; kept (like Dask's worker) until the
//!   scheduler frees it, so a retry is a fresh `compute-task`.
//!
//! # Lifetimes
//!
//! An entry is kept while the scheduler *wants* it (it asked for the task,
//! or was told the worker holds the data through `task-finished`,
//! `add-keys` or a client's `scattered`) or while a waiting task here
//! *depends* on it (a pin count). `free-keys` clears "wanted"; the entry
//! goes when both are gone. So freeing a key a queued task still needs
//! keeps its value until that task has taken its arguments, and freeing a
//! queued or running task drops it at once: a stale ready-heap entry is
//! skipped when popped, and a finished run whose entry is gone (or was
//! replaced: every run carries the `seq` it was queued with) is discarded.
//!
//! # Decisions
//!
//! - The ready queue lives here, not in the executor: a pool thread takes
//!   a batch of ready tasks ([`WorkerState::take_ready`]) under the same
//!   lock acquisition that retires its previous batch, so a busy thread
//!   costs one lock round per batch and a finished task never crosses
//!   threads just to be queued.
//! - Fetches are grouped: dependencies asked for while handling a batch of
//!   messages are collected per peer and leave as one [`Action::Fetch`]
//!   per peer (one `get-data` on one pooled connection). A key is fetched
//!   once however many tasks need it.
//! - A dependency no listed holder has (or that no holder is listed for)
//!   makes the task give up: `missing-data` for each such dependency, and
//!   the task is forgotten. The scheduler finds or recomputes the data
//!   and sends `compute-task` again. `worker` names the holder asked last;
//!   when `who_has` named none (the scheduler believed this worker held
//!   it), it names this worker, so the scheduler can correct its records.
//! - A dependency that is itself in progress here (waiting, ready,
//!   executing) is waited for rather than fetched; if it errs, the waiting
//!   task errs too, naming it.
//! - A `compute-task` for a key already in memory here is answered with
//!   `task-finished` at once; for a key already queued or running it is a
//!   no-op; for an erred key it is a retry.
//! - Task error messages start with the function's name
//!   (`"inc: expected a number, got str"`); builtins already do that.

use super::store::{Disk, SpillStats, Store};
use crate::graph::doc::KeyArg;
use crate::protocol::messages::{MISSING_NOT_HELD, MISSING_UNREACHABLE};
use crate::protocol::Message;
use crate::registry::{Failure, FnResult, Function, Registry};
use crate::value::Value;
use rustc_hash::FxHashMap;
use serde_bytes::ByteBuf;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt;

#[cfg(test)]
mod tests;

/// Largest encoded result sent inline in `task-finished`.
pub const INLINE_LIMIT: usize = 1024;

/// Largest encoded arguments of a builtin task that counts as cheap.
pub const CHEAP_ARGS: usize = 4096;

/// Dense id of a key within one worker. Ids of forgotten keys are reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub u32);

/// The state of a key, without its data (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Waiting,
    Fetching,
    Ready,
    Executing,
    Memory,
    Erred,
}

enum State {
    Waiting {
        missing: u32,
    },
    Fetching {
        from: String,
        /// Holders still to try, the next one last.
        others: Vec<String>,
    },
    Ready {
        seq: u64,
        args: Vec<Value>,
        /// A builtin on small arguments: may run on the thread that
        /// received it ([`WorkerState::take_cheap`]).
        cheap: bool,
    },
    Executing {
        seq: u64,
        /// The run seceded (`long-running` was sent for it).
        seceded: bool,
    },
    Memory,
    Erred {
        message: String,
    },
}

impl State {
    fn phase(&self) -> Phase {
        match self {
            State::Waiting { .. } => Phase::Waiting,
            State::Fetching { .. } => Phase::Fetching,
            State::Ready { .. } => Phase::Ready,
            State::Executing { .. } => Phase::Executing,
            State::Memory => Phase::Memory,
            State::Erred { .. } => Phase::Erred,
        }
    }
}

struct TaskDef {
    func_name: String,
    func: Function,
    /// Taken (resolved into values) when the task becomes ready.
    args: Vec<KeyArg>,
    priority: u64,
    /// Distinct dependencies, pinned while the task waits.
    deps: Vec<KeyId>,
}

struct Entry {
    name: String,
    state: State,
    /// Set while the key is a task to compute here.
    task: Option<Box<TaskDef>>,
    /// Waiting tasks that need this key and do not have it yet.
    waiters: Vec<KeyId>,
    /// Waiting tasks that need this key (pins it).
    dependents: u32,
    /// The scheduler wants this key kept here.
    wanted: bool,
}

/// What the glue must do after an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send this message to the scheduler.
    Send(Message),
    /// Fetch these keys from the worker whose data address is `peer`
    /// (answer with [`WorkerState::fetched`] or
    /// [`WorkerState::fetch_failed`]).
    Fetch { peer: String, keys: Vec<String> },
    /// This many tasks became ready for the pool threads
    /// ([`WorkerState::take_ready`]).
    Execute(usize),
    /// This many tasks of pulled functions became ready for host threads
    /// ([`WorkerState::take_pulled`]).
    Deliver(usize),
}

/// A `compute-task`, with its arguments decoded.
#[derive(Debug, Clone)]
pub struct ComputeTask {
    pub key: String,
    pub func: String,
    /// The decoded arguments, or why they could not be decoded.
    pub args: Result<Vec<KeyArg>, String>,
    pub priority: u64,
    pub who_has: BTreeMap<String, Vec<String>>,
}

impl ComputeTask {
    /// Decodes the `args` bytes of a `compute-task` (do this outside any
    /// lock: it is the expensive part of a small task).
    pub fn new(
        key: String,
        func: String,
        args: &[u8],
        priority: u64,
        who_has: BTreeMap<String, Vec<String>>,
    ) -> ComputeTask {
        fn has_map(v: &Value) -> bool {
            match v {
                Value::Map(_) => true,
                Value::Array(a) => a.iter().any(has_map),
                _ => false,
            }
        }
        let args = match crate::value::decode(args) {
            // Only literals (no `{"ref"|"value"|"map": ..}` anywhere): each
            // argument is its value, lists included.
            Ok(Value::Array(items)) if !items.iter().any(has_map) => {
                Ok(items.into_iter().map(KeyArg::Value).collect())
            }
            _ => crate::graph::doc::decode_args(args)
                .map_err(|e| format!("cannot decode the task's arguments: {e}")),
        };
        ComputeTask {
            key,
            func,
            args,
            priority,
            who_has,
        }
    }
}

/// A ready task handed to a pool thread.
pub struct ExecTask {
    pub id: KeyId,
    /// Identifies this run; pass it back to [`WorkerState::task_done`].
    pub seq: u64,
    pub func: Function,
    pub args: Vec<Value>,
}

/// A ready task of a pulled function, handed to a host thread.
pub struct PulledExec {
    pub id: KeyId,
    pub seq: u64,
    pub key: String,
    pub func: String,
    pub args: Vec<Value>,
}

/// How a run ended, prepared by the thread that ran it (outside any lock).
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Finished {
        value: Value,
        nbytes: u64,
        /// The value as msgpack when that is at most [`INLINE_LIMIT`] bytes.
        inline: Option<Vec<u8>>,
    },
    Failed(Failure),
}

impl Outcome {
    /// Measures and, when small, encodes a function's result.
    pub fn of(result: FnResult) -> Outcome {
        match result {
            Ok(value) => {
                let nbytes = value.size_estimate() as u64;
                // The estimate bounds the encoded size from above, so only
                // a value this large needs the exact check. One that cannot
                // be encoded could never be sent or spilled: the task errs.
                if nbytes > crate::value::MAX_ENCODED {
                    if let Err(e) = crate::value::check_size(&value) {
                        return Outcome::Failed(format!("its result cannot be sent: {e}").into());
                    }
                }
                let inline = inline_msgpack(&value);
                Outcome::Finished {
                    value,
                    nbytes,
                    inline,
                }
            }
            Err(m) => Outcome::Failed(m.into()),
        }
    }
}

/// `v` as msgpack if that takes at most [`INLINE_LIMIT`] bytes. The size
/// is bounded first, so a large value is never encoded just to be dropped.
pub fn inline_msgpack(v: &Value) -> Option<Vec<u8>> {
    crate::value::codec::encoded_len_up_to(v, INLINE_LIMIT as u64)?;
    crate::value::encode(v).ok()
}

/// A task's error message, starting with the function's name.
fn task_error(func: &str, message: &str) -> String {
    if message.starts_with(func) && message[func.len()..].starts_with(':') {
        message.to_owned()
    } else {
        format!("{func}: {message}")
    }
}

/// How a worker manages its memory, as fractions of its memory limit
/// (Dask's defaults; `None` turns a step off). Nothing applies without a
/// limit.
///
/// - `target`: results in memory above it are spilled to disk, least
///   recently used first, as they are stored.
/// - `spill`: process memory (RSS) above it spills values until the
///   process is back at the target (memory the store does not count:
///   running tasks, buffers being sent, the allocator's own).
/// - `pause`: process memory above it pauses the worker: no task starts
///   until it is back under; running ones finish, data is still served.
/// - `terminate`: process memory above it restarts the worker: it drops
///   everything and registers again as a new worker, and the scheduler
///   recomputes (or finds elsewhere) what it held.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MemoryPolicy {
    pub target: Option<f64>,
    pub spill: Option<f64>,
    pub pause: Option<f64>,
    pub terminate: Option<f64>,
}

impl Default for MemoryPolicy {
    fn default() -> Self {
        MemoryPolicy {
            target: Some(0.6),
            spill: Some(0.7),
            pause: Some(0.8),
            terminate: Some(0.95),
        }
    }
}

impl MemoryPolicy {
    /// Checks that each fraction is in (0, 1] and that they do not decrease
    /// (target ≤ spill ≤ pause ≤ terminate, among those set).
    pub fn check(&self) -> Result<(), String> {
        let named = [
            ("target", self.target),
            ("spill", self.spill),
            ("pause", self.pause),
            ("terminate", self.terminate),
        ];
        let mut last: Option<(&str, f64)> = None;
        for (name, f) in named {
            let Some(f) = f else { continue };
            if !(f > 0.0 && f <= 1.0) {
                return Err(format!(
                    "the memory {name} fraction must be in (0, 1], got {f}"
                ));
            }
            if let Some((ln, lf)) = last {
                if f < lf {
                    return Err(format!(
                        "the memory {name} fraction ({f}) is below the {ln} fraction ({lf})"
                    ));
                }
            }
            last = Some((name, f));
        }
        Ok(())
    }
}

/// What [`WorkerState::memory_sample`] decided that the glue acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryVerdict {
    Fine,
    /// Values of this many bytes were spilled (the glue may return freed
    /// memory to the system).
    Spilled(u64),
    /// Memory is over the terminate fraction: restart the worker.
    Terminate,
}

/// Counters about the worker's work.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CoreStats {
    /// Tasks that ran and finished.
    pub tasks_finished: u64,
    /// Tasks that failed (including those that could not start).
    pub tasks_erred: u64,
    /// Values fetched from peers.
    pub fetched: u64,
    /// `missing-data` messages sent.
    pub missing_reported: u64,
    /// Values held now.
    pub stored: usize,
    /// Bytes held now.
    pub memory: u64,
    /// Bytes spilled to disk now (size estimates of those values).
    pub spilled: u64,
    /// Values spilled to disk now (of `stored`).
    pub spilled_values: usize,
    /// Spilling so far (values written, read back, errors).
    pub spill: SpillStats,
    /// The process's resident memory at the last sample (0 before any).
    pub process: u64,
    /// Paused: memory use is over the pause fraction, no task starts.
    pub paused: bool,
    /// Times the worker paused.
    pub pauses: u64,
    /// Tasks running now (pool and host threads).
    pub executing: u32,
    /// Keys known now, in any state.
    pub keys: usize,
}

type HeapItem = Reverse<(u64, u64, u32)>;

/// Why a dependency could not be had (`missing-data`'s `reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Why {
    /// The holder answered without it, or nobody was asked.
    NotHeld,
    /// The connection to the holder failed: failed attempt number `n`.
    Unreachable(u64),
}

/// The worker's state (see the module docs).
pub struct WorkerState {
    registry: Registry,
    /// This worker's data address, which it never fetches from.
    address: String,
    entries: Vec<Option<Entry>>,
    free_ids: Vec<u32>,
    names: FxHashMap<String, KeyId>,
    store: Store,
    ready: BinaryHeap<HeapItem>,
    pulled: BinaryHeap<HeapItem>,
    seq: u64,
    executing: u32,
    actions: Vec<Action>,
    /// Fetches decided since the last drain, per peer in first-use order.
    fetch_queue: Vec<(String, Vec<String>)>,
    new_ready: usize,
    new_pulled: usize,
    stats: CoreStats,
    /// Retiring: no new task starts here (see [`WorkerState::retire`]).
    retiring: bool,
    policy: MemoryPolicy,
    /// Paused by memory use: no task is taken (see [`WorkerState::memory_sample`]).
    paused: bool,
    /// The last process memory sample, bytes.
    rss: u64,
    /// The process's CPU use over the last heartbeat interval, percent of
    /// one CPU (see [`WorkerState::cpu_sample`]).
    cpu: Option<f64>,
    /// Failed fetch connections so far (`missing-data`'s `attempt`).
    failed_links: u64,
}

impl fmt::Debug for WorkerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerState")
            .field("address", &self.address)
            .field("keys", &self.names.len())
            .field("ready", &self.ready.len())
            .field("executing", &self.executing)
            .finish()
    }
}

impl WorkerState {
    /// A worker core that runs `registry`'s functions (and the builtins),
    /// serves data at `address`, and may hold `memory_limit` bytes (0: no
    /// limit).
    pub fn new(registry: Registry, address: &str, memory_limit: u64) -> WorkerState {
        WorkerState {
            registry,
            address: address.to_owned(),
            entries: Vec::new(),
            free_ids: Vec::new(),
            names: FxHashMap::default(),
            store: Store::new(memory_limit),
            ready: BinaryHeap::new(),
            pulled: BinaryHeap::new(),
            seq: 0,
            executing: 0,
            actions: Vec::new(),
            fetch_queue: Vec::new(),
            new_ready: 0,
            new_pulled: 0,
            stats: CoreStats::default(),
            retiring: false,
            policy: MemoryPolicy::default(),
            paused: false,
            rss: 0,
            cpu: None,
            failed_links: 0,
        }
    }

    /// This core with memory management: `policy`'s fractions of the
    /// memory limit, and `disk` to spill to (`None`: values stay in
    /// memory; pausing and terminating still apply).
    pub fn with_memory(mut self, policy: MemoryPolicy, disk: Option<Box<dyn Disk>>) -> Self {
        self.policy = policy;
        let limit = self.store.limit();
        self.store = match disk {
            Some(d) => Store::with_disk(limit, d),
            None => Store::new(limit),
        };
        self
    }

    /// Bytes of the memory limit at `fraction`, when both are set.
    fn at(&self, fraction: Option<f64>) -> Option<u64> {
        let limit = self.store.limit();
        match fraction {
            Some(f) if limit > 0 => Some((limit as f64 * f) as u64),
            _ => None,
        }
    }

    /// The bytes in memory the store keeps to by spilling, if any.
    pub fn memory_target(&self) -> Option<u64> {
        self.at(self.policy.target)
    }

    /// Spills least recently used values while the store holds more in
    /// memory than the target.
    fn enforce_target(&mut self) {
        if let Some(t) = self.memory_target() {
            let held = self.store.bytes();
            if held > t {
                let freed = self.store.evict(held - t);
                if freed > 0 {
                    tracing::debug!(worker = %self.address, freed, "spilled to stay under the memory target");
                }
            }
        }
    }

    /// A sample of the process's resident memory, `rss` bytes (the glue
    /// measures it every [`MemoryPolicy::interval`]): spills by process
    /// memory, pauses and resumes. Pausing or resuming is logged, counted
    /// and told to the scheduler at once with a heartbeat. Returns
    /// [`MemoryVerdict::Terminate`] when the worker must restart.
    pub fn memory_sample(&mut self, rss: u64) -> MemoryVerdict {
        self.rss = rss;
        let limit = self.store.limit();
        if limit == 0 {
            return MemoryVerdict::Fine;
        }
        if self.at(self.policy.terminate).is_some_and(|t| rss > t) {
            tracing::error!(
                worker = %self.address, rss, limit,
                "process memory is over the terminate fraction ({:.2}) of the memory limit: restarting the worker",
                self.policy.terminate.unwrap_or(0.0)
            );
            return MemoryVerdict::Terminate;
        }
        let was = self.paused;
        if let Some(p) = self.at(self.policy.pause) {
            self.paused = rss > p;
        }
        if self.paused != was {
            if self.paused {
                self.stats.pauses += 1;
                tracing::warn!(
                    worker = %self.address, rss, limit,
                    "paused: process memory is over the pause fraction ({:.2}) of the memory limit; no new task starts",
                    self.policy.pause.unwrap_or(0.0)
                );
            } else {
                tracing::info!(worker = %self.address, rss, limit, "resumed: process memory is back under the pause fraction");
                self.new_ready += self.ready.len();
                self.new_pulled += self.pulled.len();
            }
            let hb = self.heartbeat();
            self.send(hb);
        }
        if let Some(s) = self.at(self.policy.spill) {
            if rss > s {
                // Free what brings the process back to the target (or to
                // the spill threshold when no target is set).
                let goal = self.memory_target().unwrap_or(s);
                let freed = self.store.evict(rss - goal);
                if freed > 0 {
                    tracing::debug!(worker = %self.address, rss, freed, "spilled by process memory");
                    return MemoryVerdict::Spilled(freed);
                }
            }
        }
        MemoryVerdict::Fine
    }

    /// Whether memory use has paused the worker.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    // ------------------------------------------------------------ entries

    fn e(&self, id: KeyId) -> &Entry {
        self.entries[id.0 as usize].as_ref().expect("a live key id")
    }

    fn em(&mut self, id: KeyId) -> &mut Entry {
        self.entries[id.0 as usize].as_mut().expect("a live key id")
    }

    fn get(&self, id: KeyId) -> Option<&Entry> {
        self.entries.get(id.0 as usize).and_then(|e| e.as_ref())
    }

    fn id(&self, name: &str) -> Option<KeyId> {
        self.names.get(name).copied()
    }

    fn create(&mut self, name: String, state: State, wanted: bool) -> KeyId {
        let entry = Entry {
            name: name.clone(),
            state,
            task: None,
            waiters: Vec::new(),
            dependents: 0,
            wanted,
        };
        let id = match self.free_ids.pop() {
            Some(i) => {
                self.entries[i as usize] = Some(entry);
                KeyId(i)
            }
            None => {
                self.entries.push(Some(entry));
                KeyId(self.entries.len() as u32 - 1)
            }
        };
        self.names.insert(name, id);
        id
    }

    fn send(&mut self, m: Message) {
        self.actions.push(Action::Send(m));
    }

    fn queue_fetch(&mut self, peer: &str, key: &str) {
        match self.fetch_queue.iter_mut().find(|(p, _)| p == peer) {
            Some((_, keys)) => keys.push(key.to_owned()),
            None => self
                .fetch_queue
                .push((peer.to_owned(), vec![key.to_owned()])),
        }
    }

    /// Leaves the current state: undoes what being in it holds (pins,
    /// waiter entries, the stored value, the executing count). The caller
    /// sets the next state.
    fn leave(&mut self, id: KeyId) {
        let state = std::mem::replace(&mut self.em(id).state, State::Memory);
        match state {
            State::Waiting { .. } => {
                let deps = self
                    .em(id)
                    .task
                    .as_mut()
                    .map(|t| std::mem::take(&mut t.deps))
                    .unwrap_or_default();
                self.unpin(id, &deps);
            }
            State::Executing { .. } => self.executing -= 1,
            State::Memory => {
                self.store.remove(id);
            }
            State::Fetching { .. } | State::Ready { .. } | State::Erred { .. } => {}
        }
        // A placeholder until the caller's transition.
        self.em(id).state = State::Erred {
            message: String::new(),
        };
    }

    /// Releases the pins a waiting task `t` holds on `deps`.
    fn unpin(&mut self, t: KeyId, deps: &[KeyId]) {
        for &d in deps {
            let e = self.em(d);
            e.dependents -= 1;
            if let Some(i) = e.waiters.iter().position(|&w| w == t) {
                e.waiters.swap_remove(i);
            }
        }
        for &d in deps {
            self.maybe_forget(d);
        }
    }

    /// Forgets `id` if nothing keeps it: not wanted and not pinned.
    fn maybe_forget(&mut self, id: KeyId) {
        let Some(e) = self.get(id) else { return };
        if e.wanted || e.dependents > 0 {
            return;
        }
        debug_assert!(e.waiters.is_empty());
        self.leave(id);
        let e = self.entries[id.0 as usize].take().expect("live");
        self.names.remove(&e.name);
        self.free_ids.push(id.0);
        tracing::trace!(key = %e.name, "forgotten");
    }

    // ------------------------------------------------------------ events

    /// Starts retiring: tasks not started yet (waiting for inputs, or
    /// ready) are dropped and handed back to the scheduler with
    /// `reschedule`, and tasks sent later are handed back at once; running
    /// tasks finish normally, and data is kept and served until the
    /// scheduler says `close`. With `ask`, the worker asks the scheduler to
    /// retire it first (`retire-worker` with that reason: SIGTERM, or its
    /// host); without, the scheduler asked (`retire`). Idempotent.
    pub fn retire(&mut self, ask: Option<String>) {
        if self.retiring {
            return;
        }
        self.retiring = true;
        if let Some(reason) = ask {
            self.send(Message::RetireWorker { reason });
        }
        let ids: Vec<KeyId> = self
            .entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| {
                let e = e.as_ref()?;
                (e.task.is_some() && matches!(e.state, State::Waiting { .. } | State::Ready { .. }))
                    .then_some(KeyId(i as u32))
            })
            .collect();
        let mut keys = Vec::new();
        for id in ids {
            // Dropping one may have dropped another (its dependents here).
            let Some(e) = self.get(id) else { continue };
            if e.task.is_none() || !matches!(e.state, State::Waiting { .. } | State::Ready { .. }) {
                continue;
            }
            if e.wanted {
                keys.push(e.name.clone());
            }
            self.em(id).wanted = false;
            self.leave(id);
            self.em(id).task = None;
            // Tasks here waiting on it are dropped too (they are in `ids`);
            // dropping them unpins it, and then it is forgotten.
            self.maybe_forget(id);
        }
        if !keys.is_empty() {
            self.send(Message::Reschedule { keys });
        }
    }

    /// Forgets everything of the scheduler session that was lost: keys,
    /// data, queued tasks, fetches; the worker is then as new (not
    /// retiring). Runs still going on finish and are discarded (their
    /// `seq` no longer matches anything: the counter keeps counting).
    pub fn reset(&mut self) {
        self.entries.clear();
        self.free_ids.clear();
        self.names.clear();
        self.store.clear();
        self.paused = false;
        self.ready.clear();
        self.pulled.clear();
        self.executing = 0;
        self.actions.clear();
        self.fetch_queue.clear();
        self.new_ready = 0;
        self.new_pulled = 0;
        self.retiring = false;
    }

    /// The worker stops: forgets every key (as [`Self::reset`]: runs still
    /// going on finish into nothing), drops every value and removes the
    /// spill files. Keys left in memory over a closed store would break
    /// the core's invariants for any later step (found with
    /// `RASK_VALIDATE` in the Python suite: a step after a worker's stop
    /// aborted with "phase Memory but the store lacks a value").
    pub fn close_store(&mut self) {
        self.reset();
        self.store.close();
    }

    /// Whether the worker is retiring.
    pub fn is_retiring(&self) -> bool {
        self.retiring
    }

    /// `acquire-replicas`: fetch a copy of each key from the holders named
    /// and keep it (the scheduler moves a retiring worker's results). Keys
    /// fetched are announced with `add-keys`; keys no holder gives, with
    /// `acquire-failed`.
    pub fn acquire_replicas(&mut self, who_has: BTreeMap<String, Vec<String>>) {
        let mut have = Vec::new();
        let mut sizes = Vec::new();
        let mut failed = Vec::new();
        for (key, holders) in who_has {
            let mut holders: Vec<String> =
                holders.into_iter().filter(|a| *a != self.address).collect();
            match self.id(&key) {
                Some(id) => match self.e(id).state.phase() {
                    Phase::Memory => {
                        self.em(id).wanted = true;
                        sizes.push(self.store.nbytes(id).unwrap_or(0));
                        have.push(key);
                    }
                    // On its way already: keep it once it comes.
                    Phase::Fetching => self.em(id).wanted = true,
                    // Being computed here, or erred: not a copy to fetch.
                    _ => failed.push(key),
                },
                None if holders.is_empty() => failed.push(key),
                None => {
                    holders.reverse();
                    let from = holders.pop().expect("not empty");
                    self.queue_fetch(&from, &key);
                    self.create(
                        key,
                        State::Fetching {
                            from,
                            others: holders,
                        },
                        true,
                    );
                }
            }
        }
        if !have.is_empty() {
            self.send(Message::AddKeys {
                keys: have,
                nbytes: sizes,
                from: String::new(),
                duration: None,
            });
        }
        if !failed.is_empty() {
            self.send(Message::AcquireFailed {
                keys: failed,
                message: format!("the worker at {} cannot fetch these keys", self.address),
            });
        }
    }

    /// A `compute-task` from the scheduler.
    pub fn compute_task(&mut self, ev: ComputeTask) {
        if self.retiring && self.phase(&ev.key) != Some(Phase::Memory) {
            // Sent before the scheduler knew: hand it back.
            self.send(Message::Reschedule { keys: vec![ev.key] });
            return;
        }
        let id = match self.id(&ev.key) {
            Some(id) => {
                let e = self.em(id);
                e.wanted = true;
                match e.state.phase() {
                    // Already here: say so again.
                    Phase::Memory => {
                        self.resend_finished(id);
                        return;
                    }
                    // Already on its way: nothing to do.
                    Phase::Waiting | Phase::Ready | Phase::Executing => return,
                    // Asked to compute what it was fetching, or a retry.
                    Phase::Fetching | Phase::Erred => {
                        self.leave(id);
                        id
                    }
                }
            }
            None => self.create(
                ev.key.clone(),
                State::Erred {
                    message: String::new(),
                },
                true,
            ),
        };
        self.start_task(id, ev);
    }

    fn resend_finished(&mut self, id: KeyId) {
        // A spilled value is larger than what goes inline: no read.
        let inline = self
            .store
            .peek(id)
            .and_then(inline_msgpack)
            .map(ByteBuf::from);
        let nbytes = self.store.nbytes(id).unwrap_or(0);
        let key = self.e(id).name.clone();
        self.send(Message::TaskFinished {
            key,
            nbytes,
            duration: 0.0,
            value: inline,
        });
    }

    /// Sets up task `id` (an entry in no particular state) from `ev`.
    fn start_task(&mut self, id: KeyId, ev: ComputeTask) {
        let ComputeTask {
            func,
            args,
            priority,
            who_has,
            ..
        } = ev;
        let Some(function) = self.registry.resolve(&func) else {
            let m = format!(
                "no function named '{func}' is registered on the worker at {}",
                self.address
            );
            return self.erred(id, m);
        };
        let args = match args {
            Ok(a) => a,
            Err(m) => return self.erred(id, task_error(&func, &m)),
        };
        let mut dep_names: Vec<&str> = Vec::new();
        for a in &args {
            a.for_each_ref(&mut |k| dep_names.push(k));
        }
        dep_names.sort_unstable();
        dep_names.dedup();

        // First look at every dependency without changing anything.
        enum Dep {
            Here(KeyId),
            Pending(KeyId),
            Fetch(Vec<String>),
        }
        let mut plan = Vec::with_capacity(dep_names.len());
        let mut missing: Vec<(String, String)> = Vec::new();
        for &d in &dep_names {
            if d == self.e(id).name {
                return self.erred(id, format!("the task '{d}' depends on itself"));
            }
            match self.id(d) {
                Some(did) => match &self.e(did).state {
                    State::Memory => plan.push(Dep::Here(did)),
                    State::Erred { message } => {
                        let m = format!("dependency '{d}' failed: {message}");
                        return self.erred(id, m);
                    }
                    _ => plan.push(Dep::Pending(did)),
                },
                None => {
                    let holders: Vec<String> = who_has
                        .get(d)
                        .map(|h| h.iter().filter(|a| **a != self.address).cloned().collect())
                        .unwrap_or_default();
                    if holders.is_empty() {
                        // No holder named: the scheduler believes this
                        // worker holds it, so this worker is the one asked.
                        let asked = who_has
                            .get(d)
                            .and_then(|h| h.first().cloned())
                            .unwrap_or_else(|| self.address.clone());
                        missing.push((d.to_owned(), asked));
                    } else {
                        plan.push(Dep::Fetch(holders));
                    }
                }
            }
        }
        if !missing.is_empty() {
            let mut it = missing.into_iter();
            let (dep, asked) = it.next().unwrap();
            for (dep, asked) in it {
                let key = self.e(id).name.clone();
                self.report_missing(key, dep, asked, Why::NotHeld);
            }
            return self.give_up(id, dep, asked, Why::NotHeld);
        }

        // Then pin them and count what is not here yet.
        let mut deps = Vec::with_capacity(plan.len());
        let mut waiting = 0;
        for (dep, name) in plan.into_iter().zip(dep_names) {
            let did = match dep {
                Dep::Here(did) => did,
                Dep::Pending(did) => {
                    self.em(did).waiters.push(id);
                    waiting += 1;
                    did
                }
                Dep::Fetch(mut holders) => {
                    holders.reverse();
                    let from = holders.pop().expect("not empty");
                    self.queue_fetch(&from, name);
                    let did = self.create(
                        name.to_owned(),
                        State::Fetching {
                            from,
                            others: holders,
                        },
                        false,
                    );
                    self.em(did).waiters.push(id);
                    waiting += 1;
                    did
                }
            };
            self.em(did).dependents += 1;
            deps.push(did);
        }
        let e = self.em(id);
        e.task = Some(Box::new(TaskDef {
            func_name: func,
            func: function,
            args,
            priority,
            deps,
        }));
        e.state = State::Waiting { missing: waiting };
        if waiting == 0 {
            self.make_ready(id);
        }
    }

    fn report_missing(&mut self, key: String, dependency: String, worker: String, why: Why) {
        self.stats.missing_reported += 1;
        let (reason, attempt) = match why {
            Why::NotHeld => (MISSING_NOT_HELD, None),
            Why::Unreachable(n) => (MISSING_UNREACHABLE, Some(n)),
        };
        self.send(Message::MissingData {
            key,
            dependency,
            worker,
            reason: reason.to_owned(),
            attempt,
        });
    }

    /// Task `id` cannot get `dependency` (last asked at `asked`, failing
    /// for `why`): report `missing-data` and forget it. Local tasks
    /// waiting on `id` give up in turn, since it will not be computed here.
    fn give_up(&mut self, id: KeyId, dependency: String, asked: String, why: Why) {
        let waiters = std::mem::take(&mut self.em(id).waiters);
        let name = self.e(id).name.clone();
        for w in waiters {
            if self.get(w).is_some() {
                self.give_up(w, name.clone(), self.address.clone(), Why::NotHeld);
            }
        }
        // Giving the waiters up unpinned `id`, which may have forgotten it.
        let Some(e) = self.entries[id.0 as usize].as_mut() else {
            return;
        };
        if e.wanted {
            e.wanted = false;
            let key = e.name.clone();
            self.report_missing(key, dependency, asked, why);
        }
        self.leave(id);
        self.em(id).task = None;
        self.maybe_forget(id);
    }

    /// Task `id` failed with `message` (already naming the function).
    fn erred(&mut self, id: KeyId, message: String) {
        self.raised(id, message, String::new(), String::new())
    }

    /// Task `id` failed with `message` (already naming the function),
    /// raising an exception of type `exception` at `traceback` (each may be
    /// empty); both go to the scheduler with `task-erred`, not to the tasks
    /// here that depend on it.
    fn raised(&mut self, id: KeyId, message: String, exception: String, traceback: String) {
        self.leave(id);
        self.stats.tasks_erred += 1;
        let e = self.em(id);
        e.task = None;
        let name = e.name.clone();
        if e.wanted {
            self.send(Message::TaskErred {
                key: name.clone(),
                message: message.clone(),
                exception,
                traceback,
            });
        }
        let waiters = std::mem::take(&mut self.em(id).waiters);
        let note = format!("dependency '{name}' failed: {message}");
        self.em(id).state = State::Erred { message };
        for w in waiters {
            if self.get(w).is_some() {
                self.erred(w, note.clone());
            }
        }
        self.maybe_forget(id);
    }

    /// Every input of waiting task `id` is in memory: resolve its arguments
    /// and queue it.
    fn make_ready(&mut self, id: KeyId) {
        let args = std::mem::take(&mut self.em(id).task.as_mut().expect("a task").args);
        let resolved: Result<Vec<Value>, String> = {
            let (names, store) = (&self.names, &mut self.store);
            let address = &self.address;
            let store = std::cell::RefCell::new(store);
            let lookup = |k: &str| {
                let &d = names.get(k)?;
                match store.borrow_mut().get(d)? {
                    Ok(v) => Some(v),
                    Err(e) => {
                        tracing::error!(worker = %address, key = k, "cannot read a spilled value back: {e}");
                        None
                    }
                }
            };
            args.into_iter().map(|a| resolve(a, &lookup)).collect()
        };
        let deps = std::mem::take(&mut self.em(id).task.as_mut().expect("a task").deps);
        let args = match resolved {
            Ok(a) => a,
            Err(k) => {
                // Only when a spill file could not be read: the value is
                // lost here (the scheduler is told with missing-data).
                self.em(id).task.as_mut().expect("a task").deps = deps;
                let asked = self.address.clone();
                return self.give_up(id, k, asked, Why::NotHeld);
            }
        };
        self.unpin(id, &deps);
        self.seq += 1;
        let seq = self.seq;
        let e = self.em(id);
        let t = e.task.as_ref().expect("a task");
        let item = Reverse((t.priority, seq, id.0));
        let pulled = t.func.is_pulled();
        let cheap = matches!(t.func, Function::Builtin(_)) && {
            let mut budget = CHEAP_ARGS as u64;
            args.iter()
                .all(|a| crate::value::codec::fits(a, &mut budget))
        };
        e.state = State::Ready { seq, args, cheap };
        if pulled {
            self.pulled.push(item);
            self.new_pulled += 1;
        } else {
            self.ready.push(item);
            self.new_ready += 1;
        }
    }

    /// Puts `value` in memory under `id` and lets the tasks waiting for it
    /// go on.
    fn store_value(&mut self, id: KeyId, value: Value, nbytes: u64) {
        self.leave(id);
        self.store.insert(id, value, nbytes);
        self.enforce_target();
        let e = self.em(id);
        e.state = State::Memory;
        e.task = None;
        let waiters = std::mem::take(&mut e.waiters);
        for w in waiters {
            let Some(e) = self.entries[w.0 as usize].as_mut() else {
                continue;
            };
            if let State::Waiting { missing } = &mut e.state {
                *missing -= 1;
                if *missing == 0 {
                    self.make_ready(w);
                }
            }
        }
    }

    /// Takes up to `max` ready tasks, most urgent first, for a pool thread
    /// (they become executing). Returns how many it took.
    pub fn take_ready(&mut self, max: usize, out: &mut Vec<ExecTask>) -> usize {
        if self.paused {
            return 0;
        }
        let mut n = 0;
        while n < max {
            let Some(Reverse((_, seq, raw))) = self.ready.pop() else {
                break;
            };
            let id = KeyId(raw);
            let Some(e) = self.entries.get_mut(raw as usize).and_then(|e| e.as_mut()) else {
                continue;
            };
            match &mut e.state {
                State::Ready { seq: s, args, .. } if *s == seq => {
                    let args = std::mem::take(args);
                    e.state = State::Executing {
                        seq,
                        seceded: false,
                    };
                    let func = e.task.as_ref().expect("a task").func.clone();
                    out.push(ExecTask {
                        id,
                        seq,
                        func,
                        args,
                    });
                    self.executing += 1;
                    n += 1;
                }
                _ => {} // freed or replaced since it was queued
            }
        }
        n
    }

    /// Like [`take_ready`](Self::take_ready), but stops at the first task
    /// that is not cheap (a builtin whose arguments encode in at most
    /// [`CHEAP_ARGS`] bytes): what the thread that received the tasks may
    /// run itself instead of waking a pool thread.
    pub fn take_cheap(&mut self, max: usize, out: &mut Vec<ExecTask>) -> usize {
        if self.paused {
            return 0;
        }
        let mut n = 0;
        while n < max {
            let Some(&Reverse((_, seq, raw))) = self.ready.peek() else {
                break;
            };
            let live = self.entries.get(raw as usize).and_then(|e| e.as_ref());
            match live.map(|e| &e.state) {
                Some(State::Ready { seq: s, cheap, .. }) if *s == seq => {
                    if !*cheap {
                        break;
                    }
                    n += self.take_ready(1, out);
                }
                _ => {
                    self.ready.pop(); // stale
                }
            }
        }
        n
    }

    /// The most urgent ready task of a pulled function, for a host thread.
    pub fn take_pulled(&mut self) -> Option<PulledExec> {
        if self.paused {
            return None;
        }
        while let Some(Reverse((_, seq, raw))) = self.pulled.pop() {
            let Some(e) = self.entries.get_mut(raw as usize).and_then(|e| e.as_mut()) else {
                continue;
            };
            if let State::Ready { seq: s, args, .. } = &mut e.state {
                if *s == seq {
                    let args = std::mem::take(args);
                    e.state = State::Executing {
                        seq,
                        seceded: false,
                    };
                    self.executing += 1;
                    return Some(PulledExec {
                        id: KeyId(raw),
                        seq,
                        key: e.name.clone(),
                        func: e.task.as_ref().expect("a task").func_name.clone(),
                        args,
                    });
                }
            }
        }
        None
    }

    /// Ready tasks queued for the pool that may be taken now (an upper
    /// bound: freed ones are skipped when taken; none while paused).
    pub fn ready_len(&self) -> usize {
        if self.paused {
            0
        } else {
            self.ready.len()
        }
    }

    /// Ready tasks queued for host threads (an upper bound; none while
    /// paused).
    pub fn pulled_len(&self) -> usize {
        if self.paused {
            0
        } else {
            self.pulled.len()
        }
    }

    /// A run of `id` (taken with `seq`) ended after `duration` seconds.
    /// Returns false if the result was discarded (the key was freed or
    /// replaced meanwhile).
    pub fn task_done(&mut self, id: KeyId, seq: u64, outcome: Outcome, duration: f64) -> bool {
        match self.get(id).map(|e| &e.state) {
            Some(State::Executing { seq: s, .. }) if *s == seq => {}
            _ => return false,
        }
        match outcome {
            Outcome::Finished {
                value,
                nbytes,
                inline,
            } => {
                self.stats.tasks_finished += 1;
                let (key, wanted) = {
                    let e = self.e(id);
                    (e.name.clone(), e.wanted)
                };
                if wanted {
                    self.send(Message::TaskFinished {
                        key,
                        nbytes,
                        duration,
                        value: inline.map(ByteBuf::from),
                    });
                }
                // Waiters made ready may unpin it, which can forget it.
                self.store_value(id, value, nbytes);
                self.maybe_forget(id);
            }
            Outcome::Failed(f) => {
                let func = &self.e(id).task.as_ref().expect("a task").func_name;
                let m = task_error(func, &f.message);
                self.raised(id, m, f.exception, f.traceback);
            }
        }
        true
    }

    /// The run `seq` of `id` seceded: its function waits (on tasks it
    /// submitted) without holding its thread's slot. The scheduler is told
    /// with `long-running`, once per run. Returns false when that run is
    /// no longer current (freed or replaced meanwhile; nothing is sent).
    pub fn secede(&mut self, id: KeyId, seq: u64) -> bool {
        let Some(e) = self.entries.get_mut(id.0 as usize).and_then(|e| e.as_mut()) else {
            return false;
        };
        match &mut e.state {
            State::Executing { seq: s, seceded } if *s == seq => {
                if !*seceded {
                    *seceded = true;
                    let key = e.name.clone();
                    self.send(Message::LongRunning { key });
                }
                true
            }
            _ => false,
        }
    }

    /// A peer at `peer` answered a fetch: these values, and these keys it
    /// does not hold.
    pub fn fetched(&mut self, peer: &str, data: Vec<(String, Value)>, missing: &[String]) {
        self.fetched_in(peer, data, missing, None)
    }

    /// [`fetched`](Self::fetched), with how long the fetch took (seconds):
    /// `add-keys` says where from and how long, so the scheduler's
    /// dashboard can draw the transfer.
    pub fn fetched_in(
        &mut self,
        peer: &str,
        data: Vec<(String, Value)>,
        missing: &[String],
        duration: Option<f64>,
    ) {
        let mut keys = Vec::new();
        let mut sizes = Vec::new();
        for (name, value) in data {
            let Some(id) = self.id(&name) else { continue };
            match &self.e(id).state {
                State::Fetching { from, .. } if from == peer => {}
                _ => continue, // no longer wanted, or asked elsewhere since
            }
            let nbytes = value.size_estimate() as u64;
            self.stats.fetched += 1;
            self.em(id).wanted = true;
            self.store_value(id, value, nbytes);
            keys.push(name);
            sizes.push(nbytes);
        }
        if !keys.is_empty() {
            self.send(Message::AddKeys {
                keys,
                nbytes: sizes,
                from: peer.to_string(),
                duration,
            });
        }
        for name in missing {
            self.fetch_missed(name, peer, Why::NotHeld);
        }
    }

    /// Fetching `keys` from `peer` failed because the connection to it
    /// could not be made or broke (call once per failed connection, with
    /// every key it was asked for): try the other holders. A task that
    /// gives up reports the holder as `unreachable`, every report of this
    /// one failure with the same `attempt`, so it counts once.
    pub fn fetch_failed(&mut self, peer: &str, keys: &[String], reason: &str) {
        tracing::debug!(peer, reason, n = keys.len(), "fetch failed");
        self.failed_links += 1;
        let why = Why::Unreachable(self.failed_links);
        for k in keys {
            self.fetch_missed(k, peer, why);
        }
    }

    /// `peer` answered a fetch of `keys` but without usable values (an
    /// error reply, a value that could not be decoded): try the other
    /// holders; a task that gives up reports the holder as `not-held`.
    pub fn fetch_refused(&mut self, peer: &str, keys: &[String], reason: &str) {
        tracing::debug!(peer, reason, n = keys.len(), "fetch refused");
        for k in keys {
            self.fetch_missed(k, peer, Why::NotHeld);
        }
    }

    /// `peer` holds `name` but cannot send it: its host could not
    /// serialize the value (`reason`, the serializer's message). Another
    /// holder (which got the value serialized) is tried next; when none is
    /// left, the tasks here that need it fail with the reason (asking the
    /// scheduler again would find the same value).
    pub fn fetch_unsendable(&mut self, peer: &str, name: &str, reason: &str) {
        tracing::debug!(peer, key = name, reason, "a peer cannot send a value");
        self.fetch_missed_or(name, peer, Why::NotHeld, Some(reason));
    }

    fn fetch_missed(&mut self, name: &str, peer: &str, why: Why) {
        self.fetch_missed_or(name, peer, why, None)
    }

    /// A fetch of `name` from `peer` gave no value: try the next holder;
    /// with none left, give the waiting tasks up (report the key missing),
    /// or, when the holder said it cannot send the value (`unsendable`),
    /// fail them with that reason.
    fn fetch_missed_or(&mut self, name: &str, peer: &str, why: Why, unsendable: Option<&str>) {
        let Some(id) = self.id(name) else { return };
        let next = match &mut self.em(id).state {
            State::Fetching { from, others } if from == peer => others.pop(),
            _ => return,
        };
        match next {
            Some(next) => {
                self.queue_fetch(&next, name);
                if let State::Fetching { from, .. } = &mut self.em(id).state {
                    *from = next;
                }
            }
            None => {
                let waiters = std::mem::take(&mut self.em(id).waiters);
                let note = unsendable
                    .map(|r| format!("argument '{name}' cannot be sent from {peer}: {r}"));
                for w in waiters {
                    if self.get(w).is_some() {
                        match &note {
                            Some(n) => self.erred(w, n.clone()),
                            None => self.give_up(w, name.to_owned(), peer.to_owned(), why),
                        }
                    }
                }
                // A fetch the scheduler wants kept is a replica it asked
                // for (`acquire-replicas`): say it failed.
                if let Some(e) = self.entries[id.0 as usize].as_mut() {
                    if e.wanted {
                        e.wanted = false;
                        let message = note
                            .unwrap_or_else(|| format!("no holder gave it (last asked: {peer})"));
                        self.send(Message::AcquireFailed {
                            keys: vec![name.to_owned()],
                            message,
                        });
                    }
                }
                self.maybe_forget(id);
            }
        }
    }

    /// `free-keys`: the scheduler no longer wants these keys here.
    pub fn free_keys(&mut self, keys: &[String]) {
        for k in keys {
            if let Some(id) = self.id(k) {
                self.em(id).wanted = false;
                self.maybe_forget(id);
            }
        }
    }

    /// Replaces the value held in memory under `key` by `copy` when it is
    /// still `old` (the same buffer): `copy` holds the same bytes in shared
    /// memory (the data port made it, see `protocol::shm`), so later sends
    /// to the same host need no copy. `false` when the key was freed,
    /// spilled or replaced meanwhile.
    pub fn keep_copy(&mut self, key: &str, old: &Value, copy: Value) -> bool {
        fn buffer(v: &Value) -> Option<(*const u8, usize)> {
            match v {
                Value::Bin(b) => Some((b.as_ptr(), b.len())),
                Value::Tensor(t) => Some((t.data().as_ptr(), t.data().len())),
                _ => None,
            }
        }
        let Some(id) = self.id(key) else {
            return false;
        };
        match self.store.memory_mut(id) {
            Some(v)
                if buffer(v).is_some()
                    && buffer(v) == buffer(old)
                    && buffer(&copy).map(|b| b.1) == buffer(old).map(|b| b.1) =>
            {
                *v = copy;
                true
            }
            _ => false,
        }
    }

    /// `get-data`: the values held under `keys`, and the keys not held.
    /// Spilled values are read back from disk (and not kept in memory); one
    /// whose spill file cannot be read counts as not held.
    pub fn get_data(&mut self, keys: &[String]) -> (Vec<(String, Value)>, Vec<String>) {
        let mut found = Vec::with_capacity(keys.len());
        let mut missing = Vec::new();
        for k in keys {
            match self.id(k).and_then(|id| self.store.get(id)) {
                Some(Ok(v)) => found.push((k.clone(), v)),
                Some(Err(e)) => {
                    tracing::error!(worker = %self.address, key = %k, "cannot read a spilled value back: {e}");
                    missing.push(k.clone())
                }
                None => missing.push(k.clone()),
            }
        }
        (found, missing)
    }

    /// `put-data`: store these values (whatever the keys' states were) and
    /// return their sizes.
    pub fn put_data(&mut self, data: Vec<(String, Value)>) -> BTreeMap<String, u64> {
        let mut sizes = BTreeMap::new();
        for (name, value) in data {
            let nbytes = value.size_estimate() as u64;
            let id = match self.id(&name) {
                Some(id) => id,
                None => self.create(name.clone(), State::Memory, true),
            };
            self.em(id).wanted = true;
            self.store_value(id, value, nbytes);
            sizes.insert(name, nbytes);
        }
        sizes
    }

    /// The process's CPU use, percent of one CPU, measured by the glue
    /// over the last heartbeat interval; the next heartbeats carry it.
    pub fn cpu_sample(&mut self, percent: f64) {
        self.cpu = (percent.is_finite() && percent >= 0.0).then_some(percent);
    }

    /// The heartbeat to send now.
    pub fn heartbeat(&self) -> Message {
        Message::Heartbeat {
            executing: self.executing,
            memory: self.store.bytes(),
            spilled: self.store.spilled_bytes(),
            process: self.rss,
            paused: self.paused,
            cpu: self.cpu,
        }
    }

    /// Moves the actions decided so far into `out`: messages in the order
    /// they were decided, then one fetch per peer, then the ready counts.
    pub fn drain_actions(&mut self, out: &mut Vec<Action>) {
        out.append(&mut self.actions);
        for (peer, keys) in self.fetch_queue.drain(..) {
            out.push(Action::Fetch { peer, keys });
        }
        if self.new_ready > 0 {
            out.push(Action::Execute(std::mem::take(&mut self.new_ready)));
        }
        if self.new_pulled > 0 {
            out.push(Action::Deliver(std::mem::take(&mut self.new_pulled)));
        }
    }

    /// [`drain_actions`](Self::drain_actions) into a new vector.
    pub fn take_actions(&mut self) -> Vec<Action> {
        let mut v = Vec::new();
        self.drain_actions(&mut v);
        v
    }

    // ------------------------------------------------------------ views

    /// The phase of `key`, if the worker knows it.
    pub fn phase(&self, key: &str) -> Option<Phase> {
        self.id(key).map(|id| self.e(id).state.phase())
    }

    /// The value held under `key` (read back from disk if it was spilled;
    /// `None` too if that fails).
    pub fn value(&mut self, key: &str) -> Option<Value> {
        self.id(key)
            .and_then(|id| self.store.get(id))
            .and_then(Result::ok)
    }

    /// Whether the value held under `key` is spilled to disk.
    pub fn is_spilled(&self, key: &str) -> bool {
        self.id(key).is_some_and(|id| self.store.is_spilled(id))
    }

    /// The keys whose values are held, sorted.
    pub fn stored_keys(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .entries
            .iter()
            .flatten()
            .filter(|e| matches!(e.state, State::Memory))
            .map(|e| e.name.clone())
            .collect();
        v.sort();
        v
    }

    pub fn stats(&self) -> CoreStats {
        CoreStats {
            stored: self.store.len(),
            memory: self.store.bytes(),
            spilled: self.store.spilled_bytes(),
            spilled_values: self.store.spilled_len(),
            spill: self.store.spill_stats(),
            process: self.rss,
            paused: self.paused,
            executing: self.executing,
            keys: self.names.len(),
            ..self.stats
        }
    }

    /// The keys the worker knows (what [`Self::validate`] walks).
    pub fn key_count(&self) -> usize {
        self.names.len()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Checks every invariant; the error names the first broken one.
    pub fn validate(&self) -> Result<(), String> {
        let mut live = 0;
        let mut executing = 0;
        let mut pins: FxHashMap<u32, u32> = FxHashMap::default();
        let mut waits: FxHashMap<u32, Vec<u32>> = FxHashMap::default();
        for (i, e) in self.entries.iter().enumerate() {
            let Some(e) = e else { continue };
            live += 1;
            let id = KeyId(i as u32);
            let ctx = |m: String| Err(format!("key '{}': {m}", e.name));
            if self.names.get(&e.name) != Some(&id) {
                return ctx("not in the name table under its id".into());
            }
            if !e.wanted && e.dependents == 0 {
                return ctx("neither wanted nor pinned, but still here".into());
            }
            let in_memory = matches!(e.state, State::Memory);
            if in_memory != self.store.contains(id) {
                return ctx(format!(
                    "phase {:?} but the store {} a value",
                    e.state.phase(),
                    if in_memory { "lacks" } else { "holds" }
                ));
            }
            if in_memory && !e.waiters.is_empty() {
                return ctx("in memory with waiters".into());
            }
            let is_task_phase = matches!(
                e.state,
                State::Waiting { .. } | State::Ready { .. } | State::Executing { .. }
            );
            if is_task_phase && e.task.is_none() {
                return ctx(format!("{:?} without a task", e.state.phase()));
            }
            match &e.state {
                State::Waiting { missing } => {
                    let t = e.task.as_ref().unwrap();
                    let mut absent = 0;
                    for &d in &t.deps {
                        let Some(de) = self.get(d) else {
                            return ctx(format!("depends on forgotten id {}", d.0));
                        };
                        *pins.entry(d.0).or_default() += 1;
                        if !matches!(de.state, State::Memory) {
                            absent += 1;
                            waits.entry(d.0).or_default().push(id.0);
                        }
                    }
                    if absent != *missing {
                        return ctx(format!("counts {missing} missing, {absent} are absent"));
                    }
                    if *missing == 0 {
                        return ctx("waiting for nothing".into());
                    }
                }
                State::Ready { seq, .. } => {
                    let pulled = e.task.as_ref().unwrap().func.is_pulled();
                    let heap = if pulled { &self.pulled } else { &self.ready };
                    if !heap.iter().any(|r| (r.0).1 == *seq && (r.0).2 == id.0) {
                        return ctx("ready but not in its heap".into());
                    }
                }
                State::Executing { .. } => executing += 1,
                State::Fetching { from, others } => {
                    if from == &self.address || others.contains(&self.address) {
                        return ctx("fetching from itself".into());
                    }
                    if e.task.is_some() {
                        return ctx("fetching a key it computes".into());
                    }
                }
                State::Memory | State::Erred { .. } => {}
            }
        }
        if live != self.names.len() {
            return Err(format!(
                "{} names for {live} live entries",
                self.names.len()
            ));
        }
        for (i, e) in self.entries.iter().enumerate() {
            let Some(e) = e else { continue };
            let i = i as u32;
            let pinned = pins.get(&i).copied().unwrap_or(0);
            if e.dependents != pinned {
                return Err(format!(
                    "key '{}' counts {} dependents, {pinned} waiting tasks pin it",
                    e.name, e.dependents
                ));
            }
            let mut want = waits.remove(&i).unwrap_or_default();
            let mut have: Vec<u32> = e.waiters.iter().map(|w| w.0).collect();
            want.sort_unstable();
            have.sort_unstable();
            if want != have {
                return Err(format!(
                    "key '{}' has waiters {have:?}, waiting tasks {want:?}",
                    e.name
                ));
            }
        }
        if executing != self.executing {
            return Err(format!(
                "{executing} keys executing, counter says {}",
                self.executing
            ));
        }
        self.store.check()?;
        if self.store.len()
            != self
                .names
                .values()
                .filter(|&&id| self.store.contains(id))
                .count()
        {
            return Err("the store holds values of forgotten keys".into());
        }
        if let Some(t) = self.memory_target() {
            if self.store.bytes() > t
                && self.store.can_spill()
                && self.store.spill_stats().write_errors == 0
            {
                return Err(format!(
                    "{} bytes in memory, over the target {t}, with a disk to spill to",
                    self.store.bytes()
                ));
            }
        }
        Ok(())
    }
}

/// Resolves an argument, moving its literals out.
fn resolve(a: KeyArg, lookup: &impl Fn(&str) -> Option<Value>) -> Result<Value, String> {
    Ok(match a {
        KeyArg::Value(v) => v,
        KeyArg::Ref(k) => match lookup(&k) {
            Some(v) => v,
            None => return Err(k),
        },
        KeyArg::List(items) => Value::Array(
            items
                .into_iter()
                .map(|a| resolve(a, lookup))
                .collect::<Result<_, _>>()?,
        ),
        KeyArg::Map(items) => Value::Map(
            items
                .into_iter()
                .map(|(k, a)| Ok((k, resolve(a, lookup)?)))
                .collect::<Result<_, String>>()?,
        ),
    })
}

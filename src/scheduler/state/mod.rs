//! The scheduler's decisions, with no I/O: [`SchedulerState`].
//!
//! Every stimulus (a client submitted a graph, a worker finished a task, a
//! worker left, ...) is a method that takes the state, the stimulus' data
//! and, where time matters, `now` (seconds on any monotonic clock), and
//! appends what must be sent to `out: &mut Vec<Outgoing>`. The tokio server
//! ([`crate::scheduler::server`]) reads frames, calls these methods and
//! writes frames; unit tests call them directly and call
//! [`SchedulerState::validate`] after every step.
//!
//! # Ids inside, names at the edge
//!
//! Keys are interned once, when a task is created: the task table is a dense
//! table ([`Slab`], in chunks, so it never copies itself or leaves half of
//! itself unused) indexed by [`TaskId`], and a hash table of ids maps a
//! key's name to its id, hashing and comparing the name stored in the task
//! (so a lookup touches the table and then the task it needs anyway). The
//! name is a [`Key`]: inline up to 22 bytes, a shared `Arc<str>` beyond, so
//! the messages that need it after the task is gone (`free-keys`,
//! `key-erred`) copy it without allocating. Functions are interned to [`FuncId`],
//! workers and clients are [`WorkerId`] / [`ClientId`] slots. Outgoing
//! messages are recorded as small typed [`Outgoing`] values (`Compute {
//! worker, task }`, ...); the server turns them into wire [`Message`]s with
//! [`SchedulerState::render`] right after the stimulus, so the decisions
//! themselves never format or clone a key.
//!
//! A forgotten task's slot is reused, but only from the next stimulus on, so
//! what one stimulus recorded can always be rendered.
//!
//! # Task states
//!
//! [`TaskState`] is an enum carrying each state's data:
//!
//! ```text
//! from                       to            when
//! released                →  waiting(n)    a client wants it, or a pending task needs it
//! waiting(0)              →  processing    placed on a worker with room (compute-task)
//! waiting(0)              →  queued        every worker that can run it is full
//! waiting(0)              →  no-worker     no connected worker can run its function
//! queued                  →  processing    a worker that can run it got room
//! no-worker               →  waiting(0)    a worker that can run it registered
//! processing              →  memory        task-finished (or its data arrived otherwise)
//! processing              →  waiting(n)    retry, worker left, missing-data, a dependency lost
//! pending                 →  memory        its result came from another worker than the one it was sent to
//! pending (any of the 4)  →  erred         task-erred without retries left, or a dependency erred
//! released                →  erred         needed, but a dependency erred (or it is lost scattered data)
//! pending                 →  released      nothing needs it any more (cancelled)
//! memory                  →  released      nothing needs it (free-keys), or its last holder lost it
//! released, erred         →  forgotten     nothing needs it and no task depends on it
//! ```
//!
//! - `released`: the task is known (its spec kept, for lineage) but nothing
//!   needs it now, and no worker holds its data.
//! - `waiting(n)`: needed; `n` of its dependencies are not in memory yet.
//!   `waiting(0)` exists only inside a stimulus: the task is ready and is
//!   placed when the stimulus ends (in priority order, with all the others
//!   that became ready).
//! - `no-worker`: ready, but no connected worker can run its function.
//! - `queued`: ready, but every worker that could run it already has its
//!   full backlog (see *Backlog*); it waits in a per-function queue.
//! - `processing(worker, cost)`: sent to `worker`; `cost` is the duration
//!   estimate added to the worker's occupancy.
//! - `memory(who_has)`: the result exists on these workers.
//! - `erred(error)`: the task failed, or a task it depends on did; the
//!   error (shared by every task it spread to) names the task that failed.
//! - forgotten: removed from the table.
//!
//! Each transition is one function (`t_*` below, or one of the stimulus
//! handlers for the few that are only reached one way). All of them go
//! through `set_state`, which keeps the state counters and the *waiters*
//! counts (below) and writes the optional [transition log](Transition): a
//! bounded ring of `(key, from, to, stimulus, stimulus id)`, off by default
//! ([`SchedulerOptions::transition_log`]), to answer "why did this task run
//! there".
//!
//! # What keeps a task alive
//!
//! - **wanted**: the number of clients holding it (each client counts once;
//!   see *Reference counting*).
//! - **waiters**: the number of its dependents that are pending (waiting,
//!   no-worker, queued or processing), i.e. that still need its data.
//!
//! A task is *needed* while one of them is non-zero. A task in memory that is
//! not needed has its data deleted (`free-keys` to every holder) and becomes
//! released; a pending task that is not needed (a cancelled computation) is
//! released, and if it was processing the worker gets `free-keys` to drop
//! it. A released or erred task that is not needed and has no dependents
//! left is forgotten; its dependencies then lose a dependent and may be
//! forgotten in turn. A released task with dependents is kept: it is the
//! lineage that recomputes a lost result.
//!
//! # Reference counting
//!
//! The client library counts its own futures and sends `release-keys` when
//! the last future on a key is gone, so the scheduler keeps a *set* per
//! client: wanting a key twice (two `update-graph`s naming it, or a key
//! listed twice) counts once, and one `release-keys` drops it. A client that
//! disconnects releases everything it wanted.
//!
//! # Merging graphs
//!
//! `update-graph` decodes the document (`Graph::from_msgpack`), culls it to
//! the keys the client wants (the message's `keys`; the document's own
//! `outputs` are not used) and merges it: a key the scheduler already
//! knows (from any client) is the same task, whatever the new document says
//! about it, and is not computed again; references may name known keys
//! that the document does not define. Literal keys (`{"value": v}`) that
//! tasks reference are substituted into the arguments and never become
//! tasks (as `docs/protocol.md` describes); a literal key that is itself
//! wanted becomes an `identity` task so that its value lives on a worker
//! like any other. A graph with a missing reference or a cycle (among its
//! new tasks; known tasks cannot depend on new ones) is refused whole.
//!
//! # Keys shared between clients
//!
//! Dask's rule holds: a key names one task (same key, same task). A
//! submission that defines a key the scheduler already knows (from any
//! client) with another function or other arguments does not replace it:
//! the known task and its result are kept, and the submitting client is
//! sent `warning` (code `key-conflict`) naming the keys, so that a second
//! client reusing `key="shared"` for another computation hears that it
//! gets the first one's result. (Refusing the graph instead would break
//! clients that resubmit graphs naming known keys in another form; a
//! literal that became a task, say.) Scattered keys have no definition to
//! compare.
//!
//! A task that depends on an erred task errs at once; a task that is
//! resubmitted while erred stays erred (the client learns it at once) until
//! every client releases it.
//!
//! # Priorities
//!
//! `priority = (generation << 32) | order`, lower first: `generation`
//! counts `update-graph`s up from 2^31, `order` is the task's rank in the
//! graph ordering of that submission (`graph::order::priorities` over its
//! new tasks: critical path first, one branch finished before the next).
//! Earlier submissions therefore go first, and within one submission the
//! ordering holds. An `update-graph` marked `from_task` (sent by the
//! client of a running task) counts *down* from 2^31 instead: work a task
//! submits runs before everything submitted earlier, newest first. A task
//! that waits on its children therefore sees them run next, and recursive
//! submission (fib) goes depth first, keeping the number of tasks that
//! wait on children (each holding a thread on its worker) near the depth
//! of the recursion rather than its width. The priority is sent in `compute-task`, so workers run their
//! backlog in the same order.
//!
//! # Placement
//!
//! A task goes only to a worker whose registered `functions` include its
//! function. Among those that have room in their backlog:
//!
//! the one where the task would start first. A worker's *occupancy* is the
//! sum, over the tasks processing there, of their function's duration
//! estimate when they were sent, in nanoseconds; the task's start there is
//! estimated as its occupancy divided by its threads plus the transfer of
//! the input bytes it does not hold, at 10 ns per byte (100 MB/s,
//! dask.distributed's default bandwidth estimate). The candidates are the
//! holders of its dependencies and the least occupied worker; ties go to
//! the one holding more of the input bytes, then to the lower worker id.
//! So large inputs draw their dependents to where they are, while a small
//! input that many tasks share (a shipped function's code, a constant)
//! does not pile all of them onto the worker that holds it.
//!
//! A function's duration estimate is an exponentially weighted average of
//! the `duration`s reported in `task-finished`: the first observation sets
//! it, then `est += alpha * (d - est)` with `alpha` =
//! [`SchedulerOptions::duration_alpha`] (0.25). A function never seen uses
//! [`SchedulerOptions::default_duration`] (0.5 ms).
//!
//! Workers with the same set of functions form a *class*; each class keeps
//! its workers that have room in a `BTreeSet` ordered by occupancy, so
//! finding the least occupied capable worker costs O(log workers) per
//! class, not a scan of every worker.
//!
//! A ready task that no connected worker can run waits in `no-worker`, and
//! is placed when a worker that can run it registers. The clients wanting
//! it (or a task that depends on it) are sent `warning` (code `no-worker`)
//! when it gets there, so a misspelt function is not a silent wait; with
//! [`SchedulerOptions::no_workers_timeout`] such tasks err once their
//! function has had no worker for that long ([`SchedulerState::tick`]).
//!
//! # Backlog
//!
//! A worker is sent at most `threads + backlog_per_thread × threads +
//! backlog_extra` tasks (defaults 1 and 2: a 2-thread worker holds at most 6).
//! `threads` keep its threads busy, and the backlog covers the round trip
//! (`task-finished` to the scheduler, `compute-task` back) so a worker never
//! idles waiting for its next task. Everything else that is ready stays
//! `queued` in the scheduler, by priority, and is sent as slots free up:
//! a worker that finishes a task is refilled from the queues of the
//! functions it can run, best priority first. So a worker that joins late
//! gets work at once, and a high-priority submission overtakes a queued
//! low-priority one, which would not be possible had everything been sent
//! to workers up front.
//!
//! Short tasks need a deeper backlog: a round trip (two thread wakeups
//! at least, tens of microseconds each, more on a loaded machine) would
//! otherwise carry only a handful of microsecond tasks, and the workers
//! would idle waiting for work. So past `limit`, a worker also has room
//! while the estimated work it holds (its occupancy) is under 1 ms per
//! thread, up to 128 tasks per thread. A function never seen (estimated
//! 0.5 ms) fills `limit` first, as before; no-op tasks fill up to 128.
//!
//! Invariant (checked by `validate`): a queued task's function has no
//! connected worker with room.
//!
//! # Seceded tasks
//!
//! A task that waits on tasks it submitted (`secede()` in the bindings,
//! `worker_client()` in Python) gives its slot back: its worker sends
//! `long-running`, and the scheduler stops counting it against the
//! worker's room (it sets the task's `SECEDED` flag, takes its cost off
//! the worker's occupancy and counts it in `Worker::seceded`); the worker
//! can be sent another task at once. It stays processing there until it
//! finishes, errs or is taken back, like any task, and its duration does
//! not feed its function's estimate (it was mostly waiting). `validate`
//! checks that `seceded` counts exactly the flagged processing tasks, that
//! only processing tasks carry the flag and that their cost is 0.
//!
//! # Data structures and costs
//!
//! - Task table: [`Slab`] of [`Task`]s, 128 bytes each, two cache lines.
//!   Dependencies are a boxed slice, dependents an [`IdSet`] (a vector, a
//!   hash set past 32). The arguments are kept encoded, as they are sent.
//! - Per worker: `processing` is a small vector (at most its backlog
//!   limit); `has_what` a list with lazy deletion (an entry is live while
//!   the key is in memory there; the list is compacted when more than half
//!   stale), so neither costs a hash operation per task.
//! - Per function: a [`FuncQueue`] of queued tasks (heap + sorted bulk run,
//!   lazy deletion) and a no-worker list.
//! - `benches/scheduler_core.rs` measures, with 1,000 simulated workers
//!   that finish everything at once, about 1.3–2 million tasks a second per
//!   core for a 1M-task graph (over 2 million for 100k tasks, where the
//!   table fits in cache), and about 160–190 bytes of scheduler memory per
//!   waiting task.
//!
//! # Failures
//!
//! - `task-erred`: the task is re-run on the next placement while it has
//!   retries left (`update-graph`'s `retries`); then it errs, and every
//!   pending task that depends on it (transitively) errs with the same
//!   error. Every client wanting one of them gets `key-erred` naming the key
//!   that failed, its function, the worker and the message.
//! - A worker that leaves (connection closed, or silent for the heartbeat
//!   timeout): its processing tasks go back to waiting and are placed
//!   elsewhere; keys only it held are *lost*: their waiting dependents wait
//!   for them again, dependents already sent elsewhere are taken back
//!   (`free-keys`) and wait, and a lost key that is still needed is
//!   recomputed from its task (its released dependencies are recomputed in
//!   turn). Scattered data cannot be recomputed: when lost while needed it
//!   errs ("data lost").
//! - Each task counts the workers that died while it was processing on
//!   them; when that reaches [`SchedulerOptions::allowed_failures`] (3) it
//!   errs ("the task was running on 3 workers that died ...") with its
//!   dependents, instead of being placed again: a task that crashes its
//!   worker does not take the whole cluster down one worker at a time.
//! - `missing-data` (a worker running `key` could not get `dependency` from
//!   the worker at `worker`): that holder is dropped from the dependency's
//!   `who_has` (and the key is lost if it was the last one), and `key` is
//!   taken back from the reporting worker (`free-keys`) and placed again
//!   once its dependencies are in memory, with a fresh `who_has`. The
//!   `who_has` of `compute-task` leaves out dependencies the receiving
//!   worker holds itself; if it does not, it names itself as `worker`, and
//!   the same rule applies.
//! - `missing-data` counts, so that a holder nobody can reach cannot make
//!   the scheduler recompute a key without end: a worker named as the
//!   holder (while the scheduler believed it held the key, by another
//!   worker) in [`SchedulerOptions::missing_data_per_worker`] (3) reports
//!   within [`SchedulerOptions::missing_data_window`] (60 s) is removed as
//!   unreachable (like a worker that left, without counting as a death;
//!   sent `close` with the reason), and a task reported
//!   [`SchedulerOptions::missing_data_per_key`] (5) times errs, its error
//!   naming the last dependency and holder. Each report is logged. Only
//!   reports that say the holder could not be reached count against it
//!   ([`MissingReason`]): `not-held` ones never do, and the `unreachable`
//!   reports of one failed connection attempt (same reporter, same
//!   `attempt`) count once, however many keys it was fetching — one broken
//!   connection under churn must not remove a live worker. Reports without
//!   a reason (older workers) each count.
//! - A `task-finished` for a task that is not processing there (released,
//!   cancelled, forgotten, already erred) is answered with `free-keys`;
//!   a result for a needed task that was processing elsewhere (or waiting)
//!   is accepted, and the other worker is told to drop it.
//! - A key in memory may be announced again (a recomputed lost key): clients
//!   must accept repeated `key-in-memory`.
//!
//! # Retirement
//!
//! A worker retires (it sent `retire-worker`, or a client's
//! `retire-workers` named it: it is sent `retire`) without costing a
//! recomputation (`retire.rs`):
//!
//! - It has no room from then on (`Worker::retiring`), so placement and
//!   the queues pass it by. It hands back the tasks it had not started
//!   (`reschedule`: processing → waiting); running ones finish normally.
//! - Each key in memory on it that is needed and held by no worker that
//!   stays is copied: the live, non-retiring worker with the fewest bytes
//!   (held plus copies on their way) gets `acquire-replicas`, and the copy
//!   is a [`Flight`] until that worker's `add-keys` confirms it (the key
//!   then counts as moved). `acquire-failed`, or the target leaving, asks
//!   the next worker; when every worker was tried the key is given up.
//!   Keys are looked at when the retirement starts, when one lands on the
//!   worker (a task finished there), when a worker joins, and once more
//!   before it closes.
//! - With no other worker the keys wait for one to join, up to
//!   [`SchedulerOptions::retire_timeout`] (checked by [`SchedulerState::tick`]).
//! - When it runs nothing and no copy from it is in flight, the worker is
//!   removed (`detach_worker`: keys given up are lost as after a death and
//!   recomputed if needed) and sent `close`; the server learns it from
//!   [`SchedulerState::take_retired`]. A `retire-workers` is answered
//!   once all its workers have left, with what moved where and what did
//!   not.

mod collections;
mod coord;
mod copies;
mod ingest;
mod key;
mod render;
mod retire;
mod sample;
mod stimuli;
mod validate;

#[cfg(test)]
mod cluster_sim;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;

pub use collections::{BitSet, FuncQueue, Holders, IdSet, Slab};
pub use coord::coord_codes;
pub use key::Key;
pub use render::Dest;
pub use sample::TaskView;

use crate::protocol::{ClientMessage, Message, WorkerMessage};
use hashbrown::HashTable;
use rustc_hash::FxHashMap;
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

/// A task: an index into the task table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId(pub u32);
/// A connected worker: an index into the worker table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkerId(pub u32);
/// A connected client: an index into the client table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(pub u32);
/// An interned function name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FuncId(pub u32);

/// The "function" of a key that only ever existed as data (`scattered`):
/// it cannot be computed.
pub const NO_FUNC: FuncId = FuncId(u32::MAX);

/// Tunables of the core. The defaults are what the server uses.
#[derive(Clone, Debug)]
pub struct SchedulerOptions {
    /// Extra tasks per thread a worker may hold beyond its threads.
    pub backlog_per_thread: u32,
    /// Extra tasks per worker beyond that.
    pub backlog_extra: u32,
    /// Duration estimate for a function never seen, in seconds.
    pub default_duration: f64,
    /// Weight of a new observation in a function's duration estimate.
    pub duration_alpha: f64,
    /// Entries kept in the transition log; 0 disables it.
    pub transition_log: usize,
    /// Largest inline `value` (bytes) kept to forward to clients.
    pub max_inline_value: usize,
    /// A task that was processing on this many workers that died errs
    /// instead of being placed again (a task that kills its worker would
    /// otherwise kill the whole cluster, one worker at a time); 0 never
    /// gives up. At most 255.
    pub allowed_failures: u32,
    /// A test hook, off by default: the core panics when a client's
    /// `update-graph` wants this key, so that tests can see what a bug in
    /// the core does to the process (`rask-scheduler` sets it from the
    /// environment variable `RASK_SCHEDULER_TEST_PANIC_ON_KEY`).
    #[doc(hidden)]
    pub panic_on_key: Option<String>,
    /// A test hook, off by default: when a client's `update-graph` wants
    /// this key, the core miscounts its live tasks (a broken invariant),
    /// so that tests can see `RASK_VALIDATE` catch it in a real process
    /// (`rask-scheduler` sets it from the environment variable
    /// `RASK_SCHEDULER_TEST_BREAK_ON_KEY`).
    #[doc(hidden)]
    pub break_on_key: Option<String>,
    /// A retiring worker whose results have nowhere to go (no other
    /// worker) waits this many seconds for one to join, then leaves
    /// anyway (see "Retirement" in the module docs).
    pub retire_timeout: f64,
    /// A worker named as the holder in this many `missing-data` reports
    /// (each while the scheduler believed it held the key, from another
    /// worker) within [`Self::missing_data_window`] is removed as
    /// unreachable: its data port cannot be reached (see "Failures" in the
    /// module docs). 0 never removes one.
    pub missing_data_per_worker: u32,
    /// Seconds over which `missing-data` reports against one worker count.
    pub missing_data_window: f64,
    /// A task whose worker reported `missing-data` for it this many times
    /// (its inputs could not be fetched) errs with a message saying so,
    /// instead of being placed again. 0 never gives up.
    pub missing_data_per_key: u32,
    /// Tasks whose function no connected worker offers err once that has
    /// lasted this many seconds (with tasks waiting for it); `None` (the
    /// default) waits for such a worker for ever. Checked by
    /// [`SchedulerState::tick`]. Clients are warned at once either way.
    pub no_workers_timeout: Option<f64>,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        SchedulerOptions {
            backlog_per_thread: 1,
            backlog_extra: 2,
            default_duration: 0.0005,
            duration_alpha: 0.25,
            transition_log: 0,
            max_inline_value: 1024,
            allowed_failures: 3,
            panic_on_key: None,
            break_on_key: None,
            retire_timeout: 30.0,
            missing_data_per_worker: 3,
            missing_data_window: 60.0,
            missing_data_per_key: 5,
            no_workers_timeout: None,
        }
    }
}

/// Why a task erred: shared by the task that failed and every task the
/// failure spread to.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskError {
    /// The key of the task that failed.
    pub failed: Key,
    pub func: String,
    /// The data address of the worker it failed on (empty if none).
    pub worker: String,
    pub message: String,
    /// The exception's type name, when the worker reported one (else empty).
    pub exception: String,
    /// The traceback the worker reported (else empty).
    pub traceback: String,
}

impl TaskError {
    /// A failure with no exception or traceback (the scheduler's own
    /// reasons, or a worker that reported only a message).
    pub fn new(failed: Key, func: String, worker: String, message: String) -> TaskError {
        TaskError {
            failed,
            func,
            worker,
            message,
            exception: String::new(),
            traceback: String::new(),
        }
    }

    /// The same, with the exception's type name and the traceback a worker
    /// reported (each may be empty).
    pub fn raised(mut self, exception: &str, traceback: &str) -> TaskError {
        self.exception = exception.to_string();
        self.traceback = traceback.to_string();
        self
    }
}

/// A task's state and the data that goes with it.
#[derive(Debug, Clone)]
pub enum TaskState {
    Released,
    Waiting { waiting_on: u32 },
    NoWorker,
    Queued,
    Processing { worker: WorkerId, cost: f32 },
    Memory { who_has: Holders },
    Erred(Arc<TaskError>),
}

/// A [`TaskState`] without its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StateKind {
    Released = 0,
    Waiting = 1,
    NoWorker = 2,
    Queued = 3,
    Processing = 4,
    Memory = 5,
    Erred = 6,
    /// Only in the transition log: the task left the table.
    Forgotten = 7,
}

impl StateKind {
    pub const ALL: [StateKind; 7] = [
        StateKind::Released,
        StateKind::Waiting,
        StateKind::NoWorker,
        StateKind::Queued,
        StateKind::Processing,
        StateKind::Memory,
        StateKind::Erred,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StateKind::Released => "released",
            StateKind::Waiting => "waiting",
            StateKind::NoWorker => "no-worker",
            StateKind::Queued => "queued",
            StateKind::Processing => "processing",
            StateKind::Memory => "memory",
            StateKind::Erred => "erred",
            StateKind::Forgotten => "forgotten",
        }
    }
}

impl TaskState {
    pub fn kind(&self) -> StateKind {
        match self {
            TaskState::Released => StateKind::Released,
            TaskState::Waiting { .. } => StateKind::Waiting,
            TaskState::NoWorker => StateKind::NoWorker,
            TaskState::Queued => StateKind::Queued,
            TaskState::Processing { .. } => StateKind::Processing,
            TaskState::Memory { .. } => StateKind::Memory,
            TaskState::Erred(_) => StateKind::Erred,
        }
    }

    /// Waiting, no-worker, queued or processing: the task will run and
    /// needs its dependencies.
    #[inline]
    pub fn is_pending(&self) -> bool {
        matches!(
            self,
            TaskState::Waiting { .. }
                | TaskState::NoWorker
                | TaskState::Queued
                | TaskState::Processing { .. }
        )
    }
}

/// Why a worker reported `missing-data` (its `reason` and `attempt`
/// fields), which decides whether the report counts against the holder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MissingReason {
    /// No reason given (a worker older than the field) or one this
    /// scheduler does not know: the report counts.
    Unknown,
    /// The holder's data port could not be reached (no connection, a
    /// broken one). With an attempt number, the reports of one failed
    /// attempt by one reporter count once; without, each counts.
    Unreachable(Option<u64>),
    /// The holder answered without the key: does not count against it.
    NotHeld,
}

impl MissingReason {
    /// From `missing-data`'s `reason` and `attempt` fields.
    pub fn parse(reason: &str, attempt: Option<u64>) -> MissingReason {
        use crate::protocol::messages::{MISSING_NOT_HELD, MISSING_UNREACHABLE};
        match reason {
            MISSING_UNREACHABLE => MissingReason::Unreachable(attempt),
            MISSING_NOT_HELD => MissingReason::NotHeld,
            _ => MissingReason::Unknown,
        }
    }
}

/// What caused a transition (for the log).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stimulus {
    UpdateGraph,
    ReleaseKeys,
    CancelKeys,
    Scattered,
    ClientLeft,
    WorkerJoined,
    WorkerLeft,
    TaskFinished,
    TaskErred,
    AddKeys,
    MissingData,
    /// A worker paused or resumed (its heartbeat said so).
    Memory,
    /// Retirement: a worker or a client asked, a worker handed tasks back,
    /// a replica fetch failed, the retire timeout passed.
    Retire,
    /// A client's `replicate` or `rebalance`.
    Copies,
    /// No worker offered a task's function for
    /// [`SchedulerOptions::no_workers_timeout`].
    NoWorkersTimeout,
    /// A coordination request (queue, variable, lease, ...), or one of its
    /// waits timing out.
    Coordination,
    /// A running task seceded (`long-running`).
    LongRunning,
}

/// One entry of the transition log.
#[derive(Clone, Debug)]
pub struct Transition {
    pub key: Key,
    pub from: StateKind,
    pub to: StateKind,
    pub stimulus: Stimulus,
    /// Counts stimuli since the state was created: transitions with the
    /// same id were caused by the same event.
    pub stimulus_id: u64,
}

/// `Task::flags`: the task has an entry in its function's queue.
const IN_QUEUE: u8 = 1;
/// `Task::flags`: the task has an entry in its function's no-worker list.
const IN_NO_WORKER: u8 = 2;
/// `Task::flags`: the task is processing and seceded (`long-running`): it
/// does not count against its worker's room, and its cost is 0.
pub(crate) const SECEDED: u8 = 4;

/// The high half of a priority: ordinary submissions count up from here,
/// submissions from inside tasks count down from it (so they come first,
/// newest first). See "Priorities" in the module docs.
pub(crate) const GENERATION_BASE: u64 = 1 << 31;

/// One task (or scattered key). Kept small: the scheduler holds one per key
/// it knows (see the bytes-per-task benchmark, `benches/scheduler_core.rs`).
///
/// Exactly two cache lines, aligned: the first holds what finding a task by
/// name, checking its state and popping it from a queue touch; the second
/// what finishing it touches (its edges) and what is rarely read.
#[derive(Debug)]
#[repr(C, align(64))]
pub struct Task {
    // ---- line 1
    pub(crate) name: Key,
    pub(crate) state: TaskState,
    pub(crate) priority: u64,
    pub(crate) func: FuncId,
    pub(crate) waiters: u32,
    pub(crate) wanted: u32,
    pub(crate) retries: u16,
    pub(crate) flags: u8,
    /// Workers that died while this task was processing on them.
    pub(crate) suspicious: u8,
    // ---- line 2
    pub(crate) deps: Box<[TaskId]>,
    pub(crate) dependents: IdSet,
    /// The arguments as msgpack, exactly as sent in `compute-task`.
    pub(crate) args: Box<[u8]>,
    /// Size of the result, when it has been in memory.
    pub(crate) nbytes: u64,
}

const _: () = assert!(std::mem::size_of::<Task>() == 128);
const _: () = assert!(std::mem::size_of::<Option<Task>>() == 128);

impl Task {
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn state(&self) -> &TaskState {
        &self.state
    }
    pub fn priority(&self) -> u64 {
        self.priority
    }
    pub fn deps(&self) -> &[TaskId] {
        &self.deps
    }
    fn needed(&self) -> bool {
        self.wanted > 0 || self.waiters > 0
    }
}

/// A worker's memory, as its heartbeats report it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerMemory {
    /// Bytes of data held in memory.
    pub managed: u64,
    /// Bytes of data spilled to disk.
    pub spilled: u64,
    /// The process's resident memory.
    pub process: u64,
    /// Paused by memory use: it is sent no task.
    pub paused: bool,
}

/// What a worker announced in `register-worker`.
#[derive(Clone, Debug)]
pub struct WorkerRegistration {
    /// The id given in `welcome` (`scattered` names workers by it).
    pub ext_id: u64,
    pub name: String,
    /// Its data address, `tcp://host:port`.
    pub address: String,
    pub threads: u32,
    pub functions: Vec<String>,
    pub memory_limit: u64,
    /// Its language or runtime (`rust`, `c`, `python-3.11`; "" if unsaid).
    pub runtime: String,
}

#[derive(Debug)]
pub struct Worker {
    pub(crate) ext_id: u64,
    pub(crate) name: String,
    pub(crate) address: Arc<str>,
    pub(crate) threads: u32,
    pub(crate) memory_limit: u64,
    pub(crate) funcs: Box<[FuncId]>,
    pub(crate) class: u32,
    /// Most tasks it may hold (threads + backlog).
    pub(crate) limit: u32,
    /// At most `limit` tasks (plus the seceded ones): a small vector beats
    /// a hash set here.
    pub(crate) processing: Vec<TaskId>,
    /// How many of `processing` seceded (`long-running`): they hold no
    /// slot.
    pub(crate) seceded: u32,
    /// Sum of the costs of `processing`, in nanoseconds.
    pub(crate) occupancy_ns: u64,
    /// The keys it holds, and possibly stale entries: a key that left
    /// keeps its entry until the list is compacted (when it is over twice
    /// `n_keys`), so adding and dropping a holder cost no hashing. A live
    /// entry is one whose task is in memory with this worker as a holder.
    pub(crate) has_what: Vec<TaskId>,
    /// Number of keys it holds.
    pub(crate) n_keys: u32,
    /// Sum of `nbytes` of the keys it holds.
    pub(crate) nbytes: u64,
    pub(crate) last_seen: f64,
    /// From the last heartbeat.
    pub(crate) executing: u32,
    /// Bytes of data in its memory, spilled to its disk, and its process's
    /// resident memory, from the last heartbeat.
    pub(crate) memory: u64,
    pub(crate) spilled: u64,
    pub(crate) process: u64,
    /// Its process's CPU use (percent of one CPU) at its last heartbeat.
    pub(crate) cpu: Option<f64>,
    /// Its language or runtime, as registered.
    pub(crate) runtime: Box<str>,
    /// Paused by its memory use (from its heartbeats): it gets no task.
    pub(crate) paused: bool,
    /// Retiring: it gets no new task (it has no room) and leaves once
    /// what only it holds has been copied elsewhere.
    pub(crate) retiring: bool,
    /// Bytes of replicas it has been asked to fetch and has not confirmed.
    pub(crate) incoming: u64,
    /// `missing-data` reports naming it as the holder, since
    /// `missed_since` (see [`SchedulerOptions::missing_data_per_worker`]).
    pub(crate) missed: u32,
    pub(crate) missed_since: f64,
    /// The (reporter, attempt) pairs of `unreachable` reports counted in
    /// `missed` (the other reports of one failed attempt do not count).
    pub(crate) missed_attempts: Vec<(WorkerId, u64)>,
    /// `Some(k)` iff the worker is in its class's free index under `(k, id)`.
    index_key: Option<u64>,
    dirty: bool,
    to_fill: bool,
}

impl Worker {
    pub fn address(&self) -> &str {
        &self.address
    }
    /// Its language or runtime, as registered ("" if it did not say).
    pub fn runtime(&self) -> &str {
        &self.runtime
    }
    /// Its process's CPU use at its last heartbeat, percent of one CPU.
    pub fn cpu(&self) -> Option<f64> {
        self.cpu
    }
    pub fn ext_id(&self) -> u64 {
        self.ext_id
    }
    pub fn processing_count(&self) -> usize {
        self.processing.len()
    }
    /// How many of its processing tasks seceded (`long-running`).
    pub fn seceded_count(&self) -> u32 {
        self.seceded
    }
    pub fn limit(&self) -> u32 {
        self.limit
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn threads(&self) -> u32 {
        self.threads
    }
    pub fn memory_limit(&self) -> u64 {
        self.memory_limit
    }
    /// Bytes of data it holds (as reported in `task-finished`/`add-keys`).
    pub fn nbytes(&self) -> u64 {
        self.nbytes
    }
    /// Number of keys it holds.
    pub fn keys_held(&self) -> u32 {
        self.n_keys
    }
    pub fn occupancy(&self) -> f64 {
        self.occupancy_ns as f64 * 1e-9
    }
    /// Whether it is retiring (see "Retirement" in the module docs).
    pub fn is_retiring(&self) -> bool {
        self.retiring
    }
    /// Its memory as its last heartbeat reported it.
    pub fn memory(&self) -> WorkerMemory {
        WorkerMemory {
            managed: self.memory,
            spilled: self.spilled,
            process: self.process,
            paused: self.paused,
        }
    }
    fn has_room(&self) -> bool {
        if self.retiring || self.paused {
            return false;
        }
        let n = self.processing.len() as u32 - self.seceded;
        n < self.limit
            || (n < self.max_tasks() && self.occupancy_ns < self.threads as u64 * SHORT_BACKLOG_NS)
    }
    /// Most tasks it may ever hold: `limit`, or more while they are short
    /// (see "Backlog" in the module docs).
    pub(crate) fn max_tasks(&self) -> u32 {
        self.limit
            .max(self.threads.saturating_mul(SHORT_BACKLOG_PER_THREAD))
    }
}

#[derive(Debug)]
pub struct Client {
    pub(crate) ext_id: u64,
    pub(crate) name: String,
    pub(crate) wants: rustc_hash::FxHashSet<TaskId>,
    /// Whether its graphs may hold shipped functions (`code:<runtime>`):
    /// its connection is on loopback, or passed the token or TLS.
    pub(crate) may_ship: bool,
}

impl Client {
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn ext_id(&self) -> u64 {
        self.ext_id
    }
    /// Number of keys it wants.
    pub fn wanted(&self) -> usize {
        self.wants.len()
    }
}

/// Workers with the same function set.
#[derive(Debug)]
struct Class {
    funcs: BitSet,
    members: u32,
    /// Members with room, by (occupancy, id).
    free: BTreeSet<(u64, WorkerId)>,
}

#[derive(Debug)]
struct Func {
    name: Box<str>,
    /// Duration estimate, seconds.
    est: f64,
    observed: bool,
    /// Registered workers that can run it.
    capable: u32,
    queue: FuncQueue,
    /// In `SchedulerState::queued_funcs`.
    listed: bool,
    no_worker: Vec<TaskId>,
    /// Since when tasks have waited in `no-worker` for it (the clock of the
    /// first one); cleared when a worker that offers it registers.
    stuck_since: Option<f64>,
}

/// A message to send, recorded by a stimulus; [`SchedulerState::render`]
/// turns it into a wire message.
#[derive(Debug)]
pub enum Outgoing {
    /// `compute-task` for `task` (processing on `worker`).
    Compute {
        worker: WorkerId,
        task: TaskId,
    },
    /// `free-keys`; consecutive frees to one worker share one message.
    FreeKeys {
        worker: WorkerId,
        keys: Vec<Key>,
    },
    /// `key-in-memory` for `task`.
    KeyInMemory {
        client: ClientId,
        task: TaskId,
    },
    KeyErred {
        client: ClientId,
        key: Key,
        error: Arc<TaskError>,
    },
    KeyCancelled {
        client: ClientId,
        key: Key,
    },
    /// Any other message (replies, errors).
    Message(Dest, Message),
}

/// A worker being retired (see "Retirement" in the module docs).
#[derive(Debug)]
pub(crate) struct Retirement {
    pub(crate) worker: WorkerId,
    /// Keys to look at: they may need to be copied off it.
    todo: Vec<TaskId>,
    /// Keys that need a new home but no worker could take them (none
    /// other exists); retried when a worker joins.
    homeless: Vec<TaskId>,
    /// When `homeless` became non-empty (the retire timeout runs from
    /// there).
    stuck_since: Option<f64>,
    /// Keys whose copy failed on every worker tried: not moved.
    given_up: Vec<(TaskId, Key)>,
    /// Keys moved: (key, the data address of its new holder).
    moved: Vec<(Key, Arc<str>)>,
}

/// A replica being fetched for a retiring worker's key.
#[derive(Debug, Clone)]
pub(crate) struct Flight {
    pub(crate) source: WorkerId,
    pub(crate) target: WorkerId,
    /// Every worker asked so far (the target included).
    pub(crate) tried: Vec<WorkerId>,
    /// Why the copy is made.
    pub(crate) purpose: Purpose,
}

/// Why a replica is copied between workers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// Off a retiring worker (its source); a failed copy is tried at
    /// another worker.
    Retire,
    /// A client's `replicate`; a failed copy is planned again by the request.
    Replicate,
    /// A client's `rebalance`: once the copy arrived, the source drops its own.
    Rebalance,
}

/// A client's `retire-workers` waiting for its workers to leave.
#[derive(Debug)]
pub(crate) struct RetireRequest {
    client: ClientId,
    id: u64,
    pending: Vec<WorkerId>,
    workers: Vec<String>,
    moved: std::collections::BTreeMap<String, String>,
    lost: Vec<String>,
}

/// Counts for monitoring.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateCounts {
    pub tasks: usize,
    pub released: usize,
    pub waiting: usize,
    pub no_worker: usize,
    pub queued: usize,
    pub processing: usize,
    pub memory: usize,
    pub erred: usize,
    pub workers: usize,
    pub clients: usize,
}

/// The scheduler's whole state. See the module docs.
pub struct SchedulerState {
    opts: SchedulerOptions,
    tasks: Slab<Task>,
    /// Key name → task. The table holds only ids; names live in the
    /// tasks (hashed and compared there).
    names: HashTable<TaskId>,
    /// Slots free for reuse now.
    free_ids: Vec<TaskId>,
    /// Slots freed during this stimulus (reused from the next one).
    freed_ids: Vec<TaskId>,
    counts: [usize; 7],
    live: usize,

    workers: Vec<Option<Worker>>,
    free_workers: Vec<WorkerId>,
    worker_by_ext: FxHashMap<u64, WorkerId>,
    worker_by_addr: FxHashMap<Arc<str>, WorkerId>,
    n_workers: usize,
    classes: Vec<Class>,

    clients: Vec<Option<Client>>,
    free_clients: Vec<ClientId>,
    client_by_ext: FxHashMap<u64, ClientId>,
    n_clients: usize,

    funcs: Vec<Func>,
    func_ids: FxHashMap<Box<str>, FuncId>,
    /// Functions whose queue may be non-empty.
    queued_funcs: Vec<FuncId>,

    /// Small results of wanted keys, forwarded in `key-in-memory`.
    values: FxHashMap<TaskId, Box<[u8]>>,

    generation: u64,
    /// Submissions from inside tasks so far (see [`Self::next_generation`]).
    task_generation: u64,

    // Per-stimulus work lists.
    stimulus: Stimulus,
    stimulus_id: u64,
    /// Tasks that became ready (waiting(0)); placed at the end.
    ready: Vec<TaskId>,
    /// Tasks whose `needed` may have dropped to false, or that may be
    /// forgettable.
    check: Vec<TaskId>,
    /// Workers whose processing set changed (free index to update).
    dirty: Vec<WorkerId>,
    /// Workers that got room (to refill from the queues).
    to_fill: Vec<WorkerId>,
    scratch: Vec<TaskId>,
    /// decide_worker: (holder, bytes of the task's inputs it holds).
    held: Vec<(WorkerId, u64)>,

    log: VecDeque<Transition>,
    /// See [`SchedulerState::shrunk`].
    shrunk: u64,

    /// Workers being retired.
    retiring: Vec<Retirement>,
    /// Replica fetches in progress, by key.
    replicas: FxHashMap<TaskId, Flight>,
    /// `retire-workers` requests not answered yet.
    retire_requests: Vec<RetireRequest>,
    /// `replicate` and `rebalance` requests not answered yet.
    copy_requests: Vec<copies::CopyRequest>,
    /// Workers that finished retiring and were removed; the server stops
    /// routing their connections ([`SchedulerState::take_retired`]).
    retired: Vec<WorkerId>,
    /// The latest `now` any stimulus passed (for the retire timeout).
    clock: f64,
    /// `missing-data` reports per task (its inputs could not be fetched);
    /// rare, so kept beside the table. Entries leave with their task.
    missed: FxHashMap<TaskId, u32>,
    /// Tasks that went to `no-worker` during this stimulus: their clients
    /// are warned when it ends.
    fresh_no_worker: Vec<TaskId>,
    /// Queues, variables, leases, events, datasets, topics.
    coord: coord::Coord,
}

/// Hints the CPU to start loading `*p` into the cache.
#[inline(always)]
fn prefetch<T>(p: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint; it never faults and `p` is valid.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>((p as *const T).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// The hash of a key name in the name table.
#[inline]
fn hash_key(s: &str) -> u64 {
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one(s)
}

/// Estimated work (ns per thread) a worker may hold beyond `limit` tasks
/// when its tasks are short (see "Backlog" in the module docs).
const SHORT_BACKLOG_NS: u64 = 1_000_000;
/// Slots of the task table from which an emptied table is given back
/// (fewer in unit tests, which validate the whole state at every step).
const SHRINK_SLOTS: usize = if cfg!(test) { 1 << 10 } else { 1 << 16 };
/// Most tasks per thread a worker holds however short they are.
const SHORT_BACKLOG_PER_THREAD: u32 = 128;

/// Transfer time assumed per input byte a worker lacks, in ns (100 MB/s,
/// dask.distributed's default bandwidth estimate; see "Placement").
const TRANSFER_NS_PER_BYTE: u64 = 10;

/// When a task sent to `w` would start: the work queued there per thread,
/// plus fetching the `missing` input bytes (see "Placement").
fn start_cost_ns(w: &Worker, missing: u64) -> u64 {
    (w.occupancy_ns / u64::from(w.threads.max(1)))
        .saturating_add(missing.saturating_mul(TRANSFER_NS_PER_BYTE))
}

fn cost_ns(cost: f32) -> u64 {
    (cost as f64 * 1e9).max(0.0) as u64
}

impl Default for SchedulerState {
    fn default() -> Self {
        SchedulerState::new(SchedulerOptions::default())
    }
}

impl SchedulerState {
    pub fn new(opts: SchedulerOptions) -> SchedulerState {
        SchedulerState {
            log: VecDeque::with_capacity(opts.transition_log.min(1 << 16)),
            opts,
            tasks: Slab::default(),
            names: HashTable::new(),
            free_ids: Vec::new(),
            freed_ids: Vec::new(),
            counts: [0; 7],
            live: 0,
            workers: Vec::new(),
            free_workers: Vec::new(),
            worker_by_ext: FxHashMap::default(),
            worker_by_addr: FxHashMap::default(),
            n_workers: 0,
            classes: Vec::new(),
            clients: Vec::new(),
            free_clients: Vec::new(),
            client_by_ext: FxHashMap::default(),
            n_clients: 0,
            funcs: Vec::new(),
            func_ids: FxHashMap::default(),
            queued_funcs: Vec::new(),
            values: FxHashMap::default(),
            generation: 0,
            task_generation: 0,
            stimulus: Stimulus::UpdateGraph,
            stimulus_id: 0,
            ready: Vec::new(),
            check: Vec::new(),
            dirty: Vec::new(),
            to_fill: Vec::new(),
            scratch: Vec::new(),
            held: Vec::new(),
            shrunk: 0,
            retiring: Vec::new(),
            replicas: FxHashMap::default(),
            retire_requests: Vec::new(),
            copy_requests: Vec::new(),
            retired: Vec::new(),
            coord: Default::default(),
            clock: 0.0,
            missed: FxHashMap::default(),
            fresh_no_worker: Vec::new(),
        }
    }

    pub fn options(&self) -> &SchedulerOptions {
        &self.opts
    }

    // ------------------------------------------------------------ lookups

    /// The id of a live key.
    pub fn task_id(&self, key: &str) -> Option<TaskId> {
        let tasks = &self.tasks;
        self.names
            .find(hash_key(key), |&t| {
                tasks[t.0 as usize]
                    .as_ref()
                    .is_some_and(|x| x.name.as_str() == key)
            })
            .copied()
    }

    /// Warms the caches for a batch of keys about to be handled (say, the
    /// `task-finished` of one wire message): looks each up and starts
    /// loading its task. The lookups are independent, so the CPU overlaps
    /// their cache misses, which handling the keys one by one cannot do.
    /// Purely an optimization; it changes nothing.
    pub fn warm<'a>(&self, keys: impl IntoIterator<Item = &'a str>) {
        for k in keys {
            if let Some(t) = self.task_id(k) {
                let task = self.t(t);
                prefetch(&task.deps);
                if let Some(&d) = task.dependents.iter().next().as_ref() {
                    if let Some(Some(dt)) = self.tasks.get(d.0 as usize) {
                        prefetch(dt);
                    }
                }
            }
        }
    }

    /// A live task.
    pub fn task(&self, t: TaskId) -> Option<&Task> {
        self.tasks.get(t.0 as usize)?.as_ref()
    }

    /// The state of a key, if the scheduler knows it.
    pub fn state_of(&self, key: &str) -> Option<StateKind> {
        self.task_id(key).map(|t| self.t(t).state.kind())
    }

    /// Data addresses of the workers holding `key`.
    pub fn who_has_of(&self, key: &str) -> Vec<String> {
        match self.task_id(key).map(|t| &self.t(t).state) {
            Some(TaskState::Memory { who_has }) => who_has
                .as_slice()
                .iter()
                .map(|&w| self.w(w).address.to_string())
                .collect(),
            _ => Vec::new(),
        }
    }

    pub fn worker(&self, w: WorkerId) -> Option<&Worker> {
        self.workers.get(w.0 as usize)?.as_ref()
    }

    pub fn worker_by_ext(&self, ext: u64) -> Option<WorkerId> {
        self.worker_by_ext.get(&ext).copied()
    }

    pub fn client_by_ext(&self, ext: u64) -> Option<ClientId> {
        self.client_by_ext.get(&ext).copied()
    }

    pub fn client(&self, c: ClientId) -> Option<&Client> {
        self.clients.get(c.0 as usize)?.as_ref()
    }

    /// Live workers.
    pub fn worker_ids(&self) -> impl Iterator<Item = WorkerId> + '_ {
        self.workers
            .iter()
            .enumerate()
            .filter(|(_, w)| w.is_some())
            .map(|(i, _)| WorkerId(i as u32))
    }

    /// The duration estimate of a function, seconds.
    pub fn duration_estimate(&self, func: &str) -> f64 {
        match self.func_ids.get(func) {
            Some(&f) => self.funcs[f.0 as usize].est,
            None => self.opts.default_duration,
        }
    }

    pub fn counts(&self) -> StateCounts {
        let c = &self.counts;
        StateCounts {
            tasks: self.live,
            released: c[0],
            waiting: c[1],
            no_worker: c[2],
            queued: c[3],
            processing: c[4],
            memory: c[5],
            erred: c[6],
            workers: self.n_workers,
            clients: self.n_clients,
        }
    }

    /// The transition log, oldest first (empty unless enabled).
    pub fn transition_log(&self) -> impl Iterator<Item = &Transition> {
        self.log.iter()
    }

    /// The logged transitions of one key, oldest first.
    pub fn story(&self, key: &str) -> Vec<&Transition> {
        self.log.iter().filter(|t| t.key.as_str() == key).collect()
    }

    #[inline]
    pub(crate) fn t(&self, t: TaskId) -> &Task {
        self.tasks[t.0 as usize].as_ref().expect("a live task")
    }

    #[inline]
    pub(crate) fn tm(&mut self, t: TaskId) -> &mut Task {
        self.tasks[t.0 as usize].as_mut().expect("a live task")
    }

    #[inline]
    fn alive(&self, t: TaskId) -> bool {
        matches!(self.tasks.get(t.0 as usize), Some(Some(_)))
    }

    #[inline]
    pub(crate) fn w(&self, w: WorkerId) -> &Worker {
        self.workers[w.0 as usize].as_ref().expect("a live worker")
    }

    #[inline]
    fn wm(&mut self, w: WorkerId) -> &mut Worker {
        self.workers[w.0 as usize].as_mut().expect("a live worker")
    }

    #[inline]
    fn capable(&self, w: WorkerId, f: FuncId) -> bool {
        self.classes[self.w(w).class as usize].funcs.contains(f.0)
    }

    fn intern_func(&mut self, name: &str) -> FuncId {
        if let Some(&f) = self.func_ids.get(name) {
            return f;
        }
        let f = FuncId(self.funcs.len() as u32);
        self.funcs.push(Func {
            name: name.into(),
            est: self.opts.default_duration,
            observed: false,
            capable: 0,
            queue: FuncQueue::default(),
            listed: false,
            no_worker: Vec::new(),
            stuck_since: None,
        });
        self.func_ids.insert(name.into(), f);
        f
    }

    pub(crate) fn func_name(&self, f: FuncId) -> &str {
        if f == NO_FUNC {
            ""
        } else {
            &self.funcs[f.0 as usize].name
        }
    }

    // ------------------------------------------------------- task table

    /// Adds a released task. Its dependencies must be live.
    fn new_task(
        &mut self,
        name: Key,
        func: FuncId,
        args: Box<[u8]>,
        deps: Box<[TaskId]>,
        priority: u64,
        retries: u16,
    ) -> TaskId {
        let hash = hash_key(&name);
        let task = Task {
            name,
            args,
            deps,
            dependents: IdSet::default(),
            priority,
            state: TaskState::Released,
            nbytes: 0,
            func,
            waiters: 0,
            wanted: 0,
            retries,
            flags: 0,
            suspicious: 0,
        };
        let t = match self.free_ids.pop() {
            Some(t) => {
                self.tasks[t.0 as usize] = Some(task);
                t
            }
            None => TaskId(self.tasks.push(Some(task)) as u32),
        };
        for i in 0..self.t(t).deps.len() {
            let d = self.t(t).deps[i];
            self.tm(d).dependents.insert(t);
        }
        let tasks = &self.tasks;
        self.names.insert_unique(hash, t, |&x| {
            hash_key(&tasks[x.0 as usize].as_ref().expect("a live task").name)
        });
        self.counts[StateKind::Released as usize] += 1;
        self.live += 1;
        t
    }

    /// Removes a released or erred task that nothing needs and nothing
    /// depends on.
    fn forget(&mut self, t: TaskId) {
        let hash = hash_key(&self.t(t).name);
        if let Ok(e) = self.names.find_entry(hash, |&x| x == t) {
            e.remove();
        }
        let task = self.tasks[t.0 as usize].take().expect("a live task");
        debug_assert!(task.dependents.is_empty() && !task.needed());
        self.counts[task.state.kind() as usize] -= 1;
        self.live -= 1;
        if !self.values.is_empty() {
            self.values.remove(&t);
        }
        if !self.missed.is_empty() {
            self.missed.remove(&t);
        }
        for &d in task.deps.iter() {
            let dt = self.tm(d);
            dt.dependents.remove(t);
            if dt.dependents.is_empty() {
                self.check.push(d);
            }
        }
        if self.opts.transition_log > 0 {
            self.log_transition(task.name.clone(), task.state.kind(), StateKind::Forgotten);
        }
        self.freed_ids.push(t);
    }

    fn log_transition(&mut self, key: Key, from: StateKind, to: StateKind) {
        if self.log.len() >= self.opts.transition_log {
            self.log.pop_front();
        }
        self.log.push_back(Transition {
            key,
            from,
            to,
            stimulus: self.stimulus,
            stimulus_id: self.stimulus_id,
        });
    }

    /// Every state change goes through here: counters, the waiters counts
    /// of the dependencies, the log. Returns the old state.
    fn set_state(&mut self, t: TaskId, new: TaskState) -> TaskState {
        let task = self.tm(t);
        let now_pending = new.is_pending();
        let to = new.kind();
        let old = std::mem::replace(&mut task.state, new);
        let from = old.kind();
        self.counts[from as usize] -= 1;
        self.counts[to as usize] += 1;
        if old.is_pending() != now_pending {
            for i in 0..self.t(t).deps.len() {
                let d = self.t(t).deps[i];
                let dt = self.tm(d);
                if now_pending {
                    dt.waiters += 1;
                } else {
                    dt.waiters -= 1;
                    if dt.waiters == 0 {
                        self.check.push(d);
                    }
                }
            }
        }
        if self.opts.transition_log > 0 {
            let key = self.t(t).name.clone();
            self.log_transition(key, from, to);
        }
        if matches!(to, StateKind::Memory | StateKind::Erred) && self.coord.forgets(t) {
            self.coord.forget_done.push(t);
        }
        old
    }

    // ---------------------------------------------------- stimulus frame

    fn begin(&mut self, s: Stimulus) {
        self.stimulus = s;
        self.stimulus_id += 1;
        self.free_ids.append(&mut self.freed_ids);
    }

    /// Ends a stimulus: releases and forgets what is no longer needed,
    /// places the tasks that became ready, refills workers that got room.
    fn finish(&mut self, out: &mut Vec<Outgoing>) {
        if !self.coord.forget_done.is_empty() {
            self.coord_finish();
        }
        self.settle(out);
        if !self.retiring.is_empty() {
            self.progress_retirements(out);
            self.settle(out);
        }
        if !self.copy_requests.is_empty() {
            self.progress_copies(out);
        }
        self.place_ready(out);
        if !self.check.is_empty() {
            self.settle(out); // tasks of a runtime nobody offers erred
        }
        self.fill_workers(out);
        self.sync_index();
        if !self.fresh_no_worker.is_empty() {
            self.warn_no_worker(out);
        }
        self.shrink_when_empty();
    }

    /// Once the last task is forgotten, gives back the memory of the task
    /// tables if they had grown large: a million tasks leave a million empty
    /// slots (and a name table and free list to match) otherwise, for the
    /// life of the process. Only with nothing left: a slot cannot move
    /// while a task lives in it. Every list that may still name a task id
    /// holds stale entries only then, and is emptied with them.
    fn shrink_when_empty(&mut self) {
        if self.live != 0 || self.tasks.len() < SHRINK_SLOTS {
            return;
        }
        self.tasks = Slab::default();
        self.names = HashTable::new();
        self.free_ids = Vec::new();
        self.freed_ids = Vec::new();
        self.values = FxHashMap::default();
        self.missed = FxHashMap::default();
        self.ready = Vec::new();
        self.check = Vec::new();
        self.scratch = Vec::new();
        self.held = Vec::new();
        for f in &mut self.funcs {
            f.queue = FuncQueue::default();
            f.no_worker = Vec::new();
        }
        for w in self.workers.iter_mut().flatten() {
            w.processing = Vec::new();
            w.has_what = Vec::new();
        }
        for c in self.clients.iter_mut().flatten() {
            c.wants = Default::default();
        }
        for r in &mut self.retiring {
            r.todo = Vec::new();
            r.homeless = Vec::new();
            r.given_up = Vec::new();
        }
        self.shrunk += 1;
    }

    /// How many times the task tables were given back (see
    /// `shrink_when_empty`): the server returns freed memory to the system
    /// after each.
    pub fn shrunk(&self) -> u64 {
        self.shrunk
    }

    fn settle(&mut self, out: &mut Vec<Outgoing>) {
        while let Some(t) = self.check.pop() {
            if !self.alive(t) {
                continue;
            }
            let task = self.t(t);
            if task.needed() {
                continue;
            }
            match task.state {
                TaskState::Memory { .. } => self.t_memory_released(t, out),
                TaskState::Waiting { .. } | TaskState::NoWorker | TaskState::Queued => {
                    self.set_state(t, TaskState::Released);
                    self.check.push(t);
                }
                TaskState::Processing { .. } => {
                    let w = self.unassign(t);
                    self.free_key(w, t, out);
                    self.set_state(t, TaskState::Released);
                    self.check.push(t);
                }
                TaskState::Released | TaskState::Erred(_) => {
                    if task.dependents.is_empty() {
                        self.forget(t);
                    }
                }
            }
        }
    }

    /// Records `free-keys` of `t` for `w`, merged with the previous message
    /// if that is a `free-keys` to the same worker.
    fn free_key(&self, w: WorkerId, t: TaskId, out: &mut Vec<Outgoing>) {
        let key = self.t(t).name.clone();
        push_free(out, w, key);
    }

    // ------------------------------------------------------ transitions

    /// memory → released: deletes the data everywhere (not needed), or
    /// records that it is gone (lost: `who_has` already emptied by the
    /// caller, who passes no holders). See [`Self::t_memory_lost`].
    fn t_memory_released(&mut self, t: TaskId, out: &mut Vec<Outgoing>) {
        let old = self.set_state(t, TaskState::Released);
        let TaskState::Memory { who_has } = old else {
            unreachable!("memory → released from {:?}", old.kind())
        };
        let nbytes = self.t(t).nbytes;
        for &w in who_has.as_slice() {
            self.forget_holding(w, nbytes);
            self.free_key(w, t, out);
        }
        if !self.replicas.is_empty() {
            self.cancel_flight(t);
        }
        if !self.values.is_empty() {
            self.values.remove(&t);
        }
        self.check.push(t);
    }

    /// A key's last holder is gone (worker left, missing data). Its state
    /// must already be `released` with the holder bookkeeping done (see
    /// [`Self::drop_holder`]). Dependents that were about to run wait for
    /// it again; if still needed it is recomputed.
    fn t_memory_lost(&mut self, t: TaskId, out: &mut Vec<Outgoing>) {
        if !self.values.is_empty() {
            self.values.remove(&t);
        }
        let mut deps = std::mem::take(&mut self.scratch);
        deps.clear();
        self.t(t).dependents.copy_into(&mut deps);
        for &d in &deps {
            match &mut self.tm(d).state {
                TaskState::Waiting { waiting_on } => *waiting_on += 1,
                TaskState::NoWorker | TaskState::Queued => {
                    self.set_state(d, TaskState::Waiting { waiting_on: 1 });
                }
                TaskState::Processing { .. } => {
                    let w = self.unassign(d);
                    self.free_key(w, d, out);
                    self.set_state(d, TaskState::Waiting { waiting_on: 1 });
                }
                _ => {}
            }
        }
        self.scratch = deps;
        if self.t(t).needed() {
            self.make_needed(t, out);
        } else {
            self.check.push(t);
        }
    }

    /// Removes `w` from the holders of `t` (in memory). Returns true when
    /// it was the last holder: `t` is then `released` and the caller must
    /// call [`Self::t_memory_lost`].
    fn drop_holder(&mut self, t: TaskId, w: WorkerId) -> bool {
        // `t` may come from a stale `has_what` entry: a forgotten (or
        // reused) slot, or a key `w` no longer holds.
        if !self.holds(w, t) {
            return false;
        }
        let nbytes = self.t(t).nbytes;
        let TaskState::Memory { who_has } = &mut self.tm(t).state else {
            unreachable!()
        };
        let holders = std::mem::replace(who_has, Holders::One(w));
        let last = match holders.remove(w) {
            Some(rest) => {
                *who_has = rest;
                false
            }
            None => {
                self.set_state(t, TaskState::Released);
                true
            }
        };
        self.forget_holding(w, nbytes);
        // A copy from `w` cannot be made any more (nor one of a key nobody
        // holds): dropped. A retirement has nothing left to move; a
        // replicate or rebalance plans again. (Found by the cluster
        // simulation: `missing-data` against a retiring worker whose key
        // was also held elsewhere left its copy in flight.)
        if !self.replicas.is_empty()
            && (last || self.replicas.get(&t).is_some_and(|f| f.source == w))
        {
            self.cancel_flight(t);
        }
        last
    }

    /// Whether `w` holds `t` (for the lazily cleaned `has_what`).
    fn holds(&self, w: WorkerId, t: TaskId) -> bool {
        matches!(
            self.tasks.get(t.0 as usize),
            Some(Some(Task { state: TaskState::Memory { who_has }, .. })) if who_has.contains(w)
        )
    }

    /// `w` stopped holding a key of `nbytes` (already removed from the
    /// key's holders). Compacts `has_what` when it is mostly stale.
    fn forget_holding(&mut self, w: WorkerId, nbytes: u64) {
        let wk = self.wm(w);
        wk.n_keys -= 1;
        wk.nbytes = wk.nbytes.wrapping_sub(nbytes);
        if wk.has_what.len() > 2 * wk.n_keys as usize + 32 {
            let mut list = std::mem::take(&mut self.wm(w).has_what);
            list.retain(|&t| self.holds(w, t));
            list.sort_unstable();
            list.dedup();
            self.wm(w).has_what = list;
        }
    }

    /// released → waiting(n) for `t` and, transitively, its released
    /// dependencies; → erred if a dependency erred or `t` is lost scattered
    /// data. Tasks with `n == 0` are ready (placed at the end).
    fn make_needed(&mut self, t: TaskId, out: &mut Vec<Outgoing>) {
        let mut stack = vec![t];
        while let Some(x) = stack.pop() {
            if !matches!(self.t(x).state, TaskState::Released) {
                continue;
            }
            if self.t(x).func == NO_FUNC {
                let err = Arc::new(TaskError::new(
                    self.t(x).name.clone(),
                    String::new(),
                    String::new(),
                    format!(
                        "the data of '{}' was lost and it cannot be recomputed (it was scattered)",
                        self.t(x).name
                    ),
                ));
                self.t_erred(x, err, out);
                continue;
            }
            let mut n = 0;
            let mut erred = None;
            for &d in self.t(x).deps.iter() {
                match &self.t(d).state {
                    TaskState::Memory { .. } => {}
                    TaskState::Erred(e) => erred = Some(e.clone()),
                    _ => n += 1,
                }
            }
            if let Some(e) = erred {
                self.t_erred(x, e, out);
                continue;
            }
            self.set_state(x, TaskState::Waiting { waiting_on: n });
            if n == 0 {
                self.ready.push(x);
            }
            for i in 0..self.t(x).deps.len() {
                let d = self.t(x).deps[i];
                if matches!(self.t(d).state, TaskState::Released) {
                    stack.push(d);
                }
            }
        }
    }

    /// → erred: `t` (from any state but memory) and every pending task that
    /// depends on it; clients wanting them are told.
    fn t_erred(&mut self, t: TaskId, err: Arc<TaskError>, out: &mut Vec<Outgoing>) {
        let mut stack = vec![t];
        while let Some(x) = stack.pop() {
            match self.t(x).state {
                TaskState::Processing { .. } => {
                    let w = self.unassign(x);
                    if x != t {
                        self.free_key(w, x, out);
                    }
                }
                TaskState::Memory { .. } | TaskState::Erred(_) => continue,
                _ => {}
            }
            self.set_state(x, TaskState::Erred(err.clone()));
            self.notify_erred(x, &err, out);
            self.check.push(x);
            for d in self.t(x).dependents.iter() {
                if self.t(d).state.is_pending() {
                    stack.push(d);
                }
            }
        }
    }

    fn notify_erred(&self, t: TaskId, err: &Arc<TaskError>, out: &mut Vec<Outgoing>) {
        if self.t(t).wanted == 0 {
            return;
        }
        for (i, c) in self.clients.iter().enumerate() {
            if let Some(c) = c {
                if c.wants.contains(&t) {
                    out.push(Outgoing::KeyErred {
                        client: ClientId(i as u32),
                        key: self.t(t).name.clone(),
                        error: err.clone(),
                    });
                }
            }
        }
    }

    fn notify_memory(&self, t: TaskId, out: &mut Vec<Outgoing>) {
        if self.t(t).wanted == 0 {
            return;
        }
        for (i, c) in self.clients.iter().enumerate() {
            if let Some(c) = c {
                if c.wants.contains(&t) {
                    out.push(Outgoing::KeyInMemory {
                        client: ClientId(i as u32),
                        task: t,
                    });
                }
            }
        }
    }

    /// → memory on `w` (from processing, or any state for data that
    /// arrived another way). Dependents waiting on it count down; wanting
    /// clients are told.
    fn t_memory(
        &mut self,
        t: TaskId,
        w: WorkerId,
        nbytes: u64,
        value: Option<Vec<u8>>,
        out: &mut Vec<Outgoing>,
    ) {
        match self.t(t).state {
            TaskState::Memory { .. } => {
                // Another copy.
                let task = self.tm(t);
                if let TaskState::Memory { who_has } = &mut task.state {
                    if who_has.add(w) {
                        let nb = task.nbytes;
                        let wk = self.wm(w);
                        wk.has_what.push(t);
                        wk.n_keys += 1;
                        wk.nbytes = wk.nbytes.wrapping_add(nb);
                        if wk.retiring {
                            self.retire_todo(w, t);
                        }
                    }
                }
                if !self.replicas.is_empty() {
                    self.replica_arrived(t, w, out);
                }
                return;
            }
            TaskState::Processing { worker, .. } => {
                self.unassign(t);
                if worker != w {
                    self.free_key(worker, t, out);
                }
            }
            _ => {}
        }
        self.set_state(
            t,
            TaskState::Memory {
                who_has: Holders::One(w),
            },
        );
        self.tm(t).nbytes = nbytes;
        let wk = self.wm(w);
        wk.has_what.push(t);
        wk.n_keys += 1;
        // Sizes are what workers claim: the sum wraps rather than panics
        // (removing the key subtracts it back exactly).
        wk.nbytes = wk.nbytes.wrapping_add(nbytes);
        if wk.retiring {
            self.retire_todo(w, t);
        }
        let task = self.t(t);
        if task.wanted > 0 {
            if let Some(v) = value {
                if v.len() <= self.opts.max_inline_value {
                    self.values.insert(t, v.into_boxed_slice());
                }
            }
            self.notify_memory(t, out);
        }
        // Dependents waiting on it.
        let mut deps = std::mem::take(&mut self.scratch);
        deps.clear();
        self.t(t).dependents.copy_into(&mut deps);
        for &d in &deps {
            if let TaskState::Waiting { waiting_on } = &mut self.tm(d).state {
                if *waiting_on > 0 {
                    *waiting_on -= 1;
                    if *waiting_on == 0 {
                        self.ready.push(d);
                    }
                }
            }
        }
        self.scratch = deps;
        if !self.t(t).needed() {
            self.check.push(t);
        }
    }

    // -------------------------------------------------------- placement

    /// waiting(0) | queued → processing on `w`; records `compute-task`.
    fn assign(&mut self, t: TaskId, w: WorkerId, out: &mut Vec<Outgoing>) {
        let f = self.t(t).func;
        let cost = self.funcs[f.0 as usize].est as f32;
        let wk = self.wm(w);
        wk.processing.push(t);
        wk.occupancy_ns += cost_ns(cost);
        self.mark_dirty(w);
        self.set_state(t, TaskState::Processing { worker: w, cost });
        out.push(Outgoing::Compute { worker: w, task: t });
    }

    /// Puts `t`, just taken off its worker ([`Self::unassign`]), back to
    /// waiting on its dependencies that are not in memory, and in the ready
    /// queue when there are none (a task a worker handed back).
    fn back_to_waiting(&mut self, t: TaskId) {
        let n = self
            .t(t)
            .deps
            .iter()
            .filter(|&&d| !matches!(self.t(d).state, TaskState::Memory { .. }))
            .count() as u32;
        self.set_state(t, TaskState::Waiting { waiting_on: n });
        if n == 0 {
            self.ready.push(t);
        }
    }

    /// Takes a processing task off its worker (its state is left for the
    /// caller to set). Returns the worker.
    fn unassign(&mut self, t: TaskId) -> WorkerId {
        let TaskState::Processing { worker, cost } = self.t(t).state else {
            unreachable!("unassign of a task that is not processing")
        };
        let seceded = self.t(t).flags & SECEDED != 0;
        if seceded {
            self.tm(t).flags &= !SECEDED;
        }
        let wk = self.wm(worker);
        if let Some(i) = wk.processing.iter().position(|&x| x == t) {
            wk.processing.swap_remove(i);
        }
        if seceded {
            wk.seceded -= 1;
        }
        wk.occupancy_ns -= cost_ns(cost);
        self.mark_dirty(worker);
        let wk = self.wm(worker);
        if !wk.to_fill {
            wk.to_fill = true;
            self.to_fill.push(worker);
        }
        worker
    }

    /// The high half of the priorities of a new submission: ordinary ones
    /// count up from [`GENERATION_BASE`], those from inside tasks count
    /// down from it (see "Priorities" in the module docs).
    pub(crate) fn next_generation(&mut self, from_task: bool) -> u64 {
        let g = if from_task {
            self.task_generation = (self.task_generation + 1).min(GENERATION_BASE - 1);
            GENERATION_BASE - self.task_generation
        } else {
            self.generation += 1;
            GENERATION_BASE + self.generation
        };
        g << 32
    }

    fn mark_dirty(&mut self, w: WorkerId) {
        let wk = self.wm(w);
        if !wk.dirty {
            wk.dirty = true;
            self.dirty.push(w);
        }
    }

    /// Brings the classes' free indexes up to date with the dirty workers.
    fn sync_index(&mut self) {
        while let Some(w) = self.dirty.pop() {
            let Some(wk) = self.workers[w.0 as usize].as_mut() else {
                continue;
            };
            wk.dirty = false;
            let want = wk.has_room().then_some(wk.occupancy_ns);
            if want != wk.index_key {
                let old = std::mem::replace(&mut wk.index_key, want);
                let class = &mut self.classes[wk.class as usize];
                if let Some(k) = old {
                    class.free.remove(&(k, w));
                }
                if let Some(k) = want {
                    class.free.insert((k, w));
                }
            }
        }
    }

    /// Places the tasks that became ready during this stimulus, best
    /// priority first.
    fn place_ready(&mut self, out: &mut Vec<Outgoing>) {
        if self.ready.is_empty() {
            return;
        }
        let mut ready = std::mem::take(&mut self.ready);
        ready.retain(|&t| {
            matches!(
                self.tasks[t.0 as usize].as_ref().map(|t| &t.state),
                Some(TaskState::Waiting { waiting_on: 0 })
            )
        });
        if ready.len() > 1 {
            ready.sort_unstable_by_key(|&t| (self.t(t).priority, t));
            ready.dedup();
        }
        let mut to_queue: Vec<(FuncId, u64, TaskId)> = Vec::new();
        for &t in &ready {
            let f = self.t(t).func;
            if self.funcs[f.0 as usize].capable == 0 {
                match crate::registry::shipped_runtime(&self.funcs[f.0 as usize].name) {
                    // A shipped function no connected worker can run: say so
                    // now rather than wait (a runtime is not installed by
                    // waiting, and a version mismatch never resolves).
                    Some(runtime) => {
                        let err = Arc::new(TaskError::new(
                            self.t(t).name.clone(),
                            self.funcs[f.0 as usize].name.to_string(),
                            String::new(),
                            self.no_runtime_message(runtime),
                        ));
                        if self.t(t).state.is_pending() {
                            self.t_erred(t, err, out);
                        }
                    }
                    None => self.t_no_worker(t),
                }
            } else if let Some(w) = self.decide_worker(t) {
                self.assign(t, w, out);
            } else {
                self.set_state(t, TaskState::Queued);
                let task = self.tm(t);
                if task.flags & IN_QUEUE == 0 {
                    task.flags |= IN_QUEUE;
                    to_queue.push((f, task.priority, t));
                }
            }
        }
        if !to_queue.is_empty() {
            to_queue.sort_unstable_by_key(|e| e.0);
            let mut i = 0;
            while i < to_queue.len() {
                let f = to_queue[i].0;
                let j = i + to_queue[i..].iter().take_while(|e| e.0 == f).count();
                let items: Vec<(u64, TaskId)> =
                    to_queue[i..j].iter().map(|&(_, p, t)| (p, t)).collect();
                let func = &mut self.funcs[f.0 as usize];
                func.queue.extend(items);
                if !func.listed {
                    func.listed = true;
                    self.queued_funcs.push(f);
                }
                i = j;
            }
        }
        ready.clear();
        if self.ready.is_empty() {
            self.ready = ready;
        }
    }

    /// Why a task of a shipped function of `runtime` cannot run: no
    /// connected worker offers `code:<runtime>`; names the runtimes that are.
    fn no_runtime_message(&self, runtime: &str) -> String {
        let mut offered: Vec<&str> = self
            .funcs
            .iter()
            .filter(|f| f.capable > 0)
            .filter_map(|f| crate::registry::shipped_runtime(&f.name))
            .collect();
        offered.sort_unstable();
        let offered = if offered.is_empty() {
            "none".to_string()
        } else {
            offered.join(", ")
        };
        format!(
            "no connected worker runs shipped {runtime} functions (runtimes offered: {offered}). A worker \
             runs shipped code only when started with --allow-code (Python: allow_code=True; Julia: \
             allow_code=true), and on a non-loopback scheduler address only with a token or TLS"
        )
    }

    /// waiting(0) | queued → no-worker.
    fn t_no_worker(&mut self, t: TaskId) {
        self.set_state(t, TaskState::NoWorker);
        self.fresh_no_worker.push(t);
        let clock = self.clock;
        let task = self.tm(t);
        let f = task.func;
        if task.flags & IN_NO_WORKER == 0 {
            task.flags |= IN_NO_WORKER;
            self.funcs[f.0 as usize].no_worker.push(t);
        }
        let func = &mut self.funcs[f.0 as usize];
        if func.stuck_since.is_none() {
            func.stuck_since = Some(clock);
        }
    }

    /// Tells the clients wanting the tasks that went to `no-worker` in this
    /// stimulus, or a task depending on them, that no connected worker
    /// offers the function (`warning`, code `no-worker`): one message per
    /// client and function, naming the client's keys concerned.
    fn warn_no_worker(&mut self, out: &mut Vec<Outgoing>) {
        let mut fresh = std::mem::take(&mut self.fresh_no_worker);
        fresh.retain(|&t| {
            self.task(t)
                .is_some_and(|x| matches!(x.state, TaskState::NoWorker))
        });
        fresh.sort_unstable_by_key(|&t| (self.t(t).func, t));
        fresh.dedup();
        let mut seen: rustc_hash::FxHashSet<TaskId> = Default::default();
        let mut i = 0;
        while i < fresh.len() {
            let f = self.t(fresh[i]).func;
            let j = i + fresh[i..]
                .iter()
                .take_while(|&&t| self.t(t).func == f)
                .count();
            // The wanted tasks that need them: themselves, or dependents.
            let mut wanted: Vec<TaskId> = Vec::new();
            let mut stack: Vec<TaskId> = fresh[i..j].to_vec();
            seen.clear();
            while let Some(x) = stack.pop() {
                if !seen.insert(x) {
                    continue;
                }
                let task = self.t(x);
                if task.wanted > 0 {
                    wanted.push(x);
                }
                stack.extend(task.dependents.iter().filter(|d| !seen.contains(d)));
            }
            let func = self.func_name(f).to_string();
            for (ci, c) in self.clients.iter().enumerate() {
                let Some(c) = c else { continue };
                let mut keys: Vec<String> = wanted
                    .iter()
                    .filter(|t| c.wants.contains(t))
                    .map(|&t| self.t(t).name.to_string())
                    .collect();
                if keys.is_empty() {
                    continue;
                }
                keys.sort_unstable();
                let message = format!(
                    "no connected worker offers the function '{func}' (needed by {} of your keys, \
                     such as '{}'); the tasks wait for a worker that does{}",
                    keys.len(),
                    keys[0],
                    match self.opts.no_workers_timeout {
                        Some(s) => format!(", at most {s} s (no-workers timeout)"),
                        None => String::new(),
                    }
                );
                tracing::warn!(client = %c.name, %func, keys = keys.len(), "tasks wait for a worker that offers their function");
                out.push(Outgoing::Message(
                    Dest::Client(ClientId(ci as u32)),
                    Message::Warning {
                        code: "no-worker".into(),
                        message,
                        keys,
                    },
                ));
            }
            i = j;
        }
        fresh.clear();
        self.fresh_no_worker = fresh;
    }

    /// The worker for a ready task, among those with room: the one where it
    /// would start first, counting its queue (occupancy per thread) and the
    /// transfer of the input bytes it lacks (see "Placement" in the module
    /// docs). `None` if every capable worker is full.
    fn decide_worker(&mut self, t: TaskId) -> Option<WorkerId> {
        let f = self.t(t).func;
        let mut held = std::mem::take(&mut self.held);
        held.clear();
        // Input bytes in memory, and (worker, bytes of them it holds).
        let mut total: u64 = 0;
        for &d in self.t(t).deps.iter() {
            let dt = self.t(d);
            if let TaskState::Memory { who_has } = &dt.state {
                total = total.saturating_add(dt.nbytes);
                for &h in who_has.as_slice() {
                    match held.iter_mut().find(|e| e.0 == h) {
                        Some(e) => e.1 = e.1.saturating_add(dt.nbytes),
                        None => held.push((h, dt.nbytes)),
                    }
                }
            }
        }
        // (start cost, Reverse(bytes held), worker): the smallest wins.
        type Rank = (u64, std::cmp::Reverse<u64>, WorkerId);
        let mut best: Option<Rank> = None;
        for &(h, bytes) in &held {
            let hw = self.w(h);
            if !hw.has_room() || !self.capable(h, f) {
                continue;
            }
            let rank = (
                start_cost_ns(hw, total.saturating_sub(bytes)),
                std::cmp::Reverse(bytes),
                h,
            );
            if best.map_or(true, |b| rank < b) {
                best = Some(rank);
            }
        }
        self.held = held;
        self.sync_index();
        let mut pick: Option<(u64, WorkerId)> = None;
        for class in &self.classes {
            if class.funcs.contains(f.0) {
                if let Some(&e) = class.free.first() {
                    if pick.map_or(true, |p| e < p) {
                        pick = Some(e);
                    }
                }
            }
        }
        // The least occupied worker with room, holding nothing of the
        // inputs unless it is also a holder (then ranked above already).
        if let Some((_, w)) = pick {
            if best.map_or(true, |b| b.2 != w) {
                let bytes = self.held.iter().find(|e| e.0 == w).map_or(0, |e| e.1);
                let rank = (
                    start_cost_ns(self.w(w), total.saturating_sub(bytes)),
                    std::cmp::Reverse(bytes),
                    w,
                );
                if best.map_or(true, |b| rank < b) {
                    best = Some(rank);
                }
            }
        }
        best.map(|b| b.2)
    }

    /// Refills the workers that got room from the queues.
    fn fill_workers(&mut self, out: &mut Vec<Outgoing>) {
        while let Some(w) = self.to_fill.pop() {
            let Some(wk) = self.workers[w.0 as usize].as_mut() else {
                continue;
            };
            wk.to_fill = false;
            self.fill(w, out);
        }
    }

    /// Sends `w` the best queued tasks it can run until it is full.
    fn fill(&mut self, w: WorkerId, out: &mut Vec<Outgoing>) {
        while self.w(w).has_room() && !self.queued_funcs.is_empty() {
            let mut best: Option<(u64, TaskId, FuncId)> = None;
            let mut i = 0;
            while i < self.queued_funcs.len() {
                let f = self.queued_funcs[i];
                match self.peek_queue(f) {
                    None => {
                        self.queued_funcs.swap_remove(i);
                        self.funcs[f.0 as usize].listed = false;
                        continue;
                    }
                    Some((p, t)) => {
                        if self.capable(w, f) && best.map_or(true, |b| (p, t) < (b.0, b.1)) {
                            best = Some((p, t, f));
                        }
                    }
                }
                i += 1;
            }
            let Some((_, t, f)) = best else { break };
            let queue = &mut self.funcs[f.0 as usize].queue;
            queue.pop();
            // The next pop will read that task: start fetching it now.
            if let Some((_, next)) = queue.peek() {
                if let Some(Some(task)) = self.tasks.get(next.0 as usize) {
                    prefetch(task);
                }
            }
            self.tm(t).flags &= !IN_QUEUE;
            self.assign(t, w, out);
        }
    }

    /// The best live entry of a function's queue, dropping stale ones.
    fn peek_queue(&mut self, f: FuncId) -> Option<(u64, TaskId)> {
        loop {
            let (p, t) = self.funcs[f.0 as usize].queue.peek()?;
            // An entry is live if the task in that slot is still the same
            // task (same function and priority) and still queued.
            if let Some(task) = self.tasks[t.0 as usize].as_mut() {
                if task.func == f && task.priority == p {
                    if matches!(task.state, TaskState::Queued) {
                        return Some((p, t));
                    }
                    task.flags &= !IN_QUEUE;
                }
            }
            self.funcs[f.0 as usize].queue.pop();
        }
    }
}

/// Pushes a `free-keys` of `key` for `w`, merged into the previous message
/// when that one is a `free-keys` to the same worker.
fn push_free(out: &mut Vec<Outgoing>, w: WorkerId, key: Key) {
    if let Some(Outgoing::FreeKeys { worker, keys }) = out.last_mut() {
        if *worker == w {
            keys.push(key);
            return;
        }
    }
    out.push(Outgoing::FreeKeys {
        worker: w,
        keys: vec![key],
    });
}

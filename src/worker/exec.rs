//! The pool threads that run builtins and native functions, and the tasks
//! of pulled functions handed to host threads.
//!
//! # How a pool thread works
//!
//! Like the local executor (`src/local/exec.rs`), without its per-task
//! hand-offs:
//!
//! - Under one lock acquisition a thread retires the batch it just ran
//!   (its `task-finished` messages are queued on the scheduler's outbox
//!   right there) and takes its next batch from the core's ready heap,
//!   most urgent first. A busy thread therefore touches the lock once per
//!   batch and never waits for anyone to hand it work.
//! - A batch is a fair share of what is queued (`queued / threads`, at
//!   most [`MAX_BATCH`]), so a burst of small tasks spreads over the
//!   threads; once tasks take long (an average above [`LONG_TASK`]) a
//!   thread takes one at a time, so no task waits behind a slow one while
//!   another thread idles. Within a batch, finished tasks are reported at
//!   least every [`FLUSH_AFTER`].
//! - An idle thread spins briefly, watching a counter it can read without
//!   the lock, before sleeping on a condition variable: waking a sleeping
//!   thread on the other CPU costs tens of microseconds. Whoever queues
//!   tasks wakes at most as many sleepers as there are queued tasks.
//! - A panic in a task function is caught and reported as the task's error.

use super::shared::{After, Core, Shared};
use super::state::{ExecTask, KeyId, Outcome};
use crate::registry::{Failure, FnResult};
use crate::value::Value;
use crossbeam::utils::Backoff;
use parking_lot::MutexGuard;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Most tasks a pool thread takes at once.
pub const MAX_BATCH: usize = 64;
/// Spin rounds (crossbeam `Backoff` snoozes) before sleeping.
const SPIN_ROUNDS: u32 = 10;
/// Finished tasks of a batch are reported at least this often.
pub const FLUSH_AFTER: Duration = Duration::from_millis(1);
/// Average run time above which a thread takes one task at a time.
pub const LONG_TASK: Duration = Duration::from_micros(50);
/// How long a spare pool thread (one without a slot, see [`secede`])
/// waits for a seceding task's slot before it ends.
pub const SPARE_IDLE: Duration = Duration::from_secs(10);

type Done = (KeyId, u64, Outcome, f64);

/// Starts the pool threads.
pub(crate) fn spawn_pool(shared: &Arc<Shared>) -> Vec<JoinHandle<()>> {
    (0..shared.threads)
        .map(|i| {
            let s = shared.clone();
            std::thread::Builder::new()
                .name(format!("rask-worker-{i}"))
                .spawn(move || pool_thread(s, false))
                .expect("spawning a worker thread")
        })
        .collect()
}

/// What a pool thread keeps where the function it runs can reach it
/// ([`secede`], [`rejoin`], [`current_worker`]): the task running, and the
/// rest of its batch.
struct PoolCtx {
    shared: Arc<Shared>,
    /// The run in progress.
    current: Option<(KeyId, u64)>,
    /// The run in progress seceded and has not rejoined: this thread
    /// holds no slot.
    seceded: bool,
    /// The rest of the batch, most urgent first.
    queue: VecDeque<ExecTask>,
    /// Runs ended and not yet reported to the core.
    done: Vec<Done>,
}

thread_local! {
    static POOL: RefCell<Option<PoolCtx>> = const { RefCell::new(None) };
}

/// `f` on this pool thread's context (which must exist: only called by
/// the pool thread itself, outside the function it runs).
fn ctx<R>(f: impl FnOnce(&mut PoolCtx) -> R) -> R {
    POOL.with(|p| f(p.borrow_mut().as_mut().expect("a pool thread")))
}

fn retire(g: &mut Core, done: &mut Vec<Done>) {
    for (id, seq, outcome, duration) in done.drain(..) {
        g.state.task_done(id, seq, outcome, duration);
    }
}

fn batch_size(queued: usize, threads: usize, avg_ns: f64) -> usize {
    if avg_ns > LONG_TASK.as_nanos() as f64 {
        1
    } else {
        (queued / threads.max(1)).clamp(1, MAX_BATCH)
    }
}

/// Spins until work may be queued or the worker stopped; false if neither.
fn spin(shared: &Shared) -> bool {
    let backoff = Backoff::new();
    for _ in 0..SPIN_ROUNDS {
        if shared.ready_hint.load(Ordering::Relaxed) > 0 || shared.is_stopped() {
            return true;
        }
        backoff.snooze();
    }
    false
}

/// A pool thread. `handoff`: it was started to take over the slot of a
/// thread whose task seceded (and the rest of that thread's batch, left in
/// `Core::handoffs`).
fn pool_thread(shared: Arc<Shared>, handoff: bool) {
    let queue = if handoff {
        shared.core.lock().handoffs.pop().unwrap_or_default()
    } else {
        VecDeque::new()
    };
    POOL.with(|p| {
        *p.borrow_mut() = Some(PoolCtx {
            shared: shared.clone(),
            current: None,
            seceded: false,
            queue,
            done: Vec::with_capacity(MAX_BATCH),
        })
    });
    pool_loop(&shared);
    POOL.with(|p| p.borrow_mut().take());
}

fn pool_loop(shared: &Arc<Shared>) {
    let mut batch: Vec<ExecTask> = Vec::with_capacity(MAX_BATCH);
    // Running average of task run times, in nanoseconds.
    let mut avg_ns = 0.0f64;
    loop {
        run_queue(shared, &mut avg_ns);
        // A task that seceded and ended without rejoining leaves this
        // thread without a slot: it takes a free one, or ends.
        let mut slotless = ctx(|c| std::mem::replace(&mut c.seceded, false));
        let mut done = ctx(|c| std::mem::take(&mut c.done));
        let mut after = After::default();
        {
            let mut g = shared.core.lock();
            retire(&mut g, &mut done);
            if slotless && g.pool_active < shared.threads && g.rejoining == 0 {
                g.pool_active += 1;
                slotless = false;
            }
            loop {
                if shared.is_stopped() {
                    return;
                }
                if slotless || (g.rejoining > 0 && g.pool_active >= shared.threads) {
                    // A seceded task wants its slot back (or this thread
                    // has none): this thread hands its slot over and waits
                    // as a spare for the next seceding task's slot, or
                    // ends after SPARE_IDLE.
                    if !slotless {
                        g.pool_active -= 1;
                        shared.slots.notify_all();
                    }
                    g.flush(&mut after);
                    let a = std::mem::take(&mut after);
                    MutexGuard::unlocked(&mut g, || shared.after(a));
                    match park_spare(shared, &mut g) {
                        Some(queue) => {
                            // The seceding thread's slot and batch.
                            slotless = false;
                            ctx(|c| c.queue = queue);
                            break;
                        }
                        None => return,
                    }
                }
                let want = batch_size(g.state.ready_len(), shared.threads, avg_ns);
                g.state.take_ready(want, &mut batch);
                if !batch.is_empty() {
                    break;
                }
                // Nothing to run: first pass on what retiring decided.
                g.flush(&mut after);
                shared.ready_hint.store(0, Ordering::Relaxed);
                if !after.is_empty() {
                    let a = std::mem::take(&mut after);
                    MutexGuard::unlocked(&mut g, || shared.after(a));
                    continue;
                }
                if MutexGuard::unlocked(&mut g, || spin(shared)) {
                    continue;
                }
                // Look again under the lock: whoever queues work, stops
                // the worker or rejoins does so under it before notifying.
                if shared.is_stopped() || g.state.ready_len() > 0 || g.rejoining > 0 {
                    continue;
                }
                g.sleepers += 1;
                shared.work.wait(&mut g);
                g.sleepers -= 1;
            }
            g.flush(&mut after);
            shared
                .ready_hint
                .store(g.state.ready_len(), Ordering::Relaxed);
        }
        shared.after(after);
        ctx(|c| c.queue.extend(batch.drain(..)));
    }
}

/// Parks a pool thread that holds no slot as a spare (under the core's
/// lock, released while it waits) until a seceding task hands it its slot
/// and the rest of its batch (returned), the worker stops or
/// [`SPARE_IDLE`] passes (`None`: the thread ends).
fn park_spare(shared: &Shared, g: &mut MutexGuard<'_, Core>) -> Option<VecDeque<ExecTask>> {
    g.spares += 1;
    let deadline = Instant::now() + SPARE_IDLE;
    loop {
        // Whichever spare wakes first takes a handoff; the claim that
        // came with it already took one off `spares`.
        if let Some(q) = g.spare_handoffs.pop() {
            return Some(q);
        }
        if shared.is_stopped() || shared.spare.wait_until(g, deadline).timed_out() {
            if let Some(q) = g.spare_handoffs.pop() {
                return Some(q);
            }
            g.spares -= 1;
            return None;
        }
    }
}

/// Runs this thread's queue; stops early when a task seceded without
/// rejoining (the rest of the queue went to the thread that took over
/// its slot).
fn run_queue(shared: &Arc<Shared>, avg_ns: &mut f64) {
    let mut last_flush = Instant::now();
    while let Some(t) = ctx(|c| {
        let t = c.queue.pop_front();
        c.current = t.as_ref().map(|t| (t.id, t.seq));
        t
    }) {
        let start = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| t.func.call(&t.args)))
            .unwrap_or_else(|p| Err(format!("panicked: {}", panic_message(&*p))));
        let end = Instant::now();
        drop(t.args);
        let outcome = Outcome::of(result);
        let took = end - start;
        *avg_ns = 0.8 * *avg_ns + 0.2 * took.as_nanos() as f64;
        let (flush, seceded) = ctx(|c| {
            c.current = None;
            c.done.push((t.id, t.seq, outcome, took.as_secs_f64()));
            (
                !c.queue.is_empty() && end - last_flush >= FLUSH_AFTER,
                c.seceded,
            )
        });
        if seceded {
            return;
        }
        if flush {
            let mut done = ctx(|c| std::mem::take(&mut c.done));
            shared.apply(|s| {
                for (id, seq, outcome, duration) in done.drain(..) {
                    s.task_done(id, seq, outcome, duration);
                }
            });
            last_flush = end;
        }
    }
}

/// Whether this thread runs a task of a worker's pool now (inside a
/// native function), and that worker.
pub(crate) fn current_worker() -> Option<Arc<Shared>> {
    POOL.with(|p| {
        p.try_borrow()
            .ok()?
            .as_ref()
            .filter(|c| c.current.is_some())
            .map(|c| c.shared.clone())
    })
}

/// The client of the worker whose native function runs on this thread
/// (the task's own scheduler): one connection per worker, shared by its
/// tasks, its submissions marked `from_task`. `Err(None)` outside such a
/// function.
pub fn task_client() -> Result<crate::client::Client, Option<crate::client::ClientError>> {
    let shared = current_worker().ok_or(None)?;
    shared.task_client().map_err(Some)
}

/// Why [`secede`] or [`rejoin`] could not be done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecedeError {
    /// Not called from inside a native function run by a worker's pool
    /// thread.
    NotInTask,
    /// No thread could be started to take over the slot.
    Thread(String),
}

impl std::fmt::Display for SecedeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecedeError::NotInTask => f.write_str(
                "not inside a task: secede and rejoin are called from a function a worker runs",
            ),
            SecedeError::Thread(e) => write!(f, "could not start a thread to take over: {e}"),
        }
    }
}

impl std::error::Error for SecedeError {}

/// Called by the native function a pool thread runs: the task gives its
/// slot back while it waits (on tasks it submitted). Another pool thread
/// takes over the slot (and the rest of this thread's batch), the
/// scheduler is told (`long-running`, once per run), and results this
/// thread had not reported yet are reported. Seceding again does nothing.
/// Take the slot back with [`rejoin`]; a task that ends without rejoining
/// ends its thread instead (or lets it take a free slot).
pub fn secede() -> Result<(), SecedeError> {
    type Taken = (Arc<Shared>, KeyId, u64, VecDeque<ExecTask>, Vec<Done>);
    let taken: Option<Taken> = POOL.with(|p| {
        let mut b = p.try_borrow_mut().map_err(|_| SecedeError::NotInTask)?;
        let c = b.as_mut().ok_or(SecedeError::NotInTask)?;
        let (id, seq) = c.current.ok_or(SecedeError::NotInTask)?;
        if c.seceded {
            return Ok(None);
        }
        Ok(Some((
            c.shared.clone(),
            id,
            seq,
            std::mem::take(&mut c.queue),
            std::mem::take(&mut c.done),
        )))
    })?;
    let Some((shared, id, seq, queue, mut done)) = taken else {
        return Ok(());
    };
    // The thread taking over the slot takes the rest of the batch: a task
    // queued behind this one may be what it waits for. A spare thread if
    // one is parked, else a new one.
    let spare = {
        let mut g = shared.core.lock();
        if g.spares > 0 {
            g.spares -= 1;
            g.spare_handoffs.push(queue);
            shared.spare.notify_one();
            true
        } else {
            g.handoffs.push(queue);
            false
        }
    };
    if !spare {
        let s = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("rask-worker-x".into())
            .spawn(move || pool_thread(s, true));
        if let Err(e) = spawned {
            // Keep the slot and the batch.
            let queue = shared.core.lock().handoffs.pop().unwrap_or_default();
            ctx(|c| {
                c.queue = queue;
                c.done.append(&mut done);
            });
            return Err(SecedeError::Thread(e.to_string()));
        }
    }
    ctx(|c| c.seceded = true);
    let mut after = After::default();
    {
        let mut g = shared.core.lock();
        retire(&mut g, &mut done);
        g.state.secede(id, seq);
        g.flush(&mut after);
    }
    shared.after(after);
    Ok(())
}

/// Called by the native function a pool thread runs, after [`secede`]:
/// waits until one of the worker's `threads` slots is free and takes it
/// (a pool thread hands its slot over between two batches). Does nothing
/// when the task has not seceded. Returns at once when the worker stops.
pub fn rejoin() -> Result<(), SecedeError> {
    let shared = POOL.with(|p| {
        let b = p.try_borrow().map_err(|_| SecedeError::NotInTask)?;
        let c = b.as_ref().ok_or(SecedeError::NotInTask)?;
        c.current.ok_or(SecedeError::NotInTask)?;
        Ok::<_, SecedeError>(c.seceded.then(|| c.shared.clone()))
    })?;
    let Some(shared) = shared else {
        return Ok(());
    };
    {
        let mut g = shared.core.lock();
        g.rejoining += 1;
        // Idle pool threads hand their slot over.
        shared.work.notify_all();
        while g.pool_active >= shared.threads && !shared.is_stopped() {
            shared.slots.wait(&mut g);
        }
        g.rejoining -= 1;
        g.pool_active += 1;
    }
    ctx(|c| c.seceded = false);
    Ok(())
}

/// Runs cheap ready tasks (builtins on small arguments, see
/// [`WorkerState::take_cheap`](super::state::WorkerState::take_cheap)) on
/// the calling thread until none is left at the top of the ready heap or
/// `deadline` passes, then wakes pool threads for whatever remains.
///
/// The scheduler connection's reader calls this after queuing a batch of
/// `compute-task`s: a no-op task then costs no thread hand-off at all, and
/// its `task-finished` is written by the same I/O thread right after.
/// Only builtins qualify: their cost is bounded by their arguments, while a
/// native function (a C callback, a Rust closure) may block and must not
/// hold up the shared I/O threads.
pub(crate) fn run_inline(shared: &Arc<Shared>, deadline: Instant) {
    let mut batch: Vec<ExecTask> = Vec::new();
    let mut done: Vec<Done> = Vec::new();
    loop {
        let mut after = After::default();
        {
            let mut g = shared.core.lock();
            retire(&mut g, &mut done);
            if !shared.is_stopped() && Instant::now() < deadline {
                g.state.take_cheap(MAX_BATCH, &mut batch);
            }
            g.flush(&mut after);
            shared
                .ready_hint
                .store(g.state.ready_len(), Ordering::Relaxed);
        }
        shared.after(after);
        if batch.is_empty() {
            return;
        }
        for t in batch.drain(..) {
            let start = Instant::now();
            let result = catch_unwind(AssertUnwindSafe(|| t.func.call(&t.args)))
                .unwrap_or_else(|p| Err(format!("panicked: {}", panic_message(&*p))));
            let took = start.elapsed();
            drop(t.args);
            done.push((t.id, t.seq, Outcome::of(result), took.as_secs_f64()));
        }
    }
}

/// A panic's message.
pub(crate) fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".into()
    }
}

/// What [`WorkerHandle::next_task`](super::WorkerHandle::next_task) found.
pub enum NextTask {
    /// A task of a pulled function, to run and complete.
    Task(WorkerTask),
    /// No pulled task became ready within the timeout.
    Timeout,
    /// The worker has stopped: no more tasks will come.
    Stopped,
}

impl std::fmt::Debug for NextTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NextTask::Task(t) => write!(f, "Task({:?} {})", t.key, t.func),
            NextTask::Timeout => f.write_str("Timeout"),
            NextTask::Stopped => f.write_str("Stopped"),
        }
    }
}

/// A task of a pulled function, handed to a host thread: run `func` on
/// `args` and hand the result back with [`WorkerTask::complete`]. Dropping
/// it uncompleted reports the task as erred ("abandoned").
pub struct WorkerTask {
    shared: Arc<Shared>,
    id: KeyId,
    seq: u64,
    key: String,
    func: String,
    args: Vec<Value>,
    started: Instant,
    done: bool,
}

impl WorkerTask {
    fn of(shared: &Arc<Shared>, p: super::state::PulledExec) -> WorkerTask {
        WorkerTask {
            shared: shared.clone(),
            id: p.id,
            seq: p.seq,
            key: p.key,
            func: p.func,
            args: p.args,
            started: Instant::now(),
            done: false,
        }
    }

    /// The task's key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The function to run.
    pub fn func(&self) -> &str {
        &self.func
    }

    /// The arguments, resolved.
    pub fn args(&self) -> &[Value] {
        &self.args
    }

    /// The task seceded: it waits (on tasks it submitted) without holding
    /// its slot. Tells the scheduler (`long-running`, once per run), which
    /// then counts it against nothing; the host keeps pulling tasks on
    /// another of its threads meanwhile, and takes a slot back itself
    /// before the task goes on (rejoin: pull mode's threads are the
    /// host's). Returns false when the run is no longer wanted.
    pub fn secede(&self) -> bool {
        if self.shared.is_stopped() {
            return false;
        }
        let (id, seq) = (self.id, self.seq);
        self.shared.apply(|s| s.secede(id, seq))
    }

    /// The client of this worker's tasks (see [`task_client`]).
    pub fn client(&self) -> Result<crate::client::Client, crate::client::ClientError> {
        self.shared.task_client()
    }

    /// Hands the result back (an `Err` is the task's error message).
    /// Returns false when nobody wants it any more: the worker stopped, or
    /// the scheduler freed the key meanwhile.
    pub fn complete(mut self, result: FnResult) -> bool {
        self.done = true;
        self.finish(Outcome::of(result))
    }

    /// Fails the task with an exception's message, type name and traceback
    /// (all sent to the scheduler). Returns false as `complete` does.
    pub fn fail(mut self, failure: Failure) -> bool {
        self.done = true;
        self.finish(Outcome::Failed(failure))
    }

    fn finish(&self, outcome: Outcome) -> bool {
        if self.shared.is_stopped() {
            return false;
        }
        let duration = self.started.elapsed().as_secs_f64();
        let (id, seq) = (self.id, self.seq);
        self.shared
            .apply(|s| s.task_done(id, seq, outcome, duration))
    }
}

impl Drop for WorkerTask {
    fn drop(&mut self) {
        if !self.done {
            self.finish(Outcome::Failed(
                String::from("abandoned: the host dropped the task without completing it").into(),
            ));
        }
    }
}

/// Waits up to `timeout` (forever for `None`) for a task of a pulled
/// function, then takes the others ready now, up to `max` in all (at least
/// one). `Err` is [`NextTask::Timeout`] or [`NextTask::Stopped`].
pub(crate) fn next_tasks(
    shared: &Arc<Shared>,
    max: usize,
    timeout: Option<Duration>,
) -> Result<Vec<WorkerTask>, NextTask> {
    let first = match next_task(shared, timeout) {
        NextTask::Task(t) => t,
        other => return Err(other),
    };
    let mut out = vec![first];
    if max > 1 {
        let mut g = shared.core.lock();
        while out.len() < max {
            let Some(p) = g.state.take_pulled() else {
                break;
            };
            out.push(WorkerTask::of(shared, p));
        }
        if g.state.pulled_len() == 0 {
            if let Some(w) = &g.wakeup {
                w.clear();
            }
        }
    }
    Ok(out)
}

/// Ends many tasks at once, under one lock of the worker's core (one
/// message flush, one wake-up), each with its outcome. Returns how many
/// results were discarded (nobody wanted them any more).
pub(crate) fn finish_many(
    shared: &Arc<Shared>,
    ends: Vec<(WorkerTask, Result<Value, Failure>)>,
) -> usize {
    let now = Instant::now();
    let mut done = Vec::with_capacity(ends.len());
    let mut discarded = 0;
    for (mut t, r) in ends {
        if !Arc::ptr_eq(&t.shared, shared) {
            // Another worker's task: ended on its own.
            let wanted = match r {
                Ok(v) => t.complete(Ok(v)),
                Err(f) => t.fail(f),
            };
            discarded += usize::from(!wanted);
            continue;
        }
        t.done = true;
        let outcome = match r {
            Ok(v) => Outcome::of(Ok(v)),
            Err(f) => Outcome::Failed(f),
        };
        let duration = now.saturating_duration_since(t.started).as_secs_f64();
        done.push((t.id, t.seq, outcome, duration));
    }
    if shared.is_stopped() {
        return discarded + done.len();
    }
    discarded
        + shared.apply(|s| {
            done.into_iter()
                .map(|(id, seq, outcome, duration)| s.task_done(id, seq, outcome, duration))
                .filter(|wanted| !wanted)
                .count()
        })
}

/// Waits up to `timeout` (forever for `None`) for a task of a pulled
/// function.
pub(crate) fn next_task(shared: &Arc<Shared>, timeout: Option<Duration>) -> NextTask {
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut g = shared.core.lock();
    loop {
        if shared.is_stopped() {
            return NextTask::Stopped;
        }
        if let Some(p) = g.state.take_pulled() {
            if g.state.pulled_len() == 0 {
                if let Some(w) = &g.wakeup {
                    w.clear();
                }
            }
            drop(g);
            return NextTask::Task(WorkerTask::of(shared, p));
        }
        if let Some(w) = &g.wakeup {
            w.clear(); // nothing queued (under the lock: no set is lost)
        }
        if deadline.is_some_and(|d| d <= Instant::now()) {
            return NextTask::Timeout;
        }
        g.pull_waiters += 1;
        let timed_out = match deadline {
            None => {
                shared.pull.wait(&mut g);
                false
            }
            Some(d) => shared.pull.wait_until(&mut g, d).timed_out(),
        };
        g.pull_waiters -= 1;
        if timed_out && g.state.pulled_len() == 0 {
            return if shared.is_stopped() {
                NextTask::Stopped
            } else {
                NextTask::Timeout
            };
        }
    }
}

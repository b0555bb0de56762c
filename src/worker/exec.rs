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

type Done = (KeyId, u64, Outcome, f64);

/// Starts the pool threads.
pub(crate) fn spawn_pool(shared: &Arc<Shared>) -> Vec<JoinHandle<()>> {
    (0..shared.threads)
        .map(|i| {
            let s = shared.clone();
            std::thread::Builder::new()
                .name(format!("rask-worker-{i}"))
                .spawn(move || pool_thread(s))
                .expect("spawning a worker thread")
        })
        .collect()
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

fn pool_thread(shared: Arc<Shared>) {
    let mut batch: Vec<ExecTask> = Vec::with_capacity(MAX_BATCH);
    let mut done: Vec<Done> = Vec::with_capacity(MAX_BATCH);
    // Running average of task run times, in nanoseconds.
    let mut avg_ns = 0.0f64;
    loop {
        let mut after = After::default();
        {
            let mut g = shared.core.lock();
            retire(&mut g, &mut done);
            loop {
                if shared.is_stopped() {
                    return;
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
                if MutexGuard::unlocked(&mut g, || spin(&shared)) {
                    continue;
                }
                // Look again under the lock: whoever queues work or stops
                // the worker does so under it before notifying.
                if shared.is_stopped() || g.state.ready_len() > 0 {
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

        let n = batch.len();
        let mut last_flush = Instant::now();
        for (i, t) in batch.drain(..).enumerate() {
            let start = Instant::now();
            let result = catch_unwind(AssertUnwindSafe(|| t.func.call(&t.args)))
                .unwrap_or_else(|p| Err(format!("panicked: {}", panic_message(&*p))));
            let end = Instant::now();
            drop(t.args);
            let outcome = Outcome::of(result);
            let took = end - start;
            avg_ns = 0.8 * avg_ns + 0.2 * took.as_nanos() as f64;
            done.push((t.id, t.seq, outcome, took.as_secs_f64()));
            if i + 1 < n && end - last_flush >= FLUSH_AFTER {
                shared.apply(|s| {
                    for (id, seq, outcome, duration) in done.drain(..) {
                        s.task_done(id, seq, outcome, duration);
                    }
                });
                last_flush = end;
            }
        }
    }
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
/// function.
pub(crate) fn next_task(shared: &Arc<Shared>, timeout: Option<Duration>) -> NextTask {
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut g = shared.core.lock();
    loop {
        if shared.is_stopped() {
            return NextTask::Stopped;
        }
        if let Some(p) = g.state.take_pulled() {
            drop(g);
            return NextTask::Task(WorkerTask {
                shared: shared.clone(),
                id: p.id,
                seq: p.seq,
                key: p.key,
                func: p.func,
                args: p.args,
                started: Instant::now(),
                done: false,
            });
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

//! The executor's machinery; see the module docs of [`crate::local`].

use super::{ComputeError, Computed, Options, Stats};
use crate::graph::{Arg, Graph, KeyId, Node, Plan, LITERAL};
use crate::registry::{FnResult, Function, Registry};
use crate::value::Value;
use crossbeam::utils::{Backoff, CachePadded};
use parking_lot::{Condvar, Mutex};
use std::cell::UnsafeCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicIsize, AtomicU32, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A ready task in a heap: priority in the high half, task id in the low half,
/// so the smallest entry is the most urgent.
type Ready = Reverse<u64>;

fn ready(plan: &Plan, t: u32) -> Ready {
    Reverse(((plan.priority[t as usize] as u64) << 32) | t as u64)
}

fn task_of(r: Ready) -> u32 {
    r.0 as u32
}

const RUNNING: u8 = 0;
const DONE: u8 = 1;
const FAILED: u8 = 2;

/// Most tasks a thread takes from the shared heap at once.
const MAX_BATCH: usize = 32;
/// Spin rounds (crossbeam `Backoff` snoozes) before sleeping.
const SPIN_ROUNDS: u32 = 12;

/// A task's result. Written once by the thread that ran the task, before it
/// decrements its dependents' counters (release); read by those dependents
/// after their counter reached zero (acquire, then through a queue); taken
/// by the last of them, after every other reader has decremented the
/// result's use counter. These counters order every access.
struct Slot(UnsafeCell<Option<Value>>);
// SAFETY: see the protocol above; no two threads access a slot unordered.
unsafe impl Sync for Slot {}

struct Queue {
    heap: BinaryHeap<Ready>,
    sleepers: usize,
}

pub(super) struct Shared {
    graph: Arc<Graph>,
    plan: Plan,
    /// Indexed by `FuncId`; `None` for functions the plan does not use.
    funcs: Vec<Option<Function>>,
    threads: usize,
    deps_left: Box<[AtomicU32]>,
    uses_left: Box<[AtomicU32]>,
    slots: Box<[Slot]>,
    queue: Mutex<Queue>,
    /// `queue.heap.len()`, readable without the lock (a hint for spinners).
    queued: CachePadded<AtomicUsize>,
    /// `queue.sleepers`, readable without the lock.
    sleeping: CachePadded<AtomicUsize>,
    wake: Condvar,
    pull: Mutex<BinaryHeap<Ready>>,
    pull_wake: Condvar,
    /// Tasks not yet finished (threads retire finished tasks in batches).
    outstanding: CachePadded<AtomicUsize>,
    state: AtomicU8,
    error: Mutex<Option<ComputeError>>,
    done_lock: Mutex<()>,
    done_wake: Condvar,
    live: CachePadded<AtomicIsize>,
    peak_live: AtomicUsize,
    tasks_run: AtomicUsize,
}

impl Shared {
    fn new(
        graph: &Arc<Graph>,
        outputs: &[KeyId],
        registry: &Registry,
        options: &Options,
    ) -> Result<Shared, ComputeError> {
        let plan = graph.plan(outputs)?;
        let mut funcs: Vec<Option<Function>> = vec![None; graph.func_names().len()];
        for &k in &plan.keys {
            if let Some(Node::Task(spec)) = graph.node(k) {
                let slot = &mut funcs[spec.func.0 as usize];
                if slot.is_none() {
                    let name = graph.func_name(spec.func);
                    *slot = Some(registry.resolve(name).ok_or_else(|| {
                        ComputeError::UnknownFunction {
                            func: name.to_owned(),
                            key: graph.key_name(k).to_owned(),
                        }
                    })?);
                }
            }
        }
        let n = plan.len();
        let deps_left = (0..n as u32)
            .map(|t| AtomicU32::new(plan.deps_of(t).len() as u32))
            .collect();
        let uses_left = (0..n as u32)
            .map(|t| AtomicU32::new(plan.dependents_of(t).len() as u32))
            .collect();
        let slots = (0..n).map(|_| Slot(UnsafeCell::new(None))).collect();
        let shared = Shared {
            graph: graph.clone(),
            funcs,
            threads: options.thread_count(),
            deps_left,
            uses_left,
            slots,
            queue: Mutex::new(Queue {
                heap: BinaryHeap::new(),
                sleepers: 0,
            }),
            queued: CachePadded::new(AtomicUsize::new(0)),
            sleeping: CachePadded::new(AtomicUsize::new(0)),
            wake: Condvar::new(),
            pull: Mutex::new(BinaryHeap::new()),
            pull_wake: Condvar::new(),
            outstanding: CachePadded::new(AtomicUsize::new(n)),
            state: AtomicU8::new(if n == 0 { DONE } else { RUNNING }),
            error: Mutex::new(None),
            done_lock: Mutex::new(()),
            done_wake: Condvar::new(),
            live: CachePadded::new(AtomicIsize::new(0)),
            peak_live: AtomicUsize::new(0),
            tasks_run: AtomicUsize::new(0),
            plan,
        };
        // Seed: every task without dependencies is ready.
        {
            let mut q = shared.queue.lock();
            let mut p = shared.pull.lock();
            for t in 0..n as u32 {
                if shared.plan.deps_of(t).is_empty() {
                    if shared.is_pulled(t) {
                        p.push(ready(&shared.plan, t));
                    } else {
                        q.heap.push(ready(&shared.plan, t));
                    }
                }
            }
            shared.queued.store(q.heap.len(), Ordering::Relaxed);
        }
        Ok(shared)
    }

    fn spec(&self, t: u32) -> &crate::graph::TaskSpec {
        match self.graph.node(self.plan.keys[t as usize]) {
            Some(Node::Task(s)) => s,
            _ => unreachable!("plan tasks are task nodes"),
        }
    }

    fn func(&self, t: u32) -> &Function {
        self.funcs[self.spec(t).func.0 as usize]
            .as_ref()
            .expect("resolved in Shared::new")
    }

    fn is_pulled(&self, t: u32) -> bool {
        self.func(t).is_pulled()
    }

    fn running(&self) -> bool {
        self.state.load(Ordering::Acquire) == RUNNING
    }

    /// The value of an argument. Dependencies must have finished.
    fn resolve(&self, a: &Arg) -> Value {
        match a {
            Arg::Value(v) => v.clone(),
            Arg::Ref(k) => {
                let l = self.plan.local[k.0 as usize];
                if l == LITERAL {
                    match self.graph.node(*k) {
                        Some(Node::Value(v)) => v.clone(),
                        _ => unreachable!("LITERAL marks literal nodes"),
                    }
                } else {
                    // SAFETY: the task reading this is ready, so the
                    // dependency's result is written and not yet taken.
                    unsafe { (*self.slots[l as usize].0.get()).clone() }
                        .expect("a dependency's result is present while a dependent reads it")
                }
            }
            Arg::List(items) => Value::Array(items.iter().map(|a| self.resolve(a)).collect()),
            Arg::Map(items) => Value::Map(
                items
                    .iter()
                    .map(|(k, a)| (k.clone(), self.resolve(a)))
                    .collect(),
            ),
        }
    }

    /// Builds the arguments of ready task `t` and releases the results no
    /// one else needs. Returns the arguments and the change in live results.
    fn take_args(&self, t: u32) -> (Vec<Value>, isize) {
        let args: Vec<Value> = self.spec(t).args.iter().map(|a| self.resolve(a)).collect();
        let mut freed = 0;
        for &d in self.plan.deps_of(t) {
            if self.uses_left[d as usize].fetch_sub(1, Ordering::AcqRel) == 1
                && !self.plan.is_output[d as usize]
            {
                // SAFETY: every other reader of `d` has decremented its use
                // count before us, after reading.
                unsafe { *self.slots[d as usize].0.get() = None };
                freed += 1;
            }
        }
        (args, -freed)
    }

    /// Stores the result of `t` and hands every dependent it made ready to
    /// `push` (Rust tasks) or to the pull queue (pulled tasks). Returns the
    /// change in live results.
    fn store(&self, t: u32, v: Value, push: &mut impl FnMut(Ready)) -> isize {
        // SAFETY: only the thread that ran `t` writes its slot, before any
        // dependent can read it.
        unsafe { *self.slots[t as usize].0.get() = Some(v) };
        let mut pulled = 0;
        for &d in self.plan.dependents_of(t) {
            if self.deps_left[d as usize].fetch_sub(1, Ordering::AcqRel) == 1 {
                if self.is_pulled(d) {
                    self.pull.lock().push(ready(&self.plan, d));
                    pulled += 1;
                } else {
                    push(ready(&self.plan, d));
                }
            }
        }
        if pulled > 0 {
            self.pull_wake.notify_all();
        }
        1
    }

    fn account_live(&self, delta: isize) {
        if delta == 0 {
            return;
        }
        let now = self.live.fetch_add(delta, Ordering::Relaxed) + delta;
        if now > 0 && now as usize > self.peak_live.load(Ordering::Relaxed) {
            self.peak_live.fetch_max(now as usize, Ordering::Relaxed);
        }
    }

    /// Records that `n` tasks finished; the last one ends the computation.
    fn retire(&self, n: usize) {
        if n == 0 {
            return;
        }
        self.tasks_run.fetch_add(n, Ordering::Relaxed);
        if self.outstanding.fetch_sub(n, Ordering::AcqRel) == n {
            self.finish(DONE);
        }
    }

    fn fail(&self, e: ComputeError) {
        {
            let mut err = self.error.lock();
            if err.is_none() {
                *err = Some(e);
            }
        }
        self.finish(FAILED);
    }

    fn finish(&self, state: u8) {
        if self
            .state
            .compare_exchange(RUNNING, state, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        // Take each lock before notifying so no waiter misses the change.
        drop(self.queue.lock());
        self.wake.notify_all();
        drop(self.pull.lock());
        self.pull_wake.notify_all();
        drop(self.done_lock.lock());
        self.done_wake.notify_all();
    }

    /// Runs a Rust task; returns the change in live results, or `None` if
    /// it failed (the computation is then stopped).
    fn run(&self, t: u32, push: &mut impl FnMut(Ready)) -> Option<isize> {
        let (args, mut delta) = self.take_args(t);
        let f = self.func(t);
        let result = catch_unwind(AssertUnwindSafe(|| f.call(&args)))
            .unwrap_or_else(|p| Err(format!("panicked: {}", panic_message(&p))));
        drop(args);
        match result {
            Ok(v) => {
                delta += self.store(t, v, push);
                Some(delta)
            }
            Err(message) => {
                self.task_failed(t, message);
                None
            }
        }
    }

    fn task_failed(&self, t: u32, message: String) {
        self.fail(ComputeError::TaskFailed {
            key: self.graph.key_name(self.plan.keys[t as usize]).to_owned(),
            func: self.graph.func_name(self.spec(t).func).to_owned(),
            message,
        });
    }

    /// Takes a batch from the shared heap into `local`, waiting for work.
    /// Returns `false` when the computation has ended.
    fn refill(&self, local: &mut BinaryHeap<Ready>) -> bool {
        // Spin first: sleeping and being woken costs far more than a few
        // rounds of polling when work is about to arrive.
        let backoff = Backoff::new();
        for _ in 0..SPIN_ROUNDS {
            if !self.running() {
                return false;
            }
            if self.queued.load(Ordering::Relaxed) > 0
                && self.take_batch(&mut self.queue.lock(), local)
            {
                return true;
            }
            backoff.snooze();
        }
        let mut q = self.queue.lock();
        loop {
            if !self.running() {
                return false;
            }
            if self.take_batch(&mut q, local) {
                return true;
            }
            q.sleepers += 1;
            self.sleeping.fetch_add(1, Ordering::Relaxed);
            self.wake.wait(&mut q);
            q.sleepers -= 1;
            self.sleeping.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Moves up to a fair share of the shared heap (at most [`MAX_BATCH`])
    /// into `local`. Returns whether it moved anything.
    fn take_batch(&self, q: &mut Queue, local: &mut BinaryHeap<Ready>) -> bool {
        let len = q.heap.len();
        if len == 0 {
            return false;
        }
        let take = (len / self.threads).clamp(1, MAX_BATCH);
        for _ in 0..take {
            local.push(q.heap.pop().unwrap());
        }
        self.queued.store(q.heap.len(), Ordering::Relaxed);
        true
    }

    /// Moves ready tasks to the shared heap, waking sleepers.
    fn publish(&self, tasks: impl IntoIterator<Item = Ready>) {
        let mut q = self.queue.lock();
        q.heap.extend(tasks);
        self.queued.store(q.heap.len(), Ordering::Relaxed);
        let sleepers = q.sleepers;
        drop(q);
        if sleepers > 0 {
            self.wake.notify_all();
        }
    }

    /// The loop every executor thread runs. `want_help`, if given, is
    /// called (once) the first time this thread holds more than one ready
    /// task: [`compute`] starts its helper threads only then, so a chain or
    /// a one-task graph never pays for starting threads it cannot use.
    fn work(&self, mut want_help: Option<&mut dyn FnMut()>) {
        let mut local: BinaryHeap<Ready> = BinaryHeap::new();
        let mut finished = 0usize;
        let mut live = 0isize;
        loop {
            let r = match local.pop() {
                Some(r) => r,
                None => {
                    self.account_live(std::mem::take(&mut live));
                    self.retire(std::mem::take(&mut finished));
                    if !self.refill(&mut local) {
                        break;
                    }
                    continue;
                }
            };
            if !self.running() {
                break;
            }
            match self.run(task_of(r), &mut |d| local.push(d)) {
                Some(delta) => live += delta,
                None => break,
            }
            finished += 1;
            // Flush the live count now and then so the peak stays exact
            // to within a few tasks per thread.
            if finished % 64 == 0 {
                self.account_live(std::mem::take(&mut live));
            }
            let help_arrives = local.len() > 1 && want_help.is_some();
            if help_arrives {
                (want_help.take().unwrap())();
            }
            if local.len() > 1 && (help_arrives || self.sleeping.load(Ordering::Relaxed) > 0) {
                let keep = local.pop().unwrap();
                let give = local.len().div_ceil(2);
                let mut out = Vec::with_capacity(give);
                for _ in 0..give {
                    out.push(local.pop().unwrap());
                }
                local.push(keep);
                self.publish(out);
            }
        }
        self.account_live(live);
        if self.running() {
            self.retire(finished);
        }
    }

    fn wait_done(&self, timeout: Option<Duration>) -> bool {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut g = self.done_lock.lock();
        while self.running() {
            match deadline {
                None => self.done_wake.wait(&mut g),
                Some(d) => {
                    if self.done_wake.wait_until(&mut g, d).timed_out() {
                        return !self.running();
                    }
                }
            }
        }
        true
    }

    fn stats(&self) -> Stats {
        Stats {
            tasks: self.plan.len(),
            tasks_run: self.tasks_run.load(Ordering::Relaxed),
            peak_live: self.peak_live.load(Ordering::Relaxed),
        }
    }

    fn outcome(&self) -> Result<Vec<Value>, ComputeError> {
        match self.state.load(Ordering::Acquire) {
            DONE => {}
            FAILED => return Err(self.error.lock().clone().unwrap_or(ComputeError::Cancelled)),
            _ => unreachable!("outcome() of a running computation"),
        }
        Ok(self
            .plan
            .outputs
            .iter()
            .map(|&k| self.resolve(&Arg::Ref(k)))
            .collect())
    }
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".into()
    }
}

pub(super) fn compute(
    graph: &Arc<Graph>,
    outputs: &[KeyId],
    registry: &Registry,
    options: &Options,
) -> Result<Computed, ComputeError> {
    let shared = Shared::new(graph, outputs, registry, options)?;
    if shared.running() {
        let helpers = shared.threads.saturating_sub(1);
        std::thread::scope(|s| {
            let shared = &shared;
            let mut spawn = || {
                for _ in 0..helpers {
                    s.spawn(move || shared.work(None));
                }
            };
            if helpers == 0 {
                shared.work(None);
            } else if shared.queued.load(Ordering::Relaxed) > 1 {
                spawn();
                shared.work(None);
            } else {
                shared.work(Some(&mut spawn));
            }
            // Pulled tasks may still be out with host threads.
            shared.wait_done(None);
        });
    }
    let values = shared.outcome()?;
    Ok(Computed {
        values,
        stats: shared.stats(),
    })
}

/// A computation running in the background. Dropping it cancels it and
/// waits for its threads.
pub struct Computation {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

/// What [`Computation::next_task`] found.
pub enum NextTask {
    /// A task of a pulled function, to run and complete.
    Task(PulledTask),
    /// No pulled task became ready within the timeout.
    Timeout,
    /// The computation has ended (finished, failed or cancelled): no more
    /// tasks will come.
    Done,
}

impl Computation {
    /// Starts computing `outputs` on `options.threads` new threads.
    pub fn start(
        graph: &Arc<Graph>,
        outputs: &[KeyId],
        registry: &Registry,
        options: &Options,
    ) -> Result<Computation, ComputeError> {
        let shared = Arc::new(Shared::new(graph, outputs, registry, options)?);
        let threads = if shared.running() {
            (0..shared.threads)
                .map(|i| {
                    let s = shared.clone();
                    std::thread::Builder::new()
                        .name(format!("rask-local-{i}"))
                        .spawn(move || s.work(None))
                        .expect("spawning an executor thread")
                })
                .collect()
        } else {
            Vec::new()
        };
        Ok(Computation { shared, threads })
    }

    /// The next ready task of a pulled function, waiting up to `timeout`
    /// (forever for `None`). Any number of threads may call this at once.
    pub fn next_task(&self, timeout: Option<Duration>) -> NextTask {
        next_task(&self.shared, timeout)
    }

    /// Up to `max` (at least 1) ready tasks of pulled functions at once:
    /// waits up to `timeout` for the first (as [`next_task`](Self::next_task)),
    /// then takes the others that are ready now. `Err` is the
    /// [`NextTask::Timeout`] or [`NextTask::Done`] that came instead.
    pub fn next_tasks(
        &self,
        max: usize,
        timeout: Option<Duration>,
    ) -> Result<Vec<PulledTask>, NextTask> {
        let first = match next_task(&self.shared, timeout) {
            NextTask::Task(t) => t,
            other => return Err(other),
        };
        let shared = &self.shared;
        let more: Vec<u32> = {
            let mut p = shared.pull.lock();
            let mut v = Vec::new();
            while v.len() + 1 < max {
                match p.pop() {
                    Some(r) => v.push(task_of(r)),
                    None => break,
                }
            }
            v
        };
        let mut out = Vec::with_capacity(more.len() + 1);
        out.push(first);
        for t in more {
            let (args, delta) = shared.take_args(t);
            shared.account_live(delta);
            out.push(PulledTask {
                shared: shared.clone(),
                task: t,
                args,
                done: false,
            });
        }
        Ok(out)
    }

    /// Waits until the computation ends, up to `timeout`. `Ok(true)` when
    /// it finished, `Ok(false)` on timeout, the error if it failed.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<bool, ComputeError> {
        if !self.shared.wait_done(timeout) {
            return Ok(false);
        }
        self.shared.outcome().map(|_| true)
    }

    /// Whether the computation has ended.
    pub fn is_done(&self) -> bool {
        !self.shared.running()
    }

    /// The requested values, once the computation has finished: waits for
    /// it, then returns the values or the error.
    pub fn results(&self) -> Result<Vec<Value>, ComputeError> {
        self.shared.wait_done(None);
        self.shared.outcome()
    }

    /// Stops the computation: no new task starts; running ones finish and
    /// are discarded. `wait` then reports [`ComputeError::Cancelled`].
    pub fn cancel(&self) {
        self.shared.fail(ComputeError::Cancelled);
    }

    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }
}

impl Drop for Computation {
    fn drop(&mut self) {
        self.cancel();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn next_task(shared: &Arc<Shared>, timeout: Option<Duration>) -> NextTask {
    let deadline = timeout.map(|t| Instant::now() + t);
    let t = {
        let mut p = shared.pull.lock();
        loop {
            if !shared.running() {
                return NextTask::Done;
            }
            if let Some(r) = p.pop() {
                break task_of(r);
            }
            match deadline {
                None => shared.pull_wake.wait(&mut p),
                Some(d) => {
                    if shared.pull_wake.wait_until(&mut p, d).timed_out() && p.is_empty() {
                        return if shared.running() {
                            NextTask::Timeout
                        } else {
                            NextTask::Done
                        };
                    }
                }
            }
        }
    };
    let (args, delta) = shared.take_args(t);
    shared.account_live(delta);
    NextTask::Task(PulledTask {
        shared: shared.clone(),
        task: t,
        args,
        done: false,
    })
}

/// A task of a pulled function, handed to the host. Complete it with
/// [`PulledTask::complete`]; dropping it uncompleted fails the computation
/// ("abandoned").
pub struct PulledTask {
    shared: Arc<Shared>,
    task: u32,
    args: Vec<Value>,
    done: bool,
}

impl PulledTask {
    /// The task's key.
    pub fn key(&self) -> &str {
        self.shared
            .graph
            .key_name(self.shared.plan.keys[self.task as usize])
    }

    /// The function to run.
    pub fn func(&self) -> &str {
        self.shared
            .graph
            .func_name(self.shared.spec(self.task).func)
    }

    /// The arguments, resolved.
    pub fn args(&self) -> &[Value] {
        &self.args
    }

    /// Hands the result back. Returns `false` if the computation had already
    /// ended (failed or cancelled), in which case the result is dropped.
    pub fn complete(mut self, result: FnResult) -> bool {
        self.done = true;
        let s = &self.shared;
        if !s.running() {
            return false;
        }
        match result {
            Ok(v) => {
                let mut made_ready = Vec::new();
                let delta = s.store(self.task, v, &mut |r| made_ready.push(r));
                s.account_live(delta);
                if !made_ready.is_empty() {
                    s.publish(made_ready);
                }
                s.retire(1);
                true
            }
            Err(message) => {
                s.task_failed(self.task, message);
                true
            }
        }
    }
}

impl Drop for PulledTask {
    fn drop(&mut self) {
        if !self.done && self.shared.running() {
            self.shared
                .task_failed(self.task, "the task was dropped without a result".into());
        }
    }
}

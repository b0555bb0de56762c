//! What the worker's threads and tasks share: the core under one lock, the
//! condition variables pool and host threads sleep on, the scheduler's
//! outbox, the pooled peer connections, and the stop signal.
//!
//! Every stimulus goes through [`Shared::apply`]: lock, call the core,
//! send the messages it decided (under the lock, so the scheduler sees them
//! in the order the core decided them; a send only queues), unlock, then
//! start fetches and wake the threads that have work.

use super::state::{Action, WorkerState};
use super::WorkerConfig;
use crate::protocol::conn::Outbox;
use crate::protocol::{Limits, Message};
use crossbeam::utils::CachePadded;
use parking_lot::{Condvar, Mutex};
use rustc_hash::FxHashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// The core and what is guarded with it.
pub(crate) struct Core {
    pub state: WorkerState,
    /// `None` once the worker has stopped.
    pub scheduler: Option<Outbox>,
    /// Pool threads asleep on [`Shared::work`].
    pub sleepers: usize,
    /// Host threads asleep on [`Shared::pull`].
    pub pull_waiters: usize,
    /// Pool threads holding a slot (at most `threads`, see "Seceded tasks"
    /// in `exec`): a thread whose task seceded holds none.
    pub pool_active: usize,
    /// Seceded pool tasks waiting in `rejoin` for a slot.
    pub rejoining: usize,
    /// The rest of a seceding thread's batch, for the thread started to
    /// take over its slot.
    pub handoffs: Vec<std::collections::VecDeque<super::state::ExecTask>>,
    /// Spare pool threads (they lost their slot: a seceded task ended, or
    /// a rejoining one took it) parked on [`Shared::spare`] and not yet
    /// claimed by a seceding task.
    pub spares: usize,
    /// Slots (with the rest of the seceding thread's batch) handed to
    /// spare threads: a spare thread that wakes takes one.
    pub spare_handoffs: Vec<std::collections::VecDeque<super::state::ExecTask>>,
    /// The host's waitable descriptor, once asked for
    /// ([`super::WorkerHandle::wait_fd`]): set while tasks of pulled
    /// functions may be queued, or the worker stopped.
    pub wakeup: Option<Arc<crate::wakeup::Wakeup>>,
    scratch: Vec<Action>,
    /// `RASK_VALIDATE`: checks the state's invariants after each step
    /// (see [`crate::invariants`]).
    checker: crate::invariants::Checker,
}

/// What to do once the lock is released.
#[derive(Default)]
pub(crate) struct After {
    pub fetches: Vec<(String, Vec<String>)>,
    /// Pool threads to wake.
    pub wake: usize,
    /// Host threads to wake.
    pub wake_pull: usize,
}

impl After {
    pub fn is_empty(&self) -> bool {
        self.fetches.is_empty() && self.wake == 0 && self.wake_pull == 0
    }
}

impl Core {
    /// Ends a step: (with `RASK_VALIDATE`) checks the state's invariants,
    /// sends the core's messages and notes what to do after unlocking.
    pub fn flush(&mut self, after: &mut After) {
        let state = &self.state;
        self.checker
            .after_step(state.key_count(), || state.validate());
        self.state.drain_actions(&mut self.scratch);
        let mut delivered = 0;
        let mut sends = Vec::new();
        for a in self.scratch.drain(..) {
            match a {
                Action::Send(m) => sends.push(m),
                Action::Fetch { peer, keys } => after.fetches.push((peer, keys)),
                Action::Execute(_) => {}
                Action::Deliver(n) => delivered += n,
            }
        }
        // One channel operation (one writer wakeup) for all of them.
        if let Some(o) = &self.scheduler {
            o.send_many(sends);
        }
        // Wake as many sleeping pool threads as there are queued tasks
        // (running threads take the rest when they come back).
        after.wake = self.state.ready_len().min(self.sleepers);
        after.wake_pull = delivered.min(self.pull_waiters);
        if delivered > 0 {
            if let Some(w) = &self.wakeup {
                w.set();
            }
        }
    }
}

/// A peer link's request channel and its generation.
type PeerLink = (u64, mpsc::UnboundedSender<Vec<String>>);

pub(crate) struct Shared {
    pub core: Mutex<Core>,
    /// Pool threads sleep here.
    pub work: Condvar,
    /// Host threads waiting in `next_task` sleep here.
    pub pull: Condvar,
    /// Seceded pool tasks waiting in `rejoin` sleep here.
    pub slots: Condvar,
    /// Spare pool threads sleep here (see `Core::spares`).
    pub spare: Condvar,
    /// The client of this worker's tasks (see [`Shared::task_client`]).
    task_client: Mutex<Option<crate::client::Client>>,
    /// `state.ready_len()` after the last change, readable without the
    /// lock (what spinning pool threads watch).
    pub ready_hint: CachePadded<AtomicUsize>,
    pub stopped: AtomicBool,
    /// Stopped by the host or by the scheduler's `close` (not by a lost
    /// connection).
    pub clean: AtomicBool,
    pub threads: usize,
    pub id: AtomicU64,
    pub name: String,
    pub address: String,
    pub token: Option<String>,
    /// TLS for the data port and for `tls://` peers.
    pub tls: Option<crate::protocol::TlsConfig>,
    pub limits: Limits,
    pub connect_timeout: Duration,
    /// One link (a task owning a connection) per peer data address.
    pub peers: Mutex<FxHashMap<String, PeerLink>>,
    next_link: AtomicU64,
    pub shutdown: watch::Sender<bool>,
    pub stop_reason: Mutex<Option<String>>,
    pub stop_cv: Condvar,
    /// The scheduler's address, to reconnect to.
    pub scheduler_address: String,
    /// See [`WorkerConfig::reconnect_timeout`].
    pub reconnect_timeout: Duration,
    /// The `register-worker` to send again after reconnecting.
    pub registration: Message,
    /// The scheduler's outbox once [`Shared::stop`] closed it: what
    /// [`super::WorkerHandle::stop`] waits on, so the last messages (the
    /// `close`) are written before the process can exit.
    pub closing: Mutex<Option<Outbox>>,
    /// The worker's spill directory, if it has one.
    pub spill_dir: Option<std::path::PathBuf>,
    /// Asks the scheduler loop to restart the worker (memory over the
    /// terminate fraction).
    pub restart: tokio::sync::Notify,
    /// Restarts so far (memory over the terminate fraction).
    pub restarts: AtomicU64,
}

impl Shared {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: &WorkerConfig,
        state: WorkerState,
        name: String,
        address: String,
        threads: usize,
        scheduler: Option<Outbox>,
        registration: Message,
        spill_dir: Option<std::path::PathBuf>,
    ) -> Shared {
        // Host threads (pulled tasks ending, seceding) and pool threads
        // write their messages to the scheduler themselves when the writer
        // is idle (see `Outbox::set_direct`): a wake of the writer saved.
        if let Some(o) = &scheduler {
            o.set_direct(true);
        }
        Shared {
            core: Mutex::new(Core {
                state,
                scheduler,
                sleepers: 0,
                pull_waiters: 0,
                pool_active: threads,
                rejoining: 0,
                handoffs: Vec::new(),
                spares: 0,
                spare_handoffs: Vec::new(),
                wakeup: None,
                scratch: Vec::new(),
                checker: crate::invariants::Checker::new("worker"),
            }),
            work: Condvar::new(),
            slots: Condvar::new(),
            spare: Condvar::new(),
            task_client: Mutex::new(None),
            pull: Condvar::new(),
            ready_hint: CachePadded::new(AtomicUsize::new(0)),
            stopped: AtomicBool::new(false),
            clean: AtomicBool::new(false),
            threads,
            id: AtomicU64::new(0),
            name,
            address,
            token: config.token.clone(),
            tls: config.tls.clone(),
            limits: config.limits,
            connect_timeout: config.connect_timeout,
            peers: Mutex::new(FxHashMap::default()),
            next_link: AtomicU64::new(0),
            shutdown: watch::channel(false).0,
            stop_reason: Mutex::new(None),
            stop_cv: Condvar::new(),
            scheduler_address: config.scheduler.clone(),
            reconnect_timeout: config.reconnect_timeout,
            registration,
            closing: Mutex::new(None),
            spill_dir,
            restart: tokio::sync::Notify::new(),
            restarts: AtomicU64::new(0),
        }
    }

    /// The client of this worker's tasks: one connection to the
    /// worker's scheduler, made on first use (with the worker's token and
    /// TLS), shared by every task (the clones share it), its graphs sent
    /// with `from_task` (see docs/protocol.md, `update-graph`). Dropped
    /// when the worker stops. Must not be called on a thread of the tokio
    /// runtime (connecting blocks).
    pub fn task_client(&self) -> Result<crate::client::Client, crate::client::ClientError> {
        use crate::client::{Client, ClientConfig, ClientError};
        if self.is_stopped() {
            return Err(ClientError::ConnectionClosed(format!(
                "worker {} has stopped: its tasks have no client",
                self.name
            )));
        }
        let mut slot = self.task_client.lock();
        if let Some(c) = slot.as_ref() {
            if c.closed_reason().is_none() {
                return Ok(c.clone());
            }
        }
        let c = Client::connect(
            &self.scheduler_address,
            ClientConfig {
                name: format!("{}-tasks", self.name),
                token: self.token.clone(),
                tls: self.tls.clone(),
                from_task: true,
                ..ClientConfig::default()
            },
        )?;
        *slot = Some(c.clone());
        Ok(c)
    }

    /// Waits (blocking) until the writer of the scheduler connection
    /// closed by [`Self::stop`] has written everything and ended, for at
    /// most `timeout` (a scheduler that reads nothing must not hold the
    /// worker). Returns at once on a thread of a tokio runtime, where it
    /// must not block, and when there is no such connection.
    pub fn wait_flushed(&self, timeout: Duration) {
        let Some(o) = self.closing.lock().clone() else {
            return;
        };
        if o.is_closed() || tokio::runtime::Handle::try_current().is_ok() {
            return;
        }
        crate::runtime::block_on(async {
            if tokio::time::timeout(timeout, o.flushed()).await.is_err() {
                tracing::warn!(
                    worker = %self.name,
                    "the last messages to the scheduler were not written within {} s",
                    timeout.as_secs_f64()
                );
            }
        });
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Runs `f` on the core (see the module docs).
    pub fn apply<R>(self: &Arc<Self>, f: impl FnOnce(&mut WorkerState) -> R) -> R {
        self.apply_with(true, f)
    }

    /// [`apply`](Self::apply); with `wake_pool` false, tasks it makes ready
    /// do not wake sleeping pool threads (the caller will run them, or
    /// wake them, itself).
    pub fn apply_with<R>(
        self: &Arc<Self>,
        wake_pool: bool,
        f: impl FnOnce(&mut WorkerState) -> R,
    ) -> R {
        let mut after = After::default();
        let r = {
            let mut g = self.core.lock();
            let r = f(&mut g.state);
            g.flush(&mut after);
            self.ready_hint
                .store(g.state.ready_len(), Ordering::Relaxed);
            r
        };
        if !wake_pool {
            after.wake = 0;
        }
        self.after(after);
        r
    }

    /// Starts fetches and wakes threads; call without the lock.
    pub fn after(self: &Arc<Self>, after: After) {
        for (peer, keys) in after.fetches {
            self.fetch(peer, keys);
        }
        notify(&self.work, after.wake);
        notify(&self.pull, after.wake_pull);
    }

    /// Hands `keys` to the link for `peer`, starting one if needed.
    fn fetch(self: &Arc<Self>, peer: String, keys: Vec<String>) {
        if self.is_stopped() {
            return;
        }
        let mut peers = self.peers.lock();
        let keys = match peers.get(&peer) {
            Some((_, tx)) => match tx.send(keys) {
                Ok(()) => return,
                Err(e) => e.0, // the link is ending; start another
            },
            None => keys,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        tx.send(keys).expect("the receiver is here");
        let generation = self.next_link.fetch_add(1, Ordering::Relaxed);
        peers.insert(peer.clone(), (generation, tx));
        drop(peers);
        crate::runtime::handle().spawn(super::server::peer_link(
            self.clone(),
            peer,
            generation,
            rx,
        ));
    }

    /// Forgets the link `generation` for `peer` if it is still registered.
    pub fn unregister_link(&self, peer: &str, generation: u64) {
        let mut peers = self.peers.lock();
        if peers.get(peer).is_some_and(|(g, _)| *g == generation) {
            peers.remove(peer);
        }
    }

    /// Stops the worker: no task starts any more, threads waiting for work
    /// return, network tasks end. With `tell_scheduler`, a `close` is sent
    /// first. `clean`: stopped on purpose, not by a failure. Idempotent.
    pub fn stop(&self, reason: String, tell_scheduler: bool, clean: bool) {
        if self.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        self.clean.store(clean, Ordering::Release);
        tracing::info!(worker = %self.name, %reason, "stopping");
        {
            let mut g = self.core.lock();
            if let Some(o) = g.scheduler.take() {
                if tell_scheduler {
                    o.send(Message::Close {
                        reason: reason.clone(),
                    });
                }
                // The writer writes what is queued, then ends the stream
                // (other clones of the outbox, such as the scheduler
                // loop's, would keep it open otherwise).
                o.close();
                *self.closing.lock() = Some(o);
            }
            // Nothing is served any more: the spill files go now (running
            // tasks' results are discarded).
            g.state.close_store();
            // A host waiting on the descriptor wakes to hear it stopped.
            if let Some(w) = &g.wakeup {
                w.set();
            }
        }
        self.work.notify_all();
        self.pull.notify_all();
        self.slots.notify_all();
        self.spare.notify_all();
        // Closed, not only dropped (handles given to tasks keep clones):
        // a task still waiting on a future of it (a seceded task, or a
        // recomputation the stop started) gets an error instead of waiting
        // forever, and the pool can be joined.
        if let Some(c) = self.task_client.lock().take() {
            c.close();
        }
        self.peers.lock().clear();
        // `send` would not store the value while nobody is subscribed.
        self.shutdown.send_replace(true);
        *self.stop_reason.lock() = Some(reason);
        self.stop_cv.notify_all();
    }
}

fn notify(cv: &Condvar, n: usize) {
    for _ in 0..n {
        cv.notify_one();
    }
}

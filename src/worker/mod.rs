//! The worker: joins a cluster, runs the tasks the scheduler sends it, and
//! serves its data to peers and clients.
//!
//! ```no_run
//! use rask::worker::{Worker, WorkerConfig};
//! use rask::Registry;
//!
//! let mut registry = Registry::new();
//! registry.register("double", |a| Ok(rask::Value::Int(a[0].as_i64().unwrap() * 2))).unwrap();
//! let worker = Worker::start(WorkerConfig::new("tcp://127.0.0.1:8786"), registry).unwrap();
//! println!("serving data on {}", worker.data_address());
//! worker.wait(); // until the scheduler closes it
//! ```
//!
//! # Parts
//!
//! - [`state`]: the sans-I/O core. Every decision (which dependencies to
//!   fetch from whom, when a task is ready, what to tell the scheduler,
//!   what `free-keys` drops) is a plain function over plain state, unit
//!   tested without sockets. Its docs describe the key states.
//! - [`store`]: the values held and their byte count (the seam for
//!   spilling to disk later).
//! - [`exec`]: the pool of `threads` threads running builtins and native
//!   functions (Rust closures, C callbacks), batch by batch, and the pull
//!   mode through which host threads run pulled functions
//!   ([`WorkerHandle::next_task`]). Cheap tasks (builtins on small
//!   arguments) are run by the I/O thread that received them, within a
//!   time budget, instead of waking a pool thread: on this 2-CPU machine
//!   that doubles end-to-end no-op throughput with the scheduler's small
//!   per-worker backlog (≈45k → ≈95k tasks/s for 2 workers), since a
//!   sleeping thread on the other CPU takes tens of microseconds to wake.
//! - `server`: tokio tasks on the shared runtime ([`crate::runtime`]):
//!   the scheduler connection, heartbeats, the data port, and one pooled
//!   connection per peer for fetches.
//! - [`plugin`]: loading shared libraries that register C functions.
//!
//! The core sits behind one mutex. Every stimulus (a batch of scheduler
//! messages, a batch of finished tasks, a fetched value, a `put-data`)
//! takes it once, and the messages the core decides are queued on the
//! scheduler's outbox under that lock, so they leave in the order they
//! were decided; the outbox coalesces whatever is queued into one write.
//!
//! # The protocol as this worker reads it
//!
//! - After `welcome` it sends `register-worker` with its data address, its
//!   thread count, every function name of its registry (builtins
//!   included) and its memory limit, then a `heartbeat` every
//!   `heartbeat_interval` (tasks executing, bytes held).
//! - `compute-task`: dependencies held here are used directly; others are
//!   fetched from a holder named in `who_has` (never from itself), one
//!   `get-data` per peer for all the keys wanted from it at once. A
//!   holder that lacks a key, or cannot be reached, is followed by the
//!   next one; when none is left the worker sends `missing-data` for the
//!   task and forgets it, and the scheduler sends `compute-task` again
//!   once it has found or recomputed the data. Fetched keys are announced
//!   with `add-keys` and kept until `free-keys`.
//! - Results are kept in memory and announced with `task-finished`
//!   (`nbytes` is [`Value::size_estimate`](crate::Value::size_estimate);
//!   `value` carries the msgpack encoding when it is at most 1 KiB), or
//!   `task-erred` with a message that starts with the function's name. A
//!   panic in a Rust function is caught and reported the same way.
//! - `free-keys` deletes data and drops queued tasks; a running task's
//!   result is discarded.
//! - `close` from the scheduler stops the worker (cleanly).
//!   [`WorkerHandle::stop`] sends `close` to the scheduler first.
//! - The connection to the scheduler ending otherwise (the scheduler died,
//!   the network failed) stops the worker, unless
//!   [`WorkerConfig::reconnect_timeout`] is set (`rask-worker
//!   --reconnect-timeout`, 60 s): then it logs "lost the scheduler at
//!   ADDR: reason; reconnecting for up to N s" and tries again with
//!   backoff (100 ms, doubling to 2 s). On success it registers as a new
//!   worker: everything of the old session is dropped (data, queued tasks;
//!   tasks still running finish and their results are discarded), since
//!   the scheduler that wanted them is gone (or has already rescheduled
//!   them elsewhere). When the timeout passes it stops, not cleanly. A
//!   retiring worker does not reconnect.
//! - The data port accepts role `peer` (workers and clients), checks the
//!   token when one is configured, answers `get-data` with `data` (values
//!   in payload frames; at most 4096 values per `data` message, several
//!   messages with the request's id for more) and `put-data` with
//!   `data-stored`. Anything malformed is answered with an `error` (code
//!   `bad-message`); a connection whose bytes are not frames at all is
//!   closed, and only that connection. A connection has
//!   `handshake_timeout` to send its `hello`; beyond `max_connections`
//!   open ones, a new one is sent an `error` (code
//!   `too-many-connections`) and closed.

pub mod exec;
pub mod plugin;
mod server;
mod shared;
pub mod spill;
pub mod state;
pub mod store;
pub mod sysmem;

pub use exec::{rejoin, secede, task_client, NextTask, SecedeError, WorkerTask};
pub use plugin::{load_plugin, PluginError};
pub use state::MemoryPolicy;
pub use sysmem::auto_memory_limit;

use crate::protocol::conn;
use crate::protocol::messages::Role;
use crate::protocol::{Limits, Message};
use crate::registry::Registry;
use shared::Shared;
use state::WorkerState;
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Longest [`WorkerHandle::stop`] waits for the last messages to the
/// scheduler to be written.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// Counters about a worker (see [`state::CoreStats`]).
pub type WorkerStats = state::CoreStats;

/// How to start a worker.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// The scheduler's address, `tcp://host:port` (or `tls://host:port`,
    /// which needs `tls`).
    pub scheduler: String,
    /// A name for logs and for the scheduler; empty: `worker-<data port>`.
    pub name: String,
    /// Threads running builtins and native functions; 0: one per CPU.
    pub threads: usize,
    /// Host threads (or host tasks) that take pulled functions' tasks
    /// through [`WorkerHandle::next_task`] at once; 0: none counted. The
    /// worker announces `threads + pull_threads` to the scheduler as how
    /// many tasks it runs at once, so that many host threads all get work.
    pub pull_threads: usize,
    /// The interface the data port listens on, also the host announced to
    /// the scheduler (so it must be reachable by peers and clients).
    pub host: String,
    /// The data port; 0: any free port.
    pub data_port: u16,
    /// The worker's memory limit in bytes; 0: none (then nothing spills,
    /// pauses or restarts). [`auto_memory_limit`] is what `rask-worker`
    /// uses when none is given. See "Memory" in the module docs.
    pub memory_limit: u64,
    /// The fractions of the memory limit at which the worker spills,
    /// pauses and restarts (Dask's defaults: 0.6, 0.7, 0.8, 0.95).
    pub memory_policy: MemoryPolicy,
    /// Where the worker's spill directory is made (inside
    /// `rask-worker-space/`); `None`: the system temp dir.
    pub local_directory: Option<std::path::PathBuf>,
    /// Compress spill files with lz4 when it pays (default true).
    pub spill_compression: bool,
    /// How often the process's memory is measured (default 100 ms).
    pub memory_monitor_interval: Duration,
    /// Time between heartbeats.
    pub heartbeat_interval: Duration,
    /// Size limits for every connection.
    pub limits: Limits,
    /// The cluster's shared secret: sent to the scheduler and to peers,
    /// and required from whoever connects to the data port.
    pub token: Option<String>,
    /// TLS for the data port (then TLS only, client certificates required,
    /// announced as `tls://host:port`) and for connections to `tls://`
    /// addresses (the scheduler, peers).
    pub tls: Option<crate::protocol::TlsConfig>,
    /// How long connecting to the scheduler or to a peer may take.
    pub connect_timeout: Duration,
    /// How long a connection to the data port has to send its `hello`
    /// (default 10 s); one that has not is closed.
    pub handshake_timeout: Duration,
    /// Most connections open at once on the data port, handshakes in
    /// progress included (default 10,000; 0: no limit). One more is sent an
    /// `error` with code `too-many-connections` and closed.
    pub max_connections: usize,
    /// When the connection to the scheduler is lost (not closed by the
    /// scheduler's `close`), how long to keep trying to reconnect (backoff
    /// from 100 ms doubling to 2 s) before stopping. On reconnecting the
    /// worker registers again as a new worker, with nothing: what it held
    /// for the old session is dropped (see the module docs). Zero (the
    /// default here; `rask-worker` uses 60 s) stops at once.
    pub reconnect_timeout: Duration,
    /// The language or runtime its functions run in, as the scheduler's
    /// dashboard and `workers-reply` show it (default `rust`; the C API
    /// says `c` unless told; Python and Julia workers name their runtime
    /// as shipped functions do, `python-3.11`, `julia-1.5`).
    pub runtime: String,
}

impl WorkerConfig {
    /// The defaults, for the scheduler at `scheduler`.
    pub fn new(scheduler: impl Into<String>) -> WorkerConfig {
        WorkerConfig {
            scheduler: scheduler.into(),
            ..WorkerConfig::default()
        }
    }
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            scheduler: "tcp://127.0.0.1:8786".into(),
            name: String::new(),
            runtime: "rust".into(),
            threads: 0,
            pull_threads: 0,
            host: "127.0.0.1".into(),
            data_port: 0,
            memory_limit: 0,
            memory_policy: MemoryPolicy::default(),
            local_directory: None,
            spill_compression: true,
            memory_monitor_interval: Duration::from_millis(100),
            heartbeat_interval: Duration::from_secs(1),
            limits: Limits::default(),
            token: None,
            tls: None,
            connect_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            reconnect_timeout: Duration::ZERO,
        }
    }
}

/// Why a worker could not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerError {
    /// The configuration is unusable.
    Config(String),
    /// The data port could not be opened.
    Bind(String),
    /// The scheduler could not be reached or refused the worker.
    Connect(String),
}

impl fmt::Display for WorkerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkerError::Config(m) => write!(f, "invalid worker configuration: {m}"),
            WorkerError::Bind(m) => write!(f, "cannot open the data port: {m}"),
            WorkerError::Connect(m) => write!(f, "cannot join the scheduler: {m}"),
        }
    }
}
impl std::error::Error for WorkerError {}

/// Starts workers.
pub struct Worker;

impl Worker {
    /// Starts a worker and returns once it has registered with the
    /// scheduler (its `register-worker` is sent). Blocks the calling
    /// thread; from async code use [`Worker::start_async`].
    pub fn start(config: WorkerConfig, registry: Registry) -> Result<WorkerHandle, WorkerError> {
        let (tx, rx) = std::sync::mpsc::channel();
        crate::runtime::handle().spawn(async move {
            let _ = tx.send(Worker::start_async(config, registry).await);
        });
        let wait = move || {
            rx.recv()
                .unwrap_or_else(|_| Err(WorkerError::Connect("the runtime stopped".into())))
        };
        // On a thread of a multi-threaded runtime, let it move its other
        // tasks elsewhere while this one blocks.
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(wait)
            }
            _ => wait(),
        }
    }

    /// [`Worker::start`] for async callers (on any tokio runtime; the
    /// worker's own tasks run on rask's shared runtime).
    pub async fn start_async(
        config: WorkerConfig,
        registry: Registry,
    ) -> Result<WorkerHandle, WorkerError> {
        let threads = if config.threads > 0 {
            config.threads
        } else {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        };
        if config.heartbeat_interval.is_zero() {
            return Err(WorkerError::Config(
                "the heartbeat interval must be positive".into(),
            ));
        }
        if let Some(tls) = &config.tls {
            tls.server().map_err(|e| WorkerError::Config(e.0))?;
        }
        config.memory_policy.check().map_err(WorkerError::Config)?;
        if config.memory_monitor_interval.is_zero() {
            return Err(WorkerError::Config(
                "the memory monitor interval must be positive".into(),
            ));
        }
        // The spill directory, made only when there is a limit to keep.
        let policy = config.memory_policy;
        let (disk, spill_dir): (Option<Box<dyn store::Disk>>, _) =
            if config.memory_limit > 0 && policy.target.or(policy.spill).is_some() {
                let local = config
                    .local_directory
                    .clone()
                    .unwrap_or_else(std::env::temp_dir);
                let dir = spill::SpillDir::create(&local).map_err(WorkerError::Config)?;
                let path = dir.path().to_path_buf();
                let disk = spill::FileDisk::new(dir, config.spill_compression);
                (Some(Box::new(disk) as Box<dyn store::Disk>), Some(path))
            } else {
                (None, None)
            };
        let bind = format!("{}:{}", config.host, config.data_port);
        let listener = tokio::net::TcpListener::bind(&bind)
            .await
            .map_err(|e| WorkerError::Bind(format!("{bind}: {e}")))?;
        let port = listener
            .local_addr()
            .map_err(|e| WorkerError::Bind(e.to_string()))?
            .port();
        let host = if config.host.contains(':') {
            format!("[{}]", config.host) // IPv6
        } else {
            config.host.clone()
        };
        let address = conn::address_of(format!("{host}:{port}"), config.tls.is_some());
        let name = if config.name.is_empty() {
            format!("worker-{port}")
        } else {
            config.name.clone()
        };
        let (inbox, outbox, welcome) = conn::connect_with(
            &config.scheduler,
            config.tls.as_ref(),
            Role::Worker,
            &name,
            config.token.clone(),
            config.limits,
            config.connect_timeout,
        )
        .await
        .map_err(|e| WorkerError::Connect(e.0))?;
        let registration = Message::RegisterWorker {
            address: address.clone(),
            // How many tasks it runs at once: its pool and the host
            // threads that pull (saturating: both are the caller's numbers).
            threads: u32::try_from(threads.saturating_add(config.pull_threads)).unwrap_or(u32::MAX),
            functions: registry.names(),
            memory_limit: config.memory_limit,
            runtime: config.runtime.clone(),
        };
        outbox.send(registration.clone());
        let state = WorkerState::new(registry, &address, config.memory_limit)
            .with_memory(config.memory_policy, disk);
        let shared = Arc::new(Shared::new(
            &config,
            state,
            name,
            address,
            threads,
            Some(outbox.clone()),
            registration,
            spill_dir,
        ));
        shared.id.store(welcome.id, Ordering::Relaxed);
        let pool = exec::spawn_pool(&shared);
        let rt = crate::runtime::handle();
        rt.spawn(server::scheduler_loop(shared.clone(), inbox, outbox));
        rt.spawn(server::heartbeats(
            shared.clone(),
            config.heartbeat_interval,
        ));
        let gate = crate::protocol::gate::Gate::new(crate::protocol::gate::GateConfig {
            name: shared.name.clone(),
            what: "a worker's data port",
            roles: &[Role::Peer],
            role_hint: " (clients and workers connect to the scheduler)",
            token: config.token.clone(),
            tls: config.tls.clone(),
            limits: config.limits,
            handshake_timeout: config.handshake_timeout,
            max_connections: config.max_connections,
            dashboard: None,
            numbered: false,
        });
        // Same host: an abstract Unix socket named after the data address
        // (values pass as descriptors, see protocol::shm), unless shared
        // memory is off or the cluster uses TLS.
        let local = if crate::protocol::shm::threshold().is_some() && config.tls.is_none() {
            let name = crate::protocol::shm::socket_name(&shared.address);
            match tokio::net::UnixListener::bind(&name) {
                Ok(l) => Some(l),
                Err(e) => {
                    tracing::warn!(worker = %shared.name, "no same-host socket (values go over TCP): {e}");
                    None
                }
            }
        } else {
            None
        };
        rt.spawn(server::serve_data(shared.clone(), gate, listener, local));
        if config.memory_limit > 0 {
            // Received buffers kept for reuse never make up more than an
            // eighth of the limit (see protocol::recvbuf).
            let share = usize::try_from(config.memory_limit / 8).unwrap_or(usize::MAX);
            crate::protocol::recvbuf::limit_pool(share);
            rt.spawn(server::memory_monitor(
                shared.clone(),
                config.memory_monitor_interval,
            ));
        }
        tracing::info!(
            worker = %shared.name,
            id = welcome.id,
            address = %shared.address,
            scheduler = %config.scheduler,
            threads,
            "worker registered"
        );
        Ok(WorkerHandle {
            shared,
            pool: parking_lot::Mutex::new(pool),
        })
    }
}

/// A running worker. Dropping it stops the worker.
pub struct WorkerHandle {
    shared: Arc<Shared>,
    pool: parking_lot::Mutex<Vec<JoinHandle<()>>>,
}

impl fmt::Debug for WorkerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerHandle")
            .field("id", &self.id())
            .field("name", &self.name())
            .field("address", &self.data_address())
            .finish()
    }
}

impl WorkerHandle {
    /// The id the scheduler gave this worker.
    pub fn id(&self) -> u64 {
        self.shared.id.load(Ordering::Relaxed)
    }

    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Where the worker serves its data, `tcp://host:port` (`tls://` with
    /// TLS).
    pub fn data_address(&self) -> &str {
        &self.shared.address
    }

    /// The next task of a pulled function, waiting up to `timeout`
    /// (forever for `None`). Any number of host threads may call this at
    /// once; each task goes to one of them.
    pub fn next_task(&self, timeout: Option<Duration>) -> NextTask {
        exec::next_task(&self.shared, timeout)
    }

    /// Up to `max` tasks of pulled functions at once, for hosts that pay
    /// for every call: waits up to `timeout` for the first as
    /// [`next_task`](Self::next_task) does (`Err` is its `Timeout` or
    /// `Stopped`), then takes the others ready now, most urgent first.
    pub fn next_tasks(
        &self,
        max: usize,
        timeout: Option<Duration>,
    ) -> Result<Vec<WorkerTask>, NextTask> {
        exec::next_tasks(&self.shared, max.max(1), timeout)
    }

    /// Ends many tasks (taken from this worker) in one step: one lock of
    /// the worker, one flush of the messages to the scheduler. An `Err`
    /// fails its task with that failure. Returns how many results nobody
    /// wanted any more (the worker stopped, or the scheduler freed the
    /// key), as [`WorkerTask::complete`]'s false.
    pub fn complete_tasks(
        &self,
        ends: Vec<(
            WorkerTask,
            Result<crate::value::Value, crate::registry::Failure>,
        )>,
    ) -> usize {
        exec::finish_many(&self.shared, ends)
    }

    /// A descriptor (the read end of a pipe, owned by the worker, valid
    /// until it is dropped) that is readable while a task of a pulled
    /// function may be waiting, or once the worker has stopped: a host
    /// event loop waits on it, then calls `next_task` with a zero timeout
    /// until that says [`NextTask::Timeout`] (which makes it unreadable
    /// again). Made on the first call; the same one after.
    pub fn wait_fd(&self) -> std::io::Result<std::os::raw::c_int> {
        let mut g = self.shared.core.lock();
        if let Some(w) = &g.wakeup {
            return Ok(w.fd());
        }
        let w = Arc::new(crate::wakeup::Wakeup::new()?);
        if g.state.pulled_len() > 0 || self.shared.is_stopped() {
            w.set();
        }
        let fd = w.fd();
        g.wakeup = Some(w);
        Ok(fd)
    }

    /// Stops the worker: tells the scheduler (`close`), stops taking tasks,
    /// closes its connections, and waits for the pool threads to finish
    /// the tasks they are running. Host threads in `next_task` get
    /// [`NextTask::Stopped`]. Then waits, up to [`FLUSH_TIMEOUT`], until
    /// what was queued for the scheduler (the `close` last) is written, so
    /// a process exiting right after `stop` does not lose it (not waited
    /// for on a thread of a tokio runtime). Also after the worker stopped
    /// by itself (the scheduler's `close`, a lost connection): call it (or
    /// drop the handle) before exiting. Idempotent.
    pub fn stop(&self) {
        self.shared
            .stop("the worker was stopped by its host".into(), true, true);
        self.join_pool();
        self.shared.wait_flushed(FLUSH_TIMEOUT);
    }

    /// Retires the worker gracefully: asks the scheduler to move the
    /// results only this worker holds to other workers (`retire-worker`),
    /// hands back the tasks it has not started, lets the running ones
    /// finish, and keeps serving data until the scheduler has moved
    /// everything and says `close` (the worker then stops cleanly: see
    /// [`wait`](Self::wait), [`stopped_cleanly`](Self::stopped_cleanly)).
    /// Returns at once; idempotent. `rask-worker` does this on SIGTERM or
    /// SIGINT (a second signal stops it at once, with [`stop`](Self::stop)).
    pub fn retire(&self, reason: &str) {
        if self.is_stopped() {
            return;
        }
        if self.shared.core.lock().scheduler.is_none() {
            // Reconnecting: no scheduler to move anything for. What this
            // worker held was dropped with the lost session already.
            self.shared.stop(
                format!("{reason} while the scheduler was lost: stopping"),
                false,
                true,
            );
            return;
        }
        tracing::info!(worker = %self.shared.name, %reason, "retiring");
        self.shared.apply(|s| s.retire(Some(reason.to_string())));
    }

    /// Whether the worker is retiring (see [`retire`](Self::retire)).
    pub fn is_retiring(&self) -> bool {
        self.shared.core.lock().state.is_retiring()
    }

    fn join_pool(&self) {
        let me = std::thread::current().id();
        let handles: Vec<JoinHandle<()>> = std::mem::take(&mut *self.pool.lock());
        for h in handles {
            if h.thread().id() != me {
                let _ = h.join();
            }
        }
    }

    /// Whether the worker has stopped.
    pub fn is_stopped(&self) -> bool {
        self.shared.is_stopped()
    }

    /// Whether the worker stopped on purpose ([`stop`](Self::stop), or
    /// `close` from the scheduler) rather than by losing the scheduler.
    pub fn stopped_cleanly(&self) -> bool {
        self.is_stopped() && self.shared.clean.load(Ordering::Acquire)
    }

    /// Why the worker stopped, once it has.
    pub fn stop_reason(&self) -> Option<String> {
        self.shared.stop_reason.lock().clone()
    }

    /// Blocks until the worker stops (the scheduler closed it, the
    /// connection was lost, or [`stop`](Self::stop) was called) and returns
    /// why.
    pub fn wait(&self) -> String {
        let mut r = self.shared.stop_reason.lock();
        loop {
            if let Some(reason) = &*r {
                return reason.clone();
            }
            self.shared.stop_cv.wait(&mut r);
        }
    }

    /// [`wait`](Self::wait) for at most `timeout`; `None` if still running.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<String> {
        let deadline = std::time::Instant::now() + timeout;
        let mut r = self.shared.stop_reason.lock();
        loop {
            if let Some(reason) = &*r {
                return Some(reason.clone());
            }
            if self.shared.stop_cv.wait_until(&mut r, deadline).timed_out() {
                return r.clone();
            }
        }
    }

    /// Waits, asynchronously, until the worker stops.
    pub async fn stopped(&self) {
        let mut rx = self.shared.shutdown.subscribe();
        let _ = rx.wait_for(|&s| s).await;
    }

    /// The keys whose values this worker holds, sorted.
    pub fn stored_keys(&self) -> Vec<String> {
        self.shared.core.lock().state.stored_keys()
    }

    /// The value held under `key` (for tests and in-process users; read
    /// back from disk if it was spilled).
    pub fn value(&self, key: &str) -> Option<crate::Value> {
        self.shared.core.lock().state.value(key)
    }

    /// Whether the value held under `key` is spilled to disk.
    pub fn is_spilled(&self, key: &str) -> bool {
        self.shared.core.lock().state.is_spilled(key)
    }

    /// Whether memory use has paused the worker (no task starts).
    pub fn is_paused(&self) -> bool {
        self.shared.core.lock().state.is_paused()
    }

    /// Where this worker's spill files go (`None` without a memory limit).
    pub fn spill_directory(&self) -> Option<std::path::PathBuf> {
        self.shared.spill_dir.clone()
    }

    pub fn stats(&self) -> WorkerStats {
        self.shared.core.lock().state.stats()
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

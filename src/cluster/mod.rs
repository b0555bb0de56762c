//! `LocalCluster`: a scheduler and workers in this process, like
//! dask.distributed's `LocalCluster` / `Client()`.
//!
//! ```no_run
//! use rask::cluster::{LocalCluster, LocalClusterConfig};
//! let cluster = LocalCluster::start(LocalClusterConfig::default())?;
//! let client = cluster.client()?;
//! let f = client.submit("inc", vec![1.into()])?;
//! assert_eq!(f.result(None)?, rask::Value::Int(2));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Design
//!
//! - Everything runs on the process-wide runtime ([`crate::runtime`]): the
//!   scheduler's and workers' I/O tasks share its threads, and only the
//!   workers' executor pools (`threads_per_worker` threads each) are added.
//!   Workers talk to the scheduler and to each other over loopback TCP,
//!   exactly as separate processes would, so a local cluster exercises the
//!   real protocol.
//! - [`LocalCluster::start`] returns once the scheduler counts every
//!   worker as registered, so the first task can be placed at once.
//! - [`LocalCluster::shutdown`] (or drop) stops the workers first (each
//!   says `close` and joins its executor threads), then the scheduler,
//!   waiting for both; nothing is left running, so clusters can be started
//!   and stopped repeatedly in one process. Clients connected to it see
//!   their connection end ("connection to the scheduler at ADDR lost").
//! - [`LocalCluster::add_worker`] starts one more worker (with a registry
//!   of its own), for tests and for growing a cluster by hand.

use crate::client::{Client, ClientConfig, ClientError};
use crate::registry::Registry;
use crate::scheduler::{Scheduler, SchedulerConfig, SchedulerHandle};
use crate::worker::{Worker, WorkerConfig, WorkerError, WorkerHandle};
use parking_lot::Mutex;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How to start a [`LocalCluster`].
#[derive(Clone, Debug)]
pub struct LocalClusterConfig {
    /// Workers to start (default 2).
    pub workers: usize,
    /// Executor threads of each worker (default 1).
    pub threads_per_worker: usize,
    /// The functions every worker offers, besides the builtins.
    pub registry: Registry,
    /// The scheduler's port; 0 (the default) picks a free one.
    pub scheduler_port: u16,
    /// The interface everything listens on (default `127.0.0.1`).
    pub host: String,
    /// A shared secret the scheduler, workers and clients use.
    pub token: Option<String>,
    /// TLS for every connection: the scheduler, the workers and clients
    /// made by [`LocalCluster::client`] all use it (one certificate).
    pub tls: Option<crate::protocol::TlsConfig>,
    /// How long starting may take (workers registering), and the timeout
    /// of clients made by [`LocalCluster::client`] (default 10 s).
    pub timeout: Duration,
    /// Where the scheduler serves its dashboard and `/metrics`
    /// (`HOST:PORT`, port 0 for any free port); `None` (the default): no
    /// dashboard. See [`crate::scheduler::dashboard`].
    pub dashboard: Option<String>,
}

impl Default for LocalClusterConfig {
    fn default() -> Self {
        LocalClusterConfig {
            workers: 2,
            threads_per_worker: 1,
            registry: Registry::new(),
            scheduler_port: 0,
            host: "127.0.0.1".into(),
            token: None,
            tls: None,
            timeout: Duration::from_secs(10),
            dashboard: None,
        }
    }
}

/// Why a local cluster could not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterError {
    /// The scheduler could not listen.
    Scheduler(String),
    /// A worker could not start.
    Worker(WorkerError),
    /// The workers did not all register in time.
    Timeout(String),
}

impl fmt::Display for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClusterError::Scheduler(m) => write!(f, "cannot start the scheduler: {m}"),
            ClusterError::Worker(e) => write!(f, "cannot start a worker: {e}"),
            ClusterError::Timeout(m) => write!(f, "the cluster did not start: {m}"),
        }
    }
}
impl std::error::Error for ClusterError {}

impl From<WorkerError> for ClusterError {
    fn from(e: WorkerError) -> Self {
        ClusterError::Worker(e)
    }
}

/// A scheduler and workers running in this process. See the module docs.
pub struct LocalCluster {
    config: LocalClusterConfig,
    address: String,
    scheduler: Mutex<Option<SchedulerHandle>>,
    workers: Mutex<Vec<Arc<WorkerHandle>>>,
}

impl fmt::Debug for LocalCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalCluster")
            .field("address", &self.address)
            .field("workers", &self.workers.lock().len())
            .finish()
    }
}

impl LocalCluster {
    /// Starts the scheduler and `config.workers` workers, and waits until
    /// every worker has registered.
    ///
    /// # Panics
    /// When called from inside a tokio runtime.
    pub fn start(config: LocalClusterConfig) -> Result<LocalCluster, ClusterError> {
        let scheduler = Scheduler::start(SchedulerConfig {
            host: config.host.clone(),
            port: config.scheduler_port,
            name: "local-scheduler".into(),
            token: config.token.clone(),
            tls: config.tls.clone(),
            dashboard: config.dashboard.clone(),
            ..SchedulerConfig::default()
        })
        .map_err(|e| ClusterError::Scheduler(e.to_string()))?;
        let cluster = LocalCluster {
            address: scheduler.address().to_string(),
            scheduler: Mutex::new(Some(scheduler)),
            workers: Mutex::new(Vec::new()),
            config,
        };
        for _ in 0..cluster.config.workers {
            // On failure, dropping `cluster` stops what did start.
            cluster.spawn_worker(
                cluster.config.registry.clone(),
                cluster.config.threads_per_worker,
            )?;
        }
        cluster.wait_for_workers(cluster.config.workers)?;
        Ok(cluster)
    }

    fn spawn_worker(
        &self,
        registry: Registry,
        threads: usize,
    ) -> Result<Arc<WorkerHandle>, ClusterError> {
        let n = self.workers.lock().len();
        let w = Worker::start(
            WorkerConfig {
                name: format!("local-worker-{n}"),
                threads: threads.max(1),
                host: self.config.host.clone(),
                token: self.config.token.clone(),
                tls: self.config.tls.clone(),
                connect_timeout: self.config.timeout,
                ..WorkerConfig::new(self.address.clone())
            },
            registry,
        )?;
        let w = Arc::new(w);
        self.workers.lock().push(Arc::clone(&w));
        Ok(w)
    }

    /// Waits until the scheduler counts `n` workers.
    fn wait_for_workers(&self, n: usize) -> Result<(), ClusterError> {
        let deadline = Instant::now() + self.config.timeout;
        loop {
            let have = {
                let s = self.scheduler.lock();
                let Some(s) = s.as_ref() else {
                    return Err(ClusterError::Scheduler("the cluster is shut down".into()));
                };
                s.stats().map(|st| st.counts.workers)
            };
            match have {
                Some(k) if k >= n => return Ok(()),
                None => return Err(ClusterError::Scheduler("the scheduler stopped".into())),
                Some(k) => {
                    if Instant::now() >= deadline {
                        return Err(ClusterError::Timeout(format!(
                            "{k} of {n} workers registered after {:?}",
                            self.config.timeout
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }
    }

    /// The scheduler's address, `tcp://host:port` (`tls://` with TLS).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The dashboard's status page (`http://HOST:PORT/status`), or `None`
    /// without a dashboard (or once the cluster is shut down).
    pub fn dashboard_link(&self) -> Option<String> {
        self.scheduler
            .lock()
            .as_ref()
            .and_then(|s| s.dashboard_link().map(str::to_string))
    }

    /// A new client connected to this cluster.
    pub fn client(&self) -> Result<Client, ClientError> {
        Client::connect(
            &self.address,
            ClientConfig {
                name: "local-client".into(),
                timeout: self.config.timeout,
                token: self.config.token.clone(),
                tls: self.config.tls.clone(),
                ..ClientConfig::default()
            },
        )
    }

    /// The workers, in the order they started.
    pub fn workers(&self) -> Vec<Arc<WorkerHandle>> {
        self.workers.lock().clone()
    }

    /// Starts one more worker offering `registry`'s functions, and waits
    /// until it has registered.
    pub fn add_worker(
        &self,
        registry: Registry,
        threads: usize,
    ) -> Result<Arc<WorkerHandle>, ClusterError> {
        let w = self.spawn_worker(registry, threads)?;
        let n = self
            .workers
            .lock()
            .iter()
            .filter(|w| !w.is_stopped())
            .count();
        self.wait_for_workers(n)?;
        Ok(w)
    }

    /// The scheduler's counters (tasks by state, workers, clients), or
    /// `None` once shut down.
    pub fn scheduler_stats(&self) -> Option<crate::scheduler::SchedulerStats> {
        self.scheduler.lock().as_ref()?.stats()
    }

    /// Stops the workers, then the scheduler, waiting for both.
    /// Idempotent; dropping the cluster does it.
    pub fn shutdown(&self) {
        let workers = std::mem::take(&mut *self.workers.lock());
        for w in &workers {
            w.stop();
        }
        drop(workers);
        if let Some(s) = self.scheduler.lock().take() {
            s.shutdown();
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        self.shutdown();
    }
}

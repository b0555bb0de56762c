//! The tokio glue around [`SchedulerState`]: a listener, one task per
//! connection, and one core task that owns the state.
//!
//! ```text
//!  accept loop ──spawn──▶ connection task (one per peer) ──Event──┐
//!                          reads frames, checks roles,             ▼
//!                          answers bad messages itself       core task: owns SchedulerState,
//!                                   ▲                        drains every queued event, then
//!                                   └──────── Outbox ◀────── flushes each connection's messages
//! ```
//!
//! - Connections are accepted through a [`Gate`] (the same as a worker's
//!   data port): version and magic, the connection limit, the handshake
//!   timeout, TLS, the role (`peer` is refused: peers talk to workers) and,
//!   when the scheduler has a token, the `hello`'s token (constant time)
//!   are all checked there, and a connection the scheduler is done with is
//!   closed lingering. Ids for `welcome` come from the gate's counter,
//!   shared by clients and workers, starting at 1.
//! - A connection task decodes each wire message and converts it to its
//!   role's type ([`WorkerMessage`], [`ClientMessage`]: the role check is
//!   that conversion). A message that does not decode, or that its role
//!   may not send, is answered with an `error` (code `bad-message`, echoing
//!   its id)
//!   and skipped; the connection stays. A framing error (bad header, over a
//!   limit, the stream cut inside a message) closes that connection with a
//!   `tracing::warn!` naming the reason. Nothing one peer sends can stop
//!   the scheduler.
//! - The core task receives events through one unbounded channel, so no
//!   lock is ever held across an await. It handles every event already
//!   queued before it flushes, so a burst of `task-finished` from many
//!   workers costs one pass and each connection gets its messages in one
//!   send burst (which its writer coalesces into one wire message).
//! - A worker's first message must be `register-worker`; until then it is
//!   not given tasks. Any message from a worker counts as a sign of life; a
//!   worker silent for `heartbeat_timeout` is sent `close`, disconnected
//!   and removed (its tasks rescheduled).
//! - At most `max_connections` connections are open at once (handshakes
//!   in progress count); one more is sent an `error` with code
//!   `too-many-connections` and closed, before any handshake.
//! - Shutdown (explicit, or dropping the [`SchedulerHandle`]): the listener
//!   stops, every peer is sent `close`, every connection is closed, then the
//!   core task ends.

use super::dashboard::{self, Recorder, Snapshot, SnapshotInfo};
use super::state::{
    ClientId, Dest, Outgoing, SchedulerOptions, SchedulerState, StateCounts, WorkerId,
    WorkerRegistration,
};
use crate::protocol::conn::{address_of, Inbox, Outbox};
use crate::protocol::gate::{Admitted, Gate, GateConfig};
use crate::protocol::messages::Role;
use crate::protocol::{ClientMessage, ErrorCode, Limits, Message, TlsConfig, WorkerMessage};
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::net::ToSocketAddrs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};

/// How a scheduler listens and behaves.
#[derive(Clone, Debug)]
pub struct SchedulerConfig {
    /// Address to bind (default `127.0.0.1`).
    pub host: String,
    /// Port to bind (default 8786); 0 picks any free port.
    pub port: u16,
    /// The name sent in `welcome` (default `"scheduler"`).
    pub name: String,
    /// Frame and message size limits for every connection.
    pub limits: Limits,
    /// How long a new connection has to send its `hello` (default 10 s);
    /// one that has not is closed.
    pub handshake_timeout: Duration,
    /// Most connections open at once, handshakes in progress included
    /// (default 10,000; 0: no limit). One more is sent an `error` with
    /// code `too-many-connections` and closed.
    pub max_connections: usize,
    /// A worker that sends nothing for this long is considered gone
    /// (default 60 s).
    pub heartbeat_timeout: Duration,
    /// When set, every `hello` must carry this token.
    pub token: Option<String>,
    /// When set, the port serves TLS only, requires client certificates
    /// signed by its CA, and the address is `tls://HOST:PORT`.
    pub tls: Option<TlsConfig>,
    /// Tunables of the scheduling core.
    pub options: SchedulerOptions,
    /// Where to serve the dashboard and `/metrics` (`HOST:PORT`, port 0 for
    /// any free port), or `None` for no dashboard (the default here; the
    /// `rask-scheduler` program and the C, Python and Julia schedulers
    /// serve one on [`DEFAULT_DASHBOARD`] unless told otherwise).
    /// [`DEFAULT_DASHBOARD`] falls back to a free port of 127.0.0.1 when
    /// 8787 is taken (with a warning), as Dask's does; any other address
    /// that cannot be bound fails the start. The link is sent to clients in
    /// `welcome`. See [`super::dashboard`].
    pub dashboard: Option<String>,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            host: "127.0.0.1".into(),
            port: 8786,
            name: "scheduler".into(),
            limits: Limits::default(),
            handshake_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            heartbeat_timeout: Duration::from_secs(60),
            token: None,
            tls: None,
            options: SchedulerOptions::default(),
            dashboard: None,
        }
    }
}

/// What [`SchedulerHandle::stats`] reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SchedulerStats {
    /// Tasks by state, workers, clients.
    pub counts: StateCounts,
    /// Open connections (including ones still registering).
    pub connections: usize,
}

/// Starts schedulers. See [`Scheduler::start`].
pub struct Scheduler;

impl Scheduler {
    /// Binds `config.host:config.port` and serves on the shared runtime
    /// ([`crate::runtime`]). Returns once the socket listens, so
    /// [`SchedulerHandle::address`] is ready to connect to. Callable from
    /// any thread, inside a runtime or not.
    pub fn start(config: SchedulerConfig) -> std::io::Result<SchedulerHandle> {
        if let Some(tls) = &config.tls {
            tls.server()
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.0))?;
        }
        let addr = (config.host.as_str(), config.port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("cannot resolve host '{}'", config.host),
                )
            })?;
        let dashboard = match &config.dashboard {
            Some(a) => Some(bind_dashboard(a)?),
            None => None,
        };
        let std_listener = std::net::TcpListener::bind(addr)?;
        std_listener.set_nonblocking(true)?;
        let rt = crate::runtime::handle();
        let listener = {
            let _guard = rt.enter();
            TcpListener::from_std(std_listener)?
        };
        let local = listener.local_addr()?;
        let address = address_of(local, config.tls.is_some());
        let (tx, rx) = mpsc::unbounded_channel();
        let (stop_tx, stop_rx) = watch::channel(false);
        let (alive_tx, alive_rx) = mpsc::channel::<()>(1);
        let gate = Gate::new(GateConfig {
            name: config.name.clone(),
            what: "the scheduler",
            roles: &[Role::Client, Role::Worker],
            role_hint: " (role 'peer' connects to a worker's data port)",
            token: config.token.clone(),
            tls: config.tls.clone(),
            limits: config.limits,
            handshake_timeout: config.handshake_timeout,
            max_connections: config.max_connections,
            dashboard: dashboard.as_ref().map(|d| d.1.clone()),
            numbered: true,
        });
        info!("scheduler '{}' listening on {address}", config.name);
        let mut recorder = None;
        let mut dashboard_link = None;
        // The scheduler's clock (the core's `now`, the dashboard's times).
        let clock = Instant::now();
        if let Some((dash_listener, link)) = dashboard {
            info!("dashboard at {link}");
            let sample_tx = tx.clone();
            let ask: dashboard::http::Ask = Arc::new(move |fresh| {
                let (reply, rx) = oneshot::channel();
                sample_tx.send(Event::Sample(reply, fresh)).ok()?;
                Some(rx)
            });
            // Its own thread: the pages' JSON and writes never hold up the
            // threads that run the core and the connections (and its CPU
            // time can be told apart: benches/dashboard_cost.py).
            let stop = stop_rx.clone();
            std::thread::Builder::new()
                .name("rask-dashboard".into())
                .spawn(move || {
                    let served = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .and_then(|rt| {
                            rt.block_on(async move {
                                let l = TcpListener::from_std(dash_listener)?;
                                dashboard::http::serve(l, ask, clock, stop).await;
                                Ok(())
                            })
                        });
                    if let Err(e) = served {
                        warn!("the dashboard could not be served: {e}");
                    }
                })?;
            let info = SnapshotInfo {
                name: config.name.clone(),
                address: address.clone(),
                dashboard: link.clone(),
                started_unix: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0.0, |d| d.as_secs_f64()),
                connections: 0,
                settings: settings_of(&config, &address),
            };
            recorder = Some(Box::new((Recorder::default(), info)));
            dashboard_link = Some(link);
        }
        rt.spawn(accept(
            listener,
            gate.clone(),
            tx.clone(),
            stop_rx,
            alive_tx,
        ));
        let core = Core {
            state: SchedulerState::new(config.options.clone()),
            conns: FxHashMap::default(),
            worker_conn: FxHashMap::default(),
            client_conn: FxHashMap::default(),
            out: Vec::new(),
            dirty: Vec::new(),
            start: clock,
            heartbeat_timeout: config.heartbeat_timeout,
            trim: HeapTrim::default(),
            recorder,
            checker: crate::invariants::Checker::new("scheduler"),
            held: FxHashMap::default(),
            turns: VecDeque::new(),
        };
        let core = rt.spawn(core.run(rx, stop_tx, alive_rx, gate));
        // A bug in the core must not go unnoticed: say so in the log, and
        // tell the handle (`SchedulerHandle::failed`). The scheduler stops
        // with its core: the accept loop and every connection end when the
        // core's stop signal goes away with it.
        let (failed_tx, failed) = watch::channel(None);
        rt.spawn(async move {
            if let Err(e) = core.await {
                if e.is_panic() {
                    let p = e.into_panic();
                    let msg = p
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| p.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    tracing::error!("the scheduler core panicked, the scheduler stops: {msg}");
                    let _ = failed_tx.send(Some(msg));
                }
            }
        });
        Ok(SchedulerHandle {
            address,
            dashboard_link,
            port: local.port(),
            tx,
            stopped: AtomicBool::new(false),
            failed,
        })
    }
}

/// A running scheduler. Dropping it shuts the scheduler down (without
/// waiting; use [`SchedulerHandle::shutdown`] to wait).
pub struct SchedulerHandle {
    address: String,
    dashboard_link: Option<String>,
    port: u16,
    tx: mpsc::UnboundedSender<Event>,
    stopped: AtomicBool,
    /// Set to the panic's message if the core panicked.
    failed: watch::Receiver<Option<String>>,
}

impl SchedulerHandle {
    /// Where clients and workers connect: `tcp://HOST:PORT` (`tls://` with
    /// TLS), with the real port when 0 was asked.
    pub fn address(&self) -> &str {
        &self.address
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The dashboard's status page, `http://HOST:PORT/status` (with the
    /// real port when 0 was asked), or `None` without a dashboard.
    pub fn dashboard_link(&self) -> Option<&str> {
        self.dashboard_link.as_deref()
    }

    /// The panic message, if the core panicked (a bug in rask); the
    /// scheduler has then stopped serving.
    pub fn failure(&self) -> Option<String> {
        self.failed.borrow().clone()
    }

    /// Waits until the core panics and returns the panic's message; never
    /// returns while the scheduler is fine. A program running a scheduler
    /// waits on this next to its other reasons to stop (`rask-scheduler`
    /// exits with status 1).
    pub async fn failed(&self) -> String {
        let mut rx = self.failed.clone();
        loop {
            if let Some(m) = rx.borrow_and_update().clone() {
                return m;
            }
            if rx.changed().await.is_err() {
                // The core ended without a panic: nothing will come.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Stops the scheduler: sends `close` to every peer, closes every
    /// connection, and waits until that is done. From a thread of a tokio
    /// runtime it cannot block: it starts the shutdown and returns (use
    /// [`Self::shutdown_async`] there).
    pub fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if !self.request_stop(tx) {
            return;
        }
        if tokio::runtime::Handle::try_current().is_err() {
            let _ = rx.blocking_recv();
        }
    }

    /// [`Self::shutdown`], awaitable.
    pub async fn shutdown_async(&self) {
        let (tx, rx) = oneshot::channel();
        if self.request_stop(tx) {
            let _ = rx.await;
        }
    }

    fn request_stop(&self, done: oneshot::Sender<()>) -> bool {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return false;
        }
        self.tx.send(Event::Shutdown(done)).is_ok()
    }

    /// Counts of tasks, workers, clients and connections, or `None` once
    /// shut down. Blocks; from inside a runtime use [`Self::stats_async`].
    pub fn stats(&self) -> Option<SchedulerStats> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Event::Stats(tx)).ok()?;
        rx.blocking_recv().ok()
    }

    /// [`Self::stats`], awaitable.
    pub async fn stats_async(&self) -> Option<SchedulerStats> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Event::Stats(tx)).ok()?;
        rx.await.ok()
    }
}

impl Drop for SchedulerHandle {
    fn drop(&mut self) {
        let (tx, _rx) = oneshot::channel();
        self.request_stop(tx);
    }
}

impl std::fmt::Debug for SchedulerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchedulerHandle")
            .field("address", &self.address)
            .finish()
    }
}

// ------------------------------------------------------------------ events

enum Event {
    Connected {
        id: u64,
        role: Role,
        name: String,
        outbox: Outbox,
        kill: oneshot::Sender<()>,
        /// On loopback, or it passed the token or TLS: a client that may
        /// send shipped functions.
        trusted: bool,
    },
    /// Decoded messages, of the connection's role's type.
    Messages {
        id: u64,
        msgs: Inbound,
    },
    Disconnected {
        id: u64,
    },
    Stats(oneshot::Sender<SchedulerStats>),
    /// The dashboard wants a snapshot (never sent without one).
    /// `true`: a new one (a performance report), else one within the
    /// dashboard's budget (see `Recorder::sample`).
    Sample(oneshot::Sender<Arc<Snapshot>>, bool),
    Shutdown(oneshot::Sender<()>),
}

/// Accepts connections through `gate` until the stop signal (or the core
/// is gone); each one is served by [`serve`].
async fn accept(
    listener: TcpListener,
    gate: Arc<Gate>,
    tx: mpsc::UnboundedSender<Event>,
    stop: watch::Receiver<bool>,
    alive: mpsc::Sender<()>,
) {
    let trusting = gate.config().token.is_some() || gate.config().tls.is_some();
    let stopped = move || {
        let mut stop = stop.clone();
        async move {
            // A sent `true`, or the core gone (its sender dropped).
            let _ = stop.wait_for(|&s| s).await;
        }
    };
    gate.serve(listener, stopped, move |a| {
        serve(a, trusting, tx.clone(), alive.clone())
    })
    .await
}

/// What one connection sent, typed by its role.
enum Inbound {
    Worker(Vec<WorkerMessage>),
    Client(Vec<ClientMessage>),
}

impl Inbound {
    fn new(role: Role) -> Inbound {
        match role {
            Role::Worker => Inbound::Worker(Vec::new()),
            // `peer` is refused at the handshake.
            _ => Inbound::Client(Vec::new()),
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Inbound::Worker(v) => v.is_empty(),
            Inbound::Client(v) => v.is_empty(),
        }
    }

    /// Adds `m` if the connection's role may send it (the role check:
    /// the conversion to the role's message type); gives it back if not.
    // The refused message is given back whole to be answered: moving it
    // costs less than boxing every one.
    #[allow(clippy::result_large_err)]
    fn push(&mut self, m: Message) -> Result<(), Message> {
        match self {
            Inbound::Worker(v) => v.push(WorkerMessage::try_from(m)?),
            Inbound::Client(v) => v.push(ClientMessage::try_from(m)?),
        }
        Ok(())
    }
}

/// One admitted connection: frames in → events out. Returns its inbox
/// for the gate to close (lingering) once the connection is done.
/// `trusting`: the scheduler has a token or TLS, so every admitted peer is
/// authenticated.
async fn serve(
    a: Admitted,
    trusting: bool,
    tx: mpsc::UnboundedSender<Event>,
    _alive: mpsc::Sender<()>,
) -> Inbox {
    let Admitted {
        id,
        hello,
        peer,
        mut inbox,
        outbox,
        ..
    } = a;
    let role = hello.role;
    let (kill_tx, mut kill_rx) = oneshot::channel();
    if tx
        .send(Event::Connected {
            id,
            role,
            name: hello.name.clone(),
            outbox: outbox.clone(),
            kill: kill_tx,
            trusted: trusting || peer.ip().to_canonical().is_loopback(),
        })
        .is_err()
    {
        return inbox;
    }
    loop {
        tokio::select! {
            r = inbox.recv() => match r {
                Ok(Some(received)) => {
                    let mut good = Inbound::new(role);
                    for m in received.messages {
                        match m {
                            Ok(Message::Error { message, code, .. }) => {
                                warn!("{role:?} '{}' (id {id}) sent an error: {message} ({code:?})", hello.name);
                            }
                            Ok(m) => {
                                if let Err(m) = good.push(m) {
                                    let role_name = if role == Role::Worker { "a worker" } else { "a client" };
                                    outbox.send(m.error_reply(
                                        format!("'{}' is not a message {role_name} may send to the scheduler", m.op()),
                                        ErrorCode::BadMessage,
                                    ));
                                }
                            }
                            Err(e) => {
                                debug!("bad message from {peer}: {e}");
                                outbox.send(e.reply());
                            }
                        }
                    }
                    if !good.is_empty() && tx.send(Event::Messages { id, msgs: good }).is_err() {
                        break;
                    }
                }
                Ok(None) => {
                    debug!("{role:?} '{}' (id {id}) closed the connection", hello.name);
                    break;
                }
                Err(e) => {
                    // Say why before closing (the gate then reads what is
                    // left, so the peer reads this, not a reset).
                    warn!("closing the connection of {role:?} '{}' (id {id}, {peer}): {e}", hello.name);
                    outbox.send(Message::error(
                        format!("{e}; the scheduler closes the connection"),
                        ErrorCode::BadStream,
                    ));
                    break;
                }
            },
            _ = &mut kill_rx => break,
        }
    }
    let _ = tx.send(Event::Disconnected { id });
    inbox
}

// -------------------------------------------------------------------- core

enum Kind {
    Client(ClientId),
    /// `None` until `register-worker`.
    Worker(Option<WorkerId>),
    /// A worker that retired: it was sent `close` and removed from the
    /// state; whatever else it sends is ignored until it disconnects.
    Retired,
}

struct Conn {
    name: String,
    kind: Kind,
    outbox: Outbox,
    kill: Option<oneshot::Sender<()>>,
    pending: Vec<Message>,
}

struct Core {
    state: SchedulerState,
    conns: FxHashMap<u64, Conn>,
    worker_conn: FxHashMap<WorkerId, u64>,
    client_conn: FxHashMap<ClientId, u64>,
    out: Vec<Outgoing>,
    /// Connections with pending messages.
    dirty: Vec<u64>,
    start: Instant,
    heartbeat_timeout: Duration,
    trim: HeapTrim,
    /// With a dashboard: what it shows, recorded as events pass (see
    /// [`super::dashboard`]).
    recorder: Option<Box<(Recorder, SnapshotInfo)>>,
    /// `RASK_VALIDATE`: checks the state's invariants after each step
    /// (see [`crate::invariants`]).
    checker: crate::invariants::Checker,
    /// Events of client connections left for later steps (see
    /// [`RELEASE_CHUNK`]), in each connection's order: while a connection
    /// has some, its new events queue behind them.
    held: FxHashMap<u64, VecDeque<Event>>,
    /// The connections in `held`, taken in turn, one event each.
    turns: VecDeque<u64>,
}

/// The most keys one step releases. A client that releases (or leaves
/// with) more is served over several steps, one chunk of its keys each,
/// taking turns with every other event: releasing a million keys holds the
/// core for a second or more (several on a loaded machine), and other
/// clients and workers — a `get-info`, heartbeats — must not wait for it.
const RELEASE_CHUNK: usize = 1 << 16;

/// When to give freed heap memory back to the system. glibc's malloc keeps
/// what a large release frees (in its arenas, and below anything still
/// allocated above it) and the scheduler's RSS would stay at its peak for
/// good: after a million tasks are released, ~650 MB of a ~530 MB-peak
/// scheduler stayed resident (tests/load.rs). So after a large release, the
/// live tasks having fallen to a quarter of their high-water mark (of at
/// least [`HeapTrim::FROM`] tasks), or the task tables having been given
/// back (`SchedulerState::shrunk`), `malloc_trim(0)` runs on a thread of its
/// own (it walks every arena; the core does not wait for it).
#[derive(Default)]
struct HeapTrim {
    high_water: usize,
    shrunk_seen: u64,
    /// Ticks that still trim.
    due: u8,
}

impl HeapTrim {
    const FROM: usize = 1 << 16;
    const TICKS: u8 = 2;

    /// Whether a large release just happened (a trim is due).
    fn after_events(&mut self, state: &SchedulerState) -> bool {
        let live = state.counts().tasks;
        self.high_water = self.high_water.max(live);
        let shrunk = state.shrunk();
        let released = self.high_water >= Self::FROM && live <= self.high_water / 4;
        if shrunk != self.shrunk_seen || released {
            self.shrunk_seen = shrunk;
            self.high_water = live;
            self.due = Self::TICKS;
            return true;
        }
        false
    }

    /// On the core's periodic tick: trims when a large release happened
    /// before it, and once more on the tick after, for what closing
    /// connections and draining queues free meanwhile.
    fn on_tick(&mut self) {
        if self.due > 0 {
            self.due -= 1;
            release_freed_memory();
        }
    }
}

/// Returns the heap's free memory to the system, in the background (glibc;
/// elsewhere nothing).
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn malloc_trim(pad: usize) -> std::ffi::c_int;
        }
        let _ = std::thread::Builder::new()
            .name("rask-heap-trim".into())
            // SAFETY: malloc_trim takes the arenas' locks itself; any thread
            // may call it at any time.
            .spawn(|| unsafe {
                malloc_trim(0);
            });
    }
}

impl Core {
    async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<Event>,
        stop: watch::Sender<bool>,
        mut alive: mpsc::Receiver<()>,
        gate: Arc<Gate>,
    ) {
        let period =
            (self.heartbeat_timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let done = loop {
            // The earliest deadline of a coordination wait (a queue get
            // with a timeout, ...), answered on time rather than at a tick.
            let coord_deadline = self.state.coord_deadline().map(|d| {
                tokio::time::Instant::from_std(self.start + Duration::from_secs_f64(d.max(0.0)))
            });
            let coord_timer = async {
                match coord_deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = coord_timer => {
                    let now = self.now();
                    self.state.coord_tick(now, &mut self.out);
                    self.route();
                    self.flush();
                }
                ev = rx.recv() => {
                    let Some(ev) = ev else { break None };
                    let busy_from = self.recorder.is_some().then(Instant::now);
                    let mut stop_reply = None;
                    if let Some(r) = self.admit(ev) {
                        stop_reply = Some(r);
                    }
                    while stop_reply.is_none() {
                        match rx.try_recv() {
                            Ok(ev) => stop_reply = self.admit(ev),
                            Err(_) => break,
                        }
                    }
                    self.flush();
                    if self.trim.after_events(&self.state) {
                        // The outgoing list grew with the load: give it back too.
                        self.out = Vec::new();
                    }
                    if let (Some(t0), Some(r)) = (busy_from, self.recorder.as_mut()) {
                        r.0.busy(t0.elapsed());
                    }
                    if stop_reply.is_some() {
                        break stop_reply;
                    }
                }
                // A held event (the next chunk of a large release), taking
                // turns with new events (select! picks among ready branches
                // at random).
                _ = std::future::ready(()), if !self.turns.is_empty() => {
                    self.handle_held();
                    self.flush();
                    if self.trim.after_events(&self.state) {
                        self.out = Vec::new();
                    }
                }
                _ = tick.tick() => {
                    let busy_from = self.recorder.is_some().then(Instant::now);
                    self.check_heartbeats();
                    let now = self.now();
                    self.state.tick(now, &mut self.out);
                    self.route();
                    self.flush();
                    if self.turns.is_empty() {
                        // Not in the middle of a large release: the trim
                        // would take the allocator's locks from it.
                        self.trim.on_tick();
                    }
                    if let (Some(t0), Some(r)) = (busy_from, self.recorder.as_mut()) {
                        r.0.busy(t0.elapsed());
                    }
                }
            }
        };
        // Shut down: no new connections, `close` to everyone, close all.
        let _ = stop.send(true);
        let mut closing = Vec::with_capacity(self.conns.len());
        for (_, c) in self.conns.drain() {
            c.outbox.send(Message::Close {
                reason: "the scheduler is shutting down".into(),
            });
            // Its writer writes what is queued (the `close` last), ends
            // the stream, and ends.
            c.outbox.close();
            closing.push(c.outbox);
            drop(c.kill);
        }
        drop(rx);
        // Every connection task holds an `alive` sender; recv() returns
        // None once they have all ended.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let _ = tokio::time::timeout_at(deadline, alive.recv()).await;
        // Wait for the writers to have written their `close` (a process
        // exits right after `shutdown` returns), each within what is left
        // of the bound: a peer that reads nothing cannot hold the shutdown.
        let flush_deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        for o in &closing {
            if tokio::time::timeout_at(flush_deadline, o.flushed())
                .await
                .is_err()
            {
                warn!("shutting down: some peers were not sent everything within 2 s");
                break;
            }
        }
        // Wait for the lingering closes (each reads until its peer ends the
        // stream, which a peer does once it has read its `close`): a socket
        // closed by the process exiting with unread bytes would be reset,
        // and the reset could cost a peer its `close`.
        if tokio::time::timeout(crate::protocol::gate::LINGER, gate.all_closed())
            .await
            .is_err()
        {
            debug!("shutting down: {} connections still closing", gate.open());
        }
        info!("scheduler stopped");
        if let Some(reply) = done {
            let _ = reply.send(());
        }
    }

    fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// Handles a new event, or queues it behind its connection's held
    /// events.
    fn admit(&mut self, ev: Event) -> Option<oneshot::Sender<()>> {
        let id = match &ev {
            Event::Messages { id, .. } | Event::Disconnected { id } => Some(*id),
            _ => None,
        };
        if let Some(q) = id.and_then(|id| self.held.get_mut(&id)) {
            q.push_back(ev);
            return None;
        }
        self.handle(ev)
    }

    /// Handles the first held event of the next connection in turn.
    fn handle_held(&mut self) {
        let Some(id) = self.turns.pop_front() else {
            return;
        };
        let Some(ev) = self.held.get_mut(&id).and_then(VecDeque::pop_front) else {
            self.held.remove(&id);
            return;
        };
        if self.held.get(&id).is_some_and(VecDeque::is_empty) {
            self.held.remove(&id);
        } else {
            self.turns.push_back(id);
        }
        // Held events are client messages and disconnections: never a
        // shutdown.
        let _ = self.handle(ev);
    }

    /// Puts `ev` first among connection `id`'s held events.
    fn hold_front(&mut self, id: u64, ev: Event) {
        self.held.entry(id).or_default().push_front(ev);
        if !self.turns.contains(&id) {
            self.turns.push_back(id);
        }
    }

    /// Handles one event; returns the reply channel on shutdown.
    fn handle(&mut self, ev: Event) -> Option<oneshot::Sender<()>> {
        match ev {
            Event::Connected {
                id,
                role,
                name,
                outbox,
                kill,
                trusted,
            } => {
                let kind = match role {
                    Role::Client => {
                        let c = self.state.add_client_with(id, &name, trusted);
                        self.client_conn.insert(c, id);
                        Kind::Client(c)
                    }
                    _ => Kind::Worker(None),
                };
                info!("{role:?} '{name}' connected (id {id})");
                if let (Role::Client, Some(r)) = (role, self.recorder.as_mut()) {
                    let now = self.start.elapsed().as_secs_f64();
                    r.0.event(now, format!("client '{name}' (id {id}) connected"));
                }
                self.conns.insert(
                    id,
                    Conn {
                        name,
                        kind,
                        outbox,
                        kill: Some(kill),
                        pending: Vec::new(),
                    },
                );
            }
            Event::Messages {
                id,
                msgs: Inbound::Client(msgs),
            } => {
                let now = self.now();
                let mut msgs = msgs.into_iter();
                while let Some(m) = msgs.next() {
                    let conn = self.conns.get_mut(&id)?;
                    let Kind::Client(c) = conn.kind else {
                        continue;
                    };
                    if matches!(&m, ClientMessage::ReleaseKeys { keys, .. } if keys.len() > RELEASE_CHUNK)
                    {
                        // The first chunk now, the rest (and what follows
                        // it) in later steps.
                        let ClientMessage::ReleaseKeys { mut keys, id: req } = m else {
                            unreachable!()
                        };
                        let rest = keys.split_off(RELEASE_CHUNK);
                        self.state.release_keys(c, &keys, &mut self.out);
                        let mut later = vec![ClientMessage::ReleaseKeys {
                            keys: rest,
                            id: req,
                        }];
                        later.extend(msgs);
                        self.hold_front(
                            id,
                            Event::Messages {
                                id,
                                msgs: Inbound::Client(later),
                            },
                        );
                        self.route();
                        return None;
                    }
                    self.state.handle_client_message(c, m, now, &mut self.out);
                    self.route();
                }
            }
            Event::Messages {
                id,
                msgs: Inbound::Worker(msgs),
            } => {
                let now = self.now();
                if msgs.len() > 1 {
                    self.state.warm(msgs.iter().filter_map(|m| match m {
                        WorkerMessage::TaskFinished { key, .. } => Some(key.as_str()),
                        _ => None,
                    }));
                }
                for m in msgs {
                    let conn = self.conns.get_mut(&id)?;
                    match conn.kind {
                        Kind::Worker(Some(w)) => {
                            if let Some(r) = self.recorder.as_mut() {
                                record(&mut r.0, &self.state, w, &m, now);
                            }
                            self.state.handle_worker_message(w, m, now, &mut self.out)
                        }
                        Kind::Retired | Kind::Client(_) => {}
                        Kind::Worker(None) => match m {
                            WorkerMessage::RegisterWorker {
                                address,
                                threads,
                                functions,
                                memory_limit,
                                runtime,
                            } => {
                                // A worker that does not name its runtime
                                // may still show it by the shipped
                                // functions it runs (`code:<runtime>`).
                                let runtime = if runtime.is_empty() {
                                    functions
                                        .iter()
                                        .find_map(|f| f.strip_prefix("code:"))
                                        .unwrap_or_default()
                                        .to_string()
                                } else {
                                    runtime
                                };
                                info!(
                                    "worker '{}' (id {id}) registered: {address}, {threads} threads, {} functions, runtime '{runtime}'",
                                    conn.name,
                                    functions.len()
                                );
                                let reg = WorkerRegistration {
                                    ext_id: id,
                                    name: conn.name.clone(),
                                    address,
                                    threads,
                                    functions,
                                    memory_limit,
                                    runtime,
                                };
                                let w = self.state.add_worker(reg, now, &mut self.out);
                                if let Some(r) = self.recorder.as_mut() {
                                    r.0.worker_joined(
                                        w,
                                        id,
                                        now,
                                        format!(
                                            "worker '{}' (id {id}) registered at {}, {} threads",
                                            conn.name,
                                            self.state.worker(w).map_or("", |x| x.address()),
                                            self.state.worker(w).map_or(0, |x| x.threads())
                                        ),
                                    );
                                }
                                conn.kind = Kind::Worker(Some(w));
                                self.worker_conn.insert(w, id);
                            }
                            WorkerMessage::Close { .. }
                            | WorkerMessage::Heartbeat { .. }
                            | WorkerMessage::Error { .. } => {}
                            other => {
                                // Worker messages carry no request id.
                                conn.pending.push(Message::error(
                                    format!(
                                        "'{}' before 'register-worker': a worker registers first",
                                        other.op()
                                    ),
                                    ErrorCode::BadMessage,
                                ));
                                self.dirty.push(id);
                            }
                        },
                    }
                    self.route();
                }
            }
            Event::Disconnected { id } => self.drop_conn(id),
            Event::Stats(reply) => {
                let _ = reply.send(SchedulerStats {
                    counts: self.state.counts(),
                    connections: self.conns.len(),
                });
            }
            Event::Sample(reply, fresh) => {
                let now = self.now();
                if let Some(r) = self.recorder.as_mut() {
                    r.1.connections = self.conns.len();
                    let _ = reply.send(r.0.sample(&self.state, &r.1, now, fresh));
                }
            }
            Event::Shutdown(reply) => return Some(reply),
        }
        None
    }

    fn drop_conn(&mut self, id: u64) {
        if let Some(Conn {
            kind: Kind::Client(c),
            ..
        }) = self.conns.get(&id)
        {
            // What it wanted is released a chunk per step (see
            // RELEASE_CHUNK); the client goes with the last chunk.
            let c = *c;
            if self
                .state
                .release_some_wants(c, RELEASE_CHUNK, &mut self.out)
                > 0
            {
                self.hold_front(id, Event::Disconnected { id });
                self.route();
                return;
            }
        }
        let Some(conn) = self.conns.remove(&id) else {
            return;
        };
        match conn.kind {
            Kind::Client(c) => {
                info!("client '{}' (id {id}) disconnected", conn.name);
                if let Some(r) = self.recorder.as_mut() {
                    let now = self.start.elapsed().as_secs_f64();
                    r.0.event(
                        now,
                        format!("client '{}' (id {id}) disconnected", conn.name),
                    );
                }
                self.client_conn.remove(&c);
                self.state.remove_client(c, &mut self.out);
            }
            Kind::Worker(Some(w)) => {
                info!("worker '{}' (id {id}) left", conn.name);
                if let Some(r) = self.recorder.as_mut() {
                    let now = self.start.elapsed().as_secs_f64();
                    r.0.worker_left(w, now, format!("worker '{}' (id {id}) left", conn.name));
                }
                self.worker_conn.remove(&w);
                self.state.remove_worker(w, &mut self.out);
            }
            Kind::Worker(None) => {}
            Kind::Retired => debug!("retired worker '{}' (id {id}) disconnected", conn.name),
        }
        self.route();
    }

    fn check_heartbeats(&mut self) {
        let now = self.now();
        let timeout = self.heartbeat_timeout.as_secs_f64();
        for w in self.state.stale_workers(now, timeout) {
            let Some(&id) = self.worker_conn.get(&w) else {
                continue;
            };
            if let Some(conn) = self.conns.get(&id) {
                warn!(
                    "worker '{}' (id {id}) sent nothing for {timeout} s: removing it",
                    conn.name
                );
                conn.outbox.send(Message::Close {
                    reason: format!("no message for {timeout} s (heartbeat timeout)"),
                });
            }
            // Dropping `kill` ends its connection task.
            self.drop_conn(id);
        }
    }

    /// Renders what the last stimulus recorded into the connections'
    /// pending lists.
    fn route(&mut self) {
        for o in self.out.drain(..) {
            let Some((dest, msg)) = self.state.render(o) else {
                continue;
            };
            let id = match dest {
                Dest::Worker(w) => self.worker_conn.get(&w),
                Dest::Client(c) => self.client_conn.get(&c),
            };
            let Some(&id) = id else { continue };
            if let Some(conn) = self.conns.get_mut(&id) {
                if conn.pending.is_empty() {
                    self.dirty.push(id);
                }
                conn.pending.push(msg);
            }
        }
        // Retired (or removed: unreachable) workers were sent `close`
        // (just rendered) and left the state: their ids may be reused, so
        // their connections are no longer theirs.
        for w in self.state.take_retired() {
            if let Some(id) = self.worker_conn.remove(&w) {
                if let Some(conn) = self.conns.get_mut(&id) {
                    info!(
                        "worker '{}' (id {id}) left the cluster (retired or removed)",
                        conn.name
                    );
                    if let Some(r) = self.recorder.as_mut() {
                        let now = self.start.elapsed().as_secs_f64();
                        r.0.worker_left(
                            w,
                            now,
                            format!(
                                "worker '{}' (id {id}) left the cluster (retired or removed)",
                                conn.name
                            ),
                        );
                    }
                    conn.kind = Kind::Retired;
                }
            }
        }
    }

    /// Ends a step: sends what the state decided, then (with
    /// `RASK_VALIDATE`) checks its invariants.
    fn flush(&mut self) {
        let state = &self.state;
        self.checker
            .after_step(state.counts().tasks, || state.validate());
        for id in self.dirty.drain(..) {
            if let Some(conn) = self.conns.get_mut(&id) {
                // One channel operation (one writer wakeup) per connection.
                conn.outbox.send_many(std::mem::take(&mut conn.pending));
            }
        }
    }
}

/// What the dashboard records of a worker's message, before the core
/// handles it (see [`super::dashboard`]).
#[inline]
fn record(r: &mut Recorder, state: &SchedulerState, w: WorkerId, m: &WorkerMessage, now: f64) {
    match m {
        WorkerMessage::TaskFinished {
            key,
            nbytes,
            duration,
            ..
        } => {
            if let Some(f) = state.processing_func(key, w) {
                r.task_finished(f, w, *duration, *nbytes, now);
            }
        }
        WorkerMessage::TaskErred { key, message, .. } => {
            if let Some(f) = state.processing_func(key, w) {
                r.task_erred(f, w, key, message, now);
            }
        }
        WorkerMessage::AddKeys {
            nbytes,
            from,
            duration,
            ..
        } => {
            let source = if from.is_empty() {
                None
            } else {
                state.worker_at(from)
            };
            r.fetched(w, nbytes.iter().sum(), source, *duration, now)
        }
        WorkerMessage::Heartbeat {
            memory, process, ..
        } => r.memory_sample(w, *memory, *process, now),
        _ => {}
    }
}

/// The dashboard's default address, as Dask's: loopback port 8787 (a free
/// port of 127.0.0.1 when that one is taken).
pub const DEFAULT_DASHBOARD: &str = "127.0.0.1:8787";

/// Binds the dashboard's address (`HOST:PORT`); returns the listener and
/// the link to its status page. [`DEFAULT_DASHBOARD`] falls back to a free
/// port when taken.
fn bind_dashboard(a: &str) -> std::io::Result<(std::net::TcpListener, String)> {
    let bad = |why: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, why);
    let addr = a
        .to_socket_addrs()
        .map_err(|e| bad(format!("bad dashboard address '{a}' (want HOST:PORT): {e}")))?
        .next()
        .ok_or_else(|| bad(format!("dashboard address '{a}' does not resolve")))?;
    let l = match std::net::TcpListener::bind(addr) {
        Err(e) if a == DEFAULT_DASHBOARD && e.kind() == std::io::ErrorKind::AddrInUse => {
            tracing::warn!(
                "the dashboard cannot have {DEFAULT_DASHBOARD} ({e}): serving it on a free port instead"
            );
            std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
        }
        r => r,
    }
    .map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot serve the dashboard on {a}: {e}"))
    })?;
    l.set_nonblocking(true)?;
    let mut local = l.local_addr()?;
    if local.ip().is_unspecified() {
        local.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    Ok((l, format!("http://{local}/status")))
}

/// The settings a dashboard and performance report show.
fn settings_of(c: &SchedulerConfig, address: &str) -> Vec<(String, String)> {
    let o = &c.options;
    vec![
        ("address".into(), address.to_string()),
        ("name".into(), c.name.clone()),
        ("rask version".into(), env!("CARGO_PKG_VERSION").into()),
        (
            "protocol version".into(),
            crate::protocol::messages::PROTOCOL_VERSION.to_string(),
        ),
        (
            "heartbeat timeout".into(),
            format!("{:?}", c.heartbeat_timeout),
        ),
        ("max connections".into(), c.max_connections.to_string()),
        ("auth token".into(), c.token.is_some().to_string()),
        ("tls".into(), c.tls.is_some().to_string()),
        (
            "backlog per thread".into(),
            o.backlog_per_thread.to_string(),
        ),
        ("allowed failures".into(), o.allowed_failures.to_string()),
        ("retire timeout (s)".into(), o.retire_timeout.to_string()),
    ]
}

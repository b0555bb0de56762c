//! The tokio glue: the scheduler connection, heartbeats, the data port and
//! the links to peers. These tasks only move frames: they decode what
//! arrives, hand it to the core through [`Shared::apply`], and write what
//! the core decided.

use super::shared::Shared;
use super::state::{ComputeTask, MemoryVerdict};
use crate::protocol::conn::Received;
use crate::protocol::conn::{self, Inbox, Outbox};
use crate::protocol::gate::{Admitted, Gate};
use crate::protocol::messages::Role;
use crate::protocol::shm::{self, Segment};
use crate::protocol::{
    fds_used, narrow, pack_batches_local, unpack_value_in, BadMessage, DataReply, DataRequest,
    ErrorCode, Message, Packed, PackedBatch, SchedulerToWorker,
};
use crate::value::{Tensor, Value};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::mpsc;

/// Messages from the scheduler handled per lock acquisition, so pool
/// threads start on the first tasks of a large batch while the rest are
/// still being queued.
const CHUNK: usize = 256;
/// Longest the scheduler connection's reader runs cheap tasks itself per
/// batch of messages before leaving the rest to the pool threads.
const INLINE_BUDGET: Duration = Duration::from_micros(200);
/// Most keys asked for in one `get-data`.
const MAX_FETCH: usize = 1024;
/// Most values in one `data` reply (each is a frame; receivers cap frames).
const MAX_REPLY: usize = crate::protocol::payload::MAX_BATCH_VALUES;

/// What the scheduler link and the data port call themselves in a
/// `bad-message` answering a message of another direction.
const AS_SCHEDULER_LINK: &str = "a worker takes from the scheduler";
const AS_DATA_PORT: &str = "a worker's data port takes";
const AS_PEER_LINK: &str = "a worker takes from a peer's data port";

async fn stopped(shared: &Shared) {
    let mut rx = shared.shutdown.subscribe();
    let _ = rx.wait_for(|&s| s).await;
}

// ------------------------------------------------------------ scheduler

enum Event {
    Compute(ComputeTask),
    Free(Vec<String>),
    Acquire(BTreeMap<String, Vec<String>>),
    Retire(String),
}

/// Reads the scheduler connection until the scheduler closes it or the
/// worker stops; a lost connection is reconnected within the reconnect
/// timeout (see the module docs of [`crate::worker`]).
pub(crate) async fn scheduler_loop(shared: Arc<Shared>, mut inbox: Inbox, mut outbox: Outbox) {
    loop {
        let (reason, clean) = loop {
            let r = tokio::select! {
                r = inbox.recv() => r,
                _ = stopped(&shared) => return,
                _ = shared.restart.notified() => {
                    // Ends this connection: the scheduler sees the worker
                    // leave, and recomputes or finds elsewhere what it held.
                    outbox.close();
                    break ("memory use passed the terminate fraction of the memory limit: restarting".to_string(), false);
                }
            };
            match r {
                Ok(Some(received)) => {
                    if let Some(reason) = handle_batch(&shared, &outbox, received.messages) {
                        break (reason, true);
                    }
                }
                Ok(None) => {
                    break (
                        "the connection to the scheduler was lost".to_string(),
                        false,
                    )
                }
                Err(e) => {
                    break (
                        format!("the connection to the scheduler failed: {e}"),
                        false,
                    )
                }
            }
        };
        let retiring = shared.core.lock().state.is_retiring();
        let restarting = !clean && reason.contains("restarting");
        if clean || (shared.reconnect_timeout.is_zero() && !restarting) || retiring {
            shared.stop(reason, false, clean);
            return;
        }
        let addr = &shared.scheduler_address;
        let limit = shared.reconnect_timeout;
        tracing::warn!(
            worker = %shared.name,
            "lost the scheduler at {addr}: {reason}; reconnecting for up to {} s",
            limit.as_secs_f64()
        );
        {
            // The old session is over: its scheduler is gone, or has
            // already rescheduled what this worker held.
            let mut g = shared.core.lock();
            g.scheduler = None;
            g.state.reset();
        }
        shared.peers.lock().clear();
        shared
            .restarts
            .fetch_add(restarting as u64, std::sync::atomic::Ordering::Relaxed);
        match reconnect(&shared, restarting).await {
            Ok((i, o, welcome)) => {
                o.send(shared.registration.clone());
                {
                    let mut g = shared.core.lock();
                    if shared.is_stopped() {
                        return;
                    }
                    // Host threads (pulled tasks ending, seceding) write
                    // their messages themselves when the writer is idle.
                    o.set_direct(true);
                    g.scheduler = Some(o.clone());
                }
                shared
                    .id
                    .store(welcome.id, std::sync::atomic::Ordering::Relaxed);
                tracing::info!(
                    worker = %shared.name,
                    id = welcome.id,
                    "reconnected to the scheduler at {addr}; registered again as a new worker"
                );
                inbox = i;
                outbox = o;
            }
            Err(Some(last)) => {
                shared.stop(
                    format!(
                        "lost the scheduler at {addr} ({reason}) and could not reconnect within {} s: {last}",
                        limit.as_secs_f64()
                    ),
                    false,
                    false,
                );
                return;
            }
            Err(None) => return, // stopped meanwhile
        }
    }
}

/// Tries to connect to the scheduler again, with backoff (100 ms doubling
/// to 2 s), until the reconnect timeout. `Err(None)`: the worker stopped
/// meanwhile; `Err(Some(e))`: the last error at the deadline.
async fn reconnect(
    shared: &Arc<Shared>,
    restarting: bool,
) -> Result<(Inbox, Outbox, crate::protocol::conn::Welcome), Option<String>> {
    // A restart (not a lost connection) tries at least for the connect
    // timeout, even when reconnecting is off.
    let limit = if restarting {
        shared.reconnect_timeout.max(shared.connect_timeout)
    } else {
        shared.reconnect_timeout
    };
    let deadline = tokio::time::Instant::now() + limit;
    let mut pause = Duration::from_millis(100);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let attempt = conn::connect_with(
            &shared.scheduler_address,
            shared.tls.as_ref(),
            Role::Worker,
            &shared.name,
            shared.token.clone(),
            shared.limits,
            shared
                .connect_timeout
                .min(left.max(Duration::from_millis(100))),
        );
        let r = tokio::select! {
            r = attempt => r,
            _ = stopped(shared) => return Err(None),
        };
        let e = match r {
            Ok(c) => return Ok(c),
            Err(e) => e.0,
        };
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Err(Some(e));
        }
        tracing::debug!(worker = %shared.name, "reconnecting: {e}");
        let wake = (now + pause).min(deadline);
        tokio::select! {
            _ = tokio::time::sleep_until(wake) => {}
            _ = stopped(shared) => return Err(None),
        }
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

/// Handles one batch; returns a reason to stop if the scheduler said
/// `close`.
fn handle_batch(
    shared: &Arc<Shared>,
    outbox: &Outbox,
    messages: Vec<Result<Message, BadMessage>>,
) -> Option<String> {
    let mut events = Vec::with_capacity(messages.len().min(CHUNK));
    let deadline = std::time::Instant::now() + INLINE_BUDGET;
    let flush = |events: &mut Vec<Event>| {
        if events.is_empty() {
            return;
        }
        // Queue without waking the pool: cheap tasks run right here.
        shared.apply_with(false, |s| {
            for ev in events.drain(..) {
                match ev {
                    Event::Compute(t) => s.compute_task(t),
                    Event::Free(keys) => s.free_keys(&keys),
                    Event::Acquire(who_has) => s.acquire_replicas(who_has),
                    Event::Retire(reason) => {
                        tracing::info!(worker = %shared.name, %reason, "retiring");
                        s.retire(None)
                    }
                }
            }
        });
        super::exec::run_inline(shared, deadline);
    };
    for m in messages {
        match narrow::<SchedulerToWorker>(m, AS_SCHEDULER_LINK) {
            Ok(SchedulerToWorker::ComputeTask {
                key,
                func,
                args,
                priority,
                who_has,
            }) => events.push(Event::Compute(ComputeTask::new(
                key, func, &args, priority, who_has,
            ))),
            Ok(SchedulerToWorker::FreeKeys { keys }) => events.push(Event::Free(keys)),
            Ok(SchedulerToWorker::AcquireReplicas { who_has }) => {
                events.push(Event::Acquire(who_has))
            }
            Ok(SchedulerToWorker::Retire { reason }) => events.push(Event::Retire(reason)),
            Ok(SchedulerToWorker::Close { reason }) => {
                flush(&mut events);
                return Some(if reason.is_empty() {
                    "the scheduler closed the connection".into()
                } else {
                    format!("the scheduler closed the connection: {reason}")
                });
            }
            Ok(SchedulerToWorker::Error { message, code, .. }) => {
                tracing::warn!(worker = %shared.name, ?code, "the scheduler reported an error: {message}");
            }
            // Undecodable, or a message of another direction.
            Err(e) => {
                tracing::warn!(worker = %shared.name, "bad message from the scheduler: {e}");
                outbox.send(e.reply());
            }
        }
        if events.len() >= CHUNK {
            flush(&mut events);
        }
    }
    flush(&mut events);
    None
}

/// Sends a heartbeat every `interval` until the worker stops.
pub(crate) async fn heartbeats(shared: Arc<Shared>, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate
    let mut warned = false;
    let mut cpu_last = super::sysmem::process_cpu_time().map(|t| (t, std::time::Instant::now()));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped(&shared) => return,
        }
        // CPU use since the last heartbeat (not measured: none sent).
        let cpu = match (cpu_last, super::sysmem::process_cpu_time()) {
            (Some((t0, w0)), Some(t1)) => {
                let now = std::time::Instant::now();
                cpu_last = Some((t1, now));
                Some(super::sysmem::cpu_percent(t0, t1, now - w0))
            }
            _ => None,
        };
        let mut g = shared.core.lock();
        if let Some(cpu) = cpu {
            g.state.cpu_sample(cpu);
        }
        // None while reconnecting (a stopped worker returned above).
        let Some(o) = &g.scheduler else { continue };
        o.send(g.state.heartbeat());
        // Without a disk (no spilling) the limit may not hold: say so once
        // per excursion.
        let store = g.state.store();
        if store.over_limit() && !warned {
            tracing::warn!(
                worker = %shared.name,
                held = store.bytes(),
                limit = store.limit(),
                "the worker holds more data in memory than its memory limit"
            );
        }
        warned = store.over_limit();
    }
}

/// Measures the process's memory every `interval` and hands it to the
/// core ([`WorkerState::memory_sample`](super::state::WorkerState::memory_sample)),
/// which spills, pauses or resumes; restarts the worker when it says so.
pub(crate) async fn memory_monitor(shared: Arc<Shared>, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_spilled = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped(&shared) => return,
        }
        // Pooled receive buffers nobody reused lately go back first, so
        // they do not count as the process's memory.
        crate::protocol::recvbuf::release_stale();
        let Some(rss) = super::sysmem::process_memory() else {
            tracing::warn!(worker = %shared.name, "cannot read the process's memory: memory monitoring is off");
            return;
        };
        let (verdict, spilled) =
            shared.apply(|s| (s.memory_sample(rss), s.store().spill_stats().spilled));
        // Values spilled since the last sample (by the target or by process
        // memory): hand what the allocator keeps free back to the system.
        if spilled != last_spilled {
            last_spilled = spilled;
            super::sysmem::trim();
        }
        match verdict {
            MemoryVerdict::Fine | MemoryVerdict::Spilled(_) => {}
            MemoryVerdict::Terminate => {
                shared.restart.notify_one();
                // Give the restart time to drop what was held.
                tokio::select! {
                    _ = tokio::time::sleep(interval * 10) => {}
                    _ = stopped(&shared) => return,
                }
            }
        }
    }
}

// ------------------------------------------------------------ data port

/// Accepts data-port connections through the worker's [`Gate`] (role
/// `peer`, the worker's token and TLS) until the worker stops.
pub(crate) async fn serve_data(
    shared: Arc<Shared>,
    gate: Arc<Gate>,
    listener: TcpListener,
    local: Option<UnixListener>,
) {
    let stop = {
        let s = shared.clone();
        move || {
            let s = s.clone();
            async move { stopped(&s).await }
        }
    };
    let handle = {
        let shared = shared.clone();
        move |a: Admitted| {
            let s = shared.clone();
            async move {
                let Admitted {
                    hello,
                    peer,
                    local,
                    mut inbox,
                    outbox,
                    ..
                } = a;
                tokio::select! {
                    _ = data_connection(&s, &mut inbox, outbox, &hello.name, peer, local) => {}
                    _ = stopped(&s) => {}
                }
                inbox
            }
        }
    };
    if let Some(l) = local {
        // Same host: the Unix socket, whose connections carry descriptors.
        crate::runtime::handle().spawn(gate.clone().serve_unix(l, stop.clone(), handle.clone()));
    }
    gate.serve(listener, stop, handle).await
}

/// The descriptors a message's values use, mapped: `Err` when the peer
/// sent fewer than its values refer to (the connection's descriptors are
/// then out of step: it must close) — an `Ok` holds per descriptor its
/// segment or why it could not be mapped.
fn received_segments(
    received: &Received,
    data: &BTreeMap<String, Packed>,
) -> Result<Result<Vec<Arc<Segment>>, String>, String> {
    let n = fds_used(data.values());
    let fds = received.take_fds(n).ok_or_else(|| {
        format!("the peer's values refer to {n} descriptors, which did not come with them")
    })?;
    Ok(fds.into_iter().map(Segment::open).collect())
}

/// Puts the values of `found` that will go as descriptors (at least
/// `threshold` bytes, `bin` or tensor) into shared memory: those not there
/// yet are copied, once, and the worker keeps the copy in place of the
/// original (so the next send costs nothing).
async fn share_found(shared: &Arc<Shared>, found: &mut [(String, Value)], threshold: usize) {
    for (k, v) in found.iter_mut() {
        let b = match v {
            Value::Bin(b) => b.clone(),
            Value::Tensor(t) => t.data().clone(),
            _ => continue,
        };
        if b.len() < threshold.max(1) || shm::find(&b).is_some() {
            continue;
        }
        let copied = match tokio::task::spawn_blocking(move || shm::share(&b)).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                tracing::warn!(worker = %shared.name, key = %k, "cannot copy a value into shared memory (it goes as bytes): {e}");
                continue;
            }
            Err(_) => continue,
        };
        let copy = match v {
            Value::Tensor(t) => match Tensor::new(t.dtype(), t.shape().to_vec(), copied) {
                Ok(t) => Value::Tensor(t),
                Err(_) => continue,
            },
            _ => Value::Bin(copied),
        };
        shared.core.lock().state.keep_copy(k, v, copy.clone());
        *v = copy;
    }
}

/// Serves one data connection until the peer closes it (or sends `close`,
/// or an unusable stream).
async fn data_connection(
    shared: &Arc<Shared>,
    inbox: &mut Inbox,
    outbox: Outbox,
    peer: &str,
    from: std::net::SocketAddr,
    local: bool,
) {
    // Values of at least this size go as descriptors (same host only).
    let threshold = if local { shm::threshold() } else { None };
    loop {
        let mut received = match inbox.recv().await {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(e) => {
                // Say why before closing (the gate then reads what is left
                // of the message, so the peer reads this, not a reset).
                tracing::warn!(worker = %shared.name, %peer, %from, "closing a data connection: {e}");
                outbox.send(Message::error(
                    format!("{e}; the data port closes the connection"),
                    ErrorCode::BadStream,
                ));
                return;
            }
        };
        for m in std::mem::take(&mut received.messages) {
            match narrow::<DataRequest>(m, AS_DATA_PORT) {
                Ok(DataRequest::GetData { id, keys }) => {
                    let (mut found, missing) = shared.core.lock().state.get_data(&keys);
                    if let Some(t) = threshold {
                        share_found(shared, &mut found, t).await;
                    }
                    send_data(&outbox, id, found, missing, threshold);
                }
                Ok(DataRequest::PutData { id, data }) => {
                    match received_segments(&received, &data) {
                        Err(e) => {
                            tracing::warn!(worker = %shared.name, %peer, "closing a data connection: {e}");
                            outbox.send(Message::error(
                                format!("{e}; the data port closes the connection"),
                                ErrorCode::BadStream,
                            ));
                            return;
                        }
                        Ok(segs) => {
                            match segs.and_then(|segs| unpack_all(&data, &received.frames, &segs)) {
                                Ok(values) => {
                                    let nbytes = shared.apply(|s| s.put_data(values));
                                    outbox.send(Message::DataStored { id, nbytes });
                                }
                                Err(e) => {
                                    outbox.send(Message::Error {
                                        message: e,
                                        code: Some(ErrorCode::BadMessage.as_str().into()),
                                        id: Some(id),
                                    });
                                }
                            }
                        }
                    }
                }
                Ok(DataRequest::Close { .. }) => return,
                Ok(DataRequest::Error { message, .. }) => {
                    tracing::debug!(worker = %shared.name, %peer, "peer reported an error: {message}");
                }
                // Undecodable, or a message of another direction.
                Err(e) => {
                    outbox.send(e.reply());
                }
            }
        }
    }
}

/// Answers a `get-data`: one `data` message per [`MAX_REPLY`] values or
/// [`crate::protocol::payload::MAX_BATCH_BYTES`] bytes (all with the
/// request's id; `missing` goes with the last).
///
/// A value that cannot be encoded (a host object its host cannot
/// serialize, such as a Python object that cannot be pickled) is listed in
/// `unsendable` with the reason, and in `missing` for requesters that do
/// not read `unsendable`.
fn send_data(
    outbox: &Outbox,
    id: u64,
    found: Vec<(String, Value)>,
    mut missing: Vec<String>,
    threshold: Option<usize>,
) {
    let mut unsendable = BTreeMap::new();
    let mut batches = pack_batches_local(
        found.iter().map(|(k, v)| (k.clone(), v)),
        MAX_REPLY,
        threshold,
        |k, e| {
            tracing::warn!(key = %k, "a stored value cannot be sent: {e}");
            missing.push(k.clone());
            unsendable.insert(k, e.to_string());
        },
    );
    if batches.is_empty() {
        batches.push(PackedBatch::default());
    }
    let n = batches.len();
    for (i, b) in batches.into_iter().enumerate() {
        let msg = Message::Data {
            id,
            data: b.data,
            missing: if i + 1 == n {
                std::mem::take(&mut missing)
            } else {
                Vec::new()
            },
            unsendable: if i + 1 == n {
                std::mem::take(&mut unsendable)
            } else {
                BTreeMap::new()
            },
        };
        outbox.send_with_fds(msg, b.payloads, b.fds);
    }
}

fn unpack_all(
    data: &BTreeMap<String, Packed>,
    frames: &[Bytes],
    segs: &[Arc<Segment>],
) -> Result<Vec<(String, Value)>, String> {
    data.iter()
        .map(|(k, p)| {
            unpack_value_in(p, frames, segs)
                .map(|v| (k.clone(), v))
                .map_err(|e| format!("value of '{k}': {e}"))
        })
        .collect()
}

// ------------------------------------------------------------ peers

/// Owns the connection to one peer's data port: sends the fetches queued
/// on `rx` (everything queued at once in one `get-data`, up to
/// [`MAX_FETCH`] keys) and hands the answers to the core. When the
/// connection cannot be made or breaks, every key it was asked for fails
/// over to the next holder.
pub(crate) async fn peer_link(
    shared: Arc<Shared>,
    peer: String,
    generation: u64,
    mut rx: mpsc::UnboundedReceiver<Vec<String>>,
) {
    let mut pending: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    let failure = tokio::select! {
        f = run_link(&shared, &peer, &mut rx, &mut pending) => f,
        _ = stopped(&shared) => return,
    };
    shared.unregister_link(&peer, generation);
    rx.close();
    let mut failed: Vec<String> = pending.into_values().flatten().collect();
    while let Ok(keys) = rx.try_recv() {
        failed.extend(keys);
    }
    tracing::debug!(worker = %shared.name, %peer, n = failed.len(), "peer link ended: {failure}");
    if !failed.is_empty() {
        shared.apply(|s| s.fetch_failed(&peer, &failed, &failure));
    }
}

/// Runs a link until it fails; returns why.
async fn run_link(
    shared: &Arc<Shared>,
    peer: &str,
    rx: &mut mpsc::UnboundedReceiver<Vec<String>>,
    pending: &mut BTreeMap<u64, Vec<String>>,
) -> String {
    // Requests queued before the connection is up are held in `rx`.
    // A peer on this host is reached through its Unix socket (values as
    // descriptors), unless shared memory is off here or TLS is on.
    let local = if shm::threshold().is_some() && shared.tls.is_none() {
        match conn::connect_local(
            peer,
            Role::Peer,
            &shared.name,
            shared.token.clone(),
            shared.limits,
            shared.connect_timeout,
        )
        .await
        {
            Ok(c) => c,
            Err(e) => return e.0,
        }
    } else {
        None
    };
    let (mut inbox, outbox, _) = match local {
        Some(c) => c,
        None => match conn::connect_with(
            peer,
            shared.tls.as_ref(),
            Role::Peer,
            &shared.name,
            shared.token.clone(),
            shared.limits,
            shared.connect_timeout,
        )
        .await
        {
            Ok(c) => c,
            Err(e) => return e.0,
        },
    };
    let mut next_id = 0u64;
    // When each get-data left, to time the transfer.
    let mut sent_at: BTreeMap<u64, std::time::Instant> = BTreeMap::new();
    loop {
        tokio::select! {
            req = rx.recv() => {
                let Some(mut keys) = req else { return "the worker stopped".into() };
                while let Ok(more) = rx.try_recv() {
                    keys.extend(more);
                }
                for chunk in keys.chunks(MAX_FETCH) {
                    next_id += 1;
                    outbox.send(Message::GetData { id: next_id, keys: chunk.to_vec() });
                    pending.insert(next_id, chunk.to_vec());
                    sent_at.insert(next_id, std::time::Instant::now());
                }
            }
            r = inbox.recv() => {
                let mut received = match r {
                    Ok(Some(r)) => r,
                    Ok(None) => return "the peer closed the connection".into(),
                    Err(e) => return format!("the connection broke: {e}"),
                };
                for m in std::mem::take(&mut received.messages) {
                    match narrow::<DataReply>(m, AS_PEER_LINK) {
                        Ok(DataReply::Data { id, data, missing, unsendable }) => {
                            let segs = match received_segments(&received, &data) {
                                Ok(s) => s,
                                Err(e) => return e,
                            };
                            let asked = pending.remove(&id).unwrap_or_default();
                            let took = sent_at.remove(&id).map(|t| t.elapsed().as_secs_f64());
                            let got = Arrived { data: &data, missing, unsendable, frames: &received.frames, segs };
                            data_arrived(shared, peer, asked, got, took);
                        }
                        Ok(DataReply::Error { id: Some(id), message, .. }) => {
                            let asked = pending.remove(&id).unwrap_or_default();
                            sent_at.remove(&id);
                            shared.apply(|s| s.fetch_refused(peer, &asked, &message));
                        }
                        Ok(DataReply::Error { message, .. }) => {
                            return format!("the peer reported an error: {message}");
                        }
                        Ok(DataReply::Close { .. }) => return "the peer closed the connection".into(),
                        // A worker sends no `put-data`: nothing to do.
                        Ok(DataReply::DataStored { id, .. }) => {
                            tracing::debug!(%peer, id, "unexpected 'data-stored' on a peer link");
                        }
                        // Undecodable, or a message of another direction:
                        // the pending keys fail over to other holders.
                        Err(e) => return format!("bad message from the peer: {e}"),
                    }
                }
            }
        }
    }
}

/// One `data` message from a peer.
struct Arrived<'a> {
    data: &'a BTreeMap<String, Packed>,
    missing: Vec<String>,
    unsendable: BTreeMap<String, String>,
    frames: &'a [Bytes],
    /// The message's descriptors, mapped (or why they could not be).
    segs: Result<Vec<Arc<Segment>>, String>,
}

fn data_arrived(
    shared: &Arc<Shared>,
    peer: &str,
    asked: Vec<String>,
    got: Arrived<'_>,
    took: Option<f64>,
) {
    let Arrived {
        data,
        mut missing,
        unsendable,
        frames,
        segs,
    } = got;
    let segs = segs.unwrap_or_else(|e| {
        tracing::warn!(%peer, "values passed as descriptors cannot be used: {e}");
        Vec::new()
    });
    // A key the peer holds but cannot send is not "missing": its waiting
    // tasks hear why (unless another holder has it).
    missing.retain(|k| !unsendable.contains_key(k));
    let mut values = Vec::with_capacity(data.len());
    let mut bad = Vec::new();
    for (k, p) in data {
        match unpack_value_in(p, frames, &segs) {
            Ok(v) => values.push((k.clone(), v)),
            Err(e) => {
                tracing::warn!(%peer, key = %k, "bad value from a peer: {e}");
                bad.push(k.clone());
            }
        }
    }
    // A key asked for but not answered at all counts as missing.
    for k in asked {
        if !data.contains_key(&k) && !missing.contains(&k) && !unsendable.contains_key(&k) {
            missing.push(k);
        }
    }
    shared.apply(|s| {
        s.fetched_in(peer, values, &missing, took);
        for (k, reason) in &unsendable {
            s.fetch_unsendable(peer, k, reason);
        }
        if !bad.is_empty() {
            s.fetch_refused(
                peer,
                &bad,
                "the peer sent a value that could not be decoded",
            );
        }
    });
}

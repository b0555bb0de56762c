//! What runs can be seen: the scheduler's web dashboard and its Prometheus
//! `/metrics`, served on their own port (`SchedulerConfig::dashboard`,
//! `rask-scheduler --dashboard-address`, default `127.0.0.1:8787`).
//!
//! # The sampling path
//!
//! The scheduler core never waits for the dashboard and never takes a lock
//! for it. It keeps two things:
//!
//! - a [`Recorder`], fed as events pass through the core: per function the
//!   tasks finished and erred and a histogram of their run times, the last
//!   [`STREAM_CAP`] finished tasks (the task stream), bytes workers fetched
//!   from each other, the event log (workers and clients coming and going,
//!   task failures), and the time the core spent busy. Recording is a few
//!   additions and one push per finished task; with no dashboard there is no
//!   recorder and nothing is recorded;
//! - on request, a [`Snapshot`]: a copy of what the pages and `/metrics`
//!   show, built by the core between two batches of events and handed over
//!   in an `Arc`. Building one walks the task table (counts by function and
//!   state), so the HTTP side asks at most once per [`SAMPLE_EVERY`],
//!   whatever the number of viewers ([`http`]): a scheduler nobody watches
//!   builds none. The task stream, the event log and the memory samples
//!   are not copied into a snapshot: they live in [`ring::Ring`]s whose
//!   sealed chunks a snapshot shares (it copies fewer than [`ring::CHUNK`]
//!   entries of each).
//!
//! Updates are incremental: a page is sent, every [`http::PUSH_EVERY`],
//! the counts and tables (small) but only the task stream entries and
//! event log lines it has not been sent yet, so what it costs to watch
//! grows with what happens, not with what the scheduler remembers.
//! `benches/dashboard_cost.py` measures the cost (benches/RESULTS.md).
//!
//! Task start and stop times in the task stream are the scheduler's clock:
//! stop is when `task-finished` arrived, start is stop minus the run time
//! the worker measured. Lanes (one per worker thread) are laid out by the
//! page: a task goes to the first lane of its worker that is free at its
//! start.

pub(crate) mod http;
pub mod metrics;
pub mod ring;

use super::state::{FuncId, SchedulerState, StateKind, WorkerId};
use ring::{Ring, View};
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Finished tasks kept for the task stream.
pub const STREAM_CAP: usize = 20_000;
/// Entries kept in the event log.
pub const EVENTS_CAP: usize = 1_000;
/// Worker memory samples kept (one per heartbeat: a worker's memory over
/// time, for performance reports).
pub const MEMORY_CAP: usize = 20_000;
/// Most live tasks for which a snapshot includes the task graph.
pub const GRAPH_CAP: usize = 1_000;
/// The HTTP side asks the core for a new snapshot at most this often.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// The most of the core's busy time that building snapshots may take: when
/// asked sooner, the core hands the last snapshot over again (see
/// [`Recorder::sample`]).
pub const SNAPSHOT_BUDGET: f64 = 0.02;
/// ... but never older than this (a page of a busy scheduler with a large
/// task table updates at least this often).
pub const SNAPSHOT_MAX_AGE: f64 = 2.0;
/// Snapshots that took less than this are always rebuilt when asked.
pub const SNAPSHOT_CHEAP: Duration = Duration::from_micros(200);

/// Upper bounds (seconds) of the task duration histogram's buckets (plus
/// `+Inf`), the buckets of `rask_task_duration_seconds`.
pub const DURATION_BUCKETS: [f64; 14] = [
    1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0,
];

/// Per function: what finished and how long it took.
#[derive(Clone, Debug, Default)]
struct FuncRecord {
    finished: u64,
    erred: u64,
    duration_sum: f64,
    /// Counts per bucket of [`DURATION_BUCKETS`] plus `+Inf`, not
    /// cumulative.
    buckets: [u64; DURATION_BUCKETS.len() + 1],
}

/// Per worker (by its connection id): what it did.
#[derive(Clone, Debug, Default)]
struct WorkerRecord {
    ext_id: u64,
    finished: u64,
    erred: u64,
    /// Bytes of replicas it fetched from other workers (`add-keys`).
    fetched_bytes: u64,
    /// Bytes other workers fetched from it (their `add-keys` name it).
    sent_bytes: u64,
    /// Bytes of the results it computed.
    result_bytes: u64,
}

/// One task of the task stream.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct StreamEntry {
    /// Increases by one per entry, from 0.
    pub seq: u64,
    /// Index into [`Snapshot::functions`].
    pub func: u32,
    /// The worker's id (as in [`WorkerSnap::id`]).
    pub worker: u64,
    /// Seconds since the scheduler started.
    pub start: f64,
    pub stop: f64,
    /// `false` for a task that erred (its start is its stop).
    pub ok: bool,
    /// A transfer between workers, not a task: `worker` fetched `nbytes`
    /// from worker `from` (`func` is `u32::MAX`). Absent for tasks.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub transfer: bool,
    #[serde(skip_serializing_if = "is_zero")]
    pub from: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub nbytes: u64,
}

fn is_zero(x: &u64) -> bool {
    *x == 0
}

/// A worker's memory at one of its heartbeats.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct MemorySample {
    /// Seconds since the scheduler started.
    pub time: f64,
    /// The worker's id (as in [`WorkerSnap::id`]).
    pub worker: u64,
    /// Bytes of data it held in memory (size estimates).
    pub managed: u64,
    /// Its process's resident memory, bytes (0: not measured).
    pub process: u64,
}

/// One line of the event log.
#[derive(Clone, Debug, Serialize)]
pub struct LogEntry {
    pub seq: u64,
    /// Seconds since the scheduler started.
    pub time: f64,
    pub text: String,
}

/// What the core records for the dashboard as events pass. See the module
/// docs.
#[derive(Debug)]
pub struct Recorder {
    funcs: Vec<FuncRecord>,
    workers: Vec<Option<WorkerRecord>>,
    stream: Ring<StreamEntry>,
    stream_seq: u64,
    events: Ring<LogEntry>,
    event_seq: u64,
    memory: Ring<MemorySample>,
    finished: u64,
    erred: u64,
    fetched_bytes: u64,
    result_bytes: u64,
    busy: Duration,
    /// Time spent building snapshots (see [`Recorder::snapshot_took`]).
    snapshots: Duration,
    /// The last snapshot [`Recorder::sample`] built, what building it took,
    /// and the core's busy time (snapshots left out) then.
    last: Option<(Arc<Snapshot>, Duration, Duration)>,
    /// (time, busy) at the last snapshot, for the busy fraction.
    last_sample: Option<(f64, Duration)>,
    busy_fraction: f64,
}

impl Default for Recorder {
    fn default() -> Recorder {
        Recorder {
            funcs: Vec::new(),
            workers: Vec::new(),
            stream: Ring::new(STREAM_CAP),
            stream_seq: 0,
            events: Ring::new(EVENTS_CAP),
            event_seq: 0,
            memory: Ring::new(MEMORY_CAP),
            finished: 0,
            erred: 0,
            fetched_bytes: 0,
            result_bytes: 0,
            busy: Duration::ZERO,
            snapshots: Duration::ZERO,
            last: None,
            last_sample: None,
            busy_fraction: 0.0,
        }
    }
}

/// `t` rounded to the microsecond: what the pages need, and shorter JSON.
fn micros(t: f64) -> f64 {
    (t * 1e6).round() / 1e6
}

impl Recorder {
    fn func(&mut self, f: FuncId) -> &mut FuncRecord {
        let i = f.0 as usize;
        if i >= self.funcs.len() {
            self.funcs.resize(i + 1, FuncRecord::default());
        }
        &mut self.funcs[i]
    }

    fn worker(&mut self, w: WorkerId) -> Option<&mut WorkerRecord> {
        self.workers.get_mut(w.0 as usize)?.as_mut()
    }

    /// A worker registered (`ext_id`: its connection id).
    pub fn worker_joined(&mut self, w: WorkerId, ext_id: u64, now: f64, text: String) {
        let i = w.0 as usize;
        if i >= self.workers.len() {
            self.workers.resize(i + 1, None);
        }
        self.workers[i] = Some(WorkerRecord {
            ext_id,
            ..WorkerRecord::default()
        });
        self.event(now, text);
    }

    /// A worker left (or retired).
    pub fn worker_left(&mut self, w: WorkerId, now: f64, text: String) {
        if let Some(slot) = self.workers.get_mut(w.0 as usize) {
            *slot = None;
        }
        self.event(now, text);
    }

    /// A line for the event log.
    pub fn event(&mut self, now: f64, text: String) {
        self.events.push(LogEntry {
            seq: self.event_seq,
            time: micros(now),
            text,
        });
        self.event_seq += 1;
    }

    /// `task-finished` from worker `w` for a task of function `f`.
    #[inline]
    pub fn task_finished(&mut self, f: FuncId, w: WorkerId, duration: f64, nbytes: u64, now: f64) {
        let duration = if duration.is_finite() && duration > 0.0 {
            duration
        } else {
            0.0
        };
        let bucket = DURATION_BUCKETS
            .iter()
            .position(|&b| duration <= b)
            .unwrap_or(DURATION_BUCKETS.len());
        let r = self.func(f);
        r.finished += 1;
        r.duration_sum += duration;
        r.buckets[bucket] += 1;
        self.finished += 1;
        self.result_bytes += nbytes;
        let ext = match self.worker(w) {
            Some(wr) => {
                wr.finished += 1;
                wr.result_bytes += nbytes;
                wr.ext_id
            }
            None => 0,
        };
        self.push_stream(f, ext, (now - duration).max(0.0), now, true);
    }

    /// `task-erred` from worker `w` for a task of function `f`.
    pub fn task_erred(&mut self, f: FuncId, w: WorkerId, key: &str, message: &str, now: f64) {
        self.func(f).erred += 1;
        self.erred += 1;
        let ext = match self.worker(w) {
            Some(wr) => {
                wr.erred += 1;
                wr.ext_id
            }
            None => 0,
        };
        self.push_stream(f, ext, now, now, false);
        let msg: String = message.chars().take(200).collect();
        self.event(now, format!("task '{key}' erred on worker {ext}: {msg}"));
    }

    /// `add-keys` from worker `w`: it fetched these bytes, from worker
    /// `from` when it said, in `duration` seconds when it said (then the
    /// transfer goes into the task stream, ending `now`).
    pub fn fetched(
        &mut self,
        w: WorkerId,
        nbytes: u64,
        from: Option<WorkerId>,
        duration: Option<f64>,
        now: f64,
    ) {
        self.fetched_bytes += nbytes;
        let ext = match self.worker(w) {
            Some(wr) => {
                wr.fetched_bytes += nbytes;
                wr.ext_id
            }
            None => 0,
        };
        let Some(src) = from.and_then(|f| self.worker(f)) else {
            return;
        };
        src.sent_bytes += nbytes;
        let from = src.ext_id;
        if let Some(d) = duration.filter(|d| d.is_finite() && *d >= 0.0) {
            self.push_entry(StreamEntry {
                seq: 0,
                func: u32::MAX,
                worker: ext,
                start: (now - d).max(0.0),
                stop: now,
                ok: true,
                transfer: true,
                from,
                nbytes,
            });
        }
    }

    /// A heartbeat of worker `w` with its memory figures.
    pub fn memory_sample(&mut self, w: WorkerId, managed: u64, process: u64, now: f64) {
        let Some(worker) = self.worker(w).map(|r| r.ext_id) else {
            return;
        };
        self.memory.push(MemorySample {
            time: micros(now),
            worker,
            managed,
            process,
        });
    }

    /// The core spent `d` handling events.
    #[inline]
    pub fn busy(&mut self, d: Duration) {
        self.busy += d;
    }

    /// A snapshot for the pages and `/metrics`: a new one, or, unless
    /// `fresh`, the last one again while building a new one now would take
    /// the core over its budget: more than [`SNAPSHOT_BUDGET`] of the time
    /// it spent busy (building snapshots left out) since the last one was
    /// built — a budget that only a large task table (each snapshot walks
    /// it) under a heavy load reaches. A snapshot that took less than
    /// [`SNAPSHOT_CHEAP`], or is [`SNAPSHOT_MAX_AGE`] old, is rebuilt.
    pub fn sample(
        &mut self,
        state: &SchedulerState,
        info: &SnapshotInfo,
        now: f64,
        fresh: bool,
    ) -> Arc<Snapshot> {
        let work = self.busy.saturating_sub(self.snapshots);
        if let Some((last, took, work_then)) = &self.last {
            let since = work.saturating_sub(*work_then).as_secs_f64();
            if !fresh
                && *took >= SNAPSHOT_CHEAP
                && now - last.body.time < SNAPSHOT_MAX_AGE
                && took.as_secs_f64() > SNAPSHOT_BUDGET * since
            {
                return last.clone();
            }
        }
        let t0 = Instant::now();
        let snap = Arc::new(self.snapshot(state, info, now));
        let took = t0.elapsed();
        self.snapshot_took(took);
        self.last = Some((snap.clone(), took, work));
        snap
    }

    /// Building a snapshot took `d` (counted in the next ones).
    pub fn snapshot_took(&mut self, d: Duration) {
        self.snapshots += d;
    }

    fn push_stream(&mut self, f: FuncId, worker: u64, start: f64, stop: f64, ok: bool) {
        self.push_entry(StreamEntry {
            seq: 0,
            func: f.0,
            worker,
            start,
            stop,
            ok,
            transfer: false,
            from: 0,
            nbytes: 0,
        });
    }

    fn push_entry(&mut self, mut e: StreamEntry) {
        e.seq = self.stream_seq;
        e.start = micros(e.start);
        e.stop = micros(e.stop);
        self.stream.push(e);
        self.stream_seq += 1;
    }

    /// A copy of what the pages and `/metrics` show. Walks the task table:
    /// call it when asked, not per event.
    pub fn snapshot(&mut self, state: &SchedulerState, info: &SnapshotInfo, now: f64) -> Snapshot {
        let busy = self.busy.as_secs_f64();
        if let Some((t0, b0)) = self.last_sample {
            let dt = now - t0;
            if dt > 0.0 {
                self.busy_fraction = ((busy - b0.as_secs_f64()) / dt).clamp(0.0, 1.0);
            }
        }
        self.last_sample = Some((now, self.busy));

        let n_funcs = state.function_count().max(self.funcs.len());
        let mut functions: Vec<FuncSnap> = (0..n_funcs)
            .map(|i| {
                let f = FuncId(i as u32);
                let name = if i < state.function_count() {
                    state.function_name(f).to_string()
                } else {
                    String::new()
                };
                let r = self.funcs.get(i).cloned().unwrap_or_default();
                FuncSnap {
                    name,
                    states: [0; 7],
                    finished_total: r.finished,
                    erred_total: r.erred,
                    duration_sum: r.duration_sum,
                    buckets: r.buckets.to_vec(),
                }
            })
            .collect();
        // Keys that were only data (scattered) have no function: they are
        // counted under "" (the last entry).
        let mut data = FuncSnap {
            name: String::new(),
            states: [0; 7],
            finished_total: 0,
            erred_total: 0,
            duration_sum: 0.0,
            buckets: vec![0; DURATION_BUCKETS.len() + 1],
        };
        let counts = state.counts();
        let small = counts.tasks <= GRAPH_CAP;
        let mut graph = small.then(GraphSnap::default);
        let mut index: Vec<u32> = Vec::new();
        for t in state.task_views() {
            let s = t.state as usize;
            match functions.get_mut(t.func.0 as usize) {
                Some(f) => f.states[s] += 1,
                None => data.states[s] += 1,
            }
            if let Some(g) = graph.as_mut() {
                let i = t.id.0 as usize;
                if i >= index.len() {
                    index.resize(i + 1, u32::MAX);
                }
                index[i] = g.nodes.len() as u32;
                g.nodes.push(GraphNode {
                    key: t.name.to_string(),
                    func: if (t.func.0 as usize) < n_funcs {
                        t.func.0
                    } else {
                        u32::MAX
                    },
                    state: t.state.as_str(),
                    deps: t.deps.iter().map(|d| d.0).collect(),
                });
            }
        }
        if let Some(g) = graph.as_mut() {
            // Task ids → node indices.
            for n in &mut g.nodes {
                for d in &mut n.deps {
                    *d = index.get(*d as usize).copied().unwrap_or(u32::MAX);
                }
                n.deps.retain(|&d| d != u32::MAX);
            }
        }
        if data.states.iter().any(|&n| n > 0) {
            functions.push(data);
        }

        let workers = state
            .worker_ids()
            .filter_map(|w| {
                let wk = state.worker(w)?;
                let rec = self
                    .workers
                    .get(w.0 as usize)
                    .and_then(|r| r.clone())
                    .unwrap_or_default();
                let (executing, memory) = state.worker_heartbeat(w);
                Some(WorkerSnap {
                    id: wk.ext_id(),
                    name: wk.name().to_string(),
                    address: wk.address().to_string(),
                    runtime: wk.runtime().to_string(),
                    cpu: wk.cpu(),
                    threads: wk.threads(),
                    functions: state.worker_functions(w).map(str::to_string).collect(),
                    processing: wk.processing_count() as u32,
                    executing,
                    memory,
                    memory_limit: wk.memory_limit(),
                    nbytes: wk.nbytes(),
                    keys: wk.keys_held(),
                    finished: rec.finished,
                    erred: rec.erred,
                    fetched_bytes: rec.fetched_bytes,
                    sent_bytes: rec.sent_bytes,
                    result_bytes: rec.result_bytes,
                    retiring: wk.is_retiring(),
                })
            })
            .collect();

        Snapshot {
            body: SnapshotBody {
                name: info.name.clone(),
                address: info.address.clone(),
                dashboard: info.dashboard.clone(),
                time: now,
                started_unix: info.started_unix,
                tasks: counts.tasks,
                states: StateKind::ALL.map(|k| (k.as_str(), state_count(&counts, k))),
                workers_count: counts.workers,
                clients: counts.clients,
                connections: info.connections,
                tasks_finished_total: self.finished,
                tasks_erred_total: self.erred,
                fetched_bytes_total: self.fetched_bytes,
                result_bytes_total: self.result_bytes,
                busy_seconds_total: busy,
                busy_fraction: self.busy_fraction,
                snapshot_seconds_total: self.snapshots.as_secs_f64(),
                duration_buckets: DURATION_BUCKETS.to_vec(),
                functions,
                workers,
                graph,
                settings: info.settings.clone(),
            },
            stream: self.stream.view(),
            events: self.events.view(),
            memory: self.memory.view(),
        }
    }
}

fn state_count(c: &super::state::StateCounts, k: StateKind) -> usize {
    match k {
        StateKind::Released => c.released,
        StateKind::Waiting => c.waiting,
        StateKind::NoWorker => c.no_worker,
        StateKind::Queued => c.queued,
        StateKind::Processing => c.processing,
        StateKind::Memory => c.memory,
        StateKind::Erred => c.erred,
        StateKind::Forgotten => 0,
    }
}

/// What the server adds to a snapshot (the state does not know it).
#[derive(Clone, Debug, Default)]
pub struct SnapshotInfo {
    pub name: String,
    pub address: String,
    pub dashboard: String,
    pub started_unix: f64,
    pub connections: usize,
    /// The scheduler's settings, as (name, value), for the pages and
    /// performance reports.
    pub settings: Vec<(String, String)>,
}

/// Per function, in a snapshot.
#[derive(Clone, Debug, Serialize)]
pub struct FuncSnap {
    /// "" for keys that were only ever data (scattered).
    pub name: String,
    /// Live tasks by state, in the order of `StateKind::ALL`: released,
    /// waiting, no-worker, queued, processing, memory, erred.
    pub states: [u64; 7],
    pub finished_total: u64,
    pub erred_total: u64,
    pub duration_sum: f64,
    /// Per bucket of [`DURATION_BUCKETS`] plus `+Inf`, not cumulative.
    pub buckets: Vec<u64>,
}

/// Per worker, in a snapshot.
#[derive(Clone, Debug, Serialize)]
pub struct WorkerSnap {
    pub id: u64,
    pub name: String,
    pub address: String,
    /// Its language or runtime as it registered (`rust`, `c`,
    /// `python-3.11`, ...; "" if it did not say).
    pub runtime: String,
    /// Its process's CPU use at its last heartbeat, percent of one CPU
    /// (`null`: not measured).
    pub cpu: Option<f64>,
    pub threads: u32,
    pub functions: Vec<String>,
    /// Tasks the scheduler has given it that have not finished.
    pub processing: u32,
    /// From its last heartbeat: tasks executing, bytes of memory in use.
    pub executing: u32,
    pub memory: u64,
    pub memory_limit: u64,
    /// Bytes and number of the results it holds.
    pub nbytes: u64,
    pub keys: u32,
    pub finished: u64,
    pub erred: u64,
    /// Bytes it fetched from other workers (received) and of the results
    /// it computed.
    pub fetched_bytes: u64,
    /// Bytes other workers fetched from it.
    pub sent_bytes: u64,
    pub result_bytes: u64,
    pub retiring: bool,
}

/// The graph of the live tasks, when there are at most [`GRAPH_CAP`].
#[derive(Clone, Debug, Default, Serialize)]
pub struct GraphSnap {
    pub nodes: Vec<GraphNode>,
}

#[derive(Clone, Debug, Serialize)]
pub struct GraphNode {
    pub key: String,
    /// Index into [`Snapshot::functions`] (`u32::MAX`: none).
    pub func: u32,
    pub state: &'static str,
    /// Indices into `nodes`.
    pub deps: Vec<u32>,
}

/// Everything of a snapshot but the task stream.
#[derive(Clone, Debug, Serialize)]
pub struct SnapshotBody {
    pub name: String,
    pub address: String,
    pub dashboard: String,
    /// Seconds since the scheduler started.
    pub time: f64,
    pub started_unix: f64,
    /// Live tasks, and how many are in each state.
    pub tasks: usize,
    pub states: [(&'static str, usize); 7],
    #[serde(rename = "n_workers")]
    pub workers_count: usize,
    pub clients: usize,
    pub connections: usize,
    pub tasks_finished_total: u64,
    pub tasks_erred_total: u64,
    pub fetched_bytes_total: u64,
    pub result_bytes_total: u64,
    pub busy_seconds_total: f64,
    pub busy_fraction: f64,
    /// Time the core spent building snapshots before this one.
    pub snapshot_seconds_total: f64,
    pub duration_buckets: Vec<f64>,
    pub functions: Vec<FuncSnap>,
    pub workers: Vec<WorkerSnap>,
    pub graph: Option<GraphSnap>,
    pub settings: Vec<(String, String)>,
}

/// A sampled copy of the scheduler's state. See the module docs.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub body: SnapshotBody,
    /// The task stream, oldest first (the last [`STREAM_CAP`]).
    pub stream: View<StreamEntry>,
    /// The event log, oldest first (the last [`EVENTS_CAP`]).
    pub events: View<LogEntry>,
    /// The workers' memory at their heartbeats, oldest first (the last
    /// [`MEMORY_CAP`]); only performance reports carry it.
    pub memory: View<MemorySample>,
}

/// The JSON a page gets: the snapshot's counts and tables, with only the
/// task stream entries and event log lines it has not been sent.
#[derive(Serialize)]
pub struct Update<'a> {
    #[serde(flatten)]
    pub body: &'a SnapshotBody,
    pub stream: ring::From<'a, StreamEntry>,
    pub events: ring::From<'a, LogEntry>,
    /// Worker memory samples: in a performance report, not live updates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<ring::From<'a, MemorySample>>,
}

/// Where a page is: the next task stream `seq` and event log `seq` it
/// has not been sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    pub stream: u64,
    pub events: u64,
}

impl Snapshot {
    /// The JSON for a page at `since` (all of it for `Cursor::default()`).
    pub fn update_json(&self, since: Cursor) -> String {
        serde_json::to_string(&Update {
            body: &self.body,
            stream: self
                .stream
                .from(self.stream.partition_point(|e| e.seq < since.stream)),
            events: self
                .events
                .from(self.events.partition_point(|e| e.seq < since.events)),
            memory: None,
        })
        .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// Where a page is once it has been sent this snapshot (never before
    /// `since`).
    pub fn end(&self, since: Cursor) -> Cursor {
        Cursor {
            stream: self.stream_end().max(since.stream),
            events: self
                .events
                .last()
                .map_or(0, |e| e.seq + 1)
                .max(since.events),
        }
    }

    /// The next `seq` after this snapshot's stream.
    pub fn stream_end(&self) -> u64 {
        self.stream.last().map_or(0, |e| e.seq + 1)
    }
}

#[cfg(test)]
mod tests;

//! The stimuli: one public method per event, and the dispatch of wire
//! messages from workers and clients to them.

use super::*;
use crate::protocol::messages::WorkerInfo;
use serde_bytes::ByteBuf;
use std::collections::BTreeMap;

/// Error codes the scheduler puts in `error` replies.
/// (The strings of [`crate::protocol::ErrorCode`]s.)
pub mod codes {
    use crate::protocol::ErrorCode;
    /// A message that is not allowed or not understood here.
    pub const BAD_MESSAGE: &str = ErrorCode::BadMessage.as_str();
    /// An `update-graph` whose graph is invalid.
    pub const BAD_GRAPH: &str = ErrorCode::BadGraph.as_str();
    /// A message naming something the scheduler does not know.
    pub const UNKNOWN_KEY: &str = ErrorCode::UnknownKey.as_str();
    /// `retire-workers` naming a worker the scheduler does not know.
    pub const UNKNOWN_WORKER: &str = ErrorCode::UnknownWorker.as_str();
}

impl SchedulerState {
    // ------------------------------------------------------------ clients

    /// A client connected (`ext_id` is the id sent in its `welcome`); its
    /// graphs may hold shipped functions.
    pub fn add_client(&mut self, ext_id: u64, name: &str) -> ClientId {
        self.add_client_with(ext_id, name, true)
    }

    /// A client connected; `may_ship`: whether its graphs may hold shipped
    /// functions (`code:<runtime>`): the server says yes for a connection on
    /// loopback or one that passed the token or TLS. A graph with a shipped
    /// function from any other client is refused whole.
    pub fn add_client_with(&mut self, ext_id: u64, name: &str, may_ship: bool) -> ClientId {
        let client = Client {
            ext_id,
            name: name.to_string(),
            wants: Default::default(),
            may_ship,
        };
        let c = match self.free_clients.pop() {
            Some(c) => {
                self.clients[c.0 as usize] = Some(client);
                c
            }
            None => {
                self.clients.push(Some(client));
                ClientId(self.clients.len() as u32 - 1)
            }
        };
        self.client_by_ext.insert(ext_id, c);
        self.n_clients += 1;
        c
    }

    /// A client disconnected: everything it wanted is released.
    pub fn remove_client(&mut self, c: ClientId, out: &mut Vec<Outgoing>) {
        self.begin(Stimulus::ClientLeft);
        if let Some(client) = self.clients.get_mut(c.0 as usize).and_then(Option::take) {
            for t in client.wants {
                self.unwant(t);
            }
            self.client_by_ext.remove(&client.ext_id);
            self.retire_requests.retain(|r| r.client != c);
            self.copy_requests.retain(|r| r.client != c);
            self.coord_client_left(c, out);
            self.free_clients.push(c);
            self.n_clients -= 1;
        }
        self.finish(out);
    }

    fn unwant(&mut self, t: TaskId) {
        let task = self.tm(t);
        task.wanted -= 1;
        if task.wanted == 0 {
            self.values.remove(&t);
            self.check.push(t);
        }
    }

    /// `update-graph`: merges the document and makes `keys` wanted by `c`.
    /// On an invalid graph nothing changes and the error is returned (the
    /// caller answers with an `error`, code `bad-graph`).
    pub fn update_graph(
        &mut self,
        c: ClientId,
        graph: &[u8],
        keys: &[String],
        retries: u32,
        out: &mut Vec<Outgoing>,
    ) -> Result<(), String> {
        self.update_graph_from(c, graph, keys, retries, false, out)
    }

    /// `update-graph` with its `from_task` field: a graph submitted from
    /// inside a running task gets priorities before everything submitted
    /// earlier (see "Priorities" in the module docs).
    pub fn update_graph_from(
        &mut self,
        c: ClientId,
        graph: &[u8],
        keys: &[String],
        retries: u32,
        from_task: bool,
        out: &mut Vec<Outgoing>,
    ) -> Result<(), String> {
        if let Some(k) = &self.opts.panic_on_key {
            if keys.contains(k) {
                panic!("the test hook panic_on_key fired for '{k}'");
            }
        }
        self.begin(Stimulus::UpdateGraph);
        let r = self.ingest(c, graph, keys, retries, from_task, out);
        self.finish(out);
        if let Some(k) = &self.opts.break_on_key {
            if keys.contains(k) {
                self.live += 1;
            }
        }
        r
    }

    /// `long-running` from `w`: the task `key`, processing there, seceded
    /// (it waits on tasks it submitted without holding its slot). It stops
    /// counting against `w`'s room (see "Seceded tasks" in the module
    /// docs), so `w` may be sent more work. A key that is not processing
    /// on `w` (finished, taken back, unknown) is ignored: the message
    /// crossed a `free-keys`, or the task already ended.
    pub fn long_running(&mut self, w: WorkerId, key: &str, now: f64, out: &mut Vec<Outgoing>) {
        self.begin(Stimulus::LongRunning);
        self.touch(w, now);
        if let Some(t) = self.task_id(key) {
            if let TaskState::Processing { worker, cost } = self.t(t).state {
                if worker == w && self.t(t).flags & SECEDED == 0 {
                    let task = self.tm(t);
                    task.flags |= SECEDED;
                    task.state = TaskState::Processing { worker, cost: 0.0 };
                    let wk = self.wm(w);
                    wk.seceded += 1;
                    wk.occupancy_ns -= cost_ns(cost);
                    self.mark_dirty(w);
                    let wk = self.wm(w);
                    if !wk.to_fill {
                        wk.to_fill = true;
                        self.to_fill.push(w);
                    }
                }
            }
        }
        self.finish(out);
    }

    /// `release-keys`: `c` no longer wants `keys` (unknown keys, or keys it
    /// did not want, are ignored).
    pub fn release_keys<S: AsRef<str>>(
        &mut self,
        c: ClientId,
        keys: &[S],
        out: &mut Vec<Outgoing>,
    ) {
        self.begin(Stimulus::ReleaseKeys);
        for k in keys {
            if let Some(t) = self.task_id(k.as_ref()) {
                if self.clients[c.0 as usize]
                    .as_mut()
                    .expect("a live client")
                    .wants
                    .remove(&t)
                {
                    self.unwant(t);
                }
            }
        }
        self.finish(out);
    }

    /// Releases at most `max` of the keys client `c` wants, as one
    /// stimulus; returns how many it still wants. The server releases a
    /// large client's keys this way before it removes the client, so that
    /// no single step holds the core for millions of keys.
    pub fn release_some_wants(
        &mut self,
        c: ClientId,
        max: usize,
        out: &mut Vec<Outgoing>,
    ) -> usize {
        let Some(client) = self.clients.get_mut(c.0 as usize).and_then(Option::as_mut) else {
            return 0;
        };
        let some: Vec<TaskId> = client.wants.iter().take(max).copied().collect();
        for t in &some {
            client.wants.remove(t);
        }
        let left = client.wants.len();
        self.begin(Stimulus::ReleaseKeys);
        for t in some {
            self.unwant(t);
        }
        self.finish(out);
        left
    }

    /// `cancel-keys`: like `release-keys`, and `c` gets `key-cancelled` for
    /// each key. Work that another client still wants goes on.
    pub fn cancel_keys<S: AsRef<str>>(&mut self, c: ClientId, keys: &[S], out: &mut Vec<Outgoing>) {
        self.begin(Stimulus::CancelKeys);
        for k in keys {
            let k = k.as_ref();
            if let Some(t) = self.task_id(k) {
                if self.clients[c.0 as usize]
                    .as_mut()
                    .expect("a live client")
                    .wants
                    .remove(&t)
                {
                    self.unwant(t);
                }
            }
            out.push(Outgoing::KeyCancelled {
                client: c,
                key: k.into(),
            });
        }
        self.finish(out);
    }

    /// `who-has`: answered with `who-has-reply`.
    pub fn who_has<S: AsRef<str>>(
        &self,
        c: ClientId,
        id: u64,
        keys: &[S],
        out: &mut Vec<Outgoing>,
    ) {
        let who_has = keys
            .iter()
            .map(|k| (k.as_ref().to_string(), self.who_has_of(k.as_ref())))
            .collect();
        out.push(Outgoing::Message(
            Dest::Client(c),
            Message::WhoHasReply { id, who_has },
        ));
    }

    /// The workers, as `workers-reply` describes them.
    pub fn workers_info(&self) -> Vec<WorkerInfo> {
        self.worker_ids()
            .map(|w| {
                let wk = self.w(w);
                WorkerInfo {
                    id: wk.ext_id,
                    name: wk.name.clone(),
                    address: wk.address.to_string(),
                    threads: wk.threads,
                    memory_limit: wk.memory_limit,
                    memory: wk.memory,
                    spilled: wk.spilled,
                    process: wk.process,
                    paused: wk.paused,
                    runtime: wk.runtime.to_string(),
                    cpu: wk.cpu,
                    functions: wk
                        .funcs
                        .iter()
                        .map(|&f| self.func_name(f).to_string())
                        .collect(),
                }
            })
            .collect()
    }

    /// `get-workers`: answered with `workers-reply`.
    pub fn get_workers(&self, c: ClientId, id: u64, out: &mut Vec<Outgoing>) {
        out.push(Outgoing::Message(
            Dest::Client(c),
            Message::WorkersReply {
                id,
                workers: self.workers_info(),
            },
        ));
    }

    /// `get-info`: the counters of [`SchedulerState::counts`].
    pub fn get_info(&self, c: ClientId, id: u64, out: &mut Vec<Outgoing>) {
        let n = self.counts();
        let states = [
            ("released", n.released),
            ("waiting", n.waiting),
            ("no-worker", n.no_worker),
            ("queued", n.queued),
            ("processing", n.processing),
            ("memory", n.memory),
            ("erred", n.erred),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v as u64))
        .collect();
        let mut m = [0u64; 5];
        for w in self.worker_ids() {
            let wk = self.w(w);
            m[0] += wk.memory;
            m[1] += wk.spilled;
            m[2] += wk.process;
            m[3] += wk.memory_limit;
            m[4] += wk.paused as u64;
        }
        out.push(Outgoing::Message(
            Dest::Client(c),
            Message::InfoReply {
                id,
                tasks: n.tasks as u64,
                states,
                workers: n.workers as u64,
                clients: n.clients as u64,
                managed: m[0],
                spilled: m[1],
                process: m[2],
                memory_limit: m[3],
                paused: m[4],
            },
        ));
    }

    /// `scattered`: `c` stored these keys on workers (named by their
    /// `welcome` ids) and now wants them. Returns an error naming what was
    /// wrong (a key with no known worker); the other keys are still taken.
    pub fn scattered(
        &mut self,
        c: ClientId,
        who_has: &BTreeMap<String, Vec<u64>>,
        nbytes: &BTreeMap<String, u64>,
        out: &mut Vec<Outgoing>,
    ) -> Result<(), String> {
        self.begin(Stimulus::Scattered);
        let mut bad = Vec::new();
        for (key, ws) in who_has {
            let ws: Vec<WorkerId> = ws
                .iter()
                .filter_map(|e| self.worker_by_ext.get(e).copied())
                .collect();
            if ws.is_empty() || key.is_empty() {
                bad.push(key.clone());
                continue;
            }
            let size = nbytes.get(key).copied().unwrap_or(0);
            let t = match self.task_id(key) {
                Some(t) => t,
                None => {
                    let p = self.next_generation(false);
                    self.new_task(Key::new(key), NO_FUNC, Box::new([]), Box::new([]), p, 0)
                }
            };
            if self.clients[c.0 as usize]
                .as_mut()
                .expect("a live client")
                .wants
                .insert(t)
            {
                self.tm(t).wanted += 1;
            }
            if matches!(self.t(t).state, TaskState::Erred(_)) {
                // Data replaces the error.
                self.set_state(t, TaskState::Released);
            }
            for w in ws {
                self.t_memory(t, w, size, None, out);
            }
        }
        self.finish(out);
        if bad.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "scattered: no known worker holds {}",
                bad.iter()
                    .map(|k| format!("'{k}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        }
    }

    // ------------------------------------------------------------ workers

    /// A worker registered. Tasks waiting for a worker that can run them
    /// are placed; it is filled from the queues.
    pub fn add_worker(
        &mut self,
        reg: WorkerRegistration,
        now: f64,
        out: &mut Vec<Outgoing>,
    ) -> WorkerId {
        self.begin(Stimulus::WorkerJoined);
        if now > self.clock {
            self.clock = now;
        }
        let mut funcs: Vec<FuncId> = reg.functions.iter().map(|f| self.intern_func(f)).collect();
        funcs.sort_unstable();
        funcs.dedup();
        let mut bits = BitSet::default();
        for f in &funcs {
            bits.insert(f.0);
        }
        let class = match self.classes.iter().position(|c| c.funcs == bits) {
            Some(i) => i,
            None => {
                self.classes.push(Class {
                    funcs: bits,
                    members: 0,
                    free: BTreeSet::new(),
                });
                self.classes.len() - 1
            }
        };
        self.classes[class].members += 1;
        let threads = reg.threads.max(1);
        // `threads` is what the worker claims: saturate, never overflow.
        let limit = threads
            .saturating_add(threads.saturating_mul(self.opts.backlog_per_thread))
            .saturating_add(self.opts.backlog_extra);
        let address: Arc<str> = reg.address.as_str().into();
        let worker = Worker {
            ext_id: reg.ext_id,
            name: reg.name,
            address: address.clone(),
            threads,
            memory_limit: reg.memory_limit,
            funcs: funcs.clone().into_boxed_slice(),
            class: class as u32,
            limit,
            processing: Default::default(),
            occupancy_ns: 0,
            has_what: Vec::new(),
            n_keys: 0,
            nbytes: 0,
            last_seen: now,
            executing: 0,
            memory: 0,
            spilled: 0,
            process: 0,
            cpu: None,
            runtime: reg.runtime.into_boxed_str(),
            paused: false,
            retiring: false,
            incoming: 0,
            missed: 0,
            missed_since: now,
            missed_attempts: Vec::new(),
            seceded: 0,
            index_key: None,
            dirty: false,
            to_fill: true,
        };
        let w = match self.free_workers.pop() {
            Some(w) => {
                self.workers[w.0 as usize] = Some(worker);
                w
            }
            None => {
                self.workers.push(Some(worker));
                WorkerId(self.workers.len() as u32 - 1)
            }
        };
        self.n_workers += 1;
        self.worker_by_ext.insert(reg.ext_id, w);
        self.worker_by_addr.insert(address, w);
        self.to_fill.push(w);
        self.mark_dirty(w);
        for f in funcs {
            let func = &mut self.funcs[f.0 as usize];
            func.capable += 1;
            func.stuck_since = None;
            if func.capable == 1 {
                // no-worker → waiting(0), placed at the end.
                for t in std::mem::take(&mut func.no_worker) {
                    let Some(task) = self.tasks[t.0 as usize].as_mut() else {
                        continue;
                    };
                    if task.func != f {
                        continue;
                    }
                    task.flags &= !IN_NO_WORKER;
                    if matches!(task.state, TaskState::NoWorker) {
                        self.set_state(t, TaskState::Waiting { waiting_on: 0 });
                        self.ready.push(t);
                    }
                }
            }
        }
        if !self.retiring.is_empty() {
            self.worker_joined_for_retirements();
        }
        self.finish(out);
        w
    }

    /// A worker left (connection closed or heartbeat timeout). Its tasks
    /// are placed elsewhere; keys only it held are recomputed if needed.
    pub fn remove_worker(&mut self, w: WorkerId, out: &mut Vec<Outgoing>) {
        if self.worker(w).is_none() {
            return;
        }
        self.begin(Stimulus::WorkerLeft);
        self.drop_worker(w, true, out);
        self.finish(out);
    }

    /// Takes `w` out of the cluster inside a stimulus: its processing
    /// tasks go back to waiting (or, when it `died`, err once they have
    /// been processing on `allowed_failures` workers that died), its
    /// retirement ends, its data is dropped ([`Self::detach_worker`]) and
    /// messages recorded for it are dropped.
    fn drop_worker(&mut self, w: WorkerId, died: bool, out: &mut Vec<Outgoing>) {
        let processing = self.w(w).processing.clone();
        let allowed = self.options().allowed_failures.min(u8::MAX as u32);
        for t in processing {
            if !matches!(self.t(t).state, TaskState::Processing { worker, .. } if worker == w) {
                // Erred meanwhile, as a dependent of a task given up below.
                continue;
            }
            if died {
                let n = self.t(t).suspicious.saturating_add(1);
                self.tm(t).suspicious = n;
                if allowed > 0 && n as u32 >= allowed {
                    let task = self.t(t);
                    let err = Arc::new(TaskError::new(
                        task.name.clone(),
                        self.func_name(task.func).to_string(),
                        self.w(w).address.to_string(),
                        format!(
                            "the task was running on {n} worker{} that died (allowed failures: {allowed}); \
                             it was not placed again",
                            if n == 1 { "" } else { "s" }
                        ),
                    ));
                    self.t_erred(t, err, out);
                    continue;
                }
            }
            self.unassign(t);
            self.set_state(t, TaskState::Waiting { waiting_on: 0 });
            self.ready.push(t);
        }
        if self.w(w).retiring {
            self.retirement_ended(w, false, out);
        }
        self.detach_worker(w, out);
        // Free-keys may have been recorded for it (tasks taken back);
        // it is gone, so drop them.
        out.retain(|o| o.dest() != Dest::Worker(w));
    }

    /// Removes `w`, whose data port other workers cannot reach (see
    /// [`SchedulerOptions::missing_data_per_worker`]): like a worker that
    /// left, but its running tasks do not count as deaths. It is sent
    /// `close` naming the reason, and the server stops routing its
    /// connection ([`SchedulerState::take_retired`]).
    fn remove_unreachable(&mut self, w: WorkerId, out: &mut Vec<Outgoing>) {
        let wk = self.w(w);
        let reason = format!(
            "removed from the cluster: other workers could not fetch data from its data port \
             {} ({} missing-data reports)",
            wk.address, wk.missed
        );
        tracing::warn!(
            worker = %wk.address,
            name = %wk.name,
            reports = wk.missed,
            "removing an unreachable worker: its results are recomputed elsewhere"
        );
        self.drop_worker(w, false, out);
        out.push(Outgoing::Message(
            Dest::Worker(w),
            Message::Close { reason },
        ));
        self.retired.push(w);
    }

    /// Removes `w` from the tables: its data (keys only it held are lost,
    /// and recomputed if needed), its class, its functions; replicas it
    /// was fetching are asked of another worker. Its processing list must
    /// be empty.
    pub(crate) fn detach_worker(&mut self, w: WorkerId, out: &mut Vec<Outgoing>) {
        debug_assert!(self.w(w).processing.is_empty());
        if !self.replicas.is_empty() {
            self.flights_lost_worker(w, out);
        }
        // Its data.
        let held = std::mem::take(&mut self.wm(w).has_what);
        for t in held {
            if self.drop_holder(t, w) {
                self.t_memory_lost(t, out);
            }
        }
        let wk = self.workers[w.0 as usize].take().expect("a live worker");
        self.free_workers.push(w);
        self.n_workers -= 1;
        if self.worker_by_ext.get(&wk.ext_id) == Some(&w) {
            self.worker_by_ext.remove(&wk.ext_id);
        }
        if self.worker_by_addr.get(&wk.address) == Some(&w) {
            self.worker_by_addr.remove(&wk.address);
        }
        let class = &mut self.classes[wk.class as usize];
        class.members -= 1;
        if let Some(k) = wk.index_key {
            class.free.remove(&(k, w));
        }
        // Functions nobody can run any more: queued → no-worker.
        for &f in wk.funcs.iter() {
            let func = &mut self.funcs[f.0 as usize];
            func.capable -= 1;
            if func.capable == 0 {
                for (p, t) in func.queue.drain() {
                    let Some(task) = self.tasks[t.0 as usize].as_mut() else {
                        continue;
                    };
                    if task.func != f || task.priority != p {
                        continue;
                    }
                    task.flags &= !IN_QUEUE;
                    if matches!(task.state, TaskState::Queued) {
                        self.t_no_worker(t);
                    }
                }
            }
        }
    }

    /// Any message from a worker shows it is alive.
    pub fn touch(&mut self, w: WorkerId, now: f64) {
        if now > self.clock {
            self.clock = now;
        }
        if let Some(wk) = self.workers.get_mut(w.0 as usize).and_then(Option::as_mut) {
            wk.last_seen = now;
        }
    }

    /// `heartbeat`: its figures. A worker that paused gets no task until it
    /// resumes; one that resumed is filled from the queues at once.
    pub fn heartbeat(
        &mut self,
        w: WorkerId,
        executing: u32,
        mem: WorkerMemory,
        now: f64,
        out: &mut Vec<Outgoing>,
    ) {
        self.touch(w, now);
        let Some(wk) = self.workers.get_mut(w.0 as usize).and_then(Option::as_mut) else {
            return;
        };
        wk.executing = executing;
        wk.memory = mem.managed;
        wk.spilled = mem.spilled;
        wk.process = mem.process;
        if wk.paused == mem.paused {
            return;
        }
        wk.paused = mem.paused;
        self.begin(Stimulus::Memory);
        self.mark_dirty(w);
        let wk = self.wm(w);
        if !mem.paused && !wk.to_fill {
            wk.to_fill = true;
            self.to_fill.push(w);
        }
        self.finish(out);
    }

    /// Workers silent for longer than `timeout` seconds.
    pub fn stale_workers(&self, now: f64, timeout: f64) -> Vec<WorkerId> {
        self.worker_ids()
            .filter(|&w| now - self.w(w).last_seen > timeout)
            .collect()
    }

    /// `task-finished` from `w`.
    #[allow(clippy::too_many_arguments)]
    pub fn task_finished(
        &mut self,
        w: WorkerId,
        key: &str,
        nbytes: u64,
        duration: f64,
        value: Option<Vec<u8>>,
        now: f64,
        out: &mut Vec<Outgoing>,
    ) {
        self.begin(Stimulus::TaskFinished);
        self.touch(w, now);
        let Some(t) = self.task_id(key) else {
            push_free(out, w, key.into());
            return;
        };
        match self.t(t).state {
            TaskState::Processing { worker, .. } if worker == w => {
                let f = self.t(t).func;
                let seceded = self.t(t).flags & SECEDED != 0;
                let alpha = self.opts.duration_alpha;
                let func = &mut self.funcs[f.0 as usize];
                // (a seceded task mostly waited: its time says nothing
                // about its function's cost)
                if duration.is_finite() && duration >= 0.0 && !seceded {
                    if func.observed {
                        func.est += alpha * (duration - func.est);
                    } else {
                        func.est = duration;
                        func.observed = true;
                    }
                }
                self.t_memory(t, w, nbytes, value, out);
            }
            // A duplicate: `w` holds it already.
            TaskState::Memory { ref who_has } if who_has.contains(w) => {}
            // A result from a worker the task is not processing on: it was
            // taken back from `w` (and `w` sent `free-keys`, which `w`
            // handles after it sent this: it drops the value) or never
            // placed there. Taking it would record a copy `w` does not keep
            // (found by the cluster simulation: a client was told a key was
            // in memory at a worker that had dropped it). Ignored, and `w`
            // is told again to drop it; the task runs where it was placed.
            TaskState::Memory { .. }
            | TaskState::Processing { .. }
            | TaskState::Waiting { .. }
            | TaskState::Queued
            | TaskState::NoWorker
            | TaskState::Released
            | TaskState::Erred(_) => self.free_key(w, t, out),
        }
        self.finish(out);
    }

    /// `task-erred` from `w`: retried while retries are left, then erred
    /// with everything pending that depends on it.
    pub fn task_erred(
        &mut self,
        w: WorkerId,
        key: &str,
        message: &str,
        now: f64,
        out: &mut Vec<Outgoing>,
    ) {
        self.task_raised(w, key, message, "", "", now, out)
    }

    /// `task-erred` with the exception's type name and the traceback the
    /// worker reported (each may be empty); they reach the clients in
    /// `key-erred`.
    #[allow(clippy::too_many_arguments)]
    pub fn task_raised(
        &mut self,
        w: WorkerId,
        key: &str,
        message: &str,
        exception: &str,
        traceback: &str,
        now: f64,
        out: &mut Vec<Outgoing>,
    ) {
        self.begin(Stimulus::TaskErred);
        self.touch(w, now);
        let Some(t) = self.task_id(key) else {
            return;
        };
        if !matches!(self.t(t).state, TaskState::Processing { worker, .. } if worker == w) {
            // Stale: the task was taken back from this worker.
            return;
        }
        if self.t(t).retries > 0 {
            self.tm(t).retries -= 1;
            self.unassign(t);
            self.set_state(t, TaskState::Waiting { waiting_on: 0 });
            self.ready.push(t);
        } else {
            let task = self.t(t);
            let err = Arc::new(
                TaskError::new(
                    task.name.clone(),
                    self.func_name(task.func).to_string(),
                    self.w(w).address.to_string(),
                    message.to_string(),
                )
                .raised(exception, traceback),
            );
            // t_erred takes it off the worker (without free-keys: the
            // worker reported the failure, it holds nothing).
            self.t_erred(t, err, out);
        }
        self.finish(out);
    }

    /// `add-keys`: `w` now also holds copies of these keys. Keys the
    /// scheduler does not hold in memory are answered with `free-keys`.
    pub fn add_keys<S: AsRef<str>>(
        &mut self,
        w: WorkerId,
        keys: &[S],
        nbytes: &[u64],
        now: f64,
        out: &mut Vec<Outgoing>,
    ) {
        self.begin(Stimulus::AddKeys);
        self.touch(w, now);
        for (i, k) in keys.iter().enumerate() {
            let k = k.as_ref();
            match self.task_id(k) {
                Some(t) if matches!(self.t(t).state, TaskState::Memory { .. }) => {
                    let nb = nbytes.get(i).copied().unwrap_or(self.t(t).nbytes);
                    self.t_memory(t, w, nb, None, out);
                }
                _ => push_free(out, w, k.into()),
            }
        }
        self.finish(out);
    }

    /// `missing-data`: `w`, running `key`, could not get `dependency` from
    /// the worker at `holder`. The holder is dropped from the
    /// dependency's holders (the key is lost, and recomputed if needed,
    /// when it was the last), and `key` goes back to waiting. Both count:
    /// a holder named too often is removed as unreachable
    /// ([`SchedulerOptions::missing_data_per_worker`]; only reports whose
    /// `why` says it could not be reached count, see [`MissingReason`]),
    /// and a key reported too often errs
    /// ([`SchedulerOptions::missing_data_per_key`]).
    #[allow(clippy::too_many_arguments)]
    pub fn missing_data(
        &mut self,
        w: WorkerId,
        key: &str,
        dependency: &str,
        holder: &str,
        why: MissingReason,
        now: f64,
        out: &mut Vec<Outgoing>,
    ) {
        self.begin(Stimulus::MissingData);
        self.touch(w, now);
        let reporter = self.w(w).address.clone();
        // The task first (its dependency is still in memory, so it goes
        // back to waiting as ready; losing the dependency below makes it
        // wait for it).
        if let Some(t) = self.task_id(key) {
            if matches!(self.t(t).state, TaskState::Processing { worker, .. } if worker == w) {
                let n = {
                    let e = self.missed.entry(t).or_default();
                    *e += 1;
                    *e
                };
                let limit = self.opts.missing_data_per_key;
                self.free_key(w, t, out);
                if limit > 0 && n >= limit {
                    let task = self.t(t);
                    let err = Arc::new(TaskError::new(
                        task.name.clone(),
                        self.func_name(task.func).to_string(),
                        reporter.to_string(),
                        format!(
                            "its inputs could not be fetched {n} times (missing-data; the last: \
                             '{dependency}' from {holder}); a worker's data port may be unreachable"
                        ),
                    ));
                    tracing::warn!(%key, reports = n, "giving up a task whose inputs could not be fetched");
                    self.t_erred(t, err, out);
                } else {
                    self.unassign(t);
                    self.back_to_waiting(t);
                }
            }
        }
        let mut unreachable = None;
        if let (Some(d), Some(&h)) = (self.task_id(dependency), self.worker_by_addr.get(holder)) {
            let believed = self.holds(h, d);
            tracing::warn!(
                %key, %dependency, %holder, %reporter, ?why,
                "missing-data: a worker could not fetch a dependency from its holder{}",
                if believed { "" } else { " (not held there any more)" }
            );
            let limit = self.opts.missing_data_per_worker;
            if believed && h != w && limit > 0 {
                let window = self.opts.missing_data_window;
                let hw = self.wm(h);
                if now - hw.missed_since > window {
                    hw.missed = 0;
                    hw.missed_since = now;
                    hw.missed_attempts.clear();
                }
                let counts = match why {
                    MissingReason::NotHeld => false,
                    MissingReason::Unknown | MissingReason::Unreachable(None) => true,
                    MissingReason::Unreachable(Some(a)) => {
                        if hw.missed_attempts.contains(&(w, a)) {
                            false
                        } else {
                            hw.missed_attempts.push((w, a));
                            true
                        }
                    }
                };
                if counts {
                    hw.missed += 1;
                    if hw.missed >= limit {
                        unreachable = Some(h);
                    }
                }
            }
            // The holder's copy is no longer counted: it is told to delete
            // it, or it would hold data nobody frees (found by the
            // simulation, sim.rs).
            if believed {
                self.free_key(h, d, out);
            }
            if self.drop_holder(d, h) {
                tracing::info!(key = %dependency, "its last holder lost it: recomputed if needed");
                self.t_memory_lost(d, out);
            }
        } else {
            tracing::debug!(%key, %dependency, %holder, %reporter, "missing-data for an unknown key or holder");
        }
        if let Some(h) = unreachable {
            if self.worker(h).is_some() {
                self.remove_unreachable(h, out);
            }
        }
        self.finish(out);
    }

    // ------------------------------------------------------------ dispatch

    /// Handles one message from a registered worker. The type holds only
    /// what a worker may send (the connection's role check is the
    /// conversion to it: [`WorkerMessage::try_from`]).
    pub fn handle_worker_message(
        &mut self,
        w: WorkerId,
        msg: WorkerMessage,
        now: f64,
        out: &mut Vec<Outgoing>,
    ) {
        match msg {
            WorkerMessage::TaskFinished {
                key,
                nbytes,
                duration,
                value,
            } => self.task_finished(
                w,
                &key,
                nbytes,
                duration,
                value.map(ByteBuf::into_vec),
                now,
                out,
            ),
            WorkerMessage::TaskErred {
                key,
                message,
                exception,
                traceback,
            } => self.task_raised(w, &key, &message, &exception, &traceback, now, out),
            WorkerMessage::Heartbeat {
                executing,
                memory,
                spilled,
                process,
                paused,
                cpu,
            } => {
                if let Some(wk) = self.workers.get_mut(w.0 as usize).and_then(Option::as_mut) {
                    wk.cpu = cpu;
                }
                self.heartbeat(
                    w,
                    executing,
                    WorkerMemory {
                        managed: memory,
                        spilled,
                        process,
                        paused,
                    },
                    now,
                    out,
                )
            }
            WorkerMessage::AddKeys { keys, nbytes, .. } => {
                self.add_keys(w, &keys, &nbytes, now, out)
            }
            WorkerMessage::MissingData {
                key,
                dependency,
                worker,
                reason,
                attempt,
            } => {
                let why = MissingReason::parse(&reason, attempt);
                self.missing_data(w, &key, &dependency, &worker, why, now, out)
            }
            WorkerMessage::RetireWorker { reason } => {
                self.touch(w, now);
                self.retire_worker(w, &reason, out);
            }
            WorkerMessage::Reschedule { keys } => self.reschedule(w, &keys, now, out),
            WorkerMessage::AcquireFailed { keys, message } => {
                self.acquire_failed(w, &keys, &message, now, out)
            }
            WorkerMessage::LongRunning { key } => self.long_running(w, &key, now, out),
            WorkerMessage::RegisterWorker { .. } => {
                self.touch(w, now);
                out.push(Outgoing::Message(
                    Dest::Worker(w),
                    Message::error(
                        "this worker is already registered",
                        crate::protocol::ErrorCode::BadMessage,
                    ),
                ));
            }
            // An `error` from a worker is logged by its connection.
            WorkerMessage::Close { .. } | WorkerMessage::Error { .. } => {}
        }
    }

    /// Handles one message from a client (coordination requests go to
    /// [`SchedulerState::coord_message`]). The type holds only what a client
    /// may send; invalid requests are answered with an `error` echoing
    /// their id.
    pub fn handle_client_message(
        &mut self,
        c: ClientId,
        msg: ClientMessage,
        now: f64,
        out: &mut Vec<Outgoing>,
    ) {
        // Every error answering a request echoes its id (when it has one).
        let reply_err = |out: &mut Vec<Outgoing>, m: String, code: &str, id: Option<u64>| {
            out.push(Outgoing::Message(
                Dest::Client(c),
                Message::Error {
                    message: m,
                    code: Some(code.into()),
                    id,
                },
            ));
        };
        match msg {
            ClientMessage::UpdateGraph {
                graph,
                keys,
                retries,
                from_task,
                id,
            } => {
                let r = self.update_graph_from(c, &graph, &keys, retries, from_task, out);
                if let Err(e) = r {
                    reply_err(out, e, codes::BAD_GRAPH, id);
                }
            }
            ClientMessage::ReleaseKeys { keys, .. } => self.release_keys(c, &keys, out),
            ClientMessage::CancelKeys { keys, .. } => self.cancel_keys(c, &keys, out),
            ClientMessage::WhoHas { id, keys } => self.who_has(c, id, &keys, out),
            ClientMessage::GetWorkers { id } => self.get_workers(c, id, out),
            ClientMessage::GetInfo { id } => self.get_info(c, id, out),
            ClientMessage::RetireWorkers { id, workers } => {
                if let Err(e) = self.retire_workers(c, id, &workers, out) {
                    out.push(Outgoing::Message(
                        Dest::Client(c),
                        Message::Error {
                            message: e,
                            code: Some(codes::UNKNOWN_WORKER.into()),
                            id: Some(id),
                        },
                    ));
                }
            }
            ClientMessage::Replicate { id, keys, n } => {
                if let Err((message, code)) = self.replicate(c, id, &keys, n, out) {
                    out.push(Outgoing::Message(
                        Dest::Client(c),
                        Message::Error {
                            message,
                            code: Some(code.into()),
                            id: Some(id),
                        },
                    ));
                }
            }
            ClientMessage::Rebalance { id, keys } => {
                if let Err((message, code)) = self.rebalance(c, id, &keys, out) {
                    out.push(Outgoing::Message(
                        Dest::Client(c),
                        Message::Error {
                            message,
                            code: Some(code.into()),
                            id: Some(id),
                        },
                    ));
                }
            }
            ClientMessage::Scattered {
                who_has,
                nbytes,
                id,
            } => {
                if let Err(e) = self.scattered(c, &who_has, &nbytes, out) {
                    reply_err(out, e, codes::UNKNOWN_KEY, id);
                }
            }
            // An `error` from a client is logged by its connection.
            ClientMessage::Close { .. } | ClientMessage::Error { .. } => {}
            // Requests to coordination objects.
            m @ (ClientMessage::VariableSet { .. }
            | ClientMessage::VariableGet { .. }
            | ClientMessage::VariableDelete { .. }
            | ClientMessage::QueueCreate { .. }
            | ClientMessage::QueuePut { .. }
            | ClientMessage::QueueGet { .. }
            | ClientMessage::QueueSize { .. }
            | ClientMessage::LeaseAcquire { .. }
            | ClientMessage::LeaseRelease { .. }
            | ClientMessage::EventSet { .. }
            | ClientMessage::EventClear { .. }
            | ClientMessage::EventWait { .. }
            | ClientMessage::PublishDataset { .. }
            | ClientMessage::UnpublishDataset { .. }
            | ClientMessage::GetDataset { .. }
            | ClientMessage::ListDatasets { .. }
            | ClientMessage::FireAndForget { .. }
            | ClientMessage::Subscribe { .. }
            | ClientMessage::Unsubscribe { .. }
            | ClientMessage::Publish { .. }) => self.coord_message(c, m, now, out),
        }
    }
}

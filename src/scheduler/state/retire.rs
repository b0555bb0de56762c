//! Graceful retirement: a worker leaves after what only it holds has been
//! copied to other workers, so nothing is recomputed. See "Retirement" in
//! the module docs.

use super::*;
use std::collections::BTreeMap;

impl SchedulerState {
    // ------------------------------------------------------------ stimuli

    /// `retire-worker`: `w` asks to leave gracefully (it got SIGTERM). It
    /// has already stopped starting tasks; the ones it had not started
    /// come back with `reschedule`.
    pub fn retire_worker(&mut self, w: WorkerId, reason: &str, out: &mut Vec<Outgoing>) {
        if self.worker(w).is_none() {
            return;
        }
        self.begin(Stimulus::Retire);
        if !self.w(w).retiring {
            tracing::info!(worker = %self.w(w).address, %reason, "the worker asked to retire");
        }
        self.start_retirement(w, None, out);
        self.finish(out);
    }

    /// `retire-workers` from client `c`: retire each worker named (by data
    /// address, name, or id in decimal). Answered with
    /// `retire-workers-reply` once all of them have left. A name that
    /// matches no worker is an error and nothing is retired.
    pub fn retire_workers<S: AsRef<str>>(
        &mut self,
        c: ClientId,
        id: u64,
        names: &[S],
        out: &mut Vec<Outgoing>,
    ) -> Result<(), String> {
        let mut ws: Vec<WorkerId> = Vec::new();
        let mut unknown = Vec::new();
        for n in names {
            let n = n.as_ref();
            let found = self.worker_by_addr.get(n).copied().or_else(|| {
                self.worker_ids().find(|&w| {
                    let wk = self.w(w);
                    wk.name == n || wk.ext_id.to_string() == n
                })
            });
            match found {
                Some(w) if !ws.contains(&w) => ws.push(w),
                Some(_) => {}
                None => unknown.push(format!("'{n}'")),
            }
        }
        if !unknown.is_empty() {
            return Err(format!(
                "retire-workers: no worker is known as {} (name workers by data address, name or id)",
                unknown.join(", ")
            ));
        }
        self.begin(Stimulus::Retire);
        self.retire_requests.push(RetireRequest {
            client: c,
            id,
            pending: ws.clone(),
            workers: Vec::new(),
            moved: BTreeMap::new(),
            lost: Vec::new(),
        });
        for w in ws {
            self.start_retirement(w, Some("a client asked to retire this worker"), out);
        }
        self.answer_retire_requests(out);
        self.finish(out);
        Ok(())
    }

    /// `reschedule`: `w` will not run these tasks (it is retiring and had
    /// not started them); they are placed elsewhere.
    pub fn reschedule<S: AsRef<str>>(
        &mut self,
        w: WorkerId,
        keys: &[S],
        now: f64,
        out: &mut Vec<Outgoing>,
    ) {
        self.begin(Stimulus::Retire);
        self.touch(w, now);
        for k in keys {
            let Some(t) = self.task_id(k.as_ref()) else {
                continue;
            };
            if !matches!(self.t(t).state, TaskState::Processing { worker, .. } if worker == w) {
                continue;
            }
            self.unassign(t);
            self.back_to_waiting(t);
        }
        self.finish(out);
    }

    /// `acquire-failed`: `w` could not fetch these replicas; each is asked
    /// of another worker, or given up when every one was tried.
    pub fn acquire_failed<S: AsRef<str>>(
        &mut self,
        w: WorkerId,
        keys: &[S],
        message: &str,
        now: f64,
        out: &mut Vec<Outgoing>,
    ) {
        self.begin(Stimulus::Retire);
        self.touch(w, now);
        for k in keys {
            let Some(t) = self.task_id(k.as_ref()) else {
                continue;
            };
            if self.replicas.get(&t).is_some_and(|f| f.target == w) {
                tracing::debug!(key = k.as_ref(), worker = %self.w(w).address, %message, "replica fetch failed");
                self.retry_flight(t, out);
            }
        }
        self.finish(out);
    }

    /// Time passed: a retiring worker whose results had nowhere to go for
    /// the retire timeout leaves now.
    pub fn tick(&mut self, now: f64, out: &mut Vec<Outgoing>) {
        if now > self.clock {
            self.clock = now;
        }
        if let Some(limit) = self.opts.no_workers_timeout {
            self.no_workers_timeout(now, limit, out);
        }
        let timeout = self.opts.retire_timeout;
        let due = self
            .retiring
            .iter()
            .any(|r| r.stuck_since.is_some_and(|s| now - s >= timeout));
        if due {
            self.begin(Stimulus::Retire);
            self.finish(out);
        }
    }

    /// Errs the tasks waiting in `no-worker` for a function no worker has
    /// offered for `limit` seconds (see
    /// [`SchedulerOptions::no_workers_timeout`]).
    fn no_workers_timeout(&mut self, now: f64, limit: f64, out: &mut Vec<Outgoing>) {
        let due: Vec<FuncId> = (0..self.funcs.len())
            .filter(|&i| {
                let f = &self.funcs[i];
                f.capable == 0 && f.stuck_since.is_some_and(|s| now - s >= limit)
            })
            .map(|i| FuncId(i as u32))
            .collect();
        if due.is_empty() {
            return;
        }
        self.begin(Stimulus::NoWorkersTimeout);
        for f in due {
            let func = &mut self.funcs[f.0 as usize];
            func.stuck_since = None;
            let list = std::mem::take(&mut func.no_worker);
            let name = func.name.to_string();
            let mut n = 0;
            for t in list {
                let Some(task) = self.tasks[t.0 as usize].as_mut() else {
                    continue;
                };
                if task.func != f {
                    continue;
                }
                task.flags &= !IN_NO_WORKER;
                if !matches!(task.state, TaskState::NoWorker) {
                    continue;
                }
                n += 1;
                let err = Arc::new(TaskError::new(
                    task.name.clone(),
                    name.clone(),
                    String::new(),
                    format!(
                        "no connected worker offers the function '{name}' \
                         (waited {limit} s: the scheduler's no-workers timeout)"
                    ),
                ));
                self.t_erred(t, err, out);
            }
            tracing::warn!(func = %name, tasks = n, "no-workers timeout: tasks erred");
        }
        self.finish(out);
    }

    /// Workers that finished retiring, or were removed as unreachable
    /// (see [`SchedulerOptions::missing_data_per_worker`]), since the last
    /// call: they were sent `close` and removed from the state; their connections must no longer
    /// be routed to (their ids may be reused).
    pub fn take_retired(&mut self) -> Vec<WorkerId> {
        std::mem::take(&mut self.retired)
    }

    /// Workers being retired now.
    pub fn retiring_workers(&self) -> Vec<WorkerId> {
        self.retiring.iter().map(|r| r.worker).collect()
    }

    // ------------------------------------------------------------ inside

    /// Marks `w` retiring: no new tasks (it has no room), and its keys are
    /// looked at. `tell`: the reason to send it in `retire` (when it did
    /// not ask itself).
    fn start_retirement(&mut self, w: WorkerId, tell: Option<&str>, out: &mut Vec<Outgoing>) {
        if self.w(w).retiring {
            return;
        }
        let wk = self.wm(w);
        wk.retiring = true;
        let todo = wk.has_what.clone();
        self.mark_dirty(w);
        // Copies on their way to it go to another worker instead (a
        // retiring worker is no copy's target; found by the cluster
        // simulation: a worker retired while it fetched a retiring
        // worker's result).
        let mut to_retry: Vec<TaskId> = self
            .replicas
            .iter()
            .filter(|(_, f)| f.target == w)
            .map(|(&t, _)| t)
            .collect();
        to_retry.sort_unstable();
        for t in to_retry {
            self.retry_flight(t, out);
        }
        self.retiring.push(Retirement {
            worker: w,
            todo,
            homeless: Vec::new(),
            stuck_since: None,
            given_up: Vec::new(),
            moved: Vec::new(),
        });
        if let Some(reason) = tell {
            out.push(Outgoing::Message(
                Dest::Worker(w),
                Message::Retire {
                    reason: reason.into(),
                },
            ));
        }
    }

    fn retirement_index(&self, w: WorkerId) -> Option<usize> {
        self.retiring.iter().position(|r| r.worker == w)
    }

    /// `t` arrived on retiring worker `w`: look at it.
    pub(crate) fn retire_todo(&mut self, w: WorkerId, t: TaskId) {
        if let Some(i) = self.retirement_index(w) {
            self.retiring[i].todo.push(t);
        }
    }

    /// A worker joined: keys that had nowhere to go are tried again.
    pub(crate) fn worker_joined_for_retirements(&mut self) {
        for r in &mut self.retiring {
            let homeless = std::mem::take(&mut r.homeless);
            r.todo.extend(homeless);
            r.stuck_since = None;
        }
    }

    /// Whether `t` must be copied off retiring worker `w`: it is in memory
    /// there, needed, held by no worker that stays, and not on its way.
    fn needs_move(&self, w: WorkerId, t: TaskId) -> bool {
        let Some(Some(task)) = self.tasks.get(t.0 as usize) else {
            return false;
        };
        let TaskState::Memory { who_has } = &task.state else {
            return false;
        };
        who_has.contains(w)
            && task.needed()
            && who_has.as_slice().iter().all(|&h| self.w(h).retiring)
            && !self.replicas.contains_key(&t)
    }

    /// The worker to copy a key to: live, not retiring, not in `exclude`,
    /// holding the fewest bytes (counting replicas on their way).
    fn pick_target(&self, exclude: &[WorkerId]) -> Option<WorkerId> {
        self.pick_target_where(exclude, false)
    }

    /// [`Self::pick_target`], also skipping paused workers when
    /// `skip_paused` (a client's copies do not go to a worker at its
    /// memory limit; a retiring worker's results may).
    pub(crate) fn pick_target_where(
        &self,
        exclude: &[WorkerId],
        skip_paused: bool,
    ) -> Option<WorkerId> {
        self.worker_ids()
            .filter(|w| {
                let wk = self.w(*w);
                !(wk.retiring || (skip_paused && wk.paused) || exclude.contains(w))
            })
            .min_by_key(|&w| {
                let wk = self.w(w);
                (wk.nbytes.saturating_add(wk.incoming), w)
            })
    }

    /// Whether the `i`-th retirement gave `t` up (ids are reused: the name
    /// must match too).
    fn given_up(&self, i: usize, t: TaskId) -> bool {
        let name = &self.t(t).name;
        self.retiring[i]
            .given_up
            .iter()
            .any(|(x, k)| *x == t && k.as_str() == name.as_str())
    }

    /// Looks at key `t` of the `i`-th retirement: starts its copy, or
    /// notes it has nowhere to go.
    fn try_move(&mut self, i: usize, t: TaskId, out: &mut Vec<Outgoing>) {
        let w = self.retiring[i].worker;
        if !self.needs_move(w, t) || self.given_up(i, t) {
            return;
        }
        match self.pick_target(&[]) {
            Some(target) => self.start_flight(t, w, target, vec![target], Purpose::Retire, out),
            None => {
                let clock = self.clock;
                let r = &mut self.retiring[i];
                r.homeless.push(t);
                if r.stuck_since.is_none() {
                    r.stuck_since = Some(clock);
                    tracing::warn!(
                        worker = %self.w(w).address,
                        timeout = self.opts.retire_timeout,
                        "a retiring worker holds results no other worker can take (there is none): \
                         waiting for a worker to join, up to the retire timeout"
                    );
                }
            }
        }
    }

    /// Asks `target` to fetch `t` from `source`.
    pub(crate) fn start_flight(
        &mut self,
        t: TaskId,
        source: WorkerId,
        target: WorkerId,
        tried: Vec<WorkerId>,
        purpose: Purpose,
        out: &mut Vec<Outgoing>,
    ) {
        let nbytes = self.t(t).nbytes;
        let tw = self.wm(target);
        tw.incoming = tw.incoming.wrapping_add(nbytes);
        self.replicas.insert(
            t,
            Flight {
                source,
                target,
                tried,
                purpose,
            },
        );
        let key = self.t(t).name.to_string();
        let from = vec![self.w(source).address.to_string()];
        if let Some(Outgoing::Message(Dest::Worker(d), Message::AcquireReplicas { who_has })) =
            out.last_mut()
        {
            if *d == target {
                who_has.insert(key, from);
                return;
            }
        }
        let mut who_has = BTreeMap::new();
        who_has.insert(key, from);
        out.push(Outgoing::Message(
            Dest::Worker(target),
            Message::AcquireReplicas { who_has },
        ));
    }

    /// Drops the flight of `t` (if any), returning it.
    pub(crate) fn cancel_flight(&mut self, t: TaskId) -> Option<Flight> {
        let f = self.replicas.remove(&t)?;
        let nbytes = self.t(t).nbytes;
        if let Some(Some(tw)) = self.workers.get_mut(f.target.0 as usize) {
            tw.incoming = tw.incoming.wrapping_sub(nbytes);
        }
        Some(f)
    }

    /// The copy of `t` failed at its target (or the target left): ask
    /// another worker, or give it up. A client's copy is only dropped: its
    /// request plans again ([`Self::progress_copies`]).
    fn retry_flight(&mut self, t: TaskId, out: &mut Vec<Outgoing>) {
        let Some(f) = self.cancel_flight(t) else {
            return;
        };
        if f.purpose != Purpose::Retire {
            self.copy_failed(t, f.target);
            return;
        }
        let alive = self.worker(f.source).is_some_and(|s| s.retiring);
        if !alive || !self.holds(f.source, t) {
            return;
        }
        match self.pick_target(&f.tried) {
            Some(next) => {
                let mut tried = f.tried;
                tried.push(next);
                self.start_flight(t, f.source, next, tried, Purpose::Retire, out);
            }
            None => {
                tracing::warn!(
                    key = %self.t(t).name,
                    worker = %self.w(f.source).address,
                    "no worker could copy this key off a retiring worker; it is not moved"
                );
                let key = self.t(t).name.clone();
                if let Some(i) = self.retirement_index(f.source) {
                    self.retiring[i].given_up.push((t, key));
                }
            }
        }
    }

    /// `w` now holds `t`: if it was the target of `t`'s copy, the key
    /// counts as moved.
    pub(crate) fn replica_arrived(&mut self, t: TaskId, w: WorkerId, out: &mut Vec<Outgoing>) {
        if !self.replicas.get(&t).is_some_and(|f| f.target == w) {
            return;
        }
        let f = self.cancel_flight(t).expect("a flight");
        match f.purpose {
            Purpose::Retire => {}
            Purpose::Replicate => {
                self.replicate_arrived(t);
                return;
            }
            Purpose::Rebalance => {
                self.rebalance_arrived(t, f.source, out);
                return;
            }
        }
        let key = self.t(t).name.clone();
        let addr = self.w(w).address.clone();
        if let Some(i) = self.retirement_index(f.source) {
            self.retiring[i].moved.push((key, addr));
        }
    }

    /// Worker `w` is leaving the tables: copies it was fetching go to
    /// another worker; copies from it are dropped.
    pub(crate) fn flights_lost_worker(&mut self, w: WorkerId, out: &mut Vec<Outgoing>) {
        let mut to_retry = Vec::new();
        let mut to_drop = Vec::new();
        for (&t, f) in &self.replicas {
            if f.target == w {
                to_retry.push(t);
            } else if f.source == w {
                to_drop.push(t);
            }
        }
        to_retry.sort_unstable();
        to_drop.sort_unstable();
        for t in to_drop {
            self.cancel_flight(t);
        }
        for t in to_retry {
            self.retry_flight(t, out);
        }
    }

    /// Moves retirements on: starts the copies they need, and removes each
    /// worker that has nothing left to copy and nothing running (it is sent
    /// `close`).
    pub(crate) fn progress_retirements(&mut self, out: &mut Vec<Outgoing>) {
        let mut i = 0;
        while i < self.retiring.len() {
            let w = self.retiring[i].worker;
            let todo = std::mem::take(&mut self.retiring[i].todo);
            for t in todo {
                self.try_move(i, t, out);
            }
            let idle = |s: &Self| {
                s.w(w).processing.is_empty() && !s.replicas.values().any(|f| f.source == w)
            };
            if idle(self) {
                // Look at everything it holds once more: a key may have
                // become needed since it was looked at.
                let mut held = self.w(w).has_what.clone();
                held.sort_unstable();
                held.dedup();
                self.retiring[i].homeless.clear();
                for t in held {
                    self.try_move(i, t, out);
                }
                if idle(self) {
                    let r = &self.retiring[i];
                    let timed_out = r
                        .stuck_since
                        .is_some_and(|s| self.clock - s >= self.opts.retire_timeout);
                    if r.homeless.is_empty() || timed_out {
                        if timed_out {
                            tracing::warn!(
                                worker = %self.w(w).address,
                                keys = r.homeless.len(),
                                "retire timeout: the worker leaves with results no other worker took \
                                 (they are recomputed if needed)"
                            );
                        }
                        self.close_retired(w, out);
                        continue; // the retirement at `i` is gone
                    }
                } else {
                    self.retiring[i].stuck_since = None;
                }
            }
            i += 1;
        }
    }

    /// Removes retiring worker `w`, which has nothing left to copy and
    /// nothing running, and sends it `close`.
    fn close_retired(&mut self, w: WorkerId, out: &mut Vec<Outgoing>) {
        tracing::info!(worker = %self.w(w).address, "the worker retired");
        self.retirement_ended(w, true, out);
        self.detach_worker(w, out);
        // Nothing else the step decided for `w` is sent (its id may be
        // reused), but a `retire` stays: a worker a client retires always
        // hears `retire` before `close` (docs/protocol.md, "Graceful
        // retirement"), even when it retires within the step.
        out.retain(|o| {
            o.dest() != Dest::Worker(w) || matches!(o, Outgoing::Message(_, Message::Retire { .. }))
        });
        out.push(Outgoing::Message(
            Dest::Worker(w),
            Message::Close {
                reason: "retired".into(),
            },
        ));
        self.retired.push(w);
    }

    /// The retirement of `w` ends: it retired (`completed`), or it left
    /// another way (died). Requests waiting for it learn what was moved.
    pub(crate) fn retirement_ended(
        &mut self,
        w: WorkerId,
        completed: bool,
        out: &mut Vec<Outgoing>,
    ) {
        let Some(i) = self.retirement_index(w) else {
            return;
        };
        let r = self.retiring.swap_remove(i);
        let mut lost: Vec<TaskId> = r
            .given_up
            .iter()
            .filter(|(t, k)| self.task(*t).is_some_and(|x| x.name.as_str() == k.as_str()))
            .map(|(t, _)| *t)
            .collect();
        lost.extend(r.homeless);
        if !completed {
            lost.extend(
                self.replicas
                    .iter()
                    .filter(|(_, f)| f.source == w)
                    .map(|(&t, _)| t),
            );
        }
        lost.sort_unstable();
        lost.dedup();
        let lost: Vec<String> = lost
            .into_iter()
            .filter(|&t| self.holds(w, t))
            .map(|t| self.t(t).name.to_string())
            .collect();
        let address = self.w(w).address.to_string();
        for req in &mut self.retire_requests {
            if let Some(p) = req.pending.iter().position(|&x| x == w) {
                req.pending.swap_remove(p);
                req.workers.push(address.clone());
                for (k, a) in &r.moved {
                    req.moved.insert(k.to_string(), a.to_string());
                }
                req.lost.extend(lost.iter().cloned());
            }
        }
        self.answer_retire_requests(out);
    }

    /// Answers the `retire-workers` whose workers have all left.
    fn answer_retire_requests(&mut self, out: &mut Vec<Outgoing>) {
        let mut i = 0;
        while i < self.retire_requests.len() {
            if self.retire_requests[i].pending.is_empty() {
                let r = self.retire_requests.swap_remove(i);
                out.push(Outgoing::Message(
                    Dest::Client(r.client),
                    Message::RetireWorkersReply {
                        id: r.id,
                        workers: r.workers,
                        moved: r.moved,
                        lost: r.lost,
                    },
                ));
            } else {
                i += 1;
            }
        }
    }

    /// The retirement invariants (part of [`SchedulerState::validate`]).
    pub(crate) fn validate_retirement(&self) -> Result<(), String> {
        for w in self.worker_ids() {
            let wk = self.w(w);
            if wk.retiring != self.retirement_index(w).is_some() {
                return Err(format!(
                    "worker {}: retiring flag {} but {} retirement",
                    wk.address,
                    wk.retiring,
                    if wk.retiring { "no" } else { "a" }
                ));
            }
            if wk.retiring && wk.index_key.is_some() {
                return Err(format!("retiring worker {} has room", wk.address));
            }
        }
        for r in &self.retiring {
            if self.worker(r.worker).is_none() {
                return Err(format!("a retirement of a gone worker {:?}", r.worker));
            }
        }
        let mut incoming: FxHashMap<WorkerId, u64> = FxHashMap::default();
        for (&t, f) in &self.replicas {
            let Some(task) = self.task(t) else {
                return Err(format!("a replica of a forgotten task {t:?}"));
            };
            if !self.holds(f.source, t) {
                return Err(format!(
                    "replica of '{}': its source does not hold it",
                    task.name
                ));
            }
            let Some(tw) = self.worker(f.target) else {
                return Err(format!("replica of '{}': its target is gone", task.name));
            };
            let retire = f.purpose == Purpose::Retire;
            if tw.retiring || (retire && !self.w(f.source).retiring) || !f.tried.contains(&f.target)
            {
                return Err(format!("replica of '{}': bad source or target", task.name));
            }
            let e = incoming.entry(f.target).or_default();
            *e = e.wrapping_add(task.nbytes);
        }
        for w in self.worker_ids() {
            let want = incoming.get(&w).copied().unwrap_or(0);
            if self.w(w).incoming != want {
                return Err(format!(
                    "worker {} counts {} incoming bytes, its replicas {want}",
                    self.w(w).address,
                    self.w(w).incoming
                ));
            }
        }
        Ok(())
    }
}

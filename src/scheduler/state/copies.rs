//! A client's `replicate` and `rebalance`: copies of results between
//! workers, made the way retirement moves them (`acquire-replicas` to the
//! worker that should hold a copy, `add-keys` back, see [`super::retire`]),
//! and copies dropped with `free-keys` (Dask's `replicate` and
//! `rebalance`). Both only touch keys in memory.
//!
//! - `replicate`: each key ends up on `n` workers (at most the workers
//!   there are, not counting retiring ones): copies are made one at a time
//!   per key to the worker holding the fewest bytes, and extra copies are
//!   dropped from the workers holding the most. A copy that fails is tried
//!   at another worker; a key that cannot reach `n` copies is named in the
//!   reply (`short`).
//! - `rebalance`: the moves are planned once, from what the scheduler
//!   knows each worker holds (the bytes of the keys in memory there): keys
//!   go from workers above the mean to workers below it, largest first,
//!   while a move narrows the gap between the two. Each is a copy; once it
//!   arrived the sender drops its own.
//!
//! A copy is never dropped while a task that needs the key is running (its
//! worker may be reading it from that holder): the key then keeps both.

use super::*;

/// What a [`CopyRequest`] asks.
#[derive(Debug)]
pub(crate) enum CopyKind {
    /// Each key on `n` workers.
    Replicate {
        n: usize,
    },
    Rebalance,
}

/// A key of a request not done yet: `tried` are the workers that failed
/// to fetch it.
#[derive(Debug)]
pub(crate) struct Pending {
    t: TaskId,
    key: Key,
    tried: Vec<WorkerId>,
}

/// A client's `replicate` or `rebalance` waiting for its copies.
#[derive(Debug)]
pub(crate) struct CopyRequest {
    pub(crate) client: ClientId,
    id: u64,
    kind: CopyKind,
    pending: Vec<Pending>,
    /// Copies made, copies dropped.
    copied: u64,
    removed: u64,
    /// Bytes moved (rebalance).
    bytes: u64,
    /// Keys left with fewer than `n` copies (replicate).
    short: Vec<String>,
}

impl SchedulerState {
    // ------------------------------------------------------------ stimuli

    /// `replicate` from client `c`: each of `keys` (in memory) on `n`
    /// workers. Answered with `replicate-reply` once done. `n` < 1 or a key
    /// not in memory is an error and nothing is done.
    pub fn replicate<S: AsRef<str>>(
        &mut self,
        c: ClientId,
        id: u64,
        keys: &[S],
        n: u64,
        out: &mut Vec<Outgoing>,
    ) -> Result<(), (String, &'static str)> {
        if n < 1 {
            return Err((
                format!("replicate: n must be at least 1 (got {n})"),
                stimuli::codes::BAD_MESSAGE,
            ));
        }
        let pending = self.pending_in_memory("replicate", keys)?;
        let workers = self.worker_ids().filter(|&w| !self.w(w).retiring).count();
        let n = (n.min(usize::MAX as u64) as usize).min(workers.max(1));
        self.begin(Stimulus::Copies);
        self.copy_requests.push(CopyRequest {
            client: c,
            id,
            kind: CopyKind::Replicate { n },
            pending,
            copied: 0,
            removed: 0,
            bytes: 0,
            short: Vec::new(),
        });
        self.finish(out);
        Ok(())
    }

    /// `rebalance` from client `c`: evens out the bytes workers hold,
    /// moving only `keys` (every key in memory when empty). Answered with
    /// `rebalance-reply` once the moves are done. A key named that is not in
    /// memory is an error and nothing is moved.
    pub fn rebalance<S: AsRef<str>>(
        &mut self,
        c: ClientId,
        id: u64,
        keys: &[S],
        out: &mut Vec<Outgoing>,
    ) -> Result<(), (String, &'static str)> {
        let mut candidates: Vec<TaskId> = if keys.is_empty() {
            let mut all = Vec::new();
            for w in self.worker_ids() {
                all.extend(
                    self.w(w)
                        .has_what
                        .iter()
                        .copied()
                        .filter(|&t| self.holds(w, t)),
                );
            }
            all.sort_unstable();
            all.dedup();
            all
        } else {
            self.pending_in_memory("rebalance", keys)?
                .into_iter()
                .map(|p| p.t)
                .collect()
        };
        self.begin(Stimulus::Copies);
        // Workers that may send or receive, with their bytes.
        let mut load: Vec<(WorkerId, u64)> = self
            .worker_ids()
            .filter(|&w| !self.w(w).retiring)
            .map(|w| (w, self.w(w).nbytes.saturating_add(self.w(w).incoming)))
            .collect();
        let mut pending = Vec::new();
        if load.len() >= 2 {
            let total: u128 = load.iter().map(|&(_, b)| b as u128).sum();
            let mean = (total / load.len() as u128) as u64;
            // Largest keys first: fewer, bigger moves.
            candidates.sort_by_key(|&t| (std::cmp::Reverse(self.t(t).nbytes), t));
            for &t in &candidates {
                if self.replicas.contains_key(&t) || self.key_in_use(t) {
                    continue;
                }
                let nb = self.t(t).nbytes;
                // The fullest holder above the mean sends.
                let Some(si) = (0..load.len())
                    .filter(|&i| self.holds(load[i].0, t) && load[i].1 > mean)
                    .max_by_key(|&i| (load[i].1, std::cmp::Reverse(load[i].0)))
                else {
                    continue;
                };
                // The emptiest non-holder below the mean receives (not paused).
                let Some(ri) = (0..load.len())
                    .filter(|&i| {
                        let w = load[i].0;
                        load[i].1 < mean && !self.holds(w, t) && !self.w(w).paused
                    })
                    .min_by_key(|&i| (load[i].1, load[i].0))
                else {
                    continue;
                };
                // Moving narrows the gap between the two only when smaller.
                if nb == 0 || nb >= load[si].1 - load[ri].1 {
                    continue;
                }
                let (s, r) = (load[si].0, load[ri].0);
                load[si].1 -= nb;
                load[ri].1 += nb;
                self.start_flight(t, s, r, vec![r], Purpose::Rebalance, out);
                pending.push(Pending {
                    t,
                    key: self.t(t).name.clone(),
                    tried: Vec::new(),
                });
            }
        }
        self.copy_requests.push(CopyRequest {
            client: c,
            id,
            kind: CopyKind::Rebalance,
            pending,
            copied: 0,
            removed: 0,
            bytes: 0,
            short: Vec::new(),
        });
        self.finish(out);
        Ok(())
    }

    // ------------------------------------------------------------ inside

    /// The keys named, each in memory, once; or the error naming those
    /// that are not.
    fn pending_in_memory<S: AsRef<str>>(
        &self,
        op: &str,
        keys: &[S],
    ) -> Result<Vec<Pending>, (String, &'static str)> {
        let mut pending: Vec<Pending> = Vec::new();
        let mut bad = Vec::new();
        for k in keys {
            let k = k.as_ref();
            match self.task_id(k) {
                Some(t) if matches!(self.t(t).state, TaskState::Memory { .. }) => {
                    if !pending.iter().any(|p| p.t == t) {
                        pending.push(Pending {
                            t,
                            key: self.t(t).name.clone(),
                            tried: Vec::new(),
                        });
                    }
                }
                _ => bad.push(format!("'{k}'")),
            }
        }
        if !bad.is_empty() {
            return Err((
                format!(
                    "{op}: not in memory on any worker (unknown, released, or not computed yet): {}",
                    bad.join(", ")
                ),
                stimuli::codes::UNKNOWN_KEY,
            ));
        }
        Ok(pending)
    }

    /// Whether a task that needs `t` is running (a copy of `t` must not be
    /// dropped then: its worker may be fetching it).
    fn key_in_use(&self, t: TaskId) -> bool {
        let mut deps = Vec::new();
        self.t(t).dependents.copy_into(&mut deps);
        deps.iter().any(|&d| {
            self.task(d)
                .is_some_and(|x| matches!(x.state, TaskState::Processing { .. }))
        })
    }

    /// Drops the copy of `t` on `w` (another worker holds it too), unless a
    /// task needing it runs or a copy from `w` is on its way. Returns
    /// whether it was dropped.
    fn drop_copy(&mut self, t: TaskId, w: WorkerId, out: &mut Vec<Outgoing>) -> bool {
        let many = matches!(&self.t(t).state, TaskState::Memory { who_has } if who_has.as_slice().len() > 1);
        if !many
            || !self.holds(w, t)
            || self.key_in_use(t)
            || self.replicas.get(&t).is_some_and(|f| f.source == w)
        {
            return false;
        }
        let last = self.drop_holder(t, w);
        debug_assert!(!last);
        self.free_key(w, t, out);
        true
    }

    /// The rebalance copy of `t` from `source` arrived: `source` drops its
    /// own.
    pub(crate) fn rebalance_arrived(
        &mut self,
        t: TaskId,
        source: WorkerId,
        out: &mut Vec<Outgoing>,
    ) {
        let nb = self.t(t).nbytes;
        let dropped = self.worker(source).is_some() && self.drop_copy(t, source, out);
        let name = self.t(t).name.clone();
        for r in &mut self.copy_requests {
            if matches!(r.kind, CopyKind::Rebalance)
                && r.pending
                    .iter()
                    .any(|p| p.t == t && p.key.as_str() == name.as_str())
            {
                r.copied += 1;
                if dropped {
                    r.removed += 1;
                    r.bytes = r.bytes.saturating_add(nb);
                }
            }
        }
    }

    /// The replicate copy of `t` arrived.
    pub(crate) fn replicate_arrived(&mut self, t: TaskId) {
        let name = self.t(t).name.clone();
        for r in &mut self.copy_requests {
            if matches!(r.kind, CopyKind::Replicate { .. })
                && r.pending
                    .iter()
                    .any(|p| p.t == t && p.key.as_str() == name.as_str())
            {
                r.copied += 1;
            }
        }
    }

    /// A client's copy of `t` failed at `target`: the requests copying it
    /// try another worker.
    pub(crate) fn copy_failed(&mut self, t: TaskId, target: WorkerId) {
        for r in &mut self.copy_requests {
            for p in &mut r.pending {
                if p.t == t {
                    p.tried.push(target);
                }
            }
        }
    }

    /// Moves the copy requests on: starts the copies replicates need, drops
    /// extra copies, and answers the requests that are done.
    pub(crate) fn progress_copies(&mut self, out: &mut Vec<Outgoing>) {
        let mut i = 0;
        while i < self.copy_requests.len() {
            let pending = std::mem::take(&mut self.copy_requests[i].pending);
            let mut keep = Vec::with_capacity(pending.len());
            for p in pending {
                let live = self
                    .task(p.t)
                    .is_some_and(|x| x.name.as_str() == p.key.as_str());
                let in_flight = live && self.replicas.contains_key(&p.t);
                match self.copy_requests[i].kind {
                    CopyKind::Rebalance => {
                        if in_flight {
                            keep.push(p);
                        }
                    }
                    CopyKind::Replicate { n } => {
                        if !live || !matches!(self.t(p.t).state, TaskState::Memory { .. }) {
                            self.copy_requests[i].short.push(p.key.to_string());
                        } else if in_flight {
                            keep.push(p);
                        } else if let Some(p) = self.replicate_step(i, p, n, out) {
                            keep.push(p);
                        }
                    }
                }
            }
            self.copy_requests[i].pending = keep;
            if self.copy_requests[i].pending.is_empty() {
                let r = self.copy_requests.swap_remove(i);
                let msg = match r.kind {
                    CopyKind::Replicate { .. } => Message::ReplicateReply {
                        id: r.id,
                        copied: r.copied,
                        removed: r.removed,
                        short: r.short,
                    },
                    CopyKind::Rebalance => Message::RebalanceReply {
                        id: r.id,
                        moved: r.removed,
                        bytes: r.bytes,
                    },
                };
                out.push(Outgoing::Message(Dest::Client(r.client), msg));
            } else {
                i += 1;
            }
        }
    }

    /// One step of the `i`-th request's replicate of `p` (in memory, no copy
    /// on its way): starts a copy (the key stays pending), or drops the
    /// extra copies and is done with it (`None`).
    fn replicate_step(
        &mut self,
        i: usize,
        p: Pending,
        n: usize,
        out: &mut Vec<Outgoing>,
    ) -> Option<Pending> {
        let t = p.t;
        let TaskState::Memory { who_has } = &self.t(t).state else {
            unreachable!()
        };
        let holders: Vec<WorkerId> = who_has.as_slice().to_vec();
        let staying: Vec<WorkerId> = holders
            .iter()
            .copied()
            .filter(|&w| !self.w(w).retiring)
            .collect();
        if staying.len() >= n {
            // Extra copies go from the workers holding the most.
            let mut extra: Vec<WorkerId> = staying;
            extra.sort_by_key(|&w| (std::cmp::Reverse(self.w(w).nbytes), w));
            let mut count = holders.len();
            for w in extra {
                if count <= n {
                    break;
                }
                if self.drop_copy(t, w, out) {
                    count -= 1;
                    self.copy_requests[i].removed += 1;
                } else {
                    break; // in use: it keeps its copies
                }
            }
            return None;
        }
        let mut exclude = holders.clone();
        exclude.extend(p.tried.iter().copied());
        match self.pick_target_where(&exclude, true) {
            Some(target) => {
                // Counted when it arrives (`replicate_arrived`).
                let source = staying.first().copied().unwrap_or(holders[0]);
                self.start_flight(t, source, target, vec![target], Purpose::Replicate, out);
                Some(p)
            }
            None => {
                self.copy_requests[i].short.push(p.key.to_string());
                None
            }
        }
    }

    /// The copy requests' invariants (part of [`SchedulerState::validate`]).
    pub(crate) fn validate_copies(&self) -> Result<(), String> {
        for r in &self.copy_requests {
            if !matches!(self.clients.get(r.client.0 as usize), Some(Some(_))) {
                return Err(format!("copy request {} of a gone client", r.id));
            }
            for p in &r.pending {
                let Some(task) = self.task(p.t) else {
                    continue; // forgotten: answered at the next step
                };
                if task.name.as_str() != p.key.as_str() {
                    continue;
                }
                if matches!(r.kind, CopyKind::Rebalance) && !self.replicas.contains_key(&p.t) {
                    return Err(format!("rebalance of '{}' pending without a copy", p.key));
                }
            }
        }
        Ok(())
    }
}

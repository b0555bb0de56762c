//! [`SchedulerState::validate`]: every invariant of the state, checked from
//! scratch. Tests call it after every step; it is O(size of the state).

use super::*;
use rustc_hash::FxHashSet;

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

impl SchedulerState {
    /// Checks every invariant; the error names the first one broken.
    pub fn validate(&self) -> Result<(), String> {
        ensure!(
            self.ready.is_empty()
                && self.check.is_empty()
                && self.dirty.is_empty()
                && self.to_fill.is_empty()
                && self.fresh_no_worker.is_empty(),
            "per-stimulus work lists not empty between stimuli"
        );
        // ---- names and counts
        let mut counts = [0usize; 7];
        let mut live = 0;
        for (i, slot) in self.tasks.iter().enumerate() {
            let Some(task) = slot else { continue };
            live += 1;
            counts[task.state.kind() as usize] += 1;
            let t = TaskId(i as u32);
            ensure!(
                self.task_id(&task.name) == Some(t),
                "task {i} '{}' is not in the name map",
                task.name
            );
        }
        ensure!(live == self.live, "live count {} != {live}", self.live);
        ensure!(
            self.names.len() == live,
            "name map has {} entries for {live} tasks",
            self.names.len()
        );
        ensure!(
            counts == self.counts,
            "state counts {:?} != recount {counts:?}",
            self.counts
        );

        for (&t, &n) in &self.missed {
            ensure!(
                self.alive(t),
                "a missing-data count of a forgotten task {t:?}"
            );
            ensure!(n > 0, "a zero missing-data count");
        }

        // ---- clients
        let mut wanted_by: FxHashMap<TaskId, u32> = FxHashMap::default();
        let mut n_clients = 0;
        for (i, c) in self.clients.iter().enumerate() {
            let Some(c) = c else { continue };
            n_clients += 1;
            ensure!(
                self.client_by_ext.get(&c.ext_id) == Some(&ClientId(i as u32)),
                "client {i} not in the ext map"
            );
            for &t in &c.wants {
                ensure!(self.alive(t), "client {i} wants a forgotten task {t:?}");
                *wanted_by.entry(t).or_default() += 1;
            }
        }
        ensure!(n_clients == self.n_clients, "client count");

        // ---- tasks
        for (i, slot) in self.tasks.iter().enumerate() {
            let Some(task) = slot else { continue };
            let t = TaskId(i as u32);
            let name = &task.name;
            let mut seen = FxHashSet::default();
            let mut not_in_memory = 0;
            for &d in task.deps.iter() {
                ensure!(self.alive(d), "'{name}' depends on a forgotten task {d:?}");
                ensure!(seen.insert(d), "'{name}' lists a dependency twice");
                ensure!(
                    self.t(d).dependents.contains(t),
                    "'{name}' depends on '{}' which does not list it as a dependent",
                    self.t(d).name
                );
                if !matches!(self.t(d).state, TaskState::Memory { .. }) {
                    not_in_memory += 1;
                }
            }
            let mut waiters = 0;
            for d in task.dependents.iter() {
                ensure!(self.alive(d), "'{name}' has a forgotten dependent");
                ensure!(
                    self.t(d).deps.contains(&t),
                    "'{name}' lists dependent '{}' which does not depend on it",
                    self.t(d).name
                );
                if self.t(d).state.is_pending() {
                    waiters += 1;
                }
            }
            ensure!(
                task.waiters == waiters,
                "'{name}': waiters {} != {waiters} pending dependents",
                task.waiters
            );
            let wanted = wanted_by.get(&t).copied().unwrap_or(0) + self.coord.holds(t) as u32;
            ensure!(
                task.wanted == wanted,
                "'{name}': wanted {} != {wanted} clients (and coordination objects)",
                task.wanted
            );
            if task.func == NO_FUNC {
                ensure!(
                    !task.state.is_pending(),
                    "scattered key '{name}' is {:?}",
                    task.state.kind()
                );
            }
            let forgettable = !task.needed() && task.dependents.is_empty();
            let all_deps_in_memory = not_in_memory == 0;
            match &task.state {
                TaskState::Released => {
                    ensure!(!task.needed(), "'{name}' is released but needed");
                    ensure!(!forgettable, "'{name}' is released and should be forgotten");
                }
                TaskState::Waiting { waiting_on } => {
                    ensure!(*waiting_on > 0, "'{name}' is waiting on nothing");
                    ensure!(
                        *waiting_on == not_in_memory,
                        "'{name}' waits on {waiting_on} but {not_in_memory} deps are not in memory"
                    );
                    ensure!(task.needed(), "'{name}' is waiting but not needed");
                }
                TaskState::NoWorker => {
                    ensure!(
                        all_deps_in_memory,
                        "'{name}' is no-worker with deps not in memory"
                    );
                    ensure!(task.needed(), "'{name}' is no-worker but not needed");
                    let f = &self.funcs[task.func.0 as usize];
                    ensure!(
                        f.capable == 0,
                        "'{name}' is no-worker but a worker can run it"
                    );
                    ensure!(
                        task.flags & IN_NO_WORKER != 0 && f.no_worker.contains(&t),
                        "'{name}' is no-worker but not listed"
                    );
                }
                TaskState::Queued => {
                    ensure!(
                        all_deps_in_memory,
                        "'{name}' is queued with deps not in memory"
                    );
                    ensure!(task.needed(), "'{name}' is queued but not needed");
                    let f = &self.funcs[task.func.0 as usize];
                    ensure!(f.capable > 0, "'{name}' is queued but no worker can run it");
                    ensure!(
                        task.flags & IN_QUEUE != 0
                            && f.queue.entries().any(|e| e == (task.priority, t)),
                        "'{name}' is queued but not in its queue"
                    );
                    ensure!(
                        f.listed && self.queued_funcs.contains(&task.func),
                        "'{name}' is queued but its function is not listed"
                    );
                    for w in self.worker_ids() {
                        ensure!(
                            !(self.capable(w, task.func) && self.w(w).has_room()),
                            "'{name}' is queued while worker {} could take it",
                            self.w(w).name
                        );
                    }
                }
                TaskState::Processing { worker, cost } => {
                    ensure!(
                        task.flags & SECEDED == 0 || *cost == 0.0,
                        "'{name}' seceded but still costs {cost}"
                    );
                    ensure!(
                        all_deps_in_memory,
                        "'{name}' is processing with deps not in memory"
                    );
                    ensure!(task.needed(), "'{name}' is processing but not needed");
                    let Some(wk) = self.worker(*worker) else {
                        return Err(format!("'{name}' is processing on a gone worker"));
                    };
                    ensure!(
                        wk.processing.contains(&t),
                        "'{name}' is processing on {} which does not list it",
                        wk.name
                    );
                    ensure!(
                        self.capable(*worker, task.func),
                        "'{name}' is processing on {} which cannot run '{}'",
                        wk.name,
                        self.func_name(task.func)
                    );
                }
                TaskState::Memory { who_has } => {
                    ensure!(task.needed(), "'{name}' is in memory but not needed");
                    let hs = who_has.as_slice();
                    ensure!(!hs.is_empty(), "'{name}' in memory nowhere");
                    if let Holders::Many(v) = who_has {
                        ensure!(v.len() >= 2, "'{name}': a holder list of one");
                    }
                    for (j, &w) in hs.iter().enumerate() {
                        ensure!(!hs[..j].contains(&w), "'{name}': a holder twice");
                        let Some(wk) = self.worker(w) else {
                            return Err(format!("'{name}' is held by a gone worker"));
                        };
                        ensure!(
                            wk.has_what.contains(&t),
                            "'{name}' held by {} which does not list it",
                            wk.name
                        );
                    }
                }
                TaskState::Erred(_) => {
                    ensure!(waiters == 0, "'{name}' erred with pending dependents");
                    ensure!(!forgettable, "'{name}' is erred and should be forgotten");
                }
            }
            if task.flags & IN_QUEUE != 0 {
                ensure!(
                    self.funcs[task.func.0 as usize]
                        .queue
                        .entries()
                        .any(|e| e == (task.priority, t)),
                    "'{name}' flagged as queued without a queue entry"
                );
            }
            if task.flags & IN_NO_WORKER != 0 {
                ensure!(
                    self.funcs[task.func.0 as usize].no_worker.contains(&t),
                    "'{name}' flagged as no-worker without an entry"
                );
            }
            ensure!(
                task.flags & SECEDED == 0 || matches!(task.state, TaskState::Processing { .. }),
                "'{name}' flagged as seceded but {:?}",
                task.state.kind()
            );
        }
        for (&t, _) in self.values.iter() {
            ensure!(self.alive(t), "an inline value of a forgotten task");
            let task = self.t(t);
            ensure!(
                matches!(task.state, TaskState::Memory { .. }) && task.wanted > 0,
                "inline value of '{}' which is not wanted in memory",
                task.name
            );
        }

        // ---- workers
        let mut n_workers = 0;
        let mut members = vec![0u32; self.classes.len()];
        let mut capable = vec![0u32; self.funcs.len()];
        for w in self.worker_ids() {
            let wk = self.w(w);
            n_workers += 1;
            ensure!(
                wk.missed_attempts.len() <= wk.missed as usize,
                "worker {} has more counted attempts than missing-data reports",
                wk.address
            );
            members[wk.class as usize] += 1;
            for &f in wk.funcs.iter() {
                capable[f.0 as usize] += 1;
                ensure!(
                    self.capable(w, f),
                    "worker {} class lacks a function",
                    wk.name
                );
            }
            ensure!(
                self.worker_by_ext.get(&wk.ext_id) == Some(&w),
                "worker {} not in the ext map",
                wk.name
            );
            let seceded = wk
                .processing
                .iter()
                .filter(|&&t| self.alive(t) && self.t(t).flags & SECEDED != 0)
                .count() as u32;
            ensure!(
                seceded == wk.seceded,
                "worker {} counts {} seceded tasks, {seceded} are flagged",
                wk.name,
                wk.seceded
            );
            ensure!(
                wk.processing.len() as u32 - wk.seceded <= wk.max_tasks(),
                "worker {} holds {} tasks over its limit {}",
                wk.name,
                wk.processing.len(),
                wk.max_tasks()
            );
            let mut occ = 0u64;
            for (j, &t) in wk.processing.iter().enumerate() {
                ensure!(
                    !wk.processing[..j].contains(&t),
                    "worker {} lists a task twice as processing",
                    wk.name
                );
                ensure!(
                    self.alive(t),
                    "worker {} processes a forgotten task",
                    wk.name
                );
                match self.t(t).state {
                    TaskState::Processing { worker, cost } if worker == w => occ += cost_ns(cost),
                    ref s => {
                        return Err(format!(
                            "worker {} lists '{}' as processing, but it is {:?}",
                            wk.name,
                            self.t(t).name,
                            s.kind()
                        ))
                    }
                }
            }
            ensure!(
                occ == wk.occupancy_ns,
                "worker {} occupancy {} != {occ}",
                wk.name,
                wk.occupancy_ns
            );
            let mut nbytes = 0u64;
            let mut held: Vec<TaskId> = wk
                .has_what
                .iter()
                .copied()
                .filter(|&t| self.holds(w, t))
                .collect();
            held.sort_unstable();
            held.dedup();
            ensure!(
                held.len() == wk.n_keys as usize,
                "worker {} holds {} keys but counts {}",
                wk.name,
                held.len(),
                wk.n_keys
            );
            for &t in &held {
                nbytes = nbytes.wrapping_add(self.t(t).nbytes);
            }
            ensure!(
                nbytes == wk.nbytes,
                "worker {} nbytes {} != {nbytes}",
                wk.name,
                wk.nbytes
            );
            let want = wk.has_room().then_some(wk.occupancy_ns);
            ensure!(
                wk.index_key == want,
                "worker {} free-index key {:?} != {want:?}",
                wk.name,
                wk.index_key
            );
            if let Some(k) = want {
                ensure!(
                    self.classes[wk.class as usize].free.contains(&(k, w)),
                    "worker {} with room is not in the free index",
                    wk.name
                );
            }
        }
        ensure!(n_workers == self.n_workers, "worker count");
        for (i, c) in self.classes.iter().enumerate() {
            ensure!(c.members == members[i], "class {i} member count");
            for &(k, w) in &c.free {
                ensure!(
                    self.worker(w).is_some_and(|wk| wk.index_key == Some(k)),
                    "class {i} free index has a stale entry"
                );
            }
        }
        for (i, f) in self.funcs.iter().enumerate() {
            ensure!(
                f.capable == capable[i],
                "function '{}' capable {} != {}",
                f.name,
                f.capable,
                capable[i]
            );
        }
        for (a, &w) in &self.worker_by_addr {
            ensure!(
                self.worker(w).is_some_and(|wk| wk.address == *a),
                "address map entry {a} is stale"
            );
        }
        self.validate_retirement()?;
        self.validate_copies()?;
        self.validate_coord()
    }
}

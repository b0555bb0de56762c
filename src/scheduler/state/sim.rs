//! A seeded, randomized simulation of the scheduler core: no sockets, no
//! threads. The simulation plays clients and workers that submit random
//! graphs, join, leave and die, finish, fail and lose work, report missing
//! data (a holder that lost a key: `not-held`; a holder whose data port is
//! down or that is gone: `unreachable`, every task one failed connection
//! was fetching for reported with one attempt number; some workers are
//! "old" and give no reason), send duplicated results, release, cancel and
//! disconnect — with `validate()` after every step, and:
//!
//! - no worker is removed as unreachable while its data port works, unless
//!   an old worker's reasonless report named it (one failed connection must
//!   not remove a live worker);
//!
//! and at the end:
//!
//! - nothing waits forever: once faults stop and a worker offers every
//!   function, the cluster settles with no task waiting or processing;
//! - every key a connected client still wants is in memory or erred, and
//!   the client was told so (`key-in-memory` / `key-erred`);
//! - once every client releases everything, no task is left and no worker
//!   holds any data (every result was freed).
//!
//! A failing seed panics with the seed and the command that replays it.
//! CI runs 1,000 seeds (`sim_1000_seeds`, about a second in release; 100 in
//! the debug-profile core checks); the long run is ignored:
//! `RASK_SIM_SEEDS=100000 cargo test --release --lib -- --ignored --exact scheduler::state::sim::sim_many_seeds`
//! (`RASK_SIM_FIRST` sets the first seed).

use super::*;
use crate::value::Value;
use std::collections::{BTreeMap, BTreeSet};

/// splitmix64: small, deterministic everywhere.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub(super) fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    pub(super) fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    pub(super) fn pick<'a, T>(&mut self, v: &'a [T]) -> Option<&'a T> {
        if v.is_empty() {
            None
        } else {
            Some(&v[self.below(v.len())])
        }
    }
}

#[derive(Default)]
struct SimWorker {
    address: String,
    /// compute-task received, not yet answered: key → remote deps' holders.
    running: BTreeMap<String, BTreeMap<String, Vec<String>>>,
    /// Results it holds.
    holds: BTreeSet<String>,
    /// Held as far as the scheduler knows, but lost: its data port answers
    /// without them (`not-held`).
    lost: BTreeSet<String>,
    /// Its data port cannot be reached at all (`unreachable`).
    port_down: bool,
    /// An old worker: its `missing-data` carries no reason.
    old: bool,
    /// Failed connections it has reported (`missing-data`'s `attempt`).
    attempts: u64,
    /// A reasonless report named it as the holder (it may then be removed
    /// although its port works: the old rule).
    named_without_reason: bool,
    /// The failed connections to it that were reported: (reporter,
    /// attempt).
    failed_against: BTreeSet<(WorkerId, u64)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Told {
    Nothing,
    Memory,
    Erred,
}

struct SimClient {
    id: ClientId,
    /// Keys it wants and what it was told last.
    wants: BTreeMap<String, Told>,
}

/// A key's definition: the same everywhere it is submitted (Dask's rule).
#[derive(Clone)]
struct Def {
    func: &'static str,
    deps: Vec<String>,
}

struct Sim {
    s: SchedulerState,
    out: Vec<Outgoing>,
    now: f64,
    rng: Rng,
    workers: BTreeMap<WorkerId, SimWorker>,
    clients: Vec<SimClient>,
    defs: BTreeMap<String, Def>,
    next_key: u64,
    next_ext: u64,
    log: Vec<String>,
    /// `RASK_SIM_TRACE=key`: keep every step, and the messages naming key.
    trace: Option<String>,
}

const ALL: &[&str] = &["inc", "add", "identity"];

fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect(),
    )
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let trace = std::env::var("RASK_SIM_TRACE").ok();
        let opts = SchedulerOptions {
            transition_log: if trace.is_some() { 100_000 } else { 0 },
            allowed_failures: 2,
            missing_data_per_worker: 3,
            missing_data_per_key: 5,
            no_workers_timeout: Some(5.0),
            ..Default::default()
        };
        Sim {
            s: SchedulerState::new(opts),
            out: Vec::new(),
            now: 0.0,
            rng: Rng(seed),
            workers: BTreeMap::new(),
            clients: Vec::new(),
            defs: BTreeMap::new(),
            next_key: 0,
            next_ext: 0,
            log: Vec::new(),
            trace,
        }
    }

    /// After every stimulus: validate, deliver what was sent.
    fn step(&mut self, what: String) -> Result<(), String> {
        self.log.push(what);
        if self.log.len() > 12 && self.trace.is_none() {
            self.log.remove(0);
        }
        self.s
            .validate()
            .map_err(|e| format!("invalid state: {e}"))?;
        let msgs = self.s.render_all(&mut self.out);
        for (d, m) in msgs {
            self.deliver(d, m)?;
        }
        for w in self.s.take_retired() {
            self.workers.remove(&w);
        }
        self.now += 0.01;
        Ok(())
    }

    fn deliver(&mut self, d: Dest, m: Message) -> Result<(), String> {
        if let Some(t) = &self.trace {
            let text = format!("{m:?}");
            if text.contains(&format!("\"{t}\"")) {
                self.log.push(format!("    -> {d:?}: {text}"));
            }
        }
        match d {
            Dest::Worker(w) => {
                let Some(sw) = self.workers.get_mut(&w) else {
                    return Err(format!("'{}' sent to a worker that is gone", m.op()));
                };
                match m {
                    Message::ComputeTask { key, who_has, .. } => {
                        sw.running.insert(key, who_has);
                    }
                    Message::FreeKeys { keys } => {
                        for k in keys {
                            sw.running.remove(&k);
                            sw.holds.remove(&k);
                            sw.lost.remove(&k);
                        }
                    }
                    Message::Close { reason }
                        if reason.contains("could not fetch data") && !sw.named_without_reason =>
                    {
                        if !sw.port_down {
                            return Err(format!(
                                "{w:?} removed as unreachable while its data port works: {reason}"
                            ));
                        }
                        if sw.failed_against.len() < 3 {
                            return Err(format!(
                                "{w:?} removed as unreachable after {} failed connections \
                                 (the limit is 3): {reason}",
                                sw.failed_against.len()
                            ));
                        }
                    }
                    _ => {}
                }
            }
            Dest::Client(c) => {
                let Some(sc) = self.clients.iter_mut().find(|x| x.id == c) else {
                    return Err(format!("'{}' sent to a client that is gone", m.op()));
                };
                let (key, told) = match m {
                    Message::KeyInMemory { key, .. } => (key, Told::Memory),
                    Message::KeyErred { key, .. } => (key, Told::Erred),
                    Message::KeyCancelled { key } => {
                        sc.wants.remove(&key);
                        return Ok(());
                    }
                    _ => return Ok(()),
                };
                if let Some(t) = sc.wants.get_mut(&key) {
                    *t = told;
                }
            }
        }
        Ok(())
    }

    fn add_worker(&mut self, funcs: &[&str]) -> Result<(), String> {
        self.next_ext += 1;
        let name = format!("w{}", self.next_ext);
        let address = format!("tcp://{name}:1");
        let reg = WorkerRegistration {
            ext_id: self.next_ext,
            name: name.clone(),
            address: address.clone(),
            threads: 1 + self.rng.below(3) as u32,
            functions: funcs.iter().map(|s| s.to_string()).collect(),
            memory_limit: 0,
            runtime: String::new(),
        };
        let w = self.s.add_worker(reg, self.now, &mut self.out);
        let old = self.rng.chance(15);
        self.workers.insert(
            w,
            SimWorker {
                address,
                old,
                ..Default::default()
            },
        );
        self.step(format!("worker {name} joins offering {funcs:?}"))
    }

    fn add_client(&mut self) -> Result<(), String> {
        self.next_ext += 1;
        let c = self.s.add_client(self.next_ext, "sim");
        self.clients.push(SimClient {
            id: c,
            wants: BTreeMap::new(),
        });
        self.step(format!("client {} connects", c.0))
    }

    /// A random graph: new tasks on earlier ones (of this graph, or keys
    /// other clients defined), a literal now and then, a function nobody
    /// offers rarely; some keys wanted.
    fn submit(&mut self, ci: usize) -> Result<(), String> {
        let known: Vec<String> = self.defs.keys().cloned().collect();
        let mut nodes: Vec<(String, Value)> = Vec::new();
        let mut here: Vec<String> = Vec::new();
        let n = 1 + self.rng.below(6);
        for _ in 0..n {
            // Sometimes a key another client defined, with its definition.
            if self.rng.chance(20) {
                if let Some(k) = self.rng.pick(&known).cloned() {
                    if !here.contains(&k) {
                        self.define(&k, &mut nodes, &mut here);
                    }
                    continue;
                }
            }
            self.next_key += 1;
            let key = format!("k{}", self.next_key);
            let mut pool: Vec<String> = here.clone();
            pool.extend(known.iter().take(8).cloned());
            let func = match self.rng.below(20) {
                0 => "nobody",
                1..=8 => "add",
                9..=16 => "inc",
                _ => "identity",
            };
            let arity = if func == "add" { 2 } else { 1 };
            let mut deps = Vec::new();
            for _ in 0..arity {
                if let Some(d) = self.rng.pick(&pool).cloned() {
                    if !self.rng.chance(25) {
                        deps.push(d);
                    }
                }
            }
            self.defs.insert(key.clone(), Def { func, deps });
            self.define(&key, &mut nodes, &mut here);
        }
        let mut wanted: Vec<String> = here
            .iter()
            .filter(|_| self.rng.chance(40))
            .cloned()
            .collect();
        if wanted.is_empty() {
            wanted.push(here.last().cloned().expect("a key"));
        }
        let doc = crate::value::encode(&map(vec![(
            "tasks",
            Value::Map(
                nodes
                    .into_iter()
                    .map(|(k, v)| (Value::from(k), v))
                    .collect(),
            ),
        )]))
        .expect("small");
        let c = self.clients[ci].id;
        let retries = self.rng.below(2) as u32;
        let r = self
            .s
            .update_graph(c, &doc, &wanted, retries, &mut self.out);
        if r.is_ok() {
            for k in &wanted {
                self.clients[ci]
                    .wants
                    .entry(k.clone())
                    .or_insert(Told::Nothing);
            }
        }
        self.step(format!("client {} submits {wanted:?}: {r:?}", c.0))
    }

    /// Adds `key` (and what it needs that is not in the graph yet) to
    /// `nodes` with its one definition.
    fn define(&mut self, key: &str, nodes: &mut Vec<(String, Value)>, here: &mut Vec<String>) {
        let def = self.defs[key].clone();
        for d in &def.deps {
            if !here.contains(d) {
                self.define(d, nodes, here);
            }
        }
        let mut args: Vec<Value> = def
            .deps
            .iter()
            .map(|d| map(vec![("ref", Value::from(d.as_str()))]))
            .collect();
        let arity = if def.func == "add" { 2 } else { 1 };
        while args.len() < arity {
            args.push(Value::Int(1));
        }
        nodes.push((
            key.to_string(),
            map(vec![
                ("func", Value::from(def.func)),
                ("args", Value::Array(args)),
            ]),
        ));
        here.push(key.to_string());
    }

    /// A worker answers one task it runs: finished, failed, or (when a
    /// dependency cannot be fetched from where the scheduler said)
    /// missing-data.
    fn answer(&mut self, w: WorkerId, fail_percent: u64) -> Result<(), String> {
        let sw = &self.workers[&w];
        let Some(key) = self
            .rng
            .pick(&sw.running.keys().cloned().collect::<Vec<_>>())
            .cloned()
        else {
            return Ok(());
        };
        if let Some((dep, holder)) = self.unservable(w, &key) {
            // Asked the holders in turn; the last one asked is named.
            let reachable = self
                .workers
                .values()
                .any(|x| x.address == holder && !x.port_down);
            let why = if self.workers[&w].old {
                MissingReason::Unknown
            } else if reachable {
                MissingReason::NotHeld
            } else {
                let sw = self.workers.get_mut(&w).unwrap();
                sw.attempts += 1;
                MissingReason::Unreachable(Some(sw.attempts))
            };
            // One failed connection: every task running here that needed
            // something only that holder was asked for gives up with it.
            let mut failing = vec![(key.clone(), dep)];
            if matches!(why, MissingReason::Unreachable(_)) {
                let others: Vec<String> = self.workers[&w]
                    .running
                    .keys()
                    .filter(|k| **k != key)
                    .cloned()
                    .collect();
                for k in others {
                    if let Some((d, h)) = self.unservable(w, &k) {
                        if h == holder {
                            failing.push((k, d));
                        }
                    }
                }
            }
            for (k, d) in failing {
                // An earlier report of this batch may have freed it.
                if !self
                    .workers
                    .get(&w)
                    .is_some_and(|x| x.running.contains_key(&k))
                {
                    continue;
                }
                self.workers.get_mut(&w).unwrap().running.remove(&k);
                for x in self.workers.values_mut() {
                    if x.address == holder {
                        match why {
                            MissingReason::Unknown => x.named_without_reason = true,
                            MissingReason::Unreachable(Some(a)) => {
                                x.failed_against.insert((w, a));
                            }
                            _ => {}
                        }
                    }
                }
                self.s
                    .missing_data(w, &k, &d, &holder, why, self.now, &mut self.out);
                self.step(format!(
                    "{w:?} running {k}: missing {d} from {holder} ({why:?})"
                ))?;
            }
            return Ok(());
        }
        let sw = self.workers.get_mut(&w).unwrap();
        sw.running.remove(&key);
        if self.rng.chance(fail_percent) {
            self.s
                .task_erred(w, &key, "sim failure", self.now, &mut self.out);
            return self.step(format!("{w:?} fails {key}"));
        }
        sw.holds.insert(key.clone());
        self.s
            .task_finished(w, &key, 8, 0.01, Some(vec![0x01]), self.now, &mut self.out);
        self.step(format!("{w:?} finishes {key}"))
    }

    /// The first dependency of `key` (running on `w`) that no holder named
    /// can serve, and the last holder asked.
    fn unservable(&self, w: WorkerId, key: &str) -> Option<(String, String)> {
        for (dep, holders) in &self.workers[&w].running[key] {
            let ok = holders.iter().any(|a| {
                self.workers.values().any(|x| {
                    &x.address == a
                        && !x.port_down
                        && x.holds.contains(dep)
                        && !x.lost.contains(dep)
                })
            });
            if !ok {
                return Some((dep.clone(), holders.last().cloned().unwrap_or_default()));
            }
        }
        None
    }

    fn random_worker(&mut self) -> Option<WorkerId> {
        let ids: Vec<WorkerId> = self.workers.keys().copied().collect();
        self.rng.pick(&ids).copied()
    }

    fn remove_worker(&mut self, w: WorkerId) -> Result<(), String> {
        self.workers.remove(&w);
        self.s.remove_worker(w, &mut self.out);
        self.step(format!("{w:?} dies"))
    }

    fn remove_client(&mut self, ci: usize) -> Result<(), String> {
        let c = self.clients.remove(ci).id;
        self.s.remove_client(c, &mut self.out);
        self.step(format!("client {} disconnects", c.0))
    }

    /// One random stimulus, faults included.
    fn chaos(&mut self) -> Result<(), String> {
        match self.rng.below(100) {
            0..=5 => {
                let funcs: Vec<&str> = if self.rng.chance(70) {
                    ALL.to_vec()
                } else {
                    ALL.iter()
                        .copied()
                        .filter(|_| self.rng.chance(50))
                        .collect()
                };
                self.add_worker(&funcs)
            }
            6..=8 => match self.random_worker() {
                Some(w) => self.remove_worker(w),
                None => Ok(()),
            },
            9..=11 => {
                if self.clients.len() < 4 {
                    self.add_client()
                } else {
                    Ok(())
                }
            }
            12..=13 if !self.clients.is_empty() => {
                let ci = self.rng.below(self.clients.len());
                self.remove_client(ci)
            }
            14..=29 if !self.clients.is_empty() => {
                let ci = self.rng.below(self.clients.len());
                self.submit(ci)
            }
            30..=36 if !self.clients.is_empty() => {
                let ci = self.rng.below(self.clients.len());
                let keys: Vec<String> = self.clients[ci].wants.keys().cloned().collect();
                let Some(k) = self.rng.pick(&keys).cloned() else {
                    return Ok(());
                };
                let c = self.clients[ci].id;
                self.clients[ci].wants.remove(&k);
                if self.rng.chance(50) {
                    self.s.release_keys(c, &[&k], &mut self.out);
                    self.step(format!("client {} releases {k}", c.0))
                } else {
                    self.s.cancel_keys(c, &[&k], &mut self.out);
                    self.step(format!("client {} cancels {k}", c.0))
                }
            }
            37..=80 => match self.random_worker() {
                Some(w) => self.answer(w, 8),
                None => Ok(()),
            },
            81..=83 => {
                // A worker loses one key it holds (its data port answers
                // without it).
                let Some(w) = self.random_worker() else {
                    return Ok(());
                };
                let sw = self.workers.get_mut(&w).unwrap();
                let held: Vec<String> = sw.holds.iter().cloned().collect();
                if let Some(k) = self.rng.pick(&held) {
                    sw.lost.insert(k.clone());
                }
                Ok(())
            }
            84 => {
                // A worker's data port goes down (or comes back).
                let Some(w) = self.random_worker() else {
                    return Ok(());
                };
                let sw = self.workers.get_mut(&w).unwrap();
                sw.port_down = !sw.port_down;
                Ok(())
            }
            85..=87 => {
                // A duplicated task-finished for a key a worker holds.
                let Some(w) = self.random_worker() else {
                    return Ok(());
                };
                let held: Vec<String> = self.workers[&w].holds.iter().cloned().collect();
                let Some(k) = self.rng.pick(&held).cloned() else {
                    return Ok(());
                };
                self.s
                    .task_finished(w, &k, 8, 0.01, None, self.now, &mut self.out);
                self.step(format!("{w:?} repeats finished {k}"))
            }
            88..=91 => {
                self.now += self.rng.below(3) as f64;
                self.s.tick(self.now, &mut self.out);
                self.step("tick".into())
            }
            _ => Ok(()),
        }
    }

    /// No more faults: a worker offering every function joins, workers
    /// answer everything, time passes, until nothing moves.
    fn settle(&mut self) -> Result<(), String> {
        for sw in self.workers.values_mut() {
            sw.lost.clear();
            sw.port_down = false;
        }
        self.add_worker(ALL)?;
        for round in 0..100_000 {
            let busy: Vec<WorkerId> = self
                .workers
                .iter()
                .filter(|(_, w)| !w.running.is_empty())
                .map(|(&w, _)| w)
                .collect();
            if busy.is_empty() {
                let c = self.s.counts();
                if c.waiting + c.processing + c.queued + c.no_worker == 0 {
                    return Ok(());
                }
                // Let the no-workers timeout and any timers fire.
                self.now += 10.0;
                self.s.tick(self.now, &mut self.out);
                self.step("tick (settling)".into())?;
                let c2 = self.s.counts();
                if round > 50 && c2.waiting + c2.processing + c2.queued + c2.no_worker != 0 {
                    return Err(format!("tasks wait forever: {c2:?}"));
                }
                continue;
            }
            for w in busy {
                if self.workers.contains_key(&w) {
                    self.answer(w, 0)?;
                }
            }
        }
        Err("the cluster never settles".into())
    }

    fn check_told(&self) -> Result<(), String> {
        for c in &self.clients {
            for (k, told) in &c.wants {
                let st = self.s.state_of(k);
                match (told, st) {
                    (Told::Memory, Some(StateKind::Memory))
                    | (Told::Erred, Some(StateKind::Erred)) => {}
                    _ => {
                        return Err(format!(
                            "client {} wants {k}: told {told:?}, the scheduler has it {st:?}",
                            c.id.0
                        ))
                    }
                }
            }
        }
        Ok(())
    }

    fn run(&mut self, steps: usize) -> Result<(), String> {
        self.add_client()?;
        self.add_worker(ALL)?;
        for _ in 0..steps {
            self.chaos()?;
        }
        self.settle()?;
        self.check_told()?;
        // Everyone lets go: nothing may be left.
        for ci in 0..self.clients.len() {
            let keys: Vec<String> = self.clients[ci].wants.keys().cloned().collect();
            let c = self.clients[ci].id;
            self.clients[ci].wants.clear();
            if self.rng.chance(50) {
                self.s.release_keys(c, &keys, &mut self.out);
            } else {
                self.s.remove_client(c, &mut self.out);
            }
            self.step(format!("client {} lets go of everything", c.0))?;
        }
        self.settle()?;
        let c = self.s.counts();
        if c.tasks != 0 {
            return Err(format!("tasks left after every client released: {c:?}"));
        }
        for (w, sw) in &self.workers {
            if !sw.holds.is_empty() {
                return Err(format!("{w:?} still holds {:?} after release", sw.holds));
            }
        }
        Ok(())
    }
}

/// Runs one seed; on failure, the error with the last steps and the
/// command that replays it.
fn sim(seed: u64, steps: usize) -> Result<(), String> {
    let mut s = Sim::new(seed);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| s.run(steps)));
    let e = match r {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(e)) => e,
        Err(p) => p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic".into()),
    };
    if let Some(t) = &s.trace {
        for tr in s.s.story(t) {
            s.log.push(format!("transition {tr:?}"));
        }
    }
    Err(format!(
        "simulation seed {seed} failed: {e}\nlast steps:\n  {}\nreplay: RASK_SIM_FIRST={seed} RASK_SIM_SEEDS=1 \
         cargo test --release --lib -- --ignored --exact scheduler::state::sim::sim_many_seeds",
        s.log.join("\n  ")
    ))
}

fn seeds(first: u64, n: u64) {
    for seed in first..first + n {
        if let Err(e) = sim(seed, 300) {
            panic!("{e}");
        }
    }
}

#[test]
fn sim_1000_seeds() {
    // CI also runs the cores' tests in the debug profile (overflow checks
    // and debug assertions on, about 20 times slower): 100 seeds there.
    seeds(0, if cfg!(debug_assertions) { 100 } else { 1000 });
}

#[test]
#[ignore = "long run: RASK_SIM_SEEDS=100000 cargo test --release --lib -- --ignored --exact scheduler::state::sim::sim_many_seeds"]
fn sim_many_seeds() {
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    seeds(env("RASK_SIM_FIRST", 0), env("RASK_SIM_SEEDS", 100_000));
}

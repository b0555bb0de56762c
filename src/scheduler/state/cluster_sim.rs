//! A seeded, deterministic simulation of a whole cluster in memory: the
//! real scheduler core ([`SchedulerState`]) and real worker cores
//! ([`WorkerState`]) exchanging real [`Message`]s, with no sockets, threads
//! or clocks. Where `sim.rs` plays the workers, here the worker cores
//! decide, so the two cores' rules are checked against each other.
//!
//! The network: each worker has two links (scheduler → worker, worker →
//! scheduler), each in order (TCP); which link delivers next, which ready
//! task runs, which task finishes and which peer fetch completes are picked
//! at random, so messages of different links overtake each other and sit
//! in flight for any number of steps. Faults, while the chaos lasts:
//! workers killed (what they sent before dying still arrives, then the
//! disconnect; their data port is gone at once), workers joining, data
//! ports down for a while (peer fetches fail: `missing-data`), a message
//! delivered twice in a row (`compute-task`, `free-keys`, `task-finished`),
//! workers retired by a client or leaving by themselves (SIGTERM),
//! clients submitting random graphs of `inc`/`add`/`identity` over shared
//! keys, releasing and disconnecting.
//!
//! After every step both cores' `validate()` must hold. At the end the
//! faults stop, the cluster must settle (nothing in flight, nothing
//! running, no task waiting), every key a client wants must be in memory
//! with the right value (computed here from the definitions) at a worker
//! that holds it, and the client told so; once every client lets go, the
//! scheduler holds no task and no worker holds any key.
//!
//! CI runs 1,000 seeds (`cluster_sim_1000_seeds`); the long run is
//! `benches/sim.sh` (or `RASK_SIM_SEEDS=100000 cargo test --release --lib
//! cluster_sim_many_seeds -- --ignored`). A failing seed panics with its
//! last steps and the command that replays it alone.

use super::sim::Rng;
use super::*;
use crate::registry::Registry;
use crate::value::Value;
use crate::worker::state::{Action, ComputeTask, ExecTask, Outcome, Phase, WorkerState};
use std::collections::{BTreeMap, VecDeque};

struct SimWorker {
    core: WorkerState,
    address: String,
    /// Its id in the scheduler while the scheduler counts it.
    id: Option<WorkerId>,
    /// Scheduler → worker, in order.
    inbox: VecDeque<Message>,
    /// Worker → scheduler, in order.
    outbox: VecDeque<Message>,
    /// Taken by a pool thread, not finished yet.
    running: Vec<ExecTask>,
    /// Peer fetches in flight: (peer address, keys).
    fetches: Vec<(String, Vec<String>)>,
    /// Killed: its data port is gone, nothing more arrives at it; what it
    /// sent is still delivered, then the scheduler sees it disconnect.
    dead: bool,
    port_down: bool,
}

/// A key's one definition: `func` over `deps` (literal 1 for a missing
/// argument).
#[derive(Clone)]
struct Def {
    func: &'static str,
    deps: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
enum Told {
    Nothing,
    Memory,
    Erred(String),
}

struct SimClient {
    id: ClientId,
    wants: BTreeMap<String, Told>,
}

struct ClusterSim {
    s: SchedulerState,
    out: Vec<Outgoing>,
    now: f64,
    rng: Rng,
    /// By a sim-wide number (scheduler ids are reused).
    workers: BTreeMap<u64, SimWorker>,
    clients: Vec<SimClient>,
    defs: BTreeMap<String, Def>,
    next: u64,
    faults: bool,
    log: VecDeque<String>,
    /// `RASK_SIM_TRACE=key`: keep every step, and on failure the key's
    /// transitions in the scheduler.
    trace: Option<String>,
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect(),
    )
}

impl ClusterSim {
    fn new(seed: u64) -> ClusterSim {
        let trace = std::env::var("RASK_SIM_TRACE").ok();
        let opts = SchedulerOptions {
            transition_log: if trace.is_some() { 100_000 } else { 0 },
            // Kills may hit a task on several workers: never give up on it
            // (as the chaos test does); results must all come.
            allowed_failures: 0,
            missing_data_per_key: 0,
            retire_timeout: 5.0,
            ..Default::default()
        };
        ClusterSim {
            s: SchedulerState::new(opts),
            out: Vec::new(),
            now: 0.0,
            rng: Rng(seed),
            workers: BTreeMap::new(),
            clients: Vec::new(),
            defs: BTreeMap::new(),
            next: 0,
            faults: true,
            log: VecDeque::new(),
            trace,
        }
    }

    fn note(&mut self, what: String) {
        self.log.push_back(what);
        if self.log.len() > 16 && self.trace.is_none() {
            self.log.pop_front();
        }
    }

    /// After every stimulus: both cores valid; the scheduler's messages on
    /// their links; the workers' actions on theirs.
    fn step(&mut self, what: String) -> Result<(), String> {
        self.note(what);
        self.s
            .validate()
            .map_err(|e| format!("the scheduler core is invalid: {e}"))?;
        for (n, w) in &mut self.workers {
            w.core
                .validate()
                .map_err(|e| format!("worker {n}'s core is invalid: {e}"))?;
            for a in w.core.take_actions() {
                match a {
                    Action::Send(m) => w.outbox.push_back(m),
                    Action::Fetch { peer, keys } => w.fetches.push((peer, keys)),
                    Action::Execute(_) | Action::Deliver(_) => {}
                }
            }
        }
        for (d, m) in self.s.render_all(&mut self.out) {
            self.traced(&format!("scheduler -> {d:?}"), &m);
            match d {
                Dest::Worker(id) => {
                    let Some(w) = self.workers.values_mut().find(|w| w.id == Some(id)) else {
                        return Err(format!("'{}' for a worker the scheduler forgot", m.op()));
                    };
                    if !w.dead {
                        let twice = self.faults
                            && matches!(m, Message::ComputeTask { .. } | Message::FreeKeys { .. })
                            && self.rng.chance(3);
                        if twice {
                            w.inbox.push_back(m.clone());
                        }
                        w.inbox.push_back(m);
                    }
                }
                Dest::Client(c) => {
                    if let Message::KeyInMemory {
                        key,
                        value: Some(v),
                        ..
                    } = &m
                    {
                        let got = crate::value::decode(v)
                            .map_err(|e| format!("key-in-memory {key}: {e}"))?;
                        let want = self.value_of(key);
                        if got != want {
                            return Err(format!(
                                "key-in-memory {key} carries {got:?}, not {want:?}"
                            ));
                        }
                    }
                    let Some(sc) = self.clients.iter_mut().find(|x| x.id == c) else {
                        return Err(format!("'{}' for a client that is gone", m.op()));
                    };
                    match m {
                        Message::KeyInMemory { key, .. } => {
                            if let Some(t) = sc.wants.get_mut(&key) {
                                *t = Told::Memory;
                            }
                        }
                        Message::KeyErred { key, message, .. } => {
                            if let Some(t) = sc.wants.get_mut(&key) {
                                *t = Told::Erred(message);
                            }
                        }
                        Message::KeyCancelled { key } => {
                            sc.wants.remove(&key);
                        }
                        _ => {}
                    }
                }
            }
        }
        // Retired or removed as unreachable: the scheduler ignores them
        // from now on (their `close` is on its way).
        for id in self.s.take_retired() {
            if let Some((&n, w)) = self.workers.iter_mut().find(|(_, w)| w.id == Some(id)) {
                w.id = None;
                w.outbox.clear();
                if w.dead {
                    // Killed meanwhile: its `close` goes nowhere.
                    self.workers.remove(&n);
                }
            }
        }
        self.now += 0.01;
        Ok(())
    }

    /// With `RASK_SIM_TRACE=key`: notes a message naming the key.
    fn traced(&mut self, what: &str, m: &Message) {
        if let Some(t) = &self.trace {
            let text = format!("{m:?}");
            if text.contains(&format!("\"{t}\"")) {
                self.log.push_back(format!("    {what}: {text}"));
            }
        }
    }

    /// The value `key` must have.
    fn value_of(&self, key: &str) -> Value {
        let def = &self.defs[key];
        let mut args: Vec<i64> = def
            .deps
            .iter()
            .map(|d| match self.value_of(d) {
                Value::Int(i) => i,
                v => panic!("not an int: {v:?}"),
            })
            .collect();
        let arity = if def.func == "add" { 2 } else { 1 };
        while args.len() < arity {
            args.push(1);
        }
        Value::Int(match def.func {
            "inc" => args[0] + 1,
            "add" => args[0] + args[1],
            _ => args[0],
        })
    }

    fn add_worker(&mut self) -> Result<(), String> {
        self.next += 1;
        let n = self.next;
        let name = format!("w{n}");
        let address = format!("tcp://{name}:1");
        let threads = 1 + self.rng.below(3) as u32;
        let reg = WorkerRegistration {
            ext_id: n,
            name: name.clone(),
            address: address.clone(),
            threads,
            functions: vec!["add".into(), "inc".into(), "identity".into()],
            memory_limit: 0,
            runtime: String::new(),
        };
        let id = self.s.add_worker(reg, self.now, &mut self.out);
        self.workers.insert(
            n,
            SimWorker {
                core: WorkerState::new(Registry::new(), &address, 0),
                address,
                id: Some(id),
                inbox: VecDeque::new(),
                outbox: VecDeque::new(),
                running: Vec::new(),
                fetches: Vec::new(),
                dead: false,
                port_down: false,
            },
        );
        self.step(format!("worker {n} joins as {id:?}"))
    }

    fn add_client(&mut self) -> Result<(), String> {
        self.next += 1;
        let c = self.s.add_client(self.next, "sim");
        self.clients.push(SimClient {
            id: c,
            wants: BTreeMap::new(),
        });
        self.step(format!("client {} connects", c.0))
    }

    /// A random graph of new keys over earlier ones (any client's, each
    /// with its one definition), some of them wanted.
    fn submit(&mut self, ci: usize) -> Result<(), String> {
        let known: Vec<String> = self.defs.keys().cloned().collect();
        let mut nodes: Vec<(String, Value)> = Vec::new();
        let mut here: Vec<String> = Vec::new();
        for _ in 0..1 + self.rng.below(5) {
            if self.rng.chance(20) {
                if let Some(k) = self.rng.pick(&known).cloned() {
                    if !here.contains(&k) {
                        self.define(&k, &mut nodes, &mut here);
                    }
                    continue;
                }
            }
            self.next += 1;
            let key = format!("k{}", self.next);
            let mut pool = here.clone();
            pool.extend(known.iter().rev().take(8).cloned());
            let func = match self.rng.below(3) {
                0 => "add",
                1 => "inc",
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
        let r = self.s.update_graph(c, &doc, &wanted, 0, &mut self.out);
        if let Err(e) = &r {
            return Err(format!("a valid graph was refused: {e}"));
        }
        for k in &wanted {
            self.clients[ci]
                .wants
                .entry(k.clone())
                .or_insert(Told::Nothing);
        }
        self.step(format!("client {} submits {wanted:?}", c.0))
    }

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

    fn pick_worker(&mut self, f: impl Fn(&SimWorker) -> bool) -> Option<u64> {
        let ns: Vec<u64> = self
            .workers
            .iter()
            .filter(|(_, w)| f(w))
            .map(|(&n, _)| n)
            .collect();
        self.rng.pick(&ns).copied()
    }

    /// The scheduler → worker link of `n` delivers one message.
    fn deliver_to_worker(&mut self, n: u64) -> Result<(), String> {
        let w = self.workers.get_mut(&n).unwrap();
        let Some(m) = w.inbox.pop_front() else {
            return Ok(());
        };
        let op = m.op();
        match m {
            Message::ComputeTask {
                key,
                func,
                args,
                priority,
                who_has,
            } => w
                .core
                .compute_task(ComputeTask::new(key, func, &args, priority, who_has)),
            Message::FreeKeys { keys } => w.core.free_keys(&keys),
            Message::AcquireReplicas { who_has } => w.core.acquire_replicas(who_has),
            Message::Retire { .. } => w.core.retire(None),
            Message::Close { reason } => {
                if w.id.is_some() {
                    return Err(format!(
                        "worker {n} got close ({reason}) but is still counted"
                    ));
                }
                self.workers.remove(&n);
                return self.step(format!("worker {n} closed: {reason}"));
            }
            other => return Err(format!("a worker was sent '{}'", other.op())),
        }
        self.step(format!("worker {n} receives {op}"))
    }

    /// The worker → scheduler link of `n` delivers one message, or the
    /// disconnect of a dead worker once it has delivered everything.
    fn deliver_to_scheduler(&mut self, n: u64) -> Result<(), String> {
        let w = self.workers.get_mut(&n).unwrap();
        let Some(id) = w.id else {
            w.outbox.clear();
            return Ok(());
        };
        let Some(m) = w.outbox.pop_front() else {
            if w.dead {
                self.workers.remove(&n);
                self.s.remove_worker(id, &mut self.out);
                return self.step(format!("worker {n} ({id:?}) disconnects (killed)"));
            }
            return Ok(());
        };
        let what = format!("{id:?} (worker {n}) sends {:?}", m.op());
        self.traced(&format!("worker {n} -> scheduler"), &m);
        let m = WorkerMessage::try_from(m)
            .map_err(|m| format!("worker {n} sent {:?}, not a worker's message", m.op()))?;
        let twice =
            self.faults && matches!(m, WorkerMessage::TaskFinished { .. }) && self.rng.chance(3);
        if twice {
            self.s
                .handle_worker_message(id, m.clone(), self.now, &mut self.out);
            self.step(format!("{what} (twice)"))?;
        }
        self.s.handle_worker_message(id, m, self.now, &mut self.out);
        self.step(what)
    }

    fn take_tasks(&mut self, n: u64) -> Result<(), String> {
        let w = self.workers.get_mut(&n).unwrap();
        let max = 1 + self.rng.below(3);
        let mut batch = Vec::new();
        w.core.take_ready(max, &mut batch);
        if batch.is_empty() {
            return Ok(());
        }
        w.running.append(&mut batch);
        self.step(format!("worker {n} starts tasks"))
    }

    fn finish_task(&mut self, n: u64) -> Result<(), String> {
        let i = self.rng.below(self.workers[&n].running.len());
        let w = self.workers.get_mut(&n).unwrap();
        let t = w.running.swap_remove(i);
        let outcome = Outcome::of(t.func.call(&t.args));
        w.core.task_done(t.id, t.seq, outcome, 0.001);
        self.step(format!("worker {n} finishes a task"))
    }

    fn complete_fetch(&mut self, n: u64) -> Result<(), String> {
        let i = self.rng.below(self.workers[&n].fetches.len());
        let (peer, keys) = self.workers.get_mut(&n).unwrap().fetches.swap_remove(i);
        let holder = self
            .workers
            .iter()
            .find(|(_, w)| w.address == peer && !w.dead && !w.port_down)
            .map(|(&h, _)| h);
        match holder {
            Some(h) => {
                let (data, missing) = self.workers.get_mut(&h).unwrap().core.get_data(&keys);
                self.workers
                    .get_mut(&n)
                    .unwrap()
                    .core
                    .fetched(&peer, data, &missing);
                self.step(format!("worker {n} fetched {keys:?} from {peer}"))
            }
            None => {
                self.workers.get_mut(&n).unwrap().core.fetch_failed(
                    &peer,
                    &keys,
                    "sim: unreachable",
                );
                self.step(format!("worker {n} cannot reach {peer} for {keys:?}"))
            }
        }
    }

    /// One random step of work: a delivery, a task taken or finished, a
    /// fetch completed. Returns false when nothing was left to do.
    fn work(&mut self) -> Result<bool, String> {
        let mut options: Vec<(u8, u64)> = Vec::new();
        for (&n, w) in &self.workers {
            if !w.inbox.is_empty() && !w.dead {
                options.push((0, n));
            }
            if w.id.is_some() && (!w.outbox.is_empty() || w.dead) {
                options.push((1, n));
            }
            if !w.dead && w.core.ready_len() > 0 {
                options.push((2, n));
            }
            if !w.dead && !w.running.is_empty() {
                options.push((3, n));
            }
            if !w.dead && !w.fetches.is_empty() {
                options.push((4, n));
            }
        }
        let Some(&(kind, n)) = self.rng.pick(&options) else {
            return Ok(false);
        };
        match kind {
            0 => self.deliver_to_worker(n)?,
            1 => self.deliver_to_scheduler(n)?,
            2 => self.take_tasks(n)?,
            3 => self.finish_task(n)?,
            _ => self.complete_fetch(n)?,
        }
        Ok(true)
    }

    /// One random fault or client action.
    fn chaos(&mut self) -> Result<(), String> {
        match self.rng.below(100) {
            0..=3 => self.add_worker(),
            4..=5 => match self.pick_worker(|w| !w.dead && w.id.is_some()) {
                Some(n) => {
                    let w = self.workers.get_mut(&n).unwrap();
                    w.dead = true;
                    w.inbox.clear();
                    w.running.clear();
                    w.fetches.clear();
                    self.note(format!("worker {n} is killed"));
                    Ok(())
                }
                None => Ok(()),
            },
            6..=7 => match self.pick_worker(|w| !w.dead) {
                Some(n) => {
                    let w = self.workers.get_mut(&n).unwrap();
                    w.port_down = !w.port_down;
                    let down = w.port_down;
                    self.note(format!("worker {n}'s data port is down: {down}"));
                    Ok(())
                }
                None => Ok(()),
            },
            8 => match self.pick_worker(|w| !w.dead && w.id.is_some()) {
                Some(n) => {
                    // SIGTERM: the worker asks to leave.
                    self.workers
                        .get_mut(&n)
                        .unwrap()
                        .core
                        .retire(Some("sim: SIGTERM".into()));
                    self.step(format!("worker {n} retires itself"))
                }
                None => Ok(()),
            },
            9 if !self.clients.is_empty() => {
                let Some(n) = self.pick_worker(|w| !w.dead && w.id.is_some()) else {
                    return Ok(());
                };
                let name = format!("w{n}");
                let c = self.clients[self.rng.below(self.clients.len())].id;
                let r = self.s.retire_workers(c, n, &[&name], &mut self.out);
                self.step(format!("client {} retires worker {n}: {r:?}", c.0))
            }
            10..=11 if self.clients.len() < 3 => self.add_client(),
            12 if !self.clients.is_empty() => {
                let ci = self.rng.below(self.clients.len());
                let c = self.clients.remove(ci).id;
                self.s.remove_client(c, &mut self.out);
                self.step(format!("client {} disconnects", c.0))
            }
            13..=24 if !self.clients.is_empty() => {
                let ci = self.rng.below(self.clients.len());
                self.submit(ci)
            }
            25..=29 if !self.clients.is_empty() => {
                let ci = self.rng.below(self.clients.len());
                let keys: Vec<String> = self.clients[ci].wants.keys().cloned().collect();
                let Some(k) = self.rng.pick(&keys).cloned() else {
                    return Ok(());
                };
                let c = self.clients[ci].id;
                self.clients[ci].wants.remove(&k);
                self.s.release_keys(c, &[&k], &mut self.out);
                self.step(format!("client {} releases {k}", c.0))
            }
            30..=31 => {
                self.now += 1.0;
                self.s.tick(self.now, &mut self.out);
                self.step("tick".into())
            }
            _ => self.work().map(|_| ()),
        }
    }

    /// Faults stop; a sound worker is there; everything runs until nothing
    /// is left to do and no task waits.
    fn settle(&mut self) -> Result<(), String> {
        self.faults = false;
        for w in self.workers.values_mut() {
            w.port_down = false;
        }
        if !self
            .workers
            .values()
            .any(|w| !w.dead && w.id.is_some() && !w.core.is_retiring())
        {
            self.add_worker()?;
        }
        for _ in 0..200_000 {
            if self.work()? {
                continue;
            }
            let c = self.s.counts();
            if c.waiting + c.processing + c.queued + c.no_worker == 0 {
                return Ok(());
            }
            // Timers (a retirement waiting for a worker to join).
            self.now += 1.0;
            self.s.tick(self.now, &mut self.out);
            self.step("tick (settling)".into())?;
            if !self
                .workers
                .values()
                .any(|w| w.id.is_some() && !w.core.is_retiring())
            {
                self.add_worker()?;
            }
            if self.now > 10_000.0 {
                return Err(format!("tasks wait for ever: {c:?}"));
            }
        }
        Err("the cluster never settles".into())
    }

    fn check_results(&mut self) -> Result<(), String> {
        for c in &self.clients {
            for (k, told) in &c.wants {
                if *told != Told::Memory {
                    return Err(format!(
                        "client {} wants {k}: told {told:?}, the scheduler has it {:?}",
                        c.id.0,
                        self.s.state_of(k)
                    ));
                }
                let want = self.value_of(k);
                let mut held = 0;
                for w in self.workers.values_mut().filter(|w| !w.dead) {
                    if w.core.phase(k) == Some(Phase::Memory) {
                        held += 1;
                        let v = w.core.value(k);
                        if v.as_ref() != Some(&want) {
                            return Err(format!("{k} at {} is {v:?}, not {want:?}", w.address));
                        }
                    }
                }
                if held == 0 {
                    let phases: Vec<(String, Option<Phase>, bool)> = self
                        .workers
                        .values()
                        .map(|w| (w.address.clone(), w.core.phase(k), w.dead))
                        .collect();
                    return Err(format!(
                        "{k} is in memory at no worker: the scheduler has it {:?} at {:?}; \
                         the workers (address, phase, dead): {phases:?}",
                        self.s.state_of(k),
                        self.s.who_has_of(k)
                    ));
                }
            }
        }
        Ok(())
    }

    fn run(&mut self, steps: usize) -> Result<(), String> {
        self.add_client()?;
        self.add_worker()?;
        self.add_worker()?;
        for _ in 0..steps {
            self.chaos()?;
        }
        self.settle()?;
        self.check_results()?;
        // Everyone lets go: nothing may be left anywhere.
        while let Some(c) = self.clients.pop() {
            self.s.remove_client(c.id, &mut self.out);
            self.step(format!("client {} lets go of everything", c.id.0))?;
        }
        self.settle()?;
        let c = self.s.counts();
        if c.tasks != 0 {
            return Err(format!("tasks left after every client left: {c:?}"));
        }
        for (n, w) in &self.workers {
            if w.core.key_count() != 0 {
                return Err(format!(
                    "worker {n} still knows {} keys after every client left",
                    w.core.key_count()
                ));
            }
        }
        Ok(())
    }
}

/// Runs one seed; on failure, the error with the last steps and the
/// command that replays it.
fn cluster_sim(seed: u64, steps: usize) -> Result<(), String> {
    let mut s = ClusterSim::new(seed);
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
    if let Some(t) = s.trace.clone() {
        let story: Vec<String> =
            s.s.story(&t)
                .iter()
                .map(|tr| format!("transition {tr:?}"))
                .collect();
        s.log.extend(story);
    }
    Err(format!(
        "cluster simulation seed {seed} failed: {e}\nlast steps:\n  {}\nreplay: RASK_SIM_FIRST={seed} \
         RASK_SIM_SEEDS=1 cargo test --release --lib cluster_sim_many_seeds -- --ignored (RASK_SIM_TRACE=KEY: every step and KEY's transitions)",
        s.log.iter().cloned().collect::<Vec<_>>().join("\n  ")
    ))
}

/// Steps of chaos per seed (then the settling and the checks).
const STEPS: usize = 400;

fn seeds(first: u64, n: u64) {
    for seed in first..first + n {
        if let Err(e) = cluster_sim(seed, STEPS) {
            panic!("{e}");
        }
    }
}

#[test]
fn cluster_sim_1000_seeds() {
    // 100 in the debug-profile core checks (about 20 times slower).
    seeds(0, if cfg!(debug_assertions) { 100 } else { 1000 });
}

#[test]
#[ignore = "long run: benches/sim.sh, or RASK_SIM_SEEDS=100000 cargo test --release --lib cluster_sim_many_seeds -- --ignored"]
fn cluster_sim_many_seeds() {
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    seeds(env("RASK_SIM_FIRST", 0), env("RASK_SIM_SEEDS", 100_000));
}

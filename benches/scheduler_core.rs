//! The scheduler core alone ([`rask::scheduler::SchedulerState`]), driven
//! in-process: no sockets, no serialization, one thread.
//!
//! Run: `cargo bench --bench scheduler_core [-- --quick] [--reps N]
//! [--only tree|map|memory]`. `RASK_BENCH_NO_WARM=1` turns off the batch
//! cache warming ([`SchedulerState::warm`]) to measure what it brings.
//!
//! - **Throughput.** 1,000 simulated workers (2 threads each, so at most 6
//!   tasks each by the backlog rule) that finish every task they were sent
//!   at once: each round feeds a `task-finished` for every `compute-task`
//!   of the previous round. Graphs:
//!   - `tree_1m`: 875,000 `noop()` leaves gathered by a fan-in-8 tree of
//!     `noop(children...)` (1,000,001 tasks), the root wanted;
//!   - `map_1m`: 1,000,000 independent `noop()` tasks, every one wanted by
//!     the client (so also 1M `key-in-memory`).
//!
//!   `ingest` is the `update-graph` (decoding the document, culling,
//!   ordering, creating the tasks, placing the first ones); `run` is the
//!   rounds of `task-finished` until the last result is in memory; `release`
//!   is the client releasing everything (the free-keys and forgetting
//!   cascade). `run+render` repeats `run` with every recorded message
//!   turned into its wire [`Message`] as the server does (minus msgpack).
//!   The simulated worker looks keys up in a table made beforehand, so the
//!   timed loop is the scheduler's work only.
//! - **Memory.** Bytes of scheduler memory per waiting task: 100,000 tasks
//!   `w-<i> = noop(root)` waiting on one task that never finishes,
//!   measured with a counting global allocator as the live heap after the
//!   `update-graph` minus before it (the document itself excluded). Two
//!   variants: every waiting task held by the client (`wanted`), or none of
//!   them (`unwanted`: they feed one final task).
//!
//! Times are wall clock and, on Linux, the thread's on-CPU time (from
//! /proc/thread-self/schedstat): on a shared machine the wall time includes
//! waiting for a core.
//!
//! Output: one JSON object per line on stdout, a summary on stderr.

use rask::protocol::Message;
use rask::scheduler::state::{
    ClientId, Outgoing, SchedulerState, TaskId, WorkerId, WorkerRegistration,
};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering::Relaxed};
use std::time::Instant;

// ------------------------------------------------------- counting allocator

/// Counts the heap while `COUNTING` is on: `NET` is what was allocated
/// minus what was freed in that window (the change of the live heap, even
/// when what is freed was allocated before), `PEAK` its highest point.
/// Off, it costs one relaxed load per call.
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static NET: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

fn count(delta: isize) {
    if COUNTING.load(Relaxed) {
        let now = NET.fetch_add(delta, Relaxed) + delta;
        if delta > 0 {
            PEAK.fetch_max(now, Relaxed);
        }
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = System.alloc(l);
        if !p.is_null() {
            count(l.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l);
        count(-(l.size() as isize));
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = System.realloc(p, l, new);
        if !q.is_null() {
            count(new as isize - l.size() as isize);
        }
        q
    }
}

/// Runs `f` with the counter on; returns its result, the net bytes and the
/// peak above the start.
fn counted<T>(f: impl FnOnce() -> T) -> (T, isize, isize) {
    NET.store(0, Relaxed);
    PEAK.store(0, Relaxed);
    COUNTING.store(true, Relaxed);
    let r = f();
    COUNTING.store(false, Relaxed);
    (r, NET.load(Relaxed), PEAK.load(Relaxed))
}

#[global_allocator]
static ALLOC: Counting = Counting;

// ------------------------------------------------------------------ clocks

/// Nanoseconds this thread has spent on a CPU (Linux: the first field of
/// /proc/thread-self/schedstat), or `None` elsewhere. The machines this
/// runs on are shared, so wall time alone overstates the cost when other
/// processes compete for the cores.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Wall and on-CPU seconds of `f`.
fn timed<T>(f: impl FnOnce() -> T) -> (T, f64, Option<f64>) {
    let c0 = thread_cpu_ns();
    let t0 = Instant::now();
    let r = f();
    let wall = t0.elapsed().as_secs_f64();
    let cpu = match (c0, thread_cpu_ns()) {
        (Some(a), Some(b)) => Some((b - a) as f64 * 1e-9),
        _ => None,
    };
    (r, wall, cpu)
}

// ---------------------------------------------------------- graph documents

/// Writes `{"tasks": {...}, "outputs": [...]}` with every task `noop`.
struct Doc {
    body: Vec<u8>,
    n: u32,
}

impl Doc {
    fn new() -> Doc {
        Doc {
            body: Vec::new(),
            n: 0,
        }
    }
    fn task(&mut self, key: &str, refs: &[&str]) {
        use rmp::encode::*;
        let b = &mut self.body;
        write_str(b, key).unwrap();
        write_map_len(b, 2).unwrap();
        write_str(b, "func").unwrap();
        write_str(b, "noop").unwrap();
        write_str(b, "args").unwrap();
        write_array_len(b, refs.len() as u32).unwrap();
        for r in refs {
            write_map_len(b, 1).unwrap();
            write_str(b, "ref").unwrap();
            write_str(b, r).unwrap();
        }
        self.n += 1;
    }
    fn finish(self) -> Vec<u8> {
        use rmp::encode::*;
        let mut out = Vec::with_capacity(self.body.len() + 32);
        write_map_len(&mut out, 1).unwrap();
        write_str(&mut out, "tasks").unwrap();
        write_map_len(&mut out, self.n).unwrap();
        out.extend_from_slice(&self.body);
        out
    }
}

/// `leaves` noop leaves under a fan-in-8 noop tree; returns the document,
/// the root and the task count.
fn tree_doc(leaves: usize) -> (Vec<u8>, String, usize) {
    let mut d = Doc::new();
    let mut level: Vec<String> = (0..leaves).map(|i| format!("n-{i}")).collect();
    for k in &level {
        d.task(k, &[]);
    }
    let mut depth = 0;
    while level.len() > 1 {
        depth += 1;
        let next: Vec<String> = level
            .chunks(8)
            .enumerate()
            .map(|(j, kids)| {
                let name = format!("t-{depth}-{j}");
                let refs: Vec<&str> = kids.iter().map(String::as_str).collect();
                d.task(&name, &refs);
                name
            })
            .collect();
        level = next;
    }
    let n = d.n as usize;
    (d.finish(), level.pop().unwrap(), n)
}

fn map_doc(n: usize) -> (Vec<u8>, Vec<String>) {
    let mut d = Doc::new();
    let keys: Vec<String> = (0..n).map(|i| format!("m-{i}")).collect();
    for k in &keys {
        d.task(k, &[]);
    }
    (d.finish(), keys)
}

// ------------------------------------------------------------- simulation

fn cluster(workers: usize) -> (SchedulerState, ClientId, Vec<Outgoing>) {
    let mut s = SchedulerState::default();
    let mut out = Vec::new();
    for i in 0..workers {
        s.add_worker(
            WorkerRegistration {
                ext_id: i as u64 + 1,
                name: format!("w{i}"),
                address: format!("tcp://10.0.{}.{}:4000", i / 250, i % 250),
                threads: 2,
                functions: vec!["noop".into()],
                memory_limit: 0,
                runtime: String::new(),
            },
            0.0,
            &mut out,
        );
    }
    let c = s.add_client(0, "bench");
    (s, c, out)
}

/// Key names by task id, made outside the timed loop (a real worker has the
/// key in the message it got).
fn name_table(s: &SchedulerState, upto: usize) -> Vec<Box<str>> {
    (0..upto as u32)
        .map(|t| {
            s.task(TaskId(t))
                .map(|t| t.name().into())
                .unwrap_or_default()
        })
        .collect()
}

struct RunStats {
    finished: usize,
    rounds: usize,
}

/// Finishes every `compute-task` of each round, until none is left.
fn run(
    s: &mut SchedulerState,
    out: &mut Vec<Outgoing>,
    names: &[Box<str>],
    render: bool,
    warm: bool,
) -> RunStats {
    let mut batch: Vec<(WorkerId, TaskId)> = Vec::new();
    let (mut finished, mut rounds) = (0, 0);
    loop {
        batch.clear();
        for o in out.drain(..) {
            if let Outgoing::Compute { worker, task } = o {
                batch.push((worker, task));
                if render {
                    let m = s.render(Outgoing::Compute { worker, task });
                    std::hint::black_box(m);
                }
            } else if render {
                std::hint::black_box(s.render(o));
            }
        }
        if batch.is_empty() {
            break;
        }
        rounds += 1;
        if warm {
            s.warm(batch.iter().map(|&(_, t)| &*names[t.0 as usize]));
        }
        for &(w, t) in &batch {
            s.task_finished(w, &names[t.0 as usize], 8, 1e-6, None, 0.0, out);
            finished += 1;
        }
    }
    RunStats { finished, rounds }
}

/// Medians and minima over repetitions.
#[derive(Default)]
struct Samples(Vec<f64>);

impl Samples {
    fn push(&mut self, x: Option<f64>) {
        if let Some(x) = x {
            self.0.push(x);
        }
    }
    fn sorted(&self) -> Vec<f64> {
        let mut v = self.0.clone();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v
    }
    fn min(&self) -> Option<f64> {
        self.sorted().first().copied()
    }
    fn median(&self) -> Option<f64> {
        let v = self.sorted();
        (!v.is_empty()).then(|| v[v.len() / 2])
    }
}

fn throughput(case: &str, doc: &[u8], keys: &[String], tasks: usize, render: bool, reps: usize) {
    let warm = std::env::var_os("RASK_BENCH_NO_WARM").is_none();
    let (mut wall, mut cpu, mut ingest, mut release) = (
        Samples::default(),
        Samples::default(),
        Samples::default(),
        Samples::default(),
    );
    let mut rounds = 0;
    for _ in 0..reps {
        let (mut s, c, mut out) = cluster(1000);
        out.clear();
        let (r, _, ingest_cpu) = timed(|| s.update_graph(c, doc, keys, 0, &mut out));
        r.unwrap();
        ingest.push(ingest_cpu);
        let names = name_table(&s, tasks + 16);
        let (r, secs, run_cpu) = timed(|| run(&mut s, &mut out, &names, render, warm));
        assert_eq!(r.finished, tasks, "every task ran once");
        assert_eq!(s.counts().memory, keys.len());
        rounds = r.rounds;
        wall.push(Some(secs));
        cpu.push(run_cpu);
        out.clear();
        let (_, _, release_cpu) = timed(|| s.release_keys(c, keys, &mut out));
        assert_eq!(s.counts().tasks, 0);
        release.push(release_cpu);
    }
    let variant = if render { "run+render" } else { "run" };
    let per = |x: Option<f64>| x.map(|v| v / tasks as f64 * 1e6);
    let rate = |x: Option<f64>| x.map(|v| tasks as f64 / v);
    let j = |x: Option<f64>| x.map_or("null".to_string(), |v| format!("{v:.4}"));
    let j0 = |x: Option<f64>| x.map_or("null".to_string(), |v| format!("{v:.0}"));
    println!(
        "{{\"bench\": \"scheduler_core\", \"case\": \"{case}\", \"variant\": \"{variant}\", \
         \"workers\": 1000, \"tasks\": {tasks}, \"reps\": {reps}, \"rounds\": {rounds}, \
         \"tasks_per_cpu_s_best\": {}, \"tasks_per_cpu_s_median\": {}, \"tasks_per_wall_s_median\": {}, \
         \"cpu_us_per_task_best\": {}, \"ingest_cpu_us_per_task_median\": {}, \
         \"release_cpu_us_per_task_median\": {}}}",
        j0(rate(cpu.min())),
        j0(rate(cpu.median())),
        j0(rate(wall.median())),
        j(per(cpu.min())),
        j(per(ingest.median())),
        j(per(release.median())),
    );
    eprintln!(
        "{case:>8} {variant:<10} {tasks} tasks, 1000 workers: {:>9} tasks/s on-CPU best, {:>9} median \
         ({:>9} wall median; {rounds} rounds)  ingest {} µs/task  release {} µs/task",
        j0(rate(cpu.min())),
        j0(rate(cpu.median())),
        j0(rate(wall.median())),
        j(per(ingest.median())),
        j(per(release.median())),
    );
}

fn memory(n: usize, wanted: bool) {
    let (mut s, c, mut out) = cluster(1);
    // The root: sent to the only worker, never finished.
    let mut d = Doc::new();
    d.task("root", &[]);
    s.update_graph(c, &d.finish(), &["root".to_string()], 0, &mut out)
        .unwrap();
    out.clear();
    let mut d = Doc::new();
    let keys: Vec<String> = (0..n).map(|i| format!("w-{i}")).collect();
    for k in &keys {
        d.task(k, &["root"]);
    }
    let want: Vec<String> = if wanted {
        keys.clone()
    } else {
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        d.task("final", &refs);
        vec!["final".to_string()]
    };
    let doc = d.finish();
    let (r, net, peak) = counted(|| s.update_graph(c, &doc, &want, 0, &mut out));
    r.unwrap();
    assert_eq!(s.counts().waiting, n + usize::from(!wanted));
    assert!(out.is_empty());
    let per = net as f64 / n as f64;
    let case = if wanted { "wanted" } else { "unwanted" };
    println!(
        "{{\"bench\": \"scheduler_memory\", \"case\": \"{case}\", \"waiting_tasks\": {n}, \
         \"bytes_per_waiting_task\": {per:.1}, \"bytes\": {net}, \"ingest_peak_extra_bytes_per_task\": {:.1}, \
         \"task_struct_bytes\": {}}}",
        peak as f64 / n as f64,
        std::mem::size_of::<rask::scheduler::state::Task>(),
    );
    eprintln!(
        "  memory ({case:>8}): {per:.1} bytes per waiting task ({n} tasks waiting on one; \
         transient peak during update-graph {:.1} bytes/task; Task struct {} bytes)",
        peak as f64 / n as f64,
        std::mem::size_of::<rask::scheduler::state::Task>(),
    );
    drop(s);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    // `--only tree|map|memory` runs one part (for profiling).
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1).cloned());
    let want = |part: &str| only.as_deref().map_or(true, |o| o == part);
    let scale = if quick { 10 } else { 1 };
    let reps = args
        .iter()
        .position(|a| a == "--reps")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(if quick { 3 } else { 5 });
    eprintln!("rask scheduler core benchmark (in-process, one thread)");

    if want("tree") {
        let (doc, root, tasks) = tree_doc(875_000 / scale);
        let keys = vec![root];
        throughput("tree_1m", &doc, &keys, tasks, false, reps);
        throughput("tree_1m", &doc, &keys, tasks, true, reps);
    }
    if want("map") {
        let n = 1_000_000 / scale;
        let (doc, keys) = map_doc(n);
        throughput("map_1m", &doc, &keys, n, false, reps);
        throughput("map_1m", &doc, &keys, n, true, reps);
    }
    if want("memory") {
        memory(100_000 / scale, true);
        memory(100_000 / scale, false);
    }
    let _ = Message::GetWorkers { id: 0 };
}

//! Overhead per task of the local executor (`rask::local::compute`), through
//! the Rust API. `benches/dask_local.py` runs the same graphs on Dask's
//! threaded scheduler; `benches/run.sh` runs both and prints them side by side.
//!
//! Run: `cargo bench --bench local [-- --quick] [-- --only NAME]`.
//! More options: `--threads T` (only that count), `--samples` (every timed
//! run in the JSON line), `--loop SECS` (compute the selected graphs over and
//! over, for profiling: `perf record -g target/release/deps/local-* --only
//! noop_tree_100k --threads 1 --loop 5`).
//!
//! Output: one JSON object per line on stdout (the format `run.sh` and
//! `dask_local.py` share); a human-readable summary on stderr.
//!
//! The graphs (key names and shapes identical to `dask_local.py`):
//!
//! - `noop_1`: one `noop()` task (`n-0`): the fixed cost of a compute call.
//! - `noop_tree_10k`, `noop_tree_100k`: N independent `noop()` tasks
//!   (`n-<i>`), gathered by a tree of `noop(children...)` tasks of fan-in 8
//!   (`t-<level>-<j>`) down to one root. The tree nodes are `noop`, not `sum`:
//!   `noop` returns nil and neither rask's `sum` nor Python's accepts nil.
//!   µs/task is over all tasks (leaves and tree).
//! - `chain_10k`: `c-0 = inc(0)`, `c-<i> = inc(c-<i-1>)`.
//! - `tree_reduce_2^14`: 2^14 leaves `l-<i> = inc(i)`, pairwise `add` up to
//!   one root (2^15 - 1 tasks).
//! - `build_1m`: building the `noop_tree` graph with 1M leaves (1,142,860
//!   tasks) through `Graph::add_task`, key names formatted as we go.
//! - `noop_tree_1m`: computing that graph, in a fresh child process so that
//!   its peak RSS (VmHWM) is its own: graph build + compute.
//!
//! Build time (making key strings and calling `add_task`) is reported apart
//! from compute time. Compute time is one `rask::compute` call: culling,
//! validation and ordering (`plan_s` reports that part alone), starting the
//! helper threads, running the tasks.

use rask::{compute, Arg, Graph, KeyId, Options, Registry, Value};
use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

const FANIN: usize = 8;

struct Timing {
    median: f64,
    min: f64,
    reps: usize,
    /// Every timed run, in seconds, in the order they ran.
    all: Vec<f64>,
}

/// Runs `f` `warmup` times untimed, then `reps` times timed. The value `f`
/// returns is dropped outside the timed region.
fn time<T>(warmup: usize, reps: usize, mut f: impl FnMut() -> T) -> Timing {
    for _ in 0..warmup {
        black_box(f());
    }
    let mut ts = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t0 = Instant::now();
        let v = f();
        ts.push(t0.elapsed().as_secs_f64());
        drop(black_box(v));
    }
    let all = ts.clone();
    ts.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = if reps % 2 == 1 {
        ts[reps / 2]
    } else {
        (ts[reps / 2 - 1] + ts[reps / 2]) / 2.0
    };
    Timing {
        median,
        min: ts[0],
        reps,
        all,
    }
}

/// N `noop()` leaves and a fan-in-8 tree of `noop(children...)` above them.
/// Returns the graph, its root and its number of tasks.
fn noop_tree(n: usize) -> (Graph, KeyId, usize) {
    let mut g = Graph::new();
    let mut name = String::with_capacity(32);
    let mut level: Vec<KeyId> = Vec::with_capacity(n);
    for i in 0..n {
        name.clear();
        write!(name, "n-{i}").unwrap();
        level.push(g.add_task(&name, "noop", Vec::new()).unwrap());
    }
    let mut tasks = n;
    let mut depth = 0;
    while level.len() > 1 {
        depth += 1;
        let mut next = Vec::with_capacity(level.len().div_ceil(FANIN));
        for (j, kids) in level.chunks(FANIN).enumerate() {
            name.clear();
            write!(name, "t-{depth}-{j}").unwrap();
            let args = kids.iter().map(|&k| Arg::Ref(k)).collect();
            next.push(g.add_task(&name, "noop", args).unwrap());
        }
        tasks += next.len();
        level = next;
    }
    (g, level[0], tasks)
}

/// `c-0 = inc(0)`, `c-i = inc(c-(i-1))`.
fn chain(n: usize) -> (Graph, KeyId, usize) {
    let mut g = Graph::new();
    let mut name = String::with_capacity(32);
    let mut prev = g
        .add_task("c-0", "inc", vec![Arg::Value(Value::Int(0))])
        .unwrap();
    for i in 1..n {
        name.clear();
        write!(name, "c-{i}").unwrap();
        prev = g.add_task(&name, "inc", vec![Arg::Ref(prev)]).unwrap();
    }
    (g, prev, n)
}

/// 2^depth leaves `l-i = inc(i)`, pairwise `add` above them.
fn tree_reduce(depth: u32) -> (Graph, KeyId, usize) {
    let n = 1usize << depth;
    let mut g = Graph::new();
    let mut name = String::with_capacity(32);
    let mut level: Vec<KeyId> = Vec::with_capacity(n);
    for i in 0..n {
        name.clear();
        write!(name, "l-{i}").unwrap();
        level.push(
            g.add_task(&name, "inc", vec![Arg::Value(Value::Int(i as i64))])
                .unwrap(),
        );
    }
    let mut tasks = n;
    let mut d = 0;
    while level.len() > 1 {
        d += 1;
        let mut next = Vec::with_capacity(level.len() / 2);
        for (j, pair) in level.chunks(2).enumerate() {
            name.clear();
            write!(name, "a-{d}-{j}").unwrap();
            let args = pair.iter().map(|&k| Arg::Ref(k)).collect();
            next.push(g.add_task(&name, "add", args).unwrap());
        }
        tasks += next.len();
        level = next;
    }
    (g, level[0], tasks)
}

/// A field of /proc/self/status, in kB.
fn status_kb(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// This thread's time on a CPU and waiting on a run queue, in ns
/// (/proc/thread-self/schedstat): shows how much of a timing other
/// processes took.
fn schedstat() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let mut it = s.split_whitespace().map(|x| x.parse().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

/// The share of the time between two `schedstat()` readings that this
/// thread was runnable but waiting for a CPU.
fn wait_frac(before: (u64, u64), after: (u64, u64)) -> f64 {
    let run = after.0.saturating_sub(before.0) as f64;
    let wait = after.1.saturating_sub(before.1) as f64;
    if run + wait > 0.0 {
        wait / (run + wait)
    } else {
        0.0
    }
}

/// The CPUs this process may run on (shows whether `taskset` pinned it).
fn cpus_allowed() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Cpus_allowed_list:"))
                .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_owned())
        })
        .unwrap_or_else(|| "?".into())
}

struct Ctx {
    quick: bool,
    only: Option<String>,
    cpus: String,
    /// `--threads T`: only this thread count.
    threads: Option<usize>,
    /// `--loop SECS`: compute (not build) the selected graphs over and over
    /// for SECS seconds each, for `perf record` / `valgrind`; no JSON.
    loop_secs: f64,
    /// `--samples`: add every timed compute to the JSON line.
    samples: bool,
}

impl Ctx {
    fn wants(&self, bench: &str) -> bool {
        match &self.only {
            Some(o) => bench.starts_with(o.as_str()),
            None => true,
        }
    }
    fn thread_counts(&self) -> Vec<usize> {
        match self.threads {
            Some(t) => vec![t],
            None => vec![1, 2],
        }
    }
    fn reps(&self, warmup: usize, reps: usize) -> (usize, usize) {
        if self.quick {
            (warmup.min(1), reps.div_ceil(4).max(1))
        } else {
            (warmup, reps)
        }
    }
}

/// Times building and computing one graph with 1 and 2 threads; prints one
/// JSON line per thread count.
fn bench_compute(
    ctx: &Ctx,
    bench: &str,
    make: impl Fn() -> (Graph, KeyId, usize),
    expect: Value,
    warmup: usize,
    reps: usize,
) {
    if !ctx.wants(bench) {
        return;
    }
    let (warmup, reps) = ctx.reps(warmup, reps);
    let registry = Registry::new();
    if ctx.loop_secs > 0.0 {
        let (g, root, tasks) = make();
        let g = Arc::new(g);
        for threads in ctx.thread_counts() {
            let opts = Options::with_threads(threads);
            let t0 = Instant::now();
            let mut runs = 0usize;
            while t0.elapsed().as_secs_f64() < ctx.loop_secs {
                black_box(compute(&g, &[root], &registry, &opts).unwrap());
                runs += 1;
            }
            let us = t0.elapsed().as_secs_f64() / (runs * tasks) as f64 * 1e6;
            eprintln!("{bench:>18} threads={threads} loop: {runs} computes, {us:.4} µs/task");
        }
        return;
    }
    let build = time(warmup.min(1), reps.min(5), &make);
    let (g, root, tasks) = make();
    let g = Arc::new(g);
    let plan = time(warmup.min(1), reps.min(5), || g.plan(&[root]).unwrap());
    for threads in ctx.thread_counts() {
        let opts = Options::with_threads(threads);
        let got = compute(&g, &[root], &registry, &opts).unwrap();
        assert_eq!(got.values[0], expect, "{bench}: wrong result");
        assert_eq!(got.stats.tasks_run, tasks);
        let t = time(warmup, reps, || {
            compute(&g, &[root], &registry, &opts).unwrap()
        });
        let samples = if ctx.samples {
            let v: Vec<String> = t.all.iter().map(|x| format!("{x:.9}")).collect();
            format!(", \"samples_s\": [{}]", v.join(", "))
        } else {
            String::new()
        };
        let us = t.median / tasks as f64 * 1e6;
        let us_min = t.min / tasks as f64 * 1e6;
        println!(
            "{{\"bench\": \"{bench}\", \"impl\": \"rask\", \"threads\": {threads}, \"tasks\": {tasks}, \
             \"us_per_task\": {us:.4}, \"us_per_task_min\": {us_min:.4}, \
             \"compute_median_s\": {:.6}, \"compute_min_s\": {:.6}, \"reps\": {}, \
             \"build_median_s\": {:.6}, \"build_us_per_task\": {:.4}, \
             \"plan_median_s\": {:.6}, \"plan_us_per_task\": {:.4}, \"cpus\": \"{}\"{samples}}}",
            t.median,
            t.min,
            t.reps,
            build.median,
            build.median / tasks as f64 * 1e6,
            plan.median,
            plan.median / tasks as f64 * 1e6,
            ctx.cpus,
        );
        eprintln!(
            "{bench:>18} threads={threads} tasks={tasks:>7}  compute {us:8.4} µs/task (min {us_min:.4})  \
             build {:.4} µs/task  plan {:.4} µs/task",
            build.median / tasks as f64 * 1e6,
            plan.median / tasks as f64 * 1e6,
        );
    }
}

/// Child process: build the 1M noop tree, compute it once, report peak RSS.
fn mem_child(threads: usize) {
    let base_kb = status_kb("VmHWM:").unwrap_or(0);
    let t0 = Instant::now();
    let (g, root, tasks) = noop_tree(1_000_000);
    let build_s = t0.elapsed().as_secs_f64();
    let built_kb = status_kb("VmHWM:").unwrap_or(0);
    let g = Arc::new(g);
    let registry = Registry::new();
    let t1 = Instant::now();
    let got = compute(&g, &[root], &registry, &Options::with_threads(threads)).unwrap();
    let compute_s = t1.elapsed().as_secs_f64();
    assert_eq!(got.values[0], Value::Nil);
    let peak_kb = status_kb("VmHWM:").unwrap_or(0);
    println!(
        "{{\"bench\": \"noop_tree_1m\", \"impl\": \"rask\", \"threads\": {threads}, \"tasks\": {tasks}, \
         \"us_per_task\": {:.4}, \"compute_s\": {compute_s:.4}, \"build_s\": {build_s:.4}, \
         \"rss_start_mb\": {:.1}, \"peak_rss_after_build_mb\": {:.1}, \"peak_rss_mb\": {:.1}, \
         \"peak_live\": {}, \"cpus\": \"{}\"}}",
        compute_s / tasks as f64 * 1e6,
        base_kb as f64 / 1024.0,
        built_kb as f64 / 1024.0,
        peak_kb as f64 / 1024.0,
        got.stats.peak_live,
        cpus_allowed(),
    );
    eprintln!(
        "{:>18} threads={threads} tasks={tasks}  compute {:.4} µs/task ({compute_s:.3} s)  \
         build {build_s:.3} s  peak RSS {:.1} MB (after build {:.1} MB)",
        "noop_tree_1m",
        compute_s / tasks as f64 * 1e6,
        peak_kb as f64 / 1024.0,
        built_kb as f64 / 1024.0,
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--mem-child") {
        let threads = args.get(i + 1).and_then(|s| s.parse().ok()).unwrap_or(1);
        mem_child(threads);
        return;
    }
    let ctx = Ctx {
        // `cargo bench` passes `--bench`; ignore it and anything unknown.
        quick: args.iter().any(|a| a == "--quick"),
        only: args
            .iter()
            .position(|a| a == "--only")
            .and_then(|i| args.get(i + 1).cloned()),
        cpus: cpus_allowed(),
        threads: args
            .iter()
            .position(|a| a == "--threads")
            .and_then(|i| args.get(i + 1)?.parse().ok()),
        loop_secs: args
            .iter()
            .position(|a| a == "--loop")
            .and_then(|i| args.get(i + 1)?.parse().ok())
            .unwrap_or(0.0),
        samples: args.iter().any(|a| a == "--samples"),
    };
    eprintln!("rask local executor benchmark (cpus allowed: {})", ctx.cpus);

    // One task: the fixed cost of a compute call (threads started and
    // joined, plan, result), which the per-task figures below include.
    bench_compute(&ctx, "noop_1", || noop_tree(1), Value::Nil, 20, 201);
    bench_compute(
        &ctx,
        "noop_tree_10k",
        || noop_tree(10_000),
        Value::Nil,
        5,
        31,
    );
    bench_compute(
        &ctx,
        "noop_tree_100k",
        || noop_tree(100_000),
        Value::Nil,
        2,
        11,
    );
    bench_compute(
        &ctx,
        "chain_10k",
        || chain(10_000),
        Value::Int(10_000),
        5,
        31,
    );
    let n = 1i64 << 14;
    bench_compute(
        &ctx,
        "tree_reduce_2^14",
        || tree_reduce(14),
        Value::Int(n * (n + 1) / 2),
        5,
        31,
    );

    if ctx.wants("build_1m") && ctx.loop_secs == 0.0 {
        let (warmup, reps) = ctx.reps(1, 5);
        let mut tasks = 0;
        let before = schedstat();
        let t = time(warmup, reps, || {
            let (g, _, n) = noop_tree(1_000_000);
            tasks = n;
            g
        });
        let after = schedstat();
        println!(
            "{{\"bench\": \"build_1m\", \"impl\": \"rask\", \"threads\": 0, \"tasks\": {tasks}, \
             \"build_median_s\": {:.4}, \"build_min_s\": {:.4}, \"build_us_per_task\": {:.4}, \
             \"reps\": {}, \"runqueue_wait_frac\": {:.3}, \"cpus\": \"{}\"}}",
            t.median,
            t.min,
            t.median / tasks as f64 * 1e6,
            t.reps,
            wait_frac(before, after),
            ctx.cpus
        );
        eprintln!(
            "{:>18} tasks={tasks}  {:.3} s (min {:.3} s), {:.4} µs/task",
            "build_1m",
            t.median,
            t.min,
            t.median / tasks as f64 * 1e6
        );
    }

    if ctx.wants("noop_tree_1m") && ctx.loop_secs == 0.0 {
        let exe = std::env::current_exe().expect("own path");
        for threads in [1, 2] {
            let status = std::process::Command::new(&exe)
                .args(["--mem-child", &threads.to_string()])
                .status()
                .expect("running the memory child");
            assert!(status.success(), "memory child failed");
        }
    }
}

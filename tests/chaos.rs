//! Chaos: a 10,000-task graph (layers with random fan-out, then tree
//! reductions), every key wanted, on the `rask-scheduler` binary and 3
//! `rask-worker` processes. While it runs, a random worker is killed with
//! SIGKILL at random moments and a new one started each time. Every key a
//! killed worker held is lost with it (all are wanted, so finished ones
//! too) and must be recomputed from the graph. At the end every result is
//! checked against `rask::local` computing the same graph, and checksums
//! computed *on the workers* from the recomputed data are checked too.
//!
//! Also here: gathers of values too big to travel inline racing with
//! killed workers, and a C task function that kills every worker it runs
//! on (given up after 3 deaths).
//!
//! Short by default (3 kills, for CI). Environment:
//! - `RASK_CHAOS_KILLS` (3): how many workers to kill.
//! - `RASK_CHAOS_SEED` (1): the graph, the victims and the moments.
//! - `RASK_CHAOS_GAP_MS` (40..250): the random pause before each kill,
//!   as `MIN..MAX` milliseconds.
//!
//! `benches/chaos.sh` runs the long form and prints the figures (the test
//! prints them too, with `--nocapture`).

use rask::client::{Client, ClientArg, ClientConfig, Future};
use rask::graph::Arg;
use rask::{Graph, Registry, Value};
use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod procs;
use procs::Proc;

const TASKS: usize = 10_000;

/// splitmix64: a seeded generator, so a failing seed can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={s:?} does not parse")),
        Err(_) => default,
    }
}

/// `TASKS` tasks from `seed`: 1,000 `inc` leaves, 7 layers of 1,000 whose
/// tasks each take 1-3 random tasks of the layer below (`add`, `max`,
/// `sub`, `inc`: fan-out), then reductions of 10 (`add` or `max`) over
/// random runs of a layer and over earlier reductions, up to `TASKS`.
fn chaos_graph(seed: u64) -> (Graph, Vec<String>) {
    let mut rng = Rng(seed);
    let mut g = Graph::new();
    let mut keys: Vec<String> = Vec::with_capacity(TASKS);
    let width = 1000;
    let mut layers: Vec<Vec<String>> = Vec::new();
    let leaves: Vec<String> = (0..width)
        .map(|i| {
            let k = format!("leaf-{i}");
            g.add_task(&k, "inc", vec![Arg::from((rng.below(100)) as i64)])
                .unwrap();
            k
        })
        .collect();
    keys.extend(leaves.iter().cloned());
    layers.push(leaves);
    for l in 1..8 {
        let mut layer = Vec::with_capacity(width);
        for i in 0..width {
            let k = format!("l{l}-{i}");
            let below = &layers[l - 1];
            let (func, n) = match rng.below(4) {
                0 => ("add", 1 + rng.below(3)),
                1 => ("max", 1 + rng.below(3)),
                2 => ("sub", 2),
                _ => ("inc", 1),
            };
            let args: Vec<Arg> = (0..n)
                .map(|_| g.r(&below[rng.below(width)]).unwrap())
                .collect();
            g.add_task(&k, func, args).unwrap();
            layer.push(k.clone());
            keys.push(k);
        }
        layers.push(layer);
    }
    // Reductions: over a random run of 10 in a random layer, or over 10
    // earlier reductions once there are some.
    let mut reductions: Vec<String> = Vec::new();
    let mut r = 0;
    while keys.len() < TASKS {
        let k = format!("reduce-{r}");
        r += 1;
        let func = if rng.below(2) == 0 { "add" } else { "max" };
        let args: Vec<Arg> = if reductions.len() >= 10 && rng.below(4) == 0 {
            let start = rng.below(reductions.len() - 9);
            reductions[start..start + 10]
                .iter()
                .map(|x| g.r(x).unwrap())
                .collect()
        } else {
            let layer = &layers[rng.below(layers.len())];
            let start = rng.below(width - 9);
            layer[start..start + 10]
                .iter()
                .map(|x| g.r(x).unwrap())
                .collect()
        };
        g.add_task(&k, func, args).unwrap();
        reductions.push(k.clone());
        keys.push(k);
    }
    (g, keys)
}

#[test]
fn chaos_killed_workers_lose_nothing() {
    let kills: usize = env_or("RASK_CHAOS_KILLS", 3);
    let seed: u64 = env_or("RASK_CHAOS_SEED", 1);
    let gap: String = env_or("RASK_CHAOS_GAP_MS", "40..250".to_string());
    let (gap_min, gap_max) = gap
        .split_once("..")
        .map(|(a, b)| (a.parse::<u64>().unwrap(), b.parse::<u64>().unwrap()))
        .expect("RASK_CHAOS_GAP_MS is MIN..MAX");
    assert!(gap_min <= gap_max);
    let t0 = Instant::now();

    let (graph, keys) = chaos_graph(seed);
    assert_eq!(keys.len(), TASKS);
    let graph = Arc::new(graph);
    let expected = rask::local::compute_keys(&graph, &keys, &Registry::new(), &Default::default())
        .expect("the graph computes locally")
        .values;

    // A random kill may catch an innocent task on several dying workers:
    // the chaos test turns the give-up (allowed failures) off. The removal
    // of workers named in missing-data reports stays on (the default, 3
    // failed connections within a minute): reports say why a fetch failed,
    // and one failed connection counts once, so this churn must not remove
    // live workers (see the end of the test).
    let scheduler = Proc::spawn_with(
        env!("CARGO_BIN_EXE_rask-scheduler"),
        &["--port", "0", "--allowed-failures", "0"],
        &[],
        "error",
        Stdio::inherit(),
    );
    let address = scheduler.address_after("listening on");
    let mut started = 0;
    let mut start_worker = || {
        started += 1;
        let name = format!("chaos-{started}");
        let w = Proc::spawn_with(
            env!("CARGO_BIN_EXE_rask-worker"),
            &[&address, "--nthreads", "1", "--name", &name],
            &[],
            "error",
            Stdio::inherit(),
        );
        let data = w.address_after("serving data on");
        (w, data)
    };
    let mut workers: Vec<(Proc, String)> = (0..3).map(|_| start_worker()).collect();
    let client = Client::connect(&address, ClientConfig::default()).unwrap();
    client.wait_for_workers(3, Duration::from_secs(20)).unwrap();

    let t_submit = Instant::now();
    let futures = client.compute(&graph, &keys).unwrap();
    let mut rng = Rng(seed ^ 0x5eed);
    let mut lost = 0usize;
    for _ in 0..kills {
        let pause = gap_min + rng.below((gap_max - gap_min + 1) as usize) as u64;
        std::thread::sleep(Duration::from_millis(pause));
        let victim = rng.below(workers.len());
        // Keys only the victim holds are lost with it (and, all being
        // wanted, recomputed).
        let who = client.who_has(&futures).unwrap();
        let data = &workers[victim].1;
        lost += who
            .values()
            .filter(|ws| ws.len() == 1 && &ws[0] == data)
            .count();
        let (mut w, _) = workers.swap_remove(victim);
        w.child.kill().unwrap();
        w.child.wait().unwrap();
        workers.push(start_worker());
    }
    let t_kills = t_submit.elapsed();

    // Every result, as the client sees it (values small enough travel
    // with key-in-memory, so this may not wait for recomputations)...
    let got = client.gather(&futures).unwrap();
    let t_done = t_submit.elapsed();
    let wrong: Vec<_> = (0..TASKS).filter(|&i| got[i] != expected[i]).collect();
    assert!(
        wrong.is_empty(),
        "{} wrong results, first {}: got {:?}, expected {:?}",
        wrong.len(),
        keys[wrong[0]],
        got[wrong[0]],
        expected[wrong[0]]
    );
    // ... and as the workers hold it now: checksums of 100 keys each,
    // computed on the workers from their (recomputed) data.
    let chunks: Vec<&[Future]> = futures.chunks(100).collect();
    let sums = client
        .map(
            "add",
            chunks
                .iter()
                .map(|c| c.iter().map(ClientArg::from).collect())
                .collect(),
        )
        .unwrap();
    let sums = client.gather(&sums).unwrap();
    for (i, s) in sums.iter().enumerate() {
        let want: i64 = expected[i * 100..(i + 1) * 100]
            .iter()
            .map(|v| v.as_i64().unwrap())
            .sum();
        assert_eq!(s, &Value::Int(want), "checksum of chunk {i}");
    }
    let t_checked = t_submit.elapsed();
    // The three live workers are all still there: none was removed as
    // unreachable by the missing-data reports the kills caused.
    let ws = client.workers().unwrap();
    assert_eq!(ws.len(), 3, "{ws:?}");
    let by_addr: HashMap<String, usize> = client
        .who_has(&futures)
        .unwrap()
        .values()
        .flat_map(|ws| ws.iter().cloned())
        .fold(HashMap::new(), |mut m, a| {
            *m.entry(a).or_default() += 1;
            m
        });
    println!(
        "chaos: seed {seed}, {TASKS} tasks, {kills} kills ({started} workers started), \
         {lost} finished keys lost with killed workers and recomputed; \
         kills over {:.2} s, all results at the client after {:.2} s, \
         worker-side checksums after {:.2} s, whole test {:.2} s; \
         keys now held per worker: {:?}",
        t_kills.as_secs_f64(),
        t_done.as_secs_f64(),
        t_checked.as_secs_f64(),
        t0.elapsed().as_secs_f64(),
        by_addr.values().collect::<Vec<_>>()
    );
    drop(client);
    drop(workers);
    drop(scheduler);
}

/// Compiles tests/plugins/crash_plugin.c (`crash()` kills its worker).
fn crash_plugin() -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::temp_dir().join(format!("rask-chaos-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("libcrash.so");
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-I"])
        .arg(root.join("include"))
        .arg("-o")
        .arg(&out)
        .arg(root.join("tests/plugins/crash_plugin.c"))
        .status()
        .expect("running cc");
    assert!(status.success(), "cc failed on crash_plugin.c");
    out
}

#[test]
fn a_task_that_crashes_its_workers_errs_after_three_deaths() {
    // Two worker processes that can run `crash`, replaced as they die: the
    // crashing task kills three of them, then errs with a message saying
    // so (default allowed failures: 3); the cluster keeps serving.
    let plugin = crash_plugin();
    let plugin = plugin.to_str().unwrap();
    let scheduler = Proc::spawn_with(
        env!("CARGO_BIN_EXE_rask-scheduler"),
        &["--port", "0"],
        &[],
        "error",
        Stdio::inherit(),
    );
    let address = scheduler.address_after("listening on");
    let mut started = 0;
    let mut start_worker = || {
        started += 1;
        let name = format!("crashy-{started}");
        let w = Proc::spawn_with(
            env!("CARGO_BIN_EXE_rask-worker"),
            &[
                &address,
                "--nthreads",
                "1",
                "--name",
                &name,
                "--plugin",
                plugin,
            ],
            &[],
            "error",
            Stdio::inherit(),
        );
        // Not waiting for its "serving data on" line: a replacement can
        // be handed the crashing task and die before printing it.
        w
    };
    let mut workers = vec![start_worker(), start_worker()];
    // The workers that died (replaced in `workers`), to count the deaths.
    let mut dead: Vec<Proc> = Vec::new();
    let client = Client::connect(&address, ClientConfig::default()).unwrap();
    client.wait_for_workers(2, Duration::from_secs(20)).unwrap();
    let bad = client.submit("crash", vec![]).unwrap();
    let dependent = client.submit("inc", vec![(&bad).into()]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    // Replaces the dead workers; returns how many it replaced.
    let mut replace_dead = |workers: &mut Vec<Proc>, dead: &mut Vec<Proc>| {
        let mut n = 0;
        for w in workers.iter_mut() {
            if w.child.try_wait().unwrap().is_some() {
                n += 1;
                dead.push(std::mem::replace(w, start_worker()));
            }
        }
        n
    };
    while !bad.done() {
        assert!(
            Instant::now() < deadline,
            "{} deaths and no error",
            dead.len()
        );
        replace_dead(&mut workers, &mut dead);
        let _ = bad.result(Some(Duration::from_millis(10)));
    }
    // The deaths that gave the task up can come faster than the polling
    // above (on a loaded machine, both workers may die between two looks),
    // and a killed process may be reaped a moment after the scheduler saw
    // its connection close: so wait for the third death, and replace every
    // dead worker, before asking the cluster for more work. (Stopping the
    // replacements as soon as the task erred could leave no live worker,
    // and `ok` below would wait for one forever.)
    let deadline = Instant::now() + Duration::from_secs(20);
    while dead.len() < 3 {
        assert!(
            Instant::now() < deadline,
            "the task erred, but only {} workers died",
            dead.len()
        );
        if replace_dead(&mut workers, &mut dead) == 0 {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    assert_eq!(dead.len(), 3, "a worker died after the task was given up");
    let e = bad.result(Some(Duration::ZERO)).unwrap_err();
    let t = e.task().unwrap_or_else(|| panic!("not a task error: {e}"));
    assert_eq!(t.func, "crash");
    assert!(
        t.message.contains("running on 3 workers that died"),
        "{}",
        t.message
    );
    let e = dependent.result(Some(Duration::from_secs(20))).unwrap_err();
    assert_eq!(e.task().unwrap().failed, bad.key());
    let ok = client.submit("inc", vec![41.into()]).unwrap();
    assert_eq!(
        ok.result(Some(Duration::from_secs(20))).unwrap(),
        Value::Int(42)
    );
    assert_eq!(
        replace_dead(&mut workers, &mut dead),
        0,
        "a worker died after the task was given up"
    );
    drop(workers);
    drop(scheduler);
}

#[test]
fn gathers_racing_with_killed_workers_get_every_value() {
    // Results too big to travel with key-in-memory (lists of 600 ints), so
    // every gather fetches them from the workers, while workers are killed
    // and replaced under it: a fetch from a dead worker finds the value
    // elsewhere or waits for it to be recomputed.
    let kills: usize = env_or("RASK_CHAOS_KILLS", 3);
    let seed: u64 = env_or("RASK_CHAOS_SEED", 1);
    let scheduler = Proc::spawn_with(
        env!("CARGO_BIN_EXE_rask-scheduler"),
        &["--port", "0", "--allowed-failures", "0"],
        &[],
        "error",
        Stdio::inherit(),
    );
    let address = scheduler.address_after("listening on");
    let spawn = {
        let address = address.clone();
        move |n: usize| {
            let w = Proc::spawn_with(
                env!("CARGO_BIN_EXE_rask-worker"),
                &[&address, "--nthreads", "1", "--name", &format!("g-{n}")],
                &[],
                "error",
                Stdio::inherit(),
            );
            w.address_after("serving data on");
            w
        }
    };
    let mut workers: Vec<Proc> = (0..3).map(&spawn).collect();
    let client = Client::connect(&address, ClientConfig::default()).unwrap();
    client.wait_for_workers(3, Duration::from_secs(20)).unwrap();
    let big = client
        .map(
            "list",
            (0..60)
                .map(|i| (0..600).map(|j| ClientArg::from(1000 * i + j)).collect())
                .collect(),
        )
        .unwrap();
    let check = |vals: Vec<Value>| {
        for (i, v) in vals.iter().enumerate() {
            let a = v.as_array().unwrap();
            assert_eq!(a.len(), 600);
            assert_eq!(a[599], Value::Int(1000 * i as i64 + 599));
        }
    };
    check(client.gather(&big).unwrap());
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let killer = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut rng = Rng(seed ^ 0xdead);
            for k in 0..kills {
                std::thread::sleep(Duration::from_millis(20 + rng.below(100) as u64));
                let victim = rng.below(workers.len());
                let mut w = workers.swap_remove(victim);
                w.child.kill().unwrap();
                w.child.wait().unwrap();
                workers.push(spawn(3 + k));
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            workers
        })
    };
    let mut rounds = 0;
    while !done.load(std::sync::atomic::Ordering::SeqCst) {
        check(client.gather(&big).unwrap());
        rounds += 1;
    }
    let workers = killer.join().unwrap();
    check(client.gather(&big).unwrap());
    println!("gathers racing with {kills} kills: {rounds} full gathers, all right");
    // No live worker was removed as unreachable along the way (a removed
    // one is told to close and stops): once the last kill's disconnect and
    // its replacement's registration are seen, three workers remain.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut ws = client.workers().unwrap();
    while ws.len() != 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        ws = client.workers().unwrap();
    }
    assert_eq!(ws.len(), 3, "{ws:?}");
    drop(client);
    drop(workers);
    drop(scheduler);
}

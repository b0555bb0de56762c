//! Worker memory management on real processes (`rask-scheduler`,
//! `rask-worker`) and in-process workers: results larger than the workers'
//! memory spill to disk and come back intact while each worker's peak RSS
//! stays near its limit; a worker over its pause fraction gets no task
//! until it resumes; a spilled value is served to a peer and to a client;
//! a killed worker's spill files are removed by the next worker started in
//! the same local directory, and a worker that exits removes its own.

use rask::client::{Client, ClientArg, ClientConfig, Future};
use rask::worker::{MemoryPolicy, Worker, WorkerConfig};
use rask::{Registry, Value};
use std::path::Path;
use std::time::{Duration, Instant};

mod procs;
use procs::{temp_dir, Proc};

const MB: u64 = 1_000_000;

/// Polls `f` until it holds, for at most 60 s.
fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `n` bytes of xorshift noise (incompressible: spill files are written
/// raw, as most numeric data would be).
fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn scheduler() -> (Proc, String) {
    let s = Proc::spawn(env!("CARGO_BIN_EXE_rask-scheduler"), &["--port", "0"]);
    let a = s.address_after("listening on");
    (s, a)
}

fn worker(scheduler: &str, args: &[&str]) -> Proc {
    let mut all = vec![scheduler, "--nthreads", "1"];
    all.extend_from_slice(args);
    let w = Proc::spawn(env!("CARGO_BIN_EXE_rask-worker"), &all);
    w.line_with("serving data on");
    w
}

/// The worker directories under `local`'s spill space.
fn spill_dirs(local: &Path) -> Vec<std::path::PathBuf> {
    match std::fs::read_dir(local.join(rask::worker::spill::SPACE)) {
        Ok(d) => d.flatten().map(|e| e.path()).collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn results_larger_than_the_workers_memory_spill_and_come_back_intact() {
    // 2 workers limited to 500 MB each; 52 results of 40 MB (2.08 GB).
    const LIMIT: u64 = 500 * MB;
    const SEED: usize = 1 << 20;
    const REPEAT: usize = 40;
    const N: usize = 52;
    let local = temp_dir("memory-big");
    let (_s, address) = scheduler();
    let ws: Vec<Proc> = (0..2)
        .map(|_| {
            worker(
                &address,
                &[
                    "--memory-limit",
                    "500MB",
                    "--local-directory",
                    local.to_str().unwrap(),
                ],
            )
        })
        .collect();
    let client = Client::connect(&address, ClientConfig::default()).unwrap();
    client.wait_for_workers(2, Duration::from_secs(20)).unwrap();
    let seed = noise(7, SEED);
    let x = client
        .scatter(vec![Value::Bin(seed.clone().into())], false)
        .unwrap()
        .remove(0);
    // result i = 8 bytes of i, then the seed REPEAT times.
    let futures: Vec<Future> = (0..N as u64)
        .map(|i| {
            let mut args: Vec<ClientArg> = vec![Value::Bin(i.to_le_bytes().to_vec().into()).into()];
            args.extend((0..REPEAT).map(|_| ClientArg::Future(x.clone())));
            client.submit("add", args).unwrap()
        })
        .collect();
    for f in &futures {
        assert!(
            f.wait(Some(Duration::from_secs(300))),
            "{} did not finish",
            f.key()
        );
    }
    let info = client.scheduler_info().unwrap();
    assert_eq!(info.states.get("memory").copied(), Some(N as u64 + 1));
    assert!(
        info.spilled > 1_000 * MB,
        "the workers report spilled data: {info:?}"
    );
    assert!(info.managed <= 2 * LIMIT * 6 / 10 + 2 * MB, "{info:?}");
    assert_eq!(info.memory_limit, 2 * LIMIT);
    assert!(!spill_dirs(&local).is_empty());
    // Every value, gathered one at a time (most from disk), is right.
    for (i, f) in futures.iter().enumerate() {
        let v = client.gather(std::slice::from_ref(f)).unwrap().remove(0);
        let Value::Bin(b) = v else {
            panic!("result {i} is not bin")
        };
        assert_eq!(b.len(), 8 + SEED * REPEAT, "length of result {i}");
        assert_eq!(&b[..8], &(i as u64).to_le_bytes(), "tag of result {i}");
        for r in 0..REPEAT {
            let part = &b[8 + r * SEED..8 + (r + 1) * SEED];
            assert!(part == &seed[..], "result {i}, copy {r} differs");
        }
    }
    for (i, w) in ws.iter().enumerate() {
        let (_, peak) = w.memory();
        assert!(
            peak <= LIMIT * 5 / 4,
            "worker {i}: peak RSS {} MB over 1.25 × its 500 MB limit",
            peak / MB
        );
    }
    drop(futures);
    drop(x);
    // Freed values' spill files go with them.
    until("the spill files to be deleted", || {
        spill_dirs(&local)
            .iter()
            .map(|d| std::fs::read_dir(d).map(|r| r.count()).unwrap_or(0))
            .sum::<usize>()
            == 2 // just the two lock files
    });
    let _ = std::fs::remove_dir_all(&local);
}

#[test]
fn a_worker_over_its_pause_fraction_gets_no_task_until_it_resumes() {
    let local = temp_dir("memory-pause");
    let (_s, address) = scheduler();
    let _w = worker(
        &address,
        &[
            "--memory-limit",
            "200MB",
            "--memory-target-fraction",
            "false",
            "--memory-spill-fraction",
            "false",
            "--memory-terminate-fraction",
            "false",
            "--local-directory",
            local.to_str().unwrap(),
        ],
    );
    let client = Client::connect(&address, ClientConfig::default()).unwrap();
    client.wait_for_workers(1, Duration::from_secs(20)).unwrap();
    // 180 MB held in memory: the process passes 0.8 × 200 MB.
    let big = client
        .scatter(vec![Value::Bin(noise(3, 180 * MB as usize).into())], false)
        .unwrap()
        .remove(0);
    until("the worker to pause", || {
        client.scheduler_info().unwrap().paused == 1
    });
    let workers = client.workers().unwrap();
    assert!(
        workers[0].paused && workers[0].process > 160 * MB,
        "{workers:?}"
    );
    let f = client.submit("inc", vec![1.into()]).unwrap();
    until("the task to be queued", || {
        let i = client.scheduler_info().unwrap();
        i.tasks == 2
    });
    let i = client.scheduler_info().unwrap();
    assert_eq!(i.states.get("processing").copied().unwrap_or(0), 0, "{i:?}");
    assert!(!f.wait(Some(Duration::ZERO)));
    // Freeing the data brings the process back under: it resumes and runs
    // the task.
    drop(big);
    assert_eq!(
        f.result(Some(Duration::from_secs(60))).unwrap(),
        Value::Int(2)
    );
    assert_eq!(client.scheduler_info().unwrap().paused, 0);
    let _ = std::fs::remove_dir_all(&local);
}

#[test]
fn a_spilled_value_is_served_to_a_peer_and_to_a_client() {
    let local = temp_dir("memory-peer");
    let (_s, address) = scheduler();
    // Two workers in this process; A makes the value, only B can read it.
    // Spilling by target only: this test process's RSS must not matter.
    let config = |name: &str| WorkerConfig {
        name: name.into(),
        threads: 1,
        memory_limit: 10 * MB,
        memory_policy: MemoryPolicy {
            target: Some(0.6),
            spill: None,
            pause: None,
            terminate: None,
        },
        local_directory: Some(local.clone()),
        ..WorkerConfig::new(address.clone())
    };
    let mut ra = Registry::new();
    ra.register("make_on_a", |a| {
        let n = a[0].as_i64().unwrap() as usize;
        Ok(Value::Bin(noise(11, n).into()))
    })
    .unwrap();
    let mut rb = Registry::new();
    rb.register("check_on_b", |a| match &a[0] {
        Value::Bin(b) => Ok(Value::from(b[..] == noise(11, b.len())[..])),
        other => Err(format!("not bin: {}", other.kind_name())),
    })
    .unwrap();
    let a = Worker::start(config("a"), ra).unwrap();
    let b = Worker::start(config("b"), rb).unwrap();
    let client = Client::connect(&address, ClientConfig::default()).unwrap();
    client.wait_for_workers(2, Duration::from_secs(20)).unwrap();
    // 8 MB: over A's 6 MB target, so it goes to disk as it is stored.
    let v = client
        .submit("make_on_a", vec![(8 * MB as i64).into()])
        .unwrap();
    v.result(Some(Duration::from_secs(60))).unwrap();
    assert!(a.is_spilled(v.key()), "the value is on A's disk");
    let dir = a.spill_directory().unwrap();
    assert!(dir.starts_with(&local));
    let checked = client
        .submit("check_on_b", vec![ClientArg::Future(v.clone())])
        .unwrap();
    assert_eq!(
        checked.result(Some(Duration::from_secs(60))).unwrap(),
        Value::Bool(true),
        "B fetched A's spilled value intact"
    );
    assert!(a.stats().spill.unspilled >= 1);
    // B keeps its copy over its target too: on its disk.
    assert!(b.is_spilled(v.key()));
    let got = client.gather(std::slice::from_ref(&v)).unwrap().remove(0);
    assert_eq!(got, Value::Bin(noise(11, 8 * MB as usize).into()));
    // Both copies count as spilled once the heartbeats tell.
    until("the heartbeats to report both spilled copies", || {
        client.scheduler_info().unwrap().spilled >= 2 * 8 * MB
    });
    a.stop();
    assert!(
        !dir.exists(),
        "a stopped worker removes its spill directory"
    );
    b.stop();
    assert!(spill_dirs(&local).is_empty());
    let _ = std::fs::remove_dir_all(&local);
}

#[test]
fn a_killed_workers_spill_files_are_removed_by_the_next_worker() {
    let local = temp_dir("memory-killed");
    let (_s, address) = scheduler();
    let args = [
        "--memory-limit",
        "20MB",
        "--memory-spill-fraction",
        "false",
        "--memory-pause-fraction",
        "false",
        "--memory-terminate-fraction",
        "false",
        "--local-directory",
        local.to_str().unwrap(),
    ];
    let mut victim = worker(&address, &args);
    let client = Client::connect(&address, ClientConfig::default()).unwrap();
    client.wait_for_workers(1, Duration::from_secs(20)).unwrap();
    let _big = client
        .scatter(vec![Value::Bin(noise(5, 16 * MB as usize).into())], false)
        .unwrap();
    let dirs = spill_dirs(&local);
    assert_eq!(dirs.len(), 1);
    until("the value to be spilled", || {
        std::fs::read_dir(&dirs[0]).unwrap().count() == 2 // lock + value
    });
    victim.signal("-KILL");
    victim.wait_exit(Duration::from_secs(10));
    assert!(dirs[0].exists(), "a killed worker cannot clean up");
    let mut next = worker(&address, &args);
    assert!(!dirs[0].exists(), "the next worker removed it");
    assert_eq!(spill_dirs(&local).len(), 1, "only the new worker's own");
    next.signal("-TERM");
    assert!(next.wait_exit(Duration::from_secs(30)).success());
    assert!(
        spill_dirs(&local).is_empty(),
        "a worker that exits removes its spill directory"
    );
    let _ = std::fs::remove_dir_all(&local);
}

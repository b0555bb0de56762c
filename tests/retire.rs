//! Graceful retirement on real processes: the `rask-scheduler` binary and
//! three `rask-worker` processes. A worker holding results leaves, by
//! SIGTERM or by a client's `retire_workers`; it exits 0, every result is
//! still gathered with the right value, and no task ran twice: the task
//! function (tests/plugins/count_plugin.c) appends a line per run to a
//! file this test reads.

use rask::client::{Client, ClientConfig, Future};
use rask::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

mod procs;
use procs::{count_plugin, temp_dir, Proc};

/// What `counted(x, _)` returns.
fn expected(x: i64) -> Value {
    let bytes: Vec<u8> = (0..2048u64).map(|i| (x as u64 + i) as u8).collect();
    Value::Bin(bytes.into())
}

/// How many times each x ran, from the count file.
fn runs(file: &Path) -> BTreeMap<i64, usize> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let mut m = BTreeMap::new();
    for l in text.lines() {
        *m.entry(l.trim().parse::<i64>().unwrap()).or_default() += 1;
    }
    m
}

struct Cluster {
    dir: PathBuf,
    count_file: PathBuf,
    scheduler: Proc,
    address: String,
    /// (process, data address)
    workers: Vec<(Proc, String)>,
}

fn cluster(tag: &str) -> Cluster {
    let dir = temp_dir(&format!("retire-{tag}"));
    let plugin = count_plugin(&dir);
    let count_file = dir.join("runs");
    let scheduler = Proc::spawn(env!("CARGO_BIN_EXE_rask-scheduler"), &["--port", "0"]);
    let address = scheduler.address_after("listening on");
    let workers = (0..3)
        .map(|i| {
            let p = Proc::spawn_with(
                env!("CARGO_BIN_EXE_rask-worker"),
                &[
                    &address,
                    "--nthreads",
                    "1",
                    "--name",
                    &format!("w{i}"),
                    "--plugin",
                    plugin.to_str().unwrap(),
                ],
                &[("RASK_COUNT_FILE", &count_file)],
                "warn",
                Stdio::inherit(),
            );
            let a = p.address_after("serving data on");
            (p, a)
        })
        .collect();
    Cluster {
        dir,
        count_file,
        scheduler,
        address,
        workers,
    }
}

/// Submits `counted(x, ms)` for each x.
fn submit(client: &Client, xs: impl Iterator<Item = i64>, ms: i64) -> Vec<(i64, Future)> {
    xs.map(|x| {
        (
            x,
            client.submit("counted", vec![x.into(), ms.into()]).unwrap(),
        )
    })
    .collect()
}

/// Waits for every future, then returns the worker (index) holding the
/// most keys and those keys.
fn busiest(c: &Cluster, client: &Client, fs: &[(i64, Future)]) -> (usize, Vec<String>) {
    for (_, f) in fs {
        f.result(Some(Duration::from_secs(60))).unwrap();
    }
    let futures: Vec<Future> = fs.iter().map(|(_, f)| f.clone()).collect();
    let who = client.who_has(&futures).unwrap();
    let mut held: Vec<Vec<String>> = vec![Vec::new(); c.workers.len()];
    for (k, hs) in who {
        for h in hs {
            if let Some(i) = c.workers.iter().position(|(_, a)| *a == h) {
                held[i].push(k.clone());
            }
        }
    }
    let i = (0..held.len()).max_by_key(|&i| held[i].len()).unwrap();
    held[i].sort();
    (i, held[i].clone())
}

/// Gathers everything and checks every value, and that each x ran once.
fn check_all(c: &Cluster, client: &Client, fs: &[(i64, Future)]) {
    let futures: Vec<Future> = fs.iter().map(|(_, f)| f.clone()).collect();
    let values = client.gather(&futures).unwrap();
    for ((x, _), v) in fs.iter().zip(&values) {
        assert_eq!(v, &expected(*x), "the value of counted({x})");
    }
    let runs = runs(&c.count_file);
    let xs: Vec<i64> = fs.iter().map(|(x, _)| *x).collect();
    for x in &xs {
        assert_eq!(
            runs.get(x),
            Some(&1),
            "counted({x}) ran {:?} times",
            runs.get(x)
        );
    }
    assert_eq!(runs.len(), xs.len(), "runs of unknown tasks: {runs:?}");
}

fn wait_until_gone(client: &Client, address: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while client
        .workers()
        .unwrap()
        .iter()
        .any(|w| w.address == address)
    {
        assert!(Instant::now() < deadline, "{address} is still listed");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_retires_a_worker_without_recomputing_anything() {
    let mut c = cluster("sigterm");
    let client = Client::connect(&c.address, ClientConfig::default()).unwrap();
    client.wait_for_workers(3, Duration::from_secs(20)).unwrap();
    let mut fs = submit(&client, 0..30, 0);
    let (victim, keys) = busiest(&c, &client, &fs);
    assert!(!keys.is_empty());
    // Slow tasks: some are running on the victim when it gets SIGTERM,
    // some queued there; running ones finish, queued ones are handed back.
    fs.extend(submit(&client, 100..106, 200));
    c.workers[victim].0.signal("-TERM");
    let status = c.workers[victim].0.wait_exit(Duration::from_secs(60));
    assert!(status.success(), "the retired worker exited with {status}");
    let gone = c.workers[victim].1.clone();
    wait_until_gone(&client, &gone);
    // Every key it held now lives on another worker.
    let held: Vec<Future> = fs
        .iter()
        .filter(|(_, f)| keys.contains(&f.key().to_string()))
        .map(|(_, f)| f.clone())
        .collect();
    for (k, hs) in client.who_has(&held).unwrap() {
        assert!(
            !hs.is_empty() && !hs.contains(&gone),
            "{k} is held by {hs:?}"
        );
    }
    check_all(&c, &client, &fs);
    drop(client);
    let _ = std::fs::remove_dir_all(&c.dir);
    let _ = &c.scheduler;
}

#[test]
fn a_client_retires_a_worker_and_learns_what_moved() {
    let mut c = cluster("client");
    let client = Client::connect(&c.address, ClientConfig::default()).unwrap();
    client.wait_for_workers(3, Duration::from_secs(20)).unwrap();
    let fs = submit(&client, 0..30, 0);
    let (victim, keys) = busiest(&c, &client, &fs);
    let gone = c.workers[victim].1.clone();
    let e = client
        .retire_workers(&["tcp://127.0.0.1:1"], Some(Duration::from_secs(10)))
        .unwrap_err();
    assert!(e.to_string().contains("unknown-worker"), "{e}");
    let report = client
        .retire_workers(&[gone.as_str()], Some(Duration::from_secs(60)))
        .unwrap();
    assert_eq!(report.workers, vec![gone.clone()]);
    assert!(report.lost.is_empty(), "lost: {:?}", report.lost);
    let moved: Vec<String> = report.moved.keys().cloned().collect();
    assert_eq!(moved, keys, "every key it held was moved");
    for (k, to) in &report.moved {
        assert_ne!(to, &gone, "{k}");
        assert!(c.workers.iter().any(|(_, a)| a == to), "{k} moved to {to}");
    }
    let status = c.workers[victim].0.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "the retired worker exited with {status}");
    assert!(client.workers().unwrap().iter().all(|w| w.address != gone));
    check_all(&c, &client, &fs);
    drop(client);
    let _ = std::fs::remove_dir_all(&c.dir);
}

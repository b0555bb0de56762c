//! The scheduler goes away and comes back, on real processes: a
//! `rask-scheduler` on a fixed port, a `rask-worker`, and a Rust client.
//! When the scheduler is killed, the client's pending calls fail at once
//! with a lost connection (not a timeout) and new calls fail the same way;
//! when a scheduler listens on that port again, the worker registers again
//! and the client reconnects and computes. A worker whose scheduler never
//! returns exits non-zero after its reconnect timeout.

use rask::client::{Client, ClientConfig, ClientError};
use rask::Value;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod procs;
use procs::{count_plugin, temp_dir, Proc};

/// A rask-scheduler on `port` (0: a free one, picked by the scheduler
/// itself, never freed and reused by the test), and the port it listens on.
/// A restart passes the port of the scheduler that was killed.
fn scheduler(port: u16) -> (Proc, u16) {
    let p = Proc::spawn_with(
        env!("CARGO_BIN_EXE_rask-scheduler"),
        &["--port", &port.to_string()],
        &[],
        "warn",
        Stdio::inherit(),
    );
    let address = p.address_after("listening on");
    let port = address.rsplit(':').next().unwrap().parse().unwrap();
    (p, port)
}

fn is_lost(e: &ClientError) -> bool {
    matches!(e, ClientError::ConnectionClosed(m)
        if m.contains("connection to the scheduler at") && m.contains(" lost: "))
}

#[test]
fn a_killed_scheduler_fails_pending_calls_at_once_and_everyone_reconnects_when_it_returns() {
    let dir = temp_dir("reconnect-returns");
    let plugin = count_plugin(&dir);
    let (mut sched, port) = scheduler(0);
    let address = format!("tcp://127.0.0.1:{port}");
    let worker = Proc::spawn_with(
        env!("CARGO_BIN_EXE_rask-worker"),
        &[
            &address,
            "--nthreads",
            "1",
            "--name",
            "survivor",
            "--reconnect-timeout",
            "60",
            "--plugin",
            plugin.to_str().unwrap(),
        ],
        &[("RASK_COUNT_FILE", &dir.join("runs"))],
        "warn",
        Stdio::inherit(),
    );
    worker.line_with("serving data on");
    // A request timeout far above the deadlines below: a call that waited
    // for it would be a Timeout, not a lost connection.
    let config = ClientConfig {
        timeout: Duration::from_secs(120),
        ..ClientConfig::default()
    };
    let client = Client::connect(&address, config).unwrap();
    client.wait_for_workers(1, Duration::from_secs(20)).unwrap();
    assert_eq!(
        client.submit("inc", vec![1.into()]).unwrap().result(None),
        Ok(Value::Int(2))
    );
    // A task running for 10 s on the worker; the scheduler dies under it.
    let slow = client
        .submit("counted", vec![1.into(), 10_000.into()])
        .unwrap();
    let waiter = std::thread::spawn({
        let slow = slow.clone();
        move || slow.result(Some(Duration::from_secs(30)))
    });
    // The plugin logs each run in the run-count file: the task has started.
    let runs = dir.join("runs");
    let read_runs = || std::fs::read_to_string(&runs).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(30);
    while read_runs().is_empty() {
        assert!(Instant::now() < deadline, "the slow task never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(read_runs(), "1\n");
    sched.child.kill().unwrap();
    sched.child.wait().unwrap();
    let e = waiter.join().unwrap().unwrap_err();
    assert!(is_lost(&e), "the pending result: {e:?}");
    let e = client.submit("inc", vec![2.into()]).unwrap_err();
    assert!(is_lost(&e), "a new submit: {e:?}");
    assert!(is_lost(&client.workers().unwrap_err()));
    assert!(client.closed_reason().is_some());

    // The scheduler returns on the same port: the worker registers again
    // (the new scheduler lists it) and the client reconnects.
    let _sched = scheduler(port).0;
    let deadline = Instant::now() + Duration::from_secs(30);
    let workers = loop {
        match client.workers() {
            Ok(ws) if !ws.is_empty() => break ws,
            Ok(_) => {}
            Err(e) => assert!(is_lost(&e), "while reconnecting: {e:?}"),
        }
        assert!(
            Instant::now() < deadline,
            "the client or the worker did not come back"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(workers.len(), 1);
    assert_eq!(workers[0].name, "survivor");
    assert!(client.closed_reason().is_none());
    // The future from before stays erred; new work computes.
    let e = slow.result(Some(Duration::ZERO)).unwrap_err();
    assert!(
        matches!(&e, ClientError::ConnectionClosed(m) if m.contains("lost with the scheduler connection")),
        "{e:?}"
    );
    let mut g = rask::Graph::new();
    g.add_value("a", 1).unwrap();
    g.add_value("x", 10).unwrap();
    let (ra, rx) = (g.r("a").unwrap(), g.r("x").unwrap());
    g.add_task("b", "inc", vec![ra]).unwrap();
    g.add_task("y", "inc", vec![rx]).unwrap();
    let (rb, ry) = (g.r("b").unwrap(), g.r("y").unwrap());
    g.add_task("z", "add", vec![rb, ry]).unwrap();
    let z = client.compute(&g, &["z"]).unwrap();
    assert_eq!(
        z[0].result(Some(Duration::from_secs(30))),
        Ok(Value::Int(13))
    );
    // A key submitted before the loss is a new task now.
    let again = client.submit("counted", vec![1.into(), 0.into()]).unwrap();
    assert!(again.result(Some(Duration::from_secs(30))).is_ok());
    // Two runs in all: the one the old scheduler started, and this one. The
    // reconnected worker did not run the old task again.
    assert_eq!(read_runs(), "1\n1\n");
    drop(worker);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_worker_whose_scheduler_never_returns_exits_non_zero_after_its_reconnect_timeout() {
    let (mut sched, port) = scheduler(0);
    let address = format!("tcp://127.0.0.1:{port}");
    let mut worker = Proc::spawn_with(
        env!("CARGO_BIN_EXE_rask-worker"),
        &[&address, "--reconnect-timeout", "1"],
        &[],
        "warn",
        Stdio::piped(),
    );
    worker.line_with("serving data on");
    sched.child.kill().unwrap();
    sched.child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = worker.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the worker is still running");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(1));
    let mut err = String::new();
    worker
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        err.contains(&format!("lost the scheduler at {address}"))
            && err.contains("reconnecting for up to 1 s")
            && err.contains("could not reconnect within 1 s"),
        "{err}"
    );
}

#[test]
fn sigterm_while_reconnecting_stops_the_worker_cleanly() {
    let (mut sched, port) = scheduler(0);
    let address = format!("tcp://127.0.0.1:{port}");
    let mut worker = Proc::spawn_with(
        env!("CARGO_BIN_EXE_rask-worker"),
        &[&address, "--reconnect-timeout", "600"],
        &[],
        "warn",
        Stdio::piped(),
    );
    worker.line_with("serving data on");
    let err = worker.child.stderr.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    sched.child.kill().unwrap();
    sched.child.wait().unwrap();
    // Once it says it is reconnecting, SIGTERM: nothing to move for a
    // scheduler that is gone, so it stops at once, cleanly.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let l = lines.recv_timeout(left).expect("a 'reconnecting' line");
        if l.contains("reconnecting for up to 600 s") {
            break;
        }
    }
    let ok = Command::new("kill")
        .args(["-TERM", &worker.child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = worker.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the worker is still running");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
}

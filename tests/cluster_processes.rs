//! A cluster of separate processes: the `rask-scheduler` binary and two
//! `rask-worker` binaries, driven by the Rust client over loopback. Then one
//! worker is killed, and the scheduler must keep serving with the other.

use rask::client::{Client, ClientArg, ClientConfig};
use rask::value::DType;
use rask::{Graph, Tensor, Value};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod procs;
use procs::{address_in, stderr_until_ready, Proc};

const T: Option<Duration> = Some(Duration::from_secs(30));

fn classic() -> Graph {
    let mut g = Graph::new();
    g.add_value("a", 1).unwrap();
    g.add_value("x", 10).unwrap();
    let a = g.r("a").unwrap();
    g.add_task("b", "inc", vec![a]).unwrap();
    let x = g.r("x").unwrap();
    g.add_task("y", "inc", vec![x]).unwrap();
    let (b, y) = (g.r("b").unwrap(), g.r("y").unwrap());
    g.add_task("z", "add", vec![b, y]).unwrap();
    g
}

#[test]
fn scheduler_and_workers_as_processes_survive_a_killed_worker() {
    let scheduler = Proc::spawn(env!("CARGO_BIN_EXE_rask-scheduler"), &["--port", "0"]);
    let address = address_in(&scheduler.line_with("listening on"));
    let worker = |name: &str| {
        let w = Proc::spawn(
            env!("CARGO_BIN_EXE_rask-worker"),
            &[&address, "--nthreads", "1", "--name", name],
        );
        let data = address_in(&w.line_with("serving data on"));
        (w, data)
    };
    let (w1, w1_data) = worker("w1");
    let (mut w2, w2_data) = worker("w2");
    assert_ne!(w1_data, w2_data);

    let client = Client::connect(&address, ClientConfig::default()).unwrap();
    let ws = client.wait_for_workers(2, Duration::from_secs(20)).unwrap();
    let mut names: Vec<_> = ws.iter().map(|w| w.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["w1", "w2"]);

    let z = client.compute(&classic(), &["z"]).unwrap();
    assert_eq!(z[0].result(T).unwrap(), Value::Int(13));
    let fs = client
        .map("inc", (0..200).map(|i| vec![ClientArg::from(i)]).collect())
        .unwrap();
    assert_eq!(
        client.gather(&fs).unwrap(),
        (1..=200).map(Value::Int).collect::<Vec<_>>()
    );
    // Data that must be fetched from a worker process, byte for byte.
    let n = 4 << 20;
    let data: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
    let t = Tensor::new(DType::U8, vec![n], bytes::Bytes::from(data.clone())).unwrap();
    let sc = client.scatter(vec![Value::Tensor(t)], false).unwrap();
    let back = client.gather(&sc).unwrap();
    assert!(back[0].as_tensor().unwrap().data().as_ref() == &data[..]);
    let len = client.submit("len", vec![(&sc[0]).into()]).unwrap();
    assert_eq!(len.result(T).unwrap(), Value::Int(n as i64));

    // Results too big to travel inline, spread over both workers.
    let big: Vec<_> = client
        .map(
            "list",
            (0..20)
                .map(|i| (0..600).map(|j| ClientArg::from(1000 * i + j)).collect())
                .collect(),
        )
        .unwrap();
    client.wait(&big, rask::client::WaitMode::All, T);
    let on_w2 = client
        .who_has(&big)
        .unwrap()
        .values()
        .filter(|ws| ws.contains(&w2_data))
        .count();
    assert!(on_w2 > 0, "no result landed on w2");

    // Kill one worker: the scheduler notices and keeps serving.
    w2.child.kill().unwrap();
    w2.child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ws = client.workers().unwrap();
        if ws.len() == 1 {
            assert_eq!(ws[0].address, w1_data);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the scheduler still lists {ws:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let more = client
        .map(
            "add",
            (0..100)
                .map(|i| vec![ClientArg::from(i), 1000.into()])
                .collect(),
        )
        .unwrap();
    assert_eq!(
        client.gather(&more).unwrap(),
        (1000..1100).map(Value::Int).collect::<Vec<_>>()
    );
    // What was only on the killed worker is computed again.
    let vals = client.gather(&big).unwrap();
    for (i, v) in vals.iter().enumerate() {
        let a = v.as_array().unwrap();
        assert_eq!(a.len(), 600);
        assert_eq!(a[599], Value::Int(1000 * i as i64 + 599));
    }
    let g = client.compute(&classic(), &["y"]).unwrap();
    assert_eq!(g[0].result(T).unwrap(), Value::Int(11));
    // A second client is welcome too.
    let other = Client::connect(&address, ClientConfig::default()).unwrap();
    let f = other.submit("inc", vec![41.into()]).unwrap();
    assert_eq!(f.result(T).unwrap(), Value::Int(42));
    drop((w1, scheduler));
}

#[test]
fn listening_beyond_loopback_without_a_token_is_warned_about() {
    const WARNING: &str = "without an auth token";
    let scheduler = env!("CARGO_BIN_EXE_rask-scheduler");
    let worker = env!("CARGO_BIN_EXE_rask-worker");
    let dir = std::env::temp_dir().join(format!("rask-token-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let token_file = dir.join("token");
    std::fs::write(&token_file, "s3cret\n").unwrap();
    let token = token_file.to_str().unwrap();

    // The scheduler: on every interface without a token, warned; with a
    // token, or on loopback, not.
    let open = stderr_until_ready(
        scheduler,
        &["--host", "0.0.0.0", "--port", "0"],
        "listening on",
    );
    assert!(open.contains(WARNING), "no warning on stderr: {open:?}");
    assert!(open.contains("0.0.0.0"), "{open:?}");
    let with_token = stderr_until_ready(
        scheduler,
        &[
            "--host",
            "0.0.0.0",
            "--port",
            "0",
            "--auth-token-file",
            token,
        ],
        "listening on",
    );
    assert!(!with_token.contains(WARNING), "{with_token:?}");
    let local = stderr_until_ready(scheduler, &["--port", "0"], "listening on");
    assert!(!local.contains(WARNING), "{local:?}");

    // The worker's data port: the same, against a scheduler on loopback
    // (with the token when the worker has one).
    let s_open = Proc::spawn(scheduler, &["--port", "0"]);
    let open_addr = address_in(&s_open.line_with("listening on"));
    let open = stderr_until_ready(
        worker,
        &[&open_addr, "--host", "0.0.0.0", "--nthreads", "1"],
        "serving data on",
    );
    assert!(open.contains(WARNING), "no warning on stderr: {open:?}");
    assert!(open.contains("data port"), "{open:?}");
    let local = stderr_until_ready(worker, &[&open_addr, "--nthreads", "1"], "serving data on");
    assert!(!local.contains(WARNING), "{local:?}");
    let s_token = Proc::spawn(scheduler, &["--port", "0", "--auth-token-file", token]);
    let token_addr = address_in(&s_token.line_with("listening on"));
    let with_token = stderr_until_ready(
        worker,
        &[
            &token_addr,
            "--host",
            "0.0.0.0",
            "--nthreads",
            "1",
            "--auth-token-file",
            token,
        ],
        "serving data on",
    );
    assert!(!with_token.contains(WARNING), "{with_token:?}");
    drop((s_open, s_token));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A bug in the scheduler core (a panic, set off here by the test hook
/// `RASK_SCHEDULER_TEST_PANIC_ON_KEY`) ends the `rask-scheduler` process
/// with status 1 and says why, instead of leaving a process that listens
/// with a dead core; its clients and workers see the connection end.
#[test]
fn a_panic_in_the_scheduler_core_ends_the_process_with_an_error() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rask-scheduler"))
        .args(["--port", "0"])
        .env("RUST_LOG", "warn")
        .env("RASK_SCHEDULER_TEST_PANIC_ON_KEY", "boom")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(err), &mut s);
        s
    });
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("listening on") {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "no address");
    }
    let address = address_in(&line);
    let worker = Proc::spawn(
        env!("CARGO_BIN_EXE_rask-worker"),
        &[&address, "--nthreads", "1"],
    );
    worker.line_with("serving data on");
    let client = Client::connect(&address, ClientConfig::default()).unwrap();
    let ok = client.submit("inc", vec![1.into()]).unwrap();
    assert_eq!(ok.result(T).unwrap(), Value::Int(2));

    let opts = rask::client::SubmitOptions {
        key: Some("boom".into()),
        ..Default::default()
    };
    let f = client.submit_with("inc", vec![1.into()], &opts).unwrap();
    // The process ends by itself, with status 1.
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("rask-scheduler still runs 30 s after its core panicked");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(1), "{status:?}");
    let stderr = stderr.join().unwrap();
    assert!(
        stderr.contains("the scheduler core panicked")
            && stderr.contains("panic_on_key fired for 'boom'"),
        "{stderr}"
    );
    // The client's future fails instead of waiting for ever.
    assert!(f.result(T).is_err());
    drop(worker);
}

/// `RASK_VALIDATE=1`: the cores check their invariants after every step in
/// the real process. A broken one (set off here by the test hook
/// `RASK_SCHEDULER_TEST_BREAK_ON_KEY`, which miscounts the live tasks)
/// aborts `rask-scheduler` at once with the invariant's message, and the
/// test harness (`procs::assert_not_aborted`, run when a `Proc` is waited
/// for or dropped) fails a test on such an exit.
#[test]
fn with_rask_validate_a_broken_invariant_aborts_the_process_loudly() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rask-scheduler"))
        .args(["--port", "0"])
        .env("RUST_LOG", "warn")
        .env("RASK_VALIDATE", "1")
        .env("RASK_SCHEDULER_TEST_BREAK_ON_KEY", "broken")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(err), &mut s);
        s
    });
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("listening on") {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "no address");
    }
    let address = address_in(&line);
    let worker = Proc::spawn(
        env!("CARGO_BIN_EXE_rask-worker"),
        &[&address, "--nthreads", "1"],
    );
    worker.line_with("serving data on");
    let client = Client::connect(&address, ClientConfig::default()).unwrap();
    // Sound steps pass their checks.
    let ok = client.submit("inc", vec![1.into()]).unwrap();
    assert_eq!(ok.result(T).unwrap(), Value::Int(2));
    assert!(child.try_wait().unwrap().is_none());

    let opts = rask::client::SubmitOptions {
        key: Some("broken".into()),
        ..Default::default()
    };
    let f = client.submit_with("inc", vec![1.into()], &opts).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("rask-scheduler still runs 30 s after breaking an invariant");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(6), "not SIGABRT: {status:?}");
    let stderr = stderr.join().unwrap();
    assert!(
        stderr.contains("rask: RASK_VALIDATE: the scheduler core broke an invariant: live count"),
        "{stderr}"
    );
    // The harness turns such an exit into a failed test.
    let caught = std::panic::catch_unwind(|| procs::assert_not_aborted(status));
    assert!(caught.is_err());
    // And the client hears that its scheduler is gone.
    assert!(f.result(T).is_err());
    drop(worker);
}

/// A worker whose data port serves nobody (played here at the protocol
/// level, its port a listener that drops every connection: it computes `inc`, registered first so that `x`
/// lands on it). The real worker running `y = add(x, 1)` cannot fetch `x`
/// and reports `missing-data`; the scheduler must not recompute `x` there
/// without end: after 3 reports the unreachable worker is removed (sent
/// `close` naming the reason, logged), `x` is computed on the real worker
/// and the client gets `y`.
#[test]
fn a_worker_whose_data_port_nobody_reaches_is_removed_not_recomputed_on_forever() {
    use rask::protocol::conn::connect;
    use rask::protocol::messages::Role;
    use rask::protocol::{Limits, Message};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    let mut scheduler = Proc::spawn_with(
        env!("CARGO_BIN_EXE_rask-scheduler"),
        &["--port", "0"],
        &[],
        "warn",
        Stdio::piped(),
    );
    let err = scheduler.child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(err), &mut s);
        s
    });
    let address = address_in(&scheduler.line_with("listening on"));

    // Its "data port": a listener that drops every connection at once, so
    // no fetch from it can succeed (no assumption about a free port).
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_address = format!("tcp://{}", dead.local_addr().unwrap());
    std::thread::spawn(move || {
        for c in dead.incoming() {
            drop(c);
        }
    });
    let computed = Arc::new(AtomicUsize::new(0));
    let (registered_tx, registered) = std::sync::mpsc::channel();
    let fake = {
        let dead_address = dead_address.clone();
        let address = address.clone();
        let computed = Arc::clone(&computed);
        std::thread::spawn(move || -> Option<String> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let d = Duration::from_secs(30);
                let (mut inbox, outbox, _) = connect(
                    &address,
                    Role::Worker,
                    "dead-port",
                    None,
                    Limits::default(),
                    d,
                )
                .await
                .unwrap();
                outbox.send(Message::RegisterWorker {
                    address: dead_address,
                    threads: 1,
                    functions: vec!["inc".into()],
                    memory_limit: 0,
                    runtime: String::new(),
                });
                registered_tx.send(()).unwrap();
                loop {
                    let r = tokio::time::timeout(d, inbox.recv()).await.ok()?;
                    let wire = r.ok()??;
                    for m in wire.messages {
                        match m.ok()? {
                            Message::ComputeTask { key, .. } => {
                                computed.fetch_add(1, Ordering::SeqCst);
                                outbox.send(Message::TaskFinished {
                                    key,
                                    nbytes: 8,
                                    duration: 1e-6,
                                    value: None,
                                });
                            }
                            Message::Close { reason } => return Some(reason),
                            _ => {}
                        }
                    }
                }
            })
        })
    };
    registered.recv_timeout(Duration::from_secs(30)).unwrap();
    let client = Client::connect(&address, ClientConfig::default()).unwrap();
    client.wait_for_workers(1, Duration::from_secs(20)).unwrap();
    let worker = Proc::spawn(
        env!("CARGO_BIN_EXE_rask-worker"),
        &[&address, "--nthreads", "1", "--name", "real"],
    );
    client.wait_for_workers(2, Duration::from_secs(20)).unwrap();

    let mut g = Graph::new();
    g.add_task("x", "inc", vec![rask::graph::Arg::from(1i64)])
        .unwrap();
    let x = g.r("x").unwrap();
    g.add_task("y", "add", vec![x, rask::graph::Arg::from(1i64)])
        .unwrap();
    let y = client.compute(&g, &["y"]).unwrap();
    // `x` cannot be fetched from the fake: `y` ran on an `x` computed by
    // the real worker.
    assert_eq!(y[0].result(T).unwrap(), Value::Int(3));
    let reason = fake
        .join()
        .unwrap()
        .expect("the fake worker was sent close");
    assert!(reason.contains("could not fetch data"), "{reason}");
    let n = computed.load(Ordering::SeqCst);
    assert!((1..=3).contains(&n), "x was computed {n} times on the fake");
    let ws = client.workers().unwrap();
    assert_eq!(ws.len(), 1, "{ws:?}");
    assert_eq!(ws[0].name, "real");
    drop((client, worker));
    scheduler.signal("-TERM");
    scheduler.wait_exit(Duration::from_secs(30));
    let log = stderr.join().unwrap();
    assert!(log.contains("missing-data"), "{log}");
    assert!(log.contains("removing an unreachable worker"), "{log}");
}

//! Loopback tests of the worker: real workers on real sockets, driven by a
//! fake scheduler and a fake client written with `conn::accept` and
//! `conn::connect`.

use bytes::Bytes;
use rask::protocol::conn::{self, Inbox, Outbox};
use rask::protocol::messages::Role;
use rask::protocol::{pack_value, unpack_value, Limits, Message};
use rask::runtime::block_on;
use rask::value::{Tensor, Value};
use rask::worker::{
    load_plugin, NextTask, PluginError, Worker, WorkerConfig, WorkerError, WorkerHandle,
};
use rask::Registry;
use serde_bytes::ByteBuf;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const T: Duration = Duration::from_secs(20);

/// Runs `f` on the shared runtime, failing after `T`.
fn within<F: std::future::Future>(f: F) -> F::Output {
    block_on(async { tokio::time::timeout(T, f).await.expect("timed out") })
}

/// The scheduler's end of one worker connection.
struct Sched {
    inbox: Inbox,
    outbox: Outbox,
    queue: std::collections::VecDeque<Message>,
}

impl Sched {
    fn send(&self, m: Message) {
        assert!(self.outbox.send(m));
    }

    /// The next message that is not a heartbeat.
    fn recv(&mut self) -> Message {
        loop {
            let m = self.recv_any();
            if !matches!(m, Message::Heartbeat { .. }) {
                return m;
            }
        }
    }

    fn recv_any(&mut self) -> Message {
        if let Some(m) = self.queue.pop_front() {
            return m;
        }
        let r = within(self.inbox.recv())
            .expect("a readable connection")
            .expect("the worker closed the connection");
        for m in r.messages {
            self.queue.push_back(m.expect("a valid message"));
        }
        self.recv_any()
    }

    /// Whether the worker closed the connection (after any messages).
    fn closed(&mut self) -> Option<Message> {
        loop {
            match within(self.inbox.recv()) {
                Ok(None) | Err(_) => return None,
                Ok(Some(r)) => {
                    for m in r.messages {
                        let m = m.unwrap();
                        if matches!(m, Message::Close { .. }) {
                            return Some(m);
                        }
                    }
                }
            }
        }
    }
}

/// A fake scheduler: a listener that accepts workers.
struct FakeScheduler {
    listener: Option<TcpListener>,
    address: String,
    next_id: u64,
}

impl FakeScheduler {
    fn new() -> FakeScheduler {
        let listener = block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let address = format!("tcp://{}", listener.local_addr().unwrap());
        FakeScheduler {
            listener: Some(listener),
            address,
            next_id: 1,
        }
    }

    /// Accepts the next worker that connects (e.g. a `rask-worker` process).
    fn accept(&mut self) -> Sched {
        let listener = self.listener.as_ref().unwrap();
        let id = self.next_id;
        self.next_id += 1;
        let (inbox, outbox, _) = within(async {
            let (s, _) = listener.accept().await.unwrap();
            conn::accept(s, Limits::default(), T, "scheduler", |_| Ok(id))
                .await
                .unwrap()
        });
        Sched {
            inbox,
            outbox,
            queue: Default::default(),
        }
    }

    /// Starts a worker against this scheduler and accepts its connection.
    fn worker(
        &mut self,
        registry: Registry,
        tweak: impl FnOnce(&mut WorkerConfig),
    ) -> (WorkerHandle, Sched) {
        let listener = self.listener.take().unwrap();
        let id = self.next_id;
        self.next_id += 1;
        let accept = rask::runtime::handle().spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            let (inbox, outbox, hello) = conn::accept(s, Limits::default(), T, "scheduler", |h| {
                assert_eq!(h.role, Role::Worker);
                Ok(id)
            })
            .await
            .unwrap();
            (listener, inbox, outbox, hello)
        });
        let mut config = WorkerConfig::new(&self.address);
        config.threads = 2;
        config.heartbeat_interval = Duration::from_millis(50);
        tweak(&mut config);
        let w = Worker::start(config, registry).expect("the worker starts");
        let (listener, inbox, outbox, _hello) = block_on(accept).unwrap();
        self.listener = Some(listener);
        assert_eq!(w.id(), id);
        (
            w,
            Sched {
                inbox,
                outbox,
                queue: Default::default(),
            },
        )
    }
}

fn registry() -> Registry {
    let mut r = Registry::new();
    r.register("double", |a| {
        Ok(Value::Int(a[0].as_i64().ok_or("double: not an int")? * 2))
    })
    .unwrap();
    r.register("explode", |_| panic!("kaboom")).unwrap();
    r.register_pulled("host_double").unwrap();
    r
}

/// The msgpack args of a task: each `Value` as it is, refs as `{"ref": k}`.
fn args(items: Vec<Value>) -> ByteBuf {
    ByteBuf::from(rask::value::encode(&Value::Array(items)).unwrap())
}

fn r(k: &str) -> Value {
    Value::Map(vec![(Value::from("ref"), Value::from(k))])
}

fn compute(key: &str, func: &str, a: Vec<Value>, who_has: &[(&str, &str)]) -> Message {
    let mut wh: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, addr) in who_has {
        wh.entry(k.to_string()).or_default().push(addr.to_string());
    }
    Message::ComputeTask {
        key: key.into(),
        func: func.into(),
        args: args(a),
        priority: 0,
        who_has: wh,
    }
}

fn finished_value(m: &Message) -> (String, Option<Value>) {
    match m {
        Message::TaskFinished { key, value, .. } => (
            key.clone(),
            value.as_ref().map(|b| rask::value::decode(b).unwrap()),
        ),
        other => panic!("expected task-finished, got {other:?}"),
    }
}

/// A client's (or peer's) connection to a worker's data port.
fn peer(address: &str) -> (Inbox, Outbox) {
    let (inbox, outbox, welcome) = block_on(conn::connect(
        address,
        Role::Peer,
        "test-client",
        None,
        Limits::default(),
        T,
    ))
    .unwrap();
    assert_eq!(welcome.id, 0);
    (inbox, outbox)
}

fn recv_one(inbox: &mut Inbox) -> (Message, Vec<Bytes>) {
    let r = within(inbox.recv()).unwrap().expect("connection closed");
    assert_eq!(r.messages.len(), 1);
    (r.messages.into_iter().next().unwrap().unwrap(), r.frames)
}

#[test]
fn registers_with_its_functions_and_sends_heartbeats() {
    let mut s = FakeScheduler::new();
    let (w, mut sched) = s.worker(registry(), |c| {
        c.memory_limit = 1 << 30;
        c.name = "w-test".into();
    });
    match sched.recv_any() {
        Message::RegisterWorker {
            address,
            threads,
            functions,
            memory_limit,
            runtime,
        } => {
            assert_eq!(runtime, "rust");
            assert_eq!(address, w.data_address());
            assert!(address.starts_with("tcp://127.0.0.1:"), "{address}");
            assert_eq!(threads, 2);
            assert_eq!(memory_limit, 1 << 30);
            for f in ["inc", "add", "noop", "sum", "double", "host_double"] {
                assert!(functions.contains(&f.to_string()), "{f} in {functions:?}");
            }
        }
        m => panic!("expected register-worker first, got {m:?}"),
    }
    assert_eq!(w.name(), "w-test");
    match sched.recv_any() {
        Message::Heartbeat {
            executing,
            memory,
            spilled,
            paused,
            ..
        } => {
            assert_eq!((executing, memory, spilled, paused), (0, 0, 0, false));
        }
        m => panic!("expected a heartbeat, got {m:?}"),
    }
}

#[test]
fn compute_task_answers_task_finished_with_the_value_inline() {
    let mut s = FakeScheduler::new();
    let (w, mut sched) = s.worker(registry(), |_| {});
    assert!(matches!(sched.recv(), Message::RegisterWorker { .. }));
    sched.send(compute("b", "inc", vec![Value::Int(41)], &[]));
    let m = sched.recv();
    assert_eq!(finished_value(&m), ("b".into(), Some(Value::Int(42))));
    if let Message::TaskFinished {
        nbytes, duration, ..
    } = m
    {
        assert_eq!(nbytes, Value::Int(42).size_estimate() as u64);
        assert!((0.0..1.0).contains(&duration), "{duration}");
    }
    // A large result stays on the worker.
    let big: Vec<Value> = (0..2000).map(|_| Value::Float(0.5)).collect();
    sched.send(compute("big", "list", big, &[]));
    let m = sched.recv();
    assert_eq!(finished_value(&m), ("big".into(), None));
    assert_eq!(w.stored_keys(), vec!["b", "big"]);
    // Dependencies held here are used directly.
    sched.send(compute("c", "double", vec![r("b")], &[]));
    assert_eq!(
        finished_value(&sched.recv()),
        ("c".into(), Some(Value::Int(84)))
    );
    // Errors name the function; panics are caught.
    sched.send(compute("e", "inc", vec![Value::from("x")], &[]));
    sched.send(compute("p", "explode", vec![], &[]));
    sched.send(compute("u", "no_such_function", vec![], &[]));
    let mut errs = BTreeMap::new();
    for _ in 0..3 {
        match sched.recv() {
            Message::TaskErred { key, message, .. } => {
                errs.insert(key, message);
            }
            m => panic!("{m:?}"),
        }
    }
    assert_eq!(errs["e"], "inc: expected a number, got str");
    assert!(
        errs["p"].starts_with("explode: panicked: kaboom"),
        "{}",
        errs["p"]
    );
    assert!(
        errs["u"].contains("no function named 'no_such_function'"),
        "{}",
        errs["u"]
    );
    // The worker keeps going after a panic.
    sched.send(compute("after", "inc", vec![Value::Int(1)], &[]));
    assert_eq!(
        finished_value(&sched.recv()),
        ("after".into(), Some(Value::Int(2)))
    );
    // free-keys deletes data.
    sched.send(Message::FreeKeys {
        keys: vec!["b".into(), "big".into(), "e".into()],
    });
    sched.send(compute("sync", "noop", vec![], &[]));
    assert_eq!(finished_value(&sched.recv()).0, "sync");
    assert_eq!(w.stored_keys(), vec!["after", "c", "sync"]);
    let stats = w.stats();
    assert_eq!(stats.tasks_finished, 5);
    assert_eq!(stats.tasks_erred, 3);
}

#[test]
fn a_dependency_on_another_worker_is_fetched_peer_to_peer() {
    let mut s = FakeScheduler::new();
    let (w1, mut s1) = s.worker(registry(), |_| {});
    let (w2, mut s2) = s.worker(registry(), |_| {});
    assert!(matches!(s1.recv(), Message::RegisterWorker { .. }));
    assert!(matches!(s2.recv(), Message::RegisterWorker { .. }));
    let t = Tensor::from_vec(vec![2, 3], vec![1.0f64, 2., 3., 4., 5., 6.]).unwrap();
    s1.send(compute("a", "inc", vec![Value::Int(1)], &[]));
    s1.send(compute(
        "t",
        "identity",
        vec![Value::Tensor(t.clone())],
        &[],
    ));
    assert_eq!(finished_value(&s1.recv()).0, "a");
    assert_eq!(finished_value(&s1.recv()).0, "t");
    let w1a = w1.data_address().to_string();
    // b needs a and t from w1: one fetch, then add-keys, then the result.
    s2.send(compute(
        "b",
        "list",
        vec![r("a"), r("t")],
        &[("a", &w1a), ("t", &w1a)],
    ));
    match s2.recv() {
        Message::AddKeys {
            mut keys, nbytes, ..
        } => {
            keys.sort();
            assert_eq!(keys, vec!["a", "t"]);
            assert_eq!(nbytes.len(), 2);
        }
        m => panic!("expected add-keys, got {m:?}"),
    }
    let (k, v) = finished_value(&s2.recv());
    assert_eq!(k, "b");
    assert_eq!(
        v,
        Some(Value::Array(vec![Value::Int(2), Value::Tensor(t.clone())]))
    );
    assert_eq!(w2.stored_keys(), vec!["a", "b", "t"]);
    assert_eq!(w2.value("t"), Some(Value::Tensor(t)));
    // A holder that lacks the key, then none left: missing-data.
    s2.send(compute("c", "inc", vec![r("gone")], &[("gone", &w1a)]));
    assert_eq!(
        s2.recv(),
        Message::MissingData {
            key: "c".into(),
            dependency: "gone".into(),
            worker: w1a.clone(),
            reason: "not-held".into(),
            attempt: None,
        }
    );
    // An unreachable holder is skipped for the next one.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("tcp://{}", l.local_addr().unwrap())
    };
    s2.send(compute(
        "d",
        "inc",
        vec![r("a2")],
        &[("a2", &dead), ("a2", &w1a)],
    ));
    s1.send(compute("a2", "inc", vec![Value::Int(10)], &[]));
    assert_eq!(finished_value(&s1.recv()).0, "a2");
    // (d may have asked w1 before a2 existed there: then it is missing.)
    match s2.recv() {
        Message::AddKeys { keys, .. } => {
            assert_eq!(keys, vec!["a2"]);
            assert_eq!(
                finished_value(&s2.recv()),
                ("d".into(), Some(Value::Int(12)))
            );
        }
        Message::MissingData { key, worker, .. } => {
            assert_eq!((key.as_str(), worker.as_str()), ("d", w1a.as_str()));
        }
        m => panic!("{m:?}"),
    }
    assert_eq!(
        w2.stats().fetched,
        2 + w2.stored_keys().contains(&"a2".into()) as u64
    );
}

#[test]
fn a_client_puts_and_gets_data_on_the_data_port() {
    let mut s = FakeScheduler::new();
    let (w, mut sched) = s.worker(registry(), |_| {});
    sched.recv();
    let (mut inbox, outbox) = peer(w.data_address());
    let t = Tensor::from_vec(vec![3], vec![1i64, 2, 3]).unwrap();
    let mut payloads = Vec::new();
    let mut data = BTreeMap::new();
    data.insert(
        "x".to_string(),
        pack_value(&Value::Tensor(t.clone()), &mut payloads).unwrap(),
    );
    data.insert(
        "n".to_string(),
        pack_value(&Value::Int(5), &mut payloads).unwrap(),
    );
    outbox.send_with_payloads(Message::PutData { id: 1, data }, payloads);
    match recv_one(&mut inbox).0 {
        Message::DataStored { id, nbytes } => {
            assert_eq!(id, 1);
            assert_eq!(nbytes["x"], Value::Tensor(t.clone()).size_estimate() as u64);
            assert_eq!(nbytes["n"], Value::Int(5).size_estimate() as u64);
        }
        m => panic!("{m:?}"),
    }
    outbox.send(Message::GetData {
        id: 2,
        keys: vec!["x".into(), "n".into(), "nope".into()],
    });
    let (m, frames) = recv_one(&mut inbox);
    match m {
        Message::Data {
            id, data, missing, ..
        } => {
            assert_eq!(id, 2);
            assert_eq!(missing, vec!["nope"]);
            assert_eq!(data["x"].kind, "tensor");
            assert_eq!(unpack_value(&data["x"], &frames).unwrap(), Value::Tensor(t));
            assert_eq!(unpack_value(&data["n"], &frames).unwrap(), Value::Int(5));
        }
        m => panic!("{m:?}"),
    }
    // Scattered data serves as a dependency.
    sched.send(compute("m", "double", vec![r("n")], &[]));
    assert_eq!(
        finished_value(&sched.recv()),
        ("m".into(), Some(Value::Int(10)))
    );
    // A bad put-data is answered with an error naming the request.
    let mut data = BTreeMap::new();
    let mut none = Vec::new();
    let mut p = pack_value(&Value::Int(1), &mut none).unwrap();
    p.frame = 7;
    data.insert("bad".to_string(), p);
    outbox.send(Message::PutData { id: 3, data });
    match recv_one(&mut inbox).0 {
        Message::Error { id, code, message } => {
            assert_eq!(id, Some(3));
            assert_eq!(code.as_deref(), Some("bad-message"));
            assert!(message.contains("bad"), "{message}");
        }
        m => panic!("{m:?}"),
    }
    // Role client is refused with a clear message.
    let e = block_on(conn::connect(
        w.data_address(),
        Role::Client,
        "c",
        None,
        Limits::default(),
        T,
    ))
    .unwrap_err();
    assert!(e.0.contains("role 'peer'"), "{e}");
}

#[test]
fn the_data_port_requires_the_token_when_one_is_set() {
    // The fake scheduler ignores tokens; the data port does not.
    let mut s = FakeScheduler::new();
    let (w, _sched) = s.worker(registry(), |c| c.token = Some("s3cret".into()));
    let e = block_on(conn::connect(
        w.data_address(),
        Role::Peer,
        "c",
        None,
        Limits::default(),
        T,
    ))
    .unwrap_err();
    assert!(e.0.contains("token"), "{e}");
    block_on(conn::connect(
        w.data_address(),
        Role::Peer,
        "c",
        Some("s3cret".into()),
        Limits::default(),
        T,
    ))
    .unwrap();
}

#[test]
fn pulled_functions_are_run_by_host_threads() {
    let mut s = FakeScheduler::new();
    let (w, mut sched) = s.worker(registry(), |_| {});
    sched.recv();
    let n = 40;
    for i in 0..n {
        sched.send(compute(
            &format!("h{i}"),
            "host_double",
            vec![Value::Int(i)],
            &[],
        ));
    }
    // One task is dropped uncompleted: reported as abandoned.
    sched.send(compute("drop-me", "host_double", vec![Value::Int(-1)], &[]));
    let served = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| loop {
                match w.next_task(Some(Duration::from_millis(300))) {
                    NextTask::Task(t) => {
                        assert_eq!(t.func(), "host_double");
                        if t.key() == "drop-me" {
                            drop(t);
                            continue;
                        }
                        let x = t.args()[0].as_i64().unwrap();
                        assert!(t.complete(Ok(Value::Int(2 * x))));
                        served.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    NextTask::Timeout => return,
                    NextTask::Stopped => panic!("stopped early"),
                }
            });
        }
    });
    assert_eq!(served.into_inner(), n as usize);
    let mut got = BTreeMap::new();
    let mut abandoned = None;
    for _ in 0..=n {
        match sched.recv() {
            m @ Message::TaskFinished { .. } => {
                let (k, v) = finished_value(&m);
                got.insert(k, v.unwrap());
            }
            Message::TaskErred { key, message, .. } => abandoned = Some((key, message)),
            m => panic!("{m:?}"),
        }
    }
    for i in 0..n {
        assert_eq!(got[&format!("h{i}")], Value::Int(2 * i));
    }
    let (k, m) = abandoned.unwrap();
    assert_eq!(k, "drop-me");
    assert!(m.contains("abandoned"), "{m}");
    // After stop, pulling says so at once.
    w.stop();
    assert!(matches!(w.next_task(None), NextTask::Stopped));
}

/// The worker closes `c` (end of stream or a reset) within T, whatever it
/// wrote first; a connection it keeps open fails the test.
async fn closed_by_worker(c: &mut TcpStream, what: &str) {
    let mut buf = Vec::new();
    match tokio::time::timeout(T, c.read_to_end(&mut buf)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Ok(Err(e)) => panic!("{what}: reading failed: {e}"),
        Err(_) => panic!("{what}: the worker kept the connection open"),
    }
}

#[test]
fn garbage_on_the_data_port_does_not_break_the_worker() {
    let mut s = FakeScheduler::new();
    let (w, mut sched) = s.worker(registry(), |_| {});
    sched.recv();
    let addr = w.data_address().trim_start_matches("tcp://").to_string();
    block_on(async {
        // Not frames at all.
        let mut c = TcpStream::connect(&addr).await.unwrap();
        c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        closed_by_worker(&mut c, "not frames at all").await;
        // A frame header claiming an absurd size, then nothing.
        let mut c = TcpStream::connect(&addr).await.unwrap();
        c.write_all(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3])
            .await
            .unwrap();
        closed_by_worker(&mut c, "an absurd frame count").await;
        // Connect and close at once.
        drop(TcpStream::connect(&addr).await.unwrap());
    });
    // After a good handshake: a body that is not msgpack closes only that
    // connection; an unknown op is answered and the connection stays.
    let (mut inbox, outbox) = peer(w.data_address());
    outbox.send(Message::Heartbeat {
        executing: 0,
        memory: 0,
        spilled: 0,
        process: 0,
        paused: false,
        cpu: None,
    });
    match recv_one(&mut inbox).0 {
        Message::Error { code, message, .. } => {
            assert_eq!(code.as_deref(), Some("bad-message"));
            assert!(message.contains("heartbeat"), "{message}");
        }
        m => panic!("{m:?}"),
    }
    // A request the data port does not serve: the error echoes its id.
    outbox.send(Message::GetWorkers { id: 6 });
    match recv_one(&mut inbox).0 {
        Message::Error { code, message, id } => {
            assert_eq!(code.as_deref(), Some("bad-message"));
            assert!(message.contains("get-workers"), "{message}");
            assert_eq!(id, Some(6));
        }
        m => panic!("{m:?}"),
    }
    outbox.send(Message::GetData {
        id: 1,
        keys: vec!["k".into()],
    });
    assert!(matches!(
        recv_one(&mut inbox).0,
        Message::Data { id: 1, .. }
    ));
    block_on(async {
        let mut c = TcpStream::connect(&addr).await.unwrap();
        let hello = rask::protocol::encode_batch(&[Message::hello(Role::Peer, "g", None)], vec![]);
        hello.write_to(&mut c).await.unwrap();
        let mut garbage = Vec::new();
        garbage.extend_from_slice(&1u32.to_le_bytes());
        garbage.extend_from_slice(&3u64.to_le_bytes());
        garbage.extend_from_slice(&[0xc1, 0xc1, 0xc1]);
        c.write_all(&garbage).await.unwrap();
        closed_by_worker(&mut c, "a body that is not msgpack").await;
    });
    // The worker still serves data and computes.
    let (mut inbox, outbox) = peer(w.data_address());
    outbox.send(Message::GetData {
        id: 9,
        keys: vec![],
    });
    assert!(matches!(
        recv_one(&mut inbox).0,
        Message::Data { id: 9, .. }
    ));
    sched.send(compute("ok", "inc", vec![Value::Int(1)], &[]));
    assert_eq!(
        finished_value(&sched.recv()),
        ("ok".into(), Some(Value::Int(2)))
    );
    assert!(!w.is_stopped());
}

#[test]
fn close_from_the_scheduler_stops_the_worker_and_stop_tells_the_scheduler() {
    let mut s = FakeScheduler::new();
    let (w, mut sched) = s.worker(registry(), |_| {});
    sched.recv();
    sched.send(Message::Close {
        reason: "shutting down".into(),
    });
    let reason = w.wait_timeout(T).expect("the worker stops");
    assert!(reason.contains("shutting down"), "{reason}");
    assert!(w.is_stopped());
    assert!(w.stopped_cleanly());
    // Waiting after the fact returns at once, asynchronously too.
    within(w.stopped());
    assert!(matches!(w.next_task(None), NextTask::Stopped));

    let (w, mut sched) = s.worker(registry(), |_| {});
    sched.recv();
    w.stop();
    assert!(matches!(sched.closed(), Some(Message::Close { .. })));
    assert!(w.wait().contains("stopped by its host"));

    // Losing the scheduler stops the worker too, not cleanly.
    let (w, sched) = s.worker(registry(), |_| {});
    drop(sched);
    assert!(w.wait_timeout(T).is_some());
    assert!(!w.stopped_cleanly());
    within(w.stopped());
}

#[test]
fn a_scheduler_that_cannot_be_reached_is_a_clear_error() {
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("tcp://{}", l.local_addr().unwrap())
    };
    let e = Worker::start(WorkerConfig::new(&dead), Registry::new()).unwrap_err();
    match &e {
        WorkerError::Connect(m) => assert!(m.contains("cannot connect"), "{m}"),
        e => panic!("{e:?}"),
    }
    assert!(e.to_string().contains(&dead), "{e}");
    let e = Worker::start(WorkerConfig::new("nonsense"), Registry::new()).unwrap_err();
    assert!(e.to_string().contains("tcp://host:port"), "{e}");
}

/// Throughput of one worker on no-op tasks, fed by the fake scheduler in
/// batches. `cargo test --release --test worker -- --ignored --nocapture`
#[test]
#[ignore]
fn noop_throughput() {
    let n: usize = std::env::var("RASK_BENCH_TASKS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let mut s = FakeScheduler::new();
    let (w, mut sched) = s.worker(Registry::new(), |c| {
        c.heartbeat_interval = Duration::from_secs(60);
    });
    sched.recv();
    let keys: Vec<String> = (0..n).map(|i| format!("noop-{i}")).collect();
    let start = Instant::now();
    let empty = ByteBuf::from(vec![0x90]);
    for (i, k) in keys.iter().enumerate() {
        sched.send(Message::ComputeTask {
            key: k.clone(),
            func: "noop".into(),
            args: empty.clone(),
            priority: i as u64,
            who_has: BTreeMap::new(),
        });
    }
    let mut done = 0;
    while done < n {
        match sched.recv() {
            Message::TaskFinished { .. } => done += 1,
            m => panic!("{m:?}"),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{{\"bench\": \"worker_noop\", \"tasks\": {n}, \"seconds\": {secs:.3}, \"tasks_per_s\": {:.0}}}",
        n as f64 / secs
    );
    assert_eq!(w.stats().tasks_finished, n as u64);
}

// ------------------------------------------------------------ plugins

/// Compiles tests/plugins/square_plugin.c into a shared library.
fn build_plugin(tag: &str, define: Option<&str>) -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::temp_dir().join(format!("rask-worker-plugins-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(format!("lib{tag}.so"));
    let mut cmd = std::process::Command::new("cc");
    cmd.arg("-shared")
        .arg("-fPIC")
        .arg("-I")
        .arg(root.join("include"))
        .arg("-o")
        .arg(&out)
        .arg(root.join("tests/plugins/square_plugin.c"));
    if let Some(d) = define {
        cmd.arg(format!("-D{d}"));
    }
    let status = cmd.status().expect("running cc");
    assert!(status.success(), "cc failed for {tag}");
    out
}

#[test]
fn a_plugin_adds_its_c_functions_to_the_worker() {
    let path = build_plugin("square", None);
    let mut reg = registry();
    let names = load_plugin(&path, &mut reg).expect("the plugin loads");
    assert_eq!(names, vec!["square"]);
    assert_eq!(
        reg.resolve("square").unwrap().call(&[Value::Int(7)]),
        Ok(Value::Int(49))
    );
    // Loaded twice into one registry: the name clashes.
    match load_plugin(&path, &mut reg).unwrap_err() {
        e @ PluginError::Conflict { .. } => {
            assert!(
                e.to_string().contains("'square' is already registered"),
                "{e}"
            )
        }
        e => panic!("{e:?}"),
    }
    // A worker offers it and runs it on its threads.
    let mut s = FakeScheduler::new();
    let (_w, mut sched) = s.worker(reg, |_| {});
    match sched.recv() {
        Message::RegisterWorker { functions, .. } => {
            assert!(functions.contains(&"square".to_string()))
        }
        m => panic!("{m:?}"),
    }
    sched.send(compute("sq", "square", vec![Value::Int(12)], &[]));
    assert_eq!(
        finished_value(&sched.recv()),
        ("sq".into(), Some(Value::Int(144)))
    );
    sched.send(compute("sq2", "square", vec![Value::from("x")], &[]));
    match sched.recv() {
        Message::TaskErred { key, message, .. } => {
            assert_eq!(key, "sq2");
            assert!(message.starts_with("square: "), "{message}");
        }
        m => panic!("{m:?}"),
    }
}

#[test]
fn plugins_that_cannot_load_say_why() {
    let mut reg = Registry::new();
    let missing = std::path::Path::new("/nonexistent/libnothing.so");
    match load_plugin(missing, &mut reg).unwrap_err() {
        e @ PluginError::Open { .. } => {
            assert!(e.to_string().contains("/nonexistent/libnothing.so"), "{e}")
        }
        e => panic!("{e:?}"),
    }
    let no_entry = build_plugin("noentry", Some("RASK_TEST_NO_ENTRY"));
    match load_plugin(&no_entry, &mut reg).unwrap_err() {
        e @ PluginError::NoEntryPoint { .. } => {
            let m = e.to_string();
            assert!(
                m.contains("not a rask plugin") && m.contains("rask_plugin_init"),
                "{m}"
            )
        }
        e => panic!("{e:?}"),
    }
    let fails = build_plugin("fails", Some("RASK_TEST_INIT_FAILS"));
    match load_plugin(&fails, &mut reg).unwrap_err() {
        PluginError::Init {
            status, message, ..
        } => {
            assert_eq!(status, "RASK_ERR_INVALID_ARG");
            assert_eq!(message, "this plugin refuses to load");
        }
        e => panic!("{e:?}"),
    }
    assert!(!reg.contains("square"));
}

// ------------------------------------------------------------ the binary

const BIN: &str = env!("CARGO_BIN_EXE_rask-worker");

#[test]
fn rask_worker_help_explains_every_option() {
    let out = std::process::Command::new(BIN)
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for opt in [
        "SCHEDULER",
        "--nthreads",
        "--name",
        "--host",
        "--port",
        "--memory-limit",
        "--plugin",
        "--heartbeat-interval",
        "--auth-token-file",
    ] {
        assert!(help.contains(opt), "--help lacks {opt}:\n{help}");
    }
}

#[test]
fn rask_worker_runs_plugin_functions_and_exits_cleanly_on_sigterm() {
    use std::io::BufRead;
    let plugin = build_plugin("square_bin", None);
    let mut s = FakeScheduler::new();
    let mut child = std::process::Command::new(BIN)
        .arg(&s.address)
        .args([
            "--nthreads",
            "2",
            "--name",
            "bin-worker",
            "--memory-limit",
            "2GiB",
        ])
        .arg("--plugin")
        .arg(&plugin)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut sched = s.accept();
    match sched.recv() {
        Message::RegisterWorker {
            functions,
            threads,
            memory_limit,
            ..
        } => {
            assert!(functions.contains(&"square".to_string()), "{functions:?}");
            assert_eq!(threads, 2);
            assert_eq!(memory_limit, 2 << 30);
        }
        m => panic!("{m:?}"),
    }
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.starts_with("rask-worker bin-worker serving data on tcp://127.0.0.1:"),
        "{line}"
    );
    assert!(
        line.trim_end()
            .ends_with(&format!("connected to {}", s.address)),
        "{line}"
    );
    sched.send(compute("sq", "square", vec![Value::Int(9)], &[]));
    assert_eq!(
        finished_value(&sched.recv()),
        ("sq".into(), Some(Value::Int(81)))
    );
    // SIGTERM retires it: it asks the scheduler, and exits 0 when the
    // scheduler says `close`.
    let term = |child: &std::process::Child| {
        let kill = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
    };
    term(&child);
    match sched.recv() {
        Message::RetireWorker { reason } => assert!(reason.contains("SIGTERM"), "{reason}"),
        m => panic!("{m:?}"),
    }
    sched.send(Message::Close {
        reason: "retired".into(),
    });
    assert_eq!(child.wait().unwrap().code(), Some(0));

    // A second SIGTERM during retirement stops it at once.
    let mut child = std::process::Command::new(BIN)
        .arg(&s.address)
        .arg("--plugin")
        .arg(&plugin)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut sched = s.accept();
    assert!(matches!(sched.recv(), Message::RegisterWorker { .. }));
    term(&child);
    assert!(matches!(sched.recv(), Message::RetireWorker { .. }));
    term(&child);
    assert!(matches!(sched.closed(), Some(Message::Close { .. })));
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn rask_worker_exits_non_zero_with_a_clear_message() {
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("tcp://{}", l.local_addr().unwrap())
    };
    let out = std::process::Command::new(BIN).arg(&dead).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot join the scheduler") && err.contains(&dead),
        "{err}"
    );

    let out = std::process::Command::new(BIN)
        .args([&dead, "--plugin", "/nonexistent/libx.so"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot open plugin /nonexistent/libx.so"),
        "{err}"
    );

    let out = std::process::Command::new(BIN)
        .args([&dead, "--memory-limit", "4 parsecs"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn rask_worker_exits_zero_when_the_scheduler_closes_it() {
    let mut s = FakeScheduler::new();
    let mut child = std::process::Command::new(BIN)
        .arg(&s.address)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut sched = s.accept();
    assert!(matches!(sched.recv(), Message::RegisterWorker { .. }));
    sched.send(Message::Close {
        reason: "bye".into(),
    });
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn free_keys_discards_a_running_task_and_queued_ones_never_run() {
    use std::sync::{Arc, Mutex};
    let ran = Arc::new(Mutex::new(Vec::<i64>::new()));
    let gate = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
    let mut reg = Registry::new();
    {
        let (ran, gate) = (ran.clone(), gate.clone());
        // Blocks until the gate opens, then records its argument.
        reg.register("gated", move |a| {
            let (m, cv) = &*gate;
            let mut open = m.lock().unwrap();
            while !*open {
                open = cv.wait(open).unwrap();
            }
            ran.lock().unwrap().push(a[0].as_i64().unwrap());
            Ok(Value::Nil)
        })
        .unwrap();
    }
    let mut s = FakeScheduler::new();
    let (w, mut sched) = s.worker(reg, |c| c.threads = 1);
    sched.recv();
    let task = |key: &str, x: i64, priority: u64| Message::ComputeTask {
        key: key.into(),
        func: "gated".into(),
        args: args(vec![Value::Int(x)]),
        priority,
        who_has: BTreeMap::new(),
    };
    // The single thread takes "first"; the others queue behind it.
    sched.send(task("first", 0, 0));
    let t0 = Instant::now();
    while w.stats().executing == 0 {
        assert!(t0.elapsed() < T, "the first task never started");
        std::thread::sleep(Duration::from_millis(1));
    }
    for (k, x, p) in [
        ("p30", 30, 30),
        ("p10", 10, 10),
        ("drop", 99, 5),
        ("p20", 20, 20),
    ] {
        sched.send(task(k, x, p));
    }
    sched.send(Message::FreeKeys {
        keys: vec!["first".into(), "drop".into()],
    });
    // A synchronizing no-op: once it is answered, the frees were handled.
    sched.send(compute("sync", "noop", vec![], &[]));
    assert_eq!(finished_value(&sched.recv()).0, "sync");
    {
        let (m, cv) = &*gate;
        *m.lock().unwrap() = true;
        cv.notify_all();
    }
    // Only the queued tasks that were not freed are reported, by priority.
    let keys: Vec<String> = (0..3).map(|_| finished_value(&sched.recv()).0).collect();
    assert_eq!(keys, vec!["p10", "p20", "p30"]);
    assert_eq!(
        *ran.lock().unwrap(),
        vec![0, 10, 20, 30],
        "'first' ran, 'drop' never did"
    );
    assert_eq!(w.stored_keys(), vec!["p10", "p20", "p30", "sync"]);
    assert_eq!(w.stats().executing, 0);
}

/// Host threads that pull count in what the worker tells the scheduler it
/// runs at once (so the scheduler sends them all work).
#[test]
fn pull_threads_count_in_the_threads_the_worker_announces() {
    let mut s = FakeScheduler::new();
    let (_w, mut sched) = s.worker(registry(), |c| c.pull_threads = 16);
    match sched.recv_any() {
        Message::RegisterWorker { threads, .. } => assert_eq!(threads, 2 + 16),
        m => panic!("{m:?}"),
    }
}

/// After a good handshake, a wire message over the data port's limits or a
/// body that is not msgpack is answered with an `error` (code
/// `bad-stream`) that says why, before the worker closes the connection.
#[test]
fn the_data_port_says_which_limit_before_it_closes() {
    let mut s = FakeScheduler::new();
    let (w, mut sched) = s.worker(registry(), |c| c.limits.max_frames = 100);
    sched.recv();
    let addr = w.data_address().trim_start_matches("tcp://").to_string();
    let cases: [(&str, Vec<u8>, &str); 3] = [
        (
            "too many frames",
            {
                let mut v = 101u32.to_le_bytes().to_vec();
                v.extend(std::iter::repeat(0u8).take(101 * 8));
                v
            },
            "a message of 101 frames is over the receiver's limit of 100 frames",
        ),
        (
            "a frame too large",
            {
                let mut v = 1u32.to_le_bytes().to_vec();
                v.extend_from_slice(&u64::MAX.to_le_bytes());
                v
            },
            "bytes is over the receiver's limit of 4294967296 bytes a frame",
        ),
        (
            "a body that is not msgpack",
            {
                let mut v = 1u32.to_le_bytes().to_vec();
                v.extend_from_slice(&3u64.to_le_bytes());
                v.extend_from_slice(&[0xc1, 0xc1, 0xc1]);
                v
            },
            "not valid msgpack",
        ),
    ];
    for (what, bytes, want) in cases {
        block_on(async {
            let mut c = TcpStream::connect(&addr).await.unwrap();
            let hello =
                rask::protocol::encode_batch(&[Message::hello(Role::Peer, "g", None)], vec![]);
            hello.write_to(&mut c).await.unwrap();
            let limits = Limits::default();
            let welcome = rask::protocol::WireMessage::read_from(&mut c, &limits);
            tokio::time::timeout(T, welcome)
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            c.write_all(&bytes).await.unwrap();
            let r = rask::protocol::WireMessage::read_from(&mut c, &limits);
            let r = tokio::time::timeout(T, r)
                .await
                .unwrap()
                .unwrap()
                .unwrap_or_else(|| panic!("{what}: closed without an error"));
            match &rask::protocol::decode_batch(&r).unwrap()[..] {
                [Ok(Message::Error {
                    code: Some(code),
                    message,
                    id: None,
                })] => {
                    assert_eq!(code, "bad-stream", "{what}");
                    assert!(message.contains(want), "{what}: {message}");
                }
                m => panic!("{what}: {m:?}"),
            }
            closed_by_worker(&mut c, what).await;
        });
    }
    // The worker still serves data.
    let (mut inbox, outbox) = peer(w.data_address());
    outbox.send(Message::GetData {
        id: 9,
        keys: vec![],
    });
    assert!(matches!(
        recv_one(&mut inbox).0,
        Message::Data { id: 9, .. }
    ));
}

/// The worker's scheduler link takes only what the scheduler sends a
/// worker: a client's message from the scheduler (`key-in-memory`) or a
/// data-port message is answered with `bad-message` (echoing an id) and
/// skipped, and the worker goes on.
#[test]
fn the_scheduler_link_refuses_messages_of_other_directions() {
    let mut s = FakeScheduler::new();
    let (_w, mut sched) = s.worker(registry(), |_| {});
    sched.recv();
    sched.send(Message::KeyCancelled { key: "k".into() });
    sched.send(Message::GetData {
        id: 4,
        keys: vec![],
    });
    sched.send(compute("ok", "inc", vec![Value::Int(1)], &[]));
    let mut errors = Vec::new();
    loop {
        match sched.recv() {
            Message::Error { code, message, id } => {
                assert_eq!(code.as_deref(), Some("bad-message"));
                errors.push((message, id));
            }
            m => {
                assert_eq!(finished_value(&m), ("ok".into(), Some(Value::Int(2))));
                break;
            }
        }
    }
    assert_eq!(
        errors,
        vec![
            (
                "'key-cancelled' is not a message a worker takes from the scheduler".to_string(),
                None
            ),
            (
                "'get-data' is not a message a worker takes from the scheduler".to_string(),
                Some(4)
            ),
        ]
    );
}

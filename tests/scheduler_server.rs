//! The scheduler server on loopback, driven with raw protocol messages: a
//! fake worker (this test computes `inc` and `add`) and a fake client, bad
//! peers, the handshake checks, heartbeat timeouts, shutdown, and the
//! `rask-scheduler` binary.

use rask::graph::doc::{decode_args, KeyArg};
use rask::protocol::conn::{connect, Inbox, Outbox};
use rask::protocol::messages::Role;
use rask::protocol::{encode_batch, Limits, Message, WireMessage};
use rask::scheduler::{Scheduler, SchedulerConfig, SchedulerHandle};
use rask::Value;
use serde_bytes::ByteBuf;
use std::collections::HashMap;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const T: Duration = Duration::from_secs(10);

/// The classic graph document of docs/graph-spec.md.
const CLASSIC: &str = "82a57461736b7385a16181a576616c756501a17881a576616c75650aa16282a466756e63a3696e63a4617267739181a3726566a161a17982a466756e63a3696e63a4617267739181a3726566a178a17a82a466756e63a3616464a4617267739281a3726566a16281a3726566a179a76f75747075747391a17a";

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn start(config: SchedulerConfig) -> SchedulerHandle {
    Scheduler::start(SchedulerConfig { port: 0, ..config }).unwrap()
}

async fn conn(s: &SchedulerHandle, role: Role, name: &str) -> (Inbox, Outbox, u64) {
    let (i, o, w) = connect(s.address(), role, name, None, Limits::default(), T)
        .await
        .unwrap();
    (i, o, w.id)
}

/// The next message, within the test timeout.
async fn next(inbox: &mut Inbox, pending: &mut Vec<Message>) -> Message {
    loop {
        if !pending.is_empty() {
            return pending.remove(0);
        }
        let r = tokio::time::timeout(T, inbox.recv())
            .await
            .expect("a message in time")
            .expect("a good wire message")
            .expect("the connection open");
        for m in r.messages {
            pending.push(m.expect("a message that decodes"));
        }
    }
}

async fn register(o: &Outbox, threads: u32, functions: &[&str]) {
    o.send(Message::RegisterWorker {
        address: "tcp://127.0.0.1:1".into(),
        threads,
        functions: functions.iter().map(|s| s.to_string()).collect(),
        memory_limit: 0,
        runtime: String::new(),
    });
}

/// Waits until the scheduler counts `n` workers: a client connecting right
/// after `register` may otherwise be read first (its graph then meets no
/// worker, and the client is warned `no-worker` before the result comes).
async fn registered(s: &SchedulerHandle, n: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while s.stats_async().await.unwrap().counts.workers < n {
        assert!(
            std::time::Instant::now() < deadline,
            "the scheduler did not count {n} workers within 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}

/// Runs `compute-task`s like a worker that knows `inc` and `add`, keeping
/// results in `store`; returns the other messages it saw.
async fn work(
    inbox: &mut Inbox,
    outbox: &Outbox,
    store: &mut HashMap<String, i64>,
    pending: &mut Vec<Message>,
    until: impl Fn(&Message) -> bool,
) -> Vec<Message> {
    let mut other = Vec::new();
    loop {
        let m = next(inbox, pending).await;
        match &m {
            Message::ComputeTask {
                key, func, args, ..
            } => {
                let args = decode_args(args).unwrap();
                let vals: Vec<i64> = args
                    .iter()
                    .map(|a| match a {
                        KeyArg::Value(v) => v.as_i64().unwrap(),
                        KeyArg::Ref(k) => store[k],
                        a => panic!("{a:?}"),
                    })
                    .collect();
                let r = match func.as_str() {
                    "inc" => vals[0] + 1,
                    "add" => vals.iter().sum(),
                    f => panic!("unknown function {f}"),
                };
                store.insert(key.clone(), r);
                outbox.send(Message::TaskFinished {
                    key: key.clone(),
                    nbytes: 8,
                    duration: 1e-6,
                    value: Some(ByteBuf::from(rask::value::encode(&Value::from(r)).unwrap())),
                });
            }
            _ => {
                let stop = until(&m);
                other.push(m);
                if stop {
                    return other;
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_graph_with_a_fake_worker_and_client() {
    let s = start(SchedulerConfig::default());
    let (mut wi, wo, wid) = conn(&s, Role::Worker, "w1").await;
    register(&wo, 2, &["inc", "add"]).await;
    registered(&s, 1).await;
    let (mut ci, co, cid) = conn(&s, Role::Client, "c").await;
    assert!(wid >= 1 && cid >= 1 && wid != cid);

    co.send(Message::UpdateGraph {
        graph: ByteBuf::from(hex(CLASSIC)),
        keys: vec!["z".into()],
        retries: 0,
        from_task: false,
        id: None,
    });
    let mut store = HashMap::new();
    let mut wp = Vec::new();
    // The worker runs b, y, z and is then told to free b and y.
    let seen = work(&mut wi, &wo, &mut store, &mut wp, |m| {
        matches!(m, Message::FreeKeys { .. })
    })
    .await;
    assert_eq!(store["z"], 13);
    let Message::FreeKeys { keys } = seen.last().unwrap() else {
        unreachable!()
    };
    let mut keys = keys.clone();
    keys.sort();
    assert_eq!(keys, vec!["b", "y"]);

    let mut cp = Vec::new();
    match next(&mut ci, &mut cp).await {
        Message::KeyInMemory {
            key,
            workers,
            value,
            ..
        } => {
            assert_eq!(key, "z");
            assert_eq!(workers, vec!["tcp://127.0.0.1:1".to_string()]);
            let v = rask::value::decode(&value.unwrap()).unwrap();
            assert_eq!(v, Value::from(13));
        }
        m => panic!("{m:?}"),
    }

    // who-has and get-workers.
    co.send(Message::WhoHas {
        id: 1,
        keys: vec!["z".into()],
    });
    co.send(Message::GetWorkers { id: 2 });
    match next(&mut ci, &mut cp).await {
        Message::WhoHasReply { id, who_has } => {
            assert_eq!(id, 1);
            assert_eq!(who_has["z"], vec!["tcp://127.0.0.1:1".to_string()]);
        }
        m => panic!("{m:?}"),
    }
    match next(&mut ci, &mut cp).await {
        Message::WorkersReply { id, workers } => {
            assert_eq!(id, 2);
            assert_eq!(workers.len(), 1);
            assert_eq!(workers[0].id, wid);
            assert_eq!(workers[0].name, "w1");
        }
        m => panic!("{m:?}"),
    }

    // The client's future goes: z is freed on the worker.
    co.send(Message::ReleaseKeys {
        keys: vec!["z".into()],
        id: None,
    });
    match next(&mut wi, &mut wp).await {
        Message::FreeKeys { keys } => assert_eq!(keys, vec!["z"]),
        m => panic!("{m:?}"),
    }
    let stats = s.stats_async().await.unwrap();
    assert_eq!(stats.counts.tasks, 0);
    assert_eq!(stats.counts.workers, 1);
    assert_eq!(stats.counts.clients, 1);

    // Shutdown: everyone gets `close`, then the connection ends.
    s.shutdown_async().await;
    assert!(matches!(
        next(&mut ci, &mut cp).await,
        Message::Close { .. }
    ));
    assert!(matches!(
        next(&mut wi, &mut wp).await,
        Message::Close { .. }
    ));
    let end = tokio::time::timeout(T, ci.recv()).await.unwrap();
    assert!(matches!(end, Ok(None) | Err(_)), "closed after close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_one_connection_does_not_disturb_another() {
    let s = start(SchedulerConfig::default());
    let (mut ci, co, _) = conn(&s, Role::Client, "good").await;
    let addr = s.address().strip_prefix("tcp://").unwrap().to_string();

    // Raw garbage instead of a hello.
    let mut raw = TcpStream::connect(&addr).await.unwrap();
    raw.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // A good handshake, then a frame header over the limits.
    let mut raw2 = TcpStream::connect(&addr).await.unwrap();
    encode_batch(&[Message::hello(Role::Client, "bad2", None)], vec![])
        .write_to(&mut raw2)
        .await
        .unwrap();
    let welcome = WireMessage::read_from(&mut raw2, &Limits::default())
        .await
        .unwrap()
        .unwrap();
    assert!(!welcome.frames.is_empty());
    raw2.write_all(&u32::MAX.to_le_bytes()).await.unwrap();
    // The scheduler says which limit (code `bad-stream`), then closes raw2.
    let r = tokio::time::timeout(T, WireMessage::read_from(&mut raw2, &Limits::default()))
        .await
        .unwrap()
        .unwrap()
        .expect("an error before the close");
    match &rask::protocol::decode_batch(&r).unwrap()[..] {
        [Ok(Message::Error {
            code: Some(code),
            message,
            id: None,
        })] => {
            assert_eq!(code, "bad-stream");
            assert!(
                message.contains("4294967295 frames is over the receiver's limit of 65536 frames"),
                "{message}"
            );
        }
        m => panic!("{m:?}"),
    }
    let r = tokio::time::timeout(T, WireMessage::read_from(&mut raw2, &Limits::default()))
        .await
        .unwrap();
    assert!(matches!(r, Ok(None) | Err(_)), "{r:?}");

    // A batch with bad messages and one good: an error for each bad one
    // (echoing its id when it has one that reads), then the reply.
    let op = |o: &str| (Value::from("op"), Value::from(o));
    let bad = rask::value::encode(&Value::Array(vec![
        Value::Map(vec![op("frobnicate")]),
        Value::Map(vec![
            op("who-has"),
            (Value::from("id"), Value::from(6)),
            (Value::from("keys"), Value::from("not a list")),
        ]),
        Value::Map(vec![
            op("update-graph"),
            (Value::from("graph"), Value::Bin(vec![0xc1].into())),
            (Value::from("keys"), Value::Array(vec![])),
            (Value::from("id"), Value::from(7)),
        ]),
        Value::Map(vec![op("get-workers"), (Value::from("id"), Value::from(5))]),
    ]))
    .unwrap();
    let mut raw3 = TcpStream::connect(&addr).await.unwrap();
    encode_batch(&[Message::hello(Role::Client, "mixed", None)], vec![])
        .write_to(&mut raw3)
        .await
        .unwrap();
    WireMessage::read_from(&mut raw3, &Limits::default())
        .await
        .unwrap()
        .unwrap();
    WireMessage {
        frames: vec![bad.into()],
    }
    .write_to(&mut raw3)
    .await
    .unwrap();
    let mut got = Vec::new();
    while got.len() < 4 {
        let w = tokio::time::timeout(T, WireMessage::read_from(&mut raw3, &Limits::default()))
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        for m in rask::protocol::decode_batch(&w).unwrap() {
            got.push(m.unwrap());
        }
    }
    let error = |id: Option<u64>| {
        got.iter()
            .find_map(|m| match m {
                Message::Error {
                    code: Some(c),
                    message,
                    id: i,
                } if *i == id => Some((c.clone(), message.clone())),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no error with id {id:?}: {got:?}"))
    };
    let (code, message) = error(None);
    assert!(
        code == "bad-message" && message.contains("frobnicate"),
        "{got:?}"
    );
    let (code, message) = error(Some(6));
    assert!(
        code == "bad-message" && message.contains("who-has"),
        "{got:?}"
    );
    assert_eq!(error(Some(7)).0, "bad-graph", "{got:?}");
    assert!(
        got.iter()
            .any(|m| matches!(m, Message::WorkersReply { id: 5, .. })),
        "{got:?}"
    );

    // A client sending a worker op gets an error and stays connected.
    co.send(Message::TaskFinished {
        key: "x".into(),
        nbytes: 1,
        duration: 0.0,
        value: None,
    });
    // ... and a data-port request, with its id echoed.
    co.send(Message::GetData {
        id: 8,
        keys: vec!["x".into()],
    });
    co.send(Message::GetWorkers { id: 9 });
    let mut cp = Vec::new();
    match next(&mut ci, &mut cp).await {
        Message::Error { code, message, id } => {
            assert_eq!(code.as_deref(), Some("bad-message"));
            assert!(message.contains("task-finished"), "{message}");
            assert_eq!(id, None);
        }
        m => panic!("{m:?}"),
    }
    match next(&mut ci, &mut cp).await {
        Message::Error { code, message, id } => {
            assert_eq!(code.as_deref(), Some("bad-message"));
            assert!(message.contains("get-data"), "{message}");
            assert_eq!(id, Some(8));
        }
        m => panic!("{m:?}"),
    }
    assert!(matches!(
        next(&mut ci, &mut cp).await,
        Message::WorkersReply { id: 9, .. }
    ));
    drop(raw);
    s.shutdown_async().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_mismatch_and_tokens() {
    let s = start(SchedulerConfig {
        token: Some("s3cret".into()),
        ..Default::default()
    });
    let addr = s.address().strip_prefix("tcp://").unwrap().to_string();
    let mut raw = TcpStream::connect(&addr).await.unwrap();
    encode_batch(
        &[Message::Hello {
            magic: "rask".into(),
            protocol: 2,
            role: Role::Client,
            name: "future".into(),
            token: Some("s3cret".into()),
        }],
        vec![],
    )
    .write_to(&mut raw)
    .await
    .unwrap();
    let w = WireMessage::read_from(&mut raw, &Limits::default())
        .await
        .unwrap()
        .unwrap();
    let msgs = rask::protocol::decode_batch(&w).unwrap();
    match msgs[0].as_ref().unwrap() {
        Message::Error { message, code, .. } => {
            assert_eq!(code.as_deref(), Some("version-mismatch"));
            assert!(message.contains('2') && message.contains('1'), "{message}");
        }
        m => panic!("{m:?}"),
    }

    // No token, a wrong token, a peer role: refused. The right token: in.
    for (role, token) in [
        (Role::Client, None),
        (Role::Worker, Some("guess".to_string())),
        (Role::Peer, Some("s3cret".to_string())),
    ] {
        let e = connect(s.address(), role, "x", token, Limits::default(), T)
            .await
            .unwrap_err();
        assert!(e.0.contains("refused"), "{e}");
    }
    connect(
        s.address(),
        Role::Client,
        "ok",
        Some("s3cret".into()),
        Limits::default(),
        T,
    )
    .await
    .unwrap();
    s.shutdown_async().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_workers_are_removed_and_their_tasks_rescheduled() {
    let s = start(SchedulerConfig {
        heartbeat_timeout: Duration::from_millis(300),
        ..Default::default()
    });
    let (mut w1i, w1o, _) = conn(&s, Role::Worker, "silent").await;
    register(&w1o, 1, &["inc", "add"]).await;
    let (mut ci, co, _) = conn(&s, Role::Client, "c").await;
    co.send(Message::UpdateGraph {
        graph: ByteBuf::from(hex(CLASSIC)),
        keys: vec!["z".into()],
        retries: 0,
        from_task: false,
        id: None,
    });
    let mut p1 = Vec::new();
    assert!(matches!(
        next(&mut w1i, &mut p1).await,
        Message::ComputeTask { .. }
    ));
    // A second worker that keeps its heartbeat.
    let (mut w2i, w2o, _) = conn(&s, Role::Worker, "alive").await;
    register(&w2o, 1, &["inc", "add"]).await;
    let beat = w2o.clone();
    let hb = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if !beat.send(Message::Heartbeat {
                executing: 0,
                memory: 0,
                spilled: 0,
                process: 0,
                paused: false,
                cpu: None,
            }) {
                break;
            }
        }
    });
    // The silent one is closed; its tasks move to the other.
    loop {
        match next(&mut w1i, &mut p1).await {
            Message::Close { reason } => {
                assert!(reason.contains("heartbeat"), "{reason}");
                break;
            }
            Message::ComputeTask { .. } => {}
            m => panic!("{m:?}"),
        }
    }
    let mut store = HashMap::new();
    let mut p2 = Vec::new();
    let mut cp = Vec::new();
    let done = tokio::spawn(async move {
        loop {
            match next(&mut ci, &mut cp).await {
                Message::KeyInMemory { key, .. } => break key,
                // The silent worker may be removed before the scheduler has
                // read the second one's registration: for that moment no
                // worker offers `inc`, and the client is rightly warned.
                Message::Warning { code, .. } if code == "no-worker" => {}
                m => panic!("{m:?}"),
            }
        }
    });
    let worker = async {
        work(&mut w2i, &w2o, &mut store, &mut p2, |_| false).await;
    };
    tokio::select! {
        k = done => assert_eq!(k.unwrap(), "z"),
        _ = worker => unreachable!(),
    }
    hb.abort();
    s.shutdown_async().await;
}

#[test]
fn the_binary_prints_its_address_and_stops_on_sigterm() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_rask-scheduler"))
        .args(["--port", "0", "--name", "bin-test"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("rask-scheduler listening on ")
        .unwrap_or_else(|| panic!("{line:?}"))
        .to_string();
    assert!(addr.starts_with("tcp://127.0.0.1:"), "{addr}");
    assert!(!addr.ends_with(":0"));
    let welcome = rask::runtime::block_on(async {
        connect(&addr, Role::Client, "c", None, Limits::default(), T)
            .await
            .unwrap()
            .2
    });
    assert_eq!(welcome.name, "bin-test");
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn the_binary_explains_its_options() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rask-scheduler"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for opt in [
        "--host",
        "--port",
        "--name",
        "--heartbeat-timeout",
        "--auth-token-file",
        "8786",
        "127.0.0.1",
    ] {
        assert!(help.contains(opt), "--help lacks {opt}: {help}");
    }
}

/// Reads `inbox` to its end. A worker (`outbox` given) finishes every
/// `compute-task` as it comes, counting them in `computed`. The connection
/// must end cleanly (end of stream, no error, within T), and the last
/// message before the end must be the scheduler's `close`: its reason is
/// returned, or what went wrong instead.
async fn read_until_closed(
    mut inbox: Inbox,
    worker: Option<Outbox>,
    computed: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> Result<String, String> {
    let mut last = None;
    loop {
        match tokio::time::timeout(T, inbox.recv()).await {
            Err(_) => return Err(format!("still open after {T:?}; last message {last:?}")),
            Ok(Err(e)) => return Err(format!("error {e} instead of close; last message {last:?}")),
            Ok(Ok(None)) => break,
            Ok(Ok(Some(r))) => {
                for m in r.messages {
                    let m = m.map_err(|e| format!("a message that does not decode: {e}"))?;
                    if let (Some(o), Message::ComputeTask { key, .. }) = (&worker, &m) {
                        computed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        o.send(Message::TaskFinished {
                            key: key.clone(),
                            nbytes: 8,
                            duration: 1e-6,
                            value: Some(ByteBuf::from(
                                rask::value::encode(&Value::from(1)).unwrap(),
                            )),
                        });
                    }
                    last = Some(m);
                }
            }
        }
    }
    match last {
        Some(Message::Close { reason }) => Ok(reason),
        other => Err(format!("the last message was {other:?}, not close")),
    }
}

/// Shutting down under load: every worker and client connection receives
/// `close` as its last message, then a clean end of stream — no peer ever
/// sees a lost connection instead. Repeated, since a lost `close` is a race.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_peer_receives_close_on_shutdown_under_load() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    for round in 0..5 {
        let s = start(SchedulerConfig::default());
        let computed = Arc::new(AtomicUsize::new(0));
        let mut peers = Vec::new();
        for i in 0..3 {
            let (wi, wo, _) = conn(&s, Role::Worker, &format!("w{i}")).await;
            register(&wo, 2, &["inc"]).await;
            peers.push((
                format!("worker {i}"),
                tokio::spawn(read_until_closed(wi, Some(wo), computed.clone())),
            ));
        }
        let mut senders = Vec::new();
        for i in 0..3 {
            let (ci, co, _) = conn(&s, Role::Client, &format!("c{i}")).await;
            peers.push((
                format!("client {i}"),
                tokio::spawn(read_until_closed(ci, None, computed.clone())),
            ));
            // The load: graphs of 200 new tasks each, until the shutdown
            // closes the connection (send fails) or 50 graphs are sent.
            senders.push(tokio::spawn(async move {
                for j in 0..50 {
                    let mut g = rask::Graph::new();
                    let mut keys = Vec::new();
                    for k in 0..200 {
                        let v = format!("v-{round}-{i}-{j}-{k}");
                        g.add_value(&v, k).unwrap();
                        let r = g.r(&v).unwrap();
                        let t = format!("t-{round}-{i}-{j}-{k}");
                        g.add_task(&t, "inc", vec![r]).unwrap();
                        keys.push(t);
                    }
                    let graph = ByteBuf::from(g.to_msgpack(&keys).unwrap());
                    if !co.send(Message::UpdateGraph {
                        graph,
                        keys,
                        retries: 0,
                        from_task: false,
                        id: None,
                    }) {
                        break;
                    }
                    tokio::task::yield_now().await;
                }
                // Kept open: dropping the last outbox ends the stream, and
                // a client that closes its side is not sent `close`.
                co
            }));
        }
        // Shut down while tasks are flowing (a deadline poll, not a sleep).
        let deadline = tokio::time::Instant::now() + T;
        while computed.load(Ordering::Relaxed) < 300 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "round {round}: no load"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // The shutdown runs while the peers read their `close`; each then
        // ends its side, as rask's clients and workers do (the scheduler
        // reads until then before it closes a socket: a socket closed with
        // unread bytes is reset, and the reset cost a peer its `close`).
        let s = std::sync::Arc::new(s);
        let shutdown = {
            let s = s.clone();
            tokio::spawn(async move { s.shutdown_async().await })
        };
        let mut outboxes = Vec::new();
        for t in senders {
            outboxes.push(t.await.unwrap());
        }
        for (who, p) in peers {
            match p.await.unwrap() {
                Ok(reason) => assert!(reason.contains("shutting down"), "{who}: {reason}"),
                Err(e) => panic!("round {round}, {who}: {e}"),
            }
        }
        drop(outboxes);
        shutdown.await.unwrap();
    }
}

/// The dashboard link travels in `welcome`: clients and workers learn it
/// from the scheduler; without a dashboard there is none.
#[test]
fn welcome_carries_the_dashboard_link() {
    let hello = |s: &SchedulerHandle, role: Role| {
        let address = s.address().to_string();
        rask::runtime::block_on(async move {
            connect(&address, role, "x", None, Limits::default(), T)
                .await
                .unwrap()
                .2
                .dashboard
        })
    };
    let s = start(SchedulerConfig {
        dashboard: Some("127.0.0.1:0".into()),
        ..SchedulerConfig::default()
    });
    let link = s.dashboard_link().unwrap().to_string();
    assert!(link.starts_with("http://127.0.0.1:") && link.ends_with("/status"));
    for role in [Role::Client, Role::Worker] {
        assert_eq!(hello(&s, role).as_deref(), Some(link.as_str()), "{role:?}");
    }
    let client =
        rask::client::Client::connect(s.address(), rask::client::ClientConfig::default()).unwrap();
    assert_eq!(client.dashboard_link(), Some(link.as_str()));
    drop(client);

    let plain = start(SchedulerConfig::default());
    assert_eq!(plain.dashboard_link(), None);
    assert_eq!(hello(&plain, Role::Client), None);
}

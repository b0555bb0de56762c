//! The client's protocol behaviour, pinned against a fake scheduler and a
//! fake worker data port (tests/fake): what it sends, when, and how it
//! reacts to what it receives. tests/client.rs runs the client against the
//! real scheduler and workers.

mod fake;

use fake::{released, Fake};
use rask::client::{Client, ClientArg, ClientConfig, ClientError, Status, SubmitOptions, WaitMode};
use rask::protocol::Message;
use rask::{Graph, Tensor, Value};
use serde_bytes::ByteBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const T: Option<Duration> = Some(Duration::from_secs(10));

fn connect(f: &Fake) -> Client {
    Client::connect(&f.address, ClientConfig::default()).unwrap()
}

fn is_update(m: &Message) -> bool {
    matches!(m, Message::UpdateGraph { .. })
}

fn inline(v: Value) -> Option<ByteBuf> {
    Some(ByteBuf::from(rask::value::encode(&v).unwrap()))
}

#[test]
fn submit_names_keys_by_the_call_and_sends_one_task() {
    let fake = Fake::auto();
    let c = connect(&fake);
    let a = c.submit("inc", vec![1.into()]).unwrap();
    assert_eq!(a.result(T).unwrap(), Value::Int(2));
    assert_eq!(a.status(), Status::Finished);
    let key = a.key().to_string();
    assert!(key.starts_with("inc-") && key.len() == 36, "{key}");
    assert!(key[4..].chars().all(|c| c.is_ascii_hexdigit()));
    // The same call is the same key, and the client sends nothing new.
    let again = c.submit("inc", vec![1.into()]).unwrap();
    assert_eq!(again, a);
    assert_eq!(again.result(T).unwrap(), Value::Int(2));
    assert_eq!(fake.count(is_update), 1);
    // Another argument, another key; the key is stable across clients.
    let other = c.submit("inc", vec![2.into()]).unwrap();
    assert_ne!(other.key(), a.key());
    let c2 = connect(&fake);
    assert_eq!(c2.submit("inc", vec![1.into()]).unwrap().key(), key);
    // Explicit and impure keys.
    let named = c
        .submit_with(
            "inc",
            vec![5.into()],
            &SubmitOptions {
                key: Some("my-key".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(named.key(), "my-key");
    assert_eq!(named.result(T).unwrap(), Value::Int(6));
    let impure = SubmitOptions {
        pure: false,
        ..Default::default()
    };
    let i1 = c.submit_with("inc", vec![1.into()], &impure).unwrap();
    let i2 = c.submit_with("inc", vec![1.into()], &impure).unwrap();
    assert_ne!(i1.key(), i2.key());
    assert!(i1.key().starts_with("inc-"));
    // What went over the wire for the first submit.
    let (_, m) = fake.wait_msg(0, is_update);
    let Message::UpdateGraph {
        graph,
        keys,
        retries,
        ..
    } = m
    else {
        unreachable!()
    };
    assert_eq!(keys, vec![key.clone()]);
    assert_eq!(retries, 0);
    let (g, _) = Graph::from_msgpack(&graph).unwrap();
    assert_eq!(g.len(), 1);
    assert!(g.lookup(&key).is_some());
}

#[test]
fn futures_as_arguments_map_and_gather() {
    let fake = Fake::auto();
    let c = connect(&fake);
    let a = c.submit("inc", vec![1.into()]).unwrap();
    let b = c.submit("add", vec![(&a).into(), 10.into()]).unwrap();
    let s = c
        .submit(
            "sum",
            vec![ClientArg::List(vec![(&a).into(), (&b).into(), 100.into()])],
        )
        .unwrap();
    assert_eq!(
        c.gather(&[a.clone(), b.clone(), s]).unwrap(),
        vec![Value::Int(2), Value::Int(12), Value::Int(114)]
    );
    // The dependent task refers to the future's key.
    let (_, m) = fake.wait_msg(
        0,
        |m| matches!(m, Message::UpdateGraph { keys, .. } if keys[0] == b.key()),
    );
    let Message::UpdateGraph { graph, .. } = m else {
        unreachable!()
    };
    let (g, _) = Graph::from_msgpack(&graph).unwrap();
    assert!(g.lookup(a.key()).is_some(), "the ref names a's key");
    assert_eq!(g.len(), 1, "only the new task travels");

    let before = fake.count(is_update);
    let fs = c
        .map("inc", (0..100).map(|i| vec![ClientArg::from(i)]).collect())
        .unwrap();
    let vals = c.gather(&fs).unwrap();
    assert_eq!(fake.count(is_update), before + 1, "map is one update-graph");
    assert_eq!(vals, (1..=100).map(Value::Int).collect::<Vec<_>>());
    // Duplicated calls in one map are one task.
    let fs = c.map("inc", vec![vec![7.into()], vec![7.into()]]).unwrap();
    assert_eq!(fs[0], fs[1]);
    assert_eq!(c.gather(&fs).unwrap(), vec![Value::Int(8), Value::Int(8)]);
}

#[test]
fn compute_sends_the_culled_graph() {
    let fake = Fake::auto();
    let c = connect(&fake);
    let mut g = Graph::new();
    g.add_value("a", 1).unwrap();
    g.add_value("x", 10).unwrap();
    g.add_value("unused", 3).unwrap();
    let a = g.r("a").unwrap();
    g.add_task("b", "inc", vec![a]).unwrap();
    let x = g.r("x").unwrap();
    g.add_task("y", "inc", vec![x]).unwrap();
    let (b, y) = (g.r("b").unwrap(), g.r("y").unwrap());
    g.add_task("z", "add", vec![b, y]).unwrap();
    g.add_task("other", "inc", vec![5.into()]).unwrap();
    let fs = c.compute(&g, &["z", "a"]).unwrap();
    assert_eq!(fs[0].key(), "z");
    assert_eq!(c.gather(&fs).unwrap(), vec![Value::Int(13), Value::Int(1)]);
    let (_, m) = fake.wait_msg(0, is_update);
    let Message::UpdateGraph { graph, keys, .. } = m else {
        unreachable!()
    };
    assert_eq!(keys, vec!["z", "a"]);
    let (sent, _) = Graph::from_msgpack(&graph).unwrap();
    assert!(sent.lookup("other").is_none() && sent.lookup("unused").is_none());
    assert_eq!(sent.len(), 5);
    // A bad graph is refused before anything is sent.
    let mut bad = Graph::new();
    let q = bad.r("q").unwrap();
    bad.add_task("b", "inc", vec![q]).unwrap();
    let e = c.compute(&bad, &["b"]).unwrap_err();
    assert!(
        matches!(&e, ClientError::BadArgument(m) if m.contains("'q'")),
        "{e}"
    );
    assert!(matches!(
        c.compute(&g, &["nope"]),
        Err(ClientError::BadArgument(_))
    ));
    assert_eq!(fake.count(is_update), 1);
}

#[test]
fn large_values_are_fetched_in_one_get_data_per_worker() {
    let fake = Fake::auto();
    fake.shared.inline_limit.store(0, Ordering::Relaxed);
    // The worker answers in several `data` messages of 3 values.
    fake.shared.data_chunk.store(3, Ordering::Relaxed);
    let c = connect(&fake);
    let fs = c
        .map("inc", (0..10).map(|i| vec![ClientArg::from(i)]).collect())
        .unwrap();
    c.wait(&fs, WaitMode::All, T);
    let vals = c.gather(&fs).unwrap();
    assert_eq!(vals, (1..=10).map(Value::Int).collect::<Vec<_>>());
    assert_eq!(fake.shared.get_data_requests.load(Ordering::Relaxed), 1);
    assert_eq!(fs[3].result(T).unwrap(), Value::Int(4));
    assert_eq!(fake.shared.get_data_requests.load(Ordering::Relaxed), 2);
}

#[test]
fn a_worker_that_is_gone_is_replaced_through_who_has() {
    let fake = Fake::auto();
    fake.shared.inline_limit.store(0, Ordering::Relaxed);
    // key-in-memory names a worker nobody listens on.
    let (_held, nobody) = fake::refused_address();
    *fake.shared.advertise.lock().unwrap() = Some(nobody);
    let c = connect(&fake);
    let f = c.submit("inc", vec![41.into()]).unwrap();
    assert_eq!(f.result(T).unwrap(), Value::Int(42));
    fake.wait_msg(
        0,
        |m| matches!(m, Message::WhoHas { keys, .. } if keys == &[f.key()]),
    );
}

#[test]
fn data_no_worker_holds_is_an_error_after_the_timeout() {
    let fake = Fake::auto();
    fake.shared.inline_limit.store(0, Ordering::Relaxed);
    let c = Client::connect(
        &fake.address,
        ClientConfig {
            timeout: Duration::from_millis(300),
            ..Default::default()
        },
    )
    .unwrap();
    let f = c.submit("inc", vec![1.into()]).unwrap();
    assert!(f.wait(T));
    fake.shared.store.lock().unwrap().clear();
    let t0 = Instant::now();
    let e = f.result(T).unwrap_err();
    assert!(
        matches!(&e, ClientError::Data(m) if m.contains(f.key())),
        "{e}"
    );
    let _ = t0; // a Data error, not a Timeout of T: the client's own 300 ms decided
}

#[test]
fn dropping_the_last_future_releases_its_key_in_batches() {
    let fake = Fake::auto();
    let c = connect(&fake);
    let a = c.submit("inc", vec![1.into()]).unwrap();
    a.wait(T);
    let a2 = a.clone();
    drop(a);
    std::thread::sleep(Duration::from_millis(50));
    assert!(
        released(&fake.messages()).is_empty(),
        "a clone is still alive"
    );
    let key = a2.key().to_string();
    drop(a2);
    fake.wait_msg(
        0,
        |m| matches!(m, Message::ReleaseKeys { keys, .. } if keys == std::slice::from_ref(&key)),
    );

    let fs = c
        .map("inc", (0..1000).map(|i| vec![ClientArg::from(i)]).collect())
        .unwrap();
    c.wait(&fs, WaitMode::All, T);
    let keys: Vec<String> = fs.iter().map(|f| f.key().to_string()).collect();
    let before = fake.count(|m| matches!(m, Message::ReleaseKeys { .. }));
    drop(fs);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !keys.iter().all(|k| released(&fake.messages()).contains(k)) {
        assert!(Instant::now() < deadline, "not every key was released");
        std::thread::sleep(Duration::from_millis(5));
    }
    let batches = fake.count(|m| matches!(m, Message::ReleaseKeys { .. })) - before;
    assert!(batches < 50, "1000 releases took {batches} messages");
}

#[test]
fn a_release_reaches_the_scheduler_before_a_resubmission() {
    let fake = Fake::auto();
    let c = connect(&fake);
    for _ in 0..20 {
        let f = c.submit("inc", vec![1.into()]).unwrap();
        assert_eq!(f.result(T).unwrap(), Value::Int(2));
        drop(f);
        // Resubmitted at once: the queued release goes first.
        let f = c.submit("inc", vec![1.into()]).unwrap();
        assert_eq!(f.result(T).unwrap(), Value::Int(2));
    }
    // Each update-graph after the first follows a release of its key.
    let msgs = fake.messages();
    let mut wanted = false;
    for m in &msgs {
        match m {
            Message::UpdateGraph { .. } => {
                assert!(!wanted, "update-graph for a key the scheduler still has");
                wanted = true;
            }
            Message::ReleaseKeys { .. } => wanted = false,
            _ => {}
        }
    }
}

#[test]
fn cancel_is_immediate_and_late_answers_do_not_cancel_a_resubmission() {
    let fake = Fake::manual();
    let c = connect(&fake);
    let f = c.submit("inc", vec![1.into()]).unwrap();
    let key = f.key().to_string();
    assert_eq!(f.status(), Status::Pending);
    c.cancel(std::slice::from_ref(&f)).unwrap();
    assert_eq!(f.status(), Status::Cancelled);
    assert!(matches!(f.result(T), Err(ClientError::Cancelled(k)) if k == key));
    assert!(matches!(f.exception(), Some(ClientError::Cancelled(_))));
    fake.wait_msg(
        0,
        |m| matches!(m, Message::CancelKeys { keys, .. } if keys == std::slice::from_ref(&key)),
    );
    // Resubmitted before the scheduler's answer arrives.
    let g = c.submit("inc", vec![1.into()]).unwrap();
    assert_eq!(g.status(), Status::Pending);
    let (i, _) = fake.wait_msg(0, is_update);
    fake.wait_msg(i + 1, is_update);
    fake.send(Message::KeyCancelled { key: key.clone() });
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(g.status(), Status::Pending, "the answer to the old cancel");
    fake.send(Message::KeyInMemory {
        key: key.clone(),
        nbytes: 8,
        workers: vec![],
        value: inline(Value::Int(2)),
    });
    assert_eq!(g.result(T).unwrap(), Value::Int(2));
    // A cancel the scheduler decides on its own is applied.
    let h = c.submit("inc", vec![2.into()]).unwrap();
    fake.send(Message::KeyCancelled {
        key: h.key().to_string(),
    });
    assert!(h.wait(T));
    assert_eq!(h.status(), Status::Cancelled);
}

#[test]
fn remote_errors_carry_every_field_and_reach_dependents() {
    let fake = Fake::auto();
    let c = connect(&fake);
    let bad = c.submit("inc", vec!["text".into()]).unwrap();
    let e = bad.result(T).unwrap_err();
    let t = e.task().expect("a task error");
    assert_eq!(t.key, bad.key());
    assert_eq!(t.failed, bad.key());
    assert_eq!(t.func, "inc");
    assert_eq!(t.worker, fake.data_address);
    assert!(t.message.contains("inc"), "{}", t.message);
    assert_eq!(bad.status(), Status::Error);
    assert_eq!(bad.exception(), Some(e.clone()));
    let shown = e.to_string();
    assert!(
        shown.contains(bad.key()) && shown.contains(&fake.data_address),
        "{shown}"
    );
    let dep = c.submit("inc", vec![(&bad).into()]).unwrap();
    let e = dep.result(T).unwrap_err();
    let t = e.task().unwrap();
    assert_eq!(t.key, dep.key());
    assert_eq!(t.failed, bad.key());
    // gather reports the first failure in order.
    let ok = c.submit("inc", vec![1.into()]).unwrap();
    let e = c.gather(&[ok, dep.clone(), bad.clone()]).unwrap_err();
    assert_eq!(e.task().unwrap().key, dep.key());
}

#[test]
fn wait_first_completed_with_a_timeout() {
    let fake = Fake::manual();
    let c = connect(&fake);
    let a = c.submit("inc", vec![1.into()]).unwrap();
    let b = c.submit("inc", vec![2.into()]).unwrap();
    let t0 = Instant::now();
    let (done, not_done) = c.wait(
        &[a.clone(), b.clone()],
        WaitMode::FirstCompleted,
        Some(Duration::from_millis(100)),
    );
    assert!(t0.elapsed() >= Duration::from_millis(100));
    assert!(done.is_empty());
    assert_eq!(not_done.len(), 2);
    let key = b.key().to_string();
    fake.send(Message::KeyInMemory {
        key,
        nbytes: 8,
        workers: vec![],
        value: inline(Value::Int(3)),
    });
    let (done, not_done) = c.wait(&[a.clone(), b.clone()], WaitMode::FirstCompleted, T);
    assert_eq!(done, vec![b.clone()]);
    assert_eq!(not_done, vec![a.clone()]);
    let (done, not_done) = c.wait(
        &[a.clone(), b],
        WaitMode::All,
        Some(Duration::from_millis(50)),
    );
    assert_eq!((done.len(), not_done.len()), (1, 1));
}

#[test]
fn as_completed_yields_in_finishing_order_and_takes_additions() {
    let fake = Fake::manual();
    let c = connect(&fake);
    let fs: Vec<_> = (0..3)
        .map(|i| c.submit("inc", vec![ClientArg::from(i)]).unwrap())
        .collect();
    let ac = c.as_completed(fs.clone());
    let finish = |k: &str, v: i64| {
        fake.send(Message::KeyInMemory {
            key: k.to_string(),
            nbytes: 8,
            workers: vec![],
            value: inline(Value::Int(v)),
        })
    };
    finish(fs[2].key(), 3);
    let first = (&ac).next().unwrap();
    assert_eq!(first, fs[2]);
    // Add while iterating: a new task, and one that is already done.
    let extra = c.submit("inc", vec![10.into()]).unwrap();
    ac.add(extra.clone());
    ac.add(first.clone());
    assert_eq!((&ac).next().unwrap(), fs[2]);
    assert_eq!(ac.len(), 3);
    finish(extra.key(), 11);
    finish(fs[0].key(), 1);
    let a = (&ac).next().unwrap();
    let b = (&ac).next().unwrap();
    assert_eq!(vec![a, b], vec![extra, fs[0].clone()]);
    assert_eq!(
        ac.next_timeout(Some(Duration::from_millis(50))),
        Err(()),
        "fs[1] is not done"
    );
    fake.send(Message::KeyErred {
        key: fs[1].key().to_string(),
        failed: fs[1].key().to_string(),
        func: "inc".into(),
        worker: String::new(),
        message: "boom".into(),
        exception: String::new(),
        traceback: String::new(),
    });
    let last = (&ac).next().unwrap();
    assert_eq!(last.status(), Status::Error);
    assert!((&ac).next().is_none());
}

#[test]
fn adaptive_search_with_as_completed_on_auto_scheduler() {
    let fake = Fake::auto();
    let c = connect(&fake);
    let ac = c.as_completed(
        (0..4)
            .map(|i| c.submit("inc", vec![ClientArg::from(i * 100)]).unwrap())
            .collect(),
    );
    let mut seen = 0;
    for f in &ac {
        seen += 1;
        let v = f.result(T).unwrap().as_i64().unwrap();
        if v % 100 < 5 {
            ac.add(c.submit("inc", vec![(&f).into()]).unwrap());
        }
    }
    assert_eq!(seen, 4 * 5);
}

#[test]
fn scatter_puts_values_on_workers_and_tells_the_scheduler() {
    let fake = Fake::auto();
    let c = connect(&fake);
    let n = 10 << 20;
    let data: Vec<u8> = (0..n).map(|i| (i * 7 + i / 251) as u8).collect();
    let t = Tensor::new(
        rask::value::DType::U8,
        vec![n],
        bytes::Bytes::from(data.clone()),
    )
    .unwrap();
    let fs = c
        .scatter(
            vec![
                Value::Int(5),
                Value::Tensor(t),
                Value::Bin(bytes::Bytes::from_static(b"raw")),
            ],
            false,
        )
        .unwrap();
    assert!(fs.iter().all(|f| f.status() == Status::Finished));
    assert!(fs[0].key().starts_with("scatter-"));
    let (_, m) = fake.wait_msg(0, |m| matches!(m, Message::Scattered { .. }));
    let Message::Scattered {
        who_has,
        nbytes,
        id: Some(_),
    } = m
    else {
        unreachable!()
    };
    assert_eq!(who_has[fs[1].key()], vec![1]);
    assert!(nbytes[fs[1].key()] >= n as u64);
    fake.wait_msg(0, |m| matches!(m, Message::GetWorkers { .. }));
    // The values are on the worker, byte for byte.
    let stored = fake.shared.store.lock().unwrap()[fs[1].key()].clone();
    assert_eq!(stored.as_tensor().unwrap().data().as_ref(), &data[..]);
    // And they come back, and serve as arguments.
    let back = c.gather(&fs).unwrap();
    assert_eq!(back[0], Value::Int(5));
    let bt = back[1].as_tensor().unwrap();
    assert_eq!(bt.shape(), &[n]);
    assert!(
        bt.data().as_ref() == &data[..],
        "tensor differs after gather"
    );
    assert_eq!(back[2], Value::Bin(bytes::Bytes::from_static(b"raw")));
    let inc = c.submit("inc", vec![(&fs[0]).into()]).unwrap();
    assert_eq!(inc.result(T).unwrap(), Value::Int(6));
    let bc = c.scatter(vec![Value::Int(1)], true).unwrap();
    assert_eq!(bc[0].result(T).unwrap(), Value::Int(1));
}

#[test]
fn a_scheduler_that_goes_away_fails_pending_calls() {
    let mut fake = Fake::manual();
    let c = connect(&fake);
    let f = c.submit("inc", vec![1.into()]).unwrap();
    let waiter = std::thread::spawn({
        let f = f.clone();
        move || f.result(None)
    });
    let ac = c.as_completed(vec![f.clone()]);
    std::thread::sleep(Duration::from_millis(50));
    fake.kill();
    let e = waiter.join().unwrap().unwrap_err();
    assert!(
        matches!(&e, ClientError::ConnectionClosed(m) if m.contains("connection to the scheduler at") && m.contains(" lost: ")),
        "{e}"
    );
    assert_eq!(f.status(), Status::Error);
    assert_eq!((&ac).next().unwrap(), f);
    let (done, _) = c.wait(std::slice::from_ref(&f), WaitMode::All, None);
    assert_eq!(done.len(), 1);
    assert!(matches!(
        c.submit("inc", vec![2.into()]),
        Err(ClientError::ConnectionClosed(_))
    ));
    assert!(matches!(c.workers(), Err(ClientError::ConnectionClosed(_))));
    assert!(c.closed_reason().is_some());
}

#[test]
fn closing_releases_everything_and_says_close() {
    let fake = Fake::auto();
    let c = connect(&fake);
    let f = c.submit("inc", vec![1.into()]).unwrap();
    f.wait(T);
    let key = f.key().to_string();
    let c2 = c.clone();
    drop(c);
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(
        fake.count(|m| matches!(m, Message::Close { .. })),
        0,
        "a clone is alive"
    );
    drop(c2);
    fake.wait_msg(0, |m| matches!(m, Message::Close { .. }));
    assert!(released(&fake.messages()).contains(&key));
    // The future outlives its client.
    assert!(
        matches!(f.result(T), Ok(Value::Int(2))),
        "an inline value stays"
    );
    drop(f);
    let c = connect(&fake);
    let g = c.submit("inc", vec![7.into()]).unwrap();
    c.close();
    c.close();
    assert!(matches!(g.result(T), Err(ClientError::ConnectionClosed(m)) if m.contains("closed")));
    assert!(c.submit("inc", vec![1.into()]).is_err());
}

#[test]
fn a_bad_graph_error_fails_the_keys_of_the_graph_whose_id_it_echoes() {
    let fake = Fake::manual();
    let c = connect(&fake);
    let f = c.submit("inc", vec![1.into()]).unwrap();
    let other = c.submit("inc", vec![2.into()]).unwrap();
    // Two graphs in flight, each with its own request id.
    let graph_id = |key: &str| {
        let (_, m) = fake.wait_msg(
            0,
            |m| matches!(m, Message::UpdateGraph { keys, .. } if keys[0] == key),
        );
        match m {
            Message::UpdateGraph { id: Some(id), .. } => id,
            m => panic!("an update-graph without an id: {m:?}"),
        }
    };
    let (first, second) = (graph_id(f.key()), graph_id(other.key()));
    assert_ne!(first, second);
    // The error names no key: only its id says which graph it refuses.
    fake.send(Message::Error {
        message: "the graph is not valid msgpack".into(),
        code: Some("bad-graph".into()),
        id: Some(first),
    });
    let e = f.result(T).unwrap_err();
    assert!(
        matches!(&e, ClientError::Protocol(m) if m.contains("refused the graph: the graph is not valid")),
        "{e}"
    );
    assert_eq!(other.status(), Status::Pending);
    // An error echoing an id nobody waits for fails nothing.
    fake.send(Message::Error {
        message: "no such thing".into(),
        code: Some("unknown-key".into()),
        id: Some(first + second + 100),
    });
    // A scheduler that does not echo ids: the last graph's keys fail.
    fake.send(Message::error(
        "cycle: a -> a",
        rask::protocol::ErrorCode::BadGraph,
    ));
    let e = other.result(T).unwrap_err();
    assert!(
        matches!(&e, ClientError::Protocol(m) if m.contains("cycle")),
        "{e}"
    );
}

#[test]
fn requests_time_out_and_bad_arguments_are_refused() {
    let fake = Fake::manual();
    let c = Client::connect(
        &fake.address,
        ClientConfig {
            timeout: Duration::from_millis(200),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(matches!(c.workers(), Err(ClientError::Timeout(_))));
    let other_fake = Fake::auto();
    let other = connect(&other_fake);
    let foreign = other.submit("inc", vec![1.into()]).unwrap();
    assert!(matches!(
        c.submit("inc", vec![(&foreign).into()]),
        Err(ClientError::BadArgument(_))
    ));
    assert!(matches!(
        c.gather(&[foreign]),
        Err(ClientError::BadArgument(_))
    ));
    assert!(matches!(
        c.submit("", vec![]),
        Err(ClientError::BadArgument(_))
    ));
    let (_held, nobody) = fake::refused_address();
    let e = Client::connect(&nobody, ClientConfig::default()).unwrap_err();
    assert!(matches!(e, ClientError::ConnectionFailed(_)), "{e}");
    assert!(matches!(
        Client::connect("nonsense", ClientConfig::default()),
        Err(ClientError::ConnectionFailed(_))
    ));
}

/// Client-side cost of `map` and of receiving results, against a fake
/// scheduler that does nothing else. Run with `--ignored --nocapture`
/// (in release mode for meaningful numbers).
#[test]
#[ignore]
fn client_side_cost_of_100k_tasks() {
    let fake = Fake::manual();
    let c = connect(&fake);
    let n = 100_000;
    let t0 = Instant::now();
    let calls: Vec<Vec<ClientArg>> = (0..n).map(|i| vec![ClientArg::from(i)]).collect();
    let t1 = Instant::now();
    let fs = c.map("noop", calls).unwrap();
    let t2 = Instant::now();
    fake.wait_msg(0, is_update);
    let t3 = Instant::now();
    for chunk in fs.chunks(1000) {
        for f in chunk {
            fake.send(Message::KeyInMemory {
                key: f.key().to_string(),
                nbytes: 16,
                workers: vec![],
                value: inline(Value::Nil),
            });
        }
    }
    let t4 = Instant::now();
    let vals = c.gather(&fs).unwrap();
    let t5 = Instant::now();
    assert_eq!(vals.len(), n as usize);
    drop(fs);
    let t6 = Instant::now();
    let us = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e6 / n as f64;
    eprintln!(
        "per task: args {:.3} µs, map {:.3} µs, to the fake {:.3} µs, fake sends {:.3} µs, gather {:.3} µs, drop {:.3} µs",
        us(t0, t1),
        us(t1, t2),
        us(t2, t3),
        us(t3, t4),
        us(t4, t5),
        us(t5, t6)
    );
}

#[test]
fn handles_can_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Client>();
    send_sync::<rask::client::Future>();
    send_sync::<rask::client::AsCompleted>();
    send_sync::<ClientError>();
}

/// A client that closes while the scheduler is still sending to it: its
/// last messages (`release-keys`, `close`) arrive. Its reader keeps reading
/// (lingers) until the scheduler ends its side; dropping it at once would
/// close a socket with unread bytes, which the kernel answers with a reset
/// that can cost the scheduler what the client wrote last.
#[test]
fn a_closing_clients_last_messages_arrive_while_the_scheduler_is_still_sending() {
    for round in 0..4 {
        let fake = Fake::manual();
        let c = connect(&fake);
        let fs = c
            .map("inc", (0..300).map(|i| vec![(i as i64).into()]).collect())
            .unwrap();
        fake.wait_msg(0, is_update);
        let keys: Vec<String> = fs.iter().map(|f| f.key().to_string()).collect();
        let stop = std::sync::atomic::AtomicBool::new(false);
        let sent = std::sync::atomic::AtomicUsize::new(0);
        // Stops the flood however the scope ends (a failed wait included).
        struct Stop<'a>(&'a std::sync::atomic::AtomicBool);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        std::thread::scope(|s| {
            // The scheduler keeps sending: topic messages nobody reads.
            s.spawn(|| {
                let value = rask::value::encode(&Value::from("x".repeat(1000))).unwrap();
                let value = ByteBuf::from(value);
                // At most 50 MB queued, should the client stop reading.
                while !stop.load(Ordering::Relaxed) && sent.load(Ordering::Relaxed) < 50_000 {
                    for _ in 0..64 {
                        fake.send(Message::TopicMessage {
                            name: "nobody".into(),
                            value: value.clone(),
                        });
                    }
                    sent.fetch_add(64, Ordering::Relaxed);
                    std::thread::yield_now();
                }
            });
            let _stop = Stop(&stop);
            // The flood is under way (2 MB queued to the client).
            let deadline = Instant::now() + Duration::from_secs(10);
            while sent.load(Ordering::Relaxed) < 2048 {
                assert!(Instant::now() < deadline, "the flood did not start");
                std::thread::yield_now();
            }
            c.close();
            fake.wait_msg(0, |m| matches!(m, Message::Close { .. }));
        });
        let released = released(&fake.messages());
        for k in &keys {
            assert!(released.contains(k), "round {round}: {k} was not released");
        }
    }
}

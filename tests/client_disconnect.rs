//! A client that goes away (close, drop, or its TCP connection simply
//! ending with no `close` and no `release-keys`): everything only it wanted
//! is released and freed on the workers; keys another client also wants,
//! and that client's futures, are untouched.

use rask::cluster::{LocalCluster, LocalClusterConfig};
use rask::protocol::conn::connect;
use rask::protocol::messages::Role;
use rask::protocol::{Limits, Message};
use rask::{Graph, Value};
use serde_bytes::ByteBuf;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const T: Option<Duration> = Some(Duration::from_secs(20));

fn cluster() -> LocalCluster {
    LocalCluster::start(LocalClusterConfig {
        workers: 2,
        threads_per_worker: 1,
        ..Default::default()
    })
    .unwrap()
}

/// Keys stored on any worker of `c`.
fn stored(c: &LocalCluster) -> BTreeSet<String> {
    c.workers().iter().flat_map(|w| w.stored_keys()).collect()
}

/// Waits until `cond` holds (at most 10 s).
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `shared-i = inc(i)` for i < 5, and `{prefix}-i = add(shared-i, 100)`.
fn graph(prefix: &str) -> (Graph, Vec<String>, Vec<String>) {
    let mut g = Graph::new();
    let mut shared = Vec::new();
    let mut private = Vec::new();
    for i in 0..5i64 {
        let s = format!("shared-{i}");
        g.add_task(&s, "inc", vec![i.into()]).unwrap();
        let p = format!("{prefix}-{i}");
        let r = g.r(&s).unwrap();
        g.add_task(&p, "add", vec![r, 100.into()]).unwrap();
        shared.push(s);
        private.push(p);
    }
    (g, shared, private)
}

fn is_private_of(k: &str, prefix: &str) -> bool {
    k.starts_with(&format!("{prefix}-"))
}

/// Client `a` goes away by `leave`; `b`'s futures still resolve and only
/// `a`'s private keys leave the workers.
fn one_client_leaves(leave: impl FnOnce(rask::client::Client, Vec<rask::client::Future>)) {
    let c = cluster();
    let a = c.client().unwrap();
    let b = c.client().unwrap();
    let (ga, shared, pa) = graph("a");
    let (gb, _, pb) = graph("b");
    let want_a: Vec<String> = shared.iter().chain(&pa).cloned().collect();
    let want_b: Vec<String> = shared.iter().chain(&pb).cloned().collect();
    let fa = a.compute(&ga, &want_a).unwrap();
    let fb = b.compute(&gb, &want_b).unwrap();
    a.gather(&fa).unwrap();
    b.gather(&fb).unwrap();
    let before = stored(&c);
    for k in want_a.iter().chain(&want_b) {
        assert!(before.contains(k), "{k} not stored: {before:?}");
    }

    leave(a, fa);

    eventually("a's private keys to be freed", || {
        !stored(&c).iter().any(|k| is_private_of(k, "a"))
    });
    let after = stored(&c);
    for k in &want_b {
        assert!(after.contains(k), "{k} of the other client was freed");
    }
    // b's futures (the shared ones included) still resolve, and serve as
    // arguments of new work.
    let vals = b.gather(&fb).unwrap();
    for (i, v) in vals[..5].iter().enumerate() {
        assert_eq!(*v, Value::Int(i as i64 + 1));
    }
    for (i, v) in vals[5..].iter().enumerate() {
        assert_eq!(*v, Value::Int(i as i64 + 101));
    }
    let more = b.submit("add", vec![(&fb[0]).into(), 1.into()]).unwrap();
    assert_eq!(more.result(T).unwrap(), Value::Int(2));
    let stats = c.scheduler_stats().unwrap();
    assert_eq!(stats.counts.clients, 1);
}

#[test]
fn a_closing_client_frees_only_its_own_keys() {
    one_client_leaves(|a, fa| {
        a.close();
        drop(fa);
    });
}

#[test]
fn a_dropped_client_frees_only_its_own_keys() {
    // The futures die first, then the client: nothing is said but the
    // releases and the close that dropping does.
    one_client_leaves(|a, fa| {
        drop(fa);
        drop(a);
    });
}

#[test]
fn an_abrupt_disconnect_frees_only_that_clients_keys() {
    // A raw protocol client: update-graph, wait for its keys, then the TCP
    // connection just ends (no release-keys, no close), as when a client
    // process is killed.
    let c = cluster();
    let b = c.client().unwrap();
    let (gb, shared, pb) = graph("b");
    let want_b: Vec<String> = shared.iter().chain(&pb).cloned().collect();
    let fb = b.compute(&gb, &want_b).unwrap();
    b.gather(&fb).unwrap();

    // The same shared keys and private `raw-i` keys, as a graph document.
    let node = |func: &str, args: Vec<Value>| {
        Value::Map(vec![
            (Value::from("func"), Value::from(func)),
            (Value::from("args"), Value::Array(args)),
        ])
    };
    let r = |k: &str| Value::Map(vec![(Value::from("ref"), Value::from(k))]);
    let lit = |v: i64| Value::Map(vec![(Value::from("value"), Value::from(v))]);
    let mut tasks = Vec::new();
    let mut keys = Vec::new();
    for i in 0..5i64 {
        let s = format!("shared-{i}");
        tasks.push((Value::from(s.as_str()), node("inc", vec![lit(i)])));
        let p = format!("raw-{i}");
        tasks.push((Value::from(p.as_str()), node("add", vec![r(&s), lit(1000)])));
        keys.push(s);
        keys.push(p);
    }
    let doc =
        rask::value::encode(&Value::Map(vec![(Value::from("tasks"), Value::Map(tasks))])).unwrap();

    let conn = rask::runtime::block_on(async {
        let (mut inbox, outbox, _) = connect(
            c.address(),
            Role::Client,
            "raw",
            None,
            Limits::default(),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        outbox.send(Message::UpdateGraph {
            graph: ByteBuf::from(doc),
            keys: keys.clone(),
            retries: 0,
            from_task: false,
            id: None,
        });
        let mut left: BTreeSet<String> = keys.iter().cloned().collect();
        while !left.is_empty() {
            let got = tokio::time::timeout(Duration::from_secs(20), inbox.recv())
                .await
                .expect("key-in-memory in time")
                .unwrap()
                .expect("the connection open");
            for m in got.messages {
                match m.unwrap() {
                    Message::KeyInMemory { key, .. } => {
                        left.remove(&key);
                    }
                    m => panic!("unexpected {m:?}"),
                }
            }
        }
        (inbox, outbox)
    });
    // Checked while the connection is still open: once it ends, the
    // scheduler may free the keys before a later look.
    let (inbox, outbox) = conn;
    assert!(stored(&c).iter().any(|k| is_private_of(k, "raw")));
    // Both halves go: the socket closes with nothing said.
    drop(inbox);
    drop(outbox);
    eventually("the raw client's private keys to be freed", || {
        !stored(&c).iter().any(|k| is_private_of(k, "raw"))
    });
    eventually("the scheduler to forget the raw client", || {
        c.scheduler_stats().unwrap().counts.clients == 1
    });
    let after = stored(&c);
    for k in &want_b {
        assert!(after.contains(k), "{k} of the other client was freed");
    }
    let vals = b.gather(&fb).unwrap();
    assert_eq!(vals[0], Value::Int(1));
    assert_eq!(vals[9], Value::Int(105));
}

/// Waits for `key-in-memory` of each of `want`.
async fn wait_for(inbox: &mut rask::protocol::conn::Inbox, want: &[String]) {
    let mut left: BTreeSet<String> = want.iter().cloned().collect();
    while !left.is_empty() {
        let got = tokio::time::timeout(Duration::from_secs(60), inbox.recv())
            .await
            .expect("key-in-memory in time")
            .unwrap()
            .expect("the connection open");
        for m in got.messages {
            if let Message::KeyInMemory { key, .. } = m.unwrap() {
                left.remove(&key);
            }
        }
    }
}

/// A release larger than one step of the scheduler's core (65,536 keys) is
/// taken a chunk per step, in turns with other connections' events, and
/// what the client sent after it still comes after it: here the client
/// releases every key and, in the same batch, submits the last one again,
/// which must then be the one task left (had the resubmission overtaken
/// the release's second chunk, nothing would be left). Then the client
/// submits them all again and its connection just ends: its wants go a
/// chunk per step too, and nothing is left.
#[test]
fn a_release_larger_than_one_step_is_taken_in_turns_and_in_order() {
    const N: usize = 70_000;
    let c = cluster();
    let node = |i: usize| {
        Value::Map(vec![
            (Value::from("func"), Value::from("inc")),
            (
                Value::from("args"),
                Value::Array(vec![Value::Map(vec![(
                    Value::from("value"),
                    Value::from(i as i64),
                )])]),
            ),
        ])
    };
    let doc = |range: std::ops::Range<usize>| {
        let tasks = range
            .map(|i| (Value::from(format!("t-{i}")), node(i)))
            .collect();
        ByteBuf::from(
            rask::value::encode(&Value::Map(vec![(Value::from("tasks"), Value::Map(tasks))]))
                .unwrap(),
        )
    };
    let keys: Vec<String> = (0..N).map(|i| format!("t-{i}")).collect();
    let last = keys[N - 1].clone();
    let submit = |keys: Vec<String>, graph: ByteBuf| Message::UpdateGraph {
        graph,
        keys,
        retries: 0,
        from_task: false,
        id: None,
    };
    let (mut inbox, outbox, _) = rask::runtime::block_on(connect(
        c.address(),
        Role::Client,
        "big",
        None,
        Limits::default(),
        Duration::from_secs(10),
    ))
    .unwrap();
    outbox.send(submit(keys.clone(), doc(0..N)));
    rask::runtime::block_on(wait_for(&mut inbox, &keys));
    outbox.send_many(vec![
        Message::ReleaseKeys {
            keys: keys.clone(),
            id: None,
        },
        submit(vec![last.clone()], doc(N - 1..N)),
    ]);
    rask::runtime::block_on(wait_for(&mut inbox, std::slice::from_ref(&last)));
    eventually("one task to be left", || {
        c.scheduler_stats().unwrap().counts.tasks == 1 && stored(&c).len() == 1
    });
    assert_eq!(stored(&c), BTreeSet::from([last.clone()]));

    // All again, then the connection just ends.
    outbox.send(submit(keys.clone(), doc(0..N)));
    rask::runtime::block_on(wait_for(&mut inbox, &keys));
    drop(inbox);
    drop(outbox);
    eventually("the scheduler to forget everything", || {
        let s = c.scheduler_stats().unwrap().counts;
        s.tasks == 0 && s.clients == 0
    });
    eventually("the workers to free everything", || stored(&c).is_empty());
}

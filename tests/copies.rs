//! `replicate` and `rebalance` on real processes: the `rask-scheduler`
//! binary and three `rask-worker` processes. Scattered values (which
//! cannot be recomputed) are all on one worker; `rebalance` spreads them,
//! `replicate` puts copies on two workers, and the values survive the death
//! of one holder.

use rask::client::{Client, ClientConfig, ClientError, Future};
use rask::Value;
use std::collections::BTreeMap;
use std::time::Duration;

mod procs;
use procs::Proc;

const T: Option<Duration> = Some(Duration::from_secs(60));

fn worker(address: &str, name: &str) -> (Proc, String) {
    let p = Proc::spawn(
        env!("CARGO_BIN_EXE_rask-worker"),
        &[address, "--nthreads", "1", "--name", name],
    );
    let a = p.address_after("serving data on");
    (p, a)
}

fn value(i: usize) -> Value {
    Value::Bin(
        (0..65536usize)
            .map(|j| (i * 7 + j) as u8)
            .collect::<Vec<u8>>()
            .into(),
    )
}

/// How many of `futures` each worker (by data address) holds.
fn held(client: &Client, futures: &[Future]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for hs in client.who_has(futures).unwrap().into_values() {
        for h in hs {
            *m.entry(h).or_default() += 1;
        }
    }
    m
}

#[test]
fn rebalance_spreads_results_and_replicated_ones_survive_a_dead_holder() {
    let scheduler = Proc::spawn(env!("CARGO_BIN_EXE_rask-scheduler"), &["--port", "0"]);
    let address = scheduler.address_after("listening on");
    let mut workers = vec![worker(&address, "w0")];
    let client = Client::connect(&address, ClientConfig::default()).unwrap();
    client.wait_for_workers(1, Duration::from_secs(30)).unwrap();
    // Six values, all on w0 (the only worker).
    let fs = client.scatter((0..6).map(value).collect(), false).unwrap();
    assert_eq!(
        held(&client, &fs),
        BTreeMap::from([(workers[0].1.clone(), 6)])
    );
    workers.push(worker(&address, "w1"));
    workers.push(worker(&address, "w2"));
    client.wait_for_workers(3, Duration::from_secs(30)).unwrap();

    // rebalance: 6 | 0 | 0 → 2 | 2 | 2 (equal sizes).
    let r = client.rebalance(None, T).unwrap();
    // (bytes are the encoded sizes: a little more than the data)
    assert_eq!(r.moved, 4, "{r:?}");
    assert!(r.bytes >= 4 * 65536 && r.bytes < 4 * 66000, "{r:?}");
    let h = held(&client, &fs);
    assert_eq!(
        h.values().copied().collect::<Vec<_>>(),
        vec![2, 2, 2],
        "{h:?}"
    );
    // Balanced: nothing more moves.
    assert_eq!(client.rebalance(Some(&fs), T).unwrap().moved, 0);

    // replicate: two workers hold each of the first two.
    let two = &fs[..2];
    let r = client.replicate(two, 2, T).unwrap();
    assert_eq!((r.copied, r.removed, r.short.len()), (2, 0, 0), "{r:?}");
    let who = client.who_has(two).unwrap();
    for hs in who.values() {
        assert_eq!(hs.len(), 2, "{who:?}");
    }
    // A holder of fs[1] dies: its value still comes from the other copy
    // (scattered data cannot be recomputed).
    let victim = who[fs[1].key()][0].clone();
    let i = workers.iter().position(|(_, a)| *a == victim).unwrap();
    let whole = client.who_has(&fs[2..5]).unwrap();
    let safe = (2..5)
        .find(|&j| !whole[fs[j].key()].contains(&victim))
        .expect("a key the victim does not hold");
    let (mut p, _) = workers.remove(i);
    p.signal("-KILL");
    p.wait_exit(Duration::from_secs(30));
    assert_eq!(fs[1].result(T).unwrap(), value(1));
    let values = client.gather(two).unwrap();
    assert_eq!(values, vec![value(0), value(1)]);

    // n above the workers (two are left): both.
    let one = &fs[safe..safe + 1];
    let r = client.replicate(one, 5, T).unwrap();
    assert_eq!((r.copied, r.short.len()), (1, 0), "{r:?}");
    assert_eq!(client.who_has(one).unwrap()[one[0].key()].len(), 2);
    // Back to one copy: one dropped.
    let r = client.replicate(one, 1, T).unwrap();
    assert_eq!((r.copied, r.removed), (0, 1), "{r:?}");
    assert_eq!(client.who_has(one).unwrap()[one[0].key()].len(), 1);
    assert_eq!(one[0].result(T).unwrap(), value(safe));
    assert_eq!(client.gather(two).unwrap(), vec![value(0), value(1)]);

    // Bad input: n < 1, a cancelled future.
    match client.replicate(two, 0, T) {
        Err(ClientError::BadArgument(m)) => assert!(m.contains("at least 1"), "{m}"),
        other => panic!("{other:?}"),
    }
    client.cancel(&fs[5..]).unwrap();
    match client.replicate(&fs[5..], 2, T) {
        Err(ClientError::BadArgument(m)) => assert!(m.contains("not in memory"), "{m}"),
        other => panic!("{other:?}"),
    }
    match client.rebalance(Some(&fs[5..]), T) {
        Err(ClientError::BadArgument(m)) => assert!(m.contains("not in memory"), "{m}"),
        other => panic!("{other:?}"),
    }
    client.close();
    drop(scheduler);
}

//! Clients and keys shared at once, against a real LocalCluster:
//!
//! - two clients on one key, one releasing or cancelling while the other
//!   submits and waits (a pure key is one task for both: the other's
//!   interest must survive);
//! - one client shared by many threads, submitting, gathering, cancelling
//!   and dropping futures at the same time;
//! - threads waiting on one key (each wait is woken by that key alone):
//!   others' keys finishing leave them waiting, a wait that timed out
//!   leaves no trace, the key's end wakes them all.
//!
//! Conflicting definitions of one key by two clients (Dask's rule: same
//! key, same task; the redefining client is warned) are tested in
//! tests/failures.rs, with the rule.

use rask::client::{Client, ClientError};
use rask::cluster::{LocalCluster, LocalClusterConfig};
use rask::Value;
use std::sync::{Arc, Barrier};
use std::time::Duration;

const T: Option<Duration> = Some(Duration::from_secs(60));

fn cluster() -> LocalCluster {
    LocalCluster::start(LocalClusterConfig {
        workers: 2,
        threads_per_worker: 1,
        ..LocalClusterConfig::default()
    })
    .unwrap()
}

#[test]
fn one_client_releasing_or_cancelling_a_key_spares_another_that_wants_it() {
    let c = cluster();
    let (a, b) = (c.client().unwrap(), c.client().unwrap());
    let rounds = 300;
    let barrier = Arc::new(Barrier::new(2));
    // A: submits the same calls as B at the same moment, then lets go of
    // them: dropping (release) on even rounds, cancelling on odd ones.
    let fickle = std::thread::spawn({
        let barrier = barrier.clone();
        move || {
            for i in 0..rounds {
                barrier.wait();
                let f = a.submit("inc", vec![i.into()]).unwrap();
                if i % 2 == 0 {
                    drop(f);
                } else {
                    f.cancel().unwrap();
                    // Cancelled for A, whatever B does.
                    assert!(matches!(f.result(T), Err(ClientError::Cancelled(_))));
                }
            }
            a
        }
    });
    // B: wants every result.
    for i in 0..rounds {
        barrier.wait();
        let f = b.submit("inc", vec![i.into()]).unwrap();
        match f.result(T) {
            Ok(v) => assert_eq!(v, Value::Int(i + 1), "round {i}"),
            Err(e) => panic!("round {i}: B lost its key to A's release/cancel: {e:?}"),
        }
    }
    let a = fickle.join().unwrap();
    // Both still work; the cancelled keys can be computed again.
    assert_eq!(
        a.submit("inc", vec![1.into()]).unwrap().result(T),
        Ok(Value::Int(2))
    );
    assert_eq!(
        b.submit("inc", vec![1.into()]).unwrap().result(T),
        Ok(Value::Int(2))
    );
}

#[test]
fn waits_on_one_key_end_when_that_key_ends() {
    let c = cluster();
    let client: Client = c.client().unwrap();
    // No worker offers this function: the key stays pending until cancelled.
    let stuck = client.submit("nobody-offers-this", vec![]).unwrap();
    assert!(!stuck.wait(Some(Duration::from_millis(20))));
    assert!(!stuck.wait(Some(Duration::from_millis(20))));
    let waiting: Vec<_> = (0..4)
        .map(|_| {
            let f = stuck.clone();
            std::thread::spawn(move || f.result(T))
        })
        .collect();
    for i in 0..20i64 {
        let f = client.submit("inc", vec![i.into()]).unwrap();
        assert_eq!(f.result(T), Ok(Value::Int(i + 1)));
    }
    assert!(
        waiting.iter().all(|h| !h.is_finished()),
        "a wait on a pending key returned"
    );
    stuck.cancel().unwrap();
    for h in waiting {
        let r = h.join().expect("a waiting thread panicked");
        assert!(matches!(r, Err(ClientError::Cancelled(_))), "{r:?}");
    }
}

#[test]
fn one_client_shared_by_many_threads() {
    let c = cluster();
    let client: Client = c.client().unwrap();
    let threads = 8;
    let per_thread = 200;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let client = client.clone();
            std::thread::spawn(move || {
                let mut sum = 0i64;
                for i in 0..per_thread {
                    let x = (t * per_thread + i) as i64;
                    match i % 4 {
                        // submit and wait
                        0 => {
                            let f = client.submit("inc", vec![x.into()]).unwrap();
                            assert_eq!(f.result(T), Ok(Value::Int(x + 1)));
                            sum += x + 1;
                        }
                        // map and gather
                        1 => {
                            let fs = client
                                .map("inc", vec![vec![x.into()], vec![(x + 1).into()]])
                                .unwrap();
                            let vs = client.gather(&fs).unwrap();
                            assert_eq!(vs, vec![Value::Int(x + 1), Value::Int(x + 2)]);
                        }
                        // a future used as an argument, then dropped early
                        2 => {
                            let f = client.submit("inc", vec![x.into()]).unwrap();
                            let g = client.submit("inc", vec![(&f).into()]).unwrap();
                            drop(f);
                            assert_eq!(g.result(T), Ok(Value::Int(x + 2)));
                        }
                        // submit and cancel at once (a key of this thread
                        // alone: no other thread wants it)
                        _ => {
                            let f = client
                                .submit("add", vec![x.into(), (-1_000_000).into()])
                                .unwrap();
                            f.cancel().unwrap();
                            assert!(matches!(f.result(T), Err(ClientError::Cancelled(_))));
                        }
                    }
                }
                sum
            })
        })
        .collect();
    let mut total = 0;
    for h in handles {
        total += h.join().expect("a thread panicked");
    }
    let want: i64 = (0..threads)
        .flat_map(|t| {
            (0..per_thread)
                .filter(|i| i % 4 == 0)
                .map(move |i| (t * per_thread + i) as i64 + 1)
        })
        .sum();
    assert_eq!(total, want);
    // The client is still whole.
    assert_eq!(
        client.submit("inc", vec![41.into()]).unwrap().result(T),
        Ok(Value::Int(42))
    );
    assert!(client.closed_reason().is_none());
}

//! LocalCluster's life cycle. A test binary of its own, with one test per
//! concern that counts threads, so no other test's threads blur the count.

use rask::client::{Client, ClientConfig, ClientError};
use rask::cluster::{ClusterError, LocalCluster, LocalClusterConfig};
use rask::{Registry, Value};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const T: Option<Duration> = Some(Duration::from_secs(20));

/// Tests in this file run one at a time (thread counts must not mix).
static SERIAL: Mutex<()> = Mutex::new(());

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn repeated_start_and_stop_leaves_no_threads_behind() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // The shared runtime starts on first use and stays: warm it up.
    let c = LocalCluster::start(LocalClusterConfig::default()).unwrap();
    c.client().unwrap().close();
    drop(c);
    std::thread::sleep(Duration::from_millis(50));
    let before = threads();
    for round in 0..10 {
        let c = LocalCluster::start(LocalClusterConfig {
            workers: 2,
            threads_per_worker: 2,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.workers().len(), 2);
        assert_eq!(c.scheduler_stats().unwrap().counts.workers, 2);
        let client = c.client().unwrap();
        let f = client.submit("inc", vec![round.into()]).unwrap();
        assert_eq!(f.result(T).unwrap(), Value::Int(round + 1));
        // Shut down with the client and a future still alive: both notice.
        c.shutdown();
        c.shutdown();
        assert!(c.scheduler_stats().is_none());
        // The client learns of the shutdown from the scheduler's `close`
        // and the end of the stream, which it may not have read yet when
        // shutdown() returns: a submission fails at once, or its future
        // errs with the lost connection (never hangs, never computes).
        match client.submit("inc", vec![1000.into()]) {
            Err(e) => assert!(matches!(e, ClientError::ConnectionClosed(_)), "{e:?}"),
            Ok(late) => match late.result(T) {
                Err(ClientError::ConnectionClosed(_)) => {}
                other => panic!("a submission after shutdown gave {other:?}"),
            },
        }
        drop(f);
        drop(client);
        drop(c);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while threads() > before {
        assert!(
            Instant::now() < deadline,
            "{} threads after 10 start/stop rounds, {before} before",
            threads()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_cluster_with_a_token_refuses_clients_without_it() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = LocalCluster::start(LocalClusterConfig {
        token: Some("s3cret".into()),
        ..Default::default()
    })
    .unwrap();
    let ok = c.client().unwrap();
    assert_eq!(
        ok.submit("inc", vec![1.into()]).unwrap().result(T).unwrap(),
        Value::Int(2)
    );
    // Scatter and gather go to the workers' data ports with the token too.
    let fs = ok
        .scatter(vec![Value::Bin(vec![1u8; 5000].into())], false)
        .unwrap();
    assert_eq!(
        ok.gather(&fs).unwrap()[0],
        Value::Bin(vec![1u8; 5000].into())
    );
    let e = Client::connect(c.address(), ClientConfig::default()).unwrap_err();
    assert!(matches!(e, ClientError::ConnectionFailed(_)), "{e}");
    let e = Client::connect(
        c.address(),
        ClientConfig {
            token: Some("wrong".into()),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(matches!(e, ClientError::ConnectionFailed(_)), "{e}");
}

#[test]
fn workers_can_be_added_to_an_empty_cluster() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = LocalCluster::start(LocalClusterConfig {
        workers: 0,
        ..Default::default()
    })
    .unwrap();
    let client = c.client().unwrap();
    assert!(client.workers().unwrap().is_empty());
    let f = client.submit("inc", vec![1.into()]).unwrap();
    assert!(!f.wait(Some(Duration::from_millis(100))));
    let mut r = Registry::new();
    r.register("double", |a| Ok(Value::Int(a[0].as_i64().unwrap() * 2)))
        .unwrap();
    let w = c.add_worker(r, 1).unwrap();
    assert_eq!(f.result(T).unwrap(), Value::Int(2));
    let d = client.submit("double", vec![(&f).into()]).unwrap();
    assert_eq!(d.result(T).unwrap(), Value::Int(4));
    assert_eq!(c.workers().len(), 1);
    assert_eq!(client.workers().unwrap()[0].address, w.data_address());
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = LocalCluster::start(LocalClusterConfig::default()).unwrap();
    let port: u16 = c.address().rsplit(':').next().unwrap().parse().unwrap();
    let e = LocalCluster::start(LocalClusterConfig {
        scheduler_port: port,
        ..Default::default()
    })
    .unwrap_err();
    assert!(matches!(e, ClusterError::Scheduler(_)), "{e}");
}

//! Task failures end to end on an in-process cluster: `retries` reruns a
//! flaky task before giving up, and a failure reaches every future that
//! depends on it, in every client, naming the key that failed, its
//! function, the worker and the message.

use rask::client::{ClientArg, SubmitOptions};
use rask::cluster::{LocalCluster, LocalClusterConfig};
use rask::{Registry, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const T: Option<Duration> = Some(Duration::from_secs(20));

/// `flaky(tag, n)` fails the first `n` times it is called (over all tags).
fn flaky_registry(calls: Arc<AtomicUsize>) -> Registry {
    let mut r = Registry::new();
    r.register("flaky", move |a| {
        let n = a[1].as_u64().unwrap() as usize;
        let call = calls.fetch_add(1, Ordering::SeqCst);
        if call < n {
            Err(format!("flaky failure {}", call + 1))
        } else {
            Ok(a[0].clone())
        }
    })
    .unwrap();
    r
}

fn cluster(registry: Registry) -> LocalCluster {
    LocalCluster::start(LocalClusterConfig {
        workers: 2,
        threads_per_worker: 1,
        registry,
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn retries_rerun_a_failed_task_before_giving_up() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = cluster(flaky_registry(Arc::clone(&calls)));
    let client = c.client().unwrap();
    // Fails twice, 2 retries: the third run succeeds.
    let ok = client
        .submit_with(
            "flaky",
            vec![1.into(), 2.into()],
            &SubmitOptions {
                retries: 2,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(ok.result(T).unwrap(), Value::Int(1));
    assert_eq!(calls.load(Ordering::SeqCst), 3);

    // Fails twice, 1 retry: the error of the second run is the answer.
    calls.store(0, Ordering::SeqCst);
    let bad = client
        .submit_with(
            "flaky",
            vec![2.into(), 2.into()],
            &SubmitOptions {
                retries: 1,
                ..Default::default()
            },
        )
        .unwrap();
    let e = bad.result(T).unwrap_err();
    let t = e.task().unwrap_or_else(|| panic!("not a task error: {e}"));
    assert_eq!(t.failed, bad.key());
    assert_eq!(t.func, "flaky");
    assert!(t.message.contains("flaky failure 2"), "{}", t.message);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[test]
fn a_failure_reaches_every_dependent_future_in_every_client() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = cluster(flaky_registry(calls));
    let c1 = c.client().unwrap();
    let c2 = c.client().unwrap();
    // Both clients want the failing task (same pure key) and build on it.
    let root1 = c1.submit("flaky", vec![7.into(), 1000.into()]).unwrap();
    let root2 = c2.submit("flaky", vec![7.into(), 1000.into()]).unwrap();
    assert_eq!(root1.key(), root2.key());
    let mid = c1.submit("inc", vec![(&root1).into()]).unwrap();
    let top = c1
        .submit("add", vec![(&mid).into(), ClientArg::from(1)])
        .unwrap();
    let other = c2.submit("inc", vec![(&root2).into()]).unwrap();
    let workers: Vec<String> = c
        .workers()
        .iter()
        .map(|w| w.data_address().to_string())
        .collect();
    for (f, func) in [
        (&root1, "flaky"),
        (&root2, "flaky"),
        (&mid, "flaky"),
        (&top, "flaky"),
        (&other, "flaky"),
    ] {
        let e = f.result(T).unwrap_err();
        let t = e.task().unwrap_or_else(|| panic!("not a task error: {e}"));
        assert_eq!(t.key, f.key());
        assert_eq!(t.failed, root1.key());
        assert_eq!(t.func, func);
        assert!(workers.contains(&t.worker), "{} not a worker", t.worker);
        assert!(t.message.contains("flaky failure 1"), "{}", t.message);
    }
}

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

/// A function no connected worker offers (a typo): the client is warned at
/// once, the future stays pending (a worker offering it may still join),
/// and with the scheduler's no-workers timeout the task errs saying why.
#[test]
fn a_function_nobody_offers_is_warned_about_and_errs_after_the_no_workers_timeout() {
    use rask::client::{Client, ClientConfig, Status};
    use rask::scheduler::{Scheduler, SchedulerConfig, SchedulerOptions};
    use std::time::Instant;

    let warned = |f: &rask::client::Future| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(w) = f.warning() {
                return w;
            }
            assert!(Instant::now() < deadline, "no warning for {}", f.key());
            std::thread::sleep(Duration::from_millis(5));
        }
    };

    // Without a timeout: warned, pending; the right name still works.
    let c = cluster(Registry::new());
    let client = c.client().unwrap();
    let typo = client.submit("incc", vec![1.into()]).unwrap();
    let w = warned(&typo);
    assert!(
        w.contains("no connected worker offers the function 'incc'"),
        "{w}"
    );
    assert_eq!(typo.status(), Status::Pending);
    let good = client.submit("inc", vec![1.into()]).unwrap();
    assert_eq!(good.result(T).unwrap(), Value::Int(2));
    assert_eq!(good.warning(), None);
    // A task depending on it is named in the warning too.
    let dep = client.submit("inc", vec![(&typo).into()]).unwrap();
    let w = warned(&dep);
    assert!(w.contains("'incc'"), "{w}");

    // With a timeout (and no worker at all): the task errs.
    let s = Scheduler::start(SchedulerConfig {
        port: 0,
        options: SchedulerOptions {
            no_workers_timeout: Some(0.2),
            ..Default::default()
        },
        ..Default::default()
    })
    .unwrap();
    let client = Client::connect(s.address(), ClientConfig::default()).unwrap();
    let f = client.submit("incc", vec![1.into()]).unwrap();
    let w = warned(&f);
    assert!(w.contains("at most 0.2 s"), "{w}");
    let e = f.result(T).unwrap_err();
    let t = e.task().unwrap_or_else(|| panic!("not a task error: {e}"));
    assert_eq!(t.func, "incc");
    assert!(
        t.message
            .contains("no connected worker offers the function 'incc'"),
        "{}",
        t.message
    );
    assert!(t.message.contains("no-workers timeout"), "{}", t.message);
}

/// Two clients, one key, two definitions: the second gets the first's
/// result (a key names one task, as in Dask) and is warned that its
/// definition was not used.
#[test]
fn a_second_client_redefining_a_key_is_warned_and_gets_the_known_result() {
    use rask::client::SubmitOptions;
    use std::time::Instant;
    let c = cluster(Registry::new());
    let first = c.client().unwrap();
    let second = c.client().unwrap();
    let opts = SubmitOptions {
        key: Some("shared".into()),
        ..Default::default()
    };
    let a = first.submit_with("inc", vec![1.into()], &opts).unwrap();
    assert_eq!(a.result(T).unwrap(), Value::Int(2));
    let b = second.submit_with("inc", vec![100.into()], &opts).unwrap();
    assert_eq!(b.result(T).unwrap(), Value::Int(2), "the known result");
    let deadline = Instant::now() + Duration::from_secs(20);
    let w = loop {
        if let Some(w) = b.warning() {
            break w;
        }
        assert!(Instant::now() < deadline, "no warning");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(
        w.contains("'shared'") && w.contains("same key, same task"),
        "{w}"
    );
    assert_eq!(a.warning(), None);
    // The same definition again is quiet.
    let again = second.submit_with("inc", vec![1.into()], &opts).unwrap();
    assert_eq!(again.result(T).unwrap(), Value::Int(2));
}

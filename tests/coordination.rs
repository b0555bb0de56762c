//! Coordination objects over a real scheduler (one process, loopback):
//! queues, variables, leases, events, datasets, fire-and-forget and topics
//! between clients, with values and futures.

use rask::client::{Client, ClientError, Item};
use rask::cluster::{LocalCluster, LocalClusterConfig};
use rask::Value;
use std::time::Duration;

const T: Option<Duration> = Some(Duration::from_secs(20));

fn cluster() -> LocalCluster {
    LocalCluster::start(LocalClusterConfig {
        workers: 1,
        threads_per_worker: 2,
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn queue_carries_values_and_futures_between_clients() {
    let c = cluster();
    let a = c.client().unwrap();
    let b = c.client().unwrap();
    a.queue_create("q", 2).unwrap();
    a.queue_put("q", &Item::Value(Value::Int(1)), T).unwrap();
    let f = a.submit("inc", vec![41.into()]).unwrap();
    a.queue_put("q", &Item::from(&f), T).unwrap();
    // Full: a put with a short timeout fails naming the queue and time.
    let e = a
        .queue_put(
            "q",
            &Item::Value(Value::Int(3)),
            Some(Duration::from_millis(50)),
        )
        .unwrap_err();
    match &e {
        ClientError::Timeout(m) => assert!(
            m.contains("queue 'q' is full") && m.contains("0.05 s"),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(b.queue_size("q").unwrap(), 2);
    // The submitter lets go of its future and leaves: the queue keeps it.
    drop(f);
    a.close();
    assert_eq!(
        b.queue_get("q", T).unwrap().into_value(),
        Some(Value::Int(1))
    );
    let g = b.queue_get("q", T).unwrap().into_future().unwrap();
    assert_eq!(g.result(T).unwrap(), Value::Int(42));
    // Empty: a get times out naming the queue.
    let e = b
        .queue_get("q", Some(Duration::from_millis(20)))
        .unwrap_err();
    assert!(
        matches!(&e, ClientError::Timeout(m) if m.contains("queue 'q': nothing to get within 0.02 s")),
        "{e:?}"
    );
    assert!(matches!(
        b.queue_get("", T),
        Err(ClientError::BadArgument(_))
    ));
}

#[test]
fn a_get_waiting_on_another_thread_is_answered_by_a_put() {
    let c = cluster();
    let a = c.client().unwrap();
    let b = c.client().unwrap();
    let waiter = std::thread::spawn(move || b.queue_get("jobs", None).map(|i| i.into_value()));
    a.queue_put("jobs", &Item::Value(Value::from("x")), T)
        .unwrap();
    assert_eq!(waiter.join().unwrap().unwrap(), Some(Value::from("x")));
}

#[test]
fn variables_events_and_leases() {
    let c = cluster();
    let a = c.client().unwrap();
    let b = c.client().unwrap();
    let e = b
        .variable_get("stop", Some(Duration::from_millis(30)))
        .unwrap_err();
    assert!(
        matches!(&e, ClientError::Timeout(m) if m.contains("variable 'stop'") && m.contains("0.03 s")),
        "{e:?}"
    );
    a.variable_set("stop", &Item::Value(Value::Bool(false)))
        .unwrap();
    assert_eq!(
        b.variable_get("stop", T).unwrap().into_value(),
        Some(Value::Bool(false))
    );
    a.variable_delete("stop").unwrap();

    assert!(!b.event_wait("go", Some(Duration::ZERO)).unwrap());
    a.event_set("go").unwrap();
    assert!(b.event_wait("go", T).unwrap());
    a.event_clear("go").unwrap();
    assert!(!b.event_wait("go", Some(Duration::from_millis(10))).unwrap());

    let lease = a.lease_acquire("L", 1, None).unwrap().unwrap();
    assert_eq!(
        b.lease_acquire("L", 1, Some(Duration::from_millis(20)))
            .unwrap(),
        None
    );
    // The holder disconnects: its lease goes to the waiter.
    let b2 = b.clone();
    let waiter = std::thread::spawn(move || b2.lease_acquire("L", 1, None));
    let _ = lease;
    a.close();
    let got = waiter.join().unwrap().unwrap();
    assert!(got.is_some());
    b.lease_release("L", got.unwrap()).unwrap();
    assert!(b.lease_release("L", got.unwrap()).is_err());
}

#[test]
fn datasets_survive_their_publisher_and_topics_deliver() {
    let c = cluster();
    let a = c.client().unwrap();
    let f = a.submit("inc", vec![1.into()]).unwrap();
    a.publish_dataset("two", &Item::from(&f), false).unwrap();
    assert!(a
        .publish_dataset("two", &Item::Value(Value::Int(0)), false)
        .is_err());
    drop(f);
    a.close();
    let b = c.client().unwrap();
    assert_eq!(b.list_datasets().unwrap(), vec!["two".to_string()]);
    let g = b.get_dataset("two").unwrap().into_future().unwrap();
    assert_eq!(g.result(T).unwrap(), Value::Int(2));
    b.unpublish_dataset("two").unwrap();
    assert!(b.get_dataset("two").is_err());

    let sub = b.subscribe("news").unwrap();
    let p = c.client().unwrap();
    p.publish("news", &Value::Int(5)).unwrap();
    assert_eq!(sub.get(T).unwrap(), Value::Int(5));
    assert!(matches!(
        sub.get(Some(Duration::from_millis(10))),
        Err(ClientError::Timeout(_))
    ));

    let h = p.submit("inc", vec![100.into()]).unwrap();
    p.fire_and_forget(std::slice::from_ref(&h)).unwrap();
    drop(h);
    let _: Option<&Client> = None;
}

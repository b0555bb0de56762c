//! The coordination objects (`coord.rs`) driven through the core, with
//! `validate()` after every step.

use super::*;
use crate::protocol::messages::Item;

impl Fx {
    fn coord(&mut self, c: ClientId, m: Message) {
        let m = ClientMessage::try_from(m).expect("a client message");
        self.s.coord_message(c, m, self.now, &mut self.out);
        self.step();
    }

    fn tick_at(&mut self, now: f64) {
        self.now = now;
        self.s.coord_tick(now, &mut self.out);
        self.step();
    }

    fn leave_client(&mut self, c: ClientId) {
        self.s.remove_client(c, &mut self.out);
        self.step();
    }
}

fn val(v: i64) -> Item {
    Item::value(crate::value::encode(&Value::Int(v)).unwrap())
}

/// The replies (coord-reply or error with an id) to `c`, as (id, message).
fn replies(msgs: &[(Dest, Message)], c: ClientId) -> Vec<(u64, Message)> {
    msgs.iter()
        .filter_map(|(d, m)| match (d, m) {
            (Dest::Client(x), Message::CoordReply { id, .. })
            | (Dest::Client(x), Message::Error { id: Some(id), .. })
                if *x == c =>
            {
                Some((*id, m.clone()))
            }
            _ => None,
        })
        .collect()
}

fn reply_item(m: &Message) -> Item {
    match m {
        Message::CoordReply { item: Some(i), .. } => i.clone(),
        other => panic!("expected an item, got {other:?}"),
    }
}

fn reply_flag(m: &Message) -> bool {
    match m {
        Message::CoordReply { flag: Some(f), .. } => *f,
        other => panic!("expected a flag, got {other:?}"),
    }
}

fn error_of(m: &Message) -> (String, String) {
    match m {
        Message::Error { message, code, .. } => (code.clone().unwrap_or_default(), message.clone()),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn variable_set_get_wait_timeout_delete() {
    let mut f = Fx::new();
    let a = f.client();
    let b = f.client();
    // A get with a timeout waits, then times out naming the variable and
    // the duration.
    f.coord(
        b,
        Message::VariableGet {
            id: 1,
            name: "x".into(),
            timeout: Some(0.5),
        },
    );
    assert!(replies(&f.take(), b).is_empty());
    f.tick_at(0.2);
    assert!(replies(&f.take(), b).is_empty());
    f.tick_at(1.0);
    let r = replies(&f.take(), b);
    assert_eq!(r.len(), 1);
    let (code, msg) = error_of(&r[0].1);
    assert_eq!(code, "timeout");
    assert!(
        msg.contains("variable 'x'") && msg.contains("0.5 s"),
        "{msg}"
    );
    // A get without a timeout is answered by the next set.
    f.coord(
        b,
        Message::VariableGet {
            id: 2,
            name: "x".into(),
            timeout: None,
        },
    );
    f.coord(
        a,
        Message::VariableSet {
            id: 1,
            name: "x".into(),
            item: val(7),
        },
    );
    let msgs = f.take();
    assert_eq!(replies(&msgs, a).len(), 1);
    let r = replies(&msgs, b);
    assert_eq!(r[0].0, 2);
    assert_eq!(reply_item(&r[0].1), val(7));
    // Now a get answers at once; delete removes it.
    f.coord(
        b,
        Message::VariableGet {
            id: 3,
            name: "x".into(),
            timeout: Some(0.0),
        },
    );
    assert_eq!(reply_item(&replies(&f.take(), b)[0].1), val(7));
    f.coord(
        a,
        Message::VariableDelete {
            id: 2,
            name: "x".into(),
        },
    );
    f.coord(
        b,
        Message::VariableGet {
            id: 4,
            name: "x".into(),
            timeout: Some(0.0),
        },
    );
    let (code, _) = error_of(&replies(&f.take(), b)[0].1);
    assert_eq!(code, "timeout");
}

#[test]
fn a_future_in_a_variable_keeps_its_key_alive() {
    let mut f = Fx::new();
    let w = f.worker("w1", 1, BUILTINS);
    let a = f.client();
    let b = f.client();
    f.submit(a, doc(vec![("t", task("inc", vec![lit(1)]))]), &["t"])
        .unwrap();
    f.run();
    f.coord(
        a,
        Message::VariableSet {
            id: 1,
            name: "v".into(),
            item: Item::key("t"),
        },
    );
    // The submitter releases its future, and leaves: the key stays.
    f.release(a, &["t"]);
    f.leave_client(a);
    assert_eq!(f.state("t"), Some(StateKind::Memory));
    assert!(freed(&f.take(), w).is_empty());
    // Another client gets it: it is told the key is in memory, after the reply.
    f.coord(
        b,
        Message::VariableGet {
            id: 1,
            name: "v".into(),
            timeout: None,
        },
    );
    let msgs = f.take();
    let pos_reply = msgs
        .iter()
        .position(|(_, m)| matches!(m, Message::CoordReply { .. }))
        .unwrap();
    let pos_mem = msgs
        .iter()
        .position(|(_, m)| matches!(m, Message::KeyInMemory { .. }))
        .unwrap();
    assert!(pos_reply < pos_mem);
    assert_eq!(reply_item(&msgs[pos_reply].1), Item::key("t"));
    // Deleting the variable leaves b's want: still in memory.
    f.coord(
        b,
        Message::VariableDelete {
            id: 2,
            name: "v".into(),
        },
    );
    assert_eq!(f.state("t"), Some(StateKind::Memory));
    // b releases it: now it goes.
    f.release(b, &["t"]);
    assert_eq!(freed(&f.take(), w), vec!["t".to_string()]);
    assert_eq!(f.state("t"), None);
}

#[test]
fn unknown_key_and_bad_items_are_refused() {
    let mut f = Fx::new();
    let a = f.client();
    f.coord(
        a,
        Message::VariableSet {
            id: 1,
            name: "v".into(),
            item: Item::key("nope"),
        },
    );
    f.coord(
        a,
        Message::VariableSet {
            id: 2,
            name: "v".into(),
            item: Item::default(),
        },
    );
    f.coord(
        a,
        Message::QueuePut {
            id: 3,
            name: "".into(),
            item: val(1),
            timeout: None,
        },
    );
    f.coord(
        a,
        Message::QueueGet {
            id: 4,
            name: "q".into(),
            timeout: Some(-1.0),
        },
    );
    let r = replies(&f.take(), a);
    let codes: Vec<String> = r.iter().map(|(_, m)| error_of(m).0).collect();
    assert_eq!(
        codes,
        [
            "unknown-key",
            "bad-argument",
            "bad-argument",
            "bad-argument"
        ]
    );
    assert!(error_of(&r[0].1).1.contains("'nope'"));
    assert!(error_of(&r[2].1).1.contains("queue name is empty"));
}

#[test]
fn queue_fifo_maxsize_blocked_put_and_timeouts() {
    let mut f = Fx::new();
    let a = f.client();
    let b = f.client();
    f.coord(
        a,
        Message::QueueCreate {
            id: 1,
            name: "q".into(),
            maxsize: 2,
        },
    );
    for i in 0..2 {
        f.coord(
            a,
            Message::QueuePut {
                id: 10 + i,
                name: "q".into(),
                item: val(i as i64),
                timeout: None,
            },
        );
    }
    // Full: a put with timeout 0 errs at once, one with 0.25 s waits and
    // errs at its deadline naming the queue, maxsize and duration.
    f.coord(
        a,
        Message::QueuePut {
            id: 20,
            name: "q".into(),
            item: val(9),
            timeout: Some(0.0),
        },
    );
    f.coord(
        a,
        Message::QueuePut {
            id: 21,
            name: "q".into(),
            item: val(9),
            timeout: Some(0.25),
        },
    );
    let r = replies(&f.take(), a);
    assert_eq!(r.len(), 4);
    let (code, msg) = error_of(&r[3].1);
    assert_eq!((r[3].0, code.as_str()), (20, "timeout"));
    assert!(msg.contains("queue 'q' is full (maxsize 2)"), "{msg}");
    assert_eq!(f.s.coord_deadline().map(|d| d > 0.25), Some(true));
    f.tick_at(f.now + 1.0);
    let r = replies(&f.take(), a);
    let (code, msg) = error_of(&r[0].1);
    assert_eq!((r[0].0, code.as_str()), (21, "timeout"));
    assert!(msg.contains("0.25 s"), "{msg}");
    // A blocked put goes in when a get makes room; FIFO order.
    f.coord(
        a,
        Message::QueuePut {
            id: 22,
            name: "q".into(),
            item: val(2),
            timeout: None,
        },
    );
    assert!(replies(&f.take(), a).is_empty());
    f.coord(
        a,
        Message::QueueSize {
            id: 23,
            name: "q".into(),
        },
    );
    match &replies(&f.take(), a)[0].1 {
        Message::CoordReply { size, .. } => assert_eq!(*size, Some(2)),
        m => panic!("{m:?}"),
    }
    let mut got = Vec::new();
    for id in 0..3 {
        f.coord(
            b,
            Message::QueueGet {
                id,
                name: "q".into(),
                timeout: None,
            },
        );
        got.push(reply_item(&replies(&f.take(), b)[0].1));
    }
    assert_eq!(got, vec![val(0), val(1), val(2)]);
    // Empty: a get waits, times out naming the queue.
    f.coord(
        b,
        Message::QueueGet {
            id: 5,
            name: "q".into(),
            timeout: Some(0.1),
        },
    );
    f.tick_at(f.now + 0.2);
    let (code, msg) = error_of(&replies(&f.take(), b)[0].1);
    assert_eq!(code, "timeout");
    assert!(
        msg.contains("queue 'q': nothing to get within 0.1 s"),
        "{msg}"
    );
    // A waiting get of a client that leaves is dropped: the next put stays.
    f.coord(
        b,
        Message::QueueGet {
            id: 6,
            name: "q".into(),
            timeout: None,
        },
    );
    f.leave_client(b);
    f.coord(
        a,
        Message::QueuePut {
            id: 30,
            name: "q".into(),
            item: val(5),
            timeout: None,
        },
    );
    f.coord(
        a,
        Message::QueueSize {
            id: 31,
            name: "q".into(),
        },
    );
    match &replies(&f.take(), a).last().unwrap().1 {
        Message::CoordReply { size, .. } => assert_eq!(*size, Some(1)),
        m => panic!("{m:?}"),
    }
}

#[test]
fn futures_in_a_queue_are_held_until_taken() {
    let mut f = Fx::new();
    let w = f.worker("w1", 1, BUILTINS);
    let a = f.client();
    let b = f.client();
    f.submit(a, doc(vec![("t", task("inc", vec![lit(1)]))]), &["t"])
        .unwrap();
    // Put while still processing, and release: the task still runs.
    f.coord(
        a,
        Message::QueuePut {
            id: 1,
            name: "q".into(),
            item: Item::key("t"),
            timeout: None,
        },
    );
    f.release(a, &["t"]);
    f.run();
    assert_eq!(f.state("t"), Some(StateKind::Memory));
    f.coord(
        b,
        Message::QueueGet {
            id: 1,
            name: "q".into(),
            timeout: None,
        },
    );
    let msgs = f.take();
    assert_eq!(reply_item(&replies(&msgs, b)[0].1), Item::key("t"));
    assert_eq!(keys_in_memory(&msgs, b), vec!["t".to_string()]);
    f.leave_client(b);
    assert_eq!(freed(&f.take(), w), vec!["t".to_string()]);
}

#[test]
fn leases_wait_and_come_back_when_the_holder_leaves() {
    let mut f = Fx::new();
    let a = f.client();
    let b = f.client();
    let acq = |id, c: &str, timeout| Message::LeaseAcquire {
        id,
        name: c.into(),
        max_leases: 1,
        timeout,
    };
    f.coord(a, acq(1, "L", None));
    assert!(reply_flag(&replies(&f.take(), a)[0].1));
    // b waits; a timeout 0 try fails at once; a timed wait answers false.
    f.coord(b, acq(1, "L", Some(0.0)));
    assert!(!reply_flag(&replies(&f.take(), b)[0].1));
    f.coord(b, acq(2, "L", Some(0.5)));
    f.tick_at(f.now + 1.0);
    assert!(!reply_flag(&replies(&f.take(), b)[0].1));
    f.coord(b, acq(3, "L", None));
    assert!(replies(&f.take(), b).is_empty());
    // Releasing a lease not held errs; the holder leaving hands it on.
    f.coord(
        b,
        Message::LeaseRelease {
            id: 4,
            name: "L".into(),
            lease: 3,
        },
    );
    assert_eq!(error_of(&replies(&f.take(), b)[0].1).0, "not-found");
    f.leave_client(a);
    let r = replies(&f.take(), b);
    assert_eq!(r[0].0, 3);
    assert!(reply_flag(&r[0].1));
    // A semaphore asked with another count conflicts.
    f.coord(
        b,
        Message::LeaseAcquire {
            id: 5,
            name: "L".into(),
            max_leases: 2,
            timeout: None,
        },
    );
    assert_eq!(error_of(&replies(&f.take(), b)[0].1).0, "conflict");
    f.coord(
        b,
        Message::LeaseRelease {
            id: 6,
            name: "L".into(),
            lease: 3,
        },
    );
    assert!(replies(&f.take(), b).len() == 1);
}

#[test]
fn semaphore_grants_up_to_max_leases() {
    let mut f = Fx::new();
    let cs: Vec<ClientId> = (0..3).map(|_| f.client()).collect();
    for (i, &c) in cs.iter().enumerate() {
        f.coord(
            c,
            Message::LeaseAcquire {
                id: i as u64,
                name: "S".into(),
                max_leases: 2,
                timeout: None,
            },
        );
    }
    let msgs = f.take();
    assert!(reply_flag(&replies(&msgs, cs[0])[0].1));
    assert!(reply_flag(&replies(&msgs, cs[1])[0].1));
    assert!(replies(&msgs, cs[2]).is_empty());
    f.coord(
        cs[0],
        Message::LeaseRelease {
            id: 9,
            name: "S".into(),
            lease: 0,
        },
    );
    assert!(reply_flag(&replies(&f.take(), cs[2])[0].1));
}

#[test]
fn events_set_clear_wait() {
    let mut f = Fx::new();
    let a = f.client();
    let b = f.client();
    f.coord(
        b,
        Message::EventWait {
            id: 1,
            name: "e".into(),
            timeout: Some(0.0),
        },
    );
    assert!(!reply_flag(&replies(&f.take(), b)[0].1));
    f.coord(
        b,
        Message::EventWait {
            id: 2,
            name: "e".into(),
            timeout: Some(1.0),
        },
    );
    f.coord(
        b,
        Message::EventWait {
            id: 3,
            name: "e".into(),
            timeout: None,
        },
    );
    f.coord(
        a,
        Message::EventSet {
            id: 1,
            name: "e".into(),
        },
    );
    let r = replies(&f.take(), b);
    assert_eq!(r.len(), 2);
    assert!(r.iter().all(|(_, m)| reply_flag(m)));
    f.coord(
        b,
        Message::EventWait {
            id: 4,
            name: "e".into(),
            timeout: None,
        },
    );
    assert!(reply_flag(&replies(&f.take(), b)[0].1));
    f.coord(
        a,
        Message::EventClear {
            id: 2,
            name: "e".into(),
        },
    );
    f.coord(
        b,
        Message::EventWait {
            id: 5,
            name: "e".into(),
            timeout: Some(0.3),
        },
    );
    f.tick_at(f.now + 0.5);
    assert!(!reply_flag(&replies(&f.take(), b)[0].1));
}

#[test]
fn datasets_survive_the_publisher() {
    let mut f = Fx::new();
    let w = f.worker("w1", 1, BUILTINS);
    let a = f.client();
    f.submit(a, doc(vec![("t", task("inc", vec![lit(1)]))]), &["t"])
        .unwrap();
    f.run();
    f.coord(
        a,
        Message::PublishDataset {
            id: 1,
            name: "d".into(),
            item: Item::key("t"),
            replace: false,
        },
    );
    f.coord(
        a,
        Message::PublishDataset {
            id: 2,
            name: "d".into(),
            item: val(1),
            replace: false,
        },
    );
    assert_eq!(error_of(&replies(&f.take(), a)[1].1).0, "conflict");
    f.leave_client(a);
    let b = f.client();
    f.coord(b, Message::ListDatasets { id: 1 });
    f.coord(
        b,
        Message::GetDataset {
            id: 2,
            name: "d".into(),
        },
    );
    f.coord(
        b,
        Message::GetDataset {
            id: 3,
            name: "zz".into(),
        },
    );
    let msgs = f.take();
    let r = replies(&msgs, b);
    match &r[0].1 {
        Message::CoordReply { names, .. } => {
            assert_eq!(names.as_deref(), Some(&["d".to_string()][..]))
        }
        m => panic!("{m:?}"),
    }
    assert_eq!(reply_item(&r[1].1), Item::key("t"));
    assert_eq!(error_of(&r[2].1).0, "not-found");
    assert_eq!(keys_in_memory(&msgs, b), vec!["t".to_string()]);
    f.release(b, &["t"]);
    f.coord(
        b,
        Message::UnpublishDataset {
            id: 4,
            name: "d".into(),
        },
    );
    assert_eq!(freed(&f.take(), w), vec!["t".to_string()]);
}

#[test]
fn fire_and_forget_runs_to_the_end_then_lets_go() {
    let mut f = Fx::new();
    let w = f.worker("w1", 1, BUILTINS);
    let a = f.client();
    f.submit(a, doc(vec![("t", task("inc", vec![lit(1)]))]), &["t"])
        .unwrap();
    f.coord(
        a,
        Message::FireAndForget {
            keys: vec!["t".into()],
            id: None,
        },
    );
    f.release(a, &["t"]);
    f.leave_client(a);
    assert_eq!(f.state("t"), Some(StateKind::Processing));
    f.run();
    // Finished, and nothing wants it: dropped.
    assert_eq!(f.state("t"), None);
    let _ = w;
}

#[test]
fn topics_reach_every_subscriber_until_it_leaves() {
    let mut f = Fx::new();
    let a = f.client();
    let b = f.client();
    let c = f.client();
    f.coord(
        b,
        Message::Subscribe {
            id: None,
            name: "news".into(),
        },
    );
    f.coord(
        c,
        Message::Subscribe {
            id: Some(1),
            name: "news".into(),
        },
    );
    // With an id, the subscription is confirmed.
    assert_eq!(replies(&f.take(), c).len(), 1);
    let v = serde_bytes::ByteBuf::from(crate::value::encode(&Value::Int(1)).unwrap());
    f.coord(
        a,
        Message::Publish {
            name: "news".into(),
            value: v.clone(),
            id: None,
        },
    );
    let got = |msgs: &[(Dest, Message)], x: ClientId| {
        msgs.iter()
            .filter(|(d, m)| *d == Dest::Client(x) && matches!(m, Message::TopicMessage { .. }))
            .count()
    };
    let msgs = f.take();
    assert_eq!((got(&msgs, b), got(&msgs, c), got(&msgs, a)), (1, 1, 0));
    f.coord(
        b,
        Message::Unsubscribe {
            name: "news".into(),
            id: None,
        },
    );
    f.leave_client(c);
    f.coord(
        a,
        Message::Publish {
            name: "news".into(),
            value: v,
            id: None,
        },
    );
    let msgs = f.take();
    assert_eq!((got(&msgs, b), got(&msgs, c)), (0, 0));
}

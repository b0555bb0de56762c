//! The worker core driven without sockets or threads; `validate()` after
//! every step.

use super::*;

const ME: &str = "tcp://127.0.0.1:1000";
const P1: &str = "tcp://127.0.0.1:1001";
const P2: &str = "tcp://127.0.0.1:1002";

fn s(x: &str) -> String {
    x.to_owned()
}

/// `{"ref": k}`
fn r(k: &str) -> Value {
    Value::Map(vec![(Value::from("ref"), Value::from(k))])
}

fn registry() -> Registry {
    let mut reg = Registry::new();
    reg.register("boom", |_| Err("it broke".into())).unwrap();
    reg.register_pulled("jl").unwrap();
    reg
}

fn state() -> WorkerState {
    WorkerState::new(registry(), ME, 0)
}

fn task(
    key: &str,
    func: &str,
    args: Vec<Value>,
    priority: u64,
    who_has: &[(&str, &[&str])],
) -> ComputeTask {
    let bytes = crate::value::encode(&Value::Array(args)).unwrap();
    let who_has = who_has
        .iter()
        .map(|(k, hs)| (s(k), hs.iter().map(|h| s(h)).collect()))
        .collect();
    ComputeTask::new(s(key), s(func), &bytes, priority, who_has)
}

/// Applies `f`, validates, and returns the actions.
fn step(st: &mut WorkerState, f: impl FnOnce(&mut WorkerState)) -> Vec<Action> {
    f(st);
    st.validate()
        .unwrap_or_else(|e| panic!("invalid state: {e}"));
    st.take_actions()
}

/// Runs every ready pool task (in the order taken) and returns the keys run.
fn run_ready(st: &mut WorkerState) -> (Vec<String>, Vec<Action>) {
    let mut batch = Vec::new();
    st.take_ready(usize::MAX, &mut batch);
    st.validate().unwrap();
    let mut keys = Vec::new();
    for t in batch {
        keys.push(st.e(t.id).name.clone());
        let out = Outcome::of(t.func.call(&t.args));
        assert!(st.task_done(t.id, t.seq, out, 0.5));
        st.validate().unwrap();
    }
    (keys, st.take_actions())
}

fn sent(actions: &[Action]) -> Vec<&Message> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(m) => Some(m),
            _ => None,
        })
        .collect()
}

fn finished(actions: &[Action]) -> Vec<(String, Option<Value>)> {
    sent(actions)
        .into_iter()
        .filter_map(|m| match m {
            Message::TaskFinished { key, value, .. } => Some((
                key.clone(),
                value.as_ref().map(|b| crate::value::decode(b).unwrap()),
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn a_task_without_dependencies_runs_and_reports_its_value_inline() {
    let mut st = state();
    let a = step(&mut st, |st| {
        st.compute_task(task("b", "inc", vec![Value::Int(1)], 0, &[]))
    });
    assert_eq!(a, vec![Action::Execute(1)]);
    assert_eq!(st.phase("b"), Some(Phase::Ready));
    let (ran, a) = run_ready(&mut st);
    assert_eq!(ran, vec!["b"]);
    match &sent(&a)[..] {
        [Message::TaskFinished {
            key,
            nbytes,
            duration,
            value,
        }] => {
            assert_eq!(key, "b");
            assert_eq!(*nbytes, Value::Int(2).size_estimate() as u64);
            assert_eq!(*duration, 0.5);
            assert_eq!(value.as_ref().map(|b| b.as_slice()), Some(&[0x02u8][..]));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(st.phase("b"), Some(Phase::Memory));
    assert_eq!(st.value("b"), Some(Value::Int(2)));
    assert_eq!(st.stored_keys(), vec!["b"]);
    assert_eq!(
        st.heartbeat(),
        Message::Heartbeat {
            executing: 0,
            memory: Value::Int(2).size_estimate() as u64,
            spilled: 0,
            process: 0,
            paused: false,
            cpu: None,
        }
    );
}

#[test]
fn a_result_over_4_gib_fails_the_task_naming_the_limit() {
    // calloc'd, never written: address space, not memory.
    let big = Value::Bin(bytes::Bytes::from(vec![0u8; (1 << 32) + 1]));
    let Outcome::Failed(m) = Outcome::of(Ok(big)) else {
        panic!("a value over 4 GiB must not be stored")
    };
    assert!(
        m.message.contains("cannot be sent") && m.message.contains("4294967295"),
        "{m:?}"
    );
    // Through the core: the task errs with that message.
    let mut st = state();
    step(&mut st, |st| {
        st.compute_task(task("b", "inc", vec![Value::Int(1)], 0, &[]))
    });
    let mut ready = Vec::new();
    st.take_ready(10, &mut ready);
    let t = &ready[0];
    let a = step(&mut st, |st| {
        assert!(st.task_done(t.id, t.seq, Outcome::Failed(m.clone()), 0.1));
    });
    assert_eq!(st.phase("b"), Some(Phase::Erred));
    match &sent(&a)[..] {
        [m @ Message::TaskErred { .. }] => {
            assert!(format!("{m:?}").contains("4294967295"), "{m:?}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn large_results_are_not_inlined() {
    let big = Value::Bin(bytes::Bytes::from(vec![0u8; 2000]));
    match Outcome::of(Ok(big.clone())) {
        Outcome::Finished { inline, nbytes, .. } => {
            assert_eq!(inline, None);
            assert_eq!(nbytes, big.size_estimate() as u64);
        }
        o => panic!("{o:?}"),
    }
    // Exactly at the limit: a bin of 1021 bytes encodes in 1024.
    let edge = Value::Bin(bytes::Bytes::from(vec![0u8; 1021]));
    assert_eq!(crate::value::encode(&edge).unwrap().len(), 1024);
    assert!(inline_msgpack(&edge).is_some());
    let over = Value::Bin(bytes::Bytes::from(vec![0u8; 1022]));
    assert!(inline_msgpack(&over).is_none());
    // Many small ints: estimate is large, encoding small.
    let ints = Value::Array((0..500).map(Value::Int).collect());
    let enc = crate::value::encode(&ints).unwrap();
    assert_eq!(inline_msgpack(&ints), (enc.len() <= 1024).then_some(enc));
    for v in [
        Value::Int(-33),
        Value::Int(200),
        Value::Int(-40_000),
        Value::Int(i64::MIN),
        Value::UInt(u64::MAX),
        Value::from("x".repeat(40)),
        Value::Map(vec![(Value::from("k"), Value::Float(1.5))]),
    ] {
        let mut budget = 10_000;
        assert!(crate::value::codec::fits(&v, &mut budget));
        assert_eq!(
            10_000 - budget,
            crate::value::encode(&v).unwrap().len() as u64,
            "{v:?}"
        );
    }
}

#[test]
fn dependencies_held_here_are_used_directly() {
    let mut st = state();
    let sizes = st.put_data(vec![(s("a"), Value::Int(41))]);
    assert_eq!(sizes[&s("a")], Value::Int(41).size_estimate() as u64);
    st.validate().unwrap();
    // who_has may omit a dependency the worker holds, or list only itself.
    let a = step(&mut st, |st| {
        st.compute_task(task("b", "inc", vec![r("a")], 0, &[]));
        st.compute_task(task("c", "add", vec![r("a"), r("a")], 1, &[("a", &[ME])]));
    });
    assert_eq!(a, vec![Action::Execute(2)]);
    let (_, a) = run_ready(&mut st);
    assert_eq!(
        finished(&a),
        vec![
            (s("b"), Some(Value::Int(42))),
            (s("c"), Some(Value::Int(82)))
        ]
    );
}

#[test]
fn absent_dependencies_are_fetched_in_one_request_per_peer_then_the_task_runs() {
    let mut st = state();
    let a = step(&mut st, |st| {
        st.compute_task(task(
            "z",
            "add",
            vec![r("x"), r("y")],
            0,
            &[("x", &[P1]), ("y", &[P1, P2])],
        ));
        st.compute_task(task("w", "inc", vec![r("x")], 1, &[("x", &[P1])]));
    });
    assert_eq!(
        a,
        vec![Action::Fetch {
            peer: s(P1),
            keys: vec![s("x"), s("y")]
        }]
    );
    assert_eq!(st.phase("z"), Some(Phase::Waiting));
    assert_eq!(st.phase("x"), Some(Phase::Fetching));
    // P1 has x but not y: y is asked of P2; w can run.
    let a = step(&mut st, |st| {
        st.fetched(P1, vec![(s("x"), Value::Int(1))], &[s("y")])
    });
    assert_eq!(
        a,
        vec![
            Action::Send(Message::AddKeys {
                keys: vec![s("x")],
                nbytes: vec![Value::Int(1).size_estimate() as u64],
                from: s(P1),
                duration: None,
            }),
            Action::Fetch {
                peer: s(P2),
                keys: vec![s("y")]
            },
            Action::Execute(1),
        ]
    );
    let (ran, _) = run_ready(&mut st);
    assert_eq!(ran, vec!["w"]);
    let a = step(&mut st, |st| {
        st.fetched(P2, vec![(s("y"), Value::Int(2))], &[])
    });
    assert_eq!(a.last(), Some(&Action::Execute(1)));
    let (_, a) = run_ready(&mut st);
    assert_eq!(finished(&a), vec![(s("z"), Some(Value::Int(3)))]);
    // Fetched copies stay until the scheduler frees them.
    assert_eq!(st.stored_keys(), vec!["w", "x", "y", "z"]);
    assert_eq!(st.stats().fetched, 2);
}

#[test]
fn a_dependency_no_holder_has_is_reported_as_missing_data() {
    let mut st = state();
    step(&mut st, |st| {
        st.compute_task(task("z", "inc", vec![r("x")], 0, &[("x", &[P1, P2])]))
    });
    // P1 is unreachable: P2 is tried.
    let a = step(&mut st, |st| {
        st.fetch_failed(P1, &[s("x")], "connection refused")
    });
    assert_eq!(
        a,
        vec![Action::Fetch {
            peer: s(P2),
            keys: vec![s("x")]
        }]
    );
    // A late answer from P1 is ignored.
    let a = step(&mut st, |st| {
        st.fetched(P1, vec![(s("x"), Value::Int(1))], &[])
    });
    assert_eq!(a, vec![]);
    let a = step(&mut st, |st| st.fetched(P2, vec![], &[s("x")]));
    assert_eq!(
        a,
        vec![Action::Send(Message::MissingData {
            key: s("z"),
            dependency: s("x"),
            worker: s(P2),
            reason: s("not-held"),
            attempt: None,
        })]
    );
    assert_eq!(st.phase("z"), None);
    assert_eq!(st.phase("x"), None);
    assert_eq!(st.stats().keys, 0);

    // No holder listed at all (the scheduler thinks this worker has it),
    // or only this worker: at once, naming this worker.
    let a = step(&mut st, |st| {
        st.compute_task(task("q", "add", vec![r("m"), r("n")], 0, &[("n", &[ME])]))
    });
    assert_eq!(
        a,
        vec![
            Action::Send(Message::MissingData {
                key: s("q"),
                dependency: s("n"),
                worker: s(ME),
                reason: s("not-held"),
                attempt: None,
            }),
            Action::Send(Message::MissingData {
                key: s("q"),
                dependency: s("m"),
                worker: s(ME),
                reason: s("not-held"),
                attempt: None,
            }),
        ]
    );
    assert_eq!(st.stats().keys, 0);
    // The scheduler sends the task again once the data exists.
    st.put_data(vec![(s("m"), Value::Int(1)), (s("n"), Value::Int(2))]);
    let a = step(&mut st, |st| {
        st.compute_task(task("q", "add", vec![r("m"), r("n")], 0, &[]))
    });
    assert_eq!(a, vec![Action::Execute(1)]);
}

/// `missing-data` says why: `unreachable` with one `attempt` number for
/// every report one failed connection causes (so the scheduler counts the
/// failure once), a new number for the next failure, and `not-held` when
/// the holder answered without the key or with an error.
#[test]
fn missing_data_says_why_and_one_failed_connection_is_one_attempt() {
    let mut st = state();
    let missing = |a: &[Action]| -> Vec<(String, String, String, Option<u64>)> {
        a.iter()
            .filter_map(|x| match x {
                Action::Send(Message::MissingData {
                    key,
                    dependency,
                    reason,
                    attempt,
                    ..
                }) => Some((key.clone(), dependency.clone(), reason.clone(), *attempt)),
                _ => None,
            })
            .collect()
    };
    // Three tasks need x and y, which only P1 holds: one connection fails.
    for k in ["a", "b", "c"] {
        step(&mut st, |st| {
            st.compute_task(task(
                k,
                "add",
                vec![r("x"), r("y")],
                0,
                &[("x", &[P1]), ("y", &[P1])],
            ))
        });
    }
    let a = step(&mut st, |st| {
        st.fetch_failed(P1, &[s("x"), s("y")], "connection refused")
    });
    let m = missing(&a);
    assert_eq!(m.len(), 3, "one report per task: {m:?}");
    assert!(
        m.iter()
            .all(|(_, _, why, n)| why == "unreachable" && *n == m[0].3 && n.is_some()),
        "{m:?}"
    );
    let first = m[0].3.unwrap();
    // The next failed connection is another attempt.
    step(&mut st, |st| {
        st.compute_task(task("d", "inc", vec![r("x")], 0, &[("x", &[P1])]))
    });
    let a = step(&mut st, |st| {
        st.fetch_failed(P1, &[s("x")], "connection refused")
    });
    assert_eq!(
        missing(&a),
        vec![(s("d"), s("x"), s("unreachable"), Some(first + 1))]
    );
    // The holder answered without the key, or with an error: not-held.
    step(&mut st, |st| {
        st.compute_task(task("e", "inc", vec![r("x")], 0, &[("x", &[P1])]))
    });
    let a = step(&mut st, |st| st.fetched(P1, vec![], &[s("x")]));
    assert_eq!(missing(&a), vec![(s("e"), s("x"), s("not-held"), None)]);
    step(&mut st, |st| {
        st.compute_task(task("f", "inc", vec![r("x")], 0, &[("x", &[P1])]))
    });
    let a = step(&mut st, |st| st.fetch_refused(P1, &[s("x")], "busy"));
    assert_eq!(missing(&a), vec![(s("f"), s("x"), s("not-held"), None)]);
    // A failure then a refusal from the next holder: the last holder's reason.
    step(&mut st, |st| {
        st.compute_task(task("g", "inc", vec![r("x")], 0, &[("x", &[P1, P2])]))
    });
    let a = step(&mut st, |st| {
        st.fetch_failed(P1, &[s("x")], "connection refused")
    });
    assert!(missing(&a).is_empty(), "P2 is tried first");
    let a = step(&mut st, |st| st.fetched(P2, vec![], &[s("x")]));
    let m = missing(&a);
    assert_eq!(m, vec![(s("g"), s("x"), s("not-held"), None)]);
    assert!(matches!(&a[..], [Action::Send(Message::MissingData { worker, .. })] if worker == P2));
    assert_eq!(st.stats().keys, 0);
}

/// A holder that cannot send a value (its host could not serialize it):
/// the next holder is tried; with none left, the tasks that need it fail
/// with the holder's reason (not `missing-data`, which would only have the
/// same value computed again), and the other dependency is let go.
#[test]
fn a_value_its_holder_cannot_send_fails_the_tasks_that_need_it_with_the_reason() {
    let mut st = state();
    step(&mut st, |st| {
        st.compute_task(task(
            "a",
            "add",
            vec![r("x"), r("y")],
            0,
            &[("x", &[P1, P2]), ("y", &[P1])],
        ))
    });
    // P1 is asked first; it cannot send x: P2 is asked next.
    let a = step(&mut st, |st| {
        st.fetch_unsendable(P1, "x", "TypeError: no pickle")
    });
    assert!(sent(&a).is_empty(), "{a:?}");
    assert!(matches!(st.phase("x"), Some(Phase::Fetching)));
    let a = step(&mut st, |st| {
        st.fetch_unsendable(P2, "x", "TypeError: no pickle")
    });
    let erred: Vec<_> = sent(&a)
        .into_iter()
        .filter_map(|m| match m {
            Message::TaskErred { key, message, .. } => Some((key.clone(), message.clone())),
            Message::MissingData { .. } => panic!("reported missing: {m:?}"),
            _ => None,
        })
        .collect();
    assert_eq!(
        erred,
        vec![(
            s("a"),
            format!("argument 'x' cannot be sent from {P2}: TypeError: no pickle")
        )]
    );
    // y arriving later is not kept: nothing here needs it.
    let a = step(&mut st, |st| {
        st.fetched(P1, vec![(s("y"), Value::Int(1))], &[])
    });
    assert!(sent(&a).is_empty(), "{a:?}");
    assert_eq!(st.stats().keys, 1, "only the erred task is left");
    // A replica the scheduler asked for says why it failed.
    step(&mut st, |st| {
        st.acquire_replicas([(s("z"), vec![s(P1)])].into_iter().collect())
    });
    let a = step(&mut st, |st| st.fetch_unsendable(P1, "z", "no pickle"));
    assert!(
        matches!(&sent(&a)[..], [Message::AcquireFailed { keys, message }]
            if keys == &[s("z")] && message.contains("cannot be sent") && message.contains("no pickle")),
        "{a:?}"
    );
}

#[test]
fn ready_tasks_run_lowest_priority_first() {
    let mut st = state();
    step(&mut st, |st| {
        for (k, p) in [("c", 5), ("a", 1), ("b", 3), ("a2", 1), ("d", 0)] {
            st.compute_task(task(k, "noop", vec![], p, &[]));
        }
    });
    let mut batch = Vec::new();
    assert_eq!(st.take_ready(2, &mut batch), 2);
    assert_eq!(st.take_ready(10, &mut batch), 3);
    let order: Vec<&str> = batch.iter().map(|t| st.e(t.id).name.as_str()).collect();
    assert_eq!(order, vec!["d", "a", "a2", "b", "c"]);
    assert_eq!(st.stats().executing, 5);
    st.validate().unwrap();
}

#[test]
fn free_keys_drops_queued_tasks_and_discards_running_ones() {
    let mut st = state();
    step(&mut st, |st| {
        for k in ["a", "b", "c"] {
            st.compute_task(task(k, "noop", vec![], 0, &[]));
        }
    });
    let mut batch = Vec::new();
    st.take_ready(1, &mut batch); // a runs
    step(&mut st, |st| st.free_keys(&[s("b"), s("a"), s("unknown")]));
    assert_eq!(st.phase("a"), None);
    assert_eq!(st.phase("b"), None);
    assert_eq!(st.stats().executing, 0);
    // a's result is discarded; b is never taken.
    let t = batch.pop().unwrap();
    assert!(!st.task_done(t.id, t.seq, Outcome::of(Ok(Value::Nil)), 0.0));
    let (ran, a) = run_ready(&mut st);
    assert_eq!(ran, vec!["c"]);
    assert_eq!(finished(&a), vec![(s("c"), Some(Value::Nil))]);
    // Freeing data deletes it.
    step(&mut st, |st| st.free_keys(&[s("c")]));
    assert_eq!(st.stored_keys(), Vec::<String>::new());
    assert_eq!(st.store().bytes(), 0);
}

#[test]
fn a_freed_id_reused_by_a_new_task_ignores_the_old_run() {
    let mut st = state();
    step(&mut st, |st| {
        st.compute_task(task("a", "noop", vec![], 0, &[]))
    });
    let mut old = Vec::new();
    st.take_ready(1, &mut old);
    step(&mut st, |st| {
        st.free_keys(&[s("a")]);
        st.compute_task(task("b", "inc", vec![Value::Int(1)], 0, &[]));
    });
    let mut new = Vec::new();
    st.take_ready(1, &mut new);
    assert_eq!(old[0].id, new[0].id, "the id is reused");
    assert!(!st.task_done(old[0].id, old[0].seq, Outcome::of(Ok(Value::Nil)), 0.0));
    assert_eq!(st.phase("b"), Some(Phase::Executing));
    assert!(st.task_done(new[0].id, new[0].seq, Outcome::of(Ok(Value::Int(2))), 0.0));
    st.validate().unwrap();
}

#[test]
fn freeing_a_dependency_a_waiting_task_needs_keeps_it_until_the_task_starts() {
    let mut st = state();
    st.put_data(vec![(s("a"), Value::Int(1))]);
    step(&mut st, |st| {
        st.compute_task(task("z", "add", vec![r("a"), r("x")], 0, &[("x", &[P1])]))
    });
    step(&mut st, |st| st.free_keys(&[s("a")]));
    assert_eq!(st.phase("a"), Some(Phase::Memory), "pinned by z");
    step(&mut st, |st| {
        st.fetched(P1, vec![(s("x"), Value::Int(2))], &[])
    });
    assert_eq!(st.phase("a"), None, "released once z took its arguments");
    let (_, a) = run_ready(&mut st);
    assert_eq!(finished(&a), vec![(s("z"), Some(Value::Int(3)))]);
}

#[test]
fn freeing_a_waiting_task_cancels_its_fetches() {
    let mut st = state();
    step(&mut st, |st| {
        st.compute_task(task("z", "inc", vec![r("x")], 0, &[("x", &[P1])]))
    });
    step(&mut st, |st| st.free_keys(&[s("z")]));
    assert_eq!(st.stats().keys, 0);
    // The answer arrives anyway: ignored, nothing stored.
    let a = step(&mut st, |st| {
        st.fetched(P1, vec![(s("x"), Value::Int(1))], &[])
    });
    assert_eq!(a, vec![]);
    assert_eq!(st.stored_keys(), Vec::<String>::new());
}

#[test]
fn failures_are_reported_with_the_function_name() {
    let mut st = state();
    step(&mut st, |st| {
        st.compute_task(task("e1", "inc", vec![Value::from("x")], 0, &[]));
        st.compute_task(task("e2", "boom", vec![], 1, &[]));
    });
    let (_, a) = run_ready(&mut st);
    assert_eq!(
        sent(&a),
        vec![
            &Message::TaskErred {
                key: s("e1"),
                message: s("inc: expected a number, got str"),
                exception: String::new(),
                traceback: String::new(),
            },
            &Message::TaskErred {
                key: s("e2"),
                message: s("boom: it broke"),
                exception: String::new(),
                traceback: String::new(),
            },
        ]
    );
    assert_eq!(st.phase("e1"), Some(Phase::Erred));
    // Unknown function, bad arguments, a task that needs itself: at once.
    let a = step(&mut st, |st| {
        st.compute_task(task("u", "nope", vec![], 0, &[]));
        st.compute_task(ComputeTask::new(
            s("v"),
            s("inc"),
            &[0xc1],
            0,
            BTreeMap::new(),
        ));
        st.compute_task(task("w", "inc", vec![r("w")], 0, &[]));
    });
    let msgs: Vec<String> = sent(&a)
        .iter()
        .map(|m| match m {
            Message::TaskErred { message, .. } => message.clone(),
            m => panic!("{m:?}"),
        })
        .collect();
    assert!(msgs[0].contains("no function named 'nope'"), "{}", msgs[0]);
    assert!(
        msgs[1].starts_with("inc: cannot decode the task's arguments"),
        "{}",
        msgs[1]
    );
    assert!(msgs[2].contains("depends on itself"), "{}", msgs[2]);
    assert_eq!(st.stats().tasks_erred, 5);
    // A retry is a fresh compute-task.
    step(&mut st, |st| {
        st.compute_task(task("e1", "inc", vec![Value::Int(1)], 0, &[]))
    });
    let (_, a) = run_ready(&mut st);
    assert_eq!(finished(&a), vec![(s("e1"), Some(Value::Int(2)))]);
    // Freed erred keys are forgotten.
    step(&mut st, |st| {
        st.free_keys(&[s("e2"), s("u"), s("v"), s("w")])
    });
    assert_eq!(st.stats().keys, 1);
}

#[test]
fn a_dependency_in_progress_here_is_waited_for() {
    let mut st = state();
    step(&mut st, |st| {
        st.compute_task(task("a", "inc", vec![Value::Int(1)], 0, &[]));
        st.compute_task(task("b", "inc", vec![r("a")], 1, &[]));
        st.compute_task(task("c", "boom", vec![], 2, &[]));
        st.compute_task(task("d", "inc", vec![r("c")], 3, &[]));
    });
    assert_eq!(st.phase("b"), Some(Phase::Waiting));
    let (ran, a) = run_ready(&mut st);
    assert_eq!(ran, vec!["a", "c"]);
    let erred: Vec<_> = sent(&a)
        .into_iter()
        .filter_map(|m| match m {
            Message::TaskErred { key, message, .. } => Some((key.as_str(), message.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(
        erred,
        vec![
            ("c", "boom: it broke"),
            ("d", "dependency 'c' failed: boom: it broke")
        ]
    );
    let (ran, a) = run_ready(&mut st);
    assert_eq!(ran, vec!["b"]);
    assert_eq!(finished(&a), vec![(s("b"), Some(Value::Int(3)))]);
}

#[test]
fn compute_task_for_a_key_in_memory_answers_at_once() {
    let mut st = state();
    st.put_data(vec![(s("k"), Value::Int(7))]);
    let a = step(&mut st, |st| {
        st.compute_task(task("k", "inc", vec![Value::Int(1)], 0, &[]))
    });
    assert_eq!(finished(&a), vec![(s("k"), Some(Value::Int(7)))]);
    // Twice while queued: one run.
    step(&mut st, |st| {
        st.compute_task(task("j", "noop", vec![], 0, &[]));
        st.compute_task(task("j", "noop", vec![], 0, &[]));
    });
    let (ran, _) = run_ready(&mut st);
    assert_eq!(ran, vec!["j"]);
}

#[test]
fn pulled_functions_go_to_the_host() {
    let mut st = state();
    let a = step(&mut st, |st| {
        st.compute_task(task("p2", "jl", vec![Value::Int(2)], 5, &[]));
        st.compute_task(task("p1", "jl", vec![Value::Int(1)], 1, &[]));
        st.compute_task(task("n", "noop", vec![], 0, &[]));
    });
    assert_eq!(a, vec![Action::Execute(1), Action::Deliver(2)]);
    let mut batch = Vec::new();
    assert_eq!(
        st.take_ready(10, &mut batch),
        1,
        "pulled tasks are not for the pool"
    );
    let p = st.take_pulled().unwrap();
    assert_eq!((p.key.as_str(), p.func.as_str()), ("p1", "jl"));
    assert_eq!(p.args, vec![Value::Int(1)]);
    st.validate().unwrap();
    assert!(st.task_done(p.id, p.seq, Outcome::of(Ok(Value::Int(10))), 0.1));
    let p = st.take_pulled().unwrap();
    assert!(st.take_pulled().is_none());
    assert!(st.task_done(
        p.id,
        p.seq,
        Outcome::Failed(String::from("abandoned").into()),
        0.1
    ));
    let a = st.take_actions();
    assert_eq!(finished(&a), vec![(s("p1"), Some(Value::Int(10)))]);
    assert!(sent(&a).contains(&&Message::TaskErred {
        key: s("p2"),
        message: s("jl: abandoned"),
        exception: String::new(),
        traceback: String::new(),
    }));
    st.validate().unwrap();
}

#[test]
fn a_host_exception_goes_to_the_scheduler_with_its_traceback() {
    let mut st = state();
    step(&mut st, |st| {
        st.compute_task(task("p", "jl", vec![Value::Int(1)], 0, &[]));
        st.compute_task(task("q", "jl", vec![r("p")], 1, &[]));
    });
    let p = st.take_pulled().unwrap();
    let failure = crate::registry::Failure {
        message: "ErrorException: no".into(),
        exception: "ErrorException".into(),
        traceback: "error(::String) at error.jl:33\n".into(),
    };
    assert!(st.task_done(p.id, p.seq, Outcome::Failed(failure), 0.1));
    st.validate().unwrap();
    let a = st.take_actions();
    let erred: Vec<_> = sent(&a)
        .into_iter()
        .filter_map(|m| match m {
            Message::TaskErred {
                key,
                message,
                exception,
                traceback,
            } => Some((
                key.as_str(),
                message.as_str(),
                exception.as_str(),
                traceback.as_str(),
            )),
            _ => None,
        })
        .collect();
    // The dependent q fails here too, without the traceback (the scheduler
    // gives q's clients p's).
    assert_eq!(
        erred,
        vec![
            (
                "p",
                "jl: ErrorException: no",
                "ErrorException",
                "error(::String) at error.jl:33\n"
            ),
            ("q", "dependency 'p' failed: jl: ErrorException: no", "", ""),
        ]
    );
}

#[test]
fn put_data_wakes_waiting_tasks_and_get_data_reports_missing_keys() {
    let mut st = state();
    step(&mut st, |st| {
        st.compute_task(task("z", "inc", vec![r("x")], 0, &[("x", &[P1])]))
    });
    let a = step(&mut st, |st| {
        st.put_data(vec![(s("x"), Value::Int(5))]);
    });
    assert_eq!(a, vec![Action::Execute(1)]);
    let (found, missing) = st.get_data(&[s("x"), s("z"), s("nope")]);
    assert_eq!(found, vec![(s("x"), Value::Int(5))]);
    assert_eq!(missing, vec![s("z"), s("nope")]);
    run_ready(&mut st);
    assert_eq!(st.get_data(&[s("z")]).0, vec![(s("z"), Value::Int(6))]);
}

#[test]
fn nested_arguments_resolve() {
    let mut st = state();
    st.put_data(vec![(s("a"), Value::Int(1)), (s("b"), Value::Int(2))]);
    let quoted = Value::Map(vec![(Value::from("value"), r("a"))]);
    let mapped = Value::Map(vec![(
        Value::from("map"),
        Value::Map(vec![(Value::from("w"), r("b"))]),
    )]);
    step(&mut st, |st| {
        st.compute_task(task(
            "l",
            "list",
            vec![Value::Array(vec![r("a"), r("b")]), quoted, mapped],
            0,
            &[],
        ))
    });
    let (_, a) = run_ready(&mut st);
    assert_eq!(
        finished(&a)[0].1,
        Some(Value::Array(vec![
            Value::Array(vec![Value::Int(1), Value::Int(2)]),
            r("a"),
            Value::Map(vec![(Value::from("w"), Value::Int(2))]),
        ]))
    );
}

#[test]
fn many_tasks_with_shared_dependencies_stay_valid() {
    // A small randomized-order soak: tasks over a pool of dependencies,
    // fetched, freed and run in interleaved order.
    let mut st = state();
    let mut rng = 12345u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut pending_fetch: Vec<(String, Vec<String>)> = Vec::new();
    for i in 0..300 {
        let deps: Vec<String> = (0..(next() % 3))
            .map(|_| format!("d{}", next() % 20))
            .collect();
        let args = deps.iter().map(|d| r(d)).collect();
        let holders: Vec<(&str, &[&str])> = deps.iter().map(|d| (d.as_str(), &[P1][..])).collect();
        st.compute_task(task(&format!("t{i}"), "list", args, next() % 10, &holders));
        for a in st.take_actions() {
            if let Action::Fetch { peer, keys } = a {
                pending_fetch.push((peer, keys));
            }
        }
        st.validate().unwrap();
        match next() % 4 {
            0 if !pending_fetch.is_empty() => {
                let (peer, keys) = pending_fetch.remove(0);
                let (have, miss): (Vec<_>, Vec<_>) =
                    keys.into_iter().partition(|_| next() % 5 != 0);
                st.fetched(
                    &peer,
                    have.into_iter().map(|k| (k, Value::Int(1))).collect(),
                    &miss,
                );
            }
            1 => {
                st.free_keys(&[
                    format!("t{}", next() % (i + 1)),
                    format!("d{}", next() % 20),
                ]);
            }
            _ => {
                let mut b = Vec::new();
                st.take_ready(3, &mut b);
                for t in b {
                    let out = Outcome::of(t.func.call(&t.args));
                    st.task_done(t.id, t.seq, out, 0.0);
                }
            }
        }
        for a in st.take_actions() {
            if let Action::Fetch { peer, keys } = a {
                pending_fetch.push((peer, keys));
            }
        }
        st.validate().unwrap();
    }
    let stats = st.stats();
    eprintln!("{stats:?}");
    assert!(stats.tasks_finished > 50, "{stats:?}");
    assert!(stats.fetched > 5, "{stats:?}");
    assert!(stats.missing_reported > 0, "{stats:?}");
}

#[test]
fn literal_arguments_take_the_fast_path_with_the_same_meaning() {
    for args in [
        vec![],
        vec![Value::Int(1), Value::from("s")],
        vec![Value::Array(vec![
            Value::Int(1),
            Value::Array(vec![Value::Nil]),
        ])],
        vec![r("a")],
        vec![Value::Array(vec![r("a"), Value::Int(2)])],
    ] {
        let bytes = crate::value::encode(&Value::Array(args)).unwrap();
        let fast = ComputeTask::new(s("k"), s("f"), &bytes, 0, BTreeMap::new()).args;
        let slow = crate::graph::doc::decode_args(&bytes).unwrap();
        let lookup = |k: &str| (k == "a").then_some(Value::Int(7));
        let values = |args: Vec<KeyArg>| -> Vec<Value> {
            args.into_iter()
                .map(|a| resolve(a, &lookup).unwrap())
                .collect()
        };
        assert_eq!(values(fast.unwrap()), values(slow));
    }
    // Not an array, or not msgpack: an error either way.
    for bad in [&[0x01][..], &[0xc1][..]] {
        assert!(ComputeTask::new(s("k"), s("f"), bad, 0, BTreeMap::new())
            .args
            .is_err());
    }
}

#[test]
fn retiring_hands_back_unstarted_tasks_and_lets_running_ones_finish() {
    let mut st = state();
    step(&mut st, |st| {
        st.compute_task(task("a", "inc", vec![Value::Int(1)], 0, &[]));
        st.compute_task(task("b", "inc", vec![Value::Int(2)], 1, &[]));
        st.compute_task(task("c", "inc", vec![r("b")], 2, &[]));
        st.compute_task(task("d", "inc", vec![r("x")], 3, &[("x", &[P1])]));
    });
    // "a" starts running; then the worker retires.
    let mut running = Vec::new();
    assert_eq!(st.take_ready(1, &mut running), 1);
    let a = step(&mut st, |st| st.retire(Some(s("SIGTERM"))));
    match &sent(&a)[..] {
        [Message::RetireWorker { reason }, Message::Reschedule { keys }] => {
            assert_eq!(reason, "SIGTERM");
            let mut keys = keys.clone();
            keys.sort();
            assert_eq!(keys, vec!["b", "c", "d"]);
        }
        other => panic!("{other:?}"),
    }
    for k in ["b", "c", "d", "x"] {
        assert_eq!(st.phase(k), None, "{k} is dropped");
    }
    assert_eq!(st.ready_len(), 1, "a stale heap entry, skipped when taken");
    let mut more = Vec::new();
    assert_eq!(st.take_ready(10, &mut more), 0);
    // A task sent before the scheduler knew is handed back at once.
    let a = step(&mut st, |st| {
        st.compute_task(task("e", "inc", vec![Value::Int(5)], 4, &[]))
    });
    assert_eq!(sent(&a), vec![&Message::Reschedule { keys: vec![s("e")] }]);
    // The running one finishes and is reported and kept.
    let t = running.pop().unwrap();
    let out = Outcome::of(t.func.call(&t.args));
    assert!(st.task_done(t.id, t.seq, out, 0.1));
    st.validate().unwrap();
    assert_eq!(
        finished(&st.take_actions()),
        vec![(s("a"), Some(Value::Int(2)))]
    );
    assert_eq!(st.value("a"), Some(Value::Int(2)));
    // Retiring again does nothing.
    assert!(step(&mut st, |st| st.retire(None)).is_empty());
}

#[test]
fn acquire_replicas_fetches_keeps_and_reports_or_fails() {
    let mut st = state();
    let a = step(&mut st, |st| {
        st.acquire_replicas(
            [(s("k"), vec![s(P1), s(P2)]), (s("nowhere"), vec![s(ME)])]
                .into_iter()
                .collect(),
        )
    });
    assert!(a.contains(&Action::Fetch {
        peer: s(P1),
        keys: vec![s("k")]
    }));
    assert!(sent(&a).contains(&&Message::AcquireFailed {
        keys: vec![s("nowhere")],
        message: format!("the worker at {ME} cannot fetch these keys"),
    }));
    // P1 fails: P2 is asked; P2 has it: kept and announced.
    let a = step(&mut st, |st| st.fetch_failed(P1, &[s("k")], "refused"));
    assert_eq!(
        a,
        vec![Action::Fetch {
            peer: s(P2),
            keys: vec![s("k")]
        }]
    );
    let a = step(&mut st, |st| {
        st.fetched(P2, vec![(s("k"), Value::Int(7))], &[])
    });
    assert!(matches!(&sent(&a)[..], [Message::AddKeys { keys, .. }] if keys == &vec![s("k")]));
    assert_eq!(st.value("k"), Some(Value::Int(7)));
    // Asked again for a key it holds: announced again at once.
    let a = step(&mut st, |st| {
        st.acquire_replicas([(s("k"), vec![s(P1)])].into_iter().collect())
    });
    assert!(matches!(&sent(&a)[..], [Message::AddKeys { keys, .. }] if keys == &vec![s("k")]));
    // A replica no holder gives is reported and forgotten.
    step(&mut st, |st| {
        st.acquire_replicas([(s("j"), vec![s(P1)])].into_iter().collect())
    });
    let a = step(&mut st, |st| st.fetched(P1, vec![], &[s("j")]));
    assert!(
        matches!(&sent(&a)[..], [Message::AcquireFailed { keys, .. }] if keys == &vec![s("j")])
    );
    assert_eq!(st.phase("j"), None);
}

#[test]
fn reset_forgets_the_lost_session_and_discards_runs_still_going() {
    let mut st = state();
    step(&mut st, |st| {
        st.compute_task(task("a", "inc", vec![Value::Int(1)], 0, &[]));
        st.compute_task(task("b", "inc", vec![Value::Int(2)], 1, &[]));
        st.compute_task(task("c", "inc", vec![r("x")], 2, &[("x", &[P1])]));
    });
    let mut running = Vec::new();
    assert_eq!(st.take_ready(1, &mut running), 1);
    st.put_data(vec![(s("kept"), Value::Int(5))]);
    st.reset();
    st.validate().unwrap();
    assert_eq!(st.stats().keys, 0);
    assert_eq!(st.stats().executing, 0);
    assert!(st.stored_keys().is_empty());
    assert!(
        st.take_actions().is_empty(),
        "nothing of the old session is sent"
    );
    // The run that was going on finishes into nothing.
    let t = running.pop().unwrap();
    let out = Outcome::of(t.func.call(&t.args));
    assert!(!st.task_done(t.id, t.seq, out, 0.1));
    st.validate().unwrap();
    assert!(st.take_actions().is_empty());
    // And the new session works.
    step(&mut st, |st| {
        st.compute_task(task("a", "inc", vec![Value::Int(1)], 0, &[]))
    });
    let (ran, a) = run_ready(&mut st);
    assert_eq!(ran, vec!["a"]);
    assert_eq!(finished(&a), vec![(s("a"), Some(Value::Int(2)))]);
}

#[test]
fn a_stopped_worker_forgets_its_keys_with_its_store_and_stays_valid() {
    let mut st = state();
    step(&mut st, |st| {
        st.compute_task(task("a", "inc", vec![Value::Int(1)], 0, &[]));
        st.compute_task(task("b", "inc", vec![Value::Int(2)], 1, &[]));
    });
    let mut running = Vec::new();
    assert_eq!(st.take_ready(1, &mut running), 1);
    st.put_data(vec![(s("kept"), Value::Int(5))]);
    st.take_actions();
    st.close_store();
    st.validate().unwrap();
    assert_eq!(st.stats().keys, 0);
    assert!(st.stored_keys().is_empty());
    // A run still going on finishes into nothing, and the core stays valid
    // for any later step.
    let t = running.pop().unwrap();
    let out = Outcome::of(t.func.call(&t.args));
    assert!(!st.task_done(t.id, t.seq, out, 0.1));
    st.validate().unwrap();
    assert!(st.take_actions().is_empty());
}

/// `validate()` is what every other test here leans on: a state broken in
/// any of these ways must be rejected, naming what is wrong.
#[test]
fn validate_rejects_corrupted_states() {
    // b = inc(a) waits for a (fetching from P1); c = inc(1) is ready.
    fn fixture() -> WorkerState {
        let mut st = state();
        step(&mut st, |st| {
            st.compute_task(task("b", "inc", vec![r("a")], 1, &[("a", &[P1])]));
            st.compute_task(task("c", "inc", vec![Value::Int(1)], 2, &[]));
        });
        assert_eq!(st.phase("a"), Some(Phase::Fetching));
        assert_eq!(st.phase("b"), Some(Phase::Waiting));
        assert_eq!(st.phase("c"), Some(Phase::Ready));
        st
    }
    fn id(st: &WorkerState, k: &str) -> KeyId {
        st.names[k]
    }
    type Corrupt = fn(&mut WorkerState);
    let cases: [(&str, Corrupt, &str); 7] = [
        ("executing", |st| st.executing += 1, "keys executing"),
        (
            "dependents",
            |st| {
                let a = id(st, "a");
                st.em(a).dependents += 1;
            },
            "dependents",
        ),
        (
            "missing",
            |st| {
                let b = id(st, "b");
                st.em(b).state = State::Waiting { missing: 2 };
            },
            "missing",
        ),
        (
            "fetching from itself",
            |st| {
                let a = id(st, "a");
                st.em(a).state = State::Fetching {
                    from: s(ME),
                    others: vec![],
                };
            },
            "fetching from itself",
        ),
        ("ready heap", |st| st.ready.clear(), "not in its heap"),
        (
            "name table",
            |st| {
                st.names.remove("c");
            },
            "name table",
        ),
        (
            "kept for nothing",
            |st| {
                let c = id(st, "c");
                st.em(c).wanted = false;
            },
            "neither wanted nor pinned",
        ),
    ];
    for (what, corrupt, want) in cases {
        let mut st = fixture();
        corrupt(&mut st);
        match st.validate() {
            Ok(()) => panic!("{what}: validate() accepted the corrupted state"),
            Err(e) => assert!(e.contains(want), "{what}: {e:?} does not say {want:?}"),
        }
    }
}

// ------------------------------------------------------------ memory

use crate::worker::store::MemDisk;

/// A core with a memory limit of `limit` bytes, Dask's fractions, and an
/// in-memory disk.
fn managed(limit: u64) -> WorkerState {
    WorkerState::new(registry(), ME, limit)
        .with_memory(MemoryPolicy::default(), Some(Box::<MemDisk>::default()))
}

fn blob(tag: u8, n: usize) -> Value {
    Value::Bin(vec![tag; n].into())
}

#[test]
fn results_over_the_target_spill_least_recently_used_first_and_read_back() {
    // The target (0.6 of the limit) holds two of these values, not three
    // (whatever a value's size estimate counts besides its 250 bytes).
    let n = blob(0, 250).size_estimate() as u64;
    let mut st = managed(n * 25 / 6);
    let sizes = |st: &WorkerState| (st.store().bytes(), st.store().spilled_bytes());
    step(&mut st, |st| {
        st.put_data(vec![(s("a"), blob(1, 250)), (s("b"), blob(2, 250))]);
    });
    assert_eq!(sizes(&st), (2 * n, 0));
    // Reading `a` makes `b` the least recently used.
    let (found, _) = st.get_data(&[s("a")]);
    assert_eq!(found[0].1, blob(1, 250));
    step(&mut st, |st| {
        st.put_data(vec![(s("c"), blob(3, 250))]);
    });
    assert!(st.is_spilled("b") && !st.is_spilled("a") && !st.is_spilled("c"));
    assert_eq!(sizes(&st), (2 * n, n));
    assert_eq!(st.stats().spill.spilled, 1);
    // A spilled value is served (to a peer or a client) from disk ...
    let (found, missing) = st.get_data(&[s("b"), s("zz")]);
    assert_eq!(
        (found, missing),
        (vec![(s("b"), blob(2, 250))], vec![s("zz")])
    );
    assert!(st.is_spilled("b"), "served without coming back into memory");
    // ... and a task that needs it gets it from disk.
    let a = step(&mut st, |st| {
        st.compute_task(task("l", "len", vec![r("b")], 0, &[("b", &[ME])]))
    });
    assert_eq!(a, vec![Action::Execute(1)]);
    let (ran, a) = run_ready(&mut st);
    assert_eq!(ran, vec!["l"]);
    assert_eq!(finished(&a), vec![(s("l"), Some(Value::Int(250)))]);
    assert_eq!(st.stats().spill.unspilled, 2);
    // Freeing a spilled key deletes its file.
    let before = (st.store().spilled_len(), st.store().spilled_bytes());
    step(&mut st, |st| st.free_keys(&[s("b")]));
    assert!(!st.is_spilled("b"));
    assert_eq!(
        (st.store().spilled_len(), st.store().spilled_bytes()),
        (before.0 - 1, before.1 - n)
    );
    // A value larger than the target goes straight to disk.
    step(&mut st, |st| {
        st.put_data(vec![(s("huge"), blob(4, 900))]);
    });
    assert!(st.is_spilled("huge"));
    assert!(st.store().bytes() <= st.memory_target().unwrap());
    assert_eq!(st.value("huge"), Some(blob(4, 900)));
}

#[test]
fn process_memory_spills_pauses_resumes_and_terminates() {
    let mut st = managed(1000);
    step(&mut st, |st| {
        st.put_data(vec![(s("a"), blob(1, 200)), (s("b"), blob(2, 200))]);
    });
    step(&mut st, |st| {
        st.compute_task(task("t", "inc", vec![Value::Int(1)], 0, &[]))
    });
    // Under every threshold: nothing happens.
    assert_eq!(st.memory_sample(500), MemoryVerdict::Fine);
    assert!(!st.is_paused() && st.take_actions().is_empty());
    // Over the spill fraction (700): values go to disk until the process
    // would be back at the target (600): 150 bytes, the older value.
    let v = st.memory_sample(750);
    assert!(matches!(v, MemoryVerdict::Spilled(n) if n >= 150), "{v:?}");
    assert!(st.is_spilled("a") && !st.is_spilled("b"));
    st.validate().unwrap();
    assert!(!st.is_paused());
    // Over the pause fraction (800): paused, the scheduler told at once,
    // and no task is taken.
    st.memory_sample(850);
    assert!(st.is_paused());
    let a = st.take_actions();
    assert!(
        matches!(
            &sent(&a)[..],
            [Message::Heartbeat {
                paused: true,
                process: 850,
                ..
            }]
        ),
        "{a:?}"
    );
    assert_eq!(st.ready_len(), 0);
    let mut batch = Vec::new();
    assert_eq!(st.take_ready(10, &mut batch), 0);
    assert_eq!(st.take_cheap(10, &mut batch), 0);
    assert_eq!(st.stats().pauses, 1);
    // Still paused while over it; then back under: resumed, told, and the
    // queued task runs.
    st.memory_sample(820);
    assert!(st.is_paused());
    st.memory_sample(790);
    assert!(!st.is_paused());
    let a = st.take_actions();
    assert!(
        matches!(&sent(&a)[..], [Message::Heartbeat { paused: false, .. }]),
        "{a:?}"
    );
    assert!(a.contains(&Action::Execute(1)));
    let (ran, _) = run_ready(&mut st);
    assert_eq!(ran, vec!["t"]);
    // Over the terminate fraction (950): restart.
    assert_eq!(st.memory_sample(960), MemoryVerdict::Terminate);
    // A reset (the restart) drops the data and the spill files.
    st.reset();
    st.validate().unwrap();
    assert_eq!((st.store().len(), st.store().spilled_len()), (0, 0));
    assert!(!st.is_paused());
}

#[test]
fn memory_steps_turned_off_or_without_a_limit_do_nothing() {
    let mut st = WorkerState::new(registry(), ME, 0)
        .with_memory(MemoryPolicy::default(), Some(Box::<MemDisk>::default()));
    step(&mut st, |st| {
        st.put_data(vec![(s("a"), blob(1, 5000))]);
    });
    assert_eq!(st.memory_sample(u64::MAX / 2), MemoryVerdict::Fine);
    assert!(!st.is_spilled("a") && !st.is_paused());
    let off = MemoryPolicy {
        target: None,
        spill: None,
        pause: None,
        terminate: None,
    };
    let mut st =
        WorkerState::new(registry(), ME, 1000).with_memory(off, Some(Box::<MemDisk>::default()));
    step(&mut st, |st| {
        st.put_data(vec![(s("a"), blob(1, 5000))]);
    });
    assert_eq!(st.memory_sample(5000), MemoryVerdict::Fine);
    assert!(!st.is_spilled("a") && !st.is_paused());
}

#[test]
fn a_policy_must_be_fractions_in_order() {
    assert!(MemoryPolicy::default().check().is_ok());
    let p = |t, s, pa, te| MemoryPolicy {
        target: t,
        spill: s,
        pause: pa,
        terminate: te,
    };
    assert!(p(Some(0.0), None, None, None)
        .check()
        .unwrap_err()
        .contains("(0, 1]"));
    assert!(p(None, Some(1.5), None, None)
        .check()
        .unwrap_err()
        .contains("(0, 1]"));
    let e = p(Some(0.8), Some(0.7), None, None).check().unwrap_err();
    assert!(
        e.contains("spill fraction (0.7) is below the target"),
        "{e}"
    );
    assert!(p(Some(0.5), None, None, Some(0.9)).check().is_ok());
}

#[test]
fn a_seceding_run_sends_long_running_once_and_a_stale_one_nothing() {
    let mut st = state();
    step(&mut st, |st| {
        st.compute_task(task("p", "jl", vec![Value::Int(1)], 0, &[]))
    });
    let t = st.take_pulled().expect("ready");
    st.validate().unwrap();
    let a = step(&mut st, |st| assert!(st.secede(t.id, t.seq)));
    assert_eq!(
        sent(&a),
        vec![&Message::LongRunning { key: s("p") }],
        "the scheduler hears it"
    );
    // Again in the same run: nothing more to say.
    let a = step(&mut st, |st| assert!(st.secede(t.id, t.seq)));
    assert!(sent(&a).is_empty());
    // A stale run (another seq) is not current.
    let a = step(&mut st, |st| assert!(!st.secede(t.id, t.seq + 1)));
    assert!(sent(&a).is_empty());
    // It still finishes as usual.
    let a = step(&mut st, |st| {
        assert!(st.task_done(t.id, t.seq, Outcome::of(Ok(Value::Int(5))), 1.0))
    });
    assert_eq!(finished(&a), vec![(s("p"), Some(Value::Int(5)))]);
    // Freed while running: seceding then says so.
    step(&mut st, |st| {
        st.compute_task(task("q", "jl", vec![Value::Int(2)], 0, &[]))
    });
    let q = st.take_pulled().expect("ready");
    step(&mut st, |st| st.free_keys(&[s("q")]));
    let a = step(&mut st, |st| assert!(!st.secede(q.id, q.seq)));
    assert!(sent(&a).is_empty());
}

#[test]
fn heartbeats_carry_the_cpu_use_once_measured() {
    let mut st = state();
    assert!(matches!(
        st.heartbeat(),
        Message::Heartbeat { cpu: None, .. }
    ));
    st.cpu_sample(42.5);
    assert!(matches!(st.heartbeat(), Message::Heartbeat { cpu: Some(c), .. } if c == 42.5));
    // A reading that makes no sense is not sent.
    st.cpu_sample(f64::NAN);
    assert!(matches!(
        st.heartbeat(),
        Message::Heartbeat { cpu: None, .. }
    ));
    st.validate().unwrap();
}

#[test]
fn a_timed_fetch_says_where_from_and_how_long_in_add_keys() {
    let mut st = state();
    let a = step(&mut st, |st| {
        st.compute_task(task("t", "inc", vec![r("x")], 0, &[("x", &[P1])]))
    });
    assert!(a.iter().any(|x| matches!(x, Action::Fetch { .. })), "{a:?}");
    let a = step(&mut st, |st| {
        st.fetched_in(P1, vec![(s("x"), Value::Int(1))], &[], Some(0.5))
    });
    assert!(
        matches!(&sent(&a)[..], [Message::AddKeys { from, duration: Some(d), .. }] if from == P1 && *d == 0.5),
        "{a:?}"
    );
}

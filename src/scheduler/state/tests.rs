//! The scheduler core driven directly: the tests play the clients and the
//! workers, and check every invariant after every step.

use super::*;
use crate::value::Value;
use std::collections::BTreeMap;

// ---------------------------------------------------------------- helpers

fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect(),
    )
}

/// `{"ref": key}`
fn r(key: &str) -> Value {
    map(vec![("ref", Value::from(key))])
}

/// A literal node.
fn lit(v: impl Into<Value>) -> Value {
    map(vec![("value", v.into())])
}

/// A task node.
fn task(func: &str, args: Vec<Value>) -> Value {
    map(vec![
        ("func", Value::from(func)),
        ("args", Value::Array(args)),
    ])
}

/// A graph document.
fn doc(nodes: Vec<(&str, Value)>) -> Vec<u8> {
    crate::value::encode(&map(vec![("tasks", map(nodes))])).unwrap()
}

/// `{a: 1, x: 10, b: inc(a), y: inc(x), z: add(b, y)}`
fn classic() -> Vec<u8> {
    doc(vec![
        ("a", lit(1)),
        ("x", lit(10)),
        ("b", task("inc", vec![r("a")])),
        ("y", task("inc", vec![r("x")])),
        ("z", task("add", vec![r("b"), r("y")])),
    ])
}

/// A state with fake workers and clients; every stimulus goes through
/// [`Fx::step`], which validates and renders what was sent.
struct Fx {
    s: SchedulerState,
    out: Vec<Outgoing>,
    now: f64,
    sent: Vec<(Dest, Message)>,
    next_ext: u64,
}

const BUILTINS: &[&str] = &["inc", "add", "noop", "identity", "sum", "fail"];

impl Fx {
    fn new() -> Fx {
        Fx::with(SchedulerOptions {
            transition_log: 10_000,
            ..Default::default()
        })
    }

    fn with(opts: SchedulerOptions) -> Fx {
        Fx {
            s: SchedulerState::new(opts),
            out: Vec::new(),
            now: 0.0,
            sent: Vec::new(),
            next_ext: 1,
        }
    }

    fn step(&mut self) {
        if let Err(e) = self.s.validate() {
            panic!("invalid state: {e}");
        }
        let msgs = self.s.render_all(&mut self.out);
        self.sent.extend(msgs);
        self.now += 0.001;
    }

    fn client(&mut self) -> ClientId {
        self.next_ext += 1;
        let c = self.s.add_client(self.next_ext, "client");
        self.step();
        c
    }

    fn worker(&mut self, name: &str, threads: u32, funcs: &[&str]) -> WorkerId {
        self.next_ext += 1;
        let reg = WorkerRegistration {
            ext_id: self.next_ext,
            name: name.into(),
            address: format!("tcp://{name}:1"),
            threads,
            functions: funcs.iter().map(|s| s.to_string()).collect(),
            memory_limit: 0,
            runtime: String::new(),
        };
        let w = self.s.add_worker(reg, self.now, &mut self.out);
        self.step();
        w
    }

    fn submit(&mut self, c: ClientId, graph: Vec<u8>, keys: &[&str]) -> Result<(), String> {
        self.submit_retries(c, graph, keys, 0)
    }

    fn submit_retries(
        &mut self,
        c: ClientId,
        graph: Vec<u8>,
        keys: &[&str],
        retries: u32,
    ) -> Result<(), String> {
        let keys: Vec<String> = keys.iter().map(|s| s.to_string()).collect();
        let r = self
            .s
            .update_graph(c, &graph, &keys, retries, &mut self.out);
        self.step();
        r
    }

    fn finish(&mut self, w: WorkerId, key: &str) {
        self.finish_with(w, key, 8, Some(vec![0x01]));
    }

    fn finish_with(&mut self, w: WorkerId, key: &str, nbytes: u64, value: Option<Vec<u8>>) {
        self.s
            .task_finished(w, key, nbytes, 0.001, value, self.now, &mut self.out);
        self.step();
    }

    fn fail(&mut self, w: WorkerId, key: &str, message: &str) {
        self.s.task_erred(w, key, message, self.now, &mut self.out);
        self.step();
    }

    fn release(&mut self, c: ClientId, keys: &[&str]) {
        self.s.release_keys(c, keys, &mut self.out);
        self.step();
    }

    fn leave(&mut self, w: WorkerId) {
        self.s.remove_worker(w, &mut self.out);
        self.step();
    }

    /// Everything sent since the last call.
    fn take(&mut self) -> Vec<(Dest, Message)> {
        std::mem::take(&mut self.sent)
    }

    /// The `compute-task`s sent since the last call, as (worker, key).
    fn computes(&mut self) -> Vec<(WorkerId, String)> {
        self.take()
            .into_iter()
            .filter_map(|(d, m)| match (d, m) {
                (Dest::Worker(w), Message::ComputeTask { key, .. }) => Some((w, key)),
                _ => None,
            })
            .collect()
    }

    /// Plays every worker: finishes whatever was sent, until nothing is.
    /// Returns the other messages seen, in order.
    fn run(&mut self) -> Vec<(Dest, Message)> {
        let mut other = Vec::new();
        loop {
            let msgs = self.take();
            let mut work = Vec::new();
            for (d, m) in msgs {
                match (d, m) {
                    (Dest::Worker(w), Message::ComputeTask { key, .. }) => work.push((w, key)),
                    x => other.push(x),
                }
            }
            if work.is_empty() {
                return other;
            }
            for (w, k) in work {
                self.finish(w, &k);
            }
        }
    }

    fn state(&self, key: &str) -> Option<StateKind> {
        self.s.state_of(key)
    }
}

fn keys_in_memory(msgs: &[(Dest, Message)], c: ClientId) -> Vec<String> {
    msgs.iter()
        .filter_map(|(d, m)| match (d, m) {
            (Dest::Client(x), Message::KeyInMemory { key, .. }) if *x == c => Some(key.clone()),
            _ => None,
        })
        .collect()
}

fn freed(msgs: &[(Dest, Message)], w: WorkerId) -> Vec<String> {
    let mut v: Vec<String> = msgs
        .iter()
        .filter_map(|(d, m)| match (d, m) {
            (Dest::Worker(x), Message::FreeKeys { keys }) if *x == w => Some(keys.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    v.sort();
    v
}

// ------------------------------------------------------------------ tests

/// Found by the simulation (sim.rs, seed 2): a holder named in
/// `missing-data` lost its place in `who_has` but kept its copy, which
/// nothing ever freed.
#[test]
fn a_holder_named_in_missing_data_is_told_to_free_its_copy() {
    let mut f = Fx::new();
    let a = f.worker("a", 1, &["inc"]);
    let c = f.client();
    f.submit(
        c,
        doc(vec![("x", task("inc", vec![Value::Int(1)]))]),
        &["x"],
    )
    .unwrap();
    f.finish(a, "x");
    let b = f.worker("b", 1, BUILTINS);
    f.submit(
        c,
        doc(vec![("y", task("add", vec![r("x"), Value::Int(1)]))]),
        &["y"],
    )
    .unwrap();
    assert!(f.computes().contains(&(b, "y".to_string())));
    f.s.missing_data(
        b,
        "y",
        "x",
        "tcp://a:1",
        MissingReason::Unknown,
        f.now,
        &mut f.out,
    );
    f.step();
    let msgs = f.take();
    assert_eq!(freed(&msgs, a), vec!["x"]);
    // x is recomputed (on a, which offers inc), then y runs.
    let again: Vec<(WorkerId, String)> = msgs
        .iter()
        .filter_map(|(d, m)| match (d, m) {
            (Dest::Worker(w), Message::ComputeTask { key, .. }) => Some((*w, key.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(again, vec![(a, "x".to_string())]);
    f.finish(a, "x");
    f.run();
    assert_eq!(f.state("y"), Some(StateKind::Memory));
}

#[test]
fn classic_graph_through_one_worker() {
    let mut f = Fx::new();
    let w = f.worker("w1", 2, BUILTINS);
    let c = f.client();
    f.submit(c, classic(), &["z"]).unwrap();
    // Literals are substituted, never tasks.
    assert_eq!(f.state("a"), None);
    assert_eq!(f.state("x"), None);
    let msgs = f.take();
    let computes: Vec<_> = msgs
        .iter()
        .filter_map(|(d, m)| match m {
            Message::ComputeTask {
                key,
                func,
                args,
                priority,
                who_has,
            } => Some((
                *d,
                key.clone(),
                func.clone(),
                args.to_vec(),
                *priority,
                who_has.clone(),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(computes.len(), 2);
    let (d, key, func, args, p_first, who_has) = &computes[0];
    assert_eq!(*d, Dest::Worker(w));
    assert_eq!(func, "inc");
    assert!(who_has.is_empty());
    let expect = if key == "b" { 1 } else { 10 };
    assert_eq!(
        crate::value::decode(args).unwrap(),
        Value::Array(vec![Value::from(expect)])
    );
    assert!(*p_first < computes[1].4, "sent in priority order");
    assert_eq!(f.state("z"), Some(StateKind::Waiting));

    f.finish(w, "b");
    assert_eq!(f.state("z"), Some(StateKind::Waiting));
    assert!(f.take().is_empty());
    f.finish(w, "y");
    let msgs = f.take();
    let z = msgs
        .iter()
        .find_map(|(_, m)| match m {
            Message::ComputeTask { key, args, .. } if key == "z" => Some(args.to_vec()),
            _ => None,
        })
        .expect("z is sent once b and y are in memory");
    // References stay references.
    let dec = crate::graph::doc::decode_args(&z).unwrap();
    assert_eq!(
        dec,
        vec![
            crate::graph::doc::KeyArg::Ref("b".into()),
            crate::graph::doc::KeyArg::Ref("y".into())
        ]
    );

    f.finish_with(w, "z", 8, Some(vec![0x0d]));
    let msgs = f.take();
    // b and y are no longer needed: freed. z is reported with its value.
    assert_eq!(freed(&msgs, w), vec!["b", "y"]);
    let kim = msgs
        .iter()
        .find_map(|(d, m)| match m {
            Message::KeyInMemory {
                key,
                nbytes,
                workers,
                value,
            } => Some((*d, key.clone(), *nbytes, workers.clone(), value.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(kim.0, Dest::Client(c));
    assert_eq!(kim.1, "z");
    assert_eq!(kim.3, vec!["tcp://w1:1".to_string()]);
    assert_eq!(kim.4.unwrap().to_vec(), vec![0x0d]);
    // b and y stay as released lineage of z.
    assert_eq!(f.state("b"), Some(StateKind::Released));
    assert_eq!(f.state("z"), Some(StateKind::Memory));

    f.release(c, &["z"]);
    assert_eq!(freed(&f.take(), w), vec!["z"]);
    assert_eq!(f.s.counts().tasks, 0, "everything forgotten");

    // The story of z.
    let story: Vec<_> = f.s.story("z").iter().map(|t| (t.from, t.to)).collect();
    use StateKind::*;
    assert_eq!(
        story,
        vec![
            (Released, Waiting),
            (Waiting, Processing),
            (Processing, Memory),
            (Memory, Released),
            (Released, Forgotten)
        ]
    );
}

#[test]
fn two_clients_share_a_key_computed_once() {
    let mut f = Fx::new();
    let w = f.worker("w1", 2, BUILTINS);
    let c1 = f.client();
    let c2 = f.client();
    f.submit(c1, classic(), &["z"]).unwrap();
    f.submit(c2, classic(), &["z", "b"]).unwrap();
    let msgs = f.run();
    let computed: Vec<_> =
        f.s.transition_log()
            .filter(|t| t.to == StateKind::Processing)
            .map(|t| t.key.to_string())
            .collect();
    assert_eq!(computed.len(), 3, "b, y, z once each: {computed:?}");
    assert_eq!(keys_in_memory(&msgs, c1), vec!["z"]);
    let mut k2 = keys_in_memory(&msgs, c2);
    k2.sort();
    assert_eq!(k2, vec!["b", "z"]);
    // b is wanted by c2: only y is freed.
    assert_eq!(freed(&msgs, w), vec!["y"]);

    // A third submission of a key in memory is answered at once.
    let c3 = f.client();
    f.submit(c3, classic(), &["z"]).unwrap();
    let msgs = f.take();
    assert_eq!(keys_in_memory(&msgs, c3), vec!["z"]);
    assert!(f.computes().is_empty());

    f.release(c1, &["z"]);
    assert!(freed(&f.take(), w).is_empty(), "c2 and c3 still want z");
    f.release(c2, &["z", "b"]);
    assert_eq!(freed(&f.take(), w), vec!["b"]);
    // Disconnecting releases the rest.
    f.s.remove_client(c3, &mut f.out);
    f.step();
    assert_eq!(freed(&f.take(), w), vec!["z"]);
    assert_eq!(f.s.counts().tasks, 0);
}

#[test]
fn same_client_wanting_twice_counts_once() {
    let mut f = Fx::new();
    let w = f.worker("w1", 2, BUILTINS);
    let c = f.client();
    f.submit(c, classic(), &["z", "z"]).unwrap();
    f.submit(c, classic(), &["z"]).unwrap();
    f.run();
    f.release(c, &["z"]);
    assert_eq!(freed(&f.take(), w), vec!["z"]);
    assert_eq!(f.s.counts().tasks, 0);
}

#[test]
fn later_graph_refers_to_known_keys() {
    let mut f = Fx::new();
    let w = f.worker("w1", 2, BUILTINS);
    let c = f.client();
    f.submit(c, classic(), &["z"]).unwrap();
    f.run();
    // w = inc(z): z is not in this document, but the scheduler knows it.
    f.submit(c, doc(vec![("w", task("inc", vec![r("z")]))]), &["w"])
        .unwrap();
    let computes = f.computes();
    assert_eq!(computes, vec![(w, "w".to_string())]);
    // A document redefining a known key does not recompute it.
    f.submit(c, doc(vec![("z", task("noop", vec![]))]), &["z"])
        .unwrap();
    assert!(f.computes().is_empty());
}

#[test]
fn invalid_graphs_are_refused_whole() {
    let mut f = Fx::new();
    f.worker("w1", 2, BUILTINS);
    let c = f.client();
    let e = f
        .submit(c, doc(vec![("b", task("inc", vec![r("q")]))]), &["b"])
        .unwrap_err();
    assert_eq!(e, "key 'b' depends on 'q', which is not in the graph");
    let e = f
        .submit(
            c,
            doc(vec![
                ("a", task("inc", vec![r("b")])),
                ("b", task("inc", vec![r("a")])),
            ]),
            &["a"],
        )
        .unwrap_err();
    assert!(
        e.contains("cycle") && e.contains("'a'") && e.contains("'b'"),
        "{e}"
    );
    let e = f.submit(c, classic(), &["nope"]).unwrap_err();
    assert!(e.contains("'nope'"), "{e}");
    let e = f.submit(c, vec![0xc1], &["z"]).unwrap_err();
    assert!(e.contains("invalid graph document"), "{e}");
    assert_eq!(f.s.counts().tasks, 0);
    assert!(f.computes().is_empty());
}

#[test]
fn wanted_literal_becomes_an_identity_task() {
    let mut f = Fx::new();
    let w = f.worker("w1", 2, BUILTINS);
    let c = f.client();
    f.submit(
        c,
        doc(vec![
            ("a", lit(Value::Array(vec![Value::from(1)]))),
            ("b", task("inc", vec![r("a")])),
        ]),
        &["a", "b"],
    )
    .unwrap();
    let msgs = f.take();
    let sent: Vec<_> = msgs
        .iter()
        .filter_map(|(_, m)| match m {
            Message::ComputeTask {
                key, func, args, ..
            } => Some((key.clone(), func.clone(), args.to_vec())),
            _ => None,
        })
        .collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, "a");
    assert_eq!(sent[0].1, "identity");
    // Arrays are quoted.
    assert_eq!(
        crate::graph::doc::decode_args(&sent[0].2).unwrap(),
        vec![crate::graph::doc::KeyArg::Value(Value::Array(vec![
            Value::from(1)
        ]))]
    );
    f.finish(w, "a");
    assert_eq!(f.computes(), vec![(w, "b".to_string())]);
}

#[test]
fn release_before_completion_cancels_on_the_worker() {
    let mut f = Fx::new();
    let w = f.worker("w1", 2, BUILTINS);
    let c = f.client();
    f.submit(c, classic(), &["z"]).unwrap();
    assert_eq!(f.computes().len(), 2);
    f.release(c, &["z"]);
    assert_eq!(freed(&f.take(), w), vec!["b", "y"]);
    assert_eq!(f.s.counts().tasks, 0);
    // A late result is answered with free-keys.
    f.finish(w, "b");
    assert_eq!(freed(&f.take(), w), vec!["b"]);
    assert_eq!(f.s.counts().tasks, 0);
}

#[test]
fn cancel_notifies_and_spares_other_clients() {
    let mut f = Fx::new();
    let w = f.worker("w1", 2, BUILTINS);
    let c1 = f.client();
    let c2 = f.client();
    f.submit(c1, classic(), &["z"]).unwrap();
    f.submit(c2, doc(vec![("y", task("inc", vec![lit(10)]))]), &["y"])
        .unwrap();
    f.take();
    f.s.cancel_keys(c1, &["z"], &mut f.out);
    f.step();
    let msgs = f.take();
    assert!(msgs
        .iter()
        .any(|(d, m)| *d == Dest::Client(c1)
            && matches!(m, Message::KeyCancelled { key } if key == "z")));
    // b is cancelled on the worker; y goes on for c2.
    assert_eq!(freed(&msgs, w), vec!["b"]);
    assert_eq!(f.state("y"), Some(StateKind::Processing));
    f.finish(w, "y");
    assert_eq!(keys_in_memory(&f.take(), c2), vec!["y"]);
}

#[test]
fn a_raised_exception_and_its_traceback_reach_every_client_that_waits() {
    let mut f = Fx::new();
    let w = f.worker("w1", 2, BUILTINS);
    let c = f.client();
    f.submit(c, classic(), &["z"]).unwrap();
    f.take();
    f.finish(w, "y");
    f.s.task_raised(
        w,
        "b",
        "inc: ValueError: no",
        "ValueError",
        "Traceback\n  at b\n",
        f.now,
        &mut f.out,
    );
    f.step();
    let msgs = f.take();
    let erred: Vec<_> = msgs
        .iter()
        .filter_map(|(_, m)| match m {
            Message::KeyErred {
                key,
                failed,
                exception,
                traceback,
                ..
            } => Some((
                key.as_str(),
                failed.as_str(),
                exception.as_str(),
                traceback.as_str(),
            )),
            _ => None,
        })
        .collect();
    // z depends on b: its client hears of b's exception, traceback and all.
    assert_eq!(erred, vec![("z", "b", "ValueError", "Traceback\n  at b\n")]);
    // A client asking later for the erred key gets them too.
    let c2 = f.client();
    f.submit(c2, classic(), &["b"]).unwrap();
    let msgs = f.take();
    assert!(msgs.iter().any(|(d, m)| *d == Dest::Client(c2)
        && matches!(m, Message::KeyErred { key, exception, traceback, .. }
            if key == "b" && exception == "ValueError" && traceback.contains("at b"))));
}

#[test]
fn errors_spread_to_dependents_and_clients() {
    let mut f = Fx::new();
    let w = f.worker("w1", 2, BUILTINS);
    let c = f.client();
    let c2 = f.client();
    f.submit(c, classic(), &["z"]).unwrap();
    f.submit(c2, classic(), &["b"]).unwrap();
    f.take();
    f.finish(w, "y");
    f.fail(w, "b", "inc: boom");
    let msgs = f.take();
    let erred: Vec<_> = msgs
        .iter()
        .filter_map(|(d, m)| match m {
            Message::KeyErred {
                key,
                failed,
                func,
                worker,
                message,
                ..
            } => Some((
                *d,
                key.as_str(),
                failed.as_str(),
                func.as_str(),
                worker.as_str(),
                message.as_str(),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(erred.len(), 2);
    assert!(erred.contains(&(Dest::Client(c), "z", "b", "inc", "tcp://w1:1", "inc: boom")));
    assert!(erred.contains(&(Dest::Client(c2), "b", "b", "inc", "tcp://w1:1", "inc: boom")));
    // y's data is not needed any more.
    assert_eq!(freed(&msgs, w), vec!["y"]);
    assert_eq!(f.state("z"), Some(StateKind::Erred));
    // A new task on an erred key errs at once.
    let c3 = f.client();
    f.submit(c3, doc(vec![("q", task("inc", vec![r("z")]))]), &["q"])
        .unwrap();
    let msgs = f.take();
    assert!(msgs.iter().any(|(d, m)| *d == Dest::Client(c3)
        && matches!(m, Message::KeyErred { key, failed, .. } if key == "q" && failed == "b")));
    for (cl, k) in [(c, "z"), (c2, "b"), (c3, "q")] {
        f.release(cl, &[k]);
    }
    assert_eq!(f.s.counts().tasks, 0);
}

#[test]
fn retries_rerun_before_erring() {
    let mut f = Fx::new();
    let w = f.worker("w1", 2, BUILTINS);
    let c = f.client();
    f.submit_retries(c, doc(vec![("t", task("fail", vec![]))]), &["t"], 2)
        .unwrap();
    assert_eq!(f.computes().len(), 1);
    f.fail(w, "t", "flaky");
    assert_eq!(f.computes().len(), 1, "retry 1");
    f.fail(w, "t", "flaky");
    assert_eq!(f.computes().len(), 1, "retry 2");
    f.fail(w, "t", "flaky");
    assert!(f.computes().is_empty());
    assert_eq!(f.state("t"), Some(StateKind::Erred));

    f.submit_retries(c, doc(vec![("u", task("fail", vec![]))]), &["u"], 1)
        .unwrap();
    f.take();
    f.fail(w, "u", "flaky");
    f.take();
    f.finish(w, "u");
    assert_eq!(keys_in_memory(&f.take(), c), vec!["u"]);
}

#[test]
fn no_worker_until_a_capable_worker_joins() {
    let mut f = Fx::new();
    let c = f.client();
    f.submit(c, classic(), &["z"]).unwrap();
    assert_eq!(f.state("b"), Some(StateKind::NoWorker));
    // A worker that cannot run inc changes nothing.
    f.worker("other", 2, &["add"]);
    assert_eq!(f.state("b"), Some(StateKind::NoWorker));
    assert!(f.computes().is_empty());
    let w = f.worker("w1", 2, &["inc"]);
    let mut got = f.computes();
    got.sort();
    assert_eq!(got, vec![(w, "b".to_string()), (w, "y".to_string())]);
}

#[test]
fn placement_by_function() {
    let mut f = Fx::new();
    let wi = f.worker("incs", 2, &["inc"]);
    let wa = f.worker("adds", 2, &["add"]);
    let c = f.client();
    f.submit(c, classic(), &["z"]).unwrap();
    let got = f.computes();
    assert!(got.iter().all(|(w, _)| *w == wi));
    f.finish(wi, "b");
    f.finish(wi, "y");
    assert_eq!(f.computes(), vec![(wa, "z".to_string())]);
    // z's worker is told where b and y are.
    f.finish(wa, "z");
    // When the only capable worker leaves, queued work waits for another.
    f.submit(c, doc(vec![("q", task("inc", vec![lit(1)]))]), &["q"])
        .unwrap();
    f.take();
    f.leave(wi);
    assert_eq!(f.state("q"), Some(StateKind::NoWorker));
}

#[test]
fn placement_by_locality() {
    let mut f = Fx::new();
    let w1 = f.worker("w1", 1, BUILTINS);
    let w2 = f.worker("w2", 1, BUILTINS);
    let c = f.client();
    f.submit(
        c,
        doc(vec![
            ("big", task("noop", vec![])),
            ("small", task("noop", vec![])),
        ]),
        &["big", "small"],
    )
    .unwrap();
    let got = f.computes();
    let on = |k: &str| got.iter().find(|(_, x)| x == k).unwrap().0;
    let (wb, ws) = (on("big"), on("small"));
    assert_ne!(wb, ws, "spread by occupancy");
    f.finish_with(wb, "big", 1_000_000, None);
    f.finish_with(ws, "small", 10, None);
    f.submit(
        c,
        doc(vec![("use", task("add", vec![r("small"), r("big")]))]),
        &["use"],
    )
    .unwrap();
    assert_eq!(f.computes(), vec![(wb, "use".to_string())]);
    let _ = (w1, w2);
}

#[test]
fn placement_weighs_transfer_against_occupancy() {
    let mut f = Fx::new();
    let w1 = f.worker("w1", 1, BUILTINS);
    let w2 = f.worker("w2", 1, BUILTINS);
    let c = f.client();
    // A small input many tasks share (a shipped function's code): its
    // holder gets the first task, the other worker the next, as fetching
    // 500 bytes (5 us) costs less than waiting behind a task (0.5 ms).
    f.submit(c, doc(vec![("code", task("noop", vec![]))]), &["code"])
        .unwrap();
    let got = f.computes();
    let holder = got[0].0;
    f.finish_with(holder, "code", 500, None);
    f.submit(
        c,
        doc(vec![
            ("a", task("inc", vec![r("code")])),
            ("b", task("inc", vec![r("code")])),
        ]),
        &["a", "b"],
    )
    .unwrap();
    let got = f.computes();
    assert_eq!(got.len(), 2);
    assert_ne!(got[0].0, got[1].0, "spread: {got:?}");
    f.finish(got[0].0, &got[0].1.clone());
    f.finish(got[1].0, &got[1].1.clone());
    // A large input (10 MB: 100 ms to fetch) draws its dependents to its
    // holder while the work queued there is shorter than that.
    f.submit(c, doc(vec![("big", task("noop", vec![]))]), &["big"])
        .unwrap();
    let got = f.computes();
    let bh = got[0].0;
    f.finish_with(bh, "big", 10_000_000, None);
    f.submit(
        c,
        doc(vec![
            ("u", task("inc", vec![r("big")])),
            ("v", task("inc", vec![r("big")])),
        ]),
        &["u", "v"],
    )
    .unwrap();
    assert_eq!(
        f.computes(),
        vec![(bh, "u".to_string()), (bh, "v".to_string())]
    );
    let _ = (w1, w2);
}

#[test]
fn placement_by_occupancy() {
    let mut f = Fx::new();
    let w1 = f.worker("w1", 4, BUILTINS);
    let w2 = f.worker("w2", 4, BUILTINS);
    let c = f.client();
    // Teach the scheduler that `slow` takes 1 s and `noop` 1 ms.
    f.submit(c, doc(vec![("s0", task("slow", vec![]))]), &["s0"])
        .unwrap();
    f.take();
    // Nobody runs `slow`: register a worker that does.
    let ws = f.worker("ws", 1, &["slow", "noop"]);
    assert_eq!(f.computes(), vec![(ws, "s0".to_string())]);
    f.s.task_finished(ws, "s0", 8, 1.0, None, f.now, &mut f.out);
    f.step();
    assert_eq!(f.s.duration_estimate("slow"), 1.0);
    assert_eq!(f.s.duration_estimate("never"), 0.0005);
    // w1 gets a slow task... w1 cannot run slow; give one to ws.
    f.submit(c, doc(vec![("s1", task("slow", vec![]))]), &["s1"])
        .unwrap();
    assert_eq!(f.computes(), vec![(ws, "s1".to_string())]);
    // Now ws is occupied 1 s; noops go to w1 and w2, not ws.
    f.submit(
        c,
        doc(vec![
            ("n1", task("noop", vec![])),
            ("n2", task("noop", vec![])),
            ("n3", task("noop", vec![])),
            ("n4", task("noop", vec![])),
        ]),
        &["n1", "n2", "n3", "n4"],
    )
    .unwrap();
    let got = f.computes();
    assert_eq!(got.len(), 4);
    assert_eq!(got.iter().filter(|(w, _)| *w == w1).count(), 2);
    assert_eq!(got.iter().filter(|(w, _)| *w == w2).count(), 2);
}

#[test]
fn backlog_limits_what_a_worker_holds() {
    let mut f = Fx::new();
    let w = f.worker("w1", 1, BUILTINS);
    assert_eq!(f.s.worker(w).unwrap().limit(), 4);
    let c = f.client();
    let nodes: Vec<(String, Value)> = (0..10)
        .map(|i| (format!("t{i}"), task("noop", vec![])))
        .collect();
    let names: Vec<&str> = nodes.iter().map(|(k, _)| k.as_str()).collect();
    let graph = doc(nodes.iter().map(|(k, v)| (k.as_str(), v.clone())).collect());
    f.submit(c, graph, &names).unwrap();
    let first = f.computes();
    assert_eq!(first.len(), 4);
    assert_eq!(f.s.counts().queued, 6);
    f.finish(w, &first[0].1);
    let one = f.computes();
    assert_eq!(one.len(), 1, "one slot freed, one task sent");
    // A high-priority later submission? No: earlier submissions go first.
    f.submit(c, doc(vec![("late", task("noop", vec![]))]), &["late"])
        .unwrap();
    assert!(f.computes().is_empty());
    // A new worker gets queued work at once, earliest submission first.
    let w2 = f.worker("w2", 1, BUILTINS);
    let got = f.computes();
    assert_eq!(got.len(), 4);
    assert!(got.iter().all(|(x, _)| *x == w2));
    assert!(!got.iter().any(|(_, k)| k == "late"));
    for (x, k) in first[1..].iter().chain(&one).chain(&got) {
        f.finish(*x, k);
    }
    f.run();
    assert_eq!(f.s.counts().memory, 11);
    assert!(f.s.counts().queued == 0 && f.s.counts().processing == 0);
}

#[test]
fn short_tasks_get_a_deeper_backlog() {
    let mut f = Fx::new();
    let w = f.worker("w1", 1, BUILTINS);
    let c = f.client();
    let nodes: Vec<(String, Value)> = (0..300)
        .map(|i| (format!("t{i}"), task("noop", vec![])))
        .collect();
    let names: Vec<&str> = nodes.iter().map(|(k, _)| k.as_str()).collect();
    let graph = doc(nodes.iter().map(|(k, v)| (k.as_str(), v.clone())).collect());
    f.submit(c, graph, &names).unwrap();
    // Never seen: estimated 0.5 ms each, so the usual limit of 4.
    let first = f.computes();
    assert_eq!(first.len(), 4);
    // They took 2 µs: now the worker may hold up to 128 of them (far
    // under 1 ms of estimated work).
    let finish_fast = |f: &mut Fx, k: &str| {
        f.s.task_finished(w, k, 8, 2e-6, None, f.now, &mut f.out);
        f.step();
    };
    for (_, k) in &first {
        finish_fast(&mut f, k);
    }
    let more = f.computes();
    assert_eq!(more.len(), 128);
    assert_eq!(f.s.worker(w).unwrap().processing_count(), 128);
    for (_, k) in &more {
        finish_fast(&mut f, k);
    }
    let rest = f.computes();
    assert_eq!(rest.len(), 128);
    for (_, k) in &rest {
        finish_fast(&mut f, k);
    }
    for (_, k) in &f.computes() {
        finish_fast(&mut f, k);
    }
    assert_eq!(f.s.counts().memory, 300);
}

#[test]
fn priorities_follow_the_graph_order() {
    let mut f = Fx::new();
    let w = f.worker("w1", 1, BUILTINS);
    let c = f.client();
    // Two independent chains; the longer one is the critical path.
    f.submit(
        c,
        doc(vec![
            ("a1", task("noop", vec![])),
            ("b1", task("noop", vec![])),
            ("b2", task("inc", vec![r("b1")])),
            ("b3", task("inc", vec![r("b2")])),
        ]),
        &["a1", "b3"],
    )
    .unwrap();
    let got = f.computes();
    assert_eq!(got[0].1, "b1", "the critical path first: {got:?}");
    let _ = w;
}

#[test]
fn worker_leaving_mid_task_is_rescheduled() {
    let mut f = Fx::new();
    let w1 = f.worker("w1", 2, BUILTINS);
    let c = f.client();
    f.submit(c, classic(), &["z"]).unwrap();
    f.take();
    let w2 = f.worker("w2", 2, BUILTINS);
    f.leave(w1);
    let mut got = f.computes();
    got.sort();
    assert_eq!(got, vec![(w2, "b".to_string()), (w2, "y".to_string())]);
    f.finish(w2, "b");
    f.finish(w2, "y");
    let msgs = f.run();
    assert_eq!(keys_in_memory(&msgs, c), vec!["z"]);
}

#[test]
fn lost_data_is_recomputed() {
    let mut f = Fx::new();
    let w1 = f.worker("w1", 2, &["inc"]);
    let w2 = f.worker("w2", 2, &["inc"]);
    let wa = f.worker("adder", 2, &["add"]);
    let c = f.client();
    f.submit(c, classic(), &["z"]).unwrap();
    let got = f.computes();
    let on = |k: &str| got.iter().find(|(_, x)| x == k).unwrap().0;
    let wb = on("b");
    let wy = on("y");
    assert_ne!(wb, wy);
    f.finish(wb, "b");
    // The holder of b leaves before z can run: b is recomputed elsewhere.
    f.leave(wb);
    assert_eq!(f.state("b"), Some(StateKind::Processing));
    let got = f.computes();
    assert_eq!(got, vec![(wy, "b".to_string())]);
    f.finish(wy, "b");
    f.finish(wy, "y");
    assert_eq!(f.computes(), vec![(wa, "z".to_string())]);
    // Now the holder of b and y leaves while z is processing: z is taken
    // back, b and y recomputed... on no worker that can run inc.
    f.leave(wy);
    assert_eq!(f.state("z"), Some(StateKind::Waiting));
    assert_eq!(f.state("b"), Some(StateKind::NoWorker));
    assert!(freed(&f.take(), wa).contains(&"z".to_string()));
    let w3 = f.worker("w3", 2, &["inc"]);
    let msgs = f.run();
    assert_eq!(keys_in_memory(&msgs, c), vec!["z"]);
    let _ = (w1, w2, w3);
}

#[test]
fn lost_result_in_memory_is_recomputed_for_its_client() {
    let mut f = Fx::new();
    let w1 = f.worker("w1", 2, BUILTINS);
    let c = f.client();
    f.submit(c, classic(), &["z"]).unwrap();
    f.run();
    assert_eq!(f.state("z"), Some(StateKind::Memory));
    // Its only holder leaves: z and then b, y (released lineage) rerun.
    let w2 = f.worker("w2", 2, BUILTINS);
    f.leave(w1);
    assert_eq!(f.state("z"), Some(StateKind::Waiting));
    let msgs = f.run();
    assert_eq!(keys_in_memory(&msgs, c), vec!["z"]);
    let _ = w2;
}

#[test]
fn missing_data_refetches_or_recomputes() {
    let mut f = Fx::new();
    let w1 = f.worker("w1", 2, &["inc"]);
    let w2 = f.worker("w2", 2, &["add"]);
    let c = f.client();
    f.submit(c, classic(), &["z"]).unwrap();
    f.take();
    f.finish(w1, "b");
    f.finish(w1, "y");
    // A second copy of b on w2 (it fetched it).
    f.s.add_keys(w2, &["b"], &[8], f.now, &mut f.out);
    f.step();
    assert_eq!(f.s.who_has_of("b").len(), 2);
    assert_eq!(f.computes(), vec![(w2, "z".to_string())]);
    // w2 could not get y from w1: y's only holder lost it.
    f.s.missing_data(
        w2,
        "z",
        "y",
        "tcp://w1:1",
        MissingReason::Unknown,
        f.now,
        &mut f.out,
    );
    f.step();
    let msgs = f.take();
    assert_eq!(freed(&msgs, w2), vec!["z"]);
    assert_eq!(f.state("y"), Some(StateKind::Processing));
    assert_eq!(f.state("z"), Some(StateKind::Waiting));
    f.finish(w1, "y");
    assert_eq!(f.computes(), vec![(w2, "z".to_string())]);
    // Missing b from w1: w2 still has it, so b stays in memory.
    f.s.missing_data(
        w2,
        "z",
        "b",
        "tcp://w1:1",
        MissingReason::Unknown,
        f.now,
        &mut f.out,
    );
    f.step();
    assert_eq!(f.s.who_has_of("b"), vec!["tcp://w2:1".to_string()]);
    assert_eq!(f.computes(), vec![(w2, "z".to_string())]);
    f.finish(w2, "z");
}

#[test]
fn scattered_data_is_used_and_cannot_be_recomputed() {
    let mut f = Fx::new();
    let w = f.worker("w1", 2, BUILTINS);
    let c = f.client();
    let ext = f.s.worker(w).unwrap().ext_id();
    let who: std::collections::BTreeMap<String, Vec<u64>> =
        [("data".to_string(), vec![ext])].into();
    let nb = [("data".to_string(), 800u64)].into();
    f.s.scattered(c, &who, &nb, &mut f.out).unwrap();
    f.step();
    assert_eq!(f.state("data"), Some(StateKind::Memory));
    f.submit(c, doc(vec![("s", task("sum", vec![r("data")]))]), &["s"])
        .unwrap();
    let msgs = f.take();
    assert!(msgs
        .iter()
        .any(|(_, m)| matches!(m, Message::ComputeTask { key, .. } if key == "s")));
    // The data is lost while s waits... it errs instead of hanging.
    let w2 = f.worker("w2", 2, BUILTINS);
    f.leave(w);
    assert_eq!(f.state("data"), Some(StateKind::Erred));
    assert_eq!(f.state("s"), Some(StateKind::Erred));
    let msgs = f.take();
    assert!(msgs
        .iter()
        .any(|(_, m)| matches!(m, Message::KeyErred { key, .. } if key == "s")));
    // Unknown workers are refused.
    let who = [("x".to_string(), vec![999u64])].into();
    assert!(f
        .s
        .scattered(c, &who, &Default::default(), &mut f.out)
        .is_err());
    f.step();
    let _ = w2;
}

#[test]
fn who_has_and_workers_replies() {
    let mut f = Fx::new();
    let w = f.worker("w1", 2, BUILTINS);
    let c = f.client();
    f.submit(c, classic(), &["z"]).unwrap();
    f.run();
    f.s.who_has(c, 7, &["z", "nope"], &mut f.out);
    f.s.get_workers(c, 8, &mut f.out);
    f.step();
    let msgs = f.take();
    match &msgs[0].1 {
        Message::WhoHasReply { id, who_has } => {
            assert_eq!(*id, 7);
            assert_eq!(who_has["z"], vec!["tcp://w1:1".to_string()]);
            assert!(who_has["nope"].is_empty());
        }
        m => panic!("{m:?}"),
    }
    match &msgs[1].1 {
        Message::WorkersReply { id, workers } => {
            assert_eq!(*id, 8);
            assert_eq!(workers.len(), 1);
            assert_eq!(workers[0].address, "tcp://w1:1");
            assert_eq!(workers[0].threads, 2);
            assert!(workers[0].functions.contains(&"inc".to_string()));
        }
        m => panic!("{m:?}"),
    }
    let _ = w;
}

#[test]
fn wrong_ops_are_answered_with_errors() {
    let mut f = Fx::new();
    let w = f.worker("w1", 2, BUILTINS);
    let c = f.client();
    // What a role may not send has no value of its type: the connection
    // answers it (tests/scheduler_server.rs), the core never sees it.
    assert!(ClientMessage::try_from(Message::FreeKeys { keys: vec![] }).is_err());
    assert!(WorkerMessage::try_from(Message::GetWorkers { id: 1 }).is_err());
    let _ = w;
    f.s.handle_client_message(
        c,
        ClientMessage::UpdateGraph {
            graph: serde_bytes::ByteBuf::from(vec![0x90]),
            keys: vec![],
            retries: 0,
            from_task: false,
            id: Some(4),
        },
        f.now,
        &mut f.out,
    );
    // Without an id (older clients) it is still refused, with none.
    f.s.handle_client_message(
        c,
        ClientMessage::UpdateGraph {
            graph: serde_bytes::ByteBuf::from(vec![0x90]),
            keys: vec![],
            retries: 0,
            from_task: false,
            id: None,
        },
        f.now,
        &mut f.out,
    );
    f.s.handle_client_message(
        c,
        ClientMessage::Scattered {
            who_has: [("s".to_string(), vec![99])].into(),
            nbytes: [("s".to_string(), 1)].into(),
            id: Some(5),
        },
        f.now,
        &mut f.out,
    );
    // A coordination request goes to the coordination objects.
    f.s.handle_client_message(
        c,
        ClientMessage::QueueSize {
            id: 6,
            name: String::new(),
        },
        f.now,
        &mut f.out,
    );
    f.step();
    let msgs = f.take();
    let codes: Vec<_> = msgs
        .iter()
        .map(|(d, m)| match m {
            Message::Error { code, id, .. } => (*d, code.clone().unwrap(), *id),
            m => panic!("{m:?}"),
        })
        .collect();
    // Every error echoes the id of the message it answers.
    assert_eq!(
        codes,
        vec![
            (Dest::Client(c), "bad-graph".to_string(), Some(4)),
            (Dest::Client(c), "bad-graph".to_string(), None),
            (Dest::Client(c), "unknown-key".to_string(), Some(5)),
            (Dest::Client(c), "bad-argument".to_string(), Some(6)),
        ]
    );
}

#[test]
fn stale_workers_by_heartbeat() {
    let mut f = Fx::new();
    let w1 = f.worker("w1", 1, BUILTINS);
    let w2 = f.worker("w2", 1, BUILTINS);
    f.s.heartbeat(w2, 0, WorkerMemory::default(), 10.0, &mut Vec::new());
    assert_eq!(f.s.stale_workers(10.0, 5.0), vec![w1]);
}

#[test]
fn late_and_duplicate_results() {
    let mut f = Fx::new();
    let w1 = f.worker("w1", 2, BUILTINS);
    let w2 = f.worker("w2", 2, BUILTINS);
    let c = f.client();
    f.submit(c, doc(vec![("t", task("noop", vec![]))]), &["t"])
        .unwrap();
    let got = f.computes();
    let (wt, other) = if got[0].0 == w1 { (w1, w2) } else { (w2, w1) };
    // The other worker reports t (a late result of a run taken back from
    // it: it was sent free-keys and drops the value): ignored, and it is
    // told again to drop it.
    f.finish(other, "t");
    let msgs = f.take();
    assert_eq!(freed(&msgs, other), vec!["t"]);
    assert!(keys_in_memory(&msgs, c).is_empty());
    assert_eq!(f.state("t"), Some(StateKind::Processing));
    // wt finishes: the one copy; its duplicate changes nothing.
    f.finish(wt, "t");
    assert_eq!(keys_in_memory(&f.take(), c), vec!["t"]);
    f.finish(wt, "t");
    assert_eq!(f.s.who_has_of("t").len(), 1);
    // A late result from the other worker now: still not a copy.
    f.finish(other, "t");
    assert_eq!(freed(&f.take(), other), vec!["t"]);
    assert_eq!(f.s.who_has_of("t").len(), 1);
    // A stale error is ignored.
    f.fail(wt, "t", "late");
    assert_eq!(f.state("t"), Some(StateKind::Memory));
    // An unknown key.
    f.finish(wt, "who");
    assert_eq!(freed(&f.take(), wt), vec!["who"]);
}

#[test]
fn a_wide_fan_in_and_out() {
    // 1000 tasks on one root, then released one by one (the dependents set
    // turns into a hash set).
    let mut f = Fx::new();
    let w = f.worker("w1", 4, BUILTINS);
    let c = f.client();
    let mut nodes = vec![("root".to_string(), task("noop", vec![]))];
    for i in 0..1000 {
        nodes.push((format!("d{i}"), task("inc", vec![r("root")])));
    }
    let names: Vec<String> = nodes[1..].iter().map(|(k, _)| k.clone()).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let graph = doc(nodes.iter().map(|(k, v)| (k.as_str(), v.clone())).collect());
    f.submit(c, graph, &refs).unwrap();
    assert_eq!(f.computes(), vec![(w, "root".to_string())]);
    assert_eq!(f.s.counts().waiting, 1000);
    f.finish(w, "root");
    assert_eq!(f.computes().len(), 10, "threads 4 + backlog 4 + 2");
    for k in &refs {
        f.s.release_keys(c, &[*k], &mut f.out);
    }
    f.step();
    assert_eq!(f.s.counts().tasks, 0);
}

#[test]
fn long_chains_do_not_recurse() {
    let mut f = Fx::new();
    let w = f.worker("w1", 1, BUILTINS);
    let c = f.client();
    let n = 100_000;
    let mut nodes = vec![("c0".to_string(), task("noop", vec![]))];
    for i in 1..n {
        nodes.push((
            format!("c{i}"),
            task("inc", vec![r(&format!("c{}", i - 1))]),
        ));
    }
    let graph = doc(nodes.iter().map(|(k, v)| (k.as_str(), v.clone())).collect());
    let last = format!("c{}", n - 1);
    f.s.update_graph(c, &graph, std::slice::from_ref(&last), 0, &mut f.out)
        .unwrap();
    let mut out = std::mem::take(&mut f.out);
    let mut done = 0;
    loop {
        let msgs = f.s.render_all(&mut out);
        let keys: Vec<String> = msgs
            .into_iter()
            .filter_map(|(_, m)| match m {
                Message::ComputeTask { key, .. } => Some(key),
                _ => None,
            })
            .collect();
        if keys.is_empty() {
            break;
        }
        for k in keys {
            f.s.task_finished(w, &k, 8, 0.0, None, 0.0, &mut out);
            done += 1;
        }
    }
    assert_eq!(done, n);
    f.s.validate().unwrap();
    f.s.release_keys(c, &[last], &mut out);
    f.s.validate().unwrap();
    assert_eq!(f.s.counts().tasks, 0);
}

#[test]
fn the_transition_log_is_bounded_and_off_by_default() {
    let mut f = Fx::with(SchedulerOptions {
        transition_log: 5,
        ..Default::default()
    });
    let w = f.worker("w1", 2, BUILTINS);
    let c = f.client();
    f.submit(c, classic(), &["z"]).unwrap();
    f.run();
    assert_eq!(f.s.transition_log().count(), 5);
    // The last stimulus: z in memory, then b and y released (one id).
    let tail: Vec<_> = f.s.transition_log().skip(2).collect();
    assert_eq!(&*tail[0].key, "z");
    assert_eq!(
        (tail[0].from, tail[0].to),
        (StateKind::Processing, StateKind::Memory)
    );
    assert!(tail
        .iter()
        .all(|t| t.stimulus == Stimulus::TaskFinished && t.stimulus_id == tail[0].stimulus_id));
    assert!(tail[1..].iter().all(|t| t.to == StateKind::Released));
    // Warming the caches changes nothing.
    f.s.warm(["z", "b", "nope"]);
    f.step();

    let mut g = Fx::with(SchedulerOptions::default());
    g.worker("w1", 2, BUILTINS);
    let c = g.client();
    g.submit(c, classic(), &["z"]).unwrap();
    g.run();
    assert_eq!(g.s.transition_log().count(), 0);
    let _ = w;
}

#[test]
fn a_worker_leaving_after_its_keys_were_forgotten() {
    // Regression: `has_what` keeps stale entries (forgotten tasks, reused
    // slots); a worker leaving must skip them, not panic.
    let mut f = Fx::new();
    let w1 = f.worker("w1", 2, BUILTINS);
    let w2 = f.worker("w2", 2, BUILTINS);
    let c = f.client();
    let nodes: Vec<(String, Value)> = (0..20)
        .map(|i| (format!("i{i}"), task("inc", vec![lit(i)])))
        .collect();
    let names: Vec<&str> = nodes.iter().map(|(k, _)| k.as_str()).collect();
    let graph = doc(nodes.iter().map(|(k, v)| (k.as_str(), v.clone())).collect());
    f.submit(c, graph, &names).unwrap();
    f.run();
    assert!(f.s.worker(w1).unwrap().keys_held() > 0);
    f.release(c, &names);
    assert_eq!(f.s.counts().tasks, 0);
    // Reuse some of the freed slots for keys on the other worker.
    f.submit(c, classic(), &["z"]).unwrap();
    f.run();
    f.leave(w1);
    f.submit(c, doc(vec![("q", task("inc", vec![lit(100)]))]), &["q"])
        .unwrap();
    let msgs = f.run();
    let mut got = keys_in_memory(&msgs, c);
    got.sort();
    // z was on w1 too: recomputed on w2.
    assert_eq!(got, vec!["q", "z"]);
    let _ = w2;
}

/// The `key-erred` messages sent to `c`, as (key, failed key, message).
fn key_erred(msgs: &[(Dest, Message)], c: ClientId) -> Vec<(String, String, String)> {
    msgs.iter()
        .filter_map(|(d, m)| match (d, m) {
            (
                Dest::Client(x),
                Message::KeyErred {
                    key,
                    failed,
                    message,
                    ..
                },
            ) if *x == c => Some((key.clone(), failed.clone(), message.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_task_that_kills_its_workers_errs_after_allowed_failures() {
    // `b` kills every worker it runs on; `y` is innocent. After the third
    // death `b` errs (and `z`, which needs it) instead of killing worker
    // after worker; `y` still finishes.
    let mut f = Fx::new();
    assert_eq!(f.s.options().allowed_failures, 3);
    let c = f.client();
    let mut w = f.worker("w0", 1, &["inc"]);
    let adder = f.worker("adder", 1, &["add"]);
    f.submit(c, classic(), &["z", "y"]).unwrap();
    for i in 1..=3 {
        let got = f.computes();
        assert!(got.contains(&(w, "b".to_string())), "{i}: {got:?}");
        // A fresh worker before the old one dies: `b` moves there.
        let next = f.worker(&format!("w{i}"), 1, &["inc"]);
        if got.contains(&(w, "y".to_string())) {
            f.finish(w, "y");
            f.take();
        }
        f.leave(w);
        w = next;
        if i < 3 {
            assert_eq!(f.state("b"), Some(StateKind::Processing), "{i}");
        }
    }
    assert_eq!(f.state("b"), Some(StateKind::Erred));
    assert_eq!(f.state("z"), Some(StateKind::Erred));
    let msgs = f.run();
    let errs = key_erred(&msgs, c);
    assert_eq!(errs.len(), 1, "{errs:?}");
    let (key, failed, message) = &errs[0];
    assert_eq!((key.as_str(), failed.as_str()), ("z", "b"));
    assert!(
        message.contains("running on 3 workers that died"),
        "{message}"
    );
    // y is lost with the workers but recomputed; the cluster lives on.
    assert_eq!(f.state("y"), Some(StateKind::Memory));
    assert!(f.s.worker(w).is_some() && f.s.worker(adder).is_some());
}

#[test]
fn allowed_failures_zero_never_gives_up_and_success_keeps_counting() {
    let mut f = Fx::with(SchedulerOptions {
        allowed_failures: 0,
        ..Default::default()
    });
    let c = f.client();
    let mut w = f.worker("w0", 1, BUILTINS);
    f.submit(c, doc(vec![("b", task("inc", vec![lit(1)]))]), &["b"])
        .unwrap();
    for i in 1..=10 {
        let next = f.worker(&format!("w{i}"), 1, BUILTINS);
        // What was sent to `w` dies with it.
        f.take();
        f.leave(w);
        w = next;
        assert_eq!(f.state("b"), Some(StateKind::Processing), "{i}");
    }
    let msgs = f.run();
    assert_eq!(keys_in_memory(&msgs, c), vec!["b"]);

    // allowed_failures 1: the first death while processing errs it.
    let mut g = Fx::with(SchedulerOptions {
        allowed_failures: 1,
        ..Default::default()
    });
    let c = g.client();
    let w = g.worker("w0", 1, BUILTINS);
    g.submit(c, doc(vec![("b", task("inc", vec![lit(1)]))]), &["b"])
        .unwrap();
    g.take();
    g.worker("w1", 1, BUILTINS);
    g.leave(w);
    assert_eq!(g.state("b"), Some(StateKind::Erred));
    let errs = key_erred(&g.take(), c);
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].2.contains("running on 1 worker that died"),
        "{errs:?}"
    );
}

/// Found by tests/bad_input.rs: a worker claiming results of u64::MAX
/// bytes overflowed its byte count (a panic in debug builds, which
/// stopped the scheduler). Counts wrap instead: freeing the keys restores
/// them exactly, and nothing panics when they are placed by locality.
#[test]
fn absurd_nbytes_from_a_worker_do_not_overflow() {
    let mut f = Fx::new();
    let w = f.worker("w1", 2, BUILTINS);
    let w2 = f.worker("w2", 2, BUILTINS);
    let c = f.client();
    f.submit(c, classic(), &["z"]).unwrap();
    for (_, k) in f.computes() {
        f.finish_with(w, &k, u64::MAX, None);
    }
    let _ = f.computes();
    f.finish_with(w, "z", u64::MAX - 1, None);
    f.release(c, &["z"]);
    assert_eq!(f.s.workers[w.0 as usize].as_ref().unwrap().nbytes, 0);
    f.leave(w);
    f.leave(w2);
}

/// A worker registering with `threads: 4294967295` (a valid u32) overflowed
/// its task limit (a panic in debug builds, which stopped the scheduler).
/// The limit saturates; the worker still gets work.
#[test]
fn a_worker_claiming_u32_max_threads_does_not_overflow() {
    let mut f = Fx::new();
    let w = f.worker("huge", u32::MAX, BUILTINS);
    let c = f.client();
    f.submit(c, classic(), &["z"]).unwrap();
    let first = f.computes();
    assert!(!first.is_empty() && first.iter().all(|(to, _)| *to == w));
    for (_, k) in first {
        f.finish(w, &k);
    }
    f.run();
    assert_eq!(f.state("z"), Some(StateKind::Memory));
    f.leave(w);
}

#[test]
fn emptied_large_tables_are_given_back_and_used_again() {
    let mut f = Fx::with(SchedulerOptions::default());
    let c = f.client();
    let w = f.worker("w", 2, BUILTINS);
    let n = SHRINK_SLOTS + 10;
    let names: Vec<String> = (0..n).map(|i| format!("t-{i}")).collect();
    let nodes: Vec<(&str, Value)> = names
        .iter()
        .enumerate()
        .map(|(i, k)| (k.as_str(), task("noop", vec![lit(i as i64)])))
        .collect();
    let keys: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
    f.submit(c, doc(nodes), &keys).unwrap();
    // Some processing on the worker, the rest queued.
    let running = f.computes();
    assert!(!running.is_empty());
    assert_eq!(f.s.counts().tasks, n);
    assert_eq!(f.s.shrunk(), 0);
    f.finish(w, &running[0].1);
    // Releasing everything forgets every task: the tables are given back.
    f.release(c, &keys);
    assert_eq!(f.s.counts().tasks, 0);
    assert_eq!(f.s.shrunk(), 1);
    assert_eq!(f.s.tasks.len(), 0);
    // And the scheduler works on, from fresh tables.
    f.take();
    f.submit(c, classic(), &["z"]).unwrap();
    let msgs = f.run();
    assert_eq!(keys_in_memory(&msgs, c), ["z"]);
    assert_eq!(f.s.shrunk(), 1);
}

// ------------------------------------------------------------ retirement

/// `n` independent `inc` tasks `k0..k{n-1}`.
fn incs(n: usize) -> (Vec<u8>, Vec<String>) {
    let keys: Vec<String> = (0..n).map(|i| format!("k{i}")).collect();
    let nodes = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.as_str(), task("inc", vec![Value::from(i as i64)])))
        .collect();
    (doc(nodes), keys)
}

fn closes(msgs: &[(Dest, Message)], w: WorkerId) -> usize {
    msgs.iter()
        .filter(|(d, m)| *d == Dest::Worker(w) && matches!(m, Message::Close { .. }))
        .count()
}

/// The `acquire-replicas` sent, as (worker, key, holders asked).
fn acquires(msgs: &[(Dest, Message)]) -> Vec<(WorkerId, String, Vec<String>)> {
    let mut v = Vec::new();
    for (d, m) in msgs {
        if let (Dest::Worker(w), Message::AcquireReplicas { who_has }) = (d, m) {
            for (k, h) in who_has {
                v.push((*w, k.clone(), h.clone()));
            }
        }
    }
    v
}

impl Fx {
    fn retire(&mut self, w: WorkerId) {
        self.s.retire_worker(w, "test", &mut self.out);
        self.step();
    }
    fn reschedule(&mut self, w: WorkerId, keys: &[&str]) {
        self.s.reschedule(w, keys, self.now, &mut self.out);
        self.step();
    }
    fn add_keys(&mut self, w: WorkerId, keys: &[&str]) {
        let nbytes = vec![8; keys.len()];
        self.s.add_keys(w, keys, &nbytes, self.now, &mut self.out);
        self.step();
    }
    fn acquire_failed(&mut self, w: WorkerId, keys: &[&str]) {
        self.s
            .acquire_failed(w, keys, "cannot fetch", self.now, &mut self.out);
        self.step();
    }
    fn tick(&mut self, now: f64) {
        self.now = now;
        self.s.tick(now, &mut self.out);
        self.step();
    }
}

#[test]
fn a_retiring_worker_gets_no_new_task_and_its_unique_results_move_before_close() {
    let mut f = Fx::new();
    let w1 = f.worker("w1", 1, BUILTINS);
    let w2 = f.worker("w2", 1, BUILTINS);
    let c = f.client();
    let (g, keys) = incs(10);
    let keys: Vec<&str> = keys.iter().map(|s| s.as_str()).collect();
    f.submit(c, g, &keys).unwrap();
    let sent = f.computes();
    let on_w1: Vec<String> = sent
        .iter()
        .filter(|(w, _)| *w == w1)
        .map(|(_, k)| k.clone())
        .collect();
    assert!(on_w1.len() >= 3, "w1 got {on_w1:?}");
    // w1 retires while running its first two tasks: it hands back the
    // rest.
    f.retire(w1);
    assert!(f.s.worker(w1).unwrap().is_retiring());
    let back: Vec<&str> = on_w1[2..].iter().map(|s| s.as_str()).collect();
    f.reschedule(w1, &back);
    let msgs = f.take();
    // Its finished result is copied to w2, the only other worker.
    assert!(acquires(&msgs).is_empty(), "w1 holds nothing yet");
    assert_eq!(closes(&msgs, w1), 0, "tasks still run on w1");
    // w2 works through everything else; nothing more goes to w1.
    assert!(f.computes_in(&msgs).is_empty(), "w2 is full");
    f.finish(w1, &on_w1[0]);
    let msgs = f.take();
    assert_eq!(
        acquires(&msgs),
        vec![(w2, on_w1[0].clone(), vec!["tcp://w1:1".to_string()])]
    );
    assert!(f.computes_in(&msgs).is_empty(), "nothing new for w1");
    assert_eq!(closes(&msgs, w1), 0, "a task still runs on w1");
    f.finish(w1, &on_w1[1]);
    let msgs = f.take();
    assert_eq!(
        acquires(&msgs),
        vec![(w2, on_w1[1].clone(), vec!["tcp://w1:1".to_string()])]
    );
    assert_eq!(closes(&msgs, w1), 0, "no replica confirmed yet");
    f.add_keys(w2, &[&on_w1[0]]);
    assert_eq!(closes(&f.take(), w1), 0, "one replica still on its way");
    f.add_keys(w2, &[&on_w1[1]]);
    let msgs = f.take();
    assert_eq!(closes(&msgs, w1), 1);
    assert!(f.s.worker(w1).is_none(), "the retired worker is removed");
    assert_eq!(f.s.take_retired(), vec![w1]);
    assert_eq!(f.state(&on_w1[0]), Some(StateKind::Memory));
    assert_eq!(f.s.who_has_of(&on_w1[0]), vec!["tcp://w2:1".to_string()]);
    // Finish the rest on w2: every key computed, none twice.
    let mut runs: BTreeMap<String, usize> = BTreeMap::new();
    for k in &on_w1[..2] {
        *runs.entry(k.clone()).or_default() += 1;
    }
    for (w, k) in sent.iter().filter(|(w, _)| *w == w2) {
        f.finish(*w, k);
        *runs.entry(k.clone()).or_default() += 1;
    }
    loop {
        let work = f.computes();
        if work.is_empty() {
            break;
        }
        for (w, k) in work {
            assert_eq!(w, w2);
            f.finish(w, &k);
            *runs.entry(k).or_default() += 1;
        }
    }
    assert_eq!(runs.len(), 10);
    assert!(runs.values().all(|&n| n == 1), "{runs:?}");
    for k in &keys {
        assert_eq!(f.state(k), Some(StateKind::Memory), "{k}");
    }
}

impl Fx {
    fn computes_in(&self, msgs: &[(Dest, Message)]) -> Vec<(WorkerId, String)> {
        msgs.iter()
            .filter_map(|(d, m)| match (d, m) {
                (Dest::Worker(w), Message::ComputeTask { key, .. }) => Some((*w, key.clone())),
                _ => None,
            })
            .collect()
    }
}

/// The messages `w` was sent, by op, in order.
fn ops_to(msgs: &[(Dest, Message)], w: WorkerId) -> Vec<&'static str> {
    msgs.iter()
        .filter(|(d, _)| *d == Dest::Worker(w))
        .map(|(_, m)| m.op())
        .collect()
}

#[test]
fn an_idle_worker_retired_by_a_client_gets_retire_then_close_one_that_asked_only_close() {
    let mut f = Fx::new();
    let w1 = f.worker("w1", 1, BUILTINS);
    let w2 = f.worker("w2", 1, BUILTINS);
    let w3 = f.worker("w3", 1, BUILTINS);
    let c = f.client();
    f.take();
    // Idle and holding nothing: the retirement ends within the step.
    f.s.retire_workers(c, 3, &["w1"], &mut f.out).unwrap();
    f.step();
    let msgs = f.take();
    assert_eq!(ops_to(&msgs, w1), vec!["retire", "close"]);
    assert!(msgs.iter().any(|(d, m)| *d == Dest::Worker(w1)
        && matches!(m, Message::Close { reason } if reason == "retired")));
    assert!(msgs
        .iter()
        .any(|(d, m)| *d == Dest::Client(c)
            && matches!(m, Message::RetireWorkersReply { id: 3, .. })));
    // A worker that asks to leave gets no `retire`.
    f.s.retire_worker(w2, "SIGTERM", &mut f.out);
    f.step();
    assert_eq!(ops_to(&f.take(), w2), vec!["close"]);
    // A busy one gets `retire` now and `close` once its task finished.
    f.submit(c, doc(vec![("t", task("inc", vec![lit(1)]))]), &["t"])
        .unwrap();
    assert_eq!(ops_to(&f.take(), w3), vec!["compute-task"]);
    f.s.retire_workers(c, 4, &["w3"], &mut f.out).unwrap();
    f.step();
    assert_eq!(ops_to(&f.take(), w3), vec!["retire"]);
}

#[test]
fn a_failed_replica_fetch_is_retried_on_another_worker_then_given_up() {
    let mut f = Fx::new();
    let w1 = f.worker("w1", 2, BUILTINS);
    let c = f.client();
    f.submit(c, classic(), &["z"]).unwrap();
    f.run();
    let w2 = f.worker("w2", 2, BUILTINS);
    let w3 = f.worker("w3", 2, BUILTINS);
    f.take();
    // A client retires w1 (by name).
    f.s.retire_workers(c, 7, &["w1"], &mut f.out).unwrap();
    f.step();
    let msgs = f.take();
    assert!(msgs
        .iter()
        .any(|(d, m)| *d == Dest::Worker(w1) && matches!(m, Message::Retire { .. })));
    // Only z is needed (b and y were released): one copy, to w2 (ties go
    // to the lower id).
    let a = acquires(&msgs);
    assert_eq!(
        a,
        vec![(w2, "z".to_string(), vec!["tcp://w1:1".to_string()])]
    );
    f.acquire_failed(w2, &["z"]);
    let msgs = f.take();
    assert_eq!(
        acquires(&msgs),
        vec![(w3, "z".to_string(), vec!["tcp://w1:1".to_string()])]
    );
    assert_eq!(closes(&msgs, w1), 0);
    // A stale failure (from w2 again) changes nothing.
    f.acquire_failed(w2, &["z"]);
    assert!(acquires(&f.take()).is_empty());
    f.acquire_failed(w3, &["z"]);
    let msgs = f.take();
    // Every worker tried: z is not moved; w1 leaves, z is recomputed.
    assert!(acquires(&msgs).is_empty());
    assert_eq!(closes(&msgs, w1), 1);
    let reply = msgs.iter().find_map(|(d, m)| match (d, m) {
        (
            Dest::Client(x),
            Message::RetireWorkersReply {
                id,
                workers,
                moved,
                lost,
            },
        ) if *x == c => Some((*id, workers.clone(), moved.clone(), lost.clone())),
        _ => None,
    });
    assert_eq!(
        reply,
        Some((
            7,
            vec!["tcp://w1:1".to_string()],
            BTreeMap::new(),
            vec!["z".to_string()]
        ))
    );
    assert_ne!(f.state("z"), Some(StateKind::Memory));
    f.sent = msgs; // the recomputation was sent with the close
    let msgs = f.run();
    assert_eq!(keys_in_memory(&msgs, c), vec!["z"]);
}

#[test]
fn retire_workers_answers_with_what_moved_and_refuses_unknown_workers() {
    let mut f = Fx::new();
    let w1 = f.worker("w1", 2, BUILTINS);
    let c = f.client();
    f.submit(c, classic(), &["z"]).unwrap();
    f.run();
    let w2 = f.worker("w2", 2, BUILTINS);
    f.take();
    let e =
        f.s.retire_workers(c, 1, &["tcp://w1:1", "nobody"], &mut f.out);
    f.step();
    assert!(e.unwrap_err().contains("'nobody'"));
    assert!(!f.s.worker(w1).unwrap().is_retiring(), "nothing retired");
    // By data address this time; the copy goes to w2, then w1 closes.
    f.s.retire_workers(c, 2, &["tcp://w1:1"], &mut f.out)
        .unwrap();
    f.step();
    assert_eq!(
        acquires(&f.take()),
        vec![(w2, "z".to_string(), vec!["tcp://w1:1".to_string()])]
    );
    f.add_keys(w2, &["z"]);
    let msgs = f.take();
    assert_eq!(closes(&msgs, w1), 1);
    let reply = msgs.iter().find_map(|(_, m)| match m {
        Message::RetireWorkersReply {
            id, moved, lost, ..
        } => Some((*id, moved.clone(), lost.clone())),
        _ => None,
    });
    let mut want = BTreeMap::new();
    want.insert("z".to_string(), "tcp://w2:1".to_string());
    assert_eq!(reply, Some((2, want, vec![])));
    // z is still in memory, on w2: nothing to recompute.
    assert_eq!(f.state("z"), Some(StateKind::Memory));
    assert!(f.computes().is_empty());
}

#[test]
fn a_retiring_worker_with_nowhere_to_move_waits_for_a_worker_or_the_timeout() {
    let mut f = Fx::with(SchedulerOptions {
        retire_timeout: 5.0,
        ..Default::default()
    });
    let w1 = f.worker("w1", 2, BUILTINS);
    let c = f.client();
    f.submit(c, classic(), &["z"]).unwrap();
    f.run();
    f.retire(w1);
    let t0 = f.now;
    assert_eq!(closes(&f.take(), w1), 0, "z has nowhere to go yet");
    f.tick(t0 + 4.0);
    assert_eq!(closes(&f.take(), w1), 0, "before the timeout");
    // A worker joins: z moves there and w1 leaves without recomputing.
    let w2 = f.worker("w2", 2, BUILTINS);
    assert_eq!(
        acquires(&f.take()),
        vec![(w2, "z".to_string(), vec!["tcp://w1:1".to_string()])]
    );
    f.add_keys(w2, &["z"]);
    assert_eq!(closes(&f.take(), w1), 1);
    assert_eq!(f.state("z"), Some(StateKind::Memory));

    // Now w2 retires with no worker left: after the timeout it leaves,
    // and z (wanted) waits to be recomputed.
    f.retire(w2);
    let t1 = f.now;
    f.tick(t1 + 1.0);
    assert_eq!(closes(&f.take(), w2), 0);
    f.tick(t1 + 5.5);
    assert_eq!(closes(&f.take(), w2), 1);
    assert_eq!(f.state("z"), Some(StateKind::Waiting));
    assert_eq!(f.state("b"), Some(StateKind::NoWorker));
    let _ = f.worker("w3", 2, BUILTINS);
    let msgs = f.run();
    assert_eq!(keys_in_memory(&msgs, c), vec!["z"]);
}

#[test]
fn a_copy_off_a_retiring_worker_that_lost_the_key_is_dropped() {
    // Found by the cluster simulation (seed 11): the retiring worker's key
    // is copied; meanwhile another worker fetched it too (two holders),
    // then a peer reports the retiring worker does not have it. The copy
    // from it cannot be made: it is dropped, and the retirement, with
    // nothing left to move, closes the worker.
    let mut f = Fx::new();
    let w1 = f.worker("w1", 1, BUILTINS);
    let w2 = f.worker("w2", 1, BUILTINS);
    let w3 = f.worker("w3", 1, BUILTINS);
    let c = f.client();
    f.submit(c, doc(vec![("x", task("inc", vec![lit(1)]))]), &["x"])
        .unwrap();
    let (wa, _) = f.computes()[0].clone();
    f.finish(wa, "x");
    f.retire(wa);
    let acq = acquires(&f.take());
    assert_eq!(acq.len(), 1, "{acq:?}");
    let wt = acq[0].0;
    let wo = [w1, w2, w3]
        .into_iter()
        .find(|&w| w != wa && w != wt)
        .unwrap();
    f.add_keys(wo, &["x"]);
    assert_eq!(f.s.who_has_of("x").len(), 2);
    let holder = f.s.worker(wa).unwrap().address().to_string();
    f.s.missing_data(
        wo,
        "y",
        "x",
        &holder,
        MissingReason::NotHeld,
        f.now,
        &mut f.out,
    );
    f.step(); // validate(): no copy from a worker that does not hold the key
    assert_eq!(
        f.s.who_has_of("x"),
        vec![f.s.worker(wo).unwrap().address().to_string()]
    );
    assert_eq!(closes(&f.take(), wa), 1, "nothing left to move: closed");
    // The target's copy arrives after all: one more holder, nothing wrong.
    f.add_keys(wt, &["x"]);
    assert_eq!(f.s.who_has_of("x").len(), 2);
    assert_eq!(f.state("x"), Some(StateKind::Memory));
}

#[test]
fn a_retiring_worker_that_dies_is_handled_as_any_death() {
    let mut f = Fx::new();
    let w1 = f.worker("w1", 2, BUILTINS);
    let c = f.client();
    f.submit(c, classic(), &["z"]).unwrap();
    f.run();
    let w2 = f.worker("w2", 2, BUILTINS);
    f.take();
    f.s.retire_workers(c, 3, &["w1"], &mut f.out).unwrap();
    f.step();
    assert_eq!(acquires(&f.take()).len(), 1);
    // w1 dies before w2 has its copy: the request is answered, z is lost
    // and recomputed on w2; w2's late copy report is refused (free-keys).
    f.leave(w1);
    let msgs = f.take();
    assert!(msgs.iter().any(|(_, m)| matches!(
        m,
        Message::RetireWorkersReply { id: 3, lost, .. } if lost == &vec!["z".to_string()]
    )));
    assert_eq!(f.s.retiring_workers(), vec![]);
    f.sent = msgs;
    let msgs = f.run();
    assert_eq!(keys_in_memory(&msgs, c), vec!["z"]);
    let _ = w2;
}

#[test]
fn a_replica_target_that_dies_is_replaced() {
    let mut f = Fx::new();
    let w1 = f.worker("w1", 2, BUILTINS);
    let c = f.client();
    f.submit(c, classic(), &["z"]).unwrap();
    f.run();
    let w2 = f.worker("w2", 2, BUILTINS);
    let w3 = f.worker("w3", 2, BUILTINS);
    f.take();
    f.retire(w1);
    assert_eq!(acquires(&f.take())[0].0, w2);
    f.leave(w2);
    assert_eq!(
        acquires(&f.take()),
        vec![(w3, "z".to_string(), vec!["tcp://w1:1".to_string()])]
    );
    f.add_keys(w3, &["z"]);
    assert_eq!(closes(&f.take(), w1), 1);
    assert_eq!(f.s.who_has_of("z"), vec!["tcp://w3:1".to_string()]);
}

// ------------------------------------------------- missing data counts

/// `x = inc(1)` and `y = add(x, 1)`: `x` runs on `bad` first (it joined
/// first), `y` only on `good` (`bad` cannot run `add`), so `y` must fetch
/// `x` from `bad`.
fn chain_across(f: &mut Fx) -> (WorkerId, WorkerId, ClientId) {
    let bad = f.worker("bad", 1, &["inc"]);
    let good = f.worker("good", 1, &["add", "inc"]);
    let c = f.client();
    let g = doc(vec![
        ("x", task("inc", vec![Value::from(1)])),
        ("y", task("add", vec![r("x"), Value::from(1)])),
    ]);
    f.submit(c, g, &["y"]).unwrap();
    (bad, good, c)
}

/// Plays `good` reporting that `y`'s input `x` cannot be fetched from
/// `bad`, with `x` recomputed on `bad` each time; returns how many reports
/// were made before the scheduler stopped asking. The other messages sent
/// stay in `f.sent`.
fn report_until_settled(f: &mut Fx, bad: WorkerId, good: WorkerId, max: usize) -> usize {
    report_until_settled_with(f, bad, good, max, |_| MissingReason::Unknown)
}

/// [`report_until_settled`], report `n` (from 0) giving `why(n)`.
fn report_until_settled_with(
    f: &mut Fx,
    bad: WorkerId,
    good: WorkerId,
    max: usize,
    mut why: impl FnMut(usize) -> MissingReason,
) -> usize {
    let mut reports = 0;
    let mut other = Vec::new();
    for _ in 0..max {
        let mut computes = Vec::new();
        for (d, m) in f.take() {
            match (d, m) {
                (Dest::Worker(w), Message::ComputeTask { key, .. }) => computes.push((w, key)),
                x => other.push(x),
            }
        }
        let mut progressed = false;
        for (w, k) in computes {
            progressed = true;
            if k == "x" {
                f.finish(w, "x");
            } else if k == "y" && w == good && f.s.who_has_of("x") == vec!["tcp://bad:1"] {
                let w = why(reports);
                f.s.missing_data(good, "y", "x", "tcp://bad:1", w, f.now, &mut f.out);
                f.step();
                reports += 1;
            } else {
                f.finish(w, &k);
            }
        }
        if !progressed || f.s.worker(bad).is_none() {
            break;
        }
    }
    other.append(&mut f.sent);
    f.sent = other;
    reports
}

#[test]
fn a_holder_nobody_can_fetch_from_is_removed_and_its_results_recomputed_elsewhere() {
    let mut f = Fx::new();
    let (bad, good, c) = chain_across(&mut f);
    let first = f.computes();
    assert_eq!(first, vec![(bad, "x".to_string())]);
    f.finish(bad, "x");
    // Another result only `bad` holds, wanted by the client: `good` runs
    // `y` now, so it goes to `bad`. (It must finish where it was placed: a
    // result from another worker is a late one, not a copy.)
    f.submit(
        c,
        doc(vec![("other", task("inc", vec![Value::from(5)]))]),
        &["other"],
    )
    .unwrap();
    let (other, rest): (Vec<_>, Vec<_>) = f.take().into_iter().partition(
        |(_, m)| matches!(m, Message::ComputeTask { key, .. } if key.as_str() == "other"),
    );
    assert_eq!(f.computes_in(&other), vec![(bad, "other".to_string())]);
    f.sent = rest;
    f.finish(bad, "other");
    assert_eq!(f.s.who_has_of("other"), vec!["tcp://bad:1".to_string()]);
    let reports = report_until_settled(&mut f, bad, good, 50);
    assert_eq!(reports, 3, "the default limit is 3 reports per holder");
    assert!(
        f.s.worker(bad).is_none(),
        "the unreachable worker is removed"
    );
    assert_eq!(f.s.take_retired(), vec![bad]);
    let msgs = f.take();
    assert_eq!(closes(&msgs, bad), 1);
    assert!(msgs.iter().any(|(d, m)| *d == Dest::Worker(bad)
        && matches!(m, Message::Close { reason } if reason.contains("could not fetch data"))));
    // Everything is recomputed on `good` and reaches the client.
    let mut seen: Vec<String> = keys_in_memory(&msgs, c);
    f.sent = msgs;
    let more = f.run();
    seen.extend(keys_in_memory(&more, c));
    assert!(seen.contains(&"y".to_string()), "{seen:?}");
    assert!(seen.contains(&"other".to_string()), "{seen:?}");
    assert_eq!(f.s.who_has_of("other"), vec!["tcp://good:1".to_string()]);
}

#[test]
fn a_key_whose_inputs_cannot_be_fetched_errs_with_the_reason() {
    let mut f = Fx::with(SchedulerOptions {
        missing_data_per_worker: 0,
        ..Default::default()
    });
    let (bad, good, c) = chain_across(&mut f);
    let reports = report_until_settled(&mut f, bad, good, 50);
    assert_eq!(reports, 5, "the default limit is 5 reports per key");
    assert!(f.s.worker(bad).is_some());
    assert_eq!(f.state("y"), Some(StateKind::Erred));
    // Nothing needs x any more: it is not computed again.
    assert_ne!(f.state("x"), Some(StateKind::Processing));
    let msgs = f.take();
    let err = msgs.iter().find_map(|(d, m)| match (d, m) {
        (Dest::Client(x), Message::KeyErred { key, message, .. }) if *x == c && key == "y" => {
            Some(message.clone())
        }
        _ => None,
    });
    let err = err.expect("the client hears that y erred");
    assert!(err.contains("could not be fetched 5 times"), "{err}");
    assert!(err.contains("tcp://bad:1"), "{err}");
}

#[test]
fn missing_data_reports_against_a_holder_count_within_the_window_only() {
    let mut f = Fx::with(SchedulerOptions {
        missing_data_per_key: 0,
        ..Default::default()
    });
    let (bad, good, _c) = chain_across(&mut f);
    // Two reports, then a long quiet time, then two more: not removed.
    for round in 0..2 {
        for _ in 0..2 {
            report_until_settled(&mut f, bad, good, 1);
            report_until_settled(&mut f, bad, good, 1);
        }
        assert!(f.s.worker(bad).is_some(), "round {round}");
        f.now += 61.0;
    }
    // Three within the window: removed.
    for _ in 0..6 {
        report_until_settled(&mut f, bad, good, 1);
    }
    assert!(f.s.worker(bad).is_none());
}

#[test]
fn missing_data_from_a_holder_that_no_longer_holds_the_key_does_not_count() {
    let mut f = Fx::new();
    let (bad, good, _c) = chain_across(&mut f);
    report_until_settled(&mut f, bad, good, 1); // x computed on bad
                                                // Stale reports: the dependency is not held there (any more).
    for _ in 0..10 {
        f.s.missing_data(
            good,
            "zz",
            "nope",
            "tcp://bad:1",
            MissingReason::Unknown,
            f.now,
            &mut f.out,
        );
        f.step();
    }
    assert!(f.s.worker(bad).is_some());
    assert_eq!(f.s.worker(bad).unwrap().missed, 0);
}

/// Reports say why: `not-held` never counts against the holder, the
/// `unreachable` reports of one failed attempt (same reporter, same
/// `attempt`) count once, and `unreachable` without an attempt counts each
/// time (like reports without a reason).
#[test]
fn missing_data_counts_only_unreachable_reports_once_per_failed_attempt() {
    let opts = SchedulerOptions {
        missing_data_per_key: 0,
        ..Default::default()
    };
    // Not held: the holder answered; five reports remove nothing.
    let mut f = Fx::with(opts.clone());
    let (bad, good, _c) = chain_across(&mut f);
    let n = report_until_settled_with(&mut f, bad, good, 10, |_| MissingReason::NotHeld);
    assert_eq!(n, 5, "x computed on bad, y reporting, five times");
    assert!(f.s.worker(bad).is_some());
    assert_eq!(f.s.worker(bad).unwrap().missed, 0);

    // Five reports of one failed connection count once; two more failed
    // connections reach the limit of 3.
    let mut f = Fx::with(opts.clone());
    let (bad, good, _c) = chain_across(&mut f);
    let n = report_until_settled_with(&mut f, bad, good, 10, |_| {
        MissingReason::Unreachable(Some(7))
    });
    assert_eq!(n, 5);
    assert_eq!(f.s.worker(bad).unwrap().missed, 1);
    let n = report_until_settled_with(&mut f, bad, good, 10, |i| {
        MissingReason::Unreachable(Some(8 + i as u64))
    });
    assert_eq!(n, 2, "attempts 8 and 9 reach the limit");
    assert!(f.s.worker(bad).is_none(), "removed as unreachable");

    // Unreachable without an attempt counts each report.
    let mut f = Fx::with(opts);
    let (bad, good, _c) = chain_across(&mut f);
    let n = report_until_settled_with(&mut f, bad, good, 10, |_| MissingReason::Unreachable(None));
    assert_eq!(n, 3);
    assert!(f.s.worker(bad).is_none());
}

/// `validate()` is what every other test here leans on: a state broken in
/// any of these ways must be rejected, naming what is wrong.
#[test]
fn validate_rejects_corrupted_states() {
    // A classic graph mid-flight: b and y processing on w, z waiting.
    fn fixture() -> (Fx, WorkerId) {
        let mut f = Fx::new();
        let w = f.worker("w", 2, BUILTINS);
        let c = f.client();
        f.submit(c, classic(), &["z"]).unwrap();
        assert_eq!(f.state("z"), Some(StateKind::Waiting));
        assert_eq!(f.state("b"), Some(StateKind::Processing));
        f.s.validate().unwrap();
        (f, w)
    }
    type Corrupt = fn(&mut SchedulerState, WorkerId);
    let cases: [(&str, Corrupt, &str); 8] = [
        ("live count", |s, _| s.live += 1, "live count"),
        ("state counts", |s, _| s.counts[0] += 1, "state counts"),
        (
            "waiters",
            |s, _| s.tm(s.task_id("b").unwrap()).waiters += 1,
            "waiters",
        ),
        (
            "wanted",
            |s, _| s.tm(s.task_id("z").unwrap()).wanted += 1,
            "wanted",
        ),
        (
            "waiting_on",
            |s, _| s.tm(s.task_id("z").unwrap()).state = TaskState::Waiting { waiting_on: 1 },
            "waits on 1",
        ),
        (
            "a dependency listed twice",
            |s, _| {
                let (b, y) = (s.task_id("b").unwrap(), s.task_id("y").unwrap());
                let z = s.task_id("z").unwrap();
                s.tm(z).deps = vec![b, y, y].into_boxed_slice();
            },
            "twice",
        ),
        ("occupancy", |s, w| s.wm(w).occupancy_ns += 1, "occupancy"),
        (
            "processing on a worker that does not list it",
            |s, w| {
                let b = s.task_id("b").unwrap();
                s.wm(w).processing.retain(|&t| t != b);
            },
            "does not list it",
        ),
    ];
    for (what, corrupt, want) in cases {
        let (mut f, w) = fixture();
        corrupt(&mut f.s, w);
        match f.s.validate() {
            Ok(()) => panic!("{what}: validate() accepted the corrupted state"),
            Err(e) => assert!(e.contains(want), "{what}: {e:?} does not say {want:?}"),
        }
    }
}

// ------------------------------------------------------- shipped functions

/// The `key-erred` messages among `sent`, as (key, func, message).
fn erred(sent: Vec<(Dest, Message)>) -> Vec<(String, String, String)> {
    sent.into_iter()
        .filter_map(|(_, m)| match m {
            Message::KeyErred {
                key, func, message, ..
            } => Some((key, func, message)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_shipped_function_of_a_runtime_nobody_offers_errs_at_routing() {
    let mut f = Fx::new();
    let c = f.client();
    f.worker("w1", 2, BUILTINS);
    // A named function nobody offers waits (a worker may come) ...
    f.submit(c, doc(vec![("n", task("later", vec![]))]), &["n"])
        .unwrap();
    assert_eq!(f.state("n"), Some(StateKind::NoWorker));
    // ... a shipped one errs at once, naming the runtime and the option.
    let g = doc(vec![
        (
            "code",
            task("identity", vec![Value::Bin(vec![1u8, 2, 3].into())]),
        ),
        (
            "s",
            task("code:python-3.11", vec![r("code"), Value::from(1)]),
        ),
        ("after", task("inc", vec![r("s")])),
    ]);
    f.submit(c, g, &["after"]).unwrap();
    let e = erred(f.run());
    assert_eq!(f.state("s"), Some(StateKind::Erred));
    assert_eq!(f.state("after"), Some(StateKind::Erred));
    let (key, func, msg) = &e[0];
    assert_eq!((key.as_str(), func.as_str()), ("after", "code:python-3.11"));
    assert!(
        msg.contains("no connected worker runs shipped python-3.11 functions"),
        "{msg}"
    );
    assert!(msg.contains("runtimes offered: none"), "{msg}");
    assert!(msg.contains("--allow-code"), "{msg}");
}

#[test]
fn shipped_functions_go_only_to_workers_of_their_runtime_and_versions_must_match() {
    let mut f = Fx::new();
    let c = f.client();
    let plain = f.worker("plain", 4, BUILTINS);
    let mut funcs = BUILTINS.to_vec();
    funcs.push("code:python-3.11");
    let py = f.worker("py", 1, &funcs);
    let g = doc(vec![
        ("code", lit(Value::Bin(vec![9u8].into()))),
        (
            "s0",
            task("code:python-3.11", vec![r("code"), Value::from(0)]),
        ),
        (
            "s1",
            task("code:python-3.11", vec![r("code"), Value::from(1)]),
        ),
        (
            "old",
            task("code:python-3.12", vec![r("code"), Value::from(2)]),
        ),
    ]);
    f.submit(c, g, &["s0", "s1", "old"]).unwrap();
    let mut ran = Vec::new();
    let mut errs = Vec::new();
    loop {
        let mut work = Vec::new();
        for (d, m) in f.take() {
            match (d, m) {
                (Dest::Worker(w), Message::ComputeTask { key, .. }) => work.push((w, key)),
                (_, Message::KeyErred { key, message, .. }) => errs.push((key, message)),
                _ => {}
            }
        }
        if work.is_empty() {
            break;
        }
        for (w, k) in work {
            assert_eq!(w, py, "{k} went to a worker without the runtime");
            assert_ne!(w, plain);
            ran.push(k.clone());
            f.finish(w, &k);
        }
    }
    ran.sort();
    assert_eq!(ran, ["s0", "s1"]);
    assert_eq!(f.state("old"), Some(StateKind::Erred));
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].0, "old");
    assert!(
        errs[0]
            .1
            .contains("shipped python-3.12 functions (runtimes offered: python-3.11)"),
        "{}",
        errs[0].1
    );
}

#[test]
fn only_trusted_clients_may_ship_code() {
    let mut f = Fx::new();
    f.next_ext += 1;
    let untrusted = f.s.add_client_with(f.next_ext, "far", false);
    f.step();
    let g = || {
        doc(vec![
            ("a", lit(1)),
            ("s", task("code:python-3.11", vec![r("a")])),
            ("b", task("inc", vec![r("a")])),
        ])
    };
    let e = f.submit(untrusted, g(), &["s", "b"]).unwrap_err();
    assert!(
        e.contains("task 's' runs a shipped function (code:python-3.11)"),
        "{e}"
    );
    assert!(e.contains("token or TLS"), "{e}");
    assert_eq!(f.state("b"), None, "the graph is refused whole");
    // Named functions are fine from anyone; shipped ones from a trusted client.
    f.submit(untrusted, g(), &["b"]).unwrap();
    let trusted = f.client();
    f.submit(trusted, g(), &["s"]).unwrap();
    assert_eq!(f.state("s"), Some(StateKind::Erred)); // (no worker of that runtime here)
}

// ------------------------------------------------- functions nobody offers

fn warnings(msgs: &[(Dest, Message)], c: ClientId) -> Vec<(String, Vec<String>)> {
    msgs.iter()
        .filter_map(|(d, m)| match (d, m) {
            (Dest::Client(x), Message::Warning { code, keys, .. }) if *x == c => {
                Some((code.clone(), keys.clone()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn clients_are_warned_when_no_worker_offers_a_function_their_keys_need() {
    let mut f = Fx::new();
    let w = f.worker("w1", 1, &["inc"]);
    let c = f.client();
    let other = f.client();
    let g = doc(vec![
        ("t", task("incc", vec![Value::from(1)])),
        ("u", task("inc", vec![r("t")])),
        ("ok", task("inc", vec![Value::from(1)])),
    ]);
    f.submit(c, g, &["u", "ok"]).unwrap();
    assert_eq!(f.state("t"), Some(StateKind::NoWorker));
    let msgs = f.take();
    assert_eq!(
        warnings(&msgs, c),
        vec![("no-worker".to_string(), vec!["u".to_string()])]
    );
    assert!(warnings(&msgs, other).is_empty());
    // Another client needing it later hears it too.
    f.submit(other, doc(vec![("v", task("inc", vec![r("t")]))]), &["v"])
        .unwrap();
    let msgs = f.take();
    assert_eq!(
        warnings(&msgs, other),
        vec![("no-worker".to_string(), vec!["v".to_string()])]
    );
    // Without a timeout nothing errs however long it waits.
    f.tick(1e6);
    assert_eq!(f.state("t"), Some(StateKind::NoWorker));
    // A worker offering it joins: it runs, no new warning.
    let w2 = f.worker("w2", 1, &["incc"]);
    let msgs = f.take();
    assert!(warnings(&msgs, c).is_empty());
    assert!(msgs.iter().any(|(d, m)| *d == Dest::Worker(w2)
        && matches!(m, Message::ComputeTask { key, .. } if key == "t")));
    let _ = w;
}

#[test]
fn the_no_workers_timeout_errs_tasks_waiting_for_a_function_nobody_offers() {
    let mut f = Fx::with(SchedulerOptions {
        no_workers_timeout: Some(10.0),
        ..Default::default()
    });
    let w = f.worker("w1", 1, &["inc"]);
    let c = f.client();
    let g = doc(vec![
        ("t", task("incc", vec![Value::from(1)])),
        ("u", task("inc", vec![r("t")])),
    ]);
    f.tick(100.0);
    f.submit(c, g, &["u"]).unwrap();
    f.take();
    f.tick(105.0);
    assert_eq!(f.state("t"), Some(StateKind::NoWorker));
    f.tick(110.5);
    assert_eq!(f.state("u"), Some(StateKind::Erred));
    let msgs = f.take();
    let err = msgs.iter().find_map(|(d, m)| match (d, m) {
        (
            Dest::Client(x),
            Message::KeyErred {
                key,
                message,
                failed,
                ..
            },
        ) if *x == c && key == "u" => Some((failed.clone(), message.clone())),
        _ => None,
    });
    let (failed, message) = err.expect("u erred to its client");
    assert_eq!(failed, "t");
    assert!(
        message.contains("no connected worker offers the function 'incc'"),
        "{message}"
    );
    // The function being offered resets the clock.
    f.submit(
        c,
        doc(vec![("t2", task("incc", vec![Value::from(2)]))]),
        &["t2"],
    )
    .unwrap();
    f.tick(115.0);
    let w2 = f.worker("w2", 1, &["incc"]);
    f.leave(w2);
    f.tick(119.0);
    assert_eq!(f.state("t2"), Some(StateKind::NoWorker));
    f.tick(200.0);
    assert_eq!(f.state("t2"), Some(StateKind::Erred));
    let _ = w;
}

// ------------------------------------------------- keys shared by clients

#[test]
fn a_key_redefined_differently_keeps_its_task_and_the_client_is_warned() {
    let mut f = Fx::new();
    let w = f.worker("w1", 2, BUILTINS);
    let a = f.client();
    let b = f.client();
    f.submit(
        a,
        doc(vec![("shared", task("inc", vec![Value::from(1)]))]),
        &["shared"],
    )
    .unwrap();
    f.run();
    // The same definition (and a literal reference in another form): quiet.
    f.submit(
        b,
        doc(vec![("shared", task("inc", vec![Value::from(1)]))]),
        &["shared"],
    )
    .unwrap();
    let msgs = f.take();
    assert!(warnings(&msgs, b).is_empty(), "{msgs:?}");
    assert_eq!(keys_in_memory(&msgs, b), vec!["shared"]);
    f.submit(
        b,
        doc(vec![("one", lit(1)), ("s2", task("inc", vec![r("one")]))]),
        &["s2"],
    )
    .unwrap();
    f.run();
    f.submit(
        a,
        doc(vec![("one", lit(1)), ("s2", task("inc", vec![r("one")]))]),
        &["s2", "one"],
    )
    .unwrap();
    let msgs = f.take();
    assert!(warnings(&msgs, a).is_empty(), "{msgs:?}");
    // Another value, another function, or a dependency defined otherwise.
    f.submit(
        b,
        doc(vec![("shared", task("inc", vec![Value::from(2)]))]),
        &["shared"],
    )
    .unwrap();
    let msgs = f.take();
    let ws = warnings(&msgs, b);
    assert_eq!(
        ws,
        vec![("key-conflict".to_string(), vec!["shared".to_string()])]
    );
    assert!(warnings(&msgs, a).is_empty());
    assert_eq!(keys_in_memory(&msgs, b), vec!["shared"], "the known result");
    f.submit(
        b,
        doc(vec![("shared", task("add", vec![Value::from(1)]))]),
        &["shared"],
    )
    .unwrap();
    assert_eq!(warnings(&f.take(), b).len(), 1);
    f.submit(
        b,
        doc(vec![
            ("shared", lit(5)),
            ("user", task("inc", vec![r("shared")])),
        ]),
        &["user"],
    )
    .unwrap();
    let ws = warnings(&f.take(), b);
    assert_eq!(
        ws,
        vec![("key-conflict".to_string(), vec!["shared".to_string()])]
    );
    let _ = w;
}

#[path = "coord_tests.rs"]
mod coord_tests;

#[test]
fn a_paused_worker_gets_no_task_until_it_resumes() {
    let mut f = Fx::new();
    let w1 = f.worker("w1", 1, BUILTINS);
    let c = f.client();
    let paused = WorkerMemory {
        managed: 10,
        spilled: 20,
        process: 30,
        paused: true,
    };
    f.s.heartbeat(w1, 0, paused, f.now, &mut f.out);
    f.step();
    assert_eq!(f.s.worker(w1).unwrap().memory(), paused);
    f.submit(c, doc(vec![("a", task("noop", vec![]))]), &["a"])
        .unwrap();
    assert!(f.computes().is_empty(), "a paused worker is sent no task");
    assert_eq!(f.state("a"), Some(StateKind::Queued));
    let resumed = WorkerMemory {
        paused: false,
        ..paused
    };
    f.s.heartbeat(w1, 0, resumed, f.now, &mut f.out);
    f.step();
    assert_eq!(f.computes(), vec![(w1, "a".to_string())]);
    // While paused, a second worker gets the work instead.
    f.finish(w1, "a");
    f.s.heartbeat(w1, 0, paused, f.now, &mut f.out);
    f.step();
    let w2 = f.worker("w2", 1, BUILTINS);
    f.submit(c, doc(vec![("b", task("inc", vec![lit(1)]))]), &["b"])
        .unwrap();
    assert_eq!(f.computes(), vec![(w2, "b".to_string())]);
    let info = f.s.workers_info();
    assert!(info[0].paused && info[0].spilled == 20 && !info[1].paused);
}

// ------------------------------------------------- seceded tasks (long-running)

/// `n` independent `inc` tasks `{prefix}0..`.
fn inc_tasks(prefix: &str, n: usize) -> (Vec<u8>, Vec<String>) {
    let keys: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
    let nodes = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.as_str(), task("inc", vec![lit(i as i64)])))
        .collect();
    (doc(nodes), keys)
}

#[test]
fn a_seceded_task_gives_its_slot_back_until_it_ends() {
    let mut f = Fx::new();
    let c = f.client();
    let w = f.worker("w1", 1, BUILTINS);
    let (g, keys) = inc_tasks("t", 10);
    let k: Vec<&str> = keys.iter().map(|s| s.as_str()).collect();
    f.submit(c, g, &k).unwrap();
    let first = f.computes();
    let limit = f.s.worker(w).unwrap().limit() as usize;
    assert_eq!(first.len(), limit, "the worker's room is full");
    let occupied = f.s.worker(w).unwrap().occupancy();
    // The first one secedes: the worker gets one more task at once.
    f.s.long_running(w, &first[0].1, f.now, &mut f.out);
    f.step();
    let more = f.computes();
    assert_eq!(more.len(), 1, "a seceded task frees one slot: {more:?}");
    let wk = f.s.worker(w).unwrap();
    assert_eq!(wk.seceded_count(), 1);
    assert_eq!(wk.processing_count(), limit + 1);
    assert!(wk.occupancy() <= occupied, "its cost left the occupancy");
    // Seceding twice changes nothing.
    f.s.long_running(w, &first[0].1, f.now, &mut f.out);
    f.step();
    assert!(f.computes().is_empty());
    assert_eq!(f.s.worker(w).unwrap().seceded_count(), 1);
    // It ends (after a long wait): it held no slot, so no more room, and
    // its duration does not become its function's estimate.
    let est = f.s.funcs[f.s.t(f.s.task_id("t0").unwrap()).func.0 as usize].est;
    f.s.task_finished(w, &first[0].1, 8, 30.0, None, f.now, &mut f.out);
    f.step();
    assert!(f.computes().is_empty());
    let wk = f.s.worker(w).unwrap();
    assert_eq!(wk.seceded_count(), 0);
    assert_eq!(wk.processing_count(), limit);
    let est_after = f.s.funcs[f.s.t(f.s.task_id("t1").unwrap()).func.0 as usize].est;
    assert_eq!(est, est_after, "a seceded task's time is not an estimate");
    for (w, k) in first[1..].iter().chain(&more) {
        f.finish(*w, k);
    }
    f.run();
    for k in &keys {
        assert_eq!(f.state(k), Some(StateKind::Memory));
    }
}

#[test]
fn long_running_for_a_task_not_processing_there_is_ignored() {
    let mut f = Fx::new();
    let c = f.client();
    let w1 = f.worker("w1", 1, BUILTINS);
    let w2 = f.worker("w2", 1, BUILTINS);
    f.submit(c, doc(vec![("a", task("inc", vec![lit(1)]))]), &["a"])
        .unwrap();
    let sent = f.computes();
    let (on, other) = if sent[0].0 == w1 { (w1, w2) } else { (w2, w1) };
    // From the wrong worker, for an unknown key, after it finished.
    f.s.long_running(other, "a", f.now, &mut f.out);
    f.step();
    f.s.long_running(on, "nope", f.now, &mut f.out);
    f.step();
    assert_eq!(f.s.worker(other).unwrap().seceded_count(), 0);
    assert_eq!(f.s.worker(on).unwrap().seceded_count(), 0);
    f.finish(on, "a");
    f.take();
    f.s.long_running(on, "a", f.now, &mut f.out);
    f.step();
    assert_eq!(f.s.worker(on).unwrap().seceded_count(), 0);
    assert!(f.take().is_empty(), "nothing is answered");
}

#[test]
fn a_seceded_task_of_a_worker_that_leaves_runs_elsewhere() {
    let mut f = Fx::new();
    let c = f.client();
    let w1 = f.worker("w1", 1, BUILTINS);
    f.submit(c, doc(vec![("a", task("inc", vec![lit(1)]))]), &["a"])
        .unwrap();
    assert_eq!(f.computes(), vec![(w1, "a".to_string())]);
    f.s.long_running(w1, "a", f.now, &mut f.out);
    f.step();
    // Taken back by a failure, then a death: the flag goes with it.
    f.fail(w1, "a", "boom");
    assert_eq!(f.state("a"), Some(StateKind::Erred));
    f.submit(c, doc(vec![("b", task("inc", vec![lit(2)]))]), &["b"])
        .unwrap();
    assert_eq!(f.computes(), vec![(w1, "b".to_string())]);
    f.s.long_running(w1, "b", f.now, &mut f.out);
    f.step();
    let w2 = f.worker("w2", 1, BUILTINS);
    f.leave(w1);
    assert_eq!(f.computes(), vec![(w2, "b".to_string())]);
    assert_eq!(f.s.worker(w2).unwrap().seceded_count(), 0);
    f.finish(w2, "b");
    assert_eq!(f.state("b"), Some(StateKind::Memory));
}

#[test]
fn work_submitted_from_tasks_runs_first_newest_first() {
    let mut f = Fx::new();
    let c = f.client();
    let w = f.worker("w1", 1, BUILTINS);
    let (g, keys) = inc_tasks("old", 12);
    let k: Vec<&str> = keys.iter().map(|s| s.as_str()).collect();
    f.submit(c, g, &k).unwrap();
    let sent = f.computes();
    assert!(sent.len() < 12, "some of it is queued");
    let sub = |f: &mut Fx, key: &str| {
        let keys = vec![key.to_string()];
        let g = doc(vec![(key, task("inc", vec![lit(100)]))]);
        f.s.update_graph_from(c, &g, &keys, 0, true, &mut f.out)
            .unwrap();
        f.step();
    };
    sub(&mut f, "child-1");
    sub(&mut f, "child-2");
    assert!(f.computes().is_empty(), "no room yet");
    f.finish(w, &sent[0].1);
    assert_eq!(f.computes(), vec![(w, "child-2".to_string())]);
    f.finish(w, &sent[1].1);
    assert_eq!(f.computes(), vec![(w, "child-1".to_string())]);
    f.finish(w, &sent[2].1);
    let next = f.computes();
    assert!(next[0].1.starts_with("old"), "{next:?}");
    // An ordinary submission still goes after the earlier ones.
    let p = |f: &Fx, k: &str| f.s.t(f.s.task_id(k).unwrap()).priority;
    assert!(p(&f, "child-2") < p(&f, "child-1"));
    assert!(p(&f, "child-1") < p(&f, "old0"));
    assert!(p(&f, "old0") < p(&f, "old11"));
    f.run();
}

// ------------------------------------------------ replicate and rebalance

impl Fx {
    /// Client `c` scattered each key (`bytes` each) onto worker `w`.
    fn scatter_on(&mut self, c: ClientId, w: WorkerId, keys: &[&str], bytes: u64) {
        let ext = self.s.worker(w).unwrap().ext_id();
        let who: BTreeMap<String, Vec<u64>> =
            keys.iter().map(|k| (k.to_string(), vec![ext])).collect();
        let nb: BTreeMap<String, u64> = keys.iter().map(|k| (k.to_string(), bytes)).collect();
        self.s.scattered(c, &who, &nb, &mut self.out).unwrap();
        self.step();
    }
    fn holders(&self, key: &str) -> Vec<String> {
        let mut v = self.s.who_has_of(key);
        v.sort();
        v
    }
}

fn replicate_reply(msgs: &[(Dest, Message)]) -> Option<(u64, u64, u64, Vec<String>)> {
    msgs.iter().find_map(|(_, m)| match m {
        Message::ReplicateReply {
            id,
            copied,
            removed,
            short,
        } => Some((*id, *copied, *removed, short.clone())),
        _ => None,
    })
}

#[test]
fn replicate_copies_each_key_to_n_workers_then_drops_extra_copies() {
    let mut f = Fx::new();
    let w1 = f.worker("w1", 1, BUILTINS);
    let w2 = f.worker("w2", 1, BUILTINS);
    let w3 = f.worker("w3", 1, BUILTINS);
    let c = f.client();
    f.scatter_on(c, w1, &["d"], 800);
    f.take();
    // n = 3: one copy at a time, to the worker holding the fewest bytes.
    f.s.replicate(c, 1, &["d"], 3, &mut f.out).unwrap();
    f.step();
    let msgs = f.take();
    assert_eq!(
        acquires(&msgs),
        vec![(w2, "d".into(), vec!["tcp://w1:1".into()])]
    );
    assert_eq!(replicate_reply(&msgs), None);
    f.add_keys(w2, &["d"]);
    let msgs = f.take();
    assert_eq!(
        acquires(&msgs),
        vec![(w3, "d".into(), vec!["tcp://w1:1".into()])]
    );
    f.add_keys(w3, &["d"]);
    let msgs = f.take();
    assert_eq!(replicate_reply(&msgs), Some((1, 2, 0, vec![])));
    assert_eq!(f.holders("d").len(), 3);
    // n larger than the workers: all of them, nothing to do.
    f.s.replicate(c, 2, &["d"], 10, &mut f.out).unwrap();
    f.step();
    assert_eq!(replicate_reply(&f.take()), Some((2, 0, 0, vec![])));
    // n = 1: two copies dropped, with free-keys.
    f.s.replicate(c, 3, &["d"], 1, &mut f.out).unwrap();
    f.step();
    let msgs = f.take();
    assert_eq!(replicate_reply(&msgs), Some((3, 0, 2, vec![])));
    assert_eq!(f.holders("d").len(), 1);
    let freed_n: usize = [w1, w2, w3].iter().map(|&w| freed(&msgs, w).len()).sum();
    assert_eq!(freed_n, 2);
}

#[test]
fn replicate_refuses_bad_input_and_names_keys_it_could_not_copy() {
    let mut f = Fx::new();
    let w1 = f.worker("w1", 1, BUILTINS);
    let w2 = f.worker("w2", 1, BUILTINS);
    let w3 = f.worker("w3", 1, BUILTINS);
    let c = f.client();
    f.scatter_on(c, w1, &["d"], 800);
    f.take();
    let e = f.s.replicate(c, 1, &["d"], 0, &mut f.out).unwrap_err();
    assert!(e.0.contains("n must be at least 1"), "{e:?}");
    let e =
        f.s.replicate(c, 1, &["d", "nope"], 2, &mut f.out)
            .unwrap_err();
    assert_eq!(e.1, stimuli::codes::UNKNOWN_KEY);
    assert!(e.0.contains("'nope'") && !e.0.contains("'d'"), "{e:?}");
    let e = f.s.rebalance(c, 1, &["nope"], &mut f.out).unwrap_err();
    assert_eq!(e.1, stimuli::codes::UNKNOWN_KEY);
    f.step();
    assert!(f.take().is_empty(), "nothing done");
    // A failed copy is tried at another worker, then the key is short.
    f.s.replicate(c, 4, &["d"], 2, &mut f.out).unwrap();
    f.step();
    assert_eq!(
        acquires(&f.take()),
        vec![(w2, "d".into(), vec!["tcp://w1:1".into()])]
    );
    f.acquire_failed(w2, &["d"]);
    assert_eq!(
        acquires(&f.take()),
        vec![(w3, "d".into(), vec!["tcp://w1:1".into()])]
    );
    // The target leaves: nobody else can take it.
    f.leave(w3);
    let msgs = f.take();
    assert!(acquires(&msgs).is_empty());
    assert_eq!(
        replicate_reply(&msgs),
        Some((4, 0, 0, vec!["d".to_string()]))
    );
    // A key released during a replicate is short too.
    f.worker("w4", 1, BUILTINS);
    f.s.replicate(c, 5, &["d"], 2, &mut f.out).unwrap();
    f.step();
    // (w2 failed for the earlier request, not this one: ties go to the lower id.)
    assert_eq!(
        acquires(&f.take()),
        vec![(w2, "d".into(), vec!["tcp://w1:1".into()])]
    );
    f.release(c, &["d"]);
    let msgs = f.take();
    assert_eq!(
        replicate_reply(&msgs),
        Some((5, 0, 0, vec!["d".to_string()]))
    );
    // A late add-keys is answered with free-keys.
    f.add_keys(w2, &["d"]);
    assert_eq!(freed(&f.take(), w2), vec!["d".to_string()]);
}

#[test]
fn rebalance_moves_keys_from_a_full_worker_to_empty_ones_and_drops_the_source_copy() {
    let mut f = Fx::new();
    let w1 = f.worker("w1", 1, BUILTINS);
    let w2 = f.worker("w2", 1, BUILTINS);
    let c = f.client();
    f.scatter_on(c, w1, &["k1", "k2", "k3", "k4"], 100);
    f.take();
    f.s.rebalance(c, 9, &[] as &[&str], &mut f.out).unwrap();
    f.step();
    let msgs = f.take();
    let a = acquires(&msgs);
    assert_eq!(a.len(), 2, "{a:?}"); // 400 | 0 → 200 | 200
    assert!(a
        .iter()
        .all(|(w, _, from)| *w == w2 && from == &vec!["tcp://w1:1".to_string()]));
    let moved: Vec<&str> = a.iter().map(|(_, k, _)| k.as_str()).collect();
    f.add_keys(w2, &[moved[0]]);
    let msgs = f.take();
    assert_eq!(freed(&msgs, w1), vec![moved[0].to_string()]);
    assert!(!msgs
        .iter()
        .any(|(_, m)| matches!(m, Message::RebalanceReply { .. })));
    f.add_keys(w2, &[moved[1]]);
    let msgs = f.take();
    assert_eq!(freed(&msgs, w1), vec![moved[1].to_string()]);
    let reply = msgs.iter().find_map(|(_, m)| match m {
        Message::RebalanceReply { id, moved, bytes } => Some((*id, *moved, *bytes)),
        _ => None,
    });
    assert_eq!(reply, Some((9, 2, 200)));
    for k in &moved {
        assert_eq!(f.holders(k), vec!["tcp://w2:1".to_string()]);
    }
    // Balanced now: a second rebalance moves nothing and answers at once.
    f.s.rebalance(c, 10, &[] as &[&str], &mut f.out).unwrap();
    f.step();
    let msgs = f.take();
    assert!(acquires(&msgs).is_empty());
    assert!(msgs.iter().any(|(_, m)| matches!(
        m,
        Message::RebalanceReply {
            id: 10,
            moved: 0,
            ..
        }
    )));
}

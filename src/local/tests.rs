use super::*;
use crate::graph::{Arg, Graph};
use crate::registry::Registry;
use crate::value::Value;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn classic() -> Arc<Graph> {
    Arc::new(crate::graph::tests::classic())
}

fn run(
    g: &Arc<Graph>,
    outs: &[&str],
    reg: &Registry,
    threads: usize,
) -> Result<Computed, ComputeError> {
    compute_keys(g, outs, reg, &Options::with_threads(threads))
}

#[test]
fn classic_graph_computes_on_1_and_4_threads() {
    let g = classic();
    for threads in [1, 4] {
        let r = run(&g, &["z", "a", "b"], &Registry::new(), threads).unwrap();
        assert_eq!(r.values, vec![Value::Int(13), Value::Int(1), Value::Int(2)]);
        assert_eq!(r.stats.tasks, 3);
        assert_eq!(r.stats.tasks_run, 3);
    }
}

#[test]
fn literal_only_and_repeated_outputs() {
    let g = classic();
    let r = run(&g, &["a", "x", "a"], &Registry::new(), 2).unwrap();
    assert_eq!(r.values, vec![Value::Int(1), Value::Int(10), Value::Int(1)]);
    assert_eq!(r.stats.tasks, 0);
    let r = run(&g, &["z", "z"], &Registry::new(), 2).unwrap();
    assert_eq!(r.values, vec![Value::Int(13), Value::Int(13)]);
}

#[test]
fn single_threaded_mode_runs_on_the_callers_thread() {
    let mut g = Graph::new();
    g.add_task("t", "whoami", vec![]).unwrap();
    let mut reg = Registry::new();
    let caller = format!("{:?}", std::thread::current().id());
    reg.register("whoami", |_| {
        Ok(format!("{:?}", std::thread::current().id()).into())
    })
    .unwrap();
    let r = run(&Arc::new(g), &["t"], &reg, 1).unwrap();
    assert_eq!(r.values[0], Value::Str(caller));
}

#[test]
fn native_functions_and_nested_args() {
    let mut g = Graph::new();
    g.add_value("a", 2).unwrap();
    let a = g.r("a").unwrap();
    g.add_task("sq", "square", vec![a]).unwrap();
    let (sq, a) = (g.r("sq").unwrap(), g.r("a").unwrap());
    g.add_task("s", "sum", vec![Arg::List(vec![sq, a, Arg::from(10)])])
        .unwrap();
    let mut reg = Registry::new();
    reg.register("square", |args| {
        let x = args[0].as_i64().ok_or("not an int")?;
        Ok(Value::Int(x * x))
    })
    .unwrap();
    let r = run(&Arc::new(g), &["s"], &reg, 2).unwrap();
    assert_eq!(r.values, vec![Value::Int(16)]);
}

#[test]
fn a_failing_task_names_key_function_and_message() {
    let mut g = Graph::new();
    g.add_value("s", "text").unwrap();
    let s = g.r("s").unwrap();
    g.add_task("bad", "inc", vec![s]).unwrap();
    let b = g.r("bad").unwrap();
    g.add_task("after", "inc", vec![b]).unwrap();
    let e = run(&Arc::new(g), &["after"], &Registry::new(), 2).unwrap_err();
    match &e {
        ComputeError::TaskFailed { key, func, message } => {
            assert_eq!(key, "bad");
            assert_eq!(func, "inc");
            assert!(message.contains("expected a number"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("'bad'"));
}

#[test]
fn a_panicking_function_is_a_task_error() {
    let mut g = Graph::new();
    g.add_task("p", "boom", vec![]).unwrap();
    let mut reg = Registry::new();
    reg.register("boom", |_| panic!("kaboom")).unwrap();
    let e = run(&Arc::new(g), &["p"], &reg, 2).unwrap_err();
    assert!(
        matches!(&e, ComputeError::TaskFailed { message, .. } if message.contains("kaboom")),
        "{e:?}"
    );
}

#[test]
fn unknown_function_is_reported_before_anything_runs() {
    let ran = Arc::new(AtomicUsize::new(0));
    let mut g = Graph::new();
    g.add_task("first", "count", vec![]).unwrap();
    let f = g.r("first").unwrap();
    g.add_task("second", "no_such_fn", vec![f]).unwrap();
    let mut reg = Registry::new();
    let r2 = ran.clone();
    reg.register("count", move |_| {
        r2.fetch_add(1, Ordering::SeqCst);
        Ok(Value::Nil)
    })
    .unwrap();
    let e = run(&Arc::new(g), &["second"], &reg, 2).unwrap_err();
    assert_eq!(
        e,
        ComputeError::UnknownFunction {
            func: "no_such_fn".into(),
            key: "second".into()
        }
    );
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

#[test]
fn graph_errors_surface() {
    let mut g = Graph::new();
    let b = g.r("b").unwrap();
    g.add_task("a", "inc", vec![b]).unwrap();
    let a = g.r("a").unwrap();
    g.add_task("b", "inc", vec![a]).unwrap();
    let e = run(&Arc::new(g), &["a"], &Registry::new(), 2).unwrap_err();
    assert!(matches!(
        e,
        ComputeError::Graph(crate::GraphError::Cycle(_))
    ));
    let e = run(&classic(), &["nope"], &Registry::new(), 2).unwrap_err();
    assert!(matches!(
        e,
        ComputeError::Graph(crate::GraphError::UnknownOutput(_))
    ));
}

/// Sums 0..n with a tree of `add` over `inc(i) - 1`... computed as the
/// reference by formula.
#[test]
fn tree_reduction_holds_few_values_at_once() {
    let n = 1 << 14;
    let mut g = Graph::new();
    let root = crate::graph::tests::tree(&mut g, n);
    let g = Arc::new(g);
    let depth = 14;
    for threads in [1, 2, 4] {
        let r = run(&g, &[&root], &Registry::new(), threads).unwrap();
        // sum of inc(i) for i in 0..n
        let expect = (n as i64) * (n as i64 + 1) / 2;
        assert_eq!(r.values, vec![Value::Int(expect)]);
        assert_eq!(r.stats.tasks_run, 2 * n - 1);
        // Each thread holds at most a branch (depth values) plus the batch
        // it took from the shared heap; nothing close to the n leaves.
        let bound = threads * (depth + 2 + 32 + 64);
        assert!(
            r.stats.peak_live <= bound,
            "threads={threads}: peak {} > {bound}",
            r.stats.peak_live
        );
        assert!(r.stats.peak_live >= 2);
    }
}

#[test]
fn random_dags_match_a_sequential_reference() {
    // Each task adds its dependencies' values to its own index.
    let mut seed = 99u64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..5 {
        let n = 3000;
        let mut g = Graph::new();
        let mut expect = vec![0i64; n];
        for i in 0..n {
            let mut args = vec![Arg::from(i as i64)];
            let mut total = i as i64;
            if i > 0 {
                for _ in 0..(rnd() % 4) {
                    let d = rnd() as usize % i;
                    args.push(g.r(&format!("t{d}")).unwrap());
                    total = total.wrapping_add(expect[d]) % 1_000_000_007;
                }
            }
            expect[i] = total;
            g.add_task(&format!("t{i}"), "addmod", args).unwrap();
        }
        let mut reg = Registry::new();
        reg.register("addmod", |a| {
            Ok(Value::Int(
                a.iter()
                    .map(|v| v.as_i64().unwrap())
                    .fold(0i64, |x, y| x.wrapping_add(y) % 1_000_000_007),
            ))
        })
        .unwrap();
        let g = Arc::new(g);
        let outs: Vec<String> = (0..n).step_by(97).map(|i| format!("t{i}")).collect();
        let r = compute_keys(&g, &outs, &reg, &Options::with_threads(1 + round % 3)).unwrap();
        for (o, v) in outs.iter().zip(&r.values) {
            let i: usize = o[1..].parse().unwrap();
            assert_eq!(v, &Value::Int(expect[i]), "round {round} key {o}");
        }
    }
}

fn pulled_graph(n: usize) -> (Arc<Graph>, Registry) {
    // n pulled "host_double" tasks on literals, fed into Rust inc tasks,
    // summed by a pulled "host_sum".
    let mut g = Graph::new();
    let mut incs = Vec::new();
    for i in 0..n {
        g.add_task(&format!("d{i}"), "host_double", vec![Arg::from(i as i64)])
            .unwrap();
        let d = g.r(&format!("d{i}")).unwrap();
        g.add_task(&format!("i{i}"), "inc", vec![d]).unwrap();
        incs.push(g.r(&format!("i{i}")).unwrap());
    }
    g.add_task("total", "host_sum", vec![Arg::List(incs)])
        .unwrap();
    let mut reg = Registry::new();
    reg.register_pulled("host_double").unwrap();
    reg.register_pulled("host_sum").unwrap();
    (Arc::new(g), reg)
}

fn host_run(t: &PulledTask) -> crate::registry::FnResult {
    match t.func() {
        "host_double" => Ok(Value::Int(t.args()[0].as_i64().unwrap() * 2)),
        "host_sum" => Ok(Value::Int(
            t.args()[0]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_i64().unwrap())
                .sum(),
        )),
        f => Err(format!("unexpected {f}")),
    }
}

#[test]
fn pull_mode_with_several_host_threads() {
    let n = 500;
    let (g, reg) = pulled_graph(n);
    let total = g.lookup("total").unwrap();
    let comp = Computation::start(&g, &[total], &reg, &Options::with_threads(2)).unwrap();
    let pulled = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| loop {
                match comp.next_task(Some(Duration::from_secs(30))) {
                    NextTask::Task(t) => {
                        let r = host_run(&t);
                        assert!(t.complete(r));
                        pulled.fetch_add(1, Ordering::Relaxed);
                    }
                    NextTask::Done => break,
                    NextTask::Timeout => panic!("no task for 30 s"),
                }
            });
        }
    });
    assert_eq!(pulled.load(Ordering::Relaxed), n + 1);
    assert!(comp.wait(None).unwrap());
    let expect: i64 = (0..n as i64).map(|i| 2 * i + 1).sum();
    assert_eq!(comp.results().unwrap(), vec![Value::Int(expect)]);
    assert_eq!(comp.stats().tasks_run, 2 * n + 1);
}

#[test]
fn pull_mode_takes_ready_tasks_in_batches() {
    let n = 100;
    let (g, reg) = pulled_graph(n);
    let total = g.lookup("total").unwrap();
    let comp = Computation::start(&g, &[total], &reg, &Options::with_threads(1)).unwrap();
    let mut batches = Vec::new();
    let mut pulled = 0;
    loop {
        match comp.next_tasks(32, Some(Duration::from_secs(30))) {
            Ok(tasks) => {
                assert!(!tasks.is_empty() && tasks.len() <= 32);
                batches.push(tasks.len());
                for t in tasks {
                    let r = host_run(&t);
                    assert!(t.complete(r));
                    pulled += 1;
                }
            }
            Err(NextTask::Done) => break,
            Err(_) => panic!("no task for 30 s"),
        }
    }
    assert_eq!(pulled, n + 1);
    // The 100 doubles were all ready at once: at least one full batch.
    assert_eq!(batches[0], 32, "{batches:?}");
    let expect: i64 = (0..n as i64).map(|i| 2 * i + 1).sum();
    assert_eq!(comp.results().unwrap(), vec![Value::Int(expect)]);
}

#[test]
fn pull_mode_failure_and_timeout() {
    let (g, reg) = pulled_graph(3);
    let total = g.lookup("total").unwrap();
    let comp = Computation::start(&g, &[total], &reg, &Options::with_threads(1)).unwrap();
    let NextTask::Task(t) = comp.next_task(None) else {
        panic!("expected a task")
    };
    assert_eq!(t.func(), "host_double");
    assert!(t.key().starts_with('d'));
    assert!(t.complete(Err("host says no".into())));
    match comp.wait(None) {
        Err(ComputeError::TaskFailed { func, message, .. }) => {
            assert_eq!(func, "host_double");
            assert_eq!(message, "host says no");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(comp.next_task(None), NextTask::Done));

    // A computation whose pulled tasks nobody completes times out in wait.
    let comp = Computation::start(&g, &[total], &reg, &Options::with_threads(1)).unwrap();
    assert_eq!(comp.wait(Some(Duration::from_millis(10))), Ok(false));
    let NextTask::Task(t) = comp.next_task(Some(Duration::from_secs(5))) else {
        panic!()
    };
    drop(t); // abandoned
    assert!(matches!(
        comp.wait(None),
        Err(ComputeError::TaskFailed { message, .. }) if message.contains("dropped")
    ));
}

#[test]
fn cancel_stops_a_computation() {
    let (g, reg) = pulled_graph(3);
    let total = g.lookup("total").unwrap();
    let comp = Computation::start(&g, &[total], &reg, &Options::with_threads(2)).unwrap();
    let NextTask::Task(t) = comp.next_task(None) else {
        panic!()
    };
    comp.cancel();
    assert!(
        !t.complete(Ok(Value::Int(0))),
        "completing after cancel is refused"
    );
    assert_eq!(comp.wait(None), Err(ComputeError::Cancelled));
    assert!(matches!(
        comp.next_task(Some(Duration::ZERO)),
        NextTask::Done
    ));
    assert!(comp.is_done());
}

#[test]
fn dropping_a_running_computation_joins_its_threads() {
    let (g, reg) = pulled_graph(10);
    let total = g.lookup("total").unwrap();
    let comp = Computation::start(&g, &[total], &reg, &Options::with_threads(2)).unwrap();
    drop(comp); // must not hang
}

#[test]
fn results_wait_for_a_host_thread_serving_pulled_tasks() {
    let (g, reg) = pulled_graph(20);
    let total = g.lookup("total").unwrap();
    // A background computation and a host thread; results through results().
    let comp = Arc::new(Computation::start(&g, &[total], &reg, &Options::default()).unwrap());
    let c2 = comp.clone();
    let host = std::thread::spawn(move || {
        while let NextTask::Task(t) = c2.next_task(None) {
            let r = host_run(&t);
            t.complete(r);
        }
    });
    let v = comp.results().unwrap();
    host.join().unwrap();
    let expect: i64 = (0..20).map(|i| 2 * i + 1).sum();
    assert_eq!(v, vec![Value::Int(expect)]);
}

#[test]
fn many_independent_tasks_and_a_sum() {
    let n = 20_000;
    let mut g = Graph::new();
    let mut refs = Vec::with_capacity(n);
    for i in 0..n {
        g.add_task(&format!("n{i}"), "inc", vec![Arg::from(i as i64)])
            .unwrap();
        refs.push(g.r(&format!("n{i}")).unwrap());
    }
    g.add_task("total", "sum", vec![Arg::List(refs)]).unwrap();
    let g = Arc::new(g);
    for threads in [1, 2, 3] {
        let r = run(&g, &["total"], &Registry::new(), threads).unwrap();
        assert_eq!(r.values, vec![Value::Int((n as i64) * (n as i64 + 1) / 2)]);
        assert_eq!(r.stats.tasks_run, n + 1);
    }
}

#[test]
fn the_spec_documents_example_bytes_compute_to_13() {
    // docs/graph-spec.md, "Worked example".
    let hex = "82a57461736b7385a16181a576616c756501a17881a576616c75650aa16282a466756e63a3696e63a4617267739181a3726566a161a17982a466756e63a3696e63a4617267739181a3726566a178a17a82a466756e63a3616464a4617267739281a3726566a16281a3726566a179a76f75747075747391a17a";
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    assert_eq!(bytes.len(), 121);
    let (g, outputs) = Graph::from_msgpack(&bytes).unwrap();
    let r = compute_keys(
        &Arc::new(g),
        &outputs,
        &Registry::new(),
        &Options::default(),
    )
    .unwrap();
    assert_eq!(r.values, vec![Value::Int(13)]);
}

#[test]
fn absurd_thread_counts_are_capped() {
    assert_eq!(
        Options::with_threads(4_000_000_000).thread_count(),
        MAX_THREADS
    );
    assert!(Options::default().thread_count() >= 1);
}

/// A function that succeeds only if `n` calls of it run at the same time.
fn meet_registry(n: usize) -> Registry {
    let state = Arc::new((parking_lot::Mutex::new(0usize), parking_lot::Condvar::new()));
    let mut reg = Registry::new();
    reg.register("meet", move |_| {
        let (m, cv) = &*state;
        let mut count = m.lock();
        *count += 1;
        cv.notify_all();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while *count < n {
            if cv.wait_until(&mut count, deadline).timed_out() {
                return Err("ran alone: the other task never ran concurrently".into());
            }
        }
        Ok(Value::Nil)
    })
    .unwrap();
    reg
}

#[test]
fn two_threads_run_two_ready_tasks_at_once() {
    // Both tasks ready from the start.
    let mut g = Graph::new();
    g.add_task("a", "meet", vec![]).unwrap();
    g.add_task("b", "meet", vec![]).unwrap();
    let (a, b) = (g.r("a").unwrap(), g.r("b").unwrap());
    g.add_task("root", "list", vec![a, b]).unwrap();
    run(&Arc::new(g), &["root"], &meet_registry(2), 2).unwrap();
}

#[test]
fn helpers_start_when_a_single_source_fans_out() {
    // One source task; its two dependents must still run in parallel, so
    // the helper thread has to start once the fan-out appears.
    let mut g = Graph::new();
    g.add_task("src", "noop", vec![]).unwrap();
    let s1 = g.r("src").unwrap();
    let s2 = g.r("src").unwrap();
    g.add_task("a", "meet", vec![s1]).unwrap();
    g.add_task("b", "meet", vec![s2]).unwrap();
    let (a, b) = (g.r("a").unwrap(), g.r("b").unwrap());
    g.add_task("root", "list", vec![a, b]).unwrap();
    run(&Arc::new(g), &["root"], &meet_registry(2), 2).unwrap();
}

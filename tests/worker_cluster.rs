//! Smoke test: the real scheduler and two real workers in this process,
//! driven by the real client, over loopback TCP.

use rask::client::{Client, ClientConfig, ClientError};
use rask::scheduler::{Scheduler, SchedulerConfig};
use rask::worker::{NextTask, Worker, WorkerConfig, WorkerHandle};
use rask::{Graph, Registry, Value};
use std::time::Duration;

const T: Option<Duration> = Some(Duration::from_secs(30));

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap()
}

fn start_worker(scheduler: &str, name: &str, registry: Registry) -> WorkerHandle {
    Worker::start(
        WorkerConfig {
            name: name.into(),
            threads: 2,
            ..WorkerConfig::new(scheduler)
        },
        registry,
    )
    .unwrap()
}

#[test]
fn a_scheduler_and_two_workers_compute_graphs_together() {
    let sched = Scheduler::start(SchedulerConfig {
        port: 0,
        ..SchedulerConfig::default()
    })
    .unwrap();
    let addr = sched.address().to_string();

    // Worker A alone runs `only_a` and the pulled `host_inc`; worker B alone
    // runs `only_b`. So `b = only_b(only_a(..))` needs a peer fetch.
    let mut ra = Registry::new();
    ra.register("only_a", |a| Ok(Value::Int(int(&a[0]) * 10)))
        .unwrap();
    ra.register_pulled("host_inc").unwrap();
    let mut rb = Registry::new();
    rb.register("only_b", |a| Ok(Value::Int(int(&a[0]) + 7)))
        .unwrap();
    let wa = start_worker(&addr, "A", ra);
    let wb = start_worker(&addr, "B", rb);

    let client = Client::connect(&addr, ClientConfig::default()).unwrap();
    client.wait_for_workers(2, Duration::from_secs(10)).unwrap();

    std::thread::scope(|s| {
        // A host thread serving A's pulled function.
        s.spawn(|| loop {
            match wa.next_task(Some(Duration::from_millis(100))) {
                NextTask::Task(t) => {
                    let x = int(&t.args()[0]);
                    t.complete(Ok(Value::Int(x + 1)));
                }
                NextTask::Timeout => continue,
                NextTask::Stopped => return,
            }
        });

        // The classic graph.
        let mut g = Graph::new();
        g.add_value("a", 1).unwrap();
        g.add_value("x", 10).unwrap();
        let (ra, rx) = (g.r("a").unwrap(), g.r("x").unwrap());
        g.add_task("b", "inc", vec![ra]).unwrap();
        g.add_task("y", "inc", vec![rx]).unwrap();
        let (rb, ry) = (g.r("b").unwrap(), g.r("y").unwrap());
        g.add_task("z", "add", vec![rb, ry]).unwrap();
        let f = client.compute(&g, &["z"]).unwrap();
        assert_eq!(f[0].result(T).unwrap(), Value::Int(13));

        // Across workers, through the host thread: host_inc(only_b(only_a(4))).
        let mut g = Graph::new();
        g.add_task("p", "only_a", vec![4.into()]).unwrap();
        let rp = g.r("p").unwrap();
        g.add_task("q", "only_b", vec![rp]).unwrap();
        let rq = g.r("q").unwrap();
        g.add_task("h", "host_inc", vec![rq]).unwrap();
        let f = client.compute(&g, &["h"]).unwrap();
        assert_eq!(f[0].result(T).unwrap(), Value::Int(48));
        assert!(wb.stats().fetched >= 1, "B fetched p from A");
        assert!(wa.stats().fetched >= 1, "A fetched q from B");

        // A tree reduction over 256 leaves spread over both workers.
        let mut g = Graph::new();
        let mut level: Vec<String> = (0..256)
            .map(|i| {
                let k = format!("leaf-{i}");
                g.add_task(&k, "inc", vec![(i as i64).into()]).unwrap();
                k
            })
            .collect();
        let mut depth = 0;
        while level.len() > 1 {
            depth += 1;
            level = level
                .chunks(2)
                .enumerate()
                .map(|(j, pair)| {
                    let k = format!("sum-{depth}-{j}");
                    let args = pair.iter().map(|p| g.r(p).unwrap()).collect();
                    g.add_task(&k, "add", args).unwrap();
                    k
                })
                .collect();
        }
        let f = client.compute(&g, &level).unwrap();
        assert_eq!(f[0].result(T).unwrap(), Value::Int((1..=256).sum()));
        assert!(wa.stats().tasks_finished > 10 && wb.stats().tasks_finished > 10);

        // Scattered data as an argument; an error names the function.
        let d = client.scatter(vec![Value::Int(5)], false).unwrap();
        let f = client
            .submit("inc", vec![rask::client::ClientArg::from(&d[0])])
            .unwrap();
        assert_eq!(f.result(T).unwrap(), Value::Int(6));
        let f = client.submit("inc", vec!["oops".into()]).unwrap();
        match f.result(T).unwrap_err() {
            ClientError::Task(t) => {
                assert_eq!(t.func, "inc");
                assert!(t.message.starts_with("inc: "), "{}", t.message);
            }
            e => panic!("{e:?}"),
        }

        drop(client);
        wa.stop();
    });
    wb.stop();
    sched.shutdown();
}

/// End-to-end no-op throughput: scheduler + 2 workers × 1 thread + client.
/// `RASK_BENCH_BACKLOG` sets the scheduler's backlog per thread (default:
/// the scheduler's own default).
/// `cargo test --release --test worker_cluster -- --ignored --nocapture`
#[test]
#[ignore]
fn noop_throughput_end_to_end() {
    let n: usize = std::env::var("RASK_BENCH_TASKS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let mut options = rask::scheduler::SchedulerOptions::default();
    if let Some(b) = std::env::var("RASK_BENCH_BACKLOG")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        options.backlog_per_thread = b;
    }
    let backlog = options.backlog_per_thread;
    let sched = Scheduler::start(SchedulerConfig {
        port: 0,
        options,
        ..SchedulerConfig::default()
    })
    .unwrap();
    let addr = sched.address().to_string();
    let workers: Vec<WorkerHandle> = (0..2)
        .map(|i| {
            Worker::start(
                WorkerConfig {
                    name: format!("w{i}"),
                    threads: 1,
                    ..WorkerConfig::new(&addr)
                },
                Registry::new(),
            )
            .unwrap()
        })
        .collect();
    let client = Client::connect(&addr, ClientConfig::default()).unwrap();
    client.wait_for_workers(2, Duration::from_secs(10)).unwrap();
    for rep in 0..3 {
        let mut g = Graph::new();
        let keys: Vec<String> = (0..n).map(|i| format!("n-{rep}-{i}")).collect();
        for (i, k) in keys.iter().enumerate() {
            g.add_task(k, "noop", vec![(i as i64).into()]).unwrap();
        }
        let t0 = std::time::Instant::now();
        let fs = client.compute(&g, &keys).unwrap();
        let vals = client.gather(&fs).unwrap();
        let secs = t0.elapsed().as_secs_f64();
        assert_eq!(vals.len(), n);
        drop(fs);
        std::thread::sleep(Duration::from_millis(100));
        println!(
            "{{\"bench\": \"e2e_noop\", \"tasks\": {n}, \"backlog_per_thread\": {backlog}, \
             \"seconds\": {secs:.3}, \"tasks_per_s\": {:.0}, \"worker_tasks\": [{}, {}], \"worker_keys\": [{}, {}]}}",
            n as f64 / secs,
            workers[0].stats().tasks_finished,
            workers[1].stats().tasks_finished,
            workers[0].stats().keys,
            workers[1].stats().keys
        );
    }
    drop(client);
    for w in &workers {
        w.stop();
    }
    sched.shutdown();
}

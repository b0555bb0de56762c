//! The distributed runtime end to end, through the Rust client, on a
//! LocalCluster (scheduler + 2 workers × 1 thread in this process, talking
//! over loopback TCP).
//!
//! Run: `cargo bench --bench distributed [-- --quick] [-- --only NAME]
//! [-- --tls] [-- --dashboard]`. With `--tls` every cluster connection uses mutual TLS
//! (a CA and certificate made with rcgen at start) and the bench names of
//! the cluster benches end in `_tls`. With `--dashboard` the scheduler of
//! the LocalCluster serves its dashboard, a viewer thread reads
//! `/api/updates` (as an open page does) and `/metrics` every 0.5 s
//! throughout, and the names end in `_dash`: the cost of watching. With
//! `--scheduler ADDRESS` the client benches (round trip, no-op
//! throughput) run against that scheduler and the workers it has (each
//! must offer the builtins `noop` and `inc`, as `rask-worker` does) and
//! nothing else runs: benches/dashboard_cost.py starts the processes.
//!
//! Output: one JSON object per line on stdout, `{"bench": ..., "impl":
//! "rask", ...}`, for the side-by-side with dask.distributed; a readable
//! summary on stderr.
//!
//! - `noop_graph_10k`, `noop_graph_100k`: N independent `noop(i)` tasks
//!   as one graph (`Client::compute` of every key, then `gather`); tasks/s
//!   from the call to the last value. Keys are fresh every repetition.
//! - `noop_map_10k`, `noop_map_100k`: the same through `Client::map`.
//! - `round_trip`: `submit(inc, i)` → `result()`, one at a time, 1,000
//!   times: median and p99 latency.
//! - `scatter_100mb`, `gather_100mb`: a 100 MB float64 tensor scattered to
//!   a worker, then gathered back (GB/s each way).
//! - `worker_transfer_100mb`: a task on worker B whose argument is a
//!   100 MB tensor made on worker A (each offers a function the other does
//!   not, which pins where the tasks run); the time from submitting B's
//!   task to its result, and GB/s.
//! - `tcp_loopback_100mb`: a plain TCP stream over loopback, 100 MB in
//!   1 MiB writes, measured in the same run: the ceiling for the transfers
//!   above. `tcp_loopback_100mb_fresh`: the same, received into a new
//!   100 MB buffer each time (the page faults any receiver of a new value
//!   pays, which the plain figure does not).
//! - `scheduler_memory_100k`: scheduler memory per waiting task, end to
//!   end: a `rask-scheduler` process of its own (so its RSS is the
//!   scheduler's alone), one worker (2 threads) in this process, a task
//!   that blocks until released, then 100,000 `noop(root, i)` tasks waiting
//!   on it through `Client::map` (all held by the client); the scheduler's
//!   VmRSS after (once an `inc` submitted behind the map has come back)
//!   minus before, per waiting task. Then the root is released and
//!   everything finishes. benches/scheduler_core.rs measures the same
//!   with a counting allocator on the core alone.

use rask::client::ClientArg;
use rask::cluster::{LocalCluster, LocalClusterConfig};
use rask::{Graph, Registry, Tensor, Value};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

struct Opts {
    quick: bool,
    only: Option<String>,
    tls: Option<rask::protocol::TlsConfig>,
    dashboard: bool,
    /// `--scheduler ADDRESS`: run the client benches against this
    /// scheduler (and its workers) instead of a LocalCluster.
    scheduler: Option<String>,
    /// `--round-trips N`: how many the round trip bench times (1,000).
    round_trips: Option<usize>,
}

impl Opts {
    fn wants(&self, name: &str) -> bool {
        self.only.as_deref().map_or(true, |o| name.starts_with(o))
    }

    /// A cluster bench's name: `_tls` appended with `--tls`.
    fn name(&self, base: &str) -> String {
        let mut n = base.to_string();
        if self.tls.is_some() {
            n.push_str("_tls");
        }
        if self.dashboard {
            n.push_str("_dash");
        }
        n
    }
}

/// A CA and one certificate signed by it (rcgen), written to a temporary
/// directory and loaded: the `--tls` configuration of every process.
fn test_tls() -> rask::protocol::TlsConfig {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let dir = std::env::temp_dir().join(format!("rask-bench-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let (ca_f, cert_f, key_f) = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&ca_f, ca_cert.pem()).unwrap();
    std::fs::write(&cert_f, cert.pem()).unwrap();
    std::fs::write(&key_f, key.serialize_pem()).unwrap();
    let tls = rask::protocol::TlsConfig::from_files(&ca_f, &cert_f, &key_f).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    tls
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

/// Makes a client of the cluster under test (a LocalCluster's, or the
/// scheduler `--scheduler` names).
type Connect<'a> = dyn Fn() -> Result<rask::client::Client, rask::client::ClientError> + 'a;

fn cpus_allowed() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Cpus_allowed_list:"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default()
}

fn throughput(cluster: &Connect, opts: &Opts, n: usize, via_map: bool, rep_base: usize) {
    let name = opts.name(&format!(
        "noop_{}_{}k",
        if via_map { "map" } else { "graph" },
        n / 1000
    ));
    if !opts.wants(&name) {
        return;
    }
    let client = cluster().unwrap();
    let reps = if opts.quick { 2 } else { 5 };
    let mut times = Vec::new();
    let mut submit_times = Vec::new();
    for rep in 0..reps + 1 {
        let tag = rep_base + rep;
        // The arguments and the graph are made before the clock starts.
        let (calls, graph) = if via_map {
            let calls: Vec<Vec<ClientArg>> = (0..n)
                .map(|i| vec![ClientArg::from(tag as i64), ClientArg::from(i as i64)])
                .collect();
            (Some(calls), None)
        } else {
            let mut g = Graph::new();
            let keys: Vec<String> = (0..n).map(|i| format!("n-{tag}-{i}")).collect();
            for (i, k) in keys.iter().enumerate() {
                g.add_task(k, "noop", vec![(i as i64).into()]).unwrap();
            }
            (None, Some((g, keys)))
        };
        let t0 = Instant::now();
        let fs = match (calls, &graph) {
            (Some(calls), _) => client.map("noop", calls).unwrap(),
            (None, Some((g, keys))) => client.compute(g, keys).unwrap(),
            _ => unreachable!(),
        };
        let submitted = t0.elapsed().as_secs_f64();
        let vals = client.gather(&fs).unwrap();
        let dt = t0.elapsed().as_secs_f64();
        assert_eq!(vals.len(), n);
        drop(fs);
        drop(graph);
        // Let the releases settle before the next repetition.
        std::thread::sleep(Duration::from_millis(100));
        if rep > 0 {
            times.push(dt);
            submit_times.push(submitted);
        }
    }
    let min = times.iter().cloned().fold(f64::INFINITY, f64::min);
    let med = median(&mut times);
    let sub = median(&mut submit_times);
    println!(
        "{{\"bench\": \"{name}\", \"impl\": \"rask\", \"workers\": 2, \"threads_per_worker\": 1, \
         \"tasks\": {n}, \"median_s\": {med:.6}, \"min_s\": {min:.6}, \"tasks_per_s\": {:.0}, \
         \"us_per_task\": {:.3}, \"submit_median_s\": {sub:.6}, \"reps\": {reps}, \"cpus\": \"{}\"}}",
        n as f64 / med,
        med / n as f64 * 1e6,
        cpus_allowed()
    );
    eprintln!(
        "{name:>22}  {:>9.0} tasks/s  ({med:.3} s median, {min:.3} s min; submit {sub:.3} s)",
        n as f64 / med
    );
}

fn round_trip(cluster: &Connect, opts: &Opts) {
    let name = opts.name("round_trip");
    if !opts.wants(&name) {
        return;
    }
    let client = cluster().unwrap();
    let n = opts
        .round_trips
        .unwrap_or(if opts.quick { 300 } else { 1000 });
    for i in 0..50 {
        client
            .submit("inc", vec![ClientArg::from(-1 - i)])
            .unwrap()
            .result(None)
            .unwrap();
    }
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let t0 = Instant::now();
        let f = client
            .submit("inc", vec![ClientArg::from(i as i64)])
            .unwrap();
        let v = f.result(None).unwrap();
        lat.push(t0.elapsed().as_secs_f64() * 1e6);
        assert_eq!(v, Value::Int(i as i64 + 1));
    }
    let mean = lat.iter().sum::<f64>() / n as f64;
    let med = median(&mut lat);
    let p99 = percentile(&mut lat, 0.99);
    let min = lat[0];
    println!(
        "{{\"bench\": \"{name}\", \"impl\": \"rask\", \"workers\": 2, \"threads_per_worker\": 1, \
         \"n\": {n}, \"median_us\": {med:.1}, \"p99_us\": {p99:.1}, \"mean_us\": {mean:.1}, \
         \"min_us\": {min:.1}, \"cpus\": \"{}\"}}",
        cpus_allowed()
    );
    eprintln!("{name:>22}  median {med:.1} µs  p99 {p99:.1} µs  (min {min:.1} µs, n={n})");
}

fn tensor(nbytes: usize, seed: f64) -> Tensor {
    let n = nbytes / 8;
    Tensor::from_vec(vec![n], (0..n).map(|i| i as f64 * 0.5 + seed).collect()).unwrap()
}

fn scatter_gather(cluster: &Connect, opts: &Opts) {
    if !opts.wants("scatter") && !opts.wants("gather") {
        return;
    }
    let client = cluster().unwrap();
    let nbytes = 100 << 20;
    let reps = if opts.quick { 2 } else { 5 };
    let (mut st, mut gt) = (Vec::new(), Vec::new());
    for rep in 0..reps + 1 {
        let t = tensor(nbytes, rep as f64);
        let t0 = Instant::now();
        let fs = client
            .scatter(vec![Value::Tensor(t.clone())], false)
            .unwrap();
        let s = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let back = client.gather(&fs).unwrap();
        let g = t1.elapsed().as_secs_f64();
        assert!(back[0].as_tensor().unwrap().data() == t.data());
        drop(back);
        drop(fs);
        std::thread::sleep(Duration::from_millis(50));
        if rep > 0 {
            st.push(s);
            gt.push(g);
        }
    }
    for (name, times) in [("scatter_100mb", &mut st), ("gather_100mb", &mut gt)] {
        let name = opts.name(name);
        let med = median(times);
        let gbps = nbytes as f64 / med / 1e9;
        println!(
            "{{\"bench\": \"{name}\", \"impl\": \"rask\", \"bytes\": {nbytes}, \"median_s\": {med:.6}, \
             \"gb_per_s\": {gbps:.3}, \"reps\": {reps}, \"cpus\": \"{}\"}}",
            cpus_allowed()
        );
        eprintln!("{name:>22}  {gbps:.2} GB/s  ({:.1} ms median)", med * 1e3);
    }
}

fn worker_transfer(opts: &Opts) {
    let name = opts.name("worker_transfer_100mb");
    if !opts.wants(&name) {
        return;
    }
    let nbytes = 100 << 20;
    let reps = if opts.quick { 2 } else { 5 };
    // Worker A alone offers `make_a` (it makes the tensor), worker B alone
    // `on_b` (it takes it): so the value must travel from A to B.
    let cluster = LocalCluster::start(LocalClusterConfig {
        workers: 0,
        tls: opts.tls.clone(),
        ..Default::default()
    })
    .unwrap();
    let mut on_a = Registry::new();
    on_a.register("make_a", |a| {
        let n = a[0].as_u64().unwrap() as usize;
        Ok(Value::Tensor(tensor(n, a[1].as_f64().unwrap())))
    })
    .unwrap();
    let mut on_b = Registry::new();
    on_b.register("on_b", |a| {
        Ok(Value::Int(
            a[0].as_tensor().map_or(0, |t| t.nbytes() as i64),
        ))
    })
    .unwrap();
    let a = cluster.add_worker(on_a, 1).unwrap();
    cluster.add_worker(on_b, 1).unwrap();
    let client = cluster.client().unwrap();
    let mut times = Vec::new();
    for rep in 0..reps + 1 {
        let d = client
            .submit("make_a", vec![(nbytes as i64).into(), (rep as f64).into()])
            .unwrap();
        d.wait(None);
        assert_eq!(
            client.who_has(std::slice::from_ref(&d)).unwrap()[d.key()],
            vec![a.data_address().to_string()]
        );
        let t0 = Instant::now();
        let f = client.submit("on_b", vec![(&d).into()]).unwrap();
        let v = f.result(None).unwrap();
        let dt = t0.elapsed().as_secs_f64();
        assert_eq!(v, Value::Int(nbytes as i64));
        drop((d, f));
        std::thread::sleep(Duration::from_millis(50));
        if rep > 0 {
            times.push(dt);
        }
    }
    let med = median(&mut times);
    let gbps = nbytes as f64 / med / 1e9;
    println!(
        "{{\"bench\": \"{name}\", \"impl\": \"rask\", \"bytes\": {nbytes}, \
         \"median_s\": {med:.6}, \"gb_per_s\": {gbps:.3}, \"reps\": {reps}, \"cpus\": \"{}\"}}",
        cpus_allowed()
    );
    eprintln!(
        "{name:>22}  {gbps:.2} GB/s  ({:.1} ms median, submit to result)",
        med * 1e3
    );
}

/// Raw TCP over loopback: 100 MB in 1 MiB writes. With `fresh`, the
/// reader receives into a new 100 MB buffer each time (as a receiver of a
/// value must), so page faults on fresh memory are part of the cost.
fn tcp_loopback(opts: &Opts, fresh: bool) {
    let name = if fresh {
        "tcp_loopback_100mb_fresh"
    } else {
        "tcp_loopback_100mb"
    };
    if !opts.wants(name) {
        return;
    }
    let nbytes: usize = 100 << 20;
    let reps = if opts.quick { 2 } else { 5 };
    let mut times = Vec::new();
    for _ in 0..reps + 1 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let reader = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut chunk = vec![0u8; 1 << 20];
            let mut whole = Vec::new();
            let mut got = 0;
            while got < nbytes {
                let k = if fresh {
                    if whole.is_empty() {
                        whole = Vec::with_capacity(nbytes);
                    }
                    let k = s.read(&mut chunk).unwrap();
                    whole.extend_from_slice(&chunk[..k]);
                    k
                } else {
                    s.read(&mut chunk).unwrap()
                };
                assert!(k > 0);
                got += k;
            }
            s.write_all(b"k").unwrap();
            drop(whole);
        });
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        let chunk = vec![7u8; 1 << 20];
        let t0 = Instant::now();
        let mut sent = 0;
        while sent < nbytes {
            s.write_all(&chunk).unwrap();
            sent += chunk.len();
        }
        let mut ack = [0u8; 1];
        s.read_exact(&mut ack).unwrap();
        times.push(t0.elapsed().as_secs_f64());
        reader.join().unwrap();
    }
    times.remove(0);
    let med = median(&mut times);
    let gbps = nbytes as f64 / med / 1e9;
    println!(
        "{{\"bench\": \"{name}\", \"impl\": \"raw\", \"bytes\": {nbytes}, \
         \"median_s\": {med:.6}, \"gb_per_s\": {gbps:.3}, \"reps\": {reps}, \"cpus\": \"{}\"}}",
        cpus_allowed()
    );
    eprintln!("{name:>22}  {gbps:.2} GB/s  ({:.1} ms median)", med * 1e3);
}

/// VmRSS of process `pid` in bytes (Linux).
fn rss_of(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn scheduler_memory(opts: &Opts) {
    use std::io::BufRead;
    use std::sync::{Arc, Condvar, Mutex};
    if !opts.wants("scheduler_memory") {
        return;
    }
    let n: usize = if opts.quick { 10_000 } else { 100_000 };
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rask-scheduler"))
        .args(["--port", "0"])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start rask-scheduler");
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("rask-scheduler listening on ") {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "rask-scheduler did not start"
        );
    }
    let addr = line.trim().rsplit(' ').next().unwrap().to_string();
    // `block` runs until `gate` opens; `started` says it is running.
    let gate = Arc::new((Mutex::new((false, false)), Condvar::new()));
    let mut reg = Registry::new();
    let g = gate.clone();
    reg.register("block", move |_| {
        let (m, cv) = &*g;
        let mut st = m.lock().unwrap();
        st.0 = true;
        cv.notify_all();
        while !st.1 {
            st = cv.wait(st).unwrap();
        }
        Ok(Value::Int(0))
    })
    .unwrap();
    let worker = rask::worker::Worker::start(
        rask::worker::WorkerConfig {
            threads: 2,
            ..rask::worker::WorkerConfig::new(addr.clone())
        },
        reg,
    )
    .unwrap();
    let client = rask::client::Client::connect(&addr, Default::default()).unwrap();
    // Warm-up, as the Dask side does: buffers and tables reach their
    // working size before the baseline.
    let warm: Vec<Vec<ClientArg>> = (0..1000).map(|i| vec![ClientArg::from(i as i64)]).collect();
    client.gather(&client.map("noop", warm).unwrap()).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let root = client.submit("block", vec![]).unwrap();
    {
        let (m, cv) = &*gate;
        let mut st = m.lock().unwrap();
        while !st.0 {
            st = cv.wait(st).unwrap();
        }
    }
    let pid = child.id();
    let before = rss_of(pid);
    // Two batches of n: the first is the figure (as Dask's); the second
    // shows how much of it was transient (buffers of the first
    // update-graph that the allocator kept and the second reuses).
    let mut fs = Vec::new();
    let mut rss = vec![before];
    let mut submit_s = 0.0;
    for batch in 0..2 {
        let calls: Vec<Vec<ClientArg>> = (0..n)
            .map(|i| {
                vec![
                    ClientArg::from(&root),
                    ClientArg::from((batch * n + i) as i64),
                ]
            })
            .collect();
        let t0 = Instant::now();
        fs.extend(client.map("noop", calls).unwrap());
        // The scheduler reads one client's messages in order: once this
        // result is back, the map has been taken in.
        let one = client
            .submit("inc", vec![ClientArg::from(batch as i64)])
            .unwrap();
        assert_eq!(one.result(None).unwrap(), Value::Int(batch as i64 + 1));
        if batch == 0 {
            submit_s = t0.elapsed().as_secs_f64();
        }
        rss.push(rss_of(pid));
    }
    let after = rss[1];
    let second = (rss[2] as f64 - rss[1] as f64) / n as f64;
    {
        let (m, cv) = &*gate;
        m.lock().unwrap().1 = true;
        cv.notify_all();
    }
    assert_eq!(client.gather(&fs).unwrap().len(), 2 * n);
    drop((fs, root));
    client.close();
    worker.stop();
    let _ = child.kill();
    let _ = child.wait();
    let per = (after as f64 - before as f64) / n as f64;
    println!(
        "{{\"bench\": \"scheduler_memory_100k\", \"impl\": \"rask\", \"waiting_tasks\": {n}, \
         \"bytes_per_waiting_task\": {per:.1}, \"rss_before_mb\": {:.1}, \"rss_after_mb\": {:.1}, \
         \"second_batch_bytes_per_task\": {second:.1}, \"submit_s\": {submit_s:.3}, \"method\": \"rask-scheduler process VmRSS delta\", \"cpus\": \"{}\"}}",
        before as f64 / 1e6,
        after as f64 / 1e6,
        cpus_allowed()
    );
    eprintln!(
        "{:>22}  {per:.0} bytes per waiting task (scheduler RSS {:.1} -> {:.1} MB, {n} tasks waiting on one; \
         a second batch of {n}: {second:.0} bytes/task)",
        "scheduler_memory_100k",
        before as f64 / 1e6,
        after as f64 / 1e6
    );
}

/// What watching the dashboard costs the scheduler: an open page (the
/// server-sent `/api/updates`, read as it comes) and a Prometheus scraping
/// `/metrics` every 0.5 s, until dropped.
struct Viewer {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Viewer {
    fn start(link: String) -> Viewer {
        use std::sync::atomic::{AtomicBool, Ordering};
        let host = link
            .trim_start_matches("http://")
            .trim_end_matches("/status")
            .to_string();
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let get = |host: &str, path: &str| {
            let mut s = std::net::TcpStream::connect(host).expect("the dashboard");
            write!(
                s,
                "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            s
        };
        let mut page = get(&host, "/api/updates");
        page.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let st = stop.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            while !st.load(Ordering::Relaxed) {
                let _ = page.read(&mut buf);
            }
        });
        let st = stop.clone();
        std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                let mut body = String::new();
                let _ = get(&host, "/metrics").read_to_string(&mut body);
                assert!(body.contains("rask_tasks_finished_total"), "{body}");
                std::thread::sleep(Duration::from_millis(500));
            }
        });
        Viewer { stop }
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

fn main() {
    let mut opts = Opts {
        quick: false,
        only: None,
        tls: None,
        dashboard: false,
        scheduler: None,
        round_trips: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => opts.quick = true,
            "--only" => opts.only = args.next(),
            "--tls" => opts.tls = Some(test_tls()),
            "--dashboard" => opts.dashboard = true,
            "--scheduler" => opts.scheduler = args.next(),
            "--round-trips" => opts.round_trips = args.next().and_then(|n| n.parse().ok()),
            // cargo bench passes --bench.
            _ => {}
        }
    }
    eprintln!(
        "rask distributed benchmark: LocalCluster 2 workers x 1 thread (cpus allowed: {})",
        cpus_allowed()
    );
    tcp_loopback(&opts, false);
    tcp_loopback(&opts, true);
    if let Some(address) = &opts.scheduler {
        // A cluster started elsewhere (benches/dashboard_cost.py): only
        // the benches that need nothing but a client.
        let connect = || {
            rask::client::Client::connect(
                address,
                rask::client::ClientConfig {
                    name: "bench-client".into(),
                    tls: opts.tls.clone(),
                    ..Default::default()
                },
            )
        };
        round_trip(&connect, &opts);
        for &n in &[10_000, 100_000] {
            throughput(&connect, &opts, n, false, 0);
            throughput(&connect, &opts, n, true, 50);
        }
        return;
    }
    {
        let cluster = LocalCluster::start(LocalClusterConfig {
            workers: 2,
            threads_per_worker: 1,
            tls: opts.tls.clone(),
            dashboard: opts.dashboard.then(|| "127.0.0.1:0".to_string()),
            ..Default::default()
        })
        .unwrap();
        let _viewer = cluster.dashboard_link().map(Viewer::start);
        let connect = || cluster.client();
        round_trip(&connect, &opts);
        let sizes: &[usize] = if opts.quick {
            &[10_000]
        } else {
            &[10_000, 100_000]
        };
        for (i, &n) in sizes.iter().enumerate() {
            throughput(&connect, &opts, n, false, 100 * i);
            throughput(&connect, &opts, n, true, 100 * i + 50);
        }
        scatter_gather(&connect, &opts);
    }
    worker_transfer(&opts);
    scheduler_memory(&opts);
}

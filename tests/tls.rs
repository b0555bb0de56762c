//! TLS for every connection: a CA and certificates are generated at test
//! time (rcgen), then the scheduler, workers and clients talk over mutual
//! TLS; connections without the right certificate are refused with a clear
//! error while the cluster keeps serving; bad files fail at startup naming
//! the file; and the binaries take `--tls-ca-file`, `--tls-cert`,
//! `--tls-key`.
//!
//! The leaf certificates name `rask-node.invalid`, not the loopback address
//! connected to: the chain is verified, the host name is not (see
//! `rask::protocol::tls`), so every test here goes through that path.

use rask::client::{Client, ClientArg, ClientConfig};
use rask::protocol::TlsConfig;
use rask::scheduler::{Scheduler, SchedulerConfig, SchedulerHandle};
use rask::value::DType;
use rask::worker::{Worker, WorkerConfig, WorkerHandle};
use rask::{Graph, Registry, Tensor, Value};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod procs;
use procs::{address_in, stderr_until_ready, Proc};

const T: Option<Duration> = Some(Duration::from_secs(30));

// ------------------------------------------------------------ certificates

/// A directory of PEM files, removed when dropped.
struct Pki {
    dir: PathBuf,
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A CA: its certificate (PEM) and what signs with it.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = p.self_signed(&key).unwrap();
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(p, key),
    }
}

/// A certificate for server and client use signed by `ca`, naming a host
/// that is not the one connected to. Returns (cert PEM, key PEM).
fn leaf(ca: &Ca, name: &str) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(vec!["rask-node.invalid".to_string()]).unwrap();
    p.distinguished_name.push(DnType::CommonName, name);
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let cert = p.signed_by(&key, &ca.issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// [`leaf`] valid only from `not_before` to `not_after` (year, month, day).
fn leaf_valid(
    ca: &Ca,
    name: &str,
    not_before: (i32, u8, u8),
    not_after: (i32, u8, u8),
) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(vec!["rask-node.invalid".to_string()]).unwrap();
    p.distinguished_name.push(DnType::CommonName, name);
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    p.not_before = rcgen::date_time_ymd(not_before.0, not_before.1, not_before.2);
    p.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
    let cert = p.signed_by(&key, &ca.issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// Files of one process: (ca, cert, key).
#[derive(Clone)]
struct Files {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl Files {
    fn config(&self) -> TlsConfig {
        TlsConfig::from_files(&self.ca, &self.cert, &self.key).unwrap()
    }

    fn flags(&self) -> Vec<String> {
        vec![
            "--tls-ca-file".into(),
            self.ca.display().to_string(),
            "--tls-cert".into(),
            self.cert.display().to_string(),
            "--tls-key".into(),
            self.key.display().to_string(),
        ]
    }
}

/// The test PKI: the cluster's CA with a certificate for each of
/// scheduler, worker and client, and a rogue CA with one certificate.
struct Setup {
    pki: Pki,
    ca_pem: String,
    rogue_ca_pem: String,
    scheduler: Files,
    worker: Files,
    client: Files,
    /// A certificate of the rogue CA, with the cluster's CA file (so it
    /// accepts the server, and only the server can refuse it).
    rogue_trusting: Files,
    /// A certificate of the rogue CA trusting only the rogue CA.
    rogue: Files,
}

fn setup() -> Setup {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "rask-tls-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: &str| -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let good = ca("rask test CA");
    let rogue = ca("rogue CA");
    let ca_file = write("ca.pem", &good.pem);
    let rogue_ca_file = write("rogue-ca.pem", &rogue.pem);
    let files = |who: &str, ca: &Ca, ca_file: &Path| {
        let (cert, key) = leaf(ca, who);
        Files {
            ca: ca_file.to_path_buf(),
            cert: write(&format!("{who}.pem"), &cert),
            key: write(&format!("{who}-key.pem"), &key),
        }
    };
    let scheduler = files("scheduler", &good, &ca_file);
    let worker = files("worker", &good, &ca_file);
    let client = files("client", &good, &ca_file);
    let rogue_files = files("rogue", &rogue, &rogue_ca_file);
    let rogue_trusting = Files {
        ca: ca_file.clone(),
        ..rogue_files.clone()
    };
    Setup {
        pki: Pki { dir },
        ca_pem: good.pem,
        rogue_ca_pem: rogue.pem,
        scheduler,
        worker,
        client,
        rogue_trusting,
        rogue: rogue_files,
    }
}

// ------------------------------------------------------------ helpers

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap()
}

fn tls_scheduler(files: &Files) -> SchedulerHandle {
    Scheduler::start(SchedulerConfig {
        port: 0,
        tls: Some(files.config()),
        handshake_timeout: Duration::from_secs(3),
        ..SchedulerConfig::default()
    })
    .unwrap()
}

fn tls_worker(address: &str, files: &Files, name: &str, registry: Registry) -> WorkerHandle {
    Worker::start(
        WorkerConfig {
            name: name.into(),
            threads: 1,
            tls: Some(files.config()),
            ..WorkerConfig::new(address)
        },
        registry,
    )
    .unwrap()
}

fn client_with(address: &str, tls: Option<TlsConfig>) -> Result<Client, String> {
    Client::connect(
        address,
        ClientConfig {
            tls,
            timeout: Duration::from_secs(10),
            ..ClientConfig::default()
        },
    )
    .map_err(|e| e.to_string())
}

/// `p = only_a(4)` runs on A, `q = only_b(p)` on B: a worker-to-worker
/// transfer.
fn cross_graph() -> Graph {
    let mut g = Graph::new();
    g.add_task("p", "only_a", vec![4.into()]).unwrap();
    let rp = g.r("p").unwrap();
    g.add_task("q", "only_b", vec![rp]).unwrap();
    g
}

fn registries() -> (Registry, Registry) {
    let mut ra = Registry::new();
    ra.register("only_a", |a| Ok(Value::Int(int(&a[0]) * 10)))
        .unwrap();
    let mut rb = Registry::new();
    rb.register("only_b", |a| Ok(Value::Int(int(&a[0]) + 7)))
        .unwrap();
    (ra, rb)
}

/// Scatter, gather (direct client-worker transfers) and a task on the
/// scattered data, byte for byte.
fn scatter_gather(client: &Client) {
    let n = 3 << 20;
    let data: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
    let t = Tensor::new(DType::U8, vec![n], bytes::Bytes::from(data.clone())).unwrap();
    let sc = client.scatter(vec![Value::Tensor(t)], false).unwrap();
    let back = client.gather(&sc).unwrap();
    assert!(back[0].as_tensor().unwrap().data().as_ref() == &data[..]);
    let len = client.submit("len", vec![(&sc[0]).into()]).unwrap();
    assert_eq!(len.result(T).unwrap(), Value::Int(n as i64));
}

// ------------------------------------------------------------ tests

#[test]
fn a_tls_cluster_computes_with_worker_to_worker_transfers_and_scatter() {
    let s = setup();
    let sched = tls_scheduler(&s.scheduler);
    let addr = sched.address().to_string();
    assert!(addr.starts_with("tls://"), "{addr}");
    let (ra, rb) = registries();
    let wa = tls_worker(&addr, &s.worker, "A", ra);
    let wb = tls_worker(&addr, &s.worker, "B", rb);
    assert!(
        wa.data_address().starts_with("tls://"),
        "{}",
        wa.data_address()
    );

    let client = client_with(&addr, Some(s.client.config())).unwrap();
    let ws = client.wait_for_workers(2, Duration::from_secs(20)).unwrap();
    assert!(ws.iter().all(|w| w.address.starts_with("tls://")), "{ws:?}");

    let f = client.compute(&cross_graph(), &["q"]).unwrap();
    assert_eq!(f[0].result(T).unwrap(), Value::Int(47));
    assert!(wb.stats().fetched >= 1, "B fetched p from A over TLS");

    scatter_gather(&client);
    let fs = client
        .map("inc", (0..100).map(|i| vec![ClientArg::from(i)]).collect())
        .unwrap();
    assert_eq!(
        client.gather(&fs).unwrap(),
        (1..=100).map(Value::Int).collect::<Vec<_>>()
    );
    drop(client);
    drop((wa, wb));
    sched.shutdown();
}

#[test]
fn a_local_cluster_with_tls_serves_its_clients() {
    let s = setup();
    let cluster = rask::cluster::LocalCluster::start(rask::cluster::LocalClusterConfig {
        tls: Some(s.worker.config()),
        ..Default::default()
    })
    .unwrap();
    assert!(cluster.address().starts_with("tls://"));
    let client = cluster.client().unwrap();
    scatter_gather(&client);
    // Without TLS the same cluster is out of reach.
    let e = client_with(&cluster.address().replacen("tls", "tcp", 1), None).unwrap_err();
    assert!(e.contains("requires TLS"), "{e}");
}

#[test]
fn connections_without_the_right_certificate_are_refused_and_the_cluster_keeps_serving() {
    let s = setup();
    let sched = tls_scheduler(&s.scheduler);
    let addr = sched.address().to_string();
    let plain_addr = addr.replacen("tls://", "tcp://", 1);
    let (ra, rb) = registries();
    let wa = tls_worker(&addr, &s.worker, "A", ra);
    let wb = tls_worker(&addr, &s.worker, "B", rb);

    // A plaintext client at the TLS port is told that it needs TLS.
    let e = client_with(&plain_addr, None).unwrap_err();
    assert!(e.contains("requires TLS"), "{e}");

    // A tls:// address without a TLS configuration.
    let e = client_with(&addr, None).unwrap_err();
    assert!(e.contains("no TLS configuration"), "{e}");

    // A client whose CA did not sign the scheduler's certificate.
    let e = client_with(&addr, Some(s.rogue.config())).unwrap_err();
    assert!(
        e.contains("TLS handshake") && e.contains("UnknownIssuer"),
        "{e}"
    );

    // A client trusting the scheduler, with a certificate from another CA:
    // the scheduler refuses it.
    let e = client_with(&addr, Some(s.rogue_trusting.config())).unwrap_err();
    assert!(e.contains("TLS"), "{e}");
    assert!(
        e.contains("certificate") || e.contains("Certificate"),
        "{e}"
    );

    // A client with no certificate at all.
    let roots = {
        let mut r = rustls::RootCertStore::empty();
        for c in rustls::pki_types::pem::PemObject::pem_slice_iter(s.ca_pem.as_bytes()) {
            r.add(c.unwrap()).unwrap();
        }
        Arc::new(r)
    };
    let no_cert = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .dangerous()
    .with_custom_certificate_verifier(rask::protocol::tls::ChainOnlyVerifier::new(roots).unwrap())
    .with_no_client_auth();
    let e = client_with(&addr, Some(TlsConfig::from_rustls(Arc::new(no_cert), None))).unwrap_err();
    assert!(
        e.contains("TLS") && e.contains("CertificateRequired"),
        "{e}"
    );

    // A worker with a certificate of another CA cannot join.
    let e = Worker::start(
        WorkerConfig {
            tls: Some(s.rogue_trusting.config()),
            ..WorkerConfig::new(addr.clone())
        },
        Registry::new(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("TLS"), "{e}");

    // A plaintext peer at a worker's TLS data port is refused the same way.
    let e = rask::runtime::block_on(rask::protocol::conn::connect(
        &wa.data_address().replacen("tls://", "tcp://", 1),
        rask::protocol::messages::Role::Peer,
        "plain-peer",
        None,
        rask::protocol::Limits::default(),
        Duration::from_secs(10),
    ))
    .unwrap_err();
    assert!(e.0.contains("requires TLS"), "{e}");

    // A raw connection that never starts the TLS handshake, and one that
    // stops inside it, are closed by the handshake timeout.
    let raws: Vec<_> = [&b""[..], &[0x16u8, 3, 1, 0, 200][..]]
        .into_iter()
        .map(|first| {
            let mut raw =
                std::net::TcpStream::connect(plain_addr.trim_start_matches("tcp://")).unwrap();
            raw.write_all(first).unwrap();
            raw
        })
        .collect();
    for mut raw in raws {
        raw.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut buf = [0u8; 64];
        // The handshake timeout is 3 s; the server closes (EOF or reset),
        // it does not wait forever.
        let r = raw.read(&mut buf);
        assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
        if let Err(e) = &r {
            assert_ne!(e.kind(), std::io::ErrorKind::WouldBlock, "not closed: {e}");
        }
    }

    // After all that, the good client computes, across workers.
    let client = client_with(&addr, Some(s.client.config())).unwrap();
    client.wait_for_workers(2, Duration::from_secs(20)).unwrap();
    let f = client.compute(&cross_graph(), &["q"]).unwrap();
    assert_eq!(f[0].result(T).unwrap(), Value::Int(47));
    scatter_gather(&client);
    drop(client);
    drop((wa, wb));
    sched.shutdown();
}

#[test]
fn a_connection_over_the_limit_at_a_tls_port_reads_the_refusal_through_tls() {
    let s = setup();
    let sched = Scheduler::start(SchedulerConfig {
        port: 0,
        tls: Some(s.scheduler.config()),
        max_connections: 1,
        ..SchedulerConfig::default()
    })
    .unwrap();
    let addr = sched.address().to_string();
    // A raw connection holds the only slot (its handshake is pending; the
    // listener accepts in order, so it is taken before the client's).
    let raw = std::net::TcpStream::connect(addr.trim_start_matches("tls://")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let e = client_with(&addr, Some(s.client.config())).unwrap_err();
    assert!(e.contains("too many connections"), "{e}");
    drop(raw);
    // Once the slot is free, a client gets in.
    loop {
        match client_with(&addr, Some(s.client.config())) {
            Ok(_) => break,
            Err(e) => {
                assert!(e.contains("too many connections"), "{e}");
                assert!(Instant::now() < deadline, "still refused: {e}");
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

#[test]
fn a_tls_client_at_a_plaintext_scheduler_gets_a_clear_error() {
    let s = setup();
    let sched = Scheduler::start(SchedulerConfig {
        port: 0,
        ..SchedulerConfig::default()
    })
    .unwrap();
    let addr = sched.address().replacen("tcp://", "tls://", 1);
    let e = client_with(&addr, Some(s.client.config())).unwrap_err();
    assert!(e.contains("TLS handshake"), "{e}");
    // tcp:// addresses stay plaintext for a client that has TLS.
    let _w = Worker::start(WorkerConfig::new(sched.address()), Registry::new()).unwrap();
    let c = client_with(sched.address(), Some(s.client.config())).unwrap();
    assert_eq!(
        c.submit("inc", vec![1.into()]).unwrap().result(T).unwrap(),
        Value::Int(2)
    );
}

#[test]
fn bad_tls_files_are_clear_errors_naming_the_file() {
    let s = setup();
    let dir = &s.pki.dir;
    let missing = dir.join("nope.pem");
    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, "this is not PEM\n").unwrap();
    let err = |ca: &Path, cert: &Path, key: &Path| {
        TlsConfig::from_files(ca, cert, key)
            .unwrap_err()
            .to_string()
    };
    let (ca, cert, key) = (&s.client.ca, &s.client.cert, &s.client.key);

    let e = err(&missing, cert, key);
    assert!(e.contains("CA file") && e.contains("nope.pem"), "{e}");
    let e = err(ca, &missing, key);
    assert!(
        e.contains("certificate file") && e.contains("nope.pem"),
        "{e}"
    );
    let e = err(ca, cert, &missing);
    assert!(e.contains("key file") && e.contains("nope.pem"), "{e}");
    let e = err(&garbage, cert, key);
    assert!(
        e.contains("no PEM certificate") && e.contains("garbage.pem"),
        "{e}"
    );
    let e = err(ca, &garbage, key);
    assert!(
        e.contains("no PEM certificate") && e.contains("garbage.pem"),
        "{e}"
    );
    let e = err(ca, cert, &garbage);
    assert!(
        e.contains("private key") && e.contains("garbage.pem"),
        "{e}"
    );
    // A key file holding a certificate only.
    let e = err(ca, cert, cert);
    assert!(e.contains("private key") && e.contains("client.pem"), "{e}");
    // The key of another certificate.
    let e = err(ca, cert, &s.worker.key);
    assert!(
        e.contains("does not fit") && e.contains("worker-key.pem") && e.contains("client.pem"),
        "{e}"
    );
    // All three or none.
    assert!(TlsConfig::from_options(None, None, None).unwrap().is_none());
    let e = TlsConfig::from_options(Some(ca), None, Some(key))
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing: certificate file"), "{e}");
    // A client-only configuration cannot serve.
    let client_only = TlsConfig::from_rustls(s.client.config().client().clone(), None);
    let e = Scheduler::start(SchedulerConfig {
        port: 0,
        tls: Some(client_only),
        ..SchedulerConfig::default()
    })
    .unwrap_err();
    assert!(e.to_string().contains("no server side"), "{e}");
    assert!(s.rogue_ca_pem.contains("BEGIN CERTIFICATE"));
}

// ------------------------------------------------------------ processes

fn args(fixed: &[&str], more: Vec<String>) -> Vec<String> {
    fixed.iter().map(|s| s.to_string()).chain(more).collect()
}

#[test]
fn the_binaries_take_tls_flags() {
    let s = setup();
    let scheduler = Proc::spawn(
        env!("CARGO_BIN_EXE_rask-scheduler"),
        &args(&["--port", "0"], s.scheduler.flags()),
    );
    let address = address_in(&scheduler.line_with("listening on"));
    let worker = |name: &str| {
        let w = Proc::spawn(
            env!("CARGO_BIN_EXE_rask-worker"),
            &args(
                &[&address, "--nthreads", "1", "--name", name],
                s.worker.flags(),
            ),
        );
        let data = address_in(&w.line_with("serving data on"));
        (w, data)
    };
    let (w1, d1) = worker("w1");
    let (w2, d2) = worker("w2");
    assert_ne!(d1, d2);
    let client = client_with(&address, Some(s.client.config())).unwrap();
    client.wait_for_workers(2, Duration::from_secs(30)).unwrap();
    let mut g = Graph::new();
    g.add_value("a", 1).unwrap();
    let a = g.r("a").unwrap();
    g.add_task("b", "inc", vec![a]).unwrap();
    let z = client.compute(&g, &["b"]).unwrap();
    assert_eq!(z[0].result(T).unwrap(), Value::Int(2));
    // Results spread over both workers, then summed on one: transfers
    // between the worker processes.
    let parts = client
        .map("inc", (0..20).map(|i| vec![ClientArg::from(i)]).collect())
        .unwrap();
    client.wait(&parts, rask::client::WaitMode::All, T);
    let holders: std::collections::HashSet<String> = client
        .who_has(&parts)
        .unwrap()
        .into_values()
        .flatten()
        .collect();
    assert!(
        holders.iter().all(|h| h.starts_with("tls://")),
        "{holders:?}"
    );
    let total = client
        .submit("sum", parts.iter().map(|f| f.into()).collect())
        .unwrap();
    assert_eq!(total.result(T).unwrap(), Value::Int((1..=20).sum()));
    scatter_gather(&client);
    // A plaintext client is refused; the processes keep serving.
    let e = client_with(&address.replacen("tls://", "tcp://", 1), None).unwrap_err();
    assert!(e.contains("requires TLS"), "{e}");
    let f = client.submit("inc", vec![41.into()]).unwrap();
    assert_eq!(f.result(T).unwrap(), Value::Int(42));
    drop(client);
    drop((w1, w2, scheduler));
}

#[test]
fn tls_beyond_loopback_is_not_warned_about_as_unauthenticated() {
    // tests/cluster_processes.rs shows the warning without token and TLS.
    let s = setup();
    let sched = stderr_until_ready(
        env!("CARGO_BIN_EXE_rask-scheduler"),
        &args(&["--host", "0.0.0.0", "--port", "0"], s.scheduler.flags()),
        "listening on",
    );
    assert!(!sched.contains("without an auth token"), "{sched:?}");
    let scheduler = Proc::spawn(
        env!("CARGO_BIN_EXE_rask-scheduler"),
        &args(&["--port", "0"], s.scheduler.flags()),
    );
    let address = address_in(&scheduler.line_with("listening on"));
    let worker = stderr_until_ready(
        env!("CARGO_BIN_EXE_rask-worker"),
        &args(
            &[&address, "--host", "0.0.0.0", "--nthreads", "1"],
            s.worker.flags(),
        ),
        "serving data on",
    );
    assert!(!worker.contains("without an auth token"), "{worker:?}");
}

#[test]
fn the_binaries_refuse_incomplete_or_bad_tls_flags() {
    let s = setup();
    let run = |exe: &str, a: Vec<String>| {
        let out = Command::new(exe)
            .args(a)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let sched = env!("CARGO_BIN_EXE_rask-scheduler");
    let worker = env!("CARGO_BIN_EXE_rask-worker");
    for exe in [sched, worker] {
        // Only two of the three.
        let (code, err) = run(
            exe,
            args(
                &["--tls-ca-file", &s.client.ca.display().to_string()],
                vec!["--tls-key".into(), s.client.key.display().to_string()],
            ),
        );
        assert_eq!(code, Some(2), "{err}");
        assert!(err.contains("--tls-cert"), "{err}");
        // A key that does not fit the certificate.
        let (code, err) = run(
            exe,
            args(
                &["--port", "0"],
                vec![
                    "--tls-ca-file".into(),
                    s.client.ca.display().to_string(),
                    "--tls-cert".into(),
                    s.client.cert.display().to_string(),
                    "--tls-key".into(),
                    s.worker.key.display().to_string(),
                ],
            ),
        );
        assert_eq!(code, Some(2), "{err}");
        assert!(
            err.contains("worker-key.pem") && err.contains("does not fit"),
            "{err}"
        );
    }
}

// ------------------------------------------------------------ C API

mod capi {
    use super::*;
    use rask::capi::rask_status::*;
    use rask::capi::*;
    use std::ffi::{c_char, CStr, CString};
    use std::ptr::{null, null_mut};

    fn call(
        f: impl FnOnce(*mut *mut rask_error) -> rask_status,
    ) -> Result<(), (rask_status, String)> {
        let mut err: *mut rask_error = null_mut();
        let st = f(&mut err);
        if st == RASK_OK {
            return Ok(());
        }
        unsafe {
            let msg = CStr::from_ptr(rask_error_message(err))
                .to_string_lossy()
                .into_owned();
            rask_error_free(err);
            Err((st, msg))
        }
    }

    fn cs(p: &Path) -> CString {
        CString::new(p.display().to_string()).unwrap()
    }

    struct CFiles {
        ca: CString,
        cert: CString,
        key: CString,
    }

    impl CFiles {
        fn new(f: &Files) -> CFiles {
            CFiles {
                ca: cs(&f.ca),
                cert: cs(&f.cert),
                key: cs(&f.key),
            }
        }
    }

    unsafe fn addr(p: *const c_char) -> String {
        CStr::from_ptr(p).to_str().unwrap().to_owned()
    }

    /// `inc(41)` through a C client.
    unsafe fn inc_41(client: *const rask_client) -> i64 {
        let args = [rask_arg_int(41)];
        let mut f = null_mut();
        call(|e| rask_client_submit(client, c"inc".as_ptr(), args.as_ptr(), 1, &mut f, e)).unwrap();
        let mut v = null_mut();
        call(|e| rask_future_result(f, 30_000, &mut v, e)).unwrap();
        let mut out = 0;
        call(|e| rask_value_get_int(v, &mut out, e)).unwrap();
        rask_value_free(v);
        rask_future_free(f);
        out
    }

    #[test]
    fn the_c_options_structs_carry_tls() {
        let s = setup();
        let (sf, wf, cf) = (
            CFiles::new(&s.scheduler),
            CFiles::new(&s.worker),
            CFiles::new(&s.client),
        );
        unsafe {
            // A scheduler, a worker and a client, each with TLS fields.
            let mut so: rask_scheduler_options = std::mem::zeroed();
            so.tls_ca_file = sf.ca.as_ptr();
            so.tls_cert_file = sf.cert.as_ptr();
            so.tls_key_file = sf.key.as_ptr();
            let mut sched = null_mut();
            call(|e| rask_scheduler_start(&so, &mut sched, e)).unwrap();
            let address = addr(rask_scheduler_address(sched));
            assert!(address.starts_with("tls://"), "{address}");
            let caddr = CString::new(address.clone()).unwrap();

            let mut wo: rask_worker_options = std::mem::zeroed();
            wo.threads = 1;
            wo.tls_ca_file = wf.ca.as_ptr();
            wo.tls_cert_file = wf.cert.as_ptr();
            wo.tls_key_file = wf.key.as_ptr();
            let mut worker = null_mut();
            call(|e| rask_worker_start(caddr.as_ptr(), &wo, null(), &mut worker, e)).unwrap();
            assert!(addr(rask_worker_address(worker)).starts_with("tls://"));

            let mut co: rask_client_options = std::mem::zeroed();
            co.tls_ca_file = cf.ca.as_ptr();
            co.tls_cert_file = cf.cert.as_ptr();
            co.tls_key_file = cf.key.as_ptr();
            let mut client = null_mut();
            call(|e| rask_client_connect(caddr.as_ptr(), &co, &mut client, e)).unwrap();
            assert_eq!(inc_41(client), 42);
            rask_client_free(client);

            // Without the TLS fields the client is refused, clearly.
            let plain = CString::new(address.replacen("tls://", "tcp://", 1)).unwrap();
            let (st, msg) =
                call(|e| rask_client_connect(plain.as_ptr(), null(), &mut client, e)).unwrap_err();
            assert_eq!(st, RASK_ERR_CONNECTION);
            assert!(msg.contains("requires TLS"), "{msg}");

            // Only some of the fields, or a bad file: RASK_ERR_INVALID_ARG.
            let mut partial = co;
            partial.tls_key_file = null();
            let (st, msg) = call(|e| rask_client_connect(caddr.as_ptr(), &partial, &mut client, e))
                .unwrap_err();
            assert_eq!(st, RASK_ERR_INVALID_ARG);
            assert!(msg.contains("missing: key file"), "{msg}");
            let missing = CString::new("/nonexistent/ca.pem").unwrap();
            let mut bad = so;
            bad.tls_ca_file = missing.as_ptr();
            let mut other = null_mut();
            let (st, msg) = call(|e| rask_scheduler_start(&bad, &mut other, e)).unwrap_err();
            assert_eq!(st, RASK_ERR_INVALID_ARG);
            assert!(msg.contains("/nonexistent/ca.pem"), "{msg}");

            rask_worker_free(worker);
            rask_scheduler_free(sched);

            // A local cluster with TLS, and its clients.
            let mut clo: rask_cluster_options = std::mem::zeroed();
            clo.workers = 1;
            clo.tls_ca_file = wf.ca.as_ptr();
            clo.tls_cert_file = wf.cert.as_ptr();
            clo.tls_key_file = wf.key.as_ptr();
            let mut cluster = null_mut();
            call(|e| rask_cluster_start(&clo, null(), &mut cluster, e)).unwrap();
            assert!(addr(rask_cluster_address(cluster)).starts_with("tls://"));
            let mut client = null_mut();
            call(|e| rask_cluster_client(cluster, &mut client, e)).unwrap();
            assert_eq!(inc_41(client), 42);
            rask_client_free(client);
            rask_cluster_free(cluster);
        }
    }
}

/// Certificates out of their validity period are refused on both sides,
/// naming the cause, and a peer with a certificate from another CA is
/// refused at a worker's data port; the cluster keeps serving.
#[test]
fn expired_and_not_yet_valid_certificates_and_a_foreign_peer_are_refused() {
    let s = setup();
    let ca2 = ca("rask test CA 2");
    let dir = s.pki.dir.join("validity");
    std::fs::create_dir_all(&dir).unwrap();
    let ca2_file = dir.join("ca2.pem");
    std::fs::write(&ca2_file, &ca2.pem).unwrap();
    let files = |who: &str, (cert, key): (String, String)| {
        let c = dir.join(format!("{who}.pem"));
        let k = dir.join(format!("{who}-key.pem"));
        std::fs::write(&c, cert).unwrap();
        std::fs::write(&k, key).unwrap();
        Files {
            ca: ca2_file.clone(),
            cert: c,
            key: k,
        }
    };
    let valid = files(
        "valid",
        leaf_valid(&ca2, "valid", (2000, 1, 1), (4000, 1, 1)),
    );
    let expired = files(
        "expired",
        leaf_valid(&ca2, "expired", (2000, 1, 1), (2001, 1, 1)),
    );
    let future = files(
        "future",
        leaf_valid(&ca2, "future", (3900, 1, 1), (4000, 1, 1)),
    );

    let sched = tls_scheduler(&valid);
    let addr = sched.address().to_string();
    let w = tls_worker(&addr, &valid, "W", Registry::new());
    // A client with an expired or a not-yet-valid certificate: the
    // scheduler refuses it.
    for (what, f) in [("expired", &expired), ("not yet valid", &future)] {
        let e = client_with(&addr, Some(f.config())).unwrap_err();
        assert!(e.contains("TLS"), "{what}: {e}");
        assert!(
            e.contains("ertificate") || e.contains("Expired") || e.contains("NotValidYet"),
            "{what}: {e}"
        );
    }
    // A scheduler whose certificate is expired or not yet valid: a good
    // client refuses it, saying why.
    for (what, f, cause) in [
        ("expired", &expired, "certificate has expired"),
        ("not yet valid", &future, "certificate is not valid yet"),
    ] {
        let bad = tls_scheduler(f);
        let e = client_with(bad.address(), Some(valid.config())).unwrap_err();
        assert!(
            e.contains("TLS handshake") && e.contains(cause),
            "{what}: {e}"
        );
        assert!(
            !e.contains("not signed by"),
            "{what}: a misleading hint: {e}"
        );
        bad.shutdown();
    }
    // A peer whose certificate another CA signed, at a worker's data port
    // (it trusts the worker's CA, so only the worker can refuse it).
    let foreign = Files {
        ca: ca2_file.clone(),
        ..s.rogue.clone()
    };
    let e = rask::runtime::block_on(rask::protocol::conn::connect_with(
        w.data_address(),
        Some(&foreign.config()),
        rask::protocol::messages::Role::Peer,
        "foreign-peer",
        None,
        rask::protocol::Limits::default(),
        Duration::from_secs(10),
    ))
    .unwrap_err();
    assert!(e.0.contains("TLS"), "{e}");
    // The same with the right certificate works, and the cluster serves.
    let peer = rask::runtime::block_on(rask::protocol::conn::connect_with(
        w.data_address(),
        Some(&valid.config()),
        rask::protocol::messages::Role::Peer,
        "good-peer",
        None,
        rask::protocol::Limits::default(),
        Duration::from_secs(10),
    ));
    assert!(peer.is_ok(), "{:?}", peer.err());
    drop(peer);
    let client = client_with(&addr, Some(valid.config())).unwrap();
    client.wait_for_workers(1, Duration::from_secs(20)).unwrap();
    let f = client.submit("inc", vec![ClientArg::from(1)]).unwrap();
    assert_eq!(f.result(T).unwrap(), Value::Int(2));
    drop(client);
    drop(w);
    sched.shutdown();
}

// ------------------------------------------------- one gate, every listener

/// A raw connection to `addr` (`host:port`), through TLS when `tls` is
/// given (the TLS handshake done, nothing sent yet).
async fn raw(
    addr: &str,
    tls: Option<&TlsConfig>,
) -> Box<dyn rask_io::AsyncReadWrite + Unpin + Send> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    match tls {
        None => Box::new(tcp),
        Some(t) => {
            let name = rustls::pki_types::ServerName::try_from("rask-node.invalid").unwrap();
            let s = tokio_rustls::TlsConnector::from(t.client().clone())
                .connect(name, tcp)
                .await
                .unwrap();
            Box::new(s)
        }
    }
}

mod rask_io {
    pub trait AsyncReadWrite: tokio::io::AsyncRead + tokio::io::AsyncWrite {}
    impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite> AsyncReadWrite for T {}
}

/// The one message a server sends a connection before closing it.
async fn refusal(s: &mut (impl tokio::io::AsyncRead + Unpin)) -> (String, Option<String>) {
    use rask::protocol::{Message, WireMessage};
    let w = tokio::time::timeout(Duration::from_secs(30), async {
        WireMessage::read_from(s, &rask::protocol::Limits::default()).await
    })
    .await
    .expect("the server neither answered nor closed within 30 s")
    .unwrap()
    .expect("the server closed without an error message");
    let b = rask::protocol::decode_batch(&w).unwrap();
    match b.into_iter().next().unwrap().unwrap() {
        Message::Error { message, code, .. } => (message, code),
        other => panic!("expected an error, got {other:?}"),
    }
}

/// The checks every listener makes, through the one gate: a wrong or
/// missing token and a wrong role are refused, a silent connection is
/// refused after the handshake timeout, one connection over the limit is
/// refused at once (and accepted again once another closes), and a good
/// connection is served throughout. `free` is how many more connections
/// the listener takes now.
fn check_listener(
    address: &str,
    tls: Option<&TlsConfig>,
    role: rask::protocol::messages::Role,
    wrong_role: rask::protocol::messages::Role,
    token: &str,
    free: usize,
) {
    use rask::protocol::conn::connect_with;
    use rask::protocol::Limits;
    let t = Duration::from_secs(30);
    let hostport = address.split("://").nth(1).unwrap().to_string();
    let what = format!("{address} as {role:?}");
    rask::runtime::block_on(async {
        let dial = |role, token: Option<&str>| {
            connect_with(
                address,
                tls,
                role,
                "gate-test",
                token.map(str::to_string),
                Limits::default(),
                t,
            )
        };
        for bad in [Some("wrong"), Some(""), Some("s3cre"), None] {
            let e = dial(role, bad).await.expect_err(&what).0;
            assert!(
                e.contains("authentication failed"),
                "{what}, token {bad:?}: {e}"
            );
        }
        let e = dial(wrong_role, Some(token)).await.expect_err(&what).0;
        assert!(e.contains("takes connections with role"), "{what}: {e}");
        // Silent after connecting (and after the TLS handshake): refused
        // with code `handshake` once the handshake timeout passes.
        let mut silent = raw(&hostport, tls).await;
        let (m, code) = refusal(&mut silent).await;
        assert_eq!(code.as_deref(), Some("handshake"), "{what}: {m}");
        assert!(m.contains("handshake timeout"), "{what}: {m}");
        // The limit: hold every free slot (a refused connection frees its
        // slot a moment after the refusal, so a refusal here is retried
        // until a deadline), then one more is refused at once.
        let mut held = Vec::new();
        let deadline = std::time::Instant::now() + t;
        while held.len() < free {
            match dial(role, Some(token)).await {
                Ok(c) => held.push(c),
                Err(e) => {
                    assert!(e.0.contains("too many connections"), "{what}: {e}");
                    assert!(std::time::Instant::now() < deadline, "{what}: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
        let e = dial(role, Some(token)).await.expect_err(&what).0;
        assert!(e.contains("too many connections"), "{what}: {e}");
        let mut extra = raw(&hostport, tls).await;
        let (m, code) = refusal(&mut extra).await;
        assert_eq!(code.as_deref(), Some("too-many-connections"), "{what}: {m}");
        // One closes: a new one is taken (its slot is freed once the
        // server read the end of its stream).
        held.pop();
        let deadline = std::time::Instant::now() + t;
        let last = loop {
            match dial(role, Some(token)).await {
                Ok(c) => break c,
                Err(e) => {
                    assert!(e.0.contains("too many connections"), "{what}: {e}");
                    assert!(std::time::Instant::now() < deadline, "{what}: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        };
        drop((held, last));
    });
}

/// The scheduler's port and a worker's data port accept through the same
/// gate: the same token check (constant time), role check, handshake
/// timeout and connection limit, plain and over TLS.
#[test]
fn every_listener_checks_token_role_handshake_and_limit_through_one_gate() {
    use rask::protocol::messages::Role;
    let pki = setup();
    for tls in [None, Some(&pki.scheduler)] {
        let token = "s3cret";
        let s = Scheduler::start(SchedulerConfig {
            port: 0,
            tls: tls.map(Files::config),
            token: Some(token.into()),
            handshake_timeout: Duration::from_millis(300),
            max_connections: 3,
            ..SchedulerConfig::default()
        })
        .unwrap();
        let w = Worker::start(
            WorkerConfig {
                name: "gate-w".into(),
                threads: 1,
                tls: tls.map(|_| pki.worker.config()),
                token: Some(token.into()),
                handshake_timeout: Duration::from_millis(300),
                max_connections: 2,
                ..WorkerConfig::new(s.address())
            },
            Registry::new(),
        )
        .unwrap();
        let client_tls = tls.map(|_| pki.client.config());
        // The worker holds one of the scheduler's three connections.
        check_listener(
            s.address(),
            client_tls.as_ref(),
            Role::Client,
            Role::Peer,
            token,
            2,
        );
        check_listener(
            w.data_address(),
            client_tls.as_ref(),
            Role::Peer,
            Role::Client,
            token,
            2,
        );
        // Both still serve: the worker's connection was never disturbed.
        assert!(!w.is_stopped(), "{:?}", w.stop_reason());
        w.stop();
        s.shutdown();
    }
}

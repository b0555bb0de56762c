//! Same-host transfers through shared memory, between real processes: a
//! `rask-scheduler` and two `rask-worker`s with a token. A value replicated
//! from one worker to the other travels as a memory file's descriptor over
//! the holder's Unix socket (both processes then map the same file); the
//! holder is killed with SIGKILL and the copy stays whole; once the client
//! releases the value, no process maps the file any more and nothing was
//! left in /dev/shm or on disk.

use rask::client::{Client, ClientConfig};
use rask::protocol::conn;
use rask::protocol::messages::Role;
use rask::protocol::Limits;
use rask::value::DType;
use rask::{Tensor, Value};
use std::time::{Duration, Instant};

mod procs;
use procs::{address_in, Proc};

const T: Option<Duration> = Some(Duration::from_secs(30));

/// The mappings of rask memory files in process `pid`: (lines, bytes).
fn memfd_maps(pid: u32) -> (usize, u64) {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    let mut n = 0;
    let mut bytes = 0;
    for line in maps.lines().filter(|l| l.contains("memfd:rask-value")) {
        n += 1;
        let range = line.split_whitespace().next().unwrap();
        let (a, b) = range.split_once('-').unwrap();
        bytes += u64::from_str_radix(b, 16).unwrap() - u64::from_str_radix(a, 16).unwrap();
    }
    (n, bytes)
}

/// Descriptors of rask memory files open in process `pid`.
fn memfd_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter(|p| p.to_string_lossy().contains("memfd:rask-value"))
                .count()
        })
        .unwrap_or(0)
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn dev_shm() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/dev/shm")
        .map(|d| {
            d.filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn a_value_moves_between_worker_processes_as_a_memory_file_and_nothing_leaks() {
    let dir = std::env::temp_dir().join(format!("rask-shm-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let token_file = dir.join("token");
    std::fs::write(&token_file, "shm-s3cret\n").unwrap();
    let token = token_file.to_str().unwrap();
    let shm_before = dev_shm();

    let scheduler = Proc::spawn(
        env!("CARGO_BIN_EXE_rask-scheduler"),
        &["--port", "0", "--auth-token-file", token],
    );
    let address = address_in(&scheduler.line_with("listening on"));
    let worker = |name: &str| {
        let w = Proc::spawn(
            env!("CARGO_BIN_EXE_rask-worker"),
            &[
                &address,
                "--nthreads",
                "1",
                "--name",
                name,
                "--auth-token-file",
                token,
            ],
        );
        let data = address_in(&w.line_with("serving data on"));
        (w, data)
    };
    let (mut w1, w1_data) = worker("w1");
    let (mut w2, w2_data) = worker("w2");
    let client = Client::connect(
        &address,
        ClientConfig {
            token: Some("shm-s3cret".into()),
            ..ClientConfig::default()
        },
    )
    .unwrap();
    client.wait_for_workers(2, Duration::from_secs(20)).unwrap();

    // The Unix socket checks the token as the TCP port does.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let refused = rt.block_on(conn::connect_local(
        &w1_data,
        Role::Peer,
        "intruder",
        Some("wrong".into()),
        Limits::default(),
        Duration::from_secs(10),
    ));
    let Err(e) = refused else {
        panic!("a wrong token is refused")
    };
    let e = e.0;
    assert!(e.contains("authentication failed"), "{e}");
    let none = rt.block_on(conn::connect_local(
        "tcp://127.0.0.1:1",
        Role::Peer,
        "x",
        None,
        Limits::default(),
        Duration::from_secs(10),
    ));
    assert!(
        matches!(none, Ok(None)),
        "no worker there: TCP is the fallback"
    );

    // 4 MiB of float64, scattered to one worker, replicated to the other.
    let n = 1 << 19;
    let data: Vec<f64> = (0..n).map(|i| i as f64 * 0.5).collect();
    let tensor = Tensor::from_vec(vec![n], data).unwrap();
    let f = client
        .scatter(vec![Value::Tensor(tensor.clone())], false)
        .unwrap()
        .remove(0);
    let holder = client.who_has(std::slice::from_ref(&f)).unwrap()[f.key()][0].clone();
    let (h, o) = if holder == w1_data {
        (&mut w1, &mut w2)
    } else {
        assert_eq!(holder, w2_data);
        (&mut w2, &mut w1)
    };
    let (hpid, opid) = (h.child.id(), o.child.id());
    assert_eq!(memfd_maps(hpid).0, 0, "scattered over TCP: plain memory");
    let report = client.replicate(std::slice::from_ref(&f), 2, T).unwrap();
    assert_eq!(report.short, Vec::<String>::new());
    assert_eq!(
        client.who_has(std::slice::from_ref(&f)).unwrap()[f.key()].len(),
        2
    );
    // The holder copied the value into a memory file once (and keeps that
    // copy); the other worker maps the same file: it came as a descriptor.
    let (hn, hbytes) = memfd_maps(hpid);
    let (on, obytes) = memfd_maps(opid);
    assert!(
        hn >= 1 && hbytes >= 4 << 20,
        "holder maps {hn} ({hbytes} B)"
    );
    assert!(
        on >= 1 && obytes >= 4 << 20,
        "receiver maps {on} ({obytes} B)"
    );

    // SIGKILL the holder: the receiver's mapping stays whole.
    h.signal("-KILL");
    let _ = h.child.wait();
    wait_until("the scheduler drops the killed worker", || {
        client.workers().map(|w| w.len() == 1).unwrap_or(false)
    });
    let back = f.result(T).unwrap();
    match &back {
        Value::Tensor(t) => {
            assert_eq!(t.dtype(), DType::F64);
            assert_eq!(t.data(), tensor.data(), "the copy is whole");
        }
        other => panic!("expected a tensor, got {other:?}"),
    }
    drop(back);

    // Released: the survivor unmaps it and closes its descriptor; no
    // process maps the file any more, so the kernel has freed it.
    drop(f);
    wait_until("the survivor no longer maps the memory file", || {
        memfd_maps(opid).0 == 0 && memfd_fds(opid) == 0
    });
    assert_eq!(memfd_maps(std::process::id()).0, 0, "nor does this client");
    assert_eq!(dev_shm(), shm_before, "nothing in /dev/shm");
    client.close();
    drop((w1, w2, scheduler));
    std::fs::remove_dir_all(&dir).unwrap();
}

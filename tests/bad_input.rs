//! Bad input against a live scheduler and a worker's data port.
//!
//! A seeded generator throws well over 100,000 frames (`RASK_BAD_FRAMES`;
//! `benches/scale.sh` throws a million) at an in-process
//! scheduler that has one real worker: random bytes, frames with random
//! bodies, real messages mutated (fields of the wrong msgpack type,
//! missing or unknown fields, unknown ops, bit flips, truncations), length
//! prefixes such as 2^63, bodies nested a million deep, messages for the
//! wrong role, hellos with wrong versions and magic. Every connection
//! carries many frames: first a handshake (good or bad), then frames the
//! scheduler answers with `error` and survives, then, usually, one that
//! makes it close that connection. Afterwards the scheduler must have
//! exactly its one worker, no client and no task left, and a real client
//! must compute the classic graph. The worker's data port gets the same
//! treatment.
//!
//! Everything is derived from the seed (each connection's bytes from the
//! seed and the connection's index), so a failure replays; `BAD_INPUT_SEED`
//! picks another seed.

use bytes::Bytes;
use rask::client::{Client, ClientConfig};
use rask::protocol::messages::Role;
use rask::protocol::{encode_batch, pack_value, Limits, Message, WireMessage};
use rask::scheduler::{Scheduler, SchedulerConfig, SchedulerHandle};
use rask::worker::{Worker, WorkerConfig};
use rask::{Graph, Registry, Value};
use serde_bytes::ByteBuf;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The classic graph document of docs/graph-spec.md:
/// `{a: 1, x: 10, b: inc(a), y: inc(x), z: add(b, y)}`, outputs `[z]`.
const CLASSIC: &str = "82a57461736b7385a16181a576616c756501a17881a576616c75650aa16282a466756e63a3696e63a4617267739181a3726566a161a17982a466756e63a3696e63a4617267739181a3726566a178a17a82a466756e63a3616464a4617267739281a3726566a16281a3726566a179a76f75747075747391a17a";

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Limits of the scheduler and worker under test: small enough that
/// frames just over them are cheap to send.
const LIMITS: Limits = Limits {
    max_frames: 64,
    max_frame_size: 1 << 20,
    max_message_size: 2 << 20,
};

// ------------------------------------------------------------ generator

/// splitmix64: small, fast, and the same on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

/// Field names and ops the messages use, so mutations hit real fields.
const WORDS: &[&str] = &[
    "op",
    "id",
    "key",
    "keys",
    "func",
    "args",
    "graph",
    "data",
    "frame",
    "kind",
    "dtype",
    "shape",
    "who_has",
    "nbytes",
    "value",
    "message",
    "code",
    "role",
    "protocol",
    "magic",
    "name",
    "threads",
    "functions",
    "address",
    "priority",
    "retries",
    "missing",
    "worker",
    "dependency",
    "hello",
    "welcome",
    "error",
    "register-worker",
    "heartbeat",
    "task-finished",
    "task-erred",
    "add-keys",
    "missing-data",
    "compute-task",
    "free-keys",
    "update-graph",
    "release-keys",
    "cancel-keys",
    "who-has",
    "get-workers",
    "scattered",
    "get-data",
    "data",
    "put-data",
    "data-stored",
    "close",
    "frobnicate",
    "msgpack",
    "bin",
    "tensor",
    "tasks",
    "outputs",
    "ref",
    "list",
    "map",
    "junk-a",
    "junk-b",
    "junk-c",
];

/// A random string. Never one of the classic graph's keys: the junk this
/// test submits must not be mistaken for the real graph's tasks.
fn rand_str(r: &mut Rng) -> String {
    match r.below(4) {
        0 => r.pick(WORDS).to_string(),
        1 => String::new(),
        2 => format!("junk-{}", r.below(50)),
        _ => {
            let n = 2 + r.below(12);
            (0..n)
                .map(|_| char::from_u32(0x20 + r.below(0x2000) as u32).unwrap_or('?'))
                .collect()
        }
    }
}

fn rand_int(r: &mut Rng) -> Value {
    match r.below(7) {
        6 => Value::Int(*r.pick(&[
            u32::MAX as i64,
            u32::MAX as i64 - 1,
            i32::MAX as i64,
            1 << 31,
            u16::MAX as i64,
            1 << 32,
            i64::MAX,
        ])),
        0 => Value::Int(r.below(10) as i64),
        1 => Value::Int(-(r.below(1000) as i64)),
        2 => Value::Int(r.next() as i64),
        3 => Value::UInt(u64::MAX - r.below(3) as u64),
        4 => Value::Int(i64::MIN),
        _ => Value::Int(1 << r.below(63)),
    }
}

fn rand_value(r: &mut Rng, depth: usize) -> Value {
    let leaf = depth >= 3;
    match r.below(if leaf { 7 } else { 9 }) {
        0 => Value::Nil,
        1 => Value::Bool(r.chance(50)),
        2 => rand_int(r),
        3 => Value::Float(*r.pick(&[0.5, -1.0, f64::NAN, f64::INFINITY, 1e300])),
        4 | 5 => Value::from(rand_str(r).as_str()),
        6 => {
            let n = r.below(16);
            Value::Bin(Bytes::from(r.bytes(n)))
        }
        7 => Value::Array((0..r.below(4)).map(|_| rand_value(r, depth + 1)).collect()),
        _ => Value::Map(
            (0..r.below(4))
                .map(|_| (rand_value(r, depth + 1), rand_value(r, depth + 1)))
                .collect(),
        ),
    }
}

fn junk_keys(r: &mut Rng) -> Vec<String> {
    (0..r.below(4))
        .map(|_| format!("junk-{}", r.below(20)))
        .collect()
}

/// A small graph document of junk keys, sometimes broken: cycles, missing
/// dependencies, unknown functions, bad arguments.
fn junk_graph(r: &mut Rng) -> Vec<u8> {
    let n = 1 + r.below(5);
    let mut tasks = Vec::new();
    for i in 0..n {
        let key = format!("junk-{i}");
        let task = if i == 0 || r.chance(20) {
            Value::Map(vec![(Value::from("value"), rand_value(r, 1))])
        } else {
            let dep = format!("junk-{}", r.below(n + 1));
            let func = *r.pick(&["inc", "add", "nope", "identity", "sum", "list"]);
            let args = if r.chance(80) {
                Value::Array(vec![Value::Map(vec![(
                    Value::from("ref"),
                    Value::from(dep.as_str()),
                )])])
            } else {
                rand_value(r, 1)
            };
            Value::Map(vec![
                (Value::from("func"), Value::from(func)),
                (Value::from("args"), args),
            ])
        };
        tasks.push((Value::from(key.as_str()), task));
    }
    let mut doc = Value::Map(vec![
        (Value::from("tasks"), Value::Map(tasks)),
        (
            Value::from("outputs"),
            Value::Array(vec![Value::from(
                format!("junk-{}", r.below(n + 1)).as_str(),
            )]),
        ),
    ]);
    if r.chance(30) {
        mutate(r, &mut doc, 0);
    }
    rask::value::encode(&doc).unwrap()
}

fn junk_args(r: &mut Rng) -> Vec<u8> {
    let v = if r.chance(70) {
        Value::Array(vec![
            Value::Int(1),
            Value::Map(vec![(Value::from("ref"), Value::from("junk-1"))]),
        ])
    } else {
        rand_value(r, 0)
    };
    rask::value::encode(&v).unwrap()
}

/// A real message of any op, with junk content.
fn template(r: &mut Rng, role: Role) -> Message {
    let key = format!("junk-{}", r.below(20));
    let id = r.below(100) as u64;
    match r.below(22) {
        0 => Message::hello(role, "again", None),
        1 => Message::Welcome {
            protocol: 1,
            id,
            name: "x".into(),
            dashboard: None,
        },
        2 => Message::Error {
            message: "junk".into(),
            code: Some("junk".into()),
            id: None,
        },
        3 => Message::RegisterWorker {
            address: "tcp://127.0.0.1:1".into(),
            threads: r.below(4) as u32,
            functions: vec!["nope".into(), "identity".into()],
            memory_limit: 0,
            runtime: String::new(),
        },
        4 => Message::Heartbeat {
            executing: 1,
            memory: 2,
            spilled: 3,
            process: 4,
            paused: r.chance(50),
            cpu: None,
        },
        5 => Message::TaskFinished {
            key,
            nbytes: 8,
            duration: 0.1,
            value: r
                .chance(50)
                .then(|| ByteBuf::from(rask::value::encode(&rand_value(r, 0)).unwrap())),
        },
        6 => Message::TaskErred {
            key,
            message: "junk".into(),
            exception: String::new(),
            traceback: "junk\n".into(),
        },
        7 => Message::AddKeys {
            keys: vec![key],
            nbytes: vec![8],
            from: "tcp://127.0.0.1:1".into(),
            duration: Some(0.001),
        },
        8 => Message::MissingData {
            key,
            dependency: "junk-1".into(),
            worker: "tcp://127.0.0.1:1".into(),
            reason: if r.chance(50) { "unreachable" } else { "junk" }.into(),
            attempt: r.chance(50).then(|| r.below(4) as u64),
        },
        9 => Message::ComputeTask {
            key,
            func: "inc".into(),
            args: ByteBuf::from(junk_args(r)),
            priority: 0,
            who_has: BTreeMap::new(),
        },
        10 => Message::FreeKeys { keys: junk_keys(r) },
        11 | 12 => {
            let graph = junk_graph(r);
            Message::UpdateGraph {
                graph: ByteBuf::from(graph),
                keys: junk_keys(r),
                retries: r.below(2) as u32,
                from_task: false,
                id: None,
            }
        }
        13 => Message::ReleaseKeys {
            keys: junk_keys(r),
            id: Some(id),
        },
        14 => Message::CancelKeys {
            keys: junk_keys(r),
            id: None,
        },
        15 => Message::WhoHas {
            id,
            keys: junk_keys(r),
        },
        16 => Message::GetWorkers { id },
        17 => Message::Scattered {
            who_has: BTreeMap::from([(key.clone(), vec![r.below(5) as u64])]),
            nbytes: BTreeMap::from([(key, 8)]),
            id: Some(id),
        },
        18 => Message::GetData {
            id,
            keys: junk_keys(r),
        },
        19 | 20 => {
            let mut payloads = Vec::new();
            let p = pack_value(&rand_value(r, 0), &mut payloads).unwrap();
            let data = BTreeMap::from([(key, p)]);
            if r.chance(50) {
                Message::PutData { id, data }
            } else {
                Message::Data {
                    id,
                    data,
                    missing: vec![],
                    unsendable: Default::default(),
                }
            }
        }
        _ => Message::Close {
            reason: "junk".into(),
        },
    }
}

/// A message as a msgpack value (a map with `op`).
fn as_value(m: &Message) -> Value {
    let body = encode_batch(std::slice::from_ref(m), vec![]).frames[0].clone();
    match rask::value::decode(&body).unwrap() {
        Value::Array(mut items) => items.pop().unwrap(),
        v => panic!("{v:?}"),
    }
}

/// Changes `v` in place: wrong types, missing and unknown fields, unknown
/// ops, bit flips inside nested msgpack (graphs, args, values).
fn mutate(r: &mut Rng, v: &mut Value, depth: usize) {
    match v {
        Value::Map(fields) if !fields.is_empty() && depth < 4 => {
            let i = r.below(fields.len());
            match r.below(8) {
                0 => fields[i].1 = rand_value(r, 1),
                1 => {
                    fields.remove(i);
                }
                2 => fields.push((Value::from(rand_str(r).as_str()), rand_value(r, 1))),
                3 => fields[i].0 = rand_value(r, 2),
                4 => fields.push(fields[i].clone()), // a duplicate field
                _ => mutate(r, &mut fields[i].1, depth + 1),
            }
        }
        Value::Array(items) if !items.is_empty() && depth < 4 => {
            let i = r.below(items.len());
            mutate(r, &mut items[i], depth + 1)
        }
        Value::Bin(b) if !b.is_empty() && r.chance(70) => {
            let mut x = b.to_vec();
            flip_bits(r, &mut x);
            *b = Bytes::from(x);
        }
        Value::Str(s) if r.chance(50) => *s = rand_str(r),
        _ => *v = rand_value(r, depth),
    }
}

fn flip_bits(r: &mut Rng, b: &mut Vec<u8>) {
    if b.is_empty() {
        return;
    }
    for _ in 0..1 + r.below(3) {
        let i = r.below(b.len());
        b[i] ^= 1 << r.below(8);
    }
    if r.chance(20) {
        b.truncate(r.below(b.len()));
    }
}

fn set_op(v: &mut Value, op: Value) {
    if let Value::Map(fields) = v {
        for (k, val) in fields.iter_mut() {
            if k.as_str() == Some("op") {
                *val = op;
                return;
            }
        }
    }
}

/// One message of a batch: a real one (often for the wrong role),
/// usually mutated, or any value at all.
fn message_value(r: &mut Rng, role: Role) -> Value {
    if r.chance(5) {
        return rand_value(r, 0);
    }
    let mut v = as_value(&template(r, role));
    match r.below(10) {
        0..=1 => {} // as is: fine, or for the wrong role
        2 => set_op(&mut v, Value::from(rand_str(r).as_str())),
        3 => set_op(&mut v, rand_value(r, 2)),
        _ => {
            for _ in 0..1 + r.below(3) {
                mutate(r, &mut v, 0);
            }
        }
    }
    v
}

fn frame_bytes(frames: &[Vec<u8>]) -> Vec<u8> {
    WireMessage {
        frames: frames.iter().map(|f| Bytes::from(f.clone())).collect(),
    }
    .to_vec()
}

/// A wire message the receiver answers (with `error`s, or for real) and
/// survives: a msgpack array of messages, and maybe payload frames.
fn survivable(r: &mut Rng, role: Role) -> Vec<u8> {
    let msgs: Vec<Value> = (0..1 + r.below(6))
        .map(|_| message_value(r, role))
        .collect();
    let mut frames = vec![rask::value::encode(&Value::Array(msgs)).unwrap()];
    for _ in 0..r.below(3) {
        let n = r.below(64);
        frames.push(r.bytes(n));
    }
    frame_bytes(&frames)
}

/// A wire message after which the receiver closes the connection (most of
/// the time: a mutation may happen to leave it valid).
fn fatal(r: &mut Rng, role: Role) -> Vec<u8> {
    let header = |n: u32, lens: &[u64]| {
        let mut h = n.to_le_bytes().to_vec();
        for l in lens {
            h.extend_from_slice(&l.to_le_bytes());
        }
        h
    };
    match r.below(12) {
        0 => {
            let n = 1 + r.below(200);
            r.bytes(n)
        }
        1 => b"GET / HTTP/1.1\r\nHost: rask\r\n\r\n".to_vec(),
        2 => header(0, &[]),
        3 => header(u32::MAX - r.below(2) as u32, &[]),
        4 => {
            let huge = *r.pick(&[1u64 << 63, u64::MAX, LIMITS.max_frame_size + 1, 1 << 40]);
            let mut h = header(1, &[huge]);
            h.extend_from_slice(b"and then not that many bytes");
            h
        }
        // Frames that are each under the limit but over it together.
        5 => header(3, &[LIMITS.max_frame_size; 3]),
        // A body that is not msgpack, or not an array.
        6 => {
            let n = r.below(40);
            frame_bytes(&[r.bytes(n)])
        }
        7 => frame_bytes(&[rask::value::encode(&rand_value(r, 0)).unwrap()]),
        // Nested a million deep; then a claimed huge array with no items.
        8 => {
            let mut b = vec![0x91u8; 1_000_000];
            b.push(0xc0);
            frame_bytes(&[b])
        }
        9 => frame_bytes(&[vec![0xdd, 0xff, 0xff, 0xff, 0xff, 0x80]]),
        // A real message cut short (the connection then ends inside it).
        10 => {
            let mut b = survivable(r, role);
            let cut = 1 + r.below(b.len() - 1);
            b.truncate(cut);
            b
        }
        _ => {
            let mut b = survivable(r, role);
            flip_bits(r, &mut b);
            b
        }
    }
}

/// A `hello` that is refused, or that is not a `hello` at all.
fn bad_hello(r: &mut Rng, role: Role) -> Vec<u8> {
    let mut v = as_value(&Message::hello(role, "bad", None));
    match r.below(6) {
        0 => set_field(&mut v, "protocol", Value::Int(*r.pick(&[0, 2, 999, -1]))),
        1 => set_field(&mut v, "magic", Value::from("dask")),
        2 => set_field(&mut v, "role", Value::from(*r.pick(&["admin", "peer", ""]))),
        3 => mutate(r, &mut v, 0),
        4 => v = as_value(&template(r, role)),
        _ => set_field(&mut v, "protocol", rand_value(r, 2)),
    }
    frame_bytes(&[rask::value::encode(&Value::Array(vec![v])).unwrap()])
}

fn set_field(v: &mut Value, name: &str, to: Value) {
    if let Value::Map(fields) = v {
        for (k, val) in fields.iter_mut() {
            if k.as_str() == Some(name) {
                *val = to;
                return;
            }
        }
    }
}

/// The bytes of one connection and the number of frames they hold.
fn connection(r: &mut Rng, roles: &[Role]) -> (Vec<u8>, usize) {
    let role = *r.pick(roles);
    match r.below(20) {
        // No handshake at all: garbage first.
        0..=1 => (fatal(r, role), 1),
        // A refused or malformed hello.
        2 => (bad_hello(r, role), 1),
        // A good hello, many frames the receiver survives, then usually
        // one it does not.
        _ => {
            let mut out = Vec::new();
            let hello = Message::hello(role, &format!("junk-{}", r.below(1000)), None);
            out.extend(encode_batch(&[hello], vec![]).to_vec());
            if role == Role::Worker && r.chance(70) {
                // Register first (a worker's other messages are refused
                // until it does), with claims of any size.
                let mut reg = as_value(&Message::RegisterWorker {
                    address: "tcp://127.0.0.1:1".into(),
                    threads: 1,
                    functions: vec!["inc".into(), "nope".into()],
                    memory_limit: 0,
                    runtime: String::new(),
                });
                if r.chance(50) {
                    set_field(&mut reg, "threads", rand_int(r));
                }
                if r.chance(30) {
                    mutate(r, &mut reg, 0);
                }
                let reg = rask::value::encode(&Value::Array(vec![reg])).unwrap();
                out.extend(frame_bytes(&[reg]));
            }
            let n = 50 + r.below(400);
            for _ in 0..n {
                out.extend(survivable(r, role));
            }
            if r.chance(70) {
                out.extend(fatal(r, role));
                (out, n + 2)
            } else {
                (out, n + 1)
            }
        }
    }
}

/// Sends `bytes` on a new connection to `addr`, reads (and drops) whatever
/// comes back, half-closes, and waits until the other side closes.
async fn throw(addr: String, bytes: Vec<u8>) {
    let stream = TcpStream::connect(&addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = rd.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    });
    // The other side may close before reading everything: a failed write
    // is expected then.
    if wr.write_all(&bytes).await.is_ok() {
        let _ = wr.shutdown().await;
    }
    tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .expect("the server closes a connection whose peer half-closed")
        .unwrap();
}

/// Throws connections at `addr` until `min_frames` frames were sent, 16
/// connections at a time. Returns (frames, connections).
async fn bombard(addr: &str, seed: u64, roles: &[Role], min_frames: usize) -> (usize, usize) {
    let mut frames = 0;
    let mut conns = 0;
    let mut running = tokio::task::JoinSet::new();
    while frames < min_frames {
        let mut r = Rng(seed ^ (conns as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
        let (bytes, n) = connection(&mut r, roles);
        frames += n;
        conns += 1;
        if running.len() >= 16 {
            running.join_next().await.unwrap().unwrap();
        }
        running.spawn(throw(addr.to_string(), bytes));
    }
    while let Some(j) = running.join_next().await {
        j.unwrap();
    }
    (frames, conns)
}

/// How many frames the flood throws at the scheduler (`RASK_BAD_FRAMES`,
/// default 100,000; the data port gets a fifth as many):
/// `benches/scale.sh` runs it with a million.
fn flood_frames() -> usize {
    std::env::var("RASK_BAD_FRAMES")
        .ok()
        .map(|s| s.parse().expect("RASK_BAD_FRAMES: a number"))
        .unwrap_or(100_000)
}

fn seed() -> u64 {
    std::env::var("BAD_INPUT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_0fba_01a7)
}

/// Polls the scheduler's counts until `ok` holds (or 10 s pass).
fn settle(
    s: &SchedulerHandle,
    ok: impl Fn(&rask::scheduler::SchedulerStats) -> bool,
) -> rask::scheduler::SchedulerStats {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let st = s.stats().expect("the scheduler is running");
        if ok(&st) || Instant::now() > deadline {
            return st;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Panics anywhere in this process (a connection task's panic would
/// otherwise pass unnoticed: tokio drops it with the task).
static PANICS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn count_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            default(info)
        }));
    });
}

#[test]
fn a_flood_of_bad_frames_leaves_the_scheduler_and_worker_serving() {
    count_panics();
    let seed = seed();
    let s = Scheduler::start(SchedulerConfig {
        port: 0,
        limits: LIMITS,
        ..Default::default()
    })
    .unwrap();
    let worker = Worker::start(
        WorkerConfig {
            name: "the-worker".into(),
            threads: 1,
            limits: LIMITS,
            ..WorkerConfig::new(s.address())
        },
        Registry::new(),
    )
    .unwrap();
    let sched_addr = s.address().strip_prefix("tcp://").unwrap().to_string();
    let data_addr = worker
        .data_address()
        .strip_prefix("tcp://")
        .unwrap()
        .to_string();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let t0 = Instant::now();
    let want = flood_frames();
    let (frames, conns) = rt.block_on(bombard(
        &sched_addr,
        seed,
        &[Role::Client, Role::Worker, Role::Peer],
        want,
    ));
    let (dframes, dconns) = rt.block_on(bombard(
        &data_addr,
        seed.wrapping_add(1),
        &[Role::Peer, Role::Client],
        want / 5,
    ));
    eprintln!(
        "seed {seed:#x}: {frames} frames on {conns} connections to the scheduler, \
         {dframes} frames on {dconns} connections to the data port, in {:?}",
        t0.elapsed()
    );
    assert!(frames >= want && dframes >= want / 5);
    assert_eq!(
        PANICS.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "nothing panicked"
    );

    // Every junk connection is gone; the worker is still there.
    let st = settle(&s, |st| {
        st.connections == 1 && st.counts.workers == 1 && st.counts.clients == 0
    });
    assert_eq!(st.connections, 1, "{st:?}");
    assert_eq!(st.counts.workers, 1, "{st:?}");
    assert_eq!(st.counts.clients, 0, "{st:?}");

    // A real client computes the classic graph on the one worker.
    let client = Client::connect(s.address(), ClientConfig::default()).unwrap();
    let (graph, _) = Graph::from_msgpack(&hex(CLASSIC)).unwrap();
    let futures = client.compute(&graph, &["z"]).unwrap();
    let z = futures[0].result(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(z, Value::from(13));
    let workers = client.workers().unwrap();
    assert_eq!(workers.len(), 1);
    assert_eq!(workers[0].name, "the-worker");
    let b = client.submit("inc", vec![41i64.into()]).unwrap();
    assert_eq!(client.gather(&[b]).unwrap(), vec![Value::from(42)]);
    client.close();
    // The data port still serves a well-behaved peer.
    rt.block_on(async {
        let (mut inbox, outbox, _) = rask::protocol::conn::connect(
            worker.data_address(),
            Role::Peer,
            "good-peer",
            None,
            LIMITS,
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        outbox.send(Message::GetData {
            id: 7,
            keys: vec!["nothing-here".into()],
        });
        let r = tokio::time::timeout(Duration::from_secs(10), inbox.recv())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        match r.messages[0].as_ref().unwrap() {
            Message::Data { id, missing, .. } => {
                assert_eq!(*id, 7);
                assert_eq!(missing, &vec!["nothing-here".to_string()]);
            }
            m => panic!("{m:?}"),
        }
    });
    drop(worker);
    s.shutdown();
}

// ------------------------------------------------------------ limits

const T: Duration = Duration::from_secs(10);

fn hostport(addr: &str) -> String {
    addr.strip_prefix("tcp://").unwrap().to_string()
}

/// Reads until the other side closes; returns the messages it sent first.
async fn until_closed(s: &mut TcpStream) -> Vec<Message> {
    let mut got = Vec::new();
    loop {
        match tokio::time::timeout(T, WireMessage::read_from(s, &Limits::default()))
            .await
            .expect("the server closes the connection in time")
        {
            Ok(Some(w)) => {
                for m in rask::protocol::decode_batch(&w).unwrap() {
                    got.push(m.unwrap());
                }
            }
            Ok(None) | Err(_) => return got,
        }
    }
}

/// A raw connection that said a good hello and read the welcome.
async fn handshaken(addr: &str, role: Role) -> TcpStream {
    let mut s = TcpStream::connect(hostport(addr)).await.unwrap();
    encode_batch(&[Message::hello(role, "raw", None)], vec![])
        .write_to(&mut s)
        .await
        .unwrap();
    let w = WireMessage::read_from(&mut s, &Limits::default())
        .await
        .unwrap()
        .unwrap();
    let msgs = rask::protocol::decode_batch(&w).unwrap();
    assert!(matches!(msgs[0], Ok(Message::Welcome { .. })), "{msgs:?}");
    s
}

async fn good_client(addr: &str) -> (rask::protocol::conn::Inbox, rask::protocol::conn::Outbox) {
    let (i, o, _) =
        rask::protocol::conn::connect(addr, Role::Client, "good", None, Limits::default(), T)
            .await
            .unwrap();
    (i, o)
}

/// The client still gets answers.
async fn still_served(
    inbox: &mut rask::protocol::conn::Inbox,
    outbox: &rask::protocol::conn::Outbox,
    id: u64,
) {
    outbox.send(Message::GetWorkers { id });
    let r = tokio::time::timeout(T, inbox.recv())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        matches!(r.messages[0], Ok(Message::WorkersReply { id: got, .. }) if got == id),
        "{:?}",
        r.messages
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_that_never_finishes_is_closed_after_the_timeout() {
    let s = Scheduler::start(SchedulerConfig {
        port: 0,
        handshake_timeout: Duration::from_millis(200),
        ..Default::default()
    })
    .unwrap();
    let worker = Worker::start_async(
        WorkerConfig {
            threads: 1,
            handshake_timeout: Duration::from_millis(200),
            ..WorkerConfig::new(s.address())
        },
        Registry::new(),
    )
    .await
    .unwrap();
    for addr in [s.address().to_string(), worker.data_address().to_string()] {
        // Silent, and half a hello: both closed, without a welcome.
        let mut silent = TcpStream::connect(hostport(&addr)).await.unwrap();
        let mut half = TcpStream::connect(hostport(&addr)).await.unwrap();
        let hello = encode_batch(&[Message::hello(Role::Peer, "slow", None)], vec![]).to_vec();
        half.write_all(&hello[..hello.len() / 2]).await.unwrap();
        let t0 = Instant::now();
        for s in [&mut silent, &mut half] {
            let got = until_closed(s).await;
            assert!(
                matches!(&got[..], [Message::Error { code: Some(c), .. }] if c == "handshake"),
                "{got:?}"
            );
        }
        assert!(
            t0.elapsed() >= Duration::from_millis(150),
            "{:?}",
            t0.elapsed()
        );
    }
    // The scheduler kept its worker.
    assert_eq!(s.stats_async().await.unwrap().counts.workers, 1);
    worker.stop();
    s.shutdown_async().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_or_message_over_the_limit_closes_only_that_connection() {
    let limits = Limits {
        max_frame_size: 1024,
        max_message_size: 1536,
        ..Limits::default()
    };
    let s = Scheduler::start(SchedulerConfig {
        port: 0,
        limits,
        ..Default::default()
    })
    .unwrap();
    let (mut ci, co) = good_client(s.address()).await;
    still_served(&mut ci, &co, 1).await;

    // One frame over max_frame_size, with its bytes really sent.
    let mut big = handshaken(s.address(), Role::Client).await;
    let body =
        rask::value::encode(&Value::Array(vec![Value::from("x".repeat(1100).as_str())])).unwrap();
    assert!(body.len() > 1024);
    let _ = big.write_all(&frame_bytes(&[body])).await;
    until_closed(&mut big).await;
    still_served(&mut ci, &co, 2).await;

    // Two frames under it, over max_message_size together.
    let mut two = handshaken(s.address(), Role::Worker).await;
    let _ = two
        .write_all(&frame_bytes(&[
            vec![0x90],
            vec![0u8; 1000],
            vec![0u8; 1000],
        ]))
        .await;
    until_closed(&mut two).await;
    still_served(&mut ci, &co, 3).await;

    // A length prefix of 2^63 before any hello.
    let mut huge = TcpStream::connect(hostport(s.address())).await.unwrap();
    let mut h = 1u32.to_le_bytes().to_vec();
    h.extend_from_slice(&(1u64 << 63).to_le_bytes());
    huge.write_all(&h).await.unwrap();
    until_closed(&mut huge).await;
    still_served(&mut ci, &co, 4).await;

    // Just under the limit is fine.
    let id_msg = Message::GetWorkers { id: 5 };
    let w = encode_batch(&[id_msg], vec![Bytes::from(vec![0u8; 1000])]);
    assert!(w.frames.iter().map(|f| f.len()).sum::<usize>() <= 1536);
    let mut ok = handshaken(s.address(), Role::Client).await;
    w.write_to(&mut ok).await.unwrap();
    let r = WireMessage::read_from(&mut ok, &Limits::default())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        rask::protocol::decode_batch(&r).unwrap()[0],
        Ok(Message::WorkersReply { id: 5, .. })
    ));
    s.shutdown_async().await;
}

/// Connects and returns the messages of a refusal, or `None` when the
/// connection was taken (a welcome came).
async fn try_connect(addr: &str) -> Result<TcpStream, Vec<Message>> {
    let mut s = TcpStream::connect(hostport(addr)).await.unwrap();
    encode_batch(&[Message::hello(Role::Peer, "n", None)], vec![])
        .write_to(&mut s)
        .await
        .unwrap();
    let first = tokio::time::timeout(T, WireMessage::read_from(&mut s, &Limits::default()))
        .await
        .unwrap();
    let msgs: Vec<Message> = match first {
        Ok(Some(w)) => rask::protocol::decode_batch(&w)
            .unwrap()
            .into_iter()
            .map(|m| m.unwrap())
            .collect(),
        other => panic!("no answer to hello: {other:?}"),
    };
    if matches!(msgs[0], Message::Welcome { .. }) {
        Ok(s)
    } else {
        Err(msgs)
    }
}

/// Retries until a connection is taken again (the server frees the slot
/// once it has seen the close), failing after 10 s.
async fn connect_again(addr: &str) -> TcpStream {
    let deadline = Instant::now() + T;
    loop {
        match try_connect(addr).await {
            Ok(s) => return s,
            Err(m) if Instant::now() < deadline => {
                assert!(is_too_many(&m), "{m:?}");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(m) => panic!("still refused: {m:?}"),
        }
    }
}

fn is_too_many(msgs: &[Message]) -> bool {
    matches!(&msgs[0], Message::Error { code: Some(c), id: None, .. } if c == "too-many-connections")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_maximum_are_refused_until_one_closes() {
    let s = Scheduler::start(SchedulerConfig {
        port: 0,
        max_connections: 3,
        ..Default::default()
    })
    .unwrap();
    let worker = Worker::start_async(
        WorkerConfig {
            threads: 1,
            max_connections: 2,
            ..WorkerConfig::new(s.address())
        },
        Registry::new(),
    )
    .await
    .unwrap();
    // The scheduler: the worker, a client, and a connection still in its
    // handshake fill it.
    let (mut ci, co) = good_client(s.address()).await;
    let pending = TcpStream::connect(hostport(s.address())).await.unwrap();
    let mut extra = TcpStream::connect(hostport(s.address())).await.unwrap();
    let refused = until_closed(&mut extra).await;
    assert!(is_too_many(&refused), "{refused:?}");
    still_served(&mut ci, &co, 1).await;
    drop(pending);
    // A client connection (role client) is taken again.
    let deadline = Instant::now() + T;
    let (mut ci2, co2) = loop {
        match rask::protocol::conn::connect(
            s.address(),
            Role::Client,
            "again",
            None,
            Limits::default(),
            T,
        )
        .await
        {
            Ok((i, o, _)) => break (i, o),
            Err(e) if Instant::now() < deadline => {
                assert!(e.0.contains("too many connections"), "{e}");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(e) => panic!("{e}"),
        }
    };
    still_served(&mut ci2, &co2, 2).await;
    assert_eq!(s.stats_async().await.unwrap().counts.workers, 1);

    // The worker's data port: two peers fill it.
    let data = worker.data_address().to_string();
    let first = try_connect(&data).await.unwrap();
    let _second = try_connect(&data).await.unwrap();
    let third = try_connect(&data).await.unwrap_err();
    assert!(is_too_many(&third), "{third:?}");
    drop(first);
    let _again = connect_again(&data).await;
    worker.stop();
    s.shutdown_async().await;
}

#[test]
fn the_binaries_expose_the_limits() {
    for bin in [
        env!("CARGO_BIN_EXE_rask-scheduler"),
        env!("CARGO_BIN_EXE_rask-worker"),
    ] {
        let out = std::process::Command::new(bin)
            .arg("--help")
            .output()
            .unwrap();
        let help = String::from_utf8(out.stdout).unwrap();
        for opt in [
            "--max-frame-size",
            "--max-message-size",
            "--handshake-timeout",
            "--max-connections",
        ] {
            assert!(help.contains(opt), "{bin} --help lacks {opt}: {help}");
        }
    }
}

//! Checks the msgpack test vectors in tests/vectors/ against this
//! implementation: each file holds one message as the hex of its msgpack
//! encoding. Every vector must decode to the sample below and re-encode to
//! the same bytes. `RASK_BLESS=1 cargo test --test protocol_vectors`
//! rewrites the files from the samples.

use rask::protocol::messages::{Item, Role, WorkerInfo};
use rask::protocol::{decode_batch, encode_batch, Message, Packed, WireMessage};
use serde_bytes::ByteBuf;
use std::collections::BTreeMap;
use std::path::PathBuf;

fn map<V: Clone>(entries: &[(&str, V)]) -> BTreeMap<String, V> {
    entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn samples() -> Vec<Message> {
    let s = |x: &str| x.to_string();
    let classic = hex("82a57461736b7385a16181a576616c756501a17881a576616c75650aa16282a466756e63a3696e63a4617267739181a3726566a161a17982a466756e63a3696e63a4617267739181a3726566a178a17a82a466756e63a3616464a4617267739281a3726566a16281a3726566a179a76f75747075747391a17a");
    vec![
        Message::hello(Role::Client, "client-1", None),
        Message::hello(Role::Worker, "w1", Some(s("s3cret"))),
        Message::Welcome {
            protocol: 1,
            id: 7,
            name: s("scheduler"),
            dashboard: None,
        },
        Message::Welcome {
            protocol: 1,
            id: 8,
            name: s("scheduler"),
            dashboard: Some(s("http://127.0.0.1:8787/status")),
        },
        Message::Error {
            message: s("protocol version mismatch"),
            code: Some(s("version-mismatch")),
            id: None,
        },
        Message::Error {
            message: s("unknown key 'q'"),
            code: None,
            id: Some(3),
        },
        Message::RegisterWorker {
            address: s("tcp://127.0.0.1:40001"),
            threads: 2,
            functions: vec![s("add"), s("inc"), s("my_c_func")],
            memory_limit: 1 << 30,
            runtime: String::new(),
        },
        // A worker that names its language/runtime (for the dashboard).
        Message::RegisterWorker {
            address: s("tcp://127.0.0.1:40002"),
            threads: 4,
            functions: vec![s("add"), s("clean"), s("code:python-3.11"), s("inc")],
            memory_limit: 0,
            runtime: s("python-3.11"),
        },
        Message::Heartbeat {
            executing: 1,
            memory: 1024,
            spilled: 4096,
            process: 50_000_000,
            paused: true,
            cpu: None,
        },
        // With the process's CPU use (percent of one CPU).
        Message::Heartbeat {
            executing: 2,
            memory: 1024,
            spilled: 0,
            process: 50_000_000,
            paused: false,
            cpu: Some(150.5),
        },
        Message::TaskFinished {
            key: s("b"),
            nbytes: 8,
            duration: 0.25,
            value: Some(ByteBuf::from(vec![0x02])),
        },
        Message::TaskFinished {
            key: s("big"),
            nbytes: 100_000_000,
            duration: 1.5,
            value: None,
        },
        Message::TaskErred {
            key: s("b"),
            message: s("inc: expected a number, got str"),
            exception: String::new(),
            traceback: String::new(),
        },
        // With the exception's type name and the remote traceback.
        Message::TaskErred {
            key: s("c"),
            message: s("parse: ValueError: bad input 42"),
            exception: s("ValueError"),
            traceback: s("Traceback (most recent call last):\n  File \"etl.py\", line 7, in parse\nValueError: bad input 42\n"),
        },
        Message::AddKeys {
            keys: vec![s("a")],
            nbytes: vec![8],
            from: String::new(),
            duration: None,
        },
        // Fetched from a peer: where from and how long it took.
        Message::AddKeys {
            keys: vec![s("a"), s("b")],
            nbytes: vec![8, 1_000_000],
            from: s("tcp://127.0.0.1:40002"),
            duration: Some(0.0125),
        },
        Message::MissingData {
            key: s("z"),
            dependency: s("b"),
            worker: s("tcp://127.0.0.1:40002"),
            reason: String::new(),
            attempt: None,
        },
        Message::MissingData {
            key: s("z"),
            dependency: s("b"),
            worker: s("tcp://127.0.0.1:40002"),
            reason: s("unreachable"),
            attempt: Some(3),
        },
        Message::ComputeTask {
            key: s("z"),
            func: s("add"),
            args: ByteBuf::from(hex("9281a3726566a16281a3726566a179")),
            priority: 2,
            who_has: map(&[("b", vec![s("tcp://127.0.0.1:40001")]), ("y", vec![])]),
        },
        // A shipped function: `code:<runtime>`, its bytes the value of the
        // first argument's key (docs/protocol.md, "Shipped functions").
        Message::ComputeTask {
            key: s("lambda-1"),
            func: s("code:python-3.11"),
            args: ByteBuf::from(hex(
                "9281a3726566b5636f64653a707974686f6e2d332e31312d3061316229",
            )),
            priority: 3,
            who_has: map(&[("code:python-3.11-0a1b", vec![s("tcp://127.0.0.1:40001")])]),
        },
        Message::FreeKeys {
            keys: vec![s("b"), s("y")],
        },
        Message::UpdateGraph {
            graph: ByteBuf::from(classic.clone()),
            keys: vec![s("z")],
            retries: 0,
            from_task: false,
            id: None,
        },
        // From inside a running task (a task's client).
        Message::UpdateGraph {
            graph: ByteBuf::from(classic),
            keys: vec![s("z")],
            retries: 0,
            from_task: true,
            id: None,
        },
        Message::ReleaseKeys {
            keys: vec![s("z")],
            id: None,
        },
        Message::CancelKeys {
            keys: vec![s("z")],
            id: None,
        },
        Message::WhoHas {
            id: 1,
            keys: vec![s("z")],
        },
        Message::GetWorkers { id: 2 },
        Message::GetInfo { id: 3 },
        Message::Scattered {
            who_has: map(&[("data-1", vec![1u64])]),
            nbytes: map(&[("data-1", 100u64)]),
            id: None,
        },
        Message::KeyInMemory {
            key: s("z"),
            nbytes: 8,
            workers: vec![s("tcp://127.0.0.1:40001")],
            value: Some(ByteBuf::from(vec![13])),
        },
        Message::KeyErred {
            key: s("z"),
            failed: s("b"),
            func: s("inc"),
            worker: s("tcp://127.0.0.1:40001"),
            message: s("boom"),
            exception: String::new(),
            traceback: String::new(),
        },
        Message::KeyErred {
            key: s("lambda-1"),
            failed: s("lambda-1"),
            func: s("code:python-3.12"),
            worker: s(""),
            message: s("no connected worker runs shipped python-3.12 functions (runtimes offered: python-3.11). A worker runs shipped code only when started with --allow-code (Python: allow_code=True; Julia: allow_code=true), and on a non-loopback scheduler address only with a token or TLS"),
            exception: String::new(),
            traceback: String::new(),
        },
        Message::KeyErred {
            key: s("c"),
            failed: s("c"),
            func: s("parse"),
            worker: s("tcp://127.0.0.1:40001"),
            message: s("parse: ValueError: bad input 42"),
            exception: s("ValueError"),
            traceback: s("Traceback (most recent call last):\n  File \"etl.py\", line 7, in parse\nValueError: bad input 42\n"),
        },
        Message::KeyCancelled { key: s("z") },
        Message::Warning {
            code: s("no-worker"),
            message: s("no connected worker offers the function 'incc' (needed by 1 of your keys, such as 'y'); the tasks wait for a worker that does"),
            keys: vec![s("y")],
        },
        Message::WhoHasReply {
            id: 1,
            who_has: map(&[("z", vec![s("tcp://127.0.0.1:40001")])]),
        },
        Message::WorkersReply {
            id: 2,
            workers: vec![WorkerInfo {
                id: 1,
                name: s("w1"),
                address: s("tcp://127.0.0.1:40001"),
                threads: 2,
                functions: vec![s("inc")],
                memory_limit: 1 << 30,
                memory: 1024,
                spilled: 4096,
                process: 50_000_000,
                paused: false,
                runtime: String::new(),
                cpu: None,
            }],
        },
        Message::WorkersReply {
            id: 2,
            workers: vec![WorkerInfo {
                id: 2,
                name: s("py-1"),
                address: s("tcp://127.0.0.1:40002"),
                threads: 4,
                functions: vec![s("clean")],
                memory_limit: 0,
                memory: 2048,
                spilled: 0,
                process: 60_000_000,
                paused: false,
                runtime: s("python-3.11"),
                cpu: Some(98.0),
            }],
        },
        Message::InfoReply {
            id: 3,
            tasks: 5,
            states: map(&[("memory", 3u64), ("processing", 2u64)]),
            workers: 1,
            clients: 1,
            managed: 1024,
            spilled: 4096,
            process: 50_000_000,
            memory_limit: 1 << 30,
            paused: 0,
        },
        Message::GetData {
            id: 9,
            keys: vec![s("z"), s("gone")],
        },
        Message::Data {
            id: 9,
            data: map(&[(
                "z",
                Packed {
                    frame: 1,
                    kind: s("msgpack"),
                    dtype: None,
                    shape: None,
                    ..Packed::default()
                },
            )]),
            missing: vec![s("gone")],
            unsendable: BTreeMap::new(),
        },
        // A value the worker holds but cannot send (its host could not
        // serialize it): listed in `missing` too.
        Message::Data {
            id: 9,
            data: BTreeMap::new(),
            missing: vec![s("lock")],
            unsendable: map(&[("lock", s("TypeError: cannot pickle '_thread.lock' object"))]),
        },
        // On a worker's Unix socket (same host): two values in the memory
        // file passed as the wire message's first descriptor, one in a
        // frame (docs/protocol.md, "Shared memory on one host").
        Message::Data {
            id: 9,
            data: map(&[
                (
                    "big",
                    Packed {
                        kind: s("tensor"),
                        dtype: Some(10),
                        shape: Some(vec![131072, 2]),
                        fd: Some(0),
                        offset: Some(0),
                        len: Some(2097152),
                        ..Packed::default()
                    },
                ),
                (
                    "raw",
                    Packed {
                        kind: s("bin"),
                        fd: Some(0),
                        offset: Some(2097152),
                        len: Some(1048576),
                        ..Packed::default()
                    },
                ),
                (
                    "small",
                    Packed {
                        frame: 1,
                        kind: s("bin"),
                        ..Packed::default()
                    },
                ),
            ]),
            missing: vec![],
            unsendable: BTreeMap::new(),
        },
        Message::PutData {
            id: 10,
            data: map(&[(
                "t",
                Packed {
                    frame: 1,
                    kind: s("tensor"),
                    dtype: Some(10),
                    shape: Some(vec![2, 3]),
                    ..Packed::default()
                },
            )]),
        },
        Message::DataStored {
            id: 10,
            nbytes: map(&[("t", 48u64)]),
        },
        Message::Close {
            reason: s("shutting down"),
        },
        Message::RetireWorker {
            reason: s("SIGTERM received"),
        },
        Message::Reschedule {
            keys: vec![s("c"), s("d")],
        },
        Message::AcquireReplicas {
            who_has: map(&[("z", vec![s("tcp://127.0.0.1:40001")])]),
        },
        Message::AcquireFailed {
            keys: vec![s("z")],
            message: s("no holder gave it"),
        },
        Message::LongRunning { key: s("fib-20") },
        Message::Retire {
            reason: s("a client asked to retire this worker"),
        },
        Message::RetireWorkers {
            id: 11,
            workers: vec![s("tcp://127.0.0.1:40001"), s("w2")],
        },
        Message::RetireWorkersReply {
            id: 11,
            workers: vec![s("tcp://127.0.0.1:40001")],
            moved: map(&[("z", s("tcp://127.0.0.1:40002"))]),
            lost: vec![],
        },
        Message::Replicate {
            id: 12,
            keys: vec![s("z"), s("y")],
            n: 2,
        },
        Message::ReplicateReply {
            id: 12,
            copied: 1,
            removed: 0,
            short: vec![s("y")],
        },
        Message::Rebalance {
            id: 13,
            keys: vec![],
        },
        Message::RebalanceReply {
            id: 13,
            moved: 2,
            bytes: 200,
        },
        // Coordination (a value item is msgpack: 0xc2 is `false`, 0x07 is 7).
        Message::VariableSet {
            id: 20,
            name: s("stop"),
            item: Item::value(vec![0xc2]),
        },
        Message::VariableGet {
            id: 21,
            name: s("stop"),
            timeout: Some(0.5),
        },
        Message::VariableDelete {
            id: 22,
            name: s("stop"),
        },
        Message::QueueCreate {
            id: 23,
            name: s("jobs"),
            maxsize: 10,
        },
        Message::QueuePut {
            id: 24,
            name: s("jobs"),
            item: Item::key("inc-1"),
            timeout: None,
        },
        Message::QueueGet {
            id: 25,
            name: s("jobs"),
            timeout: Some(1.0),
        },
        Message::QueueSize {
            id: 26,
            name: s("jobs"),
        },
        Message::LeaseAcquire {
            id: 27,
            name: s("counter-lock"),
            max_leases: 1,
            timeout: None,
        },
        Message::LeaseRelease {
            id: 28,
            name: s("counter-lock"),
            lease: 27,
        },
        Message::EventSet {
            id: 29,
            name: s("ready"),
        },
        Message::EventClear {
            id: 30,
            name: s("ready"),
        },
        Message::EventWait {
            id: 31,
            name: s("ready"),
            timeout: Some(0.0),
        },
        Message::PublishDataset {
            id: 32,
            name: s("training"),
            item: Item::key("inc-1"),
            replace: false,
        },
        Message::UnpublishDataset {
            id: 33,
            name: s("training"),
        },
        Message::GetDataset {
            id: 34,
            name: s("training"),
        },
        Message::ListDatasets { id: 35 },
        Message::FireAndForget {
            keys: vec![s("inc-1")],
            id: None,
        },
        Message::Subscribe {
            id: Some(36),
            name: s("news"),
        },
        Message::Unsubscribe {
            name: s("news"),
            id: None,
        },
        Message::Publish {
            name: s("news"),
            value: ByteBuf::from(vec![0x07]),
            id: None,
        },
        Message::TopicMessage {
            name: s("news"),
            value: ByteBuf::from(vec![0x07]),
        },
        Message::CoordReply {
            id: 25,
            item: Some(Item::key("inc-1")),
            flag: None,
            size: None,
            names: None,
        },
        Message::CoordReply {
            id: 31,
            item: None,
            flag: Some(false),
            size: None,
            names: None,
        },
        Message::CoordReply {
            id: 35,
            item: None,
            flag: None,
            size: None,
            names: Some(vec![s("training")]),
        },
        // Request ids on the messages that had none (docs/protocol.md,
        // "Request ids"): the same messages with an `id`, and the errors
        // echoing one.
        Message::UpdateGraph {
            graph: ByteBuf::from(hex(
                "82a57461736b7381a17a82a466756e63a3696e63a4617267739181a3726566a171a76f75747075747391a17a",
            )),
            keys: vec![s("z")],
            retries: 0,
            from_task: false,
            id: Some(40),
        },
        Message::Error {
            message: s("key 'z' depends on 'q', which is not in the graph"),
            code: Some(s("bad-graph")),
            id: Some(40),
        },
        Message::Error {
            message: s("message 'get-workers': invalid type: string \"x\", expected u64"),
            code: Some(s("bad-message")),
            id: Some(41),
        },
        Message::Scattered {
            who_has: map(&[("data-1", vec![1u64])]),
            nbytes: map(&[("data-1", 100u64)]),
            id: Some(42),
        },
        Message::CancelKeys {
            keys: vec![s("z")],
            id: Some(43),
        },
        Message::ReleaseKeys {
            keys: vec![s("z")],
            id: Some(44),
        },
        Message::FireAndForget {
            keys: vec![s("inc-1")],
            id: Some(45),
        },
        Message::Publish {
            name: s("news"),
            value: ByteBuf::from(vec![0x07]),
            id: Some(46),
        },
        Message::Unsubscribe {
            name: s("news"),
            id: Some(47),
        },
    ]
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

/// File name of the i-th sample: op, plus a counter when an op repeats.
fn names(msgs: &[Message]) -> Vec<String> {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    msgs.iter()
        .map(|m| {
            let n = seen.entry(m.op()).or_insert(0);
            *n += 1;
            if *n == 1 {
                format!("{}.hex", m.op())
            } else {
                format!("{}-{}.hex", m.op(), n)
            }
        })
        .collect()
}

#[test]
fn every_vector_decodes_and_reencodes_identically() {
    let msgs = samples();
    let bless = std::env::var("RASK_BLESS").is_ok_and(|v| v == "1");
    let mut ops = std::collections::BTreeSet::new();
    for (m, name) in msgs.iter().zip(names(&msgs)) {
        ops.insert(m.op());
        let path = dir().join(&name);
        let encoded = rmp_serde::to_vec_named(m).unwrap();
        if bless {
            std::fs::write(&path, to_hex(&encoded) + "\n").unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run with RASK_BLESS=1 to create it)",
                path.display()
            )
        });
        let bytes = hex(text.trim());
        let decoded: Message =
            rmp_serde::from_slice(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(&decoded, m, "{name} decodes to the sample");
        assert_eq!(
            rmp_serde::to_vec_named(&decoded).unwrap(),
            bytes,
            "{name} re-encodes to the same bytes"
        );
        // And through the batch codec.
        let w = encode_batch(std::slice::from_ref(m), vec![]);
        let back = decode_batch(&w).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].as_ref().unwrap(), m);
    }
    // Every op has a vector.
    assert_eq!(ops.len(), 64, "a message type without a vector: {ops:?}");
}

/// Each message belongs to the direction of its sender (`error` and
/// `close` to every direction, `hello`/`welcome` to the handshake only),
/// and a direction type encodes and decodes to the same bytes as
/// `Message`, so the vectors hold for both.
#[test]
fn every_message_has_its_direction_and_the_same_bytes_there() {
    use rask::protocol::{
        ClientMessage, DataReply, DataRequest, SchedulerMessage, SchedulerToClient,
        SchedulerToWorker, WorkerMessage,
    };
    use serde::{de::DeserializeOwned, Serialize};
    fn check<D>(m: &Message) -> usize
    where
        D: TryFrom<Message, Error = Message> + Into<Message> + Serialize + DeserializeOwned,
    {
        let Ok(d) = D::try_from(m.clone()) else {
            return 0;
        };
        let bytes = rmp_serde::to_vec_named(m).unwrap();
        assert_eq!(rmp_serde::to_vec_named(&d).unwrap(), bytes, "{}", m.op());
        let back: D = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(&back.into(), m, "{}", m.op());
        1
    }
    let mut ops = std::collections::BTreeSet::new();
    for m in samples() {
        let n = check::<WorkerMessage>(&m)
            + check::<ClientMessage>(&m)
            + check::<SchedulerMessage>(&m)
            + check::<DataRequest>(&m)
            + check::<DataReply>(&m);
        // What the scheduler sends is in its union and in exactly one of
        // the two receivers' types.
        let to_worker = check::<SchedulerToWorker>(&m);
        let to_client = check::<SchedulerToClient>(&m);
        let want = match m.op() {
            "error" | "close" => 5,
            "hello" | "welcome" => 0,
            _ => 1,
        };
        assert_eq!(n, want, "'{}' is in {n} directions", m.op());
        let scheduler_sends = SchedulerMessage::try_from(m.clone()).is_ok();
        match m.op() {
            "error" | "close" => assert_eq!((to_worker, to_client), (1, 1)),
            _ if scheduler_sends => assert_eq!(to_worker + to_client, 1, "{}", m.op()),
            _ => assert_eq!((to_worker, to_client), (0, 0), "{}", m.op()),
        }
        ops.insert(m.op());
    }
    // Every op is in a direction type, or the handshake's.
    let mut typed: std::collections::BTreeSet<&str> = [
        WorkerMessage::OPS,
        ClientMessage::OPS,
        SchedulerMessage::OPS,
        DataRequest::OPS,
        DataReply::OPS,
    ]
    .concat()
    .into_iter()
    .collect();
    typed.extend(["hello", "welcome"]);
    assert_eq!(typed, Message::OPS.iter().copied().collect());
    assert_eq!(ops, typed, "a sample for every op");
    // A role's type refuses another role's message.
    assert!(WorkerMessage::try_from(Message::GetWorkers { id: 1 }).is_err());
    assert!(ClientMessage::try_from(Message::FreeKeys { keys: vec![] }).is_err());
    assert!(DataRequest::try_from(Message::GetInfo { id: 1 }).is_err());
    assert!(SchedulerToWorker::try_from(Message::WorkersReply {
        id: 1,
        workers: vec![]
    })
    .is_err());
    assert!(SchedulerToClient::try_from(Message::FreeKeys { keys: vec![] }).is_err());
    assert!(DataReply::try_from(Message::GetData {
        id: 1,
        keys: vec![]
    })
    .is_err());
    // The union of the two is what the scheduler sends.
    let mut union: Vec<&str> = [SchedulerToWorker::OPS, SchedulerToClient::OPS].concat();
    union.sort();
    union.dedup();
    let mut all = SchedulerMessage::OPS.to_vec();
    all.sort();
    assert_eq!(union, all);
}

/// A receiver narrows what arrives to its direction: a message of another
/// direction is a `bad-message` naming its op and echoing its id, like one
/// that did not decode.
#[test]
fn narrowing_refuses_another_directions_message_with_its_id() {
    use rask::protocol::{narrow, BadMessage, DataRequest, SchedulerToWorker};
    let m = narrow::<DataRequest>(Ok(Message::GetWorkers { id: 6 }), "a data port takes");
    let e = m.unwrap_err();
    assert_eq!(e.id, Some(6));
    assert_eq!(
        e.message,
        "'get-workers' is not a message a data port takes"
    );
    match e.reply() {
        Message::Error { code, id, .. } => {
            assert_eq!(code.as_deref(), Some("bad-message"));
            assert_eq!(id, Some(6));
        }
        m => panic!("{m:?}"),
    }
    let e = narrow::<SchedulerToWorker>(Ok(Message::KeyCancelled { key: "k".into() }), "w")
        .unwrap_err();
    assert_eq!(e.id, None);
    let bad = BadMessage {
        message: "x".into(),
        id: Some(3),
    };
    assert_eq!(narrow::<DataRequest>(Err(bad.clone()), "p"), Err(bad));
    assert!(matches!(
        narrow::<DataRequest>(
            Ok(Message::GetData {
                id: 1,
                keys: vec![]
            }),
            "p"
        ),
        Ok(DataRequest::GetData { id: 1, .. })
    ));
}

#[test]
fn unknown_ops_and_bad_fields_fail_alone_within_a_batch() {
    use rask::value::{encode, Value};
    let good = rmp_serde::to_vec_named(&Message::GetWorkers { id: 1 }).unwrap();
    let good = rask::value::decode(&good).unwrap();
    let unknown = Value::Map(vec![(Value::from("op"), Value::from("frobnicate"))]);
    let bad_field = Value::Map(vec![
        (Value::from("op"), Value::from("get-workers")),
        (Value::from("id"), Value::from("x")),
    ]);
    let extra = Value::Map(vec![
        (Value::from("op"), Value::from("get-workers")),
        (Value::from("id"), Value::Int(5)),
        (Value::from("future_field"), Value::Nil),
    ]);
    // Bad messages whose id reads as a uint: the error echoes it.
    let unknown_with_id = Value::Map(vec![
        (Value::from("op"), Value::from("frobnicate")),
        (Value::from("id"), Value::Int(9)),
    ]);
    let bad_keys_with_id = Value::Map(vec![
        (Value::from("op"), Value::from("who-has")),
        (Value::from("id"), Value::Int(10)),
        (Value::from("keys"), Value::Int(1)),
    ]);
    let body = encode(&Value::Array(vec![
        good,
        unknown,
        bad_field,
        extra,
        unknown_with_id,
        bad_keys_with_id,
    ]))
    .unwrap();
    let w = WireMessage {
        frames: vec![body.into()],
    };
    let out = decode_batch(&w).unwrap();
    let ids: Vec<_> = out[1..]
        .iter()
        .map(|m| m.as_ref().err().map(|e| e.id))
        .collect();
    assert_eq!(
        ids,
        [Some(None), Some(None), None, Some(Some(9)), Some(Some(10))]
    );
    let reply = out[5].as_ref().unwrap_err().reply();
    assert!(
        matches!(&reply, Message::Error { code: Some(c), id: Some(10), message } if c == "bad-message" && message.contains("'who-has'")),
        "{reply:?}"
    );
    assert_eq!(out[0].as_ref().unwrap(), &Message::GetWorkers { id: 1 });
    let e1 = out[1].as_ref().unwrap_err().to_string();
    assert!(e1.contains("'frobnicate'"), "{e1}");
    let e2 = out[2].as_ref().unwrap_err().to_string();
    assert!(e2.contains("'get-workers'"), "{e2}");
    assert_eq!(
        out[3].as_ref().unwrap(),
        &Message::GetWorkers { id: 5 },
        "unknown fields are ignored"
    );
    // A body that is not an array of messages is unusable as a whole.
    for body in [vec![0xc1u8], encode(&Value::Int(1)).unwrap()] {
        assert!(decode_batch(&WireMessage {
            frames: vec![body.into()]
        })
        .is_err());
    }
}

#[test]
fn hello_checks() {
    use rask::protocol::messages::check_hello;
    assert_eq!(
        check_hello(&Message::hello(Role::Peer, "p", None))
            .unwrap()
            .0,
        Role::Peer
    );
    let wrong = Message::Hello {
        magic: "rask".into(),
        protocol: 99,
        role: Role::Client,
        name: "c".into(),
        token: None,
    };
    match check_hello(&wrong).unwrap_err() {
        Message::Error { message, code, .. } => {
            assert_eq!(code.as_deref(), Some("version-mismatch"));
            assert!(message.contains("99") && message.contains('1'), "{message}");
        }
        m => panic!("{m:?}"),
    }
    assert!(check_hello(&Message::GetWorkers { id: 1 }).is_err());
    let bad_magic = Message::Hello {
        magic: "http".into(),
        protocol: 1,
        role: Role::Client,
        name: "c".into(),
        token: None,
    };
    assert!(check_hello(&bad_magic).is_err());
}

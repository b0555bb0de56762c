//! The fuzz targets (fuzz/targets.rs, the bodies of fuzz/fuzz_targets/*.rs)
//! run with the stable toolchain, so CI builds and exercises them on every
//! run: cargo-fuzz needs nightly, which CI does not have.
//!
//! Each target gets its seed corpus (the protocol test vectors of
//! tests/vectors, values, graph documents and argument lists made with the
//! public API, and locally any file under fuzz/corpus/<target>/, where
//! cargo-fuzz keeps its corpus, not committed), then inputs
//! generated from those seeds by a deterministic mutator (bit flips,
//! interesting bytes, truncation, duplication, splicing, insertion) and
//! random byte strings. Counts, not time, bound the run (RASK_FUZZ_INPUTS
//! per target, 100000 by default): about a second in release.
//!
//! A panic fails the test with the target name and the input in hex; the
//! fix gets a regression test with that input inlined.

#[path = "../fuzz/targets.rs"]
mod targets;

use rask::protocol::{encode_batch, Message};
use rask::value::{encode, DType, Tensor, Value};
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn unhex(s: &str) -> Vec<u8> {
    let s = s.trim();
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A batch body as one wire message: frame count, frame lengths, frames.
fn framed(frames: &[&[u8]]) -> Vec<u8> {
    let mut out = (frames.len() as u32).to_le_bytes().to_vec();
    for f in frames {
        out.extend_from_slice(&(f.len() as u64).to_le_bytes());
    }
    for f in frames {
        out.extend_from_slice(f);
    }
    out
}

/// The msgpack bodies of tests/vectors/*.hex (one message each).
fn vectors() -> Vec<Vec<u8>> {
    let mut v: Vec<_> = std::fs::read_dir(root().join("tests/vectors"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "hex"))
        .collect();
    v.sort();
    v.iter()
        .map(|p| unhex(&std::fs::read_to_string(p).unwrap()))
        .collect()
}

fn values() -> Vec<Value> {
    let t = Tensor::from_vec(vec![2, 3], vec![1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
    let i = Tensor::new(
        DType::I32,
        vec![2],
        bytes::Bytes::from(vec![1u8, 0, 0, 0, 2, 0, 0, 0]),
    )
    .unwrap();
    vec![
        Value::Nil,
        Value::Bool(true),
        Value::Int(-200),
        Value::UInt(u64::MAX),
        Value::Float(2.5),
        Value::from("abc"),
        Value::Bin(bytes::Bytes::from_static(b"\x00\xff")),
        Value::Array(vec![Value::Int(1), Value::from("x")]),
        Value::Map(vec![(Value::from("k"), Value::Array(vec![]))]),
        Value::Tensor(t),
        Value::Array(vec![Value::Tensor(i), Value::Nil]),
    ]
}

fn graph_docs() -> Vec<Vec<u8>> {
    let mut g = rask::Graph::new();
    g.add_value("a", 1).unwrap();
    g.add_value("x", 10).unwrap();
    let (ra, rx) = (g.r("a").unwrap(), g.r("x").unwrap());
    g.add_task("b", "inc", vec![ra]).unwrap();
    g.add_task("y", "inc", vec![rx]).unwrap();
    let (rb, ry) = (g.r("b").unwrap(), g.r("y").unwrap());
    g.add_task("z", "add", vec![rb, ry]).unwrap();
    vec![
        g.to_msgpack(&["z"]).unwrap(),
        g.to_msgpack(&["b", "y"]).unwrap(),
    ]
}

fn arg_lists() -> Vec<Vec<u8>> {
    let m = |k: &str, v: Value| Value::Map(vec![(Value::from(k), v)]);
    [
        Value::Array(vec![Value::Int(1)]),
        Value::Array(vec![m("ref", Value::from("a")), Value::Float(0.5)]),
        Value::Array(vec![
            m("value", Value::Array(vec![Value::Int(1)])),
            Value::Array(vec![m("ref", Value::from("b")), Value::Int(2)]),
            m(
                "map",
                Value::Map(vec![(Value::from("k"), m("ref", Value::from("c")))]),
            ),
        ]),
    ]
    .iter()
    .map(|v| encode(v).unwrap())
    .collect()
}

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let mut s: Vec<Vec<u8>> = match target {
        "frame_decode" => {
            // A batch is a msgpack array of messages: each vector in one.
            let mut s: Vec<_> = vectors()
                .iter()
                .map(|b| framed(&[&[&[0x91][..], b].concat()]))
                .collect();
            // Two messages back to back, and a batch with payload frames.
            s.push([s[0].clone(), s[1].clone()].concat());
            let w = encode_batch(
                &[Message::GetData {
                    id: 1,
                    keys: vec!["k".into()],
                }],
                vec![bytes::Bytes::from_static(b"payload")],
            );
            let frames: Vec<&[u8]> = w.frames.iter().map(|f| &f[..]).collect();
            s.push(framed(&frames));
            s
        }
        "value_decode" => {
            let mut s: Vec<_> = values().iter().map(|v| encode(v).unwrap()).collect();
            s.extend(vectors());
            s
        }
        "graph_doc" => graph_docs(),
        "task_args" => arg_lists(),
        _ => unreachable!(),
    };
    if let Ok(dir) = std::fs::read_dir(root().join("fuzz/corpus").join(target)) {
        for e in dir {
            s.push(std::fs::read(e.unwrap().path()).unwrap());
        }
    }
    s
}

/// xorshift64*: deterministic, so a failing input is found again.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: &[u8] = &[
    0x00, 0x01, 0x7f, 0x80, 0xff, 0xc0, 0xc1, 0xc4, 0xc6, 0xcb, 0xcf, 0xd3, 0xd9, 0xdb, 0xdc, 0xdd,
    0xde, 0xdf, 0x90, 0x9f, 0x80, 0x8f, 0xa0, 0xbf,
];

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    if rng.below(16) == 0 {
        let n = rng.below(64);
        return (0..n).map(|_| rng.next() as u8).collect();
    }
    let mut d = seeds[rng.below(seeds.len())].clone();
    for _ in 0..1 + rng.below(4) {
        let len = d.len();
        match rng.below(7) {
            0 if len > 0 => {
                let i = rng.below(len);
                d[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                d[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 if len > 0 => d.truncate(rng.below(len)),
            3 if len > 0 => {
                let (a, b) = (rng.below(len), rng.below(len));
                let (a, b) = (a.min(b), a.max(b));
                let chunk = d[a..b].to_vec();
                let at = rng.below(d.len());
                d.splice(at..at, chunk);
            }
            4 => {
                let other = &seeds[rng.below(seeds.len())];
                let cut = rng.below(d.len() + 1);
                let from = rng.below(other.len() + 1);
                d.truncate(cut);
                d.extend_from_slice(&other[from..]);
            }
            5 => {
                let at = rng.below(d.len() + 1);
                let n = 1 + rng.below(8);
                let junk: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                d.splice(at..at, junk);
            }
            _ if len >= 8 => {
                // A little-endian length field set to an edge value.
                let i = rng.below(len - 7);
                let v: u64 =
                    [0, 1, u32::MAX as u64, u64::MAX, 1 << 16, (1 << 16) + 1][rng.below(6)];
                d[i..i + 8].copy_from_slice(&v.to_le_bytes());
            }
            _ => d.push(rng.next() as u8),
        }
    }
    d
}

#[test]
fn every_fuzz_target_survives_its_corpus_and_generated_inputs() {
    let per_target: usize = std::env::var("RASK_FUZZ_INPUTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    // The panics this test catches would print a message each: silence
    // them on this test's thread only (the hook is process-wide).
    let me = std::thread::current().id();
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() != me {
            default(info)
        }
    }));
    let mut failures = Vec::new();
    for &(name, target) in targets::TARGETS {
        let seeds = seeds(name);
        assert!(!seeds.is_empty(), "{name}: no seeds");
        let mut rng = Rng(0x5EED ^ (name.len() as u64 * 0x9E37_79B9));
        let inputs = seeds
            .iter()
            .cloned()
            .chain((0..per_target).map(|_| mutate(&mut rng, &seeds)));
        for input in inputs {
            if std::panic::catch_unwind(|| target(&input)).is_err() {
                failures.push(format!("{name}: panicked on {}", hex(&input)));
                if failures.len() > 10 {
                    break;
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The seeds are what they claim: the vectors decode as frames, the graph
/// documents as graphs. (A seed that does not decode would leave the deep
/// paths of its target unexercised.)
#[test]
fn the_seeds_reach_the_decoders() {
    use rask::protocol::{decode_batch, Limits, WireMessage};
    let limits = Limits {
        max_frames: 64,
        max_frame_size: 1 << 16,
        max_message_size: 1 << 17,
    };
    for s in seeds("frame_decode") {
        let (w, _) = WireMessage::from_slice(&s, &limits).unwrap().unwrap();
        assert!(decode_batch(&w).is_ok(), "{}", hex(&s));
    }
    for s in seeds("graph_doc") {
        let (g, outputs) = rask::Graph::from_msgpack(&s).unwrap();
        assert!(g.output_ids(&outputs).is_ok());
    }
    for s in seeds("task_args") {
        assert!(rask::graph::doc::decode_args(&s).is_ok());
    }
    for s in seeds("value_decode").iter().take(values().len()) {
        assert!(rask::value::decode(s).is_ok());
    }
}

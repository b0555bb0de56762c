//! The bodies of the fuzz targets, one function each. Shared by the
//! cargo-fuzz targets (fuzz_targets/*.rs, libFuzzer, nightly) and by
//! tests/fuzz_replay.rs in the main crate, which runs every target over a
//! seed corpus and generated inputs with the stable toolchain in CI, so the
//! targets are built and exercised on every run and cannot rot.
//!
//! Only rask's public API is used (the crate is `rask` in both places).
#![allow(dead_code)]

use rask::protocol::{decode_batch, unpack_value, Limits, Message, WireMessage};

/// A target: it takes any bytes and must not panic.
pub type Target = fn(&[u8]);

/// Every target, by name (the names of fuzz_targets/*.rs).
pub const TARGETS: &[(&str, Target)] = &[
    ("frame_decode", frame_decode),
    ("value_decode", value_decode),
    ("graph_doc", graph_doc),
    ("task_args", task_args),
];

/// Bytes off a socket: framing, then the batch of messages, then every
/// value a `data`/`put-data` carries, then what the scheduler and worker
/// decode further (graph documents, task arguments). Nothing may panic.
pub fn frame_decode(data: &[u8]) {
    // Small limits, so that lengths near them are reachable.
    let limits = Limits {
        max_frames: 64,
        max_frame_size: 1 << 16,
        max_message_size: 1 << 17,
    };
    // No size limits at all: claimed lengths may sum past u64::MAX.
    let unlimited = Limits {
        max_frames: 64,
        max_frame_size: u64::MAX,
        max_message_size: u64::MAX,
    };
    let _ = WireMessage::from_slice(data, &unlimited);
    let mut rest = data;
    while let Ok(Some((w, used))) = WireMessage::from_slice(rest, &limits) {
        assert!(used > 0 && used <= rest.len());
        rest = &rest[used..];
        let Ok(msgs) = decode_batch(&w) else { continue };
        for m in msgs.into_iter().flatten() {
            match &m {
                Message::Data { data, .. } | Message::PutData { data, .. } => {
                    for p in data.values() {
                        let _ = unpack_value(p, &w.frames);
                    }
                }
                Message::UpdateGraph { graph, .. } => graph_doc(graph),
                Message::ComputeTask { args, .. } => task_args(args),
                _ => {}
            }
            let _ = m.op();
        }
    }
}

/// The value codec: any bytes decode to a value or an error, and a value
/// that decodes encodes to bytes that decode to the same value.
pub fn value_decode(data: &[u8]) {
    if let Ok(v) = rask::value::decode(data) {
        let again = rask::value::encode(&v).unwrap();
        let back = rask::value::decode(&again).expect("an encoded value decodes");
        // Compared as bytes: NaN floats are not equal to themselves.
        assert_eq!(rask::value::encode(&back).unwrap(), again);
    }
    let _ = rask::value::decode_bytes(&bytes::Bytes::copy_from_slice(data));
}

/// Graph documents (`update-graph`'s `graph`, `rask_graph_from_msgpack`):
/// decode, then cull, validate and order what the outputs need.
pub fn graph_doc(data: &[u8]) {
    let Ok((g, outputs)) = rask::Graph::from_msgpack(data) else {
        return;
    };
    if let Ok(ids) = g.output_ids(&outputs) {
        let _ = g.plan(&ids);
    }
    let _ = g.validate();
}

/// A `compute-task`'s `args` as a worker decodes them.
pub fn task_args(data: &[u8]) {
    let _ = rask::graph::doc::decode_args(data);
}

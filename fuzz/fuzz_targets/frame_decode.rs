//! Bytes off a socket: framing, then the batch of messages, then every
//! value a `data`/`put-data` carries, then what the scheduler and worker
//! decode further (graph documents, task arguments). Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rask::protocol::{decode_batch, unpack_value, Limits, Message, WireMessage};

fuzz_target!(|data: &[u8]| {
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
                Message::UpdateGraph { graph, .. } => {
                    if let Ok((g, outputs)) = rask::Graph::from_msgpack(graph) {
                        if let Ok(ids) = g.output_ids(&outputs) {
                            let _ = g.plan(&ids);
                        }
                    }
                }
                Message::ComputeTask { args, .. } => {
                    let _ = rask::graph::doc::decode_args(args);
                }
                _ => {}
            }
            let _ = m.op();
        }
    }
});

//! Bytes off a socket: framing, then the batch of messages, then every
//! value a `data`/`put-data` carries, then what the scheduler and worker
//! decode further (graph documents, task arguments). Nothing may panic.
//! The body is `frame_decode` in ../targets.rs, which tests/fuzz_replay.rs also runs.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../targets.rs"]
mod targets;

fuzz_target!(|data: &[u8]| targets::frame_decode(data));

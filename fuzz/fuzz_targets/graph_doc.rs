//! Graph documents (`update-graph`'s `graph`, `rask_graph_from_msgpack`):
//! decode, then cull, validate and order what the outputs need.
//! The body is `graph_doc` in ../targets.rs, which tests/fuzz_replay.rs also runs.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../targets.rs"]
mod targets;

fuzz_target!(|data: &[u8]| targets::graph_doc(data));

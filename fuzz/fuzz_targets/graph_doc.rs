//! Graph documents (`update-graph`'s `graph`, `rask_graph_from_msgpack`):
//! decode, then cull, validate and order what the outputs need.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok((g, outputs)) = rask::Graph::from_msgpack(data) else {
        return;
    };
    if let Ok(ids) = g.output_ids(&outputs) {
        let _ = g.plan(&ids);
    }
    let _ = g.validate();
});

//! A `compute-task`'s `args` as a worker decodes them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = rask::graph::doc::decode_args(data);
});

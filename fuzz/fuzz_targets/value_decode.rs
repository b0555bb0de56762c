//! The value codec: any bytes decode to a value or an error, and a value
//! that decodes encodes to bytes that decode to the same value.
//! The body is `value_decode` in ../targets.rs, which tests/fuzz_replay.rs also runs.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../targets.rs"]
mod targets;

fuzz_target!(|data: &[u8]| targets::value_decode(data));

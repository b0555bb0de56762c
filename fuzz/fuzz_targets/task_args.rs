//! A `compute-task`'s `args` as a worker decodes them.
//! The body is `task_args` in ../targets.rs, which tests/fuzz_replay.rs also runs.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../targets.rs"]
mod targets;

fuzz_target!(|data: &[u8]| targets::task_args(data));

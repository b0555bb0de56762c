//! Build script: lets plugins call the C API of the executable that loads
//! them.
//!
//! A worker plugin (src/worker/plugin.rs) calls `rask_registry_add_callback`
//! and friends. When `rask-worker` (or a test) dlopens it, those symbols
//! must come from the executable itself, and on Linux an executable exports
//! nothing unless told to: `--dynamic-list` exports the `rask_*` functions
//! of the C API, and nothing else. (Libraries linking librask.so need none
//! of this.)

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        return;
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let list = out.join("rask-exports.list");
    std::fs::write(&list, "{\n  rask_*;\n};\n").expect("writing the dynamic list");
    println!(
        "cargo:rustc-link-arg-bins=-Wl,--dynamic-list={}",
        list.display()
    );
    println!(
        "cargo:rustc-link-arg-tests=-Wl,--dynamic-list={}",
        list.display()
    );
}

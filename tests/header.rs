//! The committed C header must be what cbindgen makes of src/capi today.
//!
//! Generates `include/rask.h` with the cbindgen library and the committed
//! `cbindgen.toml`, exactly as
//! `cbindgen --config cbindgen.toml --crate rask --output include/rask.h`
//! does, and compares. `RASK_BLESS=1 cargo test --test header` rewrites the
//! header instead.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn generate() -> Vec<u8> {
    let root = root();
    let config =
        cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("reading cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_crate_and_name(&root, "rask")
        .generate()
        .expect("cbindgen could not generate the header (see its messages above)");
    let mut out = Vec::new();
    bindings.write(&mut out);
    out
}

fn first_difference(a: &[u8], b: &[u8]) -> String {
    let a = String::from_utf8_lossy(a);
    let b = String::from_utf8_lossy(b);
    let (mut al, mut bl) = (a.lines(), b.lines());
    let mut n = 1;
    loop {
        match (al.next(), bl.next()) {
            (Some(x), Some(y)) if x == y => n += 1,
            (x, y) => {
                return format!(
                    "first difference at line {n}:\n  committed: {}\n  generated: {}",
                    x.unwrap_or("<end of file>"),
                    y.unwrap_or("<end of file>")
                )
            }
        }
    }
}

#[test]
fn committed_header_matches_cbindgen() {
    let path = root().join("include/rask.h");
    let fresh = generate();
    if std::env::var("RASK_BLESS").as_deref() == Ok("1") {
        std::fs::write(&path, &fresh).expect("writing include/rask.h");
        eprintln!("rewrote {}", path.display());
        return;
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "include/rask.h is out of date with src/capi ({}).\n\
         Regenerate it with `RASK_BLESS=1 cargo test --test header` (or \
         `cbindgen --config cbindgen.toml --crate rask --output include/rask.h`), \
         review the diff and commit it. If an item from outside src/capi appeared \
         in the header, exclude it in cbindgen.toml.",
        first_difference(&committed, &fresh)
    );
}

#[test]
fn header_abi_version_matches_the_library() {
    let header = std::fs::read_to_string(Path::new(&root()).join("include/rask.h")).unwrap();
    let want = format!("#define RASK_ABI_VERSION {}", rask::capi::RASK_ABI_VERSION);
    assert!(
        header.lines().any(|l| l.trim() == want),
        "include/rask.h must contain `{want}` (set it in cbindgen.toml's after_includes)"
    );
    assert_eq!(rask::capi::rask_abi_version(), rask::capi::RASK_ABI_VERSION);
}

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

/// The names of the functions `include/rask.h` declares: every declaration
/// line (not indented, not a comment, preprocessor line or typedef) that
/// calls a `rask_*` name.
fn header_functions(header: &str) -> Vec<String> {
    let mut names = Vec::new();
    for line in header.lines() {
        if line.is_empty()
            || line.starts_with(|c: char| c.is_whitespace() || c == '/' || c == '#' || c == '*')
            || line.starts_with("typedef")
        {
            continue;
        }
        let Some(open) = line.find('(') else { continue };
        let before = &line[..open];
        let start = before
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        let name = &before[start..];
        if name.starts_with("rask_") {
            names.push(name.to_owned());
        }
    }
    names
}

/// Every function of the C API is called by the C tests of bad input
/// (`tests/c/*.c`: NULL arguments, strings that are not UTF-8, handles in
/// the wrong state), so that a new function cannot be added without them.
#[test]
fn every_header_function_is_covered_by_the_c_tests() {
    let header = std::fs::read_to_string(root().join("include/rask.h")).unwrap();
    let names = header_functions(&header);
    assert!(
        names.len() > 100 && names.iter().any(|n| n == "rask_client_submit"),
        "the header parser found only {} functions: {names:?}",
        names.len()
    );
    let mut sources = String::new();
    let dir = root().join("tests/c");
    for entry in std::fs::read_dir(&dir).expect("reading tests/c") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "c") {
            sources.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
    let called = |name: &str| {
        sources.match_indices(name).any(|(i, _)| {
            let before = sources[..i].chars().next_back();
            let after = sources[i + name.len()..].trim_start().chars().next();
            !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') && after == Some('(')
        })
    };
    let missing: Vec<&String> = names.iter().filter(|n| !called(n)).collect();
    assert!(
        missing.is_empty(),
        "these functions of include/rask.h are not called in tests/c/*.c; add checks of \
         NULL arguments, strings that are not UTF-8 and wrong states for them \
         (see tests/c/null_args.c): {missing:?}"
    );
}

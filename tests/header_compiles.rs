//! `include/rask.h` compiles on its own, included twice, as strict C99 and
//! as C++17, with every warning an error.

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Compiles a source that includes the header twice; `lang` is the `-x`
/// language.
fn check(compiler: &str, lang: &str, std: &str, extra: &str) {
    // One directory per test (c99 and c11 run in parallel and each removes
    // its own: a shared one was deleted under the other).
    let dir = std::env::temp_dir().join(format!(
        "rask-header-{}-{}-{}",
        std::process::id(),
        lang.replace('+', "x"),
        std.replace('+', "x")
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join(if lang == "c" { "t.c" } else { "t.cpp" });
    std::fs::write(
        &src,
        format!(
            "#include \"rask.h\"\n#include \"rask.h\"\n{extra}\n\
             int main(void) {{ return rask_abi_version() == RASK_ABI_VERSION ? 0 : 1; }}\n"
        ),
    )
    .unwrap();
    let out = Command::new(compiler)
        .arg(format!("-std={std}"))
        .args(["-Wall", "-Wextra", "-Werror", "-pedantic", "-fsyntax-only"])
        .arg("-I")
        .arg(root().join("include"))
        .arg(&src)
        .output()
        .unwrap_or_else(|e| panic!("could not run {compiler}: {e}"));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "include/rask.h does not compile as {lang} ({std}) with {compiler}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn header_compiles_as_c99() {
    check("cc", "c", "c99", "");
}

#[test]
fn header_compiles_as_c11() {
    check("cc", "c", "c11", "");
}

#[test]
fn header_compiles_as_cxx17() {
    // Also checks that the declarations have C linkage in C++.
    check(
        "c++",
        "c++",
        "c++17",
        "static_assert(sizeof(rask_status) == 4, \"rask_status is an int\");\n\
         extern \"C\" rask_graph *rask_graph_new(void);",
    );
}

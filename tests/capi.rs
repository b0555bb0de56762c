//! The C API driven from Rust through its `extern "C"` functions, as a C
//! program would: ownership, NULL and UTF-8 checks, error reporting,
//! callbacks, and pull mode from several host threads.

use rask::capi::rask_status::*;
use rask::capi::*;
use std::ffi::{c_char, c_void, CStr, CString};
use std::ptr::{null, null_mut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// Helpers.

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

/// A string that is not UTF-8, NUL-terminated.
const BAD_UTF8: &[u8] = b"k\xff\xfe\0";

fn bad() -> *const c_char {
    BAD_UTF8.as_ptr().cast()
}

/// Runs a fallible call with an error slot and returns its status and the
/// error's message (freeing the error). Checks the error slot is set exactly
/// when the status is an error, and that the error carries the status.
fn call(f: impl FnOnce(*mut *mut rask_error) -> rask_status) -> (rask_status, String) {
    let mut err: *mut rask_error = null_mut();
    let st = f(&mut err);
    unsafe {
        if st.is_error() {
            assert!(!err.is_null(), "{st:?} without an error");
            assert_eq!(rask_error_status(err), st);
            let msg = CStr::from_ptr(rask_error_message(err))
                .to_str()
                .unwrap()
                .to_owned();
            rask_error_free(err);
            (st, msg)
        } else {
            assert!(err.is_null(), "{st:?} with an error");
            (st, String::new())
        }
    }
}

/// Asserts a call fails with `want` and a message containing each needle.
fn fails(want: rask_status, needles: &[&str], f: impl FnOnce(*mut *mut rask_error) -> rask_status) {
    let (st, msg) = call(f);
    assert_eq!(st, want, "message: {msg}");
    for n in needles {
        assert!(msg.contains(n), "'{msg}' should contain '{n}'");
    }
}

fn ok(f: impl FnOnce(*mut *mut rask_error) -> rask_status) {
    let (st, msg) = call(f);
    assert_eq!(st, RASK_OK, "{msg}");
}

/// Asserts `f` reports a NULL argument named `param` from `func`.
fn null_arg(func: &str, param: &str, f: impl FnOnce(*mut *mut rask_error) -> rask_status) {
    fails(RASK_ERR_NULL_ARG, &[func, &format!("'{param}'"), "NULL"], f);
}

fn int_value(i: i64) -> *mut rask_value {
    rask_value_int(i)
}

unsafe fn get_int(v: *const rask_value) -> i64 {
    let mut out = 0;
    ok(|e| rask_value_get_int(v, &mut out, e));
    out
}

/// The classic graph `{a: 1, x: 10, b: inc(a), y: inc(x), z: add(b, y)}`,
/// with `inc_name` for the increments.
unsafe fn classic_graph(inc_name: &str) -> *mut rask_graph {
    let g = rask_graph_new();
    ok(|e| rask_graph_add_value(g, c("a").as_ptr(), int_value(1), e));
    ok(|e| rask_graph_add_value(g, c("x").as_ptr(), int_value(10), e));
    let mut a = null_mut();
    ok(|e| rask_arg_ref(c("a").as_ptr(), &mut a, e));
    let args = [a];
    ok(|e| {
        rask_graph_add_task(
            g,
            c("b").as_ptr(),
            c(inc_name).as_ptr(),
            args.as_ptr(),
            1,
            e,
        )
    });
    let x = c("x");
    let refs = [x.as_ptr()];
    ok(|e| {
        rask_graph_add_task_refs(
            g,
            c("y").as_ptr(),
            c(inc_name).as_ptr(),
            refs.as_ptr(),
            1,
            e,
        )
    });
    let (b, y) = (c("b"), c("y"));
    let refs = [b.as_ptr(), y.as_ptr()];
    ok(|e| rask_graph_add_task_refs(g, c("z").as_ptr(), c("add").as_ptr(), refs.as_ptr(), 2, e));
    g
}

/// Computes one key; returns the owned result.
unsafe fn compute_one(
    g: *const rask_graph,
    key: &str,
    reg: *const rask_registry,
) -> Result<*mut rask_value, (rask_status, String)> {
    let k = c(key);
    let keys = [k.as_ptr()];
    let mut results = [null_mut()];
    let (st, msg) = call(|e| {
        rask_compute(
            g,
            keys.as_ptr(),
            1,
            reg,
            null(),
            results.as_mut_ptr(),
            null_mut(),
            e,
        )
    });
    if st == RASK_OK {
        assert!(!results[0].is_null());
        Ok(results[0])
    } else {
        assert!(results[0].is_null(), "no result on failure");
        Err((st, msg))
    }
}

// ---------------------------------------------------------------------------
// C callbacks.

unsafe extern "C" fn c_inc(
    _ud: *mut c_void,
    args: *const *const rask_value,
    nargs: usize,
    result: *mut *mut rask_value,
    err: *mut *mut rask_error,
) -> rask_status {
    if nargs != 1 {
        *err = rask_error_new(
            RASK_ERR_INVALID_ARG as i32,
            c("c_inc takes 1 argument").as_ptr(),
        );
        return RASK_ERR_INVALID_ARG;
    }
    let mut x = 0;
    let st = rask_value_get_int(*args, &mut x, err);
    if st != RASK_OK {
        return st;
    }
    *result = rask_value_int(x + 1);
    RASK_OK
}

unsafe extern "C" fn fails_with_message(
    _ud: *mut c_void,
    _args: *const *const rask_value,
    _nargs: usize,
    _result: *mut *mut rask_value,
    err: *mut *mut rask_error,
) -> rask_status {
    *err = rask_error_new(RASK_ERR_TASK_FAILED as i32, c("disk on fire").as_ptr());
    RASK_ERR_TASK_FAILED
}

unsafe extern "C" fn fails_silently(
    _ud: *mut c_void,
    _args: *const *const rask_value,
    _nargs: usize,
    result: *mut *mut rask_value,
    _err: *mut *mut rask_error,
) -> rask_status {
    // A result set on failure is freed by rask, not leaked.
    *result = rask_value_int(1);
    RASK_ERR_INVALID_ARG
}

unsafe extern "C" fn ok_without_result(
    _ud: *mut c_void,
    _args: *const *const rask_value,
    _nargs: usize,
    _result: *mut *mut rask_value,
    _err: *mut *mut rask_error,
) -> rask_status {
    RASK_OK
}

/// Returns a number that is not a `rask_status` (as a C function could).
unsafe extern "C" fn returns_garbage(
    _ud: *mut c_void,
    _args: *const *const rask_value,
    _nargs: usize,
    _result: *mut *mut rask_value,
    _err: *mut *mut rask_error,
) -> u32 {
    4242
}

/// Adds the integer its user_data points to.
unsafe extern "C" fn add_user_data(
    ud: *mut c_void,
    args: *const *const rask_value,
    _nargs: usize,
    result: *mut *mut rask_value,
    err: *mut *mut rask_error,
) -> rask_status {
    let counter = &*(ud as *const Arc<AtomicUsize>);
    let mut x = 0;
    let st = rask_value_get_int(*args, &mut x, err);
    if st != RASK_OK {
        return st;
    }
    *result = rask_value_int(x + 100 + counter.load(Ordering::SeqCst) as i64);
    RASK_OK
}

/// user_data: a `Box<Arc<AtomicUsize>>` counting drops.
unsafe extern "C" fn drop_counter(ud: *mut c_void) {
    let counter = Box::from_raw(ud as *mut Arc<AtomicUsize>);
    counter.fetch_add(1, Ordering::SeqCst);
}

fn counter_user_data() -> (Arc<AtomicUsize>, *mut c_void) {
    let counter = Arc::new(AtomicUsize::new(0));
    let ud = Box::into_raw(Box::new(counter.clone())) as *mut c_void;
    (counter, ud)
}

unsafe fn registry_with(name: &str, cb: rask_callback) -> *mut rask_registry {
    let reg = rask_registry_new();
    ok(|e| rask_registry_add_callback(reg, c(name).as_ptr(), cb, null_mut(), None, e));
    reg
}

// ---------------------------------------------------------------------------
// Versions and statuses.

#[test]
fn versions_and_status_names() {
    assert_eq!(rask_abi_version(), RASK_ABI_VERSION);
    let v = unsafe { CStr::from_ptr(rask_version_string()) };
    assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    let name = |s: i32| unsafe { CStr::from_ptr(rask_status_name(s)).to_str().unwrap() };
    assert_eq!(name(RASK_OK as i32), "RASK_OK");
    assert_eq!(name(RASK_ERR_GRAPH as i32), "RASK_ERR_GRAPH");
    assert_eq!(name(RASK_DONE as i32), "RASK_DONE");
    assert_eq!(name(55), "RASK_UNKNOWN_STATUS");
    // The numbers are part of the ABI.
    assert_eq!(RASK_ERR_NULL_ARG as i32, 1);
    assert_eq!(RASK_ERR_STATE as i32, 12);
    assert_eq!(RASK_ERR_CONNECTION as i32, 13);
    assert_eq!(RASK_ERR_PROTOCOL as i32, 14);
    assert_eq!(RASK_ERR_DATA as i32, 15);
    assert_eq!(name(RASK_ERR_DATA as i32), "RASK_ERR_DATA");
    assert_eq!(RASK_TIMEOUT as i32, 100);
}

#[test]
fn errors_made_by_c() {
    unsafe {
        let e = rask_error_new(RASK_ERR_TYPE as i32, c("bad kind").as_ptr());
        assert_eq!(rask_error_status(e), RASK_ERR_TYPE);
        assert_eq!(
            CStr::from_ptr(rask_error_message(e)).to_str(),
            Ok("bad kind")
        );
        rask_error_free(e);
        // Unknown status numbers, NULL and invalid messages are tolerated.
        let e = rask_error_new(999, null());
        assert_eq!(rask_error_status(e), RASK_ERR_TASK_FAILED);
        assert_eq!(CStr::from_ptr(rask_error_message(e)).to_bytes(), b"");
        rask_error_free(e);
        let e = rask_error_new(RASK_ERR_TYPE as i32, bad());
        assert!(CStr::from_ptr(rask_error_message(e))
            .to_str()
            .unwrap()
            .contains('\u{FFFD}'));
        rask_error_free(e);
        // NULL handles.
        assert_eq!(rask_error_status(null()), RASK_OK);
        assert_eq!(CStr::from_ptr(rask_error_message(null())).to_bytes(), b"");
        rask_error_free(null_mut());
    }
}

#[test]
fn a_null_error_slot_still_gets_the_status() {
    unsafe {
        let st = rask_graph_add_value(null_mut(), c("k").as_ptr(), rask_value_nil(), null_mut());
        assert_eq!(st, RASK_ERR_NULL_ARG);
        let mut out = 0i64;
        let s = rask_value_nil();
        assert_eq!(rask_value_get_int(s, &mut out, null_mut()), RASK_ERR_TYPE);
        rask_value_free(s);
    }
}

// ---------------------------------------------------------------------------
// The classic graph.

#[test]
fn classic_graph_with_builtins_gives_13() {
    unsafe {
        let g = classic_graph("inc");
        assert_eq!(rask_graph_len(g), 5);
        ok(|e| rask_graph_validate(g, e));
        let (k1, k2) = (c("z"), c("b"));
        let keys = [k1.as_ptr(), k2.as_ptr()];
        let mut results = [null_mut(); 2];
        let mut stats = rask_compute_stats::default();
        let opts = rask_compute_options { threads: 2 };
        ok(|e| {
            rask_compute(
                g,
                keys.as_ptr(),
                2,
                null(),
                &opts,
                results.as_mut_ptr(),
                &mut stats,
                e,
            )
        });
        assert_eq!(get_int(results[0]), 13);
        assert_eq!(get_int(results[1]), 2);
        assert_eq!(stats.tasks, 3);
        assert_eq!(stats.tasks_run, 3);
        assert!(stats.peak_live >= 1);
        results.iter().for_each(|&r| rask_value_free(r));
        rask_graph_free(g);
    }
}

#[test]
fn classic_graph_with_a_c_callback_gives_13() {
    unsafe {
        let reg = registry_with("c_inc", Some(c_inc));
        assert!(rask_registry_contains(reg, c("c_inc").as_ptr()));
        assert!(rask_registry_contains(reg, c("add").as_ptr()));
        assert!(rask_registry_contains(null(), c("add").as_ptr()));
        assert!(!rask_registry_contains(null(), c("c_inc").as_ptr()));
        assert!(!rask_registry_contains(reg, null()));
        assert!(!rask_registry_contains(reg, bad()));
        let g = classic_graph("c_inc");
        let z = compute_one(g, "z", reg).unwrap();
        assert_eq!(get_int(z), 13);
        rask_value_free(z);
        // Without the registry, c_inc is unknown.
        let (st, msg) = compute_one(g, "z", null()).unwrap_err();
        assert_eq!(st, RASK_ERR_UNKNOWN_FUNCTION, "{msg}");
        assert!(msg.contains("'c_inc'"), "{msg}");
        rask_graph_free(g);
        rask_registry_free(reg);
    }
}

#[test]
fn many_arguments_reach_the_callback() {
    unsafe extern "C" fn count_args(
        _ud: *mut c_void,
        args: *const *const rask_value,
        nargs: usize,
        result: *mut *mut rask_value,
        err: *mut *mut rask_error,
    ) -> rask_status {
        let mut total = 0;
        for i in 0..nargs {
            let mut x = 0;
            let st = rask_value_get_int(*args.add(i), &mut x, err);
            if st != RASK_OK {
                return st;
            }
            total += x;
        }
        *result = rask_value_int(total);
        RASK_OK
    }
    unsafe {
        let reg = registry_with("total", Some(count_args));
        let g = rask_graph_new();
        // 20 arguments: more than the callback wrapper keeps on its stack.
        let mut args: Vec<*mut rask_arg> = (1..=20).map(|i| rask_arg_int(i)).collect();
        ok(|e| {
            rask_graph_add_task(
                g,
                c("t").as_ptr(),
                c("total").as_ptr(),
                args.as_mut_ptr(),
                20,
                e,
            )
        });
        let t = compute_one(g, "t", reg).unwrap();
        assert_eq!(get_int(t), 210);
        rask_value_free(t);
        rask_graph_free(g);
        rask_registry_free(reg);
    }
}

#[test]
fn graph_from_msgpack_document() {
    // The document of docs/graph-spec.md: the classic graph, outputs ["z"].
    let hex = "82a57461736b7385a16181a576616c756501a17881a576616c75650aa16282a466756e63a3696e63a4617267739181a3726566a161a17982a466756e63a3696e63a4617267739181a3726566a178a17a82a466756e63a3616464a4617267739281a3726566a16281a3726566a179a76f75747075747391a17a";
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    unsafe {
        let mut g = null_mut();
        ok(|e| rask_graph_from_msgpack(bytes.as_ptr(), bytes.len(), &mut g, e));
        assert_eq!(rask_graph_len(g), 5);
        assert_eq!(rask_graph_doc_output_count(g), 1);
        let out = CStr::from_ptr(rask_graph_doc_output(g, 0))
            .to_str()
            .unwrap();
        assert_eq!(out, "z");
        assert!(rask_graph_doc_output(g, 1).is_null());
        let z = compute_one(g, out, null()).unwrap();
        assert_eq!(get_int(z), 13);
        rask_value_free(z);
        rask_graph_free(g);

        // Truncated bytes, and a document of the wrong shape.
        fails(RASK_ERR_DECODE, &["msgpack"], |e| {
            rask_graph_from_msgpack(bytes.as_ptr(), 30, &mut g, e)
        });
        let not_a_map = [0x01u8];
        fails(RASK_ERR_DECODE, &["must be a map"], |e| {
            rask_graph_from_msgpack(not_a_map.as_ptr(), 1, &mut g, e)
        });
        assert_eq!(rask_graph_doc_output_count(null()), 0);
    }
}

// ---------------------------------------------------------------------------
// Graph errors.

#[test]
fn graph_errors_name_the_keys() {
    unsafe {
        let g = rask_graph_new();
        // A cycle p -> q -> p, and a task depending on a missing key.
        let (p, q, nowhere) = (c("p"), c("q"), c("nowhere"));
        ok(|e| {
            rask_graph_add_task_refs(
                g,
                p.as_ptr(),
                c("inc").as_ptr(),
                [q.as_ptr()].as_ptr(),
                1,
                e,
            )
        });
        ok(|e| {
            rask_graph_add_task_refs(
                g,
                q.as_ptr(),
                c("inc").as_ptr(),
                [p.as_ptr()].as_ptr(),
                1,
                e,
            )
        });
        fails(RASK_ERR_GRAPH, &["cycle", "'p'", "'q'"], |e| {
            rask_graph_validate(g, e)
        });
        let (st, msg) = compute_one(g, "p", null()).unwrap_err();
        assert_eq!(st, RASK_ERR_GRAPH);
        assert!(
            msg.contains("cycle") && msg.contains("'p'") && msg.contains("'q'"),
            "{msg}"
        );

        let g2 = rask_graph_new();
        let m = c("m");
        ok(|e| {
            rask_graph_add_task_refs(
                g2,
                m.as_ptr(),
                c("inc").as_ptr(),
                [nowhere.as_ptr()].as_ptr(),
                1,
                e,
            )
        });
        let (st, msg) = compute_one(g2, "m", null()).unwrap_err();
        assert_eq!(st, RASK_ERR_GRAPH);
        assert!(msg.contains("'m'") && msg.contains("'nowhere'"), "{msg}");
        // An unknown output.
        let (st, msg) = compute_one(g2, "absent", null()).unwrap_err();
        assert_eq!(st, RASK_ERR_GRAPH);
        assert!(msg.contains("'absent'"), "{msg}");

        // Duplicate and empty keys, empty function names; the refused task
        // leaves the graph as it was.
        let before = rask_graph_len(g2);
        fails(RASK_ERR_GRAPH, &["'m'", "twice"], |e| {
            rask_graph_add_value(g2, m.as_ptr(), rask_value_nil(), e)
        });
        fails(RASK_ERR_GRAPH, &["'m'", "twice"], |e| {
            let mut r = null_mut();
            ok(|e| rask_arg_ref(c("fresh").as_ptr(), &mut r, e));
            rask_graph_add_task(g2, m.as_ptr(), c("inc").as_ptr(), [r].as_ptr(), 1, e)
        });
        fails(RASK_ERR_GRAPH, &["empty"], |e| {
            rask_graph_add_value(g2, c("").as_ptr(), rask_value_nil(), e)
        });
        fails(RASK_ERR_GRAPH, &["empty function name"], |e| {
            rask_graph_add_task_refs(g2, c("t").as_ptr(), c("").as_ptr(), null(), 0, e)
        });
        fails(RASK_ERR_GRAPH, &["empty"], |e| {
            let empty = c("");
            rask_graph_add_task_refs(
                g2,
                c("t").as_ptr(),
                c("inc").as_ptr(),
                [empty.as_ptr()].as_ptr(),
                1,
                e,
            )
        });
        fails(RASK_ERR_GRAPH, &["empty"], |e| {
            let mut r = null_mut();
            rask_arg_ref(c("").as_ptr(), &mut r, e)
        });
        assert_eq!(rask_graph_len(g2), before);
        // "fresh" was never added as a reference: validation only reports
        // the genuinely missing key.
        fails(RASK_ERR_GRAPH, &["'nowhere'"], |e| {
            rask_graph_validate(g2, e)
        });

        rask_graph_free(g);
        rask_graph_free(g2);
    }
}

#[test]
fn a_graph_can_change_while_a_snapshot_computes() {
    unsafe {
        let g = classic_graph("inc");
        let g2 = rask_graph_clone(g);
        ok(|e| rask_graph_add_value(g2, c("extra").as_ptr(), int_value(7), e));
        assert_eq!(rask_graph_len(g), 5);
        assert_eq!(rask_graph_len(g2), 6);
        let z = c("z");
        let mut comp = null_mut();
        ok(|e| rask_computation_start(g, [z.as_ptr()].as_ptr(), 1, null(), null(), &mut comp, e));
        // Changing and freeing the graph does not disturb the computation.
        ok(|e| rask_graph_add_value(g, c("later").as_ptr(), int_value(1), e));
        rask_graph_free(g);
        ok(|e| rask_computation_wait(comp, -1, e));
        let mut out = [null_mut()];
        ok(|e| rask_computation_results(comp, out.as_mut_ptr(), e));
        assert_eq!(get_int(out[0]), 13);
        rask_value_free(out[0]);
        rask_computation_free(comp);
        rask_graph_free(g2);
    }
}

#[test]
fn nested_list_arguments() {
    unsafe {
        let g = classic_graph("inc");
        // s = sum([b, y, 100, [nothing else]]) through rask_arg_list.
        let mut b = null_mut();
        let mut y = null_mut();
        ok(|e| rask_arg_ref(c("b").as_ptr(), &mut b, e));
        ok(|e| rask_arg_ref(c("y").as_ptr(), &mut y, e));
        let items = [
            b,
            y,
            rask_arg_value(rask_value_int(100)),
            rask_arg_float(0.5),
        ];
        let mut list = null_mut();
        ok(|e| rask_arg_list(items.as_ptr(), 4, &mut list, e));
        ok(|e| rask_graph_add_task(g, c("s").as_ptr(), c("sum").as_ptr(), [list].as_ptr(), 1, e));
        let s = compute_one(g, "s", null()).unwrap();
        let mut f = 0.0;
        ok(|e| rask_value_get_float(s, &mut f, e));
        assert_eq!(f, 113.5);
        rask_value_free(s);
        // An empty list, from a NULL array.
        let mut empty = null_mut();
        ok(|e| rask_arg_list(null(), 0, &mut empty, e));
        ok(|e| {
            rask_graph_add_task(
                g,
                c("e").as_ptr(),
                c("sum").as_ptr(),
                [empty].as_ptr(),
                1,
                e,
            )
        });
        let v = compute_one(g, "e", null()).unwrap();
        assert_eq!(get_int(v), 0);
        rask_value_free(v);
        rask_arg_free(rask_arg_int(3));
        rask_arg_free(null_mut());
        assert!(rask_arg_value(null_mut()).is_null());
        rask_graph_free(g);
    }
}

// ---------------------------------------------------------------------------
// Callbacks that fail, and user_data.

#[test]
fn a_failing_callback_fails_the_task_with_its_message() {
    unsafe {
        let reg = rask_registry_new();
        ok(|e| {
            rask_registry_add_callback(
                reg,
                c("boom").as_ptr(),
                Some(fails_with_message),
                null_mut(),
                None,
                e,
            )
        });
        ok(|e| {
            rask_registry_add_callback(
                reg,
                c("quiet").as_ptr(),
                Some(fails_silently),
                null_mut(),
                None,
                e,
            )
        });
        ok(|e| {
            rask_registry_add_callback(
                reg,
                c("empty").as_ptr(),
                Some(ok_without_result),
                null_mut(),
                None,
                e,
            )
        });
        let garbage: rask_callback = Some(std::mem::transmute::<
            unsafe extern "C" fn(
                *mut c_void,
                *const *const rask_value,
                usize,
                *mut *mut rask_value,
                *mut *mut rask_error,
            ) -> u32,
            unsafe extern "C" fn(
                *mut c_void,
                *const *const rask_value,
                usize,
                *mut *mut rask_value,
                *mut *mut rask_error,
            ) -> rask_status,
        >(returns_garbage));
        ok(|e| {
            rask_registry_add_callback(reg, c("garbage").as_ptr(), garbage, null_mut(), None, e)
        });
        let g = rask_graph_new();
        for (key, func) in [
            ("k1", "boom"),
            ("k2", "quiet"),
            ("k3", "empty"),
            ("k4", "garbage"),
        ] {
            ok(|e| rask_graph_add_task_refs(g, c(key).as_ptr(), c(func).as_ptr(), null(), 0, e));
        }
        let cases: [(&str, &[&str]); 4] = [
            ("k1", &["'k1'", "boom", "disk on fire"]),
            (
                "k2",
                &["'k2'", "quiet", "RASK_ERR_INVALID_ARG", "no message"],
            ),
            ("k3", &["'k3'", "empty", "RASK_OK", "did not set *result"]),
            ("k4", &["'k4'", "garbage", "4242", "not a rask_status"]),
        ];
        for (key, needles) in cases {
            let (st, msg) = compute_one(g, key, reg).unwrap_err();
            assert_eq!(st, RASK_ERR_TASK_FAILED, "{msg}");
            for n in needles {
                assert!(msg.contains(n), "'{msg}' should contain '{n}'");
            }
        }
        rask_graph_free(g);
        rask_registry_free(reg);
    }
}

#[test]
fn registration_errors() {
    unsafe {
        let reg = registry_with("mine", Some(c_inc));
        fails(RASK_ERR_REGISTRY, &["'mine'", "already"], |e| {
            rask_registry_add_callback(reg, c("mine").as_ptr(), Some(c_inc), null_mut(), None, e)
        });
        fails(RASK_ERR_REGISTRY, &["'inc'", "builtin"], |e| {
            rask_registry_add_pulled(reg, c("inc").as_ptr(), e)
        });
        fails(RASK_ERR_REGISTRY, &["empty"], |e| {
            rask_registry_add_pulled(reg, c("").as_ptr(), e)
        });
        rask_registry_free(reg);
        rask_registry_free(null_mut());
    }
}

#[test]
fn user_data_is_dropped_exactly_once() {
    unsafe {
        // Registered, never used: dropped with the registry.
        let (count, ud) = counter_user_data();
        let reg = rask_registry_new();
        ok(|e| {
            rask_registry_add_callback(
                reg,
                c("f").as_ptr(),
                Some(add_user_data),
                ud,
                Some(drop_counter),
                e,
            )
        });
        assert_eq!(count.load(Ordering::SeqCst), 0);
        rask_registry_free(reg);
        assert_eq!(count.load(Ordering::SeqCst), 1);

        // Used by a computation that outlives the registry: dropped when the
        // computation is freed.
        let (count, ud) = counter_user_data();
        let reg = rask_registry_new();
        ok(|e| {
            rask_registry_add_callback(
                reg,
                c("f").as_ptr(),
                Some(add_user_data),
                ud,
                Some(drop_counter),
                e,
            )
        });
        let g = rask_graph_new();
        ok(|e| rask_graph_add_value(g, c("a").as_ptr(), int_value(1), e));
        ok(|e| {
            rask_graph_add_task_refs(
                g,
                c("b").as_ptr(),
                c("f").as_ptr(),
                [c("a").as_ptr()].as_ptr(),
                1,
                e,
            )
        });
        let b = compute_one(g, "b", reg).unwrap();
        assert_eq!(get_int(b), 101);
        rask_value_free(b);
        let key = c("b");
        let mut comp = null_mut();
        ok(|e| rask_computation_start(g, [key.as_ptr()].as_ptr(), 1, reg, null(), &mut comp, e));
        rask_registry_free(reg);
        ok(|e| rask_computation_wait(comp, -1, e));
        assert_eq!(
            count.load(Ordering::SeqCst),
            0,
            "the computation still holds it"
        );
        rask_computation_free(comp);
        assert_eq!(count.load(Ordering::SeqCst), 1);
        rask_graph_free(g);

        // A failed registration drops it at once (ownership always passes).
        let (count, ud) = counter_user_data();
        let reg = registry_with("f", Some(c_inc));
        fails(RASK_ERR_REGISTRY, &["'f'"], |e| {
            rask_registry_add_callback(
                reg,
                c("f").as_ptr(),
                Some(add_user_data),
                ud,
                Some(drop_counter),
                e,
            )
        });
        assert_eq!(count.load(Ordering::SeqCst), 1);
        // So does one with NULL arguments.
        let (count2, ud2) = counter_user_data();
        fails(RASK_ERR_NULL_ARG, &["'callback'"], |e| {
            rask_registry_add_callback(reg, c("g").as_ptr(), None, ud2, Some(drop_counter), e)
        });
        assert_eq!(count2.load(Ordering::SeqCst), 1);
        rask_registry_free(reg);
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }
}

#[test]
fn a_graph_needing_a_pulled_function_cannot_be_computed_blocking() {
    unsafe {
        let reg = rask_registry_new();
        ok(|e| rask_registry_add_pulled(reg, c("host_fn").as_ptr(), e));
        let g = classic_graph("inc");
        ok(|e| {
            rask_graph_add_task_refs(
                g,
                c("h").as_ptr(),
                c("host_fn").as_ptr(),
                [c("z").as_ptr()].as_ptr(),
                1,
                e,
            )
        });
        let (st, msg) = compute_one(g, "h", reg).unwrap_err();
        assert_eq!(st, RASK_ERR_STATE);
        assert!(
            msg.contains("'h'")
                && msg.contains("'host_fn'")
                && msg.contains("rask_computation_start"),
            "{msg}"
        );
        // Keys that do not need it compute as usual.
        let z = compute_one(g, "z", reg).unwrap();
        assert_eq!(get_int(z), 13);
        rask_value_free(z);
        rask_graph_free(g);
        rask_registry_free(reg);
    }
}

// ---------------------------------------------------------------------------
// Pull mode.

/// A barrier for `n` threads that gives up after a timeout instead of
/// hanging the test.
struct TimedBarrier {
    state: Mutex<usize>,
    cv: Condvar,
    n: usize,
}

impl TimedBarrier {
    fn wait(&self, timeout: Duration) -> bool {
        let mut arrived = self.state.lock().unwrap();
        *arrived += 1;
        self.cv.notify_all();
        let deadline = Instant::now() + timeout;
        while *arrived < self.n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            arrived = self.cv.wait_timeout(arrived, left).unwrap().0;
        }
        true
    }
}

struct SendPtr(*const rask_computation);
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

#[test]
fn two_host_threads_pull_tasks_concurrently() {
    const N: i64 = 200;
    unsafe {
        let reg = rask_registry_new();
        ok(|e| rask_registry_add_pulled(reg, c("double").as_ptr(), e));
        let g = rask_graph_new();
        let mut refs = Vec::new();
        for i in 0..N {
            let key = format!("('p', {i})");
            ok(|e| {
                rask_graph_add_task(
                    g,
                    c(&key).as_ptr(),
                    c("double").as_ptr(),
                    [rask_arg_int(i)].as_ptr(),
                    1,
                    e,
                )
            });
            let mut r = null_mut();
            ok(|e| rask_arg_ref(c(&key).as_ptr(), &mut r, e));
            refs.push(r);
        }
        let mut list = null_mut();
        ok(|e| rask_arg_list(refs.as_ptr(), refs.len(), &mut list, e));
        ok(|e| {
            rask_graph_add_task(
                g,
                c("total").as_ptr(),
                c("sum").as_ptr(),
                [list].as_ptr(),
                1,
                e,
            )
        });

        let total = c("total");
        let opts = rask_compute_options { threads: 1 };
        let mut comp = null_mut();
        ok(|e| rask_computation_start(g, [total.as_ptr()].as_ptr(), 1, reg, &opts, &mut comp, e));
        rask_graph_free(g);
        rask_registry_free(reg);

        let barrier = TimedBarrier {
            state: Mutex::new(0),
            cv: Condvar::new(),
            n: 2,
        };
        let shared = SendPtr(comp);
        let counts: Vec<usize> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..2)
                .map(|_| {
                    let (shared, barrier) = (&shared, &barrier);
                    s.spawn(move || {
                        let comp = shared.0;
                        let mut handled = 0usize;
                        loop {
                            let mut task = null_mut();
                            let (st, msg) =
                                call(|e| rask_computation_next_task(comp, 5_000, &mut task, e));
                            match st {
                                RASK_OK => {}
                                RASK_DONE => break,
                                other => panic!("next_task: {other:?} {msg}"),
                            }
                            if handled == 0 {
                                // Both threads hold a task at the same time.
                                assert!(
                                    barrier.wait(Duration::from_secs(10)),
                                    "the other thread got no task"
                                );
                            }
                            let func = CStr::from_ptr(rask_task_func(task)).to_str().unwrap();
                            assert_eq!(func, "double");
                            let key = CStr::from_ptr(rask_task_key(task)).to_str().unwrap();
                            assert!(key.starts_with("('p', "), "{key}");
                            assert_eq!(rask_task_nargs(task), 1);
                            assert!(rask_task_arg(task, 1).is_null());
                            let x = get_int(rask_task_arg(task, 0));
                            let st = rask_task_complete(task, rask_value_int(2 * x), null_mut());
                            assert_eq!(st, RASK_OK);
                            handled += 1;
                        }
                        handled
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        assert_eq!(counts.iter().sum::<usize>(), N as usize);
        assert!(counts.iter().all(|&n| n > 0), "{counts:?}");

        assert!(rask_computation_is_done(comp));
        ok(|e| rask_computation_wait(comp, 0, e));
        let mut out = [null_mut()];
        ok(|e| rask_computation_results(comp, out.as_mut_ptr(), e));
        assert_eq!(get_int(out[0]), (0..N).map(|i| 2 * i).sum::<i64>());
        rask_value_free(out[0]);
        let mut stats = rask_compute_stats::default();
        ok(|e| rask_computation_stats(comp, &mut stats, e));
        assert_eq!(stats.tasks, N as usize + 1);
        assert_eq!(stats.tasks_run, N as usize + 1);
        // After the end, next_task says DONE at once.
        let mut task = null_mut();
        assert_eq!(
            rask_computation_next_task(comp, -1, &mut task, null_mut()),
            RASK_DONE
        );
        assert!(task.is_null());
        rask_computation_free(comp);
    }
}

/// Starts a computation of `h = host_fn(1)`; returns it.
unsafe fn pulled_computation() -> *mut rask_computation {
    let reg = rask_registry_new();
    ok(|e| rask_registry_add_pulled(reg, c("host_fn").as_ptr(), e));
    let g = rask_graph_new();
    ok(|e| {
        rask_graph_add_task(
            g,
            c("h").as_ptr(),
            c("host_fn").as_ptr(),
            [rask_arg_int(1)].as_ptr(),
            1,
            e,
        )
    });
    let h = c("h");
    let mut comp = null_mut();
    ok(|e| rask_computation_start(g, [h.as_ptr()].as_ptr(), 1, reg, null(), &mut comp, e));
    rask_graph_free(g);
    rask_registry_free(reg);
    comp
}

unsafe fn next(comp: *const rask_computation) -> *mut rask_task {
    let mut task = null_mut();
    ok(|e| rask_computation_next_task(comp, 10_000, &mut task, e));
    assert!(!task.is_null());
    task
}

#[test]
fn pull_mode_failures_and_cancellation() {
    unsafe {
        // A failed task fails the computation with the host's message.
        let comp = pulled_computation();
        assert_eq!(rask_computation_wait(comp, 0, null_mut()), RASK_TIMEOUT);
        assert!(!rask_computation_is_done(comp));
        let task = next(comp);
        ok(|e| rask_task_fail(task, c("host says no").as_ptr(), e));
        fails(
            RASK_ERR_TASK_FAILED,
            &["'h'", "host_fn", "host says no"],
            |e| rask_computation_wait(comp, -1, e),
        );
        let mut out = [null_mut()];
        fails(RASK_ERR_TASK_FAILED, &["host says no"], |e| {
            rask_computation_results(comp, out.as_mut_ptr(), e)
        });
        assert!(out[0].is_null());
        rask_computation_free(comp);

        // An abandoned task fails it too.
        let comp = pulled_computation();
        rask_task_free(next(comp));
        fails(
            RASK_ERR_TASK_FAILED,
            &["'h'", "dropped without a result"],
            |e| rask_computation_wait(comp, -1, e),
        );
        rask_computation_free(comp);

        // A NULL result fails the task and says so.
        let comp = pulled_computation();
        null_arg("rask_task_complete", "result", |e| {
            rask_task_complete(next(comp), null_mut(), e)
        });
        fails(RASK_ERR_TASK_FAILED, &["NULL result"], |e| {
            rask_computation_wait(comp, -1, e)
        });
        rask_computation_free(comp);

        // A message that is not UTF-8 still fails the task.
        let comp = pulled_computation();
        fails(RASK_ERR_INVALID_UTF8, &["'message'"], |e| {
            rask_task_fail(next(comp), bad(), e)
        });
        fails(RASK_ERR_TASK_FAILED, &["'h'"], |e| {
            rask_computation_wait(comp, -1, e)
        });
        rask_computation_free(comp);

        // Nothing to pull yet: a timeout. Cancelled: DONE, and a task still
        // out is discarded when completed.
        let comp = pulled_computation();
        let task = next(comp);
        let mut none = null_mut();
        assert_eq!(
            rask_computation_next_task(comp, 20, &mut none, null_mut()),
            RASK_TIMEOUT
        );
        assert!(none.is_null());
        ok(|e| rask_computation_cancel(comp, e));
        assert_eq!(
            rask_computation_next_task(comp, -1, &mut none, null_mut()),
            RASK_DONE
        );
        fails(RASK_ERR_CANCELLED, &["cancelled"], |e| {
            rask_computation_wait(comp, -1, e)
        });
        // The task outlives the computation.
        rask_computation_free(comp);
        assert_eq!(CStr::from_ptr(rask_task_key(task)).to_str(), Ok("h"));
        assert_eq!(
            rask_task_complete(task, rask_value_int(5), null_mut()),
            RASK_DONE
        );

        // Freeing a running computation cancels it.
        let comp = pulled_computation();
        rask_computation_free(comp);
    }
}

#[test]
fn computation_start_fails_before_anything_runs() {
    unsafe {
        let g = classic_graph("c_inc");
        let z = c("z");
        let mut comp = null_mut();
        fails(RASK_ERR_UNKNOWN_FUNCTION, &["'c_inc'"], |e| {
            rask_computation_start(g, [z.as_ptr()].as_ptr(), 1, null(), null(), &mut comp, e)
        });
        assert!(comp.is_null());
        let nope = c("nope");
        fails(RASK_ERR_GRAPH, &["'nope'"], |e| {
            rask_computation_start(g, [nope.as_ptr()].as_ptr(), 1, null(), null(), &mut comp, e)
        });
        rask_graph_free(g);
    }
}

// ---------------------------------------------------------------------------
// Values.

#[test]
fn scalar_values_and_getters() {
    unsafe {
        let v = rask_value_bool(true);
        assert_eq!(rask_value_kind(v), rask_kind::RASK_KIND_BOOL);
        let mut b = false;
        ok(|e| rask_value_get_bool(v, &mut b, e));
        assert!(b);
        fails(
            RASK_ERR_TYPE,
            &["rask_value_get_int", "expected an int", "bool"],
            |e| rask_value_get_int(v, &mut 0, e),
        );
        rask_value_free(v);

        let v = rask_value_int(-5);
        assert_eq!(get_int(v), -5);
        let mut f = 0.0;
        ok(|e| rask_value_get_float(v, &mut f, e));
        assert_eq!(f, -5.0);
        fails(RASK_ERR_TYPE, &["-5", "negative"], |e| {
            rask_value_get_uint(v, &mut 0, e)
        });
        fails(RASK_ERR_TYPE, &["expected a bool", "int"], |e| {
            rask_value_get_bool(v, &mut b, e)
        });
        fails(RASK_ERR_TYPE, &["expected a str"], |e| {
            let mut p = null();
            let mut n = 0;
            rask_value_get_str(v, &mut p, &mut n, e)
        });
        fails(RASK_ERR_TYPE, &["rask_value_len"], |e| {
            rask_value_len(v, &mut 0, e)
        });
        rask_value_free(v);

        // uint: small ones are ints, large ones uints.
        let v = rask_value_uint(7);
        assert_eq!(rask_value_kind(v), rask_kind::RASK_KIND_INT);
        let mut u = 0u64;
        ok(|e| rask_value_get_uint(v, &mut u, e));
        assert_eq!(u, 7);
        rask_value_free(v);
        let v = rask_value_uint(u64::MAX);
        assert_eq!(rask_value_kind(v), rask_kind::RASK_KIND_UINT);
        ok(|e| rask_value_get_uint(v, &mut u, e));
        assert_eq!(u, u64::MAX);
        fails(RASK_ERR_TYPE, &["does not fit"], |e| {
            rask_value_get_int(v, &mut 0, e)
        });
        rask_value_free(v);

        let v = rask_value_float(2.5);
        ok(|e| rask_value_get_float(v, &mut f, e));
        assert_eq!(f, 2.5);
        fails(RASK_ERR_TYPE, &["expected an int", "float"], |e| {
            rask_value_get_int(v, &mut 0, e)
        });
        rask_value_free(v);

        let v = rask_value_nil();
        assert_eq!(rask_value_kind(v), rask_kind::RASK_KIND_NIL);
        fails(RASK_ERR_TYPE, &["expected a float", "nil"], |e| {
            rask_value_get_float(v, &mut f, e)
        });
        rask_value_free(v);
        assert_eq!(rask_value_kind(null()), rask_kind::RASK_KIND_NIL);
        assert!(rask_value_clone(null()).is_null());
        rask_value_free(null_mut());
    }
}

#[test]
fn strings_and_bytes() {
    unsafe {
        let text = "héllo wörld";
        let mut v = null_mut();
        // Not NUL-terminated: only the first 6 bytes ("héllo" is 6 bytes).
        ok(|e| rask_value_str(text.as_ptr().cast(), 6, &mut v, e));
        let (mut p, mut n) = (null(), 0usize);
        ok(|e| rask_value_get_str(v, &mut p, &mut n, e));
        assert_eq!(
            std::slice::from_raw_parts(p.cast::<u8>(), n),
            "héllo".as_bytes()
        );
        let mut len = 0;
        ok(|e| rask_value_len(v, &mut len, e));
        assert_eq!(len, 6);
        rask_value_free(v);
        // Cutting inside a character is invalid UTF-8.
        fails(RASK_ERR_INVALID_UTF8, &["rask_value_str", "'s'"], |e| {
            rask_value_str(text.as_ptr().cast(), 2, &mut v, e)
        });
        // NULL with length 0 is the empty string.
        ok(|e| rask_value_str(null(), 0, &mut v, e));
        ok(|e| rask_value_len(v, &mut len, e));
        assert_eq!(len, 0);
        rask_value_free(v);

        let data = [0u8, 1, 2, 255];
        ok(|e| rask_value_bytes(data.as_ptr(), 4, &mut v, e));
        assert_eq!(rask_value_kind(v), rask_kind::RASK_KIND_BIN);
        let (mut d, mut n) = (null(), 0usize);
        ok(|e| rask_value_get_bytes(v, &mut d, &mut n, e));
        assert_eq!(std::slice::from_raw_parts(d, n), &data);
        fails(RASK_ERR_TYPE, &["expected a bin"], |e| {
            let i = rask_value_int(1);
            let st = rask_value_get_bytes(i, &mut d, &mut n, e);
            rask_value_free(i);
            st
        });
        let copy = rask_value_clone(v);
        rask_value_free(v);
        ok(|e| rask_value_get_bytes(copy, &mut d, &mut n, e));
        assert_eq!(std::slice::from_raw_parts(d, n), &data);
        rask_value_free(copy);
    }
}

#[test]
fn arrays_maps_and_msgpack() {
    unsafe {
        let arr = rask_value_array_new();
        ok(|e| rask_value_array_push(arr, rask_value_int(1), e));
        ok(|e| rask_value_array_push(arr, rask_value_float(2.0), e));
        let map = rask_value_map_new();
        let mut k = null_mut();
        ok(|e| rask_value_str(b"name".as_ptr().cast(), 4, &mut k, e));
        ok(|e| rask_value_map_insert(map, k, rask_value_bool(false), e));
        ok(|e| rask_value_array_push(arr, map, e));
        let mut n = 0;
        ok(|e| rask_value_len(arr, &mut n, e));
        assert_eq!(n, 3);
        let mut el = null();
        ok(|e| rask_value_array_get(arr, 0, &mut el, e));
        assert_eq!(get_int(el), 1);
        fails(RASK_ERR_INVALID_ARG, &["index 3", "length 3"], |e| {
            rask_value_array_get(arr, 3, &mut el, e)
        });
        let mut m = null();
        ok(|e| rask_value_array_get(arr, 2, &mut m, e));
        assert_eq!(rask_value_kind(m), rask_kind::RASK_KIND_MAP);
        let (mut key, mut val) = (null(), null());
        ok(|e| rask_value_map_key(m, 0, &mut key, e));
        ok(|e| rask_value_map_value(m, 0, &mut val, e));
        assert_eq!(rask_value_kind(key), rask_kind::RASK_KIND_STR);
        assert_eq!(rask_value_kind(val), rask_kind::RASK_KIND_BOOL);
        fails(RASK_ERR_INVALID_ARG, &["index 1"], |e| {
            rask_value_map_key(m, 1, &mut key, e)
        });
        fails(RASK_ERR_TYPE, &["expected a map", "array"], |e| {
            rask_value_map_value(arr, 0, &mut val, e)
        });
        // Pushing onto a non-array consumes the element anyway.
        fails(RASK_ERR_TYPE, &["expected an array", "map"], |e| {
            rask_value_array_push(m as *mut rask_value, rask_value_int(9), e)
        });
        fails(RASK_ERR_TYPE, &["expected a map"], |e| {
            rask_value_map_insert(arr, rask_value_nil(), rask_value_nil(), e)
        });

        // msgpack round trip.
        let (mut buf, mut len) = (null_mut(), 0usize);
        ok(|e| rask_value_to_msgpack(arr, &mut buf, &mut len, e));
        assert!(len > 0);
        let mut back = null_mut();
        ok(|e| rask_value_from_msgpack(buf, len, &mut back, e));
        let (mut b2, mut l2) = (null_mut(), 0usize);
        ok(|e| rask_value_to_msgpack(back, &mut b2, &mut l2, e));
        assert_eq!(
            std::slice::from_raw_parts(buf, len),
            std::slice::from_raw_parts(b2, l2)
        );
        fails(RASK_ERR_DECODE, &["byte"], |e| {
            rask_value_from_msgpack(buf, len - 1, &mut back, e)
        });
        fails(RASK_ERR_DECODE, &[], |e| {
            rask_value_from_msgpack(null(), 0, &mut back, e)
        });
        rask_buffer_free(buf, len);
        rask_buffer_free(b2, l2);
        rask_buffer_free(null_mut(), 0);
        rask_value_free(back);
        rask_value_free(arr);
    }
}

#[test]
fn tensors() {
    unsafe {
        let data: [f64; 6] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let shape = [2usize, 3];
        let mut t = null_mut();
        ok(|e| {
            rask_value_tensor(
                rask_dtype::RASK_DTYPE_FLOAT64 as i32,
                shape.as_ptr(),
                2,
                data.as_ptr().cast(),
                48,
                &mut t,
                e,
            )
        });
        assert_eq!(rask_value_kind(t), rask_kind::RASK_KIND_TENSOR);
        let mut dtype = rask_dtype::RASK_DTYPE_BOOL;
        let (mut ndim, mut sh, mut d, mut nbytes) = (0usize, null(), null(), 0usize);
        ok(|e| rask_value_tensor_info(t, &mut dtype, &mut ndim, &mut sh, &mut d, &mut nbytes, e));
        assert_eq!(dtype, rask_dtype::RASK_DTYPE_FLOAT64);
        assert_eq!(std::slice::from_raw_parts(sh, ndim), &shape);
        assert_eq!(nbytes, 48);
        assert_eq!(std::slice::from_raw_parts(d.cast::<f64>(), 6), &data);
        // Outputs not wanted may be NULL.
        ok(|e| {
            rask_value_tensor_info(
                t,
                null_mut(),
                &mut ndim,
                null_mut(),
                null_mut(),
                null_mut(),
                e,
            )
        });
        let mut n = 0;
        ok(|e| rask_value_len(t, &mut n, e));
        assert_eq!(n, 6);

        // The builtin sum reads tensors.
        let g = rask_graph_new();
        ok(|e| rask_graph_add_value(g, c("t").as_ptr(), t, e));
        ok(|e| {
            rask_graph_add_task_refs(
                g,
                c("s").as_ptr(),
                c("sum").as_ptr(),
                [c("t").as_ptr()].as_ptr(),
                1,
                e,
            )
        });
        let s = compute_one(g, "s", null()).unwrap();
        let mut f = 0.0;
        ok(|e| rask_value_get_float(s, &mut f, e));
        assert_eq!(f, 21.0);
        rask_value_free(s);
        rask_graph_free(g);

        // A scalar tensor: ndim 0, shape NULL.
        let one = 7i32;
        ok(|e| {
            rask_value_tensor(
                rask_dtype::RASK_DTYPE_INT32 as i32,
                null(),
                0,
                (&one as *const i32).cast(),
                4,
                &mut t,
                e,
            )
        });
        rask_value_free(t);
        // Bad sizes, dtypes and dimensions.
        fails(RASK_ERR_INVALID_ARG, &["48", "40"], |e| {
            rask_value_tensor(
                rask_dtype::RASK_DTYPE_FLOAT64 as i32,
                shape.as_ptr(),
                2,
                data.as_ptr().cast(),
                40,
                &mut t,
                e,
            )
        });
        fails(RASK_ERR_INVALID_ARG, &["11", "rask_dtype"], |e| {
            rask_value_tensor(11, shape.as_ptr(), 2, data.as_ptr().cast(), 48, &mut t, e)
        });
        fails(RASK_ERR_INVALID_ARG, &["-1"], |e| {
            rask_value_tensor(-1, shape.as_ptr(), 2, data.as_ptr().cast(), 48, &mut t, e)
        });
        let many = [1usize; 33];
        fails(RASK_ERR_INVALID_ARG, &["33"], |e| {
            rask_value_tensor(
                rask_dtype::RASK_DTYPE_UINT8 as i32,
                many.as_ptr(),
                33,
                data.as_ptr().cast(),
                1,
                &mut t,
                e,
            )
        });
        fails(RASK_ERR_TYPE, &["expected a tensor"], |e| {
            let v = rask_value_nil();
            let st = rask_value_tensor_info(
                v,
                null_mut(),
                null_mut(),
                null_mut(),
                null_mut(),
                null_mut(),
                e,
            );
            rask_value_free(v);
            st
        });
    }
}

// ---------------------------------------------------------------------------
// Invalid UTF-8.

#[test]
fn invalid_utf8_is_reported_with_the_parameter() {
    unsafe {
        let g = rask_graph_new();
        fails(
            RASK_ERR_INVALID_UTF8,
            &["rask_graph_add_value", "'key'"],
            |e| rask_graph_add_value(g, bad(), rask_value_nil(), e),
        );
        fails(RASK_ERR_INVALID_UTF8, &["'key'"], |e| {
            rask_graph_add_task(g, bad(), c("inc").as_ptr(), null(), 0, e)
        });
        fails(RASK_ERR_INVALID_UTF8, &["'func'"], |e| {
            rask_graph_add_task(g, c("k").as_ptr(), bad(), null(), 0, e)
        });
        fails(RASK_ERR_INVALID_UTF8, &["'refs[1]'"], |e| {
            rask_graph_add_task_refs(
                g,
                c("k").as_ptr(),
                c("inc").as_ptr(),
                [c("a").as_ptr(), bad()].as_ptr(),
                2,
                e,
            )
        });
        fails(RASK_ERR_INVALID_UTF8, &["rask_arg_ref", "'key'"], |e| {
            let mut a = null_mut();
            rask_arg_ref(bad(), &mut a, e)
        });
        assert_eq!(rask_graph_len(g), 0);
        let reg = rask_registry_new();
        fails(RASK_ERR_INVALID_UTF8, &["'name'"], |e| {
            rask_registry_add_callback(reg, bad(), Some(c_inc), null_mut(), None, e)
        });
        fails(RASK_ERR_INVALID_UTF8, &["'name'"], |e| {
            rask_registry_add_pulled(reg, bad(), e)
        });
        ok(|e| rask_graph_add_value(g, c("a").as_ptr(), rask_value_nil(), e));
        let mut results = [null_mut(); 2];
        fails(RASK_ERR_INVALID_UTF8, &["rask_compute", "'keys[1]'"], |e| {
            rask_compute(
                g,
                [c("a").as_ptr(), bad()].as_ptr(),
                2,
                reg,
                null(),
                results.as_mut_ptr(),
                null_mut(),
                e,
            )
        });
        let mut comp = null_mut();
        fails(RASK_ERR_INVALID_UTF8, &["'keys[0]'"], |e| {
            rask_computation_start(g, [bad()].as_ptr(), 1, reg, null(), &mut comp, e)
        });
        rask_registry_free(reg);
        rask_graph_free(g);
    }
}

// ---------------------------------------------------------------------------
// NULL for every pointer argument that must not be NULL.

#[test]
fn null_arguments_are_reported_by_name() {
    unsafe {
        let mut v = null_mut();
        let mut out_i = 0i64;
        let mut out_u = 0u64;
        let mut out_f = 0.0f64;
        let mut out_b = false;
        let mut out_n = 0usize;
        let mut out_p: *const c_char = null();
        let mut out_d: *const u8 = null();
        let mut out_v: *const rask_value = null();
        let mut buf: *mut u8 = null_mut();
        let some = rask_value_int(1);
        let arr = rask_value_array_new();
        let map = rask_value_map_new();

        // Values.
        null_arg("rask_value_str", "s", |e| {
            rask_value_str(null(), 3, &mut v, e)
        });
        null_arg("rask_value_str", "out", |e| {
            rask_value_str(c("abc").as_ptr(), 3, null_mut(), e)
        });
        null_arg("rask_value_bytes", "data", |e| {
            rask_value_bytes(null(), 3, &mut v, e)
        });
        null_arg("rask_value_bytes", "out", |e| {
            rask_value_bytes(b"x".as_ptr(), 1, null_mut(), e)
        });
        null_arg("rask_value_array_push", "array", |e| {
            rask_value_array_push(null_mut(), rask_value_nil(), e)
        });
        null_arg("rask_value_array_push", "elem", |e| {
            rask_value_array_push(arr, null_mut(), e)
        });
        null_arg("rask_value_map_insert", "map", |e| {
            rask_value_map_insert(null_mut(), rask_value_nil(), rask_value_nil(), e)
        });
        null_arg("rask_value_map_insert", "key", |e| {
            rask_value_map_insert(map, null_mut(), rask_value_nil(), e)
        });
        null_arg("rask_value_map_insert", "val", |e| {
            rask_value_map_insert(map, rask_value_nil(), null_mut(), e)
        });
        let shape = [1usize];
        null_arg("rask_value_tensor", "shape", |e| {
            rask_value_tensor(0, null(), 1, b"x".as_ptr().cast(), 1, &mut v, e)
        });
        null_arg("rask_value_tensor", "data", |e| {
            rask_value_tensor(0, shape.as_ptr(), 1, null(), 1, &mut v, e)
        });
        null_arg("rask_value_tensor", "out", |e| {
            rask_value_tensor(0, shape.as_ptr(), 1, b"x".as_ptr().cast(), 1, null_mut(), e)
        });
        null_arg("rask_value_get_bool", "v", |e| {
            rask_value_get_bool(null(), &mut out_b, e)
        });
        null_arg("rask_value_get_bool", "out", |e| {
            rask_value_get_bool(some, null_mut(), e)
        });
        null_arg("rask_value_get_int", "v", |e| {
            rask_value_get_int(null(), &mut out_i, e)
        });
        null_arg("rask_value_get_int", "out", |e| {
            rask_value_get_int(some, null_mut(), e)
        });
        null_arg("rask_value_get_uint", "v", |e| {
            rask_value_get_uint(null(), &mut out_u, e)
        });
        null_arg("rask_value_get_uint", "out", |e| {
            rask_value_get_uint(some, null_mut(), e)
        });
        null_arg("rask_value_get_float", "v", |e| {
            rask_value_get_float(null(), &mut out_f, e)
        });
        null_arg("rask_value_get_float", "out", |e| {
            rask_value_get_float(some, null_mut(), e)
        });
        null_arg("rask_value_get_str", "v", |e| {
            rask_value_get_str(null(), &mut out_p, &mut out_n, e)
        });
        null_arg("rask_value_get_str", "ptr", |e| {
            rask_value_get_str(some, null_mut(), &mut out_n, e)
        });
        null_arg("rask_value_get_str", "len", |e| {
            rask_value_get_str(some, &mut out_p, null_mut(), e)
        });
        null_arg("rask_value_get_bytes", "v", |e| {
            rask_value_get_bytes(null(), &mut out_d, &mut out_n, e)
        });
        null_arg("rask_value_get_bytes", "data", |e| {
            rask_value_get_bytes(some, null_mut(), &mut out_n, e)
        });
        null_arg("rask_value_get_bytes", "len", |e| {
            rask_value_get_bytes(some, &mut out_d, null_mut(), e)
        });
        null_arg("rask_value_len", "v", |e| {
            rask_value_len(null(), &mut out_n, e)
        });
        null_arg("rask_value_len", "out", |e| {
            rask_value_len(arr, null_mut(), e)
        });
        null_arg("rask_value_array_get", "v", |e| {
            rask_value_array_get(null(), 0, &mut out_v, e)
        });
        null_arg("rask_value_array_get", "out", |e| {
            rask_value_array_get(arr, 0, null_mut(), e)
        });
        null_arg("rask_value_map_key", "v", |e| {
            rask_value_map_key(null(), 0, &mut out_v, e)
        });
        null_arg("rask_value_map_key", "out", |e| {
            rask_value_map_key(map, 0, null_mut(), e)
        });
        null_arg("rask_value_map_value", "v", |e| {
            rask_value_map_value(null(), 0, &mut out_v, e)
        });
        null_arg("rask_value_map_value", "out", |e| {
            rask_value_map_value(map, 0, null_mut(), e)
        });
        null_arg("rask_value_tensor_info", "v", |e| {
            rask_value_tensor_info(
                null(),
                null_mut(),
                null_mut(),
                null_mut(),
                null_mut(),
                null_mut(),
                e,
            )
        });
        null_arg("rask_value_from_msgpack", "data", |e| {
            rask_value_from_msgpack(null(), 3, &mut v, e)
        });
        null_arg("rask_value_from_msgpack", "out", |e| {
            rask_value_from_msgpack(b"\x01".as_ptr(), 1, null_mut(), e)
        });
        null_arg("rask_value_to_msgpack", "v", |e| {
            rask_value_to_msgpack(null(), &mut buf, &mut out_n, e)
        });
        null_arg("rask_value_to_msgpack", "data", |e| {
            rask_value_to_msgpack(some, null_mut(), &mut out_n, e)
        });
        null_arg("rask_value_to_msgpack", "len", |e| {
            rask_value_to_msgpack(some, &mut buf, null_mut(), e)
        });

        // Args.
        let mut a = null_mut();
        null_arg("rask_arg_ref", "key", |e| rask_arg_ref(null(), &mut a, e));
        null_arg("rask_arg_ref", "out", |e| {
            rask_arg_ref(c("k").as_ptr(), null_mut(), e)
        });
        null_arg("rask_arg_list", "items", |e| {
            rask_arg_list(null(), 2, &mut a, e)
        });
        null_arg("rask_arg_list", "items[1]", |e| {
            rask_arg_list([rask_arg_int(1), null_mut()].as_ptr(), 2, &mut a, e)
        });
        null_arg("rask_arg_list", "out", |e| {
            rask_arg_list([rask_arg_int(1)].as_ptr(), 1, null_mut(), e)
        });

        // Graphs.
        let g = rask_graph_new();
        let mut g2 = null_mut();
        null_arg("rask_graph_add_value", "g", |e| {
            rask_graph_add_value(null_mut(), c("k").as_ptr(), rask_value_nil(), e)
        });
        null_arg("rask_graph_add_value", "key", |e| {
            rask_graph_add_value(g, null(), rask_value_nil(), e)
        });
        null_arg("rask_graph_add_value", "value", |e| {
            rask_graph_add_value(g, c("k").as_ptr(), null_mut(), e)
        });
        null_arg("rask_graph_add_task", "g", |e| {
            rask_graph_add_task(
                null_mut(),
                c("k").as_ptr(),
                c("inc").as_ptr(),
                [rask_arg_int(1)].as_ptr(),
                1,
                e,
            )
        });
        null_arg("rask_graph_add_task", "key", |e| {
            rask_graph_add_task(g, null(), c("inc").as_ptr(), null(), 0, e)
        });
        null_arg("rask_graph_add_task", "func", |e| {
            rask_graph_add_task(g, c("k").as_ptr(), null(), null(), 0, e)
        });
        null_arg("rask_graph_add_task", "args", |e| {
            rask_graph_add_task(g, c("k").as_ptr(), c("inc").as_ptr(), null(), 1, e)
        });
        null_arg("rask_graph_add_task", "args[0]", |e| {
            rask_graph_add_task(
                g,
                c("k").as_ptr(),
                c("inc").as_ptr(),
                [null_mut(), rask_arg_int(1)].as_ptr(),
                2,
                e,
            )
        });
        null_arg("rask_graph_add_task_refs", "g", |e| {
            rask_graph_add_task_refs(null_mut(), c("k").as_ptr(), c("inc").as_ptr(), null(), 0, e)
        });
        null_arg("rask_graph_add_task_refs", "key", |e| {
            rask_graph_add_task_refs(g, null(), c("inc").as_ptr(), null(), 0, e)
        });
        null_arg("rask_graph_add_task_refs", "func", |e| {
            rask_graph_add_task_refs(g, c("k").as_ptr(), null(), null(), 0, e)
        });
        null_arg("rask_graph_add_task_refs", "refs", |e| {
            rask_graph_add_task_refs(g, c("k").as_ptr(), c("inc").as_ptr(), null(), 1, e)
        });
        null_arg("rask_graph_add_task_refs", "refs[0]", |e| {
            rask_graph_add_task_refs(
                g,
                c("k").as_ptr(),
                c("inc").as_ptr(),
                [null()].as_ptr(),
                1,
                e,
            )
        });
        null_arg("rask_graph_from_msgpack", "data", |e| {
            rask_graph_from_msgpack(null(), 4, &mut g2, e)
        });
        null_arg("rask_graph_from_msgpack", "out", |e| {
            rask_graph_from_msgpack(b"\x80".as_ptr(), 1, null_mut(), e)
        });
        null_arg("rask_graph_validate", "g", |e| {
            rask_graph_validate(null(), e)
        });
        assert_eq!(rask_graph_len(g), 0, "nothing was added");
        assert_eq!(rask_graph_len(null()), 0);
        assert!(rask_graph_clone(null()).is_null());
        assert!(rask_graph_doc_output(null(), 0).is_null());
        rask_graph_free(null_mut());

        // Registries.
        let reg = rask_registry_new();
        null_arg("rask_registry_add_callback", "reg", |e| {
            rask_registry_add_callback(
                null_mut(),
                c("f").as_ptr(),
                Some(c_inc),
                null_mut(),
                None,
                e,
            )
        });
        null_arg("rask_registry_add_callback", "name", |e| {
            rask_registry_add_callback(reg, null(), Some(c_inc), null_mut(), None, e)
        });
        null_arg("rask_registry_add_callback", "callback", |e| {
            rask_registry_add_callback(reg, c("f").as_ptr(), None, null_mut(), None, e)
        });
        null_arg("rask_registry_add_pulled", "reg", |e| {
            rask_registry_add_pulled(null_mut(), c("f").as_ptr(), e)
        });
        null_arg("rask_registry_add_pulled", "name", |e| {
            rask_registry_add_pulled(reg, null(), e)
        });
        assert!(!rask_registry_contains(reg, c("f").as_ptr()));

        // Compute.
        ok(|e| rask_graph_add_value(g, c("a").as_ptr(), rask_value_int(1), e));
        let a_key = c("a");
        let keys = [a_key.as_ptr()];
        let mut results = [null_mut()];
        null_arg("rask_compute", "graph", |e| {
            rask_compute(
                null(),
                keys.as_ptr(),
                1,
                null(),
                null(),
                results.as_mut_ptr(),
                null_mut(),
                e,
            )
        });
        null_arg("rask_compute", "keys", |e| {
            rask_compute(
                g,
                null(),
                1,
                null(),
                null(),
                results.as_mut_ptr(),
                null_mut(),
                e,
            )
        });
        null_arg("rask_compute", "keys[0]", |e| {
            rask_compute(
                g,
                [null()].as_ptr(),
                1,
                null(),
                null(),
                results.as_mut_ptr(),
                null_mut(),
                e,
            )
        });
        null_arg("rask_compute", "results", |e| {
            rask_compute(
                g,
                keys.as_ptr(),
                1,
                null(),
                null(),
                null_mut(),
                null_mut(),
                e,
            )
        });
        // Nothing requested: nothing needed.
        ok(|e| rask_compute(g, null(), 0, null(), null(), null_mut(), null_mut(), e));

        let mut comp = null_mut();
        null_arg("rask_computation_start", "graph", |e| {
            rask_computation_start(null(), keys.as_ptr(), 1, null(), null(), &mut comp, e)
        });
        null_arg("rask_computation_start", "keys", |e| {
            rask_computation_start(g, null(), 1, null(), null(), &mut comp, e)
        });
        null_arg("rask_computation_start", "out", |e| {
            rask_computation_start(g, keys.as_ptr(), 1, null(), null(), null_mut(), e)
        });
        ok(|e| rask_computation_start(g, keys.as_ptr(), 1, null(), null(), &mut comp, e));
        let mut task = null_mut();
        let mut stats = rask_compute_stats::default();
        null_arg("rask_computation_next_task", "comp", |e| {
            rask_computation_next_task(null(), 0, &mut task, e)
        });
        null_arg("rask_computation_next_task", "out", |e| {
            rask_computation_next_task(comp, 0, null_mut(), e)
        });
        null_arg("rask_computation_wait", "comp", |e| {
            rask_computation_wait(null(), 0, e)
        });
        null_arg("rask_computation_results", "comp", |e| {
            rask_computation_results(null(), results.as_mut_ptr(), e)
        });
        null_arg("rask_computation_results", "results", |e| {
            rask_computation_results(comp, null_mut(), e)
        });
        null_arg("rask_computation_stats", "comp", |e| {
            rask_computation_stats(null(), &mut stats, e)
        });
        null_arg("rask_computation_stats", "stats", |e| {
            rask_computation_stats(comp, null_mut(), e)
        });
        null_arg("rask_computation_cancel", "comp", |e| {
            rask_computation_cancel(null(), e)
        });
        ok(|e| rask_computation_results(comp, results.as_mut_ptr(), e));
        assert_eq!(get_int(results[0]), 1);
        rask_value_free(results[0]);
        assert!(rask_computation_is_done(null()));
        rask_computation_free(comp);
        rask_computation_free(null_mut());

        // Tasks.
        null_arg("rask_task_complete", "task", |e| {
            rask_task_complete(null_mut(), rask_value_nil(), e)
        });
        null_arg("rask_task_fail", "task", |e| {
            rask_task_fail(null_mut(), c("m").as_ptr(), e)
        });
        let comp = pulled_computation();
        null_arg("rask_task_fail", "message", |e| {
            rask_task_fail(next(comp), null(), e)
        });
        fails(RASK_ERR_TASK_FAILED, &["without a message"], |e| {
            rask_computation_wait(comp, -1, e)
        });
        rask_computation_free(comp);
        assert!(rask_task_key(null()).is_null());
        assert!(rask_task_func(null()).is_null());
        assert_eq!(rask_task_nargs(null()), 0);
        assert!(rask_task_arg(null(), 0).is_null());
        rask_task_free(null_mut());

        rask_registry_free(reg);
        rask_graph_free(g);
        rask_value_free(some);
        rask_value_free(arr);
        rask_value_free(map);
    }
}

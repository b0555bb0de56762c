//! The C API of the distributed runtime, driven from Rust through its
//! `extern "C"` functions as a C program would: an in-process scheduler and
//! local cluster, clients and futures (submit, map, compute, gather,
//! scatter, cancel, wait, as_completed), workers with C callbacks and
//! pulled functions; NULL and non-UTF-8 arguments, and handles used in the
//! wrong state (a future after its client was freed, a client after its
//! cluster was freed).

use rask::capi::rask_status::*;
use rask::capi::*;
use std::ffi::{c_char, c_void, CStr, CString};
use std::ptr::{null, null_mut};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// Helpers (as in tests/capi.rs).

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

const BAD_UTF8: &[u8] = b"k\xff\xfe\0";

fn bad() -> *const c_char {
    BAD_UTF8.as_ptr().cast()
}

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

#[track_caller]
fn fails(want: rask_status, needles: &[&str], f: impl FnOnce(*mut *mut rask_error) -> rask_status) {
    let (st, msg) = call(f);
    assert_eq!(st, want, "message: {msg}");
    for n in needles {
        assert!(msg.contains(n), "'{msg}' should contain '{n}'");
    }
}

#[track_caller]
fn ok(f: impl FnOnce(*mut *mut rask_error) -> rask_status) {
    let (st, msg) = call(f);
    assert_eq!(st, RASK_OK, "{msg}");
}

#[track_caller]
fn null_arg(func: &str, param: &str, f: impl FnOnce(*mut *mut rask_error) -> rask_status) {
    fails(RASK_ERR_NULL_ARG, &[func, &format!("'{param}'"), "NULL"], f);
}

unsafe fn get_int(v: *const rask_value) -> i64 {
    let mut out = 0;
    ok(|e| rask_value_get_int(v, &mut out, e));
    out
}

unsafe fn str_of(p: *const c_char) -> String {
    assert!(!p.is_null());
    CStr::from_ptr(p).to_str().unwrap().to_owned()
}

/// A cluster of `workers` workers of one thread each, with `reg`'s
/// functions, and a client on it.
unsafe fn cluster(
    workers: u32,
    reg: *const rask_registry,
) -> (*mut rask_cluster, *mut rask_client) {
    let opts = rask_cluster_options {
        workers,
        threads_per_worker: 1,
        ..zeroed_cluster_options()
    };
    let mut cl = null_mut();
    ok(|e| rask_cluster_start(&opts, reg, &mut cl, e));
    let mut client = null_mut();
    ok(|e| rask_cluster_client(cl, &mut client, e));
    (cl, client)
}

fn zeroed_cluster_options() -> rask_cluster_options {
    // SAFETY: a plain C struct whose zero value means "the defaults".
    unsafe { std::mem::zeroed() }
}

unsafe fn submit(
    client: *const rask_client,
    func: &str,
    args: Vec<*mut rask_arg>,
) -> *mut rask_future {
    let mut f = null_mut();
    ok(|e| {
        rask_client_submit(
            client,
            c(func).as_ptr(),
            args.as_ptr(),
            args.len(),
            &mut f,
            e,
        )
    });
    assert!(!f.is_null());
    f
}

/// The integer result of a future, waiting up to 20 s.
unsafe fn result_int(f: *const rask_future) -> i64 {
    let mut v = null_mut();
    ok(|e| rask_future_result(f, 20_000, &mut v, e));
    let x = get_int(v);
    rask_value_free(v);
    x
}

/// Waits for a worker whose scheduler shut down to stop: a clean stop
/// (`RASK_OK`), as the Python and Julia suites require too. The scheduler
/// sends every peer `close` and waits for it to be written before it closes
/// the connection (docs/protocol.md, Closing), so the worker always hears
/// it; a lost connection (`RASK_ERR_CONNECTION`) here is a bug.
unsafe fn stopped(w: *const rask_worker) {
    let (st, msg) = call(|e| rask_worker_wait(w, 10_000, e));
    assert!(matches!(st, RASK_OK), "{st:?} {msg}");
}

unsafe extern "C" fn c_cube(
    _ud: *mut c_void,
    args: *const *const rask_value,
    nargs: usize,
    result: *mut *mut rask_value,
    err: *mut *mut rask_error,
) -> rask_status {
    let mut x = 0;
    if nargs != 1 || rask_value_get_int(*args, &mut x, null_mut()) != RASK_OK {
        *err = rask_error_new(
            RASK_ERR_INVALID_ARG as i32,
            c("c_cube expects an int").as_ptr(),
        );
        return RASK_ERR_INVALID_ARG;
    }
    *result = rask_value_int(x * x * x);
    RASK_OK
}

// ---------------------------------------------------------------------------
// Arguments checked before anything touches the network.

#[test]
fn null_and_non_utf8_arguments_are_named() {
    unsafe {
        let mut client = null_mut();
        null_arg("rask_client_connect", "address", |e| {
            rask_client_connect(null(), null(), &mut client, e)
        });
        fails(
            RASK_ERR_INVALID_UTF8,
            &["rask_client_connect", "'address'"],
            |e| rask_client_connect(bad(), null(), &mut client, e),
        );
        null_arg("rask_client_connect", "out", |e| {
            rask_client_connect(c("tcp://127.0.0.1:1").as_ptr(), null(), null_mut(), e)
        });
        let opts = rask_client_options {
            name: bad(),
            token: null(),
            timeout_ms: 0,
            tls_ca_file: null(),
            tls_cert_file: null(),
            tls_key_file: null(),
        };
        fails(RASK_ERR_INVALID_UTF8, &["'options->name'"], |e| {
            rask_client_connect(c("tcp://127.0.0.1:1").as_ptr(), &opts, &mut client, e)
        });
        assert!(client.is_null());

        // Arguments are consumed even when the client is NULL.
        let args = [rask_arg_int(1), rask_arg_int(2)];
        let mut f = null_mut();
        null_arg("rask_client_submit", "client", |e| {
            rask_client_submit(null(), c("add").as_ptr(), args.as_ptr(), 2, &mut f, e)
        });
        assert!(f.is_null());
        let args = [rask_arg_int(1), null_mut()];
        null_arg("rask_client_submit", "out", |e| {
            rask_client_submit(null(), c("add").as_ptr(), args.as_ptr(), 2, null_mut(), e)
        });
        let mut fs = [null_mut(); 2];
        let args = [rask_arg_int(1), rask_arg_int(2)];
        fails(RASK_ERR_INVALID_ARG, &["overflows"], |e| {
            rask_client_map(
                null(),
                c("inc").as_ptr(),
                args.as_ptr(),
                usize::MAX,
                2,
                fs.as_mut_ptr(),
                e,
            )
        });
        // (The arguments above were not taken: the count was unusable.)
        rask_arg_free(args[0]);
        rask_arg_free(args[1]);
        let args = [rask_arg_int(1), rask_arg_int(2)];
        null_arg("rask_client_map", "client", |e| {
            rask_client_map(
                null(),
                c("inc").as_ptr(),
                args.as_ptr(),
                2,
                1,
                fs.as_mut_ptr(),
                e,
            )
        });
        let mut v = [rask_value_int(1)];
        null_arg("rask_client_scatter", "client", |e| {
            rask_client_scatter(null(), v.as_mut_ptr(), 1, false, fs.as_mut_ptr(), e)
        });
        null_arg("rask_client_gather", "client", |e| {
            rask_client_gather(null(), null(), 0, -1, null_mut(), e)
        });
        null_arg("rask_client_cancel", "client", |e| {
            rask_client_cancel(null(), null(), 0, e)
        });
        null_arg("rask_client_wait", "client", |e| {
            rask_client_wait(null(), null(), 0, 0, 0, null_mut(), e)
        });
        null_arg("rask_client_compute", "client", |e| {
            rask_client_compute(null(), null(), null(), 0, null_mut(), e)
        });
        null_arg("rask_client_wait_for_workers", "client", |e| {
            rask_client_wait_for_workers(null(), 1, 0, null_mut(), e)
        });
        rask_client_free(null_mut());
        assert_eq!(str_of(rask_client_scheduler_address(null())), "");

        // Futures.
        let mut out = null_mut();
        null_arg("rask_future_result", "future", |e| {
            rask_future_result(null(), 0, &mut out, e)
        });
        null_arg("rask_future_result", "out", |e| {
            rask_future_result(null(), 0, null_mut(), e)
        });
        assert!(rask_future_key(null()).is_null());
        assert_eq!(
            rask_future_status(null()),
            rask_future_state::RASK_FUTURE_ERROR
        );
        assert!(rask_future_clone(null()).is_null());
        assert!(rask_arg_future(null()).is_null());
        rask_future_free(null_mut());

        // as_completed.
        let mut ac = null_mut();
        null_arg("rask_as_completed_new", "client", |e| {
            rask_as_completed_new(null(), null(), 0, &mut ac, e)
        });
        null_arg("rask_as_completed_add", "ac", |e| {
            rask_as_completed_add(null(), null(), e)
        });
        let mut f = null_mut();
        null_arg("rask_as_completed_next", "ac", |e| {
            rask_as_completed_next(null(), 0, &mut f, e)
        });
        assert_eq!(rask_as_completed_count(null()), 0);
        rask_as_completed_free(null_mut());

        // Workers.
        let mut w = null_mut();
        null_arg("rask_worker_start", "scheduler_address", |e| {
            rask_worker_start(null(), null(), null(), &mut w, e)
        });
        fails(RASK_ERR_INVALID_UTF8, &["'scheduler_address'"], |e| {
            rask_worker_start(bad(), null(), null(), &mut w, e)
        });
        let mut wopts: rask_worker_options = std::mem::zeroed();
        wopts.host = bad();
        fails(RASK_ERR_INVALID_UTF8, &["'options->host'"], |e| {
            rask_worker_start(c("tcp://127.0.0.1:1").as_ptr(), &wopts, null(), &mut w, e)
        });
        let mut t = null_mut();
        null_arg("rask_worker_next_task", "worker", |e| {
            rask_worker_next_task(null(), 0, &mut t, e)
        });
        null_arg("rask_worker_wait", "worker", |e| {
            rask_worker_wait(null(), 0, e)
        });
        null_arg("rask_worker_stop", "worker", |e| {
            rask_worker_stop(null(), e)
        });
        assert_eq!(str_of(rask_worker_address(null())), "");
        assert!(rask_worker_stop_reason(null()).is_null());
        rask_worker_free(null_mut());

        // Scheduler and cluster.
        let mut s = null_mut();
        null_arg("rask_scheduler_start", "out", |e| {
            rask_scheduler_start(null(), null_mut(), e)
        });
        let mut sopts: rask_scheduler_options = std::mem::zeroed();
        sopts.host = bad();
        fails(RASK_ERR_INVALID_UTF8, &["'options->host'"], |e| {
            rask_scheduler_start(&sopts, &mut s, e)
        });
        assert!(s.is_null());
        assert_eq!(str_of(rask_scheduler_address(null())), "");
        rask_scheduler_free(null_mut());
        null_arg("rask_cluster_start", "out", |e| {
            rask_cluster_start(null(), null(), null_mut(), e)
        });
        null_arg("rask_cluster_client", "cluster", |e| {
            rask_cluster_client(null(), &mut client, e)
        });
        assert_eq!(str_of(rask_cluster_address(null())), "");
        rask_cluster_free(null_mut());
    }
}

#[test]
fn nothing_listening_is_a_connection_error() {
    unsafe {
        // A port that was free a moment ago.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = c(&format!("tcp://127.0.0.1:{port}"));
        let opts = rask_client_options {
            name: null(),
            token: null(),
            timeout_ms: 2000,
            tls_ca_file: null(),
            tls_cert_file: null(),
            tls_key_file: null(),
        };
        let mut client = null_mut();
        fails(RASK_ERR_CONNECTION, &["connection failed"], |e| {
            rask_client_connect(addr.as_ptr(), &opts, &mut client, e)
        });
        assert!(client.is_null());
        let mut w = null_mut();
        fails(RASK_ERR_CONNECTION, &["cannot join the scheduler"], |e| {
            rask_worker_start(addr.as_ptr(), null(), null(), &mut w, e)
        });
        assert!(w.is_null());
    }
}

#[test]
fn a_cluster_with_a_c_callback_runs_submit_map_and_futures_as_arguments() {
    unsafe {
        let reg = rask_registry_new();
        ok(|e| {
            rask_registry_add_callback(reg, c("c_cube").as_ptr(), Some(c_cube), null_mut(), None, e)
        });
        let (cl, client) = cluster(2, reg);
        rask_registry_free(reg); // the workers have their copies
        assert!(str_of(rask_cluster_address(cl)).starts_with("tcp://127.0.0.1:"));
        assert_eq!(
            str_of(rask_client_scheduler_address(client)),
            str_of(rask_cluster_address(cl))
        );

        // submit, and the same call again: one key.
        let x = submit(client, "inc", vec![rask_arg_int(41)]);
        let x2 = submit(client, "inc", vec![rask_arg_int(41)]);
        assert_eq!(str_of(rask_future_key(x)), str_of(rask_future_key(x2)));
        assert!(str_of(rask_future_key(x)).starts_with("inc-"));
        assert_eq!(result_int(x), 42);
        assert_eq!(
            rask_future_status(x),
            rask_future_state::RASK_FUTURE_FINISHED
        );
        rask_future_free(x2);

        // map: two arguments per call.
        let args: Vec<*mut rask_arg> = (0..5i64)
            .flat_map(|i| [rask_arg_int(i), rask_arg_int(10 * i)])
            .collect();
        let mut sums = [null_mut(); 5];
        ok(|e| {
            rask_client_map(
                client,
                c("add").as_ptr(),
                args.as_ptr(),
                5,
                2,
                sums.as_mut_ptr(),
                e,
            )
        });
        // map of the C function, one argument per call.
        let args: Vec<*mut rask_arg> = (1..=5i64).map(|i| rask_arg_int(i)).collect();
        let mut cubes = [null_mut(); 5];
        ok(|e| {
            rask_client_map(
                client,
                c("c_cube").as_ptr(),
                args.as_ptr(),
                5,
                1,
                cubes.as_mut_ptr(),
                e,
            )
        });

        // Futures as arguments, inside a list: sum(cubes) + x.
        let items: Vec<*mut rask_arg> = cubes.iter().map(|&f| rask_arg_future(f)).collect();
        let mut list = null_mut();
        ok(|e| rask_arg_list(items.as_ptr(), items.len(), &mut list, e));
        let total = submit(client, "sum", vec![list]);
        let big = submit(
            client,
            "add",
            vec![rask_arg_future(total), rask_arg_future(x)],
        );

        // gather, in order.
        let all: Vec<*const rask_future> =
            sums.iter().chain(&cubes).map(|&f| f as *const _).collect();
        let mut values = vec![null_mut(); all.len()];
        ok(|e| {
            rask_client_gather(
                client,
                all.as_ptr(),
                all.len(),
                20_000,
                values.as_mut_ptr(),
                e,
            )
        });
        let got: Vec<i64> = values.iter().map(|&v| get_int(v)).collect();
        assert_eq!(got, [0, 11, 22, 33, 44, 1, 8, 27, 64, 125]);
        values.into_iter().for_each(|v| rask_value_free(v));
        assert_eq!(result_int(total), 225);
        assert_eq!(result_int(big), 267);

        // wait: everything is done now.
        let mut done = vec![false; all.len()];
        ok(|e| {
            rask_client_wait(
                client,
                all.as_ptr(),
                all.len(),
                rask_wait_mode::RASK_WAIT_ALL_COMPLETED as i32,
                0,
                done.as_mut_ptr(),
                e,
            )
        });
        assert!(done.iter().all(|&d| d));
        fails(RASK_ERR_INVALID_ARG, &["rask_client_wait", "mode 7"], |e| {
            rask_client_wait(client, all.as_ptr(), all.len(), 7, 0, null_mut(), e)
        });

        // scatter (round robin and broadcast), then use the futures.
        let mut vals = [rask_value_int(1000), rask_value_int(2000)];
        let mut sc = [null_mut(); 2];
        ok(|e| rask_client_scatter(client, vals.as_mut_ptr(), 2, false, sc.as_mut_ptr(), e));
        let mut bval = [rask_value_int(5)];
        let mut bc = [null_mut()];
        ok(|e| rask_client_scatter(client, bval.as_mut_ptr(), 1, true, bc.as_mut_ptr(), e));
        assert!(str_of(rask_future_key(sc[0])).starts_with("scatter-"));
        let s = submit(
            client,
            "sum",
            vec![{
                let items = [
                    rask_arg_future(sc[0]),
                    rask_arg_future(sc[1]),
                    rask_arg_future(bc[0]),
                ];
                let mut l = null_mut();
                ok(|e| rask_arg_list(items.as_ptr(), 3, &mut l, e));
                l
            }],
        );
        assert_eq!(result_int(s), 3005);

        // clone: another reference; freeing one keeps the other usable.
        let t2 = rask_future_clone(total);
        rask_future_free(total);
        assert_eq!(result_int(t2), 225);

        for f in sums.into_iter().chain(cubes).chain(sc).chain(bc) {
            rask_future_free(f);
        }
        for f in [x, t2, big, s] {
            rask_future_free(f);
        }
        rask_client_free(client);
        rask_cluster_free(cl);
    }
}

#[test]
fn as_completed_yields_each_future_once_and_takes_more_while_iterating() {
    unsafe {
        let (cl, client) = cluster(2, null());
        let fs: Vec<*mut rask_future> = (0..6i64)
            .map(|i| submit(client, "inc", vec![rask_arg_int(i)]))
            .collect();
        let cfs: Vec<*const rask_future> = fs.iter().map(|&f| f as *const _).collect();
        let mut ac = null_mut();
        ok(|e| rask_as_completed_new(client, cfs.as_ptr(), cfs.len(), &mut ac, e));
        assert_eq!(rask_as_completed_count(ac), 6);
        let mut seen = Vec::new();
        let mut added = 0;
        loop {
            let mut f = null_mut();
            let (st, msg) = call(|e| rask_as_completed_next(ac, 20_000, &mut f, e));
            if st == RASK_DONE {
                assert!(f.is_null());
                break;
            }
            assert_eq!(st, RASK_OK, "{msg}");
            let v = result_int(f);
            seen.push(v);
            if v < 4 {
                // More work, depending on what just finished.
                let more = submit(client, "add", vec![rask_arg_future(f), rask_arg_int(100)]);
                ok(|e| rask_as_completed_add(ac, more, e));
                rask_future_free(more); // the iterator holds its own reference
                added += 1;
            }
            rask_future_free(f);
        }
        seen.sort();
        assert_eq!(added, 3);
        assert_eq!(seen, [1, 2, 3, 4, 5, 6, 101, 102, 103]);
        assert_eq!(rask_as_completed_count(ac), 0);
        // Done stays done until something is added.
        let mut f = null_mut();
        let (st, _) = call(|e| rask_as_completed_next(ac, 0, &mut f, e));
        assert_eq!(st, RASK_DONE);
        rask_as_completed_free(ac);

        // A future of another client is refused, not a panic.
        let mut other = null_mut();
        ok(|e| rask_cluster_client(cl, &mut other, e));
        let theirs = submit(other, "inc", vec![rask_arg_int(1)]);
        let mut ac = null_mut();
        fails(
            RASK_ERR_INVALID_ARG,
            &["futures[1]", "another client"],
            |e| {
                let two = [fs[0] as *const _, theirs as *const _];
                rask_as_completed_new(client, two.as_ptr(), 2, &mut ac, e)
            },
        );
        assert!(ac.is_null());
        ok(|e| rask_as_completed_new(client, null(), 0, &mut ac, e));
        fails(RASK_ERR_INVALID_ARG, &["another client"], |e| {
            rask_as_completed_add(ac, theirs, e)
        });
        rask_as_completed_free(ac);
        let mut v = [null_mut()];
        fails(
            RASK_ERR_INVALID_ARG,
            &["rask_client_gather", "another client"],
            |e| {
                rask_client_gather(
                    client,
                    [theirs as *const _].as_ptr(),
                    1,
                    -1,
                    v.as_mut_ptr(),
                    e,
                )
            },
        );
        rask_future_free(theirs);
        rask_client_free(other);
        fs.into_iter().for_each(|f| rask_future_free(f));
        rask_client_free(client);
        rask_cluster_free(cl);
    }
}

#[test]
fn remote_failures_name_the_task_function_worker_and_message() {
    unsafe {
        let reg = rask_registry_new();
        ok(|e| {
            rask_registry_add_callback(reg, c("c_cube").as_ptr(), Some(c_cube), null_mut(), None, e)
        });
        let (cl, client) = cluster(1, reg);
        rask_registry_free(reg);
        let mut s = null_mut();
        ok(|e| rask_value_str(c("nope").as_ptr(), 4, &mut s, e));
        let bad = submit(client, "c_cube", vec![rask_arg_value(s)]);
        let key = str_of(rask_future_key(bad));
        let mut v = null_mut();
        fails(
            RASK_ERR_TASK_FAILED,
            &[&key, "c_cube", "tcp://127.0.0.1:", "c_cube expects an int"],
            |e| rask_future_result(bad, 20_000, &mut v, e),
        );
        assert!(v.is_null());
        assert_eq!(
            rask_future_status(bad),
            rask_future_state::RASK_FUTURE_ERROR
        );
        // A task depending on it fails too, naming the failed dependency.
        let dep = submit(client, "inc", vec![rask_arg_future(bad)]);
        fails(
            RASK_ERR_TASK_FAILED,
            &["because its dependency", &key, "c_cube expects an int"],
            |e| rask_future_result(dep, 20_000, &mut v, e),
        );
        // gather reports the first failure in order.
        let good = submit(client, "inc", vec![rask_arg_int(1)]);
        let mut vals = [null_mut(); 2];
        fails(RASK_ERR_TASK_FAILED, &[&key], |e| {
            rask_client_gather(
                client,
                [good as *const _, bad as *const _].as_ptr(),
                2,
                -1,
                vals.as_mut_ptr(),
                e,
            )
        });
        assert!(vals.iter().all(|v| v.is_null()));
        // A function no worker offers: the task waits for a worker that
        // does.
        let nobody = submit(client, "no_such_function", vec![rask_arg_int(1)]);
        let (st, _) = call(|e| rask_future_result(nobody, 100, &mut v, e));
        assert_eq!(st, RASK_TIMEOUT);
        assert_eq!(
            rask_future_status(nobody),
            rask_future_state::RASK_FUTURE_PENDING
        );
        // Cancelled futures.
        let slow = submit(client, "inc", vec![rask_arg_int(77)]);
        ok(|e| rask_client_cancel(client, [slow as *const _].as_ptr(), 1, e));
        assert_eq!(
            rask_future_status(slow),
            rask_future_state::RASK_FUTURE_CANCELLED
        );
        fails(RASK_ERR_CANCELLED, &["cancelled"], |e| {
            rask_future_result(slow, 1000, &mut v, e)
        });
        // A reference by name is for graphs, not for submit.
        let mut r = null_mut();
        ok(|e| rask_arg_ref(c("k").as_ptr(), &mut r, e));
        let mut f = null_mut();
        fails(
            RASK_ERR_INVALID_ARG,
            &["rask_client_submit", "args[0]", "'k'", "rask_arg_future"],
            |e| rask_client_submit(client, c("inc").as_ptr(), [r].as_ptr(), 1, &mut f, e),
        );
        for f in [bad, dep, good, nobody, slow] {
            rask_future_free(f);
        }
        rask_client_free(client);
        rask_cluster_free(cl);
    }
}

#[test]
fn compute_sends_the_needed_part_of_a_graph() {
    unsafe {
        let (cl, client) = cluster(2, null());
        let g = rask_graph_new();
        ok(|e| rask_graph_add_value(g, c("a").as_ptr(), rask_value_int(1), e));
        ok(|e| rask_graph_add_value(g, c("x").as_ptr(), rask_value_int(10), e));
        for (k, f, refs) in [
            ("b", "inc", vec!["a"]),
            ("y", "inc", vec!["x"]),
            ("z", "add", vec!["b", "y"]),
            ("unused", "no_such", vec!["a"]),
        ] {
            let refs: Vec<CString> = refs.into_iter().map(c).collect();
            let ptrs: Vec<*const c_char> = refs.iter().map(|r| r.as_ptr()).collect();
            ok(|e| {
                rask_graph_add_task_refs(
                    g,
                    c(k).as_ptr(),
                    c(f).as_ptr(),
                    ptrs.as_ptr(),
                    ptrs.len(),
                    e,
                )
            });
        }
        let (z, a) = (c("z"), c("a"));
        let keys = [z.as_ptr(), a.as_ptr()];
        let mut fs = [null_mut(); 2];
        ok(|e| rask_client_compute(client, g, keys.as_ptr(), 2, fs.as_mut_ptr(), e));
        assert_eq!(str_of(rask_future_key(fs[0])), "z");
        assert_eq!(result_int(fs[0]), 13);
        assert_eq!(result_int(fs[1]), 1); // a literal that was asked for
                                          // A graph that refers outside itself.
        let bad = rask_graph_new();
        let q = c("q");
        ok(|e| {
            rask_graph_add_task_refs(
                bad,
                c("p").as_ptr(),
                c("inc").as_ptr(),
                [q.as_ptr()].as_ptr(),
                1,
                e,
            )
        });
        let mut out = [null_mut()];
        fails(RASK_ERR_GRAPH, &["'q'"], |e| {
            rask_client_compute(
                client,
                bad,
                [c("p").as_ptr()].as_ptr(),
                1,
                out.as_mut_ptr(),
                e,
            )
        });
        assert!(out[0].is_null());
        fails(RASK_ERR_GRAPH, &["'nope'"], |e| {
            rask_client_compute(
                client,
                g,
                [c("nope").as_ptr()].as_ptr(),
                1,
                out.as_mut_ptr(),
                e,
            )
        });
        fails(RASK_ERR_INVALID_UTF8, &["'keys[0]'"], |e| {
            rask_client_compute(client, g, [bad_key()].as_ptr(), 1, out.as_mut_ptr(), e)
        });
        rask_graph_free(bad);
        rask_graph_free(g);
        fs.into_iter().for_each(|f| rask_future_free(f));
        rask_client_free(client);
        rask_cluster_free(cl);
    }
}

fn bad_key() -> *const c_char {
    bad()
}

#[test]
fn handles_whose_other_side_is_gone_fail_cleanly() {
    unsafe {
        let (cl, client) = cluster(1, null());
        let f = submit(client, "inc", vec![rask_arg_int(1)]);
        assert_eq!(result_int(f), 2);
        let mut ac = null_mut();
        ok(|e| rask_as_completed_new(client, [f as *const _].as_ptr(), 1, &mut ac, e));
        let arg = rask_arg_future(f); // holds a reference of its own
                                      // A task nobody pulls keeps a future pending.
        let w_reg = rask_registry_new();
        ok(|e| rask_registry_add_pulled(w_reg, c("later").as_ptr(), e));
        let mut pulled = null_mut();
        ok(|e| rask_worker_start(rask_cluster_address(cl), null(), w_reg, &mut pulled, e));
        rask_registry_free(w_reg);
        let waiting = submit(client, "later", vec![rask_arg_int(0)]);
        assert_eq!(
            rask_future_status(waiting),
            rask_future_state::RASK_FUTURE_PENDING
        );

        // A future and an as_completed after their client was freed.
        rask_client_free(client);
        assert_eq!(
            rask_future_status(waiting),
            rask_future_state::RASK_FUTURE_ERROR
        );
        assert_eq!(
            rask_future_status(f),
            rask_future_state::RASK_FUTURE_FINISHED
        );
        rask_future_free(waiting);
        let mut v = null_mut();
        fails(RASK_ERR_STATE, &["rask_future_result", "was closed"], |e| {
            rask_future_result(f, 0, &mut v, e)
        });
        let mut g = null_mut();
        fails(
            RASK_ERR_STATE,
            &["rask_as_completed_next", "was closed"],
            |e| rask_as_completed_next(ac, 0, &mut g, e),
        );
        fails(RASK_ERR_STATE, &["was closed"], |e| {
            rask_as_completed_add(ac, f, e)
        });
        assert!(!rask_future_key(f).is_null());
        rask_as_completed_free(ac);
        // The argument of a freed client's future is refused by another client.
        let mut client2 = null_mut();
        ok(|e| rask_cluster_client(cl, &mut client2, e));
        let mut h = null_mut();
        fails(RASK_ERR_INVALID_ARG, &["another client"], |e| {
            rask_client_submit(client2, c("inc").as_ptr(), [arg].as_ptr(), 1, &mut h, e)
        });
        rask_future_free(f);

        // A client after its cluster was freed: calls fail, pending futures
        // turn to errors.
        let pending = submit(client2, "later", vec![rask_arg_int(1)]);
        assert_eq!(
            rask_future_status(pending),
            rask_future_state::RASK_FUTURE_PENDING
        );
        rask_cluster_free(cl);
        fails(RASK_ERR_CONNECTION, &[], |e| {
            rask_future_result(pending, 5000, &mut v, e)
        });
        assert_eq!(
            rask_future_status(pending),
            rask_future_state::RASK_FUTURE_ERROR
        );
        let mut h = null_mut();
        fails(RASK_ERR_CONNECTION, &[], |e| {
            rask_client_submit(
                client2,
                c("inc").as_ptr(),
                [rask_arg_int(1)].as_ptr(),
                1,
                &mut h,
                e,
            )
        });
        // The extra worker saw its scheduler go.
        stopped(pulled);
        assert!(!rask_worker_stop_reason(pulled).is_null());
        let mut t = null_mut();
        let (st, _) = call(|e| rask_worker_next_task(pulled, 0, &mut t, e));
        assert_eq!(st, RASK_DONE);
        rask_worker_free(pulled);
        rask_future_free(pending);
        rask_client_free(client2);
    }
}

#[test]
fn a_cluster_refuses_pulled_functions() {
    unsafe {
        let reg = rask_registry_new();
        ok(|e| rask_registry_add_pulled(reg, c("py_func").as_ptr(), e));
        let mut cl = null_mut();
        fails(
            RASK_ERR_INVALID_ARG,
            &["rask_cluster_start", "'py_func'", "rask_worker_start"],
            |e| rask_cluster_start(null(), reg, &mut cl, e),
        );
        assert!(cl.is_null());
        rask_registry_free(reg);
    }
}

#[test]
fn a_c_worker_serves_callbacks_and_pulled_tasks_to_a_scheduler() {
    unsafe {
        let mut s = null_mut();
        ok(|e| rask_scheduler_start(null(), &mut s, e));
        let addr = str_of(rask_scheduler_address(s));
        assert!(addr.starts_with("tcp://127.0.0.1:"), "{addr}");

        // A builtins-only worker and a C worker: c_cube (callback) and
        // p_double (pulled) exist only on the C worker.
        let mut plain = null_mut();
        ok(|e| rask_worker_start(rask_scheduler_address(s), null(), null(), &mut plain, e));
        let reg = rask_registry_new();
        ok(|e| {
            rask_registry_add_callback(reg, c("c_cube").as_ptr(), Some(c_cube), null_mut(), None, e)
        });
        ok(|e| rask_registry_add_pulled(reg, c("p_double").as_ptr(), e));
        let mut opts: rask_worker_options = std::mem::zeroed();
        let name = c("c-worker");
        opts.name = name.as_ptr();
        opts.threads = 1;
        let mut w = null_mut();
        ok(|e| rask_worker_start(rask_scheduler_address(s), &opts, reg, &mut w, e));
        rask_registry_free(reg);
        assert_eq!(str_of(rask_worker_name(w)), "c-worker");
        assert!(str_of(rask_worker_address(w)).starts_with("tcp://127.0.0.1:"));
        assert_ne!(
            str_of(rask_worker_address(w)),
            str_of(rask_worker_address(plain))
        );
        assert!(rask_worker_stop_reason(w).is_null());
        let (st, _) = call(|e| rask_worker_wait(w, 0, e));
        assert_eq!(st, RASK_TIMEOUT);

        let mut client = null_mut();
        ok(|e| rask_client_connect(rask_scheduler_address(s), null(), &mut client, e));
        let mut n = 0;
        ok(|e| rask_client_wait_for_workers(client, 2, 10_000, &mut n, e));
        assert_eq!(n, 2);
        let (st, _) = call(|e| rask_client_wait_for_workers(client, 3, 50, &mut n, e));
        assert_eq!((st, n), (RASK_TIMEOUT, 2));

        // cube = c_cube(3); d = p_double(cube); e = inc(d).
        let cube = submit(client, "c_cube", vec![rask_arg_int(3)]);
        let d = submit(client, "p_double", vec![rask_arg_future(cube)]);
        let e_ = submit(client, "inc", vec![rask_arg_future(d)]);
        // Nobody pulled yet: gather and wait time out.
        let mut vals = [null_mut()];
        let (st, _) = call(|er| {
            rask_client_gather(
                client,
                [e_ as *const _].as_ptr(),
                1,
                50,
                vals.as_mut_ptr(),
                er,
            )
        });
        assert_eq!(st, RASK_TIMEOUT);
        assert!(vals[0].is_null());
        let mut done = [true];
        let (st, _) = call(|er| {
            rask_client_wait(
                client,
                [e_ as *const _].as_ptr(),
                1,
                rask_wait_mode::RASK_WAIT_FIRST_COMPLETED as i32,
                20,
                done.as_mut_ptr(),
                er,
            )
        });
        assert_eq!((st, done[0]), (RASK_TIMEOUT, false));
        let mut v = null_mut();
        let (st, _) = call(|er| rask_future_result(e_, 0, &mut v, er));
        assert_eq!(st, RASK_TIMEOUT);

        // The host pulls p_double: the same rask_task as in local pull mode.
        let mut t = null_mut();
        ok(|er| rask_worker_next_task(w, 20_000, &mut t, er));
        assert_eq!(str_of(rask_task_func(t)), "p_double");
        assert_eq!(str_of(rask_task_key(t)), str_of(rask_future_key(d)));
        assert_eq!(rask_task_nargs(t), 1);
        let x = get_int(rask_task_arg(t, 0));
        assert_eq!(x, 27);
        ok(|er| rask_task_complete(t, rask_value_int(2 * x), er));
        assert_eq!(result_int(e_), 55);

        // A pulled task the host fails: the client gets the host's message.
        let bad = submit(client, "p_double", vec![rask_arg_int(-1)]);
        let mut t = null_mut();
        ok(|er| rask_worker_next_task(w, 20_000, &mut t, er));
        ok(|er| rask_task_fail(t, c("negative numbers are not doubled here").as_ptr(), er));
        fails(
            RASK_ERR_TASK_FAILED,
            &["p_double", "negative numbers are not doubled here"],
            |er| rask_future_result(bad, 20_000, &mut v, er),
        );

        // Two host threads pulling at once.
        let fs: Vec<*mut rask_future> = (0..20i64)
            .map(|i| submit(client, "p_double", vec![rask_arg_int(i)]))
            .collect();
        let wp = w as usize;
        let pullers: Vec<_> = (0..2)
            .map(|_| {
                std::thread::spawn(move || {
                    let w = wp as *const rask_worker;
                    let mut handled = 0;
                    loop {
                        let mut t = null_mut();
                        let (st, msg) = call(|er| rask_worker_next_task(w, 20_000, &mut t, er));
                        match st {
                            RASK_DONE => return handled,
                            RASK_OK => {
                                let x = get_int(rask_task_arg(t, 0));
                                ok(|er| rask_task_complete(t, rask_value_int(2 * x), er));
                                handled += 1;
                            }
                            other => panic!("{other:?} {msg}"),
                        }
                    }
                })
            })
            .collect();
        let cfs: Vec<*const rask_future> = fs.iter().map(|&f| f as *const _).collect();
        let mut values = vec![null_mut(); fs.len()];
        ok(|er| {
            rask_client_gather(
                client,
                cfs.as_ptr(),
                cfs.len(),
                20_000,
                values.as_mut_ptr(),
                er,
            )
        });
        let got: Vec<i64> = values.iter().map(|&v| get_int(v)).collect();
        assert_eq!(got, (0..20).map(|i| 2 * i).collect::<Vec<i64>>());
        values.into_iter().for_each(|v| rask_value_free(v));

        // A task held while the worker stops: completing it says DONE.
        let late = submit(client, "p_double", vec![rask_arg_int(100)]);
        let mut held = null_mut();
        let deadline = Instant::now() + Duration::from_secs(20);
        // The pullers may take it; keep pulling until one of us has it or
        // the future is done.
        while rask_future_status(late) == rask_future_state::RASK_FUTURE_PENDING
            && Instant::now() < deadline
        {
            let (st, _) = call(|er| rask_worker_next_task(w, 10, &mut held, er));
            if st == RASK_OK {
                break;
            }
        }
        ok(|er| rask_worker_stop(w, er));
        ok(|er| rask_worker_stop(w, er)); // idempotent
        let handled: usize = pullers.into_iter().map(|p| p.join().unwrap()).sum();
        assert!(handled >= 20, "{handled}");
        if !held.is_null() {
            let (st, _) = call(|er| rask_task_complete(held, rask_value_int(0), er));
            assert_eq!(st, RASK_DONE);
        }
        ok(|er| rask_worker_wait(w, -1, er));
        assert!(!str_of(rask_worker_stop_reason(w)).is_empty());
        let mut t = null_mut();
        let (st, _) = call(|er| rask_worker_next_task(w, 1000, &mut t, er));
        assert_eq!((st, t.is_null()), (RASK_DONE, true));

        for f in fs.into_iter().chain([cube, d, e_, bad, late]) {
            rask_future_free(f);
        }
        rask_client_free(client);
        rask_worker_free(w);
        // Shutting the scheduler down stops the other worker.
        rask_scheduler_free(s);
        stopped(plain);
        rask_worker_free(plain);
    }
}

#[test]
fn a_scheduler_on_a_taken_port_is_a_connection_error() {
    unsafe {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let mut o: rask_scheduler_options = std::mem::zeroed();
        o.port = port;
        let mut s = null_mut();
        fails(
            RASK_ERR_CONNECTION,
            &["cannot listen", &port.to_string()],
            |e| rask_scheduler_start(&o, &mut s, e),
        );
        assert!(s.is_null());
        // A token: clients without it are refused.
        let token = c("sesame");
        o.port = 0;
        o.token = token.as_ptr();
        ok(|e| rask_scheduler_start(&o, &mut s, e));
        let mut client = null_mut();
        fails(RASK_ERR_CONNECTION, &[], |e| {
            rask_client_connect(rask_scheduler_address(s), null(), &mut client, e)
        });
        let co = rask_client_options {
            name: null(),
            token: token.as_ptr(),
            timeout_ms: 5000,
            tls_ca_file: null(),
            tls_cert_file: null(),
            tls_key_file: null(),
        };
        ok(|e| rask_client_connect(rask_scheduler_address(s), &co, &mut client, e));
        rask_client_free(client);
        rask_scheduler_free(s);
    }
}

#[test]
fn submit_with_a_key_a_unique_key_or_retries() {
    unsafe {
        let (cl, client) = cluster(1, null());
        let mut o = rask_submit_options {
            key: null(),
            impure: false,
            retries: 0,
        };
        let key = c("my-key");
        o.key = key.as_ptr();
        let mut f = null_mut();
        ok(|e| {
            rask_client_submit_with(
                client,
                c("inc").as_ptr(),
                [rask_arg_int(1)].as_ptr(),
                1,
                &o,
                &mut f,
                e,
            )
        });
        assert_eq!(str_of(rask_future_key(f)), "my-key");
        assert_eq!(result_int(f), 2);
        // Impure: two calls, two keys.
        o.key = null();
        o.impure = true;
        let (mut a, mut b) = (null_mut(), null_mut());
        ok(|e| {
            rask_client_submit_with(
                client,
                c("inc").as_ptr(),
                [rask_arg_int(1)].as_ptr(),
                1,
                &o,
                &mut a,
                e,
            )
        });
        ok(|e| {
            rask_client_submit_with(
                client,
                c("inc").as_ptr(),
                [rask_arg_int(1)].as_ptr(),
                1,
                &o,
                &mut b,
                e,
            )
        });
        assert_ne!(str_of(rask_future_key(a)), str_of(rask_future_key(b)));
        assert_eq!(result_int(a) + result_int(b), 4);
        // NULL options: as rask_client_submit.
        let mut p = null_mut();
        ok(|e| {
            rask_client_submit_with(
                client,
                c("inc").as_ptr(),
                [rask_arg_int(1)].as_ptr(),
                1,
                null(),
                &mut p,
                e,
            )
        });
        assert!(str_of(rask_future_key(p)).starts_with("inc-"));
        // An empty or non-UTF-8 key.
        let empty = c("");
        o.key = empty.as_ptr();
        let mut q = null_mut();
        fails(RASK_ERR_INVALID_ARG, &["key is empty"], |e| {
            rask_client_submit_with(
                client,
                c("inc").as_ptr(),
                [rask_arg_int(1)].as_ptr(),
                1,
                &o,
                &mut q,
                e,
            )
        });
        o.key = bad();
        fails(RASK_ERR_INVALID_UTF8, &["'options->key'"], |e| {
            rask_client_submit_with(
                client,
                c("inc").as_ptr(),
                [rask_arg_int(1)].as_ptr(),
                1,
                &o,
                &mut q,
                e,
            )
        });
        assert!(q.is_null());
        for f in [f, a, b, p] {
            rask_future_free(f);
        }
        rask_client_free(client);
        rask_cluster_free(cl);
    }
}

#[test]
fn freeing_the_client_wakes_threads_waiting_on_its_futures() {
    unsafe {
        let (cl, client) = cluster(1, null());
        // A worker whose pulled function nobody runs: its tasks stay pending.
        let reg = rask_registry_new();
        ok(|e| rask_registry_add_pulled(reg, c("never").as_ptr(), e));
        let mut w = null_mut();
        ok(|e| rask_worker_start(rask_cluster_address(cl), null(), reg, &mut w, e));
        rask_registry_free(reg);
        let f = submit(client, "never", vec![rask_arg_int(1)]);
        let mut ac = null_mut();
        ok(|e| rask_as_completed_new(client, [f as *const _].as_ptr(), 1, &mut ac, e));
        let (fp, acp) = (f as usize, ac as usize);
        let waiter = std::thread::spawn(move || {
            let mut v = null_mut();
            call(|e| rask_future_result(fp as *const rask_future, -1, &mut v, e)).0
        });
        let iter = std::thread::spawn(move || {
            let mut g = null_mut();
            let st =
                call(|e| rask_as_completed_next(acp as *const rask_as_completed, -1, &mut g, e)).0;
            rask_future_free(g);
            st
        });
        std::thread::sleep(Duration::from_millis(100));
        rask_client_free(client);
        // Both wake: the result fails (the client closed under it), the
        // iterator yields the future, now erred. (On a machine so loaded
        // that a thread only started after the free, it gets RASK_ERR_STATE:
        // what matters is that nobody waits forever.)
        let w_st = waiter.join().unwrap();
        assert!(
            matches!(w_st, RASK_ERR_CONNECTION | RASK_ERR_STATE),
            "{w_st:?}"
        );
        let i_st = iter.join().unwrap();
        assert!(matches!(i_st, RASK_OK | RASK_ERR_STATE), "{i_st:?}");
        assert_eq!(rask_future_status(f), rask_future_state::RASK_FUTURE_ERROR);
        rask_as_completed_free(ac);
        rask_future_free(f);
        rask_worker_free(w);
        rask_cluster_free(cl);
    }
}

/// A `rask-scheduler` process on a free port; returns it and its address.
fn scheduler_process() -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rask-scheduler"))
        .args(["--port", "0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starting rask-scheduler");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let address = line
        .trim()
        .strip_prefix("rask-scheduler listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_owned();
    (child, address)
}

#[test]
fn a_worker_tells_a_lost_scheduler_from_a_clean_stop() {
    unsafe {
        // The scheduler process dies: the worker's pull loop ends with
        // RASK_DONE, and rask_worker_wait says the connection was lost.
        let (mut sched, address) = scheduler_process();
        let reg = rask_registry_new();
        ok(|e| rask_registry_add_pulled(reg, c("p").as_ptr(), e));
        let mut w = null_mut();
        ok(|e| rask_worker_start(c(&address).as_ptr(), null(), reg, &mut w, e));
        rask_registry_free(reg);
        sched.kill().unwrap();
        sched.wait().unwrap();
        let mut t = null_mut();
        let (st, _) = call(|e| rask_worker_next_task(w, 20_000, &mut t, e));
        assert_eq!(st, RASK_DONE);
        fails(RASK_ERR_CONNECTION, &["the worker stopped"], |e| {
            rask_worker_wait(w, 0, e)
        });
        assert!(!str_of(rask_worker_stop_reason(w)).is_empty());
        rask_worker_free(w);

        // The host stops the worker: a clean stop.
        let (sched, address) = scheduler_process();
        let mut w = null_mut();
        ok(|e| rask_worker_start(c(&address).as_ptr(), null(), null(), &mut w, e));
        ok(|e| rask_worker_stop(w, e));
        ok(|e| rask_worker_wait(w, 0, e));
        rask_worker_free(w);
        // The scheduler process shuts down (SIGTERM): the worker stops.
        let mut w = null_mut();
        ok(|e| rask_worker_start(c(&address).as_ptr(), null(), null(), &mut w, e));
        let pid = sched.id().to_string();
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        stopped(w);
        rask_worker_free(w);
        let mut sched = sched;
        sched.wait().unwrap();
    }
}

#[test]
fn rask_client_retire_workers_moves_results_and_the_worker_stops_cleanly() {
    unsafe {
        // A cluster of one worker, and a C worker joining it: the map's
        // results spread over both; the C worker is retired.
        let (cl, client) = cluster(1, null());
        let mut w = null_mut();
        ok(|e| rask_worker_start(rask_cluster_address(cl), null(), null(), &mut w, e));
        let mut n = 0;
        ok(|e| rask_client_wait_for_workers(client, 2, 10_000, &mut n, e));
        let args: Vec<*mut rask_arg> = (0..40i64).map(|i| rask_arg_int(i)).collect();
        let mut fs = [null_mut(); 40];
        ok(|e| {
            rask_client_map(
                client,
                c("inc").as_ptr(),
                args.as_ptr(),
                40,
                1,
                fs.as_mut_ptr(),
                e,
            )
        });
        for (i, &f) in fs.iter().enumerate() {
            assert_eq!(result_int(f), i as i64 + 1);
        }
        let unknown = [c("no-such-worker")];
        let names: Vec<*const c_char> = unknown.iter().map(|s| s.as_ptr()).collect();
        let (mut moved, mut lost) = (7usize, 7usize);
        fails(
            RASK_ERR_PROTOCOL,
            &["unknown-worker", "no-such-worker"],
            |e| {
                rask_client_retire_workers(
                    client,
                    names.as_ptr(),
                    1,
                    10_000,
                    &mut moved,
                    &mut lost,
                    e,
                )
            },
        );
        assert_eq!((moved, lost), (0, 0));
        let names = [rask_worker_address(w)];
        ok(|e| {
            rask_client_retire_workers(client, names.as_ptr(), 1, 30_000, &mut moved, &mut lost, e)
        });
        assert_eq!(lost, 0);
        // The retired worker stopped cleanly (the scheduler's close).
        ok(|e| rask_worker_wait(w, 10_000, e));
        ok(|e| rask_client_wait_for_workers(client, 1, 0, &mut n, e));
        assert_eq!(n, 1);
        // Every result is still there (inline values aside, the moved ones
        // are fetched from the remaining worker).
        let mut vals = [null_mut(); 40];
        let ptrs: Vec<*const rask_future> = fs.iter().map(|&f| f as *const _).collect();
        ok(|e| rask_client_gather(client, ptrs.as_ptr(), 40, 10_000, vals.as_mut_ptr(), e));
        for (i, &v) in vals.iter().enumerate() {
            assert_eq!(get_int(v), i as i64 + 1);
            rask_value_free(v);
        }
        for f in fs {
            rask_future_free(f);
        }
        rask_worker_free(w);
        rask_client_free(client);
        rask_cluster_free(cl);
    }
}

/// `rask_client_scheduler_info`, until `ready` holds of it or 20 s pass.
unsafe fn info_when(
    client: *const rask_client,
    ready: impl Fn(&rask_scheduler_info) -> bool,
) -> rask_scheduler_info {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut info = rask_scheduler_info::default();
        ok(|e| rask_client_scheduler_info(client, &mut info, e));
        if ready(&info) || Instant::now() >= deadline {
            return info;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn rask_client_scheduler_info_counts_tasks_by_state_workers_and_clients() {
    unsafe {
        let (cl, client) = cluster(2, null());
        let mut n = 0;
        ok(|e| rask_client_wait_for_workers(client, 2, 10_000, &mut n, e));
        let before = info_when(client, |_| true);
        assert_eq!((before.tasks, before.workers), (0, 2), "{before:?}");
        assert!(before.clients >= 1, "{before:?}");
        // A second client is counted.
        let mut other = null_mut();
        ok(|e| rask_client_connect(rask_cluster_address(cl), null(), &mut other, e));
        let two = info_when(client, |i| i.clients > before.clients);
        assert_eq!(two.clients, before.clients + 1, "{two:?}");
        // Three results held in memory...
        let done: Vec<_> = (0..3i64)
            .map(|i| submit(client, "inc", vec![rask_arg_int(i)]))
            .collect();
        for (i, &f) in done.iter().enumerate() {
            assert_eq!(result_int(f), i as i64 + 1);
        }
        // ... and two tasks no worker can run, held by the other client.
        let stuck: Vec<_> = (0..2i64)
            .map(|i| submit(other, "nobody-offers-this", vec![rask_arg_int(i)]))
            .collect();
        let held = info_when(client, |i| i.tasks == 5 && i.no_worker == 2);
        assert_eq!(
            (held.tasks, held.memory, held.no_worker),
            (5, 3, 2),
            "{held:?}"
        );
        assert_eq!(
            held.released + held.waiting + held.queued + held.processing + held.erred,
            0,
            "{held:?}"
        );
        // Released futures leave the scheduler.
        for f in done {
            rask_future_free(f);
        }
        let left = info_when(client, |i| i.tasks == 2);
        assert_eq!(
            (left.tasks, left.memory, left.no_worker),
            (2, 0, 2),
            "{left:?}"
        );
        for f in stuck {
            rask_future_free(f);
        }
        rask_client_free(other);
        let after = info_when(client, |i| i.tasks == 0 && i.clients == before.clients);
        assert_eq!(
            (after.tasks, after.clients, after.workers),
            (0, before.clients, 2),
            "{after:?}"
        );
        rask_client_free(client);
        rask_cluster_free(cl);
    }
}

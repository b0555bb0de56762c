//! `rask_future_batch`: many futures of one client behind one handle.
//!
//! A host language pays for every call it makes into C (ctypes, ccall), so
//! a `map` of 100,000 calls that makes 100,000 `rask_future` handles, and a
//! gather that reads 100,000 `rask_value`s element by element, cost more
//! than the cluster's work. A batch is made by one call
//! (`rask_client_map_msgpack`, whose arguments are one msgpack buffer),
//! gathered by one call into one msgpack buffer, and released by index in
//! bulk. Entry `i` is one reference to its key, exactly as a `rask_future`
//! is; `rask_future_batch_get` makes a separate `rask_future` for an entry
//! when a call needs one (`rask_as_completed_add`, `rask_arg_future`, ...).

use super::client::{client_args, rask_client, Liveness};
use super::future::{rask_future, rask_future_state};
use super::graph::{rask_arg, take_args, ArgSpec};
use super::{
    ffi_boundary, rask_error, rask_status, req, req_bytes, req_mut, req_slice, req_str, timeout,
    Error,
};
use crate::client::{ClientArg, Future, Status};
use crate::value::{codec, Value};
use parking_lot::Mutex;
use std::ffi::c_char;
use std::ptr;
use std::sync::Arc;

/// Futures of one client, made by `rask_client_map_msgpack` and freed with
/// `rask_future_batch_free`. Entry `i` (0-based, `rask_future_batch_len`
/// entries) is one reference to its key until it is released
/// (`rask_future_batch_release`) or the batch is freed. Any number of
/// threads may use one batch at once; `rask_future_batch_free` must come
/// after all of them. The batch may be freed before or after its client;
/// after the client is closed or freed, calls that need it fail with
/// `RASK_ERR_STATE`.
pub struct rask_future_batch {
    keys: Vec<Arc<str>>,
    futures: Mutex<Vec<Option<Future>>>,
    life: Arc<Liveness>,
}

impl rask_future_batch {
    fn boxed(futures: Vec<Future>, life: &Arc<Liveness>) -> *mut rask_future_batch {
        Box::into_raw(Box::new(rask_future_batch {
            keys: futures.iter().map(|f| Arc::clone(&f.key)).collect(),
            futures: Mutex::new(futures.into_iter().map(Some).collect()),
            life: Arc::clone(life),
        }))
    }

    /// The entries at `indices` (all, in order, when `indices` is NULL),
    /// as new references; each index checked against the length and
    /// against released entries.
    unsafe fn select(&self, indices: *const usize, n: usize) -> Result<Vec<Future>, Error> {
        let futures = self.futures.lock();
        let entry = |i: usize| -> Result<&Future, Error> {
            match futures.get(i) {
                Some(Some(f)) => Ok(f),
                Some(None) => Err(Error::call(
                    rask_status::RASK_ERR_STATE,
                    format!(
                        "entry {i} ('{}') of the batch was released (rask_future_batch_release)",
                        self.keys[i]
                    ),
                )),
                None => Err(Error::invalid(format!(
                    "index {i} is out of range for a batch of {} futures",
                    futures.len()
                ))),
            }
        };
        let selected: Vec<&Future> = if indices.is_null() {
            (0..futures.len()).map(entry).collect::<Result<_, _>>()?
        } else {
            req_slice(indices, n, "indices")?
                .iter()
                .map(|&i| entry(i))
                .collect::<Result<_, _>>()?
        };
        // One lock of the client for all the new references.
        Ok(Future::clone_many(selected.into_iter()))
    }
}

impl rask_future_batch {
    /// Waits until `deadline` for the entries at `indices` (all when NULL)
    /// to be done; returns whether they are. Takes no reference: each
    /// entry's slot is read with its key, and a slot that no longer holds
    /// that key (the entry was released meanwhile and the slot reused)
    /// counts as done, for `select` to report.
    unsafe fn wait_done(
        &self,
        indices: *const usize,
        n: usize,
        deadline: std::time::Instant,
    ) -> Result<bool, Error> {
        let (inner, slots) = {
            let futures = self.futures.lock();
            let mut inner = None;
            let mut slots = Vec::with_capacity(n);
            let mut add = |i: usize| -> Result<(), Error> {
                match futures.get(i) {
                    Some(Some(f)) => {
                        inner.get_or_insert_with(|| Arc::clone(&f.inner));
                        slots.push((f.slot, Arc::clone(&self.keys[i])));
                        Ok(())
                    }
                    // Reported by select, with the message it gives.
                    Some(None) => Ok(()),
                    None => Err(Error::invalid(format!(
                        "index {i} is out of range for a batch of {} futures",
                        futures.len()
                    ))),
                }
            };
            if indices.is_null() {
                (0..futures.len()).try_for_each(&mut add)?;
            } else {
                req_slice(indices, n, "indices")?
                    .iter()
                    .try_for_each(|&i| add(i))?;
            }
            (inner, slots)
        };
        let Some(inner) = inner else {
            return Ok(true);
        };
        let mut pos = 0;
        Ok(inner.wait_until(Some(deadline), |st| {
            while let Some((slot, key)) = slots.get(pos) {
                if !st.keys.holds(*slot, key) || st.keys.get(*slot).status.is_done() {
                    pos += 1;
                } else {
                    break;
                }
            }
            pos == slots.len()
        }))
    }
}

impl Drop for rask_future_batch {
    fn drop(&mut self) {
        let futures = std::mem::take(self.futures.get_mut());
        Future::drop_many(futures.into_iter().flatten().collect());
    }
}

/// Drops futures a batch call selected, taking the client's lock once.
struct Selected(Vec<Future>);

impl Drop for Selected {
    fn drop(&mut self) {
        Future::drop_many(std::mem::take(&mut self.0));
    }
}

/// Hands a msgpack buffer to C, as `rask_value_to_msgpack` does.
unsafe fn put_buffer(buf: Vec<u8>, data: &mut *mut u8, len: &mut usize) {
    let buf = buf.into_boxed_slice();
    *len = buf.len();
    *data = Box::into_raw(buf).cast::<u8>();
}

/// The calls of a map, from one msgpack value: an array with one array of
/// argument values per call.
fn calls_of(v: Value) -> Result<Vec<Vec<ClientArg>>, Error> {
    let calls = match v {
        Value::Array(calls) => calls,
        other => {
            return Err(Error::invalid(format!(
                "calls must be a msgpack array of arrays (one array of arguments per call), \
                 not {}",
                other.kind_name()
            )))
        }
    };
    calls
        .into_iter()
        .enumerate()
        .map(|(i, c)| match c {
            Value::Array(args) => Ok(args.into_iter().map(ClientArg::Value).collect()),
            other => Err(Error::invalid(format!(
                "calls[{i}] must be an array of the call's arguments, not {}",
                other.kind_name()
            ))),
        })
        .collect()
}

/// Runs `func` once per call, all calls in one message to the scheduler,
/// as `rask_client_map` does, with every argument given in one buffer:
/// `calls` (`len` bytes, borrowed) is one msgpack array holding, per call, the array of
/// that call's arguments (`[[1], [2], [3]]` runs `func(1)`, `func(2)`,
/// `func(3)`). Arguments are values (tensors as msgpack extension type 1,
/// see docs/graph-spec.md); a task that needs another key's value is made
/// with `rask_client_map_msgpack_shared` (the same future in every call)
/// or `rask_client_map` and `rask_arg_future`. Keys are pure, as for
/// `rask_client_submit`: a call gets the same key however it was submitted.
///
/// On success `*out` is set to a batch of one future per call, in order,
/// that the caller owns and frees with `rask_future_batch_free`. On failure
/// `*out` is NULL: `RASK_ERR_DECODE` when `calls` is not msgpack,
/// `RASK_ERR_INVALID_ARG` when it is not an array of arrays,
/// `RASK_ERR_STATE` when the client was closed.
#[no_mangle]
pub unsafe extern "C" fn rask_client_map_msgpack(
    client: *const rask_client,
    func: *const c_char,
    calls: *const u8,
    len: usize,
    out: *mut *mut rask_future_batch,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        map_msgpack(client, func, Ok(Vec::new()), calls, len, out)
    })
}

/// `rask_client_map_msgpack` whose calls all begin with the same
/// arguments: call `i` runs `func(shared[0], .., shared[nshared - 1],
/// calls[i]...)`. The shared arguments may be anything `rask_client_map`
/// takes — futures (`rask_arg_future`: every call waits for that key's
/// value, which the scheduler moves once per worker, not once per call),
/// values, lists — while the calls' own arguments stay one msgpack buffer.
/// This is how a binding maps a shipped function (its bytes are a future
/// shared by every call) at the speed of a named one.
///
/// - `shared`: an array of `nshared` arguments (NULL when `nshared` is 0),
///   each consumed even when the call fails (the array stays the
///   caller's); a NULL element is `RASK_ERR_NULL_ARG` naming `shared[i]`.
/// - `calls`, `len`, `out`, and the failures: as `rask_client_map_msgpack`.
#[no_mangle]
pub unsafe extern "C" fn rask_client_map_msgpack_shared(
    client: *const rask_client,
    func: *const c_char,
    shared: *const *mut rask_arg,
    nshared: usize,
    calls: *const u8,
    len: usize,
    out: *mut *mut rask_future_batch,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let shared = if nshared == 0 {
            Ok(Vec::new())
        } else {
            take_args(shared, nshared, "shared")
        };
        map_msgpack(client, func, shared, calls, len, out)
    })
}

/// Both msgpack maps: `shared` (already taken from C, so consumed whatever
/// happens next) comes first in every call.
unsafe fn map_msgpack(
    client: *const rask_client,
    func: *const c_char,
    shared: Result<Vec<ArgSpec>, Error>,
    calls: *const u8,
    len: usize,
    out: *mut *mut rask_future_batch,
) -> Result<rask_status, Error> {
    let out = req_mut(out, "out")?;
    *out = ptr::null_mut();
    let c = req(client, "client")?;
    let func = req_str(func, "func")?;
    let shared = client_args(shared?, "shared", 0)?;
    if calls.is_null() {
        return Err(Error::null("calls"));
    }
    let bytes = req_bytes(calls, len, "calls")?;
    let v = codec::decode(bytes).map_err(|e| {
        Error::call(
            rask_status::RASK_ERR_DECODE,
            format!("argument 'calls': {e}"),
        )
    })?;
    let mut calls = calls_of(v)?;
    if !shared.is_empty() {
        for call in &mut calls {
            call.splice(0..0, shared.iter().cloned());
        }
    }
    c.life.check("this call")?;
    let fs = c
        .client
        .map(func, calls)
        .map_err(|e| c.life.error_of("this call", e))?;
    *out = rask_future_batch::boxed(fs, &c.life);
    Ok(rask_status::RASK_OK)
}

/// The number of entries of `batch` (released ones included); 0 when
/// `batch` is NULL.
#[no_mangle]
pub unsafe extern "C" fn rask_future_batch_len(batch: *const rask_future_batch) -> usize {
    batch.as_ref().map_or(0, |b| b.keys.len())
}

/// The keys of every entry of `batch`, in order (released entries
/// included), as one msgpack array of strings: `*data` is set to a new
/// buffer of `*len` bytes that the caller owns and frees with
/// `rask_buffer_free(*data, *len)`.
#[no_mangle]
pub unsafe extern "C" fn rask_future_batch_keys(
    batch: *const rask_future_batch,
    data: *mut *mut u8,
    len: *mut usize,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let b = req(batch, "batch")?;
        let data = req_mut(data, "data")?;
        let len = req_mut(len, "len")?;
        let mut buf = Vec::with_capacity(b.keys.len() * 40 + 5);
        rmp::encode::write_array_len(&mut buf, b.keys.len() as u32).expect("writing to a Vec");
        for k in &b.keys {
            rmp::encode::write_str(&mut buf, k).expect("writing to a Vec");
        }
        put_buffer(buf, data, len);
        Ok(rask_status::RASK_OK)
    })
}

/// Sets `*out` to a new `rask_future` on entry `i` of `batch`: another
/// reference to the same key, which the caller owns and frees with
/// `rask_future_free`, to use with the calls that take futures. Fails with
/// `RASK_ERR_INVALID_ARG` when `i` is out of range and `RASK_ERR_STATE`
/// when the entry was released (`*out` NULL).
#[no_mangle]
pub unsafe extern "C" fn rask_future_batch_get(
    batch: *const rask_future_batch,
    i: usize,
    out: *mut *mut rask_future,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let out = req_mut(out, "out")?;
        *out = ptr::null_mut();
        let b = req(batch, "batch")?;
        let f = b.select(&i, 1)?.pop().expect("one index, one future");
        *out = rask_future::boxed(f, &b.life);
        Ok(rask_status::RASK_OK)
    })
}

/// Releases the entries `indices[0..n]` of `batch` (borrowed): each drops
/// its reference to its key, as `rask_future_free` does for a future (when
/// it was the client's last reference, the scheduler is told the key is no
/// longer wanted). Releasing an entry twice does nothing. An index out of
/// range fails with `RASK_ERR_INVALID_ARG` and releases nothing. Works
/// after the client was closed.
#[no_mangle]
pub unsafe extern "C" fn rask_future_batch_release(
    batch: *const rask_future_batch,
    indices: *const usize,
    n: usize,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let b = req(batch, "batch")?;
        let indices = req_slice(indices, n, "indices")?;
        let dropped: Vec<Future> = {
            let mut futures = b.futures.lock();
            if let Some(&i) = indices.iter().find(|&&i| i >= futures.len()) {
                return Err(Error::invalid(format!(
                    "index {i} is out of range for a batch of {} futures",
                    futures.len()
                )));
            }
            indices.iter().filter_map(|&i| futures[i].take()).collect()
        };
        Future::drop_many(dropped); // outside the batch's lock
        Ok(rask_status::RASK_OK)
    })
}

/// Where entries `indices[0..n]` of `batch` stand now (does not wait):
/// `states[k]` (a caller-provided array of `n`) is set to the state of
/// entry `indices[k]`, as `rask_future_status` reports it. `indices` NULL
/// means every entry in order (`n` must then be the batch's length).
/// Fails with `RASK_ERR_INVALID_ARG` for an index out of range and
/// `RASK_ERR_STATE` for a released entry.
#[no_mangle]
pub unsafe extern "C" fn rask_future_batch_status(
    batch: *const rask_future_batch,
    indices: *const usize,
    n: usize,
    states: *mut rask_future_state,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let b = req(batch, "batch")?;
        if indices.is_null() && n != b.keys.len() {
            return Err(Error::invalid(format!(
                "indices is NULL (every entry) but n ({n}) is not the batch's length ({})",
                b.keys.len()
            )));
        }
        if states.is_null() && n > 0 {
            return Err(Error::null("states"));
        }
        let fs = Selected(b.select(indices, n)?);
        let fs = &fs.0;
        let closed = b.life.check("this call").is_err();
        for (k, f) in fs.iter().enumerate() {
            *states.add(k) = match f.status() {
                Status::Pending if closed => rask_future_state::RASK_FUTURE_ERROR,
                Status::Pending => rask_future_state::RASK_FUTURE_PENDING,
                Status::Finished => rask_future_state::RASK_FUTURE_FINISHED,
                Status::Error => rask_future_state::RASK_FUTURE_ERROR,
                Status::Cancelled => rask_future_state::RASK_FUTURE_CANCELLED,
            };
        }
        Ok(rask_status::RASK_OK)
    })
}

/// Waits up to `timeout_ms` milliseconds (negative: forever) for entries
/// `indices[0..n]` of `batch` (`indices` NULL: every entry in order, `n`
/// then being the batch's length) and returns their values as one msgpack
/// array, in that order (tensors as extension type 1): `*data` is set to a
/// new buffer of `*len` bytes that the caller owns and frees with
/// `rask_buffer_free(*data, *len)`. Values the scheduler did not send along
/// are fetched from the workers.
///
/// Returns `RASK_TIMEOUT` (`*data` NULL, `*len` 0) if an entry is still
/// pending at the deadline; the first failed or cancelled entry in order is
/// the error (`RASK_ERR_TASK_FAILED`, `RASK_ERR_CANCELLED`), as for
/// `rask_client_gather`. `RASK_ERR_INVALID_ARG` for an index out of range,
/// `RASK_ERR_STATE` for a released entry or a closed client.
#[no_mangle]
pub unsafe extern "C" fn rask_future_batch_gather(
    batch: *const rask_future_batch,
    indices: *const usize,
    n: usize,
    timeout_ms: i64,
    data: *mut *mut u8,
    len: *mut usize,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let data = req_mut(data, "data")?;
        *data = ptr::null_mut();
        let len = req_mut(len, "len")?;
        *len = 0;
        let b = req(batch, "batch")?;
        if indices.is_null() && n != b.keys.len() {
            return Err(Error::invalid(format!(
                "indices is NULL (every entry) but n ({n}) is not the batch's length ({})",
                b.keys.len()
            )));
        }
        if let Some(t) = timeout(timeout_ms) {
            // Wait first, without new references: a host waits in slices
            // (to stay interruptible), and a reference per entry per slice
            // was most of a long gather's CPU.
            if !b.wait_done(indices, n, std::time::Instant::now() + t)? {
                return Ok(rask_status::RASK_TIMEOUT);
            }
        }
        let fs = Selected(b.select(indices, n)?);
        let fs = &fs.0;
        b.life.check("this call")?;
        let Some(first) = fs.first() else {
            put_buffer(vec![0x90], data, len); // an empty array
            return Ok(rask_status::RASK_OK);
        };
        let inner = Arc::clone(&first.inner);
        let values =
            crate::client::gather_from(&inner, fs).map_err(|e| b.life.error_of("this call", e))?;
        let mut buf = Vec::with_capacity(values.len() * 2 + 5);
        rmp::encode::write_array_len(&mut buf, values.len() as u32).expect("writing to a Vec");
        for v in &values {
            // Each came over the wire, so each fits; checked all the same.
            codec::encode_into(v, &mut buf)
                .map_err(|e| Error::new(rask_status::RASK_ERR_INVALID_ARG, e.to_string()))?;
        }
        put_buffer(buf, data, len);
        Ok(rask_status::RASK_OK)
    })
}

/// Frees `batch`: every entry not yet released drops its reference to its
/// key (see `rask_future_batch_release`). Futures made from it with
/// `rask_future_batch_get` stay valid. NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn rask_future_batch_free(batch: *mut rask_future_batch) {
    ffi_boundary!(default = (), {
        if !batch.is_null() {
            drop(Box::from_raw(batch));
        }
    })
}

/// Waits up to `timeout_ms` milliseconds (negative: forever) for the `n`
/// futures in `futures` (borrowed; all of this client) and returns their
/// values as one msgpack array, in order, as `rask_future_batch_gather`
/// does (`*data`, `*len`: a new buffer the caller frees with
/// `rask_buffer_free(*data, *len)`; NULL and 0 on failure or timeout).
/// Errors as for `rask_client_gather`.
#[no_mangle]
pub unsafe extern "C" fn rask_client_gather_msgpack(
    client: *const rask_client,
    futures: *const *const rask_future,
    n: usize,
    timeout_ms: i64,
    data: *mut *mut u8,
    len: *mut usize,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let data = req_mut(data, "data")?;
        *data = ptr::null_mut();
        let len = req_mut(len, "len")?;
        *len = 0;
        let c = req(client, "client")?;
        let fs = super::future::futures_of(futures, n, "futures")?;
        c.life.check("this call")?;
        let fs: Vec<Future> = fs.iter().map(|f| f.future.clone()).collect();
        if let Some(t) = timeout(timeout_ms) {
            let (_, not_done) = c.client.wait(&fs, crate::client::WaitMode::All, Some(t));
            if !not_done.is_empty() {
                return Ok(rask_status::RASK_TIMEOUT);
            }
        }
        let values = c
            .client
            .gather(&fs)
            .map_err(|e| c.life.error_of("this call", e))?;
        let mut buf = Vec::with_capacity(values.len() * 2 + 5);
        rmp::encode::write_array_len(&mut buf, values.len() as u32).expect("writing to a Vec");
        for v in &values {
            // Each came over the wire, so each fits; checked all the same.
            codec::encode_into(v, &mut buf)
                .map_err(|e| Error::new(rask_status::RASK_ERR_INVALID_ARG, e.to_string()))?;
        }
        put_buffer(buf, data, len);
        Ok(rask_status::RASK_OK)
    })
}

/// A task handed to a host by a `*_take_tasks` call.
pub(crate) trait HandedTask {
    fn key(&self) -> &str;
    fn func(&self) -> &str;
    fn args(&self) -> &[Value];
}

impl HandedTask for crate::local::PulledTask {
    fn key(&self) -> &str {
        crate::local::PulledTask::key(self)
    }
    fn func(&self) -> &str {
        crate::local::PulledTask::func(self)
    }
    fn args(&self) -> &[Value] {
        crate::local::PulledTask::args(self)
    }
}

impl HandedTask for crate::worker::WorkerTask {
    fn key(&self) -> &str {
        crate::worker::WorkerTask::key(self)
    }
    fn func(&self) -> &str {
        crate::worker::WorkerTask::func(self)
    }
    fn args(&self) -> &[Value] {
        crate::worker::WorkerTask::args(self)
    }
}

/// Tensors of at least this many bytes among the arguments `*_take_tasks`
/// hands a host (one that called `*_use_host`) are lent, not copied
/// (msgpack extension type 4: an owned `rask_value *` sharing rask's
/// memory); smaller ones are copied into the buffer (extension type 1).
pub(crate) const LEND_MIN: usize = 1 << 16;

/// Tasks handed to a host by id (`rask_computation_take_tasks`,
/// `rask_worker_take_tasks`) until it ends or detaches them.
pub(crate) struct Held<T> {
    pub(crate) next: u64,
    pub(crate) tasks: rustc_hash::FxHashMap<u64, T>,
}

impl<T> Default for Held<T> {
    fn default() -> Self {
        Held {
            next: 0,
            tasks: Default::default(),
        }
    }
}

impl<T: HandedTask> Held<T> {
    /// The buffer a `*_take_tasks` call hands out, `[[id, key, func,
    /// [args...]], ...]` (the host's own objects as references and tensors
    /// of at least [`LEND_MIN`] bytes lent when `host` is given), each task
    /// held under a new id. A task whose arguments
    /// cannot be encoded (a value over the size limit) is not held: it comes
    /// back with the reason, for the caller to fail.
    pub(crate) fn hand_out(
        &mut self,
        tasks: Vec<T>,
        host: Option<&Arc<dyn crate::value::HostRuntime>>,
    ) -> (Vec<u8>, Vec<(T, String)>) {
        use rmp::encode as e;
        // Writing into a Vec cannot fail; a value too large to encode can.
        let mut body = Vec::with_capacity(tasks.len() * 32);
        let mut count = 0u32;
        let mut unsendable = Vec::new();
        for t in tasks {
            let mark = body.len();
            let id = self.next;
            e::write_array_len(&mut body, 4).expect("writing to a Vec");
            e::write_uint(&mut body, id).expect("writing to a Vec");
            e::write_str(&mut body, t.key()).expect("writing to a Vec");
            e::write_str(&mut body, t.func()).expect("writing to a Vec");
            e::write_array_len(&mut body, t.args().len() as u32).expect("writing to a Vec");
            let mut lent: Vec<*mut super::value::rask_value> = Vec::new();
            let written = t.args().iter().try_for_each(|a| match host {
                // A host that reads references reads lent tensors too.
                Some(_) => {
                    let mut lend = |x: &crate::value::Tensor| {
                        let p = super::value::into_c(Value::Tensor(x.clone()));
                        lent.push(p);
                        p as u64
                    };
                    let lend = codec::Lend {
                        min: LEND_MIN,
                        lend: &mut lend,
                    };
                    codec::encode_lending(a, host, lend, &mut body)
                }
                None => codec::encode_for(a, host, &mut body),
            });
            if written.is_err() {
                for p in lent {
                    // SAFETY: made by into_c just above, handed to no one.
                    drop(unsafe { super::value::take(p) });
                }
            }
            match written {
                Ok(()) => {
                    self.next += 1;
                    self.tasks.insert(id, t);
                    count += 1;
                }
                Err(too_large) => {
                    body.truncate(mark);
                    unsendable.push((t, too_large.to_string()));
                }
            }
        }
        let mut buf = Vec::with_capacity(body.len() + 5);
        e::write_array_len(&mut buf, count).expect("writing to a Vec");
        buf.extend_from_slice(&body);
        (buf, unsendable)
    }
}

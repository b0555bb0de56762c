//! `rask_host`: a host language runtime whose objects rask holds as values
//! (host values, see `crate::value::host`).

use super::registry::rask_drop_user_data;
use super::value::{into_c, rask_value, take as take_value, val, wrap_lent, Lender, Lent, WrapAs};
use super::{ffi_boundary, rask_error, rask_status, req, req_mut, req_str, Error};
use crate::value::{codec, HostRuntime, HostValue, Value};
use crate::wakeup::Wakeup;
use parking_lot::{Mutex, RwLock};
use std::ffi::{c_char, c_int, c_void};
use std::ptr;
use std::sync::Arc;

/// Makes the portable form of the host object `id` (see `rask_host_new`).
///
/// Called on any of rask's threads (possibly several at once) with the
/// `user_data` given to `rask_host_new`. `result` and `err` are never NULL
/// and point to NULL on entry. On success it sets `*result` to a new value
/// it owns (rask takes it over) and returns `RASK_OK`: plain data (what the
/// object stands for, e.g. an array for a list of numbers), possibly holding
/// packed host values (the host's own serialization, made with
/// `rask_value_host_packed`), never a live host value. On failure it returns
/// another status and may set `*err` to a `rask_error_new(...)` (rask frees
/// it): the object then cannot leave its process, and whatever needed it
/// fails with that message. It must not unwind out of the call, and must not
/// call `rask_host_free`.
pub type rask_host_serialize = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        id: u64,
        result: *mut *mut rask_value,
        err: *mut *mut rask_error,
    ) -> rask_status,
>;

/// rask dropped its last reference to the host object `id`: the host may
/// free it. Called exactly once per object, on whichever thread dropped it
/// (one of rask's, or the host's own inside a rask call). It must not call
/// back into rask except `rask_value_*` functions, and must not unwind.
pub type rask_host_release = Option<unsafe extern "C" fn(user_data: *mut c_void, id: u64)>;

/// Status read as a plain integer (see `RawCallback` in registry.rs).
type RawSerialize =
    unsafe extern "C" fn(*mut c_void, u64, *mut *mut rask_value, *mut *mut rask_error) -> u32;

struct Callbacks {
    serialize: Option<RawSerialize>,
    release: rask_host_release,
    user_data: *mut c_void,
    drop_user_data: rask_drop_user_data,
}

impl Drop for Callbacks {
    fn drop(&mut self) {
        if let Some(d) = self.drop_user_data {
            // SAFETY: called once, with the pointer the caller gave.
            unsafe { d(self.user_data) };
        }
    }
}

/// The runtime as rask's value model sees it.
struct CHost {
    name: String,
    /// `None` once the host freed its handle: nothing is called any more.
    calls: RwLock<Option<Callbacks>>,
    /// Released ids waiting for the host, when it gave no release callback.
    queue: Mutex<Vec<u64>>,
    wake: Option<Wakeup>,
}

// SAFETY: the contract of `rask_host_new` says the callbacks and their
// user_data may be used from any thread and concurrently.
unsafe impl Send for CHost {}
unsafe impl Sync for CHost {}

impl HostRuntime for CHost {
    fn name(&self) -> &str {
        &self.name
    }

    fn serialize(&self, id: u64) -> Result<Value, String> {
        let calls = self.calls.read_recursive();
        let Some(c) = calls.as_ref() else {
            return Err(format!("its host ({}) has closed", self.name));
        };
        let Some(f) = c.serialize else {
            return Err(format!(
                "the {} host gave no serializer and no portable form for it",
                self.name
            ));
        };
        let mut result: *mut rask_value = ptr::null_mut();
        let mut err: *mut rask_error = ptr::null_mut();
        // SAFETY: the callback's contract is documented on `rask_host_serialize`.
        let raw = unsafe { f(c.user_data, id, &mut result, &mut err) };
        // SAFETY: whatever the callback put there is ours now.
        let (result, err) = unsafe { (take_value(result), rask_error::take(err)) };
        match (rask_status::from_raw(raw.into()), result, err) {
            (Some(rask_status::RASK_OK), Some(v), _) => Ok(v),
            (Some(rask_status::RASK_OK), None, _) => {
                Err("the serializer returned RASK_OK but did not set *result".into())
            }
            (_, _, Some(e)) => Err(e.message().to_owned()),
            (Some(s), _, None) => Err(format!("the serializer failed with {}", s.name())),
            (None, _, None) => Err(format!(
                "the serializer returned {raw}, which is not a rask_status"
            )),
        }
    }

    fn release(&self, id: u64) {
        let calls = self.calls.read_recursive();
        match calls.as_ref() {
            None => {} // the host has gone: nobody to tell
            Some(Callbacks {
                release: Some(f),
                user_data,
                ..
            }) => {
                // SAFETY: see `rask_host_release`.
                unsafe { f(*user_data, id) }
            }
            Some(_) => {
                self.queue.lock().push(id);
                if let Some(w) = &self.wake {
                    w.set();
                }
            }
        }
    }
}

/// A host language runtime (the Python interpreter, a Julia session) whose
/// objects rask holds as *host values*: made by `rask_host_new`, freed with
/// `rask_host_free`. A host value is a number (`id`) that stands for an
/// object the host keeps; rask stores, orders, passes and frees it like any
/// value, tells the host once when its last copy is gone, and converts it
/// (through the host's serializer) only where it leaves its process or
/// language: sent to another worker or client, spilled, or passed to a
/// builtin or C function. docs/c-api.md "Host values" says more.
pub struct rask_host {
    rt: Arc<CHost>,
}

impl rask_host {
    pub(crate) fn runtime(&self) -> Arc<dyn HostRuntime> {
        self.rt.clone()
    }
}

/// Makes a host runtime named `runtime` (NUL-terminated UTF-8, 1 to 255
/// bytes, borrowed; by convention the runtime of shipped functions,
/// `"python-3.11"`, `"julia-1.5"`).
///
/// - `serialize` (may be NULL): makes an object's portable form when rask
///   needs it, on rask's threads (see `rask_host_serialize`). A host that
///   cannot be called on foreign threads (Julia 1.5) passes NULL and gives
///   the portable form of a value that may leave the process when it makes
///   it (`rask_value_host`); a value with neither cannot leave its process
///   (that fails with a message naming the runtime).
/// - `release` (may be NULL): called once per object when rask drops it
///   (see `rask_host_release`). NULL: released ids are queued instead, and
///   the host takes them with `rask_host_take_released` on its own thread,
///   when `rask_host_fd` is readable or whenever it likes.
/// - `user_data`: passed to both callbacks; `drop_user_data` (may be NULL)
///   is called with it once, when `rask_host_free` returns or fails.
///
/// On success `*out` is a host the caller owns and frees with
/// `rask_host_free`. Values made with it may outlive it (see there).
#[no_mangle]
pub unsafe extern "C" fn rask_host_new(
    runtime: *const c_char,
    serialize: rask_host_serialize,
    release: rask_host_release,
    user_data: *mut c_void,
    drop_user_data: rask_drop_user_data,
    out: *mut *mut rask_host,
    err: *mut *mut rask_error,
) -> rask_status {
    // Owned from the start, so every failure drops user_data once.
    let calls = Callbacks {
        // SAFETY: same signature, status read as an integer.
        serialize: serialize.map(|f| std::mem::transmute::<_, RawSerialize>(f)),
        release,
        user_data,
        drop_user_data,
    };
    ffi_boundary!(err, {
        let out = req_mut(out, "out")?;
        *out = ptr::null_mut();
        let name = req_str(runtime, "runtime")?;
        if name.is_empty() || name.len() > 255 {
            return Err(Error::invalid(format!(
                "a host runtime name is 1 to 255 bytes, not {}",
                name.len()
            )));
        }
        let wake = match release {
            Some(_) => None,
            None => Some(Wakeup::new().map_err(|e| {
                Error::new(
                    rask_status::RASK_ERR_STATE,
                    format!("a pipe for the host: {e}"),
                )
            })?),
        };
        *out = Box::into_raw(Box::new(rask_host {
            rt: Arc::new(CHost {
                name: name.to_owned(),
                calls: RwLock::new(Some(calls)),
                queue: Mutex::new(Vec::new()),
                wake,
            }),
        }));
        Ok(rask_status::RASK_OK)
    })
}

/// Takes up to `cap` ids of objects rask has released (only for a host made
/// without a release callback; otherwise there are never any) into `ids`
/// (`cap` entries, caller-provided), oldest first, and sets `*n` to how many
/// it wrote. Each id is handed out exactly once. When it takes the last one
/// waiting, `rask_host_fd` becomes unreadable (until the next release).
#[no_mangle]
pub unsafe extern "C" fn rask_host_take_released(
    host: *const rask_host,
    ids: *mut u64,
    cap: usize,
    n: *mut usize,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let n = req_mut(n, "n")?;
        *n = 0;
        let h = req(host, "host")?;
        if ids.is_null() && cap > 0 {
            return Err(Error::null("ids"));
        }
        let mut q = h.rt.queue.lock();
        let k = cap.min(q.len());
        for (i, id) in q.drain(..k).enumerate() {
            *ids.add(i) = id;
        }
        *n = k;
        if q.is_empty() {
            if let Some(w) = &h.rt.wake {
                w.clear();
            }
        }
        Ok(rask_status::RASK_OK)
    })
}

/// Sets `*out` to a file descriptor that is readable while released ids
/// wait in `rask_host_take_released` (for Julia's `FileWatching.poll_fd`,
/// asyncio's `add_reader`, `poll`). Owned by `host`: do not read or close
/// it; valid until `rask_host_free`. A host made with a release callback has
/// none: `RASK_ERR_STATE`.
#[no_mangle]
pub unsafe extern "C" fn rask_host_fd(
    host: *const rask_host,
    out: *mut c_int,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let out = req_mut(out, "out")?;
        *out = -1;
        let h = req(host, "host")?;
        match &h.rt.wake {
            Some(w) => *out = w.fd(),
            None => {
                return Err(Error::call(
                    rask_status::RASK_ERR_STATE,
                    "this host has a release callback: released ids are not queued",
                ))
            }
        }
        Ok(rask_status::RASK_OK)
    })
}

/// Frees the host's handle. From when it returns, rask calls neither
/// callback again (it waits for calls running on other threads to end;
/// never call it from inside one), drops `user_data`, and forgets the ids
/// still queued. Values of this host that rask still holds stay valid as
/// handles, but cannot leave their process any more (their portable form, if
/// made already, still can) and their releases go nowhere. NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn rask_host_free(host: *mut rask_host) {
    ffi_boundary!(default = (), {
        if !host.is_null() {
            let h = Box::from_raw(host);
            let calls = h.rt.calls.write().take();
            drop(calls);
            h.rt.queue.lock().clear();
        }
    })
}

/// Makes a host value: the object `id` of `host` (borrowed). rask calls
/// the host's release (or queues the id) exactly once, when it drops the
/// value's last copy, even when this call fails after `host` and `out` were
/// checked. `size` is the host's estimate of the object's bytes (for memory
/// accounting, as spilling sees it; 0: the portable form's size when one is
/// given, else unknown). `portable` (may be NULL; consumed, also on
/// failure) is the object's portable form given now (see
/// `rask_host_serialize`); rask then never calls the serializer for it.
///
/// On success `*out` is a new value the caller owns (`rask_value_free`).
/// A portable form holding a live host value is `RASK_ERR_INVALID_ARG`.
#[no_mangle]
pub unsafe extern "C" fn rask_value_host(
    host: *const rask_host,
    id: u64,
    size: usize,
    portable: *mut rask_value,
    out: *mut *mut rask_value,
    err: *mut *mut rask_error,
) -> rask_status {
    let portable = take_value(portable);
    ffi_boundary!(err, {
        let out = req_mut(out, "out")?;
        *out = ptr::null_mut();
        let h = req(host, "host")?;
        let v = match portable {
            None => HostValue::new(h.runtime(), id, size),
            Some(p) => {
                let live = p.has_live_host();
                let size = if size == 0 { p.size_estimate() } else { size };
                let v = HostValue::with_portable(h.runtime(), id, size, p);
                if live {
                    return Err(Error::invalid(
                        "the portable form of a host value must not hold a live host value",
                    ));
                }
                v
            }
        };
        *out = into_c(Value::Host(v));
        Ok(rask_status::RASK_OK)
    })
}

/// Makes a packed host value: `len` bytes at `data` (copied) that a host of
/// `runtime` (NUL-terminated UTF-8, 1 to 255 bytes) made with its own
/// serializer (pickle, Julia `Serialization`). It travels as msgpack
/// extension type 2 (docs/graph-spec.md); only a host of that runtime reads
/// it. Serializers return it for objects that have no plain-data form.
/// On success `*out` is a new value the caller owns (`rask_value_free`).
#[no_mangle]
pub unsafe extern "C" fn rask_value_host_packed(
    runtime: *const c_char,
    data: *const u8,
    len: usize,
    out: *mut *mut rask_value,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let out = req_mut(out, "out")?;
        *out = ptr::null_mut();
        let name = req_str(runtime, "runtime")?;
        if name.is_empty() || name.len() > 255 {
            return Err(Error::invalid(format!(
                "a host runtime name is 1 to 255 bytes, not {}",
                name.len()
            )));
        }
        let bytes = super::req_bytes(data, len, "data")?;
        *out = into_c(Value::Host(HostValue::Packed {
            runtime: name.into(),
            data: bytes::Bytes::copy_from_slice(bytes),
        }));
        Ok(rask_status::RASK_OK)
    })
}

fn not_host(v: &Value) -> Error {
    Error::kind(format!("expected a host value, got {}", v.kind_name()))
}

/// The id of the host value `v` (borrowed) if it is a live object of
/// `host` (borrowed): `*id` is set and `RASK_OK` returned. A host value of
/// another runtime, a packed one, or another kind is `RASK_ERR_TYPE` (the
/// message says which; for a packed one read it with
/// `rask_value_host_packed_info`).
#[no_mangle]
pub unsafe extern "C" fn rask_value_host_id(
    v: *const rask_value,
    host: *const rask_host,
    id: *mut u64,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let id = req_mut(id, "id")?;
        let v = val(v, "v")?;
        let h = req(host, "host")?;
        let rt = h.runtime();
        match v {
            Value::Host(HostValue::Local(o)) if o.is_of(&rt) => {
                *id = o.id();
                Ok(rask_status::RASK_OK)
            }
            Value::Host(HostValue::Local(o)) => Err(Error::kind(format!(
                "the host value belongs to another host ({})",
                o.runtime().name()
            ))),
            Value::Host(HostValue::Packed { runtime, .. }) => Err(Error::kind(format!(
                "the host value is a packed {runtime} object, not a live one"
            ))),
            other => Err(not_host(other)),
        }
    })
}

/// Reads a packed host value `v` (borrowed): `*runtime` is set to its
/// runtime name (`*runtime_len` bytes, not NUL-terminated) and `*data` to
/// its bytes (`*len`); both point into `v` and are valid while `v` is.
/// Another kind, or a live host value, is `RASK_ERR_TYPE`.
#[no_mangle]
pub unsafe extern "C" fn rask_value_host_packed_info(
    v: *const rask_value,
    runtime: *mut *const c_char,
    runtime_len: *mut usize,
    data: *mut *const u8,
    len: *mut usize,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let runtime = req_mut(runtime, "runtime")?;
        let runtime_len = req_mut(runtime_len, "runtime_len")?;
        let data = req_mut(data, "data")?;
        let len = req_mut(len, "len")?;
        match val(v, "v")? {
            Value::Host(HostValue::Packed {
                runtime: r,
                data: d,
            }) => {
                *runtime = r.as_ptr().cast();
                *runtime_len = r.len();
                *data = d.as_ptr();
                *len = d.len();
                Ok(rask_status::RASK_OK)
            }
            Value::Host(HostValue::Local(_)) => {
                Err(Error::kind("the host value is live, not packed"))
            }
            other => Err(not_host(other)),
        }
    })
}

/// `rask_value_to_msgpack` for the host `host` (borrowed) in this process:
/// its live objects are written as references (msgpack extension type 3,
/// the id as u64 little-endian) instead of being converted; other hosts'
/// objects are written in their portable form. Such a buffer is only for
/// that host. `*data`/`*len` as for `rask_value_to_msgpack`
/// (`rask_buffer_free`).
#[no_mangle]
pub unsafe extern "C" fn rask_value_to_msgpack_for(
    v: *const rask_value,
    host: *const rask_host,
    data: *mut *mut u8,
    len: *mut usize,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let data = req_mut(data, "data")?;
        *data = ptr::null_mut();
        let len = req_mut(len, "len")?;
        *len = 0;
        let v = val(v, "v")?;
        let rt = req(host, "host")?.runtime();
        let mut out = Vec::with_capacity(16);
        codec::encode_for(v, Some(&rt), &mut out)
            .map_err(|e| Error::call(rask_status::RASK_ERR_INVALID_ARG, e.to_string()))?;
        let buf = out.into_boxed_slice();
        *len = buf.len();
        *data = Box::into_raw(buf).cast::<u8>();
        Ok(rask_status::RASK_OK)
    })
}

/// `rask_value_bytes_wrap` for memory a host object owns: a new binary value
/// over the `len` bytes at `data` (NULL allowed when `len` is 0), lent
/// without a copy by the object `id` of `host` (borrowed). When rask drops
/// the buffer's last reference it releases `id` exactly as it releases a
/// host value: through the host's release callback, or queued for
/// `rask_host_take_released` (so a host that cannot be called on rask's
/// threads, Julia 1.5, frees the object on its own thread). The host keeps
/// the buffer valid and unwritten until it hears of `id`; after
/// `rask_host_free` it hears nothing, so the memory must then outlive every
/// value. `id` is released exactly once, also when this call fails after
/// `host` was checked. The value is plain data, not a host value: it leaves
/// the process as any bin does. On success `*out` is a new value the caller
/// owns (`rask_value_free`).
#[no_mangle]
pub unsafe extern "C" fn rask_value_bytes_wrap_host(
    host: *const rask_host,
    id: u64,
    data: *const u8,
    len: usize,
    out: *mut *mut rask_value,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let h = req(host, "host")?;
        let lent = Lent::new(data, len, Lender::Host(h.runtime(), id));
        wrap_lent(lent, WrapAs::Bytes, out)
    })
}

/// `rask_value_tensor_wrap` for memory a host object owns: a new tensor
/// over `nbytes` bytes of row-major elements at `data` (the arguments and
/// checks of `rask_value_tensor_wrap`, `data` aligned for `dtype`), lent
/// without a copy by the object `id` of `host` (borrowed), released as for
/// `rask_value_bytes_wrap_host`: exactly once, when the last reference is
/// dropped or when this call fails after `host` was checked. On success
/// `*out` is a new value the caller owns (`rask_value_free`).
#[no_mangle]
pub unsafe extern "C" fn rask_value_tensor_wrap_host(
    host: *const rask_host,
    id: u64,
    dtype: c_int,
    shape: *const usize,
    ndim: usize,
    data: *const c_void,
    nbytes: usize,
    out: *mut *mut rask_value,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let h = req(host, "host")?;
        let lent = Lent::new(data.cast(), nbytes, Lender::Host(h.runtime(), id));
        wrap_lent(lent, WrapAs::Tensor { dtype, shape, ndim }, out)
    })
}

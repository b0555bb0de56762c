//! `rask_value`: a msgpack-compatible value or a tensor.
//!
//! A `rask_value *` points at a [`Value`]. Owned pointers (from the
//! constructors, `rask_value_clone`, results) are `Box<Value>`s; borrowed
//! `const rask_value *` (callback arguments, array elements, task arguments)
//! point into values rask holds, so passing them to C copies nothing.

use super::{
    ffi_boundary, rask_error, rask_status, req, req_bytes, req_mut, req_slice, Error, FfiResult,
};
use crate::value::{codec, DType, Tensor, Value, ValueKind};
use bytes::Bytes;
use std::ffi::{c_char, c_int, c_void};
use std::ptr;

/// A value: nil, bool, int, uint, float, str, bin, array, map, tensor or
/// host value.
/// An owned `rask_value *` is freed with `rask_value_free` or handed to a
/// function that consumes it; a `const rask_value *` is borrowed.
pub struct rask_value {
    _private: [u8; 0],
}

/// The kind of a `rask_value` (see `rask_value_kind`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum rask_kind {
    RASK_KIND_NIL = 0,
    RASK_KIND_BOOL = 1,
    /// A signed integer (`int64_t`).
    RASK_KIND_INT = 2,
    /// An unsigned integer above `INT64_MAX` (smaller ones are `INT`).
    RASK_KIND_UINT = 3,
    RASK_KIND_FLOAT = 4,
    /// A UTF-8 string.
    RASK_KIND_STR = 5,
    /// Raw bytes.
    RASK_KIND_BIN = 6,
    RASK_KIND_ARRAY = 7,
    /// A map: keys and values are any values, in insertion order.
    RASK_KIND_MAP = 8,
    /// A dense row-major tensor (see `rask_value_tensor_info`).
    RASK_KIND_TENSOR = 9,
    /// An object a host language owns (see `rask_host_new`): live
    /// (`rask_value_host_id`) or packed (`rask_value_host_packed_info`).
    RASK_KIND_HOST = 10,
}

impl From<ValueKind> for rask_kind {
    fn from(k: ValueKind) -> rask_kind {
        use rask_kind::*;
        match k {
            ValueKind::Nil => RASK_KIND_NIL,
            ValueKind::Bool => RASK_KIND_BOOL,
            ValueKind::Int => RASK_KIND_INT,
            ValueKind::UInt => RASK_KIND_UINT,
            ValueKind::Float => RASK_KIND_FLOAT,
            ValueKind::Str => RASK_KIND_STR,
            ValueKind::Bin => RASK_KIND_BIN,
            ValueKind::Array => RASK_KIND_ARRAY,
            ValueKind::Map => RASK_KIND_MAP,
            ValueKind::Tensor => RASK_KIND_TENSOR,
            ValueKind::Host => RASK_KIND_HOST,
        }
    }
}

/// The element type of a tensor. The numbers are those of the wire format
/// (docs/graph-spec.md).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum rask_dtype {
    RASK_DTYPE_BOOL = 0,
    RASK_DTYPE_INT8 = 1,
    RASK_DTYPE_INT16 = 2,
    RASK_DTYPE_INT32 = 3,
    RASK_DTYPE_INT64 = 4,
    RASK_DTYPE_UINT8 = 5,
    RASK_DTYPE_UINT16 = 6,
    RASK_DTYPE_UINT32 = 7,
    RASK_DTYPE_UINT64 = 8,
    RASK_DTYPE_FLOAT32 = 9,
    RASK_DTYPE_FLOAT64 = 10,
}

impl From<DType> for rask_dtype {
    fn from(d: DType) -> rask_dtype {
        use rask_dtype::*;
        match d {
            DType::Bool => RASK_DTYPE_BOOL,
            DType::I8 => RASK_DTYPE_INT8,
            DType::I16 => RASK_DTYPE_INT16,
            DType::I32 => RASK_DTYPE_INT32,
            DType::I64 => RASK_DTYPE_INT64,
            DType::U8 => RASK_DTYPE_UINT8,
            DType::U16 => RASK_DTYPE_UINT16,
            DType::U32 => RASK_DTYPE_UINT32,
            DType::U64 => RASK_DTYPE_UINT64,
            DType::F32 => RASK_DTYPE_FLOAT32,
            DType::F64 => RASK_DTYPE_FLOAT64,
        }
    }
}

// ---------------------------------------------------------------------------
// Conversions between `rask_value` pointers and `Value`s.

/// A borrowed `Value` as C sees it.
pub(crate) fn as_c(v: &Value) -> *const rask_value {
    (v as *const Value).cast()
}

/// An owned `Value` handed to C.
pub(crate) fn into_c(v: Value) -> *mut rask_value {
    Box::into_raw(Box::new(v)).cast()
}

/// The `Value` behind a C pointer, or `RASK_ERR_NULL_ARG` naming `param`.
pub(crate) unsafe fn val<'a>(p: *const rask_value, param: &str) -> Result<&'a Value, Error> {
    req(p.cast::<Value>(), param)
}

/// The `Value` behind a mutable C pointer.
pub(crate) unsafe fn val_mut<'a>(p: *mut rask_value, param: &str) -> Result<&'a mut Value, Error> {
    req_mut(p.cast::<Value>(), param)
}

/// Takes ownership of a value C hands over (NULL gives `None`).
pub(crate) unsafe fn take(p: *mut rask_value) -> Option<Value> {
    if p.is_null() {
        None
    } else {
        Some(*Box::from_raw(p.cast::<Value>()))
    }
}

/// Writes an owned value to an out-parameter.
unsafe fn put(out: *mut *mut rask_value, v: Value) {
    *out = into_c(v);
}

fn wrong_kind(want: &str, v: &Value) -> Error {
    Error::kind(format!("expected {want}, the value is {}", v.kind_name()))
}

// ---------------------------------------------------------------------------
// Constructors.

/// A new nil value. The caller owns it (free with `rask_value_free`, or hand
/// it to a function that consumes it). Returns NULL only if rask panicked.
#[no_mangle]
pub extern "C" fn rask_value_nil() -> *mut rask_value {
    ffi_boundary!(default = ptr::null_mut(), { into_c(Value::Nil) })
}

/// A new boolean value. The caller owns it, as for `rask_value_nil`.
#[no_mangle]
pub extern "C" fn rask_value_bool(b: bool) -> *mut rask_value {
    ffi_boundary!(default = ptr::null_mut(), { into_c(Value::Bool(b)) })
}

/// A new integer value. The caller owns it, as for `rask_value_nil`.
#[no_mangle]
pub extern "C" fn rask_value_int(i: i64) -> *mut rask_value {
    ffi_boundary!(default = ptr::null_mut(), { into_c(Value::Int(i)) })
}

/// A new unsigned integer value. Values up to `INT64_MAX` are stored as
/// `RASK_KIND_INT` (as msgpack decoding does), larger ones as
/// `RASK_KIND_UINT`; `rask_value_get_uint` reads both. The caller owns it,
/// as for `rask_value_nil`.
#[no_mangle]
pub extern "C" fn rask_value_uint(u: u64) -> *mut rask_value {
    ffi_boundary!(default = ptr::null_mut(), { into_c(Value::from(u)) })
}

/// A new floating-point value. The caller owns it, as for `rask_value_nil`.
#[no_mangle]
pub extern "C" fn rask_value_float(f: f64) -> *mut rask_value {
    ffi_boundary!(default = ptr::null_mut(), { into_c(Value::Float(f)) })
}

/// A new string value holding a copy of the `len` bytes at `s`, which must
/// be UTF-8 and need not be NUL-terminated (`s` may be NULL when `len` is 0).
/// On success `*out` is set to a value the caller owns (free with
/// `rask_value_free`).
#[no_mangle]
pub unsafe extern "C" fn rask_value_str(
    s: *const c_char,
    len: usize,
    out: *mut *mut rask_value,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let bytes = req_bytes(s.cast::<u8>(), len, "s")?;
        req(out, "out")?;
        let s = std::str::from_utf8(bytes).map_err(|_| Error::utf8("s"))?;
        put(out, Value::Str(s.to_owned()));
        Ok(rask_status::RASK_OK)
    })
}

/// A new binary value holding a copy of the `len` bytes at `data` (`data`
/// may be NULL when `len` is 0). On success `*out` is set to a value the
/// caller owns (free with `rask_value_free`).
#[no_mangle]
pub unsafe extern "C" fn rask_value_bytes(
    data: *const u8,
    len: usize,
    out: *mut *mut rask_value,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let bytes = req_bytes(data, len, "data")?;
        req(out, "out")?;
        put(out, Value::Bin(Bytes::copy_from_slice(bytes)));
        Ok(rask_status::RASK_OK)
    })
}

/// A new empty array. The caller owns it, as for `rask_value_nil`; fill it
/// with `rask_value_array_push`.
#[no_mangle]
pub extern "C" fn rask_value_array_new() -> *mut rask_value {
    ffi_boundary!(default = ptr::null_mut(), {
        into_c(Value::Array(Vec::new()))
    })
}

/// Appends `elem` to the array `array`. `elem` is consumed, even when the
/// call fails: do not use or free it afterwards. `array` stays owned by the
/// caller. Fails with `RASK_ERR_TYPE` if `array` is not an array.
#[no_mangle]
pub unsafe extern "C" fn rask_value_array_push(
    array: *mut rask_value,
    elem: *mut rask_value,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let elem = take(elem);
        let array = val_mut(array, "array")?;
        let elem = elem.ok_or_else(|| Error::null("elem"))?;
        match array {
            Value::Array(items) => items.push(elem),
            other => return Err(wrong_kind("an array", other)),
        }
        Ok(rask_status::RASK_OK)
    })
}

/// A new empty map. The caller owns it, as for `rask_value_nil`; fill it
/// with `rask_value_map_insert`.
#[no_mangle]
pub extern "C" fn rask_value_map_new() -> *mut rask_value {
    ffi_boundary!(default = ptr::null_mut(), {
        into_c(Value::Map(Vec::new()))
    })
}

/// Appends the entry `key` → `val` to the map `map` (keys may be any value;
/// entries keep their insertion order and a key is not checked for
/// duplicates). `key` and `val` are consumed, even when the call fails.
/// `map` stays owned by the caller. Fails with `RASK_ERR_TYPE` if `map` is
/// not a map.
#[no_mangle]
pub unsafe extern "C" fn rask_value_map_insert(
    map: *mut rask_value,
    key: *mut rask_value,
    val: *mut rask_value,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let key = take(key);
        let val = take(val);
        let map = val_mut(map, "map")?;
        let key = key.ok_or_else(|| Error::null("key"))?;
        let val = val.ok_or_else(|| Error::null("val"))?;
        match map {
            Value::Map(entries) => entries.push((key, val)),
            other => return Err(wrong_kind("a map", other)),
        }
        Ok(rask_status::RASK_OK)
    })
}

/// The checks every tensor constructor makes of its `dtype` and `ndim`
/// (`rask_value_tensor`, the wrapping calls of this file and of host.rs).
fn tensor_dtype(dtype: c_int, ndim: usize) -> Result<DType, Error> {
    let dtype = u8::try_from(dtype)
        .ok()
        .and_then(DType::from_code)
        .ok_or_else(|| Error::invalid(format!("{dtype} is not a rask_dtype")))?;
    if ndim > codec::MAX_NDIM {
        return Err(Error::invalid(format!(
            "a tensor has at most {} dimensions, got {ndim}",
            codec::MAX_NDIM
        )));
    }
    Ok(dtype)
}

/// A new tensor: `ndim` dimensions given by `shape` (NULL allowed when `ndim`
/// is 0: a scalar tensor of one element) and `nbytes` bytes of row-major
/// elements at `data`, which are copied. `dtype` is a `rask_dtype` value
/// (taken as `int`). `nbytes` must equal the product of the shape times the
/// element size, and `ndim` must be at most 32; otherwise the call fails with
/// `RASK_ERR_INVALID_ARG`. On success `*out` is set to a value the caller
/// owns (free with `rask_value_free`).
#[no_mangle]
pub unsafe extern "C" fn rask_value_tensor(
    dtype: c_int,
    shape: *const usize,
    ndim: usize,
    data: *const c_void,
    nbytes: usize,
    out: *mut *mut rask_value,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let shape = req_slice(shape, ndim, "shape")?;
        let bytes = req_bytes(data.cast::<u8>(), nbytes, "data")?;
        req(out, "out")?;
        let dtype = tensor_dtype(dtype, ndim)?;
        let t = Tensor::from_slice(dtype, shape.to_vec(), bytes)
            .map_err(|e| Error::invalid(e.to_string()))?;
        put(out, Value::Tensor(t));
        Ok(rask_status::RASK_OK)
    })
}

// ---------------------------------------------------------------------------
// Buffers a host lends rask (zero copy).

/// Frees a buffer a host lent rask (`rask_value_bytes_wrap`,
/// `rask_value_tensor_wrap`): called exactly once with the `user_data` given
/// there, when rask drops the last reference to the buffer, on whichever
/// thread dropped it (one of rask's, or the host's own inside a rask call;
/// also inside the wrapping call itself when it fails). It must not call
/// back into rask except `rask_value_*` functions, must not block for long
/// (it may run on a thread that serves connections), and must not unwind.
pub type rask_buffer_release = Option<unsafe extern "C" fn(user_data: *mut c_void)>;

/// Who hears that rask no longer needs a lent buffer.
pub(crate) enum Lender {
    /// A C callback and its argument.
    Callback(rask_buffer_release, *mut c_void),
    /// The host object `id` of a host runtime (released, or queued, as a
    /// host value is).
    Host(std::sync::Arc<dyn crate::value::HostRuntime>, u64),
}

/// A buffer rask did not allocate: the memory stays where the host put it,
/// and the host is told once when the last `Bytes` over it is dropped.
pub(crate) struct Lent {
    data: *const u8,
    len: usize,
    lender: Lender,
}

// SAFETY: the contracts of the wrapping functions say the buffer stays valid
// and unwritten until the release, and that the release may be called on
// any thread.
unsafe impl Send for Lent {}
unsafe impl Sync for Lent {}

impl Lent {
    pub(crate) fn new(data: *const u8, len: usize, lender: Lender) -> Lent {
        Lent { data, len, lender }
    }

    /// The buffer as a `Bytes` that owns `self`: no copy.
    fn into_bytes(self) -> Bytes {
        Bytes::from_owner(self)
    }
}

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: checked non-NULL with `len` bytes, valid until released.
        unsafe { std::slice::from_raw_parts(self.data, self.len) }
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        match &self.lender {
            Lender::Callback(Some(f), user_data) => {
                // SAFETY: see `rask_buffer_release`.
                unsafe { f(*user_data) }
            }
            Lender::Callback(None, _) => {}
            Lender::Host(rt, id) => rt.release(*id),
        }
    }
}

/// What a lent buffer becomes.
pub(crate) enum WrapAs {
    Bytes,
    Tensor {
        dtype: c_int,
        shape: *const usize,
        ndim: usize,
    },
}

/// The one checked path of every wrapping call (`rask_value_bytes_wrap`,
/// `rask_value_tensor_wrap` and their `_host` variants): `out` non-NULL
/// (cleared first), then the checks of `lent_bytes` / `lent_tensor`; on
/// success `*out` is the new value. `lent` is owned, so any failure drops it
/// and releases the buffer exactly once.
pub(crate) unsafe fn wrap_lent(lent: Lent, how: WrapAs, out: *mut *mut rask_value) -> FfiResult {
    let out = req_mut(out, "out")?;
    *out = ptr::null_mut();
    let v = match how {
        WrapAs::Bytes => lent_bytes(lent, "data")?,
        WrapAs::Tensor { dtype, shape, ndim } => lent_tensor(lent, dtype, shape, ndim)?,
    };
    *out = into_c(v);
    Ok(rask_status::RASK_OK)
}

/// A bin value over the lent buffer (after the NULL checks of the caller).
unsafe fn lent_bytes(lent: Lent, param: &str) -> Result<Value, Error> {
    if lent.data.is_null() && lent.len > 0 {
        return Err(Error::null(param));
    }
    Ok(Value::Bin(lent.into_bytes()))
}

/// A tensor value over the lent buffer: the checks of `rask_value_tensor`,
/// and the data must be aligned for its dtype (nothing is copied to align it).
unsafe fn lent_tensor(
    lent: Lent,
    dtype: c_int,
    shape: *const usize,
    ndim: usize,
) -> Result<Value, Error> {
    let shape = req_slice(shape, ndim, "shape")?;
    if lent.data.is_null() && lent.len > 0 {
        return Err(Error::null("data"));
    }
    let dtype = tensor_dtype(dtype, ndim)?;
    if lent.len > 0 && (lent.data as usize) % dtype.size() != 0 {
        return Err(Error::invalid(format!(
            "data at {:p} is not aligned for {} ({} bytes): a lent buffer is never copied \
             (rask_value_tensor copies)",
            lent.data,
            dtype.name(),
            dtype.size()
        )));
    }
    let t = Tensor::new(dtype, shape.to_vec(), lent.into_bytes())
        .map_err(|e| Error::invalid(e.to_string()))?;
    Ok(Value::Tensor(t))
}

/// A new binary value over the `len` bytes at `data`, which the host lends
/// rask without a copy (`data` may be NULL when `len` is 0). The host keeps
/// the buffer valid and does not write it until rask calls
/// `release(user_data)` (`release` may be NULL: the buffer then outlives
/// every use, e.g. static data). `release` is called exactly once in every
/// case: when the value's last copy is dropped (a clone, a stored result, a
/// message being written all share the buffer), or before this call returns
/// if it fails. On success `*out` is set to a value the caller owns (free
/// with `rask_value_free`). Read it back without a copy with
/// `rask_value_get_bytes`.
#[no_mangle]
pub unsafe extern "C" fn rask_value_bytes_wrap(
    data: *const u8,
    len: usize,
    release: rask_buffer_release,
    user_data: *mut c_void,
    out: *mut *mut rask_value,
    err: *mut *mut rask_error,
) -> rask_status {
    // Owned from the start, so every failure releases the buffer once.
    let lent = Lent::new(data, len, Lender::Callback(release, user_data));
    ffi_boundary!(err, { wrap_lent(lent, WrapAs::Bytes, out) })
}

/// A new tensor over `nbytes` bytes of row-major elements at `data`, which
/// the host lends rask without a copy: the arguments of `rask_value_tensor`,
/// plus `release` and `user_data` as for `rask_value_bytes_wrap` (the same
/// promise: the buffer stays valid and unwritten until `release(user_data)`,
/// which is called exactly once, also when this call fails). `data` must be
/// aligned for `dtype` (a multiple of its element size), else
/// `RASK_ERR_INVALID_ARG`; `rask_value_tensor` copies instead. On success
/// `*out` is set to a value the caller owns (free with `rask_value_free`);
/// `rask_value_tensor_info` then reads back the very pointer `data`.
#[no_mangle]
pub unsafe extern "C" fn rask_value_tensor_wrap(
    dtype: c_int,
    shape: *const usize,
    ndim: usize,
    data: *const c_void,
    nbytes: usize,
    release: rask_buffer_release,
    user_data: *mut c_void,
    out: *mut *mut rask_value,
    err: *mut *mut rask_error,
) -> rask_status {
    let lent = Lent::new(data.cast(), nbytes, Lender::Callback(release, user_data));
    ffi_boundary!(err, {
        wrap_lent(lent, WrapAs::Tensor { dtype, shape, ndim }, out)
    })
}

/// A copy of `v` (tensor and binary payloads are shared, not copied; they
/// are immutable). The caller owns the copy (free with `rask_value_free`).
/// Returns NULL if `v` is NULL.
#[no_mangle]
pub unsafe extern "C" fn rask_value_clone(v: *const rask_value) -> *mut rask_value {
    ffi_boundary!(default = ptr::null_mut(), {
        match v.cast::<Value>().as_ref() {
            Some(v) => into_c(v.clone()),
            None => ptr::null_mut(),
        }
    })
}

/// Frees an owned value. NULL is ignored. Never pass a borrowed
/// `const rask_value *` (a callback argument, an array element, ...).
#[no_mangle]
pub unsafe extern "C" fn rask_value_free(v: *mut rask_value) {
    ffi_boundary!(default = (), {
        drop(take(v));
    })
}

// ---------------------------------------------------------------------------
// Reading values.

/// The kind of `v`. Returns `RASK_KIND_NIL` when `v` is NULL.
#[no_mangle]
pub unsafe extern "C" fn rask_value_kind(v: *const rask_value) -> rask_kind {
    match v.cast::<Value>().as_ref() {
        Some(v) => v.kind().into(),
        None => rask_kind::RASK_KIND_NIL,
    }
}

/// Reads a boolean. Fails with `RASK_ERR_TYPE` if `v` is not a bool.
#[no_mangle]
pub unsafe extern "C" fn rask_value_get_bool(
    v: *const rask_value,
    out: *mut bool,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let v = val(v, "v")?;
        let out = req_mut(out, "out")?;
        match v {
            Value::Bool(b) => *out = *b,
            other => return Err(wrong_kind("a bool", other)),
        }
        Ok(rask_status::RASK_OK)
    })
}

/// Reads an integer as `int64_t`: an int, or a uint that fits. Fails with
/// `RASK_ERR_TYPE` for any other kind (floats included) or a uint above
/// `INT64_MAX`.
#[no_mangle]
pub unsafe extern "C" fn rask_value_get_int(
    v: *const rask_value,
    out: *mut i64,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let v = val(v, "v")?;
        let out = req_mut(out, "out")?;
        *out = match v {
            Value::UInt(u) => {
                return Err(Error::kind(format!("the uint {u} does not fit in int64_t")))
            }
            other => other.as_i64().ok_or_else(|| wrong_kind("an int", other))?,
        };
        Ok(rask_status::RASK_OK)
    })
}

/// Reads an integer as `uint64_t`: a uint, or a non-negative int. Fails
/// with `RASK_ERR_TYPE` for any other kind or a negative int.
#[no_mangle]
pub unsafe extern "C" fn rask_value_get_uint(
    v: *const rask_value,
    out: *mut u64,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let v = val(v, "v")?;
        let out = req_mut(out, "out")?;
        *out = match v {
            Value::Int(i) if *i < 0 => {
                return Err(Error::kind(format!(
                    "the int {i} is negative and does not fit in uint64_t"
                )))
            }
            other => other.as_u64().ok_or_else(|| wrong_kind("a uint", other))?,
        };
        Ok(rask_status::RASK_OK)
    })
}

/// Reads a number as `double`: a float, or an int or uint (converted, which
/// may round above 2^53). Fails with `RASK_ERR_TYPE` for any other kind.
#[no_mangle]
pub unsafe extern "C" fn rask_value_get_float(
    v: *const rask_value,
    out: *mut f64,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let v = val(v, "v")?;
        let out = req_mut(out, "out")?;
        *out = v.as_f64().ok_or_else(|| wrong_kind("a float", v))?;
        Ok(rask_status::RASK_OK)
    })
}

/// Reads a string: `*ptr` is set to its UTF-8 bytes, borrowed from `v` and
/// valid while `v` lives, NOT NUL-terminated; `*len` to their number. Fails
/// with `RASK_ERR_TYPE` if `v` is not a string.
#[no_mangle]
pub unsafe extern "C" fn rask_value_get_str(
    v: *const rask_value,
    ptr: *mut *const c_char,
    len: *mut usize,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let v = val(v, "v")?;
        let ptr = req_mut(ptr, "ptr")?;
        let len = req_mut(len, "len")?;
        let s = v.as_str().ok_or_else(|| wrong_kind("a str", v))?;
        *ptr = s.as_ptr().cast();
        *len = s.len();
        Ok(rask_status::RASK_OK)
    })
}

/// Reads a binary value: `*data` is set to its bytes, borrowed from `v` and
/// valid while `v` lives; `*len` to their number. Fails with
/// `RASK_ERR_TYPE` if `v` is not a bin (use `rask_value_tensor_info` for
/// tensors).
#[no_mangle]
pub unsafe extern "C" fn rask_value_get_bytes(
    v: *const rask_value,
    data: *mut *const u8,
    len: *mut usize,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let v = val(v, "v")?;
        let data = req_mut(data, "data")?;
        let len = req_mut(len, "len")?;
        let b = v.as_bytes().ok_or_else(|| wrong_kind("a bin", v))?;
        *data = b.as_ptr();
        *len = b.len();
        Ok(rask_status::RASK_OK)
    })
}

/// The length of `v`: the elements of an array, the entries of a map, the
/// bytes of a str or bin, the elements of a tensor. Fails with
/// `RASK_ERR_TYPE` for scalars.
#[no_mangle]
pub unsafe extern "C" fn rask_value_len(
    v: *const rask_value,
    out: *mut usize,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let v = val(v, "v")?;
        let out = req_mut(out, "out")?;
        *out = match v {
            Value::Array(a) => a.len(),
            Value::Map(m) => m.len(),
            Value::Str(s) => s.len(),
            Value::Bin(b) => b.len(),
            Value::Tensor(t) => t.len(),
            other => return Err(wrong_kind("an array, map, str, bin or tensor", other)),
        };
        Ok(rask_status::RASK_OK)
    })
}

fn index_error(i: usize, len: usize, what: &str) -> Error {
    Error::invalid(format!(
        "index {i} is out of range for {what} of length {len}"
    ))
}

/// Element `i` of the array `v`: `*out` is borrowed from `v` and valid while
/// `v` lives and is not modified. Fails with `RASK_ERR_TYPE` if `v` is not
/// an array, `RASK_ERR_INVALID_ARG` if `i` is out of range.
#[no_mangle]
pub unsafe extern "C" fn rask_value_array_get(
    v: *const rask_value,
    i: usize,
    out: *mut *const rask_value,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let v = val(v, "v")?;
        let out = req_mut(out, "out")?;
        let a = v.as_array().ok_or_else(|| wrong_kind("an array", v))?;
        let e = a
            .get(i)
            .ok_or_else(|| index_error(i, a.len(), "an array"))?;
        *out = as_c(e);
        Ok(rask_status::RASK_OK)
    })
}

unsafe fn map_entry(
    v: *const rask_value,
    i: usize,
    out: *mut *const rask_value,
    value: bool,
) -> FfiResult {
    let v = val(v, "v")?;
    let out = req_mut(out, "out")?;
    let m = v.as_map().ok_or_else(|| wrong_kind("a map", v))?;
    let (k, x) = m.get(i).ok_or_else(|| index_error(i, m.len(), "a map"))?;
    *out = as_c(if value { x } else { k });
    Ok(rask_status::RASK_OK)
}

/// The key of entry `i` of the map `v`: `*out` is borrowed from `v`, as for
/// `rask_value_array_get`. Fails with `RASK_ERR_TYPE` if `v` is not a map,
/// `RASK_ERR_INVALID_ARG` if `i` is out of range.
#[no_mangle]
pub unsafe extern "C" fn rask_value_map_key(
    v: *const rask_value,
    i: usize,
    out: *mut *const rask_value,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, { map_entry(v, i, out, false) })
}

/// The value of entry `i` of the map `v`: `*out` is borrowed from `v`, as
/// for `rask_value_array_get`. Fails as `rask_value_map_key` does.
#[no_mangle]
pub unsafe extern "C" fn rask_value_map_value(
    v: *const rask_value,
    i: usize,
    out: *mut *const rask_value,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, { map_entry(v, i, out, true) })
}

/// Describes the tensor `v`: its dtype, its number of dimensions, its shape
/// (`*ndim` sizes), its row-major element bytes and their number. Every
/// output pointer may be NULL when that field is not wanted. `*shape` and
/// `*data` are borrowed from `v` and valid while `v` lives; the data is
/// aligned for its dtype and must not be written. Fails with `RASK_ERR_TYPE`
/// if `v` is not a tensor.
#[no_mangle]
pub unsafe extern "C" fn rask_value_tensor_info(
    v: *const rask_value,
    dtype: *mut rask_dtype,
    ndim: *mut usize,
    shape: *mut *const usize,
    data: *mut *const c_void,
    nbytes: *mut usize,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let v = val(v, "v")?;
        let t = v.as_tensor().ok_or_else(|| wrong_kind("a tensor", v))?;
        if let Some(d) = dtype.as_mut() {
            *d = t.dtype().into();
        }
        if let Some(n) = ndim.as_mut() {
            *n = t.shape().len();
        }
        if let Some(s) = shape.as_mut() {
            *s = t.shape().as_ptr();
        }
        if let Some(d) = data.as_mut() {
            *d = t.data().as_ptr().cast();
        }
        if let Some(n) = nbytes.as_mut() {
            *n = t.nbytes();
        }
        Ok(rask_status::RASK_OK)
    })
}

// ---------------------------------------------------------------------------
// msgpack.

/// Decodes one msgpack value that spans all `len` bytes at `data` (copied;
/// tensors are msgpack extension type 1, see docs/graph-spec.md). On success
/// `*out` is set to a value the caller owns (free with `rask_value_free`).
/// Fails with `RASK_ERR_DECODE`, naming the byte offset, on malformed input.
#[no_mangle]
pub unsafe extern "C" fn rask_value_from_msgpack(
    data: *const u8,
    len: usize,
    out: *mut *mut rask_value,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let bytes = req_bytes(data, len, "data")?;
        req(out, "out")?;
        let v = codec::decode(bytes)
            .map_err(|e| Error::new(rask_status::RASK_ERR_DECODE, e.to_string()))?;
        put(out, v);
        Ok(rask_status::RASK_OK)
    })
}

/// Encodes `v` as msgpack. On success `*data` is set to a new buffer of
/// `*len` bytes that the caller owns and frees with
/// `rask_buffer_free(*data, *len)`. A value whose encoding would be over
/// 4,294,967,295 bytes (4 GiB - 1; msgpack's lengths are 32-bit) fails with
/// `RASK_ERR_INVALID_ARG` and sets nothing.
#[no_mangle]
pub unsafe extern "C" fn rask_value_to_msgpack(
    v: *const rask_value,
    data: *mut *mut u8,
    len: *mut usize,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let v = val(v, "v")?;
        let data = req_mut(data, "data")?;
        let len = req_mut(len, "len")?;
        let buf = codec::encode(v)
            .map_err(|e| Error::call(rask_status::RASK_ERR_INVALID_ARG, e.to_string()))?
            .into_boxed_slice();
        *len = buf.len();
        *data = Box::into_raw(buf).cast::<u8>();
        Ok(rask_status::RASK_OK)
    })
}

/// Frees a buffer returned by rask (`rask_value_to_msgpack`,
/// `rask_graph_to_dot`), given the length that came with it. NULL is
/// ignored.
#[no_mangle]
pub unsafe extern "C" fn rask_buffer_free(data: *mut u8, len: usize) {
    ffi_boundary!(default = (), {
        if !data.is_null() {
            drop(Box::from_raw(ptr::slice_from_raw_parts_mut(data, len)));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_over_4_gib_is_not_encoded_but_refused_with_invalid_arg() {
        // calloc'd, never written: address space, not memory.
        let v = into_c(Value::Bin(Bytes::from(vec![0u8; (1 << 32) + 1])));
        let (mut data, mut len) = (ptr::null_mut(), 0usize);
        let mut err = ptr::null_mut();
        unsafe {
            let st = rask_value_to_msgpack(v, &mut data, &mut len, &mut err);
            assert_eq!(st, rask_status::RASK_ERR_INVALID_ARG);
            assert!(data.is_null());
            let m = std::ffi::CStr::from_ptr(crate::capi::error::rask_error_message(err));
            assert!(m.to_str().unwrap().contains("4294967295"), "{m:?}");
            crate::capi::error::rask_error_free(err);
            rask_value_free(v);
        }
    }

    #[test]
    fn kinds_and_dtypes_keep_the_numbers_of_the_value_model() {
        for (i, d) in DType::ALL.iter().enumerate() {
            assert_eq!(rask_dtype::from(*d) as usize, i);
            assert_eq!(*d as usize, i);
        }
        let kinds = [
            ValueKind::Nil,
            ValueKind::Bool,
            ValueKind::Int,
            ValueKind::UInt,
            ValueKind::Float,
            ValueKind::Str,
            ValueKind::Bin,
            ValueKind::Array,
            ValueKind::Map,
            ValueKind::Tensor,
        ];
        for k in kinds {
            assert_eq!(rask_kind::from(k) as i32, k as i32);
        }
    }
}

//! msgpack encoding and decoding of [`Value`]s.
//!
//! Plain msgpack types map one to one. A tensor is a msgpack extension of type
//! [`TENSOR_EXT`] whose payload is:
//!
//! | bytes        | meaning                                            |
//! |--------------|----------------------------------------------------|
//! | 1            | dtype code ([`DType`] discriminant)               |
//! | 1            | ndim (0..=32)                                      |
//! | 8 × ndim     | each dimension, u64 little-endian                  |
//! | the rest     | elements, row-major, little-endian                 |
//!
//! Decoding from [`Bytes`] ([`decode_bytes`]) slices `bin` payloads out of the
//! input without copying them. The decoder never trusts a length prefix: it
//! checks every length against the bytes that remain, and limits nesting to
//! [`MAX_DEPTH`], so hostile input gives an error, never a crash or a huge
//! allocation.

use super::host::{HostObject, HostRuntime, HostValue};
use super::{DType, Tensor, Value};
use bytes::Bytes;
use std::fmt;
use std::sync::Arc;

/// msgpack extension type used for tensors.
pub const TENSOR_EXT: i8 = 1;
/// Deepest nesting of arrays and maps the decoder accepts.
pub const MAX_DEPTH: usize = 256;
/// Most dimensions a tensor may have.
pub const MAX_NDIM: usize = 32;

/// Why bytes could not be decoded as a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// Byte offset in the input where the problem was found.
    pub offset: usize,
    pub message: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid msgpack at byte {}: {}",
            self.offset, self.message
        )
    }
}
impl std::error::Error for DecodeError {}

/// Largest msgpack encoding of one value rask sends or stores, in bytes:
/// 4 GiB − 1 (4,294,967,295). msgpack's `str`, `bin`, `ext`, array and map
/// lengths are 32-bit, and a frame holds at most 4 GiB, so a value whose
/// encoding is longer (a `bin`, `str` or tensor of 4 GiB or more, or a
/// container of such parts) is refused with [`EncodeError::TooLarge`]
/// wherever it would be encoded, never truncated.
pub const MAX_ENCODED: u64 = u32::MAX as u64;

/// msgpack extension type of a host object packed by its host (see
/// [`super::host`]): payload = runtime name length (1 byte), the name
/// (UTF-8), then the host's bytes.
pub const HOST_EXT: i8 = 2;
/// msgpack extension type of a reference to a live host object, only in
/// buffers between rask and the host that owns it (never on the wire):
/// payload = the object's id, u64 little-endian.
pub const HOST_REF_EXT: i8 = 3;
/// msgpack extension type of a tensor lent to a host in one process, only
/// in the buffers of `*_take_tasks` (never on the wire, never read back):
/// payload = the address of a new owned `rask_value *` holding the tensor
/// (its memory shared, not copied), u64 little-endian, which the host frees
/// with `rask_value_free`. See [`encode_lending`].
pub const LENT_TENSOR_EXT: i8 = 4;

/// How [`encode_lending`] lends large tensors: each tensor of at least
/// `min` bytes is given to `lend`, which returns the payload word.
pub struct Lend<'a> {
    pub min: usize,
    pub lend: &'a mut dyn FnMut(&Tensor) -> u64,
}

/// Why a value cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// Its msgpack encoding would be over [`MAX_ENCODED`] bytes.
    TooLarge {
        /// The value's kind (`"bin"`, `"array"`, ...).
        kind: &'static str,
        /// Its encoded size in bytes, or a lower bound of it (the count
        /// stops early once over the limit).
        at_least: u64,
    },
    /// It holds a host object that its host could not serialize (the
    /// message names the host).
    Host(String),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::TooLarge { kind, at_least } => write!(
                f,
                "value too large: a {kind} of at least {at_least} bytes encoded is over rask's \
                 limit of {MAX_ENCODED} bytes (4 GiB - 1) for one value (msgpack lengths are \
                 32-bit); split it into smaller values"
            ),
            EncodeError::Host(m) => f.write_str(m),
        }
    }
}
impl std::error::Error for EncodeError {}

/// The exact length of `v`'s msgpack encoding by [`encode`] if it is at
/// most `cap`, else `None` (counting stops as soon as it is over, and never
/// reads a payload's bytes, so checking a huge buffer costs nothing). A
/// live host object whose portable form was not made yet counts as over:
/// measuring never calls a host.
pub fn encoded_len_up_to(v: &Value, cap: u64) -> Option<u64> {
    let mut left = cap;
    fits(v, &mut left).then_some(cap - left)
}

/// Checks that `v` can be encoded: its encoding is at most [`MAX_ENCODED`]
/// bytes, and every live host object in it has a portable form (made now
/// by its host if needed).
pub fn check(v: &Value) -> Result<(), EncodeError> {
    check_for(v, None)
}

/// [`check`], for an encoding where the live objects of `host` stay
/// references ([`HOST_REF_EXT`]).
pub fn check_for(v: &Value, host: Option<&Arc<dyn HostRuntime>>) -> Result<(), EncodeError> {
    let mut left = MAX_ENCODED;
    match measure(v, &mut left, true, host) {
        Ok(true) => return Ok(()),
        Err(m) => return Err(EncodeError::Host(m)),
        Ok(false) => {}
    }
    // Over: say how much, counting without the cap.
    let mut left = u64::MAX;
    let _ = measure(v, &mut left, true, host);
    Err(EncodeError::TooLarge {
        kind: v.kind_name(),
        at_least: u64::MAX - left,
    })
}

/// Subtracts the exact encoded size of `v` from `left`; false as soon as
/// it would go below zero (then `left` holds what remained at that point),
/// or at a live host object whose portable form was not made yet.
pub fn fits(v: &Value, left: &mut u64) -> bool {
    measure(v, left, false, None).unwrap_or(false)
}

fn is_ref(o: &HostObject, host: Option<&Arc<dyn HostRuntime>>) -> bool {
    host.is_some_and(|rt| o.is_of(rt))
}

fn measure(
    v: &Value,
    left: &mut u64,
    serialize: bool,
    host: Option<&Arc<dyn HostRuntime>>,
) -> Result<bool, String> {
    fn int_len(i: i64) -> u64 {
        match i {
            -32..=127 => 1,
            -128..=255 => 2,
            -32_768..=65_535 => 3,
            -2_147_483_648..=4_294_967_295 => 5,
            _ => 9,
        }
    }
    // Header of a str/bin/array/map of n: fix form below `fix` (0: none).
    fn head(n: usize, fix: usize, has8: bool) -> u64 {
        if n < fix {
            1
        } else if has8 && n <= u8::MAX as usize {
            2
        } else if n <= u16::MAX as usize {
            3
        } else {
            5
        }
    }
    fn ext_head(n: usize) -> u64 {
        match n {
            1 | 2 | 4 | 8 | 16 => 2,
            0..=255 => 3,
            256..=65_535 => 4,
            _ => 6,
        }
    }
    fn take(left: &mut u64, n: u64) -> bool {
        match left.checked_sub(n) {
            Some(l) => {
                *left = l;
                true
            }
            None => false,
        }
    }
    Ok(match v {
        Value::Nil | Value::Bool(_) => take(left, 1),
        Value::Int(i) => take(left, int_len(*i)),
        Value::UInt(u) => take(left, i64::try_from(*u).map(int_len).unwrap_or(9)),
        Value::Float(_) => take(left, 9),
        Value::Str(s) => take(left, head(s.len(), 32, true)) && take(left, s.len() as u64),
        Value::Bin(b) => take(left, head(b.len(), 0, true)) && take(left, b.len() as u64),
        Value::Tensor(t) => {
            let payload = 2 + 8 * t.shape().len() + t.nbytes();
            take(left, ext_head(payload)) && take(left, payload as u64)
        }
        Value::Host(HostValue::Packed { runtime, data }) => {
            let payload = 1 + runtime.len() + data.len();
            take(left, ext_head(payload)) && take(left, payload as u64)
        }
        Value::Host(HostValue::Local(o)) if is_ref(o, host) => take(left, 10),
        Value::Host(HostValue::Local(o)) => {
            let p = match serialize {
                true => Some(o.portable()?),
                false => o.portable_if_made(),
            };
            match p {
                Some(p) => measure(p, left, serialize, host)?,
                None => false,
            }
        }
        Value::Array(a) => {
            if !take(left, head(a.len(), 16, false)) {
                return Ok(false);
            }
            for x in a {
                if !measure(x, left, serialize, host)? {
                    return Ok(false);
                }
            }
            true
        }
        Value::Map(m) => {
            if !take(left, head(m.len(), 16, false)) {
                return Ok(false);
            }
            for (k, x) in m {
                if !(measure(k, left, serialize, host)? && measure(x, left, serialize, host)?) {
                    return Ok(false);
                }
            }
            true
        }
    })
}

/// Encodes a value as msgpack; a value over [`MAX_ENCODED`] is refused
/// before anything is allocated. Live host objects are encoded as their
/// portable form (made now by their host if needed).
pub fn encode(v: &Value) -> Result<Vec<u8>, EncodeError> {
    check(v)?;
    let mut out = Vec::with_capacity(16);
    write(v, &mut out, None, &mut None);
    Ok(out)
}

/// Appends the msgpack encoding of `v` to `out`; a value over
/// [`MAX_ENCODED`] is refused and nothing is appended.
pub fn encode_into(v: &Value, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    encode_for(v, None, out)
}

/// [`encode_into`] for the host `host` in this process: its live objects
/// are written as references ([`HOST_REF_EXT`]), other hosts' objects as
/// their portable form. Such a buffer is only for that host.
pub fn encode_for(
    v: &Value,
    host: Option<&Arc<dyn HostRuntime>>,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    // Scalars cannot be too large: skip the walk on the hot path.
    if matches!(
        v,
        Value::Str(_)
            | Value::Bin(_)
            | Value::Array(_)
            | Value::Map(_)
            | Value::Tensor(_)
            | Value::Host(_)
    ) {
        check_for(v, host)?;
    }
    write(v, out, host, &mut None);
    Ok(())
}

/// [`encode_for`], lending every tensor of at least `lend.min` bytes
/// instead of copying its bytes: it is written as [`LENT_TENSOR_EXT`] with
/// the word `lend.lend` returns for it (an address the host takes over).
/// Nothing is lent when the value is refused.
pub fn encode_lending(
    v: &Value,
    host: Option<&Arc<dyn HostRuntime>>,
    lend: Lend<'_>,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    check_for(v, host)?;
    write(v, out, host, &mut Some(lend));
    Ok(())
}

/// Writes a value already [`check_for`]ed with the same `host` (so every
/// length fits in 32 bits and every portable form needed was made).
fn write(
    v: &Value,
    out: &mut Vec<u8>,
    host: Option<&Arc<dyn HostRuntime>>,
    lend: &mut Option<Lend<'_>>,
) {
    use rmp::encode as e;
    // Writing into a Vec cannot fail.
    match v {
        Value::Nil => e::write_nil(out).unwrap(),
        Value::Bool(b) => e::write_bool(out, *b).unwrap(),
        Value::Int(i) => {
            e::write_sint(out, *i).unwrap();
        }
        Value::UInt(u) => {
            e::write_uint(out, *u).unwrap();
        }
        Value::Float(f) => e::write_f64(out, *f).unwrap(),
        Value::Str(s) => e::write_str(out, s).unwrap(),
        Value::Bin(b) => e::write_bin(out, b).unwrap(),
        Value::Array(a) => {
            e::write_array_len(out, a.len() as u32).unwrap();
            for x in a {
                write(x, out, host, lend);
            }
        }
        Value::Map(m) => {
            e::write_map_len(out, m.len() as u32).unwrap();
            for (k, x) in m {
                write(k, out, host, lend);
                write(x, out, host, lend);
            }
        }
        Value::Tensor(t) if lend.as_ref().is_some_and(|l| t.nbytes() >= l.min) => {
            let word = (lend.as_mut().expect("checked").lend)(t);
            e::write_ext_meta(out, 8, LENT_TENSOR_EXT).unwrap();
            out.extend_from_slice(&word.to_le_bytes());
        }
        Value::Tensor(t) => {
            let payload = 2 + 8 * t.shape().len() + t.nbytes();
            e::write_ext_meta(out, payload as u32, TENSOR_EXT).unwrap();
            out.push(t.dtype() as u8);
            out.push(t.shape().len() as u8);
            for &d in t.shape() {
                out.extend_from_slice(&(d as u64).to_le_bytes());
            }
            out.extend_from_slice(t.data());
        }
        Value::Host(HostValue::Packed { runtime, data }) => {
            let payload = 1 + runtime.len() + data.len();
            e::write_ext_meta(out, payload as u32, HOST_EXT).unwrap();
            out.push(runtime.len() as u8);
            out.extend_from_slice(runtime.as_bytes());
            out.extend_from_slice(data);
        }
        Value::Host(HostValue::Local(o)) if is_ref(o, host) => {
            e::write_ext_meta(out, 8, HOST_REF_EXT).unwrap();
            out.extend_from_slice(&o.id().to_le_bytes());
        }
        Value::Host(HostValue::Local(o)) => {
            let p = o.portable_if_made().expect("checked before writing");
            write(p, out, host, lend);
        }
    }
}

/// Decodes one value that must span all of `data` (copies payloads).
pub fn decode(data: &[u8]) -> Result<Value, DecodeError> {
    decode_bytes(&Bytes::copy_from_slice(data))
}

/// Decodes one value that must span all of `data`; `bin` payloads share
/// `data`'s buffer.
pub fn decode_bytes(data: &Bytes) -> Result<Value, DecodeError> {
    decode_for(data, None)
}

/// [`decode_bytes`] of a buffer from the host `host` in this process:
/// references to its live objects ([`HOST_REF_EXT`]) become live host
/// values, each released once when its last copy is dropped (so when
/// decoding fails, every reference read so far is released at once).
/// Without a host a reference is an error.
pub fn decode_for(data: &Bytes, host: Option<&Arc<dyn HostRuntime>>) -> Result<Value, DecodeError> {
    let mut d = Decoder {
        buf: data,
        pos: 0,
        host,
    };
    let v = d.value(0)?;
    if d.pos != data.len() {
        return Err(d.err(format!(
            "{} trailing bytes after the value",
            data.len() - d.pos
        )));
    }
    Ok(v)
}

struct Decoder<'a> {
    buf: &'a Bytes,
    pos: usize,
    host: Option<&'a Arc<dyn HostRuntime>>,
}

impl Decoder<'_> {
    fn err(&self, message: impl Into<String>) -> DecodeError {
        DecodeError {
            offset: self.pos,
            message: message.into(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        if self.buf.len() - self.pos < n {
            return Err(self.err(format!(
                "truncated: needs {n} bytes, {} remain",
                self.buf.len() - self.pos
            )));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn take_bytes(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        if self.buf.len() - self.pos < n {
            return Err(self.err(format!(
                "truncated: needs {n} bytes, {} remain",
                self.buf.len() - self.pos
            )));
        }
        let b = self.buf.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(b)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn be<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        Ok(self.take(N)?.try_into().unwrap())
    }
    fn len(&mut self, width: usize) -> Result<usize, DecodeError> {
        Ok(match width {
            1 => self.u8()? as usize,
            2 => u16::from_be_bytes(self.be()?) as usize,
            _ => u32::from_be_bytes(self.be()?) as usize,
        })
    }

    /// Checks that `n` items of at least one byte each can still follow.
    fn check_items(&self, n: usize) -> Result<(), DecodeError> {
        if n > self.buf.len() - self.pos {
            return Err(self.err(format!(
                "container claims {n} items but only {} bytes remain",
                self.buf.len() - self.pos
            )));
        }
        Ok(())
    }

    fn str(&mut self, n: usize) -> Result<Value, DecodeError> {
        let start = self.pos;
        let raw = self.take(n)?;
        match std::str::from_utf8(raw) {
            Ok(s) => Ok(Value::Str(s.to_owned())),
            Err(e) => Err(DecodeError {
                offset: start + e.valid_up_to(),
                message: "string is not valid UTF-8".into(),
            }),
        }
    }

    fn array(&mut self, n: usize, depth: usize) -> Result<Value, DecodeError> {
        self.check_items(n)?;
        let mut a = Vec::with_capacity(n);
        for _ in 0..n {
            a.push(self.value(depth + 1)?);
        }
        Ok(Value::Array(a))
    }

    fn map(&mut self, n: usize, depth: usize) -> Result<Value, DecodeError> {
        self.check_items(n.saturating_mul(2))?;
        let mut m = Vec::with_capacity(n);
        for _ in 0..n {
            let k = self.value(depth + 1)?;
            let v = self.value(depth + 1)?;
            m.push((k, v));
        }
        Ok(Value::Map(m))
    }

    fn ext(&mut self, n: usize) -> Result<Value, DecodeError> {
        let ty = self.u8()? as i8;
        let start = self.pos;
        let payload = self.take_bytes(n)?;
        let bad = |m: String| DecodeError {
            offset: start,
            message: m,
        };
        match ty {
            TENSOR_EXT => {}
            HOST_EXT => {
                let Some((&len, rest)) = payload.split_first() else {
                    return Err(bad("host extension without a runtime name".into()));
                };
                let len = len as usize;
                if len == 0 || rest.len() < len {
                    return Err(bad("host extension shorter than its runtime name".into()));
                }
                let runtime = std::str::from_utf8(&rest[..len])
                    .map_err(|_| bad("host runtime name is not valid UTF-8".into()))?;
                return Ok(Value::Host(HostValue::Packed {
                    runtime: runtime.into(),
                    data: payload.slice(1 + len..),
                }));
            }
            HOST_REF_EXT => {
                let Some(rt) = self.host else {
                    return Err(bad(
                        "a host object reference (extension type 3) is only valid between rask \
                         and its host, not here"
                            .into(),
                    ));
                };
                // The id, and optionally the object's size in bytes (what a
                // worker's memory limit counts), unsigned 64-bit little-endian.
                let word =
                    |i: usize| u64::from_le_bytes(payload[i..i + 8].try_into().expect("8 bytes"));
                let (id, size) = match payload.len() {
                    8 => (word(0), 0),
                    16 => (word(0), word(8)),
                    n => {
                        return Err(bad(format!(
                            "host reference payload must be 8 bytes (id) or 16 (id, size), not {n}"
                        )))
                    }
                };
                return Ok(Value::Host(HostValue::new(
                    rt.clone(),
                    id,
                    usize::try_from(size).unwrap_or(usize::MAX),
                )));
            }
            LENT_TENSOR_EXT => {
                return Err(bad(
                    "a lent tensor (extension type 4) is only valid in a buffer rask hands its \
                     host, not here"
                        .into(),
                ))
            }
            _ => return Err(bad(format!("unknown msgpack extension type {ty}"))),
        }
        if payload.len() < 2 {
            return Err(bad("tensor extension shorter than its header".into()));
        }
        let dtype = DType::from_code(payload[0])
            .ok_or_else(|| bad(format!("unknown tensor dtype code {}", payload[0])))?;
        let ndim = payload[1] as usize;
        if ndim > MAX_NDIM {
            return Err(bad(format!(
                "tensor has {ndim} dimensions (at most {MAX_NDIM})"
            )));
        }
        let header = 2 + 8 * ndim;
        if payload.len() < header {
            return Err(bad("tensor extension shorter than its shape".into()));
        }
        let mut shape = Vec::with_capacity(ndim);
        for i in 0..ndim {
            let d = u64::from_le_bytes(payload[2 + 8 * i..10 + 8 * i].try_into().unwrap());
            shape.push(usize::try_from(d).map_err(|_| bad("tensor dimension too large".into()))?);
        }
        Tensor::new(dtype, shape, payload.slice(header..))
            .map(Value::Tensor)
            .map_err(|e| bad(e.to_string()))
    }

    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(self.err(format!("nested deeper than {MAX_DEPTH} levels")));
        }
        let marker = self.u8()?;
        Ok(match marker {
            0x00..=0x7f => Value::Int(marker as i64),
            0x80..=0x8f => return self.map((marker & 0x0f) as usize, depth),
            0x90..=0x9f => return self.array((marker & 0x0f) as usize, depth),
            0xa0..=0xbf => return self.str((marker & 0x1f) as usize),
            0xc0 => Value::Nil,
            0xc1 => {
                self.pos -= 1;
                return Err(self.err("reserved marker 0xc1"));
            }
            0xc2 => Value::Bool(false),
            0xc3 => Value::Bool(true),
            0xc4..=0xc6 => {
                let n = self.len(1 << (marker - 0xc4))?;
                Value::Bin(self.take_bytes(n)?)
            }
            0xc7..=0xc9 => {
                let n = self.len(1 << (marker - 0xc7))?;
                return self.ext(n);
            }
            0xca => Value::Float(f32::from_be_bytes(self.be()?) as f64),
            0xcb => Value::Float(f64::from_be_bytes(self.be()?)),
            0xcc => Value::Int(self.u8()? as i64),
            0xcd => Value::Int(u16::from_be_bytes(self.be()?) as i64),
            0xce => Value::Int(u32::from_be_bytes(self.be()?) as i64),
            0xcf => Value::from(u64::from_be_bytes(self.be()?)),
            0xd0 => Value::Int(self.u8()? as i8 as i64),
            0xd1 => Value::Int(i16::from_be_bytes(self.be()?) as i64),
            0xd2 => Value::Int(i32::from_be_bytes(self.be()?) as i64),
            0xd3 => Value::Int(i64::from_be_bytes(self.be()?)),
            0xd4..=0xd8 => return self.ext(1 << (marker - 0xd4)),
            0xd9..=0xdb => {
                let n = self.len(1 << (marker - 0xd9))?;
                return self.str(n);
            }
            0xdc | 0xdd => {
                let n = self.len(if marker == 0xdc { 2 } else { 4 })?;
                return self.array(n, depth);
            }
            0xde | 0xdf => {
                let n = self.len(if marker == 0xde { 2 } else { 4 })?;
                return self.map(n, depth);
            }
            0xe0..=0xff => Value::Int(marker as i8 as i64),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(v: Value) {
        let enc = encode(&v).unwrap();
        assert_eq!(
            encoded_len_up_to(&v, u64::MAX),
            Some(enc.len() as u64),
            "length of {v:?}"
        );
        assert_eq!(decode(&enc).unwrap(), v, "roundtrip of {v:?}");
    }

    #[test]
    fn scalars_roundtrip() {
        for v in [
            Value::Nil,
            Value::Bool(true),
            Value::Bool(false),
            Value::Int(0),
            Value::Int(-1),
            Value::Int(-33),
            Value::Int(127),
            Value::Int(128),
            Value::Int(i64::MIN),
            Value::Int(i64::MAX),
            Value::UInt(u64::MAX),
            Value::Float(1.5),
            Value::Float(f64::INFINITY),
            Value::Str(String::new()),
            Value::Str("héllo".repeat(20)),
            Value::Bin(Bytes::from_static(b"\x00\x01\x02")),
        ] {
            roundtrip(v);
        }
    }

    #[test]
    fn containers_and_tensors_roundtrip() {
        let t = Tensor::from_vec(vec![2, 2], vec![1i16, -2, 3, -4]).unwrap();
        roundtrip(Value::Array(vec![
            Value::Int(1),
            Value::Map(vec![(Value::from("k"), Value::Tensor(t))]),
            Value::Array((0..100).map(Value::from).collect()),
        ]));
        roundtrip(Value::Tensor(
            Tensor::from_vec(vec![0, 3], Vec::<f64>::new()).unwrap(),
        ));
    }

    #[test]
    fn large_tensors_are_lent_small_ones_copied_and_lent_ones_never_decode() {
        let big = Tensor::from_vec(vec![64, 64], vec![1.5f64; 64 * 64]).unwrap(); // 32 KiB
        let small = Tensor::from_vec(vec![2], vec![7i32, 8]).unwrap();
        let v = Value::Array(vec![
            Value::Tensor(small.clone()),
            Value::Map(vec![(Value::from("k"), Value::Tensor(big.clone()))]),
            Value::Tensor(big.clone()),
        ]);
        let mut seen = Vec::new();
        let mut lend = |t: &Tensor| {
            // The very memory, not a copy.
            assert_eq!(t.data().as_ptr(), big.data().as_ptr());
            seen.push(t.nbytes());
            0x1122_3344_5566_7788 + seen.len() as u64
        };
        let mut out = Vec::new();
        encode_lending(
            &v,
            None,
            Lend {
                min: 1024,
                lend: &mut lend,
            },
            &mut out,
        )
        .unwrap();
        assert_eq!(seen, vec![big.nbytes(), big.nbytes()]);
        let lent = |n: u64| {
            let mut e = vec![0xd7, LENT_TENSOR_EXT as u8]; // fixext 8
            e.extend_from_slice(&(0x1122_3344_5566_7788u64 + n).to_le_bytes());
            e
        };
        let mut want = vec![0x93];
        want.extend(encode(&Value::Tensor(small)).unwrap());
        want.extend([0x81, 0xa1, b'k']);
        want.extend(lent(1));
        want.extend(lent(2));
        assert_eq!(out, want);
        // Only a host reads them: anywhere else they are refused.
        let e = decode(&lent(1)).unwrap_err();
        assert!(e.message.contains("extension type 4"), "{e}");
        // Under the threshold everything is copied, as encode_into does.
        let mut none = |_: &Tensor| -> u64 { panic!("nothing to lend") };
        let mut copied = Vec::new();
        let lend = Lend {
            min: big.nbytes() + 1,
            lend: &mut none,
        };
        encode_lending(&v, None, lend, &mut copied).unwrap();
        assert_eq!(copied, encode(&v).unwrap());
    }

    #[test]
    fn bin_is_not_copied() {
        let enc = Bytes::from(encode(&Value::Bin(Bytes::from(vec![7u8; 1000]))).unwrap());
        let v = decode_bytes(&enc).unwrap();
        let b = v.as_bytes().unwrap();
        let range = enc.as_ptr() as usize..enc.as_ptr() as usize + enc.len();
        assert!(range.contains(&(b.as_ptr() as usize)));
    }

    #[test]
    fn foreign_encodings_decode() {
        // uint8/16/32, int8, float32 and fixext encodings another encoder may choose.
        assert_eq!(decode(&[0xcc, 0xff]).unwrap(), Value::Int(255));
        assert_eq!(decode(&[0xcd, 0x01, 0x00]).unwrap(), Value::Int(256));
        assert_eq!(decode(&[0xd0, 0x80]).unwrap(), Value::Int(-128));
        assert_eq!(
            decode(&[0xca, 0x3f, 0xc0, 0, 0]).unwrap(),
            Value::Float(1.5)
        );
        // A 1-d uint8 tensor of 2 elements in an ext8.
        let mut t = vec![0xc7, 12, TENSOR_EXT as u8, DType::U8 as u8, 1];
        t.extend_from_slice(&2u64.to_le_bytes());
        t.extend_from_slice(&[9, 8]);
        let v = decode(&t).unwrap();
        assert_eq!(
            v.as_tensor()
                .unwrap()
                .view::<u8>()
                .unwrap()
                .iter()
                .copied()
                .collect::<Vec<u8>>(),
            vec![9, 8]
        );
    }

    #[test]
    fn malformed_input_is_an_error() {
        let cases: &[(&[u8], &str)] = &[
            (&[], "truncated"),
            (&[0xc1], "reserved"),
            (&[0xa3, b'a'], "truncated"),
            (&[0xa2, 0xff, 0xfe], "UTF-8"),
            (&[0xdd, 0xff, 0xff, 0xff, 0xff], "claims"),
            (&[0xdf, 0xff, 0xff, 0xff, 0xff, 0x01], "claims"),
            (&[0xc6, 0x7f, 0xff, 0xff, 0xff], "truncated"),
            (&[0x01, 0x02], "trailing"),
            (&[0xd4, 5, 0], "unknown msgpack extension"),
            (&[0xd5, TENSOR_EXT as u8, 99, 0], "dtype"),
            (&[0xd5, TENSOR_EXT as u8, 1, 1], "shape"),
        ];
        for (input, needle) in cases {
            let e = decode(input).unwrap_err();
            assert!(
                e.message.contains(needle),
                "{input:x?}: {e} should mention {needle:?}"
            );
        }
        // Tensor data length disagrees with the shape.
        let mut t = vec![0xc7, 13, TENSOR_EXT as u8, DType::I32 as u8, 1];
        t.extend_from_slice(&2u64.to_le_bytes());
        t.extend_from_slice(&[1, 2, 3]);
        assert!(decode(&t).unwrap_err().message.contains("bytes"));
    }

    #[test]
    fn values_over_4_gib_are_refused_not_truncated() {
        // calloc'd and never written: address space, not memory. Every
        // value below shares this one buffer.
        let big = Bytes::from(vec![0u8; (1 << 32) + 1]); // 4 GiB + 1
        let max = MAX_ENCODED as usize;
        let t = |n: usize| Tensor::new(DType::U8, vec![n], big.slice(..n)).unwrap();
        let over = [
            Value::Bin(big.clone()),
            Value::Bin(big.slice(..max - 4)), // bin32 header + 4 GiB - 4
            // Safety: zero bytes are valid UTF-8.
            Value::Str(unsafe { String::from_utf8_unchecked(vec![0u8; (1 << 32) + 1]) }),
            Value::Tensor(t(1 << 32)),
            Value::Array(vec![
                Value::Bin(big.slice(..3 << 30)),
                Value::Bin(big.slice(..3 << 30)),
            ]),
            Value::Map(vec![(
                Value::Nil,
                Value::Array(vec![Value::Tensor(t(max))]),
            )]),
        ];
        for v in &over {
            let e = check(v).unwrap_err();
            let m = e.to_string();
            assert!(m.contains("4294967295") && m.contains("4 GiB"), "{m}");
            let EncodeError::TooLarge { at_least, .. } = e else {
                panic!("{e:?}")
            };
            assert!(at_least > MAX_ENCODED, "{e:?}");
            assert_eq!(encode(v).unwrap_err(), e);
            let mut out = vec![1u8];
            assert_eq!(encode_into(v, &mut out).unwrap_err(), e);
            assert_eq!(out, [1], "nothing appended");
        }
        // The largest value that fits: exactly MAX_ENCODED bytes encoded
        // (checked, not encoded: that would copy 4 GiB).
        let edge = Value::Bin(big.slice(..max - 5));
        assert_eq!(encoded_len_up_to(&edge, u64::MAX), Some(MAX_ENCODED));
        assert!(check(&edge).is_ok());
        assert_eq!(encoded_len_up_to(&edge, MAX_ENCODED - 1), None);
        let edge = Value::Tensor(t(max - 6 - 2 - 8)); // ext32 header, dtype, ndim, one dim
        assert_eq!(encoded_len_up_to(&edge, u64::MAX), Some(MAX_ENCODED));
    }

    #[test]
    fn encoded_lengths_are_exact_at_every_header_size() {
        let mut vals = Vec::new();
        for n in [0usize, 1, 15, 16, 31, 32, 255, 256, 65_535, 65_536] {
            vals.push(Value::Str("x".repeat(n)));
            vals.push(Value::Bin(Bytes::from(vec![1u8; n])));
            vals.push(Value::Array(vec![Value::Nil; n.min(70_000)]));
            vals.push(Value::Map(
                (0..n.min(70_000))
                    .map(|i| (Value::from(i), Value::Nil))
                    .collect(),
            ));
            vals.push(Value::Tensor(
                Tensor::from_vec(vec![n], vec![1u8; n]).unwrap(),
            ));
        }
        for i in [
            -33i64,
            -32,
            -129,
            -128,
            -32_769,
            -32_768,
            i64::MIN,
            127,
            128,
            255,
            256,
            65_535,
            65_536,
            1 << 32,
        ] {
            vals.push(Value::Int(i));
        }
        vals.push(Value::Tensor(Tensor::from_vec(vec![], vec![7u16]).unwrap())); // fixext4
        for v in vals {
            let enc = encode(&v).unwrap();
            assert_eq!(
                encoded_len_up_to(&v, u64::MAX),
                Some(enc.len() as u64),
                "{v:?}"
            );
            assert_eq!(encoded_len_up_to(&v, enc.len() as u64 - 1), None);
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let input = vec![0x91u8; 100_000];
        let e = decode(&input).unwrap_err();
        assert!(e.message.contains("nested deeper"), "{e}");
    }
}

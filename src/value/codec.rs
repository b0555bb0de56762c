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

use super::{DType, Tensor, Value};
use bytes::Bytes;
use std::fmt;

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

/// Encodes a value as msgpack.
pub fn encode(v: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    encode_into(v, &mut out);
    out
}

/// Appends the msgpack encoding of `v` to `out`.
pub fn encode_into(v: &Value, out: &mut Vec<u8>) {
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
            e::write_array_len(out, len32(a.len())).unwrap();
            for x in a {
                encode_into(x, out);
            }
        }
        Value::Map(m) => {
            e::write_map_len(out, len32(m.len())).unwrap();
            for (k, x) in m {
                encode_into(k, out);
                encode_into(x, out);
            }
        }
        Value::Tensor(t) => {
            let payload = 2 + 8 * t.shape().len() + t.nbytes();
            e::write_ext_meta(out, len32(payload), TENSOR_EXT).unwrap();
            out.push(t.dtype() as u8);
            out.push(t.shape().len() as u8);
            for &d in t.shape() {
                out.extend_from_slice(&(d as u64).to_le_bytes());
            }
            out.extend_from_slice(t.data());
        }
    }
}

fn len32(n: usize) -> u32 {
    u32::try_from(n).expect("msgpack containers hold at most 2^32-1 items")
}

/// Decodes one value that must span all of `data` (copies payloads).
pub fn decode(data: &[u8]) -> Result<Value, DecodeError> {
    decode_bytes(&Bytes::copy_from_slice(data))
}

/// Decodes one value that must span all of `data`; `bin` payloads share
/// `data`'s buffer.
pub fn decode_bytes(data: &Bytes) -> Result<Value, DecodeError> {
    let mut d = Decoder { buf: data, pos: 0 };
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
        if ty != TENSOR_EXT {
            return Err(DecodeError {
                offset: start,
                message: format!("unknown msgpack extension type {ty}"),
            });
        }
        let bad = |m: String| DecodeError {
            offset: start,
            message: m,
        };
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
        let enc = encode(&v);
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
    fn bin_is_not_copied() {
        let enc = Bytes::from(encode(&Value::Bin(Bytes::from(vec![7u8; 1000]))));
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
    fn deep_nesting_is_refused_not_overflowed() {
        let input = vec![0x91u8; 100_000];
        let e = decode(&input).unwrap_err();
        assert!(e.message.contains("nested deeper"), "{e}");
    }
}

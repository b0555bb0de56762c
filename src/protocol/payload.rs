//! How values travel: each value in its own payload frame.
//!
//! A message that carries values (`data`, `put-data`) holds a small
//! [`Packed`] descriptor per value in its msgpack body; the value's bytes are
//! a separate frame of the same wire message:
//!
//! - `kind: "bin"`: the frame is the raw bytes of a `bin` value.
//! - `kind: "tensor"`: the frame is the raw row-major elements of a tensor;
//!   `dtype` and `shape` are in the descriptor.
//! - `kind: "msgpack"`: the frame is the value encoded as msgpack (any
//!   value; tensors inside it use the extension of `docs/graph-spec.md`).
//!
//! Bytes and tensors are therefore written from their buffers and read into
//! buffers of their own, never copied through a msgpack body.

use super::ProtocolError;
use crate::value::{DType, Tensor, Value};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Describes one value carried in a payload frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Packed {
    /// Index of the frame within the wire message (frame 0 is the body).
    pub frame: u32,
    /// `"msgpack"`, `"bin"` or `"tensor"`.
    pub kind: String,
    /// Tensor dtype code (see docs/graph-spec.md), for `kind: "tensor"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtype: Option<u8>,
    /// Tensor shape, for `kind: "tensor"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<Vec<u64>>,
}

/// Adds `v` as a payload frame to `payloads` (which will follow the body,
/// so its frame index is `payloads.len()` after the push) and describes it.
pub fn pack_value(v: &Value, payloads: &mut Vec<Bytes>) -> Packed {
    let (kind, dtype, shape, bytes) = match v {
        Value::Bin(b) => ("bin", None, None, b.clone()),
        Value::Tensor(t) => (
            "tensor",
            Some(t.dtype() as u8),
            Some(t.shape().iter().map(|&d| d as u64).collect()),
            t.data().clone(),
        ),
        other => (
            "msgpack",
            None,
            None,
            Bytes::from(crate::value::encode(other)),
        ),
    };
    payloads.push(bytes);
    Packed {
        frame: payloads.len() as u32,
        kind: kind.into(),
        dtype,
        shape,
    }
}

/// The value a [`Packed`] describes, from the wire message's frames.
pub fn unpack_value(p: &Packed, frames: &[Bytes]) -> Result<Value, ProtocolError> {
    if p.frame == 0 {
        return Err(ProtocolError(
            "a value cannot live in frame 0 (the body)".into(),
        ));
    }
    let f = frames.get(p.frame as usize).ok_or_else(|| {
        ProtocolError(format!(
            "value refers to frame {} but the message has {} frames",
            p.frame,
            frames.len()
        ))
    })?;
    match p.kind.as_str() {
        "bin" => Ok(Value::Bin(f.clone())),
        "msgpack" => crate::value::decode_bytes(f)
            .map_err(|e| ProtocolError(format!("value in frame {}: {e}", p.frame))),
        "tensor" => {
            let code = p
                .dtype
                .ok_or_else(|| ProtocolError("a tensor value needs a dtype".into()))?;
            let dtype = DType::from_code(code)
                .ok_or_else(|| ProtocolError(format!("unknown tensor dtype code {code}")))?;
            let shape = p
                .shape
                .as_ref()
                .ok_or_else(|| ProtocolError("a tensor value needs a shape".into()))?
                .iter()
                .map(|&d| usize::try_from(d))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| ProtocolError("tensor dimension too large".into()))?;
            if shape.len() > crate::value::codec::MAX_NDIM {
                return Err(ProtocolError(format!(
                    "a tensor of {} dimensions is over the limit",
                    shape.len()
                )));
            }
            Tensor::new(dtype, shape, f.clone())
                .map(Value::Tensor)
                .map_err(|e| ProtocolError(format!("tensor in frame {}: {e}", p.frame)))
        }
        k => Err(ProtocolError(format!("unknown value kind '{k}'"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_roundtrips_and_big_buffers_are_shared() {
        let big = Bytes::from(vec![3u8; 1 << 20]);
        let t = Tensor::from_vec(vec![2, 2], vec![1.0f64, 2., 3., 4.]).unwrap();
        let values = vec![
            Value::Bin(big.clone()),
            Value::Tensor(t.clone()),
            Value::Array(vec![Value::Int(1), Value::from("s")]),
            Value::Nil,
        ];
        let mut payloads = Vec::new();
        let packed: Vec<Packed> = values
            .iter()
            .map(|v| pack_value(v, &mut payloads))
            .collect();
        assert_eq!(payloads[0].as_ptr(), big.as_ptr(), "bin not copied on send");
        assert_eq!(
            payloads[1].as_ptr(),
            t.data().as_ptr(),
            "tensor not copied on send"
        );
        let mut frames = vec![Bytes::from_static(b"body")];
        frames.extend(payloads);
        for (p, v) in packed.iter().zip(&values) {
            assert_eq!(&unpack_value(p, &frames).unwrap(), v);
        }
    }

    #[test]
    fn bad_descriptors_are_errors() {
        let frames = vec![Bytes::from_static(b"body"), Bytes::from(vec![0u8; 8])];
        let p = |frame, kind: &str, dtype, shape| Packed {
            frame,
            kind: kind.into(),
            dtype,
            shape,
        };
        for (packed, needle) in [
            (p(0, "bin", None, None), "frame 0"),
            (p(5, "bin", None, None), "has 2 frames"),
            (p(1, "weird", None, None), "unknown value kind"),
            (p(1, "tensor", None, Some(vec![1])), "dtype"),
            (p(1, "tensor", Some(99), Some(vec![1])), "dtype code"),
            (p(1, "tensor", Some(10), None), "shape"),
            (p(1, "tensor", Some(10), Some(vec![3])), "bytes"),
            (p(1, "msgpack", None, None), "trailing"),
        ] {
            let e = unpack_value(&packed, &frames).unwrap_err().0;
            assert!(e.contains(needle), "{e:?} should contain {needle:?}");
        }
    }
}

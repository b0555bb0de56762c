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

use super::shm::{Segment, MAX_FDS};
use super::ProtocolError;
use crate::value::{DType, EncodeError, Tensor, Value};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Describes one value carried in a payload frame, or (on a connection
/// between two processes of one host) in a shared memory file passed as a
/// descriptor (see [`super::shm`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Packed {
    /// Index of the frame within the wire message (frame 0 is the body);
    /// 0 (or absent) when the value is in a descriptor (`fd`).
    #[serde(default)]
    pub frame: u32,
    /// `"msgpack"`, `"bin"` or `"tensor"`.
    pub kind: String,
    /// Tensor dtype code (see docs/graph-spec.md), for `kind: "tensor"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtype: Option<u8>,
    /// Tensor shape, for `kind: "tensor"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<Vec<u64>>,
    /// The value's bytes are in the memory file of the wire message's
    /// `fd`-th descriptor (0-based, in the order they were passed), `len`
    /// bytes from `offset`; `kind` is then `"bin"` or `"tensor"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fd: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub len: Option<u64>,
}

/// How many descriptors the values of one message use (one more than the
/// largest `fd`).
pub fn fds_used<'a>(packed: impl IntoIterator<Item = &'a Packed>) -> usize {
    packed
        .into_iter()
        .filter_map(|p| p.fd)
        .map(|i| i as usize + 1)
        .max()
        .unwrap_or(0)
}

/// The value's buffer when it is a `bin` or tensor that can go as a
/// descriptor: in a segment, and at least `threshold` bytes.
fn in_segment(v: &Value, threshold: usize) -> Option<(Arc<Segment>, usize, usize)> {
    let b = match v {
        Value::Bin(b) => b,
        Value::Tensor(t) => t.data(),
        _ => return None,
    };
    if b.len() < threshold.max(1) {
        return None;
    }
    let (seg, off) = super::shm::find(b)?;
    Some((seg, off, b.len()))
}

/// Adds `v` as a payload frame to `payloads` (which will follow the body,
/// so its frame index is `payloads.len()` after the push) and describes it.
/// A value over [`crate::value::MAX_ENCODED`] is refused (and nothing is
/// added): no frame of it could be read at the other end.
pub fn pack_value(v: &Value, payloads: &mut Vec<Bytes>) -> Result<Packed, EncodeError> {
    crate::value::check_size(v)?;
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
            Bytes::from(crate::value::encode(other)?),
        ),
    };
    payloads.push(bytes);
    Ok(Packed {
        frame: payloads.len() as u32,
        kind: kind.into(),
        dtype,
        shape,
        ..Packed::default()
    })
}

/// Most payload bytes one message carries when values are split over
/// several messages ([`pack_batches`]): with one value of at most 4 GiB
/// more, a message stays within the 8 GiB a receiver accepts by default.
pub const MAX_BATCH_BYTES: u64 = 4 << 30;
/// Most values rask puts in one message that carries values (`data`,
/// `put-data`): each value is a frame, and a receiver takes at most 65,536
/// frames a wire message by default.
pub const MAX_BATCH_VALUES: usize = 4096;

/// The values of one message: descriptors by key, and their frames.
#[derive(Debug, Default)]
pub struct PackedBatch {
    pub data: BTreeMap<String, Packed>,
    pub payloads: Vec<Bytes>,
    /// Segments whose descriptors go with the message ([`pack_batches_local`]).
    pub fds: Vec<Arc<Segment>>,
}

/// Packs `(key, value)` pairs into batches of at most `max_items` values
/// and at most [`MAX_BATCH_BYTES`] payload bytes (a larger value goes
/// alone), each for one message (`data`, `put-data`). A value that cannot
/// be encoded is handed to `refused` and left out.
pub fn pack_batches<'a>(
    items: impl IntoIterator<Item = (String, &'a Value)>,
    max_items: usize,
    refused: impl FnMut(String, EncodeError),
) -> Vec<PackedBatch> {
    pack_batches_local(items, max_items, None, refused)
}

/// [`pack_batches`] for a connection that can carry descriptors (a Unix
/// connection on one host): with `threshold` set, a `bin` or tensor of at
/// least that many bytes whose buffer lies in a segment goes as the
/// segment's descriptor (at most [`MAX_FDS`] per message, the others as
/// frames), not as bytes.
pub fn pack_batches_local<'a>(
    items: impl IntoIterator<Item = (String, &'a Value)>,
    max_items: usize,
    threshold: Option<usize>,
    mut refused: impl FnMut(String, EncodeError),
) -> Vec<PackedBatch> {
    let mut out: Vec<PackedBatch> = Vec::new();
    let mut bytes = 0u64;
    let mut one = Vec::with_capacity(1);
    for (k, v) in items {
        if let Some((seg, off, len)) = threshold.and_then(|t| in_segment(v, t)) {
            let full = match out.last() {
                None => true,
                Some(b) => {
                    b.data.len() >= max_items
                        || (b.fds.len() >= MAX_FDS && !b.fds.iter().any(|s| Arc::ptr_eq(s, &seg)))
                }
            };
            if full {
                out.push(PackedBatch::default());
                bytes = 0;
            }
            let b = out.last_mut().expect("a batch");
            let i = match b.fds.iter().position(|s| Arc::ptr_eq(s, &seg)) {
                Some(i) => i,
                None => {
                    b.fds.push(seg);
                    b.fds.len() - 1
                }
            };
            let (kind, dtype, shape) = match v {
                Value::Tensor(t) => (
                    "tensor",
                    Some(t.dtype() as u8),
                    Some(t.shape().iter().map(|&d| d as u64).collect()),
                ),
                _ => ("bin", None, None),
            };
            b.data.insert(
                k,
                Packed {
                    frame: 0,
                    kind: kind.into(),
                    dtype,
                    shape,
                    fd: Some(i as u32),
                    offset: Some(off as u64),
                    len: Some(len as u64),
                },
            );
            continue;
        }
        let mut p = match pack_value(v, &mut one) {
            Ok(p) => p,
            Err(e) => {
                refused(k, e);
                continue;
            }
        };
        let frame = one.pop().expect("pack_value adds a frame");
        let n = frame.len() as u64;
        let full = match out.last() {
            None => true,
            Some(b) => b.data.len() >= max_items || bytes + n > MAX_BATCH_BYTES,
        };
        if full {
            out.push(PackedBatch::default());
            bytes = 0;
        }
        let b = out.last_mut().expect("a batch");
        b.payloads.push(frame);
        p.frame = b.payloads.len() as u32;
        b.data.insert(k, p);
        bytes += n;
    }
    out
}

/// The value a [`Packed`] describes, from the wire message's frames. A
/// value over [`crate::value::MAX_ENCODED`] (a frame can hold a `bin` of
/// exactly 4 GiB) is refused, so that whatever is received can be sent on.
pub fn unpack_value(p: &Packed, frames: &[Bytes]) -> Result<Value, ProtocolError> {
    unpack_value_in(p, frames, &[])
}

/// [`unpack_value`] for a message that came with descriptors, mapped as
/// `segs` (in the order they were passed).
pub fn unpack_value_in(
    p: &Packed,
    frames: &[Bytes],
    segs: &[Arc<Segment>],
) -> Result<Value, ProtocolError> {
    let v = unpack_unchecked(p, frames, segs)?;
    // Re-encoding adds at most a tensor's header (6 + 2 + 8 × 32 bytes).
    let n = match p.fd {
        Some(_) => p.len.unwrap_or(0),
        None => frames[p.frame as usize].len() as u64,
    };
    if n + 512 > crate::value::MAX_ENCODED {
        crate::value::check_size(&v)
            .map_err(|e| ProtocolError(format!("value in frame {}: {e}", p.frame)))?;
    }
    Ok(v)
}

/// The bytes of a value passed in a descriptor.
fn in_fd(p: &Packed, i: u32, segs: &[Arc<Segment>]) -> Result<Bytes, ProtocolError> {
    if p.kind == "msgpack" {
        return Err(ProtocolError(
            "a msgpack value cannot be passed in a descriptor".into(),
        ));
    }
    let seg = segs.get(i as usize).ok_or_else(|| {
        ProtocolError(format!(
            "value refers to descriptor {i} but the message came with {}",
            segs.len()
        ))
    })?;
    let (off, len) = (p.offset.unwrap_or(0), p.len.unwrap_or(0));
    usize::try_from(off)
        .ok()
        .zip(usize::try_from(len).ok())
        .and_then(|(o, l)| seg.bytes(o, l))
        .ok_or_else(|| {
            ProtocolError(format!(
                "value at {off}+{len} lies outside its memory file of {} bytes",
                seg.len()
            ))
        })
}

fn unpack_unchecked(
    p: &Packed,
    frames: &[Bytes],
    segs: &[Arc<Segment>],
) -> Result<Value, ProtocolError> {
    let held;
    let f = match p.fd {
        Some(i) => {
            held = in_fd(p, i, segs)?;
            &held
        }
        None => {
            if p.frame == 0 {
                return Err(ProtocolError(
                    "a value cannot live in frame 0 (the body)".into(),
                ));
            }
            frames.get(p.frame as usize).ok_or_else(|| {
                ProtocolError(format!(
                    "value refers to frame {} but the message has {} frames",
                    p.frame,
                    frames.len()
                ))
            })?
        }
    };
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
            .map(|v| pack_value(v, &mut payloads).unwrap())
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
    fn batches_split_by_bytes_and_values_over_the_limit_are_refused() {
        // calloc'd, never written; the values share it (no copies).
        let big = Bytes::from(vec![0u8; (1 << 32) + 1]);
        let three = Value::Bin(big.slice(..3 << 30));
        let over = Value::Bin(big.clone());
        let small = Value::Int(1);
        let items = [
            ("a", &three),
            ("b", &small),
            ("c", &three),
            ("d", &over),
            ("e", &three),
        ];
        let mut refused = Vec::new();
        let batches = pack_batches(
            items.iter().map(|(k, v)| (k.to_string(), *v)),
            usize::MAX,
            |k, e| refused.push((k, e.to_string())),
        );
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].0, "d");
        assert!(refused[0].1.contains("4294967295"), "{}", refused[0].1);
        // a+b fit in 4 GiB; c would not join them, nor e join c.
        let keys: Vec<Vec<&str>> = batches
            .iter()
            .map(|b| b.data.keys().map(|k| k.as_str()).collect())
            .collect();
        assert_eq!(keys, vec![vec!["a", "b"], vec!["c"], vec!["e"]]);
        for b in &batches {
            let total: u64 = b.payloads.iter().map(|p| p.len() as u64).sum();
            assert!(total <= MAX_BATCH_BYTES);
            let mut frames = vec![Bytes::new()];
            frames.extend(b.payloads.iter().cloned());
            for (k, p) in &b.data {
                let v = unpack_value(p, &frames).unwrap();
                assert_eq!(&v, items.iter().find(|(x, _)| x == k).unwrap().1);
            }
            assert!(b
                .payloads
                .iter()
                .all(|p| p.len() < 64 || p.as_ptr() == big.as_ptr()));
        }
        // Count limit too.
        let many = pack_batches((0..5).map(|i| (i.to_string(), &small)), 2, |_, _| panic!());
        assert_eq!(
            many.iter().map(|b| b.data.len()).collect::<Vec<_>>(),
            [2, 2, 1]
        );
        assert!(pack_value(&over, &mut Vec::new()).is_err());
        // A frame holding a bin of exactly 4 GiB is refused when unpacked.
        let p = Packed {
            frame: 1,
            kind: "bin".into(),
            ..Packed::default()
        };
        let frames = [Bytes::new(), big.slice(..1 << 32)];
        assert!(unpack_value(&p, &frames)
            .unwrap_err()
            .0
            .contains("4294967295"));
    }

    #[test]
    fn values_in_shared_memory_go_as_descriptors_on_local_connections() {
        use crate::protocol::shm::{share, Segment};
        let n = 1 << 18; // 2 MiB of f64
        let plain = Tensor::from_vec(vec![n], vec![1.5f64; n]).unwrap();
        let shared = share(plain.data()).unwrap();
        let in_shm = Tensor::new(DType::F64, vec![n], shared.clone()).unwrap();
        let values = [
            ("a", Value::Tensor(in_shm)),
            ("b", Value::Bin(shared.slice(8..(1 << 20) + 8))),
            ("c", Value::Bin(shared.slice(..100))),
            ("d", Value::Tensor(plain)),
        ];
        let items = || values.iter().map(|(k, v)| (k.to_string(), v));
        let batches = pack_batches_local(items(), 100, Some(1 << 20), |_, _| panic!());
        assert_eq!(batches.len(), 1);
        let b = &batches[0];
        assert_eq!(b.fds.len(), 1, "one segment, one descriptor");
        assert_eq!(fds_used(b.data.values()), 1);
        assert_eq!((b.data["a"].fd, b.data["a"].offset), (Some(0), Some(0)));
        assert_eq!((b.data["b"].fd, b.data["b"].offset), (Some(0), Some(8)));
        assert_eq!(b.data["c"].fd, None, "under the threshold: a frame");
        assert_eq!(b.data["d"].fd, None, "not in shared memory: a frame");
        assert_eq!(b.payloads.len(), 2);
        // The receiving side maps the descriptor (a duplicate here).
        let segs = vec![Segment::open(b.fds[0].fd().try_clone_to_owned().unwrap()).unwrap()];
        let mut frames = vec![Bytes::new()];
        frames.extend(b.payloads.iter().cloned());
        for (k, v) in &values {
            let got = unpack_value_in(&b.data[*k], &frames, &segs).unwrap();
            assert_eq!(&got, v, "{k}");
        }
        // Without the descriptor, or outside the file: errors.
        let e = unpack_value(&b.data["a"], &frames).unwrap_err().0;
        assert!(e.contains("descriptor 0"), "{e}");
        let mut far = b.data["b"].clone();
        far.offset = Some(3 << 20);
        let e = unpack_value_in(&far, &frames, &segs).unwrap_err().0;
        assert!(e.contains("outside"), "{e}");
        // Off (or a TCP connection): every value as a frame.
        let tcp = pack_batches_local(items(), 100, None, |_, _| panic!());
        assert!(tcp[0].fds.is_empty() && tcp[0].payloads.len() == 4);
    }

    #[test]
    fn bad_descriptors_are_errors() {
        let frames = vec![Bytes::from_static(b"body"), Bytes::from(vec![0u8; 8])];
        let p = |frame, kind: &str, dtype, shape| Packed {
            frame,
            kind: kind.into(),
            dtype,
            shape,
            ..Packed::default()
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

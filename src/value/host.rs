//! Host values: objects that a host language (Python, Julia) owns and rask
//! only holds.
//!
//! A host function's result need not become rask data: the host hands rask a
//! number (`id`) that stands for its object, and rask stores, orders, moves
//! between tasks and frees that handle like any value ([`Value::Host`]). When
//! the last copy is dropped, rask tells the host once ([`HostRuntime::release`]).
//!
//! The object is converted only where it must leave its process or its
//! language: sent to another worker or client, spilled to disk, or passed to
//! a builtin or C function. There rask asks the host for its *portable form*
//! ([`HostRuntime::serialize`]): plain data (a list of floats becomes an
//! array) or, for an object with no plain form, a [`HostValue::Packed`]: the
//! host's own serialization (pickle, Julia `Serialization`) tagged with its
//! runtime, which only a host of that runtime reads back. The portable form
//! is made once per object and kept.
//!
//! Which encodings exist (docs/graph-spec.md): a packed value is msgpack
//! extension type [`super::codec::HOST_EXT`]; a reference to a live object
//! ([`super::codec::HOST_REF_EXT`]) exists only in buffers between rask and
//! the host that owns the object, in one process.

use super::Value;
use bytes::Bytes;
use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, OnceLock};

/// A host language runtime that owns objects rask holds.
pub trait HostRuntime: Send + Sync {
    /// The runtime's name, as for shipped functions (`"python-3.11"`,
    /// `"julia-1.5"`).
    fn name(&self) -> &str;
    /// The portable form of the object `id`: plain data, possibly holding
    /// [`HostValue::Packed`] parts, never a live host value. An error says
    /// why the object cannot leave its process.
    fn serialize(&self, id: u64) -> Result<Value, String>;
    /// rask dropped its last reference to `id`; called exactly once per
    /// object, on whichever thread dropped it.
    fn release(&self, id: u64);
}

/// A live host object: its runtime and id. Released when dropped.
pub struct HostObject {
    runtime: Arc<dyn HostRuntime>,
    id: u64,
    size: usize,
    portable: OnceLock<Result<Value, String>>,
}

impl HostObject {
    pub fn runtime(&self) -> &Arc<dyn HostRuntime> {
        &self.runtime
    }
    pub fn id(&self) -> u64 {
        self.id
    }
    /// The host's estimate of the object's size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }
    /// Whether this object belongs to `rt` (the same runtime object).
    pub fn is_of(&self, rt: &Arc<dyn HostRuntime>) -> bool {
        Arc::as_ptr(&self.runtime).cast::<()>() == Arc::as_ptr(rt).cast::<()>()
    }
    /// The portable form, made by the host on first use and kept.
    pub fn portable(&self) -> Result<&Value, String> {
        self.portable
            .get_or_init(|| match self.runtime.serialize(self.id) {
                Ok(v) if v.has_live_host() => Err(format!(
                    "the {} serializer returned a live host value",
                    self.runtime.name()
                )),
                Ok(v) => Ok(v),
                Err(e) => Err(format!(
                    "a {} object (id {}) cannot leave its process: {e}",
                    self.runtime.name(),
                    self.id
                )),
            })
            .as_ref()
            .map_err(Clone::clone)
    }
    /// The portable form if it was made already.
    pub fn portable_if_made(&self) -> Option<&Value> {
        self.portable.get().and_then(|r| r.as_ref().ok())
    }
}

impl Drop for HostObject {
    fn drop(&mut self) {
        self.runtime.release(self.id);
    }
}

/// A host object: live in this process, or packed by its host.
#[derive(Clone)]
pub enum HostValue {
    /// An object of a host in this process.
    Local(Arc<HostObject>),
    /// An object serialized by a host of `runtime` (msgpack extension
    /// [`super::codec::HOST_EXT`]); only such a host reads `data`.
    Packed { runtime: Arc<str>, data: Bytes },
}

impl HostValue {
    /// A new live host value; `rt.release(id)` is called once when its last
    /// copy is dropped. `size` is the host's estimate of its bytes.
    pub fn new(rt: Arc<dyn HostRuntime>, id: u64, size: usize) -> HostValue {
        HostValue::Local(Arc::new(HostObject {
            runtime: rt,
            id,
            size,
            portable: OnceLock::new(),
        }))
    }

    /// Like [`HostValue::new`], with the portable form given now (a host
    /// that cannot be called back on rask's threads gives it up front).
    pub fn with_portable(
        rt: Arc<dyn HostRuntime>,
        id: u64,
        size: usize,
        portable: Value,
    ) -> HostValue {
        let cell = OnceLock::new();
        let _ = cell.set(Ok(portable));
        HostValue::Local(Arc::new(HostObject {
            runtime: rt,
            id,
            size,
            portable: cell,
        }))
    }

    /// The name of the runtime the object belongs to.
    pub fn runtime_name(&self) -> &str {
        match self {
            HostValue::Local(o) => o.runtime.name(),
            HostValue::Packed { runtime, .. } => runtime,
        }
    }
}

impl PartialEq for HostValue {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (HostValue::Local(a), HostValue::Local(b)) => Arc::ptr_eq(a, b),
            (
                HostValue::Packed {
                    runtime: r1,
                    data: d1,
                },
                HostValue::Packed {
                    runtime: r2,
                    data: d2,
                },
            ) => r1 == r2 && d1 == d2,
            _ => false,
        }
    }
}

impl fmt::Debug for HostValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostValue::Local(o) => write!(f, "host[{} #{}]", o.runtime.name(), o.id),
            HostValue::Packed { runtime, data } => {
                write!(f, "host[{runtime}, {} bytes packed]", data.len())
            }
        }
    }
}

impl Value {
    /// Whether this value is or holds a live host object.
    pub fn has_live_host(&self) -> bool {
        match self {
            Value::Host(HostValue::Local(_)) => true,
            Value::Array(a) => a.iter().any(Value::has_live_host),
            Value::Map(m) => m
                .iter()
                .any(|(k, v)| k.has_live_host() || v.has_live_host()),
            _ => false,
        }
    }

    /// The value with every live host object replaced by its portable form
    /// (borrowed when there is none): what a builtin, a C function or
    /// another process gets. Fails when a host cannot serialize an object.
    pub fn portable(&self) -> Result<Cow<'_, Value>, String> {
        if !self.has_live_host() {
            return Ok(Cow::Borrowed(self));
        }
        fn conv(v: &Value) -> Result<Value, String> {
            Ok(match v {
                Value::Host(HostValue::Local(o)) => o.portable()?.clone(),
                Value::Array(a) => Value::Array(a.iter().map(conv).collect::<Result<_, _>>()?),
                Value::Map(m) => Value::Map(
                    m.iter()
                        .map(|(k, v)| Ok((conv(k)?, conv(v)?)))
                        .collect::<Result<_, String>>()?,
                ),
                other => other.clone(),
            })
        }
        conv(self).map(Cow::Owned)
    }

    /// The first packed host value in this value, if any (a builtin or C
    /// function cannot read one).
    pub fn find_packed(&self) -> Option<&HostValue> {
        match self {
            Value::Host(h @ HostValue::Packed { .. }) => Some(h),
            Value::Array(a) => a.iter().find_map(Value::find_packed),
            Value::Map(m) => m
                .iter()
                .find_map(|(k, v)| k.find_packed().or_else(|| v.find_packed())),
            _ => None,
        }
    }
}

/// The arguments as a builtin or C function takes them: live host objects
/// converted to their portable form; an object that has no plain form (its
/// host packed it) is an error naming its runtime.
pub fn plain_args(args: &[Value]) -> Result<Cow<'_, [Value]>, String> {
    fn has_host(v: &Value) -> bool {
        match v {
            Value::Host(_) => true,
            Value::Array(a) => a.iter().any(has_host),
            Value::Map(m) => m.iter().any(|(k, v)| has_host(k) || has_host(v)),
            _ => false,
        }
    }
    if !args.iter().any(has_host) {
        return Ok(Cow::Borrowed(args));
    }
    let mut out = Vec::with_capacity(args.len());
    for (i, a) in args.iter().enumerate() {
        let p = a.portable()?.into_owned();
        if let Some(h) = p.find_packed() {
            return Err(format!(
                "argument {i} is a {} object with no plain-data form; builtins and C \
                 functions take plain data only (see \"Host values\" in docs/graph-spec.md)",
                h.runtime_name()
            ));
        }
        out.push(p);
    }
    Ok(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;

    #[derive(Default)]
    struct Rt {
        released: Mutex<Vec<u64>>,
        serialized: Mutex<Vec<u64>>,
    }
    impl HostRuntime for Rt {
        fn name(&self) -> &str {
            "test-1"
        }
        fn serialize(&self, id: u64) -> Result<Value, String> {
            self.serialized.lock().push(id);
            match id {
                1 => Ok(Value::Array(vec![Value::Int(1), Value::Int(2)])),
                2 => Ok(Value::Host(HostValue::Packed {
                    runtime: "test-1".into(),
                    data: Bytes::from_static(b"obj"),
                })),
                _ => Err("no serializer for it".into()),
            }
        }
        fn release(&self, id: u64) {
            self.released.lock().push(id);
        }
    }

    #[test]
    fn released_once_when_the_last_copy_drops_and_serialized_once() {
        let rt = Arc::new(Rt::default());
        let dynrt: Arc<dyn HostRuntime> = rt.clone();
        let v = Value::Host(HostValue::new(dynrt.clone(), 1, 100));
        let copies = vec![v.clone(), Value::Array(vec![v.clone(), Value::Nil])];
        assert!(copies[1].has_live_host());
        let p = copies[1].portable().unwrap().into_owned();
        let _ = copies[0].portable().unwrap();
        assert_eq!(*rt.serialized.lock(), [1], "made once, kept");
        assert_eq!(
            p,
            Value::Array(vec![
                Value::Array(vec![Value::Int(1), Value::Int(2)]),
                Value::Nil
            ])
        );
        drop(v);
        drop(copies);
        assert_eq!(*rt.released.lock(), [1]);
        assert!(v_size(&dynrt) >= 7);
    }

    fn v_size(rt: &Arc<dyn HostRuntime>) -> usize {
        Value::Host(HostValue::new(rt.clone(), 9, 7)).size_estimate()
    }

    #[test]
    fn builtins_get_plain_data_or_an_error_naming_the_host() {
        let rt: Arc<dyn HostRuntime> = Arc::new(Rt::default());
        let plain = Value::Host(HostValue::new(rt.clone(), 1, 0));
        let packed = Value::Host(HostValue::new(rt.clone(), 2, 0));
        let none = Value::Host(HostValue::new(rt.clone(), 3, 0));
        let args = [Value::Int(5), plain];
        let got = plain_args(&args).unwrap();
        assert_eq!(got[1], Value::Array(vec![Value::Int(1), Value::Int(2)]));
        let e = plain_args(&[Value::Nil, packed]).unwrap_err();
        assert!(e.contains("argument 1 is a test-1 object"), "{e}");
        let e = plain_args(&[none]).unwrap_err();
        assert!(e.contains("test-1 object (id 3) cannot leave") && e.contains("no serializer"));
        let args = [Value::Int(1)];
        assert!(matches!(plain_args(&args).unwrap(), Cow::Borrowed(_)));
    }

    #[test]
    fn packed_values_roundtrip_and_references_need_their_host() {
        use crate::value::codec;
        let packed = Value::Host(HostValue::Packed {
            runtime: "test-1".into(),
            data: Bytes::from_static(b"xyz"),
        });
        let enc = codec::encode(&packed).unwrap();
        assert_eq!(enc, b"\xc7\x0a\x02\x06test-1xyz");
        assert_eq!(codec::decode(&enc).unwrap(), packed);
        assert_eq!(
            codec::encoded_len_up_to(&packed, 100),
            Some(enc.len() as u64)
        );

        let rt = Arc::new(Rt::default());
        let dynrt: Arc<dyn HostRuntime> = rt.clone();
        let live = Value::Array(vec![Value::Host(HostValue::new(dynrt.clone(), 1, 0))]);
        // Measuring never calls the host: unknown until serialized.
        assert_eq!(codec::encoded_len_up_to(&live, 100), None);
        let mut refs = Vec::new();
        codec::encode_for(&live, Some(&dynrt), &mut refs).unwrap();
        assert_eq!(refs, b"\x91\xd7\x03\x01\x00\x00\x00\x00\x00\x00\x00");
        assert!(
            rt.serialized.lock().is_empty(),
            "a reference needs no serializing"
        );
        let e = codec::decode(&refs).unwrap_err();
        assert!(e.message.contains("extension type 3"), "{e}");
        let back = codec::decode_for(&Bytes::from(refs), Some(&dynrt)).unwrap();
        let Value::Array(a) = &back else { panic!() };
        let Value::Host(HostValue::Local(o)) = &a[0] else {
            panic!()
        };
        assert_eq!(o.id(), 1);
        drop(back);
        assert_eq!(
            *rt.released.lock(),
            [1],
            "a decoded reference is released too"
        );
        // Without the host, the portable form is written.
        assert_eq!(codec::encode(&live).unwrap(), b"\x91\x92\x01\x02");
        assert_eq!(codec::encoded_len_up_to(&live, 100), Some(4));
        drop(live);
        assert_eq!(*rt.released.lock(), [1, 1]);
        // A host that fails to serialize: the encoding error names it.
        let bad = Value::Host(HostValue::new(dynrt, 3, 0));
        let e = codec::encode(&bad).unwrap_err();
        assert!(matches!(e, codec::EncodeError::Host(_)));
        assert!(e.to_string().contains("test-1 object (id 3)"), "{e}");
    }
}

//! The value model shared by every part of rask.
//!
//! A [`Value`] is a msgpack-compatible value (nil, bool, int, float, str, bin,
//! array, map) or a [`Tensor`]: a dtype, a shape and contiguous row-major
//! bytes. Byte payloads (`Bin` and tensor data) are reference-counted
//! [`Bytes`], so passing a value from one task to the next never copies them;
//! cloning a `Value` copies scalars and containers, never buffers.
//!
//! The msgpack codec lives in [`codec`]: tensors travel as a msgpack extension
//! (type [`codec::TENSOR_EXT`]) whose layout `docs/graph-spec.md` documents.

pub mod codec;
pub mod host;
mod tensor;

pub use codec::{
    check as check_size, decode, decode_bytes, encode, encode_into, DecodeError, EncodeError,
    MAX_ENCODED,
};
pub use host::{HostRuntime, HostValue};
pub use tensor::{DType, Tensor, TensorError};

use bytes::Bytes;
use std::fmt;

/// A msgpack-compatible value, or a tensor.
#[derive(Clone, PartialEq, Default)]
pub enum Value {
    /// msgpack nil; what `noop` returns.
    #[default]
    Nil,
    Bool(bool),
    /// A signed integer. Non-negative integers decoded from msgpack are
    /// `Int` when they fit in an `i64`, `UInt` only above `i64::MAX`.
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    /// Raw bytes, reference-counted.
    Bin(Bytes),
    Array(Vec<Value>),
    /// A map with keys in insertion order; keys may be any value.
    Map(Vec<(Value, Value)>),
    Tensor(Tensor),
    /// An object a host language owns (see [`host`]): a handle rask holds
    /// and frees, converted only when it leaves its process or language.
    Host(HostValue),
}

/// The kind of a [`Value`], as exposed through the C ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub enum ValueKind {
    Nil = 0,
    Bool = 1,
    Int = 2,
    UInt = 3,
    Float = 4,
    Str = 5,
    Bin = 6,
    Array = 7,
    Map = 8,
    Tensor = 9,
    Host = 10,
}

impl Value {
    /// The kind of this value.
    pub fn kind(&self) -> ValueKind {
        match self {
            Value::Nil => ValueKind::Nil,
            Value::Bool(_) => ValueKind::Bool,
            Value::Int(_) => ValueKind::Int,
            Value::UInt(_) => ValueKind::UInt,
            Value::Float(_) => ValueKind::Float,
            Value::Str(_) => ValueKind::Str,
            Value::Bin(_) => ValueKind::Bin,
            Value::Array(_) => ValueKind::Array,
            Value::Map(_) => ValueKind::Map,
            Value::Tensor(_) => ValueKind::Tensor,
            Value::Host(_) => ValueKind::Host,
        }
    }

    /// A short lowercase name of the kind, for error messages.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::UInt(_) => "uint",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bin(_) => "bin",
            Value::Array(_) => "array",
            Value::Map(_) => "map",
            Value::Tensor(_) => "tensor",
            Value::Host(_) => "host",
        }
    }

    /// The value as an `i64`, if it is an integer that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int(i) => Some(i),
            Value::UInt(u) => i64::try_from(u).ok(),
            _ => None,
        }
    }

    /// The value as a `u64`, if it is a non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::Int(i) => u64::try_from(i).ok(),
            Value::UInt(u) => Some(u),
            _ => None,
        }
    }

    /// The value as an `f64`: floats as they are, integers converted.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Float(f) => Some(f),
            Value::Int(i) => Some(i as f64),
            Value::UInt(u) => Some(u as f64),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&Bytes> {
        match self {
            Value::Bin(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Value, Value)]> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_tensor(&self) -> Option<&Tensor> {
        match self {
            Value::Tensor(t) => Some(t),
            _ => None,
        }
    }

    /// Looks a string key up in a map value.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// An estimate of the memory this value holds, in bytes (payloads
    /// included). Used for reporting result sizes.
    pub fn size_estimate(&self) -> usize {
        let base = std::mem::size_of::<Value>();
        match self {
            Value::Str(s) => base + s.len(),
            Value::Bin(b) => base + b.len(),
            Value::Array(a) => base + a.iter().map(Value::size_estimate).sum::<usize>(),
            Value::Map(m) => {
                base + m
                    .iter()
                    .map(|(k, v)| k.size_estimate() + v.size_estimate())
                    .sum::<usize>()
            }
            Value::Tensor(t) => base + t.nbytes() + t.shape().len() * 8,
            Value::Host(HostValue::Local(o)) => base + o.size(),
            Value::Host(HostValue::Packed { runtime, data }) => base + runtime.len() + data.len(),
            _ => base,
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Nil => write!(f, "nil"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::UInt(u) => write!(f, "{u}u"),
            Value::Float(x) => write!(f, "{x:?}"),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::Bin(b) => write!(f, "bin[{} bytes]", b.len()),
            Value::Array(a) => f.debug_list().entries(a).finish(),
            Value::Map(m) => f
                .debug_map()
                .entries(m.iter().map(|(k, v)| (k, v)))
                .finish(),
            Value::Tensor(t) => write!(f, "{t:?}"),
            Value::Host(h) => write!(f, "{h:?}"),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

macro_rules! from_int {
    ($($t:ty => $variant:ident),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self { Value::$variant(v.into()) }
        }
    )*};
}
from_int!(i8 => Int, i16 => Int, i32 => Int, i64 => Int, u8 => Int, u16 => Int, u32 => Int);

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        match i64::try_from(v) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::UInt(v),
        }
    }
}
impl From<usize> for Value {
    fn from(v: usize) -> Self {
        Value::from(v as u64)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}
impl From<f32> for Value {
    fn from(v: f32) -> Self {
        Value::Float(v.into())
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Str(v.to_owned())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Str(v)
    }
}
impl From<Bytes> for Value {
    fn from(v: Bytes) -> Self {
        Value::Bin(v)
    }
}
impl From<Vec<Value>> for Value {
    fn from(v: Vec<Value>) -> Self {
        Value::Array(v)
    }
}
impl From<Tensor> for Value {
    fn from(v: Tensor) -> Self {
        Value::Tensor(v)
    }
}
impl From<()> for Value {
    fn from(_: ()) -> Self {
        Value::Nil
    }
}

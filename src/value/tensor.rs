//! Tensors: a dtype, a shape and contiguous row-major (C order) bytes.
//!
//! The bytes are a reference-counted [`Bytes`] whose start is aligned to the
//! dtype's size, so a tensor can be viewed as an `ndarray` array without a
//! copy ([`Tensor::view`]). Column-major hosts (Julia, Fortran) hand in their
//! arrays with the shape reversed: the same bytes, read as the transpose.

use super::Value;
use bytes::Bytes;
use ndarray::{ArrayViewD, IxDyn};
use std::fmt;

/// Element type of a tensor. The discriminants are part of the C ABI and of
/// the wire format (the first byte of a tensor extension payload).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(C)]
pub enum DType {
    Bool = 0,
    I8 = 1,
    I16 = 2,
    I32 = 3,
    I64 = 4,
    U8 = 5,
    U16 = 6,
    U32 = 7,
    U64 = 8,
    F32 = 9,
    F64 = 10,
}

impl DType {
    pub const ALL: [DType; 11] = [
        DType::Bool,
        DType::I8,
        DType::I16,
        DType::I32,
        DType::I64,
        DType::U8,
        DType::U16,
        DType::U32,
        DType::U64,
        DType::F32,
        DType::F64,
    ];

    /// Size of one element in bytes.
    pub fn size(self) -> usize {
        match self {
            DType::Bool | DType::I8 | DType::U8 => 1,
            DType::I16 | DType::U16 => 2,
            DType::I32 | DType::U32 | DType::F32 => 4,
            DType::I64 | DType::U64 | DType::F64 => 8,
        }
    }

    /// The dtype with the given wire code.
    pub fn from_code(code: u8) -> Option<DType> {
        DType::ALL.get(code as usize).copied()
    }

    /// The numpy-style name ("float64", "int32", ...).
    pub fn name(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            DType::I8 => "int8",
            DType::I16 => "int16",
            DType::I32 => "int32",
            DType::I64 => "int64",
            DType::U8 => "uint8",
            DType::U16 => "uint16",
            DType::U32 => "uint32",
            DType::U64 => "uint64",
            DType::F32 => "float32",
            DType::F64 => "float64",
        }
    }
}

/// Rust element types that a tensor can be viewed as.
pub trait Element: Copy + 'static {
    const DTYPE: DType;
}
macro_rules! element {
    ($($t:ty => $d:ident),*) => {$(impl Element for $t { const DTYPE: DType = DType::$d; })*};
}
element!(i8 => I8, i16 => I16, i32 => I32, i64 => I64, u8 => U8, u16 => U16, u32 => U32,
         u64 => U64, f32 => F32, f64 => F64);

/// Why a tensor could not be made or viewed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TensorError {
    /// `data.len()` is not `product(shape) * dtype.size()`.
    SizeMismatch { expected: usize, got: usize },
    /// The shape's element count overflows `usize`.
    ShapeOverflow,
    /// Viewed as another element type than its dtype.
    WrongDType { have: DType, want: DType },
}

impl fmt::Display for TensorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TensorError::SizeMismatch { expected, got } => write!(
                f,
                "tensor data has {got} bytes but its shape and dtype need {expected}"
            ),
            TensorError::ShapeOverflow => write!(f, "tensor shape is too large"),
            TensorError::WrongDType { have, want } => write!(
                f,
                "tensor has dtype {} but was read as {}",
                have.name(),
                want.name()
            ),
        }
    }
}
impl std::error::Error for TensorError {}

/// A dense row-major tensor. Cloning shares the data (and the shape): a
/// tensor is one pointer wide inside a [`Value`].
#[derive(Clone, PartialEq)]
pub struct Tensor {
    inner: std::sync::Arc<Inner>,
}

#[derive(PartialEq)]
struct Inner {
    dtype: DType,
    shape: Vec<usize>,
    data: Bytes,
}

/// An 8-byte-aligned owner for tensor data that arrived unaligned.
struct Aligned {
    words: Vec<u64>,
    len: usize,
}
impl AsRef<[u8]> for Aligned {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `words` holds at least `len` initialised bytes.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr() as *const u8, self.len) }
    }
}

fn aligned_copy(src: &[u8]) -> Bytes {
    let mut words = vec![0u64; src.len().div_ceil(8)];
    // SAFETY: `words` has room for `src.len()` bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(src.as_ptr(), words.as_mut_ptr() as *mut u8, src.len())
    };
    Bytes::from_owner(Aligned {
        words,
        len: src.len(),
    })
}

/// Number of elements of a shape, or `None` on overflow.
pub(crate) fn element_count(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

impl Tensor {
    /// A tensor over `data`, shared without a copy when it is suitably
    /// aligned (copied once into an aligned buffer otherwise).
    pub fn new(dtype: DType, shape: Vec<usize>, data: Bytes) -> Result<Tensor, TensorError> {
        let expected = element_count(&shape)
            .and_then(|n| n.checked_mul(dtype.size()))
            .ok_or(TensorError::ShapeOverflow)?;
        if data.len() != expected {
            return Err(TensorError::SizeMismatch {
                expected,
                got: data.len(),
            });
        }
        let data = if (data.as_ptr() as usize) % dtype.size() != 0 {
            aligned_copy(&data)
        } else {
            data
        };
        Ok(Tensor {
            inner: std::sync::Arc::new(Inner { dtype, shape, data }),
        })
    }

    /// A tensor that copies `data` (for data borrowed from a host language).
    pub fn from_slice(dtype: DType, shape: Vec<usize>, data: &[u8]) -> Result<Tensor, TensorError> {
        Tensor::new(dtype, shape, aligned_copy(data))
    }

    /// A tensor holding the elements of `values` with the given shape.
    pub fn from_vec<T: Element>(shape: Vec<usize>, values: Vec<T>) -> Result<Tensor, TensorError> {
        let bytes = values.len() * std::mem::size_of::<T>();
        // SAFETY: T is a plain numeric type; we reinterpret its storage as bytes.
        let raw = unsafe { std::slice::from_raw_parts(values.as_ptr() as *const u8, bytes) };
        Tensor::new(T::DTYPE, shape, aligned_copy(raw))
    }

    pub fn dtype(&self) -> DType {
        self.inner.dtype
    }
    pub fn shape(&self) -> &[usize] {
        &self.inner.shape
    }
    pub fn data(&self) -> &Bytes {
        &self.inner.data
    }
    pub fn nbytes(&self) -> usize {
        self.inner.data.len()
    }
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.inner.data.len() / self.inner.dtype.size()
    }
    pub fn is_empty(&self) -> bool {
        self.inner.data.is_empty()
    }

    /// A zero-copy `ndarray` view of the data as elements of type `T`.
    pub fn view<T: Element>(&self) -> Result<ArrayViewD<'_, T>, TensorError> {
        if T::DTYPE != self.dtype() {
            return Err(TensorError::WrongDType {
                have: self.dtype(),
                want: T::DTYPE,
            });
        }
        // SAFETY: the constructor checked length and alignment for `dtype`,
        // and T's layout is the dtype's.
        let slice =
            unsafe { std::slice::from_raw_parts(self.data().as_ptr() as *const T, self.len()) };
        Ok(ArrayViewD::from_shape(IxDyn(self.shape()), slice).expect("shape checked in new"))
    }

    /// Each element converted to `f64` (booleans as 0/1).
    pub fn to_f64_vec(&self) -> Vec<f64> {
        let d = &self.data()[..];
        macro_rules! conv {
            ($t:ty) => {
                d.chunks_exact(std::mem::size_of::<$t>())
                    .map(|c| <$t>::from_ne_bytes(c.try_into().unwrap()) as f64)
                    .collect()
            };
        }
        match self.dtype() {
            DType::Bool => d.iter().map(|&b| (b != 0) as u8 as f64).collect(),
            DType::I8 => conv!(i8),
            DType::I16 => conv!(i16),
            DType::I32 => conv!(i32),
            DType::I64 => conv!(i64),
            DType::U8 => conv!(u8),
            DType::U16 => conv!(u16),
            DType::U32 => conv!(u32),
            DType::U64 => conv!(u64),
            DType::F32 => conv!(f32),
            DType::F64 => conv!(f64),
        }
    }

    /// Element `i` (flat, row-major) as a scalar [`Value`].
    pub fn get_flat(&self, i: usize) -> Option<Value> {
        if i >= self.len() {
            return None;
        }
        let s = self.dtype().size();
        let b = &self.data()[i * s..(i + 1) * s];
        Some(match self.dtype() {
            DType::Bool => Value::Bool(b[0] != 0),
            DType::I8 => Value::Int(b[0] as i8 as i64),
            DType::I16 => Value::Int(i16::from_ne_bytes(b.try_into().unwrap()) as i64),
            DType::I32 => Value::Int(i32::from_ne_bytes(b.try_into().unwrap()) as i64),
            DType::I64 => Value::Int(i64::from_ne_bytes(b.try_into().unwrap())),
            DType::U8 => Value::Int(b[0] as i64),
            DType::U16 => Value::Int(u16::from_ne_bytes(b.try_into().unwrap()) as i64),
            DType::U32 => Value::Int(u32::from_ne_bytes(b.try_into().unwrap()) as i64),
            DType::U64 => Value::from(u64::from_ne_bytes(b.try_into().unwrap())),
            DType::F32 => Value::Float(f32::from_ne_bytes(b.try_into().unwrap()) as f64),
            DType::F64 => Value::Float(f64::from_ne_bytes(b.try_into().unwrap())),
        })
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tensor<{}>{:?}", self.dtype().name(), self.shape())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_is_zero_copy() {
        let t = Tensor::from_vec(vec![2, 3], vec![1.0f64, 2., 3., 4., 5., 6.]).unwrap();
        let v = t.view::<f64>().unwrap();
        assert_eq!(v.shape(), &[2, 3]);
        assert_eq!(v[[1, 2]], 6.0);
        assert_eq!(v.as_ptr() as usize, t.data().as_ptr() as usize);
        assert!(matches!(
            t.view::<f32>(),
            Err(TensorError::WrongDType { .. })
        ));
    }

    #[test]
    fn unaligned_data_is_realigned() {
        let raw = Bytes::from(vec![0u8; 17]);
        let unaligned = raw.slice(1..17);
        let t = Tensor::new(DType::F64, vec![2], unaligned).unwrap();
        assert_eq!(t.data().as_ptr() as usize % 8, 0);
        assert_eq!(t.view::<f64>().unwrap().len(), 2);
    }

    #[test]
    fn size_mismatch_and_overflow_are_errors() {
        assert_eq!(
            Tensor::new(DType::I32, vec![3], Bytes::from(vec![0u8; 8])),
            Err(TensorError::SizeMismatch {
                expected: 12,
                got: 8
            })
        );
        assert_eq!(
            Tensor::new(DType::I32, vec![usize::MAX, 2], Bytes::new()),
            Err(TensorError::ShapeOverflow)
        );
    }

    #[test]
    fn flat_access() {
        let t = Tensor::from_vec(vec![3], vec![-1i32, 0, 7]).unwrap();
        assert_eq!(t.get_flat(0), Some(Value::Int(-1)));
        assert_eq!(t.get_flat(3), None);
        assert_eq!(t.to_f64_vec(), vec![-1.0, 0.0, 7.0]);
    }
}

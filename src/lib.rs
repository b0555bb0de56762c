//! rask: a Dask-style task scheduler with a C ABI.
//!
//! - [`value`]: the value model (msgpack values and tensors) and its codec.
//! - [`graph`]: task graphs, validation, culling and ordering.
//! - [`registry`]: named functions (builtins, native, pulled).
//! - [`local`]: the in-process threaded executor.
//! - `capi`: the C ABI (`include/rask.h`).

pub mod capi;
pub mod graph;
pub mod local;
pub mod protocol;
pub mod registry;
pub mod value;

pub use graph::{Arg, Graph, GraphError, KeyId};
pub use local::{compute, compute_keys, Computation, ComputeError, Options};
pub use registry::Registry;
pub use value::{Tensor, Value};

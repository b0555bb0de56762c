//! rask: a Dask-style task scheduler with a C ABI.
//!
//! - [`value`]: the value model (msgpack values and tensors) and its codec.
//! - [`graph`]: task graphs, validation, culling and ordering.
//! - [`registry`]: named functions (builtins, native, pulled).
//! - [`local`]: the in-process threaded executor.
//! - [`protocol`]: the wire protocol (framing, messages, connections).
//! - [`scheduler`], [`worker`], [`client`], [`cluster`]: the distributed
//!   runtime.
//! - [`runtime`]: the process-wide tokio runtime they share.
//! - `capi`: the C ABI (`include/rask.h`).

pub mod capi;
pub mod client;
pub mod cluster;
pub mod graph;
pub mod invariants;
pub mod local;
pub mod protocol;
pub mod registry;
pub mod runtime;
pub mod scheduler;
pub mod value;
pub(crate) mod wakeup;
pub mod worker;

pub use graph::{Arg, Graph, GraphError, KeyId};
pub use local::{compute, compute_keys, Computation, ComputeError, Options};
pub use registry::Registry;
pub use value::{Tensor, Value};

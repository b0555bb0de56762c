//! The in-process executor: compute a graph on a pool of threads.
//!
//! [`compute`] runs a graph to completion and returns the requested values;
//! [`Computation::start`] runs it in the background so that a host can pull
//! the tasks of pulled functions ([`Computation::next_task`]) on threads of
//! its own while Rust builtins and native functions run on rask's threads.
//!
//! # How it runs
//!
//! The graph is culled to the requested keys, validated and ordered
//! ([`crate::graph::Plan`]). Every task has an atomic count of unfinished
//! dependencies and one of dependents that still have to read its result.
//!
//! - Each thread keeps a private heap of ready tasks, lowest priority first,
//!   and pushes the tasks its own work made ready onto it: the thread that
//!   produced a value usually consumes it, with no cross-thread hand-off.
//! - Work crosses threads only through one shared heap, in batches: a thread
//!   whose heap runs dry takes a batch from it; a thread with more than one
//!   ready task gives part of its heap away when another thread is idle.
//! - An idle thread spins briefly (waking a sleeping thread on the other CPU
//!   costs tens of microseconds) and then sleeps on a condition variable.
//! - A result is freed as soon as the last task that reads it has taken its
//!   arguments, unless it is a requested output. The number of results held
//!   at once is counted, and its peak reported in [`Stats::peak_live`].
//! - Priorities are unique (a permutation), so "last ready first among equals"
//!   never has to break a tie within one computation.
//!
//! The first failing task stops the computation; the error names the key, the
//! function and the message. A function name that nothing provides is
//! reported before anything runs.

mod exec;

pub use exec::{Computation, NextTask, PulledTask};

use crate::graph::{Graph, GraphError, KeyId};
use crate::registry::Registry;
use crate::value::Value;
use std::fmt;
use std::sync::Arc;

/// The most executor threads one computation starts.
pub const MAX_THREADS: usize = 512;

/// How to run a computation.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Threads that run Rust builtins and native functions. 0 means the
    /// number of CPUs; more than [`MAX_THREADS`] means [`MAX_THREADS`].
    /// [`compute`] counts the calling thread as one of them, so
    /// `threads = 1` runs everything on the caller's thread.
    pub threads: usize,
}

impl Options {
    pub fn with_threads(threads: usize) -> Options {
        Options { threads }
    }

    pub(crate) fn thread_count(&self) -> usize {
        if self.threads > 0 {
            self.threads.min(MAX_THREADS)
        } else {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        }
    }
}

/// Figures about a computation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Tasks in the culled graph.
    pub tasks: usize,
    /// Tasks that ran to completion.
    pub tasks_run: usize,
    /// Most task results held in memory at one time (outputs included).
    pub peak_live: usize,
}

/// Why a computation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ComputeError {
    Graph(GraphError),
    /// No function named `func` is registered or built in; `key` uses it.
    UnknownFunction {
        func: String,
        key: String,
    },
    /// The task `key` running `func` failed with `message`.
    TaskFailed {
        key: String,
        func: String,
        message: String,
    },
    /// The computation was cancelled before it finished.
    Cancelled,
}

impl fmt::Display for ComputeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ComputeError::Graph(e) => e.fmt(f),
            ComputeError::UnknownFunction { func, key } => write!(
                f,
                "no function named '{func}' is registered or built in (used by task '{key}')"
            ),
            ComputeError::TaskFailed { key, func, message } => {
                write!(f, "task '{key}' ({func}) failed: {message}")
            }
            ComputeError::Cancelled => write!(f, "the computation was cancelled"),
        }
    }
}
impl std::error::Error for ComputeError {}

impl From<GraphError> for ComputeError {
    fn from(e: GraphError) -> Self {
        ComputeError::Graph(e)
    }
}

/// The values of a finished computation, in the order they were requested.
#[derive(Clone, Debug)]
pub struct Computed {
    pub values: Vec<Value>,
    pub stats: Stats,
}

/// Computes `outputs` of `graph`, blocking until done. Runs on the calling
/// thread and `options.threads - 1` more. Tasks of pulled functions wait
/// for another thread to pull them; use [`Computation::start`] to pull them
/// yourself.
pub fn compute(
    graph: &Arc<Graph>,
    outputs: &[KeyId],
    registry: &Registry,
    options: &Options,
) -> Result<Computed, ComputeError> {
    exec::compute(graph, outputs, registry, options)
}

/// [`compute`] with outputs named by strings.
pub fn compute_keys<S: AsRef<str>>(
    graph: &Arc<Graph>,
    outputs: &[S],
    registry: &Registry,
    options: &Options,
) -> Result<Computed, ComputeError> {
    let ids = graph.output_ids(outputs)?;
    compute(graph, &ids, registry, options)
}

#[cfg(test)]
mod tests;

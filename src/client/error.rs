//! What can go wrong in a client call.

use std::fmt;

/// A task failed on a worker (the `key-erred` message): the wanted key, the
/// task that actually failed (the key itself or something it depends on),
/// that task's function, the worker it ran on, and the error message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskError {
    /// The key of the future that erred.
    pub key: String,
    /// The key of the task that failed.
    pub failed: String,
    /// The function of the task that failed.
    pub func: String,
    /// The data address of the worker where it failed (may be empty when
    /// the scheduler failed it, e.g. no worker could run it).
    pub worker: String,
    /// Why it failed.
    pub message: String,
    /// The type name of the exception the function raised (e.g.
    /// `ValueError`), when the worker's host reported one; else empty.
    pub exception: String,
    /// The traceback where it was raised, as the worker's host formatted
    /// it; empty when there is none.
    pub traceback: String,
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.failed == self.key {
            write!(f, "task '{}' ({}) failed", self.key, self.func)?;
        } else {
            write!(
                f,
                "task '{}' failed because its dependency '{}' ({}) failed",
                self.key, self.failed, self.func
            )?;
        }
        if !self.worker.is_empty() {
            write!(f, " on {}", self.worker)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// The error of every client call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientError {
    /// Connecting (to the scheduler or to a worker's data port) failed: the
    /// address was unreachable, the handshake was refused or timed out.
    ConnectionFailed(String),
    /// The connection is gone: the scheduler went away ("connection to the
    /// scheduler lost: ..."), or the client was closed. Pending futures end
    /// with this error.
    ConnectionClosed(String),
    /// A call did not finish in time (`result(timeout)`, a request to the
    /// scheduler that got no answer within the client's timeout).
    Timeout(String),
    /// A task failed on a worker.
    Task(Box<TaskError>),
    /// The future's key was cancelled.
    Cancelled(String),
    /// The other side sent something this client cannot use, or refused a
    /// request (an `error` reply; the message says why).
    Protocol(String),
    /// The caller passed something unusable (a future of another client, a
    /// bad graph, an empty function name, ...).
    BadArgument(String),
    /// A value could not be fetched from or stored on the workers (no
    /// worker holds it any more, a worker refused it, no workers exist).
    Data(String),
}

impl ClientError {
    /// The task failure, when this is one.
    pub fn task(&self) -> Option<&TaskError> {
        match self {
            ClientError::Task(t) => Some(t),
            _ => None,
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::ConnectionFailed(m) => write!(f, "connection failed: {m}"),
            ClientError::ConnectionClosed(m) => write!(f, "{m}"),
            ClientError::Timeout(m) => write!(f, "timed out: {m}"),
            ClientError::Task(t) => write!(f, "{t}"),
            ClientError::Cancelled(k) => write!(f, "key '{k}' was cancelled"),
            ClientError::Protocol(m) => write!(f, "protocol error: {m}"),
            ClientError::BadArgument(m) => write!(f, "bad argument: {m}"),
            ClientError::Data(m) => write!(f, "data error: {m}"),
        }
    }
}

impl std::error::Error for ClientError {}

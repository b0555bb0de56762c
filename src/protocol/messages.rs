//! Every message of the protocol. `docs/protocol.md` describes each one:
//! who sends it, what it means, and what answers it.
//!
//! A message is a msgpack map whose `"op"` field names it; the other fields
//! are named as here (kebab-case ops, snake_case fields). Optional fields
//! may be left out; unknown fields are ignored, so messages can grow.

use super::payload::Packed;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use std::collections::BTreeMap;

/// The `magic` field of `hello`.
pub const PROTOCOL_MAGIC: &str = "rask";
/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// `missing-data`'s `reason` when the holder's data port could not be
/// reached (no connection, a broken one).
pub const MISSING_UNREACHABLE: &str = "unreachable";
/// `missing-data`'s `reason` when the holder answered without the key (it
/// does not hold it, answered with an error, or sent a value that could
/// not be decoded).
pub const MISSING_NOT_HELD: &str = "not-held";

/// The `code` of an `error`: docs/protocol.md ("Errors") lists each in one
/// table, with when it is sent and whether the connection stays. On the
/// wire it is a string (`Message::Error`'s `code`), so a code this build
/// does not know (from a newer peer) still decodes; [`ErrorCode::parse`]
/// reads it, [`Message::error_code`] reads it off an `error`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// `hello` with another magic (closed).
    BadMagic,
    /// `hello` with another protocol version (closed).
    VersionMismatch,
    /// The first message is not a `hello`, or none came in time (closed).
    Handshake,
    /// A missing or wrong token, or a role this side does not take
    /// (closed).
    Refused,
    /// The accepting side has its maximum of connections open (closed).
    TooManyConnections,
    /// A plaintext connection at a TLS port (closed).
    TlsRequired,
    /// A stream the receiver cannot read on: a wire message over its
    /// limits (frames, bytes a frame, bytes a message: the message names
    /// the limit), or a body that is not a msgpack array (closed).
    BadStream,
    /// A message that does not decode, or an op the sender's role may not
    /// send.
    BadMessage,
    /// `update-graph` with an invalid document or graph.
    BadGraph,
    /// A request naming a key (or a worker id in `scattered`) the scheduler
    /// does not know or does not hold in memory.
    UnknownKey,
    /// `retire-workers` naming a worker the scheduler does not know.
    UnknownWorker,
    /// A coordination wait ran out of time.
    Timeout,
    /// A coordination request with an unusable argument.
    BadArgument,
    /// A coordination request naming something that does not exist.
    NotFound,
    /// A coordination request that conflicts with what exists.
    Conflict,
}

impl ErrorCode {
    /// Every code, in the order of the table in docs/protocol.md.
    pub const ALL: [ErrorCode; 15] = [
        ErrorCode::BadMagic,
        ErrorCode::VersionMismatch,
        ErrorCode::Handshake,
        ErrorCode::Refused,
        ErrorCode::TooManyConnections,
        ErrorCode::TlsRequired,
        ErrorCode::BadStream,
        ErrorCode::BadMessage,
        ErrorCode::BadGraph,
        ErrorCode::UnknownKey,
        ErrorCode::UnknownWorker,
        ErrorCode::Timeout,
        ErrorCode::BadArgument,
        ErrorCode::NotFound,
        ErrorCode::Conflict,
    ];

    /// The code as it travels.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadMagic => "bad-magic",
            ErrorCode::VersionMismatch => "version-mismatch",
            ErrorCode::Handshake => "handshake",
            ErrorCode::Refused => "refused",
            ErrorCode::TooManyConnections => "too-many-connections",
            ErrorCode::TlsRequired => "tls-required",
            ErrorCode::BadStream => "bad-stream",
            ErrorCode::BadMessage => "bad-message",
            ErrorCode::BadGraph => "bad-graph",
            ErrorCode::UnknownKey => "unknown-key",
            ErrorCode::UnknownWorker => "unknown-worker",
            ErrorCode::Timeout => "timeout",
            ErrorCode::BadArgument => "bad-argument",
            ErrorCode::NotFound => "not-found",
            ErrorCode::Conflict => "conflict",
        }
    }

    /// The code named `s`; `None` for a code this build does not know.
    pub fn parse(s: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Whether the sender closes the connection after an `error` with this
    /// code (the handshake's codes); the others answer one message.
    pub fn closes_connection(self) -> bool {
        matches!(
            self,
            ErrorCode::BadMagic
                | ErrorCode::VersionMismatch
                | ErrorCode::Handshake
                | ErrorCode::Refused
                | ErrorCode::TooManyConnections
                | ErrorCode::TlsRequired
                | ErrorCode::BadStream
        )
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AsRef<str> for ErrorCode {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

/// Who opened a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A client, connecting to the scheduler.
    Client,
    /// A worker, connecting to the scheduler.
    Worker,
    /// A worker or client connecting to a worker's data port.
    Peer,
}

/// A worker as the scheduler describes it to clients.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerInfo {
    pub id: u64,
    pub name: String,
    /// Where the worker serves its data (`tcp://host:port`).
    pub address: String,
    pub threads: u32,
    pub functions: Vec<String>,
    /// Its memory limit in bytes (0: none).
    #[serde(default)]
    pub memory_limit: u64,
    /// Bytes of data in its memory, spilled to its disk, and its process's
    /// resident memory, from its last heartbeat.
    #[serde(default)]
    pub memory: u64,
    #[serde(default)]
    pub spilled: u64,
    #[serde(default)]
    pub process: u64,
    /// Paused by its memory use: it is sent no task until it resumes.
    #[serde(default)]
    pub paused: bool,
    /// Its language or runtime, from its registration ("" when it did not
    /// say).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub runtime: String,
    /// Its process's CPU use (percent of one CPU) at its last heartbeat;
    /// absent when not measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<f64>,
}

/// Something a coordination object holds (a variable's value, a queue's
/// item, a published dataset): a value, or a future's key. Exactly one of
/// the two is set. A key held this way is kept alive by the scheduler (as
/// if a client wanted it) while it is held.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// The value, msgpack-encoded (the value model of docs/protocol.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<ByteBuf>,
    /// The key of a future.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl Item {
    /// An item holding an encoded value.
    pub fn value(bytes: Vec<u8>) -> Item {
        Item {
            value: Some(ByteBuf::from(bytes)),
            key: None,
        }
    }
    /// An item holding a future's key.
    pub fn key(key: impl Into<String>) -> Item {
        Item {
            value: None,
            key: Some(key.into()),
        }
    }
}

/// Defines [`Message`] (every message, for framing, vectors and logs) and
/// the message types of each direction, from one list of messages grouped
/// by who sends them. Each direction type is a serde enum of the same
/// shape as [`Message`] (tagged by `"op"`, kebab-case, the same fields), so
/// a message encodes to the same bytes whichever type holds it; `From`
/// widens a direction type to [`Message`] and `TryFrom<Message>` narrows a
/// received message to the direction its sender may use (`Err` gives the
/// message back: the role check is that conversion, and nothing else).
macro_rules! protocol {
    (
        handshake { $($hs:tt)* }
        any { $($any:tt)* }
        worker { $($wk:tt)* }
        to_worker { $($tw:tt)* }
        client { $($cl:tt)* }
        to_client { $($tc:tt)* }
        data_request { $($dq:tt)* }
        data_reply { $($dr:tt)* }
    ) => {
        message_enum! {
            /// One message of any direction. The serialized form is a map
            /// with `"op"` set to the kebab-case variant name.
            Message; $($hs)* $($any)* $($wk)* $($tw)* $($cl)* $($tc)* $($dq)* $($dr)*
        }
        direction! {
            /// A message a worker may send to the scheduler (after the
            /// handshake).
            WorkerMessage; $($any)* $($wk)*
        }
        direction! {
            /// A message a client may send to the scheduler (after the
            /// handshake).
            ClientMessage; $($any)* $($cl)*
        }
        direction! {
            /// A message the scheduler may send to a worker or a client
            /// (after the handshake): [`SchedulerToWorker`] and
            /// [`SchedulerToClient`] together.
            SchedulerMessage; $($any)* $($tw)* $($tc)*
        }
        direction! {
            /// A message the scheduler may send to a worker: what a
            /// worker's scheduler connection takes.
            SchedulerToWorker; $($any)* $($tw)*
        }
        direction! {
            /// A message the scheduler may send to a client: what a
            /// client's scheduler connection takes.
            SchedulerToClient; $($any)* $($tc)*
        }
        direction! {
            /// A message a worker's data port may receive (from a peer
            /// worker or a client, after the handshake).
            DataRequest; $($any)* $($dq)*
        }
        direction! {
            /// A message a worker's data port may send (its answers).
            DataReply; $($any)* $($dr)*
        }
    };
}

/// An enum of messages (see [`protocol!`]) with its `op` names.
macro_rules! message_enum {
    (
        $(#[$em:meta])*
        $name:ident;
        $(
            $(#[$vm:meta])*
            $op:literal $V:ident { $( $(#[$fm:meta])* $f:ident : $t:ty ),* $(,)? }
        )*
    ) => {
        $(#[$em])*
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "op", rename_all = "kebab-case")]
        pub enum $name {
            $(
                $(#[$vm])*
                $V { $( $(#[$fm])* $f : $t ),* },
            )*
        }

        impl $name {
            /// The `op` name of this message.
            pub fn op(&self) -> &'static str {
                match self {
                    $( $name::$V { .. } => $op, )*
                }
            }

            /// Every `op` name this type holds.
            pub const OPS: &'static [&'static str] = &[$($op),*];
        }
    };
}

/// A direction type: [`message_enum!`] plus its conversions from and to
/// [`Message`].
macro_rules! direction {
    (
        $(#[$em:meta])*
        $name:ident;
        $(
            $(#[$vm:meta])*
            $op:literal $V:ident { $( $(#[$fm:meta])* $f:ident : $t:ty ),* $(,)? }
        )*
    ) => {
        message_enum! {
            $(#[$em])*
            $name;
            $(
                $(#[$vm])*
                $op $V { $( $(#[$fm])* $f : $t ),* }
            )*
        }

        impl From<$name> for Message {
            fn from(m: $name) -> Message {
                match m {
                    $( $name::$V { $($f),* } => Message::$V { $($f),* }, )*
                }
            }
        }

        impl TryFrom<Message> for $name {
            /// The message, when this direction does not carry it.
            type Error = Message;
            fn try_from(m: Message) -> Result<$name, Message> {
                match m {
                    $( Message::$V { $($f),* } => Ok($name::$V { $($f),* }), )*
                    other => Err(other),
                }
            }
        }
    };
}

protocol! {
    handshake {
        /// First message from the side that connected.
        "hello" Hello {
            magic: String,
            protocol: u32,
            role: Role,
            name: String,
            /// The shared secret, when the cluster requires one.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            token: Option<String>,
        }
        /// The accepting side's answer to a good `hello`.
        "welcome" Welcome {
            protocol: u32,
            /// The id the scheduler gave this client or worker (0 on a peer
            /// connection).
            id: u64,
            /// The name of the accepting side.
            name: String,
            /// The scheduler's dashboard (`http://HOST:PORT/status`), when it
            /// serves one; absent from workers' data ports and older schedulers.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            dashboard: Option<String>,
        }
    }
    any {
        /// Something went wrong. If `id` is set, it answers that request;
        /// otherwise it concerns the connection (after a failed handshake the
        /// sender closes it).
        "error" Error {
            message: String,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            code: Option<String>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            id: Option<u64>,
        }
        /// The sender is about to close the connection.
        "close" Close {
            #[serde(default)]
            reason: String,
        }
    }
    worker {
        /// Sent once, right after `welcome`.
        "register-worker" RegisterWorker {
            /// Where the worker serves its data to peers and clients.
            address: String,
            threads: u32,
            /// The function names it can run, builtins included.
            functions: Vec<String>,
            /// Bytes of memory it may use for data; 0 for no limit.
            #[serde(default)]
            memory_limit: u64,
            /// The language or runtime its functions run in (`rust`, `c`,
            /// `python-3.11`, `julia-1.5`: the names shipped functions use);
            /// absent from older workers.
            #[serde(default, skip_serializing_if = "String::is_empty")]
            runtime: String,
        }
        /// Sent every heartbeat interval.
        "heartbeat" Heartbeat {
            #[serde(default)]
            executing: u32,
            /// Bytes of data held in memory (size estimates).
            #[serde(default)]
            memory: u64,
            /// Bytes of data spilled to disk (size estimates of those values).
            #[serde(default)]
            spilled: u64,
            /// The process's resident memory (RSS), bytes; 0 if not measured.
            #[serde(default)]
            process: u64,
            /// Memory use has paused the worker: it starts no task, so the
            /// scheduler sends it none.
            #[serde(default)]
            paused: bool,
            /// The worker process's CPU use since its last heartbeat, percent
            /// of one CPU (above 100 with several busy threads); absent when
            /// not measured.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            cpu: Option<f64>,
        }
        /// A task ran and its result is in the worker's memory.
        "task-finished" TaskFinished {
            key: String,
            /// Size of the result in bytes (an estimate).
            nbytes: u64,
            /// Run time in seconds.
            duration: f64,
            /// The result encoded as msgpack, when it is small (at most 1 KiB),
            /// so a client can have it without a fetch.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            value: Option<ByteBuf>,
        }
        /// A task failed.
        "task-erred" TaskErred {
            key: String,
            message: String,
            /// The name of the exception's type, when the function raised one
            /// (e.g. `ValueError`); empty or absent otherwise.
            #[serde(default, skip_serializing_if = "String::is_empty")]
            exception: String,
            /// The traceback where it was raised, as text; empty or absent when
            /// there is none.
            #[serde(default, skip_serializing_if = "String::is_empty")]
            traceback: String,
        }
        /// The worker now also holds these keys (copies it fetched).
        "add-keys" AddKeys {
            keys: Vec<String>,
            nbytes: Vec<u64>,
            /// The data address they were fetched from (absent: not a fetch,
            /// or an older worker).
            #[serde(default, skip_serializing_if = "String::is_empty")]
            from: String,
            /// How long the fetch took, seconds (its `get-data` to the answer).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            duration: Option<f64>,
        }
        /// A dependency of `key` could not be found at the worker that was
        /// said to hold it.
        "missing-data" MissingData {
            key: String,
            dependency: String,
            /// The address asked.
            worker: String,
            /// Why: [`MISSING_UNREACHABLE`] (the connection to the holder could
            /// not be made or broke) or [`MISSING_NOT_HELD`] (the holder
            /// answered without the key). Absent (older workers) or unknown:
            /// every such report counts against the holder.
            #[serde(default, skip_serializing_if = "String::is_empty")]
            reason: String,
            /// With `unreachable`: the number the reporter gives the failed
            /// connection attempt; the reports of one failed attempt count
            /// once against the holder.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            attempt: Option<u64>,
        }
        /// The worker wants to leave gracefully (it got SIGTERM, or its host
        /// asked it to retire): the scheduler moves the results only it holds
        /// to other workers, then answers `close`.
        "retire-worker" RetireWorker {
            #[serde(default)]
            reason: String,
        }
        /// The worker will not run these tasks (it is retiring and had not
        /// started them): the scheduler places them elsewhere.
        "reschedule" Reschedule {
            keys: Vec<String>,
        }
        /// Fetching these replicas (asked with `acquire-replicas`) failed at
        /// every holder named.
        "acquire-failed" AcquireFailed {
            keys: Vec<String>,
            message: String,
        }
        /// The running task `key` seceded: it waits (on tasks it submitted)
        /// without using its slot, so the scheduler no longer counts it
        /// against the worker's threads and backlog until it ends.
        "long-running" LongRunning {
            key: String,
        }
    }
    to_worker {
        /// Run a task.
        "compute-task" ComputeTask {
            key: String,
            func: String,
            /// The task's arguments: a msgpack array of args in the grammar of
            /// docs/graph-spec.md (`{"ref": key}` for dependencies).
            args: ByteBuf,
            /// Lower runs first.
            priority: u64,
            /// For each dependency, the data addresses of workers that hold it.
            /// A dependency the receiving worker holds itself may be absent.
            #[serde(default)]
            who_has: BTreeMap<String, Vec<String>>,
        }
        /// Forget these keys: delete their data, cancel them if queued.
        "free-keys" FreeKeys {
            keys: Vec<String>,
        }
        /// Fetch a copy of each key from the workers named (data addresses)
        /// and keep it; answered with `add-keys`, or `acquire-failed` for the
        /// keys no holder gave.
        "acquire-replicas" AcquireReplicas {
            who_has: BTreeMap<String, Vec<String>>,
        }
        /// The scheduler retires this worker (a client asked): start no new
        /// task, hand back the ones not started (`reschedule`), keep serving
        /// data until `close`.
        "retire" Retire {
            #[serde(default)]
            reason: String,
        }
    }
    client {
        /// Submit a graph. The scheduler merges it with what it has (a key it
        /// already knows is not computed again) and the client now wants `keys`.
        "update-graph" UpdateGraph {
            /// A graph document (docs/graph-spec.md), as msgpack bytes.
            graph: ByteBuf,
            keys: Vec<String>,
            /// Retries for each task of this graph before it errs.
            #[serde(default)]
            retries: u32,
            /// Submitted from inside a running task (by a task's client): its
            /// tasks run before anything submitted earlier, newest first.
            #[serde(default, skip_serializing_if = "std::ops::Not::not")]
            from_task: bool,
            /// Optional request id: an `error` answering this message echoes
            /// it (absent: the error carries none).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            id: Option<u64>,
        }
        /// The client no longer wants these keys.
        "release-keys" ReleaseKeys {
            keys: Vec<String>,
            /// Optional request id: an `error` answering this message echoes
            /// it (absent: the error carries none).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            id: Option<u64>,
        }
        /// Cancel these keys (and what only they need) for this client.
        "cancel-keys" CancelKeys {
            keys: Vec<String>,
            /// Optional request id: an `error` answering this message echoes
            /// it (absent: the error carries none).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            id: Option<u64>,
        }
        /// Where is the data of these keys? Answered by `who-has-reply`.
        "who-has" WhoHas {
            id: u64,
            keys: Vec<String>,
        }
        /// Which workers are there? Answered by `workers-reply`.
        "get-workers" GetWorkers {
            id: u64,
        }
        /// How much does the scheduler hold? Answered by `info-reply`.
        "get-info" GetInfo {
            id: u64,
        }
        /// The client put data on workers (with `put-data`) and wants these
        /// keys: `who_has` maps each key to worker ids, `nbytes` to its size.
        "scattered" Scattered {
            who_has: BTreeMap<String, Vec<u64>>,
            nbytes: BTreeMap<String, u64>,
            /// Optional request id: an `error` answering this message echoes
            /// it (absent: the error carries none).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            id: Option<u64>,
        }
        /// Retire these workers (each named by its data address, its name, or
        /// its id in decimal) gracefully. Answered by `retire-workers-reply`
        /// once every one of them has left.
        "retire-workers" RetireWorkers {
            id: u64,
            workers: Vec<String>,
        }
        /// Copy each key (in memory) so that `n` workers hold it, dropping
        /// copies beyond `n` (Dask's `replicate`). Answered by
        /// `replicate-reply` once done.
        "replicate" Replicate {
            id: u64,
            keys: Vec<String>,
            n: u64,
        }
        /// Move keys in memory between workers so the bytes they hold even
        /// out (Dask's `rebalance`); only `keys` when not empty. Answered by
        /// `rebalance-reply` once the moves are done.
        "rebalance" Rebalance {
            id: u64,
            #[serde(default)]
            keys: Vec<String>,
        }
        /// Sets a variable (creating it), waking its waiting `variable-get`s.
        "variable-set" VariableSet {
            id: u64,
            name: String,
            item: Item,
        }
        /// The variable's item; waits up to `timeout` seconds (forever when
        /// absent) for one to be set.
        "variable-get" VariableGet {
            id: u64,
            name: String,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            timeout: Option<f64>,
        }
        /// Deletes a variable (its item is dropped; waiters keep waiting).
        "variable-delete" VariableDelete {
            id: u64,
            name: String,
        }
        /// Creates a queue unless it exists (`maxsize` 0: unbounded).
        "queue-create" QueueCreate {
            id: u64,
            name: String,
            #[serde(default)]
            maxsize: u64,
        }
        /// Appends to a queue (creating it unbounded); on a full queue waits
        /// up to `timeout` seconds (forever when absent) for room.
        "queue-put" QueuePut {
            id: u64,
            name: String,
            item: Item,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            timeout: Option<f64>,
        }
        /// Takes the oldest item of a queue; waits up to `timeout` seconds
        /// (forever when absent) for one.
        "queue-get" QueueGet {
            id: u64,
            name: String,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            timeout: Option<f64>,
        }
        /// The number of items in a queue.
        "queue-size" QueueSize {
            id: u64,
            name: String,
        }
        /// Takes one lease of a semaphore (a lock is a semaphore of one lease),
        /// creating it with `max_leases`; waits up to `timeout` seconds
        /// (forever when absent). The lease is named by this request's `id`.
        "lease-acquire" LeaseAcquire {
            id: u64,
            name: String,
            max_leases: u32,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            timeout: Option<f64>,
        }
        /// Gives back the lease that `lease-acquire` number `lease` took.
        "lease-release" LeaseRelease {
            id: u64,
            name: String,
            lease: u64,
        }
        /// Sets an event, waking its waiters.
        "event-set" EventSet {
            id: u64,
            name: String,
        }
        /// Clears an event.
        "event-clear" EventClear {
            id: u64,
            name: String,
        }
        /// Waits up to `timeout` seconds (forever when absent; 0 to only look)
        /// for an event to be set; `flag` tells whether it is.
        "event-wait" EventWait {
            id: u64,
            name: String,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            timeout: Option<f64>,
        }
        /// Publishes a named dataset; an existing name is an error unless
        /// `override`.
        "publish-dataset" PublishDataset {
            id: u64,
            name: String,
            item: Item,
            #[serde(default, rename = "override")]
            replace: bool,
        }
        /// Removes a published dataset.
        "unpublish-dataset" UnpublishDataset {
            id: u64,
            name: String,
        }
        /// A published dataset's item.
        "get-dataset" GetDataset {
            id: u64,
            name: String,
        }
        /// The names of the published datasets (`names` of `coord-reply`).
        "list-datasets" ListDatasets {
            id: u64,
        }
        /// Keep computing these keys until they finish (in memory or erred),
        /// even if no client wants them any more.
        "fire-and-forget" FireAndForget {
            keys: Vec<String>,
            /// Optional request id: an `error` answering this message echoes
            /// it (absent: the error carries none).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            id: Option<u64>,
        }
        /// Receive `topic-message`s of topic `name` from now on. With an
        /// `id`, answered by `coord-reply` once subscribed (so that what the
        /// client publishes afterwards, from any connection, reaches it).
        "subscribe" Subscribe {
            #[serde(default, skip_serializing_if = "Option::is_none")]
            id: Option<u64>,
            name: String,
        }
        /// Stop receiving topic `name`.
        "unsubscribe" Unsubscribe {
            name: String,
            /// Optional request id: an `error` answering this message echoes
            /// it (absent: the error carries none).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            id: Option<u64>,
        }
        /// Sends `value` (msgpack-encoded) to every subscriber of topic `name`.
        "publish" Publish {
            name: String,
            value: ByteBuf,
            /// Optional request id: an `error` answering this message echoes
            /// it (absent: the error carries none).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            id: Option<u64>,
        }
    }
    to_client {
        /// The answer to a coordination request; which fields are set depends
        /// on the request (docs/protocol.md, "Coordination").
        "coord-reply" CoordReply {
            id: u64,
            /// `variable-get`, `queue-get`, `get-dataset`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            item: Option<Item>,
            /// `lease-acquire` (false: timed out), `event-wait` (whether set).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            flag: Option<bool>,
            /// `queue-size`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            size: Option<u64>,
            /// `list-datasets`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            names: Option<Vec<String>>,
        }
        /// A message published on a topic this client subscribed to.
        "topic-message" TopicMessage {
            name: String,
            value: ByteBuf,
        }
        /// A wanted key's value is in memory.
        "key-in-memory" KeyInMemory {
            key: String,
            nbytes: u64,
            /// Data addresses of workers holding it.
            workers: Vec<String>,
            /// The value encoded as msgpack, when small (see `task-finished`).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            value: Option<ByteBuf>,
        }
        /// A wanted key failed (itself, or a task it depends on).
        "key-erred" KeyErred {
            key: String,
            /// The key of the task that failed.
            failed: String,
            func: String,
            worker: String,
            message: String,
            /// The exception's type name, as in `task-erred` (may be absent).
            #[serde(default, skip_serializing_if = "String::is_empty")]
            exception: String,
            /// The remote traceback, as in `task-erred` (may be absent).
            #[serde(default, skip_serializing_if = "String::is_empty")]
            traceback: String,
        }
        /// A wanted key was cancelled.
        "key-cancelled" KeyCancelled {
            key: String,
        }
        /// Something the client should know about keys it wants that is not
        /// an error (yet): `code` says what (`no-worker`: no connected worker
        /// offers a function these keys need; `key-conflict`: a key was
        /// submitted again with another definition), `message` says it in
        /// words, `keys` are the client's keys concerned.
        "warning" Warning {
            code: String,
            message: String,
            keys: Vec<String>,
        }
        "who-has-reply" WhoHasReply {
            id: u64,
            who_has: BTreeMap<String, Vec<String>>,
        }
        "workers-reply" WorkersReply {
            id: u64,
            workers: Vec<WorkerInfo>,
        }
        /// The scheduler's counters, for `get-info`.
        "info-reply" InfoReply {
            id: u64,
            /// Tasks the scheduler holds, in any state.
            tasks: u64,
            /// Tasks by state: `released`, `waiting`, `no-worker`, `queued`,
            /// `processing`, `memory`, `erred`.
            states: BTreeMap<String, u64>,
            workers: u64,
            clients: u64,
            /// Bytes of data the workers hold in memory, have spilled to disk,
            /// and their processes' resident memory (sums over the workers, from
            /// their last heartbeats); the sum of their memory limits; and how
            /// many are paused by memory use.
            #[serde(default)]
            managed: u64,
            #[serde(default)]
            spilled: u64,
            #[serde(default)]
            process: u64,
            #[serde(default)]
            memory_limit: u64,
            #[serde(default)]
            paused: u64,
        }
        /// A `replicate` is done.
        "replicate-reply" ReplicateReply {
            id: u64,
            /// Copies made.
            copied: u64,
            /// Copies dropped (a key held by more than `n` workers).
            removed: u64,
            /// Keys left on fewer than `n` workers (no worker could take a
            /// copy, or the key was released meanwhile).
            #[serde(default)]
            short: Vec<String>,
        }
        /// A `rebalance` is done.
        "rebalance-reply" RebalanceReply {
            id: u64,
            /// Keys moved to another worker.
            moved: u64,
            /// Their bytes.
            bytes: u64,
        }
        /// The workers of a `retire-workers` have left.
        "retire-workers-reply" RetireWorkersReply {
            id: u64,
            /// Data addresses of the workers retired.
            workers: Vec<String>,
            /// Each key moved off them → the data address now holding it.
            #[serde(default)]
            moved: BTreeMap<String, String>,
            /// Keys only they held that could not be moved (recomputed from
            /// their tasks if still needed).
            #[serde(default)]
            lost: Vec<String>,
        }
    }
    data_request {
        /// Send me these keys. Answered by `data`.
        "get-data" GetData {
            id: u64,
            keys: Vec<String>,
        }
        /// Store these values (a client's scatter). Answered by `data-stored`.
        "put-data" PutData {
            id: u64,
            data: BTreeMap<String, Packed>,
        }
    }
    data_reply {
        /// The values asked for; each in a payload frame.
        "data" Data {
            id: u64,
            data: BTreeMap<String, Packed>,
            /// Keys the worker does not hold.
            #[serde(default)]
            missing: Vec<String>,
            /// Keys the worker holds but cannot send, each with the reason
            /// (its host could not serialize the value). Each is listed in
            /// `missing` too, so that a requester that does not read this
            /// field sees it as not held.
            #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
            unsendable: BTreeMap<String, String>,
        }
        "data-stored" DataStored {
            id: u64,
            nbytes: BTreeMap<String, u64>,
        }
    }
}

impl ClientMessage {
    /// Whether this is a request to a coordination object (see
    /// [`crate::scheduler::state`], "Coordination").
    pub fn is_coordination(&self) -> bool {
        use ClientMessage::*;
        matches!(
            self,
            VariableSet { .. }
                | VariableGet { .. }
                | VariableDelete { .. }
                | QueueCreate { .. }
                | QueuePut { .. }
                | QueueGet { .. }
                | QueueSize { .. }
                | LeaseAcquire { .. }
                | LeaseRelease { .. }
                | EventSet { .. }
                | EventClear { .. }
                | EventWait { .. }
                | PublishDataset { .. }
                | UnpublishDataset { .. }
                | GetDataset { .. }
                | ListDatasets { .. }
                | FireAndForget { .. }
                | Subscribe { .. }
                | Unsubscribe { .. }
                | Publish { .. }
        )
    }
}

impl Message {
    /// The `id` this message carries, if it has one: the id an `error`
    /// answering it must echo (requests, and the replies that carry
    /// theirs).
    pub fn request_id(&self) -> Option<u64> {
        use Message::*;
        match *self {
            Welcome { .. }
            | Hello { .. }
            | RegisterWorker { .. }
            | Heartbeat { .. }
            | TaskFinished { .. }
            | TaskErred { .. }
            | AddKeys { .. }
            | MissingData { .. }
            | RetireWorker { .. }
            | Reschedule { .. }
            | AcquireFailed { .. }
            | LongRunning { .. }
            | ComputeTask { .. }
            | FreeKeys { .. }
            | AcquireReplicas { .. }
            | Retire { .. }
            | TopicMessage { .. }
            | KeyInMemory { .. }
            | KeyErred { .. }
            | KeyCancelled { .. }
            | Warning { .. }
            | Close { .. } => None,
            Error { id, .. }
            | UpdateGraph { id, .. }
            | ReleaseKeys { id, .. }
            | CancelKeys { id, .. }
            | Scattered { id, .. }
            | FireAndForget { id, .. }
            | Subscribe { id, .. }
            | Unsubscribe { id, .. }
            | Publish { id, .. } => id,
            WhoHas { id, .. }
            | GetWorkers { id }
            | GetInfo { id }
            | RetireWorkers { id, .. }
            | Replicate { id, .. }
            | Rebalance { id, .. }
            | VariableSet { id, .. }
            | VariableGet { id, .. }
            | VariableDelete { id, .. }
            | QueueCreate { id, .. }
            | QueuePut { id, .. }
            | QueueGet { id, .. }
            | QueueSize { id, .. }
            | LeaseAcquire { id, .. }
            | LeaseRelease { id, .. }
            | EventSet { id, .. }
            | EventClear { id, .. }
            | EventWait { id, .. }
            | PublishDataset { id, .. }
            | UnpublishDataset { id, .. }
            | GetDataset { id, .. }
            | ListDatasets { id }
            | CoordReply { id, .. }
            | WhoHasReply { id, .. }
            | WorkersReply { id, .. }
            | InfoReply { id, .. }
            | ReplicateReply { id, .. }
            | RebalanceReply { id, .. }
            | RetireWorkersReply { id, .. }
            | GetData { id, .. }
            | Data { id, .. }
            | PutData { id, .. }
            | DataStored { id, .. } => Some(id),
        }
    }

    /// An `error` with `code` answering this message: it echoes the
    /// message's id when it has one.
    pub fn error_reply(&self, message: impl Into<String>, code: ErrorCode) -> Message {
        Message::Error {
            message: message.into(),
            code: Some(code.as_str().into()),
            id: self.request_id(),
        }
    }

    /// Whether this is a client's request to a coordination object (see
    /// [`crate::scheduler::state`], "Coordination").
    pub fn is_coordination(&self) -> bool {
        matches!(
            self,
            Message::VariableSet { .. }
                | Message::VariableGet { .. }
                | Message::VariableDelete { .. }
                | Message::QueueCreate { .. }
                | Message::QueuePut { .. }
                | Message::QueueGet { .. }
                | Message::QueueSize { .. }
                | Message::LeaseAcquire { .. }
                | Message::LeaseRelease { .. }
                | Message::EventSet { .. }
                | Message::EventClear { .. }
                | Message::EventWait { .. }
                | Message::PublishDataset { .. }
                | Message::UnpublishDataset { .. }
                | Message::GetDataset { .. }
                | Message::ListDatasets { .. }
                | Message::FireAndForget { .. }
                | Message::Subscribe { .. }
                | Message::Unsubscribe { .. }
                | Message::Publish { .. }
        )
    }

    /// A `hello` for this build's protocol.
    pub fn hello(role: Role, name: &str, token: Option<String>) -> Message {
        Message::Hello {
            magic: PROTOCOL_MAGIC.into(),
            protocol: PROTOCOL_VERSION,
            role,
            name: name.into(),
            token,
        }
    }

    /// An `error` about the connection.
    pub fn error(message: impl Into<String>, code: ErrorCode) -> Message {
        Message::Error {
            message: message.into(),
            code: Some(code.as_str().into()),
            id: None,
        }
    }

    /// The code of an `error` this build knows; `None` for another
    /// message, no code, or a code from a newer peer.
    pub fn error_code(&self) -> Option<ErrorCode> {
        match self {
            Message::Error { code: Some(c), .. } => ErrorCode::parse(c),
            _ => None,
        }
    }
}

/// Checks a `hello` against this build. Returns the role, the name and the
/// token, or the `error` message to send back before closing.
// The error is the reply itself, sent once per refused connection: its
// size does not matter.
#[allow(clippy::result_large_err)]
pub fn check_hello(m: &Message) -> Result<(Role, String, Option<String>), Message> {
    match m {
        Message::Hello {
            magic,
            protocol,
            role,
            name,
            token,
        } => {
            if magic != PROTOCOL_MAGIC {
                return Err(Message::error(
                    format!("not a rask peer (magic {magic:?})"),
                    ErrorCode::BadMagic,
                ));
            }
            if *protocol != PROTOCOL_VERSION {
                return Err(Message::error(
                    format!(
                        "protocol version mismatch: peer speaks {protocol}, this side speaks {PROTOCOL_VERSION}"
                    ),
                    ErrorCode::VersionMismatch,
                ));
            }
            Ok((*role, name.clone(), token.clone()))
        }
        other => Err(Message::error(
            format!("expected 'hello' first, got '{}'", other.op()),
            ErrorCode::Handshake,
        )),
    }
}

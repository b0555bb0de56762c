//! The wire protocol: framing, messages, the handshake, and how values
//! travel. `docs/protocol.md` is the specification; this module is its
//! reference implementation.
//!
//! - [`frame`]: a wire message is a list of frames with a small binary
//!   header; frame 0 is a msgpack array of messages (a batch), the other
//!   frames carry payloads (values) referenced by index.
//! - [`messages`]: every message, as a Rust enum tagged by `"op"`.
//! - [`payload`]: how a [`crate::value::Value`] is packed into a frame
//!   (tensors and bytes raw, without a copy; anything else as msgpack).

pub mod conn;
mod fast;
pub mod frame;
pub mod gate;
pub mod messages;
pub mod payload;
pub mod recvbuf;
pub mod shm;
pub mod tls;

pub use frame::{FrameError, Limits, WireMessage};
pub use messages::{
    ClientMessage, DataReply, DataRequest, ErrorCode, Message, SchedulerMessage, SchedulerToClient,
    SchedulerToWorker, WorkerMessage, PROTOCOL_MAGIC, PROTOCOL_VERSION,
};
pub use payload::{
    fds_used, pack_batches, pack_batches_local, pack_value, unpack_value, unpack_value_in, Packed,
    PackedBatch,
};
pub use tls::{TlsConfig, TlsError};

use std::fmt;

/// A protocol error: the peer sent something this side cannot accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for ProtocolError {}

/// One message of a batch that could not be decoded (an unknown op, a
/// missing field, a field of the wrong type): why, and the message's `id`
/// when it had one that could be read, so that the `error` answering it
/// (code `bad-message`) echoes that id and its sender can match it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadMessage {
    pub message: String,
    pub id: Option<u64>,
}

impl BadMessage {
    /// The `error` that answers it: code `bad-message`, its id if read.
    pub fn reply(&self) -> Message {
        Message::Error {
            message: self.message.clone(),
            code: Some(ErrorCode::BadMessage.as_str().into()),
            id: self.id,
        }
    }
}

/// Narrows one received message to the direction type `D` its receiver
/// takes ([`WorkerMessage`], [`SchedulerToWorker`], [`DataRequest`], ...):
/// the role check is this conversion. A message of another direction
/// becomes a [`BadMessage`] naming its op and carrying its id, answered
/// (or reported) like one that did not decode. `receiver` completes
/// "'op' is not a message ..." ("a worker's data port takes").
pub fn narrow<D>(m: Result<Message, BadMessage>, receiver: &str) -> Result<D, BadMessage>
where
    D: TryFrom<Message, Error = Message>,
{
    D::try_from(m?).map_err(|m| BadMessage {
        message: format!("'{}' is not a message {receiver}", m.op()),
        id: m.request_id(),
    })
}

impl fmt::Display for BadMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
impl std::error::Error for BadMessage {}

impl From<BadMessage> for ProtocolError {
    fn from(e: BadMessage) -> Self {
        ProtocolError(e.message)
    }
}

impl From<FrameError> for ProtocolError {
    fn from(e: FrameError) -> Self {
        ProtocolError(e.to_string())
    }
}

/// Encodes a batch of messages with their payload frames.
pub fn encode_batch(msgs: &[Message], payloads: Vec<bytes::Bytes>) -> WireMessage {
    let body = rmp_serde::to_vec_named(msgs).expect("messages always serialize");
    let mut frames = Vec::with_capacity(1 + payloads.len());
    frames.push(bytes::Bytes::from(body));
    frames.extend(payloads);
    WireMessage { frames }
}

/// Decodes frame 0 of a wire message into its messages.
///
/// `Err` means the body itself is unusable (not msgpack, not an array): the
/// connection should be closed. Inside a usable body each message decodes on
/// its own: one with an unknown `op` or malformed fields is an `Err` item
/// naming the op (and carrying the message's `id` when it is a uint), which
/// the receiver answers with [`BadMessage::reply`] while it handles the
/// others.
pub fn decode_batch(w: &WireMessage) -> Result<Vec<Result<Message, BadMessage>>, ProtocolError> {
    let body = w
        .frames
        .first()
        .ok_or_else(|| ProtocolError("a wire message needs at least one frame".into()))?;
    // Fast path: the per-task messages decoded directly (see `fast`), the
    // others with serde, the whole batch at once.
    if let Some(msgs) = fast::batch(body) {
        return Ok(msgs.into_iter().map(Ok).collect());
    }
    if let Ok(msgs) = rmp_serde::from_slice::<Vec<Message>>(body) {
        return Ok(msgs.into_iter().map(Ok).collect());
    }
    // Slow path: decode generically (strict about depth, lengths and
    // UTF-8), then each message alone, so one bad message costs only itself.
    let v = crate::value::decode_bytes(body)
        .map_err(|e| ProtocolError(format!("body is not valid msgpack: {e}")))?;
    let items = match v {
        crate::value::Value::Array(items) => items,
        other => {
            return Err(ProtocolError(format!(
                "the body must be an array of messages, got {}",
                other.kind_name()
            )))
        }
    };
    Ok(items
        .iter()
        .map(|item| {
            // The request's id, when the message has one that reads as a
            // uint, whatever else is wrong with it.
            let id = item.get("id").and_then(|v| v.as_u64());
            // Decoded from one frame, so it re-encodes within the limit.
            let bytes = crate::value::encode(item).map_err(|e| BadMessage {
                message: e.to_string(),
                id,
            })?;
            rmp_serde::from_slice::<Message>(&bytes).map_err(|e| {
                let op = item
                    .get("op")
                    .and_then(|o| o.as_str())
                    .map(|s| format!("'{s}'"))
                    .unwrap_or_else(|| "without an op".into());
                BadMessage {
                    message: format!("message {op}: {e}"),
                    id,
                }
            })
        })
        .collect())
}

//! Connections: the tokio glue every server and client shares.
//!
//! A connection is split in two. The write half belongs to a writer task
//! fed by an unbounded channel ([`Outbox`]); the writer coalesces whatever is
//! queued into one wire message (a batch), so many small messages cost one
//! `write`. A message that carries payload frames goes out in a wire message
//! of its own, since payload frame indices are absolute within a wire
//! message. The read half ([`Inbox`]) yields decoded batches.
//!
//! The handshake ([`connect_with`], [`accept`]) exchanges `hello` and
//! `welcome` (or `error`, then close) before either half is used.
//! [`connect_with`] is the one dialer (clients, workers, peers); servers
//! accept only through [`super::gate::Gate`], which owns the checks of an
//! incoming connection (limit, timeout, role, token, TLS) and closes it
//! lingering ([`Inbox::linger`]).
//!
//! Transport: plain TCP (`tcp://host:port` or `host:port`), or TLS over TCP
//! (`tls://host:port`, see [`super::tls`]). A plain connection is split
//! into tokio's owned TCP halves, as before TLS existed; a TLS stream is
//! split with [`tokio::io::split`]. [`Reader`] and [`Writer`] are enums
//! over the two, so the TCP path pays one `match` per poll. The TLS
//! handshake runs inside the same handshake timeout as `hello`.

use super::frame::{Limits, WireMessage};
use super::messages::{check_hello, ErrorCode, Message, Role, PROTOCOL_VERSION};
use super::shm::{Segment, MAX_FDS};
use super::tls::TlsConfig;
use super::{decode_batch, encode_batch, BadMessage, ProtocolError};
use bytes::Bytes;
use std::collections::VecDeque;
use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::Interest;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{unix, TcpStream, UnixStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_rustls::TlsStream;

/// The first byte of every TLS connection (a handshake record). A rask
/// wire message starts with its frame count, little-endian, which a
/// `hello` (one frame) never makes 0x16.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// The read half of a connection, plain, TLS, or a Unix socket on the same
/// host (which can carry descriptors, see [`super::shm`]).
#[derive(Debug)]
pub enum Reader {
    Tcp(OwnedReadHalf),
    Tls(tokio::io::ReadHalf<TlsStream<TcpStream>>),
    Unix(unix::OwnedReadHalf, Arc<FdQueue>),
}

/// The write half of a connection, plain, TLS or a Unix socket.
#[derive(Debug)]
pub enum Writer {
    Tcp(OwnedWriteHalf),
    Tls(tokio::io::WriteHalf<TlsStream<TcpStream>>),
    Unix(unix::OwnedWriteHalf),
}

/// Descriptors received on a Unix connection, in the order they came,
/// until the messages that refer to them take them ([`Received::take_fds`]).
/// A descriptor arrives with the first bytes of the wire message that
/// carries it, so it is here by the time that message is read whole.
#[derive(Debug, Default)]
pub struct FdQueue(Mutex<VecDeque<OwnedFd>>);

impl FdQueue {
    fn push(&self, fds: impl IntoIterator<Item = OwnedFd>) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend(fds);
    }

    /// The next `n` descriptors, or `None` (taking none) when fewer came.
    pub fn take(&self, n: usize) -> Option<Vec<OwnedFd>> {
        let mut q = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if q.len() < n {
            return None;
        }
        Some(q.drain(..n).collect())
    }

    /// Descriptors received and not taken.
    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Reads from a Unix socket with `recvmsg`, keeping the descriptors that
/// come with the bytes. More than [`MAX_FDS`] at once (which rask never
/// sends) makes the stream unusable.
fn poll_read_unix(
    r: &unix::OwnedReadHalf,
    fds: &FdQueue,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<std::io::Result<()>> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags};
    let s: &UnixStream = r.as_ref();
    loop {
        match s.poll_read_ready(cx) {
            Poll::Ready(Ok(())) => {}
            other => return other,
        }
        // SAFETY: the kernel only writes into the unfilled part; the bytes
        // it reports written are then initialised (as tokio's own reads).
        let unfilled =
            unsafe { &mut *(buf.unfilled_mut() as *mut [std::mem::MaybeUninit<u8>] as *mut [u8]) };
        let got = s.try_io(Interest::READABLE, || {
            let mut space =
                [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
            let mut anc = RecvAncillaryBuffer::new(&mut space);
            let mut iov = [std::io::IoSliceMut::new(unfilled)];
            let m = rustix::net::recvmsg(s, &mut iov, &mut anc, RecvFlags::CMSG_CLOEXEC)?;
            for msg in anc.drain() {
                if let RecvAncillaryMessage::ScmRights(it) = msg {
                    fds.push(it);
                }
            }
            if m.flags.contains(ReturnFlags::CTRUNC) {
                return Err(std::io::Error::other(
                    "the peer passed more descriptors at once than a connection takes",
                ));
            }
            Ok(m.bytes)
        });
        match got {
            Ok(n) => {
                // SAFETY: `n` bytes were written by recvmsg.
                unsafe { buf.assume_init(n) };
                buf.advance(n);
                return Poll::Ready(Ok(()));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Poll::Ready(Err(e)),
        }
    }
}

/// Sends `first` (at least one byte) with the descriptors of `segs`
/// attached; returns the bytes taken (at least one).
async fn send_fds(
    w: &unix::OwnedWriteHalf,
    first: &[u8],
    segs: &[Arc<Segment>],
) -> std::io::Result<usize> {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    let s: &UnixStream = w.as_ref();
    let fds: Vec<std::os::fd::BorrowedFd<'_>> = segs.iter().map(|s| s.fd()).collect();
    loop {
        s.writable().await?;
        let r = s.try_io(Interest::WRITABLE, || {
            let mut space =
                [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
            let mut anc = SendAncillaryBuffer::new(&mut space);
            if !anc.push(SendAncillaryMessage::ScmRights(&fds)) {
                return Err(std::io::Error::other(
                    "too many descriptors for one message",
                ));
            }
            Ok(rustix::net::sendmsg(
                s,
                &[IoSlice::new(first)],
                &mut anc,
                SendFlags::NOSIGNAL,
            )?)
        });
        match r {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

impl AsyncRead for Reader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Reader::Tcp(r) => Pin::new(r).poll_read(cx, buf),
            Reader::Tls(r) => Pin::new(r).poll_read(cx, buf),
            Reader::Unix(r, fds) => poll_read_unix(r, fds, cx, buf),
        }
    }
}

impl AsyncWrite for Writer {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Writer::Tcp(w) => Pin::new(w).poll_write(cx, buf),
            Writer::Tls(w) => Pin::new(w).poll_write(cx, buf),
            Writer::Unix(w) => Pin::new(w).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Writer::Tcp(w) => Pin::new(w).poll_write_vectored(cx, bufs),
            Writer::Tls(w) => Pin::new(w).poll_write_vectored(cx, bufs),
            Writer::Unix(w) => Pin::new(w).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Writer::Tcp(w) => w.is_write_vectored(),
            Writer::Tls(w) => w.is_write_vectored(),
            Writer::Unix(w) => w.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Writer::Tcp(w) => Pin::new(w).poll_flush(cx),
            Writer::Tls(w) => Pin::new(w).poll_flush(cx),
            Writer::Unix(w) => Pin::new(w).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Writer::Tcp(w) => Pin::new(w).poll_shutdown(cx),
            Writer::Tls(w) => Pin::new(w).poll_shutdown(cx),
            Writer::Unix(w) => Pin::new(w).poll_shutdown(cx),
        }
    }
}

/// Most messages coalesced into one batch.
const MAX_BATCH: usize = 4096;

/// One queued outgoing message.
#[derive(Debug)]
pub struct Outgoing {
    pub msg: Message,
    /// Payload frames the message refers to (frame 1 is the first).
    pub payloads: Vec<Bytes>,
    /// Segments whose descriptors go with the message (Unix connections
    /// only; the message's `fd` indices refer to them in this order).
    pub fds: Vec<Arc<Segment>>,
}

/// What travels from an [`Outbox`] to its writer: one message (maybe with
/// payloads), or many without payloads in one channel operation (one
/// wakeup of the writer, and the writer sees them all at once).
#[derive(Debug)]
pub enum Queued {
    One(Outgoing),
    Many(Vec<Message>),
    /// Write what is queued before it, shut the socket's sending side
    /// down, and end the writer (see [`Outbox::close`]).
    Close,
    /// The rest of a wire message a direct write (see
    /// [`Outbox::set_direct`]) could not finish: written as is, first.
    Raw(Bytes),
}

/// Most bytes a direct write sends (larger messages go to the writer).
const DIRECT_MAX: usize = 64 * 1024;

/// Direct writes (see [`Outbox::set_direct`]): shared by an outbox's
/// clones and its writer task.
#[derive(Debug)]
struct Direct {
    on: AtomicBool,
    state: Mutex<DirectState>,
}

#[derive(Debug)]
struct DirectState {
    /// Items sent into the channel that the writer has not written yet;
    /// a direct write is allowed only at 0 (the writer idle, nothing
    /// queued: order is kept).
    pending: usize,
    /// A duplicate of the socket's descriptor (non-blocking, as the
    /// original); `None` once the writer ends or is closing.
    sock: Option<OwnedFd>,
    /// When the last message was sent (see [`DIRECT_GAP`]).
    last_send: Option<std::time::Instant>,
    /// Direct writes that went out whole, and that left a rest (tests).
    #[cfg(test)]
    counts: (usize, usize),
}

/// A message sent sooner than this after the previous one goes to the
/// writer (a burst: the writer coalesces it with what follows).
const DIRECT_GAP: Duration = Duration::from_micros(50);

impl Direct {
    fn lock(&self) -> MutexGuard<'_, DirectState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The sending side of a connection; cheap to clone. Sending never blocks:
/// messages queue until the writer task writes them (or, with
/// [`Outbox::set_direct`], are written by the calling thread when the
/// writer is idle and the socket takes them at once).
#[derive(Clone, Debug)]
pub struct Outbox {
    tx: mpsc::UnboundedSender<Queued>,
    direct: Option<Arc<Direct>>,
}

impl Outbox {
    /// Queues a message. Returns `false` if the connection is gone.
    pub fn send(&self, msg: Message) -> bool {
        self.send_one(Outgoing {
            msg,
            payloads: Vec::new(),
            fds: Vec::new(),
        })
    }

    /// Lets threads outside the async runtime write their messages to the
    /// socket themselves when the writer task is idle and nothing is
    /// queued (one wake of the writer saved per message; the write is
    /// non-blocking: what the socket does not take at once goes to the
    /// writer, in order). Plain TCP only, on outboxes of
    /// [`spawn_writer_direct`] (a connecting side's): on others it does
    /// nothing. Applies to every clone.
    pub fn set_direct(&self, on: bool) {
        if let Some(d) = &self.direct {
            d.on.store(on, Ordering::Relaxed);
        }
    }

    /// Sends into the channel (counted while direct writes are possible).
    fn enqueue(&self, q: Queued) -> bool {
        match &self.direct {
            None => self.tx.send(q).is_ok(),
            Some(d) => {
                let mut st = d.lock();
                let ok = self.tx.send(q).is_ok();
                if ok {
                    st.pending += 1;
                }
                ok
            }
        }
    }

    /// The outbox's direct-write state when this thread may write itself:
    /// direct writes on, and not a thread of the runtime (those keep the
    /// writer: it coalesces what they queue).
    fn direct_here(&self) -> Option<&Direct> {
        match &self.direct {
            Some(d) if d.on.load(Ordering::Relaxed) && !crate::runtime::on_io_thread() => Some(d),
            _ => None,
        }
    }

    /// Writes the wire message `wire()` makes to the socket on this thread
    /// when the writer is idle, nothing is queued and the last send was not
    /// a moment ago (see [`DIRECT_GAP`]). `Some(ok)`: it went (whole, or
    /// its rest queued for the writer, first); `None`: queue it as usual
    /// (`st` stays locked for that).
    fn direct_write(
        &self,
        st: &mut DirectState,
        wire: impl FnOnce() -> WireMessage,
    ) -> Option<bool> {
        // A message close behind the previous one is part of a burst:
        // the writer coalesces those into one write.
        let now = std::time::Instant::now();
        let quiet = st
            .last_send
            .map_or(true, |t| now.duration_since(t) >= DIRECT_GAP);
        st.last_send = Some(now);
        if !quiet || st.pending > 0 {
            return None;
        }
        let fd = st.sock.as_ref()?.as_raw_fd();
        let wire = wire();
        if wire.wire_len() > DIRECT_MAX {
            return None;
        }
        let bytes = wire.to_vec();
        let mut written = 0;
        while written < bytes.len() {
            let left = &bytes[written..];
            // SAFETY: `fd` is an open descriptor owned by `st` (locked by
            // the caller); `left` is valid for its length. MSG_NOSIGNAL: a
            // closed peer is EPIPE, never SIGPIPE (this is the host's
            // thread).
            let n = unsafe {
                libc::send(
                    fd,
                    left.as_ptr().cast(),
                    left.len(),
                    libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
                )
            };
            if n > 0 {
                written += n as usize;
            } else if n < 0
                && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
            {
                continue;
            } else {
                break;
            }
        }
        #[cfg(test)]
        if written == bytes.len() {
            st.counts.0 += 1;
        } else if written > 0 {
            st.counts.1 += 1;
        }
        if written == bytes.len() {
            return Some(true);
        }
        if written > 0 {
            // The rest goes first, through the writer.
            let rest = Bytes::from(bytes).slice(written..);
            let ok = self.tx.send(Queued::Raw(rest)).is_ok();
            if ok {
                st.pending += 1;
            }
            return Some(ok);
        }
        // Nothing taken (full, or failed: the writer sees the error).
        None
    }

    fn send_one(&self, o: Outgoing) -> bool {
        let d = match self.direct_here() {
            Some(d) if o.fds.is_empty() => d,
            _ => return self.enqueue(Queued::One(o)),
        };
        let mut st = d.lock();
        let wire = || {
            let mut batch = Batch::new();
            batch.push(&o.msg);
            let mut frames = Vec::with_capacity(1 + o.payloads.len());
            frames.push(batch.take());
            frames.extend(o.payloads.iter().cloned());
            WireMessage { frames }
        };
        if let Some(ok) = self.direct_write(&mut st, wire) {
            return ok;
        }
        let ok = self.tx.send(Queued::One(o)).is_ok();
        if ok {
            st.pending += 1;
        }
        ok
    }

    /// Queues messages (without payloads) in one channel operation: the
    /// writer is woken once and writes them in one batch. Cheaper than one
    /// [`send`](Self::send) per message when a caller has many at hand.
    /// With direct writes (see [`Self::set_direct`]) the calling thread
    /// writes them itself, in one wire message, when the writer is idle.
    pub fn send_many(&self, msgs: Vec<Message>) -> bool {
        if msgs.is_empty() {
            return !self.tx.is_closed();
        }
        let Some(d) = self.direct_here() else {
            return self.enqueue(Queued::Many(msgs));
        };
        let mut st = d.lock();
        let wire = || {
            let mut batch = Batch::new();
            for m in &msgs {
                batch.push(m);
            }
            WireMessage {
                frames: vec![batch.take()],
            }
        };
        if let Some(ok) = self.direct_write(&mut st, wire) {
            return ok;
        }
        let ok = self.tx.send(Queued::Many(msgs)).is_ok();
        if ok {
            st.pending += 1;
        }
        ok
    }

    /// Queues a message with payload frames.
    pub fn send_with_payloads(&self, msg: Message, payloads: Vec<Bytes>) -> bool {
        self.send_one(Outgoing {
            msg,
            payloads,
            fds: Vec::new(),
        })
    }

    /// Queues a message with payload frames and the descriptors of `fds`
    /// (at most [`MAX_FDS`]; only on a Unix connection: elsewhere the
    /// writer ends the connection, as for a failed write).
    pub fn send_with_fds(
        &self,
        msg: Message,
        payloads: Vec<Bytes>,
        fds: Vec<Arc<Segment>>,
    ) -> bool {
        self.send_one(Outgoing { msg, payloads, fds })
    }

    /// Whether the writer task has stopped.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Asks the writer to write everything queued before this call, shut
    /// the connection's sending side down (the peer reads the end of the
    /// stream after the last message) and end. Messages queued after it
    /// (from any clone) are dropped. Returns at once: [`Self::flushed`]
    /// waits for the writer to be done.
    pub fn close(&self) {
        let _ = self.enqueue(Queued::Close);
    }

    /// Resolves when the writer task has ended: after [`Self::close`], once
    /// everything queued before it is written and the socket shut down (or
    /// the connection failed). A process about to exit waits on this, with
    /// a bound (a peer that reads nothing can hold a write forever), so its
    /// last messages are not lost with it.
    pub async fn flushed(&self) {
        self.tx.closed().await
    }

    /// [`Self::close`], then [`Self::flushed`] for at most `timeout`;
    /// `false` if the writer was not done in time.
    pub async fn close_and_flush(&self, timeout: Duration) -> bool {
        self.close();
        tokio::time::timeout(timeout, self.flushed()).await.is_ok()
    }

    /// An outbox whose messages go to `rx` instead of a socket (tests,
    /// in-process peers).
    pub fn channel() -> (Outbox, mpsc::UnboundedReceiver<Queued>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Outbox { tx, direct: None }, rx)
    }
}

/// The receiving side of a connection.
#[derive(Debug)]
pub struct Inbox {
    reader: BufReader<Reader>,
    /// Descriptors received (Unix connections).
    fds: Option<Arc<FdQueue>>,
    limits: Limits,
    /// The peer ended its stream (`recv` returned `Ok(None)`).
    ended: bool,
}

/// One received wire message: its messages (each decoded on its own) and
/// its frames, for payloads.
pub struct Received {
    pub messages: Vec<Result<Message, BadMessage>>,
    pub frames: Vec<Bytes>,
    /// The connection's received descriptors (Unix connections).
    pub fds: Option<Arc<FdQueue>>,
}

impl Received {
    /// The next `n` descriptors received on the connection (those of the
    /// message being read: see [`FdQueue`]); `None` when fewer came (or
    /// the connection carries none), which means the peer broke the
    /// protocol.
    pub fn take_fds(&self, n: usize) -> Option<Vec<OwnedFd>> {
        if n == 0 {
            return Some(Vec::new());
        }
        self.fds.as_ref()?.take(n)
    }
}

impl Inbox {
    /// The next wire message; `Ok(None)` when the peer closed cleanly.
    /// `Err` means the stream is unusable: close the connection.
    pub async fn recv(&mut self) -> Result<Option<Received>, ProtocolError> {
        match WireMessage::read_from(&mut self.reader, &self.limits).await? {
            None => {
                self.ended = true;
                Ok(None)
            }
            Some(w) => {
                let messages = decode_batch(&w)?;
                Ok(Some(Received {
                    messages,
                    frames: w.frames,
                    fds: self.fds.clone(),
                }))
            }
        }
    }

    /// The next single message (for request/reply exchanges such as the
    /// handshake). Fails if a wire message holds anything but one message.
    pub async fn recv_one(&mut self) -> Result<(Message, Vec<Bytes>), ProtocolError> {
        let r = self
            .recv()
            .await?
            .ok_or_else(|| ProtocolError("the peer closed the connection".into()))?;
        let mut msgs = r.messages.into_iter();
        match (msgs.next(), msgs.next()) {
            (Some(m), None) => Ok((m?, r.frames)),
            _ => Err(ProtocolError("expected exactly one message".into())),
        }
    }
}

impl Inbox {
    /// Closes the reading side lingering: reads and discards whatever the
    /// peer still sends until it ends its stream (or an error, or
    /// `within`), then drops the read half. A socket closed with unread
    /// bytes is reset by the kernel instead of ended, and a reset can cost
    /// the peer what was written to it last (its `close`); reading to the
    /// peer's end first avoids that. Immediate when the peer's end was
    /// already read.
    pub async fn linger(mut self, within: Duration) {
        if self.ended {
            return;
        }
        let _ = tokio::time::timeout(within, drain(&mut self.reader, usize::MAX)).await;
    }
}

/// Reads and discards up to `most` bytes, until the end of the stream or
/// an error.
async fn drain(r: &mut (impl AsyncRead + Unpin), mut most: usize) {
    let mut sink = vec![0u8; 16 * 1024];
    while most > 0 {
        match tokio::io::AsyncReadExt::read(r, &mut sink).await {
            Ok(0) | Err(_) => break,
            Ok(n) => most -= n.min(most),
        }
    }
}

/// Parses `tcp://host:port` (or `host:port`) into `host:port`.
pub fn parse_address(addr: &str) -> Result<String, ProtocolError> {
    parse_address_scheme(addr).map(|(hostport, _)| hostport)
}

/// Parses `tcp://host:port`, `host:port` or `tls://host:port` into
/// `host:port` and whether it asks for TLS.
pub fn parse_address_scheme(addr: &str) -> Result<(String, bool), ProtocolError> {
    let (rest, tls) = match addr.strip_prefix("tls://") {
        Some(rest) => (rest, true),
        None => (addr.strip_prefix("tcp://").unwrap_or(addr), false),
    };
    if rest.is_empty() || !rest.contains(':') || rest.contains("://") {
        return Err(ProtocolError(format!(
            "'{addr}' is not an address of the form tcp://host:port or tls://host:port"
        )));
    }
    Ok((rest.to_string(), tls))
}

/// The address a server on `local` announces: `tls://` when it serves TLS.
pub fn address_of(host_port: impl std::fmt::Display, tls: bool) -> String {
    if tls {
        format!("tls://{host_port}")
    } else {
        format!("tcp://{host_port}")
    }
}

/// Most bytes of messages coalesced into one body frame: a batch is
/// written once it reaches this size, so a body stays far below the 4 GiB
/// a frame can hold (and a receiver's limits) however much is queued. A
/// single message larger than this goes alone.
pub const MAX_BATCH_BODY: usize = 8 << 20;

/// Starts the writer task for `w`; returns its outbox.
pub fn spawn_writer(w: Writer) -> Outbox {
    spawn_writer_capped(w, MAX_BATCH_BODY, false)
}

/// [`spawn_writer`] whose outbox can write directly
/// ([`Outbox::set_direct`]): it keeps a duplicate of the socket's
/// descriptor, so only connecting sides (clients, workers: one or a few
/// connections each) use it, not a server's many accepted connections.
pub fn spawn_writer_direct(w: Writer) -> Outbox {
    spawn_writer_capped(w, MAX_BATCH_BODY, true)
}

/// Messages being coalesced: encoded one by one into one buffer that
/// becomes the body frame, behind room for the array header (the count is
/// known only at the end). The same bytes as encoding the batch at once.
struct Batch {
    body: Vec<u8>,
    count: u32,
}

/// Room for the longest msgpack array header (array 32: 5 bytes).
const HEADER_ROOM: usize = 5;

impl Batch {
    fn new() -> Batch {
        let mut body = Vec::with_capacity(4096);
        body.resize(HEADER_ROOM, 0);
        Batch { body, count: 0 }
    }

    fn push(&mut self, m: &Message) {
        rmp_serde::encode::write_named(&mut self.body, m).expect("messages always serialize");
        self.count += 1;
    }

    fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn bytes(&self) -> usize {
        self.body.len() - HEADER_ROOM
    }

    /// The body frame (no copy: the header goes into the room in front).
    fn take(&mut self) -> Bytes {
        let mut h = Vec::with_capacity(HEADER_ROOM);
        rmp::encode::write_array_len(&mut h, self.count).expect("writing to a Vec");
        let start = HEADER_ROOM - h.len();
        self.body[start..HEADER_ROOM].copy_from_slice(&h);
        let body = std::mem::replace(self, Batch::new()).body;
        Bytes::from(body).slice(start..)
    }
}

/// [`spawn_writer`] with the byte cap of a coalesced body (tests), and
/// whether the outbox can write directly (see [`spawn_writer_direct`]).
pub fn spawn_writer_capped(mut w: Writer, max_body: usize, direct: bool) -> Outbox {
    let (mut outbox, mut rx) = Outbox::channel();
    // A duplicate descriptor for direct writes (plain TCP only).
    let sock = match &w {
        Writer::Tcp(t) if direct => {
            let s: &TcpStream = t.as_ref();
            s.as_fd().try_clone_to_owned().ok()
        }
        _ => None,
    };
    let direct = sock.map(|sock| {
        Arc::new(Direct {
            on: AtomicBool::new(false),
            state: Mutex::new(DirectState {
                pending: 0,
                sock: Some(sock),
                last_send: None,
                #[cfg(test)]
                counts: (0, 0),
            }),
        })
    });
    outbox.direct = direct.clone();
    tokio::spawn(async move {
        // However the writer ends, no direct write follows it.
        let _end = EndDirect(direct.clone());
        let mut batch = Batch::new();
        let mut closing = false;
        while let Some(first) = rx.recv().await {
            let mut next = Some(first);
            let mut taken = 1;
            // Coalesce what is queued right now (up to MAX_BATCH messages
            // or `max_body` bytes); flush on a payload message.
            loop {
                let o = match next.take() {
                    None => break,
                    Some(Queued::Close) => {
                        closing = true;
                        break;
                    }
                    Some(Queued::Raw(rest)) => {
                        if !batch.is_empty()
                            && write(&mut w, batch.take(), Vec::new()).await.is_err()
                        {
                            return;
                        }
                        if w.write_all(&rest).await.is_err() || flush(&mut w).await.is_err() {
                            return;
                        }
                        next = rx.try_recv().ok();
                        taken += next.is_some() as usize;
                        continue;
                    }
                    Some(Queued::Many(msgs)) => {
                        for m in &msgs {
                            batch.push(m);
                            if batch.bytes() >= max_body
                                && write(&mut w, batch.take(), Vec::new()).await.is_err()
                            {
                                return;
                            }
                        }
                        if batch.count as usize >= MAX_BATCH {
                            break;
                        }
                        next = rx.try_recv().ok();
                        taken += next.is_some() as usize;
                        continue;
                    }
                    Some(Queued::One(o)) => o,
                };
                if !o.payloads.is_empty() || !o.fds.is_empty() {
                    if !batch.is_empty() && write(&mut w, batch.take(), Vec::new()).await.is_err() {
                        return;
                    }
                    batch.push(&o.msg);
                    if write_fds(&mut w, batch.take(), o.payloads, &o.fds)
                        .await
                        .is_err()
                    {
                        return;
                    }
                } else {
                    batch.push(&o.msg);
                    if batch.bytes() >= max_body
                        && write(&mut w, batch.take(), Vec::new()).await.is_err()
                    {
                        return;
                    }
                }
                if batch.count as usize >= MAX_BATCH {
                    break;
                }
                next = rx.try_recv().ok();
                taken += next.is_some() as usize;
            }
            if !batch.is_empty() && write(&mut w, batch.take(), Vec::new()).await.is_err() {
                return;
            }
            if let Some(d) = &direct {
                let mut st = d.lock();
                st.pending -= taken;
                if closing {
                    st.sock = None;
                }
            }
            if closing {
                break;
            }
        }
        // Every outbox dropped, or `close`: end the stream after the last
        // message. `rx` is dropped when this task ends, which is what
        // `Outbox::flushed` waits for.
        let _ = w.shutdown().await;
    });
    outbox
}

/// Ends direct writes when the writer task ends.
struct EndDirect(Option<Arc<Direct>>);

impl Drop for EndDirect {
    fn drop(&mut self) {
        if let Some(d) = &self.0 {
            d.lock().sock = None;
        }
    }
}

async fn write(w: &mut Writer, body: Bytes, payloads: Vec<Bytes>) -> std::io::Result<()> {
    let mut frames = Vec::with_capacity(1 + payloads.len());
    frames.push(body);
    frames.extend(payloads);
    WireMessage { frames }.write_to(w).await?;
    flush(w).await
}

/// [`write`] with descriptors (a Unix connection's): they go with the
/// first byte of the wire message.
async fn write_fds(
    w: &mut Writer,
    body: Bytes,
    payloads: Vec<Bytes>,
    fds: &[Arc<Segment>],
) -> std::io::Result<()> {
    if fds.is_empty() {
        return write(w, body, payloads).await;
    }
    let Writer::Unix(u) = w else {
        return Err(std::io::Error::other(
            "descriptors can only be passed on a Unix connection",
        ));
    };
    let mut frames = Vec::with_capacity(1 + payloads.len());
    frames.push(body);
    frames.extend(payloads);
    let wire = WireMessage { frames };
    let head = (wire.frames.len() as u32).to_le_bytes();
    let sent = send_fds(u, &head[..1], fds).await?;
    wire.write_to_from(w, sent).await
}

/// TLS buffers what it encrypts until flushed; TCP writes go straight out.
async fn flush(w: &mut Writer) -> std::io::Result<()> {
    match w {
        Writer::Tcp(_) | Writer::Unix(_) => Ok(()),
        Writer::Tls(w) => w.flush().await,
    }
}

/// Writes one message directly (before a writer task exists).
async fn write_one(w: &mut Writer, m: Message) -> std::io::Result<()> {
    encode_batch(&[m], Vec::new()).write_to(w).await?;
    flush(w).await
}

/// A connected stream before it is split.
enum Stream {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    Unix(UnixStream),
}

fn split(stream: Stream, limits: Limits) -> (Inbox, Writer) {
    let mut fds = None;
    let (r, w) = match stream {
        Stream::Unix(s) => {
            let q = Arc::new(FdQueue::default());
            fds = Some(q.clone());
            let (r, w) = s.into_split();
            (Reader::Unix(r, q), Writer::Unix(w))
        }
        Stream::Tcp(s) => {
            let _ = s.set_nodelay(true);
            let (r, w) = s.into_split();
            (Reader::Tcp(r), Writer::Tcp(w))
        }
        Stream::Tls(s) => {
            let _ = s.get_ref().0.set_nodelay(true);
            let (r, w) = tokio::io::split(*s);
            (Reader::Tls(r), Writer::Tls(w))
        }
    };
    (
        Inbox {
            reader: BufReader::with_capacity(64 * 1024, r),
            fds,
            limits,
            ended: false,
        },
        w,
    )
}

/// The name a TLS client sends (SNI) and checks the certificate against
/// (a mismatch is accepted, see [`super::tls`]).
fn server_name(hostport: &str) -> rustls::pki_types::ServerName<'static> {
    let host = match hostport.rfind(':') {
        Some(i) => &hostport[..i],
        None => hostport,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    rustls::pki_types::ServerName::try_from(host.to_string())
        .unwrap_or_else(|_| rustls::pki_types::ServerName::try_from("rask").unwrap())
}

/// What a successful [`connect`] learned from the other side.
#[derive(Debug, Clone)]
pub struct Welcome {
    pub id: u64,
    pub name: String,
    /// The scheduler's dashboard link, when it serves one.
    pub dashboard: Option<String>,
}

/// Connects to `addr`, says hello as `role`, and waits for `welcome`.
/// Plain TCP only: a `tls://` address fails (see [`connect_with`]).
pub async fn connect(
    addr: &str,
    role: Role,
    name: &str,
    token: Option<String>,
    limits: Limits,
    timeout: Duration,
) -> Result<(Inbox, Outbox, Welcome), ProtocolError> {
    connect_with(addr, None, role, name, token, limits, timeout).await
}

/// [`connect`] with a TLS configuration for `tls://` addresses. The
/// timeout covers the TCP connect, the TLS handshake and `hello`.
pub async fn connect_with(
    addr: &str,
    tls: Option<&TlsConfig>,
    role: Role,
    name: &str,
    token: Option<String>,
    limits: Limits,
    timeout: Duration,
) -> Result<(Inbox, Outbox, Welcome), ProtocolError> {
    let (hostport, use_tls) = parse_address_scheme(addr)?;
    let tls = match (use_tls, tls) {
        (false, _) => None,
        (true, Some(t)) => Some(t.client().clone()),
        (true, None) => {
            return Err(ProtocolError(format!(
                "{addr} is a TLS address, but no TLS configuration (CA file, certificate, \
                 key) was given"
            )))
        }
    };
    let fut = async {
        let tcp = TcpStream::connect(&hostport)
            .await
            .map_err(|e| ProtocolError(format!("cannot connect to {addr}: {e}")))?;
        let stream = match &tls {
            None => Stream::Tcp(tcp),
            Some(client) => {
                let s = tokio_rustls::TlsConnector::from(client.clone())
                    .connect(server_name(&hostport), tcp)
                    .await
                    .map_err(|e| {
                        let hint = match e.get_ref().and_then(|i| i.downcast_ref()) {
                            Some(rustls::Error::InvalidCertificate(c)) => match c {
                                rustls::CertificateError::UnknownIssuer
                                | rustls::CertificateError::BadSignature => {
                                    " (the server's certificate is not signed by this side's CA)"
                                }
                                rustls::CertificateError::Expired
                                | rustls::CertificateError::ExpiredContext { .. } => {
                                    " (the server's certificate has expired)"
                                }
                                rustls::CertificateError::NotValidYet
                                | rustls::CertificateError::NotValidYetContext { .. } => {
                                    " (the server's certificate is not valid yet: check its clock)"
                                }
                                _ => " (the server's certificate was refused)",
                            },
                            Some(rustls::Error::InvalidMessage(_)) => {
                                " (is it a plaintext port? use tcp:// for those)"
                            }
                            _ => "",
                        };
                        ProtocolError(format!("TLS handshake with {addr} failed: {e}{hint}"))
                    })?;
                Stream::Tls(Box::new(TlsStream::Client(s)))
            }
        };
        handshake(stream, addr, tls.is_some(), role, name, token, limits).await
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| ProtocolError(format!("connecting to {addr} timed out")))?
}

/// Connects to the worker whose data address is `addr` through its Unix
/// socket on this host ([`super::shm::socket_name`]), when there is one:
/// `Ok(None)` when nothing listens there (another host, or shared memory
/// off there), and the caller uses [`connect_with`]. The handshake is the
/// same as over TCP (`hello` with the token, `welcome`).
pub async fn connect_local(
    addr: &str,
    role: Role,
    name: &str,
    token: Option<String>,
    limits: Limits,
    timeout: Duration,
) -> Result<Option<(Inbox, Outbox, Welcome)>, ProtocolError> {
    let path = super::shm::socket_name(addr);
    let fut = async {
        let stream = match UnixStream::connect(&path).await {
            Ok(s) => s,
            Err(_) => return Ok(None),
        };
        handshake(Stream::Unix(stream), addr, false, role, name, token, limits)
            .await
            .map(Some)
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| ProtocolError(format!("connecting to {addr} (on this host) timed out")))?
}

/// `hello` → `welcome` on a connected stream (the connecting side).
async fn handshake(
    stream: Stream,
    addr: &str,
    tls: bool,
    role: Role,
    name: &str,
    token: Option<String>,
    limits: Limits,
) -> Result<(Inbox, Outbox, Welcome), ProtocolError> {
    {
        let (mut inbox, mut w) = split(stream, limits);
        write_one(&mut w, Message::hello(role, name, token))
            .await
            .map_err(|e| ProtocolError(format!("cannot send hello to {addr}: {e}")))?;
        // With TLS 1.3 the server checks the client's certificate after
        // the client's side of the handshake is done: a rejection arrives
        // as an alert in place of `welcome`.
        let answer = inbox.recv_one().await.map_err(|e| match tls {
            true => ProtocolError(format!(
                "{addr} ended the TLS connection: {e} (is this side's certificate \
                 signed by the CA the server trusts?)"
            )),
            false => e,
        })?;
        match answer {
            (
                Message::Welcome {
                    protocol,
                    id,
                    name,
                    dashboard,
                },
                _,
            ) => {
                if protocol != PROTOCOL_VERSION {
                    return Err(ProtocolError(format!(
                        "{addr} speaks protocol {protocol}, this side {PROTOCOL_VERSION}"
                    )));
                }
                Ok((
                    inbox,
                    spawn_writer_direct(w),
                    Welcome {
                        id,
                        name,
                        dashboard,
                    },
                ))
            }
            (Message::Error { message, .. }, _) => Err(ProtocolError(format!(
                "{addr} refused the connection: {message}"
            ))),
            (other, _) => Err(ProtocolError(format!(
                "{addr} answered hello with '{}'",
                other.op()
            ))),
        }
    }
}

/// Refuses a connection before its handshake: sends an `error` with
/// `code` (no `id`: it concerns the connection), closes the sending side,
/// then reads and discards what the peer sends for up to a second (at most
/// 1 MiB), so the peer reads the `error` instead of a reset. Used for a
/// connection over the server's limit of open connections (code
/// `too-many-connections`). On a port that serves TLS (when `tls` is
/// given) the TLS handshake is made first, so the peer reads the `error`.
pub(super) async fn refuse_with(
    stream: TcpStream,
    tls: Option<&TlsConfig>,
    message: &str,
    code: ErrorCode,
) {
    let server = tls.and_then(|t| t.server().ok()).cloned();
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let stream = match server {
            None => Stream::Tcp(stream),
            Some(server) => match tls_accept(stream, server).await {
                Ok(s) => s,
                Err(_) => return,
            },
        };
        refuse_stream(stream, message, code).await
    })
    .await;
}

/// [`refuse_with`] for a connection on a Unix socket.
pub(super) async fn refuse_unix(stream: UnixStream, message: &str, code: ErrorCode) {
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        refuse_stream(Stream::Unix(stream), message, code),
    )
    .await;
}

/// The common part of a refusal, plain or TLS (see [`refuse_with`]).
async fn refuse_stream(stream: Stream, message: &str, code: ErrorCode) {
    let (mut inbox, mut w) = split(stream, Limits::default());
    let _ = write_one(&mut w, Message::error(message, code)).await;
    let _ = w.shutdown().await;
    drain(&mut inbox.reader, 1 << 20).await;
}

/// Counts a server's open connections against its limit. [`Self::try_open`]
/// takes a slot that the returned guard gives back when dropped.
#[derive(Debug)]
pub struct ConnectionLimit {
    max: usize,
    open: std::sync::atomic::AtomicUsize,
    /// Woken when the last open connection closes.
    none_open: tokio::sync::Notify,
}

/// One open connection of a [`ConnectionLimit`]; dropping it frees the slot.
#[derive(Debug)]
pub struct ConnectionSlot(std::sync::Arc<ConnectionLimit>);

impl ConnectionLimit {
    /// At most `max` connections at once; 0 means no limit.
    pub fn new(max: usize) -> std::sync::Arc<ConnectionLimit> {
        std::sync::Arc::new(ConnectionLimit {
            max: if max == 0 { usize::MAX } else { max },
            open: std::sync::atomic::AtomicUsize::new(0),
            none_open: tokio::sync::Notify::new(),
        })
    }

    /// A slot, or `None` when `max` connections are open.
    pub fn try_open(self: &std::sync::Arc<Self>) -> Option<ConnectionSlot> {
        use std::sync::atomic::Ordering;
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| ConnectionSlot(self.clone()))
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Resolves once no connection is open.
    pub async fn all_closed(&self) {
        loop {
            let woken = self.none_open.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if self.open() == 0 {
                return;
            }
            woken.await;
        }
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let was = self
            .0
            .open
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        if was == 1 {
            self.0.none_open.notify_waiters();
        }
    }
}

/// What the connecting side said in its `hello`.
#[derive(Debug, Clone)]
pub struct Hello {
    pub role: Role,
    pub name: String,
    pub token: Option<String>,
}

/// Reads the `hello` of an accepted connection within `timeout`, lets
/// `decide` accept it (returning the id to put in `welcome`) or refuse it
/// (returning the error message), and answers. On refusal the `error` is
/// sent and the connection closed; the result is then `Err`. Plain TCP,
/// any check `decide` likes: for tests and fakes. rask's servers accept
/// through [`super::gate::Gate`] (one role and token check for all).
pub async fn accept(
    stream: TcpStream,
    limits: Limits,
    timeout: Duration,
    my_name: &str,
    decide: impl FnOnce(&Hello) -> Result<u64, String>,
) -> Result<(Inbox, Outbox, Hello), ProtocolError> {
    accept_with(stream, None, limits, timeout, my_name, None, decide).await
}

/// [`accept`] on a server with TLS (when `tls` is given): the connection
/// must start a TLS handshake, and present a certificate the CA signed,
/// within `timeout` (which then also covers `hello`). A connection that
/// starts with anything else (a plaintext rask client) is sent a plaintext
/// `error` with code `tls-required` and closed. `dashboard` goes into
/// `welcome` (a scheduler's dashboard link).
#[allow(clippy::too_many_arguments)]
pub(super) async fn accept_with(
    stream: TcpStream,
    tls: Option<&TlsConfig>,
    limits: Limits,
    timeout: Duration,
    my_name: &str,
    dashboard: Option<&str>,
    decide: impl FnOnce(&Hello) -> Result<u64, String>,
) -> Result<(Inbox, Outbox, Hello), ProtocolError> {
    let deadline = Instant::now() + timeout;
    let stream = match tls {
        None => Stream::Tcp(stream),
        Some(tls) => {
            let server = tls.server().map_err(|e| ProtocolError(e.0))?.clone();
            match tokio::time::timeout_at(deadline, tls_accept(stream, server)).await {
                Ok(r) => r?,
                Err(_) => {
                    return Err(ProtocolError(
                        "no TLS handshake within the handshake timeout".into(),
                    ))
                }
            }
        }
    };
    accept_stream(stream, limits, deadline, my_name, dashboard, decide).await
}

/// [`accept_with`] for a connection on a worker's Unix socket (same host):
/// the same handshake and checks, no TLS (nothing travels off the host).
pub(super) async fn accept_unix(
    stream: UnixStream,
    limits: Limits,
    timeout: Duration,
    my_name: &str,
    decide: impl FnOnce(&Hello) -> Result<u64, String>,
) -> Result<(Inbox, Outbox, Hello), ProtocolError> {
    let deadline = Instant::now() + timeout;
    accept_stream(
        Stream::Unix(stream),
        limits,
        deadline,
        my_name,
        None,
        decide,
    )
    .await
}

/// The handshake of an accepted stream (after TLS, when there is TLS).
async fn accept_stream(
    stream: Stream,
    limits: Limits,
    deadline: Instant,
    my_name: &str,
    dashboard: Option<&str>,
    decide: impl FnOnce(&Hello) -> Result<u64, String>,
) -> Result<(Inbox, Outbox, Hello), ProtocolError> {
    let (mut inbox, mut w) = split(stream, limits);
    let refuse = |mut w: Writer, m: Message| async move {
        let _ = write_one(&mut w, m).await;
        let _ = w.shutdown().await;
    };
    let Ok(first) = tokio::time::timeout_at(deadline, inbox.recv_one()).await else {
        let e = ProtocolError("no hello within the handshake timeout".into());
        refuse(w, Message::error(e.0.clone(), ErrorCode::Handshake)).await;
        return Err(e);
    };
    let (msg, _) = match first {
        Ok(m) => m,
        Err(e) => {
            refuse(w, Message::error(e.to_string(), ErrorCode::Handshake)).await;
            return Err(e);
        }
    };
    let (role, name, token) = match check_hello(&msg) {
        Ok(h) => h,
        Err(reply) => {
            let text = match &reply {
                Message::Error { message, .. } => message.clone(),
                _ => String::new(),
            };
            refuse(w, reply).await;
            return Err(ProtocolError(text));
        }
    };
    let hello = Hello { role, name, token };
    match decide(&hello) {
        Ok(id) => {
            write_one(
                &mut w,
                Message::Welcome {
                    protocol: PROTOCOL_VERSION,
                    id,
                    name: my_name.into(),
                    dashboard: dashboard.map(str::to_string),
                },
            )
            .await
            .map_err(|e| ProtocolError(format!("cannot send welcome: {e}")))?;
            Ok((inbox, spawn_writer(w), hello))
        }
        Err(message) => {
            refuse(w, Message::error(message.clone(), ErrorCode::Refused)).await;
            Err(ProtocolError(message))
        }
    }
}

/// The server side of a TLS handshake; a plaintext connection is told
/// (in plaintext) that this port needs TLS.
async fn tls_accept(
    stream: TcpStream,
    server: std::sync::Arc<rustls::ServerConfig>,
) -> Result<Stream, ProtocolError> {
    let mut first = [0u8; 1];
    let n = stream
        .peek(&mut first)
        .await
        .map_err(|e| ProtocolError(format!("reading the TLS handshake: {e}")))?;
    if n == 0 {
        return Err(ProtocolError(
            "the peer closed the connection before the TLS handshake".into(),
        ));
    }
    if first[0] != TLS_HANDSHAKE_RECORD {
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            refuse_stream(
                Stream::Tcp(stream),
                "this port requires TLS: connect to its tls:// address with a CA file, \
                 certificate and key",
                ErrorCode::TlsRequired,
            ),
        )
        .await;
        return Err(ProtocolError(
            "a plaintext connection to a TLS port (refused with 'tls-required')".into(),
        ));
    }
    let s = tokio_rustls::TlsAcceptor::from(server)
        .accept(stream)
        .await
        .map_err(|e| ProtocolError(format!("TLS handshake failed: {e}")))?;
    Ok(Stream::Tls(Box::new(TlsStream::Server(s))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::ServerName;
    use tokio::net::TcpListener;

    #[test]
    fn addresses() {
        assert_eq!(
            parse_address("tcp://127.0.0.1:8786").unwrap(),
            "127.0.0.1:8786"
        );
        assert_eq!(parse_address("localhost:1").unwrap(), "localhost:1");
        assert!(parse_address("tcp://").is_err());
        assert!(parse_address("nohost").is_err());
        assert_eq!(
            parse_address_scheme("tls://10.0.0.1:9").unwrap(),
            ("10.0.0.1:9".to_string(), true)
        );
        assert_eq!(
            parse_address_scheme("tcp://h:9").unwrap(),
            ("h:9".to_string(), false)
        );
        assert!(parse_address_scheme("tls://").is_err());
        assert!(parse_address_scheme("udp://h:9").is_err());
        assert_eq!(address_of("1.2.3.4:5", true), "tls://1.2.3.4:5");
        assert_eq!(address_of("1.2.3.4:5", false), "tcp://1.2.3.4:5");
        assert_eq!(
            server_name("[::1]:80"),
            ServerName::try_from("::1").unwrap()
        );
        assert_eq!(
            server_name("h.example:80"),
            ServerName::try_from("h.example").unwrap()
        );
    }

    #[tokio::test]
    async fn handshake_batching_and_payloads() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = format!("tcp://{}", l.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            let (mut inbox, outbox, hello) =
                accept(s, Limits::default(), Duration::from_secs(5), "srv", |h| {
                    assert_eq!(h.role, Role::Client);
                    Ok(42)
                })
                .await
                .unwrap();
            assert_eq!(hello.name, "cli");
            // Echo every message back, payloads included.
            let mut n = 0;
            while let Some(r) = inbox.recv().await.unwrap() {
                for m in r.messages {
                    let m = m.unwrap();
                    n += 1;
                    outbox.send_with_payloads(m, r.frames[1..].to_vec());
                }
            }
            n
        });
        let (mut inbox, outbox, welcome) = connect(
            &addr,
            Role::Client,
            "cli",
            None,
            Limits::default(),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert_eq!(welcome.id, 42);
        assert_eq!(welcome.name, "srv");
        for i in 0..1000 {
            outbox.send(Message::GetWorkers { id: i });
        }
        let mut seen = 0;
        while seen < 1000 {
            let r = inbox.recv().await.unwrap().unwrap();
            seen += r.messages.len();
        }
        let big = Bytes::from(vec![5u8; 1 << 20]);
        outbox.send_with_payloads(Message::GetWorkers { id: 7 }, vec![big.clone()]);
        let r = inbox.recv().await.unwrap().unwrap();
        assert_eq!(r.frames[1], big);
        drop(outbox);
        drop(inbox);
        assert_eq!(server.await.unwrap(), 1001);
    }

    #[tokio::test]
    async fn coalesced_bodies_are_capped_in_bytes_and_encoded_as_a_whole_batch() {
        // A cap of 1 MiB and 600 kB messages: no body holds more than two,
        // however many are queued at once (the cap is what keeps two ~3 GiB
        // messages out of one 4 GiB frame).
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let client = tokio::spawn(async move { TcpStream::connect(addr).await.unwrap() });
        let (mut theirs, _) = l.accept().await.unwrap();
        let (_r, w) = client.await.unwrap().into_split();
        let outbox = spawn_writer_capped(Writer::Tcp(w), 1 << 20, false);
        let big = |i: u64| Message::Error {
            message: "x".repeat(600_000),
            code: None,
            id: Some(i),
        };
        let mut sent = vec![Message::GetWorkers { id: 0 }];
        sent.extend((1..=5).map(big));
        sent.push(Message::GetWorkers { id: 6 });
        outbox.send_many(sent[..4].to_vec());
        for m in &sent[4..] {
            outbox.send(m.clone());
        }
        outbox.close();
        let mut got = Vec::new();
        let mut bodies = 0;
        while let Some(wm) = WireMessage::read_from(&mut theirs, &Limits::default())
            .await
            .unwrap()
        {
            assert!(
                wm.frames[0].len() < (1 << 20) + 700_000,
                "{}",
                wm.frames[0].len()
            );
            let msgs: Vec<Message> = decode_batch(&wm)
                .unwrap()
                .into_iter()
                .map(|m| m.unwrap())
                .collect();
            // The same bytes as encoding the batch at once.
            assert_eq!(encode_batch(&msgs, Vec::new()).frames[0], wm.frames[0]);
            got.extend(msgs);
            bodies += 1;
        }
        assert_eq!(got, sent);
        assert!(bodies >= 3, "{bodies} bodies for five 600 kB messages");
    }

    #[tokio::test]
    async fn close_writes_what_is_queued_then_ends_the_stream() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = format!("tcp://{}", l.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            let (mut inbox, _outbox, _) =
                accept(s, Limits::default(), Duration::from_secs(5), "srv", |_| {
                    Ok(1)
                })
                .await
                .unwrap();
            // Everything queued before `close`, then the end of the stream
            // (while the client still holds clones of its outbox).
            let mut got = Vec::new();
            while let Some(r) = inbox.recv().await.unwrap() {
                got.extend(r.messages.into_iter().map(|m| m.unwrap()));
            }
            got
        });
        let (_inbox, outbox, _) = connect(
            &addr,
            Role::Client,
            "cli",
            None,
            Limits::default(),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        let clone = outbox.clone();
        for i in 0..100 {
            outbox.send(Message::GetWorkers { id: i });
        }
        clone.send(Message::Close {
            reason: "bye".into(),
        });
        assert!(outbox.close_and_flush(Duration::from_secs(10)).await);
        assert!(clone.is_closed());
        assert!(!clone.send(Message::GetWorkers { id: 100 }));
        let got = server.await.unwrap();
        assert_eq!(got.len(), 101);
        assert!(matches!(got.last(), Some(Message::Close { .. })));
    }

    /// Reads wire messages until the end of the stream: each message with
    /// the payload frames of its wire message.
    async fn read_all(theirs: &mut TcpStream) -> Vec<(Message, Vec<Bytes>)> {
        let mut got = Vec::new();
        while let Some(wm) = WireMessage::read_from(theirs, &Limits::default())
            .await
            .unwrap()
        {
            let msgs = decode_batch(&wm).unwrap();
            if wm.frames.len() > 1 {
                assert_eq!(msgs.len(), 1, "a payload message goes alone");
            }
            for m in msgs {
                got.push((m.unwrap(), wm.frames[1..].to_vec()));
            }
        }
        got
    }

    fn direct_counts(o: &Outbox) -> (usize, usize) {
        o.direct.as_ref().unwrap().lock().counts
    }

    /// Sends `msgs` from a host thread (not the runtime's), each after a
    /// quiet gap except every fifth (a burst), then closes the outbox.
    fn send_from_host_thread(
        o: Outbox,
        msgs: Vec<(Message, Vec<Bytes>)>,
    ) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            for (i, (m, p)) in msgs.into_iter().enumerate() {
                if i % 5 != 4 {
                    let t = std::time::Instant::now();
                    while t.elapsed() < DIRECT_GAP * 2 {
                        std::hint::spin_loop();
                    }
                }
                assert!(o.send_with_payloads(m, p));
            }
            o.close();
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn host_threads_write_directly_when_the_writer_is_idle() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let client = tokio::spawn(async move { TcpStream::connect(addr).await.unwrap() });
        let (mut theirs, _) = l.accept().await.unwrap();
        let (_r, w) = client.await.unwrap().into_split();
        let outbox = spawn_writer_direct(Writer::Tcp(w));
        // Off by default: a host thread's message goes to the writer.
        outbox.send(Message::GetWorkers { id: 0 });
        outbox.set_direct(true);
        // Once the writer has written it, the next message goes directly.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while outbox.direct.as_ref().unwrap().lock().pending > 0 {
            assert!(std::time::Instant::now() < deadline, "the writer is stuck");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let sent: Vec<(Message, Vec<Bytes>)> = (1..40)
            .map(|i| (Message::GetWorkers { id: i }, Vec::new()))
            .collect();
        let host = send_from_host_thread(outbox.clone(), sent.clone());
        let got = read_all(&mut theirs).await;
        tokio::task::spawn_blocking(move || host.join().unwrap())
            .await
            .unwrap();
        assert_eq!(got[0].0, Message::GetWorkers { id: 0 });
        assert_eq!(got[1..], sent[..]);
        let (whole, rests) = direct_counts(&outbox);
        assert!(whole >= 1, "no direct write");
        assert_eq!(rests, 0);
        // After close: nothing is sent, directly or not.
        tokio::time::timeout(Duration::from_secs(10), outbox.flushed())
            .await
            .unwrap();
        assert!(!outbox.send(Message::GetWorkers { id: 99 }));
        assert_eq!(direct_counts(&outbox).0, whole);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_messages_from_a_host_thread_go_directly_in_one_write_and_in_order() {
        // What a worker's host thread sends (send_many under its core lock):
        // written by that thread when the writer is idle, the messages of
        // one call in one wire message; a call close behind the previous
        // one goes to the writer; the order holds throughout.
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let client = tokio::spawn(async move { TcpStream::connect(addr).await.unwrap() });
        let (mut theirs, _) = l.accept().await.unwrap();
        let (_r, w) = client.await.unwrap().into_split();
        let outbox = spawn_writer_direct(Writer::Tcp(w));
        outbox.set_direct(true);
        let o = outbox.clone();
        let host = std::thread::spawn(move || {
            for call in 0..20u64 {
                if call % 4 != 3 {
                    let t = std::time::Instant::now();
                    while t.elapsed() < DIRECT_GAP * 2 {
                        std::hint::spin_loop();
                    }
                }
                let msgs = (0..3)
                    .map(|j| Message::GetWorkers { id: call * 3 + j })
                    .collect();
                assert!(o.send_many(msgs));
            }
            o.close();
        });
        let mut got = Vec::new();
        let mut wires = 0;
        while let Some(wm) = WireMessage::read_from(&mut theirs, &Limits::default())
            .await
            .unwrap()
        {
            wires += 1;
            got.extend(decode_batch(&wm).unwrap().into_iter().map(|m| m.unwrap()));
        }
        tokio::task::spawn_blocking(move || host.join().unwrap())
            .await
            .unwrap();
        let want: Vec<Message> = (0..60).map(|id| Message::GetWorkers { id }).collect();
        assert_eq!(got, want);
        assert!(
            wires <= 20,
            "a call's messages were split: {wires} wire messages"
        );
        let (whole, rests) = direct_counts(&outbox);
        assert!(whole >= 1, "no direct write");
        assert_eq!(rests, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_direct_write_the_socket_cuts_short_goes_on_through_the_writer_in_order() {
        // Small socket buffers and a reader that starts only once all is
        // sent: the first 60 kB direct write is cut short (its rest goes
        // to the writer, first), later ones find the writer busy or the
        // socket full; 100 kB messages always go to the writer.
        let l = tokio::net::TcpSocket::new_v4().unwrap();
        l.set_recv_buffer_size(4096).unwrap();
        l.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = l.local_addr().unwrap();
        let l = l.listen(8).unwrap();
        let client = tokio::spawn(async move {
            let s = tokio::net::TcpSocket::new_v4().unwrap();
            s.set_send_buffer_size(4096).unwrap();
            s.connect(addr).await.unwrap()
        });
        let (mut theirs, _) = l.accept().await.unwrap();
        let (_r, w) = client.await.unwrap().into_split();
        let outbox = spawn_writer_direct(Writer::Tcp(w));
        outbox.set_direct(true);
        let sent: Vec<(Message, Vec<Bytes>)> = (0..30u64)
            .map(|i| {
                let size = [60_000, 0, 100_000][i as usize % 3];
                let p = if size == 0 {
                    Vec::new()
                } else {
                    vec![Bytes::from(vec![i as u8; size])]
                };
                (Message::GetWorkers { id: i }, p)
            })
            .collect();
        let host = send_from_host_thread(outbox.clone(), sent.clone());
        tokio::task::spawn_blocking(move || host.join().unwrap())
            .await
            .unwrap();
        let got = read_all(&mut theirs).await;
        assert_eq!(got.len(), sent.len());
        assert!(got == sent, "received out of order or changed");
        assert!(
            direct_counts(&outbox).1 >= 1,
            "no direct write was cut short"
        );
    }

    #[tokio::test]
    async fn refused_and_mismatched_handshakes() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = format!("tcp://{}", l.local_addr().unwrap());
        tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            let r = accept(s, Limits::default(), Duration::from_secs(5), "srv", |_| {
                Err("bad token".into())
            })
            .await;
            assert!(r.is_err());
        });
        let e = connect(
            &addr,
            Role::Worker,
            "w",
            None,
            Limits::default(),
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        assert!(e.0.contains("bad token"), "{e}");
    }
}

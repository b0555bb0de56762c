//! Framing: how a wire message is laid out on a byte stream.
//!
//! ```text
//! u32 LE        n, the number of frames (1 ..= limits.max_frames)
//! n × u64 LE    the length of each frame
//! frames        the bytes of each frame, back to back
//! ```
//!
//! Frame 0 is the msgpack body (an array of messages); frames 1.. are
//! payloads referenced from the body by index. Lengths are checked against
//! [`Limits`] before anything is allocated, and a frame's buffer grows as its
//! bytes arrive, so a peer that claims a huge frame and sends nothing costs
//! nothing.

use super::recvbuf::{LargeBuf, HUGE_MIN};
use bytes::{Bytes, BytesMut};
use std::fmt;
use std::io::IoSlice;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

/// Size limits a receiver enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_frames: u32,
    /// Largest single frame, in bytes.
    pub max_frame_size: u64,
    /// Largest message (all frames together), in bytes.
    pub max_message_size: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frames: 65_536,
            max_frame_size: 4 << 30,
            max_message_size: 8 << 30,
        }
    }
}

/// Why a byte stream is not a valid wire message.
#[derive(Debug)]
pub enum FrameError {
    /// The stream ended inside a message.
    Truncated,
    /// Frames in the header, and the receiver's limit.
    TooManyFrames(u32, u32),
    NoFrames,
    /// A frame's length, and the receiver's limit.
    FrameTooLarge(u64, u64),
    /// The message's length (so far), and the receiver's limit.
    MessageTooLarge(u64, u64),
    Io(std::io::Error),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Truncated => write!(f, "the connection ended inside a message"),
            FrameError::TooManyFrames(n, max) => write!(
                f,
                "a message of {n} frames is over the receiver's limit of {max} frames"
            ),
            FrameError::NoFrames => write!(f, "a message needs at least one frame"),
            FrameError::FrameTooLarge(n, max) => write!(
                f,
                "a frame of {n} bytes is over the receiver's limit of {max} bytes a frame"
            ),
            FrameError::MessageTooLarge(n, max) => write!(
                f,
                "a message of {n} bytes or more is over the receiver's limit of {max} bytes a message"
            ),
            FrameError::Io(e) => write!(f, "i/o error: {e}"),
        }
    }
}
impl std::error::Error for FrameError {}

impl From<std::io::Error> for FrameError {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            FrameError::Truncated
        } else {
            FrameError::Io(e)
        }
    }
}

/// One wire message: a body frame and payload frames.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WireMessage {
    pub frames: Vec<Bytes>,
}

/// A message up to this size goes to a writer without vectored writes as
/// one buffer (copied together).
const SMALL: usize = 64 * 1024;
/// A frame's buffer grows by at most this much before its bytes arrive.
const GROW: u64 = 16 << 20;

fn check_header(n: u32, limits: &Limits) -> Result<(), FrameError> {
    if n == 0 {
        return Err(FrameError::NoFrames);
    }
    if n > limits.max_frames {
        return Err(FrameError::TooManyFrames(n, limits.max_frames));
    }
    Ok(())
}

fn check_lengths(lens: &[u64], limits: &Limits) -> Result<(), FrameError> {
    let mut total: u64 = 0;
    for &l in lens {
        if l > limits.max_frame_size {
            return Err(FrameError::FrameTooLarge(l, limits.max_frame_size));
        }
        total = total.saturating_add(l);
        if total > limits.max_message_size {
            return Err(FrameError::MessageTooLarge(total, limits.max_message_size));
        }
    }
    Ok(())
}

impl WireMessage {
    /// Total bytes on the wire, header included.
    pub fn wire_len(&self) -> usize {
        4 + 8 * self.frames.len() + self.frames.iter().map(|f| f.len()).sum::<usize>()
    }

    fn header(&self) -> Vec<u8> {
        let mut h = Vec::with_capacity(4 + 8 * self.frames.len());
        h.extend_from_slice(&(self.frames.len() as u32).to_le_bytes());
        for f in &self.frames {
            h.extend_from_slice(&(f.len() as u64).to_le_bytes());
        }
        h
    }

    /// The message as one buffer (copies the frames).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = self.header();
        for f in &self.frames {
            out.extend_from_slice(f);
        }
        out
    }

    /// Decodes one message from the front of `data`. Returns the message
    /// and the bytes it used, `Ok(None)` if `data` holds only part of one.
    pub fn from_slice(
        data: &[u8],
        limits: &Limits,
    ) -> Result<Option<(WireMessage, usize)>, FrameError> {
        if data.len() < 4 {
            return Ok(None);
        }
        let n = u32::from_le_bytes(data[..4].try_into().unwrap());
        check_header(n, limits)?;
        let hlen = 4 + 8 * n as usize;
        if data.len() < hlen {
            return Ok(None);
        }
        let lens: Vec<u64> = (0..n as usize)
            .map(|i| u64::from_le_bytes(data[4 + 8 * i..12 + 8 * i].try_into().unwrap()))
            .collect();
        check_lengths(&lens, limits)?;
        // Saturating: with limits of u64::MAX the claimed lengths can sum
        // past it (then there are never enough bytes, and Ok(None) is right).
        let total = lens.iter().fold(hlen as u64, |t, &l| t.saturating_add(l));
        if (data.len() as u64) < total {
            return Ok(None);
        }
        let mut pos = hlen;
        let frames = lens
            .iter()
            .map(|&l| {
                let f = Bytes::copy_from_slice(&data[pos..pos + l as usize]);
                pos += l as usize;
                f
            })
            .collect();
        Ok(Some((WireMessage { frames }, pos)))
    }

    /// Writes the message: the header and every frame straight from their
    /// buffers (never copied into one), with vectored writes (`writev`)
    /// where the writer has them, so a small message is one system call.
    pub async fn write_to<W: AsyncWrite + Unpin>(&self, w: &mut W) -> std::io::Result<()> {
        self.write_to_from(w, 0).await
    }

    /// [`Self::write_to`] without the first `skip` bytes of the header
    /// (already sent, with descriptors: see [`super::conn`]).
    pub async fn write_to_from<W: AsyncWrite + Unpin>(
        &self,
        w: &mut W,
        skip: usize,
    ) -> std::io::Result<()> {
        if !w.is_write_vectored() && self.wire_len() <= SMALL {
            // One write rather than one per buffer (for TLS: one record).
            return w.write_all(&self.to_vec()[skip..]).await;
        }
        let header = self.header();
        let mut bufs: Vec<&[u8]> = Vec::with_capacity(1 + self.frames.len());
        bufs.push(&header[skip..]);
        bufs.extend(self.frames.iter().filter(|f| !f.is_empty()).map(|f| &f[..]));
        // The first unwritten buffer, and how far into it the writes got.
        let (mut first, mut offset) = (0, 0);
        while first < bufs.len() {
            let n = if w.is_write_vectored() {
                let mut slices = Vec::with_capacity(bufs.len() - first);
                slices.push(IoSlice::new(&bufs[first][offset..]));
                slices.extend(bufs[first + 1..].iter().map(|b| IoSlice::new(b)));
                w.write_vectored(&slices).await?
            } else {
                // One buffer at a time (TLS: it copies into records anyway).
                w.write(&bufs[first][offset..]).await?
            };
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            offset += n;
            while first < bufs.len() && offset >= bufs[first].len() {
                offset -= bufs[first].len();
                first += 1;
            }
        }
        Ok(())
    }

    /// Reads one message. `Ok(None)` on a clean end of stream before a
    /// message starts.
    pub async fn read_from<R: AsyncRead + Unpin>(
        r: &mut R,
        limits: &Limits,
    ) -> Result<Option<WireMessage>, FrameError> {
        let mut nbuf = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            let k = r.read(&mut nbuf[got..]).await?;
            if k == 0 {
                return if got == 0 {
                    Ok(None)
                } else {
                    Err(FrameError::Truncated)
                };
            }
            got += k;
        }
        let n = u32::from_le_bytes(nbuf);
        check_header(n, limits)?;
        let mut lbuf = vec![0u8; 8 * n as usize];
        r.read_exact(&mut lbuf).await?;
        let lens: Vec<u64> = lbuf
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        check_lengths(&lens, limits)?;
        let mut frames = Vec::with_capacity(n as usize);
        for &len in &lens {
            frames.push(read_frame(r, len).await?);
        }
        Ok(Some(WireMessage { frames }))
    }
}

async fn read_frame<R: AsyncRead + Unpin>(r: &mut R, len: u64) -> Result<Bytes, FrameError> {
    if len >= HUGE_MIN as u64 {
        if let Some(b) = read_large_frame(r, len).await? {
            return Ok(b);
        }
    }
    // The first GROW bytes go into a buffer of at most GROW; once they have
    // arrived (the peer is really sending), room for the rest is reserved
    // in one step. Reads go into uninitialised capacity: no zero-filling,
    // at most one reallocation.
    let mut buf = BytesMut::with_capacity(len.min(GROW) as usize);
    while (buf.len() as u64) < len {
        let remaining = len - buf.len() as u64;
        if buf.capacity() == buf.len() {
            buf.reserve(remaining as usize);
        }
        let room = (buf.capacity() - buf.len()) as u64;
        let n = (&mut *r)
            .take(remaining.min(room))
            .read_buf(&mut buf)
            .await?;
        if n == 0 {
            return Err(FrameError::Truncated);
        }
    }
    Ok(buf.freeze())
}

/// Reads a frame of at least [`HUGE_MIN`] bytes into a [`LargeBuf`] (huge
/// pages, pooled; see [`super::recvbuf`]): the buffer the value will own,
/// so the bytes are copied once, by the kernel, from the socket. The
/// buffer is taken once the first bytes have arrived (a peer that claims a
/// huge frame and sends nothing costs nothing). `None` when no such buffer
/// could be allocated (then the caller's growing buffer takes over; the
/// bytes read so far are not lost: nothing is read before the buffer).
async fn read_large_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    len: u64,
) -> Result<Option<Bytes>, FrameError> {
    let Ok(len) = usize::try_from(len) else {
        return Ok(None);
    };
    let mut first = [0u8; 4096];
    let k = r.read(&mut first).await?;
    if k == 0 {
        return Err(FrameError::Truncated);
    }
    let Some(mut buf) = LargeBuf::with_capacity(len) else {
        // The growing path, with what was read.
        let mut b = BytesMut::with_capacity(len.min(GROW as usize));
        b.extend_from_slice(&first[..k]);
        while b.len() < len {
            if b.capacity() == b.len() {
                b.reserve(len - b.len());
            }
            let room = (b.capacity() - b.len()).min(len - b.len());
            let n = (&mut *r).take(room as u64).read_buf(&mut b).await?;
            if n == 0 {
                return Err(FrameError::Truncated);
            }
        }
        return Ok(Some(b.freeze()));
    };
    buf.extend_from_slice(&first[..k]);
    while buf.len() < len {
        let want = len - buf.len();
        let spare = &mut buf.spare()[..want];
        let mut rb = ReadBuf::uninit(spare);
        std::future::poll_fn(|cx| std::pin::Pin::new(&mut *r).poll_read(cx, &mut rb)).await?;
        let n = rb.filled().len();
        if n == 0 {
            return Err(FrameError::Truncated);
        }
        // SAFETY: poll_read initialised the first `n` bytes of `spare`.
        unsafe { buf.advance(n) };
    }
    Ok(Some(buf.freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(frames: &[&[u8]]) -> WireMessage {
        WireMessage {
            frames: frames.iter().map(|f| Bytes::copy_from_slice(f)).collect(),
        }
    }

    #[test]
    fn slice_roundtrip_and_partial_input() {
        let m = msg(&[b"body", b"", b"payload"]);
        let bytes = m.to_vec();
        assert_eq!(bytes.len(), m.wire_len());
        let l = Limits::default();
        for cut in 0..bytes.len() {
            assert!(WireMessage::from_slice(&bytes[..cut], &l)
                .unwrap()
                .is_none());
        }
        let mut two = bytes.clone();
        two.extend_from_slice(&bytes);
        let (got, used) = WireMessage::from_slice(&two, &l).unwrap().unwrap();
        assert_eq!(got, m);
        assert_eq!(used, bytes.len());
    }

    #[test]
    fn hostile_headers_are_refused_before_allocating() {
        let l = Limits::default();
        let zero = 0u32.to_le_bytes();
        assert!(matches!(
            WireMessage::from_slice(&zero, &l),
            Err(FrameError::NoFrames)
        ));
        let many = u32::MAX.to_le_bytes();
        assert!(matches!(
            WireMessage::from_slice(&many, &l),
            Err(FrameError::TooManyFrames(_, 65_536))
        ));
        let mut huge = 1u32.to_le_bytes().to_vec();
        huge.extend_from_slice(&(1u64 << 63).to_le_bytes());
        assert!(matches!(
            WireMessage::from_slice(&huge, &l),
            Err(FrameError::FrameTooLarge(_, _))
        ));
        let small = Limits {
            max_frames: 4,
            max_frame_size: 10,
            max_message_size: 15,
        };
        let mut two = 2u32.to_le_bytes().to_vec();
        two.extend_from_slice(&8u64.to_le_bytes());
        two.extend_from_slice(&8u64.to_le_bytes());
        assert!(matches!(
            WireMessage::from_slice(&two, &small),
            Err(FrameError::MessageTooLarge(16, 15))
        ));
    }

    #[test]
    fn lengths_summing_past_u64_max_are_not_an_overflow() {
        // Found by reading from_slice for the fuzz target: with no limits,
        // two frames of 2^63 bytes summed past u64::MAX (a panic in debug).
        let none = Limits {
            max_frames: 4,
            max_frame_size: u64::MAX,
            max_message_size: u64::MAX,
        };
        let mut h = 2u32.to_le_bytes().to_vec();
        h.extend_from_slice(&(1u64 << 63).to_le_bytes());
        h.extend_from_slice(&(1u64 << 63).to_le_bytes());
        h.extend_from_slice(b"abc");
        assert!(WireMessage::from_slice(&h, &none).unwrap().is_none());
    }

    #[tokio::test]
    async fn async_roundtrip_large_and_small() {
        let big = vec![7u8; 300_000];
        let m = msg(&[b"b", &big]);
        let small = msg(&[b"x"]);
        let mut buf = Vec::new();
        m.write_to(&mut buf).await.unwrap();
        small.write_to(&mut buf).await.unwrap();
        let mut r = &buf[..];
        let l = Limits::default();
        assert_eq!(WireMessage::read_from(&mut r, &l).await.unwrap(), Some(m));
        assert_eq!(
            WireMessage::read_from(&mut r, &l).await.unwrap(),
            Some(small)
        );
        assert_eq!(WireMessage::read_from(&mut r, &l).await.unwrap(), None);
        // Cut inside a message.
        let mut r = &buf[..10];
        assert!(matches!(
            WireMessage::read_from(&mut r, &l).await,
            Err(FrameError::Truncated)
        ));
    }

    #[tokio::test]
    async fn large_frames_land_in_aligned_buffers_and_truncation_is_seen() {
        let big: Vec<u8> = (0..(5u32 << 20) + 3).map(|i| (i % 251) as u8).collect();
        let m = msg(&[b"b", &big, b"tail"]);
        let mut buf = Vec::new();
        m.write_to(&mut buf).await.unwrap();
        // Read in small pieces, as a socket delivers them.
        let (mut w, mut r) = tokio::io::duplex(64 * 1024);
        let feed = buf.clone();
        let writer = tokio::spawn(async move { w.write_all(&feed).await });
        let got = WireMessage::read_from(&mut r, &Limits::default())
            .await
            .unwrap()
            .unwrap();
        writer.await.unwrap().unwrap();
        assert_eq!(got, m);
        assert_eq!(
            got.frames[1].as_ptr() as usize % (2 << 20),
            0,
            "huge-page aligned"
        );
        // Cut inside the large frame.
        let mut r = &buf[..buf.len() - 100];
        assert!(matches!(
            WireMessage::read_from(&mut r, &Limits::default()).await,
            Err(FrameError::Truncated)
        ));
    }

    #[tokio::test]
    async fn a_claimed_huge_frame_with_no_data_is_truncated_not_allocated() {
        let mut h = 1u32.to_le_bytes().to_vec();
        h.extend_from_slice(&(3u64 << 30).to_le_bytes());
        h.extend_from_slice(b"abc");
        let mut r = &h[..];
        assert!(matches!(
            WireMessage::read_from(&mut r, &Limits::default()).await,
            Err(FrameError::Truncated)
        ));
    }
}

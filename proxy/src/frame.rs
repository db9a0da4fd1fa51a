//! Kafka framing: a 4-byte big-endian size, then that many bytes.
//!
//! Every byte from a client passes through [`read_frame`], which enforces a maximum size
//! before it allocates anything, so a hostile size can cost at most one refused connection.

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest frame accepted before and during authentication, as Kafka's
/// `sasl.server.max.receive.size` default.
pub const MAX_PRE_AUTH_FRAME: usize = 512 * 1024;

/// Default cap for frames after authentication: 16 MiB, well above a producer's default
/// `max.request.size` (1 MiB) and below Kafka's `socket.request.max.bytes` (100 MiB), because
/// authorizing a request decodes it, and a decoded topic list takes up to ~32 times its wire
/// size in memory. Raise it with `max_frame_bytes` for clients that send bigger requests.
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;

/// What a frame's buffer starts with before its bytes arrive.
const INITIAL_READ: usize = 64 * 1024;

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The size prefix is negative or larger than allowed here.
    #[error("invalid frame size {size} (allowed: 0..={max})")]
    InvalidSize {
        /// The size the peer announced.
        size: i64,
        /// The largest size allowed at this point of the connection.
        max: usize,
    },
    /// The peer closed the connection in the middle of a frame.
    #[error("connection closed in the middle of a frame ({read} of {expected} bytes read)")]
    Truncated {
        /// Bytes received before the close.
        read: usize,
        /// Bytes announced by the size prefix.
        expected: usize,
    },
    /// The socket failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads one frame body; `Ok(None)` on a clean end of stream between frames.
///
/// # Errors
/// [`FrameError::InvalidSize`] when the size is negative or above `max`, before any
/// allocation; [`FrameError::Truncated`] when the stream ends inside a frame.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> Result<Option<Bytes>, FrameError> {
    Ok(read_frame_raw(reader, max).await?.map(|raw| raw.slice(4..)))
}

/// Reads one frame and returns it *with* its 4-byte size prefix, so that it can be forwarded
/// in one write without copying; `Ok(None)` on a clean end of stream between frames.
///
/// # Errors
/// As [`read_frame`].
pub async fn read_frame_raw<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> Result<Option<Bytes>, FrameError> {
    Ok(read_frame_timed(reader, max).await?.map(|(raw, _)| raw))
}

/// [`read_frame_raw`], and when its first bytes arrived: the time from then to the return is
/// how long the peer took to send it.
///
/// # Errors
/// As [`read_frame`].
pub async fn read_frame_timed<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> Result<Option<(Bytes, tokio::time::Instant)>, FrameError> {
    let mut size_buf = [0u8; 4];
    let mut first = None;
    let mut filled = 0;
    while filled < 4 {
        let n = match reader.read(&mut size_buf[filled..]).await {
            Ok(n) => n,
            // A TLS peer that closes without close_notify (most Kafka clients, when they are
            // done) reads as UnexpectedEof; between two frames nothing is lost, so it is a
            // close like any other, not an error naming rustls's manual in the log.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && filled == 0 => 0,
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            if filled == 0 {
                return Ok(None);
            }
            return Err(FrameError::Truncated {
                read: filled,
                expected: 4,
            });
        }
        filled += n;
        first.get_or_insert_with(tokio::time::Instant::now);
    }
    let first = first.unwrap_or_else(tokio::time::Instant::now);
    let size = i32::from_be_bytes(size_buf);
    let len =
        usize::try_from(size)
            .ok()
            .filter(|len| *len <= max)
            .ok_or(FrameError::InvalidSize {
                size: i64::from(size),
                max,
            })?;
    let total = len + 4;
    // Memory follows the bytes that arrive, not the size the peer announced: a client that
    // announces 16 MiB and sends nothing holds 64 KiB, not 16 MiB.
    let mut raw = BytesMut::with_capacity(total.min(INITIAL_READ));
    raw.extend_from_slice(&size_buf);
    while raw.len() < total {
        // `read_buf` fills the spare capacity without zeroing it first; the limit keeps the
        // next frame's bytes in the socket.
        let want = total - raw.len();
        if raw.capacity() == raw.len() {
            // Double what has arrived, never beyond the frame.
            raw.reserve(want.min(raw.len().max(INITIAL_READ)));
        }
        let n = reader.read_buf(&mut (&mut raw).limit(want)).await?;
        if n == 0 {
            return Err(FrameError::Truncated {
                read: raw.len() - 4,
                expected: len,
            });
        }
    }
    Ok(Some((raw.freeze(), first)))
}

/// Writes `body` with its size prefix in one write, so that a frame never leaves as two
/// small TCP segments (with Nagle's algorithm on either side that costs tens of milliseconds).
///
/// # Errors
/// Any i/o error of the socket.
pub async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    body: &[u8],
) -> std::io::Result<()> {
    let mut buf = BytesMut::with_capacity(body.len() + 4);
    put_frame(&mut buf, body)?;
    writer.write_all(&buf).await?;
    // Over TLS, bytes may wait in the TLS layer until flushed.
    writer.flush().await
}

/// Appends `body` with its size prefix to `buf`.
///
/// # Errors
/// `InvalidInput` if the body is larger than a frame can announce.
pub fn put_frame(buf: &mut BytesMut, body: &[u8]) -> std::io::Result<()> {
    let size = i32::try_from(body.len()).map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "frame larger than 2 GiB")
    })?;
    buf.reserve(body.len() + 4);
    buf.put_i32(size);
    buf.put_slice(body);
    Ok(())
}

#[cfg(test)]
mod tests {

    /// A reader that hands out `bytes`, then fails with `UnexpectedEof` as rustls does when
    /// the peer closes without close_notify.
    struct EofAfter(Vec<u8>);

    impl AsyncRead for EofAfter {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            if self.0.is_empty() {
                return std::task::Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "peer closed connection without sending TLS close_notify",
                )));
            }
            let n = self.0.len().min(buf.remaining());
            buf.put_slice(&self.0[..n]);
            self.0.drain(..n);
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn a_tls_close_without_notify_between_frames_is_a_close_inside_one_an_error() {
        let mut between = EofAfter(vec![0, 0, 0, 1, 7]);
        let first = read_frame(&mut between, 64).await.expect("frame");
        assert_eq!(first.as_deref(), Some(&[7u8][..]));
        assert!(matches!(read_frame(&mut between, 64).await, Ok(None)));
        let mut inside_size = EofAfter(vec![0, 0]);
        assert!(matches!(
            read_frame(&mut inside_size, 64).await,
            Err(FrameError::Io(_))
        ));
        let mut inside_body = EofAfter(vec![0, 0, 0, 5, 1]);
        assert!(read_frame(&mut inside_body, 64).await.is_err());
    }

    use super::*;

    #[tokio::test]
    async fn reads_a_frame_and_then_clean_eof() {
        let mut input: &[u8] = &[0, 0, 0, 3, b'a', b'b', b'c'];
        let frame = read_frame(&mut input, 10).await.unwrap().unwrap();
        assert_eq!(&frame[..], b"abc");
        assert!(read_frame(&mut input, 10).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn back_to_back_frames_stay_apart_however_the_bytes_arrive() {
        let frames: &[&[u8]] = &[b"first", b"", b"third frame, longer than the others"];
        let mut wire = Vec::new();
        for f in frames {
            write_frame(&mut wire, f).await.unwrap();
        }
        // Whole, and one byte at a time (a slow or hostile peer).
        let mut whole: &[u8] = &wire;
        // A one-byte pipe: every read gets at most one byte.
        let (mut tx, mut trickle) = tokio::io::duplex(1);
        let bytes = wire.clone();
        tokio::spawn(async move { tx.write_all(&bytes).await });
        for f in frames {
            let raw = read_frame_raw(&mut whole, 100).await.unwrap().unwrap();
            assert_eq!(&raw[4..], *f);
            assert_eq!(
                &read_frame(&mut trickle, 100).await.unwrap().unwrap()[..],
                *f
            );
        }
        assert!(read_frame(&mut whole, 100).await.unwrap().is_none());
        assert!(read_frame(&mut trickle, 100).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn rejects_negative_frame_size() {
        let mut input: &[u8] = &[0xff, 0xff, 0xff, 0xff];
        let err = read_frame(&mut input, 10).await.unwrap_err();
        assert!(matches!(err, FrameError::InvalidSize { size: -1, .. }));
    }

    #[tokio::test]
    async fn rejects_oversized_frame_before_allocating() {
        let mut input: &[u8] = &[0x7f, 0xff, 0xff, 0xff];
        let err = read_frame(&mut input, MAX_PRE_AUTH_FRAME)
            .await
            .unwrap_err();
        assert!(matches!(err, FrameError::InvalidSize { .. }));
    }

    #[tokio::test]
    async fn reports_truncated_frame() {
        let mut input: &[u8] = &[0, 0, 0, 9, 1, 2];
        let err = read_frame(&mut input, 10).await.unwrap_err();
        assert!(matches!(
            err,
            FrameError::Truncated {
                read: 2,
                expected: 9
            }
        ));
        let mut input: &[u8] = &[0, 0];
        let err = read_frame(&mut input, 10).await.unwrap_err();
        assert!(matches!(err, FrameError::Truncated { .. }));
    }

    #[tokio::test]
    async fn writes_prefix_and_body_together() {
        let mut out = Vec::new();
        write_frame(&mut out, b"xyz").await.unwrap();
        assert_eq!(out, [0, 0, 0, 3, b'x', b'y', b'z']);
    }
}

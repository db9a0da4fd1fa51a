//! A TCP stream that reads ahead: one `recv` takes up to [`READ_AHEAD`] bytes, and small reads
//! are served from what is already here.
//!
//! Why: above a socket, the callers read in small pieces. rustls reads TLS records 4 KiB at a
//! time (its deframer buffer shrinks back to 4 KiB whenever it empties), and the frame reader
//! asks for a 4-byte size before each body. Each of those was a `recv` of its own, and on a
//! loopback or LAN connection a `recv` costs far more than the copy it does (the kernel
//! acknowledges, wakes the sender, ...): in `perf`, receiving was a third of kgate's CPU on
//! the TLS produce path. Reading ahead takes whatever has arrived, up to 64 KiB, in one call;
//! `kgate bench gateway` showed kgate's CPU per GB with TLS about 12–15 % lower (README,
//! Performance).
//!
//! Memory follows traffic: the buffer is allocated when bytes are ready to be read (never
//! for a connection that only waits) and released as soon as it is drained and the socket
//! has nothing more, so idle connections hold nothing. Reads at least as big as the buffer
//! go straight to the socket, without the extra copy.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// The most one `recv` takes into the read-ahead buffer.
pub const READ_AHEAD: usize = 64 * 1024;

/// A [`TcpStream`] whose small reads are served from a read-ahead buffer.
#[derive(Debug)]
pub struct ReadAhead {
    inner: TcpStream,
    /// Bytes received but not yet read; empty (no allocation) while the connection is quiet.
    buf: BytesMut,
}

impl ReadAhead {
    /// Wraps a connected stream.
    pub fn new(inner: TcpStream) -> Self {
        Self {
            inner,
            buf: BytesMut::new(),
        }
    }

    /// The stream itself.
    pub fn get_ref(&self) -> &TcpStream {
        &self.inner
    }
}

impl AsyncRead for ReadAhead {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if out.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        if this.buf.is_empty() && out.remaining() >= READ_AHEAD {
            // Big enough to fill on its own: no copy through the buffer.
            return Pin::new(&mut this.inner).poll_read(cx, out);
        }
        while this.buf.is_empty() {
            if this.buf.capacity() > 0 {
                // Drained: give the memory back before waiting, so a quiet connection holds
                // none (the allocator hands the same block back on the next read).
                this.buf = BytesMut::new();
            }
            ready!(this.inner.poll_read_ready(cx))?;
            this.buf.reserve(READ_AHEAD);
            match this.inner.try_read_buf(&mut this.buf) {
                // End of stream: nothing is added to `out`.
                Ok(0) => return Poll::Ready(Ok(())),
                Ok(_) => {}
                // Readiness was stale; `try_read_buf` cleared it, wait again.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        let n = out.remaining().min(this.buf.len());
        out.put_slice(&this.buf[..n]);
        this.buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for ReadAhead {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    /// Passed on, so that rustls's vectored writes (many TLS records in one `writev`) stay
    /// vectored.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    async fn pair() -> (TcpStream, ReadAhead) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (client.unwrap(), ReadAhead::new(accepted.unwrap().0))
    }

    #[tokio::test]
    async fn small_and_big_reads_see_every_byte_in_order() {
        let (mut tx, mut rx) = pair().await;
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            // Uneven pieces, so reads straddle what arrived.
            for piece in sent.chunks(7_001) {
                tx.write_all(piece).await.unwrap();
            }
        });
        let mut got = Vec::new();
        let mut small = [0u8; 5];
        let mut big = vec![0u8; READ_AHEAD + 10];
        let mut turn = 0usize;
        while got.len() < data.len() {
            turn += 1;
            let buf: &mut [u8] = if turn.is_multiple_of(2) {
                &mut small
            } else {
                &mut big
            };
            let n = rx.read(buf).await.unwrap();
            assert!(n > 0, "early end of stream at {}", got.len());
            got.extend_from_slice(&buf[..n]);
        }
        writer.await.unwrap();
        assert_eq!(got, data);
        // End of stream once the writer is gone.
        assert_eq!(rx.read(&mut small).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_drained_quiet_connection_holds_no_buffer() {
        let (mut tx, mut rx) = pair().await;
        tx.write_all(b"abc").await.unwrap();
        let mut out = [0u8; 3];
        rx.read_exact(&mut out).await.unwrap();
        assert_eq!(&out, b"abc");
        // The next read finds nothing and waits: the buffer is released first.
        let mut one = [0u8; 1];
        let waited =
            tokio::time::timeout(std::time::Duration::from_millis(50), rx.read(&mut one)).await;
        assert!(waited.is_err(), "nothing was sent");
        assert_eq!(rx.buf.capacity(), 0);
    }
}

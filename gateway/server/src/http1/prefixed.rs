//! A connection handed to hyper mid-stream: the bytes the gateway's own HTTP/1.1 server already read (and did
//! not consume) are read again first, then the socket. Writes are watched by `server.send_timeout`, as on the
//! gateway's own server: a caller that takes nothing for that long makes the write fail, and hyper closes the
//! connection.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use penghubung_types::deadline::{LazyTimer, StallWatch};

/// `io` with `prefix` in front of what it reads; writes go straight to `io`, within the send timeout.
#[derive(Debug)]
pub struct Prefixed<I> {
    prefix: Bytes,
    io: I,
    send_timeout: Duration,
    send: StallWatch,
    timer: LazyTimer,
}

impl<I> Prefixed<I> {
    pub fn new(prefix: Bytes, io: I, send_timeout: Duration) -> Self {
        Self { prefix, io, send_timeout, send: StallWatch::default(), timer: LazyTimer::default() }
    }

    pub fn get_ref(&self) -> &I {
        &self.io
    }

    /// A pending write counts toward the send timeout (and fails once it has lasted all of it); a finished one
    /// starts the next wait afresh.
    fn watch<T>(&mut self, polled: Poll<io::Result<T>>, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        match polled {
            Poll::Pending if self.send.poll_expired(self.send_timeout, &mut self.timer, cx) => {
                Poll::Ready(Err(super::send_timed_out(self.send_timeout)))
            }
            Poll::Pending => Poll::Pending,
            ready => {
                self.send.progressed();
                ready
            }
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Prefixed<I> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Prefixed<I> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write(cx, buf);
        this.watch(polled, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.watch(polled, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_flush(cx);
        this.watch(polled, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn the_prefix_is_read_before_the_stream() {
        let (mut near, far) = tokio::io::duplex(64);
        tokio::io::AsyncWriteExt::write_all(&mut near, b" world").await.unwrap();
        drop(near);
        let mut io = Prefixed::new(Bytes::from_static(b"hello"), far, Duration::from_secs(60));
        let mut all = String::new();
        io.read_to_string(&mut all).await.unwrap();
        assert_eq!(all, "hello world");
    }
}

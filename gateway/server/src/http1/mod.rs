//! The gateway's own HTTP/1.1 server for the common case: keep-alive callers sending body-less requests (reads
//! and lookups, what most SPBE traffic is). Each connection starts here; the request head is parsed in place,
//! the request is answered by the same pipeline as always ([`GatewayService::respond`], polled in this task: no
//! hyper dispatcher, no boxing), and the response head and body are written with one `write` when the body is
//! ready (framed by length, chunked otherwise). Pipelined requests are answered in order.
//!
//! The first request outside that case (a body, HTTP/1.0, `HEAD`, `Expect`, `Upgrade`, the HTTP/2 preface, a
//! malformed or oversized head) hands the connection to hyper ([`Served::Handoff`]) with every byte not yet
//! consumed, and hyper serves the rest of it exactly as before. The first head must arrive within
//! `server.header_read_timeout` of the connection's start, each later one within `server.header_read_timeout`
//! or `server.idle_timeout` (the shorter) of the previous response, else the connection closes; a caller that hangs up cancels its in-flight request; on shutdown an idle connection closes and an
//! in-flight one finishes its response (with `connection: close`) first.

pub mod prefixed;
pub mod request;
pub mod response;

use std::future::{poll_fn, Future};
use std::io;
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::BytesMut;
use http::{HeaderValue, Response};
use http_body::{Body, Frame};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::io::poll_read_buf;

use penghubung_pipeline::body::{ResponseBody, ResponseBodyError};
use penghubung_pipeline::GatewayService;
use penghubung_types::deadline::{LazyTimer, StallWatch};
pub use prefixed::Prefixed;
use request::NotTaken;
use response::Encoder;

/// Bytes read per `read` call (at least).
const READ_CHUNK: usize = 8 * 1024;
/// Body frames up to this size are copied behind the head (one `write`); larger ones are written on their own.
const COPY_AT_MOST: usize = 64 * 1024;

/// What this server needs from the configuration.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// How long a request head may take to arrive, counted from when the wait starts.
    pub header_read_timeout: Duration,
    /// How long a connection may wait with no request in flight (the wait for a later head is the shorter of
    /// this and `header_read_timeout`).
    pub idle_timeout: Duration,
    /// How long a caller may take none of its response before the connection is closed.
    pub send_timeout: Duration,
    /// A head still incomplete after this many bytes goes to hyper, which answers it with the usual limits.
    pub largest_head: usize,
}

/// How a connection left this server.
pub enum Served<I> {
    /// It ended (the caller closed it, a timeout, shutdown, or an error that leaves no way to go on).
    Closed,
    /// hyper serves the rest of it; `answered`: whether requests were answered on it before.
    Handoff { io: Prefixed<I>, answered: bool },
}

/// Serves `io` until it ends or a request needs hyper.
pub async fn serve<I>(
    mut io: I,
    service: &GatewayService,
    settings: Settings,
    shutdown: &watch::Receiver<bool>,
) -> Served<I>
where
    I: AsyncRead + AsyncWrite + Unpin + Send,
{
    let mut stop = Stop::new(shutdown.clone());
    let mut deadline = HeadDeadline::new(settings.header_read_timeout);
    let mut read_buf = BytesMut::with_capacity(READ_CHUNK);
    let mut write_buf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut answered = false;
    loop {
        if answered {
            deadline.start(settings.header_read_timeout.min(settings.idle_timeout));
        }
        let request = loop {
            match request::head(&mut read_buf, settings.largest_head) {
                Ok(request) => break request,
                Err(NotTaken::Handoff) => {
                    let io = Prefixed::new(read_buf.freeze(), io, settings.send_timeout);
                    return Served::Handoff { io, answered };
                }
                Err(NotTaken::Partial) => {}
            }
            let waited = poll_fn(|cx| {
                if read_buf.is_empty() && stop.poll(cx) {
                    return Poll::Ready(false); // shutdown: an idle connection closes
                }
                match poll_read(&mut io, cx, &mut read_buf) {
                    Poll::Ready(more) => Poll::Ready(more),
                    Poll::Pending if deadline.poll_expired(cx) => Poll::Ready(false),
                    Poll::Pending => Poll::Pending,
                }
            })
            .await;
            if !waited {
                return Served::Closed;
            }
        };

        let response = {
            let mut respond = pin!(service.respond(request));
            poll_fn(|cx| {
                if let Poll::Ready(response) = respond.as_mut().poll(cx) {
                    return Poll::Ready(Some(response));
                }
                // Watch the caller's side, as hyper does: a caller that hangs up cancels its request. Bytes
                // that arrive meanwhile (a pipelined request) wait in the buffer, up to one head's worth.
                while read_buf.len() < settings.largest_head {
                    match poll_read(&mut io, cx, &mut read_buf) {
                        Poll::Ready(true) => continue,
                        Poll::Ready(false) => return Poll::Ready(None),
                        Poll::Pending => break,
                    }
                }
                Poll::Pending
            })
            .await
        };
        let Some((response, request_id)) = response else {
            return Served::Closed;
        };

        answered = true;
        let close = stop.is_set();
        let mut send = SendWatch::new(settings.send_timeout, &mut deadline.timer);
        match write_response(&mut io, &mut write_buf, response, &request_id, close, &mut send).await {
            Ok(true) if !close => {}
            Ok(_) => {
                let _ = io.shutdown().await;
                return Served::Closed;
            }
            Err(error) => {
                // The caller cannot be told any more: the response is cut off, as hyper does.
                tracing::debug!(%error, "writing the response failed; closing the connection");
                return Served::Closed;
            }
        }
    }
}

/// Writes `response` (head, then the body as it comes, framed): `Ok(true)` when the connection can carry
/// another request, `Ok(false)` when the body broke its announced length, an error when the caller's socket
/// failed or the body broke off.
async fn write_response<I: AsyncWrite + Unpin>(
    io: &mut I,
    write_buf: &mut Vec<u8>,
    response: Response<ResponseBody>,
    request_id: &HeaderValue,
    close: bool,
    send: &mut SendWatch<'_>,
) -> Result<bool, Box<dyn std::error::Error + Send + Sync>> {
    let (parts, mut body) = response.into_parts();
    write_buf.clear();
    let mut encoder = Encoder::new(response::head(write_buf, &parts, &body, close));
    drop(parts); // the upstream's head is not needed while the body streams
    if encoder.has_body() {
        while !body.is_end_stream() {
            let frame = match poll_now(&mut body) {
                Some(frame) => frame,
                None => {
                    // Not ready: what is written so far goes out while the body is awaited.
                    flush(io, write_buf, send).await?;
                    poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
                }
            };
            let Some(frame) = frame else { break };
            let frame = frame.inspect_err(|error| penghubung_pipeline::log_broken_body(request_id, error))?;
            let Ok(data) = frame.into_data() else { continue }; // trailers are not forwarded
            if data.len() > COPY_AT_MOST {
                // Written from where it lies: only the framing goes through the buffer.
                let take = encoder.begin_direct(write_buf, data.len());
                flush(io, write_buf, send).await?;
                write_all(io, &data[..take], send).await?;
                encoder.end_direct(write_buf);
            } else {
                encoder.data(write_buf, &data);
                if write_buf.len() >= COPY_AT_MOST {
                    flush(io, write_buf, send).await?;
                }
            }
        }
        encoder.finish(write_buf);
    }
    drop(body);
    flush(io, write_buf, send).await?;
    Ok(!encoder.is_broken())
}

/// Reads what is there into `buf`: `Ready(true)` when bytes arrived, `Ready(false)` when the caller closed
/// its side or the read failed.
fn poll_read<I: AsyncRead + Unpin>(io: &mut I, cx: &mut Context<'_>, buf: &mut BytesMut) -> Poll<bool> {
    if buf.capacity() - buf.len() < READ_CHUNK / 2 {
        buf.reserve(READ_CHUNK);
    }
    match poll_read_buf(Pin::new(io), cx, buf) {
        Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => Poll::Ready(false),
        Poll::Ready(Ok(_)) => Poll::Ready(true),
        Poll::Pending => Poll::Pending,
    }
}

/// The next frame if the body has it now, without waiting (and without registering to be woken).
fn poll_now(body: &mut ResponseBody) -> Option<Option<Result<Frame<bytes::Bytes>, ResponseBodyError>>> {
    match Pin::new(body).poll_frame(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(frame) => Some(frame),
        Poll::Pending => None,
    }
}

/// Writes out `buf` (then empty) and flushes, within the send timeout.
async fn flush<I: AsyncWrite + Unpin>(io: &mut I, buf: &mut Vec<u8>, send: &mut SendWatch<'_>) -> io::Result<()> {
    if !buf.is_empty() {
        write_all(io, buf, send).await?;
        buf.clear();
    }
    poll_fn(|cx| match Pin::new(&mut *io).poll_flush(cx) {
        Poll::Pending => send.poll_pending(cx),
        done => done,
    })
    .await
}

/// Writes all of `bytes`, within the send timeout.
async fn write_all<I: AsyncWrite + Unpin>(io: &mut I, mut bytes: &[u8], send: &mut SendWatch<'_>) -> io::Result<()> {
    poll_fn(|cx| {
        while !bytes.is_empty() {
            match Pin::new(&mut *io).poll_write(cx, bytes) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    bytes = &bytes[n..];
                    send.progressed();
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return send.poll_pending(cx),
            }
        }
        Poll::Ready(Ok(()))
    })
    .await
}

/// The send timeout of one response: a caller that takes no byte of it for `server.send_timeout` (it stopped
/// reading, its window stays shut) is cut off, as nginx's `send_timeout` does. The connection's head-read
/// timer is borrowed (the two waits never overlap).
struct SendWatch<'a> {
    timeout: Duration,
    stall: StallWatch,
    timer: &'a mut LazyTimer,
}

impl<'a> SendWatch<'a> {
    fn new(timeout: Duration, timer: &'a mut LazyTimer) -> Self {
        Self { timeout, stall: StallWatch::default(), timer }
    }

    fn progressed(&mut self) {
        self.stall.progressed();
    }

    /// The write is pending: still `Pending`, or a `TimedOut` error once the caller has taken nothing for the
    /// whole timeout.
    fn poll_pending<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        if self.stall.poll_expired(self.timeout, self.timer, cx) {
            return Poll::Ready(Err(send_timed_out(self.timeout)));
        }
        Poll::Pending
    }
}

/// The error a write that waited out `server.send_timeout` ends with.
pub fn send_timed_out(timeout: Duration) -> io::Error {
    let message = format!("the caller took none of the response for {timeout:?} (server.send_timeout)");
    io::Error::new(io::ErrorKind::TimedOut, message)
}

/// Whether shutdown has begun. The task registers for the shutdown signal once; after that a lock-free look at
/// the channel's version tells whether it came (polling the `changed` future again would take the channel's
/// waiter lock on every request).
struct Stop {
    receiver: watch::Receiver<bool>,
    changed: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    set: bool,
}

impl Stop {
    fn new(mut receiver: watch::Receiver<bool>) -> Self {
        let set = *receiver.borrow_and_update();
        Self { receiver, changed: None, set }
    }

    /// Registers the task to be woken when shutdown begins (the first time), and tells whether it has.
    fn poll(&mut self, cx: &mut Context<'_>) -> bool {
        if self.set {
            return true;
        }
        match &mut self.changed {
            None => {
                let mut receiver = self.receiver.clone();
                let changed = self
                    .changed
                    .insert(Box::pin(async move { while receiver.changed().await.is_ok() && !*receiver.borrow() {} }));
                self.set = changed.as_mut().poll(cx).is_ready();
            }
            Some(changed) => {
                // A wake-up came from somewhere; only a changed channel needs the future polled again.
                if self.receiver.has_changed().unwrap_or(true) {
                    self.set = changed.as_mut().poll(cx).is_ready();
                }
            }
        }
        self.set
    }

    /// Whether shutdown has begun, without registering.
    fn is_set(&mut self) -> bool {
        self.set |= self.receiver.has_changed().unwrap_or(true) && *self.receiver.borrow();
        self.set
    }
}

/// The head read timeout: the deadline moves with every request, the timer is re-armed lazily.
struct HeadDeadline {
    deadline: Instant,
    timer: LazyTimer,
}

impl HeadDeadline {
    /// The first head's deadline, counted from now (the connection's start).
    fn new(timeout: Duration) -> Self {
        Self { deadline: Instant::now() + timeout, timer: LazyTimer::default() }
    }

    /// A later head's deadline, counted from now (the end of the previous response).
    fn start(&mut self, timeout: Duration) {
        self.deadline = Instant::now() + timeout;
    }

    fn poll_expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.timer.poll_expired(self.deadline, cx)
    }
}

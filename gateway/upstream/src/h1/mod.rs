//! The HTTP/1.1 upstream client: connections pooled per endpoint without locks, and each exchange driven by the
//! request's own task. Idle connections wait in a bounded lock-free queue; a request takes one (or dials a new
//! one: TCP with the connect timeout, then TLS verified against the configured roots for `https` endpoints),
//! writes its head and body, reads the response head, and hands the connection to the response body, which
//! returns it to the queue once the body has been read to the end.
//!
//! There is no connection task, channel or hand-off between tasks on this path: that machinery (hyper's client
//! connection) was a quarter of the gateway's own CPU per request. The wire format is the shared HTTP/1.1
//! codec ([`penghubung_http1`]: response heads, framing, body decoding); [`encode`] writes the request head the
//! gateway sends, and [`crate::dial`] makes the connections and keeps the idle ones.
//!
//! A pooled connection that the upstream had closed just before use (the keep-alive race) fails before any
//! response byte arrives; a body-less request is then written again on another connection when that is safe
//! (nothing was written, or the method is idempotent).

pub mod encode;
#[cfg(test)]
mod tests;

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use http::{request, Method, Response};
use http_body::{Body, Frame, SizeHint};
use tokio::io::AsyncWrite;

use crate::body::{RequestBody, RequestBodyError};
pub use crate::dial::{ConnectError, Dialer, IdleConnections};
use crate::dial::{Connection, HEAD_BUFFER};
use crate::upstream::{is_idempotent, Endpoint, UpstreamPool};
pub use encode::GatewayFields;
use penghubung_http1::decode::{self, DecodeError, Decoder, Step};
use penghubung_http1::encode::{chunk_start, Framing, CHUNK_END, LAST_CHUNK};

/// Read buffer reserved while streaming a body.
const BODY_BUFFER: usize = 32 * 1024;
/// Body frames up to this size are copied behind the head (one write); larger ones are written from their own
/// buffer.
const COPY_MAX: usize = 16 * 1024;

/// Why an exchange failed after a connection was had.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("writing the request failed: {0}")]
    Write(io::Error),
    #[error("reading the response failed: {0}")]
    Read(io::Error),
    #[error("the upstream closed the connection without responding")]
    Closed,
    #[error(transparent)]
    Response(#[from] DecodeError),
    /// The caller's body failed (too large, or broken off): the caller's fault, not the upstream's.
    #[error(transparent)]
    RequestBody(RequestBodyError),
    #[error("the request body did not have its declared length")]
    RequestLength,
}

/// Why [`send`] failed.
#[derive(Debug)]
pub enum SendError {
    /// No byte of the request reached the upstream.
    Connect(ConnectError),
    /// The exchange failed after the request was (at least partly) written, or the response was unusable.
    Exchange(ExchangeError),
    /// The response head had not arrived by the request's deadline.
    Timeout,
    /// The caller's body paused for longer than the request timeout (the upstream was waiting for it).
    CallerStalled(Duration),
}

/// Why a response body broke off.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("reading the response body failed: {0}")]
    Read(io::Error),
    /// The upstream sent part of the body and then nothing for the service's request timeout.
    #[error("the upstream paused its response body for longer than the request timeout ({0:?})")]
    Stalled(Duration),
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// Sends the request `parts` + `body` to endpoint `index` of `pool`, and has its response head by `deadline` or
/// fails with [`SendError::Timeout`]. The response body hands the connection back when it ends. The request
/// line's target and the forwarding fields come from `gateway`, `Host` from the endpoint (the request's own URI
/// and `Host` are not used). `parts` is only read: a retry on another endpoint sends it again as it is.
pub async fn send(
    pool: &Arc<UpstreamPool>,
    dialer: &Dialer,
    index: usize,
    parts: &request::Parts,
    mut body: RequestBody,
    gateway: GatewayFields<'_>,
    deadline: tokio::time::Instant,
) -> Result<Response<PooledBody>, SendError> {
    let endpoint = &pool.endpoints[index];
    let empty = body.is_end_stream();
    let framing = Framing::for_request(parts, empty, &body.size_hint());
    let head_request = parts.method == Method::HEAD;
    let idempotent = is_idempotent(&parts.method);
    for _ in 0..3 {
        let Some((mut connection, reused)) = checkout(dialer, endpoint, deadline).await.map_err(SendError::Connect)?
        else {
            return Err(SendError::Timeout);
        };
        connection.write_buf.clear();
        connection.body_stall.progressed(); // a pause of an earlier response is not this one's
        encode::head(parts, &endpoint.base_path, &endpoint.host_header, &gateway, framing, &mut connection.write_buf);
        let mut timer = std::mem::take(&mut connection.timer);
        let mut exchange = Exchange::new(&mut connection, &mut body, framing, empty, head_request);
        // A body-less request has its head by `deadline`. With a body, the request timeout runs from the last
        // progress while the body is being sent (the caller's or the upstream's pause), then from the moment it
        // was all sent: a long upload is not cut off by a timeout meant for the upstream's answer.
        let timeout = pool.spec.request_timeout;
        let exchanged = poll_fn(|cx| match exchange.poll(cx) {
            Poll::Ready(done) => Poll::Ready(Some(done)),
            Poll::Pending if timer.poll_expired(exchange.progress_at.map_or(deadline, |at| at + timeout), cx) => {
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        })
        .await;
        let received_any = exchange.received_any();
        let wrote_any = exchange.wrote_any;
        let finished_writing = exchange.finished_writing();
        let caller_stalled = exchange.waiting_for_caller();
        connection.timer = timer;
        let Some(exchanged) = exchanged else {
            // The connection, mid-exchange, is dropped (closed).
            return Err(if caller_stalled { SendError::CallerStalled(timeout) } else { SendError::Timeout });
        };
        match exchanged {
            Ok(head) => {
                let reusable = head.reusable && finished_writing;
                let body = PooledBody::new(connection, head.decoder, reusable, Arc::clone(pool), index);
                return Ok(head.response.map(|()| body));
            }
            Err(e) => {
                // A reused connection that failed before any response byte: most likely closed by the upstream
                // while idle. Only a body-less request can be written again, and only when that is safe.
                let stale = reused
                    && matches!(e, ExchangeError::Write(_) | ExchangeError::Read(_) | ExchangeError::Closed)
                    && !received_any;
                if stale && empty && (idempotent || !wrote_any) {
                    continue;
                }
                return Err(SendError::Exchange(e));
            }
        }
    }
    Err(SendError::Connect(ConnectError::Io(io::Error::new(
        io::ErrorKind::ConnectionReset,
        "the upstream kept closing connections before the request could be sent",
    ))))
}

/// A connection to `endpoint`: an idle one that is still quiet (`true`), or a new one (`false`), made by
/// `deadline` (`Ok(None)` when it was not).
async fn checkout(
    dialer: &Dialer,
    endpoint: &Endpoint,
    deadline: tokio::time::Instant,
) -> Result<Option<(Box<Connection>, bool)>, ConnectError> {
    while let Some(mut connection) = endpoint.idle.pop() {
        if connection.is_reusable(dialer.idle_timeout) {
            return Ok(Some((connection, true)));
        }
    }
    // Boxed: connecting (TCP, TLS) is rare with keep-alive and its state is kilobytes, which every request's
    // future would otherwise carry and move.
    match Box::pin(tokio::time::timeout_at(
        deadline,
        dialer.connect(&endpoint.authority, endpoint.scheme == http::uri::Scheme::HTTPS),
    ))
    .await
    {
        Ok(connected) => connected.map(|c| Some((c, false))),
        Err(_elapsed) => Ok(None),
    }
}

/// Where the request body is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sending {
    /// Frames are still to be read from the caller.
    Body,
    /// Everything is queued in the write buffer.
    Queued,
    /// Everything was written and flushed.
    Done,
}

/// One request/response exchange on a connection: writes the request (head, then body frames as the caller
/// sends them) while watching for the response head, which may come before the body has been sent.
struct Exchange<'a> {
    connection: &'a mut Connection,
    body: &'a mut RequestBody,
    framing: Framing,
    head_request: bool,
    sending: Sending,
    /// How much of `write_buf` has been written.
    written: usize,
    /// A large body frame, written from its own buffer after `write_buf`, then followed by `large_end`.
    large: Option<Bytes>,
    large_end: &'static [u8],
    body_bytes: u64,
    wrote_any: bool,
    /// With a body: when the body last moved (a frame from the caller, bytes to the upstream, the end sent).
    /// `None` for a body-less request, which reads no clock here.
    progress_at: Option<tokio::time::Instant>,
}

impl<'a> Exchange<'a> {
    fn new(
        connection: &'a mut Connection,
        body: &'a mut RequestBody,
        framing: Framing,
        empty: bool,
        head_request: bool,
    ) -> Self {
        let sending = if empty { Sending::Queued } else { Sending::Body };
        Self {
            connection,
            body,
            framing,
            head_request,
            sending,
            written: 0,
            large: None,
            large_end: b"",
            body_bytes: 0,
            wrote_any: false,
            progress_at: (!empty).then(tokio::time::Instant::now),
        }
    }

    fn finished_writing(&self) -> bool {
        self.sending == Sending::Done
    }

    /// Whether everything the caller sent so far is written and the exchange waits for more of its body.
    fn waiting_for_caller(&self) -> bool {
        self.sending == Sending::Body && self.large.is_none() && self.written >= self.connection.write_buf.len()
    }

    /// The body moved on: the request timeout starts again.
    fn progressed(&mut self) {
        if self.progress_at.is_some() {
            self.progress_at = Some(tokio::time::Instant::now());
        }
    }

    fn received_any(&self) -> bool {
        !self.connection.read_buf.is_empty()
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<decode::Head, ExchangeError>> {
        if self.sending != Sending::Done {
            if let Poll::Ready(Err(e)) = self.poll_write(cx) {
                return Poll::Ready(Err(e));
            }
        }
        loop {
            if let Some(head) = decode::head(&mut self.connection.read_buf, self.head_request)? {
                return Poll::Ready(Ok(head));
            }
            match self.connection.poll_fill(cx, HEAD_BUFFER) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(ExchangeError::Closed)),
                Poll::Ready(Ok(_)) => continue,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(ExchangeError::Read(e))),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Writes what is queued and queues more of the body, until everything is written or something waits.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ExchangeError>> {
        loop {
            // Take the caller's next frame while there is room behind what is queued: a small body goes out
            // with the head in one write.
            if self.sending == Sending::Body
                && self.large.is_none()
                && self.connection.write_buf.len() - self.written < COPY_MAX
            {
                match Pin::new(&mut *self.body).poll_frame(cx) {
                    Poll::Ready(Some(Ok(frame))) => {
                        if let Ok(data) = frame.into_data() {
                            self.queue(data)?;
                        }
                        self.progressed();
                        continue;
                    }
                    Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(ExchangeError::RequestBody(e))),
                    Poll::Ready(None) => {
                        self.finish_body()?;
                        continue;
                    }
                    Poll::Pending => {}
                }
            }
            let connection = &mut *self.connection;
            if self.written < connection.write_buf.len() {
                match Pin::new(&mut connection.stream).poll_write(cx, &connection.write_buf[self.written..]) {
                    Poll::Ready(Ok(0)) => {
                        return Poll::Ready(Err(ExchangeError::Write(io::ErrorKind::WriteZero.into())))
                    }
                    Poll::Ready(Ok(n)) => {
                        self.written += n;
                        self.wrote_any = true;
                        self.progressed();
                        continue;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(ExchangeError::Write(e))),
                    Poll::Pending => return Poll::Pending,
                }
            }
            connection.write_buf.clear();
            self.written = 0;
            if let Some(large) = self.large.as_mut() {
                match Pin::new(&mut connection.stream).poll_write(cx, large) {
                    Poll::Ready(Ok(0)) => {
                        return Poll::Ready(Err(ExchangeError::Write(io::ErrorKind::WriteZero.into())))
                    }
                    Poll::Ready(Ok(n)) => {
                        self.wrote_any = true;
                        if let Some(at) = self.progress_at.as_mut() {
                            *at = tokio::time::Instant::now();
                        }
                        large.advance(n);
                        if large.is_empty() {
                            self.large = None;
                            connection.write_buf.extend_from_slice(self.large_end);
                        }
                        continue;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(ExchangeError::Write(e))),
                    Poll::Pending => return Poll::Pending,
                }
            }
            // Everything queued is written.
            return match self.sending {
                Sending::Body => {
                    // Waiting for the caller: make sure what was written has left (TLS buffers).
                    match Pin::new(&mut connection.stream).poll_flush(cx) {
                        Poll::Ready(Err(e)) => Poll::Ready(Err(ExchangeError::Write(e))),
                        _ => Poll::Pending,
                    }
                }
                Sending::Queued => match Pin::new(&mut connection.stream).poll_flush(cx) {
                    Poll::Ready(Ok(())) => {
                        self.sending = Sending::Done;
                        self.progressed(); // all sent: the wait for the response head starts now
                        Poll::Ready(Ok(()))
                    }
                    Poll::Ready(Err(e)) => Poll::Ready(Err(ExchangeError::Write(e))),
                    Poll::Pending => Poll::Pending,
                },
                Sending::Done => Poll::Ready(Ok(())),
            };
        }
    }

    fn queue(&mut self, data: Bytes) -> Result<(), ExchangeError> {
        if data.is_empty() {
            return Ok(()); // an empty chunk would end a chunked body
        }
        self.body_bytes += data.len() as u64;
        let out = &mut self.connection.write_buf;
        match self.framing {
            Framing::Length(n) if self.body_bytes > n => return Err(ExchangeError::RequestLength),
            Framing::None => return Err(ExchangeError::RequestLength),
            Framing::Length(_) => {
                self.large_end = b"";
            }
            Framing::Chunked => {
                chunk_start(data.len(), out);
                self.large_end = CHUNK_END;
            }
        }
        if data.len() <= COPY_MAX {
            out.extend_from_slice(&data);
            out.extend_from_slice(self.large_end);
        } else {
            self.large = Some(data);
        }
        Ok(())
    }

    fn finish_body(&mut self) -> Result<(), ExchangeError> {
        match self.framing {
            Framing::Length(n) if self.body_bytes != n => return Err(ExchangeError::RequestLength),
            Framing::Chunked => self.connection.write_buf.extend_from_slice(LAST_CHUNK),
            _ => {}
        }
        self.sending = Sending::Queued;
        Ok(())
    }
}

/// The upstream's response body, read from the connection as the caller's side asks for it; when it has been
/// read to the end, the connection returns to the pool (unless the exchange ruled that out).
pub struct PooledBody {
    connection: Option<Box<Connection>>,
    decoder: Decoder,
    reusable: bool,
    pool: Arc<UpstreamPool>,
    index: usize,
}

impl std::fmt::Debug for PooledBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledBody").field("decoder", &self.decoder).finish()
    }
}

impl PooledBody {
    fn new(
        connection: Box<Connection>,
        decoder: Decoder,
        reusable: bool,
        pool: Arc<UpstreamPool>,
        index: usize,
    ) -> Self {
        let mut body = Self { connection: Some(connection), decoder, reusable, pool, index };
        if body.decoder.is_done() {
            body.release(); // empty bodies (204, HEAD) may never be polled
        }
        body
    }

    /// The body has ended: the connection goes back to the pool if it can carry another exchange (nothing
    /// unexpected was sent after the body).
    fn release(&mut self) {
        if let Some(connection) = self.connection.take() {
            if self.reusable && connection.read_buf.is_empty() {
                self.pool.endpoints[self.index].idle.checkin(connection);
            }
        }
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        loop {
            let Some(connection) = this.connection.as_mut() else { return Poll::Ready(None) };
            match this.decoder.decode(&mut connection.read_buf) {
                Ok(Step::Data(data)) => {
                    if this.decoder.is_done() {
                        this.release();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Ok(Step::Done) => {
                    this.release();
                    return Poll::Ready(None);
                }
                Ok(Step::NeedMore) => {}
                Err(e) => {
                    this.connection = None;
                    return Poll::Ready(Some(Err(e.into())));
                }
            }
            match connection.poll_fill(cx, BODY_BUFFER) {
                Poll::Ready(Ok(0)) => {
                    this.connection = None; // closed: never reused
                    return match this.decoder.eof() {
                        Ok(()) => Poll::Ready(None),
                        Err(e) => Poll::Ready(Some(Err(e.into()))),
                    };
                }
                Poll::Ready(Ok(_)) => connection.body_stall.progressed(),
                Poll::Ready(Err(e)) => {
                    this.connection = None;
                    return Poll::Ready(Some(Err(BodyError::Read(e))));
                }
                Poll::Pending => {
                    // Like the response head, the body must keep coming: a pause longer than the request timeout
                    // ends it with an error (the caller sees the response cut off, the connection is closed).
                    let timeout = this.pool.spec.request_timeout;
                    if connection.body_stall.poll_expired(timeout, &mut connection.timer, cx) {
                        this.connection = None;
                        return Poll::Ready(Some(Err(BodyError::Stalled(timeout))));
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.decoder.is_done()
    }

    fn size_hint(&self) -> SizeHint {
        self.decoder.size_hint()
    }
}

//! Request body types of the upstream side, concrete (no boxing per request). [`Inbound`] is the caller's body as
//! the server received it; [`RequestBody`] streams it to the upstream while counting bytes against the service's
//! limit (and, when something must see its bytes, feeds a [`BodyTap`]). The upstream's answer is
//! [`crate::response`]'s. A streamed request body has an overall deadline ([`RequestBody::limit_duration`]): a
//! caller that trickles its body cannot hold an upstream connection for longer than `server.request_body_timeout`.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use penghubung_types::deadline::LazyTimer;
use penghubung_types::tap::BodyTap;

/// Why a request body stopped.
#[derive(Debug, thiserror::Error)]
pub enum RequestBodyError {
    #[error("request body exceeds the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the request body did not arrive whole within {timeout:?} (server.request_body_timeout)")]
    TimedOut { timeout: Duration },
    #[error("reading the request body failed: {0}")]
    Client(#[from] hyper::Error),
}

/// The caller's body as the server received it: hyper's stream, or none at all (the gateway's own HTTP/1.1
/// server, in the server crate, reads only body-less requests itself and hands any other to hyper).
#[derive(Debug)]
pub enum Inbound {
    Hyper(Incoming),
    Empty,
}

impl Body for Inbound {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            Inbound::Hyper(body) => Pin::new(body).poll_frame(cx),
            Inbound::Empty => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Inbound::Hyper(body) => body.is_end_stream(),
            Inbound::Empty => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Inbound::Hyper(body) => body.size_hint(),
            Inbound::Empty => SizeHint::with_exact(0),
        }
    }
}

/// The caller's body on its way to the upstream: streamed and cut off with an error once it passes `limit`
/// bytes, or already read whole (when a contract had to check it first).
#[derive(Debug)]
pub struct RequestBody {
    inner: Option<Inbound>,
    buffered: Option<Bytes>,
    limit: u64,
    seen: u64,
    /// Told how the body moves, when an HTTP/2 exchange times the upload ([`RequestBody::watch_upload`]).
    upload: Option<Arc<UploadProgress>>,
    /// What only some bodies carry (boxed: a body-less request pays nothing for it, and the watcher's wide
    /// pointer does not widen every body).
    extras: Option<Box<Extras>>,
}

/// The parts of a request body that not every body has.
#[derive(Debug, Default)]
struct Extras {
    /// Sees the bytes as they pass (the audit record's digest and NIK scan), when auditing.
    tap: Option<Box<dyn BodyTap>>,
    /// When a streamed body must have arrived whole.
    deadline: Option<BodyDeadline>,
}

/// The overall deadline of a streamed request body.
#[derive(Debug)]
struct BodyDeadline {
    at: tokio::time::Instant,
    timeout: Duration,
    timer: LazyTimer,
}

impl RequestBody {
    pub fn new(inner: Inbound, limit: u64, tap: Option<Box<dyn BodyTap>>) -> Self {
        let extras = tap.map(|tap| Box::new(Extras { tap: Some(tap), deadline: None }));
        let mut body = Self { inner: Some(inner), buffered: None, limit, seen: 0, upload: None, extras };
        let ended = body.inner.as_ref().is_some_and(Body::is_end_stream);
        if let Some(tap) = body.tap().filter(|_| ended) {
            tap.finish(); // a body-less request is never polled
        }
        body
    }

    /// A body that was read whole before forwarding (a contract checked it); the tap sees it as it is sent.
    pub fn buffered(bytes: Bytes, tap: Option<Box<dyn BodyTap>>) -> Self {
        let buffered = Some(bytes).filter(|b| !b.is_empty());
        let extras = tap.map(|tap| Box::new(Extras { tap: Some(tap), deadline: None }));
        let ended = buffered.is_none();
        let mut body = Self { inner: None, buffered, limit: u64::MAX, seen: 0, upload: None, extras };
        if let Some(tap) = body.tap().filter(|_| ended) {
            tap.finish();
        }
        body
    }

    /// An empty body (used to re-send a body-less request to another endpoint).
    pub fn empty() -> Self {
        Self { inner: None, buffered: None, limit: 0, seen: 0, upload: None, extras: None }
    }

    /// From now on the rest of a streamed body must arrive within `timeout`; past it the body ends with
    /// [`RequestBodyError::TimedOut`] (and the exchange, its upstream connection with it, is abandoned). A body
    /// already read whole, or none, is not timed.
    pub fn limit_duration(&mut self, timeout: Duration) {
        if self.inner.as_ref().is_some_and(|inner| !inner.is_end_stream()) {
            let at = tokio::time::Instant::now() + timeout;
            let extras = self.extras.get_or_insert_with(Box::default);
            extras.deadline = Some(BodyDeadline { at, timeout, timer: LazyTimer::default() });
        }
    }

    /// From now on the body reports how it moves (for a client that polls it in another task, as hyper's
    /// HTTP/2 client does).
    pub fn watch_upload(&mut self) -> Arc<UploadProgress> {
        Arc::clone(self.upload.get_or_insert_with(|| Arc::new(UploadProgress::new())))
    }

    /// The body's watcher, if it has one.
    fn tap(&mut self) -> Option<&mut Box<dyn BodyTap>> {
        self.extras.as_mut()?.tap.as_mut()
    }

    fn moved(&self, done: bool) {
        if let Some(upload) = &self.upload {
            upload.moved(done);
        }
    }
}

/// How an upload is going, told by the body to the exchange that times it: whether it waits for the caller,
/// and when it last moved.
#[derive(Debug)]
pub struct UploadProgress {
    start: tokio::time::Instant,
    /// Milliseconds after `start` of the last frame (or of the end).
    moved_ms: AtomicU64,
    /// [`UPLOAD_SENDING`], [`UPLOAD_WAITING_FOR_CALLER`], [`UPLOAD_DONE`] or [`UPLOAD_TIMED_OUT`].
    state: AtomicU8,
}

const UPLOAD_SENDING: u8 = 0;
const UPLOAD_WAITING_FOR_CALLER: u8 = 1;
const UPLOAD_DONE: u8 = 2;
const UPLOAD_TIMED_OUT: u8 = 3;

impl UploadProgress {
    fn new() -> Self {
        Self { start: tokio::time::Instant::now(), moved_ms: AtomicU64::new(0), state: AtomicU8::new(UPLOAD_SENDING) }
    }

    fn moved(&self, done: bool) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.moved_ms.store(ms, Ordering::Relaxed);
        self.state.store(if done { UPLOAD_DONE } else { UPLOAD_SENDING }, Ordering::Relaxed);
    }

    /// Everything the caller sent so far has been taken; the body waits for more from the caller.
    fn waiting_for_caller_now(&self) {
        self.state.store(UPLOAD_WAITING_FOR_CALLER, Ordering::Relaxed);
    }

    /// Whether everything the caller sent has been taken and the body waits for more from the caller (or its
    /// overall deadline cut it off while it waited).
    pub fn waiting_for_caller(&self) -> bool {
        matches!(self.state.load(Ordering::Relaxed), UPLOAD_WAITING_FOR_CALLER | UPLOAD_TIMED_OUT)
    }

    /// The body did not arrive whole within its overall deadline (`server.request_body_timeout`).
    fn timed_out(&self) {
        self.state.store(UPLOAD_TIMED_OUT, Ordering::Relaxed);
    }

    /// Whether the body ended because it did not arrive whole within its overall deadline.
    pub fn body_timed_out(&self) -> bool {
        self.state.load(Ordering::Relaxed) == UPLOAD_TIMED_OUT
    }

    /// When the current wait runs out: `timeout` after the body last moved.
    pub fn deadline(&self, timeout: Duration) -> tokio::time::Instant {
        self.start + Duration::from_millis(self.moved_ms.load(Ordering::Relaxed)) + timeout
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = RequestBodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Some(bytes) = this.buffered.take() {
            if let Some(tap) = this.tap() {
                tap.observe(&bytes);
                tap.finish();
            }
            this.moved(true);
            return Poll::Ready(Some(Ok(Frame::data(bytes))));
        }
        let Some(inner) = this.inner.as_mut() else {
            this.moved(true);
            return Poll::Ready(None);
        };
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.seen += data.len() as u64;
                    if this.seen > this.limit {
                        this.inner = None;
                        return Poll::Ready(Some(Err(RequestBodyError::TooLarge { limit: this.limit })));
                    }
                    if let Some(tap) = this.extras.as_mut().and_then(|extras| extras.tap.as_mut()) {
                        tap.observe(data);
                        if this.inner.as_ref().is_some_and(Body::is_end_stream) {
                            tap.finish();
                        }
                    }
                }
                this.moved(this.inner.as_ref().is_some_and(Body::is_end_stream));
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(RequestBodyError::Client(e)))),
            Poll::Ready(None) => {
                if let Some(tap) = this.tap() {
                    tap.finish();
                }
                this.moved(true);
                Poll::Ready(None)
            }
            Poll::Pending => {
                if let Some(deadline) = this.extras.as_mut().and_then(|extras| extras.deadline.as_mut()) {
                    if deadline.timer.poll_expired(deadline.at, cx) {
                        this.inner = None;
                        if let Some(upload) = &this.upload {
                            upload.timed_out();
                        }
                        return Poll::Ready(Some(Err(RequestBodyError::TimedOut { timeout: deadline.timeout })));
                    }
                }
                if let Some(upload) = &this.upload {
                    upload.waiting_for_caller_now();
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.buffered.is_none() && self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        match (&self.buffered, &self.inner) {
            (Some(bytes), _) => SizeHint::with_exact(bytes.len() as u64),
            (None, Some(inner)) => inner.size_hint(),
            (None, None) => SizeHint::with_exact(0),
        }
    }
}

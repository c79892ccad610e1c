//! The upstream's response body as it streams back, concrete (no boxing per request): an HTTP/2 upstream's, or
//! a pooled HTTP/1.1 connection's ([`PooledBody`], which returns its connection to the pool when it ends). What
//! the caller finally receives is the pipeline's own body type, which wraps this one.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::h1::{BodyError, PooledBody};
use penghubung_types::deadline::{LazyTimer, StallWatch};

/// An upstream's response body, as it streams back.
#[derive(Debug)]
pub enum UpstreamBody {
    /// An HTTP/2 upstream's body (boxed: rare next to HTTP/1.1).
    Http2(Box<Http2Body>),
    /// An HTTP/1.1 upstream's body, whose connection returns to the pool when it ends.
    Pooled(PooledBody),
}

/// Why an upstream's response body broke off.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamBodyError {
    /// An HTTP/2 upstream's body broke off.
    #[error(transparent)]
    Http2(#[from] hyper::Error),
    /// An HTTP/1.1 upstream's body broke off or was malformed.
    #[error(transparent)]
    Http1(#[from] BodyError),
    /// An HTTP/2 upstream sent part of the body and then nothing for the service's request timeout.
    #[error("the upstream paused its response body for longer than the request timeout ({0:?})")]
    Stalled(Duration),
}

/// An HTTP/2 upstream's body, which must keep coming like an HTTP/1.1 one: a pause longer than the service's
/// request timeout ends it with [`UpstreamBodyError::Stalled`].
#[derive(Debug)]
pub struct Http2Body {
    incoming: Incoming,
    timeout: Duration,
    stall: StallWatch,
    timer: LazyTimer,
}

impl Http2Body {
    pub fn new(incoming: Incoming, timeout: Duration) -> Self {
        Http2Body { incoming, timeout, stall: StallWatch::default(), timer: LazyTimer::default() }
    }

    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, UpstreamBodyError>>> {
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(UpstreamBodyError::Http2(e)))),
            Poll::Ready(Some(Ok(frame))) => {
                self.stall.progressed();
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending if self.stall.poll_expired(self.timeout, &mut self.timer, cx) => {
                Poll::Ready(Some(Err(UpstreamBodyError::Stalled(self.timeout))))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = UpstreamBodyError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            UpstreamBody::Http2(b) => b.poll_frame(cx),
            UpstreamBody::Pooled(b) => match Pin::new(b).poll_frame(cx) {
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(UpstreamBodyError::Http1(e)))),
                Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::Http2(b) => b.incoming.is_end_stream(),
            UpstreamBody::Pooled(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpstreamBody::Http2(b) => b.incoming.size_hint(),
            UpstreamBody::Pooled(b) => b.size_hint(),
        }
    }
}

//! Whether a connection served by hyper is doing anything: a request is in flight from when hyper hands it to
//! the service until its response body is dropped (sent, or the stream ended). Only requests count: HTTP/2
//! pings, SETTINGS, WINDOW_UPDATE and streams refused before they reach the service are not activity, so a
//! connection that sends no preface, a partial one, a preface and no request, or only answers pings is closed
//! by [`IdleWatch`]: its first request must start by a deadline (`server.header_read_timeout` after the
//! connection was accepted), and after that it may have no request in flight for at most `server.idle_timeout`.
//!
//! The watch reads the clock only when its timer fires: a request start or end is two atomic operations, and the
//! timer, armed at the earliest moment the connection could be idle for long enough, is pushed on when it finds
//! the connection busy or recently busy (as [`penghubung_types::deadline::LazyTimer`] does for other deadlines).

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::Instant;

use penghubung_pipeline::GatewayService;
use penghubung_pipeline::ReportedBody;
use penghubung_types::deadline::LazyTimer;

/// `last_end_ms` before any request ended.
const NEVER: u64 = u64::MAX;

/// The requests in flight on one connection, and when the last one ended.
#[derive(Debug)]
pub struct Activity {
    start: Instant,
    in_flight: AtomicU32,
    /// Milliseconds after `start` when the last request ended ([`NEVER`] before the first).
    last_end_ms: AtomicU64,
}

impl Activity {
    pub fn new() -> Arc<Self> {
        Arc::new(Self { start: Instant::now(), in_flight: AtomicU32::new(0), last_end_ms: AtomicU64::new(NEVER) })
    }

    /// A request starts; it is in flight until the returned guard is dropped.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(Arc::clone(self))
    }

    fn ms_since_start(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(NEVER - 1).min(NEVER - 1)
    }
}

/// A request in flight (see [`Activity::begin`]).
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let activity = &self.0;
        activity.last_end_ms.store(activity.ms_since_start(), Ordering::Release);
        activity.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Closes a connection that does nothing: no first request by `first_request_by`, or no request in flight for
/// `idle_timeout` after that.
#[derive(Debug)]
pub struct IdleWatch {
    activity: Arc<Activity>,
    /// Without any request, the connection is closed then.
    first_request_by: Instant,
    idle_timeout: Duration,
    /// When the connection could be idle for long enough at the earliest (the timer may fire before it).
    check_at: Instant,
    timer: LazyTimer,
}

/// Why [`IdleWatch`] gave up on a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Idle {
    /// No request started by the first-request deadline.
    NoFirstRequest,
    /// No request in flight for the idle timeout.
    IdleTimeout,
}

impl IdleWatch {
    /// `first_request_by`: when, without any request, the connection is closed. `None`: requests were already
    /// served on it (by the gateway's own HTTP/1.1 server), it is idle from now on.
    pub fn new(activity: Arc<Activity>, first_request_by: Option<Instant>, idle_timeout: Duration) -> Self {
        let now = Instant::now();
        let check_at = match first_request_by {
            // A first request that ends early makes the connection idle before the first-request deadline: the
            // watch looks at least once per idle timeout.
            Some(deadline) => deadline.min(now + idle_timeout),
            None => {
                // Requests were served before hyper took over: the connection counts as idle since now.
                activity.last_end_ms.store(activity.ms_since_start(), Ordering::Release);
                now + idle_timeout
            }
        };
        let first_request_by = first_request_by.unwrap_or(now);
        Self { activity, first_request_by, idle_timeout, check_at, timer: LazyTimer::default() }
    }

    /// Resolves once the connection has done nothing for too long.
    pub async fn expired(&mut self) -> Idle {
        poll_fn(|cx| self.poll_expired(cx)).await
    }

    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<Idle> {
        loop {
            if !self.timer.poll_expired(self.check_at, cx) {
                return Poll::Pending;
            }
            // The timer fired: look at the connection now.
            let activity = &self.activity;
            let now = Instant::now();
            if activity.in_flight.load(Ordering::Acquire) > 0 {
                self.check_at = now + self.idle_timeout;
                continue;
            }
            let deadline = match activity.last_end_ms.load(Ordering::Acquire) {
                NEVER if now >= self.first_request_by => return Poll::Ready(Idle::NoFirstRequest),
                NEVER => {
                    self.check_at = self.first_request_by.min(now + self.idle_timeout);
                    continue;
                }
                ended => activity.start + Duration::from_millis(ended) + self.idle_timeout,
            };
            if deadline <= now {
                return Poll::Ready(Idle::IdleTimeout);
            }
            self.check_at = deadline;
        }
    }
}

/// The gateway's service as hyper calls it on a watched connection: every request is in flight until its
/// response body is dropped.
#[derive(Clone, Debug)]
pub struct Tracked {
    service: GatewayService,
    activity: Arc<Activity>,
}

impl Tracked {
    pub fn new(service: GatewayService, activity: Arc<Activity>) -> Self {
        Self { service, activity }
    }
}

impl hyper::service::Service<Request<Incoming>> for Tracked {
    type Response = Response<TrackedBody>;
    type Error = std::convert::Infallible;
    type Future = TrackedResponse<<GatewayService as hyper::service::Service<Request<Incoming>>>::Future>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let in_flight = Some(self.activity.begin());
        TrackedResponse { inner: self.service.call(request), in_flight }
    }
}

/// The service's future, holding the request in flight; its response body takes the guard over.
pub struct TrackedResponse<F> {
    inner: F,
    in_flight: Option<InFlight>,
}

impl<F> Future for TrackedResponse<F>
where
    F: Future<Output = Result<Response<ReportedBody>, std::convert::Infallible>> + Unpin,
{
    type Output = Result<Response<TrackedBody>, std::convert::Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll(cx) {
            Poll::Ready(Ok(response)) => {
                let in_flight = this.in_flight.take();
                Poll::Ready(Ok(response.map(|body| TrackedBody { body, _in_flight: in_flight })))
            }
            Poll::Ready(Err(never)) => match never {},
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A response body that keeps its request in flight until it is dropped.
#[derive(Debug)]
pub struct TrackedBody {
    body: ReportedBody,
    _in_flight: Option<InFlight>,
}

impl Body for TrackedBody {
    type Data = bytes::Bytes;
    type Error = <ReportedBody as Body>::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn no_first_request_by_the_deadline_expires_the_watch() {
        let activity = Activity::new();
        let start = Instant::now();
        let mut watch =
            IdleWatch::new(Arc::clone(&activity), Some(start + Duration::from_millis(80)), Duration::from_secs(60));
        assert_eq!(watch.expired().await, Idle::NoFirstRequest);
        assert!(start.elapsed() >= Duration::from_millis(80));
    }

    #[tokio::test]
    async fn a_request_in_flight_holds_the_connection_and_idleness_counts_from_its_end() {
        let activity = Activity::new();
        let start = Instant::now();
        let idle = Duration::from_millis(150);
        let mut watch = IdleWatch::new(Arc::clone(&activity), Some(start + Duration::from_millis(50)), idle);
        let request = activity.begin();
        let held = tokio::time::timeout(Duration::from_millis(300), watch.expired()).await;
        assert!(held.is_err(), "a request in flight is activity");
        drop(request);
        let ended = Instant::now();
        assert_eq!(watch.expired().await, Idle::IdleTimeout);
        assert!(ended.elapsed() >= idle, "idle counted from the end of the last request");
        assert!(ended.elapsed() < idle * 4);
    }

    #[tokio::test]
    async fn an_early_first_request_is_followed_by_the_idle_timeout_not_the_first_request_deadline() {
        let activity = Activity::new();
        let start = Instant::now();
        let idle = Duration::from_millis(100);
        let mut watch = IdleWatch::new(Arc::clone(&activity), Some(start + Duration::from_secs(30)), idle);
        drop(activity.begin());
        assert_eq!(watch.expired().await, Idle::IdleTimeout);
        assert!(start.elapsed() >= idle && start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
    }

    #[tokio::test]
    async fn requests_served_before_the_watch_start_it_idle() {
        let activity = Activity::new();
        let start = Instant::now();
        let mut watch = IdleWatch::new(activity, None, Duration::from_millis(60));
        assert_eq!(watch.expired().await, Idle::IdleTimeout);
        assert!(start.elapsed() >= Duration::from_millis(60));
    }
}

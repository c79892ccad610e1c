//! Phase 9, **respond**: the request's id (`X-Request-Id`, taken from the caller or generated, on the request
//! upstream and on the response); the *rescue*, the one call site where a [`GatewayError`] becomes a response,
//! so no error ever drops a connection; a HEAD request answered by the gateway itself gets the head alone; one
//! access-log line per request. [`ReportedBody`] and [`log_broken_body`] name the request in the log should a
//! response body break off after its head left.

use std::pin::Pin;
use std::time::Instant;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_LENGTH};
use http::{Method, Request, Response};

use crate::body::{ResponseBody, ResponseBodyError};
use crate::error::GatewayError;
use penghubung_audit::sanitise as redact;
use penghubung_metrics::Metrics;
use penghubung_upstream::body::Inbound;
use penghubung_upstream::headers::{self, X_REQUEST_ID};
use penghubung_upstream::Downstream;

use crate::context::RequestContext;
use crate::shared::Shared;

/// The request's id: the caller's `X-Request-Id` when it is usable, else a new one; set on the request.
pub(super) fn request_id(request: &mut Request<Inbound>) -> HeaderValue {
    let request_id = headers::request_id(request.headers());
    request.headers_mut().insert(X_REQUEST_ID, request_id.clone());
    request_id
}

/// Rescue: the only place an error becomes a response.
pub(super) fn rescue(error: GatewayError, request_id: &HeaderValue) -> Response<ResponseBody> {
    error.into_response(request_id)
}

/// Finishes the response: HEAD without the body of the gateway's own answers, `X-Request-Id`, and the
/// access-log line.
pub(super) fn respond(
    shared: &Shared,
    downstream: &Downstream,
    context: &RequestContext<'_>,
    response: &mut Response<ResponseBody>,
    method: &Method,
    request_id: &HeaderValue,
    started: Instant,
) {
    if *method == Method::HEAD && context.upstream.is_none() {
        // The gateway's own answer (health, discovery, a problem) to HEAD: its head alone, on every transport.
        without_body(response);
    }
    response.headers_mut().insert(X_REQUEST_ID, request_id.clone());
    if shared.access_log {
        // The caller's values pass the sanitiser (an unknown method is `-`: its token is never written).
        let key = redact::key_of(shared.audit.as_deref());
        let (logged_id, purpose) = (
            redact::clean_header(key, request_id),
            context.purpose.as_ref().and_then(|p| redact::clean_header(key, p)),
        );
        tracing::info!(
            target: "penghubung::access",
            request_id = logged_id.as_deref().unwrap_or("-"),
            peer = %downstream.peer.ip(),
            client = context.client.as_ref().and_then(|c| c.to_str().ok()).unwrap_or("-"),
            method = %redact::method_label(method),
            service = context.service.as_deref().unwrap_or("-"),
            operation = context.operation.as_deref().unwrap_or("-"),
            purpose = purpose.as_deref().unwrap_or("-"),
            status = response.status().as_u16(),
            code = context.code.unwrap_or("-"),
            latency_us = started.elapsed().as_micros() as u64,
            upstream = context.upstream.as_deref().unwrap_or("-"),
        );
    }
}

/// Records the finished request in the metrics (the series found in the thread's recent ones by the addresses
/// of its label values, then a few relaxed atomic increments on the thread's shard): the observation the phases
/// filled in, with the snapshot's own label values (none for what the request never reached), completed here
/// with the status, the problem's static code, the duration and the response's length.
pub(super) fn observe(
    metrics: &Metrics,
    context: &mut RequestContext<'_>,
    response: &Response<ResponseBody>,
    started: Instant,
) {
    let code = context.code;
    let Some(facts) = context.metrics.as_mut() else { return };
    let duration = facts.head_ready().saturating_duration_since(started);
    let observation = &mut facts.observation;
    observation.status = response.status().as_u16();
    observation.code = code;
    observation.duration = duration;
    observation.bytes_out = http_body::Body::size_hint(response.body()).exact().unwrap_or(0);
    metrics.observe(observation);
}

/// Drops the body of one of the gateway's own responses, keeping the length it would have had.
fn without_body(response: &mut Response<ResponseBody>) {
    if let Some(length) = http_body::Body::size_hint(response.body()).exact() {
        response.headers_mut().insert(CONTENT_LENGTH, HeaderValue::from(length));
    }
    *response.body_mut() = ResponseBody::full(Bytes::new());
}

/// The access log's line for a response whose body broke off after its head (and its access-log line) had
/// left: the caller's connection or stream is cut, and this names the request and `upstream.bad_response`.
pub fn log_broken_body(request_id: &HeaderValue, error: &ResponseBodyError) {
    tracing::warn!(
        target: "penghubung::access",
        request_id = request_id.to_str().unwrap_or("-"),
        code = "upstream.bad_response",
        %error,
        "the response body broke off; the caller's connection was cut"
    );
}

/// A response body handed to hyper: the body, and its request's id for [`log_broken_body`] should it break off.
#[derive(Debug)]
pub struct ReportedBody {
    pub(super) body: ResponseBody,
    pub(super) request_id: HeaderValue,
}

impl http_body::Body for ReportedBody {
    type Data = Bytes;
    type Error = ResponseBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, ResponseBodyError>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        if let std::task::Poll::Ready(Some(Err(error))) = &polled {
            log_broken_body(&this.request_id, error);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

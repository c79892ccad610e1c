//! Phase 6, **adapt**: a service's adapter (`[adapter]`, resolved when the snapshot was compiled) carries the
//! request to a national system whose authentication or message shape differs from plain HTTP (the national
//! SPLP, Dukcapil, BKN ...): credentials the gateway holds, tokens, headers, the target, the body; and maps that
//! system's answer back before the response contract, the redaction and the byte meter see it.
//!
//! For a service naming an adapter, [`exchange`] replaces the plain forward (phase 7) with:
//!
//! 1. the request body read whole when the adapter needs it, at most `[adapter] max_body`: a larger body (by
//!    `Content-Length`, or as it arrives) is refused with 413 **before anything is sent**; a request without a
//!    body reads nothing;
//! 2. [`Adapter::prepare`] on the head (its target relative to the upstream endpoint) and body;
//! 3. the forward, as for any service;
//! 4. on a 401 from an adapter that holds credentials: [`Adapter::unauthorized`] (cached tokens dropped), then
//!    `prepare` and the forward ONCE more with the kept body; a second 401 is `adapter.upstream_refused`;
//! 5. for an adapter that [maps answers](Adapter::maps_response), [`Adapter::map_response`] on the answer's
//!    head, and its body read whole (at most `max_body`) when the adapter needs it; any other answer passes on
//!    as it came.
//!
//! The orchestration awaits [`exchange`] boxed, and only for a service that names an adapter: a plain request
//! pays one branch and carries none of its state. Traced, each upstream call (a retry too) gets its own span
//! under the adapter's, and its context is the `traceparent` the national system receives.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::request::Parts;
use http::{Response, StatusCode};
use http_body_util::BodyExt;

use crate::authorize::Authorization;
use crate::body::ResponseBody;
use crate::error::GatewayError;
use crate::forward;
use penghubung_adapters::{Adapter, InboundResponse, OutboundRequest};
use penghubung_snapshot::CompiledService;
use penghubung_trace::{Phase, Span, Tracer};
use penghubung_upstream::body::{RequestBody, RequestBodyError};
use penghubung_upstream::Downstream;

/// The adapter of `service`, if it names one.
#[inline(always)]
pub(super) fn needed(service: &CompiledService) -> Option<&Arc<dyn Adapter>> {
    service.adapter.as_ref()
}

/// The adapter phase's span, under which each upstream call gets its own.
#[derive(Clone, Copy)]
pub(super) struct Trace<'a> {
    pub tracer: Option<&'a Tracer>,
    pub span: &'a Span,
}

impl Trace<'_> {
    /// An upstream call's span, its context set on the request's `headers`.
    fn upstream(&self, headers: &mut http::HeaderMap) -> Span {
        let span = match self.tracer {
            Some(tracer) => tracer.phase(self.span, Phase::Upstream),
            None => Span::none(),
        };
        span.inject(headers);
        span
    }
}

/// Steps 1–5 of the module documentation: the upstream's answer, mapped back, and the endpoint used.
#[allow(clippy::too_many_arguments)]
pub(super) async fn exchange(
    adapter: &dyn Adapter,
    service: &CompiledService,
    mut parts: Parts,
    body: RequestBody,
    rest_offset: usize,
    downstream: &Downstream,
    authorization: &Authorization<'_>,
    trace: Trace<'_>,
) -> Result<(Response<ResponseBody>, Arc<str>), GatewayError> {
    let limit = service.adapter_max_body;
    parts.uri = upstream_target(&parts.uri, rest_offset)?;
    // 1. the body, read whole when the adapter needs it (or to send it again after a 401)
    // (a request without a body, the usual GET, reads nothing: no timer, no collect)
    let (bytes, mut stream) = if http_body::Body::is_end_stream(&body) {
        (Bytes::new(), None)
    } else if adapter.needs_request_body() {
        (read_request_body(&parts, body, service, limit, downstream).await?, None)
    } else {
        (Bytes::new(), Some(body))
    };
    let retry = adapter.retry_on_unauthorized() && stream.is_none();
    let kept = retry.then(|| (copy_head(&parts), bytes.clone()));
    // 2.-3.
    let mut request = OutboundRequest { head: parts, body: bytes };
    adapter.prepare(&mut request).await?;
    let (mut response, mut upstream) = send(service, request, stream.take(), downstream, authorization, trace).await?;
    // 4. one more try with fresh credentials after a 401
    if response.status() == StatusCode::UNAUTHORIZED && adapter.retry_on_unauthorized() {
        adapter.unauthorized();
        let Some((head, body)) = kept else {
            return Err(refused(
                adapter,
                "the national system answered 401 and the streamed request cannot be sent again",
            ));
        };
        drop(response);
        let mut request = OutboundRequest { head, body };
        adapter.prepare(&mut request).await?;
        (response, upstream) = send(service, request, None, downstream, authorization, trace).await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            adapter.unauthorized();
            return Err(refused(adapter, "the national system answered 401 to fresh credentials"));
        }
    }
    // 5. the answer, mapped back
    let response = map_response(adapter, response, limit).await?;
    Ok((response, upstream))
}

/// Sends a prepared request: its buffered body (with a `Content-Length` to match), or the caller's stream.
async fn send(
    service: &CompiledService,
    request: OutboundRequest,
    stream: Option<RequestBody>,
    downstream: &Downstream,
    authorization: &Authorization<'_>,
    trace: Trace<'_>,
) -> Result<(Response<penghubung_upstream::response::UpstreamBody>, Arc<str>), GatewayError> {
    let OutboundRequest { mut head, body } = request;
    let span = trace.upstream(&mut head.headers);
    let body = match stream {
        Some(stream) => stream,
        None => {
            head.headers.remove(TRANSFER_ENCODING);
            if !body.is_empty() || head.headers.contains_key(CONTENT_LENGTH) {
                head.headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
            }
            RequestBody::buffered(body, None)
        }
    };
    // The target is already relative to the endpoint: the rest starts at its first byte.
    let forwarded =
        forward::forward(service, head, body, 0, downstream, authorization, tokio::time::Instant::now()).await;
    forwarded.map_err(|error| {
        let error = GatewayError::from(error);
        span.fail(error.code());
        error
    })
}

fn refused(adapter: &dyn Adapter, detail: &str) -> GatewayError {
    GatewayError::AdapterRefused { adapter: adapter.name(), detail: detail.to_string() }
}

/// The request's target relative to the upstream endpoint: the path after `/{opd}/{service}/v{n}` (`/` when
/// empty) and the query, keeping the scheme and authority an HTTP/2 request carries.
fn upstream_target(uri: &http::Uri, rest_offset: usize) -> Result<http::Uri, GatewayError> {
    let rest = uri.path().get(rest_offset..).unwrap_or("");
    let mut target = String::with_capacity(rest.len() + uri.query().map_or(0, |q| q.len() + 1) + 1);
    target.push_str(if rest.is_empty() { "/" } else { rest });
    if let Some(query) = uri.query() {
        target.push('?');
        target.push_str(query);
    }
    let invalid = || GatewayError::InvalidPath { reason: "the path cannot be forwarded" };
    let mut parts = http::uri::Parts::default();
    parts.scheme = uri.scheme().cloned();
    parts.authority = uri.authority().cloned();
    parts.path_and_query = Some(target.parse().map_err(|_| invalid())?);
    http::Uri::from_parts(parts).map_err(|_| invalid())
}

/// A copy of a request head (method, target, version, fields), to prepare the request again.
fn copy_head(parts: &Parts) -> Parts {
    let (mut copy, ()) = http::Request::new(()).into_parts();
    copy.method = parts.method.clone();
    copy.uri = parts.uri.clone();
    copy.version = parts.version;
    copy.headers = parts.headers.clone();
    copy
}

/// Reads the request body whole, at most `limit` bytes (and the service's own limit), within the request
/// timeout: 413 before anything is sent when it is larger (by `Content-Length` without reading it).
async fn read_request_body(
    parts: &Parts,
    body: RequestBody,
    service: &CompiledService,
    limit: u64,
    downstream: &Downstream,
) -> Result<Bytes, GatewayError> {
    let declared = parts.headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(GatewayError::BodyTooLarge { limit });
    }
    let limited = http_body_util::Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX));
    let timeout = service.upstream.pool.spec.request_timeout.min(downstream.body_timeout());
    match tokio::time::timeout(timeout, limited.collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(GatewayError::BodyTooLarge { limit }),
        Ok(Err(e)) => Err(match e.downcast_ref::<RequestBodyError>() {
            Some(RequestBodyError::TooLarge { limit }) => GatewayError::BodyTooLarge { limit: *limit },
            Some(RequestBodyError::TimedOut { timeout }) => GatewayError::BodyTimeout { timeout: *timeout },
            _ => GatewayError::BodyIncomplete { reason: e.to_string() },
        }),
        Err(_) => Err(GatewayError::BodyTimeout { timeout }),
    }
}

/// The adapter's mapping of the upstream's answer; its body read whole (at most `limit`) when it needs it.
async fn map_response(
    adapter: &dyn Adapter,
    response: Response<penghubung_upstream::response::UpstreamBody>,
    limit: u64,
) -> Result<Response<ResponseBody>, GatewayError> {
    if !adapter.maps_response() {
        return Ok(response.map(ResponseBody::Upstream));
    }
    let (head, body) = response.into_parts();
    if !adapter.needs_response_body() {
        let mut inbound = InboundResponse { head, body: Bytes::new() };
        adapter.map_response(&mut inbound).await?;
        return Ok(Response::from_parts(inbound.head, ResponseBody::Upstream(body)));
    }
    let limited = http_body_util::Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX));
    let bytes = limited.collect().await.map_err(|e| {
        let detail = if e.is::<http_body_util::LengthLimitError>() {
            format!("the national system's answer is larger than the adapter's limit of {limit} bytes")
        } else {
            "the national system's answer broke off".to_string()
        };
        GatewayError::AdapterMappingFailed { adapter: adapter.name(), detail }
    })?;
    let mut inbound = InboundResponse { head, body: bytes.to_bytes() };
    adapter.map_response(&mut inbound).await?;
    let InboundResponse { mut head, body } = inbound;
    head.headers.remove(TRANSFER_ENCODING);
    head.headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    Ok(Response::from_parts(head, ResponseBody::full(body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_adapter_sees_the_target_relative_to_the_upstream_endpoint() {
        let cases = [
            ("/dinkes/nasional/v1", 19, "/"),
            ("/dinkes/nasional/v1/", 19, "/"),
            ("/dinkes/nasional/v1/a/b?x=1&y", 19, "/a/b?x=1&y"),
            ("/dinkes/nasional/v1?x=1", 19, "/?x=1"),
            ("https://gw.example:8443/dinkes/nasional/v1/a", 19, "https://gw.example:8443/a"),
        ];
        for (uri, offset, expected) in cases {
            let target = upstream_target(&uri.parse().unwrap(), offset).unwrap();
            assert_eq!(target.to_string(), expected, "{uri}");
        }
    }

    #[test]
    fn a_copied_head_keeps_method_target_version_and_fields() {
        let (mut parts, ()) = http::Request::post("/x?y=1").body(()).unwrap().into_parts();
        parts.headers.insert("content-type", HeaderValue::from_static("text/xml"));
        parts.version = http::Version::HTTP_2;
        let copy = copy_head(&parts);
        assert_eq!(
            (copy.method, copy.uri, copy.version, copy.headers),
            (parts.method, parts.uri, parts.version, parts.headers)
        );
    }
}

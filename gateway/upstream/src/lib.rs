//! Forwarding to the upstream: builds the upstream request (target URI, header rules, version), picks an
//! endpoint, applies the request timeout, retries idempotent body-less requests on another endpoint when the
//! connection could not be made (so no byte reached the upstream), and feeds passive ejection. It reads only its
//! own types: the service's [`UpstreamRoute`], the [`Caller`] headers the pipeline decided on, and it fails with
//! its own [`UpstreamError`].
#![forbid(unsafe_code)]

pub mod body;
pub mod dial;
pub mod h1;
pub mod headers;
pub mod response;
pub mod upstream;

use std::error::Error as StdError;
use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use http::header::{
    HeaderName, HeaderValue, ACCEPT_ENCODING, HOST, IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE,
    IF_UNMODIFIED_SINCE, RANGE,
};
use http::{request, Request, Response, Uri, Version};

use body::{RequestBody, RequestBodyError};
use penghubung_tls::identity::PeerCertificate;
use penghubung_types::deadline::LazyTimer;
use response::UpstreamBody;
use upstream::{is_idempotent, Transport, UpstreamClient, UpstreamPool};

/// What the caller's connection looks like: its address, `http` or `https`, and (over mTLS) its verified
/// certificate, parsed once when the connection was accepted.
#[derive(Clone, Debug)]
pub struct Downstream {
    pub peer: SocketAddr,
    pub certificate: Option<Arc<PeerCertificate>>,
    forwarded: headers::ForwardedFor,
    /// A request body streamed to the upstream must arrive whole within this (`server.request_body_timeout`).
    body_timeout: Duration,
    /// The connection came in on a listener where the client certificate is optional: a caller without one is
    /// identified by a bearer token, and no caller's `Authorization` goes upstream.
    bearer_tokens: bool,
}

impl Downstream {
    pub fn new(peer: SocketAddr, proto: &'static str, certificate: Option<Arc<PeerCertificate>>) -> Self {
        let body_timeout = penghubung_types::config::DEFAULT_REQUEST_BODY_TIMEOUT;
        let forwarded = headers::ForwardedFor::new(peer, proto);
        Self { peer, certificate, forwarded, body_timeout, bearer_tokens: false }
    }

    /// This connection's listener takes bearer tokens (`client_certificate = "optional"`).
    pub fn with_bearer_tokens(mut self) -> Self {
        self.bearer_tokens = true;
        self
    }

    /// Whether this connection's listener takes bearer tokens.
    pub fn bearer_tokens(&self) -> bool {
        self.bearer_tokens
    }

    /// How long a request body from this caller may take in all (`server.request_body_timeout`).
    pub fn body_timeout(&self) -> Duration {
        self.body_timeout
    }

    /// Request bodies from this caller must arrive whole within `timeout` once forwarding starts.
    pub fn with_body_timeout(mut self, timeout: Duration) -> Self {
        self.body_timeout = timeout;
        self
    }
}

/// What forwarding needs of a service, compiled once per snapshot.
#[derive(Debug)]
pub struct UpstreamRoute {
    /// The service's key (`{opd}/{name}/v{version}`), for errors and logs.
    pub service: Arc<str>,
    /// Its upstream endpoints and how to reach them.
    pub pool: Arc<UpstreamPool>,
    /// The service's `caller_headers`: caller headers removed by default that it needs passed on.
    pub caller_headers: Box<[HeaderName]>,
}

/// What the gateway tells the upstream about the caller. The pipeline builds it from the policy decision (or
/// explicitly without one when `[policy] enforce = false`), never from the request's own headers. It borrows
/// the header values, computed once per snapshot.
#[derive(Clone, Debug)]
pub struct Caller<'a> {
    /// `X-Penghubung-Client` and `X-Penghubung-Opd` of the identified client.
    identity: Option<(&'a HeaderValue, &'a HeaderValue)>,
    /// The validated purpose of use.
    purpose: Option<&'a HeaderValue>,
    /// The response will be filtered field by field: ask the upstream for a whole, uncompressed, unconditional
    /// body (the caller's range and conditional headers are not forwarded).
    filtered: bool,
}

impl<'a> Caller<'a> {
    /// A caller the policy admitted: its identity (`X-Penghubung-Client`, `X-Penghubung-Opd`), the validated
    /// `purpose`, and whether its response will be `filtered`.
    pub fn decided(
        client: &'a HeaderValue,
        opd: &'a HeaderValue,
        purpose: Option<&'a HeaderValue>,
        filtered: bool,
    ) -> Self {
        Caller { identity: Some((client, opd)), purpose, filtered }
    }

    /// A caller forwarded without any decision (`[policy] enforce = false`): identity headers only, when known.
    pub fn undecided(identity: Option<(&'a HeaderValue, &'a HeaderValue)>) -> Self {
        Caller { identity, purpose: None, filtered: false }
    }
}

/// Why forwarding failed. The pipeline maps each onto its problem response.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("the upstream of {service} is unavailable: {reason}")]
    Unavailable { service: String, reason: String },
    #[error("the upstream of {service} did not accept a connection within {timeout:?}")]
    ConnectTimeout { service: String, timeout: Duration },
    #[error("the upstream of {service} did not answer within {timeout:?}")]
    Timeout { service: String, timeout: Duration },
    #[error("the upstream of {service} sent a response the gateway could not use")]
    BadResponse { service: String },
    #[error("the TLS connection to the upstream of {service} failed verification or negotiation")]
    Tls { service: String },
    /// The caller's request path cannot be written as an upstream target.
    #[error("the request path is not acceptable: {reason}")]
    InvalidPath { reason: &'static str },
    /// The caller's body went over the service's limit.
    #[error("the request body is larger than the limit of {limit} bytes for this service")]
    BodyTooLarge { limit: u64 },
    /// The caller's body broke off.
    #[error("the request body could not be read completely: {reason}")]
    BodyIncomplete { reason: String },
    /// The caller's body did not arrive in time.
    #[error("the request body did not arrive within {timeout:?}")]
    BodyTimeout { timeout: Duration },
}

/// Forwards `parts` + `body` to the service's upstream. `rest_offset` is where the path after `/v{n}` starts in
/// the request path. `started` is when the caller began the exchange (it read the clock once, to time the
/// exchange as well): the first attempt's request timeout counts from it, a retry's from its own start. On
/// success returns the upstream response (hop-by-hop headers removed) and the endpoint used.
pub async fn forward(
    route: &UpstreamRoute,
    mut parts: request::Parts,
    mut body: RequestBody,
    rest_offset: usize,
    downstream: &Downstream,
    caller: Caller<'_>,
    started: tokio::time::Instant,
) -> Result<(Response<UpstreamBody>, Arc<str>), UpstreamError> {
    let pool = &route.pool;
    body.limit_duration(downstream.body_timeout);
    let original_uri = parts.uri.clone(); // cheap: shared bytes
    let rest = &original_uri.path()[rest_offset..];
    let query = original_uri.query();
    let original_host = headers::original_host(&parts.headers, &parts.uri);
    caller_headers_for_upstream(&mut parts.headers, route, caller);
    let forwarding = headers::Forwarding::new(&downstream.forwarded, original_host.as_ref());
    let trace = headers::trace_to_start(&mut parts.headers);
    set_protocol_head(&mut parts, pool.http2, &forwarding, trace.as_ref());

    let retryable = is_idempotent(&parts.method) && http_body::Body::is_end_stream(&body);
    let attempts = if retryable { 1 + pool.spec.upstream.retries as usize } else { 1 }.min(MAX_ATTEMPTS);
    let mut tried = [usize::MAX; MAX_ATTEMPTS];
    let mut tries = 0;
    let mut body = Some(body);

    loop {
        let index = pool.pick(&tried[..tries]).ok_or_else(|| no_endpoint(route))?;
        tried[tries] = index;
        tries += 1;
        let endpoint = &pool.endpoints[index];
        let last_attempt = tries >= attempts || tries >= pool.endpoints.len();
        let body = body.take().unwrap_or_else(RequestBody::empty);
        let _in_flight = pool.start(index);
        // The HTTP/1.1 exchange is awaited right here, not through a wrapper future: every layer would store the
        // request again and move the whole state once more per request. It reads the head from `parts` (not
        // moved, not cloned for a retry) and writes the target from `rest` and `query` straight into the request
        // line. Its deadline is watched by the pooled connection's own timer (no timer set per request).
        let outcome = match &pool.transport {
            Transport::Http1(dialer) => {
                let fields = h1::GatewayFields { rest, query, forwarding, trace: trace.as_ref() };
                let attempt_started = if tries == 1 { started } else { tokio::time::Instant::now() };
                let deadline = attempt_started + pool.spec.request_timeout;
                http1_outcome(route, h1::send(pool, dialer, index, &parts, body, fields, deadline).await)
            }
            Transport::Http2(client) => {
                let uri = upstream_uri(endpoint, rest, query)?;
                let mut head = if last_attempt {
                    std::mem::replace(&mut parts, Request::new(()).into_parts().0)
                } else {
                    clone_parts(&parts)
                };
                head.uri = uri;
                let mut body = body;
                let upload = (!http_body::Body::is_end_stream(&body)).then(|| body.watch_upload());
                let exchange = http2_exchange(route, client, Request::from_parts(head, body));
                let timeout = pool.spec.request_timeout;
                match upload {
                    None => Box::pin(tokio::time::timeout(timeout, exchange)).await.unwrap_or(Err(Failure::Timeout)),
                    Some(upload) => Box::pin(timed_upload(exchange, &upload, timeout, downstream.body_timeout)).await,
                }
            }
        };
        match outcome {
            Ok(mut response) => {
                accept_response(pool, index, &mut response);
                return Ok((response, endpoint.label.clone()));
            }
            Err(Failure::Request(error)) => return Err(error),
            Err(Failure::Upstream { error, nothing_sent }) => {
                pool.record_failure(index);
                if nothing_sent && !last_attempt {
                    tracing::debug!(service = %route.service, endpoint = %endpoint.label, "connect failed, retrying on another endpoint");
                    continue;
                }
                return Err(error);
            }
            Err(Failure::Timeout) => return Err(timed_out(route, index)),
        }
    }
}

/// Prepares the caller's header fields for the upstream: scrubs what the service does not accept from callers,
/// adds the caller's identity and purpose, and for a filtered response asks for an unencoded, whole body.
#[inline]
fn caller_headers_for_upstream(fields: &mut http::HeaderMap, route: &UpstreamRoute, caller: Caller<'_>) {
    headers::scrub_request(fields, &route.caller_headers);
    if let Some((client, opd)) = caller.identity {
        fields.insert(headers::X_PENGHUBUNG_CLIENT, client.clone());
        fields.insert(headers::X_PENGHUBUNG_OPD, opd.clone());
    }
    if let Some(purpose) = caller.purpose {
        fields.insert(headers::X_PENGHUBUNG_PURPOSE, purpose.clone());
    }
    if caller.filtered {
        fields.insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
        for name in [RANGE, IF_RANGE, IF_MATCH, IF_NONE_MATCH, IF_MODIFIED_SINCE, IF_UNMODIFIED_SINCE] {
            fields.remove(name);
        }
    }
}

/// Sets the head's version for the upstream's protocol; for HTTP/2 also writes the forwarding fields and a
/// started trace into the head and drops `Host`.
#[inline]
fn set_protocol_head(
    parts: &mut request::Parts,
    http2: bool,
    forwarding: &headers::Forwarding<'_>,
    trace: Option<&headers::NewTrace>,
) {
    if http2 {
        forwarding.insert(&mut parts.headers);
        if let Some(trace) = trace {
            parts.headers.insert(headers::TRACEPARENT, trace.to_header_value());
        }
        parts.headers.remove(HOST); // HTTP/2 carries the authority in the URI
    } // HTTP/1.1: the client writes the forwarding fields, a started trace and the endpoint's `Host` into the head
    parts.version = if http2 { Version::HTTP_2 } else { Version::HTTP_11 };
}

/// Records the endpoint's answer (a 502..=504 counts as its failure) and makes the response fit to pass on:
/// hop-by-hop fields removed, no length on a status that never carries a body.
#[inline]
fn accept_response(pool: &UpstreamPool, index: usize, response: &mut Response<UpstreamBody>) {
    let status = response.status();
    if matches!(status.as_u16(), 502..=504) {
        pool.record_failure(index);
    } else {
        pool.record_success(index);
    }
    headers::remove_hop_by_hop(response.headers_mut());
    if status == http::StatusCode::NO_CONTENT || status == http::StatusCode::NOT_MODIFIED || status.is_informational() {
        // These never carry a body: a length would announce one (HTTP/1.1 callers would wait for
        // it, HTTP/2 callers' streams would be reset).
        response.headers_mut().remove(http::header::CONTENT_LENGTH);
    }
}

/// No endpoint of the service is left to try.
fn no_endpoint(route: &UpstreamRoute) -> UpstreamError {
    UpstreamError::Unavailable { service: route.service.to_string(), reason: "no endpoint is available".into() }
}

/// The endpoint at `index` did not answer within the service's request timeout: recorded as its failure.
fn timed_out(route: &UpstreamRoute, index: usize) -> UpstreamError {
    let pool = &route.pool;
    pool.record_failure(index);
    UpstreamError::Timeout { service: route.service.to_string(), timeout: pool.spec.request_timeout }
}

/// Why one exchange with one endpoint failed.
enum Failure {
    /// The caller's request is at fault (body too large or broken off): not the endpoint's failure.
    Request(UpstreamError),
    /// The endpoint failed; `nothing_sent` when no byte of the request reached it (safe to try another).
    Upstream { error: UpstreamError, nothing_sent: bool },
    /// No response head within the service's request timeout.
    Timeout,
}

/// What an HTTP/1.1 exchange came to.
fn http1_outcome(
    route: &UpstreamRoute,
    sent: Result<Response<h1::PooledBody>, h1::SendError>,
) -> Result<Response<UpstreamBody>, Failure> {
    match sent {
        Ok(response) => Ok(response.map(UpstreamBody::Pooled)),
        Err(h1::SendError::Connect(e)) => {
            Err(Failure::Upstream { error: map_connect_error(route, e), nothing_sent: true })
        }
        Err(h1::SendError::Exchange(h1::ExchangeError::RequestBody(e))) => Err(Failure::Request(body_fault(&e))),
        Err(h1::SendError::Timeout) => Err(Failure::Timeout),
        // The caller's fault, not the endpoint's: no failure is recorded against it.
        Err(h1::SendError::CallerStalled(timeout)) => Err(Failure::Request(UpstreamError::BodyTimeout { timeout })),
        Err(h1::SendError::Exchange(e)) => {
            tracing::debug!(service = %route.service, error = %e, "upstream exchange failed");
            Err(Failure::Upstream {
                error: UpstreamError::BadResponse { service: route.service.to_string() },
                nothing_sent: false,
            })
        }
    }
}

/// An HTTP/2 exchange with a request body, timed as the HTTP/1.1 client times one: while the body is sent,
/// each pause may last the request timeout; the wait for the answer starts once it was all sent. A timeout
/// while the body waits for the caller is the caller's (408 `request.body_timeout`), not the endpoint's; so is
/// an exchange that failed because the body did not arrive whole within `body_timeout` (hyper reports it as a
/// failed exchange, without the body's error).
async fn timed_upload(
    exchange: impl Future<Output = Result<Response<UpstreamBody>, Failure>>,
    upload: &body::UploadProgress,
    timeout: Duration,
    body_timeout: Duration,
) -> Result<Response<UpstreamBody>, Failure> {
    let mut exchange = pin!(exchange);
    let mut timer = LazyTimer::default();
    poll_fn(|cx| {
        if let Poll::Ready(done) = exchange.as_mut().poll(cx) {
            return Poll::Ready(match done {
                Err(Failure::Upstream { .. }) if upload.body_timed_out() => {
                    Err(Failure::Request(UpstreamError::BodyTimeout { timeout: body_timeout }))
                }
                done => done,
            });
        }
        if timer.poll_expired(upload.deadline(timeout), cx) {
            return Poll::Ready(Err(if upload.waiting_for_caller() {
                Failure::Request(UpstreamError::BodyTimeout { timeout })
            } else {
                Failure::Timeout
            }));
        }
        Poll::Pending
    })
    .await
}

/// One request to an HTTP/2 endpoint, through hyper's pooled client.
async fn http2_exchange(
    route: &UpstreamRoute,
    client: &UpstreamClient,
    request: Request<RequestBody>,
) -> Result<Response<UpstreamBody>, Failure> {
    match client.request(request).await {
        Ok(response) => {
            let timeout = route.pool.spec.request_timeout;
            Ok(response.map(|incoming| UpstreamBody::Http2(Box::new(response::Http2Body::new(incoming, timeout)))))
        }
        Err(e) => Err(request_fault(&e)
            .map(Failure::Request)
            .unwrap_or_else(|| Failure::Upstream { error: map_client_error(route, &e), nothing_sent: e.is_connect() })),
    }
}

/// A failure caused by the caller's body, found anywhere in the error chain.
fn request_fault(error: &(dyn StdError + 'static)) -> Option<UpstreamError> {
    find_source::<RequestBodyError>(error).map(body_fault)
}

/// What the caller is told when its own body failed.
fn body_fault(error: &RequestBodyError) -> UpstreamError {
    match error {
        RequestBodyError::TooLarge { limit } => UpstreamError::BodyTooLarge { limit: *limit },
        RequestBodyError::TimedOut { timeout } => UpstreamError::BodyTimeout { timeout: *timeout },
        RequestBodyError::Client(e) => UpstreamError::BodyIncomplete { reason: e.to_string() },
    }
}

fn map_connect_error(route: &UpstreamRoute, error: h1::ConnectError) -> UpstreamError {
    let key = route.service.to_string();
    match error {
        h1::ConnectError::Timeout => {
            UpstreamError::ConnectTimeout { service: key, timeout: route.pool.spec.connect_timeout }
        }
        h1::ConnectError::Tls(e) => {
            tracing::warn!(service = %key, error = %e, "upstream TLS failed");
            UpstreamError::Tls { service: key }
        }
        h1::ConnectError::Io(e) => {
            tracing::debug!(service = %key, error = %e, "upstream connection failed");
            UpstreamError::Unavailable { service: key, reason: e.kind().to_string() }
        }
    }
}

/// Upper bound of attempts per request (the schema allows at most 5 retries).
const MAX_ATTEMPTS: usize = 6;

fn clone_parts(parts: &request::Parts) -> request::Parts {
    let mut head = Request::new(()).into_parts().0;
    head.method = parts.method.clone();
    head.uri = parts.uri.clone();
    head.version = parts.version;
    head.headers = parts.headers.clone();
    head
}

/// `scheme://authority/base/rest?query`: the target of a request to an HTTP/2 endpoint.
fn upstream_uri(endpoint: &upstream::Endpoint, rest: &str, query: Option<&str>) -> Result<Uri, UpstreamError> {
    let mut path = String::with_capacity(endpoint.base_path.len() + rest.len() + query.map_or(0, |q| q.len() + 1) + 1);
    path.push_str(&endpoint.base_path);
    if rest.is_empty() {
        path.push('/');
    } else {
        path.push_str(rest);
    }
    if let Some(q) = query {
        path.push('?');
        path.push_str(q);
    }
    let invalid = |_| UpstreamError::InvalidPath { reason: "the path cannot be forwarded" };
    let path_and_query = http::uri::PathAndQuery::try_from(path).map_err(invalid)?;
    Uri::builder()
        .scheme(endpoint.scheme.clone())
        .authority(endpoint.authority.clone())
        .path_and_query(path_and_query)
        .build()
        .map_err(|_| UpstreamError::InvalidPath { reason: "the path cannot be forwarded" })
}

fn map_client_error(route: &UpstreamRoute, error: &hyper_util::client::legacy::Error) -> UpstreamError {
    let key = route.service.to_string();
    if is_tls_failure(error) {
        tracing::warn!(service = %key, error = %error_chain(error), "upstream TLS failed");
        return UpstreamError::Tls { service: key };
    }
    if error.is_connect() {
        let timed_out = find_source::<std::io::Error>(error).is_some_and(|e| e.kind() == std::io::ErrorKind::TimedOut)
            || chain_mentions(error, "timed out");
        if timed_out {
            return UpstreamError::ConnectTimeout { service: key, timeout: route.pool.spec.connect_timeout };
        }
        tracing::debug!(service = %key, error = %error_chain(error), "upstream connection failed");
        let reason = find_source::<std::io::Error>(error)
            .map(|e| e.kind().to_string())
            .unwrap_or_else(|| "connection failed".into());
        return UpstreamError::Unavailable { service: key, reason };
    }
    tracing::debug!(service = %key, error = %error_chain(error), "upstream exchange failed");
    UpstreamError::BadResponse { service: key }
}

/// Whether a rustls error is anywhere in the chain. `io::Error` hides what it wraps from `source()` (and
/// hyper-rustls wraps io errors in io errors), so io errors are opened with `get_ref()`.
fn is_tls_failure(error: &(dyn StdError + 'static)) -> bool {
    let mut current: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(e) = current {
        if e.is::<rustls::Error>() {
            return true;
        }
        current = match e.downcast_ref::<std::io::Error>() {
            Some(io) => io.get_ref().map(|inner| inner as &(dyn StdError + 'static)),
            None => e.source(),
        };
    }
    false
}

fn find_source<'a, T: StdError + 'static>(error: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut current: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

fn chain_mentions(error: &(dyn StdError + 'static), needle: &str) -> bool {
    let mut current: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(e) = current {
        if e.to_string().contains(needle) {
            return true;
        }
        current = e.source();
    }
    false
}

fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut current = error.source();
    while let Some(e) = current {
        text.push_str(": ");
        text.push_str(&e.to_string());
        current = e.source();
    }
    text
}

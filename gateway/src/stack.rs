//! The request pipeline, outside in, as DESIGN.md draws it: limits on the request head → gateway endpoints
//! (`/_penghubung/...`) → route → proxy. [`GatewayService`] is what hyper calls per request; it is also the
//! *Rescue* step: the one call site where a [`GatewayError`] becomes a response, so no error ever drops a
//! connection. One access-log line per request. Between route and proxy sits the policy decision
//! ([`crate::policy`]): no [`crate::policy::Permit`], no upstream call; then the rate limits
//! ([`crate::ratelimit`]): the permit's grant tier, the client, its OPD's bandwidth and the service, or, with
//! `[policy] enforce = false` (no permit, no trustworthy caller), the service limit only. With an audit trail
//! ([`crate::audit`]), [`handle`] also turns the same [`Exchange`] into one audit record per request, allowed
//! or denied: the request body is tapped on its way upstream, the response body is wrapped on its way out, and
//! the record is completed (and for `sync` services made durable before the end of the response is released)
//! when the response body ends.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::audit::nik::NikScanner;
use crate::audit::record::ExchangeRecord;
use crate::audit::tap::{AuditedBody, RequestOutcome, RequestTap, SharedOutcome};
use crate::audit::{AuditDurability, Auditor};
use crate::contract::{self, OperationContract};
use crate::error::GatewayError;
use crate::policy;
use crate::proxy::body::{Inbound, RequestBody};
use crate::proxy::body::{ResponseBody, ResponseBodyError};
use crate::proxy::headers::{self, X_PENGHUBUNG_PURPOSE, X_REQUEST_ID};
use crate::proxy::{self, Caller, Downstream};
use crate::ratelimit::{MeteredBody, RateLimiter, RequestLimits};
use crate::routing::split_service_path;
use crate::snapshot::CompiledService;
use crate::snapshot::{ClientEntry, Snapshot, SnapshotCell};
use crate::store::documents::ResponseCheck;
use crate::telemetry::redact;
use crate::tls::identity::PeerCertificate;
use crate::tls::material::TlsState;
use http_body_util::BodyExt;

/// Prefix of the gateway's own endpoints (OPD ids cannot start with `_`).
pub const GATEWAY_PATH_PREFIX: &str = "/_penghubung/";

/// Limits checked on the request head.
#[derive(Clone, Copy, Debug)]
pub struct HeadLimits {
    pub max_header_bytes: usize,
    pub max_uri_bytes: usize,
    /// Largest upstream response read whole to check it against its contract.
    pub max_checked_response: u64,
}

/// State shared by every connection.
#[derive(Debug)]
pub struct Shared {
    pub snapshot: Arc<SnapshotCell>,
    pub limits: HeadLimits,
    pub access_log: bool,
    /// The data plane's TLS material (CRLs are checked per request); `None` when every listener is plaintext.
    pub tls: Option<Arc<TlsState>>,
    pub policy: PolicySettings,
    /// Rate limits: in process, or shared through Redis.
    pub ratelimit: RateLimiter,
    /// The audit trail, when on.
    pub audit: Option<Arc<Auditor>>,
}

/// How the policy step runs.
#[derive(Clone, Copy, Debug)]
pub struct PolicySettings {
    /// `false` only for measuring the bare proxy: no decision at all.
    pub enforce: bool,
    /// Largest response buffered for field redaction.
    pub max_redacted_body: u64,
}

/// The per-connection hyper service.
#[derive(Clone, Debug)]
pub struct GatewayService {
    shared: Arc<Shared>,
    downstream: Downstream,
}

impl GatewayService {
    pub fn new(shared: Arc<Shared>, downstream: Downstream) -> Self {
        Self { shared, downstream }
    }

    /// Answers one request: what hyper's [`hyper::service::Service::call`] does, for the gateway's own HTTP/1.1
    /// server, which polls the future in place (no box, no clone of the connection's state). Also returns the
    /// request id, for [`log_broken_body`] should the body break off after the head was logged.
    pub fn respond(
        &self,
        request: Request<Inbound>,
    ) -> impl Future<Output = (Response<ResponseBody>, HeaderValue)> + Send + '_ {
        handle(&self.shared, &self.downstream, request)
    }
}

impl hyper::service::Service<Request<Incoming>> for GatewayService {
    type Response = Response<ReportedBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let request = request.map(Inbound::Hyper);
        // One allocation per request: the request's whole future, built once and moved into the box once. Steps
        // that not every request takes (contracts, redaction, the audit trail, Redis limits, connecting upstream)
        // are boxed where they are awaited, so that no request moves their state (see `future_sizes` below).
        let service = self.clone();
        Box::pin(async move {
            let (response, request_id) = handle(&service.shared, &service.downstream, request).await;
            Ok(response.map(|body| ReportedBody { body, request_id }))
        })
    }
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
    body: ResponseBody,
    request_id: HeaderValue,
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

/// What the access log (and the audit record) says about an exchange.
#[derive(Default)]
struct Exchange {
    client: Option<HeaderValue>,
    service: Option<Arc<str>>,
    /// `GET /pasien/{id}` (access log).
    operation: Option<Arc<str>>,
    upstream: Option<Arc<str>>,
    code: Option<&'static str>,
    purpose: Option<HeaderValue>,
    /// Set only when auditing: what the record needs beyond the access log.
    audit: Option<Box<AuditFacts>>,
}

/// Largest response body (by its `Content-Length`) that a `sync` exchange reads ahead before releasing the head.
const READ_AHEAD_MAX: u64 = 64 * 1024;

/// SHA-256 of the empty body.
const EMPTY_SHA256: [u8; 32] = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41,
    0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// The audit record's facts gathered on the way in.
struct AuditFacts {
    time: SystemTime,
    traceparent: Option<HeaderValue>,
    opd: Option<HeaderValue>,
    operation_id: Option<Arc<str>>,
    /// The operation's path template (`None` for a pass-through service).
    path: Option<Arc<str>>,
    durability: AuditDurability,
    /// How long a `sync` exchange may wait for the first frame of a small response body (the service's request
    /// timeout), see [`AuditedBody::read_ahead`].
    read_ahead_within: std::time::Duration,
    outcome: SharedOutcome,
}

impl AuditFacts {
    /// Starts the facts of a request: arrival time, the trace (started here when the caller sent none), and the
    /// NIKs of its path and query (scanned here: the raw path never reaches the record).
    fn start(auditor: &Auditor, request: &mut Request<Inbound>) -> Box<AuditFacts> {
        headers::ensure_traceparent(request.headers_mut());
        let mut scanner = NikScanner::default();
        if let Some(target) = request.uri().path_and_query() {
            scanner.feed(target.as_str().as_bytes());
            scanner.finish();
        }
        Box::new(AuditFacts {
            time: SystemTime::now(),
            traceparent: request.headers().get(headers::TRACEPARENT).cloned(),
            opd: None,
            operation_id: None,
            path: None,
            durability: auditor.default_durability,
            read_ahead_within: std::time::Duration::ZERO,
            outcome: Arc::new(Mutex::new(RequestOutcome { nik: scanner, ..RequestOutcome::default() })),
        })
    }
}

async fn handle(
    shared: &Shared,
    downstream: &Downstream,
    mut request: Request<Inbound>,
) -> (Response<ResponseBody>, HeaderValue) {
    let started = Instant::now();
    let request_id = headers::request_id(request.headers());
    request.headers_mut().insert(X_REQUEST_ID, request_id.clone());
    let method = request.method().clone();
    let mut exchange = Exchange::default();
    if let Some(auditor) = &shared.audit {
        exchange.audit = Some(AuditFacts::start(auditor, &mut request));
    }
    let mut response = match route_and_forward(shared, downstream, request, &mut exchange).await {
        Ok(response) => response,
        // Rescue: the only place an error becomes a response.
        Err(error) => {
            exchange.code = Some(error.code());
            error.into_response(&request_id)
        }
    };
    if method == Method::HEAD && exchange.upstream.is_none() {
        // The gateway's own answer (health, discovery, a problem) to HEAD: its head alone, on every transport.
        without_body(&mut response);
    }
    response.headers_mut().insert(X_REQUEST_ID, request_id.clone());
    if shared.access_log {
        // The caller's values pass the sanitiser (an unknown method is `-`: its token is never written).
        let key = redact::key_of(shared.audit.as_deref());
        let (logged_id, purpose) = (
            redact::clean_header(key, &request_id),
            exchange.purpose.as_ref().and_then(|p| redact::clean_header(key, p)),
        );
        tracing::info!(
            target: "penghubung::access",
            request_id = logged_id.as_deref().unwrap_or("-"),
            peer = %downstream.peer.ip(),
            client = exchange.client.as_ref().and_then(|c| c.to_str().ok()).unwrap_or("-"),
            method = %redact::method_label(&method),
            service = exchange.service.as_deref().unwrap_or("-"),
            operation = exchange.operation.as_deref().unwrap_or("-"),
            purpose = purpose.as_deref().unwrap_or("-"),
            status = response.status().as_u16(),
            code = exchange.code.unwrap_or("-"),
            latency_us = started.elapsed().as_micros() as u64,
            upstream = exchange.upstream.as_deref().unwrap_or("-"),
        );
    }
    if let (Some(auditor), Some(facts)) = (&shared.audit, exchange.audit.take()) {
        // Boxed, like every step that not every request takes: an inline state would be moved with every request.
        let id = request_id.clone();
        response = Box::pin(audited(auditor, response, exchange, *facts, id, method, started)).await;
    }
    (response, request_id)
}

/// Wraps the response so that its audit record is completed when the body ends. Waits for a queue slot first
/// (backpressure: records are never dropped). A refusal because the log is unavailable does not wait: when no
/// slot is free its record goes to the error log instead, loudly.
async fn audited(
    auditor: &Arc<Auditor>,
    response: Response<ResponseBody>,
    exchange: Exchange,
    facts: AuditFacts,
    request_id: HeaderValue,
    method: Method,
    started: Instant,
) -> Response<ResponseBody> {
    let refused = exchange.code == Some("audit.unavailable");
    let permit = if refused { auditor.try_reserve() } else { auditor.reserve().await };
    let (request_id_copy, service) = (request_id.clone(), exchange.service.clone());
    let record = Box::new(ExchangeRecord {
        time: facts.time,
        request_id,
        traceparent: facts.traceparent,
        client: exchange.client,
        opd: facts.opd,
        service: exchange.service,
        operation: facts.operation_id,
        method,
        path: facts.path,
        purpose: exchange.purpose,
        code: exchange.code,
        status: response.status().as_u16(),
        bytes_in: 0,
        bytes_out: 0,
        latency_us: 0,
        upstream: exchange.upstream,
        request_sha256: None,
        response_sha256: None,
        withheld: response.headers().get(policy::response::X_PENGHUBUNG_REDACTED).cloned(),
        nik: Vec::new(),
        nik_overflow: false,
        complete: false,
        durability: facts.durability,
    });
    let Some(permit) = permit else {
        let record = record.logged(auditor.nik_key());
        tracing::error!(target: "penghubung::audit", %record, "AUDIT RECORD NOT QUEUED (queue full or writer stopped): kept in this log instead");
        return response;
    };
    let sync = facts.durability == AuditDurability::Sync && !refused;
    let (parts, body) = response.into_parts();
    let empty = http_body::Body::is_end_stream(&body);
    let small = http_body::Body::size_hint(&body).exact().is_some_and(|n| n <= READ_AHEAD_MAX);
    let mut body = AuditedBody::new(body, record, permit, facts.outcome, Arc::clone(auditor), started, sync);
    if sync && small && !empty {
        let service = || service.as_deref().unwrap_or("this service").to_string();
        match tokio::time::timeout(facts.read_ahead_within, body.read_ahead()).await {
            Ok(Ok(())) | Err(_) => {} // read ahead, or still streaming after the timeout: release the head
            Ok(Err(ResponseBodyError::AuditUnavailable)) => {
                return GatewayError::AuditUnavailable { service: service() }.into_response(&request_id_copy);
            }
            Ok(Err(
                ResponseBodyError::Upstream(_)
                | ResponseBodyError::UpstreamHttp1(_)
                | ResponseBodyError::UpstreamStalled(_),
            )) => {
                return GatewayError::UpstreamBadResponse { service: service() }.into_response(&request_id_copy);
            }
        }
    }
    if empty {
        // No end to hold back: a sync exchange waits here, before the head is released.
        if let Some(durable) = body.finish_empty() {
            if !durable.await.unwrap_or(false) {
                let service = service.as_deref().unwrap_or("this service").to_string();
                return GatewayError::AuditUnavailable { service }.into_response(&request_id_copy);
            }
        }
    }
    Response::from_parts(parts, ResponseBody::Audited(Box::new(body)))
}

async fn route_and_forward(
    shared: &Shared,
    downstream: &Downstream,
    request: Request<Inbound>,
    exchange: &mut Exchange,
) -> Result<Response<ResponseBody>, GatewayError> {
    if !redact::is_known_method(request.method()) {
        return Err(GatewayError::MethodNotImplemented); // 501 before anything else (the token is never logged)
    }
    check_head(&shared.limits, &request)?;
    let path = request.uri().path();
    let snapshot = shared.snapshot.load();
    if path.starts_with(crate::discovery::PREFIX) {
        // Discovery answers per client: identify first.
        let client = match &downstream.certificate {
            Some(certificate) => Some(identify(shared, &snapshot, certificate)?),
            None if shared.policy.enforce => return Err(GatewayError::IdentityRequired),
            None => None,
        };
        exchange.client = client.map(|c| c.client_header.clone());
        return crate::discovery::handle(&snapshot, client.map(|c| &**c), request.method(), path);
    }
    if path.starts_with(GATEWAY_PATH_PREFIX) {
        // Health needs a verified certificate (the handshake), not a registered client: probes use it.
        return gateway_endpoint(shared, request.method(), path);
    }
    let client = match &downstream.certificate {
        Some(certificate) => {
            let client = identify(shared, &snapshot, certificate)?;
            exchange.client = Some(client.client_header.clone());
            if let Some(facts) = exchange.audit.as_mut() {
                facts.opd = Some(client.opd_header.clone());
            }
            Some(client)
        }
        None => None,
    };
    let address = split_service_path(path)?;
    let service =
        snapshot.find_service(address.opd, address.service, address.major).ok_or(GatewayError::RouteNotFound)?;
    exchange.service = Some(Arc::clone(&service.key));
    if let (Some(facts), Some(auditor)) = (exchange.audit.as_mut(), shared.audit.as_ref()) {
        facts.durability = service.doc.audit.unwrap_or(auditor.default_durability);
        facts.read_ahead_within = service.upstream.pool.spec.request_timeout;
    }
    let mut matched = None;
    let decided = match (shared.policy.enforce, client) {
        (false, _) => service.operations.find(request.method(), address.rest).map(|op| {
            matched = op;
            (op, None)
        }),
        (true, None) => return Err(GatewayError::IdentityRequired),
        (true, Some(client)) => {
            let purpose = request.headers().get(X_PENGHUBUNG_PURPOSE);
            let now = policy::unix_now();
            let find_operation = || service.operations.find(request.method(), address.rest);
            let (client, service) = (&client.access, &service.access);
            policy::authorize(client, service, find_operation, purpose, now, &mut matched, &mut ())
                .map(|(operation, permit)| (operation, Some(permit)))
                .map_err(GatewayError::from)
        }
    };
    // The operation is known as soon as it matched, also when the policy then refuses the call.
    exchange.operation = matched.map(|o| Arc::clone(&o.label));
    if let Some(facts) = exchange.audit.as_mut() {
        facts.operation_id = matched.map(|o| Arc::clone(&o.id));
        facts.path = matched.map(|o| Arc::clone(&o.template)); // pass-through: the writer says `/{service}/*`
    }
    let (operation, permit) = decided?;
    exchange.purpose = permit.as_ref().and_then(|p| p.purpose.clone());
    let rest_offset = path.len() - address.rest.len();

    let request_length = match request.body() {
        // The own HTTP/1.1 server reads only requests without a body (and without `Content-Length`) itself.
        Inbound::Empty => None,
        Inbound::Hyper(_) => content_length(request.headers()),
    };
    if let Some(length) = request_length {
        if length > service.max_request_body {
            return Err(GatewayError::BodyTooLarge { limit: service.max_request_body });
        }
    }
    // A permit is only given to an identified client: its limits and header values are read from its entry.
    // Rate limits, after every check that could refuse the request anyway (no quota spent on a 403 or 413).
    let limits = match (&permit, client) {
        (Some(p), Some(c)) => RequestLimits {
            grant: p.grant.limit.as_deref(),
            client: c.limits.client.as_deref(),
            opd: c.limits.opd.as_deref(),
            opd_bytes: c.limits.opd_bytes.as_deref(),
            service: service.limit.as_deref(),
        },
        _ => RequestLimits { service: service.limit.as_deref(), ..RequestLimits::default() },
    };
    let admitted = shared.ratelimit.check(&limits, request_length.unwrap_or(0)).await?;
    let byte_limit = match (&admitted, &permit, client) {
        (Some(_), Some(_), Some(c)) => c.limits.opd_bytes.as_ref(),
        _ => None,
    };
    let caller = match (&permit, client) {
        (Some(p), Some(c)) => {
            Caller::decided(&c.client_header, &c.opd_header, p.purpose.as_ref(), p.redaction.is_some())
        }
        _ => Caller::undecided(client.map(|c| (&c.client_header, &c.opd_header))),
    };
    // Fail closed: a service whose every exchange must be on disk is not called while the disk cannot take it.
    let tap = match (exchange.audit.as_ref(), shared.audit.as_ref()) {
        (Some(facts), Some(auditor)) => {
            if facts.durability == AuditDurability::Sync && auditor.is_failed() {
                return Err(GatewayError::AuditUnavailable { service: service.key.to_string() });
            }
            if http_body::Body::is_end_stream(request.body()) {
                // No body: nothing to tap.
                facts.outcome.lock().unwrap_or_else(|p| p.into_inner()).sha256 = Some(EMPTY_SHA256);
                None
            } else {
                Some(RequestTap::new(Arc::clone(&facts.outcome)))
            }
        }
        _ => None,
    };
    let contract = service.contract(operation);
    let (mut parts, body) = request.into_parts();
    let head = parts.method == Method::HEAD;
    let body = match contract {
        Some(contract) => {
            Box::pin(check_request(contract, &mut parts, body, service, tap, downstream.body_timeout())).await?
        }
        None => RequestBody::new(body, service.max_request_body, tap),
    };
    // Awaited inline, not boxed: every request takes this step, and its state lives in the connection's task
    // (a box would cost an allocation and a 2.5 KB copy per request; measured 19.6k -> 19.2k instructions).
    let (mut response, upstream) =
        proxy::forward(&service.upstream, parts, body, rest_offset, downstream, caller).await?;
    exchange.upstream = Some(upstream);
    if let Some(admitted) = &admitted {
        admitted.apply(response.headers_mut());
    }
    if let Some(limit) = byte_limit {
        response = response.map(|body| ResponseBody::Metered(Box::new(MeteredBody::new(body, Arc::clone(limit)))));
    }
    let status = response.status();
    let has_body =
        !head && !status.is_informational() && status != StatusCode::NO_CONTENT && status != StatusCode::NOT_MODIFIED;
    if let Some(schema) = contract.and_then(|c| c.response_for(status.as_u16())).filter(|_| has_body) {
        let limit = shared.limits.max_checked_response;
        // Below the operation's classified fields, a body outside its declared schema cannot be released.
        let withheld = permit.as_ref().is_some_and(|p| p.redaction.is_some());
        response = Box::pin(check_response(response, schema, service, operation, limit, withheld)).await?;
    }
    // An operation with fields above the caller's clearance: every response is filtered before it is released.
    match permit.as_ref().and_then(|p| Some((p.client.clearance, p.redaction?))) {
        Some((clearance, policy)) => {
            let limit = shared.policy.max_redacted_body;
            let timeout = service.upstream.pool.spec.request_timeout;
            let release = policy::response::release(response, policy, clearance, head, limit, timeout, &service.key);
            Ok(Box::pin(release).await?.into_response(ResponseBody::full))
        }
        None => Ok(response),
    }
}

/// Holds the request to its contract: query parameters, media type, then the body, read whole (up to the
/// service's limit, within its request timeout and `server.request_body_timeout`), parsed and validated. Nothing
/// invalid reaches the upstream.
async fn check_request(
    contract: &OperationContract,
    parts: &mut http::request::Parts,
    body: Inbound,
    service: &CompiledService,
    tap: Option<Box<RequestTap>>,
    body_timeout: std::time::Duration,
) -> Result<RequestBody, GatewayError> {
    if let Some(query) = &contract.query {
        contract::check::check_query(parts.uri.query(), query)?;
    }
    let Some((schema, media_type)) = &contract.request else {
        return Ok(RequestBody::new(body, service.max_request_body, tap));
    };
    contract::check::check_media_type(&parts.headers, media_type)?;
    let limit = service.max_request_body;
    let limited = http_body_util::Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX));
    let timeout = service.upstream.pool.spec.request_timeout.min(body_timeout);
    let bytes = match tokio::time::timeout(timeout, limited.collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => return Err(GatewayError::BodyTooLarge { limit }),
        Ok(Err(e)) => return Err(GatewayError::BodyIncomplete { reason: e.to_string() }),
        Err(_) => return Err(GatewayError::BodyTimeout { timeout }),
    };
    contract::check::check_request_body(&bytes, schema)?;
    parts.headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    parts.headers.remove(http::header::TRANSFER_ENCODING);
    Ok(RequestBody::buffered(bytes, tap))
}

/// Holds an upstream response to its contract: `enforce` replaces a violating response with 502
/// `contract.response_invalid` (its body is not passed on); `report` passes it on, logs the violations
/// (pointers and keywords only, never values) and counts them on the service. With `withheld` (the caller is
/// below some classified field of the operation) a violating body is never passed on: 502
/// `policy.redaction_failed`, since only a body that matches its schema can be filtered by it.
async fn check_response(
    response: Response<ResponseBody>,
    schema: &contract::Schema,
    service: &CompiledService,
    operation: Option<&crate::routing::CompiledOperation>,
    limit: u64,
    withheld: bool,
) -> Result<Response<ResponseBody>, GatewayError> {
    let (parts, body) = response.into_parts();
    let limited = http_body_util::Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX));
    let bytes = match tokio::time::timeout(service.upstream.pool.spec.request_timeout, limited.collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(_)) | Err(_) => return Err(GatewayError::UpstreamBadResponse { service: service.key.to_string() }),
    };
    if let Err(violations) = contract::check::check_response_body(&bytes, schema) {
        service.contract_violations.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let summary: Vec<String> = violations.iter().map(|v| format!("{} ({})", v.pointer, v.keyword)).collect();
        tracing::warn!(
            target: "penghubung::contract",
            service = %service.key,
            operation = operation.map_or("-", |o| &*o.id),
            status = parts.status.as_u16(),
            mode = ?service.doc.response_check,
            violations = %redact::clean(redact::process_key(), &summary.join(", ")), // pointers may name keys
            "upstream response violates its contract"
        );
        if service.doc.response_check == ResponseCheck::Enforce {
            return Err(GatewayError::ResponseInvalid { service: service.key.to_string(), violations });
        }
        if withheld {
            let status = parts.status.as_u16();
            return Err(GatewayError::RedactionFailed {
                service: service.key.to_string(),
                reason: format!("the upstream's {status} answer does not match the schema declared for it"),
            });
        }
    }
    Ok(Response::from_parts(parts, ResponseBody::full(bytes)))
}

/// Authentication, per request: the connection's certificate must not be revoked by the current CRLs, must be
/// bound to a registered client, and that client must be enabled. Re-checked on every request so that a
/// revocation or a disabled client bites on connections that are already open.
fn identify<'s>(
    shared: &Shared,
    snapshot: &'s Snapshot,
    certificate: &PeerCertificate,
) -> Result<&'s Arc<ClientEntry>, GatewayError> {
    if shared.tls.as_ref().is_some_and(|tls| tls.current().is_revoked(certificate)) {
        return Err(GatewayError::CertificateRevoked);
    }
    let client = snapshot
        .client_for(certificate)
        .ok_or_else(|| GatewayError::UnknownClient { fingerprint: certificate.fingerprint.clone() })?;
    if !client.doc.enabled {
        return Err(GatewayError::ClientDisabled { client: client.doc.id.clone() });
    }
    Ok(client)
}

/// Request-target length, total header size, and `Host`: an HTTP/1.1 request has exactly one (RFC 9112 §3.2),
/// any other at most one.
fn check_head(limits: &HeadLimits, request: &Request<Inbound>) -> Result<(), GatewayError> {
    let mut hosts = request.headers().get_all(HOST).iter();
    match (hosts.next(), hosts.next()) {
        (Some(_), Some(_)) => return Err(GatewayError::InvalidHost { reason: "it is sent more than once" }),
        (None, _) if request.version() == http::Version::HTTP_11 => {
            return Err(GatewayError::InvalidHost { reason: "an HTTP/1.1 request must carry one" })
        }
        _ => {}
    }
    let target = request.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if target > limits.max_uri_bytes {
        return Err(GatewayError::UriTooLong { length: target, limit: limits.max_uri_bytes });
    }
    let size: usize = request.headers().iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
    if size > limits.max_header_bytes {
        return Err(GatewayError::HeadersTooLarge { size, limit: limits.max_header_bytes });
    }
    Ok(())
}

/// Drops the body of one of the gateway's own responses, keeping the length it would have had.
fn without_body(response: &mut Response<ResponseBody>) {
    if let Some(length) = http_body::Body::size_hint(response.body()).exact() {
        response.headers_mut().insert(CONTENT_LENGTH, HeaderValue::from(length));
    }
    *response.body_mut() = ResponseBody::full(Bytes::new());
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// `/_penghubung/health`: liveness plus the snapshot generation (operators and tests use it to see a reload).
fn gateway_endpoint(shared: &Shared, method: &Method, path: &str) -> Result<Response<ResponseBody>, GatewayError> {
    match (path, method) {
        ("/_penghubung/health", &Method::GET | &Method::HEAD) => {
            let snapshot = shared.snapshot.load();
            let body = serde_json::json!({
                "status": "ok",
                "generation": snapshot.generation,
                "services": snapshot.route_count(),
                "ratelimit": shared.ratelimit.status(),
                "audit": shared.audit.as_ref().map(|a| a.status()),
                // upstream responses outside their contract since this snapshot was loaded (contract drift)
                "contract_violations": snapshot
                    .services
                    .iter()
                    .map(|s| s.contract_violations.load(std::sync::atomic::Ordering::Relaxed))
                    .sum::<u64>(),
            });
            let mut response = Response::new(ResponseBody::full(Bytes::from(body.to_string())));
            *response.status_mut() = StatusCode::OK;
            response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            Ok(response)
        }
        ("/_penghubung/health", _) => {
            Err(GatewayError::MethodNotAllowed { method: method.clone(), allow: HeaderValue::from_static("GET, HEAD") })
        }
        _ => Err(GatewayError::RouteNotFound),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_empty_digest_is_the_sha256_of_nothing() {
        assert_eq!(crate::audit::chain::hex(&super::EMPTY_SHA256), crate::audit::chain::sha256_hex(b""));
    }
}

/// A boxed step's future is moved whole into its box, so a large state costs an allocation and a `memcpy` per
/// request; before the rare steps were boxed the chain below was about 25 KB per request. The steps every
/// request takes (`route_and_forward`, `proxy::forward`, `h1::send`) are awaited inline instead: their state is
/// part of the connection task's (hyper's path boxes `handle` once per request).
#[cfg(test)]
mod future_sizes {
    use super::*;

    /// The size of the future the closure would return, without calling it.
    fn size_of_future<F, Fut>(_: &F) -> usize
    where
        F: Fn() -> Fut,
    {
        std::mem::size_of::<Fut>()
    }

    #[test]
    #[allow(unreachable_code, clippy::diverging_sub_expression)]
    fn the_per_request_futures_stay_small() {
        let sizes = [
            ("stack::handle", size_of_future(&|| handle(unreachable!(), unreachable!(), unreachable!())), 5_000),
            (
                "stack::route_and_forward",
                size_of_future(&|| route_and_forward(unreachable!(), unreachable!(), unreachable!(), unreachable!())),
                4_500,
            ),
            (
                "proxy::forward",
                size_of_future(&|| {
                    proxy::forward(
                        unreachable!(),
                        unreachable!(),
                        unreachable!(),
                        unreachable!(),
                        unreachable!(),
                        unreachable!(),
                    )
                }),
                3_500,
            ),
            (
                "proxy::h1::send",
                size_of_future(&|| {
                    proxy::h1::send(
                        unreachable!(),
                        unreachable!(),
                        unreachable!(),
                        unreachable!(),
                        unreachable!(),
                        unreachable!(),
                        unreachable!(),
                    )
                }),
                1_500,
            ),
        ];
        for (name, size, limit) in sizes {
            assert!(size <= limit, "{name}'s future is {size} bytes (at most {limit}): box the step that grew it");
        }
    }
}

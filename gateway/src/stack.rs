//! The request pipeline, outside in, as DESIGN.md draws it: limits on the request head → gateway endpoints
//! (`/_penghubung/...`) → route → proxy. [`GatewayService`] is what hyper calls per request; it is also the
//! *Rescue* step: the one call site where a [`GatewayError`] becomes a response, so no error ever drops a
//! connection. One access-log line per request. Between route and proxy sits the policy decision
//! ([`crate::policy`]): no [`crate::policy::Permit`], no upstream call; then the rate limits
//! ([`crate::ratelimit`]): the permit's grant tier, the client, its OPD's bandwidth and the service, or, with
//! `[policy] enforce = false` (no permit, no trustworthy caller), the service limit only. Later issues insert
//! contracts there too.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::error::GatewayError;
use crate::policy;
use crate::proxy::body::ResponseBody;
use crate::proxy::headers::{self, X_PENGHUBUNG_PURPOSE, X_REQUEST_ID};
use crate::proxy::{self, Caller, Downstream};
use crate::ratelimit::{MeteredBody, RateLimiter, RequestLimits};
use crate::routing::split_service_path;
use crate::snapshot::{ClientEntry, Snapshot, SnapshotCell};
use crate::tls::identity::PeerCertificate;
use crate::tls::material::TlsState;

/// Prefix of the gateway's own endpoints (OPD ids cannot start with `_`).
pub const GATEWAY_PATH_PREFIX: &str = "/_penghubung/";

/// Limits checked on the request head.
#[derive(Clone, Copy, Debug)]
pub struct HeadLimits {
    pub max_header_bytes: usize,
    pub max_uri_bytes: usize,
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
}

impl hyper::service::Service<Request<Incoming>> for GatewayService {
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        // One allocation per request: the request's whole future, built once and moved into the box once.
        Box::pin(handle(Arc::clone(&self.shared), self.downstream.clone(), request))
    }
}

/// What the access log says about an exchange.
#[derive(Default)]
struct Exchange {
    client: Option<HeaderValue>,
    service: Option<Arc<str>>,
    operation: Option<Arc<str>>,
    upstream: Option<Arc<str>>,
    code: Option<&'static str>,
    purpose: Option<HeaderValue>,
}

async fn handle(
    shared: Arc<Shared>,
    downstream: Downstream,
    mut request: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    let started = Instant::now();
    let request_id = headers::request_id(request.headers());
    request.headers_mut().insert(X_REQUEST_ID, request_id.clone());
    let method = request.method().clone();
    let mut exchange = Exchange::default();
    let mut response = match route_and_forward(&shared, &downstream, request, &mut exchange).await {
        Ok(response) => response,
        // Rescue: the only place an error becomes a response.
        Err(error) => {
            exchange.code = Some(error.code());
            error.into_response(&request_id)
        }
    };
    response.headers_mut().insert(X_REQUEST_ID, request_id.clone());
    if shared.access_log {
        tracing::info!(
            target: "penghubung::access",
            request_id = request_id.to_str().unwrap_or("-"),
            peer = %downstream.peer.ip(),
            client = exchange.client.as_ref().and_then(|c| c.to_str().ok()).unwrap_or("-"),
            method = %method,
            service = exchange.service.as_deref().unwrap_or("-"),
            operation = exchange.operation.as_deref().unwrap_or("-"),
            purpose = exchange.purpose.as_ref().and_then(|p| p.to_str().ok()).unwrap_or("-"),
            status = response.status().as_u16(),
            code = exchange.code.unwrap_or("-"),
            latency_us = started.elapsed().as_micros() as u64,
            upstream = exchange.upstream.as_deref().unwrap_or("-"),
        );
    }
    Ok(response)
}

async fn route_and_forward(
    shared: &Shared,
    downstream: &Downstream,
    request: Request<Incoming>,
    exchange: &mut Exchange,
) -> Result<Response<ResponseBody>, GatewayError> {
    check_head(&shared.limits, &request)?;
    let path = request.uri().path();
    if path.starts_with(GATEWAY_PATH_PREFIX) {
        // Health needs a verified certificate (the handshake), not a registered client: probes use it.
        return gateway_endpoint(shared, request.method(), path);
    }
    let snapshot = shared.snapshot.load();
    let client = match &downstream.certificate {
        Some(certificate) => {
            let client = identify(shared, &snapshot, certificate)?;
            exchange.client = Some(client.client_header.clone());
            Some(client)
        }
        None => None,
    };
    let address = split_service_path(path)?;
    let service =
        snapshot.find_service(address.opd, address.service, address.major).ok_or(GatewayError::RouteNotFound)?;
    exchange.service = Some(Arc::clone(&service.key));
    let (operation, permit) = match (shared.policy.enforce, client) {
        (false, _) => (service.operations.find(request.method(), address.rest)?, None),
        (true, None) => return Err(GatewayError::IdentityRequired),
        (true, Some(client)) => {
            let purpose = request.headers().get(X_PENGHUBUNG_PURPOSE);
            let now = policy::unix_now();
            let (operation, permit) =
                policy::authorize(client, service, request.method(), address.rest, purpose, now, &mut ())?;
            (operation, Some(permit))
        }
    };
    exchange.operation = operation.map(|o| Arc::clone(&o.label));
    exchange.purpose = permit.as_ref().and_then(|p| p.purpose.clone());
    let rest_offset = path.len() - address.rest.len();

    let request_length = content_length(request.headers());
    if let Some(length) = request_length {
        if length > service.max_request_body {
            return Err(GatewayError::BodyTooLarge { limit: service.max_request_body });
        }
    }
    // Rate limits, after every check that could refuse the request anyway (no quota spent on a 403 or 413).
    let limits = match &permit {
        Some(p) => RequestLimits {
            grant: p.grant.limit.as_deref(),
            client: p.client.limits.client.as_deref(),
            opd: p.client.limits.opd.as_deref(),
            opd_bytes: p.client.limits.opd_bytes.as_deref(),
            service: service.limit.as_deref(),
        },
        None => RequestLimits { service: service.limit.as_deref(), ..RequestLimits::default() },
    };
    let admitted = shared.ratelimit.check(&limits, request_length.unwrap_or(0)).await?;
    let byte_limit = match (&admitted, &permit) {
        (Some(_), Some(p)) => p.client.limits.opd_bytes.as_ref(),
        _ => None,
    };
    let caller = match &permit {
        Some(permit) => Caller::permitted(permit),
        None => Caller::undecided(client.map(|c| &**c)),
    };
    let (parts, body) = request.into_parts();
    // Boxed so that the (large) forwarding state is not copied through every enclosing future.
    let (mut response, upstream) =
        Box::pin(proxy::forward(service, parts, body, rest_offset, downstream, caller)).await?;
    exchange.upstream = Some(upstream);
    if let Some(admitted) = &admitted {
        admitted.apply(response.headers_mut());
    }
    if let Some(limit) = byte_limit {
        response = response.map(|body| ResponseBody::Metered(Box::new(MeteredBody::new(body, Arc::clone(limit)))));
    }
    let redaction = permit.as_ref().and_then(|p| Some((p.client.doc.clearance, p.redaction?)));
    match redaction.and_then(|(clearance, policy)| {
        policy.plan_for(response.status().as_u16()).filter(|plan| plan.applies_to(clearance)).map(|p| (clearance, p))
    }) {
        Some((clearance, plan)) => {
            let limit = shared.policy.max_redacted_body;
            let timeout = service.pool.spec.request_timeout;
            policy::response::withhold_fields(response, plan, clearance, limit, timeout, &service.key).await
        }
        None => Ok(response),
    }
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

/// Request-target length and total header size.
fn check_head(limits: &HeadLimits, request: &Request<Incoming>) -> Result<(), GatewayError> {
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

//! The request pipeline: what the gateway does with one request, as a list of named phases. Each phase is a
//! module with typed inputs and outputs, and one function called from one place in `handle` (a span or a
//! counter per phase hangs there):
//!
//! ```text
//!  request ─▶ head             head.rs             a known method, one Host, the target's length, header size
//!             (/_penghubung/…: discovery, after identify; health.rs)
//!          1. identify         identify.rs         certificate → registered, enabled client (CRLs per request);
//!                                                  without one, on a bearer listener: JWT → client  [boxed]
//!          2. route            route.rs            /{opd}/{service}/v{n}/… → the compiled service
//!          3. authorize        authorize.rs        grant → operation → lifecycle, terms, clearance
//!                                                  → Authorization: the Permit (or, policy off, Undecided)
//!          4. limit            limit.rs            Content-Length, then the rate limits → Admission
//!          5. check request    check_request.rs    the operation's contract: query, media type, body  [boxed]
//!          6. adapt            adapt.rs            the service's adapter around 7: credentials, tokens, 413 over
//!                                                  max_body, one retry after a 401, the answer mapped  [boxed]
//!          7. forward          forward.rs          Authorization → the upstream call → response, endpoint
//!          8. check response   check_response.rs   the contract, then the redaction release           [boxed]
//!          9. respond          respond.rs          rescue: error → problem; HEAD; X-Request-Id; access log; metrics
//!         10. account          account.rs          the audit record, completed when the body ends     [boxed]
//!  response ◀─
//! ```
//!
//! What the phases learn (client, service, operation, upstream, code, purpose, the audit record's facts) lives
//! in one `RequestContext` (context.rs): the phases return values and `handle` records them into it, right after
//! the phase that produced them. `handle` loads the snapshot once and lends it to the phases until the request
//! ends, so the context's metrics observation borrows its label values from it instead of cloning them. A phase that needs proof of an earlier decision takes it as a value: limit,
//! forward and check response take the `Authorization`. Phases 1–8 run in `phases`, whose error the respond
//! phase turns into a response (the rescue), so no error ever drops a connection; the account phase's own
//! refusal (`audit.unavailable`) goes through the same [`GatewayError`] mapping in `error.rs`. The account phase also starts the record's facts on arrival and taps the request body
//! before phase 5; it wraps the response last, after the access-log line is written.
//!
//! Cost: [`GatewayService`] is what hyper calls per request, with one allocation, the request's whole future.
//! The phases every request takes are awaited inline (their state is part of that future); the phases not every
//! request takes (marked *boxed*, and the Redis limits and upstream connects inside theirs) are boxed where they
//! are awaited, so that no request moves their state (see `future_sizes` below).
//!
//! Traces: with a tracer, the request's span starts with its context (`RequestContext::start`) and ends at the
//! respond phase with the status and the error code; each phase's call site in `phases` is wrapped in a child
//! span (`phase`: one branch and 8 bytes of state when the request is not sampled); the upstream span's
//! context is the `traceparent` the upstream receives.
#![forbid(unsafe_code)]

pub mod body;
pub mod discovery;
pub mod error;

mod account;
mod adapt;
mod authorize;
mod check_request;
mod check_response;
mod context;
mod forward;
mod head;
mod health;
mod identify;
mod limit;
mod respond;
mod route;
mod shared;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use http::header::HeaderValue;
use http::{Method, Request, Response};
use hyper::body::Incoming;

use crate::body::ResponseBody;
use crate::error::GatewayError;
use penghubung_snapshot::Snapshot;
use penghubung_trace::{Phase, Span};
use penghubung_upstream::body::Inbound;
use penghubung_upstream::Downstream;

pub use authorize::Authorization;
pub use health::GATEWAY_PATH_PREFIX;
pub use respond::{log_broken_body, ReportedBody};
pub use shared::{HeadLimits, PolicySettings, Shared};

use context::RequestContext;

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

/// One request, all phases: the list in this module's documentation. Returns the response and the request's id.
async fn handle(
    shared: &Shared,
    downstream: &Downstream,
    mut request: Request<Inbound>,
) -> (Response<ResponseBody>, HeaderValue) {
    let started = Instant::now();
    let request_id = respond::request_id(&mut request);
    let method = request.method().clone();
    // The snapshot this request is served from, to its end: the metrics borrow their label values from it.
    let snapshot = shared.snapshot.load();
    let mut context =
        RequestContext::start(shared.audit.as_deref(), shared.trace.as_ref(), shared.metrics.is_some(), &mut request);
    let mut response = match phases(shared, downstream, &snapshot, request, &mut context).await {
        Ok(response) => response,
        Err(error) => {
            context.failed(error.code());
            respond::rescue(error, &request_id)
        }
    };
    // 9. respond (the access-log line and the metrics)
    respond::respond(shared, downstream, &context, &mut response, &method, &request_id, started);
    std::mem::take(&mut context.span).finish(response.status().as_u16(), context.code);
    if let Some(metrics) = &shared.metrics {
        respond::observe(metrics, &mut context, &response, started);
    }
    // 10. account
    if let (Some(auditor), Some(facts)) = (&shared.audit, context.audit.take()) {
        // Boxed, like every step that not every request takes: an inline state would be moved with every request.
        let id = request_id.clone();
        response = Box::pin(account::audited(auditor, response, context, *facts, id, method, started)).await;
    }
    (response, request_id)
}

/// The gateway's own endpoints, then phases 1 to 8, on `snapshot`.
async fn phases<'s>(
    shared: &Shared,
    downstream: &Downstream,
    snapshot: &'s Snapshot,
    mut request: Request<Inbound>,
    context: &mut RequestContext<'s>,
) -> Result<Response<ResponseBody>, GatewayError> {
    head::check_head(&shared.limits, &request)?;
    let discovery = request.uri().path().starts_with(crate::discovery::PREFIX);
    if !discovery && request.uri().path().starts_with(GATEWAY_PATH_PREFIX) {
        return health::health(shared, request.method(), request.uri().path());
    }

    // 1. identify (a caller without a certificate on a listener that takes bearer tokens: by its token, boxed)
    let certificate = downstream.certificate.as_deref();
    let span = phase(shared, &context.span, Phase::Identify);
    let client = if certificate.is_none() && downstream.bearer_tokens() {
        traced(&span, Box::pin(identify::identify_by_token(shared, snapshot, request.headers())).await)?
    } else {
        traced(&span, identify::identify(shared, snapshot, certificate))?
    };
    drop(span);
    if downstream.bearer_tokens() {
        identify::strip_credentials(request.headers_mut());
    }
    let path = request.uri().path();
    if discovery {
        // Discovery answers per client.
        if client.is_none() && shared.policy.enforce {
            return Err(GatewayError::IdentityRequired);
        }
        context.discovering(client.map(|c| &**c));
        return crate::discovery::handle(snapshot, client.map(|c| &**c), request.method(), path);
    }
    context.identified(client.map(|c| &**c));
    // 2. route
    let span = phase(shared, &context.span, Phase::Route);
    let route = traced(&span, route::route(snapshot, path))?;
    drop(span);
    let (service, rest_offset) = (route.service, route.rest_offset);
    context.routed(service, shared.audit.as_deref());
    // 3. authorize
    let span = phase(shared, &context.span, Phase::Authorize);
    let (operation, decision) =
        authorize::authorize(shared.policy.enforce, client, &route, request.method(), request.headers());
    context.matched(operation);
    let authorization = traced(&span, decision)?;
    drop(span);
    context.authorized(&authorization);
    // 4. limit
    let span = phase(shared, &context.span, Phase::Limit);
    let admission = traced(&span, limit::limit(shared, service, &authorization, &request).await)?;
    drop(span);
    // (10. account: the request body's tap, or 503 for a `sync` service while the audit log is unavailable)
    let tap = account::tap(context.audit.as_deref(), shared.audit.as_deref(), service, request.body())?;
    // 5. check request
    let contract = service.contract(operation);
    let (mut parts, body) = request.into_parts();
    let head = parts.method == Method::HEAD;
    let body = match contract {
        Some(contract) => {
            let timeout = downstream.body_timeout();
            let span = phase(shared, &context.span, Phase::ContractRequest);
            let checked = Box::pin(check_request::check_request(contract, &mut parts, body, service, tap, timeout));
            traced(&span, checked.await)?
        }
        None => check_request::unchecked(body, service, tap),
    };
    // 6. adapt around 7. forward (boxed, and only for a service that names an adapter); else 7. forward (inline).
    // One clock reading starts the exchange: the upstream's request timeout counts from it, the metrics time it.
    let exchange_started = tokio::time::Instant::now();
    let (response, upstream) = match adapt::needed(service) {
        None => {
            let span = phase(shared, &context.span, Phase::Upstream);
            span.inject(&mut parts.headers);
            let forwarded =
                forward::forward(service, parts, body, rest_offset, downstream, &authorization, exchange_started).await;
            let (response, upstream) = traced(&span, forwarded)?;
            (response.map(ResponseBody::Upstream), upstream)
        }
        Some(adapter) => {
            let span = phase(shared, &context.span, Phase::Adapter);
            let trace = adapt::Trace { tracer: shared.trace.as_ref(), span: &span };
            let exchange =
                adapt::exchange(&**adapter, service, parts, body, rest_offset, downstream, &authorization, trace);
            traced(&span, Box::pin(exchange).await)?
        }
    };
    context.forwarded(upstream, exchange_started);
    // the admission's headers and meter on the response
    let mut response = admission.apply(response);
    // 8. check response
    if let Some(checks) = check_response::needed(contract, &authorization, &response, head) {
        context.checking_response(checks.redacts());
        let span = phase(shared, &context.span, Phase::ContractResponse);
        let checked = Box::pin(check_response::check_response(response, checks, shared, service, operation, head));
        response = traced(&span, checked.await)?;
    }
    Ok(response)
}

/// A phase's span under the request's: none (one branch) without a tracer or for an unsampled request.
#[inline(always)]
fn phase(shared: &Shared, request: &Span, phase: Phase) -> Span {
    match &shared.trace {
        Some(tracer) => tracer.phase(request, phase),
        None => Span::none(),
    }
}

/// `result`, its error converted to the gateway's, with the phase's span marked failed by the error's code.
#[inline(always)]
fn traced<T, E: Into<GatewayError>>(span: &Span, result: Result<T, E>) -> Result<T, GatewayError> {
    result.map_err(|error| {
        let error = error.into();
        if span.is_sampled() {
            span.fail(error.code());
        }
        error
    })
}

/// A boxed step's future is moved whole into its box, so a large state costs an allocation and a `memcpy` per
/// request; before the rare steps were boxed the chain below was about 25 KB per request. The steps every
/// request takes (`phases`, `upstream::forward`, `h1::send`) are awaited inline instead: their state is part of the
/// connection task's (hyper's path boxes `handle` once per request).
#[cfg(test)]
mod future_sizes {
    use super::*;
    use penghubung_upstream as upstream;

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
            ("pipeline::handle", size_of_future(&|| handle(unreachable!(), unreachable!(), unreachable!())), 5_000),
            (
                "pipeline::phases",
                size_of_future(&|| {
                    phases(unreachable!(), unreachable!(), unreachable!(), unreachable!(), unreachable!())
                }),
                4_500,
            ),
            (
                "upstream::forward",
                size_of_future(&|| {
                    upstream::forward(
                        unreachable!(),
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
                "upstream::h1::send",
                size_of_future(&|| {
                    upstream::h1::send(
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

//! Phase 6, **adapt**: where a service's adapter prepares the request for a system whose authentication or
//! message shape differs from plain HTTP (the national SPLP, Dukcapil, BKN ...): credentials the gateway holds,
//! headers, the target, the body; and, right after the forward phase, maps that system's answer back.
//!
//! Today neither hook does anything: a service document cannot name an adapter yet, so [`needed`] is false for
//! every service and the orchestration never calls the hooks. The adapters issue fills them in place, without
//! reshaping the pipeline: it adds the adapter's name to the service document, resolves it against an adapter
//! registry (the `AdapterRegistry` of the `penghubung-adapters` crate) held in the pipeline's `Shared` state
//! when the snapshot is compiled, makes [`needed`] say whether the service names one, and calls the adapter in
//! [`adapt_request`] (after the contract checked the caller's request, before forward sends it; `async`, so
//! that an adapter can fetch a token) and in [`adapt_response`] (before the response contract, the redaction
//! and the byte meter see the answer). The orchestration awaits both boxed, and only for services that name an
//! adapter, so that a plain request carries none of their state.

use http::request::Parts;
use http::Response;

use crate::body::ResponseBody;
use crate::error::GatewayError;
use penghubung_snapshot::CompiledService;
use penghubung_upstream::body::RequestBody;

/// Whether `service` names an adapter (today: never, see the module documentation).
#[inline(always)]
pub(super) fn needed(service: &CompiledService) -> bool {
    let _ = service;
    false
}

/// Prepares `parts` and `body` for `service`'s upstream with its adapter.
pub(super) async fn adapt_request(
    service: &CompiledService,
    parts: &mut Parts,
    body: &mut RequestBody,
) -> Result<(), GatewayError> {
    let _ = (service, parts, body);
    Ok(())
}

/// Maps `service`'s upstream answer back into the shape its callers expect, with its adapter.
pub(super) async fn adapt_response(
    service: &CompiledService,
    response: Response<ResponseBody>,
) -> Result<Response<ResponseBody>, GatewayError> {
    let _ = service;
    Ok(response)
}

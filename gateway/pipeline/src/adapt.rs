//! Phase 6, **adapt**: where a service's adapter prepares the request for a system whose authentication or
//! message shape differs from plain HTTP (the national SPLP, Dukcapil, BKN ...): credentials the gateway holds,
//! headers, the target, the body.
//!
//! Today this step does nothing: a service document cannot name an adapter yet, so no service has one. The
//! adapters issue fills [`adapt`] in place, without moving it: it adds the adapter's name to the service
//! document, resolves it against an adapter registry (`penghubung_adapters::AdapterRegistry`) held in the
//! pipeline's `Shared` state when the snapshot is compiled, and calls the adapter's `prepare` here with the
//! request head and body, after the contract checked the caller's request and before the forward phase sends
//! it. An adapter that fetches tokens becomes `async`; the orchestration then awaits it boxed, and only for
//! services that name an adapter, so that a plain request carries none of its state.

use http::request::Parts;

use crate::error::GatewayError;
use penghubung_snapshot::CompiledService;
use penghubung_upstream::body::RequestBody;

/// Prepares `parts` and `body` for `service`'s upstream with its adapter; a service without one (today:
/// every service) is sent as it is.
#[inline(always)]
pub(super) fn adapt(service: &CompiledService, parts: &mut Parts, body: &mut RequestBody) -> Result<(), GatewayError> {
    let _ = (service, parts, body);
    Ok(())
}

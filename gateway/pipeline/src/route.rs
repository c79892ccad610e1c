//! Phase 2, **route**: `/{opd}/{service}/v{major}/{rest}` → the compiled service of the current snapshot. The
//! operation within the service is matched by the authorize phase, after the grant check, so that a caller
//! without a grant learns nothing about a service's operations (see [`penghubung_policy`]).

use crate::error::GatewayError;
use penghubung_routing::split_service_path;
use penghubung_snapshot::{CompiledService, Snapshot};

/// Where a request goes: the service, and the rest of the path after `/v{major}`.
#[derive(Debug)]
pub(super) struct Route<'s, 'r> {
    pub service: &'s CompiledService,
    /// The path after `/v{major}` (what the service's operations are matched against).
    pub rest: &'r str,
    /// Where [`Route::rest`] starts in the request path (the forward phase cuts the upstream path there).
    pub rest_offset: usize,
}

/// The service `path` addresses: 400 `request.invalid_path` for a path that cannot name one, 404
/// `route.not_found` for a service that does not exist (the catalogue of services is public).
pub(super) fn route<'s, 'r>(snapshot: &'s Snapshot, path: &'r str) -> Result<Route<'s, 'r>, GatewayError> {
    let address = split_service_path(path)?;
    let service =
        snapshot.find_service(address.opd, address.service, address.major).ok_or(GatewayError::RouteNotFound)?;
    Ok(Route { service, rest: address.rest, rest_offset: path.len() - address.rest.len() })
}

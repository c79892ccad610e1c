//! Phase 3, **authorize**: the policy decision ([`penghubung_policy::authorize`]) over the identified client, the
//! routed service, the method, the rest of the path and the declared purpose. Its output is the proof the later
//! phases require: an [`Authorization`], either the policy's [`Permit`] or, with `[policy] enforce = false`
//! (measuring the bare proxy), the explicit [`Authorization::Undecided`]. The operation is matched here, after
//! the grant check, and returned alongside the decision, also when the decision is a refusal.

use std::sync::Arc;

use http::{HeaderMap, Method};

use crate::error::GatewayError;
use penghubung_policy::{self as policy, Permit};
use penghubung_routing::CompiledOperation;
use penghubung_snapshot::ClientEntry;
use penghubung_upstream::headers::X_PENGHUBUNG_PURPOSE;

use crate::route::Route;

/// What lets a request through to the limit phase and beyond.
#[derive(Debug)]
pub enum Authorization<'s> {
    /// The policy allowed the call: typed evidence, with the grant, the validated purpose and the redaction to
    /// apply; and the client's entry it was given to (its limits and the header values naming it upstream).
    Permitted(Permit<'s>, &'s ClientEntry),
    /// `[policy] enforce = false`: no decision at all. The client, when the connection identified one, is named
    /// upstream; nothing else about it is trusted (its grants and limits do not apply).
    Undecided(Option<&'s ClientEntry>),
}

impl<'s> Authorization<'s> {
    /// The permit and the client it was given to, when the policy decided.
    pub fn permitted(&self) -> Option<(&Permit<'s>, &'s ClientEntry)> {
        match self {
            Authorization::Permitted(permit, client) => Some((permit, client)),
            Authorization::Undecided(_) => None,
        }
    }

    /// The permit, when the policy decided.
    pub fn permit(&self) -> Option<&Permit<'s>> {
        match self {
            Authorization::Permitted(permit, _) => Some(permit),
            Authorization::Undecided(_) => None,
        }
    }
}

/// The decision for `method` on `route`, and the operation matched on the way (`None` when nothing matched,
/// before the match, or for a pass-through service). With the policy on, a connection that identified no client
/// is refused (`identity.required`).
pub(super) fn authorize<'s>(
    enforce: bool,
    client: Option<&'s Arc<ClientEntry>>,
    route: &Route<'s, '_>,
    method: &Method,
    headers: &HeaderMap,
) -> (Option<&'s CompiledOperation>, Result<Authorization<'s>, GatewayError>) {
    let service = route.service;
    match (enforce, client) {
        (false, _) => match service.operations.find(method, route.rest) {
            Ok(operation) => (operation, Ok(Authorization::Undecided(client.map(|c| &**c)))),
            Err(error) => (None, Err(error.into())),
        },
        (true, None) => (None, Err(GatewayError::IdentityRequired)),
        (true, Some(client)) => {
            let purpose = headers.get(X_PENGHUBUNG_PURPOSE);
            let now = policy::unix_now();
            let find_operation = || service.operations.find(method, route.rest);
            let (access, service) = (&client.access, &service.access);
            let (operation, decision) = policy::authorize(access, service, find_operation, purpose, now, &mut ());
            (operation, decision.map(|permit| Authorization::Permitted(permit, client)).map_err(GatewayError::from))
        }
    }
}

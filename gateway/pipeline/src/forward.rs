//! Phase 7, **forward**: the upstream call ([`penghubung_upstream::forward`]). It takes the authorize phase's
//! [`Authorization`] as proof: nothing reaches an upstream without a [`Permit`](penghubung_policy::Permit), or,
//! with `[policy] enforce = false`, the explicit undecided case. From it comes what the upstream is told about
//! the caller (identity headers, the validated purpose, whether the response will be filtered).
//!
//! Every request takes this step, so it is awaited inline (not boxed): its state lives in the connection's task;
//! a box would cost an allocation and a 2.5 KB copy per request (measured 19.6k → 19.2k instructions). This
//! function is therefore not `async`: it returns the upstream crate's own future, adding no state of its own.

use std::future::Future;
use std::sync::Arc;

use http::request::Parts;
use http::Response;

use penghubung_snapshot::CompiledService;
use penghubung_upstream::body::RequestBody;
use penghubung_upstream::response::UpstreamBody;
use penghubung_upstream::{self as upstream, Caller, Downstream, UpstreamError};

use crate::authorize::Authorization;

/// Sends `parts` + `body` to `service`'s upstream; on success the upstream's response and the endpoint used.
/// `rest_offset` is where the path after `/v{n}` starts in the request path; `started` is when the exchange
/// began (its request timeout counts from it). The caller's `?` turns an [`UpstreamError`] into the gateway's
/// error (no wrapper future: it would store the upstream call twice).
pub(super) fn forward<'a>(
    service: &'a CompiledService,
    parts: Parts,
    body: RequestBody,
    rest_offset: usize,
    downstream: &'a Downstream,
    authorization: &'a Authorization<'a>,
    started: tokio::time::Instant,
) -> impl Future<Output = Result<(Response<UpstreamBody>, Arc<str>), UpstreamError>> + Send + 'a {
    let caller = match authorization {
        Authorization::Permitted(permit, client) => {
            let filtered = permit.redaction.is_some();
            Caller::decided(&client.client_header, &client.opd_header, permit.purpose.as_ref(), filtered)
        }
        Authorization::Undecided(client) => Caller::undecided(client.map(|c| (&c.client_header, &c.opd_header))),
    };
    upstream::forward(&service.upstream, parts, body, rest_offset, downstream, caller, started)
}

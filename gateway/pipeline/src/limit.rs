//! Phase 4, **limit**: the request's declared size against the service's limit, then the rate limits
//! ([`penghubung_ratelimit`]), after every check that could refuse the request anyway (no quota is spent on a 403
//! or a 413). With a [`Permit`](penghubung_policy::Permit): the grant's tier, the client, its OPD and the OPD's
//! bandwidth, and the service; [`Authorization::Undecided`] (no trustworthy caller): the service limit only.
//! Its output, an [`Admission`], goes on the response once the upstream answered: the `RateLimit` headers,
//! and the bandwidth meter on the body.

use std::sync::Arc;

use http::header::{HeaderMap, CONTENT_LENGTH};
use http::{Request, Response};

use crate::body::ResponseBody;
use crate::error::GatewayError;
use penghubung_ratelimit::{Admitted, Limit, Metered, RequestLimits};
use penghubung_snapshot::CompiledService;
use penghubung_upstream::body::Inbound;

use crate::authorize::Authorization;
use crate::shared::Shared;

/// What the rate limits admitted, to be shown on the response.
#[derive(Debug)]
pub(super) struct Admission<'s> {
    /// The tightest limit that admitted the request (`RateLimit-Policy`, `RateLimit`).
    admitted: Option<Admitted<'s>>,
    /// The OPD's bandwidth, metered on the response body as it is sent.
    byte_limit: Option<&'s Arc<Limit>>,
}

impl Admission<'_> {
    /// Puts the admission on the upstream's response: its rate-limit headers, and the bandwidth meter.
    #[inline]
    pub fn apply(&self, mut response: Response<ResponseBody>) -> Response<ResponseBody> {
        if let Some(admitted) = &self.admitted {
            admitted.apply(response.headers_mut());
        }
        if let Some(limit) = self.byte_limit {
            response = response.map(|body| ResponseBody::Metered(Box::new(Metered::new(body, Arc::clone(limit)))));
        }
        response
    }
}

/// Refuses a request whose `Content-Length` exceeds the service's limit (413), then spends its quotas (429
/// when one is exhausted).
pub(super) async fn limit<'s>(
    shared: &Shared,
    service: &'s CompiledService,
    authorization: &Authorization<'s>,
    request: &Request<Inbound>,
) -> Result<Admission<'s>, GatewayError> {
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
    let permitted = authorization.permitted();
    let limits = match permitted {
        Some((p, client)) => RequestLimits {
            grant: p.grant.limit.as_deref(),
            client: client.limits.client.as_deref(),
            opd: client.limits.opd.as_deref(),
            opd_bytes: client.limits.opd_bytes.as_deref(),
            service: service.limit.as_deref(),
        },
        None => RequestLimits { service: service.limit.as_deref(), ..RequestLimits::default() },
    };
    let admitted = shared.ratelimit.check(&limits, request_length.unwrap_or(0)).await?;
    let byte_limit = match (&admitted, permitted) {
        (Some(_), Some((_, client))) => client.limits.opd_bytes.as_ref(),
        _ => None,
    };
    Ok(Admission { admitted, byte_limit })
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

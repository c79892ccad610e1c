//! Phase 5, **check request**: the operation's contract ([`penghubung_contract`]) holds the request: query
//! parameters, media type, then the body, read whole (up to the service's limit, within its request timeout and
//! `server.request_body_timeout`), parsed and validated. Nothing invalid reaches the upstream. Only operations
//! with a contract take this phase (the orchestration boxes it where it is awaited); every other request body
//! streams through [`unchecked`].

use http::header::HeaderValue;
use http_body_util::BodyExt;

use crate::error::GatewayError;
use penghubung_contract::{self as contract, OperationContract};
use penghubung_snapshot::CompiledService;
use penghubung_types::tap::BodyTap;
use penghubung_upstream::body::{Inbound, RequestBody};

/// Holds the request to its contract; returns the body to forward, buffered once it was read whole.
pub(super) async fn check_request(
    contract: &OperationContract,
    parts: &mut http::request::Parts,
    body: Inbound,
    service: &CompiledService,
    tap: Option<Box<dyn BodyTap>>,
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

/// The body of a request without a contract: streamed to the upstream as it arrives, within the service's limit.
#[inline]
pub(super) fn unchecked(body: Inbound, service: &CompiledService, tap: Option<Box<dyn BodyTap>>) -> RequestBody {
    RequestBody::new(body, service.max_request_body, tap)
}

//! Phase 8, **check/redact response**: the upstream's response against the operation's contract, then the
//! redaction release ([`penghubung_policy::response`]) for a caller whose clearance is below some classified field
//! of the operation. [`needed`] decides from the response head alone whether either applies; only then does the
//! orchestration run [`check_response`], boxed where it is awaited (a plain response moves nothing).

use http::{Response, StatusCode};
use http_body_util::BodyExt;

use crate::body::ResponseBody;
use crate::error::GatewayError;
use penghubung_audit::sanitise as redact;
use penghubung_contract::{self as contract, OperationContract};
use penghubung_policy::OperationPolicy;
use penghubung_snapshot::CompiledService;
use penghubung_types::documents::{Classification, ResponseCheck};

use crate::authorize::Authorization;
use crate::shared::Shared;

/// What this phase does to one response.
#[derive(Debug)]
pub(super) struct ResponseChecks<'s> {
    /// The schema the contract declares for the response's status (and the response has a body).
    schema: Option<&'s contract::Schema>,
    /// The caller's clearance and the operation's policy, when some field is above that clearance: every
    /// response is filtered before it is released.
    release: Option<(Classification, &'s OperationPolicy)>,
}

impl ResponseChecks<'_> {
    /// Whether the response is filtered for the caller's clearance.
    pub fn redacts(&self) -> bool {
        self.release.is_some()
    }
}

/// The checks `response` needs, or `None` (the plain path).
pub(super) fn needed<'s>(
    contract: Option<&'s OperationContract>,
    authorization: &Authorization<'s>,
    response: &Response<ResponseBody>,
    head: bool,
) -> Option<ResponseChecks<'s>> {
    let status = response.status();
    let has_body =
        !head && !status.is_informational() && status != StatusCode::NO_CONTENT && status != StatusCode::NOT_MODIFIED;
    let schema = contract.and_then(|c| c.response_for(status.as_u16())).filter(|_| has_body);
    let release = authorization.permit().and_then(|p| Some((p.client.clearance, p.redaction?)));
    (schema.is_some() || release.is_some()).then_some(ResponseChecks { schema, release })
}

/// Runs the `checks` on `response`: the contract first, then the redaction release.
pub(super) async fn check_response(
    mut response: Response<ResponseBody>,
    checks: ResponseChecks<'_>,
    shared: &Shared,
    service: &CompiledService,
    operation: Option<&penghubung_routing::CompiledOperation>,
    head: bool,
) -> Result<Response<ResponseBody>, GatewayError> {
    if let Some(schema) = checks.schema {
        let limit = shared.limits.max_checked_response;
        // Below the operation's classified fields, a body outside its declared schema cannot be released.
        let withheld = checks.release.is_some();
        response = check_contract(response, schema, service, operation, limit, withheld).await?;
    }
    // An operation with fields above the caller's clearance: every response is filtered before it is released.
    match checks.release {
        Some((clearance, policy)) => {
            let limit = shared.policy.max_redacted_body;
            let timeout = service.upstream.pool.spec.request_timeout;
            let released =
                penghubung_policy::response::release(response, policy, clearance, head, limit, timeout, &service.key)
                    .await?;
            Ok(released.into_response(ResponseBody::full))
        }
        None => Ok(response),
    }
}

/// Holds an upstream response to its contract: `enforce` replaces a violating response with 502
/// `contract.response_invalid` (its body is not passed on); `report` passes it on, logs the violations
/// (pointers and keywords only, never values) and counts them on the service. With `withheld` (the caller is
/// below some classified field of the operation) a violating body is never passed on: 502
/// `policy.redaction_failed`, since only a body that matches its schema can be filtered by it.
async fn check_contract(
    response: Response<ResponseBody>,
    schema: &contract::Schema,
    service: &CompiledService,
    operation: Option<&penghubung_routing::CompiledOperation>,
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

//! Phase 10, **account**: the audit record ([`penghubung_audit`]) of a request, allowed or denied. Its facts are
//! gathered on the way in ([`AuditFacts`], held by the request's context), the request body is tapped on its way
//! upstream ([`tap`]), and [`audited`] wraps the response body so that the record is completed (and for `sync`
//! services made durable before the end of the response is released) when the body ends. It wraps the
//! response last, after the respond phase wrote the access-log line (waiting for a slot in the audit queue is
//! not part of the logged latency). Without an audit trail none of this runs.

use std::sync::Arc;
use std::time::Instant;

use http::header::HeaderValue;
use http::{Method, Response};

use crate::body::{ResponseBody, ResponseBodyError};
use crate::error::GatewayError;
use penghubung_audit::record::ExchangeRecord;
use penghubung_audit::tap::{Audited, RequestTap};
use penghubung_audit::{AuditDurability, Auditor};
use penghubung_policy as policy;
use penghubung_snapshot::CompiledService;
use penghubung_types::tap::BodyTap;
use penghubung_upstream::body::Inbound;

use crate::context::{AuditFacts, RequestContext};

/// Largest response body (by its `Content-Length`) that a `sync` exchange reads ahead before releasing the head.
const READ_AHEAD_MAX: u64 = 64 * 1024;

/// SHA-256 of the empty body.
const EMPTY_SHA256: [u8; 32] = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41,
    0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// The tap on the request body, feeding the record its digest and NIKs; `None` without an audit trail or
/// without a body. Fails closed: a service whose every exchange must be on disk is not called while the disk
/// cannot take it.
pub(super) fn tap(
    facts: Option<&AuditFacts>,
    auditor: Option<&Auditor>,
    service: &CompiledService,
    body: &Inbound,
) -> Result<Option<Box<dyn BodyTap>>, GatewayError> {
    let (Some(facts), Some(auditor)) = (facts, auditor) else {
        return Ok(None);
    };
    if facts.durability == AuditDurability::Sync && auditor.is_failed() {
        return Err(GatewayError::AuditUnavailable { service: service.key.to_string() });
    }
    if http_body::Body::is_end_stream(body) {
        // No body: nothing to tap.
        facts.outcome.lock().unwrap_or_else(|p| p.into_inner()).sha256 = Some(EMPTY_SHA256);
        Ok(None)
    } else {
        Ok(Some(RequestTap::new(Arc::clone(&facts.outcome))))
    }
}

/// Wraps the response so that its audit record is completed when the body ends. Waits for a queue slot first
/// (backpressure: records are never dropped). A refusal because the log is unavailable does not wait: when no
/// slot is free its record goes to the error log instead, loudly.
pub(super) async fn audited(
    auditor: &Arc<Auditor>,
    response: Response<ResponseBody>,
    context: RequestContext<'_>,
    facts: AuditFacts,
    request_id: HeaderValue,
    method: Method,
    started: Instant,
) -> Response<ResponseBody> {
    let refused = context.code == Some("audit.unavailable");
    let permit = if refused { auditor.try_reserve() } else { auditor.reserve().await };
    let (request_id_copy, service) = (request_id.clone(), context.service.clone());
    let record = Box::new(ExchangeRecord {
        time: facts.time,
        request_id,
        traceparent: facts.traceparent,
        client: context.client,
        caller_opd: facts.opd,
        service: context.service,
        operation: facts.operation_id,
        method,
        path: facts.path,
        purpose: context.purpose,
        code: context.code,
        status: response.status().as_u16(),
        bytes_in: 0,
        bytes_out: 0,
        latency_us: 0,
        upstream: context.upstream,
        request_sha256: None,
        response_sha256: None,
        withheld: response.headers().get(policy::response::X_PENGHUBUNG_REDACTED).cloned(),
        nik: Vec::new(),
        nik_overflow: false,
        complete: false,
        durability: facts.durability,
    });
    let Some(permit) = permit else {
        let record = record.logged(auditor.nik_key());
        tracing::error!(target: "penghubung::audit", %record, "AUDIT RECORD NOT QUEUED (queue full or writer stopped): kept in this log instead");
        return response;
    };
    let sync = facts.durability == AuditDurability::Sync && !refused;
    let (parts, body) = response.into_parts();
    let empty = http_body::Body::is_end_stream(&body);
    let small = http_body::Body::size_hint(&body).exact().is_some_and(|n| n <= READ_AHEAD_MAX);
    let mut body = Audited::new(body, record, permit, facts.outcome, Arc::clone(auditor), started, sync);
    if sync && small && !empty {
        let service = || service.as_deref().unwrap_or("this service").to_string();
        match tokio::time::timeout(facts.read_ahead_within, body.read_ahead()).await {
            Ok(Ok(())) | Err(_) => {} // read ahead, or still streaming after the timeout: release the head
            Ok(Err(ResponseBodyError::AuditUnavailable)) => {
                return GatewayError::AuditUnavailable { service: service() }.into_response(&request_id_copy);
            }
            Ok(Err(ResponseBodyError::Upstream(_))) => {
                return GatewayError::UpstreamBadResponse { service: service() }.into_response(&request_id_copy);
            }
        }
    }
    if empty {
        // No end to hold back: a sync exchange waits here, before the head is released.
        if let Some(durable) = body.finish_empty() {
            if !durable.await.unwrap_or(false) {
                let service = service.as_deref().unwrap_or("this service").to_string();
                return GatewayError::AuditUnavailable { service }.into_response(&request_id_copy);
            }
        }
    }
    Response::from_parts(parts, ResponseBody::Audited(Box::new(body)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_empty_digest_is_the_sha256_of_nothing() {
        assert_eq!(penghubung_audit::chain::hex(&super::EMPTY_SHA256), penghubung_audit::chain::sha256_hex(b""));
    }
}

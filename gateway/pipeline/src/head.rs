//! Before the phases, the **request head**'s own limits, checked on every request (the gateway's endpoints
//! included): a method the gateway knows, exactly one `Host` for HTTP/1.1 (at most one otherwise), the
//! request-target's length and the total header size.

use http::header::HOST;
use http::Request;

use crate::error::GatewayError;
use penghubung_audit::sanitise as redact;
use penghubung_upstream::body::Inbound;

use crate::shared::HeadLimits;

/// 501 for an unknown method before anything else (its token is never logged), then `Host` (RFC 9112 §3.2),
/// then the limits.
pub(super) fn check_head(limits: &HeadLimits, request: &Request<Inbound>) -> Result<(), GatewayError> {
    if !redact::is_known_method(request.method()) {
        return Err(GatewayError::MethodNotImplemented);
    }
    let mut hosts = request.headers().get_all(HOST).iter();
    match (hosts.next(), hosts.next()) {
        (Some(_), Some(_)) => return Err(GatewayError::InvalidHost { reason: "it is sent more than once" }),
        (None, _) if request.version() == http::Version::HTTP_11 => {
            return Err(GatewayError::InvalidHost { reason: "an HTTP/1.1 request must carry one" })
        }
        _ => {}
    }
    let target = request.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if target > limits.max_uri_bytes {
        return Err(GatewayError::UriTooLong { length: target, limit: limits.max_uri_bytes });
    }
    let size: usize = request.headers().iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
    if size > limits.max_header_bytes {
        return Err(GatewayError::HeadersTooLarge { size, limit: limits.max_header_bytes });
    }
    Ok(())
}

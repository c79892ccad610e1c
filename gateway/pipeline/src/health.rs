//! The gateway's own endpoint `/_penghubung/health`: liveness plus the snapshot generation (operators and tests
//! use it to see a reload), the rate limits' and the audit trail's state, and the contract drift. It needs a
//! verified certificate (the handshake), not a registered client: probes use it. Any other path under
//! [`GATEWAY_PATH_PREFIX`] that discovery does not answer is 404 `route.not_found`.

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Method, Response, StatusCode};

use crate::body::ResponseBody;
use crate::error::GatewayError;

use crate::shared::Shared;

/// Prefix of the gateway's own endpoints (OPD ids cannot start with `_`).
pub const GATEWAY_PATH_PREFIX: &str = "/_penghubung/";

/// Answers a request for `path` under [`GATEWAY_PATH_PREFIX`].
pub(super) fn health(shared: &Shared, method: &Method, path: &str) -> Result<Response<ResponseBody>, GatewayError> {
    match (path, method) {
        ("/_penghubung/health", &Method::GET | &Method::HEAD) => {
            let snapshot = shared.snapshot.load();
            let body = serde_json::json!({
                "status": "ok",
                "generation": snapshot.generation,
                "services": snapshot.route_count(),
                "ratelimit": shared.ratelimit.status(),
                "audit": shared.audit.as_ref().map(|a| a.status()),
                // upstream responses outside their contract since this snapshot was loaded (contract drift)
                "contract_violations": snapshot
                    .services
                    .iter()
                    .map(|s| s.contract_violations.load(std::sync::atomic::Ordering::Relaxed))
                    .sum::<u64>(),
            });
            let mut response = Response::new(ResponseBody::full(Bytes::from(body.to_string())));
            *response.status_mut() = StatusCode::OK;
            response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            Ok(response)
        }
        ("/_penghubung/health", _) => {
            Err(GatewayError::MethodNotAllowed { method: method.clone(), allow: HeaderValue::from_static("GET, HEAD") })
        }
        _ => Err(GatewayError::RouteNotFound),
    }
}

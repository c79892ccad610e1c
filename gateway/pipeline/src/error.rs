//! The one error type of the data plane and the ONLY place an error becomes a response: RFC 9457
//! `application/problem+json` with a stable `code`, the HTTP status, a `detail` that says what to fix, and the
//! request id. Never a stack trace, a secret or an upstream's internals.

use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, ALLOW, CONTENT_TYPE, RETRY_AFTER};
use http::{Response, StatusCode};

use crate::body::ResponseBody;
use penghubung_adapters::AdapterError;
use penghubung_contract::{ContractError, Violation};
use penghubung_policy::{Denial, RedactionError, Refusal};
use penghubung_ratelimit::LimitError;
use penghubung_routing::RouteError;
use penghubung_upstream::UpstreamError;

/// Everything that can stop a request inside the gateway.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("nothing is registered at this path (no such service, or no such operation of it)")]
    RouteNotFound,
    #[error("the service has no operation for method {method} on this path")]
    MethodNotAllowed { method: http::Method, allow: HeaderValue },
    /// A method outside the known set ([`penghubung_audit::sanitise::is_known_method`]); its token is neither
    /// echoed nor logged.
    #[error("the request method is not one the gateway implements (the methods of RFC 9110, PATCH and WebDAV's)")]
    MethodNotImplemented,
    #[error("the request path is not acceptable: {reason}")]
    InvalidPath { reason: &'static str },
    #[error("the request's Host is not acceptable: {reason}")]
    InvalidHost { reason: &'static str },
    #[error("the request target is {length} bytes long; the limit is {limit}")]
    UriTooLong { length: usize, limit: usize },
    #[error("the request headers are {size} bytes; the limit is {limit}")]
    HeadersTooLarge { size: usize, limit: usize },
    #[error("the request body is larger than the limit of {limit} bytes for this service")]
    BodyTooLarge { limit: u64 },
    #[error("the request body could not be read completely: {reason}")]
    BodyIncomplete { reason: String },
    #[error("the request body did not arrive in time: it paused for longer than the request timeout or took longer than server.request_body_timeout ({timeout:?})")]
    BodyTimeout { timeout: Duration },
    #[error("the upstream of {service} is unavailable: {reason}")]
    UpstreamUnavailable { service: String, reason: String },
    #[error("the upstream of {service} did not accept a connection within {timeout:?}")]
    UpstreamConnectTimeout { service: String, timeout: Duration },
    #[error("the upstream of {service} did not answer within {timeout:?}")]
    UpstreamTimeout { service: String, timeout: Duration },
    #[error("the upstream of {service} sent a response the gateway could not use")]
    UpstreamBadResponse { service: String },
    #[error("the client certificate is valid but no registered client is bound to it (fingerprint {fingerprint}); ask the Diskominfo to register it")]
    UnknownClient { fingerprint: Box<str> },
    #[error("the client certificate has been revoked")]
    CertificateRevoked,
    #[error("client `{client}` is disabled")]
    ClientDisabled { client: String },
    #[error("the TLS connection to the upstream of {service} failed verification or negotiation")]
    UpstreamTls { service: String },
    #[error("this listener does not authenticate callers; services are called over mTLS with a client certificate")]
    IdentityRequired,
    #[error("{0}")]
    Denied(Denial),
    #[error("the response of {service} has fields above your clearance and could not be filtered ({reason}); it was withheld")]
    RedactionFailed { service: String, reason: String },
    /// A rate limit or quota is exhausted (boxed: rare, and the largest payload; a small error keeps every
    /// `Result` of the request path small).
    #[error("the {} rate limit ({}) is exhausted; retry in {} s", .0.scope, .0.quota, .0.retry_after)]
    RateLimited(Box<penghubung_ratelimit::Exceeded>),
    #[error(
        "the shared rate-limit store is unreachable and this gateway is configured to refuse meanwhile; retry shortly"
    )]
    RateLimitUnavailable,
    #[error("the audit log cannot be written, and {service} requires every exchange to be recorded durably; try again later")]
    AuditUnavailable { service: String },
    #[error("this operation takes `{expected}`; the request's Content-Type is {}", got.as_deref().map_or("missing".to_string(), |g| format!("`{g}`")))]
    UnsupportedMediaType { expected: String, got: Option<String> },
    #[error("the request body is not valid JSON (line {line}, column {column}): {reason}")]
    MalformedJson { line: usize, column: usize, reason: String },
    #[error("the request body names the member `{pointer}` more than once; each key of a JSON object must be unique")]
    DuplicateKey { pointer: String },
    #[error("the request body nests arrays and objects deeper than {limit} levels")]
    TooDeep { limit: usize },
    #[error("the number at `{pointer}` has more precision than can be compared exactly (at most 17 significant digits, integers within 64 bits); send fewer digits, or a string")]
    NumberPrecision { pointer: String },
    #[error("the request body does not match the operation's contract ({} violation(s), see `violations`)", violations.len())]
    RequestInvalid { violations: Vec<Violation> },
    #[error("the query parameters do not match the operation's contract ({} violation(s), see `violations`)", violations.len())]
    QueryInvalid { violations: Vec<Violation> },
    #[error("the upstream of {service} answered outside its contract; the response was withheld")]
    ResponseInvalid { service: String, violations: Vec<Violation> },
    /// The adapter could not obtain a token (or credential) for the national system; retry after `retry_after`.
    #[error("adapter `{adapter}` could not obtain a token from its national system: {detail}")]
    AdapterTokenUnavailable { adapter: &'static str, detail: String, retry_after: Duration },
    /// The national system refused the credentials the gateway holds for it.
    #[error("the national system behind adapter `{adapter}` refused the gateway's credentials: {detail}")]
    AdapterRefused { adapter: &'static str, detail: String },
    /// The adapter could not map the message to or from the national system's shape.
    #[error("adapter `{adapter}` could not map the message: {detail}")]
    AdapterMappingFailed { adapter: &'static str, detail: String },
}

impl From<AdapterError> for GatewayError {
    fn from(error: AdapterError) -> Self {
        match error {
            AdapterError::TokenUnavailable { adapter, detail, retry_after } => {
                GatewayError::AdapterTokenUnavailable { adapter, detail, retry_after }
            }
            AdapterError::UpstreamRefused { adapter, detail } => GatewayError::AdapterRefused { adapter, detail },
            AdapterError::MappingFailed { adapter, detail } => GatewayError::AdapterMappingFailed { adapter, detail },
            AdapterError::BodyTooLarge { limit } => GatewayError::BodyTooLarge { limit },
        }
    }
}

impl From<Denial> for GatewayError {
    fn from(denial: Denial) -> Self {
        GatewayError::Denied(denial)
    }
}

/// A refused authorization: the routing lookup's own error (404, 405) or the denial.
impl<R: Into<GatewayError>> From<Refusal<R>> for GatewayError {
    fn from(refusal: Refusal<R>) -> Self {
        match refusal {
            Refusal::Route(error) => error.into(),
            Refusal::Denied(denial) => GatewayError::Denied(denial),
        }
    }
}

impl From<RedactionError> for GatewayError {
    fn from(RedactionError { service, reason }: RedactionError) -> Self {
        GatewayError::RedactionFailed { service, reason }
    }
}

impl From<UpstreamError> for GatewayError {
    fn from(error: UpstreamError) -> Self {
        match error {
            UpstreamError::Unavailable { service, reason } => GatewayError::UpstreamUnavailable { service, reason },
            UpstreamError::ConnectTimeout { service, timeout } => {
                GatewayError::UpstreamConnectTimeout { service, timeout }
            }
            UpstreamError::Timeout { service, timeout } => GatewayError::UpstreamTimeout { service, timeout },
            UpstreamError::BadResponse { service } => GatewayError::UpstreamBadResponse { service },
            UpstreamError::Tls { service } => GatewayError::UpstreamTls { service },
            UpstreamError::InvalidPath { reason } => GatewayError::InvalidPath { reason },
            UpstreamError::BodyTooLarge { limit } => GatewayError::BodyTooLarge { limit },
            UpstreamError::BodyIncomplete { reason } => GatewayError::BodyIncomplete { reason },
            UpstreamError::BodyTimeout { timeout } => GatewayError::BodyTimeout { timeout },
        }
    }
}

impl From<RouteError> for GatewayError {
    fn from(error: RouteError) -> Self {
        match error {
            RouteError::NotFound => GatewayError::RouteNotFound,
            RouteError::MethodNotAllowed(refused) => {
                let penghubung_routing::MethodNotAllowed { method, allow } = *refused;
                GatewayError::MethodNotAllowed { method, allow }
            }
            RouteError::InvalidPath { reason } => GatewayError::InvalidPath { reason },
        }
    }
}

impl From<ContractError> for GatewayError {
    fn from(error: ContractError) -> Self {
        match error {
            ContractError::UnsupportedMediaType { expected, got } => {
                GatewayError::UnsupportedMediaType { expected, got }
            }
            ContractError::MalformedJson { line, column, reason } => {
                GatewayError::MalformedJson { line, column, reason }
            }
            ContractError::DuplicateKey { pointer } => GatewayError::DuplicateKey { pointer },
            ContractError::TooDeep { limit } => GatewayError::TooDeep { limit },
            ContractError::NumberPrecision { pointer } => GatewayError::NumberPrecision { pointer },
            ContractError::RequestInvalid { violations } => GatewayError::RequestInvalid { violations },
            ContractError::QueryInvalid { violations } => GatewayError::QueryInvalid { violations },
        }
    }
}

impl From<LimitError> for GatewayError {
    fn from(error: LimitError) -> Self {
        match error {
            LimitError::Exceeded(refused) => GatewayError::RateLimited(refused),
            LimitError::StoreUnavailable => GatewayError::RateLimitUnavailable,
        }
    }
}

impl GatewayError {
    /// The stable, documented code of this error (part of the API: never rename).
    pub fn code(&self) -> &'static str {
        match self {
            GatewayError::RouteNotFound => "route.not_found",
            GatewayError::MethodNotAllowed { .. } => "route.method_not_allowed",
            GatewayError::MethodNotImplemented => "request.method_not_implemented",
            GatewayError::InvalidPath { .. } => "request.invalid_path",
            GatewayError::InvalidHost { .. } => "request.invalid_host",
            GatewayError::UriTooLong { .. } => "request.uri_too_long",
            GatewayError::HeadersTooLarge { .. } => "request.headers_too_large",
            GatewayError::BodyTooLarge { .. } => "request.body_too_large",
            GatewayError::BodyIncomplete { .. } => "request.body_incomplete",
            GatewayError::BodyTimeout { .. } => "request.body_timeout",
            GatewayError::UpstreamUnavailable { .. } => "upstream.unavailable",
            GatewayError::UpstreamConnectTimeout { .. } => "upstream.connect_timeout",
            GatewayError::UpstreamTimeout { .. } => "upstream.timeout",
            GatewayError::UpstreamBadResponse { .. } => "upstream.bad_response",
            GatewayError::UnknownClient { .. } => "identity.unknown_client",
            GatewayError::CertificateRevoked => "identity.revoked",
            GatewayError::ClientDisabled { .. } => "identity.client_disabled",
            GatewayError::UpstreamTls { .. } => "upstream.tls",
            GatewayError::IdentityRequired => "identity.required",
            GatewayError::Denied(denial) => denial.code(),
            GatewayError::RedactionFailed { .. } => "policy.redaction_failed",
            GatewayError::RateLimited(_) => "ratelimit.exceeded",
            GatewayError::RateLimitUnavailable => "ratelimit.unavailable",
            GatewayError::AuditUnavailable { .. } => "audit.unavailable",
            GatewayError::UnsupportedMediaType { .. } => "contract.unsupported_media_type",
            GatewayError::MalformedJson { .. } => "contract.malformed_json",
            GatewayError::DuplicateKey { .. } => "contract.duplicate_key",
            GatewayError::TooDeep { .. } => "contract.too_deep",
            GatewayError::NumberPrecision { .. } => "contract.number_precision",
            GatewayError::RequestInvalid { .. } => "contract.request_invalid",
            GatewayError::QueryInvalid { .. } => "contract.query_invalid",
            GatewayError::ResponseInvalid { .. } => "contract.response_invalid",
            GatewayError::AdapterTokenUnavailable { .. } => "adapter.token_unavailable",
            GatewayError::AdapterRefused { .. } => "adapter.upstream_refused",
            GatewayError::AdapterMappingFailed { .. } => "adapter.mapping_failed",
        }
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::RouteNotFound => StatusCode::NOT_FOUND,
            GatewayError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            GatewayError::MethodNotImplemented => StatusCode::NOT_IMPLEMENTED,
            GatewayError::InvalidPath { .. }
            | GatewayError::InvalidHost { .. }
            | GatewayError::BodyIncomplete { .. } => StatusCode::BAD_REQUEST,
            GatewayError::UriTooLong { .. } => StatusCode::URI_TOO_LONG,
            GatewayError::HeadersTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            GatewayError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            GatewayError::UpstreamUnavailable { .. }
            | GatewayError::UpstreamBadResponse { .. }
            | GatewayError::UpstreamTls { .. }
            | GatewayError::RedactionFailed { .. }
            | GatewayError::ResponseInvalid { .. }
            | GatewayError::AdapterRefused { .. }
            | GatewayError::AdapterMappingFailed { .. } => StatusCode::BAD_GATEWAY,
            GatewayError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            GatewayError::MalformedJson { .. }
            | GatewayError::DuplicateKey { .. }
            | GatewayError::TooDeep { .. }
            | GatewayError::NumberPrecision { .. }
            | GatewayError::RequestInvalid { .. }
            | GatewayError::QueryInvalid { .. } => StatusCode::BAD_REQUEST,
            GatewayError::UnknownClient { .. }
            | GatewayError::CertificateRevoked
            | GatewayError::ClientDisabled { .. }
            | GatewayError::IdentityRequired
            | GatewayError::Denied(_) => StatusCode::FORBIDDEN,
            GatewayError::UpstreamConnectTimeout { .. } | GatewayError::UpstreamTimeout { .. } => {
                StatusCode::GATEWAY_TIMEOUT
            }
            GatewayError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            GatewayError::RateLimitUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            GatewayError::AuditUnavailable { .. } | GatewayError::AdapterTokenUnavailable { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    fn title(&self) -> &'static str {
        match self {
            GatewayError::RouteNotFound => "Route not found",
            GatewayError::MethodNotAllowed { .. } => "Method not allowed",
            GatewayError::MethodNotImplemented => "Method not implemented",
            GatewayError::InvalidPath { .. } => "Invalid request path",
            GatewayError::InvalidHost { .. } => "Invalid Host",
            GatewayError::UriTooLong { .. } => "Request target too long",
            GatewayError::HeadersTooLarge { .. } => "Request headers too large",
            GatewayError::BodyTooLarge { .. } => "Request body too large",
            GatewayError::BodyIncomplete { .. } => "Request body incomplete",
            GatewayError::BodyTimeout { .. } => "Request body timed out",
            GatewayError::UpstreamUnavailable { .. } => "Upstream unavailable",
            GatewayError::UpstreamConnectTimeout { .. } => "Upstream connect timeout",
            GatewayError::UpstreamTimeout { .. } => "Upstream timeout",
            GatewayError::UpstreamBadResponse { .. } => "Bad upstream response",
            GatewayError::UnknownClient { .. } => "Unknown client",
            GatewayError::CertificateRevoked => "Certificate revoked",
            GatewayError::ClientDisabled { .. } => "Client disabled",
            GatewayError::UpstreamTls { .. } => "Upstream TLS failure",
            GatewayError::IdentityRequired => "Client certificate required",
            GatewayError::Denied(_) => "Access denied",
            GatewayError::RedactionFailed { .. } => "Response withheld",
            GatewayError::RateLimited(_) => "Rate limit exceeded",
            GatewayError::RateLimitUnavailable => "Rate limiter unavailable",
            GatewayError::AuditUnavailable { .. } => "Audit log unavailable",
            GatewayError::UnsupportedMediaType { .. } => "Unsupported media type",
            GatewayError::MalformedJson { .. } => "Malformed JSON",
            GatewayError::DuplicateKey { .. } => "Duplicate JSON key",
            GatewayError::TooDeep { .. } => "JSON nested too deep",
            GatewayError::NumberPrecision { .. } => "Number too precise",
            GatewayError::RequestInvalid { .. } => "Request violates the contract",
            GatewayError::QueryInvalid { .. } => "Query violates the contract",
            GatewayError::ResponseInvalid { .. } => "Upstream response violates the contract",
            GatewayError::AdapterTokenUnavailable { .. } => "National system token unavailable",
            GatewayError::AdapterRefused { .. } => "National system refused the gateway's credentials",
            GatewayError::AdapterMappingFailed { .. } => "National system message could not be mapped",
        }
    }

    /// The problem+json response for this error. `request_id` is echoed in the body and the `X-Request-Id` header.
    pub fn into_response(self, request_id: &HeaderValue) -> Response<ResponseBody> {
        let status = self.status();
        let code = self.code();
        let mut body = serde_json::json!({
            "type": format!("urn:penghubung:problem:{code}"),
            "title": self.title(),
            "status": status.as_u16(),
            "code": code,
            "detail": self.to_string(),
            "request_id": request_id.to_str().unwrap_or(""),
        });
        // RFC 9457 extension members: what exactly to fix.
        match &self {
            GatewayError::RequestInvalid { violations }
            | GatewayError::QueryInvalid { violations }
            | GatewayError::ResponseInvalid { violations, .. } => {
                body["violations"] = serde_json::to_value(violations).unwrap_or_default();
            }
            GatewayError::MalformedJson { line, column, .. } => {
                body["line"] = (*line).into();
                body["column"] = (*column).into();
            }
            GatewayError::DuplicateKey { pointer } | GatewayError::NumberPrecision { pointer } => {
                body["pointer"] = pointer.as_str().into();
            }
            _ => {}
        }
        let mut response = Response::new(ResponseBody::full(Bytes::from(body.to_string())));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        headers.insert(penghubung_upstream::headers::X_REQUEST_ID, request_id.clone());
        match self {
            GatewayError::MethodNotAllowed { allow, .. } => {
                headers.insert(ALLOW, allow);
            }
            GatewayError::RateLimited(refusal) => {
                let penghubung_ratelimit::Exceeded { retry_after, policy, state, .. } = *refusal;
                headers.insert(RETRY_AFTER, HeaderValue::from(retry_after));
                headers.insert(penghubung_ratelimit::RATELIMIT_POLICY, policy);
                headers.insert(penghubung_ratelimit::RATELIMIT, state);
            }
            GatewayError::RateLimitUnavailable | GatewayError::AuditUnavailable { .. } => {
                headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
            }
            GatewayError::AdapterTokenUnavailable { retry_after, .. } => {
                let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                headers.insert(RETRY_AFTER, HeaderValue::from(seconds.max(1)));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn problem_json_has_code_status_and_request_id() {
        let id = HeaderValue::from_static("abc123");
        let allow = HeaderValue::from_static("GET, HEAD");
        let response = GatewayError::MethodNotAllowed { method: http::Method::POST, allow }.into_response(&id);
        assert_eq!(response.status(), 405);
        assert_eq!(response.headers()[ALLOW], "GET, HEAD");
        assert_eq!(response.headers()[CONTENT_TYPE], "application/problem+json");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["code"], "route.method_not_allowed");
        assert_eq!(json["status"], 405);
        assert_eq!(json["request_id"], "abc123");
    }

    /// Each domain error becomes its flat variant, field for field, with the same detail and the expected code.
    #[test]
    fn domain_errors_become_the_same_problems() {
        fn check(code: &str, detail: String, converted: GatewayError, expected: GatewayError) {
            assert_eq!(format!("{converted:?}"), format!("{expected:?}"));
            assert_eq!(converted.code(), code, "{expected:?}");
            assert_eq!(converted.to_string(), detail, "{expected:?}");
        }
        macro_rules! case {
            ($domain:expr, $code:literal, $flat:expr) => {{
                let domain = $domain;
                check($code, domain.to_string(), domain.into(), $flat)
            }};
        }
        let allow = || HeaderValue::from_static("GET, HEAD");
        case!(RouteError::NotFound, "route.not_found", GatewayError::RouteNotFound);
        case!(
            RouteError::MethodNotAllowed(Box::new(penghubung_routing::MethodNotAllowed {
                method: http::Method::POST,
                allow: allow()
            })),
            "route.method_not_allowed",
            GatewayError::MethodNotAllowed { method: http::Method::POST, allow: allow() }
        );
        case!(
            RouteError::InvalidPath { reason: "r" },
            "request.invalid_path",
            GatewayError::InvalidPath { reason: "r" }
        );

        let expected = || "application/json".to_string();
        let violations = || vec![Violation { pointer: "/nik".into(), keyword: "pattern".into(), message: "m".into() }];
        case!(
            ContractError::UnsupportedMediaType { expected: expected(), got: None },
            "contract.unsupported_media_type",
            GatewayError::UnsupportedMediaType { expected: expected(), got: None }
        );
        case!(
            ContractError::UnsupportedMediaType { expected: expected(), got: Some("text/plain".into()) },
            "contract.unsupported_media_type",
            GatewayError::UnsupportedMediaType { expected: expected(), got: Some("text/plain".into()) }
        );
        case!(
            ContractError::MalformedJson { line: 3, column: 4, reason: "eof".into() },
            "contract.malformed_json",
            GatewayError::MalformedJson { line: 3, column: 4, reason: "eof".into() }
        );
        case!(
            ContractError::DuplicateKey { pointer: "/a".into() },
            "contract.duplicate_key",
            GatewayError::DuplicateKey { pointer: "/a".into() }
        );
        case!(ContractError::TooDeep { limit: 64 }, "contract.too_deep", GatewayError::TooDeep { limit: 64 });
        case!(
            ContractError::NumberPrecision { pointer: "/n".into() },
            "contract.number_precision",
            GatewayError::NumberPrecision { pointer: "/n".into() }
        );
        case!(
            ContractError::RequestInvalid { violations: violations() },
            "contract.request_invalid",
            GatewayError::RequestInvalid { violations: violations() }
        );
        case!(
            ContractError::QueryInvalid { violations: violations() },
            "contract.query_invalid",
            GatewayError::QueryInvalid { violations: violations() }
        );

        let quota = penghubung_ratelimit::Quota { rate: 3, period: Duration::from_secs(10), burst: 3 };
        let policy = || HeaderValue::from_static("\"grant\";q=3;w=10");
        let state = || HeaderValue::from_static("\"grant\";r=0;t=4");
        case!(
            LimitError::Exceeded(Box::new(penghubung_ratelimit::Exceeded {
                scope: "grant",
                quota,
                retry_after: 4,
                policy: policy(),
                state: state()
            })),
            "ratelimit.exceeded",
            GatewayError::RateLimited(Box::new(penghubung_ratelimit::Exceeded {
                scope: "grant",
                quota,
                retry_after: 4,
                policy: policy(),
                state: state()
            }))
        );
        case!(LimitError::StoreUnavailable, "ratelimit.unavailable", GatewayError::RateLimitUnavailable);

        let retry_after = Duration::from_millis(1500);
        case!(
            AdapterError::TokenUnavailable { adapter: "splp", detail: "d".into(), retry_after },
            "adapter.token_unavailable",
            GatewayError::AdapterTokenUnavailable { adapter: "splp", detail: "d".into(), retry_after }
        );
        case!(
            AdapterError::UpstreamRefused { adapter: "splp", detail: "d".into() },
            "adapter.upstream_refused",
            GatewayError::AdapterRefused { adapter: "splp", detail: "d".into() }
        );
        case!(
            AdapterError::MappingFailed { adapter: "dukcapil", detail: "d".into() },
            "adapter.mapping_failed",
            GatewayError::AdapterMappingFailed { adapter: "dukcapil", detail: "d".into() }
        );
        let too_large: GatewayError = AdapterError::BodyTooLarge { limit: 1024 }.into();
        assert_eq!((too_large.code(), too_large.status()), ("request.body_too_large", StatusCode::PAYLOAD_TOO_LARGE));
    }

    #[test]
    fn an_unavailable_token_answers_503_with_a_whole_second_retry_after() {
        let id = HeaderValue::from_static("r");
        let error =
            |retry_after| GatewayError::AdapterTokenUnavailable { adapter: "splp", detail: "d".into(), retry_after };
        let response = error(Duration::from_millis(1500)).into_response(&id);
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()[RETRY_AFTER], "2", "rounded up");
        assert_eq!(error(Duration::ZERO).into_response(&id).headers()[RETRY_AFTER], "1", "never 0");
        let refused = GatewayError::AdapterRefused { adapter: "splp", detail: "d".into() }.into_response(&id);
        assert_eq!(refused.status(), 502);
        assert!(refused.headers().get(RETRY_AFTER).is_none());
    }

    /// The domain errors stay small, so that their `Result`s stay cheap on the hot path.
    #[test]
    fn domain_errors_are_small() {
        assert!(std::mem::size_of::<RouteError>() <= 24, "{}", std::mem::size_of::<RouteError>());
        assert!(std::mem::size_of::<ContractError>() <= 56, "{}", std::mem::size_of::<ContractError>());
        assert!(std::mem::size_of::<LimitError>() <= 8, "{}", std::mem::size_of::<LimitError>());
    }
}

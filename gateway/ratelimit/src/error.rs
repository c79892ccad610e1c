//! What rate limiting refuses: a request over one of its limits, or any request while the shared store is
//! unreachable and the gateway is configured to fail closed. The gateway's error module turns each into its
//! problem response (429 `ratelimit.exceeded` with `Retry-After`, `RateLimit-Policy` and `RateLimit`; 503
//! `ratelimit.unavailable`); rate limiting itself knows no response.

use http::header::HeaderValue;

use crate::quota::Quota;

/// Why a request was not admitted by its limits.
#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    /// A limit is exhausted (boxed: its headers would make every `Result` of the limiter several times larger).
    #[error("the {} rate limit ({}) is exhausted; retry in {} s", .0.scope, .0.quota, .0.retry_after)]
    Exceeded(Box<Exceeded>),
    /// The shared store is unreachable and `[redis] on_unavailable = "fail_closed"`.
    #[error(
        "the shared rate-limit store is unreachable and this gateway is configured to refuse meanwhile; retry shortly"
    )]
    StoreUnavailable,
}

/// The limit that refused a request: its scope and quota, when to retry (whole seconds), and the
/// `RateLimit-Policy` and `RateLimit` header values naming it.
#[derive(Debug)]
pub struct Exceeded {
    pub scope: &'static str,
    pub quota: Quota,
    pub retry_after: u64,
    pub policy: HeaderValue,
    pub state: HeaderValue,
}

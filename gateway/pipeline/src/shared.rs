//! What every connection shares: the snapshot, the limits checked on the request head, the policy settings, the
//! TLS material, the bearer-token verifier, the rate limiter, the audit trail, the metrics and the tracer
//! ([`Shared`], built once by the server).

use std::sync::Arc;

use penghubung_audit::Auditor;
use penghubung_jwt::TokenVerifier;
use penghubung_metrics::Metrics;
use penghubung_ratelimit::RateLimiter;
use penghubung_snapshot::SnapshotCell;
use penghubung_tls::material::TlsState;
use penghubung_trace::Tracer;

/// Limits checked on the request head.
#[derive(Clone, Copy, Debug)]
pub struct HeadLimits {
    pub max_header_bytes: usize,
    pub max_uri_bytes: usize,
    /// Largest upstream response read whole to check it against its contract.
    pub max_checked_response: u64,
}

/// State shared by every connection.
#[derive(Debug)]
pub struct Shared {
    pub snapshot: Arc<SnapshotCell>,
    pub limits: HeadLimits,
    pub access_log: bool,
    /// The data plane's TLS material (CRLs are checked per request); `None` when every listener is plaintext.
    pub tls: Option<Arc<TlsState>>,
    /// The trusted token issuers and their keys; `None` without `[[jwt_issuers]]`.
    pub tokens: Option<Arc<TokenVerifier>>,
    pub policy: PolicySettings,
    /// Rate limits: in process, or shared through Redis.
    pub ratelimit: RateLimiter,
    /// The audit trail, when on.
    pub audit: Option<Arc<Auditor>>,
    /// Spans of sampled requests, exported over OTLP; `None` without a `[traces] endpoint`.
    pub trace: Option<Tracer>,
    /// The metrics, when `[ops] metrics` is on (recorded once per request by the respond phase).
    pub metrics: Option<Arc<Metrics>>,
}

/// How the policy step runs.
#[derive(Clone, Copy, Debug)]
pub struct PolicySettings {
    /// `false` only for measuring the bare proxy: no decision at all.
    pub enforce: bool,
    /// Largest response buffered for field redaction.
    pub max_redacted_body: u64,
}

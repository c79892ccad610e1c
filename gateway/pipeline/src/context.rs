//! What one request's phases learn, in one place: [`RequestContext`]. The phases return values; the orchestration
//! ([`crate::handle`]) records each into the context right after the phase that produced it, through the
//! methods below, and nowhere else. The respond phase reads it for the access-log line, the account phase turns
//! it into the audit record; with an audit trail the context also holds that record's facts ([`AuditFacts`]).

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use http::header::HeaderValue;
use http::Request;

use penghubung_audit::nik::NikScanner;
use penghubung_audit::tap::{RequestOutcome, SharedOutcome};
use penghubung_audit::{AuditDurability, Auditor};
use penghubung_routing::CompiledOperation;
use penghubung_snapshot::{ClientEntry, CompiledService};
use penghubung_upstream::body::Inbound;
use penghubung_upstream::headers;

use crate::authorize::Authorization;

/// What the access log (and the audit record) says about a request.
#[derive(Default)]
pub(super) struct RequestContext {
    /// The identified client's id (`X-Penghubung-Client`).
    pub client: Option<HeaderValue>,
    pub service: Option<Arc<str>>,
    /// `GET /pasien/{id}` (access log).
    pub operation: Option<Arc<str>>,
    /// The upstream endpoint that answered.
    pub upstream: Option<Arc<str>>,
    /// The problem code of a refused or failed request.
    pub code: Option<&'static str>,
    /// The validated purpose of use.
    pub purpose: Option<HeaderValue>,
    /// Set only when auditing: what the record needs beyond the access log.
    pub audit: Option<Box<AuditFacts>>,
}

/// The audit record's facts gathered on the way in.
pub(super) struct AuditFacts {
    pub time: SystemTime,
    pub traceparent: Option<HeaderValue>,
    pub opd: Option<HeaderValue>,
    pub operation_id: Option<Arc<str>>,
    /// The operation's path template (`None` for a pass-through service).
    pub path: Option<Arc<str>>,
    pub durability: AuditDurability,
    /// How long a `sync` exchange may wait for the first frame of a small response body (the service's request
    /// timeout), see [`penghubung_audit::tap::Audited::read_ahead`].
    pub read_ahead_within: std::time::Duration,
    pub outcome: SharedOutcome,
}

impl AuditFacts {
    /// Starts the facts of a request: arrival time, the trace (started here when the caller sent none), and the
    /// NIKs of its path and query (scanned here: the raw path never reaches the record).
    pub fn start(auditor: &Auditor, request: &mut Request<Inbound>) -> Box<AuditFacts> {
        headers::ensure_traceparent(request.headers_mut());
        let mut scanner = NikScanner::default();
        if let Some(target) = request.uri().path_and_query() {
            scanner.feed(target.as_str().as_bytes());
            scanner.finish();
        }
        Box::new(AuditFacts {
            time: SystemTime::now(),
            traceparent: request.headers().get(headers::TRACEPARENT).cloned(),
            opd: None,
            operation_id: None,
            path: None,
            durability: auditor.default_durability,
            read_ahead_within: std::time::Duration::ZERO,
            outcome: Arc::new(Mutex::new(RequestOutcome { nik: scanner, ..RequestOutcome::default() })),
        })
    }
}

impl RequestContext {
    /// The context of a request that just arrived; with an audit trail, its record's facts are started (the
    /// arrival time, the trace, the NIKs of the path and query).
    pub fn start(auditor: Option<&Auditor>, request: &mut Request<Inbound>) -> Self {
        let mut context = RequestContext::default();
        if let Some(auditor) = auditor {
            context.audit = Some(AuditFacts::start(auditor, request));
        }
        context
    }

    /// Discovery identified `client` (its record names the client and its OPD; no provider OPD).
    pub fn discovering(&mut self, client: Option<&ClientEntry>) {
        self.identified(client);
    }

    /// The identify phase's client (none without a certificate).
    pub fn identified(&mut self, client: Option<&ClientEntry>) {
        if let Some(client) = client {
            self.client = Some(client.client_header.clone());
            if let Some(facts) = self.audit.as_mut() {
                facts.opd = Some(client.opd_header.clone());
            }
        }
    }

    /// The route phase's service, and what its audit setting asks of the record.
    pub fn routed(&mut self, service: &CompiledService, auditor: Option<&Auditor>) {
        self.service = Some(Arc::clone(&service.key));
        if let (Some(facts), Some(auditor)) = (self.audit.as_mut(), auditor) {
            facts.durability = service.doc.audit.unwrap_or(auditor.default_durability);
            facts.read_ahead_within = service.upstream.pool.spec.request_timeout;
        }
    }

    /// The operation the authorize phase matched: known as soon as it matched, also when the policy then refuses
    /// the call.
    pub fn matched(&mut self, operation: Option<&CompiledOperation>) {
        self.operation = operation.map(|o| Arc::clone(&o.label));
        if let Some(facts) = self.audit.as_mut() {
            facts.operation_id = operation.map(|o| Arc::clone(&o.id));
            facts.path = operation.map(|o| Arc::clone(&o.template)); // pass-through: the writer says `/{service}/*`
        }
    }

    /// The authorize phase's decision: the validated purpose, when the policy decided.
    pub fn authorized(&mut self, authorization: &Authorization<'_>) {
        self.purpose = authorization.permit().and_then(|p| p.purpose.clone());
    }

    /// The forward phase's upstream endpoint.
    pub fn forwarded(&mut self, upstream: Arc<str>) {
        self.upstream = Some(upstream);
    }

    /// The problem the request ended in (the respond phase's rescue).
    pub fn failed(&mut self, code: &'static str) {
        self.code = Some(code);
    }
}

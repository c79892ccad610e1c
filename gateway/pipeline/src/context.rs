//! What one request's phases learn, in one place: [`RequestContext`]. The phases return values; the orchestration
//! ([`crate::handle`]) records each into the context right after the phase that produced it, through the
//! methods below, and nowhere else. The respond phase reads it for the access-log line, the account phase turns
//! it into the audit record; with an audit trail the context also holds that record's facts ([`AuditFacts`]).
//! A sampled request's span is here too, and the same methods give it its attributes (ids of the snapshot only).
//! The span is started before the audit facts, so that the `traceparent` the record keeps names it.

use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use http::header::HeaderValue;
use http::Request;

use penghubung_audit::nik::NikScanner;
use penghubung_audit::tap::{RequestOutcome, SharedOutcome};
use penghubung_audit::{AuditDurability, Auditor};
use penghubung_metrics::Observation;
use penghubung_routing::CompiledOperation;
use penghubung_snapshot::{ClientEntry, CompiledService};
use penghubung_trace::{Span, Tracer};
use penghubung_upstream::body::Inbound;
use penghubung_upstream::headers;

use crate::authorize::Authorization;

/// What the access log (and the audit record) says about a request. `'s` is the snapshot the request is served
/// from, which the metrics' label values are borrowed from.
#[derive(Default)]
pub(super) struct RequestContext<'s> {
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
    /// The request's span: none unless tracing is on and the request sampled.
    pub span: Span,
    /// Set only when metrics are on: the labels and measures the respond phase records.
    pub metrics: Option<MetricFacts<'s>>,
}

/// What the metrics record, filled in place as the phases learn it: the observation itself (its label values
/// borrowed from the snapshot, nothing cloned or formatted), and when the response head was ready.
pub(super) struct MetricFacts<'s> {
    /// The status, code, duration and response length are set when the request ends.
    pub observation: Observation<'s>,
    /// When the upstream's response head arrived, while that is also when the response head is ready: no
    /// response check ran after it (only the admission's headers were added, which takes no measurable time).
    /// The request's duration then ends at this reading instead of another one.
    pub head_ready: Option<Instant>,
}

impl MetricFacts<'_> {
    /// The end of the request's duration: when its response head was ready.
    pub fn head_ready(&self) -> Instant {
        self.head_ready.unwrap_or_else(Instant::now)
    }
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

impl<'s> RequestContext<'s> {
    /// The context of a request that just arrived: with a tracer, the request's span (when sampled) and the
    /// `traceparent` it decides; with metrics, the facts they record; with an audit trail, its record's facts
    /// (the arrival time, the trace, the NIKs of the path and query).
    pub fn start(
        auditor: Option<&Auditor>,
        tracer: Option<&Tracer>,
        metrics: bool,
        request: &mut Request<Inbound>,
    ) -> Self {
        let mut context = RequestContext::default();
        if let Some(tracer) = tracer {
            context.span = tracer.request(request);
        }
        if metrics {
            // The body's own length (its `Content-Length`, already parsed; none for a chunked body).
            let bytes_in = http_body::Body::size_hint(request.body()).exact().unwrap_or(0);
            let observation = Observation {
                service: None,
                provider_opd: None,
                caller_opd: None,
                operation: None,
                status: 0,
                code: None,
                duration: std::time::Duration::ZERO,
                upstream: None,
                bytes_in,
                bytes_out: 0,
                redacted: false,
            };
            context.metrics = Some(MetricFacts { observation, head_ready: None });
        }
        if let Some(auditor) = auditor {
            context.audit = Some(AuditFacts::start(auditor, request));
        }
        context
    }

    /// Discovery identified `client` (its record names the client and its OPD; no provider OPD).
    pub fn discovering(&mut self, client: Option<&'s ClientEntry>) {
        self.identified(client);
    }

    /// The identify phase's client (none without a certificate).
    pub fn identified(&mut self, client: Option<&'s ClientEntry>) {
        if let Some(client) = client {
            self.span.client(&client.client_header, &client.opd_header);
            self.client = Some(client.client_header.clone());
            if let Some(metrics) = self.metrics.as_mut() {
                metrics.observation.caller_opd = Some(&client.opd);
            }
            if let Some(facts) = self.audit.as_mut() {
                facts.opd = Some(client.opd_header.clone());
            }
        }
    }

    /// The route phase's service, and what its audit setting asks of the record.
    pub fn routed(&mut self, service: &'s CompiledService, auditor: Option<&Auditor>) {
        self.service = Some(Arc::clone(&service.key));
        self.span.service(&service.key, &service.doc.opd);
        if let Some(metrics) = self.metrics.as_mut() {
            metrics.observation.service = Some(&service.key);
            metrics.observation.provider_opd = Some(&service.opd);
        }
        if let (Some(facts), Some(auditor)) = (self.audit.as_mut(), auditor) {
            facts.durability = service.doc.audit.unwrap_or(auditor.default_durability);
            facts.read_ahead_within = service.upstream.pool.spec.request_timeout;
        }
    }

    /// The operation the authorize phase matched: known as soon as it matched, also when the policy then refuses
    /// the call.
    pub fn matched(&mut self, operation: Option<&'s CompiledOperation>) {
        self.operation = operation.map(|o| Arc::clone(&o.label));
        if let Some(o) = operation {
            self.span.operation(&o.id, &o.template, &o.label);
        }
        if let Some(metrics) = self.metrics.as_mut() {
            metrics.observation.operation = operation.map(|o| &o.id);
        }
        if let Some(facts) = self.audit.as_mut() {
            facts.operation_id = operation.map(|o| Arc::clone(&o.id));
            facts.path = operation.map(|o| Arc::clone(&o.template)); // pass-through: the writer says `/{service}/*`
        }
    }

    /// The authorize phase's decision: the validated purpose, when the policy decided.
    pub fn authorized(&mut self, authorization: &Authorization<'_>) {
        self.purpose = authorization.permit().and_then(|p| p.purpose.clone());
    }

    /// The forward phase's upstream endpoint, and (with metrics) how long the exchange took since `started`.
    pub fn forwarded(&mut self, upstream: Arc<str>, started: tokio::time::Instant) {
        self.upstream = Some(upstream);
        if let Some(metrics) = self.metrics.as_mut() {
            let arrived = tokio::time::Instant::now();
            metrics.observation.upstream = Some(arrived.saturating_duration_since(started));
            metrics.head_ready = Some(arrived.into_std());
        }
    }

    /// The check response phase runs (and filters the response for the caller's clearance when `redacts`):
    /// the response head is ready only when it is done.
    pub fn checking_response(&mut self, redacts: bool) {
        if let Some(metrics) = self.metrics.as_mut() {
            metrics.observation.redacted = redacts;
            metrics.head_ready = None;
        }
    }

    /// The problem the request ended in (the respond phase's rescue).
    pub fn failed(&mut self, code: &'static str) {
        self.code = Some(code);
    }
}

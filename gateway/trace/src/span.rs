//! A request's span and its phases' spans, as the pipeline holds them: [`Span`] is one pointer, `None` when the
//! request is not sampled, so that an unsampled request carries 8 bytes and every call on its span is one
//! branch. A sampled span ends when it is dropped (or at [`Span::finish`] for the request's own).
//!
//! What a span may carry is fixed here, not by the pipeline: the method (a known one, else `_OTHER`), the
//! service, operation, client and OPD ids (values of the snapshot), the route template, the status code and the
//! gateway's error code. Never the path, the query, a header value or a body: those may hold a NIK.

use std::sync::Arc;

use http::header::HeaderValue;
use http::{HeaderMap, Method};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt};
use opentelemetry::{Context, KeyValue, StringValue};

use crate::context;

/// The phases of the pipeline that get a span of their own under the request's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Identify,
    Route,
    Authorize,
    Limit,
    /// The request's contract (query, media type, body).
    ContractRequest,
    /// A service's adapter, around its upstream calls.
    Adapter,
    /// The upstream call (a client span: its context is what the upstream receives).
    Upstream,
    /// The response's contract and the redaction release.
    ContractResponse,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Identify => "identify",
            Phase::Route => "route",
            Phase::Authorize => "authorize",
            Phase::Limit => "limit",
            Phase::ContractRequest => "contract request",
            Phase::Adapter => "adapter",
            Phase::Upstream => "upstream",
            Phase::ContractResponse => "contract response",
        }
    }

    pub(crate) fn kind(self) -> SpanKind {
        if self == Phase::Upstream {
            SpanKind::Client
        } else {
            SpanKind::Internal
        }
    }
}

/// The attribute keys a span may carry.
pub mod attribute {
    pub const METHOD: &str = "http.request.method";
    pub const STATUS: &str = "http.response.status_code";
    pub const ROUTE: &str = "http.route";
    /// The gateway's stable error code (`policy.denied`, `upstream.timeout` ...).
    pub const ERROR: &str = "error.type";
    pub const SERVICE: &str = "penghubung.service";
    pub const OPERATION: &str = "penghubung.operation";
    pub const CLIENT: &str = "penghubung.client";
    pub const CALLER_OPD: &str = "penghubung.caller_opd";
    pub const PROVIDER_OPD: &str = "penghubung.provider_opd";
}

/// A span of the request or of one of its phases; `Span::default()` (none) when not sampled.
#[derive(Debug, Default)]
pub struct Span(pub(crate) Option<Box<Context>>);

impl Span {
    /// No span (tracing off or the request not sampled).
    pub const fn none() -> Self {
        Span(None)
    }

    pub fn is_sampled(&self) -> bool {
        self.0.is_some()
    }

    /// Sets this span's context as the `traceparent` of `headers` (the upstream request's): the upstream's work
    /// joins the trace under this span. Nothing when not sampled.
    pub fn inject(&self, headers: &mut HeaderMap) {
        if let Some(cx) = &self.0 {
            headers.insert(crate::TRACEPARENT, context::traceparent(cx.span().span_context()));
        }
    }

    /// The identified client and its OPD (the registered ids).
    pub fn client(&self, client: &HeaderValue, opd: &HeaderValue) {
        if let Some(cx) = &self.0 {
            let span = cx.span();
            if let Ok(client) = client.to_str() {
                span.set_attribute(KeyValue::new(attribute::CLIENT, client.to_string()));
            }
            if let Ok(opd) = opd.to_str() {
                span.set_attribute(KeyValue::new(attribute::CALLER_OPD, opd.to_string()));
            }
        }
    }

    /// The routed service and the OPD that provides it.
    pub fn service(&self, service: &Arc<str>, provider_opd: &str) {
        if let Some(cx) = &self.0 {
            let span = cx.span();
            span.set_attribute(KeyValue::new(attribute::SERVICE, StringValue::from(Arc::clone(service))));
            span.set_attribute(KeyValue::new(attribute::PROVIDER_OPD, provider_opd.to_string()));
        }
    }

    /// The matched operation: its id, its route template, and its label (`GET /pasien/{id}`) as the span's name.
    pub fn operation(&self, id: &Arc<str>, template: &Arc<str>, label: &Arc<str>) {
        if let Some(cx) = &self.0 {
            let span = cx.span();
            span.set_attribute(KeyValue::new(attribute::OPERATION, StringValue::from(Arc::clone(id))));
            span.set_attribute(KeyValue::new(attribute::ROUTE, StringValue::from(Arc::clone(template))));
            span.update_name(label.to_string());
        }
    }

    /// Marks the span failed with the gateway's error code.
    pub fn fail(&self, code: &'static str) {
        if let Some(cx) = &self.0 {
            let span = cx.span();
            span.set_attribute(KeyValue::new(attribute::ERROR, code));
            span.set_status(Status::error(code));
        }
    }

    /// Ends the request's span with the response's status and, for a refusal or failure, the error code (a 5xx
    /// without one is an error too).
    pub fn finish(self, status: u16, code: Option<&'static str>) {
        if let Some(cx) = self.0 {
            let span = cx.span();
            span.set_attribute(KeyValue::new(attribute::STATUS, i64::from(status)));
            match code {
                Some(code) => {
                    span.set_attribute(KeyValue::new(attribute::ERROR, code));
                    span.set_status(Status::error(code));
                }
                None if status >= 500 => span.set_status(Status::error("")),
                None => {}
            }
            span.end();
        }
    }
}

/// The method as a span may show it: a registered method's name, else `_OTHER` (an extension method's token
/// is the caller's choice).
pub(crate) fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "_OTHER",
    }
}

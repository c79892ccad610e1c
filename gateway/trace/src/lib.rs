//! Traces (`[traces]`): one OpenTelemetry span per request, of kind server, and one child span per pipeline
//! phase; the W3C trace context honoured and propagated; parent-based ratio sampling; export over OTLP/HTTP with
//! protobuf bodies on the hyper-util client, never in the request's way.
//!
//! - [`Tracer::start`] builds the SDK's tracer provider (sampler `ParentBased(TraceIdRatioBased)`, ids that are
//!   never NIK-shaped, the `service.name` resource) and spawns the export task on the current Tokio runtime.
//! - [`Tracer::request`] is the one call per request. With a caller's valid `traceparent` whose sampled flag is
//!   unset, it returns at once and the field travels on unchanged. With a sampled one, the request's span is
//!   its child. Without a valid one, the ratio decides on a new trace id: a sampled request starts a trace; an
//!   unsampled one only gets a `traceparent` with the sampled flag unset, so that services behind the gateway
//!   follow the same decision. A sampled request's `traceparent` then names its span, which is what the audit
//!   record keeps.
//! - [`Tracer::phase`] starts a phase's span under the request's (or under another phase's: the upstream call
//!   under an adapter); for an unsampled request it is one branch. [`Span::inject`] puts the upstream span's
//!   context on the upstream request.
//! - Spans end on drop and go to a bounded queue (`queue_size`); the export task sends them in batches. A full
//!   queue, a refused batch or a collector that does not answer within `export_timeout` drops spans and counts
//!   them: [`Tracer::dropped_spans`], shared as an atomic with the metrics ([`Tracer::dropped_counter`]).
#![forbid(unsafe_code)]

mod context;
mod export;
mod span;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_queue::ArrayQueue;
use http::header::HeaderName;
use http::Request;
use opentelemetry::trace::{SpanBuilder, SpanContext, TraceContextExt, TraceFlags, TraceState, Tracer as _};
use opentelemetry::Context;
use opentelemetry_http::hyper::HyperClient;
use opentelemetry_otlp::{Protocol, RetryPolicy, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider, SpanExporter};
use opentelemetry_sdk::Resource;
use tokio::sync::{watch, Notify};

use penghubung_types::config::TracesConfig;

pub use span::{attribute, Phase, Span};

/// The W3C trace context field.
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// Why tracing could not start.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("[traces] endpoint `{endpoint}`: {reason}")]
    Exporter { endpoint: String, reason: String },
}

/// The gateway's tracer: cheap to clone, shared by every connection.
#[derive(Clone, Debug)]
pub struct Tracer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The share of traces the gateway starts that are sampled (`[traces] sample_ratio`), decided here before
    /// any SDK work, so that an unsampled request costs two random numbers and one header value.
    sample_ratio: f64,
    tracer: SdkTracer,
    provider: SdkTracerProvider,
    counters: Arc<export::Counters>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Tracer {
    /// The tracer `config` asks for: `None` without an endpoint. Must be called within a Tokio runtime, which
    /// runs the export task.
    pub fn start(config: &TracesConfig) -> Result<Option<Tracer>, TraceError> {
        let Some(endpoint) = &config.endpoint else { return Ok(None) };
        let timeout = config.export_timeout.0;
        let failed = |reason: String| TraceError::Exporter { endpoint: endpoint.clone(), reason };
        let mut exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(HyperClient::with_default_connector(timeout, None))
            .with_endpoint(endpoint.as_str())
            .with_protocol(Protocol::HttpBinary)
            .with_timeout(timeout)
            .with_retry_policy(RetryPolicy::disabled())
            .build()
            .map_err(|e| failed(e.to_string()))?;
        let resource = Resource::builder_empty()
            .with_service_name(config.service_name.clone())
            .with_attribute(opentelemetry::KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .build();
        exporter.set_resource(&resource);

        let queue = Arc::new(ArrayQueue::new(config.queue_size.max(1)));
        let counters = Arc::new(export::Counters::default());
        let wake = Arc::new(Notify::new());
        let processor = export::QueueProcessor {
            queue: Arc::clone(&queue),
            counters: Arc::clone(&counters),
            wake: Arc::clone(&wake),
        };
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            // Parent-based: a caller's sampled trace is always recorded (an unsampled one never reaches the SDK); a
            // trace the gateway starts reaches the SDK only once `request` has sampled it by the ratio.
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)))
            .with_id_generator(context::NeverNikIds)
            .with_resource(resource)
            .build();
        let tracer = opentelemetry::trace::TracerProvider::tracer(&provider, "penghubung");
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(export::run(exporter, queue, Arc::clone(&counters), wake, stopped, timeout));
        Ok(Some(Tracer {
            inner: Arc::new(Inner {
                sample_ratio: config.sample_ratio,
                tracer,
                provider,
                counters,
                stop,
                task: Mutex::new(Some(task)),
            }),
        }))
    }

    /// The request's span (see the crate documentation), after the caller's `traceparent`; sets the
    /// `traceparent` the gateway forwards and records when it decides one.
    pub fn request<B>(&self, request: &mut Request<B>) -> Span {
        let method = span::method_label(request.method());
        let headers = request.headers_mut();
        let parent = headers.get(TRACEPARENT).and_then(|v| context::parse(v.as_bytes()));
        let parent_cx = match parent {
            // Parent-based: an unsampled caller's request is not traced, and its field travels unchanged.
            Some(parent) if !parent.sampled => return Span::none(),
            Some(parent) => Context::new().with_remote_span_context(SpanContext::new(
                parent.trace_id,
                parent.span_id,
                TraceFlags::SAMPLED,
                true,
                TraceState::NONE,
            )),
            // A trace the gateway starts, not sampled: its ids and `-00` forwarded, no span built.
            None if fastrand::f64() >= self.inner.sample_ratio => {
                headers.insert(TRACEPARENT, context::unsampled_root());
                return Span::none();
            }
            None => Context::new(),
        };
        let builder = SpanBuilder::from_name(method)
            .with_kind(opentelemetry::trace::SpanKind::Server)
            .with_attributes([opentelemetry::KeyValue::new(attribute::METHOD, method)]);
        let span = self.inner.tracer.build_with_context(builder, &parent_cx);
        headers.insert(TRACEPARENT, context::traceparent(opentelemetry::trace::Span::span_context(&span)));
        if !opentelemetry::trace::Span::is_recording(&span) {
            return Span::none();
        }
        Span(Some(Box::new(parent_cx.with_span(span))))
    }

    /// A phase's span under `parent` (the request's span or a phase's); none when `parent` is none.
    #[inline]
    pub fn phase(&self, parent: &Span, phase: Phase) -> Span {
        match &parent.0 {
            None => Span::none(),
            Some(cx) => self.child(cx, phase),
        }
    }

    #[inline(never)]
    fn child(&self, parent: &Context, phase: Phase) -> Span {
        let builder = SpanBuilder::from_name(phase.name()).with_kind(phase.kind());
        let span = self.inner.tracer.build_with_context(builder, parent);
        Span(Some(Box::new(parent.with_span(span))))
    }

    /// Spans dropped since start: the queue was full, or the collector refused a batch or did not answer.
    pub fn dropped_spans(&self) -> u64 {
        self.inner.counters.dropped.load(Ordering::Relaxed)
    }

    /// The counter behind [`Tracer::dropped_spans`], for a metrics registry to read.
    pub fn dropped_counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.inner.counters.dropped)
    }

    /// Spans the collector took since start.
    pub fn exported_spans(&self) -> u64 {
        self.inner.counters.exported.load(Ordering::Relaxed)
    }

    /// Sends what is queued (within `within`) and stops the export task; spans ended later are dropped.
    pub async fn shutdown(&self, within: Duration) {
        let _ = self.inner.provider.shutdown();
        let _ = self.inner.stop.send(true);
        let task = self.inner.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut task) = task {
            if tokio::time::timeout(within, &mut task).await.is_err() {
                task.abort();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, Method};
    use penghubung_types::config::HumanDuration;

    fn tracer(ratio: f64) -> Tracer {
        let config = TracesConfig {
            // A closed port: these tests look at decisions, not at the export.
            endpoint: Some("http://127.0.0.1:9/v1/traces".into()),
            sample_ratio: ratio,
            service_name: "penghubung".into(),
            queue_size: 16,
            export_timeout: HumanDuration(Duration::from_secs(1)),
        };
        Tracer::start(&config).unwrap().unwrap()
    }

    /// A request with `headers`; the tracer's answer and the headers it leaves.
    fn request(tracer: &Tracer, method: Method, headers: HeaderMap) -> (Span, HeaderMap) {
        let mut request = Request::builder().method(method).body(()).unwrap();
        *request.headers_mut() = headers;
        let span = tracer.request(&mut request);
        (span, request.into_parts().0.headers)
    }

    fn traceparent(headers: &HeaderMap) -> String {
        headers[TRACEPARENT].to_str().unwrap().to_string()
    }

    #[tokio::test]
    async fn no_endpoint_no_tracer() {
        assert!(Tracer::start(&TracesConfig::default()).unwrap().is_none());
    }

    #[tokio::test]
    async fn the_ratio_decides_for_a_request_without_a_trace() {
        let (always, never) = (tracer(1.0), tracer(0.0));
        let (span, headers) = request(&always, Method::GET, HeaderMap::new());
        assert!(span.is_sampled());
        let sampled = traceparent(&headers);
        assert!(sampled.ends_with("-01") && context::parse(sampled.as_bytes()).is_some(), "{sampled}");
        // The request's span and a phase's are in the same trace; the upstream gets the phase's id.
        let upstream = always.phase(&span, Phase::Upstream);
        let mut upstream_headers = HeaderMap::new();
        upstream.inject(&mut upstream_headers);
        let forwarded = traceparent(&upstream_headers);
        assert_eq!(forwarded[..36], sampled[..36]);
        assert_ne!(forwarded[36..52], sampled[36..52]);

        let (span, headers) = request(&never, Method::GET, HeaderMap::new());
        assert!(!span.is_sampled());
        assert!(!never.phase(&span, Phase::Route).is_sampled());
        let unsampled = traceparent(&headers);
        assert!(unsampled.ends_with("-00") && context::parse(unsampled.as_bytes()).is_some(), "{unsampled}");
    }

    #[tokio::test]
    async fn a_callers_decision_is_followed() {
        let never = tracer(0.0);
        let caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let mut headers = HeaderMap::new();
        headers.insert(TRACEPARENT, caller.parse().unwrap());
        let (span, headers) = request(&never, Method::POST, headers);
        assert!(span.is_sampled(), "a sampled parent is always followed");
        let own = traceparent(&headers);
        assert_eq!(own[..36], caller[..36], "the caller's trace");
        assert_ne!(own[36..52], caller[36..52], "the gateway's span");

        let always = tracer(1.0);
        let unsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
        let mut headers = HeaderMap::new();
        headers.insert(TRACEPARENT, unsampled.parse().unwrap());
        let (span, headers) = request(&always, Method::GET, headers);
        assert!(!span.is_sampled());
        assert_eq!(traceparent(&headers), unsampled, "left as the caller sent it");

        let mut headers = HeaderMap::new();
        headers.insert(TRACEPARENT, "00-3201010101010001a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap());
        let (span, headers) = request(&always, Method::GET, headers);
        assert!(span.is_sampled());
        assert!(!traceparent(&headers).contains("3201010101010001"), "a NIK-shaped trace is replaced");
    }

    #[tokio::test]
    async fn spans_for_a_closed_collector_are_dropped_and_counted() {
        let tracer = tracer(1.0);
        for _ in 0..40 {
            let (span, _) = request(&tracer, Method::GET, HeaderMap::new());
            drop(tracer.phase(&span, Phase::Route));
            span.finish(200, None);
        }
        // 80 spans into a queue of 16: at least 64 dropped at once, the rest when the export fails.
        assert!(tracer.dropped_spans() >= 64, "{}", tracer.dropped_spans());
        tracer.shutdown(Duration::from_secs(5)).await;
        assert_eq!(tracer.dropped_spans(), 80);
        assert_eq!(tracer.exported_spans(), 0);
    }
}

//! A test OTLP/HTTP trace receiver: a real HTTP server ([`crate::Upstream`]) on `127.0.0.1:0` that takes
//! `POST /v1/traces` with a protobuf `ExportTraceServiceRequest`, decodes it with `opentelemetry-proto`, keeps
//! the spans and the raw bodies (to search them for what must never be exported), and answers as a collector.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::BodyExt;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

use crate::{full, Upstream};

/// The receiver; [`OtlpReceiver::endpoint`] is what `[traces] endpoint` names.
pub struct OtlpReceiver {
    server: Upstream,
    received: Arc<Mutex<Received>>,
}

#[derive(Default)]
struct Received {
    spans: Vec<Span>,
    bodies: Vec<Bytes>,
    service_names: Vec<String>,
}

impl OtlpReceiver {
    pub async fn start() -> OtlpReceiver {
        let received = Arc::new(Mutex::new(Received::default()));
        let kept = Arc::clone(&received);
        let server = Upstream::start(move |request| {
            let kept = Arc::clone(&kept);
            async move {
                let content_type = request.headers().get("content-type").cloned();
                let path = request.uri().path().to_string();
                let body = request.into_body().collect().await.unwrap().to_bytes();
                if path != "/v1/traces" || content_type.as_ref().is_none_or(|c| c != "application/x-protobuf") {
                    let mut r = Response::new(full("not an OTLP/HTTP protobuf trace export"));
                    *r.status_mut() = StatusCode::BAD_REQUEST;
                    return r;
                }
                let export = ExportTraceServiceRequest::decode(body.clone()).expect("an ExportTraceServiceRequest");
                let mut kept = kept.lock().unwrap();
                kept.bodies.push(body);
                for resource in export.resource_spans {
                    let name = resource.resource.as_ref().and_then(|r| {
                        r.attributes.iter().find(|a| a.key == "service.name").and_then(|a| string_of(a.value.as_ref()?))
                    });
                    kept.service_names.extend(name);
                    for scope in resource.scope_spans {
                        kept.spans.extend(scope.spans);
                    }
                }
                let mut r = Response::new(full(ExportTraceServiceResponse::default().encode_to_vec()));
                r.headers_mut().insert("content-type", "application/x-protobuf".parse().unwrap());
                r
            }
        })
        .await;
        OtlpReceiver { server, received }
    }

    /// `http://127.0.0.1:{port}/v1/traces`.
    pub fn endpoint(&self) -> String {
        format!("{}/v1/traces", self.server.url())
    }

    /// The spans received so far.
    pub fn spans(&self) -> Vec<Span> {
        self.received.lock().unwrap().spans.clone()
    }

    /// The `service.name` of every resource received.
    pub fn service_names(&self) -> Vec<String> {
        self.received.lock().unwrap().service_names.clone()
    }

    /// Every export request's body as it arrived.
    pub fn bodies(&self) -> Vec<Bytes> {
        self.received.lock().unwrap().bodies.clone()
    }

    /// Waits (at most 20 s) until `done` holds for the spans received; returns them.
    pub async fn wait_for(&self, what: &str, done: impl Fn(&[Span]) -> bool) -> Vec<Span> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let spans = self.spans();
            if done(&spans) {
                return spans;
            }
            assert!(Instant::now() < deadline, "{what}: {} spans received: {spans:#?}", spans.len());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A string attribute's value.
fn string_of(value: &opentelemetry_proto::tonic::common::v1::AnyValue) -> Option<String> {
    match value.value.as_ref()? {
        Value::StringValue(s) => Some(s.clone()),
        Value::IntValue(i) => Some(i.to_string()),
        other => Some(format!("{other:?}")),
    }
}

/// The value of `span`'s attribute `key`, as text.
pub fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes.iter().find(|a| a.key == key).and_then(|a| string_of(a.value.as_ref()?))
}

/// Lower-case hex of an id.
pub fn hex(id: &[u8]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

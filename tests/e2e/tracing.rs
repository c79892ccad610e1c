//! Traces: spans of requests and their phases exported over OTLP/HTTP to a real receiver
//! ([`penghubung_tests::otlp::OtlpReceiver`], decoding with `opentelemetry-proto`); the caller's W3C trace
//! context honoured and propagated to the upstream; parent-based ratio sampling; a collector that is down costs
//! requests nothing and its spans are counted as dropped; no span carries a path, a query or a NIK.

use std::time::{Duration, Instant};

use http::Request;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::Span;
use penghubung_tests::otlp::{attribute, hex, OtlpReceiver};
use penghubung_tests::{closed_port_url, docs, empty, full, http1_client, send, TestGateway, Upstream};

/// `[traces]` towards `endpoint`, sampling `ratio` of the requests without a trace context.
fn traces(endpoint: &str, ratio: f64, extra: &str) -> String {
    format!("[traces]\nendpoint = \"{endpoint}\"\nsample_ratio = {ratio}\nservice_name = \"gw-uji\"\n{extra}\n")
}

/// A service `dinkes/rm/v1` with one templated operation, forwarding to `up`.
fn documents(up: &Upstream) -> Vec<(String, String)> {
    let operation = docs::operation("baca-pasien", "GET", "/pasien/{id}")
        + &docs::operation("kirim-pasien", "POST", "/pasien/{id}");
    vec![docs::opd("dinkes"), docs::service("dinkes", "rm", &[up.url()], "", &operation)]
}

/// The status of a GET of `url`.
async fn status_of(url: String) -> u16 {
    send(&http1_client(), Request::get(url).body(empty()).unwrap()).await.status.as_u16()
}

fn roots(spans: &[Span]) -> Vec<&Span> {
    spans.iter().filter(|s| s.kind == SpanKind::Server as i32).collect()
}

#[tokio::test]
async fn a_callers_trace_gets_the_request_span_and_one_per_phase() {
    let receiver = OtlpReceiver::start().await;
    let up = Upstream::text("ok").await;
    // Ratio 0: only the caller's sampled trace is traced.
    let gw = TestGateway::start(&documents(&up), &traces(&receiver.endpoint(), 0.0, "")).await;
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let request = Request::get(format!("{}/dinkes/rm/v1/pasien/17", gw.url))
        .header("traceparent", format!("00-{caller_trace}-{caller_span}-01"))
        .header("tracestate", "vendor=abc")
        .body(empty())
        .unwrap();
    assert_eq!(send(&http1_client(), request).await.status, 200);

    let spans = receiver.wait_for("the request's span and its phases", |s| s.len() >= 6).await;
    assert!(spans.iter().all(|s| hex(&s.trace_id) == caller_trace), "every span is in the caller's trace");
    let root = roots(&spans);
    assert_eq!(root.len(), 1, "one server span: {spans:#?}");
    let root = root[0];
    assert_eq!(hex(&root.parent_span_id), caller_span, "the request's span is the caller's child");
    assert_eq!(root.name, "GET /pasien/{id}");
    assert!(root.trace_state.is_empty(), "the caller's tracestate is not exported");
    assert_eq!(attribute(root, "penghubung.service").as_deref(), Some("dinkes/rm/v1"));
    assert_eq!(attribute(root, "penghubung.operation").as_deref(), Some("baca-pasien"));
    assert_eq!(attribute(root, "penghubung.provider_opd").as_deref(), Some("dinkes"));
    assert_eq!(attribute(root, "http.route").as_deref(), Some("/pasien/{id}"));
    assert_eq!(attribute(root, "http.request.method").as_deref(), Some("GET"));
    assert_eq!(attribute(root, "http.response.status_code").as_deref(), Some("200"));
    assert_eq!(receiver.service_names().first().map(String::as_str), Some("gw-uji"));

    let children: Vec<&str> =
        spans.iter().filter(|s| s.parent_span_id == root.span_id).map(|s| s.name.as_str()).collect();
    for phase in ["identify", "route", "authorize", "limit", "upstream"] {
        assert!(children.contains(&phase), "a `{phase}` span under the request's: {children:?}");
    }
    let upstream_span = spans.iter().find(|s| s.name == "upstream").unwrap();
    assert_eq!(upstream_span.kind, SpanKind::Client as i32);
    assert!(root.start_time_unix_nano <= upstream_span.start_time_unix_nano);
    assert!(upstream_span.end_time_unix_nano <= root.end_time_unix_nano);

    // The upstream joins the trace under the gateway's upstream span; the caller's tracestate travels on.
    let seen = &up.seen()[0].headers;
    let forwarded = seen["traceparent"].to_str().unwrap();
    assert_eq!(forwarded, format!("00-{caller_trace}-{}-01", hex(&upstream_span.span_id)));
    assert_eq!(seen["tracestate"], "vendor=abc");

    // A caller that did not sample: no span, and its field travels unchanged.
    let unsampled = format!("00-{caller_trace}-{caller_span}-00");
    let request = Request::get(format!("{}/dinkes/rm/v1/pasien/18", gw.url))
        .header("traceparent", unsampled.as_str())
        .body(empty())
        .unwrap();
    assert_eq!(send(&http1_client(), request).await.status, 200);
    assert_eq!(up.seen()[1].headers["traceparent"], unsampled.as_str());
    // A refused request's span carries the gateway's error code.
    let request = Request::get(format!("{}/dinkes/tidak-ada/v1/x", gw.url))
        .header("traceparent", format!("00-{caller_trace}-{caller_span}-01"))
        .body(empty())
        .unwrap();
    assert_eq!(send(&http1_client(), request).await.status, 404);
    let spans = receiver.wait_for("the refused request's span", |s| roots(s).len() >= 2).await;
    assert_eq!(roots(&spans).len(), 2, "the unsampled caller's request has no span");
    let refused = roots(&spans).into_iter().find(|s| s.span_id != root.span_id).unwrap();
    assert_eq!(attribute(refused, "http.response.status_code").as_deref(), Some("404"));
    assert_eq!(attribute(refused, "error.type").as_deref(), Some("route.not_found"));
    let route = spans.iter().find(|s| s.parent_span_id == refused.span_id && s.name == "route").unwrap();
    assert_eq!(attribute(route, "error.type").as_deref(), Some("route.not_found"));
    assert_eq!(gw.gateway().tracer().unwrap().dropped_spans(), 0);
}

#[tokio::test]
async fn requests_without_a_trace_are_sampled_by_ratio() {
    let receiver = OtlpReceiver::start().await;
    let up = Upstream::text("ok").await;
    let all = TestGateway::start(&documents(&up), &traces(&receiver.endpoint(), 1.0, "")).await;
    for i in 0..5 {
        assert_eq!(status_of(format!("{}/dinkes/rm/v1/pasien/{i}", all.url)).await, 200);
    }
    let spans = receiver.wait_for("five request spans", |s| roots(s).len() >= 5).await;
    let roots_seen = roots(&spans);
    for (root, seen) in roots_seen.iter().zip(up.seen()) {
        assert!(root.parent_span_id.is_empty(), "a request without a trace starts one");
        let forwarded = seen.headers["traceparent"].to_str().unwrap().to_string();
        assert!(forwarded.ends_with("-01"), "{forwarded}");
        assert!(spans.iter().any(|s| s.trace_id == root.trace_id && forwarded.contains(&hex(&s.trace_id))));
    }

    // Ratio 0: no span; the upstream is told the trace is not sampled.
    let receiver = OtlpReceiver::start().await;
    let up = Upstream::text("ok").await;
    let none = TestGateway::start(&documents(&up), &traces(&receiver.endpoint(), 0.0, "")).await;
    for i in 0..5 {
        assert_eq!(status_of(format!("{}/dinkes/rm/v1/pasien/{i}", none.url)).await, 200);
    }
    for seen in up.seen() {
        let forwarded = seen.headers["traceparent"].to_str().unwrap().to_string();
        assert!(forwarded.starts_with("00-") && forwarded.ends_with("-00"), "{forwarded}");
    }

    // Ratio 0.5 over 200 requests: about half (the bounds are more than eight standard deviations wide).
    let receiver_half = OtlpReceiver::start().await;
    let half = TestGateway::start(&documents(&up), &traces(&receiver_half.endpoint(), 0.5, "")).await;
    for i in 0..200 {
        assert_eq!(status_of(format!("{}/dinkes/rm/v1/pasien/{i}", half.url)).await, 200);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sampled = roots(&receiver_half.spans()).len();
    assert!((40..=160).contains(&sampled), "{sampled} of 200 sampled at 0.5");
    assert!(receiver.spans().is_empty(), "ratio 0 exported nothing");
}

#[tokio::test]
async fn a_collector_that_is_down_costs_requests_nothing_and_its_spans_are_counted() {
    let up = Upstream::text("ok").await;
    let endpoint = format!("{}/v1/traces", closed_port_url());
    let gw = TestGateway::start(&documents(&up), &traces(&endpoint, 1.0, "queue_size = 32")).await;
    let started = Instant::now();
    for i in 0..200 {
        assert_eq!(status_of(format!("{}/dinkes/rm/v1/pasien/{i}", gw.url)).await, 200);
    }
    // A generous bound: 200 requests on a loopback take well under a second when nothing waits on the collector.
    assert!(started.elapsed() < Duration::from_secs(20), "200 requests took {:?}", started.elapsed());
    let tracer = gw.gateway().tracer().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    // Six spans per request (the request's and identify, route, authorize, limit, upstream), all dropped.
    while tracer.dropped_spans() < 1200 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(tracer.dropped_spans(), 1200);
    assert_eq!(tracer.exported_spans(), 0);

    // A collector that accepts connections and never answers: requests are not held either.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_endpoint = format!("http://{}/v1/traces", silent.local_addr().unwrap());
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let gw = TestGateway::start(&documents(&up), &traces(&silent_endpoint, 1.0, "export_timeout = \"1s\"")).await;
    let started = Instant::now();
    for i in 0..100 {
        assert_eq!(status_of(format!("{}/dinkes/rm/v1/pasien/{i}", gw.url)).await, 200);
    }
    assert!(started.elapsed() < Duration::from_secs(20), "100 requests took {:?}", started.elapsed());
    let tracer = gw.gateway().tracer().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while tracer.dropped_spans() < 600 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(tracer.dropped_spans(), 600, "every span of the unanswered exports is counted");
    hold.abort();
}

#[tokio::test]
async fn spans_carry_no_path_query_header_value_or_nik() {
    let receiver = OtlpReceiver::start().await;
    let up = Upstream::text("ok").await;
    let gw = TestGateway::start(&documents(&up), &traces(&receiver.endpoint(), 1.0, "")).await;
    let niks = ["3201010101010001", "3201010101010002", "3201010101010003", "3201010101010004"];
    let requests = [
        Request::get(format!("{}/dinkes/rm/v1/pasien/{}?nik={}", gw.url, niks[0], niks[1]))
            .header("x-nik", niks[2])
            .body(empty())
            .unwrap(),
        Request::post(format!("{}/dinkes/rm/v1/pasien/{}", gw.url, niks[0]))
            .header("content-type", "application/json")
            .body(full(format!("{{\"nik\":\"{}\"}}", niks[3])))
            .unwrap(),
        // Unknown routes and methods: the refusals are traced too.
        Request::get(format!("{}/dinkes/{}/v1/x?q={}", gw.url, niks[0], niks[1])).body(empty()).unwrap(),
        Request::builder()
            .method(http::Method::from_bytes(format!("X{}", niks[2]).as_bytes()).unwrap())
            .uri(format!("{}/dinkes/rm/v1/pasien/{}", gw.url, niks[0]))
            .body(empty())
            .unwrap(),
    ];
    for request in requests {
        send(&http1_client(), request).await;
    }
    let spans = receiver.wait_for("four request spans", |s| roots(s).len() >= 4).await;
    let bodies = receiver.bodies();
    let mut exported: Vec<u8> = bodies.iter().flat_map(|b| b.to_vec()).collect();
    exported.extend(format!("{spans:?}").into_bytes());
    let contains = |needle: &str| exported.windows(needle.len()).any(|w| w == needle.as_bytes());
    for nik in niks {
        assert!(!contains(nik), "a NIK was exported");
        assert!(!contains(&nik[..12]), "part of a NIK was exported");
    }
    for value in ["nik=", "x-nik", "/pasien/3", "/dinkes/rm/v1", "127.0.0.1", "application/json"] {
        assert!(!contains(value), "`{value}` was exported");
    }
    assert!(roots(&spans).iter().any(|s| attribute(s, "http.request.method").as_deref() == Some("_OTHER")));
}

#[tokio::test]
async fn an_identified_callers_span_names_its_client_and_opd_and_its_audit_record_names_the_trace() {
    let receiver = OtlpReceiver::start().await;
    let up = Upstream::text("ok").await;
    let dir = tempfile::tempdir().unwrap();
    let pki = penghubung_tests::mtls::Pki::new(dir.path());
    let spiffe = format!("spiffe://{}/opd/bappeda/app/sipd", penghubung_tests::mtls::TRUST_DOMAIN);
    let mut documents = documents(&up);
    documents.extend([
        docs::opd("bappeda"),
        docs::client("bappeda", "sipd", &spiffe, true),
        docs::grant("sipd-rm", "bappeda/sipd", "dinkes/rm/v1", &["baca-pasien"]),
        docs::unlimited_tier(),
    ]);
    let extra = format!("[audit]\nenabled = true\n\n{}", traces(&receiver.endpoint(), 1.0, ""));
    let config = penghubung_tests::mtls::write_mtls_setup(dir.path(), &documents, &pki, &extra);
    let gateway = penghubung::Gateway::start(penghubung::Config::load(&config).unwrap()).await.unwrap();
    let client = penghubung_tests::mtls::https_client(penghubung_tests::mtls::client_config(
        &pki.ca_pem(),
        Some(&pki.client("bappeda", "sipd")),
    ));
    let url = format!("https://{}/dinkes/rm/v1/pasien/3201010101010001", gateway.local_addrs()[0]);
    assert_eq!(send(&client, Request::get(url).body(empty()).unwrap()).await.status, 200);

    let spans = receiver.wait_for("the identified caller's request span", |s| !roots(s).is_empty()).await;
    let root = roots(&spans)[0];
    assert_eq!(attribute(root, "penghubung.client").as_deref(), Some("bappeda/sipd"));
    assert_eq!(attribute(root, "penghubung.caller_opd").as_deref(), Some("bappeda"));
    assert_eq!(attribute(root, "penghubung.provider_opd").as_deref(), Some("dinkes"));
    assert_eq!(attribute(root, "penghubung.operation").as_deref(), Some("baca-pasien"));

    // The exchange's audit record keeps the request's trace id.
    let trace = format!("\"trace_id\":\"{}\"", hex(&root.trace_id));
    let audit_dir = dir.path().join("audit");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text: String = std::fs::read_dir(&audit_dir)
            .map(|entries| {
                entries.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok()).collect::<Vec<_>>().join("\n")
            })
            .unwrap_or_default();
        if text.contains(&trace) {
            break;
        }
        assert!(Instant::now() < deadline, "no audit record names {trace}: {text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    gateway.shutdown().await;
}

//! Header rules and protocols: hop-by-hop headers removed, forwarding headers set by the gateway, request ids
//! and trace context, caller-set `X-Penghubung-*` headers dropped, HTTP/1.1 and HTTP/2 callers and upstreams.

use http::{Request, Response, Version};
use penghubung_tests::{docs, empty, full, http1_client, http2_client, send, TestGateway, Upstream};

#[tokio::test]
async fn headers_are_rewritten_at_the_trust_boundary() {
    let up = Upstream::start(|_req| async {
        let mut r = Response::new(full("ok"));
        r.headers_mut().insert("connection", "x-internal".parse().unwrap());
        r.headers_mut().insert("x-internal", "secret".parse().unwrap());
        r.headers_mut().insert("keep-alive", "timeout=5".parse().unwrap());
        r.headers_mut().insert("x-kept", "yes".parse().unwrap());
        r
    })
    .await;
    let gw = TestGateway::start(&[docs::opd("dinkes"), docs::service("dinkes", "rm", &[up.url()], "", "")], "").await;
    let trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let request = Request::get(format!("{}/dinkes/rm/v1/x", gw.url))
        .header("connection", "keep-alive, x-hop")
        .header("x-hop", "drop me")
        .header("proxy-authorization", "Basic c2VjcmV0")
        .header("x-forwarded-for", "6.6.6.6")
        .header("forwarded", "for=6.6.6.6")
        .header("x-penghubung-client", "disdukcapil/forged")
        .header("X-Penghubung-Opd", "disdukcapil")
        .header("x-request-id", "req-abc.123")
        .header("traceparent", trace)
        .header("x-app", "kept")
        .body(empty())
        .unwrap();
    let r = send(&http1_client(), request).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["x-request-id"], "req-abc.123", "a well-formed caller request id is kept and returned");
    assert!(r.headers.get("x-internal").is_none(), "headers named in the upstream's Connection are removed");
    assert!(r.headers.get("keep-alive").is_none());
    assert_eq!(r.headers["x-kept"], "yes");

    let seen = &up.seen()[0];
    let h = &seen.headers;
    assert!(h.get("x-hop").is_none());
    assert!(h.get("proxy-authorization").is_none());
    assert!(h.keys().all(|k| !k.as_str().starts_with("x-penghubung-")), "caller identity headers never pass: {h:?}");
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-host"], gw.addr.to_string());
    assert_eq!(h["forwarded"], format!("for=127.0.0.1;proto=http;host={}", gw.addr));
    assert_eq!(h["x-request-id"], "req-abc.123");
    assert_eq!(h["traceparent"], trace);
    assert_eq!(h["x-app"], "kept");
    assert_eq!(h["host"], up.addr.to_string(), "the upstream sees its own authority");
}

#[tokio::test]
async fn request_id_and_traceparent_are_generated_when_missing_or_malformed() {
    let up = Upstream::text("ok").await;
    let gw = TestGateway::start(&[docs::opd("dinkes"), docs::service("dinkes", "rm", &[up.url()], "", "")], "").await;
    let request = Request::get(format!("{}/dinkes/rm/v1/x", gw.url))
        .header("x-request-id", "not valid; has spaces")
        .header("traceparent", "garbage")
        .body(empty())
        .unwrap();
    let r = send(&http1_client(), request).await;
    let id = r.headers["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(id.len(), 32);
    let seen = &up.seen()[0].headers;
    assert_eq!(seen["x-request-id"], id.as_str(), "upstream and caller see the same id");
    let tp = seen["traceparent"].to_str().unwrap();
    assert_eq!(tp.len(), 55);
    assert!(tp.starts_with("00-") && tp.ends_with("-01"));
}

#[tokio::test]
async fn http2_callers_and_http2_upstreams_work() {
    let up = Upstream::start(|req| async move { Response::new(full(format!("{:?}", req.version()))) }).await;
    let gw = TestGateway::start(
        &[
            docs::opd("dinkes"),
            docs::service("dinkes", "h1", &[up.url()], "", ""),
            docs::service("dinkes", "h2", &[up.url()], "http2 = true", ""),
        ],
        "",
    )
    .await;
    let h2 = http2_client();
    let r = send(&h2, Request::get(format!("{}/dinkes/h1/v1/x", gw.url)).body(empty()).unwrap()).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "HTTP/1.1", "an HTTP/2 caller reaches an HTTP/1.1 upstream");
    let r = send(&h2, Request::get(format!("{}/dinkes/h2/v1/x", gw.url)).body(empty()).unwrap()).await;
    assert_eq!(r.text(), "HTTP/2.0", "an HTTP/2 upstream is reached over h2c");
    // Many concurrent streams on one HTTP/2 connection.
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let h2 = h2.clone();
            let url = format!("{}/dinkes/h1/v1/item/{i}", gw.url);
            tokio::spawn(async move { send(&h2, Request::get(url).body(empty()).unwrap()).await.status })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let r = send(&http1_client(), Request::post(format!("{}/dinkes/h2/v1/x", gw.url)).body(full("abc")).unwrap()).await;
    assert_eq!(r.status, 200);
    assert!(up.seen().iter().any(|s| s.version == Version::HTTP_2));
}

#[tokio::test]
async fn health_endpoint_reports_the_snapshot() {
    let up = Upstream::text("ok").await;
    let gw = TestGateway::start(&[docs::opd("dinkes"), docs::service("dinkes", "rm", &[up.url()], "", "")], "").await;
    let r = penghubung_tests::get(&format!("{}/_penghubung/health", gw.url)).await;
    assert_eq!(r.status, 200);
    let json = r.json();
    assert_eq!(json["status"], "ok");
    assert_eq!(json["generation"], 1);
    assert_eq!(json["services"], 1);
    let r = penghubung_tests::get(&format!("{}/_penghubung/nothing", gw.url)).await;
    assert_eq!(r.code(), "route.not_found");
}

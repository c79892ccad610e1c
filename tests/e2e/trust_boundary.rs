//! The trust boundary by class: caller headers that a backend could read as one the gateway controls (any
//! spelling with `_`), headers backends trust to override the client address, URL or method, the `Host` rules
//! of RFC 9112, and `HEAD` answered by the gateway itself, over HTTP/1.1 (the own server and hyper) and HTTP/2.

use http::{Method, Request};
use penghubung_tests::{
    docs, empty, full, http1_client, http2_client, raw_exchange, raw_status, send, TestGateway, Upstream,
};

/// Every spelling with `_` of a header the gateway sets or frames (what CGI/WSGI-style backends fold onto the
/// dashed name), in several cases.
const FOLDED_ONTO_CONTROLLED: [&str; 14] = [
    "X_Penghubung_Client",
    "x_penghubung_opd",
    "X-Penghubung_Purpose",
    "X_PENGHUBUNG_CLIENT",
    "X_Forwarded_For",
    "x_forwarded_host",
    "X_Forwarded_Proto",
    "Transfer_Encoding",
    "Content_Length",
    "x_request_id",
    "Proxy_Authorization",
    "Keep_Alive",
    "forwarded_",
    "Accept_Encoding",
];

const OVERRIDES: [&str; 10] = [
    "X-Real-IP",
    "True-Client-IP",
    "X-Client-IP",
    "X-Forwarded-Port",
    "X-Forwarded-Server",
    "X-Forwarded-Prefix",
    "X-Original-URL",
    "X-Rewrite-URL",
    "X-HTTP-Method-Override",
    "X-Method-Override",
];

fn names_seen(up: &Upstream) -> Vec<String> {
    up.seen().last().unwrap().headers.keys().map(|k| k.as_str().to_string()).collect()
}

#[tokio::test]
async fn no_spelling_of_a_controlled_header_and_no_override_header_reaches_the_backend() {
    let up = Upstream::text("ok").await;
    let listed = "caller_headers = [\"X-Real-IP\", \"x_legacy_token\"]\n";
    let gw = TestGateway::start(
        &[
            docs::opd("dinkes"),
            docs::service("dinkes", "rm", &[up.url()], "", ""),
            docs::service("dinkes", "lama", &[up.url()], "", listed),
        ],
        "",
    )
    .await;
    // "forwarded_" folds onto "forwarded-", which the gateway does not control: it is dropped as any other
    // underscore name is.
    for (version, client) in [("HTTP/1.1", http1_client()), ("HTTP/2", http2_client())] {
        for body in [false, true] {
            // A body-less GET is read by the own HTTP/1.1 server, a POST with a body by hyper's.
            let method = if body { Method::POST } else { Method::GET };
            let mut request = Request::builder().method(method.clone()).uri(format!("{}/dinkes/rm/v1/x", gw.url));
            for name in FOLDED_ONTO_CONTROLLED.iter().chain(&OVERRIDES) {
                request = request.header(*name, "1807015508900002");
            }
            let request = request.header("x_app_hint", "v").header("x-app", "kept");
            let request = request.body(if body { full("{}") } else { empty() }).unwrap();
            let r = send(&client, request).await;
            assert_eq!(r.status, 200, "{version} {method}: {}", r.text());
            let seen = names_seen(&up);
            assert!(seen.iter().all(|n| !n.contains('_')), "{version} {method}: an underscore name passed: {seen:?}");
            for name in OVERRIDES {
                assert!(!seen.contains(&name.to_ascii_lowercase()), "{version} {method}: {name} passed");
            }
            assert!(seen.contains(&"x-app".to_string()));
            let h = up.seen().last().unwrap().headers.clone();
            assert_eq!(h["x-forwarded-for"], "127.0.0.1", "{version} {method}");
            if body {
                assert_eq!(h["content-length"], "2", "{version}: the framing is the gateway's");
            }
        }
    }
    // A service that lists headers gets exactly those, never a controlled one.
    let request = Request::get(format!("{}/dinkes/lama/v1/x", gw.url))
        .header("x-real-ip", "10.9.8.7")
        .header("x_legacy_token", "t")
        .header("true-client-ip", "10.9.8.7")
        .header("x_forwarded_for", "6.6.6.6")
        .body(empty())
        .unwrap();
    assert_eq!(send(&http1_client(), request).await.status, 200);
    let h = up.seen().last().unwrap().headers.clone();
    assert_eq!(h["x-real-ip"], "10.9.8.7");
    assert_eq!(h["x_legacy_token"], "t");
    assert!(h.get("true-client-ip").is_none() && h.get("x_forwarded_for").is_none(), "{h:?}");
}

#[tokio::test]
async fn a_service_cannot_ask_for_a_controlled_header() {
    let up = Upstream::text("ok").await;
    for listed in ["X_Penghubung_Client", "x-forwarded-for", "Transfer_Encoding", "host", "traceparent"] {
        let dir = tempfile::tempdir().unwrap();
        let documents = [
            docs::opd("dinkes"),
            docs::service("dinkes", "rm", &[up.url()], "", &format!("caller_headers = [\"{listed}\"]\n")),
        ];
        let config = penghubung_tests::write_setup(dir.path(), &documents, "");
        let (code, output) = penghubung_tests::run_cli(&config, &["check"]);
        assert_eq!(code, 1, "{listed}: {output}");
        assert!(output.contains("caller_headers") && output.contains("services/dinkes/rm.toml"), "{output}");
    }
}

#[tokio::test]
async fn http11_requests_need_exactly_one_host() {
    let up = Upstream::text("ok").await;
    let gw = TestGateway::start(&[docs::opd("dinkes"), docs::service("dinkes", "rm", &[up.url()], "", "")], "").await;
    let cases: [(&str, &[u8]); 6] = [
        ("missing, own server", b"GET /dinkes/rm/v1/x HTTP/1.1\r\n\r\n"),
        ("twice, own server", b"GET /dinkes/rm/v1/x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
        ("twice, same value", b"GET /dinkes/rm/v1/x HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n"),
        ("missing, with a body", b"POST /dinkes/rm/v1/x HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"),
        ("twice, with a body", b"POST /dinkes/rm/v1/x HTTP/1.1\r\nHost: a\r\nHost: b\r\nContent-Length: 2\r\n\r\n{}"),
        ("missing, HEAD", b"HEAD /dinkes/rm/v1/x HTTP/1.1\r\n\r\n"),
    ];
    for (case, request) in cases {
        let response = raw_exchange(gw.addr, request).await;
        assert_eq!(raw_status(&response), 400, "{case}: {response}");
        if !case.contains("HEAD") {
            assert!(response.contains("request.invalid_host"), "{case}: {response}");
        }
    }
    assert_eq!(up.hits(), 0, "nothing reached the upstream");
    // HTTP/1.0 needs none; one Host is fine.
    let ok = raw_exchange(gw.addr, b"GET /dinkes/rm/v1/x HTTP/1.0\r\n\r\n").await;
    assert_eq!(raw_status(&ok), 200, "{ok}");
    let ok = raw_exchange(gw.addr, b"GET /dinkes/rm/v1/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").await;
    assert_eq!(raw_status(&ok), 200, "{ok}");
}

#[tokio::test]
async fn head_answered_by_the_gateway_carries_no_body_over_http2() {
    let up = Upstream::text("ok").await;
    let gw = TestGateway::start(&[docs::opd("dinkes"), docs::service("dinkes", "rm", &[up.url()], "", "")], "").await;
    let tcp = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    for (path, status) in [
        ("/_penghubung/health", 200),
        ("/tidak/ada/v1/x", 404),
        ("/dinkes/rm/v1/%2e%2e/x", 400),
        ("/_penghubung/tidak-ada", 404),
    ] {
        let mut client = client.clone().ready().await.unwrap();
        let request = Request::head(format!("http://{}{path}", gw.addr)).body(()).unwrap();
        let (response, _) = client.send_request(request, true).unwrap();
        let response = response.await.unwrap();
        assert_eq!(response.status(), status, "{path}");
        let length: usize = response.headers()["content-length"].to_str().unwrap().parse().unwrap();
        assert!(length > 0, "{path}: the length a GET would have");
        let mut body = response.into_body();
        assert!(body.is_end_stream(), "{path}: the head ended the stream (no DATA frame)");
        assert!(body.data().await.is_none(), "{path}");
    }
    // And over HTTP/1.1 (hyper's server), the same head.
    let r = send(&http1_client(), Request::head(format!("{}/_penghubung/health", gw.url)).body(empty()).unwrap()).await;
    assert_eq!((r.status.as_u16(), r.body.len()), (200, 0));
}

//! Upstream trouble: refused connections → 502 within the connect timeout, slow upstream → 504 at the request
//! timeout, one endpoint of two down → traffic moves to the healthy one, non-idempotent requests are not
//! retried, a response body that stalls past the request timeout is cut off.

use std::time::{Duration, Instant};

use http::{Request, Response};
use http_body_util::BodyExt;
use penghubung_tests::{
    closed_port_url, docs, empty, full, get, http1_client, http2_client, send, PausingBody, TestGateway, Upstream,
};

#[tokio::test]
async fn refused_connection_is_502_within_the_connect_timeout() {
    let gw = TestGateway::start(
        &[docs::opd("dinkes"), docs::service("dinkes", "rm", &[closed_port_url()], "connect_timeout = \"1s\"", "")],
        "",
    )
    .await;
    let started = Instant::now();
    let r = get(&format!("{}/dinkes/rm/v1/x", gw.url)).await;
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    assert_eq!(r.status, 502);
    assert_eq!(r.code(), "upstream.unavailable");
    assert!(r.json()["detail"].as_str().unwrap().contains("dinkes/rm/v1"));
}

#[tokio::test]
async fn slow_upstream_is_504_at_the_request_timeout() {
    let up = Upstream::start(|_req| async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        Response::new(full("late"))
    })
    .await;
    let gw = TestGateway::start(
        &[docs::opd("dinkes"), docs::service("dinkes", "rm", &[up.url()], "request_timeout = \"300ms\"", "")],
        "",
    )
    .await;
    let started = Instant::now();
    let r = get(&format!("{}/dinkes/rm/v1/x", gw.url)).await;
    let took = started.elapsed();
    assert_eq!(r.status, 504);
    assert_eq!(r.code(), "upstream.timeout");
    assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(2), "{took:?}");
}

#[tokio::test]
async fn traffic_moves_to_the_healthy_endpoint() {
    let healthy = Upstream::text("sehat").await;
    for lb in ["round_robin", "p2c"] {
        let name = lb.replace('_', "-");
        let gw = TestGateway::start(
            &[
                docs::opd("dinkes"),
                docs::service(
                    "dinkes",
                    &name,
                    &[closed_port_url(), healthy.url()],
                    &format!("load_balance = \"{lb}\"\neject_after_failures = 1\neject_for = \"30s\""),
                    "",
                ),
            ],
            "",
        )
        .await;
        let client = http1_client();
        for i in 0..20 {
            let r =
                send(&client, Request::get(format!("{}/dinkes/{name}/v1/x/{i}", gw.url)).body(empty()).unwrap()).await;
            assert_eq!(r.status, 200, "{lb}: request {i}: {}", r.text());
            assert_eq!(r.text(), "sehat");
        }
        // Once the dead endpoint is ejected, even non-idempotent requests only go to the healthy one.
        for i in 0..10 {
            let r =
                send(&client, Request::post(format!("{}/dinkes/{name}/v1/x/{i}", gw.url)).body(full("data")).unwrap())
                    .await;
            assert_eq!(r.status, 200, "{lb}: POST {i}");
        }
    }
}

#[tokio::test]
async fn non_idempotent_requests_are_not_retried() {
    let gw = TestGateway::start(
        &[
            docs::opd("dinkes"),
            docs::service(
                "dinkes",
                "rm",
                &[closed_port_url(), closed_port_url()],
                "load_balance = \"round_robin\"\nretries = 3",
                "",
            ),
        ],
        "",
    )
    .await;
    let r =
        send(&http1_client(), Request::post(format!("{}/dinkes/rm/v1/x", gw.url)).body(full("data")).unwrap()).await;
    assert_eq!(r.status, 502);
    assert_eq!(r.code(), "upstream.unavailable");
}

#[tokio::test]
async fn upstream_dropping_the_connection_is_502_bad_response() {
    // A "server" that accepts and closes without answering.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            if let Ok((mut s, _)) = listener.accept().await {
                use tokio::io::AsyncReadExt;
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                drop(s);
            }
        }
    });
    let gw = TestGateway::start(
        &[docs::opd("dinkes"), docs::service("dinkes", "rm", &[format!("http://{addr}")], "retries = 0", "")],
        "",
    )
    .await;
    let r = send(&http1_client(), Request::post(format!("{}/dinkes/rm/v1/x", gw.url)).body(full("x")).unwrap()).await;
    assert_eq!(r.status, 502);
    assert_eq!(r.code(), "upstream.bad_response");
}

/// A response whose body starts and then stalls is cut off once the pause passes the request timeout (the
/// caller's body read fails, it does not hang), over HTTP/1.1 and HTTP/2 upstreams alike.
#[tokio::test]
async fn upstream_body_stalling_past_the_request_timeout_is_cut_off() {
    let up = Upstream::start(|_req| async {
        let body = PausingBody::new(vec![(Duration::ZERO, "awal data;"), (Duration::from_secs(30), "terlambat")]);
        Response::new(body.boxed())
    })
    .await;
    let healthy = Upstream::text("baik").await;
    let [h1, h2] = services_over_h1_and_h2(&up.url());
    let gw =
        TestGateway::start(&[docs::opd("dinkes"), h1, h2, docs::service("dinkes", "ok", &[healthy.url()], "", "")], "")
            .await;
    for (service, client) in [("h1", http1_client()), ("h2", http2_client()), ("h2", http1_client())] {
        let started = Instant::now();
        let response = client
            .request(Request::get(format!("{}/dinkes/{service}/v1/x", gw.url)).body(empty()).unwrap())
            .await
            .expect("the head arrives");
        assert_eq!(response.status(), 200, "{service}");
        let collected = tokio::time::timeout(Duration::from_secs(10), response.into_body().collect()).await;
        let took = started.elapsed();
        let collected = collected.unwrap_or_else(|_| panic!("{service}: the body hung for 10 s"));
        assert!(collected.is_err(), "{service}: a stalled body must not look complete");
        assert!(took >= Duration::from_millis(400) && took < Duration::from_secs(5), "{service}: {took:?}");
    }
    // The gateway goes on serving: another service answers whole.
    let r = get(&format!("{}/dinkes/ok/v1/x", gw.url)).await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "baik"));
}

/// A body that keeps coming, pause by pause shorter than the request timeout, passes whole even though it
/// takes longer than the timeout in all.
#[tokio::test]
async fn upstream_body_streaming_slowly_within_the_timeout_passes_whole() {
    let up = Upstream::start(|_req| async {
        let pause = Duration::from_millis(150);
        let body = PausingBody::new(vec![
            (Duration::ZERO, "satu "),
            (pause, "dua "),
            (pause, "tiga "),
            (pause, "empat "),
            (pause, "lima "),
            (pause, "enam"),
        ]);
        Response::new(body.boxed())
    })
    .await;
    let [h1, h2] = services_over_h1_and_h2(&up.url());
    let gw = TestGateway::start(&[docs::opd("dinkes"), h1, h2], "").await;
    for service in ["h1", "h2"] {
        let started = Instant::now();
        let r = get(&format!("{}/dinkes/{service}/v1/x", gw.url)).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "satu dua tiga empat lima enam", "{service}");
        assert!(started.elapsed() >= Duration::from_millis(700), "{service}: {:?}", started.elapsed());
    }
}

/// Services `dinkes/h1` and `dinkes/h2` in front of `endpoint`, over HTTP/1.1 and HTTP/2, with a request timeout
/// of 400 ms.
fn services_over_h1_and_h2(endpoint: &str) -> [(String, String); 2] {
    let endpoints = [endpoint.to_string()];
    [
        docs::service("dinkes", "h1", &endpoints, "request_timeout = \"400ms\"", ""),
        docs::service("dinkes", "h2", &endpoints, "request_timeout = \"400ms\"\nhttp2 = true", ""),
    ]
}

/// An upstream that reads the whole request body and answers with its length.
async fn body_length_upstream() -> Upstream {
    Upstream::start(|req: Request<hyper::body::Incoming>| async move {
        match req.into_body().collect().await {
            Ok(body) => Response::new(full(body.to_bytes().len().to_string())),
            Err(_) => Response::new(full("broken")),
        }
    })
    .await
}

/// A caller whose body stops halfway gets 408 `request.body_timeout` once the pause passes the request
/// timeout, and it is the caller's fault, not the upstream's: no endpoint is ejected for it. HTTP/1.1 and
/// HTTP/2 upstreams alike.
#[tokio::test]
async fn caller_body_stalling_is_408_and_ejects_no_endpoint() {
    let (first, second) = (body_length_upstream().await, body_length_upstream().await);
    let gw = TestGateway::start(
        &[
            docs::opd("dinkes"),
            docs::service(
                "dinkes",
                "h1",
                &[first.url(), second.url()],
                "request_timeout = \"400ms\"\nload_balance = \"round_robin\"\neject_after_failures = 1\neject_for = \"60s\"",
                "",
            ),
            docs::service(
                "dinkes",
                "h2",
                &[first.url(), second.url()],
                "request_timeout = \"400ms\"\nload_balance = \"round_robin\"\neject_after_failures = 1\neject_for = \"60s\"\nhttp2 = true",
                "",
            ),
        ],
        "",
    )
    .await;
    for service in ["h1", "h2"] {
        for _ in 0..2 {
            // Two stalled callers: with eject_after_failures = 1, each endpoint would be ejected if they counted.
            let started = Instant::now();
            let head = format!("POST /dinkes/{service}/v1/berkas HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n");
            let raw = penghubung_tests::raw_exchange(gw.addr, format!("{head}baru sepuluh").as_bytes()).await;
            let took = started.elapsed();
            assert_eq!(penghubung_tests::raw_status(&raw), 408, "{service}: {raw}");
            assert!(raw.contains("request.body_timeout"), "{service}: {raw}");
            assert!(took >= Duration::from_millis(400) && took < Duration::from_secs(4), "{service}: {took:?}");
        }
        let (before_first, before_second) = (first.hits(), second.hits());
        let client = http1_client();
        for i in 0..6 {
            let url = format!("{}/dinkes/{service}/v1/{i}", gw.url);
            let r = send(&client, Request::post(url).body(full("lengkap")).unwrap()).await;
            assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "7"), "{service}: request {i}");
        }
        assert_eq!(first.hits() - before_first, 3, "{service}: both endpoints still take traffic");
        assert_eq!(second.hits() - before_second, 3, "{service}: both endpoints still take traffic");
    }
}

/// An upload that keeps coming, pause by pause shorter than the request timeout, passes whole although it
/// takes longer than the timeout in all: the timeout for the answer starts once the body is sent. HTTP/1.1 and
/// HTTP/2 upstreams alike.
#[tokio::test]
async fn slow_upload_within_the_timeout_passes_whole() {
    let up = body_length_upstream().await;
    let [h1, h2] = services_over_h1_and_h2(&up.url());
    let gw = TestGateway::start(&[docs::opd("dinkes"), h1, h2], "").await;
    for service in ["h1", "h2"] {
        let pause = Duration::from_millis(150);
        let chunks = vec![(Duration::ZERO, "0123456789"), (pause, "0123456789"), (pause, "0123456789")];
        let chunks = [chunks.clone(), chunks].concat();
        let started = Instant::now();
        let request = Request::post(format!("{}/dinkes/{service}/v1/berkas", gw.url))
            .body(PausingBody::new(chunks).boxed())
            .unwrap();
        let r = send(&http1_client(), request).await;
        assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "60"), "{service}");
        assert!(started.elapsed() >= Duration::from_millis(600), "{service}: {:?}", started.elapsed());
    }
}

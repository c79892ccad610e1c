//! Upstream trouble: refused connections → 502 within the connect timeout, slow upstream → 504 at the request
//! timeout, one endpoint of two down → traffic moves to the healthy one, non-idempotent requests are not
//! retried.

use std::time::{Duration, Instant};

use http::{Request, Response};
use penghubung_tests::{closed_port_url, docs, empty, full, get, http1_client, send, TestGateway, Upstream};

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

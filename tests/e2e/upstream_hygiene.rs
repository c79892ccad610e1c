//! What a misbehaving backend cannot do through the gateway: hand an unsolicited response to another caller's
//! request on a pooled connection, confuse callers with a `Content-Length` on a 204 or 304, or break a body off
//! without the access log naming the request and `upstream.bad_response`.

use std::time::Duration;

use http::Request;
use http_body_util::BodyExt;
use penghubung_tests::{docs, empty, full, http1_client, http2_client, raw_exchange, raw_status, send, TestGateway};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A raw HTTP/1.1 backend: answers each request on a connection with `answer(n)` (n counts the backend's
/// requests), then, after `stray_after`, writes a second response nobody asked for on the same connection.
async fn backend<F>(answer: F, stray_after: Option<Duration>) -> String
where
    F: Fn(usize) -> Vec<u8> + Send + Sync + Clone + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let (answer, count) = (answer.clone(), count.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                    buf.drain(..end);
                    let n = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    let mut out = answer(n);
                    match stray_after {
                        Some(delay) if delay.is_zero() => {
                            out.extend_from_slice(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nSTRAY");
                            let _ = socket.write_all(&out).await;
                        }
                        Some(delay) => {
                            let _ = socket.write_all(&out).await;
                            tokio::time::sleep(delay).await;
                            let _ = socket.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nSTRAY").await;
                        }
                        None => {
                            let _ = socket.write_all(&out).await;
                        }
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

fn ok(n: usize) -> Vec<u8> {
    let body = format!("answer-{n}");
    format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}", body.len()).into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsolicited_response_never_reaches_another_request() {
    for stray_after in [
        Duration::ZERO,
        Duration::from_millis(2),
        Duration::from_millis(10),
        Duration::from_millis(30),
        Duration::from_millis(150),
    ] {
        let url = backend(ok, Some(stray_after)).await;
        let gw = TestGateway::start(&[docs::opd("dinkes"), docs::service("dinkes", "rm", &[url], "", "")], "").await;
        for round in 0..5 {
            for client in [http1_client(), http2_client()] {
                let r = send(&client, Request::get(format!("{}/dinkes/rm/v1/x", gw.url)).body(empty()).unwrap()).await;
                assert_eq!(r.status, 200, "{stray_after:?} round {round}");
                assert!(r.text().starts_with("answer-"), "{stray_after:?} round {round}: got {:?}", r.text());
                // Give the backend time to write its stray response while the connection idles in the pool.
                tokio::time::sleep(stray_after + Duration::from_millis(50)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_length_on_204_and_304_is_not_passed_on() {
    let url = backend(
        |n| match n % 2 {
            0 => b"HTTP/1.1 204 No Content\r\ncontent-length: 7\r\n\r\n".to_vec(),
            _ => b"HTTP/1.1 304 Not Modified\r\netag: \"v1\"\r\ncontent-length: 120\r\n\r\n".to_vec(),
        },
        None,
    )
    .await;
    let gw = TestGateway::start(&[docs::opd("dinkes"), docs::service("dinkes", "rm", &[url], "", "")], "").await;
    let h1 = http1_client();
    let h2 = http2_client();
    for _ in 0..4 {
        // HTTP/1.1 (the own server for GET, hyper's for a body) and HTTP/2: the answer arrives whole, without a
        // length that announces a body it does not have, and the connection carries the next request.
        for (name, client) in [("HTTP/1.1", &h1), ("HTTP/2", &h2)] {
            for with_body in [false, true] {
                let request = if with_body {
                    Request::put(format!("{}/dinkes/rm/v1/x", gw.url)).body(full("{}")).unwrap()
                } else {
                    Request::get(format!("{}/dinkes/rm/v1/x", gw.url)).body(empty()).unwrap()
                };
                let r = tokio::time::timeout(Duration::from_secs(5), send(client, request)).await.expect(name);
                assert!(matches!(r.status.as_u16(), 204 | 304), "{name}: {}", r.status);
                assert!(r.body.is_empty(), "{name}");
                assert!(r.headers.get("content-length").is_none_or(|v| v == "0"), "{name}: {:?}", r.headers);
            }
        }
    }
    let raw = raw_exchange(gw.addr, b"GET /dinkes/rm/v1/x HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n").await;
    assert!(matches!(raw_status(&raw), 204 | 304), "{raw}");
    assert!(!raw.to_ascii_lowercase().contains("content-length: 7"), "{raw}");
    assert!(!raw.to_ascii_lowercase().contains("content-length: 120"), "{raw}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_backend_body_is_named_in_the_access_log() {
    let broken: [&[u8]; 3] = [
        b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\nZZ\r\nbad chunk\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n10\r\nonly part",
    ];
    for (case, bytes) in broken.iter().enumerate() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let bytes = bytes.to_vec();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(&bytes).await;
                drop(socket);
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let documents = [
            docs::opd("dinkes"),
            docs::service("dinkes", "rm", &[format!("http://{addr}")], "request_timeout = \"2s\"", ""),
        ];
        let config = penghubung_tests::write_setup(dir.path(), &documents, "");
        let gw = penghubung_tests::GatewayProcess::start(&config);
        for (name, client) in [("HTTP/1.1", http1_client()), ("HTTP/2", http2_client())] {
            let id = format!("rusak-{case}-{}", name.replace(['/', '.'], ""));
            let request = Request::get(format!("{}/dinkes/rm/v1/x", gw.url)).header("x-request-id", &id);
            // The head has left when the body breaks: the caller sees the response cut off (an HTTP/1.1 client
            // may see the error while reading the head already, when head and cut arrive together).
            let exchange = async {
                let response = client.request(request.body(empty()).unwrap()).await.map_err(|e| e.to_string())?;
                response.into_body().collect().await.map(|_| ()).map_err(|e| e.to_string())
            };
            let outcome = tokio::time::timeout(Duration::from_secs(10), exchange).await.expect("no hang");
            assert!(outcome.is_err(), "case {case} {name}: the caller sees the body cut off");
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            loop {
                let log = gw.log();
                let named = log.lines().any(|l| l.contains(&id) && l.contains("upstream.bad_response"));
                if named {
                    break;
                }
                assert!(std::time::Instant::now() < deadline, "case {case} {name}: not in the access log:\n{log}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

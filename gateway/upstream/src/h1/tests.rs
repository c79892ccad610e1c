//! The HTTP/1.1 client against raw upstreams on real sockets: upstreams that misbehave in ways a well-behaved
//! HTTP server (as used by the end-to-end tests) never does.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::headers::Forwarding;
use crate::upstream::{test_pool, Transport};
use penghubung_types::documents::LoadBalance;

/// A raw upstream: each accepted connection is handed to `serve` (in its own task).
async fn upstream<F, Fut>(serve: F) -> Arc<UpstreamPool>
where
    F: Fn(TcpStream, usize) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut n = 0;
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream, n));
            n += 1;
        }
    });
    Arc::new(test_pool(LoadBalance::RoundRobin, &[&format!("http://{addr}")]))
}

/// Reads one request head (up to the blank line) and returns it.
async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.unwrap_or(0) == 0 {
            break;
        }
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

fn request(method: Method, body: RequestBody) -> Request<RequestBody> {
    let mut request = Request::new(body);
    *request.method_mut() = method;
    *request.uri_mut() = "/data?x=1".parse().unwrap();
    request.headers_mut().insert(http::header::HOST, http::HeaderValue::from_static("upstream"));
    request
}

/// The forwarding fields of a caller at 10.0.0.1 (leaked: tests only).
fn forwarding() -> Forwarding<'static> {
    let connection = Box::leak(Box::new(crate::headers::ForwardedFor::new("10.0.0.1:1".parse().unwrap(), "http")));
    Forwarding::new(connection, None)
}

async fn call(pool: &Arc<UpstreamPool>, request: Request<RequestBody>) -> Result<(u16, Vec<u8>), String> {
    let Transport::Http1(dialer) = &pool.transport else { unreachable!("test pools are HTTP/1.1") };
    let gateway = GatewayFields { rest: "/data", query: Some("x=1"), forwarding: forwarding(), trace: None };
    let (parts, body) = request.into_parts();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let response = send(pool, dialer, 0, &parts, body, gateway, deadline).await.map_err(|e| format!("{e:?}"))?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok((status, body.to_vec()))
}

#[tokio::test]
async fn a_connection_closed_while_idle_is_replaced_for_an_idempotent_request() {
    // Every connection answers one request, keeps the connection looking alive, and closes it right after the
    // next request arrives without answering: the keep-alive race, every time.
    let pool = upstream(|mut stream, _| async move {
        read_head(&mut stream).await;
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
        read_head(&mut stream).await;
    })
    .await;
    for _ in 0..3 {
        assert_eq!(call(&pool, request(Method::GET, RequestBody::empty())).await.unwrap(), (200, b"ok".to_vec()));
    }
    // A POST is not written twice: the failure is reported.
    assert_eq!(call(&pool, request(Method::GET, RequestBody::empty())).await.unwrap().0, 200);
    let error = call(&pool, request(Method::POST, RequestBody::empty())).await.unwrap_err();
    assert!(error.contains("Closed") || error.contains("Read"), "{error}");
}

#[tokio::test]
async fn bodies_are_framed_and_connections_reused() {
    let pool = upstream(|mut stream, n| async move {
        assert_eq!(n, 0, "one connection carries every exchange");
        loop {
            let head = read_head(&mut stream).await;
            if head.is_empty() {
                return;
            }
            assert!(head.starts_with("POST /data?x=1 HTTP/1.1\r\n"), "{head}");
            assert!(head.contains("content-length: 5\r\n"), "{head}");
            let mut body = [0u8; 5];
            stream.read_exact(&mut body).await.unwrap();
            assert_eq!(&body, b"hello");
            // Chunked with extensions and a trailer, split over two writes.
            stream.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n").await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
            stream.write_all(b"2\r\nde\r\n0\r\ntrailer: t\r\n\r\n").await.unwrap();
        }
    })
    .await;
    for _ in 0..3 {
        let body = RequestBody::buffered(Bytes::from_static(b"hello"), None);
        assert_eq!(call(&pool, request(Method::POST, body)).await.unwrap(), (200, b"abcde".to_vec()));
    }
}

#[tokio::test]
async fn close_delimited_and_trailing_bytes_are_never_reused() {
    let pool = upstream(|mut stream, n| async move {
        read_head(&mut stream).await;
        if n == 0 {
            // No length: the body runs until the upstream closes.
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\n\r\nuntil the end").await;
        } else {
            // Bytes after the body that no request asked for.
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokJUNK").await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert_eq!(
        call(&pool, request(Method::GET, RequestBody::empty())).await.unwrap(),
        (200, b"until the end".to_vec())
    );
    assert_eq!(call(&pool, request(Method::GET, RequestBody::empty())).await.unwrap(), (200, b"ok".to_vec()));
    let Transport::Http1(_) = &pool.transport else { unreachable!() };
    assert_eq!(pool.endpoints[0].idle.len(), 0, "neither connection went back to the pool");
}

#[tokio::test]
async fn an_early_answer_stops_the_upload() {
    // The upstream refuses after the head, without reading the body, and keeps the connection open.
    let pool = upstream(|mut stream, _| async move {
        read_head(&mut stream).await;
        let _ = stream.write_all(b"HTTP/1.1 413 Content Too Large\r\ncontent-length: 0\r\n\r\n").await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let big = RequestBody::buffered(Bytes::from(vec![b'x'; 64 << 20]), None);
    let answer = tokio::time::timeout(Duration::from_secs(3), call(&pool, request(Method::PUT, big))).await;
    assert_eq!(answer.expect("answered without sending the whole body").unwrap().0, 413);
    assert_eq!(pool.endpoints[0].idle.len(), 0, "a half-sent request's connection is not reused");
}

#[tokio::test]
async fn broken_responses_are_errors() {
    let cases: [&[u8]; 5] = [
        b"garbage\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n",
        b"",
    ];
    for wire in cases {
        let pool = upstream(move |mut stream, _| async move {
            read_head(&mut stream).await;
            let _ = stream.write_all(wire).await;
        })
        .await;
        let outcome = call(&pool, request(Method::GET, RequestBody::empty())).await;
        assert!(outcome.is_err(), "{:?} was accepted: {outcome:?}", String::from_utf8_lossy(wire));
    }
}

#[tokio::test]
async fn a_connection_the_upstream_closed_is_not_used_again() {
    // Each connection answers once (keep-alive) and closes a moment later: the close is seen before the next
    // request is written, so even a POST goes out on a fresh connection.
    let pool = upstream(|mut stream, _| async move {
        read_head(&mut stream).await;
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
    })
    .await;
    for _ in 0..3 {
        let body = RequestBody::buffered(Bytes::from_static(b"{}"), None);
        assert_eq!(call(&pool, request(Method::POST, body)).await.unwrap(), (200, b"ok".to_vec()));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_sweep_closes_what_the_upstream_closed_and_what_idled_too_long() {
    for upstream_closes in [true, false] {
        let pool = upstream(move |mut stream, _| async move {
            read_head(&mut stream).await;
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
            if !upstream_closes {
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        })
        .await;
        assert_eq!(call(&pool, request(Method::GET, RequestBody::empty())).await.unwrap(), (200, b"ok".to_vec()));
        let idle = &pool.endpoints[0].idle;
        assert_eq!(idle.len(), 1, "the connection went back to the pool");
        tokio::time::sleep(Duration::from_millis(100)).await;
        if upstream_closes {
            assert_eq!(pool.sweep_idle(), 1);
            assert!(idle.is_empty(), "a connection the upstream closed is not kept");
        } else {
            assert_eq!(pool.sweep_idle(), 0);
            assert_eq!(idle.len(), 1, "an open connection within the idle timeout is kept");
            tokio::time::sleep(Duration::from_millis(1000)).await; // the test pool's idle timeout is 1 s
            assert_eq!(pool.sweep_idle(), 1);
            assert!(idle.is_empty(), "past the idle timeout it is closed");
        }
    }
}

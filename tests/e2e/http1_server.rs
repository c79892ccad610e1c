//! The gateway's own HTTP/1.1 server (body-less keep-alive requests) and its hand-off to hyper: pipelining,
//! a body mid-connection, streamed responses, the head read timeout, callers hanging up, and shutdown with
//! idle connections. Raw TCP, so that what is on the wire is what is checked.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Response;
use http_body::Frame;
use http_body_util::BodyExt;
use penghubung_tests::{docs, full, TestBody, TestGateway, Upstream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An upstream that answers `METHOD URI BODY`.
async fn echo() -> Upstream {
    Upstream::start(|req: http::Request<hyper::body::Incoming>| async move {
        let head = format!("{} {} ", req.method(), req.uri());
        let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        Response::new(full(format!("{head}{}", String::from_utf8_lossy(&body))))
    })
    .await
}

async fn gateway(upstream: &Upstream, config: &str) -> TestGateway {
    TestGateway::start(&[docs::opd("dinkes"), docs::service("dinkes", "rm", &[upstream.url()], "", "")], config).await
}

/// Reads whole responses (framed by `content-length`) until `count` have arrived; returns their bodies.
async fn read_responses(stream: &mut TcpStream, count: usize) -> Vec<(String, String)> {
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    let mut responses = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while responses.len() < count {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf)).await.expect("responses in time").unwrap();
        assert!(
            n > 0,
            "the connection closed after {} responses: {:?}",
            responses.len(),
            String::from_utf8_lossy(&data)
        );
        data.extend_from_slice(&buf[..n]);
        while let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_string();
            let length: usize = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                .expect("content-length");
            if data.len() < end + 4 + length {
                break;
            }
            let body = String::from_utf8_lossy(&data[end + 4..end + 4 + length]).to_string();
            data.drain(..end + 4 + length);
            responses.push((head, body));
        }
    }
    responses
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_on_one_connection() {
    let up = echo().await;
    let gw = gateway(&up, "").await;
    let mut stream = TcpStream::connect(gw.addr).await.unwrap();
    let mut burst = String::new();
    for n in 1..=3 {
        burst.push_str(&format!("GET /dinkes/rm/v1/x?n={n} HTTP/1.1\r\nHost: gw\r\n\r\n"));
    }
    stream.write_all(burst.as_bytes()).await.unwrap();
    let responses = read_responses(&mut stream, 3).await;
    for (n, (head, body)) in responses.iter().enumerate() {
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.contains("\r\nx-request-id: "), "{head}");
        assert!(head.contains("\r\ndate: "), "{head}");
        assert_eq!(body, &format!("GET /x?n={} ", n + 1));
    }
}

#[tokio::test]
async fn a_request_with_a_body_mid_connection_is_served_and_so_is_everything_after_it() {
    let up = echo().await;
    let gw = gateway(&up, "").await;
    let mut stream = TcpStream::connect(gw.addr).await.unwrap();
    stream.write_all(b"GET /dinkes/rm/v1/a HTTP/1.1\r\nHost: gw\r\n\r\n").await.unwrap();
    assert_eq!(read_responses(&mut stream, 1).await[0].1, "GET /a ");
    // From here hyper serves the connection: a body, then chunked, then a plain GET again.
    stream.write_all(b"POST /dinkes/rm/v1/b HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\n\r\nhello").await.unwrap();
    assert_eq!(read_responses(&mut stream, 1).await[0].1, "POST /b hello");
    stream
        .write_all(
            b"PUT /dinkes/rm/v1/c HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        )
        .await
        .unwrap();
    assert_eq!(read_responses(&mut stream, 1).await[0].1, "PUT /c abc");
    stream.write_all(b"GET /dinkes/rm/v1/d HTTP/1.1\r\nHost: gw\r\n\r\n").await.unwrap();
    assert_eq!(read_responses(&mut stream, 1).await[0].1, "GET /d ");
    assert_eq!(up.hits(), 4);
}

#[tokio::test]
async fn http_1_0_and_head_requests_are_answered() {
    let up = echo().await;
    let gw = gateway(&up, "").await;
    let old = penghubung_tests::raw_exchange(gw.addr, b"GET /dinkes/rm/v1/old HTTP/1.0\r\n\r\n").await;
    assert!(old.starts_with("HTTP/1.0 200") || old.starts_with("HTTP/1.1 200"), "{old}");
    assert!(old.ends_with("GET /old "), "{old}");
    let head = penghubung_tests::raw_exchange(gw.addr, b"HEAD /dinkes/rm/v1/h HTTP/1.1\r\nHost: gw\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.ends_with("\r\n\r\n"), "no body after the head of a HEAD response: {head}");
}

/// Two frames with a pause between them and no length: the upstream sends it chunked.
struct Trickle {
    frames: Vec<&'static str>,
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl http_body::Body for Trickle {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(pause) = self.pause.as_mut() {
            if pause.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.pause = None;
        } else if self.frames.len() == 2 {
            self.pause = Some(Box::pin(tokio::time::sleep(Duration::from_millis(100))));
            return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(self.frames.remove(0).as_bytes())))));
        }
        Poll::Ready(if self.frames.is_empty() {
            None
        } else {
            Some(Ok(Frame::data(Bytes::from_static(self.frames.remove(0).as_bytes()))))
        })
    }
}

#[tokio::test]
async fn a_streamed_response_reaches_the_caller_chunked_as_it_comes() {
    let up = Upstream::start(|_req| async move {
        let body: TestBody = Trickle { frames: vec!["first,", "second"], pause: None }.boxed();
        Response::new(body)
    })
    .await;
    let gw = gateway(&up, "").await;
    let mut stream = TcpStream::connect(gw.addr).await.unwrap();
    stream.write_all(b"GET /dinkes/rm/v1/s HTTP/1.1\r\nHost: gw\r\n\r\n").await.unwrap();
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    while !data.ends_with(b"0\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&data));
        data.extend_from_slice(&buf[..n]);
        if data.windows(6).any(|w| w == b"first,") && !data.windows(6).any(|w| w == b"second") {
            // The first frame arrived before the second was even produced.
            assert!(String::from_utf8_lossy(&data).contains("transfer-encoding: chunked\r\n"));
        }
    }
    let text = String::from_utf8_lossy(&data);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\n6\r\nfirst,\r\n6\r\nsecond\r\n0\r\n\r\n"), "{text}");
    // The connection stays usable.
    stream.write_all(b"GET /dinkes/rm/v1/s HTTP/1.1\r\nHost: gw\r\n\r\n").await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await.unwrap().unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200 OK"));
}

#[tokio::test]
async fn a_head_that_does_not_arrive_in_time_closes_the_connection() {
    let up = echo().await;
    let gw = gateway(&up, "[server]\nheader_read_timeout = \"300ms\"\n").await;
    // Half a head, then silence.
    let mut slow = TcpStream::connect(gw.addr).await.unwrap();
    slow.write_all(b"GET /dinkes/rm/v1/x HTTP/1.1\r\nHo").await.unwrap();
    // An idle keep-alive connection after one answer.
    let mut idle = TcpStream::connect(gw.addr).await.unwrap();
    idle.write_all(b"GET /dinkes/rm/v1/x HTTP/1.1\r\nHost: gw\r\n\r\n").await.unwrap();
    read_responses(&mut idle, 1).await;
    let started = Instant::now();
    for stream in [&mut slow, &mut idle] {
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut buf)).await.expect("closed in time");
        assert_eq!(n.unwrap_or(0), 0, "closed without an answer");
    }
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert_eq!(up.hits(), 1);
}

#[tokio::test]
async fn a_caller_that_hangs_up_cancels_its_upstream_request() {
    let cancelled = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&cancelled);
    let up = Upstream::start(move |_req| {
        let flag = Arc::clone(&flag);
        async move {
            /// Sets the flag if the handler is dropped before it answers.
            struct Guard(Arc<AtomicBool>, bool);
            impl Drop for Guard {
                fn drop(&mut self) {
                    if !self.1 {
                        self.0.store(true, Ordering::SeqCst);
                    }
                }
            }
            let mut guard = Guard(flag, false);
            tokio::time::sleep(Duration::from_secs(10)).await;
            guard.1 = true;
            Response::new(full("late"))
        }
    })
    .await;
    let gw = gateway(&up, "").await;
    let mut stream = TcpStream::connect(gw.addr).await.unwrap();
    stream.write_all(b"GET /dinkes/rm/v1/slow HTTP/1.1\r\nHost: gw\r\n\r\n").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while up.hits() == 0 {
        assert!(Instant::now() < deadline, "the request never reached the upstream");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(stream);
    while !cancelled.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "the upstream request was not cancelled when the caller hung up");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn shutdown_closes_idle_keep_alive_connections_at_once() {
    let up = echo().await;
    let mut gw = gateway(&up, "[server]\nshutdown_grace = \"10s\"\n").await;
    let mut idle = TcpStream::connect(gw.addr).await.unwrap();
    idle.write_all(b"GET /dinkes/rm/v1/x HTTP/1.1\r\nHost: gw\r\n\r\n").await.unwrap();
    read_responses(&mut idle, 1).await;
    let started = Instant::now();
    let outcome = gw.gateway.take().unwrap().shutdown().await;
    assert_eq!(outcome, penghubung::ShutdownOutcome::Drained);
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    let mut buf = [0u8; 16];
    assert_eq!(idle.read(&mut buf).await.unwrap_or(0), 0, "the idle connection is closed");
}

/// A caller that stops reading a large response is disconnected once it has taken nothing for
/// `server.send_timeout`: the rest of the response is not sent and the connection does not stay open. On the
/// gateway's own server (HTTP/1.1) and on a connection handed to hyper (HTTP/1.0) alike.
#[tokio::test]
async fn a_caller_that_stops_reading_is_cut_off_at_the_send_timeout() {
    const TOTAL: u64 = 256 * 1024 * 1024;
    let up =
        Upstream::start(|_req| async { Response::new(penghubung_tests::PatternBody::new(TOTAL, 64 * 1024).boxed()) })
            .await;
    let gw = gateway(&up, "[server]\nsend_timeout = \"500ms\"\n").await;
    for version in ["HTTP/1.1", "HTTP/1.0"] {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(16 * 1024).unwrap();
        let mut stream = socket.connect(gw.addr).await.unwrap();
        stream.write_all(format!("GET /dinkes/rm/v1/besar {version}\r\nHost: gw\r\n\r\n").as_bytes()).await.unwrap();
        // Read a little, then nothing while the gateway's writes stall for well over the send timeout.
        let mut buf = vec![0u8; 64 * 1024];
        let mut received = stream.read(&mut buf).await.unwrap() as u64;
        tokio::time::sleep(Duration::from_secs(2)).await;
        // What was in flight still arrives; then the connection ends, long before the whole body.
        let ended = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => received += n as u64,
                }
            }
        })
        .await;
        assert!(ended.is_ok(), "{version}: the connection was still open after {received} bytes");
        assert!(received < TOTAL / 2, "{version}: only what was buffered arrives: {received} bytes");
    }
}

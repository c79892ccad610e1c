//! Every connection is bounded, over real sockets and real TLS: an HTTP/2 connection that sends no preface, a
//! partial one, a preface (and SETTINGS) but no request, or only pings is closed at the first-request deadline;
//! a connection that only pings after its requests is closed at the idle timeout, while one that keeps making
//! requests stays; the connection limits (overall, per certificate, per peer IP on plaintext) refuse the new
//! connection while open ones keep working; the soft file-handle limit is raised at start; a trickling upload is
//! cut off at `server.request_body_timeout` with 408 and its upstream connection closed, while a slow but steady
//! one passes.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{Request, Response};
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use penghubung::ca::Issued;
use penghubung_tests::mtls::{client_config, write_mtls_setup, Pki, TlsConnection, TRUST_DOMAIN};
use penghubung_tests::{docs, full, http2_client, send, PausingBody, TestBody, TestGateway, Upstream};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty SETTINGS frame.
const SETTINGS: &[u8] = &[0, 0, 0, 0x4, 0, 0, 0, 0, 0];
/// A PING frame (8 bytes of payload, stream 0).
const PING: &[u8] = &[0, 0, 8, 0x6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8];

fn spiffe(opd: &str, app: &str) -> String {
    format!("spiffe://{TRUST_DOMAIN}/opd/{opd}/app/{app}")
}

/// A gateway over mTLS with `[server] extra`, in front of `upstream`, with the registered clients
/// `dinkes/simpus`, `dinkes/sik` and `dinkes/lab`.
async fn mtls_gateway(upstream: &Upstream, server: &str) -> (TestGateway, Pki) {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let mut documents =
        vec![docs::opd("dinkes"), docs::service("dinkes", "rm", &[upstream.url()], "", ""), docs::unlimited_tier()];
    for app in ["simpus", "sik", "lab"] {
        documents.push(docs::client("dinkes", app, &spiffe("dinkes", app), true));
        documents.push(docs::grant(&format!("{app}-rm"), &format!("dinkes/{app}"), "dinkes/rm/v1", &["*"]));
    }
    let config = write_mtls_setup(dir.path(), &documents, &pki, &format!("[server]\n{server}\n"));
    let config = penghubung::Config::load(&config).unwrap();
    let gateway = penghubung::Gateway::start(config).await.unwrap();
    let addr = gateway.local_addrs()[0];
    (TestGateway { gateway: Some(gateway), dir, url: format!("https://{addr}"), addr }, pki)
}

async fn plaintext_gateway(upstream: &Upstream, server: &str, service_extra: &str) -> TestGateway {
    TestGateway::start(
        &[
            docs::opd("dinkes"),
            docs::service("dinkes", "rm", &[upstream.url()], "", ""),
            docs::service("dinkes", "h2", &[upstream.url()], &format!("http2 = true\n{service_extra}"), ""),
            docs::service("dinkes", "h1", &[upstream.url()], service_extra, ""),
            // A service whose request bodies are read whole and checked against a contract before forwarding.
            docs::service(
                "dinkes",
                "checked",
                &[upstream.url()],
                service_extra,
                "[[operations]]\nid = \"unggah\"\nmethod = \"POST\"\npath = \"/berkas\"\nrequest.schema = \"berkas.json\"\n",
            ),
            ("schemas/berkas.json".to_string(), r#"{"type": "string"}"#.to_string()),
        ],
        &format!("[server]\n{server}\n"),
    )
    .await
}

/// A TLS connection to the gateway offering `alpn`, presenting `dinkes/{app}`'s certificate.
async fn tls_connect(
    addr: std::net::SocketAddr,
    pki: &Pki,
    app: &str,
    alpn: &[u8],
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut config = client_config(&pki.ca_pem(), Some(&pki.client("dinkes", app)));
    config.alpn_protocols = vec![alpn.to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    connector.connect(ServerName::try_from("127.0.0.1").unwrap(), tcp).await.unwrap()
}

/// Writes `bytes`, then keeps writing `every` (when given) each `period`, reading all the while: how long
/// until the server closed the connection (or 10 s, which fails the test), and what it sent.
async fn closed_after<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    bytes: &[u8],
    every: Option<&[u8]>,
    period: Duration,
) -> (Duration, Vec<u8>) {
    let started = Instant::now();
    stream.write_all(bytes).await.unwrap();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let mut tick = tokio::time::interval(period);
    loop {
        assert!(started.elapsed() < Duration::from_secs(10), "the connection was held for 10 s");
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) | Err(_) => return (started.elapsed(), received),
                Ok(n) => received.extend_from_slice(&buf[..n]),
            },
            _ = tick.tick() => {
                if let Some(every) = every {
                    if stream.write_all(every).await.is_err() {
                        return (started.elapsed(), received);
                    }
                }
            }
        }
    }
}

/// The value of SETTINGS_MAX_CONCURRENT_STREAMS in the first SETTINGS frame the server sent.
fn max_concurrent_streams(received: &[u8]) -> Option<u32> {
    let (header, rest) = received.split_at_checked(9)?;
    if header[3] != 0x4 {
        return None;
    }
    let length = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
    rest.get(..length)?
        .chunks(6)
        .find(|s| s.len() == 6 && s[..2] == [0, 3])
        .map(|s| u32::from_be_bytes([s[2], s[3], s[4], s[5]]))
}

fn assert_closed_near(label: &str, took: Duration, deadline: Duration) {
    assert!(took >= deadline.mul_f32(0.9), "{label}: closed after {took:?}, before the deadline {deadline:?}");
    assert!(took < deadline + Duration::from_millis(2500), "{label}: closed after {took:?}, deadline {deadline:?}");
}

/// A label, the bytes sent first, and the bytes then sent again and again (if any).
type Case = (&'static str, Vec<u8>, Option<&'static [u8]>);

/// No preface, a partial preface, a preface without SETTINGS, a preface and SETTINGS without a request, and a
/// connection that only pings: each is closed at the first-request deadline (`header_read_timeout`), over
/// plaintext (prior knowledge) and over TLS (ALPN h2), even with a much longer idle timeout.
#[tokio::test]
async fn http2_connections_that_send_no_request_are_closed_at_the_first_request_deadline() {
    let up = Upstream::text("ok").await;
    let server = "header_read_timeout = \"600ms\"\nidle_timeout = \"30s\"\nhttp2_max_concurrent_streams = 7";
    let plain = plaintext_gateway(&up, server, "").await;
    let (tls, pki) = mtls_gateway(&up, server).await;
    let deadline = Duration::from_millis(600);
    let period = Duration::from_millis(100);
    let preface_settings = [PREFACE, SETTINGS].concat();
    let cases: [Case; 6] = [
        ("nothing", Vec::new(), None),
        ("half a preface", PREFACE[..10].to_vec(), None),
        ("preface without SETTINGS", PREFACE.to_vec(), None),
        ("preface and SETTINGS", preface_settings.clone(), None),
        ("pings only", preface_settings.clone(), Some(PING)),
        ("SETTINGS again and again", preface_settings.clone(), Some(SETTINGS)),
    ];
    let mut runs = Vec::new();
    for (label, bytes, every) in cases.clone() {
        let stream = TcpStream::connect(plain.addr).await.unwrap();
        runs.push(tokio::spawn(async move {
            (format!("plaintext, {label}"), closed_after(stream, &bytes, every, period).await)
        }));
    }
    for (label, bytes, every) in cases {
        let stream = tls_connect(tls.addr, &pki, "simpus", b"h2").await;
        runs.push(tokio::spawn(async move {
            (format!("TLS h2, {label}"), closed_after(stream, &bytes, every, period).await)
        }));
    }
    for run in runs {
        let (label, (took, received)) = run.await.unwrap();
        assert_closed_near(&label, took, deadline);
        if label.ends_with("preface and SETTINGS") {
            assert_eq!(
                max_concurrent_streams(&received),
                Some(7),
                "{label}: server.http2_max_concurrent_streams is applied"
            );
        }
    }
    // The gateways still serve.
    let r = send(
        &http2_client(),
        Request::get(format!("{}/dinkes/rm/v1/x", plain.url)).body(penghubung_tests::empty()).unwrap(),
    )
    .await;
    assert_eq!(r.status, 200);
}

/// An HTTP/2 connection with a hyper client (prior knowledge or ALPN): `(sender, closed)`, where `closed`
/// resolves when the server closed the connection. The client pings every 100 ms, also while idle.
async fn h2_client<S>(io: S) -> (hyper::client::conn::http2::SendRequest<TestBody>, tokio::task::JoinHandle<Instant>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .timer(hyper_util::rt::TokioTimer::new())
        .keep_alive_interval(Duration::from_millis(100))
        .keep_alive_while_idle(true)
        .handshake(TokioIo::new(io))
        .await
        .unwrap();
    let closed = tokio::spawn(async move {
        let _ = connection.await;
        Instant::now()
    });
    (sender, closed)
}

async fn h2_get(sender: &mut hyper::client::conn::http2::SendRequest<TestBody>, url: &str) -> u16 {
    let response = sender.send_request(Request::get(url).body(penghubung_tests::empty()).unwrap()).await.unwrap();
    let status = response.status().as_u16();
    response.into_body().collect().await.unwrap();
    status
}

/// After its requests, a connection that only pings (or is silent) is closed at the idle timeout, counted from
/// the end of its last request: HTTP/2 over plaintext and TLS, HTTP/1.1 on the gateway's own server and handed
/// to hyper. A connection that keeps making requests stays open past several idle timeouts.
#[tokio::test]
async fn connections_with_no_request_in_flight_are_closed_at_the_idle_timeout_and_pings_do_not_count() {
    let up = Upstream::text("ok").await;
    let server = "header_read_timeout = \"5s\"\nidle_timeout = \"700ms\"";
    let plain = plaintext_gateway(&up, server, "").await;
    let (tls, pki) = mtls_gateway(&up, server).await;
    let idle = Duration::from_millis(700);

    // HTTP/2, pinging every 100 ms after one request.
    let (mut plain_h2, plain_closed) = h2_client(TcpStream::connect(plain.addr).await.unwrap()).await;
    let (mut tls_h2, tls_closed) = h2_client(tls_connect(tls.addr, &pki, "simpus", b"h2").await).await;
    assert_eq!(h2_get(&mut plain_h2, &format!("http://{}/dinkes/rm/v1/x", plain.addr)).await, 200);
    let plain_done = Instant::now();
    assert_eq!(h2_get(&mut tls_h2, &format!("https://{}/dinkes/rm/v1/x", tls.addr)).await, 200);
    let tls_done = Instant::now();

    // HTTP/1.1: a body-less request (the gateway's own server) and one with a body (handed to hyper).
    let mut own = TcpStream::connect(plain.addr).await.unwrap();
    own.write_all(b"GET /dinkes/rm/v1/x HTTP/1.1\r\nhost: gw\r\n\r\n").await.unwrap();
    let mut handed = TcpStream::connect(plain.addr).await.unwrap();
    handed.write_all(b"POST /dinkes/rm/v1/x HTTP/1.1\r\nhost: gw\r\ncontent-length: 2\r\n\r\nhi").await.unwrap();
    let mut http1_runs = Vec::new();
    for (label, mut stream) in [("HTTP/1.1 own server", own), ("HTTP/1.1 handed to hyper", handed)] {
        http1_runs.push(tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            let n = stream.read(&mut buf).await.unwrap();
            assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{label}: {}", String::from_utf8_lossy(&buf[..n]));
            let answered = Instant::now();
            loop {
                match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
                    .await
                    .expect("closed in time")
                {
                    Ok(0) | Err(_) => return (label, answered.elapsed()),
                    Ok(_) => {}
                }
            }
        }));
    }

    // A connection that keeps making requests, one every 300 ms, stays open for 3 idle timeouts and more.
    let (mut busy, busy_closed) = h2_client(TcpStream::connect(plain.addr).await.unwrap()).await;
    let started = Instant::now();
    while started.elapsed() < idle * 3 {
        assert_eq!(h2_get(&mut busy, &format!("http://{}/dinkes/rm/v1/busy", plain.addr)).await, 200);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(!busy_closed.is_finished(), "a connection with requests is not idle");

    let closed_at = tokio::time::timeout(Duration::from_secs(10), plain_closed).await.expect("closed").unwrap();
    assert_closed_near("HTTP/2 plaintext, pinging", closed_at - plain_done, idle);
    let closed_at = tokio::time::timeout(Duration::from_secs(10), tls_closed).await.expect("closed").unwrap();
    assert_closed_near("HTTP/2 TLS, pinging", closed_at - tls_done, idle);
    for run in http1_runs {
        let (label, took) = run.await.unwrap();
        assert_closed_near(label, took, idle);
    }
    // The busy connection, once it stops, is closed too.
    let closed_at = tokio::time::timeout(Duration::from_secs(10), busy_closed).await.expect("closed").unwrap();
    assert!(closed_at.duration_since(started) >= idle * 3);
}

/// Whether a TLS connection from `app` is served: connects and sends one request.
async fn tls_served(addr: std::net::SocketAddr, pki: &Pki, identity: &Issued) -> Result<TlsConnection, String> {
    let config = client_config(&pki.ca_pem(), Some(identity));
    let mut connection = TlsConnection::connect(addr, config).await.map_err(|e| format!("handshake: {e}"))?;
    match connection.get("/dinkes/rm/v1/x", &[]).await {
        Ok((200, _)) => Ok(connection),
        Ok((status, body)) => Err(format!("{status} {body}")),
        Err(e) => Err(format!("request: {e}")),
    }
}

/// Per certificate and overall, over mTLS: the connection past a maximum is refused while the open ones keep
/// working, and a closed connection frees its place.
#[tokio::test]
async fn the_connection_limits_refuse_the_new_connection_while_open_ones_keep_working() {
    let up = Upstream::text("ok").await;
    let (gw, pki) = mtls_gateway(&up, "max_connections = 4\nmax_connections_per_client = 2").await;
    let (simpus_cert, sik_cert, lab_cert) =
        (pki.client("dinkes", "simpus"), pki.client("dinkes", "sik"), pki.client("dinkes", "lab"));
    let mut simpus = vec![
        tls_served(gw.addr, &pki, &simpus_cert).await.unwrap(),
        tls_served(gw.addr, &pki, &simpus_cert).await.unwrap(),
    ];
    for _ in 0..3 {
        let third = tls_served(gw.addr, &pki, &simpus_cert).await;
        assert!(third.is_err(), "a certificate's third connection is refused");
    }
    let mut sik =
        [tls_served(gw.addr, &pki, &sik_cert).await.unwrap(), tls_served(gw.addr, &pki, &sik_cert).await.unwrap()];
    // Overall maximum: refused before the handshake, whoever it is.
    for _ in 0..3 {
        let fifth = TlsConnection::connect(gw.addr, client_config(&pki.ca_pem(), Some(&lab_cert))).await;
        assert!(fifth.is_err(), "the connection past the overall maximum gets no handshake");
    }
    // The open connections keep working.
    for connection in simpus.iter_mut().chain(sik.iter_mut()) {
        assert_eq!(connection.get("/dinkes/rm/v1/y", &[]).await.unwrap().0, 200);
    }
    // A closed connection frees its place (once the gateway has seen it close).
    drop(simpus.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    let again = loop {
        match tls_served(gw.addr, &pki, &lab_cert).await {
            Ok(connection) => break connection,
            Err(e) => assert!(Instant::now() < deadline, "the freed place was not given out: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    drop(again);
    assert_eq!(simpus[0].get("/dinkes/rm/v1/z", &[]).await.unwrap().0, 200);
}

/// One plain HTTP/1.1 request on an open connection: the status, 0 when the connection was closed.
async fn plain_get(stream: &mut TcpStream) -> u16 {
    if stream.write_all(b"GET /dinkes/rm/v1/x HTTP/1.1\r\nhost: gw\r\n\r\n").await.is_err() {
        return 0;
    }
    let mut buf = [0u8; 4096];
    match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await.expect("an answer or a close") {
        Ok(n) if n > 0 => penghubung_tests::raw_status(&String::from_utf8_lossy(&buf[..n])),
        _ => 0,
    }
}

/// Per peer IP on a plaintext listener, HTTP/1.1 and HTTP/2 connections alike: the third from the same address
/// is closed at once, the two open ones keep working.
#[tokio::test]
async fn the_per_address_limit_refuses_the_new_plaintext_connection_while_open_ones_keep_working() {
    let up = Upstream::text("ok").await;
    let gw = plaintext_gateway(&up, "max_connections_per_client = 2", "").await;
    let mut first = TcpStream::connect(gw.addr).await.unwrap();
    assert_eq!(plain_get(&mut first).await, 200);
    let (mut second, _closed) = h2_client(TcpStream::connect(gw.addr).await.unwrap()).await;
    assert_eq!(h2_get(&mut second, &format!("http://{}/dinkes/rm/v1/x", gw.addr)).await, 200);
    for _ in 0..3 {
        let mut refused = TcpStream::connect(gw.addr).await.unwrap();
        assert_eq!(plain_get(&mut refused).await, 0, "the third connection is closed without an answer");
        let refused = TcpStream::connect(gw.addr).await.unwrap();
        let (took, received) = closed_after(refused, &[PREFACE, SETTINGS].concat(), None, Duration::from_secs(1)).await;
        assert!(received.is_empty() && took < Duration::from_secs(2), "HTTP/2 refused at once: {received:?}");
    }
    assert_eq!(plain_get(&mut first).await, 200);
    assert_eq!(h2_get(&mut second, &format!("http://{}/dinkes/rm/v1/x", gw.addr)).await, 200);
}

/// The binary raises its soft file-handle limit to the hard limit at start (started here with a soft limit of
/// 256) and sizes its connection maximum from it.
#[tokio::test]
async fn the_soft_file_handle_limit_is_raised_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = penghubung_tests::write_setup(dir.path(), &[docs::opd("dinkes")], "");
    let log = dir.path().join("gateway.log");
    let binary = penghubung_tests::penghubung_binary();
    let mut child = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("ulimit -Sn 256 && exec '{}' serve --config '{}'", binary.display(), config.display()))
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("listening") {
            break text;
        }
        assert!(Instant::now() < deadline, "the gateway did not start:\n{text}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
    let numbers: Vec<u64> = line.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    let (soft, hard) = (numbers[0], numbers[1]);
    assert_eq!(soft, hard, "the soft limit is raised to the hard one: {line}");
    assert!(soft > 256, "{line}");
    assert!(text.contains("file_limit_before=256"), "{text}");
    let expected = format!("max_connections={}", (soft - 256) / 2);
    assert!(text.contains(&expected), "the maximum is sized from the raised limit ({expected}):\n{text}");
}

/// An upstream that reads each request body whole and records whether it arrived or its connection was cut.
async fn body_recording_upstream() -> (Upstream, Arc<Mutex<Vec<Result<usize, String>>>>) {
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&outcomes);
    let up = Upstream::start(move |req: http::Request<hyper::body::Incoming>| {
        let seen = Arc::clone(&seen);
        async move {
            let outcome = req.into_body().collect().await.map(|b| b.to_bytes().len()).map_err(|e| e.to_string());
            let answer = format!("{outcome:?}");
            seen.lock().unwrap().push(outcome);
            Response::new(full(answer))
        }
    })
    .await;
    (up, outcomes)
}

/// Sends a head and then one byte every `period` on a raw connection, reading meanwhile: the response (all
/// that came before the connection closed or 10 s passed) and how long it took.
async fn trickle(addr: std::net::SocketAddr, head: String, chunked: bool, period: Duration) -> (String, Duration) {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let mut tick = tokio::time::interval(period);
    loop {
        if started.elapsed() > Duration::from_secs(10) {
            break;
        }
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    received.extend_from_slice(&buf[..n]);
                    if String::from_utf8_lossy(&received).contains("}") {
                        break;
                    }
                }
            },
            _ = tick.tick() => {
                let byte: &[u8] = if chunked { b"1\r\nx\r\n" } else { b"x" };
                let _ = stream.write_all(byte).await;
            }
        }
    }
    (String::from_utf8_lossy(&received).into_owned(), started.elapsed())
}

/// Callers trickling their bodies (a byte every 200 ms, each pause far below the request timeout): every one
/// gets 408 `request.body_timeout` at `server.request_body_timeout`, over HTTP/1.1 (length or chunked) and
/// HTTP/2, to HTTP/1.1 and HTTP/2 upstreams and to a service that reads bodies whole for their contract, and
/// each upstream sees its request's connection or stream cut.
#[tokio::test]
async fn trickling_uploads_are_cut_off_at_the_body_deadline_and_the_upstream_sees_it() {
    let (up, outcomes) = body_recording_upstream().await;
    let gw = plaintext_gateway(&up, "request_body_timeout = \"1s\"", "request_timeout = \"20s\"").await;
    let timeout = Duration::from_secs(1);
    let mut runs = Vec::new();
    for service in ["h1", "h2", "checked"] {
        for i in 0..4 {
            let chunked = i % 2 == 1;
            let framing = if chunked { "transfer-encoding: chunked" } else { "content-length: 1000" };
            let head = format!(
                "POST /dinkes/{service}/v1/berkas HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\n{framing}\r\n\r\n"
            );
            let addr = gw.addr;
            runs.push(tokio::spawn(async move {
                let label = format!("HTTP/1.1 to {service}, {framing}");
                (label, trickle(addr, head, chunked, Duration::from_millis(200)).await)
            }));
        }
        // HTTP/2 callers.
        for _ in 0..2 {
            let url = format!("{}/dinkes/{service}/v1/berkas", gw.url);
            runs.push(tokio::spawn(async move {
                let started = Instant::now();
                let chunks = (0..100).map(|_| (Duration::from_millis(200), "x")).collect();
                let request = Request::post(url)
                    .header("content-type", "application/json")
                    .body(PausingBody::new(chunks).boxed())
                    .unwrap();
                let r = send(&http2_client(), request).await;
                let label = format!("HTTP/2 to {service}");
                (label, (format!("{} {}", r.status.as_u16(), r.text()), started.elapsed()))
            }));
        }
    }
    for run in runs {
        let (label, (response, took)) = run.await.unwrap();
        assert!(response.contains("408") && response.contains("request.body_timeout"), "{label}: {response}");
        assert!(took >= timeout.mul_f32(0.9) && took < timeout * 4, "{label}: took {took:?}");
    }
    // The caller's fault, not the endpoint's: six "failures" each would have ejected the only endpoint (after
    // 3), yet a whole body still goes through.
    for service in ["h1", "h2", "checked"] {
        let request = Request::post(format!("{}/dinkes/{service}/v1/berkas", gw.url))
            .header("content-type", "application/json")
            .body(full("\"lengkap\""))
            .unwrap();
        let r = send(&penghubung_tests::http1_client(), request).await;
        assert_eq!((r.status.as_u16(), r.text()), (200, "Ok(9)".to_string()), "{service}");
    }
    // Each upstream request saw its body cut off, never completed (the contract-checked bodies never left).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let seen = outcomes.lock().unwrap().clone();
        if seen.len() >= 15 {
            assert_eq!(seen.iter().filter(|o| o.is_err()).count(), 12, "every trickled body was cut off: {seen:?}");
            break;
        }
        assert!(Instant::now() < deadline, "the upstream saw {} of 15 bodies end: {seen:?}", seen.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A slow but steady upload that ends within `server.request_body_timeout` passes whole, HTTP/1.1 and HTTP/2,
/// to both kinds of upstream.
#[tokio::test]
async fn a_slow_but_steady_upload_within_the_body_deadline_passes() {
    let (up, outcomes) = body_recording_upstream().await;
    let gw = plaintext_gateway(&up, "request_body_timeout = \"3s\"", "").await;
    for service in ["h1", "h2"] {
        for client in [penghubung_tests::http1_client(), http2_client()] {
            let chunks = (0..10).map(|_| (Duration::from_millis(100), "sepuluh..")).collect();
            let request = Request::post(format!("{}/dinkes/{service}/v1/berkas", gw.url))
                .body(PausingBody::new(chunks).boxed())
                .unwrap();
            let r = send(&client, request).await;
            assert_eq!((r.status.as_u16(), r.text()), (200, "Ok(90)".to_string()), "{service}");
        }
    }
    assert_eq!(outcomes.lock().unwrap().len(), 4);
}

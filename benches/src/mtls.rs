//! The load generators of the harness's mTLS mode (`--mode mtls`), written with hyper and tokio-rustls because
//! wrk cannot present a client certificate. Both are closed-loop, run on their own multi-thread Tokio runtime
//! (`--load-threads` threads) and use the [`rustls::ClientConfig`] of [`crate::pki::Pki::client_config`]
//! (bench CA as the only root, the `bench/loadgen` client certificate, `ring`, ALPN `http/1.1`):
//!
//! * [`run_keepalive`]: `connections` tasks, each holding ONE mTLS connection and sending sequential HTTP/1.1
//!   `GET`s on it (the handshake happens once, before the first request); reports requests/s and the latency
//!   of each request.
//! * [`run_handshakes`]: `connections` tasks, each repeatedly opening a NEW TCP + TLS connection (with a config
//!   whose resumption is disabled, so every one is a full handshake with client certificate verification),
//!   sending one `GET` with `Connection: close`, reading the whole response and closing; reports handshakes
//!   (= completed connections) per second and the latency of connect + handshake + response.
//!
//! Both send `GET`s, or with a [`Post`] (`load --mode full`: [`run_keepalive_request`]) `POST`s of the same body
//! with the same extra header fields every time.
//!
//! [`hold_connections`] opens many mTLS connections, makes one `GET` on each and keeps them open and idle
//! (`load --mode memory`). [`https_get`] and [`https_request`] are the blocking one-shot probes used for
//! readiness and sanity checks.
//!
//! Used by `cargo run -p penghubung-benches --release --bin load -- --mode mtls|full|memory`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONNECTION, HOST};
use http::{HeaderValue, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;

use crate::loadgen::{summarize, Load, Post, Stats};

/// How long a request (or a connection attempt) may run past the end of the measurement.
const GRACE: Duration = Duration::from_secs(5);

/// What a TLS probe negotiated, for the harness's header (e.g. `TLSv1_3 TLS13_AES_256_GCM_SHA384 X25519`).
#[derive(Clone, Debug, Default)]
pub struct Negotiated {
    pub version: String,
    pub suite: String,
    pub group: String,
}

impl std::fmt::Display for Negotiated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.version, self.suite, self.group)
    }
}

/// One blocking `GET path` over mTLS with `Connection: close`: the status, the body (assumed not chunked) and
/// what the handshake negotiated. A handshake the server refuses (no or unknown client certificate) is an
/// error. Used for readiness and sanity checks only, never for load.
pub fn https_get(
    addr: SocketAddr,
    path: &str,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<(u16, Vec<u8>, Negotiated)> {
    https_request(addr, path, None, config)
}

/// Like [`https_get`]; with `post`, a `POST` of its body with its `Content-Type` and header fields.
pub fn https_request(
    addr: SocketAddr,
    path: &str,
    post: Option<&Post>,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<(u16, Vec<u8>, Negotiated)> {
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    tcp.set_read_timeout(Some(Duration::from_secs(2)))?;
    tcp.set_write_timeout(Some(Duration::from_secs(2)))?;
    let connection =
        rustls::ClientConnection::new(config, ServerName::from(addr.ip())).map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(connection, tcp);
    match post {
        None => write!(tls, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?,
        Some(post) => {
            write!(tls, "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n")?;
            write!(tls, "Content-Type: {}\r\nContent-Length: {}\r\n", post.content_type, post.body.len())?;
            for (name, value) in &post.headers {
                write!(tls, "{name}: {value}\r\n")?;
            }
            tls.write_all(b"\r\n")?;
            tls.write_all(&post.body)?;
        }
    }
    tls.flush()?;
    let mut raw = Vec::new();
    match tls.read_to_end(&mut raw) {
        Ok(_) => {}
        // A peer that closes the TCP connection without close_notify after a complete response.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(e),
    }
    let negotiated = Negotiated {
        version: tls.conn.protocol_version().map_or_else(|| "?".into(), |v| format!("{v:?}")),
        suite: tls.conn.negotiated_cipher_suite().map_or_else(|| "?".into(), |s| format!("{:?}", s.suite())),
        group: tls.conn.negotiated_key_exchange_group().map_or_else(|| "?".into(), |g| format!("{:?}", g.name())),
    };
    let (status, body) = crate::raw::parse_response(&raw)?;
    Ok((status, body, negotiated))
}

/// Keep-alive mTLS: `load.connections` connections, sequential `GET path` on each, for `load.duration`.
pub fn run_keepalive(
    addr: SocketAddr,
    path: &str,
    load: Load,
    config: Arc<rustls::ClientConfig>,
) -> Result<Stats, String> {
    run_tasks(addr, path, None, load, config, Workload::KeepAlive)
}

/// Like [`run_keepalive`]; with `post`, every request is a `POST` of its body with its header fields.
pub fn run_keepalive_request(
    addr: SocketAddr,
    path: &str,
    post: Option<&Post>,
    load: Load,
    config: Arc<rustls::ClientConfig>,
) -> Result<Stats, String> {
    run_tasks(addr, path, post, load, config, Workload::KeepAlive)
}

/// Full handshakes: `load.connections` tasks, each opening a new mTLS connection per `GET path`
/// (`Connection: close`), for `load.duration`. Pass a config with resumption disabled.
pub fn run_handshakes(
    addr: SocketAddr,
    path: &str,
    load: Load,
    config: Arc<rustls::ClientConfig>,
) -> Result<Stats, String> {
    run_tasks(addr, path, None, load, config, Workload::Handshakes)
}

#[derive(Clone, Copy)]
enum Workload {
    KeepAlive,
    Handshakes,
}

/// What every task needs: where to connect and what to ask.
struct Job {
    addr: SocketAddr,
    host: HeaderValue,
    path: Arc<str>,
    /// `None`: `GET`s.
    post: Option<Post>,
    connector: TlsConnector,
    server_name: ServerName<'static>,
    deadline: tokio::time::Instant,
}

fn run_tasks(
    addr: SocketAddr,
    path: &str,
    post: Option<&Post>,
    load: Load,
    config: Arc<rustls::ClientConfig>,
    workload: Workload,
) -> Result<Stats, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(load.threads.max(1))
        .thread_name("bench-load-tls")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the load generator's runtime: {e}"))?;
    let host = HeaderValue::from_str(&addr.to_string()).map_err(|e| format!("host header: {e}"))?;
    let post = post.cloned();
    runtime.block_on(async move {
        let job = Arc::new(Job {
            addr,
            host,
            path: path.into(),
            post,
            connector: TlsConnector::from(config),
            server_name: ServerName::from(addr.ip()),
            deadline: tokio::time::Instant::now() + load.duration,
        });
        let started = Instant::now();
        let tasks: Vec<_> = (0..load.connections.max(1))
            .map(|_| {
                let job = Arc::clone(&job);
                match workload {
                    Workload::KeepAlive => tokio::spawn(async move { keepalive_loop(&job).await }),
                    Workload::Handshakes => tokio::spawn(async move { handshake_loop(&job).await }),
                }
            })
            .collect();
        let mut latencies = Vec::new();
        let mut errors = 0;
        for task in tasks {
            let (mut found, failed) = task.await.map_err(|e| format!("a load task failed: {e}"))?;
            latencies.append(&mut found);
            errors += failed;
        }
        Ok(summarize(latencies, errors, started.elapsed()))
    })
}

/// TCP connect, TLS handshake (client certificate) and the HTTP/1.1 client handshake; the connection is driven
/// by its own task, whose handle is returned so that callers can wait for the close.
async fn connect(job: &Job) -> Result<(SendRequest<Full<Bytes>>, JoinHandle<()>), String> {
    let tcp = tokio::net::TcpStream::connect(job.addr).await.map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    let tls = job.connector.connect(job.server_name.clone(), tcp).await.map_err(|e| e.to_string())?;
    let (sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.map_err(|e| e.to_string())?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok((sender, driver))
}

/// The next request of a task: a `GET` (an empty body, so no `Content-Length` is sent), or the job's `POST`.
fn request(job: &Job, close: bool) -> Request<Full<Bytes>> {
    let mut request = match &job.post {
        None => Request::get(&*job.path),
        Some(post) => {
            let mut request = Request::post(&*job.path).header(http::header::CONTENT_TYPE, &post.content_type);
            for (name, value) in &post.headers {
                request = request.header(name, value);
            }
            request
        }
    }
    .header(HOST, job.host.clone());
    if close {
        request = request.header(CONNECTION, HeaderValue::from_static("close"));
    }
    let body = job.post.as_ref().map_or_else(Bytes::new, |post| post.body.clone());
    request.body(Full::new(body)).expect("a valid request")
}

async fn exchange(sender: &mut SendRequest<Full<Bytes>>, request: Request<Full<Bytes>>) -> Result<StatusCode, String> {
    sender.ready().await.map_err(|e| e.to_string())?;
    let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
    let status = response.status();
    response.into_body().collect().await.map_err(|e| e.to_string())?;
    Ok(status)
}

/// One keep-alive connection's loop until the deadline: the latencies (ns) of its successful requests and its
/// errors. Reconnects after an error, with a short pause so a dead target does not spin.
async fn keepalive_loop(job: &Job) -> (Vec<u64>, u64) {
    let mut latencies = Vec::with_capacity(4096);
    let mut errors = 0u64;
    while tokio::time::Instant::now() < job.deadline {
        let Ok(Ok((mut sender, driver))) = tokio::time::timeout_at(job.deadline + GRACE, connect(job)).await else {
            errors += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        while tokio::time::Instant::now() < job.deadline {
            let sent = Instant::now();
            match tokio::time::timeout_at(job.deadline + GRACE, exchange(&mut sender, request(job, false))).await {
                Ok(Ok(status)) if status.is_success() => latencies.push(sent.elapsed().as_nanos() as u64),
                Ok(Ok(_)) => errors += 1,
                _ => {
                    errors += 1;
                    break; // reconnect
                }
            }
        }
        drop(sender);
        driver.abort();
    }
    (latencies, errors)
}

/// One handshake task's loop until the deadline: per iteration a new connection, one request with
/// `Connection: close`, the whole response, the close. The latency runs from before the TCP connect until the
/// response body is complete; the close is awaited (briefly) outside the timing so that at most one
/// connection per task is open.
async fn handshake_loop(job: &Job) -> (Vec<u64>, u64) {
    let mut latencies = Vec::with_capacity(1024);
    let mut errors = 0u64;
    while tokio::time::Instant::now() < job.deadline {
        let started = Instant::now();
        let attempt = async {
            let (mut sender, driver) = connect(job).await?;
            let status = exchange(&mut sender, request(job, true)).await;
            Ok::<_, String>((status, sender, driver))
        };
        match tokio::time::timeout_at(job.deadline + GRACE, attempt).await {
            Ok(Ok((status, sender, mut driver))) => {
                match status {
                    Ok(status) if status.is_success() => latencies.push(started.elapsed().as_nanos() as u64),
                    _ => errors += 1,
                }
                drop(sender);
                if tokio::time::timeout(Duration::from_secs(1), &mut driver).await.is_err() {
                    driver.abort();
                }
            }
            _ => {
                errors += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    (latencies, errors)
}

/// mTLS connections held open and idle by [`hold_connections`]; closed when dropped.
pub struct HeldConnections {
    /// Keeps the connections' driver tasks alive (dropping it closes every connection).
    runtime: Option<tokio::runtime::Runtime>,
    senders: Vec<SendRequest<Full<Bytes>>>,
}

impl HeldConnections {
    /// How many connections are open.
    pub fn len(&self) -> usize {
        self.senders.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.senders.is_empty()
    }
}

impl Drop for HeldConnections {
    fn drop(&mut self) {
        self.senders.clear();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

/// Opens `count` mTLS keep-alive connections to `addr` (at most 50 handshakes at a time), sends one `GET path`
/// on each (its answer must be 2xx) and keeps them all open and idle until the result is dropped.
pub fn hold_connections(
    addr: SocketAddr,
    path: &str,
    count: usize,
    config: Arc<rustls::ClientConfig>,
) -> Result<HeldConnections, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("bench-idle-tls")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the idle connections' runtime: {e}"))?;
    let host = HeaderValue::from_str(&addr.to_string()).map_err(|e| format!("host header: {e}"))?;
    let job = Arc::new(Job {
        addr,
        host,
        path: path.into(),
        post: None,
        connector: TlsConnector::from(config),
        server_name: ServerName::from(addr.ip()),
        deadline: tokio::time::Instant::now(),
    });
    let senders = runtime.block_on(async {
        let mut senders = Vec::with_capacity(count);
        while senders.len() < count {
            let batch: Vec<_> = (0..(count - senders.len()).min(50))
                .map(|_| {
                    let job = Arc::clone(&job);
                    tokio::spawn(async move {
                        let (mut sender, _driver) = connect(&job).await?;
                        match exchange(&mut sender, request(&job, false)).await? {
                            status if status.is_success() => Ok(sender),
                            status => Err(format!("GET {} answered {status}", job.path)),
                        }
                    })
                })
                .collect();
            for task in batch {
                let sender = task.await.map_err(|e| format!("a connection task failed: {e}"))?;
                senders.push(sender.map_err(|e| format!("idle connection {}: {e}", senders.len() + 1))?);
            }
        }
        Ok::<_, String>(senders)
    })?;
    Ok(HeldConnections { runtime: Some(runtime), senders })
}

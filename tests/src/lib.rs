//! Test harness for the end-to-end tests: real upstream HTTP servers on `127.0.0.1:0`, the real gateway
//! (in-process through [`penghubung::Gateway`], or the real `penghubung` binary as a child process), real
//! HTTP/1.1 and HTTP/2 clients, raw TCP for hostile input, and document builders.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, Version};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

/// Body type used by test upstreams and clients.
pub type TestBody = BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

/// A body from bytes.
pub fn full(data: impl Into<Bytes>) -> TestBody {
    Full::new(data.into()).map_err(|never| match never {}).boxed()
}

/// An empty body.
pub fn empty() -> TestBody {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// What an upstream saw of one request.
#[derive(Clone, Debug)]
pub struct SeenRequest {
    pub method: Method,
    pub uri: String,
    pub version: Version,
    pub headers: HeaderMap,
    /// The client certificate presented over TLS, if any.
    pub client_certificate: Option<Vec<u8>>,
}

/// A real HTTP server (HTTP/1.1 and HTTP/2) standing in for an OPD backend.
pub struct Upstream {
    pub addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<SeenRequest>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    /// Starts a plain HTTP server answering with `handler`.
    pub async fn start<F, Fut>(handler: F) -> Upstream
    where
        F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Response<TestBody>> + Send + 'static,
    {
        Upstream::start_with_tls(None, handler).await
    }

    /// Starts a server, over TLS when `tls` is given, answering with `handler`.
    pub async fn start_with_tls<F, Fut>(tls: Option<Arc<rustls::ServerConfig>>, handler: F) -> Upstream
    where
        F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Response<TestBody>> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (h, s) = (Arc::clone(&hits), Arc::clone(&seen));
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let (handler, hits, seen, tls) = (handler.clone(), Arc::clone(&h), Arc::clone(&s), tls.clone());
                tokio::spawn(async move {
                    let service = move |client_certificate: Option<Vec<u8>>| {
                        hyper::service::service_fn(move |req: Request<Incoming>| {
                            hits.fetch_add(1, Ordering::SeqCst);
                            seen.lock().unwrap().push(SeenRequest {
                                method: req.method().clone(),
                                uri: req.uri().to_string(),
                                version: req.version(),
                                headers: req.headers().clone(),
                                client_certificate: client_certificate.clone(),
                            });
                            let fut = handler(req);
                            async move { Ok::<_, Infallible>(fut.await) }
                        })
                    };
                    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    match tls {
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(stream), service(None)).await;
                        }
                        Some(config) => {
                            let Ok(stream) = tokio_rustls::TlsAcceptor::from(config).accept(stream).await else {
                                return;
                            };
                            let cert =
                                stream.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.to_vec());
                            let _ = builder.serve_connection(TokioIo::new(stream), service(cert)).await;
                        }
                    }
                });
            }
        });
        Upstream { addr, hits, seen, task }
    }

    /// Answers every request with 200 and `text`.
    pub async fn text(text: &'static str) -> Upstream {
        Upstream::start(move |_req| async move { Response::new(full(text)) }).await
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    pub fn seen(&self) -> Vec<SeenRequest> {
        self.seen.lock().unwrap().clone()
    }

    /// Stops accepting (connections already open keep going until their tasks end).
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A free TCP port with nothing listening on it (bound, then released).
pub fn closed_port_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}

/// A loopback port for a server that must be started on a port chosen beforehand (a child process, a replica
/// that restarts on the same port). Picked at random below the kernel's ephemeral range (32768 and up), so that
/// no socket another test binds to port 0, and no outgoing connection, can take it between this check and the
/// server's own bind; never the same port twice in one test process.
pub fn free_port() -> u16 {
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
    for _ in 0..1000 {
        let port = fastrand::u16(20_000..32_000);
        if !given.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.push(port);
            return port;
        }
    }
    panic!("no free loopback port between 20000 and 32000");
}

pub mod browser;
pub mod cluster;
pub mod console_credentials;
pub mod jwt;
pub mod mtls;
pub mod national;
pub mod operators;
pub mod otlp;
pub mod prometheus;
pub mod redis;

/// Document builders.
pub mod docs {
    /// `opds/{id}.toml`.
    pub fn opd(id: &str) -> (String, String) {
        (format!("opds/{id}.toml"), format!("id = \"{id}\"\nname = \"OPD {id}\"\n"))
    }

    /// `services/{opd}/{name}.toml`: active (with both approvals), classified `terbatas`, with endpoints and
    /// extra TOML (top-level keys, operations) appended; upstream keys go in `upstream_extra`.
    pub fn service(opd: &str, name: &str, endpoints: &[String], upstream_extra: &str, extra: &str) -> (String, String) {
        let list = endpoints.iter().map(|e| format!("\"{e}\"")).collect::<Vec<_>>().join(", ");
        (
            format!("services/{opd}/{name}.toml"),
            format!(
                "opd = \"{opd}\"\nname = \"{name}\"\nversion = 1\ntitle = \"{name}\"\nclassification = \"terbatas\"\nstatus = \"active\"\n{extra}\n{APPROVALS}\n[upstream]\nendpoints = [{list}]\n{upstream_extra}\n"
            ),
        )
    }

    /// Both approvals, by two different operators ([`operators`]).
    pub const APPROVALS: &str = "[approvals.operations]\nby = \"operasi-uji\"\nat = \"2026-01-01T00:00:00Z\"\nreason = \"uji\"\n\n[approvals.security]\nby = \"keamanan-uji\"\nat = \"2026-01-01T00:00:00Z\"\nreason = \"uji\"\n";

    /// The operators who gave [`APPROVALS`] (`operasi-uji`, `keamanan-uji`) and an `admin-uji`, of OPD `opd`
    /// (every store with operators needs an enabled admin). [`crate::write_config`] adds them to a store that
    /// has OPDs but no operators.
    pub fn operators(opd: &str) -> Vec<(String, String)> {
        [("admin-uji", "admin", "1"), ("operasi-uji", "operasi", "2"), ("keamanan-uji", "keamanan", "3")]
            .into_iter()
            .map(|(id, role, n)| {
                (
                    format!("operators/{id}.toml"),
                    format!(
                        "id = \"{id}\"\nname = \"{id}\"\nnip = \"19800101200601100{n}\"\nopd = \"{opd}\"\nroles = [\"{role}\"]\n\n[identity]\n"
                    ),
                )
            })
            .collect()
    }

    /// `grants/{id}.toml`: `client` may call `operations` (`"*"`: all) of `service` (`opd/name/v1`), any purpose,
    /// in tier `unlimited` (add [`unlimited_tier`] to the documents).
    pub fn grant(id: &str, client: &str, service: &str, operations: &[&str]) -> (String, String) {
        grant_in_tier(id, client, service, operations, "unlimited")
    }

    /// Like [`grant`], in `tier`.
    pub fn grant_in_tier(id: &str, client: &str, service: &str, operations: &[&str], tier: &str) -> (String, String) {
        let ops = operations.iter().map(|o| format!("\"{o}\"")).collect::<Vec<_>>().join(", ");
        (
            format!("grants/{id}.toml"),
            format!("id = \"{id}\"\nclient = \"{client}\"\nservice = \"{service}\"\noperations = [{ops}]\ntier = \"{tier}\"\n"),
        )
    }

    /// `tiers/unlimited.toml`: no per-grant limit.
    pub fn unlimited_tier() -> (String, String) {
        ("tiers/unlimited.toml".into(), "id = \"unlimited\"\nunlimited = true\n".into())
    }

    /// `tiers/{id}.toml`: `rate` requests per `period` (e.g. `"10s"`), at most `burst` at once.
    pub fn tier(id: &str, rate: u32, period: &str, burst: u32) -> (String, String) {
        (format!("tiers/{id}.toml"), format!("id = \"{id}\"\nrate = {rate}\nperiod = \"{period}\"\nburst = {burst}\n"))
    }

    /// An inline `rate_limit = {...}` line for a service or client document.
    pub fn rate_limit(rate: u32, period: &str, burst: u32) -> String {
        format!("rate_limit = {{ rate = {rate}, period = \"{period}\", burst = {burst} }}\n")
    }

    /// `clients/{opd}/{app}.toml` bound to a SPIFFE id.
    pub fn client(opd: &str, app: &str, spiffe: &str, enabled: bool) -> (String, String) {
        (
            format!("clients/{opd}/{app}.toml"),
            format!(
                "id = \"{opd}/{app}\"\nopd = \"{opd}\"\nname = \"{app}\"\nclearance = \"rahasia\"\nenabled = {enabled}\n\n[identity]\nspiffe = [\"{spiffe}\"]\n"
            ),
        )
    }

    /// The shipped baseline policy set (`policies/`), every service's upstream pointed at `upstream`.
    pub fn baseline(upstream: &str) -> Vec<(String, String)> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
        let mut out = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let key = path.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
                let mut text = std::fs::read_to_string(&path).unwrap();
                if key.starts_with("services/") {
                    let mut doc: toml_edit::DocumentMut = text.parse().unwrap();
                    let mut endpoints = toml_edit::Array::new();
                    endpoints.push(upstream);
                    doc["upstream"]["endpoints"] = toml_edit::value(endpoints);
                    text = doc.to_string();
                }
                out.push((key, text));
            }
        }
        out.sort();
        out
    }

    /// An operation block to append to a service document.
    pub fn operation(id: &str, method: &str, path: &str) -> String {
        format!("\n[[operations]]\nid = \"{id}\"\nmethod = \"{method}\"\npath = \"{path}\"\n")
    }
}

/// Writes `documents` under `dir/policies` and a config with one plaintext listener to `dir/penghubung.toml`;
/// returns the config path. A plaintext listener has no caller identity, so these setups measure the bare proxy
/// with `[policy] enforce = false` (unless `config_extra` has its own `[policy]`). mTLS setups with the policy
/// on: [`mtls::write_mtls_setup`].
pub fn write_setup(dir: &Path, documents: &[(String, String)], config_extra: &str) -> PathBuf {
    let policy = if config_extra.contains("[policy]") { "" } else { POLICY_OFF };
    write_config(dir, documents, "plaintext = true\n", &format!("{policy}{config_extra}"))
}

/// The config section that turns the policy off.
pub const POLICY_OFF: &str = "[policy]\nenforce = false\n\n";

/// Writes documents and a config whose one listener has `listener_extra`. The test operators who gave
/// [`docs::APPROVALS`] ([`docs::operators`], in the store's first OPD) are added: all of them to a store with
/// OPDs but no operators, and to a store with its own operators those its documents name.
pub fn write_config(dir: &Path, documents: &[(String, String)], listener_extra: &str, config_extra: &str) -> PathBuf {
    let store = dir.join("policies");
    let first_opd = documents.iter().find_map(|(key, _)| key.strip_prefix("opds/")?.strip_suffix(".toml"));
    let has_operators = documents.iter().any(|(key, _)| key.starts_with("operators/"));
    let named = |key: &str| {
        let id = key.trim_start_matches("operators/").trim_end_matches(".toml");
        documents.iter().any(|(_, text)| text.contains(&format!("\"{id}\"")))
    };
    let operators: Vec<(String, String)> = first_opd
        .map(docs::operators)
        .unwrap_or_default()
        .into_iter()
        .filter(|(key, _)| !documents.iter().any(|(k, _)| k == key) && (!has_operators || named(key)))
        .collect();
    for (key, text) in documents.iter().chain(&operators) {
        let path = store.join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    std::fs::create_dir_all(&store).unwrap();
    let config = format!(
        "[[listeners]]\naddress = \"127.0.0.1:0\"\n{listener_extra}\n[store]\npath = \"policies\"\nseed_baseline = false\n\n[reload]\ndebounce = \"50ms\"\n\n{config_extra}\n"
    );
    let path = dir.join("penghubung.toml");
    std::fs::write(&path, config).unwrap();
    path
}

/// The gateway running in this process on `127.0.0.1:0`.
pub struct TestGateway {
    pub gateway: Option<penghubung::Gateway>,
    pub dir: tempfile::TempDir,
    pub url: String,
    pub addr: SocketAddr,
}

impl TestGateway {
    /// Starts a gateway over `documents`; `config_extra` is appended to the config (TOML tables).
    pub async fn start(documents: &[(String, String)], config_extra: &str) -> TestGateway {
        let dir = tempfile::tempdir().unwrap();
        let path = write_setup(dir.path(), documents, config_extra);
        let config = penghubung::Config::load(&path).unwrap_or_else(|p| panic!("config: {p:?}"));
        let gateway = penghubung::Gateway::start(config).await.unwrap_or_else(|e| panic!("start: {e}"));
        let addr = gateway.local_addrs()[0];
        TestGateway { gateway: Some(gateway), dir, url: format!("http://{addr}"), addr }
    }

    pub fn gateway(&self) -> &penghubung::Gateway {
        self.gateway.as_ref().unwrap()
    }

    /// Writes a document into the store atomically (like an operator's editor would, via rename).
    pub fn put_document(&self, key: &str, text: &str) {
        let path = self.dir.path().join("policies").join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let temp = path.with_extension("tmp-write");
        std::fs::write(&temp, text).unwrap();
        std::fs::rename(&temp, &path).unwrap();
    }

    /// Waits until the snapshot generation passes `above` (file watching), or panics after 10 s.
    pub async fn wait_generation_above(&self, above: u64) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let g = self.gateway().snapshot().generation;
            if g > above {
                return g;
            }
            assert!(Instant::now() < deadline, "no reload happened within 10 s (generation stays {g})");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A pooled HTTP/1.1 client.
pub fn http1_client() -> Client<HttpConnector, TestBody> {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

/// An HTTP/2 (prior knowledge) client.
pub fn http2_client() -> Client<HttpConnector, TestBody> {
    Client::builder(TokioExecutor::new()).http2_only(true).build(HttpConnector::new())
}

/// A collected response.
#[derive(Debug)]
pub struct Collected {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Collected {
    /// The body as JSON (problem+json included).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    /// The `code` of a problem+json body.
    pub fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_string()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends a request and collects the response.
pub async fn send<C>(client: &Client<C, TestBody>, request: Request<TestBody>) -> Collected
where
    C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
{
    let response = client.request(request).await.expect("the gateway answers");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("the body arrives").to_bytes();
    Collected { status: parts.status, headers: parts.headers, body }
}

/// GET `url` with HTTP/1.1.
pub async fn get(url: &str) -> Collected {
    send(&http1_client(), Request::get(url).body(empty()).unwrap()).await
}

/// Writes raw bytes on a new connection and returns everything the server sent until it closed the connection,
/// the response was complete, or 5 s passed. For requests hyper's client would refuse to build.
pub async fn raw_exchange(addr: SocketAddr, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = stream.write_all(request).await;
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => {
                out.extend_from_slice(&buf[..n]);
                if response_complete(&out) {
                    break;
                }
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn response_complete(data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(data);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let length = head.lines().find_map(|l| {
        l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap_or(0))
    });
    length.is_some_and(|n| body.len() >= n)
}

/// Status code of a raw HTTP/1.1 response.
pub fn raw_status(response: &str) -> u16 {
    response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// The `penghubung` binary built for this test run (built on demand when missing).
/// Runs `penghubung ARGS --config CONFIG`: the exit code and stdout followed by stderr.
pub fn run_cli(config: &Path, args: &[&str]) -> (i32, String) {
    let output = Command::new(penghubung_binary()).args(args).arg("--config").arg(config).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.code().unwrap_or(-1), text)
}

pub fn penghubung_binary() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().unwrap();
            // A test binary runs from `target/<profile>/deps`, a harness binary from `target/<profile>`.
            let dir = exe.parent().unwrap();
            let profile_dir = if dir.ends_with("deps") { dir.parent().unwrap() } else { dir }.to_path_buf();
            let binary = profile_dir.join("penghubung");
            let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
            build.args(["build", "--quiet", "-p", "penghubung", "--bin", "penghubung"]);
            // `cargo test` sets CARGO_MANIFEST_DIR and friends for this process; passed on, they make build
            // scripts that track them (ring's) look dirty and rebuild half the tree.
            for (key, _) in std::env::vars_os() {
                let key = key.to_string_lossy();
                if key.starts_with("CARGO_") && key != "CARGO_HOME" && key != "CARGO_TARGET_DIR" {
                    build.env_remove(key.as_ref());
                }
            }
            let status = build.current_dir(env!("CARGO_MANIFEST_DIR")).status().expect("cargo runs");
            assert!(status.success(), "building the penghubung binary failed");
            assert!(binary.exists(), "{} is missing", binary.display());
            binary
        })
        .clone()
}

/// The real binary serving a config, as a child process. Killed on drop.
pub struct GatewayProcess {
    pub child: Child,
    pub addr: SocketAddr,
    pub url: String,
    pub stderr_log: PathBuf,
}

impl GatewayProcess {
    /// Runs `penghubung serve --config <config>` where the config's listener is `127.0.0.1:0`; finds the
    /// bound address in the log.
    pub fn start(config: &Path) -> GatewayProcess {
        let log = config.with_file_name("gateway.log");
        let child = Command::new(penghubung_binary())
            .args(["serve", "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("the binary starts");
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(addr) = text
                .lines()
                .find(|l| l.contains("listening"))
                .and_then(|l| l.split("address=").nth(1))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|a| a.trim_matches('"').parse::<SocketAddr>().ok())
            {
                break addr;
            }
            assert!(Instant::now() < deadline, "the gateway did not start:\n{text}");
            std::thread::sleep(Duration::from_millis(20));
        };
        GatewayProcess { child, addr, url: format!("http://{addr}"), stderr_log: log }
    }

    /// Sends a signal with `kill`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill").args([&format!("-{name}"), &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
    }

    /// Peak resident memory (VmHWM) in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A body of `total` bytes sent in `chunk`-sized frames, generated on the fly (bounded memory). Byte `i` of
/// the stream is `i % 251`, so the receiver can check content as well as length.
pub struct PatternBody {
    remaining: u64,
    offset: u64,
    chunk: usize,
}

impl PatternBody {
    pub fn new(total: u64, chunk: usize) -> Self {
        Self { remaining: total, offset: 0, chunk }
    }

    pub fn boxed(self) -> TestBody {
        BodyExt::map_err(self, |never: Infallible| match never {}).boxed()
    }
}

impl http_body::Body for PatternBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        if self.remaining == 0 {
            return std::task::Poll::Ready(None);
        }
        let n = (self.chunk as u64).min(self.remaining) as usize;
        let start = self.offset;
        let data: Vec<u8> = (0..n as u64).map(|i| ((start + i) % 251) as u8).collect();
        self.remaining -= n as u64;
        self.offset += n as u64;
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from(data)))))
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.remaining)
    }
}

/// Consumes a body frame by frame, checking the [`PatternBody`] content; returns the byte count, or an error
/// naming the first wrong offset.
pub async fn count_pattern<B>(body: B) -> Result<u64, String>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let mut body = body;
    let mut offset = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("body error after {offset} bytes: {e}"))?;
        if let Ok(data) = frame.into_data() {
            for (i, b) in data.iter().enumerate() {
                if *b != ((offset + i as u64) % 251) as u8 {
                    return Err(format!("wrong byte at offset {}", offset + i as u64));
                }
            }
            offset += data.len() as u64;
        }
    }
    Ok(offset)
}

/// A body that sends each of its chunks after the pause given with it (an upstream that streams slowly, or
/// stalls): `PausingBody::new(vec![(Duration::ZERO, "head"), (Duration::from_secs(60), "late")])`.
pub struct PausingBody {
    chunks: std::collections::VecDeque<(Duration, Bytes)>,
    pause: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl PausingBody {
    pub fn new(chunks: Vec<(Duration, &'static str)>) -> Self {
        let chunks = chunks.into_iter().map(|(pause, text)| (pause, Bytes::from_static(text.as_bytes()))).collect();
        Self { chunks, pause: None }
    }

    pub fn boxed(self) -> TestBody {
        BodyExt::map_err(self, |never: Infallible| match never {}).boxed()
    }
}

impl http_body::Body for PausingBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        let Some(&(pause, _)) = self.chunks.front() else { return std::task::Poll::Ready(None) };
        let sleep = self.pause.get_or_insert_with(|| Box::pin(tokio::time::sleep(pause)));
        if sleep.as_mut().poll(cx).is_pending() {
            return std::task::Poll::Pending;
        }
        self.pause = None;
        let (_, data) = self.chunks.pop_front().expect("a chunk is there");
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(data))))
    }
}

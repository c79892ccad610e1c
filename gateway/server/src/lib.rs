//! The data-plane server: binds the listeners, terminates mTLS (client certificate required, or optional on a
//! listener that takes bearer tokens instead; the certificate is
//! parsed once per connection), serves each connection (HTTP/1.1 and HTTP/2 on the same port: body-less
//! HTTP/1.1 requests by the gateway's own server, [`http1`], everything else by hyper, which takes the
//! connection over from the first request that needs it),
//! keeps the snapshot and the TLS material fresh (file watching, SIGHUP), and shuts down gracefully: on
//! SIGTERM/SIGINT it stops accepting, lets in-flight requests finish up to `server.shutdown_grace`, then closes.
//!
//! Every connection is bounded: it is admitted under the maximum of open connections overall and per client
//! ([`connections`]; the file-handle limit is raised at start and sizes the default), its first request must
//! start within `server.header_read_timeout` of the connection being ready (after the TLS handshake), and it is
//! closed once no request has been in flight for `server.idle_timeout` ([`activity`]; HTTP/2 pings and other
//! control frames are not activity). A request body streamed upstream must arrive within
//! `server.request_body_timeout`.
#![forbid(unsafe_code)]

pub mod follow;
mod ops;
pub mod reload;
pub mod telemetry;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub mod activity;
pub mod connections;
pub mod http1;

use crate::reload::{Reloaded, Reloader};
use activity::{Activity, Idle, IdleWatch, Tracked};
use connections::{Admitted, ClientKey, ConnectionLimits, Maxima};
use penghubung_audit::security::TlsRefusal;
use penghubung_pipeline::{GatewayService, HeadLimits, PolicySettings, Shared};
use penghubung_ratelimit::RateLimiter;
use penghubung_snapshot::store::DocumentStore;
use penghubung_snapshot::{Snapshot, SnapshotCell};
use penghubung_tls as tls;
use penghubung_tls::identity::PeerCertificate;
use penghubung_tls::material::TlsState;
use penghubung_types::config::{ClientCertificateMode, Config, StoreBackend};
use penghubung_types::diagnostics::Diagnostic;
use penghubung_upstream::Downstream;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the documents do not form a valid configuration ({} problems)", .0.len())]
    Documents(Vec<Diagnostic>),
    #[error("cannot listen on {address}: {source}")]
    Bind { address: SocketAddr, source: std::io::Error },
    #[error("upstream TLS: {0}")]
    Tls(String),
    #[error("token issuers: {0}")]
    Tokens(String),
    #[error("document store: {0}")]
    Store(String),
    #[error("file watching: {0}")]
    Watch(String),
    #[error("audit trail: {0}")]
    Audit(String),
    #[error("traces: {0}")]
    Traces(String),
}

/// A running gateway.
pub struct Gateway {
    addrs: Vec<SocketAddr>,
    shared: Arc<Shared>,
    reloader: Arc<Reloader>,
    shutdown: watch::Sender<bool>,
    listeners: Vec<JoinHandle<()>>,
    /// The ops listener's address, when `[ops]` is on.
    ops_addr: Option<SocketAddr>,
    /// False once shutdown starts (`/health/ready` then answers 503).
    serving: Arc<std::sync::atomic::AtomicBool>,
    connections_done: mpsc::Receiver<()>,
    connection_token: mpsc::Sender<()>,
    grace: Duration,
    _watcher: Option<reload::StoreWatcher>,
    /// The follower of a store kept in Redis (instead of the folder watcher).
    _follow: Option<AbortOnDrop>,
    _tls_watch: Option<AbortOnDrop>,
    _idle_sweeper: AbortOnDrop,
    _ops: Option<AbortOnDrop>,
}

/// Stops a background task when the gateway goes away.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// SIGTERM, SIGINT and SIGHUP, caught from the moment [`Signals::install`] returns.
pub struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Replaces the default actions of SIGTERM, SIGINT and SIGHUP. Call inside the runtime, before serving.
    pub fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }
}

/// How a shutdown ended.
#[derive(Debug, PartialEq, Eq)]
pub enum ShutdownOutcome {
    /// Every connection finished within the grace period.
    Drained,
    /// The grace period ran out; remaining connections were cut.
    DeadlineReached,
}

impl Gateway {
    /// Loads the documents, binds every listener and starts serving.
    pub async fn start(config: Config) -> Result<Gateway, StartError> {
        let config = Arc::new(config);
        for warning in config.warnings("config") {
            tracing::warn!("{}", warning.message);
        }
        let tls_state = load_tls(&config)?;
        let upstream_tls = Arc::new(tls::UpstreamTls::from_config(&config).map_err(StartError::Tls)?);
        let tokens = penghubung_jwt::TokenVerifier::start(&config, &upstream_tls).await.map_err(StartError::Tokens)?;
        let store = open_store(&config)?;
        let audit = penghubung_audit::Auditor::start(&config).map_err(StartError::Audit)?;
        let (reloader, cell) =
            Reloader::start(store, Arc::clone(&config), upstream_tls, audit.clone()).map_err(StartError::Documents)?;
        let snapshot = cell.load();
        tracing::info!(generation = snapshot.generation, services = snapshot.route_count(), "documents loaded");

        let trace = penghubung_trace::Tracer::start(&config.traces).map_err(|e| StartError::Traces(e.to_string()))?;
        if let (Some(endpoint), Some(_)) = (&config.traces.endpoint, &trace) {
            tracing::info!(target: "penghubung::trace", %endpoint, sample_ratio = config.traces.sample_ratio, "exporting traces");
        }
        let metrics = config.metrics_enabled().then(|| Arc::new(penghubung_metrics::Metrics::new()));
        if let (Some(metrics), Some(trace)) = (&metrics, &trace) {
            metrics.register_counter(
                "penghubung_trace_spans_dropped",
                "Finished spans dropped instead of exported (queue full, collector down or refusing).",
                trace.dropped_counter(),
            );
        }
        let shared = Arc::new(shared_state(&config, cell, tls_state.clone(), tokens, audit, trace, metrics));
        announce_modes(&config);
        let tls_watch = tls_state.as_ref().map(|state| tls::material::spawn_watch(Arc::clone(state)));
        let builder = Arc::new(connection_builder(&config));
        let bounds = connection_bounds(&config);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (connection_token, connections_done) = mpsc::channel(1);
        let mut addrs = Vec::new();
        let mut listeners = Vec::new();
        for l in &config.listeners {
            let listener =
                TcpListener::bind(l.address).await.map_err(|source| StartError::Bind { address: l.address, source })?;
            let address = listener.local_addr().map_err(|source| StartError::Bind { address: l.address, source })?;
            let listener_tls = if l.plaintext {
                None
            } else {
                tls_state.clone().map(|state| ListenerTls { state, client_certificate: l.client_certificate })
            };
            let mode = match (l.plaintext, l.client_certificate) {
                (true, _) => "plaintext HTTP/1.1 and HTTP/2",
                (false, ClientCertificateMode::Required) => "mTLS, HTTP/1.1 and HTTP/2",
                (false, ClientCertificateMode::Optional) => {
                    "TLS with a client certificate or a bearer token, HTTP/1.1 and HTTP/2"
                }
            };
            tracing::info!(listener = %l.name, %address, mode, "listening");
            addrs.push(address);
            listeners.push(tokio::spawn(accept_loop(
                listener,
                Arc::clone(&shared),
                Arc::clone(&builder),
                bounds.clone(),
                listener_tls,
                shutdown_rx.clone(),
                connection_token.clone(),
            )));
        }
        let follow = follow_store(&config, &reloader, tls_state.as_ref())?;
        let watcher = if config.reload.watch && follow.is_none() {
            reload::watch_store(Arc::clone(&reloader), config.reload.debounce.0)
                .map_err(|e| StartError::Watch(e.to_string()))?
        } else {
            None
        };
        let idle_sweeper = AbortOnDrop(tokio::spawn(sweep_idle_connections(Arc::clone(&shared))));
        let serving = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (ops_addr, ops_task) = match config.ops_enabled() {
            Some(ops_config) => {
                let state = ops::OpsState {
                    shared: Arc::clone(&shared),
                    reloader: Arc::clone(&reloader),
                    serving: Arc::clone(&serving),
                    redis_required: ops::redis_required(&config),
                    store: follow.as_ref().map(|(state, _)| Arc::clone(state)),
                };
                let (address, task) = ops::start(ops_config.listen, state)
                    .await
                    .map_err(|source| StartError::Bind { address: ops_config.listen, source })?;
                (Some(address), Some(AbortOnDrop(task)))
            }
            None => (None, None),
        };
        Ok(Gateway {
            addrs,
            ops_addr,
            serving,
            shared,
            reloader,
            shutdown,
            listeners,
            connections_done,
            connection_token,
            grace: config.shutdown_grace(),
            _watcher: watcher,
            _follow: follow.map(|(_, task)| task),
            _tls_watch: tls_watch.map(AbortOnDrop),
            _idle_sweeper: idle_sweeper,
            _ops: ops_task,
        })
    }

    /// The bound addresses, in listener order.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The ops listener's bound address, when `[ops]` is on.
    pub fn ops_addr(&self) -> Option<SocketAddr> {
        self.ops_addr
    }

    /// The metrics, when `[ops] metrics` is on: e.g. to show another component's counter
    /// ([`penghubung_metrics::Metrics::register_counter`]).
    pub fn metrics(&self) -> Option<&Arc<penghubung_metrics::Metrics>> {
        self.shared.metrics.as_ref()
    }

    /// The snapshot currently serving.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.shared.snapshot.load()
    }

    /// The tracer, when `[traces]` names an endpoint (its counters: spans exported and dropped).
    pub fn tracer(&self) -> Option<&penghubung_trace::Tracer> {
        self.shared.trace.as_ref()
    }

    /// The audit trail, when on.
    pub fn auditor(&self) -> Option<&Arc<penghubung_audit::Auditor>> {
        self.shared.audit.as_ref()
    }

    /// Reloads the documents now (what SIGHUP does).
    pub fn reload(&self) -> Result<Reloaded, Vec<Diagnostic>> {
        self.reloader.reload()
    }

    /// The reloader, for what reloads from outside the gateway (the admin API after a change).
    pub fn reloader(&self) -> Arc<Reloader> {
        Arc::clone(&self.reloader)
    }

    /// Stops accepting, waits for in-flight requests up to the grace period, and returns how it ended.
    pub async fn shutdown(self) -> ShutdownOutcome {
        let Gateway { shutdown, listeners, mut connections_done, connection_token, grace, shared, serving, .. } = self;
        serving.store(false, std::sync::atomic::Ordering::Release);
        let _ = shutdown.send(true);
        for l in listeners {
            let _ = l.await;
        }
        drop(connection_token);
        let outcome = match tokio::time::timeout(grace, connections_done.recv()).await {
            Ok(_) => ShutdownOutcome::Drained,
            Err(_) => ShutdownOutcome::DeadlineReached,
        };
        // Seal the log: everything written so far is covered by a signature.
        if let Some(auditor) = &shared.audit {
            auditor.flush_security_events();
            if !tokio::time::timeout(Duration::from_secs(5), auditor.checkpoint()).await.unwrap_or(false) {
                tracing::error!(target: "penghubung::audit", "the closing audit checkpoint could not be written");
            }
            // Ship what is left (the closing checkpoint included) while Redis is reachable; a record not shipped
            // now is shipped by the next start.
            let _ = auditor.wait_shipped(Duration::from_secs(2)).await;
        }
        // Send the spans still queued, within the exporter's own timeout.
        if let Some(tracer) = &shared.trace {
            tracer.shutdown(Duration::from_secs(5)).await;
        }
        outcome
    }

    /// Serves until SIGTERM or SIGINT, reloading on SIGHUP; then shuts down gracefully.
    /// `signals` must have been installed before the gateway announced itself (so that a signal sent right after
    /// `ready` is never handled by the default action, which would kill the process without draining).
    pub async fn run_until_signal(self, signals: Signals) -> ShutdownOutcome {
        Gateway::run_all_until_signal(vec![self], signals).await
    }

    /// Like [`Gateway::run_until_signal`] for several gateways in one process (the cluster demo's replicas):
    /// SIGHUP reloads each, SIGTERM or SIGINT shuts them all down at once. The outcome is
    /// [`ShutdownOutcome::DeadlineReached`] when any of them had to cut connections.
    pub async fn run_all_until_signal(gateways: Vec<Gateway>, signals: Signals) -> ShutdownOutcome {
        let Signals { mut term, mut int, mut hup } = signals;
        loop {
            tokio::select! {
                _ = term.recv() => { tracing::info!("SIGTERM: draining in-flight requests"); break; }
                _ = int.recv() => { tracing::info!("SIGINT: draining in-flight requests"); break; }
                _ = hup.recv() => {
                    for gateway in &gateways {
                        let r = Arc::clone(&gateway.reloader);
                        let tls = gateway.shared.tls.clone();
                        let _ = tokio::task::spawn_blocking(move || {
                            r.reload_and_log("SIGHUP");
                            if let Some(tls) = tls {
                                tls.reload_and_log("SIGHUP");
                            }
                        })
                        .await;
                    }
                }
            }
        }
        let draining: Vec<JoinHandle<ShutdownOutcome>> =
            gateways.into_iter().map(|gateway| tokio::spawn(gateway.shutdown())).collect();
        let mut outcome = ShutdownOutcome::Drained;
        for handle in draining {
            if !matches!(handle.await, Ok(ShutdownOutcome::Drained)) {
                outcome = ShutdownOutcome::DeadlineReached;
            }
        }
        match outcome {
            ShutdownOutcome::Drained => tracing::info!("all connections drained; bye"),
            ShutdownOutcome::DeadlineReached => {
                tracing::warn!("shutdown grace period over; remaining connections cut")
            }
        }
        outcome
    }
}

/// How often idle upstream connections are checked.
const IDLE_SWEEP_EVERY: Duration = Duration::from_secs(5);

/// Closes, every few seconds, the idle upstream connections of the current snapshot's services that outlived
/// the pool's idle timeout or were closed by the upstream, so that they do not linger (half-closed) until the
/// next request to that endpoint. Pools of services that left the snapshot close with it.
async fn sweep_idle_connections(shared: Arc<Shared>) {
    let mut every = tokio::time::interval(IDLE_SWEEP_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let snapshot = shared.snapshot.load();
        let closed: usize = snapshot.services.iter().map(|s| s.upstream.pool.sweep_idle()).sum();
        if closed > 0 {
            tracing::debug!(closed, "idle upstream connections closed");
        }
    }
}

fn connection_builder(config: &Config) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    let header_limit = config.server.max_header_bytes.0 as usize;
    // hyper's own buffer limit sits above ours so that our check answers with problem+json first.
    let buffer = (header_limit * 2 + config.server.max_uri_bytes.0 as usize).max(16 * 1024);
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.server.header_read_timeout.0)
        .max_buf_size(buffer)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(config.server.http2_max_concurrent_streams)
        .max_header_list_size(buffer as u32)
        // Streams the caller opens and resets before they are served (rapid reset), and streams it makes the
        // gateway reset for protocol errors: past these the connection is closed with GOAWAY.
        .max_pending_accept_reset_streams(HTTP2_MAX_PENDING_RESETS)
        .max_local_error_reset_streams(HTTP2_MAX_LOCAL_RESETS)
        // Pings find dead peers; they are not activity (the idle timeout closes a connection that only pings).
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));
    builder
}

/// Streams reset by the caller before the gateway served them, pending at once, before GOAWAY.
const HTTP2_MAX_PENDING_RESETS: usize = 20;
/// Streams the gateway reset for the caller's protocol errors before GOAWAY.
const HTTP2_MAX_LOCAL_RESETS: usize = 1024;
/// How long a connection closed for idleness may take to finish once it has no request in flight (the GOAWAY
/// and close, or an HTTP/2 handshake that never completed): then it is dropped.
const IDLE_CLOSE_GRACE: Duration = Duration::from_secs(1);

/// The server's TLS material, when a listener needs it (any listener that is not plaintext).
fn load_tls(config: &Config) -> Result<Option<Arc<TlsState>>, StartError> {
    Ok(match &config.tls {
        Some(tls_config) if config.listeners.iter().any(|l| !l.plaintext) => {
            Some(Arc::new(TlsState::load(tls_config, config).map_err(StartError::Tls)?))
        }
        _ => None,
    })
}

/// The document store, seeded with the production skeleton (default tiers, the Dinas's OPD; no sample data)
/// when configured and empty.
fn open_store(config: &Config) -> Result<Box<dyn DocumentStore>, StartError> {
    let store = penghubung_snapshot::store::open(config).map_err(|e| StartError::Store(e.to_string()))?;
    if config.store.backend == StoreBackend::Redis {
        // An unreachable Redis is not a problem of the documents: say so before reading them.
        store.generation().map_err(|e| StartError::Store(format!("{}: {e}", store.describe())))?;
    }
    if config.store.seed_baseline {
        let skeleton: Vec<(&str, &str)> = penghubung_types::embedded::skeleton_policies().collect();
        let written = store.seed_if_empty(&skeleton).map_err(|e| StartError::Store(e.to_string()))?;
        if written > 0 {
            tracing::info!(store = %store.describe(), documents = written, "seeded the store with the production skeleton");
        }
    }
    Ok(store)
}

/// With `[store] backend = "redis"`: the follower of the store's change stream, started in the background.
fn follow_store(
    config: &Config,
    reloader: &Arc<Reloader>,
    tls: Option<&Arc<TlsState>>,
) -> Result<Option<(Arc<follow::FollowState>, AbortOnDrop)>, StartError> {
    if config.store.backend != StoreBackend::Redis {
        return Ok(None);
    }
    let redis = config
        .redis
        .as_ref()
        .ok_or_else(|| StartError::Store("[store] backend = \"redis\" needs a [redis] section".into()))?;
    let connector = penghubung_redis::Connector::of_config(redis).map_err(StartError::Store)?;
    let mut crl_files: Vec<PathBuf> = config.tls.iter().flat_map(|t| &t.crl_files).map(|p| config.resolve(p)).collect();
    // The CA's folder (beside the first client CA), when this replica keeps one: its CRL and revoked serials.
    let ca_dir = config
        .tls
        .as_ref()
        .and_then(|t| t.client_ca_files.first())
        .and_then(|ca| config.resolve(ca).parent().map(Path::to_path_buf))
        .filter(|dir| dir.join("revoked.txt").is_file() || dir.join("crl.pem").is_file());
    if let Some(crl) = ca_dir.as_ref().map(|dir| dir.join("crl.pem")) {
        if !crl_files.contains(&crl) {
            crl_files.push(crl);
        }
    }
    let follower = follow::Follower {
        connector,
        keys: penghubung_snapshot::store::redis::StoreKeys::new(&config.store.redis_prefix),
        reloader: Arc::clone(reloader),
        crl_files,
        revoked_file: ca_dir.map(|dir| dir.join("revoked.txt")),
        tls: tls.cloned(),
        max_backoff: redis.max_reconnect_backoff.0,
    };
    tracing::info!(store = follower.connector.describe(), "following the shared store's changes");
    let (state, task) = follower.spawn();
    Ok(Some((state, AbortOnDrop(task))))
}

/// What every request shares: the snapshot, the head limits, the TLS state, the policy settings, the rate
/// limiter, the audit trail, the tracer and the metrics.
fn shared_state(
    config: &Config,
    cell: Arc<SnapshotCell>,
    tls_state: Option<Arc<TlsState>>,
    tokens: Option<Arc<penghubung_jwt::TokenVerifier>>,
    audit: Option<Arc<penghubung_audit::Auditor>>,
    trace: Option<penghubung_trace::Tracer>,
    metrics: Option<Arc<penghubung_metrics::Metrics>>,
) -> Shared {
    Shared {
        snapshot: cell,
        limits: HeadLimits {
            max_header_bytes: config.server.max_header_bytes.0 as usize,
            max_uri_bytes: config.server.max_uri_bytes.0 as usize,
            max_checked_response: config.limits.max_checked_response.0,
        },
        access_log: config.log.access_log,
        tls: tls_state,
        tokens,
        policy: PolicySettings { enforce: config.policy.enforce, max_redacted_body: config.policy.max_redacted_body.0 },
        ratelimit: RateLimiter::start(config),
        audit,
        trace,
        metrics,
    }
}

/// Logs how rate limits and the policy apply (a warning when either is off).
fn announce_modes(config: &Config) {
    match (&config.redis, config.ratelimit.enabled) {
        (_, false) => tracing::warn!("[ratelimit] enabled = false: no rate limit or quota applies"),
        (None, true) => tracing::info!("rate limits in process (no [redis] configured)"),
        (Some(_), true) => {}
    }
    if !config.policy.enforce {
        tracing::warn!("[policy] enforce = false: requests are forwarded WITHOUT identity, grant or clearance checks");
    }
}

/// What bounds each connection, from `[server]`; raises the file-handle limit and logs the connection limits.
fn connection_bounds(config: &Config) -> Bounds {
    let http1 = http1::Settings {
        header_read_timeout: config.server.header_read_timeout.0,
        idle_timeout: config.server.idle_timeout.0,
        send_timeout: config.server.send_timeout.0,
        largest_head: (config.server.max_header_bytes.0 + config.server.max_uri_bytes.0) as usize,
    };
    let file_limit = connections::raise_file_limit();
    let maxima =
        Maxima::from_config(config.server.max_connections, config.server.max_connections_per_client, file_limit.now);
    if maxima.overall as u64 > file_limit.now {
        tracing::warn!(
            max_connections = maxima.overall,
            file_limit = file_limit.now,
            "server.max_connections is above the file-handle limit: accepts will fail before it is reached"
        );
    }
    tracing::info!(
        file_limit_before = file_limit.before,
        file_limit = file_limit.now,
        max_connections = maxima.overall,
        max_connections_per_client = maxima.per_client,
        "connection limits"
    );
    let limits = ConnectionLimits::new(maxima);
    Bounds {
        http1,
        idle_timeout: config.server.idle_timeout.0,
        request_body_timeout: config.server.request_body_timeout.0,
        limits,
    }
}

/// What bounds each connection: the HTTP/1.1 settings, the idle and body timeouts and the connection limits.
#[derive(Clone)]
struct Bounds {
    http1: http1::Settings,
    idle_timeout: Duration,
    request_body_timeout: Duration,
    limits: Arc<ConnectionLimits>,
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    bounds: Bounds,
    tls: Option<ListenerTls>,
    mut shutdown: watch::Receiver<bool>,
    token: mpsc::Sender<()>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // Past the maximum the new connection is closed at once (before any TLS handshake).
                    let Some(admitted) = bounds.limits.admit(peer) else { continue };
                    let _ = stream.set_nodelay(true);
                    let (shared, builder, tls, bounds) = (Arc::clone(&shared), Arc::clone(&builder), tls.clone(), bounds.clone());
                    let (shutdown, token) = (shutdown.clone(), token.clone());
                    tokio::spawn(async move {
                        connection(stream, peer, admitted, shared, &builder, &bounds, tls, shutdown).await;
                        drop(token);
                    });
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => break,
        }
    }
}

/// Serves one admitted connection: the TLS handshake (if any), the per-client limit, then the gateway's own
/// HTTP/1.1 server and hyper.
#[allow(clippy::too_many_arguments)]
async fn connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    admitted: Admitted,
    shared: Arc<Shared>,
    builder: &auto::Builder<TokioExecutor>,
    bounds: &Bounds,
    tls: Option<ListenerTls>,
    shutdown: watch::Receiver<bool>,
) {
    let Some(tls) = tls else {
        let Some(_admitted) = admitted.for_client(ClientKey::Address(peer.ip()), peer) else { return };
        let ready_at = tokio::time::Instant::now();
        let downstream = Downstream::new(peer, "http", None).with_body_timeout(bounds.request_body_timeout);
        let service = GatewayService::new(shared, downstream);
        if let http1::Served::Handoff { io, answered } = http1::serve(stream, &service, bounds.http1, &shutdown).await {
            serve(builder, TokioIo::new(io), service, shutdown, bounds, ready_at, answered).await;
        }
        return;
    };
    let Some((stream, certificate)) = handshake(&tls, stream, peer, &shared).await else { return };
    // A caller without a certificate (bearer-token listeners) is counted by its address.
    let key = match &certificate {
        Some(certificate) => ClientKey::Certificate(certificate.fingerprint.clone()),
        None => ClientKey::Address(peer.ip()),
    };
    let Some(_admitted) = admitted.for_client(key, peer) else { return };
    let ready_at = tokio::time::Instant::now();
    let mut downstream = Downstream::new(peer, "https", certificate).with_body_timeout(bounds.request_body_timeout);
    if tls.client_certificate == ClientCertificateMode::Optional {
        downstream = downstream.with_bearer_tokens();
    }
    let service = GatewayService::new(shared, downstream);
    let served = if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
        let io = http1::Prefixed::new(bytes::Bytes::new(), stream, bounds.http1.send_timeout);
        http1::Served::Handoff { io, answered: false }
    } else {
        http1::serve(stream, &service, bounds.http1, &shutdown).await
    };
    if let http1::Served::Handoff { io, answered } = served {
        serve(builder, TokioIo::new(io), service, shutdown, bounds, ready_at, answered).await;
    }
}

/// A TLS listener's material and whether it requires a client certificate.
#[derive(Clone)]
struct ListenerTls {
    state: Arc<TlsState>,
    client_certificate: ClientCertificateMode,
}

/// The TLS handshake with the current material (client certificate required, or optional on a listener that
/// takes bearer tokens), within the handshake timeout. The verified certificate is parsed here, once per
/// connection; `None` only where it is optional and none was presented. A refusal is a security event in the
/// audit trail.
#[allow(clippy::type_complexity)]
async fn handshake(
    tls: &ListenerTls,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    shared: &Shared,
) -> Option<(tokio_rustls::server::TlsStream<tokio::net::TcpStream>, Option<Arc<PeerCertificate>>)> {
    let (audit, metrics) = (shared.audit.as_ref(), shared.metrics.as_deref());
    let acceptor = tls.state.acceptor(tls.client_certificate);
    let accepted = tokio::time::timeout(tls.state.handshake_timeout, acceptor.accept(stream)).await;
    let stream = match accepted {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::info!(target: "penghubung::tls", %peer, error = %e, "TLS handshake refused");
            let reason = TlsRefusal::of_handshake_error(&e);
            if let Some(metrics) = metrics {
                metrics.handshake_refused(reason.unwrap_or(TlsRefusal::Protocol).code());
            }
            if let (Some(audit), Some(reason)) = (audit, reason) {
                audit.tls_refused(reason, peer);
            }
            return None;
        }
        Err(_) => {
            tracing::info!(target: "penghubung::tls", %peer, "TLS handshake timed out");
            if let Some(metrics) = metrics {
                metrics.handshake_refused(TlsRefusal::Timeout.code());
            }
            if let Some(audit) = audit {
                audit.tls_refused(TlsRefusal::Timeout, peer);
            }
            return None;
        }
    };
    if let Some(metrics) = metrics {
        metrics.handshake_accepted();
    }
    let Some(der) = stream.get_ref().1.peer_certificates().and_then(|c| c.first()) else {
        // rustls let the handshake complete without a certificate: only the optional mode does.
        return (tls.client_certificate == ClientCertificateMode::Optional).then_some((stream, None));
    };
    match PeerCertificate::parse(der.as_ref()) {
        Ok(certificate) => {
            if let Some(metrics) = metrics {
                // Once per connection: the expiry of the certificates the store's clients present.
                if let Some(client) = shared.snapshot.load().client_for(&certificate) {
                    metrics.client_certificate(&client.doc.id, certificate.not_after);
                }
            }
            Some((stream, Some(Arc::new(certificate))))
        }
        Err(e) => {
            tracing::warn!(target: "penghubung::tls", %peer, error = %e, "verified certificate could not be parsed");
            None
        }
    }
}

/// Serves one connection until it ends, shutdown starts (then finishes in-flight requests and closes), or it
/// does nothing for too long: no first request within `server.header_read_timeout` of `ready_at` (unless the
/// gateway's own HTTP/1.1 server already `answered` requests on it), or no request in flight for
/// `server.idle_timeout`. Then it is shut down gracefully (HTTP/2: GOAWAY) and dropped if that does not finish
/// within [`IDLE_CLOSE_GRACE`] of its last request.
async fn serve<I>(
    builder: &auto::Builder<TokioExecutor>,
    io: TokioIo<I>,
    service: GatewayService,
    mut shutdown: watch::Receiver<bool>,
    bounds: &Bounds,
    ready_at: tokio::time::Instant,
    answered: bool,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let activity = Activity::new();
    let first_request_by = (!answered).then_some(ready_at + bounds.http1.header_read_timeout);
    let mut idle = IdleWatch::new(Arc::clone(&activity), first_request_by, bounds.idle_timeout);
    let connection = builder.serve_connection_with_upgrades(io, Tracked::new(service, Arc::clone(&activity)));
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => return,
        _ = shutdown.changed() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
            return;
        }
        idle = idle.expired() => {
            let reason = match idle {
                Idle::NoFirstRequest => "no request within server.header_read_timeout",
                Idle::IdleTimeout => "no request in flight for server.idle_timeout",
            };
            tracing::debug!(reason, "closing the connection");
            connection.as_mut().graceful_shutdown();
        }
    }
    let mut closing = IdleWatch::new(activity, None, IDLE_CLOSE_GRACE);
    tokio::select! {
        _ = connection.as_mut() => {}
        _ = closing.expired() => {}
    }
}

//! The ops listener (`[ops]`): plain HTTP for the internal network, apart from the data plane, so that
//! scrapers and load balancers need no client certificate.
//!
//! | path | answer |
//! |---|---|
//! | `GET /metrics` | the Prometheus text format 0.0.4, or OpenMetrics 1.0 when `Accept` asks for `application/openmetrics-text` |
//! | `GET /health/live` | 200 while the process serves (nothing is checked) |
//! | `GET /health/ready` | 200 when a snapshot is loaded, the data-plane listeners are bound, the audit trail is writable and Redis is reachable where the config makes it required (`on_unavailable = "fail_closed"`); else 503 with a JSON body naming each check that failed. A replica of a shared store (`[store] backend = "redis"`) adds `store`: `following generation N`, or `unavailable (serving generation N)` while it cannot reach the store (still ready: it serves its last snapshot) |
//!
//! Anything else is 404 (405 for another method on a known path). The ops listener serves no request of the
//! data plane and reads nothing a caller sent beyond the method, the path and `Accept`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{HeaderValue, ACCEPT, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::follow::FollowState;
use crate::reload::Reloader;
use penghubung_metrics::{AuditFacts, Expiry, Facts, Metrics, RedisFacts, StoreFacts};
use penghubung_pipeline::Shared;
use penghubung_types::config::{Config, OnUnavailable};

/// What the ops listener reads: the gateway's shared state, the reloader (its failures), and whether the
/// data-plane listeners are bound (false again once shutdown starts: a draining gateway is not ready).
pub(crate) struct OpsState {
    pub shared: Arc<Shared>,
    pub reloader: Arc<Reloader>,
    pub serving: Arc<AtomicBool>,
    /// Redis must be reachable for requests to be served (`[redis] on_unavailable = "fail_closed"`).
    pub redis_required: bool,
    /// The follower of the shared document store, when the store is in Redis.
    pub store: Option<Arc<FollowState>>,
}

/// Whether the config makes Redis required for serving.
pub(crate) fn redis_required(config: &Config) -> bool {
    config.ratelimit.enabled && config.redis.as_ref().is_some_and(|r| r.on_unavailable == OnUnavailable::FailClosed)
}

/// How long a connection may take to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Binds the ops listener and serves it in the background; returns the bound address and the task.
pub(crate) async fn start(listen: SocketAddr, state: OpsState) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(listen).await?;
    let address = listener.local_addr()?;
    tracing::info!(ops_address = %address, "ops listener started: /metrics, /health/live, /health/ready");
    let state = Arc::new(state);
    let task = tokio::spawn(async move {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "ops listener: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let state = Arc::clone(&state);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let answer = answer(&state, &request);
                    async move { Ok::<_, Infallible>(answer) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEAD_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok((address, task))
}

/// The answer to one ops request.
fn answer(state: &OpsState, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let path = request.uri().path();
    if !matches!(path, "/metrics" | "/health/live" | "/health/ready") {
        return text(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found: /metrics, /health/live, /health/ready\n",
        );
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "text/plain; charset=utf-8", "only GET and HEAD\n");
        response.headers_mut().insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let mut response = match path {
        "/health/live" => text(StatusCode::OK, "application/json", "{\"status\":\"live\"}\n"),
        "/health/ready" => {
            let problems = readiness(state);
            let (status, mut body) = if problems.is_empty() {
                (StatusCode::OK, serde_json::json!({ "status": "ready" }))
            } else {
                (StatusCode::SERVICE_UNAVAILABLE, serde_json::json!({ "status": "not_ready", "not_ready": problems }))
            };
            if let Some(store) = &state.store {
                body["store"] = serde_json::Value::String(store_status(store));
            }
            text(status, "application/json", format!("{body}\n"))
        }
        _ => metrics(state, request.headers().get(ACCEPT)),
    };
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if request.method() == Method::HEAD {
        *response.body_mut() = Full::new(Bytes::new());
    }
    response
}

/// `/metrics`, in the format `Accept` asks for.
fn metrics(state: &OpsState, accept: Option<&HeaderValue>) -> Response<Full<Bytes>> {
    let Some(metrics) = &state.shared.metrics else {
        return text(StatusCode::NOT_FOUND, "text/plain; charset=utf-8", "metrics are off ([ops] metrics = false)\n");
    };
    let facts = facts(state, metrics);
    let openmetrics = accept.and_then(|a| a.to_str().ok()).is_some_and(|a| a.contains("application/openmetrics-text"));
    if openmetrics {
        text(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.encode_openmetrics(&facts),
        )
    } else {
        text(StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", metrics.encode_prometheus(&facts))
    }
}

/// What is not ready, each as `{"check": …, "reason": …}`; empty when ready.
fn readiness(state: &OpsState) -> Vec<serde_json::Value> {
    let mut problems = Vec::new();
    let mut fail = |check: &str, reason: &str| problems.push(serde_json::json!({ "check": check, "reason": reason }));
    if state.shared.snapshot.load().generation == 0 {
        fail("snapshot", "no snapshot of the documents is loaded");
    }
    if !state.serving.load(Ordering::Acquire) {
        fail("listeners", "the data-plane listeners are not accepting (starting or shutting down)");
    }
    if let Some(auditor) = &state.shared.audit {
        if auditor.is_failed() {
            fail("audit", "the audit trail cannot be written (disk full or unwritable); sync services refuse requests");
        }
    }
    if state.redis_required {
        match state.shared.ratelimit.cluster_state() {
            Some((true, _, _)) => {}
            _ => fail(
                "redis",
                "Redis is unreachable and [redis] on_unavailable = \"fail_closed\" refuses limited requests",
            ),
        }
    }
    problems
}

/// How the replica follows the shared store, for `/health/ready`.
fn store_status(store: &FollowState) -> String {
    if store.up() {
        format!("following generation {}", store.generation())
    } else {
        format!("unavailable (serving generation {})", store.generation())
    }
}

/// What the metrics read at scrape time beyond the request path's counters.
fn facts(state: &OpsState, metrics: &Metrics) -> Facts {
    let shared = &state.shared;
    let audit = shared.audit.as_ref().map(|auditor| {
        let (depth, capacity) = auditor.queue();
        let stats = auditor.stats();
        AuditFacts {
            queue_depth: depth as u64,
            queue_capacity: capacity as u64,
            writable: !auditor.is_failed(),
            records_written: stats.written.load(Ordering::Relaxed),
            fsync: stats.fsync.value(),
        }
    });
    let redis = shared.ratelimit.cluster_state().map(|(up, fallback_switches, fallback_requests)| RedisFacts {
        up,
        fallback_switches,
        fallback_requests,
    });
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let mut certificates: Vec<Expiry> = match &shared.tls {
        Some(tls) => tls
            .current()
            .expiry
            .iter()
            .map(|e| Expiry { kind: e.kind, name: e.name.clone(), seconds_left: (e.not_after - now) as f64 })
            .collect(),
        None => Vec::new(),
    };
    certificates.extend(metrics.client_certificates(now));
    Facts {
        snapshot_generation: shared.snapshot.load().generation,
        reload_failures: state.reloader.failures(),
        audit,
        redis,
        store: state.store.as_ref().map(|s| StoreFacts {
            up: s.up(),
            generation: s.generation(),
            resyncs: s.resyncs(),
        }),
        certificates,
        ready: readiness(state).is_empty(),
    }
}

fn text(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

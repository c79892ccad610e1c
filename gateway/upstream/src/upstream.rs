//! Upstream pools: a service's endpoints, the pooled hyper-util client that reaches them (HTTP/1.1 or HTTP/2,
//! plain or TLS verified against the configured roots), load balancing (P2C or round robin) and passive
//! ejection of endpoints that keep failing. Pools outlive snapshots: a reload that leaves a service's upstream
//! unchanged reuses its pool, its open connections and its health state.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::uri::{Authority, Scheme};
use http::Method;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::body::RequestBody;
use crate::dial::{Dialer, IdleConnections};
use penghubung_types::documents::{LoadBalance, UpstreamDoc};

/// The HTTP/2 upstream client (hyper-util's pool multiplexes streams over shared connections).
pub type UpstreamClient = Client<HttpsConnector<HttpConnector>, RequestBody>;

/// One backend address of a service.
#[derive(Debug)]
pub struct Endpoint {
    pub scheme: Scheme,
    pub authority: Authority,
    /// Base path without trailing `/` (may be empty).
    pub base_path: Box<str>,
    /// The endpoint as configured, for logs.
    pub label: Arc<str>,
    /// `Host` for HTTP/1.1 requests to this endpoint.
    pub host_header: http::HeaderValue,
    /// Idle HTTP/1.1 connections to this endpoint.
    pub idle: IdleConnections,
    in_flight: AtomicUsize,
    consecutive_failures: AtomicU32,
    /// Milliseconds since the pool's epoch until which the endpoint is ejected (0 = not ejected).
    ejected_until: AtomicU64,
}

impl Endpoint {
    /// Parses `http(s)://host[:port][/base]`; keeps up to `max_idle` idle connections.
    pub fn parse(url: &str, max_idle: usize) -> Result<Self, String> {
        let uri: http::Uri = url.parse().map_err(|e| format!("endpoint `{url}` is not a URL: {e}"))?;
        let scheme = uri.scheme().cloned().ok_or_else(|| format!("endpoint `{url}` needs http:// or https://"))?;
        if scheme != Scheme::HTTP && scheme != Scheme::HTTPS {
            return Err(format!("endpoint `{url}` must use http or https"));
        }
        let authority = uri.authority().cloned().ok_or_else(|| format!("endpoint `{url}` has no host"))?;
        if uri.query().is_some() {
            return Err(format!("endpoint `{url}` must not have a query"));
        }
        let base_path = uri.path().trim_end_matches('/').into();
        let host_header = http::HeaderValue::from_str(authority.as_str())
            .map_err(|_| format!("endpoint `{url}` has a host that cannot be a header"))?;
        Ok(Self {
            host_header,
            idle: IdleConnections::new(max_idle),
            scheme,
            authority,
            base_path,
            label: url.into(),
            in_flight: AtomicUsize::new(0),
            consecutive_failures: AtomicU32::new(0),
            ejected_until: AtomicU64::new(0),
        })
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }
}

/// Counts a request as in flight on an endpoint until dropped.
#[derive(Debug)]
pub struct InFlight<'a>(&'a Endpoint);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Settings that decide whether two snapshots can share a pool.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PoolSpec {
    pub upstream: UpstreamDoc,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub pool_idle_timeout: Duration,
    pub pool_max_idle_per_host: usize,
}

/// How requests reach the endpoints.
#[derive(Debug)]
pub enum Transport {
    /// HTTP/1.1 through the gateway's own lock-free per-endpoint pool.
    Http1(Dialer),
    /// HTTP/2 (h2c or ALPN) through hyper-util's client.
    Http2(Box<UpstreamClient>),
}

/// A service's endpoints and client.
#[derive(Debug)]
pub struct UpstreamPool {
    pub spec: PoolSpec,
    pub endpoints: Box<[Endpoint]>,
    pub transport: Transport,
    pub http2: bool,
    next: AtomicUsize,
    epoch: Instant,
}

impl UpstreamPool {
    /// Builds a pool. `tls` verifies HTTPS upstreams.
    pub fn new(spec: PoolSpec, tls: &rustls::ClientConfig) -> Result<Self, String> {
        let endpoints = spec
            .upstream
            .endpoints
            .iter()
            .map(|e| Endpoint::parse(e, spec.pool_max_idle_per_host))
            .collect::<Result<Vec<_>, _>>()?;
        let transport = if spec.upstream.http2 {
            let mut http = HttpConnector::new();
            http.enforce_http(false);
            http.set_nodelay(true);
            http.set_connect_timeout(Some(spec.connect_timeout));
            http.set_keepalive(Some(Duration::from_secs(60)));
            let connector = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(tls.clone())
                .https_or_http()
                .enable_http2()
                .wrap_connector(http);
            let mut client = Client::builder(TokioExecutor::new());
            client
                .pool_timer(TokioTimer::new())
                .timer(TokioTimer::new())
                .pool_idle_timeout(spec.pool_idle_timeout)
                .pool_max_idle_per_host(spec.pool_max_idle_per_host)
                .http2_only(true);
            Transport::Http2(Box::new(client.build(connector)))
        } else {
            Transport::Http1(Dialer {
                connect_timeout: spec.connect_timeout,
                idle_timeout: spec.pool_idle_timeout,
                tls: tokio_rustls::TlsConnector::from(Arc::new(tls.clone())),
            })
        };
        Ok(Self {
            http2: spec.upstream.http2,
            transport,
            endpoints: endpoints.into_boxed_slice(),
            spec,
            next: AtomicUsize::new(0),
            epoch: Instant::now(),
        })
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    fn is_available(&self, endpoint: &Endpoint, now: u64) -> bool {
        endpoint.ejected_until.load(Ordering::Relaxed) <= now
    }

    /// Picks an endpoint, skipping `exclude` (indices already tried) and ejected endpoints; when every
    /// candidate is ejected, picks among them anyway (better a chance than a certain failure).
    pub fn pick(&self, exclude: &[usize]) -> Option<usize> {
        let n = self.endpoints.len();
        if n == 0 || exclude.len() >= n {
            return None;
        }
        if n == 1 {
            return Some(0);
        }
        let now = self.now_ms();
        let candidate = |i: usize| !exclude.contains(&i);
        let healthy = |i: usize| candidate(i) && self.is_available(&self.endpoints[i], now);
        let any_healthy = (0..n).any(healthy);
        let ok = |i: usize| {
            if any_healthy {
                healthy(i)
            } else {
                candidate(i)
            }
        };
        match self.spec.upstream.load_balance {
            LoadBalance::RoundRobin => {
                let start = self.next.fetch_add(1, Ordering::Relaxed);
                (0..n).map(|k| (start + k) % n).find(|&i| ok(i))
            }
            LoadBalance::P2c => {
                let a = fastrand::usize(..n);
                let b = (a + 1 + fastrand::usize(..n - 1)) % n;
                match (ok(a), ok(b)) {
                    (true, true) => {
                        Some(if self.endpoints[b].in_flight() < self.endpoints[a].in_flight() { b } else { a })
                    }
                    (true, false) => Some(a),
                    (false, true) => Some(b),
                    (false, false) => (0..n).map(|k| (a + k) % n).find(|&i| ok(i)),
                }
            }
        }
    }

    /// Marks a request as in flight on endpoint `i`.
    pub fn start(&self, i: usize) -> InFlight<'_> {
        let e = &self.endpoints[i];
        e.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(e)
    }

    /// Records a success: the failure streak ends.
    pub fn record_success(&self, i: usize) {
        let e = &self.endpoints[i];
        if e.consecutive_failures.load(Ordering::Relaxed) != 0 {
            e.consecutive_failures.store(0, Ordering::Relaxed);
        }
    }

    /// Records a failure; after `eject_after_failures` in a row the endpoint is ejected for `eject_for`.
    /// Returns true when this failure ejected it.
    pub fn record_failure(&self, i: usize) -> bool {
        let e = &self.endpoints[i];
        let streak = e.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        if streak >= self.spec.upstream.eject_after_failures && self.endpoints.len() > 1 {
            let until = self.now_ms() + self.spec.upstream.eject_for.0.as_millis() as u64;
            e.ejected_until.store(until, Ordering::Relaxed);
            e.consecutive_failures.store(0, Ordering::Relaxed);
            return true;
        }
        false
    }

    /// Closes idle HTTP/1.1 connections past the idle timeout or closed by the upstream (HTTP/2 connections are
    /// kept by hyper-util's pool, which has its own timer). Returns how many were closed.
    pub fn sweep_idle(&self) -> usize {
        match &self.transport {
            Transport::Http1(dialer) => self.endpoints.iter().map(|e| e.idle.sweep(dialer.idle_timeout)).sum(),
            Transport::Http2(_) => 0,
        }
    }

    /// Whether endpoint `i` is ejected right now.
    pub fn is_ejected(&self, i: usize) -> bool {
        !self.is_available(&self.endpoints[i], self.now_ms())
    }
}

/// Methods a request may be sent again with (RFC 9110 §9.2.2): to another endpoint, or on another connection.
pub(crate) fn is_idempotent(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE)
}

/// A plain pool over `endpoints` for unit tests (1 s timeouts, one retry, ejection after 2 failures).
#[cfg(test)]
pub(crate) fn test_pool(lb: LoadBalance, endpoints: &[&str]) -> UpstreamPool {
    use penghubung_types::config::HumanDuration;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls =
        rustls::ClientConfig::builder().with_root_certificates(rustls::RootCertStore::empty()).with_no_client_auth();
    let spec = PoolSpec {
        upstream: UpstreamDoc {
            endpoints: endpoints.iter().map(|s| s.to_string()).collect(),
            load_balance: lb,
            connect_timeout: None,
            request_timeout: None,
            retries: 1,
            http2: false,
            eject_after_failures: 2,
            eject_for: HumanDuration(Duration::from_secs(60)),
            client_cert_file: None,
            client_key_file: None,
        },
        connect_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(1),
        pool_idle_timeout: Duration::from_secs(1),
        pool_max_idle_per_host: 1,
    };
    UpstreamPool::new(spec, &tls).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(lb: LoadBalance, endpoints: &[&str]) -> UpstreamPool {
        test_pool(lb, endpoints)
    }

    #[tokio::test]
    async fn round_robin_skips_ejected_endpoints() {
        let p = pool(LoadBalance::RoundRobin, &["http://a:1", "http://b:2", "http://c:3"]);
        let picks: Vec<usize> = (0..6).map(|_| p.pick(&[]).unwrap()).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
        assert!(!p.record_failure(1));
        assert!(p.record_failure(1));
        assert!(p.is_ejected(1));
        assert!((0..10).all(|_| p.pick(&[]).unwrap() != 1));
        assert_eq!(p.pick(&[0, 2]), Some(1), "an ejected endpoint is still better than none");
        assert_eq!(p.pick(&[0, 1, 2]), None);
    }

    #[tokio::test]
    async fn p2c_prefers_the_less_loaded() {
        let p = pool(LoadBalance::P2c, &["http://a:1", "http://b:2"]);
        let _busy: Vec<_> = (0..5).map(|_| p.start(0)).collect();
        assert!((0..20).all(|_| p.pick(&[]) == Some(1)));
    }

    #[test]
    fn endpoints_parse_base_paths() {
        let e = Endpoint::parse("https://api.example.go.id:8443/base/", 4).unwrap();
        assert_eq!(e.scheme, Scheme::HTTPS);
        assert_eq!(e.authority.as_str(), "api.example.go.id:8443");
        assert_eq!(&*e.base_path, "/base");
        assert!(Endpoint::parse("ftp://x", 4).is_err());
        assert!(Endpoint::parse("http://x/?q=1", 4).is_err());
    }
}

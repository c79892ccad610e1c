//! Rate limits and quotas (GCRA). Four kinds of limit, each optional, each from a document:
//!
//! | scope       | document                                   | counts                                   |
//! |-------------|--------------------------------------------|------------------------------------------|
//! | `grant`     | the grant's `tier` (`tiers/{id}.toml`)      | one client's requests to one service     |
//! | `client`    | the client's `rate_limit`                   | all requests of one client               |
//! | `opd`       | the caller's OPD `bandwidth.requests_per_second` | all requests of the OPD's clients   |
//! | `opd-bytes` | the caller's OPD `bandwidth.bytes_per_second`    | request + response body bytes of them |
//! | `service`   | the service's `rate_limit`                  | all callers of one service (upstream protection) |
//!
//! Every limit is compiled once into a [`Limit`] held by the snapshot (the grant, the client entry, the
//! service). The subjects are known when the snapshot is built, so a request finds its limits by following
//! pointers: no key is hashed or formatted per request. A limit is identified by scope, subject and quota;
//! a reload reuses the previous snapshot's [`Limit`] (and so its counters) when that identity is unchanged.
//!
//! Two engines ([`RateLimiter`]): in process (a `governor` GCRA per request limit, a lock-free GCRA byte
//! meter per byte limit), or cluster-wide through Redis ([`cluster`]): all the limits of one request are
//! evaluated by one Lua script in one round trip, so every replica shares them. When Redis is unreachable,
//! `[redis] on_unavailable` decides (`local_fallback`, `fail_open`, `fail_closed`).
//!
//! Limits are checked from the most specific to the most shared (grant, client, OPD, OPD bytes, service), so
//! a request refused by its own grant does not use up the service's quota of other callers. Locally, a limit
//! passed before another refused the request has still counted it (governor cannot take a cell back); in
//! Redis the script updates nothing unless every limit admits.
//!
//! Bytes: the request's `Content-Length` is charged when the request is admitted, response body bytes as they
//! stream to the caller (as debt: a request is refused while the OPD's byte bucket is exhausted). In cluster
//! mode response bytes are added to the next Redis call of that OPD. Chunked request bodies (no
//! `Content-Length`) are not charged.
//!
//! Responses that passed a limit carry `RateLimit-Policy` and `RateLimit` (IETF httpapi rate-limit headers
//! draft) naming the tightest limit; a refusal is 429 `ratelimit.exceeded` with `Retry-After`.
#![forbid(unsafe_code)]

pub mod cluster;
mod error;
mod limit;
mod local;
mod quota;

pub use error::{Exceeded, LimitError};
pub use limit::{Admitted, Limit, LimitBuilder, LimitSettings, RequestLimits, RATELIMIT, RATELIMIT_POLICY};
pub use quota::{Quota, Scope};

use std::fmt;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use penghubung_types::config::{Config, OnUnavailable};

use limit::reset_secs;

/// The engine: in process, or shared through Redis.
pub struct RateLimiter {
    enabled: bool,
    cluster: Option<Arc<cluster::Cluster>>,
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter").field("enabled", &self.enabled).field("cluster", &self.cluster.is_some()).finish()
    }
}

impl RateLimiter {
    /// The engine the config asks for. Cluster mode starts connecting to Redis in the background (the gateway
    /// starts even when Redis is down: the fallback applies until it is reachable).
    pub fn start(config: &Config) -> RateLimiter {
        let cluster = match (&config.redis, config.ratelimit.enabled) {
            (Some(redis), true) => Some(cluster::Cluster::start(redis)),
            _ => None,
        };
        RateLimiter { enabled: config.ratelimit.enabled, cluster }
    }

    /// The engine's state for the health endpoint: mode, and in cluster mode whether Redis is reachable and
    /// how many requests the fallback decided.
    pub fn status(&self) -> serde_json::Value {
        match (&self.cluster, self.enabled) {
            (_, false) => serde_json::json!({ "mode": "off" }),
            (None, true) => serde_json::json!({ "mode": "local" }),
            (Some(cluster), true) => serde_json::json!({
                "mode": "cluster",
                "redis": if cluster.is_up() { "up" } else { "down" },
                "fallback_requests": cluster.fallback_requests(),
            }),
        }
    }

    /// The shared store's state for the ops listener, in cluster mode: reachable, fallback switches, requests the
    /// fallback decided.
    pub fn cluster_state(&self) -> Option<(bool, u64, u64)> {
        let cluster = self.cluster.as_ref().filter(|_| self.enabled)?;
        Some((cluster.is_up(), cluster.fallback_switches(), cluster.fallback_requests()))
    }

    /// Checks (and counts) a request against its limits. `request_bytes` is charged to a byte limit.
    /// `Ok(None)`: no limit applied.
    pub async fn check<'a>(
        &self,
        limits: &RequestLimits<'a>,
        request_bytes: u64,
    ) -> Result<Option<Admitted<'a>>, LimitError> {
        if !self.enabled || limits.is_empty() {
            return Ok(None);
        }
        match &self.cluster {
            None => check_local(limits, request_bytes),
            // Boxed: the Redis round trip's state is large, and the callers' futures should not carry it inline.
            Some(cluster) => match Box::pin(cluster.check(limits, request_bytes)).await {
                Ok(decision) => {
                    if decision.is_ok() {
                        mirror_locally(limits, request_bytes);
                    }
                    decision
                }
                Err(()) => match cluster.on_unavailable() {
                    OnUnavailable::LocalFallback => check_local(limits, request_bytes),
                    OnUnavailable::FailOpen => Ok(None),
                    OnUnavailable::FailClosed => Err(LimitError::StoreUnavailable),
                },
            },
        }
    }
}

impl Drop for RateLimiter {
    fn drop(&mut self) {
        if let Some(cluster) = &self.cluster {
            cluster.stop();
        }
    }
}

/// Switching between Redis and the local fallback never grants a fresh burst. While Redis decides, each request
/// it admitted is also counted on this replica's local share, so that the fallback starts from this replica's
/// recent use, not from a full bucket. (What the fallback admits is charged to Redis on its return, see
/// [`check_local`].)
fn mirror_locally(limits: &RequestLimits<'_>, request_bytes: u64) {
    for limit in limits.iter() {
        if limit.scope.counts_bytes() {
            limit.local.charge(request_bytes);
        } else {
            let _ = limit.local.check(0); // an exhausted share stays exhausted; nothing more to count
        }
    }
}

fn check_local<'a>(limits: &RequestLimits<'a>, request_bytes: u64) -> Result<Option<Admitted<'a>>, LimitError> {
    let mut tightest = None;
    for limit in limits.iter() {
        let quota = limit.local.quota();
        match limit.local.check(request_bytes) {
            Ok(remaining) => {
                if limit.cluster {
                    // Admitted by the fallback: Redis is charged for it when it is reachable again.
                    let units = if limit.scope.counts_bytes() { request_bytes } else { 1 };
                    limit.pending_units.fetch_add(units, Ordering::Relaxed);
                }
                let admitted = Admitted { limit, remaining, reset_secs: reset_secs(quota, remaining) };
                tightest = Admitted::tighter(tightest, admitted);
            }
            Err(wait) => return Err(limit.rejection(wait)),
        }
    }
    Ok(tightest)
}

/// A response body that charges its bytes to the caller OPD's byte limit as they pass: wraps any body, and
/// passes its frames and errors through unchanged.
#[derive(Debug)]
pub struct Metered<B> {
    inner: B,
    limit: Arc<Limit>,
}

impl<B> Metered<B> {
    pub fn new(inner: B, limit: Arc<Limit>) -> Self {
        Self { inner, limit }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for Metered<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                this.limit.charge_bytes(data.len() as u64);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::header::HeaderMap;

    use super::*;

    fn quota(rate: u64, period_ms: u64, burst: u64) -> Quota {
        Quota { rate, period: Duration::from_millis(period_ms), burst }
    }

    fn builder_config(extra: &str) -> Config {
        let text = format!("[[listeners]]\naddress = \"127.0.0.1:0\"\nplaintext = true\n{extra}");
        Config::parse(&text, "t.toml", std::path::Path::new(".")).unwrap()
    }

    #[test]
    fn local_limit_admits_burst_then_refuses_with_retry_after() {
        let config = builder_config("");
        let mut builder = LimitBuilder::new(&config, None);
        let limit = builder.limit(Scope::Grant, "g", quota(3, 10_000, 3)).unwrap();
        let limits = RequestLimits { grant: Some(&limit), ..Default::default() };
        let mut remaining = Vec::new();
        for _ in 0..3 {
            remaining.push(check_local(&limits, 0).unwrap().unwrap().remaining);
        }
        assert_eq!(remaining, [2, 1, 0]);
        match check_local(&limits, 0).unwrap_err() {
            LimitError::Exceeded(refused) => {
                let Exceeded { scope, retry_after, policy, state, .. } = *refused;
                assert_eq!(scope, "grant");
                assert!((1..=4).contains(&retry_after), "{retry_after}");
                assert_eq!(policy, "\"grant\";q=3;w=10");
                assert!(state.to_str().unwrap().starts_with("\"grant\";r=0;t="), "{state:?}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_tightest_limit_is_named_and_the_first_refusal_wins() {
        let config = builder_config("");
        let mut builder = LimitBuilder::new(&config, None);
        let grant = builder.limit(Scope::Grant, "g", quota(100, 1000, 100)).unwrap();
        let service = builder.limit(Scope::Service, "s", quota(2, 10_000, 2)).unwrap();
        let limits = RequestLimits { grant: Some(&grant), service: Some(&service), ..Default::default() };
        let admitted = check_local(&limits, 0).unwrap().unwrap();
        assert_eq!(admitted.limit.scope, Scope::Service);
        let mut headers = HeaderMap::new();
        admitted.apply(&mut headers);
        assert_eq!(headers[RATELIMIT_POLICY], "\"service\";q=2;w=10");
        assert_eq!(headers[RATELIMIT], "\"service\";r=1;t=5");
        check_local(&limits, 0).unwrap();
        let refused = check_local(&limits, 0).unwrap_err();
        assert!(matches!(refused, LimitError::Exceeded(ref e) if e.scope == "service"));
    }

    #[test]
    fn unchanged_limits_survive_a_rebuild_and_changed_quotas_start_fresh() {
        let config = builder_config("");
        let mut first = LimitBuilder::new(&config, None);
        let a = first.limit(Scope::Client, "dinkes/simpus", quota(1, 60_000, 1)).unwrap();
        let previous = first.finish();
        let mut second = LimitBuilder::new(&config, Some(&previous));
        let same = second.limit(Scope::Client, "dinkes/simpus", quota(1, 60_000, 1)).unwrap();
        let changed = second.limit(Scope::Client, "dinkes/simpus", quota(2, 60_000, 1)).unwrap();
        assert!(Arc::ptr_eq(&a, &same));
        assert!(!Arc::ptr_eq(&a, &changed));
    }

    #[test]
    fn byte_limits_refuse_while_in_debt() {
        let config = builder_config("");
        let mut builder = LimitBuilder::new(&config, None);
        let bytes = builder.limit(Scope::OpdBytes, "dinkes", quota(1000, 10_000, 1000)).unwrap();
        let limits = RequestLimits { opd_bytes: Some(&bytes), ..Default::default() };
        let admitted = check_local(&limits, 400).unwrap().unwrap();
        assert!((590..=600).contains(&admitted.remaining), "{}", admitted.remaining);
        bytes.charge_bytes(5000);
        let refused = check_local(&limits, 0).unwrap_err();
        assert!(matches!(refused, LimitError::Exceeded(ref e) if e.scope == "opd-bytes" && e.retry_after >= 40));
    }

    #[test]
    fn switched_off_limits_are_not_built_and_cluster_limits_keep_a_share() {
        let config = builder_config("[ratelimit]\nenabled = false\n");
        assert!(LimitBuilder::new(&config, None).limit(Scope::Grant, "g", quota(1, 1000, 1)).is_none());
        let config = builder_config("[redis]\nurl = \"redis://127.0.0.1:1\"\nreplicas = 2\n");
        let limit = LimitBuilder::new(&config, None).limit(Scope::Grant, "g", quota(10, 1000, 4)).unwrap();
        assert_eq!(limit.local.quota(), &quota(5, 1000, 2));
        assert_eq!(&*limit.redis_key, b"penghubung:rl:grant:g:10/1000ms/4");
        assert_eq!(&*limit.emission_arg, "100000");
        assert_eq!(&*limit.window_arg, "400000");
    }
}

//! Compiled limits: one [`Limit`] per scope, subject and quota, built by a [`LimitBuilder`] (reusing the previous
//! snapshot's when unchanged); the [`RequestLimits`] one request meets, and the [`Admitted`] answer naming the
//! tightest of them in the response headers.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderMap, HeaderName, HeaderValue};

use penghubung_types::config::Config;

use crate::error::{Exceeded, LimitError};
use crate::local;
use crate::quota::{Quota, Scope};

/// `RateLimit-Policy: "grant";q=10;w=1`.
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// `RateLimit: "grant";r=3;t=1`.
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// One compiled limit of one subject, shared by the snapshots that keep it.
pub struct Limit {
    pub scope: Scope,
    /// The quota (what Redis enforces and the headers announce).
    pub quota: Quota,
    /// The key in Redis: prefix, scope, subject, quota.
    pub(crate) redis_key: Box<[u8]>,
    /// Script arguments, formatted once: microseconds per unit and the burst window in microseconds.
    pub(crate) emission_arg: Box<str>,
    pub(crate) window_arg: Box<str>,
    /// `"grant";q=10;w=1`.
    pub(crate) policy_header: HeaderValue,
    /// The in-process state: the whole quota in local mode, this replica's share in cluster mode.
    pub(crate) local: local::LocalLimit,
    /// Cluster mode: units admitted here but not yet charged in Redis (response bytes, and what the local
    /// fallback admitted while Redis was unreachable), added to the next call as debt.
    pub(crate) pending_units: AtomicU64,
    pub(crate) cluster: bool,
}

impl fmt::Debug for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limit")
            .field("scope", &self.scope)
            .field("quota", &self.quota)
            .field("key", &String::from_utf8_lossy(&self.redis_key))
            .finish()
    }
}

impl Limit {
    /// Charges response bytes (byte limits only): debt that refuses later requests until it is paid off.
    pub fn charge_bytes(&self, bytes: u64) {
        self.local.charge(bytes);
        if self.cluster {
            self.pending_units.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    pub(crate) fn rejection(&self, retry_after: Duration) -> LimitError {
        let retry_after = retry_after.as_millis().div_ceil(1000).max(1) as u64;
        LimitError::Exceeded(Box::new(Exceeded {
            scope: self.scope.name(),
            quota: self.quota,
            retry_after,
            policy: self.policy_header.clone(),
            state: state_header(self.scope, 0, retry_after),
        }))
    }
}

fn state_header(scope: Scope, remaining: u64, reset_secs: u64) -> HeaderValue {
    let text = format!("\"{}\";r={remaining};t={reset_secs}", scope.name());
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// How limits are compiled for this process (from the config).
#[derive(Clone, Debug)]
pub struct LimitSettings {
    pub enabled: bool,
    key_prefix: String,
    /// Cluster mode: the share of every quota each replica enforces when it falls back to local limits.
    cluster_replicas: Option<u32>,
}

impl LimitSettings {
    pub fn from_config(config: &Config) -> LimitSettings {
        LimitSettings {
            enabled: config.ratelimit.enabled,
            key_prefix: config.redis.as_ref().map_or_else(String::new, |r| r.key_prefix.clone()),
            cluster_replicas: config.redis.as_ref().map(|r| r.replicas),
        }
    }
}

/// Compiles the limits of a snapshot, reusing those of the previous snapshot whose identity is unchanged.
pub struct LimitBuilder<'a> {
    settings: LimitSettings,
    previous: Option<&'a HashMap<Box<str>, Arc<Limit>>>,
    built: HashMap<Box<str>, Arc<Limit>>,
}

impl<'a> LimitBuilder<'a> {
    pub fn new(config: &Config, previous: Option<&'a HashMap<Box<str>, Arc<Limit>>>) -> Self {
        LimitBuilder { settings: LimitSettings::from_config(config), previous, built: HashMap::new() }
    }

    /// The limit of `subject` in `scope` with `quota` (`None` when limits are switched off).
    pub fn limit(&mut self, scope: Scope, subject: &str, quota: Quota) -> Option<Arc<Limit>> {
        if !self.settings.enabled {
            return None;
        }
        let share = self.settings.cluster_replicas;
        let local_quota = share.map_or(quota, |replicas| quota.share(replicas));
        // The share is the same for the whole process (config), so it is not part of the identity; replicas
        // with different `replicas` settings still share the Redis key.
        let identity =
            format!("{}:{subject}:{}/{}ms/{}", scope.name(), quota.rate, quota.period.as_millis(), quota.burst);
        if let Some(limit) = self.built.get(identity.as_str()) {
            return Some(Arc::clone(limit));
        }
        let limit = match self.previous.and_then(|p| p.get(identity.as_str())) {
            Some(limit) => Arc::clone(limit),
            None => {
                let emission_ns = quota.emission_ns();
                let policy = if scope.counts_bytes() {
                    format!("\"{}\";q={};w={};qu=\"content-bytes\"", scope.name(), quota.rate, quota.window_secs())
                } else {
                    format!("\"{}\";q={};w={}", scope.name(), quota.rate, quota.window_secs())
                };
                Arc::new(Limit {
                    scope,
                    quota,
                    redis_key: format!("{}{identity}", self.settings.key_prefix).into_bytes().into_boxed_slice(),
                    emission_arg: format!("{}", emission_ns / 1000.0).into(),
                    window_arg: format!("{}", (emission_ns * quota.burst as f64 / 1000.0).ceil()).into(),
                    policy_header: HeaderValue::from_str(&policy).unwrap_or_else(|_| HeaderValue::from_static("")),
                    local: local::LocalLimit::new(scope.counts_bytes(), local_quota),
                    pending_units: AtomicU64::new(0),
                    cluster: share.is_some(),
                })
            }
        };
        self.built.insert(identity.into(), Arc::clone(&limit));
        Some(limit)
    }

    /// Every limit built, by identity (kept by the snapshot for the next build).
    pub fn finish(self) -> HashMap<Box<str>, Arc<Limit>> {
        self.built
    }
}

/// The limits one request meets, most specific first: grant, client, OPD requests, OPD bytes, service.
#[derive(Clone, Copy, Debug, Default)]
pub struct RequestLimits<'a> {
    pub grant: Option<&'a Limit>,
    pub client: Option<&'a Limit>,
    pub opd: Option<&'a Limit>,
    pub opd_bytes: Option<&'a Limit>,
    pub service: Option<&'a Limit>,
}

impl<'a> RequestLimits<'a> {
    pub(crate) fn iter(&self) -> impl Iterator<Item = &'a Limit> + '_ {
        [self.grant, self.client, self.opd, self.opd_bytes, self.service].into_iter().flatten()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

/// A request passed its limits: the tightest one is named in the response headers.
#[derive(Debug)]
pub struct Admitted<'a> {
    pub(crate) limit: &'a Limit,
    pub(crate) remaining: u64,
    pub(crate) reset_secs: u64,
}

impl Admitted<'_> {
    /// Adds `RateLimit-Policy` and `RateLimit` to a response.
    pub fn apply(&self, headers: &mut HeaderMap) {
        headers.insert(RATELIMIT_POLICY, self.limit.policy_header.clone());
        headers.insert(RATELIMIT, state_header(self.limit.scope, self.remaining, self.reset_secs));
    }

    /// Keeps the tighter of two (the smaller share of its burst left).
    pub(crate) fn tighter<'a>(current: Option<Admitted<'a>>, candidate: Admitted<'a>) -> Option<Admitted<'a>> {
        match current {
            Some(c)
                if u128::from(c.remaining) * u128::from(candidate.limit.quota.burst)
                    <= u128::from(candidate.remaining) * u128::from(c.limit.quota.burst) =>
            {
                Some(c)
            }
            _ => Some(candidate),
        }
    }
}

/// Seconds until a bucket with `remaining` of `burst` left is full again.
pub(crate) fn reset_secs(quota: &Quota, remaining: u64) -> u64 {
    let missing = quota.burst.saturating_sub(remaining) as f64;
    ((missing * quota.emission_ns()) / 1e9).ceil() as u64
}

pub(crate) fn reset_secs_from_ms(ms: u64) -> u64 {
    ms.div_ceil(1000)
}

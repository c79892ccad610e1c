//! What a limit counts ([`Scope`]) and how much of it ([`Quota`]): the vocabulary every other part of rate
//! limiting (compiled limits, both engines, the errors) is written in.

use std::fmt;
use std::time::Duration;

use penghubung_types::documents::{BandwidthDoc, QuotaDoc};

/// What a limit counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    Grant,
    Client,
    Opd,
    OpdBytes,
    Service,
}

impl Scope {
    /// The policy name in headers, problem details and Redis keys.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Grant => "grant",
            Scope::Client => "client",
            Scope::Opd => "opd",
            Scope::OpdBytes => "opd-bytes",
            Scope::Service => "service",
        }
    }

    pub(crate) fn counts_bytes(self) -> bool {
        self == Scope::OpdBytes
    }
}

/// `rate` units per `period`, at most `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Quota {
    pub rate: u64,
    pub period: Duration,
    pub burst: u64,
}

impl Quota {
    /// The quota of a document (`burst` defaults to `rate`).
    pub fn from_doc(doc: &QuotaDoc) -> Quota {
        let rate = u64::from(doc.rate.max(1));
        Quota { rate, period: doc.period.0, burst: doc.burst.map_or(rate, u64::from).max(1) }
    }

    /// The request and byte quotas of an OPD's bandwidth (per second).
    pub fn from_bandwidth(doc: &BandwidthDoc) -> (Option<Quota>, Option<Quota>) {
        let second = Duration::from_secs(1);
        let requests = doc.requests_per_second.map(|rate| {
            let rate = u64::from(rate.max(1));
            Quota { rate, period: second, burst: doc.request_burst.map_or(rate, u64::from).max(1) }
        });
        let bytes = doc.bytes_per_second.map(|rate| {
            let rate = rate.0.max(1);
            Quota { rate, period: second, burst: doc.byte_burst.map_or(rate, |b| b.0).max(1) }
        });
        (requests, bytes)
    }

    /// Each of `replicas` gateways enforcing its share of this quota on its own.
    pub(crate) fn share(self, replicas: u32) -> Quota {
        let replicas = u64::from(replicas.max(1));
        Quota { rate: (self.rate / replicas).max(1), period: self.period, burst: (self.burst / replicas).max(1) }
    }

    /// Time per unit, in nanoseconds (fractional for byte quotas).
    pub(crate) fn emission_ns(&self) -> f64 {
        self.period.as_nanos() as f64 / self.rate as f64
    }

    /// The window `w` of the headers: the period in whole seconds, at least 1.
    pub(crate) fn window_secs(&self) -> u64 {
        self.period.as_millis().div_ceil(1000).max(1) as u64
    }
}

impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} per {}, burst {}", self.rate, penghubung_types::config::HumanDuration(self.period), self.burst)
    }
}

//! In-process limit state: a `governor` GCRA (lock-free, one atomic) per request limit, and a byte meter (the
//! same GCRA on one atomic, but allowed to go into debt, since response bytes are counted after they were
//! sent) per byte limit.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::{InMemoryState, NotKeyed};

use crate::quota::Quota;

type Governor = governor::RateLimiter<NotKeyed, InMemoryState, DefaultClock, StateInformationMiddleware>;

/// The in-process state of one limit.
pub(crate) struct LocalLimit {
    quota: Quota,
    kind: Kind,
}

enum Kind {
    Requests(Governor),
    Bytes(ByteMeter),
}

impl LocalLimit {
    pub(crate) fn new(bytes: bool, quota: Quota) -> LocalLimit {
        let kind = if bytes {
            Kind::Bytes(ByteMeter::new(quota))
        } else {
            let emission = Duration::from_nanos((quota.period.as_nanos() / u128::from(quota.rate)).max(1) as u64);
            let burst = NonZeroU32::new(u32::try_from(quota.burst).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN);
            let gq = governor::Quota::with_period(emission).expect("emission is above zero").allow_burst(burst);
            Kind::Requests(governor::RateLimiter::direct(gq).with_middleware::<StateInformationMiddleware>())
        };
        LocalLimit { quota, kind }
    }

    pub(crate) fn quota(&self) -> &Quota {
        &self.quota
    }

    /// Counts one request (charging `bytes` to a byte limit): the units left, or how long to wait.
    pub(crate) fn check(&self, bytes: u64) -> Result<u64, Duration> {
        match &self.kind {
            Kind::Requests(limiter) => match limiter.check() {
                Ok(state) => Ok(u64::from(state.remaining_burst_capacity())),
                Err(not_until) => Err(not_until.wait_time_from(DefaultClock::default().now())),
            },
            Kind::Bytes(meter) => meter.admit(bytes),
        }
    }

    /// Charges bytes already sent (byte limits only).
    pub(crate) fn charge(&self, bytes: u64) {
        if let Kind::Bytes(meter) = &self.kind {
            meter.charge(bytes);
        }
    }
}

/// GCRA over bytes with debt: the theoretical arrival time (nanoseconds since `origin`) moves forward by the
/// bytes charged; a request is admitted while it is less than one window ahead of now.
struct ByteMeter {
    origin: Instant,
    tat: AtomicU64,
    /// Picoseconds per byte.
    emission_ps: u64,
    /// `burst` bytes' worth of time, in nanoseconds.
    window_ns: u64,
}

impl ByteMeter {
    fn new(quota: Quota) -> ByteMeter {
        let emission_ps = ((quota.period.as_nanos() * 1000) / u128::from(quota.rate)).clamp(1, u128::from(u64::MAX));
        let emission_ps = emission_ps as u64;
        let window_ns = (u128::from(emission_ps) * u128::from(quota.burst) / 1000).min(u128::from(u64::MAX)) as u64;
        ByteMeter { origin: Instant::now(), tat: AtomicU64::new(0), emission_ps, window_ns: window_ns.max(1) }
    }

    fn now(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }

    fn cost_ns(&self, bytes: u64) -> u64 {
        (u128::from(bytes) * u128::from(self.emission_ps) / 1000).min(u128::from(u64::MAX / 2)) as u64
    }

    fn admit(&self, bytes: u64) -> Result<u64, Duration> {
        let now = self.now();
        let mut current = self.tat.load(Ordering::Acquire);
        loop {
            let base = current.max(now);
            let ahead = base - now;
            if ahead >= self.window_ns {
                let wait = ahead - self.window_ns + (self.emission_ps / 1000).max(1);
                return Err(Duration::from_nanos(wait));
            }
            let next = base.saturating_add(self.cost_ns(bytes));
            match self.tat.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    let used = next - now;
                    let left = self.window_ns.saturating_sub(used);
                    return Ok((u128::from(left) * 1000 / u128::from(self.emission_ps)) as u64);
                }
                Err(actual) => current = actual,
            }
        }
    }

    fn charge(&self, bytes: u64) {
        let now = self.now();
        let cost = self.cost_ns(bytes);
        let _ =
            self.tat.fetch_update(Ordering::AcqRel, Ordering::Acquire, |tat| Some(tat.max(now).saturating_add(cost)));
    }
}

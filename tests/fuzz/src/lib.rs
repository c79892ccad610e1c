//! Shared settings of the fuzz targets in `tests/`. Each target is a `#[test]` that drives one parser of
//! hostile input with `bolero` on the stable toolchain, for a bounded time: [`budget`] (20 s each by default,
//! `PENGHUBUNG_FUZZ_SECONDS` to change it; `scripts/fuzz.sh` runs every target for an hour). A target prints
//! how many inputs it tried; every crash or disagreement it finds becomes a regression case of its own beside
//! the target.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How long each target runs: `PENGHUBUNG_FUZZ_SECONDS`, 20 s when unset or unreadable.
pub fn budget() -> Duration {
    let seconds = std::env::var("PENGHUBUNG_FUZZ_SECONDS").ok().and_then(|s| s.parse::<u64>().ok()).unwrap_or(20);
    Duration::from_secs(seconds)
}

/// Counts the inputs a target tried and prints the count when dropped (at the end of the target).
#[derive(Debug)]
pub struct Tried {
    target: &'static str,
    count: AtomicU64,
}

impl Tried {
    pub fn new(target: &'static str) -> Self {
        Self { target, count: AtomicU64::new(0) }
    }

    /// One more input.
    pub fn one(&self) {
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

impl Drop for Tried {
    fn drop(&mut self) {
        eprintln!("fuzz {}: {} inputs tried", self.target, self.count());
    }
}

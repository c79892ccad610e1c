//! Failed sign-ins counted per username and per address within a window (`[console] max_failures_per_user`,
//! `max_failures_per_address`, `lockout_window`); past either limit further attempts are refused, even with the
//! right password, until the failures age out of the window.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    User(String),
    Address(IpAddr),
}

/// The failure counters.
pub struct Lockout {
    per_user: usize,
    per_address: usize,
    window: Duration,
    failures: Mutex<HashMap<Key, VecDeque<Instant>>>,
}

impl Lockout {
    pub fn new(per_user: u32, per_address: u32, window: Duration) -> Lockout {
        Lockout {
            per_user: per_user as usize,
            per_address: per_address as usize,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn recent(&self, failures: &mut HashMap<Key, VecDeque<Instant>>, key: &Key, now: Instant) -> usize {
        let Some(times) = failures.get_mut(key) else { return 0 };
        while times.front().is_some_and(|t| now.duration_since(*t) >= self.window) {
            times.pop_front();
        }
        times.len()
    }

    /// Whether a sign-in as `user` from `address` is refused now.
    pub fn locked(&self, user: &str, address: IpAddr) -> bool {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        self.recent(&mut failures, &Key::User(user.to_string()), now) >= self.per_user
            || self.recent(&mut failures, &Key::Address(address), now) >= self.per_address
    }

    /// Counts a failed sign-in.
    pub fn failed(&self, user: &str, address: IpAddr) {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.len() > 10_000 {
            let window = self.window;
            failures.retain(|_, times| times.back().is_some_and(|t| now.duration_since(*t) < window));
        }
        for key in [Key::User(user.to_string()), Key::Address(address)] {
            let times = failures.entry(key).or_default();
            times.push_back(now);
            // Never more than the larger limit is needed to decide.
            while times.len() > self.per_user.max(self.per_address) {
                times.pop_front();
            }
        }
    }

    /// A successful sign-in forgets the username's failures (not the address's).
    pub fn succeeded(&self, user: &str) {
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(&Key::User(user.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_user_and_per_address_limits_within_the_window() {
        let here: IpAddr = "192.0.2.1".parse().unwrap();
        let there: IpAddr = "192.0.2.2".parse().unwrap();
        let lockout = Lockout::new(3, 5, Duration::from_millis(150));
        for _ in 0..3 {
            assert!(!lockout.locked("ani", here));
            lockout.failed("ani", here);
        }
        assert!(lockout.locked("ani", here));
        assert!(lockout.locked("ani", there), "the username is locked from everywhere");
        assert!(!lockout.locked("budi", here), "the address has 3 of its 5");
        lockout.failed("budi", here);
        lockout.failed("cici", here);
        assert!(lockout.locked("dodi", here), "the address is locked for everyone");
        assert!(!lockout.locked("dodi", there));
        std::thread::sleep(Duration::from_millis(160));
        assert!(!lockout.locked("ani", here), "the window passed");
    }
}

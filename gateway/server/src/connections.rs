//! How many connections the data plane holds: the file-handle limit is raised at start (soft `RLIMIT_NOFILE` to
//! the hard limit), the default maximum is sized from it with headroom for upstream connections, audit files and
//! the store, and every accepted connection is admitted against the maximum overall and the maximum per client
//! (its verified certificate's fingerprint on mTLS listeners, its IP address on plaintext ones). A connection
//! past either maximum is refused at once (over TLS: before the handshake for the overall maximum, right after
//! it for the per-client one, since only then is the certificate known); open connections are never failed for
//! it. Refusals are logged at most once per [`REFUSAL_LOG_EVERY`], with how many there were.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// File handles kept out of the connection budget for everything else: listeners, the store and its watcher,
/// audit segments, Redis, the runtime.
const RESERVED_FILES: u64 = 256;

/// The soft file-handle limit before and after it was raised at start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileLimit {
    pub before: u64,
    pub now: u64,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and says what it was and is. When the limit cannot be
/// read, the answer is a conservative 1024.
pub fn raise_file_limit() -> FileLimit {
    let before = rlimit::Resource::NOFILE.get().map(|(soft, _)| soft).unwrap_or(1024);
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(now) => FileLimit { before, now: now.max(before) },
        Err(error) => {
            tracing::warn!(%error, soft = before, "could not raise the file-handle limit");
            FileLimit { before, now: before }
        }
    }
}

/// The default maximum of open connections for a file-handle limit: half of what is left after the reserve (each
/// caller's connection may hold one upstream connection), and at least 16.
pub fn default_max_connections(file_limit: u64) -> usize {
    let budget = file_limit.saturating_sub(RESERVED_FILES) / 2;
    usize::try_from(budget).unwrap_or(usize::MAX).max(16)
}

/// The maxima in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Maxima {
    pub overall: usize,
    pub per_client: usize,
}

impl Maxima {
    /// From `server.max_connections` and `server.max_connections_per_client` (0 = sized from `file_limit`; the
    /// per-client maximum never exceeds the overall one).
    pub fn from_config(max_connections: usize, per_client: usize, file_limit: u64) -> Self {
        let overall = if max_connections == 0 { default_max_connections(file_limit) } else { max_connections };
        let per_client = if per_client == 0 { (overall / 4).max(1) } else { per_client.min(overall) };
        Maxima { overall, per_client }
    }
}

/// Who a connection is counted against.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ClientKey {
    /// The SHA-256 fingerprint of the verified client certificate.
    Certificate(Box<str>),
    /// The peer's address (plaintext listeners).
    Address(IpAddr),
}

/// The open connections, overall and per client.
#[derive(Debug)]
pub struct ConnectionLimits {
    maxima: Maxima,
    open: AtomicUsize,
    per_client: Mutex<HashMap<ClientKey, usize>>,
    refusals: RefusalLog,
}

/// Why a connection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    Overall,
    PerClient,
}

impl ConnectionLimits {
    pub fn new(maxima: Maxima) -> Arc<Self> {
        Arc::new(Self {
            maxima,
            open: AtomicUsize::new(0),
            per_client: Mutex::new(HashMap::new()),
            refusals: RefusalLog::default(),
        })
    }

    pub fn maxima(&self) -> Maxima {
        self.maxima
    }

    /// How many connections are open.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Admits a just-accepted connection under the overall maximum, or refuses it (and logs, rate-limited).
    pub fn admit(self: &Arc<Self>, peer: SocketAddr) -> Option<Admitted> {
        let admitted = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| (open < self.maxima.overall).then_some(open + 1))
            .is_ok();
        if !admitted {
            self.refusals.refused(Refusal::Overall, peer, self.maxima);
            return None;
        }
        Some(Admitted { limits: Arc::clone(self), client: None })
    }

    fn release_client(&self, key: &ClientKey) {
        let mut per_client = self.per_client.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = per_client.get_mut(key) {
            *count -= 1;
            if *count == 0 {
                per_client.remove(key);
            }
        }
    }
}

/// An admitted connection: counted until it is dropped.
#[derive(Debug)]
pub struct Admitted {
    limits: Arc<ConnectionLimits>,
    client: Option<ClientKey>,
}

impl Admitted {
    /// Counts the connection against its client as well, or refuses it (and logs, rate-limited) when the client
    /// already holds its maximum.
    pub fn for_client(mut self, key: ClientKey, peer: SocketAddr) -> Option<Self> {
        let maxima = self.limits.maxima;
        {
            let mut per_client = self.limits.per_client.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let count = per_client.entry(key.clone()).or_insert(0);
            if *count >= maxima.per_client {
                drop(per_client);
                self.limits.refusals.refused(Refusal::PerClient, peer, maxima);
                return None;
            }
            *count += 1;
        }
        self.client = Some(key);
        Some(self)
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if let Some(key) = &self.client {
            self.limits.release_client(key);
        }
        self.limits.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How often refused connections are logged at most.
pub const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// Refusals counted since the last log line; a line is written at most every [`REFUSAL_LOG_EVERY`].
#[derive(Debug)]
struct RefusalLog {
    start: Instant,
    /// Milliseconds after `start` when the last line was written (`u64::MAX`: never).
    logged_ms: AtomicU64,
    overall: AtomicU64,
    per_client: AtomicU64,
}

impl Default for RefusalLog {
    fn default() -> Self {
        Self {
            start: Instant::now(),
            logged_ms: AtomicU64::new(u64::MAX),
            overall: AtomicU64::new(0),
            per_client: AtomicU64::new(0),
        }
    }
}

impl RefusalLog {
    fn refused(&self, why: Refusal, peer: SocketAddr, maxima: Maxima) {
        let Some((overall, per_client)) = self.count(why) else { return };
        tracing::warn!(
            target: "penghubung::connections",
            last_peer = %peer.ip(),
            refused_at_max_connections = overall,
            refused_at_max_connections_per_client = per_client,
            max_connections = maxima.overall,
            max_connections_per_client = maxima.per_client,
            "new connections refused at the connection limit (open ones are served on)"
        );
    }

    /// Counts a refusal; when a line is due, the refusals (overall, per client) since the last one.
    fn count(&self, why: Refusal) -> Option<(u64, u64)> {
        match why {
            Refusal::Overall => self.overall.fetch_add(1, Ordering::Relaxed),
            Refusal::PerClient => self.per_client.fetch_add(1, Ordering::Relaxed),
        };
        let now = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        let last = self.logged_ms.load(Ordering::Relaxed);
        let due = last == u64::MAX || now.saturating_sub(last) >= REFUSAL_LOG_EVERY.as_millis() as u64;
        if !due || self.logged_ms.compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed).is_err() {
            return None;
        }
        Some((self.overall.swap(0, Ordering::Relaxed), self.per_client.swap(0, Ordering::Relaxed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(last: u8) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, last], 40000))
    }

    #[test]
    fn the_default_maximum_leaves_headroom_under_the_file_limit() {
        assert_eq!(default_max_connections(1024), 384);
        assert_eq!(default_max_connections(1_048_576), 524_160);
        assert_eq!(default_max_connections(100), 16, "never below a usable floor");
        let m = Maxima::from_config(0, 0, 4096);
        assert_eq!(m, Maxima { overall: 1920, per_client: 480 });
        assert_eq!(Maxima::from_config(10, 50, 4096), Maxima { overall: 10, per_client: 10 });
        assert_eq!(Maxima::from_config(3, 0, 4096), Maxima { overall: 3, per_client: 1 });
    }

    #[test]
    fn connections_are_counted_overall_and_per_client_and_released() {
        let limits = ConnectionLimits::new(Maxima { overall: 3, per_client: 2 });
        let a = ClientKey::Certificate("aa".into());
        let b = ClientKey::Address(peer(2).ip());
        let a1 = limits.admit(peer(1)).unwrap().for_client(a.clone(), peer(1)).unwrap();
        let a2 = limits.admit(peer(1)).unwrap().for_client(a.clone(), peer(1)).unwrap();
        assert!(limits.admit(peer(1)).unwrap().for_client(a.clone(), peer(1)).is_none(), "a's third");
        assert_eq!(limits.open(), 2, "a refused connection is not counted");
        let b1 = limits.admit(peer(2)).unwrap().for_client(b.clone(), peer(2)).unwrap();
        assert!(limits.admit(peer(3)).is_none(), "overall maximum");
        drop(a1);
        let a3 = limits.admit(peer(1)).unwrap().for_client(a.clone(), peer(1)).unwrap();
        drop((a2, a3, b1));
        assert_eq!(limits.open(), 0);
        assert!(limits.per_client.lock().unwrap().is_empty(), "no entry outlives its connections");
    }

    #[test]
    fn refusals_are_logged_at_most_once_per_period_with_their_count() {
        let start = Instant::now().checked_sub(Duration::from_secs(60)).unwrap();
        let log = RefusalLog { start, ..RefusalLog::default() };
        assert_eq!(log.count(Refusal::Overall), Some((1, 0)), "the first refusal is logged");
        for _ in 0..1000 {
            assert_eq!(log.count(Refusal::PerClient), None, "a flood writes no more lines");
        }
        assert_eq!(log.count(Refusal::Overall), None);
        // A period later, the next line carries what was counted meanwhile.
        let last = log.logged_ms.load(Ordering::Relaxed);
        log.logged_ms.store(last - REFUSAL_LOG_EVERY.as_millis() as u64, Ordering::Relaxed);
        assert_eq!(log.count(Refusal::Overall), Some((2, 1000)));
        assert_eq!(log.count(Refusal::Overall), None);
    }

    #[test]
    fn the_soft_file_limit_is_raised_to_the_hard_one() {
        let limit = raise_file_limit();
        let (soft, hard) = rlimit::Resource::NOFILE.get().unwrap();
        assert_eq!(limit.now, soft);
        assert_eq!(soft, hard);
        assert!(limit.now >= limit.before);
    }
}

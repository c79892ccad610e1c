//! Security events in the audit trail: TLS handshakes the gateway refused (no client certificate, unknown CA,
//! revoked, expired, ...), each with its reason code and the peer's address, so that they are chained, signed,
//! shipped and searchable like every other record, not only in the process log.
//!
//! A flood of refusals must not fill the disk: per reason, at most `[audit] security_events_per_interval`
//! events are written per `security_event_interval`; the refusals beyond that are counted, and when the interval
//! ends one summary event with the count (`suppressed`) and the start of the interval (`since`) is written.
//! Nothing a peer sends enters an event: the reason comes from the gateway's own verification, the peer is a
//! socket address.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use super::record::{Record, SecurityRecord};

/// Why a TLS handshake was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsRefusal {
    /// The client presented no certificate.
    NoCertificate,
    /// Its certificate chains to no trusted CA.
    UnknownCa,
    Revoked,
    Expired,
    NotYetValid,
    /// Any other certificate problem (bad signature, wrong key usage, unreadable, ...).
    BadCertificate,
    /// Not a TLS handshake the gateway accepts (version, cipher suites, malformed messages, alerts).
    Protocol,
    /// The handshake did not finish within `tls.handshake_timeout`.
    Timeout,
}

impl TlsRefusal {
    pub const ALL: [TlsRefusal; 8] = [
        TlsRefusal::NoCertificate,
        TlsRefusal::UnknownCa,
        TlsRefusal::Revoked,
        TlsRefusal::Expired,
        TlsRefusal::NotYetValid,
        TlsRefusal::BadCertificate,
        TlsRefusal::Protocol,
        TlsRefusal::Timeout,
    ];

    /// The stable code written in the event (`audit search --code tls.unknown_ca`).
    pub fn code(self) -> &'static str {
        match self {
            TlsRefusal::NoCertificate => "tls.no_certificate",
            TlsRefusal::UnknownCa => "tls.unknown_ca",
            TlsRefusal::Revoked => "tls.revoked",
            TlsRefusal::Expired => "tls.expired",
            TlsRefusal::NotYetValid => "tls.not_yet_valid",
            TlsRefusal::BadCertificate => "tls.bad_certificate",
            TlsRefusal::Protocol => "tls.protocol",
            TlsRefusal::Timeout => "tls.timeout",
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }

    /// The reason of a failed server-side handshake; `None` for plain I/O errors (a peer that connected and went
    /// away before any TLS message: port checks, load balancer probes), which are not refusals.
    pub fn of_handshake_error(error: &std::io::Error) -> Option<TlsRefusal> {
        use rustls::CertificateError as C;
        let tls = error.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>())?;
        Some(match tls {
            rustls::Error::NoCertificatesPresented => TlsRefusal::NoCertificate,
            rustls::Error::InvalidCertificate(reason) => match reason {
                C::UnknownIssuer => TlsRefusal::UnknownCa,
                C::Revoked => TlsRefusal::Revoked,
                C::Expired | C::ExpiredContext { .. } => TlsRefusal::Expired,
                C::NotValidYet | C::NotValidYetContext { .. } => TlsRefusal::NotYetValid,
                _ => TlsRefusal::BadCertificate,
            },
            _ => TlsRefusal::Protocol,
        })
    }
}

/// One reason's current interval.
#[derive(Debug, Default)]
struct Window {
    /// When it began (`None`: no refusal since the last one ended).
    started: Option<(Instant, SystemTime)>,
    written: u32,
    suppressed: u64,
    /// A task will write the summary when the interval ends.
    flush_pending: bool,
}

/// What [`SecurityEvents::refused`] decided.
#[derive(Debug, Default)]
pub struct Decision {
    /// Records to write now (a summary of the interval that ended, the event itself).
    pub records: Vec<Record>,
    /// Write the summary of this interval once it ends (at this instant): nothing else may come to trigger it.
    pub flush_at: Option<Instant>,
}

/// The per-reason rate limit of security events.
#[derive(Debug)]
pub struct SecurityEvents {
    per_interval: u32,
    interval: Duration,
    windows: Mutex<[Window; TlsRefusal::ALL.len()]>,
}

impl SecurityEvents {
    pub fn new(per_interval: u32, interval: Duration) -> Self {
        Self { per_interval, interval: interval.max(Duration::from_millis(1)), windows: Mutex::default() }
    }

    /// A refused handshake from `peer`: the records to write and whether a summary must be scheduled.
    pub fn refused(&self, reason: TlsRefusal, peer: SocketAddr) -> Decision {
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let window = &mut windows[reason.index()];
        let mut decision = Decision::default();
        let current = match window.started {
            Some((began, wall)) if now.duration_since(began) < self.interval => (began, wall),
            _ => {
                decision.records.extend(Self::close(window, reason));
                let fresh = (now, SystemTime::now());
                window.started = Some(fresh);
                fresh
            }
        };
        if window.written < self.per_interval {
            window.written += 1;
            decision.records.push(Record::Security(Box::new(SecurityRecord {
                time: SystemTime::now(),
                code: reason.code(),
                peer: Some(peer),
                suppressed: None,
                console: None,
            })));
        } else {
            window.suppressed += 1;
            if !window.flush_pending {
                window.flush_pending = true;
                decision.flush_at = Some(current.0 + self.interval);
            }
        }
        decision
    }

    /// The summary of `reason`'s interval if it has ended (called when it ends).
    pub fn flush(&self, reason: TlsRefusal) -> Option<Record> {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let window = &mut windows[reason.index()];
        match window.started {
            Some((began, _)) if began.elapsed() >= self.interval => Self::close(window, reason),
            _ => None,
        }
    }

    /// Ends every interval now (shutdown): the summaries of the refusals suppressed so far, so that none is lost.
    pub fn drain(&self) -> Vec<Record> {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        TlsRefusal::ALL
            .iter()
            .zip(windows.iter_mut())
            .filter_map(|(reason, window)| Self::close(window, *reason))
            .collect()
    }

    /// Ends a window: its summary when refusals were suppressed.
    fn close(window: &mut Window, reason: TlsRefusal) -> Option<Record> {
        let summary = match window.started {
            Some((_, since)) if window.suppressed > 0 => Some(Record::Security(Box::new(SecurityRecord {
                time: SystemTime::now(),
                code: reason.code(),
                peer: None,
                suppressed: Some((window.suppressed, since)),
                console: None,
            }))),
            _ => None,
        };
        *window = Window::default();
        summary
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> SocketAddr {
        "192.0.2.7:40000".parse().unwrap()
    }

    fn suppressed(record: &Record) -> Option<u64> {
        match record {
            Record::Security(r) => r.suppressed.map(|(n, _)| n),
            _ => None,
        }
    }

    #[test]
    fn a_flood_writes_a_bounded_number_of_events_then_one_summary_per_interval() {
        let events = SecurityEvents::new(3, Duration::from_millis(200));
        let mut written = 0;
        let mut flushes = 0;
        for _ in 0..100 {
            let decision = events.refused(TlsRefusal::UnknownCa, peer());
            written += decision.records.len();
            flushes += usize::from(decision.flush_at.is_some());
        }
        assert_eq!((written, flushes), (3, 1));
        // Another reason has its own allowance.
        assert_eq!(events.refused(TlsRefusal::Revoked, peer()).records.len(), 1);
        assert!(events.flush(TlsRefusal::UnknownCa).is_none(), "not before the interval ends");
        std::thread::sleep(Duration::from_millis(250));
        let summary = events.flush(TlsRefusal::UnknownCa).expect("a summary");
        assert_eq!(suppressed(&summary), Some(97));
        assert!(events.flush(TlsRefusal::UnknownCa).is_none(), "only once");
        assert!(events.flush(TlsRefusal::Revoked).is_none(), "nothing suppressed, no summary");
        // The next interval starts afresh.
        assert_eq!(events.refused(TlsRefusal::UnknownCa, peer()).records.len(), 1);
        // At shutdown, what was suppressed in unfinished intervals is summarised at once.
        for _ in 0..4 {
            events.refused(TlsRefusal::UnknownCa, peer());
        }
        let drained: Vec<Option<u64>> = events.drain().iter().map(suppressed).collect();
        assert_eq!(drained, [Some(2)]);
        assert!(events.drain().is_empty());
    }

    #[test]
    fn a_refusal_after_the_interval_writes_the_summary_it_ended() {
        let events = SecurityEvents::new(1, Duration::from_millis(100));
        for _ in 0..5 {
            events.refused(TlsRefusal::NoCertificate, peer());
        }
        std::thread::sleep(Duration::from_millis(150));
        let decision = events.refused(TlsRefusal::NoCertificate, peer());
        let counts: Vec<Option<u64>> = decision.records.iter().map(suppressed).collect();
        assert_eq!(counts, [Some(4), None]);
    }

    #[test]
    fn codes_are_distinct_and_namespaced() {
        let codes: std::collections::HashSet<&str> = TlsRefusal::ALL.iter().map(|r| r.code()).collect();
        assert_eq!(codes.len(), TlsRefusal::ALL.len());
        assert!(codes.iter().all(|c| c.starts_with("tls.")));
    }
}

//! The tamper-evident audit trail: one record per exchange (allowed or denied) and one per document change,
//! hash-chained ([`chain`]), with Ed25519-signed checkpoints ([`keys`]), written by a single group-committing
//! writer ([`writer`]) into rotating segment files, verifiable by a third party with only the public key
//! ([`verify`]), searchable, including by keyed hashes of NIKs ([`search`], [`nik`]). [`record`] is what a
//! record says; [`tap`] watches bodies while they stream. [`Auditor`] is what the request pipeline holds. With
//! `[redis]` configured, [`ship`] copies every durable record to a Redis Stream for central collection, and
//! [`shipped`] reads every replica's stream back and verifies it.
//! [`sanitise`] is the one sanitiser of caller values before they are logged or recorded (also by the access log).
//!
//! Durability per service (`audit = "sync" | "async"` on the Service document, default `[audit] durability`):
//! `sync` releases the end of a response only once its record is on disk, and refuses new requests with 503
//! `audit.unavailable` while the log cannot be written; `async` waits for a queue slot (backpressure) but never
//! for the disk. No record is ever dropped.
#![forbid(unsafe_code)]

pub mod chain;
pub mod keys;
pub mod nik;
pub mod record;
pub mod sanitise;
pub mod search;
pub mod security;
pub mod ship;
pub mod shipped;
pub mod tap;
pub mod verify;
pub mod writer;

use std::path::PathBuf;
use std::sync::Arc;

use penghubung_types::config::Config;
pub use penghubung_types::documents::AuditDurability;
use record::Record;
use writer::{AuditWriter, Job, WriterSettings};

/// The running audit trail.
#[derive(Debug)]
pub struct Auditor {
    writer: AuditWriter,
    /// Shipping to a Redis Stream, when `[redis]` is configured.
    shipper: Option<ship::Shipper>,
    nik_key: ring::hmac::Key,
    /// For services that do not say.
    pub default_durability: AuditDurability,
    pub dir: PathBuf,
    pub public_key_file: PathBuf,
    /// The rate limit of security events.
    security: security::SecurityEvents,
}

impl Auditor {
    /// Starts the audit trail when `[audit] enabled`: keys (generated on first start when allowed), chain
    /// resumed from the existing segments, a new segment opened, the writer thread running.
    pub fn start(config: &Config) -> Result<Option<Arc<Auditor>>, String> {
        let settings = &config.audit;
        if !settings.enabled {
            return Ok(None);
        }
        let dir = config.resolve(&settings.dir);
        let (private, public) = (config.resolve(&settings.key_file), config.resolve(&settings.public_key_file));
        let (key, created) =
            keys::load_or_generate(&private, &public, settings.generate_if_missing).map_err(|e| e.to_string())?;
        if created {
            tracing::warn!(
                target: "penghubung::audit",
                private = %private.display(),
                public = %public.display(),
                key = %key.key_id,
                "created the audit signing key; give the public key to auditors, keep the private key safe"
            );
        }
        let nik_key =
            keys::load_or_generate_secret(&config.resolve(&settings.nik_secret_file), settings.generate_if_missing)
                .map_err(|e| e.to_string())?;
        let key_id = key.key_id.clone();
        let writer = AuditWriter::start(
            WriterSettings {
                dir: dir.clone(),
                checkpoint_every: settings.checkpoint_every.max(1),
                checkpoint_interval: settings.checkpoint_interval.0,
                segment_max_size: settings.segment_max_size.0,
                segment_max_age: settings.segment_max_age.0,
                queue_capacity: settings.queue_capacity,
                nik_key: nik_key.clone(),
            },
            key,
        )?;
        tracing::info!(
            target: "penghubung::audit",
            dir = %dir.display(),
            key = %key_id,
            durability = ?settings.durability,
            "audit trail on"
        );
        let shipper = match &config.redis {
            Some(redis) if settings.ship_to_redis => Some(ship::Shipper::start(
                redis,
                settings.stream_key(),
                dir.clone(),
                std::sync::Arc::clone(writer.durable()),
            )?),
            _ => None,
        };
        Ok(Some(Arc::new(Auditor {
            writer,
            shipper,
            nik_key,
            default_durability: settings.durability,
            dir,
            public_key_file: public,
            security: security::SecurityEvents::new(
                settings.security_events_per_interval,
                settings.security_event_interval.0,
            ),
        })))
    }

    /// The state for the health endpoint: the last durable `seq`, whether the log is writable, and the shipping
    /// to Redis (stream, last `seq` in it, Redis `up` / `down` / `conflict`).
    pub fn status(&self) -> serde_json::Value {
        let mut status = serde_json::json!({
            "written_seq": self.writer.durable().seq(),
            "writable": !self.is_failed(),
        });
        if let Some(shipper) = &self.shipper {
            status["shipping"] = serde_json::json!({
                "stream": shipper.stream(),
                "shipped_seq": shipper.shipped_seq(),
                "redis": shipper.redis_state(),
            });
        }
        status
    }

    /// Waits (at most `limit`) until every durable record is in the Redis stream; true at once without
    /// shipping, false when Redis is not reachable.
    pub async fn wait_shipped(&self, limit: std::time::Duration) -> bool {
        match &self.shipper {
            Some(shipper) => shipper.wait_shipped(self.writer.durable().seq(), limit).await,
            None => true,
        }
    }

    /// Records written and fsync latencies (the ops listener's metrics).
    pub fn stats(&self) -> &Arc<writer::WriterStats> {
        self.writer.stats()
    }

    /// Records waiting for the writer, and the queue's capacity.
    pub fn queue(&self) -> (usize, usize) {
        self.writer.queue()
    }

    /// The shipping to Redis's state (`up`, `down`, `conflict`), when the trail is shipped.
    pub fn shipping_state(&self) -> Option<&'static str> {
        self.shipper.as_ref().map(|s| s.redis_state())
    }

    /// Whether the log cannot be written right now (sync services refuse requests).
    pub fn is_failed(&self) -> bool {
        self.writer.is_failed()
    }

    /// The HMAC key for NIK hashes.
    pub fn nik_key(&self) -> &ring::hmac::Key {
        &self.nik_key
    }

    /// A queue slot, waiting while the queue is full.
    pub async fn reserve(&self) -> Option<tokio::sync::mpsc::OwnedPermit<Job>> {
        self.writer.reserve().await
    }

    /// A queue slot if one is free now.
    pub fn try_reserve(&self) -> Option<tokio::sync::mpsc::OwnedPermit<Job>> {
        self.writer.try_reserve()
    }

    /// Queues a record from a context that cannot wait (document reloads). Never dropped: when the queue is
    /// full, a helper thread waits for a slot.
    pub fn record_now(&self, record: Record) {
        match self.writer.try_reserve() {
            Some(permit) => {
                permit.send(Job::Record(record, None));
            }
            None => {
                let sender = self.writer.sender();
                let _ = std::thread::Builder::new().name("penghubung-audit-wait".into()).spawn(move || {
                    if sender.blocking_send(Job::Record(record, None)).is_err() {
                        tracing::error!(target: "penghubung::audit", "AUDIT RECORD LOST: the audit writer has stopped");
                    }
                });
            }
        }
    }

    /// Records a refused TLS handshake as a security event (within the rate limit; beyond it the refusal is
    /// counted and a summary is written when the interval ends).
    pub fn tls_refused(self: &Arc<Self>, reason: security::TlsRefusal, peer: std::net::SocketAddr) {
        let decision = self.security.refused(reason, peer);
        for record in decision.records {
            self.record_now(record);
        }
        if let (Some(at), Ok(runtime)) = (decision.flush_at, tokio::runtime::Handle::try_current()) {
            let auditor = Arc::clone(self);
            runtime.spawn(async move {
                tokio::time::sleep_until(at.into()).await;
                if let Some(summary) = auditor.security.flush(reason) {
                    auditor.record_now(summary);
                }
            });
        }
    }

    /// Writes the summaries of refusals suppressed in intervals that have not ended (before the closing
    /// checkpoint at shutdown).
    pub fn flush_security_events(&self) {
        for summary in self.security.drain() {
            self.record_now(summary);
        }
    }

    /// Writes a checkpoint now (shutdown, tests); true once durable.
    pub async fn checkpoint(&self) -> bool {
        self.writer.checkpoint().await
    }
}

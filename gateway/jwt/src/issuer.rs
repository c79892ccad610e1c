//! One trusted issuer: its settings, its current key set, and how that set is refreshed.
//!
//! The request path reads the key set through an `ArcSwap` (no lock). A refresh runs periodically
//! (`refresh_interval`, sooner while no key is known) and when a token names a `kid` the set does not hold;
//! every refresh goes through one async mutex (single flight: callers that arrive meanwhile wait for its outcome
//! instead of fetching again) and at most one fetch for unknown keys happens per `refresh_cooldown`, whatever
//! callers send. A failed fetch keeps the previous keys, until `max_key_age` after the last successful one:
//! then they are dropped and the issuer's tokens are refused (fail closed).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use crate::fetch::JwksSource;
use crate::keys::{parse_jwks, KeySet};
use penghubung_types::config::{JwtAlgorithm, JwtIssuerConfig};

/// A key set and when a fetch last confirmed it.
#[derive(Debug, Default)]
pub struct CurrentKeys {
    pub keys: KeySet,
    /// `None` until the first successful fetch.
    pub confirmed_at: Option<Instant>,
}

/// An issuer and its keys.
#[derive(Debug)]
pub struct IssuerKeys {
    pub settings: JwtIssuerConfig,
    /// The name `Client` documents bind subjects under.
    pub name: Arc<str>,
    source: JwksSource,
    current: ArcSwap<CurrentKeys>,
    /// The single flight: held while a fetch runs; remembers the last fetch for unknown keys.
    refresh: tokio::sync::Mutex<Option<Instant>>,
    fetches: AtomicU64,
    /// The claim checks per algorithm, built once.
    validations: [jsonwebtoken::Validation; 2],
}

/// Whether the keys for a token could be had.
pub enum Lookup {
    /// The key set is usable (the key may still be missing from it).
    Keys(Arc<CurrentKeys>),
    /// No usable key set: never fetched, or not confirmed for `max_key_age`.
    Unavailable,
}

impl IssuerKeys {
    pub fn new(settings: &JwtIssuerConfig, source: JwksSource) -> IssuerKeys {
        IssuerKeys {
            name: settings.name.as_str().into(),
            settings: settings.clone(),
            source,
            current: ArcSwap::from_pointee(CurrentKeys::default()),
            refresh: tokio::sync::Mutex::new(None),
            fetches: AtomicU64::new(0),
            validations: [
                crate::verify::validation(settings, JwtAlgorithm::RS256),
                crate::verify::validation(settings, JwtAlgorithm::ES256),
            ],
        }
    }

    /// The claim checks of this issuer for a token signed with `algorithm`.
    pub fn validation(&self, algorithm: JwtAlgorithm) -> &jsonwebtoken::Validation {
        match algorithm {
            JwtAlgorithm::RS256 => &self.validations[0],
            JwtAlgorithm::ES256 => &self.validations[1],
        }
    }

    /// How many fetches were tried since start.
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// The usable key set now (lock-free).
    pub fn keys(&self) -> Lookup {
        let current = self.current.load_full();
        match current.confirmed_at {
            Some(at) if at.elapsed() <= self.settings.max_key_age.0 => Lookup::Keys(current),
            _ => Lookup::Unavailable,
        }
    }

    /// A token names `kid` (or no kid) and the key set cannot verify it: refreshes once, unless another caller's
    /// refresh brought the key meanwhile or the cool-down since the last such refresh has not passed. Returns the
    /// key set to look in again.
    pub async fn refresh_for_unknown_key(&self, kid: Option<&str>) -> Lookup {
        let seen = self.current.load_full();
        let mut last = self.refresh.lock().await;
        if !Arc::ptr_eq(&seen, &self.current.load_full()) {
            // A refresh finished while this caller waited: look there.
            return self.keys();
        }
        if last.is_some_and(|at| at.elapsed() < self.settings.refresh_cooldown.0) {
            return self.keys();
        }
        *last = Some(Instant::now());
        self.fetch_and_store(&unknown_key_trigger(kid)).await;
        drop(last);
        self.keys()
    }

    /// Fetches the key set now (start, periodic refresh), in the single flight.
    pub async fn refresh(&self, trigger: &str) {
        let _flight = self.refresh.lock().await;
        self.fetch_and_store(trigger).await;
    }

    async fn fetch_and_store(&self, trigger: &str) {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let issuer = &*self.name;
        let outcome = match self.source.fetch().await {
            Ok(data) => parse_jwks(&data, &self.settings.algorithms).and_then(|(keys, skipped)| {
                if keys.is_empty() {
                    Err(format!("no usable signature key in the set ({skipped} left out)"))
                } else {
                    Ok((keys, skipped))
                }
            }),
            Err(e) => Err(e),
        };
        match outcome {
            Ok((keys, skipped)) => {
                tracing::info!(target: "penghubung::jwt", issuer, trigger, keys = keys.len(), skipped, "token signing keys loaded");
                self.current.store(Arc::new(CurrentKeys { keys, confirmed_at: Some(Instant::now()) }));
            }
            Err(error) => {
                let kept = matches!(self.keys(), Lookup::Keys(_));
                tracing::error!(target: "penghubung::jwt", issuer, trigger, source = ?self.source, %error, kept_previous_keys = kept,
                    "token signing keys could not be fetched; tokens that need new keys are refused");
            }
        }
    }

    /// How long until the next periodic refresh: the interval, or the cool-down while no key set is usable.
    fn next_refresh_in(&self) -> Duration {
        match self.keys() {
            Lookup::Keys(_) => self.settings.refresh_interval.0,
            Lookup::Unavailable => self.settings.refresh_cooldown.0,
        }
    }
}

fn unknown_key_trigger(kid: Option<&str>) -> String {
    // The kid is the caller's: only its length is told, never its text.
    match kid {
        Some(kid) => format!("unknown key id ({} bytes)", kid.len()),
        None => "token without key id".to_string(),
    }
}

/// Refreshes the issuer's keys periodically until it is dropped.
pub fn spawn_refresh(issuer: Weak<IssuerKeys>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let Some(wait) = issuer.upgrade().map(|i| i.next_refresh_in()) else { return };
            tokio::time::sleep(wait).await;
            let Some(keys) = issuer.upgrade() else { return };
            keys.refresh("periodic").await;
        }
    })
}

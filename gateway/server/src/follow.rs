//! Following the shared document store (`[store] backend = "redis"`), in place of the folder watcher.
//!
//! Every committed change appends one entry to the stream `{prefix}changes`, with the id
//! `<generation>-0`. The follower keeps its own Redis connection and waits on the stream
//! (`XREAD BLOCK 1000`). Whatever arrives, it reads the whole store again through the [`Reloader`]. A batch of
//! entries costs one reload, and the store is read at a generation at least as new as the last entry. After the
//! reload it copies the CA's revocation list from the store (`{prefix}crl`, `{prefix}revoked`) into this
//! replica's CRL files when the text changed, and reloads the TLS material at once. A certificate revoked on any
//! replica is then refused on this replica's next handshake.
//!
//! A reconnect, or an entry whose generation skips one (the stream was trimmed past what this replica saw),
//! starts a resync. The follower reads the generation and then every document. After that it reads the stream
//! from that generation on, so it loses no change committed meanwhile. While Redis is unreachable the replica
//! keeps serving its last snapshot and retries, waiting 50 ms at first and doubling the wait up to
//! `[redis] max_reconnect_backoff`. [`FollowState`] shows this to `/health/ready` and `/metrics`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::Value;

use penghubung_redis::Connector;
use penghubung_snapshot::store::redis::StoreKeys;
use penghubung_tls::material::TlsState;

use crate::reload::{Reloaded, Reloader};

/// How long one `XREAD` waits for an entry before it asks again.
const BLOCK_MILLIS: u64 = 1000;
/// The first wait before a reconnection attempt.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// How many stream entries one read takes at most. A longer backlog is read in several reads, and each read
/// costs one reload.
const BATCH: usize = 1000;

/// What the follower knows, read by `/health/ready` and `/metrics`.
#[derive(Debug, Default)]
pub struct FollowState {
    up: AtomicBool,
    generation: AtomicU64,
    resyncs: AtomicU64,
    /// Whether the first full read (at start) is done: later ones count as resyncs.
    loaded: AtomicBool,
}

impl FollowState {
    /// Whether the follower is connected to the store and caught up.
    pub fn up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// The store generation of the documents this replica serves.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Full reloads after the first one, each caused by a reconnect or a gap in the generations.
    pub fn resyncs(&self) -> u64 {
        self.resyncs.load(Ordering::Relaxed)
    }
}

/// Where the follower reads and what it updates.
pub struct Follower {
    pub connector: Connector,
    /// The store's keys (`[store] redis_prefix`).
    pub keys: StoreKeys,
    pub reloader: Arc<Reloader>,
    /// This replica's CRL files (`[tls] crl_files`, and the CA's `crl.pem` when it keeps a CA).
    pub crl_files: Vec<PathBuf>,
    /// The CA's `revoked.txt` on this replica, when it keeps a CA (the admin listener checks operators
    /// against it).
    pub revoked_file: Option<PathBuf>,
    /// The data plane's TLS material, reloaded right after the CRL changes.
    pub tls: Option<Arc<TlsState>>,
    /// `[redis] max_reconnect_backoff`.
    pub max_backoff: Duration,
}

/// Why following stopped until the next reconnect.
enum Lost {
    /// Redis did not answer.
    Connection(redis::RedisError),
    /// The reload was rejected (the store's own read failed, or its documents do not form a valid snapshot):
    /// the previous snapshot keeps serving and the whole store is read again after the backoff.
    Rejected,
}

impl From<redis::RedisError> for Lost {
    fn from(e: redis::RedisError) -> Self {
        Lost::Connection(e)
    }
}

impl Follower {
    /// Starts following in the background: the first connection reads the whole store once more, so that no
    /// change committed since start-up is missed. The task runs until it is aborted.
    pub fn spawn(self) -> (Arc<FollowState>, tokio::task::JoinHandle<()>) {
        let state = Arc::new(FollowState::default());
        state.up.store(true, Ordering::Release);
        let task = tokio::spawn(self.run(Arc::clone(&state)));
        (state, task)
    }

    async fn run(self, state: Arc<FollowState>) {
        let mut backoff = FIRST_BACKOFF;
        let mut last = 0;
        let mut resync_needed = true;
        loop {
            let connected =
                self.connector.connect(Duration::from_secs(2), Duration::from_millis(BLOCK_MILLIS + 2000)).await;
            let outcome = match connected {
                Ok(mut connection) => {
                    self.follow(&mut connection, &state, &mut last, &mut resync_needed, &mut backoff).await
                }
                Err(e) => Lost::Connection(e),
            };
            let Lost::Connection(e) = outcome else {
                resync_needed = true;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(self.max_backoff.max(FIRST_BACKOFF));
                continue;
            };
            if state.up.swap(false, Ordering::AcqRel) {
                tracing::warn!(
                    store = self.connector.describe(),
                    error = %e,
                    generation = last,
                    "the shared store is unreachable; this replica keeps serving its last snapshot"
                );
            } else {
                tracing::debug!(error = %e, "the shared store is still unreachable");
            }
            resync_needed = true;
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.max_backoff.max(FIRST_BACKOFF));
        }
    }

    /// Follows the stream on one connection until the connection fails.
    async fn follow(
        &self,
        connection: &mut MultiplexedConnection,
        state: &FollowState,
        last: &mut u64,
        resync_needed: &mut bool,
        backoff: &mut Duration,
    ) -> Lost {
        if *resync_needed {
            match self.resync(connection, state, last).await {
                Ok(()) => *resync_needed = false,
                Err(lost) => return lost,
            }
        }
        *backoff = FIRST_BACKOFF;
        if !state.up.swap(true, Ordering::AcqRel) {
            tracing::info!(store = self.connector.describe(), generation = *last, "following the shared store again");
        }
        loop {
            let read = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(BATCH)
                .arg("BLOCK")
                .arg(BLOCK_MILLIS)
                .arg("STREAMS")
                .arg(&self.keys.changes)
                .arg(format!("{}-0", *last))
                .query_async::<Value>(connection)
                .await;
            let generations = match read {
                Ok(value) => entry_generations(&value),
                Err(e) => return Lost::Connection(e),
            };
            let Some(&newest) = generations.iter().max() else { continue };
            if generations.first().is_some_and(|first| *first != *last + 1) {
                tracing::warn!(
                    after = *last,
                    next = generations.first().copied().unwrap_or_default(),
                    "the change stream skips generations; reading the whole store again"
                );
                if let Err(lost) = self.resync(connection, state, last).await {
                    return lost;
                }
                continue;
            }
            if let Err(lost) = self.reload(connection, "store change").await {
                return lost;
            }
            *last = newest;
            state.generation.store(newest, Ordering::Release);
        }
    }

    /// Reads the generation, then every document (at that generation or a newer one). The stream is followed
    /// from that generation on afterwards.
    async fn resync(
        &self,
        connection: &mut MultiplexedConnection,
        state: &FollowState,
        last: &mut u64,
    ) -> Result<(), Lost> {
        let generation: Option<u64> = redis::cmd("GET").arg(&self.keys.generation).query_async(connection).await?;
        let generation = generation.unwrap_or(0);
        self.reload(connection, "store resync").await?;
        if state.loaded.swap(true, Ordering::AcqRel) {
            state.resyncs.fetch_add(1, Ordering::Relaxed);
            tracing::info!(generation, "read the whole shared store again");
        }
        *last = generation;
        state.generation.store(generation, Ordering::Release);
        Ok(())
    }

    /// One full reload through the reloader, then the CRL. A reload the reloader rejects keeps the previous
    /// snapshot serving, is logged, and is tried again (as a resync) after the backoff: the store's own
    /// connection may have failed while this one still answers.
    async fn reload(&self, connection: &mut MultiplexedConnection, trigger: &'static str) -> Result<(), Lost> {
        let reloader = Arc::clone(&self.reloader);
        let reloaded = tokio::task::spawn_blocking(move || reloader.reload()).await;
        match reloaded {
            Ok(Ok(Reloaded::Published(generation))) => {
                tracing::info!(trigger, snapshot = generation, "documents reloaded from the shared store")
            }
            Ok(Ok(Reloaded::Unchanged(_))) => {}
            Ok(Err(problems)) => {
                // Redis may have gone away in the middle of the read: find out before blaming the documents.
                redis::cmd("PING").query_async::<()>(connection).await?;
                for p in &problems {
                    tracing::error!(trigger, "{p}");
                }
                tracing::error!(trigger, "reload rejected; the previous snapshot keeps serving, reading again shortly");
                return Err(Lost::Rejected);
            }
            Err(e) => tracing::error!(trigger, "the reload task failed: {e}"),
        }
        self.copy_revocations(connection).await
    }

    /// Writes the store's CRL and revoked serials into this replica's files when they differ, and reloads the
    /// TLS material right away.
    async fn copy_revocations(&self, connection: &mut MultiplexedConnection) -> Result<(), Lost> {
        if self.crl_files.is_empty() && self.revoked_file.is_none() {
            return Ok(());
        }
        let (crl, revoked): (Option<String>, Option<String>) =
            redis::cmd("MGET").arg(&self.keys.crl).arg(&self.keys.revoked).query_async(connection).await?;
        let mut changed = false;
        if let Some(crl) = crl {
            for path in &self.crl_files {
                changed |= replace_if_different(path, &crl);
            }
        }
        if let (Some(revoked), Some(path)) = (revoked, &self.revoked_file) {
            replace_if_different(path, &revoked);
        }
        if changed {
            if let Some(tls) = &self.tls {
                let tls = Arc::clone(tls);
                let _ = tokio::task::spawn_blocking(move || tls.reload_and_log("revocation in the shared store")).await;
            }
        }
        Ok(())
    }
}

/// Replaces a file's content atomically (a temporary file renamed over it) when it differs; whether it did.
fn replace_if_different(path: &std::path::Path, text: &str) -> bool {
    if std::fs::read_to_string(path).is_ok_and(|current| current == text) {
        return false;
    }
    let temporary = path.with_extension("from-store");
    let written = std::fs::write(&temporary, text).and_then(|()| std::fs::rename(&temporary, path));
    match written {
        Ok(()) => {
            tracing::info!(file = %path.display(), "revocations copied from the shared store");
            true
        }
        Err(e) => {
            let _ = std::fs::remove_file(&temporary);
            tracing::error!(file = %path.display(), error = %e, "cannot write the revocations of the shared store");
            false
        }
    }
}

/// The generations of the entries of an `XREAD` answer (one stream), in stream order. Ids are
/// `<generation>-0`; an answer of no entries (the `BLOCK` timed out) is empty.
fn entry_generations(value: &Value) -> Vec<u64> {
    let streams = match value {
        Value::Array(streams) => streams.as_slice(),
        Value::Map(pairs) => return pairs.iter().flat_map(|(_, entries)| ids_of(entries)).collect(),
        _ => return Vec::new(),
    };
    streams
        .iter()
        .flat_map(|stream| match stream {
            Value::Array(parts) if parts.len() == 2 => ids_of(&parts[1]),
            _ => Vec::new(),
        })
        .collect()
}

/// The generations of a list of stream entries (`[[id, [field, value, …]], …]`).
fn ids_of(entries: &Value) -> Vec<u64> {
    let Value::Array(entries) = entries else { return Vec::new() };
    entries
        .iter()
        .filter_map(|entry| match entry {
            Value::Array(parts) => parts.first(),
            _ => None,
        })
        .filter_map(|id| match id {
            Value::BulkString(bytes) => std::str::from_utf8(bytes).ok().map(str::to_string),
            Value::SimpleString(text) => Some(text.clone()),
            _ => None,
        })
        .filter_map(|id| id.split('-').next().and_then(|g| g.parse().ok()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    #[test]
    fn generations_come_from_the_entry_ids_in_order() {
        let entry = |id: &str| Value::Array(vec![bulk(id), Value::Array(vec![bulk("generation"), bulk("x")])]);
        let answer = Value::Array(vec![Value::Array(vec![
            bulk("penghubung:store:changes"),
            Value::Array(vec![entry("7-0"), entry("8-0"), entry("10-0")]),
        ])]);
        assert_eq!(entry_generations(&answer), vec![7, 8, 10]);
        assert_eq!(entry_generations(&Value::Nil), Vec::<u64>::new());
    }

    #[test]
    fn a_file_is_replaced_only_when_its_text_differs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crl.pem");
        assert!(replace_if_different(&path, "one"));
        assert!(!replace_if_different(&path, "one"));
        assert!(replace_if_different(&path, "two"));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        assert!(!path.with_extension("from-store").exists());
    }
}

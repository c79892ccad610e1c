//! Picking up document changes without a restart: [`Reloader::reload`] reads the store, checks every document,
//! builds a new snapshot and swaps it in; any error keeps the previous snapshot serving and is reported.
//! [`watch_store`] triggers it on file changes (debounced); SIGHUP triggers it too (see `server.rs`).
//! Each published snapshot writes one audit change record per document added, changed or removed since the
//! previous one (before/after SHA-256 of its text; on start, every document as `loaded`), attributed to the
//! operator and reason of the store journal's entry that explains it, or to `hand-edit` when none does. A
//! certificate revocation (the CA's CRL, not a store document) is recorded from its journal entry at the next
//! reload, which the management plane triggers right after it.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};

use penghubung_adapters::AdapterRegistry;
use penghubung_audit::record::{ChangeAction, ChangeRecord, Record};
use penghubung_audit::Auditor;
use penghubung_snapshot::store::journal::{Journal, HAND_EDIT};
use penghubung_snapshot::store::{load_documents, DocumentStore};
use penghubung_snapshot::{BuildContext, Snapshot, SnapshotCell};
use penghubung_tls::UpstreamTls;
use penghubung_types::config::Config;
use penghubung_types::diagnostics::{has_errors, Diagnostic};

/// Rebuilds and publishes snapshots from a store.
pub struct Reloader {
    store: Box<dyn DocumentStore>,
    config: Arc<Config>,
    upstream_tls: Arc<UpstreamTls>,
    /// The adapters services name, kept across reloads with their cached tokens.
    adapters: AdapterRegistry,
    cell: Arc<SnapshotCell>,
    /// Serialises reloads and remembers the fingerprint of the documents last published.
    last_fingerprint: Mutex<Option<u64>>,
    audit: Option<Arc<Auditor>>,
    /// Text digests of the documents last published (audit change records); `None` before the first load.
    last_digests: Mutex<Option<HashMap<String, [u8; 32]>>>,
    /// The revocation journal entries (key, version) already recorded; `None` before the first load.
    recorded_revocations: Mutex<Option<HashSet<(String, u64)>>>,
    /// Reloads rejected since start.
    failures: AtomicU64,
}

/// The outcome of a successful reload.
#[derive(Debug, PartialEq, Eq)]
pub enum Reloaded {
    /// A new snapshot with this generation is serving.
    Published(u64),
    /// The documents did not change; the current snapshot keeps serving.
    Unchanged(u64),
}

impl Reloader {
    /// Loads the store once; fails (with every problem) when the documents do not form a valid snapshot.
    pub fn start(
        store: Box<dyn DocumentStore>,
        config: Arc<Config>,
        upstream_tls: Arc<UpstreamTls>,
        audit: Option<Arc<Auditor>>,
    ) -> Result<(Arc<Self>, Arc<SnapshotCell>), Vec<Diagnostic>> {
        let cell = Arc::new(SnapshotCell::new(Snapshot::empty()));
        let adapters = penghubung_snapshot::adapters::registry(&config, &upstream_tls);
        let reloader = Arc::new(Self {
            store,
            config,
            upstream_tls,
            adapters,
            cell: Arc::clone(&cell),
            last_fingerprint: Mutex::new(None),
            audit,
            last_digests: Mutex::new(None),
            recorded_revocations: Mutex::new(None),
            failures: AtomicU64::new(0),
        });
        reloader.reload()?;
        Ok((reloader, cell))
    }

    /// Reads the store and publishes a new snapshot, or returns every problem and keeps the current one.
    pub fn reload(&self) -> Result<Reloaded, Vec<Diagnostic>> {
        let reloaded = self.try_reload();
        if reloaded.is_err() {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        reloaded
    }

    /// Reloads rejected since start (the previous snapshot kept serving).
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    fn try_reload(&self) -> Result<Reloaded, Vec<Diagnostic>> {
        let mut last = self.last_fingerprint.lock().unwrap_or_else(|p| p.into_inner());
        self.record_revocations();
        let (docs, problems) = load_documents(&*self.store);
        if has_errors(&problems) {
            return Err(problems);
        }
        let fingerprint = {
            let mut h = DefaultHasher::new();
            format!("{docs:?}").hash(&mut h);
            h.finish()
        };
        let previous = self.cell.load();
        if *last == Some(fingerprint) {
            return Ok(Reloaded::Unchanged(previous.generation));
        }
        let ctx = BuildContext {
            config: &self.config,
            upstream_tls: &self.upstream_tls,
            previous: Some(&previous),
            adapters: Some(&self.adapters),
        };
        let snapshot = Snapshot::build(&docs, &ctx)?;
        for warning in &problems {
            tracing::warn!("{warning}");
        }
        let generation = snapshot.generation;
        self.cell.store(Arc::new(snapshot));
        *last = Some(fingerprint);
        if let Some(auditor) = &self.audit {
            let current: HashMap<String, [u8; 32]> = docs.digests.iter().cloned().collect();
            let mut previous = self.last_digests.lock().unwrap_or_else(|p| p.into_inner());
            let journal = self.store.journal();
            for record in changes(previous.as_ref(), &current, generation, journal.as_ref()) {
                auditor.record_now(Record::Change(Box::new(record)));
            }
            *previous = Some(current);
        }
        Ok(Reloaded::Published(generation))
    }

    /// Reloads and logs the outcome (for watchers and signals).
    pub fn reload_and_log(&self, trigger: &str) {
        match self.reload() {
            Ok(Reloaded::Published(generation)) => {
                let snapshot = self.cell.load();
                tracing::info!(trigger, generation, services = snapshot.route_count(), "documents reloaded");
            }
            Ok(Reloaded::Unchanged(generation)) => {
                tracing::debug!(trigger, generation, "documents unchanged")
            }
            Err(problems) => {
                for p in &problems {
                    tracing::error!(trigger, "{p}");
                }
                tracing::error!(
                    trigger,
                    errors = problems.iter().filter(|p| p.is_error()).count(),
                    generation = self.cell.load().generation,
                    "reload rejected; the previous snapshot keeps serving"
                );
            }
        }
    }

    /// One audit change record per certificate revocation the store's journal gained since the last reload,
    /// naming the operator and the reason. Those already in the journal at start are the state as found.
    fn record_revocations(&self) {
        let (Some(auditor), Some(journal)) = (&self.audit, self.store.journal()) else { return };
        let entries = match journal.revocations() {
            Ok(entries) => entries,
            Err(e) => {
                tracing::error!("the store journal's revocations cannot be read: {e}");
                return;
            }
        };
        let mut recorded = self.recorded_revocations.lock().unwrap_or_else(|p| p.into_inner());
        let first = recorded.is_none();
        let recorded = recorded.get_or_insert_with(HashSet::new);
        let generation = self.cell.load().generation;
        for entry in entries {
            if recorded.insert((entry.key.clone(), entry.version)) && !first {
                auditor.record_now(Record::Change(Box::new(ChangeRecord {
                    time: std::time::SystemTime::now(),
                    who: entry.who,
                    document: entry.key,
                    action: ChangeAction::Added,
                    before: None,
                    after: None,
                    reason: entry.reason,
                    generation,
                })));
            }
        }
    }

    pub fn store(&self) -> &dyn DocumentStore {
        &*self.store
    }
}

/// The change records between two sets of document digests (sorted by key). `previous = None`: the first load,
/// every document is `loaded`. Each record names who made the change and why, from the `journal` entry whose
/// digests match; a change without one is a hand edit (a document loaded at start without one is the store's
/// content as found, `file`).
fn changes(
    previous: Option<&HashMap<String, [u8; 32]>>,
    current: &HashMap<String, [u8; 32]>,
    generation: u64,
    journal: Option<&Journal>,
) -> Vec<ChangeRecord> {
    let record = |document: &str, action, before: Option<[u8; 32]>, after: Option<[u8; 32]>| {
        let hex = |d: [u8; 32]| penghubung_tls::identity::hex(&d);
        let entry =
            journal.and_then(|j| j.attribution(document, before.map(hex).as_deref(), after.map(hex).as_deref()));
        let (who, reason) = match entry {
            Some(entry) => (entry.who, entry.reason),
            None if action == ChangeAction::Loaded => ("file".to_string(), None),
            None => (HAND_EDIT.to_string(), None),
        };
        ChangeRecord {
            time: std::time::SystemTime::now(),
            who,
            document: document.to_string(),
            action,
            before,
            after,
            reason,
            generation,
        }
    };
    let mut out = Vec::new();
    let empty = HashMap::new();
    let (old, first) = match previous {
        Some(p) => (p, false),
        None => (&empty, true),
    };
    let mut keys: Vec<&String> = current.keys().chain(old.keys().filter(|k| !current.contains_key(*k))).collect();
    keys.sort();
    for key in keys {
        match (old.get(key), current.get(key)) {
            (None, Some(after)) if first => out.push(record(key, ChangeAction::Loaded, None, Some(*after))),
            (None, Some(after)) => out.push(record(key, ChangeAction::Added, None, Some(*after))),
            (Some(before), None) => out.push(record(key, ChangeAction::Removed, Some(*before), None)),
            (Some(before), Some(after)) if before != after => {
                out.push(record(key, ChangeAction::Changed, Some(*before), Some(*after)))
            }
            _ => {}
        }
    }
    out
}

/// The file watcher of the store; watching stops when it is dropped.
pub struct StoreWatcher {
    _watcher: Arc<Mutex<notify::RecommendedWatcher>>,
}

/// Watches the store directory and reloads after changes settle for `debounce`. The store folder's parent is
/// watched too (not recursively): when the folder is replaced (a store import renames a new folder into its
/// place), the new folder is watched from then on. The returned watcher must be kept alive.
pub fn watch_store(reloader: Arc<Reloader>, debounce: Duration) -> Result<Option<StoreWatcher>, notify::Error> {
    let Some(dir) = reloader.store().watch_dir() else {
        return Ok(None);
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            if !matches!(event.kind, notify::EventKind::Access(_)) {
                let _ = tx.send(());
            }
        }
    })?;
    watcher.watch(&dir, RecursiveMode::Recursive)?;
    if let Some(parent) = dir.parent().filter(|p| p.is_dir()) {
        watcher.watch(parent, RecursiveMode::NonRecursive)?;
    }
    let watcher = Arc::new(Mutex::new(watcher));
    let rewatch = Arc::clone(&watcher);
    let mut watched = folder_identity(&dir);
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            tokio::time::sleep(debounce).await;
            while rx.try_recv().is_ok() {}
            let now = folder_identity(&dir);
            if now.is_some() && now != watched {
                let mut watcher = rewatch.lock().unwrap_or_else(|p| p.into_inner());
                let _ = watcher.unwatch(&dir);
                match watcher.watch(&dir, RecursiveMode::Recursive) {
                    Ok(()) => {
                        watched = now;
                        tracing::info!(store = %dir.display(), "the store folder was replaced; watching the new one");
                    }
                    Err(e) => tracing::error!(store = %dir.display(), "cannot watch the replaced store folder: {e}"),
                }
            }
            let r = Arc::clone(&reloader);
            let _ = tokio::task::spawn_blocking(move || r.reload_and_log("file change")).await;
        }
    });
    Ok(Some(StoreWatcher { _watcher: watcher }))
}

/// The device and inode of a folder: which folder a path names now.
fn folder_identity(dir: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(dir).ok().map(|m| (m.dev(), m.ino()))
}

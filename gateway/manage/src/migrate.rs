//! Moving a store between backends: `penghubung store push` copies the folder store (`[store] path`) into the
//! Redis store (`[redis]`, `[store] redis_prefix`) in one commit, journal included; `penghubung store pull`
//! writes the Redis store back to a new folder store with its `.history/`. Both are local commands on the
//! operator's machine with the config; the operator they name must be an enabled operator of the store read.

use std::path::Path;

use penghubung_snapshot::store::journal::{digest_hex, DirJournal, Journal, JournalEntry};
use penghubung_snapshot::store::{ChangeMeta, DirStore, DocumentStore, RedisStore, StoredDocument};
use penghubung_types::config::Config;
use penghubung_types::diagnostics::Diagnostic;

use crate::error::ManageError;
use crate::workspace::Proposed;
use crate::{ca, check, stored};

/// The action a push is recorded as (journal and change stream).
pub const PUSH_ACTION: &str = "store_push";

/// What a push did.
#[derive(Debug, PartialEq, Eq)]
pub struct Pushed {
    /// Documents written (new or changed).
    pub written: usize,
    /// Documents of the Redis store removed (only with `force`).
    pub removed: usize,
    /// Journal entries copied or recorded.
    pub journal_entries: usize,
    /// The Redis store's generation after the push.
    pub generation: u64,
}

/// Copies the folder store of `config` into its Redis store, attributed to `operator`. The whole folder store is
/// checked first; a Redis store that already holds documents is refused unless `force` (then every document
/// not in the folder is removed). The journal of each key Redis has none of is copied, and every written
/// document its journal does not explain gets a `store_push` entry. The CA's revocation list, when there is
/// one, joins the shared one (serials are only ever added).
pub fn push(config: &Config, operator: &str, force: bool) -> Result<Pushed, ManageError> {
    let folder = DirStore::new(config.store_dir());
    if !folder.root().is_dir() {
        return Err(ManageError::not_found(format!("the store {} does not exist", folder.root().display())));
    }
    let (documents, _) = folder.list()?;
    refuse_invalid(config, &documents)?;
    require_operator(&documents, operator)?;
    let redis = RedisStore::of_config(config)?;
    let target = redis.list_with_generation()?;
    if !target.documents.is_empty() && !force {
        return Err(ManageError::conflict(format!(
            "the {} already holds {} document(s); `--force` replaces them",
            redis.describe(),
            target.documents.len()
        )));
    }
    let mut writes: Vec<(String, Option<String>)> = Vec::new();
    for d in &documents {
        if target.documents.iter().find(|t| t.key == d.key).map(|t| &t.text) != Some(&d.text) {
            writes.push((d.key.clone(), Some(d.text.clone())));
        }
    }
    let removed: Vec<String> =
        target.documents.iter().filter(|t| !documents.iter().any(|d| d.key == t.key)).map(|t| t.key.clone()).collect();
    writes.extend(removed.iter().map(|k| (k.clone(), None)));

    let now = crate::manager::now_rfc3339();
    let local = Journal::Dir(folder.dir_journal());
    let shared = redis.redis_journal();
    let journal_error = |e: std::io::Error| ManageError::unavailable(format!("the journal: {e}"));
    let mut entries: Vec<JournalEntry> = Vec::new();
    for key in local.keys().map_err(journal_error)? {
        if shared.entries(&key).map_err(journal_error)?.is_empty() {
            entries.extend(local.entries(&key).map_err(journal_error)?);
        }
    }
    for (key, text) in &writes {
        let mut history = shared.entries(key).map_err(journal_error)?;
        history.extend(entries.iter().filter(|e| &e.key == key).cloned());
        let after = text.as_deref().map(digest_hex);
        if history.last().map(|e| &e.after) == Some(&after) {
            continue;
        }
        let before = target.documents.iter().find(|t| &t.key == key).map(|t| digest_hex(&t.text));
        entries.push(JournalEntry {
            version: history.last().map_or(1, |e| e.version + 1),
            at: now.clone(),
            who: operator.to_string(),
            reason: Some("store push".into()),
            action: PUSH_ACTION.into(),
            key: key.clone(),
            before,
            after,
            text: text.clone(),
        });
    }

    let mut meta = ChangeMeta { who: operator.to_string(), action: PUSH_ACTION.into(), at: now, ca: None };
    if let Some(dir) = ca::ca_dir(config).filter(|d| d.join("ca.key").is_file()) {
        let authority = ca::CertificateAuthority::open(&dir).map_err(|e| ManageError::unavailable(e.to_string()))?;
        let mut revoked = authority.revoked().map_err(|e| ManageError::unavailable(e.to_string()))?;
        let before = redis.shared_ca()?;
        for serial in before.as_ref().map(|c| ca::serials(&c.revoked)).unwrap_or_default() {
            if !revoked.contains(&serial) {
                revoked.push(serial);
            }
        }
        if !revoked.is_empty() {
            meta.ca = Some(authority.lists(&revoked).map_err(|e| ManageError::unavailable(e.to_string()))?);
        }
    }
    let generation = redis.commit(target.generation, &writes, &entries, &meta)?;
    Ok(Pushed {
        written: writes.len() - removed.len(),
        removed: removed.len(),
        journal_entries: entries.len(),
        generation,
    })
}

/// What a pull did.
#[derive(Debug, PartialEq, Eq)]
pub struct Pulled {
    pub documents: usize,
    pub journal_entries: usize,
    /// The Redis store's generation the documents were read at.
    pub generation: u64,
}

/// Writes the Redis store of `config` to the new folder store `to` (missing or empty), with its journal as
/// `.history/`. `operator` must be an enabled operator of the Redis store. Nothing in Redis changes.
pub fn pull(config: &Config, to: &Path, operator: &str) -> Result<Pulled, ManageError> {
    let occupied = std::fs::read_dir(to).map(|mut d| d.next().is_some()).unwrap_or(false);
    if occupied {
        return Err(ManageError::conflict(format!("{} is not empty: pull writes a new folder store", to.display())));
    }
    let redis = RedisStore::of_config(config)?;
    let listing = redis.list_with_generation()?;
    require_operator(&listing.documents, operator)?;
    let journal = Journal::Redis(redis.redis_journal());
    let journal_error = |e: std::io::Error| ManageError::unavailable(format!("the journal: {e}"));
    let keys = journal.keys().map_err(journal_error)?;
    let mut history = Vec::new();
    for key in &keys {
        history.extend(journal.entries(key).map_err(journal_error)?);
    }
    std::fs::create_dir_all(to).map_err(|e| ManageError::unavailable(format!("{}: {e}", to.display())))?;
    let folder = DirStore::new(to);
    let folder_journal = DirJournal::of_store(to);
    for entry in &history {
        folder_journal.append(&mut entry.clone()).map_err(journal_error)?;
    }
    for d in &listing.documents {
        folder.put(&d.key, &d.text)?;
    }
    Ok(Pulled { documents: listing.documents.len(), journal_entries: history.len(), generation: listing.generation })
}

fn refuse_invalid(config: &Config, documents: &[StoredDocument]) -> Result<(), ManageError> {
    let problems: Vec<String> = check::every_problem(config, &Proposed(documents.to_vec()))
        .iter()
        .filter(|p| p.is_error())
        .map(Diagnostic::to_string)
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ManageError::InvalidStore { problems })
    }
}

fn require_operator(documents: &[StoredDocument], operator: &str) -> Result<(), ManageError> {
    match stored::operators(documents).into_iter().find(|o| o.id == operator) {
        Some(o) if o.enabled => Ok(()),
        Some(_) => Err(ManageError::forbidden(format!("operator `{operator}` is disabled"))),
        None => Err(ManageError::Unauthenticated { detail: format!("the store has no operator `{operator}`") }),
    }
}

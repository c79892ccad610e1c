//! A document's versions from the store's journal ([`penghubung_snapshot::store::journal`]), as the
//! management plane answers them ([`HistoryEntry`]). A document whose current text no journal entry explains
//! (seeded, or edited by hand since) shows that text as a last `hand-edit` version, and the manager records it
//! in the journal before changing the document, so that no version is lost.

use std::path::Path;

use penghubung_snapshot::store::journal::{digest_hex, Journal, JournalEntry, HAND_EDIT};
use penghubung_snapshot::store::StoredDocument;

use crate::change::{HistoryEntry, Kind};
use crate::error::ManageError;
use crate::stored::Found;

/// The journal's entries of `key`, plus the current text as a `hand-edit` version when no entry explains it.
pub fn versions(
    journal: &Journal,
    key: &str,
    current: Option<&StoredDocument>,
) -> Result<Vec<JournalEntry>, ManageError> {
    let mut entries = journal.entries(key).map_err(|e| ManageError::unavailable(format!("the journal: {e}")))?;
    if let Some(entry) = unexplained(&entries, key, current) {
        entries.push(entry);
    }
    Ok(entries)
}

/// The `hand-edit` entry for the current text of a document when the journal's last entry does not end at it.
pub fn unexplained(entries: &[JournalEntry], key: &str, current: Option<&StoredDocument>) -> Option<JournalEntry> {
    let last_after = entries.last().and_then(|e| e.after.clone());
    let current_digest = current.map(|d| digest_hex(&d.text));
    if last_after == current_digest || (entries.is_empty() && current.is_none()) {
        return None;
    }
    Some(JournalEntry {
        version: entries.last().map_or(1, |e| e.version + 1),
        at: current.and_then(|d| modified(Path::new(&d.origin))).unwrap_or_else(crate::manager::now_rfc3339),
        who: HAND_EDIT.into(),
        reason: None,
        action: "hand_edit".into(),
        key: key.into(),
        before: last_after,
        after: current_digest,
        text: current.map(|d| d.text.clone()),
    })
}

/// An entry as answered: the document's JSON form (without secrets) instead of its text.
pub fn answer(kind: Kind, entry: &JournalEntry) -> HistoryEntry {
    let document = entry.text.as_ref().and_then(|text| {
        let stored = StoredDocument {
            kind: kind.document_kind(),
            key: entry.key.clone(),
            origin: entry.key.clone(),
            text: text.clone(),
        };
        Found::read(kind, &stored).ok().map(|f| f.document)
    });
    HistoryEntry {
        version: entry.version,
        at: entry.at.clone(),
        who: entry.who.clone(),
        reason: entry.reason.clone(),
        action: entry.action.clone(),
        digest: entry.after.clone().unwrap_or_else(|| digest_hex("")),
        document,
    }
}

/// The store key of the document `kind`/`id`: where it is now, or, for a removed one, the journal's key whose
/// last text was that document.
pub fn key_of(journal: &Journal, documents: &[StoredDocument], kind: Kind, id: &str) -> Result<String, ManageError> {
    if let Ok(found) = crate::stored::find(documents, kind, id) {
        return Ok(found.stored.key);
    }
    let folder = format!("{}/", kind.document_kind().folder());
    let keys = journal.keys().map_err(|e| ManageError::unavailable(format!("the journal: {e}")))?;
    for key in keys.into_iter().filter(|k| k.starts_with(&folder)) {
        let entries = journal.entries(&key).map_err(|e| ManageError::unavailable(format!("the journal: {e}")))?;
        let named = entries.iter().rev().filter_map(|e| e.text.as_ref()).any(|text| {
            let stored = StoredDocument {
                kind: kind.document_kind(),
                key: key.clone(),
                origin: key.clone(),
                text: text.clone(),
            };
            Found::read(kind, &stored).is_ok_and(|f| f.id == id)
        });
        if named {
            return Ok(key);
        }
    }
    Err(ManageError::not_found(format!("there is no {kind} `{id}`, now or in the history")))
}

fn modified(path: &Path) -> Option<String> {
    let time = std::fs::metadata(path).ok()?.modified().ok()?;
    let time = time::OffsetDateTime::from(time).replace_nanosecond(0).ok()?;
    time.format(&time::format_description::well_known::Rfc3339).ok()
}

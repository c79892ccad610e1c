//! The store's journal: who changed which document, when, why, and the text it had after. The management plane
//! hands one [`JournalEntry`] per document it writes to the store's commit, which keeps it with the change: a
//! directory store under `<store>/.history/<store key>/<version>.json` ([`DirJournal`]; the loaders skip
//! dot-folders), a Redis store in the list `{prefix}journal:<store key>` (written by the same script as the
//! documents). A document's history and its rollbacks read them back through [`Journal`], whichever the
//! backend. The reload attributes each change record to the entry whose after-digest matches the document's
//! new text ([`Journal::attribution`]); a change no entry explains is a hand edit.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The journal's folder in a directory store.
pub const JOURNAL_DIR: &str = ".history";

/// The journal keys of certificate revocations: `ca/revocations/{serial}`.
pub const REVOCATIONS: &str = "ca/revocations";

/// Who a change no journal entry explains is attributed to.
pub const HAND_EDIT: &str = "hand-edit";

/// One recorded change of one document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// 1 for the document's first recorded change, counting up.
    pub version: u64,
    /// RFC 3339 (UTC).
    pub at: String,
    /// The operator id, or [`HAND_EDIT`].
    pub who: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What was done (`approve_security`, `rollback`, `import_store`, `hand_edit`, ...).
    pub action: String,
    /// The document's store key (`services/dinsos/bansos.toml`).
    pub key: String,
    /// SHA-256 (hex) of the text before (none: the document did not exist).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    /// SHA-256 (hex) of the text after (none: the document was removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// The text after the change (none: removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// SHA-256 of a text, lower-case hex (the digest the journal and the audit change records use).
pub fn digest_hex(text: &str) -> String {
    penghubung_tls::identity::hex(ring::digest::digest(&ring::digest::SHA256, text.as_bytes()).as_ref())
}

/// The journal of a store, whichever its backend.
#[derive(Clone)]
pub enum Journal {
    /// The `.history/` folder of a directory store.
    Dir(DirJournal),
    /// The `{prefix}journal:<key>` lists of a Redis store.
    Redis(super::redis::RedisJournal),
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Journal::Dir(dir) => dir.fmt(f),
            Journal::Redis(redis) => f.write_str(&redis.describe()),
        }
    }
}

impl Journal {
    /// The journal of the directory store at `store_root`.
    pub fn of_store(store_root: &Path) -> Journal {
        Journal::Dir(DirJournal::of_store(store_root))
    }

    /// Every entry of the document at `key`, oldest first (none when it has no journal).
    pub fn entries(&self, key: &str) -> std::io::Result<Vec<JournalEntry>> {
        match self {
            Journal::Dir(dir) => dir.entries(key),
            Journal::Redis(redis) => redis.entries(key),
        }
    }

    /// Every store key that has a journal, sorted.
    pub fn keys(&self) -> std::io::Result<Vec<String>> {
        match self {
            Journal::Dir(dir) => dir.keys(),
            Journal::Redis(redis) => redis.keys(),
        }
    }

    /// The latest entry of `key` that explains its change to `after` (the hex digest of the new text; none: the
    /// document was removed, and then the entry's before-digest must be `before`).
    pub fn attribution(&self, key: &str, before: Option<&str>, after: Option<&str>) -> Option<JournalEntry> {
        let entries = self.entries(key).ok()?;
        entries.into_iter().rev().find(|e| match after {
            Some(after) => e.after.as_deref() == Some(after),
            None => e.after.is_none() && (before.is_none() || e.before.as_deref() == before),
        })
    }

    /// Every certificate revocation the journal holds (entries under [`REVOCATIONS`], one key per revoked
    /// serial), by key and version. The CRL is the CA's, not a store document, so these entries are how a
    /// revocation reaches the audit trail.
    pub fn revocations(&self) -> std::io::Result<Vec<JournalEntry>> {
        let mut out = Vec::new();
        let prefix = format!("{REVOCATIONS}/");
        match self {
            Journal::Dir(dir) => out = dir.revocations()?,
            Journal::Redis(redis) => {
                for key in redis.keys()?.into_iter().filter(|k| k.starts_with(&prefix)) {
                    out.extend(redis.entries(&key)?);
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key).then(a.version.cmp(&b.version)));
        Ok(out)
    }

    /// How many entries the journal holds in all.
    pub fn len(&self) -> std::io::Result<usize> {
        let mut n = 0;
        for key in self.keys()? {
            n += self.entries(&key)?.len();
        }
        Ok(n)
    }

    /// Whether the journal holds no entry.
    pub fn is_empty(&self) -> std::io::Result<bool> {
        Ok(self.len()? == 0)
    }
}

/// The journal of one directory store.
#[derive(Clone, Debug)]
pub struct DirJournal {
    dir: PathBuf,
}

impl DirJournal {
    /// The journal of the directory store at `store_root`.
    pub fn of_store(store_root: &Path) -> DirJournal {
        DirJournal { dir: store_root.join(JOURNAL_DIR) }
    }

    /// Its folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn folder(&self, key: &str) -> PathBuf {
        self.dir.join(key)
    }

    /// Every entry of the document at `key`, oldest first (none when it has no journal).
    pub fn entries(&self, key: &str) -> std::io::Result<Vec<JournalEntry>> {
        let folder = self.folder(key);
        let listing = match fs::read_dir(&folder) {
            Ok(listing) => listing,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut entries = Vec::new();
        for item in listing {
            let path = item?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let text = fs::read_to_string(&path)?;
            let entry: JournalEntry = serde_json::from_str(&text).map_err(|e| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {e}", path.display()))
            })?;
            entries.push(entry);
        }
        entries.sort_by_key(|e| e.version);
        Ok(entries)
    }

    /// Appends `entry` as the document's next version (its `version` is set here); returns the file written, so
    /// that a write that then fails can take it back ([`DirJournal::remove`]).
    pub fn append(&self, entry: &mut JournalEntry) -> std::io::Result<PathBuf> {
        let folder = self.folder(&entry.key);
        fs::create_dir_all(&folder)?;
        entry.version = self.entries(&entry.key)?.last().map_or(1, |e| e.version + 1);
        let path = folder.join(format!("{:08}.json", entry.version));
        let temp = folder.join(format!(".{:08}.json.tmp", entry.version));
        let text = serde_json::to_string_pretty(entry).map_err(std::io::Error::other)?;
        {
            let mut file = fs::File::create(&temp)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
        }
        fs::rename(&temp, &path)?;
        Ok(path)
    }

    /// Takes back an entry whose document write failed.
    pub fn remove(&self, path: &Path) -> std::io::Result<()> {
        fs::remove_file(path)
    }

    /// Every certificate revocation the journal holds, unsorted.
    fn revocations(&self) -> std::io::Result<Vec<JournalEntry>> {
        let listing = match fs::read_dir(self.dir.join(REVOCATIONS)) {
            Ok(listing) => listing,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for item in listing {
            let name = item?.file_name();
            if let Some(serial) = name.to_str() {
                out.extend(self.entries(&format!("{REVOCATIONS}/{serial}"))?);
            }
        }
        Ok(out)
    }

    /// Every store key that has a journal, sorted.
    pub fn keys(&self) -> std::io::Result<Vec<String>> {
        let mut out = Vec::new();
        collect_keys(&self.dir, &self.dir, &mut out)?;
        out.sort();
        Ok(out)
    }

    /// How many entries the journal holds, counted by their files (none read).
    pub fn count(&self) -> std::io::Result<usize> {
        let mut n = 0;
        for key in self.keys()? {
            match fs::read_dir(self.folder(&key)) {
                Ok(listing) => {
                    for item in listing {
                        let name = item?.file_name();
                        let name = name.to_string_lossy();
                        n += usize::from(name.ends_with(".json") && !name.starts_with('.'));
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }
}

/// A folder whose name ends like a document (`.toml`, `.json`) is a document's journal.
fn collect_keys(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    let listing = match fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for item in listing {
        let path = item?.path();
        if !path.is_dir() {
            continue;
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.ends_with(".toml") || name.ends_with(".json") {
            if let Ok(rel) = path.strip_prefix(root) {
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        } else {
            collect_keys(root, &path, out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, text: Option<&str>, who: &str) -> JournalEntry {
        JournalEntry {
            version: 0,
            at: "2026-12-06T10:00:00Z".into(),
            who: who.into(),
            reason: Some("uji".into()),
            action: "put".into(),
            key: key.into(),
            before: None,
            after: text.map(digest_hex),
            text: text.map(str::to_string),
        }
    }

    #[test]
    fn entries_are_numbered_and_attributed_by_digest() {
        let dir = tempfile::tempdir().unwrap();
        let dir_journal = DirJournal::of_store(dir.path());
        let key = "services/dinsos/bansos.toml";
        dir_journal.append(&mut entry(key, Some("a = 1\n"), "andi")).unwrap();
        dir_journal.append(&mut entry(key, Some("a = 2\n"), "budi")).unwrap();
        let mut removal = entry(key, None, "citra");
        removal.before = Some(digest_hex("a = 2\n"));
        dir_journal.append(&mut removal).unwrap();
        let journal = Journal::Dir(dir_journal);
        let entries = journal.entries(key).unwrap();
        assert_eq!(entries.iter().map(|e| e.version).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(journal.attribution(key, None, Some(&digest_hex("a = 1\n"))).unwrap().who, "andi");
        assert_eq!(journal.attribution(key, None, Some(&digest_hex("a = 2\n"))).unwrap().who, "budi");
        assert_eq!(journal.attribution(key, Some(&digest_hex("a = 2\n")), None).unwrap().who, "citra");
        assert!(journal.attribution(key, None, Some(&digest_hex("a = 3\n"))).is_none(), "a hand edit");
        assert_eq!(journal.keys().unwrap(), vec![key.to_string()]);
        assert_eq!(journal.len().unwrap(), 3);
        let Journal::Dir(files) = &journal else { unreachable!("a folder journal") };
        assert_eq!(files.count().unwrap(), 3, "counted without reading");
    }
}

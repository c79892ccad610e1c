//! The embedded store: one TOML file per document under a directory
//! (`opds/dinkes.toml`, `services/dinkes/rekam-medis.toml`, `clients/dinsos/sikasos.toml`, `grants/x.toml`).
//! Writes are atomic: temp file in the same folder, fsync, rename, fsync of the folder. Its journal is the
//! `.history/` folder ([`DirJournal`]) and its generation the number of journal entries; a commit appends the
//! journal entries, then writes the documents (one process writes a directory store: the management plane
//! serialises its writes).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::journal::{DirJournal, Journal, JournalEntry};
use super::{check_key, ChangeMeta, DocumentKind, DocumentStore, Listing, StoreError, StoredDocument};
use penghubung_types::diagnostics::Diagnostic;
use penghubung_types::embedded;

/// A directory of TOML documents.
#[derive(Clone, Debug)]
pub struct DirStore {
    root: PathBuf,
}

impl DirStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// When the directory is missing or holds no document, writes the whole baseline policy set shipped in the
    /// binary: the demo's sample data (`penghubung demo` only). Returns how many documents were written.
    pub fn seed_baseline_if_empty(&self) -> Result<usize, StoreError> {
        self.seed_if_empty(embedded::baseline_policies())
    }

    /// When the directory is missing or holds no document, writes the production skeleton (default tiers, the
    /// Dinas's OPD, shared schemas; see [`embedded::skeleton_policies`]): what `penghubung serve` seeds.
    /// Returns how many documents were written.
    pub fn seed_skeleton_if_empty(&self) -> Result<usize, StoreError> {
        let documents: Vec<(&str, &str)> = embedded::skeleton_policies().collect();
        self.seed_if_empty(&documents)
    }

    /// The journal of this store.
    pub fn dir_journal(&self) -> DirJournal {
        DirJournal::of_store(&self.root)
    }

    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
        move |source| StoreError::Io { path: path.to_path_buf(), source }
    }

    fn walk(&self, dir: &Path, out: &mut Vec<StoredDocument>, notes: &mut Vec<Diagnostic>) -> Result<(), StoreError> {
        let mut entries: Vec<PathBuf> =
            fs::read_dir(dir).map_err(Self::io(dir))?.filter_map(Result::ok).map(|e| e.path()).collect();
        entries.sort();
        for path in entries {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with('.') {
                continue; // temp files of an in-progress write, editor swap files
            }
            if path.is_dir() {
                self.walk(&path, out, notes)?;
                continue;
            }
            let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            if extension != "toml" && extension != "json" {
                continue;
            }
            let key = path.strip_prefix(&self.root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
            let origin = path.display().to_string();
            let Some(kind) = DocumentKind::of_key(&key).filter(|k| k.extension() == extension) else {
                notes.push(Diagnostic::warning(
                    &origin,
                    "ignored: documents are .toml files under opds/, services/, clients/ or grants/, \
                     and contract schemas .json files under schemas/",
                ));
                continue;
            };
            match fs::read_to_string(&path) {
                Ok(text) => out.push(StoredDocument { kind, key, origin, text }),
                Err(e) => notes.push(Diagnostic::error(&origin, format!("cannot read: {e}"))),
            }
        }
        Ok(())
    }
}

impl DocumentStore for DirStore {
    fn list(&self) -> Result<(Vec<StoredDocument>, Vec<Diagnostic>), StoreError> {
        let mut docs = Vec::new();
        let mut notes = Vec::new();
        if !self.root.exists() {
            return Ok((docs, notes));
        }
        self.walk(&self.root, &mut docs, &mut notes)?;
        Ok((docs, notes))
    }

    fn list_with_generation(&self) -> Result<Listing, StoreError> {
        let generation = self.generation()?;
        let (documents, notes) = self.list()?;
        Ok(Listing { documents, notes, generation })
    }

    fn generation(&self) -> Result<u64, StoreError> {
        let journal = self.dir_journal();
        journal.count().map(|n| n as u64).map_err(|source| StoreError::Io { path: journal.dir().to_path_buf(), source })
    }

    fn commit(
        &self,
        expected: u64,
        writes: &[(String, Option<String>)],
        journal: &[JournalEntry],
        _meta: &ChangeMeta,
    ) -> Result<u64, StoreError> {
        for (key, _) in writes {
            check_key(key)?;
        }
        let found = self.generation()?;
        if found != expected {
            return Err(StoreError::Conflict { expected, found });
        }
        let history = self.dir_journal();
        let journal_error = |source| StoreError::Io { path: history.dir().to_path_buf(), source };
        let mut appended: Vec<(String, PathBuf)> = Vec::new();
        for entry in journal {
            let mut entry = entry.clone();
            match history.append(&mut entry) {
                Ok(path) => appended.push((entry.key.clone(), path)),
                Err(e) => {
                    for (_, path) in &appended {
                        let _ = history.remove(path);
                    }
                    return Err(journal_error(e));
                }
            }
        }
        for (done, (key, text)) in writes.iter().enumerate() {
            let written = match text {
                Some(text) => self.put(key, text),
                None => self.delete(key),
            };
            if let Err(e) = written {
                // Take back the entries of the documents not written (this one and the rest).
                let unwritten: Vec<&String> = writes[done..].iter().map(|(k, _)| k).collect();
                for (key, path) in &appended {
                    if unwritten.contains(&key) {
                        let _ = history.remove(path);
                    }
                }
                return Err(e);
            }
        }
        Ok(expected + journal.len() as u64)
    }

    fn put(&self, key: &str, text: &str) -> Result<(), StoreError> {
        check_key(key)?;
        let target = self.root.join(key);
        let folder = target.parent().unwrap_or(&self.root).to_path_buf();
        fs::create_dir_all(&folder).map_err(Self::io(&folder))?;
        let file_name = target.file_name().and_then(|n| n.to_str()).unwrap_or("doc");
        let temp = folder.join(format!(".{file_name}.tmp-{}-{:08x}", std::process::id(), fastrand::u32(..)));
        let write = || -> std::io::Result<()> {
            let mut f = fs::File::create(&temp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            drop(f);
            fs::rename(&temp, &target)?;
            fs::File::open(&folder)?.sync_all()
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&temp);
            StoreError::Io { path: target.clone(), source: e }
        })
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        check_key(key)?;
        let target = self.root.join(key);
        fs::remove_file(&target).map_err(Self::io(&target))?;
        if let Some(folder) = target.parent() {
            fs::File::open(folder).and_then(|f| f.sync_all()).map_err(Self::io(folder))?;
        }
        Ok(())
    }

    fn watch_dir(&self) -> Option<PathBuf> {
        Some(self.root.clone())
    }

    fn describe(&self) -> String {
        format!("directory store {}", self.root.display())
    }

    fn origin(&self, key: &str) -> String {
        self.root.join(key).display().to_string()
    }

    fn journal(&self) -> Option<Journal> {
        Some(Journal::Dir(self.dir_journal()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_is_atomic_and_listable() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::new(dir.path());
        store.put("opds/dinkes.toml", "id = \"dinkes\"\nname = \"Dinas Kesehatan\"\n").unwrap();
        let (docs, notes) = store.list().unwrap();
        assert!(notes.is_empty());
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0].kind, DocumentKind::Opd);
        assert_eq!(docs[0].key, "opds/dinkes.toml");
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("opds")).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temp file is left behind");
    }

    #[test]
    fn a_commit_writes_documents_and_journal_on_the_generation_it_was_prepared_at() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::new(dir.path());
        assert_eq!(store.generation().unwrap(), 0);
        let text = "id = \"dinkes\"\nname = \"Dinas Kesehatan\"\n";
        let entry = JournalEntry {
            version: 1,
            at: "2026-12-06T10:00:00Z".into(),
            who: "andi".into(),
            reason: None,
            action: "create_opd".into(),
            key: "opds/dinkes.toml".into(),
            before: None,
            after: Some(super::super::journal::digest_hex(text)),
            text: Some(text.into()),
        };
        let writes = vec![("opds/dinkes.toml".to_string(), Some(text.to_string()))];
        let meta = ChangeMeta::default();
        assert_eq!(store.commit(0, &writes, std::slice::from_ref(&entry), &meta).unwrap(), 1);
        assert_eq!(store.list_with_generation().unwrap().generation, 1);
        assert_eq!(store.list().unwrap().0[0].text, text);
        // Prepared at 0 again: refused, nothing written.
        let stale = vec![("opds/dinkes.toml".to_string(), None)];
        match store.commit(0, &stale, &[entry], &meta) {
            Err(StoreError::Conflict { expected: 0, found: 1 }) => {}
            other => panic!("a conflict, not {other:?}"),
        }
        assert_eq!(store.list().unwrap().0.len(), 1);
        assert_eq!(store.generation().unwrap(), 1);
    }

    #[test]
    fn keys_cannot_escape_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::new(dir.path());
        for key in [
            "../x.toml",
            "opds/../../x.toml",
            "/etc/x.toml",
            "opds/x.txt",
            "opds/x.json",
            "schemas/x.toml",
            "other/x.toml",
            "opds//x.toml",
        ] {
            assert!(store.put(key, "").is_err(), "{key} must be refused");
        }
    }

    #[test]
    fn baseline_seeds_an_empty_store_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::new(dir.path().join("p"));
        let n = store.seed_baseline_if_empty().unwrap();
        assert!(n >= 5, "baseline has documents");
        assert_eq!(store.seed_baseline_if_empty().unwrap(), 0);
    }

    #[test]
    fn the_skeleton_seeds_no_sample_opd_and_compiles() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::new(dir.path().join("p"));
        assert!(store.seed_skeleton_if_empty().unwrap() >= 4);
        assert_eq!(store.seed_skeleton_if_empty().unwrap(), 0, "an existing store is left alone");
        let (documents, _) = store.list().unwrap();
        let keys: Vec<&str> = documents.iter().map(|d| d.key.as_str()).collect();
        assert!(keys.contains(&"opds/diskominfo.toml") && keys.contains(&"tiers/bronze.toml"), "{keys:?}");
        assert!(!keys.iter().any(|k| k.starts_with("services/") || k.starts_with("clients/")), "{keys:?}");
        assert!(!store.root().join("opds/dinkes.toml").exists());
    }
}

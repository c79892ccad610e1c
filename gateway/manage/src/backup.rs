//! Backups of the store: [`export`] writes one JSON file with every document (key and text), a manifest of their
//! SHA-256 digests, the store's generation (journal entries so far), the time and the operator, signed with the
//! audit signing key (Ed25519, `[audit] key_file`). [`verify`] checks a bundle's signature with the audit public
//! key (`[audit] public_key_file`) and its manifest; the manager then checks the whole store it holds and swaps
//! it in ([`replace_store`]): the documents are written to a new folder beside the live one, the live folder is
//! renamed to `<store>.before-import-<time>` and the new one takes its name. The journal moves with the store.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use penghubung_audit::keys::{PublicKey, SigningKey};
use penghubung_snapshot::store::journal::{digest_hex, JOURNAL_DIR};
use penghubung_snapshot::store::{check_key, DirStore, DocumentStore, StoredDocument};
use penghubung_types::config::Config;

use crate::error::ManageError;

/// The format tag of a bundle.
pub const FORMAT: &str = "penghubung-store-export/1";

/// One document of a bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleDocument {
    pub key: String,
    pub text: String,
}

/// One manifest line: a document's key and the SHA-256 (hex) of its text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub key: String,
    pub sha256: String,
}

/// What the signature covers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contents {
    pub format: String,
    /// RFC 3339.
    pub exported_at: String,
    /// The operator id.
    pub exported_by: String,
    /// How many changes the store's journal had recorded.
    pub generation: u64,
    pub documents: Vec<BundleDocument>,
    pub manifest: Vec<ManifestEntry>,
}

/// The exported file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    pub contents: Contents,
    /// The id of the audit key that signed it.
    pub key_id: String,
    /// Ed25519 signature (hex) of the contents' JSON serialisation.
    pub signature: String,
}

impl Contents {
    /// The bytes the signature covers: the contents serialised as JSON (fields in their declared order).
    fn message(&self) -> Result<Vec<u8>, ManageError> {
        serde_json::to_vec(self).map_err(|e| ManageError::unavailable(format!("serialising the export: {e}")))
    }
}

/// The signed bundle of `documents`.
pub fn export(
    config: &Config,
    documents: &[StoredDocument],
    exported_by: &str,
    generation: u64,
    now: &str,
) -> Result<Vec<u8>, ManageError> {
    let key_path = config.resolve(&config.audit.key_file);
    let key = SigningKey::read(&key_path)
        .map_err(|e| ManageError::unavailable(format!("the audit signing key signs exports: {e}")))?;
    let mut documents: Vec<BundleDocument> =
        documents.iter().map(|d| BundleDocument { key: d.key.clone(), text: d.text.clone() }).collect();
    documents.sort_by(|a, b| a.key.cmp(&b.key));
    let manifest =
        documents.iter().map(|d| ManifestEntry { key: d.key.clone(), sha256: digest_hex(&d.text) }).collect();
    let contents = Contents {
        format: FORMAT.into(),
        exported_at: now.into(),
        exported_by: exported_by.into(),
        generation,
        documents,
        manifest,
    };
    let signature = key.sign(&contents.message()?);
    let bundle = Bundle { contents, key_id: key.key_id.clone(), signature };
    let mut out = serde_json::to_vec_pretty(&bundle).map_err(|e| ManageError::unavailable(e.to_string()))?;
    out.push(b'\n');
    Ok(out)
}

/// The contents of a bundle whose signature verifies with the audit public key and whose manifest matches its
/// documents exactly; every problem found is listed.
pub fn verify(config: &Config, bytes: &[u8]) -> Result<Contents, ManageError> {
    let bundle: Bundle = serde_json::from_slice(bytes)
        .map_err(|e| ManageError::bad_request(format!("not a store export ({FORMAT}): {e}")))?;
    if bundle.contents.format != FORMAT {
        return Err(ManageError::bad_request(format!(
            "unknown export format `{}` (expected {FORMAT})",
            bundle.contents.format
        )));
    }
    let public_path = config.resolve(&config.audit.public_key_file);
    let public = PublicKey::read(&public_path)
        .map_err(|e| ManageError::unavailable(format!("the audit public key verifies imports: {e}")))?;
    if !public.verify(&bundle.contents.message()?, &bundle.signature) {
        return Err(ManageError::bad_request(format!(
            "the export's signature does not verify with the audit key {} (key {}): it was changed after export, \
             or signed by another gateway",
            public_path.display(),
            public.key_id
        )));
    }
    let mut problems = Vec::new();
    let contents = bundle.contents;
    if contents.manifest.len() != contents.documents.len() {
        problems.push(format!(
            "the manifest lists {} document(s), the export holds {}",
            contents.manifest.len(),
            contents.documents.len()
        ));
    }
    for document in &contents.documents {
        if let Err(e) = check_key(&document.key) {
            problems.push(e.to_string());
        }
        match contents.manifest.iter().find(|m| m.key == document.key) {
            None => problems.push(format!("{}: not in the manifest", document.key)),
            Some(entry) if entry.sha256 != digest_hex(&document.text) => {
                problems.push(format!("{}: its digest differs from the manifest's", document.key))
            }
            Some(_) => {}
        }
    }
    if problems.is_empty() {
        Ok(contents)
    } else {
        Err(ManageError::InvalidStore { problems })
    }
}

/// Swaps `documents` in as the store at `live` (see the module doc), carrying the journal over (the caller
/// records the import in `staging`'s journal through `record`, before the swap). Returns where the previous
/// store was kept.
pub fn replace_store(
    live: &Path,
    documents: &[BundleDocument],
    stamp: &str,
    record: impl FnOnce(&Path) -> Result<(), ManageError>,
) -> Result<PathBuf, ManageError> {
    let name = live.file_name().and_then(|n| n.to_str()).unwrap_or("store").to_string();
    let parent = live.parent().map(Path::to_path_buf).unwrap_or_default();
    // Two imports within the same second keep two folders: the second gets a `-2` suffix, and so on.
    let unique = |base: String| {
        let mut candidate = parent.join(&base);
        let mut n = 2;
        while candidate.exists() {
            candidate = parent.join(format!("{base}-{n}"));
            n += 1;
        }
        candidate
    };
    let staging = unique(format!(".{name}.import-{stamp}"));
    let kept = unique(format!("{name}.before-import-{stamp}"));
    let unavailable = |what: &str, e: &dyn std::fmt::Display| ManageError::unavailable(format!("{what}: {e}"));
    let result = (|| {
        fs::create_dir_all(&staging).map_err(|e| unavailable(&staging.display().to_string(), &e))?;
        let store = DirStore::new(&staging);
        for document in documents {
            store.put(&document.key, &document.text).map_err(|e| unavailable("writing the imported store", &e))?;
        }
        let journal = live.join(JOURNAL_DIR);
        if journal.is_dir() {
            copy_dir(&journal, &staging.join(JOURNAL_DIR)).map_err(|e| unavailable("copying the journal", &e))?;
        }
        record(&staging)
    })();
    if let Err(e) = result {
        let _ = fs::remove_dir_all(&staging);
        return Err(e);
    }
    fs::rename(live, &kept)
        .map_err(|e| unavailable(&format!("keeping the previous store at {}", kept.display()), &e))?;
    if let Err(e) = fs::rename(&staging, live) {
        let _ = fs::rename(&kept, live);
        return Err(unavailable("putting the imported store in place", &e));
    }
    Ok(kept)
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

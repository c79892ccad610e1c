//! Documents (OPDs, services, clients, grants, rate tiers, operators of the management plane, and the JSON
//! Schemas of service contracts) and where they are kept. The [`DocumentStore`] trait hides the backend: the
//! embedded directory store ([`DirStore`]) or the Redis store every replica shares ([`RedisStore`]); [`open`]
//! picks the one the config names. A change is one [`DocumentStore::commit`]: its documents and their journal
//! entries together, compared-and-set on the store generation it was prepared at. The hot path never touches a
//! store: documents are compiled into a [`crate::Snapshot`].

pub mod dir;
pub mod journal;
pub use penghubung_types::documents;
pub mod redis;
pub mod validate;

use std::fmt;
use std::path::PathBuf;

pub use dir::DirStore;
pub use documents::{ClientDoc, GrantDoc, OpdDoc, OperatorDoc, ServiceDoc, TierDoc};
pub use redis::RedisStore;

use penghubung_types::diagnostics::Diagnostic;

/// The document kinds, each in its own folder of the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DocumentKind {
    Opd,
    Service,
    Client,
    Grant,
    /// A rate tier that grants name (`tiers/bronze.toml`).
    Tier,
    /// An operator of the management plane (`operators/rudi-aptika.toml`).
    Operator,
    /// A JSON Schema of a service contract (`schemas/disdukcapil/penduduk.schema.json`), referenced by operations.
    Schema,
}

impl DocumentKind {
    /// Every kind, in load order.
    pub const ALL: [DocumentKind; 7] = [
        DocumentKind::Opd,
        DocumentKind::Service,
        DocumentKind::Client,
        DocumentKind::Grant,
        DocumentKind::Tier,
        DocumentKind::Operator,
        DocumentKind::Schema,
    ];

    /// The store folder of this kind.
    pub fn folder(self) -> &'static str {
        match self {
            DocumentKind::Opd => "opds",
            DocumentKind::Service => "services",
            DocumentKind::Client => "clients",
            DocumentKind::Grant => "grants",
            DocumentKind::Tier => "tiers",
            DocumentKind::Operator => "operators",
            DocumentKind::Schema => "schemas",
        }
    }

    /// The file extension of this kind's documents.
    pub fn extension(self) -> &'static str {
        match self {
            DocumentKind::Schema => "json",
            _ => "toml",
        }
    }

    /// The kind a store key (`services/dinkes/rekam-medis.toml`) belongs to.
    pub fn of_key(key: &str) -> Option<DocumentKind> {
        let folder = key.split('/').next()?;
        DocumentKind::ALL.into_iter().find(|k| k.folder() == folder)
    }
}

impl fmt::Display for DocumentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DocumentKind::Opd => "Opd",
            DocumentKind::Service => "Service",
            DocumentKind::Client => "Client",
            DocumentKind::Grant => "Grant",
            DocumentKind::Tier => "Tier",
            DocumentKind::Operator => "Operator",
            DocumentKind::Schema => "Schema",
        })
    }
}

/// A document as stored: its key and raw text.
#[derive(Clone, Debug)]
pub struct StoredDocument {
    pub kind: DocumentKind,
    /// Store key, e.g. `services/dinkes/rekam-medis.toml`.
    pub key: String,
    /// Where it is, for messages (a file path for the directory store).
    pub origin: String,
    pub text: String,
}

/// Failures of the store itself (not of a document's content).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store key `{key}` is not valid: {reason}")]
    InvalidKey { key: String, reason: &'static str },
    #[error("store I/O on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// The store moved on since the change was prepared (another replica committed first): nothing was written.
    #[error("the store is at generation {found}, the change was prepared at {expected}: nothing was written")]
    Conflict { expected: u64, found: u64 },
    /// The backend cannot be reached (Redis down): nothing was written.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
}

/// What a commit is, for the change stream: who made it, what it was, when.
#[derive(Clone, Debug, Default)]
pub struct ChangeMeta {
    /// The operator id (or `hand-edit`, `system`).
    pub who: String,
    /// The action (`approve_security`, `revoke_certificate`, `store_push`, ...).
    pub action: String,
    /// RFC 3339 (UTC).
    pub at: String,
    /// The CA's revocation list and CRL after this change, when it revokes a certificate (kept by a shared
    /// backend so that every replica refuses the certificate; a directory store leaves the CA's files to it).
    pub ca: Option<CaLists>,
}

/// The CA's revocation state as text: `revoked.txt` (revoked serials, hex, one per line) and `crl.pem`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaLists {
    pub revoked: String,
    pub crl_pem: String,
}

/// The documents of a store as read at one generation.
#[derive(Clone, Debug)]
pub struct Listing {
    pub documents: Vec<StoredDocument>,
    /// Findings about entries that are not documents.
    pub notes: Vec<Diagnostic>,
    /// The store generation the documents were read at.
    pub generation: u64,
}

/// A place documents are kept. Implementations must make `put` and `commit` atomic: a reader sees the old or
/// the new text, never a mix.
pub trait DocumentStore: Send + Sync + 'static {
    /// Every document, in a stable order, plus findings about entries that are not documents.
    fn list(&self) -> Result<(Vec<StoredDocument>, Vec<Diagnostic>), StoreError>;
    /// Every document and the generation they were read at, consistently.
    fn list_with_generation(&self) -> Result<Listing, StoreError>;
    /// The store generation: it grows with every commit (0: nothing committed yet).
    fn generation(&self) -> Result<u64, StoreError>;
    /// Writes `writes` (key, new text or `None` to remove) and appends `journal` (each entry's `version` is the
    /// next of its key's) in one step, when the store is still at generation `expected`; otherwise
    /// [`StoreError::Conflict`] and nothing is written. Returns the new generation.
    fn commit(
        &self,
        expected: u64,
        writes: &[(String, Option<String>)],
        journal: &[journal::JournalEntry],
        meta: &ChangeMeta,
    ) -> Result<u64, StoreError>;
    /// Writes (creates or replaces) one document atomically, unrecorded (seeding, `init`).
    fn put(&self, key: &str, text: &str) -> Result<(), StoreError>;
    /// Removes one document, unrecorded.
    fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// The directory to watch for changes, if the backend is file based.
    fn watch_dir(&self) -> Option<PathBuf>;
    /// A short description for logs.
    fn describe(&self) -> String;
    /// Where the document at `key` is, for messages (a file path for the directory store).
    fn origin(&self, key: &str) -> String {
        key.to_string()
    }
    /// The store's journal of changes (who, when, why), if the backend keeps one.
    fn journal(&self) -> Option<journal::Journal> {
        None
    }
    /// The CA's revocation state the store shares between replicas (`None`: the backend leaves it to the CA's
    /// own files).
    fn shared_ca(&self) -> Result<Option<CaLists>, StoreError> {
        Ok(None)
    }
    /// Seeds an empty store with `documents` (key, text), unrecorded; returns how many were written (0 when the
    /// store already holds a document).
    fn seed_if_empty(&self, documents: &[(&str, &str)]) -> Result<usize, StoreError> {
        let has_documents = self.list().map(|(docs, _)| !docs.is_empty())?;
        if has_documents {
            return Ok(0);
        }
        let mut written = 0;
        for (key, text) in documents {
            if check_key(key).is_ok() {
                self.put(key, text)?;
                written += 1;
            }
        }
        Ok(written)
    }
}

/// The document store the config names: the folder `[store] path`, or the Redis store of `[redis]` with
/// `[store] redis_prefix`. Opening a Redis store does not connect: an unreachable Redis shows on first use.
pub fn open(config: &penghubung_types::config::Config) -> Result<Box<dyn DocumentStore>, StoreError> {
    use penghubung_types::config::StoreBackend;
    match config.store.backend {
        StoreBackend::Dir => Ok(Box::new(DirStore::new(config.store_dir()))),
        StoreBackend::Redis => Ok(Box::new(RedisStore::of_config(config)?)),
    }
}

/// All documents of a store, parsed and schema-checked.
#[derive(Clone, Debug, Default)]
pub struct Documents {
    pub opds: Vec<(String, OpdDoc)>,
    pub services: Vec<(String, ServiceDoc)>,
    pub clients: Vec<(String, ClientDoc)>,
    pub grants: Vec<(String, GrantDoc)>,
    pub tiers: Vec<(String, TierDoc)>,
    /// The operators of the management plane.
    pub operators: Vec<(String, OperatorDoc)>,
    /// Contract schemas by their path under `schemas/` (`disdukcapil/penduduk.schema.json`).
    pub schemas: Vec<(String, String, serde_json::Value)>,
    /// SHA-256 of the text of every document read, by store key (for the audit's change records).
    pub digests: Vec<(String, [u8; 32])>,
}

/// Reads every document of `store` and checks each against its schema and its place in the store.
/// Returns the documents that passed and every finding (the caller decides whether findings block a load).
pub fn load_documents(store: &dyn DocumentStore) -> (Documents, Vec<Diagnostic>) {
    let mut docs = Documents::default();
    let (stored, mut problems) = match store.list() {
        Ok(listing) => listing,
        Err(e) => return (docs, vec![Diagnostic::error(store.describe(), e.to_string())]),
    };
    for d in stored {
        let mut digest = [0u8; 32];
        digest.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, d.text.as_bytes()).as_ref());
        docs.digests.push((d.key.clone(), digest));
        let origin = d.origin.clone();
        let result = match d.kind {
            DocumentKind::Opd => validate::parse_document::<OpdDoc>(d.kind, &origin, &d.text).and_then(|doc| {
                expect_key(&d, &format!("opds/{}.toml", doc.id), "id")?;
                docs.opds.push((origin.clone(), doc));
                Ok(())
            }),
            DocumentKind::Service => validate::parse_document::<ServiceDoc>(d.kind, &origin, &d.text).and_then(|doc| {
                let folder = format!("services/{}/", doc.opd);
                if !d.key.starts_with(&folder) || d.key[folder.len()..].contains('/') {
                    return Err(vec![Diagnostic::error(
                        &origin,
                        format!("a service of OPD `{}` belongs in folder `{folder}`", doc.opd),
                    )]);
                }
                docs.services.push((origin.clone(), doc));
                Ok(())
            }),
            DocumentKind::Client => validate::parse_document::<ClientDoc>(d.kind, &origin, &d.text).and_then(|doc| {
                expect_key(&d, &format!("clients/{}.toml", doc.id), "id")?;
                if !doc.id.starts_with(&format!("{}/", doc.opd)) {
                    return Err(vec![Diagnostic::error(
                        &origin,
                        format!("client id `{}` must start with its OPD `{}/`", doc.id, doc.opd),
                    )]);
                }
                docs.clients.push((origin.clone(), doc));
                Ok(())
            }),
            DocumentKind::Grant => validate::parse_document::<GrantDoc>(d.kind, &origin, &d.text).and_then(|doc| {
                expect_key(&d, &format!("grants/{}.toml", doc.id), "id")?;
                docs.grants.push((origin.clone(), doc));
                Ok(())
            }),
            DocumentKind::Tier => validate::parse_document::<TierDoc>(d.kind, &origin, &d.text).and_then(|doc| {
                expect_key(&d, &format!("tiers/{}.toml", doc.id), "id")?;
                // Checked here rather than by a `oneOf` in the schema (which costs the validator ~20 MiB).
                let problem = match (doc.unlimited, doc.rate.is_some() || doc.burst.is_some()) {
                    (true, true) => Some("an unlimited tier has no `rate` or `burst`"),
                    (false, _) if doc.rate.is_none() => Some("a tier needs `rate` (or `unlimited = true`)"),
                    _ => None,
                };
                if let Some(problem) = problem {
                    return Err(vec![Diagnostic::error(&origin, problem)]);
                }
                docs.tiers.push((origin.clone(), doc));
                Ok(())
            }),
            DocumentKind::Operator => {
                validate::parse_document::<OperatorDoc>(d.kind, &origin, &d.text).and_then(|doc| {
                    expect_key(&d, &format!("operators/{}.toml", doc.id), "id")?;
                    docs.operators.push((origin.clone(), doc));
                    Ok(())
                })
            }
            DocumentKind::Schema => validate::parse_schema(&origin, &d.text).map(|schema| {
                let path = d.key.strip_prefix("schemas/").unwrap_or(&d.key).to_string();
                docs.schemas.push((origin.clone(), path, schema));
            }),
        };
        if let Err(mut found) = result {
            problems.append(&mut found);
        }
    }
    (docs, problems)
}

fn expect_key(d: &StoredDocument, expected: &str, field: &str) -> Result<(), Vec<Diagnostic>> {
    if d.key == expected {
        Ok(())
    } else {
        Err(vec![Diagnostic::error(
            &d.origin,
            format!("the {} `{field}` says this document belongs at `{expected}`, but it is at `{}`", d.kind, d.key),
        )])
    }
}

/// Checks a store key: relative, `/`-separated, no `.`/`..`/empty parts, known folder, and the extension of
/// that folder's kind (`.toml`, or `.json` under `schemas/`).
pub fn check_key(key: &str) -> Result<DocumentKind, StoreError> {
    let invalid = |reason| StoreError::InvalidKey { key: key.to_string(), reason };
    if key.split('/').any(|p| p.is_empty() || p == "." || p == ".." || p.starts_with('.')) {
        return Err(invalid("it must be a relative path without empty, hidden, `.` or `..` parts"));
    }
    if key.contains('\\') || key.contains('\0') {
        return Err(invalid("it must not contain `\\` or NUL"));
    }
    let kind = DocumentKind::of_key(key).ok_or_else(|| {
        invalid("its first folder must be opds, services, clients, grants, tiers, operators or schemas")
    })?;
    if !key.ends_with(&format!(".{}", kind.extension())) {
        return Err(invalid("documents end in .toml, schemas (under schemas/) in .json"));
    }
    Ok(kind)
}

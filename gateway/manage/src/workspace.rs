//! Changes the security team makes to the document store from the command line: a service's lifecycle and
//! approvals, grants, clearances. Every change is checked against the *whole* store with the gateway's own
//! compiler (the same checks as `penghubung check`) before anything is written; a change that would leave
//! the store invalid is refused and nothing is written. Writes are atomic and keep the document's comments and
//! layout (`toml_edit`). A running gateway picks the change up through its watcher (or SIGHUP).

use std::path::Path;

use crate::check;
use penghubung_policy::lifecycle::{self, Transition};
use penghubung_snapshot::store::journal::JournalEntry;
use penghubung_snapshot::store::{check_key, ChangeMeta, DirStore, DocumentStore, Listing, StoreError, StoredDocument};
use penghubung_snapshot::Snapshot;
use penghubung_types::config::Config;
use penghubung_types::diagnostics::{has_errors, Diagnostic};
use penghubung_types::documents::{Classification, GrantDoc, ServiceDoc};

use crate::import::{self, ImportSpec};

/// The store a config points at, opened for changes.
pub struct Workspace {
    config: Config,
    store: DirStore,
}

impl Workspace {
    /// Opens the store of the config at `config_path` (or of the embedded default, in the current directory).
    pub fn open(config_path: Option<&Path>) -> Result<Workspace, String> {
        let config = match config_path {
            Some(path) => Config::load(path).map_err(|p| render(&p))?,
            None => Config::embedded_default(&std::env::current_dir().unwrap_or_default()),
        };
        let dir = config.store_dir();
        if !dir.is_dir() {
            return Err(format!(
                "the store {} does not exist (`penghubung serve` seeds it with the baseline)",
                dir.display()
            ));
        }
        Ok(Workspace { store: DirStore::new(dir), config })
    }

    /// The compiled snapshot of the store as it is now.
    pub fn snapshot(&self) -> Result<Snapshot, String> {
        check::load_and_compile(&self.config, &self.store).map_err(|p| render(&p))
    }

    /// Applies a lifecycle transition to the service `opd/name/v{n}`; returns a one-line summary.
    pub fn transition(&self, service_key: &str, transition: &Transition) -> Result<String, String> {
        let (stored, doc) = self.find_service(service_key)?;
        let (status, approvals, reason) = lifecycle::apply(&doc, transition)?;
        let mut edit = parse(&stored)?;
        edit["status"] = toml_edit::value(status.as_str());
        match &reason {
            Some(reason) => edit["status_reason"] = toml_edit::value(reason.as_str()),
            None => {
                edit.remove("status_reason");
            }
        }
        for (kind, approval) in [("operations", &approvals.operations), ("security", &approvals.security)] {
            let Some(approval) = approval else { continue };
            if !edit.contains_key("approvals") {
                let mut table = toml_edit::Table::new();
                table.set_implicit(true);
                edit["approvals"] = toml_edit::Item::Table(table);
            }
            let mut table = toml_edit::Table::new();
            table["by"] = toml_edit::value(approval.by.as_str());
            table["at"] = toml_edit::value(approval.at.as_str());
            table["reason"] = toml_edit::value(approval.reason.as_str());
            edit["approvals"][kind] = toml_edit::Item::Table(table);
        }
        self.commit(&stored.key, Some(edit.to_string()))?;
        Ok(format!("{service_key}: {} → {status}", doc.status))
    }

    /// Creates or updates the service `opd/name/v{version}` from an OpenAPI 3.0/3.1 document (JSON): its
    /// operations and, per operation, request, query and response contracts written under
    /// `schemas/{opd}/{name}/v{version}/`. A new service is a `draft` (it needs `upstream` and a classification);
    /// an existing one keeps its status, approvals, upstream and limits (its document is rewritten, so its
    /// comments are not kept). Returns a summary and the importer's warnings.
    pub fn import_openapi(&self, request: &ImportRequest<'_>) -> Result<String, String> {
        let text = std::fs::read_to_string(request.file).map_err(|e| format!("{}: {e}", request.file.display()))?;
        let document: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            format!("{}: not JSON ({e}); convert a YAML document to JSON first", request.file.display())
        })?;
        let id = format!("{}/{}/v{}", request.opd, request.name, request.version);
        let existing = self.find_service(&id).ok();
        let source = request.file.display().to_string();
        let spec = ImportSpec {
            opd: request.opd,
            name: request.name,
            version: request.version,
            upstream: request.upstream,
            classification: request.classification,
            source: &source,
        };
        let plan = import::plan(&spec, &document, existing.as_ref().map(|(s, d)| (s.key.as_str(), d)), &now_rfc3339())?;
        self.commit_all(&plan.writes)?;
        Ok(plan.summary)
    }

    /// Adds a grant document `grants/{id}.toml`.
    pub fn add_grant(&self, grant: &GrantDoc) -> Result<String, String> {
        let key = format!("grants/{}.toml", grant.id);
        if self.store.root().join(&key).exists() {
            return Err(format!("grant `{}` exists ({key}); revoke it first or pick another id", grant.id));
        }
        let body = toml::to_string(grant).map_err(|e| e.to_string())?;
        let text = format!("# Added with `penghubung grant add` on {}.\n{body}", now_rfc3339());
        self.commit(&key, Some(text))?;
        Ok(format!(
            "grant `{}`: {} may call {} of {}",
            grant.id,
            grant.client,
            grant.operations.join(", "),
            grant.service
        ))
    }

    /// Removes the grant `id`.
    pub fn revoke_grant(&self, id: &str) -> Result<String, String> {
        let key = format!("grants/{id}.toml");
        if !self.store.root().join(&key).exists() {
            return Err(format!("there is no grant `{id}` ({key})"));
        }
        self.commit(&key, None)?;
        Ok(format!("grant `{id}` revoked: its calls are refused from the next request on"))
    }

    /// Sets a client's clearance.
    pub fn set_clearance(&self, client_id: &str, clearance: Classification) -> Result<String, String> {
        let key = format!("clients/{client_id}.toml");
        let stored = self
            .documents()?
            .into_iter()
            .find(|d| d.key == key)
            .ok_or_else(|| format!("there is no client `{client_id}` (expected {key})"))?;
        let mut edit = parse(&stored)?;
        let before = edit.get("clearance").and_then(|v| v.as_str()).unwrap_or("?").to_string();
        edit["clearance"] = toml_edit::value(clearance.as_str());
        self.commit(&key, Some(edit.to_string()))?;
        Ok(format!("client `{client_id}`: clearance {before} → {clearance}"))
    }

    fn documents(&self) -> Result<Vec<StoredDocument>, String> {
        self.store.list().map(|(docs, _)| docs).map_err(|e| e.to_string())
    }

    fn find_service(&self, service_key: &str) -> Result<(StoredDocument, ServiceDoc), String> {
        for stored in self.documents()? {
            if stored.kind != penghubung_snapshot::store::DocumentKind::Service {
                continue;
            }
            if let Ok(doc) = toml::from_str::<ServiceDoc>(&stored.text) {
                if doc.key() == service_key {
                    return Ok((stored, doc));
                }
            }
        }
        Err(format!("there is no service `{service_key}` (give it as opd/name/v1)"))
    }

    /// Checks the store with `key` replaced by `text` (`None`: removed), then writes it.
    fn commit(&self, key: &str, text: Option<String>) -> Result<(), String> {
        self.commit_all(&[(key.to_string(), text)])
    }

    /// Checks the store with every change applied, then writes them in order (put the documents that others
    /// refer to first: a reload between two writes then still sees a valid store).
    fn commit_all(&self, changes: &[(String, Option<String>)]) -> Result<(), String> {
        let mut documents: Vec<StoredDocument> =
            self.documents()?.into_iter().filter(|d| !changes.iter().any(|(k, _)| *k == d.key)).collect();
        for (key, text) in changes {
            let kind = check_key(key).map_err(|e| e.to_string())?;
            if let Some(text) = text {
                let origin = self.store.root().join(key).display().to_string();
                documents.push(StoredDocument { kind, key: key.clone(), origin, text: text.clone() });
            }
        }
        let proposed = Proposed(documents);
        if let Err(problems) = check::load_and_compile(&self.config, &proposed) {
            if has_errors(&problems) {
                return Err(format!(
                    "the change was not written; it would make the store invalid:\n{}",
                    render(&problems)
                ));
            }
        }
        for (key, text) in changes {
            match text {
                Some(text) => self.store.put(key, text),
                None => self.store.delete(key),
            }
            .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// What `penghubung service import-openapi` was asked to do.
pub struct ImportRequest<'a> {
    pub file: &'a Path,
    pub opd: &'a str,
    pub name: &'a str,
    pub version: u32,
    /// The backend of a new service.
    pub upstream: Option<&'a str>,
    pub classification: Option<Classification>,
}

/// The store as it would be after a change (read-only).
pub(crate) struct Proposed(pub(crate) Vec<StoredDocument>);

impl DocumentStore for Proposed {
    fn list(&self) -> Result<(Vec<StoredDocument>, Vec<Diagnostic>), StoreError> {
        Ok((self.0.clone(), Vec::new()))
    }
    fn list_with_generation(&self) -> Result<Listing, StoreError> {
        Ok(Listing { documents: self.0.clone(), notes: Vec::new(), generation: 0 })
    }
    fn generation(&self) -> Result<u64, StoreError> {
        Ok(0)
    }
    fn commit(
        &self,
        _: u64,
        writes: &[(String, Option<String>)],
        _: &[JournalEntry],
        _: &ChangeMeta,
    ) -> Result<u64, StoreError> {
        let key = writes.first().map_or_else(String::new, |(k, _)| k.clone());
        Err(StoreError::InvalidKey { key, reason: "a proposed store is read-only" })
    }
    fn put(&self, key: &str, _: &str) -> Result<(), StoreError> {
        Err(StoreError::InvalidKey { key: key.into(), reason: "a proposed store is read-only" })
    }
    fn delete(&self, key: &str) -> Result<(), StoreError> {
        Err(StoreError::InvalidKey { key: key.into(), reason: "a proposed store is read-only" })
    }
    fn watch_dir(&self) -> Option<std::path::PathBuf> {
        None
    }
    fn describe(&self) -> String {
        "proposed store".into()
    }
}

fn parse(stored: &StoredDocument) -> Result<toml_edit::DocumentMut, String> {
    stored.text.parse().map_err(|e| format!("{}: {e}", stored.origin))
}

fn render(problems: &[Diagnostic]) -> String {
    problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
}

/// Now as RFC 3339 (UTC).
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc())
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

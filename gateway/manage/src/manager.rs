//! [`Manager`]: the management plane's operations over one store. Every write is authorized against the
//! permission table, checked against the whole resulting store with the gateway's own compiler, written
//! atomically and recorded in the store's journal; reads return each document with its etag.

use penghubung_snapshot::store::{DirStore, DocumentStore, StoredDocument};
use penghubung_types::config::Config;

use crate::access::{authorize, Actor, Operation};
use crate::change::{Applied, ChangeRequest, HistoryEntry, Kind, Versioned};
use crate::error::ManageError;
use crate::stored;

/// The management plane over the store of one config.
pub struct Manager {
    config: Config,
    store: DirStore,
}

impl Manager {
    /// Opens the store the config points at (it must exist: `penghubung init` or `serve` creates it).
    pub fn open(config: &Config) -> Result<Manager, ManageError> {
        let dir = config.store_dir();
        if !dir.is_dir() {
            return Err(ManageError::unavailable(format!("the store {} does not exist", dir.display())));
        }
        Ok(Manager { config: config.clone(), store: DirStore::new(dir) })
    }

    /// The config the manager was opened with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The operator a client certificate (DER) belongs to: the enabled operator whose document lists the
    /// certificate's SHA-256 fingerprint. The certificate chain itself is verified by the TLS layer.
    pub fn authenticate_certificate(&self, cert_der: &[u8]) -> Result<Actor, ManageError> {
        let fingerprint = stored::fingerprint(cert_der);
        let operators = stored::operators(&self.documents()?);
        let operator = operators
            .into_iter()
            .find(|o| o.identity.fingerprint_sha256.iter().any(|f| f.eq_ignore_ascii_case(&fingerprint)))
            .ok_or_else(|| ManageError::Unauthenticated {
                detail: "the certificate is not registered to any operator".into(),
            })?;
        if !operator.enabled {
            return Err(ManageError::Unauthenticated { detail: format!("operator `{}` is disabled", operator.id) });
        }
        Ok(Actor { id: operator.id, name: operator.name, opd: operator.opd, roles: operator.roles })
    }

    /// Every document of `kind` the actor may see (an `opd_admin` sees its own OPD's only), ordered by id.
    pub fn list(&self, actor: &Actor, kind: Kind) -> Result<Vec<Versioned>, ManageError> {
        authorize(actor, list_operation(kind), None)?;
        let mut out = Vec::new();
        for doc in self.documents()?.iter().filter(|d| Kind::of(d.kind) == Some(kind)) {
            let Ok(found) = stored::Found::read(kind, doc) else { continue };
            if crate::access::authorize(actor, list_operation(kind), found.opd.as_deref()).is_ok()
                && stored::visible_to(actor, &found)
            {
                out.push(found.versioned());
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// One document with its etag.
    pub fn get(&self, actor: &Actor, kind: Kind, id: &str) -> Result<Versioned, ManageError> {
        authorize(actor, get_operation(kind), None)?;
        let found = stored::find(&self.documents()?, kind, id)?;
        if !stored::visible_to(actor, &found) {
            return Err(ManageError::not_found(format!("there is no {kind} `{id}`")));
        }
        Ok(found.versioned())
    }

    /// Applies a change: authorized, checked against the whole resulting store, written, recorded.
    pub fn apply(&self, actor: &Actor, request: ChangeRequest) -> Result<Applied, ManageError> {
        let _ = (actor, request);
        Err(ManageError::unavailable("changes are not available yet"))
    }

    /// The recorded versions of a document, oldest first.
    pub fn history(&self, actor: &Actor, kind: Kind, id: &str) -> Result<Vec<HistoryEntry>, ManageError> {
        authorize(actor, Operation::History, None)?;
        let _ = (kind, id);
        Err(ManageError::unavailable("history is not available yet"))
    }

    /// The whole store as one signed bundle.
    pub fn export(&self, actor: &Actor) -> Result<Vec<u8>, ManageError> {
        authorize(actor, Operation::ExportStore, None)?;
        Err(ManageError::unavailable("export is not available yet"))
    }

    /// Replaces the live store with a verified bundle.
    pub fn import(&self, actor: &Actor, bundle: &[u8], reason: Option<String>) -> Result<Applied, ManageError> {
        authorize(actor, Operation::ImportStore, None)?;
        let _ = (bundle, reason);
        Err(ManageError::unavailable("import is not available yet"))
    }

    fn documents(&self) -> Result<Vec<StoredDocument>, ManageError> {
        self.store.list().map(|(docs, _)| docs).map_err(|e| ManageError::unavailable(e.to_string()))
    }
}

fn list_operation(kind: Kind) -> Operation {
    match kind {
        Kind::Opd => Operation::ListOpds,
        Kind::Service => Operation::ListServices,
        Kind::Client => Operation::ListClients,
        Kind::Grant => Operation::ListGrants,
        Kind::Tier => Operation::ListTiers,
        Kind::Operator => Operation::ListOperators,
    }
}

fn get_operation(kind: Kind) -> Operation {
    match kind {
        Kind::Opd => Operation::GetOpd,
        Kind::Service => Operation::GetService,
        Kind::Client => Operation::GetClient,
        Kind::Grant => Operation::GetGrant,
        Kind::Tier => Operation::GetTier,
        Kind::Operator => Operation::GetOperator,
    }
}

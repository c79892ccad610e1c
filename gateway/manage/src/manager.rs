//! [`Manager`]: the management plane's operations over one store. Every write is authorized against the
//! permission table (and an `opd_admin`'s OPD), checked against the whole resulting store with the gateway's
//! own compiler (every reason listed when refused, nothing written), recorded in the store's journal with the
//! operator, the reason and the before/after digests, and committed with its journal entries in one step on
//! the store generation it was prepared at ([`DocumentStore::commit`]). Reads return each document with its
//! etag. Writes are serialised within a process; between replicas sharing a Redis store, the commit's
//! compare-and-set lets exactly one of two concurrent changes win (the other is `store.conflict`, nothing
//! written). A certificate revocation on a shared store commits the CA's new revocation list and CRL with the
//! change, starting from the shared list, so two replicas revoking never lose each other's serials.

use std::sync::Mutex;

use penghubung_snapshot::store::journal::{digest_hex, DirJournal, Journal, JournalEntry};
use penghubung_snapshot::store::{check_key, CaLists, ChangeMeta, DocumentStore, Listing, StoredDocument};
use penghubung_types::config::{Config, StoreBackend};
use penghubung_types::diagnostics::Diagnostic;

use crate::access::{authorize, authorize_own, Actor, Operation};
use crate::change::{Applied, ChangeRequest, HistoryEntry, Kind, Versioned};
use crate::credentials::{Credentials, LoginFailure, TotpEnrolment};
use crate::error::ManageError;
use crate::plan::{self, Plan, Precondition};
use crate::workspace::Proposed;
use crate::{backup, ca, check, history, stored};

/// The management plane over the store of one config.
pub struct Manager {
    config: Config,
    store: Box<dyn DocumentStore>,
    /// Held for the whole of a write (read, check, journal, write).
    writing: Mutex<()>,
    /// The console's sign-in credentials (outside the store).
    credentials: Credentials,
}

impl Manager {
    /// Opens the store the config points at (a directory store must exist: `penghubung init` or `serve`
    /// creates it; a Redis store is reached on first use).
    pub fn open(config: &Config) -> Result<Manager, ManageError> {
        if config.store.backend == StoreBackend::Dir {
            let dir = config.store_dir();
            if !dir.is_dir() {
                return Err(ManageError::unavailable(format!("the store {} does not exist", dir.display())));
            }
        }
        Ok(Manager {
            config: config.clone(),
            store: penghubung_snapshot::store::open(config)?,
            writing: Mutex::new(()),
            credentials: Credentials::new(config.console_credentials_dir()),
        })
    }

    /// The config the manager was opened with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The operator a client certificate (DER) belongs to: the enabled operator whose document lists the
    /// certificate's SHA-256 fingerprint. The certificate chain itself is verified by the TLS layer; a
    /// certificate whose serial the CA revoked is refused here too.
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
        if let Some(dir) = ca::ca_dir(&self.config) {
            let serial = penghubung_tls::identity::PeerCertificate::parse(cert_der).map(|c| c.serial_hex());
            let mut revoked = std::fs::read_to_string(dir.join("revoked.txt")).unwrap_or_default();
            if let Some(shared) = self.store.shared_ca()? {
                revoked.push_str(&shared.revoked);
            }
            if serial.is_ok_and(|s| revoked.lines().any(|l| l.trim().eq_ignore_ascii_case(&s))) {
                return Err(ManageError::Unauthenticated { detail: "the certificate is revoked".into() });
            }
        }
        Ok(Actor { id: operator.id, name: operator.name, opd: operator.opd, roles: operator.roles })
    }

    /// The operator a console sign-in names, when its password and TOTP code (at `unix_seconds`) are right and
    /// it is enabled. Every failure costs one argon2id verification, known operator or not.
    pub fn authenticate_password(
        &self,
        username: &str,
        password: &str,
        code: &str,
        unix_seconds: u64,
    ) -> Result<Actor, LoginFailure> {
        let documents = self.documents().map_err(|_| LoginFailure::Unavailable)?;
        let Some(operator) = stored::operators(&documents).into_iter().find(|o| o.id == username) else {
            Credentials::burn(password);
            return Err(LoginFailure::UnknownUser);
        };
        if !operator.enabled {
            Credentials::burn(password);
            return Err(LoginFailure::Disabled);
        }
        self.credentials.verify(&operator.id, password, code, unix_seconds)?;
        Ok(Actor { id: operator.id, name: operator.name, opd: operator.opd, roles: operator.roles })
    }

    /// The actor of an operator id, when the operator exists and is enabled (a console session re-checks its
    /// operator on every request: a disabled operator's session ends at once, a changed role shows at once).
    pub fn operator_actor(&self, id: &str) -> Result<Actor, ManageError> {
        let operator = stored::operators(&self.documents()?)
            .into_iter()
            .find(|o| o.id == id)
            .ok_or_else(|| ManageError::Unauthenticated { detail: format!("there is no operator `{id}`") })?;
        if !operator.enabled {
            return Err(ManageError::Unauthenticated { detail: format!("operator `{}` is disabled", operator.id) });
        }
        Ok(Actor { id: operator.id, name: operator.name, opd: operator.opd, roles: operator.roles })
    }

    /// Sets an operator's console password (themself, or an admin for anyone); stored as argon2id, outside the
    /// store (see [`crate::credentials`]).
    pub fn set_password(&self, actor: &Actor, operator: &str, password: &str) -> Result<(), ManageError> {
        authorize_own(actor, Operation::SetOperatorPassword, operator)?;
        self.existing_operator(operator)?;
        self.credentials.set_password(operator, password)?;
        tracing::info!(target: "penghubung::manage", by = %actor.id, operator, "console password set");
        Ok(())
    }

    /// Enrols a new TOTP secret for an operator (themself, or an admin for anyone), replacing any before. The
    /// answer is the only time the secret leaves the server.
    pub fn enrol_totp(&self, actor: &Actor, operator: &str) -> Result<TotpEnrolment, ManageError> {
        authorize_own(actor, Operation::EnrolTotp, operator)?;
        self.existing_operator(operator)?;
        let enrolment = self.credentials.enrol_totp(operator)?;
        tracing::info!(target: "penghubung::manage", by = %actor.id, operator, "console TOTP secret enrolled");
        Ok(enrolment)
    }

    /// The console credentials (the test harness and the demo set them directly).
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    fn existing_operator(&self, id: &str) -> Result<(), ManageError> {
        if stored::operators(&self.documents()?).iter().any(|o| o.id == id) {
            Ok(())
        } else {
            Err(ManageError::not_found(format!("there is no operator `{id}`")))
        }
    }

    /// Every document of `kind` the actor may see (an `opd_admin` sees its own OPD's only), ordered by id.
    pub fn list(&self, actor: &Actor, kind: Kind) -> Result<Vec<Versioned>, ManageError> {
        authorize(actor, list_operation(kind), None)?;
        let mut out = Vec::new();
        for doc in self.documents()?.iter().filter(|d| Kind::of(d.kind) == Some(kind)) {
            let Ok(found) = stored::Found::read(kind, doc) else { continue };
            if stored::visible_to(actor, &found) {
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

    /// Applies a change: authorized, checked against the whole resulting store, recorded, written.
    pub fn apply(&self, actor: &Actor, request: ChangeRequest) -> Result<Applied, ManageError> {
        let operation = plan::operation_of(&request.change);
        crate::access::require_role(actor, operation)?;
        let reason = reason(operation, request.reason.as_deref())?;
        let _writing = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        let Listing { documents, generation, .. } = self.store.list_with_generation()?;
        let journal = self.journal()?;
        let now = now_rfc3339();
        let version_text = |kind: Kind, id: &str, version: u64| self.version_text(&documents, kind, id, version);
        let ctx = plan::Context {
            config: &self.config,
            documents: &documents,
            actor,
            reason: reason.as_deref(),
            now: &now,
            version_text: &version_text,
        };
        let plan = plan::plan(&ctx, &request.change)?;
        authorize(actor, plan.operation, plan.target_opd.as_deref())?;
        check_precondition(&plan, request.if_match.as_deref())?;
        self.check_whole_store(&documents, &plan.writes)?;
        let by = Attribution { actor, action: plan.operation.as_str(), reason: reason.as_deref(), now: &now };
        let mut entries = Vec::new();
        for (key, text) in &plan.writes {
            record(&journal, &by, &documents, key, text.as_deref(), &mut entries)?;
        }
        let mut meta = ChangeMeta { who: actor.id.clone(), action: by.action.to_string(), at: now.clone(), ca: None };
        match &plan.revoke_serial {
            Some(serial) => self.revoke(serial, &by, generation, &plan.writes, &mut entries, &mut meta)?,
            None => {
                self.store.commit(generation, &plan.writes, &entries, &meta)?;
            }
        }
        let etag = plan
            .main_key
            .as_ref()
            .and_then(|key| plan.writes.iter().find(|(k, _)| k == key))
            .and_then(|(_, text)| text.as_deref())
            .map(stored::etag);
        Ok(Applied { summary: plan.summary, id: plan.id, etag, certificate_pem: plan.certificate_pem })
    }

    /// The recorded versions of a document, oldest first; the current text, when no recorded change explains
    /// it, as a last `hand-edit` version.
    pub fn history(&self, actor: &Actor, kind: Kind, id: &str) -> Result<Vec<HistoryEntry>, ManageError> {
        authorize(actor, Operation::History, None)?;
        let documents = self.documents()?;
        let journal = self.journal()?;
        let key = history::key_of(&journal, &documents, kind, id)?;
        let current = documents.iter().find(|d| d.key == key);
        let entries = history::versions(&journal, &key, current)?;
        let answered: Vec<HistoryEntry> = entries.iter().map(|e| history::answer(kind, e)).collect();
        let last_opd = entries.iter().rev().find_map(|e| {
            let stored = StoredDocument {
                kind: kind.document_kind(),
                key: key.clone(),
                origin: key.clone(),
                text: e.text.clone()?,
            };
            stored::Found::read(kind, &stored).ok()
        });
        if last_opd.is_some_and(|found| !stored::visible_to(actor, &found)) {
            return Err(ManageError::not_found(format!("there is no {kind} `{id}`")));
        }
        Ok(answered)
    }

    /// The whole store as one signed bundle (see [`crate::backup`]).
    pub fn export(&self, actor: &Actor) -> Result<Vec<u8>, ManageError> {
        authorize(actor, Operation::ExportStore, None)?;
        let Listing { documents, generation, .. } = self.store.list_with_generation()?;
        backup::export(&self.config, &documents, &actor.id, generation, &now_rfc3339())
    }

    /// Replaces the live store with a verified bundle: its signature, its manifest and the whole store it holds
    /// are checked first; the previous store is kept beside it; each document it changes is recorded.
    pub fn import(&self, actor: &Actor, bundle: &[u8], reason: Option<String>) -> Result<Applied, ManageError> {
        authorize(actor, Operation::ImportStore, None)?;
        let reason = self::reason(Operation::ImportStore, reason.as_deref())?;
        let contents = backup::verify(&self.config, bundle)?;
        let _writing = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        let Listing { documents: current, generation, .. } = self.store.list_with_generation()?;
        let journal = self.journal()?;
        let imported: Vec<StoredDocument> = contents
            .documents
            .iter()
            .filter_map(|d| {
                let kind = check_key(&d.key).ok()?;
                let origin = self.store.origin(&d.key);
                Some(StoredDocument { kind, key: d.key.clone(), origin, text: d.text.clone() })
            })
            .collect();
        invalid_store(Some(check::every_problem(&self.config, &Proposed(imported.clone()))))?;
        let now = now_rfc3339();
        let mut changed: Vec<(String, Option<String>)> = Vec::new();
        for d in &imported {
            if current.iter().find(|c| c.key == d.key).map(|c| &c.text) != Some(&d.text) {
                changed.push((d.key.clone(), Some(d.text.clone())));
            }
        }
        for c in current.iter().filter(|c| !imported.iter().any(|d| d.key == c.key)) {
            changed.push((c.key.clone(), None));
        }
        let by = Attribution { actor, action: "import_store", reason: reason.as_deref(), now: &now };
        let mut entries = Vec::new();
        for (key, text) in &changed {
            record(&journal, &by, &current, key, text.as_deref(), &mut entries)?;
        }
        let kept = if self.config.store.backend == StoreBackend::Dir {
            // The folder is swapped whole, the previous one kept beside it.
            let stamp = now.replace([':', '-'], "");
            let kept = backup::replace_store(&self.config.store_dir(), &contents.documents, &stamp, |staging| {
                let staged = DirJournal::of_store(staging);
                for entry in &entries {
                    staged
                        .append(&mut entry.clone())
                        .map_err(|e| ManageError::unavailable(format!("the journal: {e}")))?;
                }
                Ok(())
            })?;
            format!("the previous store is kept at {}", kept.display())
        } else {
            // One commit replaces every document; the journal keeps every previous version.
            let meta = ChangeMeta { who: actor.id.clone(), action: by.action.into(), at: now.clone(), ca: None };
            let generation = self.store.commit(generation, &changed, &entries, &meta)?;
            format!("the previous versions stay in the journal (store generation {generation})")
        };
        Ok(Applied {
            summary: format!(
                "store imported: {} document(s) from the export of {} by `{}`, {} changed; {kept}",
                imported.len(),
                contents.exported_at,
                contents.exported_by,
                changed.len(),
            ),
            id: "store".into(),
            etag: None,
            certificate_pem: None,
        })
    }

    fn documents(&self) -> Result<Vec<StoredDocument>, ManageError> {
        Ok(self.store.list().map(|(docs, _)| docs)?)
    }

    /// The store's journal (both backends keep one).
    fn journal(&self) -> Result<Journal, ManageError> {
        self.store
            .journal()
            .ok_or_else(|| ManageError::unavailable(format!("{} keeps no journal", self.store.describe())))
    }

    /// The store this manager writes.
    pub fn store(&self) -> &dyn DocumentStore {
        &*self.store
    }

    /// The store key and text of version `version` of a document (for a rollback).
    fn version_text(
        &self,
        documents: &[StoredDocument],
        kind: Kind,
        id: &str,
        version: u64,
    ) -> Result<(String, Option<String>), ManageError> {
        let journal = self.journal()?;
        let key = history::key_of(&journal, documents, kind, id)?;
        let current = documents.iter().find(|d| d.key == key);
        let entries = history::versions(&journal, &key, current)?;
        let entry = entries
            .into_iter()
            .find(|e| e.version == version)
            .ok_or_else(|| ManageError::not_found(format!("{kind} `{id}` has no version {version}")))?;
        Ok((key, entry.text))
    }

    /// Refuses the change when the store with `writes` applied does not compile, with every reason.
    fn check_whole_store(
        &self,
        documents: &[StoredDocument],
        writes: &[(String, Option<String>)],
    ) -> Result<(), ManageError> {
        let mut proposed: Vec<StoredDocument> =
            documents.iter().filter(|d| !writes.iter().any(|(k, _)| *k == d.key)).cloned().collect();
        for (key, text) in writes {
            let kind = check_key(key).map_err(|e| ManageError::bad_request(e.to_string()))?;
            if let Some(text) = text {
                let origin = self.store.origin(key);
                proposed.push(StoredDocument { kind, key: key.clone(), origin, text: text.clone() });
            }
        }
        invalid_store(Some(check::every_problem(&self.config, &Proposed(proposed))))
    }

    /// Revokes `serial` with the gateway's CA and commits the change with its journal entry. A directory store
    /// leaves the revocation list to the CA's files: they are written first (a failed commit after that leaves
    /// the certificate revoked, never admitted). A shared store commits the new list and CRL with the change,
    /// built from the shared list (and this replica's file), then this replica's files are written too (the
    /// others write theirs when they follow the change).
    fn revoke(
        &self,
        serial: &str,
        by: &Attribution<'_>,
        generation: u64,
        writes: &[(String, Option<String>)],
        entries: &mut Vec<JournalEntry>,
        meta: &mut ChangeMeta,
    ) -> Result<(), ManageError> {
        let dir = ca::ca_dir(&self.config).ok_or_else(|| {
            ManageError::unavailable("the config has no [tls] client CA: there is no CA to revoke with")
        })?;
        let authority = ca::CertificateAuthority::open(&dir)
            .map_err(|e| ManageError::unavailable(format!("the gateway's CA cannot be opened: {e}")))?;
        let ca_error = |e: ca::CaError| match e {
            ca::CaError::Invalid(detail) => ManageError::bad_request(detail),
            other => ManageError::unavailable(other.to_string()),
        };
        let key = format!("{}/{serial}", penghubung_snapshot::store::journal::REVOCATIONS);
        let journal = self.journal()?;
        let version = journal.entries(&key).map_err(|e| ManageError::unavailable(format!("the journal: {e}")))?.len();
        entries.push(JournalEntry {
            version: version as u64 + 1,
            at: by.now.to_string(),
            who: by.actor.id.clone(),
            reason: by.reason.map(str::to_string),
            action: Operation::RevokeCertificate.as_str().into(),
            key,
            before: None,
            after: None,
            text: None,
        });
        let mut revoked = authority.revoked().map_err(ca_error)?;
        let shared = self.store.shared_ca()?;
        if let Some(shared) = &shared {
            for serial in ca::serials(&shared.revoked) {
                if !revoked.contains(&serial) {
                    revoked.push(serial);
                }
            }
        }
        let lists: CaLists = authority.revocation(&revoked, serial).map_err(ca_error)?;
        if self.config.store.backend == StoreBackend::Dir {
            authority.write_lists(&lists).map_err(ca_error)?;
            self.store.commit(generation, writes, entries, meta)?;
            return Ok(());
        }
        meta.ca = Some(lists.clone());
        self.store.commit(generation, writes, entries, meta)?;
        authority.write_lists(&lists).map_err(|e| {
            ManageError::unavailable(format!(
                "the revocation is committed to the shared store, but this replica's CRL file could not be written \
                 ({e}); it is written again when the replica follows the change"
            ))
        })
    }
}

/// Who made a change, what it was, why and when (for the journal).
struct Attribution<'a> {
    actor: &'a Actor,
    action: &'a str,
    reason: Option<&'a str>,
    now: &'a str,
}

/// Adds to `pending` the journal entry of one document's change (after a `hand-edit` entry for its current text
/// when no entry explains it, so that version stays in the history), numbered after the journal's and the
/// pending entries of the same key. The commit writes them with the change.
fn record(
    journal: &Journal,
    by: &Attribution<'_>,
    documents: &[StoredDocument],
    key: &str,
    text: Option<&str>,
    pending: &mut Vec<JournalEntry>,
) -> Result<(), ManageError> {
    let journal_error = |e: std::io::Error| ManageError::unavailable(format!("the journal: {e}"));
    let current = documents.iter().find(|d| d.key == key);
    let mut entries = journal.entries(key).map_err(journal_error)?;
    entries.extend(pending.iter().filter(|e| e.key == key).cloned());
    if let Some(hand_edit) = history::unexplained(&entries, key, current) {
        entries.push(hand_edit.clone());
        pending.push(hand_edit);
    }
    let entry = JournalEntry {
        version: entries.last().map_or(1, |e| e.version + 1),
        at: by.now.to_string(),
        who: by.actor.id.clone(),
        reason: by.reason.map(str::to_string),
        action: by.action.to_string(),
        key: key.to_string(),
        before: current.map(|d| digest_hex(&d.text)),
        after: text.map(digest_hex),
        text: text.map(str::to_string),
    };
    pending.push(entry);
    Ok(())
}

/// The longest reason kept.
const MAX_REASON: usize = 1000;

/// The trimmed reason, required for the operations that need one. A reason goes into the journal and the audit
/// trail, so it may not hold a NIK (or a number shaped like one).
fn reason(operation: Operation, given: Option<&str>) -> Result<Option<String>, ManageError> {
    let reason = given.map(str::trim).filter(|r| !r.is_empty()).map(str::to_string);
    match &reason {
        None if plan::needs_reason(operation) => Err(ManageError::bad_request(format!("`{operation}` needs a reason"))),
        Some(r) if r.len() > MAX_REASON => {
            Err(ManageError::bad_request(format!("a reason has at most {MAX_REASON} bytes")))
        }
        Some(r) if penghubung_types::nik_shape::holds_nik_shape(r.as_bytes()) => Err(ManageError::bad_request(
            "a reason must not hold a NIK (it is kept in the journal and the audit trail); describe the case instead",
        )),
        _ => Ok(reason),
    }
}

/// Every error of a store check as [`ManageError::InvalidStore`] (warnings do not refuse a change).
fn invalid_store(problems: Option<Vec<Diagnostic>>) -> Result<(), ManageError> {
    let errors: Vec<String> =
        problems.unwrap_or_default().iter().filter(|p| p.is_error()).map(ToString::to_string).collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ManageError::InvalidStore { problems: errors })
    }
}

/// Compares the `If-Match` etag (quoted or not, `W/` ignored, `*` matching any) with the plan's.
fn check_precondition(plan: &Plan, if_match: Option<&str>) -> Result<(), ManageError> {
    let normalise = |etag: &str| etag.trim().trim_start_matches("W/").trim_matches('"').to_string();
    let given = if_match.map(normalise);
    let (current, required) = match &plan.precondition {
        Precondition::None => return Ok(()),
        Precondition::Required(etag) => (normalise(etag), true),
        Precondition::IfGiven(etag) => (normalise(etag), false),
    };
    match given {
        None if required => Err(ManageError::PreconditionRequired {
            detail: format!(
                "changing `{}` needs the etag it was read at (If-Match); read it, then send the change",
                plan.id
            ),
        }),
        Some(given) if given != "*" && given != current => Err(ManageError::PreconditionFailed {
            detail: format!("`{}` changed since it was read (etag \"{current}\" now); read it again", plan.id),
        }),
        _ => Ok(()),
    }
}

/// Now as RFC 3339 (UTC, seconds).
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc())
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
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

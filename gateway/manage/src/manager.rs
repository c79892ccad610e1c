//! [`Manager`]: the management plane's operations over one store. Every write is authorized against the
//! permission table (and an `opd_admin`'s OPD), checked against the whole resulting store with the gateway's
//! own compiler (every reason listed when refused, nothing written), recorded in the store's journal with the
//! operator, the reason and the before/after digests, and written atomically. Reads return each document with
//! its etag. Writes are serialised: an etag checked is the etag overwritten.

use std::sync::Mutex;

use penghubung_snapshot::store::journal::{digest_hex, Journal, JournalEntry};
use penghubung_snapshot::store::{check_key, DirStore, DocumentStore, StoredDocument};
use penghubung_types::config::Config;
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
    store: DirStore,
    journal: Journal,
    /// Held for the whole of a write (read, check, journal, write).
    writing: Mutex<()>,
    /// The console's sign-in credentials (outside the store).
    credentials: Credentials,
}

impl Manager {
    /// Opens the store the config points at (it must exist: `penghubung init` or `serve` creates it).
    pub fn open(config: &Config) -> Result<Manager, ManageError> {
        let dir = config.store_dir();
        if !dir.is_dir() {
            return Err(ManageError::unavailable(format!("the store {} does not exist", dir.display())));
        }
        Ok(Manager {
            config: config.clone(),
            journal: Journal::of_store(&dir),
            store: DirStore::new(dir),
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
            let revoked = std::fs::read_to_string(dir.join("revoked.txt")).unwrap_or_default();
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
        let documents = self.documents()?;
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
        if let Some(serial) = &plan.revoke_serial {
            self.revoke(actor, serial, reason.as_deref(), &now)?;
        }
        self.write(actor, &documents, &plan, reason.as_deref(), &now)?;
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
        let key = history::key_of(&self.journal, &documents, kind, id)?;
        let current = documents.iter().find(|d| d.key == key);
        let entries = history::versions(&self.journal, &key, current)?;
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
        let documents = self.documents()?;
        let generation = self.journal.len().map_err(|e| ManageError::unavailable(format!("the journal: {e}")))?;
        backup::export(&self.config, &documents, &actor.id, generation as u64, &now_rfc3339())
    }

    /// Replaces the live store with a verified bundle: its signature, its manifest and the whole store it holds
    /// are checked first; the previous store is kept beside it; each document it changes is recorded.
    pub fn import(&self, actor: &Actor, bundle: &[u8], reason: Option<String>) -> Result<Applied, ManageError> {
        authorize(actor, Operation::ImportStore, None)?;
        let reason = self::reason(Operation::ImportStore, reason.as_deref())?;
        let contents = backup::verify(&self.config, bundle)?;
        let _writing = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.documents()?;
        let imported: Vec<StoredDocument> = contents
            .documents
            .iter()
            .filter_map(|d| {
                let kind = check_key(&d.key).ok()?;
                let origin = self.store.root().join(&d.key).display().to_string();
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
        let stamp = now.replace([':', '-'], "");
        let kept = backup::replace_store(self.store.root(), &contents.documents, &stamp, |staging| {
            let journal = Journal::of_store(staging);
            for (key, text) in &changed {
                let by = Attribution { actor, action: "import_store", reason: reason.as_deref(), now: &now };
                record(&journal, &by, &current, key, text.as_deref())?;
            }
            Ok(())
        })?;
        Ok(Applied {
            summary: format!(
                "store imported: {} document(s) from the export of {} by `{}`, {} changed; the previous store is \
                 kept at {}",
                imported.len(),
                contents.exported_at,
                contents.exported_by,
                changed.len(),
                kept.display()
            ),
            id: "store".into(),
            etag: None,
            certificate_pem: None,
        })
    }

    fn documents(&self) -> Result<Vec<StoredDocument>, ManageError> {
        self.store.list().map(|(docs, _)| docs).map_err(|e| ManageError::unavailable(e.to_string()))
    }

    /// The store key and text of version `version` of a document (for a rollback).
    fn version_text(
        &self,
        documents: &[StoredDocument],
        kind: Kind,
        id: &str,
        version: u64,
    ) -> Result<(String, Option<String>), ManageError> {
        let key = history::key_of(&self.journal, documents, kind, id)?;
        let current = documents.iter().find(|d| d.key == key);
        let entries = history::versions(&self.journal, &key, current)?;
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
                let origin = self.store.root().join(key).display().to_string();
                proposed.push(StoredDocument { kind, key: key.clone(), origin, text: text.clone() });
            }
        }
        invalid_store(Some(check::every_problem(&self.config, &Proposed(proposed))))
    }

    /// Records and writes the plan's documents in order; a write that fails takes its journal entry back.
    fn write(
        &self,
        actor: &Actor,
        documents: &[StoredDocument],
        plan: &Plan,
        reason: Option<&str>,
        now: &str,
    ) -> Result<(), ManageError> {
        for (key, text) in &plan.writes {
            let by = Attribution { actor, action: plan.operation.as_str(), reason, now };
            let entry = record(&self.journal, &by, documents, key, text.as_deref())?;
            let written = match text {
                Some(text) => self.store.put(key, text),
                None => self.store.delete(key),
            };
            if let Err(e) = written {
                let _ = self.journal.remove(&entry);
                return Err(ManageError::unavailable(format!("the store: {e}")));
            }
        }
        Ok(())
    }

    /// Revokes a serial with the gateway's CA (CRL rewritten) and records it in the journal.
    fn revoke(&self, actor: &Actor, serial: &str, reason: Option<&str>, now: &str) -> Result<(), ManageError> {
        let dir = ca::ca_dir(&self.config).ok_or_else(|| {
            ManageError::unavailable("the config has no [tls] client CA: there is no CA to revoke with")
        })?;
        let authority = ca::CertificateAuthority::open(&dir)
            .map_err(|e| ManageError::unavailable(format!("the gateway's CA cannot be opened: {e}")))?;
        let mut entry = JournalEntry {
            version: 0,
            at: now.to_string(),
            who: actor.id.clone(),
            reason: reason.map(str::to_string),
            action: Operation::RevokeCertificate.as_str().into(),
            key: format!("{}/{serial}", penghubung_snapshot::store::journal::REVOCATIONS),
            before: None,
            after: None,
            text: None,
        };
        let path =
            self.journal.append(&mut entry).map_err(|e| ManageError::unavailable(format!("the journal: {e}")))?;
        authority.revoke(serial).map_err(|e| {
            let _ = self.journal.remove(&path);
            match e {
                ca::CaError::Invalid(detail) => ManageError::bad_request(detail),
                other => ManageError::unavailable(other.to_string()),
            }
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

/// Appends the journal entry of one document's change (after a `hand-edit` entry for its current text when no
/// entry explains it, so that version stays in the history). Returns the entry's file.
fn record(
    journal: &Journal,
    by: &Attribution<'_>,
    documents: &[StoredDocument],
    key: &str,
    text: Option<&str>,
) -> Result<std::path::PathBuf, ManageError> {
    let journal_error = |e: std::io::Error| ManageError::unavailable(format!("the journal: {e}"));
    let current = documents.iter().find(|d| d.key == key);
    let entries = journal.entries(key).map_err(journal_error)?;
    if let Some(mut hand_edit) = history::unexplained(&entries, key, current) {
        journal.append(&mut hand_edit).map_err(journal_error)?;
    }
    let mut entry = JournalEntry {
        version: 0,
        at: by.now.to_string(),
        who: by.actor.id.clone(),
        reason: by.reason.map(str::to_string),
        action: by.action.to_string(),
        key: key.to_string(),
        before: current.map(|d| digest_hex(&d.text)),
        after: text.map(digest_hex),
        text: text.map(str::to_string),
    };
    journal.append(&mut entry).map_err(journal_error)
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

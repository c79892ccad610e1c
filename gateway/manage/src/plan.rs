//! What each [`Change`] writes: [`plan`] turns a change into a [`Plan`] (the operation it is, the OPD it
//! touches, the documents it writes or removes, the etag it must match, and for the CA the certificate it issues
//! or the serial it revokes). Planning reads the store and the CA but writes nothing; the manager authorizes,
//! checks the whole resulting store, then writes.

use penghubung_policy::lifecycle::{self, ApprovalKind, Transition};
use penghubung_snapshot::store::StoredDocument;
use penghubung_tls::identity::canonical_fingerprint;
use penghubung_types::config::Config;
use penghubung_types::documents::{Approval, Approvals, ClientDoc, OperatorDoc, ServiceDoc, ServiceStatus};

use crate::access::{Actor, Operation};
use crate::ca::{self, CertificateAuthority, CsrSubject, Validity};
use crate::change::{Change, Kind};
use crate::error::ManageError;
use crate::import::{self, ImportSpec};
use crate::stored::{self, Found};

/// The longest validity of a certificate issued through the management plane (the CA/Browser Forum's old
/// maximum, as `ca issue-server` uses).
pub const MAX_CERTIFICATE_DAYS: u32 = 825;

/// How a change treats the `If-Match` etag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Precondition {
    /// A new document: nothing to match.
    None,
    /// A whole-document replacement: the etag of the current text is required.
    Required(String),
    /// A transition or field change: checked against the current text's etag when given.
    IfGiven(String),
}

/// A change, ready to be checked and written.
#[derive(Debug)]
pub struct Plan {
    pub operation: Operation,
    /// The OPD the change touches (the scope an `opd_admin` is held to).
    pub target_opd: Option<String>,
    pub kind: Option<Kind>,
    /// The id of the document changed (or the serial revoked).
    pub id: String,
    /// The store key of the main document (its etag is answered).
    pub main_key: Option<String>,
    /// Documents to write (`Some(text)`) or remove (`None`), in order.
    pub writes: Vec<(String, Option<String>)>,
    pub precondition: Precondition,
    pub summary: String,
    pub certificate_pem: Option<String>,
    /// A serial to revoke (hex) once the change is accepted.
    pub revoke_serial: Option<String>,
}

impl Plan {
    fn new(operation: Operation, kind: Kind, id: impl Into<String>, target_opd: Option<String>) -> Plan {
        Plan {
            operation,
            target_opd,
            kind: Some(kind),
            id: id.into(),
            main_key: None,
            writes: Vec::new(),
            precondition: Precondition::None,
            summary: String::new(),
            certificate_pem: None,
            revoke_serial: None,
        }
    }

    fn write(mut self, key: &str, text: Option<String>) -> Plan {
        self.main_key = Some(key.to_string());
        self.writes.push((key.to_string(), text));
        self
    }

    fn replacing(mut self, found: &Found) -> Plan {
        self.precondition = Precondition::Required(stored::etag(&found.stored.text));
        self
    }

    fn editing(mut self, found: &Found) -> Plan {
        self.precondition = Precondition::IfGiven(stored::etag(&found.stored.text));
        self
    }

    fn summary(mut self, summary: impl Into<String>) -> Plan {
        self.summary = summary.into();
        self
    }
}

/// The operation a change is (the permission table's key).
pub fn operation_of(change: &Change) -> Operation {
    match change {
        Change::CreateOpd(_) => Operation::CreateOpd,
        Change::UpdateOpd(_) => Operation::UpdateOpd,
        Change::CreateService(_) => Operation::CreateService,
        Change::UpdateService(_) => Operation::UpdateService,
        Change::ImportOpenApi { .. } => Operation::ImportOpenApi,
        Change::Submit { .. } => Operation::SubmitService,
        Change::Approve { kind: ApprovalKind::Operations, .. } => Operation::ApproveOperations,
        Change::Approve { kind: ApprovalKind::Security, .. } => Operation::ApproveSecurity,
        Change::Withdraw { .. } => Operation::WithdrawApproval,
        Change::Suspend { .. } => Operation::SuspendService,
        Change::Resume { .. } => Operation::ResumeService,
        Change::Retire { .. } => Operation::RetireService,
        Change::CreateClient(_) => Operation::CreateClient,
        Change::SetClearance { .. } => Operation::SetClearance,
        Change::SetClientEnabled { .. } => Operation::SetClientEnabled,
        Change::IssueClientCertificate { .. } => Operation::IssueClientCertificate,
        Change::RevokeCertificate { .. } => Operation::RevokeCertificate,
        Change::AddGrant(_) => Operation::AddGrant,
        Change::RevokeGrant { .. } => Operation::RevokeGrant,
        Change::PutTier(_) => Operation::PutTier,
        Change::DeleteTier { .. } => Operation::DeleteTier,
        Change::CreateOperator(_) => Operation::CreateOperator,
        Change::UpdateOperator(_) => Operation::UpdateOperator,
        Change::IssueOperatorCertificate { .. } => Operation::IssueOperatorCertificate,
        Change::Rollback { .. } => Operation::Rollback,
    }
}

/// Operations that need a reason (kept in the journal and the audit trail).
pub fn needs_reason(op: Operation) -> bool {
    matches!(
        op,
        Operation::ApproveOperations
            | Operation::ApproveSecurity
            | Operation::WithdrawApproval
            | Operation::SuspendService
            | Operation::ResumeService
            | Operation::RetireService
            | Operation::RevokeCertificate
            | Operation::RevokeGrant
            | Operation::Rollback
            | Operation::ImportStore
    )
}

/// Finds the store key and text (none: removed) of a version of a document: `(kind, id, version)`.
pub type VersionText<'a> = dyn Fn(Kind, &str, u64) -> Result<(String, Option<String>), ManageError> + 'a;

/// What the planner reads.
pub struct Context<'a> {
    pub config: &'a Config,
    pub documents: &'a [StoredDocument],
    pub actor: &'a Actor,
    /// The change's reason, already required where [`needs_reason`] says so.
    pub reason: Option<&'a str>,
    pub now: &'a str,
    /// The text of a version of a document, for rollbacks: `(key, version)` → the text (none: removed).
    pub version_text: &'a VersionText<'a>,
}

/// Plans `change` (see the module doc).
pub fn plan(ctx: &Context<'_>, change: &Change) -> Result<Plan, ManageError> {
    let op = operation_of(change);
    let find = |kind: Kind, id: &str| stored::find(ctx.documents, kind, id);
    let exists = |kind: Kind, id: &str| find(kind, id).is_ok();
    let created = |what: &str| format!("# Created by operator `{}` on {} ({what}).\n", ctx.actor.id, ctx.now);
    Ok(match change {
        Change::CreateOpd(doc) => {
            if exists(Kind::Opd, &doc.id) {
                return Err(ManageError::conflict(format!("OPD `{}` exists", doc.id)));
            }
            let text = created("create_opd") + &to_toml(doc)?;
            Plan::new(op, Kind::Opd, &doc.id, Some(doc.id.clone()))
                .write(&format!("opds/{}.toml", doc.id), Some(text))
                .summary(format!("OPD `{}` created", doc.id))
        }
        Change::UpdateOpd(doc) => {
            let found = find(Kind::Opd, &doc.id)?;
            Plan::new(op, Kind::Opd, &doc.id, Some(doc.id.clone()))
                .replacing(&found)
                .write(&found.stored.key, Some(to_toml(doc)?))
                .summary(format!("OPD `{}` updated", doc.id))
        }
        Change::CreateService(doc) => {
            let id = doc.key();
            if exists(Kind::Service, &id) {
                return Err(ManageError::conflict(format!("service `{id}` exists")));
            }
            if doc.status != ServiceStatus::Draft
                || !doc.approvals.is_empty()
                || doc.submitted_by.is_some()
                || doc.status_reason.is_some()
            {
                return Err(ManageError::bad_request(format!(
                    "a new service is a draft without approvals; `{id}` moves on with submit and the two approvals"
                )));
            }
            let text = created("create_service") + &to_toml(doc)?;
            Plan::new(op, Kind::Service, &id, Some(doc.opd.clone()))
                .write(&import::service_key(&doc.opd, &doc.name, doc.version), Some(text))
                .summary(format!("service `{id}` created as a draft"))
        }
        Change::UpdateService(doc) => {
            let id = doc.key();
            let found = find(Kind::Service, &id)?;
            let current: ServiceDoc = parse(&found)?;
            let mut updated = doc.clone();
            updated.status = current.status;
            updated.approvals = current.approvals;
            updated.status_reason = current.status_reason;
            updated.submitted_by = current.submitted_by;
            Plan::new(op, Kind::Service, &id, Some(doc.opd.clone()))
                .replacing(&found)
                .write(&found.stored.key, Some(to_toml(&updated)?))
                .summary(format!("service `{id}` updated (status {})", updated.status))
        }
        Change::ImportOpenApi { opd, name, version, document, upstream, classification } => {
            let id = format!("{opd}/{name}/v{version}");
            let existing = find(Kind::Service, &id).ok();
            let current = existing.as_ref().map(parse::<ServiceDoc>).transpose()?;
            let source = format!("the management plane by operator `{}`", ctx.actor.id);
            let spec = ImportSpec {
                opd,
                name,
                version: *version,
                upstream: upstream.as_deref(),
                classification: *classification,
                source: &source,
            };
            let existing_pair = existing.as_ref().zip(current.as_ref()).map(|(f, d)| (f.stored.key.as_str(), d));
            let planned = import::plan(&spec, document, existing_pair, ctx.now).map_err(ManageError::bad_request)?;
            let mut plan = Plan::new(op, Kind::Service, &id, Some(opd.clone()));
            if let Some(found) = &existing {
                plan = plan.replacing(found);
            }
            plan.main_key = Some(planned.service_key);
            plan.writes = planned.writes;
            plan.summary(planned.summary)
        }
        Change::Submit { service } => transition(ctx, op, service, Transition::Submit)?,
        Change::Approve { service, kind } => {
            let found = find(Kind::Service, service)?;
            let doc: ServiceDoc = parse(&found)?;
            let other = match kind {
                ApprovalKind::Operations => doc.approvals.security.as_ref(),
                ApprovalKind::Security => doc.approvals.operations.as_ref(),
            };
            if other.is_some_and(|o| o.by == ctx.actor.id) {
                return Err(ManageError::forbidden(format!(
                    "operator `{}` already gave the other approval of `{service}`; the operations and security \
                     approvals come from two different operators",
                    ctx.actor.id
                )));
            }
            if *kind == ApprovalKind::Security && doc.submitted_by.as_deref() == Some(ctx.actor.id.as_str()) {
                return Err(ManageError::forbidden(format!(
                    "operator `{}` submitted `{service}`; its security approval must come from another operator",
                    ctx.actor.id
                )));
            }
            let approval = Approval {
                by: ctx.actor.id.clone(),
                at: ctx.now.to_string(),
                reason: ctx.reason.unwrap_or_default().to_string(),
            };
            transition(ctx, op, service, Transition::Approve { kind: *kind, approval })?
        }
        Change::Withdraw { service, kind } => {
            if !ctx.actor.has(kind.role()) {
                return Err(ManageError::forbidden(format!(
                    "withdrawing the {} approval needs the role `{}`",
                    kind.as_str(),
                    kind.role()
                )));
            }
            transition(ctx, op, service, Transition::Withdraw { kind: *kind })?
        }
        Change::Suspend { service } => {
            let reason = ctx.reason.unwrap_or_default().to_string();
            transition(ctx, op, service, Transition::Suspend { reason })?
        }
        Change::Resume { service } => transition(ctx, op, service, Transition::Resume)?,
        Change::Retire { service } => {
            let reason = ctx.reason.unwrap_or_default().to_string();
            transition(ctx, op, service, Transition::Retire { reason })?
        }
        Change::CreateClient(doc) => {
            if exists(Kind::Client, &doc.id) {
                return Err(ManageError::conflict(format!("client `{}` exists", doc.id)));
            }
            let text = created("create_client") + &to_toml(doc)?;
            Plan::new(op, Kind::Client, &doc.id, Some(doc.opd.clone()))
                .write(&format!("clients/{}.toml", doc.id), Some(text))
                .summary(format!("client `{}` created", doc.id))
        }
        Change::SetClearance { client, clearance } => {
            let found = find(Kind::Client, client)?;
            let before: ClientDoc = parse(&found)?;
            let mut edit = edit(&found)?;
            edit["clearance"] = toml_edit::value(clearance.as_str());
            Plan::new(op, Kind::Client, client, found.opd.clone())
                .editing(&found)
                .write(&found.stored.key, Some(edit.to_string()))
                .summary(format!("client `{client}`: clearance {} → {clearance}", before.clearance))
        }
        Change::SetClientEnabled { client, enabled } => {
            let found = find(Kind::Client, client)?;
            let mut edit = edit(&found)?;
            edit["enabled"] = toml_edit::value(*enabled);
            let state = if *enabled { "enabled" } else { "disabled: its calls are refused from the next request on" };
            Plan::new(op, Kind::Client, client, found.opd.clone())
                .editing(&found)
                .write(&found.stored.key, Some(edit.to_string()))
                .summary(format!("client `{client}` {state}"))
        }
        Change::IssueClientCertificate { client, csr_pem, days } => {
            let found = find(Kind::Client, client).map_err(|_| {
                ManageError::not_found(format!(
                    "there is no client `{client}`; create it first (its OPD must be registered)"
                ))
            })?;
            let doc: ClientDoc = parse(&found)?;
            let app = doc.id.strip_prefix(&format!("{}/", doc.opd)).unwrap_or(&doc.id).to_string();
            let subject = CsrSubject::Client { opd: &doc.opd, app: &app };
            let signed = sign(ctx.config, csr_pem, &subject, *days)?;
            let text = add_fingerprint(&found, &signed.fingerprint_sha256)?;
            let mut plan = Plan::new(op, Kind::Client, client, Some(doc.opd.clone()))
                .editing(&found)
                .write(&found.stored.key, Some(text))
                .summary(format!(
                    "client `{client}`: certificate issued (serial {}, SHA-256 {}), valid {days} day(s)",
                    signed.serial_hex, signed.fingerprint_sha256
                ));
            plan.certificate_pem = Some(signed.cert_pem);
            plan
        }
        Change::RevokeCertificate { serial_hex } => {
            let serial = serial_hex.trim().trim_start_matches("0x").replace(':', "").to_ascii_lowercase();
            if serial.is_empty() || serial.len() % 2 != 0 || !serial.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ManageError::bad_request(format!("`{serial_hex}` is not a hexadecimal serial number")));
            }
            let mut plan = Plan::new(op, Kind::Client, &serial, None)
                .summary(format!("certificate {serial} revoked; refused from the next request on"));
            plan.kind = None;
            plan.revoke_serial = Some(serial);
            plan
        }
        Change::AddGrant(doc) => {
            if exists(Kind::Grant, &doc.id) {
                return Err(ManageError::conflict(format!(
                    "grant `{}` exists; revoke it first or pick another id",
                    doc.id
                )));
            }
            let service_opd = doc.service.split('/').next().unwrap_or_default().to_string();
            let text = created("add_grant") + &to_toml(doc)?;
            Plan::new(op, Kind::Grant, &doc.id, Some(service_opd))
                .write(&format!("grants/{}.toml", doc.id), Some(text))
                .summary(format!(
                    "grant `{}`: {} may call {} of {}",
                    doc.id,
                    doc.client,
                    doc.operations.join(", "),
                    doc.service
                ))
        }
        Change::RevokeGrant { id } => {
            let found = find(Kind::Grant, id)?;
            Plan::new(op, Kind::Grant, id, found.opd.clone())
                .editing(&found)
                .write(&found.stored.key, None)
                .summary(format!("grant `{id}` revoked: its calls are refused from the next request on"))
        }
        Change::PutTier(doc) => {
            let mut plan = Plan::new(op, Kind::Tier, &doc.id, None);
            let key = match find(Kind::Tier, &doc.id) {
                Ok(found) => {
                    plan = plan.replacing(&found);
                    found.stored.key
                }
                Err(_) => format!("tiers/{}.toml", doc.id),
            };
            plan.write(&key, Some(to_toml(doc)?)).summary(format!("tier `{}` written", doc.id))
        }
        Change::DeleteTier { id } => {
            let found = find(Kind::Tier, id)?;
            Plan::new(op, Kind::Tier, id, None)
                .editing(&found)
                .write(&found.stored.key, None)
                .summary(format!("tier `{id}` deleted"))
        }
        Change::CreateOperator(doc) => {
            if exists(Kind::Operator, &doc.id) {
                return Err(ManageError::conflict(format!("operator `{}` exists", doc.id)));
            }
            let mut doc = doc.clone();
            canonical_fingerprints(&mut doc);
            let text = created("create_operator") + &to_toml(&doc)?;
            Plan::new(op, Kind::Operator, &doc.id, Some(doc.opd.clone()))
                .write(&format!("operators/{}.toml", doc.id), Some(text))
                .summary(format!(
                    "operator `{}` created with role(s) {}",
                    doc.id,
                    doc.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
                ))
        }
        Change::UpdateOperator(doc) => {
            let found = find(Kind::Operator, &doc.id)?;
            let current: OperatorDoc = parse(&found)?;
            let mut doc = doc.clone();
            canonical_fingerprints(&mut doc);
            if doc.password_hash.is_none() {
                doc.password_hash = current.password_hash;
            }
            Plan::new(op, Kind::Operator, &doc.id, Some(doc.opd.clone()))
                .replacing(&found)
                .write(&found.stored.key, Some(to_toml(&doc)?))
                .summary(format!("operator `{}` updated", doc.id))
        }
        Change::IssueOperatorCertificate { operator, csr_pem, days } => {
            let found = find(Kind::Operator, operator)?;
            let doc: OperatorDoc = parse(&found)?;
            let subject = CsrSubject::Operator { id: &doc.id, opd: &doc.opd };
            let signed = sign(ctx.config, csr_pem, &subject, *days)?;
            let text = add_fingerprint(&found, &signed.fingerprint_sha256)?;
            let mut plan = Plan::new(op, Kind::Operator, operator, Some(doc.opd.clone()))
                .editing(&found)
                .write(&found.stored.key, Some(text))
                .summary(format!(
                    "operator `{operator}`: certificate issued (serial {}, SHA-256 {}), valid {days} day(s)",
                    signed.serial_hex, signed.fingerprint_sha256
                ));
            plan.certificate_pem = Some(signed.cert_pem);
            plan
        }
        Change::Rollback { kind, id, version } => {
            let (key, text) = (ctx.version_text)(*kind, id, *version)?;
            let current = find(*kind, id).ok();
            if current.as_ref().map(|c| &c.stored.text) == text.as_ref() {
                return Err(ManageError::conflict(format!("{kind} `{id}` is already as in version {version}")));
            }
            let opd = match (&current, &text) {
                (Some(found), _) => found.opd.clone(),
                (None, Some(text)) => {
                    let stored = StoredDocument {
                        kind: kind.document_kind(),
                        key: key.clone(),
                        origin: key.clone(),
                        text: text.clone(),
                    };
                    Found::read(*kind, &stored).ok().and_then(|f| f.opd)
                }
                (None, None) => None,
            };
            let mut plan = Plan::new(op, *kind, id, opd);
            if let Some(found) = &current {
                plan = plan.replacing(found);
            }
            let what = if text.is_some() { "restored" } else { "removed, as it was" };
            plan.write(&key, text).summary(format!("{kind} `{id}` {what} at version {version}"))
        }
    })
}

/// A lifecycle transition of the service `id`, written with `toml_edit` (comments and layout kept).
fn transition(ctx: &Context<'_>, op: Operation, id: &str, transition: Transition) -> Result<Plan, ManageError> {
    let found = stored::find(ctx.documents, Kind::Service, id)?;
    let doc: ServiceDoc = parse(&found)?;
    let (status, approvals, reason) = lifecycle::apply(&doc, &transition).map_err(ManageError::conflict)?;
    let mut edit = edit(&found)?;
    edit["status"] = toml_edit::value(status.as_str());
    match &reason {
        Some(reason) => edit["status_reason"] = toml_edit::value(reason.as_str()),
        None => {
            edit.remove("status_reason");
        }
    }
    if transition == Transition::Submit {
        edit["submitted_by"] = toml_edit::value(ctx.actor.id.as_str());
    }
    write_approvals(&mut edit, &approvals);
    Ok(Plan::new(op, Kind::Service, id, Some(doc.opd.clone()))
        .editing(&found)
        .write(&found.stored.key, Some(edit.to_string()))
        .summary(format!("{id}: {} → {status}", doc.status)))
}

/// Writes the approvals table: each present approval as a table, an absent one removed.
fn write_approvals(edit: &mut toml_edit::DocumentMut, approvals: &Approvals) {
    if approvals.is_empty() {
        edit.remove("approvals");
        return;
    }
    if !edit.contains_key("approvals") {
        let mut table = toml_edit::Table::new();
        table.set_implicit(true);
        edit["approvals"] = toml_edit::Item::Table(table);
    }
    for (kind, approval) in [("operations", &approvals.operations), ("security", &approvals.security)] {
        match approval {
            Some(approval) => {
                let mut table = toml_edit::Table::new();
                table["by"] = toml_edit::value(approval.by.as_str());
                table["at"] = toml_edit::value(approval.at.as_str());
                table["reason"] = toml_edit::value(approval.reason.as_str());
                edit["approvals"][kind] = toml_edit::Item::Table(table);
            }
            None => {
                if let Some(table) = edit["approvals"].as_table_mut() {
                    table.remove(kind);
                }
            }
        }
    }
}

/// Signs a CSR with the gateway's CA.
fn sign(config: &Config, csr_pem: &str, subject: &CsrSubject<'_>, days: u32) -> Result<ca::SignedCsr, ManageError> {
    if days == 0 || days > MAX_CERTIFICATE_DAYS {
        return Err(ManageError::bad_request(format!(
            "a certificate is valid for 1 to {MAX_CERTIFICATE_DAYS} days, not {days}"
        )));
    }
    let dir = ca::ca_dir(config)
        .ok_or_else(|| ManageError::unavailable("the config has no [tls] client CA: there is no CA to sign with"))?;
    let authority = CertificateAuthority::open(&dir)
        .map_err(|e| ManageError::unavailable(format!("the gateway's CA cannot be opened: {e}")))?;
    authority.sign_csr(csr_pem, subject, Validity::days(i64::from(days))).map_err(|e| match e {
        ca::CaError::Invalid(detail) => ManageError::bad_request(detail),
        other => ManageError::unavailable(other.to_string()),
    })
}

/// The document's text with `fingerprint` added to `identity.fingerprint_sha256`.
fn add_fingerprint(found: &Found, fingerprint: &str) -> Result<String, ManageError> {
    let mut edit = edit(found)?;
    if !edit.contains_key("identity") {
        edit["identity"] = toml_edit::Item::Table(toml_edit::Table::new());
    }
    let identity = edit["identity"]
        .as_table_like_mut()
        .ok_or_else(|| ManageError::bad_request(format!("{}: `identity` is not a table", found.stored.key)))?;
    if identity.get("fingerprint_sha256").is_none() {
        identity.insert("fingerprint_sha256", toml_edit::value(toml_edit::Array::new()));
    }
    let list = identity
        .get_mut("fingerprint_sha256")
        .and_then(|item| item.as_array_mut())
        .ok_or_else(|| ManageError::bad_request(format!("{}: `fingerprint_sha256` is not a list", found.stored.key)))?;
    if !list.iter().any(|v| v.as_str() == Some(fingerprint)) {
        list.push(fingerprint);
    }
    Ok(edit.to_string())
}

fn canonical_fingerprints(doc: &mut OperatorDoc) {
    for fingerprint in &mut doc.identity.fingerprint_sha256 {
        *fingerprint = canonical_fingerprint(fingerprint);
    }
}

fn to_toml<T: serde::Serialize>(doc: &T) -> Result<String, ManageError> {
    toml::to_string(doc).map_err(|e| ManageError::bad_request(format!("the document cannot be written: {e}")))
}

fn parse<T: serde::de::DeserializeOwned>(found: &Found) -> Result<T, ManageError> {
    toml::from_str(&found.stored.text)
        .map_err(|e| ManageError::InvalidStore { problems: vec![format!("{}: {}", found.stored.origin, e.message())] })
}

fn edit(found: &Found) -> Result<toml_edit::DocumentMut, ManageError> {
    found.stored.text.parse().map_err(|e: toml_edit::TomlError| ManageError::InvalidStore {
        problems: vec![format!("{}: {}", found.stored.origin, e.message())],
    })
}

//! Who may do what: the [`Actor`] (an authenticated operator), every [`Operation`] of the management plane, and
//! the ONE permission table ([`PERMISSIONS`]) keyed by it. Deny unless listed; an `opd_admin` is further held to
//! its own OPD ([`authorize`]). The admin API's route table names an operation per route and takes the roles
//! from here.

use penghubung_types::documents::Role;

use crate::error::ManageError;

/// An authenticated operator, as the operations see it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Actor {
    /// The operator's id (`rudi-aptika`): what approvals and the audit trail record.
    pub id: String,
    pub name: String,
    pub opd: String,
    pub roles: Vec<Role>,
}

impl Actor {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// Every operation the management plane offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    ListOpds,
    GetOpd,
    CreateOpd,
    UpdateOpd,
    ListServices,
    GetService,
    CreateService,
    UpdateService,
    ImportOpenApi,
    SubmitService,
    ApproveOperations,
    ApproveSecurity,
    WithdrawApproval,
    SuspendService,
    ResumeService,
    RetireService,
    ListClients,
    GetClient,
    CreateClient,
    SetClearance,
    SetClientEnabled,
    IssueClientCertificate,
    RevokeCertificate,
    ListGrants,
    GetGrant,
    AddGrant,
    RevokeGrant,
    ListTiers,
    GetTier,
    PutTier,
    DeleteTier,
    ListOperators,
    GetOperator,
    CreateOperator,
    UpdateOperator,
    IssueOperatorCertificate,
    /// The console password of an operator (an admin's for anyone, everyone's own: [`authorize_own`]).
    SetOperatorPassword,
    /// The console TOTP secret of an operator (as [`Operation::SetOperatorPassword`]).
    EnrolTotp,
    History,
    Rollback,
    ExportStore,
    ImportStore,
    Explain,
    AuditSearch,
    AuditVerify,
    Reports,
}

use Role::{Admin, Auditor, Keamanan, OpdAdmin, Operasi};

/// Every role.
const ALL: &[Role] = &[Admin, Operasi, Keamanan, OpdAdmin, Auditor];
/// Reading the store's documents.
const READERS: &[Role] = ALL;

/// The one permission table: the roles that may perform each operation. Deny unless listed. An `opd_admin`
/// listed here is additionally held to its own OPD by [`authorize`].
pub const PERMISSIONS: &[(Operation, &[Role])] = &[
    (Operation::ListOpds, READERS),
    (Operation::GetOpd, READERS),
    (Operation::CreateOpd, &[Admin]),
    (Operation::UpdateOpd, &[Admin]),
    (Operation::ListServices, READERS),
    (Operation::GetService, READERS),
    (Operation::CreateService, &[Admin, Operasi, OpdAdmin]),
    (Operation::UpdateService, &[Admin, Operasi, OpdAdmin]),
    (Operation::ImportOpenApi, &[Admin, Operasi, OpdAdmin]),
    (Operation::SubmitService, &[Admin, Operasi, OpdAdmin]),
    (Operation::ApproveOperations, &[Operasi]),
    (Operation::ApproveSecurity, &[Keamanan]),
    (Operation::WithdrawApproval, &[Operasi, Keamanan]),
    (Operation::SuspendService, &[Operasi, Keamanan]),
    (Operation::ResumeService, &[Operasi, Keamanan]),
    (Operation::RetireService, &[Admin, Operasi]),
    (Operation::ListClients, READERS),
    (Operation::GetClient, READERS),
    (Operation::CreateClient, &[Admin, Keamanan, OpdAdmin]),
    (Operation::SetClearance, &[Keamanan]),
    (Operation::SetClientEnabled, &[Keamanan, OpdAdmin]),
    (Operation::IssueClientCertificate, &[Keamanan, OpdAdmin]),
    (Operation::RevokeCertificate, &[Keamanan]),
    (Operation::ListGrants, READERS),
    (Operation::GetGrant, READERS),
    (Operation::AddGrant, &[Keamanan, OpdAdmin]),
    (Operation::RevokeGrant, &[Keamanan, OpdAdmin]),
    (Operation::ListTiers, READERS),
    (Operation::GetTier, READERS),
    (Operation::PutTier, &[Admin]),
    (Operation::DeleteTier, &[Admin]),
    (Operation::ListOperators, &[Admin, Keamanan, Auditor]),
    (Operation::GetOperator, &[Admin, Keamanan, Auditor]),
    (Operation::CreateOperator, &[Admin]),
    (Operation::UpdateOperator, &[Admin]),
    (Operation::IssueOperatorCertificate, &[Admin]),
    // Every role for the operator's own credentials; an admin's for anyone's ([`authorize_own`]).
    (Operation::SetOperatorPassword, ALL),
    (Operation::EnrolTotp, ALL),
    (Operation::History, READERS),
    (Operation::Rollback, &[Admin]),
    (Operation::ExportStore, &[Admin, Auditor]),
    (Operation::ImportStore, &[Admin]),
    (Operation::Explain, ALL),
    (Operation::AuditSearch, &[Admin, Keamanan, Auditor]),
    (Operation::AuditVerify, &[Admin, Keamanan, Auditor]),
    (Operation::Reports, &[Admin, Operasi, Keamanan, Auditor]),
];

impl Operation {
    /// Every operation, in table order.
    pub fn all() -> impl Iterator<Item = Operation> {
        PERMISSIONS.iter().map(|(op, _)| *op)
    }

    /// The operation's name (`approve_security`).
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::ListOpds => "list_opds",
            Operation::GetOpd => "get_opd",
            Operation::CreateOpd => "create_opd",
            Operation::UpdateOpd => "update_opd",
            Operation::ListServices => "list_services",
            Operation::GetService => "get_service",
            Operation::CreateService => "create_service",
            Operation::UpdateService => "update_service",
            Operation::ImportOpenApi => "import_open_api",
            Operation::SubmitService => "submit_service",
            Operation::ApproveOperations => "approve_operations",
            Operation::ApproveSecurity => "approve_security",
            Operation::WithdrawApproval => "withdraw_approval",
            Operation::SuspendService => "suspend_service",
            Operation::ResumeService => "resume_service",
            Operation::RetireService => "retire_service",
            Operation::ListClients => "list_clients",
            Operation::GetClient => "get_client",
            Operation::CreateClient => "create_client",
            Operation::SetClearance => "set_clearance",
            Operation::SetClientEnabled => "set_client_enabled",
            Operation::IssueClientCertificate => "issue_client_certificate",
            Operation::RevokeCertificate => "revoke_certificate",
            Operation::ListGrants => "list_grants",
            Operation::GetGrant => "get_grant",
            Operation::AddGrant => "add_grant",
            Operation::RevokeGrant => "revoke_grant",
            Operation::ListTiers => "list_tiers",
            Operation::GetTier => "get_tier",
            Operation::PutTier => "put_tier",
            Operation::DeleteTier => "delete_tier",
            Operation::ListOperators => "list_operators",
            Operation::GetOperator => "get_operator",
            Operation::CreateOperator => "create_operator",
            Operation::UpdateOperator => "update_operator",
            Operation::IssueOperatorCertificate => "issue_operator_certificate",
            Operation::SetOperatorPassword => "set_operator_password",
            Operation::EnrolTotp => "enrol_totp",
            Operation::History => "history",
            Operation::Rollback => "rollback",
            Operation::ExportStore => "export_store",
            Operation::ImportStore => "import_store",
            Operation::Explain => "explain",
            Operation::AuditSearch => "audit_search",
            Operation::AuditVerify => "audit_verify",
            Operation::Reports => "reports",
        }
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The roles that may perform `op` (empty: nobody).
pub fn roles_for(op: Operation) -> &'static [Role] {
    PERMISSIONS.iter().find(|(o, _)| *o == op).map_or(&[], |(_, roles)| roles)
}

/// Whether `actor` may perform `op` on something of `target_opd` (the OPD the change touches, when any): one of
/// the actor's roles is listed for the operation, and that role is not `opd_admin`, or it is and the target is
/// the actor's own OPD. An `opd_admin` acting with no target OPD is refused for writes.
pub fn authorize(actor: &Actor, op: Operation, target_opd: Option<&str>) -> Result<(), ManageError> {
    let allowed = roles_for(op);
    let mut scoped_out = false;
    for role in actor.roles.iter().filter(|r| allowed.contains(r)) {
        if *role != Role::OpdAdmin {
            return Ok(());
        }
        match target_opd {
            Some(opd) if opd == actor.opd => return Ok(()),
            None if is_read(op) => return Ok(()),
            _ => scoped_out = true,
        }
    }
    let needed = allowed.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ");
    Err(ManageError::forbidden(if scoped_out {
        format!(
            "operator `{}` is opd_admin of `{}` only; `{op}` here concerns {}",
            actor.id,
            actor.opd,
            target_opd.map_or_else(|| "no single OPD".to_string(), |o| format!("OPD `{o}`"))
        )
    } else if needed.is_empty() {
        format!("`{op}` is not allowed to any role")
    } else {
        format!("operator `{}` lacks the role for `{op}` (needs one of: {needed})", actor.id)
    }))
}

/// Whether `actor` may perform `op`, an operation on an operator's own credentials, for `operator`: the
/// operator themself with any role listed, or an admin for anyone.
pub fn authorize_own(actor: &Actor, op: Operation, operator: &str) -> Result<(), ManageError> {
    let listed = roles_for(op).iter().any(|r| actor.has(*r));
    if listed && (actor.id == operator || actor.has(Role::Admin)) {
        return Ok(());
    }
    Err(ManageError::forbidden(format!(
        "operator `{}` may `{op}` for themself only (an admin may for anyone), not for `{operator}`",
        actor.id
    )))
}

/// Whether `actor` holds any role listed for `op` (the OPD scope is checked later, by [`authorize`], once the
/// document the change touches is known).
pub fn require_role(actor: &Actor, op: Operation) -> Result<(), ManageError> {
    if roles_for(op).iter().any(|r| actor.has(*r)) {
        Ok(())
    } else {
        authorize(actor, op, None)
    }
}

/// Operations that change nothing (an `opd_admin` may read without a target; lists are filtered instead).
pub(crate) fn is_read(op: Operation) -> bool {
    matches!(
        op,
        Operation::ListOpds
            | Operation::GetOpd
            | Operation::ListServices
            | Operation::GetService
            | Operation::ListClients
            | Operation::GetClient
            | Operation::ListGrants
            | Operation::GetGrant
            | Operation::ListTiers
            | Operation::GetTier
            | Operation::ListOperators
            | Operation::GetOperator
            | Operation::History
            | Operation::Explain
            | Operation::AuditSearch
            | Operation::AuditVerify
            | Operation::Reports
            | Operation::ExportStore
    )
}

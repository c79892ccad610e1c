//! The ONE route table of the admin API ([`ROUTES`]): method, path, the management operation each route
//! performs (its roles come from `penghubung_manage::PERMISSIONS`), what its body is, and its handler. The
//! router ([`crate::dispatch`]) and the OpenAPI document ([`crate::openapi`]) are both built from it, and the
//! tests walk it route by route, role by role.

use http::Method;
use penghubung_manage::Operation;

use crate::handlers::{self, Handler};

/// What a route's request body is (for the OpenAPI document; the handler parses it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// No body.
    None,
    /// A JSON body of this schema (a name under `components.schemas`).
    Json(&'static str),
    /// The raw bytes of a store export.
    Bundle,
}

/// Whether a write needs the `If-Match` etag of the document as it was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precondition {
    /// Not needed (a create, or a read).
    None,
    /// Checked when sent: a stale one is 412 (the lifecycle transitions, which scripts call without one).
    Optional,
    /// Required: missing is 428, stale is 412 (replacing a document).
    Required,
}

/// One route.
#[derive(Debug)]
pub struct Route {
    pub method: Method,
    /// An axum path (`/api/v1/services/{opd}/{name}/{version}`); a `{version}` segment reads `v1`, `v2`, ...
    pub path: &'static str,
    /// The operation performed; `None` for what any authenticated operator may do (`whoami`, the API's own
    /// OpenAPI document).
    pub operation: Option<Operation>,
    /// Operations the body may pick instead (an approval is for operations or for security): the route admits
    /// an operator holding a role of any of them, and the management plane then checks the one chosen.
    pub also: &'static [Operation],
    /// `operationId` in the OpenAPI document.
    pub name: &'static str,
    pub summary: &'static str,
    pub input: Input,
    pub precondition: Precondition,
    /// Query parameters the route reads (`reason`, `kind`, search filters).
    pub query: &'static [&'static str],
    pub handler: Handler,
}

impl Route {
    /// Every operation this route may perform.
    pub fn operations(&self) -> impl Iterator<Item = Operation> + '_ {
        self.operation.into_iter().chain(self.also.iter().copied())
    }

    /// The path's parameters, in order (`["opd", "name", "version"]`).
    pub fn parameters(&self) -> impl Iterator<Item = &'static str> {
        self.path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
    }
}

impl Route {
    const fn new(
        method: Method,
        path: &'static str,
        operation: Option<Operation>,
        name: &'static str,
        summary: &'static str,
        handler: Handler,
    ) -> Route {
        Route {
            method,
            path,
            operation,
            also: &[],
            name,
            summary,
            input: Input::None,
            precondition: Precondition::None,
            query: &[],
            handler,
        }
    }

    const fn body(mut self, schema: &'static str) -> Route {
        self.input = Input::Json(schema);
        self
    }

    const fn bundle(mut self) -> Route {
        self.input = Input::Bundle;
        self
    }

    const fn precondition(mut self, precondition: Precondition) -> Route {
        self.precondition = precondition;
        self
    }

    const fn query(mut self, query: &'static [&'static str]) -> Route {
        self.query = query;
        self
    }

    const fn also(mut self, also: &'static [Operation]) -> Route {
        self.also = also;
        self
    }
}

/// A service's path: `{version}` reads `v1`, `v2`, ...
const SERVICE: &str = "/api/v1/services/{opd}/{name}/{version}";

use handlers as h;
use Method as M;
use Operation as Op;
use Precondition::{Optional, Required};

/// Every route of the admin API. Reads answer with the document's `ETag`; writes take a `reason` (JSON body
/// field, or query parameter on `DELETE` and on the store import, whose body is the bundle).
pub static ROUTES: &[Route] = &[
    Route::new(M::GET, "/api/v1/openapi.json", None, "openapi", "This API's OpenAPI 3.1 document", h::openapi),
    Route::new(M::GET, "/api/v1/whoami", None, "whoami", "The authenticated operator and its roles", h::whoami),
    // OPDs
    Route::new(M::GET, "/api/v1/opds", Some(Op::ListOpds), "listOpds", "List OPDs", h::list),
    Route::new(M::POST, "/api/v1/opds", Some(Op::CreateOpd), "createOpd", "Create an OPD", h::create)
        .body("DocumentChange"),
    Route::new(M::GET, "/api/v1/opds/{opd}", Some(Op::GetOpd), "getOpd", "Read an OPD", h::get),
    Route::new(M::PUT, "/api/v1/opds/{opd}", Some(Op::UpdateOpd), "updateOpd", "Replace an OPD", h::update)
        .body("DocumentChange")
        .precondition(Required),
    Route::new(M::GET, "/api/v1/opds/{opd}/history", Some(Op::History), "opdHistory", "An OPD's versions", h::history),
    Route::new(
        M::POST,
        "/api/v1/opds/{opd}/rollback",
        Some(Op::Rollback),
        "rollbackOpd",
        "Restore an OPD's version",
        h::rollback,
    )
    .body("Rollback"),
    // Services
    Route::new(
        M::GET,
        "/api/v1/services",
        Some(Op::ListServices),
        "listServices",
        "List services (id, status, ...)",
        h::list,
    ),
    Route::new(
        M::POST,
        "/api/v1/services",
        Some(Op::CreateService),
        "createService",
        "Create a service (status draft)",
        h::create,
    )
    .body("DocumentChange"),
    Route::new(
        M::POST,
        "/api/v1/services/import-openapi",
        Some(Op::ImportOpenApi),
        "importOpenApi",
        "Create a service from an OpenAPI document",
        h::import_openapi,
    )
    .body("ImportOpenApi"),
    Route::new(M::GET, SERVICE, Some(Op::GetService), "getService", "Read a service", h::get),
    Route::new(
        M::PUT,
        SERVICE,
        Some(Op::UpdateService),
        "updateService",
        "Replace a service (not its status or approvals)",
        h::update,
    )
    .body("DocumentChange")
    .precondition(Required),
    Route::new(
        M::POST,
        "/api/v1/services/{opd}/{name}/{version}/submit",
        Some(Op::SubmitService),
        "submitService",
        "Submit a service for approval (draft → testing)",
        h::submit,
    )
    .body("Reason")
    .precondition(Optional),
    Route::new(
        M::POST,
        "/api/v1/services/{opd}/{name}/{version}/approvals",
        Some(Op::ApproveOperations),
        "approveService",
        "Give the operations or the security approval",
        h::approve,
    )
    .body("Approval")
    .precondition(Optional)
    .also(&[Op::ApproveSecurity]),
    Route::new(
        M::DELETE,
        "/api/v1/services/{opd}/{name}/{version}/approvals",
        Some(Op::WithdrawApproval),
        "withdrawApproval",
        "Withdraw an approval (active → testing)",
        h::withdraw,
    )
    .query(&["kind", "reason"])
    .precondition(Optional),
    Route::new(
        M::POST,
        "/api/v1/services/{opd}/{name}/{version}/suspend",
        Some(Op::SuspendService),
        "suspendService",
        "Suspend a service",
        h::suspend,
    )
    .body("Reason")
    .precondition(Optional),
    Route::new(
        M::POST,
        "/api/v1/services/{opd}/{name}/{version}/resume",
        Some(Op::ResumeService),
        "resumeService",
        "Resume a suspended service",
        h::resume,
    )
    .body("Reason")
    .precondition(Optional),
    Route::new(
        M::POST,
        "/api/v1/services/{opd}/{name}/{version}/retire",
        Some(Op::RetireService),
        "retireService",
        "Retire a service",
        h::retire,
    )
    .body("Reason")
    .precondition(Optional),
    Route::new(
        M::GET,
        "/api/v1/services/{opd}/{name}/{version}/history",
        Some(Op::History),
        "serviceHistory",
        "A service's versions",
        h::history,
    ),
    Route::new(
        M::POST,
        "/api/v1/services/{opd}/{name}/{version}/rollback",
        Some(Op::Rollback),
        "rollbackService",
        "Restore a service's version",
        h::rollback,
    )
    .body("Rollback"),
    // Clients
    Route::new(M::GET, "/api/v1/clients", Some(Op::ListClients), "listClients", "List clients", h::list),
    Route::new(
        M::POST,
        "/api/v1/clients",
        Some(Op::CreateClient),
        "createClient",
        "Register a client application",
        h::create,
    )
    .body("DocumentChange"),
    Route::new(M::GET, "/api/v1/clients/{opd}/{app}", Some(Op::GetClient), "getClient", "Read a client", h::get),
    Route::new(
        M::POST,
        "/api/v1/clients/{opd}/{app}/clearance",
        Some(Op::SetClearance),
        "setClearance",
        "Set a client's clearance",
        h::set_clearance,
    )
    .body("Clearance")
    .precondition(Optional),
    Route::new(
        M::POST,
        "/api/v1/clients/{opd}/{app}/enabled",
        Some(Op::SetClientEnabled),
        "setClientEnabled",
        "Enable or disable a client",
        h::set_enabled,
    )
    .body("Enabled")
    .precondition(Optional),
    Route::new(
        M::POST,
        "/api/v1/clients/{opd}/{app}/certificates",
        Some(Op::IssueClientCertificate),
        "issueClientCertificate",
        "Issue a client certificate from a CSR",
        h::issue_client_certificate,
    )
    .body("CertificateRequest"),
    Route::new(
        M::GET,
        "/api/v1/clients/{opd}/{app}/history",
        Some(Op::History),
        "clientHistory",
        "A client's versions",
        h::history,
    ),
    Route::new(
        M::POST,
        "/api/v1/clients/{opd}/{app}/rollback",
        Some(Op::Rollback),
        "rollbackClient",
        "Restore a client's version",
        h::rollback,
    )
    .body("Rollback"),
    Route::new(
        M::POST,
        "/api/v1/revocations",
        Some(Op::RevokeCertificate),
        "revokeCertificate",
        "Revoke a certificate by serial (CRL rewritten)",
        h::revoke_certificate,
    )
    .body("Revocation"),
    // Grants
    Route::new(M::GET, "/api/v1/grants", Some(Op::ListGrants), "listGrants", "List grants", h::list),
    Route::new(
        M::POST,
        "/api/v1/grants",
        Some(Op::AddGrant),
        "addGrant",
        "Grant a client access to a service",
        h::create,
    )
    .body("DocumentChange"),
    Route::new(M::GET, "/api/v1/grants/{grant}", Some(Op::GetGrant), "getGrant", "Read a grant", h::get),
    Route::new(
        M::DELETE,
        "/api/v1/grants/{grant}",
        Some(Op::RevokeGrant),
        "revokeGrant",
        "Revoke a grant",
        h::revoke_grant,
    )
    .query(&["reason"])
    .precondition(Optional),
    Route::new(
        M::GET,
        "/api/v1/grants/{grant}/history",
        Some(Op::History),
        "grantHistory",
        "A grant's versions",
        h::history,
    ),
    Route::new(
        M::POST,
        "/api/v1/grants/{grant}/rollback",
        Some(Op::Rollback),
        "rollbackGrant",
        "Restore a grant's version",
        h::rollback,
    )
    .body("Rollback"),
    // Tiers
    Route::new(M::GET, "/api/v1/tiers", Some(Op::ListTiers), "listTiers", "List tiers", h::list),
    Route::new(M::GET, "/api/v1/tiers/{tier}", Some(Op::GetTier), "getTier", "Read a tier", h::get),
    Route::new(
        M::PUT,
        "/api/v1/tiers/{tier}",
        Some(Op::PutTier),
        "putTier",
        "Create or replace a tier (If-Match to replace)",
        h::put_tier,
    )
    .body("DocumentChange")
    .precondition(Optional),
    Route::new(M::DELETE, "/api/v1/tiers/{tier}", Some(Op::DeleteTier), "deleteTier", "Delete a tier", h::delete_tier)
        .query(&["reason"])
        .precondition(Optional),
    Route::new(
        M::GET,
        "/api/v1/tiers/{tier}/history",
        Some(Op::History),
        "tierHistory",
        "A tier's versions",
        h::history,
    ),
    Route::new(
        M::POST,
        "/api/v1/tiers/{tier}/rollback",
        Some(Op::Rollback),
        "rollbackTier",
        "Restore a tier's version",
        h::rollback,
    )
    .body("Rollback"),
    // Operators
    Route::new(M::GET, "/api/v1/operators", Some(Op::ListOperators), "listOperators", "List operators", h::list),
    Route::new(
        M::POST,
        "/api/v1/operators",
        Some(Op::CreateOperator),
        "createOperator",
        "Create an operator",
        h::create,
    )
    .body("DocumentChange"),
    Route::new(
        M::GET,
        "/api/v1/operators/{operator}",
        Some(Op::GetOperator),
        "getOperator",
        "Read an operator",
        h::get,
    ),
    Route::new(
        M::PUT,
        "/api/v1/operators/{operator}",
        Some(Op::UpdateOperator),
        "updateOperator",
        "Replace an operator",
        h::update,
    )
    .body("DocumentChange")
    .precondition(Required),
    Route::new(
        M::POST,
        "/api/v1/operators/{operator}/certificates",
        Some(Op::IssueOperatorCertificate),
        "issueOperatorCertificate",
        "Issue an operator certificate from a CSR",
        h::issue_operator_certificate,
    )
    .body("CertificateRequest"),
    Route::new(
        M::PUT,
        "/api/v1/operators/{operator}/password",
        Some(Op::SetOperatorPassword),
        "setOperatorPassword",
        "Set an operator's console password (their own, or an admin for anyone)",
        h::set_password,
    )
    .body("Password"),
    Route::new(
        M::POST,
        "/api/v1/operators/{operator}/totp",
        Some(Op::EnrolTotp),
        "enrolTotp",
        "Enrol a new console TOTP secret (answered once; their own, or an admin for anyone)",
        h::enrol_totp,
    ),
    Route::new(
        M::GET,
        "/api/v1/operators/{operator}/history",
        Some(Op::History),
        "operatorHistory",
        "An operator's versions",
        h::history,
    ),
    Route::new(
        M::POST,
        "/api/v1/operators/{operator}/rollback",
        Some(Op::Rollback),
        "rollbackOperator",
        "Restore an operator's version",
        h::rollback,
    )
    .body("Rollback"),
    // The store
    Route::new(
        M::GET,
        "/api/v1/store/export",
        Some(Op::ExportStore),
        "exportStore",
        "A signed backup of every document",
        h::export,
    ),
    Route::new(
        M::POST,
        "/api/v1/store/import",
        Some(Op::ImportStore),
        "importStore",
        "Verify a backup and replace the store with it",
        h::import,
    )
    .bundle()
    .query(&["reason"]),
    // Policy and audit
    Route::new(
        M::POST,
        "/api/v1/policy/explain",
        Some(Op::Explain),
        "explain",
        "What the gateway would decide for a call",
        h::explain,
    )
    .body("Explain"),
    Route::new(
        M::GET,
        "/api/v1/audit/search",
        Some(Op::AuditSearch),
        "auditSearch",
        "Search the audit trail",
        h::audit_search,
    )
    .query(&["client", "service", "since", "until", "code", "changes", "security", "limit"]),
    Route::new(
        M::GET,
        "/api/v1/reports/summary",
        Some(Op::Reports),
        "summaryReport",
        "Services by status, approvals awaited, grants ending soon",
        h::summary,
    ),
    Route::new(
        M::POST,
        "/api/v1/audit/verify",
        Some(Op::AuditVerify),
        "auditVerify",
        "Verify the audit trail's chain and signatures",
        h::audit_verify,
    ),
];

/// The route with this method and path template.
pub fn find(method: &Method, path: &str) -> Option<&'static Route> {
    ROUTES.iter().find(|r| r.method == method && r.path == path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_route_is_listed_twice_and_names_are_unique() {
        let mut seen = std::collections::HashSet::new();
        let mut names = std::collections::HashSet::new();
        for route in ROUTES {
            assert!(seen.insert((route.method.clone(), route.path)), "{} {} twice", route.method, route.path);
            assert!(names.insert(route.name), "operationId {} twice", route.name);
            assert!(route.path.starts_with("/api/v1/"), "{}", route.path);
        }
    }

    #[test]
    fn every_operation_has_a_route() {
        let routed: std::collections::HashSet<Operation> = ROUTES.iter().flat_map(Route::operations).collect();
        for op in Operation::all() {
            assert!(routed.contains(&op), "{op} has no route");
        }
    }
}

//! The shapes of the operations: the document [`Kind`]s, a document as read ([`Versioned`], with its etag), a
//! change asked for ([`Change`], [`ChangeRequest`]), its outcome ([`Applied`]), and one entry of a document's
//! history ([`HistoryEntry`]).

use serde::Serialize;

use penghubung_policy::lifecycle::ApprovalKind;
use penghubung_snapshot::store::DocumentKind;
use penghubung_types::documents::{Classification, ClientDoc, GrantDoc, OpdDoc, OperatorDoc, ServiceDoc, TierDoc};

/// The kinds of document the management plane reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Opd,
    Service,
    Client,
    Grant,
    Tier,
    Operator,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 6] = [Kind::Opd, Kind::Service, Kind::Client, Kind::Grant, Kind::Tier, Kind::Operator];

    /// The kind of a URL segment or store folder (`"opds"`, `"services"`, ...).
    pub fn from_segment(segment: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.segment() == segment)
    }

    /// The URL segment and store folder (`"services"`).
    pub fn segment(self) -> &'static str {
        match self {
            Kind::Opd => "opds",
            Kind::Service => "services",
            Kind::Client => "clients",
            Kind::Grant => "grants",
            Kind::Tier => "tiers",
            Kind::Operator => "operators",
        }
    }

    /// The store's document kind.
    pub fn document_kind(self) -> DocumentKind {
        match self {
            Kind::Opd => DocumentKind::Opd,
            Kind::Service => DocumentKind::Service,
            Kind::Client => DocumentKind::Client,
            Kind::Grant => DocumentKind::Grant,
            Kind::Tier => DocumentKind::Tier,
            Kind::Operator => DocumentKind::Operator,
        }
    }

    /// The kind of a store document kind (schemas have none).
    pub fn of(kind: DocumentKind) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.document_kind() == kind)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Opd => "opd",
            Kind::Service => "service",
            Kind::Client => "client",
            Kind::Grant => "grant",
            Kind::Tier => "tier",
            Kind::Operator => "operator",
        })
    }
}

/// A document as stored now: its id (`opd/name/v1` for a service, `opd/app` for a client), its etag (quoted,
/// as HTTP writes it: `"\"<first 32 hex digits of the SHA-256 of the stored text>\""`) and its content as JSON.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Versioned {
    pub id: String,
    pub etag: String,
    pub document: serde_json::Value,
}

/// A change an operator asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    CreateOpd(OpdDoc),
    UpdateOpd(OpdDoc),
    /// A new service: always a `draft` without approvals (whatever the document says).
    CreateService(ServiceDoc),
    /// Everything but the status, approvals, status reason and submitter, which only the transitions change.
    UpdateService(ServiceDoc),
    /// Creates or updates the service `opd/name/v{version}` from an OpenAPI 3.0/3.1 document.
    ImportOpenApi {
        opd: String,
        name: String,
        version: u32,
        document: serde_json::Value,
        upstream: Option<String>,
        classification: Option<Classification>,
    },
    /// `draft` → `testing` (service ids are `opd/name/v1`).
    Submit {
        service: String,
    },
    Approve {
        service: String,
        kind: ApprovalKind,
    },
    /// Removes an approval; an `active` service goes back to `testing`.
    Withdraw {
        service: String,
        kind: ApprovalKind,
    },
    Suspend {
        service: String,
    },
    Resume {
        service: String,
    },
    Retire {
        service: String,
    },
    CreateClient(ClientDoc),
    SetClearance {
        client: String,
        clearance: Classification,
    },
    SetClientEnabled {
        client: String,
        enabled: bool,
    },
    /// Signs the CSR with the gateway CA and adds the certificate's fingerprint to the client document.
    IssueClientCertificate {
        client: String,
        csr_pem: String,
        days: u32,
    },
    /// Revokes a certificate by serial (hex) and rewrites the CRL; it bites on the next request.
    RevokeCertificate {
        serial_hex: String,
    },
    AddGrant(GrantDoc),
    RevokeGrant {
        id: String,
    },
    PutTier(TierDoc),
    DeleteTier {
        id: String,
    },
    CreateOperator(OperatorDoc),
    UpdateOperator(OperatorDoc),
    /// Signs the CSR with the gateway CA and adds the certificate's fingerprint to the operator document.
    IssueOperatorCertificate {
        operator: String,
        csr_pem: String,
        days: u32,
    },
    /// Restores version `version` of a document as a new change.
    Rollback {
        kind: Kind,
        id: String,
        version: u64,
    },
}

/// A change with why it is made and the etag the operator read the document at.
#[derive(Clone, Debug, PartialEq)]
pub struct ChangeRequest {
    pub change: Change,
    pub reason: Option<String>,
    /// The etag of the document as the operator read it (`"\"…\""`, with or without the quotes).
    pub if_match: Option<String>,
}

/// What a change did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Applied {
    /// One line for people (`dinsos/bansos/v1: testing → active`).
    pub summary: String,
    /// The id of the document changed.
    pub id: String,
    /// The document's new etag (none when it was removed).
    pub etag: Option<String>,
    /// An issued certificate (PEM); the private key never passes here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_pem: Option<String>,
}

/// One version of a document, from its history.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HistoryEntry {
    /// 1 for the first recorded change, counting up.
    pub version: u64,
    /// RFC 3339.
    pub at: String,
    /// The operator id (`hand-edit` for a change found in the store that no operation made).
    pub who: String,
    pub reason: Option<String>,
    /// What was done (`approve_security`, `create_opd`, `rollback`, `import_store`, ...).
    pub action: String,
    /// SHA-256 (hex) of the document's text after the change (of the empty text when it was removed).
    pub digest: String,
    /// The document after the change (none when it was removed).
    pub document: Option<serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_named_by_their_url_segment_and_store_folder() {
        for kind in Kind::ALL {
            assert_eq!(Kind::from_segment(kind.segment()), Some(kind));
            assert_eq!(kind.document_kind().folder(), kind.segment());
            assert_eq!(Kind::of(kind.document_kind()), Some(kind));
        }
        assert_eq!(Kind::from_segment("schemas"), None);
        assert_eq!(Kind::of(DocumentKind::Schema), None);
    }
}

//! The typed documents kept in the store: `Opd`, `Service`, `Client`, `Grant`, `Tier`, `Operator`. Their shape is fixed by the
//! JSON Schemas in `schemas/documents/`; these types are what the snapshot compiles from.

use serde::{Deserialize, Serialize};

use crate::units::{ByteSize, HumanDuration};

/// Security classification and clearance levels, ordered from open to top secret.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Classification {
    #[default]
    Terbuka,
    Terbatas,
    Rahasia,
    SangatRahasia,
}

/// Lifecycle of a service (enforced by the policy layer).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceStatus {
    #[default]
    Draft,
    Testing,
    Active,
    Suspended,
    Retired,
}

/// A regional agency.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OpdDoc {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub mandiri_tik: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    /// Traffic allotted to all client applications of this OPD together (Pasal 21 bandwidth).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<BandwidthDoc>,
}

/// An OPD's allotted traffic: requests per second and body bytes per second, each optional.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(deny_unknown_fields)]
pub struct BandwidthDoc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_second: Option<u32>,
    /// Default: `requests_per_second`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_burst: Option<u32>,
    /// Request plus response body bytes per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_per_second: Option<ByteSize>,
    /// Default: `bytes_per_second`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub byte_burst: Option<ByteSize>,
}

/// A request quota written in a document: `rate` requests per `period`, at most `burst` at once.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(deny_unknown_fields)]
pub struct QuotaDoc {
    pub rate: u32,
    #[serde(default = "one_second")]
    pub period: HumanDuration,
    /// Default: `rate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
}

/// A rate tier that grants name (`tier = "bronze"`): the quota of one client on one service.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TierDoc {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// No limit at all.
    #[serde(default)]
    pub unlimited: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<u32>,
    #[serde(default = "one_second")]
    pub period: HumanDuration,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
}

impl TierDoc {
    /// The quota of this tier; `None` for an unlimited tier.
    pub fn quota(&self) -> Option<QuotaDoc> {
        match (self.unlimited, self.rate) {
            (false, Some(rate)) => Some(QuotaDoc { rate, period: self.period, burst: self.burst }),
            _ => None,
        }
    }
}

/// A service offered through the gateway.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceDoc {
    pub opd: String,
    pub name: String,
    pub version: u32,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub classification: Classification,
    #[serde(default)]
    pub status: ServiceStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_request_body: Option<ByteSize>,
    pub upstream: UpstreamDoc,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operations: Vec<OperationDoc>,
    /// The two approvals (*kelaikan operasi*, *kelaikan keamanan*) a service needs before it may go `active`.
    #[serde(default, skip_serializing_if = "Approvals::is_empty")]
    pub approvals: Approvals,
    /// Why the service is in its current status (kept for `suspended` and `retired`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    /// The operator id of who submitted the service for testing (that operator cannot give its security
    /// approval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_by: Option<String>,
    /// All callers of this service together (upstream protection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<QuotaDoc>,
    /// How response contracts are held: `report` (default) or `enforce`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub response_check: ResponseCheck,
    /// Durability of this service's audit records; `[audit] durability` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<AuditDurability>,
    /// Caller headers the gateway removes by default that this service needs passed on: names with `_`, or
    /// headers that override the client address, URL or method (`X-Real-IP`, `X-HTTP-Method-Override`, ...).
    /// Never a header the gateway controls.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caller_headers: Vec<String>,
}

/// When an exchange's audit record must be on disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditDurability {
    /// The end of the response is released only once the record is durable; refused (503) while the audit log
    /// cannot be written.
    Sync,
    /// The record is queued (waiting for a slot when the queue is full) and written shortly after.
    #[default]
    Async,
}

/// The approvals of a service, each given by a different official of the Dinas.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Approvals {
    /// Operational readiness (*kelaikan operasi*).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operations: Option<Approval>,
    /// Security readiness (*kelaikan keamanan*).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<Approval>,
}

impl Approvals {
    pub fn is_empty(&self) -> bool {
        self.operations.is_none() && self.security.is_none()
    }
}

/// One approval: who gave it, when and why.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// The id of the operator who gave it (`operators/{id}.toml`).
    pub by: String,
    /// RFC 3339 timestamp.
    pub at: String,
    pub reason: String,
}

/// How a service reaches its backend.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(deny_unknown_fields)]
pub struct UpstreamDoc {
    pub endpoints: Vec<String>,
    #[serde(default)]
    pub load_balance: LoadBalance,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<HumanDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_timeout: Option<HumanDuration>,
    #[serde(default = "default_retries")]
    pub retries: u32,
    #[serde(default)]
    pub http2: bool,
    #[serde(default = "default_eject_after")]
    pub eject_after_failures: u32,
    #[serde(default = "default_eject_for")]
    pub eject_for: HumanDuration,
    /// PEM certificate the gateway presents to an HTTPS upstream that requires mTLS (relative to the config file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert_file: Option<std::path::PathBuf>,
    /// PEM key of `client_cert_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key_file: Option<std::path::PathBuf>,
}

/// Load-balancing strategy across a service's endpoints.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum LoadBalance {
    /// Power of two choices: the less loaded of two random endpoints.
    #[default]
    P2c,
    RoundRobin,
}

/// One operation of a service: method + path template.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OperationDoc {
    pub id: String,
    pub method: String,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Raises the service's classification for this operation (it can never lower it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classification: Option<Classification>,
    /// The request body's contract: nothing that violates it reaches the upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestContractDoc>,
    /// The query parameters' contract: a JSON Schema over an object of the parameters (each value a string,
    /// or an array of strings when the parameter repeats).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<SchemaRefDoc>,
    /// Response contracts by status code (`"200"`, or `"default"`), each a JSON Schema file under the store's
    /// `schemas/`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub responses: std::collections::BTreeMap<String, ResponseDoc>,
}

/// The contract of a request body.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RequestContractDoc {
    /// Path of a JSON Schema under the store's `schemas/` folder.
    pub schema: String,
    /// The media type the body must have (415 otherwise).
    #[serde(default = "json_media_type")]
    pub content_type: String,
}

/// A reference to a JSON Schema under the store's `schemas/` folder.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SchemaRefDoc {
    pub schema: String,
}

/// What the gateway does with an upstream response that violates its contract.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseCheck {
    /// Pass it on, and record and count the violation (contract drift detection).
    #[default]
    Report,
    /// Replace it with 502 `contract.response_invalid`; the upstream's body is not passed on.
    Enforce,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

fn json_media_type() -> String {
    "application/json".into()
}

/// The contract of one response status of an operation.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ResponseDoc {
    /// Path of a JSON Schema under the store's `schemas/` folder, e.g. `disdukcapil/penduduk.schema.json`.
    /// Fields marked `x-klasifikasi` are withheld from callers whose clearance is lower.
    pub schema: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A client application.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClientDoc {
    pub id: String,
    pub opd: String,
    pub name: String,
    pub clearance: Classification,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub test_client: bool,
    pub identity: ClientIdentityDoc,
    /// All calls of this client, to any service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<QuotaDoc>,
}

/// What binds a certificate to a client.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClientIdentityDoc {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spiffe: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subject: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fingerprint_sha256: Vec<String>,
}

/// A grant: client -> service operations, for purposes, within a validity window.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GrantDoc {
    pub id: String,
    pub client: String,
    pub service: String,
    pub operations: Vec<String>,
    #[serde(default)]
    pub purposes: Vec<String>,
    pub tier: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What an operator of the management plane may do (the permission table of `penghubung-manage` is keyed by
/// the operation and lists these).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Diskominfo: OPDs, operators, tiers.
    Admin,
    /// Gives the operations approval (*kelaikan operasi*).
    Operasi,
    /// Gives the security approval (*kelaikan keamanan*); clearances, certificates, revocation.
    Keamanan,
    /// Scoped to the operator's own OPD (*Perangkat Daerah Mandiri TIK*): its services, clients and grants; can
    /// submit but not approve.
    OpdAdmin,
    /// Read-only: audit search and verify, reports, explain.
    Auditor,
}

impl Role {
    /// Every role, in table order.
    pub const ALL: [Role; 5] = [Role::Admin, Role::Operasi, Role::Keamanan, Role::OpdAdmin, Role::Auditor];

    /// The name used in documents and messages (`"opd_admin"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operasi => "operasi",
            Role::Keamanan => "keamanan",
            Role::OpdAdmin => "opd_admin",
            Role::Auditor => "auditor",
        }
    }

    /// Parses a document name (`"keamanan"`).
    pub fn parse(name: &str) -> Option<Self> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A person of the Dinas or of an OPD who operates the gateway through the management plane.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OperatorDoc {
    /// A slug (`rudi-aptika`): the identity used everywhere (approvals, `submitted_by`, the audit trail's `who`).
    pub id: String,
    pub name: String,
    /// *Nomor Induk Pegawai*.
    pub nip: String,
    /// The OPD the operator belongs to (an `opd_admin` manages this OPD only).
    pub opd: String,
    pub roles: Vec<Role>,
    #[serde(default = "yes")]
    pub enabled: bool,
    pub identity: OperatorIdentityDoc,
    /// The console's password hash (never the password).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
}

/// What binds a certificate to an operator.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OperatorIdentityDoc {
    /// SHA-256 fingerprints of the operator's certificates (DER), lower-case hex without colons.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fingerprint_sha256: Vec<String>,
}

/// Most digits in a purpose: a purpose names a use (`penyaluran-bansos-2027`), it never carries a number long
/// enough to be a personal identifier, in any spelling (`cek-3201010101010001`, `cek-3201-0101-0101-0001`).
pub const MAX_PURPOSE_DIGITS: usize = 8;

/// The purpose grammar: a slug, `^[a-z0-9][a-z0-9-]{0,62}$`, with at most [`MAX_PURPOSE_DIGITS`] digits in all.
/// A declared purpose is logged and recorded, so it is held to this grammar also when the grant lists no
/// purposes (and a grant may only list purposes that follow it).
pub fn is_purpose(value: &[u8]) -> bool {
    !value.is_empty()
        && value.len() <= 63
        && value[0] != b'-'
        && value.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && value.iter().filter(|b| b.is_ascii_digit()).count() <= MAX_PURPOSE_DIGITS
}

fn one_second() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(1))
}
fn yes() -> bool {
    true
}
fn default_retries() -> u32 {
    1
}
fn default_eject_after() -> u32 {
    3
}
fn default_eject_for() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(10))
}

impl Classification {
    /// The name used in documents and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Classification::Terbuka => "terbuka",
            Classification::Terbatas => "terbatas",
            Classification::Rahasia => "rahasia",
            Classification::SangatRahasia => "sangat_rahasia",
        }
    }

    /// Parses a document name (`"rahasia"`).
    pub fn parse(name: &str) -> Option<Self> {
        [Classification::Terbuka, Classification::Terbatas, Classification::Rahasia, Classification::SangatRahasia]
            .into_iter()
            .find(|c| c.as_str() == name)
    }
}

impl std::fmt::Display for Classification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ServiceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceStatus::Draft => "draft",
            ServiceStatus::Testing => "testing",
            ServiceStatus::Active => "active",
            ServiceStatus::Suspended => "suspended",
            ServiceStatus::Retired => "retired",
        }
    }
}

impl std::fmt::Display for ServiceStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ServiceDoc {
    /// `{opd}/{name}/v{version}`, the key grants use.
    pub fn key(&self) -> String {
        format!("{}/{}/v{}", self.opd, self.name, self.version)
    }
}

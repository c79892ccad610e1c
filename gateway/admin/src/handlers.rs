//! What each route does: read its inputs (path parameters, JSON body, query), turn them into a call of the
//! management plane ([`Manager`]), and shape the answer ([`Reply`]). Handlers hold no rule of their own: who
//! may do what, the two approvals, the whole-store check and the etags are the management plane's.
//! They run on a blocking thread (the store is files).

use std::collections::HashMap;

use http::StatusCode;
use penghubung_manage::{
    explain, Actor, Applied, ApprovalKind, Change, ChangeRequest, Kind, ManageError, Manager, Versioned,
};
use penghubung_types::documents::{Classification, ClientDoc, GrantDoc, OpdDoc, OperatorDoc, ServiceDoc, TierDoc};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::routes::Route;

/// A route's handler.
pub type Handler = fn(&Call<'_>) -> Result<Reply, ApiError>;

/// Days a certificate issued through the API is valid when the request does not say.
pub const DEFAULT_CERTIFICATE_DAYS: u32 = 365;

/// Audit records an audit search returns at most when the request does not say.
pub const DEFAULT_SEARCH_LIMIT: usize = 1000;

/// Everything a handler may read about its request.
pub struct Call<'a> {
    pub route: &'static Route,
    pub manager: &'a Manager,
    pub actor: &'a Actor,
    /// The path's parameters, in the order of the route's path.
    pub params: &'a [(String, String)],
    pub query: &'a HashMap<String, String>,
    pub body: &'a [u8],
    /// The `If-Match` header, as sent.
    pub if_match: Option<&'a str>,
    /// This API's OpenAPI document.
    pub openapi: &'a Value,
}

/// A handler's answer.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: ReplyBody,
    /// The document's etag (quoted), sent as `ETag`.
    pub etag: Option<String>,
    /// Where a created document can be read, sent as `Location`.
    pub location: Option<String>,
    /// The store changed: the gateway reloads.
    pub changed: bool,
}

/// The body of a [`Reply`].
#[derive(Debug)]
pub enum ReplyBody {
    Json(Value),
    /// No body (204).
    Empty,
    /// A document shown as it is (a report as text, CSV or HTML).
    Inline {
        content_type: &'static str,
        bytes: Vec<u8>,
    },
    /// A file to save (`Content-Disposition: attachment`).
    Download {
        content_type: &'static str,
        file_name: String,
        bytes: Vec<u8>,
    },
}

impl Reply {
    fn json(value: Value) -> Reply {
        Reply { status: StatusCode::OK, body: ReplyBody::Json(value), etag: None, location: None, changed: false }
    }

    fn document(versioned: Versioned) -> Reply {
        Reply { etag: Some(versioned.etag), ..Reply::json(redact(versioned.document)) }
    }

    fn applied(applied: Applied) -> Reply {
        let etag = applied.etag.clone();
        Reply { etag, changed: true, ..Reply::json(json!(applied)) }
    }

    fn created(applied: Applied, location: String) -> Reply {
        Reply { status: StatusCode::CREATED, location: Some(location), ..Reply::applied(applied) }
    }
}

impl Call<'_> {
    /// The kind of document the route is about (`/api/v1/{kind}/...`).
    fn kind(&self) -> Result<Kind, ApiError> {
        self.route
            .path
            .split('/')
            .nth(3)
            .and_then(Kind::from_segment)
            .ok_or_else(|| ApiError::bad_request(format!("{} is not about a document kind", self.route.path)))
    }

    /// The document id the path names: its parameters joined with `/` (`dinsos/bansos/v1`, `dinkes/simpus`).
    fn document_id(&self) -> Result<String, ApiError> {
        let mut parts = Vec::with_capacity(self.params.len());
        for (name, value) in self.params {
            if value.is_empty() || value.contains('/') {
                return Err(ApiError::bad_request(format!("path parameter `{name}` is empty or holds a `/`")));
            }
            if name == "version" && !is_version(value) {
                return Err(ApiError::bad_request(format!("`{value}` is not a service version (v1, v2, ...)")));
            }
            parts.push(value.as_str());
        }
        Ok(parts.join("/"))
    }

    /// The JSON body as `T`.
    fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::bad_request("a JSON body is required"));
        }
        serde_json::from_slice(self.body).map_err(|e| ApiError::bad_request(format!("request body: {e}")))
    }

    /// The JSON body as `T`, or `T::default()` when there is none.
    fn json_or_default<T: DeserializeOwned + Default>(&self) -> Result<T, ApiError> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(T::default());
        }
        self.json()
    }

    fn query(&self, name: &str) -> Option<String> {
        self.query.get(name).filter(|v| !v.is_empty()).cloned()
    }

    /// Applies a change made with `reason`, passing the `If-Match` etag on.
    fn apply(&self, change: Change, reason: Option<String>) -> Result<Applied, ApiError> {
        let if_match = self.if_match.map(str::to_string);
        Ok(self.manager.apply(self.actor, ChangeRequest { change, reason, if_match })?)
    }
}

/// Removes what must never leave the server from a document in an answer: an operator's password hash (the
/// console's credential) becomes `password_set`.
fn redact(mut document: Value) -> Value {
    if let Some(fields) = document.as_object_mut() {
        if let Some(hash) = fields.remove("password_hash") {
            fields.insert("password_set".into(), Value::Bool(!hash.is_null()));
        }
    }
    document
}

/// `v1`, `v2`, ...
fn is_version(segment: &str) -> bool {
    segment.strip_prefix('v').is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

// ---- request bodies (named in the OpenAPI document's `components.schemas`) ----

/// `DocumentChange`: a whole document and why it is written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentChange {
    pub document: Value,
    #[serde(default)]
    pub reason: Option<String>,
}

/// `Reason`: why a transition is made.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    #[serde(default)]
    pub reason: Option<String>,
}

/// `Approval`: which approval, and why.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalBody {
    pub kind: String,
    #[serde(default)]
    pub reason: Option<String>,
}

/// `Rollback`: the version to restore.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackBody {
    pub version: u64,
    #[serde(default)]
    pub reason: Option<String>,
}

/// `Clearance`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClearanceBody {
    pub clearance: Classification,
    #[serde(default)]
    pub reason: Option<String>,
}

/// `Enabled`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnabledBody {
    pub enabled: bool,
    #[serde(default)]
    pub reason: Option<String>,
}

/// `CertificateRequest`: a PEM CSR (the private key stays with the operator).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateRequestBody {
    pub csr_pem: String,
    #[serde(default)]
    pub days: Option<u32>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// `Revocation`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevocationBody {
    pub serial_hex: String,
    #[serde(default)]
    pub reason: Option<String>,
}

/// `ImportOpenApi`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportOpenApiBody {
    pub opd: String,
    pub name: String,
    pub version: u32,
    pub document: Value,
    #[serde(default)]
    pub upstream: Option<String>,
    #[serde(default)]
    pub classification: Option<Classification>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// `Explain`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplainBody {
    pub client: String,
    pub service: String,
    /// `"POST /verifikasi"` or an operation id.
    pub operation: String,
    #[serde(default)]
    pub purpose: Option<String>,
    /// RFC 3339 time to decide at (default: now).
    #[serde(default)]
    pub at: Option<String>,
}

fn approval_kind(kind: &str) -> Result<ApprovalKind, ApiError> {
    match kind {
        "operations" => Ok(ApprovalKind::Operations),
        "security" => Ok(ApprovalKind::Security),
        other => Err(ApiError::bad_request(format!("approval kind `{other}`: expected `operations` or `security`"))),
    }
}

fn parse_document<T: DeserializeOwned>(kind: Kind, document: Value) -> Result<T, ApiError> {
    serde_json::from_value(document).map_err(|e| ApiError::bad_request(format!("{kind} document: {e}")))
}

/// The id a document of `kind` carries.
fn id_of(kind: Kind, document: &Value) -> Option<String> {
    match kind {
        Kind::Service => {
            let text = |f: &str| document.get(f).and_then(Value::as_str).map(str::to_string);
            let version = document.get("version").and_then(Value::as_u64)?;
            Some(format!("{}/{}/v{version}", text("opd")?, text("name")?))
        }
        _ => document.get("id").and_then(Value::as_str).map(str::to_string),
    }
}

/// The creation or replacement of a whole document of `kind`.
fn document_change(kind: Kind, document: Value, replace: bool) -> Result<Change, ApiError> {
    Ok(match (kind, replace) {
        (Kind::Opd, false) => Change::CreateOpd(parse_document::<OpdDoc>(kind, document)?),
        (Kind::Opd, true) => Change::UpdateOpd(parse_document::<OpdDoc>(kind, document)?),
        (Kind::Service, false) => Change::CreateService(parse_document::<ServiceDoc>(kind, document)?),
        (Kind::Service, true) => Change::UpdateService(parse_document::<ServiceDoc>(kind, document)?),
        (Kind::Client, false) => Change::CreateClient(parse_document::<ClientDoc>(kind, document)?),
        (Kind::Grant, false) => Change::AddGrant(parse_document::<GrantDoc>(kind, document)?),
        (Kind::Tier, _) => Change::PutTier(parse_document::<TierDoc>(kind, document)?),
        (Kind::Operator, false) => Change::CreateOperator(parse_document::<OperatorDoc>(kind, document)?),
        (Kind::Operator, true) => Change::UpdateOperator(parse_document::<OperatorDoc>(kind, document)?),
        (Kind::Client | Kind::Grant, true) => {
            return Err(ApiError::bad_request(format!("a {kind} is not replaced whole; use its own routes")))
        }
    })
}

// ---- handlers ----

/// `GET /api/v1/openapi.json`.
pub fn openapi(call: &Call<'_>) -> Result<Reply, ApiError> {
    Ok(Reply::json(call.openapi.clone()))
}

/// `GET /api/v1/whoami`: the operator, its roles, and the operations they allow.
pub fn whoami(call: &Call<'_>) -> Result<Reply, ApiError> {
    let actor = call.actor;
    let allowed: Vec<&str> = penghubung_manage::PERMISSIONS
        .iter()
        .filter(|(_, roles)| actor.roles.iter().any(|r| roles.contains(r)))
        .map(|(op, _)| op.as_str())
        .collect();
    Ok(Reply::json(json!({
        "id": actor.id,
        "name": actor.name,
        "opd": actor.opd,
        "roles": actor.roles,
        "operations": allowed,
    })))
}

/// `GET /api/v1/{kind}`: every document the operator may see, each with its `id` and `etag` beside its fields.
pub fn list(call: &Call<'_>) -> Result<Reply, ApiError> {
    let items: Vec<Value> = call
        .manager
        .list(call.actor, call.kind()?)?
        .into_iter()
        .map(|v| {
            let mut item = match redact(v.document) {
                Value::Object(fields) => fields,
                other => [("document".to_string(), other)].into_iter().collect(),
            };
            item.insert("id".into(), Value::String(v.id));
            item.insert("etag".into(), Value::String(v.etag));
            Value::Object(item)
        })
        .collect();
    Ok(Reply::json(Value::Array(items)))
}

/// `GET /api/v1/{kind}/{id...}`: the document, with its `ETag`.
pub fn get(call: &Call<'_>) -> Result<Reply, ApiError> {
    Ok(Reply::document(call.manager.get(call.actor, call.kind()?, &call.document_id()?)?))
}

/// `POST /api/v1/{kind}`: creates a document.
pub fn create(call: &Call<'_>) -> Result<Reply, ApiError> {
    let kind = call.kind()?;
    let body: DocumentChange = call.json()?;
    let change = document_change(kind, body.document, false)?;
    let applied = call.apply(change, body.reason)?;
    let location = format!("/api/v1/{}/{}", kind.segment(), applied.id);
    Ok(Reply::created(applied, location))
}

/// `PUT /api/v1/{kind}/{id...}`: replaces a document (its id must be the path's).
pub fn update(call: &Call<'_>) -> Result<Reply, ApiError> {
    let kind = call.kind()?;
    let id = call.document_id()?;
    let body: DocumentChange = call.json()?;
    if id_of(kind, &body.document).as_deref() != Some(id.as_str()) {
        return Err(ApiError::bad_request(format!("the document's id is not `{id}`, the one in the path")));
    }
    Ok(Reply::applied(call.apply(document_change(kind, body.document, true)?, body.reason)?))
}

/// `PUT /api/v1/tiers/{tier}`: creates a tier, or replaces it (then `If-Match` is required).
pub fn put_tier(call: &Call<'_>) -> Result<Reply, ApiError> {
    let id = call.document_id()?;
    let exists = match call.manager.get(call.actor, Kind::Tier, &id) {
        Ok(_) => true,
        Err(ManageError::NotFound { .. }) => false,
        Err(e) => return Err(e.into()),
    };
    if exists && call.if_match.is_none() {
        return Err(ApiError::precondition_required(format!(
            "tier `{id}` exists: send If-Match with the ETag it was read at"
        )));
    }
    let body: DocumentChange = call.json()?;
    if id_of(Kind::Tier, &body.document).as_deref() != Some(id.as_str()) {
        return Err(ApiError::bad_request(format!("the document's id is not `{id}`, the one in the path")));
    }
    let applied = call.apply(document_change(Kind::Tier, body.document, true)?, body.reason)?;
    Ok(if exists { Reply::applied(applied) } else { Reply::created(applied, format!("/api/v1/tiers/{id}")) })
}

/// `DELETE /api/v1/tiers/{tier}?reason=`.
pub fn delete_tier(call: &Call<'_>) -> Result<Reply, ApiError> {
    let change = Change::DeleteTier { id: call.document_id()? };
    Ok(Reply::applied(call.apply(change, call.query("reason"))?))
}

/// `GET /api/v1/{kind}/{id...}/history`: every recorded version, oldest first.
pub fn history(call: &Call<'_>) -> Result<Reply, ApiError> {
    let mut entries = call.manager.history(call.actor, call.kind()?, &call.document_id()?)?;
    for entry in &mut entries {
        entry.document = entry.document.take().map(redact);
    }
    Ok(Reply::json(json!(entries)))
}

/// `POST /api/v1/{kind}/{id...}/rollback`: restores a version as a new change.
pub fn rollback(call: &Call<'_>) -> Result<Reply, ApiError> {
    let body: RollbackBody = call.json()?;
    let change = Change::Rollback { kind: call.kind()?, id: call.document_id()?, version: body.version };
    Ok(Reply::applied(call.apply(change, body.reason)?))
}

/// `POST /api/v1/services/import-openapi`.
pub fn import_openapi(call: &Call<'_>) -> Result<Reply, ApiError> {
    let body: ImportOpenApiBody = call.json()?;
    let change = Change::ImportOpenApi {
        opd: body.opd,
        name: body.name,
        version: body.version,
        document: body.document,
        upstream: body.upstream,
        classification: body.classification,
    };
    let applied = call.apply(change, body.reason)?;
    let location = format!("/api/v1/services/{}", applied.id);
    Ok(Reply::created(applied, location))
}

/// A lifecycle transition of the path's service, with the body's reason.
fn transition(call: &Call<'_>, change: impl FnOnce(String) -> Change) -> Result<Reply, ApiError> {
    let service = call.document_id()?;
    let body: ReasonBody = call.json_or_default()?;
    Ok(Reply::applied(call.apply(change(service), body.reason)?))
}

/// `POST .../submit`: draft → testing.
pub fn submit(call: &Call<'_>) -> Result<Reply, ApiError> {
    transition(call, |service| Change::Submit { service })
}

/// `POST .../suspend`.
pub fn suspend(call: &Call<'_>) -> Result<Reply, ApiError> {
    transition(call, |service| Change::Suspend { service })
}

/// `POST .../resume`.
pub fn resume(call: &Call<'_>) -> Result<Reply, ApiError> {
    transition(call, |service| Change::Resume { service })
}

/// `POST .../retire`.
pub fn retire(call: &Call<'_>) -> Result<Reply, ApiError> {
    transition(call, |service| Change::Retire { service })
}

/// `POST .../approvals` `{"kind": "operations"|"security", "reason": "..."}`.
pub fn approve(call: &Call<'_>) -> Result<Reply, ApiError> {
    let service = call.document_id()?;
    let body: ApprovalBody = call.json()?;
    let kind = approval_kind(&body.kind)?;
    Ok(Reply::applied(call.apply(Change::Approve { service, kind }, body.reason)?))
}

/// `DELETE .../approvals?kind=...&reason=...`.
pub fn withdraw(call: &Call<'_>) -> Result<Reply, ApiError> {
    let service = call.document_id()?;
    let kind = approval_kind(&call.query("kind").ok_or_else(|| ApiError::bad_request("query `kind` is required"))?)?;
    Ok(Reply::applied(call.apply(Change::Withdraw { service, kind }, call.query("reason"))?))
}

/// `POST /api/v1/clients/{opd}/{app}/clearance`.
pub fn set_clearance(call: &Call<'_>) -> Result<Reply, ApiError> {
    let body: ClearanceBody = call.json()?;
    let change = Change::SetClearance { client: call.document_id()?, clearance: body.clearance };
    Ok(Reply::applied(call.apply(change, body.reason)?))
}

/// `POST /api/v1/clients/{opd}/{app}/enabled`.
pub fn set_enabled(call: &Call<'_>) -> Result<Reply, ApiError> {
    let body: EnabledBody = call.json()?;
    let change = Change::SetClientEnabled { client: call.document_id()?, enabled: body.enabled };
    Ok(Reply::applied(call.apply(change, body.reason)?))
}

/// `POST /api/v1/clients/{opd}/{app}/certificates`: a CSR in, the signed certificate out.
pub fn issue_client_certificate(call: &Call<'_>) -> Result<Reply, ApiError> {
    let body: CertificateRequestBody = call.json()?;
    let days = body.days.unwrap_or(DEFAULT_CERTIFICATE_DAYS);
    let change = Change::IssueClientCertificate { client: call.document_id()?, csr_pem: body.csr_pem, days };
    Ok(Reply { status: StatusCode::CREATED, ..Reply::applied(call.apply(change, body.reason)?) })
}

/// `POST /api/v1/operators/{operator}/certificates`.
pub fn issue_operator_certificate(call: &Call<'_>) -> Result<Reply, ApiError> {
    let body: CertificateRequestBody = call.json()?;
    let days = body.days.unwrap_or(DEFAULT_CERTIFICATE_DAYS);
    let change = Change::IssueOperatorCertificate { operator: call.document_id()?, csr_pem: body.csr_pem, days };
    Ok(Reply { status: StatusCode::CREATED, ..Reply::applied(call.apply(change, body.reason)?) })
}

/// `PUT /api/v1/operators/{operator}/password` `{"password": "..."}`: 204, nothing answered.
pub fn set_password(call: &Call<'_>) -> Result<Reply, ApiError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        password: String,
    }
    // The body is never echoed: a parse error names the problem, not the text.
    let body: Body = serde_json::from_slice(call.body)
        .map_err(|_| ApiError::bad_request("the body must be {\"password\": \"...\"} (JSON, nothing else)"))?;
    call.manager.set_password(call.actor, &call.document_id()?, &body.password)?;
    Ok(Reply { status: StatusCode::NO_CONTENT, body: ReplyBody::Empty, ..Reply::json(Value::Null) })
}

/// `POST /api/v1/operators/{operator}/totp`: `{"secret", "uri"}`, the only time the secret is answered.
pub fn enrol_totp(call: &Call<'_>) -> Result<Reply, ApiError> {
    let enrolment = call.manager.enrol_totp(call.actor, &call.document_id()?)?;
    Ok(Reply::json(json!({"secret": enrolment.secret, "uri": enrolment.uri})))
}

/// `POST /api/v1/revocations` `{"serial_hex": "...", "reason": "..."}`.
pub fn revoke_certificate(call: &Call<'_>) -> Result<Reply, ApiError> {
    let body: RevocationBody = call.json()?;
    Ok(Reply::applied(call.apply(Change::RevokeCertificate { serial_hex: body.serial_hex }, body.reason)?))
}

/// `DELETE /api/v1/grants/{grant}?reason=`.
pub fn revoke_grant(call: &Call<'_>) -> Result<Reply, ApiError> {
    let change = Change::RevokeGrant { id: call.document_id()? };
    Ok(Reply::applied(call.apply(change, call.query("reason"))?))
}

/// `GET /api/v1/store/export`: the signed bundle, as a file.
pub fn export(call: &Call<'_>) -> Result<Reply, ApiError> {
    let bytes = call.manager.export(call.actor)?;
    let file_name = "penghubung-store-export.json".to_string();
    Ok(Reply {
        body: ReplyBody::Download { content_type: "application/json", file_name, bytes },
        ..Reply::json(Value::Null)
    })
}

/// `ImportStore`: a store export wrapped with why it is imported (the other form of the import's body).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportStoreBody {
    pub bundle: Value,
    #[serde(default)]
    pub reason: Option<String>,
}

/// `POST /api/v1/store/import`: the body is the bundle as exported (with `?reason=`), or
/// `{"bundle": <the export>, "reason": "..."}`. The signature covers the bundle's contents, not its bytes.
pub fn import(call: &Call<'_>) -> Result<Reply, ApiError> {
    if call.body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("the body must be a store export"));
    }
    let wrapped = serde_json::from_slice::<Value>(call.body)
        .ok()
        .filter(|v| v.get("bundle").is_some())
        .map(serde_json::from_value::<ImportStoreBody>)
        .transpose()
        .map_err(|e| ApiError::bad_request(format!("request body: {e}")))?;
    let applied = match wrapped {
        Some(body) => {
            let bundle = serde_json::to_vec(&body.bundle).map_err(|e| ApiError::bad_request(e.to_string()))?;
            call.manager.import(call.actor, &bundle, body.reason.or_else(|| call.query("reason")))?
        }
        None => call.manager.import(call.actor, call.body, call.query("reason"))?,
    };
    Ok(Reply::applied(applied))
}

/// `POST /api/v1/policy/explain`: what the gateway would decide, from the store as it is now.
pub fn explain(call: &Call<'_>) -> Result<Reply, ApiError> {
    let body: ExplainBody = call.json()?;
    let operation = explain::OperationSpec::parse(&body.operation).map_err(ApiError::bad_request)?;
    let now = match &body.at {
        Some(at) => penghubung_policy::grants::parse_time(at).map_err(ApiError::bad_request)?,
        None => penghubung_policy::unix_now(),
    };
    let config = call.manager.config();
    let snapshot = penghubung_manage::check::load_and_compile(config, call.manager.store()).map_err(|problems| {
        ManageError::InvalidStore { problems: problems.iter().map(ToString::to_string).collect() }
    })?;
    let explanation =
        explain::explain(&snapshot, &body.client, &body.service, &operation, body.purpose.as_deref(), now);
    Ok(Reply::json(json!(explanation)))
}

/// Grants ending within this many days are listed by the summary report.
pub const EXPIRY_WINDOW_DAYS: i64 = 30;

/// `GET /api/v1/reports/summary`: services by status, the approvals they wait for, grants that end soon, and
/// disabled clients, as far as the operator may see them.
pub fn summary(call: &Call<'_>) -> Result<Reply, ApiError> {
    let documents = |kind| -> Result<Vec<Value>, ApiError> {
        Ok(call.manager.list(call.actor, kind)?.into_iter().map(|v| v.document).collect())
    };
    let services = documents(Kind::Service)?;
    let mut by_status: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    let (mut awaiting_operations, mut awaiting_security) = (Vec::new(), Vec::new());
    for service in &services {
        let status = service["status"].as_str().unwrap_or("draft").to_string();
        if status == "testing" {
            let id = id_of(Kind::Service, service).unwrap_or_default();
            if service["approvals"]["operations"].is_null() {
                awaiting_operations.push(id.clone());
            }
            if service["approvals"]["security"].is_null() {
                awaiting_security.push(id);
            }
        }
        *by_status.entry(status).or_default() += 1;
    }
    let now = penghubung_policy::unix_now();
    let horizon = now + EXPIRY_WINDOW_DAYS * 24 * 3600;
    let grants_ending: Vec<Value> = documents(Kind::Grant)?
        .iter()
        .filter_map(|grant| {
            let not_after = grant["not_after"].as_str()?;
            let at = penghubung_policy::grants::parse_time(not_after).ok()?;
            (now..=horizon).contains(&at).then(|| json!({"id": grant["id"], "not_after": not_after}))
        })
        .collect();
    let clients = documents(Kind::Client)?;
    let disabled: Vec<&Value> =
        clients.iter().filter(|c| c["enabled"] == Value::Bool(false)).map(|c| &c["id"]).collect();
    Ok(Reply::json(json!({
        "services": {
            "total": services.len(),
            "by_status": by_status,
            "awaiting_operations_approval": awaiting_operations,
            "awaiting_security_approval": awaiting_security,
        },
        "grants_ending_within_days": EXPIRY_WINDOW_DAYS,
        "grants_ending": grants_ending,
        "clients": {"total": clients.len(), "disabled": disabled},
    })))
}

/// `GET /api/v1/audit/search?client=&service=&since=&until=&code=&changes=&security=&limit=`: matching records,
/// oldest first.
pub fn audit_search(call: &Call<'_>) -> Result<Reply, ApiError> {
    use penghubung_audit::search;
    let audit = &call.manager.config().audit;
    if !audit.enabled {
        return Err(ApiError::unavailable("the audit trail is off ([audit] enabled = false)"));
    }
    let time = |name: &str| call.query(name).map(|t| search::parse_time(&t).map_err(ApiError::bad_request)).transpose();
    let flag = |name: &str| call.query(name).is_some_and(|v| v == "true" || v == "1");
    let query = search::Query {
        client: call.query("client"),
        service: call.query("service"),
        since: time("since")?,
        until: time("until")?,
        code: call.query("code"),
        nik_hash: None,
        changes: flag("changes"),
        security: flag("security"),
    };
    let limit = match call.query("limit") {
        Some(n) => n.parse::<usize>().map_err(|_| ApiError::bad_request(format!("limit `{n}` is not a number")))?,
        None => DEFAULT_SEARCH_LIMIT,
    };
    let dir = call.manager.config().resolve(&audit.dir);
    let mut out = Vec::new();
    search::search(&dir, &query, &mut out).map_err(|e| ApiError::unavailable(format!("audit trail: {e}")))?;
    let records: Vec<Value> =
        String::from_utf8_lossy(&out).lines().filter_map(|line| serde_json::from_str(line).ok()).collect();
    let skip = records.len().saturating_sub(limit);
    let truncated = skip > 0;
    Ok(Reply::json(json!({
        "records": records[skip..],
        "truncated": truncated,
    })))
}

/// `GET /api/v1/reports/usage?month=YYYY-MM&opd=&format=json|text|csv|html&utc_offset=+07:00`: the monthly
/// usage report ([`penghubung_report`]) of the audit trail, verified first; this month by default.
pub fn usage_report(call: &Call<'_>) -> Result<Reply, ApiError> {
    use penghubung_report::{Format, Month, Query, ReportError, UtcOffset};
    let offset: UtcOffset = match call.query("utc_offset") {
        Some(text) => text.parse().map_err(ApiError::bad_request)?,
        None => UtcOffset::default(),
    };
    let month: Month = match call.query("month") {
        Some(text) => text.parse().map_err(ApiError::bad_request)?,
        None => Month::of(std::time::SystemTime::now(), offset),
    };
    let format: Format = match call.query("format") {
        Some(text) => text.parse().map_err(ApiError::bad_request)?,
        None => Format::Json,
    };
    let opd = call.query("opd");
    let opds: Vec<penghubung_types::documents::OpdDoc> = call
        .manager
        .list(call.actor, Kind::Opd)?
        .into_iter()
        .filter_map(|v| serde_json::from_value(v.document).ok())
        .collect();
    let query = Query { month, opd: opd.as_deref(), offset };
    let report = penghubung_report::usage_of_config(call.manager.config(), query, &opds).map_err(|e| match e {
        ReportError::AuditOff | ReportError::Key { .. } | ReportError::Trail { .. } => {
            ApiError::unavailable(e.to_string())
        }
    })?;
    Ok(match format {
        Format::Json => Reply::json(serde_json::to_value(&report).unwrap_or_default()),
        other => Reply {
            body: ReplyBody::Inline {
                content_type: other.content_type(),
                bytes: penghubung_report::render(&report, other).into_bytes(),
            },
            ..Reply::json(Value::Null)
        },
    })
}

/// `POST /api/v1/audit/verify`: the chain and the signed checkpoints of the whole trail.
pub fn audit_verify(call: &Call<'_>) -> Result<Reply, ApiError> {
    use penghubung_audit::{keys, verify};
    let config = call.manager.config();
    let audit = &config.audit;
    if !audit.enabled {
        return Err(ApiError::unavailable("the audit trail is off ([audit] enabled = false)"));
    }
    let key = keys::PublicKey::read(&config.resolve(&audit.public_key_file))
        .map_err(|e| ApiError::unavailable(format!("audit public key: {e}")))?;
    let report = verify::verify_dir(&config.resolve(&audit.dir), &key)
        .map_err(|e| ApiError::unavailable(format!("audit trail: {e}")))?;
    Ok(Reply::json(json!({
        "ok": report.ok() && report.records > 0,
        "segments": report.segments,
        "records": report.records,
        "first_seq": report.first_seq,
        "last_seq": report.last_seq,
        "checkpoints": report.checkpoints,
        "last_checkpoint": report.last_checkpoint,
        "unsigned_tail": report.unsigned_tail(),
        "key_id": key.key_id,
        "warnings": report.warnings,
        "problem": report.problem.as_ref().map(ToString::to_string),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_hashes_never_leave() {
        let doc = redact(json!({"id": "ani", "password_hash": "$argon2id$v=19$..."}));
        assert_eq!(doc, json!({"id": "ani", "password_set": true}));
    }

    #[test]
    fn versions_are_v_and_digits() {
        assert!(is_version("v1") && is_version("v12"));
        assert!(!is_version("v") && !is_version("1") && !is_version("v1a") && !is_version("V1"));
    }

    #[test]
    fn a_service_document_names_its_id() {
        let doc = json!({"opd": "dinsos", "name": "bansos", "version": 2});
        assert_eq!(id_of(Kind::Service, &doc).as_deref(), Some("dinsos/bansos/v2"));
        assert_eq!(id_of(Kind::Opd, &json!({"id": "dinsos"})).as_deref(), Some("dinsos"));
    }
}

//! Discovery, like X-Road's metaservices: a client asks the gateway what it may call and gets the contract of
//! each service as the gateway enforces it.
//!
//! * `GET /_penghubung/services`: the services the calling client may call now, and only those (a grant valid
//!   now, the service active or, for a test client, in testing), each with the operations it may call (covered
//!   by such a grant and within its clearance), its grants' purposes and tier, and the link to its OpenAPI.
//! * `GET /_penghubung/services/{opd}/{name}/v{n}/openapi.json`: the OpenAPI 3.1 document of a service the
//!   client holds a grant on (403 `policy.no_grant` otherwise, like a call would; 404 for no such service).
//!
//! Both need an identified client (mTLS); with `[policy] enforce = false` an anonymous caller sees every service.

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Method, Response, StatusCode};
use serde_json::{json, Value};

use crate::body::ResponseBody;
use crate::error::GatewayError;
use penghubung_policy as policy;
use penghubung_snapshot::{ClientEntry, CompiledService, Snapshot};
use penghubung_types::documents::ServiceStatus;

/// The path prefix of discovery.
pub const PREFIX: &str = "/_penghubung/services";

/// Answers a discovery request (`path` starts with [`PREFIX`]).
pub fn handle(
    snapshot: &Snapshot,
    client: Option<&ClientEntry>,
    method: &Method,
    path: &str,
) -> Result<Response<ResponseBody>, GatewayError> {
    if method != Method::GET && method != Method::HEAD {
        return Err(GatewayError::MethodNotAllowed {
            method: method.clone(),
            allow: HeaderValue::from_static("GET, HEAD"),
        });
    }
    let rest = path.strip_prefix(PREFIX).unwrap_or("");
    if rest.is_empty() || rest == "/" {
        return Ok(json_response(&catalogue(snapshot, client, policy::unix_now()), "application/json"));
    }
    let key =
        rest.strip_prefix('/').and_then(|r| r.strip_suffix("/openapi.json")).ok_or(GatewayError::RouteNotFound)?;
    let service = snapshot.services.iter().find(|s| &*s.key == key).ok_or(GatewayError::RouteNotFound)?;
    if let Some(client) = client {
        policy::grants_for(&client.access, &service.access, &mut ())?;
    }
    Ok(json_response(&openapi(snapshot, service), "application/json"))
}

/// What `client` may call now.
pub fn catalogue(snapshot: &Snapshot, client: Option<&ClientEntry>, now: i64) -> Value {
    let mut services = Vec::new();
    for service in snapshot.services.iter() {
        let listed = match client {
            None => Some(listing(service, None, now)),
            Some(client) => callable(client, service, now).then(|| listing(service, Some(client), now)),
        };
        services.extend(listed.filter(|s| !s["operations"].as_array().is_some_and(Vec::is_empty)));
    }
    services.sort_by(|a, b| a["service"].as_str().cmp(&b["service"].as_str()));
    json!({
        "client": client.map(|c| c.doc.id.as_str()),
        "services": services,
    })
}

/// The client holds a grant valid now on a service it may reach in its current status.
fn callable(client: &ClientEntry, service: &CompiledService, now: i64) -> bool {
    let status_ok = match service.doc.status {
        ServiceStatus::Active => true,
        ServiceStatus::Testing => client.access.test_client,
        _ => false,
    };
    status_ok
        && client.access.grants_on(service.access.index).is_some_and(|grants| grants.iter().any(|g| g.valid_at(now)))
}

fn listing(service: &CompiledService, client: Option<&ClientEntry>, now: i64) -> Value {
    let grants: Vec<&policy::CompiledGrant> = client
        .and_then(|c| c.access.grants_on(service.access.index))
        .map(|g| g.iter().filter(|g| g.valid_at(now)).collect())
        .unwrap_or_default();
    let mut operations = Vec::new();
    for (index, op) in service.doc.operations.iter().enumerate() {
        let compiled = service.operations.iter().find(|o| o.index == index);
        let classification = service.access.operation_policy(compiled).classification;
        let allowed = match client {
            None => true,
            Some(c) => grants.iter().any(|g| g.covers(Some(index))) && c.access.clearance >= classification,
        };
        if allowed {
            operations.push(json!({
                "id": op.id,
                "method": op.method,
                "path": op.path,
                "summary": op.summary,
                "classification": classification.as_str(),
            }));
        }
    }
    if service.doc.operations.is_empty() {
        operations
            .push(json!({"id": null, "method": "*", "path": "/*", "summary": "any path (no operations declared)",
            "classification": service.doc.classification.as_str()}));
    }
    let grants: Vec<Value> = grants
        .iter()
        .map(|g| json!({"id": &*g.id, "tier": &*g.tier, "purposes": g.purposes().collect::<Vec<_>>()}))
        .collect();
    json!({
        "service": &*service.key,
        "opd": service.doc.opd,
        "name": service.doc.name,
        "version": service.doc.version,
        "title": service.doc.title,
        "description": service.doc.description,
        "status": service.doc.status.as_str(),
        "classification": service.doc.classification.as_str(),
        "operations": operations,
        "grants": grants,
        "openapi": format!("{PREFIX}/{}/openapi.json", service.key),
    })
}

/// The OpenAPI 3.1 document of `service` as the gateway enforces it.
pub fn openapi(snapshot: &Snapshot, service: &CompiledService) -> Value {
    let schema = |path: &str| snapshot.schemas.get(path).map(|v| &**v);
    let input = penghubung_contract::export::ExportInput {
        service: &service.doc,
        schema: &schema,
        server_url: &format!("/{}", service.key),
    };
    penghubung_contract::export::export(&input)
}

fn json_response(value: &Value, content_type: &'static str) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::full(Bytes::from(value.to_string())));
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

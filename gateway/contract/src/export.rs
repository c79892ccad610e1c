//! The OpenAPI 3.1 document of a service as the gateway enforces it, for discovery
//! (`/_penghubung/services/{service}/openapi.json`), as a pure function over `serde_json::Value`.
//!
//! Schemas are inlined as stored (self-contained, `$defs` kept, each `#/$defs/...` reference relative to the
//! schema it is in). A `$ref` inside a stored schema to another file (another stored schema, or a reference type
//! such as `/ref/nik.schema.json`) is left as it is. The import of OpenAPI documents is tooling and lives outside
//! the data plane (`penghubung service import-openapi`); it reads an export back, skipping what [`GATEWAY_MARK`]
//! marks.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use penghubung_types::documents::{OperationDoc, ServiceDoc};

/// The dialect every emitted schema declares.
pub const JSON_SCHEMA_DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";
/// The classification keyword of operations, schema fields and (in an export) the service.
pub const KLASIFIKASI: &str = "x-klasifikasi";
/// Marks the gateway's own error response in an export, so that an import skips it.
pub const GATEWAY_MARK: &str = "x-penghubung-gateway";

/// What [`export`] needs: the service, a lookup of stored schemas by their path under the store's `schemas/`,
/// and the URL clients call the service at (`https://gateway/{opd}/{name}/v{n}`).
pub struct ExportInput<'a> {
    pub service: &'a ServiceDoc,
    pub schema: &'a dyn Fn(&str) -> Option<&'a Value>,
    pub server_url: &'a str,
}

/// The OpenAPI 3.1 document of a service as the gateway enforces it: its operations, their contracts (schemas
/// inlined), the effective classification of each operation (`x-klasifikasi`), the `X-Penghubung-Purpose`
/// header, and the gateway's RFC 9457 problem responses as `default`.
pub fn export(input: &ExportInput<'_>) -> Value {
    let service = input.service;
    let mut paths = Map::new();
    for op in &service.operations {
        let operation = operation(input, op);
        let item = paths.entry(op.path.clone()).or_insert_with(|| json!({}));
        if let Value::Object(item) = item {
            item.insert(op.method.to_ascii_lowercase(), Value::Object(operation));
        }
    }

    json!({
        "openapi": "3.1.0",
        "jsonSchemaDialect": JSON_SCHEMA_DIALECT,
        "info": info(service),
        "servers": [ { "url": input.server_url } ],
        "paths": paths,
    })
}

/// The document's `info`: title, version, description, the service's classification and key.
fn info(service: &ServiceDoc) -> Map<String, Value> {
    let mut info = Map::new();
    info.insert("title".into(), json!(service.title));
    info.insert("version".into(), json!(format!("v{}", service.version)));
    if let Some(description) = &service.description {
        info.insert("description".into(), json!(description));
    }
    info.insert(KLASIFIKASI.into(), json!(service.classification.as_str()));
    info.insert("x-penghubung-service".into(), json!(service.key()));
    info
}

/// One operation: its id, summary, effective classification, parameters, request body and responses.
fn operation(input: &ExportInput<'_>, op: &OperationDoc) -> Map<String, Value> {
    let service = input.service;
    let mut operation = Map::new();
    operation.insert("operationId".into(), json!(op.id));
    if let Some(summary) = &op.summary {
        operation.insert("summary".into(), json!(summary));
    }
    let effective = op.classification.map_or(service.classification, |c| c.max(service.classification));
    operation.insert(KLASIFIKASI.into(), json!(effective.as_str()));
    operation.insert("parameters".into(), Value::Array(parameters(input, op)));

    if let Some(request) = &op.request {
        operation.insert(
            "requestBody".into(),
            json!({ "required": true, "content": { request.content_type.clone(): { "schema": stored(input, &request.schema) } } }),
        );
    }
    operation.insert("responses".into(), Value::Object(responses(input, op)));
    operation
}

/// The operation's parameters: its path parameters, the properties of its query schema, and the
/// `X-Penghubung-Purpose` header.
fn parameters(input: &ExportInput<'_>, op: &OperationDoc) -> Vec<Value> {
    let mut parameters = Vec::new();
    for segment in op.path.split('/') {
        if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            parameters.push(json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }));
        }
    }
    if let Some(query) = &op.query {
        query_parameters(&stored(input, &query.schema), &mut parameters);
    }
    parameters.push(json!({
        "name": "X-Penghubung-Purpose",
        "in": "header",
        "required": false,
        "description": "The purpose of this call (tujuan penggunaan): one of the purposes of the caller's grant. \
                        Required when the grant lists purposes.",
        "schema": { "type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,62}$" }
    }));
    parameters
}

/// One query parameter per property of the query `schema` (a property that refers to the schema's `$defs`
/// takes them along).
fn query_parameters(schema: &Value, parameters: &mut Vec<Value>) {
    let required: BTreeSet<&str> =
        schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
    let defs = schema.get("$defs");
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (name, property) in properties {
            let mut property = property.clone();
            if let (Some(defs), true) = (defs, uses_own_defs(&property)) {
                if let Value::Object(node) = &mut property {
                    node.insert("$defs".into(), defs.clone());
                }
            }
            let mut parameter = Map::new();
            parameter.insert("name".into(), json!(name));
            parameter.insert("in".into(), json!("query"));
            parameter.insert("required".into(), json!(required.contains(name.as_str())));
            if let Some(description) = property.get("description") {
                parameter.insert("description".into(), description.clone());
            }
            parameter.insert("schema".into(), property);
            parameters.push(Value::Object(parameter));
        }
    }
}

/// The operation's responses, with the gateway's problem responses under `default` (added to the service's own
/// `default`, if it has one).
fn responses(input: &ExportInput<'_>, op: &OperationDoc) -> Map<String, Value> {
    let mut responses = Map::new();
    for (status, response) in &op.responses {
        let description = response.description.clone().unwrap_or_else(|| format!("Response {status}"));
        responses.insert(
            status.clone(),
            json!({
                "description": description,
                "content": { "application/json": { "schema": stored(input, &response.schema) } }
            }),
        );
    }
    let gateway_errors = json!({ "schema": problem_schema(), GATEWAY_MARK: true });
    match responses.get_mut("default").and_then(|r| r.get_mut("content")).and_then(Value::as_object_mut) {
        Some(content) => {
            content.insert("application/problem+json".into(), gateway_errors);
        }
        None => {
            responses.insert(
                "default".into(),
                json!({
                    "description": "An error, from the gateway (routing, policy, rate limit, contract, upstream) \
                                    or the service, as RFC 9457 problem details",
                    "content": { "application/problem+json": gateway_errors }
                }),
            );
        }
    }
    responses
}

/// A stored schema, or a schema that says it is missing (the snapshot refuses such a service, so this is only
/// seen when exporting from an unchecked store).
fn stored(input: &ExportInput<'_>, path: &str) -> Value {
    (input.schema)(path)
        .cloned()
        .unwrap_or_else(|| json!({ "description": format!("the schema `{path}` is missing from the store") }))
}

/// Whether `schema` has a `$ref` to `#/$defs/...` (outside its own `$defs`).
fn uses_own_defs(schema: &Value) -> bool {
    match schema {
        Value::Object(node) => node.iter().any(|(key, child)| match (key.as_str(), child) {
            ("$ref", Value::String(reference)) => reference.starts_with("#/$defs/") || reference == "#",
            ("enum" | "const" | "default" | "examples", _) => false,
            _ => uses_own_defs(child),
        }),
        Value::Array(items) => items.iter().any(uses_own_defs),
        _ => false,
    }
}

/// The gateway's RFC 9457 problem details (see `error.rs`).
fn problem_schema() -> Value {
    json!({
        "type": "object",
        "required": ["type", "title", "status", "code"],
        "properties": {
            "type": { "type": "string", "description": "`urn:penghubung:problem:<code>`" },
            "title": { "type": "string" },
            "status": { "type": "integer" },
            "code": {
                "type": "string",
                "description": "Stable error code, e.g. route.not_found, policy.no_grant, policy.clearance, \
                                ratelimit.exceeded, contract.request_invalid, upstream.timeout"
            },
            "detail": { "type": "string", "description": "What to fix" },
            "request_id": { "type": "string" }
        }
    })
}

//! The admin API's own OpenAPI 3.1 document, generated from the route table ([`crate::routes::ROUTES`]) and
//! the permission table: one operation per route, with its path parameters, body, the roles allowed
//! (`x-roles`), the management operation (`x-operation`) and the problem+json answers. Served at
//! `/api/v1/openapi.json`.

use penghubung_manage::roles_for;
use serde_json::{json, Map, Value};

use crate::routes::{Input, Precondition, Route, ROUTES};

/// Builds the document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let item = paths.entry(route.path.to_string()).or_insert_with(|| json!({}));
        item[route.method.as_str().to_ascii_lowercase()] = operation(route);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Penghubung admin API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The management plane of Penghubung: OPDs, services and their lifecycle, clients, \
                grants, tiers, operators, history, backups, policy explain and the audit trail. Operators \
                authenticate with a client certificate issued for operators; every route declares the roles \
                it allows (`x-roles`), and everything else is refused. Errors are RFC 9457 problem+json with \
                a stable `code`.",
        },
        "servers": [{"url": "/"}],
        "security": [{"operatorCertificate": []}],
        "paths": paths,
        "components": components(),
    })
}

fn operation(route: &Route) -> Value {
    let mut roles: Vec<&str> = Vec::new();
    for op in route.operations() {
        for role in roles_for(op) {
            if !roles.contains(&role.as_str()) {
                roles.push(role.as_str());
            }
        }
    }
    let mut parameters: Vec<Value> = route
        .parameters()
        .map(|name| {
            let mut schema = json!({"type": "string"});
            if name == "version" {
                schema["pattern"] = json!("^v[0-9]+$");
            }
            json!({"name": name, "in": "path", "required": true, "schema": schema})
        })
        .collect();
    for name in route.query {
        let required = *name == "kind";
        parameters.push(json!({"name": name, "in": "query", "required": required, "schema": {"type": "string"}}));
    }
    if route.precondition != Precondition::None {
        parameters.push(json!({
            "name": "If-Match",
            "in": "header",
            "required": route.precondition == Precondition::Required,
            "description": "The ETag the document was read at; a stale one is answered 412.",
            "schema": {"type": "string"},
        }));
    }
    let mut responses = json!({
        "401": {"$ref": "#/components/responses/Problem"},
        "403": {"$ref": "#/components/responses/Problem"},
    });
    let creates = ["create", "add", "issue", "importOpenApi"].iter().any(|p| route.name.starts_with(p));
    let success = if creates { "201" } else { "200" };
    if route.name == "setOperatorPassword" {
        responses["204"] = json!({"description": "Done (the password is stored as argon2id; nothing is answered)"});
    } else {
        responses[success] = json!({"description": "Done", "content": {"application/json": {}}});
    }
    if route.name == "putTier" {
        responses["201"] = json!({"description": "Created", "content": {"application/json": {}}});
    }
    if route.input != Input::None || route.parameters().count() > 0 {
        for status in ["400", "404", "409", "422"] {
            responses[status] = json!({"$ref": "#/components/responses/Problem"});
        }
    }
    if route.precondition != Precondition::None {
        responses["412"] = json!({"$ref": "#/components/responses/Problem"});
    }
    if route.precondition == Precondition::Required {
        responses["428"] = json!({"$ref": "#/components/responses/Problem"});
    }
    let mut op = json!({
        "operationId": route.name,
        "summary": route.summary,
        "x-roles": roles,
        "parameters": parameters,
        "responses": responses,
    });
    if let Some(operation) = route.operation {
        op["x-operation"] = json!(operation.as_str());
    }
    match route.input {
        Input::None => {}
        Input::Json(schema) => {
            op["requestBody"] = json!({
                "required": true,
                "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}},
            });
        }
        Input::Bundle => {
            op["requestBody"] = json!({
                "required": true,
                "description": "A store export, as `GET /api/v1/store/export` wrote it (reason in the query), or \
                    `{\"bundle\": <the export>, \"reason\": \"...\"}`.",
                "content": {"application/json": {}},
            });
        }
    }
    op
}

fn components() -> Value {
    let reason = json!({"type": "string", "description": "Why; recorded with the change."});
    json!({
        "securitySchemes": {
            "operatorCertificate": {"type": "mutualTLS", "description": "A client certificate issued for an operator."},
        },
        "responses": {
            "Problem": {
                "description": "Refused (RFC 9457)",
                "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
            },
        },
        "schemas": {
            "Problem": {
                "type": "object",
                "required": ["type", "title", "status", "code"],
                "properties": {
                    "type": {"type": "string"},
                    "title": {"type": "string"},
                    "status": {"type": "integer"},
                    "detail": {"type": "string"},
                    "code": {"type": "string", "examples": ["admin.forbidden"]},
                    "problems": {"type": "array", "items": {"type": "string"}, "description": "Every reason a change would break the store (admin.invalid_store)."},
                },
            },
            "DocumentChange": {
                "type": "object",
                "required": ["document"],
                "additionalProperties": false,
                "properties": {
                    "document": {"type": "object", "description": "The whole document, as in the store (see docs/documents.md)."},
                    "reason": reason,
                },
            },
            "Reason": {"type": "object", "additionalProperties": false, "properties": {"reason": reason}},
            "Approval": {
                "type": "object",
                "required": ["kind"],
                "additionalProperties": false,
                "properties": {"kind": {"enum": ["operations", "security"]}, "reason": reason},
            },
            "Rollback": {
                "type": "object",
                "required": ["version"],
                "additionalProperties": false,
                "properties": {"version": {"type": "integer", "minimum": 1}, "reason": reason},
            },
            "Clearance": {
                "type": "object",
                "required": ["clearance"],
                "additionalProperties": false,
                "properties": {
                    "clearance": {"enum": ["terbuka", "terbatas", "rahasia", "sangat_rahasia"]},
                    "reason": reason,
                },
            },
            "Enabled": {
                "type": "object",
                "required": ["enabled"],
                "additionalProperties": false,
                "properties": {"enabled": {"type": "boolean"}, "reason": reason},
            },
            "CertificateRequest": {
                "type": "object",
                "required": ["csr_pem"],
                "additionalProperties": false,
                "properties": {
                    "csr_pem": {"type": "string", "description": "PKCS#10 CSR in PEM; the key never leaves its owner."},
                    "days": {"type": "integer", "minimum": 1, "default": 365},
                    "reason": reason,
                },
            },
            "Password": {
                "type": "object",
                "required": ["password"],
                "additionalProperties": false,
                "properties": {"password": {"type": "string", "minLength": 12, "maxLength": 1024}},
            },
            "Revocation": {
                "type": "object",
                "required": ["serial_hex"],
                "additionalProperties": false,
                "properties": {"serial_hex": {"type": "string"}, "reason": reason},
            },
            "ImportOpenApi": {
                "type": "object",
                "required": ["opd", "name", "version", "document"],
                "additionalProperties": false,
                "properties": {
                    "opd": {"type": "string"},
                    "name": {"type": "string"},
                    "version": {"type": "integer", "minimum": 1},
                    "document": {"type": "object", "description": "The service's OpenAPI 3 document."},
                    "upstream": {"type": "string"},
                    "classification": {"enum": ["terbuka", "terbatas", "rahasia", "sangat_rahasia"]},
                    "reason": reason,
                },
            },
            "Explain": {
                "type": "object",
                "required": ["client", "service", "operation"],
                "additionalProperties": false,
                "properties": {
                    "client": {"type": "string", "examples": ["dinkes/simpus"]},
                    "service": {"type": "string", "examples": ["dinkes/rekam-medis/v1"]},
                    "operation": {"type": "string", "examples": ["GET /pasien/{id}"]},
                    "purpose": {"type": "string"},
                    "at": {"type": "string", "format": "date-time"},
                },
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_in_the_document_with_its_roles() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        for route in ROUTES {
            let op = &doc["paths"][route.path][route.method.as_str().to_ascii_lowercase()];
            assert_eq!(op["operationId"], route.name, "{} {}", route.method, route.path);
            if route.operation.is_some() {
                assert!(!op["x-roles"].as_array().unwrap().is_empty(), "{} has roles", route.name);
            }
            if let Input::Json(schema) = route.input {
                assert!(doc["components"]["schemas"][schema].is_object(), "schema {schema}");
            }
        }
    }
}

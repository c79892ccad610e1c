//! OpenAPI import and export, as pure functions over `serde_json::Value`.
//!
//! [`import`] reads an OpenAPI 3.0.x or 3.1.x document (JSON: a YAML document must be converted to JSON first,
//! e.g. `yq -o=json`) into [`ImportedOperation`]s whose JSON Schemas (2020-12) are **self-contained**: every
//! `#/components/schemas/X` they use is copied (transitively) into the schema's own `$defs` and the reference
//! becomes `#/$defs/X`, so each schema can be stored as one file under the store's `schemas/` and compiled on its
//! own. `$ref`s to `#/components/parameters/`, `#/components/requestBodies/` and `#/components/responses/` are
//! followed. A `$ref` to one of the gateway's reference types (`https://schemas.penghubung.local/ref/nik.schema.json`,
//! also written `/ref/nik.schema.json` or `../ref/nik.schema.json`) is copied into `$defs` as `ref-nik` from the
//! copy embedded in the binary. Any other non-local `$ref` is an error: the gateway never fetches a schema.
//!
//! All problems are reported at once. Things the gateway does not enforce (header and cookie parameters, security
//! schemes, non-JSON bodies, `2XX`-style response ranges) are skipped with a warning, as are the OpenAPI 3.0
//! schema differences that are not converted (only `nullable`, boolean `exclusiveMinimum`/`exclusiveMaximum` and
//! `example` are).
//!
//! Query parameters become one object schema (the gateway checks the query as an object whose values are strings,
//! or arrays of strings when a parameter repeats): `integer`, `number` and `boolean` parameters are turned into
//! strings with a `pattern` (or an `enum` of `"true"`/`"false"`), with a warning.
//!
//! [`export`] (re-exported from the data plane's `contract::export`, which discovery serves) writes the OpenAPI
//! 3.1 document of a service as the gateway enforces it; an export imports again.
//!
//! This is tooling (`penghubung service import-openapi`): nothing on the data plane uses this module.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

pub use penghubung_contract::export::{export, ExportInput, JSON_SCHEMA_DIALECT};
use penghubung_contract::export::{GATEWAY_MARK, KLASIFIKASI};
use penghubung_types::documents::Classification;

/// Where the gateway's reference types live (`schemas/ref/` in the binary).
const GATEWAY_SCHEMA_BASE: &str = "https://schemas.penghubung.local/";
/// OpenAPI methods the gateway routes, lower case as in a path item, with the gateway's spelling.
const METHODS: [(&str, &str); 7] = [
    ("get", "GET"),
    ("put", "PUT"),
    ("post", "POST"),
    ("delete", "DELETE"),
    ("options", "OPTIONS"),
    ("head", "HEAD"),
    ("patch", "PATCH"),
];
/// `$ref` chains between components longer than this are refused (a cycle in practice).
const MAX_REF_HOPS: usize = 16;

/// One operation read from an OpenAPI document.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportedOperation {
    /// A slug `^[a-z0-9][a-z0-9-]{0,62}$`: the `operationId` kebab-cased (`verifikasiNik` → `verifikasi-nik`),
    /// or, without one, the method and path (`get-penduduk-nik`).
    pub id: String,
    /// Upper case (`GET`).
    pub method: String,
    /// The path template as the gateway writes it: parameter names in lower snake_case (`{kodeWilayah}` becomes
    /// `{kode_wilayah}`, with a warning).
    pub path: String,
    pub summary: Option<String>,
    /// The operation's own `x-klasifikasi`, if it has one.
    pub classification: Option<Classification>,
    /// `(content type, schema)` of the request body: `application/json` when offered, else another `+json` type.
    pub request: Option<(String, Value)>,
    /// An object schema of the `in: query` parameters (path- and operation-level merged): `properties` = the
    /// parameters' schemas, `required` = the required ones (sorted), `additionalProperties: false`.
    pub query: Option<Value>,
    /// `(status, schema)` of each response with JSON content (`"200"`, ..., `"default"`), in status order.
    pub responses: Vec<(String, Value)>,
}

/// What an OpenAPI document describes, ready to become a service's operations and contracts.
#[derive(Clone, Debug, PartialEq)]
pub struct Imported {
    pub title: String,
    pub description: Option<String>,
    /// `info.version`, as written.
    pub version: String,
    /// `info.x-klasifikasi` (an export writes the service's classification there), if present.
    pub classification: Option<Classification>,
    pub operations: Vec<ImportedOperation>,
    /// What was skipped or changed, one sentence each.
    pub warnings: Vec<String>,
}

/// Reads an OpenAPI 3.0.x / 3.1.x document (as JSON). Returns every problem at once.
pub fn import(document: &Value) -> Result<Imported, Vec<String>> {
    let Some(root) = document.as_object() else {
        return Err(vec!["an OpenAPI document must be a JSON object".into()]);
    };
    let mut cx = Importer { document, v30: false, errors: Vec::new(), warnings: Vec::new() };
    match root.get("openapi").and_then(Value::as_str) {
        Some(v) if v.starts_with("3.1.") || v == "3.1" => {}
        Some(v) if v.starts_with("3.0.") || v == "3.0" => {
            cx.v30 = true;
            cx.warnings.push(
                "OpenAPI 3.0 document: `nullable`, boolean `exclusiveMinimum`/`exclusiveMaximum` and `example` were \
                 converted to JSON Schema 2020-12; other 3.0-only schema keywords (e.g. `discriminator`, `xml`, \
                 `format: byte`) are kept as they are, and siblings of a `$ref` now apply"
                    .into(),
            );
        }
        Some(v) => cx.errors.push(format!("`openapi: {v}` is not supported: import OpenAPI 3.0.x or 3.1.x")),
        None if root.contains_key("swagger") => {
            cx.errors.push("Swagger 2.0 is not supported: convert the document to OpenAPI 3.x first".into())
        }
        None => cx.errors.push("`openapi` (the version, e.g. \"3.1.0\") is missing".into()),
    }
    let info = root.get("info").and_then(Value::as_object);
    let text = |key: &str| info.and_then(|i| i.get(key)).and_then(Value::as_str).map(str::to_string);
    let title = text("title").unwrap_or_else(|| {
        cx.errors.push("`info.title` is missing".into());
        String::new()
    });
    let version = text("version").unwrap_or_else(|| {
        cx.errors.push("`info.version` is missing".into());
        String::new()
    });
    let classification = info.and_then(|i| cx.classification(i, "`info`"));
    if root.contains_key("security") || document.pointer("/components/securitySchemes").is_some() {
        cx.warnings.push(
            "security schemes and requirements are ignored: callers authenticate to the gateway with mTLS \
             certificates and grants decide what they may call"
                .into(),
        );
    }
    if root.contains_key("webhooks") {
        cx.warnings.push("`webhooks` are ignored: the gateway routes calls to the service only".into());
    }

    let mut operations = Vec::new();
    match root.get("paths") {
        Some(Value::Object(paths)) => {
            for (path, item) in paths {
                cx.path_item(path, item, &mut operations);
            }
        }
        Some(_) => cx.errors.push("`paths` must be an object".into()),
        None => {}
    }
    if operations.is_empty() && cx.errors.is_empty() {
        cx.errors.push("the document has no operations (`paths` is empty)".into());
    }
    check_unique(&operations, &mut cx.errors);
    if !cx.errors.is_empty() {
        return Err(cx.errors);
    }
    Ok(Imported {
        title,
        description: text("description"),
        version,
        classification,
        operations: operations.into_iter().map(|(op, _)| op).collect(),
        warnings: cx.warnings,
    })
}

/// Operation ids are unique, and no two operations share a method and route (`/a/{x}` and `/a/{y}` are one
/// route).
fn check_unique(operations: &[(ImportedOperation, String)], errors: &mut Vec<String>) {
    let mut ids: BTreeMap<&str, &str> = BTreeMap::new();
    let mut routes: BTreeMap<(String, String), &str> = BTreeMap::new();
    for (op, place) in operations {
        if let Some(first) = ids.insert(&op.id, place) {
            errors.push(format!(
                "operation id `{}` is used by both {first} and {place}: operation ids must be unique (after \
                 kebab-casing)",
                op.id
            ));
        }
        let route = op.path.split('/').map(|s| if s.starts_with('{') { "{}" } else { s }).collect::<Vec<_>>();
        if let Some(first) = routes.insert((op.method.clone(), route.join("/")), place) {
            errors.push(format!("{first} and {place} are the same route (only the parameter names differ)"));
        }
    }
}

struct Importer<'d> {
    document: &'d Value,
    v30: bool,
    errors: Vec<String>,
    warnings: Vec<String>,
}

/// Where `#/$defs/...` references in a schema being copied point.
#[derive(Clone, Copy)]
enum Scope<'s> {
    /// The schema at a request, response or parameter: its own `$defs` (kept) if it has them.
    Root { has_defs: bool },
    /// A `components/schemas` entry: `#/$defs` would mean the OpenAPI document's root, which has none.
    Component(&'s str),
    /// A gateway reference type copied into `$defs/<name>`: its `#...` references move below that.
    Embedded(&'s str),
}

/// A schema the emitted one needs in its `$defs`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Pending {
    Component(String),
    RefType(String),
}

impl<'d> Importer<'d> {
    fn path_item(&mut self, raw_path: &str, item: &'d Value, out: &mut Vec<(ImportedOperation, String)>) {
        let Some(item) = item.as_object() else {
            self.errors.push(format!("path `{raw_path}`: a path item must be an object"));
            return;
        };
        if item.contains_key("$ref") {
            self.errors.push(format!("path `{raw_path}`: a `$ref` path item is not supported; write it out"));
            return;
        }
        let path = match map_path(raw_path) {
            Ok((path, renamed)) => {
                for (from, to) in renamed {
                    self.warnings.push(format!(
                        "path `{raw_path}`: parameter `{{{from}}}` is written `{{{to}}}` (the gateway's path \
                         parameters are lower snake_case)"
                    ));
                }
                path
            }
            Err(problem) => {
                self.errors.push(format!("path `{raw_path}`: {problem}"));
                return;
            }
        };
        for key in item.keys() {
            let known = METHODS.iter().any(|(m, _)| m == key)
                || matches!(key.as_str(), "parameters" | "summary" | "description" | "servers")
                || key.starts_with("x-");
            if key == "trace" {
                self.errors.push(format!(
                    "`TRACE {raw_path}`: the method TRACE is not supported (GET, HEAD, POST, PUT, PATCH, DELETE, \
                     OPTIONS are)"
                ));
            } else if !known {
                self.warnings.push(format!("path `{raw_path}`: `{key}` is not an OpenAPI path item field; ignored"));
            }
        }
        let shared = item.get("parameters");
        for (lower, upper) in METHODS {
            let Some(operation) = item.get(lower) else { continue };
            let place = format!("{upper} {raw_path}");
            let Some(operation) = operation.as_object() else {
                self.errors.push(format!("{place}: an operation must be an object"));
                continue;
            };
            let op = self.operation(upper, &path, raw_path, &place, operation, shared);
            out.push((op, place));
        }
    }

    fn operation(
        &mut self,
        method: &str,
        path: &str,
        raw_path: &str,
        place: &str,
        operation: &'d Map<String, Value>,
        shared: Option<&'d Value>,
    ) -> ImportedOperation {
        let id = self.operation_id(operation, method, raw_path, place);
        let summary = operation.get("summary").and_then(Value::as_str).map(str::to_string);
        let classification = self.classification(operation, place);
        let parameters = self.parameters(operation, shared, place);
        let query = self.query(&parameters, place);
        let request = self.request_body(operation, place);
        let responses = self.responses(operation, place);
        // Returned even when something above failed: the id and route still take part in the uniqueness checks.
        ImportedOperation {
            id,
            method: method.to_string(),
            path: path.to_string(),
            summary,
            classification,
            request,
            query,
            responses,
        }
    }

    /// The operation's id: its `operationId` as a slug, or, without one, one made of the method and path.
    fn operation_id(&mut self, operation: &Map<String, Value>, method: &str, raw_path: &str, place: &str) -> String {
        match operation.get("operationId") {
            Some(Value::String(given)) => {
                let full = words(given, '-');
                let id = slug(&full);
                if id.is_empty() {
                    self.errors.push(format!("{place}: `operationId: {given}` has no letters or digits"));
                } else if id != full {
                    self.warnings.push(format!("{place}: `operationId` shortened to `{id}` (at most 63 characters)"));
                }
                id
            }
            Some(other) => {
                self.errors.push(format!("{place}: `operationId` must be a string, not {other}"));
                String::new()
            }
            None => {
                let id = slug(&words(&format!("{method} {raw_path}"), '-'));
                self.warnings.push(format!("{place}: no `operationId`; the operation is called `{id}`"));
                id
            }
        }
    }

    /// The operation's parameters as (name, in, parameter): path-level first, operation-level overriding by
    /// (name, in).
    fn parameters(
        &mut self,
        operation: &'d Map<String, Value>,
        shared: Option<&'d Value>,
        place: &str,
    ) -> Vec<(String, String, &'d Map<String, Value>)> {
        let mut parameters: Vec<(String, String, &'d Map<String, Value>)> = Vec::new();
        for list in [shared, operation.get("parameters")].into_iter().flatten() {
            let Some(list) = list.as_array() else {
                self.errors.push(format!("{place}: `parameters` must be an array"));
                continue;
            };
            for (i, parameter) in list.iter().enumerate() {
                let at = format!("{place} parameter #{}", i + 1);
                let Some(parameter) = self.follow(parameter, "parameters", &at).and_then(Value::as_object) else {
                    continue;
                };
                let (Some(name), Some(location)) =
                    (parameter.get("name").and_then(Value::as_str), parameter.get("in").and_then(Value::as_str))
                else {
                    self.errors.push(format!("{at}: a parameter needs `name` and `in`"));
                    continue;
                };
                parameters.retain(|(n, l, _)| !(n == name && l == location));
                parameters.push((name.to_string(), location.to_string(), parameter));
            }
        }
        parameters
    }

    /// The emitted object schema of the `in: query` parameters, or `None` without any; header and cookie
    /// parameters are reported as not checked.
    fn query(&mut self, parameters: &[(String, String, &'d Map<String, Value>)], place: &str) -> Option<Value> {
        let mut ignored_headers = Vec::new();
        let mut query_properties = Map::new();
        let mut query_required = BTreeSet::new();
        for (name, location, parameter) in parameters {
            match location.as_str() {
                "query" => {
                    let at = format!("{place} query parameter `{name}`");
                    let schema = match (parameter.get("schema"), parameter.get("content")) {
                        (Some(schema), _) => schema.clone(),
                        (None, Some(_)) => {
                            self.warnings
                                .push(format!("{at}: `content` parameters are not checked; any string is accepted"));
                            json!({ "type": "string" })
                        }
                        (None, None) => json!({}),
                    };
                    let schema = self.query_strings(schema, &at);
                    query_properties.insert(name.clone(), schema);
                    if parameter.get("required") == Some(&Value::Bool(true)) {
                        query_required.insert(name.clone());
                    }
                }
                "header" if name.to_ascii_lowercase().starts_with("x-penghubung-") => {}
                "header" | "cookie" => ignored_headers.push(format!("{name} ({location})")),
                "path" => {}
                other => self.errors.push(format!("{place}: parameter `{name}` has an unknown `in: {other}`")),
            }
        }
        if !ignored_headers.is_empty() {
            self.warnings.push(format!(
                "{place}: header and cookie parameters are not checked by the gateway: {}",
                ignored_headers.join(", ")
            ));
        }
        if query_properties.is_empty() {
            None
        } else {
            self.query_object(query_properties, query_required, place)
        }
    }

    /// The object schema of the query parameters' schemas (emitted): each parameter's own `$defs` (an export
    /// writes them there) move up to the query object.
    fn query_object(
        &mut self,
        mut query_properties: Map<String, Value>,
        query_required: BTreeSet<String>,
        place: &str,
    ) -> Option<Value> {
        let mut defs = Map::new();
        for (name, schema) in query_properties.iter_mut() {
            if let Some(Value::Object(own)) = schema.as_object_mut().and_then(|s| s.remove("$defs")) {
                for (key, def) in own {
                    match defs.get(&key) {
                        Some(existing) if *existing != def => self.errors.push(format!(
                            "{place} query parameter `{name}`: `$defs/{key}` differs from another parameter's"
                        )),
                        _ => {
                            defs.insert(key, def);
                        }
                    }
                }
            }
        }
        let mut object = Map::new();
        object.insert("type".into(), json!("object"));
        object.insert("properties".into(), Value::Object(query_properties));
        if !query_required.is_empty() {
            object.insert("required".into(), json!(query_required));
        }
        object.insert("additionalProperties".into(), json!(false));
        if !defs.is_empty() {
            object.insert("$defs".into(), Value::Object(defs));
        }
        self.emit(&Value::Object(object), &format!("{place} query parameters"))
    }

    /// `(content type, schema)` of the JSON request body, if the operation has one.
    fn request_body(&mut self, operation: &'d Map<String, Value>, place: &str) -> Option<(String, Value)> {
        match operation.get("requestBody") {
            None => None,
            Some(body) => {
                let at = format!("{place} request body");
                match self.follow(body, "requestBodies", &at).and_then(|b| b.get("content")).and_then(Value::as_object)
                {
                    None => {
                        self.errors.push(format!("{at}: `content` is missing"));
                        None
                    }
                    Some(content) => match pick_json(content) {
                        Some((media_type, media)) => {
                            let schema = media.get("schema").cloned().unwrap_or(json!({}));
                            self.emit(&schema, &at).map(|schema| (media_type, schema))
                        }
                        None => {
                            let offered: Vec<&str> = content.keys().map(String::as_str).collect();
                            self.warnings.push(format!(
                                "{at}: only JSON bodies are checked; {} not imported",
                                offered.join(", ")
                            ));
                            None
                        }
                    },
                }
            }
        }
    }

    /// `(status, schema)` of each response with JSON content.
    fn responses(&mut self, operation: &'d Map<String, Value>, place: &str) -> Vec<(String, Value)> {
        let mut responses = Vec::new();
        match operation.get("responses") {
            Some(Value::Object(all)) => {
                for (status, response) in all {
                    let at = format!("{place} response {status}");
                    if status.starts_with("x-") {
                        continue;
                    }
                    if !is_status(status) {
                        self.warnings.push(format!(
                            "{at}: only exact status codes (e.g. 200) and `default` get a contract; skipped"
                        ));
                        continue;
                    }
                    let Some(response) = self.follow(response, "responses", &at) else { continue };
                    let Some(content) = response.get("content").and_then(Value::as_object) else { continue };
                    if let Some((_, media)) = pick_json(content) {
                        let schema = media.get("schema").cloned().unwrap_or(json!({}));
                        if let Some(schema) = self.emit(&schema, &at) {
                            responses.push((status.clone(), schema));
                        }
                    }
                }
            }
            Some(_) => self.errors.push(format!("{place}: `responses` must be an object")),
            None => {}
        }
        responses
    }

    /// An `x-klasifikasi` on `node`, checked.
    fn classification(&mut self, node: &Map<String, Value>, place: &str) -> Option<Classification> {
        match node.get(KLASIFIKASI)? {
            Value::String(name) => Classification::parse(name).or_else(|| {
                self.errors.push(format!(
                    "{place}: `{KLASIFIKASI}: {name}` is not a classification (terbuka, terbatas, rahasia, \
                     sangat_rahasia)"
                ));
                None
            }),
            other => {
                self.errors.push(format!("{place}: `{KLASIFIKASI}` must be a string, not {other}"));
                None
            }
        }
    }

    /// `value`, or what its `$ref` chain to `#/components/{kind}/...` points at.
    fn follow(&mut self, mut value: &'d Value, kind: &str, place: &str) -> Option<&'d Value> {
        for _ in 0..MAX_REF_HOPS {
            let Some(reference) = value.get("$ref").and_then(Value::as_str) else { return Some(value) };
            let prefix = format!("#/components/{kind}/");
            if !reference.starts_with(&prefix) {
                self.errors.push(format!(
                    "{place}: `$ref: {reference}` is not supported here (only `{prefix}...`; the gateway never \
                     fetches a document)"
                ));
                return None;
            }
            match self.document.pointer(&reference[1..]) {
                Some(target) => value = target,
                None => {
                    self.errors.push(format!("{place}: `$ref: {reference}` does not exist in the document"));
                    return None;
                }
            }
        }
        self.errors.push(format!("{place}: `$ref` chain longer than {MAX_REF_HOPS} (a cycle?)"));
        None
    }

    /// Turns a query parameter's schema into one over strings (the gateway sees query values as strings).
    fn query_strings(&mut self, schema: Value, place: &str) -> Value {
        let Value::Object(mut node) = schema else { return schema };
        let converted = match node.get("type").and_then(Value::as_str) {
            Some("array") => match node.remove("items") {
                Some(items) => {
                    let items = self.query_strings(items, place);
                    node.insert("items".into(), items);
                    None
                }
                None => None,
            },
            Some(kind @ ("integer" | "number" | "boolean")) => Some(kind.to_string()),
            _ => None,
        };
        let Some(kind) = converted else { return Value::Object(node) };
        let dropped: Vec<&str> = ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"]
            .into_iter()
            .filter(|k| node.remove(*k).is_some())
            .collect();
        node.insert("type".into(), json!("string"));
        if kind == "boolean" {
            node.insert("enum".into(), json!(["true", "false"]));
        } else {
            let pattern = if kind == "integer" { "^-?[0-9]+$" } else { "^-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?$" };
            node.insert("pattern".into(), json!(pattern));
        }
        for key in ["enum", "const", "default"] {
            match node.get_mut(key) {
                Some(Value::Array(values)) => {
                    for v in values.iter_mut().filter(|v| !v.is_string()) {
                        *v = Value::String(v.to_string());
                    }
                }
                Some(v) if !v.is_string() => *v = Value::String(v.to_string()),
                _ => {}
            }
        }
        let mut note = format!("{place}: `type: {kind}` is checked as a string");
        if !dropped.is_empty() {
            note.push_str(&format!("; {} not enforced", dropped.join(", ")));
        }
        self.warnings.push(note);
        Value::Object(node)
    }

    /// A self-contained JSON Schema 2020-12 from a schema in the document (see the module docs).
    fn emit(&mut self, schema: &Value, place: &str) -> Option<Value> {
        let errors_before = self.errors.len();
        let mut root = match schema {
            Value::Bool(true) => json!({}),
            Value::Bool(false) => json!({ "not": {} }),
            Value::Object(_) => schema.clone(),
            other => {
                self.errors.push(format!("{place}: a schema must be an object, not {other}"));
                return None;
            }
        };
        let mut pending = BTreeSet::new();
        let has_defs = root.get("$defs").is_some_and(Value::is_object);
        self.rewrite(&mut root, Scope::Root { has_defs }, place, &mut pending);

        let mut copied: BTreeMap<String, Value> = BTreeMap::new();
        let mut done = BTreeSet::new();
        while let Some(next) = pending.pop_first() {
            if !done.insert(next.clone()) {
                continue;
            }
            let (key, mut copy, scope_name) = match &next {
                Pending::Component(name) => {
                    let pointer = format!("/components/schemas/{}", name.replace('~', "~0").replace('/', "~1"));
                    let Some(target) = self.document.pointer(&pointer) else {
                        self.errors.push(format!("{place}: `#/components/schemas/{name}` does not exist"));
                        continue;
                    };
                    (name.clone(), target.clone(), None)
                }
                Pending::RefType(name) => {
                    let path = format!("ref/{name}.schema.json");
                    let parsed =
                        penghubung_types::embedded::schema(&path).and_then(|text| serde_json::from_str(text).ok());
                    let Some(Value::Object(mut target)) = parsed else {
                        self.errors.push(format!("{place}: the reference type `{path}` is not available"));
                        continue;
                    };
                    target.remove("$schema");
                    target.remove("$id");
                    (format!("ref-{name}"), Value::Object(target), Some(format!("ref-{name}")))
                }
            };
            let scope = match &scope_name {
                Some(embedded) => Scope::Embedded(embedded),
                None => Scope::Component(&key),
            };
            let mut more = BTreeSet::new();
            self.rewrite(&mut copy, scope, place, &mut more);
            pending.extend(more.into_iter().filter(|p| !done.contains(p)));
            copied.insert(key, copy);
        }

        let Value::Object(node) = &mut root else { return None };
        let mut defs = match node.remove("$defs") {
            Some(Value::Object(own)) => own,
            Some(_) => {
                self.errors.push(format!("{place}: `$defs` must be an object"));
                Map::new()
            }
            None => Map::new(),
        };
        for (key, copy) in copied {
            match defs.get(&key) {
                Some(existing) if *existing != copy => self.errors.push(format!(
                    "{place}: the schema's own `$defs/{key}` clashes with the copied `{key}`; rename one of them"
                )),
                _ => {
                    defs.insert(key, copy);
                }
            }
        }
        node.insert("$schema".into(), json!(JSON_SCHEMA_DIALECT));
        if !defs.is_empty() {
            node.insert("$defs".into(), Value::Object(defs));
        }
        (self.errors.len() == errors_before).then_some(root)
    }

    /// Rewrites the `$ref`s of `value` (a schema) for its new home, converting 3.0 keywords on the way.
    fn rewrite(&mut self, value: &mut Value, scope: Scope<'_>, place: &str, pending: &mut BTreeSet<Pending>) {
        match value {
            Value::Object(node) => {
                if self.v30 {
                    convert_30(node);
                }
                if let Some(Value::String(reference)) = node.get_mut("$ref") {
                    match map_ref(reference, scope) {
                        Ok((new, need)) => {
                            *reference = new;
                            pending.extend(need);
                        }
                        Err(problem) => self.errors.push(format!("{place}: {problem}")),
                    }
                }
                for (key, child) in node.iter_mut() {
                    match key.as_str() {
                        "$ref" | "enum" | "const" | "default" | "examples" | "example" => {}
                        k if k.starts_with("x-") => {}
                        "properties" | "patternProperties" | "$defs" | "definitions" | "dependentSchemas" => {
                            if let Value::Object(named) = child {
                                for schema in named.values_mut() {
                                    self.rewrite(schema, scope, place, pending);
                                }
                            }
                        }
                        _ => self.rewrite(child, scope, place, pending),
                    }
                }
            }
            Value::Array(items) => {
                for item in items {
                    self.rewrite(item, scope, place, pending);
                }
            }
            _ => {}
        }
    }
}

/// The new text of a `$ref` and what it needs copied, or why it cannot be used.
fn map_ref(reference: &str, scope: Scope<'_>) -> Result<(String, Option<Pending>), String> {
    if let Some(rest) = reference.strip_prefix("#/components/schemas/") {
        let name = rest.split('/').next().unwrap_or_default().replace("~1", "/").replace("~0", "~");
        if name.is_empty() {
            return Err(format!("`$ref: {reference}` names no schema"));
        }
        return Ok((format!("#/$defs/{rest}"), Some(Pending::Component(name))));
    }
    if let Some(fragment) = reference.strip_prefix('#') {
        return match scope {
            Scope::Root { has_defs } if fragment.is_empty() || has_defs && fragment.starts_with("/$defs/") => {
                Ok((reference.to_string(), None))
            }
            Scope::Embedded(name) => Ok((format!("#/$defs/{name}{fragment}"), None)),
            Scope::Component(name) => Err(format!(
                "`$ref: {reference}` in `#/components/schemas/{name}` is not supported: refer to \
                 `#/components/schemas/...`"
            )),
            Scope::Root { .. } => Err(format!(
                "`$ref: {reference}` is not supported: schemas may refer to `#/components/schemas/...` (or to \
                 their own `$defs`)"
            )),
        };
    }
    if let Some((name, fragment)) = gateway_ref_type(reference) {
        return Ok((format!("#/$defs/ref-{name}{fragment}"), Some(Pending::RefType(name.to_string()))));
    }
    Err(format!(
        "`$ref: {reference}` is not local: the gateway never fetches a schema; copy it into `#/components/schemas` \
         (the gateway's reference types are `{GATEWAY_SCHEMA_BASE}ref/<name>.schema.json`)"
    ))
}

/// `(name, fragment)` when `reference` names one of the reference types embedded in the binary.
fn gateway_ref_type(reference: &str) -> Option<(&str, &str)> {
    let (location, fragment) = reference.split_once('#').unwrap_or((reference, ""));
    if !(fragment.is_empty() || fragment.starts_with('/')) {
        return None;
    }
    let mut rest =
        location.strip_prefix(GATEWAY_SCHEMA_BASE).or_else(|| location.strip_prefix('/')).unwrap_or(location);
    while let Some(shorter) = rest.strip_prefix("../").or_else(|| rest.strip_prefix("./")) {
        rest = shorter;
    }
    let name = rest.strip_prefix("ref/")?.strip_suffix(".schema.json")?;
    let plain = !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    (plain && penghubung_types::embedded::schema(rest).is_some()).then_some((name, fragment))
}

/// OpenAPI 3.0 schema keywords that mean something else (or nothing) in JSON Schema 2020-12.
fn convert_30(node: &mut Map<String, Value>) {
    if let Some(nullable) = node.remove("nullable") {
        if nullable == Value::Bool(true) {
            let null = json!("null");
            match node.get_mut("type") {
                Some(Value::String(kind)) => {
                    let kind = std::mem::take(kind);
                    node.insert("type".into(), json!([kind, "null"]));
                }
                Some(Value::Array(kinds)) if !kinds.contains(&null) => kinds.push(null.clone()),
                Some(_) => {}
                None => {
                    let inner = std::mem::take(node);
                    node.insert("anyOf".into(), json!([Value::Object(inner), { "type": "null" }]));
                    return;
                }
            }
            if let Some(Value::Array(values)) = node.get_mut("enum") {
                if !values.contains(&Value::Null) {
                    values.push(Value::Null);
                }
            }
        }
    }
    for (exclusive, bound) in [("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")] {
        match node.get(exclusive) {
            Some(Value::Bool(true)) => {
                node.remove(exclusive);
                if let Some(limit) = node.remove(bound) {
                    node.insert(exclusive.into(), limit);
                }
            }
            Some(Value::Bool(false)) => {
                node.remove(exclusive);
            }
            _ => {}
        }
    }
    if let Some(example) = node.remove("example") {
        node.entry("examples").or_insert_with(|| json!([example]));
    }
}

/// The media type to take a JSON schema from: `application/json`, else another `...+json`, never one the
/// gateway marked as its own (an export's error response).
fn pick_json(content: &Map<String, Value>) -> Option<(String, &Value)> {
    let essence = |media_type: &str| media_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    let all: Vec<(&String, &Value)> =
        content.iter().filter(|(_, media)| media.get(GATEWAY_MARK) != Some(&Value::Bool(true))).collect();
    all.iter()
        .find(|(media_type, _)| essence(media_type) == "application/json")
        .or_else(|| all.iter().find(|(media_type, _)| essence(media_type).ends_with("+json")))
        .map(|(media_type, media)| (essence(media_type), *media))
}

fn is_status(status: &str) -> bool {
    let b = status.as_bytes();
    status == "default" || b.len() == 3 && (b'1'..=b'5').contains(&b[0]) && b[1..].iter().all(u8::is_ascii_digit)
}

/// The path as the gateway writes it, and the parameters renamed on the way; or why it cannot be routed.
fn map_path(path: &str) -> Result<(String, Vec<(String, String)>), String> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err("a path must start with `/`".into());
    };
    let mut out = String::with_capacity(path.len());
    let mut renamed = Vec::new();
    let mut seen = BTreeSet::new();
    if rest.is_empty() {
        return Ok(("/".into(), renamed));
    }
    for segment in rest.split('/') {
        out.push('/');
        if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            if name.is_empty() || name.contains(['{', '}']) {
                return Err(format!("`{segment}` is not a parameter"));
            }
            let mut mapped = words(name, '_');
            if mapped.is_empty() {
                return Err(format!("parameter `{{{name}}}` needs a name with letters or digits"));
            }
            if mapped.as_bytes()[0].is_ascii_digit() {
                mapped.insert(0, '_');
            }
            if !seen.insert(mapped.clone()) {
                return Err(format!("parameter `{{{mapped}}}` appears twice"));
            }
            if mapped != name {
                renamed.push((name.to_string(), mapped.clone()));
            }
            out.push('{');
            out.push_str(&mapped);
            out.push('}');
        } else if segment.is_empty() {
            return Err("empty segment (`//` or a trailing `/`)".into());
        } else if segment.contains(['{', '}']) {
            return Err(format!(
                "segment `{segment}` mixes text and a parameter; the gateway matches whole segments only"
            ));
        } else if let Some(bad) = segment.chars().find(|c| !(c.is_ascii_alphanumeric() || "._~-".contains(*c))) {
            return Err(format!("segment `{segment}` contains `{bad}` (allowed: letters, digits and . _ ~ -)"));
        } else {
            out.push_str(segment);
        }
    }
    Ok((out, renamed))
}

/// `text` as lower-case ASCII words joined by `separator`: camelCase and PascalCase are split (`verifikasiNIK2`
/// → `verifikasi-nik2`, `getHTTPStatus` → `get-http-status`), anything that is not a letter or a digit separates
/// words.
fn words(text: &str, separator: char) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_alphanumeric() {
            let previous = i.checked_sub(1).map(|p| chars[p]);
            let next = chars.get(i + 1);
            let boundary = c.is_ascii_uppercase()
                && (previous.is_some_and(|p| p.is_ascii_lowercase() || p.is_ascii_digit())
                    || previous.is_some_and(|p| p.is_ascii_uppercase()) && next.is_some_and(char::is_ascii_lowercase));
            if boundary && !out.is_empty() && !out.ends_with(separator) {
                out.push(separator);
            }
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with(separator) {
            out.push(separator);
        }
    }
    let end = out.trim_end_matches(separator).len();
    out.truncate(end);
    out
}

/// `words` cut to the 63 characters of a slug (never ending in `-`).
fn slug(words: &str) -> String {
    words[..words.len().min(63)].trim_end_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use penghubung_contract::formats::FORMATS;
    use penghubung_policy::redact::RedactionPlan;
    use penghubung_types::documents::ServiceDoc;

    fn fixture() -> Value {
        let text =
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/openapi/dukcapil-verifikasi.json"));
        serde_json::from_str(text).expect("the fixture is JSON")
    }

    fn validator(schema: &Value) -> jsonschema::Validator {
        let mut options = jsonschema::options().should_validate_formats(true);
        for (name, check) in FORMATS {
            options = options.with_format(*name, *check);
        }
        options.build(schema).unwrap_or_else(|e| panic!("schema does not compile: {e}\n{schema:#}"))
    }

    fn nik_def() -> Value {
        json!({ "type": "string", "pattern": "^[0-9]{16}$", "format": "nik", "description": "Nomor Induk Kependudukan" })
    }

    #[test]
    fn imports_the_dukcapil_fixture() {
        let imported = import(&fixture()).unwrap_or_else(|e| panic!("{e:#?}"));
        assert_eq!(imported.title, "Verifikasi Data Kependudukan");
        assert_eq!(imported.version, "1.2.0");
        assert!(imported.description.as_deref().unwrap().starts_with("Layanan verifikasi NIK"));
        let ids: Vec<(&str, &str, &str)> =
            imported.operations.iter().map(|o| (o.id.as_str(), o.method.as_str(), o.path.as_str())).collect();
        assert_eq!(ids, [("get-penduduk", "GET", "/penduduk/{nik}"), ("verifikasi-nik", "POST", "/verifikasi")]);

        let verifikasi = &imported.operations[1];
        assert_eq!(verifikasi.summary.as_deref(), Some("Verifikasi NIK, nama dan tanggal lahir"));
        assert_eq!(verifikasi.classification, Some(Classification::Terbatas));
        assert_eq!(verifikasi.query, None);
        let (content_type, request) = verifikasi.request.as_ref().expect("a request body");
        assert_eq!(content_type, "application/json");
        assert_eq!(
            *request,
            json!({
                "$schema": JSON_SCHEMA_DIALECT,
                "$ref": "#/$defs/PermintaanVerifikasi",
                "$defs": {
                    "PermintaanVerifikasi": {
                        "type": "object",
                        "required": ["nik", "nama"],
                        "additionalProperties": false,
                        "properties": {
                            "nik": { "$ref": "#/$defs/Nik", "x-klasifikasi": "rahasia" },
                            "nama": { "type": "string", "minLength": 1, "maxLength": 120 },
                            "tanggal_lahir": { "type": "string", "format": "date" }
                        }
                    },
                    "Nik": nik_def()
                }
            })
        );
        let statuses: Vec<&str> = verifikasi.responses.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(statuses, ["200", "400"]);
        assert_eq!(verifikasi.responses[1].1["$defs"]["Masalah"]["required"], json!(["title", "status"]));

        // The emitted request schema works on its own, with the reference formats.
        let check = validator(request);
        assert!(check.is_valid(&json!({ "nik": "3201015203900002", "nama": "Siti", "tanggal_lahir": "1990-03-12" })));
        assert!(!check.is_valid(&json!({ "nik": "3201013104900001", "nama": "Siti" })), "31 April in the NIK");
        assert!(!check.is_valid(&json!({ "nik": "3201015203900002" })), "nama missing");
        assert!(!check.is_valid(&json!({ "nik": "3201015203900002", "nama": "Siti", "x": 1 })), "unknown field");

        let penduduk = &imported.operations[0];
        assert_eq!(penduduk.summary.as_deref(), Some("Data penduduk menurut NIK"));
        assert_eq!(penduduk.classification, None);
        assert_eq!(penduduk.request, None);
        assert_eq!(
            penduduk.query,
            Some(json!({
                "$schema": JSON_SCHEMA_DIALECT,
                "type": "object",
                "properties": {
                    "fields": { "type": "array", "items": { "enum": ["nama", "alamat", "tanggal_lahir", "agama"] } },
                    "purpose": { "$ref": "#/$defs/Slug" }
                },
                "required": ["fields"],
                "additionalProperties": false,
                "$defs": { "Slug": { "type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,62}$" } }
            }))
        );
        let query = validator(penduduk.query.as_ref().unwrap());
        assert!(query.is_valid(&json!({ "fields": ["nama", "agama"], "purpose": "penyaluran-bansos" })));
        assert!(!query.is_valid(&json!({ "fields": ["nama"], "purpose": "Bansos!" })));
        assert!(!query.is_valid(&json!({ "fields": ["nama"], "other": "x" })));
        assert!(!query.is_valid(&json!({ "purpose": "bansos" })), "fields is required");

        let statuses: Vec<&str> = penduduk.responses.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(statuses, ["200", "404"]);
        let response = &penduduk.responses[0].1;
        assert_eq!(response["$ref"], "#/$defs/Penduduk");
        let defs: Vec<&str> = response["$defs"].as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(defs, ["Alamat", "Nik", "Penduduk"], "copied transitively, and only what is used");
        assert_eq!(response["$defs"]["Penduduk"]["properties"]["alamat"], json!({ "$ref": "#/$defs/Alamat" }));
        validator(response);
        // Field classification survives: the redaction plan finds every marked field through the `$defs`.
        let plan = RedactionPlan::compile(response).unwrap().expect("marked fields");
        let mut marked: Vec<String> = plan.marked_fields().into_iter().map(|(p, c)| format!("{p}={c}")).collect();
        marked.sort();
        assert_eq!(marked, ["/agama=sangat_rahasia", "/alamat/jalan=rahasia", "/alamat/rt_rw=rahasia", "/nik=rahasia"]);

        let warnings = imported.warnings.join("\n");
        assert!(warnings.contains("security schemes"), "{warnings}");
        assert!(warnings.contains("X-Request-Id (header)"), "{warnings}");
    }

    #[test]
    fn remote_refs_are_rejected() {
        for remote in [
            "https://example.go.id/schemas/nik.json",
            "nik.json#/Nik",
            "http://schemas.penghubung.local/ref/nik.schema.json",
        ] {
            let mut document = fixture();
            document["components"]["schemas"]["Nik"] = json!({ "$ref": remote });
            let errors = import(&document).expect_err("a remote $ref");
            assert!(errors.iter().all(|e| e.contains(remote) && e.contains("not local")), "{errors:#?}");
            // Every place that uses it is named.
            assert!(errors.iter().any(|e| e.starts_with("POST /verifikasi request body")), "{errors:#?}");
            assert!(errors.iter().any(|e| e.starts_with("GET /penduduk/{nik} response 200")), "{errors:#?}");
        }
        let mut document = fixture();
        document["paths"]["/verifikasi"]["post"]["requestBody"] = json!({ "$ref": "common.json#/requestBodies/X" });
        let errors = import(&document).expect_err("a remote request body");
        assert!(errors[0].contains("common.json#/requestBodies/X"), "{errors:#?}");
    }

    #[test]
    fn all_errors_come_at_once() {
        let mut document = fixture();
        document["paths"]["/penduduk/{nik}"]["get"]["operationId"] = json!("verifikasiNik");
        document["paths"]["/penduduk/{nik}"]["trace"] = json!({ "responses": {} });
        document["paths"]["/berkas/{id}.pdf"] = json!({ "get": { "responses": {} } });
        document["paths"]["/verifikasi"]["post"]["x-klasifikasi"] = json!("rahasia_sekali");
        document["components"]["schemas"]["Alamat"]["properties"]["desa"] =
            json!({ "$ref": "#/components/schemas/Desa" });
        let errors = import(&document).expect_err("several problems");
        let all = errors.join("\n");
        assert!(
            all.contains("operation id `verifikasi-nik` is used by both GET /penduduk/{nik} and POST /verifikasi"),
            "{all}"
        );
        assert!(all.contains("TRACE is not supported"), "{all}");
        assert!(all.contains("path `/berkas/{id}.pdf`: segment `{id}.pdf` mixes text and a parameter"), "{all}");
        assert!(all.contains("`x-klasifikasi: rahasia_sekali` is not a classification"), "{all}");
        assert!(all.contains("`#/components/schemas/Desa` does not exist"), "{all}");
        assert_eq!(errors.len(), 5, "{all}");

        let errors = import(&json!({ "swagger": "2.0" })).unwrap_err();
        assert!(errors[0].contains("Swagger 2.0"), "{errors:?}");
        let errors = import(&json!({ "openapi": "3.1.0", "info": {}, "paths": {} })).unwrap_err();
        assert_eq!(errors, ["`info.title` is missing", "`info.version` is missing"]);
    }

    #[test]
    fn names_paths_and_ids_are_mapped() {
        assert_eq!(words("verifikasiNIK", '-'), "verifikasi-nik");
        assert_eq!(words("getHTTPStatus2", '-'), "get-http-status2");
        assert_eq!(words("get_penduduk", '-'), "get-penduduk");
        assert_eq!(words("POST /penduduk/{nik}/foto", '-'), "post-penduduk-nik-foto");
        assert_eq!(words("KodeWilayah", '_'), "kode_wilayah");
        assert_eq!(slug(&"a".repeat(70)), "a".repeat(63));
        assert_eq!(
            map_path("/wilayah/{kodeWilayah}/desa/{NIK}").unwrap(),
            (
                "/wilayah/{kode_wilayah}/desa/{nik}".to_string(),
                vec![("kodeWilayah".to_string(), "kode_wilayah".to_string()), ("NIK".to_string(), "nik".to_string())]
            )
        );
        assert_eq!(map_path("/").unwrap().0, "/");
        assert_eq!(map_path("/v1.0/data~x").unwrap().0, "/v1.0/data~x");
        assert!(map_path("penduduk").is_err());
        assert!(map_path("/penduduk/").is_err());
        assert!(map_path("/a//b").is_err());
        assert!(map_path("/a:b").is_err());
        assert!(map_path("/{a}/{A}").unwrap_err().contains("twice"));

        let mut document = fixture();
        let item = document["paths"].as_object_mut().unwrap().remove("/penduduk/{nik}").unwrap();
        document["paths"]["/penduduk/{NIK}"] = item;
        document["paths"]["/penduduk/{NIK}"]["get"].as_object_mut().unwrap().remove("operationId");
        let imported = import(&document).unwrap();
        assert_eq!(imported.operations[0].id, "get-penduduk-nik");
        assert_eq!(imported.operations[0].path, "/penduduk/{nik}");
        let warnings = imported.warnings.join("\n");
        assert!(warnings.contains("`{NIK}` is written `{nik}`"), "{warnings}");
        assert!(warnings.contains("no `operationId`; the operation is called `get-penduduk-nik`"), "{warnings}");
    }

    #[test]
    fn gateway_reference_types_are_copied_in() {
        let mut document = fixture();
        document["components"]["schemas"]["Nik"] =
            json!({ "$ref": "https://schemas.penghubung.local/ref/nik.schema.json" });
        document["components"]["schemas"]["Alamat"]["properties"]["kode_wilayah"] =
            json!({ "$ref": "../ref/kode-wilayah.schema.json" });
        let imported = import(&document).unwrap_or_else(|e| panic!("{e:#?}"));
        let response = &imported.operations[0].responses[0].1;
        assert_eq!(response["$defs"]["Nik"], json!({ "$ref": "#/$defs/ref-nik" }));
        assert_eq!(
            response["$defs"]["Alamat"]["properties"]["kode_wilayah"],
            json!({ "$ref": "#/$defs/ref-kode-wilayah" })
        );
        assert_eq!(response["$defs"]["ref-nik"]["format"], "nik");
        assert!(response["$defs"]["ref-nik"].get("$id").is_none());
        let check = validator(response);
        assert!(check
            .is_valid(&json!({ "nik": "3201015203900002", "nama": "Siti", "alamat": { "kode_wilayah": "18.07" } })));
        assert!(
            !check.is_valid(&json!({ "nik": "3201015203900002", "nama": "Siti", "alamat": { "kode_wilayah": "20" } }))
        );

        document["components"]["schemas"]["Nik"] =
            json!({ "$ref": "https://schemas.penghubung.local/ref/tidak-ada.schema.json" });
        assert!(import(&document).is_err(), "an unknown reference type is not local");
    }

    #[test]
    fn openapi_30_schemas_are_converted() {
        let document = json!({
            "openapi": "3.0.3",
            "info": { "title": "Lama", "version": "1" },
            "paths": { "/data/{id}": { "get": {
                "operationId": "ambilData",
                "parameters": [
                    { "name": "id", "in": "path", "required": true, "schema": { "type": "string" } },
                    { "name": "halaman", "in": "query", "schema": { "type": "integer", "minimum": 1 } },
                    { "name": "aktif", "in": "query", "schema": { "type": "boolean", "default": true } }
                ],
                "responses": { "200": { "description": "ok", "content": { "application/json; charset=utf-8": {
                    "schema": { "$ref": "#/components/schemas/Data" } } } } }
            } } },
            "components": { "schemas": { "Data": {
                "type": "object",
                "properties": {
                    "catatan": { "type": "string", "nullable": true, "example": "-" },
                    "induk": { "allOf": [{ "$ref": "#/components/schemas/Data" }], "nullable": true },
                    "nilai": { "type": "number", "minimum": 0, "exclusiveMinimum": true, "enum": [1, 2], "nullable": true }
                }
            } } }
        });
        let imported = import(&document).unwrap_or_else(|e| panic!("{e:#?}"));
        let op = &imported.operations[0];
        let data = &op.responses[0].1["$defs"]["Data"]["properties"];
        assert_eq!(data["catatan"], json!({ "type": ["string", "null"], "examples": ["-"] }));
        assert_eq!(data["induk"], json!({ "anyOf": [{ "allOf": [{ "$ref": "#/$defs/Data" }] }, { "type": "null" }] }));
        assert_eq!(data["nilai"], json!({ "type": ["number", "null"], "exclusiveMinimum": 0, "enum": [1, 2, null] }));
        let query = op.query.as_ref().unwrap();
        assert_eq!(query["properties"]["halaman"], json!({ "type": "string", "pattern": "^-?[0-9]+$" }));
        assert_eq!(
            query["properties"]["aktif"],
            json!({ "type": "string", "enum": ["true", "false"], "default": "true" })
        );
        let check = validator(query);
        assert!(check.is_valid(&json!({ "halaman": "2", "aktif": "false" })));
        assert!(!check.is_valid(&json!({ "halaman": "dua" })));
        let warnings = imported.warnings.join("\n");
        assert!(warnings.contains("OpenAPI 3.0 document"), "{warnings}");
        assert!(
            warnings
                .contains("query parameter `halaman`: `type: integer` is checked as a string; minimum not enforced"),
            "{warnings}"
        );
    }

    /// A service document made from an import, with its schemas stored under `disdukcapil/...`.
    fn service_from(imported: &Imported) -> (ServiceDoc, HashMap<String, Value>) {
        let mut store = HashMap::new();
        let mut operations = Vec::new();
        for op in &imported.operations {
            let mut doc = json!({ "id": op.id, "method": op.method, "path": op.path });
            if let Some(summary) = &op.summary {
                doc["summary"] = json!(summary);
            }
            if let Some(c) = op.classification {
                doc["classification"] = json!(c.as_str());
            }
            if let Some((content_type, schema)) = &op.request {
                let path = format!("disdukcapil/{}.request.schema.json", op.id);
                store.insert(path.clone(), schema.clone());
                doc["request"] = json!({ "schema": path, "content_type": content_type });
            }
            if let Some(schema) = &op.query {
                let path = format!("disdukcapil/{}.query.schema.json", op.id);
                store.insert(path.clone(), schema.clone());
                doc["query"] = json!({ "schema": path });
            }
            for (status, schema) in &op.responses {
                let path = format!("disdukcapil/{}.{status}.schema.json", op.id);
                store.insert(path.clone(), schema.clone());
                doc["responses"][status] = json!({ "schema": path });
            }
            operations.push(doc);
        }
        let service = serde_json::from_value(json!({
            "opd": "disdukcapil",
            "name": "verifikasi",
            "version": 1,
            "title": imported.title,
            "description": imported.description,
            "classification": "terbatas",
            "upstream": { "endpoints": ["http://127.0.0.1:8081"] },
            "operations": operations,
        }))
        .expect("a service document");
        (service, store)
    }

    #[test]
    fn export_round_trips_through_import() {
        let first = import(&fixture()).unwrap();
        let (service, store) = service_from(&first);
        let lookup = |path: &str| store.get(path);
        let exported = export(&ExportInput {
            service: &service,
            schema: &lookup,
            server_url: "https://gateway/disdukcapil/verifikasi/v1",
        });

        assert_eq!(exported["openapi"], "3.1.0");
        assert_eq!(exported["info"]["title"], "Verifikasi Data Kependudukan");
        assert_eq!(exported["info"]["version"], "v1");
        assert_eq!(exported["info"]["x-klasifikasi"], "terbatas");
        assert_eq!(exported["servers"], json!([{ "url": "https://gateway/disdukcapil/verifikasi/v1" }]));
        let get = &exported["paths"]["/penduduk/{nik}"]["get"];
        assert_eq!(get["operationId"], "get-penduduk");
        assert_eq!(get["x-klasifikasi"], "terbatas", "the service's classification is the floor");
        let parameters: Vec<(&str, &str, bool)> = get["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["name"].as_str().unwrap(), p["in"].as_str().unwrap(), p["required"].as_bool().unwrap()))
            .collect();
        assert_eq!(
            parameters,
            [
                ("nik", "path", true),
                ("fields", "query", true),
                ("purpose", "query", false),
                ("X-Penghubung-Purpose", "header", false)
            ]
        );
        assert_eq!(
            get["parameters"][2]["schema"]["$defs"]["Slug"]["type"], "string",
            "$defs travel with the parameter"
        );
        assert_eq!(
            get["responses"]["200"]["content"]["application/json"]["schema"],
            store["disdukcapil/get-penduduk.200.schema.json"]
        );
        assert_eq!(get["responses"]["default"]["content"]["application/problem+json"]["x-penghubung-gateway"], true);
        let post = &exported["paths"]["/verifikasi"]["post"];
        assert_eq!(post["x-klasifikasi"], "terbatas");
        assert_eq!(
            post["requestBody"]["content"]["application/json"]["schema"],
            first.operations[1].request.as_ref().unwrap().1
        );

        let second = import(&exported).unwrap_or_else(|e| panic!("{e:#?}"));
        assert_eq!(second.title, first.title);
        assert_eq!(second.description, first.description);
        assert_eq!(second.version, "v1");
        assert_eq!(second.classification, Some(Classification::Terbatas));
        let mut expected = first.operations.clone();
        for op in &mut expected {
            // The export writes the effective classification (never lower than the service's).
            op.classification =
                Some(op.classification.map_or(Classification::Terbatas, |c| c.max(Classification::Terbatas)));
        }
        assert_eq!(second.operations, expected);
        assert!(second.warnings.iter().all(|w| !w.contains("X-Penghubung-Purpose")), "{:#?}", second.warnings);
    }
}

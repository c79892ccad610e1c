//! Compiling contract schemas into validators, once per snapshot. Every schema of the store is registered under
//! `https://schemas.penghubung.local/store/{path}` and every reference type under
//! `https://schemas.penghubung.local/ref/{name}`, so a contract can say `"$ref": "/ref/nik.schema.json"` or
//! refer to another store schema by path. Anything else is refused when the snapshot is built (a retriever that
//! never fetches): the data plane never touches the network for a schema. Validators are cached by path, so a
//! schema used by many operations is compiled once. Each schema is compiled twice from the same resources: the full
//! validator (`jsonschema`), and, when its keywords allow, the [`SinglePass`] one.
//!
//! Memory: `jsonschema` (0.33) checks every schema it builds against its draft's meta-schema with a validator held
//! in a `static`, whose recursive references are compiled lazily and kept: each nesting path it meets (`properties`
//! then `items` then ...) adds a full copy of the 2020-12 meta-schema, about 4 MB, for the life of the process. The
//! gateway's own document schemas alone grew it by some 60 MB. So a schema is never handed to `build` itself
//! ([`build_by_reference`]), and a store schema is checked against the meta-schema one subschema at a time
//! (`meta_check`), which never reaches those recursive references.

use std::collections::HashMap;
use std::sync::Arc;

use jsonschema::{Draft, Resource, Retrieve, ValidationOptions, Validator};
use serde_json::{json, Value};

use crate::formats::{is_date, FormatCheck, BASE};
use crate::schema::Schema;
use crate::single_pass::SinglePass;
use crate::{json, multiple_of};
use penghubung_types::embedded;

/// Compiles the store's schemas on demand, caching by path.
pub struct Compiler<'a> {
    store: &'a HashMap<&'a str, &'a Value>,
    formats: &'a [(&'static str, FormatCheck)],
    cache: HashMap<String, Arc<Schema>>,
    /// The reference types (`schemas/ref/`), parsed once.
    references: Vec<(String, Value)>,
    /// The nesting limit of the bodies the schemas validate (`limits.max_json_depth`).
    max_depth: usize,
    /// Schemas that failed, with why (each is reported once, at its own file).
    failed: HashMap<String, SchemaError>,
    /// Schemas being compiled (a `$ref` cycle between store schemas is compiled once).
    compiling: Vec<String>,
    /// The file (origin) of each store schema, by path, to report a broken one at.
    origins: HashMap<String, String>,
}

/// Why a store schema cannot be used: the schema at fault (`schema`, which may be one the compiled schema
/// refers to) and what is wrong with it. `penghubung check` reports it at that schema's file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError {
    /// The path under `schemas/` of the schema at fault; `None` when the schema asked for is not in the store.
    pub schema: Option<String>,
    pub message: String,
}

impl std::fmt::Display for SchemaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl SchemaError {
    fn of(schema: &str, message: String) -> Self {
        SchemaError { schema: Some(schema.to_string()), message }
    }
}

impl<'a> Compiler<'a> {
    /// `store`: the store's schemas by path under `schemas/`.
    pub fn new(store: &'a HashMap<&'a str, &'a Value>, formats: &'a [(&'static str, FormatCheck)]) -> Self {
        let references = embedded::schemas_under("ref/")
            .map(|(name, text)| {
                let value =
                    serde_json::from_str(text).unwrap_or_else(|e| panic!("embedded reference type {name}: {e}"));
                (format!("{BASE}{name}"), value)
            })
            .collect();
        Compiler {
            store,
            formats,
            cache: HashMap::new(),
            references,
            max_depth: json::DEFAULT_MAX_DEPTH,
            failed: HashMap::new(),
            compiling: vec![],
            origins: HashMap::new(),
        }
    }

    /// The nesting limit of bodies (`limits.max_json_depth`; [`json::DEFAULT_MAX_DEPTH`] unless set).
    pub fn with_max_depth(mut self, max_depth: usize) -> Self {
        self.max_depth = max_depth;
        self
    }

    /// The file of each store schema (by path under `schemas/`), where its problems are reported.
    pub fn with_origins(mut self, origins: HashMap<String, String>) -> Self {
        self.origins = origins;
        self
    }

    /// The file of the store schema at `path`.
    pub fn origin(&self, path: &str) -> Option<&str> {
        self.origins.get(path).map(String::as_str)
    }

    /// The compiled store schema at `path`, or why it cannot be built. Only the store schemas `path` reaches
    /// through its `$ref`s (and theirs) are registered beside it, so one broken schema fails only itself and
    /// those that refer to it.
    pub fn schema(&mut self, path: &str) -> Result<Arc<Schema>, SchemaError> {
        if let Some(v) = self.cache.get(path) {
            return Ok(Arc::clone(v));
        }
        if let Some(e) = self.failed.get(path) {
            return Err(e.clone());
        }
        let Some(schema) = self.store.get(path).copied() else {
            return Err(SchemaError {
                schema: None,
                message: format!("schema `{path}` is not in the store (schemas/{path})"),
            });
        };
        self.compiling.push(path.to_string());
        let compiled = self.compile(path, schema);
        self.compiling.pop();
        match compiled {
            Ok(compiled) => {
                self.cache.insert(path.to_string(), Arc::clone(&compiled));
                Ok(compiled)
            }
            Err(e) => {
                self.failed.insert(path.to_string(), e.clone());
                Err(e)
            }
        }
    }

    fn compile(&mut self, path: &str, schema: &Value) -> Result<Arc<Schema>, SchemaError> {
        let reached = self.reached_from(path).map_err(|e| SchemaError::of(path, e))?;
        // a schema this one refers to is compiled (and blamed) on its own first
        for other in reached.iter().filter(|other| *other != path) {
            if !self.compiling.contains(other) {
                self.schema(other)?;
            }
        }
        meta_check(schema, "").map_err(|e| SchemaError::of(path, format!("schema `{path}`: {e}")))?;
        let root = format!("{BASE}store/{path}");
        let mut options = jsonschema::options()
            .with_resource(root.clone(), Draft::Draft202012.create_resource(schema.clone()))
            .should_validate_formats(true)
            .with_retriever(Refuse)
            .with_keyword("multipleOf", multiple_of::keyword)
            // `jsonschema`'s own `date` accepts `2020-01-0:`
            .with_format("date", is_date);
        for (name, check) in self.formats {
            options = options.with_format(*name, *check);
        }
        let mut resources: HashMap<String, &Value> = HashMap::from([(root.clone(), schema)]);
        for other in reached.iter().filter(|other| *other != path) {
            let value = self.store[other.as_str()];
            let resource = resource(value).map_err(|e| SchemaError::of(other, format!("schema `{other}`: {e}")))?;
            options = options.with_resource(format!("{BASE}store/{other}"), resource);
            resources.insert(format!("{BASE}store/{other}"), value);
        }
        for (uri, value) in &self.references {
            options = options.with_resource(uri.clone(), resource(value).map_err(|e| SchemaError::of(path, e))?);
            resources.insert(uri.clone(), value);
        }
        // Patterns run on the linear-time `regex` engine (no backtracking: no ReDoS, and faster); a schema whose
        // patterns need ECMA-262 look-around or back-references falls back to `fancy-regex`.
        // A schema with resources of its own inside (a nested `$id`) or dynamic references is built from itself:
        // behind a reference its inner resources would not be found and its dynamic scope would start elsewhere.
        // Such schemas are rare in contracts; they pay for jsonschema's meta-schema check (see above).
        let build = |options: &ValidationOptions| {
            if has_inner_resources(schema, true) {
                options.build(schema).map_err(|e| e.to_string())
            } else {
                build_by_reference(options, &root)
            }
        };
        let linear = build(&options.clone().with_pattern_options(jsonschema::PatternOptions::regex()));
        let full = match linear {
            Ok(validator) => validator,
            Err(_) => build(&options).map_err(|e| SchemaError::of(path, format!("schema `{path}`: {e}")))?,
        };
        let single_pass = match SinglePass::compile(&root, &resources, self.formats) {
            Ok(pass) => Some(pass),
            Err(why) => {
                tracing::debug!(schema = path, %why, "validated by the full path only");
                None
            }
        };
        Ok(Arc::new(Schema { full, single_pass, max_depth: self.max_depth }))
    }

    /// The store schemas `path` reaches through `$ref` (itself included), or the first reference that leaves
    /// the gateway's own schemas.
    fn reached_from(&self, path: &str) -> Result<Vec<String>, String> {
        let mut reached = vec![path.to_string()];
        let mut next = 0;
        while next < reached.len() {
            let current = reached[next].clone();
            next += 1;
            let Some(value) = self.store.get(current.as_str()) else { continue };
            let base = format!("{BASE}store/{current}");
            let mut targets = vec![];
            references(value, &base, &mut targets);
            let mut declared = vec![];
            declared_ids(value, &base, &mut declared);
            let store_prefix = format!("{BASE}store/");
            for target in targets {
                let document = target.split_once('#').map_or(target.as_str(), |(d, _)| d);
                if let Some(store_path) = document.strip_prefix(&store_prefix) {
                    if self.store.contains_key(store_path) && !reached.iter().any(|r| r == store_path) {
                        reached.push(store_path.to_string());
                    }
                } else if !document.starts_with(BASE)
                    && !declared.iter().any(|id| id == document)
                    && !document.starts_with(META_SCHEMAS)
                {
                    if current == path {
                        return Err(format!("schema `{path}`: {}", refused(&target)));
                    }
                    // the schema at fault is compiled and reported on its own
                    continue;
                }
            }
        }
        Ok(reached)
    }
}

/// The 2020-12 meta-schemas, which `jsonschema` holds itself (nothing is fetched).
const META_SCHEMAS: &str = "https://json-schema.org/draft/2020-12/";

/// The draft of the one-line schema that [`build_by_reference`] builds. It governs that line alone (which refers
/// to nothing else): the schema it refers to is compiled under its own draft.
const REFERRING_DRAFT: &str = "https://json-schema.org/draft/2020-12/schema";

/// The 2020-12 keywords whose value is a subschema, an object of subschemas, or a non-empty array of them: the
/// places where the meta-schema recurses (`$dynamicRef: "#meta"`). `dependencies` (deprecated) holds subschemas
/// or arrays of property names.
const SUBSCHEMA: &[&str] = &[
    "items",
    "contains",
    "additionalProperties",
    "propertyNames",
    "if",
    "then",
    "else",
    "not",
    "unevaluatedItems",
    "unevaluatedProperties",
    "contentSchema",
];
const SUBSCHEMA_MAPS: &[&str] = &["$defs", "definitions", "properties", "patternProperties", "dependentSchemas"];
const SUBSCHEMA_ARRAYS: &[&str] = &["prefixItems", "allOf", "anyOf", "oneOf"];

/// Whether `schema` satisfies the 2020-12 meta-schema, checked one subschema at a time: each is held to the
/// meta-schema with its subschemas taken out (and each of those in turn), so that `jsonschema`'s meta-schema
/// validator never follows its recursive references, which it would compile and keep, about 4 MB for each
/// nesting path (see the module documentation). The same schemas pass and fail as under the whole meta-schema;
/// the error names the subschema at fault (`pointer`, a JSON pointer into the schema).
fn meta_check(schema: &Value, pointer: &str) -> Result<(), String> {
    let Value::Object(map) = schema else {
        return meta_check_node(schema, pointer);
    };
    let mut node = map.clone();
    let mut children: Vec<(String, &Value)> = vec![];
    for (keyword, value) in map {
        let at = format!("{pointer}/{}", keyword.replace('~', "~0").replace('/', "~1"));
        if SUBSCHEMA.contains(&keyword.as_str()) {
            node.remove(keyword);
            children.push((at, value));
        } else if let (true, Value::Object(entries)) = (SUBSCHEMA_MAPS.contains(&keyword.as_str()), value) {
            node.insert(keyword.clone(), json!({}));
            for (name, child) in entries {
                children.push((format!("{at}/{}", name.replace('~', "~0").replace('/', "~1")), child));
            }
        } else if let (true, Value::Array(items)) = (SUBSCHEMA_ARRAYS.contains(&keyword.as_str()), value) {
            if !items.is_empty() {
                node.remove(keyword);
                children.extend(items.iter().enumerate().map(|(i, child)| (format!("{at}/{i}"), child)));
            }
        } else if let ("dependencies", Value::Object(entries)) = (keyword.as_str(), value) {
            node.insert(keyword.clone(), json!({}));
            for (name, child) in entries {
                let at = format!("{at}/{}", name.replace('~', "~0").replace('/', "~1"));
                if child.is_array() {
                    // property names: what `dependentRequired` holds
                    meta_check_node(&json!({"dependentRequired": {"a": child}}), &at)?;
                } else {
                    children.push((at, child));
                }
            }
        }
    }
    meta_check_node(&Value::Object(node), pointer)?;
    children.into_iter().try_for_each(|(at, child)| meta_check(child, &at))
}

/// One subschema (with no subschemas left in it) against the 2020-12 meta-schema.
fn meta_check_node(node: &Value, pointer: &str) -> Result<(), String> {
    jsonschema::draft202012::meta::validate(node).map_err(|e| match pointer {
        "" => e.to_string(),
        _ => format!("at `{pointer}`: {e}"),
    })
}

/// The validator of the schema that `options` registers at `uri`, built from a schema that only refers to it, so
/// that `jsonschema` checks that one line against its meta-schema and not the schema itself (see the module
/// documentation: its check keeps about 4 MB per nesting path for good). It validates exactly as the schema does,
/// through one `$ref` more (the schema paths of its errors start with `/$ref`). Whether the schema is a valid one
/// is for the caller to check (the [`Compiler`] does, for the store's schemas; the gateway's own are checked by
/// their tests).
pub fn build_by_reference(options: &ValidationOptions, uri: &str) -> Result<Validator, String> {
    options.build(&json!({"$schema": REFERRING_DRAFT, "$ref": uri})).map_err(|e| e.to_string())
}

/// Whether `value` holds a resource of its own below its root (a nested `$id`) or uses dynamic references.
fn has_inner_resources(value: &Value, root: bool) -> bool {
    match value {
        Value::Object(map) => {
            (!root && map.contains_key("$id"))
                || map.contains_key("$dynamicRef")
                || map.contains_key("$dynamicAnchor")
                || map.iter().any(|(keyword, child)| {
                    !INSTANCE_KEYWORDS.contains(&keyword.as_str()) && has_inner_resources(child, false)
                })
        }
        Value::Array(items) => items.iter().any(|item| has_inner_resources(item, false)),
        _ => false,
    }
}

/// Keywords whose values are instances, not schemas: a `$ref` inside them is data.
const INSTANCE_KEYWORDS: &[&str] = &["const", "enum", "examples", "default"];

/// Every `$ref` and `$dynamicRef` in `value`, resolved against the base URI in force where it stands (`$id`s
/// change it).
fn references(value: &Value, base: &str, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            let base = match map.get("$id").and_then(Value::as_str) {
                Some(id) => join(base, id),
                None => base.to_string(),
            };
            for keyword in ["$ref", "$dynamicRef"] {
                if let Some(Value::String(reference)) = map.get(keyword) {
                    found.push(join(&base, reference));
                }
            }
            for (keyword, child) in map {
                if !INSTANCE_KEYWORDS.contains(&keyword.as_str()) {
                    references(child, &base, found);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| references(item, base, found)),
        _ => {}
    }
}

/// The URIs (without fragment) that `$id`s inside `value` declare: references to them stay in the document.
fn declared_ids(value: &Value, base: &str, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            let base = match map.get("$id").and_then(Value::as_str) {
                Some(id) => {
                    let uri = join(base, id);
                    let uri = uri.split_once('#').map_or(uri.as_str(), |(d, _)| d).to_string();
                    found.push(uri.clone());
                    uri
                }
                None => base.to_string(),
            };
            for (keyword, child) in map {
                if !INSTANCE_KEYWORDS.contains(&keyword.as_str()) {
                    declared_ids(child, &base, found);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| declared_ids(item, base, found)),
        _ => {}
    }
}

/// `reference` resolved against the absolute URI `base` (RFC 3986 section 5.2; query strings are kept in the
/// path).
pub(crate) fn join(base: &str, reference: &str) -> String {
    let is_absolute = reference.find(':').is_some_and(|i| {
        i > 0
            && reference.as_bytes()[0].is_ascii_alphabetic()
            && reference[..i].bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    });
    if is_absolute {
        return reference.to_string();
    }
    let base = base.split_once('#').map_or(base, |(d, _)| d);
    let scheme = &base[..base.find(':').map_or(0, |i| i + 1)];
    if let Some(rest) = reference.strip_prefix("//") {
        // a network-path reference: another host
        return format!("{scheme}//{rest}");
    }
    if reference.is_empty() || reference.starts_with('#') {
        return format!("{base}{reference}");
    }
    let after_scheme = &base[scheme.len()..];
    let authority_end = match after_scheme.strip_prefix("//") {
        Some(rest) => scheme.len() + 2 + rest.find('/').unwrap_or(rest.len()),
        None => scheme.len(),
    };
    let (origin, path) = base.split_at(authority_end);
    let (reference_path, fragment) = reference.split_at(reference.find('#').unwrap_or(reference.len()));
    let merged = if reference_path.starts_with('/') {
        reference_path.to_string()
    } else {
        format!("{}{reference_path}", &path[..path.rfind('/').map_or(0, |i| i + 1)])
    };
    let mut segments: Vec<&str> = vec![];
    for segment in merged.trim_start_matches('/').split('/') {
        match segment {
            "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let separator = if origin.contains("//") || merged.starts_with('/') { "/" } else { "" };
    format!("{origin}{separator}{}{fragment}", segments.join("/"))
}

fn refused(uri: &str) -> String {
    format!(
        "`$ref` to `{uri}` is not allowed: contracts refer only to schemas in the store (by path) and to the \
         reference types (/ref/nik.schema.json, ...); nothing is fetched"
    )
}

fn resource(value: &Value) -> Result<Resource, String> {
    Resource::from_contents(value.clone()).map_err(|e| e.to_string())
}

/// The retriever of last resort: every `$ref` the gateway does not hold is an error at load time.
struct Refuse;

impl Retrieve for Refuse {
    fn retrieve(&self, uri: &jsonschema::Uri<String>) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        Err(refused(uri.as_str()).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn local_references_resolve_and_remote_ones_are_refused() {
        let pasien = json!({"type": "object", "properties": {"alamat": {"$ref": "common/alamat.json"}}});
        let alamat = json!({"type": "object", "required": ["desa"]});
        let remote = json!({"$ref": "https://example.org/schema.json"});
        let store: HashMap<&str, &Value> =
            [("dinkes/pasien.json", &pasien), ("dinkes/common/alamat.json", &alamat), ("x/remote.json", &remote)]
                .into_iter()
                .collect();
        let mut compiler = Compiler::new(&store, &[]);
        let v = compiler.schema("dinkes/pasien.json").unwrap();
        assert!(v.full.is_valid(&json!({"alamat": {"desa": "Sukadana"}})));
        assert!(!v.full.is_valid(&json!({"alamat": {}})));
        let again = compiler.schema("dinkes/pasien.json").unwrap();
        assert!(Arc::ptr_eq(&v, &again), "cached");
        let err = compiler.schema("x/remote.json").unwrap_err().to_string();
        assert!(err.contains("example.org"), "{err}");
        assert!(compiler.schema("tidak/ada.json").unwrap_err().to_string().contains("not in the store"));
    }

    #[test]
    fn references_resolve_like_uris() {
        let base = "https://schemas.penghubung.local/store/dinkes/pasien.json";
        for (reference, resolved) in [
            ("common/alamat.json", "https://schemas.penghubung.local/store/dinkes/common/alamat.json"),
            ("../x.json#/$defs/a", "https://schemas.penghubung.local/store/x.json#/$defs/a"),
            ("./a/../b.json", "https://schemas.penghubung.local/store/dinkes/b.json"),
            ("/ref/nik.schema.json", "https://schemas.penghubung.local/ref/nik.schema.json"),
            ("#/$defs/a", "https://schemas.penghubung.local/store/dinkes/pasien.json#/$defs/a"),
            ("", "https://schemas.penghubung.local/store/dinkes/pasien.json"),
            ("//example.org/x.json", "https://example.org/x.json"),
            ("urn:uuid:1234", "urn:uuid:1234"),
            ("HTTP://EXAMPLE.ORG/x", "HTTP://EXAMPLE.ORG/x"),
            ("../../../../../x.json", "https://schemas.penghubung.local/x.json"),
        ] {
            assert_eq!(join(base, reference), resolved, "{reference}");
        }
    }

    /// Every reference that leaves the gateway's schemas is refused, however it is spelled (with a scheme, as a
    /// network path without one, behind an `$id`), and one broken schema is blamed alone.
    #[test]
    fn remote_references_are_refused_however_spelled_and_blamed_on_their_own_schema() {
        let remote = [
            json!({"$ref": "https://example.org/schema.json"}),
            json!({"$ref": "//example.org/schema.json"}),
            json!({"properties": {"a": {"$ref": "//example.org/a.json#/x"}}}),
            json!({"$id": "https://example.org/root.json", "$ref": "other.json"}),
            json!({"items": {"$dynamicRef": "urn:example:elsewhere"}}),
            json!({"$schema": "https://example.org/not-a-draft"}),
        ];
        for value in &remote {
            let good = json!({"type": "object", "properties": {"x": {"$ref": "bad.json"}}});
            let plain = json!({"type": "string"});
            let store: HashMap<&str, &Value> =
                [("x/bad.json", value), ("x/good.json", &good), ("x/plain.json", &plain)].into_iter().collect();
            let mut compiler = Compiler::new(&store, &[]);
            let err = compiler.schema("x/bad.json").unwrap_err();
            assert_eq!(err.schema.as_deref(), Some("x/bad.json"), "{value}: {err}");
            // a schema that refers to it is refused for the same reason, blamed on the same file
            assert_eq!(compiler.schema("x/good.json").unwrap_err(), err, "{value}");
            // a schema that does not is unaffected
            assert!(compiler.schema("x/plain.json").is_ok(), "{value}");
        }
        // an `$id` declared in the document itself, and the bundled meta-schema, are not remote
        let local = json!({"$defs": {"a": {"$id": "urn:example:a", "type": "string"}}, "$ref": "urn:example:a"});
        let meta = json!({"$ref": "https://json-schema.org/draft/2020-12/schema"});
        let store: HashMap<&str, &Value> = [("x/local.json", &local), ("x/meta.json", &meta)].into_iter().collect();
        let mut compiler = Compiler::new(&store, &[]);
        let v = compiler.schema("x/local.json").unwrap();
        assert!(v.full.is_valid(&json!("a")) && !v.full.is_valid(&json!(1)));
        assert!(compiler.schema("x/meta.json").unwrap().full.is_valid(&json!({"type": "string"})));
    }

    /// Store schemas are built by reference (`jsonschema` does not check them against the meta-schema itself),
    /// so the compiler's own meta-schema check is what refuses an invalid one, however deep the fault.
    #[test]
    fn store_schemas_are_still_held_to_the_meta_schema() {
        let deep = json!({"type": "object", "properties": {"a": {"type": "array", "items": {"minLength": -1}}}});
        let typo = json!({"type": "strin"});
        let store: HashMap<&str, &Value> = [("x/deep.json", &deep), ("x/typo.json", &typo)].into_iter().collect();
        let mut compiler = Compiler::new(&store, &[]);
        for path in ["x/deep.json", "x/typo.json"] {
            let err = compiler.schema(path).unwrap_err();
            assert_eq!(err.schema.as_deref(), Some(path), "{err}");
        }
        // what is built by reference validates as the schema does, and its errors say where, as before
        let v = build_by_reference(
            &jsonschema::options().with_resource("urn:x", Resource::from_contents(deep.clone()).unwrap()),
            "urn:x",
        )
        .unwrap();
        let bad = json!({"a": 1});
        let error = v.iter_errors(&bad).next().unwrap();
        assert_eq!(error.instance_path.as_str(), "/a");
        assert!(error.schema_path.as_str().ends_with("/properties/a/type"), "{}", error.schema_path.as_str());
    }

    /// The subschema-at-a-time check passes and fails what the whole meta-schema does.
    #[test]
    fn the_meta_check_agrees_with_the_whole_meta_schema() {
        let schemas = [
            json!(true),
            json!({"type": "object", "properties": {"a": {"type": "array", "items": {"minLength": 1}}}}),
            json!({"$defs": {"x": {"enum": [1, 2]}}, "allOf": [{"$ref": "#/$defs/x"}], "not": false}),
            json!({"prefixItems": [true, {"type": "string"}], "dependencies": {"a": ["b"], "c": {"minimum": 1}}}),
            json!({"if": {"required": ["a"]}, "then": {"maxProperties": 3}, "else": {"contentSchema": true}}),
            json!({"patternProperties": {"^x-": {"format": "date"}}, "unevaluatedProperties": false}),
            json!({"a/b": {"items": 5}, "properties": {"a~/b": {"type": "integer"}}}),
            json!(5),
            json!({"type": "strin"}),
            json!({"properties": {"a": {"items": {"minLength": -1}}}}),
            json!({"properties": []}),
            json!({"allOf": []}),
            json!({"anyOf": [{"type": "string"}, 3]}),
            json!({"items": [{"type": "string"}]}),
            json!({"$defs": {"x": {"required": "a"}}}),
            json!({"dependencies": {"a": [1]}}),
            json!({"dependencies": {"a": {"maxItems": "2"}}}),
            json!({"if": {"not": {"contains": {"uniqueItems": "yes"}}}}),
            json!({"dependentSchemas": {"a": {"minItems": 1.5}}}),
        ];
        for schema in &schemas {
            let whole = jsonschema::draft202012::meta::is_valid(schema);
            assert_eq!(meta_check(schema, "").is_ok(), whole, "{schema}");
        }
        let err = meta_check(&json!({"properties": {"a/b": {"items": {"minLength": -1}}}}), "").unwrap_err();
        assert!(err.starts_with("at `/properties/a~1b/items`: "), "{err}");
    }

    #[test]
    fn jsonschema_date_and_multiple_of_bugs_are_worked_around() {
        let date = json!({"type": "string", "format": "date"});
        let multiple = json!({"multipleOf": 1.5});
        let store: HashMap<&str, &Value> =
            [("a/date.json", &date), ("a/multiple.json", &multiple)].into_iter().collect();
        let mut compiler = Compiler::new(&store, &[]);
        let v = compiler.schema("a/date.json").unwrap();
        for (text, valid) in [("2020-01-01", true), ("2020-01-0:", false), ("2020-0:-01", false), ("202:-01-01", false)]
        {
            assert_eq!(v.full.is_valid(&json!(text)), valid, "{text}");
        }
        let v = compiler.schema("a/multiple.json").unwrap();
        for (n, valid) in [(json!(-4.5), true), (json!(-3), true), (json!(-4), false), (json!(4.5), true)] {
            assert_eq!(v.full.is_valid(&n), valid, "{n}");
        }
    }

    #[test]
    fn patterns_need_no_backtracking_engine_unless_they_use_look_around() {
        let kode = json!({"type": "string", "pattern": "^[0-9]{2}(\\.[0-9]{2})?$"});
        // ECMA-262 look-ahead: not in the linear-time engine, so this schema falls back to fancy-regex.
        let sandi = json!({"type": "string", "pattern": "^(?=.*[0-9])(?=.*[a-z]).{8,}$"});
        let store: HashMap<&str, &Value> = [("a/kode.json", &kode), ("a/sandi.json", &sandi)].into_iter().collect();
        let mut compiler = Compiler::new(&store, &[]);
        let v = compiler.schema("a/kode.json").unwrap();
        assert!(v.full.is_valid(&json!("18.07")) && !v.full.is_valid(&json!("18.7")));
        let v = compiler.schema("a/sandi.json").unwrap();
        assert!(
            v.full.is_valid(&json!("rahasia2026"))
                && !v.full.is_valid(&json!("rahasiaku"))
                && !v.full.is_valid(&json!("a1"))
        );
    }

    #[test]
    fn every_baseline_contract_is_validated_in_a_single_pass() {
        let schemas: Vec<(String, Value)> = penghubung_types::embedded::baseline_policies()
            .iter()
            .filter_map(|(path, text)| {
                Some((path.strip_prefix("schemas/")?.to_string(), serde_json::from_str(text).ok()?))
            })
            .collect();
        assert!(schemas.len() >= 5, "the baseline holds contract schemas");
        let store: HashMap<&str, &Value> = schemas.iter().map(|(p, v)| (p.as_str(), v)).collect();
        let mut compiler = Compiler::new(&store, crate::formats::FORMATS);
        for (path, _) in &schemas {
            let schema = compiler.schema(path).unwrap();
            assert!(schema.single_pass.is_some(), "{path} has no single pass");
        }
    }
}

//! Compiling contract schemas into validators, once per snapshot. Every schema of the store is registered under
//! `https://schemas.penghubung.local/store/{path}` and every reference type under
//! `https://schemas.penghubung.local/ref/{name}`, so a contract can say `"$ref": "/ref/nik.schema.json"` or
//! refer to another store schema by path. Anything else is refused when the snapshot is built (a retriever that
//! never fetches): the data plane never touches the network for a schema. Validators are cached by path, so a
//! schema used by many operations is compiled once. Each schema is compiled twice from the same resources: the full
//! validator (`jsonschema`), and, when its keywords allow, the [`SinglePass`] one.

use std::collections::HashMap;
use std::sync::Arc;

use jsonschema::{Resource, Retrieve};
use serde_json::Value;

use super::single_pass::SinglePass;
use super::Schema;
use crate::embedded;

/// The base of every schema URI the gateway knows.
pub const BASE: &str = "https://schemas.penghubung.local/";

/// Custom `format` checks (`nik`, `nip`, ...); registered on every validator.
pub type FormatCheck = fn(&str) -> bool;

/// Compiles the store's schemas on demand, caching by path.
pub struct Compiler<'a> {
    store: &'a HashMap<&'a str, &'a Value>,
    formats: &'a [(&'static str, FormatCheck)],
    cache: HashMap<String, Arc<Schema>>,
    /// The reference types (`schemas/ref/`), parsed once.
    references: Vec<(String, Value)>,
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
        Compiler { store, formats, cache: HashMap::new(), references }
    }

    /// The compiled store schema at `path`, or why it cannot be built.
    pub fn schema(&mut self, path: &str) -> Result<Arc<Schema>, String> {
        if let Some(v) = self.cache.get(path) {
            return Ok(Arc::clone(v));
        }
        let schema =
            self.store.get(path).ok_or_else(|| format!("schema `{path}` is not in the store (schemas/{path})"))?;
        let mut options = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .with_base_uri(format!("{BASE}store/{path}"))
            .should_validate_formats(true)
            .with_retriever(Refuse);
        for (name, check) in self.formats {
            options = options.with_format(*name, *check);
        }
        let root = format!("{BASE}store/{path}");
        let mut resources: HashMap<String, &Value> = HashMap::from([(root.clone(), *schema)]);
        for (other, value) in self.store.iter() {
            // a schema with a remote `$ref` is reported on its own, not through every schema that could see it
            if *other != path && remote_ref(value).is_none() {
                options = options.with_resource(format!("{BASE}store/{other}"), resource(value)?);
                resources.insert(format!("{BASE}store/{other}"), value);
            }
        }
        for (uri, value) in &self.references {
            options = options.with_resource(uri.clone(), resource(value)?);
            resources.insert(uri.clone(), value);
        }
        // Patterns run on the linear-time `regex` engine (no backtracking: no ReDoS, and faster); a schema whose
        // patterns need ECMA-262 look-around or back-references falls back to `fancy-regex`.
        let linear = options.clone().with_pattern_options(jsonschema::PatternOptions::regex()).build(schema);
        let full = match linear {
            Ok(validator) => validator,
            Err(_) => options.build(schema).map_err(|e| format!("schema `{path}`: {e}"))?,
        };
        let single_pass = match SinglePass::compile(&root, &resources, self.formats) {
            Ok(pass) => Some(pass),
            Err(why) => {
                tracing::debug!(schema = path, %why, "validated by the full path only");
                None
            }
        };
        let compiled = Arc::new(Schema { full, single_pass });
        self.cache.insert(path.to_string(), Arc::clone(&compiled));
        Ok(compiled)
    }
}

/// The first `$ref` in `value` that points outside the gateway's own schemas (`https://...`, `urn:...`).
fn remote_ref(value: &Value) -> Option<String> {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                if r.contains(':') && !r.starts_with(BASE) {
                    return Some(r.clone());
                }
            }
            map.values().find_map(remote_ref)
        }
        Value::Array(items) => items.iter().find_map(remote_ref),
        _ => None,
    }
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
        let err = compiler.schema("x/remote.json").unwrap_err();
        assert!(err.contains("example.org"), "{err}");
        assert!(compiler.schema("tidak/ada.json").unwrap_err().contains("not in the store"));
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
        let schemas: Vec<(String, Value)> = crate::embedded::baseline_policies()
            .iter()
            .filter_map(|(path, text)| {
                Some((path.strip_prefix("schemas/")?.to_string(), serde_json::from_str(text).ok()?))
            })
            .collect();
        assert!(schemas.len() >= 5, "the baseline holds contract schemas");
        let store: HashMap<&str, &Value> = schemas.iter().map(|(p, v)| (p.as_str(), v)).collect();
        let mut compiler = Compiler::new(&store, crate::contract::FORMATS);
        for (path, _) in &schemas {
            let schema = compiler.schema(path).unwrap();
            assert!(schema.single_pass.is_some(), "{path} has no single pass");
        }
    }
}

//! Differential fuzzing of the single-pass JSON validator against `jsonschema`, the oracle.
//!
//! Each input is a seed for a generator that writes a JSON body as text (so it can hold duplicate keys, keys
//! spelled with escapes, numbers at the edges: big integers, long decimals, exponents, and nesting beyond the
//! limit) for either a baseline contract schema (`policies/schemas/`, with the reference types of `schemas/ref/`)
//! or a generated schema within the single pass's keywords (with `allOf` and `$ref` merges, which is where it
//! once accepted too much). For every body:
//!
//! - the oracle reads it strictly ([`json::parse`]: a duplicate key, too deep a nesting or an inexact number is
//!   invalid) and asks `jsonschema`; a body the strict reading accepts must read the same with plain
//!   `serde_json` (the document validated is the document a standard parser sees);
//! - the single pass never accepts what the oracle refuses, and, where it is meant to decide (no `enum`/`const`
//!   of numbers or composites, no number beyond what a double holds exactly), it agrees with the oracle;
//! - the contract path (`check_request_body`) gives the oracle's verdict.
//!
//! A quarter of the bodies have a few bytes changed afterwards (mostly malformed, sometimes another document).

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use penghubung::contract::check::check_request_body;
use penghubung::contract::compile::Compiler;
use penghubung::contract::{json, Schema, FORMATS};
use penghubung_fuzz::Rng;
use serde_json::{json, Value};

/// Numbers at the edges, as written.
const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "1",
    "-1",
    "1.0",
    "2.5",
    "-1.5e-3",
    "1E2",
    "1e3",
    "0.1",
    "7",
    "150",
    "999.9999999999999",
    "1000",
    "1000.0",
    "1000.0000000000001",
    "1000.00000000000001",
    "9007199254740992",
    "9007199254740993",
    "-9007199254740993",
    "18446744073709551615",
    "18446744073709551616",
    "18446744073709551617",
    "-9223372036854775808",
    "-9223372036854775809",
    "1e308",
    "5e-324",
    "1e-400",
    "3.14159265358979323846",
    "12345678901234567890123",
    "100e-2",
    "0.30000000000000004",
];

const STRINGS: &[&str] = &[
    "",
    "L",
    "P",
    "SITI",
    "x",
    "ab",
    "abcdef",
    "ÑAMA",
    "1807015508900002",
    "3201015203900002",
    "3201013104900001",
    "320101520390000",
    "198503122010011001",
    "18.07",
    "18.07.01.2001",
    "18.00",
    "2024-02-29",
    "2023-02-29",
    "2020-01-0:",
    "081234567890",
    "0812",
    "nama",
    "a",
    "nik",
];

const KEYS: &[&str] = &["a", "b", "nik", "nama", "x", "tanggal", "jumlah", "é", "a/b", "~"];

/// The body as text: keys may repeat, numbers are written as given.
enum Doc {
    Null,
    Bool(bool),
    Number(String),
    Text(String),
    Array(Vec<Doc>),
    Object(Vec<(String, Doc)>),
    /// Raw JSON text (deep nesting).
    Raw(String),
}

impl Doc {
    fn write(&self, rng: &mut Rng, out: &mut String) {
        match self {
            Doc::Null => out.push_str("null"),
            Doc::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Doc::Number(n) => out.push_str(n),
            Doc::Text(s) => write_string(s, rng, out),
            Doc::Raw(raw) => out.push_str(raw),
            Doc::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(rng, out);
                }
                out.push(']');
            }
            Doc::Object(members) => {
                out.push('{');
                for (i, (key, value)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_string(key, rng, out);
                    out.push(':');
                    value.write(rng, out);
                }
                out.push('}');
            }
        }
    }
}

/// A JSON string, sometimes with every character escaped as `\uXXXX` (the same string, spelled otherwise).
fn write_string(s: &str, rng: &mut Rng, out: &mut String) {
    if rng.chance(8) {
        out.push('"');
        for unit in s.encode_utf16() {
            out.push_str(&format!("\\u{unit:04x}"));
        }
        out.push('"');
    } else {
        out.push_str(&Value::String(s.to_string()).to_string());
    }
}

/// Resolves `$ref`s while generating (the baseline schemas refer to the reference types and to `$defs`).
struct Schemas {
    store: HashMap<String, Value>,
}

impl Schemas {
    fn resolve<'a>(&'a self, root: &'a Value, reference: &str) -> Option<(&'a Value, &'a Value)> {
        let (document, fragment) = reference.split_once('#').unwrap_or((reference, ""));
        let target_root = if document.is_empty() {
            root
        } else {
            let name = document.trim_start_matches('/');
            self.store.get(name).or_else(|| self.store.iter().find(|(k, _)| k.ends_with(name)).map(|(_, v)| v))?
        };
        Some((target_root, target_root.pointer(fragment)?))
    }
}

/// A value for `schema`: mostly one it allows, sometimes one it does not, sometimes anything.
fn generate(schemas: &Schemas, root: &Value, schema: &Value, rng: &mut Rng, depth: usize) -> Doc {
    if depth > 6 || rng.chance(12) {
        return anything(rng, depth);
    }
    let Value::Object(map) = schema else { return anything(rng, depth) };
    if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
        if let Some((target_root, target)) = schemas.resolve(root, reference) {
            if rng.chance(3) || map.len() == 1 {
                return generate(schemas, target_root, target, rng, depth + 1);
            }
        }
    }
    if let Some(Value::Array(parts)) = map.get("allOf") {
        if !parts.is_empty() && rng.chance(2) {
            return generate(schemas, root, rng.pick(parts), rng, depth + 1);
        }
    }
    if let Some(Value::Array(examples)) = map.get("examples") {
        if !examples.is_empty() && rng.chance(2) {
            return from_value(rng.pick(examples));
        }
    }
    if let Some(Value::Array(members)) = map.get("enum") {
        if !members.is_empty() && !rng.chance(5) {
            return from_value(rng.pick(members));
        }
    }
    if let Some(constant) = map.get("const") {
        if !rng.chance(4) {
            return from_value(constant);
        }
    }
    let types: Vec<&str> = match map.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ if map.contains_key("properties") || map.contains_key("required") => vec!["object"],
        _ if map.contains_key("items") => vec!["array"],
        _ => vec![],
    };
    let kind = if types.is_empty() || rng.chance(15) { "any" } else { *rng.pick(&types) };
    match kind {
        "object" => {
            let mut members = vec![];
            let properties = map.get("properties").and_then(Value::as_object);
            let required: Vec<&str> =
                map.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
            for name in &required {
                if !rng.chance(10) {
                    let sub = properties.and_then(|p| p.get(*name)).unwrap_or(&Value::Bool(true));
                    members.push((name.to_string(), generate(schemas, root, sub, rng, depth + 1)));
                }
            }
            if let Some(properties) = properties {
                for (name, sub) in properties {
                    if !required.contains(&name.as_str()) && rng.chance(2) {
                        members.push((name.clone(), generate(schemas, root, sub, rng, depth + 1)));
                    }
                }
            }
            if rng.chance(6) {
                let extra = map.get("additionalProperties").unwrap_or(&Value::Bool(true));
                members.push((rng.pick(KEYS).to_string(), generate(schemas, root, extra, rng, depth + 1)));
            }
            // the same key again (another value, or the same), sometimes spelled with escapes
            if !members.is_empty() && rng.chance(6) {
                let (key, _) = &members[rng.below(members.len())];
                let key = key.clone();
                let sub = properties.and_then(|p| p.get(&key)).unwrap_or(&Value::Bool(true));
                let at = rng.below(members.len() + 1);
                members.insert(at, (key, generate(schemas, root, sub, rng, depth + 1)));
            }
            shuffle(&mut members, rng);
            Doc::Object(members)
        }
        "array" => {
            let items = map.get("items").unwrap_or(&Value::Bool(true));
            let count = rng.below(4);
            Doc::Array((0..count).map(|_| generate(schemas, root, items, rng, depth + 1)).collect())
        }
        "string" => Doc::Text(rng.pick(STRINGS).to_string()),
        "integer" | "number" => Doc::Number(number_near(map, rng)),
        "boolean" => Doc::Bool(rng.chance(2)),
        "null" => Doc::Null,
        _ => anything(rng, depth),
    }
}

/// A number: at the schema's bounds (exactly, one ulp off, or written longer), or from the edge pool.
fn number_near(schema: &serde_json::Map<String, Value>, rng: &mut Rng) -> String {
    let bounds: Vec<&Value> =
        ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"].iter().filter_map(|k| schema.get(*k)).collect();
    if !bounds.is_empty() && rng.chance(2) {
        let bound = rng.pick(&bounds).to_string();
        return match rng.below(5) {
            0 => bound,
            1 => format!("{bound}.0000000000001"),
            2 => format!("{bound}.00000000000000000001"),
            3 => format!("{bound}e0"),
            _ => bound.parse::<f64>().map_or(bound.clone(), |f| format!("{}", f - 1e-13)),
        };
    }
    rng.pick(NUMBERS).to_string()
}

fn anything(rng: &mut Rng, depth: usize) -> Doc {
    match rng.below(if depth > 4 { 5 } else { 8 }) {
        0 => Doc::Null,
        1 => Doc::Bool(rng.chance(2)),
        2 | 3 => Doc::Number(rng.pick(NUMBERS).to_string()),
        4 => Doc::Text(rng.pick(STRINGS).to_string()),
        5 => Doc::Array((0..rng.below(3)).map(|_| anything(rng, depth + 1)).collect()),
        6 => {
            let mut members: Vec<(String, Doc)> =
                (0..rng.below(3)).map(|_| (rng.pick(KEYS).to_string(), anything(rng, depth + 1))).collect();
            if !members.is_empty() && rng.chance(4) {
                let key = members[0].0.clone();
                members.push((key, anything(rng, depth + 1)));
            }
            Doc::Object(members)
        }
        _ => {
            // nesting around the limit (128), or far beyond it
            let levels = *rng.pick(&[126, 127, 128, 129, 1000, 100_000]);
            Doc::Raw(format!("{}{}", "[".repeat(levels), "]".repeat(levels)))
        }
    }
}

fn from_value(value: &Value) -> Doc {
    match value {
        Value::Null => Doc::Null,
        Value::Bool(b) => Doc::Bool(*b),
        Value::Number(n) => Doc::Number(n.to_string()),
        Value::String(s) => Doc::Text(s.clone()),
        Value::Array(items) => Doc::Array(items.iter().map(from_value).collect()),
        Value::Object(map) => Doc::Object(map.iter().map(|(k, v)| (k.clone(), from_value(v))).collect()),
    }
}

fn shuffle<T>(items: &mut [T], rng: &mut Rng) {
    for i in (1..items.len()).rev() {
        items.swap(i, rng.below(i + 1));
    }
}

/// A schema within the single pass's keywords, with `allOf`/`$ref` merges and keywords at the edges.
fn generated_schema(rng: &mut Rng, depth: usize) -> Value {
    let mut schema = serde_json::Map::new();
    let kind = if depth > 2 { rng.below(5) } else { rng.below(8) };
    match kind {
        0 => {
            schema.insert("type".into(), json!(rng.pick(&["string", "integer", "number", "boolean", "null"])));
        }
        1 => {
            schema.insert("type".into(), json!("string"));
            if rng.chance(2) {
                schema.insert("minLength".into(), json!(rng.below(3)));
            }
            if rng.chance(2) {
                schema.insert("maxLength".into(), json!(1 + rng.below(6)));
            }
            if rng.chance(3) {
                schema.insert("pattern".into(), json!(rng.pick(&["^[0-9]+$", "^a", "\\d{2}", "^[A-Z]"])));
            }
            if rng.chance(3) {
                schema.insert("format".into(), json!(rng.pick(&["date", "nik", "kode-wilayah", "telepon"])));
            }
        }
        2 => {
            schema.insert("type".into(), json!(rng.pick(&["integer", "number"])));
            let bounds = [json!(0), json!(1000), json!(-1.5), json!(9007199254740992_u64), json!(0.1), json!(150)];
            let bound = rng.pick(&bounds).clone();
            let keyword = *rng.pick(&["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"]);
            schema.insert(keyword.into(), bound);
        }
        3 => {
            let members = [json!("L"), json!("P"), json!(null), json!(true), json!(7), json!(1000)];
            let count = 1 + rng.below(3);
            schema.insert("enum".into(), Value::Array((0..count).map(|_| rng.pick(&members).clone()).collect()));
        }
        4 => {
            schema.insert("type".into(), json!("array"));
            schema.insert("items".into(), generated_schema(rng, depth + 1));
            if rng.chance(2) {
                schema.insert("maxItems".into(), json!(rng.below(3)));
            }
        }
        5 | 6 => {
            object_keywords(&mut schema, rng, depth);
            if rng.chance(3) {
                // a merge: `allOf` branches with keywords of their own
                let branches = (0..1 + rng.below(2))
                    .map(|_| {
                        let mut branch = serde_json::Map::new();
                        object_keywords(&mut branch, rng, depth + 1);
                        Value::Object(branch)
                    })
                    .collect();
                schema.insert("allOf".into(), Value::Array(branches));
            }
        }
        _ => {
            schema.insert("$ref".into(), json!("#/$defs/d"));
            if rng.chance(2) {
                schema.insert("additionalProperties".into(), json!(false));
            }
            let mut definition = serde_json::Map::new();
            object_keywords(&mut definition, rng, depth + 1);
            schema.insert("$defs".into(), json!({"d": Value::Object(definition)}));
        }
    }
    Value::Object(schema)
}

fn object_keywords(schema: &mut serde_json::Map<String, Value>, rng: &mut Rng, depth: usize) {
    if rng.chance(2) {
        schema.insert("type".into(), json!("object"));
    }
    if !rng.chance(3) {
        let properties: serde_json::Map<String, Value> =
            (0..1 + rng.below(3)).map(|_| (rng.pick(KEYS).to_string(), generated_schema(rng, depth + 1))).collect();
        schema.insert("properties".into(), Value::Object(properties));
    }
    if rng.chance(2) {
        let required: Vec<&str> = (0..1 + rng.below(2)).map(|_| *rng.pick(KEYS)).collect();
        schema.insert("required".into(), json!(required));
    }
    match rng.below(4) {
        0 => {
            schema.insert("additionalProperties".into(), json!(false));
        }
        1 => {
            schema.insert("additionalProperties".into(), generated_schema(rng, depth + 1));
        }
        _ => {}
    }
}

/// Whether `schema` holds an `enum` or `const` with a number or a composite member (the single pass leaves
/// `1` against `1.0`, and composites, to the full validator).
fn has_deferred_members(schema: &Value) -> bool {
    match schema {
        Value::Object(map) => map.iter().any(|(k, v)| match k.as_str() {
            "enum" => v.as_array().is_some_and(|m| m.iter().any(|m| m.is_number() || m.is_array() || m.is_object())),
            "const" => v.is_number() || v.is_array() || v.is_object(),
            _ => has_deferred_members(v),
        }),
        Value::Array(items) => items.iter().any(has_deferred_members),
        _ => false,
    }
}

/// Whether the body holds a number the single pass leaves to the full validator under bounds (an integer
/// beyond 2^53).
fn has_big_integer(value: &Value) -> bool {
    match value {
        Value::Number(n) => n.as_u64().is_some_and(|u| u > 1 << 53) || n.as_i64().is_some_and(|i| i < -(1 << 53)),
        Value::Array(items) => items.iter().any(has_big_integer),
        Value::Object(map) => map.values().any(has_big_integer),
        _ => false,
    }
}

struct Outcome {
    single_pass: bool,
    oracle: bool,
}

/// Runs one body through both validators and the contract path, and checks the properties of the module.
fn differential(schema: &Schema, schema_value: &Value, body: &[u8]) -> Outcome {
    let strict = json::parse(body, schema.max_depth);
    if let Ok(document) = &strict {
        let mut parser = serde_json::Deserializer::from_slice(body);
        parser.disable_recursion_limit();
        let plain: Value =
            serde::Deserialize::deserialize(&mut parser).expect("what the strict reading accepts is JSON");
        assert_eq!(&plain, document, "the strict reading and serde_json read different documents");
    }
    let oracle = strict.as_ref().is_ok_and(|document| schema.full.is_valid(document));
    let single_pass = schema.accepts_in_single_pass(body);
    let text = String::from_utf8_lossy(&body[..body.len().min(400)]);
    assert!(
        !single_pass || oracle,
        "the single pass accepts what jsonschema refuses\nschema: {schema_value}\nbody: {text}"
    );
    if schema.single_pass.is_some() && !has_deferred_members(schema_value) {
        let big = strict.as_ref().is_ok_and(has_big_integer);
        if !big {
            assert_eq!(
                single_pass, oracle,
                "the single pass and jsonschema disagree\nschema: {schema_value}\nbody: {text}"
            );
        }
    }
    let contract = check_request_body(&Bytes::copy_from_slice(body), schema).is_ok();
    assert_eq!(contract, oracle, "the contract path and the oracle disagree\nschema: {schema_value}\nbody: {text}");
    Outcome { single_pass, oracle }
}

/// The baseline contract schemas, compiled as the snapshot compiles them.
fn baseline() -> (Schemas, Vec<(Value, Arc<Schema>)>) {
    let mut store: HashMap<String, Value> = HashMap::new();
    for (path, text) in penghubung::baseline_policies() {
        if let Some(path) = path.strip_prefix("schemas/") {
            store.insert(path.to_string(), serde_json::from_str(text).unwrap());
        }
    }
    let references = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/ref");
    let mut schemas = Schemas { store: store.clone() };
    for entry in std::fs::read_dir(references).unwrap() {
        let path = entry.unwrap().path();
        let name = format!("ref/{}", path.file_name().unwrap().to_string_lossy());
        schemas.store.insert(name, serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap());
    }
    let by_path: HashMap<&str, &Value> = store.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut compiler = Compiler::new(&by_path, FORMATS);
    let mut compiled = vec![];
    for (path, value) in &store {
        compiled.push((value.clone(), compiler.schema(path).unwrap()));
    }
    compiled.sort_by_key(|(v, _)| v.to_string());
    assert!(compiled.len() >= 5, "the baseline holds contract schemas");
    (schemas, compiled)
}

fn compile_one(value: &Value) -> Option<Arc<Schema>> {
    let store: HashMap<&str, &Value> = [("fuzz/schema.json", value)].into_iter().collect();
    Compiler::new(&store, FORMATS).schema("fuzz/schema.json").ok()
}

/// One input: a body for a baseline schema (even seeds) or for a generated schema (odd ones). Counts the
/// verdicts (oracle valid or not, single pass accepted or not).
fn one(seed: u64, schemas: &Schemas, baseline: &[(Value, Arc<Schema>)], counts: &[AtomicU64; 4]) {
    let mut rng = Rng::new(seed);
    let (value, compiled) = if seed & 1 == 0 {
        let (value, compiled) = rng.pick(baseline);
        (value.clone(), Arc::clone(compiled))
    } else {
        let value = generated_schema(&mut rng, 0);
        let Some(compiled) = compile_one(&value) else { return };
        (value, compiled)
    };
    let doc = generate(schemas, &value, &value, &mut rng, 0);
    let mut body = String::new();
    doc.write(&mut rng, &mut body);
    let mut body = body.into_bytes();
    if rng.chance(4) {
        // a few bytes changed: mostly malformed, sometimes another valid document (numbers and strings cut,
        // quotes moved: the number cursor must stay beside the parser)
        const BYTES: &[u8] = b"\"{}[],:\\0123456789.eE-+ u";
        for _ in 0..1 + rng.below(3) {
            if body.is_empty() {
                break;
            }
            let at = rng.below(body.len());
            match rng.below(3) {
                0 => body[at] = *rng.pick(BYTES),
                1 => body.insert(at, *rng.pick(BYTES)),
                _ => {
                    body.remove(at);
                }
            }
        }
    }
    let outcome = differential(&compiled, &value, &body);
    counts[usize::from(outcome.single_pass) * 2 + usize::from(outcome.oracle)].fetch_add(1, Ordering::Relaxed);
}

#[test]
fn json_validator() {
    let tried = penghubung_fuzz::Tried::new("json_validator");
    // validators hold no state a panic could leave half-changed: safe to reuse after a caught panic
    let (schemas, baseline) = AssertUnwindSafe(baseline()).0;
    let counts: [AtomicU64; 4] = Default::default();
    let shared = AssertUnwindSafe((&schemas, &baseline, &counts));
    bolero::check!().with_type::<u64>().with_test_time(penghubung_fuzz::budget()).for_each(move |seed: &u64| {
        tried.one();
        let (schemas, baseline, counts) = *shared;
        one(*seed, schemas, baseline, counts);
    });
    let count = |i: usize| counts[i].load(Ordering::Relaxed);
    eprintln!(
        "json_validator: oracle valid {} (single pass accepted {}), oracle invalid {}",
        count(1) + count(3),
        count(3),
        count(0) + count(2)
    );
}

/// Fixed cases: disagreements the target found, and the review's examples, run every time.
#[test]
fn json_validator_regressions() {
    let (_, baseline) = baseline();
    for (schema, body, valid) in [
        // the review: the last of two keys validated, the first forwarded
        (json!({"properties": {"peran": {"enum": ["warga"]}}}), r#"{"peran": "admin", "peran": "warga"}"#, false),
        (json!({"type": "number", "maximum": 1000}), "1000.0000000000001", false),
        (json!({"type": "number", "maximum": 1000}), "999.9999999999999", true),
        (json!({"maximum": 18446744073709551615_u64}), "18446744073709551617", false),
        (json!({"properties": {"bebas": {}}}), &format!(r#"{{"bebas": {}}}"#, "[".repeat(100_000)), false),
        (json!({"allOf": [{"properties": {"a": {}}}], "additionalProperties": false}), r#"{"a": 1}"#, false),
        (json!({"multipleOf": 1.5}), "-4.5", true),
        (json!({"format": "date"}), r#""2020-01-0:""#, false),
    ] {
        let compiled = compile_one(&schema).unwrap();
        let outcome = differential(&compiled, &schema, body.as_bytes());
        assert_eq!(outcome.oracle, valid, "{schema} on {}", &body[..body.len().min(80)]);
    }
    // every baseline schema on an empty object and on a duplicate of every key
    for (value, compiled) in &baseline {
        differential(compiled, value, b"{}");
        differential(compiled, value, br#"{"a": 1, "a": 1}"#);
    }
}

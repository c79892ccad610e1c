//! The single pass against the full validator: both compiled from the same schemas as the snapshot compiles
//! them, on hand-picked and on thousands of mutated bodies. The single pass may leave a valid body to the full
//! validator, never accept one the full validator refuses.

use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::compile::Compiler;
use crate::formats::FORMATS;
use crate::schema::Schema;

/// Compiles `root` (with `others` beside it in the store) as the snapshot does.
fn compile_with(root: &Value, others: &[(&str, &Value)]) -> Arc<Schema> {
    let mut store: HashMap<&str, &Value> = others.iter().copied().collect();
    store.insert("t/root.json", root);
    Compiler::new(&store, FORMATS).schema("t/root.json").unwrap()
}

fn compile(root: Value) -> Arc<Schema> {
    compile_with(&root, &[])
}

/// The single pass exists and agrees with the full validator on every instance.
fn agrees(schema: &Schema, instances: &[Value]) {
    assert!(schema.single_pass.is_some(), "no single pass");
    for instance in instances {
        let body = serde_json::to_vec(instance).unwrap();
        assert_eq!(
            schema.accepts_in_single_pass(&body),
            schema.full.is_valid(instance),
            "single pass and full validator disagree on {instance}"
        );
    }
}

fn unsupported_reason(root: Value) -> String {
    let mut store: HashMap<&str, &Value> = HashMap::new();
    store.insert("t/root.json", &root);
    let mut resources: HashMap<String, &Value> = HashMap::new();
    resources.insert(format!("{BASE}store/t/root.json"), &root);
    let err = SinglePass::compile(&format!("{BASE}store/t/root.json"), &resources, FORMATS).unwrap_err();
    assert!(compile(root.clone()).single_pass.is_none());
    err.0
}

#[test]
fn types_enums_lengths_and_bounds_agree() {
    let schema = compile(json!({
        "type": "object",
        "required": ["nama", "umur"],
        "additionalProperties": false,
        "properties": {
            "nama": {"type": "string", "minLength": 2, "maxLength": 5},
            "umur": {"type": "integer", "minimum": 0, "exclusiveMaximum": 150},
            "skor": {"type": "number", "exclusiveMinimum": -1.5, "maximum": 10},
            "aktif": {"type": ["boolean", "null"]},
            "jenis": {"enum": ["L", "P", null, true, 7]},
            "versi": {"const": "v1"},
            "tag": {"type": "array", "minItems": 1, "maxItems": 2, "items": {"type": "string"}},
            "bebas": true,
            "dilarang": false
        }
    }));
    agrees(
        &schema,
        &[
            json!({"nama": "Siti", "umur": 30}),
            json!({"nama": "Siti", "umur": 30.0}),
            json!({"nama": "Siti", "umur": 30.5}),
            json!({"nama": "Siti", "umur": 150}),
            json!({"nama": "Siti", "umur": -1}),
            json!({"nama": "S", "umur": 1}),
            json!({"nama": "Ñañañ", "umur": 1}),
            json!({"nama": "Ñañaña", "umur": 1}),
            json!({"nama": "Siti"}),
            json!({"umur": 3}),
            json!({"nama": "Siti", "umur": 3, "lain": 1}),
            json!({"nama": "Siti", "umur": 3, "skor": -1.5}),
            json!({"nama": "Siti", "umur": 3, "skor": -1.4}),
            json!({"nama": "Siti", "umur": 3, "skor": 10}),
            json!({"nama": "Siti", "umur": 3, "skor": 10.01}),
            json!({"nama": "Siti", "umur": 3, "skor": "10"}),
            json!({"nama": "Siti", "umur": 3, "aktif": null}),
            json!({"nama": "Siti", "umur": 3, "aktif": false}),
            json!({"nama": "Siti", "umur": 3, "aktif": 0}),
            json!({"nama": "Siti", "umur": 3, "jenis": "P"}),
            json!({"nama": "Siti", "umur": 3, "jenis": null}),
            json!({"nama": "Siti", "umur": 3, "jenis": true}),
            json!({"nama": "Siti", "umur": 3, "jenis": false}),
            json!({"nama": "Siti", "umur": 3, "jenis": 7}),
            json!({"nama": "Siti", "umur": 3, "jenis": 8}),
            json!({"nama": "Siti", "umur": 3, "jenis": "X"}),
            json!({"nama": "Siti", "umur": 3, "jenis": ["L"]}),
            json!({"nama": "Siti", "umur": 3, "versi": "v1"}),
            json!({"nama": "Siti", "umur": 3, "versi": "v2"}),
            json!({"nama": "Siti", "umur": 3, "tag": []}),
            json!({"nama": "Siti", "umur": 3, "tag": ["a", "b"]}),
            json!({"nama": "Siti", "umur": 3, "tag": ["a", "b", "c"]}),
            json!({"nama": "Siti", "umur": 3, "tag": ["a", 1]}),
            json!({"nama": "Siti", "umur": 3, "bebas": {"x": [1, {"y": null}]}}),
            json!({"nama": "Siti", "umur": 3, "dilarang": 1}),
            json!([]),
            json!("Siti"),
            json!(null),
        ],
    );
}

#[test]
fn references_all_of_and_recursion_agree() {
    let alamat = json!({"type": "object", "required": ["desa"], "properties": {
        "desa": {"type": "string"}, "kode_wilayah": {"$ref": "/ref/kode-wilayah.schema.json"}}});
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "nik": {"$ref": "/ref/nik.schema.json", "description": "siblings of $ref apply too"},
            "tanggal": {"$ref": "/ref/tanggal.schema.json"},
            "telepon": {"$ref": "/ref/telepon.schema.json"},
            "alamat": {"$ref": "common/alamat.json"},
            "pohon": {"$ref": "#/$defs/simpul"},
            "kode": {"allOf": [{"type": "string", "maxLength": 4}, {"pattern": "^\\d+$"}]},
            "lain": {"type": "object", "additionalProperties": {"type": "integer"}}
        },
        "allOf": [{"required": ["nik"]}],
        "$defs": {"simpul": {"type": "object", "required": ["nilai"], "properties": {
            "nilai": {"type": "integer"},
            "anak": {"type": "array", "items": {"$ref": "#/$defs/simpul"}}}}}
    });
    let schema = compile_with(&root, &[("t/common/alamat.json", &alamat)]);
    let nik = "3201015203900002";
    agrees(
        &schema,
        &[
            json!({"nik": nik}),
            json!({}),
            json!({"nik": "3201013104900001"}),
            json!({"nik": "320101520390000"}),
            json!({"nik": nik, "tanggal": "2024-02-29"}),
            json!({"nik": nik, "tanggal": "2023-02-29"}),
            json!({"nik": nik, "tanggal": "2023-13-01"}),
            json!({"nik": nik, "telepon": "081234567890"}),
            json!({"nik": nik, "telepon": "0812"}),
            json!({"nik": nik, "alamat": {"desa": "Sukadana", "kode_wilayah": "18.07"}}),
            json!({"nik": nik, "alamat": {"desa": "Sukadana", "kode_wilayah": "18.00"}}),
            json!({"nik": nik, "alamat": {"kode_wilayah": "18.07"}}),
            json!({"nik": nik, "pohon": {"nilai": 1, "anak": [{"nilai": 2, "anak": [{"nilai": 3}]}]}}),
            json!({"nik": nik, "pohon": {"nilai": 1, "anak": [{"nilai": 2, "anak": [{"nilai": "3"}]}]}}),
            json!({"nik": nik, "pohon": {"nilai": 1, "anak": [{"anak": []}]}}),
            json!({"nik": nik, "kode": "0123"}),
            json!({"nik": nik, "kode": "01234"}),
            json!({"nik": nik, "kode": "01a"}),
            json!({"nik": nik, "kode": "٣"}),
            json!({"nik": nik, "lain": {"a": 1, "b": 2}}),
            json!({"nik": nik, "lain": {"a": 1, "b": "2"}}),
        ],
    );
}

/// `additionalProperties` sees only the `properties` beside it: not those of an `allOf` branch or a `$ref`
/// target merged into the same node (the false accept the JSON-Schema-Test-Suite found).
#[test]
fn additional_properties_never_sees_the_properties_of_another_subschema() {
    for schema in [
        json!({"allOf": [{"properties": {"a": {}}}], "additionalProperties": false}),
        json!({"allOf": [{"properties": {"a": {}}}, {"additionalProperties": false}]}),
        json!({"$ref": "#/$defs/a", "additionalProperties": false, "$defs": {"a": {"properties": {"a": {}}}}}),
        json!({"properties": {"a": {}}, "allOf": [{"additionalProperties": {"type": "string"}}]}),
        json!({"allOf": [{"properties": {"a": {}}}], "additionalProperties": {"type": "string"}}),
    ] {
        let compiled = compile(schema.clone());
        assert!(compiled.single_pass.is_none(), "{schema}");
        let body = br#"{"a": 1}"#;
        assert!(!compiled.accepts_in_single_pass(body), "{schema}");
        assert!(!compiled.full.is_valid(&json!({"a": 1})), "{schema}");
        assert!(crate::check::check_request_body(&bytes::Bytes::from_static(body), &compiled).is_err());
    }
    // beside each other they still merge, with `required` and `type` from other subschemas
    let merged = compile(json!({"allOf": [{"required": ["a"]}, {"type": "object"}],
        "properties": {"a": {"type": "integer"}}, "additionalProperties": false}));
    agrees(&merged, &[json!({"a": 1}), json!({"a": 1, "b": 2}), json!({}), json!({"a": "1"})]);
}

/// The deepest nesting the config allows is read and validated by both validators, on a recursive schema,
/// within a thread's default stack (2 MiB, as the test and the runtime's workers have).
#[test]
fn the_deepest_allowed_nesting_fits_in_a_thread_stack() {
    let ceiling = crate::json::MAX_DEPTH_CEILING;
    let root = json!({"$ref": "#/$defs/n", "$defs": {"n": {"type": "array", "items": {"$ref": "#/$defs/n"}}}});
    let store: HashMap<&str, &Value> = [("t/root.json", &root)].into_iter().collect();
    let schema = Compiler::new(&store, FORMATS).with_max_depth(ceiling).schema("t/root.json").unwrap();
    let nested = |depth: usize, inner: &str| format!("{}{inner}{}", "[".repeat(depth), "]".repeat(depth));
    assert!(schema.accepts_in_single_pass(nested(ceiling, "").as_bytes()));
    // invalid at the bottom: the full validator walks all the way down to name it
    let body = bytes::Bytes::from(nested(ceiling - 1, "1"));
    let Err(crate::error::ContractError::RequestInvalid { violations }) =
        crate::check::check_request_body(&body, &schema)
    else {
        panic!("refused for its content")
    };
    assert_eq!(violations[0].keyword, "type");
    let too_deep = bytes::Bytes::from(nested(ceiling + 1, ""));
    assert!(matches!(
        crate::check::check_request_body(&too_deep, &schema),
        Err(crate::error::ContractError::TooDeep { .. })
    ));
}

/// What the strict reading refuses, the single pass never accepts, in constrained and unconstrained parts
/// alike; the full path then names it.
#[test]
fn duplicates_deep_nesting_and_inexact_numbers_are_never_accepted_in_a_single_pass() {
    let schema = compile(json!({"type": "object", "properties": {
        "a": {"type": "integer", "maximum": 1000}, "b": {"type": "object", "properties": {"c": {}}},
        "n": {"type": "number", "maximum": 1000}}}));
    assert!(schema.single_pass.is_some());
    let deep = |depth: usize| format!("{{\"free\": {}1{}}}", "[".repeat(depth), "]".repeat(depth));
    for body in [
        r#"{"a": 1, "a": 2000}"#.to_string(),
        r#"{"a": 1, "\u0061": 1}"#.to_string(),
        r#"{"free": {"x": 1, "x": 2}}"#.to_string(),
        r#"{"free": [{"x": 1, "y": [{"z": 0, "z": 0}]}]}"#.to_string(),
        r#"{"b": {"c": 1, "c": 2}}"#.to_string(),
        r#"{"n": 1000.0000000000001}"#.to_string(),
        r#"{"n": 1000.00000000000001}"#.to_string(),
        r#"{"a": 18446744073709551617}"#.to_string(),
        r#"{"free": 3.14159265358979323846}"#.to_string(),
        deep(128),
        deep(100_000),
    ] {
        assert!(!schema.accepts_in_single_pass(body.as_bytes()), "{body}");
        let refused = crate::check::check_request_body(&bytes::Bytes::from(body.clone()), &schema);
        assert!(refused.is_err(), "{body}");
    }
    for body in [r#"{"a": 1000, "n": 999.9999999999999, "free": {"x": [1e308, 0.1, -0]}}"#.to_string(), deep(127)] {
        assert!(schema.accepts_in_single_pass(body.as_bytes()), "{body}");
    }
}

#[test]
fn a_schema_with_a_foreign_id_is_left_to_the_full_validator_and_only_it() {
    let foreign = json!({"$id": "https://example.org/alamat.json", "type": "object"});
    let plain = json!({"type": "string"});
    let mut store: HashMap<&str, &Value> = HashMap::new();
    store.insert("t/foreign.json", &foreign);
    store.insert("t/plain.json", &plain);
    let mut compiler = Compiler::new(&store, FORMATS);
    assert!(compiler.schema("t/plain.json").unwrap().single_pass.is_some());
    let schema = compiler.schema("t/foreign.json").unwrap();
    assert!(schema.single_pass.is_none());
    assert!(schema.full.is_valid(&json!({})) && !schema.full.is_valid(&json!(1)));
}

#[test]
fn where_unsure_the_single_pass_leaves_the_decision_to_the_full_validator() {
    let schema = compile(json!({"properties": {
        "a": {"enum": [1]},
        "b": {"maximum": 10},
        "c": {"enum": [[1], {"x": 1}]}
    }}));
    // valid for the full validator; the single pass only says "not known" and the full path decides
    for instance in [json!({"a": 1.0}), json!({"b": -9_007_199_254_740_993_i64}), json!({"c": [1]})] {
        assert!(schema.full.is_valid(&instance), "{instance}");
        assert!(!schema.accepts_in_single_pass(&serde_json::to_vec(&instance).unwrap()), "{instance}");
    }
    // malformed or trailing input is never accepted
    for body in [&b"{\"a\": 1"[..], b"{} {}", b"", b"{\"a\": 1,}", b"\xff"] {
        assert!(!schema.accepts_in_single_pass(body), "{body:?}");
    }
    assert!(schema.accepts_in_single_pass(b" {\"a\": 1}\n"));
}

#[test]
fn keywords_outside_the_subset_leave_the_schema_to_the_full_validator() {
    for (schema, reason) in [
        (json!({"anyOf": [{"type": "string"}, {"type": "null"}]}), "anyOf"),
        (json!({"properties": {"a": {"not": {"type": "string"}}}}), "not"),
        (json!({"type": "string", "format": "email"}), "format: email"),
        (json!({"type": "string", "pattern": "^\\s+$"}), "\\s"),
        (json!({"type": "string", "pattern": "^(?=a)"}), "pattern"),
        (json!({"type": "number", "multipleOf": 0.01}), "multipleOf"),
        (json!({"minProperties": 1}), "minProperties"),
        (json!({"type": "array", "uniqueItems": true}), "uniqueItems"),
        (json!({"$ref": "#/$defs/a", "$defs": {"a": {"$ref": "#/$defs/a"}}}), "cycle"),
        (json!({"$ref": "#anker", "$defs": {"a": {"$anchor": "anker"}}}), "anchor"),
        (json!({"$schema": "http://json-schema.org/draft-07/schema#"}), "$schema"),
        (json!({"maximum": 18_446_744_073_709_551_615_u64}), "bound"),
    ] {
        let why = unsupported_reason(schema.clone());
        assert!(why.contains(reason), "{schema}: {why}");
    }
    // an unknown format is ignored by both, and so is `uniqueItems: false`
    agrees(&compile(json!({"type": "integer", "format": "int64"})), &[json!(1), json!("1")]);
    agrees(&compile(json!({"uniqueItems": false})), &[json!([1, 1]), json!({})]);
}

/// Every keyword of the 2020-12 vocabularies (and the older ones `jsonschema` still knows), each with instances
/// it decides: either the single pass agrees on them, or the schema is left to the full validator. A keyword
/// wrongly taken for an annotation would show here as a disagreement.
#[test]
fn every_keyword_agrees_or_is_left_to_the_full_validator() {
    let cases = [
        (json!({"type": "integer"}), vec![json!(1), json!(1.5), json!("1")]),
        (json!({"enum": [1, "a"]}), vec![json!(1), json!("a"), json!("b")]),
        (json!({"const": {"a": 1}}), vec![json!({"a": 1}), json!({"a": 2})]),
        (json!({"multipleOf": 2}), vec![json!(4), json!(3)]),
        (json!({"maximum": 3}), vec![json!(3), json!(4)]),
        (json!({"exclusiveMaximum": 3}), vec![json!(2), json!(3)]),
        (json!({"minimum": 3}), vec![json!(3), json!(2)]),
        (json!({"exclusiveMinimum": 3}), vec![json!(4), json!(3)]),
        (json!({"maxLength": 2}), vec![json!("ab"), json!("abc")]),
        (json!({"minLength": 2}), vec![json!("ab"), json!("a")]),
        (json!({"pattern": "^a"}), vec![json!("ab"), json!("ba")]),
        (json!({"maxItems": 1}), vec![json!([1]), json!([1, 2])]),
        (json!({"minItems": 1}), vec![json!([1]), json!([])]),
        (json!({"uniqueItems": true}), vec![json!([1, 2]), json!([1, 1])]),
        (json!({"maxContains": 1, "contains": {"type": "string"}}), vec![json!(["a"]), json!(["a", "b"])]),
        (json!({"minContains": 2, "contains": {"type": "string"}}), vec![json!(["a", "b"]), json!(["a"])]),
        (json!({"maxProperties": 1}), vec![json!({"a": 1}), json!({"a": 1, "b": 2})]),
        (json!({"minProperties": 1}), vec![json!({"a": 1}), json!({})]),
        (json!({"required": ["a"]}), vec![json!({"a": 1}), json!({})]),
        (json!({"dependentRequired": {"a": ["b"]}}), vec![json!({"a": 1, "b": 1}), json!({"a": 1})]),
        (json!({"dependentSchemas": {"a": {"required": ["b"]}}}), vec![json!({"a": 1, "b": 1}), json!({"a": 1})]),
        (json!({"dependencies": {"a": ["b"]}}), vec![json!({"a": 1, "b": 1}), json!({"a": 1})]),
        (json!({"prefixItems": [{"type": "string"}]}), vec![json!(["a"]), json!([1])]),
        (json!({"items": {"type": "string"}}), vec![json!(["a"]), json!([1])]),
        (json!({"additionalItems": false}), vec![json!([]), json!([1])]),
        (json!({"contains": {"type": "string"}}), vec![json!(["a"]), json!([1])]),
        (json!({"properties": {"a": {"type": "string"}}}), vec![json!({"a": "x"}), json!({"a": 1})]),
        (json!({"patternProperties": {"^a": {"type": "string"}}}), vec![json!({"ab": "x"}), json!({"ab": 1})]),
        (json!({"additionalProperties": false}), vec![json!({}), json!({"a": 1})]),
        (json!({"propertyNames": {"maxLength": 1}}), vec![json!({"a": 1}), json!({"ab": 1})]),
        (json!({"unevaluatedProperties": false}), vec![json!({}), json!({"a": 1})]),
        (json!({"unevaluatedItems": false}), vec![json!([]), json!([1])]),
        (json!({"allOf": [{"type": "string"}]}), vec![json!("a"), json!(1)]),
        (json!({"anyOf": [{"type": "string"}]}), vec![json!("a"), json!(1)]),
        (json!({"oneOf": [{"type": "string"}]}), vec![json!("a"), json!(1)]),
        (json!({"not": {"type": "string"}}), vec![json!(1), json!("a")]),
        (json!({"if": {"type": "string"}, "then": {"minLength": 2}}), vec![json!("ab"), json!("a")]),
        (json!({"if": {"type": "string"}, "else": {"minimum": 2}}), vec![json!(2), json!(1)]),
        (json!({"format": "date"}), vec![json!("2024-02-29"), json!("2023-02-29")]),
        (json!({"format": "email"}), vec![json!("a@b.id"), json!("a")]),
        (json!({"format": "nik"}), vec![json!("3201015203900002"), json!("3201013104900001")]),
        (json!({"contentMediaType": "application/json"}), vec![json!("{}"), json!("{")]),
        (json!({"contentEncoding": "base64"}), vec![json!("YQ=="), json!("*")]),
        (json!({"$defs": {"a": {"type": "string"}}}), vec![json!(1)]),
        (
            json!({"title": "t", "description": "d", "examples": [1], "default": 1, "deprecated": true,
            "readOnly": true, "writeOnly": true, "$comment": "c"}),
            vec![json!(1)],
        ),
    ];
    for (schema, instances) in cases {
        let compiled = compile(schema.clone());
        if compiled.single_pass.is_none() {
            continue;
        }
        for instance in &instances {
            let body = serde_json::to_vec(instance).unwrap();
            // `1` and `1.0`, or an object `const`: the single pass may leave a valid instance to the full
            // path, never accept an invalid one
            let accepted = compiled.accepts_in_single_pass(&body);
            let valid = compiled.full.is_valid(instance);
            assert!(!accepted || valid, "{schema}: the single pass accepts {instance}, the full validator not");
            if !matches!(instance, Value::Object(_) | Value::Array(_)) || schema.get("const").is_none() {
                assert_eq!(accepted, valid, "{schema} on {instance}");
            }
        }
    }
}

#[test]
fn dates_are_checked_as_strictly_as_the_full_validator() {
    for (date, valid) in [
        ("2024-02-29", true),
        ("2023-02-29", false),
        ("2023-04-31", false),
        ("2023-12-31", true),
        ("1900-02-29", false),
        ("2000-02-29", true),
        ("2023-00-10", false),
        ("2023-01-00", false),
        ("2023-1-01", false),
        ("2023-01-01T00:00:00Z", false),
        ("٢٠٢٣-01-01", false),
    ] {
        assert_eq!(is_date(date), valid, "{date}");
    }
}

/// A small deterministic generator (xorshift), so that a failure names a reproducible seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn replacement(rng: &mut Rng) -> Value {
    let pool = [
        json!(null),
        json!(true),
        json!(0),
        json!(-3),
        json!(2.5),
        json!(151),
        json!(""),
        json!("L"),
        json!("18.07.01.2001"),
        json!("18.07.01.2000"),
        json!("3201015203900002"),
        json!("3201013104900001"),
        json!("2024-02-29"),
        json!("2023-02-29"),
        json!("081234567890"),
        json!("x".repeat(101)),
        json!("ÑAMA"),
        json!([]),
        json!({}),
        json!([{"nik": "3201015203900002", "nama": "A", "hubungan": "ANAK"}]),
    ];
    pool[rng.below(pool.len())].clone()
}

/// Replaces, removes or adds one member somewhere in `value`.
fn mutate(value: &mut Value, rng: &mut Rng) {
    match value {
        Value::Object(map) if !map.is_empty() && rng.below(4) != 0 => {
            let key = map.keys().nth(rng.below(map.len())).unwrap().clone();
            match rng.below(5) {
                0 => {
                    map.remove(&key);
                }
                1 => {
                    map.insert(key, replacement(rng));
                }
                2 => {
                    map.insert(format!("{key}_x"), replacement(rng));
                }
                _ => mutate(map.get_mut(&key).unwrap(), rng),
            }
        }
        Value::Array(items) if !items.is_empty() && rng.below(4) != 0 => {
            let i = rng.below(items.len());
            match rng.below(4) {
                0 => {
                    items.remove(i);
                }
                1 => items.push(replacement(rng)),
                _ => mutate(&mut items[i], rng),
            }
        }
        other => *other = replacement(rng),
    }
}

/// Thousands of mutated resident records: the single pass never accepts what the full validator refuses,
/// and on this schema (all within its subset) the two agree on every one.
#[test]
fn mutated_documents_never_pass_where_the_full_validator_refuses() {
    let root = json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["kode_wilayah_pengirim", "penduduk"],
        "properties": {
            "kode_wilayah_pengirim": {"$ref": "/ref/kode-wilayah.schema.json"},
            "jumlah": {"type": "integer", "minimum": 1, "maximum": 150},
            "penduduk": {"type": "array", "minItems": 1, "maxItems": 3, "items": {"$ref": "#/$defs/penduduk"}}
        },
        "$defs": {
            "penduduk": {
                "type": "object",
                "additionalProperties": false,
                "required": ["nik", "nama", "jenis_kelamin", "tanggal_lahir"],
                "properties": {
                    "nik": {"$ref": "/ref/nik.schema.json"},
                    "nama": {"type": "string", "minLength": 1, "maxLength": 100},
                    "jenis_kelamin": {"enum": ["L", "P"]},
                    "tanggal_lahir": {"$ref": "/ref/tanggal.schema.json"},
                    "telepon": {"$ref": "/ref/telepon.schema.json"},
                    "skor": {"type": ["number", "null"], "exclusiveMinimum": 0},
                    "anggota": {"type": "array", "items": {"type": "object",
                        "required": ["nik", "nama", "hubungan"],
                        "properties": {"nik": {"$ref": "/ref/nik.schema.json"},
                            "nama": {"type": "string", "minLength": 1},
                            "hubungan": {"enum": ["SUAMI", "ISTRI", "ANAK"]}}}}
                }
            }
        }
    });
    let schema = compile(root);
    let base = json!({
        "kode_wilayah_pengirim": "18.07",
        "jumlah": 2,
        "penduduk": [
            {"nik": "3201015203900002", "nama": "SITI", "jenis_kelamin": "P", "tanggal_lahir": "1990-03-12",
             "telepon": "081234567890", "skor": 2.5,
             "anggota": [{"nik": "3201011203900001", "nama": "BUDI", "hubungan": "SUAMI"}]},
            {"nik": "3201011203900001", "nama": "BUDI", "jenis_kelamin": "L", "tanggal_lahir": "1990-03-12"}
        ]
    });
    assert!(schema.full.is_valid(&base));
    let mut rng = Rng(0x5eed_1807_2026);
    let (mut accepted, mut refused) = (0, 0);
    for round in 0..10_000 {
        let mut document = base.clone();
        for _ in 0..1 + rng.below(3) {
            mutate(&mut document, &mut rng);
        }
        let body = serde_json::to_vec(&document).unwrap();
        let full = schema.full.is_valid(&document);
        assert_eq!(schema.accepts_in_single_pass(&body), full, "round {round}: {document}");
        if full {
            accepted += 1;
        } else {
            refused += 1;
        }
        // the same bytes cut short are never accepted
        let cut = 1 + rng.below(body.len().div_ceil(2));
        assert!(!schema.accepts_in_single_pass(&body[..body.len() - cut]), "round {round}: cut {cut}");
    }
    assert!(accepted > 200 && refused > 5000, "accepted {accepted}, refused {refused}");
}

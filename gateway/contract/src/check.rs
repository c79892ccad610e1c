//! Holding a request or a response to its contract on the data plane: media type, JSON syntax (with line and
//! column), the strict reading of [`crate::json`] (duplicate keys, nesting, exact numbers), schema, and query
//! parameters (an object of strings, arrays when a name repeats). A body is first
//! offered to the schema's single pass (validated while parsed); what it does not accept is parsed into a
//! document and decided by the full validator (`is_valid` first; the error list is only collected on failure,
//! at most [`MAX_VIOLATIONS`]).

use bytes::Bytes;
use http::HeaderMap;
use jsonschema::Validator;
use serde_json::{Map, Value};

use crate::error::ContractError;
use crate::json::{self, Refusal};
use crate::schema::Schema;
use crate::violation::Violation;

/// At most this many violations are reported.
pub const MAX_VIOLATIONS: usize = 20;

/// The media type essence of a `Content-Type` value (`application/json; charset=utf-8` → `application/json`).
fn media_type(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::CONTENT_TYPE)?.to_str().ok()?;
    Some(value.split(';').next().unwrap_or("").trim())
}

/// Checks the request's media type against the contract's (`expected` is lower case; the header's case does
/// not matter).
pub fn check_media_type(headers: &HeaderMap, expected: &str) -> Result<(), ContractError> {
    match media_type(headers) {
        Some(got) if got.eq_ignore_ascii_case(expected) => Ok(()),
        got => {
            Err(ContractError::UnsupportedMediaType { expected: expected.to_string(), got: got.map(str::to_string) })
        }
    }
}

/// Parses and validates a request body.
pub fn check_request_body(body: &Bytes, schema: &Schema) -> Result<(), ContractError> {
    if schema.accepts_in_single_pass(body) {
        return Ok(());
    }
    let validator = &schema.full;
    let value = json::parse(body, schema.max_depth).map_err(|refusal| match refusal {
        Refusal::Syntax { line, column, reason } => ContractError::MalformedJson { line, column, reason },
        Refusal::DuplicateKey { pointer } => ContractError::DuplicateKey { pointer },
        Refusal::TooDeep { limit, .. } => ContractError::TooDeep { limit },
        Refusal::NumberPrecision { pointer } => ContractError::NumberPrecision { pointer },
    })?;
    if validator.is_valid(&value) {
        return Ok(());
    }
    Err(ContractError::RequestInvalid { violations: violations(validator, &value, true) })
}

/// Validates the query string (`None`: no query) as an object of parameters. A parameter given once is a
/// string; when the contract wants an array there (`?fields=nama` for `fields: array`), it is read as an array
/// of one.
pub fn check_query(query: Option<&str>, schema: &Schema) -> Result<(), ContractError> {
    let validator = &schema.full;
    let mut value = query_object(query.unwrap_or(""));
    if validator.is_valid(&value) {
        return Ok(());
    }
    let wants_array: Vec<String> = validator
        .iter_errors(&value)
        .filter(|e| e.schema_path.as_str().ends_with("/type") && e.instance.is_string())
        .filter_map(|e| e.instance_path.as_str().strip_prefix('/').filter(|p| !p.contains('/')).map(String::from))
        .collect();
    if !wants_array.is_empty() {
        if let Value::Object(map) = &mut value {
            for name in wants_array {
                let name = name.replace("~1", "/").replace("~0", "~");
                if let Some(single) = map.get_mut(&name) {
                    *single = Value::Array(vec![single.take()]);
                }
            }
        }
        if validator.is_valid(&value) {
            return Ok(());
        }
    }
    Err(ContractError::QueryInvalid { violations: violations(validator, &value, true) })
}

/// Validates a response body; `Err` holds the violations (without messages: they may quote upstream data).
pub fn check_response_body(body: &[u8], schema: &Schema) -> Result<(), Vec<Violation>> {
    if schema.accepts_in_single_pass(body) {
        return Ok(());
    }
    let validator = &schema.full;
    let value = match json::parse(body, schema.max_depth) {
        Ok(v) => v,
        Err(Refusal::Syntax { line, column, .. }) => {
            return Err(vec![Violation {
                pointer: String::new(),
                keyword: "json".into(),
                message: format!("not valid JSON at line {line} column {column}"),
            }])
        }
        // a duplicate key, a nesting too deep or a number too precise: what the caller would read is not what
        // was validated, so the response is held like any other violation
        Err(refusal) => {
            return Err(vec![Violation {
                pointer: refusal.pointer().to_string(),
                keyword: refusal.keyword().into(),
                message: String::new(),
            }])
        }
    };
    if validator.is_valid(&value) {
        return Ok(());
    }
    Err(violations(validator, &value, false))
}

fn violations(validator: &Validator, value: &Value, with_messages: bool) -> Vec<Violation> {
    validator
        .iter_errors(value)
        .take(MAX_VIOLATIONS)
        .map(|e| Violation {
            pointer: e.instance_path.as_str().to_string(),
            keyword: e.schema_path.as_str().rsplit('/').next().unwrap_or("").to_string(),
            message: if with_messages { e.to_string() } else { String::new() },
        })
        .collect()
}

/// `a=1&b=x&b=y` → `{"a": "1", "b": ["x", "y"]}` (form decoding: `+` is a space, `%XX` escapes).
pub fn query_object(query: &str) -> Value {
    let mut map = Map::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (name, value) = (decode(name), decode(value));
        match map.get_mut(&name) {
            None => {
                map.insert(name, Value::String(value));
            }
            Some(Value::Array(list)) => list.push(Value::String(value)),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, Value::String(value)]);
            }
        }
    }
    Value::Object(map)
}

fn decode(text: &str) -> String {
    let spaced = text.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The schema as the snapshot compiles it (full and, where it can, single-pass).
    fn validator(schema: Value) -> Schema {
        let store: std::collections::HashMap<&str, &Value> = [("t/schema.json", &schema)].into_iter().collect();
        let compiled = crate::compile::Compiler::new(&store, crate::formats::FORMATS).schema("t/schema.json").unwrap();
        std::sync::Arc::try_unwrap(compiled).unwrap()
    }

    #[test]
    fn malformed_json_has_line_and_column() {
        let v = validator(json!({}));
        let err = check_request_body(&Bytes::from_static(b"{\n  \"nik\": \"1\",\n  oops\n}"), &v).unwrap_err();
        match err {
            ContractError::MalformedJson { line, column, .. } => assert_eq!((line, column), (3, 3)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn nested_violations_name_their_pointers() {
        let v = validator(json!({
            "type": "object",
            "required": ["anggota"],
            "properties": {"anggota": {"type": "array", "items": {"type": "object", "required": ["nik"],
                "properties": {"nik": {"type": "string", "pattern": "^[0-9]{16}$"}}}}}
        }));
        let body = Bytes::from_static(br#"{"anggota": [{"nik": "1807015508900002"}, {"nik": "12"}, {}]}"#);
        let ContractError::RequestInvalid { violations } = check_request_body(&body, &v).unwrap_err() else { panic!() };
        let found: Vec<(&str, &str)> = violations.iter().map(|v| (v.pointer.as_str(), v.keyword.as_str())).collect();
        assert_eq!(found, [("/anggota/1/nik", "pattern"), ("/anggota/2", "required")]);
        assert!(violations.iter().all(|v| !v.message.is_empty()));
    }

    #[test]
    fn violations_are_bounded() {
        let v = validator(json!({"type": "array", "items": {"type": "string"}}));
        let body = Bytes::from(serde_json::to_vec(&vec![1; 100]).unwrap());
        let ContractError::RequestInvalid { violations } = check_request_body(&body, &v).unwrap_err() else { panic!() };
        assert_eq!(violations.len(), MAX_VIOLATIONS);
    }

    #[test]
    fn query_strings_become_objects() {
        assert_eq!(query_object("a=1&b=x+y&b=%2Fz&c"), json!({"a": "1", "b": ["x y", "/z"], "c": ""}));
        let v = validator(json!({"type": "object", "required": ["tahun"], "additionalProperties": false,
            "properties": {"tahun": {"type": "string", "pattern": "^[0-9]{4}$"}}}));
        assert!(check_query(Some("tahun=2025"), &v).is_ok());
        assert!(check_query(None, &v).is_err());
        assert!(check_query(Some("tahun=2025&x=1"), &v).is_err());
        let fields = validator(
            json!({"type": "object", "properties": {"fields": {"type": "array", "items": {"enum": ["nama", "alamat"]}}}}),
        );
        assert!(check_query(Some("fields=nama"), &fields).is_ok(), "one value of an array parameter");
        assert!(check_query(Some("fields=nama&fields=alamat"), &fields).is_ok());
        assert!(check_query(Some("fields=agama"), &fields).is_err());
    }

    #[test]
    fn response_violations_carry_no_values() {
        let v = validator(json!({"properties": {"nik": {"type": "string", "maxLength": 3}}}));
        let found = check_response_body(br#"{"nik": "1807015508900002"}"#, &v).unwrap_err();
        assert_eq!(found[0].pointer, "/nik");
        assert!(found[0].message.is_empty());
    }

    #[test]
    fn media_types() {
        let mut h = HeaderMap::new();
        assert!(check_media_type(&h, "application/json").is_err());
        h.insert(http::header::CONTENT_TYPE, "Application/JSON; charset=utf-8".parse().unwrap());
        assert!(check_media_type(&h, "application/json").is_ok());
        h.insert(http::header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert!(check_media_type(&h, "application/json").is_err());
    }
}

//! Turns a stored TOML text into a typed document: TOML syntax, then the kind's JSON Schema
//! (`schemas/documents/*.schema.json`, compiled once), then the typed shape. Every problem comes back as a
//! [`Diagnostic`] pointing at the line of the offending key.

use std::ops::Range;
use std::sync::OnceLock;

use jsonschema::{Resource, Validator};
use serde::de::DeserializeOwned;

use super::DocumentKind;
use penghubung_contract::compile::build_by_reference;
use penghubung_contract::json::{self, Refusal};
use penghubung_types::diagnostics::Diagnostic;
use penghubung_types::embedded;

const SCHEMA_BASE: &str = "https://schemas.penghubung.local/";
/// At most this many schema violations are reported per document.
const MAX_ERRORS_PER_DOCUMENT: usize = 20;

struct Validators {
    opd: Validator,
    service: Validator,
    client: Validator,
    grant: Validator,
    tier: Validator,
    operator: Validator,
}

fn validators() -> &'static Validators {
    static VALIDATORS: OnceLock<Validators> = OnceLock::new();
    VALIDATORS.get_or_init(|| {
        let load = |name: &str| -> serde_json::Value {
            let text = embedded::schema(&format!("documents/{name}.schema.json"))
                .unwrap_or_else(|| panic!("schema documents/{name}.schema.json is not embedded"));
            serde_json::from_str(text).unwrap_or_else(|e| panic!("schema {name}: {e}"))
        };
        let common = load("common");
        // Built by reference: `jsonschema`'s own check of these (fixed) schemas against the meta-schema would keep
        // some 60 MB for the life of the process (see `contract::compile`); their test checks them instead.
        let compile = |name: &str| {
            let uri = format!("{SCHEMA_BASE}documents/{name}.schema.json");
            let options = jsonschema::options()
                .with_resource(
                    format!("{SCHEMA_BASE}documents/common.schema.json"),
                    Resource::from_contents(common.clone()).expect("common schema is a resource"),
                )
                .with_resource(
                    uri.clone(),
                    Resource::from_contents(load(name)).expect("document schema is a resource"),
                );
            build_by_reference(&options, &uri).unwrap_or_else(|e| panic!("schema {name} does not compile: {e}"))
        };
        Validators {
            opd: compile("opd"),
            service: compile("service"),
            client: compile("client"),
            grant: compile("grant"),
            tier: compile("tier"),
            operator: compile("operator"),
        }
    })
}

/// Parses and checks one document of `kind`. `origin` names it in diagnostics.
pub fn parse_document<T: DeserializeOwned>(kind: DocumentKind, origin: &str, text: &str) -> Result<T, Vec<Diagnostic>> {
    let spans = toml_edit::Document::parse(text)
        .map_err(|e| vec![Diagnostic::error_at(origin, text, e.span(), format!("invalid TOML: {}", e.message()))])?;
    let value: serde_json::Value = toml::from_str(text)
        .map_err(|e| vec![Diagnostic::error_at(origin, text, e.span(), format!("invalid TOML: {}", e.message()))])?;
    let validator = match kind {
        DocumentKind::Opd => &validators().opd,
        DocumentKind::Service => &validators().service,
        DocumentKind::Client => &validators().client,
        DocumentKind::Grant => &validators().grant,
        DocumentKind::Tier => &validators().tier,
        DocumentKind::Operator => &validators().operator,
        DocumentKind::Schema => return Err(vec![Diagnostic::error(origin, "a schema is JSON, not a TOML document")]),
    };
    if !validator.is_valid(&value) {
        let problems: Vec<Diagnostic> = validator
            .iter_errors(&value)
            .take(MAX_ERRORS_PER_DOCUMENT)
            .map(|error| {
                let pointer = error.instance_path.as_str().to_string();
                let span = locate_pointer(spans.as_table(), &pointer);
                let place = if pointer.is_empty() { String::from("document") } else { format!("`{pointer}`") };
                Diagnostic::error_at(origin, text, span, format!("{place}: {error}"))
            })
            .collect();
        return Err(problems);
    }
    serde_json::from_value(value).map_err(|e| vec![Diagnostic::error(origin, format!("invalid {kind}: {e}"))])
}

/// Parses a contract schema (JSON). Whether it is a valid JSON Schema is checked when the snapshot compiles it.
pub fn parse_schema(origin: &str, text: &str) -> Result<serde_json::Value, Vec<Diagnostic>> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        vec![Diagnostic {
            line: e.line(),
            column: e.column(),
            ..Diagnostic::error(origin, format!("invalid JSON: {e}"))
        }]
    })?;
    if !value.is_object() && !value.is_boolean() {
        return Err(vec![Diagnostic::error(origin, "a JSON Schema is an object (or true/false)")]);
    }
    // A schema is read as strictly as the bodies it checks: a repeated keyword or a bound written with more
    // precision than is compared would mean something other than what it says.
    match json::parse(text.as_bytes(), json::MAX_DEPTH_CEILING) {
        Err(Refusal::DuplicateKey { pointer }) => {
            Err(vec![Diagnostic::error(origin, format!("the key at `{pointer}` is written twice in its object"))])
        }
        Err(Refusal::NumberPrecision { pointer }) => Err(vec![Diagnostic::error(
            origin,
            format!(
                "the number at `{pointer}` has more precision than a double or a 64-bit integer holds; it would \
                 be compared as a rounded value"
            ),
        )]),
        Err(Refusal::TooDeep { limit, .. }) => {
            Err(vec![Diagnostic::error(origin, format!("the schema nests deeper than {limit} levels"))])
        }
        Err(Refusal::Syntax { .. }) | Ok(_) => Ok(value),
    }
}

/// A place in a parsed TOML document that a JSON pointer can step through.
#[derive(Clone, Copy)]
enum Node<'a> {
    Table(&'a toml_edit::Table),
    Item(&'a toml_edit::Item),
    Value(&'a toml_edit::Value),
}

/// Finds the source span of a JSON pointer (`/upstream/endpoints/1`) in a parsed TOML document. Falls back to
/// the nearest enclosing key or value that has a span.
fn locate_pointer(root: &toml_edit::Table, pointer: &str) -> Option<Range<usize>> {
    let mut best: Option<Range<usize>> = None;
    let mut node = Node::Table(root);
    for raw in pointer.split('/').skip(1) {
        let segment = raw.replace("~1", "/").replace("~0", "~");
        let index = segment.parse::<usize>().ok();
        let next = match node {
            Node::Table(t) => t.get_key_value(&segment).map(|(k, v)| {
                best = k.span().or(best.take());
                Node::Item(v)
            }),
            Node::Item(toml_edit::Item::Table(t)) => t.get_key_value(&segment).map(|(k, v)| {
                best = k.span().or(best.take());
                Node::Item(v)
            }),
            Node::Item(toml_edit::Item::ArrayOfTables(a)) => index.and_then(|i| a.get(i)).map(Node::Table),
            Node::Item(toml_edit::Item::Value(v)) | Node::Value(v) => match v {
                toml_edit::Value::Array(a) => index.and_then(|i| a.get(i)).map(Node::Value),
                toml_edit::Value::InlineTable(t) => t.get(&segment).map(Node::Value),
                _ => None,
            },
            Node::Item(toml_edit::Item::None) => None,
        };
        let Some(next) = next else { break };
        let span = match next {
            Node::Table(t) => t.span(),
            Node::Item(i) => i.span(),
            Node::Value(v) => v.span(),
        };
        if span.is_some() {
            best = span;
        }
        node = next;
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use penghubung_types::documents::ServiceDoc;

    const SERVICE: &str = r#"opd = "dinkes"
name = "rekam-medis"
version = 1
title = "Rekam medis"
classification = "rahasia"

[upstream]
endpoints = ["http://127.0.0.1:1", "ftp://nope"]

[[operations]]
id = "ambil"
method = "GET"
path = "/pasien/{id}"

[[operations]]
id = "Bad Id"
method = "GET"
path = "/x"
"#;

    #[test]
    fn schema_errors_point_at_their_lines() {
        let errs = parse_document::<ServiceDoc>(DocumentKind::Service, "s.toml", SERVICE).unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
        let lines: Vec<usize> = errs.iter().map(|e| e.line).collect();
        assert!(lines.contains(&8), "{errs:?}");
        assert!(lines.contains(&16), "{errs:?}");
        assert!(errs.iter().any(|e| e.message.contains("/upstream/endpoints/1")), "{errs:?}");
    }

    #[test]
    fn schemas_are_read_as_strictly_as_bodies() {
        for (text, says) in [
            (r#"{"maximum": 1, "maximum": 1000}"#, "`/maximum` is written twice"),
            (r#"{"properties": {"a": {"type": "string", "\u0074ype": "integer"}}}"#, "`/properties/a/type`"),
            (r#"{"maximum": 1000.00000000000001}"#, "more precision"),
            (r#"{"const": 18446744073709551617}"#, "`/const`"),
        ] {
            let errs = parse_schema("s.json", text).unwrap_err();
            assert!(errs[0].message.contains(says), "{text}: {errs:?}");
        }
        assert!(parse_schema("s.json", r#"{"maximum": 1000.0000000000001, "const": 18446744073709551615}"#).is_ok());
    }

    #[test]
    fn syntax_errors_have_a_line() {
        let errs =
            parse_document::<ServiceDoc>(DocumentKind::Service, "s.toml", "opd = \"x\"\nname = = 3\n").unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].line, 2, "{errs:?}");
    }

    /// The document validators are built by reference, without `jsonschema`'s meta-schema check: this test
    /// is that check.
    #[test]
    fn document_schemas_satisfy_the_meta_schema() {
        for name in ["common", "opd", "service", "client", "grant", "tier"] {
            let text = embedded::schema(&format!("documents/{name}.schema.json")).unwrap();
            let schema: serde_json::Value = serde_json::from_str(text).unwrap();
            if let Err(e) = jsonschema::meta::validate(&schema) {
                panic!("documents/{name}.schema.json: {e}");
            }
        }
    }

    #[test]
    fn valid_document_parses() {
        let fixed = SERVICE.replace("ftp://nope", "http://127.0.0.1:2").replace("Bad Id", "ok");
        let doc = parse_document::<ServiceDoc>(DocumentKind::Service, "s.toml", &fixed).unwrap();
        assert_eq!(doc.operations.len(), 2);
        assert_eq!(doc.key(), "dinkes/rekam-medis/v1");
    }
}

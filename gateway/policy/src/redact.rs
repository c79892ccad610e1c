//! Field-level classification: a response schema may mark properties with `x-klasifikasi`; a field classified
//! above the caller's clearance is removed from the JSON response, at any depth (objects inside arrays
//! included). The schema is compiled once per snapshot into a [`RedactionPlan`] that keeps only the branches
//! leading to marked fields, so applying it touches nothing else. The withheld fields are reported as JSON
//! pointer *templates*: `/keluarga/*/nik` stands for that field in every element of the array.

use serde_json::Value;

use penghubung_types::documents::Classification;

/// The schema keyword that marks a field's classification.
pub const KEYWORD: &str = "x-klasifikasi";
/// `$ref` chains deeper than this are refused (they are cycles in practice).
const MAX_DEPTH: usize = 32;

/// The marked fields of one response schema.
#[derive(Debug, Clone, PartialEq)]
pub struct RedactionPlan {
    root: Shape,
    /// The highest classification of any marked field: callers cleared for it need no redaction at all.
    pub highest: Classification,
}

#[derive(Debug, Clone, PartialEq)]
enum Shape {
    /// Properties of an object; only those that are marked or lead to marked fields.
    Object(Box<[Field]>),
    /// Every element of an array.
    Array(Box<Shape>),
}

#[derive(Debug, Clone, PartialEq)]
struct Field {
    name: Box<str>,
    classification: Option<Classification>,
    inner: Option<Shape>,
}

impl RedactionPlan {
    /// Compiles `schema`; `Ok(None)` when it marks no field. Errors name the problem (a bad `x-klasifikasi`
    /// value, a `$ref` that does not resolve locally, a cycle).
    pub fn compile(schema: &Value) -> Result<Option<RedactionPlan>, String> {
        let mut highest = None;
        let root = shape_of(schema, schema, 0, &mut highest)?;
        Ok(match (root, highest) {
            (Some(root), Some(highest)) => Some(RedactionPlan { root, highest }),
            _ => None,
        })
    }

    /// Whether a caller with `clearance` would have anything withheld.
    pub fn applies_to(&self, clearance: Classification) -> bool {
        self.highest > clearance
    }

    /// Removes from `value` every field above `clearance`; returns the pointer templates of the withheld fields
    /// (each once, in the order of the schema's property names).
    pub fn apply(&self, value: &mut Value, clearance: Classification) -> Vec<String> {
        let mut withheld = Vec::new();
        let mut pointer = String::new();
        apply(&self.root, value, clearance, &mut pointer, &mut withheld);
        withheld
    }

    /// Every marked field as `(pointer template, classification)`, for `policy explain` and discovery.
    pub fn marked_fields(&self) -> Vec<(String, Classification)> {
        let mut out = Vec::new();
        list(&self.root, &mut String::new(), &mut out);
        out
    }
}

fn apply(shape: &Shape, value: &mut Value, clearance: Classification, pointer: &mut String, out: &mut Vec<String>) {
    match (shape, value) {
        (Shape::Object(fields), Value::Object(map)) => {
            for field in fields.iter() {
                let mark = pointer.len();
                push_segment(pointer, &field.name);
                if field.classification.is_some_and(|c| c > clearance) {
                    if map.remove(&*field.name).is_some() && !out.iter().any(|p| p == pointer) {
                        out.push(pointer.clone());
                    }
                } else if let (Some(inner), Some(child)) = (&field.inner, map.get_mut(&*field.name)) {
                    apply(inner, child, clearance, pointer, out);
                }
                pointer.truncate(mark);
            }
        }
        (Shape::Array(items), Value::Array(elements)) => {
            let mark = pointer.len();
            pointer.push_str("/*");
            for element in elements.iter_mut() {
                apply(items, element, clearance, pointer, out);
            }
            pointer.truncate(mark);
        }
        _ => {} // the value does not have the schema's shape here: nothing marked can be inside
    }
}

fn list(shape: &Shape, pointer: &mut String, out: &mut Vec<(String, Classification)>) {
    match shape {
        Shape::Object(fields) => {
            for field in fields.iter() {
                let mark = pointer.len();
                push_segment(pointer, &field.name);
                if let Some(c) = field.classification {
                    out.push((pointer.clone(), c));
                }
                if let Some(inner) = &field.inner {
                    list(inner, pointer, out);
                }
                pointer.truncate(mark);
            }
        }
        Shape::Array(items) => {
            let mark = pointer.len();
            pointer.push_str("/*");
            list(items, pointer, out);
            pointer.truncate(mark);
        }
    }
}

/// Appends `/name` with RFC 6901 escaping.
fn push_segment(pointer: &mut String, name: &str) {
    pointer.push('/');
    for c in name.chars() {
        match c {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            c => pointer.push(c),
        }
    }
}

/// The marked structure of `schema` (a node inside `root`), or `None` when nothing below it is marked.
fn shape_of(
    root: &Value,
    schema: &Value,
    depth: usize,
    highest: &mut Option<Classification>,
) -> Result<Option<Shape>, String> {
    if depth > MAX_DEPTH {
        return Err("`$ref` nesting is too deep (a cycle?)".into());
    }
    let mut parts = Vec::new();
    subschemas(root, schema, depth, &mut parts)?;
    let mut fields: Vec<Field> = Vec::new();
    let mut items: Option<Shape> = None;
    for sub in parts {
        let Value::Object(sub_node) = sub else { continue };
        if let Some(Value::Object(properties)) = sub_node.get("properties") {
            for (name, property) in properties {
                let classification = classification_of(property, root, depth)?;
                if let Some(c) = classification {
                    *highest = Some(highest.map_or(c, |h| h.max(c)));
                }
                let inner = shape_of(root, property, depth + 1, highest)?;
                if classification.is_none() && inner.is_none() {
                    continue;
                }
                match fields.iter_mut().find(|f| *f.name == **name) {
                    Some(existing) => {
                        existing.classification = existing.classification.max(classification);
                        if existing.inner.is_none() {
                            existing.inner = inner;
                        }
                    }
                    None => fields.push(Field { name: name.as_str().into(), classification, inner }),
                }
            }
        }
        if let Some(item_schema) = sub_node.get("items") {
            if items.is_none() {
                items = shape_of(root, item_schema, depth + 1, highest)?;
            }
        }
    }
    Ok(match (fields.is_empty(), items) {
        (false, _) => Some(Shape::Object(fields.into_boxed_slice())),
        (true, Some(items)) => Some(Shape::Array(Box::new(items))),
        (true, None) => None,
    })
}

/// `schema` itself plus what it pulls in through a local `$ref` and `allOf`/`anyOf`/`oneOf`, recursively.
fn subschemas<'a>(root: &'a Value, schema: &'a Value, depth: usize, out: &mut Vec<&'a Value>) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err("`$ref` nesting is too deep (a cycle?)".into());
    }
    let Value::Object(node) = schema else { return Ok(()) };
    out.push(schema);
    if let Some(Value::String(reference)) = node.get("$ref") {
        subschemas(root, resolve(root, reference)?, depth + 1, out)?;
    }
    for keyword in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(list)) = node.get(keyword) {
            for sub in list {
                subschemas(root, sub, depth + 1, out)?;
            }
        }
    }
    Ok(())
}

fn classification_of(property: &Value, root: &Value, depth: usize) -> Result<Option<Classification>, String> {
    let Value::Object(node) = property else { return Ok(None) };
    let own = match node.get(KEYWORD) {
        None => None,
        Some(Value::String(name)) => Some(Classification::parse(name).ok_or_else(|| {
            format!("`{KEYWORD}: {name}` is not a classification (terbuka, terbatas, rahasia, sangat_rahasia)")
        })?),
        Some(other) => return Err(format!("`{KEYWORD}` must be a string, not {other}")),
    };
    // A `$ref`'d definition may carry the mark itself.
    let referenced = match node.get("$ref") {
        Some(Value::String(reference)) if depth < MAX_DEPTH => {
            classification_of(resolve(root, reference)?, root, depth + 1)?
        }
        _ => None,
    };
    Ok(own.max(referenced))
}

/// Resolves a local `$ref` (`#/$defs/penduduk`). A reference type (`/ref/nik.schema.json`) is a scalar without
/// marks and resolves to an empty schema. Anything else is refused: a mark behind another file would otherwise go
/// unseen (put such definitions under `$defs`).
fn resolve<'a>(root: &'a Value, reference: &str) -> Result<&'a Value, String> {
    static SCALAR: Value = Value::Bool(true);
    if reference.starts_with("/ref/") || reference.starts_with("https://schemas.penghubung.local/ref/") {
        return Ok(&SCALAR);
    }
    let pointer = reference.strip_prefix('#').ok_or_else(|| {
        format!(
            "`$ref: {reference}` is not local: a schema with `{KEYWORD}` marks may refer only to its own `$defs` \
             (`#/...`) and to the reference types (`/ref/...`)"
        )
    })?;
    root.pointer(pointer).ok_or_else(|| format!("`$ref: {reference}` does not resolve inside the schema"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use Classification::*;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "nik": { "type": "string", "x-klasifikasi": "rahasia" },
                "nama": { "type": "string" },
                "alamat": {
                    "type": "object",
                    "properties": {
                        "kecamatan": { "type": "string" },
                        "rt_rw": { "type": "string", "x-klasifikasi": "terbatas" }
                    }
                },
                "keluarga": { "type": "array", "items": { "$ref": "#/$defs/anggota" } },
                "riwayat": { "allOf": [ { "properties": { "diagnosis": { "x-klasifikasi": "sangat_rahasia" } } } ] }
            },
            "$defs": {
                "anggota": {
                    "type": "object",
                    "properties": {
                        "nama": { "type": "string" },
                        "nik": { "type": "string", "x-klasifikasi": "rahasia" }
                    }
                }
            }
        })
    }

    fn sample() -> Value {
        json!({
            "nik": "1807010101900001",
            "nama": "Siti",
            "alamat": { "kecamatan": "Sukadana", "rt_rw": "001/002" },
            "keluarga": [ { "nama": "Budi", "nik": "1807010101900002" }, { "nama": "Ani", "nik": "1807010101900003" } ],
            "riwayat": { "diagnosis": "F20", "tahun": 2024 }
        })
    }

    #[test]
    fn withholds_fields_above_clearance_at_any_depth() {
        let plan = RedactionPlan::compile(&schema()).unwrap().unwrap();
        assert_eq!(plan.highest, SangatRahasia);
        let mut value = sample();
        let withheld = plan.apply(&mut value, Terbuka);
        assert_eq!(withheld, vec!["/alamat/rt_rw", "/keluarga/*/nik", "/nik", "/riwayat/diagnosis"]);
        assert_eq!(
            value,
            json!({
                "nama": "Siti",
                "alamat": { "kecamatan": "Sukadana" },
                "keluarga": [ { "nama": "Budi" }, { "nama": "Ani" } ],
                "riwayat": { "tahun": 2024 }
            })
        );
    }

    #[test]
    fn clearance_keeps_what_it_covers() {
        let plan = RedactionPlan::compile(&schema()).unwrap().unwrap();
        let mut value = sample();
        assert_eq!(plan.apply(&mut value, Rahasia), vec!["/riwayat/diagnosis"]);
        assert_eq!(value["keluarga"][1]["nik"], "1807010101900003");
        assert!(!plan.applies_to(SangatRahasia));
        assert!(plan.applies_to(Rahasia));
        let mut untouched = sample();
        assert!(plan.apply(&mut untouched, SangatRahasia).is_empty());
        assert_eq!(untouched, sample());
    }

    #[test]
    fn values_of_another_shape_are_left_alone() {
        let plan = RedactionPlan::compile(&schema()).unwrap().unwrap();
        let mut value = json!(["not", "an", "object"]);
        assert!(plan.apply(&mut value, Terbuka).is_empty());
        let mut value = json!({ "keluarga": "none", "alamat": null });
        assert!(plan.apply(&mut value, Terbuka).is_empty());
    }

    #[test]
    fn unmarked_schema_has_no_plan_and_bad_marks_are_errors() {
        assert_eq!(RedactionPlan::compile(&json!({ "properties": { "a": { "type": "string" } } })).unwrap(), None);
        let bad = json!({ "properties": { "a": { "x-klasifikasi": "top-secret" } } });
        assert!(RedactionPlan::compile(&bad).unwrap_err().contains("top-secret"));
        let remote = json!({ "properties": { "a": { "$ref": "https://example.org/s.json" } } });
        assert!(RedactionPlan::compile(&remote).unwrap_err().contains("not local"));
        let cycle =
            json!({ "$defs": { "a": { "$ref": "#/$defs/a" } }, "properties": { "x": { "$ref": "#/$defs/a" } } });
        assert!(RedactionPlan::compile(&cycle).is_err());
    }

    #[test]
    fn pointers_are_escaped() {
        let plan = RedactionPlan::compile(&json!({ "properties": { "a/b~c": { "x-klasifikasi": "rahasia" } } }))
            .unwrap()
            .unwrap();
        let mut value = json!({ "a/b~c": 1 });
        assert_eq!(plan.apply(&mut value, Terbatas), vec!["/a~1b~0c"]);
    }
}

//! Single-pass validation: a body is validated while it is parsed, without building a `serde_json::Value`.
//!
//! Building, walking and dropping the document tree costs more than the schema checks themselves (most of a
//! contract's cost on the data plane), so the schemas most contracts use — `type`, `properties`, `required`,
//! `additionalProperties`, `items`, `enum`/`const`, string lengths, `pattern`, the reference formats and `date`,
//! numeric bounds, `$ref` to local schemas and `allOf` — are also compiled into a [`SinglePass`] validator that
//! checks each value as the parser meets it, skipping unconstrained subtrees unparsed and stopping at the first
//! violation.
//!
//! It only ever answers "valid" or "not known to be valid": anything else (malformed JSON, a violation, a value it
//! cannot judge exactly) sends the body down the full path (`jsonschema`), which decides and names the
//! violations. So a `SinglePass` must never accept what the full validator refuses; it may refuse more (that
//! costs time, never correctness). A schema using a keyword outside the subset (`anyOf`, `oneOf`, `not`, `if`,
//! `patternProperties`, `unevaluatedProperties`, `multipleOf`, formats other than ours and `date`, ...) gets no
//! `SinglePass` at all ([`Unsupported`]) and is validated only by the full path, exactly as before.
//!
//! Where the two could differ in detail, this side is the stricter one: patterns are compiled exactly as
//! `jsonschema` compiles them (the same `regex` crate, the same rewriting of `\d` and `\w`), numbers beyond 2^53
//! and enum members that are numbers of another representation are left to the full path, and `date` accepts only
//! ASCII digits.

use std::collections::{HashMap, HashSet};
use std::fmt;

use regex::Regex;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::compile::{FormatCheck, BASE};
use super::formats::{is_date, IMPLIED_PATTERNS};
use super::json::{KeyText, Keys, Skip, Walk};

/// Why a schema has no single-pass validator; it is then validated by the full path only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported(pub String);

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn unsupported<T>(why: impl Into<String>) -> Result<T, Unsupported> {
    Err(Unsupported(why.into()))
}

/// A schema compiled for validation while parsing. See the module documentation.
#[derive(Debug)]
pub struct SinglePass {
    nodes: Vec<Node>,
    root: usize,
}

impl SinglePass {
    /// Compiles the schema at `root_uri`; `resources` holds every schema a `$ref` may reach, by URI (the root
    /// among them). `formats` are the custom formats the full validator registers.
    pub fn compile(
        root_uri: &str,
        resources: &HashMap<String, &Value>,
        formats: &[(&'static str, FormatCheck)],
    ) -> Result<SinglePass, Unsupported> {
        let mut build = Build { resources: Resources::new(resources), formats, ids: HashMap::new(), nodes: vec![] };
        let root_uri = build.resources.canonical(root_uri)?;
        let root = build.node_for(&root_uri, "");
        let mut next = 0;
        while next < build.nodes.len() {
            let (uri, pointer) = match &build.nodes[next] {
                Slot::Pending { uri, pointer } => (uri.clone(), pointer.clone()),
                Slot::Built(_) => unreachable!("nodes are built in order"),
            };
            let node = build.build_node(&uri, &pointer)?;
            build.nodes[next] = Slot::Built(node);
            next += 1;
        }
        let nodes = build
            .nodes
            .into_iter()
            .map(|slot| match slot {
                Slot::Built(node) => node,
                Slot::Pending { .. } => unreachable!("every node is built"),
            })
            .collect();
        Ok(SinglePass { nodes, root })
    }

    /// Whether `body` is one JSON document that satisfies the schema. `false` means "not known to be valid": the
    /// full validator decides.
    /// The body is read by the rules of [`super::json`] (no duplicate keys, nesting within `max_depth`, exact
    /// numbers), constrained parts and skipped ones alike.
    pub fn accepts(&self, body: &[u8], max_depth: usize) -> bool {
        let mut parser = serde_json::Deserializer::from_slice(body);
        parser.disable_recursion_limit();
        let mut walk = Walk::new(body, max_depth);
        Check { pass: self, node: self.root, walk: &mut walk }.deserialize(&mut parser).is_ok() && parser.end().is_ok()
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The compiled form

const NULL: u8 = 1;
const BOOLEAN: u8 = 2;
const STRING: u8 = 4;
const OBJECT: u8 = 8;
const ARRAY: u8 = 16;
/// Numbers with a fractional part.
const FRACTIONAL: u8 = 32;
/// Numbers without one (`1`, `1.0`, `-3`).
const INTEGRAL: u8 = 64;
const ANY_TYPE: u8 = 127;

/// Every keyword that applied to one schema location, through its `$ref`s and `allOf`s (a conjunction).
#[derive(Debug)]
struct Node {
    /// The JSON types allowed (bits above); 0 for the `false` schema.
    types: u8,
    /// Each list must contain the instance (`enum`; `const` is a list of one).
    enums: Vec<Vec<Scalar>>,
    min_length: Option<u64>,
    max_length: Option<u64>,
    patterns: Vec<Regex>,
    /// By name (for [`IMPLIED_PATTERNS`]).
    formats: Vec<(&'static str, FormatCheck)>,
    bounds: Vec<Bound>,
    object: Option<ObjectShape>,
    min_items: Option<u64>,
    max_items: Option<u64>,
    items: Option<usize>,
}

/// An `enum` member. Objects and arrays never match here (the full path compares them).
#[derive(Debug, PartialEq)]
enum Scalar {
    Null,
    Bool(bool),
    Str(Box<str>),
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    Composite,
}

#[derive(Debug, Clone, Copy)]
enum Bound {
    Minimum(f64),
    Maximum(f64),
    ExclusiveMinimum(f64),
    ExclusiveMaximum(f64),
}

#[derive(Debug)]
struct ObjectShape {
    /// Names in `properties` or `required`, sorted by name.
    names: Vec<Name>,
    /// The bits of the required names.
    required: u64,
    additional: Additional,
}

#[derive(Debug)]
struct Name {
    name: Box<str>,
    /// Its `properties` schema; `None`: only required, its value is an additional property.
    schema: Option<usize>,
    /// Its bit in `required`, or 0.
    bit: u64,
}

#[derive(Debug, Clone, Copy)]
enum Additional {
    Any,
    Never,
    Schema(usize),
}

impl Node {
    fn new() -> Node {
        Node {
            types: ANY_TYPE,
            enums: vec![],
            min_length: None,
            max_length: None,
            patterns: vec![],
            formats: vec![],
            bounds: vec![],
            object: None,
            min_items: None,
            max_items: None,
            items: None,
        }
    }

    fn accepts_str(&self, s: &str) -> bool {
        if self.types & STRING == 0 {
            return false;
        }
        if !self.enums.iter().all(|members| members.iter().any(|m| matches!(m, Scalar::Str(x) if **x == *s))) {
            return false;
        }
        if self.min_length.is_some() || self.max_length.is_some() {
            let chars = s.chars().count() as u64;
            if self.min_length.is_some_and(|min| chars < min) || self.max_length.is_some_and(|max| chars > max) {
                return false;
            }
        }
        self.patterns.iter().all(|p| p.is_match(s)) && self.formats.iter().all(|(_, check)| check(s))
    }

    fn accepts_number(&self, number: Number) -> bool {
        let kind = match number {
            Number::Float(f) if f.fract() != 0.0 => FRACTIONAL,
            _ => INTEGRAL,
        };
        if self.types & kind == 0 {
            return false;
        }
        if !self.enums.iter().all(|members| members.iter().any(|m| number.is(m))) {
            return false;
        }
        if self.bounds.is_empty() {
            return true;
        }
        // Integers are exact in f64 up to 2^53; beyond that the full path compares exactly.
        const EXACT: u64 = 1 << 53;
        let value = match number {
            Number::Unsigned(u) if u <= EXACT => u as f64,
            Number::Signed(i) if i.unsigned_abs() <= EXACT => i as f64,
            Number::Float(f) => f,
            Number::Unsigned(_) | Number::Signed(_) => return false,
        };
        self.bounds.iter().all(|bound| match *bound {
            Bound::Minimum(m) => value >= m,
            Bound::Maximum(m) => value <= m,
            Bound::ExclusiveMinimum(m) => value > m,
            Bound::ExclusiveMaximum(m) => value < m,
        })
    }

    fn accepts_scalar(&self, kind: u8, member: Scalar) -> bool {
        self.types & kind != 0 && self.enums.iter().all(|members| members.contains(&member))
    }
}

#[derive(Debug, Clone, Copy)]
enum Number {
    Unsigned(u64),
    Signed(i64),
    Float(f64),
}

impl Number {
    /// Equal to an enum member of the same representation (`1` and `1.0` are left to the full path).
    fn is(self, member: &Scalar) -> bool {
        match (self, member) {
            (Number::Unsigned(a), Scalar::Unsigned(b)) => a == *b,
            (Number::Signed(a), Scalar::Signed(b)) => a == *b,
            (Number::Float(a), Scalar::Float(b)) => a == *b,
            _ => false,
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Validation while parsing

/// Validates the next value against one node; an error (any) means "not known to be valid".
struct Check<'a, 'w, 'b> {
    pass: &'a SinglePass,
    node: usize,
    walk: &'w mut Walk<'b>,
}

fn refuse<E: de::Error>() -> E {
    E::custom("")
}

impl<'de> DeserializeSeed<'de> for Check<'_, '_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Check<'_, '_, '_> {
    fn node(&self) -> &Node {
        &self.pass.nodes[self.node]
    }

    fn verdict<E: de::Error>(ok: bool) -> Result<(), E> {
        if ok {
            Ok(())
        } else {
            Err(refuse())
        }
    }
}

impl<'de> Visitor<'de> for Check<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Self::verdict(self.node().accepts_scalar(NULL, Scalar::Null))
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<(), E> {
        Self::verdict(self.node().accepts_scalar(BOOLEAN, Scalar::Bool(b)))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<(), E> {
        self.walk.integer();
        Self::verdict(self.node().accepts_number(Number::Unsigned(n)))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<(), E> {
        self.walk.integer();
        Self::verdict(self.node().accepts_number(Number::Signed(n)))
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<(), E> {
        self.walk.float(n)?;
        Self::verdict(self.node().accepts_number(Number::Float(n)))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
        Self::verdict(self.node().accepts_str(s))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Check { pass, node, walk } = self;
        let node = &pass.nodes[node];
        if node.types & OBJECT == 0 || !node.enums.is_empty() {
            return Err(refuse());
        }
        let Some(shape) = &node.object else {
            return Skip { walk }.visit_map(map);
        };
        walk.enter()?;
        let mut keys = Keys::default();
        let mut seen = 0u64;
        while let Some((found, key)) = map.next_key_seed(Key(shape))? {
            if !keys.insert(key) {
                return Err(refuse());
            }
            let schema = match found {
                Some(name) => {
                    seen |= name.bit;
                    name.schema.map_or(shape.additional, Additional::Schema)
                }
                None => shape.additional,
            };
            match schema {
                Additional::Any => map.next_value_seed(Skip { walk: &mut *walk })?,
                Additional::Never => return Err(refuse()),
                Additional::Schema(node) => map.next_value_seed(Check { pass, node, walk: &mut *walk })?,
            }
        }
        walk.leave();
        Self::verdict(seen & shape.required == shape.required)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Check { pass, node, walk } = self;
        let node = &pass.nodes[node];
        if node.types & ARRAY == 0 || !node.enums.is_empty() {
            return Err(refuse());
        }
        walk.enter()?;
        let mut count = 0u64;
        match node.items {
            Some(items) => {
                while seq.next_element_seed(Check { pass, node: items, walk: &mut *walk })?.is_some() {
                    count += 1;
                }
            }
            None => {
                while seq.next_element_seed(Skip { walk: &mut *walk })?.is_some() {
                    count += 1;
                }
            }
        }
        walk.leave();
        Self::verdict(node.min_items.is_none_or(|min| count >= min) && node.max_items.is_none_or(|max| count <= max))
    }
}

/// Finds an object's key among the names of its shape (`None`: an additional property), and keeps its text to
/// tell duplicates.
struct Key<'a>(&'a ObjectShape);

impl<'de, 'a> DeserializeSeed<'de> for Key<'a> {
    type Value = (Option<&'a Name>, std::borrow::Cow<'de, str>);

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        let key = KeyText.deserialize(deserializer)?;
        let names = &self.0.names;
        // Most objects have a few names: a scan that compares lengths first beats a binary search of `memcmp`s.
        let found = if names.len() <= 16 {
            names.iter().find(|n| n.name.len() == key.len() && *n.name == *key)
        } else {
            names.binary_search_by(|n| (*n.name).cmp(&key)).ok().map(|i| &names[i])
        };
        Ok((found, key))
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Compiling

/// The schemas a `$ref` may reach, by URI. A resource whose root `$id` names another absolute URI is reachable
/// under both; relative references inside it resolve against its canonical URI (its `$id` when it has one).
struct Resources<'r> {
    by_uri: HashMap<String, (String, &'r Value)>,
}

impl<'r> Resources<'r> {
    /// A resource whose `$id` is not an absolute URI under [`BASE`] is left out: a `$ref` to it (or compiling
    /// it) is then [`Unsupported`], and only those schemas are left to the full validator.
    fn new(resources: &HashMap<String, &'r Value>) -> Resources<'r> {
        let mut by_uri = HashMap::new();
        for (uri, value) in resources {
            let canonical = match value.get("$id") {
                None => uri.clone(),
                // `…/x.json` or `…/x.json#` (an empty fragment); never a fragment of another resource
                Some(Value::String(id)) if id.starts_with(BASE) && !id.trim_end_matches('#').contains('#') => {
                    id.trim_end_matches('#').to_string()
                }
                Some(_) => continue,
            };
            by_uri.insert(uri.clone(), (canonical.clone(), *value));
            by_uri.insert(canonical.clone(), (canonical, *value));
        }
        Resources { by_uri }
    }

    fn entry(&self, uri: &str) -> Result<&(String, &'r Value), Unsupported> {
        self.by_uri.get(uri).ok_or_else(|| Unsupported(format!("`{uri}` is not a known schema")))
    }

    fn canonical(&self, uri: &str) -> Result<String, Unsupported> {
        Ok(self.entry(uri)?.0.clone())
    }

    fn get(&self, uri: &str, pointer: &str) -> Result<&'r Value, Unsupported> {
        let root = self.entry(uri)?.1;
        root.pointer(pointer).ok_or_else(|| Unsupported(format!("`{uri}#{pointer}` does not exist")))
    }

    /// `$ref` `reference` met in the resource `base` → (canonical URI, JSON pointer).
    fn resolve(&self, base: &str, reference: &str) -> Result<(String, String), Unsupported> {
        let (target, fragment) = reference.split_once('#').unwrap_or((reference, ""));
        let uri = if target.is_empty() {
            base.to_string()
        } else if target.contains(':') {
            target.to_string()
        } else if target.starts_with('/') {
            format!("{}{target}", BASE.trim_end_matches('/'))
        } else {
            let directory = &base[..base.rfind('/').map_or(0, |i| i + 1)];
            normalize(&format!("{directory}{target}"))
        };
        let pointer = if fragment.is_empty() {
            String::new()
        } else if fragment.starts_with('/') {
            percent_encoding::percent_decode_str(fragment).decode_utf8().map_err(|e| Unsupported(e.to_string()))?.into()
        } else {
            return unsupported(format!("`$ref` to the anchor `#{fragment}`"));
        };
        Ok((self.canonical(&uri)?, pointer))
    }
}

/// Removes `.` and `..` segments from the path of an absolute URI.
fn normalize(uri: &str) -> String {
    let Some(path_start) = uri.find("://").and_then(|i| uri[i + 3..].find('/').map(|j| i + 3 + j)) else {
        return uri.to_string();
    };
    let mut segments: Vec<&str> = vec![];
    for segment in uri[path_start + 1..].split('/') {
        match segment {
            "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    format!("{}/{}", &uri[..path_start], segments.join("/"))
}

enum Slot {
    Pending { uri: String, pointer: String },
    Built(Node),
}

struct Build<'r, 'f> {
    resources: Resources<'r>,
    formats: &'f [(&'static str, FormatCheck)],
    ids: HashMap<(String, String), usize>,
    nodes: Vec<Slot>,
}

/// What the keywords of one location (and what it refers to) say about objects, before child nodes are assigned.
#[derive(Default)]
struct ObjectKeywords {
    /// Name → (URI, pointer) of its schema.
    properties: Option<Vec<(String, (String, String))>>,
    /// The schema location (URI, pointer) of `properties`.
    properties_at: Option<(String, String)>,
    required: Vec<String>,
    additional: Option<AdditionalAt>,
    /// The schema location of `additionalProperties`: it sees only the `properties` beside it, never those of an
    /// `allOf` branch or a `$ref` target merged into the same node.
    additional_at: Option<(String, String)>,
}

enum AdditionalAt {
    Bool(bool),
    At(String, String),
}

/// Annotations and keywords that assert nothing here.
const IGNORED: &[&str] = &[
    "$defs",
    "definitions",
    "$comment",
    "$anchor",
    "$dynamicAnchor",
    "$vocabulary",
    "title",
    "description",
    "default",
    "examples",
    "example",
    "deprecated",
    "readOnly",
    "writeOnly",
    "contentMediaType",
    "contentEncoding",
    "contentSchema",
];

/// Keywords of JSON Schema (any draft) that assert something the single pass does not check.
const NOT_HERE: &[&str] = &[
    "anyOf",
    "oneOf",
    "not",
    "if",
    "then",
    "else",
    "patternProperties",
    "propertyNames",
    "minProperties",
    "maxProperties",
    "dependentRequired",
    "dependentSchemas",
    "dependencies",
    "unevaluatedProperties",
    "unevaluatedItems",
    "prefixItems",
    "additionalItems",
    "contains",
    "minContains",
    "maxContains",
    "multipleOf",
    "$dynamicRef",
    "$recursiveRef",
    "$recursiveAnchor",
];

/// The formats `jsonschema` knows itself; of those, only `date` is checked here.
const STANDARD_FORMATS: &[&str] = &[
    "date-time",
    "duration",
    "email",
    "hostname",
    "idn-email",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "iri",
    "iri-reference",
    "json-pointer",
    "regex",
    "relative-json-pointer",
    "time",
    "uri",
    "uri-reference",
    "uri-template",
    "uuid",
];

impl Build<'_, '_> {
    fn node_for(&mut self, uri: &str, pointer: &str) -> usize {
        let key = (uri.to_string(), pointer.to_string());
        if let Some(id) = self.ids.get(&key) {
            return *id;
        }
        let id = self.nodes.len();
        self.nodes.push(Slot::Pending { uri: key.0.clone(), pointer: key.1.clone() });
        self.ids.insert(key, id);
        id
    }

    fn build_node(&mut self, uri: &str, pointer: &str) -> Result<Node, Unsupported> {
        let mut node = Node::new();
        let mut object = None;
        let mut visiting = HashSet::new();
        self.flatten(uri, pointer, &mut node, &mut object, &mut visiting)?;
        // A pattern the node's format already implies costs a regex search and decides nothing.
        node.patterns.retain(|pattern| {
            !IMPLIED_PATTERNS.iter().any(|(format, implied)| {
                pattern.as_str() == *implied && node.formats.iter().any(|(name, _)| name == format)
            })
        });
        if let Some(keywords) = object {
            node.object = Some(self.object_shape(keywords)?);
        }
        Ok(node)
    }

    fn object_shape(&mut self, keywords: ObjectKeywords) -> Result<ObjectShape, Unsupported> {
        let restricts = !matches!(keywords.additional, None | Some(AdditionalAt::Bool(true)));
        if restricts && keywords.properties.is_some() && keywords.properties_at != keywords.additional_at {
            let (uri, pointer) = keywords.additional_at.unwrap_or_default();
            return unsupported(format!(
                "`additionalProperties` at `{uri}#{pointer}` and `properties` in another subschema of the same node"
            ));
        }
        let mut names: Vec<Name> = vec![];
        for (name, (uri, pointer)) in keywords.properties.unwrap_or_default() {
            let schema = Some(self.node_for(&uri, &pointer));
            names.push(Name { name: name.into(), schema, bit: 0 });
        }
        names.sort_by(|a, b| a.name.cmp(&b.name));
        names.dedup_by(|a, b| a.name == b.name);
        let mut required = 0u64;
        let mut bits = 0u32;
        for name in keywords.required {
            let index = match names.binary_search_by(|n| (*n.name).cmp(&name)) {
                Ok(i) => i,
                Err(i) => {
                    names.insert(i, Name { name: name.into(), schema: None, bit: 0 });
                    i
                }
            };
            if names[index].bit == 0 {
                if bits == 64 {
                    return unsupported("more than 64 required properties");
                }
                names[index].bit = 1 << bits;
                required |= names[index].bit;
                bits += 1;
            }
        }
        let additional = match keywords.additional {
            None | Some(AdditionalAt::Bool(true)) => Additional::Any,
            Some(AdditionalAt::Bool(false)) => Additional::Never,
            Some(AdditionalAt::At(uri, pointer)) => Additional::Schema(self.node_for(&uri, &pointer)),
        };
        Ok(ObjectShape { names, required, additional })
    }

    /// Adds the keywords at `uri#pointer` (and, through `$ref` and `allOf`, those it refers to) to `node`.
    fn flatten(
        &mut self,
        uri: &str,
        pointer: &str,
        node: &mut Node,
        object: &mut Option<ObjectKeywords>,
        visiting: &mut HashSet<(String, String)>,
    ) -> Result<(), Unsupported> {
        if !visiting.insert((uri.to_string(), pointer.to_string())) {
            return unsupported(format!("`$ref` cycle through `{uri}#{pointer}`"));
        }
        let schema = self.resources.get(uri, pointer)?;
        let map = match schema {
            Value::Bool(true) => return Ok(()),
            Value::Bool(false) => {
                node.types = 0;
                return Ok(());
            }
            Value::Object(map) => map,
            other => return unsupported(format!("`{uri}#{pointer}` is {other}, not a schema")),
        };
        let at = |keyword: &str| format!("{pointer}/{}", escape(keyword));
        for (keyword, value) in map {
            match keyword.as_str() {
                k if IGNORED.contains(&k) => {}
                k if NOT_HERE.contains(&k) => return unsupported(format!("`{k}` at `{uri}#{pointer}`")),
                "$schema" | "uniqueItems" | "$id" => check_accepted(keyword, value, uri, pointer)?,
                "$ref" => {
                    let reference = value.as_str().ok_or_else(|| Unsupported(format!("`$ref` {value}")))?;
                    let (target, target_pointer) = self.resources.resolve(uri, reference)?;
                    self.flatten(&target, &target_pointer, node, object, visiting)?;
                }
                "allOf" => {
                    let parts = value.as_array().ok_or_else(|| Unsupported(format!("`allOf` {value}")))?;
                    for i in 0..parts.len() {
                        self.flatten(uri, &format!("{}/{i}", at("allOf")), node, object, visiting)?;
                    }
                }
                "type" => node.types &= types_of(value)?,
                "enum" => {
                    let members = value.as_array().ok_or_else(|| Unsupported(format!("`enum` {value}")))?;
                    node.enums.push(members.iter().map(scalar).collect());
                }
                "const" => node.enums.push(vec![scalar(value)]),
                "minLength" => node.min_length = Some(count(value)?.max(node.min_length.unwrap_or(0))),
                "maxLength" => node.max_length = Some(count(value)?.min(node.max_length.unwrap_or(u64::MAX))),
                "minItems" => node.min_items = Some(count(value)?.max(node.min_items.unwrap_or(0))),
                "maxItems" => node.max_items = Some(count(value)?.min(node.max_items.unwrap_or(u64::MAX))),
                "pattern" => node.patterns.push(pattern(value)?),
                "format" => self.add_format(value, node)?,
                "minimum" => node.bounds.push(Bound::Minimum(limit(value)?)),
                "maximum" => node.bounds.push(Bound::Maximum(limit(value)?)),
                "exclusiveMinimum" => node.bounds.push(Bound::ExclusiveMinimum(limit(value)?)),
                "exclusiveMaximum" => node.bounds.push(Bound::ExclusiveMaximum(limit(value)?)),
                "items" => self.add_items(value, uri, pointer, node)?,
                "properties" | "required" | "additionalProperties" => add_object_keyword(
                    object.get_or_insert_with(ObjectKeywords::default),
                    keyword,
                    value,
                    uri,
                    pointer,
                )?,
                // Not a keyword of JSON Schema: `jsonschema` ignores it (OpenAPI's `nullable`, `x-...`).
                _ => {}
            }
        }
        visiting.remove(&(uri.to_string(), pointer.to_string()));
        Ok(())
    }

    /// Adds a `format` to `node`: a format the gateway checks, `date`, or nothing for a format neither the
    /// gateway nor `jsonschema` knows; a standard format the gateway does not check is refused.
    fn add_format(&self, value: &Value, node: &mut Node) -> Result<(), Unsupported> {
        let name = value.as_str().ok_or_else(|| Unsupported(format!("`format` {value}")))?;
        if let Some(format) = self.formats.iter().find(|(n, _)| *n == name) {
            node.formats.push(*format);
        } else if name == "date" {
            node.formats.push(("date", is_date));
        } else if STANDARD_FORMATS.contains(&name) {
            return unsupported(format!("`format: {name}`"));
        }
        // A format `jsonschema` does not know is ignored there, and here.
        Ok(())
    }

    /// Sets the `items` schema at `uri#pointer` as `node`'s (one per node).
    fn add_items(&mut self, value: &Value, uri: &str, pointer: &str, node: &mut Node) -> Result<(), Unsupported> {
        if !(value.is_object() || value.is_boolean()) {
            return unsupported("`items` as an array (use `prefixItems`)");
        }
        if node.items.is_some() {
            return unsupported(format!("two `items` schemas meet at `{uri}#{pointer}`"));
        }
        node.items = Some(self.node_for(uri, &format!("{pointer}/{}", escape("items"))));
        Ok(())
    }
}

/// Refuses a `$schema` other than 2020-12, `uniqueItems` other than `false`, and an `$id` below the root.
fn check_accepted(keyword: &str, value: &Value, uri: &str, pointer: &str) -> Result<(), Unsupported> {
    match keyword {
        "$schema" => {
            let draft = value.as_str().unwrap_or("").trim_end_matches('#');
            if draft != "https://json-schema.org/draft/2020-12/schema" {
                return unsupported(format!("`$schema` {value}"));
            }
        }
        "uniqueItems" if *value == Value::Bool(false) => {}
        "uniqueItems" => return unsupported(format!("`uniqueItems: {value}` at `{uri}#{pointer}`")),
        "$id" if pointer.is_empty() => {}
        "$id" => return unsupported(format!("`$id` inside `{uri}`")),
        _ => {}
    }
    Ok(())
}

/// Adds an object keyword (`properties`, `required`, `additionalProperties`) at `uri#pointer` to `keywords`.
fn add_object_keyword(
    keywords: &mut ObjectKeywords,
    keyword: &str,
    value: &Value,
    uri: &str,
    pointer: &str,
) -> Result<(), Unsupported> {
    let at = |keyword: &str| format!("{pointer}/{}", escape(keyword));
    match keyword {
        "properties" => {
            let properties = value.as_object().ok_or_else(|| Unsupported(format!("`properties` {value}")))?;
            if keywords.properties.is_some() {
                return unsupported(format!("two `properties` meet at `{uri}#{pointer}`"));
            }
            let base = at("properties");
            keywords.properties_at = Some((uri.to_string(), pointer.to_string()));
            keywords.properties = Some(
                properties
                    .keys()
                    .map(|name| (name.clone(), (uri.to_string(), format!("{base}/{}", escape(name)))))
                    .collect(),
            );
        }
        "required" => {
            let names = value.as_array().ok_or_else(|| Unsupported(format!("`required` {value}")))?;
            for name in names {
                let name = name.as_str().ok_or_else(|| Unsupported(format!("`required` {value}")))?;
                keywords.required.push(name.to_string());
            }
        }
        "additionalProperties" => {
            if keywords.additional.is_some() {
                return unsupported(format!("two `additionalProperties` meet at `{uri}#{pointer}`"));
            }
            keywords.additional_at = Some((uri.to_string(), pointer.to_string()));
            keywords.additional = Some(match value {
                Value::Bool(b) => AdditionalAt::Bool(*b),
                Value::Object(_) => AdditionalAt::At(uri.to_string(), at("additionalProperties")),
                other => return unsupported(format!("`additionalProperties` {other}")),
            });
        }
        _ => {}
    }
    Ok(())
}

/// A JSON pointer token (`~` → `~0`, `/` → `~1`).
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

fn types_of(value: &Value) -> Result<u8, Unsupported> {
    let one = |name: &Value| match name.as_str() {
        Some("null") => Ok(NULL),
        Some("boolean") => Ok(BOOLEAN),
        Some("string") => Ok(STRING),
        Some("object") => Ok(OBJECT),
        Some("array") => Ok(ARRAY),
        Some("number") => Ok(FRACTIONAL | INTEGRAL),
        Some("integer") => Ok(INTEGRAL),
        _ => unsupported(format!("`type` {name}")),
    };
    match value {
        Value::Array(names) => names.iter().try_fold(0, |types, name| Ok(types | one(name)?)),
        name => one(name),
    }
}

fn scalar(value: &Value) -> Scalar {
    match value {
        Value::Null => Scalar::Null,
        Value::Bool(b) => Scalar::Bool(*b),
        Value::String(s) => Scalar::Str(s.as_str().into()),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Scalar::Unsigned(u),
            (None, Some(i), _) => Scalar::Signed(i),
            (None, None, Some(f)) => Scalar::Float(f),
            _ => Scalar::Composite,
        },
        Value::Array(_) | Value::Object(_) => Scalar::Composite,
    }
}

fn count(value: &Value) -> Result<u64, Unsupported> {
    value.as_u64().ok_or_else(|| Unsupported(format!("a count of {value}")))
}

/// A numeric bound that f64 holds exactly.
fn limit(value: &Value) -> Result<f64, Unsupported> {
    const EXACT: u64 = 1 << 53;
    match value {
        Value::Number(n)
            if n.as_u64().is_some_and(|u| u <= EXACT) || n.as_i64().is_some_and(|i| i.unsigned_abs() <= EXACT) =>
        {
            Ok(n.as_f64().unwrap_or(f64::NAN))
        }
        Value::Number(n) if n.is_f64() => Ok(n.as_f64().unwrap_or(f64::NAN)),
        other => unsupported(format!("a bound of {other}")),
    }
}

/// The pattern compiled as `jsonschema` compiles it with its linear-time engine: ECMA-262 `\d`, `\D`, `\w` and `\W`
/// rewritten to their ASCII classes, and nothing else changed. Any other letter escape (`\s`, `\b`, `\cX`, ...)
/// is left to the full path.
fn pattern(value: &Value) -> Result<Regex, Unsupported> {
    let source = value.as_str().ok_or_else(|| Unsupported(format!("`pattern` {value}")))?;
    let mut rust = String::with_capacity(source.len());
    let mut chars = source.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            rust.push(c);
            continue;
        }
        match chars.next() {
            Some('d') => rust.push_str("[0-9]"),
            Some('D') => rust.push_str("[^0-9]"),
            Some('w') => rust.push_str("[A-Za-z0-9_]"),
            Some('W') => rust.push_str("[^A-Za-z0-9_]"),
            Some(escaped) if escaped.is_ascii_punctuation() => {
                rust.push('\\');
                rust.push(escaped);
            }
            other => return unsupported(format!("the escape `\\{}` in the pattern `{source}`", other.unwrap_or(' '))),
        }
    }
    Regex::new(&rust).map_err(|e| Unsupported(format!("pattern `{source}`: {e}")))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::compile::Compiler;
    use crate::{Schema, FORMATS};

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
        let Err(crate::ContractError::RequestInvalid { violations }) = crate::check::check_request_body(&body, &schema)
        else {
            panic!("refused for its content")
        };
        assert_eq!(violations[0].keyword, "type");
        let too_deep = bytes::Bytes::from(nested(ceiling + 1, ""));
        assert!(matches!(
            crate::check::check_request_body(&too_deep, &schema),
            Err(crate::ContractError::TooDeep { .. })
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
}

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

use crate::formats::{is_date, FormatCheck, BASE, IMPLIED_PATTERNS};
use crate::json::{KeyText, Keys, Skip, Walk};

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
    /// The body is read by the rules of [`crate::json`] (no duplicate keys, nesting within `max_depth`, exact
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
mod tests;

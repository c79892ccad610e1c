//! Reading a JSON body strictly, so that the document a contract validates is the document the upstream gets.
//!
//! JSON parsers disagree on what `{"a": 1, "a": 2}` means (the first member, the last, an error), on how deep a
//! document may nest, and on numbers their native types cannot hold. A gateway that validates one reading and
//! forwards the raw bytes lets a caller send a body the upstream reads differently. So every body under a
//! contract is read by the rules here, whichever validator decides it ([`crate::single_pass`] or the full one):
//!
//! - **duplicate keys** anywhere in the document are refused ([`Refusal::DuplicateKey`], with the pointer of
//!   the object). Keys are compared after unescaping: `"a"` and `"\u0061"` are the same key;
//! - **nesting** deeper than the configured limit (`limits.max_json_depth`, [`DEFAULT_MAX_DEPTH`]) is refused
//!   ([`Refusal::TooDeep`]), wherever it occurs, constrained by the schema or not; reading is never recursive
//!   beyond that limit;
//! - **numbers** are held as 64-bit integers or IEEE doubles, which compare exactly with the schema's numbers
//!   (themselves held the same way), and are parsed correctly rounded (serde_json's `float_roundtrip`), so
//!   `1000.0000000000001` is the double above 1000 and fails `maximum: 1000`. A number written with more precision than its double or integer holds
//!   (`1000.0000000000001`, `18446744073709551617`, `1e-400`) cannot be compared as written, so it is refused
//!   ([`Refusal::NumberPrecision`]) rather than silently rounded. A number is exact when its written decimal
//!   value is the double's shortest round-trip form (`0.1`, `1e308`) or the double's exact binary value written
//!   out (`18446744073709551616`).
//!
//! The raw text of each number is found by a cursor (`Numbers`) that walks the same bytes beside the parser:
//! numbers are visited in document order, and strings (which may hold digits) are skipped by their quotes.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use smallvec::SmallVec;

pub use penghubung_types::config::{DEFAULT_MAX_DEPTH, MAX_DEPTH_CEILING};

/// Why a body is refused before (or instead of) schema validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not JSON (or not one JSON document).
    Syntax { line: usize, column: usize, reason: String },
    /// The object at `pointer` names the same member twice.
    DuplicateKey { pointer: String },
    /// The value at `pointer` nests deeper than `limit`.
    TooDeep { pointer: String, limit: usize },
    /// The number at `pointer` has more precision than can be compared exactly.
    NumberPrecision { pointer: String },
}

impl Refusal {
    /// The JSON pointer the refusal names (empty for the whole document).
    pub fn pointer(&self) -> &str {
        match self {
            Refusal::Syntax { .. } => "",
            Refusal::DuplicateKey { pointer }
            | Refusal::TooDeep { pointer, .. }
            | Refusal::NumberPrecision { pointer } => pointer,
        }
    }

    /// A short name of the rule broken (used as the violation keyword of a response).
    pub fn keyword(&self) -> &'static str {
        match self {
            Refusal::Syntax { .. } => "json",
            Refusal::DuplicateKey { .. } => "duplicate_key",
            Refusal::TooDeep { .. } => "max_json_depth",
            Refusal::NumberPrecision { .. } => "number_precision",
        }
    }
}

/// Parses `body` into a document by the rules of this module.
pub fn parse(body: &[u8], max_depth: usize) -> Result<Value, Refusal> {
    let mut walk = Walk::new(body, max_depth);
    let mut parser = serde_json::Deserializer::from_slice(body);
    parser.disable_recursion_limit();
    let parsed = Build { walk: &mut walk }.deserialize(&mut parser).and_then(|value| parser.end().map(|()| value));
    match parsed {
        Ok(value) => Ok(value),
        Err(e) => Err(walk.refusal.take().unwrap_or_else(|| Refusal::Syntax {
            line: e.line(),
            column: e.column(),
            reason: e.to_string(),
        })),
    }
}

/// What reading carries from value to value: the number cursor, the depth, and the refusal once one is found
/// (the parser's error only says "stop"; the refusal says why, and its pointer grows as the error unwinds).
pub(crate) struct Walk<'b> {
    numbers: Numbers<'b>,
    depth: usize,
    max_depth: usize,
    pub(crate) refusal: Option<Refusal>,
}

impl<'b> Walk<'b> {
    pub(crate) fn new(body: &'b [u8], max_depth: usize) -> Self {
        Walk { numbers: Numbers { bytes: body, at: 0 }, depth: 0, max_depth, refusal: None }
    }

    fn refuse<E: de::Error>(&mut self, refusal: Refusal) -> E {
        self.refusal = Some(refusal);
        E::custom("refused")
    }

    /// One level deeper (an array or an object opens).
    pub(crate) fn enter<E: de::Error>(&mut self) -> Result<(), E> {
        if self.depth >= self.max_depth {
            let limit = self.max_depth;
            return Err(self.refuse(Refusal::TooDeep { pointer: String::new(), limit }));
        }
        self.depth += 1;
        Ok(())
    }

    pub(crate) fn leave(&mut self) {
        self.depth -= 1;
    }

    /// The number just parsed as a double: refused unless its written form is exact.
    pub(crate) fn float<E: de::Error>(&mut self, value: f64) -> Result<(), E> {
        let text = self.numbers.next();
        if is_exact(text, value) {
            Ok(())
        } else {
            Err(self.refuse(Refusal::NumberPrecision { pointer: String::new() }))
        }
    }

    /// The number just parsed as a 64-bit integer (always exact): the cursor moves past it.
    pub(crate) fn integer(&mut self) {
        self.numbers.next();
    }

    pub(crate) fn duplicate<E: de::Error>(&mut self, key: &str) -> E {
        self.refuse(Refusal::DuplicateKey { pointer: format!("/{}", escape(key)) })
    }

    /// An error unwinds out of the member `token` (a key or an index): its pointer gains that token in front.
    pub(crate) fn inside(&mut self, token: &str) {
        if let Some(
            Refusal::DuplicateKey { pointer } | Refusal::TooDeep { pointer, .. } | Refusal::NumberPrecision { pointer },
        ) = &mut self.refusal
        {
            pointer.insert_str(0, &format!("/{}", escape(token)));
        }
    }
}

/// A JSON pointer token (`~` → `~0`, `/` → `~1`).
fn escape(token: &str) -> Cow<'_, str> {
    if token.contains(['~', '/']) {
        Cow::Owned(token.replace('~', "~0").replace('/', "~1"))
    } else {
        Cow::Borrowed(token)
    }
}

/// The keys met so far in one object (a scan while there are few, on the stack; a set beyond).
#[derive(Default)]
pub(crate) struct Keys<'de> {
    few: SmallVec<[Cow<'de, str>; 8]>,
    many: Option<HashSet<Cow<'de, str>>>,
}

impl<'de> Keys<'de> {
    /// `false` when the object already had `key`.
    pub(crate) fn insert(&mut self, key: Cow<'de, str>) -> bool {
        if let Some(many) = &mut self.many {
            return many.insert(key);
        }
        if self.few.contains(&key) {
            return false;
        }
        self.few.push(key);
        if self.few.len() > 16 {
            self.many = Some(self.few.drain(..).collect());
        }
        true
    }
}

/// An object key, borrowed from the body when it has no escapes.
pub(crate) struct KeyText;

impl<'de> DeserializeSeed<'de> for KeyText {
    type Value = Cow<'de, str>;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyText {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E: de::Error>(self, key: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(key))
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(key.to_string()))
    }
}

/// Reads a value without keeping it, by the rules of this module (what the single pass does with the parts of a
/// body its schema does not constrain).
pub(crate) struct Skip<'w, 'b> {
    pub(crate) walk: &'w mut Walk<'b>,
}

impl<'de> DeserializeSeed<'de> for Skip<'_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Skip<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.walk.integer();
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.walk.integer();
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<(), E> {
        self.walk.float(value)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let walk = self.walk;
        walk.enter()?;
        let mut keys = Keys::default();
        while let Some(key) = map.next_key_seed(KeyText)? {
            if let Err(e) = map.next_value_seed(Skip { walk: &mut *walk }) {
                walk.inside(&key);
                return Err(e);
            }
            if !keys.insert(key.clone()) {
                return Err(walk.duplicate(&key));
            }
        }
        walk.leave();
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let walk = self.walk;
        walk.enter()?;
        let mut index = 0usize;
        loop {
            match seq.next_element_seed(Skip { walk: &mut *walk }) {
                Ok(Some(())) => index += 1,
                Ok(None) => break,
                Err(e) => {
                    walk.inside(&index.to_string());
                    return Err(e);
                }
            }
        }
        walk.leave();
        Ok(())
    }
}

/// Builds the document (the full validator's input) by the rules of this module.
struct Build<'w, 'b> {
    walk: &'w mut Walk<'b>,
}

impl<'de> DeserializeSeed<'de> for Build<'_, '_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Build<'_, '_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Value, E> {
        self.walk.integer();
        Ok(Value::from(n))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Value, E> {
        self.walk.integer();
        Ok(Value::from(n))
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Value, E> {
        self.walk.float(n)?;
        Ok(serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_string()))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let walk = self.walk;
        walk.enter()?;
        let mut members = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = match map.next_value_seed(Build { walk: &mut *walk }) {
                Ok(value) => value,
                Err(e) => {
                    walk.inside(&key);
                    return Err(e);
                }
            };
            if members.contains_key(&key) {
                return Err(walk.duplicate(&key));
            }
            members.insert(key, value);
        }
        walk.leave();
        Ok(Value::Object(members))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let walk = self.walk;
        walk.enter()?;
        let mut items = Vec::new();
        loop {
            match seq.next_element_seed(Build { walk: &mut *walk }) {
                Ok(Some(item)) => items.push(item),
                Ok(None) => break,
                Err(e) => {
                    walk.inside(&items.len().to_string());
                    return Err(e);
                }
            }
        }
        walk.leave();
        Ok(Value::Array(items))
    }
}

/// Finds the text of each number of a body, in document order, beside the parser (which has already read the
/// bytes up to the number it reports, so they are valid JSON).
struct Numbers<'b> {
    bytes: &'b [u8],
    at: usize,
}

impl<'b> Numbers<'b> {
    fn next(&mut self) -> &'b str {
        let b = self.bytes;
        let mut i = self.at;
        while i < b.len() {
            match b[i] {
                b'"' => {
                    i += 1;
                    while i < b.len() {
                        match b[i] {
                            b'\\' => i += 2,
                            b'"' => {
                                i += 1;
                                break;
                            }
                            _ => i += 1,
                        }
                    }
                }
                b'-' | b'0'..=b'9' => {
                    let start = i;
                    while i < b.len() && matches!(b[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') {
                        i += 1;
                    }
                    self.at = i;
                    return std::str::from_utf8(&b[start..i]).unwrap_or("");
                }
                _ => i += 1,
            }
        }
        self.at = i;
        ""
    }
}

/// A decimal number as written: `digits × 10^exponent`, without leading or trailing zeros in `digits` (zero
/// has no digits and no sign).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Decimal {
    pub(crate) negative: bool,
    pub(crate) digits: Vec<u8>,
    pub(crate) exponent: i64,
}

impl Decimal {
    /// A JSON number's text (or Rust's `{:e}` / `{:.N}` form of a double).
    pub(crate) fn parse(text: &str) -> Option<Decimal> {
        let (negative, rest) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (mantissa, exponent) = match rest.find(['e', 'E']) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, "0"),
        };
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if whole.is_empty() || !whole.bytes().chain(fraction.bytes()).all(|d| d.is_ascii_digit()) {
            return None;
        }
        let (exponent_negative, exponent_digits) = match exponent.as_bytes().first() {
            Some(b'-') => (true, &exponent[1..]),
            Some(b'+') => (false, &exponent[1..]),
            _ => (false, exponent),
        };
        if exponent_digits.is_empty() || !exponent_digits.bytes().all(|d| d.is_ascii_digit()) {
            return None;
        }
        // saturating: an exponent beyond 10^15 is as far out of range as any other
        let magnitude =
            exponent_digits.bytes().fold(0i64, |n, d| (n * 10 + i64::from(d - b'0')).min(1_000_000_000_000_000));
        let mut exponent = if exponent_negative { -magnitude } else { magnitude };
        let mut digits: Vec<u8> = whole.bytes().chain(fraction.bytes()).skip_while(|d| *d == b'0').collect();
        exponent -= fraction.len() as i64;
        while digits.last() == Some(&b'0') {
            digits.pop();
            exponent += 1;
        }
        if digits.is_empty() {
            return Some(Decimal { negative: false, digits, exponent: 0 });
        }
        Some(Decimal { negative, digits, exponent })
    }
}

/// How many decimal places the exact value of `value` has (0 for integers).
fn exact_places(value: f64) -> usize {
    if value == 0.0 || !value.is_finite() {
        return 0;
    }
    let bits = value.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i64;
    let fraction = bits & ((1 << 52) - 1);
    let (mantissa, exponent) = if biased == 0 { (fraction, -1074) } else { (fraction | 1 << 52, biased - 1075) };
    let exponent = exponent + i64::from(mantissa.trailing_zeros());
    if exponent >= 0 {
        0
    } else {
        usize::try_from(-exponent).unwrap_or(0)
    }
}

/// Whether `text`, which parsed as the double `value`, says exactly what `value` says: its decimal value is the
/// double's shortest round-trip form, or the double's exact value.
pub(crate) fn is_exact(text: &str, value: f64) -> bool {
    let Some(written) = Decimal::parse(text) else { return false };
    // Up to 15 significant digits, a decimal in the normal range is its double's shortest form (DBL_DIG).
    if written.digits.len() <= 15 && value.is_normal() {
        return true;
    }
    if written.digits.is_empty() {
        return value == 0.0;
    }
    if Decimal::parse(&format!("{value:e}")).is_some_and(|shortest| shortest == written) {
        return true;
    }
    let places = exact_places(value);
    let written_places = usize::try_from(-written.exponent).unwrap_or(0);
    written_places == places && Decimal::parse(&format!("{value:.places$}")).is_some_and(|exact| exact == written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn duplicate_keys_are_refused_wherever_they_are_and_however_they_are_spelled() {
        for (body, pointer) in [
            (r#"{"a": 1, "a": 2}"#, "/a"),
            (r#"{"a": 1, "\u0061": 2}"#, "/a"),
            (r#"{"x": {"nik": "1", "nik": "2"}}"#, "/x/nik"),
            (r#"[0, {"b": [], "c": null, "b": {}}]"#, "/1/b"),
            (r#"{"a/b": 1, "a\/b": 1}"#, "/a~1b"),
            (r#"{"é": 1, "\u00e9": 1}"#, "/é"),
        ] {
            assert_eq!(parse(body.as_bytes(), 128), Err(Refusal::DuplicateKey { pointer: pointer.into() }), "{body}");
        }
        let many: String =
            format!("{{{}, \"k7\": 0}}", (0..40).map(|i| format!("\"k{i}\": {i}")).collect::<Vec<_>>().join(", "));
        assert_eq!(parse(many.as_bytes(), 128), Err(Refusal::DuplicateKey { pointer: "/k7".into() }));
        // different keys that look alike are not duplicates
        assert!(parse(r#"{"a": 1, "A": 2, "a ": 3, "\u00e9": 4, "e\u0301": 5}"#.as_bytes(), 128).is_ok());
    }

    #[test]
    fn nesting_is_limited_everywhere_without_recursing_beyond_the_limit() {
        let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert!(parse(nested(128).as_bytes(), 128).is_ok());
        assert!(matches!(parse(nested(129).as_bytes(), 128), Err(Refusal::TooDeep { limit: 128, .. })));
        let deep = format!("{{\"a\": {}}}", nested(100_000));
        let Err(Refusal::TooDeep { pointer, .. }) = parse(deep.as_bytes(), 128) else { panic!() };
        assert!(pointer.starts_with("/a/0/0/"), "{pointer}");
        let objects = format!("{}1{}", "{\"k\":".repeat(200_000), "}".repeat(200_000));
        assert!(matches!(parse(objects.as_bytes(), 128), Err(Refusal::TooDeep { .. })));
        assert!(parse(nested(MAX_DEPTH_CEILING).as_bytes(), MAX_DEPTH_CEILING).is_ok());
        assert!(parse(nested(5).as_bytes(), 4).is_err());
    }

    #[test]
    fn numbers_are_kept_only_when_exact() {
        for exact in [
            "0",
            "-0",
            "0.0",
            "1",
            "1.0",
            "1.5",
            "-2.25",
            "0.1",
            "1e308",
            "1E-7",
            "123456789012345678",
            "1.7976931348623157e308",
            "9007199254740993",
            "18446744073709551615",
            "-9223372036854775808",
            "18446744073709551616",
            "5e-324",
            "0.1000000000000000055511151231257827021181583404541015625",
            "1000.000000000000113686837721616029739379882812500",
            "100e-2",
            "12345678901234567e3",
            "1000.0000000000001",
        ] {
            let value = parse(format!("[{exact}]").as_bytes(), 128);
            assert!(value.is_ok(), "{exact}: {value:?}");
            assert!(parse(format!("{{\"n\": {exact}}}").as_bytes(), 128).is_ok(), "{exact}");
        }
        for inexact in [
            "1000.00000000000001",
            "18446744073709551617",
            "-9223372036854775809",
            "1e-400",
            "0.10000000000000000001",
            "3.14159265358979323846",
            "9007199254740993.0",
            "1.00000000000000000000000000000000000000000000000001e10",
        ] {
            assert_eq!(
                parse(format!("{{\"n\": [1, {inexact}]}}").as_bytes(), 128),
                Err(Refusal::NumberPrecision { pointer: "/n/1".into() }),
                "{inexact}"
            );
        }
        // digits inside strings are not numbers
        assert_eq!(
            parse(br#"{"s": "1000.0000000000001 \" 2", "n": 0.5}"#, 128).unwrap(),
            json!({"s": "1000.0000000000001 \" 2", "n": 0.5})
        );
    }

    #[test]
    fn malformed_json_keeps_its_position() {
        let Err(Refusal::Syntax { line, column, .. }) = parse(b"{\n  \"a\": 1,\n  oops\n}", 128) else { panic!() };
        assert_eq!((line, column), (3, 3));
        for body in [&b""[..], b"{} {}", b"[1,]", b"\xff", b"{\"a\" 1}", b"01", b"1.", b"-"] {
            assert!(matches!(parse(body, 128), Err(Refusal::Syntax { .. })), "{body:?}");
        }
    }
}

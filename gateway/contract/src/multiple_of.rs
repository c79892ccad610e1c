//! `multipleOf` decided on decimals, as the schema and the body write them: `jsonschema` 0.33 refuses every
//! negative instance of a fractional `multipleOf` (`-4.5` is not a multiple of `1.5` there), so the full
//! validator uses this keyword instead of its own. Each number is taken as its decimal value (an integer as it
//! is, a double as its shortest round-trip form, the way both are written), so `0.0075` is a multiple of `0.0001`
//! and `1e308` is not one of `0.123456789`.

use jsonschema::paths::{LazyLocation, Location};
use jsonschema::{Keyword, ValidationError};
use serde_json::{Map, Number, Value};

use crate::json::Decimal;

/// Whether `value` divided by `multiple` (positive) is an integer.
pub fn is_multiple_of(value: &Number, multiple: &Number) -> bool {
    let (Some(value), Some(multiple)) = (decimal_of(value), decimal_of(multiple)) else { return false };
    if value.digits.is_empty() {
        return true;
    }
    let (Some(a), Some(b)) = (integer(&value.digits), integer(&multiple.digits)) else { return false };
    if b == 0 {
        return false;
    }
    // value = a·10^p, multiple = b·10^q, `a` without trailing zeros: a/b·10^(p-q) is an integer only when
    // p >= q and b divides a·10^(p-q).
    let Some(shift) = value.exponent.checked_sub(multiple.exponent).filter(|s| *s >= 0) else { return false };
    let shift = u64::try_from(shift).unwrap_or(u64::MAX);
    (a % b) * pow_mod(10, shift, b) % b == 0
}

fn decimal_of(number: &Number) -> Option<Decimal> {
    let text = match (number.as_u64(), number.as_i64(), number.as_f64()) {
        (Some(u), _, _) => u.to_string(),
        (None, Some(i), _) => i.to_string(),
        (None, None, Some(f)) => format!("{f:e}"),
        _ => return None,
    };
    Decimal::parse(&text)
}

/// At most 20 digits (a 64-bit integer, or a double's 17).
fn integer(digits: &[u8]) -> Option<u128> {
    if digits.len() > 20 {
        return None;
    }
    Some(digits.iter().fold(0u128, |n, d| n * 10 + u128::from(d - b'0')))
}

/// `base^exponent mod modulus` (`modulus` < 2^64, so products fit).
fn pow_mod(base: u128, mut exponent: u64, modulus: u128) -> u128 {
    let mut result = 1 % modulus;
    let mut base = base % modulus;
    while exponent > 0 {
        if exponent & 1 == 1 {
            result = result * base % modulus;
        }
        base = base * base % modulus;
        exponent >>= 1;
    }
    result
}

/// The keyword, registered on every contract validator in place of `jsonschema`'s own.
pub struct MultipleOf {
    multiple: Number,
    location: Location,
}

/// The factory `jsonschema::ValidationOptions::with_keyword` takes (its error type is `jsonschema`'s).
#[allow(clippy::result_large_err)]
pub fn keyword<'a>(
    _parent: &'a Map<String, Value>,
    value: &'a Value,
    location: Location,
) -> Result<Box<dyn Keyword>, ValidationError<'a>> {
    match value {
        Value::Number(n) if n.as_f64().is_some_and(|f| f > 0.0) => {
            Ok(Box::new(MultipleOf { multiple: n.clone(), location }))
        }
        other => {
            Err(ValidationError::custom(Location::new(), location, other, "`multipleOf` must be a number above 0"))
        }
    }
}

impl Keyword for MultipleOf {
    fn validate<'i>(&self, instance: &'i Value, location: &LazyLocation) -> Result<(), ValidationError<'i>> {
        if self.is_valid(instance) {
            return Ok(());
        }
        Err(ValidationError::custom(
            self.location.clone(),
            location.into(),
            instance,
            format!("{instance} is not a multiple of {}", self.multiple),
        ))
    }

    fn is_valid(&self, instance: &Value) -> bool {
        match instance {
            Value::Number(n) => is_multiple_of(n, &self.multiple),
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn multiple(value: Value, of: Value) -> bool {
        is_multiple_of(value.as_number().unwrap(), of.as_number().unwrap())
    }

    #[test]
    fn negative_and_fractional_multiples_are_decided_on_decimals() {
        for (value, of, expected) in [
            (json!(-4.5), json!(1.5), true),
            (json!(-3), json!(1.5), true),
            (json!(-0.3), json!(0.1), true),
            (json!(-0.35), json!(0.1), false),
            (json!(4.5), json!(1.5), true),
            (json!(35), json!(1.5), false),
            (json!(0.0075), json!(0.0001), true),
            (json!(0.00751), json!(0.0001), false),
            (json!(1e308), json!(0.123456789), false),
            (json!(12391239123_u64), json!(1e-8), true),
            (json!(0), json!(0.7), true),
            (json!(-7), json!(7), true),
            (json!(u64::MAX), json!(5), true),
            (json!(i64::MIN), json!(2), true),
            (json!(0.3), json!(0.1), true),
            (json!(1e300), json!(3), false),
            (json!(1e300), json!(2), true),
            (json!(10), json!(0.5), true),
            (json!(0.5), json!(10), false),
        ] {
            assert_eq!(multiple(value.clone(), of.clone()), expected, "{value} multipleOf {of}");
        }
    }

    #[test]
    fn the_full_validator_uses_it() {
        let validator =
            jsonschema::options().with_keyword("multipleOf", keyword).build(&json!({"multipleOf": 1.5})).unwrap();
        assert!(validator.is_valid(&json!(-4.5)));
        assert!(!validator.is_valid(&json!(-4)));
        let instance = json!(-4);
        let error = validator.iter_errors(&instance).next().unwrap();
        assert!(error.schema_path.as_str().ends_with("/multipleOf"), "{}", error.schema_path.as_str());
    }
}

//! The W3C trace context on the wire: a caller's `traceparent` read under the same rules as the trust boundary
//! applies (lower-case hex, ids not all zero, version not `ff`, and neither id NIK-shaped, so that no id the
//! gateway exports can be a NIK), the field written for the upstream, and the ids the gateway generates, which
//! are never NIK-shaped either ([`NeverNikIds`]).

use http::header::HeaderValue;
use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
use opentelemetry_sdk::trace::IdGenerator;
use penghubung_types::nik_shape::holds_nik_shape;

/// A caller's trace context, as its `traceparent` gives it (its `tracestate` is never read: the value is the
/// caller's, and it travels on to the upstream untouched, not into a span).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Parent {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub sampled: bool,
}

/// Reads `version-traceid-parentid-flags`; `None` when the field is not a valid W3C `traceparent` or holds a
/// NIK-shaped id (the gateway then starts a trace of its own).
pub(crate) fn parse(v: &[u8]) -> Option<Parent> {
    if v.len() < 55 || v[2] != b'-' || v[35] != b'-' || v[52] != b'-' || (v.len() > 55 && v[55] != b'-') {
        return None;
    }
    if &v[0..2] == b"ff" || (&v[0..2] == b"00" && v.len() != 55) {
        return None;
    }
    let version = hex_value(&v[0..2])?;
    let trace = hex_value(&v[3..35])?;
    let span = hex_value(&v[36..52])?;
    let flags = hex_value(&v[53..55])?;
    let _ = version;
    if trace == 0 || span == 0 || holds_nik_shape(&v[3..35]) || holds_nik_shape(&v[36..52]) {
        return None;
    }
    Some(Parent { trace_id: TraceId::from(trace), span_id: SpanId::from(span as u64), sampled: flags & 1 == 1 })
}

/// The value of at most 32 lower-case hex digits.
fn hex_value(digits: &[u8]) -> Option<u128> {
    digits.iter().try_fold(0u128, |value, c| {
        let nibble = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        Some(value << 4 | u128::from(nibble))
    })
}

/// `traceparent` for `context`: version 00, its trace and span ids, its sampled flag.
pub(crate) fn traceparent(context: &SpanContext) -> HeaderValue {
    let mut out = *b"00-00000000000000000000000000000000-0000000000000000-00";
    hex_into(u128::from_be_bytes(context.trace_id().to_bytes()), &mut out[3..35]);
    hex_into(u128::from(u64::from_be_bytes(context.span_id().to_bytes())), &mut out[36..52]);
    hex_into(u128::from(context.trace_flags().to_u8()), &mut out[53..55]);
    HeaderValue::from_bytes(&out).expect("hex is a valid header value")
}

/// `traceparent` of a trace the gateway starts and does not sample: new ids (never NIK-shaped), flags `00`.
pub(crate) fn unsampled_root() -> HeaderValue {
    let ids = NeverNikIds;
    traceparent(&SpanContext::new(
        ids.new_trace_id(),
        ids.new_span_id(),
        TraceFlags::default(),
        false,
        TraceState::NONE,
    ))
}

/// Writes the low `out.len() * 4` bits of `value` as lower-case hex.
fn hex_into(value: u128, out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let len = out.len();
    for (i, digit) in out.iter_mut().enumerate() {
        let shift = 4 * (len - 1 - i);
        *digit = DIGITS[((value >> shift) & 0xf) as usize];
    }
}

/// Random trace and span ids in which the 16th and 32nd hex digit is always a letter (`a`–`f`): no run of 16
/// decimal digits, the shape of a NIK, can appear in an id the gateway exports or sends upstream (the trust
/// boundary's `NewTrace` follows the same rule). Never all zero either.
#[derive(Debug, Default)]
pub(crate) struct NeverNikIds;

impl IdGenerator for NeverNikIds {
    fn new_trace_id(&self) -> TraceId {
        let id = letter_at(letter_at(fastrand::u128(..), 0), 64);
        TraceId::from(id)
    }

    fn new_span_id(&self) -> SpanId {
        SpanId::from(letter_at(u128::from(fastrand::u64(..)), 0) as u64)
    }
}

/// `value` with its hex digit at bits `shift..shift + 4` made a letter when it is a decimal digit.
fn letter_at(value: u128, shift: u32) -> u128 {
    let nibble = (value >> shift) & 0xf;
    if nibble <= 9 {
        (value & !(0xf << shift)) | ((0xa + nibble % 6) << shift)
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{TraceFlags, TraceState};

    #[test]
    fn a_valid_traceparent_is_read_and_written_back() {
        let field = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let parent = parse(field).unwrap();
        assert!(parent.sampled);
        assert_eq!(format!("{:032x}", parent.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(format!("{:016x}", parent.span_id), "00f067aa0ba902b7");
        let context = SpanContext::new(parent.trace_id, parent.span_id, TraceFlags::SAMPLED, true, TraceState::NONE);
        assert_eq!(traceparent(&context).as_bytes(), field);
        let unsampled = parse(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").unwrap();
        assert!(!unsampled.sampled);
        // A later version may carry more fields after the flags.
        assert!(parse(b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra").is_some());
    }

    #[test]
    fn malformed_or_nik_shaped_traceparents_are_refused() {
        for field in [
            &b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0"[..],
            b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            b"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            b"00-3201010101010001a3ce929d0e0e4736-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-3201010101010001-01",
            b"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(parse(field), None, "{}", String::from_utf8_lossy(field));
        }
    }

    #[test]
    fn generated_ids_are_never_nik_shaped() {
        for _ in 0..10_000 {
            let trace = format!("{:032x}", NeverNikIds.new_trace_id());
            let span = format!("{:016x}", NeverNikIds.new_span_id());
            assert!(!holds_nik_shape(trace.as_bytes()), "{trace}");
            assert!(!holds_nik_shape(span.as_bytes()), "{span}");
            assert!(trace.as_bytes()[15].is_ascii_alphabetic() && trace.as_bytes()[31].is_ascii_alphabetic());
            assert!(span.as_bytes()[15].is_ascii_alphabetic());
        }
    }
}

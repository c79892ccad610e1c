//! The one sanitiser between caller-controlled strings and what the gateway writes down (the access log, the
//! audit record, and so the Redis stream that ships the record lines). Every string a caller can influence
//! goes through [`clean`] before it is logged or recorded:
//!
//! - **NIK-shaped runs are replaced by their keyed hash** (found by [`penghubung_types::nik_shape`]). A
//!   *NIK-shaped run* is a run of at least [`NIK_DIGITS`] decimal digits in which consecutive digits may be separated by up to
//!   [`MAX_SEPARATORS`] separators (space, tab, `-`, `.`, `_`, `+`, `/`), where every digit and separator may
//!   also be percent-encoded (`%33`, `%2533`, `%20`, `%2D`, hex digits in either case). So
//!   `3201010101010001`, `3201-0101-0101-0001`, `3201 0101 0101 0001`, `3201%200101%200101%200001`,
//!   `%33%32%30%31…` and `x-3201010101010001-y` are all found; longer numbers that contain 16 digits too. A
//!   value is read three times: as written, percent-decoded once and percent-decoded twice. The
//!   run is replaced by `nik:` and the first 12 hex digits of HMAC-SHA256 over its digits (without the
//!   separators), keyed with the audit trail's NIK secret (`[audit] nik_secret_file`), so that for a 16-digit
//!   run it is a prefix of the keyed hash the audit record lists under `nik` and `penghubung audit search
//!   --nik` computes. Without an audit trail the key is random per process ([`process_key`]).
//! - **Lengths are capped** at [`MAX_LOGGED_BYTES`] (after the replacement, so a cut never leaves part of a
//!   NIK in clear).
//!
//! Fields with a syntax of their own are held to it before they get here, so that a clean value passes
//! unchanged: request ids and `traceparent` ids that hold a NIK-shaped run are replaced by new ones
//! (the forwarding rules at the trust boundary), purposes follow a grammar with at most a few digits
//! ([`penghubung_types::documents::is_purpose`]), and methods come from a known set ([`is_known_method`]; any other
//! is refused with 501 `request.method_not_implemented` and logged as `-`).
//!
//! Not covered (documented): digits spelled other than in ASCII (words, other scripts) and identifiers
//! encoded on purpose (as hex, base64, with letters between the digits). Such values can only reach a log
//! through fields without a grammar, and every field the gateway logs from a request has one.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::OnceLock;

use http::Method;
use ring::hmac;

use penghubung_types::nik_shape::find_runs;
pub use penghubung_types::nik_shape::{holds_nik_shape, MAX_SEPARATORS, NIK_DIGITS};

/// Longest value written to a log or record, in bytes; longer ones are cut (and end in `…`, within the limit).
pub const MAX_LOGGED_BYTES: usize = 256;

/// Hex digits of the keyed hash kept in the replacement (12: the replacement itself can never look like a NIK).
const HASH_HEX_DIGITS: usize = 12;

/// The key used when no audit trail is configured: random, made once per process.
pub fn process_key() -> &'static hmac::Key {
    static KEY: OnceLock<hmac::Key> = OnceLock::new();
    KEY.get_or_init(|| {
        let rng = ring::rand::SystemRandom::new();
        hmac::Key::generate(hmac::HMAC_SHA256, &rng).unwrap_or_else(|_| {
            // The system's random source failed: fall back to the weaker process-local generator (a key is
            // still needed; a log line without one would have to hold the NIK or nothing).
            let mut bytes = [0u8; 32];
            bytes.iter_mut().for_each(|b| *b = fastrand::u8(..));
            hmac::Key::new(hmac::HMAC_SHA256, &bytes)
        })
    })
}

/// The key of a gateway: its audit trail's NIK secret, or the process key without an audit trail.
pub fn key_of(auditor: Option<&super::Auditor>) -> &hmac::Key {
    match auditor {
        Some(auditor) => auditor.nik_key(),
        None => process_key(),
    }
}

/// `value` as it may be logged or recorded: every NIK-shaped run replaced by `nik:` and its keyed hash, and at
/// most [`MAX_LOGGED_BYTES`] long. Borrowed (no copy) when there is nothing to change.
pub fn clean<'a>(key: &hmac::Key, value: &'a str) -> Cow<'a, str> {
    let bytes = value.as_bytes();
    let runs =
        if bytes.iter().filter(|b| b.is_ascii_digit()).count() >= NIK_DIGITS { find_runs(bytes) } else { Vec::new() };
    if runs.is_empty() && value.len() <= MAX_LOGGED_BYTES {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len().min(MAX_LOGGED_BYTES + 4));
    let mut copied = 0;
    for run in runs {
        // Runs start and end on ASCII bytes, so these are character boundaries.
        out.push_str(&value[copied..run.start]);
        out.push_str("nik:");
        let tag = hmac::sign(key, &run.digits_in(bytes));
        for byte in &tag.as_ref()[..HASH_HEX_DIGITS / 2] {
            let _ = write!(out, "{byte:02x}");
        }
        copied = run.end;
    }
    out.push_str(&value[copied..]);
    if out.len() > MAX_LOGGED_BYTES {
        let mut cut = MAX_LOGGED_BYTES - '…'.len_utf8();
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    Cow::Owned(out)
}

/// Like [`clean`], for a header value: `None` when it is not visible ASCII (such values are not logged).
pub fn clean_header<'a>(key: &hmac::Key, value: &'a http::HeaderValue) -> Option<Cow<'a, str>> {
    value.to_str().ok().map(|text| clean(key, text))
}

/// The request methods the gateway serves: those of RFC 9110 (`GET`, `HEAD`, `POST`, `PUT`, `DELETE`,
/// `CONNECT`, `OPTIONS`, `TRACE`), `PATCH` (RFC 5789) and WebDAV's (RFC 4918: `PROPFIND`, `PROPPATCH`, `MKCOL`,
/// `COPY`, `MOVE`, `LOCK`, `UNLOCK`). Methods are case-sensitive: `get` is not `GET`. Any other token is
/// refused with 501 before it is logged.
pub fn is_known_method(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET
            | Method::HEAD
            | Method::POST
            | Method::PUT
            | Method::DELETE
            | Method::CONNECT
            | Method::OPTIONS
            | Method::TRACE
            | Method::PATCH
    ) || matches!(method.as_str(), "PROPFIND" | "PROPPATCH" | "MKCOL" | "COPY" | "MOVE" | "LOCK" | "UNLOCK")
}

/// The method as logs and records write it: the token of a known method, `-` for any other.
pub fn method_label(method: &Method) -> &str {
    if is_known_method(method) {
        method.as_str()
    } else {
        "-"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, b"0123456789abcdef0123456789abcdef")
    }

    fn tag(digits: &str) -> String {
        format!("nik:{}", &crate::nik::keyed(&key(), digits.as_bytes())[..HASH_HEX_DIGITS])
    }

    #[test]
    fn nik_shaped_runs_in_every_spelling_become_their_keyed_hash() {
        let nik = "3201010101010001";
        let spellings = [
            nik.to_string(),
            "3201-0101-0101-0001".into(),
            "3201.0101.0101.0001".into(),
            "3201 0101 0101 0001".into(),
            "3201 - 0101 - 0101 - 0001".into(),
            "32_01_01_01_01_01_00_01".into(),
            "3201+0101+0101+0001".into(),
            "3201/0101/0101/0001".into(),
            "3201%200101%200101%200001".into(),
            "3201%2d0101%2D0101%2e0001".into(),
            nik.bytes().map(|d| format!("%{:02X}", d)).collect(),
            nik.bytes().map(|d| format!("%{:02x}", d)).collect(),
            nik.bytes().map(|d| format!("%25{:02x}", d)).collect(),
            "3-2-0-1-0-1-0-1-0-1-0-1-0-0-0-1".into(),
        ];
        for spelled in spellings {
            for (before, after) in [("", ""), ("cek-", ""), ("", "-x"), ("abc", "def"), ("A", "F")] {
                let value = format!("{before}{spelled}{after}");
                let cleaned = clean(&key(), &value);
                assert_eq!(cleaned, format!("{before}{}{after}", tag(nik)), "{value}");
                assert!(holds_nik_shape(value.as_bytes()), "{value}");
                assert!(!holds_nik_shape(cleaned.as_bytes()), "{cleaned}");
            }
        }
    }

    #[test]
    fn a_percent_sign_before_the_digits_does_not_hide_them() {
        // Decoded, `%32` is one digit and 14 follow (15); as written, 16 digits stand in clear.
        for value in ["%3201010101010001", "x%3201010101010001y", "%253201010101010001", "%%3201010101010001"] {
            let cleaned = clean(&key(), value);
            assert!(!cleaned.contains("01010101010001"), "{value} -> {cleaned}");
            assert!(holds_nik_shape(value.as_bytes()) && !holds_nik_shape(cleaned.as_bytes()), "{value}");
        }
        // Found by the fuzz target: only one decoding puts the digits together (`%90` + `7` + 13 digits).
        let value = "%2590%370412305794110";
        assert!(holds_nik_shape(value.as_bytes()));
        assert!(!holds_nik_shape(clean(&key(), value).as_bytes()));
    }

    #[test]
    fn longer_numbers_and_several_runs_are_replaced_too() {
        let cleaned = clean(&key(), "a 13201010101010001 b 3201010101010002 c 3201010101010003");
        assert_eq!(
            cleaned,
            format!("a {} b {} c {}", tag("13201010101010001"), tag("3201010101010002"), tag("3201010101010003"))
        );
    }

    #[test]
    fn what_is_not_nik_shaped_passes_unchanged_and_unborrowed() {
        for value in [
            "",
            "abc-123",
            "4bf92f3577b34da6a3ce929d0e0e4736",
            "550e8400-e29b-41d4-a716-446655440000",
            "320101010101000",                // 15 digits
            "3201-0101-0101-000",             // 15 digits with separators
            "3201----0101----0101----0001",   // 4 separators between the groups: not one run
            "3201x0101y0101z0001",            // letters between the digits
            "2026-12-06T10:00:00.123456789Z", // a timestamp (':' and 'T' end a run)
            "10.1.2.3",
            "pelayanan-kesehatan",
            "%",
            "%2",
            "%25",
            "%253",
            "%zz",
            "100%",
        ] {
            assert!(matches!(clean(&key(), value), Cow::Borrowed(v) if v == value), "{value}");
            assert!(!holds_nik_shape(value.as_bytes()), "{value}");
        }
    }

    #[test]
    fn lengths_are_capped_after_the_replacement() {
        let long = "x".repeat(1000);
        let cleaned = clean(&key(), &long);
        assert_eq!(cleaned.len(), MAX_LOGGED_BYTES);
        assert_eq!(clean(&key(), &cleaned), cleaned, "a capped value is not cut again");
        // A NIK straddling the cap is replaced first, never cut into a shorter run of its digits.
        let straddling = format!("{}3201010101010001", "y".repeat(MAX_LOGGED_BYTES - 8));
        let cleaned = clean(&key(), &straddling);
        assert!(!cleaned.contains("32010101"), "{cleaned}");
        let multibyte = "é".repeat(300);
        assert!(clean(&key(), &multibyte).ends_with('…'));
    }

    #[test]
    fn the_replacement_matches_the_audit_trails_keyed_hash() {
        let cleaned = clean(&key(), "1807015508900002");
        let keyed = crate::nik::keyed(&key(), b"1807015508900002");
        assert_eq!(cleaned.strip_prefix("nik:").unwrap(), &keyed[..HASH_HEX_DIGITS]);
        let other = hmac::Key::new(hmac::HMAC_SHA256, b"another key");
        assert_ne!(clean(&other, "1807015508900002"), cleaned, "keyed: another key, another tag");
        assert_eq!(clean(process_key(), "1807015508900002"), clean(process_key(), "1807015508900002"));
    }

    #[test]
    fn methods_come_from_a_known_set() {
        for known in [
            "GET",
            "HEAD",
            "POST",
            "PUT",
            "DELETE",
            "CONNECT",
            "OPTIONS",
            "TRACE",
            "PATCH",
            "PROPFIND",
            "PROPPATCH",
            "MKCOL",
            "COPY",
            "MOVE",
            "LOCK",
            "UNLOCK",
        ] {
            let method = Method::from_bytes(known.as_bytes()).unwrap();
            assert!(is_known_method(&method), "{known}");
            assert_eq!(method_label(&method), known);
        }
        for unknown in ["get", "Post", "3201010101010001", "FOO", "BREW", "PURGE", "SEARCH-3201010101010001"] {
            let method = Method::from_bytes(unknown.as_bytes()).unwrap();
            assert!(!is_known_method(&method), "{unknown}");
            assert_eq!(method_label(&method), "-");
        }
    }
}

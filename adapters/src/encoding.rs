//! The two encodings credentials travel in: Base64 (RFC 4648 §4, for HTTP Basic) and
//! `application/x-www-form-urlencoded` (token requests). Small enough not to need a dependency.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard Base64 with padding.
pub(crate) fn base64(input: &[u8]) -> String {
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The characters `application/x-www-form-urlencoded` leaves as they are: alphanumerics and `*-._`.
const FORM: &AsciiSet = &NON_ALPHANUMERIC.remove(b'*').remove(b'-').remove(b'.').remove(b'_');

/// Appends `name=value` (form-encoded, `&`-separated) to `out`.
pub(crate) fn form_pair(out: &mut String, name: &str, value: &str) {
    if !out.is_empty() {
        out.push('&');
    }
    out.extend(utf8_percent_encode(name, FORM));
    out.push('=');
    // a space is `+` in a form
    for part in utf8_percent_encode(value, FORM) {
        out.push_str(if part == "%20" { "+" } else { part });
    }
}

/// One value form-encoded (RFC 6749 §2.3.1 encodes a client id and secret so before HTTP Basic).
pub(crate) fn form_value(value: &str) -> String {
    let mut out = String::new();
    for part in utf8_percent_encode(value, FORM) {
        out.push_str(if part == "%20" { "+" } else { part });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        let vectors =
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE=")];
        for (plain, encoded) in vectors {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn form_encoding_escapes_reserved_characters() {
        let mut out = String::new();
        form_pair(&mut out, "grant_type", "client_credentials");
        form_pair(&mut out, "scope", "a b&c=d");
        assert_eq!(out, "grant_type=client_credentials&scope=a+b%26c%3Dd");
        assert_eq!(form_value("k:é"), "k%3A%C3%A9");
    }
}

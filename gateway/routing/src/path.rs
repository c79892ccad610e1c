//! Safe reading of the request path. Every segment is checked once, on the raw (still percent-encoded) path,
//! against what any backend behind the gateway might make of it, so that no spelling of a path reaches a
//! different service or operation than the one the gateway matched. A segment is refused (400
//! `request.invalid_path`) when:
//!
//! - it is empty (`//`), or holds a malformed percent-escape;
//! - decoded once, it holds `/`, `\` or a control byte;
//! - decoded once, it is not UTF-8 (overlong forms such as `%c0%ae` are read as `.` by lax decoders), or holds
//!   a character whose Unicode compatibility form is a dot, a separator or `;` (`．`, `‥`, `／`, `＼`, `；`,
//!   ...), which a normalising backend would turn into one;
//! - decoded once, it still holds a percent-escape (`%252e`, `%255c`, `%25u002e`): a backend that decodes
//!   twice would read a dot or a separator where the gateway saw none;
//! - once a path parameter is cut off (from the first `;` or `%3B`, as Java servlet containers do with
//!   `..;jsessionid=x`), what remains is empty or made of dots and spaces only: `.`, `..`, `...`, `.. ` in any
//!   spelling (Windows-style backends drop trailing dots and spaces).
//!
//! Nothing is allocated: segments are borrowed from the request.

use crate::error::RouteError;

/// The parts of `/{opd}/{service}/v{major}/{rest...}`.
#[derive(Debug, PartialEq, Eq)]
pub struct ServicePath<'a> {
    pub opd: &'a str,
    pub service: &'a str,
    pub major: u32,
    /// The rest after `/v{major}`, raw, either empty or starting with `/`.
    pub rest: &'a str,
}

/// Checks the whole path and splits off the service address.
pub fn split_service_path(path: &str) -> Result<ServicePath<'_>, RouteError> {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(RouteError::InvalidPath { reason: "the path must start with `/`" });
    }
    let mut heads: [&str; 3] = [""; 3];
    let mut index = 0usize;
    let mut start = 1;
    loop {
        let end = bytes[start..].iter().position(|&b| b == b'/').map_or(bytes.len(), |at| start + at);
        let last = end == bytes.len();
        let segment = &path[start..end];
        if segment.is_empty() {
            if last && index >= 3 {
                break; // a trailing slash after the service address is allowed
            }
            if last && index == 0 {
                return Err(RouteError::NotFound); // the bare `/`
            }
            return Err(RouteError::InvalidPath { reason: "empty path segments (`//`) are not allowed" });
        }
        check_segment(segment).map_err(|reason| RouteError::InvalidPath { reason })?;
        if index < 3 {
            heads[index] = segment;
        }
        index += 1;
        if last {
            break;
        }
        start = end + 1;
    }
    if index < 3 {
        return Err(RouteError::NotFound);
    }
    let major = parse_major(heads[2]).ok_or(RouteError::NotFound)?;
    let prefix_len = 1 + heads[0].len() + 1 + heads[1].len() + 1 + heads[2].len();
    Ok(ServicePath { opd: heads[0], service: heads[1], major, rest: &path[prefix_len..] })
}

/// `v1`, `v2`, ... (no leading zeros).
fn parse_major(segment: &str) -> Option<u32> {
    let digits = segment.strip_prefix('v')?;
    if digits.is_empty() || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// How a raw path byte is treated: most bytes need no look at all.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ByteClass {
    Plain,
    /// `%`, `.`, ` `, `;` and bytes above ASCII: the segment needs a closer look.
    Special,
    /// `/` (here only ever decoded from `%2F`), `\` or a control byte.
    Refused,
}

/// [`ByteClass`] of every byte value.
const BYTE_CLASSES: [ByteClass; 256] = {
    let mut classes = [ByteClass::Plain; 256];
    let mut b = 0;
    while b < 256 {
        classes[b] = match b as u8 {
            b'%' | b'.' | b' ' | b';' | 0x80..=0xff => ByteClass::Special,
            b'/' | b'\\' | 0..=0x1f | 0x7f => ByteClass::Refused,
            _ => ByteClass::Plain,
        };
        b += 1;
    }
    classes
};

/// Characters that a backend normalising Unicode (NFKC) turns into dots, `/`, `\` or `;`.
const CONFUSABLE: [char; 18] = [
    '\u{037e}', '\u{2024}', '\u{2025}', '\u{2026}', '\u{2100}', '\u{2101}', '\u{2105}', '\u{2106}', '\u{fe14}',
    '\u{fe19}', '\u{fe30}', '\u{fe52}', '\u{fe54}', '\u{fe68}', '\u{ff0e}', '\u{ff0f}', '\u{ff1b}', '\u{ff3c}',
];

/// The bytes of a raw segment, percent-decoded once.
#[derive(Clone)]
struct Decoded<'a> {
    raw: &'a [u8],
}

impl Iterator for Decoded<'_> {
    type Item = Result<u8, &'static str>;

    fn next(&mut self) -> Option<Self::Item> {
        let (&b, rest) = self.raw.split_first()?;
        if b != b'%' {
            self.raw = rest;
            return Some(Ok(b));
        }
        let hex = |at: usize| rest.get(at).and_then(|c| (*c as char).to_digit(16));
        let (Some(hi), Some(lo)) = (hex(0), hex(1)) else {
            self.raw = &[];
            return Some(Err("malformed percent-encoding"));
        };
        self.raw = &rest[2..];
        Some(Ok((hi * 16 + lo) as u8))
    }
}

/// One raw segment, as the module documentation says: `Err` with the reason it is refused.
fn check_segment(segment: &str) -> Result<(), &'static str> {
    let bytes = segment.as_bytes();
    if bytes.iter().all(|&b| BYTE_CLASSES[usize::from(b)] == ByteClass::Plain) {
        return Ok(()); // the common case: nothing to decode, no dot, no parameter
    }
    let mut decoded = Decoded { raw: bytes };
    // The part before a path parameter: its length, and how much of it is dots and spaces.
    let (mut name_len, mut name_dots, mut name_blanks) = (0usize, 0usize, 0usize);
    let mut in_parameter = false;
    while let Some(b) = decoded.next() {
        let b = b?;
        match b {
            b'/' | b'\\' => return Err("encoded `/` or `\\` inside a path segment"),
            0..=0x1f | 0x7f => return Err("control characters in the path"),
            b'%' if is_escape(decoded.clone()) => return Err("double percent-encoding in the path"),
            0x80..=0xff => check_character(b, &mut decoded)?,
            _ => {}
        }
        if b == b';' {
            in_parameter = true;
        }
        if !in_parameter {
            name_len += 1;
            name_dots += usize::from(b == b'.');
            name_blanks += usize::from(b == b' ');
        }
    }
    if name_len == 0 {
        return Err("a path segment without a name before its `;` parameter");
    }
    if name_dots > 0 && name_dots + name_blanks == name_len {
        return Err("`.` and `..` segments are not allowed");
    }
    Ok(())
}

/// Whether decoded bytes that follow a decoded `%` make an escape again: two hex digits, or `u` and four (the
/// `%u002e` form some servers decode).
fn is_escape(mut after: Decoded<'_>) -> bool {
    let mut peek = after.clone();
    let digits = if matches!(peek.next(), Some(Ok(b'u' | b'U'))) {
        after = peek;
        4
    } else {
        2
    };
    (0..digits).all(|_| matches!(after.next(), Some(Ok(c)) if c.is_ascii_hexdigit()))
}

/// A decoded non-ASCII byte `lead`, with the rest of its UTF-8 sequence from `decoded`: valid UTF-8 (no overlong
/// form, no surrogate) and not a [`CONFUSABLE`] character.
fn check_character(lead: u8, decoded: &mut Decoded<'_>) -> Result<(), &'static str> {
    let not_utf8 = "the decoded path is not UTF-8";
    let len = match lead {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return Err(not_utf8),
    };
    let mut sequence = [lead, 0, 0, 0];
    for slot in sequence.iter_mut().take(len).skip(1) {
        match decoded.next() {
            Some(Ok(b)) => *slot = b,
            Some(Err(e)) => return Err(e),
            None => return Err(not_utf8),
        }
    }
    let Ok(text) = std::str::from_utf8(&sequence[..len]) else { return Err(not_utf8) };
    if text.chars().any(|c| CONFUSABLE.contains(&c)) {
        return Err("a character that normalises to a dot or a separator");
    }
    Ok(())
}

/// Whether a raw (percent-encoded, already checked) segment decodes to `literal`. No allocation.
pub fn segment_equals(raw: &str, literal: &str) -> bool {
    if !raw.contains('%') {
        return raw == literal;
    }
    percent_encoding::percent_decode_str(raw).eq(literal.bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_the_service_address() {
        let p = split_service_path("/dinkes/rekam-medis/v2/pasien/12").unwrap();
        assert_eq!((p.opd, p.service, p.major, p.rest), ("dinkes", "rekam-medis", 2, "/pasien/12"));
        let p = split_service_path("/dinkes/rekam-medis/v1").unwrap();
        assert_eq!(p.rest, "");
        let p = split_service_path("/dinkes/rekam-medis/v1/").unwrap();
        assert_eq!(p.rest, "/");
    }

    #[test]
    fn hostile_paths_are_refused() {
        for path in [
            "/dinkes/../disdukcapil/kependudukan/v1/x",
            "/dinkes/rekam-medis/v1/../../disdukcapil",
            "/dinkes/rekam-medis/v1/%2e%2e/x",
            "/dinkes/rekam-medis/v1/.%2E/x",
            "/dinkes/rekam-medis/v1/a%2Fb",
            "/dinkes/rekam-medis/v1/a%5cb",
            "/dinkes//rekam-medis/v1/x",
            "/dinkes/rekam-medis/v1//x",
            "/dinkes/rekam-medis/v1/%zz",
            "/dinkes/rekam-medis/v1/%0a",
            "/dinkes/rekam-medis/v1/./x",
        ] {
            assert!(matches!(split_service_path(path), Err(RouteError::InvalidPath { .. })), "{path}");
        }
    }

    /// Segments that servlet containers read as path parameters, and spellings a second decoding or Unicode
    /// normalisation turns into dots or separators: the class of `..;` and `%252e%252e`.
    #[test]
    fn parameter_and_double_decoding_spellings_of_dots_are_refused() {
        for segment in [
            "..;",
            "..;jsessionid=1",
            ".;",
            ".;x=1",
            "%2e%2e;",
            ".%2E;a",
            "..%3b",
            "..%3Bx",
            ";",
            ";x",
            "%3b",
            "...",
            "....",
            ".. ",
            "..%20",
            "%20..",
            ". .",
            "..;%2e",
            "%252e%252e",
            "%252E.",
            "%252f",
            "%255c",
            "a%252fb",
            "%2500",
            "%25%32%65",
            "%2525",
            "%25u002e",
            "%25U002E",
            "%c0%ae%c0%ae",
            "%c0%ae",
            "%c0%af",
            "%e0%80%ae",
            "%c1%9c",
            "%ed%a0%80",
            "%ff",
            "%c3",
            "%ef%bc%8e%ef%bc%8e",
            "%e2%80%a5",
            "%e2%80%a4",
            "%e2%80%a6",
            "%ef%bc%8f",
            "a%ef%bc%8fb",
            "%ef%bc%bc",
            "%ef%b9%92",
            "%e2%84%80",
            "%ef%bc%9b",
            "%cd%be",
            "．．",
            "‥",
        ] {
            let path = format!("/dinkes/rekam-medis/v1/a/{segment}/b");
            assert!(matches!(split_service_path(&path), Err(RouteError::InvalidPath { .. })), "{path}");
            let path = format!("/dinkes/rekam-medis/v1/{segment}");
            assert!(matches!(split_service_path(&path), Err(RouteError::InvalidPath { .. })), "{path}");
        }
    }

    #[test]
    fn ordinary_segments_with_dots_parameters_and_escapes_pass() {
        for segment in [
            "a.json",
            ".well-known",
            "..a",
            "a..",
            "v1.2",
            "jsessionid;x",
            "a;b=c",
            "a%3Bb",
            "100%25",
            "%25zz",
            "a%20b",
            "%20",
            "caf%C3%A9",
            "%E2%82%AC",
            "%F0%9F%98%80",
            "RM-1",
            "1.",
        ] {
            let path = format!("/dinkes/rekam-medis/v1/{segment}");
            assert!(split_service_path(&path).is_ok(), "{path}");
        }
    }

    #[test]
    fn incomplete_addresses_are_not_found() {
        for path in ["/", "/dinkes", "/dinkes/rekam-medis", "/dinkes/rekam-medis/x1", "/dinkes/rekam-medis/v01"] {
            assert!(matches!(split_service_path(path), Err(RouteError::NotFound)), "{path}");
        }
    }

    #[test]
    fn segments_compare_decoded() {
        assert!(segment_equals("pasien", "pasien"));
        assert!(segment_equals("pas%69en", "pasien"));
        assert!(!segment_equals("pasie", "pasien"));
    }
}

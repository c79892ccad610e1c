//! Safe reading of the request path. Every segment is checked once, on the raw (still percent-encoded) path:
//! malformed escapes, encoded `/` or `\`, control bytes, `.`/`..` segments (also encoded) and empty segments
//! (`//`) are refused, so no spelling of a path can reach a different service than the one it names.
//! Nothing is allocated: segments are borrowed from the request.

use crate::error::GatewayError;

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
pub fn split_service_path(path: &str) -> Result<ServicePath<'_>, GatewayError> {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(GatewayError::InvalidPath { reason: "the path must start with `/`" });
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
                return Err(GatewayError::RouteNotFound); // the bare `/`
            }
            return Err(GatewayError::InvalidPath { reason: "empty path segments (`//`) are not allowed" });
        }
        check_segment(segment)?;
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
        return Err(GatewayError::RouteNotFound);
    }
    let major = parse_major(heads[2]).ok_or(GatewayError::RouteNotFound)?;
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
    Percent,
    Dot,
    /// `/` (here only ever decoded from `%2F`), `\` or a control byte.
    Refused,
}

/// [`ByteClass`] of every byte value.
const BYTE_CLASSES: [ByteClass; 256] = {
    let mut classes = [ByteClass::Plain; 256];
    let mut b = 0;
    while b < 256 {
        classes[b] = match b as u8 {
            b'%' => ByteClass::Percent,
            b'.' => ByteClass::Dot,
            b'/' | b'\\' | 0..=0x1f | 0x7f => ByteClass::Refused,
            _ => ByteClass::Plain,
        };
        b += 1;
    }
    classes
};

/// One raw segment: valid percent-escapes, no encoded separators or control bytes, not `.` or `..`.
fn check_segment(segment: &str) -> Result<(), GatewayError> {
    let bytes = segment.as_bytes();
    let mut i = 0;
    let mut dots = 0usize;
    let mut decoded_len = 0usize;
    while i < bytes.len() {
        let mut b = bytes[i];
        i += 1;
        if BYTE_CLASSES[usize::from(b)] == ByteClass::Percent {
            let hi = bytes.get(i).and_then(|c| (*c as char).to_digit(16));
            let lo = bytes.get(i + 1).and_then(|c| (*c as char).to_digit(16));
            let (Some(hi), Some(lo)) = (hi, lo) else {
                return Err(GatewayError::InvalidPath { reason: "malformed percent-encoding" });
            };
            i += 2;
            b = (hi * 16 + lo) as u8;
        }
        decoded_len += 1;
        match BYTE_CLASSES[usize::from(b)] {
            ByteClass::Plain | ByteClass::Percent => {}
            ByteClass::Dot => dots += 1,
            ByteClass::Refused if b == b'/' || b == b'\\' => {
                return Err(GatewayError::InvalidPath { reason: "encoded `/` or `\\` inside a path segment" })
            }
            ByteClass::Refused => return Err(GatewayError::InvalidPath { reason: "control characters in the path" }),
        }
    }
    if decoded_len == dots && dots <= 2 {
        return Err(GatewayError::InvalidPath { reason: "`.` and `..` segments are not allowed" });
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

    fn code(path: &str) -> &'static str {
        split_service_path(path).map(|_| "ok").unwrap_or_else(|e| e.code())
    }

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
            assert_eq!(code(path), "request.invalid_path", "{path}");
        }
    }

    #[test]
    fn incomplete_addresses_are_not_found() {
        for path in ["/", "/dinkes", "/dinkes/rekam-medis", "/dinkes/rekam-medis/x1", "/dinkes/rekam-medis/v01"] {
            assert_eq!(code(path), "route.not_found", "{path}");
        }
    }

    #[test]
    fn segments_compare_decoded() {
        assert!(segment_equals("pasien", "pasien"));
        assert!(segment_equals("pas%69en", "pasien"));
        assert!(!segment_equals("pasie", "pasien"));
    }
}

//! The hash chain: how a record line is sealed and how a seal is checked.
//!
//! A record is one JSON object on one line. Its last member is always `"hash"`; the hash is the SHA-256 of the
//! exact bytes of the line with that last member removed, i.e. of `{…}` where `…` is everything between the
//! opening brace and `,"hash":"…"}`. Every record also carries `seq` (one more than the record before it) and
//! `prev` (the hash of the record before it; 64 zeros for the first record ever). Hashing the bytes as written
//! (instead of a re-serialisation) lets a third party check a line with any JSON tool and `sha256sum`.

use ring::digest::{Context, SHA256};

/// `prev` of the very first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The suffix that introduces the seal.
const HASH_MEMBER: &str = ",\"hash\":\"";

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    push_hex(&mut out, bytes);
    out
}

/// Appends the lower-case hex of `bytes` to `out`.
pub fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
}

/// Appends the lower-case hex of `bytes` to a byte buffer (a record line being written).
pub fn push_hex_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize]);
        out.push(DIGITS[(b & 15) as usize]);
    }
}

/// SHA-256 of `bytes` in hex (how digests appear in records).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&SHA256, bytes).as_ref())
}

/// Bytes of a hex string, or `None` when it is not hex of even length.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let bytes = text.as_bytes();
    if bytes.len() % 2 != 0 {
        return None;
    }
    bytes.chunks(2).map(|pair| Some(value(pair[0])? << 4 | value(pair[1])?)).collect()
}

/// Seals a record: `buf[start..]` holds `{…` (the record without its closing brace). Appends
/// `,"hash":"<hex>"}\n` and returns the hash.
pub fn seal(buf: &mut Vec<u8>, start: usize) -> [u8; 32] {
    let mut context = Context::new(&SHA256);
    context.update(&buf[start..]);
    context.update(b"}");
    let mut hash = [0u8; 32];
    hash.copy_from_slice(context.finish().as_ref());
    buf.extend_from_slice(HASH_MEMBER.as_bytes());
    push_hex_bytes(buf, &hash);
    buf.extend_from_slice(b"\"}\n");
    hash
}

/// A line split into the sealed part (without its closing brace) and the stored hash, if it has the shape of
/// a sealed record.
pub fn split(line: &str) -> Option<(&str, &str)> {
    let line = line.strip_suffix("\"}")?;
    let at = line.rfind(HASH_MEMBER)?;
    let stored = &line[at + HASH_MEMBER.len()..];
    (stored.len() == 64 && stored.bytes().all(|c| c.is_ascii_hexdigit())).then_some((&line[..at], stored))
}

/// The hash a sealed part should carry.
pub fn compute(sealed: &str) -> String {
    let mut context = Context::new(&SHA256);
    context.update(sealed.as_bytes());
    context.update(b"}");
    hex(context.finish().as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_line_checks_and_any_change_shows() {
        let mut buf = b"{\"seq\":1,\"prev\":\"00\",\"kind\":\"x\"".to_vec();
        let hash = seal(&mut buf, 0);
        let line = std::str::from_utf8(&buf).unwrap().trim_end();
        let (sealed, stored) = split(line).unwrap();
        assert_eq!(stored, hex(&hash));
        assert_eq!(compute(sealed), stored);
        // The same check with sha256 over the line without the hash member.
        let expected = ring::digest::digest(&SHA256, b"{\"seq\":1,\"prev\":\"00\",\"kind\":\"x\"}");
        assert_eq!(hex(expected.as_ref()), stored);
        let changed = line.replace("\"x\"", "\"y\"");
        let (sealed, stored) = split(&changed).unwrap();
        assert_ne!(compute(sealed), stored);
        assert_eq!(unhex(&hex(&[0, 1, 254, 255])).unwrap(), vec![0, 1, 254, 255]);
        assert!(split("{\"a\":1}").is_none());
    }
}

//! Time-based one-time passwords (RFC 6238 over RFC 4226's HOTP): HMAC-SHA-1, 6 digits, a 30-second step, one
//! step of clock skew either way; the secrets' RFC 4648 base32 form and the `otpauth://` URI authenticator apps
//! read. Built on `ring`'s HMAC (SHA-1 is what every authenticator app implements for TOTP; HOTP's truncation
//! does not rely on SHA-1's collision resistance).

use ring::hmac;

/// Seconds per step.
pub const STEP_SECONDS: u64 = 30;
/// Digits of a code.
pub const DIGITS: usize = 6;
/// Steps of clock skew accepted either way.
pub const SKEW_STEPS: u64 = 1;
/// Bytes of a new secret (160 bits, RFC 4226's recommendation).
pub const SECRET_BYTES: usize = 20;

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding (what authenticator apps take).
pub fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Decodes base32 (either case, spaces and `=` padding ignored); `None` for any other character.
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.bytes().filter(|c| !matches!(c, b' ' | b'=')) {
        let value = ALPHABET.iter().position(|a| *a == c.to_ascii_uppercase())? as u32;
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// The HOTP code of `secret` at counter `step` (RFC 4226 section 5.3).
pub fn hotp(secret: &[u8], step: u64) -> u32 {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, &step.to_be_bytes());
    let digest = tag.as_ref();
    let offset = usize::from(digest[digest.len() - 1] & 0x0f);
    let binary =
        u32::from_be_bytes([digest[offset] & 0x7f, digest[offset + 1], digest[offset + 2], digest[offset + 3]]);
    binary % 10u32.pow(DIGITS as u32)
}

/// The step a Unix time falls in.
pub fn step_at(unix_seconds: u64) -> u64 {
    unix_seconds / STEP_SECONDS
}

/// The code (six digits, zero-padded) of `secret` at `unix_seconds`.
pub fn code_at(secret: &[u8], unix_seconds: u64) -> String {
    format!("{:0width$}", hotp(secret, step_at(unix_seconds)), width = DIGITS)
}

/// The step whose code `code` is, within the skew around `unix_seconds` and after `last_used` (a code used once
/// is not accepted again: its step and every earlier one are spent). `None`: not a valid code now.
pub fn verify(secret: &[u8], code: &str, unix_seconds: u64, last_used: Option<u64>) -> Option<u64> {
    let code = code.trim();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let given: u32 = code.parse().ok()?;
    let now = step_at(unix_seconds);
    let mut matched = None;
    // Every candidate is computed (no early exit on a match).
    for step in now.saturating_sub(SKEW_STEPS)..=now + SKEW_STEPS {
        if hotp(secret, step) ^ given == 0 {
            matched = Some(step);
        }
    }
    matched.filter(|step| last_used.is_none_or(|last| *step > last))
}

/// The `otpauth://totp/…` URI of an enrolment (authenticator apps read it from a QR code or a paste).
pub fn otpauth_uri(issuer: &str, account: &str, secret_base32: &str) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => char::from(b).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    format!(
        "otpauth://totp/{}:{}?secret={secret_base32}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        enc(issuer),
        enc(account),
        enc(issuer)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 (the seed is the ASCII "12345678901234567890"; 8-digit codes there, whose
    /// last six digits are ours).
    #[test]
    fn rfc6238_test_vectors() {
        let secret = b"12345678901234567890";
        for (time, eight) in [
            (59u64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(code_at(secret, time), eight[2..], "time {time}");
        }
    }

    #[test]
    fn rfc4648_base32() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32_encode(plain.as_bytes()), encoded);
            assert_eq!(base32_decode(encoded).unwrap(), plain.as_bytes());
        }
        assert_eq!(base32_decode("mzxw6ytboi======").unwrap(), b"foobar");
        assert_eq!(base32_decode("MZ1"), None, "1 is not base32");
    }

    #[test]
    fn skew_of_one_step_and_no_replay() {
        let secret = b"12345678901234567890";
        let now = 1_234_567_890;
        let previous = code_at(secret, now - STEP_SECONDS);
        let next = code_at(secret, now + STEP_SECONDS);
        let too_old = code_at(secret, now - 2 * STEP_SECONDS);
        assert_eq!(verify(secret, &previous, now, None), Some(step_at(now) - 1));
        assert_eq!(verify(secret, &next, now, None), Some(step_at(now) + 1));
        assert_eq!(verify(secret, &too_old, now, None), None);
        let current = code_at(secret, now);
        let used = verify(secret, &current, now, None).unwrap();
        assert_eq!(verify(secret, &current, now, Some(used)), None, "a code is not accepted twice");
        assert_eq!(verify(secret, "12345", now, None), None);
        assert_eq!(verify(secret, "abcdef", now, None), None);
    }

    #[test]
    fn the_uri_names_the_issuer_and_account() {
        let uri = otpauth_uri("Penghubung", "ani ops", "MZXW6");
        assert_eq!(
            uri,
            "otpauth://totp/Penghubung:ani%20ops?secret=MZXW6&issuer=Penghubung&algorithm=SHA1&digits=6&period=30"
        );
    }
}

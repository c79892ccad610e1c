//! Console credentials in tests: an operator's password and TOTP secret enrolled through the admin API with the
//! operator's own certificate (the path `operator set-password` and `operator enrol-totp` take), and RFC 6238
//! codes computed from a base32 secret, now or at any instant (the console refuses a code used once, so a second
//! login of one operator within a step uses the next step's code).

use http::{Method, Request, StatusCode};
use penghubung::ca::Issued;
use ring::hmac;

use crate::mtls::{client_config, https_client};
use crate::{full, send};

/// Sets `id`'s console password to `password` and enrols a TOTP secret, as `identity` (the operator's own
/// certificate, or an admin's) against the admin listener at `admin_url`; returns the base32 secret.
pub async fn enrol(admin_url: &str, ca_pem: &str, identity: &Issued, id: &str, password: &str) -> String {
    let client = https_client(client_config(ca_pem, Some(identity)));
    let body = serde_json::json!({ "password": password }).to_string();
    let request = Request::builder()
        .method(Method::PUT)
        .uri(format!("{admin_url}/api/v1/operators/{id}/password"))
        .header("content-type", "application/json")
        .body(full(body))
        .unwrap();
    let answer = send(&client, request).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT, "set-password for {id}: {}", answer.text());
    let request = Request::post(format!("{admin_url}/api/v1/operators/{id}/totp")).body(full("")).unwrap();
    let answer = send(&client, request).await;
    assert_eq!(answer.status, StatusCode::OK, "enrol-totp for {id}: {}", answer.text());
    let enrolled = answer.json();
    let secret = enrolled["secret"].as_str().unwrap_or_else(|| panic!("no secret in {enrolled}")).to_string();
    let uri = enrolled["uri"].as_str().unwrap_or_default();
    assert!(uri.starts_with("otpauth://totp/") && uri.contains(&secret), "{enrolled}");
    secret
}

/// Decodes RFC 4648 base32 (upper or lower case, padding and spaces ignored).
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u64, 0u32);
    for c in text.chars().filter(|c| *c != '=' && !c.is_whitespace()) {
        let value = match c.to_ascii_uppercase() {
            c @ 'A'..='Z' => c as u64 - 'A' as u64,
            c @ '2'..='7' => c as u64 - '2' as u64 + 26,
            _ => return None,
        };
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

/// The 6-digit RFC 6238 code (HMAC-SHA-1, 30 s step) of `key` at Unix time `unix_seconds`.
pub fn totp_with_key(key: &[u8], unix_seconds: u64) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key);
    let counter = unix_seconds / 30;
    let tag = hmac::sign(&key, &counter.to_be_bytes());
    let digest = tag.as_ref();
    let offset = (digest[digest.len() - 1] & 0x0f) as usize;
    let binary =
        u32::from_be_bytes([digest[offset], digest[offset + 1], digest[offset + 2], digest[offset + 3]]) & 0x7fff_ffff;
    format!("{:06}", binary % 1_000_000)
}

/// The code of the base32 `secret` at Unix time `unix_seconds`.
pub fn totp_at(secret: &str, unix_seconds: u64) -> String {
    totp_with_key(&base32_decode(secret).expect("a base32 TOTP secret"), unix_seconds)
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// The current code of the base32 `secret`.
pub fn totp_now(secret: &str) -> String {
    totp_at(secret, unix_now())
}

/// A 6-digit code that is none of those the console accepts for `secret` now (the steps before, at and after).
pub fn wrong_totp(secret: &str) -> String {
    let now = unix_now();
    let valid: Vec<String> = [now - 30, now, now + 30, now + 60].iter().map(|t| totp_at(secret, *t)).collect();
    (0..)
        .map(|n: u32| format!("{:06}", (valid[1].parse::<u32>().unwrap() + 1 + n * 7919) % 1_000_000))
        .find(|code| !valid.contains(code))
        .unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_sha1_vectors() {
        // RFC 6238 appendix B (SHA-1 key "12345678901234567890"): the 8-digit codes' last 6 digits.
        let key = b"12345678901234567890";
        for (time, code) in
            [(59, "287082"), (1_111_111_109, "081804"), (1_111_111_111, "050471"), (1_234_567_890, "005924")]
        {
            assert_eq!(totp_with_key(key, time), code, "at {time}");
        }
        // The same key in base32.
        assert_eq!(totp_at("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", 59), "287082");
    }

    #[test]
    fn base32_round_trips_known_text() {
        assert_eq!(base32_decode("MZXW6YTBOI======").unwrap(), b"foobar");
        assert_eq!(base32_decode("mzxw6ytb").unwrap(), b"fooba");
        assert!(base32_decode("not base32!").is_none());
    }

    #[test]
    fn a_wrong_code_is_none_of_the_accepted_ones() {
        let secret = "JBSWY3DPEHPK3PXP";
        let wrong = wrong_totp(secret);
        assert_eq!(wrong.len(), 6);
        assert_ne!(wrong, totp_now(secret));
    }
}

//! CSRF tokens: an HMAC-SHA-256, under a key drawn when the process starts, of what the form is bound to (the
//! session id, the certificate's fingerprint, or for the sign-in form the pre-session cookie). A form's hidden
//! `csrf` input carries it; a POST without the token of its binding is refused (`console.csrf_rejected`).

use ring::hmac;
use ring::rand::SystemRandom;

/// The process's CSRF key.
pub struct Csrf {
    key: hmac::Key,
}

impl Csrf {
    /// A fresh key (`None` when the system has no randomness).
    pub fn new() -> Option<Csrf> {
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new()).ok()?;
        Some(Csrf { key })
    }

    /// The token of `binding` (hex).
    pub fn token(&self, binding: &str) -> String {
        hmac::sign(&self.key, binding.as_bytes()).as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether `given` is the token of `binding` (compared in constant time).
    pub fn check(&self, binding: &str, given: Option<&str>) -> bool {
        let Some(bytes) = given.and_then(unhex) else { return false };
        hmac::verify(&self.key, binding.as_bytes(), &bytes).is_ok()
    }
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || text.len() > 128 {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_good_for_its_binding_only() {
        let csrf = Csrf::new().unwrap();
        let token = csrf.token("session:abc");
        assert!(csrf.check("session:abc", Some(&token)));
        assert!(!csrf.check("session:abd", Some(&token)));
        assert!(!csrf.check("session:abc", None));
        assert!(!csrf.check("session:abc", Some("zz")));
        assert!(!Csrf::new().unwrap().check("session:abc", Some(&token)), "another process's key");
    }
}

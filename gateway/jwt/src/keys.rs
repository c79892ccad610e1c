//! A JSON Web Key Set (RFC 7517) read into verification keys. Only signature keys the gateway can use are
//! kept: `RSA` keys of 2048 to 8192 bits (RS256) and `EC` keys on P-256 (ES256), each bound to that one
//! algorithm; a key whose `alg` or `use` says otherwise, or whose algorithm the issuer is not configured for, is
//! left out. Symmetric (`oct`) keys never become verification keys.

use std::collections::HashMap;

use base64::Engine as _;
use jsonwebtoken::DecodingKey;
use serde::Deserialize;

use penghubung_types::config::JwtAlgorithm;

/// One usable verification key.
pub struct VerifyKey {
    /// The only algorithm this key verifies.
    pub algorithm: JwtAlgorithm,
    pub key: DecodingKey,
}

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyKey").field("algorithm", &self.algorithm).finish_non_exhaustive()
    }
}

/// The usable keys of one key set, by `kid` (keys without a `kid` are kept apart).
#[derive(Debug, Default)]
pub struct KeySet {
    pub by_kid: HashMap<Box<str>, VerifyKey>,
    pub unnamed: Vec<VerifyKey>,
}

impl KeySet {
    pub fn len(&self) -> usize {
        self.by_kid.len() + self.unnamed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The key for a token's `kid`; without a `kid`, the one key of `algorithm` when there is exactly one.
    pub fn find(&self, kid: Option<&str>, algorithm: JwtAlgorithm) -> Option<&VerifyKey> {
        match kid {
            Some(kid) => self.by_kid.get(kid),
            None => {
                let mut all = self.by_kid.values().chain(&self.unnamed).filter(|k| k.algorithm == algorithm);
                match (all.next(), all.next()) {
                    (Some(only), None) => Some(only),
                    _ => None,
                }
            }
        }
    }
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default, rename = "use")]
    usage: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
}

/// Reads a JWKS document, keeping the keys usable with `allowed` algorithms. Returns the key set and how many
/// keys were left out. A document that is not a JWKS is an error.
pub fn parse_jwks(data: &[u8], allowed: &[JwtAlgorithm]) -> Result<(KeySet, usize), String> {
    let jwks: Jwks = serde_json::from_slice(data).map_err(|e| format!("not a JSON Web Key Set: {e}"))?;
    let mut set = KeySet::default();
    let mut skipped = 0;
    for value in jwks.keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
            skipped += 1;
            continue;
        };
        let Some(key) = usable_key(&jwk, allowed) else {
            skipped += 1;
            continue;
        };
        match jwk.kid {
            // A kid used twice is ambiguous: neither key is used.
            Some(kid) if set.by_kid.contains_key(kid.as_str()) => {
                set.by_kid.remove(kid.as_str());
                skipped += 2;
            }
            Some(kid) => {
                set.by_kid.insert(kid.into(), key);
            }
            None => set.unnamed.push(key),
        }
    }
    Ok((set, skipped))
}

/// The verification key of one JWK, when the gateway may use it.
fn usable_key(jwk: &Jwk, allowed: &[JwtAlgorithm]) -> Option<VerifyKey> {
    if jwk.usage.as_deref().is_some_and(|u| u != "sig") {
        return None;
    }
    let (algorithm, key) = match jwk.kty.as_str() {
        "RSA" => {
            let (n, e) = (jwk.n.as_deref()?, jwk.e.as_deref()?);
            let modulus = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(n).ok()?;
            let bits = modulus.iter().skip_while(|b| **b == 0).count() * 8;
            if !(2048..=8192).contains(&bits) {
                return None;
            }
            (JwtAlgorithm::RS256, DecodingKey::from_rsa_components(n, e).ok()?)
        }
        "EC" if jwk.crv.as_deref() == Some("P-256") => {
            let (x, y) = (jwk.x.as_deref()?, jwk.y.as_deref()?);
            let coordinate = |c: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(c).ok();
            if coordinate(x)?.len() != 32 || coordinate(y)?.len() != 32 {
                return None;
            }
            (JwtAlgorithm::ES256, DecodingKey::from_ec_components(x, y).ok()?)
        }
        _ => return None,
    };
    if jwk.alg.as_deref().is_some_and(|alg| alg != algorithm.name()) || !allowed.contains(&algorithm) {
        return None;
    }
    Some(VerifyKey { algorithm, key })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: &[JwtAlgorithm] = &[JwtAlgorithm::RS256, JwtAlgorithm::ES256];

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    fn ec_jwk(kid: &str) -> serde_json::Value {
        serde_json::json!({"kty": "EC", "crv": "P-256", "kid": kid, "x": b64(&[1; 32]), "y": b64(&[2; 32])})
    }

    #[test]
    fn only_usable_signature_keys_are_kept() {
        let small_rsa = serde_json::json!({"kty": "RSA", "kid": "small", "n": b64(&[0xc1; 128]), "e": "AQAB"});
        let rsa = serde_json::json!({"kty": "RSA", "kid": "rsa", "n": b64(&[0xc1; 256]), "e": "AQAB"});
        let oct = serde_json::json!({"kty": "oct", "kid": "hmac", "k": b64(b"secret")});
        let mut enc = ec_jwk("enc");
        enc["use"] = "enc".into();
        let mut wrong_alg = ec_jwk("wrong");
        wrong_alg["alg"] = "RS256".into();
        let jwks = serde_json::json!({"keys": [small_rsa, rsa, oct, enc, wrong_alg, ec_jwk("ec")]});
        let (set, skipped) = parse_jwks(jwks.to_string().as_bytes(), ALL).unwrap();
        let mut kids: Vec<_> = set.by_kid.keys().map(|k| k.to_string()).collect();
        kids.sort();
        assert_eq!(kids, ["ec", "rsa"]);
        assert_eq!(skipped, 4);
        assert_eq!(set.by_kid["rsa"].algorithm, JwtAlgorithm::RS256);
        assert_eq!(set.by_kid["ec"].algorithm, JwtAlgorithm::ES256);
        let (set, _) = parse_jwks(jwks.to_string().as_bytes(), &[JwtAlgorithm::ES256]).unwrap();
        assert_eq!(set.len(), 1, "RS256 is not configured: the RSA key goes");
    }

    #[test]
    fn a_kid_used_twice_is_used_by_neither_key() {
        let jwks = serde_json::json!({"keys": [ec_jwk("same"), ec_jwk("same"), ec_jwk("other")]});
        let (set, _) = parse_jwks(jwks.to_string().as_bytes(), ALL).unwrap();
        assert!(set.find(Some("same"), JwtAlgorithm::ES256).is_none());
        assert!(set.find(Some("other"), JwtAlgorithm::ES256).is_some());
        assert!(set.find(None, JwtAlgorithm::ES256).is_some(), "one key of the algorithm: a token may omit kid");
    }

    #[test]
    fn documents_that_are_no_key_sets_are_errors() {
        assert!(parse_jwks(b"<html>", ALL).is_err());
        assert!(parse_jwks(b"{\"keys\": 1}", ALL).is_err());
    }
}

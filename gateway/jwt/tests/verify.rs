//! The verifier over a file-based key set, without a gateway: tokens without a `kid`, a custom subject claim,
//! a key added to the file and found by the refresh an unknown `kid` triggers, and the cool-down that keeps a
//! second unknown `kid` from reading the set again.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use penghubung_jwt::fetch::JwksSource;
use penghubung_jwt::{IssuerKeys, TokenError, TokenVerifier};
use penghubung_types::config::JwtIssuerConfig;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn key() -> EcdsaKeyPair {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap()
}

fn jwk(key: &EcdsaKeyPair, kid: Option<&str>) -> Value {
    let point = key.public_key().as_ref();
    let mut jwk = json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..65])});
    if let Some(kid) = kid {
        jwk["kid"] = kid.into();
    }
    jwk
}

fn sign(key: &EcdsaKeyPair, kid: Option<&str>, claims: &Value) -> String {
    let mut header = json!({"alg": "ES256"});
    if let Some(kid) = kid {
        header["kid"] = kid.into();
    }
    let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let signature = key.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
    format!("{input}.{}", b64(signature.as_ref()))
}

fn claims() -> Value {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    json!({"iss": "https://idp.example.go.id", "aud": ["other", "penghubung"], "client_id": "bkn-siasn", "exp": now + 60})
}

/// An issuer reading `file`, with the subject in `client_id` and a cool-down of an hour.
async fn verifier(file: &std::path::Path) -> (TokenVerifier, Arc<IssuerKeys>) {
    let settings: JwtIssuerConfig = serde_json::from_value(json!({
        "name": "idp", "issuer": "https://idp.example.go.id", "audiences": ["penghubung"],
        "jwks_file": file, "subject_claim": "client_id", "refresh_cooldown": "1h"
    }))
    .unwrap();
    let issuer = Arc::new(IssuerKeys::new(&settings, JwksSource::File(file.to_path_buf())));
    issuer.refresh("test").await;
    (TokenVerifier::from_issuers([Arc::clone(&issuer)]), issuer)
}

#[tokio::test]
async fn file_key_sets_verify_refresh_once_and_cool_down() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jwks.json");
    let first = key();
    std::fs::write(&file, json!({"keys": [jwk(&first, None)]}).to_string()).unwrap();
    let (verifier, issuer) = verifier(&file).await;

    // The only key of the algorithm verifies a token without a kid; the subject comes from `client_id`.
    let caller = verifier.verify(&sign(&first, None, &claims())).await.unwrap();
    assert_eq!((&*caller.issuer, caller.subject.as_str()), ("idp", "bkn-siasn"));
    assert_eq!(issuer.fetch_count(), 1);

    // A new key published under a kid is found by the one refresh its first token triggers.
    let second = key();
    std::fs::write(&file, json!({"keys": [jwk(&first, None), jwk(&second, Some("k2"))]}).to_string()).unwrap();
    verifier.verify(&sign(&second, Some("k2"), &claims())).await.unwrap();
    assert_eq!(issuer.fetch_count(), 2);

    // Within the cool-down, another unknown kid does not read the set again, even if it is there now.
    let third = key();
    std::fs::write(&file, json!({"keys": [jwk(&third, Some("k3"))]}).to_string()).unwrap();
    let refused = verifier.verify(&sign(&third, Some("k3"), &claims())).await.unwrap_err();
    assert_eq!(refused, TokenError::UnknownKey { issuer: "idp".into() });
    assert_eq!(issuer.fetch_count(), 2);

    // With two keys of the algorithm a token must name its kid.
    let refused = verifier.verify(&sign(&first, None, &claims())).await.unwrap_err();
    assert_eq!(refused, TokenError::UnknownKey { issuer: "idp".into() });
    // A subject claim that is not a string is refused.
    let mut odd = claims();
    odd["client_id"] = json!(42);
    assert!(matches!(verifier.verify(&sign(&second, Some("k2"), &odd)).await, Err(TokenError::Malformed { .. })));
}

#[tokio::test]
async fn an_unreadable_key_set_fails_closed() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("missing.json");
    let (verifier, _) = verifier(&file).await;
    let refused = verifier.verify(&sign(&key(), None, &claims())).await.unwrap_err();
    assert_eq!(refused, TokenError::KeysUnavailable { issuer: "idp".into() });
}

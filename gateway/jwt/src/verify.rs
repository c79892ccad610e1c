//! One bearer token → the caller it names, or the reason it is refused. In order: three base64url segments;
//! a JOSE header whose `alg` is RS256 or ES256 (`none`, `HS256` and the rest are refused before any key is
//! touched) without `crit` extensions; the issuer found by the `iss` claim (read unverified only to pick the key
//! set) and the algorithm among that issuer's; the key by `kid` (one refresh on an unknown `kid`, see
//! [`crate::issuer`]) and the key's own algorithm equal to the header's (no key confusion); then the signature,
//! `exp` and `nbf` within the issuer's `max_clock_skew`, `iss`, and `aud` among the configured audiences; last
//! the subject claim. No error carries any part of the token.

use std::collections::HashSet;
use std::sync::Arc;

use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;

use crate::issuer::Lookup;
use crate::TokenVerifier;
use penghubung_types::config::{JwtAlgorithm, JwtIssuerConfig};

/// A verified token's caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCaller {
    /// The `[[jwt_issuers]]` name.
    pub issuer: Arc<str>,
    /// The subject claim's value.
    pub subject: String,
}

/// Why a token is refused. Each has a stable problem code (mapped once, in the pipeline's `error.rs`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("this listener takes a client certificate or an `Authorization: Bearer` token; the request has neither")]
    Missing,
    #[error("the bearer token is not a well-formed signed JWT: {reason}")]
    Malformed { reason: &'static str },
    #[error("the bearer token is signed with {alg}, which is not accepted (only the issuer's configured RS256/ES256)")]
    AlgorithmNotAllowed { alg: &'static str },
    #[error("the bearer token's issuer (iss) is not a trusted issuer")]
    UnknownIssuer,
    #[error("no signing key of issuer `{issuer}` matches the bearer token's key id (kid), also after refreshing the issuer's keys")]
    UnknownKey { issuer: Arc<str> },
    #[error("the bearer token's signature does not verify")]
    BadSignature,
    #[error("the bearer token has expired")]
    Expired,
    #[error("the bearer token is not valid yet (nbf)")]
    NotYetValid,
    #[error("the bearer token is not meant for this gateway (aud)")]
    WrongAudience,
    #[error("the signing keys of issuer `{issuer}` cannot be fetched now; try again later")]
    KeysUnavailable { issuer: Arc<str> },
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// The one claim read before the signature is checked, to pick the issuer's key set.
#[derive(Deserialize)]
struct UnverifiedIssuer {
    iss: String,
}

/// The claims read after verification.
type Claims = serde_json::Map<String, serde_json::Value>;

/// The JOSE algorithm names a refusal may echo (a caller's other text is never echoed).
const KNOWN_ALGORITHMS: &[&str] = &[
    "none", "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512",
    "EdDSA",
];

fn decode_segment<T: for<'de> Deserialize<'de>>(segment: &str, what: &'static str) -> Result<T, TokenError> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| TokenError::Malformed { reason: what })?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed { reason: what })
}

/// See the module documentation.
pub(crate) async fn verify(verifier: &TokenVerifier, token: &str) -> Result<VerifiedCaller, TokenError> {
    let mut segments = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (segments.next(), segments.next(), segments.next(), segments.next())
    else {
        return Err(TokenError::Malformed { reason: "a JWS has three segments (header.payload.signature)" });
    };
    let header: Header = decode_segment(header, "the header is not base64url JSON with an `alg`")?;
    let algorithm = match header.alg.as_str() {
        "RS256" => JwtAlgorithm::RS256,
        "ES256" => JwtAlgorithm::ES256,
        other => {
            let alg = KNOWN_ALGORITHMS.iter().find(|known| **known == other).copied().unwrap_or("an unknown algorithm");
            return Err(TokenError::AlgorithmNotAllowed { alg });
        }
    };
    if payload.is_empty() || signature.is_empty() {
        return Err(TokenError::Malformed { reason: "a segment is empty" });
    }
    if header.crit.is_some() {
        return Err(TokenError::Malformed { reason: "the header names critical extensions (crit), none is supported" });
    }
    let UnverifiedIssuer { iss } = decode_segment(payload, "the payload is not base64url JSON with a string `iss`")?;
    let issuer = verifier.issuer(&iss).ok_or(TokenError::UnknownIssuer)?;
    if !issuer.settings.algorithms.contains(&algorithm) {
        return Err(TokenError::AlgorithmNotAllowed { alg: algorithm.name() });
    }
    let kid = header.kid.as_deref();
    let keys = match issuer.keys() {
        Lookup::Keys(keys) if keys.keys.find(kid, algorithm).is_some() => keys,
        _ => match issuer.refresh_for_unknown_key(kid).await {
            Lookup::Keys(keys) => keys,
            Lookup::Unavailable => return Err(TokenError::KeysUnavailable { issuer: Arc::clone(&issuer.name) }),
        },
    };
    let key =
        keys.keys.find(kid, algorithm).ok_or_else(|| TokenError::UnknownKey { issuer: Arc::clone(&issuer.name) })?;
    if key.algorithm != algorithm {
        // The header asks for one algorithm and the key is of another: never let a token choose.
        return Err(TokenError::AlgorithmNotAllowed { alg: algorithm.name() });
    }
    let claims = jsonwebtoken::decode::<Claims>(token, &key.key, issuer.validation(algorithm))
        .map_err(|e| token_error(e.kind()))?
        .claims;
    let subject = match claims.get(&issuer.settings.subject_claim) {
        Some(serde_json::Value::String(subject)) if !subject.is_empty() => subject.clone(),
        _ => return Err(TokenError::Malformed { reason: "the subject claim is missing or not a string" }),
    };
    Ok(VerifiedCaller { issuer: Arc::clone(&issuer.name), subject })
}

/// The claim checks of an issuer for a token signed with `algorithm` (built once per issuer, see
/// [`crate::IssuerKeys::validation`]).
pub(crate) fn validation(settings: &JwtIssuerConfig, algorithm: JwtAlgorithm) -> Validation {
    let mut validation = Validation::new(match algorithm {
        JwtAlgorithm::RS256 => Algorithm::RS256,
        JwtAlgorithm::ES256 => Algorithm::ES256,
    });
    validation.required_spec_claims = ["exp", "iss", "aud"].into_iter().map(String::from).collect();
    validation.leeway = settings.max_clock_skew.0.as_secs();
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.validate_aud = true;
    validation.aud = Some(settings.audiences.iter().cloned().collect::<HashSet<_>>());
    validation.iss = Some(HashSet::from([settings.issuer.clone()]));
    validation
}

fn token_error(kind: &ErrorKind) -> TokenError {
    match kind {
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::InvalidAudience => TokenError::WrongAudience,
        ErrorKind::InvalidIssuer => TokenError::UnknownIssuer,
        ErrorKind::InvalidSignature | ErrorKind::InvalidEcdsaKey | ErrorKind::InvalidRsaKey(_) => {
            TokenError::BadSignature
        }
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName | ErrorKind::MissingAlgorithm => {
            TokenError::AlgorithmNotAllowed { alg: "an algorithm other than the key's" }
        }
        ErrorKind::MissingRequiredClaim(claim) => TokenError::Malformed {
            reason: match claim.as_str() {
                "exp" => "the token has no expiry (exp)",
                "aud" => "the token has no audience (aud)",
                _ => "the token lacks a required claim",
            },
        },
        _ => TokenError::Malformed { reason: "the token could not be decoded" },
    }
}

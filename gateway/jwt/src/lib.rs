//! Bearer tokens of national callers (OAuth2 access tokens as JWTs, RFC 7519/7515): the key sets of the
//! configured issuers and the verification of a token into a caller.
//!
//! - [`keys`]: a JSON Web Key Set read into verification keys (RSA ≥ 2048 bits for RS256, P-256 for ES256).
//! - [`issuer`]: one trusted issuer: its settings, its key set behind an `ArcSwap` (the request path reads it
//!   without a lock), and the refresh (periodic; on an unknown `kid` single-flight with a cool-down, so that no
//!   caller can make the gateway hammer the JWKS endpoint; keys nobody could confirm for `max_key_age` are
//!   dropped, and then tokens are refused: fail closed).
//! - [`fetch`]: where a key set comes from (an HTTPS URL fetched with hyper, or a file).
//! - [`verify`]: one token → [`VerifiedCaller`] or a [`TokenError`]: only the issuer's configured asymmetric
//!   algorithms, the key's own algorithm (no key confusion), `iss`, `aud`, `exp`/`nbf` within the bounded skew.
//!
//! A token is never logged, never put in an error's text, never kept.
#![forbid(unsafe_code)]

pub mod fetch;
pub mod issuer;
pub mod keys;
pub mod verify;

use std::collections::HashMap;
use std::sync::Arc;

pub use issuer::IssuerKeys;
pub use verify::{TokenError, VerifiedCaller};

use penghubung_tls::UpstreamTls;
use penghubung_types::config::Config;

/// Every configured issuer, by the `iss` of its tokens.
#[derive(Debug)]
pub struct TokenVerifier {
    by_iss: HashMap<Box<str>, Arc<IssuerKeys>>,
}

impl TokenVerifier {
    /// The issuers of `[[jwt_issuers]]`, each with its key set fetched once (a failed fetch is logged and the
    /// issuer's tokens are refused until one succeeds), and their periodic refresh running. `None` without any
    /// issuer; an error for an issuer whose key set has no usable location.
    pub async fn start(config: &Config, upstream_tls: &UpstreamTls) -> Result<Option<Arc<TokenVerifier>>, String> {
        if config.jwt_issuers.is_empty() {
            return Ok(None);
        }
        let client = fetch::http_client(upstream_tls);
        let mut by_iss = HashMap::new();
        for settings in &config.jwt_issuers {
            let source = fetch::JwksSource::from_config(settings, config, &client)?;
            let keys = Arc::new(IssuerKeys::new(settings, source));
            keys.refresh("start").await;
            issuer::spawn_refresh(Arc::downgrade(&keys));
            by_iss.insert(settings.issuer.as_str().into(), keys);
        }
        Ok(Some(Arc::new(TokenVerifier { by_iss })))
    }

    /// A verifier over issuers built elsewhere (tests).
    pub fn from_issuers(issuers: impl IntoIterator<Item = Arc<IssuerKeys>>) -> TokenVerifier {
        TokenVerifier { by_iss: issuers.into_iter().map(|i| (i.settings.issuer.as_str().into(), i)).collect() }
    }

    /// The issuer whose tokens carry `iss`.
    pub fn issuer(&self, iss: &str) -> Option<&Arc<IssuerKeys>> {
        self.by_iss.get(iss)
    }

    /// Verifies the token of an `Authorization: Bearer` header.
    pub async fn verify(&self, token: &str) -> Result<VerifiedCaller, TokenError> {
        verify::verify(self, token).await
    }
}

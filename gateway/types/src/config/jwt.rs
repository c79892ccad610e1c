//! Inbound national callers authenticated by OAuth2/JWT bearer tokens: the `[[jwt_issuers]]` the gateway trusts
//! and a listener's `client_certificate` mode. Checked once at load time; the tokens themselves are verified by
//! `penghubung-jwt`.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::units::HumanDuration;

/// The largest `max_clock_skew` the config accepts: more would let an expired token live on.
pub const MAX_CLOCK_SKEW_CEILING: Duration = Duration::from_secs(300);

/// Whether a TLS listener requires a client certificate.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ClientCertificateMode {
    /// Every connection presents a certificate (the handshake fails without one).
    #[default]
    Required,
    /// A connection may come without a certificate; its requests must then carry `Authorization: Bearer <jwt>`
    /// from a configured `[[jwt_issuers]]`. With a certificate, the certificate decides, as on `required`.
    Optional,
}

/// A signature algorithm a token issuer may use. Only asymmetric ones exist here: a shared-secret algorithm
/// (`HS256`) or `none` cannot even be configured.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Hash)]
pub enum JwtAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256, RSA keys of 2048 to 8192 bits.
    RS256,
    /// ECDSA on P-256 with SHA-256.
    ES256,
}

impl JwtAlgorithm {
    /// The JOSE name (`alg`).
    pub fn name(self) -> &'static str {
        match self {
            JwtAlgorithm::RS256 => "RS256",
            JwtAlgorithm::ES256 => "ES256",
        }
    }
}

/// One trusted token issuer (e.g. the national SPLP forwarding calls with its JWTs).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JwtIssuerConfig {
    /// Short name that `Client` documents use in `[[identity.jwt]] issuer = "..."`.
    pub name: String,
    /// The exact `iss` claim of its tokens.
    pub issuer: String,
    /// Tokens must name one of these in `aud`.
    pub audiences: Vec<String>,
    /// Where its JSON Web Key Set is served (`https://...`, or `http://` on loopback only).
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// Or a local JWKS file (relative to the config file), re-read on refresh.
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    /// The algorithms accepted from this issuer (`RS256`, `ES256`).
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<JwtAlgorithm>,
    /// Tolerated clock difference for `exp` and `nbf` (at most 5 minutes).
    #[serde(default = "default_skew")]
    pub max_clock_skew: HumanDuration,
    /// The claim that names the caller, matched against `[[identity.jwt]] subject`.
    #[serde(default = "default_subject_claim")]
    pub subject_claim: String,
    /// The key set is fetched again this often (and on a token with an unknown `kid`).
    #[serde(default = "default_refresh_interval")]
    pub refresh_interval: HumanDuration,
    /// At most one fetch per this period for tokens with an unknown `kid`, whatever callers send.
    #[serde(default = "default_refresh_cooldown")]
    pub refresh_cooldown: HumanDuration,
    /// Keys not confirmed by a successful fetch for this long are dropped (tokens are then refused: fail closed).
    #[serde(default = "default_max_key_age")]
    pub max_key_age: HumanDuration,
}

fn default_algorithms() -> Vec<JwtAlgorithm> {
    vec![JwtAlgorithm::RS256, JwtAlgorithm::ES256]
}
fn default_skew() -> HumanDuration {
    HumanDuration(Duration::from_secs(60))
}
fn default_subject_claim() -> String {
    "sub".to_string()
}
fn default_refresh_interval() -> HumanDuration {
    HumanDuration(Duration::from_secs(15 * 60))
}
fn default_refresh_cooldown() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}
fn default_max_key_age() -> HumanDuration {
    HumanDuration(Duration::from_secs(24 * 3600))
}

impl JwtIssuerConfig {
    /// Every problem of this issuer's settings, as messages.
    pub fn problems(&self) -> Vec<String> {
        let mut found = Vec::new();
        let name = &self.name;
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            found.push(format!("jwt issuer name `{name}` must be letters, digits, `-` or `_`"));
        }
        if self.issuer.trim().is_empty() {
            found.push(format!("jwt issuer `{name}`: `issuer` (the tokens' iss) must not be empty"));
        }
        if self.audiences.is_empty() || self.audiences.iter().any(|a| a.trim().is_empty()) {
            found.push(format!("jwt issuer `{name}`: `audiences` needs at least one non-empty audience"));
        }
        match (&self.jwks_url, &self.jwks_file) {
            (Some(_), Some(_)) | (None, None) => {
                found.push(format!("jwt issuer `{name}`: set exactly one of `jwks_url` and `jwks_file`"))
            }
            (Some(url), None) => {
                if let Some(problem) = jwks_url_problem(url) {
                    found.push(format!("jwt issuer `{name}`: jwks_url `{url}` {problem}"));
                }
            }
            (None, Some(_)) => {}
        }
        if self.algorithms.is_empty() {
            found.push(format!("jwt issuer `{name}`: `algorithms` needs at least one of RS256, ES256"));
        }
        if self.max_clock_skew.0 > MAX_CLOCK_SKEW_CEILING {
            found.push(format!("jwt issuer `{name}`: max_clock_skew must be at most 5m"));
        }
        if self.subject_claim.trim().is_empty() {
            found.push(format!("jwt issuer `{name}`: subject_claim must not be empty"));
        }
        if self.refresh_interval.0.is_zero() || self.refresh_cooldown.0.is_zero() || self.max_key_age.0.is_zero() {
            found.push(format!(
                "jwt issuer `{name}`: refresh_interval, refresh_cooldown and max_key_age must be above zero"
            ));
        }
        found
    }
}

/// Why a JWKS URL is not acceptable: keys must come over HTTPS, or plain HTTP from this host only.
fn jwks_url_problem(url: &str) -> Option<&'static str> {
    let Some((scheme, rest)) = url.split_once("://") else { return Some("is not a URL") };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(host, _port)| host),
    };
    if host.is_empty() || authority.contains('@') || url.contains(char::is_whitespace) {
        return Some("is not a URL with a host");
    }
    match scheme {
        "https" => None,
        "http" if matches!(host, "127.0.0.1" | "localhost" | "::1") => None,
        "http" => Some("must be https (plain http only on loopback)"),
        _ => Some("must be an https:// URL"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwks_urls_must_be_https_or_loopback() {
        assert_eq!(jwks_url_problem("https://splp.example.go.id/jwks"), None);
        assert_eq!(jwks_url_problem("http://127.0.0.1:9000/jwks"), None);
        assert!(jwks_url_problem("http://splp.example.go.id/jwks").is_some());
        assert!(jwks_url_problem("ftp://x/jwks").is_some());
        assert!(jwks_url_problem("not a url").is_some());
    }
}

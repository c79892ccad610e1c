//! Phase 1, **identify**: the caller → a registered, enabled client, re-checked on every request so that a
//! revocation or a disabled client bites on connections that are already open.
//!
//! - With a certificate, the certificate decides (also on a listener that takes bearer tokens): it must not be
//!   revoked by the current CRLs and must be bound to a registered client.
//! - Without one, on a listener with `client_certificate = "optional"`, the request must carry
//!   `Authorization: Bearer <jwt>` from a trusted issuer ([`penghubung_jwt`]); the token's issuer and subject
//!   are bound to a client by its `[[identity.jwt]]`. This path is boxed where it is awaited (only such callers
//!   pay for it).
//! - Without either, nobody is identified (whether that may go on is the authorize phase's question, or
//!   discovery's).
//!
//! On a listener that takes bearer tokens the caller's `Authorization` header is removed once identify has run,
//! whoever the caller is: a token for the gateway never reaches an upstream.

use std::sync::Arc;

use http::header::AUTHORIZATION;
use http::HeaderMap;

use crate::error::GatewayError;
use penghubung_jwt::TokenError;
use penghubung_snapshot::{ClientEntry, Snapshot};
use penghubung_tls::identity::PeerCertificate;

use crate::shared::Shared;

/// The client behind the connection's certificate, or `None` without a certificate. Authentication, per
/// request: the certificate must not be revoked by the current CRLs, must be bound to a registered client, and
/// that client must be enabled.
pub(super) fn identify<'s>(
    shared: &Shared,
    snapshot: &'s Snapshot,
    certificate: Option<&PeerCertificate>,
) -> Result<Option<&'s Arc<ClientEntry>>, GatewayError> {
    let Some(certificate) = certificate else {
        return Ok(None);
    };
    if shared.tls.as_ref().is_some_and(|tls| tls.current().is_revoked(certificate)) {
        return Err(GatewayError::CertificateRevoked);
    }
    let client = snapshot
        .client_for(certificate)
        .ok_or_else(|| GatewayError::UnknownClient { fingerprint: certificate.fingerprint.clone() })?;
    enabled(client)
}

/// The client behind the request's bearer token (a caller without a certificate on a listener that takes
/// tokens): the token verified by the issuer's keys, its subject bound to a registered, enabled client.
pub(super) async fn identify_by_token<'s>(
    shared: &Shared,
    snapshot: &'s Snapshot,
    headers: &HeaderMap,
) -> Result<Option<&'s Arc<ClientEntry>>, GatewayError> {
    let verifier = shared.tokens.as_ref().ok_or(TokenError::Missing)?;
    let token = bearer_token(headers)?;
    let caller = verifier.verify(token).await?;
    let client = snapshot
        .client_for_token(&caller.issuer, &caller.subject)
        .ok_or(GatewayError::UnknownTokenSubject { issuer: caller.issuer })?;
    enabled(client)
}

/// Removes the caller's `Authorization` (listeners that take bearer tokens: the token was for the gateway).
pub(super) fn strip_credentials(headers: &mut HeaderMap) {
    headers.remove(AUTHORIZATION);
}

fn enabled(client: &Arc<ClientEntry>) -> Result<Option<&Arc<ClientEntry>>, GatewayError> {
    if !client.doc.enabled {
        return Err(GatewayError::ClientDisabled { client: client.doc.id.clone() });
    }
    Ok(Some(client))
}

/// The token of the one `Authorization: Bearer <token>` header (RFC 6750 §2.1: the scheme is case-insensitive,
/// the token is token68).
fn bearer_token(headers: &HeaderMap) -> Result<&str, TokenError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(match headers.contains_key(AUTHORIZATION) {
            true => TokenError::Malformed { reason: "the request has more than one Authorization header" },
            false => TokenError::Missing,
        });
    };
    let value = value.to_str().map_err(|_| TokenError::Malformed { reason: "Authorization is not visible ASCII" })?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(TokenError::Missing);
    }
    let token = token.trim_matches(' ');
    let token68 = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~' | '+' | '/' | '=');
    if token.is_empty() || !token.chars().all(token68) {
        return Err(TokenError::Malformed { reason: "the Bearer credentials are not a token68" });
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(values: &[&'static str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(AUTHORIZATION, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn bearer_tokens_are_read_from_one_authorization_header() {
        assert_eq!(bearer_token(&headers(&["Bearer a.b.c"])), Ok("a.b.c"));
        assert_eq!(bearer_token(&headers(&["bearer  a.b.c"])), Ok("a.b.c"));
        assert_eq!(bearer_token(&headers(&[])), Err(TokenError::Missing));
        assert_eq!(bearer_token(&headers(&["Basic dXNlcjpwdw=="])), Err(TokenError::Missing));
        assert!(matches!(bearer_token(&headers(&["Bearer a.b.c", "Bearer d.e.f"])), Err(TokenError::Malformed { .. })));
        assert!(matches!(bearer_token(&headers(&["Bearer a b"])), Err(TokenError::Malformed { .. })));
        assert!(matches!(bearer_token(&headers(&["Bearer"])), Err(TokenError::Malformed { .. })));
    }
}

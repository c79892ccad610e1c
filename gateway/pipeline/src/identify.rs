//! Phase 1, **identify**: the connection's client certificate → a registered, enabled client, re-checked on
//! every request so that a revocation or a disabled client bites on connections that are already open. A
//! connection without a certificate identifies nobody (whether that may go on is the authorize phase's
//! question, or discovery's).

use std::sync::Arc;

use crate::error::GatewayError;
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
    if !client.doc.enabled {
        return Err(GatewayError::ClientDisabled { client: client.doc.id.clone() });
    }
    Ok(Some(client))
}

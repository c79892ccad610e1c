//! TLS: the mTLS data plane and the upstream side.
//!
//! - [`material`]: the server's certificate, trusted client CAs and CRLs, loaded into a rustls `ServerConfig`
//!   (TLS 1.2 and 1.3 only, rustls' safe suites, ALPN `h2` + `http/1.1`, client certificate REQUIRED; a second
//!   config where it is optional, for listeners that take bearer tokens, verifies a presented one the same) and
//!   swapped atomically when the files change; a broken file keeps the previous material serving.
//! - [`identity`]: what a verified client certificate says (SPIFFE URI SANs, subject DN, SHA-256
//!   fingerprint), parsed once per connection and matched against `Client` documents per request.
//! - [`dn`]: distinguished names as parsed RDN sequences (from certificates and from RFC 4514 text), compared
//!   as RFC 4518/5280 say.
//! - [`UpstreamTls`]: verification of HTTPS upstreams against the configured roots, optionally presenting a
//!   client certificate to the upstream.
#![forbid(unsafe_code)]

pub mod dn;
pub mod identity;
pub mod material;

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::RootCertStore;

use penghubung_types::config::Config;

/// Where Debian and most distributions keep the system CA bundle.
const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The crypto provider used everywhere.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The only protocol versions Penghubung speaks.
pub static PROTOCOL_VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// Reads every certificate of a PEM file.
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let data = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs: Result<Vec<_>, _> = rustls_pemfile::certs(&mut data.as_slice()).collect();
    let certs = certs.map_err(|e| format!("{} is not valid PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no certificate", path.display()));
    }
    Ok(certs)
}

/// Reads the first private key of a PEM file.
pub fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let data = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    rustls_pemfile::private_key(&mut data.as_slice())
        .map_err(|e| format!("{} is not valid PEM: {e}", path.display()))?
        .ok_or_else(|| format!("{} holds no private key", path.display()))
}

/// Reads every CRL of a PEM file.
pub fn read_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, String> {
    let data = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let crls: Result<Vec<_>, _> = rustls_pemfile::crls(&mut data.as_slice()).collect();
    crls.map_err(|e| format!("{} is not valid PEM: {e}", path.display()))
}

/// Trust for HTTPS upstreams: the roots, and the default client config built from them.
#[derive(Debug, Clone)]
pub struct UpstreamTls {
    roots: Arc<RootCertStore>,
    default: rustls::ClientConfig,
}

impl UpstreamTls {
    /// Roots from `upstream.ca_files` plus the system bundle when `upstream.trust_system_roots`.
    pub fn from_config(config: &Config) -> Result<Self, String> {
        let mut roots = RootCertStore::empty();
        if config.upstream.trust_system_roots {
            if let Ok(certs) = read_certificates(Path::new(SYSTEM_BUNDLE)) {
                roots.add_parsable_certificates(certs);
            }
        }
        for file in &config.upstream.ca_files {
            let path = config.resolve(file);
            for cert in read_certificates(&path)? {
                roots.add(cert).map_err(|e| format!("{}: {e}", path.display()))?;
            }
        }
        let roots = Arc::new(roots);
        let default = Self::builder()?.with_root_certificates(Arc::clone(&roots)).with_no_client_auth();
        Ok(Self { roots, default })
    }

    fn builder() -> Result<rustls::ConfigBuilder<rustls::ClientConfig, rustls::WantsVerifier>, String> {
        rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(PROTOCOL_VERSIONS)
            .map_err(|e| e.to_string())
    }

    /// The client config without a client certificate.
    pub fn default_config(&self) -> &rustls::ClientConfig {
        &self.default
    }

    /// A client config that presents `cert_file`/`key_file` to the upstream (mTLS to the OPD's backend).
    pub fn with_client_certificate(&self, cert_file: &Path, key_file: &Path) -> Result<rustls::ClientConfig, String> {
        let certs = read_certificates(cert_file)?;
        let key = read_private_key(key_file)?;
        Self::builder()?
            .with_root_certificates(Arc::clone(&self.roots))
            .with_client_auth_cert(certs, key)
            .map_err(|e| format!("upstream client certificate {}: {e}", cert_file.display()))
    }
}

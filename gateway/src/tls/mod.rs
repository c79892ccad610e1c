//! TLS material. For now: the client config that verifies HTTPS upstreams against the configured roots
//! (`upstream.ca_files`, plus the system bundle when `upstream.trust_system_roots`). TLS 1.2 and 1.3 only,
//! rustls' safe default suites, ring as the crypto provider.

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;

use crate::config::Config;

/// Where Debian and most distributions keep the system CA bundle.
const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The crypto provider used everywhere.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads every certificate of a PEM file.
pub fn read_certificates(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let data = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs: Result<Vec<_>, _> = rustls_pemfile::certs(&mut data.as_slice()).collect();
    let certs = certs.map_err(|e| format!("{} is not valid PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no certificate", path.display()));
    }
    Ok(certs)
}

/// The rustls client config for upstream connections.
pub fn upstream_client_config(config: &Config) -> Result<rustls::ClientConfig, String> {
    let mut roots = RootCertStore::empty();
    if config.upstream.trust_system_roots {
        if let Ok(certs) = read_certificates(std::path::Path::new(SYSTEM_BUNDLE)) {
            roots.add_parsable_certificates(certs);
        }
    }
    for file in &config.upstream.ca_files {
        let path = config.resolve(file);
        for cert in read_certificates(&path)? {
            roots
                .add(cert)
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?;
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

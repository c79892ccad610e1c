//! Certificates for the load harness's mTLS mode (`--mode mtls`), made with the gateway's own built-in CA
//! ([`penghubung::ca::CertificateAuthority`]) in a temporary directory that lives as long as the [`Pki`]:
//!
//! | file | what |
//! |---|---|
//! | `ca/ca.crt`, `ca/crl.pem` | the CA (trust domain `bench.local`, organisation `Bench`) and its empty CRL |
//! | `server.crt`, `server.key` | the server certificate for `127.0.0.1` and `localhost`, used by every proxy |
//! | `server.pem` | certificate and key in one file, as haproxy's `crt` wants them |
//! | `client.crt`, `client.key` | the load generator's certificate, URI SAN `spiffe://bench.local/opd/bench/app/loadgen` |
//!
//! [`Pki::client_config`] builds the rustls client config the TLS load generators and readiness probes use:
//! the CA as the only root, the client certificate, ALPN `http/1.1`, the `ring` provider, TLS 1.3 preferred
//! (1.2 allowed), and session resumption on or off. Measures nothing by itself.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use penghubung::ca::{CertificateAuthority, Validity};
use penghubung::tls::{read_certificates, read_private_key};
use rustls::client::Resumption;
use rustls::RootCertStore;
use tempfile::TempDir;

/// SPIFFE trust domain of the bench CA.
pub const TRUST_DOMAIN: &str = "bench.local";
/// OPD of the load generator's client certificate (the harness's store already has `opds/bench.toml`).
pub const CLIENT_OPD: &str = "bench";
/// Application name of the load generator's client certificate.
pub const CLIENT_APP: &str = "loadgen";

/// The bench PKI: every file the proxies and the load generator need. The directory is removed on drop.
pub struct Pki {
    dir: TempDir,
    pub ca_cert: PathBuf,
    pub crl: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// `server.crt` followed by `server.key` (haproxy).
    pub server_pem: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// The client certificate's URI SAN.
    pub client_spiffe: String,
}

impl Pki {
    /// Creates the CA, the server and the client certificate in a new temporary directory.
    pub fn generate() -> Result<Pki, String> {
        let dir = tempfile::Builder::new()
            .prefix("penghubung-load-pki-")
            .tempdir()
            .map_err(|e| format!("pki: cannot create a temporary directory: {e}"))?;
        let ca_dir = dir.path().join("ca");
        let ca = CertificateAuthority::init(&ca_dir, TRUST_DOMAIN, "Bench").map_err(|e| format!("pki: CA: {e}"))?;
        let path = |name: &str| dir.path().join(name);
        let (server_cert, server_key, server_pem) = (path("server.crt"), path("server.key"), path("server.pem"));
        let (client_cert, client_key) = (path("client.crt"), path("client.key"));

        let server = ca
            .issue_server(&["127.0.0.1".into(), "localhost".into()], Validity::days(30))
            .map_err(|e| format!("pki: server certificate: {e}"))?;
        server.write(&server_cert, &server_key).map_err(|e| format!("pki: {e}"))?;
        penghubung::ca::write_file(&server_pem, format!("{}{}", server.cert_pem, server.key_pem).as_bytes(), 0o600)
            .map_err(|e| format!("pki: {e}"))?;

        let client = ca
            .issue_client(CLIENT_OPD, CLIENT_APP, Validity::days(30))
            .map_err(|e| format!("pki: client certificate: {e}"))?;
        client.write(&client_cert, &client_key).map_err(|e| format!("pki: {e}"))?;
        let client_spiffe = client.spiffe.clone().unwrap_or_else(|| ca.spiffe_id(CLIENT_OPD, CLIENT_APP));

        Ok(Pki {
            ca_cert: ca.cert_path(),
            crl: ca.crl_path(),
            dir,
            server_cert,
            server_key,
            server_pem,
            client_cert,
            client_key,
            client_spiffe,
        })
    }

    /// The directory holding every file.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The `Client` document that binds the load generator's certificate in Penghubung's store
    /// (`clients/bench/loadgen.toml`).
    pub fn client_document(&self) -> String {
        format!(
            "id = \"{CLIENT_OPD}/{CLIENT_APP}\"\nopd = \"{CLIENT_OPD}\"\nname = \"{CLIENT_APP}\"\n\
             clearance = \"terbuka\"\n\n[identity]\nspiffe = [\"{}\"]\n",
            self.client_spiffe
        )
    }

    /// A client config that trusts the bench CA but presents NO client certificate: every proxy must refuse
    /// it (the harness checks that before measuring).
    pub fn client_config_without_certificate(&self) -> Result<Arc<rustls::ClientConfig>, String> {
        let mut config = Self::builder()?.with_root_certificates(self.roots()?).with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    fn builder() -> Result<rustls::ConfigBuilder<rustls::ClientConfig, rustls::WantsVerifier>, String> {
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("client TLS config: {e}"))
    }

    fn roots(&self) -> Result<RootCertStore, String> {
        let mut roots = RootCertStore::empty();
        for cert in read_certificates(&self.ca_cert)? {
            roots.add(cert).map_err(|e| format!("{}: {e}", self.ca_cert.display()))?;
        }
        Ok(roots)
    }

    /// A client config presenting the load generator's certificate and trusting only the bench CA. With
    /// `resumption` false every connection makes a full handshake (no tickets, no session ids).
    pub fn client_config(&self, resumption: bool) -> Result<Arc<rustls::ClientConfig>, String> {
        let chain = read_certificates(&self.client_cert)?;
        let key = read_private_key(&self.client_key)?;
        let mut config = Self::builder()?
            .with_root_certificates(self.roots()?)
            .with_client_auth_cert(chain, key)
            .map_err(|e| format!("client certificate {}: {e}", self.client_cert.display()))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        if !resumption {
            config.resumption = Resumption::disabled();
        }
        Ok(Arc::new(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bench_pki_has_every_file_and_the_spiffe_id() {
        let pki = Pki::generate().unwrap();
        for file in [&pki.ca_cert, &pki.crl, &pki.server_cert, &pki.server_key, &pki.server_pem, &pki.client_cert] {
            assert!(file.is_file(), "{} is missing", file.display());
        }
        assert_eq!(pki.client_spiffe, "spiffe://bench.local/opd/bench/app/loadgen");
        assert!(pki.client_document().contains("spiffe = [\"spiffe://bench.local/opd/bench/app/loadgen\"]"));
        let pem = std::fs::read_to_string(&pki.server_pem).unwrap();
        assert!(pem.contains("BEGIN CERTIFICATE") && pem.contains("PRIVATE KEY"));
        assert!(pki.client_config(false).is_ok());
        assert!(pki.client_config_without_certificate().is_ok());
    }
}

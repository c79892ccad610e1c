//! The admin listener's TLS: TLS 1.2+ with the gateway's provider, the server certificate (default `[tls]`'s),
//! and client certificates from the operators' CA **requested but not required** (a request without one is
//! answered 401 by the API, which leaves room for the console's login). The gateway's CRLs (`[tls]
//! crl_files`) are honoured. The files are re-read when they change (checked per new connection: the admin
//! plane sees few), and a broken file keeps the previous material serving.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use penghubung_tls::{provider, read_certificates, read_crls, read_private_key, PROTOCOL_VERSIONS};
use penghubung_types::config::Config;
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;

/// The files the admin listener's TLS is made of.
#[derive(Clone, Debug)]
struct Files {
    cert: PathBuf,
    key: PathBuf,
    operator_ca: PathBuf,
    crls: Vec<PathBuf>,
}

impl Files {
    /// Changes whenever a file's size or modification time changes.
    fn stamp(&self) -> u64 {
        let mut h = DefaultHasher::new();
        for path in [&self.cert, &self.key, &self.operator_ca].into_iter().chain(&self.crls) {
            path.hash(&mut h);
            if let Ok(m) = std::fs::metadata(path) {
                m.len().hash(&mut h);
                m.modified().ok().hash(&mut h);
            }
        }
        h.finish()
    }

    fn load(&self) -> Result<rustls::ServerConfig, String> {
        let chain = read_certificates(&self.cert)?;
        let key = read_private_key(&self.key)?;
        let mut roots = RootCertStore::empty();
        for cert in read_certificates(&self.operator_ca)? {
            roots.add(cert).map_err(|e| format!("{}: {e}", self.operator_ca.display()))?;
        }
        let mut crls = Vec::new();
        for path in self.crls.iter().filter(|p| p.is_file()) {
            crls.extend(read_crls(path)?);
        }
        let mut verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider()).allow_unauthenticated();
        if !crls.is_empty() {
            verifier = verifier.with_crls(crls).allow_unknown_revocation_status();
        }
        let verifier = verifier.build().map_err(|e| format!("operator certificate verifier: {e}"))?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(PROTOCOL_VERSIONS)
            .map_err(|e| e.to_string())?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .map_err(|e| format!("{} / {}: {e}", self.cert.display(), self.key.display()))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

/// The admin listener's current TLS configuration.
pub struct AdminTls {
    files: Files,
    current: Mutex<(u64, Arc<rustls::ServerConfig>)>,
}

impl AdminTls {
    /// Loads the files `[admin]` names (or `[tls]`'s); every problem is an error.
    pub fn load(config: &Config) -> Result<AdminTls, String> {
        let paths = config.admin_tls_files()?;
        let crls = config.tls.iter().flat_map(|t| &t.crl_files).map(|p| config.resolve(p)).collect();
        let files = Files { cert: paths.cert_file, key: paths.key_file, operator_ca: paths.operator_ca_file, crls };
        let stamp = files.stamp();
        let server_config = Arc::new(files.load()?);
        Ok(AdminTls { files, current: Mutex::new((stamp, server_config)) })
    }

    /// The acceptor for a new connection, with the files re-read first when they changed.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        let stamp = self.files.stamp();
        if stamp != current.0 {
            match self.files.load() {
                Ok(config) => {
                    *current = (stamp, Arc::new(config));
                    tracing::info!(target: "penghubung::admin", "admin TLS material reloaded");
                }
                Err(e) => {
                    // Keep serving with what worked; try again when the files change once more.
                    current.0 = stamp;
                    tracing::error!(target: "penghubung::admin", error = %e, "admin TLS material not reloaded");
                }
            }
        }
        tokio_rustls::TlsAcceptor::from(Arc::clone(&current.1))
    }
}

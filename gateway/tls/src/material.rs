//! The data plane's TLS material: server certificate and key, the CAs trusted for client certificates, and
//! CRLs. Compiled into a rustls `ServerConfig` that requires a client certificate (verified against the CAs,
//! its validity and the CRLs during the handshake), and one that accepts a connection without a certificate
//! but verifies any certificate presented just the same (listeners with `client_certificate = "optional"`,
//! whose certificate-less callers must present a bearer token), and into a set of revoked serials that the request path
//! checks so that a CRL update also bites on connections opened before it. [`TlsState`] swaps new material in
//! when the files change (polled every `tls.reload_interval`, and on SIGHUP); a broken file is reported and the
//! previous material keeps serving.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

use super::identity::PeerCertificate;
use super::{provider, read_certificates, read_crls, read_private_key, PROTOCOL_VERSIONS};
use penghubung_types::config::{ClientCertificateMode, Config, TlsConfig};
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};

/// One generation of TLS material.
#[derive(Debug)]
pub struct ServerTls {
    pub server_config: Arc<rustls::ServerConfig>,
    /// The same material for listeners where the client certificate is optional.
    pub optional_client_config: Arc<rustls::ServerConfig>,
    /// serial → issuer names (raw DER) of revoked certificates.
    revoked: HashMap<Box<[u8]>, Vec<Box<[u8]>>>,
    /// When the material runs out: the server certificate, each client CA, each CRL's next update.
    pub expiry: Vec<Expiry>,
}

/// When one piece of the TLS material expires (a CRL: when its next update is due).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expiry {
    /// `server`, `client_ca` or `crl`.
    pub kind: &'static str,
    /// The certificate's subject common name (the CRL's issuer's), or its file name when it has none.
    pub name: String,
    /// Seconds since the Unix epoch.
    pub not_after: i64,
}

/// The common name of a distinguished name, or `fallback`.
fn common_name(name: &x509_parser::x509::X509Name<'_>, fallback: &std::path::Path) -> String {
    name.iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| fallback.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default())
}

/// The validity end of a DER certificate, with its subject's common name.
fn certificate_expiry(kind: &'static str, der: &[u8], path: &std::path::Path) -> Option<Expiry> {
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der).ok()?;
    Some(Expiry { kind, name: common_name(cert.subject(), path), not_after: cert.validity().not_after.timestamp() })
}

impl ServerTls {
    /// Whether the CRLs list this certificate.
    pub fn is_revoked(&self, peer: &PeerCertificate) -> bool {
        !self.revoked.is_empty()
            && self.revoked.get(&*peer.serial).is_some_and(|issuers| issuers.iter().any(|i| **i == *peer.issuer))
    }

    /// Number of revoked certificates known.
    pub fn revoked_count(&self) -> usize {
        self.revoked.values().map(Vec::len).sum()
    }
}

/// Resolved file locations.
#[derive(Debug, Clone)]
struct TlsFiles {
    cert: PathBuf,
    key: PathBuf,
    client_cas: Vec<PathBuf>,
    crls: Vec<PathBuf>,
}

impl TlsFiles {
    fn all(&self) -> impl Iterator<Item = &PathBuf> {
        [&self.cert, &self.key].into_iter().chain(&self.client_cas).chain(&self.crls)
    }

    /// Changes whenever a file's size or modification time changes.
    fn stamp(&self) -> u64 {
        let mut h = DefaultHasher::new();
        for path in self.all() {
            path.hash(&mut h);
            if let Ok(m) = std::fs::metadata(path) {
                m.len().hash(&mut h);
                m.modified().ok().hash(&mut h);
            }
        }
        h.finish()
    }

    fn load(&self) -> Result<ServerTls, String> {
        let chain = read_certificates(&self.cert)?;
        let key = read_private_key(&self.key)?;
        let mut expiry: Vec<Expiry> =
            chain.first().and_then(|c| certificate_expiry("server", c.as_ref(), &self.cert)).into_iter().collect();
        let mut roots = RootCertStore::empty();
        for path in &self.client_cas {
            for cert in read_certificates(path)? {
                expiry.extend(certificate_expiry("client_ca", cert.as_ref(), path));
                roots.add(cert).map_err(|e| format!("{}: {e}", path.display()))?;
            }
        }
        let mut crls = Vec::new();
        let mut revoked: HashMap<Box<[u8]>, Vec<Box<[u8]>>> = HashMap::new();
        for path in &self.crls {
            for crl in read_crls(path)? {
                let (_, parsed) = CertificateRevocationList::from_der(crl.as_ref())
                    .map_err(|e| format!("{}: unreadable CRL: {e}", path.display()))?;
                if let Some(next) = parsed.next_update() {
                    let name = common_name(parsed.issuer(), path);
                    expiry.push(Expiry { kind: "crl", name, not_after: next.timestamp() });
                }
                for entry in parsed.iter_revoked_certificates() {
                    revoked.entry(entry.raw_serial().into()).or_default().push(parsed.issuer().as_raw().into());
                }
                crls.push(crl);
            }
        }
        let roots = Arc::new(roots);
        let server_config = self.server_config(&roots, &crls, &chain, &key, ClientCertificateMode::Required)?;
        let optional_client_config =
            self.server_config(&roots, &crls, &chain, &key, ClientCertificateMode::Optional)?;
        Ok(ServerTls { server_config, optional_client_config, revoked, expiry })
    }

    /// A rustls config over the material: client certificates verified against `roots` and `crls`, required or
    /// optional.
    fn server_config(
        &self,
        roots: &Arc<RootCertStore>,
        crls: &[CertificateRevocationListDer<'static>],
        chain: &[CertificateDer<'static>],
        key: &PrivateKeyDer<'static>,
        mode: ClientCertificateMode,
    ) -> Result<Arc<rustls::ServerConfig>, String> {
        let mut verifier = WebPkiClientVerifier::builder_with_provider(Arc::clone(roots), provider());
        if !crls.is_empty() {
            verifier = verifier.with_crls(crls.to_vec()).allow_unknown_revocation_status();
        }
        if mode == ClientCertificateMode::Optional {
            verifier = verifier.allow_unauthenticated();
        }
        let verifier = verifier.build().map_err(|e| format!("client certificate verifier: {e}"))?;
        let mut server_config = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(PROTOCOL_VERSIONS)
            .map_err(|e| e.to_string())?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.to_vec(), key.clone_key())
            .map_err(|e| format!("{} / {}: {e}", self.cert.display(), self.key.display()))?;
        server_config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(server_config))
    }
}

/// The current TLS material, swapped atomically.
#[derive(Debug)]
pub struct TlsState {
    current: ArcSwap<ServerTls>,
    files: TlsFiles,
    /// Stamp of the files last tried (loaded or failed), so a broken file is reported once.
    last_stamp: Mutex<u64>,
    pub handshake_timeout: Duration,
    pub reload_interval: Duration,
}

impl TlsState {
    /// Loads the material named by `[tls]`.
    pub fn load(tls: &TlsConfig, config: &Config) -> Result<Self, String> {
        let files = TlsFiles {
            cert: config.resolve(&tls.cert_file),
            key: config.resolve(&tls.key_file),
            client_cas: tls.client_ca_files.iter().map(|p| config.resolve(p)).collect(),
            crls: tls.crl_files.iter().map(|p| config.resolve(p)).collect(),
        };
        let stamp = files.stamp();
        let material = files.load()?;
        Ok(Self {
            current: ArcSwap::from_pointee(material),
            files,
            last_stamp: Mutex::new(stamp),
            handshake_timeout: tls.handshake_timeout.0,
            reload_interval: tls.reload_interval.0,
        })
    }

    /// The material serving now (cheap; do not hold it across an await).
    pub fn current(&self) -> arc_swap::Guard<Arc<ServerTls>> {
        self.current.load()
    }

    /// An acceptor for a new connection, with the current material, requiring a client certificate or not.
    pub fn acceptor(&self, mode: ClientCertificateMode) -> tokio_rustls::TlsAcceptor {
        let current = self.current.load();
        let config = match mode {
            ClientCertificateMode::Required => &current.server_config,
            ClientCertificateMode::Optional => &current.optional_client_config,
        };
        tokio_rustls::TlsAcceptor::from(Arc::clone(config))
    }

    /// Reloads when a file changed. `Ok(true)`: new material serves; `Ok(false)`: nothing changed (or the
    /// change was already reported as broken); `Err`: the new files are broken, the old material keeps serving.
    pub fn reload_if_changed(&self) -> Result<bool, String> {
        let mut last = self.last_stamp.lock().unwrap_or_else(|p| p.into_inner());
        let stamp = self.files.stamp();
        if stamp == *last {
            return Ok(false);
        }
        *last = stamp;
        let material = self.files.load()?;
        self.current.store(Arc::new(material));
        Ok(true)
    }

    /// Reloads and logs the outcome.
    pub fn reload_and_log(&self, trigger: &str) {
        match self.reload_if_changed() {
            Ok(true) => tracing::info!(trigger, revoked = self.current().revoked_count(), "TLS material reloaded"),
            Ok(false) => {}
            Err(e) => {
                tracing::error!(trigger, error = %e, "TLS material rejected; the previous certificates, CAs and CRLs keep serving")
            }
        }
    }
}

/// Polls the TLS files every `reload_interval` until the state is dropped elsewhere.
pub fn spawn_watch(state: Arc<TlsState>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(state.reload_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let s = Arc::clone(&state);
            let _ = tokio::task::spawn_blocking(move || s.reload_and_log("file change")).await;
        }
    })
}

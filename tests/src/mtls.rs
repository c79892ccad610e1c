//! mTLS helpers: a CA per test (the gateway's own built-in CA code), configs with a TLS listener, rustls
//! client configs with or without a client certificate, and a raw keep-alive HTTP/1.1-over-TLS connection
//! for tests that must reuse one connection or look at the handshake itself.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use penghubung::ca::{CertificateAuthority, Issued, Validity};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::TestBody;

/// The trust domain of test certificates.
pub const TRUST_DOMAIN: &str = "test.penghubung.local";

/// A CA, the gateway's server certificate, and the files the gateway reads.
pub struct Pki {
    pub dir: PathBuf,
    pub ca: CertificateAuthority,
}

impl Pki {
    /// Creates `dir/pki` with a CA and a server certificate for 127.0.0.1 and localhost.
    pub fn new(dir: &Path) -> Pki {
        Pki::with_trust_domain(dir, TRUST_DOMAIN)
    }

    /// Like [`Pki::new`] with another SPIFFE trust domain (the baseline policies use the development one).
    pub fn with_trust_domain(dir: &Path, trust_domain: &str) -> Pki {
        let pki = dir.join("pki");
        let ca = CertificateAuthority::init(&pki, trust_domain, "Test").unwrap();
        ca.issue_server(&["127.0.0.1".into(), "localhost".into()], Validity::days(30))
            .unwrap()
            .write(&pki.join("server.crt"), &pki.join("server.key"))
            .unwrap();
        Pki { dir: pki, ca }
    }

    /// A valid client certificate for `{opd}/{app}`.
    pub fn client(&self, opd: &str, app: &str) -> Issued {
        self.ca.issue_client(opd, app, Validity::days(30)).unwrap()
    }

    /// A client certificate signed by this CA whose subject is `entries`, one RDN each, in certificate order
    /// (`C` first, `CN` last, as CAs write them), without a SPIFFE id: it binds only by subject or fingerprint.
    pub fn client_with_subject(&self, entries: &[(rcgen::DnType, rcgen::DnValue)]) -> Issued {
        let ca_key = rcgen::KeyPair::from_pem(&std::fs::read_to_string(self.dir.join("ca.key")).unwrap()).unwrap();
        let issuer = rcgen::Issuer::from_ca_cert_pem(self.ca.cert_pem(), &ca_key).unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        for (kind, value) in entries {
            params.distinguished_name.push(kind.clone(), value.clone());
        }
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        let serial = fastrand::u64(1 << 40..);
        params.serial_number = Some(rcgen::SerialNumber::from(serial));
        let validity = Validity::days(30);
        params.not_before = validity.not_before;
        params.not_after = validity.not_after;
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        Issued { cert_pem: cert.pem(), key_pem: key.serialize_pem(), serial_hex: format!("{serial:x}"), spiffe: None }
    }

    /// The `[tls]` section, polling the files every 100 ms.
    pub fn tls_section(&self) -> String {
        let p = |name: &str| self.dir.join(name).display().to_string();
        format!(
            "[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\nclient_ca_files = [\"{}\"]\ncrl_files = [\"{}\"]\nreload_interval = \"100ms\"\nhandshake_timeout = \"2s\"\n",
            p("server.crt"),
            p("server.key"),
            p("ca.crt"),
            p("crl.pem")
        )
    }

    pub fn ca_pem(&self) -> String {
        self.ca.cert_pem().to_string()
    }
}

/// Writes documents and a config with one mTLS listener; returns the config path.
pub fn write_mtls_setup(dir: &Path, documents: &[(String, String)], pki: &Pki, extra: &str) -> PathBuf {
    crate::write_config(dir, documents, "", &format!("{}\n{extra}", pki.tls_section()))
}

fn parse_cert(pem: &str) -> Vec<CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem.as_bytes()).collect::<Result<_, _>>().unwrap()
}

fn parse_key(pem: &str) -> PrivateKeyDer<'static> {
    use rustls::pki_types::pem::PemObject;
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).unwrap()
}

/// A rustls client config trusting `ca_pem`, presenting `identity` when given, speaking `versions`.
pub fn client_config_with_versions(
    ca_pem: &str,
    identity: Option<&Issued>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for cert in parse_cert(ca_pem) {
        roots.add(cert).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots);
    match identity {
        Some(issued) => {
            builder.with_client_auth_cert(parse_cert(&issued.cert_pem), parse_key(&issued.key_pem)).unwrap()
        }
        None => builder.with_no_client_auth(),
    }
}

/// A TLS 1.2/1.3 client config.
pub fn client_config(ca_pem: &str, identity: Option<&Issued>) -> rustls::ClientConfig {
    client_config_with_versions(ca_pem, identity, rustls::DEFAULT_VERSIONS)
}

/// A pooled HTTPS client (HTTP/1.1 and HTTP/2 by ALPN).
pub fn https_client(config: rustls::ClientConfig) -> Client<HttpsConnector<HttpConnector>, TestBody> {
    let connector =
        hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config).https_only().enable_all_versions().build();
    Client::builder(TokioExecutor::new()).build(connector)
}

/// A server-side rustls config from PEM strings (for TLS upstreams), optionally requiring client certificates
/// from `client_ca_pem`.
pub fn server_config(cert_pem: &str, key_pem: &str, client_ca_pem: Option<&str>) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca_pem {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in parse_cert(ca) {
                roots.add(cert).unwrap();
            }
            builder.with_client_cert_verifier(
                rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build().unwrap(),
            )
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(parse_cert(cert_pem), parse_key(key_pem)).unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// One TLS connection speaking keep-alive HTTP/1.1.
pub struct TlsConnection {
    stream: TlsStream<TcpStream>,
}

impl TlsConnection {
    /// Connects and completes the handshake (with TLS 1.3 a refused client certificate only shows on the first read).
    pub async fn connect(addr: std::net::SocketAddr, config: rustls::ClientConfig) -> std::io::Result<TlsConnection> {
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = TcpStream::connect(addr).await?;
        let stream = connector.connect(ServerName::try_from("127.0.0.1").unwrap(), tcp).await?;
        Ok(TlsConnection { stream })
    }

    /// The server's certificate (DER).
    pub fn server_certificate(&self) -> Vec<u8> {
        self.stream.get_ref().1.peer_certificates().unwrap()[0].to_vec()
    }

    /// Sends a GET and reads the response: `(status, body)`.
    pub async fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> std::io::Result<(u16, String)> {
        let mut request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        for (k, v) in headers {
            request.push_str(&format!("{k}: {v}\r\n"));
        }
        request.push_str("\r\n");
        self.stream.write_all(request.as_bytes()).await?;
        let mut data = Vec::new();
        let mut buf = [0u8; 4096];
        let head_end = loop {
            if let Some(p) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            let n = tokio::time::timeout(std::time::Duration::from_secs(5), self.stream.read(&mut buf))
                .await
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no response"))??;
            if n == 0 {
                return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed"));
            }
            data.extend_from_slice(&buf[..n]);
        };
        let head = String::from_utf8_lossy(&data[..head_end]).to_string();
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let length: usize = head
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
            .unwrap_or(0);
        while data.len() < head_end + length {
            let n = self.stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            data.extend_from_slice(&buf[..n]);
        }
        Ok((status, String::from_utf8_lossy(&data[head_end..]).to_string()))
    }
}

/// Connects and sends one request: the status, or why the connection failed.
pub async fn request_status(
    addr: std::net::SocketAddr,
    config: rustls::ClientConfig,
    path: &str,
) -> Result<u16, String> {
    let mut connection = TlsConnection::connect(addr, config).await.map_err(|e| e.to_string())?;
    connection.get(path, &[]).await.map(|(status, _)| status).map_err(|e| e.to_string())
}

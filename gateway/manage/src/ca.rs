//! The built-in certificate authority (`penghubung ca ...`), for the demo and for small deployments that do
//! not use BSrE or another CA yet. It keeps its files in one directory:
//!
//! | file | what |
//! |---|---|
//! | `ca.crt`, `ca.key` (0600) | the CA certificate and key |
//! | `ca.toml` | the SPIFFE trust domain of client certificates |
//! | `revoked.txt` | revoked serials (hex), one per line |
//! | `crl.pem` | the CRL the gateway reads (`tls.crl_files`), rewritten on every revocation |
//!
//! Client certificates carry `spiffe://{trust-domain}/opd/{opd}/app/{app}` as URI SAN, which is what the
//! matching `Client` document binds.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use penghubung_snapshot::store::CaLists;
use penghubung_tls::identity::hex;
use penghubung_types::config::{Config, TlsConfig};

/// Why a CA operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("certificate generation: {0}")]
    Generation(#[from] rcgen::Error),
    #[error("{0}")]
    Invalid(String),
}

/// When a certificate is valid.
#[derive(Clone, Copy, Debug)]
pub struct Validity {
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl Validity {
    /// From one hour ago (clock skew) for `days` days.
    pub fn days(days: i64) -> Self {
        let now = OffsetDateTime::now_utc();
        Self { not_before: now - Duration::hours(1), not_after: now + Duration::days(days) }
    }
}

/// A freshly issued certificate and key.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    pub serial_hex: String,
    /// The SPIFFE id of a client certificate.
    pub spiffe: Option<String>,
}

impl Issued {
    /// Writes the certificate (0644) and the key (0600).
    pub fn write(&self, cert_path: &Path, key_path: &Path) -> Result<(), CaError> {
        write_file(cert_path, self.cert_pem.as_bytes(), 0o644)?;
        write_file(key_path, self.key_pem.as_bytes(), 0o600)
    }
}

/// Whom a certificate issued from a CSR is for.
#[derive(Clone, Copy, Debug)]
pub enum CsrSubject<'a> {
    /// The client application `{opd}/{app}` (SPIFFE `…/opd/{opd}/app/{app}`).
    Client { opd: &'a str, app: &'a str },
    /// The operator `id` of `opd` (SPIFFE `…/operator/{id}`).
    Operator { id: &'a str, opd: &'a str },
}

/// A certificate issued from a CSR: no private key here, the requester keeps it.
#[derive(Clone, Debug)]
pub struct SignedCsr {
    pub cert_pem: String,
    pub serial_hex: String,
    /// SHA-256 of the certificate (DER), lower-case hex: what a Client or Operator document binds.
    pub fingerprint_sha256: String,
}

/// The folder of the gateway's CA: that of the first client CA file of `[tls]` (where `ca.crt`, `ca.key` and
/// the CRL are), or `None` without a `[tls]` section.
pub fn ca_dir(config: &Config) -> Option<PathBuf> {
    let tls = config.tls.as_ref()?;
    let first = tls.client_ca_files.first()?;
    config.resolve(first).parent().map(Path::to_path_buf)
}

/// The CA in a directory.
pub struct CertificateAuthority {
    dir: PathBuf,
    cert_pem: String,
    key: KeyPair,
    trust_domain: String,
}

impl CertificateAuthority {
    /// Creates a new CA in `dir` (refuses to overwrite one) and an empty CRL.
    pub fn init(dir: &Path, trust_domain: &str, organisation: &str) -> Result<Self, CaError> {
        if dir.join("ca.crt").exists() || dir.join("ca.key").exists() {
            return Err(CaError::Invalid(format!("{} already holds a CA; refusing to overwrite it", dir.display())));
        }
        if trust_domain.is_empty() || trust_domain.contains('/') {
            return Err(CaError::Invalid(format!("`{trust_domain}` is not a SPIFFE trust domain")));
        }
        fs::create_dir_all(dir).map_err(io(dir))?;
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, format!("Penghubung CA {organisation}"));
        params.distinguished_name.push(DnType::OrganizationName, organisation);
        params.distinguished_name.push(DnType::CountryName, "ID");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        params.serial_number = Some(random_serial());
        let validity = Validity::days(3650);
        params.not_before = validity.not_before;
        params.not_after = validity.not_after;
        let cert = params.self_signed(&key)?;
        let ca = Self { dir: dir.to_path_buf(), cert_pem: cert.pem(), key, trust_domain: trust_domain.to_string() };
        write_file(&dir.join("ca.key"), ca.key.serialize_pem().as_bytes(), 0o600)?;
        write_file(&dir.join("ca.crt"), ca.cert_pem.as_bytes(), 0o644)?;
        write_file(&dir.join("ca.toml"), format!("trust_domain = \"{trust_domain}\"\n").as_bytes(), 0o644)?;
        write_file(&dir.join("revoked.txt"), b"", 0o644)?;
        ca.write_crl()?;
        Ok(ca)
    }

    /// Opens the CA in `dir`.
    pub fn open(dir: &Path) -> Result<Self, CaError> {
        let read = |name: &str| fs::read_to_string(dir.join(name)).map_err(io(&dir.join(name)));
        let cert_pem = read("ca.crt")?;
        let key = KeyPair::from_pem(&read("ca.key")?)?;
        let settings = read("ca.toml")?;
        let trust_domain = settings
            .lines()
            .find_map(|l| l.trim().strip_prefix("trust_domain"))
            .and_then(|rest| rest.split('"').nth(1))
            .ok_or_else(|| CaError::Invalid(format!("{}/ca.toml has no trust_domain", dir.display())))?
            .to_string();
        Ok(Self { dir: dir.to_path_buf(), cert_pem, key, trust_domain })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn cert_path(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    pub fn crl_path(&self) -> PathBuf {
        self.dir.join("crl.pem")
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    fn issuer(&self) -> Result<Issuer<'_, &KeyPair>, CaError> {
        Ok(Issuer::from_ca_cert_pem(&self.cert_pem, &self.key)?)
    }

    /// A server certificate for DNS names and IP addresses.
    pub fn issue_server(&self, names: &[String], validity: Validity) -> Result<Issued, CaError> {
        if names.is_empty() {
            return Err(CaError::Invalid("a server certificate needs at least one name".into()));
        }
        let mut params = CertificateParams::new(names.to_vec())?;
        params.distinguished_name.push(DnType::CommonName, names[0].clone());
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        self.sign(params, validity, None)
    }

    /// The SPIFFE id of a client application.
    pub fn spiffe_id(&self, opd: &str, app: &str) -> String {
        format!("spiffe://{}/opd/{opd}/app/{app}", self.trust_domain)
    }

    /// A client certificate for `{opd}/{app}` with its SPIFFE id.
    pub fn issue_client(&self, opd: &str, app: &str, validity: Validity) -> Result<Issued, CaError> {
        let slug =
            |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !slug(opd) || !slug(app) {
            return Err(CaError::Invalid(format!(
                "`{opd}/{app}`: OPD and app must be lower-case letters, digits and '-'"
            )));
        }
        let spiffe = self.spiffe_id(opd, app);
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, app);
        params.distinguished_name.push(DnType::OrganizationalUnitName, opd);
        params.subject_alt_names = vec![SanType::URI(spiffe.clone().try_into()?)];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        self.sign(params, validity, Some(spiffe))
    }

    /// The SPIFFE id of an operator of the management plane.
    pub fn operator_spiffe_id(&self, operator: &str) -> String {
        format!("spiffe://{}/operator/{operator}", self.trust_domain)
    }

    /// An operator certificate (key generated here) for the operator `id` of `opd`: for `penghubung init`,
    /// which creates the first admin before any admin API runs. Later operators send a CSR
    /// ([`CertificateAuthority::sign_csr`]).
    pub fn issue_operator(&self, id: &str, opd: &str, validity: Validity) -> Result<Issued, CaError> {
        let params = self.subject_params(&CsrSubject::Operator { id, opd })?;
        let spiffe = self.operator_spiffe_id(id);
        self.sign(params, validity, Some(spiffe))
    }

    /// A certificate for the public key of a certificate signing request (PEM; its signature is verified, so
    /// the requester holds the private key, which never leaves it). The subject and names come from `subject`,
    /// never from the request.
    pub fn sign_csr(&self, csr_pem: &str, subject: &CsrSubject<'_>, validity: Validity) -> Result<SignedCsr, CaError> {
        let mut csr = rcgen::CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| CaError::Invalid(format!("not a valid certificate signing request (PEM): {e}")))?;
        let mut params = self.subject_params(subject)?;
        let serial = random_serial();
        let serial_hex = hex(serial.as_ref());
        params.serial_number = Some(serial);
        params.not_before = validity.not_before;
        params.not_after = validity.not_after;
        params.use_authority_key_identifier_extension = true;
        csr.params = params;
        let cert = csr.signed_by(&self.issuer()?)?;
        let fingerprint_sha256 = hex(ring::digest::digest(&ring::digest::SHA256, cert.der()).as_ref());
        Ok(SignedCsr { cert_pem: cert.pem(), serial_hex, fingerprint_sha256 })
    }

    /// The subject, names and usages of a client or operator certificate.
    fn subject_params(&self, subject: &CsrSubject<'_>) -> Result<CertificateParams, CaError> {
        let slug =
            |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        let (common_name, unit, spiffe) = match *subject {
            CsrSubject::Client { opd, app } => (app, opd, self.spiffe_id(opd, app)),
            CsrSubject::Operator { id, opd } => (id, opd, self.operator_spiffe_id(id)),
        };
        if !slug(common_name) || !slug(unit) {
            return Err(CaError::Invalid(format!(
                "`{unit}/{common_name}`: names must be lower-case letters, digits and '-'"
            )));
        }
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.distinguished_name.push(DnType::OrganizationalUnitName, unit);
        params.subject_alt_names = vec![SanType::URI(spiffe.try_into()?)];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        Ok(params)
    }

    fn sign(
        &self,
        mut params: CertificateParams,
        validity: Validity,
        spiffe: Option<String>,
    ) -> Result<Issued, CaError> {
        let serial = random_serial();
        let serial_hex = hex(serial.as_ref());
        params.serial_number = Some(serial);
        params.not_before = validity.not_before;
        params.not_after = validity.not_after;
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer()?)?;
        Ok(Issued { cert_pem: cert.pem(), key_pem: key.serialize_pem(), serial_hex, spiffe })
    }

    /// Revokes a serial (hex, as printed at issue time or by `openssl x509 -serial`) and rewrites the CRL.
    pub fn revoke(&self, serial_hex: &str) -> Result<(), CaError> {
        let lists = self.revocation(&self.revoked()?, serial_hex)?;
        self.write_lists(&lists)
    }

    /// The revocation list and the CRL (signed with this CA's key) once `serial_hex` is added to `revoked`,
    /// without writing them (a shared store commits them first, see `Manager`).
    pub fn revocation(&self, revoked: &[String], serial_hex: &str) -> Result<CaLists, CaError> {
        let serial = normalise_serial(serial_hex)?;
        let mut revoked = revoked.to_vec();
        if !revoked.contains(&serial) {
            revoked.push(serial);
        }
        self.lists(&revoked)
    }

    /// The revocation list of `revoked` and its CRL (signed with this CA's key).
    pub fn lists(&self, revoked: &[String]) -> Result<CaLists, CaError> {
        let crl_pem = self.crl_of(revoked)?;
        Ok(CaLists { revoked: revoked.join("\n") + "\n", crl_pem })
    }

    /// Writes `revoked.txt` and `crl.pem`.
    pub fn write_lists(&self, lists: &CaLists) -> Result<(), CaError> {
        write_file(&self.dir.join("revoked.txt"), lists.revoked.as_bytes(), 0o644)?;
        write_file(&self.crl_path(), lists.crl_pem.as_bytes(), 0o644)
    }

    /// Revokes the certificate in a PEM file.
    pub fn revoke_certificate_file(&self, path: &Path) -> Result<String, CaError> {
        let certs = penghubung_tls::read_certificates(path).map_err(CaError::Invalid)?;
        let peer = penghubung_tls::identity::PeerCertificate::parse(certs[0].as_ref()).map_err(CaError::Invalid)?;
        let serial = peer.serial_hex();
        self.revoke(&serial)?;
        Ok(serial)
    }

    /// The serials of `revoked.txt`.
    pub fn revoked(&self) -> Result<Vec<String>, CaError> {
        let path = self.dir.join("revoked.txt");
        match fs::read_to_string(&path) {
            Ok(text) => Ok(serials(&text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(CaError::Io { path, source: e }),
        }
    }

    /// Writes `crl.pem` listing every revoked serial (valid for 30 days; rewritten on each revocation).
    pub fn write_crl(&self) -> Result<(), CaError> {
        let crl = self.crl_of(&self.revoked()?)?;
        write_file(&self.crl_path(), crl.as_bytes(), 0o644)
    }

    /// The CRL (PEM) listing `revoked`, valid for 30 days.
    fn crl_of(&self, revoked: &[String]) -> Result<String, CaError> {
        let now = OffsetDateTime::now_utc();
        let revoked_certs = revoked
            .iter()
            .map(|s| {
                let bytes = (0..s.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(s.get(i..i + 2).unwrap_or("zz"), 16))
                    .collect::<Result<Vec<u8>, _>>();
                bytes.map(|b| RevokedCertParams {
                    serial_number: SerialNumber::from(b),
                    revocation_time: now,
                    reason_code: None,
                    invalidity_date: None,
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| CaError::Invalid("the revocation list holds a serial that is not hexadecimal".into()))?;
        let params = CertificateRevocationListParams {
            this_update: now - Duration::minutes(5),
            next_update: now + Duration::days(30),
            crl_number: SerialNumber::from(revoked.len() as u64 + 1),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl = params.signed_by(&self.issuer()?)?;
        Ok(crl.pem()?)
    }
}

/// The serials of a revocation list's text (one per line, blank lines skipped).
pub fn serials(text: &str) -> Vec<String> {
    text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_ascii_lowercase).collect()
}

/// A serial as the revocation list keeps it: lower-case hex without `0x` or colons.
fn normalise_serial(serial_hex: &str) -> Result<String, CaError> {
    let serial = serial_hex.trim().trim_start_matches("0x").replace(':', "").to_ascii_lowercase();
    if serial.is_empty() || serial.len() % 2 != 0 || !serial.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(CaError::Invalid(format!("`{serial_hex}` is not a hexadecimal serial number")));
    }
    Ok(serial)
}

/// The `Client` document for a certificate issued by [`CertificateAuthority::issue_client`].
pub fn client_document(opd: &str, app: &str, spiffe: &str, clearance: &str) -> String {
    format!(
        "# Issued by `penghubung ca issue-client`.\nid = \"{opd}/{app}\"\nopd = \"{opd}\"\nname = \"{app}\"\nclearance = \"{clearance}\"\n\n[identity]\nspiffe = [\"{spiffe}\"]\n"
    )
}

/// The SPIFFE trust domain of a development CA (matches the baseline policy set).
pub const DEVELOPMENT_TRUST_DOMAIN: &str = "penghubung.lampungtimurkab.go.id";

/// For `tls.generate_if_missing`: when the server certificate, key or first client CA file is missing, creates
/// a development CA in the folder of the first client CA file and a server certificate for loopback names and
/// the listeners' addresses. Returns whether anything was created.
pub fn ensure_development_pki(tls: &TlsConfig, config: &Config) -> Result<bool, CaError> {
    let cert = config.resolve(&tls.cert_file);
    let key = config.resolve(&tls.key_file);
    let ca_file = tls
        .client_ca_files
        .first()
        .map(|p| config.resolve(p))
        .ok_or_else(|| CaError::Invalid("tls.client_ca_files is empty".into()))?;
    if cert.is_file() && key.is_file() && ca_file.is_file() {
        return Ok(false);
    }
    let ca_dir = ca_file.parent().map(Path::to_path_buf).unwrap_or_default();
    let ca = if ca_dir.join("ca.crt").is_file() {
        CertificateAuthority::open(&ca_dir)?
    } else {
        CertificateAuthority::init(&ca_dir, DEVELOPMENT_TRUST_DOMAIN, "Development")?
    };
    if ca.cert_path() != ca_file {
        write_file(&ca_file, ca.cert_pem().as_bytes(), 0o644)?;
    }
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    for l in &config.listeners {
        let ip = l.address.ip();
        if !ip.is_unspecified() && !names.contains(&ip.to_string()) {
            names.push(ip.to_string());
        }
    }
    ca.issue_server(&names, Validity::days(825))?.write(&cert, &key)?;
    Ok(true)
}

/// What `penghubung serve` does before starting the gateway: when `tls.generate_if_missing` is set and a
/// listener speaks TLS, [`ensure_development_pki`], with a warning when it created anything. The error is the
/// message of a start that failed on its TLS material.
pub fn provision_development_pki(config: &Config) -> Result<(), String> {
    let Some(tls) = &config.tls else { return Ok(()) };
    if !tls.generate_if_missing || config.listeners.iter().all(|l| l.plaintext) {
        return Ok(());
    }
    if ensure_development_pki(tls, config).map_err(|e| e.to_string())? {
        tracing::warn!(
            cert = %config.resolve(&tls.cert_file).display(),
            "created a development CA and server certificate; issue client certificates with `penghubung ca issue-client`"
        );
    }
    Ok(())
}

/// A random positive 128-bit serial.
fn random_serial() -> SerialNumber {
    let mut bytes = fastrand::u128(..).to_be_bytes().to_vec();
    bytes[0] = (bytes[0] & 0x7f) | 0x10;
    SerialNumber::from(bytes)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CaError + '_ {
    move |source| CaError::Io { path: path.to_path_buf(), source }
}

/// Writes a file atomically (temp + rename) with `mode` permissions.
pub fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<(), CaError> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io(parent))?;
    }
    let temp = path.with_extension(format!("tmp-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(&temp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&temp, path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&temp);
        CaError::Io { path: path.to_path_buf(), source: e }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_embedded_default_creates_a_development_pki_once() {
        let dir = tempfile::tempdir().unwrap();
        let config = penghubung_types::config::Config::embedded_default(dir.path());
        let tls = config.tls.clone().unwrap();
        assert!(ensure_development_pki(&tls, &config).unwrap());
        assert!(!ensure_development_pki(&tls, &config).unwrap(), "existing files are kept");
        let state = penghubung_tls::material::TlsState::load(&tls, &config).unwrap();
        assert_eq!(state.current().revoked_count(), 0);
    }

    #[test]
    fn a_ca_issues_and_revokes() {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::init(dir.path(), "example.go.id", "Pemkab Contoh").unwrap();
        assert!(CertificateAuthority::init(dir.path(), "example.go.id", "x").is_err(), "no silent overwrite");
        let mode = fs::metadata(dir.path().join("ca.key")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let ca = CertificateAuthority::open(ca.dir()).unwrap();
        assert_eq!(ca.trust_domain(), "example.go.id");
        let client = ca.issue_client("dinkes", "simpus", Validity::days(30)).unwrap();
        assert_eq!(client.spiffe.as_deref(), Some("spiffe://example.go.id/opd/dinkes/app/simpus"));
        let der = rustls_pemfile::certs(&mut client.cert_pem.as_bytes()).next().unwrap().unwrap();
        let peer = penghubung_tls::identity::PeerCertificate::parse(&der).unwrap();
        assert_eq!(peer.serial_hex(), client.serial_hex);
        ca.revoke(&client.serial_hex).unwrap();
        let crls = penghubung_tls::read_crls(&ca.crl_path()).unwrap();
        let (_, crl) =
            <x509_parser::revocation_list::CertificateRevocationList as x509_parser::prelude::FromDer<_>>::from_der(
                crls[0].as_ref(),
            )
            .unwrap();
        assert_eq!(crl.iter_revoked_certificates().count(), 1);
        assert!(ca.revoke("zz").is_err());
        let server = ca.issue_server(&["localhost".into(), "127.0.0.1".into()], Validity::days(30)).unwrap();
        assert!(server.spiffe.is_none());
    }
}

//! The CLI as an operator in tests: certificates for the store's operators (issued by the test's CA, their
//! fingerprints bound into the operator documents), the admin listener started beside an in-process gateway,
//! and `penghubung` commands run as one of those operators against it; console credentials (a password and a
//! TOTP secret) given to an operator directly, and the TOTP code of a secret now.

use std::path::{Path, PathBuf};
use std::process::Command;

use penghubung::ca::Validity;

use crate::mtls::Pki;
use crate::penghubung_binary;

/// The config section that turns the admin listener on, on a free port (pass it as a config extra).
pub const ADMIN_SECTION: &str = "[admin]\nlisten = \"127.0.0.1:0\"\n";

/// The admin listener of a test gateway and the files to reach it as each operator.
pub struct OperatorCli {
    pub url: String,
    home: PathBuf,
    certificates: PathBuf,
    cacert: PathBuf,
    server: Option<penghubung::admin::api::AdminServer>,
}

impl OperatorCli {
    /// Issues a certificate for every operator in the store of `config` (under `dir`), binds its fingerprint
    /// into the operator's document, reloads `gateway`, and starts the admin listener beside it. The config
    /// must have [`ADMIN_SECTION`].
    pub async fn start(dir: &Path, pki: &Pki, config: &Path, gateway: &penghubung::Gateway) -> OperatorCli {
        let certificates = dir.join("operator-certificates");
        let operators = dir.join("policies/operators");
        for entry in std::fs::read_dir(&operators).unwrap().flatten() {
            let path = entry.path();
            let text = std::fs::read_to_string(&path).unwrap();
            let mut doc: toml_edit::DocumentMut = text.parse().unwrap();
            let id = doc["id"].as_str().unwrap().to_string();
            let opd = doc["opd"].as_str().unwrap().to_string();
            let issued = pki.ca.issue_operator(&id, &opd, Validity::days(30)).unwrap();
            issued.write(&certificates.join(format!("{id}.crt")), &certificates.join(format!("{id}.key"))).unwrap();
            let fingerprint = penghubung::init::fingerprint_of(&issued.cert_pem).unwrap();
            let mut list = toml_edit::Array::new();
            list.push(fingerprint);
            doc["identity"]["fingerprint_sha256"] = toml_edit::value(list);
            std::fs::write(&path, doc.to_string()).unwrap();
        }
        gateway.reload().unwrap_or_else(|problems| panic!("operators bound: {problems:?}"));
        let loaded = penghubung::Config::load(config).unwrap_or_else(|p| panic!("config: {p:?}"));
        let server = penghubung::admin::start_beside(&loaded, gateway).await.unwrap().expect("[admin] is on");
        let home = dir.join("home");
        std::fs::create_dir_all(&home).unwrap();
        OperatorCli {
            url: format!("https://127.0.0.1:{}", server.local_addr().port()),
            home,
            certificates,
            cacert: pki.dir.join("ca.crt"),
            server: Some(server),
        }
    }

    /// Runs `penghubung ARGS` as `operator` against the admin listener; the exit code and stdout + stderr.
    pub fn run(&self, operator: &str, args: &[&str]) -> (i32, String) {
        let mut command = Command::new(penghubung_binary());
        command
            .args(args)
            .arg("--admin-url")
            .arg(&self.url)
            .arg("--cacert")
            .arg(&self.cacert)
            .arg("--operator-cert")
            .arg(self.certificates.join(format!("{operator}.crt")))
            .arg("--operator-key")
            .arg(self.certificates.join(format!("{operator}.key")))
            .env("HOME", &self.home)
            .env_remove("PENGHUBUNG_PROFILE");
        // The admin listener runs on this test's runtime: let its other workers serve while this one waits.
        let output = tokio::task::block_in_place(|| command.output().unwrap());
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        (output.status.code().unwrap_or(-1), text)
    }

    /// Stops the admin listener.
    pub async fn shutdown(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }
}

/// An operator document (`operators/{id}.toml`) of `opd` with `roles`, bound to a certificate's SHA-256
/// `fingerprint` ([`fingerprint_of`]).
pub fn document(id: &str, opd: &str, roles: &[penghubung::management::Role], fingerprint: &str) -> (String, String) {
    let roles = roles.iter().map(|r| format!("\"{}\"", r.as_str())).collect::<Vec<_>>().join(", ");
    (
        format!("operators/{id}.toml"),
        format!(
            "id = \"{id}\"\nname = \"Operator {id}\"\nnip = \"198001012005011001\"\nopd = \"{opd}\"\nroles = [{roles}]\n\n[identity]\nfingerprint_sha256 = [\"{fingerprint}\"]\n"
        ),
    )
}

/// The SHA-256 fingerprint an operator document binds, of the first certificate in `cert_pem`.
pub fn fingerprint_of(cert_pem: &str) -> String {
    use rustls::pki_types::pem::PemObject;
    let der = rustls::pki_types::CertificateDer::pem_slice_iter(cert_pem.as_bytes()).next().unwrap().unwrap();
    penghubung::management::stored::fingerprint(&der)
}

/// Gives operator `id` a console password and a fresh TOTP secret directly in the credentials folder of the
/// store at `store` (the default `[console] credentials_dir`: `console-credentials` beside the store folder);
/// returns the secret in base32, as an authenticator app takes it.
pub fn with_password(store: &Path, id: &str, password: &str) -> String {
    let dir = store.parent().unwrap_or(store).join("console-credentials");
    let credentials = penghubung::management::Credentials::new(dir);
    credentials.set_password(id, password).unwrap_or_else(|e| panic!("console password of {id}: {e}"));
    credentials.enrol_totp(id).unwrap_or_else(|e| panic!("TOTP secret of {id}: {e}")).secret
}

/// The TOTP code (six digits) of a base32 secret now.
pub fn totp_now(secret: &str) -> String {
    let secret = penghubung::management::totp::base32_decode(secret).expect("a base32 TOTP secret");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    penghubung::management::totp::code_at(&secret, now)
}
